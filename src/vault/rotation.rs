//! Key rotation while the vault serves (README "Key rotation", `arkku keys rotate`;
//! docs/decisions.md, "Key rotation"; SECURITY.md, "Key rotation").
//!
//! **Channel rotation** adds version v+1 of a key domain, then rewraps every
//! data key below it in batches (unwrap with its version, wrap under the new
//! one, an optimistic `UPDATE … WHERE key_version = old`: a row changed
//! meanwhile is picked up by the next pass). Running processes learn of the
//! new version within their refresh interval; the rotation waits a grace
//! period longer than that before its final pass, after which nothing new is
//! wrapped under an old version, and then retires each old version that
//! wraps nothing. The foreign key from data keys to channel-key versions
//! makes a late insert under an old version and its retirement exclude each
//! other, so no data key is ever left under a deleted key.
//!
//! **Root rotation** writes a new root key to `<file>.new`, rewraps every
//! channel key (all domains and versions, `_index` included) in one
//! transaction, and then renames `<file>.new` over the key file. See
//! [`super::root_file`] for the crash between commit and rename.
//!
//! Both are audited as `key.rotate`: one entry before anything changes and
//! one with the outcome, sharing a request id. Entries carry domains,
//! versions and counts, never key material.
//!
//! About 500 lines: a rotation's steps (new version, rewrap in batches, retire,
//! resume after a crash) are one procedure, read top to bottom.

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use serde_json::json;
use uuid::Uuid;

use super::{root_file, Keyring, VaultError, INDEX_DOMAIN};
use crate::{
    audit::{Action, ActorRef, AuditError, Auditor, Decision, Entry},
    crypto::{self, CryptoError, SecretKey},
    store::{self, Db, StoreError},
};

/// How a channel rotation runs.
#[derive(Debug, Clone, Copy)]
pub struct ChannelRotation {
    /// How long after adding the new version to keep rewrapping before the
    /// final pass and the retirement: longer than the refresh interval of
    /// every running process (`ARKKU_KEY_REFRESH`).
    pub grace: Duration,
    /// Data keys rewrapped per statement.
    pub batch: usize,
}

/// What a channel rotation did.
#[derive(Debug, Clone)]
pub struct ChannelReport {
    pub domain: String,
    /// The versions there were before the rotation.
    pub from: Vec<u32>,
    /// Data keys per version before the rotation.
    pub before: BTreeMap<u32, i64>,
    /// The version added.
    pub to: u32,
    /// Data keys moved to `to`.
    pub rewrapped: u64,
    /// Data keys that did not open with their version (left where they are).
    pub unreadable: u64,
    /// Old versions deleted.
    pub retired: Vec<u32>,
    /// Passes over the old versions.
    pub passes: u32,
    /// Time spent rewrapping (without waiting for the grace period).
    pub busy: Duration,
    /// Time from start to end.
    pub elapsed: Duration,
}

/// What a root rotation did.
#[derive(Debug, Clone)]
pub struct RootReport {
    pub file: PathBuf,
    /// Channel keys rewrapped (all domains and versions).
    pub channel_keys: usize,
}

/// Why a rotation failed or stopped short.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("unknown key domain {domain:?}: the keyring knows {known}")]
    UnknownDomain { domain: String, known: String },
    #[error("the {INDEX_DOMAIN} domain holds the blind-index key and is never rotated (that would change every blind index)")]
    IndexDomain,
    #[error("the batch size must be between 1 and 10000")]
    BadBatch,
    #[error("the keyring has no root key file to rotate")]
    NoRootFile,
    #[error(
        "{0} exists: another root rotation is running, or one stopped before its commit. \
         If no rotation is running, the channel keys do not open with it (else it would have been \
         taken over at start): remove it and run the rotation again"
    )]
    PendingRootFile(PathBuf),
    #[error(
        "the root rotation committed, but {pending} could not be renamed over the key file ({cause}); \
         the next start of any arkku command completes the rename"
    )]
    RenameAfterCommit { pending: PathBuf, cause: String },
    #[error(
        "the root rotation failed and it is unknown whether it committed ({cause}); {pending} is kept: \
         the next start takes it over if the channel keys are wrapped under it, else remove it"
    )]
    RootOutcomeUnknown { pending: PathBuf, cause: String },
    #[error(
        "{domain}: version(s) {left:?} still wrap {remaining} data key(s) ({unreadable} do not open) \
         after {passes} passes; the new version is v{to}"
    )]
    Unfinished {
        domain: String,
        to: u32,
        left: Vec<u32>,
        remaining: i64,
        unreadable: u64,
        passes: u32,
    },
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Audit(#[from] AuditError),
}

/// Passes after the grace period before giving up on retiring: each pass
/// only finds keys written late by a process that missed the new version.
const FINAL_PASSES: u32 = 10;
/// How often to pass over the old versions while the grace period runs.
const PASS_INTERVAL: Duration = Duration::from_millis(250);

/// One `key.rotate` entry.
fn entry(
    actor: &ActorRef,
    request_id: Uuid,
    channel: Option<&str>,
    detail: serde_json::Value,
) -> Entry {
    Entry {
        actor: actor.clone(),
        action: Action::KeyRotate,
        customer_id: None,
        channel: channel.map(str::to_owned),
        purpose: None,
        decision: Decision::Allow,
        reason: None,
        request_id: request_id.to_string(),
        detail,
    }
}

/// Data keys per version of `domain`.
async fn counts(db: &Db, domain: &str) -> Result<BTreeMap<u32, i64>, StoreError> {
    Ok(store::keys::data_key_counts(db)
        .await?
        .into_iter()
        .filter(|(c, _, _)| c == domain)
        .map(|(_, v, n)| (v, n))
        .collect())
}

/// Rotates the channel key of `domain` (a channel or `_profile`) while other
/// processes keep reading and writing.
pub async fn rotate_channel(
    db: &Db,
    keyring: &Keyring,
    audit: &Auditor,
    actor: &ActorRef,
    domain: &str,
    how: ChannelRotation,
) -> Result<ChannelReport, RotationError> {
    if !(1..=10_000).contains(&how.batch) {
        return Err(RotationError::BadBatch);
    }
    if domain == INDEX_DOMAIN {
        return Err(RotationError::IndexDomain);
    }
    keyring.reload(db).await?;
    let known = keyring.versions();
    if !known.iter().any(|(d, _, _)| d == domain) {
        let names: Vec<&str> = known
            .iter()
            .map(|(d, _, _)| d.as_str())
            .filter(|d| *d != INDEX_DOMAIN)
            .collect();
        return Err(RotationError::UnknownDomain {
            domain: domain.to_owned(),
            known: names.join(", "),
        });
    }
    let started = Instant::now();
    let request_id = Uuid::now_v7();
    let before = counts(db, domain).await?;
    let from: Vec<u32> = known
        .iter()
        .find(|(d, _, _)| d == domain)
        .map(|(_, _, v)| v.clone())
        .unwrap_or_default();
    // Logged before anything changes.
    audit
        .append(entry(
            actor,
            request_id,
            Some(domain),
            json!({"phase": "start", "domain": domain, "from": from, "data_keys": before}),
        ))
        .await?;

    let mut report = ChannelReport {
        domain: domain.to_owned(),
        from: from.clone(),
        before,
        to: 0,
        rewrapped: 0,
        unreadable: 0,
        retired: Vec::new(),
        passes: 0,
        busy: Duration::ZERO,
        elapsed: Duration::ZERO,
    };
    let outcome = run_channel(db, keyring, domain, how, &mut report).await;
    report.elapsed = started.elapsed();
    let mut detail = json!({
        "phase": "finish",
        "domain": domain,
        "from": from,
        "to": report.to,
        "rewrapped": report.rewrapped,
        "unreadable": report.unreadable,
        "retired": report.retired,
        "passes": report.passes,
        "outcome": if outcome.is_ok() { "ok" } else { "failed" },
    });
    if let Err(e) = &outcome {
        detail["error"] = json!(e.to_string());
    }
    audit
        .append(entry(actor, request_id, Some(domain), detail))
        .await?;
    outcome.map(|()| report)
}

async fn run_channel(
    db: &Db,
    keyring: &Keyring,
    domain: &str,
    how: ChannelRotation,
    report: &mut ChannelReport,
) -> Result<(), RotationError> {
    let to = keyring.add_version(db, domain).await?;
    report.to = to;
    let added = Instant::now();
    tracing::info!(
        domain,
        version = to,
        "added a channel key version; rewrapping the data keys"
    );
    // Rewrap while running processes still learn of the new version.
    loop {
        let moved = rewrap_pass(db, keyring, domain, to, how.batch, report).await?;
        if added.elapsed() >= how.grace {
            break;
        }
        if moved == 0 {
            let left = how.grace.saturating_sub(added.elapsed());
            tokio::time::sleep(left.min(PASS_INTERVAL)).await;
        }
    }
    // Every process now wraps new data keys under `to`: what is left below it
    // is finite. Pass, then retire what wraps nothing; a key inserted between
    // the two keeps its version alive (the foreign key), so pass again.
    for _ in 0..FINAL_PASSES {
        rewrap_pass(db, keyring, domain, to, how.batch, report).await?;
        keyring.reload(db).await?;
        let mut left = Vec::new();
        for v in old_versions(keyring, domain, to) {
            if store::keys::retire_channel_key(db, domain, v).await? {
                tracing::info!(domain, version = v, "retired a channel key version");
                report.retired.push(v);
            } else {
                left.push(v);
            }
        }
        if left.is_empty() {
            keyring.reload(db).await?;
            return Ok(());
        }
        if report.unreadable > 0 {
            // Keys that do not open will not open on the next pass either.
            break;
        }
    }
    let remaining = counts(db, domain)
        .await?
        .into_iter()
        .filter(|(v, _)| *v < to)
        .map(|(_, n)| n)
        .sum();
    Err(RotationError::Unfinished {
        domain: domain.to_owned(),
        to,
        left: old_versions(keyring, domain, to),
        remaining,
        unreadable: report.unreadable,
        passes: report.passes,
    })
}

/// The versions of `domain` below `to` that the keyring knows.
fn old_versions(keyring: &Keyring, domain: &str, to: u32) -> Vec<u32> {
    keyring
        .versions()
        .into_iter()
        .find(|(d, _, _)| d == domain)
        .map(|(_, _, v)| v.into_iter().filter(|v| *v < to).collect())
        .unwrap_or_default()
}

/// One pass: moves every data key of `domain` below `to` up to `to`, batch by
/// batch in customer order. Returns how many moved.
async fn rewrap_pass(
    db: &Db,
    keyring: &Keyring,
    domain: &str,
    to: u32,
    batch: usize,
    report: &mut ChannelReport,
) -> Result<u64, RotationError> {
    let started = Instant::now();
    report.passes += 1;
    keyring.reload(db).await?;
    let new_key = keyring.channel_key(db, domain, to).await?;
    let limit = i64::try_from(batch).unwrap_or(1000);
    let mut moved = 0;
    for from in old_versions(keyring, domain, to) {
        let old_key = keyring.channel_key(db, domain, from).await?;
        let mut after = None;
        loop {
            let rows = store::keys::data_keys_at_version(db, domain, from, after, limit).await?;
            let Some(last) = rows.last() else { break };
            after = Some(last.0);
            let mut rewrapped = Vec::with_capacity(rows.len());
            for (customer_id, wrapped) in &rows {
                match rewrap(&old_key, &new_key, *customer_id, domain, from, to, wrapped) {
                    Ok(w) => rewrapped.push((*customer_id, w)),
                    Err(_) => {
                        // Ids are not secret; the key bytes never reach the log.
                        tracing::warn!(%customer_id, domain, version = from, "a data key does not open with its channel key; left as it is");
                        report.unreadable += 1;
                    }
                }
            }
            moved += store::keys::rewrap_data_keys(db, domain, from, to, &rewrapped).await?;
            if rows.len() < batch {
                break;
            }
        }
    }
    report.rewrapped += moved;
    report.busy += started.elapsed();
    Ok(moved)
}

fn rewrap(
    old_key: &SecretKey,
    new_key: &SecretKey,
    customer_id: Uuid,
    domain: &str,
    from: u32,
    to: u32,
    wrapped: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let data_key = crypto::unwrap_data_key(old_key, customer_id, domain, from, wrapped)?;
    crypto::wrap_data_key(new_key, customer_id, domain, to, &data_key)
}

/// Rotates the root key: every channel key is rewrapped under a new root key,
/// which replaces the root key file. Running processes pick the new file up
/// when their root key no longer opens the stored channel keys.
pub async fn rotate_root(
    db: &Db,
    keyring: &Keyring,
    audit: &Auditor,
    actor: &ActorRef,
) -> Result<RootReport, RotationError> {
    let file = keyring
        .root_file()
        .ok_or(RotationError::NoRootFile)?
        .to_path_buf();
    // Refuses a key file that group or others may read, as `serve` does.
    crypto::load_key_file(&file)?;
    let pending = root_file::pending_path(&file);
    if pending.exists() {
        return Err(RotationError::PendingRootFile(pending));
    }
    keyring.reload(db).await?;
    let stored = store::keys::channel_keys(db).await?.len();
    let request_id = Uuid::now_v7();
    audit
        .append(entry(
            actor,
            request_id,
            None,
            json!({"phase": "start", "root": true, "channel_keys": stored}),
        ))
        .await?;
    let outcome = run_root(db, keyring, &file).await;
    let mut detail = json!({
        "phase": "finish",
        "root": true,
        "channel_keys": outcome.as_ref().map(|n| *n).unwrap_or(0),
        "outcome": if outcome.is_ok() { "ok" } else { "failed" },
    });
    if let Err(e) = &outcome {
        detail["error"] = json!(e.to_string());
    }
    audit.append(entry(actor, request_id, None, detail)).await?;
    outcome.map(|channel_keys| RootReport { file, channel_keys })
}

async fn run_root(
    db: &Db,
    keyring: &Keyring,
    file: &std::path::Path,
) -> Result<usize, RotationError> {
    let old = keyring.root_key();
    let new = SecretKey::generate()?;
    let pending = root_file::write_pending(file, &new)?;
    let rewrapped = store::keys::rewrap_channel_keys(db, |k| {
        let key = crypto::unwrap_channel_key(&old, &k.channel, k.version, &k.wrapped)?;
        crypto::wrap_channel_key(&new, &k.channel, k.version, &key)
    })
    .await;
    let n = match rewrapped {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            // Rolled back: the new key wraps nothing.
            root_file::discard_pending(file);
            return Err(e.into());
        }
        Err(e) => {
            // The commit itself may have failed after taking effect: ask the
            // database which key its channel keys open with before discarding.
            return match wrapped_under(db, &old, &new).await {
                Some(false) => {
                    root_file::discard_pending(file);
                    Err(e.into())
                }
                Some(true) => finish_root(keyring, file, new).map(|()| 0),
                None => Err(RotationError::RootOutcomeUnknown {
                    pending,
                    cause: e.to_string(),
                }),
            };
        }
    };
    finish_root(keyring, file, new)?;
    Ok(n)
}

/// After the commit: the new key file replaces the old one. A process that
/// opened the keyring right after the commit may have renamed it already (it
/// completes what looks like an interrupted rotation): that is success too.
fn finish_root(
    keyring: &Keyring,
    file: &std::path::Path,
    new: SecretKey,
) -> Result<(), RotationError> {
    let renamed = root_file::complete_pending(file);
    let in_place = |key: &SecretKey| {
        crypto::load_key_file(file).is_ok_and(|on_disk| {
            let diff = on_disk
                .expose_secret()
                .iter()
                .zip(key.expose_secret())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            diff == 0
        })
    };
    let outcome = match renamed {
        Ok(()) => Ok(()),
        Err(_) if in_place(&new) => Ok(()),
        Err(e) => Err(RotationError::RenameAfterCommit {
            pending: root_file::pending_path(file),
            cause: e.to_string(),
        }),
    };
    keyring.set_root_key(new);
    outcome
}

/// `Some(true)` if the stored channel keys open with `new`, `Some(false)` if
/// with `old`, `None` if that cannot be told (the database cannot be read).
async fn wrapped_under(db: &Db, old: &SecretKey, new: &SecretKey) -> Option<bool> {
    let stored = store::keys::channel_keys(db).await.ok()?;
    let k = stored.first()?;
    let opens = |root: &SecretKey| {
        crypto::unwrap_channel_key(root, &k.channel, k.version, &k.wrapped).is_ok()
    };
    if opens(new) {
        Some(true)
    } else if opens(old) {
        Some(false)
    } else {
        None
    }
}
