//! The time zone people read times in: the export ZIP shows local date-times
//! such as `2026-12-02 12:14 (Europe/Helsinki, UTC+02:00)`, while the API,
//! the JSON export and the audit log keep RFC 3339 UTC (machines read them).
//!
//! Zones are IANA names looked up in the copy of the time-zone database built
//! into the binary (jiff's bundled tzdb), never the host's: a container
//! without `/usr/share/zoneinfo` shows the same times as any other node.

use jiff::{tz::TimeZone, Timestamp};
use time::OffsetDateTime;

/// The zone used when none is configured (`ARKKU_DISPLAY_TIMEZONE`): the
/// vault's customers are, by default, Finnish (`ARKKU_DEFAULT_REGION=FI`).
pub const DEFAULT_DISPLAY_ZONE: &str = "Europe/Helsinki";

/// A zone that exists in the bundled database, with its canonical name.
#[derive(Clone)]
pub struct DisplayZone {
    name: String,
    tz: TimeZone,
}

/// A name that is not an IANA time zone.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown time zone {0:?} (expected an IANA name such as Europe/Helsinki or UTC)")]
pub struct ZoneError(String);

impl DisplayZone {
    /// The zone named `name` (IANA, case-insensitive); the name is kept in
    /// its canonical spelling.
    pub fn parse(name: &str) -> Result<Self, ZoneError> {
        let name = name.trim();
        let refused = || ZoneError(name.chars().take(64).collect());
        if name.is_empty() {
            return Err(refused());
        }
        let tz = jiff::tz::db().get(name).map_err(|_| refused())?;
        let name = tz.iana_name().unwrap_or(name).to_owned();
        Ok(DisplayZone { name, tz })
    }

    /// The zone's IANA name, e.g. `Europe/Helsinki`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `t` as local date and time with the zone and its offset then, to the
    /// minute: `2026-12-02 12:14 (Europe/Helsinki, UTC+02:00)`.
    pub fn local(&self, t: OffsetDateTime) -> String {
        match Timestamp::from_nanosecond(t.unix_timestamp_nanos()) {
            Ok(ts) => {
                let z = ts.to_zoned_datetime(self.tz.clone());
                format!(
                    "{} ({}, UTC{})",
                    z.strftime("%Y-%m-%d %H:%M"),
                    self.name,
                    z.strftime("%:z")
                )
            }
            // Outside jiff's range (years beyond ±9999): never a vault instant.
            Err(_) => crate::domain::time::rfc3339(t),
        }
    }

    /// `t` at the zone's offset at that instant, for a page that writes
    /// dates in words of its own language (the privacy page).
    pub fn to_local(&self, t: OffsetDateTime) -> OffsetDateTime {
        let offset = Timestamp::from_nanosecond(t.unix_timestamp_nanos())
            .ok()
            .and_then(|ts| {
                time::UtcOffset::from_whole_seconds(self.tz.to_offset(ts).seconds()).ok()
            });
        offset.map_or(t, |o| t.to_offset(o))
    }

    /// An RFC 3339 instant (as the vault writes them) in local time; text
    /// that is not one comes back unchanged.
    pub fn local_rfc3339(&self, s: &str) -> String {
        match crate::domain::time::parse_rfc3339(s) {
            Ok(t) => self.local(t),
            Err(_) => s.to_owned(),
        }
    }
}

impl Default for DisplayZone {
    fn default() -> Self {
        DisplayZone::parse(DEFAULT_DISPLAY_ZONE).unwrap_or_else(|_| DisplayZone {
            name: "UTC".to_owned(),
            tz: TimeZone::UTC,
        })
    }
}

impl std::fmt::Debug for DisplayZone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DisplayZone({})", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn helsinki_shows_winter_and_summer_time_with_the_offset() {
        let z = DisplayZone::parse("Europe/Helsinki").unwrap();
        assert_eq!(
            z.local(datetime!(2026-12-02 10:14:59 UTC)),
            "2026-12-02 12:14 (Europe/Helsinki, UTC+02:00)"
        );
        assert_eq!(
            z.local(datetime!(2026-07-01 21:30 UTC)),
            "2026-07-02 00:30 (Europe/Helsinki, UTC+03:00)"
        );
        assert_eq!(
            z.local_rfc3339("2026-12-02T10:14:00.123456Z"),
            "2026-12-02 12:14 (Europe/Helsinki, UTC+02:00)"
        );
        assert_eq!(z.local_rfc3339("not a time"), "not a time");
    }

    #[test]
    fn utc_and_other_zones_read_the_same_instant() {
        let t = datetime!(2026-12-02 10:14 UTC);
        let utc = DisplayZone::parse("UTC").unwrap();
        assert_eq!(utc.local(t), "2026-12-02 10:14 (UTC, UTC+00:00)");
        let ny = DisplayZone::parse("america/new_york").unwrap();
        assert_eq!(ny.name(), "America/New_York");
        assert_eq!(
            ny.local(t),
            "2026-12-02 05:14 (America/New_York, UTC-05:00)"
        );
    }

    #[test]
    fn a_name_that_is_not_an_iana_zone_is_refused() {
        for bad in [
            "",
            " ",
            "Mars/Olympus",
            "Europe/Helsinki ; x",
            "../etc/passwd",
        ] {
            assert!(DisplayZone::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(DisplayZone::default().name(), DEFAULT_DISPLAY_ZONE);
    }
}
