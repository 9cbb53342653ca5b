//! Benchmark aid: appends N entries through the real group-commit writer and
//! reports appends per second; the filled log is then what `arkku audit
//! verify` is timed on. Uses the same ARKKU_* variables as `arkku`.
//!
//! cargo run --release --example audit_fill -- 1000000 64

use std::{sync::Arc, time::Instant};

use arkku::{
    audit::{Action, ActorRef, Auditor, Decision, Entry},
    config::Config,
};

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
        .unwrap_or(1_000_000);
    let writers: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(64);
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let data_dir = std::path::PathBuf::from(env("ARKKU_DATA_DIR", "./arkku-data"));
    let url = env(
        "ARKKU_DATABASE_URL",
        &format!("sqlite://{}", data_dir.join("arkku.db").display()),
    );
    let config = Config::for_data_dir(data_dir, url);
    let db = arkku::app::database(&config).await?;
    let checkpoints = Arc::new(arkku::app::checkpointer(&config)?);
    let auditor = Arc::new(Auditor::start(
        db,
        std::time::Duration::from_secs(30),
        Some(checkpoints),
    ));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..writers {
        let auditor = Arc::clone(&auditor);
        let n = total / writers + usize::from(w < total % writers);
        tasks.spawn(async move {
            for i in 0..n {
                let entry = Entry {
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
                    detail: serde_json::json!({"released": ["phone"], "withheld": [], "n": i}),
                };
                auditor.append(entry).await?;
            }
            Ok::<_, arkku::audit::AuditError>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "appended {total} entries with {writers} concurrent writers in {secs:.2} s: {:.0} durable appends/s",
        total as f64 / secs
    );
    Ok(())
}
