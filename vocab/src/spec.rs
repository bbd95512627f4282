//! Job options as clients send them, and the validated job specification parsed from them at
//! the edge (the API's upload, the CLI's arguments).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::options::{self, InvalidOption, defaults};
use crate::texture::{TextureInput, TextureMode, deserialize_mode, face_budget};
use crate::{Artifact, BackgroundMode, Engine, MeshFormat, Webhook};

/// Job options as a client sends them (the `options` part of `POST /api/jobs`), before
/// validation. Every field is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobOptionsInput {
    /// `inflate` (default) or `hunyuan3d` (where the deployment enables it).
    pub engine: Option<String>,
    /// Noise seed (default 1234).
    pub seed: Option<u64>,
    /// Denoising steps, 1–200. Default: the checkpoint's own (50 for v2-0 and mini, 30 for the
    /// guidance-distilled "fast" models, 5 for "turbo").
    pub steps: Option<u32>,
    /// Classifier-free guidance, 0–100 (default 5.0).
    pub guidance_scale: Option<f32>,
    /// Volume grid resolution, 64–512 (default 256).
    pub octree_resolution: Option<u32>,
    /// Query points per decoder call, 1000–1000000 (default 8000).
    pub num_chunks: Option<u32>,
    /// Reduce the mesh to at most this many faces, 100–2000000; `0` keeps every face (default
    /// 40000, Hunyuan3D-2's face reducer's).
    pub face_count: Option<u64>,
    /// Any of glb, obj, stl, ply (default ["glb"]).
    pub formats: Option<Vec<String>>,
    /// auto, always or never (default auto).
    pub remove_background: Option<String>,
    /// How to colour the mesh from the image: `uv` (default: a UV atlas with a baked texture),
    /// `vertex` (vertex colours) or `none`; `true` and `false` mean `uv` and `none`.
    pub texture: Option<TextureInput>,
    /// Side of the baked texture in texels, 256–4096 (default 1024; `uv` only).
    pub texture_size: Option<u32>,
    /// `inflate`: thickness relative to a body of revolution, 0.05–4 (default 1).
    pub inflation: Option<f32>,
    /// Also store the preprocessed cut-out (RGBA PNG) as the artifact `cutout` (default false).
    pub cutout: Option<bool>,
    /// 0 (default) to 9; higher runs first among the jobs a worker holds.
    pub priority: Option<u8>,
    /// RFC 3339 time after which the job should not start; it then fails with `deadline_exceeded`.
    pub deadline: Option<String>,
    /// An http(s) URL that receives the job's events as signed webhooks (Standard Webhooks).
    pub webhook: Option<String>,
    /// Which events the webhook receives: any of `started`, `progress`, `completed` (default:
    /// all three).
    pub webhook_events: Option<Vec<String>>,
}

fn default_inflation() -> f32 {
    defaults::INFLATION
}

fn default_texture_size() -> u32 {
    defaults::TEXTURE_SIZE
}

/// Validated job options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobSpec {
    pub engine: Engine,
    pub seed: u64,
    /// `null`: the checkpoint's default step count.
    pub steps: Option<u32>,
    pub guidance_scale: f32,
    pub octree_resolution: u32,
    pub num_chunks: u32,
    /// `null`: every face the shape engine made.
    pub face_count: Option<u64>,
    pub formats: Vec<MeshFormat>,
    pub remove_background: BackgroundMode,
    /// Stored specs from before the modes existed carry a boolean here.
    #[serde(deserialize_with = "deserialize_mode")]
    pub texture: TextureMode,
    #[serde(default = "default_texture_size")]
    pub texture_size: u32,
    #[serde(default = "default_inflation")]
    pub inflation: f32,
    #[serde(default)]
    pub cutout: bool,
    pub priority: u8,
    pub deadline: Option<DateTime<Utc>>,
    /// Where the job's events are sent, and which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

impl Default for JobSpec {
    fn default() -> Self {
        JobSpec {
            engine: Engine::Inflate,
            seed: defaults::SEED,
            steps: None,
            guidance_scale: defaults::GUIDANCE_SCALE,
            octree_resolution: defaults::OCTREE_RESOLUTION,
            num_chunks: defaults::NUM_CHUNKS,
            face_count: Some(defaults::FACE_BUDGET),
            formats: vec![defaults::FORMAT],
            remove_background: defaults::BACKGROUND,
            texture: TextureMode::default(),
            texture_size: defaults::TEXTURE_SIZE,
            inflation: defaults::INFLATION,
            cutout: false,
            priority: defaults::PRIORITY,
            deadline: None,
            webhook: None,
        }
    }
}

impl JobSpec {
    /// The spec with its formats sorted and deduplicated, once every option is checked against
    /// its range: the one validation of a spec, whether it came from an upload or the CLI.
    pub fn validated(mut self) -> Result<JobSpec, InvalidOption> {
        if self.formats.is_empty() {
            return Err(InvalidOption::new(
                "formats",
                "must name at least one format",
            ));
        }
        self.formats.sort();
        self.formats.dedup();
        if let Some(steps) = self.steps {
            options::STEPS.check(steps)?;
        }
        options::GUIDANCE_SCALE.check(self.guidance_scale)?;
        options::OCTREE_RESOLUTION.check(self.octree_resolution)?;
        options::NUM_CHUNKS.check(self.num_chunks)?;
        if let Some(faces) = self.face_count {
            options::FACE_COUNT.check(faces)?;
        }
        options::TEXTURE_SIZE.check(self.texture_size)?;
        options::INFLATION.check(self.inflation)?;
        options::PRIORITY.check(self.priority)?;
        Ok(self)
    }

    /// The files a successful run stores: the meshes in their formats, an OBJ's material and
    /// texture beside it when the mesh is UV-textured, then the cut-out if asked.
    pub fn artifacts(&self) -> Vec<Artifact> {
        let mut out: Vec<Artifact> = self.formats.iter().map(|&f| f.into()).collect();
        if self.texture.textured() && self.formats.contains(&MeshFormat::Obj) {
            out.extend([Artifact::Mtl, Artifact::Texture]);
        }
        if self.cutout {
            out.push(Artifact::Cutout);
        }
        out
    }
}

impl JobOptionsInput {
    /// Validates every field; the first invalid one is reported by name.
    pub fn validate(self, now: DateTime<Utc>) -> Result<JobSpec, InvalidOption> {
        let engine = match self.engine.as_deref() {
            None => Engine::Inflate,
            Some(e) => e
                .parse()
                .map_err(|e: crate::UnknownName| InvalidOption::new("engine", e.to_string()))?,
        };
        let formats = match self.formats {
            None => vec![defaults::FORMAT],
            Some(list) => list
                .iter()
                .map(|f| {
                    f.parse::<MeshFormat>()
                        .map_err(|e| InvalidOption::new("formats", e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        let remove_background = match self.remove_background.as_deref() {
            None => defaults::BACKGROUND,
            Some(s) => s.parse().map_err(|e: crate::UnknownName| {
                InvalidOption::new("remove_background", e.to_string())
            })?,
        };
        let deadline = match self.deadline.as_deref() {
            None => None,
            Some(s) => {
                let t = DateTime::parse_from_rfc3339(s)
                    .map_err(|e| {
                        InvalidOption::new("deadline", format!("not an RFC 3339 time: {e}"))
                    })?
                    .with_timezone(&Utc);
                if t <= now {
                    return Err(InvalidOption::new("deadline", "is in the past"));
                }
                Some(t)
            }
        };
        let webhook = match self.webhook.as_deref() {
            None => {
                if self.webhook_events.is_some() {
                    return Err(InvalidOption::new(
                        "webhook_events",
                        "needs a `webhook` URL to send them to",
                    ));
                }
                None
            }
            Some(url) => Some(Webhook::parse(url, self.webhook_events.as_deref())?),
        };
        JobSpec {
            engine,
            seed: self.seed.unwrap_or(defaults::SEED),
            steps: self.steps,
            guidance_scale: self.guidance_scale.unwrap_or(defaults::GUIDANCE_SCALE),
            octree_resolution: self
                .octree_resolution
                .unwrap_or(defaults::OCTREE_RESOLUTION),
            num_chunks: self.num_chunks.unwrap_or(defaults::NUM_CHUNKS),
            face_count: face_budget(self.face_count)?,
            formats,
            remove_background,
            texture: match &self.texture {
                None => TextureMode::default(),
                Some(t) => t.parse()?,
            },
            texture_size: self.texture_size.unwrap_or(defaults::TEXTURE_SIZE),
            inflation: self.inflation.unwrap_or(defaults::INFLATION),
            cutout: self.cutout.unwrap_or(false),
            priority: self.priority.unwrap_or(defaults::PRIORITY),
            deadline,
            webhook,
        }
        .validated()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    #[test]
    fn defaults_are_the_spec_default() {
        let spec = JobOptionsInput::default().validate(now()).expect("valid");
        assert_eq!(spec, JobSpec::default());
        assert_eq!(spec.engine, Engine::Inflate);
        assert_eq!(spec.formats, vec![MeshFormat::Glb]);
        assert_eq!(spec.steps, None, "the checkpoint decides");
        assert_eq!(spec.artifacts(), vec![Artifact::Glb]);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(&str, JobOptionsInput)> = vec![
            (
                "engine",
                JobOptionsInput {
                    engine: Some("magic".into()),
                    ..Default::default()
                },
            ),
            (
                "steps",
                JobOptionsInput {
                    steps: Some(0),
                    ..Default::default()
                },
            ),
            (
                "guidance_scale",
                JobOptionsInput {
                    guidance_scale: Some(f32::NAN),
                    ..Default::default()
                },
            ),
            (
                "octree_resolution",
                JobOptionsInput {
                    octree_resolution: Some(1024),
                    ..Default::default()
                },
            ),
            (
                "num_chunks",
                JobOptionsInput {
                    num_chunks: Some(5),
                    ..Default::default()
                },
            ),
            (
                "face_count",
                JobOptionsInput {
                    face_count: Some(3),
                    ..Default::default()
                },
            ),
            (
                "formats",
                JobOptionsInput {
                    formats: Some(vec!["fbx".into()]),
                    ..Default::default()
                },
            ),
            (
                "formats",
                JobOptionsInput {
                    formats: Some(vec![]),
                    ..Default::default()
                },
            ),
            (
                "remove_background",
                JobOptionsInput {
                    remove_background: Some("maybe".into()),
                    ..Default::default()
                },
            ),
            (
                "texture",
                JobOptionsInput {
                    texture: Some(TextureInput::Name("shiny".into())),
                    ..Default::default()
                },
            ),
            (
                "texture_size",
                JobOptionsInput {
                    texture_size: Some(100_000),
                    ..Default::default()
                },
            ),
            (
                "inflation",
                JobOptionsInput {
                    inflation: Some(9.0),
                    ..Default::default()
                },
            ),
            (
                "priority",
                JobOptionsInput {
                    priority: Some(10),
                    ..Default::default()
                },
            ),
            (
                "deadline",
                JobOptionsInput {
                    deadline: Some("tomorrow".into()),
                    ..Default::default()
                },
            ),
            (
                "deadline",
                JobOptionsInput {
                    deadline: Some("2001-01-01T00:00:00Z".into()),
                    ..Default::default()
                },
            ),
        ];
        for (field, input) in cases {
            let err = input.validate(now()).expect_err(field);
            assert_eq!(err.field, field, "{err}");
        }
    }

    #[test]
    fn formats_are_deduplicated_and_sorted_and_the_cutout_joins_them() {
        let spec = JobOptionsInput {
            formats: Some(vec!["ply".into(), "GLB".into(), "ply".into()]),
            cutout: Some(true),
            ..Default::default()
        }
        .validate(now())
        .expect("valid");
        assert_eq!(spec.formats, vec![MeshFormat::Glb, MeshFormat::Ply]);
        assert_eq!(
            spec.artifacts(),
            vec![Artifact::Glb, Artifact::Ply, Artifact::Cutout]
        );
    }

    #[test]
    fn specs_stored_before_inflation_and_cutout_existed_still_read() {
        let old = r#"{"engine":"inflate","seed":1234,"steps":50,"guidance_scale":5.0,
            "octree_resolution":256,"num_chunks":8000,"face_count":null,"formats":["glb"],
            "remove_background":"auto","texture":true,"priority":0,"deadline":null}"#;
        let spec: JobSpec = serde_json::from_str(old).expect("old spec");
        assert_eq!(spec.steps, Some(50));
        assert_eq!(spec.inflation, 1.0);
        assert!(!spec.cutout);
        assert_eq!(spec.texture, TextureMode::Uv, "`true` is the default mode");
        assert_eq!(spec.texture_size, 1024);
        assert_eq!(spec.face_count, None, "stored without a budget: every face");
        let off: JobSpec =
            serde_json::from_str(&old.replace("\"texture\":true", "\"texture\":false"))
                .expect("old spec");
        assert_eq!(off.texture, TextureMode::None);
    }

    #[test]
    fn a_textured_obj_brings_its_material_and_texture() {
        let spec = JobOptionsInput {
            formats: Some(vec!["obj".into(), "glb".into()]),
            ..Default::default()
        }
        .validate(now())
        .expect("valid");
        assert_eq!(
            spec.artifacts(),
            vec![
                Artifact::Glb,
                Artifact::Obj,
                Artifact::Mtl,
                Artifact::Texture
            ]
        );
        let plain = JobOptionsInput {
            formats: Some(vec!["obj".into()]),
            texture: Some(TextureInput::Name("vertex".into())),
            face_count: Some(0),
            ..Default::default()
        }
        .validate(now())
        .expect("valid");
        assert_eq!(plain.artifacts(), vec![Artifact::Obj]);
        assert_eq!(plain.face_count, None);
    }
}
