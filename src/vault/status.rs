//! `arkku keys status` (README "Command line"): per key domain and version, when it was
//! made, how many data keys it wraps, and whether it is current or waiting to
//! be retired; then the root key file. Reads metadata only, never a key, so it
//! needs no root key.

use std::{fmt, path::PathBuf};

use time::{macros::format_description, OffsetDateTime};

use super::root_file;
use crate::store::{self, Db, StoreResult};

/// One channel-key version.
#[derive(Debug, Clone)]
pub struct VersionStatus {
    pub domain: String,
    pub version: u32,
    pub data_keys: i64,
    pub created_at: OffsetDateTime,
    /// The newest version of its domain: new data keys are wrapped under it.
    pub current: bool,
}

/// Everything `keys status` shows.
#[derive(Debug, Clone)]
pub struct KeyStatus {
    pub versions: Vec<VersionStatus>,
    pub root_file: PathBuf,
    /// The key file's modification time; `None` if it cannot be read.
    pub root_modified: Option<OffsetDateTime>,
    /// Whether `<root file>.new` exists (a root rotation running or stopped).
    pub root_pending: bool,
    pub now: OffsetDateTime,
}

/// Reads the status of every channel-key version and of the root key file.
pub async fn status(db: &Db, root_file: &std::path::Path) -> StoreResult<KeyStatus> {
    let keys = store::keys::channel_keys(db).await?;
    let counts = store::keys::data_key_counts(db).await?;
    let versions = keys
        .iter()
        .map(|k| VersionStatus {
            domain: k.channel.clone(),
            version: k.version,
            data_keys: counts
                .iter()
                .find(|(c, v, _)| *c == k.channel && *v == k.version)
                .map(|(_, _, n)| *n)
                .unwrap_or(0),
            created_at: store::from_micros(k.created_at),
            current: !keys
                .iter()
                .any(|o| o.channel == k.channel && o.version > k.version),
        })
        .collect();
    let root_modified = std::fs::metadata(root_file)
        .and_then(|m| m.modified())
        .ok()
        .map(OffsetDateTime::from);
    Ok(KeyStatus {
        versions,
        root_file: root_file.to_path_buf(),
        root_modified,
        root_pending: root_file::pending_path(root_file).exists(),
        now: OffsetDateTime::now_utc(),
    })
}

/// A compact age: `45s`, `12m`, `5h`, `3d`.
#[must_use]
pub fn age(d: time::Duration) -> String {
    let s = d.whole_seconds().max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3_599 => format!("{}m", s / 60),
        3_600..=172_799 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

fn timestamp(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_else(|_| "?".to_owned())
}

impl fmt::Display for KeyStatus {
    /// One row per version (six whitespace-separated columns), a blank line,
    /// then the root key file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<12} {:>7} {:>10}  {:<20} {:>5}  state",
            "domain", "version", "data_keys", "created_at", "age"
        )?;
        for v in &self.versions {
            let state = if v.current {
                "current"
            } else {
                "retire-pending"
            };
            writeln!(
                f,
                "{:<12} {:>7} {:>10}  {:<20} {:>5}  {state}",
                v.domain,
                v.version,
                v.data_keys,
                timestamp(v.created_at),
                age(self.now - v.created_at)
            )?;
        }
        writeln!(f)?;
        match self.root_modified {
            Some(m) => writeln!(
                f,
                "root key file: {} (modified {}, {} ago)",
                self.root_file.display(),
                timestamp(m),
                age(self.now - m)
            )?,
            None => writeln!(
                f,
                "root key file: {} (cannot be read)",
                self.root_file.display()
            )?,
        }
        if self.root_pending {
            writeln!(
                f,
                "pending root key: {} exists (a root rotation is running or stopped; see SECURITY.md)",
                root_file::pending_path(&self.root_file).display()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_compact() {
        let s = time::Duration::seconds;
        assert_eq!(age(s(-5)), "0s");
        assert_eq!(age(s(59)), "59s");
        assert_eq!(age(s(60)), "1m");
        assert_eq!(age(s(7_200)), "2h");
        assert_eq!(age(s(172_800)), "2d");
    }
}
