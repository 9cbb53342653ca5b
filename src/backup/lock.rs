//! The lock that keeps `arkku restore` away from a vault being served.
//!
//! Beside the SQLite file lies `<file>.lock`. `serve` holds a shared lock
//! on it for as long as it runs (several processes may serve one file);
//! `restore` takes it exclusively, so it fails at once while any `serve`
//! runs, and a `serve` started during a restore fails instead of opening a
//! file about to be replaced. The kernel drops the lock when the process
//! ends, however it ends, so a killed server leaves no stale lock behind.
//! (`flock` locks are separate from the record locks SQLite itself takes
//! on the database file, so the two never interfere.)

use std::{
    fs::{File, TryLockError},
    path::{Path, PathBuf},
};

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct VaultLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "{0} is being served: an `arkku serve` holds {1}. Stop every `arkku serve` on it \
         first, or restore into another data dir (ARKKU_DATA_DIR)"
    )]
    Served(PathBuf, PathBuf),
    #[error(
        "{0} is being restored (`arkku restore` holds {1}); start `serve` when it has finished"
    )]
    Restoring(PathBuf, PathBuf),
    #[error("opening the lock file {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// The lock file of the SQLite file `db`.
pub fn path_of(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open(db: &Path) -> Result<(File, PathBuf), LockError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = path_of(db);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| LockError::Io(path.clone(), e))?;
    Ok((file, path))
}

/// The shared lock `serve` holds on `db` while it runs.
pub fn serving(db: &Path) -> Result<VaultLock, LockError> {
    let (file, path) = open(db)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(VaultLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(LockError::Restoring(db.to_owned(), path)),
        Err(TryLockError::Error(e)) => Err(LockError::Io(path, e)),
    }
}

/// The exclusive lock `restore` holds on `db` while it replaces it.
pub fn exclusive(db: &Path) -> Result<VaultLock, LockError> {
    let (file, path) = open(db)?;
    match file.try_lock() {
        Ok(()) => Ok(VaultLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(LockError::Served(db.to_owned(), path)),
        Err(TryLockError::Error(e)) => Err(LockError::Io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_served_vault_cannot_be_locked_for_restore_and_a_restoring_one_cannot_be_served() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("arkku.db");
        let one = serving(&db).unwrap();
        let two = serving(&db).unwrap();
        assert!(matches!(exclusive(&db), Err(LockError::Served(..))));
        drop((one, two));
        let restoring = exclusive(&db).unwrap();
        assert!(matches!(serving(&db), Err(LockError::Restoring(..))));
        drop(restoring);
        assert!(serving(&db).is_ok());
    }
}
