//! Managing integration clients: register, list, read, revoke, rotate the
//! secret. Role `admin` (over HTTP) or the operator (`arkku clients`), each
//! audited as `client.*` with the client's id, never a secret. A change's
//! entry is committed before the change.

use std::time::Duration;

use uuid::Uuid;
use zeroize::Zeroizing;

use super::{
    ClientList, ClientView, ClientWithSecret, NewClient, RotateSecret, CLIENT_ROLES,
    DEFAULT_GRACE_SECS, DEFAULT_TOKEN_TTL_SECS, MAX_GRACE_SECS, MIN_TOKEN_TTL_SECS,
};
use crate::{
    audit::Action,
    domain::{Purpose, Role},
    identity::{client_credentials::new_secret, secret_hash::HashError},
    policy::{Operation, Policies},
    service::{audited::AuditScope, input::short_text, Caller, Error, Services},
    store::{self, clients::ClientRow, to_micros},
    token::Actor,
};

/// Registers a client and makes its secret, shown only in this answer.
pub async fn create(
    s: &Services,
    caller: &Caller,
    input: Result<NewClient, Error>,
) -> Result<ClientWithSecret, Error> {
    s.audited(caller, Action::ClientCreate, async |actor, scope| {
        s.authorise(actor, Operation::CreateClient, None, scope)?;
        let row = checked(&s.policies, input?)?;
        scope.detail("role", row.role.clone());
        let secret = fresh_secret()?;
        let row = ClientRow {
            id: Uuid::now_v7(),
            secret_phc: s.hasher.hash(secret.clone()).await.map_err(hash_error)?,
            created_at: to_micros(s.clock.now()),
            ..row
        };
        scope.detail("client_id", row.id.to_string());
        scope.commit_before_write(s).await?;
        store::clients::insert(&s.db, &row).await?;
        if let Some(r) = s.auth.revocations() {
            r.client_added(row.id);
        }
        Ok(ClientWithSecret {
            client: ClientView::from(&row),
            client_secret: secret,
        })
    })
    .await
}

/// Every client, revoked ones included.
pub async fn list(s: &Services, caller: &Caller) -> Result<ClientList, Error> {
    s.audited(caller, Action::ClientRead, async |actor, scope| {
        s.authorise(actor, Operation::ReadClients, None, scope)?;
        let rows = store::clients::list(&s.db).await?;
        scope.detail("count", rows.len());
        Ok(ClientList {
            clients: rows.iter().map(ClientView::from).collect(),
        })
    })
    .await
}

/// One client; 404 if there is none.
pub async fn show(
    s: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
) -> Result<ClientView, Error> {
    s.audited(caller, Action::ClientRead, async |actor, scope| {
        s.authorise(actor, Operation::ReadClients, None, scope)?;
        let row = load(s, id?, scope).await?;
        Ok(ClientView::from(&row))
    })
    .await
}

/// Revokes a client: its secret stops working and its tokens are refused,
/// by this process at once and by every other within two seconds. A second
/// revocation changes nothing.
pub async fn revoke(
    s: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
) -> Result<ClientView, Error> {
    s.audited(caller, Action::ClientRevoke, async |actor, scope| {
        s.authorise(actor, Operation::RevokeClient, None, scope)?;
        let row = load(s, id?, scope).await?;
        scope.commit_before_write(s).await?;
        store::clients::revoke(&s.db, row.id, to_micros(s.clock.now())).await?;
        if let Some(r) = s.auth.revocations() {
            r.client_revoked(row.id);
        }
        s.client_secrets.forget(&row.id.to_string());
        let row = store::clients::get(&s.db, row.id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(ClientView::from(&row))
    })
    .await
}

/// A new secret for a live client, shown only in this answer. The old one
/// keeps working for the grace period, then not; tokens already issued stay
/// valid until they expire.
pub async fn rotate_secret(
    s: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
    input: Result<RotateSecret, Error>,
) -> Result<ClientWithSecret, Error> {
    s.audited(caller, Action::ClientRotateSecret, async |actor, scope| {
        s.authorise(actor, Operation::RotateClientSecret, None, scope)?;
        let row = load(s, id?, scope).await?;
        let grace = input?.grace_seconds.unwrap_or(DEFAULT_GRACE_SECS);
        if grace > MAX_GRACE_SECS {
            return Err(Error::InvalidRequest(format!(
                "grace_seconds must be at most {MAX_GRACE_SECS} (30 days)"
            )));
        }
        if row.revoked_at.is_some() {
            return Err(Error::InvalidRequest(
                "the client is revoked; register a new one".into(),
            ));
        }
        scope.detail("grace_seconds", grace);
        let secret = fresh_secret()?;
        let phc = s.hasher.hash(secret.clone()).await.map_err(hash_error)?;
        let now = s.clock.now();
        let until = (grace > 0).then(|| to_micros(now + Duration::from_secs(grace)));
        scope.commit_before_write(s).await?;
        if !store::clients::rotate_secret(&s.db, row.id, &phc, until, to_micros(now)).await? {
            // Revoked meanwhile.
            return Err(Error::NotFound);
        }
        // The old secret stays remembered: it works until the grace period
        // ends, which the hashes it may match decide.
        let row = store::clients::get(&s.db, row.id)
            .await?
            .ok_or(Error::NotFound)?;
        Ok(ClientWithSecret {
            client: ClientView::from(&row),
            client_secret: secret,
        })
    })
    .await
}

/// The client `id`, named in the entry; 404 if there is none.
async fn load(s: &Services, id: Uuid, scope: &mut AuditScope) -> Result<ClientRow, Error> {
    scope.detail("client_id", id.to_string());
    store::clients::get(&s.db, id).await?.ok_or(Error::NotFound)
}

fn fresh_secret() -> Result<Zeroizing<String>, Error> {
    new_secret().map_err(|_| Error::internal(&"no randomness for a client secret"))
}

/// A busy hasher is 503 with `Retry-After`; anything else is internal.
pub fn hash_error(e: HashError) -> Error {
    match e {
        HashError::Busy => Error::Busy {
            retry_after_secs: 1,
        },
        other => Error::internal(&other),
    }
}

/// A new client's row from its request, every field checked against the
/// policies (the id, hash and time are filled in by the caller).
fn checked(policies: &Policies, new: NewClient) -> Result<ClientRow, Error> {
    let name = short_text("name", &new.name, 100)?;
    let role: Role = new
        .role
        .parse()
        .ok()
        .filter(|r| CLIENT_ROLES.contains(r))
        .ok_or_else(|| Error::InvalidRequest("role must be agent, service or compliance".into()))?;
    if new.purposes.is_empty() || new.purposes.len() > 32 {
        return Err(Error::InvalidRequest(
            "purposes must name 1 to 32 purposes".into(),
        ));
    }
    let mut purposes: Vec<&Purpose> = Vec::new();
    for p in &new.purposes {
        let (id, policy) = policies
            .purpose(p)
            .ok_or_else(|| Error::UnknownPurpose(p.chars().take(32).collect()))?;
        if !policy.roles.contains(&role) {
            return Err(Error::InvalidRequest(format!(
                "purpose {id} is not for role {}",
                role.as_str()
            )));
        }
        if !purposes.contains(&id) {
            purposes.push(id);
        }
    }
    let channel = match &new.channel {
        None => None,
        Some(_) if role != Role::Agent => {
            return Err(Error::InvalidRequest("channel is for agents only".into()))
        }
        Some(c) => Some(
            policies
                .channel(c)
                .ok_or_else(|| Error::UnknownChannel(c.chars().take(32).collect()))?
                .0
                .to_string(),
        ),
    };
    let max = policies.limits.token_max_lifetime.as_secs();
    let ttl = new
        .token_ttl_seconds
        .unwrap_or(DEFAULT_TOKEN_TTL_SECS.min(max));
    if ttl < MIN_TOKEN_TTL_SECS || ttl > max {
        return Err(Error::InvalidRequest(format!(
            "token_ttl_seconds must be {MIN_TOKEN_TTL_SECS} to {max} (the policy's longest token lifetime)"
        )));
    }
    Ok(ClientRow {
        id: Uuid::nil(),
        name,
        role: role.as_str().to_owned(),
        purposes: purposes
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        channel,
        token_ttl_secs: i64::try_from(ttl).unwrap_or(i64::MAX),
        secret_phc: String::new(),
        previous_secret_phc: None,
        previous_valid_until: None,
        created_at: 0,
        secret_rotated_at: None,
        revoked_at: None,
    })
}

/// The operator as the caller of these operations (`arkku clients …`): an
/// admin, recorded as `arkku-cli` with the command as its client.
pub fn operator_caller(operator: &crate::service::operator::Operator) -> Caller {
    let a = operator.actor();
    Ok(Actor {
        sub: a.sub.clone(),
        role: Role::Admin,
        purposes: Vec::new(),
        channel: None,
        client: a.client.clone(),
        customer: None,
    })
}
