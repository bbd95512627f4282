//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::routes::{account, events, jobs, ops, performance};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "ORFEAS job API", description = "Image-to-3D jobs: submit, follow, download, cancel; operator read-outs."),
    paths(
        jobs::submit, jobs::get_job, jobs::list_jobs, jobs::get_output, jobs::cancel,
        jobs::delete_job, events::job_sse, events::job_ws, events::many_sse,
        account::me, account::create_session, account::end_session, account::share,
        ops::healthz, ops::readyz, ops::workers,
        performance::summary, performance::recommendations, performance::gpu_status
    ),
    components(schemas(orfeas_vocab::JobOptionsInput)),
    tags((name = "jobs"), (name = "events", description = "Live job events: SSE and WebSocket"), (name = "account", description = "The calling key, browser sessions, share links"), (name = "ops"), (name = "performance"))
)]
pub struct ApiDoc;

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
