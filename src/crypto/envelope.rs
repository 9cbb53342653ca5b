//! The single AES-256-GCM envelope every layer uses, so the byte format and its checks live in
//! exactly one place.
//!
//! Layout: `[0x01 format byte][12-byte random nonce][ciphertext || 16-byte GCM tag]`.
//! The format byte lets a future layout coexist with stored data; anything shorter than
//! `1 + 12 + 16` bytes, or failing the tag, is an integrity error.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::{CryptoError, SecretKey};

/// The only envelope format written today.
pub(crate) const FORMAT_V1: u8 = 0x01;
/// AES-GCM tag length in bytes.
const TAG_LEN: usize = 16;
/// Format byte plus nonce.
const HEADER_LEN: usize = 1 + NONCE_LEN;
/// The shortest well-formed envelope (empty plaintext).
pub(crate) const MIN_SEALED_LEN: usize = HEADER_LEN + TAG_LEN;

/// Expands a secret into an AES-256-GCM key schedule, so callers sealing many values can do
/// it once.
pub(crate) fn prepare_key(key: &SecretKey) -> Result<LessSafeKey, CryptoError> {
    // ring only rejects keys of the wrong length; ours are always 32 bytes, so this cannot
    // fail in practice. Mapped to Integrity because no key could open or seal anything.
    let unbound =
        UnboundKey::new(&AES_256_GCM, key.expose_secret()).map_err(|_| CryptoError::Integrity)?;
    Ok(LessSafeKey::new(unbound))
}

/// Seals `plaintext` under `key`, binding `aad`.
pub(crate) fn seal(key: &SecretKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    seal_with(&prepare_key(key)?, aad, plaintext)
}

/// Opens a value sealed by [`seal`] with the same key and AAD.
pub(crate) fn open(
    key: &SecretKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    open_with(&prepare_key(key)?, aad, sealed)
}

/// [`seal`] with an already-prepared key schedule.
pub(crate) fn seal_with(
    key: &LessSafeKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| CryptoError::Rng)?;

    let mut out = Vec::with_capacity(MIN_SEALED_LEN + plaintext.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let sealed = key.seal_in_place_separate_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut out[HEADER_LEN..],
    );
    match sealed {
        Ok(tag) => {
            out.extend_from_slice(tag.as_ref());
            Ok(out)
        }
        Err(_) => {
            // Only reachable for absurdly long inputs; the buffer may still hold plaintext.
            out.zeroize();
            Err(CryptoError::Integrity)
        }
    }
}

/// [`open`] with an already-prepared key schedule.
pub(crate) fn open_with(
    key: &LessSafeKey,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let (&format, rest) = sealed.split_first().ok_or(CryptoError::Integrity)?;
    if format != FORMAT_V1 {
        return Err(CryptoError::UnsupportedFormat(format));
    }
    if sealed.len() < MIN_SEALED_LEN {
        return Err(CryptoError::Integrity);
    }
    let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Integrity)?;
    let mut buf = Zeroizing::new(ciphertext.to_vec());
    let len = key
        .open_in_place(nonce, Aad::from(aad), buf.as_mut_slice())
        .map_err(|_| CryptoError::Integrity)?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// Builds associated data that cannot be confused across purposes or part boundaries:
/// the domain label and then each part, each written as a u32 big-endian length and the bytes.
pub(crate) struct AadBuilder(Vec<u8>);

impl AadBuilder {
    /// Starts AAD for one purpose; `label` (e.g. `b"arkku.field.v1"`) separates domains so a
    /// wrapped key can never be opened as a field and vice versa.
    pub(crate) fn new(label: &[u8]) -> Result<Self, CryptoError> {
        Self(Vec::with_capacity(64)).part(label)
    }

    /// Appends one length-prefixed part.
    pub(crate) fn part(mut self, bytes: &[u8]) -> Result<Self, CryptoError> {
        // Parts are names and ids; one over 4 GiB cannot be bound and so cannot verify.
        let len = u32::try_from(bytes.len()).map_err(|_| CryptoError::Integrity)?;
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
        Ok(self)
    }

    /// Appends a u32 (e.g. a key version) as a 4-byte big-endian part.
    pub(crate) fn part_u32(self, value: u32) -> Result<Self, CryptoError> {
        self.part(&value.to_be_bytes())
    }

    /// The finished AAD bytes.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad() -> Result<Vec<u8>, CryptoError> {
        Ok(AadBuilder::new(b"arkku.test.v1")?.part(b"ctx")?.finish())
    }

    #[test]
    fn sealed_value_opens_to_the_original_plaintext() -> Result<(), CryptoError> {
        let key = SecretKey::generate()?;
        let sealed = seal(&key, &aad()?, b"hello")?;
        assert_eq!(sealed.len(), MIN_SEALED_LEN + 5);
        assert_eq!(sealed[0], FORMAT_V1);
        assert_eq!(open(&key, &aad()?, &sealed)?.as_slice(), b"hello");
        Ok(())
    }

    #[test]
    fn empty_plaintext_roundtrips() -> Result<(), CryptoError> {
        let key = SecretKey::generate()?;
        let sealed = seal(&key, &aad()?, b"")?;
        assert_eq!(sealed.len(), MIN_SEALED_LEN);
        assert!(open(&key, &aad()?, &sealed)?.is_empty());
        Ok(())
    }

    #[test]
    fn prepared_and_unprepared_keys_interoperate() -> Result<(), CryptoError> {
        let key = SecretKey::generate()?;
        let prepared = prepare_key(&key)?;
        let sealed = seal_with(&prepared, &aad()?, b"x")?;
        assert_eq!(open(&key, &aad()?, &sealed)?.as_slice(), b"x");
        let sealed = seal(&key, &aad()?, b"y")?;
        assert_eq!(open_with(&prepared, &aad()?, &sealed)?.as_slice(), b"y");
        Ok(())
    }

    #[test]
    fn different_aad_fails_with_integrity() -> Result<(), CryptoError> {
        let key = SecretKey::generate()?;
        let sealed = seal(&key, &aad()?, b"hello")?;
        let other = AadBuilder::new(b"arkku.test.v1")?.part(b"ctY")?.finish();
        assert!(matches!(
            open(&key, &other, &sealed),
            Err(CryptoError::Integrity)
        ));
        Ok(())
    }

    #[test]
    fn wrong_key_fails_with_integrity() -> Result<(), CryptoError> {
        let sealed = seal(&SecretKey::generate()?, &aad()?, b"hello")?;
        let other = SecretKey::generate()?;
        assert!(matches!(
            open(&other, &aad()?, &sealed),
            Err(CryptoError::Integrity)
        ));
        Ok(())
    }

    #[test]
    fn empty_input_fails_with_integrity() -> Result<(), CryptoError> {
        let key = SecretKey::generate()?;
        assert!(matches!(
            open(&key, &aad()?, &[]),
            Err(CryptoError::Integrity)
        ));
        Ok(())
    }

    #[test]
    fn unknown_format_byte_is_reported_as_unsupported() -> Result<(), CryptoError> {
        let key = SecretKey::generate()?;
        let mut sealed = seal(&key, &aad()?, b"hello")?;
        sealed[0] = 0x02;
        assert!(matches!(
            open(&key, &aad()?, &sealed),
            Err(CryptoError::UnsupportedFormat(0x02))
        ));
        Ok(())
    }

    #[test]
    fn truncation_at_every_length_fails_with_integrity() -> Result<(), CryptoError> {
        let key = SecretKey::generate()?;
        let sealed = seal(&key, &aad()?, b"some contact data")?;
        for len in 0..sealed.len() {
            assert!(
                matches!(
                    open(&key, &aad()?, &sealed[..len]),
                    Err(CryptoError::Integrity)
                ),
                "truncated to {len} bytes"
            );
        }
        Ok(())
    }

    #[test]
    fn flipping_any_byte_fails_and_never_yields_plaintext() -> Result<(), CryptoError> {
        let key = SecretKey::generate()?;
        let sealed = seal(&key, &aad()?, b"some contact data")?;
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            let result = open(&key, &aad()?, &bad);
            if i == 0 {
                // The format byte is checked first, so a flip there reads as an unknown format.
                assert!(matches!(result, Err(CryptoError::UnsupportedFormat(0x00))));
            } else {
                assert!(matches!(result, Err(CryptoError::Integrity)), "byte {i}");
            }
        }
        Ok(())
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() -> Result<(), CryptoError> {
        let key = SecretKey::generate()?;
        let a = seal(&key, &aad()?, b"same")?;
        let b = seal(&key, &aad()?, b"same")?;
        assert_ne!(a, b);
        assert_ne!(a[1..HEADER_LEN], b[1..HEADER_LEN]);
        Ok(())
    }

    #[test]
    fn aad_is_unambiguous_across_part_boundaries() -> Result<(), CryptoError> {
        let ab_c = AadBuilder::new(b"l")?.part(b"ab")?.part(b"c")?.finish();
        let a_bc = AadBuilder::new(b"l")?.part(b"a")?.part(b"bc")?.finish();
        let label_shift = AadBuilder::new(b"la")?.part(b"b")?.part(b"c")?.finish();
        assert_ne!(ab_c, a_bc);
        assert_ne!(ab_c, label_shift);
        assert_eq!(
            AadBuilder::new(b"l")?.part(b"ab")?.finish(),
            [&[0, 0, 0, 1][..], b"l", &[0, 0, 0, 2], b"ab"].concat()
        );
        Ok(())
    }

    #[test]
    fn a_u32_part_is_four_big_endian_bytes() -> Result<(), CryptoError> {
        assert_eq!(
            AadBuilder::new(b"l")?.part_u32(0x0102_0304)?.finish(),
            [&[0, 0, 0, 1][..], b"l", &[0, 0, 0, 4], &[1, 2, 3, 4]].concat()
        );
        Ok(())
    }
}
