//! `arkku retention run`: one sweep now (or as of a given time), printed as JSON.

use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use time::OffsetDateTime;

use crate::{app, audit::Auditor, clock::Clock, config::Config, retention};

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// Run one sweep now and print what it purged (JSON).
    Run {
        /// Print what would be purged and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Sweep as of this time (RFC 3339) instead of now.
        #[arg(long, value_parser = parse_rfc3339)]
        now: Option<OffsetDateTime>,
        /// Rows per batch (and per audit entry).
        #[arg(long, default_value_t = retention::DEFAULT_BATCH)]
        batch: usize,
    },
}

fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, String> {
    crate::domain::time::parse_rfc3339(s).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

pub async fn run(config: Config, clock: &Clock, command: RetentionCommand) -> anyhow::Result<()> {
    let RetentionCommand::Run {
        dry_run,
        now,
        batch,
    } = command;
    let policies = config.load_policies()?;
    let db = app::database(&config).await.context("database")?;
    let checkpoints = Arc::new(app::checkpointer(&config).context("audit signing key")?);
    let audit = Auditor::start(
        db.clone(),
        config.audit_timeout,
        config.audit_index_run,
        Some(checkpoints),
    );
    let started = std::time::Instant::now();
    let report = retention::Sweep {
        db: &db,
        policies: &policies,
        audit: &audit,
        now: now.unwrap_or_else(|| clock.now()),
        dry_run,
        batch,
        progress: None,
    }
    .run()
    .await
    .context("retention sweep")?;
    let secs = started.elapsed().as_secs_f64();
    println!("{}", serde_json::to_string_pretty(&report)?);
    let records = if dry_run {
        report
            .contacts
            .values()
            .chain(report.interactions.values())
            .chain(report.consents.values())
            .sum::<u64>()
    } else {
        report.purged
    };
    eprintln!(
        "{} {} records and {} customers in {:.3} s ({:.0} records/s)",
        if dry_run { "would purge" } else { "purged" },
        records,
        report.customers,
        secs,
        report.purged as f64 / secs.max(1e-9)
    );
    Ok(())
}
