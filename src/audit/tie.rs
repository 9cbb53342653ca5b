//! A tie: one signed statement naming the head of every shard's audit
//! chain at one time, so that chains kept in separate databases make one
//! verifiable whole (docs/SCALING.md, "The audit log, split").
//!
//! Each shard keeps its own hash chain, verified as before. A tie adds what
//! no single chain can say: which shards exist, and how far each had got by
//! the tie's time. Ties are numbered from 1 and each names the digest of the
//! one before, so deleting a tie, or a shard's entries a tie covers, or a
//! whole shard, is detectable — and, as with checkpoints, whoever kept the
//! latest tie outside the databases can also detect a tail cut from all.
//!
//! There is deliberately no order between entries of different shards
//! beyond this: a tie says "shard a had reached entry 1 041 and shard b
//! entry 877", not which of two entries on different shards came first. A
//! customer's entries all live on that customer's shard, in one order.

use ring::digest;
use serde::{Deserialize, Serialize};

use crate::crypto::{hex, unhex, verify_signature};

/// The file format name of a tie.
pub const FORMAT: &str = "arkku-audit-tie/1";

/// Longest shard name; names are `[a-z0-9_-]`, so they read well in
/// messages and cannot be confused with a database URL.
pub const MAX_NAME: usize = 32;

/// How far one shard's chain had got when the tie was made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ShardHead {
    pub name: String,
    /// The last entry's seq; 0 for an empty chain.
    pub seq: i64,
    /// That entry's chain hash (for an empty chain, the genesis hash), hex.
    pub hash: String,
}

/// A signed tie, as stored in every shard and printed by `arkku audit tie`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Tie {
    pub format: String,
    /// 1 for the first tie, then one more for each.
    pub n: i64,
    /// The digest of tie `n - 1` (64 zeros for the first), hex.
    pub prev: String,
    /// When it was made (RFC 3339), for people.
    pub at: String,
    /// When it was made (microseconds since the epoch), as signed.
    pub at_micros: i64,
    /// Every shard, sorted by name.
    pub shards: Vec<ShardHead>,
    /// Ed25519 signature over [`Tie::message`], hex.
    pub signature: String,
    /// The vault's audit public key, hex.
    pub public_key: String,
}

/// Why a tie cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TieError {
    #[error("not a tie (format {0:?})")]
    Format(String),
    #[error("the tie holds a malformed {0}")]
    Malformed(&'static str),
}

/// Whether `name` is a valid shard name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn hash32(s: &str, what: &'static str) -> Result<[u8; 32], TieError> {
    unhex(s)
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or(TieError::Malformed(what))
}

impl Tie {
    /// An unsigned tie `n` over `shards` (sorted here), after the tie whose
    /// digest is `prev` (`None` for the first).
    pub fn new(n: i64, prev: Option<[u8; 32]>, at_micros: i64, mut shards: Vec<ShardHead>) -> Self {
        shards.sort_by(|a, b| a.name.cmp(&b.name));
        Tie {
            format: FORMAT.to_owned(),
            n,
            prev: hex(&prev.unwrap_or([0; 32])),
            at: crate::domain::time::rfc3339(crate::store::from_micros(at_micros)),
            at_micros,
            shards,
            signature: String::new(),
            public_key: String::new(),
        }
    }

    /// The signed message: a domain label (so no checkpoint or manifest
    /// signature can pass for a tie), then every field but the signature,
    /// each of variable length prefixed with its length.
    pub fn message(&self) -> Result<Vec<u8>, TieError> {
        if self.format != FORMAT {
            return Err(TieError::Format(self.format.clone()));
        }
        let mut m = Vec::with_capacity(64 + self.shards.len() * 80);
        m.extend_from_slice(b"arkku.audit.tie.v1");
        m.extend_from_slice(&self.n.to_be_bytes());
        m.extend_from_slice(&hash32(&self.prev, "previous digest")?);
        m.extend_from_slice(&self.at_micros.to_be_bytes());
        let count = u32::try_from(self.shards.len()).map_err(|_| TieError::Malformed("shards"))?;
        m.extend_from_slice(&count.to_be_bytes());
        for s in &self.shards {
            if !valid_name(&s.name) {
                return Err(TieError::Malformed("shard name"));
            }
            let len = u32::try_from(s.name.len()).map_err(|_| TieError::Malformed("shard name"))?;
            m.extend_from_slice(&len.to_be_bytes());
            m.extend_from_slice(s.name.as_bytes());
            m.extend_from_slice(&s.seq.to_be_bytes());
            m.extend_from_slice(&hash32(&s.hash, "shard head hash")?);
        }
        Ok(m)
    }

    /// The tie's digest, which the next tie names: SHA-256 of its message.
    pub fn digest(&self) -> Result<[u8; 32], TieError> {
        let d = digest::digest(&digest::SHA256, &self.message()?);
        <[u8; 32]>::try_from(d.as_ref()).map_err(|_| TieError::Malformed("digest"))
    }

    /// The digest of the tie before, as bytes.
    pub fn prev_digest(&self) -> Result<[u8; 32], TieError> {
        hash32(&self.prev, "previous digest")
    }

    /// Whether the signature is valid under `trusted` (the key it names
    /// must be that key).
    pub fn signature_valid(&self, trusted: &[u8]) -> bool {
        let (Some(key), Some(sig), Ok(m)) = (
            unhex(&self.public_key),
            unhex(&self.signature),
            self.message(),
        ) else {
            return false;
        };
        key == trusted && verify_signature(&key, &m, &sig)
    }

    /// The head it names for `shard`.
    pub fn head(&self, shard: &str) -> Option<&ShardHead> {
        self.shards.iter().find(|s| s.name == shard)
    }

    /// The names of its shards, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.shards.iter().map(|s| s.name.as_str()).collect()
    }
}

impl ShardHead {
    /// The head's hash as bytes.
    pub fn hash_bytes(&self) -> Result<[u8; 32], TieError> {
        hash32(&self.hash, "shard head hash")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{CheckpointSigner, SecretKey};

    fn signer(seed: u8) -> CheckpointSigner {
        CheckpointSigner::from_seed(&SecretKey::from_bytes([seed; 32])).unwrap()
    }

    fn head(name: &str, seq: i64, byte: u8) -> ShardHead {
        ShardHead {
            name: name.into(),
            seq,
            hash: hex(&[byte; 32]),
        }
    }

    fn signed(s: &CheckpointSigner) -> Tie {
        let mut t = Tie::new(
            2,
            Some([7; 32]),
            1_700_000_000_000_000,
            vec![head("b", 10, 2), head("a", 5, 1)],
        );
        t.public_key = hex(s.public_key());
        t.signature = hex(&s.sign(&t.message().unwrap()));
        t
    }

    #[test]
    fn shards_are_sorted_and_a_signed_tie_verifies_under_its_key_only() {
        let s = signer(1);
        let t = signed(&s);
        assert_eq!(t.names(), ["a", "b"]);
        assert!(t.signature_valid(s.public_key()));
        assert!(!t.signature_valid(signer(2).public_key()));
    }

    #[test]
    fn every_field_is_covered_by_the_signature() {
        let s = signer(1);
        let pk = s.public_key().to_vec();
        let edits: Vec<fn(&mut Tie)> = vec![
            |t| t.n += 1,
            |t| t.prev = hex(&[8; 32]),
            |t| t.at_micros += 1,
            |t| t.shards[0].seq += 1,
            |t| t.shards[1].hash = hex(&[9; 32]),
            |t| t.shards[0].name = "c".into(),
            |t| {
                t.shards.pop();
            },
            |t| t.shards.push(head("c", 1, 3)),
        ];
        for edit in edits {
            let mut t = signed(&s);
            edit(&mut t);
            assert!(!t.signature_valid(&pk), "{t:?}");
        }
    }

    #[test]
    fn digests_differ_between_ties_and_a_bad_field_is_named() {
        let s = signer(1);
        let a = signed(&s);
        let mut b = a.clone();
        b.n = 3;
        assert_ne!(a.digest().unwrap(), b.digest().unwrap());
        b.prev = "zz".into();
        assert_eq!(b.digest(), Err(TieError::Malformed("previous digest")));
        b.format = "arkku-checkpoint/1".into();
        assert!(matches!(b.message(), Err(TieError::Format(_))));
    }

    #[test]
    fn shard_names() {
        for ok in ["a", "eu-1", "shard_07", &"x".repeat(32)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "A", "a b", "a=b", "é", "postgres://x", &"x".repeat(33)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
