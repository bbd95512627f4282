//! Signing webhooks per the Standard Webhooks specification: the signed content is
//! `{webhook-id}.{webhook-timestamp}.{body}`, the signature HMAC-SHA256 under the secret's bytes,
//! sent as `webhook-signature: v1,<base64>`. Secrets are written `whsec_<base64 of the bytes>`.

use base64::Engine as _;

use crate::auth::hmac_sha256;

/// A webhook signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a webhook secret is `whsec_` followed by base64 of at least 24 bytes")]
pub struct BadSecret;

impl std::str::FromStr for WebhookSecret {
    type Err = BadSecret;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b64 = s.trim().strip_prefix("whsec_").ok_or(BadSecret)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| BadSecret)?;
        if bytes.len() < 24 {
            return Err(BadSecret);
        }
        Ok(WebhookSecret(bytes))
    }
}

impl WebhookSecret {
    /// The `webhook-signature` header value for one delivery attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut content = Vec::with_capacity(id.len() + body.len() + 24);
        content.extend_from_slice(id.as_bytes());
        content.push(b'.');
        content.extend_from_slice(timestamp.to_string().as_bytes());
        content.push(b'.');
        content.extend_from_slice(body);
        let mac = hmac_sha256(&self.0, &content);
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac)
        )
    }

    /// A new random secret, as `whsec_…`.
    pub fn generate() -> Result<String, crate::auth::RandomError> {
        let mut bytes = [0u8; 32];
        crate::auth::random_bytes(&mut bytes)?;
        Ok(format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector the Standard Webhooks specification publishes.
    #[test]
    fn the_specifications_test_vector_signs_alike() {
        let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            .parse()
            .expect("secret");
        let sig = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_checked() {
        assert!(
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
                .parse::<WebhookSecret>()
                .is_err()
        );
        assert!("whsec_!!".parse::<WebhookSecret>().is_err());
        let fresh = WebhookSecret::generate().expect("random");
        assert!(fresh.parse::<WebhookSecret>().is_ok());
    }
}
