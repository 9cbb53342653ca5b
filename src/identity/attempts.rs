//! How many secret verifications one client id and one peer address may
//! cause: guessing secrets is refused with 429 and `Retry-After` before
//! argon2 runs, so a burst of wrong secrets costs the vault a map lookup
//! each, not 19 MiB and a core for tens of milliseconds.
//!
//! Every argon2 verification counts, against the client id presented and
//! against the peer's address (an IPv4 address or an IPv6 /64, as the
//! connection caps count them). A correct secret is verified once and then
//! recognised without argon2 ([`super::verified`]), so in practice only
//! failures count. governor's keyed token buckets do the counting, as for
//! the per-actor limits of [`crate::service::ratelimit`]; the state is in
//! this process only, and with several `serve` processes each counts on its
//! own. Behind a proxy every request comes from the proxy's address, so the
//! per-peer limit then counts everybody's failures together.

use std::{
    net::IpAddr,
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use governor::{clock::Clock, DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Verifications one client id may cause at once, then one per
/// [`CLIENT_PERIOD`]: a client's own requests need one per process (see
/// [`super::verified`]), and each costs a core for tens of milliseconds.
pub const CLIENT_BURST: u32 = 3;
pub const CLIENT_PERIOD: Duration = Duration::from_secs(12);
/// Verifications one peer may cause at once, then one per [`PEER_PERIOD`].
pub const PEER_BURST: u32 = 10;
pub const PEER_PERIOD: Duration = Duration::from_secs(3);

/// Forget keys idle long enough to have a full bucket every this many checks.
const PRUNE_EVERY: u64 = 4096;

/// The buckets of one process.
pub struct AttemptLimiter {
    clients: DefaultKeyedRateLimiter<String>,
    peers: DefaultKeyedRateLimiter<IpAddr>,
    clock: governor::clock::DefaultClock,
    checks: AtomicU64,
}

impl std::fmt::Debug for AttemptLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttemptLimiter")
            .field("clients", &self.clients.len())
            .field("peers", &self.peers.len())
            .finish()
    }
}

fn quota(burst: u32, period: Duration) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst)
}

impl Default for AttemptLimiter {
    fn default() -> Self {
        Self::new((CLIENT_BURST, CLIENT_PERIOD), (PEER_BURST, PEER_PERIOD))
    }
}

impl AttemptLimiter {
    /// Buckets of `(burst, period)` per client id and per peer.
    pub fn new(client: (u32, Duration), peer: (u32, Duration)) -> Self {
        AttemptLimiter {
            clients: RateLimiter::keyed(quota(client.0, client.1)),
            peers: RateLimiter::keyed(quota(peer.0, peer.1)),
            clock: governor::clock::DefaultClock::default(),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one verification for `client` from `peer`; `Err(seconds)`
    /// until the next is allowed when either bucket is empty. The peer is
    /// counted first, so that one peer spraying client ids is stopped by
    /// its own bucket.
    pub fn check(&self, client: &str, peer: Option<IpAddr>) -> Result<(), u64> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.clients.retain_recent();
            self.peers.retain_recent();
        }
        if let Some(ip) = peer {
            let key = crate::server::peer_key(ip);
            self.peers.check_key(&key).map_err(|n| self.seconds(&n))?;
        }
        let key: String = client.chars().take(64).collect();
        self.clients.check_key(&key).map_err(|n| self.seconds(&n))
    }

    /// Whole seconds until `not_until`, rounded up: a retry after the
    /// advertised time must be allowed.
    fn seconds(&self, not_until: &governor::NotUntil<governor::clock::QuantaInstant>) -> u64 {
        let wait = not_until.wait_time_from(self.clock.now());
        (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_id_is_refused_after_its_burst_with_the_wait() {
        let l = AttemptLimiter::new((3, Duration::from_secs(60)), (100, Duration::from_secs(1)));
        for _ in 0..3 {
            assert!(l.check("c1", None).is_ok());
        }
        let wait = l.check("c1", None).unwrap_err();
        assert!((1..=60).contains(&wait), "{wait}");
        // Another client is counted apart.
        assert!(l.check("c2", None).is_ok());
    }

    #[test]
    fn a_peer_is_refused_after_its_burst_whatever_the_client_id() {
        let l = AttemptLimiter::new((100, Duration::from_secs(1)), (2, Duration::from_secs(60)));
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(l.check("a", Some(peer)).is_ok());
        assert!(l.check("b", Some(peer)).is_ok());
        assert!(l.check("c", Some(peer)).is_err());
        assert!(l.check("c", Some("192.0.2.2".parse().unwrap())).is_ok());
    }
}
