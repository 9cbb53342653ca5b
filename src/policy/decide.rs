//! The integration rule (README "Policies", SECURITY.md "Authorisation") as pure functions: no I/O, no clock.
//!
//! Authorisation is a value: [`authorise_purpose`] returns a [`PurposeGrant`]
//! and [`decide_channel`] a [`Permit`] per channel. Both have private fields,
//! so the only way to get one is to pass these checks; the vault's decrypting
//! functions demand them.
//!
//! Longer than 500 lines because of its tests: the rule is under 400 lines, and
//! its unit and property tests stay beside the branches they cover.

use time::OffsetDateTime;

use super::model::{Integration, MaskMode, Policies};
use crate::domain::{ChannelId, Purpose, Role};

/// Proof that `role` may act for `purpose` and that the token lists it.
#[derive(Debug, Clone)]
pub struct PurposeGrant {
    purpose: Purpose,
    role: Role,
    context: Option<ChannelId>,
}

impl PurposeGrant {
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }
    pub fn role(&self) -> Role {
        self.role
    }
    /// The channel the customer is talking to us on (agent tokens), if any.
    pub fn context(&self) -> Option<&ChannelId> {
        self.context.as_ref()
    }
}

/// Why a purpose was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurposeDenied {
    /// No such purpose in `purposes.toml`: 400 `unknown_purpose`.
    Unknown,
    /// The role may not act for it, or the token does not list it: 403 `purpose_not_allowed`.
    NotAllowed,
}

/// Checks that the purpose exists, the role may act for it, and the token lists it.
pub fn authorise_purpose(
    policies: &Policies,
    role: Role,
    token_purposes: &[Purpose],
    purpose: &str,
    context: Option<&ChannelId>,
) -> Result<PurposeGrant, PurposeDenied> {
    let (id, policy) = policies.purpose(purpose).ok_or(PurposeDenied::Unknown)?;
    if !policy.roles.contains(&role) || !token_purposes.contains(id) {
        return Err(PurposeDenied::NotAllowed);
    }
    Ok(PurposeGrant {
        purpose: id.clone(),
        role,
        context: context.cloned(),
    })
}

/// The customer's current consent for one (purpose, channel), already resolved
/// from the ledger (a channel-specific event wins over `*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentStatus {
    /// Never granted.
    None,
    Granted {
        at: OffsetDateTime,
        expires_at: Option<OffsetDateTime>,
    },
    Withdrawn,
}

/// Where the decision learns a customer's consents.
pub trait ConsentFacts {
    fn status(&self, purpose: &str, channel: &ChannelId) -> ConsentStatus;
}

/// A customer with no consent recorded at all.
pub struct NoConsents;

impl ConsentFacts for NoConsents {
    fn status(&self, _: &str, _: &ChannelId) -> ConsentStatus {
        ConsentStatus::None
    }
}

/// Why a channel is withheld; listed in the response with this code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithheldReason {
    ConsentRequired,
    ConsentWithdrawn,
    ConsentLapsed,
    IntegrationNever,
    RetentionExpired,
}

impl WithheldReason {
    pub fn as_str(self) -> &'static str {
        match self {
            WithheldReason::ConsentRequired => "consent_required",
            WithheldReason::ConsentWithdrawn => "consent_withdrawn",
            WithheldReason::ConsentLapsed => "consent_lapsed",
            WithheldReason::IntegrationNever => "integration_never",
            WithheldReason::RetentionExpired => "retention_expired",
        }
    }
}

/// Why a channel's data may be read: recorded in the audit log with the
/// decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PermitReason {
    /// The customer is talking to us on this channel and the purpose is `support`.
    SameChannel,
    /// The channel's integration is `always`.
    IntegrationAlways,
    /// A current `cross_channel` consent on the channel (or `*`).
    ConsentGranted,
    /// The data subject's own request (access, export): everything, unmasked.
    DataSubject,
}

impl PermitReason {
    pub fn as_str(self) -> &'static str {
        match self {
            PermitReason::SameChannel => "same_channel",
            PermitReason::IntegrationAlways => "integration_always",
            PermitReason::ConsentGranted => "consent_granted",
            PermitReason::DataSubject => "data_subject",
        }
    }
}

/// Permission to open one channel's data of one customer for one purpose.
#[derive(Debug, Clone)]
pub struct Permit {
    channel: ChannelId,
    purpose: Purpose,
    masked: bool,
    reason: PermitReason,
}

impl Permit {
    pub fn channel(&self) -> &ChannelId {
        &self.channel
    }
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }
    /// Whether values must be masked in what is released under this permit.
    pub fn masked(&self) -> bool {
        self.masked
    }
    /// Why the read is allowed.
    pub fn reason(&self) -> PermitReason {
        self.reason
    }
}

/// The outcome for one channel.
#[derive(Debug, Clone)]
pub enum ChannelDecision {
    Permit(Permit),
    Withhold(WithheldReason),
}

impl ChannelDecision {
    /// The reason code the audit log records: why allowed, or why withheld.
    pub fn reason_code(&self) -> &'static str {
        match self {
            ChannelDecision::Permit(p) => p.reason.as_str(),
            ChannelDecision::Withhold(r) => r.as_str(),
        }
    }
}

/// The retention facts of one stored item: what it is and since when its
/// retention runs (README "Retention at read time").
#[derive(Debug, Clone, Copy)]
pub enum Retained<'a> {
    /// A contact point, kept for the channel's `contact_retention` after its
    /// last activity.
    Contact { last_activity_at: OffsetDateTime },
    /// An interaction, kept for its kind's retention after it was recorded
    /// (or resolved, if later).
    Interaction {
        kind: &'a str,
        since: OffsetDateTime,
    },
}

/// When an item of `channel` reaches the end of its retention. `None` when
/// the policy has no rule for it (an unknown channel or kind): such data has
/// no lawful place in the vault and is treated as already expired.
pub fn retention_deadline(
    policies: &Policies,
    channel: &ChannelId,
    item: Retained<'_>,
) -> Option<OffsetDateTime> {
    let policy = policies.channels.get(channel)?;
    let (since, keep) = match item {
        Retained::Contact { last_activity_at } => (last_activity_at, policy.contact_retention),
        Retained::Interaction { kind, since } => (since, *policy.interaction_retention.get(kind)?),
    };
    let keep = time::Duration::try_from(keep).ok()?;
    since.checked_add(keep)
}

/// Whether an item is past its retention at `now`: treated as gone even
/// before the sweeper deletes it.
pub fn retention_expired(
    policies: &Policies,
    channel: &ChannelId,
    item: Retained<'_>,
    now: OffsetDateTime,
) -> bool {
    retention_deadline(policies, channel, item).is_none_or(|deadline| deadline <= now)
}

/// Decides whether one item of channel `target` may be read under `grant` now.
///
/// - same channel as the context and purpose `support`: allowed;
/// - otherwise it is channel integration: `always` allows, `never` refuses,
///   `consent` needs a current `cross_channel` consent on the channel (or `*`);
/// - `marketing` additionally needs a current `marketing` consent on the channel;
/// - a channel missing from the policy is treated as `never`;
/// - an item past its retention is withheld as `retention_expired`. This is
///   checked after the rules above, so a reader who may not see the channel
///   learns nothing about how old its data is.
///
/// `reveal` asks for unmasked values; the channel's mask mode has the last word.
pub fn decide_channel(
    policies: &Policies,
    grant: &PurposeGrant,
    target: &ChannelId,
    consents: &impl ConsentFacts,
    item: Retained<'_>,
    reveal: bool,
    now: OffsetDateTime,
) -> ChannelDecision {
    let Some(policy) = policies.channels.get(target) else {
        return ChannelDecision::Withhold(WithheldReason::IntegrationNever);
    };
    let purpose = grant.purpose.as_str();
    if purpose == "marketing" {
        if let Err(reason) = consent_current(
            policies,
            "marketing",
            consents.status("marketing", target),
            now,
        ) {
            return ChannelDecision::Withhold(reason);
        }
    }
    let same_channel = grant.context.as_ref() == Some(target);
    let reason = if same_channel && purpose == "support" {
        PermitReason::SameChannel
    } else {
        match policy.integration {
            Integration::Always => PermitReason::IntegrationAlways,
            Integration::Never => {
                return ChannelDecision::Withhold(WithheldReason::IntegrationNever)
            }
            Integration::Consent => {
                let status = consents.status("cross_channel", target);
                if let Err(reason) = consent_current(policies, "cross_channel", status, now) {
                    return ChannelDecision::Withhold(reason);
                }
                PermitReason::ConsentGranted
            }
        }
    };
    if retention_expired(policies, target, item, now) {
        return ChannelDecision::Withhold(WithheldReason::RetentionExpired);
    }
    let masked = match policy.mask {
        MaskMode::Always => true,
        MaskMode::Never => false,
        MaskMode::Default => !reveal,
    };
    ChannelDecision::Permit(Permit {
        channel: target.clone(),
        purpose: grant.purpose.clone(),
        masked,
        reason,
    })
}

/// The purpose of data subject requests (GDPR Art. 15-17, 20).
pub const DSR_PURPOSE: &str = "dsr";

/// Proof that the reader may see one customer's whole record unmasked: the
/// customer themselves, or staff acting on their request (`dsr`).
#[derive(Debug, Clone)]
pub struct SubjectAccess {
    grant: PurposeGrant,
}

impl SubjectAccess {
    /// The `dsr` purpose grant behind this access.
    pub fn grant(&self) -> &PurposeGrant {
        &self.grant
    }

    /// An unmasked permit for any channel of the customer.
    pub fn permit(&self, channel: &ChannelId) -> Permit {
        Permit {
            channel: channel.clone(),
            purpose: self.grant.purpose.clone(),
            masked: false,
            reason: PermitReason::DataSubject,
        }
    }
}

/// Authorises a data subject request. The role must be among the `dsr`
/// purpose's roles; staff tokens must also list `dsr`. A customer acts on
/// their own record (the caller passes only their own id), which is their
/// right whatever purposes their token lists.
pub fn authorise_subject_access(
    policies: &Policies,
    role: Role,
    token_purposes: &[Purpose],
) -> Result<SubjectAccess, PurposeDenied> {
    let (id, policy) = policies
        .purpose(DSR_PURPOSE)
        .ok_or(PurposeDenied::Unknown)?;
    let listed = token_purposes.iter().any(|p| p.as_str() == DSR_PURPOSE);
    if !policy.roles.contains(&role) || (role != Role::Customer && !listed) {
        return Err(PurposeDenied::NotAllowed);
    }
    Ok(SubjectAccess {
        grant: PurposeGrant {
            purpose: id.clone(),
            role,
            context: None,
        },
    })
}

/// When a consent event stops mattering and may be deleted: when it lapses
/// (its purpose's `max_age` after it was given, or its own `expires_at`,
/// whichever comes first). `None`: kept while the customer is.
pub fn consent_deadline(
    policies: &Policies,
    purpose: &str,
    at: OffsetDateTime,
    expires_at: Option<OffsetDateTime>,
) -> Option<OffsetDateTime> {
    let by_age = policies
        .purpose(purpose)
        .and_then(|(_, p)| p.max_age)
        .and_then(|age| time::Duration::try_from(age).ok())
        .and_then(|age| at.checked_add(age));
    match (by_age, expires_at) {
        (Some(a), Some(e)) => Some(a.min(e)),
        (a, e) => a.or(e),
    }
}

/// Is a consent granted, not withdrawn and not lapsed at `now`? The reason
/// to withhold if not.
pub fn consent_current(
    policies: &Policies,
    purpose: &str,
    status: ConsentStatus,
    now: OffsetDateTime,
) -> Result<(), WithheldReason> {
    match status {
        ConsentStatus::None => Err(WithheldReason::ConsentRequired),
        ConsentStatus::Withdrawn => Err(WithheldReason::ConsentWithdrawn),
        ConsentStatus::Granted { at, expires_at } => {
            let max_age = policies.purpose(purpose).and_then(|(_, p)| p.max_age);
            let lapsed_by_age = max_age.is_some_and(|age| at + age <= now);
            let lapsed_by_expiry = expires_at.is_some_and(|e| e <= now);
            if lapsed_by_age || lapsed_by_expiry {
                Err(WithheldReason::ConsentLapsed)
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load_shipped;
    use std::time::Duration;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
    /// A contact point active just now: well within any retention.
    const FRESH: Retained<'static> = Retained::Contact {
        last_activity_at: NOW,
    };

    fn ch(s: &str) -> ChannelId {
        ChannelId::parse(s).expect("valid channel")
    }

    fn grant(p: &Policies, role: Role, purpose: &str, context: Option<&str>) -> PurposeGrant {
        let c = context.map(ch);
        authorise_purpose(
            p,
            role,
            &[Purpose::parse(purpose).unwrap()],
            purpose,
            c.as_ref(),
        )
        .expect("granted")
    }

    struct Fixed(ConsentStatus);
    impl ConsentFacts for Fixed {
        fn status(&self, purpose: &str, _: &ChannelId) -> ConsentStatus {
            if purpose == "cross_channel" {
                self.0
            } else {
                ConsentStatus::None
            }
        }
    }

    fn permitted(d: &ChannelDecision) -> bool {
        matches!(d, ChannelDecision::Permit(_))
    }

    #[test]
    fn an_agent_reads_its_own_channel_for_support() {
        let p = load_shipped().expect("policies");
        let g = grant(&p, Role::Agent, "support", Some("phone"));
        assert!(permitted(&decide_channel(
            &p,
            &g,
            &ch("phone"),
            &NoConsents,
            FRESH,
            false,
            NOW
        )));
    }

    #[test]
    fn an_agent_without_consent_sees_no_other_channel() {
        let p = load_shipped().expect("policies");
        let g = grant(&p, Role::Agent, "support", Some("phone"));
        for other in [
            "email",
            "sms",
            "chat",
            "whatsapp",
            "messenger",
            "instagram",
            "postal",
        ] {
            let d = decide_channel(&p, &g, &ch(other), &NoConsents, FRESH, false, NOW);
            assert!(
                matches!(
                    d,
                    ChannelDecision::Withhold(WithheldReason::ConsentRequired)
                ),
                "{other}"
            );
        }
    }

    #[test]
    fn a_back_office_read_without_context_is_integration() {
        let p = load_shipped().expect("policies");
        let g = grant(&p, Role::Service, "support", None);
        let d = decide_channel(&p, &g, &ch("email"), &NoConsents, FRESH, false, NOW);
        assert!(matches!(
            d,
            ChannelDecision::Withhold(WithheldReason::ConsentRequired)
        ));
    }

    #[test]
    fn a_current_cross_channel_consent_lets_another_channel_in() {
        let p = load_shipped().expect("policies");
        let g = grant(&p, Role::Agent, "support", Some("phone"));
        let c = Fixed(ConsentStatus::Granted {
            at: NOW - Duration::from_secs(3600),
            expires_at: None,
        });
        assert!(permitted(&decide_channel(
            &p,
            &g,
            &ch("email"),
            &c,
            FRESH,
            false,
            NOW
        )));
    }

    #[test]
    fn a_withdrawn_consent_withholds_with_its_reason() {
        let p = load_shipped().expect("policies");
        let g = grant(&p, Role::Agent, "support", Some("phone"));
        let d = decide_channel(
            &p,
            &g,
            &ch("email"),
            &Fixed(ConsentStatus::Withdrawn),
            FRESH,
            false,
            NOW,
        );
        assert!(matches!(
            d,
            ChannelDecision::Withhold(WithheldReason::ConsentWithdrawn)
        ));
    }

    #[test]
    fn a_consent_older_than_max_age_has_lapsed() {
        let p = load_shipped().expect("policies");
        let g = grant(&p, Role::Agent, "support", Some("phone"));
        let old = Fixed(ConsentStatus::Granted {
            at: NOW - Duration::from_secs(366 * 86400),
            expires_at: None,
        });
        let d = decide_channel(&p, &g, &ch("email"), &old, FRESH, false, NOW);
        assert!(matches!(
            d,
            ChannelDecision::Withhold(WithheldReason::ConsentLapsed)
        ));
        let expired = Fixed(ConsentStatus::Granted {
            at: NOW - Duration::from_secs(60),
            expires_at: Some(NOW),
        });
        let d = decide_channel(&p, &g, &ch("email"), &expired, FRESH, false, NOW);
        assert!(matches!(
            d,
            ChannelDecision::Withhold(WithheldReason::ConsentLapsed)
        ));
    }

    #[test]
    fn never_is_never_overridden_by_consent() {
        let mut p = load_shipped().expect("policies");
        if let Some(c) = p.channels.get_mut(&ch("email")) {
            c.integration = Integration::Never;
        }
        let g = grant(&p, Role::Agent, "support", Some("phone"));
        let c = Fixed(ConsentStatus::Granted {
            at: NOW,
            expires_at: None,
        });
        let d = decide_channel(&p, &g, &ch("email"), &c, FRESH, false, NOW);
        assert!(matches!(
            d,
            ChannelDecision::Withhold(WithheldReason::IntegrationNever)
        ));
    }

    #[test]
    fn marketing_needs_marketing_consent_even_in_the_same_channel() {
        let p = load_shipped().expect("policies");
        let g = grant(&p, Role::Agent, "marketing", Some("email"));
        let d = decide_channel(&p, &g, &ch("email"), &NoConsents, FRESH, false, NOW);
        assert!(matches!(
            d,
            ChannelDecision::Withhold(WithheldReason::ConsentRequired)
        ));
    }

    #[test]
    fn a_purpose_the_token_does_not_list_is_not_allowed() {
        let p = load_shipped().expect("policies");
        let r = authorise_purpose(
            &p,
            Role::Agent,
            &[Purpose::parse("marketing").unwrap()],
            "support",
            None,
        );
        assert_eq!(r.unwrap_err(), PurposeDenied::NotAllowed);
        let r = authorise_purpose(
            &p,
            Role::Customer,
            &[Purpose::parse("support").unwrap()],
            "support",
            None,
        );
        assert_eq!(r.unwrap_err(), PurposeDenied::NotAllowed);
        let r = authorise_purpose(
            &p,
            Role::Agent,
            &[Purpose::parse("nosuch").unwrap()],
            "nosuch",
            None,
        );
        assert_eq!(r.unwrap_err(), PurposeDenied::Unknown);
    }

    #[test]
    fn values_are_masked_unless_revealed_and_the_mode_decides_last() {
        let mut p = load_shipped().expect("policies");
        let g = grant(&p, Role::Agent, "support", Some("phone"));
        let masked = |p: &Policies, reveal| match decide_channel(
            p,
            &g,
            &ch("phone"),
            &NoConsents,
            FRESH,
            reveal,
            NOW,
        ) {
            ChannelDecision::Permit(permit) => permit.masked(),
            ChannelDecision::Withhold(r) => panic!("withheld: {r:?}"),
        };
        assert!(masked(&p, false));
        assert!(!masked(&p, true));
        if let Some(c) = p.channels.get_mut(&ch("phone")) {
            c.mask = MaskMode::Always;
        }
        assert!(masked(&p, true));
    }

    #[test]
    fn data_past_its_retention_is_gone_for_a_reader_who_may_see_it() {
        let p = load_shipped().expect("policies");
        let g = grant(&p, Role::Agent, "support", Some("phone"));
        let phone = ch("phone");
        // phone contact_retention is 730d after the last activity
        let just_inside = Retained::Contact {
            last_activity_at: NOW - Duration::from_secs(729 * 86400),
        };
        let at_deadline = Retained::Contact {
            last_activity_at: NOW - Duration::from_secs(730 * 86400),
        };
        assert!(permitted(&decide_channel(
            &p,
            &g,
            &phone,
            &NoConsents,
            just_inside,
            false,
            NOW
        )));
        assert!(matches!(
            decide_channel(&p, &g, &phone, &NoConsents, at_deadline, false, NOW),
            ChannelDecision::Withhold(WithheldReason::RetentionExpired)
        ));
        // interactions follow their kind: a transcript lasts 30d, a complaint 730d
        let month_old = |kind| Retained::Interaction {
            kind,
            since: NOW - Duration::from_secs(31 * 86400),
        };
        assert!(matches!(
            decide_channel(
                &p,
                &g,
                &phone,
                &NoConsents,
                month_old("transcript"),
                false,
                NOW
            ),
            ChannelDecision::Withhold(WithheldReason::RetentionExpired)
        ));
        assert!(permitted(&decide_channel(
            &p,
            &g,
            &phone,
            &NoConsents,
            month_old("complaint"),
            false,
            NOW
        )));
        // a kind the policy does not know has no lawful place: gone
        assert!(retention_expired(&p, &phone, month_old("gossip"), NOW));
    }

    #[test]
    fn a_reader_who_may_not_see_a_channel_learns_the_policy_reason_not_the_age() {
        let p = load_shipped().expect("policies");
        let g = grant(&p, Role::Agent, "support", Some("phone"));
        let ancient = Retained::Contact {
            last_activity_at: NOW - Duration::from_secs(3000 * 86400),
        };
        assert!(matches!(
            decide_channel(&p, &g, &ch("email"), &NoConsents, ancient, false, NOW),
            ChannelDecision::Withhold(WithheldReason::ConsentRequired)
        ));
    }

    #[test]
    fn subject_access_is_for_the_customer_and_dsr_staff_only() {
        let p = load_shipped().expect("policies");
        assert!(authorise_subject_access(&p, Role::Customer, &[]).is_ok());
        let staff =
            authorise_subject_access(&p, Role::Compliance, &[Purpose::parse("dsr").unwrap()])
                .expect("compliance with dsr");
        let permit = staff.permit(&ch("email"));
        assert!(!permit.masked());
        assert_eq!(permit.reason(), PermitReason::DataSubject);
        for (role, purposes) in [
            (Role::Compliance, vec![]),
            (Role::Agent, vec![Purpose::parse("dsr").unwrap()]),
            (Role::Service, vec![Purpose::parse("dsr").unwrap()]),
            (Role::Admin, vec![Purpose::parse("dsr").unwrap()]),
        ] {
            assert_eq!(
                authorise_subject_access(&p, role, &purposes).unwrap_err(),
                PurposeDenied::NotAllowed,
                "{role:?}"
            );
        }
    }

    #[test]
    fn a_consent_is_deleted_when_it_lapses() {
        let p = load_shipped().expect("policies");
        let year = NOW + Duration::from_secs(365 * 86400);
        assert_eq!(consent_deadline(&p, "cross_channel", NOW, None), Some(year));
        let soon = NOW + Duration::from_secs(60);
        assert_eq!(
            consent_deadline(&p, "marketing", NOW, Some(soon)),
            Some(soon)
        );
        assert_eq!(consent_deadline(&p, "support", NOW, None), None);
    }

    #[test]
    fn every_permit_says_why() {
        let mut p = load_shipped().expect("policies");
        let g = grant(&p, Role::Agent, "support", Some("phone"));
        let reason = |p: &Policies, target: &str, c: &dyn Fn() -> Fixed| match decide_channel(
            p,
            &g,
            &ch(target),
            &c(),
            FRESH,
            false,
            NOW,
        ) {
            ChannelDecision::Permit(permit) => Some(permit.reason()),
            ChannelDecision::Withhold(_) => None,
        };
        let granted = || {
            Fixed(ConsentStatus::Granted {
                at: NOW,
                expires_at: None,
            })
        };
        assert_eq!(
            reason(&p, "phone", &granted),
            Some(PermitReason::SameChannel)
        );
        assert_eq!(
            reason(&p, "email", &granted),
            Some(PermitReason::ConsentGranted)
        );
        if let Some(c) = p.channels.get_mut(&ch("email")) {
            c.integration = Integration::Always;
        }
        let none = || Fixed(ConsentStatus::None);
        assert_eq!(
            reason(&p, "email", &none),
            Some(PermitReason::IntegrationAlways)
        );
    }

    mod properties {
        use super::*;
        use crate::policy::{ConsentEvent, ConsentLedger, Integration};
        use proptest::prelude::*;

        const CHANNELS: [&str; 8] = [
            "email",
            "phone",
            "sms",
            "chat",
            "whatsapp",
            "messenger",
            "instagram",
            "postal",
        ];
        const PURPOSES: [&str; 3] = ["support", "cross_channel", "marketing"];

        fn integration() -> impl Strategy<Value = Integration> {
            prop_oneof![
                Just(Integration::Always),
                Just(Integration::Consent),
                Just(Integration::Never)
            ]
        }

        /// Random ledger events: any purpose, any channel or "*", grant or
        /// withdraw, at any age up to two years, maybe with an expiry.
        fn events() -> impl Strategy<Value = Vec<ConsentEvent>> {
            prop::collection::vec(
                (
                    0..3usize,
                    0..9usize,
                    any::<bool>(),
                    0i64..(2 * 365 * 86400),
                    prop::option::of(-86400i64..86400),
                ),
                0..12,
            )
            .prop_map(|raw| {
                let mut evs: Vec<ConsentEvent> = raw
                    .into_iter()
                    .map(|(p, c, grant, age, exp)| ConsentEvent {
                        purpose: ["support", "cross_channel", "marketing"][p].to_owned(),
                        channel: if c == 8 {
                            "*".to_owned()
                        } else {
                            CHANNELS[c].to_owned()
                        },
                        grant,
                        at: NOW - time::Duration::seconds(age),
                        expires_at: exp.map(|e| NOW + time::Duration::seconds(e)),
                    })
                    .collect();
                evs.sort_by_key(|e| e.at);
                evs
            })
        }

        /// Whether the ledger holds a current consent for `purpose` on `channel`.
        fn current(p: &Policies, l: &ConsentLedger, purpose: &str, channel: &ChannelId) -> bool {
            consent_current(p, purpose, l.status(purpose, channel), NOW).is_ok()
        }

        proptest! {
            #[test]
            fn no_channel_leaks_into_another_context_without_consent(
                modes in prop::collection::vec(integration(), 8),
                evs in events(),
                target in 0..8usize,
                context in prop::option::of(0..8usize),
                purpose in 0..3usize,
                reveal in any::<bool>(),
                idle_days in 0i64..1000,
            ) {
                let mut p = load_shipped().unwrap();
                for (name, mode) in CHANNELS.iter().zip(&modes) {
                    if let Some(c) = p.channels.get_mut(&ch(name)) {
                        c.integration = *mode;
                    }
                }
                let ledger = ConsentLedger::from_events(evs);
                let x = ch(CHANNELS[target]);
                let y = context.map(|c| ch(CHANNELS[c]));
                let purpose = PURPOSES[purpose];
                let g = authorise_purpose(&p, Role::Agent, &[Purpose::parse(purpose).unwrap()], purpose, y.as_ref()).unwrap();
                let item = Retained::Contact { last_activity_at: NOW - time::Duration::days(idle_days) };
                let permitted = matches!(decide_channel(&p, &g, &x, &ledger, item, reveal, NOW), ChannelDecision::Permit(_));
                let mode = modes[target];
                if permitted {
                    // nothing past its retention is ever released
                    prop_assert!(!retention_expired(&p, &x, item, NOW));
                    // marketing always needs a current marketing consent on X
                    if purpose == "marketing" {
                        prop_assert!(current(&p, &ledger, "marketing", &x));
                    }
                    // X in a context Y != X (or none) is integration: never is
                    // never overridden, and consent mode needs a current
                    // cross_channel consent on X (or "*")
                    let same = y.as_ref() == Some(&x) && purpose == "support";
                    if !same {
                        prop_assert_ne!(mode, Integration::Never);
                        prop_assert!(mode == Integration::Always || current(&p, &ledger, "cross_channel", &x));
                    }
                } else if y.as_ref() == Some(&x) && purpose == "support" && !retention_expired(&p, &x, item, NOW) {
                    prop_assert!(false, "an agent must see its own channel for support");
                }
            }
        }
    }
}
