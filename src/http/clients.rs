//! Integration clients over HTTP, for role `admin`: the twins of `arkku
//! clients`. Each handler extracts the request, calls its operation in
//! [`crate::service::clients::admin`] and maps the outcome. A secret appears
//! only in the answers of create and rotate, once.

use axum::{extract::State, http::StatusCode, response::Response, Json};
use uuid::Uuid;

use super::{
    error::{ApiError, ApiJson, ApiPath},
    respond, AppState,
};
use crate::{
    service::clients::{admin, ClientList, ClientView, ClientWithSecret, NewClient, RotateSecret},
    token::Actor,
};

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list, create))
        .routes(utoipa_axum::routes!(show, revoke))
        .routes(utoipa_axum::routes!(rotate_secret))
}

/// `GET /v1/admin/clients`.
#[utoipa::path(get, path = "/v1/admin/clients", operation_id = "listClients",
    summary = "List integration clients",
    description = "Every client, revoked ones included; never a secret. Role: admin. \
        Audited as `client.read`.",
    responses((status = 200, description = "The clients, oldest first.", body = ClientList)),
    security(("bearer" = [])), tag = "admin")]
pub async fn list(State(s): State<AppState>, auth: Result<Actor, ApiError>) -> Response {
    respond(admin::list(&s, &auth).await.map(Json))
}

/// `POST /v1/admin/clients`.
#[utoipa::path(post, path = "/v1/admin/clients", operation_id = "createClient",
    summary = "Register an integration client",
    description = "Registers a client and makes its secret (`arkku_cs_` and 32 random bytes, \
        base64url), returned in this answer only: the vault keeps an argon2id hash of it. The \
        client gets tokens at `POST /oauth/token`. Role: admin. Audited as `client.create`.",
    request_body = NewClient,
    responses((status = 201, description = "The client and its secret, shown once.", body = ClientWithSecret),
        (status = 400, description = "`invalid_request` (a name, role, token lifetime or channel that is not allowed, or a purpose not for the role), `unknown_purpose` or `unknown_channel`."),
        (status = 503, description = "`busy`: the password hasher stayed busy; nothing changed; retry after `Retry-After` seconds.")),
    security(("bearer" = [])), tag = "admin")]
pub async fn create(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    body: Result<ApiJson<NewClient>, ApiError>,
) -> Response {
    let created = admin::create(&s, &auth, body.map(|b| b.0)).await;
    respond(created.map(|c| (StatusCode::CREATED, Json(c))))
}

/// `GET /v1/admin/clients/{id}`.
#[utoipa::path(get, path = "/v1/admin/clients/{id}", operation_id = "readClient",
    summary = "Read an integration client",
    description = "One client, never its secret. Role: admin. Audited as `client.read`.",
    params(("id" = Uuid, Path, description = "The client id.")),
    responses((status = 200, description = "The client.", body = ClientView)),
    security(("bearer" = [])), tag = "admin")]
pub async fn show(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
) -> Response {
    respond(admin::show(&s, &auth, path.map(|p| p.0)).await.map(Json))
}

/// `DELETE /v1/admin/clients/{id}`.
#[utoipa::path(delete, path = "/v1/admin/clients/{id}", operation_id = "revokeClient",
    summary = "Revoke an integration client",
    description = "Its secret stops working and its tokens are refused on every node within \
        two seconds. Revoking a revoked client changes nothing. Role: admin. Audited as \
        `client.revoke`.",
    params(("id" = Uuid, Path, description = "The client id.")),
    responses((status = 200, description = "The client, revoked.", body = ClientView)),
    security(("bearer" = [])), tag = "admin")]
pub async fn revoke(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
) -> Response {
    respond(admin::revoke(&s, &auth, path.map(|p| p.0)).await.map(Json))
}

/// `POST /v1/admin/clients/{id}/secret`.
#[utoipa::path(post, path = "/v1/admin/clients/{id}/secret", operation_id = "rotateClientSecret",
    summary = "Rotate a client's secret",
    description = "Makes a new secret, returned in this answer only. The old secret keeps \
        working for `grace_seconds` (default one day), then not; tokens already issued stay \
        valid until they expire (revoke the client to end them). Role: admin. Audited as \
        `client.rotate_secret`.",
    params(("id" = Uuid, Path, description = "The client id.")),
    request_body = RotateSecret,
    responses((status = 200, description = "The client and its new secret, shown once.", body = ClientWithSecret),
        (status = 400, description = "`invalid_request`: the client is revoked, or the grace period is longer than 30 days."),
        (status = 503, description = "`busy`: the password hasher stayed busy; nothing changed; retry after `Retry-After` seconds.")),
    security(("bearer" = [])), tag = "admin")]
pub async fn rotate_secret(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    body: Result<ApiJson<RotateSecret>, ApiError>,
) -> Response {
    let rotated = admin::rotate_secret(&s, &auth, path.map(|p| p.0), body.map(|b| b.0)).await;
    respond(rotated.map(Json))
}
