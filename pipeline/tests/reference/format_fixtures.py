"""Writes small input-format fixtures with Pillow (deterministic).

    python3 pipeline/tests/reference/format_fixtures.py

Every image is 48 wide and 32 high as displayed: left half red, right half blue (the 16-bit and
grayscale ones are grey ramps instead), so tests can check orientation and colour handling.
"""
import io
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "formats")


def halves():
    a = np.zeros((32, 48, 3), np.uint8)
    a[:, :24] = (220, 30, 30)
    a[:, 24:] = (30, 30, 220)
    return a


def main():
    os.makedirs(OUT, exist_ok=True)
    img = Image.fromarray(halves(), "RGB")
    # EXIF orientation 6 (rotate 90° clockwise to display): store the pixels rotated the other way.
    stored = img.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(os.path.join(OUT, "exif_rotated.jpg"), quality=95, exif=exif.tobytes())
    img.convert("CMYK").save(os.path.join(OUT, "cmyk.jpg"), quality=95)
    img.save(os.path.join(OUT, "lossless.webp"), lossless=True)
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(os.path.join(OUT, "palette.png"))
    ramp = (np.tile(np.linspace(0, 65535, 48), (32, 1))).astype(np.uint16)
    Image.fromarray(ramp).save(os.path.join(OUT, "gray16.png"))
    Image.fromarray((ramp >> 8).astype(np.uint8), "L").save(os.path.join(OUT, "gray8.png"))
    from PIL import ImageOps
    shown = np.asarray(ImageOps.exif_transpose(Image.open(os.path.join(OUT, "exif_rotated.jpg"))))
    assert shown.shape[:2] == (32, 48) and shown[16, 4, 0] > 180, "EXIF fixture displays red|blue"
    for name in sorted(os.listdir(OUT)):
        print(name, Image.open(os.path.join(OUT, name)).mode)


if __name__ == "__main__":
    main()
