//! The profile projection (`profile_docs`): one row per customer holding
//! everything a profile read needs — the customer's columns and profile data
//! key, every contact point with its channel's wrapped data key, and the
//! effective consent facts — encoded as one document.
//!
//! The document copies what the tables hold (ciphertexts and wrapped keys,
//! never a plaintext value), so the integration rule, the decryption per
//! channel and the consent decision run on it exactly as on the tables. The
//! tables stay the record: triggers (migration 0017) make a customer's
//! document stale in the same transaction as any change to what it copies,
//! and a stale or missing document is never read, only rebuilt.
//!
//! Rebuilding: a reader that finds no document reads the tables in one
//! snapshot together with the row's `gen`, serves its request from them, and
//! hands a [`Refresh`] to [`Projector`], which stores it only if `gen` has not
//! moved since ([`store`]). `serve` also rebuilds every missing document once
//! at start ([`backfill`]): that is how an existing vault moves to the new
//! layout while it keeps serving.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{read::refreshes_from_tables, Profile};
use crate::store::{on_db, sql::Sql, Db, StoreResult};

/// The encoding's version, first in every document; a document of another
/// version is treated as missing (and rebuilt).
const FORMAT: u8 = 1;

/// What is stored: the format, then the profile.
#[derive(Serialize)]
struct DocRef<'a> {
    format: u8,
    profile: &'a Profile,
}

#[derive(Deserialize)]
struct DocOwned {
    format: u8,
    profile: Profile,
}

/// The document of `profile` (`None` only if it cannot be encoded, which
/// plain structs into a vector never fail to be).
pub fn encode(profile: &Profile) -> Option<Vec<u8>> {
    postcard::to_allocvec(&DocRef {
        format: FORMAT,
        profile,
    })
    .ok()
}

/// The profile a document holds; `None` for a document this binary does not
/// read (another format), which the caller treats as missing.
pub fn decode(doc: &[u8]) -> Option<Profile> {
    match postcard::from_bytes::<DocOwned>(doc) {
        Ok(d) if d.format == FORMAT => Some(d.profile),
        _ => None,
    }
}

/// A document built by a reader from the tables, with the `gen` it saw in
/// the same snapshot (`None`: the customer had no row in `profile_docs`).
#[derive(Debug)]
pub struct Refresh {
    pub customer_id: Uuid,
    pub gen: Option<i64>,
    pub doc: Vec<u8>,
}

/// Stores each document unless its customer changed after the document was
/// read (`gen` moved, or a row appeared); one transaction. Returns how many
/// were stored. A document already there for the same `gen` is replaced by
/// an equal one (or by this binary's format, if it was another's).
pub async fn store(db: &Db, refreshes: &[Refresh]) -> StoreResult<u64> {
    if refreshes.is_empty() {
        return Ok(0);
    }
    let statements: Vec<Sql<'_>> = refreshes
        .iter()
        .map(|r| match r.gen {
            Some(gen) => {
                let mut sql = Sql::new("UPDATE profile_docs SET doc = ");
                sql.bind(r.doc.as_slice())
                    .push(" WHERE customer_id = ")
                    .bind(r.customer_id)
                    .push(" AND gen = ")
                    .bind(gen);
                sql
            }
            None => {
                let mut sql = Sql::new("INSERT INTO profile_docs (customer_id, gen, doc) VALUES (");
                sql.bind(r.customer_id)
                    .push(", 0, ")
                    .bind(r.doc.as_slice())
                    .push(") ON CONFLICT (customer_id) DO NOTHING");
                sql
            }
        })
        .collect();
    let stored = on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let mut stored = 0;
        for sql in &statements {
            stored += sql.query().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        stored
    });
    Ok(stored)
}

/// Customers after `after` (by id) whose document is missing or stale, at
/// most `limit`; erased customers included (their tombstone is read too).
pub async fn stale(db: &Db, after: Option<Uuid>, limit: i64) -> StoreResult<Vec<Uuid>> {
    let mut sql = Sql::new(
        "SELECT c.id FROM customers c LEFT JOIN profile_docs p ON p.customer_id = c.id \
         WHERE p.doc IS NULL",
    );
    if let Some(after) = after {
        sql.push(" AND c.id > ").bind(after);
    }
    sql.push(" ORDER BY c.id LIMIT ").bind(limit);
    let ids = on_db!(db, pool => {
        use sqlx::Row;
        let rows = sql.query().fetch_all(pool).await?;
        rows.iter().map(|r| r.try_get::<Uuid, _>(0)).collect::<Result<Vec<_>, _>>()?
    });
    Ok(ids)
}

/// Customers per backfill batch: read from the tables (on SQLite in one read
/// transaction), then stored in one write transaction.
const BACKFILL_BATCH: i64 = 500;

/// What a [`backfill`] did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Backfilled {
    /// Customers whose document was missing or stale when looked at.
    pub seen: u64,
    /// Documents stored (fewer than `seen` if customers changed meanwhile:
    /// their next read rebuilds them).
    pub stored: u64,
    pub elapsed: Duration,
}

/// Builds the document of every customer that has none, a batch at a time,
/// while the vault serves: each customer is read in one snapshot (on SQLite
/// a whole batch is) and its document stored only if nothing changed since.
/// Safe to run beside readers, writers and other nodes doing the same.
pub async fn backfill(db: &Db) -> StoreResult<Backfilled> {
    let started = Instant::now();
    let mut done = Backfilled::default();
    let mut after = None;
    loop {
        let ids = stale(db, after, BACKFILL_BATCH).await?;
        let Some(last) = ids.last() else { break };
        after = Some(*last);
        let refreshes = refreshes_from_tables(db, &ids).await?;
        done.seen += refreshes.len() as u64;
        done.stored += store(db, &refreshes).await?;
    }
    done.elapsed = started.elapsed();
    Ok(done)
}

/// Documents waiting to be stored, at most; a read that finds the queue full
/// drops its document (the next read of that customer builds it again).
const QUEUE: usize = 4096;
/// Documents per write transaction.
const BATCH: usize = 256;

/// Stores the documents readers built, in batches, off the request path.
#[derive(Debug, Clone)]
pub struct Projector {
    queue: mpsc::Sender<Refresh>,
}

impl Projector {
    /// Starts the writer task on `db`.
    pub fn start(db: Db) -> Self {
        let (queue, mut rx) = mpsc::channel::<Refresh>(QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                if let Err(e) = store(&db, &batch).await {
                    // Nothing is lost: the documents stay missing and the
                    // next read of each customer builds it again.
                    tracing::warn!(error = %e, documents = batch.len(), "profile documents not stored");
                }
                batch.clear();
            }
        });
        Projector { queue }
    }

    /// Hands a document over; never waits.
    pub fn offer(&self, refresh: Refresh) {
        let _ = self.queue.try_send(refresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        consents::ConsentFact,
        customers::{ContactRow, CustomerRow},
        keys::WrappedDataKey,
    };

    fn profile() -> Profile {
        let key = |channel: &str| WrappedDataKey {
            channel: channel.to_owned(),
            key_version: 3,
            wrapped: vec![7; 40],
        };
        Profile {
            customer: CustomerRow {
                id: Uuid::now_v7(),
                display_name: Some(vec![1, 2, 3]),
                external_ref: None,
                preferred_channel: Some("email".into()),
                created_at: 1,
                updated_at: 2,
                erased_at: None,
                profile_key: Some(key("_profile")),
            },
            contacts: vec![ContactRow {
                id: Uuid::now_v7(),
                channel: "email".into(),
                value: vec![9; 60],
                label: Some(vec![4]),
                created_at: 5,
                last_activity_at: 6,
                key: Some(key("email")),
            }],
            consents: vec![ConsentFact {
                purpose: "cross_channel".into(),
                channel: "*".into(),
                grant: true,
                at: 8,
                expires_at: Some(9),
            }],
        }
    }

    #[test]
    fn a_document_decodes_to_the_profile_it_was_made_of() {
        let p = profile();
        let doc = encode(&p).expect("encoded");
        let back = decode(&doc).expect("decoded");
        assert_eq!(format!("{back:?}"), format!("{p:?}"));
    }

    #[test]
    fn a_document_of_another_format_or_truncated_is_not_read() {
        let mut doc = encode(&profile()).expect("encoded");
        assert!(decode(&doc[..doc.len() - 1]).is_none());
        doc[0] = FORMAT + 1;
        assert!(decode(&doc).is_none());
        assert!(decode(&[]).is_none());
    }
}
