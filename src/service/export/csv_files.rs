//! The ZIP rendering of an export, for a person with a spreadsheet: a README
//! in English and one in Finnish ([`super::readme`]), then one CSV file per
//! part of the bundle (UTF-8 with a byte-order mark so that spreadsheets read
//! it as UTF-8, comma separated, a header row in words). Times are local in
//! the configured zone, codes are said in words ([`super::words`]), and every
//! cell is made inert against formula injection ([`super::cell`]).

use std::io::{Cursor, Write};

use uuid::Uuid;
use zeroize::Zeroizing;

use super::{cell, readme, words, Bundle, ContactPart, InteractionPart, RetentionPart};
use crate::domain::{ChannelKind, DisplayZone};

/// Column names of each file, in the order written (the README explains
/// each; a unit test checks that it does).
pub const EXPORT: [&str; 4] = ["Format", "Customer id", "Exported on", "Times are in"];
pub const CUSTOMER: [&str; 6] = [
    "Customer id",
    "Name",
    "Shop's reference",
    "Preferred channel",
    "Added on",
    "Last changed on",
];
pub const CONTACTS: [&str; 8] = [
    "Channel",
    "Contact type",
    "Value",
    "Label",
    "Added on",
    "Last used on",
    "Will be deleted on",
    "Contact id",
];
pub const INTERACTIONS: [&str; 8] = [
    "Channel",
    "Type",
    "Message",
    "Recorded on",
    "Answer due by",
    "Resolved on",
    "Will be deleted on",
    "Interaction id",
];
pub const CONSENTS: [&str; 14] = [
    "Purpose",
    "Channel",
    "Consent",
    "Status",
    "Notice",
    "Notice version",
    "How it was given",
    "Given through channel",
    "Recorded by",
    "Recorded on",
    "Expires on",
    "Confirms record",
    "Review",
    "Record id",
];
pub const ACCESS_LOG: [&str; 8] = [
    "When",
    "What happened",
    "By whom",
    "Purpose",
    "Channel",
    "Outcome",
    "Reason codes",
    "Entry number",
];
pub const RETENTION: [&str; 5] = [
    "About",
    "Channel",
    "Will be deleted on",
    "What happens then",
    "Item id",
];

/// What "Will be deleted on" says of an item kept until erasure.
const UNTIL_ERASURE: &str = "only when your data is erased";

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

/// One CSV file's rows, every cell already made inert.
type Rows = Vec<Vec<Zeroizing<String>>>;

/// One CSV file: a byte-order mark, the header and the rows.
fn csv_file(header: &[&str], rows: Rows) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer("\u{feff}".as_bytes().to_vec());
    w.write_record(header)?;
    for row in rows {
        w.write_record(row.iter().map(|c| c.as_bytes()))?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}

fn text(v: &str) -> Zeroizing<String> {
    cell::text(v)
}

fn opt(v: Option<&str>) -> Zeroizing<String> {
    cell::text(v.unwrap_or(""))
}

/// A contact point's value as written: phone numbers in their inert form.
fn contact_value(c: &ContactPart) -> Zeroizing<String> {
    match c.kind {
        ChannelKind::Phone => cell::value(&c.value),
        _ => cell::text(&c.value),
    }
}

/// The bundle's times (RFC 3339 UTC) in one zone.
struct Times<'a>(&'a DisplayZone);

impl Times<'_> {
    fn at(&self, t: &str) -> Zeroizing<String> {
        text(&self.0.local_rfc3339(t))
    }

    fn opt(&self, t: Option<&str>) -> Zeroizing<String> {
        t.map(|t| self.at(t)).unwrap_or_default()
    }

    fn deadline(&self, r: Option<&RetentionPart>) -> Zeroizing<String> {
        match r.map(|r| r.delete_after.as_deref()) {
            Some(Some(t)) => self.at(t),
            _ => text(UNTIL_ERASURE),
        }
    }
}

impl Bundle {
    fn retention_of(&self, id: Uuid) -> Option<&RetentionPart> {
        self.retention.iter().find(|r| r.id == id)
    }

    fn about_rows(&self, t: &Times) -> Rows {
        vec![vec![
            text(self.format),
            text(&self.customer.id.to_string()),
            t.at(&self.exported_at),
            text(t.0.name()),
        ]]
    }

    fn customer_rows(&self, t: &Times) -> Rows {
        let c = &self.customer;
        vec![vec![
            text(&c.id.to_string()),
            opt(c.display_name.as_deref().map(String::as_str)),
            opt(c.external_ref.as_deref().map(String::as_str)),
            opt(c.preferred_channel.as_deref()),
            t.at(&c.created_at),
            t.at(&c.updated_at),
        ]]
    }

    fn contact_rows(&self, t: &Times) -> Rows {
        let row = |k: &ContactPart| {
            vec![
                text(&k.channel),
                text(words::contact_type(k.kind)),
                contact_value(k),
                opt(k.label.as_deref().map(String::as_str)),
                t.at(&k.created_at),
                t.at(&k.last_activity_at),
                t.deadline(self.retention_of(k.id)),
                text(&k.id.to_string()),
            ]
        };
        self.contacts.iter().map(row).collect()
    }

    fn interaction_rows(&self, t: &Times) -> Rows {
        let row = |i: &InteractionPart| {
            vec![
                text(&i.channel),
                text(&words::code(&i.kind)),
                text(&i.body),
                t.at(&i.created_at),
                t.opt(i.due_at.as_deref()),
                t.opt(i.resolved_at.as_deref()),
                t.deadline(self.retention_of(i.id)),
                text(&i.id.to_string()),
            ]
        };
        self.interactions.iter().map(row).collect()
    }

    fn consent_rows(&self, t: &Times) -> Rows {
        self.consents
            .iter()
            .map(|e| {
                let evidence = e.evidence.as_ref();
                vec![
                    text(&e.purpose),
                    text(&e.channel),
                    text(words::consent_action(&e.action)),
                    text(&words::code(&e.status)),
                    opt(evidence.map(|v| v.notice_id.as_str())),
                    opt(evidence.map(|v| v.notice_version.as_str())),
                    text(&words::code(&e.method)),
                    opt(e.source_channel.as_deref()),
                    text(words::role(&e.recorded_by)),
                    t.at(&e.at),
                    t.opt(e.expires_at.as_deref()),
                    opt(e.confirms.map(|c| c.to_string()).as_deref()),
                    opt(e.review.as_deref().map(words::code).as_deref()),
                    text(&e.consent_id.to_string()),
                ]
            })
            .collect()
    }

    fn access_rows(&self, t: &Times) -> Rows {
        self.access_log
            .iter()
            .map(|a| {
                vec![
                    t.at(&a.at),
                    text(&words::action(&a.action)),
                    text(words::role(&a.role)),
                    opt(a.purpose.as_deref()),
                    opt(a.channel.as_deref()),
                    text(words::decision(&a.decision)),
                    text(&words::reasons(&a.reasons)),
                    text(&a.seq.to_string()),
                ]
            })
            .collect()
    }

    fn retention_rows(&self, t: &Times) -> Rows {
        self.retention
            .iter()
            .map(|r| {
                let (about, then) = self.retention_words(r, t);
                vec![
                    about,
                    text(&r.channel),
                    t.deadline(Some(r)),
                    text(then),
                    text(&r.id.to_string()),
                ]
            })
            .collect()
    }

    /// What a retention row is about, in words, and what happens then.
    fn retention_words(&self, r: &RetentionPart, t: &Times) -> (Zeroizing<String>, &'static str) {
        let about = match r.item {
            "contact" => self.contacts.iter().find(|c| c.id == r.id).map(|c| {
                let value = contact_value(c);
                let kind = words::contact_type(c.kind);
                format!("Your {kind} {}", value.as_str())
            }),
            "interaction" => self.interactions.iter().find(|i| i.id == r.id).map(|i| {
                let when = t.at(&i.created_at);
                format!(
                    "Your {} recorded on {}",
                    words::code(&i.kind),
                    when.as_str()
                )
            }),
            "consent" => self
                .consents
                .iter()
                .find(|c| c.consent_id == r.id)
                .map(|c| {
                    let when = t.at(&c.at);
                    let action = words::consent_action(&c.action);
                    format!("Consent for {} {action} on {}", c.purpose, when.as_str())
                }),
            _ => None,
        };
        let then = match (r.item, r.delete_after.is_some()) {
            (_, false) => "Kept until your data is erased.",
            ("contact", true) => {
                "This contact point is deleted for good, unless it is used again before then."
            }
            ("interaction", true) => "This message or request is deleted for good.",
            (_, true) => "This consent record is deleted for good.",
        };
        let about = about.unwrap_or_else(|| format!("{} {}", r.item, r.id));
        (text(&about), then)
    }

    /// The ZIP's files, by name: the READMEs, then the CSV files.
    fn zip_files(&self, zone: &DisplayZone) -> Result<Vec<(&'static str, Vec<u8>)>, csv::Error> {
        let t = &Times(zone);
        Ok(vec![
            ("README.txt", readme::english(zone).into_bytes()),
            ("LUEMINUT.txt", readme::finnish(zone).into_bytes()),
            ("export.csv", csv_file(&EXPORT, self.about_rows(t))?),
            ("customer.csv", csv_file(&CUSTOMER, self.customer_rows(t))?),
            ("contacts.csv", csv_file(&CONTACTS, self.contact_rows(t))?),
            (
                "interactions.csv",
                csv_file(&INTERACTIONS, self.interaction_rows(t))?,
            ),
            ("consents.csv", csv_file(&CONSENTS, self.consent_rows(t))?),
            (
                "access_log.csv",
                csv_file(&ACCESS_LOG, self.access_rows(t))?,
            ),
            (
                "retention.csv",
                csv_file(&RETENTION, self.retention_rows(t))?,
            ),
        ])
    }

    /// The bundle as a ZIP: READMEs and CSV files, times in `zone`.
    pub fn to_zip(&self, zone: &DisplayZone) -> Result<Vec<u8>, ZipError> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in self.zip_files(zone)? {
            let bytes = Zeroizing::new(bytes);
            zip.start_file(name, options)?;
            zip.write_all(&bytes)?;
        }
        Ok(zip.finish()?.into_inner())
    }
}
