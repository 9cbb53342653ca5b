//! The audit log: one entry per request that touches customer data or keys,
//! allowed or denied, hash-chained so that edits, deletions and reordering
//! are detectable.
//!
//! Fail-closed: [`Auditor::append`] returns only when the entry is committed
//! (SQLite `synchronous=FULL`, PostgreSQL commit), or an error within its
//! deadline; the HTTP layer releases data only after it returned `Ok`.
//! Entries never hold contact values, bodies, display names, tokens or keys.
//!
//! This module holds the audit concepts: what an entry says (here), how
//! entries are appended ([`append`]) and chained ([`chain`]), checkpoints
//! ([`checkpoint`]), exported files ([`export`]) and verification
//! ([`verify`], [`watch`]); for a vault split over several databases, the
//! signed ties between the shards' chains ([`tie`], [`shards`]). It runs no SQL: the rows are stored and read by
//! [`crate::store::audit`].

mod append;
mod chain;
pub mod checkpoint;
pub mod checkpoint_files;
pub mod export;
pub mod loss;
pub mod shards;
pub mod tie;
pub mod verify;
pub mod watch;

pub use append::{Auditor, Claim, Committed, Drained};
pub use chain::{entry_hash, GENESIS_HASH};
pub use checkpoint::Checkpointer;

use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

pub use crate::store::audit::Effect;
use crate::store::StoreError;

/// What was done (SECURITY.md "Audit" lists every action).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    #[serde(rename = "customer.create")]
    CustomerCreate,
    #[serde(rename = "customer.read")]
    CustomerRead,
    #[serde(rename = "customer.update")]
    CustomerUpdate,
    #[serde(rename = "customer.erase")]
    CustomerErase,
    #[serde(rename = "contact.add")]
    ContactAdd,
    #[serde(rename = "contact.remove")]
    ContactRemove,
    #[serde(rename = "contact.reveal")]
    ContactReveal,
    #[serde(rename = "lookup")]
    Lookup,
    #[serde(rename = "consent.grant")]
    ConsentGrant,
    #[serde(rename = "consent.withdraw")]
    ConsentWithdraw,
    #[serde(rename = "interaction.create")]
    InteractionCreate,
    #[serde(rename = "interaction.read")]
    InteractionRead,
    /// Marking an interaction resolved (not in the original list of actions, which
    /// predates resolving; see docs/decisions.md).
    #[serde(rename = "interaction.resolve")]
    InteractionResolve,
    #[serde(rename = "export")]
    Export,
    /// The console's masked view of what the vault holds on a customer:
    /// metadata only, no value opened (not in the original list of
    /// actions; see docs/decisions.md).
    #[serde(rename = "customer.inventory")]
    CustomerInventory,
    /// A kept answer given again for a repeated `Idempotency-Key` (not in
    /// the original list of actions; see docs/decisions.md).
    #[serde(rename = "request.replay")]
    RequestReplay,
    #[serde(rename = "retention.purge")]
    RetentionPurge,
    #[serde(rename = "key.rotate")]
    KeyRotate,
    // The ways in (DESIGN.md §12): `auth.*`, `client.*`, `user.*`.
    /// A token issued at `/oauth/token` (allow), or a refused attempt (deny, with the reason).
    #[serde(rename = "auth.token")]
    AuthToken,
    /// A token revoked at `/oauth/revoke` (RFC 7009).
    #[serde(rename = "auth.revoke")]
    AuthRevoke,
    /// A customer asked for a sign-in code (the customer only when the value matched).
    #[serde(rename = "auth.sign_in_start")]
    AuthSignInStart,
    /// A sign-in by a customer's code or a staff account's password and TOTP, allowed or refused.
    #[serde(rename = "auth.sign_in")]
    AuthSignIn,
    /// A staff account locked after repeated failures.
    #[serde(rename = "auth.lockout")]
    AuthLockout,
    #[serde(rename = "client.create")]
    ClientCreate,
    /// An admin listed or read integration clients (never their secrets).
    #[serde(rename = "client.read")]
    ClientRead,
    #[serde(rename = "client.revoke")]
    ClientRevoke,
    #[serde(rename = "client.rotate_secret")]
    ClientRotateSecret,
    #[serde(rename = "user.create")]
    UserCreate,
    /// Staff accounts listed (never a password or TOTP secret).
    #[serde(rename = "user.read")]
    UserRead,
    #[serde(rename = "user.disable")]
    UserDisable,
    #[serde(rename = "user.reset_password")]
    UserResetPassword,
    #[serde(rename = "user.reset_totp")]
    UserResetTotp,
    // The register of data subject requests (issue 16): ids, kinds, states
    // and the case reference, never a reason's or note's text.
    /// A request entered in the register.
    #[serde(rename = "dsr.request.create")]
    DsrRequestCreate,
    /// A request extended or moved to another state.
    #[serde(rename = "dsr.request.update")]
    DsrRequestUpdate,
    /// The register downloaded as CSV.
    #[serde(rename = "dsr.request.export")]
    DsrRequestExport,
    /// A filtered view of the audit log downloaded as CSV (the filters and
    /// the upper bound in the detail; the manifest download is not logged).
    #[serde(rename = "audit.export")]
    AuditExport,
}

impl Action {
    /// Every action, in the order SECURITY.md lists them; the console's
    /// audit trail offers these in its action filter. A new action adds its
    /// line here too (a unit test checks each is listed once).
    pub const ALL: [Action; 36] = [
        Action::CustomerCreate,
        Action::CustomerRead,
        Action::CustomerInventory,
        Action::CustomerUpdate,
        Action::CustomerErase,
        Action::ContactAdd,
        Action::ContactRemove,
        Action::ContactReveal,
        Action::Lookup,
        Action::ConsentGrant,
        Action::ConsentWithdraw,
        Action::InteractionCreate,
        Action::InteractionRead,
        Action::InteractionResolve,
        Action::Export,
        Action::RequestReplay,
        Action::RetentionPurge,
        Action::KeyRotate,
        Action::AuthToken,
        Action::AuthRevoke,
        Action::AuthSignInStart,
        Action::AuthSignIn,
        Action::AuthLockout,
        Action::ClientCreate,
        Action::ClientRead,
        Action::ClientRevoke,
        Action::ClientRotateSecret,
        Action::UserCreate,
        Action::UserRead,
        Action::UserDisable,
        Action::UserResetPassword,
        Action::UserResetTotp,
        Action::DsrRequestCreate,
        Action::DsrRequestUpdate,
        Action::DsrRequestExport,
        Action::AuditExport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::CustomerCreate => "customer.create",
            Action::CustomerRead => "customer.read",
            Action::CustomerUpdate => "customer.update",
            Action::CustomerErase => "customer.erase",
            Action::ContactAdd => "contact.add",
            Action::ContactRemove => "contact.remove",
            Action::ContactReveal => "contact.reveal",
            Action::Lookup => "lookup",
            Action::ConsentGrant => "consent.grant",
            Action::ConsentWithdraw => "consent.withdraw",
            Action::InteractionCreate => "interaction.create",
            Action::InteractionRead => "interaction.read",
            Action::InteractionResolve => "interaction.resolve",
            Action::Export => "export",
            Action::CustomerInventory => "customer.inventory",
            Action::RequestReplay => "request.replay",
            Action::RetentionPurge => "retention.purge",
            Action::KeyRotate => "key.rotate",
            Action::AuthToken => "auth.token",
            Action::AuthRevoke => "auth.revoke",
            Action::AuthSignInStart => "auth.sign_in_start",
            Action::AuthSignIn => "auth.sign_in",
            Action::AuthLockout => "auth.lockout",
            Action::ClientCreate => "client.create",
            Action::ClientRead => "client.read",
            Action::ClientRevoke => "client.revoke",
            Action::ClientRotateSecret => "client.rotate_secret",
            Action::UserCreate => "user.create",
            Action::UserRead => "user.read",
            Action::UserDisable => "user.disable",
            Action::UserResetPassword => "user.reset_password",
            Action::UserResetTotp => "user.reset_totp",
            Action::DsrRequestCreate => "dsr.request.create",
            Action::DsrRequestUpdate => "dsr.request.update",
            Action::DsrRequestExport => "dsr.request.export",
            Action::AuditExport => "audit.export",
        }
    }
}

/// Allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// Who acted. `sub` and `role` come from a verified token (or `anonymous`).
#[derive(Debug, Clone)]
pub struct ActorRef {
    pub sub: String,
    pub role: String,
    pub client: Option<String>,
}

/// One entry to append. `detail` carries ids, counts and reason codes only.
#[derive(Debug, Clone)]
pub struct Entry {
    pub actor: ActorRef,
    pub action: Action,
    pub customer_id: Option<Uuid>,
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub decision: Decision,
    pub reason: Option<String>,
    pub request_id: String,
    pub detail: serde_json::Value,
}

/// Why an append failed; every variant becomes 503 `audit_unavailable`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    #[error("audit append failed: {0}")]
    Store(String),
    #[error("audit append did not finish within {0:?}")]
    Timeout(Duration),
    #[error("the audit writer has stopped")]
    Stopped,
}

impl From<StoreError> for AuditError {
    fn from(e: StoreError) -> Self {
        AuditError::Store(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_listed_once_under_its_own_name() {
        let names: std::collections::BTreeSet<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), Action::ALL.len(), "listed once each");
        for a in Action::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
        // Each variant carries one rename; a variant missing from ALL shows here.
        let variants = include_str!("mod.rs")
            .matches("#[serde(rename = \"")
            .count();
        assert_eq!(
            variants,
            Action::ALL.len(),
            "every action is in Action::ALL"
        );
    }
}
