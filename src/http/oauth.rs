//! The OAuth 2.0 endpoints for integration clients, to the letter of the
//! RFCs a client library expects:
//!
//! - `POST /oauth/token`: the client-credentials grant (RFC 6749 §4.4), a
//!   form-encoded body, client authentication by HTTP Basic or form fields
//!   (§2.3.1), the answer of §5.1 and the errors of §5.2;
//! - `POST /oauth/revoke`: token revocation (RFC 7009);
//! - `GET /.well-known/oauth-authorization-server`: the server metadata
//!   (RFC 8414).
//!
//! Their errors are the RFC's JSON (`{error, error_description}`), not
//! problem+json, and every answer of the two POSTs carries `Cache-Control:
//! no-store` and `Pragma: no-cache`. Reading the request is done here; the
//! grant itself is [`crate::service::clients::grant`].

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use utoipa::ToSchema;
use zeroize::Zeroizing;

use super::AppState;
use crate::identity::client_credentials::{self, ClientCredentials, CredentialError};
use crate::service::clients::grant::{
    self, IssuedToken, OAuthError, TokenGrant, TokenRevocation, CLIENT_CREDENTIALS,
};

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(token))
        .routes(utoipa_axum::routes!(revoke))
        .routes(utoipa_axum::routes!(metadata))
}

/// The form of `POST /oauth/token`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the form; the handler reads it as pairs.
pub struct TokenForm {
    /// `client_credentials`.
    #[schema(example = "client_credentials")]
    grant_type: String,
    /// Space-separated purposes, each one the client has; absent: all of them.
    #[schema(example = "support")]
    scope: Option<String>,
    /// With `client_secret`, instead of HTTP Basic.
    client_id: Option<String>,
    /// With `client_id`, instead of HTTP Basic.
    client_secret: Option<String>,
}

/// The form of `POST /oauth/revoke`.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the form; the handler reads it as pairs.
pub struct RevokeForm {
    /// The access token to revoke.
    token: String,
    /// `access_token` (the only kind the vault issues; other hints are ignored).
    token_type_hint: Option<String>,
    /// With `client_secret`, instead of HTTP Basic.
    client_id: Option<String>,
    /// With `client_id`, instead of HTTP Basic.
    client_secret: Option<String>,
}

/// A token (RFC 6749 §5.1).
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// The bearer token (a JWT) for `Authorization: Bearer …`.
    #[schema(value_type = String)]
    #[serde(serialize_with = "crate::service::views::secret")]
    access_token: Zeroizing<String>,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 900)]
    expires_in: u64,
    /// The purposes the token carries, space-separated.
    #[schema(example = "support")]
    scope: String,
}

/// An error of the OAuth endpoints (RFC 6749 §5.2).
#[derive(Serialize, ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_scope`,
    /// `unsupported_grant_type`, `slow_down` (429), `temporarily_unavailable`
    /// (503) or `server_error` (500).
    #[schema(example = "invalid_client")]
    error: &'static str,
    /// What went wrong, in words; never a submitted value.
    error_description: &'static str,
}

/// The authorization server metadata (RFC 8414), as far as it applies.
#[derive(Serialize, ToSchema)]
pub struct ServerMetadata {
    /// The base URL the document was asked for (the tokens' own `iss` is
    /// the vault's issuer name; only the vault reads them).
    issuer: String,
    token_endpoint: String,
    revocation_endpoint: String,
    /// Empty: the vault has no authorization endpoint.
    response_types_supported: Vec<&'static str>,
    grant_types_supported: Vec<&'static str>,
    token_endpoint_auth_methods_supported: Vec<&'static str>,
    revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    /// The purposes of the vault's policies.
    scopes_supported: Vec<String>,
    service_documentation: String,
}

/// The client authentication methods of both endpoints.
const AUTH_METHODS: [&str; 2] = ["client_secret_basic", "client_secret_post"];

/// `POST /oauth/token`: a token for a client (RFC 6749 §4.4).
#[utoipa::path(post, path = "/oauth/token", operation_id = "issueToken",
    summary = "Get a token (client credentials)",
    description = "The OAuth 2.0 client-credentials grant (RFC 6749 §4.4). The client \
        authenticates with HTTP Basic (its id and secret, each form-urlencoded, then base64) \
        or with `client_id` and `client_secret` form fields, never both. The token carries \
        the client's role and channel and its purposes, narrowed by `scope`; it lives the \
        client's token lifetime, at most the policy's. Every answer has `Cache-Control: \
        no-store`. Errors are RFC 6749 §5.2 JSON, not problem+json.",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The token.", body = TokenResponse),
        (status = 400, description = "`invalid_request` (not a form, a parameter missing or repeated, two client authentications), `unsupported_grant_type` or `invalid_scope`.", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`: unknown client, wrong or expired secret, revoked client, or no client authentication. With `WWW-Authenticate: Basic realm=\"arkku\"`.", body = OAuthErrorBody),
        (status = 429, description = "`slow_down`: too many failed authentications for this client id or from this address; retry after `Retry-After` seconds.", body = OAuthErrorBody),
        (status = 500, description = "`server_error`: an unexpected error, logged with the request id.", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`: the hasher, database or audit log cannot serve now; nothing was issued; retry after `Retry-After` seconds.", body = OAuthErrorBody)),
    security(("client_basic" = []), ()), tag = "oauth")]
pub async fn token(
    State(s): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    let request = form.map(|mut f| TokenGrant {
        grant_type: f.text("grant_type"),
        scope: f.text("scope"),
        credentials: f.credentials(&headers),
        peer,
    });
    let issued = grant::issue_token(&s, request).await;
    no_store(issued.map(|t| Json(token_response(t)).into_response()))
}

fn token_response(t: IssuedToken) -> TokenResponse {
    TokenResponse {
        access_token: t.access_token,
        token_type: "Bearer",
        expires_in: t.expires_in,
        scope: t.scope,
    }
}

/// `POST /oauth/revoke`: revokes one of the client's tokens (RFC 7009).
#[utoipa::path(post, path = "/oauth/revoke", operation_id = "revokeToken",
    summary = "Revoke a token",
    description = "Token revocation (RFC 7009), with the same client authentication as \
        `/oauth/token`. The token is refused on every node within two seconds. A token that \
        is unknown, expired or another client's is answered 200 as well, and left alone.",
    request_body(content = RevokeForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Revoked, or not this client's token (no body)."),
        (status = 400, description = "`invalid_request`: not a form, no `token`, a parameter repeated, or two client authentications.", body = OAuthErrorBody),
        (status = 401, description = "`invalid_client`, with `WWW-Authenticate: Basic realm=\"arkku\"`.", body = OAuthErrorBody),
        (status = 429, description = "`slow_down`: retry after `Retry-After` seconds.", body = OAuthErrorBody),
        (status = 500, description = "`server_error`.", body = OAuthErrorBody),
        (status = 503, description = "`temporarily_unavailable`: nothing was revoked; retry after `Retry-After` seconds.", body = OAuthErrorBody)),
    security(("client_basic" = []), ()), tag = "oauth")]
pub async fn revoke(
    State(s): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    form: Result<OAuthForm, OAuthError>,
) -> Response {
    // `token_type_hint` is optional and needs no check: only access tokens exist.
    let request = form.map(|mut f| TokenRevocation {
        token: f.take("token"),
        credentials: f.credentials(&headers),
        peer,
    });
    let revoked = grant::revoke_token(&s, request).await;
    no_store(revoked.map(|()| StatusCode::OK.into_response()))
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414).
#[utoipa::path(get, path = "/.well-known/oauth-authorization-server",
    operation_id = "readServerMetadata",
    summary = "OAuth server metadata",
    description = "The authorization server metadata of RFC 8414, for client libraries that \
        discover the token endpoint. URLs are built from the request's `Host` (and \
        `X-Forwarded-Proto`, `http` or `https`).",
    responses((status = 200, description = "The metadata.", body = ServerMetadata)),
    tag = "oauth")]
pub async fn metadata(State(s): State<AppState>, headers: HeaderMap) -> Json<ServerMetadata> {
    let base = base_url(&headers);
    Json(ServerMetadata {
        issuer: base.clone(),
        token_endpoint: format!("{base}/oauth/token"),
        revocation_endpoint: format!("{base}/oauth/revoke"),
        response_types_supported: Vec::new(),
        grant_types_supported: vec![CLIENT_CREDENTIALS],
        token_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
        revocation_endpoint_auth_methods_supported: AUTH_METHODS.to_vec(),
        scopes_supported: s.policies.purposes.keys().map(|p| p.to_string()).collect(),
        service_documentation: format!("{base}/docs"),
    })
}

/// The URL the client reached the vault at: `Host` when it is a plain
/// host[:port], and the scheme of `X-Forwarded-Proto` (else `http`).
fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
        })
        .unwrap_or("localhost");
    let scheme = match headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
    {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

/// Adds `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1):
/// neither a token nor an error about credentials may be cached.
fn no_store(outcome: Result<Response, OAuthError>) -> Response {
    let mut resp = outcome.unwrap_or_else(IntoResponse::into_response);
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self {
            OAuthError::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthError::SlowDown { .. } => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::TemporarilyUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            OAuthError::InvalidRequest(_)
            | OAuthError::InvalidScope
            | OAuthError::UnsupportedGrantType => StatusCode::BAD_REQUEST,
        };
        let body = OAuthErrorBody {
            error: self.code(),
            error_description: self.description(),
        };
        let mut resp = (status, Json(body)).into_response();
        let h = resp.headers_mut();
        match self {
            OAuthError::InvalidClient => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"arkku\""),
                );
            }
            OAuthError::SlowDown { retry_after_secs }
            | OAuthError::TemporarilyUnavailable { retry_after_secs } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            }
            _ => {}
        }
        resp
    }
}

/// The peer's address, when the connection edge recorded it.
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// A form-encoded body (`application/x-www-form-urlencoded`): each
/// parameter at most once (RFC 6749 §3.2), an empty one as if absent,
/// unknown ones ignored.
pub struct OAuthForm {
    pairs: Vec<(String, Zeroizing<String>)>,
}

impl OAuthForm {
    /// Takes a parameter's value out of the form.
    fn take(&mut self, name: &str) -> Option<Zeroizing<String>> {
        let i = self.pairs.iter().position(|(k, _)| k == name)?;
        Some(self.pairs.swap_remove(i).1)
    }

    /// A parameter that is not a secret.
    fn text(&mut self, name: &str) -> Option<String> {
        self.take(name).map(|v| v.as_str().to_owned())
    }

    /// The request's one client authentication (Basic or form fields).
    fn credentials(&mut self, headers: &HeaderMap) -> Result<ClientCredentials, CredentialError> {
        let mut auth = headers.get_all(header::AUTHORIZATION).iter();
        let basic = match (auth.next(), auth.next()) {
            (None, _) => None,
            (Some(_), Some(_)) => return Err(CredentialError::Ambiguous),
            (Some(v), None) => Some(
                v.to_str()
                    .map_err(|_| CredentialError::Malformed)
                    .and_then(client_credentials::parse_basic),
            ),
        };
        let id = self.text("client_id");
        let secret = self.take("client_secret");
        client_credentials::choose(basic, id.as_deref(), secret)
    }
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form {
            return Err(OAuthError::InvalidRequest(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| OAuthError::InvalidRequest("the request body could not be read"))?;
        let raw: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| OAuthError::InvalidRequest("the body is not a valid form"))?;
        let mut pairs: Vec<(String, Zeroizing<String>)> = Vec::with_capacity(raw.len());
        for (k, v) in raw {
            let v = Zeroizing::new(v);
            if v.is_empty() {
                continue;
            }
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(OAuthError::InvalidRequest(
                    "a parameter appears more than once",
                ));
            }
            pairs.push((k, v));
        }
        Ok(OAuthForm { pairs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_carry_the_rfcs_status_code_and_headers() {
        let cases = [
            (OAuthError::InvalidRequest("x"), 400, "invalid_request"),
            (OAuthError::InvalidClient, 401, "invalid_client"),
            (OAuthError::InvalidScope, 400, "invalid_scope"),
            (
                OAuthError::UnsupportedGrantType,
                400,
                "unsupported_grant_type",
            ),
            (
                OAuthError::SlowDown {
                    retry_after_secs: 7,
                },
                429,
                "slow_down",
            ),
            (
                OAuthError::TemporarilyUnavailable {
                    retry_after_secs: 1,
                },
                503,
                "temporarily_unavailable",
            ),
            (OAuthError::ServerError, 500, "server_error"),
        ];
        for (e, status, code) in cases {
            assert_eq!(e.code(), code);
            let r = no_store(Err(e.clone()));
            assert_eq!(r.status().as_u16(), status, "{code}");
            assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
            assert_eq!(r.headers()[header::PRAGMA], "no-cache");
            let www = r.headers().get(header::WWW_AUTHENTICATE);
            assert_eq!(www.is_some(), status == 401, "{code}");
            let retry = r.headers().get(header::RETRY_AFTER);
            assert_eq!(retry.is_some(), status == 429 || status == 503, "{code}");
        }
        // A busy hasher is a 503, not a refusal of the client.
        assert_eq!(
            OAuthError::from(crate::service::Error::Busy {
                retry_after_secs: 2
            }),
            OAuthError::TemporarilyUnavailable {
                retry_after_secs: 2
            }
        );
    }

    #[test]
    fn the_metadata_urls_come_from_a_well_formed_host_only() {
        let mut h = HeaderMap::new();
        assert_eq!(base_url(&h), "http://localhost");
        h.insert(header::HOST, HeaderValue::from_static("vault.example:8080"));
        assert_eq!(base_url(&h), "http://vault.example:8080");
        h.insert("x-forwarded-proto", HeaderValue::from_static("HTTPS"));
        assert_eq!(base_url(&h), "https://vault.example:8080");
        h.insert(header::HOST, HeaderValue::from_static("evil.example/x?y"));
        assert_eq!(base_url(&h), "https://localhost");
    }
}
