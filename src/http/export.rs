//! The export bundle, format `arkku-export/1` (DESIGN.md §8; JSON Schema in
//! `docs/arkku-export-1.schema.json`): everything the vault holds on one
//! customer, in plaintext, plus who accessed it and when each item goes.
//!
//! `?format=zip` renders the same content as CSV files in a ZIP archive for
//! people who open it in a spreadsheet.

use std::io::{Cursor, Write};

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{
    consents::ConsentEventView,
    views::{secret, secret_opt},
};

/// The format tag of every bundle.
pub const FORMAT: &str = "arkku-export/1";

/// One customer's export.
#[derive(Serialize, ToSchema)]
pub struct Bundle {
    #[schema(example = "arkku-export/1")]
    pub format: &'static str,
    pub exported_at: String,
    pub customer: CustomerPart,
    pub contacts: Vec<ContactPart>,
    pub interactions: Vec<InteractionPart>,
    pub consents: Vec<ConsentEventView>,
    pub access_log: Vec<AccessPart>,
    pub retention: Vec<RetentionPart>,
}

/// The profile fields.
#[derive(Serialize, ToSchema)]
pub struct CustomerPart {
    pub id: Uuid,
    #[serde(serialize_with = "secret_opt")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Zeroizing<String>>,
    #[serde(serialize_with = "secret_opt")]
    #[schema(value_type = Option<String>)]
    pub external_ref: Option<Zeroizing<String>>,
    pub preferred_channel: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A contact point, unmasked.
#[derive(Serialize, ToSchema)]
pub struct ContactPart {
    pub id: Uuid,
    pub channel: String,
    #[serde(serialize_with = "secret")]
    #[schema(value_type = String)]
    pub value: Zeroizing<String>,
    #[serde(serialize_with = "secret_opt")]
    #[schema(value_type = Option<String>)]
    pub label: Option<Zeroizing<String>>,
    pub created_at: String,
    pub last_activity_at: String,
}

/// An interaction with its body.
#[derive(Serialize, ToSchema)]
pub struct InteractionPart {
    pub id: Uuid,
    pub channel: String,
    pub kind: String,
    #[serde(serialize_with = "secret")]
    #[schema(value_type = String)]
    pub body: Zeroizing<String>,
    pub created_at: String,
    pub due_at: Option<String>,
    pub resolved_at: Option<String>,
}

/// One audit entry about the customer: when, what, by which role, why, and
/// the decision. Not the staff member's identity, nor the free-text reason.
#[derive(Serialize, ToSchema)]
pub struct AccessPart {
    pub seq: i64,
    pub at: String,
    pub action: String,
    pub role: String,
    pub purpose: Option<String>,
    pub channel: Option<String>,
    pub decision: String,
}

/// When one item will be deleted.
#[derive(Serialize, ToSchema)]
pub struct RetentionPart {
    /// `contact`, `interaction` or `consent`.
    pub item: &'static str,
    pub id: Uuid,
    pub channel: String,
    /// `null`: kept as long as the customer is (until erasure).
    pub delete_after: Option<String>,
}

/// A spreadsheet cell: text that a spreadsheet would run as a formula
/// (starting with `=`, `+`, `-`, `@`, tab or carriage return) gets a leading
/// `'`, the OWASP advice against CSV injection. A phone number `+358…`
/// therefore reads `'+358…` in the CSV files (and `+358…` in the JSON).
fn cell(v: &str) -> Zeroizing<String> {
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
fn csv_file(header: &[&str], rows: Vec<Vec<Zeroizing<String>>>) -> Result<Vec<u8>, csv::Error> {
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

impl Bundle {
    /// The CSV files of the ZIP rendering, by name.
    fn csv_files(&self) -> Result<Vec<(&'static str, Vec<u8>)>, csv::Error> {
        let c = &self.customer;
        let id = c.id.to_string();
        let about = csv_file(
            &["format", "customer_id", "exported_at"],
            vec![vec![cell(self.format), cell(&id), cell(&self.exported_at)]],
        )?;
        let customer = csv_file(
            &[
                "id",
                "display_name",
                "external_ref",
                "preferred_channel",
                "created_at",
                "updated_at",
            ],
            vec![vec![
                cell(&id),
                opt(c.display_name.as_deref().map(String::as_str)),
                opt(c.external_ref.as_deref().map(String::as_str)),
                opt(c.preferred_channel.as_deref()),
                cell(&c.created_at),
                cell(&c.updated_at),
            ]],
        )?;
        let contacts = csv_file(
            &[
                "id",
                "channel",
                "value",
                "label",
                "created_at",
                "last_activity_at",
            ],
            self.contacts
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
                .collect(),
        )?;
        let interactions = csv_file(
            &[
                "id",
                "channel",
                "kind",
                "body",
                "created_at",
                "due_at",
                "resolved_at",
            ],
            self.interactions
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
                .collect(),
        )?;
        let consents = csv_file(
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
            self.consents
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
                .collect(),
        )?;
        let access_log = csv_file(
            &[
                "seq", "at", "action", "role", "purpose", "channel", "decision",
            ],
            self.access_log
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
                .collect(),
        )?;
        let retention = csv_file(
            &["item", "id", "channel", "delete_after"],
            self.retention
                .iter()
                .map(|r| {
                    vec![
                        cell(r.item),
                        cell(&r.id.to_string()),
                        cell(&r.channel),
                        opt(r.delete_after.as_deref()),
                    ]
                })
                .collect(),
        )?;
        Ok(vec![
            ("export.csv", about),
            ("customer.csv", customer),
            ("contacts.csv", contacts),
            ("interactions.csv", interactions),
            ("consents.csv", consents),
            ("access_log.csv", access_log),
            ("retention.csv", retention),
        ])
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
