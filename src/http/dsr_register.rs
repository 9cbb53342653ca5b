//! The register of data subject requests over HTTP (see
//! [`crate::service::dsr_register`]): compliance staff keep it under
//! `/v1/dsr/requests`, a customer reads their own at `/v1/me/requests`.

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use uuid::Uuid;

use super::{
    error::{ApiError, ApiJson, ApiPath, ApiQuery},
    respond, AppState,
};
pub use crate::service::dsr_register::{
    EventView, ExtendBody, HandlerView, ListQuery, NewRequestBody, OwnRequestView, OwnRequests,
    RegisterCsv, RequestDetail, RequestList, RequestView, TransitionBody,
};
use crate::{service::dsr_register, token::Actor};

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list, create))
        .routes(utoipa_axum::routes!(export_csv))
        .routes(utoipa_axum::routes!(read))
        .routes(utoipa_axum::routes!(extend))
        .routes(utoipa_axum::routes!(transition))
        .routes(utoipa_axum::routes!(mine))
}

/// `POST /v1/dsr/requests`: 201 with the new request.
#[utoipa::path(post, path = "/v1/dsr/requests", operation_id = "createDsrRequest",
    summary = "Register a data subject request",
    description = "Enters a request (access, erasure, rectification) in the register with its \
        case reference, received now or at `received_at`, due one calendar month after receipt \
        (GDPR Art. 12(3); 31 January → the last day of February). Audited as \
        `dsr.request.create`. Role: compliance, with a token listing `dsr`.",
    request_body = NewRequestBody,
    responses((status = 201, description = "The new request.", body = RequestView),
        (status = 400, description = "`invalid_request`: an unknown kind, a missing or over-long case reference, a future `received_at`, or a `customer_id` that names no customer."),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`: not compliance staff, or a token without `dsr`."),
        (status = 409, description = "`case_reference_exists`: the case reference is registered already.")),
    security(("bearer" = [])), tag = "dsr_register")]
pub async fn create(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    body: Result<ApiJson<NewRequestBody>, ApiError>,
) -> Response {
    let created = dsr_register::create(&s, &auth, body.map(|b| b.0)).await;
    respond(created.map(|r| (StatusCode::CREATED, Json(r))))
}

/// `GET /v1/dsr/requests?status=&kind=&customer_id=&limit=`.
#[utoipa::path(get, path = "/v1/dsr/requests", operation_id = "listDsrRequests",
    summary = "List the register of data subject requests",
    description = "Open requests first — overdue, then due within seven days, then by due \
        date — then closed ones; each with `overdue` and `due_soon` as of now. Not audited \
        (the register holds no contact data). Role: compliance, with a token listing `dsr`.",
    params(ListQuery),
    responses((status = 200, description = "The requests.", body = RequestList),
        (status = 400, description = "`invalid_request`: an unknown status or kind, or `limit` out of range."),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`.")),
    security(("bearer" = [])), tag = "dsr_register")]
pub async fn list(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    query: Result<ApiQuery<ListQuery>, ApiError>,
) -> Response {
    respond(
        dsr_register::list(&s, &auth, query.map(|q| q.0))
            .await
            .map(Json),
    )
}

/// `GET /v1/dsr/requests.csv`: the register as CSV.
#[utoipa::path(get, path = "/v1/dsr/requests.csv", operation_id = "exportDsrRequests",
    summary = "Download the register as CSV",
    description = "The list of `GET /v1/dsr/requests` (same filters, same order) as a CSV \
        file; cells a spreadsheet would run as a formula get a leading `'`. Audited as \
        `dsr.request.export`. Role: compliance, with a token listing `dsr`.",
    params(ListQuery),
    responses((status = 200, description = "The CSV file.", content_type = "text/csv", body = String),
        (status = 400, description = "`invalid_request`."),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`.")),
    security(("bearer" = [])), tag = "dsr_register")]
pub async fn export_csv(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    query: Result<ApiQuery<ListQuery>, ApiError>,
) -> Response {
    let csv = dsr_register::export_csv(&s, &auth, query.map(|q| q.0)).await;
    respond(csv.map(csv_response))
}

fn csv_response(csv: RegisterCsv) -> Response {
    let mut resp = csv.bytes.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    let disposition = format!("attachment; filename=\"{}\"", csv.file_name);
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

/// `GET /v1/dsr/requests/{id}`.
#[utoipa::path(get, path = "/v1/dsr/requests/{id}", operation_id = "readDsrRequest",
    summary = "Read a data subject request",
    description = "One request with its history: every creation, extension and transition, \
        by whom, when and why. Role: compliance, with a token listing `dsr`.",
    params(("id" = Uuid, Path, description = "The request's id.")),
    responses((status = 200, description = "The request and its history.", body = RequestDetail),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`."),
        (status = 404, description = "`not_found`.")),
    security(("bearer" = [])), tag = "dsr_register")]
pub async fn read(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
) -> Response {
    respond(
        dsr_register::read(&s, &auth, path.map(|p| p.0))
            .await
            .map(Json),
    )
}

/// `POST /v1/dsr/requests/{id}/extend {months, reason}`.
#[utoipa::path(post, path = "/v1/dsr/requests/{id}/extend", operation_id = "extendDsrRequest",
    summary = "Extend a request's due date",
    description = "Moves the due date of an open request that is not overdue on by one or two \
        months, at most two in total, counted from the receipt (Art. 12(3)); the reason is \
        required and kept in the history (never in the audit log). Audited as \
        `dsr.request.update`. Role: compliance, with a token listing `dsr`.",
    params(("id" = Uuid, Path, description = "The request's id.")),
    request_body = ExtendBody,
    responses((status = 200, description = "The request, with its new due date.", body = RequestView),
        (status = 400, description = "`invalid_request`: `months` not 1 or 2, or no reason."),
        (status = 404, description = "`not_found`."),
        (status = 409, description = "`invalid_transition`: closed, overdue, or past two months in total.")),
    security(("bearer" = [])), tag = "dsr_register")]
pub async fn extend(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    body: Result<ApiJson<ExtendBody>, ApiError>,
) -> Response {
    let id = path.map(|p| p.0);
    respond(
        dsr_register::extend(&s, &auth, id, body.map(|b| b.0))
            .await
            .map(Json),
    )
}

/// `POST /v1/dsr/requests/{id}/transition {to, reason?, customer_id?}`.
#[utoipa::path(post, path = "/v1/dsr/requests/{id}/transition", operation_id = "transitionDsrRequest",
    summary = "Move a request to its next state",
    description = "received → identity_verified (naming the customer) → in_progress → \
        completed; any open request may be refused (with a reason) or withdrawn; closed \
        requests stay closed. An erasure request is completed by erasing the customer with \
        its case reference (which completes it), or here once the customer is erased. Audited \
        as `dsr.request.update`. Role: compliance, with a token listing `dsr`.",
    params(("id" = Uuid, Path, description = "The request's id.")),
    request_body = TransitionBody,
    responses((status = 200, description = "The request in its new state.", body = RequestView),
        (status = 400, description = "`invalid_request`: an unknown state, no reason to refuse, or no customer to verify."),
        (status = 404, description = "`not_found`."),
        (status = 409, description = "`invalid_transition`: the state machine does not allow this move.")),
    security(("bearer" = [])), tag = "dsr_register")]
pub async fn transition(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    body: Result<ApiJson<TransitionBody>, ApiError>,
) -> Response {
    let id = path.map(|p| p.0);
    respond(
        dsr_register::transition(&s, &auth, id, body.map(|b| b.0))
            .await
            .map(Json),
    )
}

/// `GET /v1/me/requests`: the customer's own requests.
#[utoipa::path(get, path = "/v1/me/requests", operation_id = "listMyRequests",
    summary = "List my data subject requests",
    description = "The customer's own requests in the register: kind, case reference, state, \
        when received and when due. Role: customer.",
    responses((status = 200, description = "The customer's requests.", body = OwnRequests),
        (status = 403, description = "`forbidden`: not a customer token.")),
    security(("bearer" = [])), tag = "me")]
pub async fn mine(State(s): State<AppState>, auth: Result<Actor, ApiError>) -> Response {
    respond(dsr_register::mine(&s, &auth).await.map(Json))
}
