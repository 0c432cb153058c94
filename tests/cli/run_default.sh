#!/usr/bin/env bash
# scripts/run-default, the README's first command, as a user runs it (the
# set-up is already done here, so install-deps and build find nothing to do):
# the embedded default job on 2 ranks, then the analysis command its last
# line names, which draws node-fit.png. Shrunk: --set after it.
. "$(dirname "$0")/lib.sh"
(cd "$SRC" && timeout 600 scripts/run-default --set train.iterations=40 --set "run.dir=\"$TMP/default\"") > "$TMP/out.txt" 2>&1
status=$? err=$TMP/out.txt
expect_status 0 "scripts/run-default"
grep -q '"status": "done"' "$TMP/default/manifest.json" && ok "the default job ran to the end" || bad "manifest: $(grep status "$TMP/default/manifest.json")"
grep -q "^run-default: .*resnode-plot-node-fit $TMP/default" "$TMP/out.txt" && ok "it ran the analysis command the job named" || bad "no analysis step: $(tail -3 "$TMP/out.txt")"
expect_file "$TMP/default/node-fit.png" "node-fit.png, drawn after the job"
finish
