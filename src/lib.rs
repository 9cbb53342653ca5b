//! arkku: a privacy vault for customer contact data.
//!
//! Each channel's contact data is encrypted under that channel's keys; one
//! channel's data joins another channel's view only when the customer's
//! consent and the retention rules allow it; every access is written to a
//! tamper-evident audit log before any data leaves the vault.

#![forbid(unsafe_code)]

/// Start-up wiring: policies, keys, database, state.
pub mod app;
/// Hash-chained, fail-closed audit log.
pub mod audit;
/// Backup and restore of the embedded SQLite vault.
pub mod backup;
/// Benchmark-only hooks (the `bench` cargo feature).
#[cfg(feature = "bench")]
pub mod bench;
/// The `arkku` command line.
pub mod cli;
/// The one clock every operation reads.
pub mod clock;
/// Settings from flags and `ARKKU_*` environment variables.
pub mod config;
/// Key hierarchy, field encryption, blind index (ring).
pub mod crypto;
/// Plain types and the parsers that are their only constructors.
pub mod domain;
/// The HTTP API.
pub mod http;
/// The ways in: token checks, clients, external issuers, customer and staff sign-in.
pub mod identity;
/// Where and how the process logs (`ARKKU_LOG_FORMAT`).
pub mod logging;
/// Prometheus series and the listener that serves them (`ARKKU_METRICS_LISTEN`).
pub mod metrics;
/// Channel and purpose policies and the pure integration rule.
pub mod policy;
/// The retention sweeper: purges what the policies no longer allow to keep.
pub mod retention;
/// The connection edge: accept loop, timeouts and connection caps.
pub mod server;
/// The vault's operations: authorise → load → decide → open/seal → write → audit.
pub mod service;
/// SQLite and PostgreSQL storage.
pub mod store;
/// JWT issuing and verification.
pub mod token;
/// Keyring and the sealing/opening of customer records.
pub mod vault;
/// The web pages: the staff console (templates, sessions, CSRF, i18n).
pub mod web;

pub use http::{build_router, AppState};

/// Serves the API on an already-bound listener until `shutdown` resolves,
/// with the connection limits of the configuration ([`server`]).
/// Tests bind port 0 and pass the listener in.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.edge;
    server::serve(listener, build_router(state), limits, shutdown).await
}
