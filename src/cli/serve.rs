//! `arkku serve` and `arkku migrate`: run the API, or only prepare its database.

use anyhow::Context;

use crate::{app, clock::Clock, config::Config};

/// `arkku serve`: starts the vault, its background tasks and the listener,
/// and serves until SIGINT or SIGTERM.
pub async fn serve(config: Config, clock: Clock) -> anyhow::Result<()> {
    let listen = config.listen;
    // Held until serve returns, so that `arkku restore` will not replace
    // the file meanwhile. Taken before the database is opened when its
    // directory exists; a vault that does not exist yet is locked once
    // start-up has created it (a refused start creates nothing).
    let db_file = crate::backup::sqlite_file(&config.database_url)
        .filter(|f| !f.as_os_str().is_empty() && f.to_str() != Some(":memory:"));
    let early = match &db_file {
        Some(f)
            if f.parent()
                .is_none_or(|d| d.as_os_str().is_empty() || d.is_dir()) =>
        {
            Some(crate::backup::lock::serving(f)?)
        }
        _ => None,
    };
    let backend = if config.database_url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let state = app::open_with_clock(config, clock)
        .await
        .context("starting arkku")?;
    let _lock = match (early, &db_file) {
        (Some(l), _) => Some(l),
        (None, Some(f)) => Some(crate::backup::lock::serving(f)?),
        (None, None) => None,
    };
    app::spawn_retention_sweeper(state.clone());
    app::spawn_chain_watch(&state);
    app::spawn_issuer_refresh(&state);
    app::spawn_notifier(&state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, backend, "arkku listening");
    crate::serve(listener, state, shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
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
}

/// `arkku migrate`: applies the migrations and exits.
pub async fn migrate(config: Config) -> anyhow::Result<()> {
    app::database(&config)
        .await
        .context("migrating the database")?;
    println!("migrations applied");
    Ok(())
}
