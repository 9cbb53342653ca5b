//! Interactions over HTTP (see [`crate::service::interactions`]).

use axum::{
    extract::State,
    http::StatusCode,
    response::Response,
    routing::{get, patch},
    Json, Router,
};
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

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/customers/{id}/interactions", get(list).post(create))
        .route(
            "/v1/customers/{id}/interactions/{interaction_id}",
            patch(resolve),
        )
        .route("/v1/interactions/overdue", get(overdue))
}

/// `POST /v1/customers/{id}/interactions`: 201 with the new interaction (no body).
#[utoipa::path(post, path = "/v1/customers/{id}/interactions", params(("id" = Uuid, Path)), request_body = NewInteractionBody,
    responses((status = 201, body = CreatedInteraction), (status = 400, body = super::error::Problem), (status = 404, body = super::error::Problem), (status = 410, body = super::error::Problem)),
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
#[utoipa::path(get, path = "/v1/customers/{id}/interactions", params(("id" = Uuid, Path), ListQuery),
    responses((status = 200, body = InteractionsView), (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem), (status = 410, body = super::error::Problem)),
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
#[utoipa::path(patch, path = "/v1/customers/{id}/interactions/{interaction_id}",
    params(("id" = Uuid, Path), ("interaction_id" = Uuid, Path)), request_body = ResolveBody,
    responses((status = 204), (status = 400, body = super::error::Problem), (status = 404, body = super::error::Problem)),
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
#[utoipa::path(get, path = "/v1/interactions/overdue", params(OverdueQuery),
    responses((status = 200, body = OverdueList), (status = 403, body = super::error::Problem)),
    security(("bearer" = [])), tag = "interactions")]
pub async fn overdue(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    query: Result<ApiQuery<OverdueQuery>, ApiError>,
) -> Response {
    let list = interactions::overdue(&s, &auth, query.map(|q| q.0)).await;
    respond(list.map(Json))
}
