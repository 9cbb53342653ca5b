//! The downloads (the export as JSON or ZIP, through the operation behind
//! `GET /v1/me/export`), sign-out, and erasure after a typed confirmation:
//! the operation behind `DELETE /v1/me`, after which every session of the
//! customer ends and the page says what was erased and what the vault keeps.

use askama::Template;
use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    fail,
    session::{Customer, CustomerForm},
    words,
};
use crate::{
    service::{
        dsr::{self, ExportQuery},
        export::Export,
        sessions::{self, SubjectKind},
    },
    web::{render, session, Frame, WebState},
};

/// No fields: the sign-out form carries only its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

/// `POST /privacy/sign-out`.
pub async fn sign_out(State(state): State<WebState>, posted: CustomerForm<NoFields>) -> Response {
    let lang = posted.customer.lang;
    if let Err(e) = sessions::end(&state.app, &posted.customer.session).await {
        return fail(lang, &e);
    }
    let mut r = Redirect::to("/privacy/").into_response();
    r.headers_mut()
        .append(header::SET_COOKIE, session::clear_session_cookie());
    r
}

#[derive(Deserialize)]
pub struct ExportFields {
    #[serde(default)]
    format: String,
}

/// `POST /privacy/export`: the customer's export as a download (a POST with
/// CSRF, because it releases the customer's data).
pub async fn export(State(state): State<WebState>, posted: CustomerForm<ExportFields>) -> Response {
    let CustomerForm { customer, form } = posted;
    let query = ExportQuery {
        purpose: None,
        format: Some(form.format),
        reason: None,
    };
    let export = match dsr::export_mine(&state.app, &customer.caller(), Ok(query)).await {
        Ok(export) => export,
        Err(e) => return fail(customer.lang, &e),
    };
    let (bytes, kind, name) = match export {
        Export::Json(bundle) => match serde_json::to_vec_pretty(&bundle) {
            Ok(bytes) => {
                let name = format!("arkku-export-{}.json", customer.id);
                (bytes, "application/json", name)
            }
            Err(_) => return fail(customer.lang, &crate::service::Error::Internal),
        },
        Export::Zip(zip) => (zip.bytes, "application/zip", zip.file_name),
    };
    let mut r = bytes.into_response();
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

#[derive(Template)]
#[template(path = "privacy_erase.html")]
struct ErasePage {
    f: Frame,
    word: &'static str,
    error: Option<&'static str>,
}

/// `GET /privacy/erase`: what erasure does, and the confirmation form.
pub async fn show(customer: Customer) -> Response {
    let page = ErasePage {
        word: customer.lang.t("privacy_erase_word"),
        f: customer.frame("/privacy/erase"),
        error: None,
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct EraseFields {
    #[serde(default)]
    confirm: String,
}

#[derive(Template)]
#[template(path = "privacy_erased.html")]
struct ErasedPage {
    f: Frame,
    erased_at: String,
}

/// `POST /privacy/erase`: erases when the word typed is the page's word
/// (in the page's language); otherwise the form again, nothing changed.
pub async fn erase(State(state): State<WebState>, posted: CustomerForm<EraseFields>) -> Response {
    let CustomerForm { customer, form } = posted;
    let lang = customer.lang;
    let zone = &state.app.config.display_zone;
    let word = lang.t("privacy_erase_word");
    if !form.confirm.trim().eq_ignore_ascii_case(word) {
        let page = ErasePage {
            word,
            f: customer.frame("/privacy/erase"),
            error: Some(lang.t("privacy_erase_mistyped")),
        };
        return render(StatusCode::BAD_REQUEST, &page);
    }
    let tombstone = match dsr::erase_me(&state.app, &customer.caller()).await {
        Ok(t) => t,
        Err(e) => return fail(lang, &e),
    };
    // The erasure stands; sessions of an erased customer end on their next
    // request anyway, so a failure here only logs.
    if let Err(e) = sessions::end_all(&state.app, SubjectKind::Customer, customer.id).await {
        tracing::warn!(
            code = e.code(),
            "the erased customer's sessions were not deleted"
        );
    }
    let page = ErasedPage {
        f: Frame::anonymous(lang, "/privacy/"),
        erased_at: words::rfc3339_date_time(lang, zone, &tombstone.erased_at),
    };
    let mut r = render(StatusCode::OK, &page);
    r.headers_mut()
        .append(header::SET_COOKIE, session::clear_session_cookie());
    r
}
