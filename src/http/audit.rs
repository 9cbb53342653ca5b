//! The compliance view of the audit log over HTTP: `GET /v1/audit` and
//! `GET /v1/audit/verify` (see [`crate::service::audit_review`]; reading
//! the log is not itself logged).

use axum::{extract::State, response::Response, routing::get, Json, Router};

use super::{
    error::{ApiError, ApiQuery},
    respond, AppState,
};
pub use crate::service::audit_review::{ActorView, AuditQuery, EntriesView, EntryView};
use crate::{audit::verify::VerifyReport, service::audit_review, token::Actor};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/audit", get(list))
        .route("/v1/audit/verify", get(verify_chain))
}

/// `GET /v1/audit`: entries oldest first, filtered, with a cursor.
#[utoipa::path(get, path = "/v1/audit", params(AuditQuery),
    responses((status = 200, body = EntriesView), (status = 403, body = super::error::Problem)), security(("bearer" = [])), tag = "audit")]
pub async fn list(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    query: Result<ApiQuery<AuditQuery>, ApiError>,
) -> Response {
    let page = audit_review::list(&s, &auth, query.map(|q| q.0)).await;
    respond(page.map(Json))
}

/// `GET /v1/audit/verify`: recomputes the whole chain and the stored checkpoints.
#[utoipa::path(get, path = "/v1/audit/verify",
    responses((status = 200, body = VerifyReport), (status = 403, body = super::error::Problem)), security(("bearer" = [])), tag = "audit")]
pub async fn verify_chain(State(s): State<AppState>, auth: Result<Actor, ApiError>) -> Response {
    respond(audit_review::verify_chain(&s, &auth).await.map(Json))
}
