#!/usr/bin/env python3
"""Builds the weights-free segmentation evaluation set from registry material only.

Composites: Apple emoji PNGs with alpha (npm `emoji-datasource-apple`, 64 px, object-like
subcategories only) pasted at random positions, scales and rotations onto crops of real
photographs bundled with scikit-image, scikit-learn and matplotlib. The emoji's transformed alpha
is the ground-truth mask. Real photos (no ground truth, hand-drawn boxes) come from the same
packages.

Held-out split: backgrounds, emoji and real photos are partitioned up front; the held-out ones were
never looked at while tuning (`split == "heldout"` in the manifest).

    python make_eval_set.py --emoji-dir DIR --out DIR [--fixtures DIR]

Everything is seeded: the same package versions give the same files.
"""

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SEED = 20240611
N_TUNE = 80
N_HELDOUT = 40
FIXTURE_TUNE = 12
FIXTURE_HELDOUT = 12

OBJECT_SUBCATEGORIES = {
    "food-fruit", "food-vegetable", "drink", "dishware", "food-prepared", "food-sweet",
    "animal-mammal", "animal-bird", "animal-marine", "animal-reptile", "animal-bug",
    "transport-ground", "transport-air", "transport-water", "tool", "household",
    "musical-instrument", "clothing", "computer", "phone", "sport", "light & video",
}

TUNE_BACKGROUNDS = ["brick", "grass", "coffee", "chelsea", "astronaut", "immunohistochemistry", "camera"]
HELDOUT_BACKGROUNDS = ["gravel", "hubble_deep_field", "china", "retina", "colorwheel_free"]

# Boxes [x0, y0, x1, y1] in the saved (downscaled) photo's pixels, drawn by looking at the photos.
# Tuning photos were looked at while tuning; held-out ones only to draw their boxes.
PHOTOS = {
    "astronaut": ("tune", [15, 15, 365, 512]),
    "chelsea": ("tune", [10, 0, 400, 300]),
    "coffee": ("tune", [65, 10, 415, 335]),
    "rocket": ("heldout", None),
    "motorcycle": ("heldout", [55, 60, 480, 320]),
    "grace_hopper": ("heldout", [10, 15, 437, 512]),
    "flower": ("heldout", [130, 75, 360, 285]),
    # A product shot on a plain studio backdrop (made here): must take the plain-background path.
    "product": ("tune", None),
}


def photo(name):
    import skimage.data as d

    if name == "china" or name == "flower":
        from sklearn.datasets import load_sample_image

        return load_sample_image(f"{name}.jpg")
    if name == "grace_hopper":
        import matplotlib

        p = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
        return np.asarray(Image.open(p).convert("RGB"))
    if name == "product":
        import matplotlib

        p = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"
        gift = Image.open(p / "Minduka_Present_Blue_Pack.png").convert("RGBA").resize((224, 224), Image.LANCZOS)
        w, h = 384, 320
        ramp = np.linspace(236, 212, h, dtype=np.float32)[:, None, None]
        bg = np.broadcast_to(ramp * np.array([1.0, 1.0, 1.02], np.float32), (h, w, 3)).copy()
        layer = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        layer.paste(gift, ((w - 224) // 2, (h - 224) // 2 + 10))
        fg = np.asarray(layer).astype(np.float32)
        a = fg[..., 3:4] / 255.0
        out = bg * (1 - a) + fg[..., :3] * a
        out += np.random.default_rng(7).normal(0, 1.5, out.shape)
        return np.clip(np.round(out), 0, 255).astype(np.uint8)
    if name == "motorcycle":
        return d.stereo_motorcycle()[0]
    if name == "colorwheel_free":
        # A photographic-looking smooth field: the retina image heavily blurred would repeat
        # retina; use the Hubble field's colours, blurred, as a soft non-plain backdrop.
        img = Image.fromarray(d.hubble_deep_field()).resize((256, 256), Image.BILINEAR)
        from PIL import ImageFilter

        return np.asarray(img.filter(ImageFilter.GaussianBlur(12)))
    img = getattr(d, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return img[..., :3]


def emoji_list(emoji_dir):
    meta = json.load(open(Path(emoji_dir) / "emoji.json"))
    names = sorted(
        e["image"]
        for e in meta
        if e.get("has_img_apple") and e.get("subcategory") in OBJECT_SUBCATEGORIES
    )
    # Every fourth emoji (in file-name order) is held out.
    tune = [n for i, n in enumerate(names) if i % 4 != 3]
    held = [n for i, n in enumerate(names) if i % 4 == 3]
    return tune, held


def crop_background(rng, img, size):
    h, w = img.shape[:2]
    out_w, out_h = size
    # A crop of 50-100 % of the short side, resized to the output: a scene, not a texture patch.
    side = int(min(h, w) * rng.uniform(0.5, 1.0))
    cw = min(w, int(side * out_w / max(out_w, out_h)) if out_w < out_h else side)
    ch = min(h, int(side * out_h / max(out_w, out_h)) if out_h < out_w else side)
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    crop = Image.fromarray(np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw]))
    return np.asarray(crop.resize((out_w, out_h), Image.LANCZOS)).astype(np.float32)


def composite(rng, bg_img, emoji_path):
    out_w = 256
    out_h = int(rng.choice([192, 224, 256]))
    if rng.random() < 0.5:
        out_w, out_h = out_h, out_w
    bg = crop_background(rng, bg_img, (out_w, out_h))
    em = Image.open(emoji_path).convert("RGBA")
    scale = rng.uniform(1.2, 2.4)
    size = int(round(64 * scale))
    em = em.resize((size, size), Image.BICUBIC)
    em = em.rotate(rng.uniform(-30, 30), resample=Image.BICUBIC, expand=True)
    ew, eh = em.size
    # Anywhere with the object fully inside, centre biased only by the margins.
    x0 = int(rng.integers(0, max(1, out_w - ew)))
    y0 = int(rng.integers(0, max(1, out_h - eh)))
    layer = Image.new("RGBA", (out_w, out_h), (0, 0, 0, 0))
    layer.paste(em, (x0, y0))
    fg = np.asarray(layer).astype(np.float32)
    a = fg[..., 3:4] / 255.0
    out = bg * (1 - a) + fg[..., :3] * a
    out += rng.normal(0, 2.0, out.shape)  # sensor noise
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    mask = (fg[..., 3] >= 128).astype(np.uint8) * 255
    return out, mask


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--emoji-dir", required=True, help="node_modules/emoji-datasource-apple")
    ap.add_argument("--out", required=True)
    ap.add_argument("--fixtures", help="also write the committed test subset here")
    args = ap.parse_args()
    out = Path(args.out)
    (out / "composites").mkdir(parents=True, exist_ok=True)
    (out / "photos").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    tune_emoji, held_emoji = emoji_list(args.emoji_dir)
    img_dir = Path(args.emoji_dir) / "img" / "apple" / "64"
    backgrounds = {n: photo(n) for n in TUNE_BACKGROUNDS + HELDOUT_BACKGROUNDS}

    manifest = {"composites": [], "photos": []}
    for split, count, bgs, emojis in [
        ("tune", N_TUNE, TUNE_BACKGROUNDS, tune_emoji),
        ("heldout", N_HELDOUT, HELDOUT_BACKGROUNDS, held_emoji),
    ]:
        for k in range(count):
            bg_name = bgs[k % len(bgs)]
            em_name = emojis[int(rng.integers(0, len(emojis)))]
            img, mask = composite(rng, backgrounds[bg_name], img_dir / em_name)
            stem = f"{split}_{k:03d}"
            Image.fromarray(img).save(out / "composites" / f"{stem}.jpg", quality=92)
            Image.fromarray(mask).save(out / "composites" / f"{stem}_mask.png", optimize=True)
            manifest["composites"].append({
                "image": f"composites/{stem}.jpg",
                "mask": f"composites/{stem}_mask.png",
                "split": split,
                "background": bg_name,
                "emoji": em_name,
            })

    for name, (split, box) in PHOTOS.items():
        img = Image.fromarray(np.ascontiguousarray(photo(name)))
        s = 512 / max(img.size)
        if s < 1:
            img = img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS)
        img.save(out / "photos" / f"{name}.jpg", quality=90)
        manifest["photos"].append({
            "image": f"photos/{name}.jpg",
            "name": name,
            "split": split,
            "box": box,
            "width": img.width,
            "height": img.height,
        })
    json.dump(manifest, open(out / "manifest.json", "w"), indent=1)
    print(f"{len(manifest['composites'])} composites, {len(manifest['photos'])} photos in {out}")

    if args.fixtures:
        fx = Path(args.fixtures)
        (fx / "composites").mkdir(parents=True, exist_ok=True)
        (fx / "photos").mkdir(parents=True, exist_ok=True)
        tune = [c for c in manifest["composites"] if c["split"] == "tune"][:FIXTURE_TUNE]
        held = [c for c in manifest["composites"] if c["split"] == "heldout"][:FIXTURE_HELDOUT]
        sub = {"composites": tune + held, "photos": manifest["photos"]}
        for c in sub["composites"]:
            shutil.copy(out / c["image"], fx / c["image"])
            shutil.copy(out / c["mask"], fx / c["mask"])
        for p in sub["photos"]:
            shutil.copy(out / p["image"], fx / p["image"])
        json.dump(sub, open(fx / "manifest.json", "w"), indent=1)
        total = sum(f.stat().st_size for f in fx.rglob("*") if f.is_file())
        print(f"fixtures: {len(sub['composites'])} composites, {total / 1e6:.2f} MB in {fx}")


if __name__ == "__main__":
    main()
