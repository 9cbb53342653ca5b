//! The `audit_ties` table: signed ties between the audit chains of several
//! shards, stored alike in every shard (see [`crate::audit::shards`]).

use sqlx::Row;

use crate::store::{on_db, Db, StoreResult};

/// One stored tie: its number, the SHA-256 of its signed message, and the
/// tie as exported (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TieRow {
    pub n: i64,
    pub digest: Vec<u8>,
    pub body: String,
}

/// Stores a tie; false when this shard already holds a tie numbered `n`
/// (which is then left as it was).
pub async fn insert_tie(db: &Db, t: &TieRow) -> StoreResult<bool> {
    const SQL: &str =
        "INSERT INTO audit_ties (n, digest, body) VALUES ($1, $2, $3) ON CONFLICT (n) DO NOTHING";
    let inserted = on_db!(db, pool => sqlx::query(SQL)
        .bind(t.n)
        .bind(&t.digest)
        .bind(&t.body)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(inserted == 1)
}

/// Every tie this shard holds, by number. Ties are few (one per tie run,
/// typically one a minute or less often), so they are read whole.
pub async fn ties(db: &Db) -> StoreResult<Vec<TieRow>> {
    const SQL: &str = "SELECT n, digest, body FROM audit_ties ORDER BY n";
    let rows = on_db!(db, pool => {
        let rows = sqlx::query(SQL).fetch_all(pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            out.push(TieRow {
                n: r.try_get(0)?,
                digest: r.try_get(1)?,
                body: r.try_get(2)?,
            });
        }
        out
    });
    Ok(rows)
}
