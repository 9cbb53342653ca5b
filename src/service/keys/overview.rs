//! The keys and policies overview for role `admin` (the console's
//! `/console/keys`): every key the vault holds with its age, the retention
//! schedule and the last sweep, and how each channel integrates.
//!
//! It reads configuration and key metadata, the same as `arkku keys status`
//! ([`crate::vault::status`]): versions, dates and counts, never a key. The
//! audit signing key is shown by the SHA-256 fingerprint of its public key.
//! Like a look at the audit log it writes no audit entry (SECURITY.md,
//! "Keys and policies page"): it reads no customer data and no key, and the
//! admin's sign-in is audited already.

use std::{collections::BTreeMap, path::Path, time::Duration};

use time::OffsetDateTime;

use crate::{
    crypto::hex,
    policy::{ChannelPolicy, Integration, MaskMode, Operation},
    service::{Caller, Error, Services},
    store::{self, sweeps::SweepRow},
    vault::{root_file, status},
};

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct KeysOverview {
    pub now: OffsetDateTime,
    /// How old a key may grow before rotation is due (`limits.toml`
    /// `[keys] rotate_after`), if the policies name an interval.
    pub rotate_after: Option<Duration>,
    /// Every channel-key version (and the `_profile` domain's), by domain
    /// and version.
    pub channel_keys: Vec<ChannelKeyVersion>,
    pub root: KeyFile,
    /// The key that signs the tokens the vault issues.
    pub issuer: KeyFile,
    /// The Ed25519 key that signs audit checkpoints.
    pub audit_signing: KeyFile,
    /// SHA-256 of the audit signing key's public key, in hex.
    pub audit_fingerprint: String,
    /// How often `serve` sweeps (zero: never; a cron job may).
    pub sweep_every: Duration,
    pub last_sweep: Option<LastSweep>,
    /// Each channel's rules: retention, integration, masking, sign-in.
    pub channels: Vec<ChannelRules>,
    /// How long a `cross_channel` consent lasts before it lapses, if limited.
    pub cross_channel_max_age: Option<Duration>,
    /// Consent-based purposes whose events lapse, with their maximum age.
    pub consent_max_ages: Vec<(String, Duration)>,
}

/// One version of a channel key.
#[derive(Debug, Clone)]
pub struct ChannelKeyVersion {
    pub domain: String,
    pub version: u32,
    pub created_at: OffsetDateTime,
    pub age_days: i64,
    /// Data keys wrapped under this version.
    pub data_keys: i64,
    /// The newest version of its domain: new data keys are wrapped under it.
    pub current: bool,
    /// Older than the rotation interval (only a current version can be due:
    /// an older one is retired by the rotation that replaced it).
    pub due: bool,
}

/// A key kept in a file on the vault host, known by the file's modification
/// time (a rotation replaces the file).
#[derive(Debug, Clone)]
pub struct KeyFile {
    pub modified: Option<OffsetDateTime>,
    pub age_days: Option<i64>,
    pub due: bool,
    /// A root rotation is running or was stopped (`<file>.new` exists).
    pub pending: bool,
}

/// The last completed sweep, from `retention_sweeps`.
#[derive(Debug, Clone)]
pub struct LastSweep {
    /// The request id of its `retention.purge` audit entries.
    pub run_id: String,
    pub as_of: OffsetDateTime,
    pub elapsed_ms: i64,
    pub purged: i64,
    pub customers: i64,
    /// Purged per channel, `channel.kind` and purpose, by table.
    pub contacts: BTreeMap<String, u64>,
    pub interactions: BTreeMap<String, u64>,
    pub consents: BTreeMap<String, u64>,
}

/// One channel's policy as the page shows it.
#[derive(Debug, Clone)]
pub struct ChannelRules {
    pub channel: String,
    pub kind: &'static str,
    pub integration: Integration,
    pub mask: MaskMode,
    pub sign_in: bool,
    pub contact_retention: Duration,
    /// Interaction kind → how long it is kept.
    pub interactions: BTreeMap<String, Duration>,
}

/// The overview, for role `admin` only (`Operation::ReadKeysOverview`).
pub async fn overview(svc: &Services, caller: &Caller) -> Result<KeysOverview, Error> {
    let actor = caller.as_ref().map_err(Clone::clone)?;
    svc.authorise_unlogged(actor, Operation::ReadKeysOverview)?;
    let now = svc.clock.now();
    let rotate_after = svc.policies.limits.key_rotate_after;
    let config = &svc.config;
    let report = status::status(&svc.db, &config.root_key_file).await?;
    let channel_keys = report
        .versions
        .into_iter()
        .map(|v| {
            let age_days = days(now - v.created_at);
            ChannelKeyVersion {
                due: v.current && is_due(age_days, rotate_after),
                domain: v.domain,
                version: v.version,
                created_at: v.created_at,
                age_days,
                data_keys: v.data_keys,
                current: v.current,
            }
        })
        .collect();
    let audit_fingerprint =
        hex(ring::digest::digest(&ring::digest::SHA256, svc.checkpoints.public_key()).as_ref());
    let last_sweep = store::sweeps::last(&svc.db).await?.map(last_sweep);
    Ok(KeysOverview {
        now,
        rotate_after,
        channel_keys,
        root: key_file(&config.root_key_file, now, rotate_after),
        issuer: key_file(&config.issuer_key_file, now, rotate_after),
        audit_signing: key_file(&config.audit_key_file, now, rotate_after),
        audit_fingerprint,
        sweep_every: config.retention_interval,
        last_sweep,
        channels: svc.policies.channels.iter().map(rules).collect(),
        cross_channel_max_age: svc
            .policies
            .purpose("cross_channel")
            .and_then(|(_, p)| p.max_age),
        consent_max_ages: svc
            .policies
            .purposes
            .iter()
            .filter_map(|(name, p)| p.max_age.map(|age| (name.to_string(), age)))
            .collect(),
    })
}

/// Whole days in `d`, never negative.
fn days(d: time::Duration) -> i64 {
    d.whole_days().max(0)
}

/// Whether a key `age_days` old is past the rotation interval.
fn is_due(age_days: i64, rotate_after: Option<Duration>) -> bool {
    let Some(every) = rotate_after else {
        return false;
    };
    let limit = i64::try_from(every.as_secs() / 86_400).unwrap_or(i64::MAX);
    age_days > limit
}

/// A key file's age by its modification time.
fn key_file(path: &Path, now: OffsetDateTime, rotate_after: Option<Duration>) -> KeyFile {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .map(OffsetDateTime::from);
    let age_days = modified.map(|m| days(now - m));
    KeyFile {
        modified,
        age_days,
        due: age_days.is_some_and(|a| is_due(a, rotate_after)),
        pending: root_file::pending_path(path).exists(),
    }
}

fn rules((channel, p): (&crate::domain::ChannelId, &ChannelPolicy)) -> ChannelRules {
    ChannelRules {
        channel: channel.to_string(),
        kind: p.kind.as_str(),
        integration: p.integration,
        mask: p.mask,
        sign_in: p.sign_in,
        contact_retention: p.contact_retention,
        interactions: p.interaction_retention.clone(),
    }
}

/// A stored sweep record; counts that do not parse show as none (they are
/// informational, and the audit log has the full record).
fn last_sweep(row: SweepRow) -> LastSweep {
    let counts: serde_json::Value = serde_json::from_str(&row.counts).unwrap_or_default();
    let table = |name: &str| -> BTreeMap<String, u64> {
        serde_json::from_value(counts[name].clone()).unwrap_or_default()
    };
    LastSweep {
        contacts: table("contacts"),
        interactions: table("interactions"),
        consents: table("consents"),
        run_id: row.run_id,
        as_of: store::from_micros(row.as_of),
        elapsed_ms: row.elapsed_ms,
        purged: row.purged,
        customers: row.customers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_due_only_past_the_interval_the_policies_name() {
        let year = Some(Duration::from_secs(365 * 86_400));
        assert!(!is_due(365, year));
        assert!(is_due(366, year));
        assert!(!is_due(10_000, None), "no interval: never due");
    }

    #[test]
    fn a_sweep_record_reads_back_its_counts() {
        let s = last_sweep(SweepRow {
            run_id: "retention-x".into(),
            as_of: 0,
            elapsed_ms: 3,
            purged: 2,
            customers: 0,
            batches: 2,
            counts:
                r#"{"contacts":{"email":1},"interactions":{"phone.transcript":1},"consents":{}}"#
                    .into(),
        });
        assert_eq!(s.contacts["email"], 1);
        assert_eq!(s.interactions["phone.transcript"], 1);
        assert!(s.consents.is_empty());
        let broken = last_sweep(SweepRow {
            counts: "not json".into(),
            ..SweepRow {
                run_id: String::new(),
                as_of: 0,
                elapsed_ms: 0,
                purged: 0,
                customers: 0,
                batches: 0,
                counts: String::new(),
            }
        });
        assert!(broken.contacts.is_empty());
    }
}
