//! Benchmark aid, not a product: serves the same API with an auditor that
//! writes nothing, so one run can compare profile reads with the audit log on
//! (`arkku serve`) and off. Configured by the same ARKKU_* variables.
//!
//! cargo run --release --example serve_without_audit

use arkku::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_owned());
    let data_dir = std::path::PathBuf::from(env("ARKKU_DATA_DIR", "./arkku-data"));
    let url = env(
        "ARKKU_DATABASE_URL",
        &format!("sqlite://{}", data_dir.join("arkku.db").display()),
    );
    let mut config = Config::for_data_dir(data_dir, url);
    config.listen = env("ARKKU_LISTEN", "127.0.0.1:8081").parse()?;
    if let Ok(dir) = std::env::var("ARKKU_POLICIES") {
        config.policies = arkku::config::PolicySource::Dir(dir.into());
    }
    let listen = config.listen;
    let state = arkku::app::open_without_audit_for_benchmarks(config).await?;
    let listener = tokio::net::TcpListener::bind(listen).await?;
    eprintln!("serving WITHOUT the audit log (benchmark only) on {listen}");
    arkku::serve(listener, state, std::future::pending()).await?;
    Ok(())
}
