//! Bearer tokens (JWT): issuing dev tokens with the local issuer key and
//! verifying every token the API receives.
//!
//! jsonwebtoken 9 is used on purpose: it runs on ring, our one crypto stack
//! (newer releases dropped the ring backend). The algorithm is pinned per key
//! (the local issuer key is HS256 only); `exp` is required; `nbf`, `iss` and
//! `aud` are validated with a leeway of seconds, not the library's minute;
//! headers that point at other keys (`jku`, `jwk`, `x5u`, `x5c`) are refused.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{
    crypto::SecretKey,
    domain::{ChannelId, Role},
};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 5;
/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Actor {
    pub sub: String,
    pub role: Role,
    pub purposes: Vec<String>,
    pub channel: Option<ChannelId>,
    pub client: Option<String>,
}

/// Why a token was refused. Only logged at debug level; the client sees 401.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token too long")]
    TooLong,
    #[error("token header names a key source (jku/jwk/x5u/x5c)")]
    ForeignKeyHeader,
    #[error("algorithm {0:?} is not allowed for this issuer")]
    Algorithm(Algorithm),
    #[error("invalid token: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("invalid claim {0}")]
    Claim(&'static str),
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
}

#[derive(Deserialize)]
struct ReceivedClaims {
    sub: String,
    role: String,
    #[serde(default)]
    purposes: Vec<String>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    client: Option<String>,
}

/// Verifies tokens of the local issuer.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier(<redacted>)")
    }
}

impl TokenVerifier {
    pub fn new(issuer_key: &SecretKey, issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        TokenVerifier {
            key: DecodingKey::from_secret(issuer_key.expose_secret()),
            validation,
        }
    }

    /// Verifies signature, algorithm, header and claims; returns the caller.
    pub fn verify(&self, token: &str) -> Result<Actor, TokenError> {
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
        let role: Role = c.role.parse().map_err(|_| TokenError::Claim("role"))?;
        if c.sub.is_empty() || c.sub.len() > 256 {
            return Err(TokenError::Claim("sub"));
        }
        if role == Role::Customer && uuid::Uuid::parse_str(&c.sub).is_err() {
            return Err(TokenError::Claim("sub"));
        }
        let channel = c
            .channel
            .map(|ch| ChannelId::parse(&ch).map_err(|_| TokenError::Claim("channel")))
            .transpose()?;
        if c.purposes.len() > 32 || c.purposes.iter().any(|p| p.len() > 64) {
            return Err(TokenError::Claim("purposes"));
        }
        let client = c
            .client
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(128).collect());
        Ok(Actor {
            sub: c.sub,
            role,
            purposes: c.purposes,
            channel,
            client,
        })
    }
}

/// What `arkku token` puts in a token.
pub struct TokenRequest<'a> {
    pub role: Role,
    pub sub: &'a str,
    pub purposes: &'a [String],
    pub channel: Option<&'a ChannelId>,
    pub ttl: Duration,
}

/// Signs a token with the local issuer key (HS256).
pub fn issue(
    issuer_key: &SecretKey,
    issuer: &str,
    audience: &str,
    req: &TokenRequest<'_>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp().max(0) as u64;
    let claims = IssuedClaims {
        sub: req.sub,
        role: req.role.as_str(),
        purposes: req.purposes,
        channel: req.channel.map(ChannelId::as_str),
        iss: issuer,
        aud: audience,
        iat: now,
        nbf: now,
        exp: now + req.ttl.as_secs(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(issuer_key.expose_secret()),
    )
}
