"""Parity fixtures for the burn port of U^2-Net (salient-object segmentation) as rembg 2.x runs it.

Environment (a venv outside the repo; GitHub is unreachable here, PyPI is not):

    python3 -m venv /root/.cache/orfeas/u2net-venv
    /root/.cache/orfeas/u2net-venv/bin/pip install torch==2.15.0 onnx==1.23.2 onnxruntime==1.32.0 \
        numpy==2.4.6 pillow==13.0.0 scikit-image==0.26.0 safetensors==0.8.0 \
        pymatting==1.1.16 pooch==1.9.0 jsonschema==4.26.0 scipy==1.17.1 tqdm==4.70.1
    /root/.cache/orfeas/u2net-venv/bin/pip install --no-deps rembg==2.0.86 backgroundremover==0.4.5
    /root/.cache/orfeas/u2net-venv/bin/python pipeline/tests/reference/u2net_fixtures.py \
        [--full-onnx /root/.cache/orfeas/u2net/u2net.onnx]

(`torch` is the plain PyPI wheel; pymatting/pooch/jsonschema/scipy/tqdm are the rembg 2.0.86
runtime dependencies, installed so that `import rembg` works unmodified.)

No released weights can be downloaded here, so both models are filled with the deterministic
formula "orfeas-u2net-seeded-v1" (see `formula_values` and fixtures/u2net/formula.json).
conv_weight_gain is 1.9 rather than the initial sqrt(3): with sqrt(3) U2NETP's pre-sigmoid d0 on
the test photos only spans about [-1, 1] (sigmoid 0.27..0.73); the network's output scale grows
very fast with the gain (2.5 gives |d0| ~ 900, saturated), and 1.9 gives d0 in about [-3, 3]
(U2NETP) / [-6, 3] (U2NET), i.e. sigmoid outputs over most of (0, 1), differing per image.

Model definition
----------------
`backgroundremover/u2net/u2net.py` from the `backgroundremover` 0.4.5 wheel, loaded from its file
path (its package __init__ pulls in heavy dependencies; the module itself only imports torchvision
for nothing, which is stubbed). Checked to be the original U^2-Net code: REBNCONV = Conv2d(3x3,
padding=d, dilation=d, bias) + BatchNorm2d + ReLU; RSU7/RSU6/RSU5/RSU4 with MaxPool2d(2, 2,
ceil_mode=True) and `_upsample_like` = F.interpolate(bilinear, align_corners=False); RSU4F with
dilations 1,2,4,8 / 4,2,1; U2NET (stage channels 64/128/256/512/512/512, mid 32/32/64/128/256/256,
decoder mids 256/128/64/32/16) and U2NETP (all 64, mid 16); side1..side6 = 3x3 convs to 1 channel,
bilinear-upsampled to side1's size; outconv = 1x1 conv over the 6 side maps; forward returns
sigmoid(d0), sigmoid(d1) ... sigmoid(d6). Parameter counts: U2NET 44,009,869, U2NETP 1,131,181.

What rembg 2.0.86 does (read from rembg/sessions/base.py, u2net.py, u2net_custom.py, bg.py)
-----------------------------------------------------------------------------------------
* `BaseSession.normalize(img, mean=(0.485,0.456,0.406), std=(0.229,0.224,0.225), size=(320,320))`:
  `img.convert("RGB").resize((320, 320), Image.Resampling.LANCZOS)` (aspect ratio NOT kept; RGBA
  simply drops alpha -- no compositing; L/P are expanded to RGB by PIL), `np.array` (uint8 HWC),
  `/ max(np.max(a), 1e-6)` -- ONE global max over all three channels, in float64 -- then per channel
  `(x - mean[c]) / std[c]` in float64, transposed to CHW, batch axis added, cast to float32 last.
  The feed name is `inner_session.get_inputs()[0].name`.
* `U2netCustomSession.predict` (the `u2net_custom` session, `model_path=` required):
  `ort_outs = inner_session.run(None, feed)`; `pred = ort_outs[0][:, 0, :, :]` (the FIRST graph
  output = sigmoid(d0)); `ma, mi = np.max(pred), np.min(pred)` (float32); `pred = (pred - mi) / (ma -
  mi)` in float32 (no epsilon: a flat prediction gives NaN); `np.squeeze`; `Image.fromarray((pred *
  255).astype("uint8"), mode="L")` (float32 multiply, truncation toward zero, no rounding);
  `mask.resize(img.size, Image.Resampling.LANCZOS)`. Returns `[mask]`.
* `U2netSession.predict` (the stock `u2net` session) is identical except it clips:
  `(pred.clip(0, 1) * 255).astype("uint8")`. After min-max the values are already in [0, 1], so
  the masks are the same (checked: for U2NET the generator also runs the stock `u2net` session on
  the same file and asserts identical masks). The other difference is model location: `u2net` downloads u2net.onnx
  (md5 60024c5c889badc19c04ad937298a77b) into `$U2NET_HOME` or `~/.rembg/models/u2net/`;
  `u2net_custom` uses `model_path`, which 2.0.86 requires to lie under the rembg home (`$U2NET_HOME`
  if set, else `$REMBG_HOME`, else `$XDG_DATA_HOME/rembg` or `~/.rembg`) or the legacy `~/.u2net`
  -- this script sets `U2NET_HOME` to the model's folder for that reason.
* Session options: default `ort.SessionOptions()` (graph optimisations enabled), CPU provider here;
  `OMP_NUM_THREADS`, when set, sets intra/inter op threads.
* `remove()` (bg.py): bytes are opened with PIL, then `ImageOps.exif_transpose(img)` is applied
  BEFORE predict (so the mask is for the orientation-corrected image), then `session.predict`.
  Default session in 2.0.86 is "bria-rmbg", not u2net. With `only_mask=True` the mask is returned
  as is; `post_process_mask` (off by default) applies opening + gaussian blur + threshold; the
  default cutout (`naive_cutout`) composites the image over transparent with the mask as alpha.
  The fixtures below call `session.predict` directly (no EXIF in our PNGs, so identical).

Outputs (pipeline/tests/fixtures/u2net/)
----------------------------------------
* `formula.json`: the weight formula's constants and three spot values of `u`.
* `u2netp.onnx`: U2NETP with formula weights, exported by the legacy TorchScript exporter
  (dynamo=False, opset 11, default constant folding, default names, fixed 1x3x320x320 input), like
  the files rembg users have. `u2netp.pth`: `torch.save(state_dict)` of the same model.
  The full-size U2NET export (~176 MB) goes to `--full-onnx` and is not committed.
* `images/NN_name.png`: six small test images (see `make_images`).
* `masks/<kind>/<image stem>.png`: `session.predict(img)[0]` from rembg's `u2net_custom` session
  on that kind's ONNX export (8-bit L, image size).
* `debug/u2netp_01.safetensors`, first image, U2NETP: `input` [1,3,320,320] f32 (rembg's
  normalised feed), `d0` [1,1,320,320] f32 (ort's first output, sigmoid(d0)), `pred` [320,320] f32
  (after min-max), `mask320` [320,320] u8 (x255 + uint8 cast, before the final resize), `resized`
  [320,320,3] u8 (the image after `convert("RGB").resize((320,320), LANCZOS)`).
* `manifests/<kind>.json`: ordered [state_dict key, shape] (num_batches_tracked skipped);
  `manifests/<kind>.onnx.json`: summary of the exported graph (Conv nodes with their initializers
  and attributes, whether BatchNormalization survived, Resize / MaxPool attributes, inputs/outputs).
"""
import argparse
import importlib.util
import json
import math
import os
import sys
import types

import numpy as np
import torch
from PIL import Image
from safetensors.numpy import save_file

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
OUT = os.path.join(REPO, "pipeline", "tests", "fixtures", "u2net")
DEFAULT_FULL_ONNX = "/root/.cache/orfeas/u2net/u2net.onnx"

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

FORMULA = {
    "name": "orfeas-u2net-seeded-v1",
    "conv_weight_gain": 1.9,
    "conv_bias": 0.1,
    "bn_weight": [1.0, 0.5],
    "bn_bias": 0.1,
    "bn_mean": 0.1,
    "bn_var": [1.0, 0.5],
}

# ---------------------------------------------------------------------------------------------
# Model definition (backgroundremover's copy of the original U^2-Net code)
# ---------------------------------------------------------------------------------------------


def load_u2net_module():
    import backgroundremover
    path = os.path.join(os.path.dirname(backgroundremover.__file__), "u2net", "u2net.py")
    if "torchvision" not in sys.modules:
        try:
            import torchvision  # noqa: F401
        except ImportError:  # u2net.py imports `models` but never uses it
            stub = types.ModuleType("torchvision")
            stub.models = types.ModuleType("torchvision.models")
            sys.modules["torchvision"] = stub
            sys.modules["torchvision.models"] = stub.models
    spec = importlib.util.spec_from_file_location("bgr_u2net", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, path


def build(kind):
    mod, _ = load_u2net_module()
    return {"u2net": mod.U2NET, "u2netp": mod.U2NETP}[kind](3, 1)


# ---------------------------------------------------------------------------------------------
# Weight formula "orfeas-u2net-seeded-v1"
# ---------------------------------------------------------------------------------------------

M64 = 0xFFFFFFFFFFFFFFFF


def fnv1a64(name):
    h = 0xCBF29CE484222325
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & M64
    return h


def u_scalar(name, i):
    """Pure-Python-int reference of the generator (spot checks)."""
    z = (fnv1a64(name) + (i + 1) * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    z = z ^ (z >> 31)
    return (z >> 11) * 2.0 ** -53


def u_vector(name, n):
    with np.errstate(over="ignore"):
        i = np.arange(1, n + 1, dtype=np.uint64)
        z = np.uint64(fnv1a64(name)) + i * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def formula_values(name, shape, f=FORMULA):
    n = int(np.prod(shape)) if len(shape) else 1
    s = 2.0 * u_vector(name, n) - 1.0
    last = name.rsplit(".", 1)[-1]
    if ".bn_s1." in name:
        if last == "weight":
            v = f["bn_weight"][0] + f["bn_weight"][1] * s
        elif last == "bias":
            v = f["bn_bias"] * s
        elif last == "running_mean":
            v = f["bn_mean"] * s
        elif last == "running_var":
            v = f["bn_var"][0] + f["bn_var"][1] * s
        else:
            raise ValueError(name)
    elif last == "weight":
        assert len(shape) == 4, name
        v = s * f["conv_weight_gain"] / math.sqrt(shape[1] * shape[2] * shape[3])
    elif last == "bias":
        v = f["conv_bias"] * s
    else:
        raise ValueError(name)
    return v.astype(np.float32).reshape(shape)


def fill(model, f=FORMULA):
    sd = model.state_dict()
    new = {}
    for k, t in sd.items():
        if k.endswith("num_batches_tracked"):
            new[k] = t
            continue
        new[k] = torch.from_numpy(formula_values(k, tuple(t.shape), f))
    model.load_state_dict(new)
    return model.eval()


SPOTS = [("stage1.rebnconvin.conv_s1.weight", 0), ("stage5d.rebnconv3d.bn_s1.running_var", 17),
         ("outconv.weight", 5)]


def check_formula():
    for name in [s[0] for s in SPOTS] + ["side1.bias", "stage6.rebnconv4.bn_s1.bias"]:
        vec = u_vector(name, 64)
        for i in (0, 1, 7, 31, 63):
            assert vec[i] == u_scalar(name, i), (name, i, vec[i], u_scalar(name, i))
    return [[name, i, u_scalar(name, i)] for name, i in SPOTS]


# ---------------------------------------------------------------------------------------------
# Test images
# ---------------------------------------------------------------------------------------------


def make_images(folder):
    """Six small PNGs (PNG only: JPEG decoders differ by a few LSB between libjpeg and Rust)."""
    from skimage import data
    os.makedirs(folder, exist_ok=True)
    for old in os.listdir(folder):
        os.remove(os.path.join(folder, old))

    def down(arr, size):
        return Image.fromarray(arr).resize(size, Image.Resampling.LANCZOS)

    imgs = {
        "01_chelsea": down(data.chelsea(), (241, 160)),     # 451x300 -> landscape, odd width
        "02_coffee": down(data.coffee(), (200, 133)),       # 600x400 -> landscape, odd height
        "03_astronaut": down(data.astronaut(), (161, 161)),  # square, odd
        "04_rocket": down(data.rocket(), (120, 180)),       # 427x640 -> portrait
    }
    # 05: synthetic, odd size 97x131 (portrait), 8-bit greyscale ("L") so the L->RGB path is covered.
    yy, xx = np.mgrid[0:131, 0:97].astype(np.float64)
    g = 40 + 60 * (xx / 96) + 30 * np.sin(yy / 9.0)
    g[((xx - 48) / 30) ** 2 + ((yy - 70) / 40) ** 2 < 1] = 225
    g[(xx > 20) & (xx < 34) & (yy > 10) & (yy < 40)] = 10
    imgs["05_synthetic"] = Image.fromarray(np.clip(g, 0, 255).astype(np.uint8), mode="L")
    # 06: RGBA with real transparency: skimage's logo (stored RGBA but fully opaque) cropped to a
    # landscape box, then given a soft elliptical alpha (0 outside, 255 inside, a ramp between).
    # The RGB under transparent pixels is kept (the logo), so a port that composited over a
    # background instead of dropping alpha like PIL's convert("RGB") would get a different mask.
    logo = Image.fromarray(data.logo()).convert("RGB")
    logo = np.asarray(logo.crop((0, 60, 500, 440)).resize((150, 114), Image.Resampling.LANCZOS))
    yy, xx = np.mgrid[0:114, 0:150].astype(np.float64)
    r = np.sqrt(((xx - 74.5) / 70) ** 2 + ((yy - 56.5) / 50) ** 2)
    alpha = np.clip((1.1 - r) / 0.25, 0, 1) * 255
    rgba = np.dstack([logo, np.round(alpha).astype(np.uint8)])
    imgs["06_logo_rgba"] = Image.fromarray(rgba, mode="RGBA")
    paths = []
    for stem, im in imgs.items():
        p = os.path.join(folder, stem + ".png")
        im.save(p, optimize=True)
        paths.append(p)
    return paths


# ---------------------------------------------------------------------------------------------
# Export and graph summary
# ---------------------------------------------------------------------------------------------


def export_onnx(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    x = torch.zeros(1, 3, 320, 320)
    kwargs = dict(opset_version=11)
    if "dynamo" in torch.onnx.export.__code__.co_varnames:
        kwargs["dynamo"] = False
    with torch.no_grad():
        torch.onnx.export(model, (x,), path, **kwargs)


def _attrs(node):
    import onnx
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _jsonable(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def onnx_summary(path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    g = m.graph
    inits = {i.name: list(i.dims) for i in g.initializer}
    consts = {}
    for n in g.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(_attrs(n)["value"]).tolist()

    def shape_of(vi):
        return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in vi.type.tensor_type.shape.dim]

    producers = {o: n for n in g.node for o in n.output}
    convs, resizes, pools, ops = [], [], [], {}
    for n in g.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
        a = {k: _jsonable(v) for k, v in _attrs(n).items()}
        if n.op_type == "Conv":
            w = n.input[1]
            b = n.input[2] if len(n.input) > 2 and n.input[2] else None
            convs.append([n.name, w, inits.get(w), b, a.get("dilations"), a.get("pads"), a.get("strides")])
        elif n.op_type == "Resize":
            extra = {}
            for idx, label in ((1, "roi"), (2, "scales"), (3, "sizes")):
                if len(n.input) > idx and n.input[idx]:
                    src = n.input[idx]
                    if src in consts:
                        extra[label] = consts[src]
                    elif src in inits:
                        extra[label] = numpy_helper.to_array(
                            next(i for i in g.initializer if i.name == src)).tolist()
                    else:
                        extra[label] = "computed:" + src
                        # sizes = Concat(Slice(Shape(x), 0, 2), const [H, W]): record the const
                        prod = producers.get(src)
                        if prod is not None and prod.op_type == "Concat":
                            for ci in prod.input:
                                if ci in consts:
                                    extra["sizes_hw"] = consts[ci]
            resizes.append({"name": n.name, **a, **extra})
        elif n.op_type == "MaxPool":
            pools.append({"name": n.name, **a})
    opset = [{"domain": o.domain, "version": o.version} for o in m.opset_import]
    return {
        "producer": f"{m.producer_name} {m.producer_version}",
        "ir_version": m.ir_version,
        "opset_import": opset,
        "inputs": [[i.name, shape_of(i)] for i in g.input if i.name not in inits],
        "outputs": [[o.name, shape_of(o)] for o in g.output],
        "num_outputs": len(g.output),
        "op_counts": dict(sorted(ops.items())),
        "batchnorm_nodes_remaining": ops.get("BatchNormalization", 0),
        "bn_fused_into_conv": ops.get("BatchNormalization", 0) == 0,
        "num_initializers": len(inits),
        "conv_columns": ["node", "weight", "weight_shape", "bias", "dilations", "pads", "strides"],
        "convs": convs,
        "resizes": resizes,
        "maxpools": pools,
    }


def write_compact_json(path, obj, list_keys=()):
    """JSON with one row per line for the long lists (readable diffs)."""
    def dump(v):
        return json.dumps(v, separators=(", ", ": "))
    lines = []
    for k, v in obj.items():
        if k in list_keys and isinstance(v, list):
            rows = ",\n    ".join(dump(r) for r in v)
            lines.append(f"  {json.dumps(k)}: [\n    {rows}\n  ]")
        else:
            lines.append(f"  {json.dumps(k)}: {dump(v)}")
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


def write_manifest(path, model):
    rows = [[k, list(v.shape)] for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    with open(path, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(r, separators=(", ", ": ")) for r in rows) + "\n]\n")
    return rows


# ---------------------------------------------------------------------------------------------
# rembg runs
# ---------------------------------------------------------------------------------------------


def rembg_session(onnx_path):
    # u2net_custom in 2.0.86 insists model_path lies under the rembg home; point it there.
    os.environ["U2NET_HOME"] = os.path.dirname(os.path.abspath(onnx_path))
    from rembg import new_session
    return new_session("u2net_custom", model_path=onnx_path, providers=["CPUExecutionProvider"])


def run_kind(kind, images, onnx_path, debug=False):
    model = fill(build(kind))
    nparams = sum(p.numel() for p in model.parameters())
    os.makedirs(os.path.join(OUT, "manifests"), exist_ok=True)
    write_manifest(os.path.join(OUT, "manifests", f"{kind}.json"), model)
    if kind == "u2netp":
        torch.save(model.state_dict(), os.path.join(OUT, "u2netp.pth"))
    export_onnx(model, onnx_path)
    summary = onnx_summary(onnx_path)
    write_compact_json(os.path.join(OUT, "manifests", f"{kind}.onnx.json"), summary,
                       list_keys=("convs", "resizes", "maxpools", "opset_import"))

    logits = {}
    model.outconv.register_forward_hook(lambda m, i, o: logits.__setitem__("d0", o.detach()))

    session = rembg_session(onnx_path)
    stock = None
    if kind == "u2net" and os.path.basename(onnx_path) == "u2net.onnx":
        # With U2NET_HOME pointing at the folder, the stock `u2net` session finds <home>/u2net.onnx
        # (legacy layout) and downloads nothing: check it gives the same masks as u2net_custom.
        from rembg import new_session
        stock = new_session("u2net", providers=["CPUExecutionProvider"])
        assert os.path.samefile(stock.inner_session._model_path, onnx_path)
    in_name = session.inner_session.get_inputs()[0].name
    mask_dir = os.path.join(OUT, "masks", kind)
    os.makedirs(mask_dir, exist_ok=True)
    max_diff, stats = 0.0, []
    for idx, path in enumerate(images):
        img = Image.open(path)
        img.load()
        mask = session.predict(img)[0]
        assert mask.mode == "L" and mask.size == img.size
        stem = os.path.splitext(os.path.basename(path))[0]
        mask.save(os.path.join(mask_dir, stem + ".png"))
        if stock is not None:
            assert np.array_equal(np.asarray(stock.predict(img)[0]), np.asarray(mask)), path

        # Recompute what predict did, step by step, and check it against the saved mask.
        feed = session.normalize(img, MEAN, STD, (320, 320))
        x = feed[in_name]
        d0 = session.inner_session.run(None, feed)[0]
        pred = d0[:, 0, :, :]
        ma, mi = np.max(pred), np.min(pred)
        pred = np.squeeze((pred - mi) / (ma - mi))
        mask320 = (pred * 255).astype("uint8")
        again = Image.fromarray(mask320, mode="L").resize(img.size, Image.Resampling.LANCZOS)
        assert np.array_equal(np.asarray(again), np.asarray(mask)), path

        with torch.no_grad():
            t0 = model(torch.from_numpy(x))[0].numpy()
        diff = float(np.max(np.abs(t0 - d0)))
        max_diff = max(max_diff, diff)
        lg = logits["d0"].numpy()
        m = np.asarray(mask)
        stats.append((stem, float(lg.min()), float(lg.max()), float(lg.mean()), float(lg.std()),
                      float(d0.min()), float(d0.max()), float(m.mean()), float(m.std())))
        if debug and idx == 0:
            resized = np.asarray(img.convert("RGB").resize((320, 320), Image.Resampling.LANCZOS))
            os.makedirs(os.path.join(OUT, "debug"), exist_ok=True)
            save_file({
                "input": np.ascontiguousarray(x, dtype=np.float32),
                "d0": np.ascontiguousarray(d0, dtype=np.float32),
                "pred": np.ascontiguousarray(pred, dtype=np.float32),
                "mask320": np.ascontiguousarray(mask320, dtype=np.uint8),
                "resized": np.ascontiguousarray(resized, dtype=np.uint8),
            }, os.path.join(OUT, "debug", f"{kind}_01.safetensors"))

    print(f"{kind}: {nparams:,} parameters; onnx input {summary['inputs']}, "
          f"{summary['num_outputs']} outputs; {len(summary['convs'])} Conv, "
          f"{summary['batchnorm_nodes_remaining']} BatchNormalization; torch vs ort max |d0 diff| {max_diff:.3e}")
    print("  image            logit min   max    mean   std |  sig min  max  | mask mean  std")
    for s in stats:
        print(f"  {s[0]:15s} {s[1]:7.3f} {s[2]:6.3f} {s[3]:6.3f} {s[4]:6.3f} | {s[5]:.3f} {s[6]:.3f} | "
              f"{s[7]:6.1f} {s[8]:6.1f}")
    return nparams, max_diff


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--full-onnx", default=DEFAULT_FULL_ONNX)
    ap.add_argument("--skip-full", action="store_true", help="only the U2NETP fixtures")
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

    spots = check_formula()
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "formula.json"), "w") as f:
        json.dump({**FORMULA, "spot_checks": spots}, f, indent=2)
        f.write("\n")

    images = make_images(os.path.join(OUT, "images"))
    run_kind("u2netp", images, os.path.join(OUT, "u2netp.onnx"), debug=True)
    if not args.skip_full:
        run_kind("u2net", images, args.full_onnx)

    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"wrote {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
