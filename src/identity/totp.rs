//! Time-based one-time codes (RFC 6238) for staff accounts: the second
//! factor that makes a stolen or reused password alone useless.
//!
//! The parameters are the ones every authenticator app understands without
//! being told: HMAC-SHA-1, 6 digits, 30-second steps. A code is accepted for
//! the step it was made in and one step either side (RFC 6238 §5.2's
//! allowance for clock drift and typing time), and a step once used is never
//! accepted again for the account, nor any step before it (§5.2: "the
//! verifier MUST NOT accept the second attempt of the same OTP"). The time is
//! the vault's clock, passed in; the codes themselves come from `totp-rs`.

use std::fmt;

use ring::rand::{SecureRandom, SystemRandom};
use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::domain::StaffName;

/// Digits per code.
pub const DIGITS: usize = 6;
/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Steps accepted either side of the current one.
pub const WINDOW: i64 = 1;
/// Bytes of a new secret: 160 bits, what RFC 4226 §4 recommends.
pub const SECRET_LEN: usize = 20;
/// The issuer named in the `otpauth://` URI, which an authenticator app
/// shows beside the account name.
pub const ISSUER: &str = "arkku";

/// Why no secret could be made or used.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    #[error("no randomness for a TOTP secret")]
    Random,
    /// A stored secret of the wrong length (a tampered row).
    #[error("the stored TOTP secret is malformed")]
    Malformed,
}

/// A TOTP secret, wiped on drop. Debug prints nothing of it.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

/// What a code said, checked against an account's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// Right, for this step, which has not been used before.
    Valid { step: i64 },
    /// Right for a step already used (or older than the last one used).
    Replayed,
    /// Not a code of this secret in the window, or not six digits.
    Wrong,
}

impl TotpSecret {
    /// A new random secret (from ring's system generator).
    pub fn generate() -> Result<Self, TotpError> {
        let mut bytes = Zeroizing::new(vec![0u8; SECRET_LEN]);
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| TotpError::Random)?;
        Ok(TotpSecret(bytes))
    }

    /// A secret read back from storage.
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Result<Self, TotpError> {
        if bytes.len() != SECRET_LEN {
            return Err(TotpError::Malformed);
        }
        Ok(TotpSecret(bytes))
    }

    /// The raw secret, to seal it for storage.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, account: &str) -> Result<TOTP, TotpError> {
        TOTP::new(
            Algorithm::SHA1,
            DIGITS,
            0,
            STEP_SECS.unsigned_abs(),
            self.0.to_vec(),
            Some(ISSUER.to_owned()),
            account.to_owned(),
        )
        .map_err(|_| TotpError::Malformed)
    }

    /// The `otpauth://totp/arkku:NAME?secret=…&issuer=arkku` URI that an
    /// authenticator app reads (from its QR code). It holds the secret.
    pub fn otpauth_uri(&self, account: &StaffName) -> Result<Zeroizing<String>, TotpError> {
        Ok(Zeroizing::new(self.totp(account.as_str())?.get_url()))
    }

    /// The code of `step` (for tests and the console's own checks).
    pub fn code_at_step(&self, step: i64) -> Result<Zeroizing<String>, TotpError> {
        let time = step.saturating_mul(STEP_SECS).max(0).unsigned_abs();
        Ok(Zeroizing::new(self.totp("")?.generate(time)))
    }

    /// Checks `code` at `now_unix` (seconds) for an account whose last used
    /// step is `last_used`. Spaces inside the code are ignored (apps show
    /// `123 456`); anything but six digits is [`CodeCheck::Wrong`]. Every
    /// step of the window is compared (in constant time, by `totp-rs`),
    /// whatever matched first.
    pub fn check(&self, code: &str, now_unix: i64, last_used: Option<i64>) -> CodeCheck {
        let code: Zeroizing<String> = Zeroizing::new(code.chars().filter(|c| *c != ' ').collect());
        let Ok(totp) = self.totp("") else {
            return CodeCheck::Wrong;
        };
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return CodeCheck::Wrong;
        }
        let now_step = now_unix.div_euclid(STEP_SECS);
        let mut verdict = CodeCheck::Wrong;
        for step in (now_step - WINDOW..=now_step + WINDOW).rev() {
            let Ok(time) = u64::try_from(step.saturating_mul(STEP_SECS)) else {
                continue;
            };
            if !totp.check(&code, time) {
                continue;
            }
            let fresh = last_used.is_none_or(|last| step > last);
            verdict = match (verdict, fresh) {
                (CodeCheck::Valid { .. }, _) => verdict,
                (_, true) => CodeCheck::Valid { step },
                (_, false) => CodeCheck::Replayed,
            };
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SHA-1 seed of RFC 6238 Appendix B.
    fn rfc_secret() -> TotpSecret {
        TotpSecret(Zeroizing::new(b"12345678901234567890".to_vec()))
    }

    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        // Appendix B, SHA-1, the last six of the eight digits.
        let s = rfc_secret();
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(*s.code_at_step(time / STEP_SECS).unwrap(), code, "T={time}");
            assert_eq!(
                s.check(code, time, None),
                CodeCheck::Valid {
                    step: time / STEP_SECS
                },
                "T={time}"
            );
        }
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_and_no_further() {
        let s = rfc_secret();
        let now = 1_234_567_890;
        let step = now / STEP_SECS;
        for offset in [-1, 0, 1] {
            let code = s.code_at_step(step + offset).unwrap();
            assert_eq!(
                s.check(&code, now, None),
                CodeCheck::Valid {
                    step: step + offset
                },
                "offset {offset}"
            );
        }
        for offset in [-3, -2, 2, 3] {
            let code = s.code_at_step(step + offset).unwrap();
            assert_eq!(
                s.check(&code, now, None),
                CodeCheck::Wrong,
                "offset {offset}"
            );
        }
    }

    #[test]
    fn a_used_step_and_the_steps_before_it_are_replays() {
        let s = rfc_secret();
        let now = 1_234_567_890;
        let step = now / STEP_SECS;
        let current = s.code_at_step(step).unwrap();
        assert_eq!(s.check(&current, now, Some(step)), CodeCheck::Replayed);
        let previous = s.code_at_step(step - 1).unwrap();
        assert_eq!(s.check(&previous, now, Some(step)), CodeCheck::Replayed);
        // The next step's code is still good after the current one was used.
        let next = s.code_at_step(step + 1).unwrap();
        assert_eq!(
            s.check(&next, now, Some(step)),
            CodeCheck::Valid { step: step + 1 }
        );
    }

    #[test]
    fn anything_but_six_digits_is_wrong_and_spaces_are_ignored() {
        let s = rfc_secret();
        let now = 1_234_567_890;
        assert_eq!(
            s.check("005 924", now, None),
            CodeCheck::Valid {
                step: now / STEP_SECS
            }
        );
        for bad in [
            "",
            "5924",
            "0059245",
            "00592a",
            "٠٠٥٩٢٤",
            "005924\n",
            "-05924",
        ] {
            assert_eq!(s.check(bad, now, None), CodeCheck::Wrong, "{bad:?}");
        }
    }

    #[test]
    fn the_otpauth_uri_names_issuer_and_account_and_round_trips() {
        let s = TotpSecret::generate().unwrap();
        let name = StaffName::parse("anna@shop.example").unwrap();
        let uri = s.otpauth_uri(&name).unwrap();
        assert!(
            uri.starts_with("otpauth://totp/arkku:anna%40shop.example?secret="),
            "{}",
            *uri
        );
        assert!(uri.contains("issuer=arkku"), "{}", *uri);
        let parsed = TOTP::from_url(uri.as_str()).unwrap();
        assert_eq!(parsed.secret, s.expose());
        assert_eq!((parsed.digits, parsed.step), (DIGITS, 30));
    }

    #[test]
    fn stored_secrets_of_the_wrong_length_are_refused_and_debug_is_redacted() {
        assert!(TotpSecret::from_bytes(Zeroizing::new(vec![1; 16])).is_err());
        let s = TotpSecret::from_bytes(Zeroizing::new(vec![7; SECRET_LEN])).unwrap();
        assert_eq!(format!("{s:?}"), "TotpSecret(<redacted>)");
    }
}
