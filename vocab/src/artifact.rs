//! What a job can produce: meshes in four formats, and the other files a job stores beside them
//! (today the segmentation cut-out). Every artifact is stored, listed and downloaded the same
//! way: `outputs/{job}/{file_name}`, `GET /api/jobs/{id}/outputs/{artifact}`.

use crate::names::named_enum;

named_enum! {
    /// A mesh file format.
    pub enum MeshFormat: "mesh format" {
        /// glTF 2.0 binary.
        Glb = "glb",
        /// Wavefront OBJ: vertex colours, or UVs and a material naming its texture.
        Obj = "obj",
        /// Binary STL.
        Stl = "stl",
        /// Binary PLY with colours.
        Ply = "ply",
    }
}

impl MeshFormat {
    /// The file extension (the format's name).
    pub const fn extension(self) -> &'static str {
        self.as_str()
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

named_enum! {
    /// A file a job stores for its client. Meshes share their format's name, so a job's
    /// outputs list reads `["glb", "stl", "cutout"]`.
    pub enum Artifact: "artifact" {
        Glb = "glb",
        Obj = "obj",
        Stl = "stl",
        Ply = "ply",
        /// An OBJ's material library (names the texture), stored beside a UV-textured OBJ.
        Mtl = "mtl",
        /// The base-colour texture an OBJ's material names, as a PNG (a GLB embeds its own).
        Texture = "texture",
        /// The preprocessed input: the object cut out of its background and recentred, as an
        /// RGBA PNG (what the shape engine saw).
        Cutout = "cutout",
    }
}

#[cfg(feature = "sqlx")]
crate::names::sql_name!(text Artifact);

impl Artifact {
    /// The mesh format, for mesh artifacts.
    pub const fn mesh_format(self) -> Option<MeshFormat> {
        match self {
            Artifact::Glb => Some(MeshFormat::Glb),
            Artifact::Obj => Some(MeshFormat::Obj),
            Artifact::Stl => Some(MeshFormat::Stl),
            Artifact::Ply => Some(MeshFormat::Ply),
            Artifact::Mtl | Artifact::Texture | Artifact::Cutout => None,
        }
    }

    pub const fn extension(self) -> &'static str {
        match self {
            Artifact::Mtl => "mtl",
            _ => match self.mesh_format() {
                Some(f) => f.extension(),
                None => "png",
            },
        }
    }

    pub const fn content_type(self) -> &'static str {
        match self {
            Artifact::Mtl => "model/mtl",
            _ => match self.mesh_format() {
                Some(f) => f.content_type(),
                None => "image/png",
            },
        }
    }

    /// The name a client saves the file under, for a job or image named `base`: meshes and the
    /// material `{base}.{extension}`, images `{base}.{artifact}.png`. An OBJ names its material
    /// and the material its texture by these names, so the three files work side by side.
    pub fn download_name(self, base: &str) -> String {
        match self {
            Artifact::Texture | Artifact::Cutout => format!("{base}.{self}.png"),
            _ => format!("{base}.{}", self.extension()),
        }
    }

    /// The file's name inside the job's output folder: `mesh.glb`, …, `cutout.png`.
    pub const fn file_name(self) -> &'static str {
        match self {
            Artifact::Glb => "mesh.glb",
            Artifact::Obj => "mesh.obj",
            Artifact::Stl => "mesh.stl",
            Artifact::Ply => "mesh.ply",
            Artifact::Mtl => "mesh.mtl",
            Artifact::Texture => "texture.png",
            Artifact::Cutout => "cutout.png",
        }
    }
}

impl From<MeshFormat> for Artifact {
    fn from(f: MeshFormat) -> Self {
        match f {
            MeshFormat::Glb => Artifact::Glb,
            MeshFormat::Obj => Artifact::Obj,
            MeshFormat::Stl => Artifact::Stl,
            MeshFormat::Ply => Artifact::Ply,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesh_artifacts_mirror_their_formats() {
        for f in MeshFormat::ALL {
            let a = Artifact::from(f);
            assert_eq!(a.as_str(), f.as_str());
            assert_eq!(a.mesh_format(), Some(f));
            assert_eq!(a.content_type(), f.content_type());
            assert_eq!(a.file_name(), format!("mesh.{}", f.extension()));
        }
        assert_eq!(Artifact::Cutout.mesh_format(), None);
        assert_eq!(Artifact::Cutout.file_name(), "cutout.png");
        assert_eq!(Artifact::Cutout.content_type(), "image/png");
        assert_eq!(Artifact::Mtl.download_name("job"), "job.mtl");
        assert_eq!(Artifact::Texture.download_name("job"), "job.texture.png");
        assert_eq!(Artifact::Obj.download_name("job"), "job.obj");
        assert_eq!("GLB".parse::<MeshFormat>(), Ok(MeshFormat::Glb));
        assert!(
            "fbx"
                .parse::<MeshFormat>()
                .expect_err("unknown")
                .to_string()
                .contains("glb, obj, stl, ply")
        );
    }
}
