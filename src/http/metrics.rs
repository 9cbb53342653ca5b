//! Counts every request for `/metrics` ([`crate::metrics`]): by route
//! template, method and status, with its latency.
//!
//! The route is axum's [`MatchedPath`], the template a route was declared
//! with (`/v1/customers/{id}`), never the path the caller sent: a customer id
//! or a looked-up value in a path never becomes a label. A request that
//! matched no route is counted under [`UNMATCHED`].

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::Response,
};

use super::AppState;
use crate::metrics::{method_label, RouteLabels};

/// The route label of a request that matched no route (404 or 405 from the
/// fallback): one fixed word, so unknown paths cannot grow the series.
pub const UNMATCHED: &str = "unmatched";

/// The middleware: times the request through the router and counts it once
/// its response head is ready.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.request(
        RouteLabels { route, method },
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
