//! `POST /api/jobs` uploads parsed into typed values at the edge: the content type and declared
//! length checked before the body is read, the multipart parts streamed under their limits, the
//! image's format sniffed from its signature, the `options` JSON validated into a `JobSpec` (the
//! error names the field), and the `Idempotency-Key` header.

use axum::extract::Multipart;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::http::{HeaderMap, StatusCode, header};
use bytes::{Bytes, BytesMut};
use chrono::Utc;
use orfeas_vocab::{ErrorCode, JobOptionsInput, JobSpec};

use crate::error::ApiError;

/// Room for the `options` part and multipart framing on top of the image limit.
const FRAMING_ALLOWANCE: u64 = 1024 * 1024;
const MAX_OPTIONS_BYTES: usize = 64 * 1024;

/// The image formats accepted, by signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputFormat {
    Png,
    Jpeg,
    Webp,
}

impl InputFormat {
    pub fn sniff(head: &[u8]) -> Option<InputFormat> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(InputFormat::Png)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(InputFormat::Jpeg)
        } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
            Some(InputFormat::Webp)
        } else {
            None
        }
    }

    /// The stored input's file extension.
    pub fn extension(self) -> &'static str {
        match self {
            InputFormat::Png => "png",
            InputFormat::Jpeg => "jpg",
            InputFormat::Webp => "webp",
        }
    }
}

/// A client's key for repeating a submission safely: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Self>, ApiError> {
        let Some(v) = headers.get("idempotency-key") else {
            return Ok(None);
        };
        let k = v
            .to_str()
            .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?;
        if k.is_empty() || k.len() > 255 {
            return Err(ApiError::bad_request(
                "Idempotency-Key must be 1 to 255 characters",
            ));
        }
        Ok(Some(IdempotencyKey(k.to_owned())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A submission, parsed and validated.
#[derive(Debug, Clone)]
pub struct Upload {
    pub image: Bytes,
    pub format: InputFormat,
    pub spec: JobSpec,
    pub idempotency_key: Option<IdempotencyKey>,
    /// Fingerprint of the image and the options as sent, when a key was given (a repeat of the
    /// same request under the key gets the same job; a different one gets 409).
    pub fingerprint: Option<String>,
}

impl Upload {
    pub async fn read(
        headers: &HeaderMap,
        multipart: Result<Multipart, MultipartRejection>,
        max_image: u64,
    ) -> Result<Upload, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type
            .to_ascii_lowercase()
            .starts_with("multipart/form-data")
        {
            return Err(ApiError::unsupported(format!(
                "expected multipart/form-data, got `{content_type}`"
            )));
        }
        if let Some(len) = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && len > max_image + FRAMING_ALLOWANCE
        {
            return Err(ApiError::too_large(format!(
                "the request declares {len} bytes, over the upload limit of {max_image} bytes"
            )));
        }
        let multipart = multipart.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let idempotency_key = IdempotencyKey::from_headers(headers)?;
        let (image, format, options_raw) = read_parts(multipart, max_image).await?;
        let spec = parse_options(&options_raw)?
            .validate(Utc::now())
            .map_err(|e| ApiError::invalid_field(e.field, e.to_string()))?;
        let fingerprint = idempotency_key
            .as_ref()
            .map(|_| fingerprint(&[&image, &options_raw]));
        Ok(Upload {
            image,
            format,
            spec,
            idempotency_key,
            fingerprint,
        })
    }
}

async fn read_parts(
    mut multipart: Multipart,
    max_image: u64,
) -> Result<(Bytes, InputFormat, Bytes), ApiError> {
    let mut image: Option<(Bytes, InputFormat)> = None;
    let mut options_raw = Bytes::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| multipart_error(&e))?
    {
        let (limit, too_large) = match field.name() {
            Some("image") => (
                usize::try_from(max_image).unwrap_or(usize::MAX),
                format!("the image is over the upload limit of {max_image} bytes"),
            ),
            Some("options") => (
                MAX_OPTIONS_BYTES,
                "the `options` part is over 64 KiB".to_owned(),
            ),
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unexpected part `{other}` (expected `image` and optional `options`)"
                )));
            }
            None => return Err(ApiError::bad_request("a multipart part has no name")),
        };
        let is_image = field.name() == Some("image");
        let mut buf = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e))? {
            if buf.len() + chunk.len() > limit {
                return Err(ApiError::too_large(too_large));
            }
            buf.extend_from_slice(&chunk);
        }
        if is_image {
            if buf.is_empty() {
                return Err(ApiError::validation("`image`: the uploaded file is empty"));
            }
            let format = InputFormat::sniff(&buf)
                .ok_or_else(|| ApiError::unsupported("`image` must be a PNG, JPEG or WebP file"))?;
            image = Some((buf.freeze(), format));
        } else {
            options_raw = buf.freeze();
        }
    }
    let (image, format) =
        image.ok_or_else(|| ApiError::bad_request("the multipart part `image` is missing"))?;
    Ok((image, format, options_raw))
}

fn multipart_error(e: &MultipartError) -> ApiError {
    if body_timed_out(e) {
        ApiError::new(
            ErrorCode::RequestTimeout,
            "the upload stalled (no data for longer than api.body_timeout_ms)",
        )
    } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large(format!("upload over the limit: {}", e.body_text()))
    } else {
        ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Whether the body timeout (tower-http's `TimeoutError`) is among the error's causes.
fn body_timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

fn parse_options(raw: &[u8]) -> Result<JobOptionsInput, ApiError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Ok(JobOptionsInput::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(raw);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            ApiError::validation(format!("`options`: {inner}"))
        } else {
            // The top-level option a nested path (`formats[2]`) is in.
            let field = path.split(['.', '[']).next().unwrap_or(&path).to_owned();
            ApiError::invalid_field(field, format!("`{path}`: {inner}"))
        }
    })
}

/// FNV-1a: a stable fingerprint of a request, to tell a repeated idempotent submission from a
/// different request that reuses the key (not a security boundary).
fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in part.iter() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        assert_eq!(
            InputFormat::sniff(b"\x89PNG\r\n\x1a\nrest"),
            Some(InputFormat::Png)
        );
        assert_eq!(
            InputFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some(InputFormat::Jpeg)
        );
        assert_eq!(
            InputFormat::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(InputFormat::Webp)
        );
        assert_eq!(InputFormat::sniff(b"GIF89a"), None);
        assert_eq!(InputFormat::Jpeg.extension(), "jpg");
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        assert_eq!(fingerprint(&[b"a", b"b"]), fingerprint(&[b"a", b"b"]));
        assert_ne!(fingerprint(&[b"a", b"b"]), fingerprint(&[b"ab", b""]));
        assert_ne!(fingerprint(&[b"a", b"{}"]), fingerprint(&[b"a", b""]));
    }

    #[test]
    fn option_errors_name_the_field() {
        let e = parse_options(br#"{"steps": "many"}"#).expect_err("type error");
        assert!(e.message.starts_with("`steps`"), "{}", e.message);
        let e = parse_options(br#"{"colour": 1}"#).expect_err("unknown field");
        assert!(e.message.contains("colour"), "{}", e.message);
        assert!(parse_options(b"  ").is_ok());
    }

    #[test]
    fn idempotency_keys() {
        let mut h = HeaderMap::new();
        assert_eq!(IdempotencyKey::from_headers(&h), Ok(None));
        h.insert("idempotency-key", "order-42".parse().expect("header"));
        assert_eq!(
            IdempotencyKey::from_headers(&h)
                .expect("valid")
                .map(|k| k.as_str().to_owned()),
            Some("order-42".into())
        );
        h.insert("idempotency-key", "x".repeat(256).parse().expect("header"));
        assert!(IdempotencyKey::from_headers(&h).is_err());
    }
}
