//! Data subject rights: the customer's own view, export and erasure, for
//! the customer (`/v1/me…`) and for compliance staff acting on the
//! customer's request (`/v1/customers/{id}/export`, `DELETE
//! /v1/customers/{id}`).
//!
//! Access here is a [`SubjectAccess`]: the whole record, unmasked, whatever
//! the consent state, because it is the customer's own data. Data past its
//! retention is gone here as everywhere else. Staff act on a documented
//! request: an export names purpose `dsr`, an erasure its case reference,
//! which the audit entry records.

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    audited::AuditScope,
    dsr_register,
    export::{self, Export, Format},
    input::short_text,
    load::{contact_deadline, held_channel, live_profile},
    views::{rfc3339, ContactView, ProfileView, WithheldView},
    Caller, Error, Services,
};
use crate::{
    audit::Action,
    domain::Actor,
    policy::{
        Access, ChannelDecision, Disclosure, Operation, SubjectAccess, WithheldReason, DSR_PURPOSE,
    },
    store::{
        self,
        erasure::{self, Erasure},
    },
    vault::records,
};

/// Query of the export endpoints.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Staff exports: must be `dsr`. Not needed on `/v1/me/export`.
    #[param(ignore)]
    pub purpose: Option<String>,
    /// `json` (default) or `zip` (the same content as CSV files).
    #[param(value_type = Option<crate::http::openapi::ExportFormat>, inline)]
    pub format: Option<String>,
    /// Free text for the audit log, e.g. the request's ticket number.
    pub reason: Option<String>,
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

/// What an erasure leaves: the tombstone.
#[derive(Serialize, ToSchema)]
pub struct Tombstone {
    pub id: Uuid,
    pub erased_at: String,
}

/// Longest case reference accepted.
const MAX_CASE_REFERENCE: usize = 200;
/// Longest free-text reason of an export.
const MAX_EXPORT_REASON: usize = 200;

/// The customer a customer token speaks for, named in the entry of every
/// `/v1/me…` request (also when refused).
fn own(caller: &Caller) -> Option<Uuid> {
    caller.as_ref().ok().and_then(|a| a.customer)
}

/// Authorises a data subject request: the subject access it grants.
fn subject(
    svc: &Services,
    actor: &Actor,
    op: Operation,
    scope: &mut AuditScope,
) -> Result<SubjectAccess, Error> {
    match svc.authorise(actor, op, None, scope)? {
        Access::Subject(access) => Ok(access),
        _ => Err(Error::Internal),
    }
}

/// The id of a customer token's own record (403 for any other token).
fn own_id(actor: &Actor) -> Result<Uuid, Error> {
    actor.customer.ok_or(Error::Forbidden)
}

// --- the customer's own view -------------------------------------------------

/// `GET /v1/me`: the customer's profile, unmasked; channels past their
/// retention are listed as withheld.
pub async fn me(svc: &Services, caller: &Caller) -> Result<ProfileView, Error> {
    svc.audited_for(
        caller,
        Action::CustomerRead,
        own(caller),
        async |actor, scope| {
            let access = subject(svc, actor, Operation::ReadOwnProfile, scope)?;
            let id = own_id(actor)?;
            read_own(svc, &access, id, scope).await
        },
    )
    .await
}

async fn read_own(
    svc: &Services,
    access: &SubjectAccess,
    id: Uuid,
    scope: &mut AuditScope,
) -> Result<ProfileView, Error> {
    let store::customers::Profile {
        customer, contacts, ..
    } = live_profile(svc, id).await?;
    let now = svc.clock.now();
    let mut disclosure = Disclosure::default();
    let mut views = Vec::new();
    for c in &contacts {
        let Some(ch) = held_channel(&c.channel, contact_deadline(svc, c), now) else {
            disclosure.record(
                &c.channel,
                &ChannelDecision::Withhold(WithheldReason::RetentionExpired),
            );
            continue;
        };
        let permit = access.permit(&ch);
        disclosure.record(&c.channel, &ChannelDecision::Permit(permit.clone()));
        let kind = svc.channel_kind(&c.channel);
        let opened = records::open_contact(&svc.keyring, &svc.db, &permit, kind, id, c).await?;
        views.push(ContactView::from(opened));
    }
    let profile = records::open_profile(&svc.keyring, &svc.db, access.grant(), &customer).await?;
    scope.disclosure(&disclosure);
    Ok(ProfileView {
        id,
        display_name: profile.display_name,
        external_ref: profile.external_ref,
        preferred_channel: customer.preferred_channel,
        created_at: rfc3339(store::from_micros(customer.created_at)),
        contacts: views,
        withheld: WithheldView::list(&disclosure),
    })
}

// --- export --------------------------------------------------------------------

/// `GET /v1/me/export?format=json|zip`: the customer's own export.
pub async fn export_mine(
    svc: &Services,
    caller: &Caller,
    query: Result<ExportQuery, Error>,
) -> Result<Export, Error> {
    svc.audited_for(caller, Action::Export, own(caller), async |actor, scope| {
        let query = query?;
        let access = subject(svc, actor, Operation::ExportOwnData, scope)?;
        let id = own_id(actor)?;
        export_as(svc, &access, id, query, scope).await
    })
    .await
}

/// `GET /v1/customers/{id}/export?purpose=dsr&format=json|zip`: compliance
/// staff export a customer's data on the customer's request.
pub async fn export(
    svc: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
    query: Result<ExportQuery, Error>,
) -> Result<Export, Error> {
    let named = id.as_ref().ok().copied();
    svc.audited_for(caller, Action::Export, named, async |actor, scope| {
        let id = id?;
        let query = query?;
        match query.purpose.as_deref() {
            Some(DSR_PURPOSE) => {}
            Some(_) => return Err(Error::PurposeNotAllowed),
            None => return Err(Error::InvalidRequest("purpose=dsr is required".into())),
        }
        let access = subject(svc, actor, Operation::ExportCustomer, scope)?;
        export_as(svc, &access, id, query, scope).await
    })
    .await
}

/// Builds and renders the bundle in the format the query asks for, its
/// reason recorded in the entry; the entry counts what the bundle holds.
async fn export_as(
    svc: &Services,
    access: &SubjectAccess,
    id: Uuid,
    query: ExportQuery,
    scope: &mut AuditScope,
) -> Result<Export, Error> {
    let format = Format::parse(query.format.as_deref())?;
    scope.reason = query
        .reason
        .as_deref()
        .map(|r| short_text("reason", r, MAX_EXPORT_REASON))
        .transpose()?;
    let bundle = export::build(svc, access, id, svc.clock.now()).await?;
    scope.detail("format", format.as_str());
    scope.detail("contacts", bundle.contacts.len());
    scope.detail("interactions", bundle.interactions.len());
    scope.detail("consents", bundle.consents.len());
    scope.detail("access_log", bundle.access_log.len());
    bundle.render(format, &svc.config.display_zone)
}

// --- erasure -------------------------------------------------------------------

/// `DELETE /v1/me`: the customer erases their own data.
pub async fn erase_me(svc: &Services, caller: &Caller) -> Result<Tombstone, Error> {
    svc.audited_for(
        caller,
        Action::CustomerErase,
        own(caller),
        async |actor, scope| {
            subject(svc, actor, Operation::EraseOwnData, scope)?;
            let id = own_id(actor)?;
            erase_as(svc, id, scope).await
        },
    )
    .await
}

/// `DELETE /v1/customers/{id}?reason=`: compliance staff erase a customer
/// (token listing `dsr`). Staff act on a documented request, so its case
/// reference is required and goes to the audit entry; the customer's own
/// `DELETE /v1/me` needs none.
pub async fn erase(
    svc: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
    query: Result<EraseQuery, Error>,
) -> Result<Tombstone, Error> {
    let named = id.as_ref().ok().copied();
    let case = query.as_ref().ok().and_then(|q| q.reason.clone());
    let tombstone = svc
        .audited_for(
            caller,
            Action::CustomerErase,
            named,
            async |actor, scope| {
                let id = id?;
                let reason = query?.reason.ok_or_else(|| {
                    Error::InvalidRequest(
                        "reason (the case reference of the erasure request) is required".into(),
                    )
                })?;
                scope.reason = Some(short_text("reason", &reason, MAX_CASE_REFERENCE)?);
                subject(svc, actor, Operation::EraseCustomer, scope)?;
                erase_as(svc, id, scope).await
            },
        )
        .await?;
    // The erasure has run; the register's request under its case reference
    // is completed by it (its own entry). Should that fail, the erasure
    // stands and the request stays open for the officer to close.
    if let (Some(case), Some(id)) = (case, named) {
        if let Err(e) = dsr_register::settle_erasure(svc, caller, case.trim(), id).await {
            tracing::warn!(
                code = e.code(),
                "the register's erasure request was not completed"
            );
        }
    }
    Ok(tombstone)
}

/// Erases by crypto-shredding; a second erasure answers the same tombstone
/// and changes nothing. The entry, with what was held, is committed before
/// anything is deleted.
async fn erase_as(svc: &Services, id: Uuid, scope: &mut AuditScope) -> Result<Tombstone, Error> {
    let tombstone = |at| Tombstone {
        id,
        erased_at: rfc3339(store::from_micros(at)),
    };
    match store::customers::state(&svc.db, id).await? {
        None => return Err(Error::NotFound),
        Some(Some(at)) => {
            scope.detail("already_erased", true);
            return Ok(tombstone(at));
        }
        Some(None) => {}
    }
    let held = erasure::holdings(&svc.db, id).await?;
    scope.detail("already_erased", false);
    scope.detail("data_keys", held.data_keys);
    scope.detail("contacts", held.contacts);
    scope.detail("interactions", held.interactions);
    scope.detail("consents", held.consents);
    scope.commit_before_write(svc).await?;
    match erasure::erase(&svc.db, id, store::to_micros(svc.clock.now())).await? {
        Erasure::Done { erased_at, .. } | Erasure::Already { erased_at } => {
            Ok(tombstone(erased_at))
        }
        Erasure::Missing => Err(Error::NotFound),
    }
}
