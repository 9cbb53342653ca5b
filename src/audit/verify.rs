//! Recomputes the whole chain: every link, not only the ends.
//!
//! Detects an edited entry (its hash no longer matches), a deleted or inserted
//! entry (a gap or a broken link), reordering (broken links), a stored
//! checkpoint that does not match or is not signed by the vault, and — given a
//! checkpoint kept from before — a truncated tail.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{checkpoint, entry_hash, GENESIS_HASH};
use crate::{
    crypto::hex,
    store::{self, audit::CheckpointRow, Db, StoreError},
};

/// Rows fetched per round trip.
const PAGE: i64 = 20_000;

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

/// Verifies the chain and the stored checkpoints, and `kept` if given.
/// `trusted_key` is the vault's public key: checkpoints signed by any other
/// key are bad.
pub async fn verify(
    db: &Db,
    trusted_key: Option<&[u8]>,
    kept: Option<&CheckpointRow>,
) -> Result<VerifyReport, StoreError> {
    let mut points: BTreeMap<i64, (CheckpointRow, &'static str)> = store::audit::checkpoints(db)
        .await?
        .into_iter()
        .map(|c| (c.seq, (c, "stored checkpoint")))
        .collect();
    let mut report = VerifyReport {
        ok: true,
        entries_checked: 0,
        head_seq: 0,
        head_hash: hex(&GENESIS_HASH),
        first_bad_seq: None,
        problem: None,
        checkpoints_checked: 0,
    };
    let fail = |report: &mut VerifyReport, seq: i64, why: String| {
        report.ok = false;
        report.first_bad_seq = Some(seq);
        report.problem = Some(why);
    };
    if let Some(k) = kept {
        if !checkpoint::signature_valid(k, trusted_key) {
            fail(
                &mut report,
                k.seq,
                "the kept checkpoint's signature is not valid for this vault".into(),
            );
            return Ok(report);
        }
        points.insert(k.seq, (k.clone(), "kept checkpoint"));
    }
    let mut prev = GENESIS_HASH;
    let mut expected = 1i64;
    'pages: loop {
        let rows = store::audit::entries_after(db, expected - 1, PAGE).await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            if r.seq != expected {
                fail(
                    &mut report,
                    expected,
                    format!("entry {expected} is missing (next entry is {})", r.seq),
                );
                break 'pages;
            }
            if r.prev_hash.as_slice() != prev.as_slice() {
                fail(
                    &mut report,
                    r.seq,
                    "the entry does not link to the one before it".into(),
                );
                break 'pages;
            }
            let hash = entry_hash(&prev, r);
            if r.hash.as_slice() != hash.as_slice() {
                fail(
                    &mut report,
                    r.seq,
                    "the entry's content does not match its hash".into(),
                );
                break 'pages;
            }
            if let Some((c, what)) = points.get(&r.seq) {
                report.checkpoints_checked += 1;
                if c.hash.as_slice() != hash.as_slice() {
                    fail(&mut report, r.seq, format!("the {what} at this entry holds another hash: the history was rewritten"));
                    break 'pages;
                }
                if *what == "stored checkpoint" && !checkpoint::signature_valid(c, trusted_key) {
                    fail(
                        &mut report,
                        r.seq,
                        "the stored checkpoint here is not signed by this vault".into(),
                    );
                    break 'pages;
                }
            }
            prev = hash;
            report.entries_checked += 1;
            report.head_seq = r.seq;
            expected += 1;
        }
    }
    report.head_hash = hex(&prev);
    if report.ok {
        if let Some((seq, (_, what))) = points.range(report.head_seq + 1..).next() {
            let why = format!(
                "the log ends at entry {} but a {what} covers entry {seq}: the tail was truncated",
                report.head_seq
            );
            let first_missing = report.head_seq + 1;
            fail(&mut report, first_missing, why);
        }
    }
    Ok(report)
}
