//! Binary STL (no colours: the format has no standard way to carry them).

use orfeas_vocab::MeshFormat;

use crate::error::ExportError;
use crate::mesh::Mesh;

pub(super) fn write(mesh: &Mesh) -> Result<Vec<u8>, ExportError> {
    let count = u32::try_from(mesh.triangles.len()).map_err(|_| ExportError::TooLarge {
        format: MeshFormat::Stl,
        detail: "more than 2^32 triangles".into(),
    })?;
    let mut out = Vec::with_capacity(84 + mesh.triangles.len() * 50);
    let mut header = [0u8; 80];
    let tag = b"ORFEAS binary STL";
    header[..tag.len()].copy_from_slice(tag);
    out.extend(header);
    out.extend(count.to_le_bytes());
    for t in &mesh.triangles {
        let n = mesh.face_normal(t);
        let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt().max(1e-30);
        for v in n {
            out.extend(((v / len) as f32).to_le_bytes());
        }
        for &i in t {
            for v in mesh.positions[i as usize] {
                out.extend(v.to_le_bytes());
            }
        }
        out.extend(0u16.to_le_bytes());
    }
    Ok(out)
}
