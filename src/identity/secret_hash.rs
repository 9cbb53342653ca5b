//! argon2id for client secrets and staff passwords (DESIGN.md §12).
//!
//! argon2 is made to be slow and memory-hard, which is what keeps a stolen
//! hash from being cracked and also what could starve the data path. So:
//! every hash and verification runs on the blocking pool, at most
//! `permits` at a time (one per core but one by default, so that one core
//! always serves requests), and a caller that would
//! wait longer than [`MAX_QUEUE_WAIT`] for its turn is told the hasher is
//! busy rather than queued without bound. A verification for an unknown
//! account runs against a dummy hash with the same parameters, so that the
//! answer takes as long as for a known one. Comparison of the derived hash
//! is constant-time (the `password-hash` crate compares outputs with
//! `subtle`).

use std::{sync::Arc, time::Duration};

use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Semaphore;
use zeroize::Zeroizing;

/// Memory cost in KiB (19 MiB, the OWASP minimum for argon2id).
pub const M_COST_KIB: u32 = 19 * 1024;
/// Passes over the memory.
pub const T_COST: u32 = 2;
/// Lanes.
pub const P_COST: u32 = 1;
/// How long a caller may wait for a free hashing slot before [`HashError::Busy`].
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(2);

/// Why a hash or verification did not run.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every slot stayed taken for [`MAX_QUEUE_WAIT`]: answer 503 and let
    /// the caller retry, rather than queue without bound.
    #[error("the password hasher is busy")]
    Busy,
    #[error("argon2: {0}")]
    Argon2(String),
    #[error("no randomness for the salt")]
    Random,
}

/// Hashes and verifies secrets with argon2id, bounded to `permits` at a time.
#[derive(Clone)]
pub struct SecretHasher {
    permits: Arc<Semaphore>,
    max_wait: Duration,
    /// A hash of a random secret nobody knows, verified against when the
    /// account is unknown so that the answer costs the same.
    dummy: Arc<str>,
}

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretHasher")
            .field("free_permits", &self.permits.available_permits())
            .finish()
    }
}

fn argon2() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None)
        .map_err(|e| HashError::Argon2(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(secret: &[u8]) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| HashError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Argon2(e.to_string()))?;
    Ok(argon2()?
        .hash_password(secret, &salt)
        .map_err(|e| HashError::Argon2(e.to_string()))?
        .to_string())
}

/// Whether `secret` matches `phc`. Only argon2id hashes are accepted: a
/// stored hash of another algorithm (a tampered row) never verifies.
fn verify_blocking(phc: &str, secret: &[u8]) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    argon2().is_ok_and(|a| a.verify_password(secret, &parsed).is_ok())
}

impl SecretHasher {
    /// A hasher with one slot per core but one (at least one): argon2 must
    /// never hold every core, or a burst of guesses stalls every request
    /// (measured with `arkku-bench --scenarios token_burst` on two cores:
    /// with both cores hashing, a parallel reader's p99 rose up to sevenfold
    /// during a burst of wrong client secrets).
    pub fn new() -> Result<Self, HashError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_permits(cores.saturating_sub(1).max(1), MAX_QUEUE_WAIT)
    }

    /// A hasher with `permits` slots (at least one), whose callers wait at
    /// most `max_wait` for one.
    pub fn with_permits(permits: usize, max_wait: Duration) -> Result<Self, HashError> {
        let mut unknown = Zeroizing::new([0u8; 32]);
        SystemRandom::new()
            .fill(unknown.as_mut())
            .map_err(|_| HashError::Random)?;
        let dummy = hash_blocking(unknown.as_ref())?;
        Ok(SecretHasher {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            max_wait,
            dummy: dummy.into(),
        })
    }

    /// The argon2id PHC string of `secret`, with a fresh random salt.
    pub async fn hash(&self, secret: Zeroizing<String>) -> Result<String, HashError> {
        let _slot = self.slot().await?;
        tokio::task::spawn_blocking(move || hash_blocking(secret.as_bytes()))
            .await
            .map_err(|e| HashError::Argon2(e.to_string()))?
    }

    /// Whether `secret` matches `stored`; `None` (an unknown account) costs
    /// the same as a known one and is always `false`.
    pub async fn verify(
        &self,
        stored: Option<&str>,
        secret: Zeroizing<String>,
    ) -> Result<bool, HashError> {
        let known = stored.is_some();
        let phc: Arc<str> = stored.map_or_else(|| Arc::clone(&self.dummy), Arc::from);
        let _slot = self.slot().await?;
        let matched = tokio::task::spawn_blocking(move || verify_blocking(&phc, secret.as_bytes()))
            .await
            .map_err(|e| HashError::Argon2(e.to_string()))?;
        Ok(known && matched)
    }

    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, HashError> {
        tokio::time::timeout(self.max_wait, self.permits.acquire())
            .await
            .map_err(|_| HashError::Busy)?
            .map_err(|_| HashError::Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Zeroizing<String> {
        Zeroizing::new(s.to_owned())
    }

    #[tokio::test]
    async fn a_hash_verifies_its_secret_and_nothing_else() {
        let h = SecretHasher::with_permits(1, Duration::from_secs(5)).unwrap();
        let phc = h.hash(secret("correct horse battery")).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h
            .verify(Some(&phc), secret("correct horse battery"))
            .await
            .unwrap());
        assert!(!h
            .verify(Some(&phc), secret("correct horse batterY"))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let h = SecretHasher::with_permits(1, Duration::from_secs(5)).unwrap();
        assert!(!h.verify(None, secret("anything")).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_of_other_algorithms_are_refused() {
        let h = SecretHasher::with_permits(1, Duration::from_secs(5)).unwrap();
        // argon2i of "password" (a tampered or foreign row).
        let argon2i = "$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$BUHUa1w2ulQq1XnQ0sT7Fg";
        assert!(!h.verify(Some(argon2i), secret("password")).await.unwrap());
        assert!(!h
            .verify(Some("not a phc string"), secret("password"))
            .await
            .unwrap());
    }

    #[tokio::test]
    async fn a_full_hasher_answers_busy_instead_of_queueing_forever() {
        let h = SecretHasher::with_permits(1, Duration::from_millis(20)).unwrap();
        let _held = h.permits.acquire().await.unwrap();
        let r = h.verify(None, secret("x")).await;
        assert!(matches!(r, Err(HashError::Busy)), "{r:?}");
    }
}
