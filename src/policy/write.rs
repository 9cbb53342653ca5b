//! Who may write what, on which channel (README "Consent", SECURITY.md "Authorisation"), as pure functions.
//!
//! Reading is decided per channel by the integration rule; writing needs a
//! rule of its own, because a write on a channel is also a way to learn about
//! it and to change what it holds: deleting a contact point, resolving an
//! interaction whose body the writer cannot see, or recording an interaction
//! (which restarts the channel's contact retention). The rule:
//!
//! - an agent serves the customer on one channel (its token's `channel`
//!   claim) and writes on that channel only;
//! - an agent without a channel claim has no channel it serves, so it writes
//!   on none (the careful reading: a back-office tool that needs to write
//!   uses a role made for it);
//! - contact points are also kept by integrations (`service`), on any channel;
//! - interactions are recorded and resolved by agents only;
//! - consent is recorded by the customer, or by the staff roles the
//!   purpose's policy names (`consent_recorders`); an agent records only
//!   what the customer said on its own channel, and its grant waits for the
//!   customer's confirmation unless the purpose allows immediate attestation.

use super::model::PurposePolicy;
use crate::domain::{ChannelId, Role};

/// A write on one channel's data of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelWrite {
    ContactAdd,
    ContactRemove,
    InteractionCreate,
    InteractionResolve,
}

/// Why a write was refused (403; the code goes to the audit entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteDenied {
    /// The role does not do this kind of write at all.
    Role,
    /// An agent token without a `channel` claim: it serves no channel.
    NoChannelContext,
    /// An agent writing on a channel other than the one it serves.
    OtherChannel,
    /// The purpose's policy does not let this role record consent.
    NotAConsentRecorder,
}

impl WriteDenied {
    /// The reason code recorded in the audit entry.
    pub fn as_str(self) -> &'static str {
        match self {
            WriteDenied::Role => "role_not_allowed",
            WriteDenied::NoChannelContext => "no_channel_context",
            WriteDenied::OtherChannel => "other_channel",
            WriteDenied::NotAConsentRecorder => "not_a_consent_recorder",
        }
    }

    /// What the caller is told (no data, only the rule).
    pub fn explain(self) -> &'static str {
        match self {
            WriteDenied::Role => "this role may not make this change",
            WriteDenied::NoChannelContext => {
                "an agent token without a channel claim writes on no channel"
            }
            WriteDenied::OtherChannel => "an agent writes only on the channel it serves",
            WriteDenied::NotAConsentRecorder => {
                "the purpose's policy does not let this role record consent"
            }
        }
    }
}

/// An agent may write on `target` only if it serves that channel.
fn own_channel(context: Option<&ChannelId>, target: &ChannelId) -> Result<(), WriteDenied> {
    match context {
        None => Err(WriteDenied::NoChannelContext),
        Some(c) if c == target => Ok(()),
        Some(_) => Err(WriteDenied::OtherChannel),
    }
}

/// May `role`, serving `context` (an agent's channel claim), make `write` on
/// channel `target`?
pub fn authorise_channel_write(
    role: Role,
    context: Option<&ChannelId>,
    target: &ChannelId,
    write: ChannelWrite,
) -> Result<(), WriteDenied> {
    match (write, role) {
        (_, Role::Agent) => own_channel(context, target),
        (ChannelWrite::ContactAdd | ChannelWrite::ContactRemove, Role::Service) => Ok(()),
        _ => Err(WriteDenied::Role),
    }
}

/// How a permitted consent event is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentRecording {
    /// A grant that opens nothing until the customer confirms it.
    pub pending_confirmation: bool,
    /// Flagged for compliance review (every agent-recorded grant).
    pub review: bool,
}

/// May `role` (serving `context`) record a grant (`grant`) or withdrawal of
/// consent for a purpose with this policy, and how is it stored?
///
/// The customer always may, and it takes effect at once. Staff must be among
/// the purpose's `consent_recorders`; an agent also needs a channel claim (the
/// event's source channel). An agent's grant is pending until the customer
/// confirms it, unless the purpose allows immediate agent attestation, and is
/// flagged for review either way. A withdrawal takes effect at once.
pub fn authorise_consent_record(
    purpose: &PurposePolicy,
    role: Role,
    context: Option<&ChannelId>,
    grant: bool,
) -> Result<ConsentRecording, WriteDenied> {
    let at_once = ConsentRecording {
        pending_confirmation: false,
        review: false,
    };
    if role == Role::Customer {
        return Ok(at_once);
    }
    if !purpose.consent_recorders.contains(&role) {
        return Err(WriteDenied::NotAConsentRecorder);
    }
    if role != Role::Agent {
        return Ok(at_once);
    }
    if context.is_none() {
        return Err(WriteDenied::NoChannelContext);
    }
    if !grant {
        return Ok(at_once);
    }
    Ok(ConsentRecording {
        pending_confirmation: !purpose.immediate_agent_attestation,
        review: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{load_shipped, LawfulBasis};
    use ChannelWrite::*;
    use WriteDenied::{NoChannelContext, NotAConsentRecorder, OtherChannel};

    /// (role, context, target, write, expected)
    type Row<'a> = (
        Role,
        Option<&'a ChannelId>,
        &'a ChannelId,
        ChannelWrite,
        Result<(), WriteDenied>,
    );

    fn ch(s: &str) -> ChannelId {
        ChannelId::parse(s).expect("channel")
    }

    #[test]
    fn channel_writes_follow_the_table() {
        let phone = ch("phone");
        let email = ch("email");
        // (role, context, target, write, expected)
        let table: Vec<Row<'_>> = vec![
            (Role::Agent, Some(&phone), &phone, ContactAdd, Ok(())),
            (Role::Agent, Some(&phone), &phone, ContactRemove, Ok(())),
            (Role::Agent, Some(&phone), &phone, InteractionCreate, Ok(())),
            (
                Role::Agent,
                Some(&phone),
                &phone,
                InteractionResolve,
                Ok(()),
            ),
            (
                Role::Agent,
                Some(&phone),
                &email,
                ContactAdd,
                Err(OtherChannel),
            ),
            (
                Role::Agent,
                Some(&phone),
                &email,
                ContactRemove,
                Err(OtherChannel),
            ),
            (
                Role::Agent,
                Some(&phone),
                &email,
                InteractionCreate,
                Err(OtherChannel),
            ),
            (
                Role::Agent,
                Some(&phone),
                &email,
                InteractionResolve,
                Err(OtherChannel),
            ),
            (Role::Agent, None, &phone, ContactAdd, Err(NoChannelContext)),
            (
                Role::Agent,
                None,
                &phone,
                ContactRemove,
                Err(NoChannelContext),
            ),
            (
                Role::Agent,
                None,
                &phone,
                InteractionCreate,
                Err(NoChannelContext),
            ),
            (
                Role::Agent,
                None,
                &phone,
                InteractionResolve,
                Err(NoChannelContext),
            ),
            (Role::Service, None, &email, ContactAdd, Ok(())),
            (Role::Service, None, &email, ContactRemove, Ok(())),
            (
                Role::Service,
                None,
                &email,
                InteractionCreate,
                Err(WriteDenied::Role),
            ),
            (
                Role::Service,
                None,
                &email,
                InteractionResolve,
                Err(WriteDenied::Role),
            ),
            (
                Role::Compliance,
                None,
                &email,
                ContactAdd,
                Err(WriteDenied::Role),
            ),
            (
                Role::Compliance,
                None,
                &email,
                ContactRemove,
                Err(WriteDenied::Role),
            ),
            (
                Role::Customer,
                None,
                &email,
                ContactAdd,
                Err(WriteDenied::Role),
            ),
            (
                Role::Customer,
                None,
                &email,
                InteractionCreate,
                Err(WriteDenied::Role),
            ),
            (
                Role::Admin,
                None,
                &email,
                ContactRemove,
                Err(WriteDenied::Role),
            ),
            (
                Role::Admin,
                None,
                &email,
                InteractionResolve,
                Err(WriteDenied::Role),
            ),
        ];
        for (role, context, target, write, expected) in table {
            assert_eq!(
                authorise_channel_write(role, context, target, write),
                expected,
                "{role:?} serving {context:?} doing {write:?} on {target:?}"
            );
        }
    }

    #[test]
    fn consent_recording_follows_the_table() {
        let p = load_shipped().expect("policies");
        let shipped = p.purpose("cross_channel").expect("purpose").1.clone();
        let mut immediate = shipped.clone();
        immediate.immediate_agent_attestation = true;
        let mut customer_only = shipped.clone();
        customer_only.consent_recorders.clear();
        let phone = ch("phone");
        let pending = Ok(ConsentRecording {
            pending_confirmation: true,
            review: true,
        });
        let attested = Ok(ConsentRecording {
            pending_confirmation: false,
            review: true,
        });
        let at_once = Ok(ConsentRecording {
            pending_confirmation: false,
            review: false,
        });
        // (policy, role, context, grant, expected)
        let table = [
            (&shipped, Role::Customer, None, true, at_once),
            (&shipped, Role::Customer, None, false, at_once),
            (&customer_only, Role::Customer, None, true, at_once),
            (&shipped, Role::Agent, Some(&phone), true, pending),
            (&shipped, Role::Agent, Some(&phone), false, at_once),
            (&immediate, Role::Agent, Some(&phone), true, attested),
            (&shipped, Role::Agent, None, true, Err(NoChannelContext)),
            (&shipped, Role::Agent, None, false, Err(NoChannelContext)),
            (
                &customer_only,
                Role::Agent,
                Some(&phone),
                true,
                Err(NotAConsentRecorder),
            ),
            (
                &customer_only,
                Role::Agent,
                Some(&phone),
                false,
                Err(NotAConsentRecorder),
            ),
            (&shipped, Role::Compliance, None, true, at_once),
            (&shipped, Role::Compliance, None, false, at_once),
            (
                &customer_only,
                Role::Compliance,
                None,
                true,
                Err(NotAConsentRecorder),
            ),
            (
                &shipped,
                Role::Service,
                None,
                true,
                Err(NotAConsentRecorder),
            ),
            (&shipped, Role::Admin, None, false, Err(NotAConsentRecorder)),
        ];
        for (policy, role, context, grant, expected) in table {
            assert_eq!(policy.lawful_basis, LawfulBasis::Consent);
            assert_eq!(
                authorise_consent_record(policy, role, context, grant),
                expected,
                "{role:?} serving {context:?}, grant {grant}, recorders {:?}, immediate {}",
                policy.consent_recorders,
                policy.immediate_agent_attestation
            );
        }
    }
}
