//! Sessions of the web pages: the staff console's and the customer privacy
//! page's (a session names its subject's kind).
//!
//! - The browser holds an opaque 256-bit random id (from ring); the table
//!   holds only its SHA-256, so a copy of the database lets no one in.
//! - A session ends after [`IDLE`] without a request or [`ABSOLUTE`] after
//!   it began, by [`Services::clock`]; an expired row is deleted when it is
//!   next presented, and stale rows whenever a session begins.
//! - A staff session is checked against its account on every request
//!   ([`resume_staff`]): a disable or a reset moves the account's epoch, and
//!   the session ends at once, on every node, because the state is in the
//!   database rather than in the cookie.
//! - A customer session is checked against the customer on every request
//!   ([`resume_customer`]): once the customer is erased (on the page, over
//!   the API or by staff) the session ends, and an erasure on the page
//!   deletes all of the customer's sessions ([`end_all`]).
//!
//! Not audited here: the sign-in that begins a staff session is
//! (`auth.sign_in`, by [`super::staff::sign_in`]); a session reads no
//! customer data by itself.

use std::fmt;

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine as _};
use ring::{digest, hkdf, hmac, rand::SecureRandom};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{staff::StaffAccount, Error, Services};
use crate::store::{self, from_micros, to_micros, web_sessions::SessionRow};

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::minutes(15);
/// A session ends this long after it began, however busy.
pub const ABSOLUTE: Duration = Duration::hours(8);

/// The HKDF label of the key that signs the web forms' CSRF tokens.
const FORM_KEY_LABEL: &str = "arkku.web-forms.v1";

/// Whose session it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    /// A staff account of the console ([`super::staff`]).
    Staff,
    /// A customer on the privacy page.
    Customer,
}

impl SubjectKind {
    fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Staff => "staff",
            SubjectKind::Customer => "customer",
        }
    }
}

/// The id a browser holds in its session cookie. Debug prints nothing of it.
pub struct SessionId(Zeroizing<String>);

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(<redacted>)")
    }
}

impl SessionId {
    /// The id as a cookie carries it; `None` for anything that cannot be one
    /// (so a malformed cookie is no session, not an error).
    pub fn parse(text: &str) -> Option<SessionId> {
        let ok = text.len() == 43
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| SessionId(Zeroizing::new(text.to_owned())))
    }

    /// The cookie value. Secret: only for the `Set-Cookie` header.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    fn hash(&self) -> Vec<u8> {
        digest::digest(&digest::SHA256, self.0.as_bytes())
            .as_ref()
            .to_vec()
    }
}

/// A live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub kind: SubjectKind,
    pub subject_id: Uuid,
    /// The staff account's epoch when the session began (0 for customers).
    pub epoch: i64,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}

/// Whether a session begun at `created` and last used at `seen` still
/// stands at `now`.
pub fn is_live(created: OffsetDateTime, seen: OffsetDateTime, now: OffsetDateTime) -> bool {
    now - seen < IDLE && now - created < ABSOLUTE
}

/// Begins a session for `subject_id` of `kind` (in the staff account's
/// `epoch`); the id goes to the browser once and is not kept.
pub async fn begin(
    svc: &Services,
    kind: SubjectKind,
    subject_id: Uuid,
    epoch: i64,
) -> Result<(SessionId, Session), Error> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    ring::rand::SystemRandom::new()
        .fill(bytes.as_mut())
        .map_err(|_| Error::internal(&"the system random source failed"))?;
    let id = SessionId(Zeroizing::new(URL_SAFE_NO_PAD.encode(bytes.as_ref())));
    let now = svc.clock.now();
    store::web_sessions::delete_stale(&svc.db, to_micros(now - ABSOLUTE), to_micros(now - IDLE))
        .await?;
    let row = SessionRow {
        id_hash: id.hash(),
        subject_kind: kind.as_str().to_owned(),
        subject_id,
        epoch,
        created_at: to_micros(now),
        last_seen_at: to_micros(now),
    };
    store::web_sessions::insert(&svc.db, &row).await?;
    let session = Session {
        kind,
        subject_id,
        epoch,
        created_at: now,
        last_seen_at: now,
    };
    Ok((id, session))
}

/// The live session of `kind` with this id, now marked as used; `None` if
/// there is none, it is another kind's, or it has expired (then it is
/// deleted).
pub async fn resume(
    svc: &Services,
    kind: SubjectKind,
    id: &SessionId,
) -> Result<Option<Session>, Error> {
    let hash = id.hash();
    let Some(row) = store::web_sessions::by_hash(&svc.db, &hash).await? else {
        return Ok(None);
    };
    if row.subject_kind != kind.as_str() {
        return Ok(None);
    }
    let now = svc.clock.now();
    let (created, seen) = (from_micros(row.created_at), from_micros(row.last_seen_at));
    if !is_live(created, seen, now) {
        store::web_sessions::delete(&svc.db, &hash).await?;
        return Ok(None);
    }
    store::web_sessions::touch(&svc.db, &hash, to_micros(now)).await?;
    Ok(Some(Session {
        kind,
        subject_id: row.subject_id,
        epoch: row.epoch,
        created_at: created,
        last_seen_at: now,
    }))
}

/// The live staff session with this id and its account as it is now;
/// `None` (and the session deleted) once the account is disabled, reset or
/// gone.
pub async fn resume_staff(
    svc: &Services,
    id: &SessionId,
) -> Result<Option<(Session, StaffAccount)>, Error> {
    let Some(session) = resume(svc, SubjectKind::Staff, id).await? else {
        return Ok(None);
    };
    match super::staff::account(svc, session.subject_id).await? {
        Some(account) if account.admits_session(session.epoch) => Ok(Some((session, account))),
        _ => {
            end(svc, id).await?;
            Ok(None)
        }
    }
}

/// The live customer session with this id; `None` (and the session
/// deleted) once the customer is erased or gone.
pub async fn resume_customer(svc: &Services, id: &SessionId) -> Result<Option<Session>, Error> {
    let Some(session) = resume(svc, SubjectKind::Customer, id).await? else {
        return Ok(None);
    };
    match store::customers::state(&svc.db, session.subject_id).await? {
        Some(None) => Ok(Some(session)),
        _ => {
            end(svc, id).await?;
            Ok(None)
        }
    }
}

/// Ends every session of `subject_id` of `kind` (a customer's, on erasure).
pub async fn end_all(svc: &Services, kind: SubjectKind, subject_id: Uuid) -> Result<(), Error> {
    store::web_sessions::delete_for_subject(&svc.db, kind.as_str(), subject_id).await?;
    Ok(())
}

/// Ends the session with this id (sign-out); nothing if there is none.
pub async fn end(svc: &Services, id: &SessionId) -> Result<(), Error> {
    store::web_sessions::delete(&svc.db, &id.hash()).await?;
    Ok(())
}

/// The key that signs the web forms' CSRF tokens: derived (HKDF-SHA256)
/// from the vault's root-wrapped blind-index PRK, so every node of a vault
/// has the same key and nothing new needs storing or distributing.
pub fn form_key(svc: &Services) -> Result<hmac::Key, Error> {
    let prk = svc.keyring.index_prk()?;
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, prk.expose_secret());
    let info = [FORM_KEY_LABEL.as_bytes()];
    let okm = prk
        .expand(&info, hmac::HMAC_SHA256)
        .map_err(|_| Error::internal(&"deriving the form key failed"))?;
    Ok(hmac::Key::from(okm))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_session_lives_until_idle_or_absolute_expiry() {
        let t0 = datetime!(2026-12-02 10:00 UTC);
        assert!(is_live(t0, t0, t0));
        assert!(is_live(t0, t0, t0 + Duration::minutes(14)));
        assert!(!is_live(t0, t0, t0 + IDLE));
        let busy = t0 + Duration::hours(8) - Duration::minutes(1);
        assert!(is_live(t0, busy, busy + Duration::seconds(30)));
        assert!(!is_live(t0, busy, t0 + ABSOLUTE));
    }

    #[test]
    fn only_a_well_formed_id_parses() {
        assert!(SessionId::parse(&"a".repeat(43)).is_some());
        assert!(SessionId::parse(&"a".repeat(42)).is_none());
        assert!(SessionId::parse(&format!("{};", "a".repeat(42))).is_none());
        let id = SessionId::parse(&"a".repeat(43)).unwrap();
        assert_eq!(format!("{id:?}"), "SessionId(<redacted>)");
    }
}
