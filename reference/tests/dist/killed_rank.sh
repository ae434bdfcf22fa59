#!/usr/bin/env bash
# Runs killed_rank_main under mpirun with N ranks (the last one kills itself) and checks that every
# survivor reported a timeout error naming the dead rank within 2x the 3 s timeout.
#   killed_rank.sh MPIRUN_AND_FLAGS... -- PROGRAM N
set -uo pipefail
launcher=()
while [ "$1" != "--" ]; do launcher+=("$1"); shift; done
shift
program=$1 n=$2
out=$(timeout 30 "${launcher[@]}" --mca orte_enable_recovery 1 -np "$n" "$program" 2>&1)
echo "$out"
status=0
for ((r = 0; r < n - 1; ++r)); do
  line=$(grep "^rank $r: " <<<"$out" | head -1)
  if [[ ! "$line" =~ ^rank\ $r:\ timeout\ after\ ([0-9]+)\ ms:.*rank\(s\)\ $((n - 1))\ did\ not\ arrive ]]; then
    echo "FAILED: rank $r did not report a timeout naming rank $((n - 1)): '${line:-no line}'" >&2
    status=1
  elif (( BASH_REMATCH[1] > 6000 )); then
    echo "FAILED: rank $r gave up only after ${BASH_REMATCH[1]} ms (timeout 3000 ms)" >&2
    status=1
  fi
done
[ $status = 0 ] && echo "killed rank: every survivor got a timeout error within the timeout"
exit $status
