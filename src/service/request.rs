//! What an operation knows of the request it serves: its id, assigned at
//! the edge (never taken from the client, whose header could inject text
//! into logs and the audit log) and carried in a task-local, so that logs
//! and audit entries name it without every call passing it along.

use std::future::Future;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, or `-` outside a request.
pub fn id() -> String {
    REQUEST_ID
        .try_with(Clone::clone)
        .unwrap_or_else(|_| "-".to_owned())
}

/// Calls `f` with the id of the request being served, without copying it;
/// `None` outside a request. The log formatter reads it for every line.
pub fn with_id<R>(f: impl FnOnce(&str) -> R) -> Option<R> {
    REQUEST_ID.try_with(|id| f(id)).ok()
}

/// Runs `fut` as the request `id`.
pub async fn scope<F: Future>(id: String, fut: F) -> F::Output {
    REQUEST_ID.scope(id, fut).await
}
