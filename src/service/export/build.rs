//! Gathering a bundle: the customer's rows, opened under subject access,
//! each with the deadline its retention rule gives it. Data past its
//! retention is left out here as everywhere else.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    AccessPart, AccessReason, Bundle, ContactPart, CustomerPart, InteractionPart, RetentionPart,
    FORMAT,
};
use crate::{
    policy::{consent_deadline, SubjectAccess},
    service::{
        load::{contact_deadline, held_channel, interaction_deadline, live_profile},
        views::{rfc3339, ConsentEventView},
        Error, Services,
    },
    store::{
        self,
        audit::{AuditFilter, AuditRow},
        consents::ConsentRow,
        customers::{ContactRow, CustomerRow},
        interactions::InteractionRow,
    },
    vault::records::{self, CustomerKeys},
};

/// Everything the vault holds on customer `id` at `now`, opened under
/// subject access: 404 if the customer never existed, 410 if erased.
pub async fn build(
    svc: &Services,
    access: &SubjectAccess,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<Bundle, Error> {
    let store::customers::Profile {
        customer, contacts, ..
    } = live_profile(svc, id).await?;
    let interactions = store::interactions::for_customer(&svc.db, id).await?;
    let consents = store::consents::for_customer(&svc.db, id).await?;
    let entries = access_log(svc, id).await?;
    let mut retention = Vec::new();
    let contacts = contact_parts(svc, access, id, &contacts, now, &mut retention).await?;
    let interactions =
        interaction_parts(svc, access, id, &interactions, now, &mut retention).await?;
    retention.extend(consents.iter().map(|c| consent_retention(svc, c)));
    Ok(Bundle {
        format: FORMAT,
        exported_at: rfc3339(now),
        customer: customer_part(svc, access, id, &customer).await?,
        contacts,
        interactions,
        consents: consents.into_iter().map(ConsentEventView::from).collect(),
        access_log: entries.into_iter().map(access_part).collect(),
        retention,
    })
}

/// Every audit entry about the customer, oldest first.
async fn access_log(svc: &Services, id: Uuid) -> Result<Vec<AuditRow>, Error> {
    let filter = AuditFilter {
        customer_id: Some(id),
        limit: i64::MAX,
        ..AuditFilter::default()
    };
    Ok(store::audit::query(&svc.db, &filter).await?)
}

async fn customer_part(
    svc: &Services,
    access: &SubjectAccess,
    id: Uuid,
    customer: &CustomerRow,
) -> Result<CustomerPart, Error> {
    let profile = records::open_profile(&svc.keyring, &svc.db, access.grant(), customer).await?;
    Ok(CustomerPart {
        id,
        display_name: profile.display_name,
        external_ref: profile.external_ref,
        preferred_channel: customer.preferred_channel.clone(),
        created_at: rfc3339(store::from_micros(customer.created_at)),
        updated_at: rfc3339(store::from_micros(customer.updated_at)),
    })
}

/// The contact points still held, unmasked, each with its deadline added
/// to `retention`.
async fn contact_parts(
    svc: &Services,
    access: &SubjectAccess,
    id: Uuid,
    contacts: &[ContactRow],
    now: OffsetDateTime,
    retention: &mut Vec<RetentionPart>,
) -> Result<Vec<ContactPart>, Error> {
    let mut parts = Vec::with_capacity(contacts.len());
    for c in contacts {
        let deadline = contact_deadline(svc, c);
        let Some(ch) = held_channel(&c.channel, deadline, now) else {
            continue;
        };
        let kind = svc.channel_kind(&c.channel);
        let opened =
            records::open_contact(&svc.keyring, &svc.db, &access.permit(&ch), kind, id, c).await?;
        retention.push(RetentionPart {
            item: "contact",
            id: c.id,
            channel: c.channel.clone(),
            delete_after: deadline.map(rfc3339),
        });
        parts.push(ContactPart {
            id: c.id,
            channel: opened.channel,
            value: opened.value,
            label: opened.label,
            created_at: rfc3339(opened.created_at),
            last_activity_at: rfc3339(store::from_micros(c.last_activity_at)),
            kind,
        });
    }
    Ok(parts)
}

/// The interactions still held, with their bodies, each with its deadline
/// added to `retention`.
async fn interaction_parts(
    svc: &Services,
    access: &SubjectAccess,
    id: Uuid,
    interactions: &[InteractionRow],
    now: OffsetDateTime,
    retention: &mut Vec<RetentionPart>,
) -> Result<Vec<InteractionPart>, Error> {
    let mut keys = CustomerKeys::new(&svc.keyring, &svc.db, id);
    let mut parts = Vec::with_capacity(interactions.len());
    for i in interactions {
        let deadline = interaction_deadline(svc, i);
        let Some(ch) = held_channel(&i.channel, deadline, now) else {
            continue;
        };
        let opened = keys.open_interaction(&access.permit(&ch), i).await?;
        retention.push(RetentionPart {
            item: "interaction",
            id: i.id,
            channel: i.channel.clone(),
            delete_after: deadline.map(rfc3339),
        });
        parts.push(InteractionPart {
            id: opened.id,
            channel: opened.channel,
            kind: opened.kind,
            body: opened.body,
            created_at: rfc3339(opened.created_at),
            due_at: opened.due_at.map(rfc3339),
            resolved_at: opened.resolved_at.map(rfc3339),
        });
    }
    Ok(parts)
}

/// When a consent event stops mattering and goes.
fn consent_retention(svc: &Services, c: &ConsentRow) -> RetentionPart {
    let deadline = consent_deadline(
        &svc.policies,
        &c.purpose,
        store::from_micros(c.at),
        c.expires_at.map(store::from_micros),
    );
    RetentionPart {
        item: "consent",
        id: c.id,
        channel: c.channel.clone(),
        delete_after: deadline.map(rfc3339),
    }
}

/// An audit entry as the customer sees it: no staff identity, no free text.
fn access_part(e: AuditRow) -> AccessPart {
    AccessPart {
        reasons: reasons(&e.detail),
        seq: e.seq,
        at: rfc3339(store::from_micros(e.at)),
        action: e.action,
        role: e.actor_role,
        purpose: e.purpose,
        channel: e.channel,
        decision: e.decision,
    }
}

/// The reason codes an entry's detail holds: the channels a read showed
/// (`released`) and withheld, each `{channel, reason}`, and on a denial its
/// `code`, the policy `rule` and a sign-in's `reason`. Everything else in the
/// detail (ids, counts) stays out.
fn reasons(detail: &str) -> Vec<AccessReason> {
    let Ok(serde_json::Value::Object(d)) = serde_json::from_str(detail) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, outcome) in [("released", "shown"), ("withheld", "withheld")] {
        let Some(list) = d.get(key).and_then(|v| v.as_array()) else {
            continue;
        };
        out.extend(list.iter().filter_map(|item| {
            Some(AccessReason {
                outcome,
                channel: item.get("channel")?.as_str().map(str::to_owned),
                code: item.get("reason")?.as_str()?.to_owned(),
            })
        }));
    }
    for key in ["code", "rule", "reason"] {
        if let Some(code) = d.get(key).and_then(|v| v.as_str()) {
            out.push(AccessReason {
                outcome: "refused",
                channel: None,
                code: code.to_owned(),
            });
        }
    }
    out
}
