#!/usr/bin/env bash
# A member's trajectory does not depend on the number of ranks: with every
# member in a one-rank group, 1, 2 and 3 ranks (oversubscribed) write
# bitwise identical snapshots; and every result table is the same file.
. "$(dirname "$0")/lib.sh"
small=(--set ensemble.members=6 --set 'ensemble.depths=[2, 8]' --set sgd.steps=30 --set output.plot=false)
for np in 1 2 3; do
  rn $np "$SRC/configs/ensemble.cfg" "${small[@]}" --set parallel.groups=$np --set "run.dir=\"$TMP/np$np\""
  expect_status 0 "ensemble on $np rank(s)"
done
n=0
for f in "$TMP"/np1/snapshots/theta-*.bin; do
  name=$(basename "$f")
  for np in 2 3; do
    if cmp -s "$f" "$TMP/np$np/snapshots/$name"; then n=$((n + 1)); else bad "$name differs between 1 and $np ranks"; fi
  done
done
[ "$n" -eq 36 ] && ok "all 18 member trajectories bitwise identical on 1, 2 and 3 ranks" || bad "only $n of 36 comparisons identical"
# every result table is the same file whatever the layout (no group column, no grid-dependent rounding noise)
for f in records.csv stats.csv sup.csv rates.csv laws.csv spectrum.csv; do
  for np in 2 3; do
    cmp -s "$TMP/np1/$f" "$TMP/np$np/$f" && ok "$f identical on 1 and $np ranks" || bad "$f differs between 1 and $np ranks: $(diff "$TMP/np1/$f" "$TMP/np$np/$f" | head -4)"
  done
done
finish
