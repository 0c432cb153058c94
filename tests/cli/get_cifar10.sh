#!/usr/bin/env bash
# scripts/get-cifar10 without the network: a usage error, and a complete data
# set (sparse files of the right size) that it accepts with a hint that names
# the directory absolute, which a run from another directory then finds.
. "$(dirname "$0")/lib.sh"
GET="$SRC/scripts/get-cifar10"
"$GET" > "$TMP/o" 2>&1; status=$?
[ "$status" -eq 2 ] && grep -q "usage: scripts/get-cifar10 DIR" "$TMP/o" && ok "usage error, exit 2" || bad "no usage error (exit $status): $(cat "$TMP/o")"
mkdir -p "$TMP/here/d/cifar-10-batches-bin"
for f in data_batch_1 data_batch_2 data_batch_3 data_batch_4 data_batch_5 test_batch; do truncate -s 30730000 "$TMP/here/d/cifar-10-batches-bin/$f.bin"; done
(cd "$TMP/here" && "$GET" d > "$TMP/o" 2>&1); status=$?
[ "$status" -eq 0 ] && ok "a complete set is accepted" || bad "exit $status: $(cat "$TMP/o")"
grep -qF "use --set data.dir=\\\"$TMP/here/d/cifar-10-batches-bin\\\"" "$TMP/o" && ok "the hint names the directory absolute" || bad "hint: $(cat "$TMP/o")"
truncate -s 5000 "$TMP/here/d/cifar-10-batches-bin/test_batch.bin"
(cd "$TMP/here" && timeout 60 "$GET" d > "$TMP/o" 2>&1); status=$?
[ "$status" -ne 0 ] && ! grep -q "already complete" "$TMP/o" && ok "a truncated file is not taken for a complete set (exit $status)" || bad "truncated set accepted: $(cat "$TMP/o")"
finish
