//! Cross-site request forgery: every form carries a token the server can
//! check, and every POST is refused (403, nothing changes) without a good one.
//!
//! - In a session, the token is an HMAC of the session id under the form key
//!   ([`crate::service::sessions::form_key`]): only a page the server
//!   rendered for that session holds it, and it needs no storage.
//! - Before sign-in there is no session, so the sign-in form is protected
//!   by a signed double submit: a random nonce in a short-lived cookie and,
//!   in the form, an expiry with an HMAC over the nonce and the expiry. A
//!   cross-site page can neither read the cookie nor forge the field.
//! - On top of both, a POST that says where it comes from (`Sec-Fetch-Site`,
//!   `Origin`) must come from this site ([`same_origin`]).

use axum::http::{header, HeaderMap};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ring::{hmac, rand::SecureRandom};
use time::OffsetDateTime;

use crate::service::sessions::SessionId;

/// The cookie that holds the sign-in form's nonce.
pub const FORM_COOKIE: &str = "arkku_form";
/// The form field that carries the token.
pub const FIELD: &str = "csrf";
/// How long a sign-in form may stay open.
pub const SIGN_IN_FORM_LIFETIME: time::Duration = time::Duration::hours(1);

/// The token of the forms of the session `id`.
pub fn session_token(key: &hmac::Key, id: &SessionId) -> String {
    let tag = hmac::sign(key, &session_message(id));
    URL_SAFE_NO_PAD.encode(tag.as_ref())
}

/// Whether `token` is the token of the session `id` (constant time).
pub fn verify_session(key: &hmac::Key, id: &SessionId, token: &str) -> bool {
    match URL_SAFE_NO_PAD.decode(token) {
        Ok(tag) => hmac::verify(key, &session_message(id), &tag).is_ok(),
        Err(_) => false,
    }
}

fn session_message(id: &SessionId) -> Vec<u8> {
    [b"session\0".as_slice(), id.expose_secret().as_bytes()].concat()
}

/// A fresh nonce for the sign-in form's cookie; `None` if the system's
/// random source fails.
pub fn new_nonce() -> Option<String> {
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// Whether a cookie value can be a nonce of [`new_nonce`].
pub fn is_nonce(text: &str) -> bool {
    text.len() == 22
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The sign-in form's token for `nonce`, good until `now` +
/// [`SIGN_IN_FORM_LIFETIME`].
pub fn sign_in_token(key: &hmac::Key, nonce: &str, now: OffsetDateTime) -> String {
    let expires = (now + SIGN_IN_FORM_LIFETIME).unix_timestamp();
    let tag = hmac::sign(key, &sign_in_message(nonce, expires));
    format!("{expires}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Whether `token` is a sign-in token for `nonce` that has not expired.
pub fn verify_sign_in(key: &hmac::Key, nonce: &str, token: &str, now: OffsetDateTime) -> bool {
    let Some((expires, tag)) = token.split_once('.') else {
        return false;
    };
    let (Ok(expires), Ok(tag)) = (expires.parse::<i64>(), URL_SAFE_NO_PAD.decode(tag)) else {
        return false;
    };
    now.unix_timestamp() < expires
        && hmac::verify(key, &sign_in_message(nonce, expires), &tag).is_ok()
}

fn sign_in_message(nonce: &str, expires: i64) -> Vec<u8> {
    format!("sign-in\0{nonce}\0{expires}").into_bytes()
}

/// Whether a POST may come from this site by what its headers say. A
/// browser that sends `Sec-Fetch-Site` is believed: only `same-origin`
/// passes (the browser's own verdict, which a proxy that rewrites `Host`
/// does not disturb). Otherwise an `Origin` whose host is not the request's `Host` is
/// refused. `Origin: null` is what Chromium sends from a page served with
/// `Referrer-Policy: no-referrer` (ours), so it says nothing; a request
/// that says nothing (an older browser, a script) relies on the token alone.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    match text(header::ORIGIN) {
        None | Some("null") => true,
        Some(origin) => {
            let host = origin.split_once("://").map(|(_, host)| host);
            matches!((host, text(header::HOST)), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use time::macros::datetime;

    fn key() -> hmac::Key {
        hmac::Key::new(hmac::HMAC_SHA256, &[7u8; 32])
    }

    #[test]
    fn a_session_token_is_good_for_its_session_only() {
        let a = SessionId::parse(&"a".repeat(43)).unwrap();
        let b = SessionId::parse(&"b".repeat(43)).unwrap();
        let token = session_token(&key(), &a);
        assert!(verify_session(&key(), &a, &token));
        assert!(!verify_session(&key(), &b, &token));
        assert!(!verify_session(&key(), &a, ""));
        assert!(!verify_session(&key(), &a, "not base64!"));
        let other_key = hmac::Key::new(hmac::HMAC_SHA256, &[8u8; 32]);
        assert!(!verify_session(&other_key, &a, &token));
    }

    #[test]
    fn a_sign_in_token_is_good_for_its_nonce_until_it_expires() {
        let t0 = datetime!(2026-12-02 10:00 UTC);
        let nonce = new_nonce().unwrap();
        assert!(is_nonce(&nonce));
        let token = sign_in_token(&key(), &nonce, t0);
        assert!(verify_sign_in(&key(), &nonce, &token, t0));
        assert!(!verify_sign_in(&key(), &new_nonce().unwrap(), &token, t0));
        assert!(!verify_sign_in(
            &key(),
            &nonce,
            &token,
            t0 + SIGN_IN_FORM_LIFETIME
        ));
        // A later expiry written in does not match the tag.
        let (_, tag) = token.split_once('.').unwrap();
        let forged = format!("{}.{tag}", (t0 + time::Duration::days(9)).unix_timestamp());
        assert!(!verify_sign_in(
            &key(),
            &nonce,
            &forged,
            t0 + SIGN_IN_FORM_LIFETIME
        ));
        assert!(!verify_sign_in(&key(), &nonce, "junk", t0));
    }

    #[test]
    fn only_same_origin_posts_pass_the_header_check() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("vault.example:8080"));
        assert!(same_origin(&h), "no Origin, no Sec-Fetch-Site");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://vault.example:8080"),
        );
        assert!(same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(same_origin(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
        h.remove("sec-fetch-site");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h), "another Origin, no Sec-Fetch-Site");
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(same_origin(&h), "null says nothing");
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }
}
