//! The one bearer-token check that every route shares (the HTTP extractor
//! in [`crate::http::auth`] calls it, and nothing else verifies tokens).
//!
//! A token is verified by the issuer that signed it — an external issuer of
//! auth.toml ([`super::issuers`]) or else the local one — and then checked
//! against what the vault has revoked since it was issued.

use super::issuers::Issuers;
use crate::{
    domain::Actor,
    service::error::AuthFailure,
    token::{TokenError, TokenVerifier},
};

/// Verifies a bearer token and returns the caller it speaks for.
pub struct Authenticator {
    local: TokenVerifier,
    external: Issuers,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Authenticator(<redacted>)")
    }
}

impl Authenticator {
    pub fn new(local: TokenVerifier) -> Self {
        Authenticator::with_issuers(local, Issuers::none())
    }

    /// Also trusting the external issuers of auth.toml.
    pub fn with_issuers(local: TokenVerifier, external: Issuers) -> Self {
        Authenticator { local, external }
    }

    /// The external issuers (to start their key refresh).
    pub fn issuers(&self) -> &Issuers {
        &self.external
    }

    /// The caller `token` speaks for, or why it is refused. The precise
    /// cause is logged at debug level, never the token.
    pub async fn authenticate(&self, token: &str) -> Result<Actor, AuthFailure> {
        if let Some(verdict) = self.external.verify(token).await {
            return verdict.map_err(|e| {
                tracing::debug!(error = %e, "token refused");
                e.failure()
            });
        }
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
