//! `arkku-bench`: the cost of privacy, measured. Seeds N customers, starts
//! `arkku serve` and a plaintext baseline on the same database engine, drives
//! each over loopback with a closed-loop client, and reports throughput,
//! latency percentiles, the arkku/baseline ratio and the servers' peak RSS as
//! a table and as JSON (DESIGN.md §10).
//!
//! cargo run --release --bin arkku-bench -- --customers 100000 --seconds 20 --json bench.json

mod baseline;
mod load;
mod seed;

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use hyper::{body::Bytes, Method};
use serde::Serialize;
use serde_json::json;

use arkku::{
    config::Config,
    domain::{ChannelId, Role},
    token::{self, TokenRequest},
};
use load::{Call, MakeCall, Outcome};

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
    /// Seconds per scenario and server.
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Concurrent connections of the closed-loop client.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Database engine.
    #[arg(long, value_enum, default_value_t = Engine::Sqlite)]
    database: Engine,
    /// PostgreSQL server to create the benchmark database on.
    #[arg(
        long,
        env = "ARKKU_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/test"
    )]
    postgres: String,
    /// Scenarios to run, comma separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "lookup,profile_read,consent_grant"
    )]
    scenarios: Vec<Scenario>,
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
        listen: SocketAddr,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Engine {
    Sqlite,
    Postgres,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Scenario {
    /// POST /v1/lookup by phone number.
    Lookup,
    /// GET /v1/customers/{id}: four channels, masked, durable audit.
    #[value(name = "profile_read")]
    ProfileRead,
    /// POST /v1/customers/{id}/consents: a ledger entry and a durable audit entry.
    #[value(name = "consent_grant")]
    ConsentGrant,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Lookup => "lookup",
            Scenario::ProfileRead => "profile_read",
            Scenario::ConsentGrant => "consent_grant",
        }
    }
}

/// One line of the report (the JSON shape of DESIGN.md §10 / issue 6).
#[derive(Serialize)]
struct Row {
    name: &'static str,
    backend: &'static str,
    throughput: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    baseline_throughput: Option<f64>,
    ratio: Option<f64>,
    rss_mb: f64,
    failed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if let Some(Internal::Baseline { database, listen }) = &args.command {
        return rt.block_on(baseline::run(database, *listen));
    }
    rt.block_on(run(args))
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// A private working directory, removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("arkku-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(WorkDir(dir))
    }
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child server killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Peak resident memory so far (VmHWM), in MiB.
    fn peak_rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    }

    async fn wait_up(&mut self, what: &str) -> anyhow::Result<()> {
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!("{what} exited at start: {status}");
            }
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("{what} did not start listening on {}", self.addr)
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let work = WorkDir::new()?;
    let data = work.path().join("data");
    let (backend, url, pg_db) = match args.database {
        Engine::Sqlite => (
            "sqlite",
            format!("sqlite://{}", work.path().join("arkku.db").display()),
            None,
        ),
        Engine::Postgres => {
            let name = format!("arkku_bench_{}", std::process::id());
            let admin = arkku::store::Db::connect(&args.postgres).await?;
            arkku::on_db!(&admin, pool => sqlx::query(&format!("CREATE DATABASE {name}")).execute(pool).await.map(drop))?;
            let base = args
                .postgres
                .rsplit_once('/')
                .map_or(args.postgres.as_str(), |(b, _)| b);
            ("postgres", format!("{base}/{name}"), Some((admin, name)))
        }
    };
    let result = bench(&args, backend, &url, &data).await;
    if let Some((admin, name)) = pg_db {
        let _ = arkku::on_db!(&admin, pool => sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(pool).await.map(drop));
    }
    result
}

async fn bench(
    args: &Args,
    backend: &'static str,
    url: &str,
    data: &std::path::Path,
) -> anyhow::Result<()> {
    let config = Config::for_data_dir(data.to_owned(), url.to_owned());
    let state = arkku::app::open(config.clone())
        .await
        .context("opening the vault to seed it")?;
    let ids = seed::seed(&state, args.customers.max(1))
        .await
        .context("seeding")?;
    state.db.close().await;
    drop(state);

    let exe = std::env::current_exe()?;
    let arkku_bin = exe.with_file_name("arkku");
    anyhow::ensure!(
        arkku_bin.exists(),
        "{} not found: build the arkku binary too",
        arkku_bin.display()
    );
    let addr = free_addr()?;
    let mut arkku = Server {
        child: Command::new(&arkku_bin)
            .arg("serve")
            .env("ARKKU_DATA_DIR", data)
            .env("ARKKU_DATABASE_URL", url)
            .env("ARKKU_LISTEN", addr.to_string())
            .env("ARKKU_RETENTION_INTERVAL", "off")
            .env("ARKKU_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?,
        addr,
    };
    arkku.wait_up("arkku serve").await?;
    let addr = free_addr()?;
    let mut plain = Server {
        child: Command::new(&exe)
            .args(["baseline", "--database", url, "--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .spawn()?,
        addr,
    };
    plain.wait_up("the baseline").await?;

    let issuer = arkku::app::key_file(&config.issuer_key_file, false, "issuer")?;
    let support = ["support".to_owned()];
    let phone = ChannelId::parse("phone")?;
    let tok = |role, channel: Option<&ChannelId>| -> anyhow::Result<Arc<str>> {
        Ok(Arc::from(token::issue(
            &issuer,
            arkku::config::LOCAL_ISSUER,
            arkku::config::AUDIENCE,
            &TokenRequest {
                role,
                sub: "bench",
                purposes: &support,
                channel,
                ttl: Duration::from_secs(7200),
            },
        )?))
    };
    let agent = tok(Role::Agent, Some(&phone))?;
    let ids: Arc<Vec<String>> = Arc::new(ids.iter().map(|u| u.to_string()).collect());
    let n = ids.len() as u64;

    let mut rows = Vec::new();
    for scenario in &args.scenarios {
        let (mine, theirs): (MakeCall, Option<MakeCall>) = match scenario {
            Scenario::Lookup => {
                let a = Arc::clone(&agent);
                (
                    Arc::new(move |r| {
                        let body = json!({"channel": "phone", "value": seed::phone((r % n) as usize), "purpose": "support"});
                        Call {
                            method: Method::POST,
                            path: "/v1/lookup".into(),
                            token: Some(Arc::clone(&a)),
                            body: Some(Bytes::from(body.to_string())),
                        }
                    }),
                    Some(Arc::new(move |r| {
                        let body =
                            json!({"channel": "phone", "value": seed::phone((r % n) as usize)});
                        Call {
                            method: Method::POST,
                            path: "/lookup".into(),
                            token: None,
                            body: Some(Bytes::from(body.to_string())),
                        }
                    })),
                )
            }
            Scenario::ProfileRead => {
                let (a, i1, i2) = (Arc::clone(&agent), Arc::clone(&ids), Arc::clone(&ids));
                (
                    Arc::new(move |r| Call {
                        method: Method::GET,
                        path: format!("/v1/customers/{}?purpose=support", i1[(r % n) as usize]),
                        token: Some(Arc::clone(&a)),
                        body: None,
                    }),
                    Some(Arc::new(move |r| Call {
                        method: Method::GET,
                        path: format!("/customers/{}", i2[(r % n) as usize]),
                        token: None,
                        body: None,
                    })),
                )
            }
            Scenario::ConsentGrant => {
                let (a, i1) = (Arc::clone(&agent), Arc::clone(&ids));
                let body = Bytes::from(
                    json!({"purpose": "marketing", "channel": "email", "action": "grant", "method": "spoken",
                           "evidence": {"notice_id": "bench", "notice_version": "1"}})
                    .to_string(),
                );
                (
                    Arc::new(move |r| Call {
                        method: Method::POST,
                        path: format!("/v1/customers/{}/consents", i1[(r % n) as usize]),
                        token: Some(Arc::clone(&a)),
                        body: Some(body.clone()),
                    }),
                    None,
                )
            }
        };
        check(*scenario, arkku.addr, mine(1)).await?;
        eprintln!(
            "{}: arkku, {} connections, {} s …",
            scenario.name(),
            args.concurrency,
            args.seconds
        );
        let ours = load::drive(arkku.addr, args.concurrency, args.seconds, mine).await?;
        let base = match theirs {
            Some(make) => {
                eprintln!("{}: baseline …", scenario.name());
                Some(load::drive(plain.addr, args.concurrency, args.seconds, make).await?)
            }
            None => None,
        };
        rows.push(row(
            scenario.name(),
            backend,
            &ours,
            base.as_ref(),
            arkku.peak_rss_mb(),
        ));
    }
    print_table(&rows);
    if let Some(path) = &args.json {
        let report = json!({"machine": machine(), "customers": args.customers, "seconds": args.seconds,
                            "concurrency": args.concurrency, "scenarios": rows});
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    drop(plain);
    drop(arkku);
    Ok(())
}

/// Sends one call of a scenario and checks that the answer is what the
/// scenario claims to measure (a profile with four masked channels, a lookup
/// match, a consent receipt), so a figure never measures an error path.
async fn check(scenario: Scenario, addr: SocketAddr, call: Call) -> anyhow::Result<()> {
    let (status, body) = load::fetch(addr, call).await?;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let ok = match scenario {
        Scenario::Lookup => status == 200 && v["matches"].as_array().is_some_and(|m| m.len() == 1),
        Scenario::ProfileRead => {
            status == 200
                && v["contacts"]
                    .as_array()
                    .is_some_and(|c| c.len() == 4 && c.iter().all(|c| c["masked"] == true))
        }
        Scenario::ConsentGrant => status == 201 && v["consent_id"].is_string(),
    };
    anyhow::ensure!(
        ok,
        "{} does not answer as expected: {status} {v}",
        scenario.name()
    );
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
    Row {
        name,
        backend,
        throughput: o.throughput(),
        p50_ms: o.quantile_ms(0.5),
        p99_ms: o.quantile_ms(0.99),
        p999_ms: o.quantile_ms(0.999),
        ratio: baseline_throughput.map(|b| o.throughput() / b.max(1e-9)),
        baseline_throughput,
        rss_mb,
        failed: o.failed + base.map_or(0, |b| b.failed),
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<14} {:<9} {:>11} {:>8} {:>8} {:>9} {:>11} {:>6} {:>8} {:>7}",
        "scenario",
        "backend",
        "ops/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "baseline/s",
        "ratio",
        "rss MB",
        "failed"
    );
    for r in rows {
        println!(
            "{:<14} {:<9} {:>11.0} {:>8.2} {:>8.2} {:>9.2} {:>11} {:>6} {:>8.1} {:>7}",
            r.name,
            r.backend,
            r.throughput,
            r.p50_ms,
            r.p99_ms,
            r.p999_ms,
            r.baseline_throughput
                .map_or("-".into(), |b| format!("{b:.0}")),
            r.ratio.map_or("-".into(), |x| format!("{x:.2}")),
            r.rss_mb,
            r.failed
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
