//! Counts every request for `/metrics` ([`crate::metrics`]): by route
//! template, method and status, with its latency.
//!
//! The route is axum's [`MatchedPath`], the template a route was declared
//! with (`/v1/customers/{id}`), never the path the caller sent: a customer id
//! or a looked-up value in a path never becomes a label. Route and method
//! are named as in the access log ([`super::access_log::route`] and
//! [`super::access_log::method`]): `unmatched` for a request that matched no
//! route, `OTHER` for a method outside the standard nine.

use std::time::Instant;

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};

use super::{access_log, AppState};
use crate::metrics::RouteLabels;

/// The middleware: times the request through the router and counts it once
/// its response head is ready.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = access_log::route(&request).to_owned();
    let method = access_log::method(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.request(
        RouteLabels { route, method },
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
