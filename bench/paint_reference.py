"""The reference side of `bench/paint.sh` (and of step 6 of `scripts/gpu_hunyuan3d.sh`): builds
seeded random-weight Hunyuan3D-Paint models of a named size (the released weights cannot be downloaded here; random weights cost the same
arithmetic), writes them as the released folders are laid out, writes the benchmark's inputs as
PNGs, and times the reference's two diffusion loops on them:

* delight: diffusers 0.32.2 `StableDiffusionInstructPix2PixPipeline` with Euler ancestral, as hy3dgen
  2.0.2's `Light_Shadow_Remover` calls it (empty prompt, guidance 1.0, image guidance 1.5);
* multiview: hy3dgen 2.0.2 `HunyuanPaintPipeline` around `UNet2p5DConditionModel` (Euler ancestral,
  trailing spacing, guidance 2.0, six views), control maps passed as tensors.

Each call is timed whole (VAE encodes, the denoising loop, the decode), after one untimed call of
one step that warms the allocator. Prints one JSON line.

    python bench/paint_reference.py --size tiny|mid|full --out DIR [--delight-steps N]
        [--view-steps N] [--threads N] [--device cpu|cuda] [--dtype f32|f16]

Sizes (UNet / VAE / CLIP widths; views):
* tiny: the parity fixtures' models (UNet [16, 32, 32], VAE [16, 16, 32, 32]), 64² views;
* mid: UNet [128, 256, 512, 512] with SD 2.x's block types and 64-wide heads, cross-attention 512,
  VAE [64, 128, 256, 256], CLIP 512 wide and 4 layers, 256² views (32² latents);
* full: the released shapes (SD 2.x UNet, VAE and OpenCLIP-H text encoder as reconstructed in the
  fixture generators), 512² views; written in half precision (safetensors) for the GPU check.
Needs the paint-fixtures venv and hy3dgen 2.0.2's source (pipeline/tests/reference/
paint_pipeline_fixtures.py says how).
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "pipeline", "tests", "reference")
sys.path.insert(0, REF)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKL,
    EulerAncestralDiscreteScheduler,
    StableDiffusionInstructPix2PixPipeline,
    UNet2DConditionModel,
)
from PIL import Image  # noqa: E402
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer  # noqa: E402

import paint_pipeline_fixtures as ppf  # noqa: E402
import paint_unet_fixtures as pu  # noqa: E402
import sd_unet_fixtures as su  # noqa: E402
import sd_vae_fixtures as sv  # noqa: E402

FIXTURES = os.path.join(REF, "..", "fixtures")

MID_UNET = dict(
    sample_size=32,
    in_channels=4,
    out_channels=4,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    block_out_channels=[128, 256, 512, 512],
    layers_per_block=2,
    attention_head_dim=[2, 4, 8, 8],
    cross_attention_dim=512,
    norm_num_groups=32,
    use_linear_projection=True,
    flip_sin_to_cos=True,
    freq_shift=0,
)
MID_VAE = dict(sv.TINY_CONFIG, block_out_channels=[64, 128, 256, 256], norm_num_groups=32, layers_per_block=2,
               sample_size=256)
MID_CLIP = dict(vocab_size=1000, hidden_size=512, intermediate_size=2048, num_hidden_layers=4,
                num_attention_heads=8, max_position_embeddings=77, hidden_act="gelu", layer_norm_eps=1e-5,
                bos_token_id=998, eos_token_id=999, pad_token_id=0, projection_dim=512)


def configs(size):
    if size == "tiny":
        return su.TINY_CONFIG, sv.TINY_CONFIG, None
    if size == "mid":
        return MID_UNET, MID_VAE, MID_CLIP
    import clip_text_fixtures as ct

    return (dict(su.SD2_CONFIG, sample_size=64), sv.SD2_CONFIG,
            dict(ct.SD2_CONFIG, vocab_size=1000, bos_token_id=998, eos_token_id=999, pad_token_id=0))


def save_unet_weights(model, folder, half):
    """The multiview UNet as released (pickled state dict), or as half-precision safetensors."""
    os.makedirs(folder, exist_ok=True)
    if half:
        from safetensors.torch import save_file

        save_file({k: v.half().contiguous() for k, v in model.state_dict().items()},
                  os.path.join(folder, "diffusion_pytorch_model.safetensors"))
    else:
        torch.save(model.state_dict(), os.path.join(folder, "diffusion_pytorch_model.bin"))


def build(size, out):
    """Writes delight/ and multiview/ folders of `size` under `out` (skipped when present)."""
    delight, multiview = os.path.join(out, "delight"), os.path.join(out, "multiview")
    if os.path.isfile(os.path.join(multiview, "unet", "config.json")):
        return delight, multiview
    unet_cfg, vae_cfg, clip_cfg = configs(size)
    half = size == "full"
    torch.manual_seed(0)
    vae = AutoencoderKL(**vae_cfg)
    sv.randomize(vae, 1)
    tokenizer_src = os.path.join(FIXTURES, "clip_text", "tiny", "tokenizer")
    if clip_cfg is None:
        clip = CLIPTextModel.from_pretrained(os.path.join(FIXTURES, "clip_text", "tiny"))
    else:
        torch.manual_seed(1)
        clip = CLIPTextModel(CLIPTextConfig(**clip_cfg))
    d_unet = UNet2DConditionModel(**dict(unet_cfg, in_channels=8, cross_attention_dim=clip.config.hidden_size))
    su.randomize(d_unet, 2)
    if half:
        vae, clip, d_unet = vae.half(), clip.half(), d_unet.half()
    for folder in (delight, multiview):
        vae.save_pretrained(os.path.join(folder, "vae"), safe_serialization=True)
    d_unet.save_pretrained(os.path.join(delight, "unet"), safe_serialization=True)
    clip.save_pretrained(os.path.join(delight, "text_encoder"), safe_serialization=True)
    CLIPTokenizer.from_pretrained(tokenizer_src).save_pretrained(os.path.join(delight, "tokenizer"))
    ppf.write_scheduler(delight, ppf.DELIGHT_SCHEDULER)
    ppf.write_scheduler(multiview, ppf.MULTIVIEW_SCHEDULER)
    _, _, modules = ppf.load_reference(os.environ.get("HY3DGEN_SRC", ppf.DEFAULT_SRC), with_delight=False)
    torch.manual_seed(0)
    mv = modules.UNet2p5DConditionModel(UNet2DConditionModel(**unet_cfg))
    pu.apply_tiny_widths(mv, unet_cfg)
    pu.randomize(mv, 3)
    save_unet_weights(mv, os.path.join(multiview, "unet"), half)
    su.write_json(os.path.join(multiview, "unet", "config.json"), dict(unet_cfg, _class_name="UNet2DConditionModel"))
    return delight, multiview


def load_multiview_unet(modules, folder):
    """paint_unet_fixtures.reference_from_pretrained, reading safetensors too."""
    if os.path.isfile(os.path.join(folder, "diffusion_pytorch_model.bin")):
        return pu.reference_from_pretrained(modules, folder)
    from safetensors.torch import load_file

    with open(os.path.join(folder, "config.json")) as fh:
        config = json.load(fh)
    config.pop("_class_name", None)
    model = modules.UNet2p5DConditionModel(UNet2DConditionModel(**config))
    pu.apply_tiny_widths(model, config)
    state = {k: v.float() for k, v in load_file(os.path.join(folder, "diffusion_pytorch_model.safetensors")).items()}
    model.load_state_dict(state, strict=True)
    return model.eval()


def write_inputs(out, view):
    """The benchmark's images: a reference and six normal and position maps (PNG)."""
    gen = torch.Generator("cpu").manual_seed(5)
    inputs = os.path.join(out, "inputs")
    os.makedirs(inputs, exist_ok=True)
    ref = ppf.smooth_image(gen, 1, view)[0]
    normals = ppf.smooth_image(gen, 6, view)
    positions = ppf.smooth_image(gen, 6, view)
    Image.fromarray(ref).save(os.path.join(inputs, "reference.png"))
    for k in range(6):
        Image.fromarray(normals[k]).save(os.path.join(inputs, f"normal_{k}.png"))
        Image.fromarray(positions[k]).save(os.path.join(inputs, f"position_{k}.png"))
    return ref, normals, positions


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=["tiny", "mid", "full"], default="tiny")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["f32", "f16"], default="f32")
    ap.add_argument("--out", required=True)
    ap.add_argument("--delight-steps", type=int, default=50)
    ap.add_argument("--view-steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    view = {"tiny": 64, "mid": 256, "full": 512}[args.size]
    dtype = torch.float16 if args.dtype == "f16" else torch.float32
    delight_dir, multiview_dir = build(args.size, args.out)
    ref, normals, positions = write_inputs(args.out, view)
    paint, _, modules = ppf.load_reference(os.environ.get("HY3DGEN_SRC", ppf.DEFAULT_SRC), with_delight=False)

    d = StableDiffusionInstructPix2PixPipeline(
        vae=AutoencoderKL.from_pretrained(os.path.join(delight_dir, "vae")),
        text_encoder=CLIPTextModel.from_pretrained(os.path.join(delight_dir, "text_encoder")),
        tokenizer=CLIPTokenizer.from_pretrained(os.path.join(delight_dir, "tokenizer")),
        unet=UNet2DConditionModel.from_pretrained(os.path.join(delight_dir, "unet")),
        scheduler=EulerAncestralDiscreteScheduler.from_pretrained(os.path.join(delight_dir, "scheduler")),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    d.set_progress_bar_config(disable=True)
    d = d.to(args.device, dtype)
    unet = load_multiview_unet(modules, os.path.join(multiview_dir, "unet")).to(args.device, dtype)
    with open(os.path.join(multiview_dir, "scheduler", "scheduler_config.json")) as f:
        sched = EulerAncestralDiscreteScheduler.from_config(json.load(f), timestep_spacing="trailing")
    m = paint.HunyuanPaintPipeline(vae=AutoencoderKL.from_pretrained(os.path.join(multiview_dir, "vae")),
                                   text_encoder=None, tokenizer=None, unet=unet, scheduler=sched,
                                   feature_extractor=None)
    m.set_progress_bar_config(disable=True)
    m = m.to(args.device)
    m.vae.to(dtype)

    def delight(steps):
        return d(prompt="", image=Image.fromarray(ref), generator=torch.manual_seed(42), height=view, width=view,
                 num_inference_steps=steps, image_guidance_scale=1.5, guidance_scale=1.0, output_type="np").images

    def views(steps):
        with torch.no_grad():
            return m(Image.fromarray(ref), num_inference_steps=steps, generator=torch.Generator("cpu").manual_seed(0),
                     width=view, height=view, num_in_batch=6, camera_info_gen=[ppf.CAMERAS], camera_info_ref=[[0]],
                     normal_imgs=ppf.as_float_nchw(normals).unsqueeze(0).to(args.device, dtype),
                     position_imgs=ppf.as_float_nchw(positions).unsqueeze(0).to(args.device, dtype),
                     output_type="np").images

    def sync():
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()

    timings = {}
    for name, run, steps in (("delight", delight, args.delight_steps), ("multiview", views, args.view_steps)):
        run(1)
        sync()
        t = time.perf_counter()
        run(steps)
        sync()
        timings[name] = time.perf_counter() - t
    print(json.dumps({"side": "reference", "size": args.size, "view": view, "threads": args.threads,
                      "device": args.device, "dtype": args.dtype,
                      "delight_steps": args.delight_steps, "view_steps": args.view_steps,
                      "torch": torch.__version__.split("+")[0], "seconds": timings,
                      "delight": delight_dir, "multiview": multiview_dir,
                      "inputs": os.path.join(args.out, "inputs")}))


if __name__ == "__main__":
    main()
