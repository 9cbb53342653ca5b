//! Recomputes the whole chain: every link, not only the ends.
//!
//! Detects an edited entry (its hash no longer matches), a deleted or inserted
//! entry (a gap or a broken link), reordering (broken links), a stored
//! checkpoint that does not match or is not signed by the vault, and — given a
//! checkpoint kept from before — a truncated tail.
//!
//! Speed matters (a log grows by millions of entries): the log is split into
//! one span per core, verified at the same time (see [`Span`]); rows are
//! streamed, and on SQLite read through a direct binding that hashes each
//! field where it lies in SQLite's row buffer.

use std::{collections::BTreeMap, sync::Arc};

use futures_util::TryStreamExt;
use serde::Serialize;

use super::{
    chain::{hash_entry_in, EntryRef},
    checkpoint, GENESIS_HASH,
};
use crate::{
    crypto::hex,
    store::{self, audit::CheckpointRow, Db, StoreError},
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

/// The hashed columns, in the order every reader below decodes them.
macro_rules! columns {
    () => {
        "seq, at, actor_sub, actor_role, actor_client, action, customer_id, channel, purpose, \
         decision, reason, request_id, detail, prev_hash, hash"
    };
}

/// One span of the log on SQLite: entries with `lo < seq <= hi`.
const SELECT_SQLITE: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM audit_log WHERE seq > ?1 AND seq <= ?2 ORDER BY seq"
);

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
    fn visit(&mut self, e: &EntryRef<'_>, prev_hash: &[u8], hash: &[u8]) -> bool {
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
        const SQL: &str = "SELECT hash FROM audit_log WHERE seq = $1";
        let stored: Option<Vec<u8>> = store::on_db!(db, pool => sqlx::query_scalar(SQL).bind(a.seq).fetch_optional(pool).await)?;
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
    let spans = match db {
        Db::Sqlite(pool, _) => {
            let path = pool.connect_options().get_filename().to_owned();
            let shared = Arc::clone(&shared);
            tokio::task::spawn_blocking(move || verify_sqlite(&path, &shared, after))
                .await
                .map_err(|_| StoreError::Corrupt("verification task failed"))??
        }
        Db::Postgres(pool) => verify_postgres(pool, &shared, after).await?,
    };
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

/// PostgreSQL: each span streams its rows on a connection of its own, in a
/// task of its own, so the spans are read and hashed at the same time. The
/// rows come as binary `COPY` and are hashed where they lie in the received
/// buffer: decoding a million rows one by one through the driver cost more
/// than the hashing.
async fn verify_postgres(
    pool: &sqlx::PgPool,
    shared: &Arc<Shared>,
    after: i64,
) -> Result<Vec<Span>, StoreError> {
    let max_seq: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM audit_log")
        .fetch_one(pool)
        .await?;
    let tasks: Vec<_> = spans(shared, after, max_seq.unwrap_or(0))
        .into_iter()
        .map(|span| {
            let pool = pool.clone();
            tokio::spawn(async move { walk_postgres(&pool, span).await })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(
            t.await
                .map_err(|_| StoreError::Corrupt("verification task failed"))??,
        );
    }
    Ok(out)
}

async fn walk_postgres(pool: &sqlx::PgPool, mut span: Span) -> Result<Span, StoreError> {
    use sqlx::postgres::PgPoolCopyExt;
    let (lo, hi) = span.bounds();
    // COPY takes no parameters; the bounds are integers formatted here.
    let copy = format!(
        concat!(
            "COPY (SELECT ",
            columns!(),
            " FROM audit_log WHERE seq > {} AND seq <= {} ORDER BY seq) TO STDOUT (FORMAT binary)"
        ),
        lo, hi
    );
    let mut stream = pool.copy_out_raw(&copy).await?;
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let (mut at, mut header, mut done) = (0, true, false);
    let mut malformed = None;
    // The stream is read to its end even after the span stops (or the data
    // is malformed): a COPY left half read would leave its pooled connection
    // unusable.
    while let Some(chunk) = stream.try_next().await? {
        if done {
            continue;
        }
        if at > 0 && at * 2 > buf.len() {
            buf.drain(..at);
            at = 0;
        }
        buf.extend_from_slice(&chunk);
        let mut step = || -> Result<(), StoreError> {
            if header {
                match copy_binary::header(&buf)? {
                    Some(n) => (at, header) = (n, false),
                    None => return Ok(()),
                }
            }
            while let Some((fields, used)) = copy_binary::tuple(&buf[at..])? {
                at += used;
                // None: the trailer, the end of the span.
                let Some(f) = fields else {
                    done = true;
                    return Ok(());
                };
                let e = copy_binary::entry(&f)?;
                if !span.visit(&e, copy_binary::bytes(f[13])?, copy_binary::bytes(f[14])?) {
                    done = true;
                    return Ok(());
                }
            }
            Ok(())
        };
        if let Err(e) = step() {
            (malformed, done) = (Some(e), true);
        }
    }
    match malformed {
        Some(e) => Err(e),
        None => Ok(span),
    }
}

/// The binary `COPY` format of PostgreSQL, as far as an audit row needs it.
mod copy_binary {
    use super::EntryRef;
    use crate::store::StoreError;

    const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
    const COLUMNS: usize = 15;
    /// A row's fields: `None` is SQL NULL.
    pub type Fields<'a> = [Option<&'a [u8]>; COLUMNS];

    fn bad() -> StoreError {
        StoreError::Corrupt("the audit log's COPY stream is malformed")
    }

    fn be_i32(b: &[u8]) -> Option<i32> {
        Some(i32::from_be_bytes(b.get(..4)?.try_into().ok()?))
    }

    /// The header's length once it is all in `buf`.
    pub fn header(buf: &[u8]) -> Result<Option<usize>, StoreError> {
        let fixed = SIGNATURE.len() + 8;
        if buf.len() < fixed {
            return Ok(None);
        }
        if &buf[..SIGNATURE.len()] != SIGNATURE {
            return Err(bad());
        }
        let ext = be_i32(&buf[SIGNATURE.len() + 4..]).ok_or_else(bad)?;
        let len = fixed + usize::try_from(ext).map_err(|_| bad())?;
        Ok((buf.len() >= len).then_some(len))
    }

    /// The next whole tuple in `buf` and the bytes it took; `Some((None, _))`
    /// is the trailer; `None` means more bytes are needed.
    #[allow(clippy::type_complexity)]
    pub fn tuple(buf: &[u8]) -> Result<Option<(Option<Fields<'_>>, usize)>, StoreError> {
        let Some(count) = buf.get(..2).map(|b| i16::from_be_bytes([b[0], b[1]])) else {
            return Ok(None);
        };
        if count == -1 {
            return Ok(Some((None, 2)));
        }
        if usize::try_from(count).ok() != Some(COLUMNS) {
            return Err(bad());
        }
        let mut fields: Fields<'_> = [None; COLUMNS];
        let mut at = 2;
        for field in &mut fields {
            let Some(len) = buf.get(at..).and_then(be_i32) else {
                return Ok(None);
            };
            at += 4;
            if len == -1 {
                continue;
            }
            let len = usize::try_from(len).map_err(|_| bad())?;
            let Some(value) = buf.get(at..at + len) else {
                return Ok(None);
            };
            *field = Some(value);
            at += len;
        }
        Ok(Some((Some(fields), at)))
    }

    /// A NOT NULL field.
    pub fn bytes(f: Option<&[u8]>) -> Result<&[u8], StoreError> {
        f.ok_or_else(bad)
    }

    fn int(f: Option<&[u8]>) -> Result<i64, StoreError> {
        let b: [u8; 8] = bytes(f)?.try_into().map_err(|_| bad())?;
        Ok(i64::from_be_bytes(b))
    }

    /// An entry as the hash reads it (text in UTF-8 and a UUID's 16 bytes
    /// are the same bytes in binary COPY as in the row the writer hashed).
    pub fn entry<'a>(f: &Fields<'a>) -> Result<EntryRef<'a>, StoreError> {
        Ok(EntryRef {
            seq: int(f[0])?,
            at: int(f[1])?,
            actor_sub: bytes(f[2])?,
            actor_role: bytes(f[3])?,
            actor_client: f[4],
            action: bytes(f[5])?,
            customer_id: f[6],
            channel: f[7],
            purpose: f[8],
            decision: bytes(f[9])?,
            reason: f[10],
            request_id: bytes(f[11])?,
            detail: bytes(f[12])?,
        })
    }
}

/// SQLite: each span on a thread with its own read-only connection. The
/// spans may see different snapshots while the server keeps appending; the
/// log is append-only, so entries up to the head read at the start are the
/// same in every snapshot, and the last span also covers what came after.
fn verify_sqlite(
    path: &std::path::Path,
    shared: &Arc<Shared>,
    after: i64,
) -> Result<Vec<Span>, StoreError> {
    use rusqlite::OpenFlags;
    let open = || {
        let conn = rusqlite::Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Read-only, but like every connection arkku opens (store::SECURE_DELETE).
        conn.pragma_update(None, "secure_delete", crate::store::SECURE_DELETE)?;
        Ok::<_, rusqlite::Error>(conn)
    };
    let max_seq: Option<i64> =
        open()?.query_row("SELECT MAX(seq) FROM audit_log", [], |r| r.get(0))?;
    std::thread::scope(|scope| {
        let workers: Vec<_> = spans(shared, after, max_seq.unwrap_or(0))
            .into_iter()
            .map(|span| scope.spawn(|| walk_sqlite(open()?, span)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| StoreError::Corrupt("verification thread failed"))?
            })
            .collect()
    })
}

/// Walks one span, hashing each field where it lies in SQLite's row buffer:
/// no copy and no allocation per row.
fn walk_sqlite(conn: rusqlite::Connection, mut span: Span) -> Result<Span, StoreError> {
    use rusqlite::types::ValueRef;

    fn bytes<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<&'a [u8], rusqlite::Error> {
        Ok(r.get_ref(i)?.as_bytes()?)
    }
    fn int(r: &rusqlite::Row<'_>, i: usize) -> Result<i64, rusqlite::Error> {
        Ok(r.get_ref(i)?.as_i64()?)
    }
    fn opt<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> Result<Option<&'a [u8]>, rusqlite::Error> {
        match r.get_ref(i)? {
            ValueRef::Null => Ok(None),
            other => Ok(Some(other.as_bytes()?)),
        }
    }
    let mut stmt = conn.prepare(SELECT_SQLITE)?;
    let (lo, hi) = span.bounds();
    let mut rows = stmt.query([lo, hi])?;
    while let Some(r) = rows.next()? {
        let e = EntryRef {
            seq: int(r, 0)?,
            at: int(r, 1)?,
            actor_sub: bytes(r, 2)?,
            actor_role: bytes(r, 3)?,
            actor_client: opt(r, 4)?,
            action: bytes(r, 5)?,
            customer_id: opt(r, 6)?,
            channel: opt(r, 7)?,
            purpose: opt(r, 8)?,
            decision: bytes(r, 9)?,
            reason: opt(r, 10)?,
            request_id: bytes(r, 11)?,
            detail: bytes(r, 12)?,
        };
        if !span.visit(&e, bytes(r, 13)?, bytes(r, 14)?) {
            break;
        }
    }
    drop(rows);
    Ok(span)
}

#[cfg(test)]
mod tests {
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
                    if !span.visit(&EntryRef::of(r), &r.prev_hash, &r.hash) {
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

    /// A binary COPY stream: header, one tuple with NULLs, the trailer;
    /// every prefix short of a whole part asks for more bytes.
    #[test]
    fn binary_copy_tuples_are_read_whole_or_not_at_all() {
        let mut stream = b"PGCOPY\n\xff\r\n\0".to_vec();
        stream.extend_from_slice(&0i32.to_be_bytes()); // flags
        stream.extend_from_slice(&0i32.to_be_bytes()); // no extension
        let header_len = stream.len();
        let mut tuple = 15i16.to_be_bytes().to_vec();
        let fields: [Option<&[u8]>; 15] = [
            Some(&7i64.to_be_bytes()),
            Some(&70i64.to_be_bytes()),
            Some(b"agent-1"),
            Some(b"agent"),
            None,
            Some(b"profile.read"),
            Some(&[0x11; 16]),
            Some(b"email"),
            None,
            Some(b"allow"),
            None,
            Some(b"req-7"),
            Some(b"{}"),
            Some(&[1; 32]),
            Some(&[2; 32]),
        ];
        for f in fields {
            match f {
                None => tuple.extend_from_slice(&(-1i32).to_be_bytes()),
                Some(v) => {
                    tuple.extend_from_slice(&i32::try_from(v.len()).unwrap().to_be_bytes());
                    tuple.extend_from_slice(v);
                }
            }
        }
        stream.extend_from_slice(&tuple);
        stream.extend_from_slice(&(-1i16).to_be_bytes());

        assert_eq!(copy_binary::header(&stream[..5]).unwrap(), None);
        assert_eq!(copy_binary::header(&stream).unwrap(), Some(header_len));
        assert!(copy_binary::header(b"NOTCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0").is_err());
        let body = &stream[header_len..];
        for cut in 0..tuple.len() {
            assert!(
                copy_binary::tuple(&body[..cut]).unwrap().is_none(),
                "cut {cut}"
            );
        }
        let (f, used) = copy_binary::tuple(body).unwrap().unwrap();
        assert_eq!(used, tuple.len());
        let f = f.unwrap();
        let e = copy_binary::entry(&f).unwrap();
        assert_eq!((e.seq, e.at), (7, 70));
        assert_eq!(e.actor_client, None);
        assert_eq!(e.customer_id, Some(&[0x11; 16][..]));
        assert_eq!(e.purpose, None);
        assert_eq!(e.detail, b"{}");
        let (trailer, used) = copy_binary::tuple(&body[tuple.len()..]).unwrap().unwrap();
        assert!(trailer.is_none());
        assert_eq!(used, 2);
        // A row of another shape is refused, not misread.
        let mut short = tuple.clone();
        short[..2].copy_from_slice(&14i16.to_be_bytes());
        assert!(copy_binary::tuple(&short).is_err());
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
}
