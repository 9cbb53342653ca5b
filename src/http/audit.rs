//! The compliance view of the audit log over HTTP: `GET /v1/audit`, `GET
//! /v1/audit/verify` (see [`crate::service::audit_review`]; reading the log
//! is not itself logged) and the CSV export with its signed manifest (see
//! [`crate::service::audit_export`]; the CSV download is logged).

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderName, HeaderValue},
    response::{IntoResponse, Response},
    Json,
};

use super::{
    error::{ApiError, ApiQuery},
    respond, AppState,
};
pub use crate::service::audit_export::ExportQuery;
pub use crate::service::audit_review::{ActorView, AuditQuery, EntriesView, EntryView};
use crate::{
    audit::{export::Manifest, verify::VerifyReport},
    service::{
        audit_export::{self, CsvDownload},
        audit_review,
    },
    token::Actor,
};

/// The response header naming the seq a CSV download runs up to.
pub const THROUGH_HEADER: &str = "arkku-audit-through";

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list))
        .routes(utoipa_axum::routes!(verify_chain))
        .routes(utoipa_axum::routes!(export_csv))
        .routes(utoipa_axum::routes!(export_manifest))
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

/// `GET /v1/audit/export`: the filtered view as a CSV download.
#[utoipa::path(get, path = "/v1/audit/export", operation_id = "exportAuditCsv",
    summary = "Download the audit log as CSV",
    description = "The entries matching the filters, up to `through` (default: the last \
        entry now, named in the `Arkku-Audit-Through` response header), oldest first, as a \
        CSV file with every field the chain hashes. Fetch the manifest with the same query \
        and the same `through` to prove the file later (`arkku audit verify-export`). The \
        download is audited as `audit.export`. Role: compliance.",
    params(ExportQuery),
    responses((status = 200, description = "The CSV file.",
            content((super::openapi::CsvFile = "text/csv")),
            headers(("arkku-audit-through" = i64, description = "The seq the file runs up to."))),
        (status = 400, description = "`invalid_request`: a filter or `through` is not valid.")),
    security(("bearer" = [])), tag = "audit")]
pub async fn export_csv(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    query: Result<ApiQuery<ExportQuery>, ApiError>,
) -> Response {
    let download = audit_export::export_csv(&s, &auth, query.map(|q| q.0)).await;
    respond(download.map(csv_response))
}

/// The CSV body streamed, as an attachment named for its bound (the
/// console's download answers the same way).
pub fn csv_response(d: CsvDownload) -> Response {
    let mut resp = Body::from_stream(d.rows.into_stream()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    attachment(h, &d.file_name);
    h.insert(HeaderName::from_static(THROUGH_HEADER), d.through.into());
    resp
}

/// `Content-Disposition: attachment` with the file's name.
pub fn attachment(h: &mut axum::http::HeaderMap, file_name: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
}

/// `GET /v1/audit/export/manifest`: the signed manifest of that CSV file.
#[utoipa::path(get, path = "/v1/audit/export/manifest", operation_id = "exportAuditManifest",
    summary = "Download the signed manifest of an audit CSV",
    description = "The manifest of the CSV file that `GET /v1/audit/export` gives for the same \
        query and `through`: the file's SHA-256, the entry count, the filters, the first and \
        last seq, the last entry's hash and the signed checkpoint that covers it (one is made \
        if none exists yet), signed with the vault's audit key. Not audited: it holds no \
        entries. Role: compliance.",
    params(ExportQuery),
    responses((status = 200, description = "The manifest (`arkku-audit-export/1`).", body = Manifest),
        (status = 400, description = "`invalid_request`: a filter or `through` is not valid.")),
    security(("bearer" = [])), tag = "audit")]
pub async fn export_manifest(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    query: Result<ApiQuery<ExportQuery>, ApiError>,
) -> Response {
    let manifest = audit_export::export_manifest(&s, &auth, query.map(|q| q.0)).await;
    respond(manifest.map(|m| {
        let name = audit_export::manifest_file_name(m.through);
        let mut resp = Json(m).into_response();
        attachment(resp.headers_mut(), &name);
        resp
    }))
}
