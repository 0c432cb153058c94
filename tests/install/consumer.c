/* A program of someone else's built against an installed resnode: its own
 * main around the library's (every layer linked), and a call into the core. */
#include "resnode/app/app.h"
#include "resnode/core/rng.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
  const uint32_t counter[4] = {0, 0, 0, 0};
  uint32_t out[4];

  if (argc > 1 && !strcmp(argv[1], "--philox")) {
    RnPhilox4x32(0, counter, out);
    printf("philox %08x\n", out[0]); /* Random123's known answer: 6627e8d5 */
    return 0;
  }
  return RnMain(argc, argv);
}
