//! The compliance view of the audit log over HTTP: `GET /v1/audit` and
//! `GET /v1/audit/verify` (see [`crate::service::audit_review`]; reading
//! the log is not itself logged).

use axum::{extract::State, response::Response, Json};

use super::{
    error::{ApiError, ApiQuery},
    respond, AppState,
};
pub use crate::service::audit_review::{ActorView, AuditQuery, EntriesView, EntryView};
use crate::{audit::verify::VerifyReport, service::audit_review, token::Actor};

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list))
        .routes(utoipa_axum::routes!(verify_chain))
}

/// `GET /v1/audit`: entries oldest first, filtered, with a cursor.
#[utoipa::path(get, path = "/v1/audit", operation_id = "listAuditEntries",
    summary = "Read the audit log",
    description = "Audit entries, oldest first, filtered, one page at a time (pass \
        `next_cursor` as `cursor` for the next page). Entries hold no contact data, so \
        reading them is not itself logged. Role: compliance.",
    params(AuditQuery),
    responses((status = 200, description = "A page of entries.", body = EntriesView),
        (status = 400, description = "`invalid_request`: a filter, `limit` or `cursor` is not valid.")),
    security(("bearer" = [])), tag = "audit")]
pub async fn list(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    query: Result<ApiQuery<AuditQuery>, ApiError>,
) -> Response {
    let page = audit_review::list(&s, &auth, query.map(|q| q.0)).await;
    respond(page.map(Json))
}

/// `GET /v1/audit/verify`: recomputes the whole chain and the stored checkpoints.
#[utoipa::path(get, path = "/v1/audit/verify", operation_id = "verifyAuditChain",
    summary = "Verify the audit chain",
    description = "Recomputes the whole hash chain and checks the signed checkpoints. \
        Role: compliance.",
    responses((status = 200, description = "The verification report.", body = VerifyReport)),
    security(("bearer" = [])), tag = "audit")]
pub async fn verify_chain(State(s): State<AppState>, auth: Result<Actor, ApiError>) -> Response {
    respond(audit_review::verify_chain(&s, &auth).await.map(Json))
}
