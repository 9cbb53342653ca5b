//! Interactions over HTTP (see [`crate::service::interactions`]).

use axum::{extract::State, http::StatusCode, response::Response, Json};
use uuid::Uuid;

pub use crate::service::load::retained;

use super::{
    error::{ApiError, ApiJson, ApiPath, ApiQuery},
    respond, AppState,
};
pub use crate::service::interactions::{
    CreatedInteraction, InteractionsView, ListQuery, NewInteractionBody, OverdueList, OverdueQuery,
    ResolveBody,
};
use crate::{service::interactions, token::Actor};

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list, create))
        .routes(utoipa_axum::routes!(resolve))
        .routes(utoipa_axum::routes!(overdue))
}

/// `POST /v1/customers/{id}/interactions`: 201 with the new interaction (no body).
#[utoipa::path(post, path = "/v1/customers/{id}/interactions", operation_id = "recordInteraction",
    summary = "Record an interaction",
    description = "Records a contact request, complaint, feedback or transcript on the \
        agent's own channel; 201 with the new interaction (without its body). The body is \
        encrypted at rest and never logged. Role: agent.",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    request_body = NewInteractionBody,
    responses((status = 201, description = "The new interaction, without its body.", body = CreatedInteraction),
        (status = 400, description = "`invalid_request` or `unknown_channel`."),
        (status = 403, description = "`forbidden`: the role may not record interactions, or an agent records on another channel than its own."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "interactions")]
pub async fn create(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    body: Result<ApiJson<NewInteractionBody>, ApiError>,
) -> Response {
    let id = path.map(|p| p.0);
    let created = interactions::create(&s, &auth, id, body.map(|b| b.0)).await;
    respond(created.map(|c| (StatusCode::CREATED, Json(c))))
}

/// `GET /v1/customers/{id}/interactions?purpose=&reason=`: the interactions
/// the reader may see, oldest first, and the channels withheld with reasons.
#[utoipa::path(get, path = "/v1/customers/{id}/interactions", operation_id = "listInteractions",
    summary = "List a customer's interactions",
    description = "The interactions the reader may see under the integration rule, oldest \
        first, and the channels withheld with the reason. Role: agent.",
    params(("id" = Uuid, Path, description = "The customer's id."), ListQuery),
    responses((status = 200, description = "The visible interactions.", body = InteractionsView),
        (status = 400, description = "`invalid_request` (no `purpose`) or `unknown_purpose`."),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`: the role, or the token's purposes, do not allow this read."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "interactions")]
pub async fn list(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    query: Result<ApiQuery<ListQuery>, ApiError>,
) -> Response {
    let id = path.map(|p| p.0);
    let seen = interactions::list(&s, &auth, id, query.map(|q| q.0)).await;
    respond(seen.map(Json))
}

/// `PATCH /v1/customers/{id}/interactions/{interaction_id}` with
/// `{"resolved": true}`: 204. Resolving twice keeps the first time.
#[utoipa::path(patch, path = "/v1/customers/{id}/interactions/{interaction_id}", operation_id = "resolveInteraction",
    summary = "Resolve an interaction",
    description = "Marks an interaction resolved with `{\"resolved\": true}`; resolving \
        twice keeps the first time. Role: agent (own channel only).",
    params(("id" = Uuid, Path, description = "The customer's id."),
        ("interaction_id" = Uuid, Path, description = "The interaction's id.")),
    request_body = ResolveBody,
    responses((status = 204, description = "Resolved."),
        (status = 403, description = "`forbidden`: the role may not resolve interactions, or an agent resolves on another channel than its own."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "interactions")]
pub async fn resolve(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<(Uuid, Uuid)>, ApiError>,
    body: Result<ApiJson<ResolveBody>, ApiError>,
) -> Response {
    let ids = path.map(|p| p.0);
    let resolved = interactions::resolve(&s, &auth, ids, body.map(|b| b.0)).await;
    respond(resolved.map(|()| StatusCode::NO_CONTENT))
}

/// `GET /v1/interactions/overdue?purpose=support&limit=`: open contact
/// requests past their due date, most overdue first, without bodies.
///
/// The list carries ids, channel, kind and times only, so it spans channels:
/// a support tool shows every promise that must be kept today. Requests past
/// their retention are gone and not listed.
#[utoipa::path(get, path = "/v1/interactions/overdue", operation_id = "listOverdueInteractions",
    summary = "List overdue contact requests",
    description = "Open contact requests past their due date, most overdue first. The list \
        carries ids, channel, kind and times only (no body, no contact value), so it spans \
        channels: a support tool shows every promise that must be kept today. Requests past \
        their retention are gone and not listed. Roles: agent, service.",
    params(OverdueQuery),
    responses((status = 200, description = "The overdue requests.", body = OverdueList),
        (status = 400, description = "`invalid_request` (no `purpose`, or `limit` out of range) or `unknown_purpose`."),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`: the role, or the token's purposes, do not allow this read.")),
    security(("bearer" = [])), tag = "interactions")]
pub async fn overdue(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    query: Result<ApiQuery<OverdueQuery>, ApiError>,
) -> Response {
    let list = interactions::overdue(&s, &auth, query.map(|q| q.0)).await;
    respond(list.map(Json))
}
