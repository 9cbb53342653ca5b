//! The vault's one clock: token expiry, `arkku token`, retention sweeps, the
//! idempotency window and the operations of the service layer read the time
//! here.
//!
//! Production runs on the system clock. Tests move time forward instead of
//! sleeping: a test clock reads a small file on every [`Clock::now`] and
//! adds the offset it holds (`+3600`, `-60`: seconds) to the system time, or
//! stands still at the RFC 3339 instant it holds. A test that drives the
//! real `arkku` binary names that file in `ARKKU_TEST_CLOCK_FILE`; only a
//! debug build honours the variable. A release build ignores it and warns at
//! start that it did, so nothing in a production environment can move the
//! vault's time. (See SECURITY.md, "Time".)

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use time::OffsetDateTime;

/// The environment variable that names a test clock file (debug builds only).
pub const TEST_CLOCK_ENV: &str = "ARKKU_TEST_CLOCK_FILE";

/// A source of the current time; cheap to clone.
#[derive(Clone, Default)]
pub struct Clock(Arc<Source>);

#[derive(Default)]
enum Source {
    /// The system clock.
    #[default]
    System,
    /// The system clock moved by what a file says, read on every `now`.
    File(PathBuf),
}

/// What a test clock file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestTime {
    /// The system time plus this many seconds (negative: behind).
    Offset(i64),
    /// This instant, standing still.
    At(OffsetDateTime),
}

impl TestTime {
    /// Parses a clock file: empty (no offset), `+N` / `-N` / `N` seconds,
    /// or an RFC 3339 instant; surrounding white space is ignored.
    pub fn parse(text: &str) -> Option<TestTime> {
        let t = text.trim();
        if t.is_empty() {
            return Some(TestTime::Offset(0));
        }
        if let Ok(secs) = t.strip_prefix('+').unwrap_or(t).parse::<i64>() {
            return Some(TestTime::Offset(secs));
        }
        crate::domain::time::parse_rfc3339(t)
            .ok()
            .map(|at| TestTime::At(at.to_offset(time::UtcOffset::UTC)))
    }

    /// The file text that says this.
    pub fn to_file_text(self) -> String {
        match self {
            TestTime::Offset(secs) => format!("{secs:+}\n"),
            TestTime::At(at) => format!("{}\n", crate::domain::time::rfc3339(at)),
        }
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// A test clock that reads `path` on every [`Clock::now`] (a missing
    /// file means no offset). For tests, which write the file to move time;
    /// nothing in production configuration reaches it.
    pub fn from_file(path: impl Into<PathBuf>) -> Self {
        Clock(Arc::new(Source::File(path.into())))
    }

    /// The clock the `arkku` commands run on: the system clock, or in a debug
    /// build the test clock named by `ARKKU_TEST_CLOCK_FILE`. Warns (through
    /// tracing, so call it after tracing is set up) whenever the variable is
    /// set: in a release build that it is ignored, in a debug build that
    /// time comes from a file.
    pub fn from_env() -> Self {
        Clock::from_var(std::env::var_os(TEST_CLOCK_ENV), cfg!(debug_assertions))
    }

    /// [`Clock::from_env`] for a value of the variable, honoured or not.
    fn from_var(value: Option<std::ffi::OsString>, honour: bool) -> Self {
        let Some(path) = value.filter(|p| !p.is_empty()) else {
            return Clock::system();
        };
        let path = PathBuf::from(path);
        if honour {
            tracing::warn!(
                file = %path.display(),
                "{TEST_CLOCK_ENV} is set: this debug build reads the time from a test clock file"
            );
            Clock::from_file(path)
        } else {
            tracing::warn!(
                "{TEST_CLOCK_ENV} is set and ignored: a release build always runs on the system clock"
            );
            Clock::system()
        }
    }

    /// Whether this is a test clock (never in a release build's commands).
    pub fn is_test(&self) -> bool {
        matches!(*self.0, Source::File(_))
    }

    /// Now, at the database's precision (microseconds), so a value echoed in
    /// a response equals the one a later read returns.
    pub fn now(&self) -> OffsetDateTime {
        let system = OffsetDateTime::now_utc();
        let now = match &*self.0 {
            Source::System => system,
            Source::File(path) => match read(path) {
                TestTime::Offset(secs) => system
                    .checked_add(time::Duration::seconds(secs))
                    .unwrap_or(system),
                TestTime::At(at) => at,
            },
        };
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now)
    }

    /// Now as whole seconds since 1970 (what JWT claims hold); 0 before 1970.
    pub fn unix_seconds(&self) -> u64 {
        u64::try_from(self.now().unix_timestamp()).unwrap_or(0)
    }
}

/// Reads a test clock file; a missing file is no offset, an unreadable or
/// malformed one is logged and read as no offset (the test then fails on
/// the time it expected, with this warning in the server's log).
fn read(path: &Path) -> TestTime {
    match std::fs::read_to_string(path) {
        Ok(text) => TestTime::parse(&text).unwrap_or_else(|| {
            tracing::warn!(file = %path.display(), "test clock file holds neither +SECONDS nor an RFC 3339 time");
            TestTime::Offset(0)
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TestTime::Offset(0),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "test clock file unreadable");
            TestTime::Offset(0)
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &*self.0 {
            Source::System => f.write_str("Clock(system)"),
            Source::File(p) => write!(f, "Clock(test file {})", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_files_say_an_offset_or_an_instant() {
        assert_eq!(TestTime::parse(""), Some(TestTime::Offset(0)));
        assert_eq!(TestTime::parse("+3600\n"), Some(TestTime::Offset(3600)));
        assert_eq!(TestTime::parse("-60"), Some(TestTime::Offset(-60)));
        assert_eq!(TestTime::parse("90"), Some(TestTime::Offset(90)));
        let at = time::macros::datetime!(2030-01-02 03:04:05 UTC);
        assert_eq!(
            TestTime::parse("2030-01-02T05:04:05+02:00"),
            Some(TestTime::At(at))
        );
        for bad in ["soon", "+1h", "2030-01-02"] {
            assert_eq!(TestTime::parse(bad), None, "{bad:?}");
        }
        for t in [TestTime::Offset(-5), TestTime::Offset(7), TestTime::At(at)] {
            assert_eq!(TestTime::parse(&t.to_file_text()), Some(t));
        }
    }

    #[test]
    fn only_a_build_that_honours_the_variable_runs_on_a_test_clock() {
        let file = Some(std::ffi::OsString::from("/tmp/arkku-test-clock"));
        assert!(Clock::from_var(file.clone(), true).is_test());
        assert!(!Clock::from_var(file, false).is_test(), "release: ignored");
        assert!(!Clock::from_var(None, true).is_test());
        assert!(!Clock::from_var(Some("".into()), true).is_test());
    }

    #[test]
    fn a_test_clock_moves_when_its_file_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("clock");
        let clock = Clock::from_file(&file);
        let system = Clock::system();
        let drift = |c: &Clock| (c.now() - system.now()).whole_seconds();
        assert_eq!(drift(&clock), 0, "no file: no offset");
        std::fs::write(&file, TestTime::Offset(86_400).to_file_text()).expect("write");
        assert!((86_399..=86_400).contains(&drift(&clock)));
        let at = time::macros::datetime!(2030-01-02 03:04:05.123456789 UTC);
        std::fs::write(&file, TestTime::At(at).to_file_text()).expect("write");
        assert_eq!(
            clock.now(),
            time::macros::datetime!(2030-01-02 03:04:05.123456 UTC),
            "stands still, at microseconds"
        );
        assert!(clock.is_test() && !system.is_test());
    }
}
