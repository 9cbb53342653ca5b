//! The staff credential check the console calls: name, password and TOTP
//! code in; the account, or a refusal that gives nothing away, out.
//!
//! What the caller is told (and why):
//! - [`SignInError::Refused`] for everything that is wrong: an unknown
//!   name, a wrong password, a wrong or replayed code, and also a disabled
//!   or locked account unless *both* factors were right. So the answer says
//!   neither which part was wrong nor whether the account exists, and a
//!   locked account is no oracle: were "locked" said after the right
//!   password alone, an attacker could go on testing passwords through the
//!   lock.
//! - [`SignInError::Locked`] / [`SignInError::Disabled`] only to someone who
//!   gave the right password *and* a fresh right code, i.e. the account's
//!   owner (or someone holding both factors, who learns only that they
//!   cannot use them yet). Telling them saves a call to the help desk.
//! - The cost is the same whether the name exists or not: argon2 runs
//!   against a dummy hash for an unknown name ([`crate::identity::SecretHasher`]),
//!   and every attempt is audited. What differs is a sub-millisecond TOTP
//!   check and, for a known account, one row update for the failure count,
//!   both small beside argon2's tens of milliseconds.
//!
//! The audit entry (reasons: `unknown_account`, `wrong_password`,
//! `wrong_code`, `replayed_code`, `disabled`, `locked`, `busy`) is written
//! after the account's row is updated and before the answer is released.

use std::net::IpAddr;

use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{entries, open_totp, StaffAccount};
use crate::{
    domain::StaffName,
    identity::{
        lockout::Lockout, password::could_be_a_password, secret_hash::HashError, totp::CodeCheck,
    },
    service::{Error, Services},
    store::{
        self, from_micros,
        staff::{LockoutRow, StaffRow},
        to_micros,
    },
};

/// Why a sign-in did not succeed, as the caller may learn it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignInError {
    /// The name, password or code is not right (which, is not said).
    #[error("the name, password or code is not right")]
    Refused,
    /// Right password and code, but the account is locked after repeated
    /// failures until `until`.
    #[error("the account is locked after repeated failed sign-ins; try again later")]
    Locked { until: OffsetDateTime },
    /// Right password and code, but the account is disabled.
    #[error("the account is disabled")]
    Disabled,
    /// Every password-hashing slot stayed busy: try again in a moment.
    #[error("sign-in is busy; try again in a moment")]
    Busy,
    /// The database or the audit log is unavailable (the cause is logged).
    #[error("sign-in is unavailable; try again later")]
    Unavailable,
}

impl SignInError {
    /// The refusal as one word (a label of `/metrics`).
    pub fn code(&self) -> &'static str {
        match self {
            SignInError::Refused => "refused",
            SignInError::Locked { .. } => "locked",
            SignInError::Disabled => "disabled",
            SignInError::Busy => "busy",
            SignInError::Unavailable => "unavailable",
        }
    }
}

impl From<Error> for SignInError {
    fn from(_: Error) -> Self {
        SignInError::Unavailable
    }
}

/// Why both factors were right and the account still may not sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    Disabled,
    Locked,
}

/// What one attempt on an existing account comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Signed in with the code of `step`.
    Allow { step: i64 },
    /// Both factors right (the code's `step` is used up), but refused.
    Refuse { why: Refusal, step: i64 },
    /// Something was wrong; `counts` whether it counts towards a lock.
    Fail { reason: &'static str, counts: bool },
}

/// The decision, from what was checked (pure; tested below).
fn decide(disabled: bool, locked: bool, password_ok: bool, code: CodeCheck) -> Verdict {
    let both = match code {
        CodeCheck::Valid { step } if password_ok => Some(step),
        _ => None,
    };
    let blocked = if disabled {
        Some((Refusal::Disabled, "disabled"))
    } else if locked {
        Some((Refusal::Locked, "locked"))
    } else {
        None
    };
    if let Some((why, reason)) = blocked {
        return match both {
            Some(step) => Verdict::Refuse { why, step },
            None => Verdict::Fail {
                reason,
                counts: false,
            },
        };
    }
    let reason = match (password_ok, code) {
        (true, CodeCheck::Valid { step }) => return Verdict::Allow { step },
        (false, _) => "wrong_password",
        (true, CodeCheck::Replayed) => "replayed_code",
        (true, CodeCheck::Wrong) => "wrong_code",
    };
    Verdict::Fail {
        reason,
        counts: true,
    }
}

/// Checks a staff member's name, password and TOTP code at the vault's
/// clock; `peer` is the address the attempt came from (recorded in the
/// audit entry). Returns the account on success; a refusal is counted
/// for `/metrics` by its kind.
pub async fn sign_in(
    svc: &Services,
    name: &str,
    password: Zeroizing<String>,
    code: &str,
    peer: Option<IpAddr>,
) -> Result<StaffAccount, SignInError> {
    attempt(svc, name, password, code, peer)
        .await
        .inspect_err(|e| svc.metrics.auth_failure("staff_sign_in", e.code()))
}

async fn attempt(
    svc: &Services,
    name: &str,
    password: Zeroizing<String>,
    code: &str,
    peer: Option<IpAddr>,
) -> Result<StaffAccount, SignInError> {
    let row = match StaffName::parse(name) {
        Ok(name) => store::staff::by_name(&svc.db, name.as_str())
            .await
            .map_err(Error::from)?,
        Err(_) => None,
    };
    // A password longer than any that can be set is wrong; argon2 still runs
    // (on a dummy hash) so that it takes as long as any other.
    let plausible = could_be_a_password(&password);
    let offered = if plausible {
        password
    } else {
        Zeroizing::new(String::new())
    };
    let stored = row
        .as_ref()
        .filter(|_| plausible)
        .map(|r| r.password_hash.as_str());
    let password_ok = match svc.hasher.verify(stored, offered).await {
        Ok(ok) => ok,
        Err(HashError::Busy) => {
            entries::append(svc, entries::sign_in(row.as_ref(), peer, Some("busy"))).await?;
            return Err(SignInError::Busy);
        }
        Err(e) => return Err(Error::internal(&e).into()),
    };
    let Some(row) = row else {
        let entry = entries::sign_in(None, peer, Some("unknown_account"));
        entries::append(svc, entry).await?;
        return Err(SignInError::Refused);
    };
    let now = svc.clock.now();
    let code = open_totp(svc, &row)?.check(code, now.unix_timestamp(), row.last_totp_step);
    let lockout = lockout_of(&row);
    let verdict = decide(
        row.disabled_at.is_some(),
        lockout.is_locked(now),
        password_ok,
        code,
    );
    settle(svc, &row, peer, verdict, now).await
}

/// Records what `verdict` changes on the account, audits it, and answers.
async fn settle(
    svc: &Services,
    row: &StaffRow,
    peer: Option<IpAddr>,
    verdict: Verdict,
    now: OffsetDateTime,
) -> Result<StaffAccount, SignInError> {
    let db = &svc.db;
    match verdict {
        Verdict::Allow { step } => {
            // Claimed only if still newer than the last used step and in the
            // same epoch: the same code sent twice at once signs in once.
            if !store::staff::claim_step(db, row.id, row.epoch, step, true)
                .await
                .map_err(Error::from)?
            {
                return fail(svc, row, peer, "replayed_code", true, now).await;
            }
            entries::append(svc, entries::sign_in(Some(row), peer, None)).await?;
            let mut account = StaffAccount::from_row(row)?;
            account.failed_attempts = 0;
            account.locked_until = None;
            Ok(account)
        }
        Verdict::Refuse { why, step } => {
            store::staff::claim_step(db, row.id, row.epoch, step, false)
                .await
                .map_err(Error::from)?;
            let reason = match why {
                Refusal::Disabled => "disabled",
                Refusal::Locked => "locked",
            };
            entries::append(svc, entries::sign_in(Some(row), peer, Some(reason))).await?;
            Err(match why {
                Refusal::Disabled => SignInError::Disabled,
                Refusal::Locked => SignInError::Locked {
                    until: lockout_of(row).locked_until.unwrap_or(now),
                },
            })
        }
        Verdict::Fail { reason, counts } => fail(svc, row, peer, reason, counts, now).await,
    }
}

/// A failed attempt: counted towards a lock if it `counts`, audited (with
/// `auth.lockout` when it locked the account), refused.
async fn fail(
    svc: &Services,
    row: &StaffRow,
    peer: Option<IpAddr>,
    reason: &'static str,
    counts: bool,
    now: OffsetDateTime,
) -> Result<StaffAccount, SignInError> {
    let locked = if counts {
        count_failure(svc, row, now).await?
    } else {
        None
    };
    entries::append(svc, entries::sign_in(Some(row), peer, Some(reason))).await?;
    if let Some(until) = locked {
        tracing::warn!(user_id = %row.id, "staff account locked after repeated failed sign-ins");
        entries::append(svc, entries::lockout(row, peer, until)).await?;
    }
    Err(SignInError::Refused)
}

/// Counts one failure on the account (from the count in the database, so
/// that failures at the same moment all count); `Some(until)` if this one
/// locked it.
async fn count_failure(
    svc: &Services,
    row: &StaffRow,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, Error> {
    let mut seen = LockoutRow {
        failed_attempts: row.failed_attempts,
        locked_until: row.locked_until,
    };
    // A few rounds at most: each lost round means another failure counted.
    for _ in 0..8 {
        let before = Lockout {
            failures: u32::try_from(seen.failed_attempts).unwrap_or(u32::MAX),
            locked_until: seen.locked_until.map(from_micros),
        };
        let after = before.after_failure(now);
        if after.state == before {
            return Ok(None);
        }
        let next = LockoutRow {
            failed_attempts: i64::from(after.state.failures),
            locked_until: after.state.locked_until.map(to_micros),
        };
        if store::staff::swap_lockout(&svc.db, row.id, seen, next).await? {
            return Ok(after.state.locked_until.filter(|_| after.locked_now));
        }
        let Some(fresh) = store::staff::by_id(&svc.db, row.id).await? else {
            return Ok(None);
        };
        seen = LockoutRow {
            failed_attempts: fresh.failed_attempts,
            locked_until: fresh.locked_until,
        };
    }
    tracing::warn!(user_id = %row.id, "a failed sign-in could not be counted: too many at once");
    Ok(None)
}

fn lockout_of(row: &StaffRow) -> Lockout {
    Lockout {
        failures: u32::try_from(row.failed_attempts).unwrap_or(u32::MAX),
        locked_until: row.locked_until.map(from_micros),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: i64 = 59_000_000;
    const VALID: CodeCheck = CodeCheck::Valid { step: STEP };

    #[test]
    fn both_factors_right_on_an_open_account_signs_in() {
        assert_eq!(
            decide(false, false, true, VALID),
            Verdict::Allow { step: STEP }
        );
    }

    #[test]
    fn each_wrong_factor_fails_and_counts() {
        for (password_ok, code, reason) in [
            (false, VALID, "wrong_password"),
            (false, CodeCheck::Wrong, "wrong_password"),
            (true, CodeCheck::Wrong, "wrong_code"),
            (true, CodeCheck::Replayed, "replayed_code"),
        ] {
            assert_eq!(
                decide(false, false, password_ok, code),
                Verdict::Fail {
                    reason,
                    counts: true
                }
            );
        }
    }

    #[test]
    fn a_locked_or_disabled_account_says_so_only_to_both_factors() {
        for (disabled, locked, why, reason) in [
            (true, false, Refusal::Disabled, "disabled"),
            (true, true, Refusal::Disabled, "disabled"),
            (false, true, Refusal::Locked, "locked"),
        ] {
            assert_eq!(
                decide(disabled, locked, true, VALID),
                Verdict::Refuse { why, step: STEP }
            );
            for (password_ok, code) in [
                (true, CodeCheck::Wrong),
                (true, CodeCheck::Replayed),
                (false, VALID),
                (false, CodeCheck::Wrong),
            ] {
                // The right password alone learns nothing, and nothing counts.
                assert_eq!(
                    decide(disabled, locked, password_ok, code),
                    Verdict::Fail {
                        reason,
                        counts: false
                    }
                );
            }
        }
    }
}
