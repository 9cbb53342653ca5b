//! Free-text input at the service boundary: short single-line fields and
//! display names, parsed once with the rule of [`crate::domain::text`].

use zeroize::Zeroizing;

use super::Error;
use crate::domain::DisplayName;

/// A short, single-line text field: trimmed, non-empty, at most `max` characters.
/// No control or invisible formatting characters (bidirectional overrides,
/// zero-width characters): the rule of [`crate::domain::short_text`].
pub fn short_text(name: &str, v: &str, max: usize) -> Result<String, Error> {
    crate::domain::short_text(v, max).map_err(|e| Error::InvalidRequest(format!("{name} {e}")))
}

/// A display name, or 400 `invalid_display_name` saying which rule it broke.
pub fn display_name(v: &str) -> Result<Zeroizing<String>, Error> {
    DisplayName::parse(v)
        .map(|n| Zeroizing::new(n.into_string()))
        .map_err(|e| Error::InvalidDisplayName(format!("display_name {e}")))
}
