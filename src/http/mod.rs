//! The HTTP API: router, shared state, and one file per resource.
//!
//! Data flows one way: extractor (who) → handler → policy (may they) →
//! store + vault (fetch, open only what was permitted) → [`audited::finish`]
//! (durable audit entry) → response.
//!
//! Each resource file declares its routes together with their OpenAPI
//! operations; [`build_router`] merges them and splits the result into the
//! router and the document served at `/openapi.json` ([`openapi`]), next to
//! the interactive documentation at `/docs` ([`docs`]).

pub mod access_log;
pub mod audit;
pub mod audited;
pub mod auth;
pub mod clients;
pub mod consents;
pub mod customers;
pub mod docs;
pub mod dsr;
pub mod dsr_register;
pub mod error;
pub mod health;
pub mod idempotency;
pub mod interactions;
pub mod lookup;
pub mod metrics;
pub mod oauth;
pub mod openapi;
pub mod peer;
pub mod request_id;
pub mod sign_in;
pub use crate::service::views;

use std::{ops::Deref, sync::Arc};

use axum::{extract::DefaultBodyLimit, middleware, Router};
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_axum::router::OpenApiRouter;

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

/// Every API route with its OpenAPI operation, declared once per handler.
fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .merge(customers::router())
        .merge(lookup::router())
        .merge(consents::router())
        .merge(interactions::router())
        .merge(dsr::router())
        .merge(dsr_register::router())
        .merge(audit::router())
        .merge(sign_in::router())
        .merge(health::router())
        .merge(clients::router())
        .merge(oauth::router())
}

/// The OpenAPI document of the API, as `/openapi.json` serves it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi::finish(api_routes().split_for_parts().1)
}

/// The whole API.
pub fn build_router(state: AppState) -> Router {
    let (api, doc) = api_routes().split_for_parts();
    let doc = openapi::finish(doc);
    api.merge(openapi::router(&doc))
        .merge(docs::router())
        .merge(crate::web::router(state.clone()))
        .fallback(|| async { error::ApiError::NotFound })
        .method_not_allowed_fallback(|| async { error::ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!(request_id = %request_id::current(), "handler panicked");
            axum::response::IntoResponse::into_response(error::ApiError::Internal)
        }))
        .layer(middleware::from_fn(request_id::assign))
        .layer(middleware::from_fn(access_log::layer))
        .with_state(state)
}
