/* A library whose constructor raises SIGUSR1: preloaded into the binary
 * (LD_PRELOAD), it is a preemption notice that arrives while the program's
 * libraries start, before main (test hardening). */
#include <signal.h>

__attribute__((constructor)) static void RaiseNotice(void) { raise(SIGUSR1); }
