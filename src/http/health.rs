//! Liveness and readiness. `/readyz` checks the database, the audit writer,
//! the audit chain (as last verified in the background), the keys and the
//! policies, and says which one is missing; neither touches customer data.

use axum::{extract::State, http::StatusCode, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::audit::watch::ChainState;

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(healthz))
        .routes(utoipa_axum::routes!(readyz))
}

/// The process is up.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", operation_id = "checkHealth",
    summary = "Liveness",
    description = "200 while the process is up.",
    responses((status = 200, description = "The process is up.", body = Health)),
    tag = "health")]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Whether the vault can serve, part by part.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub database: &'static str,
    pub backend: &'static str,
    pub keys: &'static str,
    /// `ok` while audit appends commit; `failing` after a failed batch;
    /// `broken` once the background verification found the chain broken.
    pub audit: &'static str,
    /// The background verification of the audit chain: `verifying` until
    /// its first pass is done, then `intact` or `broken`; `off` when
    /// `ARKKU_AUDIT_VERIFY_INTERVAL` is off.
    pub audit_chain: &'static str,
    /// The first entry that does not verify, when the chain is broken.
    pub audit_first_bad_seq: Option<i64>,
    /// What is wrong with the chain, in words (no entry content).
    pub audit_chain_problem: Option<String>,
    pub policies: &'static str,
    pub channels: usize,
}

/// `GET /readyz`: 200 when the database answers, audit appends commit, the
/// audit chain is not known to be broken, and keys and policies are loaded,
/// else 503.
#[utoipa::path(get, path = "/readyz", operation_id = "checkReadiness",
    summary = "Readiness",
    description = "200 when the database answers, audit appends commit, the audit chain is \
        not known to be broken, and keys and policies are loaded; else 503, saying which \
        part is missing.",
    responses((status = 200, description = "Ready.", body = Readiness),
        (status = 503, description = "Not ready; the body says which part is missing.", body = Readiness)),
    tag = "health")]
pub async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let db_ok = tokio::time::timeout(std::time::Duration::from_secs(2), s.db.ping())
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    let audit_ok = s.audit.probe().await;
    let chain = s.chain.state();
    let (first_bad, problem) = match &chain {
        ChainState::Broken {
            first_bad_seq,
            problem,
        } => (Some(*first_bad_seq), Some(problem.clone())),
        _ => (None, None),
    };
    // A broken chain is not ready; one still being verified is (start-up
    // does not wait for the first pass).
    let ready = db_ok && audit_ok && first_bad.is_none();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Readiness {
            status: if ready { "ready" } else { "unavailable" },
            database: if db_ok { "ok" } else { "unavailable" },
            backend: s.db.backend(),
            keys: "loaded",
            audit: match (first_bad.is_some(), audit_ok) {
                (true, _) => "broken",
                (false, true) => "ok",
                (false, false) => "failing",
            },
            audit_chain: chain.as_str(),
            audit_first_bad_seq: first_bad,
            audit_chain_problem: problem,
            policies: "loaded",
            channels: s.policies.channels.len(),
        }),
    )
}
