/* The CIFAR network against PyTorch, as llm.c's test_gpt2.c checks against
 * its reference: bench/torch_reference.py state writes a network's
 * parameters, inputs, labels, logits, loss and gradients (float64, batch
 * norm in training mode); this program runs the same parameters and inputs
 * through RnCifarModelPass in float64 and compares. The state file comes
 * from the environment (RN_TORCH_STATE); tests/cli/torch_reference.sh makes
 * it, or skips when python3-torch is absent. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resnode/models/cifar.h"

#define STATE_MAGIC "RNTORCH"
#define STATE_VERSION 1
#define CIFAR_PIXELS 3072
#define CIFAR_CLASSES 10
#define ODE_STEPS 4 /* the reference integrates the ODE by rk4 in 4 steps */

typedef struct {
  int C, N, batch;
  long long n;
  double *theta, *x, *logits, loss, *grad;
  int *labels;
} TorchState;

static int ReadAll(FILE *f, void *p, size_t size, size_t count) { return fread(p, size, count, f) == count; }

static int TorchStateRead(const char *path, TorchState *s)
{
  FILE *f = fopen(path, "rb");
  char magic[8];
  uint32_t version;
  int ok;
  if (!f) return 0;
  ok = ReadAll(f, magic, 1, 8) && !memcmp(magic, STATE_MAGIC, 8) && ReadAll(f, &version, 4, 1) && version == STATE_VERSION && ReadAll(f, &s->C, 4, 1) && ReadAll(f, &s->N, 4, 1) &&
       ReadAll(f, &s->batch, 4, 1) && ReadAll(f, &s->n, 8, 1);
  if (ok) {
    s->theta = malloc(sizeof(double) * s->n), s->grad = malloc(sizeof(double) * s->n);
    s->x = malloc(sizeof(double) * s->batch * CIFAR_PIXELS), s->logits = malloc(sizeof(double) * s->batch * CIFAR_CLASSES);
    s->labels = malloc(sizeof(int) * s->batch);
    ok = ReadAll(f, s->theta, 8, s->n) && ReadAll(f, s->x, 8, (size_t)s->batch * CIFAR_PIXELS) && ReadAll(f, s->labels, 4, s->batch) &&
         ReadAll(f, s->logits, 8, (size_t)s->batch * CIFAR_CLASSES) && ReadAll(f, &s->loss, 8, 1) && ReadAll(f, s->grad, 8, s->n) && fgetc(f) == EOF;
  }
  fclose(f);
  return ok;
}

/* max |a - b| / max |b| */
static double RelDiff(const double *a, const double *b, size_t n)
{
  double diff = 0, scale = 0;
  for (size_t i = 0; i < n; i++) diff = fmax(diff, fabs(a[i] - b[i])), scale = fmax(scale, fabs(b[i]));
  return diff / fmax(scale, 1e-300);
}

static void test_against_torch(void)
{
  const char *path = getenv("RN_TORCH_STATE");
  TorchState s = {0};
  RnCifarModel m;
  RnOdeOptions ode;
  double *grad, loss_sum, e_logits, e_grad, e_loss;
  int correct;

  CU_ASSERT_PTR_NOT_NULL_FATAL(path);
  CU_ASSERT_FATAL(TorchStateRead(path, &s));
  RnOdeOptionsDefault(&ode);
  strcpy(ode.solver, "rk4");
  ode.steps = ODE_STEPS;
  RN_TEST_OK(RnCifarModelCreate(PETSC_COMM_SELF, s.C, RN_ACT_RELU, s.N ? RN_FLOW_RESNET : RN_FLOW_ODE, s.N, &ode, RN_PRECISION_FLOAT64, &m));
  CU_ASSERT_EQUAL_FATAL(m.n, s.n); /* the same network, parameter for parameter */
  RN_TEST_OK(RnCifarModelReserve(&m, s.batch));
  memcpy(m.x, s.x, sizeof(double) * s.batch * CIFAR_PIXELS);
  memcpy(m.labels, s.labels, sizeof(int) * s.batch);
  grad = calloc(m.n, sizeof(double));
  RN_TEST_OK(RnCifarModelPass(&m, s.batch, s.batch, s.theta, grad, &loss_sum, &correct));
  e_logits = RelDiff(m.logits, s.logits, (size_t)s.batch * CIFAR_CLASSES);
  e_loss = fabs(loss_sum / s.batch - s.loss) / fabs(s.loss);
  e_grad = RelDiff(grad, s.grad, (size_t)s.n);
  printf("\n    %s, C = %d, batch %d, %lld parameters: logits %.1e, loss %.1e, gradient %.1e (relative, against PyTorch) ", s.N ? "tied ResNet" : "ODE rk4", s.C, s.batch, s.n, e_logits, e_loss, e_grad);
  if (s.N) printf("N = %d ", s.N);
  CU_ASSERT(e_logits < 1e-10);
  CU_ASSERT(e_loss < 1e-12);
  CU_ASSERT(e_grad < 1e-9);
  free(grad);
  free(s.theta), free(s.grad), free(s.x), free(s.logits), free(s.labels);
  RnCifarModelDestroy(&m);
}

static void Register(void) { RnTestAddSuite("torch", "against_torch", test_against_torch, NULL); }

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
