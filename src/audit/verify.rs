//! Recomputes the whole chain: every link, not only the ends.
//!
//! Detects an edited entry (its hash no longer matches), a deleted or inserted
//! entry (a gap or a broken link), reordering (broken links), a stored
//! checkpoint that does not match or is not signed by the vault, and — given a
//! checkpoint kept from before — a truncated tail.
//!
//! Speed matters (a log grows by millions of entries): rows are streamed, and
//! on SQLite read through a direct binding that hashes each field where it
//! lies in SQLite's row buffer, with no copy and no allocation per row.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use serde::Serialize;
use sqlx::Row;

use super::{
    chain::{hash_entry, EntryRef},
    checkpoint, GENESIS_HASH,
};
use crate::{
    crypto::hex,
    store::{self, audit::CheckpointRow, Db, StoreError},
};

/// The outcome of a verification (`GET /v1/audit/verify`, `arkku audit verify`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    pub entries_checked: u64,
    pub head_seq: i64,
    pub head_hash: String,
    /// The first entry that does not verify (or, for a truncated log, the first missing one).
    pub first_bad_seq: Option<i64>,
    /// What is wrong, in words.
    pub problem: Option<String>,
    pub checkpoints_checked: u64,
}

const SELECT: &str = "SELECT seq, at, actor_sub, actor_role, actor_client, action, customer_id, channel, purpose, \
                      decision, reason, request_id, detail, prev_hash, hash FROM audit_log ORDER BY seq";

/// Walks the entries in order and stops at the first bad one.
struct Verifier {
    points: BTreeMap<i64, (CheckpointRow, &'static str)>,
    trusted: Option<Vec<u8>>,
    prev: [u8; 32],
    expected: i64,
    report: VerifyReport,
}

impl Verifier {
    fn fail(&mut self, seq: i64, why: String) -> bool {
        self.report.ok = false;
        self.report.first_bad_seq = Some(seq);
        self.report.problem = Some(why);
        false
    }

    /// Checks one entry; false means stop (the report says why).
    fn visit(&mut self, e: &EntryRef<'_>, prev_hash: &[u8], hash: &[u8]) -> bool {
        if e.seq != self.expected {
            let why = format!(
                "entry {} is missing (next entry is {})",
                self.expected, e.seq
            );
            return self.fail(self.expected, why);
        }
        if prev_hash != self.prev.as_slice() {
            return self.fail(e.seq, "the entry does not link to the one before it".into());
        }
        let computed = hash_entry(&self.prev, e);
        if hash != computed.as_slice() {
            return self.fail(e.seq, "the entry's content does not match its hash".into());
        }
        if let Some((c, what)) = self.points.get(&e.seq) {
            self.report.checkpoints_checked += 1;
            if c.hash.as_slice() != computed.as_slice() {
                let why = format!(
                    "the {what} at this entry holds another hash: the history was rewritten"
                );
                return self.fail(e.seq, why);
            }
            if *what == "stored checkpoint"
                && !checkpoint::signature_valid(c, self.trusted.as_deref())
            {
                return self.fail(
                    e.seq,
                    "the stored checkpoint here is not signed by this vault".into(),
                );
            }
        }
        self.prev = computed;
        self.report.entries_checked += 1;
        self.report.head_seq = e.seq;
        self.expected += 1;
        true
    }

    fn finish(mut self) -> VerifyReport {
        self.report.head_hash = hex(&self.prev);
        if self.report.ok {
            let head = self.report.head_seq;
            if let Some((seq, (_, what))) = self.points.range(head + 1..).next() {
                let why = format!("the log ends at entry {head} but a {what} covers entry {seq}: the tail was truncated");
                self.fail(head + 1, why);
            }
        }
        self.report
    }
}

/// Verifies the chain and the stored checkpoints, and `kept` if given.
/// `trusted_key` is the vault's public key: checkpoints signed by any other
/// key are bad.
pub async fn verify(
    db: &Db,
    trusted_key: Option<&[u8]>,
    kept: Option<&CheckpointRow>,
) -> Result<VerifyReport, StoreError> {
    let mut v = Verifier {
        points: store::audit::checkpoints(db)
            .await?
            .into_iter()
            .map(|c| (c.seq, (c, "stored checkpoint")))
            .collect(),
        trusted: trusted_key.map(<[u8]>::to_vec),
        prev: GENESIS_HASH,
        expected: 1,
        report: VerifyReport {
            ok: true,
            entries_checked: 0,
            head_seq: 0,
            head_hash: hex(&GENESIS_HASH),
            first_bad_seq: None,
            problem: None,
            checkpoints_checked: 0,
        },
    };
    if let Some(k) = kept {
        if !checkpoint::signature_valid(k, trusted_key) {
            v.fail(
                k.seq,
                "the kept checkpoint's signature is not valid for this vault".into(),
            );
            return Ok(v.finish_without_tail());
        }
        v.points.insert(k.seq, (k.clone(), "kept checkpoint"));
    }
    let v = match db {
        Db::Sqlite(pool, _) => {
            let path = pool.connect_options().get_filename().to_owned();
            tokio::task::spawn_blocking(move || verify_sqlite(&path, v))
                .await
                .map_err(|_| StoreError::Corrupt("verification task failed"))??
        }
        Db::Postgres(pool) => {
            let mut rows = sqlx::query(SELECT).fetch(pool);
            while let Some(r) = rows.try_next().await? {
                let customer = r.try_get::<Option<uuid::Uuid>, _>(6)?;
                let e = EntryRef {
                    seq: r.try_get(0)?,
                    at: r.try_get(1)?,
                    actor_sub: r.try_get::<&str, _>(2)?.as_bytes(),
                    actor_role: r.try_get::<&str, _>(3)?.as_bytes(),
                    actor_client: r.try_get::<Option<&str>, _>(4)?.map(str::as_bytes),
                    action: r.try_get::<&str, _>(5)?.as_bytes(),
                    customer_id: customer.as_ref().map(|u| &u.as_bytes()[..]),
                    channel: r.try_get::<Option<&str>, _>(7)?.map(str::as_bytes),
                    purpose: r.try_get::<Option<&str>, _>(8)?.map(str::as_bytes),
                    decision: r.try_get::<&str, _>(9)?.as_bytes(),
                    reason: r.try_get::<Option<&str>, _>(10)?.map(str::as_bytes),
                    request_id: r.try_get::<&str, _>(11)?.as_bytes(),
                    detail: r.try_get::<&str, _>(12)?.as_bytes(),
                };
                if !v.visit(&e, r.try_get::<&[u8], _>(13)?, r.try_get::<&[u8], _>(14)?) {
                    break;
                }
            }
            v
        }
    };
    Ok(v.finish())
}

impl Verifier {
    /// The report as it stands, without the truncation check (used when the
    /// kept checkpoint itself is invalid).
    fn finish_without_tail(mut self) -> VerifyReport {
        self.report.head_hash = hex(&self.prev);
        self.report
    }
}

/// The SQLite walk, on a blocking thread with its own read-only connection
/// (WAL gives it a consistent snapshot while the server keeps writing).
fn verify_sqlite(path: &std::path::Path, mut v: Verifier) -> Result<Verifier, StoreError> {
    use rusqlite::{types::ValueRef, OpenFlags};

    fn bytes<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<&'a [u8], rusqlite::Error> {
        Ok(r.get_ref(i)?.as_bytes()?)
    }
    fn int(r: &rusqlite::Row<'_>, i: usize) -> Result<i64, rusqlite::Error> {
        Ok(r.get_ref(i)?.as_i64()?)
    }
    fn opt<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<Option<&'a [u8]>, rusqlite::Error> {
        match r.get_ref(i)? {
            ValueRef::Null => Ok(None),
            other => Ok(Some(other.as_bytes()?)),
        }
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let mut stmt = conn.prepare(SELECT)?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let e = EntryRef {
            seq: int(r, 0)?,
            at: int(r, 1)?,
            actor_sub: bytes(r, 2)?,
            actor_role: bytes(r, 3)?,
            actor_client: opt(r, 4)?,
            action: bytes(r, 5)?,
            customer_id: opt(r, 6)?,
            channel: opt(r, 7)?,
            purpose: opt(r, 8)?,
            decision: bytes(r, 9)?,
            reason: opt(r, 10)?,
            request_id: bytes(r, 11)?,
            detail: bytes(r, 12)?,
        };
        if !v.visit(&e, bytes(r, 13)?, bytes(r, 14)?) {
            break;
        }
    }
    Ok(v)
}
