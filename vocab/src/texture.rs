//! How `texture_synthesis` colours a mesh, and the two ways a client may say it: today's names
//! (`none`, `vertex`, `uv`, `paint`) and the boolean of the first API (`true` is the default `uv`,
//! `false` is `none`), which stored specs and old clients still carry.

use serde::{Deserialize, Deserializer};

use crate::names::named_enum;
use crate::options::InvalidOption;

named_enum! {
    /// What `texture_synthesis` produces.
    #[derive(Default)]
    pub enum TextureMode: "texture mode" {
        /// No colour: the mesh's geometry only.
        None = "none",
        /// sRGB colours per vertex, projected from the image (detail limited by vertex density).
        Vertex = "vertex",
        /// A UV atlas and a baked base-colour texture (GLB material, OBJ + MTL + PNG); PLY gets
        /// vertex colours sampled from it.
        #[default]
        Uv = "uv",
        /// A UV texture baked from six views that Hunyuan3D-Paint's diffusion models generate
        /// (delight, then multiview diffusion): the back and sides are painted, not mirrored.
        /// Runs where a deployment has the models (`api.texture_modes`, `worker.paint_weights`).
        Paint = "paint",
    }
}

impl TextureMode {
    /// Whether the mesh is coloured at all.
    pub const fn colours(self) -> bool {
        !matches!(self, TextureMode::None)
    }

    /// Whether the result carries a UV atlas and a texture image.
    pub const fn textured(self) -> bool {
        matches!(self, TextureMode::Uv | TextureMode::Paint)
    }
}

impl From<bool> for TextureMode {
    /// The first API's boolean: `true` colours the mesh the default way.
    fn from(on: bool) -> Self {
        if on {
            TextureMode::default()
        } else {
            TextureMode::None
        }
    }
}

/// The `texture` option as a client sends it: a name or the old boolean.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum TextureInput {
    Flag(bool),
    Name(String),
}

impl TextureInput {
    pub fn parse(&self) -> Result<TextureMode, InvalidOption> {
        match self {
            TextureInput::Flag(on) => Ok(TextureMode::from(*on)),
            TextureInput::Name(name) => name
                .parse()
                .map_err(|e: crate::UnknownName| InvalidOption::new("texture", e.to_string())),
        }
    }
}

/// Reads a stored spec's `texture`, written as a boolean before the modes existed.
pub(crate) fn deserialize_mode<'de, D: Deserializer<'de>>(d: D) -> Result<TextureMode, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Flag(bool),
        Mode(TextureMode),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Flag(on) => TextureMode::from(on),
        Stored::Mode(m) => m,
    })
}

/// The face budget a job asks for, in the one place it is decided: absent means the default
/// budget (the detail lives in the texture, so a browser-sized mesh is the sensible default),
/// `0` keeps every face, anything else must lie in [`crate::options::FACE_COUNT`].
pub fn face_budget(requested: Option<u64>) -> Result<Option<u64>, InvalidOption> {
    match requested {
        None => Ok(Some(crate::options::defaults::FACE_BUDGET)),
        Some(0) => Ok(None),
        Some(n) => crate::options::FACE_COUNT.check(n).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_the_old_boolean_both_parse() {
        assert_eq!(TextureInput::Flag(true).parse(), Ok(TextureMode::Uv));
        assert_eq!(TextureInput::Flag(false).parse(), Ok(TextureMode::None));
        assert_eq!(
            TextureInput::Name("Vertex".into()).parse(),
            Ok(TextureMode::Vertex)
        );
        assert_eq!(
            TextureInput::Name("paint".into()).parse(),
            Ok(TextureMode::Paint)
        );
        assert!(TextureMode::Paint.textured() && !TextureMode::Vertex.textured());
        let e = TextureInput::Name("photo".into())
            .parse()
            .expect_err("unknown");
        assert_eq!(e.field, "texture");
        assert!(e.reason.contains("none, vertex, uv, paint"), "{e}");
        let parsed: TextureInput = serde_json::from_str("\"uv\"").expect("json");
        assert_eq!(parsed.parse(), Ok(TextureMode::Uv));
        let parsed: TextureInput = serde_json::from_str("false").expect("json");
        assert_eq!(parsed.parse(), Ok(TextureMode::None));
    }

    #[test]
    fn the_face_budget_rule() {
        assert_eq!(face_budget(None), Ok(Some(40_000)));
        assert_eq!(face_budget(Some(0)), Ok(None));
        assert_eq!(face_budget(Some(5_000)), Ok(Some(5_000)));
        assert_eq!(face_budget(Some(3)).expect_err("tiny").field, "face_count");
    }
}
