//! Delivery by webhook (`ARKKU_NOTIFY_URL`): `POST` the message as JSON,
//! signed the way payment providers sign theirs, so that the receiver can
//! tell it came from this vault and is fresh:
//!
//! ```text
//! arkku-signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//! ```
//!
//! The secret is the 32 bytes of the notifier key file
//! (`ARKKU_NOTIFY_SECRET_FILE`, 64 hex characters). The receiver recomputes
//! the HMAC over the timestamp, a dot and the raw body, compares in constant
//! time, and refuses a timestamp more than a few minutes off its own clock
//! (README "How a customer signs in"). Any 2xx answer is a delivery;
//! anything else, or no answer within [`TIMEOUT`], is retried. Redirects are
//! not followed: the code goes to the configured address or nowhere.

use std::time::Duration;

use ring::hmac;

use crate::crypto::{hex, SecretKey};

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "arkku-signature";
/// How long one delivery may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A configured webhook receiver.
pub struct Webhook {
    url: reqwest::Url,
    secret: hmac::Key,
    client: reqwest::Client,
}

/// Why a webhook is not usable.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("ARKKU_NOTIFY_URL is not an http:// or https:// URL")]
    Url,
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
}

impl Webhook {
    /// A receiver at `url`, signing with `secret`.
    pub fn new(url: &str, secret: &SecretKey) -> Result<Self, WebhookError> {
        let url = reqwest::Url::parse(url).map_err(|_| WebhookError::Url)?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(WebhookError::Url);
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| WebhookError::Client(e.to_string()))?;
        Ok(Webhook {
            url,
            secret: hmac::Key::new(hmac::HMAC_SHA256, secret.expose_secret()),
            client,
        })
    }

    /// Posts `body`, signed at `t` (Unix seconds of the vault's clock).
    /// The error says why, without the URL (which may carry a token).
    pub async fn send(&self, body: &[u8], t: u64) -> Result<(), String> {
        let r = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature(&self.secret, t, body))
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = r.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &hmac::Key, t: u64, body: &[u8]) -> String {
    let mut ctx = hmac::Context::with_key(secret);
    ctx.update(t.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("t={t},v1={}", hex(ctx.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_dot_body() {
        // python3 -c 'import hmac, hashlib;
        //   print(hmac.new(bytes(32), b"1700000000.{}", hashlib.sha256).hexdigest())'
        let key = hmac::Key::new(hmac::HMAC_SHA256, &[0u8; 32]);
        assert_eq!(
            signature(&key, 1_700_000_000, b"{}"),
            "t=1700000000,v1=a9dc44c8eda3de70e9cbf3e488895f1abc26acb1461d3124a3cb886af35251cf"
        );
    }

    #[test]
    fn only_http_urls_are_accepted() {
        let key = SecretKey::from_bytes([1; 32]);
        assert!(Webhook::new("https://notify.example.com/arkku", &key).is_ok());
        assert!(Webhook::new("http://127.0.0.1:9000/", &key).is_ok());
        for bad in [
            "ftp://example.com/",
            "not a url",
            "file:///etc/passwd",
            "http://",
        ] {
            assert!(Webhook::new(bad, &key).is_err(), "{bad}");
        }
    }
}
