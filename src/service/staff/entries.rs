//! The audit entries of staff sign-in: `auth.sign_in` (allow, or deny with
//! the reason) and `auth.lockout`.
//!
//! The actor of an attempt on an existing account is that account (its id as
//! `sub`, its role), allowed or not, so that `GET /v1/audit?actor=<id>` shows
//! every attempt on it, the failures that led to a lock included; the
//! `decision` says whether the attempt proved the identity. An attempt on a
//! name that has no account is `anonymous`, and the name typed is not
//! recorded: people type their password into the name field, and the log
//! would keep it.

use std::net::IpAddr;

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::{
    audit::{Action, ActorRef, Decision, Entry},
    domain::time::rfc3339,
    service::{request, Error, Services},
    store::staff::StaffRow,
};

/// The actor an account's entries name.
pub(super) fn account_actor(row: &StaffRow) -> ActorRef {
    ActorRef {
        sub: row.id.to_string(),
        role: row.role.clone(),
        client: None,
    }
}

fn anonymous() -> ActorRef {
    ActorRef {
        sub: "anonymous".to_owned(),
        role: "none".to_owned(),
        client: None,
    }
}

/// The detail every sign-in entry carries: the account (if any) and peer.
fn base_detail(row: Option<&StaffRow>, peer: Option<IpAddr>) -> Map<String, Value> {
    let mut detail = Map::new();
    if let Some(row) = row {
        detail.insert("user_id".into(), json!(row.id));
        detail.insert("name".into(), json!(row.name));
    }
    if let Some(peer) = peer {
        detail.insert("peer".into(), json!(peer.to_string()));
    }
    detail
}

fn entry(actor: ActorRef, action: Action, decision: Decision, detail: Map<String, Value>) -> Entry {
    Entry {
        actor,
        action,
        customer_id: None,
        channel: None,
        purpose: None,
        decision,
        reason: None,
        request_id: request::id(),
        detail: Value::Object(detail),
    }
}

/// The `auth.sign_in` entry of one attempt: allow (no reason), or deny with
/// its reason code.
pub(super) fn sign_in(
    row: Option<&StaffRow>,
    peer: Option<IpAddr>,
    denied: Option<&'static str>,
) -> Entry {
    let mut detail = base_detail(row, peer);
    let decision = match denied {
        None => Decision::Allow,
        Some(reason) => {
            detail.insert("reason".into(), json!(reason));
            Decision::Deny
        }
    };
    let actor = row.map_or_else(anonymous, account_actor);
    entry(actor, Action::AuthSignIn, decision, detail)
}

/// The `auth.lockout` entry of the failure that locked `row` until `until`.
pub(super) fn lockout(row: &StaffRow, peer: Option<IpAddr>, until: OffsetDateTime) -> Entry {
    let mut detail = base_detail(Some(row), peer);
    detail.insert("reason".into(), json!("too_many_failures"));
    detail.insert("locked_until".into(), json!(rfc3339(until)));
    entry(
        account_actor(row),
        Action::AuthLockout,
        Decision::Deny,
        detail,
    )
}

/// Appends `entry`; once it is durable the outcome may be released.
pub(super) async fn append(svc: &Services, entry: Entry) -> Result<(), Error> {
    svc.audit.append(entry).await.map(drop).map_err(|e| {
        tracing::error!(error = %e, "audit append failed; the sign-in answers unavailable");
        Error::AuditUnavailable
    })
}
