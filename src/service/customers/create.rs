//! Creating a customer with its profile and contact points in one request.
//! Every key domain the new record uses (each contact's channel, and the
//! profile if it has fields) gets a fresh data key; the entry is committed
//! before the rows, and the answer describes what the caller just wrote,
//! masked.

use std::collections::BTreeMap;

use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{label, seal_profile_field, written_view, NewContactBody};
use crate::{
    audit::Action,
    crypto::{FieldKey, SecretKey},
    domain::ChannelId,
    policy::Operation,
    service::{
        audited::AuditScope,
        contact::ParsedContact,
        input::{display_name, short_text},
        views::{rfc3339, ProfileView},
        Caller, Error, Services,
    },
    store::{
        self,
        customers::{NewContact, NewCustomer},
        keys::WrappedDataKey,
        StoreError,
    },
    token::Actor,
    vault::{records, records::field, PROFILE_DOMAIN},
};

/// Most contact points accepted in one create request.
const MAX_CONTACTS: usize = 64;

/// Body of `POST /v1/customers`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomer {
    #[serde(default)]
    pub external_ref: Option<String>,
    /// 1 to 200 characters after trimming; no control characters and no
    /// invisible formatting characters (else 400 `invalid_display_name`).
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub preferred_channel: Option<String>,
    #[serde(default)]
    pub contacts: Vec<NewContactBody>,
}

/// A create request, parsed.
struct NewRecord {
    display_name: Option<Zeroizing<String>>,
    external_ref: Option<Zeroizing<String>>,
    preferred: Option<ChannelId>,
    contacts: Vec<(ParsedContact, Option<Zeroizing<String>>)>,
}

/// Creates a customer: the new profile (201), values masked. 409
/// `contact_exists` if the request holds one value twice on a channel.
pub async fn create(
    svc: &Services,
    caller: &Caller,
    input: Result<CreateCustomer, Error>,
) -> Result<ProfileView, Error> {
    svc.audited(caller, Action::CustomerCreate, async |actor, scope| {
        create_as(svc, actor, input?, scope).await
    })
    .await
}

async fn create_as(
    svc: &Services,
    actor: &Actor,
    body: CreateCustomer,
    scope: &mut AuditScope,
) -> Result<ProfileView, Error> {
    svc.authorise(actor, Operation::CreateCustomer, None, scope)?;
    let new = parse(svc, body)?;
    let id = Uuid::now_v7();
    let at = svc.clock.now();
    let keys = NewKeys::generate(svc, id, &new).await?;
    let seal = |f, v: &Option<Zeroizing<String>>| -> Result<Option<Vec<u8>>, Error> {
        match (v, keys.field_key(PROFILE_DOMAIN)) {
            (Some(v), Some(k)) => Ok(Some(seal_profile_field(k, id, f, v)?)),
            _ => Ok(None),
        }
    };
    let sealed_name = seal(field::DISPLAY_NAME, &new.display_name)?;
    let sealed_ref = seal(field::EXTERNAL_REF, &new.external_ref)?;
    let mut rows = Vec::with_capacity(new.contacts.len());
    let mut views = Vec::with_capacity(new.contacts.len());
    for (contact, label) in &new.contacts {
        let key = keys
            .field_key(contact.channel.as_str())
            .ok_or(Error::Internal)?;
        let row = svc.seal_contact(key, id, contact, label.as_deref().map(|l| l.as_str()), at)?;
        views.push(written_view(&row, contact, label.clone(), at));
        rows.push(row);
    }
    let customer = NewCustomer {
        id,
        display_name: sealed_name.as_deref(),
        external_ref: sealed_ref.as_deref(),
        preferred_channel: new.preferred.as_ref().map(ChannelId::as_str),
        now: store::to_micros(at),
    };
    scope.customer_id = Some(id);
    let channels: Vec<String> = new
        .contacts
        .iter()
        .map(|c| c.0.channel.to_string())
        .collect();
    scope.detail("contacts", channels.len());
    scope.detail("channels", channels);
    scope.commit_before_write(svc).await?;
    store_record(svc, &keys, &customer, &rows).await?;
    Ok(ProfileView {
        id,
        display_name: new.display_name,
        external_ref: new.external_ref,
        preferred_channel: new.preferred.map(|c| c.to_string()),
        created_at: rfc3339(at),
        contacts: views,
        withheld: Vec::new(),
    })
}

/// Parses every field of a create request, in the order the errors are
/// reported: display name, external reference, preferred channel, the
/// number of contacts, then each contact (channel, value, label).
fn parse(svc: &Services, body: CreateCustomer) -> Result<NewRecord, Error> {
    let display_name = body.display_name.as_deref().map(display_name).transpose()?;
    let external_ref = body
        .external_ref
        .as_deref()
        .map(|v| short_text("external_ref", v, 200))
        .transpose()?
        .map(Zeroizing::new);
    let preferred = body
        .preferred_channel
        .as_deref()
        .map(|c| svc.known_channel(c))
        .transpose()?
        .map(|c| c.0);
    if body.contacts.len() > MAX_CONTACTS {
        return Err(Error::InvalidRequest(format!(
            "at most {MAX_CONTACTS} contacts per request"
        )));
    }
    let mut contacts = Vec::with_capacity(body.contacts.len());
    for c in &body.contacts {
        let contact = svc.parse_contact(&c.channel, &c.value)?;
        contacts.push((contact, label(c.label.as_deref())?));
    }
    Ok(NewRecord {
        display_name,
        external_ref,
        preferred,
        contacts,
    })
}

/// The fresh data keys of a new record, one per key domain it uses. The
/// plain keys are kept to wrap them again should a key rotation retire
/// their channel-key version while the request runs.
struct NewKeys {
    id: Uuid,
    keys: BTreeMap<String, (SecretKey, FieldKey, WrappedDataKey)>,
}

impl NewKeys {
    async fn generate(svc: &Services, id: Uuid, new: &NewRecord) -> Result<Self, Error> {
        let mut domains: Vec<&str> = new.contacts.iter().map(|c| c.0.channel.as_str()).collect();
        if new.display_name.is_some() || new.external_ref.is_some() {
            domains.push(PROFILE_DOMAIN);
        }
        let mut keys = BTreeMap::new();
        for d in domains {
            if !keys.contains_key(d) {
                let (key, wrapped) = svc.keyring.new_data_key(&svc.db, id, d).await?;
                let field_key = records::field_key(&key)?;
                keys.insert(d.to_owned(), (key, field_key, wrapped));
            }
        }
        Ok(NewKeys { id, keys })
    }

    /// The key that seals fields of `domain`.
    fn field_key(&self, domain: &str) -> Option<&FieldKey> {
        self.keys.get(domain).map(|k| &k.1)
    }

    fn wrapped(&self) -> Vec<WrappedDataKey> {
        self.keys.values().map(|k| k.2.clone()).collect()
    }

    /// The same keys wrapped under the current channel-key versions.
    async fn rewrapped(&self, svc: &Services) -> Result<Vec<WrappedDataKey>, Error> {
        let mut rewrapped = Vec::with_capacity(self.keys.len());
        for (domain, (key, _, _)) in &self.keys {
            rewrapped.push(
                svc.keyring
                    .wrap_data_key(&svc.db, self.id, domain, key)
                    .await?,
            );
        }
        Ok(rewrapped)
    }
}

/// Stores the record: customer row, data keys and contact rows in one
/// transaction; 409 `contact_exists` if it holds one value twice.
async fn store_record(
    svc: &Services,
    keys: &NewKeys,
    customer: &NewCustomer<'_>,
    rows: &[NewContact],
) -> Result<(), Error> {
    let mut stored = store::customers::create(&svc.db, customer, &keys.wrapped(), rows).await;
    if let Err(StoreError::RetiredKeyVersion) = stored {
        // A key rotation retired the channel-key version these data keys were
        // wrapped under while this request ran: wrap them under the current one.
        svc.keyring.reload(&svc.db).await?;
        let rewrapped = keys.rewrapped(svc).await?;
        stored = store::customers::create(&svc.db, customer, &rewrapped, rows).await;
    }
    stored.map_err(|e| match e {
        StoreError::Conflict(_) => Error::ContactExists,
        other => other.into(),
    })
}
