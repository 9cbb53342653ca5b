//! Verified external tokens, kept until they expire so that a provider's
//! token pays its signature check (RSA or ECDSA, tens of microseconds) once
//! rather than on every request.
//!
//! Keyed by the SHA-256 of the token, so the cache holds no token. A hit is
//! still checked against the clock (`exp`, `nbf`) and against the issuer's
//! current keys: a token whose key the provider has since withdrawn is
//! verified again, and refused. Bounded: when full, expired entries go
//! first, then arbitrary ones (they are verified again on their next use).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use super::jwks::VerifyKey;
use crate::{domain::Actor, token::LEEWAY_SECS};

/// Most tokens kept.
pub const CAPACITY: usize = 10_000;

/// A token's digest: the cache key.
pub type Digest = [u8; 32];

/// What a verified token established.
#[derive(Debug, Clone)]
pub struct Verified {
    pub actor: Actor,
    pub exp: u64,
    pub nbf: Option<u64>,
    /// The key that verified it; the entry counts only while the issuer
    /// still publishes this key.
    pub key: Arc<VerifyKey>,
}

/// The cache, shared by every issuer (a token's digest is unique).
#[derive(Debug)]
pub struct TokenCache {
    entries: Mutex<HashMap<Digest, (usize, Verified)>>,
    capacity: usize,
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::with_capacity(CAPACITY)
    }
}

/// The cache key of `token`.
pub fn digest(token: &str) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl TokenCache {
    pub fn with_capacity(capacity: usize) -> Self {
        TokenCache {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, (usize, Verified)>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The issuer (its index) and what was verified, if cached.
    pub fn get(&self, d: &Digest) -> Option<(usize, Verified)> {
        self.lock().get(d).cloned()
    }

    pub fn remove(&self, d: &Digest) {
        self.lock().remove(d);
    }

    /// Keeps a verified token of issuer `issuer`, making room if full.
    pub fn insert(&self, d: Digest, issuer: usize, v: Verified, now: u64) {
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(&d) {
            let cutoff = now.saturating_sub(LEEWAY_SECS);
            entries.retain(|_, (_, e)| e.exp >= cutoff);
            while entries.len() >= self.capacity {
                let Some(k) = entries.keys().next().copied() else {
                    break;
                };
                entries.remove(&k);
            }
        }
        entries.insert(d, (issuer, v));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    fn verified(exp: u64) -> Verified {
        let jwks = serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": "k",
            "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]});
        let (set, _) = super::super::jwks::KeySet::parse(
            &serde_json::to_vec(&jwks).unwrap(),
            &[jsonwebtoken::Algorithm::EdDSA],
            &Default::default(),
        )
        .unwrap();
        Verified {
            actor: Actor {
                sub: "iss|s".into(),
                role: Role::Agent,
                purposes: vec![],
                channel: None,
                client: None,
                customer: None,
            },
            exp,
            nbf: None,
            key: Arc::clone(set.find(Some("k")).unwrap()),
        }
    }

    #[test]
    fn a_token_is_found_by_its_digest_only() {
        let c = TokenCache::with_capacity(4);
        c.insert(digest("a.b.c"), 0, verified(100), 0);
        assert!(c.get(&digest("a.b.c")).is_some());
        assert!(c.get(&digest("a.b.d")).is_none());
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_and_stays_bounded() {
        let c = TokenCache::with_capacity(3);
        c.insert(digest("old"), 0, verified(10), 0);
        c.insert(digest("live1"), 0, verified(1000), 0);
        c.insert(digest("live2"), 0, verified(1000), 0);
        c.insert(digest("new"), 0, verified(1000), 500);
        assert_eq!(c.len(), 3);
        assert!(c.get(&digest("old")).is_none());
        assert!(c.get(&digest("new")).is_some());
        for i in 0..10 {
            c.insert(digest(&format!("more{i}")), 0, verified(1000), 500);
        }
        assert_eq!(c.len(), 3);
    }
}
