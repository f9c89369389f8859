#!/usr/bin/env bash
# The runtime node's CUDA path on a GPU machine (never part of CI, which has no GPU): the CUDA pytest cases
# (bf16 SFT, kill/resume, an RL step vs CPU), SFT MFU for three model sizes with a profile of the largest, and TRL's SFTTrainer on the same
# model and samples for the throughput ratio. Uses the machine's own torch/transformers; TRL and the packages it
# lacks come as wheels in .whl/ when present. Results land in $OUT (default /tmp/device-check).
#   bash runtime/node/bench/device_check.sh      (SKIP_PYTEST=1 / SKIP_PROFILE=1 skip those parts)
set -uo pipefail
cd "$(dirname "$0")/../../.."
OUT="${OUT:-/tmp/device-check}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_DISABLE_PROGRESS_BARS=1 PYTHONPATH="$PWD/runtime/node"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi -L
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, torch.cuda.get_device_name())" | tee "$OUT/versions.txt"

[ -n "${SKIP_PYTEST:-}" ] || (cd runtime/node && timeout 300 python3 -m pytest -q -s -p no:cacheprovider tests/test_cuda.py tests/test_sft.py \
  tests/test_train_rl.py tests/test_onnx.py 2>&1) | tee "$OUT/pytest.log" | grep -v "^Loading\|^Writing"

rm -rf /tmp/mfu
timeout 240 python3 runtime/node/bench/mfu.py /tmp/mfu klear small base 2>"$OUT/mfu.err" | grep '"size"' | tee "$OUT/mfu.jsonl"
[ -n "${SKIP_PROFILE:-}" ] || timeout 90 python3 runtime/node/bench/profile_step.py /tmp/mfu/base/model /tmp/mfu/base/data/shards.parquet 32 2>&1 \
  | grep -v "^Load\|^USDT" | tee "$OUT/profile.txt"

if python3 -c "import trl" 2>/dev/null; then
  for size in klear small base; do
    read -r batch len < <(python3 -c "import json,sys; r=[json.loads(l) for l in open('$OUT/mfu.jsonl')]; \
r=[x for x in r if x['size']=='$size'][0]; print(r['batch'], r['max_len'])") || continue
    echo -n "{\"size\": \"$size\", \"trl\": " >>"$OUT/trl.jsonl"
    timeout 150 python3 runtime/node/bench/trl_sft.py /tmp/mfu/$size/model /tmp/mfu/$size/data/samples.jsonl \
      /tmp/trl-$size 30 "$batch" "$len" 2>>"$OUT/trl.err" | tail -1 | tr -d '\n' >>"$OUT/trl.jsonl"
    echo "}" >>"$OUT/trl.jsonl"
  done
  cat "$OUT/trl.jsonl"
fi
