"""Parity fixtures for the burn port of Hunyuan3D-Paint's multiview UNet (`UNet2p5DConditionModel`
of hy3dgen 2.0.2, hy3dgen/texgen/hunyuanpaint/unet/modules.py), on a tiny random-weight model.

What it writes (under pipeline/tests/fixtures/paint_unet/, deterministic: two runs give identical bytes):

* `tiny/unet/`: the model folder exactly as the reference's `UNet2p5DConditionModel.from_pretrained`
  reads it:
    - `config.json`: TINY_CONFIG of sd_unet_fixtures.py (block_out_channels [16, 32, 32], heads
      [2, 4, 4], cross_attention_dim 24, norm_num_groups 8, layers_per_block 2, sample_size 8, ...) as a
      plain diffusers UNet2DConditionModel config (plus `_class_name` "UNet2DConditionModel" and
      `_diffusers_version` "0.32.2", which diffusers drops when the dict is passed as kwargs);
    - `diffusion_pytorch_model.bin`: `torch.save(model.state_dict())`, float32, keys `unet.*` (main
      UNet: 12-channel conv_in, class_embedding, learned_text_clip_gen / _ref, attn_refview and
      attn_multiview in every transformer block) and `unet_dual.*` (the reference UNet: a plain
      copy of the config UNet), both with the `.transformer.` infix after `transformer_blocks.<i>`;
    - `keys.json`: the sorted key -> shape map, tensor / parameter counts (total, per prefix) and
      the keys the main UNet has on top of a plain UNet.
* `tiny_io.json` + `tiny_io/*.bin`: inputs, outputs and intermediates of three cases (raw
  little-endian float32, row-major / C order; names, shapes and descriptions in the manifest):
    - `cfg`: the call as HunyuanPaintPipeline makes it with guidance (B = 2 = [uncond, cond], N_gen = 3
      views, 8x8 latents): `cfg_out` [6, 4, 8, 8], `cfg_emb` (the main UNet's emb after the camera
      embedding is added), every reference-feature cache entry `cfg_ref_<layer_name>` [2, L, C]
      (`ref_layer_order` lists them in the order unet_dual writes them) and, for
      unet.down_blocks.0.attentions.0.transformer_blocks.0, its input and the outputs of its
      attn1 / attn_refview (before ref_scale) / attn_multiview (reshaped to [(B N), L, C]) / attn2 /
      ff children and of the block;
    - `single`: B = 1 without guidance (ref_scale absent = 1.0), t = 261, cameras [43, 37, 18]:
      `single_out`, `single_emb`;
    - `dual_only`: unet_dual alone on the reference latent with t = 0 (Python int, as the reference
      calls it) and context learned_text_clip_ref: `dual_out` (the dual UNet as a plain UNet).
  The manifest also records the ref_scale / camera-id / view-order semantics, the float32-vs-float64
  deviation, a plain-torch functional re-implementation of the whole model (`manual_2p5d` below,
  spec section 2) and how far it is from the reference, the sensitivity of `cfg_out` to a few
  porting mistakes, and the checks the generator made.

The one deviation from the reference: `UNet2p5DConditionModel.__init__` hard-codes the widths
1024 (`learned_text_clip_gen` / `_ref` = nn.Parameter(randn(1, 77, 1024))) and 1280
(`class_embedding = nn.Embedding(49, 1280)`), which are SD 2.x's cross_attention_dim and time
embedding width (4 * block_out_channels[0]) and do not fit TINY_CONFIG. After constructing the
reference class, this generator replaces them by nn.Parameter [1, 77, 24] (24 = cross_attention_dim)
and nn.Embedding(49, 64) (64 = 4 * 16, the tiny time-embedding width): exactly what that code
yields for an SD 2.x config. The same replacement is applied before the strict load-back check.
Everything else (construction, block wrapping, forward) is the reference code, run unmodified.

Weights: torch.manual_seed(0), UNet2DConditionModel(**TINY_CONFIG), wrapped by the reference class,
tiny-width replacements, then EVERY parameter is overwritten with a seeded draw (one
torch.Generator seeded WEIGHT_SEED, parameters in sorted-name order, one randn draw each):
Conv2d / Linear weight N(0, 1) / sqrt(fan_in), bias 0.1 N(0, 1); GroupNorm / LayerNorm weight
1 + 0.1 N(0, 1), bias 0.1 N(0, 1); class_embedding.weight and learned_text_clip_gen / _ref N(0, 1).
Inputs: one torch.Generator seeded INPUT_SEED, drawn in this order (all randn, float32):
`latents` [1, 3, 4, 8, 8], `normal_latents` [1, 3, 4, 8, 8], `position_latents` [1, 3, 4, 8, 8],
`ref_latent` [1, 1, 4, 8, 8], `single_latents` [1, 3, 4, 8, 8].

Run it like this (CPU only, float32, torch.backends defaults, torch.set_num_threads(1)):

    python3 -m venv /root/.cache/orfeas/paint-venv        # the paint-fixtures venv, reused
    /root/.cache/orfeas/paint-venv/bin/pip install torch "diffusers==0.32.2" safetensors numpy einops
    /root/.cache/orfeas/paint-venv/bin/pip download --no-deps hy3dgen==2.0.2 -d /tmp/hy3dgen_whl
    unzip -q /tmp/hy3dgen_whl/hy3dgen-2.0.2-py3-none-any.whl -d /tmp/hy3dgen_src
    HY3DGEN_SRC=/tmp/hy3dgen_src /root/.cache/orfeas/paint-venv/bin/python \
        pipeline/tests/reference/paint_unet_fixtures.py

`--out DIR` writes elsewhere (used to check that two runs agree byte for byte); `--hy3dgen-src DIR`
overrides HY3DGEN_SRC (default /tmp/hy3dgen_src). The unpacked wheel is only read: modules.py is
imported as `hy3dgen.texgen.hunyuanpaint.unet.modules` with `hy3dgen.texgen` registered as a bare
package, so texgen/__init__.py (which imports the whole texturing pipeline) does not run.
Reference: hy3dgen 2.0.2 (PyPI wheel; modules.py sha256 in the manifest) on diffusers 0.32.2, torch
2.15.0, einops 0.8.2; written on an AVX2 CPU. sd_unet_fixtures.py (same folder) provides
TINY_CONFIG and the helpers imported from it. Nothing upstream is copied here.

Size: about 5.6 MB, almost all of it the weight file (1101 tensors, 1,169,976 float32 parameters:
TINY_CONFIG twice, unet_dual being a full copy, plus the multiview / reference attentions; torch.save
adds ~0.5 MB of pickle and zip headers). The io tensors are ~0.3 MB.

Numerics (tiny_io.json has the exact figures): the float32 reference is 1.7e-6 (max abs, on values up
to ~2) from the same model in float64 on `cfg_out`, 2.1e-6 on `dual_out`, 6e-6 on the reference
cache entries (LayerNorm outputs up to ~3.7); the functional re-implementation (plain softmax
attention, no SDPA) is 1.7e-6 from `cfg_out` and 7.9e-6 from the cache entries; running unet_dual
with batch 1 instead of 2 moves the cache by 5.6e-6. So 1e-5 abs is a safe tolerance for a float32
port on the outputs; allow ~2e-5 on the cache entries. The fixtures cannot catch a token-order bug
inside the multiview attention (joint attention without positions is permutation-equivariant).
"""
import argparse
import copy
import hashlib
import importlib
import json
import math
import os
import sys
import types

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import sd_unet_fixtures as base  # noqa: E402  (TINY_CONFIG, JSON writer, helpers)

import diffusers  # noqa: E402
from diffusers import UNet2DConditionModel  # noqa: E402

DEFAULT_OUT = os.path.join(HERE, "..", "fixtures", "paint_unet")
DEFAULT_SRC = "/tmp/hy3dgen_src"
MODULES_SUBPATH = os.path.join("hy3dgen", "texgen", "hunyuanpaint", "unet", "modules.py")

TINY_CONFIG = base.TINY_CONFIG
WEIGHT_SEED = 1
INPUT_SEED = 2
N_GEN = 3
HW = 8
TOKENS = 77
MAX_REF = 5           # reference's max_num_ref_image: camera ids are offset by it
NUM_CAMERA_ROWS = 49  # 5 reference + 44 generated-view slots
CFG_TIMESTEP = 999.0
CFG_CAMERAS = [21, 12, 15]
SINGLE_TIMESTEP = 261.0
SINGLE_CAMERAS = [43, 37, 18]
TB_PATH = "unet.down_blocks.0.attentions.0.transformer_blocks.0"
EXPECTED_KEYS = {"total": (1101, 1169976), "unet": (607, 618948), "unet_dual": (494, 551028)}


# ---------------------------------------------------------------------------------------------
# Loading the reference
# ---------------------------------------------------------------------------------------------


def load_reference(src):
    path = os.path.join(src, MODULES_SUBPATH)
    if not os.path.isfile(path):
        sys.exit(f"hy3dgen 2.0.2 source not found: {path} does not exist.\n"
                 "Get it with:  pip download --no-deps hy3dgen==2.0.2 -d /tmp/hy3dgen_whl && "
                 "unzip -q /tmp/hy3dgen_whl/hy3dgen-2.0.2-py3-none-any.whl -d /tmp/hy3dgen_src\n"
                 "and point HY3DGEN_SRC (or --hy3dgen-src) at the unzipped folder.")
    meta = os.path.join(src, "hy3dgen-2.0.2.dist-info", "METADATA")
    if os.path.isfile(meta):
        with open(meta) as fh:
            version = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("Version:")), None)
        if version != "2.0.2":
            sys.exit(f"{src} holds hy3dgen {version}; the fixtures are for 2.0.2")
    sys.path.insert(0, os.path.abspath(src))
    import hy3dgen  # empty __init__ (license header only)

    texgen = types.ModuleType("hy3dgen.texgen")
    texgen.__path__ = [os.path.join(os.path.dirname(hy3dgen.__file__), "texgen")]
    sys.modules["hy3dgen.texgen"] = texgen
    modules = importlib.import_module("hy3dgen.texgen.hunyuanpaint.unet.modules")
    with open(path, "rb") as fh:
        sha = hashlib.sha256(fh.read()).hexdigest()
    return modules, {"hy3dgen_version": "2.0.2", "modules_py": MODULES_SUBPATH.replace(os.sep, "/"),
                     "modules_py_sha256": sha}


def apply_tiny_widths(model, cfg):
    """The one deviation (see the header): the widths the reference hard-codes for SD 2.x."""
    ctx_dim = cfg["cross_attention_dim"]
    emb_dim = 4 * cfg["block_out_channels"][0]
    model.unet.learned_text_clip_gen = torch.nn.Parameter(torch.zeros(1, TOKENS, ctx_dim))
    model.unet.learned_text_clip_ref = torch.nn.Parameter(torch.zeros(1, TOKENS, ctx_dim))
    model.unet.class_embedding = torch.nn.Embedding(NUM_CAMERA_ROWS, emb_dim)
    return model


def build_model(modules):
    torch.manual_seed(0)
    model = modules.UNet2p5DConditionModel(UNet2DConditionModel(**TINY_CONFIG))
    assert model.max_num_ref_image == MAX_REF and MAX_REF + model.max_num_gen_image == NUM_CAMERA_ROWS
    apply_tiny_widths(model, TINY_CONFIG)
    randomize(model, WEIGHT_SEED)
    return model.eval()


def randomize(model, seed):
    """sd_unet_fixtures.randomize plus N(0, 1) for the embedding table and the learned text."""
    def other(module, leaf, draw):
        if isinstance(module, torch.nn.Embedding) or leaf in ("learned_text_clip_gen", "learned_text_clip_ref"):
            return draw
        return None
    base.randomize(model, seed, other)


def reference_from_pretrained(modules, folder):
    """UNet2p5DConditionModel.from_pretrained, step for step, with the tiny widths applied before the
    strict load (the reference's own method would fail on the 1024 / 1280 shapes)."""
    with open(os.path.join(folder, "config.json"), "r", encoding="utf-8") as fh:
        config = json.load(fh)
    model = modules.UNet2p5DConditionModel(UNet2DConditionModel(**config))
    apply_tiny_widths(model, config)
    ckpt = torch.load(os.path.join(folder, "diffusion_pytorch_model.bin"), map_location="cpu", weights_only=True)
    model.load_state_dict(ckpt, strict=True)
    return model.to(torch.float32).eval()


# ---------------------------------------------------------------------------------------------
# Running the reference with hooks
# ---------------------------------------------------------------------------------------------


def call_reference(model, case, capture_block=False):
    """model(...) as HunyuanPaintPipeline calls it; returns (out, {name: tensor}, ref cache dict)."""
    mods = dict(model.named_modules())
    got, holder, handles = {}, {}, []

    def grab_emb(_m, _args, kwargs):
        got["emb"] = kwargs["temb"].detach().clone()
    handles.append(model.unet.down_blocks[0].register_forward_pre_hook(grab_emb, with_kwargs=True))
    handles.append(model.unet.time_embedding.register_forward_hook(
        lambda _m, _i, o: got.__setitem__("time_emb", o.detach().clone())))
    handles.append(model.unet.class_embedding.register_forward_hook(
        lambda _m, i, o: (got.__setitem__("class_ids", i[0].detach().clone()),
                          got.__setitem__("class_emb", o.detach().clone()))[0]))

    def grab_dict(_m, _args, kwargs):
        holder["dict"] = kwargs["cross_attention_kwargs"]["condition_embed_dict"]
        holder["dual_ctx"] = kwargs["encoder_hidden_states"].detach().clone()
    handles.append(model.unet_dual.register_forward_pre_hook(grab_dict, with_kwargs=True))

    if capture_block:
        n_views = case["sample"].shape[1]

        def block_hook(_m, args, kwargs, out):
            x = args[0] if args else kwargs["hidden_states"]
            got["tb_in"] = x.detach().clone()
            got["tb_out"] = out.detach().clone()
        handles.append(mods[TB_PATH].register_forward_hook(block_hook, with_kwargs=True))
        for child, name in (("transformer.attn1", "tb_attn1"), ("attn_refview", "tb_ref"),
                            ("transformer.attn2", "tb_attn2"), ("transformer.ff", "tb_ff")):
            handles.append(mods[f"{TB_PATH}.{child}"].register_forward_hook(
                lambda _m, _i, o, name=name: got.__setitem__(name, o.detach().clone())))

        def mv_hook(_m, _i, o):
            b, nl, c = o.shape
            got["tb_mv"] = o.detach().reshape(b * n_views, nl // n_views, c).clone()
        handles.append(mods[f"{TB_PATH}.attn_multiview"].register_forward_hook(mv_hook))

    kwargs = {k: v for k, v in case.items() if k not in ("sample", "timestep", "encoder_hidden_states")}
    try:
        with torch.no_grad():
            res = model(case["sample"], case["timestep"], encoder_hidden_states=case["encoder_hidden_states"],
                        num_in_batch=case["sample"].shape[1], timestep_cond=None, cross_attention_kwargs=None,
                        added_cond_kwargs=None, return_dict=False, **kwargs)
    finally:
        for h in handles:
            h.remove()
    assert isinstance(res, tuple) and len(res) == 1
    return res[0], got, holder


def call_dual(model, ref, timestep=0):
    cache = {}
    with torch.no_grad():
        out = model.unet_dual(ref, timestep, encoder_hidden_states=model.unet.learned_text_clip_ref.detach()
                              .repeat(ref.shape[0], 1, 1), class_labels=torch.zeros(ref.shape[0], dtype=torch.int64),
                              return_dict=False,
                              cross_attention_kwargs={"mode": "w", "num_in_batch": 1, "condition_embed_dict": cache})
    return out[0], cache


# ---------------------------------------------------------------------------------------------
# A plain functional re-implementation (spec sections 1-2; checks the documentation, not diffusers)
# ---------------------------------------------------------------------------------------------


def manual_unet(p, pre, cfg, sample, timestep, ctx, class_emb, mode, cache, n_views, ref_scale, mistake=None):
    """One UNet2DConditionModel (prefix `pre`) with Basic2p5DTransformerBlocks, from the state dict."""
    C = cfg["block_out_channels"]
    heads_cfg = cfg["attention_head_dim"]
    G = cfg["norm_num_groups"]
    L = cfg["layers_per_block"]
    n = len(C)
    eps = 1e-5
    B = sample.shape[0]

    def lin(x, name):
        return F.linear(x, p[pre + name + ".weight"], p.get(pre + name + ".bias"))

    def conv(x, name, stride=1, padding=1):
        return F.conv2d(x, p[pre + name + ".weight"], p[pre + name + ".bias"], stride=stride, padding=padding)

    def gn(x, name, e):
        return F.group_norm(x, G, p[pre + name + ".weight"], p[pre + name + ".bias"], e)

    def ln(x, name):
        return F.layer_norm(x, (x.shape[-1],), p[pre + name + ".weight"], p[pre + name + ".bias"], 1e-5)

    def resnet(x, name):
        h = conv(F.silu(gn(x, name + ".norm1", eps)), name + ".conv1")
        h = h + lin(F.silu(emb), name + ".time_emb_proj")[:, :, None, None]
        h = conv(F.silu(gn(h, name + ".norm2", eps)), name + ".conv2")
        sc = conv(x, name + ".conv_shortcut", padding=0) if pre + name + ".conv_shortcut.weight" in p else x
        return sc + h

    def attention(x, kv, name, heads):
        q, k, v = lin(x, name + ".to_q"), lin(kv, name + ".to_k"), lin(kv, name + ".to_v")
        b, lq, c = q.shape
        d = c // heads
        q = q.reshape(b, lq, heads, d).transpose(1, 2)
        k = k.reshape(b, -1, heads, d).transpose(1, 2)
        v = v.reshape(b, -1, heads, d).transpose(1, 2)
        o = (q @ k.transpose(-1, -2) / math.sqrt(d)).softmax(-1) @ v
        return lin(o.transpose(1, 2).reshape(b, lq, c), name + ".to_out.0")

    def block(x, tb, heads, layer):
        bn, nl, c = x.shape
        t = tb + ".transformer"
        nx = ln(x, t + ".norm1")                                  # computed once, reused below
        x = x + attention(nx, nx, t + ".attn1", heads)
        if mode == "w":
            cache[layer] = nx.reshape(bn // n_views, n_views * nl, c)   # (b n) l c -> b (n l) c
        if mode == "r":
            kv = cache[layer].repeat_interleave(n_views, dim=0)         # [B, Nr L, C] -> [(B N), Nr L, C]
            q = ln(x, t + ".norm1") if mistake == "ref_query_renormalised" else nx
            scale = ref_scale.repeat_interleave(n_views)[:, None, None]
            if mistake == "ref_scale_ignored":
                scale = torch.ones_like(scale)
            x = x + scale * attention(q, kv, tb + ".attn_refview", heads)
            if n_views > 1:
                if mistake == "multiview_per_view":
                    x = x + attention(nx, nx, tb + ".attn_multiview", heads)
                elif mistake == "multiview_across_batch":
                    m = nx.reshape(1, bn * nl, c)
                    x = x + attention(m, m, tb + ".attn_multiview", heads).reshape(bn, nl, c)
                elif mistake == "multiview_token_major":
                    m = nx.reshape(bn // n_views, n_views, nl, c).transpose(1, 2).reshape(bn // n_views, nl * n_views, c)
                    o = attention(m, m, tb + ".attn_multiview", heads)
                    x = x + o.reshape(bn // n_views, nl, n_views, c).transpose(1, 2).reshape(bn, nl, c)
                else:
                    m = nx.reshape(bn // n_views, n_views * nl, c)
                    x = x + attention(m, m, tb + ".attn_multiview", heads).reshape(bn, nl, c)
        x = x + attention(ln(x, t + ".norm2"), ctx, t + ".attn2", heads)
        a, gate = lin(ln(x, t + ".norm3"), t + ".ff.net.0.proj").chunk(2, dim=-1)
        return x + lin(a * 0.5 * gate * (1.0 + torch.erf(gate / math.sqrt(2.0))), t + ".ff.net.2")

    def transformer(x, name, heads, layer):
        b, c, hh, ww = x.shape
        t = gn(x, name + ".norm", 1e-6).permute(0, 2, 3, 1).reshape(b, hh * ww, c)
        t = lin(t, name + ".proj_in")
        t = block(t, name + ".transformer_blocks.0", heads, layer)
        t = lin(t, name + ".proj_out")
        return t.reshape(b, hh, ww, c).permute(0, 3, 1, 2) + x

    t = torch.as_tensor(timestep).reshape(-1).expand(B)
    half = C[0] // 2
    freq = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / (half - cfg["freq_shift"]))
    arg = t.float()[:, None] * freq[None, :]
    t_emb = torch.cat([torch.cos(arg), torch.sin(arg)], dim=-1).to(sample.dtype)
    emb = lin(F.silu(lin(t_emb, "time_embedding.linear_1")), "time_embedding.linear_2")
    if class_emb is not None:
        emb = emb + class_emb
    emb_out = emb

    h = conv(sample, "conv_in")
    stack = [h]
    for N in range(n):
        cross = cfg["down_block_types"][N].startswith("CrossAttn")
        for M in range(L):
            h = resnet(h, f"down_blocks.{N}.resnets.{M}")
            if cross:
                h = transformer(h, f"down_blocks.{N}.attentions.{M}", heads_cfg[N], f"down_{N}_{M}_0")
            stack.append(h)
        if N < n - 1:
            h = conv(h, f"down_blocks.{N}.downsamplers.0.conv", stride=2, padding=1)
            stack.append(h)
    h = resnet(h, "mid_block.resnets.0")
    h = transformer(h, "mid_block.attentions.0", heads_cfg[-1], "mid_0_0")
    h = resnet(h, "mid_block.resnets.1")
    rheads = list(reversed(heads_cfg))
    for N in range(n):
        cross = cfg["up_block_types"][N].startswith("CrossAttn")
        for M in range(L + 1):
            h = torch.cat([h, stack.pop()], dim=1)
            h = resnet(h, f"up_blocks.{N}.resnets.{M}")
            if cross:
                h = transformer(h, f"up_blocks.{N}.attentions.{M}", rheads[N], f"up_{N}_{M}_0")
        if N < n - 1:
            h = conv(F.interpolate(h, size=stack[-1].shape[-2:], mode="nearest"), f"up_blocks.{N}.upsamplers.0.conv")
    assert not stack
    h = F.silu(gn(h, "conv_norm_out", eps))
    return conv(h, "conv_out"), emb_out


def manual_2p5d(p, cfg, case, mistake=None):
    """UNet2p5DConditionModel.forward (spec 2.1-2.4) from the state dict; returns (out, emb, cache)."""
    sample = case["sample"]
    B, N, _, H, W = sample.shape
    ref = case["ref_latents"]
    n_ref = ref.shape[1]
    x = torch.cat([sample, case["normal_imgs"], case["position_imgs"]], dim=2).reshape(B * N, 12, H, W)
    ctx = case["encoder_hidden_states"].repeat_interleave(N, dim=0)
    ref_ctx = p["unet.learned_text_clip_ref"].expand(B * n_ref, -1, -1)
    cache = {}
    manual_unet(p, "unet_dual.", cfg, ref.reshape(B * n_ref, 4, H, W), 0, ref_ctx, None, "w", cache, n_ref, None)
    offset = 0 if mistake == "camera_id_without_offset" else MAX_REF
    class_emb = p["unet.class_embedding.weight"][(case["camera_info_gen"] + offset).reshape(-1)]
    ref_scale = case.get("ref_scale", torch.ones(B, dtype=sample.dtype))
    out, emb = manual_unet(p, "unet.", cfg, x, case["timestep"], ctx, class_emb, "r", cache, N, ref_scale.to(sample.dtype),
                           mistake)
    return out, emb, cache


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------


def draw_inputs():
    gen = torch.Generator("cpu").manual_seed(INPUT_SEED)
    shape = (1, N_GEN, 4, HW, HW)
    latents = torch.randn(shape, generator=gen, dtype=torch.float32)
    normals = torch.randn(shape, generator=gen, dtype=torch.float32)
    positions = torch.randn(shape, generator=gen, dtype=torch.float32)
    ref = torch.randn((1, 1, 4, HW, HW), generator=gen, dtype=torch.float32)
    single_latents = torch.randn(shape, generator=gen, dtype=torch.float32)
    return latents, normals, positions, ref, single_latents


def make_cases(model, inputs):
    latents, normals, positions, ref, single_latents = inputs
    gen_text = model.unet.learned_text_clip_gen.detach().clone()
    cfg = {
        "sample": torch.cat([latents, latents]),
        "timestep": torch.tensor(CFG_TIMESTEP),
        "encoder_hidden_states": torch.cat([torch.zeros_like(gen_text), gen_text]),
        "normal_imgs": torch.cat([normals, normals]),
        "position_imgs": torch.cat([positions, positions]),
        "ref_latents": torch.cat([torch.zeros_like(ref), ref]),
        "camera_info_gen": torch.tensor([CFG_CAMERAS, CFG_CAMERAS], dtype=torch.int64),
        "camera_info_ref": torch.tensor([[0], [0]], dtype=torch.int64),
        "ref_scale": torch.tensor([0.0, 1.0]),
    }
    single = {
        "sample": single_latents,
        "timestep": torch.tensor(SINGLE_TIMESTEP),
        "encoder_hidden_states": gen_text,
        "normal_imgs": normals,
        "position_imgs": positions,
        "ref_latents": ref,
        "camera_info_gen": torch.tensor([SINGLE_CAMERAS], dtype=torch.int64),
        "camera_info_ref": torch.tensor([[0]], dtype=torch.int64),
    }
    return cfg, single


def with_dtype(case, dtype):
    return {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in case.items()}


def case_inputs(prefix, case):
    t = {}
    for k, v in case.items():
        name = f"{prefix}_{k}"
        t[name] = v.reshape(1) if k == "timestep" else v
    return {k: v.to(torch.float32) for k, v in t.items()}


def run_all(model):
    checks, info = {}, {}
    inputs = draw_inputs()
    cfg_case, single_case = make_cases(model, inputs)
    p = {k: v.detach() for k, v in model.state_dict().items()}
    cfg = TINY_CONFIG

    # ---- cfg
    out, got, holder = call_reference(model, cfg_case, capture_block=True)
    cache = holder["dict"]
    t = {}
    t.update(case_inputs("cfg", cfg_case))
    t["cfg_out"] = out
    t["cfg_emb"] = got["emb"]
    for k in ("tb_in", "tb_attn1", "tb_ref", "tb_mv", "tb_attn2", "tb_ff", "tb_out"):
        t[f"cfg_{k}"] = got[k]
    order = list(cache)
    for name in order:
        t[f"cfg_ref_{name}"] = cache[name]
    info["ref_layer_order"] = order
    ids = (cfg_case["camera_info_gen"] + MAX_REF).reshape(-1)
    checks["class_embedding_sees_camera_info_gen_plus_5"] = bool(torch.equal(got["class_ids"], ids))
    checks["emb_is_time_embedding_plus_class_embedding"] = bool(torch.equal(got["emb"], got["time_emb"] + got["class_emb"]))
    checks["class_emb_is_embedding_rows"] = bool(torch.equal(got["class_emb"], p["unet.class_embedding.weight"][ids]))
    checks["dual_context_is_learned_text_clip_ref_for_both_halves"] = bool(torch.equal(
        holder["dual_ctx"], p["unet.learned_text_clip_ref"].repeat(2, 1, 1)))
    rs = cfg_case["ref_scale"].repeat_interleave(N_GEN)[:, None, None]
    tb_sum = got["tb_in"] + got["tb_attn1"] + rs * got["tb_ref"] + got["tb_mv"] + got["tb_attn2"] + got["tb_ff"]
    info["tb_out_minus_sum_of_branches_max_abs"] = base.max_abs(tb_sum, got["tb_out"])
    checks["tb_out_is_sum_of_branches"] = info["tb_out_minus_sum_of_branches_max_abs"] < 1e-5
    checks["cfg_uncond_and_cond_halves_differ"] = base.max_abs(out[:N_GEN], out[N_GEN:]) > 1e-3

    with torch.no_grad():
        # precomputed cache passed in (the port runs the dual pass once) -> identical output
        pre = model(cfg_case["sample"], cfg_case["timestep"], encoder_hidden_states=cfg_case["encoder_hidden_states"],
                    return_dict=False, condition_embed_dict=dict(cache),
                    **{k: v for k, v in cfg_case.items() if k not in ("sample", "timestep", "encoder_hidden_states")})[0]
        checks["precomputed_condition_embed_dict_gives_identical_out"] = bool(torch.equal(pre, out))
        # uncond half: ref_scale 0 -> independent of the reference latents
        other = dict(cfg_case)
        other["ref_latents"] = torch.randn(cfg_case["ref_latents"].shape, generator=torch.Generator().manual_seed(99))
        o2 = call_reference(model, other)[0]
        checks["uncond_half_independent_of_ref_latents"] = bool(torch.equal(o2[:N_GEN], out[:N_GEN]))
        checks["cond_half_depends_on_ref_latents"] = base.max_abs(o2[N_GEN:], out[N_GEN:]) > 1e-3
        # camera_info_ref is ignored (unet_dual has no class_embedding)
        other = dict(cfg_case)
        other["camera_info_ref"] = torch.tensor([[3], [4]])
        checks["camera_info_ref_ignored"] = bool(torch.equal(call_reference(model, other)[0], out))
        checks["unet_dual_has_no_class_embedding"] = model.unet_dual.class_embedding is None
        # mva_scale / ref_scale semantics
        other = dict(cfg_case)
        other["ref_scale"] = torch.tensor([1.0, 1.0])
        o3 = call_reference(model, other)[0]
        checks["ref_scale_1_changes_only_uncond_half"] = bool(torch.equal(o3[N_GEN:], out[N_GEN:])) and \
            base.max_abs(o3[:N_GEN], out[:N_GEN]) > 1e-4
        again = call_reference(model, cfg_case)[0]
        checks["forward_repeatable_bit_for_bit"] = bool(torch.equal(again, out))

    # ---- single
    out_s, got_s, holder_s = call_reference(model, single_case)
    t.update(case_inputs("single", single_case))
    t["single_out"] = out_s
    t["single_emb"] = got_s["emb"]
    checks["single_class_ids"] = bool(torch.equal(got_s["class_ids"],
                                                  torch.tensor(SINGLE_CAMERAS) + MAX_REF))

    # ---- dual only
    ref = inputs[3].reshape(1, 4, HW, HW)
    dual_out, dual_cache = call_dual(model, ref, 0)
    t["dual_sample"] = ref
    t["dual_encoder_hidden_states"] = p["unet.learned_text_clip_ref"]
    t["dual_out"] = dual_out
    info["dual_only_cache_vs_cfg_cond_half_max_abs"] = max(
        base.max_abs(dual_cache[k][0], cache[k][1]) for k in order)
    checks["dual_only_cache_matches_cfg_cond_half"] = list(dual_cache) == order and \
        info["dual_only_cache_vs_cfg_cond_half_max_abs"] < 1e-5
    checks["single_cache_equals_dual_only_cache"] = all(
        torch.equal(holder_s["dict"][k], dual_cache[k]) for k in order)
    with torch.no_grad():
        alt = [model.unet_dual(ref, ts, encoder_hidden_states=t["dual_encoder_hidden_states"], return_dict=False,
                               cross_attention_kwargs={"mode": "w", "num_in_batch": 1, "condition_embed_dict": {}})[0]
               for ts in (torch.tensor(0), torch.tensor([0]), 0.0)]
    checks["dual_t0_same_as_0dim_tensor_and_1d_tensor_and_float"] = all(torch.equal(a, dual_out) for a in alt)

    # ---- functional re-implementation
    with torch.no_grad():
        m_out, m_emb, m_cache = manual_2p5d(p, cfg, cfg_case)
        ms_out, ms_emb, _ = manual_2p5d(p, cfg, single_case)
        md_out, _ = manual_unet(p, "unet_dual.", cfg, ref, 0, t["dual_encoder_hidden_states"], None, "w", {}, 1, None)
    functional = {
        "what": "manual_2p5d: plain torch (F.linear / conv2d / group_norm / layer_norm, explicit softmax "
                "attention) from the state dict, following spec sections 1-2; not diffusers, not modules.py",
        "max_abs_cfg_out": base.max_abs(m_out, out),
        "max_abs_cfg_emb": base.max_abs(m_emb, got["emb"]),
        "max_abs_cfg_ref_cache": max(base.max_abs(m_cache[k], cache[k]) for k in order),
        "max_abs_single_out": base.max_abs(ms_out, out_s),
        "max_abs_single_emb": base.max_abs(ms_emb, got_s["emb"]),
        "max_abs_dual_out": base.max_abs(md_out, dual_out),
        "max_abs_cfg_out_ref": float(out.abs().max()),
        "max_abs_cfg_ref_cache_ref": max(float(v.abs().max()) for v in cache.values()),
    }
    checks["functional_reimplementation_within_1e-5"] = all(
        functional[k] <= 1e-5 for k in ("max_abs_cfg_out", "max_abs_cfg_emb", "max_abs_cfg_ref_cache",
                                        "max_abs_single_out", "max_abs_single_emb", "max_abs_dual_out"))
    checks["functional_ref_cache_order"] = list(m_cache) == order

    # ---- sensitivity: how far plausible porting mistakes move cfg_out (functional model)
    sens = {}
    with torch.no_grad():
        for mistake, label in (
                ("camera_id_without_offset", "camera ids used without the +5 offset"),
                ("ref_query_renormalised", "ref attention query = norm1(x after attn1) instead of norm1(x_in)"),
                ("ref_scale_ignored", "ref_scale ignored (uncond half also attends to the zero-latent features)"),
                ("multiview_per_view", "multiview attention within each view instead of over all views"),
                ("multiview_across_batch", "multiview attention over all B*N views (CFG halves mixed)"),
                ("multiview_token_major", "(invariance, not a bug) multiview tokens ordered (l n) instead of (n l): "
                                          "joint attention without positions is permutation-equivariant")):
            sens[label] = base.max_abs(manual_2p5d(p, cfg, cfg_case, mistake)[0], out)
        swapped = dict(cfg_case)
        swapped["camera_info_gen"] = cfg_case["camera_info_gen"].flip(1)
        sens["camera ids paired with the wrong views (reversed)"] = base.max_abs(manual_2p5d(p, cfg, swapped)[0], out)
    return t, checks, info, functional, sens, (cfg_case, single_case, ref)


def float64_deviation(model, cases, t):
    cfg_case, single_case, ref = cases
    m64 = copy.deepcopy(model).double()
    res = {}

    def f64_time_proj(_self, timesteps):
        c = TINY_CONFIG
        return base.timestep_embedding_f64(timesteps, c["block_out_channels"][0], c["flip_sin_to_cos"], c["freq_shift"])

    for label in ("diffusers_as_is", "time_proj_in_float64"):
        if label == "time_proj_in_float64":
            for u in (m64.unet, m64.unet_dual):
                u.time_proj.forward = types.MethodType(f64_time_proj, u.time_proj)
        out, got, holder = call_reference(m64, with_dtype(cfg_case, torch.float64))
        out_s, got_s, _ = call_reference(m64, with_dtype(single_case, torch.float64))
        d_out, _ = call_dual(m64, ref.reshape(1, 4, HW, HW).double(), 0)
        r = {}
        for name, ref64 in (("cfg_out", out), ("cfg_emb", got["emb"]), ("single_out", out_s),
                            ("single_emb", got_s["emb"]), ("dual_out", d_out)):
            r[name] = {"max_abs": base.max_abs(t[name], ref64), "max_abs_over_max_ref": base.rel(t[name], ref64),
                       "max_abs_ref": float(ref64.abs().max())}
        r["cfg_ref_cache_max_abs"] = max(base.max_abs(t[f"cfg_ref_{k}"], v) for k, v in holder["dict"].items())
        res[label] = r
    res["note"] = ("diffusers_as_is: model and inputs in float64, but diffusers' time_proj always computes the "
                   "sinusoid in float32; time_proj_in_float64: that formula evaluated in float64 as well")
    return res


# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------


def describe(order, layer_info):
    d = {
        "cfg_sample": "cfg input `sample` [B=2, N=3, 4, 8, 8]: `latents` repeated for both halves (uncond, cond)",
        "cfg_timestep": f"cfg timestep {CFG_TIMESTEP}, passed as the 0-dim float32 tensor torch.tensor({CFG_TIMESTEP}) "
                        "(stored with shape [1])",
        "cfg_encoder_hidden_states": "cfg `encoder_hidden_states` [2, 77, 24] = cat(zeros, learned_text_clip_gen)",
        "cfg_normal_imgs": "cfg `normal_imgs` [2, 3, 4, 8, 8]: `normal_latents` in both halves",
        "cfg_position_imgs": "cfg `position_imgs` [2, 3, 4, 8, 8]: `position_latents` in both halves",
        "cfg_ref_latents": "cfg `ref_latents` [2, 1, 4, 8, 8] = cat(zeros, ref_latent)",
        "cfg_camera_info_gen": f"cfg `camera_info_gen` (int64 when passed) [[{CFG_CAMERAS}] x 2] as float32 [2, 3]",
        "cfg_camera_info_ref": "cfg `camera_info_ref` (int64 when passed) [[0], [0]] as float32 [2, 1] (ignored by the model)",
        "cfg_ref_scale": "cfg `ref_scale` [2] = [0.0, 1.0] (float32 tensor; fp16 in the real pipeline)",
        "cfg_out": "model(...)[0] for the cfg case: [(B N), 4, 8, 8], rows (b n): 0-2 uncond views, 3-5 cond views",
        "cfg_emb": "the main UNet's emb as its resnets get it: time_embedding(t_emb(999)) + class_embedding(camera_info_gen + 5), [(B N), 64]",
        "cfg_tb_in": f"input of {TB_PATH} (after GroupNorm(eps 1e-6), NCHW -> tokens, proj_in), [(B N), 64, 16]",
        "cfg_tb_attn1": f"{TB_PATH}.transformer.attn1 output (self-attention of n = norm1(tb_in)), before its residual add",
        "cfg_tb_ref": f"{TB_PATH}.attn_refview output (q = n, kv = cfg_ref_down_0_0_0 row b repeated per view), "
                      "BEFORE the multiplication by ref_scale[b] and the residual add",
        "cfg_tb_mv": f"{TB_PATH}.attn_multiview output (q = kv = n reshaped [B, N*L, C]), reshaped back to "
                     "[(B N), L, C], before the residual add (mva_scale 1)",
        "cfg_tb_attn2": f"{TB_PATH}.transformer.attn2 output (cross-attention of norm2(running sum) to the repeated context)",
        "cfg_tb_ff": f"{TB_PATH}.transformer.ff output (GEGLU of norm3(running sum))",
        "cfg_tb_out": f"output of {TB_PATH} = tb_in + attn1 + ref_scale*ref + mv + attn2 + ff (each on the running sum)",
        "single_sample": "single input `sample` [1, 3, 4, 8, 8] = `single_latents` (5th draw)",
        "single_timestep": f"single timestep {SINGLE_TIMESTEP}, passed as torch.tensor({SINGLE_TIMESTEP}) (stored with shape [1])",
        "single_encoder_hidden_states": "single `encoder_hidden_states` [1, 77, 24] = learned_text_clip_gen",
        "single_normal_imgs": "single `normal_imgs` [1, 3, 4, 8, 8] = `normal_latents`",
        "single_position_imgs": "single `position_imgs` [1, 3, 4, 8, 8] = `position_latents`",
        "single_ref_latents": "single `ref_latents` [1, 1, 4, 8, 8] = ref_latent",
        "single_camera_info_gen": f"single `camera_info_gen` [[{SINGLE_CAMERAS}]] as float32 [1, 3]",
        "single_camera_info_ref": "single `camera_info_ref` [[0]] as float32 [1, 1]",
        "single_out": "model(...)[0] for the single case (no ref_scale given: 1.0), [3, 4, 8, 8]",
        "single_emb": "the main UNet's emb for the single case (t = 261, cameras + 5), [3, 64]",
        "dual_sample": "unet_dual input: ref_latent as [1, 4, 8, 8]",
        "dual_encoder_hidden_states": "unet_dual context: learned_text_clip_ref [1, 77, 24] (= the weight)",
        "dual_out": "unet_dual(dual_sample, 0 (Python int), learned_text_clip_ref, mode 'w')[0] [1, 4, 8, 8] "
                    "(discarded by the reference; the dual UNet as a plain UNet with the .transformer. infix)",
    }
    for name in order:
        li = layer_info[name]
        d[f"cfg_ref_{name}"] = (f"reference cache entry '{name}', written by unet_dual.{li['module']}: its norm1 output "
                                f"(LayerNorm of the block input, before attn1), (b n) l c -> b (n l) c, [B=2, N_ref*L, C] "
                                f"= {li['shape']}; row 0 from the zero latents (uncond), row 1 from ref_latent")
    return d


def ref_layer_info(model, cache):
    info = {}
    for path, mod in model.unet_dual.named_modules():
        if hasattr(mod, "layer_name") and hasattr(mod, "transformer"):
            info[mod.layer_name] = {"module": path, "C": mod.transformer.dim,
                                    "heads": mod.transformer.num_attention_heads}
    for name, v in cache.items():
        info[name]["shape"] = list(v.shape)
        info[name]["tokens_per_view"] = v.shape[1]
    return {k: info[k] for k in cache}


def write_keys(model, unet_dir):
    sd = model.state_dict()
    keys = {k: list(v.shape) for k, v in sorted(sd.items())}

    def count(prefix):
        ks = [k for k in keys if k.startswith(prefix)]
        return len(ks), int(sum(int(np.prod(keys[k])) for k in ks))

    counts = {"total": count(""), "unet": count("unet."), "unet_dual": count("unet_dual.")}
    for k, v in EXPECTED_KEYS.items():
        assert counts[k] == v, (k, counts[k], v)
    _, plain = base.key_manifest(TINY_CONFIG, "tiny")
    plain_keys = plain["keys"]

    def strip(k, prefix):
        return k[len(prefix):].replace(".transformer_blocks.0.transformer.", ".transformer_blocks.0.")

    dual = {strip(k, "unet_dual."): v for k, v in keys.items() if k.startswith("unet_dual.")}
    main = {strip(k, "unet."): v for k, v in keys.items() if k.startswith("unet.")}
    assert dual == plain_keys, set(dual) ^ set(plain_keys)
    extra = {k: v for k, v in main.items() if k not in plain_keys or plain_keys[k] != v}
    assert set(main) - set(extra) == set(plain_keys) - {"conv_in.weight"}
    doc = {
        "generator": "pipeline/tests/reference/paint_unet_fixtures.py",
        "num_tensors": counts["total"][0],
        "param_count": counts["total"][1],
        "per_prefix": {k: {"num_tensors": v[0], "param_count": v[1]} for k, v in counts.items() if k != "total"},
        "plain_unet": {"num_tensors": plain["num_tensors"], "param_count": plain["param_count"],
                       "note": "TINY_CONFIG UNet2DConditionModel (sd_unet fixtures' tiny/): unet_dual.* is exactly "
                               "these keys with the '.transformer.' infix after transformer_blocks.0"},
        "main_unet_keys_beyond_plain": {k: extra[k] for k in sorted(extra)},
        "infix": "every key under *.transformer_blocks.0. of a plain UNet is *.transformer_blocks.0.transformer.*",
        "keys": keys,
    }
    base.write_json(os.path.join(unet_dir, "keys.json"), doc)
    return counts


def write_all(out_dir, modules, provenance):
    model = build_model(modules)

    unet_dir = os.path.join(out_dir, "tiny", "unet")
    os.makedirs(unet_dir, exist_ok=True)
    config = {"_class_name": "UNet2DConditionModel", "_diffusers_version": diffusers.__version__, **TINY_CONFIG}
    with open(os.path.join(unet_dir, "config.json"), "w") as fh:
        fh.write(json.dumps(config, indent=2, sort_keys=True) + "\n")
    sd = model.state_dict()
    assert all(v.dtype == torch.float32 for v in sd.values())
    torch.save(sd, os.path.join(unet_dir, "diffusion_pytorch_model.bin"))
    counts = write_keys(model, unet_dir)

    tensors, checks, info, functional, sens, cases = run_all(model)

    # load back through the reference's from_pretrained path
    loaded = reference_from_pretrained(modules, unet_dir)
    checks["loaded_state_dict_equals_saved"] = all(torch.equal(v, sd[k]) for k, v in loaded.state_dict().items())
    out_l = call_reference(loaded, cases[0])[0]
    checks["from_pretrained_reproduces_cfg_out"] = bool(torch.equal(out_l, tensors["cfg_out"]))
    try:
        modules.UNet2p5DConditionModel.from_pretrained(unet_dir)
        checks["unmodified_from_pretrained_rejects_tiny_widths"] = False
    except RuntimeError as e:
        checks["unmodified_from_pretrained_rejects_tiny_widths"] = "size mismatch" in str(e)

    deviation = float64_deviation(model, cases, tensors)

    order = info["ref_layer_order"]
    layers = ref_layer_info(model, {k: tensors[f"cfg_ref_{k}"] for k in order})
    descriptions = describe(order, layers)
    assert set(descriptions) == set(tensors), set(descriptions) ^ set(tensors)
    io_dir = os.path.join(out_dir, "tiny_io")
    os.makedirs(io_dir, exist_ok=True)
    entries = {}
    for name in sorted(tensors):
        arr = tensors[name].detach().contiguous().numpy().astype("<f4")
        with open(os.path.join(io_dir, f"{name}.bin"), "wb") as f:
            f.write(arr.tobytes(order="C"))
        entries[name] = {"file": f"tiny_io/{name}.bin", "dtype": "float32", "shape": list(arr.shape),
                         "description": descriptions[name]}

    failed = [k for k, v in checks.items() if v is not True]
    assert not failed, failed

    call = ("model(sample, timestep, encoder_hidden_states=..., num_in_batch=N, timestep_cond=None, "
            "cross_attention_kwargs=None, added_cond_kwargs=None, return_dict=False, normal_imgs=..., "
            "position_imgs=..., ref_latents=..., camera_info_gen=..., camera_info_ref=...[, ref_scale=...])[0]")
    manifest = {
        "generator": "pipeline/tests/reference/paint_unet_fixtures.py",
        "reference": provenance,
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "num_threads": torch.get_num_threads(),
        "weights": "tiny/unet/ (config.json + diffusion_pytorch_model.bin via torch.save(state_dict), float32; "
                   "keys.json lists the keys)",
        "config": dict(TINY_CONFIG),
        "deviation_from_reference": {
            "what": "after UNet2p5DConditionModel(unet): unet.learned_text_clip_gen / _ref := nn.Parameter [1, 77, 24], "
                    "unet.class_embedding := nn.Embedding(49, 64)",
            "why": "the reference hard-codes 1024 (= SD2 cross_attention_dim) and 1280 (= 4 * block_out_channels[0]); "
                   "for TINY_CONFIG these are 24 and 64",
        },
        "num_tensors": counts["total"][0],
        "param_count": counts["total"][1],
        "per_prefix": {k: {"num_tensors": v[0], "param_count": v[1]} for k, v in counts.items() if k != "total"},
        "seeds": {"init_manual_seed": 0, "weights": WEIGHT_SEED, "inputs": INPUT_SEED},
        "input_draw_order": [f"latents [1, {N_GEN}, 4, {HW}, {HW}]", f"normal_latents [1, {N_GEN}, 4, {HW}, {HW}]",
                             f"position_latents [1, {N_GEN}, 4, {HW}, {HW}]", f"ref_latent [1, 1, 4, {HW}, {HW}]",
                             f"single_latents [1, {N_GEN}, 4, {HW}, {HW}]"],
        "weight_init": {
            "order": "parameters in sorted name order, one torch.randn draw each from one CPU generator",
            "conv_and_linear_weight": "randn / sqrt(fan_in), fan_in = prod(shape[1:])",
            "conv_and_linear_bias": "0.1 * randn",
            "norm_weight": "1 + 0.1 * randn (GroupNorm and LayerNorm)",
            "norm_bias": "0.1 * randn",
            "class_embedding_and_learned_text": "randn",
        },
        "layout": "raw little-endian float32, row-major (C order); [B, N, C, H, W] multiview inputs, "
                  "[(B N), C, H, W] outputs (row b * N + n), [B, tokens, C] sequences",
        "cases": {
            "cfg": {
                "call": call,
                "inputs": {k: f"cfg_{k}" for k in cases[0]},
                "timestep": CFG_TIMESTEP, "timestep_passed_as": "0-dim float32 tensor",
                "camera_info_gen": [CFG_CAMERAS, CFG_CAMERAS], "camera_info_ref": [[0], [0]],
                "ref_scale": [0.0, 1.0], "num_views": N_GEN,
                "outputs": ["cfg_out", "cfg_emb"] + [f"cfg_ref_{k}" for k in order] +
                           [f"cfg_tb_{k}" for k in ("in", "attn1", "ref", "mv", "attn2", "ff", "out")],
            },
            "single": {
                "call": call,
                "inputs": {k: f"single_{k}" for k in cases[1]},
                "timestep": SINGLE_TIMESTEP, "timestep_passed_as": "0-dim float32 tensor",
                "camera_info_gen": [SINGLE_CAMERAS], "camera_info_ref": [[0]],
                "ref_scale": "absent (= 1.0)", "num_views": N_GEN,
                "outputs": ["single_out", "single_emb"],
            },
            "dual_only": {
                "call": "model.unet_dual(dual_sample, 0, encoder_hidden_states=learned_text_clip_ref, "
                        "class_labels=tensor([0]), return_dict=False, cross_attention_kwargs={'mode': 'w', "
                        "'num_in_batch': 1, 'condition_embed_dict': {}})[0]",
                "inputs": {"sample": "dual_sample", "encoder_hidden_states": "dual_encoder_hidden_states"},
                "timestep": 0, "timestep_passed_as": "Python int 0 (as the reference's forward does)",
                "outputs": ["dual_out"],
            },
        },
        "ref_layer_order": order,
        "ref_layers": layers,
        "semantics": {
            "camera_ids": "class_embedding row = camera_info_gen + 5 (max_num_ref_image), flattened (b n); "
                          "emb = time_embedding(t_emb) + class_embedding[row] per (b, n) row",
            "camera_info_ref": "passed but ignored: unet_dual has no class_embedding (its emb is the time embedding of t = 0)",
            "ref_scale": "tensor [B]: block adds ref_scale[b] * attn_refview(...) to every view of batch row b; "
                         "absent -> 1.0; the CFG uncond half has 0.0 (its zero-latent reference features contribute "
                         "exactly 0)",
            "mva_scale": "absent -> 1.0 (multiview attention added unscaled)",
            "view_order": "(b n): output row b * N + n is view n of batch row b; multiview attention concatenates the "
                          "N views' tokens view-major ((n l)) within each batch row; the camera id of view n is "
                          "camera_info_gen[b][n]",
            "context": "encoder_hidden_states [B, 77, D] repeated per view -> [(B N), 77, D] for attn2; unet_dual always "
                       "gets learned_text_clip_ref (both CFG halves)",
            "reference_pass": "unet_dual(ref_latents as [(B N_ref), 4, H, W], t = 0, learned_text_clip_ref) in mode 'w' "
                              "stores each block's norm1 output as [B, N_ref*L, C]; its output is discarded; it is "
                              "re-run on every main call unless condition_embed_dict is passed",
            "sample_channels": "conv_in input = cat([sample, normal_imgs, position_imgs], dim=2) -> 12 channels",
        },
        "tensors": entries,
        "functional_check": functional,
        "float64_deviation": deviation,
        "sensitivity_max_abs_change_cfg_out": sens,
        "extra": {k: v for k, v in info.items() if k != "ref_layer_order"},
        "checks": checks,
    }
    base.write_json(os.path.join(out_dir, "tiny_io.json"), manifest)
    return manifest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--hy3dgen-src", default=os.environ.get("HY3DGEN_SRC", DEFAULT_SRC))
    args = parser.parse_args()
    torch.set_num_threads(1)
    modules, provenance = load_reference(args.hy3dgen_src)
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    m = write_all(out_dir, modules, provenance)
    fc = m["functional_check"]
    dev = m["float64_deviation"]["diffusers_as_is"]["cfg_out"]["max_abs"]
    print(f"wrote {out_dir}: {m['num_tensors']} weight tensors / {m['param_count']} params, "
          f"{len(m['tensors'])} io tensors; functional max abs {fc['max_abs_cfg_out']:.3g}, float64 dev {dev:.3g}")


if __name__ == "__main__":
    main()
