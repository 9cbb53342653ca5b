//! The `staff_users` table: staff accounts of the console. Rows hold an
//! argon2id hash (never a password) and a sealed TOTP secret (never the
//! secret); see [`crate::service::staff`] for what they mean.
//!
//! Every change that a concurrent sign-in or admin action could race is a
//! conditional update that says whether it applied: a failure counts from
//! the count it read, a TOTP step is claimed only if it is newer than the
//! last, and a sign-in succeeds only in the epoch it checked.

use uuid::Uuid;

use super::{on_db, Db, Micros, StoreError, StoreResult};

/// The unique index on names (a second account of a name is refused).
pub const NAME_UNIQUE: &str = "staff_users_name";

/// One account as stored.
#[derive(Clone, sqlx::FromRow)]
pub struct StaffRow {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub totp_secret: Vec<u8>,
    pub disabled_at: Option<Micros>,
    pub failed_attempts: i64,
    pub locked_until: Option<Micros>,
    pub last_totp_step: Option<i64>,
    pub epoch: i64,
    pub created_at: Micros,
    pub updated_at: Micros,
}

impl std::fmt::Debug for StaffRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffRow")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, name, role, password_hash, totp_secret, disabled_at, failed_attempts, \
     locked_until, last_totp_step, epoch, created_at, updated_at";

/// Inserts a new account; [`StoreError::Conflict`]`(`[`NAME_UNIQUE`]`)` if
/// the name is taken.
pub async fn insert(db: &Db, row: &StaffRow) -> StoreResult<()> {
    let sql = format!(
        "INSERT INTO staff_users ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    );
    on_db!(db, pool => sqlx::query(&sql)
        .bind(row.id)
        .bind(&row.name)
        .bind(&row.role)
        .bind(&row.password_hash)
        .bind(&row.totp_secret)
        .bind(row.disabled_at)
        .bind(row.failed_attempts)
        .bind(row.locked_until)
        .bind(row.last_totp_step)
        .bind(row.epoch)
        .bind(row.created_at)
        .bind(row.updated_at)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| StoreError::from_unique(e, NAME_UNIQUE)))
}

/// The account named `name` (already lower-cased), if any.
pub async fn by_name(db: &Db, name: &str) -> StoreResult<Option<StaffRow>> {
    let sql = format!("SELECT {COLUMNS} FROM staff_users WHERE name = $1");
    Ok(on_db!(db, pool => sqlx::query_as::<_, StaffRow>(&sql)
        .bind(name)
        .fetch_optional(pool)
        .await?))
}

/// The account `id`, if any.
pub async fn by_id(db: &Db, id: Uuid) -> StoreResult<Option<StaffRow>> {
    let sql = format!("SELECT {COLUMNS} FROM staff_users WHERE id = $1");
    Ok(on_db!(db, pool => sqlx::query_as::<_, StaffRow>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await?))
}

/// Every account, by name.
pub async fn list(db: &Db) -> StoreResult<Vec<StaffRow>> {
    let sql = format!("SELECT {COLUMNS} FROM staff_users ORDER BY name");
    Ok(on_db!(db, pool => sqlx::query_as::<_, StaffRow>(&sql)
        .fetch_all(pool)
        .await?))
}

/// Runs an update and says whether it changed a row.
macro_rules! applied {
    ($db:expr, $query:expr) => {
        Ok(on_db!($db, pool => $query.execute(pool).await?.rows_affected()) == 1)
    };
}

/// Disables an enabled account and moves its epoch on; whether it applied
/// (false: unknown, or disabled already).
pub async fn disable(db: &Db, id: Uuid, now: Micros) -> StoreResult<bool> {
    applied!(
        db,
        sqlx::query(
            "UPDATE staff_users SET disabled_at = $2, epoch = epoch + 1, updated_at = $2 \
             WHERE id = $1 AND disabled_at IS NULL",
        )
        .bind(id)
        .bind(now)
    )
}

/// Replaces an enabled account's password hash, clears its lockout and moves
/// its epoch on; whether it applied.
pub async fn set_password(db: &Db, id: Uuid, phc: &str, now: Micros) -> StoreResult<bool> {
    applied!(
        db,
        sqlx::query(
            "UPDATE staff_users SET password_hash = $2, failed_attempts = 0, \
             locked_until = NULL, epoch = epoch + 1, updated_at = $3 \
             WHERE id = $1 AND disabled_at IS NULL",
        )
        .bind(id)
        .bind(phc)
        .bind(now)
    )
}

/// Replaces an enabled account's sealed TOTP secret, forgets its last used
/// step (the new secret's codes are new), clears its lockout and moves its
/// epoch on; whether it applied.
pub async fn set_totp(db: &Db, id: Uuid, sealed: &[u8], now: Micros) -> StoreResult<bool> {
    applied!(
        db,
        sqlx::query(
            "UPDATE staff_users SET totp_secret = $2, last_totp_step = NULL, \
             failed_attempts = 0, locked_until = NULL, epoch = epoch + 1, updated_at = $3 \
             WHERE id = $1 AND disabled_at IS NULL",
        )
        .bind(id)
        .bind(sealed)
        .bind(now)
    )
}

/// A failure count and lock, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRow {
    pub failed_attempts: i64,
    pub locked_until: Option<Micros>,
}

/// Replaces the lockout `seen` by `next`, only if it is still `seen`
/// (another attempt did not count meanwhile); whether it applied.
pub async fn swap_lockout(
    db: &Db,
    id: Uuid,
    seen: LockoutRow,
    next: LockoutRow,
) -> StoreResult<bool> {
    // NULL never equals NULL in SQL, so an absent lock is compared as -1.
    applied!(
        db,
        sqlx::query(
            "UPDATE staff_users SET failed_attempts = $4, locked_until = $5 \
             WHERE id = $1 AND failed_attempts = $2 AND COALESCE(locked_until, -1) = $3",
        )
        .bind(id)
        .bind(seen.failed_attempts)
        .bind(seen.locked_until.unwrap_or(-1))
        .bind(next.failed_attempts)
        .bind(next.locked_until)
    )
}

/// Claims TOTP `step` for the account in `epoch`: only if no step as new
/// was used before (a code is good once) and the epoch has not moved (no
/// reset or disable meanwhile). With `clear_lockout`, a successful sign-in
/// also sets the failure count to zero and lifts an ended lock. Whether it
/// applied.
pub async fn claim_step(
    db: &Db,
    id: Uuid,
    epoch: i64,
    step: i64,
    clear_lockout: bool,
) -> StoreResult<bool> {
    let sql = if clear_lockout {
        "UPDATE staff_users SET last_totp_step = $3, failed_attempts = 0, locked_until = NULL \
         WHERE id = $1 AND epoch = $2 AND COALESCE(last_totp_step, -1) < $3"
    } else {
        "UPDATE staff_users SET last_totp_step = $3 \
         WHERE id = $1 AND epoch = $2 AND COALESCE(last_totp_step, -1) < $3"
    };
    applied!(db, sqlx::query(sql).bind(id).bind(epoch).bind(step))
}
