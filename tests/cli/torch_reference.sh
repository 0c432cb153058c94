#!/usr/bin/env bash
# The CIFAR network in float64 against PyTorch's (tests/test_torch.c): a tied
# ResNet and the ODE, from state files bench/torch_reference.py writes. Needs
# python3-torch; without it, one "skipped:" line.
. "$(dirname "$0")/lib.sh"
py=$(python_with torch)
if [ -z "$py" ]; then
  echo "skipped: no Python 3 here imports torch (apt-get install python3-torch runs this test)"
  exit 0
fi
for case in "4 3 6" "3 0 4"; do
  set -- $case
  state=$TMP/state-C$1-N$2.bin
  if "$py" "$SRC/bench/torch_reference.py" state "$state" "$1" "$2" "$3" > "$TMP/torch.log" 2>&1; then
    ok "bench/torch_reference.py state: $(cat "$TMP/torch.log")"
  else
    bad "bench/torch_reference.py state failed: $(cat "$TMP/torch.log")"
    continue
  fi
  if RN_TORCH_STATE=$state "${RN_TEST_TORCH:?}" > "$TMP/c.log" 2>&1; then
    ok "$(grep 'against PyTorch' "$TMP/c.log" | sed 's/^ *//; s/ *passed$//')"
  else
    bad "test_torch on C = $1, N = $2: $(grep -E 'against PyTorch|FAILED|[0-9]+\. ' "$TMP/c.log")"
  fi
done
finish
