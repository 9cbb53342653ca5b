//! The one place a customer-data response leaves the vault.
//!
//! Every handler that touches customer data or keys builds an [`AuditScope`],
//! computes its outcome, and returns [`finish`]`(…)`: the entry (allow, or
//! deny with the error code) is appended durably first, and only then is the
//! response released. If the append fails or misses its deadline, the client
//! gets 503 `audit_unavailable` and nothing else.

use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{error::ApiError, request_id, AppState};
use crate::{
    audit::{Action, ActorRef, Decision, Entry},
    token::Actor,
};

/// What the audit entry of one request will say.
pub struct AuditScope {
    actor: ActorRef,
    pub action: Action,
    pub customer_id: Option<Uuid>,
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub reason: Option<String>,
    detail: Map<String, Value>,
}

impl AuditScope {
    pub fn new(actor: &Actor, action: Action) -> Self {
        AuditScope {
            actor: ActorRef {
                sub: actor.sub.clone(),
                role: actor.role.as_str().to_owned(),
                client: actor.client.clone(),
            },
            action,
            customer_id: None,
            channel: None,
            purpose: None,
            reason: None,
            detail: Map::new(),
        }
    }

    pub fn customer(mut self, id: Uuid) -> Self {
        self.customer_id = Some(id);
        self
    }

    /// Adds a detail field. Ids, counts, channel names and reason codes only.
    pub fn detail(&mut self, key: &str, value: impl Into<Value>) {
        self.detail.insert(key.to_owned(), value.into());
    }
}

/// Appends the entry for `outcome`, then releases it (or 503 if the append failed).
pub async fn finish<R: IntoResponse>(
    state: &AppState,
    mut scope: AuditScope,
    outcome: Result<R, ApiError>,
) -> Response {
    let decision = match &outcome {
        Ok(_) => Decision::Allow,
        Err(e) => {
            scope.detail("code", e.code());
            Decision::Deny
        }
    };
    let entry = Entry {
        actor: scope.actor,
        action: scope.action,
        customer_id: scope.customer_id,
        channel: scope.channel,
        purpose: scope.purpose,
        decision,
        reason: scope.reason,
        request_id: request_id::current(),
        detail: Value::Object(scope.detail),
    };
    match state.audit.append(entry).await {
        Ok(_) => match outcome {
            Ok(r) => r.into_response(),
            Err(e) => e.into_response(),
        },
        Err(e) => {
            tracing::error!(error = %e, "audit append failed; releasing nothing");
            ApiError::AuditUnavailable.into_response()
        }
    }
}
