#!/usr/bin/env bash
# Runs killed_partner_main with 2 ranks under mpirun (rank 0 is killed mid-exchange) and checks that
# the survivor reported a timeout within 2x the 3 s timeout and kept its previous replica intact.
#   killed_partner.sh MPIRUN_AND_FLAGS... -- PROGRAM
set -uo pipefail
launcher=()
while [ "$1" != "--" ]; do launcher+=("$1"); shift; done
shift
program=$1
dir=$(mktemp -d "${TMPDIR:-/tmp}/stagekit-killed-partner-XXXXXX")
trap 'rm -rf "$dir"' EXIT
# The survivor reports within seconds; mpirun itself sometimes lingers after the killed rank (its
# recovery mode), so it gets 30 s: what matters is what the survivor printed.
out=$(timeout 30 "${launcher[@]}" --mca orte_enable_recovery 1 -np 2 "$program" "$dir" 2>&1)
echo "$out"
status=0
line=$(grep '^survivor: timeout after' <<<"$out" | head -1)
if [[ ! "$line" =~ ^survivor:\ timeout\ after\ ([0-9]+)\ ms ]]; then
  echo "FAILED: the survivor did not report a timeout error: '${line:-no line}'" >&2
  status=1
elif (( BASH_REMATCH[1] > 6000 )); then
  echo "FAILED: the survivor gave up only after ${BASH_REMATCH[1]} ms (timeout 3000 ms)" >&2
  status=1
fi
grep -q '^survivor: replica intact$' <<<"$out" || { echo "FAILED: the survivor's replica was not intact" >&2; status=1; }
if grep -q 'FAILED' <<<"$out"; then status=1; fi
[ $status = 0 ] && echo "killed partner: the survivor got a timeout error and kept its previous replica"
exit $status
