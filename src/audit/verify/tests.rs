//! Tests of the span walk: however the log is split, the spans find what
//! one walk from the genesis hash finds.

use proptest::prelude::*;

use super::*;
use crate::audit::entry_hash;
use crate::store::audit::AuditRow;

fn chain(n: i64) -> Vec<AuditRow> {
    let mut prev = GENESIS_HASH;
    (1..=n)
        .map(|seq| {
            let mut r = AuditRow {
                seq,
                at: seq * 10,
                actor_sub: format!("agent-{}", seq % 3),
                actor_role: "agent".into(),
                actor_client: (seq % 2 == 0).then(|| "tool".into()),
                action: "profile.read".into(),
                customer_id: None,
                channel: Some("email".into()),
                purpose: Some("support".into()),
                decision: "allow".into(),
                reason: None,
                request_id: format!("req-{seq}"),
                detail: "{}".into(),
                prev_hash: prev.to_vec(),
                hash: Vec::new(),
            };
            prev = entry_hash(&prev, &r);
            r.hash = prev.to_vec();
            r
        })
        .collect()
}

/// The walk from the genesis hash that spans must agree with.
fn sequential(rows: &[AuditRow], points: &Points) -> (Option<i64>, u64, i64, [u8; 32]) {
    let (mut prev, mut expected, mut checked, mut head) = (GENESIS_HASH, 1, 0, 0);
    for r in rows {
        if r.seq != expected {
            return (Some(expected), checked, head, prev);
        }
        let computed = entry_hash(&prev, r);
        let checkpoint_bad = points.get(&r.seq).is_some_and(|(c, _)| c.hash != computed);
        if r.prev_hash != prev || r.hash != computed || checkpoint_bad {
            return (Some(r.seq), checked, head, prev);
        }
        (prev, expected, checked, head) = (computed, expected + 1, checked + 1, r.seq);
    }
    let truncated = points.range(head + 1..).next().map(|_| head + 1);
    (truncated, checked, head, prev)
}

fn in_spans(rows: &[AuditRow], points: &Points, parts: i64) -> VerifyReport {
    in_spans_after(rows, points, parts, None)
}

/// What [`walk`] finds on `rows` after `anchor` (the anchor's own entry
/// is checked by [`verify_after`] before the walk, not here).
fn in_spans_after(
    rows: &[AuditRow],
    points: &Points,
    parts: i64,
    anchor: Option<Anchor>,
) -> VerifyReport {
    let shared = Arc::new(Shared {
        points: points.clone(),
        trusted: None,
    });
    let max_seq = rows.iter().map(|r| r.seq).max().unwrap_or(0);
    let after = anchor.map_or(0, |a| a.seq);
    let spans = spans_of(&shared, after, max_seq, parts)
        .into_iter()
        .map(|mut span| {
            let (lo, hi) = span.bounds();
            for r in rows.iter().filter(|r| r.seq > lo && r.seq <= hi) {
                if !span.check(&EntryRef::of(r), &r.prev_hash, &r.hash) {
                    break;
                }
            }
            span
        })
        .collect();
    let mut report = fresh_report();
    report.head_seq = after;
    let (report, head) = merge(spans, report, anchor.map_or(GENESIS_HASH, |a| a.hash));
    finish(report, &shared.points, head)
}

fn anchor_at(rows: &[AuditRow], seq: i64) -> Anchor {
    let r = rows
        .iter()
        .find(|r| r.seq == seq)
        .expect("the anchor's entry");
    Anchor {
        seq,
        hash: r.hash.clone().try_into().expect("32 bytes"),
    }
}

#[test]
fn a_walk_after_an_anchor_checks_only_what_follows_it() {
    let rows = chain(20);
    let anchor = anchor_at(&rows, 10);
    for parts in 1..=4 {
        let r = in_spans_after(&rows, &Points::new(), parts, Some(anchor));
        assert!(r.ok, "{r:?}");
        assert_eq!((r.entries_checked, r.head_seq), (10, 20));
        assert_eq!(r.head_hash, hex(&rows[19].hash));
    }
    // Nothing after the anchor: the anchor is the head.
    let r = in_spans_after(&rows[..10], &Points::new(), 2, Some(anchor));
    assert!(r.ok, "{r:?}");
    assert_eq!((r.entries_checked, r.head_seq), (0, 10));
}

#[test]
fn a_walk_after_an_anchor_finds_an_edit_after_it_and_a_rewrite_before_it() {
    let anchor = anchor_at(&chain(20), 10);
    let mut edited = chain(20);
    edited[14].detail = "{\"edited\":true}".into();
    let mut rewritten = chain(20);
    rewritten[4].detail = "{\"edited\":true}".into();
    let mut prev: [u8; 32] = rewritten[3].hash.clone().try_into().expect("32 bytes");
    for r in &mut rewritten[4..] {
        r.prev_hash = prev.to_vec();
        prev = entry_hash(&prev, r);
        r.hash = prev.to_vec();
    }
    for parts in 1..=4 {
        let r = in_spans_after(&edited, &Points::new(), parts, Some(anchor));
        assert_eq!(r.first_bad_seq, Some(15), "{r:?}");
        let r = in_spans_after(&rewritten, &Points::new(), parts, Some(anchor));
        assert_eq!(r.first_bad_seq, Some(11), "{r:?}");
    }
}

#[derive(Debug, Clone)]
enum Tamper {
    Edit(usize),
    EditAndRehash(usize),
    Delete(usize),
    DropTail(usize),
    Swap(usize, usize),
    Insert(i64),
    BadCheckpoint(usize),
    CheckpointPastEnd(i64),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        any::<usize>().prop_map(Tamper::Edit),
        any::<usize>().prop_map(Tamper::EditAndRehash),
        any::<usize>().prop_map(Tamper::Delete),
        (0usize..5).prop_map(Tamper::DropTail),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::Swap(a, b)),
        (-3i64..60).prop_map(Tamper::Insert),
        any::<usize>().prop_map(Tamper::BadCheckpoint),
        (1i64..10).prop_map(Tamper::CheckpointPastEnd),
    ]
}

fn apply(rows: &mut Vec<AuditRow>, points: &mut Points, t: &Tamper) {
    let n = rows.len();
    if n == 0 {
        return;
    }
    match *t {
        Tamper::Edit(i) => rows[i % n].detail = "{\"edited\":true}".into(),
        Tamper::EditAndRehash(i) => {
            let r = &mut rows[i % n];
            r.detail = "{\"edited\":true}".into();
            let prev: [u8; 32] = r.prev_hash.clone().try_into().unwrap_or(GENESIS_HASH);
            r.hash = entry_hash(&prev, r).to_vec();
        }
        Tamper::Delete(i) => {
            rows.remove(i % n);
        }
        Tamper::DropTail(k) => rows.truncate(n.saturating_sub(k)),
        Tamper::Swap(a, b) => {
            let (a, b) = (a % n, b % n);
            let (sa, sb) = (rows[a].seq, rows[b].seq);
            rows.swap(a, b);
            rows[a].seq = sa;
            rows[b].seq = sb;
        }
        Tamper::Insert(seq) => {
            if rows.iter().all(|r| r.seq != seq) {
                let mut extra = rows[0].clone();
                extra.seq = seq;
                rows.push(extra);
                rows.sort_by_key(|r| r.seq);
            }
        }
        Tamper::BadCheckpoint(i) => {
            let seq = rows[i % n].seq;
            points.insert(seq, (checkpoint_row(seq, vec![7; 32]), "kept checkpoint"));
        }
        Tamper::CheckpointPastEnd(k) => {
            let seq = rows[n - 1].seq + k;
            points.insert(seq, (checkpoint_row(seq, vec![7; 32]), "kept checkpoint"));
        }
    }
}

fn checkpoint_row(seq: i64, hash: Vec<u8>) -> CheckpointRow {
    CheckpointRow {
        seq,
        hash,
        at: 0,
        signature: Vec::new(),
        public_key: Vec::new(),
    }
}

proptest! {
    /// However the log is split, the spans find what one walk from the
    /// start finds: the same first bad entry, count and head.
    #[test]
    fn spans_agree_with_one_walk(
        n in 0i64..40,
        tampering in proptest::collection::vec(tamper(), 0..3),
        good_checkpoint in any::<usize>(),
    ) {
        let mut rows = chain(n);
        let mut points = Points::new();
        if let Some(r) = rows.get(good_checkpoint % rows.len().max(1)) {
            points.insert(r.seq, (checkpoint_row(r.seq, r.hash.clone()), "kept checkpoint"));
        }
        for t in &tampering {
            apply(&mut rows, &mut points, t);
        }
        let (bad, checked, head, head_hash) = sequential(&rows, &points);
        for parts in 1..=4 {
            let r = in_spans(&rows, &points, parts);
            prop_assert_eq!(r.first_bad_seq, bad, "parts {}: {:?}", parts, r);
            prop_assert_eq!(r.ok, bad.is_none());
            prop_assert_eq!(r.entries_checked, checked, "parts {}: {:?}", parts, r);
            prop_assert_eq!(r.head_seq, head, "parts {}: {:?}", parts, r);
            prop_assert_eq!(&r.head_hash, &hex(&head_hash));
            prop_assert_eq!(r.problem.is_some(), bad.is_some());
        }
    }
}
