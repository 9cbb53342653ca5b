//! The audit log: one entry per request that touches customer data or keys,
//! allowed or denied, hash-chained so that edits, deletions and reordering
//! are detectable.
//!
//! Fail-closed: [`Auditor::append`] returns only when the entry is committed
//! (SQLite `synchronous=FULL`, PostgreSQL commit), or an error within its
//! deadline; the HTTP layer releases data only after it returned `Ok`.
//! Entries never hold contact values, bodies, display names, tokens or keys.

mod chain;

pub use chain::{entry_hash, GENESIS_HASH};

use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::store::{self, audit::AuditRow, Db, StoreError};

/// What was done (DESIGN.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Action {
    #[serde(rename = "customer.create")]
    CustomerCreate,
    #[serde(rename = "customer.read")]
    CustomerRead,
    #[serde(rename = "customer.update")]
    CustomerUpdate,
    #[serde(rename = "customer.erase")]
    CustomerErase,
    #[serde(rename = "contact.add")]
    ContactAdd,
    #[serde(rename = "contact.remove")]
    ContactRemove,
    #[serde(rename = "contact.reveal")]
    ContactReveal,
    #[serde(rename = "lookup")]
    Lookup,
    #[serde(rename = "consent.grant")]
    ConsentGrant,
    #[serde(rename = "consent.withdraw")]
    ConsentWithdraw,
    #[serde(rename = "interaction.create")]
    InteractionCreate,
    #[serde(rename = "interaction.read")]
    InteractionRead,
    #[serde(rename = "export")]
    Export,
    #[serde(rename = "retention.purge")]
    RetentionPurge,
    #[serde(rename = "key.rotate")]
    KeyRotate,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::CustomerCreate => "customer.create",
            Action::CustomerRead => "customer.read",
            Action::CustomerUpdate => "customer.update",
            Action::CustomerErase => "customer.erase",
            Action::ContactAdd => "contact.add",
            Action::ContactRemove => "contact.remove",
            Action::ContactReveal => "contact.reveal",
            Action::Lookup => "lookup",
            Action::ConsentGrant => "consent.grant",
            Action::ConsentWithdraw => "consent.withdraw",
            Action::InteractionCreate => "interaction.create",
            Action::InteractionRead => "interaction.read",
            Action::Export => "export",
            Action::RetentionPurge => "retention.purge",
            Action::KeyRotate => "key.rotate",
        }
    }
}

/// Allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// Who acted. `sub` and `role` come from a verified token (or `anonymous`).
#[derive(Debug, Clone)]
pub struct ActorRef {
    pub sub: String,
    pub role: String,
    pub client: Option<String>,
}

/// One entry to append. `detail` carries ids, counts and reason codes only.
#[derive(Debug, Clone)]
pub struct Entry {
    pub actor: ActorRef,
    pub action: Action,
    pub customer_id: Option<Uuid>,
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub decision: Decision,
    pub reason: Option<String>,
    pub request_id: String,
    pub detail: serde_json::Value,
}

/// Why an append failed; every variant becomes 503 `audit_unavailable`.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("audit append failed: {0}")]
    Store(#[from] StoreError),
    #[error("audit append did not finish within {0:?}")]
    Timeout(Duration),
    #[error("audit append lost the race for a sequence number too often")]
    Contended,
}

/// Appends entries to the chain, one at a time per process. Another process
/// appending the same seq first makes the insert conflict; the head is then
/// reloaded and the append retried, so the chain stays gap- and fork-free.
pub struct Auditor {
    db: Db,
    head: Mutex<Option<(i64, [u8; 32])>>,
    deadline: Duration,
}

const MAX_RACES: usize = 16;

impl Auditor {
    pub fn new(db: Db, deadline: Duration) -> Self {
        Auditor {
            db,
            head: Mutex::new(None),
            deadline,
        }
    }

    /// Appends one entry and returns its seq once it is durable.
    pub async fn append(&self, entry: Entry) -> Result<i64, AuditError> {
        tokio::time::timeout(self.deadline, self.append_inner(entry))
            .await
            .map_err(|_| AuditError::Timeout(self.deadline))?
    }

    async fn append_inner(&self, entry: Entry) -> Result<i64, AuditError> {
        let mut head = self.head.lock().await;
        let detail = serde_json::to_string(&entry.detail).unwrap_or_else(|_| "{}".to_owned());
        for _ in 0..MAX_RACES {
            let (prev_seq, prev_hash) = match *head {
                Some(h) => h,
                None => load_head(&self.db).await?,
            };
            let mut row = AuditRow {
                seq: prev_seq + 1,
                at: store::to_micros(time::OffsetDateTime::now_utc()),
                actor_sub: entry.actor.sub.clone(),
                actor_role: entry.actor.role.clone(),
                actor_client: entry.actor.client.clone(),
                action: entry.action.as_str().to_owned(),
                customer_id: entry.customer_id,
                channel: entry.channel.clone(),
                purpose: entry.purpose.clone(),
                decision: entry.decision.as_str().to_owned(),
                reason: entry.reason.clone(),
                request_id: entry.request_id.clone(),
                detail: detail.clone(),
                prev_hash: prev_hash.to_vec(),
                hash: Vec::new(),
            };
            let hash = entry_hash(&prev_hash, &row);
            row.hash = hash.to_vec();
            match store::audit::insert(&self.db, &row).await {
                Ok(()) => {
                    *head = Some((row.seq, hash));
                    return Ok(row.seq);
                }
                Err(StoreError::Conflict(_)) => {
                    *head = None;
                    continue;
                }
                Err(e) => {
                    // The outcome is unknown (the commit may have landed); reload next time.
                    *head = None;
                    return Err(e.into());
                }
            }
        }
        Err(AuditError::Contended)
    }
}

async fn load_head(db: &Db) -> Result<(i64, [u8; 32]), AuditError> {
    match store::audit::head(db).await? {
        None => Ok((0, GENESIS_HASH)),
        Some((seq, hash)) => {
            let hash: [u8; 32] = hash
                .try_into()
                .map_err(|_| StoreError::Corrupt("audit hash is not 32 bytes"))?;
            Ok((seq, hash))
        }
    }
}
