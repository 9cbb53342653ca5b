//! Contact points at the service boundary: a channel named in a request
//! resolved against the policy, a value parsed by its channel's normaliser,
//! and a contact point sealed for storage, each in one place for every
//! operation that takes one.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Error, Services};
use crate::{
    crypto::FieldKey,
    domain::{normalise, ChannelId, ChannelKind, ContactError, NormalisedValue},
    policy::MaskMode,
    store::{self, customers::NewContact},
    vault::records::{self, field},
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

    /// Seals a new contact point of `customer_id` for storage, under `key`
    /// (the data key of the contact's channel for that customer): the blind
    /// index a lookup finds it by, and the value and label, each bound to
    /// customer, channel, record id and field. The only place a contact
    /// point is sealed.
    pub fn seal_contact(
        &self,
        key: &FieldKey,
        customer_id: Uuid,
        contact: &ParsedContact,
        label: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<NewContact, Error> {
        let id = Uuid::now_v7();
        let channel = contact.channel.as_str();
        let seal = |f, plain| records::seal(key, customer_id, channel, id, f, plain);
        Ok(NewContact {
            id,
            customer_id,
            channel: channel.to_owned(),
            blind_index: self.blind.compute(channel, contact.value.index_key()),
            value: seal(field::VALUE, contact.value.value())?,
            label: label.map(|l| seal(field::LABEL, l)).transpose()?,
            now: store::to_micros(now),
        })
    }
}
