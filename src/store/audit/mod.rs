//! The audit tables (`audit_log`, `audit_checkpoints`, `audit_ties`): the rows the audit
//! log is made of, moved in and out of the database.
//!
//! What an entry means, how entries are chained and how a chain is verified
//! live in [`crate::audit`]; this module stores the rows it is given and
//! reads them back. By job:
//!
//! - [`append`]: the group-commit batch writer (one transaction, one fsync
//!   per batch, on SQLite through a direct connection), the changes
//!   ([`Effect`]) that commit with an entry;
//! - [`index_runs`]: the customer index, filed in runs behind the log by
//!   that writer;
//! - [`wal`]: the thread that checkpoints SQLite's write-ahead log beside
//!   the writer;
//! - [`read`]: the head, pages, the compliance query and the checkpoints;
//! - [`scan`]: the verifier's reads, whole ranges of the log streamed in
//!   parallel and handed over as raw column bytes (on PostgreSQL through
//!   binary `COPY`, [`copy`]);
//! - [`ties`]: the signed ties between the chains of several shards.

mod append;
mod copy;
mod effects;
mod index_runs;
mod read;
mod scan;
mod ties;
mod wal;

pub use append::{Appender, Batch, ChainFn, Head};
pub use index_runs::IndexRun;
pub use read::{
    checkpoint_from, checkpoints, entries_after, hash_at, head, insert_checkpoint, max_seq, query,
    AuditFilter,
};
pub use scan::{scan, RangeVisitor, RawEntry};
pub use ties::{insert_tie, ties, TieRow};
pub use wal::WalCheckpointer;

use uuid::Uuid;

use super::{consents::ConsentRow, customers::NewContact, interactions::NewInteraction, Micros};

/// The columns of `audit_log`, in [`AuditRow`]'s order (every reader below
/// decodes them by position).
macro_rules! columns {
    () => {
        "seq, at, actor_sub, actor_role, actor_client, action, customer_id, channel, purpose, \
         decision, reason, request_id, detail, prev_hash, hash"
    };
}
use columns;

/// One stored audit row.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub seq: i64,
    pub at: Micros,
    pub actor_sub: String,
    pub actor_role: String,
    pub actor_client: Option<String>,
    pub action: String,
    pub customer_id: Option<Uuid>,
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub decision: String,
    pub reason: Option<String>,
    pub request_id: String,
    pub detail: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// A change committed in the same transaction as its audit entry, so that
/// neither is ever stored without the other, and the change costs no commit
/// (and no fsync) of its own: it rides the entry's group commit. Each kind's
/// insert lives with its table (consents, interactions, customers).
///
/// An effect never fails its batch: it applies only if its customer is live
/// at commit time, and otherwise is skipped and reported as not applied.
#[derive(Debug, Clone)]
pub enum Effect {
    /// One consent ledger event.
    Consent(ConsentRow),
    /// One interaction; it also restarts the retention of the customer's
    /// live contact points on its channel.
    Interaction(NewInteraction),
    /// One contact point; skipped (not applied) also when the customer
    /// already holds the value on the channel, so adding a new value and
    /// repeating a known one take the same path and the same commit.
    Contact(NewContact),
}

/// A stored checkpoint.
#[derive(Debug, Clone)]
pub struct CheckpointRow {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub at: Micros,
    pub signature: Vec<u8>,
    pub public_key: Vec<u8>,
}
