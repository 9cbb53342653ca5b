//! `arkku-bench`: the cost of privacy, measured (docs/PERFORMANCE.md).
//!
//! Served scenarios: seeds N customers, starts `arkku serve` and a plaintext
//! baseline on the same database engine, drives each over loopback with a
//! closed-loop client, and reports throughput, latency percentiles, the
//! arkku/baseline ratio and the server's peak RSS. One-shot scenarios (a
//! retention sweep, audit appends, audit verification) run real processes on
//! databases of their own and report their rate and peak RSS. Everything is
//! printed as a table and, with `--json`, written as JSON.
//!
//! cargo run --release --features bench --bin arkku-bench -- --customers 100000 --seconds 20 --json bench.json
//!
//! It needs the `bench` cargo feature, which also compiles the library's
//! benchmark-only hooks ([`arkku::bench`]); `arkku` itself is built without.

/// The same allocator as `arkku serve`, so the baseline differs from it
/// only in what privacy costs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod aids;
mod baseline;
mod burst;
mod databases;
mod load;
mod oneshot;
mod procs;
mod seed;
mod served;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use serde_json::json;

use databases::{Databases, WorkDir};
use load::Outcome;

#[derive(Parser)]
#[command(
    name = "arkku-bench",
    about = "Load harness: arkku against a plaintext baseline"
)]
struct Args {
    #[command(subcommand)]
    command: Option<Internal>,
    /// Customers to seed (four contact points each).
    #[arg(long, default_value_t = 100_000)]
    customers: usize,
    /// Seconds per served scenario and server.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Concurrent connections of the closed-loop client (exports run one at a time).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Database engine.
    #[arg(long, value_enum, default_value_t = Engine::Sqlite)]
    database: Engine,
    /// PostgreSQL server to create the benchmark databases on.
    #[arg(
        long,
        env = "ARKKU_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// Scenarios to run, comma separated, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "lookup,profile_read,consent_grant,interaction_create,export,retention_sweep,audit_append,audit_verify"
    )]
    scenarios: Vec<Scenario>,
    /// Interactions of each large customer `export` exports (a typical one has 20).
    #[arg(long, default_value_t = 1000)]
    export_interactions: usize,
    /// Expired contact points `retention_sweep` seeds and purges.
    #[arg(long, default_value_t = 1_000_000)]
    sweep_records: usize,
    /// Entries `audit_append` writes and `audit_verify` checks.
    #[arg(long, default_value_t = 1_000_000)]
    audit_entries: usize,
    /// On/off pairs `metrics_overhead` drives (each `--seconds` per server).
    #[arg(long, default_value_t = 3)]
    metrics_rounds: usize,
    /// Concurrent appenders of `audit_append` (requests in flight on a busy server).
    #[arg(long, default_value_t = 256)]
    audit_writers: usize,
    /// Bursts of wrong client secrets `token_burst` measures (each waits for
    /// the last one's attempt budget to refill).
    #[arg(long, default_value_t = 3)]
    token_bursts: usize,
    /// Leave the seeded vault without profile documents, so that `arkku
    /// serve` builds them at start while the scenarios run (the online
    /// migration of 0017); `profile_backfill_online` is then how long serve
    /// took to build them all, as it logs.
    #[arg(long)]
    online_backfill: bool,
    /// Write the figures to this JSON file too.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Internal {
    /// (internal) Serve the plaintext baseline.
    #[command(hide = true)]
    Baseline {
        #[arg(long)]
        database: String,
        #[arg(long)]
        listen: std::net::SocketAddr,
    },
    /// (internal) Append entries through the audit writer; print how long it took (JSON).
    #[command(hide = true)]
    AuditFill {
        #[arg(long)]
        database: String,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        entries: usize,
        #[arg(long)]
        writers: usize,
    },
    /// Serve the API with an auditor that writes nothing (for bench/audit_cost.sh;
    /// ARKKU_* variables as for arkku, ARKKU_LISTEN default 127.0.0.1:8081).
    ServeWithoutAudit,
    /// Seed KEYS customers with one data key each in CHANNEL, in bulk (for bench/rotate.sh).
    RotateSeed {
        #[arg(default_value_t = 100_000)]
        keys: usize,
        #[arg(default_value = "phone")]
        channel: String,
    },
    /// (internal) Seed the expired data `retention_sweep` purges, and stop:
    /// for profiling `arkku retention run` on a copy.
    #[command(hide = true)]
    SweepSeed {
        #[arg(long)]
        database: String,
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        records: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Scenario {
    /// POST /v1/lookup by phone number.
    Lookup,
    /// GET /v1/customers/{id}: four channels, masked, durable audit.
    #[value(name = "profile_read")]
    ProfileRead,
    /// POST /v1/customers/{id}/consents: a ledger entry and a durable audit entry.
    /// An agent records the grant, so it waits for the customer's
    /// confirmation and changes no consent facts.
    #[value(name = "consent_grant")]
    ConsentGrant,
    /// POST /v1/me/consents: customers' own grants (each of 20 000 customers
    /// with its own token), which take effect at once and so make the
    /// customer's consent facts stale. Not in the default list: run it by
    /// name.
    #[value(name = "consent_grant_customer")]
    ConsentGrantCustomer,
    /// POST /v1/customers/{id}/interactions: a sealed body and a durable audit entry.
    #[value(name = "interaction_create")]
    InteractionCreate,
    /// GET /v1/customers/{id}/export?purpose=dsr, one at a time, of customers with
    /// 1 000 interactions (`export`) and with 20 (`export_typical`).
    Export,
    /// One `arkku retention run` over R expired contact points.
    #[value(name = "retention_sweep")]
    RetentionSweep,
    /// A durable audit entries through the group-commit writer.
    #[value(name = "audit_append")]
    AuditAppend,
    /// `arkku audit verify` over those A entries.
    #[value(name = "audit_verify")]
    AuditVerify,
    /// Profile reads alone, then during a burst of 1 000 wrong client secrets
    /// at POST /oauth/token; the token endpoint for a known client; one
    /// argon2id verification. Not in the default list: run it by name.
    #[value(name = "token_burst")]
    TokenBurst,
    /// Profile reads from `arkku serve` with `ARKKU_METRICS_LISTEN` set (and
    /// scraped every second) against a second `arkku serve` on the same
    /// database without it, alternately `--metrics-rounds` times; the
    /// "baseline" columns are the server without metrics. Not in the
    /// default list: run it by name.
    #[value(name = "metrics_overhead")]
    MetricsOverhead,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Lookup => "lookup",
            Scenario::ProfileRead => "profile_read",
            Scenario::ConsentGrant => "consent_grant",
            Scenario::ConsentGrantCustomer => "consent_grant_customer",
            Scenario::InteractionCreate => "interaction_create",
            Scenario::Export => "export",
            Scenario::RetentionSweep => "retention_sweep",
            Scenario::AuditAppend => "audit_append",
            Scenario::AuditVerify => "audit_verify",
            Scenario::TokenBurst => "token_burst",
            Scenario::MetricsOverhead => "profile_read_metrics",
        }
    }

    /// Whether it drives the servers (rather than running one process to the end).
    fn served(self) -> bool {
        !matches!(
            self,
            Scenario::RetentionSweep | Scenario::AuditAppend | Scenario::AuditVerify
        )
    }
}

/// One line of the report (the JSON shape docs/PERFORMANCE.md describes). The
/// latencies are null for one-shot scenarios.
#[derive(Serialize, Clone)]
struct Row {
    name: &'static str,
    backend: &'static str,
    throughput: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    p999_ms: Option<f64>,
    baseline_throughput: Option<f64>,
    ratio: Option<f64>,
    rss_mb: f64,
    failed: u64,
    /// CPU time of the arkku server process per answered request, in µs
    /// (on PostgreSQL the database's own processes are not counted).
    cpu_us_per_op: Option<f64>,
    /// The same for the baseline server.
    baseline_cpu_us_per_op: Option<f64>,
    /// CPU time of this process (the load client) per request to arkku, in µs.
    client_cpu_us_per_op: Option<f64>,
}

impl Row {
    /// A scenario that is one operation: a rate and a peak RSS, no latencies.
    fn one_shot(name: &'static str, backend: &'static str, throughput: f64, rss_mb: f64) -> Self {
        Row {
            name,
            backend,
            throughput,
            p50_ms: None,
            p99_ms: None,
            p999_ms: None,
            baseline_throughput: None,
            ratio: None,
            rss_mb,
            failed: 0,
            cpu_us_per_op: None,
            baseline_cpu_us_per_op: None,
            client_cpu_us_per_op: None,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match &args.command {
        Some(Internal::Baseline { database, listen }) => {
            rt.block_on(baseline::run(database, *listen))
        }
        Some(Internal::AuditFill {
            database,
            data_dir,
            entries,
            writers,
        }) => rt.block_on(oneshot::fill(database, data_dir, *entries, *writers)),
        Some(Internal::SweepSeed {
            database,
            data_dir,
            records,
        }) => rt.block_on(oneshot::prepare_sweep(database, data_dir, *records)),
        Some(Internal::ServeWithoutAudit) => {
            log_to_stderr();
            rt.block_on(aids::serve_without_audit())
        }
        Some(Internal::RotateSeed { keys, channel }) => {
            log_to_stderr();
            rt.block_on(aids::rotate_seed(*keys, channel))
        }
        None => rt.block_on(run(args)),
    }
}

/// Logs to stderr, filtered by `ARKKU_LOG` like `arkku`.
fn log_to_stderr() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ARKKU_LOG"))
        .with_writer(std::io::stderr)
        .init();
}

/// The `arkku` binary next to this one.
fn arkku_bin() -> anyhow::Result<PathBuf> {
    let bin = std::env::current_exe()?.with_file_name("arkku");
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build the arkku binary too",
        bin.display()
    );
    Ok(bin)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let work = WorkDir::new()?;
    let mut dbs = Databases::new(&args, work.path()).await?;
    let result = bench(&args, &mut dbs, &work.path().join("data")).await;
    dbs.drop_all().await;
    result
}

async fn bench(args: &Args, dbs: &mut Databases, data: &Path) -> anyhow::Result<()> {
    let mut scenarios = args.scenarios.clone();
    let mut seen = Vec::new();
    scenarios.retain(|s| {
        let first = !seen.contains(s);
        seen.push(*s);
        first
    });
    let mut served: Option<served::Served> = None;
    let mut filled: Option<oneshot::Filled> = None;
    let mut rows = Vec::new();
    for scenario in scenarios {
        if scenario.served() {
            let s = match served.take() {
                Some(s) => s,
                None => {
                    let s = served::Served::start(args, &dbs.create("main").await?, data).await?;
                    rows.extend(s.backfill.clone());
                    s
                }
            };
            rows.extend(s.run(scenario, args).await?);
            served = Some(s);
            continue;
        }
        if scenario == Scenario::RetentionSweep {
            let url = dbs.create("sweep").await?;
            rows.push(oneshot::retention_sweep(args, &url, data).await?);
            dbs.retire("sweep").await;
            continue;
        }
        let f = match filled.take() {
            Some(f) => f,
            None => oneshot::audit_append(args, &dbs.create("audit").await?, data).await?,
        };
        rows.push(match scenario {
            Scenario::AuditAppend => f.row.clone(),
            _ => oneshot::audit_verify(args, &f, data).await?,
        });
        filled = Some(f);
    }
    if let Some(s) = served.as_ref().filter(|_| args.online_backfill) {
        rows.push(s.online_backfill(args).await?);
    }
    drop(served);
    print_table(&rows);
    if let Some(path) = &args.json {
        let report = json!({"machine": machine(), "customers": args.customers, "seconds": args.seconds,
                            "concurrency": args.concurrency, "export_interactions": args.export_interactions,
                            "sweep_records": args.sweep_records, "audit_entries": args.audit_entries,
                            "audit_writers": args.audit_writers, "online_backfill": args.online_backfill,
                            "scenarios": rows});
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn row(
    name: &'static str,
    backend: &'static str,
    o: &Outcome,
    base: Option<&Outcome>,
    rss_mb: f64,
) -> Row {
    let baseline_throughput = base.map(Outcome::throughput);
    let q = |q| (!o.latencies_us.is_empty()).then(|| o.quantile_ms(q));
    Row {
        name,
        backend,
        throughput: o.throughput(),
        p50_ms: q(0.5),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        ratio: baseline_throughput.map(|b| o.throughput() / b.max(1e-9)),
        baseline_throughput,
        rss_mb,
        failed: o.failed + base.map_or(0, |b| b.failed),
        cpu_us_per_op: o.cpu_us_per_op(o.server_cpu_s),
        baseline_cpu_us_per_op: base.and_then(|b| b.cpu_us_per_op(b.server_cpu_s)),
        client_cpu_us_per_op: o.cpu_us_per_op(o.client_cpu_s),
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<18} {:<9} {:>11} {:>8} {:>8} {:>9} {:>11} {:>6} {:>8} {:>7} {:>7} {:>7} {:>7}",
        "scenario",
        "backend",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "baseline/s",
        "ratio",
        "rss MB",
        "failed",
        "cpu µs",
        "base µs",
        "load µs"
    );
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.2}"));
    let us = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.0}"));
    for r in rows {
        println!(
            "{:<18} {:<9} {:>11.0} {:>8} {:>8} {:>9} {:>11} {:>6} {:>8.1} {:>7} {:>7} {:>7} {:>7}",
            r.name,
            r.backend,
            r.throughput,
            ms(r.p50_ms),
            ms(r.p99_ms),
            ms(r.p999_ms),
            r.baseline_throughput
                .map_or("-".into(), |b| format!("{b:.0}")),
            r.ratio.map_or("-".into(), |x| format!("{x:.2}")),
            r.rss_mb,
            r.failed,
            us(r.cpu_us_per_op),
            us(r.baseline_cpu_us_per_op),
            us(r.client_cpu_us_per_op)
        );
    }
}

/// What machine the figures come from.
fn machine() -> serde_json::Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo.lines().find_map(|l| {
        l.strip_prefix("model name")
            .and_then(|v| v.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
    });
    let mem_kb = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    json!({
        "cpus": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        "cpu_model": model,
        "memory_mb": mem_kb.map(|k| k / 1024),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "arkku_version": env!("CARGO_PKG_VERSION"),
    })
}
