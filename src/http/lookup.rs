//! `POST /v1/lookup` (see [`crate::service::lookup`]).

use axum::{extract::State, response::Response, Json};

use super::{
    error::{ApiError, ApiJson},
    respond, AppState,
};
pub use crate::service::lookup::LookupBody;
use crate::{service::lookup, service::views::LookupView, token::Actor};

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(lookup))
}

/// `POST /v1/lookup`: `{matches: [...]}`, or 404 when nothing (visible) matches.
#[utoipa::path(post, path = "/v1/lookup", operation_id = "lookupCustomers",
    summary = "Find customers by a contact value",
    description = "Caller id: which customers hold this value on this channel. Matches pass \
        through the integration rule like a profile read: a match the reader may not see is \
        left out, as if it did not exist. Every lookup is audited and rate-limited per \
        caller. Roles: agent, service; compliance for purpose `dsr`, to find the data \
        subject of a request.",
    request_body = LookupBody,
    responses((status = 200, description = "The visible matches.", body = LookupView),
        (status = 400, description = "`invalid_request`, `invalid_email`, `invalid_phone`, `unknown_channel` or `unknown_purpose`."),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`: the role, or the token's purposes, do not allow this lookup."),
        (status = 404, description = "`not_found`: nothing the caller may see matches."),
        (status = 429, description = "`rate_limited`: too many lookups by this caller.")),
    security(("bearer" = [])), tag = "lookup")]
pub async fn lookup(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    body: Result<ApiJson<LookupBody>, ApiError>,
) -> Response {
    let found = lookup::lookup(&s, &auth, body.map(|b| b.0)).await;
    respond(found.map(Json))
}
