//! Rate limits of customer sign-in (`[sign_in]` in `limits.toml`), which no
//! token guards: codes asked for per contact value and per client address,
//! codes checked per client address. Past a limit the answer is 429
//! `rate_limited` with `Retry-After`, for a known value and an unknown one
//! alike.
//!
//! A value is counted by its blind index (channel-keyed HMAC of the
//! normalised value), so the limiter never holds a contact value. An
//! address is counted as the connection edge counts it (IPv4 address, IPv6
//! /64; see [`crate::server::peer_key`]). governor's keyed token buckets, as
//! for the per-actor limits ([`crate::service::ratelimit`]); each `serve`
//! process counts on its own.

use std::{
    hash::Hash,
    net::IpAddr,
    sync::atomic::{AtomicU64, Ordering},
};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::{
    policy::{RateLimit, SignInLimits},
    service::Error,
};

/// Forget idle keys every this many checks.
const PRUNE_EVERY: u64 = 4096;

/// The sign-in limiters of one process; a limit the policy leaves out is `None`.
pub struct SignInLimiter {
    start_per_value: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
    start_per_peer: Option<DefaultKeyedRateLimiter<IpAddr>>,
    verify_per_peer: Option<DefaultKeyedRateLimiter<IpAddr>>,
    clock: governor::clock::DefaultClock,
    checks: AtomicU64,
}

impl std::fmt::Debug for SignInLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignInLimiter")
    }
}

fn keyed<K: Clone + Hash + Eq>(rate: Option<RateLimit>) -> Option<DefaultKeyedRateLimiter<K>> {
    rate.map(|r| RateLimiter::keyed(Quota::per_minute(r.per_minute).allow_burst(r.burst)))
}

impl SignInLimiter {
    pub fn new(limits: &SignInLimits) -> Self {
        SignInLimiter {
            start_per_value: keyed(limits.start_per_value),
            start_per_peer: keyed(limits.start_per_peer),
            verify_per_peer: keyed(limits.verify_per_peer),
            clock: governor::clock::DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts a code asked for from `peer` (unknown: not counted).
    pub fn start_from(&self, peer: Option<IpAddr>) -> Result<(), Error> {
        match peer {
            Some(ip) => self.check(self.start_per_peer.as_ref(), crate::server::peer_key(ip)),
            None => Ok(()),
        }
    }

    /// Counts a code asked for the value with this blind index.
    pub fn start_for_value(&self, blind_index: &[u8; 32]) -> Result<(), Error> {
        self.check(self.start_per_value.as_ref(), *blind_index)
    }

    /// Counts a code checked from `peer` (unknown: not counted).
    pub fn verify_from(&self, peer: Option<IpAddr>) -> Result<(), Error> {
        match peer {
            Some(ip) => self.check(self.verify_per_peer.as_ref(), crate::server::peer_key(ip)),
            None => Ok(()),
        }
    }

    fn check<K: Clone + Hash + Eq>(
        &self,
        limiter: Option<&DefaultKeyedRateLimiter<K>>,
        key: K,
    ) -> Result<(), Error> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            // Round up: retrying after the advertised time must succeed.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            Error::RateLimited {
                retry_after_secs: secs.max(1),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn rate(per_minute: u32, burst: u32) -> Option<RateLimit> {
        Some(RateLimit {
            per_minute: NonZeroU32::new(per_minute).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        })
    }

    #[test]
    fn a_value_past_its_burst_is_refused_with_the_wait() {
        let l = SignInLimiter::new(&SignInLimits {
            start_per_value: rate(1, 2),
            ..SignInLimits::default()
        });
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert!(l.start_for_value(&a).is_ok());
        assert!(l.start_for_value(&a).is_ok());
        match l.start_for_value(&a) {
            Err(Error::RateLimited { retry_after_secs }) => {
                assert!((1..=60).contains(&retry_after_secs))
            }
            other => panic!("{other:?}"),
        }
        assert!(
            l.start_for_value(&b).is_ok(),
            "another value has its own bucket"
        );
    }

    #[test]
    fn addresses_count_per_64_and_unknown_peers_are_not_counted() {
        let l = SignInLimiter::new(&SignInLimits {
            verify_per_peer: rate(1, 1),
            ..SignInLimits::default()
        });
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        assert!(l.verify_from(Some(a)).is_ok());
        assert!(l.verify_from(Some(b)).is_err(), "same /64");
        assert!(l.verify_from(None).is_ok());
        assert!(l.start_from(Some(a)).is_ok(), "starts are not limited here");
    }
}
