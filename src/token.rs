//! Bearer tokens (JWT): issuing tokens with the local issuer key (`arkku
//! token`'s dev tokens, and the integration clients' tokens of `POST
//! /oauth/token`, which also carry `client` and `jti`) and verifying every
//! token the API receives.
//!
//! jsonwebtoken 9 is used on purpose: it runs on ring, our one crypto stack
//! (newer releases dropped the ring backend). The algorithm is pinned per key
//! (the local issuer key is HS256 only); `exp` is required; `nbf`, `iss` and
//! `aud` are validated with a leeway of seconds, not the library's minute;
//! headers that point at other keys (`jku`, `jwk`, `x5u`, `x5c`) are refused.
//! A token may live at most the policy's `tokens.max_lifetime` (`exp - iat`;
//! without `iat`, `exp - now`): a stolen token must not be good for years.
//!
//! `exp` and `nbf` are checked here against the vault's [`Clock`], not by
//! the library against the system time, so that tests can let a token expire
//! by moving the clock; the rule (and the leeway) is the library's.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{
    clock::Clock,
    crypto::SecretKey,
    domain::{ChannelId, Purpose, Role},
};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 5;
/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;

pub use crate::domain::Actor;

/// Why a token was refused. Only logged at debug level; the client sees 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token too long")]
    TooLong,
    #[error("token header names a key source (jku/jwk/x5u/x5c)")]
    ForeignKeyHeader,
    #[error("algorithm {0:?} is not allowed for this issuer")]
    Algorithm(Algorithm),
    /// Its text names the kind of failure only: the library's own text
    /// for a JSON error quotes the offending claim's value.
    #[error("invalid token: {}", jwt_failure(.0))]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("invalid claim {0}")]
    Claim(&'static str),
    #[error("the token lives longer than the policy allows")]
    Lifetime,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
}

/// What went wrong in the JWT library, without any text of the token.
fn jwt_failure(e: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidToken => "not a JWT",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "algorithm not allowed",
        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not valid yet",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::InvalidSubject => "wrong subject",
        ErrorKind::Base64(_) => "not base64url",
        ErrorKind::Json(_) => "header or claims not of the expected shape",
        ErrorKind::Utf8(_) => "not UTF-8",
        _ => "key or crypto failure",
    }
}

impl TokenError {
    /// Whether the token was refused only because its time is up (or not
    /// yet come): the one cause a caller can fix by getting a new token.
    pub fn is_expired(&self) -> bool {
        use jsonwebtoken::errors::ErrorKind;
        match self {
            TokenError::Expired | TokenError::NotYetValid => true,
            // Not raised while `check_time` does the library's time checks,
            // but kept so the answer cannot change if it ever does them again.
            TokenError::Jwt(e) => matches!(
                e.kind(),
                ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature
            ),
            _ => false,
        }
    }

    /// Whether the token is not a well-formed JWT at all.
    pub fn is_malformed(&self) -> bool {
        use jsonwebtoken::errors::ErrorKind;
        match self {
            TokenError::TooLong => true,
            TokenError::Jwt(e) => matches!(
                e.kind(),
                ErrorKind::InvalidToken
                    | ErrorKind::Base64(_)
                    | ErrorKind::Json(_)
                    | ErrorKind::Utf8(_)
            ),
            _ => false,
        }
    }
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    role: &'a str,
    purposes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    /// The integration client the token was issued to (`/oauth/token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<&'a str>,
    /// The token's own id, by which it can be revoked (RFC 7009).
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
}

#[derive(Deserialize)]
struct ReceivedClaims {
    sub: String,
    exp: u64,
    #[serde(default)]
    iat: Option<u64>,
    #[serde(default)]
    nbf: Option<u64>,
    role: String,
    #[serde(default)]
    purposes: Vec<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    client: Option<String>,
    #[serde(default)]
    jti: Option<String>,
}

/// A verified token: the caller, and what the vault needs to check it
/// against revocations.
#[derive(Debug, Clone)]
pub struct Verified {
    pub actor: Actor,
    /// The token's id, if it has one (every token of `/oauth/token` does).
    pub jti: Option<String>,
    /// When it expires (Unix seconds).
    pub exp: u64,
}

/// Verifies tokens of the local issuer.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
    max_lifetime: Duration,
    clock: Clock,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier(<redacted>)")
    }
}

impl TokenVerifier {
    pub fn new(
        issuer_key: &SecretKey,
        issuer: &str,
        audience: &str,
        max_lifetime: Duration,
        clock: Clock,
    ) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECS;
        // Checked against our clock in `check_time` (exp stays required).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        TokenVerifier {
            key: DecodingKey::from_secret(issuer_key.expose_secret()),
            validation,
            max_lifetime,
            clock,
        }
    }

    /// Verifies signature, algorithm, header and claims; returns the caller.
    pub fn verify(&self, token: &str) -> Result<Actor, TokenError> {
        self.verify_claims(token).map(|v| v.actor)
    }

    /// [`TokenVerifier::verify`], with the token's id and expiry.
    pub fn verify_claims(&self, token: &str) -> Result<Verified, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLong);
        }
        let header = jsonwebtoken::decode_header(token)?;
        if header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
        {
            return Err(TokenError::ForeignKeyHeader);
        }
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Algorithm(header.alg));
        }
        let data = jsonwebtoken::decode::<ReceivedClaims>(token, &self.key, &self.validation)?;
        let c = data.claims;
        let now = self.clock.unix_seconds();
        check_time(c.exp, c.nbf, now)?;
        check_lifetime(c.iat, c.exp, now, self.max_lifetime)?;
        let role: Role = c.role.parse().map_err(|_| TokenError::Claim("role"))?;
        if c.sub.is_empty() || c.sub.len() > 256 {
            return Err(TokenError::Claim("sub"));
        }
        let customer = match role {
            Role::Customer => {
                Some(uuid::Uuid::parse_str(&c.sub).map_err(|_| TokenError::Claim("sub"))?)
            }
            _ => None,
        };
        let channel = c
            .channel
            .map(|ch| ChannelId::parse(&ch).map_err(|_| TokenError::Claim("channel")))
            .transpose()?;
        if c.purposes.len() > 32 {
            return Err(TokenError::Claim("purposes"));
        }
        let purposes = c
            .purposes
            .iter()
            .map(|p| Purpose::parse(p).map_err(|_| TokenError::Claim("purposes")))
            .collect::<Result<Vec<_>, _>>()?;
        let client = c
            .client
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(128).collect());
        if c.jti
            .as_ref()
            .is_some_and(|j| j.is_empty() || j.len() > 128)
        {
            return Err(TokenError::Claim("jti"));
        }
        Ok(Verified {
            actor: Actor {
                sub: c.sub,
                role,
                purposes,
                channel,
                client,
                customer,
            },
            jti: c.jti,
            exp: c.exp,
        })
    }
}

/// The validity window, as jsonwebtoken would check it against the system
/// time: expired once `exp` is more than the leeway in the past, not valid
/// while `nbf` is more than the leeway in the future.
pub fn check_time(exp: u64, nbf: Option<u64>, now: u64) -> Result<(), TokenError> {
    if exp < now.saturating_sub(LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(LEEWAY_SECS)) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// The lifetime rule: `exp - iat` at most `max` (`exp - now` without
/// `iat`), and no `iat` in the future, each with the clock-skew leeway.
pub fn check_lifetime(
    iat: Option<u64>,
    exp: u64,
    now: u64,
    max: Duration,
) -> Result<(), TokenError> {
    let limit = max.as_secs().saturating_add(LEEWAY_SECS);
    let from = match iat {
        Some(iat) if iat > now.saturating_add(LEEWAY_SECS) => return Err(TokenError::Claim("iat")),
        Some(iat) => iat,
        None => now,
    };
    if exp.saturating_sub(from) > limit {
        return Err(TokenError::Lifetime);
    }
    Ok(())
}

/// What `arkku token` puts in a token.
pub struct TokenRequest<'a> {
    pub role: Role,
    pub sub: &'a str,
    pub purposes: &'a [String],
    pub channel: Option<&'a ChannelId>,
    pub ttl: Duration,
}

/// Signs a token with the local issuer key (HS256), issued at `now` (the
/// vault's [`Clock`]).
pub fn issue(
    issuer_key: &SecretKey,
    issuer: &str,
    audience: &str,
    req: &TokenRequest<'_>,
    now: time::OffsetDateTime,
) -> Result<String, jsonwebtoken::errors::Error> {
    sign(
        &EncodingKey::from_secret(issuer_key.expose_secret()),
        issuer,
        audience,
        req,
        &Provenance::default(),
        now,
    )
}

/// Where a token of an integration client comes from: the client and the
/// token's own id (`client` and `jti` claims).
#[derive(Debug, Default, Clone, Copy)]
pub struct Provenance<'a> {
    pub client: Option<&'a str>,
    pub jti: Option<&'a str>,
}

/// The local issuer as the server holds it, for the tokens it issues itself
/// (`POST /oauth/token`).
pub struct TokenIssuer {
    key: EncodingKey,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenIssuer(<redacted>)")
    }
}

impl TokenIssuer {
    pub fn new(issuer_key: &SecretKey, issuer: &str, audience: &str) -> Self {
        TokenIssuer {
            key: EncodingKey::from_secret(issuer_key.expose_secret()),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// Signs `req` with `from`'s `client` and `jti`, issued at `now`.
    pub fn issue(
        &self,
        req: &TokenRequest<'_>,
        from: &Provenance<'_>,
        now: time::OffsetDateTime,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        sign(&self.key, &self.issuer, &self.audience, req, from, now)
    }
}

fn sign(
    key: &EncodingKey,
    issuer: &str,
    audience: &str,
    req: &TokenRequest<'_>,
    from: &Provenance<'_>,
    now: time::OffsetDateTime,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = u64::try_from(now.unix_timestamp()).unwrap_or(0);
    let claims = IssuedClaims {
        sub: req.sub,
        role: req.role.as_str(),
        purposes: req.purposes,
        channel: req.channel.map(ChannelId::as_str),
        iss: issuer,
        aud: audience,
        iat: now,
        nbf: now,
        exp: now.saturating_add(req.ttl.as_secs()),
        client: from.client,
        jti: from.jti,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_token_within_the_cap_is_accepted() {
        assert!(check_lifetime(Some(NOW), NOW + 3600, NOW, HOUR).is_ok());
        assert!(check_lifetime(None, NOW + 3600, NOW, HOUR).is_ok());
    }

    #[test]
    fn exp_at_two_to_the_63_is_refused() {
        let exp = 1u64 << 63;
        assert!(matches!(
            check_lifetime(Some(NOW), exp, NOW, HOUR),
            Err(TokenError::Lifetime)
        ));
        assert!(matches!(
            check_lifetime(None, exp, NOW, HOUR),
            Err(TokenError::Lifetime)
        ));
    }

    #[test]
    fn exp_and_nbf_are_checked_with_the_leeway() {
        let l = LEEWAY_SECS;
        assert!(check_time(NOW, None, NOW + l).is_ok());
        assert!(matches!(
            check_time(NOW, None, NOW + l + 1),
            Err(TokenError::Expired)
        ));
        assert!(check_time(NOW + 60, Some(NOW + l), NOW).is_ok());
        assert!(matches!(
            check_time(NOW + 60, Some(NOW + l + 1), NOW),
            Err(TokenError::NotYetValid)
        ));
    }

    #[test]
    fn an_iat_in_the_future_is_refused() {
        assert!(matches!(
            check_lifetime(Some(NOW + 3600), NOW + 3700, NOW, HOUR),
            Err(TokenError::Claim("iat"))
        ));
    }

    #[test]
    fn a_refusal_never_quotes_a_claim() {
        // serde_json's own message would say: invalid type: string "…".
        let json = serde_json::from_str::<ReceivedClaims>(
            r#"{"sub":"s","exp":1,"role":"agent","purposes":"jane.doe@example.com"}"#,
        )
        .map(drop)
        .unwrap_err();
        assert!(json.to_string().contains("jane.doe"), "the premise");
        let e = TokenError::Jwt(json.into());
        assert!(!e.to_string().contains("jane.doe"), "{e}");
        assert!(e.is_malformed());
    }

    proptest! {
        #[test]
        fn the_lifetime_decision_matches_the_rule(
            iat in proptest::option::of(NOW - 100_000..NOW + 100),
            exp in 0u64..u64::MAX,
            max in 1u64..100_000,
        ) {
            let ok = check_lifetime(iat, exp, NOW, Duration::from_secs(max)).is_ok();
            let from = iat.unwrap_or(NOW);
            let expected = from <= NOW + LEEWAY_SECS && exp.saturating_sub(from) <= max + LEEWAY_SECS;
            prop_assert_eq!(ok, expected);
        }
    }
}
