#!/usr/bin/env python3
"""UV-unwrap quality: xatlas, called exactly as Hunyuan3D-2's texture stage calls it, side by side
with an already-unwrapped OBJ from ORFEAS (the `uvunwrap` crate). The same metrics for both.

Venv (once; numpy, scipy, trimesh, xatlas, all binary wheels):

    python3 -m venv /root/.cache/orfeas/tools/uvq-venv
    /root/.cache/orfeas/tools/uvq-venv/bin/pip install -r bench/uv_quality.requirements.txt

Run (from the repository root; `taskset -c 0` keeps xatlas, which starts one worker thread per
core, on one core, the way BENCHMARKS.md measures everything):

    PY=/root/.cache/orfeas/tools/uvq-venv/bin/python
    $PY bench/uv_quality.py --make-samples /tmp/uvq            # write the sample meshes, then stop
    taskset -c 0 $PY bench/uv_quality.py /tmp/uvq/*.obj --json /tmp/uvq.json
    taskset -c 0 $PY bench/uv_quality.py mesh.glb --ours ours.obj --json out.json
    taskset -c 0 $PY bench/uv_quality.py a.obj b.glb --ours a_uv.obj --ours none
    $PY bench/uv_quality.py --self-test                         # metric sanity checks on the samples

Inputs are OBJ or GLB/GLTF/PLY/STL (anything trimesh loads; a scene is concatenated, as
Hunyuan3D-2's `mesh_uv_wrap` does with `mesh.dump(concatenate=True)`); only the geometry is used
and vertices are welded by position, as a shape-stage mesh arrives. `--ours` is given once per input,
in the same order (`none` skips one); it must be an OBJ with `vt` on every face corner. Its own
`v` lines are the 3D geometry its metrics use (a warning is printed if its face count differs
from the input's). Its time comes from `--ours-time SECONDS` (same pairing) or from a comment line
`# uv_time_s: 0.123` in the OBJ; otherwise it is blank. The OBJ that pipeline/src/export/obj.rs
writes (`v` with extra colour columns, `vt` with v -> 1-v at 6 decimals, `f a/a/a`) reads as is;
the flip and the rounding leave every figure unchanged (checked on xatlas's own output).

The xatlas call: Hunyuan3D-2 (hy3dgen 2.0.2, hy3dgen/texgen/utils/uv_warp_utils.py:26) calls
`xatlas.parametrize(mesh.vertices, mesh.faces)` with no ChartOptions or PackOptions, i.e. the
defaults. In xatlas-python, `parametrize` is `Atlas(); add_mesh(); generate(); get_mesh(0)` with
default-constructed options, which is what this script runs (same output, and it can read the
atlas's own chart count, size and utilization). Its UVs are in [0,1] (divided by atlas width/height).

Metrics (per mesh and method; faces with zero UV area are left out of the stretch, angle, flip and
overlap figures and counted in `degenerate_uv_faces`):
  charts          connected components of faces that share a UV edge (same 3D endpoints and same UVs)
  seam_edges      3D edges cut by the UV layout (an edge split into k UV edges counts k-1)
  l2_stretch      Sander et al. 2001 L2 stretch over the mesh, weighted by 3D area, with the UVs
                  scaled so their total area equals the surface area: 1.0 = isometric, always >= 1
  stretch_p95/max per-triangle L2 stretch sqrt((s1^2+s2^2)/2) of the UV->3D Jacobian, same scaling
                  (a triangle can be < 1: it got more than its share of texture)
  conformal_mean  mean s1/s2 weighted by 3D area (1.0 = angle-preserving); conformal_p95 unweighted
  *_texel         (xatlas only) the same four distortion figures with the UVs scaled to the atlas's
                  own W x H texels. xatlas lays charts out on a W x H atlas, W != H in general, and
                  its [0,1] UVs are u/W, v/H: on a square texture (Hunyuan3D-2 bakes a square one)
                  every chart is squashed by W/H, which the plain figures include and these do not
  uv_area         sum of UV triangle areas / area of [0,1]^2 (packing efficiency; overlaps count twice)
  uv_area_bbox    sum of UV triangle areas / area of the UV bounding box
  texel_coverage  fraction of the RES x RES texel centres inside at least one UV triangle (top-left
                  fill rule, so two triangles sharing an edge never both own a texel)
  overlap_texels  fraction of texels covered by two or more triangles
  overlap_pairs   pairs of UV triangles whose interiors intersect by more than EPS (exact 2D
                  separating-axis test; candidates from a uniform grid); overlap_faces: triangles in any;
                  counting stops after --max-overlaps pairs (shown as >=N, overlap_capped in JSON)
  flipped_faces   triangles whose UV winding is opposite to their chart's (area-weighted) majority;
  mirrored_charts charts whose winding is opposite to the whole layout's majority (harmless for a
                  colour texture, not for tangent-space normal maps; xatlas's default
                  ChartOptions.fix_winding=False leaves such charts); layout_winding: that majority
  outside_faces   faces with a UV corner outside [0,1]^2 (tolerance 1e-6)
  time_s / cpu_s  wall and process CPU time of the unwrap (xatlas: Atlas..get_mesh, median of REPEAT)
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

OUTSIDE_TOL = 1e-6


# ---------------------------------------------------------------------------------------------
# Loading and writing meshes

def load_geometry(path):
    """Vertices (float64) and triangle faces (int64) of any mesh trimesh loads, welded by position."""
    import trimesh
    kw = {"skip_materials": True} if path.lower().endswith(".obj") else {}
    m = trimesh.load(path, process=False, **kw)
    if isinstance(m, trimesh.Scene):
        # every instance with its world transform, as Scene.dump(concatenate=True) does, without
        # copying materials (that would need Pillow for a textured GLB)
        Vs, Fs, n = [], [], 0
        for node in m.graph.nodes_geometry:
            transform, name = m.graph[node]
            g = m.geometry[name]
            if not hasattr(g, "faces") or len(g.faces) == 0:
                continue
            v = np.asarray(g.vertices, dtype=np.float64)
            Vs.append(v @ transform[:3, :3].T + transform[:3, 3])
            Fs.append(np.asarray(g.faces, dtype=np.int64) + n)
            n += len(v)
        if not Fs:
            raise ValueError(f"{path}: no triangles")
        V, Fc = np.concatenate(Vs), np.concatenate(Fs)
    else:
        V, Fc = np.asarray(m.vertices, dtype=np.float64), np.asarray(m.faces, dtype=np.int64)
    welded = trimesh.Trimesh(vertices=V, faces=Fc, process=True)
    return np.asarray(welded.vertices, dtype=np.float64), np.asarray(welded.faces, dtype=np.int64)


def read_obj_uv(path):
    """Per-corner positions (F,3,3) and UVs (F,3,2) of an OBJ with vt on every face corner.
    Polygons are fan-triangulated; negative (relative) indices are honoured. Also returns the value
    of a `# uv_time_s: X` comment, or None."""
    vs, vts, fv, ft = [], [], [], []
    t_comment = None
    with open(path, "r", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line or line[0] not in "vf#":
                continue
            parts = line.split()
            if not parts:
                continue
            tag = parts[0]
            if tag == "v":
                vs.append((float(parts[1]), float(parts[2]), float(parts[3])))
            elif tag == "vt":
                vts.append((float(parts[1]), float(parts[2]) if len(parts) > 2 else 0.0))
            elif tag == "f":
                idx_v, idx_t = [], []
                for c in parts[1:]:
                    s = c.split("/")
                    iv = int(s[0])
                    if len(s) < 2 or s[1] == "":
                        raise ValueError(f"{path}: face corner '{c}' has no vt index")
                    it = int(s[1])
                    idx_v.append(iv - 1 if iv > 0 else len(vs) + iv)
                    idx_t.append(it - 1 if it > 0 else len(vts) + it)
                for k in range(1, len(idx_v) - 1):
                    fv.append((idx_v[0], idx_v[k], idx_v[k + 1]))
                    ft.append((idx_t[0], idx_t[k], idx_t[k + 1]))
            elif tag.startswith("#") and "uv_time_s" in line:
                try:
                    t_comment = float(line.split("uv_time_s", 1)[1].lstrip(" :=").split()[0])
                except (ValueError, IndexError):
                    pass
    if not fv:
        raise ValueError(f"{path}: no faces")
    V = np.asarray(vs, dtype=np.float64)
    T = np.asarray(vts, dtype=np.float64)
    fv = np.asarray(fv, dtype=np.int64)
    ft = np.asarray(ft, dtype=np.int64)
    return V[fv], T[ft], t_comment


def _fmt_rows(a, prefix, fmt):
    return "\n".join(prefix + " " + " ".join(fmt % x for x in row) for row in a)


def write_obj(path, vertices, faces, uvs=None, uv_faces=None, comment=None):
    """OBJ with 1-based indices; with uvs, faces are v/vt (uv_faces defaults to faces)."""
    out = []
    if comment:
        out.append("# " + comment)
    out.append(_fmt_rows(np.asarray(vertices, dtype=np.float64), "v", "%.9g"))
    if uvs is not None:
        out.append(_fmt_rows(np.asarray(uvs, dtype=np.float64), "vt", "%.9g"))
        uf = faces if uv_faces is None else uv_faces
        out.append("\n".join("f %d/%d %d/%d %d/%d" % (a + 1, p + 1, b + 1, q + 1, c + 1, r + 1)
                             for (a, b, c), (p, q, r) in zip(np.asarray(faces), np.asarray(uf))))
    else:
        out.append(_fmt_rows(np.asarray(faces) + 1, "f", "%d"))
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")


# ---------------------------------------------------------------------------------------------
# xatlas, as Hunyuan3D-2 calls it

def run_xatlas(vertices, faces, repeat=1):
    import xatlas
    times, cpus = [], []
    res = None
    for _ in range(max(1, repeat)):
        t0, c0 = time.perf_counter(), time.process_time()
        # == xatlas.parametrize(mesh.vertices, mesh.faces): default ChartOptions and PackOptions
        atlas = xatlas.Atlas()
        atlas.add_mesh(vertices, faces)
        atlas.generate()
        vmapping, indices, uvs = atlas.get_mesh(0)
        times.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        res = (atlas, vmapping, indices, uvs)
    atlas, vmapping, indices, uvs = res
    extra = {
        "xatlas_charts": int(atlas.chart_count),
        "atlas_size": [int(atlas.width), int(atlas.height)],
        "atlas_count": int(atlas.atlas_count),
        "xatlas_utilization": float(np.mean(atlas.utilization)),  # a float, or one per atlas page
        "texels_per_unit": float(atlas.texels_per_unit),
        "time_s": float(np.median(times)),
        "cpu_s": float(np.median(cpus)),
    }
    v_new = vertices[np.asarray(vmapping, dtype=np.int64)]
    indices = np.asarray(indices, dtype=np.int64)
    uvs = np.asarray(uvs, dtype=np.float64)
    return v_new, indices, uvs, extra


# ---------------------------------------------------------------------------------------------
# Metrics

def _row_ids(a):
    """Integer id per row of a 2D float array; equal rows (bitwise, after -0.0 -> 0.0) share an id."""
    a = np.ascontiguousarray(a + 0.0)
    view = a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1])))
    _, inv = np.unique(view.ravel(), return_inverse=True)
    return inv.ravel()


def _components(n, a, b):
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    g = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(g, directed=False)


def _charts_and_seams(pos, uv):
    F = len(pos)
    corner_pos = _row_ids(pos.reshape(-1, 3)).reshape(F, 3)
    corner_uv = _row_ids(np.concatenate([pos.reshape(-1, 3), uv.reshape(-1, 2)], axis=1)).reshape(F, 3)
    ea = np.stack([corner_uv, np.roll(corner_uv, -1, axis=1)], axis=2).reshape(-1, 2)
    ea.sort(axis=1)
    euv = _row_ids(ea.astype(np.float64))
    # link every face to the first face holding the same UV edge
    face_of = np.repeat(np.arange(F), 3)
    rep = np.empty(euv.max() + 1, dtype=np.int64)
    rep[euv] = face_of  # one face per UV edge (whichever is written last): the edge's representative
    ncomp, labels = _components(F, face_of, rep[euv])
    # seams: distinct UV edges per 3D edge, minus one
    e3 = np.stack([corner_pos, np.roll(corner_pos, -1, axis=1)], axis=2).reshape(-1, 2)
    e3.sort(axis=1)
    e3id = _row_ids(e3.astype(np.float64))
    n3 = e3id.max() + 1
    pair = np.unique(np.stack([e3id, euv], axis=1), axis=0)
    uv_edges_per_3d = np.bincount(pair[:, 0], minlength=n3)
    seams = int(np.sum(uv_edges_per_3d - 1))
    return int(ncomp), labels, seams


def _sat_overlap(A, B, eps):
    """Interiors of triangles A[i] and B[i] (each (m,3,2)) intersect by more than eps along every
    edge normal of both (separating-axis theorem: two convex polygons with disjoint interiors have a
    weakly separating line parallel to one of their edges)."""
    ea = np.roll(A, -1, axis=1) - A
    eb = np.roll(B, -1, axis=1) - B
    ax = np.concatenate([ea, eb], axis=1)[..., ::-1] * np.array([-1.0, 1.0])
    ln = np.linalg.norm(ax, axis=2, keepdims=True)
    ax = ax / np.where(ln > 0, ln, 1.0)
    pa = np.einsum("mkd,mjd->mkj", ax, A)
    pb = np.einsum("mkd,mjd->mkj", ax, B)
    ov = np.minimum(pa.max(2), pb.max(2)) - np.maximum(pa.min(2), pb.min(2))
    ov = np.where(ln[..., 0] > 0, ov, np.inf)  # a zero-length edge separates nothing
    return np.all(ov > eps, axis=1)


def _overlap_pairs(T, eps, max_found=1_000_000, max_pairs_chunk=1_000_000):
    """Pairs (i, j), i < j, of 2D triangles T (n,3,2) whose interiors overlap by more than eps, and
    whether the search stopped early after finding max_found of them (e.g. every triangle stacked
    on one spot, n^2/2 pairs)."""
    n = len(T)
    nfound = 0
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64), False
    lo, hi = T.min(axis=1), T.max(axis=1)
    origin = lo.min(axis=0)
    extent = float(max((hi.max(axis=0) - origin).max(), 1e-300))
    size = np.maximum(hi - lo, 0).max(axis=1)
    cell = max(2.0 * float(np.median(size)), extent / 2048.0, 1e-300)
    c0 = np.floor((lo - origin) / cell).astype(np.int64)
    c1 = np.floor((hi - origin) / cell).astype(np.int64)
    ncx = int(c1[:, 0].max()) + 1
    nx = c1[:, 0] - c0[:, 0] + 1
    ny = c1[:, 1] - c0[:, 1] + 1
    cnt = nx * ny
    tri = np.repeat(np.arange(n), cnt)
    local = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    cx = c0[tri, 0] + local % nx[tri]
    cy = c0[tri, 1] + local // nx[tri]
    cid = cy * ncx + cx
    order = np.lexsort((tri, cid))
    tri, cid = tri[order], cid[order]
    starts = np.r_[0, np.nonzero(np.diff(cid))[0] + 1]
    gsize = np.diff(np.r_[starts, len(cid)])
    gstart = np.repeat(starts, gsize)
    pos_in = np.arange(len(cid)) - gstart
    npart = np.repeat(gsize, gsize) - pos_in - 1  # partners after this entry in its cell
    cum = np.cumsum(npart)
    total = int(cum[-1]) if len(cum) else 0
    found = []
    e0 = 0
    while e0 < len(cid) and total > 0:
        base = int(cum[e0 - 1]) if e0 > 0 else 0
        e1 = int(np.searchsorted(cum, base + max_pairs_chunk, side="right"))
        e1 = max(e1, e0 + 1)
        k = npart[e0:e1]
        ent = np.repeat(np.arange(e0, e1), k)
        off = np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k)
        a = tri[ent]
        b = tri[ent + 1 + off]
        c = cid[ent]
        # bounding boxes must overlap by more than eps; report each pair only in the cell that
        # holds the lower-left corner of the boxes' intersection
        ilo = np.maximum(lo[a], lo[b])
        ihi = np.minimum(hi[a], hi[b])
        keep = np.all(ihi - ilo > eps, axis=1)
        icell = np.floor((ilo - origin) / cell).astype(np.int64)
        keep &= (icell[:, 1] * ncx + icell[:, 0]) == c
        a, b = a[keep], b[keep]
        if len(a):
            hit = _sat_overlap(T[a], T[b], eps)
            if hit.any():
                p = np.stack([a[hit], b[hit]], axis=1)
                p.sort(axis=1)
                found.append(p)
                nfound += len(p)
        e0 = e1
        if nfound >= max_found:
            break
    capped = nfound >= max_found and e0 < len(cid)
    if not found:
        return np.zeros((0, 2), dtype=np.int64), False
    return np.unique(np.concatenate(found), axis=0), capped


def _rasterize_counts(T, res, max_candidates=4_000_000):
    """How many triangles of T (n,3,2, UV units) cover each texel centre of a res x res grid over
    [0,1]^2 (top-left rule). Returns a flat int array of res*res."""
    counts = np.zeros(res * res, dtype=np.int64)
    if len(T) == 0:
        return counts
    P = T * res  # texel units; texel (i, j) has its centre at (i + 0.5, j + 0.5)
    s = (P[:, 1, 0] - P[:, 0, 0]) * (P[:, 2, 1] - P[:, 0, 1]) - (P[:, 2, 0] - P[:, 0, 0]) * (P[:, 1, 1] - P[:, 0, 1])
    P = np.where((s < 0)[:, None, None], P[:, [0, 2, 1]], P)  # all counter-clockwise
    lo, hi = P.min(axis=1), P.max(axis=1)
    i0 = np.clip(np.ceil(lo[:, 0] - 0.5), 0, res).astype(np.int64)
    i1 = np.clip(np.floor(hi[:, 0] - 0.5), -1, res - 1).astype(np.int64)
    j0 = np.clip(np.ceil(lo[:, 1] - 0.5), 0, res).astype(np.int64)
    j1 = np.clip(np.floor(hi[:, 1] - 0.5), -1, res - 1).astype(np.int64)
    nx = np.maximum(i1 - i0 + 1, 0)
    ny = np.maximum(j1 - j0 + 1, 0)
    cnt = nx * ny
    E0 = P
    E1 = np.roll(P, -1, axis=1)
    d = E1 - E0  # edge vectors (n,3,2)
    # top-left rule for counter-clockwise triangles, y up: left edges go down, top edges go left
    tl = (d[..., 1] < 0) | ((d[..., 1] == 0) & (d[..., 0] < 0))
    # evaluate each edge function from its lexicographically smaller endpoint, so the two triangles
    # sharing an edge get exactly opposite values and a texel centre on it is owned exactly once
    rev = (E0[..., 0] > E1[..., 0]) | ((E0[..., 0] == E1[..., 0]) & (E0[..., 1] > E1[..., 1]))
    base_pt = np.where(rev[..., None], E1, E0)
    d = np.where(rev[..., None], -d, d)
    sgn = np.where(rev, -1.0, 1.0)
    cum = np.cumsum(cnt)
    t0 = 0
    n = len(P)
    while t0 < n:
        base = int(cum[t0 - 1]) if t0 > 0 else 0
        t1 = max(int(np.searchsorted(cum, base + max_candidates, side="right")), t0 + 1)
        c = cnt[t0:t1]
        tot = int(c.sum())
        if tot:
            ti = np.repeat(np.arange(t0, t1), c)
            local = np.arange(tot) - np.repeat(np.cumsum(c) - c, c)
            px = i0[ti] + local % nx[ti]
            py = j0[ti] + local // nx[ti]
            cxp = px + 0.5
            cyp = py + 0.5
            inside = np.ones(tot, dtype=bool)
            for e in range(3):
                w = sgn[ti, e] * (d[ti, e, 0] * (cyp - base_pt[ti, e, 1]) - d[ti, e, 1] * (cxp - base_pt[ti, e, 0]))
                inside &= (w > 0) | ((w == 0) & tl[ti, e])
            counts += np.bincount(py[inside] * res + px[inside], minlength=res * res)
        t0 = t1
    return counts


DISTORTION_KEYS = ("l2_stretch", "stretch_p95", "stretch_max", "conformal_mean", "conformal_p95")


def _distortion(e1, e2, a3, d1, d2, det, ok):
    """Sander et al. 2001 stretch and the conformal ratio from 3D edges e1, e2, 3D areas a3, UV
    edges d1, d2 and 2 x signed UV areas det, over the faces where ok."""
    # Jacobian of the UV -> 3D map: columns Ss (d/ds) and St (d/dt); s1 >= s2 its singular values
    dd = np.where(ok, det, 1.0)[:, None]
    Ss = (e1 * d2[:, 1:2] - e2 * d1[:, 1:2]) / dd
    St = (e2 * d1[:, 0:1] - e1 * d2[:, 0:1]) / dd
    a = np.einsum("ij,ij->i", Ss, Ss)
    b = np.einsum("ij,ij->i", Ss, St)
    c = np.einsum("ij,ij->i", St, St)
    root = np.sqrt((a - c) ** 2 + 4 * b * b)
    s1 = np.sqrt(np.maximum((a + c + root) / 2, 0))
    s2 = np.sqrt(np.maximum((a + c - root) / 2, 0))
    A3, AUV = float(a3[ok].sum()), float(0.5 * np.abs(det[ok]).sum())
    if not (A3 > 0 and AUV > 0):
        return {k: None for k in DISTORTION_KEYS}
    k = math.sqrt(AUV / A3)  # scale so that UV area == surface area
    l2_tri = np.sqrt((a + c) / 2)[ok] * k
    w = a3[ok]
    conf = s1[ok] / np.maximum(s2[ok], 1e-300)
    return {
        "l2_stretch": float(math.sqrt(np.sum(w * l2_tri ** 2) / A3)),
        "stretch_p95": float(np.percentile(l2_tri, 95)),
        "stretch_max": float(l2_tri.max()),
        "conformal_mean": float(np.sum(w * conf) / A3),
        "conformal_p95": float(np.percentile(conf, 95)),
    }


def uv_metrics(pos, uv, res=1024, eps=1e-6, max_overlaps=1_000_000, texel_size=None):
    """All metrics for per-corner positions pos (F,3,3) and UVs uv (F,3,2). With texel_size
    (W, H), the distortion figures are also given for UVs scaled to W x H (suffix _texel)."""
    pos = np.asarray(pos, dtype=np.float64)
    uv = np.asarray(uv, dtype=np.float64)
    F = len(pos)
    e1, e2 = pos[:, 1] - pos[:, 0], pos[:, 2] - pos[:, 0]
    a3 = 0.5 * np.linalg.norm(np.cross(e1, e2), axis=1)
    d1, d2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    det = d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0]  # 2 x signed UV area
    auv = 0.5 * np.abs(det)
    uvlo, uvhi = uv.reshape(-1, 2).min(axis=0), uv.reshape(-1, 2).max(axis=0)
    diag = float(np.linalg.norm(uvhi - uvlo))
    mean_auv = float(auv.mean()) if F else 0.0
    degen_uv = auv <= 1e-9 * mean_auv if mean_auv > 0 else np.ones(F, dtype=bool)
    degen_3d = a3 <= 1e-12 * float(a3.mean()) if F and a3.mean() > 0 else np.ones(F, dtype=bool)
    ok = ~degen_uv & ~degen_3d

    out = {"faces": int(F)}
    out.update(_distortion(e1, e2, a3, d1, d2, det, ok))
    if texel_size is not None:
        sc = np.asarray(texel_size, dtype=np.float64)
        t = _distortion(e1, e2, a3, d1 * sc, d2 * sc, det * sc[0] * sc[1], ok)
        out.update({k + "_texel": v for k, v in t.items()})

    charts, labels, seams = _charts_and_seams(pos, uv)
    # winding: per chart, the majority (by UV area) wins; the rest are flipped
    sgn = np.sign(det) * ok
    chart_sign = np.bincount(labels, weights=0.5 * det * ok, minlength=charts)
    chart_dir = np.where(chart_sign >= 0, 1.0, -1.0)
    flipped = int(np.sum((sgn != 0) & (sgn != chart_dir[labels])))
    # charts against the layout's majority winding (so a v -> 1-v flip on export changes nothing)
    major = 1.0 if chart_sign.sum() >= 0 else -1.0
    mirrored = int(np.sum(chart_dir != major))

    idx = np.nonzero(~degen_uv)[0]
    eps_abs = eps * max(diag, 1e-300)
    pairs, capped = _overlap_pairs(uv[idx], eps_abs, max_overlaps)
    pairs = idx[pairs]
    counts = _rasterize_counts(uv[idx], res)
    outside = (uv < -OUTSIDE_TOL) | (uv > 1 + OUTSIDE_TOL)
    bbox_area = float(np.prod(uvhi - uvlo))
    out.update({
        "charts": charts,
        "seam_edges": seams,
        "uv_area": float(auv.sum()),
        "uv_area_bbox": float(auv.sum() / bbox_area) if bbox_area > 0 else None,
        "texel_coverage": float(np.count_nonzero(counts) / counts.size),
        "overlap_texels": float(np.count_nonzero(counts >= 2) / counts.size),
        "overlap_pairs": int(len(pairs)),
        "overlap_faces": int(len(np.unique(pairs))),
        "overlap_capped": capped,  # True: counting stopped at max_overlaps pairs (a lower bound)
        "flipped_faces": flipped,
        "mirrored_charts": mirrored,
        "layout_winding": "ccw" if major > 0 else "cw",
        "degenerate_uv_faces": int(np.sum(degen_uv & ~degen_3d)),
        "outside_faces": int(np.sum(outside.any(axis=(1, 2)))),
        "uv_bbox": [float(uvlo[0]), float(uvlo[1]), float(uvhi[0]), float(uvhi[1])],
        "surface_area": float(a3.sum()),
    })
    return out


# ---------------------------------------------------------------------------------------------
# Sample meshes

def _grid_faces(nu, nv, wrap_u=False, wrap_v=False):
    """Triangles of an (nu+1) x (nv+1) vertex grid (or nu x nv when wrapped), index i*(nv')+j."""
    mu = nu if wrap_u else nu + 1
    mv = nv if wrap_v else nv + 1
    f = []
    for i in range(nu):
        for j in range(nv):
            a = i * mv + j
            b = ((i + 1) % mu) * mv + j
            c = ((i + 1) % mu) * mv + (j + 1) % mv
            d = i * mv + (j + 1) % mv
            f += [(a, b, c), (a, c, d)]
    return np.asarray(f, dtype=np.int64)


def _outward(V, Fc):
    """Flip all faces if the mesh's signed volume is negative."""
    v = np.einsum("ij,ij->i", V[Fc[:, 0]], np.cross(V[Fc[:, 1]], V[Fc[:, 2]])).sum()
    return Fc[:, ::-1].copy() if v < 0 else Fc


def _weld(V, Fc):
    import trimesh
    m = trimesh.Trimesh(vertices=V, faces=Fc, process=True)
    return np.asarray(m.vertices), np.asarray(m.faces, dtype=np.int64)


def make_icosphere(subdiv=3):
    import trimesh
    m = trimesh.creation.icosphere(subdivisions=subdiv, radius=1.0)
    return np.asarray(m.vertices), np.asarray(m.faces, dtype=np.int64)


def make_torus(R=1.0, r=0.4, nu=48, nv=24):
    u = np.arange(nu) / nu * 2 * np.pi
    v = np.arange(nv) / nv * 2 * np.pi
    U, Vv = np.meshgrid(u, v, indexing="ij")
    V = np.stack([(R + r * np.cos(Vv)) * np.cos(U), (R + r * np.cos(Vv)) * np.sin(U), r * np.sin(Vv)], -1).reshape(-1, 3)
    return V, _outward(V, _grid_faces(nu, nv, True, True))


def _cube_grid(n):
    """Six n x n grids on the faces of [-1,1]^3 (unwelded vertices, exact shared coordinates)."""
    t = np.linspace(-1.0, 1.0, n + 1)
    A, B = np.meshgrid(t, t, indexing="ij")
    A, B = A.ravel(), B.ravel()
    one = np.ones_like(A)
    Vs, Fs = [], []
    g = _grid_faces(n, n)
    for axis in range(3):
        for s in (-1.0, 1.0):
            P = np.zeros((len(A), 3))
            P[:, axis] = s * one
            P[:, (axis + 1) % 3] = A
            P[:, (axis + 2) % 3] = B
            Fs.append(g + sum(len(x) for x in Vs))
            Vs.append(P)
    V = np.concatenate(Vs)
    return V, np.concatenate(Fs)


def make_cube(n=8):
    V, Fc = _weld(*_cube_grid(n))
    return V, _outward(V, Fc)


def make_bumpy(n=58):
    """Cube-sphere (6*2*58^2 = 40,368 faces, about Hunyuan3D-2's 40k face budget) displaced radially."""
    V, Fc = _weld(*_cube_grid(n))
    V = V / np.linalg.norm(V, axis=1, keepdims=True)
    x, y, z = V[:, 0], V[:, 1], V[:, 2]
    r = (1.0 + 0.10 * np.sin(5 * x + 1) * np.sin(4 * y) * np.sin(3 * z + 2)
         + 0.04 * np.sin(13 * x) * np.cos(11 * y + 1) * np.sin(9 * z)
         + 0.015 * np.sin(29 * x + 2 * y) * np.cos(23 * z - y))
    V = V * r[:, None]
    return V, _outward(V, Fc)


def make_cube_cross_uv():
    """Unit cube with a hand-made cross-shaped net (one chart, isometric up to scale): per-corner
    positions and UVs. Expected: 1 chart, L2 stretch 1, conformal 1, 0 overlaps, uv_area 6/16."""
    def pos(u, v):
        if 1 <= v <= 2:  # the strip around the cube: front, right, back, left
            y = v - 1
            if u <= 1:
                return (u, y, 1)
            if u <= 2:
                return (1, y, 1 - (u - 1))
            if u <= 3:
                return (1 - (u - 2), y, 0)
            return (0, y, u - 3)
        if v > 2:  # top, above the front
            return (u, 1, 1 - (v - 2))
        return (u, 0, v)  # bottom, below the front
    squares = [(u, 1) for u in range(4)] + [(0, 2), (0, 0)]
    P, T = [], []
    for (u, v) in squares:
        q = [(u, v), (u + 1, v), (u + 1, v + 1), (u, v + 1)]
        for tri in ((0, 1, 2), (0, 2, 3)):
            T.append([q[i] for i in tri])
            P.append([pos(*q[i]) for i in tri])
    P = np.asarray(P, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64) / 4.0
    # orient outward in 3D (the net keeps a consistent UV winding either way)
    vol = np.einsum("ij,ij->i", P[:, 0] - 0.5, np.cross(P[:, 1] - 0.5, P[:, 2] - 0.5)).sum()
    if vol < 0:
        P, T = P[:, [0, 2, 1]], T[:, [0, 2, 1]]
    return P, T


def make_torus_param_uv(R=1.0, r=0.4, nu=48, nv=24):
    """Torus with its (theta, phi)/2pi parametrisation as UV (seams duplicated): 1 chart, no
    overlap; analytic L2 stretch sqrt((R^2 + 2.5 r^2) / (2 R r)) = 1.3229, conformal mean (area
    weighted) (R^2 + r^2/2) / (R r) = 2.7 for R=1, r=0.4."""
    iu, iv = np.meshgrid(np.arange(nu + 1), np.arange(nv + 1), indexing="ij")
    U, Vv = iu / nu * 2 * np.pi, iv / nv * 2 * np.pi
    V = np.stack([(R + r * np.cos(Vv)) * np.cos(U), (R + r * np.cos(Vv)) * np.sin(U), r * np.sin(Vv)], -1).reshape(-1, 3)
    # snap the seam copies to the exact same coordinates as their twins
    V = V.reshape(nu + 1, nv + 1, 3)
    V[nu] = V[0]
    V[:, nv] = V[:, 0]
    V = V.reshape(-1, 3)
    UV = np.stack([iu / nu, iv / nv], -1).reshape(-1, 2).astype(np.float64)
    Fc = _grid_faces(nu, nv)
    return V, Fc, UV


def planar_uv(V):
    """Orthographic projection along z, fitted into [0,1]^2 (overlaps front and back)."""
    xy = V[:, :2]
    lo, hi = xy.min(0), xy.max(0)
    return (xy - lo) / (hi - lo).max()


SAMPLES = ("icosphere", "torus", "cube", "bumpy40k")


def make_samples(d):
    os.makedirs(d, exist_ok=True)
    written = []
    gen = {"icosphere": make_icosphere, "torus": make_torus, "cube": make_cube, "bumpy40k": make_bumpy}
    for name in SAMPLES:
        V, Fc = gen[name]()
        p = os.path.join(d, name + ".obj")
        write_obj(p, V, Fc, comment=f"uv_quality sample {name}: {len(Fc)} faces, no UV")
        written.append(p)
    V, Fc = make_icosphere()
    p = os.path.join(d, "uv_icosphere_planar.obj")
    write_obj(p, V, Fc, uvs=planar_uv(V), comment="icosphere, UV = planar projection along z (overlaps)")
    written.append(p)
    P, T = make_cube_cross_uv()
    p = os.path.join(d, "uv_cube_cross.obj")
    write_obj(p, P.reshape(-1, 3), np.arange(len(P) * 3).reshape(-1, 3), uvs=T.reshape(-1, 2),
              comment="unit cube, cross net UV (1 chart, isometric)")
    written.append(p)
    V, Fc, UV = make_torus_param_uv()
    p = os.path.join(d, "uv_torus_param.obj")
    write_obj(p, V, Fc, uvs=UV, comment="torus, UV = (theta, phi) / 2pi")
    written.append(p)
    return written


# ---------------------------------------------------------------------------------------------
# Report

ROWS = [
    ("faces", "faces", "d"), ("charts", "charts", "d"), ("xatlas_charts", "  (xatlas's own count)", "d"),
    ("seam_edges", "seam edges", "d"),
    ("l2_stretch", "L2 stretch (1 = none)", ".4f"), ("stretch_p95", "stretch p95", ".4f"),
    ("stretch_max", "stretch max", ".4f"), ("conformal_mean", "conformal s1/s2 mean", ".4f"),
    ("conformal_p95", "conformal s1/s2 p95", ".4f"),
    ("l2_stretch_texel", "  L2 stretch, W x H atlas", ".4f"),
    ("conformal_mean_texel", "  conformal, W x H atlas", ".4f"),
    ("uv_area", "UV area / unit square", ".4f"), ("uv_area_bbox", "UV area / UV bbox", ".4f"),
    ("texel_coverage", "texel coverage @RES", ".4f"), ("xatlas_utilization", "  (xatlas utilization)", ".4f"),
    ("overlap_texels", "texels covered 2+ times", ".5f"),
    ("overlap_pairs", "overlapping pairs", "pairs"), ("overlap_faces", "overlapping faces", "d"),
    ("flipped_faces", "flipped faces", "d"), ("mirrored_charts", "mirrored charts", "d"),
    ("layout_winding", "  (layout winding)", "s"),
    ("degenerate_uv_faces", "zero-area UV faces", "d"), ("outside_faces", "faces outside [0,1]^2", "d"),
    ("atlas_size", "atlas size", "s"), ("time_s", "time (s)", ".3f"), ("cpu_s", "CPU time (s)", ".3f"),
]


def _cell(v, fmt, col):
    if v is None:
        return "-"
    if fmt == "pairs":
        return f">={v}" if col.get("overlap_capped") else str(v)
    if fmt == "s":
        return "x".join(str(x) for x in v) if isinstance(v, list) else str(v)
    return format(v, fmt)


def print_table(entry, res):
    cols = [(name, entry[name]) for name in ("xatlas", "ours") if entry.get(name) is not None]
    print(f"\n== {entry['input']}  ({entry['input_faces']} faces, {entry['input_vertices']} vertices)")
    if entry.get("ours_path"):
        print(f"   ours: {entry['ours_path']}")
    w = 26
    print(" " * w + "".join(f"{name:>14}" for name, _ in cols))
    for key, label, fmt in ROWS:
        vals = [c.get(key) for _, c in cols]
        if all(v is None for v in vals):
            continue
        print(f"{label.replace('RES', str(res)):<{w}}"
              + "".join(f"{_cell(v, fmt, c):>14}" for v, (_, c) in zip(vals, cols)))


def evaluate(path, ours=None, ours_time=None, res=1024, eps=1e-6, repeat=1, save_dir=None, no_xatlas=False,
             max_overlaps=1_000_000):
    V, Fc = load_geometry(path)
    entry = {"input": path, "input_faces": int(len(Fc)), "input_vertices": int(len(V))}
    if not no_xatlas:
        vx, fx, uvx, extra = run_xatlas(V, Fc, repeat)
        m = uv_metrics(vx[fx], uvx[fx], res, eps, max_overlaps, texel_size=extra["atlas_size"])
        m.update(extra)
        entry["xatlas"] = m
        if save_dir:
            os.makedirs(save_dir, exist_ok=True)
            stem = os.path.splitext(os.path.basename(path))[0]
            sp = os.path.join(save_dir, stem + ".xatlas.obj")
            write_obj(sp, vx, fx, uvs=uvx, comment=f"uv_time_s: {extra['time_s']:.6f} (xatlas defaults)")
            entry["xatlas_obj"] = sp
    if ours:
        P, T, t_comment = read_obj_uv(ours)
        m = uv_metrics(P, T, res, eps, max_overlaps)
        t = ours_time if ours_time is not None else t_comment
        m["time_s"] = t
        entry["ours"] = m
        entry["ours_path"] = ours
        if len(P) != len(Fc):
            print(f"warning: {ours} has {len(P)} faces, {path} has {len(Fc)}", file=sys.stderr)
    return entry


# ---------------------------------------------------------------------------------------------
# Self-test: the metrics on meshes whose answers are known

def self_test(res=512):
    results = []

    def check(name, cond, detail=""):
        results.append(bool(cond))
        print(f"{'ok  ' if cond else 'FAIL'} {name} {detail}")

    # flat 10x10 grid, UV = xy scaled: isometric
    iu, iv = np.meshgrid(np.arange(11), np.arange(11), indexing="ij")
    V = np.stack([iu, iv, np.zeros_like(iu)], -1).reshape(-1, 3).astype(np.float64) * 0.37
    Fc = _grid_faces(10, 10)
    UV = V[:, :2] / V[:, :2].max()
    m = uv_metrics(V[Fc], UV[Fc], res)
    check("flat grid: L2 stretch 1, conformal 1, 1 chart, 0 overlaps, 0 flipped",
          abs(m["l2_stretch"] - 1) < 1e-9 and abs(m["conformal_mean"] - 1) < 1e-9 and m["charts"] == 1
          and m["overlap_pairs"] == 0 and m["flipped_faces"] == 0 and m["seam_edges"] == 0,
          f"(L2 {m['l2_stretch']:.6f}, conf {m['conformal_mean']:.6f}, charts {m['charts']}, overlaps {m['overlap_pairs']})")
    check("flat grid: texel coverage 1 (fills [0,1]^2), overlap texels 0",
          abs(m["texel_coverage"] - 1) < 1e-12 and m["overlap_texels"] == 0 and abs(m["uv_area"] - 1) < 1e-9,
          f"({m['texel_coverage']:.6f}, {m['overlap_texels']})")
    # anisotropic scaling: u doubled -> s1/s2 = 2 everywhere, L2 = sqrt((2 + 1/2)/2)
    m2 = uv_metrics(V[Fc], (UV * [1.0, 0.5])[Fc], res)
    check("flat grid, UV squashed 2:1: conformal 2, L2 sqrt(1.25)",
          abs(m2["conformal_mean"] - 2) < 1e-9 and abs(m2["l2_stretch"] - math.sqrt(1.25)) < 1e-9,
          f"(conf {m2['conformal_mean']:.6f}, L2 {m2['l2_stretch']:.6f})")
    # drag one interior UV vertex across its neighbours: a fold
    UVf = UV.copy()
    vi = 5 * 11 + 5
    UVf[vi] += [0.25, 0.0]
    m3 = uv_metrics(V[Fc], UVf[Fc], res)
    check("folded grid: flipped > 0, overlaps > 0, overlap texels > 0",
          m3["flipped_faces"] > 0 and m3["overlap_pairs"] > 0 and m3["overlap_texels"] > 0,
          f"(flipped {m3['flipped_faces']}, pairs {m3['overlap_pairs']}, texels {m3['overlap_texels']:.5f})")
    # n identical stacked triangles: exactly n(n-1)/2 overlapping pairs; the cap stops early
    tri = np.array([[[0.1, 0.1], [0.3, 0.1], [0.1, 0.3]]])
    Ps = np.tile(np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0]]], dtype=np.float64), (100, 1, 1))
    ms = uv_metrics(Ps, np.tile(tri, (100, 1, 1)), res)
    pc, capped = _overlap_pairs(np.tile(tri, (100, 1, 1)), 1e-6, max_found=500, max_pairs_chunk=1000)
    check("100 stacked triangles: 4950 pairs; stopping after 500 says capped",
          ms["overlap_pairs"] == 4950 and not ms["overlap_capped"] and capped and 500 <= len(pc) < 4950,
          f"({ms['overlap_pairs']}, capped at {len(pc)})")
    # two triangles touching at one vertex, and sharing an edge: no overlap
    P2 = np.tile(np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0]]], dtype=np.float64), (2, 1, 1))
    touch = np.array([[[0.1, 0.1], [0.3, 0.1], [0.1, 0.3]], [[0.3, 0.1], [0.5, 0.1], [0.5, 0.3]]])
    edge = np.array([[[0.1, 0.1], [0.3, 0.1], [0.1, 0.3]], [[0.3, 0.1], [0.3, 0.3], [0.1, 0.3]]])
    nudge = edge.copy()
    nudge[1, :, 0] -= 0.01
    check("touching at a vertex / sharing an edge: 0 overlaps; shifted 0.01 over: 1",
          uv_metrics(P2, touch, res)["overlap_pairs"] == 0 and uv_metrics(P2, edge, res)["overlap_pairs"] == 0
          and uv_metrics(P2, nudge, res)["overlap_pairs"] == 1)
    # mirror the whole layout: a mirrored chart, not flipped faces
    m4 = uv_metrics(V[Fc], (UV * [-1.0, 1.0] + [1.0, 0.0])[Fc], res)
    check("mirrored grid: layout winding cw, 0 mirrored charts, 0 flipped",
          m4["layout_winding"] == "cw" and m4["mirrored_charts"] == 0 and m4["flipped_faces"] == 0)
    Pm = np.concatenate([V[Fc], V[Fc] + [0, 0, 5.0]])
    Um = np.concatenate([(UV * 0.4)[Fc], (UV * [-0.4, 0.4] + [1.0, 0.5])[Fc]])
    m5 = uv_metrics(Pm, Um, res)
    check("two charts, one mirrored: 2 charts, 1 mirrored, 0 flipped, 0 overlaps",
          m5["charts"] == 2 and m5["mirrored_charts"] == 1 and m5["flipped_faces"] == 0 and m5["overlap_pairs"] == 0,
          f"(charts {m5['charts']}, mirrored {m5['mirrored_charts']})")

    P, T = make_cube_cross_uv()
    m = uv_metrics(P, T, res)
    check("cube cross net: 1 chart, L2 1, conformal 1, 0 overlaps, uv_area 0.375, 7 seam edges",
          m["charts"] == 1 and abs(m["l2_stretch"] - 1) < 1e-9 and abs(m["conformal_mean"] - 1) < 1e-9
          and m["overlap_pairs"] == 0 and abs(m["uv_area"] - 0.375) < 1e-12 and m["seam_edges"] == 7,
          f"(charts {m['charts']}, L2 {m['l2_stretch']:.6f}, overlaps {m['overlap_pairs']}, seams {m['seam_edges']})")
    check("cube cross net: texel coverage 0.375", abs(m["texel_coverage"] - 0.375) < 2.0 / res,
          f"({m['texel_coverage']:.5f})")

    V, Fc, UV = make_torus_param_uv(nu=96, nv=48)
    m = uv_metrics(V[Fc], UV[Fc], res)
    l2_exact, conf_exact = math.sqrt((1 + 2.5 * 0.16) / (2 * 0.4)), (1 + 0.08) / 0.4
    check("torus (theta, phi) UV: 1 chart, 0 overlaps, L2 and conformal near analytic",
          m["charts"] == 1 and m["overlap_pairs"] == 0 and abs(m["l2_stretch"] / l2_exact - 1) < 0.01
          and abs(m["conformal_mean"] / conf_exact - 1) < 0.01 and m["flipped_faces"] == 0,
          f"(L2 {m['l2_stretch']:.4f} vs {l2_exact:.4f}, conf {m['conformal_mean']:.4f} vs {conf_exact:.4f})")

    V, Fc = make_icosphere()
    m = uv_metrics(V[Fc], planar_uv(V)[Fc], res)
    check("icosphere, planar UV: overlaps > 0 (front over back), flipped ~ half",
          m["overlap_pairs"] > len(Fc) // 4 and abs(m["flipped_faces"] - len(Fc) / 2) < len(Fc) * 0.1,
          f"(pairs {m['overlap_pairs']}, faces {m['overlap_faces']}/{len(Fc)}, flipped {m['flipped_faces']})")

    with tempfile.TemporaryDirectory() as d:
        make_samples(d)
        for name in SAMPLES:
            p = os.path.join(d, name + ".obj")
            e = evaluate(p, res=res, save_dir=d)
            x = e["xatlas"]
            check(f"xatlas on {name}: 0 overlaps, 0 flipped, 0 outside, L2 < 1.25, charts == xatlas's",
                  x["overlap_pairs"] == 0 and x["flipped_faces"] == 0 and x["outside_faces"] == 0
                  and x["l2_stretch"] < 1.25 and x["charts"] == x["xatlas_charts"],
                  f"(charts {x['charts']}/{x['xatlas_charts']}, L2 {x['l2_stretch']:.4f}, "
                  f"pairs {x['overlap_pairs']}, {x['time_s']:.2f} s)")
            # the OBJ reader path (as used for --ours) gives the same figures as in memory
            P, T, t = read_obj_uv(e["xatlas_obj"])
            r = uv_metrics(P, T, res)
            same = all((x[k] == r[k]) if isinstance(r[k], int) else abs(x[k] - r[k]) < 1e-5
                       for k in ("charts", "seam_edges", "overlap_pairs", "flipped_faces", "l2_stretch",
                                 "conformal_mean", "texel_coverage"))
            check(f"xatlas on {name}, written and read back as --ours: same metrics", same and t is not None)
            if name == "cube":
                check("xatlas on cube: planar charts isometric in atlas texel space (L2, conformal 1)",
                      abs(x["l2_stretch_texel"] - 1) < 1e-3 and abs(x["conformal_mean_texel"] - 1) < 1e-3,
                      f"(L2 {x['l2_stretch_texel']:.5f}, conf {x['conformal_mean_texel']:.5f}; in [0,1]: "
                      f"conf {x['conformal_mean']:.4f} = atlas {x['atlas_size'][0]}x{x['atlas_size'][1]})")
        # GLB input through trimesh gives the same mesh
        import trimesh
        V, Fc = make_torus()
        g = os.path.join(d, "torus.glb")
        trimesh.Trimesh(V, Fc, process=False).export(g)
        Vg, Fg = load_geometry(g)
        check("GLB input loads to the same face count", len(Fg) == len(Fc) and len(Vg) == len(V))
    failed = results.count(False)
    print(f"{results.count(True)} passed, {failed} failed")
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("meshes", nargs="*", help="input meshes (OBJ, GLB, ...); geometry only")
    ap.add_argument("--ours", action="append", default=[],
                    help="unwrapped OBJ (vt per corner) paired with the input in the same position; 'none' skips")
    ap.add_argument("--ours-time", action="append", type=float, default=[],
                    help="seconds our unwrap took, paired like --ours")
    ap.add_argument("--json", help="write all figures to this JSON file")
    ap.add_argument("--res", type=int, default=1024, help="texel grid for coverage (default 1024)")
    ap.add_argument("--eps", type=float, default=1e-6,
                    help="overlap tolerance, relative to the UV bounding-box diagonal (default 1e-6)")
    ap.add_argument("--max-overlaps", type=int, default=1_000_000,
                    help="stop counting overlapping pairs after this many (reported as capped)")
    ap.add_argument("--repeat", type=int, default=1, help="run xatlas this many times, report the median")
    ap.add_argument("--save-xatlas", metavar="DIR", help="also write xatlas's result as DIR/<name>.xatlas.obj")
    ap.add_argument("--no-xatlas", action="store_true", help="only measure --ours")
    ap.add_argument("--make-samples", metavar="DIR", help="write the sample meshes to DIR (and stop if no input)")
    ap.add_argument("--self-test", action="store_true", help="check the metrics on known cases and exit")
    args = ap.parse_args(argv)

    if args.self_test:
        return self_test()
    if args.make_samples:
        for p in make_samples(args.make_samples):
            print(p)
        if not args.meshes:
            return 0
    if not args.meshes:
        ap.error("no input mesh")
    if args.ours and len(args.ours) != len(args.meshes):
        ap.error(f"{len(args.ours)} --ours for {len(args.meshes)} inputs: give one per input ('none' to skip)")
    if args.ours_time and len(args.ours_time) != len(args.meshes):
        ap.error("give one --ours-time per input")

    import xatlas
    report = {
        "tool": "bench/uv_quality.py",
        "xatlas_version": getattr(xatlas, "__version__", None),
        "xatlas_call": "xatlas.parametrize(vertices, faces): default ChartOptions and PackOptions "
                       "(Hunyuan3D-2 hy3dgen/texgen/utils/uv_warp_utils.py:26)",
        "res": args.res, "eps": args.eps, "repeat": args.repeat, "max_overlaps": args.max_overlaps,
        "meshes": [],
    }
    for i, path in enumerate(args.meshes):
        ours = args.ours[i] if args.ours else None
        if ours is not None and ours.lower() == "none":
            ours = None
        t = args.ours_time[i] if args.ours_time else None
        entry = evaluate(path, ours, t, args.res, args.eps, args.repeat, args.save_xatlas, args.no_xatlas,
                         args.max_overlaps)
        report["meshes"].append(entry)
        print_table(entry, args.res)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
