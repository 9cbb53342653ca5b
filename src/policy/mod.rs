//! Policies: which channels exist, how their values are treated, which purposes
//! exist and who may act for them, and the pure decision of what a reader sees.
//!
//! Policies are data (`policies/*.toml`), loaded and validated once at start;
//! [`decide`] holds the integration rule as pure functions, with no I/O, so
//! every branch is unit- and property-tested apart from HTTP.

pub mod consent;
pub mod decide;
pub mod disclosure;
pub mod limits;
pub mod load;
pub mod model;

pub use consent::{ConsentEvent, ConsentLedger, ANY_CHANNEL};
pub use decide::*;
pub use disclosure::Disclosure;
pub use limits::{LimitedAction, Limits, RateLimit};
pub use load::{load_dir, load_shipped, PolicyError};
pub use model::*;
