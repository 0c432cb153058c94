#!/usr/bin/env bash
# bench/bitwise-configs.sh, as the README shows it: the binary against itself
# gives the configs tried the same, bit for bit; against itself with another seed
# (a wrapper that appends --set seed=2), the configs tried differ and it exits 1.
. "$(dirname "$0")/lib.sh"
export RN_MAKE_CIFAR
# four of the eight configs (every experiment kind but identity and annulus):
# the eight against the binary before a refactoring are the session's check
RN_BITWISE_CONFIGS="node-fit ensemble cifar cifar-untied" "$SRC/bench/bitwise-configs.sh" "$BIN" "$BIN" > "$TMP/same.txt" 2>&1
st=$?
same=$(grep -c ': same (' "$TMP/same.txt")
[ $st -eq 0 ] && [ "$same" -eq 4 ] && ok "the binary against itself: 4 configs the same" || bad "against itself: exit $st, $(cat "$TMP/same.txt")"
printf '#!/bin/sh\nexec "%s" "$@" --set seed=2\n' "$BIN" > "$TMP/seed2"
chmod +x "$TMP/seed2"
RN_BITWISE_CONFIGS="node-fit cifar" "$SRC/bench/bitwise-configs.sh" "$BIN" "$TMP/seed2" > "$TMP/diff.txt" 2>&1
st=$?
different=$(grep -c ': DIFFERENT: ' "$TMP/diff.txt")
[ $st -eq 1 ] && [ "$different" -eq 2 ] && ok "another seed: both configs tried named DIFFERENT ($(grep -m1 DIFFERENT "$TMP/diff.txt" | cut -c1-100))" || bad "another seed: exit $st, $(cat "$TMP/diff.txt")"
finish
