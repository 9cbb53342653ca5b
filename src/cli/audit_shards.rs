//! `arkku audit tie` and `arkku audit verify --shard …`: the audit log of a
//! vault split over several databases (docs/SCALING.md).

use std::path::Path;

use anyhow::{bail, Context};

use crate::{
    audit::{
        shards::{self, Shard},
        tie::{valid_name, Tie},
        Checkpointer,
    },
    store::{self, Db},
};

/// Parses `NAME=DATABASE_URL` arguments and opens each database (which must
/// exist: a shard is never created here). Names must be unique.
async fn open(args: &[String], at_least: usize) -> anyhow::Result<Vec<Shard>> {
    if args.len() < at_least {
        bail!("give every shard of the vault, at least {at_least}, as --shard NAME=DATABASE_URL");
    }
    let mut shards: Vec<Shard> = Vec::with_capacity(args.len());
    for arg in args {
        let Some((name, url)) = arg.split_once('=') else {
            bail!("--shard takes NAME=DATABASE_URL (got no '=')");
        };
        if !valid_name(name) {
            bail!(
                "shard name {name:?}: use 1 to {} of a-z, 0-9, '-' and '_'",
                crate::audit::tie::MAX_NAME
            );
        }
        if shards.iter().any(|s| s.name == name) {
            bail!("shard {name} is given twice");
        }
        let db = Db::connect(url)
            .await
            .with_context(|| format!("shard {name}: opening its database"))?;
        db.migrate()
            .await
            .with_context(|| format!("shard {name}: migrating its database"))?;
        shards.push(Shard {
            name: name.to_owned(),
            db,
        });
    }
    Ok(shards)
}

/// `arkku audit tie`: prints the new tie (keep it, like a checkpoint).
pub async fn tie(args: &[String], signer: &Checkpointer) -> anyhow::Result<()> {
    let shards = open(args, 2).await?;
    let now = store::to_micros(time::OffsetDateTime::now_utc());
    let tie = shards::tie(&shards, signer, now).await?;
    println!("{}", serde_json::to_string_pretty(&tie)?);
    let heads: Vec<String> = tie
        .shards
        .iter()
        .map(|h| format!("{} at entry {}", h.name, h.seq))
        .collect();
    eprintln!(
        "tie {} signed and stored in every shard: {}",
        tie.n,
        heads.join(", ")
    );
    Ok(())
}

/// `arkku audit verify --shard …`: prints the report; fails naming every problem.
pub async fn verify(
    args: &[String],
    kept: Option<&Path>,
    signer: &Checkpointer,
) -> anyhow::Result<()> {
    let kept = match kept {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let tie: Tie = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a tie (arkku audit tie prints one)",
                    path.display()
                )
            })?;
            Some(tie)
        }
    };
    let shards = open(args, 1).await?;
    let report = shards::verify(&shards, signer.public_key(), kept.as_ref()).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.ok {
        bail!(
            "the split audit log does not verify:\n  - {}",
            report.problems.join("\n  - ")
        );
    }
    let entries: u64 = report.shards.iter().map(|s| s.chain.entries_checked).sum();
    eprintln!(
        "{} shards verify ({entries} entries), and {} ties bind them",
        report.shards.len(),
        report.ties_checked
    );
    Ok(())
}
