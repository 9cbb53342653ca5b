//! The vault: where keys are unwrapped and customer fields are sealed and
//! opened. This is the only module that turns ciphertext into plaintext, and
//! its opening functions demand a policy [`Permit`](crate::policy::Permit) or
//! [`PurposeGrant`](crate::policy::PurposeGrant), so nothing is decrypted
//! before the policy said yes.

pub mod keyring;
pub mod records;
pub mod root_file;
pub mod rotation;
pub mod status;

pub use keyring::{Keyring, RootKey};

/// Kept at this path for the callers that import it from here.
pub use crate::domain::PROFILE_DOMAIN;

/// The key domain that holds the blind-index PRK (HKDF-Extract of the root
/// key the database was created with), wrapped under the root key like a
/// channel key, so a root rotation leaves every blind index unchanged. It
/// wraps no data keys and is never rotated.
pub const INDEX_DOMAIN: &str = "_index";

/// Errors of the vault. Integrity failures mean tampered or misplaced
/// ciphertext; the HTTP layer answers an opaque 500 and logs the record id.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("no channel key {domain} v{version} in the database")]
    MissingChannelKey { domain: String, version: u32 },
    #[error("the root key does not open channel key {domain} v{version}: is ARKKU_ROOT_KEY_FILE the key this database was created with?")]
    WrongRootKey { domain: String, version: u32 },
    #[error("the permit is for another channel than the record")]
    PermitMismatch,
    #[error("{0}")]
    ConcurrentChange(String),
}
