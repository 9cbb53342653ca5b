//! The SQLite write-ahead-log checkpointer of the audit writer: a thread
//! with a connection of its own that copies committed frames into the
//! database file, so that no audit commit pays for it.

use crate::store::{StoreError, StoreResult};

/// WAL pages after which the audit writer checkpoints by itself (about
/// 40 MiB): a backstop, should the checkpointer thread fall behind.
pub(super) const WAL_BACKSTOP_PAGES: i64 = 10_000;

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
    pub(super) fn start(path: &std::path::Path) -> StoreResult<Self> {
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        crate::store::secure_delete(&conn)?;
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
    pub(super) fn nudge(&self) {
        let _ = self.nudge.try_send(());
    }
}

#[cfg(test)]
mod tests {
    use super::super::{append::probe_row, Appender, AuditRow, Batch};
    use crate::store::Db;

    fn numbered(head: Option<(i64, [u8; 32])>, rows: &mut [AuditRow]) {
        let seq = head.map_or(0, |(seq, _)| seq);
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
        let appender =
            Appender::open(&db, crate::store::audit::IndexRun::DEFAULT).expect("appender");
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
