//! The root key file during a root rotation (SECURITY.md "Key
//! rotation").
//!
//! A root rotation writes the new key to `<file>.new` (mode 0600, fsynced),
//! rewraps every channel key in one database transaction, and only then
//! renames `<file>.new` over the key file. Should the process die between the
//! commit and the rename, the database opens only with `<file>.new`: the next
//! process that opens the keyring finds that and completes the rename. Before
//! the commit, `<file>.new` opens nothing and is left for the operator (it may
//! belong to a rotation still running).

use std::{
    ffi::OsString,
    fs::File,
    io,
    path::{Path, PathBuf},
};

use crate::crypto::{load_key_file, write_new_key_file, CryptoError, SecretKey};

/// `<file>.new`: where a root rotation puts the new key until its commit.
#[must_use]
pub fn pending_path(file: &Path) -> PathBuf {
    let mut name = OsString::from(file.as_os_str());
    name.push(".new");
    PathBuf::from(name)
}

/// The key in `<file>.new`, if that file exists (refused like the root key
/// file itself if group or others may read it).
pub fn load_pending(file: &Path) -> Result<Option<SecretKey>, CryptoError> {
    let pending = pending_path(file);
    if !pending.exists() {
        return Ok(None);
    }
    load_key_file(&pending).map(Some)
}

/// Writes the new root key to `<file>.new`: mode 0600, fsynced, and never over
/// an existing file (another rotation may be writing it).
pub fn write_pending(file: &Path, key: &SecretKey) -> Result<PathBuf, CryptoError> {
    let pending = pending_path(file);
    write_new_key_file(&pending, key)?;
    Ok(pending)
}

/// Renames `<file>.new` over the key file and fsyncs the directory, so the
/// new name survives a crash. The old key file's content is gone from the
/// directory (not securely erased from the disk).
pub fn complete_pending(file: &Path) -> Result<(), CryptoError> {
    let pending = pending_path(file);
    let fail = |what: &str, e: io::Error| CryptoError::KeyFile {
        path: file.display().to_string(),
        reason: format!("{what} {}: {e}", pending.display()),
    };
    std::fs::rename(&pending, file).map_err(|e| fail("cannot rename", e))?;
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| fail("cannot sync the directory after renaming", e))
}

/// Removes `<file>.new` after a rotation failed before its commit (the new
/// key wraps nothing). Best effort: a leftover file is private and is
/// reported by the next rotation.
pub fn discard_pending(file: &Path) {
    let _ = std::fs::remove_file(pending_path(file));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_pending_key_is_written_privately_then_renamed_over_the_key_file(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("root.key");
        let old = SecretKey::generate()?;
        write_new_key_file(&file, &old)?;
        assert!(load_pending(&file)?.is_none());

        let new = SecretKey::generate()?;
        let pending = write_pending(&file, &new)?;
        assert_eq!(pending, dir.path().join("root.key.new"));
        assert_eq!(
            std::fs::metadata(&pending)?.permissions().mode() & 0o777,
            0o600
        );
        assert!(
            write_pending(&file, &SecretKey::generate()?).is_err(),
            "never over a pending key"
        );
        let loaded = load_pending(&file)?.ok_or("pending key")?;
        assert_eq!(loaded.expose_secret(), new.expose_secret());

        complete_pending(&file)?;
        assert!(!pending.exists());
        assert_eq!(load_key_file(&file)?.expose_secret(), new.expose_secret());
        Ok(())
    }
}
