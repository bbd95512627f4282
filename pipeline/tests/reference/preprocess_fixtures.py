"""Writes the preprocessing parity fixtures (needs numpy, opencv-python-headless, Pillow).

    python3 pipeline/tests/reference/preprocess_fixtures.py

For each RGBA input it runs the recentering of Hunyuan3D-2's ImageProcessorV2 (hy3dgen 2.0.2,
shapegen/preprocessors.py; PIL-input path, border_ratio 0.15, size 512) with OpenCV and saves
the input and the expected 512x512 RGB image and mask as PNG. The steps, as upstream does them:
bounding box of alpha != 0 with the max row/column excluded, INTER_AREA resize of the crop so
its long side is int(size * 0.85) of the square size = max(H, W), paste centred on a transparent
square, alpha-composite over white in float32 and truncate, INTER_CUBIC to 512 (mask INTER_NEAREST).
"""
import os

import cv2
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "preprocess")


def recenter(image, border_ratio=0.15):
    mask = image[..., 3]
    H, W, C = image.shape
    size = max(H, W)
    result = np.zeros((size, size, C), dtype=np.uint8)
    rows, cols = np.nonzero(mask)
    r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
    h, w = r1 - r0, c1 - c0
    desired = int(size * (1 - border_ratio))
    scale = desired / max(h, w)
    h2, w2 = int(h * scale), int(w * scale)
    y0, x0 = (size - h2) // 2, (size - w2) // 2
    result[y0:y0 + h2, x0:x0 + w2] = cv2.resize(image[r0:r1, c0:c1], (w2, h2), interpolation=cv2.INTER_AREA)
    alpha = result[..., 3:].astype(np.float32) / 255
    rgb = result[..., :3] * alpha + np.ones((size, size, 3), np.uint8) * 255 * (1 - alpha)
    return rgb.clip(0, 255).astype(np.uint8), (alpha * 255).clip(0, 255).astype(np.uint8)


def process(rgba):
    rgb, mask = recenter(rgba)
    rgb = cv2.resize(rgb, (512, 512), interpolation=cv2.INTER_CUBIC)
    mask = cv2.resize(mask, (512, 512), interpolation=cv2.INTER_NEAREST)
    return rgb, mask


def inputs():
    rng = np.random.default_rng(3)
    ys, xs = np.mgrid[0:600, 0:800].astype(np.float64)
    # 1. Small object in a large landscape image (crop is upscaled), soft alpha edge.
    d = np.hypot((xs - 300) / 90, (ys - 250) / 60)
    a = np.clip((1.0 - d) * 12, 0, 1)
    col = np.stack([128 + 100 * np.sin(xs / 17), 90 + 80 * np.cos(ys / 23), 60 + 50 * np.sin((xs + ys) / 31)], -1)
    yield "small_soft", np.dstack([col, a * 255]).astype(np.uint8)
    # 2. Object filling most of a portrait image (crop is downscaled), hard edge, noisy colours.
    ys2, xs2 = np.mgrid[0:700, 0:500].astype(np.float64)
    inside = (np.abs(xs2 - 250) < 235) & (np.abs(ys2 - 360) < 320) & (np.hypot(xs2 - 250, ys2 - 100) > 60)
    col2 = rng.integers(0, 256, (700, 500, 3))
    yield "large_noisy", np.dstack([col2, inside * 255]).astype(np.uint8)
    # 3. Square image, object exactly at an integer downscale, gradient colours.
    ys3, xs3 = np.mgrid[0:1024, 0:1024].astype(np.float64)
    inside3 = (np.abs(xs3 - 512) + np.abs(ys3 - 500)) < 480
    col3 = np.stack([xs3 / 4, ys3 / 4, 255 - xs3 / 8], -1)
    yield "diamond", np.dstack([col3, inside3 * 255]).astype(np.uint8)
    # 4. Tall thin object (crop upscaled along one axis only after rounding).
    ys4, xs4 = np.mgrid[0:300, 0:260].astype(np.float64)
    inside4 = (np.abs(xs4 - 120) < 25) & (ys4 > 20) & (ys4 < 270)
    col4 = np.stack([200 + 0 * xs4, 40 + ys4 / 2, 90 + xs4 / 3], -1)
    yield "thin", np.dstack([col4, inside4 * 255]).astype(np.uint8)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, rgba in inputs():
        Image.fromarray(rgba, "RGBA").save(os.path.join(OUT, f"{name}.input.png"))
        rgb, mask = process(rgba)
        Image.fromarray(rgb, "RGB").save(os.path.join(OUT, f"{name}.expected.png"))
        Image.fromarray(mask, "L").save(os.path.join(OUT, f"{name}.mask.png"))
        print(name, rgba.shape, "->", rgb.shape)
