//! `auth.toml`: the external identity providers (OIDC) whose tokens the
//! vault trusts (DESIGN.md §12.2), as validated data. Parsed by
//! [`super::load`]; used by [`crate::identity::issuers`].
//!
//! Only asymmetric algorithms are accepted for a foreign issuer: with an
//! HMAC algorithm the verifying key is the signing key, so whoever can check
//! a token could also mint one, and a public key mistaken for an HMAC secret
//! is the classic algorithm-confusion attack.

use std::{path::PathBuf, time::Duration};

pub use jsonwebtoken::Algorithm;

use crate::domain::Role;

/// The algorithms an issuer may use, each pinned to one key type: RS256 to
/// RSA keys, ES256 to P-256 keys, EdDSA to Ed25519 keys.
pub const ISSUER_ALGORITHMS: [Algorithm; 3] =
    [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// How often an issuer's keys are fetched again when `refresh` is not set.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);
/// The shortest `refresh` accepted: a provider is not polled faster than the
/// vault would refetch for an unknown key id.
pub const MIN_REFRESH: Duration = Duration::from_secs(30);

/// Where an issuer's public keys (a JWKS, RFC 7517) come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// Fetched over HTTPS (plain HTTP only to a loopback host).
    Uri(reqwest::Url),
    /// Read from a file (a relative path is taken from auth.toml's directory).
    File(PathBuf),
}

/// Where a token's role comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleSource {
    /// The claim of this name holds the role's name.
    Claim(String),
    /// Every token of the issuer has this role.
    Fixed(Role),
}

/// How a provider's claims map onto the vault's actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimMap {
    pub role: RoleSource,
    /// The claim listing purposes (an array, or a space-separated string);
    /// none: tokens of this issuer carry no purposes.
    pub purposes: Option<String>,
    /// The claim naming an agent's channel; none: no channel context.
    pub channel: Option<String>,
}

/// One trusted issuer (`[[issuers]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerPolicy {
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// The `aud` its tokens must name.
    pub audience: String,
    pub keys: KeySource,
    /// The allow-list, a non-empty subset of [`ISSUER_ALGORITHMS`].
    pub algorithms: Vec<Algorithm>,
    pub claims: ClaimMap,
    /// How often the keys are fetched again regardless of need.
    pub refresh: Duration,
}
