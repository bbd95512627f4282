//! `GET /api/capabilities`: what this deployment accepts — the engines and texture modes it
//! enables, the formats, each option's range and default, the upload limit and what each error
//! code means — read from the same tables the API validates with, so a client (the Studio) never
//! keeps a second copy of a rule.

use axum::Json;
use axum::extract::State;
use orfeas_vocab::options::{self, BackgroundMode, Bounds};
use orfeas_vocab::{Engine, ErrorCode, JobSpec, MeshFormat, RetryClass, TextureMode};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl<T: Into<f64> + Copy> From<Bounds<T>> for Range {
    fn from(b: Bounds<T>) -> Self {
        Range {
            min: b.min.into(),
            max: b.max.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OptionRanges {
    pub steps: Range,
    pub guidance_scale: Range,
    pub octree_resolution: Range,
    pub num_chunks: Range,
    pub face_count: Range,
    pub inflation: Range,
    pub texture_size: Range,
    pub priority: Range,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CodeMeaning {
    #[schema(value_type = String, example = "no_foreground")]
    pub code: ErrorCode,
    pub http_status: u16,
    pub retry: RetryClass,
    pub meaning: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Capabilities {
    /// Whether requests need a key (or a session, or a share link) right now.
    pub keys_required: bool,
    #[schema(value_type = Vec<String>)]
    pub engines: Vec<Engine>,
    #[schema(value_type = Vec<String>)]
    pub texture_modes: Vec<TextureMode>,
    #[schema(value_type = Vec<String>)]
    pub formats: Vec<MeshFormat>,
    #[schema(value_type = Vec<String>)]
    pub background_modes: Vec<BackgroundMode>,
    pub max_upload_bytes: u64,
    pub options: OptionRanges,
    /// What a job that leaves an option out gets.
    pub defaults: JobSpec,
    pub error_codes: Vec<CodeMeaning>,
}

/// What this deployment accepts (public: a client reads it before signing in).
#[utoipa::path(
    get,
    path = "/api/capabilities",
    responses((status = 200, body = Capabilities)),
    tag = "account"
)]
pub async fn capabilities(State(state): State<AppState>) -> Result<Json<Capabilities>, ApiError> {
    let keys_required = state.keys.in_force().await?;
    let api = &state.config.api;
    Ok(Json(Capabilities {
        keys_required,
        engines: api.engines.clone(),
        texture_modes: api.texture_modes.clone(),
        formats: MeshFormat::ALL.to_vec(),
        background_modes: BackgroundMode::ALL.to_vec(),
        max_upload_bytes: api.max_upload_bytes,
        options: OptionRanges {
            steps: options::STEPS.into(),
            guidance_scale: options::GUIDANCE_SCALE.into(),
            octree_resolution: options::OCTREE_RESOLUTION.into(),
            num_chunks: options::NUM_CHUNKS.into(),
            face_count: Range {
                min: options::FACE_COUNT.min as f64,
                max: options::FACE_COUNT.max as f64,
            },
            inflation: options::INFLATION.into(),
            texture_size: options::TEXTURE_SIZE.into(),
            priority: options::PRIORITY.into(),
        },
        defaults: JobSpec::default(),
        error_codes: ErrorCode::ALL
            .iter()
            .map(|&code| CodeMeaning {
                code,
                http_status: code.http_status(),
                retry: code.retry(),
                meaning: code.meaning(),
            })
            .collect(),
    }))
}
