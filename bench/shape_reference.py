"""Times the reference Hunyuan3D-2 shape pipeline (hy3dgen 2.0.2, PyTorch) at a released size with
random weights, per sub-step: the counterpart of `cargo run --example shape_bench` (same
configuration, same weight tweaks for a trained-like occupancy field).

    python3 bench/shape_reference.py --preset v2-0 --steps 30 --decoding dense --resolution 256
    python3 bench/shape_reference.py --preset v2-0-turbo --steps 5 --decoding flashvdm --resolution 256

`--decoding`: `dense` (VanillaVolumeDecoder, the pipeline default) or `flashvdm`
(FlashVDMVolumeDecoding with adaptive KV selection, what `enable_flashvdm()` turns on; upstream's
plain HierarchicalVolumeDecoding computes fine-level positions in int64 and is not usable).
`--small` swaps in a reduced configuration for a CPU smoke run. Prints one JSON line.
"""
import argparse
import json
import time

import torch

from hy3dgen.shapegen import pipelines as hy
from hy3dgen.shapegen.models.autoencoders import ShapeVAE
from hy3dgen.shapegen.models.conditioner import SingleImageEncoder
from hy3dgen.shapegen.models.denoisers.hunyuan3ddit import Hunyuan3DDiT
from hy3dgen.shapegen.schedulers import (ConsistencyFlowMatchEulerDiscreteScheduler,
                                         FlowMatchEulerDiscreteScheduler)

DINO_GIANT = dict(hidden_size=1536, image_size=518, layer_norm_eps=1e-6, layerscale_value=1.0,
                  mlp_ratio=4, num_attention_heads=24, num_channels=3, num_hidden_layers=40,
                  patch_size=14, qkv_bias=True, use_swiglu_ffn=True)


class Timed(hy.Hunyuan3DDiTFlowMatchingPipeline):
    def prepare_image(self, image):
        return {"image": self._image}

    def prepare_latents(self, batch_size, dtype, device, generator, latents=None):
        return torch.randn(batch_size, *self.vae.latent_shape, device=device, dtype=dtype)

    def _export(self, latents, *args, **kwargs):
        return latents


def build(args, device, dtype):
    turbo = args.preset.endswith("turbo")
    distilled = turbo or args.preset.endswith("fast")
    mini = "mini" in args.preset
    if args.small:
        dino = dict(DINO_GIANT, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                    image_size=56)
        dit = dict(in_channels=64, context_in_dim=64, hidden_size=64, num_heads=4, depth=1,
                   depth_single_blocks=1, axes_dim=[16], guidance_embed=distilled)
        vae = dict(num_latents=64, embed_dim=64, width=64, heads=4, num_decoder_layers=2)
        size = 56
    else:
        dino = DINO_GIANT
        dit = dict(in_channels=64, context_in_dim=1536, hidden_size=1024, num_heads=16,
                   depth=8 if mini else 16, depth_single_blocks=16 if mini else 32,
                   axes_dim=[64], guidance_embed=distilled)
        vae = dict(num_latents=512 if mini else 3072, embed_dim=64, width=1024, heads=16,
                   num_decoder_layers=16)
        size = 518
    vae.update(num_freqs=8, include_pi=False, qkv_bias=False, qk_norm=True,
               scale_factor=1.0188137142395404 if mini else 0.9990943042622529)
    model = Hunyuan3DDiT(mlp_ratio=4.0, theta=10000, qkv_bias=True, **dit)
    shape_vae = ShapeVAE(**vae)
    cond = SingleImageEncoder(main_image_encoder={
        "type": "DinoImageEncoder", "kwargs": {"config": dino, "image_size": size,
                                               "use_cls_token": True}})
    with torch.no_grad():
        geo = shape_vae.geo_decoder
        width = geo.output_proj.weight.shape[1]
        geo.output_proj.weight.normal_(0.0, 3.0 / width ** 0.5)
        # Damp the Fourier features 2^-f at frequency 2^f, as shape_bench does.
        f = torch.arange(8).repeat(3).repeat(2).float()
        geo.query_proj.weight[:, 3:] *= 2 * 0.5 ** f
    sched = (ConsistencyFlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, pcm_timesteps=100)
             if turbo else FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000))
    return Timed(vae=shape_vae, model=model, scheduler=sched, conditioner=cond,
                 image_processor=None, device=device, dtype=dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="v2-0")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--resolution", type=int, default=256)
    ap.add_argument("--chunks", type=int, default=32000)
    ap.add_argument("--decoding", default="dense", choices=["dense", "flashvdm"])
    ap.add_argument("--dtype", default="f16", choices=["f16", "bf16", "f32"])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--small", action="store_true")
    args = ap.parse_args()
    dtype = {"f16": torch.float16, "bf16": torch.bfloat16, "f32": torch.float32}[args.dtype]
    torch.manual_seed(0)
    pipe = build(args, args.device, dtype)
    if args.decoding == "flashvdm":
        pipe.vae.enable_flashvdm_decoder(enabled=True, adaptive_kv_selection=True, mc_algo="mc")
    image = torch.rand(args.batch, 3, 512, 512, device=args.device, dtype=dtype) * 2 - 1
    pipe._image = image

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    best = None
    info = {}
    for _ in range(args.repeats):
        with torch.no_grad():
            sync()
            t0 = time.perf_counter()
            do_cfg = not pipe.model.guidance_embed
            pipe.encode_cond(image, {}, do_cfg, False)
            sync()
            t1 = time.perf_counter()
            latents = pipe(num_inference_steps=args.steps, guidance_scale=5.0, enable_pbar=False)
            sync()
            t2 = time.perf_counter()
            kv = pipe.vae(latents / pipe.vae.scale_factor)
            grid = pipe.vae.volume_decoder(kv, pipe.vae.geo_decoder, bounds=1.01,
                                           num_chunks=args.chunks,
                                           octree_resolution=args.resolution, mc_level=0.0,
                                           enable_pbar=False)
            sync()
            t3 = time.perf_counter()
            meshes = pipe.vae.surface_extractor(grid, mc_level=0.0, bounds=1.01,
                                                octree_resolution=args.resolution)
            t4 = time.perf_counter()
        # __call__ ran the conditioner again before denoising: subtract one conditioning.
        times = [t1 - t0, (t2 - t1) - (t1 - t0), t3 - t2, t4 - t3, (t2 - t1) + (t4 - t2)]
        if best is None or times[4] < best[4]:
            best = times
            info = {"faces": int(sum(len(m.mesh_f) for m in meshes if m is not None)),
                    "evaluated_points_shape0": int(torch.isfinite(grid[0]).sum())}
    peak = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else None
    print(json.dumps({
        "impl": "hy3dgen-pytorch", "torch": torch.__version__, "preset": f"hunyuan3d-dit-{args.preset}",
        "small": args.small, "device": args.device, "dtype": args.dtype, "batch": args.batch,
        "steps": args.steps, "decoding": args.decoding, "resolution": args.resolution,
        "chunks": args.chunks, "conditioning_s": round(best[0], 3), "denoising_s": round(best[1], 3),
        "volume_decoding_s": round(best[2], 3), "surface_extraction_s": round(best[3], 3),
        "total_s": round(best[4], 3), "per_shape_s": round(best[4] / args.batch, 3),
        "peak_gib": None if peak is None else round(peak, 2), **info,
    }))


if __name__ == "__main__":
    main()
