//! A request id for every request: generated here (never taken from the
//! client, whose header could inject text into logs and the audit log),
//! returned in `x-request-id`, put on the tracing span and in every problem body.

use axum::{extract::Request, http::HeaderValue, middleware::Next, response::Response};
use tracing::Instrument;
use uuid::Uuid;

pub use crate::service::request::id as current;

/// The response header that carries the id.
pub const HEADER: &str = "x-request-id";

/// Middleware: assigns the id and runs the rest of the stack inside its scope.
/// The span names the route template, never the path (which carries ids).
pub async fn assign(req: Request, next: Next) -> Response {
    let id = Uuid::now_v7().to_string();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = super::access_log::method(req.method()),
        route = super::access_log::route(&req),
    );
    let mut resp = crate::service::request::scope(id.clone(), next.run(req).instrument(span)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}
