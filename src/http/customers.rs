//! Customers and contact points over HTTP: create, read (filtered by the
//! integration rule), update, add and remove contact points. Each handler
//! extracts the request, calls its operation in
//! [`crate::service::customers`] and maps the outcome to a status and body.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post},
    Json, Router,
};
use uuid::Uuid;

pub use crate::service::customers::{
    AcceptedContact, CreateCustomer, NewContactBody, PatchCustomer, ReadQuery,
};
pub use crate::service::{
    access::require_channel_write,
    input::{display_name, short_text},
    load::{live_profile, require_live},
};

use super::{
    audited::AuditScope,
    error::{ApiError, ApiJson, ApiPath, ApiQuery},
    respond,
    views::{ContactView, ProfileView},
    AppState,
};
use crate::{
    domain::ChannelKind,
    policy::{authorise_purpose, PurposeDenied, PurposeGrant},
    service::customers::{self, ContactAdded},
    token::Actor,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/customers", post(create))
        .route(
            "/v1/customers/{id}",
            get(read).patch(patch).delete(super::dsr::erase),
        )
        .route("/v1/customers/{id}/contacts", post(add_contact))
        .route(
            "/v1/customers/{id}/contacts/{contact_id}",
            delete(remove_contact),
        )
}

/// `POST /v1/customers` (DESIGN.md §8). The 201 response describes what the
/// caller just wrote, masked: it releases nothing the caller did not send.
#[utoipa::path(post, path = "/v1/customers", request_body = CreateCustomer,
    responses((status = 201, body = ProfileView),
        (status = 400, description = "invalid_request, invalid_email, invalid_phone, unknown_channel, or invalid_display_name: the display name is empty, longer than 200 characters, or holds a control character or an invisible formatting character (a bidirectional override or isolate, a zero-width character, a byte-order mark)", body = super::error::Problem),
        (status = 409, body = super::error::Problem)),
    security(("bearer" = [])), tag = "customers")]
pub async fn create(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    body: Result<ApiJson<CreateCustomer>, ApiError>,
) -> Response {
    let created = customers::create(&s, &auth, body.map(|b| b.0)).await;
    respond(created.map(|view| (StatusCode::CREATED, Json(view))))
}

/// `GET /v1/customers/{id}` (DESIGN.md §5, §8): the profile filtered by the
/// integration rule; values masked unless `reveal=true` with a `reason`.
#[utoipa::path(get, path = "/v1/customers/{id}", params(("id" = Uuid, Path), ReadQuery),
    responses((status = 200, body = ProfileView), (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem), (status = 410, body = super::error::Problem), (status = 429, body = super::error::Problem)),
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
#[utoipa::path(patch, path = "/v1/customers/{id}", params(("id" = Uuid, Path)), request_body = PatchCustomer,
    responses((status = 204),
        (status = 400, description = "invalid_request, unknown_channel, or invalid_display_name (as for create)", body = super::error::Problem),
        (status = 404, body = super::error::Problem)), security(("bearer" = [])), tag = "customers")]
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
#[utoipa::path(post, path = "/v1/customers/{id}/contacts", params(("id" = Uuid, Path)), request_body = NewContactBody,
    responses((status = 201, body = ContactView), (status = 202, body = AcceptedContact), (status = 403, body = super::error::Problem), (status = 409, body = super::error::Problem)), security(("bearer" = [])), tag = "customers")]
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
#[utoipa::path(delete, path = "/v1/customers/{id}/contacts/{contact_id}", params(("id" = Uuid, Path), ("contact_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = super::error::Problem)), security(("bearer" = [])), tag = "customers")]
pub async fn remove_contact(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<(Uuid, Uuid)>, ApiError>,
) -> Response {
    let removed = customers::remove_contact(&s, &auth, path.map(|p| p.0)).await;
    respond(removed.map(|()| StatusCode::NO_CONTENT))
}

// Transitional: the handlers of consents, interactions and data subject
// requests still call these; they go once those run on their own
// operations in `crate::service`.

/// Maps a purpose refusal to its API error.
pub fn purpose_error(denied: PurposeDenied, purpose: &str) -> ApiError {
    match denied {
        PurposeDenied::Unknown => ApiError::UnknownPurpose(purpose.chars().take(32).collect()),
        PurposeDenied::NotAllowed => ApiError::PurposeNotAllowed,
    }
}

/// Grants the purpose of a read, recording it in the audit scope.
pub fn grant_purpose(
    s: &AppState,
    actor: &Actor,
    purpose: Option<&str>,
    scope: &mut AuditScope,
) -> Result<PurposeGrant, ApiError> {
    let purpose = purpose.ok_or_else(|| ApiError::InvalidRequest("purpose is required".into()))?;
    // Record what was asked for, even when refused (a well-formed name only:
    // arbitrary text does not go into the log).
    if let Ok(p) = crate::domain::Purpose::parse(purpose) {
        scope.purpose = Some(p.to_string());
    }
    let grant = authorise_purpose(
        &s.policies,
        actor.role,
        &actor.purposes,
        purpose,
        actor.channel.as_ref(),
    )
    .map_err(|d| purpose_error(d, purpose))?;
    scope.purpose = Some(grant.purpose().to_string());
    Ok(grant)
}

/// Now, from the vault's clock.
pub(crate) fn now() -> time::OffsetDateTime {
    crate::clock::Clock::system().now()
}

/// How a stored channel's values are masked (see [`crate::service::Services::channel_kind`]).
pub(crate) fn channel_kind(s: &AppState, channel: &str) -> ChannelKind {
    s.channel_kind(channel)
}
