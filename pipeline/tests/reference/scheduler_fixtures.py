"""Parity fixtures for the port of the two diffusers schedulers that Hunyuan3D-Paint 2.0 samples with.

What it writes (under pipeline/tests/fixtures/schedulers/, about 290 KB in all, deterministic):

* `schedules.json`: the training-time tables the schedulers build in __init__ (float32, as diffusers
  computes them on the CPU): `betas` and `alphas_cumprod` (1000 each) for
  - `scaled_linear`: beta_start 0.00085, beta_end 0.012 (Stable Diffusion / the assumed paint config),
  - `linear`: the same range with beta_schedule "linear",
  - `scaled_linear_zsnr`: scaled_linear after `rescale_zero_terminal_snr` (rescale_betas_zero_snr=True).
    EulerAncestralDiscreteScheduler then overwrites alphas_cumprod[999] with 2**-24 (its copy is
    `alphas_cumprod_euler`); LCMScheduler keeps the raw value (`alphas_cumprod`).
* one file per sampling case (the list is CASES below). Each holds the scheduler `config` as
  diffusers resolved it, the `assumed_checkpoint_config` it was built from with `from_config`
  (plus the overrides the hy3dgen code passes), the `set_timesteps` call, the resulting `timesteps`,
  for Euler the `sigmas` (n + 1 values), `init_noise_sigma`, per step the `scale_model_input`
  divisor sqrt(sigma^2 + 1) (diffusers divides: sample / divisor), `sigma_up` and `sigma_down`;
  for LCM per step `alpha_prod_t`, `alpha_prod_t_prev`, `c_skip`, `c_out` and `final_alpha_cumprod`;
  then a full denoising loop on a latent of shape [1, 4, 2, 2]:
  - `initial_noise`: randn drawn first from torch.Generator('cpu').manual_seed(seed) exactly as
    StableDiffusionPipeline.prepare_latents draws it (randn_tensor(shape, generator, float32));
    `initial_latents` = initial_noise * init_noise_sigma (float32).
  - per step: `t`, `model_output`, the `noise` the scheduler drew (recorded by wrapping
    diffusers' randn_tensor in the scheduler module; the same generator is passed to step(), as
    the pipelines do through prepare_extra_step_kwargs; null where no noise is drawn) and
    `prev_sample`.
  - `step0`: `prev_sample` and `pred_original_sample` of the first step (Euler returns it; for
    LCM it is the x0 before the boundary condition, obtained by re-running step 0 on a copy whose
    get_scalings_for_boundary_condition_discrete returns c_skip=0, c_out=1, so `denoised` is x0
    exactly), and for LCM also `denoised`.
  - `final`: the sample after the last step.

The stand-in "model": model_output = x * f32(0.1) + (f32(t) / f32(1000)) * f32(0.01), computed in
float32 with each operation rounded separately, where x = scheduler.scale_model_input(latents, t)
(what the pipelines feed the UNet) and f32(t) is the timestep as float32 (Euler's timesteps are
float32 already; LCM's are int64). No classifier-free guidance: the scheduler sees model_output.

Every float is a float32 value written as the shortest decimal that reads back (through float64,
then rounded to float32) to the same float32. Where diffusers leaves float32 it is noted here;
values are still recorded as the float32 they end up as:
- torch.linspace (betas) on the CPU: step = (end - start) / (n - 1) in float32, element i is
  fma(step, i, start) for i < n / 2 and fma(-step, n - 1 - i, end) above (torch 2.15, AVX512);
- torch.cumprod of float32 on the CPU accumulates in float64 and rounds each output (alphas_cumprod);
- EulerAncestral.set_timesteps builds timesteps with numpy in float64 (np.round is half-to-even)
  and cast to float32; sigmas come from np.interp (float64) over the float32 table, cast back;
- LCM timesteps are numpy / torch int64, and c_skip / c_out are float32 because the timestep
  tensor is int64 (int64 tensor * 10.0 -> float32);
- the torch 2.15 CPU float32 sqrt (also x ** 0.5) is NOT correctly rounded: it is off by one ulp
  for about one input in six. A numpy re-implementation of the formulas reproduces every value
  here bit for bit when it takes its square roots from torch, and stays within 1e-5 (normwise
  relative, per vector) of every trajectory, 1 ulp of the Euler sigmas (8 ulp with zero SNR) and
  4e-7 of alphas_cumprod with a correctly rounded sqrt. A port should compare with tolerances.

Reference: diffusers 0.32.2 (PyPI) schedulers `scheduling_euler_ancestral_discrete.py` and
`scheduling_lcm.py`, run unmodified. The same script under diffusers 0.42.1 writes identical
numbers (the scheduler code only gained type hints in between).

Environment (a small venv; CPU only):

    python3 -m venv /root/.cache/orfeas/sched-venv
    /root/.cache/orfeas/sched-venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu \
      || /root/.cache/orfeas/sched-venv/bin/pip install torch      # the full PyPI wheel if that index is unreachable
    /root/.cache/orfeas/sched-venv/bin/pip install diffusers==0.32.2 numpy
    /root/.cache/orfeas/sched-venv/bin/python pipeline/tests/reference/scheduler_fixtures.py

(Any venv with torch works: the fixtures in the repository were written from the paint-fixtures
venv, /root/.cache/orfeas/paint-venv, with `pip install diffusers==0.32.2` added; torch 2.15.0, numpy 2.4.)
`--out DIR` writes elsewhere (used to check that two runs, or two diffusers versions, agree).

Which configurations and why (hy3dgen 2.0.2 / Tencent/Hunyuan3D-2 facts):
- The multiview paint pipeline (hy3dgen/texgen/utils/multiview_utils.py:37-38 in the 2.0.2 wheel)
  replaces the checkpoint scheduler with
  EulerAncestralDiscreteScheduler.from_config(config, timestep_spacing='trailing') and samples
  num_inference_steps=30 (:75) with generator torch.Generator(device).manual_seed(0) (:59).
- The delight pipeline (dehighlight_utils.py:33) uses EulerAncestralDiscreteScheduler.from_config
  (config) without overrides, num_inference_steps=50, generator=torch.manual_seed(42) (:93-96):
  its spacing is whatever the checkpoint config stores ("leading" if it is a full DDIMScheduler config as
  recent diffusers versions write it, else EulerAncestral's default "linspace"); both are covered.
- The Turbo paint checkpoint is driven only by later GitHub code (commit ab727ba, 2025-03-31; the
  2.0.2 wheel has no LCMScheduler and always loads hunyuan3d-paint-v2-0): at Tencent/Hunyuan3D-2
  2ee4770, multiview_utils.py:38-44 picks LCMScheduler.from_config(config,
  timestep_spacing='trailing') for 'hunyuanpaint-turbo' (LCM ignores timestep_spacing), and
  hunyuanpaint/pipeline.py:594-600 sets custom timesteps DDIMSolver(1000, 30).ddim_timesteps at
  indices torch.range(29, 0, -3), i.e. [989, 890, 791, 692, 593, 494, 395, 296, 197, 98]
  (DDIMSolver at :139-157, built at :218-222), whatever num_inference_steps says (30).
- The checkpoint scheduler configs are not available here; the paint one is assumed to be
  PAINT_CONFIG below (SD 2.1 base => v_prediction; Hunyuan3D-2.1's paint config has exactly
  these keys and values, and with any "0.xx.y" _diffusers_version they serialise to 387 bytes,
  the listed size of hunyuan3d-paint-v2-0/scheduler/scheduler_config.json). Unverified, so the
  cases cover epsilon and no-zero-SNR variants as well. The delight file (533 bytes) has the size
  of a full DDIMScheduler config but its prediction type cannot be inferred; epsilon is assumed.
"""
import argparse
import copy
import json
import os

import numpy as np
import torch

import diffusers
from diffusers import EulerAncestralDiscreteScheduler, LCMScheduler
from diffusers.schedulers import scheduling_euler_ancestral_discrete as euler_mod
from diffusers.schedulers import scheduling_lcm as lcm_mod
from diffusers.utils.torch_utils import randn_tensor

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "schedulers")
SHAPE = (1, 4, 2, 2)
PINNED_DIFFUSERS = "0.32.2"

# Stable Diffusion 2.1 (768-v) scheduler config as published (DDIMScheduler, v_prediction).
SD21_CONFIG = {
    "_class_name": "DDIMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000,
    "prediction_type": "v_prediction", "set_alpha_to_one": False, "skip_prk_steps": True,
    "steps_offset": 1, "trained_betas": None,
}
# Assumed hunyuan3d-paint-v2-0 config: SD 2.1 schedule with zero terminal SNR and trailing spacing
# (the key set of the published Hunyuan3D-2.1 paint config, which also matches the 387-byte size
# of the 2.0 file; not verified against the file itself).
PAINT_CONFIG = {
    "_class_name": "DDIMScheduler", "beta_end": 0.012, "beta_schedule": "scaled_linear",
    "beta_start": 0.00085, "clip_sample": False, "num_train_timesteps": 1000,
    "prediction_type": "v_prediction", "rescale_betas_zero_snr": True, "set_alpha_to_one": True,
    "steps_offset": 1, "timestep_spacing": "trailing", "trained_betas": None,
}
# Assumed delight configs: an InstructPix2Pix / SD-style epsilon schedule, once as a full DDIM
# config (timestep_spacing "leading" stored) and once without a timestep_spacing key.
DELIGHT_LEADING = dict(SD21_CONFIG, prediction_type="epsilon", timestep_spacing="leading",
                       rescale_betas_zero_snr=False)
DELIGHT_NO_SPACING = dict(SD21_CONFIG, _class_name="EulerAncestralDiscreteScheduler",
                          prediction_type="epsilon")


def turbo_timesteps():
    """DDIMSolver(timesteps=1000, ddim_timesteps=30).ddim_timesteps[torch.range(29, 0, -3)]."""
    step_ratio = 1000 // 30
    ddim = (np.arange(1, 30 + 1) * step_ratio).round().astype(np.int64) - 1
    index = torch.arange(29, -1, -3).long()  # torch.range(29, 0, -3): 29, 26, ..., 2
    return torch.from_numpy(ddim).long()[index]


CASES = [
    # name, scheduler class, assumed checkpoint config, from_config overrides, set_timesteps kwargs, seed
    ("euler_a_trailing30_vpred_zsnr", "euler", PAINT_CONFIG, {"timestep_spacing": "trailing"},
     {"num_inference_steps": 30}, 0),
    ("euler_a_trailing30_vpred", "euler", SD21_CONFIG, {"timestep_spacing": "trailing"},
     {"num_inference_steps": 30}, 1),
    ("euler_a_trailing30_eps", "euler", dict(SD21_CONFIG, prediction_type="epsilon"),
     {"timestep_spacing": "trailing"}, {"num_inference_steps": 30}, 2),
    ("euler_a_trailing30_vpred_linear", "euler", dict(SD21_CONFIG, beta_schedule="linear"),
     {"timestep_spacing": "trailing"}, {"num_inference_steps": 30}, 3),
    ("euler_a_leading50_eps", "euler", DELIGHT_LEADING, {}, {"num_inference_steps": 50}, 42),
    ("euler_a_linspace50_eps", "euler", DELIGHT_NO_SPACING, {}, {"num_inference_steps": 50}, 43),
    ("lcm_4_eps", "lcm", {}, {}, {"num_inference_steps": 4}, 4),
    ("lcm_5_eps", "lcm", {}, {}, {"num_inference_steps": 5}, 5),
    ("lcm_8_eps", "lcm", {}, {}, {"num_inference_steps": 8}, 8),
    ("lcm_4_eps_linear", "lcm", {"beta_schedule": "linear"}, {}, {"num_inference_steps": 4}, 9),
    ("lcm_turbo10_vpred_zsnr", "lcm", PAINT_CONFIG, {"timestep_spacing": "trailing"},
     {"timesteps": "turbo"}, 10),
    ("lcm_turbo10_eps", "lcm", dict(SD21_CONFIG, prediction_type="epsilon"),
     {"timestep_spacing": "trailing"}, {"timesteps": "turbo"}, 11),
]


def f32s(x):
    """float32 value(s) -> Python floats whose repr is the shortest decimal that survives
    parse-as-float64-then-round-to-float32 (checked)."""
    a = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float32)
    out = []
    for v in a.reshape(-1):
        y = float(str(v))
        if np.float32(y) != v or not np.isfinite(v):
            y = float(v)  # exact float64 of the float32 value
        assert np.float32(float(repr(y))) == v or not np.isfinite(v)
        out.append(y)
    return out if a.ndim else out[0]


def ints(x):
    return [int(v) for v in np.asarray(x).reshape(-1)]


def model(latents, t, scheduler):
    x = scheduler.scale_model_input(latents, t)
    tf = t.to(torch.float32) if isinstance(t, torch.Tensor) else torch.tensor(t, dtype=torch.float32)
    return x * torch.tensor(0.1, dtype=torch.float32) + (tf / torch.tensor(1000.0)) * torch.tensor(0.01)


class Recorder:
    """Wraps randn_tensor in a scheduler module so every draw is recorded."""

    def __init__(self, module):
        self.module, self.draws = module, []

    def __enter__(self):
        self.prev = self.module.randn_tensor

        def wrapped(*args, **kwargs):
            t = randn_tensor(*args, **kwargs)
            self.draws.append(t.clone())
            return t
        self.module.randn_tensor = wrapped
        return self

    def __exit__(self, *exc):
        self.module.randn_tensor = self.prev


def clean_config(cfg):
    return {k: v for k, v in dict(cfg).items() if not k.startswith("_use_default")}


def build(kind, base, overrides):
    cls = EulerAncestralDiscreteScheduler if kind == "euler" else LCMScheduler
    return cls.from_config(base, **overrides) if base else cls(**overrides)


def run_case(name, kind, base, overrides, ts_kwargs, seed):
    sched = build(kind, base, overrides)
    if ts_kwargs.get("timesteps") == "turbo":
        custom = turbo_timesteps()
        sched.set_timesteps(timesteps=custom.cpu(), device="cpu")
        ts_record = {"timesteps": ints(custom)}
    else:
        sched.set_timesteps(device="cpu", **ts_kwargs)
        ts_record = dict(ts_kwargs)
    timesteps = sched.timesteps
    n = len(timesteps)
    rec = {
        "case": name,
        "scheduler": type(sched).__name__,
        "assumed_checkpoint_config": base or "(class defaults)",
        "from_config_overrides": overrides,
        "config": clean_config(sched.config),
        "set_timesteps": ts_record,
        "timesteps_dtype": str(timesteps.dtype).replace("torch.", ""),
        "timesteps": f32s(timesteps) if kind == "euler" else ints(timesteps),
        "init_noise_sigma": f32s(torch.as_tensor(sched.init_noise_sigma, dtype=torch.float32)),
        "shape": list(SHAPE),
        "seed": seed,
        "model": "model_output = scale_model_input(latents, t) * f32(0.1) + (f32(t) / f32(1000)) * f32(0.01)",
    }
    if kind == "euler":
        sig = sched.sigmas
        rec["sigmas"] = f32s(sig)
        rec["scale_model_input_divisor"] = f32s(torch.stack([(sig[i] ** 2 + 1) ** 0.5 for i in range(n)]))
        ups, downs = [], []
        for i in range(n):
            s_from, s_to = sig[i], sig[i + 1]
            up = (s_to**2 * (s_from**2 - s_to**2) / s_from**2) ** 0.5
            ups.append(up)
            downs.append((s_to**2 - up**2) ** 0.5)
        # same expressions as EulerAncestralDiscreteScheduler.step; the loop below checks them
        rec["sigma_up"], rec["sigma_down"] = f32s(torch.stack(ups)), f32s(torch.stack(downs))
    else:
        ac = sched.alphas_cumprod
        a_t, a_prev, c_skip, c_out = [], [], [], []
        for i, t in enumerate(timesteps):
            prev_t = timesteps[i + 1] if i + 1 < n else t
            a_t.append(ac[t])
            a_prev.append(ac[prev_t] if prev_t >= 0 else sched.final_alpha_cumprod)
            cs, co = sched.get_scalings_for_boundary_condition_discrete(t)
            c_skip.append(cs)
            c_out.append(co)
        rec["alpha_prod_t"], rec["alpha_prod_t_prev"] = f32s(torch.stack(a_t)), f32s(torch.stack(a_prev))
        rec["c_skip"], rec["c_out"] = f32s(torch.stack(c_skip)), f32s(torch.stack(c_out))
        rec["final_alpha_cumprod"] = f32s(sched.final_alpha_cumprod)
        rec["num_inference_steps"] = sched.num_inference_steps

    gen = torch.Generator("cpu").manual_seed(seed)
    noise0 = randn_tensor(SHAPE, generator=gen, device=torch.device("cpu"), dtype=torch.float32)
    latents = noise0 * sched.init_noise_sigma
    rec["initial_noise"], rec["initial_latents"] = f32s(noise0), f32s(latents)

    module = euler_mod if kind == "euler" else lcm_mod
    steps = []
    with Recorder(module) as r:
        for i, t in enumerate(timesteps):
            out = model(latents, t, sched)
            if i == 0:
                probe = copy.deepcopy(sched)
            before = len(r.draws)
            res = sched.step(out, t, latents, generator=gen)
            drew = r.draws[before:]
            assert len(drew) <= 1
            if i == 0:
                step0 = {"prev_sample": f32s(res.prev_sample)}
                if kind == "euler":
                    step0["pred_original_sample"] = f32s(res.pred_original_sample)
                    # check the recorded sigma_up / sigma_down against the step's own arithmetic
                    s = sched.sigmas
                    derivative = (latents - res.pred_original_sample) / s[0]
                    det = latents + derivative * (torch.tensor(rec["sigma_down"][0], dtype=torch.float32) - s[0])
                    assert torch.equal(det + drew[0] * torch.tensor(rec["sigma_up"][0]), res.prev_sample)
                else:
                    step0["denoised"] = f32s(res.denoised)
                    probe.get_scalings_for_boundary_condition_discrete = lambda _t: (0.0, 1.0)
                    with Recorder(lcm_mod):
                        x0 = probe.step(out, t, latents, generator=torch.Generator("cpu").manual_seed(0)).denoised
                    step0["pred_original_sample"] = f32s(x0)
            steps.append({
                "t": f32s(t) if kind == "euler" else int(t),
                "model_output": f32s(out),
                "noise": f32s(drew[0]) if drew else None,
                "prev_sample": f32s(res.prev_sample),
            })
            latents = res.prev_sample
    expected_draws = n if kind == "euler" else n - 1
    assert len(r.draws) == expected_draws, (name, len(r.draws))
    rec["noise_draws"] = expected_draws
    rec["step0"] = step0
    rec["steps"] = steps
    rec["final"] = f32s(latents)
    return rec


def schedules():
    out = {}
    for key, kw in [("scaled_linear", {}), ("linear", {"beta_schedule": "linear"}),
                    ("scaled_linear_zsnr", {"rescale_betas_zero_snr": True})]:
        base = dict({"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear"}, **kw)
        lcm = LCMScheduler(**base)
        euler = EulerAncestralDiscreteScheduler(**base)
        assert torch.equal(lcm.betas, euler.betas)
        entry = {"config": base, "betas": f32s(lcm.betas), "alphas_cumprod": f32s(lcm.alphas_cumprod)}
        if not torch.equal(lcm.alphas_cumprod, euler.alphas_cumprod):
            diff = torch.nonzero(lcm.alphas_cumprod != euler.alphas_cumprod).reshape(-1).tolist()
            assert diff == [999], diff
            entry["alphas_cumprod_euler_999"] = f32s(euler.alphas_cumprod[999])
        out[key] = entry
    return out


def fmt(obj, indent=0):
    """JSON with objects indented and number lists on one line."""
    pad = " " * indent
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f'{pad} {json.dumps(k)}: {fmt(v, indent + 1)}' for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and any(isinstance(v, (dict, list)) for v in obj):
        return "[\n" + ",\n".join(f"{pad} {fmt(v, indent + 1)}" for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, separators=(", ", ": "))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if diffusers.__version__ != PINNED_DIFFUSERS:
        print(f"note: diffusers {diffusers.__version__}, fixtures pin {PINNED_DIFFUSERS}")
    os.makedirs(args.out, exist_ok=True)
    meta = {"diffusers": diffusers.__version__, "generator": "pipeline/tests/reference/scheduler_fixtures.py"}
    files = {"schedules.json": dict(meta, schedules=schedules())}
    for case in CASES:
        files[case[0] + ".json"] = dict(meta, **run_case(*case))
    total = 0
    for name, obj in files.items():
        text = fmt(obj) + "\n"
        json.loads(text)
        with open(os.path.join(args.out, name), "w") as fh:
            fh.write(text)
        total += len(text)
        print(f"{name}: {len(text)} bytes")
    print(f"total {total} bytes in {args.out}")


if __name__ == "__main__":
    main()
