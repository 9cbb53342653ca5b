//! Field encryption, the bottom layer: a customer's data key encrypts each stored value,
//! bound to the customer, channel, record and field name so that a ciphertext copied into
//! another row, customer, channel or column fails its integrity check instead of decrypting.

use std::fmt;

use ring::aead::LessSafeKey;
use zeroize::Zeroizing;

use crate::crypto::envelope::{self, AadBuilder};
use crate::crypto::{CryptoError, SecretKey};

/// AAD label for field values.
const FIELD_LABEL: &[u8] = b"arkku.field.v1";

/// Where a field lives; all four parts are bound into the AAD, so a value only opens where
/// it was written.
#[derive(Debug, Clone, Copy)]
pub struct FieldContext<'a> {
    /// The customer the value belongs to.
    pub customer_id: uuid::Uuid,
    /// The contact channel (e.g. `email`, `phone`).
    pub channel: &'a str,
    /// The row the value is stored in.
    pub record_id: uuid::Uuid,
    /// The column or attribute name.
    pub field: &'a str,
}

impl FieldContext<'_> {
    fn aad(&self) -> Result<Vec<u8>, CryptoError> {
        Ok(AadBuilder::new(FIELD_LABEL)?
            .part(self.customer_id.as_bytes())?
            .part(self.channel.as_bytes())?
            .part(self.record_id.as_bytes())?
            .part(self.field.as_bytes())?
            .finish())
    }
}

/// A data key prepared for field encryption: the AES key schedule is computed once, so a
/// request touching many fields does not re-expand the key each time. Debug is redacted.
pub struct FieldKey {
    key: LessSafeKey,
}

impl FieldKey {
    /// Prepares `data_key` (an unwrapped per-customer, per-channel key) for field use.
    pub fn new(data_key: &SecretKey) -> Result<Self, CryptoError> {
        Ok(Self {
            key: envelope::prepare_key(data_key)?,
        })
    }

    /// Encrypts one field value for exactly the place `ctx` describes.
    pub fn seal(&self, ctx: &FieldContext<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        envelope::seal_with(&self.key, &ctx.aad()?, plaintext)
    }

    /// Decrypts a value sealed for the same `ctx`; anything else is [`CryptoError::Integrity`].
    pub fn open(
        &self,
        ctx: &FieldContext<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        envelope::open_with(&self.key, &ctx.aad()?, sealed)
    }

    /// Convenience: open and require UTF-8 (non-UTF-8 => Integrity), for text fields such as
    /// addresses and numbers; the result is still wiped on drop.
    pub fn open_string(
        &self,
        ctx: &FieldContext<'_>,
        sealed: &[u8],
    ) -> Result<Zeroizing<String>, CryptoError> {
        let mut bytes = self.open(ctx, sealed)?;
        // Move the buffer out rather than copy it; the Zeroizing shell left behind is empty.
        match String::from_utf8(std::mem::take(&mut *bytes)) {
            Ok(text) => Ok(Zeroizing::new(text)),
            Err(err) => {
                drop(Zeroizing::new(err.into_bytes()));
                Err(CryptoError::Integrity)
            }
        }
    }
}

impl fmt::Debug for FieldKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FieldKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use uuid::Uuid;

    fn context<'a>(customer_id: Uuid, record_id: Uuid) -> FieldContext<'a> {
        FieldContext {
            customer_id,
            channel: "email",
            record_id,
            field: "address",
        }
    }

    fn is_integrity<T>(result: Result<T, CryptoError>) -> bool {
        matches!(result, Err(CryptoError::Integrity))
    }

    #[test]
    fn a_field_opens_in_its_own_context() -> Result<(), CryptoError> {
        let key = FieldKey::new(&SecretKey::generate()?)?;
        let ctx = context(Uuid::now_v7(), Uuid::now_v7());
        let sealed = key.seal(&ctx, b"alice@example.com")?;
        assert_eq!(key.open(&ctx, &sealed)?.as_slice(), b"alice@example.com");
        assert_eq!(
            key.open_string(&ctx, &sealed)?.as_str(),
            "alice@example.com"
        );
        Ok(())
    }

    #[test]
    fn a_field_sealed_for_one_place_fails_everywhere_else() -> Result<(), CryptoError> {
        let key = FieldKey::new(&SecretKey::generate()?)?;
        let ctx = context(Uuid::now_v7(), Uuid::now_v7());
        let sealed = key.seal(&ctx, b"alice@example.com")?;

        let other_customer = FieldContext {
            customer_id: Uuid::now_v7(),
            ..ctx
        };
        let other_channel = FieldContext {
            channel: "phone",
            ..ctx
        };
        let other_record = FieldContext {
            record_id: Uuid::now_v7(),
            ..ctx
        };
        let other_field = FieldContext {
            field: "display_name",
            ..ctx
        };
        assert!(is_integrity(key.open(&other_customer, &sealed)));
        assert!(is_integrity(key.open(&other_channel, &sealed)));
        assert!(is_integrity(key.open(&other_record, &sealed)));
        assert!(is_integrity(key.open(&other_field, &sealed)));
        Ok(())
    }

    #[test]
    fn shifting_bytes_between_channel_and_field_names_fails() -> Result<(), CryptoError> {
        let key = FieldKey::new(&SecretKey::generate()?)?;
        let ctx = FieldContext {
            channel: "ab",
            field: "c",
            ..context(Uuid::nil(), Uuid::nil())
        };
        let shifted = FieldContext {
            channel: "a",
            field: "bc",
            ..ctx
        };
        let sealed = key.seal(&ctx, b"x")?;
        assert!(is_integrity(key.open(&shifted, &sealed)));
        Ok(())
    }

    #[test]
    fn a_field_fails_under_the_wrong_key() -> Result<(), CryptoError> {
        let ctx = context(Uuid::now_v7(), Uuid::now_v7());
        let sealed = FieldKey::new(&SecretKey::generate()?)?.seal(&ctx, b"secret")?;
        let other = FieldKey::new(&SecretKey::generate()?)?;
        assert!(is_integrity(other.open(&ctx, &sealed)));
        Ok(())
    }

    #[test]
    fn flipping_any_byte_of_a_field_fails() -> Result<(), CryptoError> {
        let key = FieldKey::new(&SecretKey::generate()?)?;
        let ctx = context(Uuid::now_v7(), Uuid::now_v7());
        let sealed = key.seal(&ctx, b"+358 40 1234567")?;
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[i] ^= 1 << bit;
                let result = key.open(&ctx, &bad);
                if i == 0 {
                    assert!(matches!(result, Err(CryptoError::UnsupportedFormat(_))));
                } else {
                    assert!(is_integrity(result), "byte {i} bit {bit}");
                }
            }
        }
        Ok(())
    }

    #[test]
    fn truncating_a_field_at_any_length_fails() -> Result<(), CryptoError> {
        let key = FieldKey::new(&SecretKey::generate()?)?;
        let ctx = context(Uuid::now_v7(), Uuid::now_v7());
        let sealed = key.seal(&ctx, b"+358 40 1234567")?;
        for len in 0..sealed.len() {
            assert!(is_integrity(key.open(&ctx, &sealed[..len])), "length {len}");
        }
        Ok(())
    }

    #[test]
    fn an_unknown_format_byte_is_unsupported() -> Result<(), CryptoError> {
        let key = FieldKey::new(&SecretKey::generate()?)?;
        let ctx = context(Uuid::now_v7(), Uuid::now_v7());
        let mut sealed = key.seal(&ctx, b"x")?;
        sealed[0] = 0xff;
        assert!(matches!(
            key.open(&ctx, &sealed),
            Err(CryptoError::UnsupportedFormat(0xff))
        ));
        Ok(())
    }

    #[test]
    fn two_seals_of_the_same_field_differ() -> Result<(), CryptoError> {
        let key = FieldKey::new(&SecretKey::generate()?)?;
        let ctx = context(Uuid::now_v7(), Uuid::now_v7());
        assert_ne!(key.seal(&ctx, b"same")?, key.seal(&ctx, b"same")?);
        Ok(())
    }

    #[test]
    fn open_string_rejects_non_utf8_as_integrity() -> Result<(), CryptoError> {
        let key = FieldKey::new(&SecretKey::generate()?)?;
        let ctx = context(Uuid::now_v7(), Uuid::now_v7());
        let sealed = key.seal(&ctx, &[0xff, 0xfe, 0x00])?;
        assert_eq!(key.open(&ctx, &sealed)?.as_slice(), &[0xff, 0xfe, 0x00]);
        assert!(is_integrity(key.open_string(&ctx, &sealed)));
        Ok(())
    }

    #[test]
    fn debug_of_a_field_key_is_redacted() -> Result<(), CryptoError> {
        let key = FieldKey::new(&SecretKey::from_bytes([0xab; 32]))?;
        let shown = format!("{key:?} {key:#?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("ab") && !shown.contains("171"));
        Ok(())
    }

    proptest! {
        #[test]
        fn any_plaintext_roundtrips(plaintext in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let key = FieldKey::new(&SecretKey::generate()?)?;
            let ctx = context(Uuid::now_v7(), Uuid::now_v7());
            let sealed = key.seal(&ctx, &plaintext)?;
            let opened = key.open(&ctx, &sealed)?;
            prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        }

        #[test]
        fn a_flipped_bit_never_opens(
            plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
            index in any::<proptest::sample::Index>(),
            bit in 0u8..8,
        ) {
            let key = FieldKey::new(&SecretKey::generate()?)?;
            let ctx = context(Uuid::now_v7(), Uuid::now_v7());
            let mut sealed = key.seal(&ctx, &plaintext)?;
            let i = index.index(sealed.len());
            sealed[i] ^= 1 << bit;
            let result = key.open(&ctx, &sealed);
            if i == 0 {
                prop_assert!(matches!(result, Err(CryptoError::UnsupportedFormat(_))));
            } else {
                prop_assert!(is_integrity(result));
            }
        }
    }
}
