//! The HTTP API (DESIGN.md §8): router, shared state, and one file per resource.
//!
//! Data flows one way: extractor (who) → handler → policy (may they) →
//! store + vault (fetch, open only what was permitted) → [`audited::finish`]
//! (durable audit entry) → response.

pub mod audit;
pub mod audited;
pub mod auth;
pub mod consents;
pub mod customers;
pub mod dsr;
pub mod error;
pub mod export;
pub mod health;
pub mod idempotency;
pub mod interactions;
pub mod lookup;
pub mod openapi;
pub mod request_id;
pub use crate::service::views;

use std::{ops::Deref, sync::Arc};

use axum::{extract::DefaultBodyLimit, middleware, Router};
use tower_http::catch_panic::CatchPanicLayer;

/// Request bodies larger than this get 413 `payload_too_large`.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

pub use crate::service::Services;

impl AppState {
    pub fn new(services: Services) -> Self {
        AppState(Arc::new(services))
    }
}

impl Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// Maps an operation's outcome to a response: the value, or its error as
/// problem+json.
pub fn respond<T: axum::response::IntoResponse>(
    outcome: Result<T, error::ApiError>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    outcome.map_or_else(IntoResponse::into_response, IntoResponse::into_response)
}

/// The whole API.
pub fn build_router(state: AppState) -> Router {
    Router::new()
        .merge(customers::router())
        .merge(lookup::router())
        .merge(consents::router())
        .merge(interactions::router())
        .merge(dsr::router())
        .merge(audit::router())
        .merge(health::router())
        .merge(openapi::router())
        .fallback(|| async { error::ApiError::NotFound })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!(request_id = %request_id::current(), "handler panicked");
            axum::response::IntoResponse::into_response(error::ApiError::Internal)
        }))
        .layer(middleware::from_fn(request_id::assign))
        .with_state(state)
}
