//! The CSV form of audit entries: one header row, then one row per entry
//! with every field the chain hashes, so that a downloaded file can be
//! checked row by row away from the vault.
//!
//! Spreadsheets execute a cell that starts with `=`, `+`, `-` or `@` (also
//! after leading spaces) or with a tab or carriage return. Such a cell is
//! written with a leading apostrophe (`'`), the mark spreadsheets read as
//! "text", and so is any cell that already starts with one, which keeps
//! the neutralising reversible: [`restore`] gives back exactly the stored
//! value, so the verifier recomputes each row's hash from its cells.
//!
//! The file is UTF-8 with a byte-order mark (so that spreadsheets do not
//! read it as a legacy code page), comma separated, CRLF line ends (RFC
//! 4180). An empty cell is an absent value: the vault never stores an
//! empty actor client, channel, purpose or reason.

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    crypto::{hex, unhex},
    domain::time::{parse_rfc3339, rfc3339},
    store::{self, audit::AuditRow},
};

/// The UTF-8 byte-order mark the file starts with.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The header row, in the order of every row's cells.
pub const COLUMNS: [&str; 15] = [
    "seq",
    "time",
    "actor_sub",
    "actor_role",
    "actor_client",
    "action",
    "customer_id",
    "channel",
    "purpose",
    "decision",
    "reason",
    "request_id",
    "detail",
    "prev_hash",
    "hash",
];

/// Characters that make a spreadsheet evaluate a cell when they lead it
/// (after any whitespace). The full-width forms are included because some
/// spreadsheets fold them to their ASCII counterparts.
const TRIGGERS: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];

/// Whether a cell must be written with a leading apostrophe.
fn needs_mark(v: &str) -> bool {
    v.starts_with(['\'', '\t', '\r']) || v.trim_start().starts_with(TRIGGERS)
}

/// The cell for `v`: `v` itself, or `'` + `v` when a spreadsheet would
/// execute it (or it starts with `'`).
pub fn neutralise(v: &str) -> std::borrow::Cow<'_, str> {
    if needs_mark(v) {
        format!("'{v}").into()
    } else {
        v.into()
    }
}

/// The value a cell written by [`neutralise`] holds.
pub fn restore(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if needs_mark(rest) => rest,
        _ => cell,
    }
}

/// A CSV writer with the file's dialect.
pub fn writer(out: Vec<u8>) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out)
}

/// Writes the header row (after the byte-order mark the caller wrote).
pub fn write_header(w: &mut csv::Writer<Vec<u8>>) -> csv::Result<()> {
    w.write_record(COLUMNS)
}

/// Writes one entry as a row, its cells neutralised.
pub fn write_row(w: &mut csv::Writer<Vec<u8>>, r: &AuditRow) -> csv::Result<()> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells: [String; 15] = [
        r.seq.to_string(),
        rfc3339(store::from_micros(r.at)),
        r.actor_sub.clone(),
        r.actor_role.clone(),
        opt(&r.actor_client),
        r.action.clone(),
        r.customer_id.map(|c| c.to_string()).unwrap_or_default(),
        opt(&r.channel),
        opt(&r.purpose),
        r.decision.clone(),
        opt(&r.reason),
        r.request_id.clone(),
        r.detail.clone(),
        hex(&r.prev_hash),
        hex(&r.hash),
    ];
    w.write_record(cells.iter().map(|c| neutralise(c).into_owned()))
}

/// Reads one row back into the entry it was written from; the message
/// names the column that does not parse.
pub fn parse_row(record: &csv::StringRecord) -> Result<AuditRow, String> {
    if record.len() != COLUMNS.len() {
        return Err(format!("has {} cells, not {}", record.len(), COLUMNS.len()));
    }
    let cell = |i: usize| restore(record.get(i).unwrap_or_default());
    let text = |i: usize| cell(i).to_owned();
    let opt = |i: usize| Some(cell(i)).filter(|s| !s.is_empty()).map(str::to_owned);
    let bad = |i: usize| format!("column {} is not valid", COLUMNS[i]);
    let hash = |i: usize| {
        unhex(cell(i))
            .filter(|h| h.len() == 32)
            .ok_or_else(|| bad(i))
    };
    let customer_id = match cell(6) {
        "" => None,
        c => Some(Uuid::parse_str(c).map_err(|_| bad(6))?),
    };
    let at: OffsetDateTime = parse_rfc3339(cell(1)).map_err(|_| bad(1))?;
    Ok(AuditRow {
        seq: cell(0).parse().map_err(|_| bad(0))?,
        at: store::to_micros(at),
        actor_sub: text(2),
        actor_role: text(3),
        actor_client: opt(4),
        action: text(5),
        customer_id,
        channel: opt(7),
        purpose: opt(8),
        decision: text(9),
        reason: opt(10),
        request_id: text(11),
        detail: text(12),
        prev_hash: hash(13)?,
        hash: hash(14)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cells_a_spreadsheet_would_execute_get_an_apostrophe() {
        for (v, cell) in [
            ("=1+2", "'=1+2"),
            ("+1", "'+1"),
            ("-1", "'-1"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("  =HYPERLINK(\"x\")", "'  =HYPERLINK(\"x\")"),
            ("＝1", "'＝1"),
            ("'quoted", "''quoted"),
            ("T-9", "T-9"),
            ("a=b", "a=b"),
            ("{\"a\":-1}", "{\"a\":-1}"),
            ("", ""),
        ] {
            assert_eq!(neutralise(v), cell, "{v:?}");
            assert_eq!(restore(cell), v, "{cell:?}");
        }
    }

    proptest! {
        /// No written cell starts, after whitespace, with what a
        /// spreadsheet executes, and every cell reads back as its value.
        #[test]
        fn neutralised_cells_are_inert_and_restore_exactly(v in any::<String>()) {
            let cell = neutralise(&v);
            prop_assert!(!cell.starts_with(['\t', '\r']));
            prop_assert!(!cell.trim_start().starts_with(TRIGGERS));
            prop_assert_eq!(restore(&cell), v.as_str());
        }

        #[test]
        fn values_with_a_leading_trigger_restore_exactly(
            pre in "[ \t\r']{0,3}", t in "[=+@'-]", rest in ".{0,8}"
        ) {
            let v = format!("{pre}{t}{rest}");
            let cell = neutralise(&v);
            prop_assert_eq!(restore(&cell), v.as_str());
        }
    }

    #[test]
    fn a_row_reads_back_as_the_entry_it_was_written_from() {
        let row = AuditRow {
            seq: 7,
            at: 1_700_000_000_123_456,
            actor_sub: "=cmd|' /C calc'!A0".into(),
            actor_role: "agent".into(),
            actor_client: Some("crm".into()),
            action: "customer.read".into(),
            customer_id: Some(Uuid::now_v7()),
            channel: Some("phone".into()),
            purpose: None,
            decision: "allow".into(),
            reason: Some("-T, 9 \"x\"".into()),
            request_id: "req-1".into(),
            detail: "{\"released\":[]}".into(),
            prev_hash: vec![1; 32],
            hash: vec![2; 32],
        };
        let mut w = writer(Vec::new());
        write_header(&mut w).unwrap();
        write_row(&mut w, &row).unwrap();
        let bytes = w.into_inner().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("'=cmd"), "{text}");
        assert!(text.ends_with("\r\n"));
        let mut r = csv::Reader::from_reader(&bytes[..]);
        let rec = r.records().next().unwrap().unwrap();
        let back = parse_row(&rec).unwrap();
        assert_eq!(format!("{back:?}"), format!("{row:?}"));
    }
}
