//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::routes::{account, capabilities, events, jobs, ops, performance};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "ORFEAS job API", description = "Image-to-3D jobs: submit, follow live (SSE, WebSocket, signed webhooks), download, cancel, delete; API keys with rate limits and quotas; operator read-outs."),
    paths(
        jobs::submit, jobs::get_job, jobs::list_jobs, jobs::get_output, jobs::cancel,
        jobs::delete_job, jobs::rerun, capabilities::capabilities, events::job_sse, events::job_ws, events::many_sse,
        account::me, account::create_session, account::end_session, account::share,
        ops::healthz, ops::readyz, ops::workers,
        performance::summary, performance::recommendations, performance::gpu_status
    ),
    components(schemas(orfeas_vocab::JobOptionsInput)),
    modifiers(&BearerAuth),
    security(("bearer" = []), ()),
    tags((name = "jobs"), (name = "events", description = "Live job events: SSE and WebSocket"), (name = "account", description = "The calling key, browser sessions, share links"), (name = "ops"), (name = "performance"))
)]
pub struct ApiDoc;

/// `Authorization: Bearer <key>` (from `orfeas keys create`); browsers may instead use the
/// session cookie (`POST /api/session`) or a share link's `?token=`.
#[derive(Debug)]
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`orfeas keys create`). Required once any key exists; \
                         `/healthz`, `/readyz` and `/openapi.json` never need one.",
                    ))
                    .build(),
            ),
        );
    }
}

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
