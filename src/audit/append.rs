//! Appending entries: the writer task that gathers the entries of many
//! requests into one batch, chains them and has the store commit them with
//! one fsync (group commit), and the claim that decides, once, between the
//! writer and a requester's deadline.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU8, Ordering},
        Arc,
    },
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};

use super::{chain, AuditError, Checkpointer, Decision, Effect, Entry, GENESIS_HASH};
use crate::{
    metrics::AuditMetrics,
    store::{
        self,
        audit::{AuditRow, IndexRun},
        Db,
    },
};

/// Appends entries durably, with group commit.
///
/// Requests hand their entry to one writer task per process and wait for its
/// answer. The writer takes everything queued, chains it onto the head inside
/// one transaction that holds the database's writer lock, commits (one fsync
/// for the whole batch), and only then answers each waiter. A request whose
/// entry is not committed within the deadline fails with 503.
pub struct Auditor {
    /// `None` only for [`Auditor::discarding_for_benchmarks`].
    queue: Option<mpsc::Sender<Pending>>,
    deadline: Duration,
    healthy: Arc<AtomicBool>,
}

struct Pending {
    /// `None` is a probe: the writer runs an empty batch to test the database.
    entry: Option<Entry>,
    /// A change committed in the same transaction as the entry.
    effect: Option<Effect>,
    at: i64,
    /// Who decides the entry's fate: the writer (it claims it) or the
    /// requester at its deadline (it abandons it), whoever is first.
    claim: Arc<Claim>,
    done: oneshot::Sender<Result<Committed, AuditError>>,
}

/// The race between the writer and a requester's deadline, decided once.
///
/// A 503 must mean that nothing changed and nothing was released, so an
/// entry may not be committed as the requester's (allow, with its effect)
/// after the requester has answered 503. The writer *claims* every entry of
/// a batch once it holds the database's writer lock, just before it commits;
/// a requester whose deadline passes *abandons* its entry. Only the first of
/// the two succeeds:
///
/// - abandoned first: the requester answers 503, and the writer withdraws
///   the entry: its effect is dropped and it is recorded as what happened, a
///   `deny` with code `audit_unavailable` (see [`withdraw`]);
/// - claimed first: the commit is under way, and the requester waits for its
///   real outcome (the commit's success or failure) instead of guessing.
#[derive(Debug, Default)]
pub struct Claim(AtomicU8);

const WAITING: u8 = 0;
const CLAIMED: u8 = 1;
const ABANDONED: u8 = 2;

impl Claim {
    /// The writer's side: true if the requester still waits (it will now
    /// wait for the commit), false if it gave up.
    pub fn claim(&self) -> bool {
        match self
            .0
            .compare_exchange(WAITING, CLAIMED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == CLAIMED,
        }
    }

    /// The requester's side at its deadline: true if it may answer 503
    /// (the entry will be withdrawn), false if the writer claimed it first.
    fn abandon(&self) -> bool {
        match self
            .0
            .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == ABANDONED,
        }
    }
}

/// What a committed entry reports back.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    /// The entry's place in the chain.
    pub seq: i64,
    /// Whether its effect was applied (true when it had none); see [`Effect`].
    pub applied: bool,
}

/// What [`Auditor::drain`] found at shutdown.
#[derive(Debug, Clone, Copy)]
pub struct Drained {
    /// Entries waiting in the queue when the drain began.
    pub queued: usize,
    /// Whether all of them were settled within the deadline.
    pub settled: bool,
}

/// The `at` of a probe (which carries no entry).
const PROBE_AT: i64 = i64::MIN;

/// Most entries committed in one transaction.
const MAX_BATCH: usize = 4096;

impl Auditor {
    /// Starts the writer task. Checkpoints are signed every `checkpoint_every`
    /// entries when a signer is given; the customer index is filed in runs
    /// of `run` entries.
    /// Its series are counted nowhere (the CLI's short-lived writers).
    pub fn start(
        db: Db,
        deadline: Duration,
        run: IndexRun,
        checkpoints: Option<Arc<Checkpointer>>,
    ) -> Self {
        Self::start_with_metrics(db, deadline, run, checkpoints, AuditMetrics::unregistered())
    }

    /// [`Auditor::start`], with batch sizes and commit times counted in
    /// `metrics` (`serve`'s `/metrics`).
    pub fn start_with_metrics(
        db: Db,
        deadline: Duration,
        run: IndexRun,
        checkpoints: Option<Arc<Checkpointer>>,
        metrics: AuditMetrics,
    ) -> Self {
        let (queue, rx) = mpsc::channel(MAX_BATCH * 4);
        let healthy = Arc::new(AtomicBool::new(true));
        let writer = writer(db, run, rx, Arc::clone(&healthy), checkpoints, metrics);
        tokio::spawn(writer);
        Auditor {
            queue: Some(queue),
            deadline,
            healthy,
        }
    }

    /// NOT FOR PRODUCTION: an auditor that writes nothing, so a benchmark can
    /// measure what the audit log costs. No configuration, flag or
    /// environment variable reaches it; only benchmark code constructs it.
    /// Effects are not applied.
    #[cfg(feature = "bench")]
    pub fn discarding_for_benchmarks() -> Self {
        Auditor {
            queue: None,
            deadline: Duration::from_secs(1),
            healthy: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Appends one entry and returns its seq once it is durable.
    pub async fn append(&self, entry: Entry) -> Result<i64, AuditError> {
        self.submit(Some(entry), None).await.map(|c| c.seq)
    }

    /// Appends one entry and applies `effect` in the same transaction: the
    /// change and its entry are durable together, or neither is. The effect
    /// is skipped (`applied: false`) if its customer is no longer live.
    pub async fn append_with(&self, entry: Entry, effect: Effect) -> Result<Committed, AuditError> {
        self.submit(Some(entry), Some(effect)).await
    }

    /// After a failure, tests whether an append would succeed now (the writer
    /// inserts a row and rolls it back), so readiness recovers without waiting
    /// for traffic, and does not claim recovery while appends still fail.
    pub async fn probe(&self) -> bool {
        self.healthy() || self.submit(None, None).await.is_ok()
    }

    async fn submit(
        &self,
        entry: Option<Entry>,
        effect: Option<Effect>,
    ) -> Result<Committed, AuditError> {
        let Some(queue) = &self.queue else {
            return Ok(Committed {
                seq: 0,
                applied: false,
            });
        };
        let (done, mut wait) = oneshot::channel();
        let at = match entry {
            Some(_) => store::to_micros(time::OffsetDateTime::now_utc()),
            None => PROBE_AT,
        };
        let claim = Arc::new(Claim::default());
        let deadline = tokio::time::Instant::now() + self.deadline;
        let pending = Pending {
            entry,
            effect,
            at,
            claim: Arc::clone(&claim),
            done,
        };
        // Not queued by the deadline: the writer never sees it.
        match tokio::time::timeout_at(deadline, queue.send(pending)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(AuditError::Stopped),
            Err(_) => return Err(self.missed_deadline()),
        }
        match tokio::time::timeout_at(deadline, &mut wait).await {
            Ok(answer) => answer.map_err(|_| AuditError::Stopped)?,
            Err(_) if claim.abandon() => Err(self.missed_deadline()),
            // The writer holds the lock and is committing this entry: its
            // outcome, not a guess, is the answer.
            Err(_) => wait.await.map_err(|_| AuditError::Stopped)?,
        }
    }

    /// A writer that cannot commit within the deadline is not healthy, even
    /// before its batch finally fails.
    fn missed_deadline(&self) -> AuditError {
        self.healthy.store(false, Ordering::Relaxed);
        AuditError::Timeout(self.deadline)
    }

    /// At shutdown: waits, up to `within`, until every entry queued before
    /// the call has been committed (or has failed) and its requester
    /// answered. A marker goes through the queue behind them; the writer
    /// answers it only after the batch it rode in, so its answer means
    /// everything before it is settled.
    pub async fn drain(&self, within: Duration) -> Drained {
        let Some(queue) = &self.queue else {
            return Drained {
                queued: 0,
                settled: true,
            };
        };
        let queued = queue.max_capacity() - queue.capacity();
        let (done, wait) = oneshot::channel();
        let marker = Pending {
            entry: None,
            effect: None,
            at: PROBE_AT,
            claim: Arc::default(),
            done,
        };
        let settled = tokio::time::timeout(within, async {
            queue.send(marker).await.is_ok() && wait.await.is_ok()
        })
        .await
        .unwrap_or(false);
        Drained { queued, settled }
    }

    /// Entries (and probes) queued for the writer and not yet taken.
    pub fn queue_depth(&self) -> usize {
        self.queue
            .as_ref()
            .map_or(0, |q| q.max_capacity() - q.capacity())
    }

    /// Whether the last batch was committed (for `/readyz`).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

/// The writer task: drains the queue in batches until every sender is gone.
async fn writer(
    db: Db,
    run: IndexRun,
    mut rx: mpsc::Receiver<Pending>,
    healthy: Arc<AtomicBool>,
    checkpoints: Option<Arc<Checkpointer>>,
    metrics: AuditMetrics,
) {
    let appender = match store::audit::Appender::open(&db, run) {
        Ok(a) => a,
        Err(e) => {
            // Every append now fails (503) and /readyz reports it.
            tracing::error!(error = %e, "the audit writer cannot open its connection");
            healthy.store(false, Ordering::Relaxed);
            while let Some(p) = rx.recv().await {
                let _ = p.done.send(Err(AuditError::Store(e.to_string())));
            }
            return;
        }
    };
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Move the entries out (their requests keep only `done`): no copies.
        // Per entry: its row, its effect, and its claim (probes have none).
        let mut rows: Vec<AuditRow> = Vec::with_capacity(batch.len());
        let mut effects: Vec<Option<Effect>> = Vec::with_capacity(batch.len());
        let mut claims: Vec<Arc<Claim>> = Vec::with_capacity(batch.len());
        for p in batch.iter_mut() {
            if let Some(e) = p.entry.take() {
                rows.push(unchained_row(e, p.at));
                effects.push(p.effect.take());
                claims.push(Arc::clone(&p.claim));
            }
        }
        let is_entry: Vec<bool> = batch.iter().map(|p| p.at != PROBE_AT).collect();
        if rows.is_empty() {
            // Only probes: test the database without writing.
            probe(&appender, &mut batch, &healthy).await;
            continue;
        }
        let started = std::time::Instant::now();
        let claim_all = move || claims.iter().map(|c| c.claim()).collect();
        let pending = store::audit::Batch {
            rows,
            effects,
            claim: Box::new(claim_all),
            withdraw,
            chain: chain_rows,
        };
        match appender.append(pending).await {
            Ok((rows, applied)) => {
                metrics.committed(rows.len(), started.elapsed());
                tracing::debug!(
                    entries = rows.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "audit batch committed"
                );
                healthy.store(true, Ordering::Relaxed);
                if let Some(cp) = &checkpoints {
                    cp.after_append(&db, &rows).await;
                }
                answer_committed(&mut batch, &is_entry, &rows, applied);
            }
            Err(e) => {
                healthy.store(false, Ordering::Relaxed);
                metrics.failed();
                tracing::error!(error = %e, entries = batch.len(), "audit batch failed");
                let err = AuditError::from(e);
                for p in batch.drain(..) {
                    let _ = p.done.send(Err(err.clone()));
                }
            }
        }
    }
}

/// Runs a batch of probes only: tests the database without writing.
async fn probe(appender: &store::audit::Appender, batch: &mut Vec<Pending>, healthy: &AtomicBool) {
    let ok = appender.probe().await;
    healthy.store(ok.is_ok(), Ordering::Relaxed);
    let answer = ok
        .map(|()| Committed {
            seq: 0,
            applied: false,
        })
        .map_err(AuditError::from);
    for p in batch.drain(..) {
        let _ = p.done.send(answer.clone());
    }
}

/// Answers every request of a committed batch with its entry's seq and
/// whether its effect applied (probes in the batch get zero).
fn answer_committed(
    batch: &mut Vec<Pending>,
    is_entry: &[bool],
    rows: &[AuditRow],
    applied: Vec<bool>,
) {
    let mut seqs = rows.iter().map(|r| r.seq);
    let mut applied = applied.into_iter();
    for (p, entry) in batch.drain(..).zip(is_entry) {
        let (seq, applied) = if *entry {
            (seqs.next().unwrap_or(0), applied.next().unwrap_or(false))
        } else {
            (0, false)
        };
        // An abandoned entry's requester is gone; the send fails quietly.
        let _ = p.done.send(Ok(Committed { seq, applied }));
    }
}

/// Rewrites the row of an entry whose requester answered 503 before the
/// writer claimed it: that request was refused, so its entry says `deny`
/// with code `audit_unavailable`, whatever it was going to say (its effect,
/// if any, is dropped by the appender).
fn withdraw(row: &mut AuditRow) {
    row.decision = Decision::Deny.as_str().to_owned();
    let mut detail: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&row.detail).unwrap_or_default();
    detail.insert("code".into(), "audit_unavailable".into());
    row.detail = serde_json::to_string(&detail).unwrap_or_else(|_| "{}".to_owned());
}

/// An entry as a row, before it is chained (seq and hashes are set by [`chain_rows`]).
fn unchained_row(e: Entry, at: i64) -> AuditRow {
    AuditRow {
        seq: 0,
        at,
        actor_sub: e.actor.sub,
        actor_role: e.actor.role,
        actor_client: e.actor.client,
        action: e.action.as_str().to_owned(),
        customer_id: e.customer_id,
        channel: e.channel,
        purpose: e.purpose,
        decision: e.decision.as_str().to_owned(),
        reason: e.reason,
        request_id: e.request_id,
        detail: serde_json::to_string(&e.detail).unwrap_or_else(|_| "{}".to_owned()),
        prev_hash: Vec::new(),
        hash: Vec::new(),
    }
}

/// Chains rows onto the head: consecutive seqs, each linked to the one
/// before; the first entry of an empty log links to [`GENESIS_HASH`].
fn chain_rows(head: store::audit::Head, rows: &mut [AuditRow]) {
    let (mut seq, mut prev) = head.unwrap_or((0, GENESIS_HASH));
    let mut buf = Vec::with_capacity(512);
    for row in rows {
        seq += 1;
        row.seq = seq;
        row.prev_hash = prev.to_vec();
        prev = chain::hash_entry_in(&mut buf, &prev, &chain::EntryRef::of(row));
        row.hash = prev.to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Action, ActorRef};

    #[test]
    fn a_claimed_entry_cannot_be_abandoned_and_its_requester_waits_for_the_commit() {
        let c = Claim::default();
        assert!(c.claim());
        assert!(!c.abandon());
        assert!(c.claim(), "claiming again (a retried batch) still holds");
    }

    #[test]
    fn an_abandoned_entry_cannot_be_claimed_and_is_withdrawn() {
        let c = Claim::default();
        assert!(c.abandon());
        assert!(!c.claim());
        assert!(!c.claim(), "a retried batch withdraws it again");
        assert!(c.abandon());
    }

    #[test]
    fn a_withdrawn_row_records_the_refusal_and_keeps_its_other_detail() {
        let mut row = unchained_row(
            Entry {
                actor: ActorRef {
                    sub: "alice".into(),
                    role: "agent".into(),
                    client: None,
                },
                action: Action::ConsentGrant,
                customer_id: None,
                channel: Some("phone".into()),
                purpose: Some("marketing".into()),
                decision: Decision::Allow,
                reason: None,
                request_id: "r-1".into(),
                detail: serde_json::json!({"consent_id": "c-1"}),
            },
            1,
        );
        withdraw(&mut row);
        assert_eq!(row.decision, "deny");
        let detail: serde_json::Value = serde_json::from_str(&row.detail).expect("json");
        assert_eq!(
            detail,
            serde_json::json!({"consent_id": "c-1", "code": "audit_unavailable"})
        );
    }
}
