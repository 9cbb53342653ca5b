//! Safe retries of a write: the first answer to a request carrying an
//! idempotency key is kept, so a client that got no answer (a timeout, a
//! dropped connection) or a 503 may send the same request again without the
//! write happening twice. The JSON API carries the key in the
//! `Idempotency-Key` header of its write POSTs (SECURITY.md, "Retrying
//! safely"; the README's walk through the API).
//!
//! The rules (after the IETF httpapi draft "The Idempotency-Key HTTP Header
//! Field"):
//!
//! - A key is 1 to 255 visible ASCII characters ([`Key::parse`]); keys are
//!   per caller (role, sub and client of the token), so two callers cannot
//!   see each other's answers.
//! - The first request with a key runs ([`claim`]). A successful answer is
//!   kept for [`KEEP_FOR`] ([`keep`]); any other answer changed nothing and
//!   is not kept ([`release`]), so a retry runs again (a 503 is the truth:
//!   see [`super::audited`]).
//! - A retry with the same key and the same request ([`Fingerprint`]) gets
//!   the kept answer again, audited as `request.replay` before it is
//!   released, like any release of data ([`replay`]).
//! - The same key with another request: 422 `idempotency_key_reused`.
//!   While the first request runs: 409 `idempotency_key_in_use`. A request
//!   left in flight by a process that died is taken over after
//!   [`ABANDONED_AFTER`]; it may then run twice (the answer of the first was
//!   never given).
//! - The kept answer is sealed under the customer's profile data key, so it
//!   is encrypted like the customer's data and erasure shreds it: after
//!   erasure a replay answers 410 `customer_erased`.

use std::time::Duration;

use ring::digest;
use uuid::Uuid;

use super::{Caller, Error, Services};
use crate::{
    audit::Action,
    crypto::{FieldContext, FieldKey},
    domain::Actor,
    store::{
        self,
        idempotency::{Begun, Stored},
        Db,
    },
    vault::PROFILE_DOMAIN,
};

/// How long a kept answer is replayed.
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
/// After this, a request still marked in flight is taken to be dead.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(60);

/// The field name bound into the kept answer's AAD.
const FIELD: &str = "idempotent_response";

/// A well-formed idempotency key.
pub struct Key(String);

impl Key {
    /// 400 `invalid_request` unless 1 to 255 visible ASCII characters.
    pub fn parse(bytes: &[u8]) -> Result<Key, Error> {
        if bytes.is_empty() || bytes.len() > 255 || !bytes.iter().all(|b| (0x21..=0x7e).contains(b))
        {
            return Err(Error::InvalidRequest(
                "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
            ));
        }
        Ok(Key(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// What makes two requests the same request: SHA-256 over their method,
/// path, query and body.
pub struct Fingerprint(Vec<u8>);

impl Fingerprint {
    pub fn of(method: &str, path: &str, query: &str, body: &[u8]) -> Fingerprint {
        let mut ctx = digest::Context::new(&digest::SHA256);
        for part in [
            b"arkku.idempotency.v1".as_slice(),
            method.as_bytes(),
            path.as_bytes(),
            query.as_bytes(),
            body,
        ] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        Fingerprint(ctx.finish().as_ref().to_vec())
    }
}

/// A key this request holds while it runs: settle it with [`keep`] or
/// [`release`] (or it is taken over once abandoned).
#[must_use]
pub struct Held {
    record_id: Uuid,
}

/// A kept answer, to be replayed.
pub struct Kept(Stored);

/// What a request with a key does.
pub enum Claim {
    /// Run: the key is new (or its old use expired or was abandoned).
    Run(Held),
    /// Answer again with the first request's answer ([`replay`]).
    Replay(Kept),
}

/// A kept answer as released again.
pub struct Replayed {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Claims `key` for `actor`'s request with `fingerprint`: run it, or replay
/// the answer its first sending got; 422 `idempotency_key_reused` if the key
/// was used for another request, 409 `idempotency_key_in_use` while that
/// request still runs.
pub async fn claim(
    svc: &Services,
    actor: &Actor,
    key: &Key,
    fingerprint: &Fingerprint,
) -> Result<Claim, Error> {
    let now = svc.clock.now();
    let begun = store::idempotency::begin(
        &svc.db,
        &actor_hash(actor),
        &key.0,
        &fingerprint.0,
        store::to_micros(now),
        store::to_micros(now - KEEP_FOR),
        store::to_micros(now - ABANDONED_AFTER),
    )
    .await?;
    match begun {
        Begun::Mismatch => Err(Error::IdempotencyKeyReused),
        Begun::InFlight => Err(Error::IdempotencyKeyInUse),
        Begun::Done(stored) => Ok(Claim::Replay(Kept(stored))),
        Begun::Run { record_id } => Ok(Claim::Run(Held { record_id })),
    }
}

/// The caller, as keys are scoped: a hash, so no identity is stored in clear.
fn actor_hash(a: &Actor) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in [
        a.role.as_str(),
        a.sub.as_str(),
        a.client.as_deref().unwrap_or(""),
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    ctx.finish().as_ref().to_vec()
}

/// Releases a kept answer again, audited (`request.replay`, with the kept
/// status) before it is released. Only the caller whose request it answered
/// can reach it: keys are scoped to their caller. 410 `customer_erased` once
/// the customer's keys are shredded.
pub async fn replay(svc: &Services, caller: &Caller, kept: Kept) -> Result<Replayed, Error> {
    let Kept(stored) = kept;
    svc.audited_for(
        caller,
        Action::RequestReplay,
        stored.customer_id,
        async |_, scope| {
            scope.detail("status", stored.status);
            let body = open(svc, &stored).await?;
            Ok(Replayed {
                status: stored.status,
                body,
            })
        },
    )
    .await
}

/// Keeps the successful answer (`status`, `body`) of the request that holds
/// `held`, sealed under the profile key of the customer it is about: the one
/// the request named, else the one a create's answer names (its `id`). An
/// answer that cannot be kept is only logged: the write happened and its
/// answer goes out; a retry of this key runs again once the key is abandoned.
pub async fn keep(svc: &Services, held: Held, customer: Option<Uuid>, status: u16, body: &[u8]) {
    let customer = customer.or_else(|| {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
            .and_then(|id| Uuid::parse_str(&id).ok())
    });
    let kept = match customer {
        Some(c) => match seal(svc, c, held.record_id, body).await {
            Ok(sealed) => store::idempotency::finish(&svc.db, held.record_id, c, status, &sealed)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        },
        None => Err("the answer names no customer".to_owned()),
    };
    if let Err(e) = kept {
        tracing::warn!(error = %e, "could not keep an answer for its idempotency key");
    }
}

/// Frees the key of a request that changed nothing, so a retry runs again.
/// The database may be what failed the request (a lock, an outage): then it
/// is tried again in the background for a while, so the client's retry finds
/// the key free rather than in flight until [`ABANDONED_AFTER`].
pub async fn release(svc: &Services, held: Held) {
    let record_id = held.record_id;
    if store::idempotency::release(&svc.db, record_id)
        .await
        .is_ok()
    {
        return;
    }
    let db: Db = svc.db.clone();
    // The retries outlive the request; their lines still name it.
    let request_id = super::request::id();
    tokio::spawn(super::request::scope(request_id, async move {
        let mut wait = Duration::from_millis(100);
        while wait < ABANDONED_AFTER {
            tokio::time::sleep(wait).await;
            match store::idempotency::release(&db, record_id).await {
                Ok(()) => return,
                Err(e) => tracing::debug!(error = %e, "an idempotency key is not freed yet"),
            }
            wait *= 2;
        }
        tracing::warn!("could not free an idempotency key; it frees itself when abandoned");
    }));
}

/// Where a kept answer is bound: its customer, the profile key domain, the
/// key's record and [`FIELD`].
fn place(customer: Uuid, record_id: Uuid) -> FieldContext<'static> {
    FieldContext {
        customer_id: customer,
        channel: PROFILE_DOMAIN,
        record_id,
        field: FIELD,
    }
}

/// Seals a kept answer under `customer`'s profile data key.
async fn seal(
    svc: &Services,
    customer: Uuid,
    record_id: Uuid,
    body: &[u8],
) -> Result<Vec<u8>, String> {
    let key = svc
        .keyring
        .data_key_for_write(&svc.db, customer, PROFILE_DOMAIN)
        .await
        .map_err(|e| e.to_string())?;
    FieldKey::new(&key)
        .and_then(|k| k.seal(&place(customer, record_id), body))
        .map_err(|e| e.to_string())
}

/// Opens a kept answer; 410 `customer_erased` once its key is shredded.
async fn open(svc: &Services, stored: &Stored) -> Result<Vec<u8>, Error> {
    let customer = stored.customer_id.ok_or(Error::Internal)?;
    let sealed = stored.response.as_ref().ok_or(Error::CustomerErased)?;
    let wrapped = store::keys::data_key(&svc.db, customer, PROFILE_DOMAIN)
        .await?
        .ok_or(Error::CustomerErased)?;
    let key = svc
        .keyring
        .open_data_key(&svc.db, customer, &wrapped)
        .await?;
    let plain = FieldKey::new(&key)
        .and_then(|k| k.open(&place(customer, stored.record_id), sealed))
        .map_err(|e| Error::internal(&e))?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_changes_with_method_path_query_and_body() {
        let base = Fingerprint::of("POST", "/v1/customers", "", b"{}").0;
        let other = |m, p, q, b| Fingerprint::of(m, p, q, b).0;
        assert_eq!(base, other("POST", "/v1/customers", "", b"{}"));
        assert_ne!(base, other("PUT", "/v1/customers", "", b"{}"));
        assert_ne!(base, other("POST", "/v1/customers", "x=1", b"{}"));
        assert_ne!(base, other("POST", "/v1/customers", "", b"{ }"));
        // Parts are length-prefixed: moving bytes across a boundary differs.
        assert_ne!(other("POST", "/a", "b", b""), other("POST", "/a", "", b"b"));
    }

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        assert!(Key::parse(b"create-1").is_ok());
        assert!(Key::parse("k".repeat(255).as_bytes()).is_ok());
        for bad in [&b""[..], b"with space", b"tab\tkey", "ä".as_bytes()] {
            assert!(Key::parse(bad).is_err());
        }
        assert!(Key::parse("k".repeat(256).as_bytes()).is_err());
    }
}
