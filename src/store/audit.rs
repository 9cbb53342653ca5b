//! The audit tables: batched appends under a writer lock, reads, checkpoints.
//! Chaining and signing live in [`crate::audit`]; this module moves rows.

use sqlx::Row;
use uuid::Uuid;

use super::{on_db, Db, Micros, StoreError, StoreResult};

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

/// A stored checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointRow {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at: Micros,
    pub signature: Vec<u8>,
    pub public_key: Vec<u8>,
}

/// Rows per multi-row INSERT: 15 parameters each stays far below both
/// engines' parameter limits.
const INSERT_CHUNK: usize = 500;

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

/// Appends a batch at the head of the chain, atomically and durably.
///
/// Inside one transaction that holds the writer lock (SQLite `BEGIN
/// IMMEDIATE`; PostgreSQL a transaction-scoped advisory lock), it reads the
/// head, lets `build` chain the new rows onto it, inserts them and commits.
/// So appends from several processes form one gap-free, fork-free order, and
/// a whole batch costs one commit (one fsync): group commit.
pub async fn append_batch<F>(db: &Db, build: F) -> StoreResult<Vec<AuditRow>>
where
    F: FnOnce(i64, [u8; 32]) -> Vec<AuditRow>,
{
    const HEAD: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
    macro_rules! chained_insert {
        ($tx:ident) => {{
            let head = sqlx::query(HEAD).fetch_optional(&mut *$tx).await?;
            let (seq, hash) = match head {
                Some(r) => head_of(Some(r.try_get(0)?), Some(r.try_get(1)?))?,
                None => head_of(None, None)?,
            };
            let rows = build(seq, hash);
            for chunk in rows.chunks(INSERT_CHUNK) {
                let mut qb = sqlx::QueryBuilder::new(format!("INSERT INTO audit_log ({COLUMNS}) "));
                qb.push_values(chunk, |mut b, r| {
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
                qb.build().execute(&mut *$tx).await?;
            }
            $tx.commit().await?;
            rows
        }};
    }
    let rows = match db {
        Db::Sqlite(pool) => {
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            chained_insert!(tx)
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(AUDIT_LOCK)
                .execute(&mut *tx)
                .await?;
            chained_insert!(tx)
        }
    };
    Ok(rows)
}

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
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 \
         AND ($2 IS NULL OR customer_id = $2) AND ($3 IS NULL OR actor_sub = $3) \
         AND ($4 IS NULL OR action = $4) AND ($5 IS NULL OR decision = $5) \
         AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7) \
         ORDER BY seq LIMIT $8"
    );
    let rows = on_db!(db, pool => {
        let rows = sqlx::query(&sql)
            .bind(f.after_seq)
            .bind(f.customer_id)
            .bind(f.actor.as_deref())
            .bind(f.action.as_deref())
            .bind(f.decision.as_deref())
            .bind(f.since)
            .bind(f.until)
            .bind(f.limit)
            .fetch_all(pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(audit_row!(r));
        }
        out
    });
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
