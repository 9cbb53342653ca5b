//! Delivery to a file (`ARKKU_NOTIFY=file`), for development and tests: each
//! message is appended as one JSON line to `<data-dir>/outbox.jsonl` and
//! synced to disk before its outbox row is deleted.
//!
//! The file holds codes and contact values in plaintext, so it is created
//! mode 0600, and a file that group or others may read is refused (the
//! delivery fails and is retried, with an error in the log) rather than
//! written to. Not for production: anyone who can read the file can sign in
//! as any customer whose code is in it (SECURITY.md, "A stolen outbox file").

use std::{
    fs::OpenOptions,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use zeroize::Zeroizing;

/// The file's name in the data dir.
pub const FILE_NAME: &str = "outbox.jsonl";

/// Appends `body` and a newline to `path` in one write, and syncs it.
pub fn append(path: &Path, body: &[u8]) -> Result<(), String> {
    let mut file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mode = file
        .metadata()
        .map_err(|e| format!("cannot read the mode of {}: {e}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} is open to group or others (mode {:o}); make it 0600 (chmod 600)",
            path.display(),
            mode & 0o777
        ));
    }
    let mut line = Zeroizing::new(Vec::with_capacity(body.len() + 1));
    line.extend_from_slice(body);
    line.push(b'\n');
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .map_err(|e| format!("cannot append to {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_appended_to_a_new_owner_only_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        append(&path, b"{\"a\":1}").unwrap();
        append(&path, b"{\"b\":2}").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_file_others_may_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = append(&path, b"{}").unwrap_err();
        assert!(e.contains("mode 644"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
