//! The consent ledger over HTTP (see [`crate::service::consents`]): staff on
//! `/v1/customers/{id}/consents`, the customer on `/v1/me/consents`.

use axum::{extract::State, http::StatusCode, response::Response, Json};
use uuid::Uuid;

use super::{
    error::{describe_body_error, ApiError, ApiJson, ApiPath},
    respond, AppState,
};
pub use crate::service::consents::{ConsentBody, LedgerView, MyConsentBody, Receipt};
use crate::{service::consents, token::Actor};

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list, record))
        .routes(utoipa_axum::routes!(list_mine, record_mine))
}

pub use crate::service::ledger::{ledger_of, load as ledger, of_facts as ledger_of_facts};
pub use crate::service::views::{ConsentEventView, Evidence};

/// The customer's body, read by its `action`: `confirm`, or a change. The
/// same error text as every other body: it names the field and never echoes
/// a value.
fn my_consent_body(
    body: Result<ApiJson<serde_json::Map<String, serde_json::Value>>, ApiError>,
) -> Result<MyConsentBody, ApiError> {
    let ApiJson(body) = body?;
    let confirm = body.get("action").and_then(|a| a.as_str()) == Some("confirm");
    let body = serde_json::Value::Object(body);
    let invalid = |e: serde_path_to_error::Error<serde_json::Error>| {
        ApiError::InvalidRequest(describe_body_error(&e.path().to_string(), e.inner()))
    };
    Ok(if confirm {
        MyConsentBody::Confirm(serde_path_to_error::deserialize(body).map_err(invalid)?)
    } else {
        MyConsentBody::Change(serde_path_to_error::deserialize(body).map_err(invalid)?)
    })
}

/// `POST /v1/customers/{id}/consents`: record a grant or withdrawal; 201 receipt.
/// Who may record for which purpose is policy (`consent_recorders`); an
/// agent's grant is `pending_confirmation` until the customer confirms it.
#[utoipa::path(post, path = "/v1/customers/{id}/consents", operation_id = "recordConsent",
    summary = "Record a consent change",
    description = "Records a grant or a withdrawal the customer gave; 201 with the receipt. \
        Who may record for which purpose is policy (`consent_recorders` in \
        `purposes.toml`). A grant an agent records is `pending_confirmation`: it opens \
        nothing until the customer confirms it. Roles: agent, compliance.",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    request_body = ConsentBody,
    responses((status = 201, description = "The receipt.", body = Receipt),
        (status = 400, description = "`invalid_request`, `unknown_purpose` or `unknown_channel`."),
        (status = 403, description = "`forbidden`: the role may not record consent for this purpose or channel."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "consents")]
pub async fn record(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    body: Result<ApiJson<ConsentBody>, ApiError>,
) -> Response {
    let id = path.map(|p| p.0);
    let receipt = consents::record(&s, &auth, id, body.map(|b| b.0)).await;
    respond(receipt.map(|r| (StatusCode::CREATED, Json(r))))
}

/// `GET /v1/customers/{id}/consents`: `{current, history}`.
#[utoipa::path(get, path = "/v1/customers/{id}/consents", operation_id = "listConsents",
    summary = "Read a customer's consent ledger",
    description = "The current state of each (purpose, channel) and the full history. \
        Roles: agent, compliance.",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    responses((status = 200, description = "The ledger.", body = LedgerView),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "consents")]
pub async fn list(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
) -> Response {
    let ledger = consents::list(&s, &auth, path.map(|p| p.0)).await;
    respond(ledger.map(Json))
}

/// `POST /v1/me/consents`: the customer grants or withdraws consent, or
/// confirms a grant an agent recorded (`{"action": "confirm", "consent_id"}`;
/// 404 if no such event, 409 `consent_not_pending` if it is not a grant
/// awaiting confirmation any more).
#[utoipa::path(post, path = "/v1/me/consents", operation_id = "recordMyConsent",
    summary = "Change or confirm my consent",
    description = "The customer grants or withdraws consent, or confirms a grant an agent \
        recorded (`{\"action\": \"confirm\", \"consent_id\": …}`); 201 with the receipt. \
        Role: customer.",
    request_body = MyConsentBody,
    responses((status = 201, description = "The receipt.", body = Receipt),
        (status = 400, description = "`invalid_request`, `unknown_purpose` or `unknown_channel`."),
        (status = 404, description = "`not_found`: no such consent event to confirm, or the token's customer does not exist."),
        (status = 409, description = "`consent_not_pending`: the event is not a grant awaiting confirmation any more."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "consents")]
pub async fn record_mine(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    body: Result<ApiJson<serde_json::Map<String, serde_json::Value>>, ApiError>,
) -> Response {
    let receipt = consents::record_mine(&s, &auth, my_consent_body(body)).await;
    respond(receipt.map(|r| (StatusCode::CREATED, Json(r))))
}

/// `GET /v1/me/consents`: the customer's own ledger.
#[utoipa::path(get, path = "/v1/me/consents", operation_id = "listMyConsents",
    summary = "Read my consent ledger",
    description = "The customer's own ledger: the current state and the full history. \
        Role: customer.",
    responses((status = 200, description = "The ledger.", body = LedgerView),
        (status = 404, description = "`not_found`: the token's customer does not exist."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "consents")]
pub async fn list_mine(State(s): State<AppState>, auth: Result<Actor, ApiError>) -> Response {
    respond(consents::list_mine(&s, &auth).await.map(Json))
}
