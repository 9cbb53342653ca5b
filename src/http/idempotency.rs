//! `Idempotency-Key` on the write POSTs (README "A walk through the API"), so a client that
//! got no answer (a timeout, a dropped connection) or a 503 may send the same
//! request again without doing the write twice.
//!
//! The rules (after the IETF httpapi draft "The Idempotency-Key HTTP Header
//! Field"):
//!
//! - A key is 1 to 255 visible ASCII characters, one header per request;
//!   keys are per caller (role, sub and client of the token), so two callers
//!   cannot see each other's answers.
//! - The first request with a key runs. A 2xx answer is kept for
//!   [`KEEP_FOR`]; any other answer changed nothing and is not kept, so a
//!   retry runs again (a 503 is the truth: see [`super::audited`]).
//! - A retry with the same key and the same method, path and body gets the
//!   kept answer again, with `Idempotent-Replayed: true`, audited as
//!   `request.replay` before it is released, like any release of data.
//! - The same key with another request: 422 `idempotency_key_reused`.
//!   While the first request runs: 409 `idempotency_key_in_use` with
//!   `Retry-After`. A request left in flight by a process that died is taken
//!   over after [`ABANDONED_AFTER`]; it may then run twice (the answer of
//!   the first was never given).
//! - The kept body is sealed under the customer's profile data key, so it is
//!   encrypted like the customer's data and erasure shreds it: after
//!   erasure a replay answers 410 `customer_erased`.
//!
//! `POST /v1/lookup` is a read and needs no key; a key sent with it is ignored.

use std::time::Duration;

use axum::{
    body::{to_bytes, Body, Bytes},
    extract::{FromRequestParts, Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use ring::digest;
use uuid::Uuid;

use super::{
    audited::{finish, AuditScope},
    error::ApiError,
    AppState, BODY_LIMIT,
};
use crate::{
    audit::Action,
    crypto::{FieldContext, FieldKey},
    domain::Role,
    store::{
        self,
        idempotency::{Begun, Stored},
    },
    token::Actor,
    vault::PROFILE_DOMAIN,
};

/// How long a kept answer is replayed.
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
/// After this, a request still marked in flight is taken to be dead.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(60);

const HEADER: &str = "idempotency-key";
/// The field name bound into the kept body's AAD.
const FIELD: &str = "idempotent_response";

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
    let fingerprint = fingerprint(&parts.method, &parts.uri, &bytes);
    let actor_id = actor_hash(&actor);
    let now = s.clock.now();
    let begun = store::idempotency::begin(
        &s.db,
        &actor_id,
        &key,
        &fingerprint,
        store::to_micros(now),
        store::to_micros(now - KEEP_FOR),
        store::to_micros(now - ABANDONED_AFTER),
    )
    .await;
    let path_customer = path_customer(parts.uri.path(), &actor);
    let req = Request::from_parts(parts, Body::from(bytes));
    match begun {
        Err(e) => ApiError::from(e).into_response(),
        Ok(Begun::Mismatch) => ApiError::IdempotencyKeyReused.into_response(),
        Ok(Begun::InFlight) => {
            let mut r = ApiError::IdempotencyKeyInUse.into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
        Ok(Begun::Done(stored)) => replay(&s, actor, stored).await,
        Ok(Begun::Run { record_id }) => {
            let response = next.run(req).await;
            keep(&s, record_id, path_customer, response).await
        }
    }
}

/// The write POSTs: creating customers and everything under one.
pub(crate) fn is_write(path: &str) -> bool {
    path == "/v1/customers" || path.starts_with("/v1/customers/") || path == "/v1/me/consents"
}

/// The one `Idempotency-Key` header, if any; 400 if malformed or repeated.
fn idempotency_key(req: &Request) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(HEADER).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::InvalidRequest(
            "send at most one Idempotency-Key header".into(),
        ));
    }
    let bytes = v.as_bytes();
    if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(ApiError::InvalidRequest(
            "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
        ));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// SHA-256 over the parts of a request that make it the same request.
fn fingerprint(method: &Method, uri: &axum::http::Uri, body: &[u8]) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [
        b"arkku.idempotency.v1".as_slice(),
        method.as_str().as_bytes(),
        uri.path().as_bytes(),
        uri.query().unwrap_or("").as_bytes(),
        body,
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    ctx.finish().as_ref().to_vec()
}

/// The caller, as keys are scoped: a hash, so no identity is stored in clear.
fn actor_hash(a: &Actor) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [
        a.role.as_str(),
        a.sub.as_str(),
        a.client.as_deref().unwrap_or(""),
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    ctx.finish().as_ref().to_vec()
}

/// The customer a write is about, when the path or the token says it.
fn path_customer(path: &str, actor: &Actor) -> Option<Uuid> {
    if path == "/v1/me/consents" {
        return (actor.role == Role::Customer)
            .then(|| Uuid::parse_str(&actor.sub).ok())
            .flatten();
    }
    path.strip_prefix("/v1/customers/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// Keeps a 2xx answer (sealed) and releases it; frees the key otherwise.
async fn keep(
    s: &AppState,
    record_id: Uuid,
    customer: Option<Uuid>,
    response: Response,
) -> Response {
    if !response.status().is_success() {
        release(s, record_id).await;
        return response;
    }
    let (parts, body) = response.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return ApiError::Internal.into_response();
    };
    // A create names its customer in the answer.
    let customer = customer.or_else(|| {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
            .and_then(|id| Uuid::parse_str(&id).ok())
    });
    let kept = match customer {
        Some(c) => match seal(s, c, record_id, &bytes).await {
            Ok(sealed) => {
                store::idempotency::finish(&s.db, record_id, c, parts.status.as_u16(), &sealed)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        },
        None => Err("the answer names no customer".to_owned()),
    };
    if let Err(e) = kept {
        // The write happened and its answer goes out; a retry of this key
        // runs again once the in-flight mark is abandoned.
        tracing::warn!(error = %e, "could not keep an answer for its idempotency key");
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// Frees the key of a request that changed nothing. The database may be
/// what failed the request (a lock, an outage): then it is tried again in
/// the background for a while, so the client's retry finds the key free
/// rather than in flight until [`ABANDONED_AFTER`].
async fn release(s: &AppState, record_id: Uuid) {
    if store::idempotency::release(&s.db, record_id).await.is_ok() {
        return;
    }
    let s = s.clone();
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(100);
        while wait < ABANDONED_AFTER {
            tokio::time::sleep(wait).await;
            match store::idempotency::release(&s.db, record_id).await {
                Ok(()) => return,
                Err(e) => tracing::debug!(error = %e, "an idempotency key is not freed yet"),
            }
            wait *= 2;
        }
        tracing::warn!("could not free an idempotency key; it frees itself when abandoned");
    });
}

fn place(customer: Uuid, record_id: Uuid) -> FieldContext<'static> {
    FieldContext {
        customer_id: customer,
        channel: PROFILE_DOMAIN,
        record_id,
        field: FIELD,
    }
}

async fn seal(
    s: &AppState,
    customer: Uuid,
    record_id: Uuid,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let key = s
        .keyring
        .data_key_for_write(&s.db, customer, PROFILE_DOMAIN)
        .await
        .map_err(|e| e.to_string())?;
    FieldKey::new(&key)
        .and_then(|k| k.seal(&place(customer, record_id), body))
        .map_err(|e| e.to_string())
}

/// Opens a kept answer; `CustomerErased` once its key is shredded.
async fn open(s: &AppState, stored: &Stored) -> Result<(Uuid, Bytes), ApiError> {
    let customer = stored.customer_id.ok_or(ApiError::Internal)?;
    let sealed = stored.response.as_ref().ok_or(ApiError::CustomerErased)?;
    let wrapped = store::keys::data_key(&s.db, customer, PROFILE_DOMAIN)
        .await?
        .ok_or(ApiError::CustomerErased)?;
    let key = s.keyring.open_data_key(&s.db, customer, &wrapped).await?;
    let plain = FieldKey::new(&key)
        .and_then(|k| k.open(&place(customer, stored.record_id), sealed))
        .map_err(|e| ApiError::internal(&e))?;
    Ok((customer, Bytes::from(plain.to_vec())))
}

/// Answers a retry with the kept answer, audited first.
async fn replay(s: &AppState, actor: Actor, stored: Stored) -> Response {
    let auth = Ok(actor);
    let mut scope = AuditScope::new(&auth, Action::RequestReplay).customer(stored.customer_id);
    scope.detail("status", stored.status);
    let outcome = open(s, &stored).await.map(|(_, body)| {
        let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
        let mut r = (status, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        r
    });
    finish(s, scope, outcome).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_changes_with_method_path_query_and_body() {
        let uri = |u: &str| u.parse::<axum::http::Uri>().expect("uri");
        let base = fingerprint(&Method::POST, &uri("/v1/customers"), b"{}");
        assert_eq!(
            base,
            fingerprint(&Method::POST, &uri("/v1/customers"), b"{}")
        );
        assert_ne!(
            base,
            fingerprint(&Method::PUT, &uri("/v1/customers"), b"{}")
        );
        assert_ne!(
            base,
            fingerprint(&Method::POST, &uri("/v1/customers?x=1"), b"{}")
        );
        assert_ne!(
            base,
            fingerprint(&Method::POST, &uri("/v1/customers"), b"{ }")
        );
        // Parts are length-prefixed: moving bytes across a boundary differs.
        assert_ne!(
            fingerprint(&Method::POST, &uri("/a?b"), b""),
            fingerprint(&Method::POST, &uri("/a"), b"b")
        );
    }

    #[test]
    fn only_the_write_posts_take_a_key() {
        assert!(is_write("/v1/customers"));
        assert!(is_write("/v1/customers/0190/contacts"));
        assert!(is_write("/v1/me/consents"));
        assert!(!is_write("/v1/lookup"));
        assert!(!is_write("/v1/customersx"));
    }
}
