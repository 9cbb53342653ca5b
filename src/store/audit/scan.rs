//! The verifier's reads: whole ranges of the log, streamed at the same time
//! and handed over as raw column bytes, so that hashing can start from the
//! bytes where they lie (no copy, no allocation per row).
//!
//! On SQLite each range is read on a thread of its own with its own
//! read-only connection; on PostgreSQL in a task of its own through binary
//! `COPY` ([`super::copy`]). What is done with the rows (chain hashing,
//! checkpoints) is the caller's: see [`crate::audit::verify`].

use std::path::Path;

use super::{columns, copy};
use crate::store::{Db, StoreError, StoreResult};

/// One stored entry as its column bytes, borrowed from the database's row
/// buffer: text as UTF-8, a UUID as its 16 bytes (the same on both backends).
#[derive(Debug, Clone, Copy)]
pub struct RawEntry<'a> {
    pub seq: i64,
    pub at: i64,
    pub actor_sub: &'a [u8],
    pub actor_role: &'a [u8],
    pub actor_client: Option<&'a [u8]>,
    pub action: &'a [u8],
    pub customer_id: Option<&'a [u8]>,
    pub channel: Option<&'a [u8]>,
    pub purpose: Option<&'a [u8]>,
    pub decision: &'a [u8],
    pub reason: Option<&'a [u8]>,
    pub request_id: &'a [u8],
    pub detail: &'a [u8],
    pub prev_hash: &'a [u8],
    pub hash: &'a [u8],
}

/// Takes the entries of one range of the log.
pub trait RangeVisitor: Send + 'static {
    /// The range: entries with `lo < seq <= hi`.
    fn bounds(&self) -> (i64, i64);
    /// One entry, in seq order; false stops the range.
    fn visit(&mut self, entry: &RawEntry<'_>) -> bool;
}

/// Reads the range of every visitor, all at the same time, and returns the
/// visitors in the order given. The ranges may see different snapshots while
/// the server keeps appending; the log is append-only, so entries up to a
/// head read before are the same in every snapshot.
pub async fn scan<V: RangeVisitor>(db: &Db, visitors: Vec<V>) -> StoreResult<Vec<V>> {
    match db {
        Db::Sqlite(pool, _) => {
            let path = pool.connect_options().get_filename().to_owned();
            tokio::task::spawn_blocking(move || scan_sqlite(&path, visitors))
                .await
                .map_err(|_| StoreError::Corrupt("verification task failed"))?
        }
        Db::Postgres(pool) => {
            let tasks: Vec<_> = visitors
                .into_iter()
                .map(|v| {
                    let pool = pool.clone();
                    tokio::spawn(async move { copy::walk(&pool, v).await })
                })
                .collect();
            let mut out = Vec::with_capacity(tasks.len());
            for t in tasks {
                out.push(
                    t.await
                        .map_err(|_| StoreError::Corrupt("verification task failed"))??,
                );
            }
            Ok(out)
        }
    }
}

/// One range of the log on SQLite: entries with `lo < seq <= hi`.
const SELECT_SQLITE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM audit_log WHERE seq > ?1 AND seq <= ?2 ORDER BY seq"
);

/// Each range on a thread with its own read-only connection.
fn scan_sqlite<V: RangeVisitor>(path: &Path, visitors: Vec<V>) -> StoreResult<Vec<V>> {
    use rusqlite::OpenFlags;
    let open = || {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Read-only, but like every connection arkku opens (store::SECURE_DELETE).
        conn.pragma_update(None, "secure_delete", crate::store::SECURE_DELETE)?;
        Ok::<_, rusqlite::Error>(conn)
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = visitors
            .into_iter()
            .map(|v| scope.spawn(|| walk_sqlite(open()?, v)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| StoreError::Corrupt("verification thread failed"))?
            })
            .collect()
    })
}

/// Walks one range, handing over each field where it lies in SQLite's row
/// buffer: no copy and no allocation per row.
fn walk_sqlite<V: RangeVisitor>(conn: rusqlite::Connection, mut v: V) -> StoreResult<V> {
    use rusqlite::types::ValueRef;

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
    let mut stmt = conn.prepare(SELECT_SQLITE)?;
    let (lo, hi) = v.bounds();
    let mut rows = stmt.query([lo, hi])?;
    while let Some(r) = rows.next()? {
        let e = RawEntry {
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
            prev_hash: bytes(r, 13)?,
            hash: bytes(r, 14)?,
        };
        if !v.visit(&e) {
            break;
        }
    }
    drop(rows);
    drop(stmt);
    Ok(v)
}
