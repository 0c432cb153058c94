#!/usr/bin/env bash
# A study (a study file: docs/studies.md) as one Slurm array: a task a point
# (or POINTS_PER_TASK points a task), and the study's analysis
# (resnode-study) after the array succeeds; then exits (no watcher):
#   jobs/slurm/study.sh STUDY.cfg [--set ...]
# Run again, it submits only the points that are neither done nor failed nor
# queued or running (squeue), and says which are which; an analysis job of an
# earlier call that still waits is replaced by one that waits for every
# array of the study still queued. The shape of a task comes from
# RESNODE_SBATCH_OPTS (e.g. "--ntasks=8 --time=2:00:00"), else Slurm's default
# of one task; a task's points run packed on its ranks. Each point's job is
# recorded in STUDY_DIR/slurm/<point>.job.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export RESNODE_HOME=${RESNODE_HOME:-$(cd "$here/../.." && pwd)}
. "$here/locate.sh"
[ $# -ge 1 ] || { echo "usage: $0 STUDY.cfg [--set ...]" >&2; exit 2; }
study=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
shift
per_task=${POINTS_PER_TASK:-1}
case $per_task in '' | *[!0-9]* | 0) echo "study.sh: POINTS_PER_TASK=$per_task: give a positive number of points a task" >&2; exit 2 ;; esac
[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# the points and their status, validated (an error in the study is named here, before anything is queued)
listing=$("$RESNODE_BIN" "$study" "$@" --print-config) || exit $?
dir=$(echo "$listing" | sed -n '1s/^# study .*: [0-9]* point(s) in \(.*\)$/\1/p')
[ -n "$dir" ] || { echo "study.sh: could not read the study's directory from: $(echo "$listing" | head -1)" >&2; exit 1; }
mkdir -p "$dir/slurm"
queued_ids=$(squeue -h -r -o %i 2> /dev/null | tr '\n' ' ')
todo=() done_n=0 failed_n=0 queued_n=0
while read -r status name _; do
  case $status in
    done) done_n=$((done_n + 1)); continue ;;
    failed) failed_n=$((failed_n + 1)); echo "study.sh: $name failed before (kept; remove $dir/points/$name to run it again)"; continue ;;
  esac
  job=$(cat "$dir/slurm/$name.job" 2> /dev/null || true)
  if [ -n "$job" ] && [[ " $queued_ids " == *" $job "* ]]; then
    queued_n=$((queued_n + 1))
    echo "study.sh: $name is queued or running (job $job)"
    continue
  fi
  todo+=("$name")
done < <(echo "$listing" | grep -v '^#')
if [ ${#todo[@]} -eq 0 ]; then
  echo "study.sh: nothing to submit: $done_n done, $failed_n failed, $queued_n queued or running"
  exit 0
fi
# the task lines: POINTS_PER_TASK names each
stamp=$(date +%Y%m%d-%H%M%S)-$$
list=$dir/slurm/points-$stamp.txt
: > "$list"
for ((i = 0; i < ${#todo[@]}; i += per_task)); do echo "${todo[@]:i:per_task}" >> "$list"; done
tasks=$(wc -l < "$list")
array=$(STUDY_POINTS_FILE=$list sbatch --parsable ${RESNODE_SBATCH_OPTS:-} --array=0-$((tasks - 1)) "$here/study.sbatch" "$study" "$@")
array=${array%%;*}
task=0
while read -r line; do
  for name in $line; do echo "${array}_$task" > "$dir/slurm/$name.job"; done
  task=$((task + 1))
done < "$list"
# the analysis: after this array succeeds, and after the study's other arrays still queued end
after="afterok:$array"
for old in $(cat "$dir/slurm/"*.job 2> /dev/null | sed 's/_.*//' | sort -u); do
  [ "$old" != "$array" ] && [[ " $queued_ids " == *" ${old}_"* ]] && after="$after,afterany:$old"
done
previous=$(cat "$dir/slurm/analysis.job" 2> /dev/null || true)
if [ -n "$previous" ] && [[ " $queued_ids " == *" $previous "* ]]; then
  scancel "$previous" 2> /dev/null && echo "study.sh: the earlier analysis job $previous (which waited for an array that cannot succeed any more) is replaced"
fi
analysis=$(sbatch --parsable ${RESNODE_SBATCH_OPTS:-} --ntasks=1 --dependency="$after" "$here/study-analysis.sbatch" "$dir")
analysis=${analysis%%;*}
echo "$analysis" > "$dir/slurm/analysis.job"
echo "submitted: study array $array (${#todo[@]} point(s) in $tasks task(s)), analysis $analysis; $done_n done, $failed_n failed, $queued_n queued or running before"
