//! Loading a customer's record for an operation: 404 `not_found` if the
//! customer never existed, 410 `customer_erased` if erased; and the
//! retention facts and deadlines of stored rows that the decisions read.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Error, Services};
use crate::{
    domain::ChannelId,
    policy::{retention_deadline, Retained},
    store::{self, customers::ContactRow, interactions::InteractionRow},
};

/// The live customer row, its contact points and consent facts, from the
/// customer's profile document and facts (or the tables if it has none); 404 if the
/// customer never existed, 410 if erased.
pub async fn live_profile(s: &Services, id: Uuid) -> Result<store::customers::Profile, Error> {
    live(store::customers::profile(&s.db, id).await?)
}

/// As [`live_profile`], for the profile read itself: a document or facts
/// built from the tables are handed to the projector to store. Only reads
/// offer them: an operation that goes on to change the customer would make
/// them stale at once, and storing them would only compete with the audit
/// writer.
pub async fn live_profile_for_read(
    s: &Services,
    id: Uuid,
) -> Result<store::customers::Profile, Error> {
    let read = store::customers::profile_read(&s.db, id).await?;
    live(read.map(|(profile, refreshes)| {
        for refresh in refreshes {
            s.projector.offer(refresh);
        }
        profile
    }))
}

fn live(profile: Option<store::customers::Profile>) -> Result<store::customers::Profile, Error> {
    let profile = profile.ok_or(Error::NotFound)?;
    if profile.customer.erased_at.is_some() {
        return Err(Error::CustomerErased);
    }
    Ok(profile)
}

/// 404 if the customer never existed, 410 if erased.
pub async fn require_live(s: &Services, id: Uuid) -> Result<(), Error> {
    match store::customers::state(&s.db, id).await? {
        None => Err(Error::NotFound),
        Some(Some(_)) => Err(Error::CustomerErased),
        Some(None) => Ok(()),
    }
}

/// The retention facts of a stored interaction: its kind's retention runs
/// from when it was recorded, or resolved if that came later.
pub fn retained(row: &InteractionRow) -> Retained<'_> {
    Retained::Interaction {
        kind: &row.kind,
        since: store::from_micros(
            row.resolved_at
                .unwrap_or(row.created_at)
                .max(row.created_at),
        ),
    }
}

/// When a stored contact point's retention ends; `None` for data no policy
/// covers (a channel since removed from the policy).
pub fn contact_deadline(s: &Services, c: &ContactRow) -> Option<OffsetDateTime> {
    let ch = ChannelId::parse(&c.channel).ok()?;
    let item = Retained::Contact {
        last_activity_at: store::from_micros(c.last_activity_at),
    };
    retention_deadline(&s.policies, &ch, item)
}

/// When a stored interaction's retention ends; `None` for data no policy covers.
pub fn interaction_deadline(s: &Services, i: &InteractionRow) -> Option<OffsetDateTime> {
    let ch = ChannelId::parse(&i.channel).ok()?;
    retention_deadline(&s.policies, &ch, retained(i))
}

/// The channel of a stored item that is still held at `now`, given its
/// retention deadline; `None` once retention has ended, and for data no
/// policy covers.
pub fn held_channel(
    channel: &str,
    deadline: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Option<ChannelId> {
    ChannelId::parse(channel)
        .ok()
        .filter(|_| deadline.is_some_and(|d| d > now))
}
