//! Backup and restore of the embedded (SQLite) vault.
//!
//! A backup is taken with SQLite's `VACUUM INTO`: one read transaction, so
//! the copy is the database as of one instant even while `serve` writes
//! (WAL readers never block writers), written page by page by the engine
//! rather than copied as a file that may be mid-write. It holds only live
//! rows (no free pages, so no residue of rows deleted before it), and no key
//! file: the root key is kept apart from the ciphertext it opens.
//!
//! A restore checks that the file is an arkku database (integrity check,
//! migrations this binary knows, the audit log), copies it beside the target
//! with the same engine, syncs it and renames it into place, holding the
//! [`lock`] that keeps it away from a running `serve`. It never merges and
//! never silently replaces a vault that holds data.
//!
//! PostgreSQL has its own tools (`pg_dump`, `pg_restore`); the README gives
//! the procedure, and these functions are for SQLite only.

pub mod lock;

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use rusqlite::{Connection, OpenFlags};

/// Why a backup or restore did not happen; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} already exists: a backup never overwrites a file; choose a new name")]
    TargetExists(PathBuf),
    #[error("there is no database at {0}")]
    NoDatabase(PathBuf),
    #[error("{0} is not an arkku SQLite database: {1}")]
    NotArkku(PathBuf, String),
    #[error(
        "{path} already holds a vault ({holds}): restore never merges. Restore into a new data \
         dir (ARKKU_DATA_DIR), or stop the vault and pass --force to put the backup in its \
         place (the current file is kept beside it as {aside})"
    )]
    HoldsData {
        path: PathBuf,
        /// What it holds, in words.
        holds: String,
        aside: String,
    },
    #[error("{0}: the path must be valid UTF-8")]
    NotUtf8(PathBuf),
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what} {path}: {source}")]
    Sqlite {
        what: &'static str,
        path: PathBuf,
        source: rusqlite::Error,
    },
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        what,
        path: path.to_owned(),
        source,
    }
}

fn sql<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(rusqlite::Error) -> BackupError + 'a {
    move |source| BackupError::Sqlite {
        what,
        path: path.to_owned(),
        source,
    }
}

/// The SQLite file of a `sqlite://` URL; `None` for any other database.
pub fn sqlite_file(database_url: &str) -> Option<PathBuf> {
    use std::str::FromStr;
    if !database_url.starts_with("sqlite:") {
        return None;
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(database_url).ok()?;
    Some(opts.get_filename().to_owned())
}

/// What a backup or restore wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// The file written.
    pub file: PathBuf,
    pub bytes: u64,
    /// The last audit entry in it (0 for an empty log).
    pub audit_head_seq: i64,
    pub customers: i64,
}

/// `arkku backup`: a consistent copy of the live database `db` in the new
/// file `to`, owner-only. The copy is made beside `to` and linked to its
/// name only when complete and synced, and linking fails if `to` appeared
/// meanwhile: a backup never overwrites.
pub fn backup(db: &Path, to: &Path) -> Result<Summary, BackupError> {
    if !db.exists() {
        return Err(BackupError::NoDatabase(db.to_owned()));
    }
    if to.symlink_metadata().is_ok() {
        return Err(BackupError::TargetExists(to.to_owned()));
    }
    let tmp = beside(to, "partial")?;
    let result = (|| -> Result<Summary, BackupError> {
        let live = Connection::open_with_flags(
            db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql("opening", db))?;
        live.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sql("opening", db))?;
        vacuum_into(&live, db, &tmp)?;
        drop(live);
        let summary = check(&tmp, to)?;
        sync(&tmp)?;
        std::fs::hard_link(&tmp, to).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                BackupError::TargetExists(to.to_owned())
            } else {
                io("writing", to)(e)
            }
        })?;
        Ok(summary)
    })();
    let _ = std::fs::remove_file(&tmp);
    let summary = result?;
    sync_dir(to)?;
    Ok(summary)
}

/// `arkku restore`: puts the backup `from` in place as the database `db`.
/// Refuses while a `serve` holds the [`lock`], and when `db` already holds
/// a vault unless `force` (then the old file and its WAL are renamed aside,
/// never deleted). Returns what was restored.
pub fn restore(from: &Path, db: &Path, force: bool) -> Result<Summary, BackupError> {
    // Check the source before touching anything of the target.
    {
        let src = Connection::open_with_flags(
            from,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| BackupError::NotArkku(from.to_owned(), e.to_string()))?;
        is_arkku(&src, from)?;
    }
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::store::create_private_dir(dir).map_err(io("creating", dir))?;
    }
    let _lock = lock::exclusive(db)?;
    let aside = sibling(
        db,
        &format!(
            "replaced-{}",
            time::OffsetDateTime::now_utc().unix_timestamp()
        ),
    );
    if db.exists() {
        let (entries, customers) = holdings(db);
        if (entries != 0 || customers != 0) && !force {
            let holds = if entries < 0 {
                "a file that cannot be read as an arkku database".to_owned()
            } else {
                format!("{entries} audit entries, {customers} customers")
            };
            return Err(BackupError::HoldsData {
                path: db.to_owned(),
                holds,
                aside: aside.display().to_string(),
            });
        }
    }
    let staged = sibling(db, "restoring");
    let _ = std::fs::remove_file(&staged);
    create_private(&staged)?;
    let result = (|| -> Result<Summary, BackupError> {
        let src = Connection::open_with_flags(
            from,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql("opening", from))?;
        vacuum_into(&src, from, &staged)?;
        drop(src);
        let summary = check(&staged, db)?;
        sync(&staged)?;
        Ok(summary)
    })();
    let summary = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
    };
    // The old file's WAL must not be applied to the new file: it goes
    // aside with its database, and the shared-memory index is dropped.
    if db.exists() {
        std::fs::rename(db, &aside).map_err(io("moving aside", db))?;
        let wal = sibling_raw(db, "-wal");
        if wal.exists() {
            let wal_aside = sibling_raw(&aside, "-wal");
            std::fs::rename(&wal, &wal_aside).map_err(io("moving aside", &wal))?;
        }
    } else {
        let wal = sibling_raw(db, "-wal");
        if wal.exists() {
            std::fs::remove_file(&wal).map_err(io("removing", &wal))?;
        }
    }
    let shm = sibling_raw(db, "-shm");
    if shm.exists() {
        std::fs::remove_file(&shm).map_err(io("removing", &shm))?;
    }
    std::fs::rename(&staged, db).map_err(io("renaming into place", db))?;
    sync_dir(db)?;
    Ok(summary)
}

/// Copies the database open on `conn` into the empty file `into`.
fn vacuum_into(conn: &Connection, from: &Path, into: &Path) -> Result<(), BackupError> {
    let target = into
        .to_str()
        .ok_or_else(|| BackupError::NotUtf8(into.to_owned()))?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(sql("copying", from))?;
    Ok(())
}

/// Checks that the database in `conn` is an arkku database this binary can
/// run: intact, with only migrations it knows, all applied, and the audit
/// log present.
fn is_arkku(conn: &Connection, path: &Path) -> Result<(), BackupError> {
    let not = |why: String| BackupError::NotArkku(path.to_owned(), why);
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| not(e.to_string()))?;
    if integrity != "ok" {
        return Err(not(format!("the integrity check failed: {integrity}")));
    }
    let has = |table: &str| -> Result<bool, BackupError> {
        conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
            [table],
            |r| r.get(0),
        )
        .map_err(|e| not(e.to_string()))
    };
    if !has("_sqlx_migrations")? {
        return Err(not("it has no migrations table".into()));
    }
    let mut stmt = conn
        .prepare("SELECT version, success FROM _sqlx_migrations ORDER BY version")
        .map_err(|e| not(e.to_string()))?;
    let applied = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, bool>(1)?)))
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| not(e.to_string()))?;
    if applied.is_empty() {
        return Err(not("no migration was applied to it".into()));
    }
    let known = crate::store::sqlite_migration_versions();
    if let Some((v, _)) = applied.iter().find(|(v, _)| !known.contains(v)) {
        return Err(not(format!(
            "it was migrated by a newer arkku (migration {v} is unknown to this one); \
             restore it with that version"
        )));
    }
    if let Some((v, _)) = applied.iter().find(|(_, ok)| !ok) {
        return Err(not(format!("its migration {v} did not complete")));
    }
    for table in ["audit_log", "customers"] {
        if !has(table)? {
            return Err(not(format!("it has no {table} table")));
        }
    }
    Ok(())
}

/// Checks a written copy and reads what it holds; `name` is what it will be called.
fn check(copy: &Path, name: &Path) -> Result<Summary, BackupError> {
    let conn = Connection::open_with_flags(
        copy,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql("reading the copy", copy))?;
    is_arkku(&conn, copy)?;
    let head: i64 = conn
        .query_row("SELECT COALESCE(MAX(seq), 0) FROM audit_log", [], |r| {
            r.get(0)
        })
        .map_err(sql("reading the copy", copy))?;
    let customers: i64 = conn
        .query_row("SELECT COUNT(*) FROM customers", [], |r| r.get(0))
        .map_err(sql("reading the copy", copy))?;
    let bytes = std::fs::metadata(copy)
        .map_err(io("reading the copy", copy))?
        .len();
    Ok(Summary {
        file: name.to_owned(),
        bytes,
        audit_head_seq: head,
        customers,
    })
}

/// How many audit entries and customers `db` holds. A file that cannot be
/// read as a vault counts as holding data: only `--force` replaces it.
fn holdings(db: &Path) -> (i64, i64) {
    if std::fs::metadata(db).map(|m| m.len()).unwrap_or(0) == 0 {
        return (0, 0);
    }
    let count = |conn: &Connection, table: &str| -> Option<i64> {
        let exists: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [table],
                |r| r.get(0),
            )
            .ok()?;
        if !exists {
            return Some(0);
        }
        let sql = match table {
            "audit_log" => "SELECT COUNT(*) FROM audit_log",
            _ => "SELECT COUNT(*) FROM customers",
        };
        conn.query_row(sql, [], |r| r.get(0)).ok()
    };
    // Read-only: counting must not checkpoint the file's WAL into it.
    let Ok(conn) = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    ) else {
        return (-1, -1);
    };
    match (count(&conn, "audit_log"), count(&conn, "customers")) {
        (Some(e), Some(c)) => (e, c),
        _ => (-1, -1),
    }
}

/// `path` with `.suffix` appended to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    sibling_raw(path, &format!(".{suffix}"))
}

fn sibling_raw(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A new, empty, owner-only file beside `path` for a copy in progress.
fn beside(path: &Path, what: &str) -> Result<PathBuf, BackupError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| BackupError::NotUtf8(path.to_owned()))?
        .to_string_lossy();
    let tmp = dir.join(format!(".{name}.{what}-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    create_private(&tmp)?;
    Ok(tmp)
}

/// Creates `path` empty and owner-only; `VACUUM INTO` fills an empty file
/// and keeps its mode.
fn create_private(path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(io("creating", path))
}

fn sync(path: &Path) -> Result<(), BackupError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", path))
}

/// Syncs the directory holding `path`, so that a new name survives a crash.
fn sync_dir(path: &Path) -> Result<(), BackupError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    sync(dir)
}
