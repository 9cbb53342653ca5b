//! Managing staff accounts on the vault host: `arkku users add | list |
//! disable | reset-password | reset-totp`.
//!
//! These run as the [`Operator`], who holds the vault's key files, like the
//! key commands; there is no HTTP route for them. Each is audited (`user.*`,
//! allow or deny with the error code) under the operator's name, with the
//! account's id and name, never a password, hash, secret or URI. A change is
//! committed to the audit log before it is made.
//!
//! Disabling is final for the account (a new one can be added under another
//! name): it is the answer to a leaver or a compromise, and a switch back
//! would make it one command from undone. A password or TOTP reset, on the
//! other hand, is how an admin lifts a lock (see [`crate::identity::lockout`]).
//! Disabling and both resets move the account's epoch on, which ends its
//! console sessions.

use std::fmt;

use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{totp_seal, StaffAccount};
use crate::{
    audit::Action,
    domain::{StaffName, StaffRole},
    identity::{password::check_new_password, secret_hash::HashError, totp::TotpSecret},
    service::{
        audited::{finish, AuditScope},
        operator::Operator,
        Error, Services,
    },
    store::{
        self,
        staff::{StaffRow, NAME_UNIQUE},
        to_micros, StoreError,
    },
};

/// A new account or a new TOTP secret, with the URI to enrol it in an
/// authenticator app. The URI holds the secret: show it once, to its owner.
pub struct Enrolment {
    pub account: StaffAccount,
    /// `otpauth://totp/arkku:NAME?secret=…&issuer=arkku`.
    pub otpauth_uri: Zeroizing<String>,
}

impl fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enrolment")
            .field("account", &self.account)
            .field("otpauth_uri", &"<redacted>")
            .finish()
    }
}

/// Runs one operator operation inside its `user.*` entry.
async fn audited<T>(
    svc: &Services,
    op: &Operator,
    action: Action,
    run: impl AsyncFnOnce(&mut AuditScope) -> Result<T, Error>,
) -> Result<T, Error> {
    let mut scope = AuditScope::for_actor(op.actor().clone(), action);
    let outcome = run(&mut scope).await;
    finish(svc, scope, outcome).await
}

fn parse_name(name: &str, scope: &mut AuditScope) -> Result<StaffName, Error> {
    let name = StaffName::parse(name).map_err(|e| Error::InvalidRequest(e.to_string()))?;
    scope.detail("name", name.as_str());
    Ok(name)
}

fn check_password(password: &str) -> Result<(), Error> {
    check_new_password(password).map_err(|e| Error::InvalidRequest(e.to_string()))
}

async fn hash(svc: &Services, password: Zeroizing<String>) -> Result<String, Error> {
    svc.hasher.hash(password).await.map_err(|e| match e {
        HashError::Busy => Error::RateLimited {
            retry_after_secs: 1,
        },
        other => Error::internal(&other),
    })
}

/// The account named `name`, enabled (a disabled account is not changed).
async fn enabled_account(
    svc: &Services,
    name: &StaffName,
    scope: &mut AuditScope,
) -> Result<StaffRow, Error> {
    let row = store::staff::by_name(&svc.db, name.as_str())
        .await?
        .ok_or(Error::NotFound)?;
    scope.detail("user_id", row.id.to_string());
    if row.disabled_at.is_some() {
        return Err(Error::InvalidRequest(format!(
            "the staff account {name} is disabled"
        )));
    }
    Ok(row)
}

/// The account `id` as it is after a change.
async fn reread(svc: &Services, id: Uuid) -> Result<StaffAccount, Error> {
    let row = store::staff::by_id(&svc.db, id)
        .await?
        .ok_or(Error::NotFound)?;
    StaffAccount::from_row(&row)
}

/// A change that found the account gone or disabled meanwhile.
fn changed_meanwhile(name: &StaffName) -> Error {
    Error::InvalidRequest(format!("the staff account {name} was disabled meanwhile"))
}

/// A fresh TOTP secret for account `id`: sealed for storage, and its URI.
fn new_totp(
    svc: &Services,
    id: Uuid,
    name: &StaffName,
) -> Result<(Vec<u8>, Zeroizing<String>), Error> {
    let secret = TotpSecret::generate().map_err(|e| Error::internal(&e))?;
    let sealed = totp_seal(svc)?
        .seal(id, secret.expose())
        .map_err(|e| Error::internal(&e))?;
    let uri = secret.otpauth_uri(name).map_err(|e| Error::internal(&e))?;
    Ok((sealed, uri))
}

fn now(svc: &Services) -> (OffsetDateTime, i64) {
    let now = svc.clock.now();
    (now, to_micros(now))
}

/// `arkku users add NAME --role compliance|admin`: a new account with this
/// password (at least 12 characters) and a new TOTP secret.
pub async fn add(
    svc: &Services,
    op: &Operator,
    name: &str,
    role: &str,
    password: Zeroizing<String>,
) -> Result<Enrolment, Error> {
    audited(svc, op, Action::UserCreate, async |scope| {
        let name = parse_name(name, scope)?;
        let role = StaffRole::parse(role).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        scope.detail("role", role.as_str());
        check_password(&password)?;
        let taken = || Error::InvalidRequest(format!("a staff account named {name} exists"));
        if store::staff::by_name(&svc.db, name.as_str())
            .await?
            .is_some()
        {
            return Err(taken());
        }
        let phc = hash(svc, password).await?;
        let id = Uuid::now_v7();
        let (totp_secret, otpauth_uri) = new_totp(svc, id, &name)?;
        let (_, at) = now(svc);
        scope.detail("user_id", id.to_string());
        scope.commit_before_write(svc).await?;
        let row = StaffRow {
            id,
            name: name.as_str().to_owned(),
            role: role.as_str().to_owned(),
            password_hash: phc,
            totp_secret,
            disabled_at: None,
            failed_attempts: 0,
            locked_until: None,
            last_totp_step: None,
            epoch: 1,
            created_at: at,
            updated_at: at,
        };
        store::staff::insert(&svc.db, &row)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(NAME_UNIQUE) => taken(),
                other => other.into(),
            })?;
        Ok(Enrolment {
            account: StaffAccount::from_row(&row)?,
            otpauth_uri,
        })
    })
    .await
}

/// `arkku users list`: every account, by name (no hash, no secret).
pub async fn list(svc: &Services, op: &Operator) -> Result<Vec<StaffAccount>, Error> {
    audited(svc, op, Action::UserRead, async |scope| {
        let accounts = store::staff::list(&svc.db)
            .await?
            .iter()
            .map(StaffAccount::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        scope.detail("count", accounts.len());
        Ok(accounts)
    })
    .await
}

/// `arkku users disable NAME`: the account can no longer sign in, and its
/// console sessions end.
pub async fn disable(svc: &Services, op: &Operator, name: &str) -> Result<StaffAccount, Error> {
    audited(svc, op, Action::UserDisable, async |scope| {
        let name = parse_name(name, scope)?;
        let row = enabled_account(svc, &name, scope).await?;
        scope.commit_before_write(svc).await?;
        if !store::staff::disable(&svc.db, row.id, now(svc).1).await? {
            return Err(changed_meanwhile(&name));
        }
        reread(svc, row.id).await
    })
    .await
}

/// `arkku users reset-password NAME`: a new password; clears the lockout and
/// ends the account's console sessions.
pub async fn reset_password(
    svc: &Services,
    op: &Operator,
    name: &str,
    password: Zeroizing<String>,
) -> Result<StaffAccount, Error> {
    audited(svc, op, Action::UserResetPassword, async |scope| {
        let name = parse_name(name, scope)?;
        check_password(&password)?;
        let row = enabled_account(svc, &name, scope).await?;
        let phc = hash(svc, password).await?;
        scope.commit_before_write(svc).await?;
        if !store::staff::set_password(&svc.db, row.id, &phc, now(svc).1).await? {
            return Err(changed_meanwhile(&name));
        }
        reread(svc, row.id).await
    })
    .await
}

/// `arkku users reset-totp NAME`: a new TOTP secret (the old one's codes stop
/// working); clears the lockout and ends the account's console sessions.
pub async fn reset_totp(svc: &Services, op: &Operator, name: &str) -> Result<Enrolment, Error> {
    audited(svc, op, Action::UserResetTotp, async |scope| {
        let name = parse_name(name, scope)?;
        let row = enabled_account(svc, &name, scope).await?;
        let (sealed, otpauth_uri) = new_totp(svc, row.id, &name)?;
        scope.commit_before_write(svc).await?;
        if !store::staff::set_totp(&svc.db, row.id, &sealed, now(svc).1).await? {
            return Err(changed_meanwhile(&name));
        }
        Ok(Enrolment {
            account: reread(svc, row.id).await?,
            otpauth_uri,
        })
    })
    .await
}
