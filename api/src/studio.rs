//! ORFEAS Studio, the web app (`api/studio/`): its files are compiled into the binary, so the
//! single `orfeas` binary serves it with no CDN and nothing fetched at run time. `/` is the page,
//! `/studio/…` its scripts, styles and the vendored model-viewer (`scripts/studio_vendor.sh`).
//!
//! Every response carries a Content-Security-Policy that allows only this origin's scripts (no
//! inline script, no eval) (and WebAssembly compilation, not eval) and only this origin for connections, so a share token or session can
//! only ever be sent back here; `blob:`/`data:` cover the preview's in-memory GLB and textures.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::ApiError;

// `'wasm-unsafe-eval'` lets model-viewer compile its embedded WebAssembly mesh decoder; it does
// not allow JavaScript eval.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' blob: data:; connect-src 'self' blob: data:; worker-src 'self' blob:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:expr) => {
        Asset {
            path: $path,
            content_type: $type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/studio/", $path)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the page loads; a test checks that each file under `api/studio/` that the page
/// can load is listed.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("studio.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("js/api.js", JS),
    asset!("js/app.js", JS),
    asset!("js/charts.js", JS),
    asset!("js/dom.js", JS),
    asset!("js/generate.js", JS),
    asset!("js/glb.js", JS),
    asset!("js/history.js", JS),
    asset!("js/job.js", JS),
    asset!("js/operators.js", JS),
    asset!("js/tracker.js", JS),
    asset!("vendor/model-viewer.min.js", JS),
    asset!("vendor/model-viewer.LICENSE", "text/plain; charset=utf-8"),
];

/// The assets with their validators, computed once when the router is built.
struct Served {
    asset: &'static Asset,
    etag: HeaderValue,
}

#[derive(Clone)]
pub struct Studio {
    files: Arc<Vec<Served>>,
}

impl Studio {
    pub fn new() -> Studio {
        let files = ASSETS
            .iter()
            .map(|asset| {
                let digest = orfeas_shared::auth::hmac_sha256(b"orfeas-studio", asset.bytes);
                let tag = format!("\"{}\"", orfeas_shared::auth::base64url(&digest[..12]));
                Served {
                    asset,
                    etag: HeaderValue::from_str(&tag).unwrap_or(HeaderValue::from_static("\"\"")),
                }
            })
            .collect();
        Studio {
            files: Arc::new(files),
        }
    }

    /// The routes, on their own state so they need nothing of the API's.
    pub fn routes<S: Clone + Send + Sync + 'static>(self) -> Router<S> {
        Router::new()
            .route("/", get(index))
            .route("/studio/{*path}", get(file))
            .with_state(self)
    }

    fn serve(&self, path: &str, headers: &HeaderMap) -> Response {
        let Some(f) = self.files.iter().find(|f| f.asset.path == path) else {
            return ApiError::not_found(format!("no Studio file `{path}`")).into_response();
        };
        // Names carry no content hash, so browsers revalidate each time (a 304 when unchanged):
        // a new binary's page never runs with an old script.
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == f.etag.as_bytes());
        let mut resp = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(f.asset.content_type),
                )],
                f.asset.bytes,
            )
                .into_response()
        };
        let h = resp.headers_mut();
        h.insert(header::ETAG, f.etag.clone());
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        resp
    }
}

impl std::fmt::Debug for Studio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Studio({} files)", self.files.len())
    }
}

impl Default for Studio {
    fn default() -> Self {
        Studio::new()
    }
}

async fn index(State(studio): State<Studio>, headers: HeaderMap) -> Response {
    studio.serve("index.html", &headers)
}

async fn file(
    State(studio): State<Studio>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    studio.serve(&path, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn studio_files(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("studio folder") {
            let entry = entry.expect("entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = format!("{prefix}{name}");
            if entry.file_type().expect("type").is_dir() {
                studio_files(&entry.path(), &format!("{rel}/"), out);
            } else {
                out.push(rel);
            }
        }
    }

    #[test]
    fn every_page_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("studio");
        let mut found = Vec::new();
        studio_files(&root, "", &mut found);
        // The npm manifest and the browser test are not part of the page.
        let page: Vec<&String> = found
            .iter()
            .filter(|p| !p.starts_with("tests/") && !p.starts_with("package"))
            .collect();
        for p in &page {
            assert!(
                ASSETS.iter().any(|a| a.path == p.as_str()),
                "api/studio/{p} is not in studio::ASSETS"
            );
        }
        assert_eq!(page.len(), ASSETS.len(), "ASSETS names a file that is gone");
    }

    #[test]
    fn assets_revalidate_and_unknown_paths_are_404() {
        let studio = Studio::new();
        let first = studio.serve("js/app.js", &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        assert!(
            first.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .expect("ascii")
                .contains("script-src 'self'")
        );
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, first.headers()[header::ETAG].clone());
        assert_eq!(
            studio.serve("js/app.js", &again).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            studio.serve("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
