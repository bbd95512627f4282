"""Times one forward of the reference Hunyuan3D-2 DiT (hy3dgen 2.0.2, PyTorch) at a released size
with random weights: the counterpart of `cargo run --example dit_bench` (same shapes).

    python3 bench/dit_reference.py --preset v2-0 --batch 1 --dtype f16 --device cuda

Only the denoiser module is imported (by file path), so hy3dgen's pipeline dependencies (trimesh,
diffusers, ...) are not needed: torch and einops are. Prints one JSON line.
"""
import argparse
import importlib.util
import json
import os
import time

import torch

PRESETS = {
    "v2-0": (16, 32, False), "v2-0-fast": (16, 32, True), "v2-0-turbo": (16, 32, True),
    "v2-mini": (8, 16, False), "v2-mini-fast": (8, 16, True), "v2-mini-turbo": (8, 16, True),
}


def load_dit_class():
    spec = importlib.util.find_spec("hy3dgen")
    root = list(spec.submodule_search_locations)[0]
    path = os.path.join(root, "shapegen", "models", "denoisers", "hunyuan3ddit.py")
    mod_spec = importlib.util.spec_from_file_location("hunyuan3ddit", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    return mod.Hunyuan3DDiT


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="v2-0", choices=sorted(PRESETS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--dtype", default="f16", choices=["f16", "bf16", "f32"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--cond-tokens", type=int, default=1370)
    args = ap.parse_args()
    depth, single, guidance = PRESETS[args.preset]
    dtype = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}[args.dtype]
    latents = 512 if "mini" in args.preset else 3072
    Dit = load_dit_class()
    torch.manual_seed(0)
    model = Dit(in_channels=64, context_in_dim=1536, hidden_size=1024, mlp_ratio=4.0, num_heads=16,
                depth=depth, depth_single_blocks=single, axes_dim=[64], theta=10000, qkv_bias=True,
                guidance_embed=guidance).to(args.device, dtype).eval()
    rows = args.batch if guidance else 2 * args.batch
    x = torch.randn(rows, latents, 64, device=args.device, dtype=dtype)
    cond = torch.randn(rows, args.cond_tokens, 1536, device=args.device, dtype=dtype)
    t = torch.full((rows,), 0.5, device=args.device, dtype=dtype)
    kwargs = {"guidance": torch.full((rows,), 5.0, device=args.device, dtype=dtype)} if guidance else {}

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    with torch.no_grad():
        for _ in range(args.warmup):
            model(x, t, {"main": cond}, **kwargs)
        sync()
        times = []
        for _ in range(args.iters):
            s = time.perf_counter()
            model(x, t, {"main": cond}, **kwargs)
            sync()
            times.append((time.perf_counter() - s) * 1000)
    times.sort()
    peak = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else None
    print(json.dumps({
        "impl": "hy3dgen-pytorch", "torch": torch.__version__, "preset": f"hunyuan3d-dit-{args.preset}",
        "device": args.device, "dtype": args.dtype, "batch": args.batch, "rows": rows,
        "latents": latents, "cond_tokens": args.cond_tokens,
        "median_ms": round(times[len(times) // 2], 2), "min_ms": round(times[0], 2),
        "peak_gib": None if peak is None else round(peak, 2),
    }))


if __name__ == "__main__":
    main()
