//! What a new staff password must be: at least 12
//! characters, at most 1024.
//!
//! Length is the rule, as NIST SP 800-63B recommends: no composition rules
//! (they push people to predictable patterns), spaces and any Unicode
//! allowed, so a passphrase works. The upper bound keeps a pasted file from
//! being hashed; control characters are refused because they are nearly
//! always a paste or terminal accident that the person could not type again.
//! The text is not normalised: it is hashed as typed.

/// Fewest characters in a password.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Most characters in a password.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Why a new password was refused. Never holds the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least 12 characters long")]
    TooShort,
    #[error("the password must be at most 1024 characters long")]
    TooLong,
    #[error("the password must not contain control characters (tabs, escapes, line breaks)")]
    ControlCharacter,
}

/// Checks a new password against the rule.
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    // Counting stops past the maximum, so a huge paste is not walked whole.
    let chars = password.chars().take(MAX_PASSWORD_CHARS + 1).count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(PasswordError::TooLong);
    }
    if password.chars().any(char::is_control) {
        return Err(PasswordError::ControlCharacter);
    }
    Ok(())
}

/// Whether a password offered at sign-in is worth hashing: one longer than
/// any that could have been set is wrong without asking argon2 (which would
/// still take its time, see [`super::SecretHasher::verify`]).
pub fn could_be_a_password(password: &str) -> bool {
    password.len() <= MAX_PASSWORD_CHARS * 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn twelve_to_1024_characters_are_accepted_whatever_they_are() {
        for ok in [
            "correct horse",
            "abcdefghijkl",
            "äöåäöåäöåäöå",
            "🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂🙂",
            "pass phrase with spaces",
        ] {
            assert_eq!(check_new_password(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(check_new_password(&"x".repeat(MAX_PASSWORD_CHARS)), Ok(()));
    }

    #[test]
    fn short_long_and_control_characters_are_refused() {
        assert_eq!(check_new_password(""), Err(PasswordError::TooShort));
        assert_eq!(
            check_new_password("elevenchars"),
            Err(PasswordError::TooShort)
        );
        // Twelve bytes, but six characters.
        assert_eq!(check_new_password("ääääää"), Err(PasswordError::TooShort));
        assert_eq!(
            check_new_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)),
            Err(PasswordError::TooLong)
        );
        assert_eq!(
            check_new_password("twelve chars\there"),
            Err(PasswordError::ControlCharacter)
        );
        assert_eq!(
            check_new_password("twelve chars\u{1b}[0m"),
            Err(PasswordError::ControlCharacter)
        );
    }

    proptest! {
        #[test]
        fn the_rule_is_the_character_count(s in "[a-zA-Z0-9 äö]{0,40}") {
            let n = s.chars().count();
            prop_assert_eq!(check_new_password(&s).is_ok(), n >= MIN_PASSWORD_CHARS);
        }
    }
}
