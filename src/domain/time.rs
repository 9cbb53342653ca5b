//! How the vault writes and reads instants in text: RFC 3339, UTC, as in
//! every API response, audit entry, export and CLI report.
//!
//! One place for it, outside the HTTP layer, because the audit log, the
//! retention report and the CLI print the same format as the API.

use time::{format_description::well_known::Rfc3339, OffsetDateTime};

/// RFC 3339, e.g. `2026-11-23T18:37:24.123456Z` (empty only if the instant
/// cannot be written, which the vault's own instants never are).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// Parses an RFC 3339 instant (any offset; compare, do not print, the result).
pub fn parse_rfc3339(s: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(s, &Rfc3339)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_written_reads_back_the_same() {
        let t = time::macros::datetime!(2026-11-23 18:37:24.123456 UTC);
        let text = rfc3339(t);
        assert_eq!(text, "2026-11-23T18:37:24.123456Z");
        assert_eq!(parse_rfc3339(&text).ok(), Some(t));
    }

    #[test]
    fn text_that_is_not_rfc_3339_is_refused() {
        for s in ["", "yesterday", "2026-11-23", "2026-11-23T18:37:24"] {
            assert!(parse_rfc3339(s).is_err(), "{s:?}");
        }
    }
}
