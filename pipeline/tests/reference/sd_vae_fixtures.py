"""Parity fixtures for the burn port of Stable Diffusion's VAE (diffusers `AutoencoderKL`, SD 2.x
sized), the image autoencoder of Hunyuan3D-Paint's delight and multiview pipelines.

What it writes (under pipeline/tests/fixtures/sd_vae/, deterministic: two runs give identical bytes):

* `tiny/`: a diffusers-format VAE folder exactly as `AutoencoderKL.save_pretrained` writes it
  (`config.json` + `diffusion_pytorch_model.safetensors`, float32) of TINY_CONFIG below:
  4 x DownEncoderBlock2D / 4 x UpDecoderBlock2D, block_out_channels [16, 16, 32, 32],
  layers_per_block 1, latent_channels 4, norm_num_groups 8, sample_size 32, scaling_factor 0.18215
  (261,079 parameters, so each weight file is about 1 MB). Built after torch.manual_seed(0), then
  EVERY parameter is overwritten with a seeded draw (torch.Generator seeded WEIGHT_SEED, parameters
  visited in sorted-name order), so a transposed kernel, a swapped block or a dropped bias shows:
    - Conv2d / Linear weight: N(0, 1) / sqrt(fan_in)  (fan_in = in_channels * kh * kw),
    - Conv2d / Linear bias:   0.1 * N(0, 1),
    - GroupNorm weight:       1 + 0.1 * N(0, 1),    GroupNorm bias: 0.1 * N(0, 1).
* `tiny_pickle/`: the same `config.json` and the same state dict written with `torch.save` as
  `diffusion_pytorch_model.bin` (PyTorch zip + pickle format, as old diffusers folders ship it).
* `tiny_io.json` + `tiny_io/*.bin`: inputs, outputs and intermediates of the tiny model (raw
  little-endian float32, row-major / C order; names, shapes and descriptions in the manifest):
    - `x`: the input batch [2, 3, 32, 32], uniform in [-1, 1) (torch.rand, INPUT_SEED, times 2 minus 1);
    - encoder intermediates (forward hooks): `enc_down_block_{0..3}`, `enc_mid_attn` (output of
      encoder.mid_block.attentions.0, residual included), `enc_mid_block`;
    - `h` = vae.encoder(x) [2, 8, 4, 4] and `moments` = vae.quant_conv(h) [2, 8, 4, 4]
      (== vae.encode(x).latent_dist.parameters, checked);
    - `latent_dist.{mean, logvar, std, var, mode}` [2, 4, 4, 4] (logvar after diffusers' clamp to
      [-30, 20]; var = exp(logvar) is unused by the pipelines but cheap);
    - `sample_eps`: the standard-normal draw `latent_dist.sample(generator)` used, recorded by
      wrapping diffusers' randn_tensor (generator = torch.Generator("cpu").manual_seed(SAMPLE_SEED);
      equal to torch.randn([2, 4, 4, 4], generator=that generator)), and `sample` = mean + std * eps;
    - decoding z = the mode: `post_quant_conv` [2, 4, 4, 4], `dec_conv_in` [2, 32, 4, 4],
      `dec_mid_attn`, `dec_mid_block` [2, 32, 4, 4], `dec_up_block_0` [2, 32, 8, 8] and
      `decoded` = vae.decode(z).sample [2, 3, 32, 32] (== vae(x).sample, checked);
    - `clamp_moments` [1, 8, 2, 2] and its `clamp_{mean, logvar, std, var}`: a hand-made moments
      tensor whose logvar half spans [-45, 35] (exactly -30 and 20 included), fed straight to
      DiagonalGaussianDistribution, so the clamp is exercised (the network never reaches it).
  The manifest also records the attention numerics (below), how far the float32 run is from the
  same model run in float64 (`float64_deviation`: about 1e-6 on the moments, 8e-6 on `decoded`; a
  guide for tolerances), how far plausible porting mistakes move `moments` / `decoded`
  (`sensitivity_max_abs_change`: a dropped bias, a kh <-> kw transposed kernel, swapped to_q / to_k,
  symmetric downsample padding, no attention residual all move them by 0.05 to 4; GroupNorm eps
  1e-5 instead of 1e-6 by 2e-5 / 1.5e-4), and the checks the generator made (the saved folders load
  back through `AutoencoderKL.from_pretrained` and reproduce the outputs bit for bit, etc.).
* `sd2_vae_manifest.json`: for the full-size SD 2.x VAE (SD2_CONFIG) and for TINY_CONFIG, built on
  torch's meta device (no memory): the config as diffusers 0.32.2 resolves it, the sorted
  state-dict key -> shape map, the number of tensors and the total parameter count, plus the
  legacy attention key names (see "Key names in published checkpoints").

Run it like this (CPU only, float32, torch.backends defaults, torch.set_num_threads(1)):

    python3 -m venv /root/.cache/orfeas/paint-venv        # the paint-fixtures venv, reused
    /root/.cache/orfeas/paint-venv/bin/pip install torch "diffusers==0.32.2" safetensors numpy
    /root/.cache/orfeas/paint-venv/bin/python pipeline/tests/reference/sd_vae_fixtures.py

`--out DIR` writes elsewhere (used to check that two runs agree byte for byte).
Reference: diffusers 0.32.2 (PyPI), run unmodified; written with torch 2.15.0 on an AVX512 CPU.
Nothing upstream is copied here.

SD 2.x config (SD2_CONFIG): stabilityai/stable-diffusion-2-1 `vae/config.json` is not read here; it
is reconstructed as in_channels 3, out_channels 3, 4 x DownEncoderBlock2D, 4 x UpDecoderBlock2D,
block_out_channels [128, 256, 512, 512], layers_per_block 2, act_fn silu, latent_channels 4,
norm_num_groups 32, sample_size 768. Assumed: every other field takes the diffusers 0.32.2
AutoencoderKL default. The published file predates `scaling_factor` (as other SD 2 VAE configs of that
time do), so the 0.18215 the pipelines use is that default; shift_factor None, latents_mean/std
None, force_upcast True, use_quant_conv / use_post_quant_conv True, mid_block_add_attention True.
None of these defaults changes the key set except the last three (all True here).
The Hunyuan3D-Paint checkpoints ship their own vae/config.json (not read here either); they are
expected to be this SD 2.x layout.

Module structure (diffusers 0.32.2; `C = block_out_channels`, `L = layers_per_block`, `G =
norm_num_groups`; every GroupNorm has eps 1e-6 and affine weight + bias; every Conv2d has a bias;
every nonlinearity is SiLU; Dropout has p = 0 and no parameters):

  encoder.conv_in                      Conv2d(3 -> C[0], 3x3, stride 1, pad 1)
  encoder.down_blocks.N (N = 0..3)     DownEncoderBlock2D(in = C[N-1] (C[0] for N = 0), out = C[N])
    .resnets.M (M = 0..L-1)            ResnetBlock2D(in = block in for M = 0 else C[N], out = C[N])
    .downsamplers.0.conv               only for N < 3: F.pad(x, (0, 1, 0, 1)) (one zero column on the
                                       RIGHT and one zero row at the BOTTOM, nothing left/top), then
                                       Conv2d(C[N] -> C[N], 3x3, stride 2, pad 0): H -> H / 2
  encoder.mid_block                    UNetMidBlock2D(C[3]): resnets.0 -> attentions.0 -> resnets.1
  encoder.conv_norm_out                GroupNorm(G, C[3]) -> SiLU ->
  encoder.conv_out                     Conv2d(C[3] -> 2 * latent_channels, 3x3, pad 1)   (double_z)
  quant_conv                           Conv2d(2 * lc -> 2 * lc, 1x1)
  -> moments; mean, logvar = moments.chunk(2, dim=1) (first lc channels are the mean);
     logvar = clamp(logvar, -30, 20); std = exp(0.5 * logvar); var = exp(logvar);
     mode() = mean; sample(gen) = mean + std * randn(mean.shape, generator=gen)
  post_quant_conv                      Conv2d(lc -> lc, 1x1)
  decoder.conv_in                      Conv2d(lc -> C[3], 3x3, pad 1)
  decoder.mid_block                    UNetMidBlock2D(C[3]), same layout as the encoder's
  decoder.up_blocks.N (N = 0..3)       UpDecoderBlock2D over R = reversed(C) = [C[3], C[2], C[1], C[0]]:
                                       in = R[N-1] (R[0] for N = 0), out = R[N], L + 1 resnets
    .resnets.M (M = 0..L)              ResnetBlock2D(in = block in for M = 0 else R[N], out = R[N])
    .upsamplers.0.conv                 only for N < 3: F.interpolate(scale_factor=2, mode="nearest")
                                       (out[i, j] = in[i // 2, j // 2]) then Conv2d(R[N] -> R[N], 3x3,
                                       pad 1). The conv sees R[N] channels: a channel change happens in
                                       resnets.0 of the block, never in the upsampler.
  decoder.conv_norm_out                GroupNorm(G, C[0]) -> SiLU ->
  decoder.conv_out                     Conv2d(C[0] -> 3, 3x3, pad 1)   (no tanh / clamp here)

  So up_blocks.0 is the deepest (C[3] channels, at the latent resolution) and up_blocks.3 the
  shallowest (C[0], full resolution, no upsampler): the reverse of block_out_channels' order.
  decoder.up_blocks.N mirrors encoder.down_blocks.(3 - N) but has L + 1 resnets, not L.

  ResnetBlock2D(in, out) (temb_channels None: no time_emb_proj; output_scale_factor 1.0):
    h = conv1(SiLU(norm1(x)))          norm1 = GroupNorm(G, in), conv1 = Conv2d(in -> out, 3x3, pad 1)
    h = conv2(SiLU(norm2(h)))          norm2 = GroupNorm(G, out), conv2 = Conv2d(out -> out, 3x3, pad 1)
    y = (shortcut(x) + h) / output_scale_factor      (a division by 1.0: exact)
    shortcut = conv_shortcut, Conv2d(in -> out, 1x1, with bias), only where in != out, else identity.
  conv_shortcut therefore exists exactly in the first resnet of a block whose channel count
  changes: SD 2.x: encoder.down_blocks.{1,2}.resnets.0 and decoder.up_blocks.{2,3}.resnets.0;
  tiny: encoder.down_blocks.2.resnets.0 and decoder.up_blocks.2.resnets.0.

  Mid-block attention (encoder/decoder .mid_block.attentions.0, diffusers >= 0.15 names,
  `Attention(C, heads=1, dim_head=C, norm_num_groups=G, eps=1e-6, residual_connection=True,
  rescale_output_factor=1.0, bias=True, upcast_softmax=True, _from_deprecated_attn_block=True)`),
  processor AttnProcessor2_0 (the default with torch 2.x):
    r = x                                          [B, C, H, W]
    t = group_norm(x)  as [B, C, H*W] -> transpose -> [B, H*W, C]   (tokens in row-major pixel order)
    q, k, v = to_q(t), to_k(t), to_v(t)            nn.Linear(C, C) over channels (weight [C, C], bias [C])
    a = F.scaled_dot_product_attention(q, k, v)    ONE head of dim C: softmax(q k^T / sqrt(C)) v
    o = to_out.0(a)                                nn.Linear(C, C); to_out.1 is Dropout(0)
    y = (o -> [B, C, H, W] + r) / rescale_output_factor       (/ 1.0)
  `upcast_softmax` is ignored by AttnProcessor2_0. SDPA gets no `scale` argument: its default
  1/sqrt(head_dim) = 1/sqrt(C) equals diffusers' `attn.scale`. On the CPU, for these shapes torch
  2.15 picks its flash-attention CPU kernel (torch._fused_sdp_choice == FLASH_ATTENTION): q k^T by
  GEMM, times the scale, online (blocked) softmax with the row max subtracted, normalised once at the
  end, float32 accumulation for float32 inputs. tiny_io.json "attention" gives its distance from a
  plain float32 softmax(q k^T * scale) v and from float64: ulp level, not bit-exact.

State-dict keys (per module above: Conv2d .weight [out, in, kh, kw] + .bias [out]; Linear .weight
[out, in] + .bias [out]; GroupNorm .weight [C] + .bias [C]):
  encoder.conv_in, encoder.down_blocks.N.resnets.M.{norm1, conv1, norm2, conv2[, conv_shortcut]},
  encoder.down_blocks.N.downsamplers.0.conv, encoder.mid_block.resnets.{0,1}.{norm1, conv1, norm2,
  conv2}, encoder.mid_block.attentions.0.{group_norm, to_q, to_k, to_v, to_out.0},
  encoder.conv_norm_out, encoder.conv_out, quant_conv, post_quant_conv, decoder.conv_in,
  decoder.mid_block.(as the encoder's), decoder.up_blocks.N.resnets.M.{...},
  decoder.up_blocks.N.upsamplers.0.conv, decoder.conv_norm_out, decoder.conv_out.
  SD 2.x: 248 tensors, 83,653,863 parameters; tiny: 180 tensors, 261,079 parameters.

Key names in published checkpoints: VAEs converted before diffusers 0.15 (the SD 2.x `vae/` folders,
stable-diffusion-2-1-base among them) name the mid-block attention's layers with the deprecated
AttentionBlock names `query`, `key`, `value`, `proj_attn` (same shapes: Linear [C, C] + [C]);
`group_norm` is unchanged. diffusers renames them on load (ModelMixin._convert_deprecated_attention_blocks):
query -> to_q, key -> to_k, value -> to_v, proj_attn -> to_out.0. `save_pretrained` writes the new
names, so `tiny/` uses them; a loader for real checkpoints must accept both (the map is in
sd2_vae_manifest.json). Original CompVis / single-file checkpoints use different names and 1x1-conv
attention weights; they are not covered.

How the Hunyuan3D-Paint pipelines (hy3dgen 2.0.2, diffusers 0.32.2) call the VAE:
  - multiview (hy3dgen/texgen/hunyuanpaint/pipeline.py encode_images): images in [0, 1] ->
    (x - 0.5) * 2 -> vae.encode(x).latent_dist.sample() (NO generator: the global RNG of the device)
    * scaling_factor; decoding: vae.decode(latents / scaling_factor).
  - delight (StableDiffusionInstructPix2PixPipeline.prepare_image_latents): the image latents are
    vae.encode(image).latent_dist.mode() and are NOT multiplied by scaling_factor; decoding:
    vae.decode(latents / scaling_factor).
  Both then map the decoded image with (x / 2 + 0.5).clamp(0, 1) in the image processor.
"""
import argparse
import copy
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

import diffusers
from diffusers import AutoencoderKL
from diffusers.models.autoencoders import vae as vae_module
from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution
from safetensors.torch import load_file

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "sd_vae")

TINY_CONFIG = dict(
    in_channels=3,
    out_channels=3,
    down_block_types=["DownEncoderBlock2D"] * 4,
    up_block_types=["UpDecoderBlock2D"] * 4,
    block_out_channels=[16, 16, 32, 32],
    layers_per_block=1,
    latent_channels=4,
    norm_num_groups=8,
    sample_size=32,
    scaling_factor=0.18215,
)

# Reconstructed stabilityai/stable-diffusion-2-1 vae/config.json (see the header).
SD2_CONFIG = dict(
    act_fn="silu",
    block_out_channels=[128, 256, 512, 512],
    down_block_types=["DownEncoderBlock2D"] * 4,
    in_channels=3,
    latent_channels=4,
    layers_per_block=2,
    norm_num_groups=32,
    out_channels=3,
    sample_size=768,
    up_block_types=["UpDecoderBlock2D"] * 4,
)

WEIGHT_SEED = 1
INPUT_SEED = 2
SAMPLE_SEED = 3
BATCH = 2

LEGACY_ATTENTION_NAMES = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def dumps_compact_leaves(value, indent=0):
    """JSON with one line per dict entry / list element whose value is a scalar or a flat list."""
    pad = " " * indent

    def flat(v):
        return not isinstance(v, (dict, list)) or (
            isinstance(v, list) and all(not isinstance(e, (dict, list)) for e in v))

    if isinstance(value, dict):
        if not value:
            return "{}"
        items = []
        for k, v in value.items():
            text = json.dumps(v, separators=(", ", ": ")) if flat(v) else dumps_compact_leaves(v, indent + 1)
            items.append(f"{pad} {json.dumps(k)}: {text}")
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list) and not flat(value):
        items = [f"{pad} " + (json.dumps(v) if flat(v) else dumps_compact_leaves(v, indent + 1)) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, separators=(", ", ": "))


def write_json(path, value):
    with open(path, "w") as f:
        f.write(dumps_compact_leaves(value) + "\n")


def max_abs(a, b):
    return float((a.double() - b.double()).abs().max())


def rel(a, ref):
    """max |a - ref| / max |ref| (normwise, in float64)."""
    return float((a.double() - ref.double()).abs().max() / ref.double().abs().max())


def build_vae(config):
    return AutoencoderKL(**config)


def randomize(vae, seed):
    """Overwrite every parameter with a seeded draw (see the header for the scales)."""
    gen = torch.Generator("cpu").manual_seed(seed)
    owner = {}
    for mname, module in vae.named_modules():
        for pname, _ in module.named_parameters(recurse=False):
            owner[f"{mname}.{pname}" if mname else pname] = module
    done = set()
    with torch.no_grad():
        for name, p in sorted(vae.named_parameters()):
            module = owner[name]
            leaf = name.rsplit(".", 1)[1]
            draw = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if isinstance(module, torch.nn.GroupNorm):
                value = 1.0 + 0.1 * draw if leaf == "weight" else 0.1 * draw
            elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                if leaf == "weight":
                    fan_in = int(np.prod(p.shape[1:]))
                    value = draw / float(np.sqrt(fan_in))
                else:
                    value = 0.1 * draw
            else:
                raise SystemExit(f"unexpected parameter owner {type(module).__name__} for {name}")
            p.copy_(value)
            done.add(name)
    all_names = {n for n, _ in vae.named_parameters()}
    assert done == all_names, all_names - done
    assert len(all_names) == len(vae.state_dict()), "the state dict holds something besides parameters"


def key_manifest(config):
    with torch.device("meta"):
        vae = build_vae(config)
    sd = vae.state_dict()
    keys = {k: list(v.shape) for k, v in sorted(sd.items())}
    count = int(sum(int(np.prod(s)) for s in keys.values()))
    resolved = {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in sorted(vae.config.items()) if not k.startswith("_")}
    attn_paths = sorted(n for n, m in vae.named_modules()
                        if getattr(m, "_from_deprecated_attn_block", False))
    legacy = {}
    for path in attn_paths:
        for old, new in LEGACY_ATTENTION_NAMES.items():
            for leaf in ("weight", "bias"):
                legacy[f"{path}.{old}.{leaf}"] = f"{path}.{new}.{leaf}"
    return vae, {
        "resolved_config": resolved,
        "num_tensors": len(keys),
        "param_count": count,
        "keys": keys,
        "legacy_attention_key_aliases": dict(sorted(legacy.items())),
    }


def attention_reference(attn, x, dtype, return_probs=False):
    """Plain softmax(q k^T * scale) v of a mid-block Attention, in `dtype`."""
    p = {k: v.detach().to(dtype) for k, v in attn.state_dict().items()}
    x = x.to(dtype)
    b, c, hh, ww = x.shape
    h = F.group_norm(x.reshape(b, c, hh * ww), attn.group_norm.num_groups,
                     p["group_norm.weight"], p["group_norm.bias"], attn.group_norm.eps).transpose(1, 2)
    q = F.linear(h, p["to_q.weight"], p["to_q.bias"])
    k = F.linear(h, p["to_k.weight"], p["to_k.bias"])
    v = F.linear(h, p["to_v.weight"], p["to_v.bias"])
    s = (q @ k.transpose(1, 2)) * (c ** -0.5)
    probs = s.softmax(dim=-1)
    o = F.linear(probs @ v, p["to_out.0.weight"], p["to_out.0.bias"])
    o = o.transpose(1, 2).reshape(b, c, hh, ww)
    y = (o + x) / attn.rescale_output_factor
    return (y, probs) if return_probs else y


# ---------------------------------------------------------------------------------------------
# The tiny model: weights and reference tensors
# ---------------------------------------------------------------------------------------------


HOOKED = {
    "enc_down_block_0": "encoder.down_blocks.0",
    "enc_down_block_1": "encoder.down_blocks.1",
    "enc_down_block_2": "encoder.down_blocks.2",
    "enc_down_block_3": "encoder.down_blocks.3",
    "enc_mid_attn": "encoder.mid_block.attentions.0",
    "enc_mid_block": "encoder.mid_block",
    "dec_conv_in": "decoder.conv_in",
    "dec_mid_attn": "decoder.mid_block.attentions.0",
    "dec_mid_block": "decoder.mid_block",
    "dec_up_block_0": "decoder.up_blocks.0",
}

DESCRIPTIONS = {
    "x": "input batch, torch.rand(generator=INPUT_SEED) * 2 - 1",
    "enc_down_block_0": "output of encoder.down_blocks.0 (resnet + pad(0,1,0,1) + stride-2 conv)",
    "enc_down_block_1": "output of encoder.down_blocks.1",
    "enc_down_block_2": "output of encoder.down_blocks.2 (resnets.0 has conv_shortcut 16 -> 32)",
    "enc_down_block_3": "output of encoder.down_blocks.3 (no downsampler)",
    "enc_mid_attn_in": "input of encoder.mid_block.attentions.0 (= output of mid_block.resnets.0)",
    "enc_mid_attn": "output of encoder.mid_block.attentions.0 (residual included)",
    "enc_mid_block": "output of encoder.mid_block",
    "h": "vae.encoder(x)",
    "moments": "vae.quant_conv(h) == latent_dist.parameters",
    "mean": "latent_dist.mean (channels 0..3 of moments)",
    "logvar": "latent_dist.logvar (channels 4..7 of moments, clamped to [-30, 20])",
    "std": "latent_dist.std = exp(0.5 * logvar)",
    "var": "latent_dist.var = exp(logvar)",
    "mode": "latent_dist.mode() (== mean)",
    "sample_eps": "the randn draw latent_dist.sample(torch.Generator('cpu').manual_seed(SAMPLE_SEED)) used",
    "sample": "latent_dist.sample(generator) = mean + std * sample_eps",
    "post_quant_conv": "vae.post_quant_conv(mode)",
    "dec_conv_in": "output of decoder.conv_in",
    "dec_mid_attn_in": "input of decoder.mid_block.attentions.0",
    "dec_mid_attn": "output of decoder.mid_block.attentions.0 (residual included)",
    "dec_mid_block": "output of decoder.mid_block",
    "dec_up_block_0": "output of decoder.up_blocks.0 (2 resnets + nearest 2x + conv)",
    "decoded": "vae.decode(mode).sample",
    "clamp_moments": "hand-made moments: channels 0..3 mean, 4..7 logvar spanning [-45, 35]",
    "clamp_mean": "DiagonalGaussianDistribution(clamp_moments).mean",
    "clamp_logvar": "DiagonalGaussianDistribution(clamp_moments).logvar (clamped)",
    "clamp_std": "DiagonalGaussianDistribution(clamp_moments).std",
    "clamp_var": "DiagonalGaussianDistribution(clamp_moments).var",
}


def run_tiny(vae):
    """Runs the reference computations; returns {name: float32 tensor} and a dict of checks."""
    modules = dict(vae.named_modules())
    captured = {}
    handles = []
    for name, path in HOOKED.items():
        def hook(_m, _inp, out, name=name):
            captured[name] = out.detach().clone()
        handles.append(modules[path].register_forward_hook(hook))
    for name, path in (("enc_mid_attn_in", "encoder.mid_block.attentions.0"),
                       ("dec_mid_attn_in", "decoder.mid_block.attentions.0")):
        def pre(_m, inp, name=name):
            captured[name] = inp[0].detach().clone()
        handles.append(modules[path].register_forward_pre_hook(pre))

    gen = torch.Generator("cpu").manual_seed(INPUT_SEED)
    x = torch.rand(BATCH, 3, 32, 32, generator=gen, dtype=torch.float32) * 2.0 - 1.0

    t = {"x": x}
    checks = {}
    with torch.no_grad():
        h = vae.encoder(x)
        moments = vae.quant_conv(h)
        enc_hooks = {k: v for k, v in captured.items()}
        posterior = vae.encode(x).latent_dist
        checks["moments_equal_latent_dist_parameters"] = bool(torch.equal(moments, posterior.parameters))
        for k, v in enc_hooks.items():  # the second pass (encode) must reproduce the first
            assert torch.equal(captured[k], v), k
        t.update(h=h, moments=moments, mean=posterior.mean, logvar=posterior.logvar, std=posterior.std,
                 var=posterior.var, mode=posterior.mode())

        drawn = []
        original = vae_module.randn_tensor

        def recording_randn_tensor(*args, **kwargs):
            out = original(*args, **kwargs)
            drawn.append(out.detach().clone())
            return out

        vae_module.randn_tensor = recording_randn_tensor
        try:
            sample = posterior.sample(generator=torch.Generator("cpu").manual_seed(SAMPLE_SEED))
        finally:
            vae_module.randn_tensor = original
        assert len(drawn) == 1
        eps = drawn[0]
        plain = torch.randn(eps.shape, generator=torch.Generator("cpu").manual_seed(SAMPLE_SEED))
        checks["sample_eps_equals_torch_randn_with_same_seed"] = bool(torch.equal(eps, plain))
        checks["sample_equals_mean_plus_std_times_eps"] = bool(
            torch.equal(sample, posterior.mean + posterior.std * eps))
        t.update(sample_eps=eps, sample=sample)

        z = posterior.mode()
        t["post_quant_conv"] = vae.post_quant_conv(z)
        decoded = vae.decode(z).sample
        t["decoded"] = decoded
        for k in ("dec_conv_in", "dec_mid_attn_in", "dec_mid_attn", "dec_mid_block", "dec_up_block_0"):
            t[k] = captured[k]
        for k in ("enc_down_block_0", "enc_down_block_1", "enc_down_block_2", "enc_down_block_3",
                  "enc_mid_attn_in", "enc_mid_attn", "enc_mid_block"):
            t[k] = enc_hooks[k]
        full = vae(x).sample  # sample_posterior=False: decode(mode)
        checks["forward_equals_decode_of_mode"] = bool(torch.equal(full, decoded))

        # The clamp, on hand-made moments.
        mean_part = torch.linspace(-2.0, 2.0, 16, dtype=torch.float32).reshape(1, 4, 2, 2)
        logvar_part = torch.tensor([-45.0, -30.0, -29.5, -10.0, -1.0, -0.25, 0.0, 0.5,
                                    3.0, 10.0, 19.75, 20.0, 20.5, 25.0, 35.0, -30.25],
                                   dtype=torch.float32).reshape(1, 4, 2, 2)
        cm = torch.cat([mean_part, logvar_part], dim=1)
        cd = DiagonalGaussianDistribution(cm)
        t.update(clamp_moments=cm, clamp_mean=cd.mean, clamp_logvar=cd.logvar, clamp_std=cd.std,
                 clamp_var=cd.var)

    for hnd in handles:
        hnd.remove()
    return t, checks


def attention_numerics(vae, t):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    out = {}
    for side, path in (("encoder", vae.encoder.mid_block.attentions[0]),
                       ("decoder", vae.decoder.mid_block.attentions[0])):
        x = t[f"{'enc' if side == 'encoder' else 'dec'}_mid_attn_in"]
        got = t[f"{'enc' if side == 'encoder' else 'dec'}_mid_attn"]
        b, c, hh, ww = x.shape
        with torch.no_grad():
            probe = torch.zeros(b, 1, hh * ww, c)
            choice = SDPBackend(int(torch._fused_sdp_choice(probe, probe, probe))).name
            plain32, probs = attention_reference(path, x, torch.float32, return_probs=True)
            plain64 = attention_reference(path, x, torch.float64)
            with sdpa_kernel(SDPBackend.MATH):
                math32 = path(x)
            again = path(x)
        out[side] = {
            "processor": type(path.processor).__name__,
            "heads": path.heads,
            "head_dim": c // path.heads,
            "tokens": hh * ww,
            "scale": path.scale,
            "rescale_output_factor": path.rescale_output_factor,
            "residual_connection": path.residual_connection,
            "sdpa_backend_chosen": choice,
            "max_abs_sdpa_vs_plain_float32": max_abs(got, plain32),
            "max_abs_sdpa_vs_float64": max_abs(got, plain64),
            "max_abs_plain_float32_vs_float64": max_abs(plain32, plain64),
            "max_abs_sdpa_math_backend_vs_default": max_abs(math32, got),
            "sdpa_repeatable": bool(torch.equal(again, got)),
            "max_abs_output": float(got.abs().max()),
            "max_abs_attention_branch": float((got - x).abs().max()),
            "mean_row_max_probability": float(probs.max(dim=-1).values.mean()),
            "uniform_probability": 1.0 / (hh * ww),
        }
    return out


def sensitivity(vae, t):
    """How much plausible porting mistakes move the outputs (max abs change of moments / decoded)."""
    def zero_bias(path):
        def apply(m):
            dict(m.named_modules())[path].bias.zero_()
        return apply

    def transpose_kernel(path):
        def apply(m):
            w = dict(m.named_modules())[path].weight
            w.copy_(w.transpose(2, 3).clone())
        return apply

    def transpose_linear(path):
        def apply(m):
            w = dict(m.named_modules())[path].weight
            w.copy_(w.t().clone())
        return apply

    def swap_qk(path):
        def apply(m):
            a = dict(m.named_modules())[path]
            for leaf in ("weight", "bias"):
                q, k = getattr(a.to_q, leaf), getattr(a.to_k, leaf)
                tmp = q.clone()
                q.copy_(k)
                k.copy_(tmp)
        return apply

    def symmetric_downsample_padding(m):
        for mod in m.modules():
            if type(mod).__name__ == "Downsample2D":
                mod.padding = 1
                mod.conv.padding = (1, 1)

    def group_norm_eps(m):
        for mod in m.modules():
            if isinstance(mod, torch.nn.GroupNorm):
                mod.eps = 1e-5

    def no_attention_residual(m):
        for mod in m.modules():
            if getattr(mod, "_from_deprecated_attn_block", False):
                mod.residual_connection = False

    cases = {
        "zero bias of encoder.down_blocks.2.resnets.0.conv_shortcut":
            zero_bias("encoder.down_blocks.2.resnets.0.conv_shortcut"),
        "zero bias of decoder.up_blocks.2.resnets.0.conv_shortcut":
            zero_bias("decoder.up_blocks.2.resnets.0.conv_shortcut"),
        "zero bias of encoder.mid_block.attentions.0.group_norm":
            zero_bias("encoder.mid_block.attentions.0.group_norm"),
        "zero bias of decoder.conv_in": zero_bias("decoder.conv_in"),
        "zero bias of post_quant_conv": zero_bias("post_quant_conv"),
        "kernel transposed (kh <-> kw) in encoder.conv_in": transpose_kernel("encoder.conv_in"),
        "kernel transposed (kh <-> kw) in decoder.up_blocks.0.upsamplers.0.conv":
            transpose_kernel("decoder.up_blocks.0.upsamplers.0.conv"),
        "to_q and to_k swapped in encoder.mid_block.attentions.0": swap_qk("encoder.mid_block.attentions.0"),
        "to_v weight transposed in decoder.mid_block.attentions.0":
            transpose_linear("decoder.mid_block.attentions.0.to_v"),
        "downsample padding (1,1,1,1) instead of (0,1,0,1)": symmetric_downsample_padding,
        "GroupNorm eps 1e-5 instead of 1e-6": group_norm_eps,
        "mid-block attention without residual": no_attention_residual,
    }
    out = {}
    for name, apply in cases.items():
        m = copy.deepcopy(vae)
        with torch.no_grad():
            apply(m)
            post = m.encode(t["x"]).latent_dist
            dec = m.decode(post.mode()).sample
        out[name] = {"moments": max_abs(post.parameters, t["moments"]), "decoded": max_abs(dec, t["decoded"])}
    return out


def float64_deviation(vae, t):
    """How far the float32 reference is from the same model and input in float64."""
    v64 = copy.deepcopy(vae).double()
    with torch.no_grad():
        x = t["x"].double()
        h = v64.encoder(x)
        moments = v64.quant_conv(h)
        post = DiagonalGaussianDistribution(moments)
        pq = v64.post_quant_conv(post.mode())
        dec = v64.decode(post.mode()).sample
        dec_from_f32_mode = v64.decode(t["mode"].double()).sample
    res = {}
    for name, ref in (("h", h), ("moments", moments), ("mean", post.mean), ("logvar", post.logvar),
                      ("std", post.std), ("post_quant_conv", pq), ("decoded", dec)):
        res[name] = {"max_abs": max_abs(t[name], ref), "max_abs_over_max_ref": rel(t[name], ref),
                     "max_abs_ref": float(ref.abs().max())}
    res["decoded_from_float32_mode"] = {
        "max_abs": max_abs(t["decoded"], dec_from_f32_mode),
        "max_abs_over_max_ref": rel(t["decoded"], dec_from_f32_mode),
        "max_abs_ref": float(dec_from_f32_mode.abs().max()),
    }
    return res


def write_tiny(out_dir):
    torch.manual_seed(0)
    vae = build_vae(TINY_CONFIG)
    randomize(vae, WEIGHT_SEED)
    vae.eval()

    tiny_dir = os.path.join(out_dir, "tiny")
    vae.save_pretrained(tiny_dir, safe_serialization=True)
    names = sorted(os.listdir(tiny_dir))
    assert names == ["config.json", "diffusion_pytorch_model.safetensors"], names
    os.chmod(os.path.join(tiny_dir, "diffusion_pytorch_model.safetensors"), 0o644)  # safetensors writes 0600

    pickle_dir = os.path.join(out_dir, "tiny_pickle")
    os.makedirs(pickle_dir, exist_ok=True)
    with open(os.path.join(tiny_dir, "config.json"), "rb") as f:
        config_bytes = f.read()
    with open(os.path.join(pickle_dir, "config.json"), "wb") as f:
        f.write(config_bytes)
    torch.save(vae.state_dict(), os.path.join(pickle_dir, "diffusion_pytorch_model.bin"))

    checks = {}
    sd = vae.state_dict()
    st = load_file(os.path.join(tiny_dir, "diffusion_pytorch_model.safetensors"))
    pk = torch.load(os.path.join(pickle_dir, "diffusion_pytorch_model.bin"), weights_only=True)
    checks["safetensors_equals_state_dict"] = sorted(st) == sorted(sd) and all(
        st[k].dtype == torch.float32 and torch.equal(st[k], sd[k]) for k in sd)
    checks["pickle_equals_state_dict"] = sorted(pk) == sorted(sd) and all(
        pk[k].dtype == torch.float32 and torch.equal(pk[k], sd[k]) for k in sd)

    tensors, run_checks = run_tiny(vae)
    checks.update(run_checks)

    # The folder loads back through diffusers and reproduces the reference bit for bit.
    for label, folder in (("tiny", tiny_dir), ("tiny_pickle", pickle_dir)):
        loaded = AutoencoderKL.from_pretrained(folder).eval()
        with torch.no_grad():
            post = loaded.encode(tensors["x"]).latent_dist
            dec = loaded.decode(post.mode()).sample
        checks[f"{label}_from_pretrained_reproduces_outputs"] = bool(
            torch.equal(post.parameters, tensors["moments"]) and torch.equal(dec, tensors["decoded"]))

    attention = attention_numerics(vae, tensors)
    deviation = float64_deviation(vae, tensors)
    sens = sensitivity(vae, tensors)

    io_dir = os.path.join(out_dir, "tiny_io")
    os.makedirs(io_dir, exist_ok=True)
    entries = {}
    for name in DESCRIPTIONS:
        arr = tensors[name].detach().contiguous().numpy().astype("<f4")
        with open(os.path.join(io_dir, f"{name}.bin"), "wb") as f:
            f.write(arr.tobytes(order="C"))
        entries[name] = {"file": f"tiny_io/{name}.bin", "dtype": "float32", "shape": list(arr.shape),
                         "description": DESCRIPTIONS[name]}
    assert set(entries) == set(tensors), set(tensors) ^ set(entries)

    failed = [k for k, v in checks.items() if v is not True]
    assert not failed, failed

    manifest = {
        "generator": "pipeline/tests/reference/sd_vae_fixtures.py",
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "num_threads": torch.get_num_threads(),
        "weights": "tiny/ (safetensors) and tiny_pickle/ (torch.save zip pickle), same state dict",
        "config": {k: v for k, v in TINY_CONFIG.items()},
        "seeds": {"init_manual_seed": 0, "weights": WEIGHT_SEED, "input": INPUT_SEED,
                  "posterior_sample": SAMPLE_SEED},
        "weight_init": {
            "order": "parameters in sorted name order, one torch.randn draw each from one CPU generator",
            "conv_and_linear_weight": "randn / sqrt(fan_in), fan_in = prod(shape[1:])",
            "conv_and_linear_bias": "0.1 * randn",
            "group_norm_weight": "1 + 0.1 * randn",
            "group_norm_bias": "0.1 * randn",
        },
        "layout": "raw little-endian float32, row-major (C order), NCHW",
        "tensors": entries,
        "attention": attention,
        "float64_deviation": deviation,
        "sensitivity_max_abs_change": sens,
        "checks": checks,
    }
    write_json(os.path.join(out_dir, "tiny_io.json"), manifest)
    return vae


def write_key_manifest(out_dir):
    _, sd2 = key_manifest(SD2_CONFIG)
    _, tiny = key_manifest(TINY_CONFIG)
    sd2 = {
        "source": "stabilityai/stable-diffusion-2-1 vae/config.json, reconstructed (not downloaded)",
        "assumed_config": SD2_CONFIG,
        "assumptions": [
            "fields absent from assumed_config take diffusers 0.32.2 AutoencoderKL defaults "
            "(resolved_config shows them)",
            "scaling_factor 0.18215 is the diffusers default (the published SD 2.x VAE config predates the "
            "field)",
            "published SD 2.x VAE weights use the legacy mid-block attention names; see "
            "legacy_attention_key_aliases (old name -> new name, same shapes)",
        ],
        **sd2,
    }
    tiny = {"source": "TINY_CONFIG of the generator (tiny/config.json)", **tiny}
    write_json(os.path.join(out_dir, "sd2_vae_manifest.json"), {
        "generator": "pipeline/tests/reference/sd_vae_fixtures.py",
        "diffusers_version": diffusers.__version__,
        "built_on": "torch meta device",
        "sd2": sd2,
        "tiny": tiny,
    })
    return sd2, tiny


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    write_tiny(out_dir)
    sd2, tiny = write_key_manifest(out_dir)
    print(f"wrote {out_dir}: sd2 {sd2['num_tensors']} tensors / {sd2['param_count']} params, "
          f"tiny {tiny['num_tensors']} tensors / {tiny['param_count']} params")


if __name__ == "__main__":
    main()
