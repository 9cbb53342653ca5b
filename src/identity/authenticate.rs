//! The one bearer-token check that every route shares (the HTTP extractor
//! in [`crate::http::auth`] calls it, and nothing else verifies tokens).
//!
//! A token is verified by the issuer that signed it — an external issuer of
//! auth.toml ([`super::issuers`]) or else the local one — and then checked
//! against what the vault has revoked since it was issued: a token of an
//! integration client (one with a `client` claim, from `POST /oauth/token`)
//! passes only while its client is known and not revoked and the token
//! itself is not revoked ([`super::revocation`]). Rotating a client's secret
//! does not touch the tokens already issued: only revocation ends them
//! before they expire. A provider's tokens never carry `client`.

use std::sync::Arc;

use super::{
    issuers::Issuers,
    revocation::{Refusal, Revocations},
};
use crate::{
    domain::Actor,
    service::error::AuthFailure,
    token::{TokenError, TokenVerifier},
};

/// Verifies a bearer token and returns the caller it speaks for.
pub struct Authenticator {
    local: TokenVerifier,
    external: Issuers,
    /// Without it (a vault built without the clients' snapshot), every
    /// client token is refused.
    revocations: Option<Arc<Revocations>>,
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
        Authenticator {
            local,
            external,
            revocations: None,
        }
    }

    /// The external issuers (to start their key refresh).
    pub fn issuers(&self) -> &Issuers {
        &self.external
    }

    /// Checks client tokens against `revocations`.
    pub fn with_revocations(mut self, revocations: Arc<Revocations>) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The revocation snapshot, for the operations that revoke.
    pub fn revocations(&self) -> Option<&Arc<Revocations>> {
        self.revocations.as_ref()
    }

    /// The local issuer's verifier (token revocation reads the tokens it
    /// is handed with it).
    pub fn local(&self) -> &TokenVerifier {
        &self.local
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
        let verified = self.local.verify_claims(token).map_err(|e| {
            tracing::debug!(error = %e, "token refused");
            failure(&e)
        })?;
        let Some(client) = verified.actor.client.as_deref() else {
            return Ok(verified.actor);
        };
        let checked = match &self.revocations {
            Some(r) => r.check(client, verified.jti.as_deref()).await,
            None => Err(Refusal::Stale),
        };
        checked.map_err(|r| {
            tracing::debug!(refusal = ?r, "client token refused");
            AuthFailure::Invalid
        })?;
        Ok(verified.actor)
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
