//! The metrics listener: `GET /metrics` and nothing else, on its own
//! address, so that the series are never reachable on the API's port.
//!
//! It has no authentication: bind it to loopback or a private network that
//! only the Prometheus server reaches (README "Metrics"). Its labels carry no
//! personal data ([`crate::metrics`]), but request rates and key ages are
//! still nobody else's business.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::IntoResponse,
    routing::get,
    Router,
};
use prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

use crate::http::AppState;

/// The metrics router: `/metrics`, and 404 for every other path.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state(state)
}

async fn scrape(State(state): State<AppState>) -> impl IntoResponse {
    let body = state.metrics.render(&state).await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}

/// Serves [`router`] on `listener` until `shutdown` resolves, with the same
/// connection limits as the API's listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = state.config.edge;
    crate::server::serve(listener, router(state), limits, shutdown).await
}
