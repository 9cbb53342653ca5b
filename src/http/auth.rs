//! Who is calling: the bearer-token extractor. Exactly one `Authorization`
//! header is accepted. Any failure is 401
//! `unauthenticated` with no hint of what was wrong (the cause is logged at
//! debug level without the token).

use axum::{extract::FromRequestParts, http::request::Parts};

use super::{error::ApiError, AppState};
use uuid::Uuid;

use crate::domain::Role;
pub use crate::token::Actor;

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut values = parts
            .headers
            .get_all(axum::http::header::AUTHORIZATION)
            .iter();
        let header = values
            .next()
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthenticated)?;
        // Two credentials are ambiguous: a proxy and the backend could each
        // act on a different one. Refuse rather than pick.
        if values.next().is_some() {
            tracing::debug!("token refused: more than one Authorization header");
            return Err(ApiError::Unauthenticated);
        }
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

/// The customer id of a customer token (its `sub`, checked to be a UUID when
/// the token was verified); 403 for any other role.
pub fn own_customer_id(actor: &Actor) -> Result<Uuid, ApiError> {
    require_role(actor, &[Role::Customer])?;
    Uuid::parse_str(&actor.sub).map_err(|_| ApiError::Unauthenticated)
}

/// The customer a `/v1/me` request is about, for its audit entry, before
/// anything else is checked.
pub fn own_customer(auth: &Result<Actor, ApiError>) -> Option<Uuid> {
    auth.as_ref()
        .ok()
        .filter(|a| a.role == Role::Customer)
        .and_then(|a| Uuid::parse_str(&a.sub).ok())
}
