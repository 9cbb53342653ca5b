//! `arkku serve` and `arkku migrate`: run the API, or only prepare its database.

use anyhow::Context;

use crate::{app, clock::Clock, config::Config};

/// `arkku serve`: starts the vault, its background tasks and the listener,
/// and serves until SIGINT or SIGTERM.
pub async fn serve(config: Config, clock: Clock) -> anyhow::Result<()> {
    let listen = config.listen;
    let backend = if config.database_url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgres"
    };
    let state = app::open_with_clock(config, clock)
        .await
        .context("starting arkku")?;
    app::spawn_retention_sweeper(state.clone());
    app::spawn_chain_watch(&state);
    app::spawn_issuer_refresh(&state);
    app::spawn_notifier(&state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    spawn_metrics_listener(&state).await?;
    tracing::info!(address = %listener.local_addr()?, backend, "arkku listening");
    crate::serve(listener, state, shutdown_signal())
        .await
        .context("serving")?;
    Ok(())
}

/// Binds `ARKKU_METRICS_LISTEN`, if set, and serves `/metrics` there until
/// the process ends (a scrape needs no draining). A bind failure stops the
/// start, as the API's own does.
async fn spawn_metrics_listener(state: &crate::http::AppState) -> anyhow::Result<()> {
    let Some(address) = state.config.metrics_listen else {
        return Ok(());
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the metrics listener {address}"))?;
    tracing::info!(address = %listener.local_addr()?, "metrics listening");
    let state = state.clone();
    tokio::spawn(async move {
        let forever = std::future::pending::<()>();
        if let Err(e) = crate::metrics::listener::serve(listener, state, forever).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    });
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
