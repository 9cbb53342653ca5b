//! The validated policy model. Built only by [`super::load`].

use std::{collections::BTreeMap, time::Duration};

use crate::domain::{ChannelId, ChannelKind, Purpose, Role};

/// May a channel's data join another channel's (or a back-office) view?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Integration {
    Always,
    Consent,
    Never,
}

/// Whether values of a channel are masked in profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskMode {
    /// Masked unless the reader reveals them (with a reason, audited).
    Default,
    /// Masked even when revealed.
    Always,
    /// Shown in full.
    Never,
}

/// Interaction kinds known to the retention rules.
pub const INTERACTION_KINDS: [&str; 4] = ["contact_request", "complaint", "feedback", "transcript"];

/// One channel's policy.
#[derive(Debug, Clone)]
pub struct ChannelPolicy {
    pub kind: ChannelKind,
    pub integration: Integration,
    pub mask: MaskMode,
    pub contact_retention: Duration,
    pub interaction_retention: BTreeMap<String, Duration>,
    /// Whether a customer may sign in with a one-time code sent to a
    /// contact point of this channel (`sign_in = true`; off by default).
    pub sign_in: bool,
}

/// GDPR Art. 6(1) lawful basis of a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LawfulBasis {
    Consent,
    Contract,
    LegalObligation,
    VitalInterests,
    PublicTask,
    LegitimateInterests,
}

/// One purpose's policy.
#[derive(Debug, Clone)]
pub struct PurposePolicy {
    pub lawful_basis: LawfulBasis,
    /// For consent-based purposes: a consent older than this has lapsed.
    pub max_age: Option<Duration>,
    pub roles: Vec<Role>,
    /// Consent-based purposes: which staff roles may record a grant or
    /// withdrawal for the customer (`agent`, `compliance`). The customer
    /// always may, so it is not listed. Empty: only the customer.
    pub consent_recorders: Vec<Role>,
    /// Whether a grant an agent records takes effect at once. Off (the
    /// default, and in the shipped policies) an agent-recorded grant waits
    /// for the customer's own confirmation, so the actor who reads cannot
    /// attest a consent and then use it unchecked (README "Consent").
    pub immediate_agent_attestation: bool,
    pub description: Option<String>,
}

/// All policies, validated.
#[derive(Debug, Clone)]
pub struct Policies {
    pub channels: BTreeMap<ChannelId, ChannelPolicy>,
    pub purposes: BTreeMap<Purpose, PurposePolicy>,
    /// Rate limits and the token lifetime cap (`limits.toml`).
    pub limits: super::limits::Limits,
    /// The external issuers trusted besides the local one (`auth.toml`).
    pub issuers: Vec<super::issuers::IssuerPolicy>,
    /// The consent notice of each consent-based purpose (`notices.toml`).
    pub notices: BTreeMap<Purpose, super::notices::Notice>,
}

impl Policies {
    /// The policy of a channel named by untrusted input, if it exists.
    pub fn channel(&self, name: &str) -> Option<(&ChannelId, &ChannelPolicy)> {
        let id = ChannelId::parse(name).ok()?;
        self.channels.get_key_value(&id)
    }

    /// The consent notice of a purpose named by untrusted input, if any.
    pub fn notice(&self, purpose: &str) -> Option<&super::notices::Notice> {
        self.notices.get(&Purpose::parse(purpose).ok()?)
    }

    /// The policy of a purpose named by untrusted input, if it exists.
    pub fn purpose(&self, name: &str) -> Option<(&Purpose, &PurposePolicy)> {
        let id = Purpose::parse(name).ok()?;
        self.purposes.get_key_value(&id)
    }
}
