//! Sealing and opening customer records. Every field's AAD binds customer,
//! key domain, record id and field name (see [`crate::crypto::FieldContext`]),
//! so a ciphertext moved to another row, customer or channel fails to open.

use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{Keyring, VaultError, PROFILE_DOMAIN};
use crate::{
    crypto::{FieldContext, FieldKey, SecretKey},
    domain::{mask, ChannelKind},
    policy::{Permit, PurposeGrant},
    store::{
        customers::{ContactRow, CustomerRow},
        from_micros,
        interactions::InteractionRow,
        keys::WrappedDataKey,
        Db,
    },
};

/// Field names bound into the AAD.
pub mod field {
    pub const VALUE: &str = "value";
    pub const LABEL: &str = "label";
    pub const DISPLAY_NAME: &str = "display_name";
    pub const EXTERNAL_REF: &str = "external_ref";
    pub const BODY: &str = "body";
}

/// Seals one field of a record.
pub fn seal(
    key: &FieldKey,
    customer_id: Uuid,
    domain: &str,
    record_id: Uuid,
    field: &str,
    plaintext: &str,
) -> Result<Vec<u8>, VaultError> {
    let ctx = FieldContext {
        customer_id,
        channel: domain,
        record_id,
        field,
    };
    Ok(key.seal(&ctx, plaintext.as_bytes())?)
}

/// A contact point as released to a reader: the value masked unless the
/// permit says otherwise.
pub struct OpenedContact {
    pub id: Uuid,
    pub channel: String,
    pub value: Zeroizing<String>,
    pub masked: bool,
    pub label: Option<Zeroizing<String>>,
    pub created_at: OffsetDateTime,
}

/// Opens a contact point under a permit for its channel.
pub async fn open_contact(
    keyring: &Keyring,
    db: &Db,
    permit: &Permit,
    kind: ChannelKind,
    customer_id: Uuid,
    row: &ContactRow,
) -> Result<OpenedContact, VaultError> {
    if permit.channel().as_str() != row.channel {
        return Err(VaultError::PermitMismatch);
    }
    let wrapped = row
        .key
        .as_ref()
        .ok_or(crate::crypto::CryptoError::Integrity)?;
    let data_key = keyring.open_data_key(db, customer_id, wrapped).await?;
    let key = FieldKey::new(&data_key)?;
    let ctx = |field| FieldContext {
        customer_id,
        channel: &row.channel,
        record_id: row.id,
        field,
    };
    let plain = key.open_string(&ctx(field::VALUE), &row.value)?;
    let value = if permit.masked() {
        Zeroizing::new(mask(kind, &plain))
    } else {
        plain
    };
    let label = row
        .label
        .as_ref()
        .map(|l| key.open_string(&ctx(field::LABEL), l))
        .transpose()?;
    Ok(OpenedContact {
        id: row.id,
        channel: row.channel.clone(),
        value,
        masked: permit.masked(),
        label,
        created_at: from_micros(row.created_at),
    })
}

/// Profile fields that belong to no channel.
pub struct OpenedProfile {
    pub display_name: Option<Zeroizing<String>>,
    pub external_ref: Option<Zeroizing<String>>,
}

/// Opens the profile fields for a reader whose purpose was granted.
pub async fn open_profile(
    keyring: &Keyring,
    db: &Db,
    _grant: &PurposeGrant,
    row: &CustomerRow,
) -> Result<OpenedProfile, VaultError> {
    if row.display_name.is_none() && row.external_ref.is_none() {
        return Ok(OpenedProfile {
            display_name: None,
            external_ref: None,
        });
    }
    let wrapped = row
        .profile_key
        .as_ref()
        .ok_or(crate::crypto::CryptoError::Integrity)?;
    let key = FieldKey::new(&keyring.open_data_key(db, row.id, wrapped).await?)?;
    let open = |field, sealed: &Option<Vec<u8>>| {
        sealed
            .as_ref()
            .map(|s| {
                let ctx = FieldContext {
                    customer_id: row.id,
                    channel: PROFILE_DOMAIN,
                    record_id: row.id,
                    field,
                };
                key.open_string(&ctx, s)
            })
            .transpose()
    };
    Ok(OpenedProfile {
        display_name: open(field::DISPLAY_NAME, &row.display_name)?,
        external_ref: open(field::EXTERNAL_REF, &row.external_ref)?,
    })
}

/// Prepares a data key for sealing several fields.
pub fn field_key(data_key: &SecretKey) -> Result<FieldKey, VaultError> {
    Ok(FieldKey::new(data_key)?)
}

/// An interaction as released to a reader whose permit covers its channel.
pub struct OpenedInteraction {
    pub id: Uuid,
    pub channel: String,
    pub kind: String,
    pub body: Zeroizing<String>,
    pub created_at: OffsetDateTime,
    pub due_at: Option<OffsetDateTime>,
    pub resolved_at: Option<OffsetDateTime>,
}

/// Field keys of one customer, unwrapped once per channel for a read that
/// opens many records (a customer may have thousands of interactions).
pub struct CustomerKeys<'a> {
    keyring: &'a Keyring,
    db: &'a Db,
    customer_id: Uuid,
    keys: std::collections::HashMap<String, FieldKey>,
}

impl<'a> CustomerKeys<'a> {
    pub fn new(keyring: &'a Keyring, db: &'a Db, customer_id: Uuid) -> Self {
        CustomerKeys {
            keyring,
            db,
            customer_id,
            keys: std::collections::HashMap::new(),
        }
    }

    async fn key(&mut self, wrapped: Option<&WrappedDataKey>) -> Result<&FieldKey, VaultError> {
        let wrapped = wrapped.ok_or(crate::crypto::CryptoError::Integrity)?;
        if !self.keys.contains_key(&wrapped.channel) {
            let data_key = self
                .keyring
                .open_data_key(self.db, self.customer_id, wrapped)
                .await?;
            self.keys
                .insert(wrapped.channel.clone(), FieldKey::new(&data_key)?);
        }
        self.keys
            .get(&wrapped.channel)
            .ok_or(VaultError::Crypto(crate::crypto::CryptoError::Integrity))
    }

    /// Opens an interaction under a permit for its channel.
    pub async fn open_interaction(
        &mut self,
        permit: &Permit,
        row: &InteractionRow,
    ) -> Result<OpenedInteraction, VaultError> {
        if permit.channel().as_str() != row.channel {
            return Err(VaultError::PermitMismatch);
        }
        let customer_id = self.customer_id;
        let key = self.key(row.key.as_ref()).await?;
        let ctx = FieldContext {
            customer_id,
            channel: &row.channel,
            record_id: row.id,
            field: field::BODY,
        };
        Ok(OpenedInteraction {
            id: row.id,
            channel: row.channel.clone(),
            kind: row.kind.clone(),
            body: key.open_string(&ctx, &row.body)?,
            created_at: from_micros(row.created_at),
            due_at: row.due_at.map(from_micros),
            resolved_at: row.resolved_at.map(from_micros),
        })
    }
}
