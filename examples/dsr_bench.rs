//! Benchmarks of the data subject rights and lifecycle paths, on the real
//! code (HTTP stack, vault, store, durable audit):
//!
//! - `export [N]`: one customer with four contact points and N interactions
//!   (default 1 000), and a typical one (20 interactions); times
//!   `GET /v1/me/export` over HTTP and reports p50/p99 per customer.
//! - `sweep [N]`: N expired contact points (default 1 000 000) on N/4
//!   customers seeded with bulk SQL, then one retention sweep; reports purged
//!   records per second.
//!
//! The database is `ARKKU_DATABASE_URL` (an empty PostgreSQL database) or a
//! fresh SQLite file in a temporary directory.
//!
//! cargo run --release --example dsr_bench -- export 1000
//! cargo run --release --example dsr_bench -- sweep 1000000

use std::time::{Duration, Instant};

use arkku::{
    config::Config,
    domain::{ChannelId, Role},
    store::Db,
    token::{self, TokenRequest},
};
use serde_json::json;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "export".into());
    let n: Option<usize> = args.next().map(|s| s.parse()).transpose()?;
    let dir = tempfile::tempdir()?;
    let url = std::env::var("ARKKU_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("arkku.db").display()));
    let backend = if url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    let config = Config::for_data_dir(dir.path().join("data"), url);
    match what.as_str() {
        "export" => export(config, backend, n.unwrap_or(1000)).await,
        "sweep" => sweep(config, backend, n.unwrap_or(1_000_000)).await,
        other => anyhow::bail!("unknown benchmark {other:?} (export | sweep)"),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

async fn export(config: Config, backend: &str, interactions: usize) -> anyhow::Result<()> {
    let state = arkku::app::open(config.clone()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let serve_state = state.clone();
    tokio::spawn(async move {
        let _ = arkku::serve(listener, serve_state, std::future::pending()).await;
    });
    let issuer = arkku::app::key_file(&config.issuer_key_file, true, "issuer")?;
    let tok = |role, sub: &str, purposes: &[String], channel: Option<&ChannelId>| {
        token::issue(
            &issuer,
            arkku::config::LOCAL_ISSUER,
            arkku::config::AUDIENCE,
            &TokenRequest {
                role,
                sub,
                purposes,
                channel,
                ttl: Duration::from_secs(3600),
            },
        )
    };
    let support = ["support".to_owned()];
    let service = tok(Role::Service, "bench", &support, None)?;
    let client = reqwest::Client::new();
    for (label, count) in [("typical (20 interactions)", 20), ("large", interactions)] {
        let r: serde_json::Value = client
            .post(format!("{base}/v1/customers"))
            .bearer_auth(&service)
            .json(&json!({"display_name": "Bench", "contacts": [
                {"channel": "phone", "value": "040 123 4567"},
                {"channel": "email", "value": "bench@example.com"},
                {"channel": "sms", "value": "050 765 4321"},
                {"channel": "chat", "value": "visitor-1"}]}))
            .send()
            .await?
            .json()
            .await?;
        let id = r["id"].as_str().unwrap_or_default().to_owned();
        let channels = ["phone", "email", "sms", "chat"];
        let agents: Vec<String> = channels
            .iter()
            .map(|c| {
                let ch = ChannelId::parse(c).expect("channel");
                tok(Role::Agent, "bench-agent", &support, Some(&ch))
            })
            .collect::<Result<_, _>>()?;
        for i in 0..count {
            let c = i % channels.len();
            let status = client
                .post(format!("{base}/v1/customers/{id}/interactions"))
                .bearer_auth(&agents[c])
                .json(&json!({"channel": channels[c], "kind": "complaint",
                              "body": format!("Interaction {i}: the parcel was late and the customer asked for a refund.")}))
                .send()
                .await?
                .status();
            anyhow::ensure!(status.as_u16() == 201, "seeding failed: {status}");
        }
        let me = tok(Role::Customer, &id, &[], None)?;
        let mut times = Vec::new();
        let mut bytes = 0;
        for _ in 0..60 {
            let started = Instant::now();
            let body = client
                .get(format!("{base}/v1/me/export"))
                .bearer_auth(&me)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            times.push(started.elapsed());
            bytes = body.len();
        }
        times.drain(..10); // warm-up
        times.sort();
        println!(
            "{backend} export, {label}: {count} interactions, {bytes} bytes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} runs)",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            percentile(&times, 1.0),
            times.len()
        );
    }
    Ok(())
}

/// Bulk SQL seeding of `customers` customers with four expired contact points
/// and four data keys each (values are random bytes: the sweeper never opens them).
async fn seed_expired(db: &Db, customers: usize) -> anyhow::Result<()> {
    let channels = "(SELECT 'email' AS ch UNION ALL SELECT 'phone' UNION ALL SELECT 'sms' UNION ALL SELECT 'chat') chs";
    match db {
        Db::Sqlite(pool, _) => {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!(
                "INSERT INTO customers (id, created_at, updated_at) \
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {customers}) \
                 SELECT randomblob(16), 0, 0 FROM n"
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "INSERT INTO contacts (id, customer_id, channel, blind_index, value, created_at, last_activity_at) \
                 SELECT randomblob(16), c.id, chs.ch, randomblob(32), randomblob(48), 0, 0 FROM customers c, {channels}"
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "INSERT INTO data_keys (customer_id, channel, key_version, wrapped, created_at) \
                 SELECT c.id, chs.ch, 1, randomblob(60), 0 FROM customers c, {channels}"
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!(
                "INSERT INTO customers (id, created_at, updated_at) \
                 SELECT gen_random_uuid(), 0, 0 FROM generate_series(1, {customers})"
            ))
            .execute(&mut *tx)
            .await?;
            let bytes = |n: usize| {
                format!("substr(decode(md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex'), 1, {n})")
            };
            sqlx::query(&format!(
                "INSERT INTO contacts (id, customer_id, channel, blind_index, value, created_at, last_activity_at) \
                 SELECT gen_random_uuid(), c.id, chs.ch, {}, {}, 0, 0 FROM customers c, {channels}",
                bytes(32),
                bytes(48)
            ))
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!(
                "INSERT INTO data_keys (customer_id, channel, key_version, wrapped, created_at) \
                 SELECT c.id, chs.ch, 1, {}, 0 FROM customers c, {channels}",
                bytes(60)
            ))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            sqlx::query("ANALYZE").execute(pool).await?;
        }
    }
    Ok(())
}

async fn sweep(config: Config, backend: &str, records: usize) -> anyhow::Result<()> {
    let db = arkku::app::database(&config).await?;
    let policies = config.load_policies()?;
    // The channel keys the seeded data keys name (a data key must name one).
    let root = arkku::app::key_file(&config.root_key_file, true, "root")?;
    arkku::app::keyring(&db, &config, root, &policies).await?;
    let customers = records.div_ceil(4);
    let started = Instant::now();
    seed_expired(&db, customers).await?;
    eprintln!(
        "seeded {} expired contact points on {customers} customers in {:.1} s",
        customers * 4,
        started.elapsed().as_secs_f64()
    );
    let checkpoints = std::sync::Arc::new(arkku::app::checkpointer(&config)?);
    let audit =
        arkku::audit::Auditor::start(db.clone(), Duration::from_secs(30), Some(checkpoints));
    let started = Instant::now();
    let report = arkku::retention::Sweep {
        db: &db,
        policies: &policies,
        audit: &audit,
        now: time::OffsetDateTime::now_utc(),
        dry_run: false,
        batch: std::env::var("SWEEP_BATCH")
            .ok()
            .and_then(|b| b.parse().ok())
            .unwrap_or(arkku::retention::DEFAULT_BATCH),
    }
    .run()
    .await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{backend} retention sweep: purged {} contact points and erased {} customers in {secs:.2} s: \
         {:.0} records/s ({:.0} with the customers counted as records), {} audited batches",
        report.purged,
        report.customers,
        report.purged as f64 / secs,
        (report.purged + report.customers) as f64 / secs,
        report.batches
    );
    println!("time per part (ms): {:?}", report.elapsed_ms);
    Ok(())
}
