//! `/console/audit/verify`: a button (a POST with its CSRF token, since a
//! verification recomputes the whole chain) and the result — ok or broken,
//! the entries checked, the head, the first bad entry and what is wrong
//! with it — with the stored checkpoints and their signature status.

use askama::Template;
use axum::{extract::State, http::StatusCode, response::Response};
use serde::Deserialize;

use super::{failure, HERE};
use crate::{
    audit::verify::VerifyReport,
    service::audit_review::{self, CheckpointView, SignatureStatus},
    web::{
        render,
        session::{Staff, StaffForm},
        Frame, WebState,
    },
};

/// The newest checkpoints the page lists (a long log has many).
const SHOWN_CHECKPOINTS: usize = 50;

/// A checkpoint as a row: its status in words.
pub struct PointRow {
    pub c: CheckpointView,
    pub valid: bool,
    pub status: &'static str,
}

/// The verification page: the button, the stored checkpoints, and after
/// a run its report.
#[derive(Template)]
#[template(path = "audit_verify.html")]
pub struct VerifyPage {
    f: Frame,
    report: Option<VerifyReport>,
    /// The newest checkpoints, newest first.
    points: Vec<PointRow>,
    /// How many are stored.
    stored: usize,
}

/// No fields: the form carries only its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

/// `GET /console/audit/verify`: the button and the checkpoints.
pub async fn form(State(state): State<WebState>, staff: Staff) -> Response {
    page(&state, &staff, None).await
}

/// `POST /console/audit/verify`: runs the verification (not logged, as the
/// API's is not), then the page with its report.
pub async fn run(State(state): State<WebState>, posted: StaffForm<NoFields>) -> Response {
    let staff = posted.staff;
    match audit_review::verify_chain(&state.app, &staff.caller()).await {
        Ok(report) => page(&state, &staff, Some(report)).await,
        Err(e) => failure(&staff, e),
    }
}

/// The page, listing the checkpoints (the service decides who may see them).
async fn page(state: &WebState, staff: &Staff, report: Option<VerifyReport>) -> Response {
    let points = match audit_review::checkpoints(&state.app, &staff.caller()).await {
        Ok(p) => p,
        Err(e) => return failure(staff, e),
    };
    let f = staff.frame(HERE);
    let stored = points.len();
    let points = points
        .into_iter()
        .rev()
        .take(SHOWN_CHECKPOINTS)
        .map(|c| {
            let (valid, key) = match c.signature {
                SignatureStatus::Valid => (true, "audit_sig_valid"),
                SignatureStatus::OtherKey => (false, "audit_sig_other_key"),
                SignatureStatus::Invalid => (false, "audit_sig_invalid"),
            };
            PointRow {
                c,
                valid,
                status: f.t(key),
            }
        })
        .collect();
    let page = VerifyPage {
        report,
        points,
        stored,
        f,
    };
    render(StatusCode::OK, &page)
}
