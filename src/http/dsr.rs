//! Data subject rights (DESIGN.md §8): the customer's own view, export and
//! erasure, for the customer (`/v1/me…`) and for compliance staff acting on
//! the customer's request (`/v1/customers/{id}/export`, `DELETE
//! /v1/customers/{id}`).
//!
//! Access here is a [`SubjectAccess`]: the whole record, unmasked, whatever
//! the consent state, because it is the customer's own data. Data past its
//! retention is gone here as everywhere else.

use axum::{
    extract::State,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    audited::{finish, AuditScope},
    auth::{own_customer, own_customer_id, require_role},
    consents::ConsentEventView,
    customers::{channel_kind, live_profile, now, purpose_error, short_text},
    error::{ApiError, ApiPath, ApiQuery},
    export::{
        AccessPart, Bundle, ContactPart, CustomerPart, InteractionPart, RetentionPart, FORMAT,
    },
    views::{rfc3339, ContactView, ProfileView, WithheldView},
    AppState,
};
use crate::{
    audit::Action,
    domain::{ChannelId, Role},
    policy::{
        authorise_subject_access, consent_deadline, retention_deadline, ChannelDecision,
        Disclosure, Retained, SubjectAccess, WithheldReason, DSR_PURPOSE,
    },
    store::{
        self,
        audit::AuditFilter,
        customers::ContactRow,
        erasure::{self, Erasure},
        interactions::InteractionRow,
    },
    token::Actor,
    vault::records::{self, CustomerKeys},
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

/// Query of the export endpoints.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Staff exports: must be `dsr`. Not needed on `/v1/me/export`.
    #[param(ignore)]
    pub purpose: Option<String>,
    /// `json` (default) or `zip` (the same content as CSV files).
    #[param(value_type = Option<super::openapi::ExportFormat>, inline)]
    pub format: Option<String>,
    /// Free text for the audit log, e.g. the request's ticket number.
    pub reason: Option<String>,
}

/// What an erasure leaves: the tombstone.
#[derive(Serialize, ToSchema)]
pub struct Tombstone {
    pub id: Uuid,
    pub erased_at: String,
}

fn subject_access(
    s: &AppState,
    actor: &Actor,
    scope: &mut AuditScope,
) -> Result<SubjectAccess, ApiError> {
    scope.purpose = Some(DSR_PURPOSE.to_owned());
    authorise_subject_access(&s.policies, actor.role, &actor.purposes)
        .map_err(|d| purpose_error(d, DSR_PURPOSE))
}

/// When a contact point's retention ends; `None` for data no policy covers.
fn contact_deadline(s: &AppState, c: &ContactRow) -> Option<time::OffsetDateTime> {
    let ch = ChannelId::parse(&c.channel).ok()?;
    let item = Retained::Contact {
        last_activity_at: store::from_micros(c.last_activity_at),
    };
    retention_deadline(&s.policies, &ch, item)
}

fn interaction_deadline(s: &AppState, i: &InteractionRow) -> Option<time::OffsetDateTime> {
    let ch = ChannelId::parse(&i.channel).ok()?;
    retention_deadline(&s.policies, &ch, super::interactions::retained(i))
}

/// Whether an item with this deadline is still held at `now`.
fn live(deadline: Option<time::OffsetDateTime>, now: time::OffsetDateTime) -> bool {
    deadline.is_some_and(|d| d > now)
}

// --- the customer's own view -------------------------------------------------

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
    let mut scope = AuditScope::new(&auth, Action::CustomerRead).customer(own_customer(&auth));
    let outcome = async {
        let actor = auth?;
        let id = own_customer_id(&actor)?;
        let access = subject_access(&s, &actor, &mut scope)?;
        me_inner(&s, &access, id, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn me_inner(
    s: &AppState,
    access: &SubjectAccess,
    id: Uuid,
    scope: &mut AuditScope,
) -> Result<Json<ProfileView>, ApiError> {
    let store::customers::Profile {
        customer, contacts, ..
    } = live_profile(s, id).await?;
    let at = now();
    let mut disclosure = Disclosure::default();
    let mut views = Vec::new();
    for c in &contacts {
        let Some(ch) = ChannelId::parse(&c.channel)
            .ok()
            .filter(|_| live(contact_deadline(s, c), at))
        else {
            disclosure.record(
                &c.channel,
                &ChannelDecision::Withhold(WithheldReason::RetentionExpired),
            );
            continue;
        };
        let permit = access.permit(&ch);
        disclosure.record(&c.channel, &ChannelDecision::Permit(permit.clone()));
        let opened = records::open_contact(
            &s.keyring,
            &s.db,
            &permit,
            channel_kind(s, &c.channel),
            id,
            c,
        )
        .await?;
        views.push(ContactView::from(opened));
    }
    let profile = records::open_profile(&s.keyring, &s.db, access.grant(), &customer).await?;
    scope.disclosure(&disclosure);
    Ok(Json(ProfileView {
        id,
        display_name: profile.display_name,
        external_ref: profile.external_ref,
        preferred_channel: customer.preferred_channel,
        created_at: rfc3339(store::from_micros(customer.created_at)),
        contacts: views,
        withheld: WithheldView::list(&disclosure),
    }))
}

// --- export --------------------------------------------------------------------

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
    let mut scope = AuditScope::new(&auth, Action::Export).customer(own_customer(&auth));
    let outcome = async {
        let actor = auth?;
        let id = own_customer_id(&actor)?;
        let ApiQuery(q) = query?;
        export_inner(&s, &actor, id, q, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
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
    let mut scope =
        AuditScope::new(&auth, Action::Export).customer(path.as_ref().ok().map(|p| p.0));
    let outcome = async {
        let actor = auth?;
        require_role(&actor, &[Role::Compliance])?;
        let ApiPath(id) = path?;
        let ApiQuery(q) = query?;
        match q.purpose.as_deref() {
            Some(DSR_PURPOSE) => {}
            Some(_) => return Err(ApiError::PurposeNotAllowed),
            None => return Err(ApiError::InvalidRequest("purpose=dsr is required".into())),
        }
        export_inner(&s, &actor, id, q, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn export_inner(
    s: &AppState,
    actor: &Actor,
    id: Uuid,
    q: ExportQuery,
    scope: &mut AuditScope,
) -> Result<Response, ApiError> {
    let access = subject_access(s, actor, scope)?;
    let zip = match q.format.as_deref() {
        None | Some("json") => false,
        Some("zip") => true,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "format must be json or zip".into(),
            ))
        }
    };
    scope.reason = q
        .reason
        .as_deref()
        .map(|r| short_text("reason", r, 200))
        .transpose()?;
    let bundle = bundle(s, &access, id).await?;
    scope.detail("format", if zip { "zip" } else { "json" });
    scope.detail("contacts", bundle.contacts.len());
    scope.detail("interactions", bundle.interactions.len());
    scope.detail("consents", bundle.consents.len());
    scope.detail("access_log", bundle.access_log.len());
    if !zip {
        return Ok(Json(bundle).into_response());
    }
    let bytes = bundle.to_zip().map_err(|e| {
        tracing::error!(customer_id = %id, error = %e, "export zip failed");
        ApiError::Internal
    })?;
    let mut resp = bytes.into_response();
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"arkku-export-{id}.zip\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Everything the vault holds on one customer, opened under subject access.
async fn bundle(s: &AppState, access: &SubjectAccess, id: Uuid) -> Result<Bundle, ApiError> {
    let store::customers::Profile {
        customer, contacts, ..
    } = live_profile(s, id).await?;
    let interactions = store::interactions::for_customer(&s.db, id).await?;
    let consents = store::consents::for_customer(&s.db, id).await?;
    let entries = store::audit::query(
        &s.db,
        &AuditFilter {
            after_seq: 0,
            customer_id: Some(id),
            actor: None,
            action: None,
            decision: None,
            since: None,
            until: None,
            limit: i64::MAX,
        },
    )
    .await?;
    let at = now();
    let mut retention = Vec::new();

    let mut contact_parts = Vec::with_capacity(contacts.len());
    for c in &contacts {
        let deadline = contact_deadline(s, c);
        let Some(ch) = ChannelId::parse(&c.channel)
            .ok()
            .filter(|_| live(deadline, at))
        else {
            continue;
        };
        let opened = records::open_contact(
            &s.keyring,
            &s.db,
            &access.permit(&ch),
            channel_kind(s, &c.channel),
            id,
            c,
        )
        .await?;
        retention.push(RetentionPart {
            item: "contact",
            id: c.id,
            channel: c.channel.clone(),
            delete_after: deadline.map(rfc3339),
        });
        contact_parts.push(ContactPart {
            id: c.id,
            channel: opened.channel,
            value: opened.value,
            label: opened.label,
            created_at: rfc3339(opened.created_at),
            last_activity_at: rfc3339(store::from_micros(c.last_activity_at)),
        });
    }

    let mut keys = CustomerKeys::new(&s.keyring, &s.db, id);
    let mut interaction_parts = Vec::with_capacity(interactions.len());
    for i in &interactions {
        let deadline = interaction_deadline(s, i);
        let Some(ch) = ChannelId::parse(&i.channel)
            .ok()
            .filter(|_| live(deadline, at))
        else {
            continue;
        };
        let opened = keys.open_interaction(&access.permit(&ch), i).await?;
        retention.push(RetentionPart {
            item: "interaction",
            id: i.id,
            channel: i.channel.clone(),
            delete_after: deadline.map(rfc3339),
        });
        interaction_parts.push(InteractionPart {
            id: opened.id,
            channel: opened.channel,
            kind: opened.kind,
            body: opened.body,
            created_at: rfc3339(opened.created_at),
            due_at: opened.due_at.map(rfc3339),
            resolved_at: opened.resolved_at.map(rfc3339),
        });
    }

    for c in &consents {
        let deadline = consent_deadline(
            &s.policies,
            &c.purpose,
            store::from_micros(c.at),
            c.expires_at.map(store::from_micros),
        );
        retention.push(RetentionPart {
            item: "consent",
            id: c.id,
            channel: c.channel.clone(),
            delete_after: deadline.map(rfc3339),
        });
    }

    let profile = records::open_profile(&s.keyring, &s.db, access.grant(), &customer).await?;
    Ok(Bundle {
        format: FORMAT,
        exported_at: rfc3339(at),
        customer: CustomerPart {
            id,
            display_name: profile.display_name,
            external_ref: profile.external_ref,
            preferred_channel: customer.preferred_channel,
            created_at: rfc3339(store::from_micros(customer.created_at)),
            updated_at: rfc3339(store::from_micros(customer.updated_at)),
        },
        contacts: contact_parts,
        interactions: interaction_parts,
        consents: consents.into_iter().map(ConsentEventView::from).collect(),
        access_log: entries
            .into_iter()
            .map(|e| AccessPart {
                seq: e.seq,
                at: rfc3339(store::from_micros(e.at)),
                action: e.action,
                role: e.actor_role,
                purpose: e.purpose,
                channel: e.channel,
                decision: e.decision,
            })
            .collect(),
        retention,
    })
}

// --- erasure -------------------------------------------------------------------

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
    let mut scope = AuditScope::new(&auth, Action::CustomerErase).customer(own_customer(&auth));
    let outcome = async {
        let actor = auth?;
        let id = own_customer_id(&actor)?;
        erase_inner(&s, &actor, id, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

/// Query of `DELETE /v1/customers/{id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EraseQuery {
    /// The case reference of the erasure request (required; recorded as the
    /// audit entry's `reason`).
    #[param(required = true, min_length = 1, max_length = 200)]
    pub reason: Option<String>,
}

/// Longest case reference accepted.
const MAX_CASE_REFERENCE: usize = 200;

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
    let mut scope =
        AuditScope::new(&auth, Action::CustomerErase).customer(path.as_ref().ok().map(|p| p.0));
    let outcome = async {
        let actor = auth?;
        require_role(&actor, &[Role::Compliance])?;
        let ApiPath(id) = path?;
        let ApiQuery(q) = query?;
        let reason = q.reason.ok_or_else(|| {
            ApiError::InvalidRequest(
                "reason (the case reference of the erasure request) is required".into(),
            )
        })?;
        scope.reason = Some(short_text("reason", &reason, MAX_CASE_REFERENCE)?);
        erase_inner(&s, &actor, id, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

/// Erases by crypto-shredding; a second erasure answers the same tombstone
/// and changes nothing.
async fn erase_inner(
    s: &AppState,
    actor: &Actor,
    id: Uuid,
    scope: &mut AuditScope,
) -> Result<(StatusCode, Json<Tombstone>), ApiError> {
    subject_access(s, actor, scope)?;
    let tombstone = |at| Tombstone {
        id,
        erased_at: rfc3339(store::from_micros(at)),
    };
    match store::customers::state(&s.db, id).await? {
        None => return Err(ApiError::NotFound),
        Some(Some(at)) => {
            scope.detail("already_erased", true);
            return Ok((StatusCode::OK, Json(tombstone(at))));
        }
        Some(None) => {}
    }
    let held = erasure::holdings(&s.db, id).await?;
    scope.detail("already_erased", false);
    scope.detail("data_keys", held.data_keys);
    scope.detail("contacts", held.contacts);
    scope.detail("interactions", held.interactions);
    scope.detail("consents", held.consents);
    scope.commit_before_write(s).await?;
    match erasure::erase(&s.db, id, store::to_micros(now())).await? {
        Erasure::Done { erased_at, .. } | Erasure::Already { erased_at } => {
            Ok((StatusCode::OK, Json(tombstone(erased_at))))
        }
        Erasure::Missing => Err(ApiError::NotFound),
    }
}
