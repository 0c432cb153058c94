/* The learning rate over epochs: the step schedule and the plateau reducer
 * against hand-computed sequences, a reducer continued from a copy of its
 * state (a checkpoint), and the keys the schedule replaced. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "resnode/nn/optim.h"

static PetscErrorCode Quiet(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  if (p == PETSC_ERROR_INITIAL) snprintf((char *)ctx, 1024, "%s", mess);
  return n;
}

static PetscErrorCode Load(const char *text, RnLrSchedule *s, char *message)
{
  RnConfig cfg;
  PetscErrorCode err;
  message[0] = 0;
  PetscCall(RnConfigCreate(PETSC_COMM_WORLD, &cfg));
  PetscCall(RnConfigLoadString(cfg, "<test>", text));
  PetscCall(PetscPushErrorHandler(Quiet, message));
  err = RnLrScheduleFromConfig(cfg, "train", s);
  PetscCall(PetscPopErrorHandler());
  PetscCall(RnConfigDestroy(&cfg));
  return err;
}

/* The authors' schedule: lr 1e-3 x factor after epochs 81, 121, 161, 181. */
static void test_steps(void)
{
  RnLrSchedule s;
  char msg[1024];
  const int epoch[] = {1, 81, 82, 121, 122, 161, 162, 181, 182, 200};
  const double expect[] = {1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5, 1e-6, 1e-6, 5e-7, 5e-7};

  RN_TEST_OK(Load("train = { lr_schedule = { epochs = [81, 121, 161, 181]; factors = [1e-1, 1e-2, 1e-3, 0.5e-3]; }; };", &s, msg));
  for (int i = 0; i < 10; i++) CU_ASSERT(fabs(RnLrAt(&s, NULL, 1e-3, epoch[i]) - expect[i]) < 1e-18);
  /* no schedule: the base rate throughout */
  RN_TEST_OK(Load("train = { };", &s, msg));
  CU_ASSERT_EQUAL(RnLrAt(&s, NULL, 2e-3, 500), 2e-3);
}

/* ReduceLROnPlateau on a loss: factor 1/2, patience 2, min_lr 1e-4. */
static void test_plateau(void)
{
  RnLrSchedule s;
  RnPlateauState st, copy;
  char msg[1024];
  const double loss[14] = {1.0, 0.9, 0.95, 0.92, 0.91, 0.93, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2};
  /* by hand: a cut after epochs 4, 6, 9, 11 (to the floor); none after 13 (at the floor) */
  const double expect[14] = {1e-3, 1e-3, 1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4, 2.5e-4, 2.5e-4, 1.25e-4, 1.25e-4, 1e-4, 1e-4, 1e-4};
  int cuts = 0;

  RN_TEST_OK(Load("train = { plateau = { enable = true; factor = 0.5; patience = 2; min_lr = 1e-4; }; };", &s, msg));
  CU_ASSERT_EQUAL(s.metric, RN_METRIC_VAL_LOSS);
  RnPlateauStart(&st);
  for (int e = 1; e <= 14; e++) {
    PetscBool reduced;
    CU_ASSERT(fabs(RnLrAt(&s, &st, 1e-3, e) - expect[e - 1]) < 1e-15);
    RnPlateauUpdate(&s, &st, 1e-3, e, loss[e - 1], &reduced);
    cuts += reduced;
    if (e == 6) {
      /* resumed here from a checkpoint: the state is flat bytes */
      memcpy(&copy, &st, sizeof st);
      memset(&st, 0xff, sizeof st);
      memcpy(&st, &copy, sizeof st);
    }
  }
  CU_ASSERT_EQUAL(cuts, 4);
  /* an accuracy improves upwards; and with the schedule, the cuts multiply it */
  RN_TEST_OK(Load("train = { lr_schedule = { epochs = [2]; factors = [0.1]; }; plateau = { enable = true; metric = \"val_acc\"; factor = 0.5; patience = 1; min_lr = 0.0; }; };", &s, msg));
  RnPlateauStart(&st);
  {
    const double acc[4] = {0.5, 0.6, 0.6, 0.7}, rate[4] = {1e-3, 1e-3, 1e-4, 0.5e-4};
    for (int e = 1; e <= 4; e++) {
      PetscBool reduced;
      CU_ASSERT(fabs(RnLrAt(&s, &st, 1e-3, e) - rate[e - 1]) < 1e-18);
      RnPlateauUpdate(&s, &st, 1e-3, e, acc[e - 1], &reduced);
      CU_ASSERT_EQUAL(reduced, e == 3);
    }
  }
}

static void test_config_errors(void)
{
  RnLrSchedule s;
  char msg[1024];
  CU_ASSERT_EQUAL(Load("train = { lr_decay = 0.1; };", &s, msg), RN_ERR_INPUT);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "train.lr_decay: replaced by train.lr_schedule"));
  CU_ASSERT_EQUAL(Load("train = { lr_schedule = { epochs = [5, 3]; factors = [0.1, 0.01]; }; };", &s, msg), RN_ERR_INPUT);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "must increase: 3 follows 5"));
  CU_ASSERT_EQUAL(Load("train = { lr_schedule = { epochs = [5]; factors = [0.1, 0.01]; }; };", &s, msg), RN_ERR_INPUT);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "2 factors for 1 epochs"));
}

static void Register(void) { RnTestAddSuite("schedule", "steps", test_steps, "plateau", test_plateau, "config_errors", test_config_errors, NULL); }

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
