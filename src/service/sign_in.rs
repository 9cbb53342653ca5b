//! Customer sign-in by one-time code (DESIGN.md §12.3): `start` sends a code
//! to a contact point the vault already holds, `verify` trades it for a
//! customer token. Neither takes a token; both are audited (`auth.sign_in_start`,
//! `auth.sign_in`) with the caller as `anonymous`.
//!
//! **No enumeration.** `start` answers 202 `{challenge_id}` whatever the
//! value: a value that matches a live contact point of a customer who is not
//! erased, on a channel `channels.toml` allows for sign-in, gets a code and
//! a message in the outbox; any other value gets a challenge of the same
//! shape that can never verify, stored the same way, so that `verify`
//! answers it as it answers a wrong code. Both paths do the same lookup, one
//! keyed hash and one insert; only the known one also seals and inserts the
//! message (in the same transaction). A value that several customers hold
//! signs in none of them (the code could not say which one is meant).
//!
//! **What is kept.** The challenge holds a keyed hash of the code
//! ([`crate::identity::sign_in::code`]); the outbox message is sealed. The
//! code is never logged, returned or audited.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    audited::{finish, AuditScope},
    contact::ParsedContact,
    Error, Services,
};
use crate::{
    audit::Action,
    domain::Role,
    identity::{
        notify,
        sign_in::{judge, Checked, OneTimeCode, CODE_TTL, TOKEN_TTL},
    },
    store::{
        self,
        outbox::NewMessage,
        sign_in::{Holder, NewChallenge},
    },
    token::TokenRequest,
};

/// `POST /v1/auth/customer/start`'s body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartSignIn {
    /// A channel of `channels.toml` that allows sign-in (shipped: `email`, `phone`, `sms`).
    #[schema(example = "email")]
    pub channel: String,
    /// The contact value, in any spelling its channel accepts.
    #[schema(example = "pena@example.com")]
    pub value: String,
}

/// A sign-in begun: the id to send back with the code.
#[derive(Serialize, ToSchema)]
pub struct SignInStarted {
    pub challenge_id: Uuid,
}

/// `POST /v1/auth/customer/verify`'s body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifySignIn {
    pub challenge_id: Uuid,
    /// The 8 digits the customer received.
    #[schema(example = "04718265")]
    pub code: String,
}

/// A customer token, as a sign-in hands it out.
#[derive(Serialize, ToSchema)]
pub struct CustomerToken {
    /// A JWT with role `customer` and `sub` the customer's id.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until it expires.
    #[schema(example = 900)]
    pub expires_in: u64,
}

/// Why a start sent no code (recorded in the audit entry only).
#[derive(Debug, Clone, Copy)]
enum NoCode {
    NotASignInChannel,
    NoMatch,
    Ambiguous,
}

impl NoCode {
    fn as_str(self) -> &'static str {
        match self {
            NoCode::NotASignInChannel => "not_a_sign_in_channel",
            NoCode::NoMatch => "no_match",
            NoCode::Ambiguous => "ambiguous",
        }
    }
}

/// Begins a sign-in: 202 `{challenge_id}` whether or not a code was sent.
pub async fn start(
    svc: &Services,
    peer: Option<IpAddr>,
    input: Result<StartSignIn, Error>,
) -> Result<SignInStarted, Error> {
    let mut scope = AuditScope::anonymous(Action::AuthSignInStart);
    let outcome = start_in(svc, peer, input, &mut scope).await;
    let queued = scope.customer_id.is_some();
    let answer = finish(svc, scope, outcome).await;
    if answer.is_ok() && queued {
        svc.sign_in.wake_notifier();
    }
    answer
}

async fn start_in(
    svc: &Services,
    peer: Option<IpAddr>,
    input: Result<StartSignIn, Error>,
    scope: &mut AuditScope,
) -> Result<SignInStarted, Error> {
    let body = input?;
    svc.sign_in.limiter.start_from(peer)?;
    let contact = svc.parse_contact(&body.channel, &body.value)?;
    let channel = contact.channel.as_str();
    scope.channel = Some(channel.to_owned());
    let index = svc.blind.compute(channel, contact.value.index_key());
    svc.sign_in.limiter.start_for_value(&index)?;
    let now = svc.clock.now();
    let target = signing_in(svc, &contact, &index, now).await?;
    let id = Uuid::now_v7();
    let code = svc.sign_in.new_code().map_err(|e| Error::internal(&e))?;
    let expires_at = store::to_micros(now + CODE_TTL);
    let challenge = NewChallenge {
        id,
        customer_id: target.ok(),
        channel: channel.to_owned(),
        code_hash: svc.sign_in.keys.hash(id, &code),
        created_at: store::to_micros(now),
        expires_at,
    };
    let message = match target {
        Ok(customer_id) => Some(message(svc, customer_id, &contact, &code, now, expires_at)?),
        Err(_) => None,
    };
    scope.customer_id = challenge.customer_id;
    scope.detail("challenge_id", id.to_string());
    scope.detail(
        "outcome",
        target.map_or_else(NoCode::as_str, |_| "code_queued"),
    );
    scope.commit_before_write(svc).await?;
    store::sign_in::insert(&svc.db, &challenge, message.as_ref()).await?;
    Ok(SignInStarted { challenge_id: id })
}

/// The customer a code for this value goes to, or why there is none: the
/// channel must allow sign-in, and exactly one customer who is not erased
/// must hold the value on a contact point within its retention.
async fn signing_in(
    svc: &Services,
    contact: &ParsedContact,
    index: &[u8; 32],
    now: OffsetDateTime,
) -> Result<Result<Uuid, NoCode>, Error> {
    let Some((_, policy)) = svc.policies.channel(contact.channel.as_str()) else {
        return Ok(Err(NoCode::NotASignInChannel));
    };
    if !policy.sign_in {
        return Ok(Err(NoCode::NotASignInChannel));
    }
    let retention =
        time::Duration::try_from(policy.contact_retention).unwrap_or(time::Duration::MAX);
    let holders = store::sign_in::holders(&svc.db, contact.channel.as_str(), index, 2).await?;
    // Past its retention a contact point counts as gone, even before the sweeper deletes it.
    let live: Vec<Holder> = holders
        .into_iter()
        .filter(|h| {
            store::from_micros(h.last_activity_at)
                .checked_add(retention)
                .is_none_or(|until| until > now)
        })
        .collect();
    Ok(match live.as_slice() {
        [] => Err(NoCode::NoMatch),
        [only] => Ok(only.customer_id),
        _ => Err(NoCode::Ambiguous),
    })
}

/// The sealed outbox message that carries `code` to the contact point.
fn message(
    svc: &Services,
    customer_id: Uuid,
    contact: &ParsedContact,
    code: &OneTimeCode,
    now: OffsetDateTime,
    expires_at: store::Micros,
) -> Result<NewMessage, Error> {
    let id = Uuid::now_v7();
    let channel = contact.channel.as_str();
    let sealed = notify::seal_sign_in_code(
        svc.sign_in.keys.outbox(),
        id,
        customer_id,
        channel,
        contact.value.value(),
        code.expose(),
    )
    .map_err(|e| Error::internal(&e))?;
    Ok(NewMessage {
        id,
        kind: notify::SIGN_IN_CODE,
        customer_id,
        channel: channel.to_owned(),
        message: sealed,
        created_at: store::to_micros(now),
        expires_at,
    })
}

/// Trades a code for a customer token, or 400 `invalid_code` saying
/// nothing of why (the audit entry says why).
pub async fn verify(
    svc: &Services,
    peer: Option<IpAddr>,
    input: Result<VerifySignIn, Error>,
) -> Result<CustomerToken, Error> {
    let mut scope = AuditScope::anonymous(Action::AuthSignIn);
    let outcome = match check_code(svc, peer, input, &mut scope).await {
        Ok(customer) => customer_token(svc, customer),
        Err(e) => {
            svc.metrics.auth_failure("customer_code", e.code());
            Err(e)
        }
    };
    finish(svc, scope, outcome).await
}

/// The same check as [`verify`] (same limits, same audit entry, with
/// `via: web_session`), answering the customer's id for a privacy-page
/// session instead of a token: the page keeps its session server-side.
pub async fn verify_for_session(
    svc: &Services,
    peer: Option<IpAddr>,
    input: Result<VerifySignIn, Error>,
) -> Result<Uuid, Error> {
    let mut scope = AuditScope::anonymous(Action::AuthSignIn);
    scope.detail("via", "web_session");
    let outcome = check_code(svc, peer, input, &mut scope)
        .await
        .inspect_err(|e| svc.metrics.auth_failure("customer_code", e.code()));
    finish(svc, scope, outcome).await
}

/// Checks a code against its challenge (counting the attempt) and marks
/// the challenge used: the customer it signs in, or `invalid_code`.
async fn check_code(
    svc: &Services,
    peer: Option<IpAddr>,
    input: Result<VerifySignIn, Error>,
    scope: &mut AuditScope,
) -> Result<Uuid, Error> {
    let body = input?;
    svc.sign_in.limiter.verify_from(peer)?;
    let code = OneTimeCode::parse(&body.code)
        .ok_or_else(|| Error::InvalidRequest("code must be the 8 digits that were sent".into()))?;
    let id = body.challenge_id;
    scope.detail("challenge_id", id.to_string());
    let now = store::to_micros(svc.clock.now());
    let attempt = store::sign_in::attempt(&svc.db, id).await?;
    // The hash is compared in every case, so a refusal costs the same.
    let checked = attempt.map(|a| Checked {
        customer_id: a.customer_id,
        attempts: a.attempts,
        expires_at: a.expires_at,
        used: a.used_at.is_some(),
        code_matches: svc.sign_in.keys.matches(id, &code, &a.code_hash),
    });
    if checked.is_none() {
        let _ = svc.sign_in.keys.matches(id, &code, &[0; 32]);
    }
    scope.customer_id = checked.and_then(|c| c.customer_id);
    let customer = judge(checked, now).map_err(|why| {
        scope.detail("reason", why.as_str());
        Error::InvalidCode
    })?;
    if !store::sign_in::mark_used(&svc.db, id, now).await? {
        // Another check used it first, or the customer was erased meanwhile.
        scope.detail("reason", "already_used");
        return Err(Error::InvalidCode);
    }
    Ok(customer)
}

/// A token for `customer`: role `customer`, no purposes, 15 minutes (or
/// less, if the policy's token lifetime cap is shorter).
fn customer_token(svc: &Services, customer: Uuid) -> Result<CustomerToken, Error> {
    let ttl = TOKEN_TTL.min(svc.policies.limits.token_max_lifetime);
    let sub = customer.to_string();
    let access_token = svc
        .issuer
        .issue(
            &TokenRequest {
                role: Role::Customer,
                sub: &sub,
                purposes: &[],
                channel: None,
                ttl,
            },
            &crate::token::Provenance::default(),
            svc.clock.now(),
        )
        .map_err(|e| Error::internal(&e))?;
    svc.metrics.token_issued("customer");
    Ok(CustomerToken {
        access_token,
        token_type: "Bearer",
        expires_in: ttl.as_secs(),
    })
}
