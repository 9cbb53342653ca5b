//! One log line per request, for operators: request id, method, route
//! template, status, latency, and the actor's role and sub once the request
//! authenticated. Nothing the client sent is copied into it: the route is
//! the template the router matched (`/v1/customers/{id}`, never the path,
//! which carries ids and, mistyped, values), an unmatched path is the word
//! [`UNMATCHED`], a method outside the standard ones is `OTHER`, and no
//! query string, header value or body is read.
//!
//! Who the actor is becomes known only inside the handler's extractors, so
//! this layer opens a per-request slot ([`record`] fills it) that the
//! bearer-token extractor, the console's staff session and the privacy
//! page's customer session write to. Outside a request (the CLI) recording
//! does nothing.
//!
//! The layer wraps the request id's ([`super::request_id`]) and logs after
//! the request's scope has ended, naming `request_id` itself (the log
//! formatter adds the field only to lines that lack it, inside the scope);
//! the id is read from the `x-request-id` the inner layer put on the response.

use std::{
    sync::{Arc, OnceLock},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request},
    http::Method,
    middleware::Next,
    response::Response,
};

use crate::domain::Actor;

/// The tracing target of the lines (`ARKKU_LOG=info,arkku::access=off`
/// silences them).
pub const TARGET: &str = "arkku::access";

/// The route of a request that matched no route.
pub const UNMATCHED: &str = "unmatched";

/// Who a request turned out to be.
#[derive(Debug)]
struct Seen {
    role: &'static str,
    sub: String,
}

tokio::task_local! {
    static SEEN: Arc<OnceLock<Seen>>;
}

/// Notes `actor` as the caller of the request being served (the first
/// actor noted stands). Called where an identity is established.
pub fn record(actor: &Actor) {
    let _ = SEEN.try_with(|slot| {
        slot.get_or_init(|| Seen {
            role: actor.role.as_str(),
            sub: printable(&actor.sub),
        });
    });
}

/// The route template a request matched, or [`UNMATCHED`].
pub fn route(req: &Request) -> &str {
    req.extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
}

/// The method's name if it is a standard one; a client's own extension
/// method is text it chose, so it is not copied into the log.
pub fn method(m: &Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "OTHER",
    }
}

/// A sub as one line: a token's subject is the issuer's text, and a line
/// break in it would forge a line of the text log.
fn printable(sub: &str) -> String {
    if sub.chars().any(char::is_control) {
        sub.escape_debug().to_string()
    } else {
        sub.to_owned()
    }
}

/// Milliseconds, to the microsecond.
fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// Middleware: runs the request with an empty actor slot and logs its line
/// once the response head is ready (the latency excludes streaming the body).
pub async fn layer(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method(req.method());
    let route = route(&req).to_owned();
    let slot = Arc::new(OnceLock::new());
    let resp = SEEN.scope(slot.clone(), next.run(req)).await;
    let seen = slot.get();
    let request_id = resp
        .headers()
        .get(super::request_id::HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    tracing::info!(
        target: TARGET,
        request_id,
        method,
        route,
        status = resp.status().as_u16(),
        latency_ms = millis(started.elapsed()),
        role = seen.map(|s| s.role),
        sub = seen.map(|s| s.sub.as_str()),
        "request"
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_are_named() {
        assert_eq!(method(&Method::PATCH), "PATCH");
        assert_eq!(method(&Method::TRACE), "TRACE");
        let own = Method::from_bytes(b"JANEDOE").unwrap();
        assert_eq!(method(&own), "OTHER");
    }

    #[test]
    fn a_sub_with_a_line_break_stays_on_one_line() {
        assert_eq!(printable("agent-1"), "agent-1");
        let forged = printable("x\n2026-12-03T09:00:00Z INFO forged");
        assert!(!forged.contains('\n'), "{forged}");
    }

    #[test]
    fn latency_is_in_milliseconds_to_the_microsecond() {
        assert_eq!(millis(std::time::Duration::from_micros(1234)), 1.234);
        assert_eq!(millis(std::time::Duration::from_nanos(1_500_400)), 1.5);
    }
}
