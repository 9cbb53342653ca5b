//! Channel kinds: the closed set of value shapes behind the open set of channels.

use std::fmt;
use std::str::FromStr;

/// The shape of the values a channel carries.
///
/// Channels themselves are open-ended names (see
/// [`ChannelId`](crate::domain::ChannelId)); the kind is the closed set that
/// picks the normaliser (what the blind index is computed on) and the mask
/// (what a caller without clearance sees).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// An e-mail address; lower-cased, shown as `p***@example.com`.
    Email,
    /// A phone number (phone, sms, whatsapp…); E.164, shown as `+358*******67`.
    Phone,
    /// A user handle (instagram, messenger…); lower-cased without `@`, shown as `pe***`.
    Handle,
    /// Free text (postal address, chat id); kept as written, shown as `***`.
    Text,
}

/// Why a channel kind string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown channel kind; expected one of email, phone, handle, text")]
pub struct ChannelKindError;

impl ChannelKind {
    /// Every kind, e.g. for policy validation and exhaustive tests.
    pub const ALL: [ChannelKind; 4] = [
        ChannelKind::Email,
        ChannelKind::Phone,
        ChannelKind::Handle,
        ChannelKind::Text,
    ];

    /// The wire name of the kind, identical to its serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            ChannelKind::Email => "email",
            ChannelKind::Phone => "phone",
            ChannelKind::Handle => "handle",
            ChannelKind::Text => "text",
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChannelKind {
    type Err = ChannelKindError;

    /// Accepts exactly the lowercase wire names, like serde does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == s)
            .ok_or(ChannelKindError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_kinds_round_trip_through_from_str_display_and_serde() {
        for kind in ChannelKind::ALL {
            assert_eq!(kind.as_str().parse::<ChannelKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.as_str());
            let json = serde_json::to_string(&kind).expect("serialises");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<ChannelKind>(&json).ok(), Some(kind));
        }
    }

    #[test]
    fn unknown_or_miscased_channel_kinds_are_rejected() {
        for bad in ["", "Email", "sms", "postal", " text"] {
            assert_eq!(bad.parse::<ChannelKind>(), Err(ChannelKindError), "{bad:?}");
        }
        assert!(serde_json::from_str::<ChannelKind>("\"Phone\"").is_err());
    }
}
