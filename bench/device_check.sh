#!/usr/bin/env bash
# On a lent GPU (H100/H200), in one device call of under 10 minutes, after bench/device_prepare.sh
# here:   run(command="bash bench/device_check.sh", carry=[".whl", ".devdata"], timeout_s=590)
# Runs, each under its own time limit so that one overrun still leaves the others' numbers:
#   1. bench/gpu_sampling_mfu.py       bf16 matmul ceiling; DDIM sampling FLOP/s of the image U-Nets
#   2. bench/gpu_images_methods.py     steps/s of the cifar10 PD teacher, a PD round, the DDGAN
#   3. bench/gpu_images.py             cifar10 U-Net training fp32 vs bf16 + channels-last (+ compile);
#                                      a Fashion-MNIST teacher, DDIM 4/16/64 steps, FID (feature_net)
#   4. bench/cost.py                   results/cifar10/cost.md from 1-3
# and writes every JSON, the log and cost.md under $OUT (6 files; the tool returns at most 8).
#   bash bench/device_check.sh --smoke     the same paths at toy sizes on any machine (a CPU too):
#                                          a test of this script, OUT defaults to /tmp/device_check
set -uo pipefail
cd "$(dirname "$0")/.."
SMOKE=""; [ "${1:-}" = "--smoke" ] && SMOKE="--smoke"
OUT=${OUT:-/tmp/device_check}; mkdir -p "$OUT"
LOG="$OUT/device_check.log"
if [ -d .whl ] && ! python3 -c "import torch_fidelity, jsonschema" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
FASHION=.devdata/fashion-mnist; [ -d "$FASHION" ] || FASHION=/usr/share/datasets/fashion-mnist
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv 2>&1 || true
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"; } > "$LOG"
step() {  # name, seconds, command...
  local name=$1 limit=$2 t0; shift 2; t0=$(date +%s)
  echo "== $name (limit ${limit} s): $*" >> "$LOG"
  timeout -k 10 "$limit" "$@" >> "$LOG" 2>&1
  echo "== $name: rc=$? in $(( $(date +%s) - t0 )) s" >> "$LOG"
}
step mfu 110 python3 bench/gpu_sampling_mfu.py --out "$OUT/mfu.json" $SMOKE
step methods 110 python3 bench/gpu_images_methods.py --profile cifar10 --out "$OUT/gpu_methods.json" $SMOKE
step images 330 python3 bench/gpu_images.py --out "$OUT/gpu_images.json" --fashion-dir "$FASHION" \
  --teacher-minutes 1.5 $SMOKE
step cost 30 python3 bench/cost.py --images "$OUT/gpu_images.json" --methods "$OUT/gpu_methods.json" \
  --sampling "$OUT/mfu.json" --out "$OUT/cost.md" ${SMOKE:+--allow-smoke}
grep -E "^== |TFLOP|ceiling|images/s|steps_per_s|DDIM .* steps|speedup|matrix kernels|total" "$LOG" | tail -n 60
