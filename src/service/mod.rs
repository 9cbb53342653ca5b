//! The vault's operations: the one path from an authenticated caller to
//! customer data and back, shared by the JSON API, the web pages and the CLI.
//!
//! Each operation takes the caller (a verified [`crate::token::Actor`]) and
//! typed input, and owns the whole path: authorise ([`crate::policy`]) →
//! load ([`crate::store`]) → decide ([`crate::policy`]) → open or seal
//! ([`crate::vault`]) → write → audit ([`audited`]). Callers only translate
//! to and from it: no caller touches the store or the keyring.

pub mod access;
pub mod audit_export;
pub mod audit_review;
pub mod audited;
pub mod clients;
pub mod consents;
pub mod contact;
pub mod customers;
pub mod dsr;
pub mod dsr_register;
pub mod error;
pub mod export;
pub mod idempotency;
pub mod input;
pub mod interactions;
pub mod inventory;
pub mod keys;
pub mod ledger;
pub mod load;
pub mod lookup;
pub mod operator;
pub mod privacy;
pub mod ratelimit;
pub mod request;
pub mod sessions;
pub mod sign_in;
pub mod staff;
pub mod views;

use std::sync::Arc;

pub use error::Error;

/// Who is calling, as the edge established it: a verified actor, or why
/// there is none. Operations take this rather than an actor alone so that an
/// unauthenticated attempt is audited on the same path as any refusal.
pub type Caller = Result<crate::domain::Actor, Error>;

use crate::{
    audit::{Auditor, Checkpointer},
    clock::Clock,
    config::Config,
    crypto::BlindIndex,
    policy::Policies,
    store::Db,
    vault::Keyring,
};

/// Everything an operation needs: configuration, policies, storage, keys,
/// the audit log and the clock. Built once at start-up ([`crate::app`]).
pub struct Services {
    pub config: Config,
    pub policies: Policies,
    pub db: Db,
    pub keyring: Keyring,
    pub blind: BlindIndex,
    /// The bearer-token check every route shares.
    pub auth: crate::identity::Authenticator,
    /// Customer sign-in: code keys, rate limits, the notifier's delivery.
    pub sign_in: crate::identity::sign_in::SignIn,
    /// argon2id for client secrets and staff passwords, bounded per core.
    pub hasher: crate::identity::SecretHasher,
    /// Signs the tokens the vault issues itself (`POST /oauth/token`, and a
    /// customer's after sign-in).
    pub issuer: crate::token::TokenIssuer,
    /// Secret verifications per client id and peer (429 before argon2).
    pub client_attempts: crate::identity::attempts::AttemptLimiter,
    /// Client secrets already verified in this process.
    pub client_secrets: crate::identity::verified::VerifiedSecrets,
    pub audit: Auditor,
    pub checkpoints: Arc<Checkpointer>,
    /// Per-actor rate limits on lookups and reveals.
    pub limiter: ratelimit::ActorLimiter,
    /// What the background verification knows of the audit chain (`/readyz`).
    pub chain: Arc<crate::audit::watch::ChainWatch>,
    /// The time every operation reads.
    pub clock: Clock,
    /// The series `/metrics` serves ([`crate::metrics`]).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Stores the profile documents that reads had to build from the tables.
    pub projector: crate::store::customers::projection::Projector,
}
