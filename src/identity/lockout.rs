//! The lockout rule of staff sign-in: ten failures in a
//! row lock the account for 15 minutes; a success starts the count again.
//!
//! Pure, so that the rule is tested here and the store only applies its
//! outcome (a conditional update, so two failures at once count twice).
//!
//! - The tenth failure locks and sets the count back to zero: after the
//!   lock, ten more tries are needed to lock again.
//! - A failure while locked changes nothing: the lock is not extended, so it
//!   always ends 15 minutes after it began (an attacker can lock the account
//!   again then, but never for longer by trying harder).
//! - An admin's password or TOTP reset clears the count and the lock.

use std::time::Duration;

use time::OffsetDateTime;

/// Failures in a row that lock an account.
pub const MAX_FAILURES: u32 = 10;
/// How long a lock lasts.
pub const LOCK_FOR: Duration = Duration::from_secs(15 * 60);

/// An account's failure count and lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Lockout {
    /// Failures since the last success, lock or reset.
    pub failures: u32,
    /// Until when the account is locked, if it is (or was: a past time is
    /// no lock).
    pub locked_until: Option<OffsetDateTime>,
}

/// What one failure did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterFailure {
    pub state: Lockout,
    /// This failure locked the account (the moment for `auth.lockout`).
    pub locked_now: bool,
}

impl Lockout {
    /// Whether the account is locked at `now`.
    pub fn is_locked(&self, now: OffsetDateTime) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// The state after a failed attempt at `now`.
    pub fn after_failure(self, now: OffsetDateTime) -> AfterFailure {
        if self.is_locked(now) {
            return AfterFailure {
                state: self,
                locked_now: false,
            };
        }
        let failures = self.failures.saturating_add(1);
        if failures >= MAX_FAILURES {
            AfterFailure {
                state: Lockout {
                    failures: 0,
                    locked_until: Some(now + LOCK_FOR),
                },
                locked_now: true,
            }
        } else {
            AfterFailure {
                state: Lockout {
                    failures,
                    locked_until: None,
                },
                locked_now: false,
            }
        }
    }

    /// The state after a successful sign-in or a reset.
    pub fn cleared() -> Lockout {
        Lockout::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-02 10:00 UTC);

    fn fail(times: u32, mut state: Lockout, now: OffsetDateTime) -> (Lockout, u32) {
        let mut locks = 0;
        for _ in 0..times {
            let after = state.after_failure(now);
            state = after.state;
            locks += u32::from(after.locked_now);
        }
        (state, locks)
    }

    #[test]
    fn nine_failures_do_not_lock_and_the_tenth_does_for_fifteen_minutes() {
        let (nine, locks) = fail(9, Lockout::default(), T0);
        assert_eq!((nine.failures, locks), (9, 0));
        assert!(!nine.is_locked(T0));
        let tenth = nine.after_failure(T0);
        assert!(tenth.locked_now);
        assert_eq!(tenth.state.failures, 0);
        assert!(tenth.state.is_locked(T0));
        assert!(tenth
            .state
            .is_locked(T0 + LOCK_FOR - Duration::from_secs(1)));
        assert!(!tenth.state.is_locked(T0 + LOCK_FOR));
    }

    #[test]
    fn failures_while_locked_neither_count_nor_extend_the_lock() {
        let (locked, _) = fail(10, Lockout::default(), T0);
        let later = T0 + Duration::from_secs(600);
        let (still, locks) = fail(50, locked, later);
        assert_eq!(still, locked);
        assert_eq!(locks, 0);
        assert!(!still.is_locked(T0 + LOCK_FOR));
    }

    #[test]
    fn after_the_lock_ten_more_failures_are_needed_to_lock_again() {
        let (locked, _) = fail(10, Lockout::default(), T0);
        let after = T0 + LOCK_FOR;
        let (nine, locks) = fail(9, locked, after);
        assert_eq!(locks, 0);
        assert!(!nine.is_locked(after));
        assert!(nine.after_failure(after).locked_now);
    }

    #[test]
    fn a_success_starts_the_count_again() {
        let (nine, _) = fail(9, Lockout::default(), T0);
        let (one, locks) = fail(1, Lockout::cleared(), T0);
        assert_eq!((one.failures, locks), (1, 0));
        assert!(nine.after_failure(T0).locked_now);
        assert!(!one.after_failure(T0).locked_now);
    }
}
