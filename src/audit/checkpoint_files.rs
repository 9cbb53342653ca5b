//! Signed checkpoints kept as files outside the database.
//!
//! A checkpoint stored only in the database travels with it: restore an old
//! backup and its checkpoints end where the backup ends, so nothing in it can
//! say what the restore lost. Every checkpoint the vault signs is therefore
//! also written to a directory (`ARKKU_CHECKPOINT_DIR`, by default
//! `<data-dir>/checkpoints`, best put on other storage), one JSON file per
//! checkpoint in the format of `arkku audit checkpoint`. `arkku audit verify
//! --checkpoint last` reads the furthest one back.
//!
//! Files are written beside their final name, synced and renamed, so a crash
//! never leaves a half-written checkpoint to be read as the last one.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use super::checkpoint::CheckpointFile;

/// The file name of a checkpoint: seq first (zero-padded, so names sort in
/// log order), then the signing time, so that checkpoints of the same seq
/// signed at different times (a restored vault that went on writing) never
/// overwrite each other.
pub fn file_name(c: &CheckpointFile) -> String {
    format!("checkpoint-{:020}-{:020}.json", c.seq, c.at_micros)
}

/// Writes `c` into `dir` (created owner-only if missing), owner-only, and
/// returns its path. An existing file of the same name is left as it is: it
/// holds the same signed checkpoint.
pub fn write(dir: &Path, c: &CheckpointFile) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt;
    crate::store::create_private_dir(dir)?;
    let path = dir.join(file_name(c));
    if path.exists() {
        return Ok(path);
    }
    let tmp = dir.join(format!(".{}.tmp-{}", file_name(c), std::process::id()));
    let json = serde_json::to_vec_pretty(c).map_err(std::io::Error::other)?;
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&json)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| path)
}

/// Why the last checkpoint could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LastError {
    #[error("reading the checkpoint directory {0}: {1}")]
    Dir(PathBuf, std::io::Error),
    #[error("no checkpoint files in {0}: the vault writes one there with every checkpoint it signs (or run `arkku audit checkpoint`)")]
    None(PathBuf),
    #[error("{0} is not a checkpoint file: {1}")]
    Malformed(PathBuf, String),
}

/// The checkpoint that reaches furthest into the log among the files in
/// `dir` (the highest seq; of several for that seq, the one signed last),
/// and its path. Names that are not checkpoint files are passed over; a
/// checkpoint file that does not parse is an error, not skipped, since
/// passing it over could hide the very loss it would show.
pub fn last(dir: &Path) -> Result<(PathBuf, CheckpointFile), LastError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LastError::Dir(dir.to_owned(), e))?;
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LastError::Dir(dir.to_owned(), e))?;
        if let Some(name) = entry.file_name().to_str() {
            if name.starts_with("checkpoint-") && name.ends_with(".json") {
                names.push(name.to_owned());
            }
        }
    }
    // Zero-padded seq, then time: the greatest name is the furthest checkpoint.
    names.sort();
    let name = names.pop().ok_or_else(|| LastError::None(dir.to_owned()))?;
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| LastError::Malformed(path.clone(), e.to_string()))?;
    let file: CheckpointFile = serde_json::from_str(&text)
        .map_err(|e| LastError::Malformed(path.clone(), e.to_string()))?;
    Ok((path, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(seq: i64, at_micros: i64) -> CheckpointFile {
        CheckpointFile {
            format: super::super::checkpoint::FORMAT.to_owned(),
            seq,
            hash: "00".repeat(32),
            at: "2026-01-01T00:00:00Z".to_owned(),
            at_micros,
            signature: "00".repeat(64),
            public_key: "00".repeat(32),
        }
    }

    #[test]
    fn the_last_checkpoint_is_the_one_reaching_furthest_not_the_one_written_last() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("checkpoints");
        write(&sub, &checkpoint(1000, 5)).unwrap();
        write(&sub, &checkpoint(99, 7)).unwrap();
        write(&sub, &checkpoint(1000, 6)).unwrap();
        std::fs::write(sub.join("notes.txt"), "not a checkpoint").unwrap();
        let (path, last) = last(&sub).unwrap();
        assert_eq!((last.seq, last.at_micros), (1000, 6));
        assert!(path.ends_with(file_name(&checkpoint(1000, 6))));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&sub).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }

    #[test]
    fn an_empty_directory_and_a_malformed_file_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(last(dir.path()), Err(LastError::None(_))));
        std::fs::write(dir.path().join(file_name(&checkpoint(5, 1))), "{").unwrap();
        assert!(matches!(last(dir.path()), Err(LastError::Malformed(..))));
        assert!(matches!(
            last(&dir.path().join("absent")),
            Err(LastError::Dir(..))
        ));
    }
}
