//! NOT FOR PRODUCTION: what only the benchmark harness (`src/bin/arkku-bench`)
//! needs from the library, compiled only with the `bench` cargo feature, so
//! that a release build of `arkku` holds none of it.

use crate::{
    app::{self, Audit, StartError},
    clock::Clock,
    config::Config,
    AppState,
};

/// The application state with an auditor that writes nothing, to measure what
/// the audit log costs against the same stack. No configuration, flag or
/// environment variable of `arkku` reaches it.
pub async fn open_without_audit(config: Config) -> Result<AppState, StartError> {
    app::open_with(config, Clock::system(), Audit::Discard).await
}
