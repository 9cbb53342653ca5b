//! The ZIP rendering of an export: one CSV file per part of the bundle
//! (UTF-8, comma separated, a header row), every cell escaped against
//! spreadsheet formula injection.

use std::io::{Cursor, Write};

use zeroize::Zeroizing;

use super::Bundle;

/// A spreadsheet cell: text that a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a leading
/// `'`, the OWASP advice against CSV injection. A phone number `+358…`
/// therefore reads `'+358…` in the CSV files (and `+358…` in the JSON).
pub(crate) fn cell(v: &str) -> Zeroizing<String> {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Zeroizing::new(format!("'{v}"))
    } else {
        Zeroizing::new(v.to_owned())
    }
}

fn opt(v: Option<&str>) -> Zeroizing<String> {
    cell(v.unwrap_or(""))
}

/// One CSV file: header and rows, every cell escaped by [`cell`].
fn csv_file(header: &[&str], rows: Rows) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header)?;
    for row in rows {
        w.write_record(row.iter().map(|c| c.as_bytes()))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

/// Why a ZIP could not be written (an internal error: the inputs are ours).
#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error(transparent)]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Zip(#[from] zip::result::ZipError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One CSV file's rows.
type Rows = Vec<Vec<Zeroizing<String>>>;

impl Bundle {
    /// The CSV files of the ZIP rendering, by name.
    fn csv_files(&self) -> Result<Vec<(&'static str, Vec<u8>)>, csv::Error> {
        Ok(vec![
            ("export.csv", self.about_csv()?),
            ("customer.csv", self.customer_csv()?),
            ("contacts.csv", self.contacts_csv()?),
            ("interactions.csv", self.interactions_csv()?),
            ("consents.csv", self.consents_csv()?),
            ("access_log.csv", self.access_log_csv()?),
            ("retention.csv", self.retention_csv()?),
        ])
    }

    fn about_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let id = self.customer.id.to_string();
        csv_file(
            &["format", "customer_id", "exported_at"],
            vec![vec![cell(self.format), cell(&id), cell(&self.exported_at)]],
        )
    }

    fn customer_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let c = &self.customer;
        csv_file(
            &[
                "id",
                "display_name",
                "external_ref",
                "preferred_channel",
                "created_at",
                "updated_at",
            ],
            vec![vec![
                cell(&c.id.to_string()),
                opt(c.display_name.as_deref().map(String::as_str)),
                opt(c.external_ref.as_deref().map(String::as_str)),
                opt(c.preferred_channel.as_deref()),
                cell(&c.created_at),
                cell(&c.updated_at),
            ]],
        )
    }

    fn contacts_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let rows: Rows = self
            .contacts
            .iter()
            .map(|k| {
                vec![
                    cell(&k.id.to_string()),
                    cell(&k.channel),
                    cell(&k.value),
                    opt(k.label.as_deref().map(String::as_str)),
                    cell(&k.created_at),
                    cell(&k.last_activity_at),
                ]
            })
            .collect();
        csv_file(
            &[
                "id",
                "channel",
                "value",
                "label",
                "created_at",
                "last_activity_at",
            ],
            rows,
        )
    }

    fn interactions_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let rows: Rows = self
            .interactions
            .iter()
            .map(|i| {
                vec![
                    cell(&i.id.to_string()),
                    cell(&i.channel),
                    cell(&i.kind),
                    cell(&i.body),
                    cell(&i.created_at),
                    opt(i.due_at.as_deref()),
                    opt(i.resolved_at.as_deref()),
                ]
            })
            .collect();
        csv_file(
            &[
                "id",
                "channel",
                "kind",
                "body",
                "created_at",
                "due_at",
                "resolved_at",
            ],
            rows,
        )
    }

    fn consents_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let rows: Rows = self
            .consents
            .iter()
            .map(|e| {
                vec![
                    cell(&e.consent_id.to_string()),
                    cell(&e.purpose),
                    cell(&e.channel),
                    cell(&e.action),
                    opt(e.evidence.as_ref().map(|v| v.notice_id.as_str())),
                    opt(e.evidence.as_ref().map(|v| v.notice_version.as_str())),
                    cell(&e.method),
                    opt(e.source_channel.as_deref()),
                    cell(&e.recorded_by),
                    cell(&e.at),
                    opt(e.expires_at.as_deref()),
                    cell(&e.status),
                    opt(e.confirms.map(|c| c.to_string()).as_deref()),
                    opt(e.review.as_deref()),
                ]
            })
            .collect();
        csv_file(
            &[
                "consent_id",
                "purpose",
                "channel",
                "action",
                "notice_id",
                "notice_version",
                "method",
                "source_channel",
                "recorded_by",
                "at",
                "expires_at",
                "status",
                "confirms",
                "review",
            ],
            rows,
        )
    }

    fn access_log_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let rows: Rows = self
            .access_log
            .iter()
            .map(|a| {
                vec![
                    cell(&a.seq.to_string()),
                    cell(&a.at),
                    cell(&a.action),
                    cell(&a.role),
                    opt(a.purpose.as_deref()),
                    opt(a.channel.as_deref()),
                    cell(&a.decision),
                ]
            })
            .collect();
        csv_file(
            &[
                "seq", "at", "action", "role", "purpose", "channel", "decision",
            ],
            rows,
        )
    }

    fn retention_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let rows: Rows = self
            .retention
            .iter()
            .map(|r| {
                vec![
                    cell(r.item),
                    cell(&r.id.to_string()),
                    cell(&r.channel),
                    opt(r.delete_after.as_deref()),
                ]
            })
            .collect();
        csv_file(&["item", "id", "channel", "delete_after"], rows)
    }

    /// The bundle as a ZIP of CSV files (UTF-8, comma separated, header row).
    pub fn to_zip(&self) -> Result<Vec<u8>, ZipError> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in self.csv_files()? {
            let bytes = Zeroizing::new(bytes);
            zip.start_file(name, options)?;
            zip.write_all(&bytes)?;
        }
        Ok(zip.finish()?.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_quoted() {
        assert_eq!(cell("=HYPERLINK(\"x\")").as_str(), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("+358401234567").as_str(), "'+358401234567");
        assert_eq!(cell("@pena").as_str(), "'@pena");
        assert_eq!(cell("-1").as_str(), "'-1");
        assert_eq!(cell("pena@example.com").as_str(), "pena@example.com");
        assert_eq!(cell("").as_str(), "");
    }
}
