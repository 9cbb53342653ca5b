//! The `scope` of a token request (RFC 6749 §3.3): space-separated purposes,
//! which narrow the client's purposes and never widen them.

use crate::domain::Purpose;

/// Why a requested scope is refused: `invalid_scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeError {
    /// A purpose the client was not registered for (or no purpose at all).
    NotGranted,
}

/// The purposes a token gets: all of the client's without a `scope` (or an
/// empty one), else exactly those requested, each of which the client must
/// have. Repeats are dropped; the order is the request's.
pub fn narrow(granted: &[Purpose], requested: Option<&str>) -> Result<Vec<Purpose>, ScopeError> {
    let Some(requested) = requested.filter(|s| !s.trim().is_empty()) else {
        return Ok(granted.to_vec());
    };
    let mut out: Vec<Purpose> = Vec::new();
    for token in requested.split_ascii_whitespace() {
        let p = granted
            .iter()
            .find(|g| g.as_str() == token)
            .ok_or(ScopeError::NotGranted)?;
        if !out.contains(p) {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// The `scope` of a response: the purposes, space-separated.
pub fn render(purposes: &[Purpose]) -> String {
    purposes
        .iter()
        .map(Purpose::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn purposes(names: &[&str]) -> Vec<Purpose> {
        names.iter().map(|n| Purpose::parse(n).unwrap()).collect()
    }

    #[test]
    fn no_scope_gives_every_purpose_of_the_client() {
        let g = purposes(&["support", "marketing"]);
        assert_eq!(narrow(&g, None).unwrap(), g);
        assert_eq!(narrow(&g, Some("  ")).unwrap(), g);
    }

    #[test]
    fn a_scope_narrows_to_what_it_names() {
        let g = purposes(&["support", "marketing", "cross_channel"]);
        assert_eq!(
            narrow(&g, Some("marketing support marketing")).unwrap(),
            purposes(&["marketing", "support"])
        );
        assert_eq!(render(&narrow(&g, Some("support")).unwrap()), "support");
    }

    #[test]
    fn a_scope_beyond_the_client_is_refused() {
        let g = purposes(&["support"]);
        assert_eq!(narrow(&g, Some("support dsr")), Err(ScopeError::NotGranted));
        assert_eq!(narrow(&g, Some("SUPPORT")), Err(ScopeError::NotGranted));
        assert_eq!(narrow(&[], Some("support")), Err(ScopeError::NotGranted));
    }

    proptest! {
        #[test]
        fn a_granted_scope_is_always_a_subset_of_the_client(
            granted in proptest::sample::subsequence(
                vec!["support", "marketing", "cross_channel", "dsr", "billing"], 0..5),
            requested in "[a-z_ ]{0,40}",
        ) {
            let g = purposes(&granted);
            if let Ok(out) = narrow(&g, Some(&requested)) {
                for p in &out {
                    prop_assert!(g.contains(p));
                }
            }
        }
    }
}
