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

/// Entries kept at most; beyond it the map starts afresh (every client
/// then pays one argon2 run again).
const MAX_ENTRIES: usize = 10_000;

/// The verified secrets of this process.
pub struct VerifiedSecrets {
    key: hmac::Key,
    /// Client id → (the PHC string the secret matched, HMAC of the secret).
    entries: Mutex<HashMap<String, (String, hmac::Tag)>>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (String, hmac::Tag)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The PHC string `secret` was verified against before for `client`, if
    /// it was; the caller checks that the hash is still one the client may
    /// use.
    pub fn recall(&self, client: &str, secret: &str) -> Option<String> {
        let (phc, tag) = self.lock().get(client).cloned()?;
        hmac::verify(&self.key, secret.as_bytes(), tag.as_ref())
            .ok()
            .map(|()| phc)
    }

    /// Remembers that `secret` matched `phc` for `client`.
    pub fn remember(&self, client: &str, phc: &str, secret: &str) {
        let tag = hmac::sign(&self.key, secret.as_bytes());
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(client) {
            entries.clear();
        }
        entries.insert(client.to_owned(), (phc.to_owned(), tag));
    }

    /// Forgets a client (revoked, or its secret rotated).
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
        v.forget("c");
        assert_eq!(v.recall("c", "s3cret"), None);
    }
}
