//! A client of a running job API: submit images, follow a job's events (reconnecting with
//! `Last-Event-ID` until the job ends), download outputs. `orfeas jobs …` is built on it, and
//! the fleet tests drive the API through it.

pub mod sse;
pub mod watch;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{Stream, StreamExt};
use orfeas_vocab::{Artifact, JobEvent};
use serde::Deserialize;

use sse::SseParser;

/// An output link as the API shows it in events and job views.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OutputRef {
    pub artifact: Artifact,
    pub url: String,
}

/// An event as streamed.
pub type StreamedEvent = JobEvent<OutputRef>;

/// How long a lost stream waits before reconnecting.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// Reconnects in a row without receiving an event before following gives up.
const MAX_RECONNECTS: u32 = 20;

#[derive(Debug, Clone)]
pub struct ApiClient {
    base: String,
    http: reqwest::Client,
    key: Option<String>,
}

impl ApiClient {
    /// `base`: the API's root URL (`http://127.0.0.1:8080`); `key`: an API key, sent as
    /// `Authorization: Bearer`.
    pub fn new(base: &str, key: Option<String>) -> ApiClient {
        ApiClient {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            key,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match &self.key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    /// Submits an image with JSON options; returns the job as the API shows it.
    pub async fn submit(
        &self,
        image: &Path,
        options: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        let bytes = std::fs::read(image).with_context(|| format!("reading {}", image.display()))?;
        let name = image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "image".into());
        let mut form = reqwest::multipart::Form::new().part(
            "image",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        );
        if let Some(o) = options {
            form = form.text("options", o.to_owned());
        }
        let resp = self
            .request(reqwest::Method::POST, "/api/jobs")
            .multipart(form)
            .send()
            .await
            .with_context(|| format!("submitting to {}", self.base))?;
        json_or_error(resp).await
    }

    pub async fn get_json(&self, path: &str) -> anyhow::Result<serde_json::Value> {
        let resp = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        json_or_error(resp).await
    }

    /// Downloads `url` (a path the API gave) to `dest`.
    pub async fn download(&self, url: &str, dest: &Path) -> anyhow::Result<u64> {
        let resp = self
            .request(reqwest::Method::GET, url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !resp.status().is_success() {
            bail!("GET {url}: {}", resp.status());
        }
        let bytes = resp.bytes().await?;
        std::fs::write(dest, &bytes).with_context(|| format!("writing {}", dest.display()))?;
        Ok(bytes.len() as u64)
    }

    /// One connection to a job's SSE stream after `after`: its events as they come. The outer
    /// error: the API could not be reached; the inner: it refused (a 4xx: no retry helps).
    async fn connect(&self, job: &str, after: i64) -> anyhow::Result<anyhow::Result<EventStream>> {
        let resp = self
            .request(reqwest::Method::GET, &format!("/api/jobs/{job}/events"))
            .header("Last-Event-ID", after.to_string())
            .header("Accept", "text/event-stream")
            .send()
            .await
            .with_context(|| format!("connecting to {}", self.base))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let e = anyhow::anyhow!("{status}: {body}");
            return if status.is_client_error() {
                Ok(Err(e))
            } else {
                Err(e)
            };
        }
        let parser = SseParser::new();
        Ok(Ok(resp
            .bytes_stream()
            .scan(parser, |parser, chunk| {
                let items: Vec<anyhow::Result<StreamedEvent>> = match chunk {
                    Ok(c) => parser
                        .feed(&c)
                        .into_iter()
                        .map(|m| {
                            serde_json::from_str::<StreamedEvent>(&m.data)
                                .with_context(|| format!("event `{}`", m.data))
                        })
                        .collect(),
                    Err(e) => vec![Err(anyhow::Error::from(e).context("stream interrupted"))],
                };
                futures::future::ready(Some(futures::stream::iter(items)))
            })
            .flatten()
            .boxed()))
    }

    /// Follows a job's events after `after` until its terminal event, reconnecting (with the
    /// last id received) whenever the connection drops — an API restart included.
    pub fn follow(
        &self,
        job: &str,
        after: i64,
    ) -> impl Stream<Item = anyhow::Result<StreamedEvent>> + use<> {
        let state = Following {
            client: self.clone(),
            job: job.to_owned(),
            last: after,
            failures: 0,
            conn: None,
            done: false,
        };
        futures::stream::unfold(state, |mut s| async move {
            let item = s.next().await?;
            Some((item, s))
        })
    }
}

type EventStream = futures::stream::BoxStream<'static, anyhow::Result<StreamedEvent>>;

struct Following {
    client: ApiClient,
    job: String,
    last: i64,
    /// Connections lost in a row without an event.
    failures: u32,
    conn: Option<EventStream>,
    done: bool,
}

impl Following {
    fn lost(&mut self) -> Option<anyhow::Result<StreamedEvent>> {
        self.conn = None;
        self.failures += 1;
        if self.failures > MAX_RECONNECTS {
            self.done = true;
            return Some(Err(anyhow::anyhow!(
                "lost the stream of job {} and could not reconnect in {MAX_RECONNECTS} tries",
                self.job
            )));
        }
        None
    }

    async fn next(&mut self) -> Option<anyhow::Result<StreamedEvent>> {
        loop {
            if self.done {
                return None;
            }
            let conn = match &mut self.conn {
                Some(c) => c,
                None => {
                    if self.failures > 0 {
                        tokio::time::sleep(RECONNECT_DELAY).await;
                    }
                    match self.client.connect(&self.job, self.last).await {
                        Ok(Ok(c)) => self.conn.insert(c),
                        Ok(Err(refused)) => {
                            self.done = true;
                            return Some(Err(refused));
                        }
                        Err(_) => match self.lost() {
                            Some(e) => return Some(e),
                            None => continue,
                        },
                    }
                }
            };
            match conn.next().await {
                Some(Ok(e)) if e.seq > self.last => {
                    self.last = e.seq;
                    self.failures = 0;
                    self.done = e.kind().is_terminal();
                    return Some(Ok(e));
                }
                Some(Ok(_)) => {}
                // A dropped connection, or one the server closed before the end (a restart).
                Some(Err(_)) | None => {
                    if let Some(e) = self.lost() {
                        return Some(e);
                    }
                }
            }
        }
    }
}

async fn json_or_error(resp: reqwest::Response) -> anyhow::Result<serde_json::Value> {
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or(serde_json::Value::Null);
    if !status.is_success() {
        let code = body["error"]["code"].as_str().unwrap_or("");
        let message = body["error"]["message"].as_str().unwrap_or("");
        bail!("{status} {code}: {message}");
    }
    Ok(body)
}
