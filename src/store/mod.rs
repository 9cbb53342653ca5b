//! Storage on SQLite (the embedded default) and PostgreSQL (production, scale-out).
//!
//! One module per aggregate, holding everything about its tables:
//! [`customers`] (customers, contact points), [`consents`], [`interactions`],
//! [`keys`] (channel and data keys), [`idempotency`], [`clients`] (integration
//! clients and revoked tokens), [`staff`] (staff accounts), [`web_sessions`]
//! (sessions of the web pages), [`sign_in`] (customer sign-in challenges),
//! [`outbox`] (the notifier's messages), [`dsr_requests`] (the register of
//! data subject requests), [`sweeps`] (the record of retention sweeps) and
//! [`audit`] (the audit log and its checkpoints);
//! [`erasure`] and [`retention`] delete across them.
//!
//! One code path for both engines where the SQL is the same: a query is
//! written once with `$n` placeholders, which both accept, and [`on_db!`]
//! runs it on whichever pool is live. Where the dialects differ (PostgreSQL's
//! batch writes through `UNNEST`, its JSON folding of consent facts), or where
//! SQLite goes through a direct connection (the hot reads in [`sqlite_read`],
//! the audit writer), the two implementations sit side by side in the
//! aggregate's module. A statement assembled at run time is built with
//! [`sql::Sql`], and nowhere else. Columns hold ciphertext, blind indexes,
//! ids and timestamps only; this module never sees a plaintext contact value
//! (see [`crate::vault`] for sealing).

pub mod audit;
pub mod clients;
pub mod consents;
pub mod customers;
pub mod dsr_requests;
pub mod erasure;
pub mod idempotency;
pub mod interactions;
pub mod keys;
pub mod outbox;
pub mod retention;
pub mod sign_in;
pub mod sql;
pub mod sqlite_read;
pub mod staff;
pub mod sweeps;
pub mod web_sessions;

use std::{path::Path, str::FromStr, sync::Arc, time::Duration};

use sqlx::{
    postgres::{PgConnectOptions, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
    PgPool, SqlitePool,
};

/// Runs one expression against whichever pool is live; `$pool` is bound to it.
/// The expression is compiled once per backend, so the same SQL text and the
/// same Rust code serve both.
#[macro_export]
#[doc(hidden)]
macro_rules! on_db {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite($pool, _) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub use crate::on_db;

/// Errors of the storage layer. The HTTP boundary maps them to opaque 500s
/// (or 503 when the database is unreachable); their text is only logged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL scheme (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error("the unique constraint {0} was violated")]
    Conflict(&'static str),
    #[error("{0}")]
    Durability(String),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is malformed: {0}")]
    Corrupt(&'static str),
    /// A data key named a channel-key version that a rotation has retired
    /// meanwhile (the foreign key `data_keys_channel_key` refused it). The
    /// caller rewraps under the current version and tries again.
    #[error("the channel-key version of a new data key has been retired")]
    RetiredKeyVersion,
}

impl StoreError {
    /// Maps a unique-constraint violation on `constraint` (by index name) to
    /// [`StoreError::Conflict`], so handlers can answer 409 without parsing text.
    pub fn from_unique(err: sqlx::Error, constraint: &'static str) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_unique_violation() {
                let named = db.constraint().map(|c| c == constraint);
                // SQLite does not report constraint names; its message names the columns.
                if named.unwrap_or(true) {
                    return StoreError::Conflict(constraint);
                }
            }
        }
        StoreError::Database(err)
    }

    /// Maps a foreign-key violation on the data key's channel-key version to
    /// [`StoreError::RetiredKeyVersion`]; any other error stays a database error.
    pub fn from_data_key_insert(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if db.is_foreign_key_violation() {
                // SQLite does not report constraint names; the only other
                // foreign key (the customer) is checked before data keys are written.
                let named = db.constraint().map(|c| c == keys::CHANNEL_KEY_FK);
                if named.unwrap_or(true) {
                    return StoreError::RetiredKeyVersion;
                }
            }
        }
        StoreError::Database(err)
    }

    /// True when the database could not be reached or stayed locked past its
    /// busy timeout (pool timeout, I/O, SQLite BUSY/LOCKED), or a write kept
    /// losing to key rotations: 503, not 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            // Only if the retry after a rotation failed too: try again later.
            StoreError::RetiredKeyVersion => true,
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed,
            ) => true,
            StoreError::Database(sqlx::Error::Database(db)) => {
                // SQLite primary result codes 5 (BUSY) and 6 (LOCKED), possibly extended.
                let code = db.code();
                let primary = code
                    .as_deref()
                    .and_then(|c| c.parse::<i64>().ok())
                    .map(|c| c & 0xff);
                matches!(primary, Some(5 | 6))
            }
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ),
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The live database: the backend is chosen from the URL scheme. On SQLite,
/// the hot reads bypass the pool through [`sqlite_read::Reader`].
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool, Arc<sqlite_read::Reader>),
    Postgres(PgPool),
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The versions of the SQLite migrations built into this binary: a backup
/// that names another cannot be restored by it.
pub fn sqlite_migration_versions() -> Vec<i64> {
    SQLITE_MIGRATIONS.iter().map(|m| m.version).collect()
}

impl Db {
    /// Connects to `url` (`sqlite://path` or `postgres://…`). SQLite files are
    /// created if missing and run in WAL mode with `synchronous=FULL`, so an
    /// acknowledged write survives a crash or power loss.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                // Deleted rows are overwritten with zeros, not merely freed
                // (see `SECURE_DELETE`).
                .pragma("secure_delete", SECURE_DELETE)
                // The default 2 MiB page cache re-reads a large database
                // through syscalls on every query; 16 MiB per connection keeps
                // hot pages in memory. (Memory-mapped I/O is left off: the
                // growing audit log remaps the file, and every remap costs a
                // TLB shootdown on every core.)
                .pragma("cache_size", "-16384");
            let file = opts.get_filename();
            let reader = Arc::new(sqlite_read::Reader::new(file));
            if let Some(dir) = file.parent() {
                if !dir.as_os_str().is_empty() && !dir.exists() {
                    create_private_dir(dir)
                        .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
                }
            }
            create_private_file(file)?;
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(2))
                .connect_with(opts)
                .await?;
            check_sqlite_settings(&pool).await?;
            Ok(Db::Sqlite(pool, reader))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(2))
                .connect_with(opts)
                .await?;
            Ok(Db::Postgres(pool))
        } else {
            Err(StoreError::UnsupportedUrl)
        }
    }

    /// Applies the embedded migrations of this backend.
    pub async fn migrate(&self) -> StoreResult<()> {
        match self {
            Db::Sqlite(pool, _) => SQLITE_MIGRATIONS.run(pool).await?,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Name of the backend, for logs and `/readyz`.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// The pool's open connections, how many of them are idle, and its
    /// maximum, for `/metrics`. (On SQLite the hot reads bypass the pool.)
    pub fn pool_use(&self) -> (u32, u32, u32) {
        fn idle(n: usize) -> u32 {
            u32::try_from(n).unwrap_or(u32::MAX)
        }
        match self {
            Db::Sqlite(pool, _) => (
                pool.size(),
                idle(pool.num_idle()),
                pool.options().get_max_connections(),
            ),
            Db::Postgres(pool) => (
                pool.size(),
                idle(pool.num_idle()),
                pool.options().get_max_connections(),
            ),
        }
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> StoreResult<()> {
        on_db!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))?;
        Ok(())
    }

    /// Removes the old copies of deleted rows from SQLite's write-ahead log,
    /// after an erasure or a retention purge has committed; a no-op on
    /// PostgreSQL (SECURITY.md says what it keeps).
    ///
    /// `secure_delete` zeroes deleted rows in the new page images, but the
    /// WAL still holds the frames of the transactions that wrote them (the
    /// insert of the data) until a later transaction happens to overwrite
    /// them: a passive checkpoint copies frames into the database file and
    /// leaves the file as it is. A `TRUNCATE` checkpoint copies every frame
    /// (the zeroed pages included) into the database file and cuts the WAL to
    /// zero bytes. It must wait until no reader uses an older snapshot and
    /// holds off writers meanwhile, so it is retried a few times (each try
    /// waits up to the busy timeout) and then given up with an error; the
    /// erasure itself has committed either way, and the next scrub removes
    /// the frames.
    pub async fn scrub_wal(&self) -> StoreResult<()> {
        const TRIES: u32 = 5;
        let Db::Sqlite(pool, _) = self else {
            return Ok(());
        };
        for attempt in 1..=TRIES {
            // (busy, frames in the log, frames checkpointed); busy = 1 when a
            // reader or writer kept the checkpoint from completing.
            let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                .fetch_one(pool)
                .await?;
            if busy == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt))).await;
        }
        Err(StoreError::Durability(format!(
            "the WAL could not be truncated after {TRIES} tries: readers or writers kept it busy"
        )))
    }

    /// Closes the pool (waits for connections to be returned).
    pub async fn close(&self) {
        on_db!(self, pool => pool.close().await)
    }
}

/// Pre-creates a SQLite file owner-only; SQLite gives its -wal and -shm
/// files the same mode. It holds ciphertext only, but metadata too.
fn create_private_file(file: &Path) -> StoreResult<()> {
    if file.as_os_str().is_empty() || file.to_str() == Some(":memory:") || file.exists() {
        return Ok(());
    }
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
        .map(drop)
        .or_else(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Ok(())
            } else {
                Err(e)
            }
        })
        .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))
}

/// sqlx applies the pool's settings per connection; check that they took,
/// because the audit log's durability and erasure's promise rest on them.
async fn check_sqlite_settings(pool: &SqlitePool) -> StoreResult<()> {
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(pool)
        .await?;
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(pool)
        .await?;
    if !journal.eq_ignore_ascii_case("wal") || synchronous != 2 {
        return Err(StoreError::Durability(format!(
            "SQLite runs with journal_mode={journal}, synchronous={synchronous}; arkku needs wal and 2 (FULL)"
        )));
    }
    let secure_delete: i64 = sqlx::query_scalar("PRAGMA secure_delete")
        .fetch_one(pool)
        .await?;
    if secure_delete != 1 {
        return Err(StoreError::Durability(format!(
            "SQLite runs with secure_delete={secure_delete}; arkku needs 1 (ON)"
        )));
    }
    Ok(())
}

/// SQLite's `secure_delete` setting on every connection arkku opens: ON, so
/// that deleted content (cells of deleted rows, freed pages) is overwritten
/// with zeros. Without it an erased customer's wrapped data keys and
/// ciphertext stay readable in the file's free space until reused. `FAST`
/// is not enough: it leaves freed pages (freelist leaves) as they were.
pub const SECURE_DELETE: &str = "ON";

/// Applies [`SECURE_DELETE`] to a direct (rusqlite) connection and checks that
/// it took; every connection arkku opens outside the pool goes through here.
pub fn secure_delete(conn: &rusqlite::Connection) -> StoreResult<()> {
    conn.pragma_update(None, "secure_delete", SECURE_DELETE)?;
    let on: i64 = conn.pragma_query_value(None, "secure_delete", |r| r.get(0))?;
    if on != 1 {
        return Err(StoreError::Durability(format!(
            "a SQLite connection runs with secure_delete={on}; arkku needs 1 (ON)"
        )));
    }
    Ok(())
}

/// Creates a directory (and parents) readable by the owner only.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Microseconds since the Unix epoch: the one timestamp representation in the
/// database, identical on both backends.
pub type Micros = i64;

/// Converts a stored timestamp to a `time::OffsetDateTime` (UTC).
pub fn from_micros(us: Micros) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// Converts a time to stored microseconds.
pub fn to_micros(t: time::OffsetDateTime) -> Micros {
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}
