//! Updating a customer's profile: display name and preferred channel. The
//! entry, naming the fields changed (never their values), is committed
//! before the change.

use serde::{Deserialize, Deserializer};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{key_for_write, seal_profile_field};
use crate::{
    audit::Action,
    domain::ChannelId,
    policy::Operation,
    service::{
        audited::AuditScope, input::display_name, load::require_live, Caller, Error, Services,
    },
    store::{self, customers::CustomerPatch},
    token::Actor,
    vault::{records::field, PROFILE_DOMAIN},
};

/// Body of `PATCH /v1/customers/{id}`: an absent field is left alone, `null` clears it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchCustomer {
    /// As in create (400 `invalid_display_name`); `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub preferred_channel: Option<Option<String>>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Applies a patch to customer `id` (204): 404 if there is no such
/// customer, 410 if erased.
pub async fn update(
    svc: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
    input: Result<PatchCustomer, Error>,
) -> Result<(), Error> {
    let named = id.as_ref().ok().copied();
    svc.audited_for(
        caller,
        Action::CustomerUpdate,
        named,
        async |actor, scope| update_as(svc, actor, id?, input?, scope).await,
    )
    .await
}

async fn update_as(
    svc: &Services,
    actor: &Actor,
    id: Uuid,
    body: PatchCustomer,
    scope: &mut AuditScope,
) -> Result<(), Error> {
    svc.authorise(actor, Operation::UpdateCustomer, None, scope)?;
    let name = match &body.display_name {
        Some(Some(v)) => Some(Some(display_name(v)?)),
        Some(None) => Some(None),
        None => None,
    };
    let preferred = match &body.preferred_channel {
        Some(Some(c)) => Some(Some(svc.known_channel(c)?.0)),
        Some(None) => Some(None),
        None => None,
    };
    require_live(svc, id).await?;
    // The fields changed, never their values.
    let fields: Vec<&str> = [
        body.display_name.as_ref().map(|_| "display_name"),
        body.preferred_channel.as_ref().map(|_| "preferred_channel"),
    ]
    .into_iter()
    .flatten()
    .collect();
    scope.detail("fields", fields);
    scope.commit_before_write(svc).await?;
    let sealed_name = match &name {
        Some(Some(v)) => {
            let key = key_for_write(svc, id, PROFILE_DOMAIN).await?;
            Some(Some(seal_profile_field(&key, id, field::DISPLAY_NAME, v)?))
        }
        Some(None) => Some(None),
        None => None,
    };
    let patch = CustomerPatch {
        display_name: sealed_name.as_ref().map(|o| o.as_deref()),
        preferred_channel: preferred
            .as_ref()
            .map(|o| o.as_ref().map(ChannelId::as_str)),
        now: store::to_micros(svc.clock.now()),
    };
    if !store::customers::update(&svc.db, id, &patch).await? {
        return Err(Error::NotFound);
    }
    Ok(())
}
