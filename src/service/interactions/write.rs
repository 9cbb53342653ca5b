//! Recording and resolving interactions: the channel-write rule first, then
//! the input, then the write with its audit entry.

use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{CreatedInteraction, NewInteractionBody, ResolveBody};
use crate::{
    audit::Effect,
    domain::{Actor, ChannelId},
    policy::{ChannelWrite, WriteDenied, INTERACTION_KINDS},
    service::{
        access::require_channel_write, audited::AuditScope, load::require_live, views::rfc3339,
        Error, Services,
    },
    store::{self, interactions::NewInteraction},
    vault::records::{self, field},
};

/// Longest body accepted, in characters (a long chat transcript fits).
const MAX_BODY_CHARS: usize = 100_000;

/// An RFC 3339 time from a request.
fn parse_time(name: &str, v: &str) -> Result<OffsetDateTime, Error> {
    OffsetDateTime::parse(v, &Rfc3339)
        .map_err(|_| Error::InvalidRequest(format!("{name} must be an RFC 3339 time")))
}

/// Free text that may span lines: not empty, at most `MAX_BODY_CHARS`, no
/// control characters other than newline, carriage return and tab.
fn body_text(v: &str) -> Result<Zeroizing<String>, Error> {
    let ok_controls = ['\n', '\r', '\t'];
    if v.trim().is_empty()
        || v.chars().count() > MAX_BODY_CHARS
        || v.chars()
            .any(|c| c.is_control() && !ok_controls.contains(&c))
    {
        return Err(Error::InvalidRequest(format!(
            "body must be 1 to {MAX_BODY_CHARS} characters without control characters other than newlines and tabs"
        )));
    }
    Ok(Zeroizing::new(v.to_owned()))
}

/// One of the interaction kinds.
fn kind(v: &str) -> Result<&'static str, Error> {
    INTERACTION_KINDS
        .into_iter()
        .find(|k| *k == v)
        .ok_or_else(|| {
            Error::InvalidRequest(format!(
                "kind must be one of: {}",
                INTERACTION_KINDS.join(", ")
            ))
        })
}

/// Records an interaction on `body.channel` of customer `id`.
pub(super) async fn create(
    svc: &Services,
    actor: &Actor,
    id: Uuid,
    body: NewInteractionBody,
    scope: &mut AuditScope,
) -> Result<CreatedInteraction, Error> {
    let (channel, policy) = svc
        .policies
        .channel(&body.channel)
        .ok_or_else(|| Error::UnknownChannel(body.channel.chars().take(32).collect()))?;
    let channel = channel.clone();
    let contact_retention = policy.contact_retention;
    scope.channel = Some(channel.to_string());
    // Recording restarts the channel's contact retention: only on the
    // agent's own channel.
    require_channel_write(actor, &channel, ChannelWrite::InteractionCreate, scope)?;
    let kind = kind(&body.kind)?;
    let text = body_text(&body.body)?;
    let due_at = body
        .due_at
        .as_deref()
        .map(|t| parse_time("due_at", t))
        .transpose()?
        .map(store::to_micros);
    require_live(svc, id).await?;

    let iid = Uuid::now_v7();
    scope.detail("interaction_id", iid.to_string());
    scope.detail("kind", kind);
    scope.detail("due", due_at.is_some());
    // The data key is fetched (or created, for the channel's first record)
    // before the entry: a key is not customer data, and an unused one is
    // harmless. The interaction itself rides its entry's commit.
    let key = records::field_key(
        &svc.keyring
            .data_key_for_write(&svc.db, id, channel.as_str())
            .await?,
    )?;
    let sealed = records::seal(&key, id, channel.as_str(), iid, field::BODY, &text)?;
    let at = svc.clock.now();
    let row = NewInteraction {
        id: iid,
        customer_id: id,
        channel: channel.to_string(),
        kind: kind.to_owned(),
        body: sealed,
        created_at: store::to_micros(at),
        due_at,
        contacts_live_after: store::to_micros(
            at.checked_sub(
                time::Duration::try_from(contact_retention).unwrap_or(time::Duration::MAX),
            )
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        ),
    };
    if !scope.commit_with(svc, Effect::Interaction(row)).await? {
        return Err(Error::CustomerErased);
    }
    Ok(CreatedInteraction {
        id: iid,
        channel: channel.to_string(),
        kind: kind.to_owned(),
        created_at: rfc3339(at),
        due_at: due_at.map(|d| rfc3339(store::from_micros(d))),
    })
}

/// Marks interaction `iid` of customer `id` resolved.
pub(super) async fn resolve(
    svc: &Services,
    actor: &Actor,
    id: Uuid,
    iid: Uuid,
    body: ResolveBody,
    scope: &mut AuditScope,
) -> Result<(), Error> {
    if !body.resolved {
        return Err(Error::InvalidRequest(
            "resolved must be true: a resolved interaction is not reopened; record a new one"
                .into(),
        ));
    }
    require_live(svc, id).await?;
    let meta = store::interactions::meta(&svc.db, id, iid)
        .await?
        .ok_or(Error::NotFound)?;
    scope.channel = Some(meta.channel.clone());
    // An agent resolves only what it serves: an interaction it cannot
    // read is not its to close.
    match ChannelId::parse(&meta.channel) {
        Ok(ch) => require_channel_write(actor, &ch, ChannelWrite::InteractionResolve, scope)?,
        Err(_) => return Err(Error::WriteRefused(WriteDenied::OtherChannel.explain())),
    }
    scope.detail("kind", meta.kind);
    scope.detail("already_resolved", meta.resolved_at.is_some());
    scope.commit_before_write(svc).await?;
    let at = store::to_micros(svc.clock.now());
    if !store::interactions::resolve(&svc.db, id, iid, at).await? {
        return Err(Error::NotFound);
    }
    Ok(())
}
