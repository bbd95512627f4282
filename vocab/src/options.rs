//! The job options' ranges and defaults, in one place: the API validates uploads with them, the
//! CLI validates its arguments with them, and the pipeline checks the options it is handed
//! against the same bounds.

use std::fmt;

use crate::names::named_enum;

named_enum! {
    /// When to segment the foreground instead of trusting the alpha channel.
    #[derive(Default)]
    pub enum BackgroundMode: "background mode" {
        /// Use the alpha channel when it carries real transparency, else segment.
        #[default]
        Auto = "auto",
        /// Always segment (alpha is composited over white first).
        Always = "always",
        /// Never segment: use real alpha if there is some, else the whole image is the object.
        Never = "never",
    }
}

/// A field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}`: {reason}")]
pub struct InvalidOption {
    pub field: &'static str,
    pub reason: String,
}

impl InvalidOption {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        InvalidOption {
            field,
            reason: reason.into(),
        }
    }
}

/// The inclusive range an option must lie in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounds<T> {
    pub field: &'static str,
    pub min: T,
    pub max: T,
}

impl<T: PartialOrd + fmt::Display + Copy> Bounds<T> {
    /// `v` if it lies in the range; NaN never does.
    pub fn check(&self, v: T) -> Result<T, InvalidOption> {
        if v >= self.min && v <= self.max {
            Ok(v)
        } else {
            Err(InvalidOption::new(
                self.field,
                format!("{v} is outside {}..={}", self.min, self.max),
            ))
        }
    }
}

/// Denoising steps.
pub const STEPS: Bounds<u32> = Bounds {
    field: "steps",
    min: 1,
    max: 200,
};
/// Classifier-free guidance scale.
pub const GUIDANCE_SCALE: Bounds<f32> = Bounds {
    field: "guidance_scale",
    min: 0.0,
    max: 100.0,
};
/// Grid resolution of the volume the surface is extracted from.
pub const OCTREE_RESOLUTION: Bounds<u32> = Bounds {
    field: "octree_resolution",
    min: 64,
    max: 512,
};
/// Query points per decoder call.
pub const NUM_CHUNKS: Bounds<u32> = Bounds {
    field: "num_chunks",
    min: 1_000,
    max: 1_000_000,
};
/// Face budget of the decimated mesh (`0`, "keep every face", is read by
/// [`crate::texture::face_budget`] before this range applies).
pub const FACE_COUNT: Bounds<u64> = Bounds {
    field: "face_count",
    min: 100,
    max: 2_000_000,
};
/// Thickness of an `inflate` solid relative to a body of revolution.
pub const INFLATION: Bounds<f32> = Bounds {
    field: "inflation",
    min: 0.05,
    max: 4.0,
};
/// Side of the square base-colour texture a `uv` job bakes, in texels.
pub const TEXTURE_SIZE: Bounds<u32> = Bounds {
    field: "texture_size",
    min: 256,
    max: 4096,
};
/// Scheduling priority among the jobs a worker holds.
pub const PRIORITY: Bounds<u8> = Bounds {
    field: "priority",
    min: 0,
    max: 9,
};

/// Defaults of the options a job may leave out (Hunyuan3D-2's pipeline defaults where it has
/// one; the step count's default is the checkpoint's, see `docs/hunyuan3d.md`).
pub mod defaults {
    use super::BackgroundMode;
    use crate::MeshFormat;

    pub const SEED: u64 = 1234;
    pub const GUIDANCE_SCALE: f32 = 5.0;
    pub const OCTREE_RESOLUTION: u32 = 256;
    pub const NUM_CHUNKS: u32 = 8000;
    pub const INFLATION: f32 = 1.0;
    pub const FORMAT: MeshFormat = MeshFormat::Glb;
    pub const BACKGROUND: BackgroundMode = BackgroundMode::Auto;
    pub const TEXTURE_SIZE: u32 = 1024;
    /// Faces of a job that names no `face_count`: Hunyuan3D-2's `FaceReducer` default.
    pub const FACE_BUDGET: u64 = 40_000;
    pub const PRIORITY: u8 = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_name_the_field_and_refuse_nan() {
        assert_eq!(STEPS.check(200), Ok(200));
        let e = STEPS.check(0).expect_err("below");
        assert_eq!(e.to_string(), "`steps`: 0 is outside 1..=200");
        assert!(GUIDANCE_SCALE.check(f32::NAN).is_err());
        assert!(GUIDANCE_SCALE.check(f32::INFINITY).is_err());
        assert_eq!(BackgroundMode::default(), BackgroundMode::Auto);
    }
}
