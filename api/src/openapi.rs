//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::routes::{jobs, ops, performance};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "ORFEAS job API", description = "Image-to-3D jobs: submit, follow, download, cancel; operator read-outs."),
    paths(
        jobs::submit, jobs::get_job, jobs::list_jobs, jobs::get_output, jobs::cancel,
        ops::healthz, ops::readyz, ops::workers,
        performance::summary, performance::recommendations, performance::gpu_status
    ),
    components(schemas(orfeas_vocab::JobOptionsInput)),
    tags((name = "jobs"), (name = "ops"), (name = "performance"))
)]
pub struct ApiDoc;

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
