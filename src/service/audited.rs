//! The one place a customer-data response leaves the vault.
//!
//! Every handler that touches customer data or keys builds an [`AuditScope`],
//! computes its outcome, and returns [`finish`]`(…)`: the entry (allow, or
//! deny with the error code) is appended durably first, and only then is the
//! response released. If the append fails or misses its deadline, the client
//! gets 503 `audit_unavailable` and nothing else, and the 503 is the truth:
//! an entry whose deadline passed before the audit writer claimed it is
//! withdrawn from its batch (recorded as `deny`, `audit_unavailable`, with
//! its effect dropped); one claimed first makes the request wait for the
//! commit's real outcome (see [`crate::audit::Claim`]).
//!
//! Writes go one step further: once a write is authorised and validated, its
//! entry is committed by [`AuditScope::commit_before_write`] *before* the data
//! changes, so no change is ever stored without its entry. The entry records
//! the decision (allow); should the write itself then fail (a conflict, an
//! outage), the client gets that error and the entry stands for the attempt.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{request, Error as ApiError, Services};
use crate::{
    audit::{Action, ActorRef, Decision, Effect, Entry},
    policy::Disclosure,
    token::Actor,
};

/// What the audit entry of one request will say.
pub struct AuditScope {
    actor: ActorRef,
    pub action: Action,
    pub customer_id: Option<Uuid>,
    /// The channel acted on; an agent's channel context until a handler names one.
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub reason: Option<String>,
    detail: Map<String, Value>,
    written: bool,
}

/// Who an entry names when the caller did not authenticate.
fn anonymous() -> ActorRef {
    ActorRef {
        sub: "anonymous".to_owned(),
        role: "none".to_owned(),
        client: None,
    }
}

impl AuditScope {
    /// A scope for a request whose caller may not have authenticated: an
    /// unauthenticated request is logged as `anonymous` with role `none`.
    pub fn new(auth: &Result<Actor, ApiError>, action: Action) -> Self {
        let (actor, channel) = match auth {
            Ok(a) => (
                ActorRef {
                    sub: a.sub.clone(),
                    role: a.role.as_str().to_owned(),
                    client: a.client.clone(),
                },
                a.channel.as_ref().map(|c| c.to_string()),
            ),
            Err(_) => (anonymous(), None),
        };
        AuditScope {
            actor,
            action,
            customer_id: None,
            channel,
            purpose: None,
            reason: None,
            detail: Map::new(),
            written: false,
        }
    }

    /// A scope for an actor that is not a token's, such as the operator at
    /// the vault host ([`super::operator::Operator::actor`]).
    pub fn for_actor(actor: ActorRef, action: Action) -> Self {
        AuditScope {
            actor,
            action,
            customer_id: None,
            channel: None,
            purpose: None,
            reason: None,
            detail: Map::new(),
            written: false,
        }
    }

    /// A scope for an operation that takes no token (customer sign-in): the
    /// caller is logged as `anonymous` with role `none`.
    pub fn anonymous(action: Action) -> Self {
        AuditScope {
            actor: anonymous(),
            action,
            customer_id: None,
            channel: None,
            purpose: None,
            reason: None,
            detail: Map::new(),
            written: false,
        }
    }

    /// The entry names `actor` from now on: for an operation whose caller
    /// authenticates inside it (the OAuth endpoints' clients).
    pub fn act_as(&mut self, actor: &Actor) {
        let named = AuditScope::new(&Ok(actor.clone()), self.action);
        self.actor = named.actor;
        self.channel = named.channel;
    }

    /// Appends the entry with `decision`, unless it was committed already
    /// ([`AuditScope::commit_before_write`]): for an operation whose errors
    /// are not the API's (the OAuth endpoints, which name their own `code`).
    /// Nothing may be released if this fails.
    pub async fn record(self, state: &Services, decision: Decision) -> Result<(), ApiError> {
        if self.written {
            return Ok(());
        }
        state
            .audit
            .append(self.into_entry(decision))
            .await
            .map(drop)
            .map_err(|e| {
                tracing::error!(error = %e, "audit append failed; releasing nothing");
                ApiError::AuditUnavailable
            })
    }

    pub fn customer(mut self, id: Option<Uuid>) -> Self {
        self.customer_id = id;
        self
    }

    /// Records every channel decision of a read with its reason code:
    /// `released` and `withheld`, each `[{channel, reason}]`.
    pub fn disclosure(&mut self, d: &Disclosure) {
        let list = |items: Vec<(&str, &'static str)>| {
            items
                .into_iter()
                .map(|(channel, reason)| serde_json::json!({"channel": channel, "reason": reason}))
                .collect::<Vec<_>>()
        };
        self.detail(
            "released",
            list(d.released().map(|(c, r)| (c, r.as_str())).collect()),
        );
        self.detail(
            "withheld",
            list(d.withheld().map(|(c, r)| (c, r.as_str())).collect()),
        );
    }

    /// Adds a detail field. Ids, counts, channel names and reason codes only.
    pub fn detail(&mut self, key: &str, value: impl Into<Value>) {
        self.detail.insert(key.to_owned(), value.into());
    }

    fn into_entry(self, decision: Decision) -> Entry {
        Entry {
            actor: self.actor,
            action: self.action,
            customer_id: self.customer_id,
            channel: self.channel,
            purpose: self.purpose,
            decision,
            reason: self.reason,
            request_id: request::id(),
            detail: Value::Object(self.detail),
        }
    }

    fn entry(&self, decision: Decision) -> Entry {
        Entry {
            actor: self.actor.clone(),
            action: self.action,
            customer_id: self.customer_id,
            channel: self.channel.clone(),
            purpose: self.purpose.clone(),
            decision,
            reason: self.reason.clone(),
            request_id: request::id(),
            detail: Value::Object(self.detail.clone()),
        }
    }

    /// Commits the (allow) entry of an authorised write together with the
    /// write itself, in one transaction (see [`Effect`]): both are durable,
    /// or neither. `Ok(false)`: the customer was erased meanwhile, so only
    /// the entry, standing for the attempt, was stored.
    pub async fn commit_with(
        &mut self,
        state: &Services,
        effect: Effect,
    ) -> Result<bool, ApiError> {
        self.written = true;
        state
            .audit
            .append_with(self.entry(Decision::Allow), effect)
            .await
            .map(|c| c.applied)
            .map_err(|e| {
                tracing::error!(error = %e, "audit append failed; the write is not performed");
                ApiError::AuditUnavailable
            })
    }

    /// Commits the (allow) entry of an authorised write before the write
    /// happens. On failure the handler must stop: 503, nothing changed.
    pub async fn commit_before_write(&mut self, state: &Services) -> Result<(), ApiError> {
        self.written = true;
        state
            .audit
            .append(self.entry(Decision::Allow))
            .await
            .map(drop)
            .map_err(|e| {
                tracing::error!(error = %e, "audit append failed; the write is not performed");
                ApiError::AuditUnavailable
            })
    }
}

impl Services {
    /// Runs one operation inside its audit entry: the one mechanism every
    /// operation goes through. `op` gets the authenticated actor and the
    /// entry to fill in (customer, channel, purpose, details); its outcome
    /// is then recorded (allow, or deny with the error code) and returned
    /// only once the entry is durable ([`finish`]). A caller that did not
    /// authenticate is recorded as `anonymous` and refused with its error.
    pub async fn audited<T>(
        &self,
        caller: &super::Caller,
        action: Action,
        op: impl AsyncFnOnce(&Actor, &mut AuditScope) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        self.audited_for(caller, action, None, op).await
    }

    /// [`Services::audited`] for an operation on the customer the request
    /// names: the entry names that customer even when the caller did not
    /// authenticate or was refused, so every attempt on a record is found
    /// under it.
    pub async fn audited_for<T>(
        &self,
        caller: &super::Caller,
        action: Action,
        customer: Option<Uuid>,
        op: impl AsyncFnOnce(&Actor, &mut AuditScope) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut scope = AuditScope::new(caller, action).customer(customer);
        let outcome = match caller {
            Ok(actor) => op(actor, &mut scope).await,
            Err(e) => Err(e.clone()),
        };
        finish(self, scope, outcome).await
    }
}

/// Appends the entry for `outcome`, then returns it (or 503
/// `audit_unavailable` if the append failed: nothing is released).
pub async fn finish<R>(
    state: &Services,
    mut scope: AuditScope,
    outcome: Result<R, ApiError>,
) -> Result<R, ApiError> {
    if scope.written {
        if let Err(e) = &outcome {
            tracing::info!(
                code = e.code(),
                "an audited write failed after its entry was committed"
            );
        }
        return outcome;
    }
    let decision = match &outcome {
        Ok(_) => Decision::Allow,
        Err(e) => {
            scope.detail("code", e.code());
            Decision::Deny
        }
    };
    match state.audit.append(scope.into_entry(decision)).await {
        Ok(_) => outcome,
        Err(e) => {
            tracing::error!(error = %e, "audit append failed; releasing nothing");
            Err(ApiError::AuditUnavailable)
        }
    }
}
