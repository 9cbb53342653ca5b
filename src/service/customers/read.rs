//! Reading a customer's profile: the vault's most travelled path, and the
//! model every other read follows.
//!
//! Authorise (the role, the purpose the query names, and for a reveal its
//! rate limit and reason) → load the live profile with its consent facts →
//! decide each contact point's channel under the integration rule → open
//! only the permitted contact points (opening one requires its permit) →
//! the audit entry records every channel's decision with its reason code.

use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::{
    audit::Action,
    domain::ChannelId,
    policy::{
        decide_channel, Access, ChannelDecision, Disclosure, LimitedAction, Operation,
        PurposeGrant, Retained, WithheldReason,
    },
    service::{
        audited::AuditScope,
        input::short_text,
        ledger,
        load::live_profile_for_read,
        views::{rfc3339, ContactView, ProfileView, WithheldView},
        Caller, Error, Services,
    },
    store::{self, customers::Profile},
    token::Actor,
    vault::records,
};

/// Query of `GET /v1/customers/{id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// Why the data is read (required): a purpose of purposes.toml the token lists.
    #[param(required = true, example = "support")]
    pub purpose: Option<String>,
    /// Show values unmasked (needs `reason`; audited as `contact.reveal`).
    #[serde(default)]
    pub reveal: Option<bool>,
    /// Free text for the audit log, e.g. a ticket number.
    pub reason: Option<String>,
}

/// A read the caller may make: the purpose granted, and whether it reveals.
struct Authorised {
    grant: PurposeGrant,
    reveal: bool,
}

/// Each contact point's decision, in the profile's order, and what they
/// disclose channel by channel.
struct Decisions {
    each: Vec<ChannelDecision>,
    disclosure: Disclosure,
}

/// Reads customer `id` for the purpose the query names: the profile with
/// the contact points the integration rule permits (masked unless
/// revealed), and the withheld channels with their reasons. 404 if there
/// is no such customer, 410 if erased.
pub async fn read(
    svc: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
    query: Result<ReadQuery, Error>,
) -> Result<ProfileView, Error> {
    let named = id.as_ref().ok().copied();
    svc.audited_for(caller, Action::CustomerRead, named, async |actor, scope| {
        let (id, query) = (id?, query?);
        let read = authorise(svc, actor, query, scope)?;
        let profile = live_profile_for_read(svc, id).await?;
        let decisions = decide(svc, &read, &profile);
        let view = open(svc, &read.grant, profile, &decisions).await?;
        scope.disclosure(&decisions.disclosure);
        scope.detail("revealed", view.contacts.iter().any(|c| !c.masked));
        Ok(view)
    })
    .await
}

/// May the caller read for the purpose it names? A reveal is audited as
/// `contact.reveal` and counted against the caller's reveal limit as soon
/// as the role may read at all, and it needs a reason (free text for the
/// audit log).
fn authorise(
    svc: &Services,
    actor: &Actor,
    query: ReadQuery,
    scope: &mut AuditScope,
) -> Result<Authorised, Error> {
    let reveal = query.reveal.unwrap_or(false);
    let access = svc.authorise(
        actor,
        Operation::ReadCustomer,
        query.purpose.as_deref(),
        scope,
    );
    if reveal && !matches!(access, Err(Error::Forbidden)) {
        scope.action = Action::ContactReveal;
        svc.limiter.check(LimitedAction::Reveal, actor)?;
    }
    let Access::Purpose(grant) = access? else {
        return Err(Error::Internal);
    };
    let reason = query
        .reason
        .as_deref()
        .map(|r| short_text("reason", r, 200))
        .transpose()?;
    if reveal && reason.is_none() {
        return Err(Error::InvalidRequest("reveal=true needs a reason".into()));
    }
    scope.reason = reason;
    Ok(Authorised { grant, reveal })
}

/// Decides each contact point under the integration rule, now: its
/// channel, the customer's consents, and its retention. A channel since
/// removed from the policy is one nobody may read.
fn decide(svc: &Services, read: &Authorised, profile: &Profile) -> Decisions {
    let now = svc.clock.now();
    let consents = ledger::of_facts(&profile.consents);
    let mut disclosure = Disclosure::default();
    let each = profile
        .contacts
        .iter()
        .map(|c| {
            let item = Retained::Contact {
                last_activity_at: store::from_micros(c.last_activity_at),
            };
            let decision = match ChannelId::parse(&c.channel) {
                Ok(ch) => decide_channel(
                    &svc.policies,
                    &read.grant,
                    &ch,
                    &consents,
                    item,
                    read.reveal,
                    now,
                ),
                Err(_) => ChannelDecision::Withhold(WithheldReason::IntegrationNever),
            };
            disclosure.record(&c.channel, &decision);
            svc.metrics.decision(&decision);
            decision
        })
        .collect();
    Decisions { each, disclosure }
}

/// Opens what was permitted and nothing else: each permitted contact point
/// under its permit (masked unless the permit reveals), and the profile
/// fields under the granted purpose.
async fn open(
    svc: &Services,
    grant: &PurposeGrant,
    profile: Profile,
    decisions: &Decisions,
) -> Result<ProfileView, Error> {
    let Profile {
        customer, contacts, ..
    } = profile;
    let id = customer.id;
    let mut views = Vec::new();
    for (c, decision) in contacts.iter().zip(&decisions.each) {
        let ChannelDecision::Permit(permit) = decision else {
            continue;
        };
        let kind = svc.channel_kind(&c.channel);
        let opened = records::open_contact(&svc.keyring, &svc.db, permit, kind, id, c)
            .await
            .map_err(|e| {
                tracing::error!(customer_id = %id, contact_id = %c.id, error = %e, "contact failed to open");
                Error::from(e)
            })?;
        views.push(ContactView::from(opened));
    }
    let fields = records::open_profile(&svc.keyring, &svc.db, grant, &customer)
        .await
        .map_err(|e| {
            tracing::error!(customer_id = %id, error = %e, "profile fields failed to open");
            Error::from(e)
        })?;
    Ok(ProfileView {
        id,
        display_name: fields.display_name,
        external_ref: fields.external_ref,
        preferred_channel: customer.preferred_channel,
        created_at: rfc3339(store::from_micros(customer.created_at)),
        contacts: views,
        withheld: WithheldView::list(&decisions.disclosure),
    })
}
