//! The one-shot scenarios, each on a database of its own so that a million
//! expired records or audit entries neither disturb the served figures nor
//! are disturbed by them:
//!
//! - `retention_sweep`: R expired contact points on R/4 customers, seeded by
//!   bulk SQL (random bytes: the sweeper never opens a value), then one
//!   `arkku retention run`; purged records per second.
//! - `audit_append`: A entries appended by W concurrent tasks
//!   through the real group-commit writer, in a child process (this
//!   harness's hidden `audit-fill`); durable appends per second.
//! - `audit_verify`: `arkku audit verify` over that log; entries per second.
//!
//! Each is a real process whose peak RSS is read while it runs. Throughput
//! is the work divided by the time the process reports for the work itself
//! (without process start-up and migrations, a few tens of milliseconds);
//! the latency fields are null, there being one operation.

use std::{
    io::Write,
    path::Path,
    process::Command,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use serde_json::{json, Value};

use arkku::{
    audit::{Action, ActorRef, Auditor, Decision, Entry},
    config::Config,
    store::Db,
};

use crate::{
    procs::{run_to_end, Finished},
    Args, Row,
};

/// Customers per seeding transaction of `retention_sweep` (four records each).
const SWEEP_CHUNK: usize = 25_000;

/// Runs an `arkku` subcommand on `url` and the shared data directory.
async fn arkku(args: &[&str], url: &str, data: &Path) -> anyhow::Result<Finished> {
    run_to_end(
        Command::new(crate::arkku_bin()?)
            .args(args)
            .env("ARKKU_DATA_DIR", data)
            .env("ARKKU_DATABASE_URL", url)
            .env("ARKKU_LOG", "warn"),
        &format!("arkku {}", args.join(" ")),
    )
    .await
}

fn report(done: &Finished, what: &str) -> anyhow::Result<Value> {
    serde_json::from_str(&done.stdout)
        .with_context(|| format!("{what} did not print its JSON report: {}", done.stdout))
}

fn count(v: &Value, key: &str, what: &str) -> anyhow::Result<u64> {
    v[key]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("{what} reported no {key}: {v}"))
}

/// `retention_sweep`: seeds, then sweeps once.
pub async fn retention_sweep(args: &Args, url: &str, data: &Path) -> anyhow::Result<Row> {
    let customers = prepare(url, data, args.sweep_records).await?;

    eprintln!("retention_sweep: arkku retention run …");
    let done = arkku(&["retention", "run"], url, data).await?;
    let r = report(&done, "arkku retention run")?;
    let purged = count(&r, "purged", "arkku retention run")?;
    let seeded = customers as u64 * 4;
    anyhow::ensure!(
        purged == seeded,
        "the sweep purged {purged} of {seeded} expired contact points: {r}"
    );
    // The sweep's own clock, part by part (milliseconds).
    let ms: u64 = r["elapsed_ms"]
        .as_object()
        .map(|parts| parts.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0);
    let secs = (ms as f64 / 1000.0).max(1e-3);
    eprintln!(
        "retention_sweep: {purged} records in {secs:.2} s ({:.2} s with start-up)",
        done.wall.as_secs_f64()
    );
    Ok(Row::one_shot(
        "retention_sweep",
        args.database.name(),
        purged as f64 / secs,
        done.peak_rss_mb,
    ))
}

/// Seeds a vault at `url` and `data` with `records` expired contact points
/// (four per customer); returns how many customers.
async fn prepare(url: &str, data: &Path, records: usize) -> anyhow::Result<usize> {
    let config = Config::for_data_dir(data.to_owned(), url.to_owned());
    let db = arkku::app::database(&config).await?;
    let policies = config.load_policies()?;
    // The channel keys the seeded data keys name, and the key `retention run`
    // signs checkpoints with.
    let root = arkku::app::key_file(&config.root_key_file, true, arkku::app::KeyFile::Root)?;
    arkku::app::keyring(&db, &config, root, &policies).await?;
    arkku::app::checkpointer(&config)?;
    let customers = records.max(1).div_ceil(4);
    seed_expired(&db, customers).await?;
    db.close().await;
    Ok(customers)
}

/// `arkku-bench sweep-seed`: [`prepare`] alone, to profile the sweep on copies.
pub async fn prepare_sweep(url: &str, data: &Path, records: usize) -> anyhow::Result<()> {
    let customers = prepare(url, data, records).await?;
    println!("{}", serde_json::json!({ "customers": customers }));
    Ok(())
}

/// Bulk SQL: `customers` customers with four expired contact points and four
/// data keys each, a transaction per chunk. A chunk's customers carry its
/// number as `created_at` (a microsecond of 1970, long expired), which is how
/// the chunk's contact points and keys find them without an index.
async fn seed_expired(db: &Db, customers: usize) -> anyhow::Result<()> {
    let channels = "(SELECT 'email' AS ch UNION ALL SELECT 'phone' UNION ALL SELECT 'sms' UNION ALL SELECT 'chat') chs";
    let sqlite = matches!(db, Db::Sqlite(..));
    let bytes = |n: usize| {
        if sqlite {
            format!("randomblob({n})")
        } else {
            format!("substr(decode(md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex'), 1, {n})")
        }
    };
    // A UUIDv7-shaped id from an SQL ordinal: 48 bits of "milliseconds"
    // (an epoch in 2023 plus the ordinal, so ids sort in creation order),
    // the version nibble, and random bits.
    let v7 = |ordinal: &str| {
        if sqlite {
            format!("unhex(printf('%012x', 1672531200000 + {ordinal}) || '7' || substr(hex(randomblob(10)), 1, 19))")
        } else {
            format!("(lpad(to_hex(1672531200000 + {ordinal}), 12, '0') || '7' || substr(md5(random()::text), 1, 19))::uuid")
        }
    };
    let started = Instant::now();
    let (mut done, mut chunk) = (0, 0);
    while done < customers {
        let k = SWEEP_CHUNK.min(customers - done);
        let new_customers = if sqlite {
            format!(
                "INSERT INTO customers (id, created_at, updated_at) \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {k}) \
                 SELECT {}, {chunk}, 0 FROM n",
                v7(&format!("{done} + i"))
            )
        } else {
            format!(
                "INSERT INTO customers (id, created_at, updated_at) \
                 SELECT {}, {chunk}, 0 FROM generate_series(1, {k}) i",
                v7(&format!("{done} + i"))
            )
        };
        // Ids ordered as they are created, as arkku's own (UUIDv7) are.
        let id = v7(&format!(
            "{} + row_number() OVER (ORDER BY c.id, chs.ch)",
            done * 4
        ));
        let statements = [
            new_customers,
            format!(
                "INSERT INTO contacts (id, customer_id, channel, blind_index, value, created_at, last_activity_at) \
                 SELECT {id}, c.id, chs.ch, {}, {}, 0, 0 FROM customers c, {channels} WHERE c.created_at = {chunk} ORDER BY c.id, chs.ch",
                bytes(32),
                bytes(48)
            ),
            format!(
                "INSERT INTO data_keys (customer_id, channel, key_version, wrapped, created_at) \
                 SELECT c.id, chs.ch, 1, {}, 0 FROM customers c, {channels} WHERE c.created_at = {chunk} ORDER BY c.id, chs.ch",
                bytes(60)
            ),
        ];
        arkku::on_db!(db, pool => {
            let mut tx = pool.begin().await?;
            for sql in &statements {
                sqlx::query(sql).execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        done += k;
        chunk += 1;
        eprint!(
            "\rretention_sweep: seeding {}/{} expired contact points ({:.0}/s)",
            done * 4,
            customers * 4,
            (done * 4) as f64 / started.elapsed().as_secs_f64().max(1e-9)
        );
        let _ = std::io::stderr().flush();
    }
    eprintln!();
    if let Db::Postgres(pool) = db {
        sqlx::query("ANALYZE").execute(pool).await?;
    }
    Ok(())
}

/// The filled audit log `audit_verify` checks, and the `audit_append` row.
pub struct Filled {
    pub url: String,
    pub entries: u64,
    pub row: Row,
}

/// `audit_append`: fills the log at `url` in a child process.
pub async fn audit_append(args: &Args, url: &str, data: &Path) -> anyhow::Result<Filled> {
    let exe = std::env::current_exe()?;
    let entries = args.audit_entries.max(1).to_string();
    let writers = args.audit_writers.max(1).to_string();
    let done = run_to_end(
        Command::new(exe)
            .args(["audit-fill", "--database", url, "--data-dir"])
            .arg(data)
            .args(["--entries", &entries, "--writers", &writers]),
        "the audit fill",
    )
    .await?;
    let r = report(&done, "the audit fill")?;
    let appended = count(&r, "appended", "the audit fill")?;
    let secs = r["seconds"].as_f64().unwrap_or(0.0).max(1e-3);
    Ok(Filled {
        url: url.to_owned(),
        entries: appended,
        row: Row::one_shot(
            "audit_append",
            args.database.name(),
            appended as f64 / secs,
            done.peak_rss_mb,
        ),
    })
}

/// `audit_verify`: `arkku audit verify` over the filled log.
pub async fn audit_verify(args: &Args, filled: &Filled, data: &Path) -> anyhow::Result<Row> {
    eprintln!("audit_verify: arkku audit verify …");
    let done = arkku(&["audit", "verify"], &filled.url, data).await?;
    let r = report(&done, "arkku audit verify")?;
    let checked = count(&r, "entries_checked", "arkku audit verify")?;
    anyhow::ensure!(
        r["ok"] == true && checked == filled.entries,
        "audit verify checked {checked} of {} entries: {r}",
        filled.entries
    );
    let secs = (r["elapsed_ms"].as_f64().unwrap_or(0.0) / 1000.0).max(1e-3);
    Ok(Row::one_shot(
        "audit_verify",
        args.database.name(),
        checked as f64 / secs,
        done.peak_rss_mb,
    ))
}

/// `arkku-bench audit-fill`: appends `entries` entries from `writers`
/// concurrent tasks through the real group-commit writer, shows progress on
/// stderr, and prints `{"appended": n, "seconds": s}`.
pub async fn fill(
    database: &str,
    data: &Path,
    entries: usize,
    writers: usize,
) -> anyhow::Result<()> {
    let config = Config::for_data_dir(data.to_owned(), database.to_owned());
    let db = arkku::app::database(&config).await?;
    let checkpoints = Arc::new(arkku::app::checkpointer(&config)?);
    let auditor = Arc::new(Auditor::start(
        db,
        Duration::from_secs(30),
        config.audit_index_run,
        Some(checkpoints),
    ));
    let appended = Arc::new(AtomicU64::new(0));
    let writers = writers.max(1);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let (auditor, appended) = (Arc::clone(&auditor), Arc::clone(&appended));
        let n = entries / writers + usize::from(w < entries % writers);
        tasks.spawn(async move {
            for i in 0..n {
                auditor
                    .append(Entry {
                        actor: ActorRef {
                            sub: format!("agent-{w}"),
                            role: "agent".into(),
                            client: None,
                        },
                        action: Action::CustomerRead,
                        customer_id: Some(uuid::Uuid::now_v7()),
                        channel: Some("phone".into()),
                        purpose: Some("support".into()),
                        decision: Decision::Allow,
                        reason: None,
                        request_id: uuid::Uuid::now_v7().to_string(),
                        detail: json!({"released": ["phone"], "withheld": [], "n": i}),
                    })
                    .await?;
                appended.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<_, arkku::audit::AuditError>(())
        });
    }
    let second = Duration::from_secs(1);
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + second, second);
    let progress = |done: u64| {
        eprint!(
            "\raudit_append: {done}/{entries} entries ({:.0}/s)",
            done as f64 / started.elapsed().as_secs_f64().max(1e-9)
        );
        let _ = std::io::stderr().flush();
    };
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(r) => r??,
                None => break,
            },
            _ = tick.tick() => progress(appended.load(Ordering::Relaxed)),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let appended = appended.load(Ordering::Relaxed);
    progress(appended);
    eprintln!();
    println!("{}", json!({"appended": appended, "seconds": seconds}));
    Ok(())
}
