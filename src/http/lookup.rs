//! Caller-ID lookup (DESIGN.md §8): which customers hold this value on this
//! channel. Matches pass through the integration rule like a profile read: a
//! match the reader may not see is left out, as if it did not exist.

use axum::{extract::State, response::Response, Json};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{
    audited::{finish, AuditScope},
    auth::require_role,
    customers::{grant_purpose, parse_contact},
    error::{ApiError, ApiJson},
    views::{LookupView, MatchView},
    AppState,
};
use crate::{
    audit::Action,
    domain::Role,
    policy::{decide_channel, ChannelDecision, LimitedAction, Retained},
    store,
    token::Actor,
};

/// Most matches returned for one value.
const MAX_MATCHES: i64 = 100;

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(lookup))
}

/// Body of `POST /v1/lookup`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupBody {
    #[schema(example = "phone")]
    pub channel: String,
    #[schema(example = "+358 40 1234567")]
    pub value: String,
    #[schema(example = "support")]
    pub purpose: String,
}

/// `POST /v1/lookup`: `{matches: [...]}`, or 404 when nothing (visible) matches.
#[utoipa::path(post, path = "/v1/lookup", operation_id = "lookupCustomers",
    summary = "Find customers by a contact value",
    description = "Caller id: which customers hold this value on this channel. Matches pass \
        through the integration rule like a profile read: a match the reader may not see is \
        left out, as if it did not exist. Every lookup is audited and rate-limited per \
        caller. Roles: agent, service.",
    request_body = LookupBody,
    responses((status = 200, description = "The visible matches.", body = LookupView),
        (status = 400, description = "`invalid_request`, `invalid_email`, `invalid_phone`, `unknown_channel` or `unknown_purpose`."),
        (status = 403, description = "`forbidden` or `purpose_not_allowed`: the role, or the token's purposes, do not allow this lookup."),
        (status = 404, description = "`not_found`: nothing the caller may see matches."),
        (status = 429, description = "`rate_limited`: too many lookups by this caller.")),
    security(("bearer" = [])), tag = "lookup")]
pub async fn lookup(
    State(s): State<AppState>,
    auth: Result<Actor, ApiError>,
    body: Result<ApiJson<LookupBody>, ApiError>,
) -> Response {
    let mut scope = AuditScope::new(&auth, Action::Lookup);
    let outcome = async {
        let actor = auth?;
        let ApiJson(body) = body?;
        lookup_inner(&s, &actor, body, &mut scope).await
    }
    .await;
    finish(&s, scope, outcome).await
}

async fn lookup_inner(
    s: &AppState,
    actor: &Actor,
    body: LookupBody,
    scope: &mut AuditScope,
) -> Result<Json<LookupView>, ApiError> {
    require_role(actor, &[Role::Agent, Role::Service])?;
    s.limiter.check(LimitedAction::Lookup, actor)?;
    let grant = grant_purpose(s, actor, Some(&body.purpose), scope)?;
    let (channel, _, _, nv) = parse_contact(s, &body.channel, &body.value)?;
    scope.channel = Some(channel.to_string());
    let index = s.blind.compute(channel.as_str(), nv.index_key());
    let hits = store::customers::lookup(&s.db, channel.as_str(), &index, MAX_MATCHES).await?;
    let now = time::OffsetDateTime::now_utc();
    let mut matches = Vec::new();
    let mut decisions = Vec::new();
    for h in hits {
        let consents = super::consents::ledger_of_facts(&h.consents);
        let item = Retained::Contact {
            last_activity_at: store::from_micros(h.last_activity_at),
        };
        let decision = decide_channel(&s.policies, &grant, &channel, &consents, item, false, now);
        decisions.push(json!({"customer_id": h.customer_id, "reason": decision.reason_code()}));
        if let ChannelDecision::Permit(_) = decision {
            matches.push(MatchView {
                customer_id: h.customer_id,
                contact_id: h.contact_id,
                channel: channel.to_string(),
            });
        }
    }
    if let [only] = matches.as_slice() {
        scope.customer_id = Some(only.customer_id);
    }
    scope.detail("matches", matches.len());
    scope.detail("withheld", decisions.len() - matches.len());
    // Every hit's decision, allowed or not, with its reason code.
    scope.detail("decisions", decisions);
    if matches.is_empty() {
        return Err(ApiError::NotFound);
    }
    Ok(Json(LookupView { matches }))
}
