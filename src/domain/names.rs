//! Identifier-like names (channels, purposes) and token roles.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

/// Longest accepted channel or purpose name, in characters.
const MAX_NAME_LEN: usize = 32;

/// Why a channel or purpose name was rejected.
///
/// There is a single variant on purpose: names come from operators and API
/// callers, and one clear message about the grammar is more useful to them
/// than a detailed diagnosis.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NameError {
    /// The string does not follow the name grammar.
    #[error("must be 1 to 32 characters of a-z, 0-9 and _, starting with a letter")]
    Invalid,
}

/// Checks the shared name grammar: 1–32 chars of `[a-z0-9_]`, first a letter.
fn check_name(s: &str) -> Result<(), NameError> {
    let mut bytes = s.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase());
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    // All accepted characters are ASCII, so the byte length is the char count.
    if first_ok && rest_ok && s.len() <= MAX_NAME_LEN {
        Ok(())
    } else {
        Err(NameError::Invalid)
    }
}

/// Defines a validated name newtype; both name types share grammar and impls.
macro_rules! name_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
        )]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses a name; this is the only way to build one, so every value is valid.
            pub fn parse(s: &str) -> Result<Self, NameError> {
                check_name(s)?;
                Ok(Self(s.to_owned()))
            }

            /// The name as text, for storage keys, policy lookups and messages.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = NameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = NameError;

            fn try_from(s: String) -> Result<Self, Self::Error> {
                check_name(&s)?;
                Ok(Self(s))
            }
        }

        impl From<$name> for String {
            fn from(name: $name) -> String {
                name.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        // Hash, Eq and Ord are derived from the inner `String`, so they agree
        // with those of `str`; this lets maps keyed by the name be queried by `&str`.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type! {
    /// A channel name such as `email`, `phone` or `whatsapp`: 1–32 chars of
    /// `[a-z0-9_]`, starting with a letter.
    ///
    /// Channels are open-ended (operators add them in the policy file), so
    /// they are names rather than an enum; the grammar keeps them safe to use
    /// in URLs, SQL and log lines. Serde (de)serialises it as a plain string
    /// and deserialisation goes through [`ChannelId::parse`].
    ChannelId
}

/// The key domain of profile fields (display name, external reference), which
/// belong to no channel. A [`ChannelId`] starts with a letter, so no channel
/// is ever named like it.
pub const PROFILE_DOMAIN: &str = "_profile";

name_type! {
    /// A purpose name (why contact data is accessed, e.g. `order_delivery`);
    /// same grammar and behaviour as [`ChannelId`].
    ///
    /// A separate type so that a purpose can never be passed where a channel
    /// is expected.
    Purpose
}

/// Why a role string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown role; expected one of agent, service, compliance, customer, admin")]
pub struct RoleError;

/// The role carried by an access token; it decides which operations and
/// which unmasked data the caller may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A customer-service agent working on a case.
    Agent,
    /// Another backend service acting on its own behalf.
    Service,
    /// Compliance staff (audits, data subject requests).
    Compliance,
    /// The data subject themself.
    Customer,
    /// An operator administering the vault.
    Admin,
}

impl Role {
    /// Every role, e.g. for policy validation and help texts.
    pub const ALL: [Role; 5] = [
        Role::Agent,
        Role::Service,
        Role::Compliance,
        Role::Customer,
        Role::Admin,
    ];

    /// The wire name of the role, identical to its serde form.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Service => "service",
            Role::Compliance => "compliance",
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoleError;

    /// Accepts exactly the lowercase wire names, like serde does.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or(RoleError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn channel_ids_and_purposes_accept_well_formed_names() {
        for ok in ["email", "cross_channel", "a", "sms2", "a_1_b"] {
            assert_eq!(ChannelId::parse(ok).map(|c| c.to_string()), Ok(ok.into()));
            assert_eq!(Purpose::parse(ok).map(|p| p.to_string()), Ok(ok.into()));
        }
        let longest = "a".repeat(32);
        assert!(ChannelId::parse(&longest).is_ok());
        assert!(
            ChannelId::parse(PROFILE_DOMAIN).is_err(),
            "no channel shares the profile's key domain"
        );
        assert!(Purpose::parse(&longest).is_ok());
    }

    #[test]
    fn channel_ids_and_purposes_reject_malformed_names() {
        let too_long = "a".repeat(33);
        for bad in [
            "",
            "Email",
            "1abc",
            "a-b",
            too_long.as_str(),
            "_a",
            " email",
            "email ",
            "e mail",
            "sähkö",
        ] {
            assert_eq!(ChannelId::parse(bad), Err(NameError::Invalid), "{bad:?}");
            assert_eq!(Purpose::parse(bad), Err(NameError::Invalid), "{bad:?}");
            assert_eq!(bad.parse::<ChannelId>(), Err(NameError::Invalid));
            assert_eq!(ChannelId::try_from(bad.to_owned()), Err(NameError::Invalid));
        }
    }

    #[test]
    fn serde_round_trips_channel_ids_as_plain_strings() {
        let id = ChannelId::parse("whatsapp").expect("valid name");
        let json = serde_json::to_string(&id).expect("serialises");
        assert_eq!(json, "\"whatsapp\"");
        let back: ChannelId = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, id);
    }

    #[test]
    fn serde_rejects_bad_channel_ids_and_purposes() {
        for bad in ["\"\"", "\"Email\"", "\"1abc\"", "\"a-b\"", "42", "null"] {
            assert!(serde_json::from_str::<ChannelId>(bad).is_err(), "{bad}");
            assert!(serde_json::from_str::<Purpose>(bad).is_err(), "{bad}");
        }
        let err = serde_json::from_str::<ChannelId>("\"Email\"")
            .expect_err("uppercase is rejected")
            .to_string();
        assert!(err.contains("a-z, 0-9 and _"), "{err}");
    }

    #[test]
    fn maps_keyed_by_channel_id_can_be_queried_by_str() {
        let mut map = HashMap::new();
        map.insert(ChannelId::parse("sms").expect("valid name"), 1);
        assert_eq!(map.get("sms"), Some(&1));
    }

    #[test]
    fn roles_round_trip_through_from_str_display_and_serde() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(role.to_string(), role.as_str());
            let json = serde_json::to_string(&role).expect("serialises");
            assert_eq!(json, format!("\"{}\"", role.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&json).ok(), Some(role));
        }
    }

    #[test]
    fn unknown_or_miscased_roles_are_rejected() {
        for bad in ["", "Agent", "ADMIN", "root", " agent"] {
            assert_eq!(bad.parse::<Role>(), Err(RoleError), "{bad:?}");
        }
        assert!(serde_json::from_str::<Role>("\"Admin\"").is_err());
    }

    proptest! {
        #[test]
        fn name_parse_accepts_exactly_the_grammar(s in "\\PC{0,40}|[a-z0-9_A-Z-]{0,40}") {
            let expected = s.len() <= 32
                && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            prop_assert_eq!(ChannelId::parse(&s).is_ok(), expected);
            prop_assert_eq!(Purpose::parse(&s).is_ok(), expected);
            if let Ok(id) = ChannelId::parse(&s) {
                prop_assert_eq!(id.as_str(), s.as_str());
            }
        }

        #[test]
        fn serde_deserialisation_agrees_with_parse(s in "[a-z0-9_A-Z-]{0,40}") {
            let json = serde_json::to_string(&s).expect("a string serialises");
            let via_serde = serde_json::from_str::<ChannelId>(&json).ok();
            prop_assert_eq!(via_serde, ChannelId::parse(&s).ok());
        }
    }
}
