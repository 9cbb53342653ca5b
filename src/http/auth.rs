//! Who is calling: the bearer-token extractor. Any failure is 401
//! `unauthenticated` with no hint of what was wrong (the cause is logged at
//! debug level without the token).

use axum::{extract::FromRequestParts, http::request::Parts};

use super::{error::ApiError, AppState};
use crate::domain::Role;
pub use crate::token::Actor;

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthenticated)?;
        let (scheme, token) = header.split_once(' ').ok_or(ApiError::Unauthenticated)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::Unauthenticated);
        }
        state.tokens.verify(token.trim()).map_err(|e| {
            tracing::debug!(error = %e, "token refused");
            ApiError::Unauthenticated
        })
    }
}

/// 403 `forbidden` unless the caller has one of `roles` (DESIGN.md §8 matrix).
pub fn require_role(actor: &Actor, roles: &[Role]) -> Result<(), ApiError> {
    if roles.contains(&actor.role) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}
