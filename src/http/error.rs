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

pub use crate::service::Error as ApiError;

/// The HTTP status of each error: exhaustive, so a new error cannot ship
/// without one.
pub fn status(e: &ApiError) -> StatusCode {
    use ApiError::*;
    match e {
        InvalidRequest(_) => StatusCode::BAD_REQUEST,
        InvalidEmail(_) => StatusCode::BAD_REQUEST,
        InvalidPhone(_) => StatusCode::BAD_REQUEST,
        InvalidDisplayName(_) => StatusCode::BAD_REQUEST,
        UnknownChannel(_) => StatusCode::BAD_REQUEST,
        UnknownPurpose(_) => StatusCode::BAD_REQUEST,
        Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        Forbidden | WriteRefused(_) => StatusCode::FORBIDDEN,
        PurposeNotAllowed => StatusCode::FORBIDDEN,
        NotFound => StatusCode::NOT_FOUND,
        ContactExists => StatusCode::CONFLICT,
        IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        IdempotencyKeyInUse => StatusCode::CONFLICT,
        ConsentNotPending => StatusCode::CONFLICT,
        CustomerErased => StatusCode::GONE,
        CaseReferenceExists | InvalidTransition(_) => StatusCode::CONFLICT,
        InvalidCode => StatusCode::BAD_REQUEST,
        PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error, as RFC 9457 problem details with a stable machine `code`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:arkku:problem:` and the code.
    #[serde(rename = "type")]
    #[schema(example = "urn:arkku:problem:purpose_not_allowed")]
    pub type_: String,
    /// The HTTP status's reason phrase.
    #[schema(example = "Forbidden")]
    pub title: String,
    #[schema(example = 403)]
    pub status: u16,
    /// What went wrong, in words; never echoes a submitted value.
    pub detail: String,
    /// The stable machine code, e.g. `not_found`, `purpose_not_allowed`.
    #[schema(example = "purpose_not_allowed")]
    pub code: String,
    /// The request's `x-request-id`. Absent only from the 503
    /// `too_many_connections` refusal, which is sent before a request is read.
    #[schema(required = false)]
    pub request_id: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = (status(&self), self.code());
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
        if let ApiError::RateLimited { retry_after_secs } | ApiError::Busy { retry_after_secs } =
            self
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        if matches!(self, ApiError::Unauthenticated(_)) {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
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
