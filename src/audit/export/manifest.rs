//! The signed manifest that travels beside an exported CSV file: what the
//! file holds (its SHA-256, the entry count, the filters, the first and
//! last seq, the last entry's chain hash) and the signed checkpoint that
//! covers its last entry, the whole signed with the vault's audit key (the
//! key that signs checkpoints).
//!
//! The signature covers a domain label and the manifest's compact JSON
//! with `signature` empty, fields in the order declared here; the verifier
//! parses the file into this struct and serialises it again, so spacing or
//! escaping changes to the file do not matter, while any changed, added or
//! removed field does.

use serde::{Deserialize, Serialize};

use crate::{
    audit::checkpoint::CheckpointFile,
    crypto::{unhex, verify_signature},
};

/// The manifest's format name.
pub const FORMAT: &str = "arkku-audit-export/1";

const LABEL: &[u8] = b"arkku.audit.export.v1\n";

/// The filters of an export, as validated (times in RFC 3339 UTC); `None`
/// matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportFilters {
    pub customer_id: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub decision: Option<String>,
    pub purpose: Option<String>,
    pub channel: Option<String>,
    pub reason: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

impl ExportFilters {
    /// Whether the export holds every entry up to its `through` (then the
    /// rows chain to one another and the verifier checks the links).
    pub fn is_empty(&self) -> bool {
        *self == ExportFilters::default()
    }
}

/// The manifest file (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// SHA-256 of the CSV file's bytes, hex.
    pub csv_sha256: String,
    /// The CSV file's length in bytes.
    pub csv_bytes: u64,
    /// Data rows in the CSV file.
    pub entries: u64,
    pub filters: ExportFilters,
    /// The export's upper bound: entries with seq up to this one.
    pub through: i64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The chain hash of the last entry in the file, hex.
    pub last_hash: Option<String>,
    /// The first checkpoint at or after the last entry (or `through`):
    /// `{format, seq, hash, at, at_micros, signature, public_key}`.
    #[schema(value_type = Object)]
    pub checkpoint: CheckpointFile,
    /// When the manifest was signed (RFC 3339).
    pub signed_at: String,
    /// The vault's audit public key (Ed25519), hex.
    pub public_key: String,
    /// Ed25519 signature over the manifest with this field empty, hex.
    pub signature: String,
}

impl Manifest {
    /// The bytes the signature covers.
    pub fn signed_message(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature = String::new();
        let mut m = LABEL.to_vec();
        // Serialising plain strings and integers cannot fail.
        m.extend_from_slice(&serde_json::to_vec(&unsigned).unwrap_or_default());
        m
    }

    /// Whether the signature is valid and made by `trusted`.
    pub fn signature_valid(&self, trusted: &[u8]) -> bool {
        let (Some(key), Some(sig)) = (unhex(&self.public_key), unhex(&self.signature)) else {
            return false;
        };
        key == trusted && verify_signature(&key, &self.signed_message(), &sig)
    }
}
