//! Staff accounts: the compliance officers and operators who sign in to the
//! console with a password and a TOTP code (README, "Staff accounts").
//!
//! - [`manage`]: `arkku users add | list | disable | reset-password |
//!   reset-totp`, run by the [`Operator`](super::operator::Operator) on the
//!   vault host and audited as `user.*` under the operator's name.
//! - [`sign_in`]: the credential check the console calls, audited as
//!   `auth.sign_in` (and `auth.lockout`), and [`account`], which a console
//!   session calls on each request to learn whether it still stands.
//!
//! What is stored: an argon2id hash of the password ([`Services::hasher`]),
//! and the TOTP secret sealed under a key derived from the vault's
//! root-wrapped `_index` key ([`crate::crypto::secret_seal`]), bound to the
//! account's id. Neither a password, a secret nor a code is ever logged,
//! audited or returned, except the enrolment URI that `add` and
//! `reset-totp` hand to the operator once.

mod entries;
pub mod manage;
pub mod sign_in;

use time::OffsetDateTime;
use uuid::Uuid;

pub use manage::{add, disable, list, reset_password, reset_totp, Enrolment};
pub use sign_in::{sign_in, SignInError};

use super::{Error, Services};
use crate::{
    crypto::secret_seal::{SecretSeal, STAFF_TOTP_LABEL},
    domain::{StaffName, StaffRole},
    identity::{lockout::Lockout, totp::TotpSecret},
    store::{self, from_micros, staff::StaffRow},
};

/// A staff account as the console and the CLI see it: no hash, no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffAccount {
    pub id: Uuid,
    pub name: StaffName,
    pub role: StaffRole,
    /// When it was disabled; `None` while it may sign in.
    pub disabled_at: Option<OffsetDateTime>,
    /// Failures in a row since the last success, lock or reset.
    pub failed_attempts: u32,
    /// Until when it is (or was) locked.
    pub locked_until: Option<OffsetDateTime>,
    /// Moves on at every disable and every password or TOTP reset. A console
    /// session keeps the epoch it began in and ends once it differs.
    pub epoch: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl StaffAccount {
    /// Whether the account may sign in (it may still be locked for a while).
    pub fn enabled(&self) -> bool {
        self.disabled_at.is_none()
    }

    /// Whether the account is locked at `now`.
    pub fn locked_at(&self, now: OffsetDateTime) -> bool {
        self.lockout().is_locked(now)
    }

    /// Whether a console session begun in `epoch` still stands: the account
    /// is enabled and nothing was reset since. (A lock does not end a
    /// session: it stops new sign-ins, which someone else may have caused.)
    pub fn admits_session(&self, epoch: i64) -> bool {
        self.enabled() && self.epoch == epoch
    }

    fn lockout(&self) -> Lockout {
        Lockout {
            failures: self.failed_attempts,
            locked_until: self.locked_until,
        }
    }

    /// The account of a stored row; a row the application did not write (an
    /// unknown name or role) is an internal error, not an account.
    fn from_row(row: &StaffRow) -> Result<Self, Error> {
        let name = StaffName::parse(&row.name)
            .map_err(|_| Error::internal(&"a staff_users row holds a malformed name"))?;
        let role = StaffRole::parse(&row.role)
            .map_err(|_| Error::internal(&"a staff_users row holds an unknown role"))?;
        Ok(StaffAccount {
            id: row.id,
            name,
            role,
            disabled_at: row.disabled_at.map(from_micros),
            failed_attempts: u32::try_from(row.failed_attempts).unwrap_or(u32::MAX),
            locked_until: row.locked_until.map(from_micros),
            epoch: row.epoch,
            created_at: from_micros(row.created_at),
            updated_at: from_micros(row.updated_at),
        })
    }
}

/// The account `id` as it is now, for a console session's check on every
/// request ([`StaffAccount::admits_session`]); `None` if there is none. Not
/// audited: it reads no customer data, and an entry per request would bury
/// the log.
pub async fn account(svc: &Services, id: Uuid) -> Result<Option<StaffAccount>, Error> {
    store::staff::by_id(&svc.db, id)
        .await?
        .as_ref()
        .map(StaffAccount::from_row)
        .transpose()
}

/// The key that seals staff TOTP secrets, derived from the keyring's PRK.
fn totp_seal(svc: &Services) -> Result<SecretSeal, Error> {
    let prk = svc.keyring.index_prk()?;
    SecretSeal::derive(&prk, STAFF_TOTP_LABEL).map_err(|e| Error::internal(&e))
}

/// The TOTP secret of a stored row.
fn open_totp(svc: &Services, row: &StaffRow) -> Result<TotpSecret, Error> {
    let bytes = totp_seal(svc)?
        .open(row.id, &row.totp_secret)
        .map_err(|e| Error::internal(&format_args!("staff account {}: {e}", row.id)))?;
    TotpSecret::from_bytes(bytes).map_err(|e| Error::internal(&e))
}
