//! `arkku serve` and `arkku migrate`: run the API, or only prepare its database.

use std::time::Instant;

use anyhow::Context;

use crate::{app, clock::Clock, config::Config};

/// `arkku serve`: starts the vault, its background tasks and the listener,
/// and serves until SIGINT or SIGTERM. Then it stops accepting, lets the
/// requests in progress finish and the audit queue commit, all within
/// `ARKKU_SHUTDOWN_TIMEOUT`, and returns (exit 0). The background tasks
/// (sweeper, chain watch, notifier) end with the runtime: each of their
/// changes commits with its audit entry or not at all, so a cut leaves
/// nothing half done.
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
    let deadline = config.edge.shutdown_timeout;
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
    app::spawn_profile_backfill(&state);
    app::spawn_issuer_refresh(&state);
    app::spawn_notifier(&state);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    spawn_metrics_listener(&state).await?;
    tracing::info!(address = %listener.local_addr()?, backend, "arkku listening");
    let (signalled, signalled_at) = tokio::sync::oneshot::channel();
    let signal = async move {
        shutdown_signal().await;
        let _ = signalled.send(Instant::now());
    };
    crate::serve(listener, state.clone(), signal)
        .await
        .context("serving")?;
    let began = signalled_at.await.unwrap_or_else(|_| Instant::now());
    let left = deadline.saturating_sub(began.elapsed());
    let audit = state.audit.drain(left).await;
    let took = began.elapsed();
    if audit.settled && took <= deadline {
        tracing::info!(
            audit_queued = audit.queued,
            took_ms = took.as_millis() as u64,
            "shut down: every request in progress answered and every audit entry settled"
        );
    } else {
        tracing::warn!(
            audit_queued = audit.queued,
            audit_settled = audit.settled,
            took_ms = took.as_millis() as u64,
            deadline = ?deadline,
            "shut down at the deadline: requests still in progress were dropped unanswered \
             (a change is kept only if its audit entry committed)"
        );
    }
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
