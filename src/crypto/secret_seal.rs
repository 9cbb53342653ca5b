//! Sealing small secrets that the vault must read back itself, such as a
//! staff account's TOTP secret (which, unlike a password, cannot be hashed:
//! checking a code needs the secret).
//!
//! The key is derived with HKDF-SHA256 (RFC 5869, Expand) from the vault's
//! blind-index PRK, the `_index` key domain that the root key wraps (see
//! [`crate::vault::keyring`]), with a label per use as `info`. So:
//! - the database alone opens nothing: the PRK is stored wrapped under the
//!   root key, which never leaves its file;
//! - a root rotation rewraps the PRK and leaves every sealed secret as it is;
//! - a label contains `.` and `-`, which no channel name may hold, so no
//!   derived key equals a channel's blind-index key (derived from the same
//!   PRK with the channel name as `info`).
//!
//! Each value is an AES-256-GCM envelope whose AAD binds the label and the
//! id of the row that owns it, so a sealed secret copied to another account
//! fails its integrity check instead of opening there.

use std::fmt;

use ring::{
    aead::{LessSafeKey, UnboundKey, AES_256_GCM},
    hkdf,
};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::envelope::{self, AadBuilder};
use crate::crypto::{CryptoError, SecretKey};

/// The label of staff accounts' TOTP secrets.
pub const STAFF_TOTP_LABEL: &str = "arkku.staff-totp.v1";

/// A key for one kind of sealed secret. Debug prints no key.
pub struct SecretSeal {
    key: LessSafeKey,
    label: &'static str,
}

impl fmt::Debug for SecretSeal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretSeal({}, <redacted>)", self.label)
    }
}

impl SecretSeal {
    /// Derives the key of `label` from the blind-index PRK.
    pub fn derive(prk: &SecretKey, label: &'static str) -> Result<Self, CryptoError> {
        let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, prk.expose_secret());
        let info = [label.as_bytes()];
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| CryptoError::Integrity)?;
        Ok(SecretSeal {
            key: LessSafeKey::new(UnboundKey::from(okm)),
            label,
        })
    }

    fn aad(&self, owner: Uuid) -> Result<Vec<u8>, CryptoError> {
        Ok(AadBuilder::new(self.label.as_bytes())?
            .part(owner.as_bytes())?
            .finish())
    }

    /// Seals `secret` for the row `owner`.
    pub fn seal(&self, owner: Uuid, secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
        envelope::seal_with(&self.key, &self.aad(owner)?, secret)
    }

    /// Opens a secret sealed for `owner`; anything else is an integrity error.
    pub fn open(&self, owner: Uuid, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        envelope::open_with(&self.key, &self.aad(owner)?, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_for_its_owner_only() -> Result<(), CryptoError> {
        let prk = SecretKey::generate()?;
        let seal = SecretSeal::derive(&prk, STAFF_TOTP_LABEL)?;
        let (anna, ben) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = seal.seal(anna, b"twenty bytes secret!")?;
        assert!(!sealed
            .windows(20)
            .any(|w| w == b"twenty bytes secret!".as_slice()));
        assert_eq!(&*seal.open(anna, &sealed)?, b"twenty bytes secret!");
        assert!(matches!(
            seal.open(ben, &sealed),
            Err(CryptoError::Integrity)
        ));
        Ok(())
    }

    #[test]
    fn another_prk_or_label_does_not_open_it() -> Result<(), CryptoError> {
        let prk = SecretKey::generate()?;
        let owner = Uuid::now_v7();
        let sealed = SecretSeal::derive(&prk, STAFF_TOTP_LABEL)?.seal(owner, b"secret")?;
        let other_prk = SecretSeal::derive(&SecretKey::generate()?, STAFF_TOTP_LABEL)?;
        assert!(other_prk.open(owner, &sealed).is_err());
        let other_label = SecretSeal::derive(&prk, "arkku.other.v1")?;
        assert!(other_label.open(owner, &sealed).is_err());
        // The same PRK and label derive the same key (a restart reads it back).
        let again = SecretSeal::derive(&prk, STAFF_TOTP_LABEL)?;
        assert_eq!(&*again.open(owner, &sealed)?, b"secret");
        Ok(())
    }

    #[test]
    fn debug_shows_no_key() -> Result<(), CryptoError> {
        let seal = SecretSeal::derive(&SecretKey::generate()?, STAFF_TOTP_LABEL)?;
        assert_eq!(
            format!("{seal:?}"),
            "SecretSeal(arkku.staff-totp.v1, <redacted>)"
        );
        Ok(())
    }
}
