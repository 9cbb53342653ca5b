//! Aids for the shell benchmarks in `bench/`, which time `arkku` with tools
//! of their own (wrk, the `arkku` CLI):
//!
//! - `arkku-bench serve-without-audit`: the same API with an auditor that
//!   writes nothing, so that `bench/audit_cost.sh` compares profile reads
//!   with the audit log on (`arkku serve`) and off;
//! - `arkku-bench rotate-seed N CHANNEL`: N customers with one data key each
//!   in one channel, straight through the store and the keyring in bulk
//!   inserts, so that `bench/rotate.sh` can time `arkku keys rotate`.
//!
//! Both are configured by the same `ARKKU_*` variables as `arkku`.

use std::{path::PathBuf, time::Instant};

use anyhow::Context;
use arkku::{app, config::Config};
use uuid::Uuid;

/// Rows per INSERT statement of `rotate-seed` (5 columns: well under
/// SQLite's variable limit).
const CHUNK: usize = 1000;

/// The configuration `arkku` would use for `ARKKU_DATA_DIR`,
/// `ARKKU_DATABASE_URL` and `ARKKU_POLICIES`, with their defaults.
fn config_from_env() -> Config {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let data_dir = PathBuf::from(env("ARKKU_DATA_DIR", "./arkku-data"));
    let url = env(
        "ARKKU_DATABASE_URL",
        &format!("sqlite://{}", data_dir.join("arkku.db").display()),
    );
    let mut config = Config::for_data_dir(data_dir, url);
    if let Ok(dir) = std::env::var("ARKKU_POLICIES") {
        config.policies = arkku::config::PolicySource::Dir(dir.into());
    }
    config
}

/// Serves the API without the audit log on `ARKKU_LISTEN` (default
/// 127.0.0.1:8081) until killed.
pub async fn serve_without_audit() -> anyhow::Result<()> {
    let mut config = config_from_env();
    config.listen = std::env::var("ARKKU_LISTEN")
        .unwrap_or_else(|_| "127.0.0.1:8081".to_owned())
        .parse()
        .context("ARKKU_LISTEN")?;
    let listen = config.listen;
    let state = arkku::bench::open_without_audit(config).await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("serving WITHOUT the audit log (benchmark only) on {listen}");
    arkku::serve(listener, state, std::future::pending()).await?;
    Ok(())
}

/// Seeds `total` customers with a data key in `channel` each.
pub async fn rotate_seed(total: usize, channel: &str) -> anyhow::Result<()> {
    let config = config_from_env();
    let policies = config.load_policies()?;
    let root = app::key_file(&config.root_key_file, true, app::KeyFile::Root)?;
    let db = app::database(&config).await.context("database")?;
    let keyring = app::keyring(&db, &config, root, &policies).await?;

    let started = Instant::now();
    let now = arkku::store::to_micros(time::OffsetDateTime::now_utc());
    let mut done = 0;
    while done < total {
        let n = CHUNK.min(total - done);
        let mut rows = Vec::with_capacity(n);
        for _ in 0..n {
            let id = Uuid::now_v7();
            let (_, wrapped) = keyring.new_data_key(&db, id, channel).await?;
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
