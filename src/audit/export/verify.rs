//! Offline verification of an exported CSV file against its manifest (`arkku
//! audit verify-export`): no database, only the two files and the vault's
//! audit public key.
//!
//! Checked: the manifest's signature; the checkpoint's signature and that
//! it covers the last entry; the file's SHA-256 and length; every row's
//! chain hash recomputed from its cells; seqs rising and within `through`;
//! the count, first and last seq and last hash the manifest states; and,
//! when the export is unfiltered, that each row's `prev_hash` is the
//! previous row's hash from the first entry on, with no seq missing.

use std::io::{Read, Seek, SeekFrom};

use ring::digest;

use super::{
    csv::{parse_row, BOM, COLUMNS},
    manifest::{Manifest, FORMAT},
};
use crate::{
    audit::{checkpoint::signature_valid, entry_hash, GENESIS_HASH},
    crypto::hex,
};

/// Row problems reported before the rest are only counted.
const MAX_ROW_PROBLEMS: usize = 10;

/// What a successful check saw.
#[derive(Debug, serde::Serialize)]
pub struct ExportCheck {
    pub entries: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// Whether the rows were also checked as one unbroken chain (unfiltered export).
    pub chained: bool,
    pub checkpoint_seq: i64,
}

/// Checks `csv` against `manifest` under the trusted public key; the error
/// lists every problem found, each naming what failed (and which row).
pub fn verify_export<R: Read + Seek>(
    csv: &mut R,
    manifest: &Manifest,
    trusted_key: &[u8],
) -> Result<ExportCheck, Vec<String>> {
    let mut problems = signatures(manifest, trusted_key);
    let (sha, len) =
        file_digest(csv).map_err(|e| vec![format!("cannot read the CSV file: {e}")])?;
    if sha != manifest.csv_sha256 || len != manifest.csv_bytes {
        problems.push(format!(
            "the CSV file's SHA-256 ({sha}, {len} bytes) is not the manifest's ({}, {} bytes): \
             the file was changed",
            manifest.csv_sha256, manifest.csv_bytes
        ));
    }
    csv.seek(SeekFrom::Start(0))
        .map_err(|e| vec![format!("cannot read the CSV file: {e}")])?;
    let rows = check_rows(csv, manifest, &mut problems);
    if problems.is_empty() {
        Ok(ExportCheck {
            entries: rows.count,
            first_seq: rows.first,
            last_seq: rows.last,
            chained: manifest.filters.is_empty(),
            checkpoint_seq: manifest.checkpoint.seq,
        })
    } else {
        Err(problems)
    }
}

/// The manifest's and the checkpoint's signatures, and that the checkpoint
/// covers the export.
fn signatures(m: &Manifest, trusted: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    if m.format != FORMAT {
        problems.push(format!("the manifest's format is not {FORMAT}"));
    }
    if !m.signature_valid(trusted) {
        problems.push(
            "the manifest's signature is not valid under the vault's audit key: the manifest \
             was changed or signed by another key"
                .into(),
        );
    }
    match m.checkpoint.to_row() {
        None => problems.push("the manifest's checkpoint is malformed".into()),
        Some(c) => {
            if !signature_valid(&c, Some(trusted)) {
                problems.push(format!(
                    "checkpoint {}: its signature is not valid under the vault's audit key",
                    c.seq
                ));
            }
            let covers = m.last_seq.unwrap_or(m.through);
            if c.seq < covers {
                problems.push(format!(
                    "checkpoint {} does not cover the last entry ({covers})",
                    c.seq
                ));
            }
            if Some(c.seq) == m.last_seq && m.last_hash.as_deref() != Some(&*hex(&c.hash)) {
                problems.push(format!(
                    "checkpoint {}: its hash is not the last entry's hash",
                    c.seq
                ));
            }
        }
    }
    problems
}

/// SHA-256 (hex) and length of the whole file.
fn file_digest<R: Read>(r: &mut R) -> std::io::Result<(String, u64)> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        len += n as u64;
    }
    Ok((hex(ctx.finish().as_ref()), len))
}

/// What the rows held.
#[derive(Default)]
struct Rows {
    count: u64,
    first: Option<i64>,
    last: Option<i64>,
    last_hash: Option<String>,
}

/// Checks every row; problems go to `problems`.
fn check_rows<R: Read>(csv: &mut R, m: &Manifest, problems: &mut Vec<String>) -> Rows {
    let mut rows = Rows::default();
    let mut bom = [0u8; 3];
    let starts_with_bom = csv.read_exact(&mut bom).is_ok() && bom == BOM;
    let head: &[u8] = if starts_with_bom { &[] } else { &bom };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(head.chain(csv));
    match reader.headers() {
        Ok(h) if h.iter().eq(COLUMNS) => {}
        _ => problems.push(format!("the CSV header is not {}", COLUMNS.join(","))),
    }
    let chained = m.filters.is_empty();
    let mut prev: Option<([u8; 32], i64)> = None;
    let mut row_problems = 0usize;
    let mut report = |problems: &mut Vec<String>, msg: String| {
        row_problems += 1;
        if row_problems <= MAX_ROW_PROBLEMS {
            problems.push(msg);
        }
    };
    for (i, record) in reader.records().enumerate() {
        let n = i + 1;
        let row = match record
            .map_err(|e| e.to_string())
            .and_then(|r| parse_row(&r))
        {
            Ok(row) => row,
            Err(e) => {
                report(problems, format!("CSV row {n}: {e}"));
                continue;
            }
        };
        let at = format!("CSV row {n} (seq {})", row.seq);
        let prev_hash: [u8; 32] = row.prev_hash.clone().try_into().unwrap_or(GENESIS_HASH);
        if entry_hash(&prev_hash, &row)[..] != row.hash[..] {
            report(
                problems,
                format!("{at}: its hash does not match its cells: the row was changed"),
            );
        }
        if row.seq > m.through || prev.is_some_and(|(_, s)| row.seq <= s) {
            report(
                problems,
                format!("{at}: seq out of order or beyond through"),
            );
        }
        if chained {
            let (want_prev, want_seq) = prev.map_or((GENESIS_HASH, 1), |(h, s)| (h, s + 1));
            if row.seq != want_seq || prev_hash != want_prev {
                report(
                    problems,
                    format!("{at}: does not follow the previous entry in the chain"),
                );
            }
        }
        let hash: [u8; 32] = row.hash.clone().try_into().unwrap_or([0; 32]);
        prev = Some((hash, row.seq));
        rows.count += 1;
        rows.first.get_or_insert(row.seq);
        rows.last = Some(row.seq);
        rows.last_hash = Some(hex(&row.hash));
    }
    if row_problems > MAX_ROW_PROBLEMS {
        problems.push(format!(
            "… and {} more row problems",
            row_problems - MAX_ROW_PROBLEMS
        ));
    }
    if chained && rows.last != Some(m.through) && m.through > 0 {
        problems.push(format!(
            "the unfiltered export ends at seq {:?}, not at through ({})",
            rows.last, m.through
        ));
    }
    let stated = (m.entries, m.first_seq, m.last_seq, m.last_hash.as_deref());
    let found = (rows.count, rows.first, rows.last, rows.last_hash.as_deref());
    if stated != found {
        problems.push(format!(
            "the rows (count {}, first {:?}, last {:?}) are not what the manifest states \
             (count {}, first {:?}, last {:?}, or another last hash)",
            found.0, found.1, found.2, stated.0, stated.1, stated.2
        ));
    }
    rows
}
