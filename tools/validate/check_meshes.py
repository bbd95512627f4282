"""Loads meshes with trimesh and checks they are closed, consistently wound and enclose a
positive volume. Usage: python3 check_meshes.py FILE...  One JSON line per file; exit 1 on failure."""
import json
import sys

import trimesh

failed = False
for path in sys.argv[1:]:
    mesh = trimesh.load(path, force="mesh")
    info = {
        "file": path,
        "vertices": int(len(mesh.vertices)),
        "faces": int(len(mesh.faces)),
        "watertight": bool(mesh.is_watertight),
        "winding_consistent": bool(mesh.is_winding_consistent),
        "volume": float(mesh.volume) if mesh.is_watertight else None,
        "has_vertex_colors": bool(getattr(mesh.visual, "kind", None) == "vertex"),
    }
    ok = info["faces"] > 0 and info["watertight"] and info["winding_consistent"] and info["volume"] > 0
    info["ok"] = ok
    failed |= not ok
    print(json.dumps(info))
sys.exit(1 if failed else 0)
