//! Recomputes the whole chain: every link, not only the ends.
//!
//! Detects an edited entry (its hash no longer matches), a deleted or inserted
//! entry (a gap or a broken link), reordering (broken links), a stored
//! checkpoint that does not match or is not signed by the vault, and — given a
//! checkpoint kept from before — a truncated tail.
//!
//! Speed matters (a log grows by millions of entries): the log is split into
//! one span per core, verified at the same time (see [`Span`]); the store
//! streams each span's rows ([`store::audit::scan`]) and each field is hashed
//! where it lies in the database's row buffer.

use std::{collections::BTreeMap, sync::Arc};

use serde::Serialize;

use super::{
    chain::{hash_entry_in, EntryRef},
    checkpoint, GENESIS_HASH,
};
use crate::{
    crypto::hex,
    store::{
        self,
        audit::{CheckpointRow, RangeVisitor, RawEntry},
        Db, StoreError,
    },
};

/// The outcome of a verification (`GET /v1/audit/verify`, `arkku audit verify`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifyReport {
    pub ok: bool,
    pub entries_checked: u64,
    pub head_seq: i64,
    pub head_hash: String,
    /// The first entry that does not verify (or, for a truncated log, the first missing one).
    pub first_bad_seq: Option<i64>,
    /// What is wrong, in words.
    pub problem: Option<String>,
    pub checkpoints_checked: u64,
}

/// Checkpoints by the seq they cover, each with what it is (for messages).
type Points = BTreeMap<i64, (CheckpointRow, &'static str)>;

/// What every span checks against.
struct Shared {
    points: Points,
    trusted: Option<Vec<u8>>,
}

/// Verifies one contiguous span of the chain.
///
/// Every entry stores the hash it links to, so an entry can be checked on its
/// own: its hash must be the hash of its content chained to its stored
/// `prev_hash`, and that `prev_hash` must be the stored hash of the entry
/// before. Checked for every entry, this is exactly the sequential walk from
/// the genesis hash; it lets the log be split into spans that are verified at
/// the same time, one per core. Where two spans meet, [`merge`] checks the
/// link between them.
struct Span {
    shared: Arc<Shared>,
    /// The first seq of the span, and the next one expected.
    start: i64,
    expected: i64,
    /// The last seq the span covers (`None`: the end of the log).
    end: Option<i64>,
    /// The verified hash of the entry before the next one (known from the
    /// start only for the first span: the genesis hash).
    last: Option<[u8; 32]>,
    /// The first entry's stored `prev_hash`, for the link to the span before.
    first_prev: Option<Vec<u8>>,
    /// The first seq seen, for the message when the span before ends in a gap.
    first_seen: Option<i64>,
    last_seq: i64,
    checked: u64,
    checkpoints_checked: u64,
    failure: Option<(i64, String)>,
    buf: Vec<u8>,
}

impl Span {
    fn new(shared: Arc<Shared>, after: Option<i64>, end: Option<i64>) -> Self {
        let start = after.map_or(1, |a| a + 1);
        Span {
            shared,
            start,
            expected: start,
            end,
            last: after.is_none().then_some(GENESIS_HASH),
            first_prev: None,
            first_seen: None,
            last_seq: 0,
            checked: 0,
            checkpoints_checked: 0,
            failure: None,
            buf: Vec::with_capacity(512),
        }
    }

    /// The SQL bounds `lo < seq <= hi` of the span.
    fn bounds(&self) -> (i64, i64) {
        let lo = if self.start == 1 {
            i64::MIN
        } else {
            self.start - 1
        };
        (lo, self.end.unwrap_or(i64::MAX))
    }

    fn fail(&mut self, seq: i64, why: String) -> bool {
        self.failure = Some((seq, why));
        false
    }

    /// Checks one entry; false means stop (the failure says why).
    fn check(&mut self, e: &EntryRef<'_>, prev_hash: &[u8], hash: &[u8]) -> bool {
        self.first_seen.get_or_insert(e.seq);
        if e.seq != self.expected {
            let why = format!(
                "entry {} is missing (next entry is {})",
                self.expected, e.seq
            );
            return self.fail(self.expected, why);
        }
        match &self.last {
            Some(last) if prev_hash != last.as_slice() => {
                return self.fail(e.seq, "the entry does not link to the one before it".into());
            }
            Some(_) => {}
            None => self.first_prev = Some(prev_hash.to_vec()),
        }
        let Ok(prev) = <[u8; 32]>::try_from(prev_hash) else {
            return self.fail(e.seq, "the entry does not link to the one before it".into());
        };
        let computed = hash_entry_in(&mut self.buf, &prev, e);
        if hash != computed.as_slice() {
            return self.fail(e.seq, "the entry's content does not match its hash".into());
        }
        if let Some((c, what)) = self.shared.points.get(&e.seq) {
            self.checkpoints_checked += 1;
            if c.hash.as_slice() != computed.as_slice() {
                let why = format!(
                    "the {what} at this entry holds another hash: the history was rewritten"
                );
                return self.fail(e.seq, why);
            }
            if *what == "stored checkpoint"
                && !checkpoint::signature_valid(c, self.shared.trusted.as_deref())
            {
                return self.fail(
                    e.seq,
                    "the stored checkpoint here is not signed by this vault".into(),
                );
            }
        }
        self.last = Some(computed);
        self.last_seq = e.seq;
        self.checked += 1;
        self.expected += 1;
        true
    }
}

/// The store streams each span's rows here.
impl RangeVisitor for Span {
    fn bounds(&self) -> (i64, i64) {
        Span::bounds(self)
    }

    fn visit(&mut self, e: &RawEntry<'_>) -> bool {
        self.check(&EntryRef::of_raw(e), e.prev_hash, e.hash)
    }
}

/// Joins the spans' findings in log order into one report: the first
/// failure wins, as in a walk from the start. `head` is the hash the first
/// span links to (the genesis hash, or an anchor's).
fn merge(
    spans: Vec<Span>,
    mut report: VerifyReport,
    mut head: [u8; 32],
) -> (VerifyReport, [u8; 32]) {
    let fail = |report: &mut VerifyReport, seq: i64, why: String| {
        report.ok = false;
        report.first_bad_seq = Some(seq);
        report.problem = Some(why);
    };
    for (i, s) in spans.iter().enumerate() {
        if let Some(first_prev) = &s.first_prev {
            if first_prev.as_slice() != head.as_slice() {
                let why = "the entry does not link to the one before it".to_owned();
                fail(&mut report, s.start, why);
                break;
            }
        }
        report.entries_checked += s.checked;
        report.checkpoints_checked += s.checkpoints_checked;
        if let Some(last) = s.last.filter(|_| s.checked > 0) {
            head = last;
            report.head_seq = s.last_seq;
        }
        if let Some((seq, why)) = &s.failure {
            fail(&mut report, *seq, why.clone());
            break;
        }
        // A span that ended before its last seq: the rest of it is missing.
        if s.end.is_some_and(|end| s.expected <= end) {
            let next = spans[i + 1..].iter().find_map(|n| n.first_seen);
            let why = match next {
                Some(n) => format!("entry {} is missing (next entry is {n})", s.expected),
                None => format!("entry {} is missing", s.expected),
            };
            fail(&mut report, s.expected, why);
            break;
        }
    }
    (report, head)
}

/// The spans that split `after+1..=max_seq` evenly, one per core (at most
/// eight, and no more than entries); the last one is open-ended. `after` is
/// 0 for the whole log, or the seq of an anchor.
fn spans(shared: &Arc<Shared>, after: i64, max_seq: i64) -> Vec<Span> {
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    spans_of(shared, after, max_seq, i64::try_from(cores).unwrap_or(1))
}

fn spans_of(shared: &Arc<Shared>, after: i64, max_seq: i64, parts: i64) -> Vec<Span> {
    let len = max_seq.saturating_sub(after).max(0);
    let n = parts.min(len).max(1);
    // i128: no overflow for any seq; the quotient lies within 0..=len.
    let cut = |k: i64| -> i64 {
        after + i64::try_from(i128::from(len) * i128::from(k) / i128::from(n)).unwrap_or(len)
    };
    (0..n)
        .map(|k| {
            let after = (k > 0 || after > 0).then(|| cut(k));
            let end = (k + 1 < n).then(|| cut(k + 1));
            Span::new(Arc::clone(shared), after, end)
        })
        .collect()
}

/// An entry a verification may start after: a stored checkpoint signed by
/// the vault vouches for its hash, and so for every entry up to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: [u8; 32],
}

/// The newest stored checkpoint whose signature is valid under
/// `trusted_key`, as an anchor; forged or foreign ones are passed over.
pub async fn last_signed_checkpoint(
    db: &Db,
    trusted_key: &[u8],
) -> Result<Option<Anchor>, StoreError> {
    let stored = store::audit::checkpoints(db).await?;
    Ok(stored
        .iter()
        .rev()
        .filter(|c| checkpoint::signature_valid(c, Some(trusted_key)))
        .find_map(|c| {
            Some(Anchor {
                seq: c.seq,
                hash: c.hash.as_slice().try_into().ok()?,
            })
        }))
}

fn fresh_report() -> VerifyReport {
    VerifyReport {
        ok: true,
        entries_checked: 0,
        head_seq: 0,
        head_hash: hex(&GENESIS_HASH),
        first_bad_seq: None,
        problem: None,
        checkpoints_checked: 0,
    }
}

fn failed(mut report: VerifyReport, seq: i64, why: String) -> VerifyReport {
    report.ok = false;
    report.first_bad_seq = Some(seq);
    report.problem = Some(why);
    report
}

/// Verifies the chain and the stored checkpoints, and `kept` if given.
/// `trusted_key` is the vault's public key: checkpoints signed by any other
/// key are bad.
///
/// A kept checkpoint does not stand in for a stored one of the same entry:
/// both must be signed by the vault and hold the same hash, else the report
/// names the entry and says which one is wrong.
pub async fn verify(
    db: &Db,
    trusted_key: Option<&[u8]>,
    kept: Option<&CheckpointRow>,
) -> Result<VerifyReport, StoreError> {
    let report = fresh_report();
    let mut points: Points = store::audit::checkpoints(db)
        .await?
        .into_iter()
        .map(|c| (c.seq, (c, "stored checkpoint")))
        .collect();
    if let Some(k) = kept {
        if !checkpoint::signature_valid(k, trusted_key) {
            let why = "the kept checkpoint's signature is not valid for this vault";
            return Ok(failed(report, k.seq, why.into()));
        }
        if let Some((stored, _)) = points.get(&k.seq) {
            if stored.hash != k.hash {
                let why = format!(
                    "the stored checkpoint of entry {} holds another hash than the kept checkpoint: \
                     the stored one was forged or the history rewritten",
                    k.seq
                );
                return Ok(failed(report, k.seq, why));
            }
            if !checkpoint::signature_valid(stored, trusted_key) {
                let why = format!(
                    "the stored checkpoint of entry {} is not signed by this vault",
                    k.seq
                );
                return Ok(failed(report, k.seq, why));
            }
        }
        // Same hash as the stored one (if any): checking the kept one against
        // the entry checks both.
        points.insert(k.seq, (k.clone(), "kept checkpoint"));
    }
    let shared = Arc::new(Shared {
        points,
        trusted: trusted_key.map(<[u8]>::to_vec),
    });
    walk(db, shared, report, None).await
}

/// Verifies the entries after `anchor` (all of them without one) and the
/// stored checkpoints among them, for the watch of `serve`: a pass costs
/// what was appended since the last signed checkpoint, not the whole log.
///
/// The entry at the anchor must still hold the signed hash, and the first
/// entry after it must link to that hash, so a history rewritten before the
/// anchor (hashes recomputed) is found at the anchor. An entry before the
/// anchor whose content was edited without recomputing its hash is not:
/// only a full [`verify`] recomputes those.
pub async fn verify_after(
    db: &Db,
    trusted_key: &[u8],
    anchor: Option<Anchor>,
) -> Result<VerifyReport, StoreError> {
    let mut report = fresh_report();
    if let Some(a) = anchor {
        let stored = store::audit::hash_at(db, a.seq).await?;
        match stored {
            None => {
                let why = format!(
                    "entry {} is missing, though a signed checkpoint covers it",
                    a.seq
                );
                return Ok(failed(report, a.seq, why));
            }
            Some(h) if h.as_slice() != a.hash.as_slice() => {
                let why = "the entry holds another hash than its signed checkpoint: the history was rewritten";
                return Ok(failed(report, a.seq, why.into()));
            }
            Some(_) => {}
        }
        report.head_seq = a.seq;
        report.checkpoints_checked = 1;
    }
    let points: Points = store::audit::checkpoints(db)
        .await?
        .into_iter()
        .filter(|c| anchor.is_none_or(|a| c.seq > a.seq))
        .map(|c| (c.seq, (c, "stored checkpoint")))
        .collect();
    let shared = Arc::new(Shared {
        points,
        trusted: Some(trusted_key.to_vec()),
    });
    walk(db, shared, report, anchor).await
}

/// Walks the entries after `anchor` (or all) in spans and merges the findings.
async fn walk(
    db: &Db,
    shared: Arc<Shared>,
    report: VerifyReport,
    anchor: Option<Anchor>,
) -> Result<VerifyReport, StoreError> {
    let after = anchor.map_or(0, |a| a.seq);
    let max_seq = store::audit::max_seq(db).await?.unwrap_or(0);
    let spans = store::audit::scan(db, spans(&shared, after, max_seq)).await?;
    let start = anchor.map_or(GENESIS_HASH, |a| a.hash);
    let (report, head) = merge(spans, report, start);
    Ok(finish(report, &shared.points, head))
}

/// Sets the head hash and, if the walk went well, checks that no checkpoint
/// covers an entry past the end of the log (a truncated tail).
fn finish(mut report: VerifyReport, points: &Points, head: [u8; 32]) -> VerifyReport {
    report.head_hash = hex(&head);
    if report.ok {
        let last = report.head_seq;
        if let Some((seq, (_, what))) = points.range(last + 1..).next() {
            report.ok = false;
            report.first_bad_seq = Some(last + 1);
            report.problem = Some(format!("the log ends at entry {last} but a {what} covers entry {seq}: the tail was truncated"));
        }
    }
    report
}

#[cfg(test)]
mod tests;
