//! One-time sign-in codes: made uniformly at random, stored only as a keyed
//! hash, checked in constant time; and the two keys this needs.
//!
//! **Which key.** Both keys are HKDF-SHA256 expansions (RFC 5869) of the
//! vault's `_index` key, the pseudorandom key that the blind index is
//! derived from (HKDF-Extract of the root key, stored wrapped under the
//! root key; see [`crate::crypto::blind_index`]):
//!
//! - info `arkku.sign-in.code.v1`: the HMAC-SHA256 key of the code hashes;
//! - info `arkku.notifier.outbox.v1`: the AES-256-GCM key that seals the
//!   notifier's outbox messages.
//!
//! The blind index expands the same key with channel names as info; channel
//! names cannot contain `.` or `-`, so the three never meet. The `_index` key
//! is the same on every node and survives a root-key rotation (which only
//! rewraps it), so a code asked for on one node checks on another, and
//! before and after a rotation. Whoever can read the root key and the
//! database can derive them, as they can read every value anyway.

use ring::{
    hkdf, hmac,
    rand::{SecureRandom, SystemRandom},
};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::crypto::{CryptoError, FieldKey, SecretKey};

/// Digits in a code.
pub const CODE_DIGITS: usize = 8;
/// How many codes there are (10^8).
const CODE_SPACE: u32 = 100_000_000;
/// Random draws at or above this are redrawn, so that every code is equally
/// likely (a plain `% CODE_SPACE` would favour the low codes).
const UNBIASED_BELOW: u32 = (u32::MAX / CODE_SPACE) * CODE_SPACE;

/// HKDF info of the code-hash key.
const CODE_KEY_INFO: &[u8] = b"arkku.sign-in.code.v1";
/// HKDF info of the outbox sealing key.
const OUTBOX_KEY_INFO: &[u8] = b"arkku.notifier.outbox.v1";

/// A one-time code: 8 ASCII digits, wiped from memory on drop, never shown
/// by `Debug`.
pub struct OneTimeCode(Zeroizing<String>);

impl std::fmt::Debug for OneTimeCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimeCode(<redacted>)")
    }
}

impl OneTimeCode {
    /// A fresh code, uniform over all 10^8, from the system's CSPRNG.
    pub fn generate(rng: &SystemRandom) -> Result<Self, CryptoError> {
        let mut draw = Zeroizing::new([0u8; 4]);
        loop {
            rng.fill(draw.as_mut()).map_err(|_| CryptoError::Rng)?;
            let n = u32::from_be_bytes(*draw);
            if n < UNBIASED_BELOW {
                return Ok(OneTimeCode(Zeroizing::new(format!(
                    "{:0width$}",
                    n % CODE_SPACE,
                    width = CODE_DIGITS
                ))));
            }
        }
    }

    /// A code as a customer typed it: exactly 8 ASCII digits, else `None`.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == CODE_DIGITS && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| OneTimeCode(Zeroizing::new(s.to_owned())))
    }

    /// The digits. Only for the sealed outbox message: never log or return it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The keys of sign-in, derived from the `_index` key (see the module doc).
pub struct SignInKeys {
    code: hmac::Key,
    outbox: FieldKey,
}

impl std::fmt::Debug for SignInKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInKeys(<redacted>)")
    }
}

/// HKDF output length of 32 bytes.
struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

impl SignInKeys {
    /// Derives both keys from the `_index` pseudorandom key.
    pub fn derive(index_prk: &SecretKey) -> Result<Self, CryptoError> {
        let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, index_prk.expose_secret());
        let code: hmac::Key = prk
            .expand(&[CODE_KEY_INFO], hmac::HMAC_SHA256)
            .map_err(|_| CryptoError::Integrity)?
            .into();
        let mut seal = Zeroizing::new([0u8; 32]);
        prk.expand(&[OUTBOX_KEY_INFO], Len32)
            .and_then(|okm| okm.fill(seal.as_mut()))
            .map_err(|_| CryptoError::Integrity)?;
        let outbox = FieldKey::new(&SecretKey::from_bytes(*seal))?;
        Ok(SignInKeys { code, outbox })
    }

    /// The stored hash of `code` for challenge `challenge`: HMAC-SHA256 over
    /// the challenge id and the digits, so a hash copied to another
    /// challenge does not verify there.
    pub fn hash(&self, challenge: Uuid, code: &OneTimeCode) -> [u8; 32] {
        let tag = hmac::sign(&self.code, &message(challenge, code));
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Whether `code` is the one whose hash for `challenge` is `stored`,
    /// compared in constant time (ring's `hmac::verify`).
    pub fn matches(&self, challenge: Uuid, code: &OneTimeCode, stored: &[u8]) -> bool {
        hmac::verify(&self.code, &message(challenge, code), stored).is_ok()
    }

    /// The key that seals outbox messages.
    pub fn outbox(&self) -> &FieldKey {
        &self.outbox
    }
}

/// What is hashed: the challenge id's 16 bytes, then the 8 digits.
fn message(challenge: Uuid, code: &OneTimeCode) -> Zeroizing<Vec<u8>> {
    let mut m = Zeroizing::new(Vec::with_capacity(16 + CODE_DIGITS));
    m.extend_from_slice(challenge.as_bytes());
    m.extend_from_slice(code.expose().as_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys() -> SignInKeys {
        SignInKeys::derive(&SecretKey::from_bytes([7; 32])).unwrap()
    }

    #[test]
    fn codes_are_eight_digits() {
        let rng = SystemRandom::new();
        for _ in 0..1000 {
            let c = OneTimeCode::generate(&rng).unwrap();
            assert_eq!(c.expose().len(), 8);
            assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn the_first_digit_is_spread_evenly() {
        // 20 000 codes: each leading digit expected 2 000 times; a biased
        // draw (or a dropped leading zero) would be far off.
        let rng = SystemRandom::new();
        let mut seen = [0u32; 10];
        for _ in 0..20_000 {
            let c = OneTimeCode::generate(&rng).unwrap();
            seen[usize::from(c.expose().as_bytes()[0] - b'0')] += 1;
        }
        for (digit, n) in seen.iter().enumerate() {
            assert!((1_700..=2_300).contains(n), "digit {digit}: {n} of 20000");
        }
    }

    #[test]
    fn the_redraw_bound_is_a_multiple_of_the_code_space() {
        assert_eq!(UNBIASED_BELOW % CODE_SPACE, 0);
        assert!(u64::from(UNBIASED_BELOW) + u64::from(CODE_SPACE) > u64::from(u32::MAX));
    }

    #[test]
    fn a_hash_matches_its_code_on_its_challenge_only() {
        let k = keys();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let code = OneTimeCode::parse("01234567").unwrap();
        let other = OneTimeCode::parse("01234568").unwrap();
        let stored = k.hash(a, &code);
        assert!(k.matches(a, &code, &stored));
        assert!(!k.matches(a, &other, &stored));
        assert!(!k.matches(b, &code, &stored), "bound to the challenge");
        assert!(!k.matches(a, &code, &stored[..31]));
    }

    #[test]
    fn the_keys_depend_on_the_vault_key() {
        let other = SignInKeys::derive(&SecretKey::from_bytes([8; 32])).unwrap();
        let id = Uuid::now_v7();
        let code = OneTimeCode::parse("12345678").unwrap();
        assert_ne!(keys().hash(id, &code), other.hash(id, &code));
    }

    #[test]
    fn the_code_key_is_rfc5869_hkdf_expand_of_the_index_key() {
        let prk = [7u8; 32];
        // T(1) = HMAC(PRK, info || 0x01)
        let mut info = CODE_KEY_INFO.to_vec();
        info.push(1);
        let okm = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &prk), &info);
        let expected = hmac::Key::new(hmac::HMAC_SHA256, okm.as_ref());
        let id = Uuid::now_v7();
        let code = OneTimeCode::parse("87654321").unwrap();
        assert_eq!(
            keys().hash(id, &code).as_slice(),
            hmac::sign(&expected, &message(id, &code)).as_ref()
        );
    }

    #[test]
    fn debug_never_shows_a_code() {
        let c = OneTimeCode::parse("31415926").unwrap();
        assert_eq!(format!("{c:?}"), "OneTimeCode(<redacted>)");
    }

    proptest! {
        #[test]
        fn only_eight_ascii_digits_parse(s in "\\PC{0,12}") {
            let ok = s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit());
            prop_assert_eq!(OneTimeCode::parse(&s).is_some(), ok);
        }
    }
}
