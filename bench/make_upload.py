"""Writes a multipart body for POST /api/jobs with a 64 KiB PNG (random pixels) and options.

    python3 bench/make_upload.py OUT_BODY   # prints the Content-Type header value
"""
import io
import random
import sys
import zlib
import struct

random.seed(5)


def png(width, height):
    raw = b"".join(b"\x00" + bytes(random.getrandbits(8) for _ in range(width * 3)) for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


side = 146
image = png(side, side)
while len(image) < 64 * 1024:
    side += 1
    image = png(side, side)
boundary = "orfeasbenchboundary"
body = io.BytesIO()
body.write(f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"noise.png\"\r\n"
           f"Content-Type: image/png\r\n\r\n".encode())
body.write(image)
body.write(f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n"
           f"{{\"formats\": [\"glb\"]}}\r\n--{boundary}--\r\n".encode())
open(sys.argv[1], "wb").write(body.getvalue())
sys.stderr.write(f"image {len(image)} bytes ({side}x{side}), body {body.tell()} bytes\n")
print(f"multipart/form-data; boundary={boundary}")
