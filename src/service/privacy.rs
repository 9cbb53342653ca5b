//! The operations of the customer's privacy page (`/privacy/`) that the
//! `/v1/me…` operations do not already provide: everything the vault holds
//! on the customer with each item's deletion date, in one read, and the
//! access log with what the page explains to the customer (who by role, on
//! which channel, what was released or refused and why, under which case
//! reference). The page's other actions call the `/v1/me…` operations
//! themselves ([`super::consents`], [`super::dsr`], [`super::dsr_register`]).

use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    audited::AuditScope,
    export::{self, Bundle},
    Caller, Error, Services,
};
use crate::{
    audit::Action,
    policy::{Access, Operation},
    store::{self, audit::AuditFilter},
};

/// How many access-log entries the page shows, newest first.
pub const ACCESS_LOG_LIMIT: i64 = 500;

/// The customer's own data as the export holds it (contact points,
/// interactions, consents, each item's deletion date), unmasked: audited as
/// `customer.read` with `view: privacy_page`, as `GET /v1/me` is.
pub async fn my_data(svc: &Services, caller: &Caller) -> Result<Bundle, Error> {
    let own = caller.as_ref().ok().and_then(|a| a.customer);
    svc.audited_for(caller, Action::CustomerRead, own, async |actor, scope| {
        let access = match svc.authorise(actor, Operation::ReadOwnProfile, None, scope)? {
            Access::Subject(access) => access,
            _ => return Err(Error::Internal),
        };
        let id = actor.customer.ok_or(Error::Forbidden)?;
        let bundle = export::build(svc, &access, id, svc.clock.now()).await?;
        note_counts(scope, &bundle);
        Ok(bundle)
    })
    .await
}

fn note_counts(scope: &mut AuditScope, bundle: &Bundle) {
    scope.detail("view", "privacy_page");
    scope.detail("contacts", bundle.contacts.len());
    scope.detail("interactions", bundle.interactions.len());
}

/// One entry of the access log, as the customer is told of it.
#[derive(Debug, Clone)]
pub struct AccessEvent {
    pub at: OffsetDateTime,
    /// The audit action (`customer.read`, `contact.reveal`, …).
    pub action: String,
    /// The actor's role: never the staff member's or client's identity.
    pub role: String,
    /// The channel the actor works on (an agent's), or acted on.
    pub channel: Option<String>,
    pub purpose: Option<String>,
    /// The reason the actor gave (a case reference such as `T-9`).
    pub case_reference: Option<String>,
    pub allowed: bool,
    /// Why a refused request was refused (its error code).
    pub refusal: Option<String>,
    /// The channels whose data was released to the actor.
    pub released: Vec<String>,
    /// The channels withheld from the actor, each with its reason code.
    pub withheld: Vec<(String, String)>,
}

/// The access log of the signed-in customer, newest first: what others
/// (agents, services, compliance staff, operators) did or tried with the
/// customer's data. The customer's own requests and sign-ins are left out.
/// Not audited: like the compliance review of the log, it reads entries,
/// which hold no contact values (DESIGN.md §7).
pub async fn access_log(svc: &Services, caller: &Caller) -> Result<Vec<AccessEvent>, Error> {
    let actor = caller.as_ref().map_err(Clone::clone)?;
    let id = match svc.authorise_unlogged(actor, Operation::ReadOwnAccessLog)? {
        Access::Own(id) => id,
        _ => return Err(Error::Internal),
    };
    entries(svc, id).await
}

async fn entries(svc: &Services, id: Uuid) -> Result<Vec<AccessEvent>, Error> {
    let filter = AuditFilter {
        customer_id: Some(id),
        limit: i64::MAX,
        ..AuditFilter::default()
    };
    let rows = store::audit::query(&svc.db, &filter).await?;
    Ok(rows
        .into_iter()
        .rev()
        .filter(|r| !matches!(r.actor_role.as_str(), "customer" | "none"))
        .take(usize::try_from(ACCESS_LOG_LIMIT).unwrap_or(usize::MAX))
        .map(|r| {
            let detail: Value = serde_json::from_str(&r.detail).unwrap_or(Value::Null);
            AccessEvent {
                at: store::from_micros(r.at),
                allowed: r.decision == "allow",
                refusal: detail["code"].as_str().map(str::to_owned),
                released: listed(&detail["released"])
                    .into_iter()
                    .map(|(c, _)| c)
                    .collect(),
                withheld: listed(&detail["withheld"]),
                action: r.action,
                role: r.actor_role,
                channel: r.channel,
                purpose: r.purpose,
                case_reference: r.reason,
            }
        })
        .collect())
}

/// A detail's `[{channel, reason}]` list.
fn listed(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| {
                    let channel = i["channel"].as_str()?.to_owned();
                    let reason = i["reason"].as_str().unwrap_or_default().to_owned();
                    Some((channel, reason))
                })
                .collect()
        })
        .unwrap_or_default()
}
