//! Customers and their contact points: create, read (filtered by the
//! integration rule), update, add and remove contact points. Agents and
//! integration services work on customer records through these operations;
//! every one of them is authorised by the matrix of [`crate::policy::access`]
//! and audited through [`Services::audited_for`].
//!
//! What the operations share lives here: the contact point a request body
//! names, its label, the profile fields sealed under the profile key, and the
//! masked view of a contact point the caller has just written.

mod contacts;
mod create;
mod read;
mod update;

pub use contacts::{add_contact, remove_contact, AcceptedContact, ContactAdded};
pub use create::{create, CreateCustomer};
pub use read::{read, ReadQuery};
pub use update::{update, PatchCustomer};

use serde::Deserialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{contact::ParsedContact, input::short_text, views::rfc3339, views::ContactView};
use super::{Error, Services};
use crate::{
    crypto::FieldKey,
    domain::mask,
    policy::MaskMode,
    store::customers::NewContact,
    vault::{records, PROFILE_DOMAIN},
};

/// A contact point to add.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewContactBody {
    #[schema(example = "phone")]
    pub channel: String,
    #[schema(example = "040 123 4567")]
    pub value: String,
    /// 1 to 64 characters; no control or invisible formatting characters.
    #[serde(default)]
    pub label: Option<String>,
}

/// A contact point's label: 400 `invalid_request` unless 1 to 64 characters
/// of single-line text.
fn label(label: Option<&str>) -> Result<Option<Zeroizing<String>>, Error> {
    label
        .map(|l| short_text("label", l, 64))
        .transpose()
        .map(|l| l.map(Zeroizing::new))
}

/// Seals one profile field (display name, external reference) of customer
/// `id` under its profile key.
fn seal_profile_field(key: &FieldKey, id: Uuid, field: &str, v: &str) -> Result<Vec<u8>, Error> {
    Ok(records::seal(key, id, PROFILE_DOMAIN, id, field, v)?)
}

/// What a writer is told of the contact point it has just stored: what it
/// sent, masked unless the channel is never masked. It releases nothing the
/// caller did not send.
fn written_view(
    row: &NewContact,
    contact: &ParsedContact,
    label: Option<Zeroizing<String>>,
    at: OffsetDateTime,
) -> ContactView {
    let plain = contact.value.value();
    let (value, masked) = match contact.mask {
        MaskMode::Never => (Zeroizing::new(plain.to_owned()), false),
        _ => (Zeroizing::new(mask(contact.kind, plain)), true),
    };
    ContactView {
        id: row.id,
        channel: contact.channel.to_string(),
        value,
        masked,
        label,
        created_at: rfc3339(at),
    }
}

/// The data key of one of customer `id`'s domains for writing (the stored
/// one, or a new one stored now), ready to seal fields.
async fn key_for_write(svc: &Services, id: Uuid, domain: &str) -> Result<FieldKey, Error> {
    let key = svc.keyring.data_key_for_write(&svc.db, id, domain).await?;
    Ok(records::field_key(&key)?)
}
