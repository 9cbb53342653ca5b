//! The vault: where keys are unwrapped and customer fields are sealed and
//! opened. This is the only module that turns ciphertext into plaintext, and
//! its opening functions demand a policy [`Permit`](crate::policy::Permit) or
//! [`PurposeGrant`](crate::policy::PurposeGrant), so nothing is decrypted
//! before the policy said yes.

pub mod keyring;
pub mod records;

pub use keyring::Keyring;

/// The key domain of profile fields (display name, external reference), which
/// belong to no channel. Channel names cannot start with `_`, so it never
/// collides with one.
pub const PROFILE_DOMAIN: &str = "_profile";

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
}
