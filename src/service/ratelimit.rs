//! Per-actor rate limits on lookups and reveals (`limits.toml`), so a valid
//! token cannot enumerate the vault.
//!
//! governor's keyed token buckets (GCRA) do the counting: a well-kept crate
//! with lock-free per-key state, rather than our own bucket arithmetic. An
//! actor is role + sub + client, so two clients acting as one user, or one
//! user in two roles, are counted apart. The state is in this process only:
//! several `serve` processes each count on their own.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::Error as ApiError;
use crate::{
    domain::Role,
    policy::{LimitedAction, Limits},
    token::Actor,
};

/// Forget actors idle long enough to have a full bucket every this many checks.
const PRUNE_EVERY: u64 = 4096;

/// The rate limiters of one process, one per (action, role) with a limit.
pub struct ActorLimiter {
    limiters: HashMap<(LimitedAction, Role), DefaultKeyedRateLimiter<String>>,
    clock: governor::clock::DefaultClock,
    checks: AtomicU64,
}

impl ActorLimiter {
    pub fn new(limits: &Limits) -> Self {
        let limiters = limits
            .rates
            .iter()
            .map(|(&key, rate)| {
                let quota = Quota::per_minute(rate.per_minute).allow_burst(rate.burst);
                (key, RateLimiter::keyed(quota))
            })
            .collect();
        ActorLimiter {
            limiters,
            clock: governor::clock::DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one `action` by `actor`; 429 `rate_limited` (with the seconds
    /// until the next one is allowed) when its bucket is empty.
    pub fn check(&self, action: LimitedAction, actor: &Actor) -> Result<(), ApiError> {
        let Some(limiter) = self.limiters.get(&(action, actor.role)) else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        // NUL cannot occur in a verified sub or client, so keys cannot collide.
        let key = format!(
            "{}\0{}\0{}",
            actor.role.as_str(),
            actor.sub,
            actor.client.as_deref().unwrap_or("")
        );
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            // Round up: retrying after the advertised time must succeed.
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::RateLimited {
                retry_after_secs: secs.max(1),
            }
        })
    }
}
