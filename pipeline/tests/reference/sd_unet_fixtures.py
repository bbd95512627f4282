"""Parity fixtures for the burn port of Stable Diffusion 2.x's denoising UNet (diffusers
`UNet2DConditionModel`), the base of Hunyuan3D-Paint's multiview UNet.

What it writes (under pipeline/tests/fixtures/sd_unet/, deterministic: two runs give identical bytes):

* `tiny/`: a diffusers-format UNet folder exactly as `UNet2DConditionModel.save_pretrained` writes it
  (`config.json` + `diffusion_pytorch_model.safetensors`, float32; no other weight format) of
  TINY_CONFIG below, shaped like SD 2.x but 3 blocks deep:
  down CrossAttnDownBlock2D, CrossAttnDownBlock2D, DownBlock2D / up UpBlock2D, CrossAttnUpBlock2D,
  CrossAttnUpBlock2D, block_out_channels [16, 32, 32], layers_per_block 2, attention_head_dim
  [2, 4, 4] (= HEADS per block, see below: head_dim 16/2 = 32/4 = 8), cross_attention_dim 24,
  norm_num_groups 8, use_linear_projection True, flip_sin_to_cos True, freq_shift 0, sample_size 8
  (494 tensors, 551,028 parameters, so the weight file is 2.2 MB). Built after torch.manual_seed(0),
  then EVERY parameter is overwritten with a seeded draw (torch.Generator seeded WEIGHT_SEED,
  parameters visited in sorted-name order), so a transposed kernel, a swapped block or a dropped bias
  shows:
    - Conv2d / Linear weight: N(0, 1) / sqrt(fan_in)  (fan_in = in_features, or in_channels * kh * kw),
    - Conv2d / Linear bias:   0.1 * N(0, 1),
    - GroupNorm / LayerNorm weight: 1 + 0.1 * N(0, 1),   GroupNorm / LayerNorm bias: 0.1 * N(0, 1).
* `tiny_io.json` + `tiny_io/*.bin`: inputs, outputs and intermediates of the tiny model (raw
  little-endian float32, row-major / C order; names, shapes and descriptions in the manifest). Inputs
  come from one torch.Generator seeded INPUT_SEED, drawn in this order: `sample` [2, 4, 8, 8] randn,
  `encoder_hidden_states` [2, 7, 24] randn, `seq5_encoder_hidden_states` [2, 5, 24] randn,
  `odd_sample` [2, 4, 6, 6] randn. Cases:
    - main: unet(sample, timestep=torch.tensor([999, 261]) (int64), encoder_hidden_states).
      `timestep` is stored as float32 [2] (999.0, 261.0: exact). Intermediates (forward hooks):
      `t_emb` [2, 16] (time_proj output), `emb` [2, 64] (time_embedding output), `conv_in`
      [2, 16, 8, 8], `down_block_N` (the hidden state a down block returns) and every entry of the
      residual tuple it returns, `down_block_N_res_M` (counts 3, 3, 2; the last entry of a block with
      a downsampler IS its output), `mid_block`, `up_block_N`, `conv_act` (SiLU(conv_norm_out(.))),
      `out` = unet(...).sample [2, 4, 8, 8]; and inside down_blocks.0: `resnet_0` (output of
      down_blocks.0.resnets.0 = input of attentions.0), `tb_in` [2, 64, 16] (input of
      attentions.0.transformer_blocks.0, i.e. after GroupNorm, NCHW -> tokens, proj_in), its
      `tb_attn1` / `tb_attn2` / `tb_ff` (the three branch outputs, before their residual adds),
      `tb_out` (the block output) and `attn_0` (output of attentions.0, outer residual included).
    - seq5: the same sample / timestep with `seq5_encoder_hidden_states` (5 tokens instead of 7):
      `seq5_tb_attn2`, `seq5_tb_out`, `seq5_mid_block`, `seq5_out`.
    - scalar_t0: timestep given as the Python int 0 (as Hunyuan3D-Paint calls its reference UNet):
      `scalar_t0_t_emb`, `scalar_t0_emb`, `scalar_t0_out` (encoder_hidden_states of the main case).
    - odd_hw (optional): `odd_sample` [2, 4, 6, 6], a size that is not a multiple of 2**num_upsamplers
      = 4, so diffusers forwards `upsample_size` and the first upsampler interpolates 2x2 -> 3x3
      (nearest, src = floor(dst * in / out)): `odd_hw_down_block_1` [2, 32, 2, 2] ((3 + 2 - 3) // 2 +
      1 = 2), `odd_hw_up_block_0` [2, 32, 3, 3], `odd_hw_out` [2, 4, 6, 6]. SD / Paint latents
      (64x64, 96x96) never take this path; skip it until the port supports it.
  The manifest also records: the skip stack (what every up-block resnet consumes, in order), the
  attention geometry of every Attention, the norms' eps, the attention numerics, how far the float32
  run is from float64 (`float64_deviation`), how far plausible porting mistakes move `out`
  (`sensitivity_max_abs_change`) and the checks the generator made (among them a plain-functional
  re-implementation of this header, `manual_forward` below, which reproduces `out` to ~1e-6).
* `sd2_unet_manifest.json`: for the full-size SD 2.x UNet (SD2_CONFIG) and for TINY_CONFIG, built on
  torch's meta device (no memory): the config as diffusers 0.32.2 resolves it, the sorted
  state-dict key -> shape map, the number of tensors and the total parameter count, and the
  attention geometry (heads, head_dim, kv dim per Attention).

Run it like this (CPU only, float32, torch.backends defaults, torch.set_num_threads(1)):

    python3 -m venv /root/.cache/orfeas/paint-venv        # the paint-fixtures venv, reused
    /root/.cache/orfeas/paint-venv/bin/pip install torch "diffusers==0.32.2" safetensors numpy
    /root/.cache/orfeas/paint-venv/bin/python pipeline/tests/reference/sd_unet_fixtures.py

`--out DIR` writes elsewhere (used to check that two runs agree byte for byte).
Reference: diffusers 0.32.2 (PyPI), run unmodified; written with torch 2.15.0 on an AVX512 CPU.
Nothing upstream is copied here.

SD 2.x config (SD2_CONFIG): stabilityai/stable-diffusion-2-1 `unet/config.json` is not read here; it is
reconstructed as: sample_size 96 (the 768 px model), in_channels 4, out_channels 4, down
CrossAttnDownBlock2D x 3 + DownBlock2D, up UpBlock2D + CrossAttnUpBlock2D x 3, block_out_channels
[320, 640, 1280, 1280], layers_per_block 2, attention_head_dim [5, 10, 20, 20], cross_attention_dim
1024 (OpenCLIP ViT-H), use_linear_projection True, upcast_attention True, act_fn silu,
norm_num_groups 32, norm_eps 1e-5, flip_sin_to_cos True, freq_shift 0, downsample_padding 1,
mid_block_scale_factor 1, center_input_sample False, dual_cross_attention False,
only_cross_attention False, num_class_embeds None. Assumed: every other field takes the diffusers
0.32.2 default (mid_block_type UNetMidBlock2DCrossAttn, transformer_layers_per_block 1, no class /
addition embedding, time_embedding_type positional). `upcast_attention` True is from memory of the
768 px 2.1 config (2.1-base has False); it changes no key and no float32 result (below).
stable-diffusion-2-1-base differs only in sample_size 64 (same keys, same counts).
Hunyuan3D-Paint ships its own unet config/weights (not read here): its UNet2p5DConditionModel wraps
this UNet (and a copy, `unet_dual`), replaces conv_in by a 12-input-channel conv, sets
`class_embedding` to an nn.Embedding for camera ids and wraps every BasicTransformerBlock; none of
that is covered here.

Module structure (diffusers 0.32.2; `C = block_out_channels`, `L = layers_per_block`, `G =
norm_num_groups`, `D = cross_attention_dim`, `n = len(C)`; every Conv2d has a bias; every
nonlinearity outside GEGLU is SiLU; Dropout has p = 0 and no parameters; batch B):

  time_proj        Timesteps(C[0], flip_sin_to_cos=True, downscale_freq_shift=freq_shift=0), no
                   parameters. timestep -> 1-D [B] first (UNet2DConditionModel.get_time_embed): a
                   Python int becomes torch.tensor([t], int64), a Python float tensor([t], float64),
                   a 0-dim tensor t[None]; then .expand(B) (so one value serves the whole batch; a
                   [B] tensor passes through; any other length fails). Then
                   get_timestep_embedding(t, C[0]), ALL in float32 whatever t's dtype:
                     half = C[0] // 2
                     exponent[i] = -ln(10000) * i / (half - downscale_freq_shift),  i = 0..half-1
                                   (float32: f32(-ln 1e4) * f32(i), then / f32(half - shift))
                     freq[i] = exp(exponent[i]);   arg[b, i] = f32(t[b]) * freq[i]    (scale 1)
                     emb = cat([sin(arg), cos(arg)], -1), then flip_sin_to_cos swaps halves:
                     t_emb = [cos(arg[:, 0..half]), sin(arg[:, 0..half])]   (cos FIRST)
                   max_period 10000; zero-padded by one column if C[0] is odd (not here).
                   sin/cos of float32 arguments up to ~1000 rad: a port must form arg in float32
                   the same way (f32 product of f32 t and f32 freq) to stay within ~1e-6.
  time_embedding   TimestepEmbedding: linear_1 Linear(C[0] -> 4 C[0]) -> SiLU -> linear_2
                   Linear(4 C[0] -> 4 C[0]); emb [B, 4 C[0]] (SD 2.x 320 -> 1280 -> 1280; tiny 16 ->
                   64 -> 64). No post-activation, no cond_proj.
  conv_in          Conv2d(in_channels -> C[0], 3x3, pad 1)
  down_blocks.N    N = 0..n-1; in = C[N-1] (C[0] for N = 0), out = C[N]; downsampler unless N = n-1.
    CrossAttnDownBlock2D: for M = 0..L-1: h = resnets.M(h, emb); h = attentions.M(h, ehs);
                   push h; then if present h = downsamplers.0(h); push h. Returns (h, pushed).
    DownBlock2D:   the same without attentions.
    .resnets.M     ResnetBlock2D(in = block in for M = 0 else C[N], out = C[N], temb 4 C[0])
    .attentions.M  Transformer2DModel(heads = attention_head_dim[N], head_dim = C[N] / heads, C[N])
    .downsamplers.0.conv   Conv2d(C[N] -> C[N], 3x3, stride 2, padding 1 (symmetric: zero row/col
                   on ALL four sides; NOT the VAE's F.pad(0, 1, 0, 1) + padding 0)): H -> (H - 1) // 2 + 1
  mid_block        UNetMidBlock2DCrossAttn(C[n-1], heads = attention_head_dim[-1]):
                   h = resnets.0(h, emb); h = attentions.0(h, ehs); h = resnets.1(h, emb)
                   (output_scale_factor = mid_block_scale_factor = 1)
  up_blocks.N      N = 0..n-1 over R = reversed(C); prev = R[N-1] (R[0] for N = 0), out = R[N],
                   skip_in = R[min(N + 1, n - 1)]; L + 1 resnets; upsampler unless N = n - 1.
                   heads = reversed(attention_head_dim)[N].
    UpBlock2D / CrossAttnUpBlock2D: for M = 0..L: s = POP the LAST entry of the skip stack;
                   h = cat([h, s], dim=1)  (h FIRST, skip second); h = resnets.M(h, emb);
                   (CrossAttn) h = attentions.M(h, ehs). Then if present h = upsamplers.0(h).
    .resnets.M     ResnetBlock2D(in = (prev if M = 0 else out) + (skip_in if M = L else out), out)
                   -> every up resnet has a conv_shortcut (in != out always).
    .upsamplers.0.conv   F.interpolate(h, scale_factor=2, mode="nearest") (out[i, j] = in[i // 2,
                   j // 2]; with an odd input size: size = next skip's H, W) then Conv2d(out -> out,
                   3x3, pad 1).
  conv_norm_out    GroupNorm(G, C[0], eps norm_eps = 1e-5) -> SiLU (conv_act) ->
  conv_out         Conv2d(C[0] -> out_channels, 3x3, pad 1).  Output = conv_out(...), nothing else.

  Skip stack: [conv_in output] + each down block's pushed tuple, in order: 1 + (n - 1)(L + 1) + L
  entries (tiny 9, SD 2.x 12) = n (L + 1) resnets of the up blocks. up_blocks.0.resnets.0 takes the
  LAST pushed (the deepest block's last resnet/attention output), ..., up_blocks.(n-1).resnets.L
  takes the conv_in output (LIFO). tiny_io.json "skip_stack" lists every pairing with its shape.

  ResnetBlock2D(in, out) (eps = norm_eps 1e-5, groups G, output_scale_factor 1.0, "default" time norm):
    h = conv1(SiLU(norm1(x)))                   norm1 GroupNorm(G, in), conv1 Conv2d(in -> out, 3x3, pad 1)
    h = h + time_emb_proj(SiLU(emb))[:, :, None, None]     Linear(4 C[0] -> out), added AFTER conv1,
                                                 BEFORE norm2, broadcast over H, W ([B, out, 1, 1])
    h = conv2(SiLU(norm2(h)))                   norm2 GroupNorm(G, out), conv2 Conv2d(out -> out, 3x3, pad 1)
    y = (shortcut(x) + h) / output_scale_factor (/ 1.0, exact)
    shortcut = conv_shortcut Conv2d(in -> out, 1x1, with bias) where in != out, else identity.

  Transformer2DModel(C, heads, head_dim = C / heads; inner = heads * head_dim = C), use_linear_projection:
    r = x                                        [B, C, H, W]
    t = norm(x)                                  GroupNorm(G, C, eps 1e-6 (hard-coded, NOT norm_eps))
    t = t.permute(0, 2, 3, 1).reshape(B, H*W, C) tokens in row-major pixel order (y * W + x)
    t = proj_in(t)                               Linear(C -> C) (a 1x1 Conv2d when use_linear_projection
                                                 is False: weight [C, C, 1, 1], applied BEFORE the permute)
    t = transformer_blocks.0(t, ehs)             (num_layers = transformer_layers_per_block = 1)
    t = proj_out(t)                              Linear(C -> C)
    y = t.reshape(B, H, W, C).permute(0, 3, 1, 2) + r      (outer residual)
  BasicTransformerBlock(C) (norm_type layer_norm, LayerNorm eps 1e-5 = Transformer2DModel's default
  norm_eps, elementwise affine; only_cross_attention False, double_self_attention False):
    t = attn1(norm1(t)) + t                      self-attention: q, k, v all from norm1(t)
    t = attn2(norm2(t), ehs) + t                 cross-attention: q from norm2(t), k, v from ehs [B, S, D]
    t = ff(norm3(t)) + t                         (pre-norm, three residual adds, no gating)
    ff = FeedForward(C, mult 4, geglu): net.0 = GEGLU: p = net.0.proj(x), Linear(C -> 2 * 4C);
         a, gate = p.chunk(2, -1) (a = first 4C features, gate = the LAST 4C);
         y = a * gelu(gate) with the exact erf GELU (0.5 g (1 + erf(g / sqrt 2)), approximate="none");
         net.1 Dropout(0); net.2 = Linear(4C -> C).
  Attention (attn1 / attn2; processor AttnProcessor2_0, the default with torch 2.x):
    to_q Linear(C -> C, bias=False); to_k, to_v Linear(Ckv -> C, bias=False) with Ckv = C for attn1
    and D for attn2 (SD's attention_bias False: NO q/k/v biases); to_out.0 Linear(C -> C, WITH bias);
    to_out.1 Dropout(0). No group_norm / norm_cross / qk norms; residual_connection False and
    rescale_output_factor 1 (the residual add is in BasicTransformerBlock).
    q [B, Nq, C] -> view(B, Nq, heads, head_dim).transpose(1, 2): channel c = head * head_dim + d;
    o = softmax(q k^T * scale) v per head, scale = 1 / sqrt(head_dim) (SDPA's default from q's last
    dim; equals diffusers' attn.scale = dim_head ** -0.5; no mask, not causal);
    o.transpose(1, 2).reshape(B, Nq, C) -> to_out.0.
    `attention_head_dim` QUIRK: UNet2DConditionModel passes its `attention_head_dim` as the NUMBER OF
    HEADS (num_attention_heads = attention_head_dim when num_attention_heads is None; passing
    num_attention_heads raises). SD 2.x: heads 5 / 10 / 20 / (mid 20), head_dim 64 everywhere;
    tiny: heads 2 / 4 / (mid 4), head_dim 8. Up blocks use reversed(attention_head_dim)[N]; the mid
    block uses attention_head_dim[-1] (the DownBlock2D's entry).
  Defaults that matter: upcast_attention False (TINY; SD 2.1 768 sets True) only exists for the classic
    AttnProcessor (it upcasts q, k to float32 before the scores) and AttnProcessor2_0 ignores it: no
    effect in float32; upcast_softmax False here (also ignored by AttnProcessor2_0).
    only_cross_attention False (attn1 is self-attention; True would give attn1 k/v from ehs),
    dual_cross_attention False (True would build DualTransformer2DModel), resnet_time_scale_shift
    "default", resnet_skip_time_act False (SiLU IS applied to emb in every resnet),
    resnet_out_scale_factor 1, mid_block_scale_factor 1, center_input_sample False, class_embed_type /
    addition_embed_type None (no class_embedding / add_embedding: emb is the time embedding alone),
    time_embedding_act_fn None, encoder_hid_proj None (ehs is used as given), conv_in/out kernel 3.
  Eps summary: resnets' GroupNorms and conv_norm_out 1e-5 (norm_eps); Transformer2DModel.norm
    GroupNorm 1e-6; the LayerNorms norm1/2/3 1e-5 (Transformer2DModel's own norm_eps default; the
    UNet's norm_eps is NOT passed down).

State-dict keys (Conv2d .weight [out, in, kh, kw] + .bias [out]; Linear .weight [out, in] (+ .bias
[out]); GroupNorm / LayerNorm .weight [C] + .bias [C]):
  conv_in, time_embedding.linear_1, time_embedding.linear_2,
  down_blocks.N.resnets.M.{norm1, conv1, time_emb_proj, norm2, conv2[, conv_shortcut]},
  down_blocks.N.attentions.M.{norm, proj_in, proj_out},
  down_blocks.N.attentions.M.transformer_blocks.0.{norm1, norm2, norm3, attn1.to_q.weight,
    attn1.to_k.weight, attn1.to_v.weight, attn1.to_out.0, attn2.(same; to_k / to_v weight [C, D]),
    ff.net.0.proj (weight [8C, C]), ff.net.2 (weight [C, 4C])},
  down_blocks.N.downsamplers.0.conv, mid_block.resnets.{0,1}, mid_block.attentions.0,
  up_blocks.N.resnets.M (all with conv_shortcut), up_blocks.N.attentions.M,
  up_blocks.N.upsamplers.0.conv, conv_norm_out, conv_out.
  conv_shortcut in the down path: only where the channel count changes (SD 2.x down_blocks.{1,2}
  .resnets.0; tiny down_blocks.1.resnets.0). The mid block never has one.
  SD 2.x: 686 tensors, 865,910,724 parameters; tiny: 494 tensors, 551,028 parameters
  (sd2_unet_manifest.json has the exact lists; the generator asserts these counts).

Numerics (tiny_io.json has the exact figures): the float32 run is within ~3e-6 (max abs) of the same
model in float64 on `out` (2e-5 on the widest intermediates, whose magnitude is ~10); t_emb itself is
8.6e-6 from the float64 formula because arg = t * freq is rounded to float32 before sin / cos at
t = 999 (a port must round the same way or allow ~1e-5 there). SDPA (flash CPU kernel) vs a plain
softmax: 2e-6 on `out`. So 1e-5 (abs, on values of magnitude <= ~15) is a safe tolerance; note that
LayerNorm / GroupNorm eps mistakes move `out` by only 8e-6 .. 4e-5 and a tanh GELU by 3e-4, so
they need that tight tolerance to show, and that permuting the context tokens changes nothing
(attention is order-invariant over keys): these fixtures cannot catch a token-order bug in ehs.
"""
import argparse
import copy
import json
import math
import os
import types

import numpy as np
import torch
import torch.nn.functional as F

import diffusers
from diffusers import UNet2DConditionModel
from diffusers.models.activations import GEGLU
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention, AttnProcessor
from diffusers.models.downsampling import Downsample2D
from diffusers.models.resnet import ResnetBlock2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from diffusers.models.upsampling import Upsample2D
from safetensors.torch import load_file

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "sd_unet")

TINY_CONFIG = dict(
    sample_size=8,
    in_channels=4,
    out_channels=4,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    block_out_channels=[16, 32, 32],
    layers_per_block=2,
    attention_head_dim=[2, 4, 4],
    cross_attention_dim=24,
    norm_num_groups=8,
    use_linear_projection=True,
    flip_sin_to_cos=True,
    freq_shift=0,
)

# Reconstructed stabilityai/stable-diffusion-2-1 unet/config.json (see the header).
SD2_CONFIG = dict(
    act_fn="silu",
    attention_head_dim=[5, 10, 20, 20],
    block_out_channels=[320, 640, 1280, 1280],
    center_input_sample=False,
    cross_attention_dim=1024,
    down_block_types=["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
    downsample_padding=1,
    dual_cross_attention=False,
    flip_sin_to_cos=True,
    freq_shift=0,
    in_channels=4,
    layers_per_block=2,
    mid_block_scale_factor=1,
    norm_eps=1e-05,
    norm_num_groups=32,
    num_class_embeds=None,
    only_cross_attention=False,
    out_channels=4,
    sample_size=96,
    up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
    upcast_attention=True,
    use_linear_projection=True,
)

EXPECTED_COUNTS = {"sd2": (686, 865910724), "tiny": (494, 551028)}

WEIGHT_SEED = 1
INPUT_SEED = 2
BATCH = 2
TIMESTEPS = [999, 261]
TB_PATH = "down_blocks.0.attentions.0.transformer_blocks.0"


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


def build_unet(config):
    return UNet2DConditionModel(**config)


def randomize(unet, seed, other=None):
    """Overwrite every parameter with a seeded draw (see the header for the scales).

    `other(module, leaf, draw)` gives the value of a parameter owned by anything but a norm, a
    convolution or a linear layer (None: refused)."""
    gen = torch.Generator("cpu").manual_seed(seed)
    owner = {}
    for mname, module in unet.named_modules():
        for pname, _ in module.named_parameters(recurse=False):
            owner[f"{mname}.{pname}" if mname else pname] = module
    done = set()
    with torch.no_grad():
        for name, p in sorted(unet.named_parameters()):
            module = owner[name]
            leaf = name.rsplit(".", 1)[1]
            draw = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if isinstance(module, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
                value = 1.0 + 0.1 * draw if leaf == "weight" else 0.1 * draw
            elif isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                if leaf == "weight":
                    fan_in = int(np.prod(p.shape[1:]))
                    value = draw / float(np.sqrt(fan_in))
                else:
                    value = 0.1 * draw
            elif other is not None and (value := other(module, leaf, draw)) is not None:
                pass
            else:
                raise SystemExit(f"unexpected parameter owner {type(module).__name__} for {name}")
            p.copy_(value)
            done.add(name)
    all_names = {n for n, _ in unet.named_parameters()}
    assert done == all_names, all_names - done
    assert len(all_names) == len(unet.state_dict()), "the state dict holds something besides parameters"


def attention_geometry(unet):
    geo = {}
    for name, m in unet.named_modules():
        if isinstance(m, Attention):
            inner = m.to_q.out_features
            geo[name] = {
                "heads": m.heads,
                "head_dim": inner // m.heads,
                "query_dim": m.to_q.in_features,
                "kv_dim": m.to_k.in_features,
                "scale": m.scale,
                "qkv_bias": m.to_q.bias is not None,
                "out_bias": m.to_out[0].bias is not None,
                "upcast_attention": m.upcast_attention,
            }
    return geo


def key_manifest(config, label):
    with torch.device("meta"):
        unet = build_unet(config)
    sd = unet.state_dict()
    keys = {k: list(v.shape) for k, v in sorted(sd.items())}
    count = int(sum(int(np.prod(s)) for s in keys.values()))
    assert (len(keys), count) == EXPECTED_COUNTS[label], (label, len(keys), count)
    resolved = {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in sorted(unet.config.items()) if not k.startswith("_")}
    geo = attention_geometry(unet)
    return unet, {
        "resolved_config": resolved,
        "num_tensors": len(keys),
        "param_count": count,
        "attention_geometry": geo,
        "keys": keys,
    }


def timestep_embedding_f64(timesteps, dim, flip, shift, max_period=10000):
    """The sinusoidal embedding formula evaluated in float64 (for the deviation measurement)."""
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float64) / (half - shift)
    arg = timesteps.to(torch.float64)[:, None] * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(arg), torch.cos(arg)], dim=-1)
    if flip:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    return emb


# ---------------------------------------------------------------------------------------------
# A plain functional re-implementation of the header (checks the documentation, not diffusers)
# ---------------------------------------------------------------------------------------------


def manual_forward(p, cfg, sample, timestep, ehs):
    """unet(sample, timestep, ehs).sample from the state dict `p` using only torch.nn.functional."""
    C = cfg["block_out_channels"]
    heads_cfg = cfg["attention_head_dim"]
    G = cfg["norm_num_groups"]
    L = cfg["layers_per_block"]
    n = len(C)
    eps = 1e-5
    B = sample.shape[0]

    def lin(x, name):
        return F.linear(x, p[name + ".weight"], p.get(name + ".bias"))

    def conv(x, name, stride=1, padding=1):
        return F.conv2d(x, p[name + ".weight"], p[name + ".bias"], stride=stride, padding=padding)

    def gn(x, name, e):
        return F.group_norm(x, G, p[name + ".weight"], p[name + ".bias"], e)

    def ln(x, name):
        return F.layer_norm(x, (x.shape[-1],), p[name + ".weight"], p[name + ".bias"], 1e-5)

    def resnet(x, emb, name):
        h = conv(F.silu(gn(x, name + ".norm1", eps)), name + ".conv1")
        h = h + lin(F.silu(emb), name + ".time_emb_proj")[:, :, None, None]
        h = conv(F.silu(gn(h, name + ".norm2", eps)), name + ".conv2")
        sc = conv(x, name + ".conv_shortcut", padding=0) if name + ".conv_shortcut.weight" in p else x
        return sc + h

    def attention(x, ctx, name, heads):
        q, k, v = lin(x, name + ".to_q"), lin(ctx, name + ".to_k"), lin(ctx, name + ".to_v")
        c = q.shape[-1]
        d = c // heads

        def split(t):
            return t.reshape(B, t.shape[1], heads, d).transpose(1, 2)

        s = split(q) @ split(k).transpose(-1, -2) / math.sqrt(d)
        o = s.softmax(-1) @ split(v)
        return lin(o.transpose(1, 2).reshape(B, -1, c), name + ".to_out.0")

    def transformer(x, name, heads):
        b, c, hh, ww = x.shape
        t = gn(x, name + ".norm", 1e-6).permute(0, 2, 3, 1).reshape(b, hh * ww, c)
        t = lin(t, name + ".proj_in")
        tb = name + ".transformer_blocks.0"
        t = attention(ln(t, tb + ".norm1"), ln(t, tb + ".norm1"), tb + ".attn1", heads) + t
        t = attention(ln(t, tb + ".norm2"), ehs, tb + ".attn2", heads) + t
        a, gate = lin(ln(t, tb + ".norm3"), tb + ".ff.net.0.proj").chunk(2, dim=-1)
        t = lin(a * 0.5 * gate * (1.0 + torch.erf(gate / math.sqrt(2.0))), tb + ".ff.net.2") + t
        t = lin(t, name + ".proj_out")
        return t.reshape(b, hh, ww, c).permute(0, 3, 1, 2) + x

    # time
    t = torch.as_tensor(timestep).reshape(-1).expand(B)
    half = C[0] // 2
    freq = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / (half - cfg["freq_shift"]))
    arg = t.float()[:, None] * freq[None, :]
    t_emb = torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1).to(sample.dtype)
    emb = lin(F.silu(lin(t_emb, "time_embedding.linear_1")), "time_embedding.linear_2")

    h = conv(sample, "conv_in")
    stack = [h]
    for N in range(n):
        cross = cfg["down_block_types"][N].startswith("CrossAttn")
        for M in range(L):
            h = resnet(h, emb, f"down_blocks.{N}.resnets.{M}")
            if cross:
                h = transformer(h, f"down_blocks.{N}.attentions.{M}", heads_cfg[N])
            stack.append(h)
        if N < n - 1:
            h = conv(h, f"down_blocks.{N}.downsamplers.0.conv", stride=2, padding=1)
            stack.append(h)
    h = resnet(h, emb, "mid_block.resnets.0")
    h = transformer(h, "mid_block.attentions.0", heads_cfg[-1])
    h = resnet(h, emb, "mid_block.resnets.1")
    rheads = list(reversed(heads_cfg))
    for N in range(n):
        cross = cfg["up_block_types"][N].startswith("CrossAttn")
        for M in range(L + 1):
            h = torch.cat([h, stack.pop()], dim=1)
            h = resnet(h, emb, f"up_blocks.{N}.resnets.{M}")
            if cross:
                h = transformer(h, f"up_blocks.{N}.attentions.{M}", rheads[N])
        if N < n - 1:
            size = stack[-1].shape[-2:]
            h = conv(F.interpolate(h, size=size, mode="nearest"), f"up_blocks.{N}.upsamplers.0.conv")
    assert not stack
    h = F.silu(gn(h, "conv_norm_out", eps))
    return conv(h, "conv_out"), t_emb, emb


# ---------------------------------------------------------------------------------------------
# The tiny model: weights and reference tensors
# ---------------------------------------------------------------------------------------------


DESCRIPTIONS = {
    "sample": "input latents [B, 4, H, W], randn (INPUT_SEED generator, first draw)",
    "timestep": "the timesteps passed, torch.tensor([999, 261]) int64, here as float32",
    "encoder_hidden_states": "cross-attention context [B, 7, 24], randn (second draw)",
    "t_emb": "time_proj output: sinusoidal embedding [B, C0], cos half first (flip_sin_to_cos)",
    "emb": "time_embedding output: linear_2(SiLU(linear_1(t_emb))) [B, 4 C0]",
    "conv_in": "conv_in output (skip-stack entry 0)",
    "resnet_0": "output of down_blocks.0.resnets.0 (= input of down_blocks.0.attentions.0)",
    "tb_in": f"input of {TB_PATH}: GroupNorm(eps 1e-6), NCHW -> [B, H*W, C], proj_in",
    "tb_attn1": f"{TB_PATH}.attn1 output (self-attention of norm1(tb_in)), before its residual add",
    "tb_attn2": f"{TB_PATH}.attn2 output (cross-attention of norm2(.) to encoder_hidden_states), before its residual add",
    "tb_ff": f"{TB_PATH}.ff output (GEGLU feed-forward of norm3(.)), before its residual add",
    "tb_out": f"output of {TB_PATH} (= tb_in + attn1 + attn2 + ff, each on the running sum)",
    "attn_0": "output of down_blocks.0.attentions.0 (proj_out, tokens -> NCHW, + outer residual resnet_0)",
    "mid_block": "output of mid_block (resnets.0 -> attentions.0 -> resnets.1)",
    "conv_act": "SiLU(conv_norm_out(up_block_2)), the input of conv_out",
    "out": "unet(sample, timestep, encoder_hidden_states).sample",
    "seq5_encoder_hidden_states": "context with 5 tokens [B, 5, 24], randn (third draw)",
    "seq5_tb_attn2": f"{TB_PATH}.attn2 output with the 5-token context",
    "seq5_tb_out": f"output of {TB_PATH} with the 5-token context",
    "seq5_mid_block": "mid_block output with the 5-token context",
    "seq5_out": "unet(sample, timestep, seq5_encoder_hidden_states).sample",
    "scalar_t0_t_emb": "time_proj output for timestep=0 given as a Python int (broadcast to B rows)",
    "scalar_t0_emb": "time_embedding output for timestep=0",
    "scalar_t0_out": "unet(sample, 0, encoder_hidden_states).sample",
    "odd_sample": "input latents [B, 4, 6, 6] (6 is not a multiple of 4), randn (fourth draw)",
    "odd_hw_down_block_1": "down_blocks.1 output for odd_sample (3x3 -> 2x2 by the stride-2 conv, pad 1)",
    "odd_hw_up_block_0": "up_blocks.0 output for odd_sample: upsampled 2x2 -> 3x3 (nearest, forced size)",
    "odd_hw_out": "unet(odd_sample, timestep, encoder_hidden_states).sample",
}


def block_descriptions(cfg):
    n = len(cfg["block_out_channels"])
    L = cfg["layers_per_block"]
    d = {}
    for N in range(n):
        d[f"down_block_{N}"] = f"hidden state returned by down_blocks.{N}"
        count = L + (1 if N < n - 1 else 0)
        for M in range(count):
            what = f"resnets.{M}" + (" + attentions." + str(M) if cfg["down_block_types"][N].startswith("CrossAttn") else "")
            if M == L:
                what = "downsamplers.0 (== the block output)"
            d[f"down_block_{N}_res_{M}"] = f"residual tuple entry {M} of down_blocks.{N}: output of {what}"
    for N in range(n):
        d[f"up_block_{N}"] = f"output of up_blocks.{N}"
    return d


def capture_run(unet, sample, timestep, ehs, want_internal=True):
    """Runs unet once with hooks; returns (out, {name: tensor}, {down block: residual tuple})."""
    modules = dict(unet.named_modules())
    got, res = {}, {}
    handles = []

    def add(path, name, kind="out"):
        def hook(_m, inp, out):
            if kind == "in":
                got[name] = inp[0].detach().clone()
            elif kind == "first":
                got[name] = out[0].detach().clone()
            else:
                got[name] = out.detach().clone()
        handles.append(modules[path].register_forward_hook(hook))

    add("time_proj", "t_emb")
    add("time_embedding", "emb")
    add("conv_in", "conv_in")
    add("mid_block", "mid_block")
    # conv_act is diffusers' shared nn.SiLU instance (named_modules lists it once, elsewhere): take
    # the input of conv_out instead.
    handles.append(modules["conv_out"].register_forward_pre_hook(
        lambda _m, inp: got.__setitem__("conv_act", inp[0].detach().clone())))
    for N, _ in enumerate(unet.down_blocks):
        def dhook(_m, _inp, out, N=N):
            got[f"down_block_{N}"] = out[0].detach().clone()
            res[N] = tuple(r.detach().clone() for r in out[1])
        handles.append(modules[f"down_blocks.{N}"].register_forward_hook(dhook))
    for N, _ in enumerate(unet.up_blocks):
        add(f"up_blocks.{N}", f"up_block_{N}")
    if want_internal:
        add("down_blocks.0.resnets.0", "resnet_0")
        add(TB_PATH, "tb_in", "in")
        add(TB_PATH + ".attn1", "tb_attn1")
        add(TB_PATH + ".attn2", "tb_attn2")
        add(TB_PATH + ".ff", "tb_ff")
        add(TB_PATH, "tb_out")
        add("down_blocks.0.attentions.0", "attn_0", "first")
    try:
        with torch.no_grad():
            out = unet(sample, timestep, encoder_hidden_states=ehs).sample
    finally:
        for h in handles:
            h.remove()
    return out, got, res


def skip_stack_table(cfg, res, conv_in):
    """Which skip-stack entry each up-block resnet consumes, in consumption order."""
    n = len(cfg["block_out_channels"])
    L = cfg["layers_per_block"]
    stack = [("conv_in", list(conv_in.shape))]
    for N in range(n):
        for M, r in enumerate(res[N]):
            stack.append((f"down_blocks.{N} residual {M}", list(r.shape)))
    pushed = [f"{i}: {s} {shape}" for i, (s, shape) in enumerate(stack)]
    consumed = []
    idx = len(stack) - 1
    for N in range(n):
        for M in range(L + 1):
            src, shape = stack[idx]
            consumed.append(f"up_blocks.{N}.resnets.{M} <- entry {idx} ({src}) {shape}")
            idx -= 1
    assert idx == -1
    return {"pushed_in_order": pushed, "consumed_in_order": consumed}


def run_tiny(unet):
    """Runs the reference computations; returns {name: float32 tensor}, checks, extra manifest info."""
    cfg = dict(unet.config)
    gen = torch.Generator("cpu").manual_seed(INPUT_SEED)
    sample = torch.randn(BATCH, 4, 8, 8, generator=gen, dtype=torch.float32)
    ehs = torch.randn(BATCH, 7, 24, generator=gen, dtype=torch.float32)
    ehs5 = torch.randn(BATCH, 5, 24, generator=gen, dtype=torch.float32)
    odd = torch.randn(BATCH, 4, 6, 6, generator=gen, dtype=torch.float32)
    timestep = torch.tensor(TIMESTEPS, dtype=torch.int64)

    t = {"sample": sample, "timestep": timestep.to(torch.float32), "encoder_hidden_states": ehs}
    checks = {}
    out, got, res = capture_run(unet, sample, timestep, ehs)
    t.update(got)
    t["out"] = out
    for N, r in res.items():
        for M, x in enumerate(r):
            t[f"down_block_{N}_res_{M}"] = x
    n = len(cfg["block_out_channels"])
    checks["down_block_output_is_last_residual_where_downsampled"] = all(
        torch.equal(got[f"down_block_{N}"], res[N][-1]) for N in range(n))
    checks["residual_counts_match_up_block_resnets"] = (
        1 + sum(len(r) for r in res.values()) == sum(len(b.resnets) for b in unet.up_blocks))
    skip = skip_stack_table(cfg, res, got["conv_in"])

    with torch.no_grad():
        checks["t_emb_equals_get_time_embed"] = bool(torch.equal(unet.get_time_embed(sample, timestep), got["t_emb"]))
        checks["emb_equals_time_embedding_of_t_emb"] = bool(torch.equal(unet.time_embedding(got["t_emb"]), got["emb"]))
        t_float = unet.get_time_embed(sample, timestep.to(torch.float32))
        checks["t_emb_same_for_float32_timesteps"] = bool(torch.equal(t_float, got["t_emb"]))
        per_row = torch.cat([unet.get_time_embed(sample[:1], timestep[i]) for i in range(BATCH)])
        checks["t_emb_rows_independent"] = bool(torch.equal(per_row, got["t_emb"]))
        tb = dict(unet.named_modules())[TB_PATH]
        checks["tb_out_is_sum_of_branches"] = max_abs(
            got["tb_in"] + got["tb_attn1"] + got["tb_attn2"] + got["tb_ff"], got["tb_out"]) < 1e-5
        checks["tb_recomputed_from_tb_in"] = bool(torch.equal(tb(got["tb_in"], encoder_hidden_states=ehs), got["tb_out"]))
        # plain functional re-implementation of the header
        p = {k: v.detach() for k, v in unet.state_dict().items()}
        man_out, man_t, man_e = manual_forward(p, cfg, sample, timestep, ehs)
        manual = {"max_abs_out": max_abs(man_out, out), "max_abs_t_emb": max_abs(man_t, got["t_emb"]),
                  "max_abs_emb": max_abs(man_e, got["emb"])}
        checks["manual_forward_reproduces_out"] = manual["max_abs_out"] < 1e-4 and manual["max_abs_t_emb"] == 0.0
        p64 = {k: v.double() for k, v in p.items()}
        man64_odd, _, _ = manual_forward(p64, cfg, odd.double(), timestep, ehs.double())

    # seq5
    out5, got5, _ = capture_run(unet, sample, timestep, ehs5)
    t.update(seq5_encoder_hidden_states=ehs5, seq5_tb_attn2=got5["tb_attn2"], seq5_tb_out=got5["tb_out"],
             seq5_mid_block=got5["mid_block"], seq5_out=out5)
    checks["seq5_differs_from_main"] = max_abs(out5, out) > 1e-3
    checks["seq5_tb_attn1_equals_main"] = bool(torch.equal(got5["tb_attn1"], got["tb_attn1"]))

    # scalar timestep 0 (Python int)
    out0, got0, _ = capture_run(unet, sample, 0, ehs, want_internal=False)
    t.update(scalar_t0_t_emb=got0["t_emb"], scalar_t0_emb=got0["emb"], scalar_t0_out=out0)
    with torch.no_grad():
        alt = [unet(sample, ts, encoder_hidden_states=ehs).sample
               for ts in (torch.tensor(0), torch.tensor([0, 0]), torch.tensor([0.0]), 0.0)]
    checks["scalar_t0_same_as_0dim_tensor_and_batch_tensor_and_float"] = all(torch.equal(a, out0) for a in alt)
    checks["scalar_t0_t_emb_is_cos1_sin0"] = bool(torch.equal(
        got0["t_emb"], torch.cat([torch.ones(BATCH, 8), torch.zeros(BATCH, 8)], dim=1)))

    # odd spatial size
    outo, goto, _ = capture_run(unet, odd, timestep, ehs, want_internal=False)
    t.update(odd_sample=odd, odd_hw_down_block_1=goto["down_block_1"], odd_hw_up_block_0=goto["up_block_0"],
             odd_hw_out=outo)
    manual["max_abs_odd_hw_out_float64_manual"] = max_abs(man64_odd, outo)
    checks["manual_forward_reproduces_odd_hw_out"] = manual["max_abs_odd_hw_out_float64_manual"] < 1e-4

    # repeatability
    out_again, _, _ = capture_run(unet, sample, timestep, ehs, want_internal=False)
    checks["forward_repeatable_bit_for_bit"] = bool(torch.equal(out_again, out))

    timestep_notes = {
        "main": "torch.tensor([999, 261], dtype=torch.int64): already 1-D of length B; expand(B) is a no-op",
        "cast": "get_timestep_embedding does timesteps[:, None].float() (int64 / float64 -> float32); "
                "everything in time_proj is float32 and t_emb is then cast to sample.dtype",
        "scalar_t0": "Python int 0 -> torch.tensor([0], dtype=int64) -> expand(B): every row the same; "
                     "a 0-dim tensor is t[None] then expand(B); a Python float becomes float64 first",
        "other_lengths": "a 1-D tensor whose length is neither 1 nor B raises in expand",
    }
    return t, checks, {"skip_stack": skip, "manual_forward_vs_diffusers": manual, "timestep_handling": timestep_notes}


def attention_numerics(unet, t):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    sample, ehs = t["sample"], t["encoder_hidden_states"]
    ts = torch.tensor(TIMESTEPS)
    tb = dict(unet.named_modules())[TB_PATH]
    heads = tb.attn1.heads
    d = 16 // heads
    q = torch.zeros(BATCH, heads, 64, d)
    k_cross = torch.zeros(BATCH, heads, 7, d)
    with torch.no_grad():
        self_choice = SDPBackend(int(torch._fused_sdp_choice(q, q, q))).name
        cross_choice = SDPBackend(int(torch._fused_sdp_choice(q, k_cross, k_cross))).name
        with sdpa_kernel(SDPBackend.MATH):
            math_out = unet(sample, ts, encoder_hidden_states=ehs).sample
        classic = copy.deepcopy(unet)
        classic.set_attn_processor(AttnProcessor())
        classic_out = classic(sample, ts, encoder_hidden_states=ehs).sample
    return {
        "processor": type(tb.attn1.processor).__name__,
        "sdpa_backend_chosen_self_attention_down0": self_choice,
        "sdpa_backend_chosen_cross_attention_down0": cross_choice,
        "max_abs_out_sdpa_math_backend_vs_default": max_abs(math_out, t["out"]),
        "max_abs_out_classic_AttnProcessor_vs_default": max_abs(classic_out, t["out"]),
        "note": "SDPA gets no scale argument (default 1/sqrt(head_dim)), no mask, dropout 0, not causal",
    }


def float64_deviation(unet, t):
    """How far the float32 reference is from the same model and inputs in float64."""
    u64 = copy.deepcopy(unet).double()
    cfg = unet.config

    def f64_time_proj(_self, timesteps):
        return timestep_embedding_f64(timesteps, cfg.block_out_channels[0], cfg.flip_sin_to_cos, cfg.freq_shift)

    ts = torch.tensor(TIMESTEPS)
    res = {}
    with torch.no_grad():
        # diffusers' own float64 run: time_proj still computes in float32
        out_ft32, _, _ = capture_run(u64, t["sample"].double(), ts, t["encoder_hidden_states"].double(),
                                     want_internal=False)
        u64.time_proj.forward = types.MethodType(f64_time_proj, u64.time_proj)
        out, got, _ = capture_run(u64, t["sample"].double(), ts, t["encoder_hidden_states"].double(),
                                  want_internal=False)
        out5, _, _ = capture_run(u64, t["sample"].double(), ts, t["seq5_encoder_hidden_states"].double(),
                                 want_internal=False)
    got["out"] = out
    for name in ("t_emb", "emb", "conv_in", "down_block_0", "down_block_1", "down_block_2", "mid_block",
                 "up_block_0", "up_block_1", "up_block_2", "out"):
        ref = got[name]
        res[name] = {"max_abs": max_abs(t[name], ref), "max_abs_over_max_ref": rel(t[name], ref),
                     "max_abs_ref": float(ref.abs().max())}
    res["seq5_out"] = {"max_abs": max_abs(t["seq5_out"], out5), "max_abs_over_max_ref": rel(t["seq5_out"], out5),
                       "max_abs_ref": float(out5.abs().max())}
    res["out_float64_network_float32_t_emb"] = {
        "max_abs": max_abs(t["out"], out_ft32), "max_abs_over_max_ref": rel(t["out"], out_ft32),
        "note": "diffusers run in float64 as is: time_proj always computes in float32"}
    return res


def sensitivity(unet, t):
    """How much plausible porting mistakes move `out` (max abs change)."""
    ts = torch.tensor(TIMESTEPS)

    def each(cls, fn):
        def apply(m):
            for mod in m.modules():
                if isinstance(mod, cls):
                    fn(mod)
        return apply

    def swap_heads(a):
        a.heads = a.to_q.out_features // a.heads

    def one_head(a):
        a.heads = 1

    def geglu_swapped(g):
        def fwd(self, x, *args, **kwargs):
            gate, a = self.proj(x).chunk(2, dim=-1)
            return a * F.gelu(gate)
        g.forward = types.MethodType(fwd, g)

    def geglu_tanh(g):
        def fwd(self, x, *args, **kwargs):
            a, gate = self.proj(x).chunk(2, dim=-1)
            return a * F.gelu(gate, approximate="tanh")
        g.forward = types.MethodType(fwd, g)

    def set_eps(cls, value, pred=lambda path: True):
        def apply(m):
            for path, mod in m.named_modules():
                if isinstance(mod, cls) and pred(path):
                    mod.eps = value
        return apply

    def skip_swapped(m):
        for N, block in enumerate(m.up_blocks):
            for M, r in enumerate(block.resnets):
                h_ch = (m.config.block_out_channels[::-1][N - 1] if N > 0 else m.config.block_out_channels[-1]) \
                    if M == 0 else r.out_channels

                def pre(_mod, inp, h_ch=h_ch):
                    x = inp[0]
                    return (torch.cat([x[:, h_ch:], x[:, :h_ch]], dim=1),) + tuple(inp[1:])
                r.register_forward_pre_hook(pre)

    def no_outer_residual(m):
        for mod in m.modules():
            if isinstance(mod, Transformer2DModel):
                def hook(_mod, inp, out):
                    return (out[0] - inp[0],) + tuple(out[1:])
                mod.register_forward_hook(hook)

    def vae_style_downsample(ds):
        ds.padding = 0
        ds.conv.padding = (0, 0)

    def bilinear_upsample(up):
        def fwd(self, h, output_size=None, *args, **kwargs):
            h = F.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False) if output_size is None \
                else F.interpolate(h, size=output_size, mode="bilinear", align_corners=False)
            return self.conv(h)
        up.forward = types.MethodType(fwd, up)

    def tb_module(m):
        return dict(m.named_modules())[TB_PATH]

    def swap_kv(m):
        a = tb_module(m).attn2
        k = a.to_k.weight.clone()
        a.to_k.weight.copy_(a.to_v.weight)
        a.to_v.weight.copy_(k)

    def zero_out_bias(m):
        tb_module(m).attn1.to_out[0].bias.zero_()

    def time_proj_attr(name, value):
        def apply(m):
            setattr(m.time_proj, name, value)
        return apply

    def temb_no_silu(m):
        for mod in m.modules():
            if isinstance(mod, ResnetBlock2D):
                mod.skip_time_act = True

    def transpose_conv_in(m):
        w = m.conv_in.weight
        w.copy_(w.transpose(2, 3).clone())

    cases = {
        "heads <-> head_dim swapped in every Attention (attention_head_dim read as head size)":
            each(Attention, swap_heads),
        "one head in every Attention": each(Attention, one_head),
        "flip_sin_to_cos False (sin half first)": time_proj_attr("flip_sin_to_cos", False),
        "downscale_freq_shift 1 instead of 0": time_proj_attr("downscale_freq_shift", 1),
        "no SiLU on emb before time_emb_proj": temb_no_silu,
        "GEGLU value / gate halves swapped": each(GEGLU, geglu_swapped),
        "GEGLU with tanh-approximate GELU": each(GEGLU, geglu_tanh),
        "skip concatenated first (cat([skip, h]))": skip_swapped,
        "Transformer2DModel without its outer residual": no_outer_residual,
        "LayerNorm eps 1e-6 instead of 1e-5": set_eps(torch.nn.LayerNorm, 1e-6),
        "Transformer2DModel GroupNorm eps 1e-5 instead of 1e-6":
            set_eps(torch.nn.GroupNorm, 1e-5, lambda path: path.endswith(".norm")),
        "resnet / conv_norm_out GroupNorm eps 1e-6 instead of 1e-5":
            set_eps(torch.nn.GroupNorm, 1e-6, lambda path: not path.endswith(".norm")),
        "downsample VAE-style: pad (0, 1, 0, 1) + padding 0": each(Downsample2D, vae_style_downsample),
        "upsample bilinear instead of nearest": each(Upsample2D, bilinear_upsample),
        f"to_k / to_v weights swapped in {TB_PATH}.attn2": swap_kv,
        f"zero bias of {TB_PATH}.attn1.to_out.0": zero_out_bias,
        "conv_in kernel transposed (kh <-> kw)": transpose_conv_in,
    }
    out = {}
    for name, apply in cases.items():
        m = copy.deepcopy(unet)
        with torch.no_grad():
            apply(m)
            o = m(t["sample"], ts, encoder_hidden_states=t["encoder_hidden_states"]).sample
        out[name] = max_abs(o, t["out"])
    # Not a mistake: attention is invariant to the order of the context tokens, so a port that
    # permutes encoder_hidden_states' tokens is NOT caught by these fixtures.
    with torch.no_grad():
        o = unet(t["sample"], ts, encoder_hidden_states=t["encoder_hidden_states"].flip(1)).sample
    out["(invariance, not a bug) encoder_hidden_states tokens in reverse order"] = max_abs(o, t["out"])
    return out


def norm_eps_table(unet):
    table = {}
    for path, mod in unet.named_modules():
        if isinstance(mod, (torch.nn.GroupNorm, torch.nn.LayerNorm)):
            parts = path.split(".")
            role = type(mod).__name__ + " " + (".".join(p for p in parts if not p.isdigit()))
            table.setdefault(role, set()).add(mod.eps)
    return {k: sorted(v) for k, v in sorted(table.items())}


def write_tiny(out_dir):
    torch.manual_seed(0)
    unet = build_unet(TINY_CONFIG)
    randomize(unet, WEIGHT_SEED)
    unet.eval()

    tiny_dir = os.path.join(out_dir, "tiny")
    unet.save_pretrained(tiny_dir, safe_serialization=True)
    names = sorted(os.listdir(tiny_dir))
    assert names == ["config.json", "diffusion_pytorch_model.safetensors"], names
    os.chmod(os.path.join(tiny_dir, "diffusion_pytorch_model.safetensors"), 0o644)  # safetensors writes 0600

    checks = {}
    sd = unet.state_dict()
    st = load_file(os.path.join(tiny_dir, "diffusion_pytorch_model.safetensors"))
    checks["safetensors_equals_state_dict"] = sorted(st) == sorted(sd) and all(
        st[k].dtype == torch.float32 and torch.equal(st[k], sd[k]) for k in sd)

    tensors, run_checks, info = run_tiny(unet)
    checks.update(run_checks)

    loaded = UNet2DConditionModel.from_pretrained(tiny_dir).eval()
    with torch.no_grad():
        o = loaded(tensors["sample"], torch.tensor(TIMESTEPS),
                   encoder_hidden_states=tensors["encoder_hidden_states"]).sample
    checks["tiny_from_pretrained_reproduces_out"] = bool(torch.equal(o, tensors["out"]))

    attention = attention_numerics(unet, tensors)
    deviation = float64_deviation(unet, tensors)
    sens = sensitivity(unet, tensors)

    descriptions = dict(DESCRIPTIONS)
    descriptions.update(block_descriptions(TINY_CONFIG))
    io_dir = os.path.join(out_dir, "tiny_io")
    os.makedirs(io_dir, exist_ok=True)
    entries = {}
    for name in sorted(tensors):
        arr = tensors[name].detach().contiguous().numpy().astype("<f4")
        with open(os.path.join(io_dir, f"{name}.bin"), "wb") as f:
            f.write(arr.tobytes(order="C"))
        entries[name] = {"file": f"tiny_io/{name}.bin", "dtype": "float32", "shape": list(arr.shape),
                         "description": descriptions[name]}
    assert set(descriptions) == set(tensors), set(descriptions) ^ set(tensors)

    failed = [k for k, v in checks.items() if v is not True]
    assert not failed, failed

    manifest = {
        "generator": "pipeline/tests/reference/sd_unet_fixtures.py",
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "num_threads": torch.get_num_threads(),
        "weights": "tiny/ (safetensors, written by save_pretrained)",
        "config": {k: v for k, v in TINY_CONFIG.items()},
        "seeds": {"init_manual_seed": 0, "weights": WEIGHT_SEED, "inputs": INPUT_SEED},
        "input_draw_order": ["sample [2, 4, 8, 8]", "encoder_hidden_states [2, 7, 24]",
                             "seq5_encoder_hidden_states [2, 5, 24]", "odd_sample [2, 4, 6, 6]"],
        "weight_init": {
            "order": "parameters in sorted name order, one torch.randn draw each from one CPU generator",
            "conv_and_linear_weight": "randn / sqrt(fan_in), fan_in = prod(shape[1:])",
            "conv_and_linear_bias": "0.1 * randn",
            "norm_weight": "1 + 0.1 * randn (GroupNorm and LayerNorm)",
            "norm_bias": "0.1 * randn",
        },
        "layout": "raw little-endian float32, row-major (C order); NCHW images, [B, tokens, C] sequences",
        "cases": {
            "main": {"sample": "sample", "timestep": TIMESTEPS, "timestep_dtype": "int64",
                     "encoder_hidden_states": "encoder_hidden_states", "output": "out"},
            "seq5": {"sample": "sample", "timestep": TIMESTEPS, "timestep_dtype": "int64",
                     "encoder_hidden_states": "seq5_encoder_hidden_states", "output": "seq5_out"},
            "scalar_t0": {"sample": "sample", "timestep": "Python int 0", "encoder_hidden_states":
                          "encoder_hidden_states", "output": "scalar_t0_out"},
            "odd_hw": {"sample": "odd_sample", "timestep": TIMESTEPS, "timestep_dtype": "int64",
                       "encoder_hidden_states": "encoder_hidden_states", "output": "odd_hw_out",
                       "optional": True},
        },
        "timestep_handling": info["timestep_handling"],
        "down_block_residual_counts": {f"down_blocks.{N}": len(unet.down_blocks[N].resnets)
                                       + (1 if unet.down_blocks[N].downsamplers is not None else 0)
                                       for N in range(len(unet.down_blocks))},
        "skip_stack": info["skip_stack"],
        "attention_geometry": attention_geometry(unet),
        "norm_eps": norm_eps_table(unet),
        "tensors": entries,
        "attention": attention,
        "manual_forward_vs_diffusers": info["manual_forward_vs_diffusers"],
        "float64_deviation": deviation,
        "sensitivity_max_abs_change": sens,
        "checks": checks,
    }
    write_json(os.path.join(out_dir, "tiny_io.json"), manifest)
    return unet


def write_key_manifest(out_dir):
    _, sd2 = key_manifest(SD2_CONFIG, "sd2")
    _, tiny = key_manifest(TINY_CONFIG, "tiny")
    sd2 = {
        "source": "stabilityai/stable-diffusion-2-1 unet/config.json, reconstructed (not downloaded)",
        "assumed_config": SD2_CONFIG,
        "assumptions": [
            "fields absent from assumed_config take diffusers 0.32.2 UNet2DConditionModel defaults "
            "(resolved_config shows them)",
            "upcast_attention True as in the 768 px SD 2.1 config (2.1-base: False); no key or float32 "
            "result depends on it",
            "sample_size 96 (768 px); stable-diffusion-2-1-base has 64 and otherwise the same keys",
            "attention_head_dim [5, 10, 20, 20] is the number of heads per block (head_dim 64)",
        ],
        **sd2,
    }
    tiny = {"source": "TINY_CONFIG of the generator (tiny/config.json)", **tiny}
    write_json(os.path.join(out_dir, "sd2_unet_manifest.json"), {
        "generator": "pipeline/tests/reference/sd_unet_fixtures.py",
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
