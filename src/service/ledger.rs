//! The consent ledger the integration rule reads, built from the consent
//! facts that a profile read or a lookup loads with its rows.

use uuid::Uuid;

use super::{Error, Services};
use crate::{
    policy::{ConsentEvent, ConsentLedger},
    store::{
        self,
        consents::{ConsentFact, ConsentRow, EFFECTIVE},
    },
};

/// The decision's view of consent facts read with a profile or lookup.
pub fn of_facts(facts: &[ConsentFact]) -> ConsentLedger {
    ConsentLedger::from_events(facts.iter().map(|f| ConsentEvent {
        purpose: f.purpose.clone(),
        channel: f.channel.clone(),
        grant: f.grant,
        at: store::from_micros(f.at),
        expires_at: f.expires_at.map(store::from_micros),
    }))
}

/// A customer's consent ledger, as the decision reads it.
pub async fn load(s: &Services, customer_id: Uuid) -> Result<ConsentLedger, Error> {
    let rows = store::consents::for_customer(&s.db, customer_id).await?;
    Ok(ledger_of(&rows))
}

/// The effective events only: a pending grant opens nothing.
pub fn ledger_of(rows: &[ConsentRow]) -> ConsentLedger {
    ConsentLedger::from_events(rows.iter().filter(|r| r.status == EFFECTIVE).map(|r| {
        ConsentEvent {
            purpose: r.purpose.clone(),
            channel: r.channel.clone(),
            grant: r.action == "grant",
            at: store::from_micros(r.at),
            expires_at: r.expires_at.map(store::from_micros),
        }
    }))
}
