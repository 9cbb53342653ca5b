//! Releases an audited outcome as a response (see [`crate::service::audited`]).

use axum::response::{IntoResponse, Response};

pub use crate::service::audited::AuditScope;
use crate::service::{audited, Error, Services};

/// Appends the entry for `outcome`, then releases it (or 503 if the append failed).
pub async fn finish<R: IntoResponse>(
    state: &Services,
    scope: AuditScope,
    outcome: Result<R, Error>,
) -> Response {
    audited::finish(state, scope, outcome)
        .await
        .map_or_else(IntoResponse::into_response, IntoResponse::into_response)
}
