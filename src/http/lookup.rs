//! `POST /v1/lookup` (see [`crate::service::lookup`]).

use axum::{extract::State, response::Response, routing::post, Json, Router};

use super::{
    error::{ApiError, ApiJson},
    respond, AppState,
};
pub use crate::service::lookup::LookupBody;
use crate::{service::lookup, service::views::LookupView, token::Actor};

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/lookup", post(lookup))
}

/// `POST /v1/lookup`: `{matches: [...]}`, or 404 when nothing (visible) matches.
#[utoipa::path(post, path = "/v1/lookup", request_body = LookupBody,
    responses((status = 200, body = LookupView), (status = 404, body = super::error::Problem), (status = 429, body = super::error::Problem)), security(("bearer" = [])), tag = "lookup")]
pub async fn lookup(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    body: Result<ApiJson<LookupBody>, ApiError>,
) -> Response {
    let found = lookup::lookup(&s, &auth, body.map(|b| b.0)).await;
    respond(found.map(Json))
}
