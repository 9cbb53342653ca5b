//! Customers and contact points over HTTP: create, read (filtered by the
//! integration rule), update, add and remove contact points. Each handler
//! extracts the request, calls its operation in
//! [`crate::service::customers`] and maps the outcome to a status and body.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use uuid::Uuid;

pub use crate::service::customers::{
    AcceptedContact, CreateCustomer, NewContactBody, PatchCustomer, ReadQuery,
};
pub use crate::service::{input::short_text, load::live_profile};

use super::{
    error::{ApiError, ApiJson, ApiPath, ApiQuery},
    respond,
    views::{ContactView, ProfileView},
    AppState,
};
use crate::{
    service::customers::{self, ContactAdded},
    token::Actor,
};

/// The customer routes. `DELETE /v1/customers/{id}` is the staff erasure of
/// [`super::dsr::erase`], routed here with the other operations on its path.
pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(create))
        .routes(utoipa_axum::routes!(read, patch, super::dsr::erase))
        .routes(utoipa_axum::routes!(add_contact))
        .routes(utoipa_axum::routes!(remove_contact))
}

/// `POST /v1/customers`. The 201 response describes what the
/// caller just wrote, masked: it releases nothing the caller did not send.
#[utoipa::path(post, path = "/v1/customers", operation_id = "createCustomer",
    summary = "Create a customer",
    description = "Creates a customer with an optional profile and contact points. Roles: \
        service, agent. The 201 answer describes what the caller just wrote, masked: it \
        releases nothing the caller did not send.",
    request_body = CreateCustomer,
    responses((status = 201, description = "The new customer, values masked.", body = ProfileView),
        (status = 400, description = "`invalid_request`, `invalid_email`, `invalid_phone`, `unknown_channel`, or `invalid_display_name`: the display name is empty, longer than 200 characters, or holds a control character or an invisible formatting character (a bidirectional override or isolate, a zero-width character, a byte-order mark)."),
        (status = 403, description = "`forbidden`: the role may not create customers, or an agent adds a contact point on another channel than its own."),
        (status = 409, description = "`contact_exists`: the request holds the same value twice on one channel.")),
    security(("bearer" = [])), tag = "customers")]
pub async fn create(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    body: Result<ApiJson<CreateCustomer>, ApiError>,
) -> Response {
    let created = customers::create(&s, &auth, body.map(|b| b.0)).await;
    respond(created.map(|view| (StatusCode::CREATED, Json(view))))
}

/// `GET /v1/customers/{id}`: the profile filtered by the
/// integration rule; values masked unless `reveal=true` with a `reason`.
#[utoipa::path(get, path = "/v1/customers/{id}", operation_id = "readCustomer",
    summary = "Read a customer's profile",
    description = "The profile filtered by the integration rule: each channel's contact \
        points are shown only when the purpose, the customer's consent and the retention \
        rules allow it; the others are listed under `withheld` with the reason. Values are \
        masked unless `reveal=true` with a `reason` (audited as `contact.reveal`, rate-limited \
        per caller). Roles: agent, service.",
    params(("id" = Uuid, Path, description = "The customer's id."), ReadQuery),
    responses((status = 200, description = "The profile as the caller may see it.", body = ProfileView),
        (status = 400, description = "`invalid_request` (no `purpose`, or `reveal` without `reason`) or `unknown_purpose`."),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`: the role, or the token's purposes, do not allow this read."),
        (status = 410, description = "`customer_erased`: the customer has been erased."),
        (status = 429, description = "`rate_limited`: too many reveals by this caller.")),
    security(("bearer" = [])), tag = "customers")]
pub async fn read(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    query: Result<ApiQuery<ReadQuery>, ApiError>,
) -> Response {
    let profile = customers::read(&s, &auth, path.map(|p| p.0), query.map(|q| q.0)).await;
    respond(profile.map(Json))
}

/// `PATCH /v1/customers/{id}`: display name and preferred channel; 204.
#[utoipa::path(patch, path = "/v1/customers/{id}", operation_id = "updateCustomer",
    summary = "Update a customer's profile",
    description = "Sets or clears (`null`) the display name and the preferred channel; an \
        absent field is left alone. Roles: service, agent.",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    request_body = PatchCustomer,
    responses((status = 204, description = "Updated."),
        (status = 400, description = "`invalid_request`, `unknown_channel`, or `invalid_display_name` (as for create)."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "customers")]
pub async fn patch(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    body: Result<ApiJson<PatchCustomer>, ApiError>,
) -> Response {
    let updated = customers::update(&s, &auth, path.map(|p| p.0), body.map(|b| b.0)).await;
    respond(updated.map(|()| StatusCode::NO_CONTENT))
}

/// `POST /v1/customers/{id}/contacts`. A caller who may read the channel
/// under the integration rule gets 201 with the contact (masked), or 409
/// `contact_exists` when the customer already holds the value there. Anyone
/// else gets 202 without an id, whether the value was new or not: a status
/// code must not confirm a guessed value on a channel the caller cannot see.
/// Both outcomes take the same path (one commit with the audit entry, which
/// records the real outcome in its detail).
#[utoipa::path(post, path = "/v1/customers/{id}/contacts", operation_id = "addContact",
    summary = "Add a contact point",
    description = "A caller who may read the channel under the integration rule (for \
        `support`) gets 201 with the contact (masked), or 409 `contact_exists` when the \
        customer already holds the value there. Anyone else gets 202 without an id, whether \
        the value was new or not: a status code must not confirm a guessed value on a \
        channel the caller cannot see. Roles: service, agent (own channel only).",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    request_body = NewContactBody,
    responses((status = 201, description = "Added; the contact, masked.", body = ContactView),
        (status = 202, description = "Accepted, for a caller who may not read the channel.", body = AcceptedContact),
        (status = 400, description = "`invalid_request`, `invalid_email`, `invalid_phone` or `unknown_channel`."),
        (status = 403, description = "`forbidden`: the role may not add contact points, or an agent writes on another channel than its own."),
        (status = 409, description = "`contact_exists`: the customer already holds this value on this channel."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "customers")]
pub async fn add_contact(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    body: Result<ApiJson<NewContactBody>, ApiError>,
) -> Response {
    let added = customers::add_contact(&s, &auth, path.map(|p| p.0), body.map(|b| b.0)).await;
    respond(added.map(|a| match a {
        ContactAdded::Created(contact) => (StatusCode::CREATED, Json(contact)).into_response(),
        ContactAdded::Accepted(accepted) => (StatusCode::ACCEPTED, Json(accepted)).into_response(),
    }))
}

/// `DELETE /v1/customers/{id}/contacts/{contact_id}`: 204.
#[utoipa::path(delete, path = "/v1/customers/{id}/contacts/{contact_id}", operation_id = "removeContact",
    summary = "Remove a contact point",
    description = "Roles: service, agent (own channel only).",
    params(("id" = Uuid, Path, description = "The customer's id."),
        ("contact_id" = Uuid, Path, description = "The contact point's id.")),
    responses((status = 204, description = "Removed."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "customers")]
pub async fn remove_contact(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<(Uuid, Uuid)>, ApiError>,
) -> Response {
    let removed = customers::remove_contact(&s, &auth, path.map(|p| p.0)).await;
    respond(removed.map(|()| StatusCode::NO_CONTENT))
}
