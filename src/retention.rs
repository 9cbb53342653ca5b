//! The retention sweeper (README, "Retention sweeper"): deletes what the policies no longer
//! allow the vault to keep, in batches, each batch audited before it goes.
//!
//! - contact points past their channel's `contact_retention` since their last activity;
//! - interactions past their kind's retention (since recorded, or resolved if later);
//! - consent events of a (customer, purpose) once every event of it has lapsed
//!   (see [`crate::store::retention`] for why whole groups);
//! - customers with nothing left, erased like an erasure request (tombstone).
//!
//! Reads already treat expired data as gone; the sweeper makes it so. It is a
//! function of the database and `now` only, so it is idempotent (a second run
//! purges nothing) and crash-safe: every batch's audit entry is durable
//! before its rows are deleted, and a run killed midway is finished by the
//! next one. Rows on channels or kinds the policy does not name are never
//! deleted (a channel taken out of the policy by mistake must not wipe data).
//! A completed sweep (not a dry run) leaves a row in `retention_sweeps`
//! with its counts, which the keys and policies page shows as the last sweep.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    audit::{Action, ActorRef, AuditError, Auditor, Decision, Entry},
    policy::Policies,
    store::{
        self,
        retention::{self as queries, Cutoffs, Doomed, Table},
        Db, Micros, StoreError,
    },
};

/// Rows per batch (and per audit entry) unless told otherwise. An entry
/// lists up to 5 000 ids and their customers, about 400 kB.
pub const DEFAULT_BATCH: usize = 5000;

/// Batches whose rows go in one delete transaction, each batch's entry
/// durable before it. Each deleted row dirties a page of the blind-index
/// index at random, so the pages a transaction writes per row fall as it
/// grows: 1 000 000 expired contact points went at 37k/s with a transaction
/// per batch of 5 000 and at 56k/s with one per 25 000 rows on SQLite.
/// Grouping batches keeps that gain without making entries larger.
pub const BATCHES_PER_DELETE: usize = 10;

/// How long the record of a sweep is kept (`retention_sweeps`).
pub const SWEEPS_KEPT: time::Duration = time::Duration::days(90);

/// What a sweep did (or, in a dry run, would do). Counts only: ids are in
/// the audit log, values nowhere.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub now: String,
    pub dry_run: bool,
    /// Contact points per channel.
    pub contacts: BTreeMap<String, u64>,
    /// Interactions per `channel.kind`.
    pub interactions: BTreeMap<String, u64>,
    /// Consent events per purpose.
    pub consents: BTreeMap<String, u64>,
    /// Customers erased because nothing was left.
    pub customers: u64,
    /// Contact points, interactions and consent events together.
    pub purged: u64,
    /// Audit entries written (one per batch).
    pub batches: u64,
    /// Kept answers of `Idempotency-Key`s past their time (they hold no
    /// customer data in clear; no audit entry).
    pub idempotency_keys: u64,
    /// Milliseconds spent on each part, for operators sizing the batch.
    pub elapsed_ms: BTreeMap<&'static str, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the audit log refused the purge entry, nothing more was deleted: {0}")]
    Audit(#[from] AuditError),
}

fn micros(d: std::time::Duration) -> Micros {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// The cutoffs of every rule in the policies, as of `now`.
pub fn cutoffs(policies: &Policies, now: OffsetDateTime) -> Cutoffs {
    let now = store::to_micros(now);
    let before = |d| now.saturating_sub(micros(d));
    let mut c = Cutoffs {
        now,
        ..Cutoffs::default()
    };
    for (channel, p) in &policies.channels {
        c.contacts
            .push((channel.to_string(), before(p.contact_retention)));
        for (kind, keep) in &p.interaction_retention {
            c.interactions
                .push((channel.to_string(), kind.clone(), before(*keep)));
        }
    }
    for (purpose, p) in &policies.purposes {
        if let Some(age) = p.max_age {
            c.consents.push((purpose.to_string(), micros(age)));
        }
    }
    // An empty profile is kept as long as the shortest contact retention.
    let shortest = policies
        .channels
        .values()
        .map(|p| p.contact_retention)
        .min()
        .unwrap_or_default();
    c.stale_profile = before(shortest);
    c
}

/// One sweep.
pub struct Sweep<'a> {
    pub db: &'a Db,
    pub policies: &'a Policies,
    pub audit: &'a Auditor,
    pub now: OffsetDateTime,
    pub dry_run: bool,
    pub batch: usize,
    /// Where `serve`'s sweeper counts its progress for `/metrics`.
    pub progress: Option<&'a crate::metrics::RetentionMetrics>,
}

/// The rows one rule lets go: of a channel's interactions of one kind, or of
/// a purpose's lapsed consent groups. (Contact points of every channel go
/// together: [`Sweep::contacts`].)
#[derive(Clone, Copy)]
enum Expired<'a> {
    Interactions(&'a str, &'a str, Micros),
    /// Purpose, maximum age, now.
    Consents(&'a str, Micros, Micros),
}

impl Expired<'_> {
    async fn fetch(self, db: &Db, limit: i64) -> Result<Vec<Doomed>, StoreError> {
        match self {
            Expired::Interactions(channel, kind, cutoff) => {
                queries::expired_interactions(db, channel, kind, cutoff, limit).await
            }
            Expired::Consents(purpose, age, now) => {
                queries::lapsed_consents(db, purpose, age, now, limit).await
            }
        }
    }

    fn table(self) -> Table {
        match self {
            Expired::Interactions(..) => Table::Interactions,
            Expired::Consents(..) => Table::Consents,
        }
    }

    /// The channel the audit entry names (none for consents).
    fn channel(&self) -> Option<&str> {
        match *self {
            Expired::Interactions(channel, _, _) => Some(channel),
            Expired::Consents(..) => None,
        }
    }

    /// What every audit entry of these rows says besides the ids.
    fn detail(self) -> serde_json::Value {
        match self {
            Expired::Interactions(_, kind, _) => json!({"table": "interactions", "kind": kind}),
            Expired::Consents(purpose, _, _) => json!({"table": "consents", "purpose": purpose}),
        }
    }
}

/// Milliseconds per part of a sweep, for [`Report::elapsed_ms`].
struct Laps(std::time::Instant);

impl Laps {
    fn lap(&mut self, report: &mut Report, part: &'static str) {
        let ms = u64::try_from(self.0.elapsed().as_millis()).unwrap_or(u64::MAX);
        report.elapsed_ms.insert(part, ms);
        self.0 = std::time::Instant::now();
    }
}

impl Sweep<'_> {
    /// Runs the sweep to the end.
    pub async fn run(&self) -> Result<Report, SweepError> {
        let c = cutoffs(self.policies, self.now);
        let run_id = format!("retention-{}", Uuid::now_v7());
        let mut report = Report {
            now: crate::domain::time::rfc3339(self.now),
            dry_run: self.dry_run,
            ..Report::default()
        };
        let started = std::time::Instant::now();
        let mut laps = Laps(started);
        self.contacts(&c, &run_id, &mut report).await?;
        laps.lap(&mut report, "contacts");
        self.interactions(&c, &run_id, &mut report).await?;
        laps.lap(&mut report, "interactions");
        self.consents(&c, &run_id, &mut report).await?;
        laps.lap(&mut report, "consents");
        self.customers(&c, &run_id, &mut report).await?;
        laps.lap(&mut report, "customers");
        if !self.dry_run {
            let before = self.now - crate::service::idempotency::KEEP_FOR;
            report.idempotency_keys =
                crate::store::idempotency::purge_expired(self.db, crate::store::to_micros(before))
                    .await?;
        }
        if !self.dry_run && (report.purged > 0 || report.customers > 0) {
            // As after an erasure: the WAL must not keep the purged rows.
            // The purge has committed; a failure is logged, not fatal.
            if let Err(e) = self.db.scrub_wal().await {
                tracing::error!(error = %e, "retention purge committed, but the WAL still holds old frames");
            }
            laps.lap(&mut report, "scrub_wal");
        }
        if !self.dry_run {
            self.record(&run_id, &report, started).await;
        }
        Ok(report)
    }

    /// Records the completed sweep (counts only), so that the last one can
    /// be shown even when it purged nothing and so wrote no audit entry.
    /// The purge has committed: a failure here is logged, not fatal.
    async fn record(&self, run_id: &str, report: &Report, started: std::time::Instant) {
        let counts = json!({
            "contacts": report.contacts,
            "interactions": report.interactions,
            "consents": report.consents,
        });
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let row = store::sweeps::SweepRow {
            run_id: run_id.to_owned(),
            as_of: store::to_micros(self.now),
            elapsed_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
            purged: n(report.purged),
            customers: n(report.customers),
            batches: n(report.batches),
            counts: counts.to_string(),
        };
        let forget_before = store::to_micros(self.now - SWEEPS_KEPT);
        if let Err(e) = store::sweeps::record(self.db, &row, forget_before).await {
            tracing::error!(error = %e, "retention sweep done, but its record was not written");
        }
    }

    /// Rows fetched at once: audited batch by batch, and deleted together.
    fn limit(&self) -> i64 {
        i64::try_from(self.batch.max(1).saturating_mul(BATCHES_PER_DELETE)).unwrap_or(i64::MAX)
    }

    /// Contact points past their channel's retention. Each fetch is audited
    /// channel by channel (an entry names one channel), then deleted.
    ///
    /// On PostgreSQL one fetch spans every channel: its triggers mark a
    /// customer's profile document once per statement, so a customer whose
    /// points of several channels go together is marked once, not once per
    /// channel (each mark is a new row version). SQLite's triggers run per
    /// row, and there a pass per channel measured faster (docs/PERFORMANCE.md).
    async fn contacts(
        &self,
        c: &Cutoffs,
        run_id: &str,
        report: &mut Report,
    ) -> Result<(), SweepError> {
        if self.dry_run {
            for (channel, cutoff) in &c.contacts {
                let n = count(queries::count_expired_contacts(self.db, channel, *cutoff).await?);
                add(&mut report.contacts, channel, n);
            }
            return Ok(());
        }
        let passes: Vec<&[(String, Micros)]> = match self.db {
            Db::Postgres(_) => vec![&c.contacts],
            Db::Sqlite(..) => c.contacts.chunks(1).collect(),
        };
        for channels in passes {
            self.drain_contacts(channels, run_id, report).await?;
        }
        Ok(())
    }

    /// Fetches and purges expired contact points of `channels` until none is
    /// left.
    async fn drain_contacts(
        &self,
        channels: &[(String, Micros)],
        run_id: &str,
        report: &mut Report,
    ) -> Result<(), SweepError> {
        let limit = self.limit();
        loop {
            let grouped = queries::expired_contacts(self.db, channels, limit).await?;
            if grouped.iter().all(Vec::is_empty) {
                return Ok(());
            }
            let by_channel: BTreeMap<&str, Vec<Doomed>> = channels
                .iter()
                .zip(grouped)
                .filter(|(_, rows)| !rows.is_empty())
                .map(|((channel, _), rows)| (channel.as_str(), rows))
                .collect();
            for (channel, rows) in &by_channel {
                let detail = json!({"table": "contacts"});
                self.audit_batches(run_id, Some(channel), detail, rows, report)
                    .await?;
            }
            let ids = by_channel
                .iter()
                .map(|(channel, rows)| (*channel, rows.iter().map(|d| d.id).collect()))
                .collect();
            let gone = queries::delete_contacts(self.db, &ids).await?;
            let n: u64 = gone.values().sum();
            for (channel, k) in &gone {
                add(&mut report.contacts, channel, *k);
            }
            report.purged += n;
            if let Some(p) = self.progress {
                p.purged(Table::Contacts.name(), n);
            }
        }
    }

    /// Interactions past their kind's retention.
    async fn interactions(
        &self,
        c: &Cutoffs,
        run_id: &str,
        report: &mut Report,
    ) -> Result<(), SweepError> {
        for (channel, kind, cutoff) in &c.interactions {
            let n = if self.dry_run {
                count(queries::count_expired_interactions(self.db, channel, kind, *cutoff).await?)
            } else {
                let rows = Expired::Interactions(channel, kind, *cutoff);
                self.drain(run_id, rows, report).await?
            };
            add(&mut report.interactions, &format!("{channel}.{kind}"), n);
        }
        Ok(())
    }

    /// Consent events of (customer, purpose) groups that have all lapsed.
    async fn consents(
        &self,
        c: &Cutoffs,
        run_id: &str,
        report: &mut Report,
    ) -> Result<(), SweepError> {
        for (purpose, age) in &c.consents {
            let n = if self.dry_run {
                count(queries::count_lapsed_consents(self.db, purpose, *age, c.now).await?)
            } else {
                let rows = Expired::Consents(purpose, *age, c.now);
                self.drain(run_id, rows, report).await?
            };
            add(&mut report.consents, purpose, n);
        }
        Ok(())
    }

    /// Customers with nothing left, erased like an erasure request, a batch
    /// (and an audit entry) at a time.
    async fn customers(
        &self,
        c: &Cutoffs,
        run_id: &str,
        report: &mut Report,
    ) -> Result<(), SweepError> {
        let customers_limit = i64::try_from(self.batch.max(1)).unwrap_or(i64::MAX);
        let mut after = None;
        loop {
            let empty = queries::empty_customers(self.db, c, after, customers_limit).await?;
            let Some(last) = empty.last() else { break };
            after = Some(*last);
            if self.dry_run {
                report.customers += empty.len() as u64;
                continue;
            }
            let ids: Vec<String> = empty.iter().map(Uuid::to_string).collect();
            self.audit(
                run_id,
                None,
                json!({"table": "customers", "count": empty.len(), "customer_ids": ids}),
            )
            .await?;
            report.batches += 1;
            let erased = queries::erase_empty(self.db, &empty, c.now).await?;
            report.customers += erased.customers;
            if let Some(p) = self.progress {
                p.batch();
                p.customers_erased(erased.customers);
                // Rows that expired while this sweep ran went with their
                // customer: still rows the sweeper deleted.
                for (table, n) in erased.rows {
                    if n > 0 {
                        p.purged(table, n);
                    }
                }
            }
        }
        Ok(())
    }

    /// Fetches and purges `rows` until none is left; returns how many went.
    async fn drain(
        &self,
        run_id: &str,
        rows: Expired<'_>,
        report: &mut Report,
    ) -> Result<u64, SweepError> {
        let limit = self.limit();
        let mut n = 0;
        loop {
            let doomed = rows.fetch(self.db, limit).await?;
            if doomed.is_empty() {
                return Ok(n);
            }
            n += self
                .purge(
                    run_id,
                    rows.table(),
                    rows.channel(),
                    rows.detail(),
                    &doomed,
                    report,
                )
                .await?;
        }
    }

    /// Audits `doomed` batch by batch, one durable entry each, then deletes
    /// all of it in one transaction; returns how many rows went.
    async fn purge(
        &self,
        run_id: &str,
        table: Table,
        channel: Option<&str>,
        detail: serde_json::Value,
        doomed: &[Doomed],
        report: &mut Report,
    ) -> Result<u64, SweepError> {
        self.audit_batches(run_id, channel, detail, doomed, report)
            .await?;
        let ids: Vec<Uuid> = doomed.iter().map(|d| d.id).collect();
        let n = queries::delete(self.db, table, &ids).await?;
        report.purged += n;
        if let Some(p) = self.progress {
            p.purged(table.name(), n);
        }
        Ok(n)
    }

    /// Audits the rows about to be purged, a batch per entry, each entry
    /// durable before the next is written (and before any row goes).
    async fn audit_batches(
        &self,
        run_id: &str,
        channel: Option<&str>,
        detail: serde_json::Value,
        doomed: &[Doomed],
        report: &mut Report,
    ) -> Result<(), SweepError> {
        for batch in doomed.chunks(self.batch.max(1)) {
            let ids: Vec<String> = batch.iter().map(|d| d.id.to_string()).collect();
            let customers: BTreeSet<Uuid> = batch.iter().map(|d| d.customer_id).collect();
            let mut detail = detail.clone();
            detail["count"] = json!(ids.len());
            detail["ids"] = json!(ids);
            detail["customer_ids"] =
                json!(customers.iter().map(Uuid::to_string).collect::<Vec<_>>());
            self.audit(run_id, channel, detail).await?;
            report.batches += 1;
            if let Some(p) = self.progress {
                p.batch();
            }
        }
        Ok(())
    }

    async fn audit(
        &self,
        run_id: &str,
        channel: Option<&str>,
        detail: serde_json::Value,
    ) -> Result<(), SweepError> {
        self.audit
            .append(Entry {
                actor: ActorRef {
                    sub: "retention-sweeper".to_owned(),
                    role: "system".to_owned(),
                    client: None,
                },
                action: Action::RetentionPurge,
                customer_id: None,
                channel: channel.map(str::to_owned),
                purpose: None,
                decision: Decision::Allow,
                reason: None,
                request_id: run_id.to_owned(),
                detail,
            })
            .await?;
        Ok(())
    }
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn add(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    if n > 0 {
        *map.entry(key.to_owned()).or_default() += n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load_shipped;
    use time::macros::datetime;

    #[test]
    fn cutoffs_follow_every_rule_of_the_policy() {
        let p = load_shipped().expect("policies");
        let now = datetime!(2026-06-01 0:00 UTC);
        let c = cutoffs(&p, now);
        let day = 86_400_000_000i64;
        let at = store::to_micros(now);
        assert_eq!(c.contacts.len(), 8);
        assert!(c.contacts.contains(&("phone".into(), at - 730 * day)));
        assert!(c.contacts.contains(&("chat".into(), at - 365 * day)));
        assert_eq!(c.interactions.len(), 8 * 4);
        assert!(c
            .interactions
            .contains(&("email".into(), "transcript".into(), at - 30 * day)));
        // consent-based purposes with a max_age only
        let purposes: Vec<&str> = c.consents.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(purposes, ["cross_channel", "marketing"]);
        assert_eq!(c.stale_profile, at - 365 * day);
    }
}
