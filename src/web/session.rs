//! The session cookie and the extractors that give a handler its signed-in
//! staff member: [`Staff`] for a page, [`StaffForm`] for a POST (origin and
//! CSRF token checked before the handler runs, so no handler can forget).
//! The privacy page's customer extractors (`web::privacy::session`) share
//! the cookie, the redirect ([`to_sign_in`]) and the form check
//! ([`refused_origin`], [`checked_fields`]).
//!
//! The cookie `arkku_session` holds the opaque id only, with `HttpOnly`
//! (no script reads it), `Secure` (never sent over plain HTTP, except that
//! browsers treat `http://127.0.0.1` and `localhost` as secure), and
//! `SameSite=Strict` (never sent with a request another site starts). It has
//! no `Max-Age`: the server decides when the session ends.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use cookie::{Cookie, SameSite};
use serde::de::DeserializeOwned;

use super::{csrf, error_page, error_page_in, Area, Frame, Lang, WebState, Who};
use crate::{
    domain::{Actor, Purpose, StaffRole},
    policy::DSR_PURPOSE,
    service::{
        sessions::{self, SessionId},
        staff::StaffAccount,
        Caller, Error,
    },
};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "arkku_session";

/// The session id a request presents, if it is well-formed.
pub fn presented(headers: &HeaderMap) -> Option<SessionId> {
    super::cookies(headers)
        .find(|(name, _)| name == SESSION_COOKIE)
        .and_then(|(_, value)| SessionId::parse(&value))
}

/// A cookie with the attributes every arkku cookie has.
pub fn cookie_header(name: &str, value: &str, max_age: Option<time::Duration>) -> HeaderValue {
    let mut c = Cookie::build((name, value))
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path("/");
    if let Some(age) = max_age {
        c = c.max_age(age);
    }
    // Names and values here are ASCII tokens (base64url, language tags).
    HeaderValue::from_str(&c.build().to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The `Set-Cookie` value that gives the browser its session.
pub fn session_cookie(id: &SessionId) -> HeaderValue {
    cookie_header(SESSION_COOKIE, id.expose_secret(), None)
}

/// The `Set-Cookie` value that makes the browser forget its session.
pub fn clear_session_cookie() -> HeaderValue {
    cookie_header(SESSION_COOKIE, "", Some(time::Duration::ZERO))
}

/// A signed-in staff member, for a page that needs one. Without a live
/// session the request is redirected to the sign-in page.
pub struct Staff {
    pub account: StaffAccount,
    pub id: SessionId,
    pub lang: Lang,
    /// The token for this session's forms.
    pub csrf: String,
}

impl Staff {
    /// The staff member a request's session belongs to: `Ok(None)` without
    /// a live session, `Err` (an error page) if the vault cannot tell.
    pub async fn of_request(
        headers: &HeaderMap,
        state: &WebState,
    ) -> Result<Option<Staff>, Response> {
        let lang = Lang::of_request(headers);
        let unavailable =
            |_| error_page(lang, StatusCode::SERVICE_UNAVAILABLE, "error_unavailable");
        let Some(id) = presented(headers) else {
            return Ok(None);
        };
        let Some((_, account)) = sessions::resume_staff(&state.app, &id)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let key = sessions::form_key(&state.app).map_err(unavailable)?;
        let csrf = csrf::session_token(&key, &id);
        let staff = Staff {
            account,
            id,
            lang,
            csrf,
        };
        if let Ok(actor) = staff.caller() {
            crate::http::access_log::record(&actor);
        }
        Ok(Some(staff))
    }

    /// The actor this staff member is to the service layer: the account's
    /// id as `sub` (as its sign-in entries name it) and its role. A
    /// compliance officer acts for purpose `dsr`, the only one the console's
    /// operations name; an admin names none (admins call no data operation).
    pub fn caller(&self) -> Caller {
        let purposes = match self.account.role {
            StaffRole::Compliance => {
                vec![Purpose::parse(DSR_PURPOSE).map_err(|_| Error::Internal)?]
            }
            StaffRole::Admin => Vec::new(),
        };
        Ok(Actor {
            sub: self.account.id.to_string(),
            role: self.account.role.role(),
            purposes,
            channel: None,
            client: None,
            customer: None,
        })
    }

    /// The frame of a page at `here` for this staff member.
    pub fn frame(&self, here: &'static str) -> Frame {
        Frame {
            lang: self.lang,
            area: Area::Console,
            here,
            who: Some(Who {
                name: self.account.name.as_str().to_owned(),
                role: self.account.role.as_str(),
            }),
            csrf: self.csrf.clone(),
        }
    }
}

/// To the sign-in page of `area`, forgetting a session cookie that no
/// longer works.
pub fn to_sign_in(area: Area, headers: &HeaderMap) -> Response {
    let mut r = Redirect::to(area.home()).into_response();
    if presented(headers).is_some() {
        r.headers_mut()
            .append(header::SET_COOKIE, clear_session_cookie());
    }
    r
}

impl FromRequestParts<WebState> for Staff {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        Staff::of_request(&parts.headers, state)
            .await?
            .ok_or_else(|| to_sign_in(Area::Console, &parts.headers))
    }
}

/// A form posted by a signed-in staff member, with its CSRF token and
/// origin checked: a POST that fails either gets the 403 page and reaches
/// no handler. `T` is the form's fields (the `csrf` field is checked here
/// and may be left out of `T`).
pub struct StaffForm<T> {
    pub staff: Staff,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<WebState> for StaffForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        if let Some(refused) = refused_origin(Area::Console, &parts.headers) {
            return Err(refused);
        }
        let staff = Staff::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let form = checked_fields(Area::Console, request, state, &staff.id).await?;
        Ok(StaffForm { staff, form })
    }
}

/// The 403 page of `area` for a POST whose origin is another site's;
/// `None` if it may be this site's.
pub fn refused_origin(area: Area, headers: &HeaderMap) -> Option<Response> {
    if csrf::same_origin(headers) {
        return None;
    }
    let lang = Lang::of_request(headers);
    Some(error_page_in(
        area,
        lang,
        StatusCode::FORBIDDEN,
        "error_forbidden",
    ))
}

/// A POST's fields as `T`, once its `csrf` field is the token of session
/// `id`; otherwise the 403 page of `area` (400 for a body that is no form).
pub async fn checked_fields<T: DeserializeOwned>(
    area: Area,
    request: Request,
    state: &WebState,
    id: &SessionId,
) -> Result<T, Response> {
    let lang = Lang::of_request(request.headers());
    let page = |status, key| error_page_in(area, lang, status, key);
    let body = Bytes::from_request(request, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let bad = |_| page(StatusCode::BAD_REQUEST, "error_bad_request");
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).map_err(bad)?;
    let token = fields
        .iter()
        .find(|(name, _)| name == csrf::FIELD)
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    let key = sessions::form_key(&state.app)
        .map_err(|_| page(StatusCode::SERVICE_UNAVAILABLE, "error_unavailable"))?;
    if !csrf::verify_session(&key, id, token) {
        return Err(page(StatusCode::FORBIDDEN, "error_forbidden"));
    }
    serde_urlencoded::from_bytes(&body).map_err(bad)
}
