//! Data subject rights over HTTP: the customer's own view, export and
//! erasure (`/v1/me…`) and the compliance export and erasure of a customer
//! (see [`crate::service::dsr`]). Each handler extracts, calls the
//! operation and maps its outcome; the export's ZIP rendering gets its
//! Content-Type and Content-Disposition here.

use axum::{
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    routing::get,
    Json, Router,
};
use uuid::Uuid;

use super::{
    error::{ApiError, ApiPath, ApiQuery},
    respond,
    views::ProfileView,
    AppState,
};
pub use crate::service::dsr::{EraseQuery, ExportQuery, Tombstone};
use crate::{
    service::{
        dsr,
        export::{Bundle, Export},
    },
    token::Actor,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/me", get(me).delete(erase_me))
        .route("/v1/me/export", get(export_mine))
        .route("/v1/customers/{id}/export", get(export))
}

/// `GET /v1/me`: the customer's profile, unmasked.
#[utoipa::path(get, path = "/v1/me", responses((status = 200, body = ProfileView), (status = 410, body = super::error::Problem)),
    security(("bearer" = [])), tag = "me")]
pub async fn me(State(s): State<AppState>, auth: Result<Actor, ApiError>) -> Response {
    respond(dsr::me(&s, &auth).await.map(Json))
}

/// `GET /v1/me/export?format=json|zip`: the customer's own export.
#[utoipa::path(get, path = "/v1/me/export", params(ExportQuery),
    responses((status = 200, body = Bundle, description = "arkku-export/1 (application/json) or a ZIP of CSV files"), (status = 410, body = super::error::Problem)),
    security(("bearer" = [])), tag = "me")]
pub async fn export_mine(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    query: Result<ApiQuery<ExportQuery>, ApiError>,
) -> Response {
    let export = dsr::export_mine(&s, &auth, query.map(|q| q.0)).await;
    respond(export.map(export_response))
}

/// `GET /v1/customers/{id}/export?purpose=dsr&format=json|zip`: compliance
/// staff export a customer's data on the customer's request.
#[utoipa::path(get, path = "/v1/customers/{id}/export", params(("id" = Uuid, Path), ExportQuery),
    responses((status = 200, body = Bundle, description = "arkku-export/1 (application/json) or a ZIP of CSV files"), (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem), (status = 410, body = super::error::Problem)),
    security(("bearer" = [])), tag = "compliance")]
pub async fn export(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    query: Result<ApiQuery<ExportQuery>, ApiError>,
) -> Response {
    let export = dsr::export(&s, &auth, path.map(|p| p.0), query.map(|q| q.0)).await;
    respond(export.map(export_response))
}

/// An export as `application/json`, or as a ZIP download.
fn export_response(export: Export) -> Response {
    let zip = match export {
        Export::Json(bundle) => return Json(bundle).into_response(),
        Export::Zip(zip) => zip,
    };
    let mut resp = zip.bytes.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    let disposition = format!("attachment; filename=\"{}\"", zip.file_name);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `DELETE /v1/me`: the customer erases their own data.
#[utoipa::path(delete, path = "/v1/me", responses((status = 200, body = Tombstone)),
    security(("bearer" = [])), tag = "me")]
pub async fn erase_me(State(s): State<AppState>, auth: Result<Actor, ApiError>) -> Response {
    respond(dsr::erase_me(&s, &auth).await.map(Json))
}

/// `DELETE /v1/customers/{id}?reason=`: compliance staff erase a customer
/// (token listing `dsr`). Staff act on a documented request, so its case
/// reference is required and goes to the audit entry; the customer's own
/// `DELETE /v1/me` needs none.
#[utoipa::path(delete, path = "/v1/customers/{id}", params(("id" = Uuid, Path), EraseQuery),
    responses((status = 200, body = Tombstone), (status = 400, body = super::error::Problem), (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem)),
    security(("bearer" = [])), tag = "compliance")]
pub async fn erase(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    query: Result<ApiQuery<EraseQuery>, ApiError>,
) -> Response {
    let erased = dsr::erase(&s, &auth, path.map(|p| p.0), query.map(|q| q.0)).await;
    respond(erased.map(Json))
}
