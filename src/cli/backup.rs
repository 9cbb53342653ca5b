//! `arkku backup` and `arkku restore`: the SQLite vault's online copy and
//! its way back ([`crate::backup`]); on PostgreSQL, the procedure to use
//! instead.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::config::Config;

#[derive(Args)]
pub struct BackupArgs {
    /// The new file to write (refused if it exists). Key files are not in it.
    #[arg(long)]
    to: PathBuf,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// A file written by `arkku backup`.
    #[arg(long)]
    from: PathBuf,
    /// Replace a stopped vault that holds data (its file is kept aside).
    #[arg(long)]
    force: bool,
}

/// What to do on PostgreSQL, where the database's own tools apply.
const PG_BACKUP: &str = "arkku backup copies the embedded SQLite vault only; this vault runs on \
    PostgreSQL: back it up with pg_dump (pg_dump -Fc -f arkku.dump \"$ARKKU_DATABASE_URL\"), \
    as README \"Backup and restore\" describes";
const PG_RESTORE: &str = "arkku restore restores the embedded SQLite vault only; this vault runs \
    on PostgreSQL: restore a pg_dump file with pg_restore into a new, empty database \
    (createdb arkku_restored; pg_restore --no-owner -d arkku_restored arkku.dump), point \
    ARKKU_DATABASE_URL at it, then run `arkku migrate` and `arkku audit verify --checkpoint \
    last`, as README \"Backup and restore\" describes";

/// The key files, for the reminder that they are not in a backup.
fn key_files(config: &Config) -> String {
    [
        &config.root_key_file,
        &config.audit_key_file,
        &config.issuer_key_file,
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect::<Vec<_>>()
    .join(", ")
}

pub async fn backup(config: &Config, args: BackupArgs) -> anyhow::Result<()> {
    let Some(db) = crate::backup::sqlite_file(&config.database_url) else {
        bail!("{PG_BACKUP}");
    };
    let summary =
        tokio::task::spawn_blocking(move || crate::backup::backup(&db, &args.to)).await??;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!(
        "backup written to {} ({} bytes, owner-only): the audit log up to seq {}, {} customers.\n\
         The key files are NOT in it ({}): back them up separately and keep them apart from \
         this file; whoever holds both can read the vault.",
        summary.file.display(),
        summary.bytes,
        summary.audit_head_seq,
        summary.customers,
        key_files(config),
    );
    Ok(())
}

pub async fn restore(config: &Config, args: RestoreArgs) -> anyhow::Result<()> {
    let Some(db) = crate::backup::sqlite_file(&config.database_url) else {
        bail!("{PG_RESTORE}");
    };
    let (from, force) = (args.from, args.force);
    let summary =
        tokio::task::spawn_blocking(move || crate::backup::restore(&from, &db, force)).await??;
    println!("{}", serde_json::to_string_pretty(&summary)?);
    eprintln!(
        "restored into {} (the audit log up to seq {}, {} customers).\n\
         It needs the key files it was backed up with ({}).\n\
         Before serving, check what the restore lost: arkku audit verify --checkpoint last \
         (it compares the database with the furthest checkpoint in {}).",
        summary.file.display(),
        summary.audit_head_seq,
        summary.customers,
        key_files(config),
        config.checkpoint_dir.display(),
    );
    Ok(())
}
