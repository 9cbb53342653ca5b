//! Ed25519 signatures for audit checkpoints (ring).
//!
//! The signing key is a 32-byte seed kept in a key file exactly like the root
//! key (hex, mode 0600). The public key is exported with every checkpoint, so
//! compliance staff can verify checkpoints away from the server.

use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};

use super::{CryptoError, SecretKey};

/// Signs checkpoints. Debug prints the public key only.
pub struct CheckpointSigner {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckpointSigner(public {})", hex(self.public_key()))
    }
}

impl CheckpointSigner {
    /// Derives the key pair from a 32-byte seed.
    pub fn from_seed(seed: &SecretKey) -> Result<Self, CryptoError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed.expose_secret())
            .map_err(|_| CryptoError::Integrity)?;
        Ok(CheckpointSigner { pair })
    }

    /// Signs `message`; 64 bytes.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let sig = self.pair.sign(message);
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        out
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }
}

/// Checks an Ed25519 signature.
pub fn verify_signature(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

/// Lower-case hex, for public keys, hashes and signatures in files and JSON.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Parses lower- or upper-case hex.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_with_the_public_key_and_fails_when_anything_changes() {
        let seed = SecretKey::generate().unwrap();
        let s = CheckpointSigner::from_seed(&seed).unwrap();
        let sig = s.sign(b"checkpoint");
        assert!(verify_signature(s.public_key(), b"checkpoint", &sig));
        assert!(!verify_signature(s.public_key(), b"checkpoinT", &sig));
        let other = CheckpointSigner::from_seed(&SecretKey::generate().unwrap()).unwrap();
        assert!(!verify_signature(other.public_key(), b"checkpoint", &sig));
        let mut bad = sig;
        bad[10] ^= 1;
        assert!(!verify_signature(s.public_key(), b"checkpoint", &bad));
    }

    #[test]
    fn the_same_seed_gives_the_same_key() {
        let seed = SecretKey::generate().unwrap();
        let a = CheckpointSigner::from_seed(&seed).unwrap();
        let b = CheckpointSigner::from_seed(&seed).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert!(!format!("{a:?}").contains(&hex(seed.expose_secret())));
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&bytes), "0001abff");
        assert_eq!(unhex("0001ABff").unwrap(), bytes);
        assert!(unhex("abc").is_none());
        assert!(unhex("zz").is_none());
    }
}
