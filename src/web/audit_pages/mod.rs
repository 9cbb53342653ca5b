//! The console's audit trail for compliance officers (DESIGN.md §13): the
//! filtered trail with pages and its downloads ([`trail`]), one entry with
//! its hashes ([`entry`]), and the verification of the chain with the
//! checkpoints' signatures ([`verify`]).
//!
//! Every handler is parse → service operation → template, with the staff
//! member's `caller()`: the service decides who may look (compliance only;
//! an admin gets its 403 as the "not allowed" page). Reading the trail is not
//! logged (see `service::audit_review`); the CSV download is.

mod entry;
mod form;
mod trail;
mod verify;

use axum::{http::StatusCode, response::Response, routing::get, Router};

use super::{render, session::Staff, ErrorPage, WebState};
use crate::service::Error;

/// Where the pages live.
const HERE: &str = "/console/audit";

/// The trail's routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route(HERE, get(trail::trail))
        .route("/console/audit/export.csv", get(trail::download_csv))
        .route(
            "/console/audit/export.manifest.json",
            get(trail::download_manifest),
        )
        .route("/console/audit/verify", get(verify::form).post(verify::run))
        .route("/console/audit/{seq}", get(entry::entry))
}

/// A service refusal or failure as the error page, inside the staff
/// member's frame (so the navigation and sign-out stay).
fn failure(staff: &Staff, e: Error) -> Response {
    let (status, key) = match e {
        Error::Forbidden | Error::PurposeNotAllowed => (StatusCode::FORBIDDEN, "audit_not_allowed"),
        Error::NotFound => (StatusCode::NOT_FOUND, "audit_no_such_entry"),
        Error::InvalidRequest(_) => (StatusCode::BAD_REQUEST, "audit_invalid_request"),
        Error::AuditUnavailable
        | Error::DatabaseUnavailable
        | Error::Busy { .. }
        | Error::RateLimited { .. } => (StatusCode::SERVICE_UNAVAILABLE, "error_unavailable"),
        other => {
            tracing::error!(error = %other, "an audit trail page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "error_unavailable")
        }
    };
    error(staff, status, key)
}

/// The error page with the message `key`, inside the staff member's frame.
fn error(staff: &Staff, status: StatusCode, key: &str) -> Response {
    let page = ErrorPage {
        f: staff.frame(HERE),
        message: staff.lang.t(key),
    };
    render(status, &page)
}
