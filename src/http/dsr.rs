//! Data subject rights over HTTP: the customer's own view, export and
//! erasure (`/v1/me…`) and the compliance export and erasure of a customer
//! (see [`crate::service::dsr`]). Each handler extracts, calls the
//! operation and maps its outcome; the export's ZIP rendering gets its
//! Content-Type and Content-Disposition here.

use axum::{
    extract::State,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    Json,
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

/// The customer's own routes and the staff export; the staff erasure
/// (`DELETE /v1/customers/{id}`) is routed by [`super::customers::router`]
/// with the other operations on its path.
pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(me, erase_me))
        .routes(utoipa_axum::routes!(export_mine))
        .routes(utoipa_axum::routes!(export))
}

/// `GET /v1/me`: the customer's profile, unmasked.
#[utoipa::path(get, path = "/v1/me", operation_id = "readMyProfile",
    summary = "Read my profile",
    description = "The customer's own profile, unmasked. Data past its retention is gone \
        and listed under `withheld`. Role: customer.",
    responses((status = 200, description = "The customer's profile.", body = ProfileView),
        (status = 404, description = "`not_found`: the token's customer does not exist."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "me")]
pub async fn me(State(s): State<AppState>, auth: Result<Actor, ApiError>) -> Response {
    respond(dsr::me(&s, &auth).await.map(Json))
}

/// `GET /v1/me/export?format=json|zip`: the customer's own export.
#[utoipa::path(get, path = "/v1/me/export", operation_id = "exportMyData",
    summary = "Export my data",
    description = "Everything the vault holds on the customer, in plaintext, with who \
        accessed it and when each item is deleted: the `arkku-export/1` format (JSON \
        Schema in `docs/arkku-export-1.schema.json`), or with `format=zip` the same content \
        as CSV files in a ZIP archive. Role: customer.",
    params(ExportQuery),
    responses((status = 200, description = "The export: `arkku-export/1` JSON, or a ZIP of CSV files with `format=zip`.",
            content((Bundle = "application/json"), (super::openapi::ZipArchive = "application/zip"))),
        (status = 404, description = "`not_found`: the token's customer does not exist."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
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
#[utoipa::path(get, path = "/v1/customers/{id}/export", operation_id = "exportCustomer",
    summary = "Export a customer's data",
    description = "Compliance staff export a customer's data on the customer's request, as \
        in `GET /v1/me/export`. Role: compliance, with a token listing `dsr`.",
    params(("id" = Uuid, Path, description = "The customer's id."),
        ("purpose" = String, Query, description = "Must be `dsr`: an export answers a data subject request.", example = "dsr"),
        ExportQuery),
    responses((status = 200, description = "The export: `arkku-export/1` JSON, or a ZIP of CSV files with `format=zip`.",
            content((Bundle = "application/json"), (super::openapi::ZipArchive = "application/zip"))),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`: not compliance staff, a purpose other than `dsr`, or a token without `dsr`."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
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
#[utoipa::path(delete, path = "/v1/me", operation_id = "eraseMe",
    summary = "Erase my data",
    description = "The customer erases their own data by crypto-shredding: the data keys \
        are destroyed and the records deleted; a tombstone remains. Erasing again answers \
        the same tombstone and changes nothing. Role: customer.",
    responses((status = 200, description = "The tombstone.", body = Tombstone),
        (status = 404, description = "`not_found`: the token's customer does not exist.")),
    security(("bearer" = [])), tag = "me")]
pub async fn erase_me(State(s): State<AppState>, auth: Result<Actor, ApiError>) -> Response {
    respond(dsr::erase_me(&s, &auth).await.map(Json))
}

/// `DELETE /v1/customers/{id}?reason=`: compliance staff erase a customer
/// (token listing `dsr`). Staff act on a documented request, so its case
/// reference is required and goes to the audit entry; the customer's own
/// `DELETE /v1/me` needs none.
#[utoipa::path(delete, path = "/v1/customers/{id}", operation_id = "eraseCustomer",
    summary = "Erase a customer",
    description = "Compliance staff erase a customer on the customer's documented request, \
        as in `DELETE /v1/me`; the request's case reference is required and recorded in \
        the audit entry. Erasing again answers the same tombstone. Role: compliance, with a \
        token listing `dsr`.",
    params(("id" = Uuid, Path, description = "The customer's id."), EraseQuery),
    responses((status = 200, description = "The tombstone.", body = Tombstone),
        (status = 400, description = "`invalid_request`: no `reason`, or one that is not a short single line."),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`: not compliance staff, or a token without `dsr`.")),
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
