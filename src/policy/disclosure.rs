//! What one read discloses, channel by channel: a channel is released when at
//! least one of its items was permitted, and withheld (with the reason of its
//! first refused item) otherwise. Pure bookkeeping, shared by every read that
//! returns several channels' data.

use std::collections::BTreeMap;

use super::{ChannelDecision, PermitReason, WithheldReason};

/// Per-channel outcome of one read.
#[derive(Debug, Default)]
pub struct Disclosure {
    released: BTreeMap<String, PermitReason>,
    refused: BTreeMap<String, WithheldReason>,
}

impl Disclosure {
    /// Records the decision for one item of `channel`.
    pub fn record(&mut self, channel: &str, decision: &ChannelDecision) {
        match decision {
            ChannelDecision::Permit(p) => {
                self.refused.remove(channel);
                self.released
                    .entry(channel.to_owned())
                    .or_insert(p.reason());
            }
            ChannelDecision::Withhold(r) => {
                if !self.released.contains_key(channel) {
                    self.refused.entry(channel.to_owned()).or_insert(*r);
                }
            }
        }
    }

    /// Channels with at least one item released, and why.
    pub fn released(&self) -> impl Iterator<Item = (&str, PermitReason)> {
        self.released.iter().map(|(c, r)| (c.as_str(), *r))
    }

    /// Channels of which nothing was released, and why.
    pub fn withheld(&self) -> impl Iterator<Item = (&str, WithheldReason)> {
        self.refused.iter().map(|(c, r)| (c.as_str(), *r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ChannelId, Purpose, Role};
    use crate::policy::{authorise_purpose, decide_channel, load_shipped, NoConsents, Retained};
    use time::macros::datetime;

    #[test]
    fn a_channel_with_one_live_item_is_released_and_all_expired_is_withheld() {
        let p = load_shipped().expect("policies");
        let now = datetime!(2026-06-01 12:00 UTC);
        let phone = ChannelId::parse("phone").expect("channel");
        let g = authorise_purpose(
            &p,
            Role::Agent,
            &[Purpose::parse("support").unwrap()],
            "support",
            Some(&phone),
        )
        .expect("grant");
        let live = Retained::Contact {
            last_activity_at: now,
        };
        let old = Retained::Contact {
            last_activity_at: datetime!(2020-01-01 0:00 UTC),
        };
        let decide = |item| decide_channel(&p, &g, &phone, &NoConsents, item, false, now);
        let mut d = Disclosure::default();
        d.record("phone", &decide(old));
        d.record("phone", &decide(live));
        d.record("phone", &decide(old));
        assert_eq!(
            d.released().collect::<Vec<_>>(),
            [("phone", PermitReason::SameChannel)]
        );
        assert_eq!(d.withheld().count(), 0);

        let mut d = Disclosure::default();
        d.record("phone", &decide(old));
        assert_eq!(
            d.withheld().collect::<Vec<_>>(),
            [("phone", WithheldReason::RetentionExpired)]
        );
    }
}
