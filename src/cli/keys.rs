//! `arkku keys`: create, inspect and rotate the key hierarchy.

use std::time::Duration;

use clap::Subcommand;

use crate::{
    clock::Clock,
    config::Config,
    service::{keys, operator::Operator},
    vault::rotation,
};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create the root and issuer keys (if missing) and every channel key.
    Init,
    /// Show channel key versions, how many data keys each wraps, their age, and the root key file.
    Status,
    /// Rotate a channel key (new version, data keys rewrapped, old versions retired) or the root key.
    /// Runs while `serve` runs; audited as key.rotate.
    Rotate(RotateArgs),
}

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["channel", "root"])))]
pub struct RotateArgs {
    /// The key domain to rotate: a channel of the policy (or one that still has keys), or `_profile`.
    #[arg(long, env = "ARKKU_ROTATE_CHANNEL")]
    channel: Option<String>,
    /// Rotate the root key: rewrap every channel key under a new root key file.
    #[arg(long, env = "ARKKU_ROTATE_ROOT")]
    root: bool,
    /// How long after adding the new version to wait before the final pass and retiring the
    /// old versions; must be longer than ARKKU_KEY_REFRESH of every running `serve`.
    #[arg(long, env = "ARKKU_ROTATE_GRACE", default_value = "5s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// Data keys rewrapped per statement (1–10000).
    #[arg(long, env = "ARKKU_ROTATE_BATCH", default_value_t = 1000)]
    batch: usize,
}

pub async fn run(config: Config, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Init => init(config).await,
        KeysCommand::Status => show_status(config).await,
        KeysCommand::Rotate(args) => rotate(config, args).await,
    }
}

async fn init(config: Config) -> anyhow::Result<()> {
    let ready = keys::init(&config).await?;
    println!(
        "keys ready: root key {}, issuer key {}",
        ready.root_key_file.display(),
        ready.issuer_key_file.display()
    );
    Ok(())
}

async fn show_status(config: Config) -> anyhow::Result<()> {
    let report = keys::status(&config, &Clock::from_env()).await?;
    print!("{report}");
    Ok(())
}

async fn rotate(config: Config, args: RotateArgs) -> anyhow::Result<()> {
    let vault = keys::KeyVault::open(&config).await?;
    let operator = Operator::cli("keys rotate");
    if args.root {
        let r = keys::rotate_root(&vault, &operator).await?;
        println!(
            "rotated the root key: {} channel keys rewrapped; {} replaced. \
             Destroy every copy of the old root key (and back up the new one).",
            r.channel_keys,
            r.file.display()
        );
        return Ok(());
    }
    let domain = args.channel.unwrap_or_default();
    let how = rotation::ChannelRotation {
        grace: args.grace,
        batch: args.batch,
    };
    let r = keys::rotate_channel(&vault, &operator, &domain, how).await?;
    println!("{}", rotated_line(&r, args.grace));
    Ok(())
}

/// What a channel rotation prints: versions, work, rate and what was retired.
fn rotated_line(r: &rotation::ChannelReport, grace: Duration) -> String {
    let versions = |v: &[u32]| -> String {
        if v.is_empty() {
            String::new()
        } else {
            v.iter()
                .map(|v| format!("v{v}"))
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    let from = versions(&r.from);
    let retired = versions(&r.retired);
    let busy = r.busy.as_secs_f64();
    format!(
        "rotated {}: {} -> v{}; {} data keys rewrapped in {:.2} s of work ({:.0} keys/s), \
         {:.2} s in all with the {} grace; retired {}",
        r.domain,
        if from.is_empty() { "-" } else { &from },
        r.to,
        r.rewrapped,
        busy,
        r.rewrapped as f64 / busy.max(1e-9),
        r.elapsed.as_secs_f64(),
        humantime::format_duration(grace),
        if retired.is_empty() {
            "nothing"
        } else {
            &retired
        },
    )
}
