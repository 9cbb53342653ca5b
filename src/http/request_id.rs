//! A request id for every request: generated here (never taken from the
//! client, whose header could inject text into logs and the audit log),
//! returned in `x-request-id`, in every problem body, and on every log line
//! written while the request is served: the log formatter reads it from the
//! task-local this layer sets (`crate::logging`), so no span is opened.

use axum::{extract::Request, http::HeaderValue, middleware::Next, response::Response};
use uuid::Uuid;

pub use crate::service::request::id as current;

/// The response header that carries the id.
pub const HEADER: &str = "x-request-id";

/// Middleware: assigns the id and runs the rest of the stack inside its scope.
pub async fn assign(req: Request, next: Next) -> Response {
    let id = Uuid::now_v7().to_string();
    let mut resp = crate::service::request::scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}
