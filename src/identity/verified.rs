//! Secrets already verified with argon2, recognised again without it.
//!
//! argon2 is what protects a stolen `clients` table; it adds nothing once a
//! secret has been shown to match. So after a successful verification the
//! vault keeps, in memory only, an HMAC-SHA256 of the secret under a random
//! key of this process, next to the PHC string it matched. A later request
//! with the same secret is recognised by comparing HMACs (in constant time,
//! through ring) for as long as that PHC string is still one the client may
//! use: rotating the secret or the end of its grace period makes the entry
//! useless without any invalidation. The secrets are 256 random bits, so an
//! HMAC of one reveals nothing a guesser could use.
//!
//! This keeps argon2 to one run per client and process in normal operation,
//! and makes the failure counting of [`super::attempts`] count failures.

use std::{collections::HashMap, sync::Mutex};

use ring::hmac;

/// Clients kept at most; beyond it the map starts afresh (every client
/// then pays one argon2 run again).
const MAX_CLIENTS: usize = 10_000;
/// Secrets kept per client: the current one and, during a rotation's grace
/// period, the old one, so that instances of a client still on the old
/// secret and those on the new one do not push each other out.
const PER_CLIENT: usize = 2;

/// What is kept per client: (the PHC string a secret matched, its HMAC),
/// newest last.
type Kept = Vec<(String, hmac::Tag)>;

/// The verified secrets of this process.
pub struct VerifiedSecrets {
    key: hmac::Key,
    entries: Mutex<HashMap<String, Kept>>,
}

impl std::fmt::Debug for VerifiedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifiedSecrets(<redacted>)")
    }
}

impl VerifiedSecrets {
    /// An empty cache under a fresh random key.
    pub fn new() -> Result<Self, ring::error::Unspecified> {
        let rng = ring::rand::SystemRandom::new();
        Ok(VerifiedSecrets {
            key: hmac::Key::generate(hmac::HMAC_SHA256, &rng)?,
            entries: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Kept>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The PHC string `secret` was verified against before for `client`, if
    /// it was; the caller checks that the hash is still one the client may
    /// use.
    pub fn recall(&self, client: &str, secret: &str) -> Option<String> {
        let kept = self.lock().get(client).cloned()?;
        kept.into_iter()
            .find(|(_, tag)| hmac::verify(&self.key, secret.as_bytes(), tag.as_ref()).is_ok())
            .map(|(phc, _)| phc)
    }

    /// Remembers that `secret` matched `phc` for `client`.
    pub fn remember(&self, client: &str, phc: &str, secret: &str) {
        let tag = hmac::sign(&self.key, secret.as_bytes());
        let mut entries = self.lock();
        if entries.len() >= MAX_CLIENTS && !entries.contains_key(client) {
            entries.clear();
        }
        let kept = entries.entry(client.to_owned()).or_default();
        kept.retain(|(p, _)| p != phc);
        kept.push((phc.to_owned(), tag));
        if kept.len() > PER_CLIENT {
            kept.remove(0);
        }
    }

    /// Forgets a client (revoked).
    pub fn forget(&self, client: &str) {
        self.lock().remove(client);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_secret_is_recalled_with_the_hash_it_matched() {
        let v = VerifiedSecrets::new().unwrap();
        v.remember("c", "$phc-1", "s3cret");
        assert_eq!(v.recall("c", "s3cret").as_deref(), Some("$phc-1"));
        // Another secret or another client: no.
        assert_eq!(v.recall("c", "s3cret!"), None);
        assert_eq!(v.recall("d", "s3cret"), None);
        // During a rotation the old and the new secret are both kept ...
        v.remember("c", "$phc-2", "new");
        assert_eq!(v.recall("c", "s3cret").as_deref(), Some("$phc-1"));
        assert_eq!(v.recall("c", "new").as_deref(), Some("$phc-2"));
        // ... and the next rotation pushes the oldest out.
        v.remember("c", "$phc-3", "newer");
        assert_eq!(v.recall("c", "s3cret"), None);
        assert_eq!(v.recall("c", "new").as_deref(), Some("$phc-2"));
        v.forget("c");
        assert_eq!(v.recall("c", "newer"), None);
    }
}
