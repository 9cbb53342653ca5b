//! The `Idempotency-Key` header of the write POSTs: a client that got no
//! answer (a timeout, a dropped connection) or a 503 may send the same
//! request again without the write happening twice. The rules, and the
//! keeping, sealing and replaying of answers, are the service's (see
//! [`crate::service::idempotency`]); this layer reads the header and the
//! request, and maps the outcome: a replayed answer carries
//! `Idempotent-Replayed: true`, a 409 `idempotency_key_in_use` carries
//! `Retry-After`.
//!
//! `POST /v1/lookup` is a read and needs no key; a key sent with it is ignored.

use axum::{
    body::{to_bytes, Body},
    extract::{FromRequestParts, Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use uuid::Uuid;

use super::{error::ApiError, AppState, BODY_LIMIT};
use crate::{
    service::idempotency::{self, Claim, Fingerprint, Held, Key, Replayed},
    token::Actor,
};

const HEADER: &str = "idempotency-key";

/// The middleware; every request passes through it, only write POSTs with
/// the header are held to it.
pub async fn layer(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !is_write(req.uri().path()) {
        return next.run(req).await;
    }
    let key = match idempotency_key(&req) {
        Ok(Some(k)) => k,
        Ok(None) => return next.run(req).await,
        Err(e) => return e.into_response(),
    };
    let (mut parts, body) = req.into_parts();
    // Who asks: an unauthenticated request is left to the handler (401).
    let Ok(actor) = Actor::from_request_parts(&mut parts, &s).await else {
        return next.run(Request::from_parts(parts, body)).await;
    };
    let Ok(bytes) = to_bytes(body, BODY_LIMIT).await else {
        return ApiError::PayloadTooLarge.into_response();
    };
    let uri = &parts.uri;
    let fingerprint = Fingerprint::of(
        parts.method.as_str(),
        uri.path(),
        uri.query().unwrap_or(""),
        &bytes,
    );
    let claimed = idempotency::claim(&s, &actor, &key, &fingerprint).await;
    let customer = path_customer(uri.path(), &actor);
    let req = Request::from_parts(parts, Body::from(bytes));
    match claimed {
        Err(ApiError::IdempotencyKeyInUse) => {
            let mut r = ApiError::IdempotencyKeyInUse.into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Err(e) => e.into_response(),
        Ok(Claim::Replay(kept)) => replayed(idempotency::replay(&s, &Ok(actor), kept).await),
        Ok(Claim::Run(held)) => run(&s, held, customer, next.run(req).await).await,
    }
}

/// The write POSTs: creating customers and everything under one.
pub(crate) fn is_write(path: &str) -> bool {
    path == "/v1/customers" || path.starts_with("/v1/customers/") || path == "/v1/me/consents"
}

/// The one `Idempotency-Key` header, if any; 400 if malformed or repeated.
fn idempotency_key(req: &Request) -> Result<Option<Key>, ApiError> {
    let mut values = req.headers().get_all(HEADER).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::InvalidRequest(
            "send at most one Idempotency-Key header".into(),
        ));
    }
    Key::parse(v.as_bytes()).map(Some)
}

/// The customer a write is about, when the path or the token says it.
fn path_customer(path: &str, actor: &Actor) -> Option<Uuid> {
    if path == "/v1/me/consents" {
        return actor.customer;
    }
    path.strip_prefix("/v1/customers/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// Settles the key of a request that ran: a 2xx answer is kept, any other
/// answer changed nothing and frees the key. The answer goes out either way.
async fn run(s: &AppState, held: Held, customer: Option<Uuid>, response: Response) -> Response {
    if !response.status().is_success() {
        idempotency::release(s, held).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return ApiError::Internal.into_response();
    };
    idempotency::keep(s, held, customer, parts.status.as_u16(), &bytes).await;
    Response::from_parts(parts, Body::from(bytes))
}

/// A kept answer released again, or why not.
fn replayed(outcome: Result<Replayed, ApiError>) -> Response {
    let Replayed { status, body } = match outcome {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_write_posts_take_a_key() {
        assert!(is_write("/v1/customers"));
        assert!(is_write("/v1/customers/0190/contacts"));
        assert!(is_write("/v1/me/consents"));
        assert!(!is_write("/v1/lookup"));
        assert!(!is_write("/v1/customersx"));
    }
}
