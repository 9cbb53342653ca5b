//! The `retention_sweeps` table: one row per completed retention sweep, so
//! that the last sweep can be shown even when it purged nothing (and so
//! wrote no `retention.purge` entry). Counts only; ids stay in the audit log.

use super::{on_db, Db, Micros, StoreResult};

/// One completed sweep as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SweepRow {
    /// The request id its `retention.purge` entries carry.
    pub run_id: String,
    /// The time it swept for.
    pub as_of: Micros,
    pub elapsed_ms: i64,
    /// Contact points, interactions and consent events purged.
    pub purged: i64,
    /// Customers erased because nothing was left.
    pub customers: i64,
    /// Audit entries written.
    pub batches: i64,
    /// A JSON object of counts per channel, `channel.kind` and purpose.
    pub counts: String,
}

/// Records a sweep and forgets the records of sweeps before `forget_before`.
pub async fn record(db: &Db, row: &SweepRow, forget_before: Micros) -> StoreResult<()> {
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM retention_sweeps WHERE as_of < $1")
            .bind(forget_before)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO retention_sweeps \
             (run_id, as_of, elapsed_ms, purged, customers, batches, counts) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&row.run_id)
        .bind(row.as_of)
        .bind(row.elapsed_ms)
        .bind(row.purged)
        .bind(row.customers)
        .bind(row.batches)
        .bind(&row.counts)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    });
    Ok(())
}

/// The most recent sweep (by the time it swept for), if any is recorded.
pub async fn last(db: &Db) -> StoreResult<Option<SweepRow>> {
    Ok(on_db!(db, pool => sqlx::query_as::<_, SweepRow>(
        "SELECT run_id, as_of, elapsed_ms, purged, customers, batches, counts \
         FROM retention_sweeps ORDER BY as_of DESC, run_id DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?))
}
