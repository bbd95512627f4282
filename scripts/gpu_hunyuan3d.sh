#!/usr/bin/env bash
# GPU check for the Hunyuan3D-2 port, run on the device machine from the repository root with
# .gpu/ and .whl/ carried (build them here first: scripts/gpu_prepare.sh).
#   1. the parity tests against the reference fixtures on burn-cuda (fp32);
#   2. one DiT forward at full v2-0 size, B = 1 with CFG (2 sequences of 3072 latents + 1370
#      condition tokens), random weights: ours in fp16 and bf16, then PyTorch hy3dgen in fp16 and
#      bf16 on the same GPU, in this one run.
# Results: $OUT/gpu_hunyuan3d.jsonl (one JSON line per timing) and the log.
set -uo pipefail
OUT="${OUT:-out}"
mkdir -p "$OUT"
log="$OUT/gpu_hunyuan3d.log"
res="$OUT/gpu_hunyuan3d.jsonl"
: > "$res"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$log"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
echo "== parity on burn-cuda" | tee -a "$log"
ORFEAS_GPU_TESTS=1 CARGO_MANIFEST_DIR="$PWD/pipeline" timeout 240 .gpu/hunyuan3d-tests --nocapture \
  parity_on_cuda 2>&1 | tee -a "$log"
for dtype in f16 bf16; do
  echo "== ours, v2-0, $dtype" | tee -a "$log"
  timeout 150 .gpu/dit_bench --device cuda --dtype "$dtype" --preset v2-0 --batch 1 --iters 10 \
    --warmup 3 2>>"$log" | tee -a "$res"
  echo "== reference, v2-0, $dtype" | tee -a "$log"
  PYTHONUNBUFFERED=1 timeout 120 python3 bench/dit_reference.py --device cuda --dtype "$dtype" \
    --preset v2-0 --batch 1 --iters 10 --warmup 3 2>>"$log" | tee -a "$res"
done
cat "$res"
