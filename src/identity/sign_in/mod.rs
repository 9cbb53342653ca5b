//! Customer sign-in by one-time code (DESIGN.md §12.3): what the service
//! operations of [`crate::service::sign_in`] need besides the store — the
//! codes and their keys ([`code`]), the rate limits ([`limits`]), the rule
//! that decides a check ([`judge`]) and the handle that wakes the notifier.
//!
//! The rules: a code is 8 digits, lives 10 minutes, allows 5 checks (the
//! sixth fails even with the right code), works once, and is stored only as
//! a keyed hash. A value that matches nobody gets a challenge too, one that
//! never verifies, so that neither answer tells whether the value is known.

pub mod code;
pub mod limits;

use std::{sync::Arc, time::Duration};

use ring::rand::SystemRandom;
use tokio::sync::Notify;
use uuid::Uuid;

pub use code::{OneTimeCode, SignInKeys};
pub use limits::SignInLimiter;

use super::notify::Delivery;
use crate::{crypto::CryptoError, store::Micros};

/// How long a code may be used.
pub const CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// Checks a challenge allows; the next one fails whatever the code.
pub const MAX_ATTEMPTS: i64 = 5;
/// How long the token a code buys lives (capped by `tokens.max_lifetime`).
pub const TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// Sign-in's keys, limits and notifier, held in [`crate::service::Services`].
pub struct SignIn {
    pub keys: Arc<SignInKeys>,
    pub limiter: SignInLimiter,
    /// Where the notifier delivers (read by its worker, [`super::notify::worker`]).
    pub delivery: Arc<Delivery>,
    wake: Arc<Notify>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn")
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

impl SignIn {
    pub fn new(keys: SignInKeys, limiter: SignInLimiter, delivery: Delivery) -> Self {
        SignIn {
            keys: Arc::new(keys),
            limiter,
            delivery: Arc::new(delivery),
            wake: Arc::new(Notify::new()),
            rng: SystemRandom::new(),
        }
    }

    /// A fresh code.
    pub fn new_code(&self) -> Result<OneTimeCode, CryptoError> {
        OneTimeCode::generate(&self.rng)
    }

    /// Tells this process's notifier that a message is waiting, so it is
    /// sent now rather than at the next poll.
    pub fn wake_notifier(&self) {
        self.wake.notify_one();
    }

    /// What the notifier's worker waits on.
    pub fn wake_handle(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }
}

/// Why a check failed. The caller is told none of this (one answer for
/// all); the audit entry records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such challenge (never made, purged after expiry, or its customer erased).
    Unknown,
    /// Already used by a successful check.
    Used,
    Expired,
    /// More than [`MAX_ATTEMPTS`] checks.
    Exhausted,
    /// A wrong code, or a challenge for a value that matched nobody.
    WrongCode,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Unknown => "unknown_challenge",
            Refusal::Used => "already_used",
            Refusal::Expired => "expired",
            Refusal::Exhausted => "attempts_exhausted",
            Refusal::WrongCode => "wrong_code",
        }
    }
}

/// A challenge as one counted check saw it.
#[derive(Debug, Clone, Copy)]
pub struct Checked {
    pub customer_id: Option<Uuid>,
    /// Checks so far, this one included.
    pub attempts: i64,
    pub expires_at: Micros,
    pub used: bool,
    /// Whether the code matched the stored hash (computed in every case, so
    /// that a refusal for another reason takes as long).
    pub code_matches: bool,
}

/// The rule: the customer a check signs in, or why it fails. A used,
/// expired or exhausted challenge fails even with the right code.
pub fn judge(checked: Option<Checked>, now: Micros) -> Result<Uuid, Refusal> {
    let c = checked.ok_or(Refusal::Unknown)?;
    if c.used {
        return Err(Refusal::Used);
    }
    if c.expires_at <= now {
        return Err(Refusal::Expired);
    }
    if c.attempts > MAX_ATTEMPTS {
        return Err(Refusal::Exhausted);
    }
    match (c.code_matches, c.customer_id) {
        (true, Some(customer)) => Ok(customer),
        _ => Err(Refusal::WrongCode),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = 1_800_000_000_000_000;

    fn fresh(attempts: i64, code_matches: bool) -> Checked {
        Checked {
            customer_id: Some(Uuid::nil()),
            attempts,
            expires_at: NOW + 1,
            used: false,
            code_matches,
        }
    }

    #[test]
    fn the_right_code_within_five_checks_signs_in() {
        for n in 1..=MAX_ATTEMPTS {
            assert_eq!(
                judge(Some(fresh(n, true)), NOW),
                Ok(Uuid::nil()),
                "check {n}"
            );
        }
    }

    #[test]
    fn the_sixth_check_fails_even_with_the_right_code() {
        assert_eq!(
            judge(Some(fresh(MAX_ATTEMPTS + 1, true)), NOW),
            Err(Refusal::Exhausted)
        );
    }

    #[test]
    fn used_expired_unknown_and_unmatched_challenges_fail() {
        let used = Checked {
            used: true,
            ..fresh(1, true)
        };
        assert_eq!(judge(Some(used), NOW), Err(Refusal::Used));
        let expired = Checked {
            expires_at: NOW,
            ..fresh(1, true)
        };
        assert_eq!(judge(Some(expired), NOW), Err(Refusal::Expired));
        assert_eq!(judge(None, NOW), Err(Refusal::Unknown));
        assert_eq!(judge(Some(fresh(1, false)), NOW), Err(Refusal::WrongCode));
        let nobody = Checked {
            customer_id: None,
            ..fresh(1, true)
        };
        assert_eq!(judge(Some(nobody), NOW), Err(Refusal::WrongCode));
    }
}
