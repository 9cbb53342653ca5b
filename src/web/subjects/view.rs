//! What the customer pages draw: the inventory of a customer
//! ([`crate::service::inventory`]) as table rows, and, after a reveal, the
//! export's values put in their places. Without a reveal every value is
//! `None` and the template draws "••••": nothing here was ever decrypted.

use std::collections::HashMap;

use uuid::Uuid;

use crate::service::{
    dsr_register::RequestView,
    export::Bundle,
    inventory::{Holdings, Inventory},
};

/// `2026-12-02T10:00:10.5Z` as `2026-12-02 10:00 UTC`: the vault's
/// instants are UTC RFC 3339, so the first 16 characters are the minute.
pub fn when(rfc3339: &str) -> String {
    match rfc3339.get(..16) {
        Some(minute) => format!("{} UTC", minute.replacen('T', " ", 1)),
        None => rfc3339.to_owned(),
    }
}

/// The date of an RFC 3339 instant.
pub fn day(rfc3339: &str) -> String {
    rfc3339.get(..10).unwrap_or(rfc3339).to_owned()
}

/// The first 8 characters of a UUID, which the erase form asks for.
pub fn short_id(id: Uuid) -> String {
    id.to_string().chars().take(8).collect()
}

/// A field that is either absent, held (masked), or revealed.
pub struct Field {
    pub held: bool,
    pub value: Option<String>,
}

pub struct ContactLine {
    pub channel: String,
    pub kind_key: String,
    pub value: Field,
    pub label: Field,
    pub added: String,
    pub last_activity: String,
    pub delete_after: String,
}

pub struct ConsentLine {
    pub purpose: String,
    pub channel: String,
    pub status_key: String,
    pub since: String,
}

pub struct ChannelLine {
    pub channel: String,
    pub count: usize,
    pub open: usize,
    pub overdue: usize,
    pub first: String,
    pub last: String,
}

pub struct InteractionLine {
    pub channel: String,
    pub kind: String,
    pub created: String,
    pub due: String,
    pub status_key: String,
    pub delete_after: String,
    pub body: Option<String>,
}

/// A live customer's record as the page draws it.
pub struct Record {
    pub created: String,
    pub updated: String,
    pub display_name: Field,
    pub external_ref: Field,
    pub preferred_channel: String,
    pub contacts: Vec<ContactLine>,
    pub consents: Vec<ConsentLine>,
    pub channels: Vec<ChannelLine>,
    pub interactions: Vec<InteractionLine>,
    pub interaction_count: usize,
}

/// The customer page's subject: live (its record) or erased (its tombstone).
pub enum Subject {
    Live(Box<Record>),
    Erased { erased_at: String },
}

/// A register line about this customer.
pub struct RequestLine {
    pub id: String,
    pub case_reference: String,
    pub kind_key: String,
    pub status_key: String,
    pub due_date: String,
}

impl RequestLine {
    pub fn of(r: &RequestView) -> Self {
        RequestLine {
            id: r.id.to_string(),
            case_reference: r.case_reference.clone(),
            kind_key: format!("dsr_kind_{}", r.kind),
            status_key: format!("dsr_status_{}", r.status),
            due_date: r.due_date.clone(),
        }
    }
}

/// The values of an export, by where they go on the page.
#[derive(Default)]
struct Values {
    display_name: Option<String>,
    external_ref: Option<String>,
    contacts: HashMap<Uuid, (String, Option<String>)>,
    bodies: HashMap<Uuid, String>,
}

impl Values {
    fn of(bundle: &Bundle) -> Self {
        let text = |v: &zeroize::Zeroizing<String>| v.as_str().to_owned();
        Values {
            display_name: bundle.customer.display_name.as_ref().map(text),
            external_ref: bundle.customer.external_ref.as_ref().map(text),
            contacts: bundle
                .contacts
                .iter()
                .map(|c| (c.id, (text(&c.value), c.label.as_ref().map(text))))
                .collect(),
            bodies: bundle
                .interactions
                .iter()
                .map(|i| (i.id, text(&i.body)))
                .collect(),
        }
    }
}

/// The page's subject from the inventory, with the export's values when
/// the officer revealed them.
pub fn subject(inventory: Inventory, revealed: Option<&Bundle>) -> Subject {
    match inventory {
        Inventory::Erased { erased_at, .. } => Subject::Erased {
            erased_at: when(&erased_at),
        },
        Inventory::Live(h) => {
            let values = revealed.map(Values::of).unwrap_or_default();
            Subject::Live(Box::new(record(*h, values)))
        }
    }
}

fn opt(v: Option<&String>) -> String {
    v.map(|t| when(t)).unwrap_or_default()
}

fn record(h: Holdings, mut v: Values) -> Record {
    let contacts = h
        .contacts
        .iter()
        .map(|c| {
            let (value, label) = v.contacts.remove(&c.id).unzip();
            ContactLine {
                channel: c.channel.clone(),
                kind_key: format!("dsr_kind_value_{}", c.kind),
                value: Field { held: true, value },
                label: Field {
                    held: c.has_label,
                    value: label.flatten(),
                },
                added: when(&c.added_at),
                last_activity: when(&c.last_activity_at),
                delete_after: opt(c.delete_after.as_ref()),
            }
        })
        .collect();
    let consents = h
        .consents
        .iter()
        .map(|c| ConsentLine {
            purpose: c.purpose.clone(),
            channel: c.channel.clone(),
            status_key: format!("dsr_consent_{}", c.status),
            since: opt(c.since.as_ref()),
        })
        .collect();
    let channels = h
        .channels
        .iter()
        .map(|s| ChannelLine {
            channel: s.channel.clone(),
            count: s.count,
            open: s.open,
            overdue: s.overdue,
            first: when(&s.first_at),
            last: when(&s.last_at),
        })
        .collect();
    let interactions = h
        .interactions
        .iter()
        .map(|i| InteractionLine {
            channel: i.channel.clone(),
            kind: i.kind.clone(),
            created: when(&i.created_at),
            due: opt(i.due_at.as_ref()),
            status_key: format!("dsr_interaction_{}", i.status),
            delete_after: opt(i.delete_after.as_ref()),
            body: v.bodies.remove(&i.id),
        })
        .collect();
    Record {
        created: when(&h.created_at),
        updated: when(&h.updated_at),
        display_name: Field {
            held: h.display_name,
            value: v.display_name,
        },
        external_ref: Field {
            held: h.external_ref,
            value: v.external_ref,
        },
        preferred_channel: h.preferred_channel.unwrap_or_default(),
        contacts,
        consents,
        channels,
        interactions,
        interaction_count: h.interaction_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_show_to_the_minute_in_utc() {
        assert_eq!(when("2026-12-02T10:00:10.5Z"), "2026-12-02 10:00 UTC");
        assert_eq!(day("2026-12-02T10:00:10Z"), "2026-12-02");
        assert_eq!(when("short"), "short");
    }

    #[test]
    fn the_short_id_is_the_first_eight_characters() {
        let id = Uuid::parse_str("0190abcd-1234-7000-8000-000000000001").unwrap();
        assert_eq!(short_id(id), "0190abcd");
    }
}
