//! The export bundle, format `arkku-export/1` (JSON Schema in
//! `docs/arkku-export-1.schema.json`): everything the vault holds on one
//! customer, in plaintext, plus who accessed it and when each item goes.
//! The customer's own export and the compliance export of a data subject
//! request ([`super::dsr`]) both build it here, so the two cannot differ.
//!
//! The bundle is gathered and opened under subject access ([`build`]) and
//! rendered as JSON (UTC, for machines) or, for people who open it in a
//! spreadsheet, as the same content in a ZIP archive: CSV files with column
//! names in words and local times ([`csv_files`]), each cell made inert
//! ([`cell`]), and a plain-language README in English and Finnish
//! ([`readme`]).

mod build;
mod cell;
mod csv_files;
mod readme;
mod words;
#[cfg(test)]
mod zip_tests;

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

pub use build::build;
/// The formula-neutralising CSV cell, for the other CSV downloads.
pub(crate) use cell::text as csv_cell;
pub use csv_files::ZipError;

use crate::domain::{ChannelKind, DisplayZone};

use super::{
    views::{secret, secret_opt, ConsentEventView},
    Error,
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
    /// How the value is written in the ZIP (a phone number reads `(+358) …`).
    #[serde(skip)]
    pub kind: ChannelKind,
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
    /// Why, as reason codes: each channel shown or withheld on a read, and
    /// the refusal's code on a denial. Codes only, never a value.
    pub reasons: Vec<AccessReason>,
}

/// One reason code of an access-log entry, with the channel it is about.
#[derive(Serialize, ToSchema)]
pub struct AccessReason {
    /// `shown`, `withheld` or `refused`.
    pub outcome: &'static str,
    pub channel: Option<String>,
    #[schema(example = "consent_required")]
    pub code: String,
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

/// How an export is rendered: `?format=json` (the default) or `zip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Zip,
}

impl Format {
    /// The format a request names; 400 `invalid_request` for any other.
    pub fn parse(name: Option<&str>) -> Result<Format, Error> {
        match name {
            None | Some("json") => Ok(Format::Json),
            Some("zip") => Ok(Format::Zip),
            Some(_) => Err(Error::InvalidRequest("format must be json or zip".into())),
        }
    }

    /// The name recorded in the audit entry.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Zip => "zip",
        }
    }
}

/// An export as the caller receives it.
pub enum Export {
    /// The bundle, to be sent as `application/json`.
    Json(Box<Bundle>),
    /// The same content as CSV files in a ZIP archive (`application/zip`).
    Zip(ZipFile),
}

/// A rendered ZIP archive and the name to save it under.
pub struct ZipFile {
    /// `arkku-export-<customer id>.zip`.
    pub file_name: String,
    pub bytes: Vec<u8>,
}

impl Bundle {
    /// The bundle in `format`, the ZIP's times in `zone`. A ZIP that cannot
    /// be written is an internal error: its inputs are the vault's own.
    pub fn render(self, format: Format, zone: &DisplayZone) -> Result<Export, Error> {
        let id = self.customer.id;
        match format {
            Format::Json => Ok(Export::Json(Box::new(self))),
            Format::Zip => {
                let bytes = self.to_zip(zone).map_err(|e| {
                    tracing::error!(customer_id = %id, error = %e, "export zip failed");
                    Error::Internal
                })?;
                Ok(Export::Zip(ZipFile {
                    file_name: format!("arkku-export-{id}.zip"),
                    bytes,
                }))
            }
        }
    }
}
