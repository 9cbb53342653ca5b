//! The audit tables: batched appends under a writer lock, reads, checkpoints.
//! Chaining and signing live in [`crate::audit`]; this module moves rows.

use std::sync::Arc;

use sqlx::Row;
use uuid::Uuid;

use super::{
    consents::ConsentRow, customers::NewContact, interactions::NewInteraction, on_db, Db, Micros,
    StoreError, StoreResult,
};

/// One stored audit row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub at: Micros,
    pub actor_sub: String,
    pub actor_role: String,
    pub actor_client: Option<String>,
    pub action: String,
    pub customer_id: Option<Uuid>,
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub decision: String,
    pub reason: Option<String>,
    pub request_id: String,
    pub detail: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// A change committed in the same transaction as its audit entry, so that
/// neither is ever stored without the other, and the change costs no commit
/// (and no fsync) of its own: it rides the entry's group commit.
///
/// An effect never fails its batch: it applies only if its customer is live
/// at commit time, and otherwise is skipped and reported as not applied.
#[derive(Debug, Clone)]
pub enum Effect {
    /// One consent ledger event.
    Consent(ConsentRow),
    /// One interaction; it also restarts the retention of the customer's
    /// live contact points on its channel.
    Interaction(NewInteraction),
    /// One contact point; skipped (not applied) also when the customer
    /// already holds the value on the channel, so adding a new value and
    /// repeating a known one take the same path and the same commit.
    Contact(NewContact),
}

/// A stored checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointRow {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at: Micros,
    pub signature: Vec<u8>,
    pub public_key: Vec<u8>,
}

/// A multi-row INSERT of `rows` (backend-generic; placeholders per backend).
fn insert_values<'a, DB>(rows: &'a [AuditRow]) -> sqlx::QueryBuilder<'a, DB>
where
    DB: sqlx::Database,
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<&'a str>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    Option<Uuid>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a [u8]: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut qb = sqlx::QueryBuilder::new(format!("INSERT INTO audit_log ({COLUMNS}) "));
    qb.push_values(rows, |mut b, r| {
        b.push_bind(r.seq)
            .push_bind(r.at)
            .push_bind(r.actor_sub.as_str())
            .push_bind(r.actor_role.as_str())
            .push_bind(r.actor_client.as_deref())
            .push_bind(r.action.as_str())
            .push_bind(r.customer_id)
            .push_bind(r.channel.as_deref())
            .push_bind(r.purpose.as_deref())
            .push_bind(r.decision.as_str())
            .push_bind(r.reason.as_deref())
            .push_bind(r.request_id.as_str())
            .push_bind(r.detail.as_str())
            .push_bind(r.prev_hash.as_slice())
            .push_bind(r.hash.as_slice());
    });
    qb
}

/// Key of the PostgreSQL advisory lock that serialises appends across processes.
const AUDIT_LOCK: i64 = 0x0061_726b_6b75_0001; // "arkku" · 1

const COLUMNS: &str =
    "seq, at, actor_sub, actor_role, actor_client, action, customer_id, channel, purpose, \
                       decision, reason, request_id, detail, prev_hash, hash";

fn head_of(seq: Option<i64>, hash: Option<Vec<u8>>) -> StoreResult<(i64, [u8; 32])> {
    match (seq, hash) {
        (Some(seq), Some(hash)) => {
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt("audit hash is not 32 bytes"))?;
            Ok((seq, hash))
        }
        _ => Ok((0, [0u8; 32])),
    }
}

/// Chains rows onto a head `(seq, hash)`: assigns seq, prev_hash and hash.
pub type ChainFn = fn(i64, [u8; 32], &mut [AuditRow]);

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
    Sqlite(Arc<std::sync::Mutex<rusqlite::Connection>>, WalCheckpointer),
    /// The pool and this process's last known head of the chain.
    Postgres(sqlx::PgPool, tokio::sync::Mutex<Option<(i64, [u8; 32])>>),
}

impl Appender {
    pub fn open(db: &Db) -> StoreResult<Self> {
        match db {
            Db::Sqlite(pool, _) => {
                let path = pool.connect_options().get_filename().to_owned();
                let conn = rusqlite::Connection::open(&path)?;
                conn.busy_timeout(std::time::Duration::from_secs(5))?;
                conn.pragma_update(None, "synchronous", "FULL")?;
                super::secure_delete(&conn)?;
                let journal: String =
                    conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
                let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0))?;
                if !journal.eq_ignore_ascii_case("wal") || sync != 2 {
                    return Err(StoreError::Durability(format!(
                        "the audit connection runs with journal_mode={journal}, synchronous={sync}; arkku needs wal and 2 (FULL)"
                    )));
                }
                // The checkpointer thread copies the log into the database;
                // the writer does it itself only if that falls far behind.
                conn.pragma_update(None, "wal_autocheckpoint", WAL_BACKSTOP_PAGES)?;
                let checkpointer = WalCheckpointer::start(&path)?;
                Ok(Appender::Sqlite(
                    Arc::new(std::sync::Mutex::new(conn)),
                    checkpointer,
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
            Appender::Sqlite(conn, _) => {
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
            Appender::Postgres(pool, _) => {
                let mut tx = pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(AUDIT_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let seq: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) + 1 FROM audit_log")
                        .fetch_one(&mut *tx)
                        .await?;
                let row = [probe_row(seq)];
                insert_values(&row).build().execute(&mut *tx).await?;
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
            Appender::Sqlite(conn, checkpointer) => {
                let out = on_sqlite_thread(conn, move |conn| append_sqlite(conn, batch)).await;
                checkpointer.nudge();
                out
            }
            Appender::Postgres(pool, head) => append_postgres(pool, head, batch).await,
        }
    }
}

/// WAL pages after which the audit writer checkpoints by itself (about
/// 40 MiB): a backstop, should the checkpointer thread fall behind.
const WAL_BACKSTOP_PAGES: i64 = 10_000;

/// Copies committed WAL frames into the SQLite database file on a thread of
/// its own.
///
/// SQLite checkpoints on the commit that crosses `wal_autocheckpoint`
/// (1 000 pages), so every few batches one audit commit also copied a few
/// megabytes into the database file and synced it, while every request
/// behind it waited. A passive checkpoint on another connection does the
/// same work beside the writer, on the other core, and never blocks it.
/// Durability does not change: a commit is durable once its WAL frames are
/// synced, which the writer still does on every commit.
pub struct WalCheckpointer {
    nudge: std::sync::mpsc::SyncSender<()>,
}

impl WalCheckpointer {
    fn start(path: &std::path::Path) -> StoreResult<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        super::secure_delete(&conn)?;
        let (nudge, nudged) = std::sync::mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name("arkku-wal-checkpoint".into())
            .spawn(move || {
                // Ends when the appender (the sender) is dropped.
                while nudged.recv().is_ok() {
                    // Let a few commits gather: one checkpoint copies them all.
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    let checkpoint =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    if let Err(e) = checkpoint {
                        tracing::warn!(error = %e, "WAL checkpoint failed; the audit writer will checkpoint itself");
                    }
                }
            })
            .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        Ok(WalCheckpointer { nudge })
    }

    /// Asks for a checkpoint soon; a no-op if one is already asked for.
    fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }
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
fn probe_row(seq: i64) -> AuditRow {
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
    let (seq, hash) = match head {
        Some((s, h)) => head_of(Some(s), Some(h))?,
        None => head_of(None, None)?,
    };
    let Batch {
        mut rows,
        effects,
        chain,
        ..
    } = batch;
    chain(seq, hash, &mut rows);
    insert_sqlite(&tx, &rows)?;
    let applied = effects
        .iter()
        .map(|e| e.as_ref().map_or(Ok(true), |e| apply_sqlite(&tx, e)))
        .collect::<StoreResult<Vec<bool>>>()?;
    tx.commit()?;
    Ok((rows, applied))
}

/// Applies one effect if its customer is live; whether it did.
fn apply_sqlite(tx: &rusqlite::Transaction<'_>, effect: &Effect) -> StoreResult<bool> {
    match effect {
        Effect::Consent(c) => {
            let mut stmt = tx.prepare_cached(CONSENT_IF_LIVE_SQLITE)?;
            let n = stmt.execute(rusqlite::params![
                c.id,
                c.customer_id,
                c.purpose,
                c.channel,
                c.action,
                c.notice_id,
                c.notice_version,
                c.method,
                c.source_channel,
                c.actor_sub,
                c.actor_role,
                c.at,
                c.expires_at,
                c.status,
                c.confirms,
                c.review,
            ])?;
            Ok(n == 1)
        }
        Effect::Interaction(i) => {
            let n = tx.prepare_cached(super::interactions::INSERT_IF_LIVE)?.execute(
                rusqlite::named_params! {"$1": i.id, "$2": i.customer_id, "$3": i.channel, "$4": i.kind,
                "$5": i.body, "$6": i.created_at, "$7": i.due_at},
            )?;
            if n == 1 {
                tx.prepare_cached(super::interactions::TOUCH_CONTACTS)?.execute(
                    rusqlite::named_params! {"$1": i.customer_id, "$2": i.channel, "$3": i.created_at,
                    "$4": i.contacts_live_after},
                )?;
            }
            Ok(n == 1)
        }
        Effect::Contact(c) => {
            let n = tx
                .prepare_cached(super::customers::INSERT_CONTACT_IF_NEW)?
                .execute(
                    rusqlite::named_params! {"$1": c.id, "$2": c.customer_id, "$3": c.channel,
                    "$4": &c.blind_index[..], "$5": c.value, "$6": c.label, "$7": c.now},
                )?;
            Ok(n == 1)
        }
    }
}

const CONSENT_IF_LIVE_SQLITE: &str = "INSERT INTO consents (id, customer_id, purpose, channel, action, notice_id, notice_version, method, \
     source_channel, actor_sub, actor_role, at, expires_at, status, confirms, review) \
     SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16 \
     WHERE EXISTS (SELECT 1 FROM customers WHERE id = ?2 AND erased_at IS NULL)";

const CONSENT_IF_LIVE_PG: &str = "INSERT INTO consents (id, customer_id, purpose, channel, action, notice_id, notice_version, method, \
     source_channel, actor_sub, actor_role, at, expires_at, status, confirms, review) \
     SELECT u.* FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
     $9::text[], $10::text[], $11::text[], $12::bigint[], $13::bigint[], $14::text[], $15::uuid[], $16::text[]) \
     AS u(id, customer_id, purpose, channel, action, notice_id, notice_version, method, source_channel, actor_sub, actor_role, at, expires_at, \
     status, confirms, review) \
     WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = u.customer_id AND c.erased_at IS NULL) \
     RETURNING id";

const INTERACTIONS_IF_LIVE_PG: &str = "INSERT INTO interactions (id, customer_id, channel, kind, body, created_at, due_at) \
     SELECT u.* FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bytea[], $6::bigint[], $7::bigint[]) \
     AS u(id, customer_id, channel, kind, body, created_at, due_at) \
     WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id = u.customer_id AND c.erased_at IS NULL) \
     RETURNING id";

/// [`super::interactions::TOUCH_CONTACTS`] for many (customer, channel) pairs.
const TOUCH_CONTACTS_PG: &str = "UPDATE contacts c SET last_activity_at = u.at \
     FROM UNNEST($1::uuid[], $2::text[], $3::bigint[], $4::bigint[]) AS u(customer_id, channel, at, live_after) \
     WHERE c.customer_id = u.customer_id AND c.channel = u.channel \
       AND c.last_activity_at < u.at AND c.last_activity_at > u.live_after";

/// Applies the effects inside `tx`: one statement for the consent events,
/// and two for the interactions (insert, touch contact points); whether each
/// applied.
async fn apply_postgres(
    tx: &mut sqlx::PgConnection,
    effects: &[Option<Effect>],
) -> StoreResult<Vec<bool>> {
    let consents: Vec<&ConsentRow> = effects
        .iter()
        .filter_map(|e| match e {
            Some(Effect::Consent(c)) => Some(c),
            _ => None,
        })
        .collect();
    let mut applied_consents = std::collections::HashSet::new();
    if !consents.is_empty() {
        let col = |f: fn(&ConsentRow) -> Option<String>| {
            consents.iter().map(|c| f(c)).collect::<Vec<_>>()
        };
        let ids: Vec<Uuid> = sqlx::query_scalar(CONSENT_IF_LIVE_PG)
            .bind(consents.iter().map(|c| c.id).collect::<Vec<_>>())
            .bind(consents.iter().map(|c| c.customer_id).collect::<Vec<_>>())
            .bind(col(|c| Some(c.purpose.clone())))
            .bind(col(|c| Some(c.channel.clone())))
            .bind(col(|c| Some(c.action.clone())))
            .bind(col(|c| c.notice_id.clone()))
            .bind(col(|c| c.notice_version.clone()))
            .bind(col(|c| Some(c.method.clone())))
            .bind(col(|c| c.source_channel.clone()))
            .bind(col(|c| Some(c.actor_sub.clone())))
            .bind(col(|c| Some(c.actor_role.clone())))
            .bind(consents.iter().map(|c| c.at).collect::<Vec<_>>())
            .bind(consents.iter().map(|c| c.expires_at).collect::<Vec<_>>())
            .bind(col(|c| Some(c.status.clone())))
            .bind(consents.iter().map(|c| c.confirms).collect::<Vec<_>>())
            .bind(col(|c| c.review.clone()))
            .fetch_all(&mut *tx)
            .await?;
        applied_consents.extend(ids);
    }
    let interactions: Vec<&NewInteraction> = effects
        .iter()
        .filter_map(|e| match e {
            Some(Effect::Interaction(i)) => Some(i),
            _ => None,
        })
        .collect();
    let mut applied_interactions = std::collections::HashSet::new();
    if !interactions.is_empty() {
        let ids: Vec<Uuid> = sqlx::query_scalar(INTERACTIONS_IF_LIVE_PG)
            .bind(interactions.iter().map(|i| i.id).collect::<Vec<_>>())
            .bind(
                interactions
                    .iter()
                    .map(|i| i.customer_id)
                    .collect::<Vec<_>>(),
            )
            .bind(
                interactions
                    .iter()
                    .map(|i| i.channel.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                interactions
                    .iter()
                    .map(|i| i.kind.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                interactions
                    .iter()
                    .map(|i| i.body.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(
                interactions
                    .iter()
                    .map(|i| i.created_at)
                    .collect::<Vec<_>>(),
            )
            .bind(interactions.iter().map(|i| i.due_at).collect::<Vec<_>>())
            .fetch_all(&mut *tx)
            .await?;
        applied_interactions.extend(ids);
        // One touch per (customer, channel): the latest interaction's time.
        let mut touch = std::collections::BTreeMap::new();
        for i in interactions
            .iter()
            .filter(|i| applied_interactions.contains(&i.id))
        {
            let t = touch
                .entry((i.customer_id, i.channel.clone()))
                .or_insert((i.created_at, i.contacts_live_after));
            *t = (t.0.max(i.created_at), t.1.max(i.contacts_live_after));
        }
        if !touch.is_empty() {
            sqlx::query(TOUCH_CONTACTS_PG)
                .bind(touch.keys().map(|k| k.0).collect::<Vec<_>>())
                .bind(touch.keys().map(|k| k.1.clone()).collect::<Vec<_>>())
                .bind(touch.values().map(|v| v.0).collect::<Vec<_>>())
                .bind(touch.values().map(|v| v.1).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
        }
    }
    // Contact points are added one at a time: rare beside consents and
    // interactions, and each must report whether it was new.
    let mut applied_contacts = std::collections::HashSet::new();
    for e in effects {
        if let Some(Effect::Contact(c)) = e {
            let n = sqlx::query(super::customers::INSERT_CONTACT_IF_NEW)
                .bind(c.id)
                .bind(c.customer_id)
                .bind(&c.channel)
                .bind(&c.blind_index[..])
                .bind(&c.value)
                .bind(&c.label)
                .bind(c.now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                applied_contacts.insert(c.id);
            }
        }
    }
    let applied = effects
        .iter()
        .map(|e| match e {
            Some(Effect::Consent(c)) => applied_consents.contains(&c.id),
            Some(Effect::Interaction(i)) => applied_interactions.contains(&i.id),
            Some(Effect::Contact(c)) => applied_contacts.contains(&c.id),
            None => true,
        })
        .collect();
    Ok(applied)
}

fn insert_sqlite(tx: &rusqlite::Transaction<'_>, rows: &[AuditRow]) -> StoreResult<()> {
    let mut stmt = tx.prepare_cached(&format!(
        "INSERT INTO audit_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))?;
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
    cached: &tokio::sync::Mutex<Option<(i64, [u8; 32])>>,
    mut batch: Batch,
) -> StoreResult<(Vec<AuditRow>, Vec<bool>)> {
    const INSERT: &str = "INSERT INTO audit_log (seq, at, actor_sub, actor_role, actor_client, action, customer_id, \
        channel, purpose, decision, reason, request_id, detail, prev_hash, hash) \
        SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::uuid[], \
        $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::bytea[], $15::bytea[])";
    let mut head = cached.lock().await;
    let mut withdrawn = vec![false; batch.rows.len()];
    let mut races = 0;
    loop {
        let (seq, hash) = match *head {
            Some(h) => h,
            None => self::head(&Db::Postgres(pool.clone())).await?,
        };
        (batch.chain)(seq, hash, &mut batch.rows);
        let rows = &batch.rows;
        let col = |f: fn(&AuditRow) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
        let insert = sqlx::query(INSERT)
            .bind(rows.iter().map(|r| r.seq).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
            .bind(col(|r| Some(r.actor_sub.clone())))
            .bind(col(|r| Some(r.actor_role.clone())))
            .bind(col(|r| r.actor_client.clone()))
            .bind(col(|r| Some(r.action.clone())))
            .bind(rows.iter().map(|r| r.customer_id).collect::<Vec<_>>())
            .bind(col(|r| r.channel.clone()))
            .bind(col(|r| r.purpose.clone()))
            .bind(col(|r| Some(r.decision.clone())))
            .bind(col(|r| r.reason.clone()))
            .bind(col(|r| Some(r.request_id.clone())))
            .bind(col(|r| Some(r.detail.clone())))
            .bind(rows.iter().map(|r| r.prev_hash.clone()).collect::<Vec<_>>())
            .bind(rows.iter().map(|r| r.hash.clone()).collect::<Vec<_>>());
        let conflict = |e| StoreError::from_unique(e, "audit_log_pkey");
        let mut tx = pool.begin().await?;
        let written: StoreResult<Vec<bool>> = async {
            insert.execute(&mut *tx).await.map_err(conflict)?;
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
                    *head = Some((last.seq, h));
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

/// How often an optimistic PostgreSQL append may collide before giving up.
const MAX_RACES: usize = 64;

/// The last entry's seq and hash (`(0, zeros)` for an empty log).
pub async fn head(db: &Db) -> StoreResult<(i64, [u8; 32])> {
    const SQL: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
    let row = on_db!(db, pool => match sqlx::query(SQL).fetch_optional(pool).await? {
        Some(r) => Some((r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)),
        None => None,
    });
    match row {
        Some((seq, hash)) => head_of(Some(seq), Some(hash)),
        None => head_of(None, None),
    }
}

macro_rules! audit_row {
    ($r:expr) => {
        AuditRow {
            seq: $r.try_get(0)?,
            at: $r.try_get(1)?,
            actor_sub: $r.try_get(2)?,
            actor_role: $r.try_get(3)?,
            actor_client: $r.try_get(4)?,
            action: $r.try_get(5)?,
            customer_id: $r.try_get(6)?,
            channel: $r.try_get(7)?,
            purpose: $r.try_get(8)?,
            decision: $r.try_get(9)?,
            reason: $r.try_get(10)?,
            request_id: $r.try_get(11)?,
            detail: $r.try_get(12)?,
            prev_hash: $r.try_get(13)?,
            hash: $r.try_get(14)?,
        }
    };
}

/// Entries with `seq > after`, oldest first, at most `limit`.
pub async fn entries_after(db: &Db, after: i64, limit: i64) -> StoreResult<Vec<AuditRow>> {
    let sql = format!("SELECT {COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2");
    let rows = on_db!(db, pool => {
        let rows = sqlx::query(&sql).bind(after).bind(limit).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(audit_row!(r));
        }
        out
    });
    Ok(rows)
}

/// Filters of the compliance query; `None` matches everything.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub after_seq: i64,
    pub customer_id: Option<Uuid>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub decision: Option<String>,
    pub since: Option<Micros>,
    pub until: Option<Micros>,
    pub limit: i64,
}

/// Entries matching `f`, oldest first.
pub async fn query(db: &Db, f: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
    // Only the filters given become conditions: `($n IS NULL OR col = $n)`
    // would keep the planner off the customer index and scan the whole log.
    // Placeholders `$1, $2, …` in order, each used once: SQLite numbers
    // them by appearance, so positional binding matches on both engines.
    let mut conditions = vec!["seq > $1".to_owned()];
    let mut add = |column: &str, op: &str| {
        conditions.push(format!("{column} {op} ${}", conditions.len() + 1));
    };
    if f.customer_id.is_some() {
        add("customer_id", "=");
    }
    if f.actor.is_some() {
        add("actor_sub", "=");
    }
    if f.action.is_some() {
        add("action", "=");
    }
    if f.decision.is_some() {
        add("decision", "=");
    }
    if f.since.is_some() {
        add("at", ">=");
    }
    if f.until.is_some() {
        add("at", "<");
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE {} ORDER BY seq LIMIT ${}",
        conditions.join(" AND "),
        conditions.len() + 1
    );
    let rows = match db {
        // Pages of up to thousands of entries: stepped through in place on
        // the direct reader rather than one thread hop per row.
        Db::Sqlite(_, reader) => {
            use rusqlite::types::Value;
            let mut params = vec![Value::Integer(f.after_seq)];
            params.extend(f.customer_id.map(|c| Value::Blob(c.as_bytes().to_vec())));
            params.extend(f.actor.clone().map(Value::Text));
            params.extend(f.action.clone().map(Value::Text));
            params.extend(f.decision.clone().map(Value::Text));
            params.extend(f.since.map(Value::Integer));
            params.extend(f.until.map(Value::Integer));
            params.push(Value::Integer(f.limit));
            reader.read(|tx| {
                let mut stmt = tx.prepare_cached(&sql)?;
                let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
                    Ok(AuditRow {
                        seq: r.get(0)?,
                        at: r.get(1)?,
                        actor_sub: r.get(2)?,
                        actor_role: r.get(3)?,
                        actor_client: r.get(4)?,
                        action: r.get(5)?,
                        customer_id: r.get(6)?,
                        channel: r.get(7)?,
                        purpose: r.get(8)?,
                        decision: r.get(9)?,
                        reason: r.get(10)?,
                        request_id: r.get(11)?,
                        detail: r.get(12)?,
                        prev_hash: r.get(13)?,
                        hash: r.get(14)?,
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })?
        }
        Db::Postgres(pool) => {
            let mut q = sqlx::query(&sql).bind(f.after_seq);
            if let Some(c) = f.customer_id {
                q = q.bind(c);
            }
            if let Some(a) = f.actor.as_deref() {
                q = q.bind(a);
            }
            if let Some(a) = f.action.as_deref() {
                q = q.bind(a);
            }
            if let Some(d) = f.decision.as_deref() {
                q = q.bind(d);
            }
            if let Some(t) = f.since {
                q = q.bind(t);
            }
            if let Some(t) = f.until {
                q = q.bind(t);
            }
            let rows = q.bind(f.limit).fetch_all(pool).await?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(audit_row!(r));
            }
            out
        }
    };
    Ok(rows)
}

/// Stores a checkpoint; one already stored for that seq is kept.
pub async fn insert_checkpoint(db: &Db, c: &CheckpointRow) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO audit_checkpoints (seq, hash, at, signature, public_key) \
                       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (seq) DO NOTHING";
    on_db!(db, pool => sqlx::query(SQL)
        .bind(c.seq)
        .bind(&c.hash)
        .bind(c.at)
        .bind(&c.signature)
        .bind(&c.public_key)
        .execute(pool)
        .await
        .map(drop))?;
    Ok(())
}

/// Every stored checkpoint, by seq.
pub async fn checkpoints(db: &Db) -> StoreResult<Vec<CheckpointRow>> {
    const SQL: &str =
        "SELECT seq, hash, at, signature, public_key FROM audit_checkpoints ORDER BY seq";
    let rows = on_db!(db, pool => {
        let rows = sqlx::query(SQL).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(CheckpointRow {
                seq: r.try_get(0)?,
                hash: r.try_get(1)?,
                at: r.try_get(2)?,
                signature: r.try_get(3)?,
                public_key: r.try_get(4)?,
            });
        }
        out
    });
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(seq: i64, _prev: [u8; 32], rows: &mut [AuditRow]) {
        for (n, row) in (seq + 1..).zip(rows.iter_mut()) {
            row.seq = n;
        }
    }

    /// Appends leave the database file growing without the writer ever
    /// reaching its own checkpoint threshold: the checkpointer thread copied
    /// the WAL into it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_checkpointer_copies_audit_commits_into_the_database_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("vault.db");
        let db = Db::connect(&format!("sqlite://{}", file.display()))
            .await
            .expect("connect");
        db.migrate().await.expect("migrate");
        let appender = Appender::open(&db).expect("appender");
        {
            let conn = rusqlite::Connection::open(&file).expect("open");
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .expect("checkpoint");
        }
        let before = std::fs::metadata(&file).expect("size").len();
        let rows: Vec<AuditRow> = (0..500)
            .map(|_| AuditRow {
                detail: format!("{{\"padding\":\"{}\"}}", "x".repeat(200)),
                ..probe_row(0)
            })
            .collect();
        let n = rows.len();
        appender
            .append(Batch {
                rows,
                effects: (0..n).map(|_| None).collect(),
                claim: Box::new(move || vec![true; n]),
                withdraw: |_| {},
                chain: numbered,
            })
            .await
            .expect("append");
        // About 30 pages went to the WAL, far under the writer's backstop.
        let mut grown = false;
        for _ in 0..200 {
            if std::fs::metadata(&file).expect("size").len() > before {
                grown = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(grown, "the database file stayed at {before} bytes");
    }
}
