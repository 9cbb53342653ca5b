//! A per-address limit on failed console sign-ins, on top of the account
//! lockout of [`crate::service::staff`]: the lockout protects one account
//! from many guesses, this protects many accounts from one address (and
//! spares argon2 the work). Counted per address as the connection edge
//! counts it ([`crate::server::peer_key`]: IPv4 address, IPv6 /64), in a
//! fixed window on the vault's clock; each `serve` process counts on its own.

use std::{collections::HashMap, net::IpAddr, sync::Mutex};

use time::{Duration, OffsetDateTime};

/// Failures an address may have in one window.
pub const MAX_FAILURES: u32 = 20;
/// The window.
pub const WINDOW: Duration = Duration::minutes(15);
/// Addresses remembered before expired windows are forgotten.
const PRUNE_AT: usize = 4096;

/// Failed sign-ins per address in the current window.
#[derive(Debug, Default)]
pub struct Throttle(Mutex<HashMap<IpAddr, (OffsetDateTime, u32)>>);

impl Throttle {
    /// Whether `peer` may try to sign in at `now` (an unknown peer may).
    pub fn allows(&self, peer: Option<IpAddr>, now: OffsetDateTime) -> bool {
        let Some(ip) = peer.map(crate::server::peer_key) else {
            return true;
        };
        let Ok(map) = self.0.lock() else { return true };
        match map.get(&ip) {
            Some(&(start, failures)) => now - start >= WINDOW || failures < MAX_FAILURES,
            None => true,
        }
    }

    /// Counts a failed sign-in from `peer` at `now`.
    pub fn failed(&self, peer: Option<IpAddr>, now: OffsetDateTime) {
        let Some(ip) = peer.map(crate::server::peer_key) else {
            return;
        };
        let Ok(mut map) = self.0.lock() else { return };
        if map.len() >= PRUNE_AT {
            map.retain(|_, (start, _)| now - *start < WINDOW);
        }
        let entry = map.entry(ip).or_insert((now, 0));
        if now - entry.0 >= WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn an_address_is_held_back_after_its_failures_until_the_window_ends() {
        let t0 = datetime!(2026-12-02 10:00 UTC);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t = Throttle::default();
        for _ in 0..MAX_FAILURES {
            assert!(t.allows(Some(a), t0));
            t.failed(Some(a), t0);
        }
        assert!(!t.allows(Some(a), t0 + Duration::minutes(14)));
        assert!(t.allows(Some(b), t0), "another address is not held back");
        assert!(t.allows(None, t0));
        assert!(t.allows(Some(a), t0 + WINDOW));
        t.failed(Some(a), t0 + WINDOW);
        assert!(t.allows(Some(a), t0 + WINDOW), "a new window starts afresh");
    }
}
