#!/usr/bin/env bash
# bench/merge.ts's throughput measurements on a GPU machine, which has no node: the same generated 1.1 GB of fp32
# checkpoints, the same plain read, the same merge specs, through `python runtime/node/bench/merge_bench.py`, on every
# core and on two (taskset, like the CI machines). JSON lines in $OUT.
#   bash runtime/node/bench/device_merge.sh    (CORES="all 2" by default; REPS=2 runs of each; SHAPE="64 2 128 1000" to try it)
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT="${OUT:-/tmp/device-merge}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/runtime/node"
W=$(mktemp -d "${TMPDIR:-/tmp}/af-merge.XXXXXX")
B=(python3 runtime/node/bench/merge_bench.py)
echo "{\"nproc\": $(nproc), \"python\": \"$(python3 -c 'import torch, numba; print(torch.__version__, numba.__version__)')\"}" | tee "$OUT/merge.jsonl"
"${B[@]}" gen "$W" 2 ${SHAPE:-768 6 2048 32000} 150000000 | tee -a "$OUT/merge.jsonl"
declare -A SPEC=([linear]='{"method":"linear","weights":[0.3,0.7]}' [task_arithmetic]='{"method":"task_arithmetic","weights":[1,0.5],"lam":0.8}'
  [ties]='{"method":"ties","density":0.5}' [dare_ties]='{"method":"dare","drop_rate":0.5,"dare_combine":"ties","seed":1}' [slerp]='{"method":"slerp","t":0.3}')
declare -A INPUTS=([linear]="- $W/e0 $W/e1" [task_arithmetic]="$W/base $W/e0 $W/e1" [ties]="$W/base $W/e0 $W/e1"
  [dare_ties]="$W/base $W/e0 $W/e1" [slerp]="$W/base $W/e0")
for cores in ${CORES:-all 2}; do
  pin=(); [ "$cores" = 2 ] && pin=(taskset -c 0,1)
  for m in linear task_arithmetic ties dare_ties slerp; do
    read -r -a ins <<<"${INPUTS[$m]}"
    files=("${ins[@]}"); [ "${files[0]}" = - ] && files=("${files[@]:1}")
    spec="${SPEC[$m]%\}},\"max_shard_bytes\":150000000}"
    for _ in $(seq "${REPS:-2}"); do
      r=$("${pin[@]}" "${B[@]}" read "${files[@]}")
      g=$("${pin[@]}" "${B[@]}" merge "$spec" "$W/out" "${ins[@]}") || g='{"error": true}'
      rm -rf "$W/out"
      echo "{\"cores\": \"$cores\", \"method\": \"$m\", \"read\": $r, \"merge\": $g}" | tee -a "$OUT/merge.jsonl"
    done
  done
done
rm -rf "$W"
