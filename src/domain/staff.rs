//! Staff accounts' names and roles (README, "Staff accounts"): the people who sign in
//! to the console with a password and a TOTP code.

use std::fmt;

use super::Role;

/// Longest staff account name, in characters.
pub const MAX_STAFF_NAME_LEN: usize = 64;

/// Why a staff account name was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "a staff account name is 1 to 64 characters of a-z, 0-9, '.', '_', '-' and '@', \
     starting with a letter or digit"
)]
pub struct StaffNameError;

/// A staff account's unique name, e.g. `anna.virtanen` or `anna@shop.example`.
///
/// Letters are lower-cased when parsed, so `Anna` and `anna` are one account
/// (the console's sign-in form need not care about case), and the unique
/// index on the stored name is a case-insensitive one. The grammar leaves out
/// `:` and `/`, which would break the label of an `otpauth://` URI, and
/// white space and control characters, which would make two names look alike
/// in a listing or an audit entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StaffName(String);

impl StaffName {
    /// Parses a name (lower-casing ASCII letters); the only constructor.
    pub fn parse(s: &str) -> Result<Self, StaffNameError> {
        let lower = s.to_ascii_lowercase();
        let mut chars = lower.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let rest_ok = chars.all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '@')
        });
        // Only ASCII is accepted, so the byte length is the character count.
        if first_ok && rest_ok && lower.len() <= MAX_STAFF_NAME_LEN {
            Ok(StaffName(lower))
        } else {
            Err(StaffNameError)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StaffName {
    /// Honours width and alignment (`{:<24}`), for tables.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// Why a staff role was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a staff account's role is compliance or admin")]
pub struct StaffRoleError;

/// What a staff account is: one of the two token roles people hold in the
/// console (agents and integrations come in through their own tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StaffRole {
    Compliance,
    Admin,
}

impl StaffRole {
    pub fn parse(s: &str) -> Result<Self, StaffRoleError> {
        match s {
            "compliance" => Ok(StaffRole::Compliance),
            "admin" => Ok(StaffRole::Admin),
            _ => Err(StaffRoleError),
        }
    }

    /// The token role the account acts in.
    pub fn role(self) -> Role {
        match self {
            StaffRole::Compliance => Role::Compliance,
            StaffRole::Admin => Role::Admin,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.role().as_str()
    }
}

impl fmt::Display for StaffRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_lower_cased_and_follow_the_grammar() {
        for (typed, stored) in [
            ("anna", "anna"),
            ("Anna.Virtanen", "anna.virtanen"),
            ("anna@shop.example", "anna@shop.example"),
            ("7of9", "7of9"),
            ("a_b-c", "a_b-c"),
        ] {
            assert_eq!(
                StaffName::parse(typed).map(|n| n.to_string()),
                Ok(stored.into())
            );
        }
        let longest = "a".repeat(MAX_STAFF_NAME_LEN);
        assert!(StaffName::parse(&longest).is_ok());
    }

    #[test]
    fn malformed_names_are_refused() {
        let too_long = "a".repeat(MAX_STAFF_NAME_LEN + 1);
        for bad in [
            "",
            " anna",
            "anna ",
            "an na",
            "anna:x",
            "anna/x",
            ".anna",
            "-anna",
            "änna",
            "anna\n",
            too_long.as_str(),
        ] {
            assert_eq!(StaffName::parse(bad), Err(StaffNameError), "{bad:?}");
        }
    }

    #[test]
    fn roles_are_compliance_or_admin_only() {
        assert_eq!(StaffRole::parse("compliance"), Ok(StaffRole::Compliance));
        assert_eq!(
            StaffRole::parse("admin").map(StaffRole::role),
            Ok(Role::Admin)
        );
        for bad in ["agent", "service", "customer", "Admin", ""] {
            assert_eq!(StaffRole::parse(bad), Err(StaffRoleError), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn a_parsed_name_parses_again_to_itself(s in "\\PC{0,70}") {
            if let Ok(name) = StaffName::parse(&s) {
                prop_assert_eq!(StaffName::parse(name.as_str()), Ok(name.clone()));
                prop_assert!(!name.as_str().contains([':', '/', ' ']));
            }
        }
    }
}
