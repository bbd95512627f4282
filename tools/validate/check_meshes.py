"""Loads meshes with trimesh and checks they are closed, consistently wound and enclose a
positive volume. Usage: python3 check_meshes.py FILE...  One JSON line per file; exit 1 on failure.

A UV-textured mesh has its vertices split along chart seams (one position, several texture
coordinates); the surface is judged after welding vertices by position, as a renderer sees it."""
import json
import sys

import trimesh

failed = False
for path in sys.argv[1:]:
    mesh = trimesh.load(path, force="mesh")
    textured = bool(getattr(mesh.visual, "kind", None) == "texture")
    if textured:
        mesh.merge_vertices(merge_tex=True, merge_norm=True)
    info = {
        "file": path,
        "vertices": int(len(mesh.vertices)),
        "faces": int(len(mesh.faces)),
        "watertight": bool(mesh.is_watertight),
        "winding_consistent": bool(mesh.is_winding_consistent),
        "volume": float(mesh.volume) if mesh.is_watertight else None,
        "has_vertex_colors": bool(getattr(mesh.visual, "kind", None) == "vertex"),
        "has_texture": textured,
    }
    ok = info["faces"] > 0 and info["watertight"] and info["winding_consistent"] and info["volume"] > 0
    info["ok"] = ok
    failed |= not ok
    print(json.dumps(info))
sys.exit(1 if failed else 0)
