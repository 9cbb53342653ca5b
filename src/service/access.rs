//! The authorisation step of every operation: the matrix of
//! [`crate::policy::access`] checked once, its refusal turned into the
//! operation's error, and the purpose asked for recorded in the audit entry
//! (even when refused: what was asked is part of the record).

use super::{audited::AuditScope, Error, Services};
use crate::domain::ChannelId;
use crate::policy::{authorise_channel_write, ChannelWrite};
use crate::{
    domain::{Actor, Purpose},
    policy::{authorise, Access, Denied, Operation, PurposeDenied, PurposeRule, DSR_PURPOSE},
};

impl Services {
    /// May `actor` call `op` (for `purpose`, when the operation reads for a
    /// purpose the request names)? Records the purpose in `scope`.
    pub fn authorise(
        &self,
        actor: &Actor,
        op: Operation,
        purpose: Option<&str>,
        scope: &mut AuditScope,
    ) -> Result<Access, Error> {
        // A well-formed name only: arbitrary text does not go into the log.
        if let Some(p) = purpose.and_then(|p| Purpose::parse(p).ok()) {
            scope.purpose = Some(p.to_string());
        }
        let access = authorise(&self.policies, actor, op, purpose).map_err(|d| {
            // A data subject request is for purpose `dsr`, granted or not.
            if matches!(d, Denied::Purpose(_)) && op.rule().1 == PurposeRule::Subject {
                scope.purpose = Some(DSR_PURPOSE.to_owned());
            }
            refusal(d, purpose)
        })?;
        if let Some(g) = access.grant() {
            scope.purpose = Some(g.purpose().to_string());
        }
        Ok(access)
    }

    /// [`Services::authorise`] for an operation that writes no audit entry:
    /// reading and verifying the audit log itself, whose entries hold no
    /// contact data (logging each look at the log would only grow it), and
    /// the keys and policies overview, which reads configuration and key
    /// metadata, never a key or customer data. Such operations read for no
    /// purpose.
    pub fn authorise_unlogged(&self, actor: &Actor, op: Operation) -> Result<Access, Error> {
        authorise(&self.policies, actor, op, None).map_err(|d| refusal(d, None))
    }

    /// [`Services::authorise_unlogged`] for a look at the register of data
    /// subject requests, which the operation reads for `purpose` (`dsr`):
    /// its rows hold ids, kinds, dates and states, no contact data.
    pub fn authorise_unlogged_for(
        &self,
        actor: &Actor,
        op: Operation,
        purpose: &str,
    ) -> Result<Access, Error> {
        authorise(&self.policies, actor, op, Some(purpose)).map_err(|d| refusal(d, Some(purpose)))
    }
}

/// The error a refusal of the matrix answers with.
fn refusal(d: Denied, purpose: Option<&str>) -> Error {
    match d {
        Denied::Role => Error::Forbidden,
        Denied::PurposeMissing => Error::InvalidRequest("purpose is required".into()),
        Denied::Purpose(PurposeDenied::Unknown) => {
            Error::UnknownPurpose(purpose.unwrap_or(DSR_PURPOSE).chars().take(32).collect())
        }
        Denied::Purpose(PurposeDenied::NotAllowed) => Error::PurposeNotAllowed,
    }
}

/// Refuses (403, audited as deny with the rule) a write the policy does not
/// allow on `channel`: an agent writes on its own channel only.
pub fn require_channel_write(
    actor: &Actor,
    channel: &ChannelId,
    write: ChannelWrite,
    scope: &mut AuditScope,
) -> Result<(), Error> {
    authorise_channel_write(actor.role, actor.channel.as_ref(), channel, write).map_err(|d| {
        scope.detail("rule", d.as_str());
        Error::WriteRefused(d.explain())
    })
}
