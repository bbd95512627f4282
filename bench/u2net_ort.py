"""onnxruntime timing of a U^2-Net ONNX export at 320x320 (rembg's session setup: default
SessionOptions, CPU provider), on the same input `pipeline/examples/u2net_bench.rs` builds.

    python bench/u2net_ort.py MODEL.onnx BATCH ITERS

The exports are fixed to batch 1 (rembg's files too), so BATCH > 1 runs the images one by one
and reports per-image time. Prints one JSON line like the Rust bench.
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort


def bench_input(batch, s=320):
    mean = np.array([0.485, 0.456, 0.406])
    std = np.array([0.229, 0.224, 0.225])
    y, x = np.mgrid[0:s, 0:s]
    out = np.zeros((batch, 3, s, s), dtype=np.float32)
    for b in range(batch):
        for c in range(3):
            v = ((x * (c + 1) + y * (b + 2)) % 256) / 255.0
            out[b, c] = ((v - mean[c]) / std[c]).astype(np.float32)
    return out


def main():
    path, batch, iters = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sess = ort.InferenceSession(path, sess_options=ort.SessionOptions(), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    x = bench_input(batch)
    run = lambda: [sess.run(None, {name: x[b:b + 1]})[0] for b in range(batch)]
    first = run()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    print(json.dumps({
        "impl": f"onnxruntime-{ort.__version__}", "batch": batch, "median_s": round(med, 4),
        "best_s": round(times[0], 4), "per_image_s": round(med / batch, 4),
        "d0_sum": round(float(sum(f.astype(np.float64).sum() for f in first)), 3),
    }))


if __name__ == "__main__":
    main()
