//! The `clients`, `client_revoked_tokens` and `client_changes` tables:
//! integration clients with the argon2id PHC strings of their secrets (never
//! a secret), the tokens revoked one by one, and the change counter every
//! `serve` process polls to learn of revocations (see
//! [`crate::identity::revocation`]).
//!
//! Every change that can refuse a token raises the counter in its own
//! transaction, so a reader that sees the new counter value also sees the
//! change.

use uuid::Uuid;

use super::{on_db, Db, Micros, StoreResult};

/// A client as stored.
#[derive(Debug, Clone)]
pub struct ClientRow {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    /// Purpose names separated by single spaces.
    pub purposes: String,
    pub channel: Option<String>,
    pub token_ttl_secs: i64,
    pub secret_phc: String,
    pub previous_secret_phc: Option<String>,
    pub previous_valid_until: Option<Micros>,
    pub created_at: Micros,
    pub secret_rotated_at: Option<Micros>,
    pub revoked_at: Option<Micros>,
}

type Row = (
    Uuid,
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    Option<String>,
    Option<i64>,
    i64,
    Option<i64>,
    Option<i64>,
);

const COLUMNS: &str = "id, name, role, purposes, channel, token_ttl_secs, secret_phc, \
     previous_secret_phc, previous_valid_until, created_at, secret_rotated_at, revoked_at";

fn from_row(r: Row) -> ClientRow {
    ClientRow {
        id: r.0,
        name: r.1,
        role: r.2,
        purposes: r.3,
        channel: r.4,
        token_ttl_secs: r.5,
        secret_phc: r.6,
        previous_secret_phc: r.7,
        previous_valid_until: r.8,
        created_at: r.9,
        secret_rotated_at: r.10,
        revoked_at: r.11,
    }
}

const BUMP: &str = "UPDATE client_changes SET version = version + 1 WHERE id = 1";

/// Stores a new client (and raises the change counter).
pub async fn insert(db: &Db, c: &ClientRow) -> StoreResult<()> {
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "INSERT INTO clients (id, name, role, purposes, channel, token_ttl_secs, secret_phc, \
             previous_secret_phc, previous_valid_until, created_at, secret_rotated_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8, NULL, NULL)",
        )
        .bind(c.id)
        .bind(&c.name)
        .bind(&c.role)
        .bind(&c.purposes)
        .bind(&c.channel)
        .bind(c.token_ttl_secs)
        .bind(&c.secret_phc)
        .bind(c.created_at)
        .execute(&mut *tx)
        .await?;
        sqlx::query(BUMP).execute(&mut *tx).await?;
        tx.commit().await
    })?;
    Ok(())
}

/// One client, revoked or not.
pub async fn get(db: &Db, id: Uuid) -> StoreResult<Option<ClientRow>> {
    let sql = format!("SELECT {COLUMNS} FROM clients WHERE id = $1");
    let row: Option<Row> =
        on_db!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)?;
    Ok(row.map(from_row))
}

/// Every client, oldest first.
pub async fn list(db: &Db) -> StoreResult<Vec<ClientRow>> {
    let sql = format!("SELECT {COLUMNS} FROM clients ORDER BY created_at, id");
    let rows: Vec<Row> = on_db!(db, pool => sqlx::query_as(&sql).fetch_all(pool).await)?;
    Ok(rows.into_iter().map(from_row).collect())
}

/// Revokes a client at `now` (a second revocation keeps the first time);
/// whether the client exists.
pub async fn revoke(db: &Db, id: Uuid, now: Micros) -> StoreResult<bool> {
    let found = on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        let found = sqlx::query(
            "UPDATE clients SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        sqlx::query(BUMP).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok::<_, sqlx::Error>(found)
    })?;
    Ok(found)
}

/// A new secret for a live client: `secret_phc` replaces the current one,
/// which stays valid until `previous_valid_until` (`None`: not at all).
/// Whether a live client was updated.
pub async fn rotate_secret(
    db: &Db,
    id: Uuid,
    secret_phc: &str,
    previous_valid_until: Option<Micros>,
    now: Micros,
) -> StoreResult<bool> {
    let updated = on_db!(db, pool => sqlx::query(
        "UPDATE clients SET \
         previous_secret_phc = CASE WHEN $3 IS NULL THEN NULL ELSE secret_phc END, \
         previous_valid_until = $3, secret_phc = $2, secret_rotated_at = $4 \
         WHERE id = $1 AND revoked_at IS NULL",
    )
    .bind(id)
    .bind(secret_phc)
    .bind(previous_valid_until)
    .bind(now)
    .execute(pool)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(updated == 1)
}

/// Records a revoked token (a repeat is a no-op) and forgets those that have
/// expired before `now`.
pub async fn revoke_token(
    db: &Db,
    jti: &str,
    client: Uuid,
    expires_at: Micros,
    now: Micros,
) -> StoreResult<()> {
    on_db!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM client_revoked_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO client_revoked_tokens (jti, client_id, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(client)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query(BUMP).execute(&mut *tx).await?;
        tx.commit().await
    })?;
    Ok(())
}

/// The change counter: one indexed read of one row.
pub async fn version(db: &Db) -> StoreResult<i64> {
    let v = on_db!(db, pool => sqlx::query_scalar::<_, i64>(
        "SELECT version FROM client_changes WHERE id = 1",
    )
    .fetch_one(pool)
    .await)?;
    Ok(v)
}

/// What refuses tokens: every client id with whether it is revoked, and the
/// ids of revoked tokens that have not yet expired at `now`.
pub async fn revocations(db: &Db, now: Micros) -> StoreResult<(Vec<(Uuid, bool)>, Vec<String>)> {
    let clients: Vec<(Uuid, Option<i64>)> = on_db!(db, pool => sqlx::query_as(
        "SELECT id, revoked_at FROM clients",
    )
    .fetch_all(pool)
    .await)?;
    let tokens: Vec<String> = on_db!(db, pool => sqlx::query_scalar(
        "SELECT jti FROM client_revoked_tokens WHERE expires_at >= $1",
    )
    .bind(now)
    .fetch_all(pool)
    .await)?;
    Ok((
        clients
            .into_iter()
            .map(|(id, revoked)| (id, revoked.is_some()))
            .collect(),
        tokens,
    ))
}
