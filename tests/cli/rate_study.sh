#!/usr/bin/env bash
# scripts/cifar-rate-study (docs/cifar-rate.md), shrunk by RESNODE_SHRINK, on
# generated images: its runs, their analyses and the summary; a second call
# keeps the runs it finds done; bad arguments are named.
. "$(dirname "$0")/lib.sh"
PY=$(python_with matplotlib)
[ "$PY" = /usr/bin/python3 ] || { echo "skipped: /usr/bin/python3 has no numpy and matplotlib"; exit 0; }
"${RN_MAKE_CIFAR:?RN_MAKE_CIFAR not set}" "$TMP/images" 60 || bad "could not generate data"
export RESNODE_RANKS=1 RESNODE_SHRINK="--set data.max_train=60 --set model.channels=2 --set ensemble.members=4 --set ensemble.depths=[2,4] --set sgd.steps=4 --set sgd.record_every=2 --set sgd.eval_batch=60 --set ode.steps=1 --set sgd.batch=8"
# the study finds the binary in SOURCE/build: a tree laid out like a clone
mkdir -p "$TMP/clone"
for d in scripts configs analysis; do ln -s "$SRC/$d" "$TMP/clone/$d"; done
ln -s "$(dirname "$BIN")" "$TMP/clone/build"
"$TMP/clone/scripts/cifar-rate-study" "$TMP/images" "$TMP/study" > "$TMP/study.out" 2>&1
status=$?
[ $status -eq 0 ] && ok "the study runs (shrunk)" || bad "the study: exit $status, $(tail -5 "$TMP/study.out")"
for r in relu-s1 relu-s2 softplus-s1 softplus-s2 relu-s1-float64 softplus-s1-float64; do
  grep -q '"status": "done"' "$TMP/study/$r/manifest.json" 2> /dev/null && ok "run $r done" || bad "run $r: $(tail -3 "$TMP/study/$r.log" 2> /dev/null)"
done
grep -q "softplus" "$TMP/study/softplus-s1/config.cfg" && ok "the smooth runs use softplus" || bad "config: $(grep activation "$TMP/study/softplus-s1/config.cfg")"
expect_file "$TMP/study/rate-study.png" "the summary figure"
rows=$(grep -c '^| \(relu\|softplus\) | [12] | 4 | ' "$TMP/study/rate-study.md")
[ "$rows" -eq 12 ] && ok "the summary has 2 activations x 2 seeds x 3 rates" || bad "rate-study.md: $rows rows; $(head -12 "$TMP/study/rate-study.md")"
[ -f "$TMP/study/relu-s1/convergence-rounding.csv" ] && awk -F, 'NR == 2 { exit !($2 > 0 && $2 < $3) }' "$TMP/study/relu-s1/convergence-rounding.csv" \
  && ok "the rounding floor from the float64 run, below s_theta: $(sed -n 2p "$TMP/study/relu-s1/convergence-rounding.csv")" || bad "no rounding floor"
"$TMP/clone/scripts/cifar-rate-study" "$TMP/images" "$TMP/study" > "$TMP/again.out" 2>&1
[ $? -eq 0 ] && [ "$(grep -c 'is done' "$TMP/again.out")" -eq 6 ] && ok "a second call keeps the 6 runs" || bad "second call: $(cat "$TMP/again.out")"
"$TMP/clone/scripts/cifar-rate-study" "$TMP/nowhere" "$TMP/s2" > "$TMP/bad.out" 2>&1
[ $? -eq 2 ] && grep -q "nowhere has no data_batch_1.bin" "$TMP/bad.out" && ok "a missing data directory: exit 2, named" || bad "missing data: $(cat "$TMP/bad.out")"
/usr/bin/python3 "$SRC/analysis/rate-study" "$TMP/images" > "$TMP/bad2.out" 2>&1
[ $? -eq 2 ] && grep -q "no <activation>-s<seed> run directories" "$TMP/bad2.out" && ok "rate-study on a directory without runs: exit 2" || bad "rate-study: $(cat "$TMP/bad2.out")"
finish
