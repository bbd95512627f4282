//! Binary little-endian PLY with vertex normals and colours.

use crate::mesh::Mesh;

pub(super) fn write(mesh: &Mesh) -> Vec<u8> {
    let normals = mesh.vertex_normals();
    let colors = mesh.colors.as_ref();
    let mut header = format!(
        "ply\nformat binary_little_endian 1.0\ncomment ORFEAS mesh\nelement vertex {}\n\
         property float x\nproperty float y\nproperty float z\n\
         property float nx\nproperty float ny\nproperty float nz\n",
        mesh.positions.len()
    );
    if colors.is_some() {
        header.push_str("property uchar red\nproperty uchar green\nproperty uchar blue\n");
    }
    header.push_str(&format!(
        "element face {}\nproperty list uchar int vertex_indices\nend_header\n",
        mesh.triangles.len()
    ));
    let mut out = header.into_bytes();
    out.reserve(mesh.positions.len() * 27 + mesh.triangles.len() * 13);
    for (i, (p, n)) in mesh.positions.iter().zip(&normals).enumerate() {
        for v in p.iter().chain(n) {
            out.extend(v.to_le_bytes());
        }
        if let Some(c) = colors {
            out.extend(c[i]);
        }
    }
    for t in &mesh.triangles {
        out.push(3);
        for &i in t {
            out.extend((i as i32).to_le_bytes());
        }
    }
    out
}
