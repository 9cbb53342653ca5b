//! The ways into the vault (DESIGN.md §12) and the one check every request
//! passes: whoever issued a token, [`Authenticator::authenticate`] turns it
//! into the same [`crate::domain::Actor`], and the service layer authorises
//! and audits that actor as it does any other.
//!
//! - [`authenticate`]: the bearer-token check all routes share.
//! - [`issuers`]: tokens of the external identity providers of auth.toml,
//!   verified with their published keys.
//! - [`secret_hash`]: argon2id for client secrets and staff passwords, kept
//!   off the data path.
//! - [`password`], [`totp`], [`lockout`]: the rules of staff sign-in (a new
//!   password's length, RFC 6238 codes, ten failures lock for 15 minutes);
//!   the sign-in itself is [`crate::service::staff`].
//! - [`sign_in`]: customer sign-in by one-time code (codes, their keys and
//!   limits); the operations are in [`crate::service::sign_in`].
//! - [`notify`]: the notifier that delivers the codes from a durable outbox.
//! - Integration clients (the client-credentials grant of `POST
//!   /oauth/token`): [`client_credentials`] (secrets, and reading them from
//!   a request), [`scope`] (narrowing a client's purposes), [`attempts`]
//!   (429 before argon2), [`verified`] (argon2 once per secret and
//!   process), [`revocation`] (revoked clients and tokens refused on every
//!   node within two seconds).

pub mod attempts;
pub mod authenticate;
pub mod client_credentials;
pub mod issuers;
pub mod lockout;
pub mod notify;
pub mod password;
pub mod revocation;
pub mod scope;
pub mod secret_hash;
pub mod sign_in;
pub mod totp;
pub mod verified;

pub use authenticate::Authenticator;
pub use secret_hash::SecretHasher;
