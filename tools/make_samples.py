"""Renders the bundled sample images in samples/ (deterministic; needs numpy and Pillow).

    python3 tools/make_samples.py

- vase.png:   a shaded body of revolution on a transparent background (RGBA).
- star.png:   a five-pointed star with a colour gradient on a transparent background (RGBA).
- apple.jpg:  a photo-like 1024x1024 JPEG without alpha: a shaded red fruit with a leaf on a
              light vertical-gradient backdrop with sensor noise (exercises background removal).
"""
import math
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "samples")
rng = np.random.default_rng(7)


def shade(nx, ny, nz):
    light = np.array([-0.4, 0.5, 0.77])
    light = light / np.linalg.norm(light)
    return np.clip(nx * light[0] + ny * light[1] + nz * light[2], 0, 1)


def vase(size=768):
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    y = ys / size  # 0 top .. 1 bottom
    # Profile radius as a function of height: neck, shoulder, belly, foot.
    r = 0.09 + 0.2 * np.exp(-((y - 0.62) / 0.17) ** 2) + 0.05 * np.exp(-((y - 0.18) / 0.05) ** 2)
    inside = (np.abs(xs / size - 0.5) < r) & (y > 0.12) & (y < 0.9)
    u = np.clip((xs / size - 0.5) / np.maximum(r, 1e-6), -1, 1)
    nz = np.sqrt(np.clip(1 - u * u, 0, 1))
    s = 0.25 + 0.75 * shade(u, np.zeros_like(u), nz)
    base = np.stack([0.15 + 0.1 * y, 0.45 + 0.2 * y, 0.75 - 0.2 * y], -1)
    stripe = (np.sin(y * 60) > 0.6)[..., None]
    col = np.where(stripe, np.array([0.95, 0.8, 0.3]), base) * s[..., None]
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., :3] = np.clip(col * 255, 0, 255).astype(np.uint8)
    rgba[..., 3] = np.where(inside, 255, 0)
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "vase.png"), optimize=True)


def star(size=640):
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    cx, cy = size / 2, size / 2
    ang = np.arctan2(ys - cy, xs - cx) + math.pi / 2
    rad = np.hypot(xs - cx, ys - cy) / (size / 2)
    k = (ang % (2 * math.pi / 5)) / (2 * math.pi / 5)
    edge = 0.42 + 0.5 * np.abs(2 * k - 1) ** 1.6
    inside = rad < edge * 0.9
    col = np.stack([0.95 - 0.3 * rad, 0.55 + 0.3 * (ys / size), 0.15 + 0.6 * (xs / size)], -1)
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., :3] = np.clip(col * 255, 0, 255).astype(np.uint8)
    rgba[..., 3] = np.where(inside, 255, 0)
    Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, "star.png"), optimize=True)


def apple(size=1024):
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    g = 0.78 + 0.14 * ys / size
    img = np.stack([g, g * 0.98, g * 0.95], -1)
    cx, cy, r = size * 0.5, size * 0.56, size * 0.3
    dx, dy = (xs - cx) / r, (ys - cy) / (r * 0.92)
    d2 = dx * dx + dy * dy
    inside = d2 < 1
    nz = np.sqrt(np.clip(1 - d2, 0, 1))
    s = 0.2 + 0.8 * shade(dx, -dy, nz) + 0.35 * shade(dx, -dy, nz) ** 30
    fruit = np.stack([0.8 * s, 0.12 * s + 0.05, 0.1 * s], -1)
    img = np.where(inside[..., None], fruit, img)
    # A leaf above the fruit.
    lx, ly = (xs - size * 0.56) / (size * 0.09), (ys - size * 0.22) / (size * 0.04)
    rot = math.radians(-25)
    u = lx * math.cos(rot) - ly * math.sin(rot)
    v = lx * math.sin(rot) + ly * math.cos(rot)
    leaf = u * u + v * v < 1
    # A stem joins the leaf to the fruit.
    stem = (np.abs(xs - size * 0.5 - (size * 0.27 - ys) * 0.15) < size * 0.012) & (ys > size * 0.2) & (ys < size * 0.32)
    img = np.where(stem[..., None], np.array([0.35, 0.22, 0.1]), img)
    img = np.where(leaf[..., None], np.array([0.2, 0.55, 0.15]), img)
    leaf = leaf | stem
    # Soft contact shadow under the fruit.
    sh = np.exp(-(((xs - cx) / (r * 0.9)) ** 2 + ((ys - (cy + r * 0.95)) / (r * 0.08)) ** 2))
    img = np.where(inside[..., None] | leaf[..., None], img, img * (1 - 0.25 * sh[..., None]))
    img = img * 255 + rng.normal(0, 2.5, img.shape)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB").save(
        os.path.join(OUT, "apple.jpg"), quality=90
    )


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    vase()
    star()
    apple()
