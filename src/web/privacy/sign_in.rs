//! Signing in to the privacy page with a one-time code (DESIGN.md §12.3):
//! the customer types an e-mail address or phone number; the vault sends a
//! code if it holds that value for exactly one customer (through
//! [`sign_in::start`], enumeration-safe: the answer and the page are the same
//! whether it does or not); the code form's right code begins a customer
//! session ([`sign_in::verify_for_session`], the API's checks and attempt
//! limits and audit entry). Before sign-in there is no session, so the two
//! forms carry the console sign-in form's signed double-submit token.

use askama::Template;
use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{fail, words};
use crate::{
    http::{error::status, peer::Peer},
    service::{
        sessions::{self, SubjectKind},
        sign_in::{self, StartSignIn, VerifySignIn},
        Error,
    },
    web::{
        csrf, error_page_in, render,
        session::{self, cookie_header},
        Area, Frame, Lang, WebState,
    },
};

/// The sign-in page: the value form, or (once a code was sent) the code form.
#[derive(Template)]
#[template(path = "privacy_sign_in.html")]
pub struct SignInPage {
    f: Frame,
    csrf: String,
    /// Where the code went, masked; `Some` for the code form.
    sent_to: Option<String>,
    challenge: String,
    value: String,
    error: Option<&'static str>,
}

/// What the code form's page needs besides the frame.
struct CodeStep {
    sent_to: String,
    challenge: String,
}

/// The sign-in page with a fresh form token (and the cookie of its nonce).
fn page(
    state: &WebState,
    headers: &HeaderMap,
    status: StatusCode,
    step: Option<CodeStep>,
    value: String,
    error: Option<&'static str>,
) -> Response {
    let lang = Lang::of_request(headers);
    let nonce = crate::web::cookies(headers)
        .find(|(n, v)| n == csrf::FORM_COOKIE && csrf::is_nonce(v))
        .map(|(_, v)| v)
        .or_else(csrf::new_nonce);
    let (Some(nonce), Ok(key)) = (nonce, sessions::form_key(&state.app)) else {
        return error_page_in(
            Area::Privacy,
            lang,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_unavailable",
        );
    };
    let (sent_to, challenge) = match step {
        Some(s) => (Some(s.sent_to), s.challenge),
        None => (None, String::new()),
    };
    let page = SignInPage {
        f: Frame::anonymous(lang, "/privacy/"),
        csrf: csrf::sign_in_token(&key, &nonce, state.app.clock.now()),
        sent_to,
        challenge,
        value,
        error: error.map(|key| lang.t(key)),
    };
    let mut response = render(status, &page);
    let cookie = cookie_header(csrf::FORM_COOKIE, &nonce, Some(csrf::SIGN_IN_FORM_LIFETIME));
    response.headers_mut().append(header::SET_COOKIE, cookie);
    if session::presented(headers).is_some() {
        let clear = session::clear_session_cookie();
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}

/// `GET /privacy/` without a session: the value form.
pub fn start_form(state: &WebState, headers: &HeaderMap) -> Response {
    page(state, headers, StatusCode::OK, None, String::new(), None)
}

/// Whether a pre-session form came from this site's own page.
fn form_ok(state: &WebState, headers: &HeaderMap, token: &str) -> bool {
    let nonce = crate::web::cookies(headers).find(|(n, _)| n == csrf::FORM_COOKIE);
    let now = state.app.clock.now();
    let token_ok = match (nonce, sessions::form_key(&state.app)) {
        (Some((_, nonce)), Ok(key)) => csrf::verify_sign_in(&key, &nonce, token, now),
        _ => false,
    };
    csrf::same_origin(headers) && token_ok
}

#[derive(Deserialize)]
struct StartFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    value: String,
}

/// Longest value accepted from the form (an e-mail address's limit).
const MAX_VALUE: usize = 320;

/// `POST /privacy/sign-in`: asks for a code; the code form says where it
/// went, masked, whether or not the vault holds the value.
pub async fn start(
    State(state): State<WebState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::of_request(&headers);
    let Ok(fields) = serde_urlencoded::from_bytes::<StartFields>(&body) else {
        return error_page_in(
            Area::Privacy,
            lang,
            StatusCode::BAD_REQUEST,
            "error_bad_request",
        );
    };
    if !form_ok(&state, &headers, &fields.csrf) {
        return error_page_in(
            Area::Privacy,
            lang,
            StatusCode::FORBIDDEN,
            "error_forbidden",
        );
    }
    let value: String = fields.value.trim().chars().take(MAX_VALUE).collect();
    // An address has an @; anything else is taken for a phone number.
    let channel = if value.contains('@') {
        "email"
    } else {
        "phone"
    };
    let input = StartSignIn {
        channel: channel.to_owned(),
        value: value.clone(),
    };
    match sign_in::start(&state.app, peer, Ok(input)).await {
        Ok(started) => {
            let step = CodeStep {
                sent_to: words::masked(&value),
                challenge: started.challenge_id.to_string(),
            };
            page(
                &state,
                &headers,
                StatusCode::OK,
                Some(step),
                String::new(),
                None,
            )
        }
        Err(Error::RateLimited { .. }) => {
            let key = "privacy_throttled";
            page(
                &state,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                None,
                value,
                Some(key),
            )
        }
        Err(e) if status(&e).is_client_error() => {
            let key = "privacy_value_invalid";
            page(
                &state,
                &headers,
                StatusCode::BAD_REQUEST,
                None,
                value,
                Some(key),
            )
        }
        Err(e) => fail(lang, &e),
    }
}

#[derive(Deserialize)]
struct CodeFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    challenge: String,
    #[serde(default)]
    sent_to: String,
    #[serde(default)]
    code: String,
}

/// `POST /privacy/sign-in/code`: a right code begins a session; a wrong one
/// shows the code form again (401), until the challenge's attempts run out.
pub async fn verify(
    State(state): State<WebState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::of_request(&headers);
    let Ok(fields) = serde_urlencoded::from_bytes::<CodeFields>(&body) else {
        return error_page_in(
            Area::Privacy,
            lang,
            StatusCode::BAD_REQUEST,
            "error_bad_request",
        );
    };
    if !form_ok(&state, &headers, &fields.csrf) {
        return error_page_in(
            Area::Privacy,
            lang,
            StatusCode::FORBIDDEN,
            "error_forbidden",
        );
    }
    let Ok(challenge_id) = Uuid::parse_str(&fields.challenge) else {
        return error_page_in(
            Area::Privacy,
            lang,
            StatusCode::BAD_REQUEST,
            "error_bad_request",
        );
    };
    let code: String = fields.code.chars().filter(|c| !c.is_whitespace()).collect();
    let input = VerifySignIn { challenge_id, code };
    let again = |status, key| {
        let step = CodeStep {
            sent_to: fields.sent_to.chars().take(MAX_VALUE).collect(),
            challenge: challenge_id.to_string(),
        };
        page(
            &state,
            &headers,
            status,
            Some(step),
            String::new(),
            Some(key),
        )
    };
    let customer = match sign_in::verify_for_session(&state.app, peer, Ok(input)).await {
        Ok(customer) => customer,
        Err(Error::InvalidCode | Error::InvalidRequest(_)) => {
            return again(StatusCode::UNAUTHORIZED, "privacy_code_wrong")
        }
        Err(Error::RateLimited { .. }) => {
            return again(StatusCode::TOO_MANY_REQUESTS, "privacy_throttled")
        }
        Err(e) => return fail(lang, &e),
    };
    match sessions::begin(&state.app, SubjectKind::Customer, customer, 0).await {
        Ok((id, _)) => {
            let mut r = Redirect::to("/privacy/").into_response();
            r.headers_mut()
                .append(header::SET_COOKIE, session::session_cookie(&id));
            let spent = cookie_header(csrf::FORM_COOKIE, "", Some(time::Duration::ZERO));
            r.headers_mut().append(header::SET_COOKIE, spent);
            r
        }
        Err(e) => fail(lang, &e),
    }
}
