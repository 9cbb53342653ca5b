//! The console's frame pages: `/` (to the console), `/console/` (the
//! sign-in form, or the home page once signed in), sign-in, sign-out and the
//! language switch. The sign-in calls [`staff::sign_in`], which checks and
//! audits it (`auth.sign_in`); a session begins only after it says yes.

use askama::Template;
use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
    Router,
};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::{
    csrf, error_page,
    i18n::LANG_COOKIE,
    render,
    session::{self, cookie_header, Staff, StaffForm},
    Frame, Lang, WebState,
};
use crate::{
    http::peer::Peer,
    service::{
        sessions::{self, SubjectKind},
        staff::{self, SignInError},
    },
};

/// The console's routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(home))
        .route("/console/sign-in", post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/{*rest}", get(not_found))
}

/// The sign-in page.
#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    f: Frame,
    csrf: String,
    /// The name as typed, kept after a refusal (never the password or code).
    name: String,
    error: Option<&'static str>,
}

/// The home page.
#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    f: Frame,
}

/// `GET /console/`: home once signed in, else the sign-in form.
async fn home(State(state): State<WebState>, headers: HeaderMap) -> Response {
    match Staff::of_request(&headers, &state).await {
        Ok(Some(staff)) => render(
            StatusCode::OK,
            &HomePage {
                f: staff.frame("/console/"),
            },
        ),
        Ok(None) => sign_in_form(&state, &headers, StatusCode::OK, String::new(), None),
        Err(page) => page,
    }
}

/// The sign-in form with its CSRF token, and the cookie holding its nonce
/// (kept if the browser has one, so that two open tabs both work).
fn sign_in_form(
    state: &WebState,
    headers: &HeaderMap,
    status: StatusCode,
    name: String,
    error: Option<&'static str>,
) -> Response {
    let lang = Lang::of_request(headers);
    let nonce = super::cookies(headers)
        .find(|(n, v)| n == csrf::FORM_COOKIE && csrf::is_nonce(v))
        .map(|(_, v)| v)
        .or_else(csrf::new_nonce);
    let (Some(nonce), Ok(key)) = (nonce, sessions::form_key(&state.app)) else {
        return error_page(lang, StatusCode::SERVICE_UNAVAILABLE, "error_unavailable");
    };
    let page = SignInPage {
        f: Frame::anonymous(lang, "/console/"),
        csrf: csrf::sign_in_token(&key, &nonce, state.app.clock.now()),
        name,
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

/// The sign-in form's fields.
#[derive(Deserialize)]
struct SignInFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
}

/// `POST /console/sign-in`: origin and form token checked, the address's
/// failures counted, then the credential check; a session on success.
async fn sign_in(
    State(state): State<WebState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let lang = Lang::of_request(&headers);
    let Ok(fields) = serde_urlencoded::from_bytes::<SignInFields>(&body) else {
        return error_page(lang, StatusCode::BAD_REQUEST, "error_bad_request");
    };
    let password = Zeroizing::new(fields.password);
    let now = state.app.clock.now();
    let nonce = super::cookies(&headers).find(|(n, _)| n == csrf::FORM_COOKIE);
    let token_ok = match (nonce, sessions::form_key(&state.app)) {
        (Some((_, nonce)), Ok(key)) => csrf::verify_sign_in(&key, &nonce, &fields.csrf, now),
        _ => false,
    };
    if !csrf::same_origin(&headers) || !token_ok {
        return error_page(lang, StatusCode::FORBIDDEN, "error_forbidden");
    }
    let again =
        |status, key| sign_in_form(&state, &headers, status, fields.name.clone(), Some(key));
    if !state.throttle.allows(peer, now) {
        return again(StatusCode::TOO_MANY_REQUESTS, "sign_in_throttled");
    }
    let account = match staff::sign_in(&state.app, &fields.name, password, &fields.code, peer).await
    {
        Ok(account) => account,
        Err(SignInError::Refused) => {
            state.throttle.failed(peer, now);
            return again(StatusCode::UNAUTHORIZED, "sign_in_refused");
        }
        Err(SignInError::Locked { .. }) => return again(StatusCode::FORBIDDEN, "sign_in_locked"),
        Err(SignInError::Disabled) => return again(StatusCode::FORBIDDEN, "sign_in_disabled"),
        Err(SignInError::Busy) => return again(StatusCode::SERVICE_UNAVAILABLE, "sign_in_busy"),
        Err(SignInError::Unavailable) => {
            return error_page(lang, StatusCode::SERVICE_UNAVAILABLE, "error_unavailable")
        }
    };
    match sessions::begin(&state.app, SubjectKind::Staff, account.id, account.epoch).await {
        Ok((id, _)) => {
            let mut r = Redirect::to("/console/").into_response();
            r.headers_mut()
                .append(header::SET_COOKIE, session::session_cookie(&id));
            // The form's nonce has served its purpose.
            let spent = cookie_header(csrf::FORM_COOKIE, "", Some(time::Duration::ZERO));
            r.headers_mut().append(header::SET_COOKIE, spent);
            r
        }
        Err(_) => error_page(lang, StatusCode::SERVICE_UNAVAILABLE, "error_unavailable"),
    }
}

/// No fields: the sign-out form carries only its CSRF token.
#[derive(Deserialize)]
struct NoFields {}

/// `POST /console/sign-out`: the session's row is deleted, so the id is
/// worthless everywhere at once.
async fn sign_out(State(state): State<WebState>, posted: StaffForm<NoFields>) -> Response {
    let lang = posted.staff.lang;
    if sessions::end(&state.app, &posted.staff.id).await.is_err() {
        return error_page(lang, StatusCode::SERVICE_UNAVAILABLE, "error_unavailable");
    }
    let mut r = Redirect::to("/console/").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, session::clear_session_cookie());
    r
}

/// Any other path under `/console/`.
async fn not_found(headers: HeaderMap) -> Response {
    error_page(
        Lang::of_request(&headers),
        StatusCode::NOT_FOUND,
        "error_not_found",
    )
}

/// Where the language switch returns to.
#[derive(Deserialize)]
pub struct Back {
    back: Option<String>,
}

/// `GET /lang/{code}?back=/path`: remembers the language in the `lang`
/// cookie and returns to the page. Only a local path is followed (no
/// `//host`, no scheme), so the switch is no open redirect.
pub async fn switch_language(Path(code): Path<String>, Query(back): Query<Back>) -> Response {
    let Some(lang) = Lang::from_tag(&code) else {
        return error_page(Lang::default(), StatusCode::NOT_FOUND, "error_not_found");
    };
    let target = back
        .back
        .filter(|p| is_local_path(p))
        .unwrap_or_else(|| "/console/".to_owned());
    let mut r = Redirect::to(&target).into_response();
    let year = time::Duration::days(365);
    r.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(LANG_COOKIE, lang.code(), Some(year)),
    );
    r
}

/// Whether `path` is a path on this site: `/` then anything but a second
/// `/` or `\`, and no control characters.
fn is_local_path(path: &str) -> bool {
    let mut chars = path.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !path.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_switch_returns_only_to_local_paths() {
        assert!(is_local_path("/console/"));
        assert!(is_local_path("/"));
        assert!(!is_local_path("//evil.example/"));
        assert!(!is_local_path("/\\evil.example"));
        assert!(!is_local_path("https://evil.example/"));
        assert!(!is_local_path("/console/\r\nSet-Cookie: x=y"));
        assert!(!is_local_path(""));
    }
}
