//! Adding and removing one contact point of a customer. An agent writes on
//! its own channel only. An add answers a caller who may not see the
//! channel the same way whether the value was new or already there, so a
//! status code never confirms a guessed value on a channel the caller
//! cannot read.

use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{key_for_write, label, written_view, NewContactBody};
use crate::{
    audit::{Action, Effect},
    domain::{ChannelId, Role},
    policy::{
        self, decide_channel, Access, ChannelDecision, ChannelWrite, Operation, Retained,
        WriteDenied,
    },
    service::{
        access::require_channel_write, audited::AuditScope, ledger, load::require_live,
        views::ContactView, Caller, Error, Services,
    },
    store,
    token::Actor,
};

/// What `POST /v1/customers/{id}/contacts` answers a caller who may not see
/// the channel: the same 202 whether the value was new or already there.
#[derive(Serialize, ToSchema)]
pub struct AcceptedContact {
    #[schema(example = "email")]
    pub channel: String,
    /// Always `accepted`.
    #[schema(example = "accepted")]
    pub status: &'static str,
}

/// The outcome of an add, as far as the caller may learn it.
pub enum ContactAdded {
    /// Added, on a channel the caller may see: the contact, masked (201).
    Created(ContactView),
    /// Taken, on a channel the caller may not see, without saying whether
    /// the value was new (202).
    Accepted(AcceptedContact),
}

/// Adds a contact point to customer `id`. A caller who may read the channel
/// under the integration rule learns the outcome: the contact, or 409
/// `contact_exists` when the customer already holds the value there. Anyone
/// else is told only that it was accepted. Both outcomes take the same path
/// (one commit with the audit entry, which records the real outcome in its
/// detail).
pub async fn add_contact(
    svc: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
    input: Result<NewContactBody, Error>,
) -> Result<ContactAdded, Error> {
    let named = id.as_ref().ok().copied();
    svc.audited_for(caller, Action::ContactAdd, named, async |actor, scope| {
        add_as(svc, actor, id?, input?, scope).await
    })
    .await
}

async fn add_as(
    svc: &Services,
    actor: &Actor,
    id: Uuid,
    body: NewContactBody,
    scope: &mut AuditScope,
) -> Result<ContactAdded, Error> {
    svc.authorise(actor, Operation::AddContact, None, scope)?;
    let contact = svc.parse_contact(&body.channel, &body.value)?;
    scope.channel = Some(contact.channel.to_string());
    require_channel_write(actor, &contact.channel, ChannelWrite::ContactAdd, scope)?;
    let label = label(body.label.as_deref())?;
    require_live(svc, id).await?;
    let at = svc.clock.now();
    let visible = may_see_channel(svc, actor, id, &contact.channel, at).await?;
    // The same work on both paths: the key, the seal and one commit that
    // carries the entry and the insert (which a duplicate leaves undone).
    let key = key_for_write(svc, id, contact.channel.as_str()).await?;
    let row = svc.seal_contact(&key, id, &contact, label.as_deref().map(|l| l.as_str()), at)?;
    let duplicate =
        store::customers::has_contact_value(&svc.db, id, &row.channel, &row.blind_index).await?;
    scope.detail("outcome", if duplicate { "duplicate" } else { "added" });
    scope.detail("channel_visible", visible);
    if !duplicate {
        scope.detail("contact_id", row.id.to_string());
    }
    let view = written_view(&row, &contact, label, at);
    let added = scope.commit_with(svc, Effect::Contact(row)).await?;
    if !added && !duplicate {
        // Not inserted though the value was new: the customer was erased
        // meanwhile, or the same value arrived meanwhile. (A known value is
        // not checked again, so its path costs no more than an add's.)
        require_live(svc, id).await?;
    }
    if !visible {
        return Ok(ContactAdded::Accepted(AcceptedContact {
            channel: contact.channel.to_string(),
            status: "accepted",
        }));
    }
    if !added {
        return Err(Error::ContactExists);
    }
    Ok(ContactAdded::Created(view))
}

/// Whether the caller, reading customer `id`'s profile for `support` (the
/// purpose contact points are kept for), would see `channel` on a contact
/// point active now. A caller whose token does not carry `support` sees no
/// channel.
async fn may_see_channel(
    svc: &Services,
    actor: &Actor,
    id: Uuid,
    channel: &ChannelId,
    at: OffsetDateTime,
) -> Result<bool, Error> {
    let read = policy::authorise(
        &svc.policies,
        actor,
        Operation::ReadCustomer,
        Some("support"),
    );
    let Ok(Access::Purpose(grant)) = read else {
        return Ok(false);
    };
    let consents = ledger::load(svc, id).await?;
    let fresh = Retained::Contact {
        last_activity_at: at,
    };
    Ok(matches!(
        decide_channel(&svc.policies, &grant, channel, &consents, fresh, false, at),
        ChannelDecision::Permit(_)
    ))
}

/// Removes contact point `contact_id` of customer `id` (204): 404 if the
/// customer has no such contact point, 410 if erased.
pub async fn remove_contact(
    svc: &Services,
    caller: &Caller,
    path: Result<(Uuid, Uuid), Error>,
) -> Result<(), Error> {
    let named = path.as_ref().ok().map(|p| p.0);
    svc.audited_for(
        caller,
        Action::ContactRemove,
        named,
        async |actor, scope| {
            let (id, contact_id) = path?;
            scope.detail("contact_id", contact_id.to_string());
            remove_as(svc, actor, id, contact_id, scope).await
        },
    )
    .await
}

async fn remove_as(
    svc: &Services,
    actor: &Actor,
    id: Uuid,
    contact_id: Uuid,
    scope: &mut AuditScope,
) -> Result<(), Error> {
    svc.authorise(actor, Operation::RemoveContact, None, scope)?;
    require_live(svc, id).await?;
    let channel = store::customers::contact_channel(&svc.db, id, contact_id)
        .await?
        .ok_or(Error::NotFound)?;
    scope.channel = Some(channel.clone());
    // A channel since removed from the policy cannot be parsed back into
    // a name only an agent of it could serve: nobody's own channel.
    match ChannelId::parse(&channel) {
        Ok(ch) => require_channel_write(actor, &ch, ChannelWrite::ContactRemove, scope)?,
        Err(_) if actor.role == Role::Service => {}
        Err(_) => return Err(Error::WriteRefused(WriteDenied::OtherChannel.explain())),
    }
    scope.commit_before_write(svc).await?;
    store::customers::remove_contact(&svc.db, id, contact_id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(())
}
