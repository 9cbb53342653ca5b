//! Who may ask for what: the role × operation × purpose matrix, as data, and
//! the one call that checks it.
//!
//! Every operation of the vault appears once in [`MATRIX`] with the roles
//! that may call it and how its purpose is settled. Which roles may act for
//! which purpose is policy data too (`purposes.toml`, [`super::Policies`]);
//! [`authorise`] checks both, in that order, so a caller learns it lacks the
//! role before anything about purposes.

use uuid::Uuid;

use super::{
    authorise_purpose, authorise_subject_access, Policies, PurposeDenied, PurposeGrant,
    SubjectAccess,
};
use crate::domain::{Actor, Role};

/// Every operation a caller can ask of the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    CreateCustomer,
    ReadCustomer,
    UpdateCustomer,
    AddContact,
    RemoveContact,
    Lookup,
    RecordConsent,
    ListConsents,
    RecordOwnConsent,
    ListOwnConsents,
    ReadOwnProfile,
    ExportOwnData,
    EraseOwnData,
    /// The customer's own access log (the privacy page's "who has seen my data").
    ReadOwnAccessLog,
    ExportCustomer,
    EraseCustomer,
    /// What the vault holds on a customer, as metadata only (no value is
    /// opened): the console's masked view of a data subject request.
    InventoryCustomer,
    CreateInteraction,
    ListInteractions,
    ResolveInteraction,
    ListOverdueInteractions,
    ReadAudit,
    VerifyAudit,
    CreateDsrRequest,
    ListDsrRequests,
    ReadDsrRequest,
    UpdateDsrRequest,
    ExportDsrRequests,
    ListOwnDsrRequests,
    /// Register an integration client (its secret is shown once).
    CreateClient,
    /// List integration clients or read one (never a secret).
    ReadClients,
    RevokeClient,
    RotateClientSecret,
    /// The keys and policies overview: key versions and ages, the retention
    /// schedule and last sweep, how channels integrate (never key material,
    /// never customer data).
    ReadKeysOverview,
}

/// How an operation's purpose is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PurposeRule {
    /// The operation reads no customer data for a purpose (writes, audit review).
    None,
    /// The request names a purpose: it must exist, the role must be among
    /// its roles, and the token must list it.
    Named,
    /// A data subject request (purpose `dsr`): the role must be among its
    /// roles; staff tokens must list `dsr`.
    Subject,
    /// The customer's own record: the caller is a customer token, which
    /// speaks for exactly one customer.
    Own,
}

use Operation::*;
use Role::{Admin, Agent, Compliance, Customer, Service};

/// The matrix: each operation, the roles that may call it, its purpose rule.
pub const MATRIX: &[(Operation, &[Role], PurposeRule)] = &[
    (CreateCustomer, &[Agent, Service], PurposeRule::None),
    (ReadCustomer, &[Agent, Service], PurposeRule::Named),
    (UpdateCustomer, &[Agent, Service], PurposeRule::None),
    (AddContact, &[Agent, Service], PurposeRule::None),
    (RemoveContact, &[Agent, Service], PurposeRule::None),
    (Lookup, &[Agent, Service, Compliance], PurposeRule::Named),
    (RecordConsent, &[Agent, Compliance], PurposeRule::None),
    (ListConsents, &[Agent, Compliance], PurposeRule::None),
    (RecordOwnConsent, &[Customer], PurposeRule::Own),
    (ListOwnConsents, &[Customer], PurposeRule::Own),
    (ReadOwnProfile, &[Customer], PurposeRule::Subject),
    (ExportOwnData, &[Customer], PurposeRule::Subject),
    (EraseOwnData, &[Customer], PurposeRule::Subject),
    (ReadOwnAccessLog, &[Customer], PurposeRule::Own),
    (ExportCustomer, &[Compliance], PurposeRule::Subject),
    (EraseCustomer, &[Compliance], PurposeRule::Subject),
    // Metadata only, for purpose `dsr`: it opens nothing, so it needs no
    // subject access.
    (InventoryCustomer, &[Compliance], PurposeRule::Named),
    (CreateInteraction, &[Agent], PurposeRule::None),
    (ListInteractions, &[Agent], PurposeRule::Named),
    (ResolveInteraction, &[Agent], PurposeRule::None),
    (
        ListOverdueInteractions,
        &[Agent, Service],
        PurposeRule::Named,
    ),
    (ReadAudit, &[Compliance], PurposeRule::None),
    (VerifyAudit, &[Compliance], PurposeRule::None),
    // The register of data subject requests: compliance staff for purpose
    // `dsr` (the operation names it), the customer for their own requests.
    (CreateDsrRequest, &[Compliance], PurposeRule::Named),
    (ListDsrRequests, &[Compliance], PurposeRule::Named),
    (ReadDsrRequest, &[Compliance], PurposeRule::Named),
    (UpdateDsrRequest, &[Compliance], PurposeRule::Named),
    (ExportDsrRequests, &[Compliance], PurposeRule::Named),
    (ListOwnDsrRequests, &[Customer], PurposeRule::Own),
    (CreateClient, &[Admin], PurposeRule::None),
    (ReadClients, &[Admin], PurposeRule::None),
    (RevokeClient, &[Admin], PurposeRule::None),
    (RotateClientSecret, &[Admin], PurposeRule::None),
    (ReadKeysOverview, &[Admin], PurposeRule::None),
];

impl Operation {
    /// This operation's row of the matrix.
    pub fn rule(self) -> (&'static [Role], PurposeRule) {
        MATRIX
            .iter()
            .find(|(op, _, _)| *op == self)
            .map(|(_, roles, rule)| (*roles, *rule))
            .unwrap_or((&[], PurposeRule::None))
    }
}

/// What the matrix granted.
#[derive(Debug, Clone)]
pub enum Access {
    /// The role may call the operation; no purpose is involved.
    Role,
    /// The named purpose is granted.
    Purpose(PurposeGrant),
    /// A data subject request is granted (`dsr`), for the customer the
    /// operation names (staff) or the caller's own record (customer).
    Subject(SubjectAccess),
    /// The caller is the customer with this id, acting on their own record.
    Own(Uuid),
}

impl Access {
    /// The purpose grant behind this access, if any.
    pub fn grant(&self) -> Option<&PurposeGrant> {
        match self {
            Access::Purpose(g) => Some(g),
            Access::Subject(s) => Some(s.grant()),
            Access::Role | Access::Own(_) => None,
        }
    }
}

/// Why the matrix refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// The role may not call this operation: 403 `forbidden`.
    Role,
    /// The operation needs a purpose and the request named none: 400.
    PurposeMissing,
    /// The purpose is unknown or not allowed (see [`PurposeDenied`]).
    Purpose(PurposeDenied),
}

/// The one authorisation check: may `actor` call `op`, for `purpose` (the
/// purpose the request names, for [`PurposeRule::Named`] operations)?
pub fn authorise(
    policies: &Policies,
    actor: &Actor,
    op: Operation,
    purpose: Option<&str>,
) -> Result<Access, Denied> {
    let (roles, rule) = op.rule();
    if !roles.contains(&actor.role) {
        return Err(Denied::Role);
    }
    match rule {
        PurposeRule::None => Ok(Access::Role),
        PurposeRule::Named => {
            let purpose = purpose.ok_or(Denied::PurposeMissing)?;
            authorise_purpose(
                policies,
                actor.role,
                &actor.purposes,
                purpose,
                actor.channel.as_ref(),
            )
            .map(Access::Purpose)
            .map_err(Denied::Purpose)
        }
        PurposeRule::Subject => authorise_subject_access(policies, actor.role, &actor.purposes)
            .map(Access::Subject)
            .map_err(Denied::Purpose),
        PurposeRule::Own => actor.customer.map(Access::Own).ok_or(Denied::Role),
    }
}

#[cfg(test)]
mod tests;
