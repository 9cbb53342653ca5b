//! One issuer's cached keys and when they are fetched again: on a timer
//! (the issuer's `refresh`; 30 s after a failed fetch) and when a token
//! names a `kid` the cache does not hold — at most once per 30 s, so a flood
//! of made-up `kid`s cannot turn the vault against its provider. A failed
//! fetch, or a document without a usable key, keeps the last good keys.
//! Times are the vault's clock, so tests can move them.

use std::sync::{Arc, PoisonError, RwLock};

use super::{fetch::Fetcher, jwks::KeySet};
use crate::policy::issuers::IssuerPolicy;

/// Shortest time between two fetches caused by unknown `kid`s, and the
/// timer's retry after a failed fetch, in seconds.
pub const REFETCH_SECS: u64 = 30;

/// The keys of one issuer and the record of its fetches.
#[derive(Debug, Default)]
pub struct IssuerKeys {
    current: RwLock<Arc<KeySet>>,
    attempts: tokio::sync::Mutex<Attempts>,
}

/// When the keys were last fetched (tried), and whether that failed.
#[derive(Debug, Default)]
struct Attempts {
    last: Option<u64>,
    failed: bool,
}

impl Attempts {
    fn since_last(&self, now: u64) -> Option<u64> {
        self.last.map(|t| now.saturating_sub(t))
    }

    /// Whether the timer should fetch now.
    fn due(&self, now: u64, refresh_secs: u64) -> bool {
        let wait = if self.failed {
            REFETCH_SECS.min(refresh_secs)
        } else {
            refresh_secs
        };
        self.since_last(now).is_none_or(|s| s >= wait)
    }

    /// Whether an unknown `kid` may cause a fetch now.
    fn may_refetch(&self, now: u64) -> bool {
        self.since_last(now).is_none_or(|s| s >= REFETCH_SECS)
    }
}

impl IssuerKeys {
    /// The keys as they are now.
    pub fn current(&self) -> Arc<KeySet> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// A token named a `kid` we do not hold: fetch, unless a fetch was tried
    /// in the last 30 s (waiting for one in progress rather than starting
    /// another).
    pub async fn refetch_for_unknown_kid(
        &self,
        policy: &IssuerPolicy,
        fetcher: &Fetcher,
        clock: &crate::clock::Clock,
    ) {
        let mut attempts = self.attempts.lock().await;
        let now = clock.unix_seconds();
        if attempts.may_refetch(now) {
            self.fetch(policy, fetcher, &mut attempts, now).await;
        }
    }

    /// The timer's turn: fetch if the refresh interval has passed (unless
    /// a fetch is in progress).
    pub async fn refresh_if_due(
        &self,
        policy: &IssuerPolicy,
        fetcher: &Fetcher,
        clock: &crate::clock::Clock,
    ) {
        let Ok(mut attempts) = self.attempts.try_lock() else {
            return;
        };
        let now = clock.unix_seconds();
        if attempts.due(now, policy.refresh.as_secs()) {
            self.fetch(policy, fetcher, &mut attempts, now).await;
        }
    }

    async fn fetch(
        &self,
        policy: &IssuerPolicy,
        fetcher: &Fetcher,
        attempts: &mut Attempts,
        now: u64,
    ) {
        attempts.last = Some(now);
        let previous = self.current();
        let parsed = match fetcher.fetch(&policy.keys).await {
            Ok(bytes) => {
                KeySet::parse(&bytes, &policy.algorithms, &previous).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match parsed {
            Ok((keys, skipped)) => {
                attempts.failed = false;
                let changed = keys.kids() != previous.kids();
                if changed {
                    tracing::info!(
                        issuer = %policy.issuer,
                        kids = ?keys.kids(),
                        skipped,
                        "fetched the issuer's keys"
                    );
                } else {
                    tracing::debug!(issuer = %policy.issuer, "the issuer's keys are unchanged");
                }
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
            }
            Err(error) => {
                attempts.failed = true;
                tracing::warn!(
                    issuer = %policy.issuer,
                    %error,
                    kept = previous.len(),
                    "could not fetch the issuer's keys; keeping the last good ones \
                     (its tokens are refused until it has keys)"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_fetch_is_always_due_and_allowed() {
        let a = Attempts::default();
        assert!(a.due(1000, 3600));
        assert!(a.may_refetch(1000));
    }

    #[test]
    fn unknown_kids_refetch_at_most_every_thirty_seconds() {
        let a = Attempts {
            last: Some(1000),
            failed: false,
        };
        assert!(!a.may_refetch(1000));
        assert!(!a.may_refetch(1029));
        assert!(a.may_refetch(1030));
        // A clock that went back does not allow a fetch.
        assert!(!a.may_refetch(900));
    }

    #[test]
    fn the_timer_waits_the_interval_or_thirty_seconds_after_a_failure() {
        let ok = Attempts {
            last: Some(1000),
            failed: false,
        };
        assert!(!ok.due(1030, 3600));
        assert!(ok.due(4600, 3600));
        let failed = Attempts {
            last: Some(1000),
            failed: true,
        };
        assert!(!failed.due(1029, 3600));
        assert!(failed.due(1030, 3600));
    }
}
