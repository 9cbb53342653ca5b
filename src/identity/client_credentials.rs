//! An integration client's credentials: making a secret, and reading the
//! client id and secret from a token request (RFC 6749 §2.3.1).
//!
//! A secret is 32 random bytes from ring, base64url without padding, behind
//! the prefix `arkku_cs_` so that secret scanners can recognise a leaked one.
//! It is shown once and stored only as an argon2id PHC string.
//!
//! A client authenticates with HTTP Basic, whose user name and password are
//! the client id and secret each form-urlencoded before base64 (§2.3.1), or
//! with `client_id` and `client_secret` form fields; never both at once
//! ("MUST NOT use more than one authentication method in each request").

use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

/// What every client secret starts with.
pub const SECRET_PREFIX: &str = "arkku_cs_";

/// Longest client id or secret read from a request; longer ones are refused
/// before anything else looks at them.
pub const MAX_CREDENTIAL_LEN: usize = 256;

/// A new client secret: the prefix and 32 random bytes, base64url.
pub fn new_secret() -> Result<Zeroizing<String>, ring::error::Unspecified> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    SystemRandom::new().fill(bytes.as_mut())?;
    let mut secret = Zeroizing::new(String::with_capacity(SECRET_PREFIX.len() + 43));
    secret.push_str(SECRET_PREFIX);
    URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut secret);
    Ok(secret)
}

/// A client id and the secret presented with it.
pub struct ClientCredentials {
    pub id: String,
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a request's client credentials cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialError {
    /// No client authentication at all, or an id without a secret:
    /// `invalid_client`.
    Missing,
    /// An `Authorization` header that is not well-formed HTTP Basic (or
    /// another scheme): `invalid_client`.
    Malformed,
    /// Basic and form credentials together, or an `Authorization` header
    /// twice: `invalid_request`.
    Ambiguous,
}

/// Reads an `Authorization: Basic …` value: base64 of `id:secret`, each
/// form-urlencoded. Another scheme is [`CredentialError::Malformed`].
pub fn parse_basic(header: &str) -> Result<ClientCredentials, CredentialError> {
    let (scheme, rest) = header
        .trim()
        .split_once(' ')
        .ok_or(CredentialError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(CredentialError::Malformed);
    }
    let rest = rest.trim();
    if rest.len() > 4 * MAX_CREDENTIAL_LEN {
        return Err(CredentialError::Malformed);
    }
    let decoded = Zeroizing::new(
        STANDARD
            .decode(rest)
            .map_err(|_| CredentialError::Malformed)?,
    );
    let text = std::str::from_utf8(&decoded).map_err(|_| CredentialError::Malformed)?;
    let (id, secret) = text.split_once(':').ok_or(CredentialError::Malformed)?;
    let id = form_decode(id).ok_or(CredentialError::Malformed)?;
    let secret = form_decode(secret).ok_or(CredentialError::Malformed)?;
    if id.is_empty() {
        return Err(CredentialError::Missing);
    }
    Ok(ClientCredentials {
        id: id.to_string(),
        secret,
    })
}

/// Undoes application/x-www-form-urlencoded on one value (`+` is a space,
/// `%XX` a byte); `None` if the result is not UTF-8 or too long.
fn form_decode(s: &str) -> Option<Zeroizing<String>> {
    let spaced = Zeroizing::new(s.replace('+', " "));
    let bytes = Zeroizing::new(percent_encoding::percent_decode_str(&spaced).collect::<Vec<u8>>());
    if bytes.len() > MAX_CREDENTIAL_LEN {
        return None;
    }
    std::str::from_utf8(&bytes)
        .ok()
        .map(|t| Zeroizing::new(t.to_owned()))
}

/// The one client authentication of a request: from the Basic header, or
/// from the `client_id` and `client_secret` form fields. A form `client_id`
/// next to Basic is accepted when it names the same client (some libraries
/// send it along); a form `client_secret` next to Basic is not.
pub fn choose(
    basic: Option<Result<ClientCredentials, CredentialError>>,
    form_id: Option<&str>,
    form_secret: Option<Zeroizing<String>>,
) -> Result<ClientCredentials, CredentialError> {
    match basic {
        Some(basic) => {
            if form_secret.is_some() {
                return Err(CredentialError::Ambiguous);
            }
            let basic = basic?;
            if form_id.is_some_and(|id| id != basic.id) {
                return Err(CredentialError::Ambiguous);
            }
            Ok(basic)
        }
        None => {
            let id = form_id.filter(|id| !id.is_empty());
            match (id, form_secret) {
                (Some(id), Some(secret)) if id.len() <= MAX_CREDENTIAL_LEN => {
                    if secret.len() > MAX_CREDENTIAL_LEN {
                        return Err(CredentialError::Malformed);
                    }
                    Ok(ClientCredentials {
                        id: id.to_owned(),
                        secret,
                    })
                }
                (Some(_), Some(_)) => Err(CredentialError::Malformed),
                _ => Err(CredentialError::Missing),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn a_secret_has_the_prefix_and_32_random_bytes() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert!(a.starts_with(SECRET_PREFIX), "{}", a.as_str());
        let raw = URL_SAFE_NO_PAD
            .decode(&a[SECRET_PREFIX.len()..])
            .expect("base64url");
        assert_eq!(raw.len(), 32);
        assert_ne!(a.as_str(), b.as_str());
    }

    #[test]
    fn basic_credentials_are_read_with_their_form_encoding_undone() {
        let c = parse_basic(&basic("client%201", "s%3Ae+cr%2Bet")).unwrap();
        assert_eq!(c.id, "client 1");
        assert_eq!(c.secret.as_str(), "s:e cr+et");
        // The scheme is case-insensitive; the first colon separates.
        let c = parse_basic(&format!("bAsIc {}", STANDARD.encode("id:a:b"))).unwrap();
        assert_eq!((c.id.as_str(), c.secret.as_str()), ("id", "a:b"));
    }

    #[test]
    fn malformed_basic_headers_are_refused() {
        for h in [
            "Basic",
            "Basic !!!",
            "Bearer abc",
            &format!("Basic {}", STANDARD.encode("no-colon")),
            &format!("Basic {}", STANDARD.encode([0xff, b':', b'x'])),
            &format!("Basic {}", STANDARD.encode("id:%FF")),
        ] {
            assert_eq!(
                parse_basic(h).unwrap_err(),
                CredentialError::Malformed,
                "{h}"
            );
        }
        assert_eq!(
            parse_basic(&basic("", "secret")).unwrap_err(),
            CredentialError::Missing
        );
        let long = "x".repeat(MAX_CREDENTIAL_LEN + 1);
        assert!(parse_basic(&basic("id", &long)).is_err());
    }

    fn secret(s: &str) -> Option<Zeroizing<String>> {
        Some(Zeroizing::new(s.to_owned()))
    }

    #[test]
    fn one_authentication_method_per_request() {
        let b = || Some(parse_basic(&basic("id", "s")));
        assert_eq!(choose(b(), None, None).unwrap().id, "id");
        assert_eq!(choose(b(), Some("id"), None).unwrap().id, "id");
        assert_eq!(
            choose(b(), Some("other"), None).unwrap_err(),
            CredentialError::Ambiguous
        );
        assert_eq!(
            choose(b(), None, secret("s")).unwrap_err(),
            CredentialError::Ambiguous
        );
        let form = choose(None, Some("id"), secret("s")).unwrap();
        assert_eq!((form.id.as_str(), form.secret.as_str()), ("id", "s"));
        assert_eq!(
            choose(None, Some("id"), None).unwrap_err(),
            CredentialError::Missing
        );
        assert_eq!(
            choose(None, None, None).unwrap_err(),
            CredentialError::Missing
        );
        assert_eq!(
            choose(Some(Err(CredentialError::Malformed)), None, None).unwrap_err(),
            CredentialError::Malformed
        );
    }

    proptest! {
        #[test]
        fn any_id_and_secret_survive_the_basic_encoding(
            id in "[^:]{1,40}",
            secret in ".{0,60}",
        ) {
            let enc = |s: &str| {
                percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC)
                    .to_string()
            };
            let c = parse_basic(&basic(&enc(&id), &enc(&secret))).unwrap();
            prop_assert_eq!(c.id, id);
            prop_assert_eq!(c.secret.as_str(), secret.as_str());
        }

        #[test]
        fn no_header_makes_the_parser_panic(h in ".{0,200}") {
            let _ = parse_basic(&h);
        }
    }
}
