//! Contact points at the service boundary: a channel named in a request
//! resolved against the policy, and a value parsed by its channel's
//! normaliser, each once, for every operation that takes one.

use super::{Error, Services};
use crate::{
    domain::{normalise, ChannelId, ChannelKind, ContactError, NormalisedValue},
    policy::MaskMode,
};

/// A contact value parsed for its channel.
pub struct ParsedContact {
    pub channel: ChannelId,
    pub kind: ChannelKind,
    pub mask: MaskMode,
    pub value: NormalisedValue,
}

impl Services {
    /// A channel named in a request; 400 `unknown_channel` if the policy has none.
    pub fn known_channel(&self, name: &str) -> Result<(ChannelId, ChannelKind, MaskMode), Error> {
        let (id, p) = self
            .policies
            .channel(name)
            .ok_or_else(|| Error::UnknownChannel(name.chars().take(32).collect()))?;
        Ok((id.clone(), p.kind, p.mask))
    }

    /// Parses a contact value with its channel's normaliser (400
    /// `invalid_email`, `invalid_phone` or `invalid_request` saying why).
    pub fn parse_contact(&self, channel: &str, value: &str) -> Result<ParsedContact, Error> {
        let (channel, kind, mask) = self.known_channel(channel)?;
        let value = normalise(kind, value, self.config.default_region).map_err(|e| match e {
            ContactError::InvalidEmail(_) => Error::InvalidEmail(e.to_string()),
            ContactError::InvalidPhone(_) => Error::InvalidPhone(e.to_string()),
            other => Error::InvalidRequest(other.to_string()),
        })?;
        Ok(ParsedContact {
            channel,
            kind,
            mask,
            value,
        })
    }

    /// How a stored channel's values are masked; a channel since removed from
    /// the policy is treated as free text.
    pub fn channel_kind(&self, channel: &str) -> ChannelKind {
        self.policies
            .channel(channel)
            .map(|(_, p)| p.kind)
            .unwrap_or(ChannelKind::Text)
    }
}
