//! The console's data subject request pages (DESIGN.md §13), for
//! compliance officers: find a customer (`/console/customers`), see what the
//! vault holds on them masked, reveal it or download it with a case
//! reference, erase with a typed confirmation ([`customers`]); and the
//! register of requests (`/console/requests`, [`requests`]).
//!
//! Handlers only translate: form fields in, a service operation called
//! with the signed-in officer's caller, a page out. Access is the service
//! layer's to decide: an admin (or anyone without purpose `dsr`) is refused
//! there and gets the "not allowed" page.

mod customers;
mod requests;
mod view;

use axum::{
    http::StatusCode,
    response::Response,
    routing::{get, post},
    Router,
};

use super::{render, session::Staff, ErrorPage, WebState};
use crate::service::Error;

/// The pages' routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route(
            "/console/customers",
            get(customers::find_form).post(customers::find),
        )
        .route("/console/customers/{id}", get(customers::page))
        .route("/console/customers/{id}/reveal", post(customers::reveal))
        .route("/console/customers/{id}/export", post(customers::export))
        .route(
            "/console/customers/{id}/erase",
            get(customers::erase_form).post(customers::erase),
        )
        .route(
            "/console/requests",
            get(requests::register).post(requests::create),
        )
        .route("/console/requests/download", post(requests::download))
        .route("/console/requests/{id}", get(requests::page))
        .route(
            "/console/requests/{id}/transition",
            post(requests::transition),
        )
        .route("/console/requests/{id}/extend", post(requests::extend))
}

/// The message key that explains a service error on these pages.
fn message_key(e: &Error) -> &'static str {
    match e {
        Error::Forbidden | Error::PurposeNotAllowed | Error::WriteRefused(_) => "dsr_not_allowed",
        Error::NotFound => "error_not_found",
        Error::CustomerErased => "dsr_customer_erased",
        Error::RateLimited { .. } => "dsr_rate_limited",
        Error::CaseReferenceExists => "dsr_case_exists",
        Error::InvalidTransition(_) => "dsr_invalid_transition",
        Error::InvalidPhone(_) => "dsr_invalid_phone",
        Error::InvalidEmail(_) => "dsr_invalid_email",
        Error::AuditUnavailable
        | Error::DatabaseUnavailable
        | Error::Busy { .. }
        | Error::Internal => "error_unavailable",
        _ => "dsr_invalid_input",
    }
}

/// The page for a service error, in the officer's frame (their navigation
/// stays), with the status the API would answer.
fn failure(staff: &Staff, here: &'static str, e: &Error) -> Response {
    let status = crate::http::error::status(e);
    let page = ErrorPage {
        f: staff.frame(here),
        message: staff.lang.t(message_key(e)),
    };
    render(status, &page)
}

/// The 404 page for a path id that is not a UUID.
fn not_found(staff: &Staff, here: &'static str) -> Response {
    let page = ErrorPage {
        f: staff.frame(here),
        message: staff.lang.t("error_not_found"),
    };
    render(StatusCode::NOT_FOUND, &page)
}

/// A path id, parsed.
fn path_id(text: &str) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(text).ok()
}
