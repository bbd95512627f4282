//! Wavefront OBJ with per-vertex colours (`v x y z r g b`, the extension MeshLab, Blender and
//! trimesh read) and normals.

use std::fmt::Write;

use crate::mesh::Mesh;

pub(super) fn write(mesh: &Mesh) -> Vec<u8> {
    let normals = mesh.vertex_normals();
    let mut s = String::with_capacity(mesh.positions.len() * 80 + mesh.triangles.len() * 40);
    s.push_str("# ORFEAS mesh\n");
    for (i, p) in mesh.positions.iter().enumerate() {
        match &mesh.colors {
            Some(c) => {
                let c = c[i];
                let _ = writeln!(
                    s,
                    "v {} {} {} {:.4} {:.4} {:.4}",
                    p[0],
                    p[1],
                    p[2],
                    f32::from(c[0]) / 255.0,
                    f32::from(c[1]) / 255.0,
                    f32::from(c[2]) / 255.0
                );
            }
            None => {
                let _ = writeln!(s, "v {} {} {}", p[0], p[1], p[2]);
            }
        }
    }
    for n in &normals {
        let _ = writeln!(s, "vn {:.5} {:.5} {:.5}", n[0], n[1], n[2]);
    }
    for t in &mesh.triangles {
        let (a, b, c) = (t[0] + 1, t[1] + 1, t[2] + 1);
        let _ = writeln!(s, "f {a}//{a} {b}//{b} {c}//{c}");
    }
    s.into_bytes()
}
