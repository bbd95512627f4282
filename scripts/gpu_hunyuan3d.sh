#!/usr/bin/env bash
# GPU check for the Hunyuan3D-2 port, run on the device machine from the repository root with
# .gpu/ and .whl/ carried (build them here first: scripts/gpu_prepare.sh):
#   run(command="bash scripts/gpu_hunyuan3d.sh", carry=[".gpu", ".whl"], timeout_s=580)
# Steps (each bounded by its own timeout so one slow step cannot eat the whole call):
#   1. the parity tests against the reference fixtures on burn-cuda (fp32);
#   2. one DiT forward at full v2-0 size, B = 1 with CFG, random weights: ours and PyTorch, fp16;
#   3. the whole shape pipeline at full v2-0 size, random weights, ours and PyTorch on this GPU:
#      (a) 30 steps with CFG + dense decoding at R = 256, B = 1 and larger B;
#      (b) turbo, 5 steps + hierarchical decoding (reference: FlashVDM) at R = 256;
#   4. U²-Net (background removal) on burn-cuda: masks against rembg's fixtures, and the time per
#      320² image at batch 1 and 6, u2netp and u2net (random weights).
#   5. Texturing without diffusion (issue 16): the tensor rasterizer on CUDA against the host
#      scan, then unwrap + six-view renders at 2048² + bake + inpaint of the 40k-face apple with
#      the GPU rasterizer, and the same on the device's CPU cores (target: < 2 s per mesh on one
#      GPU).
#   6. Hunyuan3D-Paint's diffusion loops at the released shapes (random weights, fp16, 512² views):
#      delight (50 steps) and multiview (30 steps, six views, guidance 2.0), ours and the reference
#      on this GPU (target: ours ≤ 0.7× the reference's time), then ours for two meshes in one
#      batch. The models are generated here first (bench/paint_reference.py --size full).
# Results: $OUT/gpu_hunyuan3d.jsonl (one JSON line per timing) and $OUT/gpu_hunyuan3d.log.
set -uo pipefail
OUT="${OUT:-out}"
mkdir -p "$OUT" /tmp/gpu
log="$OUT/gpu_hunyuan3d.log"
res="$OUT/gpu_hunyuan3d.jsonl"
: > "$res"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$log"
for f in .gpu/*.gz; do gunzip -c "$f" > "/tmp/gpu/$(basename "$f" .gz)"; done
chmod +x /tmp/gpu/*
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
ours() { timeout "$1" /tmp/gpu/"${@:2}" 2>>"$log" | tee -a "$res"; }
ref() { PYTHONUNBUFFERED=1 timeout "$1" python3 "${@:2}" 2>>"$log" | tee -a "$res"; }

echo "== 1. parity on burn-cuda" | tee -a "$log"
ORFEAS_GPU_TESTS=1 CARGO_MANIFEST_DIR="$PWD/pipeline" timeout 120 /tmp/gpu/hunyuan3d-tests \
  --nocapture parity_on_cuda 2>&1 | tee -a "$log"

echo "== 2. DiT forward, v2-0, B=1 with CFG, fp16" | tee -a "$log"
ours 60 dit_bench --device cuda --dtype f16 --preset v2-0 --batch 1 --iters 10 --warmup 3
ref 60 bench/dit_reference.py --device cuda --dtype f16 --preset v2-0 --batch 1 --iters 10 --warmup 3

echo "== 3a. 30 steps + CFG + dense R=256" | tee -a "$log"
for b in 1 4; do
  ours 90 shape_bench --device cuda --dtype f16 --preset v2-0 --steps 30 --decoding dense --resolution 256 --batch "$b" --repeats 2
  ref 90 bench/shape_reference.py --device cuda --dtype f16 --preset v2-0 --steps 30 --decoding dense --resolution 256 --batch "$b" --repeats 2
done
echo "== 3b. turbo 5 steps + hierarchical R=256" | tee -a "$log"
for b in 1 8; do
  ours 60 shape_bench --device cuda --dtype f16 --preset v2-0-turbo --steps 5 --decoding hierarchical --resolution 256 --batch "$b" --repeats 2
done
ref 60 bench/shape_reference.py --device cuda --dtype f16 --preset v2-0-turbo --steps 5 --decoding flashvdm --resolution 256 --batch 1 --repeats 2
echo "== 4. U²-Net parity and timing on burn-cuda" | tee -a "$log"
ORFEAS_GPU_TESTS=1 CARGO_MANIFEST_DIR="$PWD/pipeline" timeout 120 /tmp/gpu/u2net-tests \
  --nocapture parity_on_cuda 2>&1 | tee -a "$log" | grep '"bench"' >> "$res"
echo "== 5. texturing without diffusion: rasterizer parity, then the stages on cuda and cpu" | tee -a "$log"
ORFEAS_GPU_TESTS=1 CARGO_MANIFEST_DIR="$PWD/pipeline" timeout 120 /tmp/gpu/raster-tests \
  --nocapture parity_on_cuda 2>&1 | tee -a "$log"
for device in cuda:0 cpu; do
  timeout 90 /tmp/gpu/texture_bench stages /tmp/gpu/apple40k.obj --render 2048 --texture 2048 \
    --device "$device" 2>&1 | tee -a "$log"
done
echo "== 6. paint diffusion loops, full size, fp16: reference, then ours" | tee -a "$log"
paint=/tmp/gpu/paint-full
ref 300 bench/paint_reference.py --size full --out "$paint" --device cuda --dtype f16 --threads 16
for meshes in 1 2; do
  ours 150 paint_bench --delight "$paint/delight" --paint "$paint/multiview" --inputs "$paint/inputs" \
    --device cuda:0 --dtype f16 --meshes "$meshes"
done
cat "$res"
