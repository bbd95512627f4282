//! Wavefront OBJ with normals and either per-vertex colours (`v x y z r g b`, the extension
//! MeshLab, Blender and trimesh read) or, for a UV-textured mesh, texture coordinates and a
//! material library naming the texture. The three files of a textured OBJ name each other by the
//! names [`Artifact::download_name`] gives them, so they work side by side once downloaded.

use std::fmt::Write;

use orfeas_vocab::Artifact;

use crate::mesh::Mesh;

/// The material's name inside the MTL file.
const MATERIAL: &str = "orfeas_texture";

pub(super) fn write(mesh: &Mesh, name: &str) -> Vec<u8> {
    let normals = mesh.vertex_normals();
    let uvs = mesh.uvs.as_ref().filter(|_| mesh.texture.is_some());
    let mut s = String::with_capacity(mesh.positions.len() * 110 + mesh.triangles.len() * 40);
    s.push_str("# ORFEAS mesh\n");
    if uvs.is_some() {
        let _ = writeln!(s, "mtllib {}", Artifact::Mtl.download_name(name));
    }
    for (i, p) in mesh.positions.iter().enumerate() {
        match (&mesh.colors, uvs) {
            (Some(c), None) => {
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
            _ => {
                let _ = writeln!(s, "v {} {} {}", p[0], p[1], p[2]);
            }
        }
    }
    if let Some(uvs) = uvs {
        // OBJ's v grows upward from the image's bottom row; the mesh's from its top row.
        for uv in uvs {
            let _ = writeln!(s, "vt {:.6} {:.6}", uv[0], 1.0 - uv[1]);
        }
    }
    for n in &normals {
        let _ = writeln!(s, "vn {:.5} {:.5} {:.5}", n[0], n[1], n[2]);
    }
    if uvs.is_some() {
        let _ = writeln!(s, "usemtl {MATERIAL}");
    }
    for t in &mesh.triangles {
        let (a, b, c) = (t[0] + 1, t[1] + 1, t[2] + 1);
        if uvs.is_some() {
            let _ = writeln!(s, "f {a}/{a}/{a} {b}/{b}/{b} {c}/{c}/{c}");
        } else {
            let _ = writeln!(s, "f {a}//{a} {b}//{b} {c}//{c}");
        }
    }
    s.into_bytes()
}

/// The material library of a textured OBJ: a matte material whose diffuse map is the texture.
pub(super) fn material(name: &str) -> Vec<u8> {
    format!(
        "# ORFEAS material\nnewmtl {MATERIAL}\nKa 0 0 0\nKd 1 1 1\nKs 0 0 0\nd 1\nillum 1\nmap_Kd {}\n",
        Artifact::Texture.download_name(name)
    )
    .into_bytes()
}
