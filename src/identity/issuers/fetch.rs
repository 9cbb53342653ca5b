//! Getting an issuer's JWKS document: over HTTPS (or loopback HTTP) or from
//! a file, with a deadline and a size cap, so a slow or hostile provider
//! cannot hold a request or fill the memory. Redirects are not followed: the
//! address in auth.toml is the one that was reviewed (and a redirect could
//! lead from HTTPS to plain HTTP).

use std::{path::Path, time::Duration};

use tokio::io::AsyncReadExt;

use crate::policy::issuers::KeySource;

/// Largest JWKS accepted; providers' are a few kilobytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Deadline of one fetch, connection to last byte.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a fetch failed. The message names no secret (a JWKS is public).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no HTTP client (it could not be built at start)")]
    NoClient,
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("the provider answered {0}")]
    Status(u16),
    #[error("larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("cannot read {path}: {error}")]
    File { path: String, error: std::io::Error },
}

/// Fetches JWKS documents; cheap to clone.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: Option<reqwest::Client>,
}

impl Fetcher {
    /// A fetcher with an HTTP client. If the client cannot be built (the TLS
    /// set-up failed), start-up goes on and the URL issuers' tokens are
    /// refused, as when their providers are down.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("arkku/", env!("CARGO_PKG_VERSION")))
            .build();
        match client {
            Ok(c) => Fetcher { client: Some(c) },
            Err(e) => {
                tracing::error!(error = %e, "cannot build the HTTP client for JWKS fetches");
                Fetcher { client: None }
            }
        }
    }

    /// A fetcher for files only (no issuer with a URL).
    pub fn without_client() -> Self {
        Fetcher { client: None }
    }

    /// The document at `source`.
    pub async fn fetch(&self, source: &KeySource) -> Result<Vec<u8>, FetchError> {
        match source {
            KeySource::Uri(url) => {
                let client = self.client.as_ref().ok_or(FetchError::NoClient)?;
                get(client, url).await
            }
            KeySource::File(path) => read_file(path).await,
        }
    }
}

impl Default for Fetcher {
    fn default() -> Self {
        Self::new()
    }
}

async fn get(client: &reqwest::Client, url: &reqwest::Url) -> Result<Vec<u8>, FetchError> {
    let mut response = client
        .get(url.clone())
        .header(
            reqwest::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(FetchError::Status(response.status().as_u16()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
    {
        return Err(FetchError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(FetchError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// [`read_file`] for the CLI, which has no runtime at hand.
pub fn read_file_blocking(path: &Path) -> Result<Vec<u8>, FetchError> {
    use std::io::Read;
    let file_error = |error| FetchError::File {
        path: path.display().to_string(),
        error,
    };
    let file = std::fs::File::open(path).map_err(file_error)?;
    let mut body = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(file_error)?;
    if body.len() > MAX_JWKS_BYTES {
        return Err(FetchError::TooLarge);
    }
    Ok(body)
}

/// Reads a key file, at most one byte past the cap (to tell it is too large).
pub async fn read_file(path: &Path) -> Result<Vec<u8>, FetchError> {
    let file_error = |error| FetchError::File {
        path: path.display().to_string(),
        error,
    };
    let file = tokio::fs::File::open(path).await.map_err(file_error)?;
    let mut body = Vec::new();
    file.take(MAX_JWKS_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .await
        .map_err(file_error)?;
    if body.len() > MAX_JWKS_BYTES {
        return Err(FetchError::TooLarge);
    }
    Ok(body)
}
