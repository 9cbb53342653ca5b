//! The `arkku` command line: parse, configure, dispatch. No logic lives here.

/// glibc's allocator spends a fifth of a busy server's time in malloc and
/// free (measured with perf under profile reads); mimalloc's per-thread
/// free lists do the same work in a fraction of it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{process::ExitCode, time::Duration};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use arkku::{
    app,
    audit::{ActorRef, Auditor},
    config::{Config, GlobalArgs},
    domain::{ChannelId, Role},
    store, token,
    vault::{rotation, status},
};

#[derive(Parser)]
#[command(
    name = "arkku",
    version,
    about = "A privacy vault for customer contact data"
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (creates keys and applies migrations as needed).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage the key hierarchy.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print a development token signed by the local issuer key (last line of stdout).
    Token(TokenArgs),
    /// Validate policies.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Verify, checkpoint and export the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Purge what the retention rules no longer allow to keep.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Run one sweep now and print what it purged (JSON).
    Run {
        /// Print what would be purged and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Sweep as of this time (RFC 3339) instead of now.
        #[arg(long, value_parser = parse_rfc3339)]
        now: Option<time::OffsetDateTime>,
        /// Rows per batch (and per audit entry).
        #[arg(long, default_value_t = arkku::retention::DEFAULT_BATCH)]
        batch: usize,
    },
}

fn parse_rfc3339(s: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time: {e}"))
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the whole chain and the stored checkpoints; exit 1 on the first bad entry.
    Verify {
        /// A checkpoint file kept from before (detects a truncated tail).
        #[arg(long)]
        checkpoint: Option<std::path::PathBuf>,
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
}

#[derive(Subcommand)]
enum KeysCommand {
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
struct RotateArgs {
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

#[derive(Subcommand)]
enum PolicyCommand {
    /// Load and validate the policies without starting the server.
    Check,
}

#[derive(clap::Args)]
struct TokenArgs {
    /// agent | service | compliance | customer | admin
    #[arg(long)]
    role: String,
    /// Subject: the user or system acting (for customer tokens, the customer id).
    #[arg(long)]
    sub: String,
    /// Purposes the token may read for, comma separated.
    #[arg(long, value_delimiter = ',')]
    purposes: Vec<String>,
    /// The channel an agent serves (the channel context of its reads).
    #[arg(long)]
    channel: Option<String>,
    /// Lifetime, e.g. 15m, 1h, 8h; at most the policy's tokens.max_lifetime.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.global.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_args(&cli.global).map_err(anyhow::Error::msg)?;
    match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => {
            app::database(&config)
                .await
                .context("migrating the database")?;
            println!("migrations applied");
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Init,
        } => keys_init(config).await,
        Command::Keys {
            command: KeysCommand::Status,
        } => keys_status(config).await,
        Command::Keys {
            command: KeysCommand::Rotate(args),
        } => keys_rotate(config, args).await,
        Command::Token(args) => print_token(config, args),
        Command::Audit { command } => audit(config, command).await,
        Command::Retention {
            command:
                RetentionCommand::Run {
                    dry_run,
                    now,
                    batch,
                },
        } => retention_run(config, dry_run, now, batch).await,
        Command::Policy {
            command: PolicyCommand::Check,
        } => {
            let p = config.load_policies()?;
            println!(
                "policies ok: {} channels ({}), {} purposes ({})",
                p.channels.len(),
                p.channels
                    .keys()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                p.purposes.len(),
                p.purposes
                    .keys()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            let mut rates: Vec<String> = p
                .limits
                .rates
                .iter()
                .map(|((action, role), r)| {
                    format!(
                        "{} {}: {}/min, burst {}",
                        action.as_str(),
                        role.as_str(),
                        r.per_minute,
                        r.burst
                    )
                })
                .collect();
            rates.sort();
            println!(
                "limits ok: tokens live at most {}; rate limits: {}",
                humantime::format_duration(p.limits.token_max_lifetime),
                if rates.is_empty() {
                    "none".to_owned()
                } else {
                    rates.join("; ")
                }
            );
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.listen;
    let backend = if config.database_url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let state = app::open(config).await.context("starting arkku")?;
    app::spawn_retention_sweeper(state.clone());
    app::spawn_chain_watch(&state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, backend, "arkku listening");
    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        return;
                    }
                };
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down");
    };
    arkku::serve(listener, state, shutdown)
        .await
        .context("serving")?;
    Ok(())
}

async fn keys_init(config: Config) -> anyhow::Result<()> {
    let policies = config.load_policies()?;
    let db = app::database(&config).await.context("database")?;
    let root =
        app::key_file(&config.root_key_file, true, app::KeyFile::Root).context("root key")?;
    app::key_file(&config.issuer_key_file, true, app::KeyFile::Issuer).context("issuer key")?;
    app::keyring(&db, &config, root, &policies)
        .await
        .context("channel keys")?;
    println!(
        "keys ready: root key {}, issuer key {}",
        config.root_key_file.display(),
        config.issuer_key_file.display()
    );
    Ok(())
}

async fn keys_status(config: Config) -> anyhow::Result<()> {
    let db = app::database(&config).await.context("database")?;
    let report = status::status(&db, &config.root_key_file).await?;
    print!("{report}");
    Ok(())
}

async fn keys_rotate(config: Config, args: RotateArgs) -> anyhow::Result<()> {
    let policies = config.load_policies()?;
    // Never creates a root key: rotating a key nobody has is a mistake.
    let root = arkku::crypto::load_key_file(&config.root_key_file).context("root key")?;
    let db = app::database(&config).await.context("database")?;
    let keyring = app::keyring(&db, &config, root, &policies)
        .await
        .context("channel keys")?;
    let checkpoints = std::sync::Arc::new(app::checkpointer(&config).context("audit signing key")?);
    let auditor = Auditor::start(db.clone(), config.audit_timeout, Some(checkpoints));
    let actor = ActorRef {
        sub: "arkku-cli".to_owned(),
        role: "admin".to_owned(),
        client: Some("keys rotate".to_owned()),
    };
    if args.root {
        let r = rotation::rotate_root(&db, &keyring, &auditor, &actor).await?;
        println!(
            "rotated the root key: {} channel keys rewrapped; {} replaced. \
             Destroy every copy of the old root key (and back up the new one).",
            r.channel_keys,
            r.file.display()
        );
        return Ok(());
    }
    let domain = args.channel.unwrap_or_default();
    if args.grace <= config.key_refresh {
        bail!(
            "--grace ({}) must be longer than ARKKU_KEY_REFRESH ({}), or a running serve could \
             still wrap new data keys under the old version when it is retired",
            humantime::format_duration(args.grace),
            humantime::format_duration(config.key_refresh)
        );
    }
    let how = rotation::ChannelRotation {
        grace: args.grace,
        batch: args.batch,
    };
    let r = rotation::rotate_channel(&db, &keyring, &auditor, &actor, &domain, how).await?;
    let from: Vec<String> = r.from.iter().map(|v| format!("v{v}")).collect();
    let retired: Vec<String> = r.retired.iter().map(|v| format!("v{v}")).collect();
    let busy = r.busy.as_secs_f64();
    println!(
        "rotated {}: {} -> v{}; {} data keys rewrapped in {:.2} s of work ({:.0} keys/s), \
         {:.2} s in all with the {} grace; retired {}",
        r.domain,
        if from.is_empty() {
            "-".to_owned()
        } else {
            from.join(",")
        },
        r.to,
        r.rewrapped,
        busy,
        r.rewrapped as f64 / busy.max(1e-9),
        r.elapsed.as_secs_f64(),
        humantime::format_duration(args.grace),
        if retired.is_empty() {
            "nothing".to_owned()
        } else {
            retired.join(",")
        },
    );
    Ok(())
}

fn print_token(config: Config, args: TokenArgs) -> anyhow::Result<()> {
    let role: Role = args.role.parse().map_err(|_| {
        anyhow::anyhow!(
            "unknown role {:?} (agent, service, compliance, customer, admin)",
            args.role
        )
    })?;
    if args.sub.trim().is_empty() {
        bail!("--sub must not be empty");
    }
    if role == Role::Customer && uuid::Uuid::parse_str(&args.sub).is_err() {
        bail!("customer tokens need the customer id as --sub");
    }
    let channel = args
        .channel
        .as_deref()
        .map(ChannelId::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--channel: {e}"))?;
    let policies = config.load_policies()?;
    if let Some(c) = &channel {
        if policies.channel(c.as_str()).is_none() {
            bail!(
                "unknown channel {:?}: channels.toml defines no such channel",
                c.as_str()
            );
        }
    }
    for p in &args.purposes {
        if policies.purpose(p).is_none() {
            bail!("unknown purpose {p:?}");
        }
    }
    let max = policies.limits.token_max_lifetime;
    if args.ttl > max {
        bail!(
            "--ttl {} is longer than the policy allows ({}, tokens.max_lifetime in limits.toml): \
             the server would refuse the token",
            humantime::format_duration(args.ttl),
            humantime::format_duration(max)
        );
    }
    if args.ttl.is_zero() {
        bail!("--ttl must be longer than zero");
    }
    let key = app::key_file(
        &config.issuer_key_file,
        config.auto_keys,
        app::KeyFile::Issuer,
    )
    .context("issuer key")?;
    let jwt = token::issue(
        &key,
        &config.issuer,
        &config.audience,
        &token::TokenRequest {
            role,
            sub: &args.sub,
            purposes: &args.purposes,
            channel: channel.as_ref(),
            ttl: args.ttl,
        },
    )?;
    println!("{jwt}");
    Ok(())
}

async fn retention_run(
    config: Config,
    dry_run: bool,
    now: Option<time::OffsetDateTime>,
    batch: usize,
) -> anyhow::Result<()> {
    let policies = config.load_policies()?;
    let db = app::database(&config).await.context("database")?;
    let checkpoints = std::sync::Arc::new(app::checkpointer(&config).context("audit signing key")?);
    let audit = arkku::audit::Auditor::start(db.clone(), config.audit_timeout, Some(checkpoints));
    let started = std::time::Instant::now();
    let report = arkku::retention::Sweep {
        db: &db,
        policies: &policies,
        audit: &audit,
        now: now.unwrap_or_else(time::OffsetDateTime::now_utc),
        dry_run,
        batch,
    }
    .run()
    .await
    .context("retention sweep")?;
    let secs = started.elapsed().as_secs_f64();
    println!("{}", serde_json::to_string_pretty(&report)?);
    eprintln!(
        "{} {} records and {} customers in {:.3} s ({:.0} records/s)",
        if dry_run { "would purge" } else { "purged" },
        if dry_run {
            report
                .contacts
                .values()
                .chain(report.interactions.values())
                .chain(report.consents.values())
                .sum::<u64>()
        } else {
            report.purged
        },
        report.customers,
        secs,
        report.purged as f64 / secs.max(1e-9)
    );
    Ok(())
}

/// What `arkku audit verify` prints: the report, and how long the check took
/// (without start-up), so that benchmarks read the rate from the output.
#[derive(serde::Serialize)]
struct VerifyOutput<'a> {
    #[serde(flatten)]
    report: &'a arkku::audit::verify::VerifyReport,
    elapsed_ms: f64,
}

async fn audit(config: Config, command: AuditCommand) -> anyhow::Result<()> {
    use arkku::audit::{checkpoint::CheckpointFile, verify::verify};
    use std::io::Write;

    let signer = app::checkpointer(&config).context("audit signing key")?;
    if let AuditCommand::PublicKey = command {
        println!("{}", arkku::crypto::hex(signer.public_key()));
        return Ok(());
    }
    let db = app::database(&config).await.context("database")?;
    match command {
        AuditCommand::Verify { checkpoint } => {
            let kept = match checkpoint {
                None => None,
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    let file: CheckpointFile = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a checkpoint file", path.display()))?;
                    Some(file.to_row().with_context(|| {
                        format!("{} holds a malformed checkpoint", path.display())
                    })?)
                }
            };
            let started = std::time::Instant::now();
            let report = verify(&db, Some(signer.public_key()), kept.as_ref()).await?;
            let secs = started.elapsed().as_secs_f64();
            let out = VerifyOutput {
                report: &report,
                elapsed_ms: secs * 1000.0,
            };
            println!("{}", serde_json::to_string_pretty(&out)?);
            eprintln!(
                "verified {} entries in {:.3} s ({:.0} entries/s)",
                report.entries_checked,
                secs,
                report.entries_checked as f64 / secs.max(1e-9)
            );
            if !report.ok {
                bail!(
                    "the audit chain does not verify: {}",
                    report.problem.unwrap_or_default()
                );
            }
            Ok(())
        }
        AuditCommand::Checkpoint => {
            match signer.checkpoint_head(&db).await? {
                Some(c) => println!("{}", serde_json::to_string_pretty(&c)?),
                None => bail!("the audit log is empty: nothing to checkpoint"),
            }
            Ok(())
        }
        AuditCommand::Export { .. } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let mut after = 0;
            loop {
                let rows = store::audit::entries_after(&db, after, 10_000).await?;
                let Some(last) = rows.last() else { break };
                after = last.seq;
                for r in rows {
                    let line = serde_json::to_string(&arkku::http::audit::EntryView::from(r))?;
                    writeln!(out, "{line}")?;
                }
            }
            out.flush()?;
            Ok(())
        }
        AuditCommand::PublicKey => Ok(()),
    }
}
