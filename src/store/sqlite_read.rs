//! Direct SQLite connections for the read hot paths (profile reads, lookups).
//!
//! sqlx runs every SQLite connection on a worker thread of its own, so each
//! statement costs two thread hops and, on a small machine, two context
//! switches — more than the statement itself, which reads a handful of
//! cached B-tree pages in microseconds. The hot reads therefore run here, on
//! a plain connection, inline on the calling task. In WAL mode a reader never
//! waits for the writer, so the call does not block on other requests; a cold
//! page may cost one disk read, as it would on sqlx's thread.
//!
//! The connections are opened lazily and kept in a small idle list, one per
//! concurrent reader at most. They refuse writes (`query_only`).

use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};

use super::{StoreError, StoreResult};

/// Idle connections kept for reuse; more concurrent readers open and close
/// their own.
const MAX_IDLE: usize = 8;

/// A pool of read-only direct connections to one SQLite file.
#[derive(Debug)]
pub struct Reader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Reader {
    pub fn new(path: &Path) -> Self {
        Reader {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "query_only", true)?;
        // It never deletes, but every connection arkku opens carries the
        // setting, so none can be the one that leaves deleted bytes behind.
        conn.pragma_update(None, "secure_delete", super::SECURE_DELETE)?;
        // The same page cache as the pool's connections (store::Db::connect).
        conn.pragma_update(None, "cache_size", -16384)?;
        Ok(conn)
    }

    /// Runs `f` on an idle connection (or a new one), in one read
    /// transaction, so every statement in `f` sees the same snapshot.
    ///
    /// `BEGIN` and `COMMIT` run as cached statements: through
    /// `Connection::transaction` SQLite parsed both again on every read.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        let conn = match idle {
            Some(c) => c,
            None => self.open()?,
        };
        let out = (|| {
            conn.prepare_cached("BEGIN")?.execute([])?;
            let out = f(&conn)?;
            conn.prepare_cached("COMMIT")?.execute([])?;
            Ok::<_, rusqlite::Error>(out)
        })();
        // A connection that failed is dropped, not reused (closing it ends
        // any transaction left open).
        if out.is_ok() {
            if let Ok(mut v) = self.idle.lock() {
                if v.len() < MAX_IDLE {
                    v.push(conn);
                }
            }
        }
        out.map_err(StoreError::from)
    }
}

#[cfg(test)]
mod tests {
    /// The bundled SQLite carries the build settings of `.cargo/config.toml`:
    /// each connection reuses a page slab, and no allocation takes a global
    /// lock. Without them every read after a commit allocates its pages anew.
    #[test]
    fn sqlite_is_built_with_a_page_slab_per_connection() {
        let conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
        let used = |option: &str| -> bool {
            conn.query_row("SELECT sqlite_compileoption_used(?1)", [option], |r| {
                r.get(0)
            })
            .expect("compile option query")
        };
        assert!(used("DEFAULT_PCACHE_INITSZ=100"));
        assert!(used("DEFAULT_MEMSTATUS=0"));
        assert!(!used("ENABLE_MEMORY_MANAGEMENT"));
    }
}
