//! The profile projection: one row per customer in `profile_docs` holding
//! what a profile read needs of the customer — its columns and profile data
//! key, every contact point with its channel's wrapped data key — encoded as
//! one document, and beside it one small row in `consent_facts` holding the
//! customer's effective consent facts. A read takes both in one statement.
//!
//! The document copies what the tables hold (ciphertexts and wrapped keys,
//! never a plaintext value), so the integration rule, the decryption per
//! channel and the consent decision run on it exactly as on the tables. The
//! tables stay the record: triggers (migrations 0017 and 0019) make a
//! customer's document or facts stale in the same transaction as any change
//! to what they copy, and stale or missing ones are never read, only rebuilt.
//! The facts have a row of their own because a consent grant, the most
//! frequent write, changes nothing else (docs/decisions.md, "Consent facts
//! beside the document").
//!
//! Rebuilding: a reader that finds no document (or no facts) reads the tables
//! (or the consent ledger) in one snapshot together with the row's `gen`,
//! serves its request from them, and hands a [`Refresh`] to [`Projector`],
//! which stores it only if `gen` has not moved since ([`store`]). `serve`
//! also rebuilds every missing one once at start ([`backfill`]): that is how
//! an existing vault moves to the new layout while it keeps serving.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{read::refreshes_from_tables, ContactRow, CustomerRow};
use crate::store::{consents::ConsentFact, on_db, sql::Sql, Db, StoreResult};

/// The document encoding's version, first in every document; a document of
/// another version is treated as missing (and rebuilt). Version 1 also held
/// the consent facts (before migration 0019).
const FORMAT: u8 = 2;
/// The facts encoding's version, first in every `consent_facts.facts`.
const FACTS_FORMAT: u8 = 1;

/// What a document holds: the format, then the customer and its contact
/// points.
#[derive(Serialize)]
struct DocRef<'a> {
    format: u8,
    customer: &'a CustomerRow,
    contacts: &'a [ContactRow],
}

#[derive(Deserialize)]
struct DocOwned {
    format: u8,
    customer: CustomerRow,
    contacts: Vec<ContactRow>,
}

/// What a facts value holds: the format, then the facts, oldest first.
#[derive(Serialize)]
struct FactsRef<'a> {
    format: u8,
    facts: &'a [ConsentFact],
}

#[derive(Deserialize)]
struct FactsOwned {
    format: u8,
    facts: Vec<ConsentFact>,
}

/// The document of a customer and its contact points (`None` only if it
/// cannot be encoded, which plain structs into a vector never fail to be).
pub fn encode(customer: &CustomerRow, contacts: &[ContactRow]) -> Option<Vec<u8>> {
    postcard::to_allocvec(&DocRef {
        format: FORMAT,
        customer,
        contacts,
    })
    .ok()
}

/// The customer and contact points a document holds; `None` for a document
/// this binary does not read (another format), which the caller treats as
/// missing.
pub fn decode(doc: &[u8]) -> Option<(CustomerRow, Vec<ContactRow>)> {
    match postcard::from_bytes::<DocOwned>(doc) {
        Ok(d) if d.format == FORMAT => Some((d.customer, d.contacts)),
        _ => None,
    }
}

/// The stored form of a customer's consent facts.
pub fn encode_facts(facts: &[ConsentFact]) -> Option<Vec<u8>> {
    postcard::to_allocvec(&FactsRef {
        format: FACTS_FORMAT,
        facts,
    })
    .ok()
}

/// The facts a stored value holds; `None` for another format.
pub fn decode_facts(stored: &[u8]) -> Option<Vec<ConsentFact>> {
    match postcard::from_bytes::<FactsOwned>(stored) {
        Ok(f) if f.format == FACTS_FORMAT => Some(f.facts),
        _ => None,
    }
}

/// Which projection row a [`Refresh`] stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `profile_docs.doc`
    Doc,
    /// `consent_facts.facts`
    Facts,
}

/// A document or facts value built by a reader from the tables, with the
/// `gen` its row had in the same snapshot (`None`: the customer had no row).
#[derive(Debug)]
pub struct Refresh {
    pub part: Part,
    pub customer_id: Uuid,
    pub gen: Option<i64>,
    pub value: Vec<u8>,
}

/// Stores each value unless its customer changed after the value was read
/// (`gen` moved, or a row appeared). Returns how many were stored. A value
/// already there for the same `gen` is replaced by an equal one (or by this
/// binary's format, if it was another's). Storing fewer is always safe: a
/// value not stored is rebuilt by the next read.
pub async fn store(db: &Db, refreshes: &[Refresh]) -> StoreResult<u64> {
    if refreshes.is_empty() {
        return Ok(0);
    }
    match db {
        Db::Sqlite(pool, _) => store_sqlite(pool, refreshes).await,
        Db::Postgres(pool) => store_postgres(pool, refreshes).await,
    }
}

/// On SQLite, one statement per value in one write transaction: the
/// database has one writer at a time, so the projector cannot close a lock
/// cycle with the audit writer.
async fn store_sqlite(pool: &sqlx::SqlitePool, refreshes: &[Refresh]) -> StoreResult<u64> {
    let statements: Vec<Sql<'_>> = refreshes
        .iter()
        .map(|r| match r.gen {
            Some(gen) => {
                let mut sql = Sql::new(match r.part {
                    Part::Doc => "UPDATE profile_docs SET doc = ",
                    Part::Facts => "UPDATE consent_facts SET facts = ",
                });
                sql.bind(r.value.as_slice())
                    .push(" WHERE customer_id = ")
                    .bind(r.customer_id)
                    .push(" AND gen = ")
                    .bind(gen);
                sql
            }
            None => {
                let mut sql = Sql::new(match r.part {
                    Part::Doc => "INSERT INTO profile_docs (customer_id, gen, doc) VALUES (",
                    Part::Facts => "INSERT INTO consent_facts (customer_id, gen, facts) VALUES (",
                });
                sql.bind(r.customer_id)
                    .push(", 0, ")
                    .bind(r.value.as_slice())
                    .push(") ON CONFLICT (customer_id) DO NOTHING");
                sql
            }
        })
        .collect();
    let mut tx = pool.begin().await?;
    let mut stored = 0;
    for sql in &statements {
        stored += sql.query().execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    Ok(stored)
}

/// How long a PostgreSQL insert of a new projection row may wait for a
/// writer creating the same row before the projector gives it up.
const INSERT_LOCK_WAIT: &str = "100ms";

/// On PostgreSQL the projector never waits for a row lock while it holds
/// one. An audit batch takes the projection rows of one customer in the
/// order its requests came (a consent grant marks the facts, a contact's
/// activity the document), so a projector that held the document while
/// waiting for the facts could close a cycle with it, and the audit writer
/// would stall until the deadlock detector broke it (`deadlock_timeout`, a
/// second by default): past its deadline, so requests were answered 503.
///
/// So the updates take only rows no one holds (`SKIP LOCKED`: a row a
/// writer holds is being made stale, and the value would not be stored
/// anyway), one statement per table, and commit. The inserts, for customers
/// with no row yet, follow in a transaction of their own that gives up after
/// [`INSERT_LOCK_WAIT`] (a writer may be creating the same row).
async fn store_postgres(pool: &sqlx::PgPool, refreshes: &[Refresh]) -> StoreResult<u64> {
    let updates = [Part::Doc, Part::Facts].map(|part| (part, columns(refreshes, part, true)));
    let inserts = [Part::Doc, Part::Facts].map(|part| (part, columns(refreshes, part, false)));
    let mut stored = 0;
    if updates.iter().any(|(_, c)| !c.ids.is_empty()) {
        let mut tx = pool.begin().await?;
        for (part, c) in updates {
            if c.ids.is_empty() {
                continue;
            }
            let (table, column) = part.table();
            let sql = format!(
                "WITH v AS (SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bytea[]) \
                      AS v(customer_id, gen, value)), \
                 free AS MATERIALIZED (SELECT t.customer_id FROM {table} t \
                      JOIN v ON v.customer_id = t.customer_id AND v.gen = t.gen \
                      FOR UPDATE OF t SKIP LOCKED) \
                 UPDATE {table} t SET {column} = v.value FROM v JOIN free USING (customer_id) \
                 WHERE t.customer_id = v.customer_id AND t.gen = v.gen"
            );
            stored += sqlx::query(&sql)
                .bind(c.ids)
                .bind(c.gens)
                .bind(c.values)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
    }
    if inserts.iter().all(|(_, c)| c.ids.is_empty()) {
        return Ok(stored);
    }
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("SET LOCAL lock_timeout = '{INSERT_LOCK_WAIT}'"))
        .execute(&mut *tx)
        .await?;
    for (part, c) in inserts {
        if c.ids.is_empty() {
            continue;
        }
        let (table, column) = part.table();
        let sql = format!(
            "INSERT INTO {table} (customer_id, gen, {column}) \
             SELECT customer_id, 0, value FROM UNNEST($1::uuid[], $2::bytea[]) AS v(customer_id, value) \
             ORDER BY customer_id ON CONFLICT (customer_id) DO NOTHING"
        );
        match sqlx::query(&sql)
            .bind(c.ids)
            .bind(c.values)
            .execute(&mut *tx)
            .await
        {
            Ok(done) => stored += done.rows_affected(),
            Err(e) if gave_way(&e) => {
                // Rolled back on drop; the updates above stay stored.
                tracing::debug!("new projection rows not stored: a writer is creating them");
                return Ok(stored);
            }
            Err(e) => return Err(e.into()),
        }
    }
    tx.commit().await?;
    Ok(stored)
}

/// One part's refreshes as columns for `UNNEST`.
struct Columns<'a> {
    ids: Vec<Uuid>,
    gens: Vec<i64>,
    values: Vec<&'a [u8]>,
}

/// The refreshes of `part` that update a row (`updates`) or insert one, one
/// per customer (the last offered), sorted by customer.
fn columns(refreshes: &[Refresh], part: Part, updates: bool) -> Columns<'_> {
    let mut chosen: Vec<&Refresh> = refreshes
        .iter()
        .filter(|r| r.part == part && r.gen.is_some() == updates)
        .collect();
    // Stable: of one customer's refreshes the last offered stays last.
    chosen.sort_by_key(|r| r.customer_id);
    let mut out = Columns {
        ids: Vec::with_capacity(chosen.len()),
        gens: Vec::with_capacity(chosen.len()),
        values: Vec::with_capacity(chosen.len()),
    };
    for (i, r) in chosen.iter().enumerate() {
        if chosen
            .get(i + 1)
            .is_some_and(|n| n.customer_id == r.customer_id)
        {
            continue;
        }
        out.ids.push(r.customer_id);
        out.gens.push(r.gen.unwrap_or(0));
        out.values.push(r.value.as_slice());
    }
    out
}

/// Whether PostgreSQL refused a statement for a lock it would have had to
/// wait for (`lock_not_available`) or broke a lock cycle with it
/// (`deadlock_detected`).
fn gave_way(e: &sqlx::Error) -> bool {
    matches!(
        e.as_database_error().and_then(|d| d.code()).as_deref(),
        Some("55P03" | "40P01")
    )
}

impl Part {
    /// The table and column a part is stored in.
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Part::Doc => ("profile_docs", "doc"),
            Part::Facts => ("consent_facts", "facts"),
        }
    }
}

/// Customers after `after` (by id) whose document or facts are missing,
/// stale or of another format, at most `limit`; erased customers included
/// (their tombstone is read too).
pub async fn stale(db: &Db, after: Option<Uuid>, limit: i64) -> StoreResult<Vec<Uuid>> {
    const FORMAT_BYTE: &[u8] = &[FORMAT];
    let mut sql = Sql::new(
        "SELECT c.id FROM customers c LEFT JOIN profile_docs p ON p.customer_id = c.id \
         LEFT JOIN consent_facts f ON f.customer_id = c.id \
         WHERE (p.doc IS NULL OR f.facts IS NULL OR substr(p.doc, 1, 1) <> ",
    );
    sql.bind(FORMAT_BYTE).push(")");
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
    /// Customers whose document or facts were missing or stale when looked
    /// at.
    pub seen: u64,
    /// Documents and facts stored (each customer's both; fewer if customers
    /// changed meanwhile: their next read rebuilds them).
    pub stored: u64,
    pub elapsed: Duration,
}

/// Builds the document and facts of every customer missing either, a batch
/// at a time, while the vault serves: each customer is read in one snapshot
/// (on SQLite a whole batch is) and each value stored only if nothing it
/// copies changed since.
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
        done.seen += ids.len() as u64;
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
    use crate::store::keys::WrappedDataKey;

    fn customer() -> (CustomerRow, Vec<ContactRow>) {
        let key = |channel: &str| WrappedDataKey {
            channel: channel.to_owned(),
            key_version: 3,
            wrapped: vec![7; 40],
        };
        (
            CustomerRow {
                id: Uuid::now_v7(),
                display_name: Some(vec![1, 2, 3]),
                external_ref: None,
                preferred_channel: Some("email".into()),
                created_at: 1,
                updated_at: 2,
                erased_at: None,
                profile_key: Some(key("_profile")),
            },
            vec![ContactRow {
                id: Uuid::now_v7(),
                channel: "email".into(),
                value: vec![9; 60],
                label: Some(vec![4]),
                created_at: 5,
                last_activity_at: 6,
                key: Some(key("email")),
            }],
        )
    }

    fn facts() -> Vec<ConsentFact> {
        vec![
            ConsentFact {
                purpose: "cross_channel".into(),
                channel: "*".into(),
                grant: true,
                at: 8,
                expires_at: Some(9),
            },
            ConsentFact {
                purpose: "marketing".into(),
                channel: "sms".into(),
                grant: false,
                at: 10,
                expires_at: None,
            },
        ]
    }

    fn refresh(part: Part, customer: u128, gen: Option<i64>, value: u8) -> Refresh {
        Refresh {
            part,
            customer_id: Uuid::from_u128(customer),
            gen,
            value: vec![value],
        }
    }

    #[test]
    fn columns_hold_one_value_per_customer_the_last_offered_sorted_by_customer() {
        let offered = [
            refresh(Part::Facts, 3, Some(1), 1),
            refresh(Part::Doc, 3, Some(1), 2),
            refresh(Part::Facts, 1, Some(4), 3),
            refresh(Part::Facts, 3, Some(2), 4),
            refresh(Part::Facts, 2, None, 5),
        ];
        let updates = columns(&offered, Part::Facts, true);
        assert_eq!(updates.ids, [Uuid::from_u128(1), Uuid::from_u128(3)]);
        assert_eq!(updates.gens, [4, 2]);
        assert_eq!(updates.values, [&[3u8][..], &[4u8][..]]);
        let inserts = columns(&offered, Part::Facts, false);
        assert_eq!(inserts.ids, [Uuid::from_u128(2)]);
        assert_eq!(inserts.values, [&[5u8][..]]);
        assert_eq!(columns(&offered, Part::Doc, false).ids, Vec::<Uuid>::new());
    }

    #[test]
    fn a_document_decodes_to_the_rows_it_was_made_of() {
        let (c, contacts) = customer();
        let doc = encode(&c, &contacts).expect("encoded");
        let back = decode(&doc).expect("decoded");
        assert_eq!(format!("{back:?}"), format!("{:?}", (c, contacts)));
    }

    #[test]
    fn facts_decode_to_the_facts_they_were_made_of() {
        let f = facts();
        let stored = encode_facts(&f).expect("encoded");
        let back = decode_facts(&stored).expect("decoded");
        assert_eq!(format!("{back:?}"), format!("{f:?}"));
        let none = encode_facts(&[]).expect("encoded");
        assert!(decode_facts(&none).expect("decoded").is_empty());
    }

    #[test]
    fn a_value_of_another_format_or_truncated_is_not_read() {
        let (c, contacts) = customer();
        let mut doc = encode(&c, &contacts).expect("encoded");
        assert!(decode(&doc[..doc.len() - 1]).is_none());
        doc[0] = FORMAT + 1;
        assert!(decode(&doc).is_none());
        assert!(decode(&[]).is_none());
        // A document written before the facts had a row of their own.
        doc[0] = 1;
        assert!(decode(&doc).is_none());

        let mut stored = encode_facts(&facts()).expect("encoded");
        assert!(decode_facts(&stored[..stored.len() - 1]).is_none());
        stored[0] = FACTS_FORMAT + 1;
        assert!(decode_facts(&stored).is_none());
        assert!(decode_facts(&[]).is_none());
    }
}
