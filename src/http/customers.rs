//! Customers and contact points (DESIGN.md §8): create, read (filtered by the
//! integration rule), update, add and remove contact points.

use std::collections::BTreeMap;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use zeroize::Zeroizing;

pub use crate::service::{
    access::require_channel_write,
    input::{display_name, short_text},
    load::{live_profile, require_live},
};

use super::{
    audited::{finish, AuditScope},
    auth::require_role,
    error::{ApiError, ApiJson, ApiPath, ApiQuery},
    views::{rfc3339, ContactView, ProfileView, WithheldView},
    AppState,
};
use crate::{
    audit::{Action, Effect},
    crypto::{FieldKey, SecretKey},
    domain::{mask, normalise, ChannelId, ChannelKind, ContactError, NormalisedValue, Role},
    policy::{
        authorise_purpose, decide_channel, ChannelDecision, ChannelWrite, Disclosure, MaskMode,
        PurposeDenied, PurposeGrant, Retained, WithheldReason, WriteDenied,
    },
    store::{
        self,
        customers::{CustomerPatch, NewContact, NewCustomer},
        keys::WrappedDataKey,
        StoreError,
    },
    token::Actor,
    vault::{
        records::{self, field},
        PROFILE_DOMAIN,
    },
};

/// The customer routes. `DELETE /v1/customers/{id}` is the staff erasure of
/// [`super::dsr::erase`], routed here with the other operations on its path.
pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(create))
        .routes(utoipa_axum::routes!(read, patch, super::dsr::erase))
        .routes(utoipa_axum::routes!(add_contact))
        .routes(utoipa_axum::routes!(remove_contact))
}

/// Roles that may use the customer endpoints of this file.
const WRITERS: [Role; 2] = [Role::Agent, Role::Service];

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

/// Query of `GET /v1/customers/{id}`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// Why the data is read (required): a purpose of purposes.toml the token lists.
    #[param(required = true, example = "support")]
    pub purpose: Option<String>,
    /// Show values unmasked (needs `reason`; audited as `contact.reveal`).
    #[serde(default)]
    pub reveal: Option<bool>,
    /// Free text for the audit log, e.g. a ticket number.
    pub reason: Option<String>,
}

/// Most contact points accepted in one create request.
const MAX_CONTACTS: usize = 64;

/// A channel named in a request; 400 `unknown_channel` if the policy has none.
fn known_channel(s: &AppState, name: &str) -> Result<(ChannelId, ChannelKind, MaskMode), ApiError> {
    let (id, p) = s
        .policies
        .channel(name)
        .ok_or_else(|| ApiError::UnknownChannel(name.chars().take(32).collect()))?;
    Ok((id.clone(), p.kind, p.mask))
}

/// Parses a contact value with its channel's normaliser.
pub fn parse_contact(
    s: &AppState,
    channel: &str,
    value: &str,
) -> Result<(ChannelId, ChannelKind, MaskMode, NormalisedValue), ApiError> {
    let (id, kind, mask_mode) = known_channel(s, channel)?;
    let nv = normalise(kind, value, s.config.default_region).map_err(|e| match e {
        ContactError::InvalidEmail(_) => ApiError::InvalidEmail(e.to_string()),
        ContactError::InvalidPhone(_) => ApiError::InvalidPhone(e.to_string()),
        other => ApiError::InvalidRequest(other.to_string()),
    })?;
    Ok((id, kind, mask_mode, nv))
}

/// Maps a purpose refusal to its API error.
pub fn purpose_error(denied: PurposeDenied, purpose: &str) -> ApiError {
    match denied {
        PurposeDenied::Unknown => ApiError::UnknownPurpose(purpose.chars().take(32).collect()),
        PurposeDenied::NotAllowed => ApiError::PurposeNotAllowed,
    }
}

/// Grants the purpose of a read, recording it in the audit scope.
pub fn grant_purpose(
    s: &AppState,
    actor: &Actor,
    purpose: Option<&str>,
    scope: &mut AuditScope,
) -> Result<PurposeGrant, ApiError> {
    let purpose = purpose.ok_or_else(|| ApiError::InvalidRequest("purpose is required".into()))?;
    // Record what was asked for, even when refused (a well-formed name only:
    // arbitrary text does not go into the log).
    if let Ok(p) = crate::domain::Purpose::parse(purpose) {
        scope.purpose = Some(p.to_string());
    }
    let grant = authorise_purpose(
        &s.policies,
        actor.role,
        &actor.purposes,
        purpose,
        actor.channel.as_ref(),
    )
    .map_err(|d| purpose_error(d, purpose))?;
    scope.purpose = Some(grant.purpose().to_string());
    Ok(grant)
}

fn released_value(
    kind: ChannelKind,
    mode: MaskMode,
    nv: &NormalisedValue,
) -> (Zeroizing<String>, bool) {
    match mode {
        MaskMode::Never => (Zeroizing::new(nv.value().to_owned()), false),
        _ => (Zeroizing::new(mask(kind, nv.value())), true),
    }
}

/// Whether the caller may see `channel` of customer `id` under the
/// integration rule, reading for `support` (the purpose of keeping contact
/// points). A caller whose token does not carry `support` sees no channel.
async fn may_read_channel(
    s: &AppState,
    actor: &Actor,
    id: Uuid,
    channel: &ChannelId,
    at: OffsetDateTime,
) -> Result<bool, ApiError> {
    let Ok(grant) = authorise_purpose(
        &s.policies,
        actor.role,
        &actor.purposes,
        "support",
        actor.channel.as_ref(),
    ) else {
        return Ok(false);
    };
    let consents = super::consents::ledger(s, id).await?;
    let fresh = Retained::Contact {
        last_activity_at: at,
    };
    Ok(matches!(
        decide_channel(&s.policies, &grant, channel, &consents, fresh, false, at),
        ChannelDecision::Permit(_)
    ))
}

/// What `POST /v1/customers/{id}/contacts` answers a caller who may not see
/// the channel: the same 202 whether the value was new or already there.
#[derive(serde::Serialize, ToSchema)]
pub struct AcceptedContact {
    #[schema(example = "email")]
    pub channel: String,
    /// Always `accepted`.
    #[schema(example = "accepted")]
    pub status: &'static str,
}

/// `POST /v1/customers` (DESIGN.md §8). The 201 response describes what the
/// caller just wrote, masked: it releases nothing the caller did not send.
#[utoipa::path(post, path = "/v1/customers", operation_id = "createCustomer",
    summary = "Create a customer",
    description = "Creates a customer with an optional profile and contact points. Roles: \
        service, agent. The 201 answer describes what the caller just wrote, masked: it \
        releases nothing the caller did not send.",
    request_body = CreateCustomer,
    responses((status = 201, description = "The new customer, values masked.", body = ProfileView),
        (status = 400, description = "`invalid_request`, `invalid_email`, `invalid_phone`, `unknown_channel`, or `invalid_display_name`: the display name is empty, longer than 200 characters, or holds a control character or an invisible formatting character (a bidirectional override or isolate, a zero-width character, a byte-order mark)."),
        (status = 403, description = "`forbidden`: the role may not create customers, or an agent adds a contact point on another channel than its own."),
        (status = 409, description = "`contact_exists`: the request holds the same value twice on one channel.")),
    security(("bearer" = [])), tag = "customers")]
pub async fn create(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    body: Result<ApiJson<CreateCustomer>, ApiError>,
) -> Response {
    let mut scope = AuditScope::new(&auth, Action::CustomerCreate);
    let outcome = async {
        let actor = auth?;
        let ApiJson(body) = body?;
        create_inner(&s, &actor, body, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn create_inner(
    s: &AppState,
    actor: &Actor,
    body: CreateCustomer,
    scope: &mut AuditScope,
) -> Result<impl IntoResponse, ApiError> {
    require_role(actor, &WRITERS)?;
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
        .map(|c| known_channel(s, c))
        .transpose()?
        .map(|c| c.0);
    if body.contacts.len() > MAX_CONTACTS {
        return Err(ApiError::InvalidRequest(format!(
            "at most {MAX_CONTACTS} contacts per request"
        )));
    }
    let mut parsed = Vec::with_capacity(body.contacts.len());
    for c in &body.contacts {
        let (channel, kind, mode, nv) = parse_contact(s, &c.channel, &c.value)?;
        let label = c
            .label
            .as_deref()
            .map(|l| short_text("label", l, 64))
            .transpose()?
            .map(Zeroizing::new);
        parsed.push((channel, kind, mode, nv, label));
    }

    let id = Uuid::now_v7();
    let at = now();
    let micros = store::to_micros(at);
    let mut keys: BTreeMap<String, (FieldKey, WrappedDataKey)> = BTreeMap::new();
    // Kept to wrap them again should a key rotation retire their version meanwhile.
    let mut data_keys: Vec<(&str, SecretKey)> = Vec::new();
    let mut domains: Vec<&str> = parsed.iter().map(|p| p.0.as_str()).collect();
    if display_name.is_some() || external_ref.is_some() {
        domains.push(PROFILE_DOMAIN);
    }
    for d in domains {
        if !keys.contains_key(d) {
            let (key, wrapped) = s.keyring.new_data_key(&s.db, id, d).await?;
            keys.insert(d.to_owned(), (records::field_key(&key)?, wrapped));
            data_keys.push((d, key));
        }
    }
    let seal_profile = |f: &str,
                        v: &Option<Zeroizing<String>>|
     -> Result<Option<Vec<u8>>, ApiError> {
        match (v, keys.get(PROFILE_DOMAIN)) {
            (Some(v), Some((k, _))) => Ok(Some(records::seal(k, id, PROFILE_DOMAIN, id, f, v)?)),
            _ => Ok(None),
        }
    };
    let sealed_name = seal_profile(field::DISPLAY_NAME, &display_name)?;
    let sealed_ref = seal_profile(field::EXTERNAL_REF, &external_ref)?;

    let mut rows = Vec::with_capacity(parsed.len());
    let mut views = Vec::with_capacity(parsed.len());
    for (channel, kind, mode, nv, label) in &parsed {
        let (key, _) = keys.get(channel.as_str()).ok_or(ApiError::Internal)?;
        let cid = Uuid::now_v7();
        let value = records::seal(key, id, channel.as_str(), cid, field::VALUE, nv.value())?;
        let sealed_label = label
            .as_ref()
            .map(|l| records::seal(key, id, channel.as_str(), cid, field::LABEL, l))
            .transpose()?;
        rows.push(NewContact {
            id: cid,
            customer_id: id,
            channel: channel.to_string(),
            blind_index: s.blind.compute(channel.as_str(), nv.index_key()),
            value,
            label: sealed_label,
            now: micros,
        });
        let (shown, masked) = released_value(*kind, *mode, nv);
        views.push(ContactView {
            id: cid,
            channel: channel.to_string(),
            value: shown,
            masked,
            label: label.clone(),
            created_at: rfc3339(at),
        });
    }
    let wrapped: Vec<WrappedDataKey> = keys.into_values().map(|(_, w)| w).collect();
    let customer = NewCustomer {
        id,
        display_name: sealed_name.as_deref(),
        external_ref: sealed_ref.as_deref(),
        preferred_channel: preferred.as_ref().map(ChannelId::as_str),
        now: micros,
    };
    scope.customer_id = Some(id);
    let channels: Vec<String> = parsed.iter().map(|p| p.0.to_string()).collect();
    scope.detail("contacts", channels.len());
    scope.detail("channels", channels);
    scope.commit_before_write(s).await?;
    let mut stored = store::customers::create(&s.db, &customer, &wrapped, &rows).await;
    if let Err(StoreError::RetiredKeyVersion) = stored {
        // A key rotation retired the channel-key version these data keys were
        // wrapped under while this request ran: wrap them under the current one.
        s.keyring.reload(&s.db).await?;
        let mut rewrapped = Vec::with_capacity(data_keys.len());
        for (domain, key) in &data_keys {
            rewrapped.push(s.keyring.wrap_data_key(&s.db, id, domain, key).await?);
        }
        stored = store::customers::create(&s.db, &customer, &rewrapped, &rows).await;
    }
    stored.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::ContactExists,
        other => other.into(),
    })?;
    let view = ProfileView {
        id,
        display_name,
        external_ref,
        preferred_channel: preferred.map(|c| c.to_string()),
        created_at: rfc3339(at),
        contacts: views,
        withheld: Vec::new(),
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /v1/customers/{id}` (DESIGN.md §5, §8): the profile filtered by the
/// integration rule; values masked unless `reveal=true` with a `reason`.
#[utoipa::path(get, path = "/v1/customers/{id}", operation_id = "readCustomer",
    summary = "Read a customer's profile",
    description = "The profile filtered by the integration rule: each channel's contact \
        points are shown only when the purpose, the customer's consent and the retention \
        rules allow it; the others are listed under `withheld` with the reason. Values are \
        masked unless `reveal=true` with a `reason` (audited as `contact.reveal`, rate-limited \
        per caller). Roles: agent, service.",
    params(("id" = Uuid, Path, description = "The customer's id."), ReadQuery),
    responses((status = 200, description = "The profile as the caller may see it.", body = ProfileView),
        (status = 400, description = "`invalid_request` (no `purpose`, or `reveal` without `reason`) or `unknown_purpose`."),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`: the role, or the token's purposes, do not allow this read."),
        (status = 410, description = "`customer_erased`: the customer has been erased."),
        (status = 429, description = "`rate_limited`: too many reveals by this caller.")),
    security(("bearer" = [])), tag = "customers")]
pub async fn read(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    query: Result<ApiQuery<ReadQuery>, ApiError>,
) -> Response {
    let mut scope =
        AuditScope::new(&auth, Action::CustomerRead).customer(path.as_ref().ok().map(|p| p.0));
    let outcome = async {
        let actor = auth?;
        let ApiPath(id) = path?;
        let ApiQuery(q) = query?;
        read_inner(&s, &actor, id, q, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn read_inner(
    s: &AppState,
    actor: &Actor,
    id: Uuid,
    q: ReadQuery,
    scope: &mut AuditScope,
) -> Result<Json<ProfileView>, ApiError> {
    require_role(actor, &WRITERS)?;
    let reveal = q.reveal.unwrap_or(false);
    if reveal {
        scope.action = Action::ContactReveal;
        s.limiter
            .check(crate::policy::LimitedAction::Reveal, actor)?;
    }
    let grant = grant_purpose(s, actor, q.purpose.as_deref(), scope)?;
    let reason = q
        .reason
        .as_deref()
        .map(|r| short_text("reason", r, 200))
        .transpose()?;
    if reveal && reason.is_none() {
        return Err(ApiError::InvalidRequest(
            "reveal=true needs a reason".into(),
        ));
    }
    scope.reason = reason;

    let store::customers::Profile {
        customer,
        contacts,
        consents,
    } = live_profile(s, id).await?;
    let at = now();
    let consents = super::consents::ledger_of_facts(&consents);
    let mut disclosure = Disclosure::default();
    let mut views = Vec::new();
    for c in &contacts {
        let item = Retained::Contact {
            last_activity_at: store::from_micros(c.last_activity_at),
        };
        let decision = match ChannelId::parse(&c.channel) {
            Ok(ch) => decide_channel(&s.policies, &grant, &ch, &consents, item, reveal, at),
            Err(_) => ChannelDecision::Withhold(WithheldReason::IntegrationNever),
        };
        disclosure.record(&c.channel, &decision);
        if let ChannelDecision::Permit(permit) = &decision {
            let kind = channel_kind(s, &c.channel);
            let opened = records::open_contact(&s.keyring, &s.db, permit, kind, id, c).await.map_err(|e| {
                tracing::error!(customer_id = %id, contact_id = %c.id, error = %e, "contact failed to open");
                ApiError::from(e)
            })?;
            views.push(ContactView::from(opened));
        }
    }
    let withheld = WithheldView::list(&disclosure);
    let profile = records::open_profile(&s.keyring, &s.db, &grant, &customer)
        .await
        .map_err(|e| {
            tracing::error!(customer_id = %id, error = %e, "profile fields failed to open");
            ApiError::from(e)
        })?;
    scope.disclosure(&disclosure);
    scope.detail("revealed", views.iter().any(|v| !v.masked));
    Ok(Json(ProfileView {
        id,
        display_name: profile.display_name,
        external_ref: profile.external_ref,
        preferred_channel: customer.preferred_channel,
        created_at: rfc3339(store::from_micros(customer.created_at)),
        contacts: views,
        withheld,
    }))
}

/// `PATCH /v1/customers/{id}`: display name and preferred channel; 204.
#[utoipa::path(patch, path = "/v1/customers/{id}", operation_id = "updateCustomer",
    summary = "Update a customer's profile",
    description = "Sets or clears (`null`) the display name and the preferred channel; an \
        absent field is left alone. Roles: service, agent.",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    request_body = PatchCustomer,
    responses((status = 204, description = "Updated."),
        (status = 400, description = "`invalid_request`, `unknown_channel`, or `invalid_display_name` (as for create)."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "customers")]
pub async fn patch(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    body: Result<ApiJson<PatchCustomer>, ApiError>,
) -> Response {
    let mut scope =
        AuditScope::new(&auth, Action::CustomerUpdate).customer(path.as_ref().ok().map(|p| p.0));
    let outcome = async {
        let actor = auth?;
        let ApiPath(id) = path?;
        let ApiJson(body) = body?;
        patch_inner(&s, &actor, id, body, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn patch_inner(
    s: &AppState,
    actor: &Actor,
    id: Uuid,
    body: PatchCustomer,
    scope: &mut AuditScope,
) -> Result<StatusCode, ApiError> {
    require_role(actor, &WRITERS)?;
    let display_name = match &body.display_name {
        Some(Some(v)) => Some(Some(display_name(v)?)),
        Some(None) => Some(None),
        None => None,
    };
    let preferred = match &body.preferred_channel {
        Some(Some(c)) => Some(Some(known_channel(s, c)?.0)),
        Some(None) => Some(None),
        None => None,
    };
    require_live(s, id).await?;
    let mut fields = Vec::new();
    if body.display_name.is_some() {
        fields.push("display_name");
    }
    if body.preferred_channel.is_some() {
        fields.push("preferred_channel");
    }
    scope.detail("fields", fields);
    scope.commit_before_write(s).await?;
    let sealed_name = match &display_name {
        Some(Some(v)) => {
            let key = records::field_key(
                &s.keyring
                    .data_key_for_write(&s.db, id, PROFILE_DOMAIN)
                    .await?,
            )?;
            Some(Some(records::seal(
                &key,
                id,
                PROFILE_DOMAIN,
                id,
                field::DISPLAY_NAME,
                v,
            )?))
        }
        Some(None) => Some(None),
        None => None,
    };
    let patch = CustomerPatch {
        display_name: sealed_name.as_ref().map(|o| o.as_deref()),
        preferred_channel: preferred
            .as_ref()
            .map(|o| o.as_ref().map(ChannelId::as_str)),
        now: store::to_micros(now()),
    };
    if !store::customers::update(&s.db, id, &patch).await? {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/customers/{id}/contacts`. A caller who may read the channel
/// under the integration rule gets 201 with the contact (masked), or 409
/// `contact_exists` when the customer already holds the value there. Anyone
/// else gets 202 without an id, whether the value was new or not: a status
/// code must not confirm a guessed value on a channel the caller cannot see.
/// Both outcomes take the same path (one commit with the audit entry, which
/// records the real outcome in its detail).
#[utoipa::path(post, path = "/v1/customers/{id}/contacts", operation_id = "addContact",
    summary = "Add a contact point",
    description = "A caller who may read the channel under the integration rule (for \
        `support`) gets 201 with the contact (masked), or 409 `contact_exists` when the \
        customer already holds the value there. Anyone else gets 202 without an id, whether \
        the value was new or not: a status code must not confirm a guessed value on a \
        channel the caller cannot see. Roles: service, agent (own channel only).",
    params(("id" = Uuid, Path, description = "The customer's id.")),
    request_body = NewContactBody,
    responses((status = 201, description = "Added; the contact, masked.", body = ContactView),
        (status = 202, description = "Accepted, for a caller who may not read the channel.", body = AcceptedContact),
        (status = 400, description = "`invalid_request`, `invalid_email`, `invalid_phone` or `unknown_channel`."),
        (status = 403, description = "`forbidden`: the role may not add contact points, or an agent writes on another channel than its own."),
        (status = 409, description = "`contact_exists`: the customer already holds this value on this channel."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "customers")]
pub async fn add_contact(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    body: Result<ApiJson<NewContactBody>, ApiError>,
) -> Response {
    let mut scope =
        AuditScope::new(&auth, Action::ContactAdd).customer(path.as_ref().ok().map(|p| p.0));
    let outcome = async {
        let actor = auth?;
        let ApiPath(id) = path?;
        let ApiJson(body) = body?;
        add_contact_inner(&s, &actor, id, body, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn add_contact_inner(
    s: &AppState,
    actor: &Actor,
    id: Uuid,
    body: NewContactBody,
    scope: &mut AuditScope,
) -> Result<Response, ApiError> {
    require_role(actor, &WRITERS)?;
    let (channel, kind, mode, nv) = parse_contact(s, &body.channel, &body.value)?;
    scope.channel = Some(channel.to_string());
    require_channel_write(actor, &channel, ChannelWrite::ContactAdd, scope)?;
    let label = body
        .label
        .as_deref()
        .map(|l| short_text("label", l, 64))
        .transpose()?
        .map(Zeroizing::new);
    require_live(s, id).await?;
    let at = now();
    let visible = may_read_channel(s, actor, id, &channel, at).await?;
    let blind_index = s.blind.compute(channel.as_str(), nv.index_key());
    let duplicate =
        store::customers::has_contact_value(&s.db, id, channel.as_str(), &blind_index).await?;
    let cid = Uuid::now_v7();
    scope.detail("outcome", if duplicate { "duplicate" } else { "added" });
    scope.detail("channel_visible", visible);
    if !duplicate {
        scope.detail("contact_id", cid.to_string());
    }
    // The same work on both paths: the key, the seal and one commit that
    // carries the entry and the insert (which a duplicate leaves undone).
    let key = records::field_key(
        &s.keyring
            .data_key_for_write(&s.db, id, channel.as_str())
            .await?,
    )?;
    let row = NewContact {
        id: cid,
        customer_id: id,
        channel: channel.to_string(),
        blind_index,
        value: records::seal(&key, id, channel.as_str(), cid, field::VALUE, nv.value())?,
        label: label
            .as_ref()
            .map(|l| records::seal(&key, id, channel.as_str(), cid, field::LABEL, l))
            .transpose()?,
        now: store::to_micros(at),
    };
    let added = scope.commit_with(s, Effect::Contact(row)).await?;
    if !added && !duplicate {
        // Not inserted though the value was new: the customer was erased
        // meanwhile, or the same value arrived meanwhile. (A known value is
        // not checked again, so its path costs no more than an add's.)
        require_live(s, id).await?;
    }
    if !visible {
        return Ok((
            StatusCode::ACCEPTED,
            Json(AcceptedContact {
                channel: channel.to_string(),
                status: "accepted",
            }),
        )
            .into_response());
    }
    if !added {
        return Err(ApiError::ContactExists);
    }
    let (value, masked) = released_value(kind, mode, &nv);
    Ok((
        StatusCode::CREATED,
        Json(ContactView {
            id: cid,
            channel: channel.to_string(),
            value,
            masked,
            label,
            created_at: rfc3339(at),
        }),
    )
        .into_response())
}

/// `DELETE /v1/customers/{id}/contacts/{contact_id}`: 204.
#[utoipa::path(delete, path = "/v1/customers/{id}/contacts/{contact_id}", operation_id = "removeContact",
    summary = "Remove a contact point",
    description = "Roles: service, agent (own channel only).",
    params(("id" = Uuid, Path, description = "The customer's id."),
        ("contact_id" = Uuid, Path, description = "The contact point's id.")),
    responses((status = 204, description = "Removed."),
        (status = 410, description = "`customer_erased`: the customer has been erased.")),
    security(("bearer" = [])), tag = "customers")]
pub async fn remove_contact(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<(Uuid, Uuid)>, ApiError>,
) -> Response {
    let mut scope =
        AuditScope::new(&auth, Action::ContactRemove).customer(path.as_ref().ok().map(|p| p.0 .0));
    let outcome = async {
        let actor = auth?;
        let ApiPath((id, contact_id)) = path?;
        scope.detail("contact_id", contact_id.to_string());
        remove_contact_inner(&s, &actor, id, contact_id, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn remove_contact_inner(
    s: &AppState,
    actor: &Actor,
    id: Uuid,
    contact_id: Uuid,
    scope: &mut AuditScope,
) -> Result<StatusCode, ApiError> {
    require_role(actor, &WRITERS)?;
    require_live(s, id).await?;
    let channel = store::customers::contact_channel(&s.db, id, contact_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    scope.channel = Some(channel.clone());
    // A channel since removed from the policy cannot be parsed back into
    // a name only an agent of it could serve: nobody's own channel.
    match ChannelId::parse(&channel) {
        Ok(ch) => require_channel_write(actor, &ch, ChannelWrite::ContactRemove, scope)?,
        Err(_) if actor.role == Role::Service => {}
        Err(_) => return Err(ApiError::WriteRefused(WriteDenied::OtherChannel.explain())),
    }
    scope.commit_before_write(s).await?;
    store::customers::remove_contact(&s.db, id, contact_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Now, from the vault's clock.
pub(crate) fn now() -> OffsetDateTime {
    crate::clock::Clock::system().now()
}

/// How a stored channel's values are masked (see [`crate::service::Services::channel_kind`]).
pub(crate) fn channel_kind(s: &AppState, channel: &str) -> ChannelKind {
    s.channel_kind(channel)
}
