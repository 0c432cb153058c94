/* Config validation: one test per kind of error, each asserting that the
 * message names the file and line (or the --set argument) and the key; and
 * that defaults land in the resolved file. */
#include "testutil.h"

#include <string.h>
#include <sys/stat.h>

#include "resnode/core/config.h"

static char last_message[2048];

static PetscErrorCode Capture(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  if (p == PETSC_ERROR_INITIAL) snprintf(last_message, sizeof last_message, "%s", mess);
  return n;
}

static char dir[256];

static void WriteFile(const char *name, const char *text, char *path, size_t len)
{
  snprintf(path, len, "%s/%s", dir, name);
  MPI_Barrier(PETSC_COMM_WORLD); /* nobody still reads the previous version */
  if (rn_test_rank == 0) {
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
  }
  MPI_Barrier(PETSC_COMM_WORLD);
}

/* Loads text as a file and runs the getters of a tiny "experiment";
 * returns the error code and leaves the message in last_message. */
static PetscErrorCode Experiment(RnConfig cfg)
{
  int iters, kind, n, depths[8];
  double lr;
  char out[256];
  PetscBool flag;
  const char *kinds[] = {"adam", "sgd", NULL};

  PetscFunctionBeginUser;
  PetscCall(RnConfigGetInt(cfg, "train.iterations", 10, 1, 1000, &iters));
  PetscCall(RnConfigGetReal(cfg, "train.lr", 0.01, 1e-9, 1.0, &lr));
  PetscCall(RnConfigGetChoice(cfg, "train.optimizer", "adam", kinds, &kind));
  PetscCall(RnConfigGetBool(cfg, "train.verbose", PETSC_FALSE, &flag));
  PetscCall(RnConfigGetIntArray(cfg, "sweep.depths", 2, (const int[]){2, 4}, 1, 1024, 1, 8, &n, depths));
  PetscCall(RnConfigGetString(cfg, "name", "run", out, sizeof out));
  PetscCall(RnConfigCheckUnused(cfg));
  PetscFunctionReturn(0);
}

static PetscErrorCode Run(const char *text, const char *set, char *path, size_t len)
{
  RnConfig cfg;
  PetscErrorCode err;

  WriteFile("test.cfg", text, path, len);
  last_message[0] = 0;
  PetscPushErrorHandler(Capture, NULL);
  err = RnConfigCreate(PETSC_COMM_WORLD, &cfg);
  if (!err) err = RnConfigLoadFile(cfg, path);
  if (!err && set) err = RnConfigSet(cfg, set);
  if (!err) err = Experiment(cfg);
  PetscPopErrorHandler();
  RnConfigDestroy(&cfg);
  return err;
}

/* the message has "FILE:LINE: key" (or the --set text) and the words given */
static void Expect(PetscErrorCode err, const char *where, const char *key, const char *words)
{
  if (rn_test_rank == 0) printf("\n    -> %s ", last_message);
  CU_ASSERT_EQUAL(err, RN_ERR_INPUT);
  CU_ASSERT_PTR_NOT_NULL(strstr(last_message, where));
  CU_ASSERT_PTR_NOT_NULL(strstr(last_message, key));
  CU_ASSERT_PTR_NOT_NULL(strstr(last_message, words));
}

static char path[512], where[600];

static void test_syntax_error(void)
{
  PetscErrorCode err = Run("train = {\n  lr = 0.1;\n  iterations = = 5;\n};\n", NULL, path, sizeof path);
  snprintf(where, sizeof where, "%s:3", path);
  Expect(err, where, "syntax error", "syntax");
}

static void test_unknown_key(void)
{
  PetscErrorCode err = Run("train = {\n  lrr = 0.1;\n};\n", NULL, path, sizeof path);
  snprintf(where, sizeof where, "%s:2", path);
  Expect(err, where, "train.lrr", "did you mean 'train.lr'");
}

static void test_wrong_type(void)
{
  PetscErrorCode err = Run("train = {\n  iterations = 5;\n  lr = \"fast\";\n};\n", NULL, path, sizeof path);
  snprintf(where, sizeof where, "%s:3", path);
  Expect(err, where, "train.lr", "expected a number");
}

static void test_out_of_range(void)
{
  PetscErrorCode err = Run("train = { iterations = 0; };\n", NULL, path, sizeof path);
  snprintf(where, sizeof where, "%s:1", path);
  Expect(err, where, "train.iterations", "must be in [1, 1000], got 0");
}

static void test_bad_choice(void)
{
  PetscErrorCode err = Run("\n\ntrain = { optimizer = \"adamw\"; };\n", NULL, path, sizeof path);
  snprintf(where, sizeof where, "%s:3", path);
  Expect(err, where, "train.optimizer", "\"adam\", \"sgd\"");
}

static void test_bad_array_entry(void)
{
  PetscErrorCode err = Run("sweep = { depths = [2, 0, 8]; };\n", NULL, path, sizeof path);
  snprintf(where, sizeof where, "%s:1", path);
  Expect(err, where, "sweep.depths", "entry [1]");
}

static void test_missing_required_and_file(void)
{
  RnConfig cfg;
  PetscErrorCode err;
  char value[256];
  Run("name = \"x\";\n", NULL, path, sizeof path);
  PetscPushErrorHandler(Capture, NULL);
  RnConfigCreate(PETSC_COMM_WORLD, &cfg);
  RnConfigLoadFile(cfg, path);
  err = RnConfigGetString(cfg, "data.dir", RN_REQUIRED, value, sizeof value);
  PetscPopErrorHandler();
  Expect(err, path, "data.dir", "missing");
  RnConfigDestroy(&cfg);
  /* a path that does not exist, resolved against the config's directory */
  Run("data = { dir = \"no-such-dir\"; };\n", NULL, path, sizeof path);
  PetscPushErrorHandler(Capture, NULL);
  RnConfigCreate(PETSC_COMM_WORLD, &cfg);
  RnConfigLoadFile(cfg, path);
  err = RnConfigGetPath(cfg, "data.dir", NULL, 2, value, sizeof value);
  PetscPopErrorHandler();
  snprintf(where, sizeof where, "%s:1", path);
  Expect(err, where, "data.dir", "no such directory");
  CU_ASSERT_PTR_NOT_NULL(strstr(last_message, dir));
  RnConfigDestroy(&cfg);
  /* a config file that is not there */
  PetscPushErrorHandler(Capture, NULL);
  RnConfigCreate(PETSC_COMM_WORLD, &cfg);
  err = RnConfigLoadFile(cfg, "/nonexistent/x.cfg");
  PetscPopErrorHandler();
  Expect(err, "/nonexistent/x.cfg", "cannot open", "No such file");
  RnConfigDestroy(&cfg);
}

static void test_bad_set(void)
{
  PetscErrorCode err = Run("name = \"x\";\n", "train.lr=", path, sizeof path);
  Expect(err, "--set train.lr=", "key=value", "expected");
  /* a bare word is a string: right for a string key, named for a number key */
  err = Run("name = \"x\";\n", "train.lr=fast", path, sizeof path);
  Expect(err, "--set train.lr=fast", "\"fast\"", "expected a number");
  err = Run("name = \"x\";\n", "train.optimizer=sgd", path, sizeof path);
  CU_ASSERT_EQUAL(err, 0);
  err = Run("name = \"x\";\n", "name=/data/my-run_2", path, sizeof path);
  CU_ASSERT_EQUAL(err, 0);
  /* what cannot be a bare word gets the exact fix */
  err = Run("name = \"x\";\n", "name=my run", path, sizeof path);
  Expect(err, "--set name=my run", "'my run'", "--set 'name=\"my run\"'");
  /* one key a --set (the second used to be dropped silently) */
  err = Run("name = \"x\";\n", "train.lr=0.5;seed=77", path, sizeof path);
  Expect(err, "--set train.lr=0.5;seed=77", "one key=value", "of its own");
  /* hexadecimal beyond 32 bits (libconfig wrapped 0x100000003 to 3) */
  err = Run("train = { iterations = 0x100000003; };\n", NULL, path, sizeof path);
  Expect(err, "test.cfg:1", "0x100000003", "32 bits");
  err = Run("name = \"x\";\n", "train.iterations=0x100000003", path, sizeof path);
  Expect(err, "--set train.iterations=0x100000003", "0x100000003", "32 bits");
  /* a valid --set with a value out of range names the --set, not a line */
  err = Run("train = { lr = 0.1; };\n", "train.lr=5", path, sizeof path);
  Expect(err, "--set train.lr=5", "train.lr", "must be in");
}

static void test_defaults_and_overrides(void)
{
  RnConfig cfg;
  char out[600];
  int iters, n, depths[8];
  double lr;
  Run("train = { lr = 0.25; };\n", NULL, path, sizeof path);
  RN_TEST_OK(RnConfigCreate(PETSC_COMM_WORLD, &cfg));
  RN_TEST_OK(RnConfigLoadFile(cfg, path));
  RN_TEST_OK(RnConfigSet(cfg, "train.iterations=7"));
  RN_TEST_OK(RnConfigSet(cfg, "ode.rtol=1e-8")); /* creates the group */
  RN_TEST_OK(RnConfigSet(cfg, "ode.scale=0.12345678901234568")); /* all 17 digits survive */
  RN_TEST_OK(RnConfigGetReal(cfg, "ode.rtol", 1e-3, 0, 1, &lr));
  CU_ASSERT_DOUBLE_EQUAL(lr, 1e-8, 1e-20);
  RN_TEST_OK(RnConfigGetReal(cfg, "ode.scale", 0, 0, 1, &lr));
  RN_TEST_OK(Experiment(cfg));
  snprintf(out, sizeof out, "%s/resolved.cfg", dir);
  RN_TEST_OK(RnConfigWrite(cfg, out));
  RnConfigDestroy(&cfg);
  /* the resolved file re-parses to the same values, defaults included */
  RN_TEST_OK(RnConfigCreate(PETSC_COMM_WORLD, &cfg));
  RN_TEST_OK(RnConfigLoadFile(cfg, out));
  RN_TEST_OK(RnConfigGetInt(cfg, "train.iterations", 99, 1, 1000, &iters));
  RN_TEST_OK(RnConfigGetReal(cfg, "train.lr", 99, 0, 1, &lr));
  RN_TEST_OK(RnConfigGetIntArray(cfg, "sweep.depths", 0, NULL, 1, 1024, 1, 8, &n, depths));
  CU_ASSERT_EQUAL(iters, 7);
  CU_ASSERT_DOUBLE_EQUAL(lr, 0.25, 0);
  CU_ASSERT(n == 2 && depths[0] == 2 && depths[1] == 4);
  RN_TEST_OK(RnConfigGetReal(cfg, "ode.scale", 0, 0, 1, &lr));
  CU_ASSERT(lr == 0.12345678901234568);
  CU_ASSERT(RnConfigHas(cfg, "train.optimizer"));
  RnConfigDestroy(&cfg);
}

/* @include: bases first, then the file's own keys key by key, then --set;
 * absolute and relative paths (relative to the including file); messages
 * name the file that set the key; cycles and includes inside a group refused. */
static void test_include(void)
{
  char base[512], mid[512], top[512], abs_top[512], text[1200];
  RnConfig cfg;
  PetscErrorCode err;
  int iters, n, depths[8], kind;
  double lr;
  char name[64];
  const char *kinds[] = {"adam", "sgd", NULL};
  uint64_t checksum = 0;

  if (rn_test_rank == 0) {
    char sub[300];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    mkdir(sub, 0755);
  }
  WriteFile("base.cfg", "train = { iterations = 5; lr = 0.5; optimizer = \"sgd\"; };\nsweep = { depths = [1, 2, 3]; };\nname = \"base\";\n", base, sizeof base);
  /* relative to the including file (sub/), not to the working directory */
  WriteFile("sub/mid.cfg", "# @include \"commented.cfg\" is not a base\n@include \"../base.cfg\"\ntrain = { lr = 0.25; };\nsweep = { depths = [7]; };\n", mid, sizeof mid);
  snprintf(text, sizeof text, "@include \"%s\"\ntrain = { iterations = 9; };\n", mid);
  WriteFile("top.cfg", text, abs_top, sizeof abs_top);
  RN_TEST_OK(RnConfigCreate(PETSC_COMM_WORLD, &cfg));
  RN_TEST_OK(RnConfigLoadFile(cfg, abs_top));
  RN_TEST_OK(RnConfigSet(cfg, "name=\"cli\""));
  RN_TEST_OK(RnConfigGetInt(cfg, "train.iterations", 1, 1, 1000, &iters));
  RN_TEST_OK(RnConfigGetReal(cfg, "train.lr", 1, 0, 1, &lr));
  RN_TEST_OK(RnConfigGetChoice(cfg, "train.optimizer", "adam", kinds, &kind));
  RN_TEST_OK(RnConfigGetIntArray(cfg, "sweep.depths", 0, NULL, 1, 1024, 1, 8, &n, depths));
  RN_TEST_OK(RnConfigGetString(cfg, "name", "x", name, sizeof name));
  CU_ASSERT_EQUAL(iters, 9);   /* the top file's own */
  CU_ASSERT_EQUAL(lr, 0.25);   /* mid over base */
  CU_ASSERT_EQUAL(kind, 1);    /* the base's, kept through two merges of train */
  CU_ASSERT_EQUAL(n, 1);       /* an array replaces, it does not merge */
  CU_ASSERT_EQUAL(depths[0], 7);
  CU_ASSERT_STRING_EQUAL(name, "cli"); /* --set last */
  CU_ASSERT_EQUAL(RnConfigFileCount(cfg), 3);
  CU_ASSERT_PTR_NOT_NULL(strstr(RnConfigFile(cfg, 2, &checksum), "/sub/../base.cfg")); /* reached through mid */
  CU_ASSERT_NOT_EQUAL(checksum, 0);
  /* a key of the base is reported at the base's line */
  RN_TEST_OK(RnConfigSet(cfg, "unused=1"));
  RnConfigDestroy(&cfg);
  WriteFile("badbase.cfg", "train = {\n  lr = \"fast\";\n};\n", base, sizeof base);
  WriteFile("top.cfg", "@include \"badbase.cfg\"\nname = \"x\";\n", top, sizeof top);
  last_message[0] = 0;
  PetscPushErrorHandler(Capture, NULL);
  RnConfigCreate(PETSC_COMM_WORLD, &cfg);
  err = RnConfigLoadFile(cfg, top);
  if (!err) err = Experiment(cfg);
  PetscPopErrorHandler();
  RnConfigDestroy(&cfg);
  snprintf(where, sizeof where, "%s:2", base);
  Expect(err, where, "train.lr", "expected a number");
  /* a cycle, an include inside a group, a missing base: input errors naming the line */
  WriteFile("top.cfg", "name = \"x\";\n@include \"top.cfg\"\n", top, sizeof top);
  err = Run("name = \"x\";\n@include \"top.cfg\"\n", NULL, path, sizeof path); /* test.cfg -> top.cfg -> top.cfg */
  snprintf(where, sizeof where, "%s:2", top);
  Expect(err, where, "@include", "cycle");
  err = Run("train = {\n  @include \"base.cfg\"\n};\n", NULL, path, sizeof path);
  snprintf(where, sizeof where, "%s:2", path);
  Expect(err, where, "@include", "top level");
  err = Run("\n@include \"no-such.cfg\"\n", NULL, path, sizeof path);
  snprintf(where, sizeof where, "%s:2", path);
  Expect(err, where, "no-such.cfg", "cannot open");
}

static void Register(void)
{
  RnTestTempDir("rn-config", dir, sizeof dir);
  RnTestAddSuite("config", "syntax_error", test_syntax_error, "unknown_key", test_unknown_key, "wrong_type", test_wrong_type, "out_of_range", test_out_of_range,
                 "bad_choice", test_bad_choice, "bad_array_entry", test_bad_array_entry, "missing_required_and_file", test_missing_required_and_file, "bad_set",
                 test_bad_set, "defaults_and_overrides", test_defaults_and_overrides, "include", test_include, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
