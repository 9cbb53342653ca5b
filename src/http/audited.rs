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
    /// A scope for a request whose caller may not have authenticated: an
    /// unauthenticated request is logged as `anonymous` with role `none`.
    pub fn new(auth: &Result<Actor, ApiError>, action: Action) -> Self {
        let actor = match auth {
            Ok(a) => ActorRef {
                sub: a.sub.clone(),
                role: a.role.as_str().to_owned(),
                client: a.client.clone(),
            },
            Err(_) => ActorRef {
                sub: "anonymous".to_owned(),
                role: "none".to_owned(),
                client: None,
            },
        };
        AuditScope {
            actor,
            action,
            customer_id: None,
            channel: None,
            purpose: None,
            reason: None,
            detail: Map::new(),
        }
    }

    pub fn customer(mut self, id: Option<Uuid>) -> Self {
        self.customer_id = id;
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
