//! Submitting one job: the images read once at start and sent in turn, the multipart
//! `POST /api/jobs`, and what came back — the job's id, or the refusal's HTTP status, error code
//! and `Retry-After`, or why no answer came — with the request's latency.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::args::{ArgError, arg_error};

/// How long a submission may take before it counts as a timeout: far above any healthy
/// answer, low enough that a stalled API shows up in the report instead of hanging the run.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// One input image.
#[derive(Debug)]
pub struct Image {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The images of `--images`, in name order, sent in turn.
#[derive(Debug)]
pub struct Images(Vec<Image>);

impl Images {
    /// Every PNG, JPEG and WebP file directly in `dir`, recognised by its signature (as the API
    /// recognises uploads), so a stray file is skipped rather than sent as a failing job.
    pub fn load(dir: &Path) -> Result<Images, ArgError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| arg_error(format!("--images `{}`: {e}", dir.display())))?;
        let mut images = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| arg_error(format!("--images `{}`: {e}", dir.display())))?
                .path();
            if !path.is_file() {
                continue;
            }
            let bytes = std::fs::read(&path)
                .map_err(|e| arg_error(format!("reading `{}`: {e}", path.display())))?;
            if is_image(&bytes) {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                images.push(Image { name, bytes });
            }
        }
        if images.is_empty() {
            return Err(arg_error(format!(
                "--images `{}` holds no PNG, JPEG or WebP file",
                dir.display()
            )));
        }
        images.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Images(images))
    }

    /// The image for the `n`-th arrival.
    pub fn nth(&self, n: u64) -> &Image {
        &self.0[(n % self.0.len() as u64) as usize]
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn is_image(b: &[u8]) -> bool {
    b.starts_with(b"\x89PNG\r\n\x1a\n")
        || b.starts_with(&[0xFF, 0xD8, 0xFF])
        || (b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP")
}

/// What a submission came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 202: the job's id.
    Accepted { id: String },
    /// Any other HTTP answer, with the API's error code when the body has one.
    Refused {
        status: u16,
        code: Option<String>,
        retry_after: Option<String>,
    },
    /// No HTTP answer: `timeout`, `connect`, or `request` (the exchange broke off).
    NoAnswer { reason: &'static str },
}

/// One submission.
#[derive(Debug, Clone)]
pub struct Submission {
    pub answer: Answer,
    /// When the request was sent: the start of the job's end-to-end latency.
    pub sent: Instant,
    /// From sending the request to its answer (or giving up).
    pub latency: Duration,
}

/// Sends jobs to one API with one options template.
#[derive(Debug, Clone)]
pub struct Submitter {
    http: reqwest::Client,
    url: String,
    key: Option<String>,
    options: Option<String>,
    images: Arc<Images>,
}

impl Submitter {
    pub fn new(
        http: reqwest::Client,
        api: &str,
        key: Option<String>,
        options: Option<String>,
        images: Arc<Images>,
    ) -> Submitter {
        Submitter {
            http,
            url: format!("{api}/api/jobs"),
            key,
            options,
            images,
        }
    }

    /// The image the `n`-th arrival sends.
    pub fn image_name(&self, n: u64) -> &str {
        &self.images.nth(n).name
    }

    /// Submits the `n`-th arrival's job.
    pub async fn submit(&self, n: u64) -> Submission {
        let image = self.images.nth(n);
        let mut form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(image.bytes.clone()).file_name(image.name.clone()),
        );
        if let Some(o) = &self.options {
            form = form.text("options", o.clone());
        }
        let mut req = self
            .http
            .post(&self.url)
            .multipart(form)
            .timeout(SUBMIT_TIMEOUT);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let sent = Instant::now();
        let answer = match req.send().await {
            Ok(resp) => read_answer(resp).await,
            Err(e) => Answer::NoAnswer {
                reason: no_answer_reason(&e),
            },
        };
        Submission {
            answer,
            sent,
            latency: sent.elapsed(),
        }
    }
}

async fn read_answer(resp: reqwest::Response) -> Answer {
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // The latency includes reading the body: the answer is not usable before it.
    let body: serde_json::Value = match resp.bytes().await {
        Ok(b) => serde_json::from_slice(&b).unwrap_or(serde_json::Value::Null),
        Err(e) => {
            return Answer::NoAnswer {
                reason: no_answer_reason(&e),
            };
        }
    };
    if status == reqwest::StatusCode::ACCEPTED
        && let Some(id) = body["id"].as_str()
    {
        return Answer::Accepted { id: id.to_owned() };
    }
    Answer::Refused {
        status: status.as_u16(),
        code: body["error"]["code"].as_str().map(str::to_owned),
        retry_after,
    }
}

fn no_answer_reason(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_recognised_by_signature_and_sent_in_turn() {
        let dir =
            std::env::temp_dir().join(format!("orfeas-loadtest-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("b.png"), b"\x89PNG\r\n\x1a\nrest").expect("png");
        std::fs::write(dir.join("a.jpg"), [0xFF, 0xD8, 0xFF, 0xE0]).expect("jpeg");
        std::fs::write(dir.join("c.webp"), b"RIFF\0\0\0\0WEBPVP8 ").expect("webp");
        std::fs::write(dir.join("notes.txt"), b"not an image").expect("txt");
        std::fs::write(dir.join("fake.png"), b"GIF89a").expect("gif named png");
        let images = Images::load(&dir).expect("images");
        let names: Vec<&str> = (0..4).map(|n| images.nth(n).name.as_str()).collect();
        assert_eq!(names, ["a.jpg", "b.png", "c.webp", "a.jpg"]);
        std::fs::remove_dir_all(&dir).expect("cleanup");
        let err = Images::load(&dir).expect_err("gone");
        assert!(err.0.contains("--images"), "{err}");
    }
}
