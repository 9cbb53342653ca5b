//! Customer sign-in by one-time code over HTTP (see
//! [`crate::service::sign_in`]): `POST /v1/auth/customer/start` and
//! `POST /v1/auth/customer/verify`. Neither takes a token.

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};

use super::{
    error::{ApiError, ApiJson},
    peer::Peer,
    respond, AppState,
};
use crate::service::sign_in;
pub use crate::service::sign_in::{CustomerToken, SignInStarted, StartSignIn, VerifySignIn};

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(start))
        .routes(utoipa_axum::routes!(verify))
}

/// `POST /v1/auth/customer/start`: 202 `{challenge_id}`, whatever the value.
#[utoipa::path(post, path = "/v1/auth/customer/start", operation_id = "startCustomerSignIn",
    summary = "Ask for a sign-in code",
    description = "Sends a one-time code (8 digits, valid 10 minutes, 5 tries) to a contact \
        point the vault holds, through the notifier. The answer is the same 202 whether or \
        not the value is known, allowed for sign-in or erased: send the `challenge_id` with \
        the code to `/v1/auth/customer/verify`. Rate-limited per value and per client \
        address. No token.",
    request_body = StartSignIn,
    responses((status = 202, description = "A challenge; a code is on its way if the value may sign in.", body = SignInStarted),
        (status = 400, description = "`invalid_request`, `invalid_email`, `invalid_phone` or `unknown_channel`: the value does not parse for its channel."),
        (status = 429, description = "`rate_limited`: too many codes asked for this value or from this address."),
        (status = 503, description = "`audit_unavailable` or `database_unavailable`: nothing was stored and no code sent.")),
    tag = "sign_in")]
pub async fn start(
    State(s): State<AppState>,
    Peer(peer): Peer,
    body: Result<ApiJson<StartSignIn>, ApiError>,
) -> Response {
    let started = sign_in::start(&s, peer, body.map(|b| b.0)).await;
    respond(started.map(|v| (StatusCode::ACCEPTED, Json(v))))
}

/// `POST /v1/auth/customer/verify`: a customer token for the right code.
#[utoipa::path(post, path = "/v1/auth/customer/verify", operation_id = "verifyCustomerSignIn",
    summary = "Trade a sign-in code for a customer token",
    description = "Checks the code of a challenge. The right code, within 10 minutes and 5 \
        tries, once, gives a bearer token for the customer's own routes (`/v1/me…`), valid \
        15 minutes. Any other code, an unknown, expired, used or exhausted challenge, all \
        get the same 400 `invalid_code`. Rate-limited per client address. No token.",
    request_body = VerifySignIn,
    responses((status = 200, description = "The customer's token (`Cache-Control: no-store`).", body = CustomerToken),
        (status = 400, description = "`invalid_code`: the code is wrong or no longer valid; or `invalid_request`: no challenge id, or a code that is not 8 digits."),
        (status = 429, description = "`rate_limited`: too many checks from this address."),
        (status = 503, description = "`audit_unavailable` or `database_unavailable`: no token was issued.")),
    tag = "sign_in")]
pub async fn verify(
    State(s): State<AppState>,
    Peer(peer): Peer,
    body: Result<ApiJson<VerifySignIn>, ApiError>,
) -> Response {
    match sign_in::verify(&s, peer, body.map(|b| b.0)).await {
        Ok(token) => {
            let mut r = Json(token).into_response();
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => e.into_response(),
    }
}
