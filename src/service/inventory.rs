//! What the vault holds on a customer, without opening any of it: the
//! console's masked view of a data subject request (DESIGN.md §13).
//!
//! [`inventory`] reads rows and policy only. No data key is unwrapped and no
//! field is decrypted, so the view cannot leak a value, and browsing it is
//! not recorded as a read of values: its entry is `customer.inventory`
//! (purpose `dsr`, the counts of what is held, `detail.values = "masked"`).
//! The one read of values is the export ([`super::dsr::export`]), which the
//! officer asks for with the case reference. SECURITY.md ("Audit") explains
//! the choice.
//!
//! Data past its retention is left out here as in the export: it is gone
//! at read time, even before the sweeper deletes it.
//!
//! Also here: the lookup a compliance officer runs to find a data subject
//! ([`find`]), with each match's creation time, and the channels a lookup
//! can search ([`lookup_channels`]).

use std::collections::BTreeMap;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    consents::current_states,
    load::{contact_deadline, held_channel, interaction_deadline},
    lookup::{self, LookupBody},
    views::rfc3339,
    Caller, Error, Services,
};
use crate::{
    audit::Action,
    domain::{Actor, ChannelKind},
    policy::{Operation, DSR_PURPOSE},
    store::{self, consents::ConsentRow, customers::Profile, interactions::InteractionRow},
};

/// What the vault holds on one customer.
pub enum Inventory {
    /// Erased: only the tombstone is left.
    Erased { id: Uuid, erased_at: String },
    /// A live customer's record, as metadata.
    Live(Box<Holdings>),
}

/// A live customer's record without its values.
pub struct Holdings {
    pub id: Uuid,
    pub created_at: String,
    pub updated_at: String,
    /// Whether a display name is held (never the name).
    pub display_name: bool,
    /// Whether an external reference is held (never the reference).
    pub external_ref: bool,
    pub preferred_channel: Option<String>,
    /// Contact points still held, by channel, then as added.
    pub contacts: Vec<ContactHeld>,
    /// Interactions per channel.
    pub channels: Vec<ChannelSummary>,
    /// Interactions still held, newest first (at most [`MAX_LISTED`]).
    pub interactions: Vec<InteractionHeld>,
    /// All interactions still held (the list may be shorter).
    pub interaction_count: usize,
    /// The current state of each (purpose, channel) of the consent ledger.
    pub consents: Vec<ConsentHeld>,
}

/// A contact point, without its value or label.
pub struct ContactHeld {
    pub id: Uuid,
    pub channel: String,
    /// `email`, `phone`, `handle` or `text`.
    pub kind: &'static str,
    pub has_label: bool,
    pub added_at: String,
    pub last_activity_at: String,
    /// When retention deletes it, unless used again before then.
    pub delete_after: Option<String>,
}

/// One channel's interactions, counted.
pub struct ChannelSummary {
    pub channel: String,
    pub count: usize,
    pub open: usize,
    pub overdue: usize,
    pub first_at: String,
    pub last_at: String,
}

/// An interaction, without its body.
pub struct InteractionHeld {
    pub id: Uuid,
    pub channel: String,
    pub kind: String,
    pub created_at: String,
    pub due_at: Option<String>,
    /// `open`, `overdue` or `resolved`.
    pub status: &'static str,
    pub delete_after: Option<String>,
}

/// The current state of one (purpose, channel).
pub struct ConsentHeld {
    pub purpose: String,
    pub channel: String,
    /// `granted`, `withdrawn`, `lapsed` or `pending_confirmation`.
    pub status: &'static str,
    /// When its latest event was recorded.
    pub since: Option<String>,
}

/// The most interactions listed one by one (all are counted).
pub const MAX_LISTED: usize = 100;

/// What the vault holds on customer `id`, masked: compliance staff for
/// purpose `dsr`; 404 if the customer never existed; the tombstone if
/// erased. Audited as `customer.inventory`, which records that the officer
/// looked, and that no value was opened.
pub async fn inventory(
    svc: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
) -> Result<Inventory, Error> {
    let named = id.as_ref().ok().copied();
    svc.audited_for(
        caller,
        Action::CustomerInventory,
        named,
        async |actor, scope| {
            svc.authorise(
                actor,
                Operation::InventoryCustomer,
                Some(DSR_PURPOSE),
                scope,
            )?;
            let id = id?;
            scope.detail("values", "masked");
            let profile = store::customers::profile(&svc.db, id)
                .await?
                .ok_or(Error::NotFound)?;
            if let Some(at) = profile.customer.erased_at {
                scope.detail("erased", true);
                return Ok(Inventory::Erased {
                    id,
                    erased_at: rfc3339(store::from_micros(at)),
                });
            }
            let held = holdings(svc, id, profile).await?;
            scope.detail("erased", false);
            scope.detail("contacts", held.contacts.len());
            scope.detail("interactions", held.interaction_count);
            scope.detail("consents", held.consents.len());
            Ok(Inventory::Live(Box::new(held)))
        },
    )
    .await
}

/// Gathers a live customer's metadata at the vault's time.
async fn holdings(svc: &Services, id: Uuid, profile: Profile) -> Result<Holdings, Error> {
    let now = svc.clock.now();
    let interactions = store::interactions::for_customer(&svc.db, id).await?;
    let consents = store::consents::for_customer(&svc.db, id).await?;
    let Profile {
        customer,
        contacts: rows,
        ..
    } = profile;
    let mut contacts: Vec<ContactHeld> = rows
        .iter()
        .filter_map(|c| {
            let deadline = contact_deadline(svc, c);
            held_channel(&c.channel, deadline, now)?;
            Some(ContactHeld {
                id: c.id,
                channel: c.channel.clone(),
                kind: svc.channel_kind(&c.channel).as_str(),
                has_label: c.label.is_some(),
                added_at: at(c.created_at),
                last_activity_at: at(c.last_activity_at),
                delete_after: deadline.map(rfc3339),
            })
        })
        .collect();
    // Stable: within a channel, the order they were added in.
    contacts.sort_by(|a, b| a.channel.cmp(&b.channel));
    let held = held_interactions(svc, &interactions, now);
    Ok(Holdings {
        id,
        created_at: at(customer.created_at),
        updated_at: at(customer.updated_at),
        display_name: customer.display_name.is_some(),
        external_ref: customer.external_ref.is_some(),
        preferred_channel: customer.preferred_channel,
        contacts,
        channels: summaries(&held),
        interaction_count: held.len(),
        interactions: held.into_iter().rev().take(MAX_LISTED).collect(),
        consents: consent_states(svc, &consents, now),
    })
}

/// The interactions still held at `now`, oldest first.
fn held_interactions(
    svc: &Services,
    rows: &[InteractionRow],
    now: OffsetDateTime,
) -> Vec<InteractionHeld> {
    let now_us = store::to_micros(now);
    rows.iter()
        .filter_map(|i| {
            let deadline = interaction_deadline(svc, i);
            held_channel(&i.channel, deadline, now)?;
            let status = match (i.resolved_at, i.due_at) {
                (Some(_), _) => "resolved",
                (None, Some(due)) if due <= now_us => "overdue",
                (None, _) => "open",
            };
            Some(InteractionHeld {
                id: i.id,
                channel: i.channel.clone(),
                kind: i.kind.clone(),
                created_at: at(i.created_at),
                due_at: i.due_at.map(at),
                status,
                delete_after: deadline.map(rfc3339),
            })
        })
        .collect()
}

/// Per channel: how many interactions, how many open and overdue, and the
/// first and last one's time (`held` is oldest first).
fn summaries(held: &[InteractionHeld]) -> Vec<ChannelSummary> {
    let mut by_channel: BTreeMap<&str, ChannelSummary> = BTreeMap::new();
    for i in held {
        let s = by_channel
            .entry(i.channel.as_str())
            .or_insert_with(|| ChannelSummary {
                channel: i.channel.clone(),
                count: 0,
                open: 0,
                overdue: 0,
                first_at: i.created_at.clone(),
                last_at: i.created_at.clone(),
            });
        s.count += 1;
        s.open += usize::from(i.status != "resolved");
        s.overdue += usize::from(i.status == "overdue");
        s.last_at.clone_from(&i.created_at);
    }
    by_channel.into_values().collect()
}

/// The current consent states, each with the time of its latest event.
fn consent_states(svc: &Services, rows: &[ConsentRow], now: OffsetDateTime) -> Vec<ConsentHeld> {
    let mut latest: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for r in rows {
        let t = latest.entry((&r.purpose, &r.channel)).or_insert(r.at);
        *t = (*t).max(r.at);
    }
    current_states(svc, rows, now)
        .into_iter()
        .map(|c| ConsentHeld {
            since: latest
                .get(&(c.purpose.as_str(), c.channel.as_str()))
                .map(|t| at(*t)),
            purpose: c.purpose,
            channel: c.channel,
            status: c.status,
        })
        .collect()
}

fn at(us: store::Micros) -> String {
    rfc3339(store::from_micros(us))
}

// --- finding the data subject ---------------------------------------------------

/// A channel a lookup can search, and the kind of value it takes.
pub struct LookupChannel {
    pub name: String,
    /// `email`, `phone` or `handle`.
    pub kind: &'static str,
}

/// The channels a compliance officer can look a data subject up on: those
/// whose values are e-mail addresses, phone numbers or handles (free text
/// has no normal form to search by). Authorised like the lookup itself
/// (purpose `dsr`), and not audited: it names policy, not customers.
pub fn lookup_channels(svc: &Services, caller: &Caller) -> Result<Vec<LookupChannel>, Error> {
    let actor: &Actor = caller.as_ref().map_err(Clone::clone)?;
    svc.authorise_unlogged_for(actor, Operation::Lookup, DSR_PURPOSE)?;
    Ok(svc
        .policies
        .channels
        .iter()
        .filter(|(_, p)| p.kind != ChannelKind::Text)
        .map(|(name, p)| LookupChannel {
            name: name.to_string(),
            kind: p.kind.as_str(),
        })
        .collect())
}

/// A customer a lookup found.
pub struct Found {
    pub customer_id: Uuid,
    /// When the customer was created.
    pub created_at: Option<String>,
}

/// Finds the data subject of a request: [`lookup::lookup`] for purpose
/// `dsr` (audited as `lookup`, as the API's), then each match's creation
/// time (metadata; nothing is opened). No match is an empty list.
pub async fn find(
    svc: &Services,
    caller: &Caller,
    channel: &str,
    value: &str,
) -> Result<Vec<Found>, Error> {
    let body = LookupBody {
        channel: channel.to_owned(),
        value: value.to_owned(),
        purpose: DSR_PURPOSE.to_owned(),
    };
    let matches = match lookup::lookup(svc, caller, Ok(body)).await {
        Ok(view) => view.matches,
        Err(Error::NotFound) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut found: Vec<Found> = Vec::with_capacity(matches.len());
    for m in matches {
        if found.iter().any(|f| f.customer_id == m.customer_id) {
            continue;
        }
        let created = store::customers::profile(&svc.db, m.customer_id)
            .await?
            .map(|p| at(p.customer.created_at));
        found.push(Found {
            customer_id: m.customer_id,
            created_at: created,
        });
    }
    Ok(found)
}
