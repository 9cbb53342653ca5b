//! The consent ledger: an agent records what the customer said in the
//! agent's channel, compliance staff act on the customer's behalf, and the
//! customer manages their own. Withdrawing is as easy as granting: same
//! operation, same roles. Every change returns a receipt; the ledger event is
//! stored in the same transaction as its audit entry.
//!
//! Who may record consent for which purpose is policy
//! ([`crate::policy::authorise_consent_record`]). The actor who reads must not
//! be able to attest a consent and then use it unchecked, so a grant an agent
//! records is stored `pending_confirmation`, opens nothing, and is flagged
//! for compliance review; the customer confirms it themselves
//! ([`MyConsentBody::Confirm`]), which appends a confirmation event of its
//! own (the ledger stays append-only).

mod current;
pub(crate) use current::current_states;
mod record;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Caller, Error, Services};
pub use crate::service::views::{ConsentEventView, Evidence};
use crate::{
    audit::Action,
    policy::{Access, Operation},
};

/// Body of a consent change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    #[schema(example = "cross_channel")]
    pub purpose: String,
    /// A channel name or `*` for every channel.
    #[schema(example = "email")]
    pub channel: String,
    /// `grant` or `withdraw`.
    #[schema(example = "grant")]
    pub action: String,
    /// Required for a grant.
    #[serde(default)]
    pub evidence: Option<Evidence>,
    /// How it was given: `spoken`, `web_form`, `chat`, … (a-z and _).
    #[schema(example = "spoken")]
    pub method: String,
    /// When a grant ends by itself (RFC 3339), besides the purpose's max_age.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// Body of the customer's confirmation of a grant an agent recorded.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// `confirm`.
    #[schema(example = "confirm")]
    pub action: String,
    /// The `consent_id` of the pending grant (from its receipt, or from the
    /// ledger's `current[].pending_consent_id`).
    pub consent_id: Uuid,
}

/// What the customer may post to `/v1/me/consents`: a change of their own,
/// or the confirmation of a grant an agent recorded.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MyConsentBody {
    Change(ConsentBody),
    Confirm(ConfirmBody),
}

/// What a consent change returns.
#[derive(Serialize, ToSchema)]
pub struct Receipt {
    pub consent_id: Uuid,
    pub customer_id: Uuid,
    pub purpose: String,
    pub channel: String,
    pub action: String,
    pub at: String,
    pub evidence: Option<Evidence>,
    /// `effective`, or `pending_confirmation` for a grant an agent recorded:
    /// it opens nothing until the customer confirms it (the `consent_id` is
    /// the reference they confirm).
    #[schema(example = "pending_confirmation")]
    pub status: &'static str,
    /// On a confirmation: the pending grant it confirmed.
    pub confirms: Option<Uuid>,
    /// `agent_recorded` when the event is flagged for compliance review.
    pub review: Option<&'static str>,
}

/// The current state of one (purpose, channel).
#[derive(Serialize, ToSchema)]
pub struct ConsentState {
    pub purpose: String,
    pub channel: String,
    /// `granted`, `withdrawn`, `lapsed`, or `pending_confirmation` (a grant
    /// an agent recorded waits for the customer and opens nothing yet).
    pub status: &'static str,
    /// The grant awaiting the customer's confirmation, if any.
    pub pending_consent_id: Option<Uuid>,
}

/// `{current, history}`.
#[derive(Serialize, ToSchema)]
pub struct LedgerView {
    pub current: Vec<ConsentState>,
    pub history: Vec<ConsentEventView>,
}

/// Staff record a grant or withdrawal the customer gave (agents and
/// compliance; which of them for which purpose is policy). An agent's grant
/// is `pending_confirmation` until the customer confirms it.
pub async fn record(
    svc: &Services,
    caller: &Caller,
    customer: Result<Uuid, Error>,
    input: Result<ConsentBody, Error>,
) -> Result<Receipt, Error> {
    let named = customer.as_ref().ok().copied();
    svc.audited_for(caller, Action::ConsentGrant, named, async |actor, scope| {
        svc.authorise(actor, Operation::RecordConsent, None, scope)?;
        let id = customer?;
        let body = input?;
        record::change(svc, actor, id, body, scope).await
    })
    .await
}

/// Staff read a customer's ledger: the current state of each (purpose,
/// channel) and the full history.
pub async fn list(
    svc: &Services,
    caller: &Caller,
    customer: Result<Uuid, Error>,
) -> Result<LedgerView, Error> {
    let named = customer.as_ref().ok().copied();
    svc.audited_for(caller, Action::CustomerRead, named, async |actor, scope| {
        svc.authorise(actor, Operation::ListConsents, None, scope)?;
        let id = customer?;
        current::ledger(svc, id, scope).await
    })
    .await
}

/// The customer grants or withdraws consent, or confirms a grant an agent
/// recorded for them (404 if no such event, 409 `consent_not_pending` if it
/// is not a grant awaiting confirmation any more).
pub async fn record_mine(
    svc: &Services,
    caller: &Caller,
    input: Result<MyConsentBody, Error>,
) -> Result<Receipt, Error> {
    svc.audited_for(
        caller,
        Action::ConsentGrant,
        own(caller),
        async |actor, scope| {
            let id = own_id(svc.authorise(actor, Operation::RecordOwnConsent, None, scope)?)?;
            match input? {
                MyConsentBody::Change(body) => record::change(svc, actor, id, body, scope).await,
                MyConsentBody::Confirm(body) => record::confirm(svc, actor, id, body, scope).await,
            }
        },
    )
    .await
}

/// The customer reads their own ledger.
pub async fn list_mine(svc: &Services, caller: &Caller) -> Result<LedgerView, Error> {
    svc.audited_for(
        caller,
        Action::CustomerRead,
        own(caller),
        async |actor, scope| {
            let id = own_id(svc.authorise(actor, Operation::ListOwnConsents, None, scope)?)?;
            current::ledger(svc, id, scope).await
        },
    )
    .await
}

/// The customer a customer token speaks for, named in the entry of every
/// attempt it makes.
fn own(caller: &Caller) -> Option<Uuid> {
    caller.as_ref().ok().and_then(|a| a.customer)
}

/// The customer an own-record access is for.
fn own_id(access: Access) -> Result<Uuid, Error> {
    match access {
        Access::Own(id) => Ok(id),
        _ => Err(Error::Internal),
    }
}
