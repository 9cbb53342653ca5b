//! Reading the ledger: the history as recorded, and the current state of
//! each (purpose, channel) as the integration rule sees it now (a grant past
//! its age or expiry is `lapsed`), with the grants awaiting confirmation.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{ConsentEventView, ConsentState, LedgerView};
use crate::{
    policy::{consent_current, ConsentStatus, WithheldReason},
    service::{audited::AuditScope, ledger::ledger_of, load::require_live, Error, Services},
    store::{
        self,
        consents::{ConsentRow, PENDING_CONFIRMATION},
    },
};

/// The grants awaiting confirmation, keyed by (purpose, channel).
pub(super) type Pending<'r> = BTreeMap<(&'r str, &'r str), &'r ConsentRow>;

/// The grants awaiting confirmation: per (purpose, channel), its latest event
/// if that is a pending grant. Any later event (a withdrawal, a direct grant,
/// a newer pending grant, a confirmation) closes an older pending grant.
pub(super) fn open_pending(rows: &[ConsentRow]) -> Pending<'_> {
    let mut latest = BTreeMap::new();
    for r in rows {
        latest.insert((r.purpose.as_str(), r.channel.as_str()), r);
    }
    latest.retain(|_, r| r.status == PENDING_CONFIRMATION && r.action == "grant");
    latest
}

/// A live customer's ledger: `{current, history}`.
pub(super) async fn ledger(
    svc: &Services,
    customer_id: Uuid,
    scope: &mut AuditScope,
) -> Result<LedgerView, Error> {
    scope.detail("part", "consents");
    require_live(svc, customer_id).await?;
    let rows = store::consents::for_customer(&svc.db, customer_id).await?;
    let current = current_states(svc, &rows, svc.clock.now());
    let history = rows.into_iter().map(ConsentEventView::from).collect();
    Ok(LedgerView { current, history })
}

/// The current state of each (purpose, channel) of a customer's ledger
/// `rows` at `at`, sorted by purpose and channel (also the console's
/// inventory of a customer, which shows states, never evidence).
pub(crate) fn current_states(
    svc: &Services,
    rows: &[ConsentRow],
    at: time::OffsetDateTime,
) -> Vec<ConsentState> {
    let pending = open_pending(rows);
    let mut current: Vec<ConsentState> = ledger_of(rows)
        .entries()
        .map(|(purpose, channel, status)| {
            let effective = match status {
                ConsentStatus::Withdrawn | ConsentStatus::None => "withdrawn",
                granted => match consent_current(&svc.policies, purpose, granted, at) {
                    Ok(()) => "granted",
                    Err(WithheldReason::ConsentLapsed) => "lapsed",
                    Err(_) => "withdrawn",
                },
            };
            state(purpose, channel, Some(effective), &pending)
        })
        .collect();
    // A pending grant with no effective event before it.
    for (purpose, channel) in pending.keys() {
        if !current
            .iter()
            .any(|c| c.purpose == *purpose && c.channel == *channel)
        {
            current.push(state(purpose, channel, None, &pending));
        }
    }
    current.sort_by(|a, b| (&a.purpose, &a.channel).cmp(&(&b.purpose, &b.channel)));
    current
}

/// One (purpose, channel) of the `current` view: what opens data (`granted`)
/// wins; otherwise a grant awaiting confirmation shows as
/// `pending_confirmation`; otherwise the effective state.
fn state(
    purpose: &str,
    channel: &str,
    effective: Option<&'static str>,
    pending: &Pending<'_>,
) -> ConsentState {
    let pending_consent_id = pending.get(&(purpose, channel)).map(|r| r.id);
    let status = match (effective, pending_consent_id) {
        (Some("granted"), _) => "granted",
        (_, Some(_)) => PENDING_CONFIRMATION,
        (Some(other), None) => other,
        (None, None) => "withdrawn",
    };
    ConsentState {
        purpose: purpose.to_owned(),
        channel: channel.to_owned(),
        status,
        pending_consent_id,
    }
}
