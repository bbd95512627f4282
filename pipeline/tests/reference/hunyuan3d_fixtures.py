"""Parity fixtures for the burn port of the Hunyuan3D-2 shape model (pipeline/src/shape/hunyuan3d).

    python3 -m venv /work/tools/refvenv
    /work/tools/refvenv/bin/pip install torch einops omegaconf pyyaml tqdm safetensors numpy \
        "transformers==4.49.0" "diffusers==0.32.2" trimesh scikit-image opencv-python-headless pymeshlab
    /work/tools/refvenv/bin/pip install --no-deps hy3dgen==2.0.2 torchvision
    /work/tools/refvenv/bin/python pipeline/tests/reference/hunyuan3d_fixtures.py

transformers is pinned below 5: the released checkpoints name DINOv2's SwiGLU layers
`mlp.weights_in`/`mlp.weights_out`, which transformers 5 renamed; 4.49 is the version range hy3dgen
2.0.2 asks for (>=4.48) and still uses the checkpoint's names.

What it writes (all under pipeline/tests/fixtures/hunyuan3d/, a few hundred KB in all):

* `tiny/` and `tiny-turbo/`: checkpoint folders in the released layout (`config.yaml` +
  `model.fp16.safetensors`, official key names, fp16 weights, seeded random values). The reference
  classes are built *from that config.yaml* with hy3dgen's own `instantiate_from_config`, so the file
  format is the one the reference reads. `tiny` is a v2-0-style model (no guidance embedding, CFG,
  flow-matching Euler); `tiny-turbo` is a v2-0-turbo-style one (guidance embedding, consistency
  schedule). The same weights also drive the "fast" sampler fixture (flow-matching Euler with
  guidance fed to `guidance_in`, no CFG).
* `<ckpt>/fixtures.safetensors`: inputs and reference outputs, fp32. The reference runs in fp32 on
  the fp16-rounded weights, so a faithful port agrees to ~1e-5.
* `manifests/*.json`: for every released configuration, the full key -> shape list of the reference
  modules built on torch's `meta` device (no memory), with the checkpoint's prefixes. The Rust
  manifest test checks that our full-size module tree expects exactly these tensors.
"""
import json
import os

import numpy as np
import torch
import yaml
from safetensors.torch import save_file

from hy3dgen.shapegen import pipelines as hy_pipelines
from hy3dgen.shapegen.models.conditioner import SingleImageEncoder
from hy3dgen.shapegen.models.autoencoders import ShapeVAE
from hy3dgen.shapegen.models.autoencoders.volume_decoders import (
    HierarchicalVolumeDecoding, extract_near_surface_volume_fn)
from hy3dgen.shapegen.models.denoisers.hunyuan3ddit import Hunyuan3DDiT
from transformers import Dinov2Config, Dinov2Model

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "hunyuan3d")

# ---------------------------------------------------------------------------------------------
# Tiny configurations (same classes, small sizes)
# ---------------------------------------------------------------------------------------------

TINY_DINO = {
    "attention_probs_dropout_prob": 0.0,
    "drop_path_rate": 0.0,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "hidden_size": 24,
    "image_size": 56,
    "initializer_range": 0.02,
    "layer_norm_eps": 1.0e-6,
    "layerscale_value": 1.0,
    "mlp_ratio": 4,
    "model_type": "dinov2",
    "num_attention_heads": 2,
    "num_channels": 3,
    "num_hidden_layers": 2,
    "patch_size": 14,
    "qkv_bias": True,
    "torch_dtype": "float32",
    "use_swiglu_ffn": True,
}


def tiny_config(guidance_embed, turbo):
    model = {
        "in_channels": 8,
        "context_in_dim": 24,
        "hidden_size": 32,
        "mlp_ratio": 4.0,
        "num_heads": 2,
        "depth": 2,
        "depth_single_blocks": 2,
        "axes_dim": [16],
        "theta": 10000,
        "qkv_bias": True,
        "guidance_embed": guidance_embed,
    }
    if turbo:
        scheduler = {
            "target": "hy3dgen.shapegen.schedulers.ConsistencyFlowMatchEulerDiscreteScheduler",
            "params": {"num_train_timesteps": 1000, "pcm_timesteps": 100},
        }
    else:
        scheduler = {
            "target": "hy3dgen.shapegen.schedulers.FlowMatchEulerDiscreteScheduler",
            "params": {"num_train_timesteps": 1000},
        }
    vae = {
        "num_latents": 16,
        "embed_dim": 8,
        "num_freqs": 8,
        "include_pi": False,
        "heads": 2,
        "width": 32,
        "num_decoder_layers": 2,
        "qkv_bias": False,
        "qk_norm": True,
        "scale_factor": 0.9990943042622529,
        "geo_decoder_mlp_expand_ratio": 4,
        "geo_decoder_downsample_ratio": 1,
        "geo_decoder_ln_post": True,
    }
    return {
        "model": {"target": "hy3dgen.shapegen.models.Hunyuan3DDiT", "params": model},
        "vae": {"target": "hy3dgen.shapegen.models.ShapeVAE", "params": vae},
        "conditioner": {
            "target": "hy3dgen.shapegen.models.SingleImageEncoder",
            "params": {
                "main_image_encoder": {
                    "type": "DinoImageEncoder",
                    "kwargs": {"config": dict(TINY_DINO), "image_size": 56, "use_cls_token": True},
                }
            },
        },
        "scheduler": scheduler,
        "image_processor": {
            "target": "hy3dgen.shapegen.preprocessors.ImageProcessorV2",
            "params": {"size": 512, "border_ratio": 0.15},
        },
    }


# ---------------------------------------------------------------------------------------------
# Released configurations, for the key/shape manifests
# ---------------------------------------------------------------------------------------------

GIANT_DINO = {
    "hidden_size": 1536,
    "image_size": 518,
    "layer_norm_eps": 1.0e-6,
    "layerscale_value": 1.0,
    "mlp_ratio": 4,
    "num_attention_heads": 24,
    "num_channels": 3,
    "num_hidden_layers": 40,
    "patch_size": 14,
    "qkv_bias": True,
    "use_swiglu_ffn": True,
}


def released_dit(depth, depth_single, guidance_embed):
    return dict(
        in_channels=64, context_in_dim=1536, hidden_size=1024, mlp_ratio=4.0, num_heads=16,
        depth=depth, depth_single_blocks=depth_single, axes_dim=[64], theta=10000,
        qkv_bias=True, guidance_embed=guidance_embed,
    )


RELEASED_DIT = {
    "hunyuan3d-dit-v2-0": released_dit(16, 32, False),
    "hunyuan3d-dit-v2-0-fast": released_dit(16, 32, True),
    "hunyuan3d-dit-v2-0-turbo": released_dit(16, 32, True),
    "hunyuan3d-dit-v2-mini": released_dit(8, 16, False),
    "hunyuan3d-dit-v2-mini-fast": released_dit(8, 16, True),
    "hunyuan3d-dit-v2-mini-turbo": released_dit(8, 16, True),
}


def released_vae(num_latents, scale_factor):
    return dict(
        num_latents=num_latents, embed_dim=64, num_freqs=8, include_pi=False, heads=16, width=1024,
        num_decoder_layers=16, qkv_bias=False, qk_norm=True, scale_factor=scale_factor,
        geo_decoder_mlp_expand_ratio=4, geo_decoder_downsample_ratio=1, geo_decoder_ln_post=True,
    )


RELEASED_VAE = {
    "hunyuan3d-vae-v2-0": released_vae(3072, 0.9990943042622529),
    "hunyuan3d-vae-v2-mini": released_vae(512, 1.0188137142395404),
}


def manifest(module, prefix):
    return {prefix + k: list(v.shape) for k, v in module.state_dict().items()}


def write_manifests():
    out = os.path.join(OUT, "manifests")
    os.makedirs(out, exist_ok=True)
    with torch.device("meta"):
        dino = Dinov2Model(Dinov2Config(**GIANT_DINO))
        keys = manifest(dino, "conditioner.main_image_encoder.model.")
        write_json(os.path.join(out, "dinov2-giant.json"), keys)
        for name, params in RELEASED_DIT.items():
            write_json(os.path.join(out, f"{name}.json"), manifest(Hunyuan3DDiT(**params), "model."))
        for name, params in RELEASED_VAE.items():
            write_json(os.path.join(out, f"{name}.json"), manifest(ShapeVAE(**params), "vae."))


def write_json(path, keys):
    lines = [f"{json.dumps(k)}:{json.dumps(v, separators=(',', ':'))}" for k, v in sorted(keys.items())]
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


# ---------------------------------------------------------------------------------------------
# Tiny checkpoints and fixtures
# ---------------------------------------------------------------------------------------------


def randomize(module, generator, std=0.08):
    """Seeded random values for every tensor (norm scales, layer-scales and cls/mask tokens too),
    rounded to fp16 so the fp16 checkpoint holds exactly what the fp32 reference computes with."""
    with torch.no_grad():
        for _, p in sorted(module.named_parameters()):
            noise = torch.randn(p.shape, generator=generator) * std
            if p.ndim == 1:
                base = torch.ones_like(p) if p.abs().sum() == p.numel() else torch.zeros_like(p)
                p.copy_(base + noise)
            else:
                p.copy_(torch.randn(p.shape, generator=generator) / (p.shape[-1] ** 0.5))
            p.copy_(p.half().float())


class Reference(hy_pipelines.Hunyuan3DDiTFlowMatchingPipeline):
    """The released sampling loop (`__call__`) with the image already preprocessed, the noise
    injected and the VAE export replaced by returning the final latents."""

    def set_inputs(self, image, noise):
        self._image = image
        self._noise = noise

    def prepare_image(self, image):
        return {"image": self._image}

    def prepare_latents(self, batch_size, dtype, device, generator, latents=None):
        return self._noise.clone()

    def _export(self, latents, *args, **kwargs):
        return latents


def build_tiny(name, guidance_embed, turbo, seed):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    config = tiny_config(guidance_embed, turbo)
    with open(os.path.join(folder, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    with open(os.path.join(folder, "config.yaml")) as f:
        config = yaml.safe_load(f)

    gen = torch.Generator().manual_seed(seed)
    model = hy_pipelines.instantiate_from_config(config["model"]).eval()
    conditioner = hy_pipelines.instantiate_from_config(config["conditioner"]).eval()
    scheduler = hy_pipelines.instantiate_from_config(config["scheduler"])
    vae = hy_pipelines.instantiate_from_config(config["vae"]).eval()
    randomize(model, gen)
    randomize(conditioner, gen)
    randomize(vae, gen)
    with torch.no_grad():
        # Occupancy logits of a useful range: mostly |logit| > 0.95 with a surface in the box, as
        # a trained decoder gives (random weights alone give logits near 0 everywhere).
        # Also damp the query projection's high-frequency Fourier features (columns 3.. are
        # sin/cos of x·2^f for f = 0..7 per axis), so the surface is smooth enough to give a
        # mesh of a few thousand triangles at R = 64 rather than a noise field.
        vae.geo_decoder.output_proj.weight.mul_(6.0)
        w = vae.geo_decoder.query_proj.weight
        freq = torch.arange(8).repeat(3).repeat(2)  # [sin(x f0..f7), sin(y ..), sin(z ..), cos ...]
        w[:, 3:] *= (0.5 ** freq.float())[None, :] * 2
        for p in (vae.geo_decoder.output_proj.weight, w):
            p.copy_(p.half().float())

    weights = {}
    for k, v in model.state_dict().items():
        weights["model." + k] = v.half().contiguous()
    for k, v in conditioner.state_dict().items():
        weights["conditioner." + k] = v.half().contiguous()
    for k, v in vae.state_dict().items():
        weights["vae." + k] = v.half().contiguous()
    save_file(weights, os.path.join(folder, "model.fp16.safetensors"))

    fx = {}
    with torch.no_grad():
        # Conditioner: two images of 52x52 in [-1, 1], upsampled to 56 as 512 -> 518 is upstream.
        image = torch.rand(2, 3, 52, 52, generator=gen) * 2 - 1
        tokens = conditioner(image=image)["main"]
        fx["dino.image"] = image
        fx["dino.tokens"] = tokens
        # Positional-embedding interpolation: the encoder's input size (84 -> 6x6 patches) differs
        # from the checkpoint's 56 (4x4 positions), as the mini-turbo 1022/518 question would need.
        interp_cfg = json.loads(json.dumps(config["conditioner"]["params"]["main_image_encoder"]))
        interp_cfg["kwargs"]["image_size"] = 84
        interp = SingleImageEncoder(main_image_encoder=interp_cfg).eval()
        interp.load_state_dict(conditioner.state_dict())
        image_i = torch.rand(1, 3, 80, 80, generator=gen) * 2 - 1
        fx["dino_interp.image"] = image_i
        fx["dino_interp.tokens"] = interp(image=image_i)["main"]

        # One DiT forward, batch 2, arbitrary t (and guidance for the distilled model).
        L, C = 16, config["model"]["params"]["in_channels"]
        x = torch.randn(2, L, C, generator=gen)
        t = torch.tensor([0.25, 0.8125])
        fx["dit.x"], fx["dit.t"], fx["dit.cond"] = x, t, tokens
        kwargs = {}
        if guidance_embed:
            g = torch.tensor([5.0, 3.5])
            fx["dit.guidance"] = g
            kwargs["guidance"] = g
        fx["dit.out"] = model(x, t, {"main": tokens}, **kwargs)

        # Full sampling loops through the released __call__ with injected noise.
        noise = torch.randn(2, L, C, generator=gen)
        fx["sample.noise"] = noise
        pipe = Reference(vae=torch.nn.Identity(), model=model, scheduler=scheduler,
                         conditioner=conditioner, image_processor=None, device="cpu",
                         dtype=torch.float32)
        pipe.set_inputs(image, noise)
        if turbo:
            fx["sample.turbo.latents"] = pipe(num_inference_steps=5, guidance_scale=5.0,
                                              enable_pbar=False)
            fx["sched.turbo.5"] = pipe.scheduler.sigmas_.float()
            pipe.scheduler.set_timesteps(8)
            fx["sched.turbo.8"] = pipe.scheduler.sigmas_.float()
            # Guidance-distilled "fast": the flow-matching scheduler with the same weights.
            pipe.scheduler = hy_pipelines.instantiate_from_config({
                "target": "hy3dgen.shapegen.schedulers.FlowMatchEulerDiscreteScheduler",
                "params": {"num_train_timesteps": 1000},
            })
            fx["sample.fast.latents"] = pipe(num_inference_steps=4, guidance_scale=5.0,
                                             enable_pbar=False)
        else:
            fx["sample.cfg.latents"] = pipe(num_inference_steps=4, guidance_scale=5.0,
                                            enable_pbar=False)
            fx["sched.flow.4"] = pipe.scheduler.sigmas.float()
        vae_fixtures(fx, vae, gen, detailed=not turbo)
        if not turbo:
            end_to_end(fx, model, vae, conditioner, scheduler, image, noise, folder)
    fx = {k: v.float().clone().contiguous() for k, v in fx.items()}
    save_file(fx, os.path.join(folder, "fixtures.safetensors"))


def grid_points(r, box=1.01):
    """VanillaVolumeDecoder's grid: linspace(-box, box, r+1) per axis in float32, ij order."""
    x = np.linspace(-box, box, r + 1, dtype=np.float32)
    xs, ys, zs = np.meshgrid(x, x, x, indexing="ij")
    return torch.from_numpy(np.stack((xs, ys, zs), axis=-1).reshape(-1, 3))


def hierarchical_pattern(vae, kv, r, min_resolution, box=1.01):
    """The point pattern of hy3dgen's HierarchicalVolumeDecoding for one shape (the coarse grid,
    then per finer level the near-surface cells from the reference's own
    `extract_near_surface_volume_fn`, dilated with a 3x3x3 box as upstream), evaluated at the
    level's grid positions. Upstream computes those positions in int64 (`torch.tensor(resolution,
    dtype=next_points.dtype)` truncates the cell size to 0 and -1.01 to -1), so every fine-level
    query lands on (-1, -1, -1); this evaluates the intended float positions instead."""
    levels = []
    while r >= min_resolution:
        levels.append(r)
        r //= 2
    levels.reverse()
    dilate = torch.nn.Conv3d(1, 1, 3, padding=1, bias=False)
    dilate.weight = torch.nn.Parameter(torch.ones_like(dilate.weight))
    pts = grid_points(levels[0], box)
    grid = vae.geo_decoder(queries=pts[None], latents=kv).view(levels[0] + 1, levels[0] + 1, levels[0] + 1)
    for i, res in enumerate(levels[1:]):
        last = i == len(levels) - 2
        curr = extract_near_surface_volume_fn(grid, 0.0)
        curr = curr + (grid.abs() < 0.95)
        if not last:
            curr = dilate(curr[None].float())[0]
        cx, cy, cz = torch.where(curr > 0)
        nxt = torch.zeros((res + 1,) * 3)
        nxt[cx * 2, cy * 2, cz * 2] = 1
        for _ in range(2 if last else 1):
            nxt = dilate(nxt[None])[0]
        nidx = torch.where(nxt > 0)
        points = torch.stack(nidx, dim=1).float() * (2 * box / res) - box
        logits = vae.geo_decoder(queries=points[None], latents=kv)[0, :, 0]
        full = torch.full((res + 1,) * 3, -10000.0)
        full[nidx] = logits
        grid = full
    grid[grid == -10000.0] = float("nan")
    return grid


def vae_fixtures(fx, vae, gen, detailed):
    latents = torch.randn(2, 16, 8, generator=gen)
    kv = vae(latents / vae.scale_factor)
    fx["vae.latents"], fx["vae.kv"] = latents, kv
    points = (torch.rand(300, 3, generator=gen) * 2 - 1) * 1.01
    fx["geo.points"] = points
    fx["geo.logits"] = vae.geo_decoder(queries=points[None].repeat(2, 1, 1), latents=kv)[..., 0]
    if not detailed:
        return
    # Dense volume, both shapes at once, small chunks (the reference supports B > 1 here).
    from hy3dgen.shapegen.models.autoencoders.volume_decoders import VanillaVolumeDecoder
    dense = VanillaVolumeDecoder()(kv, vae.geo_decoder, bounds=1.01, num_chunks=1000,
                                   octree_resolution=16, enable_pbar=False)
    fx["vol.dense16"] = dense
    # Hierarchical volume, R = 32 from 8. The reference's decoder (B = 1 only) collapses every
    # fine-level query onto (-1, -1, -1): with two levels it returns one repeated value, with
    # three it finds no surface at the last level and fails. The intended pattern and values are
    # recorded per shape instead.
    upstream = HierarchicalVolumeDecoding()(kv[:1], vae.geo_decoder, bounds=1.01, num_chunks=1000,
                                           octree_resolution=16, min_resolution=8, enable_pbar=False)
    finite = upstream[torch.isfinite(upstream)]
    print(f"upstream hierarchical decoding, 2 levels: {finite.numel()} fine values, "
          f"{torch.unique(finite).numel()} distinct")
    try:
        HierarchicalVolumeDecoding()(kv[:1], vae.geo_decoder, bounds=1.01, num_chunks=1000,
                                     octree_resolution=32, min_resolution=8, enable_pbar=False)
    except Exception as e:  # noqa: BLE001 - documenting the upstream failure
        print(f"upstream hierarchical decoding, 3 levels: {type(e).__name__}: {e}")
    for b in range(2):
        fx[f"vol.hier32.{b}"] = hierarchical_pattern(vae, kv[b:b + 1], 32, 8)


def end_to_end(fx, model, vae, conditioner, scheduler, image, noise, folder):
    """The released pipeline end to end on one preprocessed image: 5 steps, CFG 5, dense decoding
    at R = 64 and marching cubes, with the grid logits captured."""
    from PIL import Image
    size = 512
    yy, xx = np.mgrid[0:size, 0:size]
    disc = ((xx - 256) ** 2 + (yy - 240) ** 2 < 150 ** 2)
    rgb = np.full((size, size, 3), 255, np.uint8)
    rgb[disc] = (200, 60, 40)
    rgb[(xx > 230) & (xx < 282) & (yy > 80) & (yy < 420)] = (30, 90, 200)
    Image.fromarray(rgb).save(os.path.join(folder, "e2e_input.png"))
    img = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255 * 2 - 1
    e2e_noise = torch.randn(1, 16, 8, generator=torch.Generator().manual_seed(99))
    captured = {}
    decoder = vae.volume_decoder

    def capture(*args, **kwargs):
        out = decoder(*args, **kwargs)
        captured["grid"] = out
        return out

    vae.volume_decoder = capture
    pipe = Reference(vae=vae, model=model, scheduler=scheduler, conditioner=conditioner,
                     image_processor=None, device="cpu", dtype=torch.float32)
    pipe.set_inputs(img, e2e_noise)
    pipe._export = hy_pipelines.Hunyuan3DDiTFlowMatchingPipeline._export.__get__(pipe)
    mesh = pipe(num_inference_steps=5, guidance_scale=5.0, octree_resolution=64, num_chunks=8000,
                enable_pbar=False, output_type="trimesh")[0]
    vae.volume_decoder = decoder
    fx["e2e.noise"] = e2e_noise
    fx["e2e.grid_sub4"] = captured["grid"][0, ::4, ::4, ::4]
    fx["e2e.vertices"] = torch.from_numpy(np.asarray(mesh.vertices, np.float32))
    fx["e2e.faces"] = torch.from_numpy(np.asarray(mesh.faces, np.int64)).float()
    print(f"end to end: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces")


def main():
    torch.set_num_threads(1)
    build_tiny("tiny", guidance_embed=False, turbo=False, seed=1234)
    build_tiny("tiny-turbo", guidance_embed=True, turbo=True, seed=4321)
    write_manifests()
    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
