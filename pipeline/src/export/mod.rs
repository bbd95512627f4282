//! `mesh_export`: GLB (glTF 2.0 binary), OBJ, binary STL and binary PLY.

mod glb;
mod obj;
mod ply;
mod stl;

use std::fmt;
use std::str::FromStr;

use crate::error::ExportError;
use crate::mesh::Mesh;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum MeshFormat {
    Glb,
    Obj,
    Stl,
    Ply,
}

impl MeshFormat {
    pub const ALL: [MeshFormat; 4] = [
        MeshFormat::Glb,
        MeshFormat::Obj,
        MeshFormat::Stl,
        MeshFormat::Ply,
    ];

    pub const fn extension(self) -> &'static str {
        match self {
            MeshFormat::Glb => "glb",
            MeshFormat::Obj => "obj",
            MeshFormat::Stl => "stl",
            MeshFormat::Ply => "ply",
        }
    }

    pub const fn content_type(self) -> &'static str {
        match self {
            MeshFormat::Glb => "model/gltf-binary",
            MeshFormat::Obj => "model/obj",
            MeshFormat::Stl => "model/stl",
            MeshFormat::Ply => "application/x-ply",
        }
    }
}

impl fmt::Display for MeshFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for MeshFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        MeshFormat::ALL
            .into_iter()
            .find(|f| f.extension() == lower)
            .ok_or_else(|| format!("unknown mesh format `{s}` (expected glb, obj, stl or ply)"))
    }
}

/// Encodes the mesh. Vertex colours (sRGB) are written where the format carries them.
pub fn export_mesh(mesh: &Mesh, format: MeshFormat) -> Result<Vec<u8>, ExportError> {
    if mesh.is_empty() {
        return Err(ExportError::EmptyMesh);
    }
    match format {
        MeshFormat::Glb => glb::write(mesh),
        MeshFormat::Obj => Ok(obj::write(mesh)),
        MeshFormat::Stl => stl::write(mesh),
        MeshFormat::Ply => Ok(ply::write(mesh)),
    }
}
