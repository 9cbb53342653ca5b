//! `arkku audit`: verify the chain (and a kept checkpoint), sign a checkpoint
//! of the head, export the log, print the checkpoint public key, and check
//! a downloaded CSV export against its signed manifest (offline).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::{
    app,
    audit::{
        checkpoint::{self, CheckpointFile},
        checkpoint_files,
        export::{verify_export as verify_export_files, Manifest},
        loss::{Comparison, Loss},
        verify::{verify, VerifyReport},
        Checkpointer,
    },
    config::Config,
    crypto::unhex,
    store::{self, audit::CheckpointRow, Db},
};

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute the whole chain and the stored checkpoints; exit 1 on the first bad entry.
    Verify {
        /// A checkpoint file kept from before (detects a truncated tail), or
        /// `last`: the furthest one in the checkpoint directory
        /// (ARKKU_CHECKPOINT_DIR). Says how many entries after it are
        /// missing, as after a restore, and exits 1 if any are.
        #[arg(long, conflicts_with = "shards")]
        checkpoint: Option<PathBuf>,
        /// A shard of a vault split over several databases, as NAME=DATABASE_URL
        /// (repeat for each): verifies every shard's chain and the ties between them.
        #[arg(long = "shard", value_name = "NAME=DATABASE_URL")]
        shards: Vec<String>,
        /// A tie kept from before (the output of `arkku audit tie`): detects
        /// ties or entries cut from every shard after it. Needs --shard.
        #[arg(long, requires = "shards")]
        tie: Option<PathBuf>,
    },
    /// Sign a tie naming the head of every shard's chain, store it in every
    /// shard, and print it (keep the output); see docs/SCALING.md.
    Tie {
        /// A shard, as NAME=DATABASE_URL; at least two, every one of the vault.
        #[arg(long = "shard", value_name = "NAME=DATABASE_URL", required = true)]
        shards: Vec<String>,
    },
    /// Sign a checkpoint of the current head, store it, and print it (keep the output).
    Checkpoint,
    /// Stream the whole log to stdout.
    Export {
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl"])]
        format: String,
    },
    /// Print the public key that signs checkpoints (hex).
    PublicKey,
    /// Check a CSV export against its signed manifest, offline (no database);
    /// exit 1 naming what failed.
    VerifyExport {
        /// The CSV file from `GET /v1/audit/export`.
        #[arg(long)]
        csv: PathBuf,
        /// The manifest from `GET /v1/audit/export/manifest`.
        #[arg(long)]
        manifest: PathBuf,
        /// A file holding the vault's audit public key in hex, as `arkku audit
        /// public-key` prints it (default: derived from the audit key file,
        /// on the vault host).
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
}

/// What `arkku audit verify` prints: the report, and how long the check took
/// (without start-up), so that benchmarks read the rate from the output.
#[derive(serde::Serialize)]
struct VerifyOutput<'a> {
    #[serde(flatten)]
    report: &'a VerifyReport,
    elapsed_ms: f64,
    /// Given a kept checkpoint: what the database lacks against it.
    #[serde(skip_serializing_if = "Option::is_none")]
    kept_checkpoint: Option<KeptOutput>,
}

/// The kept checkpoint's file and what the database lacks against it.
#[derive(serde::Serialize)]
struct KeptOutput {
    file: String,
    #[serde(flatten)]
    comparison: Comparison,
    statement: String,
}

pub async fn run(config: Config, command: AuditCommand) -> anyhow::Result<()> {
    if let AuditCommand::VerifyExport {
        csv,
        manifest,
        public_key,
    } = command
    {
        return verify_export(&config, &csv, &manifest, public_key.as_deref());
    }
    let signer = app::checkpointer(&config).context("audit signing key")?;
    match command {
        AuditCommand::PublicKey => {
            println!("{}", crate::crypto::hex(signer.public_key()));
            return Ok(());
        }
        AuditCommand::Tie { shards } => return super::audit_shards::tie(&shards, &signer).await,
        AuditCommand::Verify {
            ref shards,
            ref tie,
            ..
        } if !shards.is_empty() => {
            return super::audit_shards::verify(shards, tie.as_deref(), &signer).await
        }
        _ => {}
    }
    let db = app::database(&config).await.context("database")?;
    match command {
        AuditCommand::Verify { checkpoint, .. } => {
            let checkpoint = checkpoint.map(|c| {
                if c.as_os_str() == "last" {
                    Kept::Last(config.checkpoint_dir.clone())
                } else {
                    Kept::File(c)
                }
            });
            check(&db, &signer, checkpoint).await
        }
        AuditCommand::Checkpoint => {
            match signer.checkpoint_head(&db).await? {
                Some(c) => println!("{}", serde_json::to_string_pretty(&c)?),
                None => bail!("the audit log is empty: nothing to checkpoint"),
            }
            Ok(())
        }
        AuditCommand::Export { .. } => export(&db).await,
        AuditCommand::PublicKey | AuditCommand::VerifyExport { .. } | AuditCommand::Tie { .. } => {
            Ok(())
        }
    }
}

/// Where `--checkpoint` points.
enum Kept {
    File(PathBuf),
    /// The furthest checkpoint file in this directory.
    Last(PathBuf),
}

/// Reads the kept checkpoint: its path, the file and its bytes.
fn read_kept(kept: Kept) -> anyhow::Result<(PathBuf, CheckpointFile, CheckpointRow)> {
    let (path, file) = match kept {
        Kept::Last(dir) => checkpoint_files::last(&dir)?,
        Kept::File(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let file: CheckpointFile = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a checkpoint file", path.display()))?;
            (path, file)
        }
    };
    let row = file
        .to_row()
        .with_context(|| format!("{} holds a malformed checkpoint", path.display()))?;
    Ok((path, file, row))
}

async fn check(db: &Db, signer: &Checkpointer, kept: Option<Kept>) -> anyhow::Result<()> {
    let kept = kept.map(read_kept).transpose()?;
    let started = std::time::Instant::now();
    let report = verify(db, Some(signer.public_key()), kept.as_ref().map(|k| &k.2)).await?;
    let secs = started.elapsed().as_secs_f64();
    let comparison = match &kept {
        None => None,
        Some((path, file, row)) => {
            let head = store::audit::max_seq(db).await?.unwrap_or(0);
            let at_seq = store::audit::hash_at(db, row.seq).await?;
            let c = Comparison::new(row.seq, &row.hash, &file.at, head, at_seq.as_deref());
            Some(KeptOutput {
                file: path.display().to_string(),
                statement: c.statement(),
                comparison: c,
            })
        }
    };
    let out = VerifyOutput {
        report: &report,
        elapsed_ms: secs * 1000.0,
        kept_checkpoint: comparison,
    };
    println!("{}", serde_json::to_string_pretty(&out)?);
    eprintln!(
        "verified {} entries in {:.3} s ({:.0} entries/s)",
        report.entries_checked,
        secs,
        report.entries_checked as f64 / secs.max(1e-9)
    );
    if let Some(k) = &out.kept_checkpoint {
        // The loss explains the chain's failure when the walk reached the
        // database's last entry (a log shorter than the checkpoint), or
        // stopped exactly at the checkpoint's entry (another entry there):
        // then say what is missing rather than that the tail was truncated.
        let c = &k.comparison;
        let explained = match c.loss {
            Loss::Nothing => report.ok,
            Loss::Missing(_) => report.head_seq == c.head_seq,
            Loss::Diverged => report.first_bad_seq == Some(c.checkpoint_seq),
        };
        let signed = kept
            .as_ref()
            .is_some_and(|(_, _, row)| checkpoint::signature_valid(row, Some(signer.public_key())));
        if signed && explained {
            if c.lost() {
                bail!("{}", k.statement);
            }
            eprintln!("{}", k.statement);
        }
    }
    if !report.ok {
        bail!(
            "the audit chain does not verify: {}",
            report.problem.unwrap_or_default()
        );
    }
    Ok(())
}

/// Streams every entry as one JSON line, in chain order.
async fn export(db: &Db) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut after = 0;
    loop {
        let rows = store::audit::entries_after(db, after, 10_000).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for r in rows {
            let line = serde_json::to_string(&crate::http::audit::EntryView::from(r))?;
            writeln!(out, "{line}")?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `arkku audit verify-export`: the files and the trusted key only; prints
/// what was checked, or fails listing every problem.
fn verify_export(
    config: &Config,
    csv: &Path,
    manifest: &Path,
    public_key: Option<&Path>,
) -> anyhow::Result<()> {
    let trusted = trusted_key(config, public_key)?;
    let text = std::fs::read_to_string(manifest)
        .with_context(|| format!("reading {}", manifest.display()))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an audit export manifest", manifest.display()))?;
    let mut file =
        std::fs::File::open(csv).with_context(|| format!("reading {}", csv.display()))?;
    match verify_export_files(&mut file, &manifest, &trusted) {
        Ok(check) => {
            println!("{}", serde_json::to_string_pretty(&check)?);
            eprintln!(
                "the export verifies: {} entries, checkpoint {} signed by the vault's audit key",
                check.entries, check.checkpoint_seq
            );
            Ok(())
        }
        Err(problems) => bail!(
            "the export does not verify:\n  - {}",
            problems.join("\n  - ")
        ),
    }
}

/// The public key to trust: the file given, or the one of the audit key
/// file on this host. Never the key the manifest names: a forger would name
/// their own.
fn trusted_key(config: &Config, public_key: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    if let Some(path) = public_key {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return unhex(text.trim())
            .filter(|k| k.len() == 32)
            .with_context(|| {
                format!(
                    "{} does not hold a public key (64 hex digits, as `arkku audit public-key` prints)",
                    path.display()
                )
            });
    }
    if !config.audit_key_file.exists() {
        bail!(
            "no audit key file at {}: pass --public-key FILE (the output of `arkku audit \
             public-key` on the vault host)",
            config.audit_key_file.display()
        );
    }
    let signer = app::checkpointer(config).context("audit signing key")?;
    Ok(signer.public_key().to_vec())
}
