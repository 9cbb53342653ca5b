//! The OAuth 2.0 client-credentials grant (RFC 6749 §4.4) and token
//! revocation (RFC 7009): the client authenticates with its id and secret,
//! and gets a token of its role, channel and purposes (narrowed by `scope`),
//! or revokes one of its own tokens.
//!
//! Authenticating a client keeps argon2 off the data path: a secret already
//! verified in this process is recognised without it
//! ([`crate::identity::verified`]); otherwise the client id and the peer
//! must have attempts left ([`crate::identity::attempts`], 429 before
//! argon2 runs), and the verification waits for a free slot of the bounded
//! hasher (503 when it stays busy). An unknown client id is verified against
//! a dummy hash, and a revoked client against its own, so both take as long
//! as a known one.
//!
//! Every attempt is audited (`auth.token`, `auth.revoke`): the client id
//! when it is one, the outcome, and on failure the OAuth error code as
//! `code`; never a secret or a token.

use std::{net::IpAddr, time::Duration};

use uuid::Uuid;
use zeroize::Zeroizing;

use super::Profile;
use crate::{
    audit::{Action, Decision},
    domain::Actor,
    identity::{
        client_credentials::{ClientCredentials, CredentialError},
        scope,
        secret_hash::HashError,
    },
    service::{audited::AuditScope, error::AuthFailure, Error, Services},
    store::{self, clients::ClientRow, to_micros},
    token::{Provenance, TokenRequest},
};

/// The one grant type served.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// An OAuth error (RFC 6749 §5.2, with the registered extensions the vault
/// needs), answered in the RFC's JSON format rather than problem+json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthError {
    /// The request is malformed: a missing or repeated parameter, a body
    /// that is not a form, two client authentications at once. 400.
    InvalidRequest(&'static str),
    /// Client authentication failed: unknown client, wrong secret, revoked
    /// client, or no authentication. 401 with `WWW-Authenticate`.
    InvalidClient,
    /// The scope asks for a purpose the client does not have. 400.
    InvalidScope,
    /// A grant type other than `client_credentials`. 400.
    UnsupportedGrantType,
    /// Too many secret verifications for this client id or peer: 429 with
    /// `Retry-After` (`slow_down`, RFC 8628's code for "ask less often").
    SlowDown { retry_after_secs: u64 },
    /// The hasher, the database or the audit log cannot serve now: 503 with
    /// `Retry-After`; nothing was issued.
    TemporarilyUnavailable { retry_after_secs: u64 },
    /// An unexpected error, logged with the request id. 500.
    ServerError,
}

impl OAuthError {
    /// The `error` code of the response.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient => "invalid_client",
            OAuthError::InvalidScope => "invalid_scope",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::SlowDown { .. } => "slow_down",
            OAuthError::TemporarilyUnavailable { .. } => "temporarily_unavailable",
            OAuthError::ServerError => "server_error",
        }
    }

    /// The `error_description`: what went wrong, never a submitted value.
    pub fn description(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(why) => why,
            OAuthError::InvalidClient => "client authentication failed",
            OAuthError::InvalidScope => "the scope names a purpose this client does not have",
            OAuthError::UnsupportedGrantType => "only grant_type=client_credentials is supported",
            OAuthError::SlowDown { .. } => {
                "too many failed client authentications; retry after Retry-After seconds"
            }
            OAuthError::TemporarilyUnavailable { .. } => {
                "the vault cannot issue tokens right now; nothing was issued, retry later"
            }
            OAuthError::ServerError => "internal error",
        }
    }
}

impl From<Error> for OAuthError {
    fn from(e: Error) -> Self {
        match e {
            Error::AuditUnavailable | Error::DatabaseUnavailable => {
                OAuthError::TemporarilyUnavailable {
                    retry_after_secs: 1,
                }
            }
            Error::Busy { retry_after_secs } => {
                OAuthError::TemporarilyUnavailable { retry_after_secs }
            }
            _ => OAuthError::ServerError,
        }
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        Error::from(e).into()
    }
}

/// A token request, as the HTTP edge read it.
pub struct TokenGrant {
    pub grant_type: Option<String>,
    pub scope: Option<String>,
    pub credentials: Result<ClientCredentials, CredentialError>,
    /// The peer's address, for the per-peer attempt limit.
    pub peer: Option<IpAddr>,
}

/// A revocation request, as the HTTP edge read it.
pub struct TokenRevocation {
    pub token: Option<Zeroizing<String>>,
    pub credentials: Result<ClientCredentials, CredentialError>,
    pub peer: Option<IpAddr>,
}

/// An issued token (RFC 6749 §5.1).
pub struct IssuedToken {
    pub access_token: Zeroizing<String>,
    pub expires_in: u64,
    pub scope: String,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// `POST /oauth/token`: a token for an authenticated client, once its
/// `auth.token` entry is durable.
pub async fn issue_token(
    s: &Services,
    request: Result<TokenGrant, OAuthError>,
) -> Result<IssuedToken, OAuthError> {
    let mut scope = anonymous(Action::AuthToken);
    let outcome = grant(s, request, &mut scope).await;
    record(s, scope, outcome).await
}

async fn grant(
    s: &Services,
    request: Result<TokenGrant, OAuthError>,
    audit: &mut AuditScope,
) -> Result<IssuedToken, OAuthError> {
    let req = request?;
    match req.grant_type.as_deref() {
        None => return Err(OAuthError::InvalidRequest("grant_type is required")),
        Some(CLIENT_CREDENTIALS) => {}
        Some(_) => return Err(OAuthError::UnsupportedGrantType),
    }
    let creds = credentials(req.credentials)?;
    let (row, profile) = authenticate(s, &creds, req.peer, audit).await?;
    let purposes = scope::narrow(&profile.purposes, req.scope.as_deref())
        .map_err(|_| OAuthError::InvalidScope)?;
    let ttl = Duration::from_secs(profile.token_ttl_secs).min(s.policies.limits.token_max_lifetime);
    let id = row.id.to_string();
    let jti = Uuid::now_v7().to_string();
    let actor = Actor {
        sub: id.clone(),
        role: profile.role,
        purposes: purposes.clone(),
        channel: profile.channel.clone(),
        client: Some(id.clone()),
        customer: None,
    };
    audit.act_as(&actor);
    audit.detail("jti", jti.clone());
    let names: Vec<String> = purposes.iter().map(|p| p.to_string()).collect();
    let token = s
        .issuer
        .issue(
            &TokenRequest {
                role: profile.role,
                sub: &id,
                purposes: &names,
                channel: profile.channel.as_ref(),
                ttl,
            },
            &Provenance {
                client: Some(&id),
                jti: Some(&jti),
            },
            s.clock.now(),
        )
        .map_err(|e| OAuthError::from(Error::internal(&e)))?;
    s.metrics.token_issued("client");
    if let Some(r) = s.auth.revocations() {
        r.client_added(row.id);
    }
    Ok(IssuedToken {
        access_token: Zeroizing::new(token),
        expires_in: ttl.as_secs(),
        scope: scope::render(&purposes),
    })
}

/// `POST /oauth/revoke`: revokes `token` when it is one of the client's own;
/// any other token (unknown, expired, another client's) is left alone and
/// answered the same (RFC 7009 §2.2).
pub async fn revoke_token(
    s: &Services,
    request: Result<TokenRevocation, OAuthError>,
) -> Result<(), OAuthError> {
    let mut scope = anonymous(Action::AuthRevoke);
    let outcome = revoke(s, request, &mut scope).await;
    record(s, scope, outcome).await
}

async fn revoke(
    s: &Services,
    request: Result<TokenRevocation, OAuthError>,
    audit: &mut AuditScope,
) -> Result<(), OAuthError> {
    let req = request?;
    let token = req
        .token
        .filter(|t| !t.is_empty())
        .ok_or(OAuthError::InvalidRequest("token is required"))?;
    let creds = credentials(req.credentials)?;
    let (row, profile) = authenticate(s, &creds, req.peer, audit).await?;
    let id = row.id.to_string();
    audit.act_as(&Actor {
        sub: id.clone(),
        role: profile.role,
        purposes: profile.purposes,
        channel: profile.channel,
        client: Some(id.clone()),
        customer: None,
    });
    let own = s
        .auth
        .local()
        .verify_claims(&token)
        .ok()
        .filter(|v| v.actor.client.as_deref() == Some(id.as_str()));
    let Some((jti, exp)) = own.and_then(|v| v.jti.map(|j| (j, v.exp))) else {
        audit.detail("revoked", false);
        return Ok(());
    };
    audit.detail("revoked", true);
    audit.detail("jti", jti.clone());
    audit.commit_before_write(s).await?;
    let exp = i64::try_from(exp)
        .ok()
        .and_then(|e| e.checked_mul(1_000_000))
        .unwrap_or(i64::MAX);
    store::clients::revoke_token(&s.db, &jti, row.id, exp, to_micros(s.clock.now())).await?;
    if let Some(r) = s.auth.revocations() {
        r.token_revoked(&jti);
    }
    Ok(())
}

/// An entry for a caller not yet authenticated (recorded as `anonymous`
/// until the client is).
fn anonymous(action: Action) -> AuditScope {
    AuditScope::new(&Err(Error::Unauthenticated(AuthFailure::Missing)), action)
}

/// Appends the entry of `outcome` and returns it; if the entry cannot be
/// written nothing is released (503).
async fn record<T>(
    s: &Services,
    mut scope: AuditScope,
    outcome: Result<T, OAuthError>,
) -> Result<T, OAuthError> {
    let decision = match &outcome {
        Ok(_) => Decision::Allow,
        Err(e) => {
            scope.detail("code", e.code());
            s.metrics.auth_failure("client", e.code());
            Decision::Deny
        }
    };
    scope.record(s, decision).await?;
    outcome
}

/// The one client authentication of the request, or why there is none.
fn credentials(
    c: Result<ClientCredentials, CredentialError>,
) -> Result<ClientCredentials, OAuthError> {
    c.map_err(|e| match e {
        CredentialError::Ambiguous => OAuthError::InvalidRequest(
            "use one client authentication: HTTP Basic or client_id and client_secret",
        ),
        CredentialError::Missing | CredentialError::Malformed => OAuthError::InvalidClient,
    })
}

/// The live client `creds` authenticate, with what its tokens say.
///
/// A secret this process verified before is recognised without argon2 and
/// without counting; any other attempt is counted against the client id
/// and the peer first, so a guess past their budgets costs neither a query
/// nor argon2.
async fn authenticate(
    s: &Services,
    creds: &ClientCredentials,
    peer: Option<IpAddr>,
    audit: &mut AuditScope,
) -> Result<(ClientRow, Profile), OAuthError> {
    let id = Uuid::parse_str(&creds.id).ok();
    if let Some(id) = id {
        audit.detail("client_id", id.to_string());
    }
    let count = || {
        s.client_attempts
            .check(&creds.id, peer)
            .map_err(|secs| OAuthError::SlowDown {
                retry_after_secs: secs,
            })
    };
    let remembered = s.client_secrets.recall(&creds.id, &creds.secret);
    if remembered.is_none() {
        count()?;
    }
    let row = match id {
        Some(id) => store::clients::get(&s.db, id).await?,
        None => None,
    };
    let now = to_micros(s.clock.now());
    let usable = row
        .as_ref()
        .map(|r| usable_hashes(r, now))
        .unwrap_or_default();
    let known = remembered
        .as_deref()
        .is_some_and(|phc| usable.contains(&phc));
    if !known {
        if remembered.is_some() {
            // Verified before, against a hash it may no longer use.
            count()?;
        }
        verify(s, creds, row.as_ref(), &usable).await?;
    }
    let row = row
        .filter(|r| r.revoked_at.is_none())
        .ok_or(OAuthError::InvalidClient)?;
    let profile = Profile::of(&row).map_err(OAuthError::from)?;
    Ok((row, profile))
}

/// The hashes a live client's secret may match at `now`: the current one,
/// and the one before a rotation until its grace period ends. None for a
/// revoked client.
fn usable_hashes(r: &ClientRow, now: i64) -> Vec<&str> {
    if r.revoked_at.is_some() {
        return Vec::new();
    }
    let mut hashes = vec![r.secret_phc.as_str()];
    if let (Some(prev), Some(until)) = (&r.previous_secret_phc, r.previous_valid_until) {
        if now < until {
            hashes.push(prev.as_str());
        }
    }
    hashes
}

/// Runs argon2 against each usable hash in turn (an unknown client against
/// the dummy, a revoked one against its own hash, so that each costs what
/// a known client costs); remembers a match.
async fn verify(
    s: &Services,
    creds: &ClientCredentials,
    row: Option<&ClientRow>,
    usable: &[&str],
) -> Result<(), OAuthError> {
    let busy = |e: HashError| match e {
        HashError::Busy => OAuthError::TemporarilyUnavailable {
            retry_after_secs: 1,
        },
        other => OAuthError::from(Error::internal(&other)),
    };
    if usable.is_empty() {
        let stored = row.map(|r| r.secret_phc.as_str());
        s.hasher
            .verify(stored, creds.secret.clone())
            .await
            .map_err(busy)?;
        return Err(OAuthError::InvalidClient);
    }
    for phc in usable {
        if s.hasher
            .verify(Some(phc), creds.secret.clone())
            .await
            .map_err(busy)?
        {
            s.client_secrets.remember(&creds.id, phc, &creds.secret);
            return Ok(());
        }
    }
    Err(OAuthError::InvalidClient)
}
