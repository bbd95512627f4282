"""Times scikit-image's marching_cubes (method="lewiner", as Hunyuan3D-2 calls it) on a raw
float32 volume written by pipeline/examples/mc_bench.rs. Prints one JSON line.

    python3 bench/mc_vs_skimage.py VOLUME.raw N REPEAT SHAPE
"""
import json
import sys
import time

import numpy as np
from skimage.measure import marching_cubes

path, n, repeat, shape = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
vol = np.fromfile(path, dtype=np.float32).reshape(n, n, n)
times = []
for _ in range(repeat):
    t = time.perf_counter()
    verts, faces, _, _ = marching_cubes(vol, 0.0, method="lewiner")
    times.append(time.perf_counter() - t)
times.sort()
print(json.dumps({"impl": "skimage-lewiner", "shape": shape, "n": n, "median_s": round(times[len(times) // 2], 5),
                  "best_s": round(times[0], 5), "vertices": int(len(verts)), "triangles": int(len(faces))}))
