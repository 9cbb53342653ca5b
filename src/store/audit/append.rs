//! The group-commit batch writer of the audit log.
//!
//! [`crate::audit::Auditor`] gathers the entries of many requests into one
//! [`Batch`]; [`Appender::append`] chains them onto the head of the log (with
//! the chaining function it is given), inserts them with their [`Effect`]s
//! and commits, all in one transaction: one commit, one fsync, per batch.
//! On SQLite, once the log holds a small run's worth of entries past the
//! customer index's watermark, the batch that crossed it also files them as
//! a run of that index ([`super::index_runs`]).

use std::sync::Arc;

use super::{
    columns,
    effects::{apply_postgres, apply_sqlite},
    index_runs::{self, IndexRun},
    wal::{WalCheckpointer, WAL_BACKSTOP_PAGES},
    AuditRow, Effect,
};
use crate::store::{Db, StoreError, StoreResult};

/// Key of the PostgreSQL advisory lock that serialises appends across processes.
const AUDIT_LOCK: i64 = 0x0061_726b_6b75_0001; // "arkku" · 1

/// How often an optimistic PostgreSQL append may collide before giving up.
const MAX_RACES: usize = 64;

/// The last entry of the log, `(seq, hash)`; `None` for an empty log.
pub type Head = Option<(i64, [u8; 32])>;

/// A stored head as read: the hash must be 32 bytes.
pub(super) fn head_of(row: Option<(i64, Vec<u8>)>) -> StoreResult<Head> {
    row.map(|(seq, hash)| {
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|_| StoreError::Corrupt("audit hash is not 32 bytes"))?;
        Ok((seq, hash))
    })
    .transpose()
}

/// Chains rows onto the head: assigns seq, prev_hash and hash (how, and
/// what an empty log's first entry links to, is the caller's).
pub type ChainFn = fn(Head, &mut [AuditRow]);

/// One batch for [`Appender::append`]: `rows[i]` with `effects[i]`.
pub struct Batch {
    pub rows: Vec<AuditRow>,
    pub effects: Vec<Option<Effect>>,
    /// Called while the batch holds the writer lock, just before commit:
    /// per row, whether its requester still waits for it (and will now wait
    /// for the commit). A row whose requester gave up is passed to
    /// `withdraw` and its effect is dropped, so the commit never carries out
    /// a change that was answered 503. May be called more than once; a row
    /// once given up stays given up.
    pub claim: Box<dyn FnMut() -> Vec<bool> + Send>,
    /// Rewrites a given-up row to record the refusal.
    pub withdraw: fn(&mut AuditRow),
    pub chain: ChainFn,
}

impl Batch {
    /// Claims the rows; withdraws (once) those whose requester gave up.
    /// Returns how many rows were withdrawn by this call.
    fn settle(&mut self, withdrawn: &mut [bool]) -> usize {
        let wanted = (self.claim)();
        let mut newly = 0;
        for (i, keep) in wanted.into_iter().enumerate() {
            if !keep && !withdrawn[i] {
                withdrawn[i] = true;
                (self.withdraw)(&mut self.rows[i]);
                self.effects[i] = None;
                newly += 1;
            }
        }
        newly
    }
}

/// Appends batches at the head of the chain, atomically and durably.
///
/// On SQLite, inside one transaction that holds the writer lock (`BEGIN
/// IMMEDIATE`), it reads the head, chains the new rows onto it, inserts them
/// and commits; on PostgreSQL the insert is optimistic (see
/// `append_postgres`). Either way appends from several processes form one
/// gap-free, fork-free order, and a whole batch costs one commit (one
/// fsync): group commit.
///
/// On SQLite the appender owns a direct connection (its own, not from the
/// pool) and inserts through one cached prepared statement on a blocking
/// thread: a row then costs about a microsecond instead of the pool's
/// per-statement round trip.
pub enum Appender {
    Sqlite(
        Arc<std::sync::Mutex<rusqlite::Connection>>,
        WalCheckpointer,
        IndexRun,
    ),
    /// The pool and this process's last known head of the chain (`None`:
    /// not known, read it). PostgreSQL keeps the per-entry customer index
    /// (migrations/postgres/0020 says why), so it files no runs.
    Postgres(sqlx::PgPool, tokio::sync::Mutex<Option<Head>>),
}

impl Appender {
    pub fn open(db: &Db, run: IndexRun) -> StoreResult<Self> {
        match db {
            Db::Sqlite(pool, _) => {
                let path = pool.connect_options().get_filename().to_owned();
                let conn = open_sqlite_writer(&path)?;
                let checkpointer = WalCheckpointer::start(&path)?;
                Ok(Appender::Sqlite(
                    Arc::new(std::sync::Mutex::new(conn)),
                    checkpointer,
                    run,
                ))
            }
            Db::Postgres(pool) => Ok(Appender::Postgres(
                pool.clone(),
                tokio::sync::Mutex::new(None),
            )),
        }
    }

    /// Tests that an append would succeed now: takes the writer lock, inserts
    /// a row at the head and rolls it back (so triggers and constraints run,
    /// and nothing is left behind).
    pub async fn probe(&self) -> StoreResult<()> {
        match self {
            Appender::Sqlite(conn, ..) => {
                on_sqlite_thread(conn, |conn| {
                    let tx =
                        conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                    let seq: i64 =
                        tx.query_row("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log", [], |r| {
                            r.get(0)
                        })?;
                    insert_sqlite(&tx, &[probe_row(seq)])?;
                    tx.rollback()?;
                    Ok(())
                })
                .await
            }
            Appender::Postgres(pool, ..) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(AUDIT_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let seq: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log")
                        .fetch_one(&mut *tx)
                        .await?;
                insert_postgres(&mut tx, &[probe_row(seq)]).await?;
                tx.rollback().await?;
                Ok(())
            }
        }
    }

    /// Chains the batch's rows onto the head, inserts them and applies their
    /// effects in the same transaction, claiming the rows just before the
    /// commit (see [`Batch::claim`]), and commits. Returns the chained rows
    /// and, per row, whether its effect applied (true for a row without one).
    pub async fn append(&self, batch: Batch) -> StoreResult<(Vec<AuditRow>, Vec<bool>)> {
        match self {
            Appender::Sqlite(conn, checkpointer, run) => {
                let run = *run;
                let out = on_sqlite_thread(conn, move |conn| append_sqlite(conn, batch, run)).await;
                checkpointer.nudge();
                out
            }
            Appender::Postgres(pool, head) => append_postgres(pool, head, batch).await,
        }
    }
}

/// The audit writer's own SQLite connection, checked for the settings its
/// durability rests on.
fn open_sqlite_writer(path: &std::path::Path) -> StoreResult<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    crate::store::secure_delete(&conn)?;
    let journal: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
    if !journal.eq_ignore_ascii_case("wal") || sync != 2 {
        return Err(StoreError::Durability(format!(
            "the audit connection runs with journal_mode={journal}, synchronous={sync}; arkku needs wal and 2 (FULL)"
        )));
    }
    // The checkpointer thread copies the log into the database; the writer
    // does it itself only if that falls far behind.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;
    Ok(conn)
}

/// Runs `f` with the audit writer's SQLite connection on a blocking thread.
async fn on_sqlite_thread<T: Send + 'static>(
    conn: &Arc<std::sync::Mutex<rusqlite::Connection>>,
    f: impl FnOnce(&mut rusqlite::Connection) -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    let conn = Arc::clone(conn);
    tokio::task::spawn_blocking(move || {
        let mut conn = conn
            .lock()
            .map_err(|_| StoreError::Corrupt("audit connection poisoned"))?;
        f(&mut conn)
    })
    .await
    .map_err(|_| StoreError::Corrupt("audit writer task failed"))?
}

/// A row that is inserted and rolled back by a probe; never committed.
pub(super) fn probe_row(seq: i64) -> AuditRow {
    AuditRow {
        seq,
        at: 0,
        actor_sub: String::new(),
        actor_role: String::new(),
        actor_client: None,
        action: "probe".into(),
        customer_id: None,
        channel: None,
        purpose: None,
        decision: "allow".into(),
        reason: None,
        request_id: String::new(),
        detail: "{}".into(),
        prev_hash: vec![0; 32],
        hash: vec![0; 32],
    }
}

fn append_sqlite(
    conn: &mut rusqlite::Connection,
    mut batch: Batch,
    run: IndexRun,
) -> StoreResult<(Vec<AuditRow>, Vec<bool>)> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    // The writer lock is held from here to the commit: nothing can stall
    // this batch but the statements themselves, so the rows are claimed now.
    let mut withdrawn = vec![false; batch.rows.len()];
    batch.settle(&mut withdrawn);
    let head: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(other),
        })?;
    let head = head_of(head)?;
    let Batch {
        mut rows,
        effects,
        chain,
        ..
    } = batch;
    chain(head, &mut rows);
    insert_sqlite(&tx, &rows)?;
    let applied = effects
        .iter()
        .map(|e| e.as_ref().map_or(Ok(true), |e| apply_sqlite(&tx, e)))
        .collect::<StoreResult<Vec<bool>>>()?;
    if let Some(last) = rows.last() {
        index_runs::file_sqlite(&tx, last.seq, run)?;
    }
    tx.commit()?;
    Ok((rows, applied))
}

fn insert_sqlite(tx: &rusqlite::Transaction<'_>, rows: &[AuditRow]) -> StoreResult<()> {
    const SQL: &str = concat!(
        "INSERT INTO audit_log (",
        columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    );
    let mut stmt = tx.prepare_cached(SQL)?;
    for r in rows {
        stmt.execute(rusqlite::params![
            r.seq,
            r.at,
            r.actor_sub,
            r.actor_role,
            r.actor_client,
            r.action,
            r.customer_id.as_ref().map(|u| &u.as_bytes()[..]),
            r.channel,
            r.purpose,
            r.decision,
            r.reason,
            r.request_id,
            r.detail,
            r.prev_hash,
            r.hash,
        ])?;
    }
    Ok(())
}

/// PostgreSQL appends are optimistic: the batch is chained onto this
/// process's last known head and inserted by one `INSERT … SELECT FROM
/// UNNEST(…)`, with its effects, in one transaction.
/// The primary key on `seq` is the lock: if another process appended first,
/// the insert collides on `seq` and nothing of it is stored; the head is then
/// reloaded and the batch re-chained. A process can only extend the head it
/// has read, so the chain stays gap-free and fork-free.
///
/// The rows are claimed after the statements have run (so they hold every
/// lock they needed) and before the commit. Should a requester have given up
/// while the statements waited (a locked table, a stalled server), the
/// transaction is rolled back and the batch written again with that row
/// withdrawn: an answered 503 is never committed as an allow.
async fn append_postgres(
    pool: &sqlx::PgPool,
    cached: &tokio::sync::Mutex<Option<Head>>,
    mut batch: Batch,
) -> StoreResult<(Vec<AuditRow>, Vec<bool>)> {
    let mut head = cached.lock().await;
    let mut withdrawn = vec![false; batch.rows.len()];
    let mut races = 0;
    loop {
        let known = match *head {
            Some(h) => h,
            None => super::read::head(&Db::Postgres(pool.clone())).await?,
        };
        (batch.chain)(known, &mut batch.rows);
        let conflict = |e| StoreError::from_unique(e, "audit_log_pkey");
        let mut tx = pool.begin().await?;
        let written: StoreResult<Vec<bool>> = async {
            insert_postgres(&mut tx, &batch.rows)
                .await
                .map_err(conflict)?;
            apply_postgres(&mut tx, &batch.effects).await
        }
        .await;
        match written {
            Ok(applied) => {
                if batch.settle(&mut withdrawn) > 0 {
                    // Written again with the withdrawn rows; the head is unchanged.
                    tx.rollback().await?;
                    continue;
                }
                if let Err(e) = tx.commit().await {
                    // Unknown outcome (the commit may have landed): reload next time.
                    *head = None;
                    return Err(e.into());
                }
                if let Some(last) = batch.rows.last() {
                    let mut h = [0u8; 32];
                    h.copy_from_slice(&last.hash);
                    *head = Some(Some((last.seq, h)));
                }
                return Ok((batch.rows, applied));
            }
            Err(StoreError::Conflict(_)) => {
                *head = None;
                races += 1;
                if races >= MAX_RACES {
                    return Err(StoreError::Corrupt(
                        "audit append lost the race for the head too often",
                    ));
                }
            }
            Err(e) => {
                *head = None;
                return Err(e);
            }
        }
    }
}

/// Inserts chained rows by one `INSERT … SELECT FROM UNNEST(…)`: one
/// statement, one round trip, whatever the batch size.
async fn insert_postgres(
    tx: &mut sqlx::PgConnection,
    rows: &[AuditRow],
) -> Result<sqlx::postgres::PgQueryResult, sqlx::Error> {
    const SQL: &str = concat!(
        "INSERT INTO audit_log (",
        columns!(),
        ") SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
         $6::text[], $7::uuid[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], \
         $13::text[], $14::bytea[], $15::bytea[])"
    );
    let text = |f: fn(&AuditRow) -> Option<&str>| rows.iter().map(f).collect::<Vec<_>>();
    sqlx::query(SQL)
        .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(text(|r| Some(r.actor_sub.as_str())))
        .bind(text(|r| Some(r.actor_role.as_str())))
        .bind(text(|r| r.actor_client.as_deref()))
        .bind(text(|r| Some(r.action.as_str())))
        .bind(rows.iter().map(|r| r.customer_id).collect::<Vec<_>>())
        .bind(text(|r| r.channel.as_deref()))
        .bind(text(|r| r.purpose.as_deref()))
        .bind(text(|r| Some(r.decision.as_str())))
        .bind(text(|r| r.reason.as_deref()))
        .bind(text(|r| Some(r.request_id.as_str())))
        .bind(text(|r| Some(r.detail.as_str())))
        .bind(
            rows.iter()
                .map(|r| r.prev_hash.as_slice())
                .collect::<Vec<_>>(),
        )
        .bind(rows.iter().map(|r| r.hash.as_slice()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await
}
