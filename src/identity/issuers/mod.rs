//! Tokens of external identity providers (OIDC, DESIGN.md §12.2): the
//! issuers of `auth.toml`, verified with the public keys of their JWKS.
//!
//! A token's `iss` is read unverified, only to choose who verifies it: the
//! local issuer keeps its own HS256 path ([`crate::token`]); a configured
//! issuer verifies here. Then, as for local tokens: no `jku`/`jwk`/`x5u`/
//! `x5c` headers, the algorithm on the issuer's allow-list *and* the one
//! pinned to the key its `kid` picks ([`jwks`]), `iss` and `aud` exact,
//! `exp`/`nbf` against the vault's clock with seconds of leeway, and the
//! policy's lifetime cap. The claims then map onto the same
//! [`Actor`] every way in produces ([`claims`]).
//!
//! - [`jwks`]: parsing key sets, the algorithm pinned per key;
//! - [`keys`]: each issuer's cached keys and when they are fetched again;
//! - [`fetch`]: getting a JWKS (HTTPS or file) with a deadline and a cap;
//! - [`cache`]: verified tokens kept until they expire;
//! - [`claims`]: claims → actor.

pub mod cache;
pub mod claims;
pub mod fetch;
pub mod jwks;
pub mod keys;

use std::{sync::Arc, time::Duration};

use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use self::{cache::TokenCache, fetch::Fetcher, keys::IssuerKeys};
use crate::{
    clock::Clock,
    domain::Actor,
    policy::issuers::IssuerPolicy,
    service::error::AuthFailure,
    token::{check_lifetime, check_time, TokenError, LEEWAY_SECS},
};

/// Tokens longer than this are left to the local verifier, which refuses them.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// How often the refresh timer looks whether an issuer's keys are due.
const TICK: Duration = Duration::from_secs(1);

/// Why an external token was refused. Only logged at debug level.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("the issuer has no key with the token's kid")]
    UnknownKey,
}

impl IssuerError {
    /// What the caller is told.
    pub fn failure(&self) -> AuthFailure {
        match self {
            IssuerError::Token(e) => super::authenticate::failure(e),
            IssuerError::UnknownKey => AuthFailure::Invalid,
        }
    }
}

impl From<jsonwebtoken::errors::Error> for IssuerError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        IssuerError::Token(TokenError::Jwt(e))
    }
}

/// One trusted issuer with its keys.
#[derive(Debug)]
pub struct Issuer {
    pub policy: IssuerPolicy,
    pub keys: IssuerKeys,
}

/// The external issuers and the cache of their verified tokens.
#[derive(Debug, Clone)]
pub struct Issuers {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    issuers: Vec<Arc<Issuer>>,
    cache: TokenCache,
    fetcher: Fetcher,
    clock: Clock,
    max_lifetime: Duration,
}

/// The part of a token read before it is verified.
#[derive(serde::Deserialize)]
struct Unverified {
    iss: Option<String>,
}

impl Issuers {
    /// The issuers of `policies` with no keys yet: they come with the first
    /// fetch (by [`Issuers::spawn_refresh`] or the first token).
    pub fn new(policies: &[IssuerPolicy], clock: Clock, max_lifetime: Duration) -> Self {
        let issuers = policies
            .iter()
            .map(|p| {
                Arc::new(Issuer {
                    policy: p.clone(),
                    keys: IssuerKeys::default(),
                })
            })
            .collect::<Vec<_>>();
        let fetcher = if issuers.is_empty() {
            Fetcher::without_client()
        } else {
            Fetcher::new()
        };
        Issuers {
            inner: Arc::new(Inner {
                issuers,
                cache: TokenCache::default(),
                fetcher,
                clock,
                max_lifetime,
            }),
        }
    }

    /// No external issuer: every token goes to the local verifier.
    pub fn none() -> Self {
        Issuers::new(&[], Clock::system(), Duration::ZERO)
    }

    pub fn issuers(&self) -> &[Arc<Issuer>] {
        &self.inner.issuers
    }

    /// The verdict on `token` if a configured external issuer signed it
    /// (by its unverified `iss`); `None` leaves it to the local verifier,
    /// which refuses any issuer but its own.
    pub async fn verify(&self, token: &str) -> Option<Result<Actor, IssuerError>> {
        if self.inner.issuers.is_empty() || token.len() > MAX_TOKEN_LEN {
            return None;
        }
        let iss = unverified_issuer(token)?;
        let index = self
            .inner
            .issuers
            .iter()
            .position(|i| i.policy.issuer == iss)?;
        Some(self.verify_with(index, token).await)
    }

    async fn verify_with(&self, index: usize, token: &str) -> Result<Actor, IssuerError> {
        let inner = &*self.inner;
        let issuer = &inner.issuers[index];
        let digest = cache::digest(token);
        if let Some((cached_by, hit)) = inner.cache.get(&digest) {
            if cached_by == index && issuer.keys.current().holds(&hit.key) {
                if let Err(e) = check_time(hit.exp, hit.nbf, inner.clock.unix_seconds()) {
                    inner.cache.remove(&digest);
                    return Err(e.into());
                }
                return Ok(hit.actor);
            }
            // Its key is gone: verify it again (and refuse it).
            inner.cache.remove(&digest);
        }
        let header = jsonwebtoken::decode_header(token)?;
        if header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some()
        {
            return Err(TokenError::ForeignKeyHeader.into());
        }
        if !issuer.policy.algorithms.contains(&header.alg) {
            return Err(TokenError::Algorithm(header.alg).into());
        }
        let kid = header.kid.as_deref();
        let key = match issuer.keys.current().find(kid).cloned() {
            Some(key) => key,
            None => {
                issuer
                    .keys
                    .refetch_for_unknown_kid(&issuer.policy, &inner.fetcher, &inner.clock)
                    .await;
                issuer
                    .keys
                    .current()
                    .find(kid)
                    .cloned()
                    .ok_or(IssuerError::UnknownKey)?
            }
        };
        // The key decides the algorithm, not the header.
        if header.alg != key.alg {
            return Err(TokenError::Algorithm(header.alg).into());
        }
        let validation = validation(&issuer.policy, key.alg);
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)?.claims;
        let now = inner.clock.unix_seconds();
        let (exp, nbf, iat) = times(&claims)?;
        check_time(exp, nbf, now)?;
        check_lifetime(iat, exp, now, inner.max_lifetime)?;
        let actor = claims::actor(&issuer.policy.issuer, &issuer.policy.claims, &claims)?;
        let verified = cache::Verified {
            actor: actor.clone(),
            exp,
            nbf,
            key,
        };
        inner.cache.insert(digest, index, verified, now);
        Ok(actor)
    }

    /// Starts one background task per issuer that fetches its keys at once
    /// and then whenever they are due. The tasks end when the vault's state
    /// is dropped. `serve` calls this; without it keys are fetched when the
    /// first token of an issuer arrives.
    pub fn spawn_refresh(&self) {
        for issuer in &self.inner.issuers {
            let issuer = Arc::downgrade(issuer);
            let inner = Arc::downgrade(&self.inner);
            tokio::spawn(async move {
                loop {
                    let (Some(issuer), Some(inner)) = (issuer.upgrade(), inner.upgrade()) else {
                        break;
                    };
                    issuer
                        .keys
                        .refresh_if_due(&issuer.policy, &inner.fetcher, &inner.clock)
                        .await;
                    drop((issuer, inner));
                    tokio::time::sleep(TICK).await;
                }
            });
        }
    }

    /// How many verified tokens are cached (for tests and metrics).
    pub fn cached_tokens(&self) -> usize {
        self.inner.cache.len()
    }
}

/// For `arkku policy check`: what an issuer's keys are, reading a
/// `jwks_file` (which must hold a usable key) but not fetching a URL.
pub fn check_key_source(policy: &IssuerPolicy) -> Result<String, String> {
    use crate::policy::issuers::{KeySource, RoleSource};
    let algs = policy
        .algorithms
        .iter()
        .map(|a| format!("{a:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let role = match &policy.claims.role {
        RoleSource::Claim(c) => format!("role from claim {c:?}"),
        RoleSource::Fixed(r) => format!("role {}", r.as_str()),
    };
    let keys = match &policy.keys {
        KeySource::Uri(url) => format!("keys fetched from {url}"),
        KeySource::File(path) => {
            let shown = path.display();
            let bytes = fetch::read_file_blocking(path).map_err(|e| e.to_string())?;
            let (set, _) = jwks::KeySet::parse(&bytes, &policy.algorithms, &Default::default())
                .map_err(|e| format!("{:?}: {e}", shown.to_string()))?;
            format!("keys {:?} from {shown}", set.kids())
        }
    };
    Ok(format!(
        "audience {:?}, {algs}, {keys}, {role}",
        policy.audience
    ))
}

/// The validation of a token of `policy` signed with a key pinned to `alg`.
/// `exp` and `nbf` are checked against the vault's clock afterwards.
fn validation(policy: &IssuerPolicy, alg: Algorithm) -> Validation {
    let mut v = Validation::new(alg);
    v.algorithms = vec![alg];
    v.leeway = LEEWAY_SECS;
    v.validate_exp = false;
    v.validate_nbf = false;
    v.set_issuer(&[&policy.issuer]);
    v.set_audience(&[&policy.audience]);
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v
}

/// `exp` (required), `nbf` and `iat` as whole seconds.
fn times(claims: &Map<String, Value>) -> Result<(u64, Option<u64>, Option<u64>), TokenError> {
    let num = |name: &'static str| match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or(TokenError::Claim(name)),
    };
    let exp = num("exp")?.ok_or(TokenError::Claim("exp"))?;
    Ok((exp, num("nbf")?, num("iat")?))
}

/// The `iss` of a JWT, read without verifying anything: only to choose the
/// verifier. Anything unreadable is left to the local verifier to refuse.
fn unverified_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let payload = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(p), Some(_), None) => p,
        _ => return None,
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Unverified>(&bytes).ok()?.iss
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    #[test]
    fn the_issuer_is_read_from_the_payload() {
        let t = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"RS256"}"#),
            b64(r#"{"iss":"https://sso","sub":"x"}"#)
        );
        assert_eq!(unverified_issuer(&t).as_deref(), Some("https://sso"));
    }

    #[test]
    fn an_unreadable_token_has_no_issuer() {
        for t in [
            "".to_owned(),
            "a.b".to_owned(),
            format!("h.{}.s.extra", b64(r#"{"iss":"x"}"#)),
            "h.!!!.s".to_owned(),
            format!("h.{}.s", b64(r#"{"iss":5}"#)),
            format!("h.{}.s", b64("[1]")),
            format!("h.{}.s", b64(r#"{"sub":"x"}"#)),
        ] {
            assert_eq!(unverified_issuer(&t), None, "{t}");
        }
    }
}
