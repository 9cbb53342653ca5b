//! Integration clients: support tools, phone systems and CRM syncs that get
//! their own tokens instead of the issuer key.
//!
//! - [`admin`]: register, list, read, revoke a client and rotate its secret,
//!   as role `admin` over HTTP or as the [`super::operator::Operator`] from
//!   `arkku clients`; audited as `client.*`.
//! - [`grant`]: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4) and
//!   token revocation (RFC 7009), audited as `auth.token` and `auth.revoke`.
//!
//! A secret is shown once, when it is made, and stored only as an argon2id
//! PHC string. A client's tokens carry its id (`client`) and their own id
//! (`jti`): revoking the client, or the token, refuses them on every node
//! ([`crate::identity::revocation`]). Rotating the secret leaves tokens
//! already issued valid until they expire; the old secret keeps working for
//! the grace period given, then not.

pub mod admin;
pub mod grant;

use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{views::rfc3339, Error};
use crate::{
    domain::{ChannelId, Purpose, Role},
    store::{clients::ClientRow, from_micros},
};

/// The roles a client may have: the ones that work on customer data for a
/// purpose. Customers sign in themselves; admins are people.
pub const CLIENT_ROLES: [Role; 3] = [Role::Agent, Role::Service, Role::Compliance];

/// A new client's token lifetime when none is given (15 minutes).
pub const DEFAULT_TOKEN_TTL_SECS: u64 = 15 * 60;
/// The shortest token lifetime a client may be given.
pub const MIN_TOKEN_TTL_SECS: u64 = 60;
/// The old secret's grace period after a rotation when none is given (24 hours).
pub const DEFAULT_GRACE_SECS: u64 = 24 * 3600;
/// The longest grace period (30 days).
pub const MAX_GRACE_SECS: u64 = 30 * 24 * 3600;

/// A client to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// A name for people (the help desk's product, say); 1 to 100 characters.
    #[schema(example = "helpdesk")]
    pub name: String,
    /// `agent`, `service` or `compliance`.
    #[schema(example = "agent")]
    pub role: String,
    /// The purposes its tokens may read for; each must allow the role.
    #[schema(example = json!(["support"]))]
    pub purposes: Vec<String>,
    /// For agents: the channel it serves.
    #[schema(example = "chat")]
    pub channel: Option<String>,
    /// How long its tokens live, in seconds (default 900; at least 60, at
    /// most the policy's longest token lifetime).
    pub token_ttl_seconds: Option<u64>,
}

/// A secret rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the old secret keeps working, in seconds (default 86400, at
    /// most 30 days; 0 ends it at once).
    pub grace_seconds: Option<u64>,
}

/// A client as an admin sees it: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    pub client_id: Uuid,
    pub name: String,
    pub role: String,
    pub purposes: Vec<String>,
    pub channel: Option<String>,
    pub token_ttl_seconds: u64,
    #[schema(example = "2026-11-23T18:37:24.123456Z")]
    pub created_at: String,
    /// When the secret was last rotated.
    pub secret_rotated_at: Option<String>,
    /// Until when the secret before the last rotation still works.
    pub previous_secret_valid_until: Option<String>,
    /// Set once the client is revoked: its tokens are refused.
    pub revoked_at: Option<String>,
}

impl From<&ClientRow> for ClientView {
    fn from(c: &ClientRow) -> Self {
        ClientView {
            client_id: c.id,
            name: c.name.clone(),
            role: c.role.clone(),
            purposes: c.purposes.split_whitespace().map(str::to_owned).collect(),
            channel: c.channel.clone(),
            token_ttl_seconds: u64::try_from(c.token_ttl_secs).unwrap_or(0),
            created_at: rfc3339(from_micros(c.created_at)),
            secret_rotated_at: c.secret_rotated_at.map(|t| rfc3339(from_micros(t))),
            previous_secret_valid_until: c.previous_valid_until.map(|t| rfc3339(from_micros(t))),
            revoked_at: c.revoked_at.map(|t| rfc3339(from_micros(t))),
        }
    }
}

/// A client with the secret just made for it: the only answer that holds a
/// secret, and only once.
#[derive(Serialize, ToSchema)]
pub struct ClientWithSecret {
    pub client: ClientView,
    /// Shown once; the vault keeps only an argon2id hash of it.
    #[serde(serialize_with = "reveal_once")]
    #[schema(value_type = String, example = "arkku_cs_Q2hhbmdlIG1lIGFuZCBrZWVwIG1lIHNlY3JldC4uLg")]
    pub client_secret: Zeroizing<String>,
}

impl std::fmt::Debug for ClientWithSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientWithSecret")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

fn reveal_once<S: Serializer>(v: &Zeroizing<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

/// Every client.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    pub clients: Vec<ClientView>,
}

/// What a client's tokens say, read back from its row.
#[derive(Debug, Clone)]
pub struct Profile {
    pub role: Role,
    pub purposes: Vec<Purpose>,
    pub channel: Option<ChannelId>,
    pub token_ttl_secs: u64,
}

impl Profile {
    /// Parses a stored row; a row that does not parse (edited by hand) is
    /// an internal error, never a token.
    pub fn of(c: &ClientRow) -> Result<Self, Error> {
        let corrupt = || Error::internal(&"a clients row does not parse");
        let role: Role = c.role.parse().map_err(|_| corrupt())?;
        if !CLIENT_ROLES.contains(&role) {
            return Err(corrupt());
        }
        let purposes = c
            .purposes
            .split_whitespace()
            .map(Purpose::parse)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| corrupt())?;
        let channel = c
            .channel
            .as_deref()
            .map(ChannelId::parse)
            .transpose()
            .map_err(|_| corrupt())?;
        Ok(Profile {
            role,
            purposes,
            channel,
            token_ttl_secs: u64::try_from(c.token_ttl_secs).map_err(|_| corrupt())?,
        })
    }
}
