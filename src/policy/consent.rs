//! A customer's current consent state, folded from the ledger (pure).
//!
//! The current state of (purpose, channel) is its latest event; when asked
//! about a channel, a channel-specific state wins over the `*` state, whatever
//! their order in time.

use std::collections::HashMap;

use time::OffsetDateTime;

use super::decide::{ConsentFacts, ConsentStatus};
use crate::domain::ChannelId;

/// The channel wildcard of a consent that covers every channel.
pub const ANY_CHANNEL: &str = "*";

/// One ledger event, as the decision needs it.
#[derive(Debug, Clone)]
pub struct ConsentEvent {
    pub purpose: String,
    /// A channel name or [`ANY_CHANNEL`].
    pub channel: String,
    pub grant: bool,
    pub at: OffsetDateTime,
    pub expires_at: Option<OffsetDateTime>,
}

/// The latest event per (purpose, channel).
#[derive(Debug, Default, Clone)]
pub struct ConsentLedger {
    current: HashMap<(String, String), ConsentStatus>,
}

impl ConsentLedger {
    /// Folds events given oldest first; a later event replaces an earlier one.
    pub fn from_events(events: impl IntoIterator<Item = ConsentEvent>) -> Self {
        let mut current = HashMap::new();
        for e in events {
            let status = if e.grant {
                ConsentStatus::Granted {
                    at: e.at,
                    expires_at: e.expires_at,
                }
            } else {
                ConsentStatus::Withdrawn
            };
            current.insert((e.purpose, e.channel), status);
        }
        ConsentLedger { current }
    }

    /// Every (purpose, channel) with its current status.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, ConsentStatus)> {
        self.current
            .iter()
            .map(|((p, c), s)| (p.as_str(), c.as_str(), *s))
    }

    fn get(&self, purpose: &str, channel: &str) -> Option<ConsentStatus> {
        self.current
            .get(&(purpose.to_owned(), channel.to_owned()))
            .copied()
    }
}

impl ConsentFacts for ConsentLedger {
    fn status(&self, purpose: &str, channel: &ChannelId) -> ConsentStatus {
        self.get(purpose, channel.as_str())
            .or_else(|| self.get(purpose, ANY_CHANNEL))
            .unwrap_or(ConsentStatus::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn ev(purpose: &str, channel: &str, grant: bool, minute: u8) -> ConsentEvent {
        ConsentEvent {
            purpose: purpose.into(),
            channel: channel.into(),
            grant,
            at: datetime!(2026-01-01 12:00 UTC) + time::Duration::minutes(minute.into()),
            expires_at: None,
        }
    }

    fn email() -> ChannelId {
        ChannelId::parse("email").unwrap()
    }

    #[test]
    fn the_latest_event_decides() {
        let l = ConsentLedger::from_events([
            ev("cross_channel", "email", true, 0),
            ev("cross_channel", "email", false, 1),
        ]);
        assert_eq!(
            l.status("cross_channel", &email()),
            ConsentStatus::Withdrawn
        );
        let l = ConsentLedger::from_events([
            ev("cross_channel", "email", false, 0),
            ev("cross_channel", "email", true, 1),
        ]);
        assert!(matches!(
            l.status("cross_channel", &email()),
            ConsentStatus::Granted { .. }
        ));
    }

    #[test]
    fn a_channel_specific_event_wins_over_the_wildcard_whatever_its_age() {
        let l = ConsentLedger::from_events([
            ev("cross_channel", "email", false, 0),
            ev("cross_channel", "*", true, 5),
        ]);
        assert_eq!(
            l.status("cross_channel", &email()),
            ConsentStatus::Withdrawn
        );
        assert!(matches!(
            l.status("cross_channel", &ChannelId::parse("sms").unwrap()),
            ConsentStatus::Granted { .. }
        ));
    }

    #[test]
    fn purposes_do_not_mix() {
        let l = ConsentLedger::from_events([ev("marketing", "*", true, 0)]);
        assert_eq!(l.status("cross_channel", &email()), ConsentStatus::None);
    }
}
