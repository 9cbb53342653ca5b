//! The `arkku` command line: parse, configure, dispatch. No logic lives here.

use std::{process::ExitCode, time::Duration};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use arkku::{
    app,
    config::{Config, GlobalArgs},
    domain::{ChannelId, Role},
    store, token,
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
    /// Show channel key versions and how many data keys each wraps.
    Status,
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
    /// Lifetime, e.g. 15m, 1h, 8h.
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
        Command::Token(args) => print_token(config, args),
        Command::Audit { command } => audit(config, command).await,
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
    let root = app::key_file(&config.root_key_file, true, "ROOT KEY").context("root key")?;
    app::key_file(&config.issuer_key_file, true, "TOKEN ISSUER KEY").context("issuer key")?;
    let db = app::database(&config).await.context("database")?;
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
    let keys = store::keys::channel_keys(&db).await?;
    let counts = store::keys::data_key_counts(&db).await?;
    let now = time::OffsetDateTime::now_utc();
    println!(
        "{:<12} {:>7} {:>10} {:>10}",
        "domain", "version", "data_keys", "age_days"
    );
    for k in keys {
        let n = counts
            .iter()
            .find(|(c, v, _)| *c == k.channel && *v == k.version)
            .map(|(_, _, n)| *n)
            .unwrap_or(0);
        let age = (now - store::from_micros(k.created_at)).whole_days();
        println!("{:<12} {:>7} {:>10} {:>10}", k.channel, k.version, n, age);
    }
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
    for p in &args.purposes {
        if policies.purpose(p).is_none() {
            bail!("unknown purpose {p:?}");
        }
    }
    let key = app::key_file(
        &config.issuer_key_file,
        config.auto_keys,
        "TOKEN ISSUER KEY",
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
            println!("{}", serde_json::to_string_pretty(&report)?);
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
