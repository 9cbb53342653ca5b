//! The vault's one clock: consent lapse, retention, due dates, token expiry
//! and every timestamp the vault writes read the time here.
//!
//! Production runs on the system clock. Tests move time forward instead of
//! sleeping; how a test sets it is the job of [`Clock::from_env`].

use std::sync::Arc;

use time::OffsetDateTime;

/// A source of the current time; cheap to clone.
#[derive(Clone, Default)]
pub struct Clock(Arc<Source>);

#[derive(Default)]
enum Source {
    /// The system clock.
    #[default]
    System,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// The clock `serve` and the CLI run on.
    pub fn from_env() -> Self {
        Clock::system()
    }

    /// Now, at the database's precision (microseconds), so a value echoed in
    /// a response equals the one a later read returns.
    pub fn now(&self) -> OffsetDateTime {
        let now = match *self.0 {
            Source::System => OffsetDateTime::now_utc(),
        };
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now)
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match *self.0 {
            Source::System => "Clock(system)",
        })
    }
}
