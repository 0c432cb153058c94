/* The core layer against independent references: Philox4x32-10 against the
 * known-answer vectors of Random123 (Salmon et al.'s kat_vectors, whose
 * "philox4x32 10" lines are counter, key, expected output), the
 * checkpoint format written, damaged and read back, and the profile's
 * tallies against busy-waits of known length. */
#include "testutil.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "resnode/core/checkpoint.h"
#include "resnode/core/profile.h"
#include "resnode/core/rng.h"

/* Random123's kat_vectors, the three philox4x32 10 lines */
static const struct {
  uint32_t counter[4], key[2], expected[4];
} philox_kat[] = {
  {{0x00000000, 0x00000000, 0x00000000, 0x00000000}, {0x00000000, 0x00000000}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
  {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}, {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
  {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}, {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
};

static void test_philox_known_answers(void)
{
  for (size_t k = 0; k < sizeof philox_kat / sizeof philox_kat[0]; k++) {
    uint32_t out[4];
    /* the key's first word is the low half of our 64-bit key */
    const uint64_t key = (uint64_t)philox_kat[k].key[0] | (uint64_t)philox_kat[k].key[1] << 32;
    RnPhilox4x32(key, philox_kat[k].counter, out);
    for (int i = 0; i < 4; i++) CU_ASSERT_EQUAL(out[i], philox_kat[k].expected[i]);
    if (rn_test_rank == 0) printf("\n    vector %zu: %08x %08x %08x %08x ", k, out[0], out[1], out[2], out[3]);
  }
}

#define FIELD_REPLICATED 5
#define FIELD_OWNED 7

typedef struct {
  RnCtx ctx;
  RnRunDir rd;
  RnCheckpointer ck;
  double replicated[FIELD_REPLICATED];
  long long owned[FIELD_OWNED];
} CheckpointRun;

/* A run directory with two fields: one replicated (owner rank 0), one held
 * by the last rank. */
static void CheckpointRunOpen(const char *dir, PetscBool resume, CheckpointRun *r)
{
  RnCheckpointOptions opt = {0, 0.0, 2};
  char *argv[] = {"test_core", NULL};
  memset(r, 0, sizeof *r);
  RN_TEST_OK(RnCtxCreate(PETSC_COMM_WORLD, &r->ctx));
  RN_TEST_OK(RnRunDirCreate(r->ctx, dir, "test", 1, argv, resume, &r->rd));
  RN_TEST_OK(RnCheckpointerCreate(r->ctx, r->rd, &opt, &r->ck));
  RN_TEST_OK(RnCheckpointerAddField(r->ck, "replicated", r->replicated, sizeof r->replicated, 0));
  RN_TEST_OK(RnCheckpointerAddField(r->ck, "owned", r->owned, sizeof r->owned, rn_test_size - 1));
}

static void CheckpointRunClose(CheckpointRun *r)
{
  RN_TEST_OK(RnCheckpointerDestroy(&r->ck));
  RN_TEST_OK(RnRunDirDestroy(&r->rd));
  RN_TEST_OK(RnCtxDestroy(&r->ctx));
}

static void Fill(CheckpointRun *r, int step)
{
  for (int i = 0; i < FIELD_REPLICATED; i++) r->replicated[i] = step + 0.25 * i;
  for (int i = 0; i < FIELD_OWNED; i++) r->owned[i] = 1000LL * step + i;
}

static int Matches(const CheckpointRun *r, int step)
{
  int ok = 1;
  for (int i = 0; i < FIELD_REPLICATED; i++) ok &= r->replicated[i] == step + 0.25 * i;
  if (rn_test_rank == rn_test_size - 1)
    for (int i = 0; i < FIELD_OWNED; i++) ok &= r->owned[i] == 1000LL * step + i;
  return ok;
}

/* Flips one byte of a file at offset from its end (rank 0 only). */
static void DamageByte(const char *path, long from_end)
{
  if (rn_test_rank == 0) {
    FILE *f = fopen(path, "r+b");
    int c;
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fseek(f, -from_end, SEEK_END);
    c = fgetc(f);
    fseek(f, -from_end, SEEK_END);
    fputc(c ^ 0x5a, f);
    fclose(f);
  }
  MPI_Barrier(PETSC_COMM_WORLD);
}

/* A resume of the run in dir restores the state of step `expected`. */
static void ExpectRestore(const char *dir, int expected)
{
  CheckpointRun r;
  long long step;

  CheckpointRunOpen(dir, PETSC_TRUE, &r);
  RN_TEST_OK(RnCheckpointerRestore(r.ck, LLONG_MAX, "test", &step));
  CU_ASSERT_EQUAL(step, expected);
  CU_ASSERT(Matches(&r, expected));
  CheckpointRunClose(&r);
}

/* Written at steps 4 and 9, read back into zeroed fields: the newest. With a
 * byte of step 9's owned field damaged: step 4, the damaged one skipped. With
 * step 4's head damaged too: an input error (no usable checkpoint). */
static void test_checkpoint_roundtrip(void)
{
  char dir[256], path[300];
  CheckpointRun r;
  long long step;

  RnTestTempDir("rn-ckpt", dir, sizeof dir);
  CheckpointRunOpen(dir, PETSC_FALSE, &r);
  Fill(&r, 4);
  RN_TEST_OK(RnCheckpointerWrite(r.ck, 4));
  Fill(&r, 9);
  RN_TEST_OK(RnCheckpointerWrite(r.ck, 9));
  CheckpointRunClose(&r);

  ExpectRestore(dir, 9);

  snprintf(path, sizeof path, "%s/checkpoints/ckpt-000000000009.bin", dir);
  DamageByte(path, 3); /* the owned field's bytes come last */
  ExpectRestore(dir, 4);

  snprintf(path, sizeof path, "%s/checkpoints/ckpt-000000000004.bin", dir);
  {
    FILE *f = rn_test_rank == 0 ? fopen(path, "r+b") : NULL;
    if (rn_test_rank == 0) {
      CU_ASSERT_PTR_NOT_NULL_FATAL(f);
      fputc('X', f); /* the magic */
      fclose(f);
    }
    MPI_Barrier(PETSC_COMM_WORLD);
  }
  CheckpointRunOpen(dir, PETSC_TRUE, &r);
  CU_ASSERT_EQUAL(RnCheckpointerRestore(r.ck, LLONG_MAX, "test", &step), RN_ERR_INPUT);
  CheckpointRunClose(&r);
  if (rn_test_rank == 0) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CU_ASSERT_EQUAL(RnTestSystem(cmd), 0);
  }
}

/* Busy for at least `seconds` (a clock, not a sleep: the time is the event's). */
static void Busy(double seconds)
{
  const double until = RnWallTime() + seconds;
  while (RnWallTime() < until) {
  }
}

#define BUSY_S 0.01

/* Nested events: the outer's own time excludes the inner's, totals include
 * them, own times sum to the time covered; an event left open (an error
 * unwinding) is closed by the end of the one enclosing it; the JSON over the
 * ranks says the same, and the flops of the innermost event reach the outer. */
static void test_profile_tallies(void)
{
  RnProfileMark start, now;
  char json[8192];
  double t0, t1;

  RN_TEST_OK(RnProfileRegister());
  RnProfileMarkNow(&start);
  t0 = RnWallTime();
  RN_TEST_OK(RnEventBegin(RN_EV_ODE_SOLVE));
  Busy(BUSY_S);
  RN_TEST_OK(RnEventBegin(RN_EV_ODE_RHS));
  Busy(2 * BUSY_S);
  RN_TEST_OK(RnProfileFlops(1000.0));
  RN_TEST_OK(RnEventEnd(RN_EV_ODE_RHS));
  RN_TEST_OK(RnEventBegin(RN_EV_NET_FORWARD)); /* left open: closed with its enclosing solve */
  Busy(BUSY_S);
  RN_TEST_OK(RnEventEnd(RN_EV_ODE_SOLVE));
  t1 = RnWallTime();
  RnProfileMarkNow(&now);
  CU_ASSERT_EQUAL(now.count[RN_EV_ODE_SOLVE] - start.count[RN_EV_ODE_SOLVE], 1);
  CU_ASSERT_EQUAL(now.count[RN_EV_ODE_RHS] - start.count[RN_EV_ODE_RHS], 1);
  CU_ASSERT_EQUAL(now.count[RN_EV_NET_FORWARD] - start.count[RN_EV_NET_FORWARD], 1);
  {
    const double solve_total = now.total[RN_EV_ODE_SOLVE] - start.total[RN_EV_ODE_SOLVE], solve_self = now.self[RN_EV_ODE_SOLVE] - start.self[RN_EV_ODE_SOLVE];
    const double rhs = now.self[RN_EV_ODE_RHS] - start.self[RN_EV_ODE_RHS], net = now.self[RN_EV_NET_FORWARD] - start.self[RN_EV_NET_FORWARD];
    CU_ASSERT(solve_total >= 4 * BUSY_S && solve_total <= t1 - t0);
    CU_ASSERT(rhs >= 2 * BUSY_S && net >= BUSY_S && solve_self >= BUSY_S);
    CU_ASSERT_DOUBLE_EQUAL(solve_self + rhs + net, solve_total, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(now.flops[RN_EV_ODE_RHS] - start.flops[RN_EV_ODE_RHS], 1000.0, 0.0);
    CU_ASSERT_DOUBLE_EQUAL(now.flops[RN_EV_ODE_SOLVE] - start.flops[RN_EV_ODE_SOLVE], 1000.0, 0.0);
  }
  RN_TEST_OK(RnProfileJSON(PETSC_COMM_WORLD, &start, json, sizeof json));
  if (rn_test_rank == 0) {
    char want[64];
    snprintf(want, sizeof want, "\"ranks\": %d", rn_test_size);
    CU_ASSERT_PTR_NOT_NULL(strstr(json, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"RnOdeRHS\": {\"count\": 1, "));
    snprintf(want, sizeof want, "\"mflop\": %g", 1000.0 * rn_test_size / 1e6);
    CU_ASSERT_PTR_NOT_NULL(strstr(strstr(json, "\"RnOdeRHS\""), want));
    CU_ASSERT_PTR_NULL(strstr(json, "RnConvFwd")); /* no call, not listed */
  } else CU_ASSERT_STRING_EQUAL(json, "");
}

static void Register(void)
{
  RnTestAddSuite("core", "philox_known_answers", test_philox_known_answers, "checkpoint_roundtrip", test_checkpoint_roundtrip, "profile_tallies", test_profile_tallies, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
