//! The notifier: delivers what the vault has to tell a customer (today their
//! sign-in codes) through the shop's own messaging, from a durable outbox.
//!
//! A message is queued sealed in `notifier_outbox` in the same transaction
//! as the challenge it belongs to ([`crate::store::sign_in::insert`]); the
//! [`worker`] of every `serve` process claims due messages with a lease,
//! opens them, delivers them and deletes them, retrying a failed delivery
//! with exponential backoff until the message expires. Where to:
//!
//! - [`Delivery::Webhook`] (`ARKKU_NOTIFY_URL`): an HTTP POST of the
//!   message as JSON, signed in the `arkku-signature` header ([`webhook`]);
//! - [`Delivery::File`] (`ARKKU_NOTIFY=file`, for development): one JSON
//!   line appended to `<data-dir>/outbox.jsonl`, mode 0600 ([`file`]);
//! - [`Delivery::None`]: nothing is delivered; messages wait in the outbox
//!   (for a node that has a notifier) and are dropped when they expire.
//!
//! The code and the address a message goes to are in memory only while it
//! is sealed, opened and sent; they are never logged.

pub mod file;
pub mod webhook;
pub mod worker;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::{CryptoError, FieldContext, FieldKey};

/// The kind of a sign-in code message (the `type` its receiver sees).
pub const SIGN_IN_CODE: &str = "sign_in_code";

/// Where this process delivers.
pub enum Delivery {
    None,
    File(std::path::PathBuf),
    Webhook(Box<webhook::Webhook>),
}

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Delivery {
    /// How it delivers, for logs: `none`, `file` or `webhook`.
    pub fn name(&self) -> &'static str {
        match self {
            Delivery::None => "none",
            Delivery::File(_) => "file",
            Delivery::Webhook(_) => "webhook",
        }
    }
}

/// What a sealed sign-in message holds.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct Secret {
    to: String,
    code: String,
}

/// Where a message's ciphertext belongs: bound to its row, customer,
/// channel and kind, so a sealed message copied to another row does not open.
fn context<'a>(id: Uuid, customer_id: Uuid, channel: &'a str, kind: &'a str) -> FieldContext<'a> {
    FieldContext {
        customer_id,
        channel,
        record_id: id,
        field: kind,
    }
}

/// Seals a sign-in code message for outbox row `id`.
pub fn seal_sign_in_code(
    key: &FieldKey,
    id: Uuid,
    customer_id: Uuid,
    channel: &str,
    to: &str,
    code: &str,
) -> Result<Vec<u8>, CryptoError> {
    let secret = Secret {
        to: to.to_owned(),
        code: code.to_owned(),
    };
    let plain = Zeroizing::new(serde_json::to_vec(&secret).map_err(|_| CryptoError::Integrity)?);
    key.seal(&context(id, customer_id, channel, SIGN_IN_CODE), &plain)
}

/// A message ready to deliver: its JSON body, wiped from memory on drop.
pub struct Outgoing {
    pub id: Uuid,
    pub channel: String,
    pub body: Zeroizing<Vec<u8>>,
}

/// The JSON a receiver gets.
#[derive(Serialize)]
struct Wire<'a> {
    /// The message's id, the same on every delivery attempt: a receiver
    /// that keeps the ids it has seen can drop a repeat.
    id: Uuid,
    #[serde(rename = "type")]
    kind: &'a str,
    channel: &'a str,
    to: &'a str,
    code: &'a str,
    expires_at: String,
}

/// Opens a claimed message and renders the body its receiver gets.
pub fn open(key: &FieldKey, m: &crate::store::outbox::Claimed) -> Result<Outgoing, CryptoError> {
    if m.kind != SIGN_IN_CODE {
        return Err(CryptoError::UnsupportedFormat(0));
    }
    let plain = key.open(
        &context(m.id, m.customer_id, &m.channel, &m.kind),
        &m.message,
    )?;
    let secret: Secret = serde_json::from_slice(&plain).map_err(|_| CryptoError::Integrity)?;
    let expires_at: OffsetDateTime = crate::store::from_micros(m.expires_at);
    let wire = Wire {
        id: m.id,
        kind: SIGN_IN_CODE,
        channel: &m.channel,
        to: &secret.to,
        code: &secret.code,
        expires_at: crate::domain::time::rfc3339(expires_at),
    };
    let body = Zeroizing::new(serde_json::to_vec(&wire).map_err(|_| CryptoError::Integrity)?);
    Ok(Outgoing {
        id: m.id,
        channel: m.channel.clone(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{crypto::SecretKey, store::outbox::Claimed};

    fn claimed(key: &FieldKey, id: Uuid, customer: Uuid) -> Claimed {
        Claimed {
            id,
            kind: SIGN_IN_CODE.to_owned(),
            customer_id: customer,
            channel: "email".to_owned(),
            message: seal_sign_in_code(key, id, customer, "email", "pena@example.com", "12345678")
                .unwrap(),
            expires_at: 1_800_000_000_000_000,
            attempts: 1,
        }
    }

    #[test]
    fn a_sealed_message_opens_to_the_body_a_receiver_gets() {
        let key = FieldKey::new(&SecretKey::from_bytes([3; 32])).unwrap();
        let (id, customer) = (Uuid::now_v7(), Uuid::now_v7());
        let m = claimed(&key, id, customer);
        assert!(!m
            .message
            .windows(8)
            .any(|w| w == b"12345678" || w == b"pena@exa"));
        let out = open(&key, &m).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"id": id, "type": "sign_in_code", "channel": "email",
                "to": "pena@example.com", "code": "12345678",
                "expires_at": "2027-01-15T08:00:00Z"})
        );
    }

    #[test]
    fn a_message_moved_to_another_row_or_customer_does_not_open() {
        let key = FieldKey::new(&SecretKey::from_bytes([3; 32])).unwrap();
        let m = claimed(&key, Uuid::now_v7(), Uuid::now_v7());
        let moved = Claimed {
            id: Uuid::now_v7(),
            ..claimed(&key, Uuid::now_v7(), m.customer_id)
        };
        let moved = Claimed {
            message: m.message.clone(),
            ..moved
        };
        assert!(open(&key, &moved).is_err());
        let other_customer = Claimed {
            customer_id: Uuid::now_v7(),
            ..claimed(&key, m.id, m.customer_id)
        };
        assert!(open(&key, &other_customer).is_err());
    }
}
