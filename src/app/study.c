/* study.c: a study, many runs of one base config as one command (appimpl.h).
 *
 * A study file is a config with a `study` group: the rest of the file (and
 * its @include bases) is the base every point starts from; the group says
 * how the points differ from it:
 *
 *   study = {
 *     dir = "runs/cifar-rate";                       # STUDY_DIR
 *     axes = { model = { activation = ["relu", "softplus"]; }; seed = [1, 2]; };
 *     zip = ( { train = { lr = [0.1, 0.01]; batch = [32, 8]; }; } );  # varied together
 *     points = ( { seed = 1; model = { precision = "float64"; }; } ); # extra points
 *   };
 *
 * The points are the product of the axes (each zip group one axis), then the
 * extra points. Each one's config is the base with its values put in, keeping
 * the study file's lines, so that every getter validates it with the same
 * messages as a config of its own, before anything runs. Its run directory
 * is STUDY_DIR/points/<its values>-<hash of its resolved config>: the same
 * study run again finds its points done (left), stopped (resumed) or
 * missing (started); a point whose values changed is a new point.
 *
 * Packed mode: the ranks form study.groups groups; each group takes the next
 * point, largest estimated work first (RnExperiment.work), that no other
 * group holds (a claim file created exclusively in
 * STUDY_DIR/claims/<attempt>, on the run directories' file system) and runs
 * it as one run on its ranks, the point's own units and groups inside them.
 * A point that fails is recorded and the group goes on with the next; a
 * stop (a signal) checkpoints the points under way and ends the study. */
#include "appimpl.h"
#include "resnode/core/checkpoint.h"
#include "resnode/core/checksum.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RN_STUDY_MAX_POINTS    4096 /* points of one study */
#define RN_STUDY_MAX_AXES      32   /* axes, each zip group one */
#define RN_STUDY_MAX_VALUES    32   /* keys one point sets (and one zip group varies) */
#define RN_STUDY_VALUE_LEN     256  /* a value as config text */
#define RN_STUDY_READABLE_LEN  80   /* the readable part of a point's name */
#define RN_STUDY_HASH_DIGITS   8    /* hex digits of the hash in a name */
#define RN_STUDY_NAME_LEN      (RN_STUDY_READABLE_LEN + RN_STUDY_HASH_DIGITS + 2)
#define RN_STUDY_POLL_SECONDS  0.05 /* how often a group that is done looks whether the others are */

/* The keys of a point that do not make it another point: where and how it
 * runs (the same keys a resume may change, and verbose). */
static const char *const rn_point_identity_excludes[] = {"run", "checkpoint", "output", "parallel", "data.dir", "verbose", NULL};

/* The study's own keys (--keys study). */
const RnStudyKeyDoc RnAppStudyKeys[] = {
  {"study.dir", "path", "runs/<study file's name>", "STUDY_DIR: study.json and points/<point>/, one run directory a point"},
  {"study.groups", "integer or \"auto\"", "\"auto\"", "groups the ranks form, each running one point at a time; auto: as many as there are points to run, at most one a rank, dividing the rank count"},
  {"study.axes", "group", "none", "keys and their values, e.g. { seed = [1, 2]; model = { activation = [\"relu\", \"tanh\"]; }; }: the points are every combination"},
  {"study.zip", "list of groups", "none", "groups of keys varied together, like axes of equal length, e.g. ( { train = { lr = [0.1, 0.01]; batch = [32, 8]; }; } )"},
  {"study.points", "list of groups", "none", "extra points, each a group of values, e.g. ( { seed = 1; model = { precision = \"float64\"; }; } )"},
  {NULL, NULL, NULL, NULL},
};

typedef struct {
  char key[RN_CONFIG_KEY_LEN];      /* the key the value sets */
  char from[RN_CONFIG_KEY_LEN + 48]; /* the setting in the study file that holds it */
  char text[RN_STUDY_VALUE_LEN];    /* the value, as config text */
} PointValue;

typedef struct {
  PointValue values[RN_STUDY_MAX_VALUES];
  int nvalues;
  char name[RN_STUDY_NAME_LEN];
  char dir[PETSC_MAX_PATH_LEN];
  uint64_t hash;
  const RnExperiment *experiment;
  char status[32]; /* rank 0: "new", or its manifest's: done, running, preempted, failed */
  char reason[512];
  PetscBool selected; /* runs in this invocation (all, or those --point names) */
  double work;        /* its experiment's estimate of its work (0: none) */
} Point;

/* An axis: keys (one, or a zip group's) and their values, value i of each key at from[k].[i] */
typedef struct {
  int nkeys, nvalues;
  char keys[RN_STUDY_MAX_VALUES][RN_CONFIG_KEY_LEN];
  char from[RN_STUDY_MAX_VALUES][RN_CONFIG_KEY_LEN + 48];
} Axis;

struct RnStudy_s {
  RnCtx ctx;
  RnConfig cfg; /* the study file, with the command line's --set */
  const RnStudyArgs *args;
  char dir[PETSC_MAX_PATH_LEN];
  int groups;
  Axis axes[RN_STUDY_MAX_AXES];
  int naxes;
  Point *points;
  int npoints;
  int *order;              /* the points largest work first (ties: the study's order) */
  PetscBool plan;          /* --plan: each point measured, none run */
  char plan_dir[PETSC_MAX_PATH_LEN + 8]; /* ... in STUDY_DIR.plan, removed afterwards */
  double *plan_wall, *plan_peak; /* ... its estimate (s) and peak memory (MB a rank) */
};
typedef struct RnStudy_s *RnStudy;

/* ---- the points ---- */

/* The leaves under group `from` (full key) with their keys relative to `base`: axes' value lists or points' values. */
static PetscErrorCode CollectLeaves(RnStudy st, const char *from, const char *prefix, int max, int *n, char (*keys)[RN_CONFIG_KEY_LEN], char (*froms)[RN_CONFIG_KEY_LEN + 48])
{
  PetscFunctionBeginUser;
  for (int i = 0; i < RnConfigCount(st->cfg, from); i++) {
    const char *member = RnConfigMemberName(st->cfg, from, i);
    char sub[RN_CONFIG_KEY_LEN + 48], key[RN_CONFIG_KEY_LEN];
    PetscCall(PetscSNPrintf(sub, sizeof sub, "%s.%s", from, member));
    PetscCall(PetscSNPrintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", member));
    if (RnConfigKindOf(st->cfg, sub) == RN_CONFIG_GROUP) {
      PetscCall(CollectLeaves(st, sub, key, max, n, keys, froms));
      continue;
    }
    if (*n == max) PetscCall(RnConfigError(st->cfg, sub, "more than %d keys here; a study varies at most %d keys a point", max, max));
    PetscCall(PetscStrncpy(keys[*n], key, sizeof keys[*n]));
    PetscCall(PetscStrncpy(froms[*n], sub, sizeof froms[*n]));
    (*n)++;
  }
  PetscFunctionReturn(0);
}

/* The axes of `from` (study.axes, or one group of study.zip: then one axis of all its keys) */
static PetscErrorCode AddAxes(RnStudy st, const char *from, PetscBool zipped)
{
  int n = 0;
  char(*keys)[RN_CONFIG_KEY_LEN], (*froms)[RN_CONFIG_KEY_LEN + 48];

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2(RN_STUDY_MAX_VALUES, &keys, RN_STUDY_MAX_VALUES, &froms));
  PetscCall(CollectLeaves(st, from, "", RN_STUDY_MAX_VALUES, &n, keys, froms));
  if (!n) PetscCall(RnConfigError(st->cfg, from, "no keys: %s", zipped ? "a zip group holds keys with lists of values of equal length, e.g. { train = { lr = [0.1, 0.01]; batch = [32, 8]; }; }" : "give each axis a list of values, e.g. axes = { seed = [1, 2]; };"));
  for (int k = 0; k < n; k++) {
    const RnConfigKind kind = RnConfigKindOf(st->cfg, froms[k]);
    const int count = RnConfigCount(st->cfg, froms[k]);
    Axis *a;
    if (kind != RN_CONFIG_ARRAY && kind != RN_CONFIG_LIST)
      PetscCall(RnConfigError(st->cfg, froms[k], "an axis is a list of the key's values, e.g. %s = [1, 2] or (\"relu\", \"tanh\"), or ([2, 4], [8]) for a key that takes an array", keys[k]));
    if (!count) PetscCall(RnConfigError(st->cfg, froms[k], "an axis with no values: give at least one"));
    if (!zipped || k == 0) {
      if (st->naxes == RN_STUDY_MAX_AXES) PetscCall(RnConfigError(st->cfg, froms[k], "more than %d axes", RN_STUDY_MAX_AXES));
      a = &st->axes[st->naxes++];
      a->nkeys = 0, a->nvalues = count;
    } else {
      a = &st->axes[st->naxes - 1];
      if (count != a->nvalues)
        PetscCall(RnConfigError(st->cfg, froms[k], "%d values, and %s of the same zip group has %d: the keys of a zip group vary together, so each needs as many values", count, a->keys[0], a->nvalues));
    }
    PetscCall(PetscStrncpy(a->keys[a->nkeys], keys[k], sizeof a->keys[a->nkeys]));
    PetscCall(PetscStrncpy(a->from[a->nkeys], froms[k], sizeof a->from[a->nkeys]));
    a->nkeys++;
  }
  PetscCall(PetscFree2(keys, froms));
  PetscFunctionReturn(0);
}

static PetscErrorCode AddValue(RnStudy st, Point *p, const char *key, const char *from)
{
  PointValue *v;

  PetscFunctionBeginUser;
  for (int i = 0; i < p->nvalues; i++)
    if (!strcmp(p->values[i].key, key)) PetscCall(RnConfigError(st->cfg, from, "%s is set twice for one point (also by %s): give each key one axis", key, p->values[i].from));
  if (p->nvalues == RN_STUDY_MAX_VALUES) PetscCall(RnConfigError(st->cfg, from, "a point sets at most %d keys", RN_STUDY_MAX_VALUES));
  v = &p->values[p->nvalues++];
  PetscCall(PetscStrncpy(v->key, key, sizeof v->key));
  PetscCall(PetscStrncpy(v->from, from, sizeof v->from));
  PetscCall(RnConfigValueText(st->cfg, from, v->text, sizeof v->text));
  PetscFunctionReturn(0);
}

/* A point's readable name from its values: "activation=relu_seed=1", each
 * key by its last part, an array's elements joined by '-' ("depths=2-4"),
 * characters a file name (or a CSV cell) should not hold dropped or '_' */
static void ReadableName(const Point *p, char *buf, size_t len)
{
  size_t o = 0;
  buf[0] = 0;
  for (int i = 0; i < p->nvalues && o + 1 < len; i++) {
    const char *last = strrchr(p->values[i].key, '.');
    char part[RN_CONFIG_KEY_LEN + RN_STUDY_VALUE_LEN];
    snprintf(part, sizeof part, "%s%s=", i ? "_" : "", last ? last + 1 : p->values[i].key);
    for (const char *c = p->values[i].text; *c; c++) {
      const size_t n = strlen(part);
      if (strchr("\"[]() ", *c)) continue;
      if (n + 1 < sizeof part) part[n] = (char)(isalnum((unsigned char)*c) || strchr(".+-", *c) ? *c : *c == ',' ? '-' : '_'), part[n + 1] = 0;
    }
    o += (size_t)snprintf(buf + o, len - o, "%s", part);
  }
  if (o >= len) buf[len - 1] = 0;
  if (!buf[0]) snprintf(buf, len, "base");
}

static PetscErrorCode ExpandPoints(RnStudy st)
{
  int nproduct = 1, nextra = RnConfigCount(st->cfg, "study.points"), idx[RN_STUDY_MAX_AXES] = {0};

  PetscFunctionBeginUser;
  if (RnConfigKindOf(st->cfg, "study.axes") != RN_CONFIG_ABSENT) {
    if (RnConfigKindOf(st->cfg, "study.axes") != RN_CONFIG_GROUP) PetscCall(RnConfigError(st->cfg, "study.axes", "expected a group of keys with their values, e.g. axes = { seed = [1, 2]; };"));
    PetscCall(AddAxes(st, "study.axes", PETSC_FALSE));
  }
  if (RnConfigKindOf(st->cfg, "study.zip") != RN_CONFIG_ABSENT) {
    if (RnConfigKindOf(st->cfg, "study.zip") != RN_CONFIG_LIST) PetscCall(RnConfigError(st->cfg, "study.zip", "expected a list of groups, e.g. zip = ( { train = { lr = [0.1, 0.01]; batch = [32, 8]; }; } );"));
    for (int z = 0; z < RnConfigCount(st->cfg, "study.zip"); z++) {
      char from[64];
      PetscCall(PetscSNPrintf(from, sizeof from, "study.zip.[%d]", z));
      if (RnConfigKindOf(st->cfg, from) != RN_CONFIG_GROUP) PetscCall(RnConfigError(st->cfg, from, "a zip group is a group { ... } of keys with their values"));
      PetscCall(AddAxes(st, from, PETSC_TRUE));
    }
  }
  if (RnConfigKindOf(st->cfg, "study.points") != RN_CONFIG_ABSENT && RnConfigKindOf(st->cfg, "study.points") != RN_CONFIG_LIST)
    PetscCall(RnConfigError(st->cfg, "study.points", "expected a list of groups, each a point's values, e.g. points = ( { seed = 3; } );"));
  if (!st->naxes && !nextra) PetscCall(RnConfigError(st->cfg, "study", "no points: give study.axes, study.zip or study.points (see resnode-mpi --keys study)"));
  for (int a = 0; a < st->naxes; a++) {
    if (nproduct > RN_STUDY_MAX_POINTS / st->axes[a].nvalues) PetscCall(RnConfigError(st->cfg, st->axes[a].from[0], "the axes make more than %d points", RN_STUDY_MAX_POINTS));
    nproduct *= st->axes[a].nvalues;
  }
  if (!st->naxes) nproduct = 0;
  if (nproduct + nextra > RN_STUDY_MAX_POINTS) PetscCall(RnConfigError(st->cfg, "study.points", "the study has more than %d points", RN_STUDY_MAX_POINTS));
  st->npoints = nproduct + nextra;
  PetscCall(PetscCalloc1(st->npoints, &st->points));
  /* the product, the first axis slowest */
  for (int i = 0; i < nproduct; i++) {
    Point *p = &st->points[i];
    for (int a = 0; a < st->naxes; a++)
      for (int k = 0; k < st->axes[a].nkeys; k++) {
        char from[RN_CONFIG_KEY_LEN + 64];
        PetscCall(PetscSNPrintf(from, sizeof from, "%s.[%d]", st->axes[a].from[k], idx[a]));
        PetscCall(AddValue(st, p, st->axes[a].keys[k], from));
      }
    for (int a = st->naxes - 1; a >= 0; a--) {
      if (++idx[a] < st->axes[a].nvalues) break;
      idx[a] = 0;
    }
  }
  for (int e = 0; e < nextra; e++) {
    Point *p = &st->points[nproduct + e];
    char from[64];
    int n = 0;
    char(*keys)[RN_CONFIG_KEY_LEN], (*froms)[RN_CONFIG_KEY_LEN + 48];
    PetscCall(PetscSNPrintf(from, sizeof from, "study.points.[%d]", e));
    if (RnConfigKindOf(st->cfg, from) != RN_CONFIG_GROUP) PetscCall(RnConfigError(st->cfg, from, "a point is a group { ... } of the keys it sets, e.g. { seed = 3; }"));
    PetscCall(PetscMalloc2(RN_STUDY_MAX_VALUES, &keys, RN_STUDY_MAX_VALUES, &froms));
    PetscCall(CollectLeaves(st, from, "", RN_STUDY_MAX_VALUES, &n, keys, froms));
    for (int k = 0; k < n; k++) PetscCall(AddValue(st, p, keys[k], froms[k]));
    PetscCall(PetscFree2(keys, froms));
  }
  PetscFunctionReturn(0);
}

/* The config of point k on comm: the study file and the command line's
 * --set, without the study group, with the point's values */
static PetscErrorCode PointConfig(RnStudy st, MPI_Comm comm, int k, RnConfig *cfg)
{
  Point *p = &st->points[k];

  PetscFunctionBeginUser;
  PetscCall(RnConfigCreate(comm, cfg));
  RnConfigSetMeanings(*cfg, RnAppKeyMeaning, (void *)&p->experiment);
  PetscCall(RnConfigLoadFile(*cfg, st->args->path));
  for (int i = 0; i < st->args->nsets; i++) PetscCall(RnConfigSet(*cfg, st->args->sets[i]));
  PetscCall(RnConfigRemove(*cfg, "study"));
  for (int i = 0; i < p->nvalues; i++) PetscCall(RnConfigSetFrom(*cfg, p->values[i].key, st->cfg, p->values[i].from));
  PetscFunctionReturn(0);
}

/* Point k's config, read and validated by its experiment as a group of
 * group_size ranks would (every rank of the world reads it, so that an
 * error is one message); its hash, name and run directory */
static PetscErrorCode ValidatePoint(RnStudy st, int k, int group_size)
{
  Point *p = &st->points[k];
  RnConfig cfg;
  RnCtx vctx;
  void *options = NULL;
  char run_dir[PETSC_MAX_PATH_LEN], readable[RN_STUDY_READABLE_LEN + 1];
  PetscBool plot;

  PetscFunctionBeginUser;
  PetscCall(PointConfig(st, st->ctx->world, k, &cfg));
  /* the world's ranks read it as the point's group will: the rank count its
   * parallel.* keys are checked against is the group's */
  PetscCall(RnCtxCreate(st->ctx->world, &vctx));
  vctx->world_size = group_size;
  PetscCall(RnAppReadCommon(vctx, cfg, &p->experiment, run_dir, sizeof run_dir, &plot));
  PetscCall(p->experiment->read_options(vctx, cfg, &options));
  PetscCall(RnConfigCheckUnused(cfg));
  p->work = p->experiment->work ? p->experiment->work(options) : 0;
  PetscCall(PetscFree(options));
  vctx->world_size = st->ctx->world_size;
  PetscCall(RnCtxDestroy(&vctx));
  PetscCall(RnConfigHash(cfg, rn_point_identity_excludes, &p->hash));
  PetscCall(RnConfigDestroy(&cfg));
  ReadableName(p, readable, sizeof readable);
  PetscCall(PetscSNPrintf(p->name, sizeof p->name, "%s-%0*llx", readable, RN_STUDY_HASH_DIGITS, (unsigned long long)(p->hash >> (64 - 4 * RN_STUDY_HASH_DIGITS))));
  PetscCall(PetscSNPrintf(p->dir, sizeof p->dir, "%s/points/%s", st->dir, p->name));
  PetscFunctionReturn(0);
}

/* ---- status: the run directories are the truth ---- */

/* The status and reason of a point's manifest, "new" where there is none */
static void ReadStatus(Point *p)
{
  if (!RnRunDirReadStatus(p->dir, p->status, sizeof p->status, p->reason, sizeof p->reason)) snprintf(p->status, sizeof p->status, "new");
}

/* A point is run (again) unless it is done or failed for a reason of its own */
static PetscBool ToRun(const Point *p) { return strcmp(p->status, "done") && strcmp(p->status, "failed") ? PETSC_TRUE : PETSC_FALSE; }

static void JsonString(FILE *fp, const char *text)
{
  char json[2 * PETSC_MAX_PATH_LEN + 16];
  RnJsonString(json, sizeof json, text);
  fputs(json, fp);
}

/* The points.points/ holds that the study no longer has (rank 0): listed, left as they are */
static int ListOrphans(RnStudy st, char *list, size_t len)
{
  char path[PETSC_MAX_PATH_LEN + 16];
  DIR *d;
  struct dirent *e;
  int n = 0;
  size_t o = 0;
  list[0] = 0;
  snprintf(path, sizeof path, "%s/points", st->dir);
  if (!(d = opendir(path))) return 0;
  while ((e = readdir(d))) {
    int known = 0;
    if (e->d_name[0] == '.') continue;
    for (int k = 0; k < st->npoints && !known; k++) known = !strcmp(st->points[k].name, e->d_name);
    if (known) continue;
    if (o + strlen(e->d_name) + 4 < len) o += (size_t)snprintf(list + o, len - o, "%s%s", n ? " " : "", e->d_name);
    n++;
  }
  closedir(d);
  return n;
}

/* STUDY_DIR/study.json (rank 0): the study file, its axes, and every point
 * with its values, hash, directory and status as its manifest says */
static PetscErrorCode WriteStudyJson(RnStudy st)
{
  char path[PETSC_MAX_PATH_LEN + 16], orphans[8192], real[PATH_MAX], stamp[32];
  char *text = NULL;
  size_t n = 0;
  FILE *fp;
  time_t now = time(NULL);
  struct tm tm;

  PetscFunctionBeginUser;
  if (st->ctx->world_rank != 0) PetscFunctionReturn(0);
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
  fp = open_memstream(&text, &n);
  PetscCheck(fp, PETSC_COMM_SELF, PETSC_ERR_MEM, "open_memstream failed");
  fprintf(fp, "{\n  \"study\": ");
  JsonString(fp, realpath(st->args->path, real) ? real : st->args->path);
  fprintf(fp, ",\n  \"resnode_version\": \"%s\",\n  \"updated\": \"%s\",\n  \"sets\": [", RESNODE_VERSION, stamp);
  for (int i = 0; i < st->args->nsets; i++) {
    fprintf(fp, "%s", i ? ", " : "");
    JsonString(fp, st->args->sets[i]);
  }
  fprintf(fp, "],\n  \"axes\": [");
  for (int a = 0; a < st->naxes; a++) {
    fprintf(fp, "%s\n    {\"keys\": [", a ? "," : "");
    for (int k = 0; k < st->axes[a].nkeys; k++) {
      fprintf(fp, "%s", k ? ", " : "");
      JsonString(fp, st->axes[a].keys[k]);
    }
    fprintf(fp, "], \"values\": %d}", st->axes[a].nvalues);
  }
  fprintf(fp, "\n  ],\n  \"points\": [");
  for (int k = 0; k < st->npoints; k++) {
    const Point *p = &st->points[k];
    fprintf(fp, "%s\n    {\"name\": ", k ? "," : "");
    JsonString(fp, p->name);
    fprintf(fp, ", \"hash\": \"%016llx\", \"dir\": ", (unsigned long long)p->hash);
    JsonString(fp, p->dir + strlen(st->dir) + 1);
    fprintf(fp, ", \"status\": ");
    JsonString(fp, p->status);
    fprintf(fp, ", \"reason\": ");
    JsonString(fp, p->reason);
    fprintf(fp, ", \"experiment\": ");
    JsonString(fp, p->experiment->name);
    fprintf(fp, ", \"values\": {");
    for (int i = 0; i < p->nvalues; i++) {
      fprintf(fp, "%s", i ? ", " : "");
      JsonString(fp, p->values[i].key);
      fprintf(fp, ": ");
      JsonString(fp, p->values[i].text);
    }
    fprintf(fp, "}}");
  }
  fprintf(fp, "\n  ],\n  \"not_in_study\": [");
  ListOrphans(st, orphans, sizeof orphans);
  for (char *o = orphans, *next; *o; o = next) {
    next = o + strcspn(o, " ");
    fprintf(fp, "%s\"%.*s\"", o == orphans ? "" : ", ", (int)(next - o), o);
    if (*next) next++;
  }
  fprintf(fp, "]\n}\n");
  fclose(fp);
  PetscCall(PetscSNPrintf(path, sizeof path, "%s/study.json", st->dir));
  {
    const PetscErrorCode err = RnWriteFileAtomic(path, text, strlen(text));
    free(text);
    PetscCall(err);
  }
  PetscFunctionReturn(0);
}

/* ---- running ---- */

/* Rank 0 reads every point's manifest; every rank learns the statuses */
static PetscErrorCode GatherStatus(RnStudy st)
{
  PetscFunctionBeginUser;
  for (int k = 0; k < st->npoints; k++) {
    if (st->ctx->world_rank == 0) ReadStatus(&st->points[k]);
    PetscCallMPI(MPI_Bcast(st->points[k].status, sizeof st->points[k].status, MPI_CHAR, 0, st->ctx->world));
  }
  PetscFunctionReturn(0);
}

/* study.groups: "auto" (or absent) is as many groups as points to run, at
 * most one a rank and a divisor of the rank count */
static PetscErrorCode ReadGroups(RnStudy st, int nrun)
{
  PetscFunctionBeginUser;
  if (RnConfigHas(st->cfg, "study.groups") && !RnConfigIsString(st->cfg, "study.groups")) {
    PetscCall(RnConfigGetInt(st->cfg, "study.groups", 1, 1, st->ctx->world_size, &st->groups));
    if (st->ctx->world_size % st->groups)
      PetscCall(RnConfigError(st->cfg, "study.groups", "%d groups do not divide the %d MPI ranks: use a divisor of the rank count, or \"auto\"", st->groups, st->ctx->world_size));
    PetscFunctionReturn(0);
  }
  if (RnConfigHas(st->cfg, "study.groups")) {
    const char *const choices[] = {"auto", NULL};
    int index;
    PetscCall(RnConfigGetChoice(st->cfg, "study.groups", "auto", choices, &index));
  }
  st->groups = 1;
  for (int g = PetscMin(PetscMax(nrun, 1), st->ctx->world_size); g >= 1; g--)
    if (st->ctx->world_size % g == 0) {
      st->groups = g;
      break;
    }
  PetscFunctionReturn(0);
}

/* The claim of a point for this attempt: the first group to create the file takes it */
static int Claim(const char *claims, const Point *p)
{
  char path[PETSC_MAX_PATH_LEN + RN_STUDY_NAME_LEN + 8];
  int fd;
  snprintf(path, sizeof path, "%s/%s", claims, p->name);
  fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
  if (fd < 0) return 0;
  close(fd);
  return 1;
}

/* One point on this rank's group: its config read on the group's ranks,
 * then one run (resumed where its directory holds one) */
static PetscErrorCode RunPoint(RnStudy st, RnCtx gctx, int k, int argc, char **argv, PetscErrorCode *outcome)
{
  Point *p = &st->points[k];
  RnConfig cfg = NULL;
  void *options = NULL;
  char run_dir[PETSC_MAX_PATH_LEN];
  PetscBool plot, resume;
  PetscErrorCode err;

  PetscFunctionBeginUser;
  /* an error on the group's ranks ends this point's run, not the study */
  PetscCall(PetscSNPrintf(gctx->log_prefix, sizeof gctx->log_prefix, "[%s] ", p->name));
  RnErrorSetJob(gctx->world, gctx->log_prefix);
  resume = gctx->world_rank == 0 && RnRunDirHoldsRun(p->dir) ? PETSC_TRUE : PETSC_FALSE;
  PetscCallMPI(MPI_Bcast(&resume, 1, MPIU_BOOL, 0, gctx->world));
  err = PointConfig(st, gctx->world, k, &cfg);
  if (!err) err = RnConfigSetString(cfg, "run.dir", p->dir);
  if (!err) err = RnAppReadCommon(gctx, cfg, &p->experiment, run_dir, sizeof run_dir, &plot);
  if (!err) err = p->experiment->read_options(gctx, cfg, &options);
  if (!err) err = RnCtxSetGroups(gctx, p->experiment->group_count ? p->experiment->group_count(gctx, options) : 1);
  if (!err && st->plan) {
    /* measured in a scratch directory of its own, beside where it would run */
    PetscBool adaptive = PETSC_FALSE;
    char scratch[PETSC_MAX_PATH_LEN + RN_STUDY_NAME_LEN + 16];
    PetscCall(PetscSNPrintf(scratch, sizeof scratch, "%s/%s", st->plan_dir, p->name));
    if (RnConfigHas(cfg, "ode.adaptive")) err = RnConfigGetBool(cfg, "ode.adaptive", PETSC_FALSE, &adaptive);
    if (!err) err = RnAppPlan(gctx, p->experiment, options, scratch, adaptive, argc, argv, &st->plan_wall[k], &st->plan_peak[k]);
  } else if (!err) err = RnAppRunOne(gctx, cfg, p->experiment, options, run_dir, resume, plot, argc, argv);
  PetscFree(options);
  RnConfigDestroy(&cfg);
  RnErrorSetJob(MPI_COMM_NULL, "");
  gctx->log_prefix[0] = 0;
  /* these end the point; anything else may have left ranks in a collective */
  if (err && err != RN_ERR_INPUT && err != RN_ERR_PREEMPTED && err != RN_ERR_NONFINITE) PetscCall(err);
  *outcome = err;
  PetscFunctionReturn(0);
}

/* The points to run, packed: each group takes the next unclaimed point until none is left or a stop */
static PetscErrorCode RunPacked(RnStudy st, int argc, char **argv, int *counts)
{
  RnCtx gctx = NULL;
  char token[64], claims[PETSC_MAX_PATH_LEN + 96];
  int ok = 1;

  PetscFunctionBeginUser;
  /* this attempt's claims: a directory of its own, so that an earlier
   * attempt's (a killed job) claim nothing */
  if (st->ctx->world_rank == 0) {
    char host[32] = "";
    gethostname(host, sizeof host - 1);
    PetscCall(PetscSNPrintf(token, sizeof token, "%s-%ld-%d", host, (long)time(NULL), (int)getpid()));
    const char *root = st->plan ? st->plan_dir : st->dir;
    if (st->plan) ok = mkdir(st->plan_dir, 0755) == 0 || errno == EEXIST;
    PetscCall(PetscSNPrintf(claims, sizeof claims, "%s/claims", root));
    ok = ok && (mkdir(claims, 0755) == 0 || errno == EEXIST);
    PetscCall(PetscSNPrintf(claims, sizeof claims, "%s/claims/%s", root, token));
    ok = ok && mkdir(claims, 0755) == 0;
  }
  PetscCallMPI(MPI_Bcast(&ok, 1, MPI_INT, 0, st->ctx->world));
  RnInputCheck(ok, st->ctx->world, "%s/claims: cannot create the directory of this attempt's claims (%s)", st->dir, strerror(errno));
  PetscCallMPI(MPI_Bcast(claims, sizeof claims, MPI_CHAR, 0, st->ctx->world));
  PetscCall(RnCtxSetGroups(st->ctx, st->groups));
  PetscCall(RnCtxCreate(st->ctx->group, &gctx));
  gctx->seed = st->ctx->seed, gctx->verbose = st->ctx->verbose;
  gctx->progress_tty = st->groups == 1 ? st->ctx->progress_tty : PETSC_FALSE;
  for (int next = 0;;) {
    int pick = -1, stop = RnSignalPending() ? 1 : 0, any_stop;
    PetscErrorCode outcome = 0;
    if (gctx->world_rank == 0 && !stop)
      for (; next < st->npoints && pick < 0; next++) {
        const int k = st->order[next];
        if (st->points[k].selected && ToRun(&st->points[k]) && Claim(claims, &st->points[k])) pick = k;
      }
    PetscCallMPI(MPI_Bcast(&pick, 1, MPI_INT, 0, gctx->world));
    PetscCallMPI(MPI_Allreduce(&stop, &any_stop, 1, MPI_INT, MPI_MAX, gctx->world));
    if (pick < 0 || any_stop) break;
    if (gctx->world_rank == 0) printf("study: group %d %s %s\n", st->ctx->group_id, st->plan ? "measures" : "runs", st->points[pick].name), fflush(stdout);
    PetscCall(RunPoint(st, gctx, pick, argc, argv, &outcome));
    counts[outcome == 0 ? 0 : outcome == RN_ERR_PREEMPTED ? 1 : outcome == RN_ERR_NONFINITE ? 2 : 3]++;
    if (gctx->world_rank == 0 && !st->plan)
      printf("study: %s %s\n", st->points[pick].name, outcome == 0 ? "done" : outcome == RN_ERR_PREEMPTED ? "stopped (resumable: run the study again)" : outcome == RN_ERR_NONFINITE ? "failed (non-finite)" : "refused (bad input)"), fflush(stdout);
    if (outcome == RN_ERR_PREEMPTED) break;
  }
  PetscCall(RnCtxDestroy(&gctx));
  /* the groups that are done wait for the others without spinning a core */
  {
    MPI_Request req;
    int done = 0;
    const struct timespec pause = {0, (long)(RN_STUDY_POLL_SECONDS * 1e9)};
    PetscCallMPI(MPI_Ibarrier(st->ctx->world, &req));
    for (;;) {
      PetscCallMPI(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
      if (done) break;
      nanosleep(&pause, NULL);
    }
  }
  {
    int local[4], global[4];
    for (int i = 0; i < 4; i++) local[i] = st->ctx->group_rank == 0 ? counts[i] : 0;
    PetscCallMPI(MPI_Allreduce(local, global, 4, MPI_INT, MPI_SUM, st->ctx->world));
    for (int i = 0; i < 4; i++) counts[i] = global[i];
  }
  if (st->ctx->world_rank == 0) {
    char path[PETSC_MAX_PATH_LEN + 128];
    for (int k = 0; k < st->npoints; k++) {
      PetscCall(PetscSNPrintf(path, sizeof path, "%s/%s", claims, st->points[k].name));
      unlink(path);
    }
    rmdir(claims);
    /* and claims/ itself, where no other attempt's claims are left in it */
    PetscCall(PetscSNPrintf(path, sizeof path, "%s/claims", st->plan ? st->plan_dir : st->dir));
    rmdir(path);
    if (st->plan) {
      rmdir(st->plan_dir);
    }
  }
  PetscFunctionReturn(0);
}

/* --print-config: the points, their values and status; with one --point, its resolved config */
static PetscErrorCode PrintPoints(RnStudy st)
{
  PetscFunctionBeginUser;
  if (st->ctx->world_rank != 0) PetscFunctionReturn(0);
  printf("# study %s: %d point(s) in %s\n# status name values\n", st->args->path, st->npoints, st->dir);
  for (int k = 0; k < st->npoints; k++) {
    const Point *p = &st->points[k];
    if (!p->selected) continue;
    printf("%-9s %s", p->status, p->name);
    for (int i = 0; i < p->nvalues; i++) printf(" %s=%s", p->values[i].key, p->values[i].text);
    printf("\n");
  }
  fflush(stdout);
  PetscFunctionReturn(0);
}

/* Point k's resolved config (every default filled in), with its run directory */
static PetscErrorCode PrintPointConfig(RnStudy st, int k)
{
  Point *p = &st->points[k];
  RnConfig cfg;
  RnCtx vctx;
  void *options = NULL;
  char run_dir[PETSC_MAX_PATH_LEN];
  PetscBool plot;

  PetscFunctionBeginUser;
  PetscCall(PointConfig(st, st->ctx->world, k, &cfg));
  PetscCall(RnConfigSetString(cfg, "run.dir", p->dir));
  PetscCall(RnCtxCreate(st->ctx->world, &vctx));
  vctx->world_size = st->ctx->world_size / st->groups;
  PetscCall(RnAppReadCommon(vctx, cfg, &p->experiment, run_dir, sizeof run_dir, &plot));
  PetscCall(p->experiment->read_options(vctx, cfg, &options));
  PetscCall(PetscFree(options));
  vctx->world_size = st->ctx->world_size;
  PetscCall(RnCtxDestroy(&vctx));
  PetscCall(RnConfigPrint(cfg, stdout));
  PetscCall(RnConfigDestroy(&cfg));
  PetscFunctionReturn(0);
}

/* --point NAME (repeatable): only these points, each named by its name, its
 * hash's digits, or its values without the hash (which depends on every key,
 * data.dir too) where they name one point */
static PetscErrorCode SelectPoints(RnStudy st)
{
  PetscFunctionBeginUser;
  for (int k = 0; k < st->npoints; k++) st->points[k].selected = st->args->npoints ? PETSC_FALSE : PETSC_TRUE;
  for (int i = 0; i < st->args->npoints; i++) {
    const char *want = st->args->points[i];
    int found = -1, by_values = -1, nvalues = 0;
    for (int k = 0; k < st->npoints && found < 0; k++) {
      const char *hash = strrchr(st->points[k].name, '-');
      if (!strcmp(st->points[k].name, want) || (hash && !strcmp(hash + 1, want))) found = k;
      else if (hash && (size_t)(hash - st->points[k].name) == strlen(want) && !strncmp(st->points[k].name, want, strlen(want))) by_values = k, nvalues++;
    }
    RnInputCheck(found >= 0 || nvalues <= 1, st->ctx->world, "--point %s: %d points have these values; name one by its whole name (resnode-mpi %s --print-config)", want, nvalues, st->args->path);
    if (found < 0) found = by_values;
    RnInputCheck(found >= 0, st->ctx->world, "--point %s: no such point in %s (its points: resnode-mpi %s --print-config)", want, st->args->path, st->args->path);
    st->points[found].selected = PETSC_TRUE;
  }
  PetscFunctionReturn(0);
}

/* The study group's keys: a misspelt one is an error, not an ignored key */
static PetscErrorCode CheckStudyKeys(RnStudy st)
{
  PetscFunctionBeginUser;
  RnInputCheck(RnConfigKindOf(st->cfg, "study") == RN_CONFIG_GROUP, st->ctx->world, "%s: study: expected a group { axes = {...}; ... }", st->args->path);
  for (int i = 0; i < RnConfigCount(st->cfg, "study"); i++) {
    const char *name = RnConfigMemberName(st->cfg, "study", i);
    char key[RN_CONFIG_KEY_LEN];
    int known = 0, best_d = 1 << 30;
    const char *best = NULL;
    PetscCall(PetscSNPrintf(key, sizeof key, "study.%s", name));
    for (int d = 0; RnAppStudyKeys[d].key; d++) {
      const int dist = RnEditDistance(key, RnAppStudyKeys[d].key);
      known |= dist == 0;
      if (dist < best_d) best_d = dist, best = RnAppStudyKeys[d].key;
    }
    if (!known) PetscCall(RnConfigError(st->cfg, key, "not a study key%s%s%s (the study keys: resnode-mpi --keys study)", best_d <= 3 ? ": did you mean " : "", best_d <= 3 ? best : "", best_d <= 3 ? "?" : ""));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode StudyDestroy(RnStudy *st)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree((*st)->order));
  PetscCall(PetscFree((*st)->points));
  PetscCall(PetscFree(*st));
  PetscFunctionReturn(0);
}

PetscErrorCode RnAppStudy(RnCtx ctx, RnConfig study_cfg, const RnStudyArgs *args, int argc, char **argv, int *exit_code)
{
  RnStudy st;
  int nrun = 0, ndone = 0, nfailed = 0, nresume = 0, counts[4] = {0, 0, 0, 0}, norphans = 0;
  char default_dir[PETSC_MAX_PATH_LEN], orphans[8192] = "";

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&st));
  st->ctx = ctx, st->cfg = study_cfg, st->args = args;
  PetscCall(CheckStudyKeys(st));
  {
    /* runs/<the study file's name, without .cfg>: the same study finds its own directory */
    const char *base = strrchr(args->path, '/');
    PetscCall(PetscSNPrintf(default_dir, sizeof default_dir, "runs/%s", base ? base + 1 : args->path));
    if (strlen(default_dir) > 4 && !strcmp(default_dir + strlen(default_dir) - 4, ".cfg")) default_dir[strlen(default_dir) - 4] = 0;
  }
  PetscCall(RnConfigGetString(st->cfg, "study.dir", default_dir, st->dir, sizeof st->dir));
  if (!st->dir[0]) PetscCall(RnConfigError(st->cfg, "study.dir", "empty: give the study's directory, or leave study.dir out for %s", default_dir));
  PetscCall(ExpandPoints(st));
  /* every point read and validated before anything runs; the group size
   * they are read for needs the count of points to run, known after */
  PetscCall(ReadGroups(st, st->npoints));
  for (int k = 0; k < st->npoints; k++) PetscCall(ValidatePoint(st, k, ctx->world_size / st->groups));
  for (int k = 0; k < st->npoints; k++)
    for (int j = 0; j < k; j++)
      if (st->points[j].hash == st->points[k].hash)
        RnInputError(ctx->world, "%s: points %d (%s) and %d give the same configuration (keys that only say where a run goes do not tell points apart): remove one", args->path, j + 1, st->points[j].name, k + 1);
  PetscCall(SelectPoints(st));
  /* the groups take the largest points first, so that the last to finish is short */
  PetscCall(PetscMalloc1(st->npoints, &st->order));
  for (int k = 0; k < st->npoints; k++) st->order[k] = k;
  for (int i = 1; i < st->npoints; i++)
    for (int j = i; j > 0 && st->points[st->order[j]].work > st->points[st->order[j - 1]].work; j--) {
      const int t = st->order[j];
      st->order[j] = st->order[j - 1], st->order[j - 1] = t;
    }
  {
    const RnExperiment *checked[16];
    int nchecked = 0;
    for (int k = 0; k < st->npoints; k++) {
      int seen = 0;
      for (int c = 0; c < nchecked; c++) seen |= checked[c] == st->points[k].experiment;
      if (seen || nchecked == 16) continue;
      checked[nchecked++] = st->points[k].experiment;
      PetscCall(RnAppCheckPetscOptions(ctx, st->points[k].experiment));
    }
  }
  PetscCall(GatherStatus(st));
  for (int k = 0; k < st->npoints; k++) {
    const Point *p = &st->points[k];
    if (!p->selected) continue;
    if (!strcmp(p->status, "done")) ndone++;
    else if (!strcmp(p->status, "failed")) nfailed++;
    else {
      nrun++;
      nresume += strcmp(p->status, "new") != 0;
    }
  }
  if (args->print_config && args->npoints == 1) {
    /* one point: its resolved config, as a run of it would write it */
    for (int k = 0; k < st->npoints; k++)
      if (st->points[k].selected) PetscCall(PrintPointConfig(st, k));
    *exit_code = RN_EXIT_OK;
    PetscCall(StudyDestroy(&st));
    PetscFunctionReturn(0);
  }
  if (args->print_config) {
    PetscCall(PrintPoints(st));
    *exit_code = RN_EXIT_OK;
    PetscCall(StudyDestroy(&st));
    PetscFunctionReturn(0);
  }
  /* groups for the points that remain; read again for that group size */
  {
    const int validated_size = ctx->world_size / st->groups;
    PetscCall(ReadGroups(st, nrun));
    if (ctx->world_size / st->groups != validated_size)
      for (int k = 0; k < st->npoints; k++)
        if (st->points[k].selected && ToRun(&st->points[k])) PetscCall(ValidatePoint(st, k, ctx->world_size / st->groups));
  }
  if (args->plan) {
    /* every point to run measured as the study would run it (plan.c), none kept */
    const char **names;
    double *wall, *peak;
    int n = 0;
    st->plan = PETSC_TRUE;
    PetscCall(PetscSNPrintf(st->plan_dir, sizeof st->plan_dir, "%s.plan", st->dir));
    PetscCall(PetscCalloc2(st->npoints, &st->plan_wall, st->npoints, &st->plan_peak));
    PetscCall(RnLog(ctx, "plan: study %s: %d point(s) to run (%d done or failed, left out) on %d group(s) of %d rank(s), each measured as --plan measures a run\n", args->path, nrun, ndone + nfailed, st->groups, ctx->world_size / st->groups));
    if (nrun) PetscCall(RunPacked(st, argc, argv, counts));
    PetscCall(PetscMalloc3(st->npoints, &names, st->npoints, &wall, st->npoints, &peak));
    PetscCallMPI(MPI_Allreduce(st->plan_wall, wall, st->npoints, MPI_DOUBLE, MPI_MAX, ctx->world));
    PetscCallMPI(MPI_Allreduce(st->plan_peak, peak, st->npoints, MPI_DOUBLE, MPI_MAX, ctx->world));
    for (int k = 0; k < st->npoints; k++)
      if (st->points[k].selected && ToRun(&st->points[k])) names[n] = st->points[k].name, wall[n] = wall[k], peak[n] = peak[k], n++;
    PetscCall(RnAppPlanStudy(ctx, n, names, wall, peak, st->groups, ctx->world_size / st->groups));
    PetscCall(PetscFree3(names, wall, peak));
    PetscCall(PetscFree2(st->plan_wall, st->plan_peak));
    *exit_code = counts[1] ? RN_EXIT_PREEMPTED : counts[2] || counts[3] ? RN_EXIT_INPUT : RN_EXIT_OK;
    PetscCall(StudyDestroy(&st));
    PetscFunctionReturn(0);
  }
  if (ctx->world_rank == 0) {
    int ok = 1;
    char points[PETSC_MAX_PATH_LEN + 16];
    PetscCall(PetscSNPrintf(points, sizeof points, "%s/points", st->dir));
    for (char *slash = strchr(points + 1, '/'); slash && ok; slash = strchr(slash + 1, '/')) {
      *slash = 0;
      ok = mkdir(points, 0755) == 0 || errno == EEXIST;
      *slash = '/';
    }
    ok = ok && (mkdir(points, 0755) == 0 || errno == EEXIST);
    PetscCall(RnAgreeInput(ctx->world, !ok, "cannot create the study's directory"));
  } else PetscCall(RnAgreeInput(ctx->world, 0, ""));
  norphans = ctx->world_rank == 0 ? ListOrphans(st, orphans, sizeof orphans) : 0;
  PetscCall(RnLog(ctx, "study %s: %d point(s)%s in %s: %d done, %d failed before (kept; remove a directory to run it again), %d to run (%d resumed) on %d group(s) of %d rank(s)\n", args->path, args->npoints ? args->npoints : st->npoints,
                  args->npoints ? " chosen by --point" : "", st->dir, ndone, nfailed, nrun, nresume, st->groups, ctx->world_size / st->groups));
  if (norphans) PetscCall(RnLog(ctx, "study: not in the study any more (left as they are): %s\n", orphans));
  PetscCall(WriteStudyJson(st));
  if (!nrun) {
    PetscCall(RnLog(ctx, "study: nothing to do: every point is done%s; the study's analysis: resnode-study %s\n", nfailed ? " or failed" : "", st->dir));
    *exit_code = nfailed ? RN_EXIT_FAILED : RN_EXIT_OK;
    PetscCall(StudyDestroy(&st));
    PetscFunctionReturn(0);
  }
  PetscCall(RunPacked(st, argc, argv, counts));
  PetscCall(GatherStatus(st));
  if (ctx->world_rank == 0)
    for (int k = 0; k < st->npoints; k++) ReadStatus(&st->points[k]);
  PetscCall(WriteStudyJson(st));
  {
    int done = 0, failed = 0, left = 0;
    for (int k = 0; k < st->npoints; k++) {
      if (!st->points[k].selected) continue;
      if (!strcmp(st->points[k].status, "done")) done++;
      else if (!strcmp(st->points[k].status, "failed")) failed++;
      else left++;
    }
    PetscCall(RnLog(ctx, "study: %d of %d point(s) done, %d failed, %d not finished; %s/study.json; the study's analysis: resnode-study %s\n", done, args->npoints ? args->npoints : st->npoints, failed, left, st->dir, st->dir));
    if (failed && ctx->world_rank == 0)
      for (int k = 0; k < st->npoints; k++)
        if (st->points[k].selected && !strcmp(st->points[k].status, "failed")) printf("study: failed: %s: %s\n", st->points[k].name, st->points[k].reason);
    fflush(stdout);
    /* a stop first (run the study again), then what a point did wrong */
    *exit_code = counts[1] || (left && !counts[3]) ? RN_EXIT_PREEMPTED : counts[3] ? RN_EXIT_INPUT : counts[2] ? RN_EXIT_NONFINITE : failed ? RN_EXIT_FAILED : RN_EXIT_OK;
  }
  PetscCall(StudyDestroy(&st));
  PetscFunctionReturn(0);
}
