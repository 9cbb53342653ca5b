//! Loading a customer's record for an operation: 404 `not_found` if the
//! customer never existed, 410 `customer_erased` if erased; and the
//! retention facts of stored rows that the decisions read.

use uuid::Uuid;

use super::{Error, Services};
use crate::{
    policy::Retained,
    store::{self, interactions::InteractionRow},
};

/// The live customer row, its contact points and consent facts, in one
/// round trip; 404 if the customer never existed, 410 if erased.
pub async fn live_profile(s: &Services, id: Uuid) -> Result<store::customers::Profile, Error> {
    let profile = store::customers::profile(&s.db, id)
        .await?
        .ok_or(Error::NotFound)?;
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
