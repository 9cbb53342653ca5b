//! Interactions (DESIGN.md §8): contact requests, complaints, feedback and
//! transcripts, one channel each, with a body encrypted under the customer's
//! data key of that channel.
//!
//! Reads pass through the integration rule like a profile read: an agent sees
//! the interactions of its own channel, and another channel's only with the
//! customer's consent; past its kind's retention an interaction is gone.
//! `GET /v1/interactions/overdue` is the promise list of a support tool: open
//! contact requests past their due date, without bodies.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, patch},
    Json, Router,
};
use serde::{Deserialize, Serialize};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use zeroize::Zeroizing;

pub use crate::service::load::retained;

use super::{
    audited::{finish, AuditScope},
    auth::require_role,
    customers::{grant_purpose, now, require_channel_write, require_live, short_text},
    error::{ApiError, ApiJson, ApiPath, ApiQuery},
    views::{rfc3339, InteractionView, WithheldView},
    AppState,
};
use crate::{
    audit::{Action, Effect},
    domain::{ChannelId, Role},
    policy::{
        decide_channel, retention_expired, ChannelDecision, ChannelWrite, Disclosure, Retained,
        WithheldReason, WriteDenied, INTERACTION_KINDS,
    },
    store::{self, interactions::NewInteraction},
    token::Actor,
    vault::records::{self, field, CustomerKeys},
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/customers/{id}/interactions", get(list).post(create))
        .route(
            "/v1/customers/{id}/interactions/{interaction_id}",
            patch(resolve),
        )
        .route("/v1/interactions/overdue", get(overdue))
}

/// Who records, reads and resolves interactions: the agents serving the customer.
const AGENTS: [Role; 1] = [Role::Agent];

/// Who may see the promise list: agents, and the support tools acting for them.
const SUPPORT_TOOLS: [Role; 2] = [Role::Agent, Role::Service];

/// Longest body accepted, in characters (a long chat transcript fits).
const MAX_BODY_CHARS: usize = 100_000;

/// Body of `POST /v1/customers/{id}/interactions`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInteractionBody {
    #[schema(example = "phone")]
    pub channel: String,
    /// `contact_request`, `complaint`, `feedback` or `transcript`.
    #[schema(example = "contact_request")]
    pub kind: String,
    /// Free text; encrypted at rest, never logged.
    #[schema(example = "Call back about the invoice")]
    pub body: String,
    /// When the customer was promised an answer (RFC 3339).
    #[serde(default)]
    pub due_at: Option<String>,
}

/// Body of `PATCH /v1/customers/{id}/interactions/{interaction_id}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// Must be `true`: a resolved interaction stays resolved.
    pub resolved: bool,
}

/// Query of `GET /v1/customers/{id}/interactions`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Why the data is read (required): a purpose of purposes.toml the token lists.
    pub purpose: Option<String>,
    /// Free text for the audit log, e.g. a ticket number.
    pub reason: Option<String>,
}

/// Query of `GET /v1/interactions/overdue`.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OverdueQuery {
    /// Why the list is read (required), normally `support`.
    pub purpose: Option<String>,
    /// At most this many, most overdue first (1 to 1000, default 100).
    pub limit: Option<u32>,
}

/// What `POST` returns: the new interaction without its body.
#[derive(Serialize, ToSchema)]
pub struct CreatedInteraction {
    pub id: Uuid,
    pub channel: String,
    pub kind: String,
    pub created_at: String,
    pub due_at: Option<String>,
}

/// A customer's interactions filtered by the integration rule.
#[derive(Serialize, ToSchema)]
pub struct InteractionsView {
    pub interactions: Vec<InteractionView>,
    pub withheld: Vec<WithheldView>,
}

/// One open contact request past due: no body, no contact value.
#[derive(Serialize, ToSchema)]
pub struct OverdueView {
    pub id: Uuid,
    pub customer_id: Uuid,
    pub channel: String,
    pub kind: String,
    pub created_at: String,
    pub due_at: String,
}

/// The promise list.
#[derive(Serialize, ToSchema)]
pub struct OverdueList {
    pub overdue: Vec<OverdueView>,
}

/// An RFC 3339 time from a request.
fn parse_time(name: &str, v: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(v, &Rfc3339)
        .map_err(|_| ApiError::InvalidRequest(format!("{name} must be an RFC 3339 time")))
}

/// Free text that may span lines: not empty, at most `MAX_BODY_CHARS`, no
/// control characters other than newline, carriage return and tab.
fn body_text(v: &str) -> Result<Zeroizing<String>, ApiError> {
    let ok_controls = ['\n', '\r', '\t'];
    if v.trim().is_empty()
        || v.chars().count() > MAX_BODY_CHARS
        || v.chars()
            .any(|c| c.is_control() && !ok_controls.contains(&c))
    {
        return Err(ApiError::InvalidRequest(format!(
            "body must be 1 to {MAX_BODY_CHARS} characters without control characters other than newlines and tabs"
        )));
    }
    Ok(Zeroizing::new(v.to_owned()))
}

/// `POST /v1/customers/{id}/interactions`: 201 with the new interaction (no body).
#[utoipa::path(post, path = "/v1/customers/{id}/interactions", params(("id" = Uuid, Path)), request_body = NewInteractionBody,
    responses((status = 201, body = CreatedInteraction), (status = 400, body = super::error::Problem), (status = 404, body = super::error::Problem), (status = 410, body = super::error::Problem)),
    security(("bearer" = [])), tag = "interactions")]
pub async fn create(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    body: Result<ApiJson<NewInteractionBody>, ApiError>,
) -> Response {
    let mut scope =
        AuditScope::new(&auth, Action::InteractionCreate).customer(path.as_ref().ok().map(|p| p.0));
    let outcome = async {
        let actor = auth?;
        let ApiPath(id) = path?;
        let ApiJson(body) = body?;
        create_inner(&s, &actor, id, body, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn create_inner(
    s: &AppState,
    actor: &Actor,
    id: Uuid,
    body: NewInteractionBody,
    scope: &mut AuditScope,
) -> Result<impl IntoResponse, ApiError> {
    require_role(actor, &AGENTS)?;
    let (channel, policy) = s
        .policies
        .channel(&body.channel)
        .ok_or_else(|| ApiError::UnknownChannel(body.channel.chars().take(32).collect()))?;
    let channel = channel.clone();
    let contact_retention = policy.contact_retention;
    scope.channel = Some(channel.to_string());
    // Recording restarts the channel's contact retention: only on the
    // agent's own channel.
    require_channel_write(actor, &channel, ChannelWrite::InteractionCreate, scope)?;
    let kind = INTERACTION_KINDS
        .into_iter()
        .find(|k| *k == body.kind)
        .ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "kind must be one of: {}",
                INTERACTION_KINDS.join(", ")
            ))
        })?;
    let text = body_text(&body.body)?;
    let due_at = body
        .due_at
        .as_deref()
        .map(|t| parse_time("due_at", t))
        .transpose()?
        .map(store::to_micros);
    require_live(s, id).await?;

    let iid = Uuid::now_v7();
    scope.detail("interaction_id", iid.to_string());
    scope.detail("kind", kind);
    scope.detail("due", due_at.is_some());
    // The data key is fetched (or created, for the channel's first record)
    // before the entry: a key is not customer data, and an unused one is
    // harmless. The interaction itself rides its entry's commit.
    let key = records::field_key(
        &s.keyring
            .data_key_for_write(&s.db, id, channel.as_str())
            .await?,
    )?;
    let sealed = records::seal(&key, id, channel.as_str(), iid, field::BODY, &text)?;
    let at = now();
    let row = NewInteraction {
        id: iid,
        customer_id: id,
        channel: channel.to_string(),
        kind: kind.to_owned(),
        body: sealed,
        created_at: store::to_micros(at),
        due_at,
        contacts_live_after: store::to_micros(
            at.checked_sub(
                time::Duration::try_from(contact_retention).unwrap_or(time::Duration::MAX),
            )
            .unwrap_or(OffsetDateTime::UNIX_EPOCH),
        ),
    };
    if !scope.commit_with(s, Effect::Interaction(row)).await? {
        return Err(ApiError::CustomerErased);
    }
    Ok((
        StatusCode::CREATED,
        Json(CreatedInteraction {
            id: iid,
            channel: channel.to_string(),
            kind: kind.to_owned(),
            created_at: rfc3339(at),
            due_at: due_at.map(|d| rfc3339(store::from_micros(d))),
        }),
    ))
}

/// `GET /v1/customers/{id}/interactions?purpose=&reason=`: the interactions
/// the reader may see, oldest first, and the channels withheld with reasons.
#[utoipa::path(get, path = "/v1/customers/{id}/interactions", params(("id" = Uuid, Path), ListQuery),
    responses((status = 200, body = InteractionsView), (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem), (status = 410, body = super::error::Problem)),
    security(("bearer" = [])), tag = "interactions")]
pub async fn list(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<Uuid>, ApiError>,
    query: Result<ApiQuery<ListQuery>, ApiError>,
) -> Response {
    let mut scope =
        AuditScope::new(&auth, Action::InteractionRead).customer(path.as_ref().ok().map(|p| p.0));
    let outcome = async {
        let actor = auth?;
        let ApiPath(id) = path?;
        let ApiQuery(q) = query?;
        list_inner(&s, &actor, id, q, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn list_inner(
    s: &AppState,
    actor: &Actor,
    id: Uuid,
    q: ListQuery,
    scope: &mut AuditScope,
) -> Result<Json<InteractionsView>, ApiError> {
    require_role(actor, &AGENTS)?;
    let grant = grant_purpose(s, actor, q.purpose.as_deref(), scope)?;
    scope.reason = q
        .reason
        .as_deref()
        .map(|r| short_text("reason", r, 200))
        .transpose()?;
    require_live(s, id).await?;
    let rows = store::interactions::for_customer(&s.db, id).await?;
    let consents = super::consents::ledger(s, id).await?;
    let at = now();
    let mut disclosure = Disclosure::default();
    let mut keys = CustomerKeys::new(&s.keyring, &s.db, id);
    let mut views = Vec::new();
    for row in &rows {
        let decision = match ChannelId::parse(&row.channel) {
            Ok(ch) => decide_channel(
                &s.policies,
                &grant,
                &ch,
                &consents,
                retained(row),
                false,
                at,
            ),
            Err(_) => ChannelDecision::Withhold(WithheldReason::IntegrationNever),
        };
        disclosure.record(&row.channel, &decision);
        if let ChannelDecision::Permit(permit) = &decision {
            let opened = keys.open_interaction(permit, row).await.map_err(|e| {
                tracing::error!(customer_id = %id, interaction_id = %row.id, error = %e, "interaction failed to open");
                ApiError::from(e)
            })?;
            views.push(InteractionView::from(opened));
        }
    }
    scope.disclosure(&disclosure);
    scope.detail("interactions", views.len());
    Ok(Json(InteractionsView {
        interactions: views,
        withheld: WithheldView::list(&disclosure),
    }))
}

/// `PATCH /v1/customers/{id}/interactions/{interaction_id}` with
/// `{"resolved": true}`: 204. Resolving twice keeps the first time.
#[utoipa::path(patch, path = "/v1/customers/{id}/interactions/{interaction_id}",
    params(("id" = Uuid, Path), ("interaction_id" = Uuid, Path)), request_body = ResolveBody,
    responses((status = 204), (status = 400, body = super::error::Problem), (status = 404, body = super::error::Problem)),
    security(("bearer" = [])), tag = "interactions")]
pub async fn resolve(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    path: Result<ApiPath<(Uuid, Uuid)>, ApiError>,
    body: Result<ApiJson<ResolveBody>, ApiError>,
) -> Response {
    let mut scope = AuditScope::new(&auth, Action::InteractionResolve)
        .customer(path.as_ref().ok().map(|p| p.0 .0));
    let outcome = async {
        let actor = auth?;
        let ApiPath((id, iid)) = path?;
        scope.detail("interaction_id", iid.to_string());
        let ApiJson(body) = body?;
        resolve_inner(&s, &actor, id, iid, body, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn resolve_inner(
    s: &AppState,
    actor: &Actor,
    id: Uuid,
    iid: Uuid,
    body: ResolveBody,
    scope: &mut AuditScope,
) -> Result<StatusCode, ApiError> {
    require_role(actor, &AGENTS)?;
    if !body.resolved {
        return Err(ApiError::InvalidRequest(
            "resolved must be true: a resolved interaction is not reopened; record a new one"
                .into(),
        ));
    }
    require_live(s, id).await?;
    let meta = store::interactions::meta(&s.db, id, iid)
        .await?
        .ok_or(ApiError::NotFound)?;
    scope.channel = Some(meta.channel.clone());
    // An agent resolves only what it serves: an interaction it cannot
    // read is not its to close.
    match ChannelId::parse(&meta.channel) {
        Ok(ch) => require_channel_write(actor, &ch, ChannelWrite::InteractionResolve, scope)?,
        Err(_) => return Err(ApiError::WriteRefused(WriteDenied::OtherChannel.explain())),
    }
    scope.detail("kind", meta.kind);
    scope.detail("already_resolved", meta.resolved_at.is_some());
    scope.commit_before_write(s).await?;
    if !store::interactions::resolve(&s.db, id, iid, store::to_micros(now())).await? {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/interactions/overdue?purpose=support&limit=`: open contact
/// requests past their due date, most overdue first, without bodies.
///
/// The list carries ids, channel, kind and times only, so it spans channels:
/// a support tool shows every promise that must be kept today. Requests past
/// their retention are gone and not listed.
#[utoipa::path(get, path = "/v1/interactions/overdue", params(OverdueQuery),
    responses((status = 200, body = OverdueList), (status = 403, body = super::error::Problem)),
    security(("bearer" = [])), tag = "interactions")]
pub async fn overdue(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    query: Result<ApiQuery<OverdueQuery>, ApiError>,
) -> Response {
    let mut scope = AuditScope::new(&auth, Action::InteractionRead);
    let outcome = async {
        let actor = auth?;
        let ApiQuery(q) = query?;
        overdue_inner(&s, &actor, q, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn overdue_inner(
    s: &AppState,
    actor: &Actor,
    q: OverdueQuery,
    scope: &mut AuditScope,
) -> Result<Json<OverdueList>, ApiError> {
    require_role(actor, &SUPPORT_TOOLS)?;
    grant_purpose(s, actor, q.purpose.as_deref(), scope)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::InvalidRequest("limit must be 1 to 1000".into()));
    }
    let at = now();
    let rows = store::interactions::overdue(&s.db, store::to_micros(at), i64::from(limit)).await?;
    let overdue: Vec<OverdueView> = rows
        .into_iter()
        .filter(|r| {
            ChannelId::parse(&r.channel).is_ok_and(|ch| {
                let item = Retained::Interaction {
                    kind: &r.kind,
                    since: store::from_micros(r.created_at),
                };
                !retention_expired(&s.policies, &ch, item, at)
            })
        })
        .map(|r| OverdueView {
            id: r.id,
            customer_id: r.customer_id,
            channel: r.channel,
            kind: r.kind,
            created_at: rfc3339(store::from_micros(r.created_at)),
            due_at: rfc3339(store::from_micros(r.due_at)),
        })
        .collect();
    scope.detail("overdue", overdue.len());
    scope.detail(
        "interaction_ids",
        overdue.iter().map(|o| o.id.to_string()).collect::<Vec<_>>(),
    );
    scope.detail(
        "customer_ids",
        overdue
            .iter()
            .map(|o| o.customer_id.to_string())
            .collect::<Vec<_>>(),
    );
    Ok(Json(OverdueList { overdue }))
}
