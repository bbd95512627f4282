"""Parity fixtures for the burn port of Hunyuan3D-Paint's two diffusion pipelines, run whole on tiny
random-weight models: the delight model (diffusers 0.32.2 `StableDiffusionInstructPix2PixPipeline`
with `EulerAncestralDiscreteScheduler`, as hy3dgen 2.0.2's `Light_Shadow_Remover` drives it) and the
multiview model (hy3dgen 2.0.2 `HunyuanPaintPipeline` around `UNet2p5DConditionModel`, as
`Multiview_Diffusion_Net` drives it), plus the delight model's colour correction (`recorrect_rgb`).

What it writes (under pipeline/tests/fixtures/paint_pipeline/, deterministic: two runs give identical
bytes):

* `delight/`: a diffusers InstructPix2Pix folder as our loader reads it:
    - `unet/`: a new tiny UNet2DConditionModel, sd_unet_fixtures.TINY_CONFIG with in_channels 8 (noisy
      latent + image latent) and cross_attention_dim 32 (the tiny CLIP's width), weights seeded by
      sd_unet_fixtures.randomize (WEIGHT_SEED), saved by save_pretrained (safetensors);
    - `vae` -> ../../sd_vae/tiny, `text_encoder` -> ../../clip_text/tiny, `tokenizer` ->
      ../../clip_text/tiny/tokenizer: symbolic links to the components other fixtures hold already;
    - `scheduler/scheduler_config.json`: DELIGHT_SCHEDULER (the released file cannot be downloaded;
      an SD 1.x/2.x-style epsilon, scaled_linear, leading schedule with steps_offset 1).
* `multiview/`: `unet` -> ../../paint_unet/tiny/unet (the tiny UNet2p5DConditionModel), `vae` ->
  ../../sd_vae/tiny, `scheduler/scheduler_config.json` (MULTIVIEW_SCHEDULER: v_prediction,
  zero-terminal-SNR; the reference replaces the scheduler by Euler ancestral with trailing spacing
  whatever the file says). `multiview_turbo/` is the same with an `LCMScheduler` config.
* `sd2_manifests.json`: the checkpoint keys and shapes of the released shapes, built on torch's meta
  device: `multiview` (hy3dgen's UNet2p5DConditionModel around sd_unet_fixtures.SD2_CONFIG, both
  UNets, with the reference's own hard-coded widths 1024 / 1280, which fit SD 2.x exactly) and
  `delight` (SD2_CONFIG with in_channels 8), each with its resolved config.
* `tiny_io.json` + `tiny_io/*.bin`: raw little-endian float32, row-major (names, shapes in the
  manifest). Every random draw the reference makes (`randn_tensor` in the pipelines, the schedulers
  and the VAE posterior) is recorded, in order, as `<case>_noise_<k>`; the Rust side replays them.
    - `delight_a`, `delight_b`: one 64x64 image each (uint8 values / 255, stored as float32
      `<case>_image` [1, 3, 64, 64]), the reference's settings (50 steps, guidance_scale 1.0,
      image_guidance_scale 1.5: diffusers runs no classifier-free guidance when guidance_scale <= 1),
      output_type "np": `<case>_out` [1, 3, 64, 64] in [0, 1] before quantisation.
    - `delight_cfg`: the same pipeline with guidance_scale 3.0 (three-way guidance), 12 steps.
    - `mv_a`, `mv_b`: HunyuanPaintPipeline.__call__ with a 64x64 reference image (uint8 / 255), six
      normal and six position maps [1, 6, 3, 64, 64] (uint8 / 255, passed as tensors: the reference
      converts PIL lists with a hard-coded .to("cuda")), the six views' camera ids, 30 steps,
      guidance 2.0, output_type "np": `<case>_out` [6, 3, 64, 64].
    - `mv_turbo`: the `multiview_turbo` scheduler (LCMScheduler), 6 steps, guidance 2.0.
    - `recorrect_<k>`: hy3dgen's `Light_Shadow_Remover.recorrect_rgb` on [16, 16, 3] float64 images
      with an alpha [16, 16, 1] (both branches of its "keep the source" test), stored as float32
      (within 6e-8 of the float64 values the reference was given) with its float64 output.

Run it like this (CPU only, float32, torch.set_num_threads(1)):

    python3 -m venv /root/.cache/orfeas/paint-venv        # the paint-fixtures venv, reused
    /root/.cache/orfeas/paint-venv/bin/pip install torch "diffusers==0.32.2" "transformers==4.49.0" \
        safetensors numpy einops opencv-python-headless
    /root/.cache/orfeas/paint-venv/bin/pip download --no-deps hy3dgen==2.0.2 -d /tmp/hy3dgen_whl
    unzip -q /tmp/hy3dgen_whl/hy3dgen-2.0.2-py3-none-any.whl -d /tmp/hy3dgen_src
    HY3DGEN_SRC=/tmp/hy3dgen_src /root/.cache/orfeas/paint-venv/bin/python \
        pipeline/tests/reference/paint_pipeline_fixtures.py

`--out DIR` writes elsewhere (used to check that two runs agree byte for byte). It reads the other
generators' fixture folders (sd_vae, clip_text, paint_unet), which must exist. Nothing upstream is
copied here: the reference classes are imported and run unmodified.
"""

import argparse
import importlib
import json
import os
import shutil
import sys
import types

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sd_unet_fixtures as base  # noqa: E402  (TINY_CONFIG, JSON writer, randomize)

import diffusers  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKL,
    EulerAncestralDiscreteScheduler,
    LCMScheduler,
    StableDiffusionInstructPix2PixPipeline,
    UNet2DConditionModel,
)
from PIL import Image  # noqa: E402
from transformers import CLIPTextModel, CLIPTokenizer  # noqa: E402

FIXTURES = os.path.join(HERE, "..", "fixtures")
DEFAULT_OUT = os.path.join(FIXTURES, "paint_pipeline")
DEFAULT_SRC = "/tmp/hy3dgen_src"

WEIGHT_SEED = 1
INPUT_SEED = 2
SIZE = 64
VIEWS = 6
CAMERAS = [21, 12, 15, 18, 43, 37]

DELIGHT_UNET = dict(base.TINY_CONFIG, in_channels=8, cross_attention_dim=32)
DELIGHT_SCHEDULER = {
    "_class_name": "EulerAncestralDiscreteScheduler",
    "_diffusers_version": "0.32.2",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "leading",
}
MULTIVIEW_SCHEDULER = {
    "_class_name": "EulerAncestralDiscreteScheduler",
    "_diffusers_version": "0.32.2",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "steps_offset": 1,
    "timestep_spacing": "trailing",
}
TURBO_SCHEDULER = {
    "_class_name": "LCMScheduler",
    "_diffusers_version": "0.32.2",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "num_train_timesteps": 1000,
    "original_inference_steps": 50,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "set_alpha_to_one": True,
    "steps_offset": 1,
    "timestep_scaling": 10.0,
    "timestep_spacing": "trailing",
}


# ---------------------------------------------------------------------------------------------
# The reference's random draws, recorded
# ---------------------------------------------------------------------------------------------

DRAWS = []


def record_draws():
    """Wraps diffusers' randn_tensor where the pipelines, schedulers and VAE posterior import it."""
    from diffusers.utils.torch_utils import randn_tensor as original

    def recording(*args, **kwargs):
        out = original(*args, **kwargs)
        DRAWS.append(out.detach().clone().float())
        return out

    for name in (
        "diffusers.schedulers.scheduling_euler_ancestral_discrete",
        "diffusers.schedulers.scheduling_lcm",
        "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion",
        "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_instruct_pix2pix",
        "diffusers.models.autoencoders.vae",
    ):
        module = importlib.import_module(name)
        assert hasattr(module, "randn_tensor"), name
        module.randn_tensor = recording


def load_reference(src, with_delight=True):
    """hy3dgen's paint pipeline, its delight wrapper (which imports OpenCV; skipped when not
    wanted) and its UNet module, imported without texgen/__init__.py."""
    for sub in ("hunyuanpaint/pipeline.py", "utils/dehighlight_utils.py"):
        if not os.path.isfile(os.path.join(src, "hy3dgen", "texgen", sub)):
            sys.exit(f"hy3dgen 2.0.2 source not found under {src} (see the header)")
    sys.path.insert(0, os.path.abspath(src))
    import hy3dgen  # empty __init__ (license header only)

    texgen = types.ModuleType("hy3dgen.texgen")
    texgen.__path__ = [os.path.join(os.path.dirname(hy3dgen.__file__), "texgen")]
    sys.modules["hy3dgen.texgen"] = texgen
    paint = importlib.import_module("hy3dgen.texgen.hunyuanpaint.pipeline")
    delight = importlib.import_module("hy3dgen.texgen.utils.dehighlight_utils") if with_delight else None
    modules = importlib.import_module("hy3dgen.texgen.hunyuanpaint.unet.modules")
    return paint, delight, modules


# ---------------------------------------------------------------------------------------------
# Folders
# ---------------------------------------------------------------------------------------------


def link(folder, name, target):
    path = os.path.join(folder, name)
    if os.path.lexists(path):
        os.remove(path)
    os.symlink(target, path)


def write_scheduler(folder, config):
    os.makedirs(os.path.join(folder, "scheduler"), exist_ok=True)
    base.write_json(os.path.join(folder, "scheduler", "scheduler_config.json"), config)


def write_folders(out):
    delight = os.path.join(out, "delight")
    if os.path.isdir(os.path.join(delight, "unet")):
        shutil.rmtree(os.path.join(delight, "unet"))
    os.makedirs(delight, exist_ok=True)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(**DELIGHT_UNET)
    base.randomize(unet, WEIGHT_SEED)
    unet.eval().save_pretrained(os.path.join(delight, "unet"), safe_serialization=True)
    os.chmod(os.path.join(delight, "unet", "diffusion_pytorch_model.safetensors"), 0o644)
    link(delight, "vae", "../../sd_vae/tiny")
    link(delight, "text_encoder", "../../clip_text/tiny")
    link(delight, "tokenizer", "../../clip_text/tiny/tokenizer")
    write_scheduler(delight, DELIGHT_SCHEDULER)
    for name, scheduler in (("multiview", MULTIVIEW_SCHEDULER), ("multiview_turbo", TURBO_SCHEDULER)):
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        link(folder, "unet", "../../paint_unet/tiny/unet")
        link(folder, "vae", "../../sd_vae/tiny")
        write_scheduler(folder, scheduler)


def manifest_of(model, config):
    keys = {k: list(v.shape) for k, v in sorted(model.state_dict().items())}
    return {
        "resolved_config": config,
        "num_tensors": len(keys),
        "param_count": int(sum(int(np.prod(s)) for s in keys.values())),
        "keys": keys,
    }


def write_manifests(out, modules):
    """Key manifests of the released shapes (meta device: nothing is allocated)."""
    resolved = lambda unet: {k: (list(v) if isinstance(v, tuple) else v)  # noqa: E731
                             for k, v in sorted(unet.config.items()) if not k.startswith("_")}
    with torch.device("meta"):
        mv = modules.UNet2p5DConditionModel(UNet2DConditionModel(**base.SD2_CONFIG))
        delight = UNet2DConditionModel(**dict(base.SD2_CONFIG, in_channels=8))
    assert tuple(mv.unet.learned_text_clip_gen.shape) == (1, 77, base.SD2_CONFIG["cross_attention_dim"])
    assert mv.unet.class_embedding.weight.shape[1] == 4 * base.SD2_CONFIG["block_out_channels"][0]
    base.write_json(os.path.join(out, "sd2_manifests.json"), {
        "generator": "pipeline/tests/reference/paint_pipeline_fixtures.py",
        "built_on": "torch meta device",
        "multiview": manifest_of(mv, resolved(mv.unet)),
        "delight": manifest_of(delight, resolved(delight)),
    })


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def smooth_image(gen, n, size):
    """uint8 images [n, size, size, 3] with structure at several scales (an upsampled random field
    plus pixel noise), so the VAE sees something image-like."""
    coarse = torch.rand((n, 3, 8, 8), generator=gen)
    field = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    noise = torch.rand((n, 3, size, size), generator=gen) * 0.1
    img = ((field * 0.9 + noise) * 255).round().clamp(0, 255).to(torch.uint8)
    return img.permute(0, 2, 3, 1).numpy()


def as_float_nchw(u8):
    return torch.from_numpy(u8.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------


def run_delight(pipe, image_u8, steps, guidance, image_guidance):
    DRAWS.clear()
    out = pipe(
        prompt="",
        image=Image.fromarray(image_u8),
        generator=torch.Generator("cpu").manual_seed(42),
        height=SIZE,
        width=SIZE,
        num_inference_steps=steps,
        image_guidance_scale=image_guidance,
        guidance_scale=guidance,
        output_type="np",
    ).images
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous().float(), list(DRAWS)


def run_multiview(pipe, ref_u8, normals_u8, positions_u8, steps):
    DRAWS.clear()
    out = pipe(
        Image.fromarray(ref_u8),
        num_inference_steps=steps,
        generator=torch.Generator("cpu").manual_seed(0),
        width=SIZE,
        height=SIZE,
        num_in_batch=VIEWS,
        camera_info_gen=[CAMERAS],
        camera_info_ref=[[0]],
        normal_imgs=as_float_nchw(normals_u8).unsqueeze(0),
        position_imgs=as_float_nchw(positions_u8).unsqueeze(0),
        output_type="np",
    ).images
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous().float(), list(DRAWS)


def recorrect_cases(delight_module, gen):
    remover = object.__new__(delight_module.Light_Shadow_Remover)
    cases = []
    for k in range(2):
        target = torch.randint(0, 256, (16, 16, 3), generator=gen).double() / 255.0
        if k == 0:
            # A delit image darker and flatter than the input: the correction helps.
            src = (target * 0.6 + 0.1 + torch.randint(0, 20, (16, 16, 3), generator=gen).double() / 255.0)
            src = (src * 255).round() / 255.0
        else:
            # The input, brighter only where the object is (a quarter of the image): the
            # correction shifts the whole image by 95 % of that, so it is worse.
            target = 0.2 + 0.6 * target
            src = target.clone()
            src[12:] += 0.1
        alpha = (torch.randint(128, 256, (16, 16, 1), generator=gen).double() / 255.0)
        if k == 0:
            alpha[:4] = 0.0
        else:
            alpha[:12] = 0.0
        out = remover.recorrect_rgb(src, target, alpha)
        src_mse = torch.mean((src - target) ** 2)
        kept = bool(torch.equal(out[:, :, :3], src))
        cases.append((src, target, alpha, out, kept, float(src_mse)))
    return cases


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--hy3dgen-src", default=os.environ.get("HY3DGEN_SRC", DEFAULT_SRC))
    args = parser.parse_args()
    torch.set_num_threads(1)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    # Links are relative to the fixtures folder: a run elsewhere needs the same neighbours.
    for name in ("sd_vae", "clip_text", "paint_unet"):
        if not os.path.isdir(os.path.join(out, "..", name)):
            sys.exit(f"{os.path.join(out, '..', name)} is missing: run with --out under a copy of the fixtures")
    paint, delight_module, modules = load_reference(args.hy3dgen_src)
    record_draws()
    write_folders(out)
    write_manifests(out, modules)

    io_dir = os.path.join(out, "tiny_io")
    if os.path.isdir(io_dir):
        shutil.rmtree(io_dir)
    os.makedirs(io_dir)
    tensors = {}

    def put(name, t, description=None):
        t = t.detach().float().contiguous()
        path = os.path.join(io_dir, f"{name}.bin")
        with open(path, "wb") as f:
            f.write(t.numpy().astype("<f4").tobytes())
        tensors[name] = {"file": f"tiny_io/{name}.bin", "shape": list(t.shape)}
        if description:
            tensors[name]["description"] = description

    gen = torch.Generator("cpu").manual_seed(INPUT_SEED)
    checks = {}
    cases = {}

    # -- delight ---------------------------------------------------------------------------------
    folder = os.path.join(out, "delight")
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=AutoencoderKL.from_pretrained(os.path.join(folder, "vae")),
        text_encoder=CLIPTextModel.from_pretrained(os.path.join(folder, "text_encoder")),
        tokenizer=CLIPTokenizer.from_pretrained(os.path.join(folder, "tokenizer")),
        unet=UNet2DConditionModel.from_pretrained(os.path.join(folder, "unet")),
        scheduler=EulerAncestralDiscreteScheduler.from_pretrained(os.path.join(folder, "scheduler")),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    checks["delight_no_cfg_at_reference_settings"] = True
    for name, steps, guidance in (("delight_a", 50, 1.0), ("delight_b", 50, 1.0), ("delight_cfg", 12, 3.0)):
        image = smooth_image(gen, 1, SIZE)[0]
        result, draws = run_delight(pipe, image, steps, guidance, 1.5)
        if guidance <= 1.0:
            checks["delight_no_cfg_at_reference_settings"] &= not pipe.do_classifier_free_guidance
        put(f"{name}_image", as_float_nchw(image[None]), "uint8 / 255, RGB")
        put(f"{name}_out", result, "output_type np: (decoded / 2 + 0.5).clamp(0, 1)")
        for k, d in enumerate(draws):
            put(f"{name}_noise_{k}", d)
        cases[name] = {"steps": steps, "guidance_scale": guidance, "image_guidance_scale": 1.5,
                       "draws": len(draws), "draw_order": "initial latents, then one per step"}

    # -- multiview -------------------------------------------------------------------------------
    for name, folder_name, steps in (("mv_a", "multiview", 30), ("mv_b", "multiview", 30),
                                     ("mv_turbo", "multiview_turbo", 6)):
        folder = os.path.join(out, folder_name)
        # The reference model with the tiny widths (paint_unet_fixtures.reference_from_pretrained).
        import paint_unet_fixtures as pu

        unet = pu.reference_from_pretrained(modules, os.path.join(folder, "unet"))
        with open(os.path.join(folder, "scheduler", "scheduler_config.json")) as f:
            sched_cfg = json.load(f)
        if sched_cfg["_class_name"] == "LCMScheduler":
            scheduler = LCMScheduler.from_config(sched_cfg)
        else:
            # What Multiview_Diffusion_Net does to whatever scheduler the folder has.
            scheduler = EulerAncestralDiscreteScheduler.from_config(sched_cfg, timestep_spacing="trailing")
        pipe = paint.HunyuanPaintPipeline(
            vae=AutoencoderKL.from_pretrained(os.path.join(folder, "vae")),
            text_encoder=None,
            tokenizer=None,
            unet=unet,
            scheduler=scheduler,
            feature_extractor=None,
        )
        pipe.set_progress_bar_config(disable=True)
        ref = smooth_image(gen, 1, SIZE)[0]
        normals = smooth_image(gen, VIEWS, SIZE)
        positions = smooth_image(gen, VIEWS, SIZE)
        result, draws = run_multiview(pipe, ref, normals, positions, steps)
        put(f"{name}_reference", as_float_nchw(ref[None]), "uint8 / 255, RGB")
        put(f"{name}_normals", as_float_nchw(normals), "uint8 / 255, the six views' normal maps")
        put(f"{name}_positions", as_float_nchw(positions), "uint8 / 255, the six views' position maps")
        put(f"{name}_out", result, "output_type np: (decoded / 2 + 0.5).clamp(0, 1)")
        for k, d in enumerate(draws):
            put(f"{name}_noise_{k}", d)
        cases[name] = {"folder": folder_name, "steps": steps, "guidance_scale": 2.0, "cameras": CAMERAS,
                       "draws": len(draws), "scheduler": type(scheduler).__name__,
                       "draw_order": "posterior of the reference image, of the normal maps, of the position "
                                     "maps, initial latents, then one per step (LCM: none at the last)"}

    # -- colour correction -------------------------------------------------------------------------
    for k, (src, target, alpha, result, kept, src_mse) in enumerate(recorrect_cases(delight_module, gen)):
        put(f"recorrect_{k}_src", src)
        put(f"recorrect_{k}_target", target)
        put(f"recorrect_{k}_alpha", alpha)
        put(f"recorrect_{k}_out", result, "[16, 16, 4]: corrected (or source) RGB, then alpha")
        cases[f"recorrect_{k}"] = {"kept_source": kept, "src_mse": src_mse}
    checks["recorrect_both_branches"] = [cases["recorrect_0"]["kept_source"], cases["recorrect_1"]["kept_source"]] == [False, True]

    manifest = {
        "generator": "pipeline/tests/reference/paint_pipeline_fixtures.py",
        "reference": {"hy3dgen_version": "2.0.2", "classes": [
            "hy3dgen.texgen.hunyuanpaint.pipeline.HunyuanPaintPipeline",
            "hy3dgen.texgen.utils.dehighlight_utils.Light_Shadow_Remover.recorrect_rgb",
            "diffusers.StableDiffusionInstructPix2PixPipeline"]},
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "num_threads": 1,
        "size": SIZE,
        "cases": cases,
        "checks": checks,
        "tensors": tensors,
    }
    base.write_json(os.path.join(out, "tiny_io.json"), manifest)
    failed = [k for k, v in checks.items() if v is not True]
    if failed:
        sys.exit(f"checks failed: {failed}")
    print(f"wrote {len(tensors)} tensors to {out}")


if __name__ == "__main__":
    main()
