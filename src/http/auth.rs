//! Who is calling: the bearer-token extractor, the edge where a token's
//! claims become a typed [`Actor`]. Exactly one `Authorization` header is
//! accepted. A failure is 401 `unauthenticated` whose detail says only
//! whether the token was missing, malformed, expired or otherwise invalid
//! ([`AuthFailure`]); the precise cause is logged at debug level without
//! the token.

use axum::{extract::FromRequestParts, http::request::Parts};

use super::{error::ApiError, AppState};
use crate::service::error::AuthFailure;
pub use crate::token::Actor;

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let refuse = |f: AuthFailure| {
            state.metrics.auth_failure("bearer_token", f.as_str());
            ApiError::Unauthenticated(f)
        };
        let mut values = parts
            .headers
            .get_all(axum::http::header::AUTHORIZATION)
            .iter();
        let header = values.next().ok_or_else(|| refuse(AuthFailure::Missing))?;
        // Two credentials are ambiguous: a proxy and the backend could each
        // act on a different one. Refuse rather than pick.
        if values.next().is_some() {
            tracing::debug!("token refused: more than one Authorization header");
            return Err(refuse(AuthFailure::Malformed));
        }
        let header = header
            .to_str()
            .map_err(|_| refuse(AuthFailure::Malformed))?;
        let (scheme, token) = header
            .split_once(' ')
            .ok_or_else(|| refuse(AuthFailure::Malformed))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(refuse(AuthFailure::Malformed));
        }
        let actor = state
            .auth
            .authenticate(token.trim())
            .await
            .map_err(refuse)?;
        super::access_log::record(&actor);
        Ok(actor)
    }
}

// Transitional: the role check below moves into the service operations
// (`crate::service::Services::authorise`), which check the matrix of
// `crate::policy::access`; it goes once no handler calls it.

/// 403 `forbidden` unless the caller has one of `roles`.
pub fn require_role(actor: &Actor, roles: &[crate::domain::Role]) -> Result<(), ApiError> {
    if roles.contains(&actor.role) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}
