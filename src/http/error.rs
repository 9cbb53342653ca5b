//! The one HTTP error type, its exhaustive status mapping, and extractors
//! whose rejections use it, so every failure is an RFC 9457 problem+json with
//! a stable machine code. Internal causes are logged with the request id; the
//! client only sees `internal`.

use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{de::DeserializeOwned, Serialize};

use super::request_id;

/// Every error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidEmail(String),
    #[error("{0}")]
    InvalidPhone(String),
    #[error("{0}")]
    InvalidDisplayName(String),
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    #[error("unknown purpose {0:?}")]
    UnknownPurpose(String),
    #[error("a valid bearer token is required")]
    Unauthenticated,
    #[error("this role may not use this endpoint")]
    Forbidden,
    /// A write the policy refuses (which channel, who records consent): 403
    /// `forbidden`, with the rule as the detail.
    #[error("{0}")]
    WriteRefused(&'static str),
    #[error("the token does not allow this purpose, or the role may not act for it")]
    PurposeNotAllowed,
    #[error("no such resource")]
    NotFound,
    #[error("the customer already has this value on this channel")]
    ContactExists,
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyKeyInUse,
    #[error("this consent is not a grant awaiting confirmation (already confirmed, superseded by a later change, or not recorded by staff)")]
    ConsentNotPending,
    #[error("the customer has been erased")]
    CustomerErased,
    #[error("the request body is larger than 1 MiB")]
    PayloadTooLarge,
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("too many requests of this kind from this caller; retry later")]
    RateLimited { retry_after_secs: u64 },
    #[error("the audit log is unavailable; nothing was released")]
    AuditUnavailable,
    #[error("the database is unavailable")]
    DatabaseUnavailable,
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// Status and stable machine code (DESIGN.md §8).
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            InvalidRequest(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
            InvalidEmail(_) => (StatusCode::BAD_REQUEST, "invalid_email"),
            InvalidPhone(_) => (StatusCode::BAD_REQUEST, "invalid_phone"),
            InvalidDisplayName(_) => (StatusCode::BAD_REQUEST, "invalid_display_name"),
            UnknownChannel(_) => (StatusCode::BAD_REQUEST, "unknown_channel"),
            UnknownPurpose(_) => (StatusCode::BAD_REQUEST, "unknown_purpose"),
            Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Forbidden | WriteRefused(_) => (StatusCode::FORBIDDEN, "forbidden"),
            PurposeNotAllowed => (StatusCode::FORBIDDEN, "purpose_not_allowed"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            ContactExists => (StatusCode::CONFLICT, "contact_exists"),
            IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            IdempotencyKeyInUse => (StatusCode::CONFLICT, "idempotency_key_in_use"),
            ConsentNotPending => (StatusCode::CONFLICT, "consent_not_pending"),
            CustomerErased => (StatusCode::GONE, "customer_erased"),
            PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            RequestTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            AuditUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "audit_unavailable"),
            DatabaseUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The machine code alone (for audit details).
    pub fn code(&self) -> &'static str {
        self.status_code().1
    }

    /// Logs an internal cause with the request id and returns the opaque error.
    /// The cause must not contain plaintext; store, crypto and audit errors don't.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id = %request_id::current(), error = %cause, "internal error");
        ApiError::Internal
    }
}

/// RFC 9457 body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    pub request_id: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let problem = Problem {
            type_: format!("urn:arkku:problem:{code}"),
            title: status.canonical_reason().unwrap_or("error").to_owned(),
            status: status.as_u16(),
            detail: self.to_string(),
            code: code.to_owned(),
            request_id: request_id::current(),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let ApiError::RateLimited { retry_after_secs } = self {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        if matches!(self, ApiError::Unauthenticated) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(request_id = %request_id::current(), error = %e, "database unavailable");
            ApiError::DatabaseUnavailable
        } else {
            ApiError::internal(&e)
        }
    }
}

impl From<crate::vault::VaultError> for ApiError {
    fn from(e: crate::vault::VaultError) -> Self {
        match e {
            crate::vault::VaultError::Store(s) => s.into(),
            other => ApiError::internal(&other),
        }
    }
}

/// Turns a serde error into a message that names the field but never echoes
/// a value (a contact value sent as a number must not come back in an error).
pub(crate) fn describe_body_error(path: &str, err: &serde_json::Error) -> String {
    let msg = err.to_string();
    let msg = msg.split(" at line ").next().unwrap_or("");
    let at = if path.is_empty() || path == "." {
        String::new()
    } else {
        format!("{path}: ")
    };
    if msg.starts_with("unknown field") || msg.starts_with("missing field") {
        format!("{at}{msg}")
    } else if err.is_syntax() || err.is_eof() {
        "the body is not valid JSON".to_owned()
    } else {
        format!("{at}has the wrong type or an invalid value")
    }
}

/// Whether a body read failed because the connection's body read timeout
/// ([`crate::server::BodyTimeout`]) ran out.
fn caused_by_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.is::<crate::server::BodyTimeout>() {
            return true;
        }
        cur = e.source();
    }
    false
}

/// A JSON body: content type checked, size limited by the router's body
/// limit, unknown fields rejected by the target type, errors as problem+json.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| {
                let m = m.trim().to_ascii_lowercase();
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rej| {
                if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else if caused_by_body_timeout(&rej) {
                    ApiError::RequestTimeout
                } else {
                    ApiError::InvalidRequest("the request body could not be read".into())
                }
            })?;
        // Every request body is an object: serde would otherwise fill a
        // struct from an array, by position.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::InvalidRequest(
                "the body must be a JSON object".into(),
            ));
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            ApiError::InvalidRequest(describe_body_error(&e.path().to_string(), e.inner()))
        })?;
        // Nothing but whitespace may follow the object.
        de.end().map_err(|_| {
            ApiError::InvalidRequest("the body must hold exactly one JSON object".into())
        })?;
        Ok(ApiJson(value))
    }
}

/// Query parameters with problem+json rejections that never echo values.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(q)
            .map(ApiQuery)
            .map_err(|e: serde_urlencoded::de::Error| {
                let msg = e.to_string();
                let detail = if msg.starts_with("unknown field") || msg.starts_with("missing field")
                {
                    format!("query: {msg}")
                } else {
                    "the query string has an invalid value".to_owned()
                };
                ApiError::InvalidRequest(detail)
            })
    }
}

/// Path parameters (ids): a malformed one is 400 `invalid_request`.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| ApiError::InvalidRequest("malformed id in the path".into()))
    }
}
