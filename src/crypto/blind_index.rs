//! Blind indexes: deterministic HMAC-SHA256 tags of normalised values, so the service can find
//! a customer by email or phone number with an equality lookup without storing the value in
//! the clear. Keys are per channel, so equal strings in two channels do not link up.

use std::collections::HashMap;
use std::fmt;

use ring::hmac;
use zeroize::Zeroize;

use crate::crypto::SecretKey;

/// HKDF salt; fixed so the derived keys depend only on the root key and channel name.
const BLIND_INDEX_SALT: &[u8] = b"arkku.blind-index.v1";

/// Per-channel HMAC-SHA256 keys derived with HKDF-SHA256 (salt: a fixed label
/// "arkku.blind-index.v1"; IKM: the root key the database was created with; info: the
/// channel name). Debug redacted.
///
/// The HKDF-Extract output (the PRK) is stored wrapped under the root key as the key domain
/// `_index` (see [`crate::vault::keyring`]), and the index is built from that stored PRK with
/// [`BlindIndex::from_prk`]. So a root key rotation, which only rewraps the PRK, leaves every
/// index value unchanged and needs no re-indexing.
pub struct BlindIndex {
    /// HKDF-Extract output, kept as an HMAC key so HKDF-Expand is a single HMAC call.
    prk: hmac::Key,
    /// Keys precomputed for the channels named at construction.
    keys: HashMap<String, hmac::Key>,
}

/// HKDF-Extract (RFC 5869) of the root key: PRK = HMAC-SHA256(salt, root). Computed once, when
/// a database first gets its `_index` key; a one-way function of the root, so storing it does
/// not reveal the root.
#[must_use]
pub fn derive_index_prk(root: &SecretKey) -> SecretKey {
    let salt = hmac::Key::new(hmac::HMAC_SHA256, BLIND_INDEX_SALT);
    let tag = hmac::sign(&salt, root.expose_secret());
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(tag.as_ref());
    let prk = SecretKey::from_bytes(bytes);
    bytes.zeroize();
    prk
}

impl BlindIndex {
    /// Derives the index keys for `channels` from the root key, as databases created before the
    /// `_index` key domain did; equal to `from_prk(&derive_index_prk(root), channels)`.
    pub fn new<'a>(root: &SecretKey, channels: impl IntoIterator<Item = &'a str>) -> Self {
        Self::from_prk(&derive_index_prk(root), channels)
    }

    /// Builds the index from the stored PRK, deriving the keys for `channels` up front so
    /// lookups do no key derivation.
    pub fn from_prk<'a>(prk: &SecretKey, channels: impl IntoIterator<Item = &'a str>) -> Self {
        let prk = hmac::Key::new(hmac::HMAC_SHA256, prk.expose_secret());
        let keys = channels
            .into_iter()
            .map(|channel| (channel.to_owned(), derive_channel_key(&prk, channel)))
            .collect();
        Self { prk, keys }
    }

    /// HMAC over the already-normalised value; unknown channels derive their key on the fly.
    /// Normalisation is the caller's job, because it differs by channel (case, phone format).
    #[must_use]
    pub fn compute(&self, channel: &str, normalised: &str) -> [u8; 32] {
        let tag = match self.keys.get(channel) {
            Some(key) => hmac::sign(key, normalised.as_bytes()),
            None => hmac::sign(
                &derive_channel_key(&self.prk, channel),
                normalised.as_bytes(),
            ),
        };
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

/// HKDF-Expand (RFC 5869) for one 32-byte block: T(1) = HMAC-SHA256(PRK, info || 0x01).
/// Done by hand because ring's `Prk::expand` is fallible and `compute` must not be.
fn derive_channel_key(prk: &hmac::Key, channel: &str) -> hmac::Key {
    let mut ctx = hmac::Context::with_key(prk);
    ctx.update(channel.as_bytes());
    ctx.update(&[0x01]);
    hmac::Key::new(hmac::HMAC_SHA256, ctx.sign().as_ref())
}

impl fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut channels: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        channels.sort_unstable();
        f.debug_struct("BlindIndex")
            .field("channels", &channels)
            .field("keys", &format_args!("<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::CryptoError;

    #[test]
    fn the_index_is_deterministic_and_32_bytes() -> Result<(), CryptoError> {
        let root = SecretKey::generate()?;
        let a = BlindIndex::new(&root, ["email", "phone"]);
        let b = BlindIndex::new(&root, ["email"]);
        let tag: [u8; 32] = a.compute("email", "alice@example.com");
        assert_eq!(tag, a.compute("email", "alice@example.com"));
        assert_eq!(tag, b.compute("email", "alice@example.com"));
        assert_ne!(tag, a.compute("email", "bob@example.com"));
        Ok(())
    }

    #[test]
    fn unknown_channels_derive_the_same_key_on_the_fly() -> Result<(), CryptoError> {
        let root = SecretKey::generate()?;
        let cached = BlindIndex::new(&root, ["phone"]);
        let uncached = BlindIndex::new(&root, std::iter::empty());
        assert_eq!(
            cached.compute("phone", "+358401234567"),
            uncached.compute("phone", "+358401234567")
        );
        Ok(())
    }

    #[test]
    fn the_index_differs_by_channel() -> Result<(), CryptoError> {
        let index = BlindIndex::new(&SecretKey::generate()?, ["email", "phone"]);
        assert_ne!(index.compute("email", "x"), index.compute("phone", "x"));
        Ok(())
    }

    #[test]
    fn the_index_differs_by_root_key() -> Result<(), CryptoError> {
        let a = BlindIndex::new(&SecretKey::generate()?, ["email"]);
        let b = BlindIndex::new(&SecretKey::generate()?, ["email"]);
        assert_ne!(a.compute("email", "x"), b.compute("email", "x"));
        Ok(())
    }

    #[test]
    fn channel_keys_match_rings_hkdf_sha256() -> Result<(), Box<dyn std::error::Error>> {
        // Our hand-rolled one-block HKDF-Expand must equal the real thing.
        struct Len32;
        impl ring::hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let root = SecretKey::generate()?;
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, BLIND_INDEX_SALT)
            .extract(root.expose_secret());
        let mut okm = [0u8; 32];
        prk.expand(&[b"email"], Len32)
            .and_then(|o| o.fill(&mut okm))
            .map_err(|_| "hkdf failed")?;
        let expected = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &okm), b"v");
        let index = BlindIndex::new(&root, ["email"]);
        assert_eq!(index.compute("email", "v").as_slice(), expected.as_ref());
        Ok(())
    }

    #[test]
    fn an_index_from_the_stored_prk_equals_the_one_derived_from_the_root() -> Result<(), CryptoError>
    {
        // Databases created before the `_index` key domain derived their index from the root;
        // their stored PRK must give the very same tags, or every lookup would miss.
        let root = SecretKey::generate()?;
        let from_root = BlindIndex::new(&root, ["email", "phone"]);
        let from_prk = BlindIndex::from_prk(&derive_index_prk(&root), ["email"]);
        for (channel, value) in [("email", "a@example.com"), ("phone", "+358401234567")] {
            assert_eq!(
                from_root.compute(channel, value),
                from_prk.compute(channel, value)
            );
        }
        // And the PRK is what RFC 5869 HKDF-Extract gives (the salt is the fixed label).
        let expected = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, BLIND_INDEX_SALT),
            root.expose_secret(),
        );
        assert_eq!(
            derive_index_prk(&root).expose_secret().as_slice(),
            expected.as_ref()
        );
        Ok(())
    }

    #[test]
    fn debug_of_a_blind_index_shows_channels_but_no_key_material() -> Result<(), CryptoError> {
        let root = SecretKey::from_bytes([0xab; 32]);
        let index = BlindIndex::new(&root, ["phone", "email"]);
        let shown = format!("{index:?}");
        assert!(shown.contains("<redacted>"));
        assert!(shown.contains("email") && shown.contains("phone"));
        assert!(!shown.contains("ab") && !shown.contains("171"));
        Ok(())
    }
}
