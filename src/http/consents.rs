//! The consent ledger over HTTP (DESIGN.md §6): an agent records what the
//! customer said in the agent's channel, compliance staff act on the
//! customer's behalf, and the customer manages their own (`/v1/me/consents`).
//! Withdrawing is as easy as granting: same endpoint, same roles. Every change
//! returns a receipt; the ledger event is stored in the same transaction as
//! its audit entry.
//!
//! Who may record consent for which purpose is policy
//! ([`crate::policy::authorise_consent_record`]). The actor who reads must not
//! be able to attest a consent and then use it unchecked, so a grant an agent
//! records is stored `pending_confirmation`, opens nothing, and is flagged
//! for compliance review; the customer confirms it themselves with
//! `{"action": "confirm", "consent_id": …}` on `/v1/me/consents`, which
//! appends a confirmation event of its own (the ledger stays append-only).

use axum::{extract::State, http::StatusCode, response::Response, routing::get, Json, Router};
use serde::{Deserialize, Serialize};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    audited::{finish, AuditScope},
    auth::{own_customer, own_customer_id, require_role},
    customers::{now, require_live, short_text},
    error::{describe_body_error, ApiError, ApiJson, ApiPath},
    views::rfc3339,
    AppState,
};
use crate::{
    audit::{Action, Effect},
    domain::Role,
    policy::{
        authorise_consent_record, consent_current, ConsentStatus, LawfulBasis, PurposePolicy,
        WithheldReason, ANY_CHANNEL,
    },
    store::{
        self,
        consents::{ConsentRow, EFFECTIVE, PENDING_CONFIRMATION, REVIEW_AGENT_RECORDED},
    },
    token::Actor,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/customers/{id}/consents", get(list).post(record))
        .route("/v1/me/consents", get(list_mine).post(record_mine))
}

/// Who may use `/v1/customers/{id}/consents`.
const STAFF: [Role; 2] = [Role::Agent, Role::Compliance];

/// Body of a consent change.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    #[schema(example = "cross_channel")]
    pub purpose: String,
    /// A channel name or `*` for every channel.
    #[schema(example = "email")]
    pub channel: String,
    /// `grant` or `withdraw`.
    #[schema(example = "grant")]
    pub action: String,
    /// Required for a grant.
    #[serde(default)]
    pub evidence: Option<Evidence>,
    /// How it was given: `spoken`, `web_form`, `chat`, … (a-z and _).
    #[schema(example = "spoken")]
    pub method: String,
    /// When a grant ends by itself (RFC 3339), besides the purpose's max_age.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// Body of the customer's confirmation of a grant an agent recorded.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmBody {
    /// `confirm`.
    #[schema(example = "confirm")]
    pub action: String,
    /// The `consent_id` of the pending grant (from its receipt, or from the
    /// ledger's `current[].pending_consent_id`).
    pub consent_id: Uuid,
}

/// What the customer may post to `/v1/me/consents`: a change of their own,
/// or the confirmation of a grant an agent recorded.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // documents the request body; the handler parses by `action`
pub enum MyConsentBody {
    Change(ConsentBody),
    Confirm(ConfirmBody),
}

/// What a consent change returns.
#[derive(Serialize, ToSchema)]
pub struct Receipt {
    pub consent_id: Uuid,
    pub customer_id: Uuid,
    pub purpose: String,
    pub channel: String,
    pub action: String,
    pub at: String,
    pub evidence: Option<Evidence>,
    /// `effective`, or `pending_confirmation` for a grant an agent recorded:
    /// it opens nothing until the customer confirms it (the `consent_id` is
    /// the reference they confirm).
    #[schema(example = "pending_confirmation")]
    pub status: &'static str,
    /// On a confirmation: the pending grant it confirmed.
    pub confirms: Option<Uuid>,
    /// `agent_recorded` when the event is flagged for compliance review.
    pub review: Option<&'static str>,
}

/// The current state of one (purpose, channel).
#[derive(Serialize, ToSchema)]
pub struct ConsentState {
    pub purpose: String,
    pub channel: String,
    /// `granted`, `withdrawn`, `lapsed`, or `pending_confirmation` (a grant
    /// an agent recorded waits for the customer and opens nothing yet).
    pub status: &'static str,
    /// The grant awaiting the customer's confirmation, if any.
    pub pending_consent_id: Option<Uuid>,
}

/// `{current, history}`.
#[derive(Serialize, ToSchema)]
pub struct LedgerView {
    pub current: Vec<ConsentState>,
    pub history: Vec<ConsentEventView>,
}

pub use crate::service::ledger::{ledger_of, load as ledger, of_facts as ledger_of_facts};
pub use crate::service::views::{ConsentEventView, Evidence};

/// The grants awaiting confirmation: per (purpose, channel), its latest event
/// if that is a pending grant. Any later event (a withdrawal, a direct grant,
/// a newer pending grant, a confirmation) closes an older pending grant.
fn open_pending(rows: &[ConsentRow]) -> std::collections::BTreeMap<(&str, &str), &ConsentRow> {
    let mut latest = std::collections::BTreeMap::new();
    for r in rows {
        latest.insert((r.purpose.as_str(), r.channel.as_str()), r);
    }
    latest.retain(|_, r| r.status == PENDING_CONFIRMATION && r.action == "grant");
    latest
}

fn validate<'p>(
    s: &'p AppState,
    body: &ConsentBody,
) -> Result<(&'p PurposePolicy, Option<Evidence>, Option<i64>), ApiError> {
    let (_, purpose) = s
        .policies
        .purpose(&body.purpose)
        .ok_or_else(|| ApiError::UnknownPurpose(body.purpose.chars().take(32).collect()))?;
    if purpose.lawful_basis != LawfulBasis::Consent {
        return Err(ApiError::InvalidRequest(format!(
            "purpose {} does not rest on consent",
            body.purpose
        )));
    }
    if body.channel != ANY_CHANNEL && s.policies.channel(&body.channel).is_none() {
        return Err(ApiError::UnknownChannel(
            body.channel.chars().take(32).collect(),
        ));
    }
    let grant = match body.action.as_str() {
        "grant" => true,
        "withdraw" => false,
        _ => {
            return Err(ApiError::InvalidRequest(
                "action must be grant or withdraw".into(),
            ))
        }
    };
    if body.method.is_empty()
        || body.method.len() > 32
        || !body
            .method
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_')
    {
        return Err(ApiError::InvalidRequest(
            "method must be 1 to 32 characters of a-z and _".into(),
        ));
    }
    let evidence = match (&body.evidence, grant) {
        (Some(e), _) => Some(Evidence {
            notice_id: short_text("evidence.notice_id", &e.notice_id, 64)?,
            notice_version: short_text("evidence.notice_version", &e.notice_version, 32)?,
        }),
        (None, true) => {
            return Err(ApiError::InvalidRequest(
                "a grant needs evidence: the notice_id and notice_version the customer saw".into(),
            ))
        }
        (None, false) => None,
    };
    let expires_at = match &body.expires_at {
        None => None,
        Some(t) => {
            let t = OffsetDateTime::parse(t, &Rfc3339).map_err(|_| {
                ApiError::InvalidRequest("expires_at must be an RFC 3339 time".into())
            })?;
            if !grant || t <= now() {
                return Err(ApiError::InvalidRequest(
                    "expires_at must be in the future, on a grant".into(),
                ));
            }
            Some(store::to_micros(t))
        }
    };
    Ok((purpose, evidence, expires_at))
}

async fn record_inner(
    s: &AppState,
    actor: &Actor,
    customer_id: Uuid,
    body: ConsentBody,
    scope: &mut AuditScope,
) -> Result<(StatusCode, Json<Receipt>), ApiError> {
    if body.action == "withdraw" {
        scope.action = Action::ConsentWithdraw;
    }
    let (policy, evidence, expires_at) = validate(s, &body)?;
    scope.purpose = Some(body.purpose.clone());
    scope.channel = Some(body.channel.clone());
    let recording = authorise_consent_record(
        policy,
        actor.role,
        actor.channel.as_ref(),
        body.action == "grant",
    )
    .map_err(|d| {
        scope.detail("rule", d.as_str());
        ApiError::WriteRefused(d.explain())
    })?;
    require_live(s, customer_id).await?;
    let at = now();
    let status = if recording.pending_confirmation {
        PENDING_CONFIRMATION
    } else {
        EFFECTIVE
    };
    let review = recording.review.then_some(REVIEW_AGENT_RECORDED);
    let row = ConsentRow {
        id: Uuid::now_v7(),
        customer_id,
        purpose: body.purpose,
        channel: body.channel,
        action: body.action,
        notice_id: evidence.as_ref().map(|e| e.notice_id.clone()),
        notice_version: evidence.as_ref().map(|e| e.notice_version.clone()),
        method: body.method,
        // An agent records what the customer said on the channel it serves.
        source_channel: actor.channel.as_ref().map(|c| c.to_string()),
        actor_sub: actor.sub.clone(),
        actor_role: actor.role.as_str().to_owned(),
        at: store::to_micros(at),
        expires_at,
        status: status.to_owned(),
        confirms: None,
        review: review.map(str::to_owned),
    };
    commit_event(s, scope, row, evidence, at).await
}

/// Stores one ledger event with its audit entry and returns its receipt.
async fn commit_event(
    s: &AppState,
    scope: &mut AuditScope,
    row: ConsentRow,
    evidence: Option<Evidence>,
    at: OffsetDateTime,
) -> Result<(StatusCode, Json<Receipt>), ApiError> {
    let status = if row.status == PENDING_CONFIRMATION {
        PENDING_CONFIRMATION
    } else {
        EFFECTIVE
    };
    let review = row.review.as_ref().map(|_| REVIEW_AGENT_RECORDED);
    scope.detail("consent_id", row.id.to_string());
    scope.detail("status", status);
    if let Some(review) = review {
        // Compliance filters the log for these.
        scope.detail("review", review);
    }
    if let Some(confirms) = row.confirms {
        scope.detail("confirms", confirms.to_string());
    }
    // The ledger event rides its audit entry's commit: one transaction, no
    // commit of its own.
    let (id, customer_id, purpose, channel, action, confirms) = (
        row.id,
        row.customer_id,
        row.purpose.clone(),
        row.channel.clone(),
        row.action.clone(),
        row.confirms,
    );
    if !scope.commit_with(s, Effect::Consent(row)).await? {
        return Err(ApiError::CustomerErased);
    }
    Ok((
        StatusCode::CREATED,
        Json(Receipt {
            consent_id: id,
            customer_id,
            purpose,
            channel,
            action,
            at: rfc3339(at),
            evidence,
            status,
            confirms,
            review,
        }),
    ))
}

/// The customer confirms a grant an agent recorded for them: a new, effective
/// grant event with the pending grant's purpose, channel, evidence and expiry,
/// effective (and aging) from now. Only the latest event of its (purpose,
/// channel) can be confirmed: a later withdrawal or change closes it.
async fn confirm_inner(
    s: &AppState,
    actor: &Actor,
    customer_id: Uuid,
    body: ConfirmBody,
    scope: &mut AuditScope,
) -> Result<(StatusCode, Json<Receipt>), ApiError> {
    if body.action != "confirm" {
        return Err(ApiError::InvalidRequest(
            "action must be grant, withdraw or confirm".into(),
        ));
    }
    require_live(s, customer_id).await?;
    let rows = store::consents::for_customer(&s.db, customer_id).await?;
    let pending = rows
        .iter()
        .find(|r| r.id == body.consent_id)
        .ok_or(ApiError::NotFound)?;
    scope.purpose = Some(pending.purpose.clone());
    scope.channel = Some(pending.channel.clone());
    let open = open_pending(&rows);
    if open
        .get(&(pending.purpose.as_str(), pending.channel.as_str()))
        .map(|r| r.id)
        != Some(pending.id)
    {
        return Err(ApiError::ConsentNotPending);
    }
    let at = now();
    let evidence = match (&pending.notice_id, &pending.notice_version) {
        (Some(notice_id), Some(notice_version)) => Some(Evidence {
            notice_id: notice_id.clone(),
            notice_version: notice_version.clone(),
        }),
        _ => None,
    };
    let row = ConsentRow {
        id: Uuid::now_v7(),
        customer_id,
        purpose: pending.purpose.clone(),
        channel: pending.channel.clone(),
        action: "grant".to_owned(),
        notice_id: pending.notice_id.clone(),
        notice_version: pending.notice_version.clone(),
        method: "customer_confirmation".to_owned(),
        source_channel: None,
        actor_sub: actor.sub.clone(),
        actor_role: actor.role.as_str().to_owned(),
        at: store::to_micros(at),
        expires_at: pending.expires_at,
        status: EFFECTIVE.to_owned(),
        confirms: Some(pending.id),
        review: None,
    };
    commit_event(s, scope, row, evidence, at).await
}

async fn list_inner(
    s: &AppState,
    customer_id: Uuid,
    scope: &mut AuditScope,
) -> Result<Json<LedgerView>, ApiError> {
    scope.detail("part", "consents");
    require_live(s, customer_id).await?;
    let rows = store::consents::for_customer(&s.db, customer_id).await?;
    let at = now();
    let pending = open_pending(&rows);
    let mut current: Vec<ConsentState> = ledger_of(&rows)
        .entries()
        .map(|(purpose, channel, status)| {
            let effective = match status {
                ConsentStatus::Withdrawn | ConsentStatus::None => "withdrawn",
                granted => match consent_current(&s.policies, purpose, granted, at) {
                    Ok(()) => "granted",
                    Err(WithheldReason::ConsentLapsed) => "lapsed",
                    Err(_) => "withdrawn",
                },
            };
            state(purpose, channel, Some(effective), &pending)
        })
        .collect();
    // A pending grant with no effective event before it.
    for (purpose, channel) in pending.keys() {
        if !current
            .iter()
            .any(|c| c.purpose == *purpose && c.channel == *channel)
        {
            current.push(state(purpose, channel, None, &pending));
        }
    }
    current.sort_by(|a, b| (&a.purpose, &a.channel).cmp(&(&b.purpose, &b.channel)));
    let history = rows.into_iter().map(ConsentEventView::from).collect();
    Ok(Json(LedgerView { current, history }))
}

/// One (purpose, channel) of the `current` view: what opens data (`granted`)
/// wins; otherwise a grant awaiting confirmation shows as
/// `pending_confirmation`; otherwise the effective state.
fn state(
    purpose: &str,
    channel: &str,
    effective: Option<&'static str>,
    pending: &std::collections::BTreeMap<(&str, &str), &ConsentRow>,
) -> ConsentState {
    let pending_consent_id = pending.get(&(purpose, channel)).map(|r| r.id);
    let status = match (effective, pending_consent_id) {
        (Some("granted"), _) => "granted",
        (_, Some(_)) => PENDING_CONFIRMATION,
        (Some(other), None) => other,
        (None, None) => "withdrawn",
    };
    ConsentState {
        purpose: purpose.to_owned(),
        channel: channel.to_owned(),
        status,
        pending_consent_id,
    }
}

/// `POST /v1/customers/{id}/consents`: record a grant or withdrawal; 201 receipt.
/// Who may record for which purpose is policy (`consent_recorders`); an
/// agent's grant is `pending_confirmation` until the customer confirms it.
#[utoipa::path(post, path = "/v1/customers/{id}/consents", params(("id" = Uuid, Path)), request_body = ConsentBody,
    responses((status = 201, body = Receipt), (status = 400, body = super::error::Problem), (status = 403, body = super::error::Problem)), security(("bearer" = [])), tag = "consents")]
pub async fn record(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    body: Result<ApiJson<ConsentBody>, ApiError>,
) -> Response {
    let mut scope =
        AuditScope::new(&auth, Action::ConsentGrant).customer(path.as_ref().ok().map(|p| p.0));
    let outcome = async {
        let actor = auth?;
        require_role(&actor, &STAFF)?;
        let ApiPath(id) = path?;
        let ApiJson(body) = body?;
        record_inner(&s, &actor, id, body, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

/// `GET /v1/customers/{id}/consents`: `{current, history}`.
#[utoipa::path(get, path = "/v1/customers/{id}/consents", params(("id" = Uuid, Path)),
    responses((status = 200, body = LedgerView)), security(("bearer" = [])), tag = "consents")]
pub async fn list(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
) -> Response {
    let mut scope =
        AuditScope::new(&auth, Action::CustomerRead).customer(path.as_ref().ok().map(|p| p.0));
    let outcome = async {
        let actor = auth?;
        require_role(&actor, &STAFF)?;
        let ApiPath(id) = path?;
        list_inner(&s, id, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

/// `POST /v1/me/consents`: the customer grants or withdraws consent, or
/// confirms a grant an agent recorded (`{"action": "confirm", "consent_id"}`;
/// 404 if no such event, 409 `consent_not_pending` if it is not a grant
/// awaiting confirmation any more).
#[utoipa::path(post, path = "/v1/me/consents", request_body = MyConsentBody,
    responses((status = 201, body = Receipt), (status = 400, body = super::error::Problem), (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem)),
    security(("bearer" = [])), tag = "consents")]
pub async fn record_mine(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    body: Result<ApiJson<serde_json::Map<String, serde_json::Value>>, ApiError>,
) -> Response {
    let own = own_customer(&auth);
    let mut scope = AuditScope::new(&auth, Action::ConsentGrant).customer(own);
    let outcome = async {
        let actor = auth?;
        let id = own_customer_id(&actor)?;
        let ApiJson(body) = body?;
        let confirm = body.get("action").and_then(|a| a.as_str()) == Some("confirm");
        let body = serde_json::Value::Object(body);
        // The same error text as every other body: it names the field and
        // never echoes a value.
        let invalid = |e: serde_path_to_error::Error<serde_json::Error>| {
            ApiError::InvalidRequest(describe_body_error(&e.path().to_string(), e.inner()))
        };
        if confirm {
            let body: ConfirmBody = serde_path_to_error::deserialize(body).map_err(invalid)?;
            confirm_inner(&s, &actor, id, body, &mut scope).await
        } else {
            let body: ConsentBody = serde_path_to_error::deserialize(body).map_err(invalid)?;
            record_inner(&s, &actor, id, body, &mut scope).await
        }
    }
    .await;
    finish(&s, scope, outcome).await
}

/// `GET /v1/me/consents`: the customer's own ledger.
#[utoipa::path(get, path = "/v1/me/consents", responses((status = 200, body = LedgerView)), security(("bearer" = [])), tag = "consents")]
pub async fn list_mine(State(s): State<AppState>, auth: Result<Actor, ApiError>) -> Response {
    let own = own_customer(&auth);
    let mut scope = AuditScope::new(&auth, Action::CustomerRead).customer(own);
    let outcome = async {
        let actor = auth?;
        let id = own_customer_id(&actor)?;
        list_inner(&s, id, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}
