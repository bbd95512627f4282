"""Parity fixtures for the burn port of the CLIP text encoder (transformers `CLIPTextModel`), as Stable
Diffusion 2.x and Hunyuan3D-Paint's delight pipeline (diffusers StableDiffusionInstructPix2PixPipeline)
use it to turn the prompt into the UNet's `encoder_hidden_states`.

What it writes (under pipeline/tests/fixtures/clip_text/, deterministic: two runs give identical bytes):

* `tiny/`: a transformers-format folder exactly as `CLIPTextModel.save_pretrained` writes it
  (`config.json` + `model.safetensors`, float32) of TINY_CONFIG below: vocab_size 1000, hidden_size 32,
  intermediate_size 64, num_hidden_layers 2, num_attention_heads 4 (head_dim 8),
  max_position_embeddings 77, hidden_act "gelu" (SD 2.x's; SD 1.x's openai/clip-vit-large-patch14 text
  tower uses "quick_gelu"), layer_norm_eps 1e-5, bos_token_id 998, eos_token_id 999, pad_token_id 0,
  projection_dim 32 (unused by CLIPTextModel: no projection layer). 36 tensors, 51,616 parameters
  (the weight file is 210,464 bytes). Built after torch.manual_seed(0), then EVERY parameter is
  overwritten with a seeded draw (torch.Generator seeded WEIGHT_SEED, parameters visited in sorted-name
  order, one torch.randn each):
    - Embedding weight (token_embedding, position_embedding): N(0, 1),
    - Linear weight: N(0, 1) / sqrt(in_features),   Linear bias: 0.1 * N(0, 1),
    - LayerNorm weight: 1 + 0.1 * N(0, 1),          LayerNorm bias: 0.1 * N(0, 1).
  No `tiny_quick_gelu/` folder: it would duplicate the 210 KB weight file. Its outputs are in tiny_io
  instead, computed by `CLIPTextModel.from_pretrained("tiny", hidden_act="quick_gelu")`, i.e. the
  same weights with config.hidden_act = "quick_gelu" (the only difference).
* `tiny/tokenizer/`: a CLIP tokenizer folder (the four files `CLIPTokenizer.from_pretrained` reads in
  an SD 2.x `tokenizer/` folder): `vocab.json`, `merges.txt`, `special_tokens_map.json`,
  `tokenizer_config.json`. Its vocabulary follows the real CLIP vocabulary's construction on a small
  scale: ids 0..255 are the 256 byte symbols of `bytes_to_unicode()` in its order (so "!" = 0, "\"" = 1,
  ... as in the real vocabulary), 256..511 the same symbols + "</w>" ("!</w>" = 256), 512..997 the
  joined results of the 486 merges in merges.txt (BPE trained here on BPE_CORPUS, most frequent pair
  first, ties by the smaller pair), then "<|startoftext|>" = 998 and "<|endoftext|>" = 999.
  merges.txt starts with the line "#version: 0.2" (CLIPTokenizer skips the first line).
  special_tokens_map.json / tokenizer_config.json mirror the SD 2.x tokenizer's (see "Tokenizer and
  padding"): bos "<|startoftext|>", eos = unk "<|endoftext|>", model_max_length 77, do_lower_case,
  and the pad token "!" in special_tokens_map.json while tokenizer_config.json says "<|endoftext|>"
  (legacy format: no `added_tokens_decoder`), so the loaded pad token is "!" = id 0.
* `tiny_io.json` + `tiny_io/*.bin`: inputs and outputs of the tiny model (raw little-endian, row-major
  / C order; names, dtypes, shapes and descriptions in the manifest):
    - `input_ids` [2, 77] int32 (the model is fed them as int64): row 0 is the empty prompt "" exactly
      as the tiny tokenizer pads it: [998, 999, 0 x 75]; row 1 is bos, then seeded ids uniform in
      1..997 (torch.randint, INPUT_SEED) at positions 1..EOS_POS_ROW1-1, eos at EOS_POS_ROW1 (= 37),
      then pads 0;
    - `embeddings` = hidden_states[0] = token_embedding(ids) + position_embedding(0..76);
    - `layer_0_self_attn` the attention branch of layer 0 (out_proj output, before the residual add);
    - `hidden_after_layer_0` = hidden_states[1], `hidden_after_layer_1` = hidden_states[2] (the last
      encoder layer's output, BEFORE final_layer_norm);
    - `last_hidden_state` [2, 77, 32] = final_layer_norm(hidden_after_layer_1): what the SD pipelines
      use as prompt_embeds (text_encoder(ids)[0]);
    - `pooled_output` [2, 32] (pooler_output: last_hidden_state at the eos position, see below);
    - the same for hidden_act "quick_gelu": `last_hidden_state_quick_gelu`, `pooled_output_quick_gelu`
      (embeddings are activation-free; per-layer quick_gelu intermediates are left out to keep the
      fixture under 400 KiB).
  The manifest also records the attention numerics (SDPA vs eager vs float64), how far the float32
  run is from float64 (`float64_deviation`), how far plausible porting mistakes move
  last_hidden_state (`sensitivity_max_abs_change`), the tokenizer facts (`tokenizer`) and the checks
  the generator made (the folder loads back and reproduces the outputs bit for bit; diffusers'
  StableDiffusionInstructPix2PixPipeline._encode_prompt("") with this encoder and tokenizer returns
  row 0 of last_hidden_state bit for bit, etc.).
* `sd2_text_manifest.json`: for the full-size SD 2.x text encoder (SD2_CONFIG), SD 1.x's (SD1_CONFIG,
  summary only) and TINY_CONFIG, built on torch's meta device: the resolved config fields, the sorted
  state-dict key -> shape map (SD 2.x and tiny), number of tensors and parameter count, and the buffer
  that older checkpoints carry (`text_model.embeddings.position_ids`).

Run it like this (CPU only, float32, torch.backends defaults, torch.set_num_threads(1)):

    /root/.cache/orfeas/paint-venv/bin/pip install torch "diffusers==0.32.2" "transformers==4.49.0" \
        safetensors numpy
    /root/.cache/orfeas/paint-venv/bin/python pipeline/tests/reference/clip_text_fixtures.py

(transformers 4.49.0 pulls huggingface_hub < 1.0 and tokenizers 0.21; diffusers 0.32.2 works with
them. ftfy is not installed: CLIPTokenizer then normalises text with its BasicTokenizer fallback,
which is irrelevant for the prompts here.) `--out DIR` writes elsewhere (used to check that two runs
agree byte for byte). Reference: transformers 4.49.0 and diffusers 0.32.2 (PyPI), run unmodified;
written with torch 2.15.0 on an AVX512 CPU. Nothing upstream is copied here.

SD 2.x config (SD2_CONFIG): stabilityai/stable-diffusion-2-1 `text_encoder/config.json` is not read
here; it is reconstructed as the OpenCLIP ViT-H/14 text tower converted to transformers: vocab_size
49408, hidden_size 1024, intermediate_size 4096, num_hidden_layers 23, num_attention_heads 16
(head_dim 64), max_position_embeddings 77, hidden_act "gelu", layer_norm_eps 1e-5, projection_dim 512,
and, assumed from the published file (written by transformers 4.25, before the CLIPTextConfig
defaults changed in 4.31), bos_token_id 0, eos_token_id 2, pad_token_id 1. Those three ids are the
old defaults, not the real token ids; they matter only for pooled_output (below) and nothing else.
The ViT-H text tower has 24 layers; SD 2.x conditions on the penultimate layer's output (OpenCLIP
FrozenOpenCLIPEmbedder layer="penultimate": 23 resblocks, then ln_final), so the converted model simply
has 23 layers and its final_layer_norm is OpenCLIP's ln_final. The Hunyuan3D-Paint delight model
(tencent/Hunyuan3D-2 hunyuan3d-delight-v2-0) ships its own text_encoder/ and tokenizer/ folders (not
read here either); they are expected to be this SD 2.x layout.

Module structure (transformers 4.49.0 CLIPTextModel; D = hidden_size, H = num_attention_heads,
d = D / H, F = intermediate_size, every LayerNorm has eps layer_norm_eps and affine weight + bias,
every Linear has a bias, dropout p = 0):

  text_model.embeddings.token_embedding      nn.Embedding(vocab_size, D)   (no padding_idx: the pad
                                             id's row is an ordinary row)
  text_model.embeddings.position_embedding   nn.Embedding(max_position_embeddings, D)
    x = token_embedding(ids) + position_embedding(position_ids),  position_ids = 0..T-1
    (T = ids.shape[-1] <= 77; T > 77 raises). position_ids is a NON-persistent buffer: not in the
    state dict (see "Key names").
  text_model.encoder.layers.N (N = 0..L-1)   CLIPEncoderLayer, PRE-norm, two residuals:
    x = x + self_attn(layer_norm1(x))
    x = x + mlp(layer_norm2(x))
    .layer_norm1, .layer_norm2               nn.LayerNorm(D)
    .self_attn.{q_proj, k_proj, v_proj, out_proj}   nn.Linear(D, D) each (weight [D, D] = [out, in])
    .mlp.fc1                                 nn.Linear(D, F), then the activation, then
    .mlp.fc2                                 nn.Linear(F, D)
  text_model.final_layer_norm                nn.LayerNorm(D), applied to the last layer's output:
                                             last_hidden_state = final_layer_norm(x)
  (no projection: CLIPTextModelWithProjection's text_projection is not part of this model.)

  self_attn on y = layer_norm1(x) [B, T, D]:
    q = q_proj(y), k = k_proj(y), v = v_proj(y), each viewed as [B, T, H, d] -> [B, H, T, d]
    (head h owns channels h*d .. h*d+d-1: contiguous blocks);
    a = softmax(q k^T * scale + mask) v,  scale = d ** -0.5 (1/sqrt(head_dim): 1/sqrt(8) tiny,
    1/8 SD 2.x), mask [B, 1, T, T] additive;
    a -> [B, T, H, d] -> [B, T, D] -> out_proj.
    transformers' default attention class here is CLIPSdpaAttention (config._attn_implementation
    "sdpa"): F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale). The eager
    CLIPAttention multiplies q by the scale before q k^T; same maths.
  mask: the CAUSAL mask only, _create_4d_causal_attention_mask: 0 where key j <= query i, and
    torch.finfo(float32).min (-3.4028235e38, not -inf) where j > i. No padding mask unless an
    attention_mask is passed (then (1 - m) * finfo.min is added on the key axis): pad tokens DO
    attend (to everything before them, bos/prompt/eos/earlier pads), and since the SD pipelines use
    all 77 positions of last_hidden_state as cross-attention context, the pad positions' outputs
    matter.
  activation (hidden_act): "gelu" = torch.nn.functional.gelu, the exact erf form
    0.5 * x * (1 + erf(x / sqrt(2))) (NOT the tanh approximation, which is "gelu_new" /
    "gelu_pytorch_tanh"); "quick_gelu" = x * sigmoid(1.702 * x).

  pooled_output (pooler_output, not used by the SD pipelines): last_hidden_state[b, p_b] with p_b
    chosen by config.eos_token_id:
    - eos_token_id == 2 (legacy configs, SD 2.x's and openai/clip-vit-large-patch14's published
      config): p_b = argmax(input_ids[b]) (the first position of the largest id, which for real CLIP
      ids is eos 49407, the largest id);
    - otherwise (TINY_CONFIG, eos 999): p_b = the FIRST position where input_ids[b] == eos_token_id
      ((ids == eos).int().argmax(-1); 0 if there is none).
    For the tiny inputs both rules give positions [1, EOS_POS_ROW1] (checked).

How SD 2.x / the delight pipeline calls it (diffusers 0.32.2 StableDiffusionInstructPix2PixPipeline.
_encode_prompt; hy3dgen 2.0.2 texgen/utils/dehighlight_utils.py Light_Shadow_Remover):
  ids = tokenizer(prompt, padding="max_length", max_length=tokenizer.model_max_length (77),
  truncation=True).input_ids; attention_mask is passed ONLY if text_encoder.config has an attribute
  `use_attention_mask` that is true (SD 2.x's config has none: attention_mask=None, so only the
  causal mask applies); prompt_embeds = text_encoder(ids)[0] = last_hidden_state [B, 77, D], cast to
  the text encoder's dtype (float16 in the delight pipeline, run on the GPU).
  The delight pipeline calls it with prompt="", guidance_scale (cfg_text) 1.0 and image_guidance_scale
  1.5: do_classifier_free_guidance = guidance_scale > 1.0 and image_guidance_scale >= 1.0 is FALSE, so
  the text encoder runs once on "" and no negative embeddings are made (with guidance on, pix2pix
  would stack [prompt, negative(""), negative("")]). The multiview Hunyuan3D-Paint pipeline does not
  run the text encoder at all (it uses the UNet's learned_text_clip_gen and zeros).

Tokenizer and padding (the real SD tokenizers; ids derived below with transformers' CLIPTokenizer from
a vocabulary built the way CLIP's is: byte symbols at 0..255, "<|startoftext|>" 49406,
"<|endoftext|>" 49407, the merges left out since the empty prompt needs none):
  SD 2.x (stabilityai/stable-diffusion-2*/tokenizer): special_tokens_map.json has pad_token "!" (id 0;
    OpenCLIP's own tokenizer pads with 0 too), so "" -> [49406, 49407, 0 x 75]. Its
    tokenizer_config.json is assumed to keep CLIP's pad_token "<|endoftext|>" in the legacy format (not
    downloaded); by the precedence below "!" wins either way;
  SD 1.x (openai/clip-vit-large-patch14's tokenizer): pad_token "<|endoftext|>", so
    "" -> [49406, 49407, 49407 x 75].
  transformers' precedence (verified here): when tokenizer_config.json has no `added_tokens_decoder`
  (the legacy format of the SD 2.x files, saved by transformers 4.25), every entry of
  special_tokens_map.json overrides tokenizer_config.json's, so pad "!" wins over tokenizer_config's
  "<|endoftext|>"; when tokenizer_config.json has `added_tokens_decoder` (files saved by transformers
  >= 4.34), special_tokens_map.json is not applied and tokenizer_config.json's pad_token is used.
  Which format the delight folder uses is not known here; a loader should implement both.
  Side effect (diffusers issue 4153): "!" becomes a special token, so a "!" in a prompt is split off
  and always encodes as id 0 (e.g. "!!" never merges); the tokenizer section of tiny_io.json shows it.

Key names: the state dict is exactly
  text_model.embeddings.token_embedding.weight [vocab, D], text_model.embeddings.position_embedding.
  weight [77, D], text_model.encoder.layers.N.{self_attn.{q_proj, k_proj, v_proj, out_proj},
  layer_norm1, mlp.{fc1, fc2}, layer_norm2}.{weight, bias}, text_model.final_layer_norm.{weight, bias}
  (16 tensors per layer). SD 2.x: 372 tensors, 340,387,840 parameters; tiny: 36, 51,616.
  Checkpoints written by transformers < 4.31 (e.g. SD 2.x's text_encoder/pytorch_model.bin and
  model.safetensors) also hold `text_model.embeddings.position_ids` [1, 77] int64 (= 0..76). transformers
  4.49 registers it with persistent=False: `save_pretrained` no longer writes it, and from_pretrained
  drops it from a checkpoint silently (unexpected keys that name a model buffer are discarded) and
  uses its own arange (checked here with a stored position_ids of 76..0). A loader should ignore it.
"""
import argparse
import collections
import copy
import json
import os
import shutil
import tempfile
import warnings

import numpy as np
import regex
import torch
import torch.nn.functional as F

import diffusers
import transformers
from diffusers import StableDiffusionInstructPix2PixPipeline
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer, CLIPTokenizerFast
from transformers.modeling_attn_mask_utils import _create_4d_causal_attention_mask
from transformers.models.clip import modeling_clip
from transformers.models.clip.tokenization_clip import bytes_to_unicode

DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "clip_text")

TINY_CONFIG = dict(
    vocab_size=1000,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=77,
    hidden_act="gelu",
    layer_norm_eps=1e-5,
    bos_token_id=998,
    eos_token_id=999,
    pad_token_id=0,
    projection_dim=32,
)

# Reconstructed stabilityai/stable-diffusion-2-1 text_encoder/config.json (see the header).
SD2_CONFIG = dict(
    vocab_size=49408,
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=23,
    num_attention_heads=16,
    max_position_embeddings=77,
    hidden_act="gelu",
    layer_norm_eps=1e-5,
    projection_dim=512,
    attention_dropout=0.0,
    dropout=0.0,
    initializer_factor=1.0,
    initializer_range=0.02,
    bos_token_id=0,
    eos_token_id=2,
    pad_token_id=1,
)

# Reconstructed openai/clip-vit-large-patch14 text_config (SD 1.x's text encoder), for comparison.
SD1_CONFIG = dict(SD2_CONFIG, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                  num_attention_heads=12, hidden_act="quick_gelu", projection_dim=768)

WEIGHT_SEED = 1
INPUT_SEED = 2
SEQ = 77
EOS_POS_ROW1 = 37
BOS, EOS, PAD = 998, 999, 0
NUM_MERGES = 998 - 512

# Text the tiny tokenizer's merges are trained on (lower case; any text would do).
BPE_CORPUS = """
a photo of a red chair on a white background. a wooden table with four legs and a smooth top.
a small ceramic vase with blue flowers, studio lighting, soft shadows, high quality render.
the texture of the mesh is baked from several views of the object: front, back, left, right, top
and bottom. remove the highlights and the shadows from the image so that only the albedo remains.
a metal robot toy with yellow stripes, a leather sofa, a stone statue of a lion, a glass bottle,
a plastic cup, a cotton shirt, a pair of running shoes, an old brass lamp, a green apple, a pumpkin.
diffuse color, specular reflection, roughness, metallic, normal map, ambient occlusion, emission.
the camera orbits around the model at a fixed elevation and the renderer rasterizes each triangle
into a texture atlas; visible texels are blended by their cosine weight and the seams are inpainted.
delight the input picture, then paint the surface with multiview diffusion, then unwrap the uv
coordinates and project every generated view back onto the texture. sharp details, clean edges,
bright daylight, dark night, warm sunset, cold winter morning, foggy forest, sandy beach, snowy
mountain, crowded street, quiet library, kitchen counter, bedroom window, garden fence, brick wall.
cat, dog, horse, bird, fish, dragon, castle, tower, bridge, airplane, bicycle, motorcycle, helmet,
sword, shield, crown, guitar, piano, violin, camera, phone, laptop, keyboard, mouse, monitor, clock.
""" + "! !! !!! ? ... 0 1 2 3 4 5 6 7 8 9 100 2024 it's they're we've i'm you'll he'd"

SAMPLE_PROMPTS = ["", "a photo of a red chair", "A Wooden TABLE,  studio lighting", "! !! !!!",
                  "zebra"]


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


def build_model(config, **overrides):
    return CLIPTextModel(CLIPTextConfig(**dict(config, **overrides)))


def randomize(model, seed):
    """Overwrite every parameter with a seeded draw (see the header for the scales)."""
    gen = torch.Generator("cpu").manual_seed(seed)
    owner = {}
    for mname, module in model.named_modules():
        for pname, _ in module.named_parameters(recurse=False):
            owner[f"{mname}.{pname}" if mname else pname] = module
    done = set()
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            module = owner[name]
            leaf = name.rsplit(".", 1)[1]
            draw = torch.randn(p.shape, generator=gen, dtype=torch.float32)
            if isinstance(module, torch.nn.Embedding):
                value = draw
            elif isinstance(module, torch.nn.LayerNorm):
                value = 1.0 + 0.1 * draw if leaf == "weight" else 0.1 * draw
            elif isinstance(module, torch.nn.Linear):
                value = draw / float(np.sqrt(p.shape[1])) if leaf == "weight" else 0.1 * draw
            else:
                raise SystemExit(f"unexpected parameter owner {type(module).__name__} for {name}")
            p.copy_(value)
            done.add(name)
    all_names = {n for n, _ in model.named_parameters()}
    assert done == all_names, all_names - done
    assert set(model.state_dict()) == all_names, "the state dict holds something besides parameters"


def resolved_fields(config):
    keys = ["vocab_size", "hidden_size", "intermediate_size", "projection_dim", "num_hidden_layers",
            "num_attention_heads", "max_position_embeddings", "hidden_act", "layer_norm_eps",
            "attention_dropout", "initializer_range", "initializer_factor", "bos_token_id",
            "eos_token_id", "pad_token_id"]
    out = {k: getattr(config, k) for k in keys}
    out["_attn_implementation"] = config._attn_implementation
    out["use_attention_mask_attribute_present"] = hasattr(config, "use_attention_mask")
    return out


def key_manifest(config, with_keys=True):
    with torch.device("meta"):
        model = build_model(config)
    sd = model.state_dict()
    keys = {k: list(v.shape) for k, v in sorted(sd.items())}
    count = int(sum(int(np.prod(s)) for s in keys.values()))
    buffers = {n: {"shape": list(b.shape), "dtype": str(b.dtype).replace("torch.", ""),
                   "persistent": n in sd} for n, b in model.named_buffers()}
    out = {
        "resolved_config": resolved_fields(model.config),
        "head_dim": config["hidden_size"] // config["num_attention_heads"],
        "attention_scale": (config["hidden_size"] // config["num_attention_heads"]) ** -0.5,
        "num_tensors": len(keys),
        "param_count": count,
        "buffers": buffers,
    }
    if with_keys:
        out["keys"] = keys
    return out


# ---------------------------------------------------------------------------------------------
# The tiny tokenizer
# ---------------------------------------------------------------------------------------------

TOKEN_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE)


def base_symbols():
    syms = list(bytes_to_unicode().values())
    return syms + [s + "</w>" for s in syms]


def train_bpe(text, num_merges):
    """Plain BPE on CLIP's pre-tokens: the most frequent adjacent pair first (ties: smaller pair)."""
    byte_encoder = bytes_to_unicode()
    counts = collections.Counter()
    for tok in regex.findall(TOKEN_PATTERN, text.lower()):
        chars = [byte_encoder[b] for b in tok.encode("utf-8")]
        counts[tuple(chars[:-1] + [chars[-1] + "</w>"])] += 1
    words = [list(w) for w in sorted(counts)]
    freqs = [counts[tuple(w)] for w in words]
    known = set(base_symbols())
    merges = []
    while len(merges) < num_merges:
        pairs = collections.Counter()
        for w, f in zip(words, freqs):
            for a, b in zip(w, w[1:]):
                if a + b not in known:
                    pairs[(a, b)] += f
        if not pairs:
            raise SystemExit(f"BPE_CORPUS yields only {len(merges)} merges, {num_merges} needed")
        (a, b), _ = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))
        merges.append((a, b))
        known.add(a + b)
        for w in words:
            i = 0
            while i < len(w) - 1:
                if w[i] == a and w[i + 1] == b:
                    w[i:i + 2] = [a + b]
                i += 1
    return merges


def special_token(content):
    return {"content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}


def write_tokenizer(folder, vocab, merges, pad_in_special_map, pad_in_config, added_tokens_decoder=None):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "vocab.json"), "w", encoding="utf-8") as f:
        f.write(json.dumps(vocab, ensure_ascii=False) + "\n")
    with open(os.path.join(folder, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))
    write_json(os.path.join(folder, "special_tokens_map.json"), {
        "bos_token": special_token("<|startoftext|>"),
        "eos_token": special_token("<|endoftext|>"),
        "pad_token": pad_in_special_map,
        "unk_token": special_token("<|endoftext|>"),
    })

    def typed(content):
        return {"__type": "AddedToken", **special_token(content)}

    config = {
        "add_prefix_space": False,
        "bos_token": typed("<|startoftext|>"),
        "do_lower_case": True,
        "eos_token": typed("<|endoftext|>"),
        "errors": "replace",
        "model_max_length": SEQ,
        "pad_token": pad_in_config,
        "tokenizer_class": "CLIPTokenizer",
        "unk_token": typed("<|endoftext|>"),
    }
    if added_tokens_decoder is not None:
        config = {"added_tokens_decoder": added_tokens_decoder, **{
            k: (v["content"] if isinstance(v, dict) else v) for k, v in config.items()}}
    write_json(os.path.join(folder, "tokenizer_config.json"), config)


def empty_prompt(tok):
    enc = tok("", padding="max_length", max_length=tok.model_max_length, truncation=True)
    return enc.input_ids, enc.attention_mask


def write_tiny_tokenizer(folder):
    merges = train_bpe(BPE_CORPUS, NUM_MERGES)
    symbols = base_symbols() + [a + b for a, b in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(symbols) == len(set(symbols)) == TINY_CONFIG["vocab_size"]
    vocab = {s: i for i, s in enumerate(symbols)}
    assert vocab["!"] == PAD and vocab["<|startoftext|>"] == BOS and vocab["<|endoftext|>"] == EOS
    write_tokenizer(folder, vocab, merges, pad_in_special_map="!", pad_in_config="<|endoftext|>")

    info, checks = {}, {}
    slow = CLIPTokenizer.from_pretrained(folder)
    fast = CLIPTokenizerFast.from_pretrained(folder)
    ids, mask = empty_prompt(slow)
    info["files"] = sorted(os.listdir(folder))
    info["num_merges"] = len(merges)
    info["first_merges"] = [f"{a} {b}" for a, b in merges[:8]]
    info["ids"] = {"!": vocab["!"], "!</w>": vocab["!</w>"], "<|startoftext|>": BOS, "<|endoftext|>": EOS}
    info["loaded"] = {"pad_token": str(slow.pad_token), "pad_token_id": slow.pad_token_id,
                      "bos_token_id": slow.bos_token_id, "eos_token_id": slow.eos_token_id,
                      "unk_token_id": slow.unk_token_id, "model_max_length": slow.model_max_length,
                      "ftfy_used": slow.fix_text is not None}
    info["empty_prompt_max_length_77"] = {"input_ids": ids, "attention_mask": mask}
    samples = {}
    for p in SAMPLE_PROMPTS:
        s_ids = slow(p).input_ids
        f_ids = fast(p).input_ids
        checks[f"fast_tokenizer_matches_slow[{p!r}]"] = s_ids == f_ids
        samples[p] = {"input_ids": s_ids, "tokens": slow.convert_ids_to_tokens(s_ids)}
    info["samples_unpadded"] = samples
    checks["empty_prompt_is_bos_eos_then_pad_0"] = ids == [BOS, EOS] + [PAD] * (SEQ - 2)
    checks["fast_tokenizer_empty_prompt_matches"] = empty_prompt(fast)[0] == ids
    checks["special_tokens_map_pad_overrides_tokenizer_config_pad"] = slow.pad_token == "!"

    # Precedence with the newer format (added_tokens_decoder present): tokenizer_config.json wins.
    with tempfile.TemporaryDirectory() as tmp:
        decoder = {str(EOS): dict(special_token("<|endoftext|>"), special=True),
                   str(BOS): dict(special_token("<|startoftext|>"), special=True)}
        write_tokenizer(tmp, vocab, merges, pad_in_special_map="!", pad_in_config="<|endoftext|>",
                        added_tokens_decoder=decoder)
        newer = CLIPTokenizer.from_pretrained(tmp)
        info["precedence_with_added_tokens_decoder"] = {
            "special_tokens_map_pad": "!", "tokenizer_config_pad": "<|endoftext|>",
            "loaded_pad_token": str(newer.pad_token), "loaded_pad_token_id": newer.pad_token_id,
            "empty_prompt_input_ids": empty_prompt(newer)[0]}
        checks["with_added_tokens_decoder_tokenizer_config_pad_wins"] = newer.pad_token_id == EOS
    return vocab, info, checks


def real_tokenizer_ids():
    """The empty prompt under the real SD 2.x / SD 1.x special-token maps, with CLIP's real ids."""
    syms = base_symbols()
    fillers = [f"<|filler{i}|>" for i in range(49406 - len(syms))]
    vocab = {s: i for i, s in enumerate(syms + fillers + ["<|startoftext|>", "<|endoftext|>"])}
    out, checks = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, pad in (("sd2", "!"), ("sd1", "<|endoftext|>")):
            folder = os.path.join(tmp, label)
            write_tokenizer(folder, vocab, [], pad_in_special_map=pad, pad_in_config="<|endoftext|>")
            tok = CLIPTokenizer.from_pretrained(folder)
            ids, mask = empty_prompt(tok)
            out[label] = {"pad_token": str(tok.pad_token), "pad_token_id": tok.pad_token_id,
                          "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
                          "empty_prompt_input_ids": ids, "attention_mask": mask}
    checks["sd2_empty_prompt_is_49406_49407_then_0"] = out["sd2"]["empty_prompt_input_ids"] == \
        [49406, 49407] + [0] * (SEQ - 2)
    checks["sd1_empty_prompt_is_49406_then_49407"] = out["sd1"]["empty_prompt_input_ids"] == \
        [49406] + [49407] * (SEQ - 1)
    return out, checks


# ---------------------------------------------------------------------------------------------
# The tiny model: weights and reference tensors
# ---------------------------------------------------------------------------------------------

DESCRIPTIONS = {
    "input_ids": "row 0: '' as the tiny tokenizer pads it [998, 999, 0 x 75]; row 1: bos, seeded ids "
                 "in 1..997 at 1..36, eos at 37, pads 0 (int32 here, fed as int64)",
    "embeddings": "token_embedding(ids) + position_embedding(0..76) = hidden_states[0]",
    "layer_0_self_attn": "encoder.layers.0.self_attn output (out_proj, before the residual add)",
    "hidden_after_layer_0": "output of encoder.layers.0 = hidden_states[1]",
    "hidden_after_layer_1": "output of encoder.layers.1 = hidden_states[2] (before final_layer_norm)",
    "last_hidden_state": "final_layer_norm(hidden_after_layer_1) = text_encoder(ids)[0] (prompt_embeds)",
    "pooled_output": "pooler_output: last_hidden_state at the first eos position (positions 1 and 37)",
    "last_hidden_state_quick_gelu": "last_hidden_state with hidden_act quick_gelu (same weights)",
    "pooled_output_quick_gelu": "pooled_output with hidden_act quick_gelu (same weights)",
}


def make_input_ids():
    gen = torch.Generator("cpu").manual_seed(INPUT_SEED)
    ids = torch.full((2, SEQ), PAD, dtype=torch.int64)
    ids[:, 0] = BOS
    ids[0, 1] = EOS
    ids[1, 1:EOS_POS_ROW1] = torch.randint(1, 998, (EOS_POS_ROW1 - 1,), generator=gen, dtype=torch.int64)
    ids[1, EOS_POS_ROW1] = EOS
    return ids


def forward_all(model, ids, **kwargs):
    captured = {}
    hnd = model.text_model.encoder.layers[0].self_attn.register_forward_hook(
        lambda _m, _i, out: captured.__setitem__("attn", out[0].detach().clone()))
    try:
        with torch.no_grad():
            out = model(ids, output_hidden_states=True, **kwargs)
    finally:
        hnd.remove()
    hs = out.hidden_states
    return {"embeddings": hs[0], "layer_0_self_attn": captured["attn"], "hidden_after_layer_0": hs[1],
            "hidden_after_layer_1": hs[2], "last_hidden_state": out.last_hidden_state,
            "pooled_output": out.pooler_output}


def manual_forward(model, ids, dtype):
    """The maths of the header written out with plain torch ops, in `dtype`."""
    p = {k: v.detach().to(dtype) for k, v in model.state_dict().items()}
    cfg = model.config
    d_model, heads = cfg.hidden_size, cfg.num_attention_heads
    hd = d_model // heads
    b, t = ids.shape
    act = {"gelu": lambda x: 0.5 * x * (1.0 + torch.erf(x / np.sqrt(2.0))),
           "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x)}[cfg.hidden_act]
    pre = "text_model."
    x = p[pre + "embeddings.token_embedding.weight"][ids] + p[pre + "embeddings.position_embedding.weight"][:t]
    mask = torch.triu(torch.full((t, t), float("-inf"), dtype=dtype), diagonal=1)
    for n in range(cfg.num_hidden_layers):
        q = f"{pre}encoder.layers.{n}."
        y = F.layer_norm(x, (d_model,), p[q + "layer_norm1.weight"], p[q + "layer_norm1.bias"], cfg.layer_norm_eps)
        qs, ks, vs = (F.linear(y, p[f"{q}self_attn.{k}.weight"], p[f"{q}self_attn.{k}.bias"])
                      .view(b, t, heads, hd).transpose(1, 2) for k in ("q_proj", "k_proj", "v_proj"))
        probs = ((qs @ ks.transpose(-1, -2)) * hd ** -0.5 + mask).softmax(-1)
        a = (probs @ vs).transpose(1, 2).reshape(b, t, d_model)
        x = x + F.linear(a, p[q + "self_attn.out_proj.weight"], p[q + "self_attn.out_proj.bias"])
        y = F.layer_norm(x, (d_model,), p[q + "layer_norm2.weight"], p[q + "layer_norm2.bias"], cfg.layer_norm_eps)
        x = x + F.linear(act(F.linear(y, p[q + "mlp.fc1.weight"], p[q + "mlp.fc1.bias"])),
                         p[q + "mlp.fc2.weight"], p[q + "mlp.fc2.bias"])
    return F.layer_norm(x, (d_model,), p[pre + "final_layer_norm.weight"], p[pre + "final_layer_norm.bias"],
                        cfg.layer_norm_eps)


def attention_numerics(model, folder, ids, t):
    from torch.nn.attention import SDPBackend

    cfg = model.config
    hd = cfg.hidden_size // cfg.num_attention_heads
    probe = torch.zeros(2, cfg.num_attention_heads, SEQ, hd)
    mask = _create_4d_causal_attention_mask((2, SEQ), torch.float32, torch.device("cpu"))
    expected = torch.triu(torch.full((SEQ, SEQ), torch.finfo(torch.float32).min), diagonal=1)
    eager = CLIPTextModel.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        e = eager(ids).last_hidden_state
    m32 = manual_forward(model, ids, torch.float32)
    m64 = manual_forward(model, ids, torch.float64)
    return {
        "attn_implementation": cfg._attn_implementation,
        "attention_class": type(model.text_model.encoder.layers[0].self_attn).__name__,
        "heads": cfg.num_attention_heads,
        "head_dim": hd,
        "scale": model.text_model.encoder.layers[0].self_attn.scale,
        "sdpa_backend_chosen": SDPBackend(int(torch._fused_sdp_choice(probe, probe, probe, mask))).name,
        "causal_mask_value": float(torch.finfo(torch.float32).min),
        "causal_mask_is_triu_finfo_min": bool(torch.equal(mask[0, 0], expected) and mask.shape == (2, 1, SEQ, SEQ)),
        "max_abs_sdpa_vs_eager": max_abs(t["last_hidden_state"], e),
        "max_abs_sdpa_vs_plain_float32": max_abs(t["last_hidden_state"], m32),
        "max_abs_sdpa_vs_plain_float64": max_abs(t["last_hidden_state"], m64),
        "max_abs_plain_float32_vs_float64": max_abs(m32, m64),
    }


def float64_deviation(model, ids, t):
    m64 = copy.deepcopy(model).double()
    # transformers 4.49 builds the causal mask with torch.full(finfo(dtype).min) in the DEFAULT dtype,
    # which overflows for float64 unless the default dtype is float64 too.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        r = forward_all(m64, ids)
    finally:
        torch.set_default_dtype(previous)
    return {name: {"max_abs": max_abs(t[name], r[name]), "max_abs_over_max_ref": rel(t[name], r[name]),
                   "max_abs_ref": float(r[name].abs().max())}
            for name in ("embeddings", "hidden_after_layer_0", "hidden_after_layer_1", "last_hidden_state",
                         "pooled_output")}


def sensitivity(model, ids, t):
    """Max abs change of last_hidden_state under plausible porting mistakes (whole tensor, and split
    into the positions up to each row's eos and the pad positions after it)."""
    ref = t["last_hidden_state"]
    eos_pos = [1, EOS_POS_ROW1]
    before = torch.zeros(2, SEQ, 1, dtype=torch.bool)
    for r, p in enumerate(eos_pos):
        before[r, :p + 1] = True

    def report(out):
        diff = (out.double() - ref.double()).abs()
        return {"all": float(diff.max()), "up_to_eos": float(diff.masked_fill(~before, 0).max()),
                "pads_after_eos": float(diff.masked_fill(before, 0).max())}

    def run(m, input_ids=ids, **kw):
        with torch.no_grad():
            return m(input_ids, **kw).last_hidden_state

    def variant(**overrides):
        m = build_model(TINY_CONFIG, **overrides)
        m.load_state_dict(model.state_dict())
        return m.eval()

    out = {}
    padding_mask = (torch.arange(SEQ)[None, :] <= torch.tensor(eos_pos)[:, None]).long()
    out["padding attention_mask passed (use_attention_mask true)"] = report(run(model, attention_mask=padding_mask))
    sd1_ids = ids.clone()
    sd1_ids[ids == PAD] = EOS
    out["pads = eos id (SD 1.x tokenizer) instead of 0 (SD 2.x)"] = report(run(model, sd1_ids))
    original = modeling_clip._create_4d_causal_attention_mask
    modeling_clip._create_4d_causal_attention_mask = lambda *a, **k: None
    try:
        out["no causal mask"] = report(run(model))
    finally:
        modeling_clip._create_4d_causal_attention_mask = original
    out["quick_gelu instead of gelu"] = report(t["last_hidden_state_quick_gelu"])
    out["gelu tanh approximation (gelu_pytorch_tanh) instead of erf gelu"] = report(
        run(variant(hidden_act="gelu_pytorch_tanh")))
    out["layer_norm_eps 1e-6 instead of 1e-5"] = report(run(variant(layer_norm_eps=1e-6)))
    out["no final_layer_norm (hidden_states[-1] used)"] = report(t["hidden_after_layer_1"])

    m = copy.deepcopy(model)
    for layer in m.text_model.encoder.layers:
        layer.self_attn.scale = m.config.hidden_size ** -0.5
    out["attention scale 1/sqrt(hidden_size) instead of 1/sqrt(head_dim)"] = report(run(m))

    m = copy.deepcopy(model)
    a = m.text_model.encoder.layers[0].self_attn
    with torch.no_grad():
        for leaf in ("weight", "bias"):
            q, k = getattr(a.q_proj, leaf), getattr(a.k_proj, leaf)
            tmp = q.clone()
            q.copy_(k)
            k.copy_(tmp)
    out["q_proj and k_proj swapped in layer 0"] = report(run(m))

    # Heads split as [.., head_dim, heads] instead of [.., heads, head_dim]: equivalent to permuting
    # the q/k/v output channels and out_proj's input channels by the transposition below.
    m = copy.deepcopy(model)
    hd, nh = m.config.hidden_size // m.config.num_attention_heads, m.config.num_attention_heads
    perm = torch.arange(nh * hd).view(hd, nh).t().reshape(-1)
    with torch.no_grad():
        for layer in m.text_model.encoder.layers:
            sa = layer.self_attn
            for proj in (sa.q_proj, sa.k_proj, sa.v_proj):
                proj.weight.copy_(proj.weight[perm].clone())
                proj.bias.copy_(proj.bias[perm].clone())
            sa.out_proj.weight.copy_(sa.out_proj.weight[:, perm].clone())
    out["heads split interleaved (channel c -> head c % H) instead of contiguous"] = report(run(m))

    m = copy.deepcopy(model)
    with torch.no_grad():
        m.text_model.embeddings.position_embedding.weight.zero_()
    out["position embedding left out"] = report(run(m))
    return out


def pipeline_encode_prompt(model, tokenizer, use_attention_mask=None):
    """diffusers' StableDiffusionInstructPix2PixPipeline._encode_prompt, run unmodified on an instance
    that holds only the tokenizer and text encoder (the method uses nothing else)."""
    pipe = object.__new__(StableDiffusionInstructPix2PixPipeline)
    pipe.__dict__.update(tokenizer=tokenizer, text_encoder=model)
    if use_attention_mask is not None:
        model.config.use_attention_mask = use_attention_mask
    try:
        with torch.no_grad():
            cfg_off = pipe._encode_prompt("", torch.device("cpu"), 1, False)
            cfg_on = pipe._encode_prompt("", torch.device("cpu"), 1, True)
    finally:
        if use_attention_mask is not None:
            del model.config.use_attention_mask
    return cfg_off, cfg_on


def write_tiny(out_dir):
    torch.manual_seed(0)
    model = build_model(TINY_CONFIG)
    randomize(model, WEIGHT_SEED)
    model.eval()

    tiny_dir = os.path.join(out_dir, "tiny")
    if os.path.isdir(tiny_dir):
        shutil.rmtree(tiny_dir)
    model.save_pretrained(tiny_dir, safe_serialization=True)
    names = sorted(os.listdir(tiny_dir))
    assert names == ["config.json", "model.safetensors"], names
    os.chmod(os.path.join(tiny_dir, "model.safetensors"), 0o644)

    tok_dir = os.path.join(tiny_dir, "tokenizer")
    vocab, tok_info, checks = write_tiny_tokenizer(tok_dir)
    real_ids, real_checks = real_tokenizer_ids()
    checks.update(real_checks)
    tokenizer = CLIPTokenizer.from_pretrained(tok_dir)

    sd = model.state_dict()
    st = load_file(os.path.join(tiny_dir, "model.safetensors"))
    checks["safetensors_equals_state_dict"] = sorted(st) == sorted(sd) and all(
        st[k].dtype == torch.float32 and torch.equal(st[k], sd[k]) for k in sd)
    checks["position_ids_not_saved"] = "text_model.embeddings.position_ids" not in st

    ids = make_input_ids()
    checks["input_row_0_equals_tokenizer_empty_prompt"] = ids[0].tolist() == empty_prompt(tokenizer)[0]
    t = forward_all(model, ids)
    t["input_ids"] = ids

    # quick_gelu: the same weights loaded with the other activation.
    quick = CLIPTextModel.from_pretrained(tiny_dir, hidden_act="quick_gelu").eval()
    q = forward_all(quick, ids)
    quick_built = build_model(TINY_CONFIG, hidden_act="quick_gelu")
    quick_built.load_state_dict(sd)
    checks["quick_gelu_from_pretrained_equals_config_built"] = bool(torch.equal(
        forward_all(quick_built.eval(), ids)["last_hidden_state"], q["last_hidden_state"]))
    for name in ("last_hidden_state", "pooled_output"):
        t[f"{name}_quick_gelu"] = q[name]
    checks["quick_gelu_embeddings_identical"] = bool(torch.equal(q["embeddings"], t["embeddings"]))

    with torch.no_grad():
        plain = model(ids)
    checks["forward_without_hidden_states_identical"] = bool(
        torch.equal(plain.last_hidden_state, t["last_hidden_state"]))
    checks["last_hidden_state_is_final_layer_norm_of_last_layer"] = bool(torch.equal(
        model.text_model.final_layer_norm(t["hidden_after_layer_1"]).detach(), t["last_hidden_state"]))
    lhs = t["last_hidden_state"]
    first_eos = (ids == EOS).int().argmax(-1)
    legacy = ids.to(torch.int).argmax(-1)
    checks["pooled_is_first_eos_position"] = first_eos.tolist() == [1, EOS_POS_ROW1] and bool(
        torch.equal(t["pooled_output"], lhs[torch.arange(2), first_eos]))
    checks["legacy_argmax_rule_gives_same_positions"] = legacy.tolist() == first_eos.tolist()

    # The folder loads back and reproduces the outputs bit for bit (also with the legacy buffer).
    loaded = CLIPTextModel.from_pretrained(tiny_dir).eval()
    lt = forward_all(loaded, ids)
    checks["from_pretrained_reproduces_outputs"] = all(torch.equal(lt[k], t[k]) for k in lt)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy(os.path.join(tiny_dir, "config.json"), tmp)
        legacy_sd = {k: v.clone() for k, v in sd.items()}
        legacy_sd["text_model.embeddings.position_ids"] = torch.arange(SEQ - 1, -1, -1).view(1, SEQ)
        save_file(legacy_sd, os.path.join(tmp, "model.safetensors"), metadata={"format": "pt"})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            old, info = CLIPTextModel.from_pretrained(tmp, output_loading_info=True)
        with torch.no_grad():
            old_out = old.eval()(ids).last_hidden_state
        checks["stored_position_ids_dropped_silently"] = not info["unexpected_keys"] and not info["missing_keys"]
        checks["stored_position_ids_ignored"] = bool(torch.equal(old_out, t["last_hidden_state"]))

    # What the SD 2.x / delight pipeline computes for "" is row 0.
    off, on = pipeline_encode_prompt(model, tokenizer)
    checks["pipeline_encode_prompt_empty_equals_row_0"] = bool(torch.equal(off[0], lhs[0]))
    checks["pipeline_encode_prompt_cfg_stacks_3_equal_rows"] = on.shape == (3, SEQ, 32) and all(
        torch.equal(on[i], lhs[0]) for i in range(3))
    off_m, _ = pipeline_encode_prompt(model, tokenizer, use_attention_mask=True)
    use_mask_change = max_abs(off_m[0], lhs[0])
    checks["use_attention_mask_true_changes_pad_positions"] = use_mask_change > 0 and bool(
        torch.equal(off_m[0, :2], lhs[0, :2]))

    attention = attention_numerics(model, tiny_dir, ids, t)
    deviation = float64_deviation(model, ids, t)
    sens = sensitivity(model, ids, t)

    io_dir = os.path.join(out_dir, "tiny_io")
    if os.path.isdir(io_dir):
        shutil.rmtree(io_dir)
    os.makedirs(io_dir)
    entries = {}
    for name in DESCRIPTIONS:
        ten = t[name].detach().contiguous()
        if name == "input_ids":
            arr, dtype = ten.numpy().astype("<i4"), "int32"
        else:
            arr, dtype = ten.numpy().astype("<f4"), "float32"
        with open(os.path.join(io_dir, f"{name}.bin"), "wb") as f:
            f.write(arr.tobytes(order="C"))
        entries[name] = {"file": f"tiny_io/{name}.bin", "dtype": dtype, "shape": list(arr.shape),
                         "description": DESCRIPTIONS[name]}
    assert set(entries) == set(t), set(t) ^ set(entries)

    failed = [k for k, v in checks.items() if v is not True]
    assert not failed, failed

    manifest = {
        "generator": "pipeline/tests/reference/clip_text_fixtures.py",
        "transformers_version": transformers.__version__,
        "diffusers_version": diffusers.__version__,
        "torch_version": torch.__version__.split("+")[0],
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "num_threads": torch.get_num_threads(),
        "weights": "tiny/model.safetensors (CLIPTextModel.save_pretrained), config tiny/config.json",
        "config": dict(TINY_CONFIG),
        "quick_gelu_variant": {"config_override": {"hidden_act": "quick_gelu"},
                               "weights": "tiny/model.safetensors (the same file)",
                               "formula": "x * sigmoid(1.702 * x)"},
        "seeds": {"init_manual_seed": 0, "weights": WEIGHT_SEED, "input": INPUT_SEED},
        "weight_init": {
            "order": "parameters in sorted name order, one torch.randn draw each from one CPU generator",
            "embedding_weight": "randn",
            "linear_weight": "randn / sqrt(in_features)",
            "linear_bias": "0.1 * randn",
            "layer_norm_weight": "1 + 0.1 * randn",
            "layer_norm_bias": "0.1 * randn",
        },
        "inputs": {"bos": BOS, "eos": EOS, "pad": PAD, "eos_positions": [1, EOS_POS_ROW1],
                   "row_1_ids": "torch.randint(1, 998, (36,), generator=Generator().manual_seed(INPUT_SEED))",
                   "attention_mask_passed": None},
        "pooled_output_rule": {
            "this_config": "eos_token_id 999 != 2: first position where input_ids == eos_token_id",
            "legacy_eos_token_id_2": "argmax(input_ids) (SD 2.x's and openai CLIP's published configs)",
            "positions": first_eos.tolist(),
        },
        "layout": "raw little-endian, row-major (C order); float tensors [batch, token, channel]",
        "tensors": entries,
        "tokenizer": {
            "folder": "tiny/tokenizer",
            **tok_info,
            "real_tokenizers_derived": real_ids,
        },
        "pipeline": {
            "call": "StableDiffusionInstructPix2PixPipeline._encode_prompt (diffusers 0.32.2), unmodified",
            "empty_prompt_embeds": "== last_hidden_state[0] (checked)",
            "use_attention_mask_true_max_abs_change": use_mask_change,
        },
        "attention": attention,
        "float64_deviation": deviation,
        "sensitivity_max_abs_change": sens,
        "checks": checks,
    }
    write_json(os.path.join(out_dir, "tiny_io.json"), manifest)
    return model


def write_key_manifest(out_dir):
    sd2 = key_manifest(SD2_CONFIG)
    sd1 = key_manifest(SD1_CONFIG, with_keys=False)
    tiny = key_manifest(TINY_CONFIG)
    sd2 = {
        "source": "stabilityai/stable-diffusion-2-1 text_encoder/config.json, reconstructed (not downloaded)",
        "assumed_config": SD2_CONFIG,
        "assumptions": [
            "OpenCLIP ViT-H/14 text tower without its last layer (SD 2.x uses the penultimate layer's "
            "output, then ln_final = final_layer_norm)",
            "bos_token_id 0 / eos_token_id 2 / pad_token_id 1 are the transformers < 4.31 defaults the "
            "published config carries; they only select the pooled_output rule (argmax of input_ids)",
            "attention_dropout / dropout 0 and initializer_* are the defaults and do not change the keys",
            "text_model.embeddings.position_ids [1, 77] int64 is present in the published (transformers "
            "4.25) weight files; transformers 4.49 does not save it and drops it on load",
        ],
        **sd2,
    }
    sd1 = {"source": "openai/clip-vit-large-patch14 text_config (SD 1.x text_encoder), reconstructed",
           "assumed_config": SD1_CONFIG, **sd1}
    tiny = {"source": "TINY_CONFIG of the generator (tiny/config.json)", **tiny}
    write_json(os.path.join(out_dir, "sd2_text_manifest.json"), {
        "generator": "pipeline/tests/reference/clip_text_fixtures.py",
        "transformers_version": transformers.__version__,
        "built_on": "torch meta device",
        "legacy_keys": {"text_model.embeddings.position_ids": {
            "shape": [1, 77], "dtype": "int64", "value": "arange(77)",
            "written_by_save_pretrained": False, "on_load": "dropped silently, recomputed as arange"}},
        "sd2": sd2,
        "sd1": sd1,
        "tiny": tiny,
    })
    return sd2, tiny


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    transformers.logging.set_verbosity_error()
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    write_tiny(out_dir)
    sd2, tiny = write_key_manifest(out_dir)
    print(f"wrote {out_dir}: sd2 {sd2['num_tensors']} tensors / {sd2['param_count']} params, "
          f"tiny {tiny['num_tensors']} tensors / {tiny['param_count']} params")


if __name__ == "__main__":
    main()
