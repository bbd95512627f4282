"""Parity fixtures for the port of Hunyuan3D-Paint's non-diffusion half (cameras, rasterizer, bake).

What it writes (under pipeline/tests/fixtures/paint/, about 1 MB in all):

* `cameras.json`: for the six views of Hunyuan3DTexGenConfig (azimuths 0, 90, 180, 270, 0, 180;
  elevations 0, 0, 0, 0, 90, -90; weights 1, 0.1, 0.5, 0.1, 0.05, 0.05) the view matrix
  (`get_mv_matrix`), the orthographic projection (`MeshRender.camera_proj_mat`) and the MVP
  (`np.matmul(proj, mv).astype(float32)`, as `MeshRender.render` forms it), all row-major 4x4,
  float32 values written as JSON numbers (exact), plus camera distance, ortho scale, near/far,
  render and texture sizes. The view list is read from the installed pipelines.py (ast, not
  import: that module pulls in diffusers) and checked against the values above.
* `raster.json` + `raster/*.bin`: inputs and outputs of custom_rasterizer's CPU function
  `rasterize_image_cpu` (called through the reference Python wrapper
  `custom_rasterizer.rasterize`, i.e. `rasterize_image(V, F, D=empty, width, height, 1e-6, 0)`):
  - `sphere_cube`: an icosphere (320 faces) plus a cube partly in front of it, normalised by the
    reference `MeshRender.load_mesh` (axis swap + centre + scale_factor 1.15) and put through the
    reference `get_pos_from_mvp` for views 0, 1 and 4, rasterized at 64x64 (views 0, 1, 4) and
    at width 96 x height 80 (views 0, 4). The raw and normalised vertex arrays are saved too.
  - `shared_edges`: a hand-made clip-space mesh whose vertices sit on pixel centres (width 17 =
    2^4 + 1, so NDC multiples of 1/8 land exactly on centres): a grid with shared edges and
    diagonals through pixel centres, a fan, coplanar duplicates (tie -> lower face index),
    a face nearer by less than one depth quantum (loses to the lower index wherever both cover a
    centre; it shows only at the one centre on the lower face's v1-v2 edge that the lower face's
    rounded barycentric test rejects), a face nearer by more (wins), a face with w != 1 (perspective-correct barycentrics), a degenerate face,
    a face partly off-screen and a face with NDC z < -1.00002 (negative depth: never drawn).
    Rasterized at 17x17 and at width 17 x height 9.
* `render.json` + `render/*.bin`: the reference `MeshRender.render_normal(use_abs_coor=True)`
  and `MeshRender.render_position` (float images before the 'pl' uint8 conversion) of the
  normalised sphere_cube mesh at 64x64 for views 0 and 4.
* `imageops.json` + `imageops/*.bin`: the image operations of back_project / uv_inpaint:
  the depth-edge map (`render_depth` + `render_sketch_from_depth`, i.e. cv2.Canny(30, 80) of the
  uint8 normalised depth) of view 0 at 64x64; `cv2.inpaint(img, 255 - painted, 3, INPAINT_NS)`
  on a 48x40 RGB image; `meshVerticeInpaint` (the Python implementation the wheel imports) on an
  icosphere with a spherical UV layout and a 32x32 texture.
* `bake.json` + `bake/*.bin`: a small end-to-end bake with the reference functions: xatlas UVs of
  the sphere_cube mesh (`mesh_uv_wrap`), MeshRender(default_resolution=256 -> 3x3 erosion and edge
  dilation window, texture_size=32), six synthetic 48x48 RGB view images, per view
  `back_project` (texture + cos map), W = weight * cos^4, `fast_bake_texture`, the trust mask and
  `uv_inpaint`'s final uint8 texture.

All .bin files are raw little-endian arrays in C order; the manifests give dtype and shape.

Reference: hy3dgen 2.0.2 (PyPI) for the Python side (camera_utils.py, mesh_render.py,
pipelines.py: identical to Tencent/Hunyuan3D-2 commit 7ee0a715eddd006e823541d41f3d5e4fbaf0c053),
and that repository's hy3dgen/texgen/custom_rasterizer (not shipped in the wheel or sdist) for the
rasterizer: rasterizer.cpp / rasterizer.h and the `custom_rasterizer` Python package, unchanged
from that commit to at least 2ee477019f15cabc4a9546b1ed9bb21862136bdf. Nothing upstream is copied
here: the generator reads the upstream files where they are.

How the reference is loaded:
* `rasterizer.cpp` is compiled unmodified as the torch extension `custom_rasterizer_kernel` with
  torch.utils.cpp_extension.load. For a CPU-only build a generated shim header stands in for
  <ATen/cuda/CUDAContext.h> (it only defines `__host__`/`__device__` away), and a generated
  stub file defines `rasterize_image_gpu`, `build_hierarchy` and `build_hierarchy_with_feat`
  (they throw; grid_neighbor.cpp and rasterizer_gpu.cu are not built). `rasterize_image`
  dispatches CPU tensors to `rasterize_image_cpu`, the function under test.
* `hy3dgen.texgen` is registered as a bare package so that importing
  `hy3dgen.texgen.differentiable_renderer.mesh_render` does not run hy3dgen/texgen/__init__.py
  (which imports the diffusion pipelines, i.e. diffusers). The modules themselves run unmodified.

Environment (the venv and the upstream checkout can live anywhere):

    python3 -m venv "$VENV"
    "$VENV"/bin/pip install torch==2.15.0 numpy==2.4.6 trimesh==5.2.0 scipy==1.17.1 \
        pygltflib==1.16.5 pillow==13.0.0 opencv-python-headless==5.0.0.93 xatlas==0.0.11 \
        ninja==1.13.2 "setuptools>=77"
    "$VENV"/bin/pip install --no-deps hy3dgen==2.0.2
    git clone https://github.com/Tencent/Hunyuan3D-2 "$HY3D"
    git -C "$HY3D" checkout 7ee0a715eddd006e823541d41f3d5e4fbaf0c053
    "$VENV"/bin/python pipeline/tests/reference/paint_fixtures.py --upstream "$HY3D"

(`torch` is the plain PyPI wheel; only its CPU path runs. A C++ compiler is needed for the
extension build; it runs once per invocation in a temporary directory, single job.)
"""
import argparse
import ast
import atexit
import importlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "paint")

VIEW_AZIMS = [0, 90, 180, 270, 0, 180]
VIEW_ELEVS = [0, 0, 0, 0, 90, -90]
VIEW_WEIGHTS = [1, 0.1, 0.5, 0.1, 0.05, 0.05]

KERNEL_SUBDIR = os.path.join("hy3dgen", "texgen", "custom_rasterizer", "lib", "custom_rasterizer_kernel")
PYPKG_SUBDIR = os.path.join("hy3dgen", "texgen", "custom_rasterizer")

SHIM_HEADER = """\
#pragma once
// CPU-only build of custom_rasterizer_kernel: rasterizer.h includes this header only for the
// CUDA qualifiers it then puts on its inline helpers. Define them away.
#ifndef __host__
#define __host__
#endif
#ifndef __device__
#define __device__
#endif
"""

STUBS_CPP = """\
#include "rasterizer.h"
// CUDA-side and hierarchy entry points referenced by rasterizer.cpp's dispatcher and module
// definition; not built here (CPU-only fixture build).
std::vector<torch::Tensor> rasterize_image_gpu(torch::Tensor, torch::Tensor, torch::Tensor,
    int, int, float, int) {
    TORCH_CHECK(false, "rasterize_image_gpu is not built (CPU-only fixture build)");
    return {};
}
std::vector<std::vector<torch::Tensor>> build_hierarchy(std::vector<torch::Tensor>,
    std::vector<torch::Tensor>, int, int) {
    TORCH_CHECK(false, "build_hierarchy is not built (CPU-only fixture build)");
    return {};
}
std::vector<std::vector<torch::Tensor>> build_hierarchy_with_feat(std::vector<torch::Tensor>,
    std::vector<torch::Tensor>, std::vector<torch::Tensor>, int, int) {
    TORCH_CHECK(false, "build_hierarchy_with_feat is not built (CPU-only fixture build)");
    return {};
}
"""


# --------------------------------------------------------------------------------------------
# loading the reference


def build_kernel(upstream):
    from torch.utils.cpp_extension import load

    kernel_dir = os.path.join(upstream, KERNEL_SUBDIR)
    for f in ("rasterizer.cpp", "rasterizer.h"):
        if not os.path.isfile(os.path.join(kernel_dir, f)):
            sys.exit(f"--upstream: {f} not found under {KERNEL_SUBDIR}")
    work = tempfile.mkdtemp(prefix="paint-fixtures-")
    atexit.register(shutil.rmtree, work, True)
    shim_dir = os.path.join(work, "shim")
    os.makedirs(os.path.join(shim_dir, "ATen", "cuda"))
    with open(os.path.join(shim_dir, "ATen", "cuda", "CUDAContext.h"), "w") as fh:
        fh.write(SHIM_HEADER)
    stubs = os.path.join(work, "cpu_only_stubs.cpp")
    with open(stubs, "w") as fh:
        fh.write(STUBS_CPP)
    build_dir = os.path.join(work, "build")
    os.makedirs(build_dir)
    os.environ.setdefault("MAX_JOBS", "1")
    # the venv's `ninja` (pip package) without activating the venv
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    # -I paths are searched before torch's -isystem paths, so the shim wins over the real header.
    return load(
        name="custom_rasterizer_kernel",
        sources=[os.path.join(kernel_dir, "rasterizer.cpp"), stubs],
        extra_include_paths=[shim_dir, kernel_dir],
        extra_cflags=["-O2"],
        build_directory=build_dir,
        verbose=False,
    )


def load_reference(upstream):
    kernel = build_kernel(upstream)
    sys.modules["custom_rasterizer_kernel"] = kernel
    sys.path.insert(0, os.path.join(upstream, PYPKG_SUBDIR))
    import custom_rasterizer  # upstream package: io_glb, io_obj, render (rasterize, interpolate)

    version = importlib.metadata.version("hy3dgen")
    if version != "2.0.2":
        sys.exit(f"hy3dgen {version} is installed; the fixtures are for 2.0.2")
    import hy3dgen

    texgen_dir = os.path.join(os.path.dirname(hy3dgen.__file__), "texgen")
    texgen = types.ModuleType("hy3dgen.texgen")
    texgen.__path__ = [texgen_dir]
    sys.modules["hy3dgen.texgen"] = texgen
    mesh_render = importlib.import_module("hy3dgen.texgen.differentiable_renderer.mesh_render")
    camera_utils = importlib.import_module("hy3dgen.texgen.differentiable_renderer.camera_utils")
    return custom_rasterizer, mesh_render, camera_utils, texgen_dir


def pipeline_config(texgen_dir):
    """The constants of Hunyuan3DTexGenConfig.__init__, read from pipelines.py without importing it."""
    with open(os.path.join(texgen_dir, "pipelines.py")) as fh:
        tree = ast.parse(fh.read())
    values = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == "Hunyuan3DTexGenConfig":
            for stmt in ast.walk(node):
                if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Attribute):
                    try:
                        values[stmt.targets[0].attr] = ast.literal_eval(stmt.value)
                    except ValueError:
                        pass
    return values


# --------------------------------------------------------------------------------------------
# output helpers


def write_bin(subdir, name, array, dtype):
    arr = np.ascontiguousarray(np.asarray(array).astype(dtype))
    le = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    os.makedirs(os.path.join(OUT, subdir), exist_ok=True)
    rel = f"{subdir}/{name}"
    with open(os.path.join(OUT, rel), "wb") as fh:
        fh.write(le.tobytes(order="C"))
    return {"file": rel, "dtype": np.dtype(dtype).name, "shape": list(arr.shape)}


def mat_list(m):
    return [[float(x) for x in row] for row in np.asarray(m)]


# --------------------------------------------------------------------------------------------
# meshes


def sphere_cube_mesh():
    """Icosphere (subdivisions=2: 162 vertices, 320 faces) of radius 0.5 at the origin plus a cube
    of side 0.35 centred at (0.3, 0.25, 0.45): partly in front of the sphere from the front (+z)
    and from the +x side. Coordinates are in the mesh's own y-up frame (as a GLB would give them)
    and rounded to float32 so that the float32 file holds exactly what the reference read."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    cube = trimesh.creation.box(extents=[0.35, 0.35, 0.35])
    cube.apply_translation([0.3, 0.25, 0.45])
    verts = np.concatenate([sphere.vertices, cube.vertices]).astype(np.float32)
    faces = np.concatenate([sphere.faces, cube.faces + len(sphere.vertices)]).astype(np.int32)
    assert faces.shape == (332, 3), faces.shape
    return verts, faces


def shared_edges_mesh():
    """Clip-space vertices (x, y, z, w), faces and the indices of the special faces. NDC x = k/8 - 1
    is the centre of pixel column k at width 17 (and NDC y = k/8 - 1 of row k at height 17,
    k/4 - 1 at height 9), exactly, so edges run through pixel centres."""
    verts = []
    faces = []
    named = {}

    def v(x, y, z, w=1.0):
        verts.append([x * w, y * w, z * w, w])
        return len(verts) - 1

    def face(name, a, b, c):
        if name:
            named[name] = len(faces)
        faces.append((a, b, c))

    # 1. grid x, y in [-1, 0] with step 1/4 (two pixels at 17 px), z = 0.2 everywhere (one plane:
    #    shared edges tie on depth), diagonals alternating per cell, odd columns wound clockwise.
    grid = {}
    for j in range(5):
        for i in range(5):
            grid[i, j] = v(-1 + i / 4, -1 + j / 4, 0.2)
    for j in range(4):
        for i in range(4):
            a, b, c, d = grid[i, j], grid[i + 1, j], grid[i + 1, j + 1], grid[i, j + 1]
            tris = [(a, b, c), (a, c, d)] if (i + j) % 2 == 0 else [(a, b, d), (b, c, d)]
            if i % 2 == 1:
                tris = [(t[0], t[2], t[1]) for t in tris]
            for t in tris:
                face(None, *t)
    # 2. a fan of 8 faces around (0.5, -0.5) on the sloped plane z = 0.1 + 0.05 x - 0.03 y.
    def zp(x, y):
        return 0.1 + 0.05 * x - 0.03 * y

    cx, cy = 0.5, -0.5
    centre = v(cx, cy, zp(cx, cy))
    ring = []
    for dx, dy in [(1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1)]:
        x, y = cx + dx / 4, cy + dy / 4
        ring.append(v(x, y, zp(x, y)))
    for k in range(8):
        face("fan_first" if k == 0 else None, centre, ring[k], ring[(k + 1) % 8])
    # 3. upper-left: face A at z0, chosen so that its depth lies mid-way in a quantisation bucket
    #    (depth = z * 0.49999 + 0.5, key uses int(depth * 2^18)).
    q = 2 << 17
    z0 = float(np.float32(((40000 + 0.5) / q - 0.5) / 0.49999))
    tri_a = [(-1.0, 0.25), (-0.25, 0.25), (-1.0, 1.0)]
    face("coplanar_a", *[v(x, y, z0) for x, y in tri_a])
    # the same face again (own vertices), higher index: loses every tie
    face("coplanar_b_duplicate", *[v(x, y, z0) for x, y in tri_a])
    # inside A, nearer by 0.2 of a quantum (same bucket): loses to A's lower index everywhere
    zs = float(np.float32(z0 - 0.2 / q / 0.49999))
    face("subquantum_nearer", *[v(x, y, zs) for x, y in [(-1.0, 0.5), (-0.5, 0.5), (-1.0, 1.0)]])
    # overlapping A, nearer by 3 quanta: wins where it covers A
    zn = float(np.float32(z0 - 3.0 / q / 0.49999))
    face("nearer", *[v(x, y, zn) for x, y in [(-0.75, 0.25), (-0.25, 0.25), (-0.25, 0.75)]])
    # 4. perspective: NDC positions on pixel centres, w = 1, 2, 4 (barycentrics divided by w)
    face("perspective", v(0.25, 0.25, 0.3, 1.0), v(1.0, 0.25, 0.3, 2.0), v(0.25, 1.0, 0.3, 4.0))
    # 5. degenerate (collinear through pixel centres): never drawn
    face("degenerate", v(0.25, 0.0, 0.0), v(0.5, 0.0, 0.0), v(1.0, 0.0, 0.0))
    # 6. partly off-screen (left and below), in front of the grid
    face("offscreen", v(-1.5, -1.25, 0.1), v(-0.5, -1.5, 0.1), v(-1.25, -0.5, 0.1))
    # 7. over the grid with NDC z = -1.2 (depth < 0): never drawn although it is the nearest
    face("negative_depth", v(-0.875, -0.875, -1.2), v(-0.125, -0.875, -1.2), v(-0.875, -0.125, -1.2))
    # 8. NDC z = -1.00001: depth ~ +5e-6, quantised to int(1.3) = 1: drawn
    face("tiny_positive_depth", v(0.25, -0.125, -1.00001), v(0.75, -0.125, -1.00001),
         v(0.25, 0.125, -1.00001))
    return np.asarray(verts, np.float32), np.asarray(faces, np.int32), named


# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True,
                    help="a checkout of the Tencent/Hunyuan3D-2 repository (see the header)")
    args = ap.parse_args()

    import torch
    import trimesh

    torch.set_num_threads(1)
    cr, mr, cu, texgen_dir = load_reference(os.path.abspath(args.upstream))

    cfg = pipeline_config(texgen_dir)
    assert cfg["candidate_camera_azims"] == VIEW_AZIMS, cfg
    assert cfg["candidate_camera_elevs"] == VIEW_ELEVS, cfg
    assert cfg["candidate_view_weights"] == VIEW_WEIGHTS, cfg
    os.makedirs(OUT, exist_ok=True)

    # The renderer exactly as Hunyuan3DPaintPipeline.__init__ builds it (pipelines.py:91-93),
    # on the CPU.
    render = mr.MeshRender(default_resolution=cfg["render_size"], texture_size=cfg["texture_size"],
                           device="cpu")
    proj = render.camera_proj_mat
    views = []
    for i, (azim, elev, weight) in enumerate(zip(VIEW_AZIMS, VIEW_ELEVS, VIEW_WEIGHTS)):
        mv = cu.get_mv_matrix(elev=elev, azim=azim, camera_distance=render.camera_distance)
        mvp = np.matmul(proj, mv).astype(np.float32)  # mesh_render.py:397
        assert mv.dtype == np.float32 and proj.dtype == np.float32
        views.append({"index": i, "azimuth_deg": azim, "elevation_deg": elev, "weight": weight,
                      "view": mat_list(mv), "projection": mat_list(proj), "mvp": mat_list(mvp)})
    cameras = {
        "reference": "hy3dgen 2.0.2 texgen: differentiable_renderer/camera_utils.py get_mv_matrix, "
                     "get_orthographic_projection_matrix; MeshRender defaults (mesh_render.py)",
        "layout": "row-major 4x4 (m[row][col]); column vectors: clip = projection @ view @ [x, y, z, 1]. "
                  "Values are the reference's float32 results written as exact decimals.",
        "camera_distance": render.camera_distance,
        "ortho_scale": render.ortho_scale,
        "ortho_bounds": {"left": -render.ortho_scale * 0.5, "right": render.ortho_scale * 0.5,
                         "bottom": -render.ortho_scale * 0.5, "top": render.ortho_scale * 0.5,
                         "near": 0.1, "far": 100},
        "render_size": cfg["render_size"],
        "texture_size": cfg["texture_size"],
        "bake_exp": cfg["bake_exp"],
        "merge_method": cfg["merge_method"],
        "bake_angle_thres_deg": render.bake_angle_thres,
        "bake_unreliable_kernel_size": render.bake_unreliable_kernel_size,
        "mesh_scale_factor": 1.15,
        "views": views,
    }
    with open(os.path.join(OUT, "cameras.json"), "w") as fh:
        json.dump(cameras, fh, indent=1)
        fh.write("\n")

    # ---------------------------------------------------------------- rasterizer
    cases = []

    def rasterize(name, clip, faces, height, width, extra):
        clip_t = torch.from_numpy(clip)[None]
        faces_t = torch.from_numpy(faces)
        findices, bary = cr.rasterize(clip_t, faces_t, (height, width))  # render.py: rasterize
        assert findices.dtype == torch.int32 and bary.dtype == torch.float32
        assert tuple(findices.shape) == (height, width) and tuple(bary.shape) == (height, width, 3)
        # the MeshRender path concatenates them into one float tensor: same values
        rast_out, _ = render.raster_rasterize(clip_t, faces_t, resolution=[height, width])
        assert torch.equal(rast_out[0, ..., :3], bary)
        assert torch.equal(rast_out[0, ..., 3].to(torch.int32), findices)
        tag = f"{name}_{width}x{height}"
        case = {"name": tag, "width": width, "height": height, **extra,
                "findices": write_bin("raster", f"{tag}_findices.bin", findices.numpy(), np.int32),
                "barycentric": write_bin("raster", f"{tag}_barycentric.bin", bary.numpy(), np.float32),
                "covered_pixels": int((findices > 0).sum()),
                "distinct_faces": int(len(torch.unique(findices[findices > 0])))}
        cases.append(case)
        return findices, bary

    raw, faces = sphere_cube_mesh()
    mesh = trimesh.Trimesh(vertices=raw.astype(np.float64), faces=faces, process=False)
    render.load_mesh(mesh)  # mesh_render.py:213 -> set_mesh: axis swap, centre, scale 1.15
    normalized = render.vtx_pos.numpy().copy()
    assert render.pos_idx.dtype == torch.int32 and torch.equal(render.pos_idx, torch.from_numpy(faces))
    mesh_entry = {
        "raw_vertices": write_bin("raster", "sphere_cube_raw_vertices.bin", raw, np.float32),
        "faces": write_bin("raster", "sphere_cube_faces.bin", faces, np.int32),
        "normalized_vertices": write_bin("raster", "sphere_cube_normalized_vertices.bin",
                                         normalized, np.float32),
        "scale_factor": render.scale_factor,
    }
    for view in (0, 1, 4):
        azim, elev = VIEW_AZIMS[view], VIEW_ELEVS[view]
        _, pos_clip = render.get_pos_from_mvp(elev, azim, None, None)  # mesh_render.py:512
        clip = pos_clip[0].numpy().copy()
        assert clip.dtype == np.float32 and clip.shape == (len(raw), 4)
        vert_entry = write_bin("raster", f"sphere_cube_view{view}_clip.bin", clip, np.float32)
        sizes = ((64, 64), (80, 96)) if view != 1 else ((64, 64),)  # keeps the set under ~1 MB
        for (h, w) in sizes:
            rasterize(f"sphere_cube_view{view}", clip, faces, h, w,
                      {"mesh": "sphere_cube", "view_index": view, "vertices": vert_entry,
                       "faces": mesh_entry["faces"]})

    se_verts, se_faces, named = shared_edges_mesh()
    se_v = write_bin("raster", "shared_edges_clip.bin", se_verts, np.float32)
    se_f = write_bin("raster", "shared_edges_faces.bin", se_faces, np.int32)
    for (h, w) in ((17, 17), (9, 17)):
        fi, _ = rasterize("shared_edges", se_verts, se_faces, h, w,
                          {"mesh": "shared_edges", "vertices": se_v, "faces": se_f,
                           "named_faces": named})
        ids = set(int(x) for x in torch.unique(fi))
        for never in ("degenerate", "negative_depth", "coplanar_b_duplicate"):
            assert named[never] + 1 not in ids, f"{never}: face must not be drawn ({w}x{h})"
        for drawn in ("coplanar_a", "nearer", "perspective", "offscreen", "tiny_positive_depth"):
            assert named[drawn] + 1 in ids, f"{drawn}: face must be drawn ({w}x{h})"

    raster = {
        "reference": "custom_rasterizer (Tencent/Hunyuan3D-2 hy3dgen/texgen/custom_rasterizer) "
                     "rasterize_image_cpu via custom_rasterizer.rasterize(pos[None], tri, (height, width)) = "
                     "rasterize_image(pos, tri, empty, width, height, 1e-6, 0)",
        "convention": {
            "vertices": "float32 [N][4] clip-space (x, y, z, w); the rasterizer divides by w",
            "faces": "int32 [M][3] vertex indices",
            "findices": "int32 [height][width]; 0 = background, otherwise 1 + the 0-based face index",
            "barycentric": "float32 [height][width][3]: weights of faces[f][0], faces[f][1], faces[f][2]; "
                           "screen-space barycentrics divided by each vertex's w and renormalised "
                           "(perspective-correct); (0, 0, 0) on background",
            "pixel_mapping": "x_px = (x/w * 0.5 + 0.5) * (width - 1) + 0.5, y_px = (0.5 + 0.5 * y/w) * "
                             "(height - 1) + 0.5; pixel (col, row) is sampled at (col + 0.5, row + 0.5); "
                             "row 0 is NDC y = -1 (no flip); NDC -1 and +1 are the centres of the first "
                             "and last pixel",
            "depth": "depth = z/w * 0.49999 + 0.5; key = int(depth * 2^18) * 2147483647 + face + 1 as "
                     "uint64, the smallest key wins (nearest, then lowest face index); depth < 0 never drawn",
            "coverage": "a pixel centre is covered when all three screen-space barycentrics are in [0, 1] "
                        "(edges inclusive, either winding; zero-area faces never)",
            "depth_returned": False,
        },
        "sphere_cube": mesh_entry,
        "cases": cases,
    }
    with open(os.path.join(OUT, "raster.json"), "w") as fh:
        json.dump(raster, fh, indent=1)
        fh.write("\n")

    # ---------------------------------------------------------------- normal / position maps
    renders = []
    for view in (0, 4):
        azim, elev = VIEW_AZIMS[view], VIEW_ELEVS[view]
        normal = render.render_normal(elev, azim, resolution=64, use_abs_coor=True, return_type="np")
        position = render.render_position(elev, azim, resolution=64, return_type="np")
        assert normal.dtype == np.float32 and normal.shape == (64, 64, 3)
        assert position.dtype == np.float32 and position.shape == (64, 64, 3)
        renders.append({
            "view_index": view, "azimuth_deg": azim, "elevation_deg": elev, "width": 64, "height": 64,
            "normal": write_bin("render", f"sphere_cube_view{view}_normal.bin", normal, np.float32),
            "position": write_bin("render", f"sphere_cube_view{view}_position.bin", position, np.float32),
        })
    with open(os.path.join(OUT, "render.json"), "w") as fh:
        json.dump({
            "reference": "hy3dgen 2.0.2 MeshRender.render_normal(elev, azim, resolution=64, "
                         "use_abs_coor=True, return_type='np') and render_position(elev, azim, "
                         "resolution=64, return_type='np') (mesh_render.py:424, :566), on the "
                         "sphere_cube mesh of raster.json after load_mesh",
            "layout": "float32 [height][width][3], row 0 = first rasterizer row (NDC y = -1)",
            "normal": "(n + 1) / 2 with n the barycentric interpolation (not renormalised) of "
                      "trimesh mean vertex normals of the renderer-space mesh; background 1.0",
            "position": "0.5 - p / 1.15 interpolated, p = normalised renderer-space position; "
                        "background 1.0",
            "pipeline_conversion": "the pipeline then takes return_type='pl': uint8(value * 255) "
                                   "(truncation) and PIL images",
            "mesh_faces": mesh_entry["faces"],
            "mesh_normalized_vertices": mesh_entry["normalized_vertices"],
            "renders": renders,
        }, fh, indent=1)
        fh.write("\n")

    # ---------------------------------------------------------------- image operations
    import cv2

    ops = {}
    # depth edges as back_project computes them (mesh_render.py:699-707): render_depth gives the
    # same normalised-depth-times-visible image, render_sketch_from_depth the Canny(30, 80) map.
    depth = render.render_depth(0, 0, resolution=64)  # view 0
    sketch = render.render_sketch_from_depth(depth)
    ops["depth_edges"] = {
        "reference": "MeshRender.render_depth(0, 0, resolution=64) then render_sketch_from_depth: "
                     "cv2.Canny(uint8(depth * 255), 30, 80) / 255",
        "depth": write_bin("imageops", "depth_view0_64.bin", depth.numpy()[..., 0], np.float32),
        "depth_u8": write_bin("imageops", "depth_view0_64_u8.bin",
                              (depth.numpy()[..., 0] * 255).astype(np.uint8), np.uint8),
        "edges": write_bin("imageops", "edges_view0_64.bin", sketch.numpy()[..., 0], np.float32),
    }
    # cv2.inpaint as uv_inpaint calls it (mesh_render.py:814-821): radius 3, INPAINT_NS, mask =
    # 255 - painted mask. Smooth colour ramps plus noise; holes inside, on the borders and corners.
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:40, 0:48].astype(np.float32)
    img = np.stack([xx * 5, yy * 6, 128 + 60 * np.sin(xx / 5 + yy / 7)], -1)
    img = np.clip(img + rng.normal(0, 6, img.shape), 0, 255).astype(np.uint8)
    painted = np.full((40, 48), 255, np.uint8)
    painted[10:18, 12:22] = 0
    painted[0:4, 30:40] = 0
    painted[25:40, 0:6] = 0
    painted[20:24, 40:48] = 0
    painted[rng.random((40, 48)) < 0.04] = 0
    inpainted = cv2.inpaint(img, 255 - painted, 3, cv2.INPAINT_NS)
    ops["inpaint_ns"] = {
        "reference": f"cv2.inpaint(image, 255 - painted, 3, cv2.INPAINT_NS), OpenCV {cv2.__version__}",
        "image": write_bin("imageops", "inpaint_image.bin", img, np.uint8),
        "painted_mask": write_bin("imageops", "inpaint_painted_mask.bin", painted, np.uint8),
        "output": write_bin("imageops", "inpaint_output.bin", inpainted, np.uint8),
    }
    # meshVerticeInpaint (differentiable_renderer/mesh_processor.py, the module mesh_render.py
    # imports) on the icosphere with a spherical UV layout, texture 32x32.
    mp = importlib.import_module("hy3dgen.texgen.differentiable_renderer.mesh_processor")
    sph = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    vpos = sph.vertices.astype(np.float32)
    d = vpos / np.linalg.norm(vpos, axis=1, keepdims=True)
    vuv = np.stack([0.5 + np.arctan2(d[:, 0], d[:, 2]) / (2 * np.pi),
                    0.5 + np.arcsin(np.clip(d[:, 1], -1, 1)) / np.pi], -1).astype(np.float32)
    tris = sph.faces.astype(np.int32)
    tex = rng.random((32, 32, 3)).astype(np.float32)
    vmask = np.zeros((32, 32), np.uint8)
    vmask[:, :14] = 255
    vmask[5:9, 20:26] = 255
    new_tex, new_mask = mp.meshVerticeInpaint(tex, vmask, vpos, vuv, tris, tris)
    ops["vertex_inpaint"] = {
        "reference": "mesh_processor.meshVerticeInpaint(texture, mask, vtx_pos, vtx_uv, pos_idx, uv_idx) "
                     "(Python implementation shipped in hy3dgen 2.0.2; pos_idx == uv_idx as load_mesh gives)",
        "texture": write_bin("imageops", "vinpaint_texture.bin", tex, np.float32),
        "mask": write_bin("imageops", "vinpaint_mask.bin", vmask, np.uint8),
        "vtx_pos": write_bin("imageops", "vinpaint_vtx_pos.bin", vpos, np.float32),
        "vtx_uv": write_bin("imageops", "vinpaint_vtx_uv.bin", vuv, np.float32),
        "faces": write_bin("imageops", "vinpaint_faces.bin", tris, np.int32),
        "out_texture": write_bin("imageops", "vinpaint_out_texture.bin", new_tex, np.float32),
        "out_mask": write_bin("imageops", "vinpaint_out_mask.bin", new_mask, np.uint8),
        "vertices_colored_before": int(sum(1 for k in range(len(vpos)) if vmask[
            int(round((1.0 - float(vuv[k, 1])) * 31)), int(round(float(vuv[k, 0]) * 31))] > 0)),
    }
    with open(os.path.join(OUT, "imageops.json"), "w") as fh:
        json.dump({"layout": "row-major [height][width](, channel)", **ops}, fh, indent=1)
        fh.write("\n")

    # ---------------------------------------------------------------- bake: back_project + fast merge + inpaint
    # A small end-to-end run of the non-diffusion bake: the reference mesh_uv_wrap (xatlas) on the
    # sphere_cube mesh, a MeshRender with default_resolution 256 (so bake_unreliable_kernel_size =
    # int(2/512 * 256) = 1, a 3x3 window) and texture_size 32, six synthetic 48x48 view images,
    # back_project per view, W = weight * cos^4 (pipelines.py:135, bake_exp 4), fast_bake_texture,
    # then uv_inpaint (meshVerticeInpaint + cv2.inpaint) as texture_inpaint does.
    from PIL import Image

    uvw = importlib.import_module("hy3dgen.texgen.utils.uv_warp_utils")
    bmesh = uvw.mesh_uv_wrap(trimesh.Trimesh(vertices=raw.astype(np.float64), faces=faces, process=False))
    xatlas_uv = np.array(bmesh.visual.uv, dtype=np.float32, copy=True)
    brender = mr.MeshRender(default_resolution=256, texture_size=32, device="cpu")
    # On the CPU set_mesh's torch.from_numpy(uv).float() aliases mesh.visual.uv and flips its v
    # in place (on CUDA `.to(device)` copies); hence the copy above, taken before load_mesh.
    brender.load_mesh(bmesh)
    assert brender.bake_unreliable_kernel_size == 1
    bake = {
        "reference": "uv_warp_utils.mesh_uv_wrap; MeshRender(default_resolution=256, texture_size=32)."
                     "load_mesh; back_project(view_image, elev, azim) per view; W_i = weight_i * cos_i ** 4; "
                     "fast_bake_texture; mask = trust > 1e-8; uv_inpaint(texture, uint8(mask * 255))",
        "default_resolution": 256, "bake_unreliable_kernel_size": 1, "texture_size": 32,
        "image_size": 48, "bake_exp": cfg["bake_exp"],
        "mesh_vertices": write_bin("bake", "mesh_vertices.bin", np.asarray(bmesh.vertices), np.float32),
        "mesh_faces": write_bin("bake", "mesh_faces.bin", np.asarray(bmesh.faces), np.int32),
        "mesh_uv": write_bin("bake", "mesh_uv.bin", xatlas_uv, np.float32),
        "normalized_vertices": write_bin("bake", "normalized_vertices.bin", brender.vtx_pos.numpy(), np.float32),
        "views": [],
    }
    assert np.array_equal(np.asarray(bmesh.vertices).astype(np.float32).astype(np.float64),
                          np.asarray(bmesh.vertices))
    textures, weighted = [], []
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
    for i, (azim, elev, weight) in enumerate(zip(VIEW_AZIMS, VIEW_ELEVS, VIEW_WEIGHTS)):
        arr = np.stack([xx * 5 + 10 * i, yy * 5, 200 - 25 * i + 20 * np.sin((xx + yy) / 6)], -1)
        view_img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
        tex_i, cos_i, _ = brender.back_project(view_img, elev, azim)
        w_i = weight * (cos_i ** cfg["bake_exp"])
        textures.append(tex_i)
        weighted.append(w_i)
        bake["views"].append({
            "index": i, "azimuth_deg": azim, "elevation_deg": elev, "weight": weight,
            "image": write_bin("bake", f"view{i}_image.bin", np.asarray(view_img), np.uint8),
            "texture": write_bin("bake", f"view{i}_texture.bin", tex_i.numpy(), np.float32),
            "cos_map": write_bin("bake", f"view{i}_cos_map.bin", cos_i.numpy(), np.float32),
        })
    merged, trust = brender.fast_bake_texture(textures, weighted)
    mask_np = (trust.squeeze(-1).cpu().numpy() * 255).astype(np.uint8)  # pipelines.py:226
    inpainted = brender.uv_inpaint(merged, mask_np)  # texture_inpaint, pipelines.py:149
    bake["merged_texture"] = write_bin("bake", "merged_texture.bin", merged.numpy(), np.float32)
    bake["merged_mask"] = write_bin("bake", "merged_mask.bin", mask_np, np.uint8)
    bake["final_texture"] = write_bin("bake", "final_texture.bin", inpainted, np.uint8)
    bake["texels_painted"] = int((mask_np > 0).sum())
    with open(os.path.join(OUT, "bake.json"), "w") as fh:
        json.dump(bake, fh, indent=1)
        fh.write("\n")

    total = 0
    for root, _, files in os.walk(OUT):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    print(f"wrote {len(cases)} raster cases, {len(renders)} render views, {len(ops)} image ops, "
          f"bake of {len(bake['views'])} views; "
          f"{total / 1024:.0f} KiB under "
          f"{os.path.relpath(OUT, os.getcwd())}")


if __name__ == "__main__":
    main()
