//! The ways into the vault (DESIGN.md §12) and the one check every request
//! passes: whoever issued a token, [`Authenticator::authenticate`] turns it
//! into the same [`crate::domain::Actor`], and the service layer authorises
//! and audits that actor as it does any other.
//!
//! - [`authenticate`]: the bearer-token check all routes share.
//! - [`secret_hash`]: argon2id for client secrets and staff passwords, kept
//!   off the data path.
//! - Integration clients (the client-credentials grant of `POST
//!   /oauth/token`): [`client_credentials`] (secrets, and reading them from
//!   a request), [`scope`] (narrowing a client's purposes), [`attempts`]
//!   (429 before argon2), [`verified`] (argon2 once per secret and
//!   process), [`revocation`] (revoked clients and tokens refused on every
//!   node within two seconds).

pub mod attempts;
pub mod authenticate;
pub mod client_credentials;
pub mod revocation;
pub mod scope;
pub mod secret_hash;
pub mod verified;

pub use authenticate::Authenticator;
pub use secret_hash::SecretHasher;
