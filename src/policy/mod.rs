//! Policies: which channels exist, how their values are treated, which purposes
//! exist and who may act for them, and the pure decision of what a reader sees.
//!
//! Policies are data (`policies/*.toml`), loaded and validated once at start;
//! [`decide`] holds the integration rule as pure functions, with no I/O, so
//! every branch is unit- and property-tested apart from HTTP; [`write`] holds
//! who may write on which channel and who may record consent; [`access`] is
//! the role × operation × purpose matrix every operation is checked against.

pub mod access;
pub mod consent;
pub mod decide;
pub mod disclosure;
pub mod issuers;
pub mod limits;
pub mod load;
pub mod model;
pub mod notices;
pub mod write;

pub use access::{authorise, Access, Denied, Operation, PurposeRule};
pub use consent::{ConsentEvent, ConsentLedger, ANY_CHANNEL};
pub use decide::*;
pub use disclosure::Disclosure;
pub use limits::{LimitedAction, Limits, RateLimit, SignInLimits};
pub use load::{load_dir, load_shipped, PolicyError};
pub use model::*;
pub use notices::Notice;
pub use write::{
    authorise_channel_write, authorise_consent_record, ChannelWrite, ConsentRecording, WriteDenied,
};
