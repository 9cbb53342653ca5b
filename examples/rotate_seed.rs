//! Benchmark aid for key rotation: seeds N customers with one data key each
//! in one channel (default `phone`), straight through the store and the
//! keyring in bulk inserts (no HTTP), so that `arkku keys rotate --channel`
//! can be timed on them. Uses the same ARKKU_* variables as `arkku`.
//!
//! cargo run --release --example rotate_seed -- 100000 phone
//! (then: arkku keys rotate --channel phone; see bench/rotate.sh)

use std::time::Instant;

use anyhow::Context;
use arkku::{app, config::Config, store};
use uuid::Uuid;

/// Rows per INSERT statement (5 columns: well under SQLite's variable limit).
const CHUNK: usize = 1000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("ARKKU_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let mut args = std::env::args().skip(1);
    let total: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(100_000);
    let channel = args.next().unwrap_or_else(|| "phone".to_owned());
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let data_dir = std::path::PathBuf::from(env("ARKKU_DATA_DIR", "./arkku-data"));
    let url = env(
        "ARKKU_DATABASE_URL",
        &format!("sqlite://{}", data_dir.join("arkku.db").display()),
    );
    let config = Config::for_data_dir(data_dir, url);
    let policies = config.load_policies()?;
    let root = app::key_file(&config.root_key_file, true, app::KeyFile::Root)?;
    let db = app::database(&config).await.context("database")?;
    let keyring = app::keyring(&db, &config, root, &policies).await?;

    let started = Instant::now();
    let now = store::to_micros(time::OffsetDateTime::now_utc());
    let mut done = 0;
    while done < total {
        let n = CHUNK.min(total - done);
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            let id = Uuid::now_v7();
            let (_, wrapped) = keyring.new_data_key(&db, id, &channel).await?;
            rows.push((id, wrapped));
        }
        arkku::on_db!(&db, pool => {
            let mut tx = pool.begin().await?;
            let mut customers =
                sqlx::QueryBuilder::new("INSERT INTO customers (id, created_at, updated_at) ");
            customers.push_values(&rows, |mut b, (id, _)| {
                b.push_bind(*id).push_bind(now).push_bind(now);
            });
            customers.build().execute(&mut *tx).await?;
            let mut keys = sqlx::QueryBuilder::new(
                "INSERT INTO data_keys (customer_id, channel, key_version, wrapped, created_at) ",
            );
            keys.push_values(&rows, |mut b, (id, w)| {
                b.push_bind(*id)
                    .push_bind(w.channel.as_str())
                    .push_bind(i64::from(w.key_version))
                    .push_bind(w.wrapped.as_slice())
                    .push_bind(now);
            });
            keys.build().execute(&mut *tx).await?;
            tx.commit().await?;
        });
        done += n;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "seeded {total} customers with a {channel} data key in {secs:.2} s ({:.0}/s) on {}",
        total as f64 / secs,
        db.backend()
    );
    Ok(())
}
