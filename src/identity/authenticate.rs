//! The one bearer-token check that every route shares (the HTTP extractor
//! in [`crate::http::auth`] calls it, and nothing else verifies tokens).
//!
//! A token is verified by the issuer that signed it, and then checked
//! against what the vault has revoked since it was issued.

use crate::{
    domain::Actor,
    service::error::AuthFailure,
    token::{TokenError, TokenVerifier},
};

/// Verifies a bearer token and returns the caller it speaks for.
pub struct Authenticator {
    local: TokenVerifier,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator(<redacted>)")
    }
}

impl Authenticator {
    pub fn new(local: TokenVerifier) -> Self {
        Authenticator { local }
    }

    /// The caller `token` speaks for, or why it is refused. The precise
    /// cause is logged at debug level, never the token.
    pub async fn authenticate(&self, token: &str) -> Result<Actor, AuthFailure> {
        self.local.verify(token).map_err(|e| {
            tracing::debug!(error = %e, "token refused");
            failure(&e)
        })
    }
}

/// What the caller is told about a refused token.
pub fn failure(e: &TokenError) -> AuthFailure {
    if e.is_expired() {
        AuthFailure::Expired
    } else if e.is_malformed() {
        AuthFailure::Malformed
    } else {
        AuthFailure::Invalid
    }
}
