//! Reads of the audit tables (and the one write of checkpoints): the head,
//! pages in order, the compliance query with only the filters given, and
//! the signed checkpoints.

use sqlx::Row;
use uuid::Uuid;

use super::{
    append::{head_of, Head},
    columns, AuditRow, CheckpointRow,
};
use crate::store::{on_db, sql::Sql, Db, Micros, StoreResult};

/// The last entry's seq and hash (`None` for an empty log).
pub async fn head(db: &Db) -> StoreResult<Head> {
    const SQL: &str = "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1";
    let row = on_db!(db, pool => match sqlx::query(SQL).fetch_optional(pool).await? {
        Some(r) => Some((r.try_get::<i64, _>(0)?, r.try_get::<Vec<u8>, _>(1)?)),
        None => None,
    });
    head_of(row)
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
    const SQL: &str = concat!(
        "SELECT ",
        columns!(),
        " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
    );
    let rows = on_db!(db, pool => {
        let rows = sqlx::query(SQL).bind(after).bind(limit).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(audit_row!(r));
        }
        out
    });
    Ok(rows)
}

/// The stored hash of entry `seq`, if there is one.
pub async fn hash_at(db: &Db, seq: i64) -> StoreResult<Option<Vec<u8>>> {
    const SQL: &str = "SELECT hash FROM audit_log WHERE seq = $1";
    let hash = on_db!(db, pool => sqlx::query_scalar(SQL).bind(seq).fetch_optional(pool).await?);
    Ok(hash)
}

/// The highest seq in the log (`None` for an empty log).
pub async fn max_seq(db: &Db) -> StoreResult<Option<i64>> {
    const SQL: &str = "SELECT MAX(seq) FROM audit_log";
    let max = on_db!(db, pool => sqlx::query_scalar(SQL).fetch_one(pool).await?);
    Ok(max)
}

/// Filters of the compliance query; `None` matches everything.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub after_seq: i64,
    pub customer_id: Option<Uuid>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub decision: Option<String>,
    pub purpose: Option<String>,
    pub channel: Option<String>,
    pub reason: Option<String>,
    pub since: Option<Micros>,
    pub until: Option<Micros>,
    /// The highest seq to include (an export's fixed upper bound).
    pub through: Option<i64>,
    pub limit: i64,
}

/// The compliance query: only the filters given become conditions
/// (`($n IS NULL OR col = $n)` would keep the planner off the indexes and
/// scan the whole log).
///
/// On SQLite a customer's entries are found through the customer index's
/// runs (one seek per run that can hold entries past `after_seq`) and, past
/// the watermark that the runs cover, by scanning the log's newest entries
/// (fewer than a small run): see `index_runs`. Both parts and the check of
/// the log's own `customer_id` are read in one statement, so in one
/// snapshot, and an entry filed or merged into a run while the statement
/// runs cannot be missed or counted twice. The watermark is joined rather
/// than compared as a scalar subquery, which would leave the planner a
/// third of the log to expect. PostgreSQL keeps the per-entry index
/// (`runs: false`), and the filter is the plain condition.
fn filter_sql(f: &AuditFilter, runs: bool) -> Sql<'_> {
    let mut sql = Sql::new(concat!(
        "SELECT ",
        columns!(),
        " FROM audit_log WHERE seq > "
    ));
    sql.bind(f.after_seq);
    match f.customer_id {
        Some(c) if runs => {
            sql.push(
                " AND seq IN (SELECT seq FROM audit_customer_seqs \
             WHERE run IN (SELECT through_seq FROM audit_customer_runs WHERE through_seq > ",
            )
            .bind(f.after_seq)
            .push(") AND customer_id = ")
            .bind(c)
            .push(" AND seq > ")
            .bind(f.after_seq)
            .push(" UNION ALL SELECT l.seq FROM (SELECT COALESCE(MAX(through_seq), ")
            .bind(f.after_seq)
            .push(") AS mark FROM audit_customer_runs WHERE through_seq > ")
            .bind(f.after_seq)
            .push(") w JOIN audit_log l ON l.seq > w.mark WHERE l.customer_id = ")
            .bind(c)
            .push(") AND customer_id = ")
            .bind(c);
        }
        Some(c) => {
            sql.push(" AND customer_id = ").bind(c);
        }
        None => {}
    }
    if let Some(a) = f.actor.as_deref() {
        sql.push(" AND actor_sub = ").bind(a);
    }
    if let Some(a) = f.action.as_deref() {
        sql.push(" AND action = ").bind(a);
    }
    if let Some(d) = f.decision.as_deref() {
        sql.push(" AND decision = ").bind(d);
    }
    if let Some(p) = f.purpose.as_deref() {
        sql.push(" AND purpose = ").bind(p);
    }
    if let Some(c) = f.channel.as_deref() {
        sql.push(" AND channel = ").bind(c);
    }
    if let Some(r) = f.reason.as_deref() {
        sql.push(" AND reason = ").bind(r);
    }
    if let Some(t) = f.since {
        sql.push(" AND at >= ").bind(t);
    }
    if let Some(t) = f.until {
        sql.push(" AND at < ").bind(t);
    }
    if let Some(s) = f.through {
        sql.push(" AND seq <= ").bind(s);
    }
    sql.push(" ORDER BY seq LIMIT ").bind(f.limit);
    sql
}

/// Entries matching `f`, oldest first.
pub async fn query(db: &Db, f: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
    let sql = filter_sql(f, matches!(db, Db::Sqlite(..)));
    let rows = match db {
        // Pages of up to thousands of entries: stepped through in place on
        // the direct reader rather than one thread hop per row.
        Db::Sqlite(_, reader) => reader.read(|tx| {
            let mut stmt = tx.prepare_cached(sql.text())?;
            let rows = stmt.query_map(sql.rusqlite_params(), |r| {
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
        })?,
        Db::Postgres(pool) => {
            let rows = sql.query().fetch_all(pool).await?;
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

/// The first stored checkpoint at or after `seq`: the one that covers entry `seq`.
pub async fn checkpoint_from(db: &Db, seq: i64) -> StoreResult<Option<CheckpointRow>> {
    const SQL: &str = "SELECT seq, hash, at, signature, public_key FROM audit_checkpoints \
                       WHERE seq >= $1 ORDER BY seq LIMIT 1";
    let row = on_db!(db, pool => match sqlx::query(SQL).bind(seq).fetch_optional(pool).await? {
        Some(r) => Some(CheckpointRow {
            seq: r.try_get(0)?,
            hash: r.try_get(1)?,
            at: r.try_get(2)?,
            signature: r.try_get(3)?,
            public_key: r.try_get(4)?,
        }),
        None => None,
    });
    Ok(row)
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
    use crate::store::sql::Param;

    #[test]
    fn the_query_has_a_condition_only_for_each_filter_given() {
        let all = AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        };
        assert_eq!(
            filter_sql(&all, true).text(),
            concat!(
                "SELECT ",
                columns!(),
                " FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
            )
        );
        let some = AuditFilter {
            after_seq: 5,
            customer_id: Some(Uuid::nil()),
            decision: Some("deny".into()),
            until: Some(9),
            reason: Some("T-9".into()),
            through: Some(40),
            limit: 10,
            ..AuditFilter::default()
        };
        let sql = filter_sql(&some, true);
        assert!(
            sql.text().ends_with(
                "WHERE seq > $1 AND seq IN (SELECT seq FROM audit_customer_seqs \
                 WHERE run IN (SELECT through_seq FROM audit_customer_runs WHERE through_seq > $2) \
                 AND customer_id = $3 AND seq > $4 \
                 UNION ALL SELECT l.seq FROM (SELECT COALESCE(MAX(through_seq), $5) AS mark \
                 FROM audit_customer_runs WHERE through_seq > $6) w \
                 JOIN audit_log l ON l.seq > w.mark WHERE l.customer_id = $7) AND customer_id = $8 \
                 AND decision = $9 AND reason = $10 AND at < $11 AND seq <= $12 ORDER BY seq LIMIT $13"
            ),
            "{}",
            sql.text()
        );
        let customer = Param::Id(Some(Uuid::nil()));
        let after = Param::Int(Some(5));
        let params = sql.params();
        assert_eq!(params.len(), 13);
        for i in [0, 1, 3, 4, 5] {
            assert_eq!(params[i], after, "${}", i + 1);
        }
        for i in [2, 6, 7] {
            assert_eq!(params[i], customer, "${}", i + 1);
        }
        // PostgreSQL keeps the per-entry index: the plain condition.
        let sql = filter_sql(&some, false);
        assert!(
            sql.text().ends_with(
                "WHERE seq > $1 AND customer_id = $2 AND decision = $3 AND reason = $4 \
                 AND at < $5 AND seq <= $6 ORDER BY seq LIMIT $7"
            ),
            "{}",
            sql.text()
        );
    }
}
