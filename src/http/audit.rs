//! The compliance view of the audit log (DESIGN.md §7, §8): filtered reads
//! with cursor pagination, and chain verification. Compliance role only.
//! Reading the log is not itself logged: entries hold no contact data.

use axum::{extract::State, Json};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    auth::require_role,
    error::{ApiError, ApiQuery},
    views::rfc3339,
    AppState,
};
use crate::{
    audit::verify::{verify, VerifyReport},
    crypto::hex,
    domain::Role,
    store::{self, audit::AuditFilter, audit::AuditRow},
    token::Actor,
};

pub fn router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new()
        .routes(utoipa_axum::routes!(list))
        .routes(utoipa_axum::routes!(verify_chain))
}

/// Most entries per page.
const MAX_LIMIT: i64 = 1000;

/// Filters of `GET /v1/audit`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries about this customer.
    pub customer_id: Option<Uuid>,
    /// The actor's `sub`.
    pub actor: Option<String>,
    /// e.g. `customer.read`.
    pub action: Option<String>,
    /// `allow` or `deny`.
    #[param(value_type = Option<super::openapi::AuditDecision>, inline)]
    pub decision: Option<String>,
    /// RFC 3339, inclusive.
    #[param(format = DateTime)]
    pub since: Option<String>,
    /// RFC 3339, exclusive.
    #[param(format = DateTime)]
    pub until: Option<String>,
    /// 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Who acted.
#[derive(Serialize, ToSchema)]
pub struct ActorView {
    pub sub: String,
    pub role: String,
    pub client: Option<String>,
}

/// One audit entry.
#[derive(Serialize, ToSchema)]
pub struct EntryView {
    pub seq: i64,
    pub at: String,
    pub actor: ActorView,
    pub action: String,
    pub customer_id: Option<Uuid>,
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub decision: String,
    pub reason: Option<String>,
    pub request_id: String,
    #[schema(value_type = Object)]
    pub detail: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditRow> for EntryView {
    fn from(r: AuditRow) -> Self {
        EntryView {
            seq: r.seq,
            at: rfc3339(store::from_micros(r.at)),
            actor: ActorView {
                sub: r.actor_sub,
                role: r.actor_role,
                client: r.actor_client,
            },
            action: r.action,
            customer_id: r.customer_id,
            channel: r.channel,
            purpose: r.purpose,
            decision: r.decision,
            reason: r.reason,
            request_id: r.request_id,
            detail: serde_json::from_str(&r.detail).unwrap_or(Value::Null),
            prev_hash: hex(&r.prev_hash),
            hash: hex(&r.hash),
        }
    }
}

/// A page of entries.
#[derive(Serialize, ToSchema)]
pub struct EntriesView {
    pub entries: Vec<EntryView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

fn time_param(name: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    v.map(|s| {
        OffsetDateTime::parse(s, &Rfc3339)
            .map(store::to_micros)
            .map_err(|_| ApiError::InvalidRequest(format!("{name} must be an RFC 3339 time")))
    })
    .transpose()
}

/// `GET /v1/audit`: entries oldest first, filtered, with a cursor.
#[utoipa::path(get, path = "/v1/audit", operation_id = "listAuditEntries",
    summary = "Read the audit log",
    description = "Audit entries, oldest first, filtered, one page at a time (pass \
        `next_cursor` as `cursor` for the next page). Entries hold no contact data, so \
        reading them is not itself logged. Role: compliance.",
    params(AuditQuery),
    responses((status = 200, description = "A page of entries.", body = EntriesView),
        (status = 400, description = "`invalid_request`: a filter, `limit` or `cursor` is not valid.")),
    security(("bearer" = [])), tag = "audit")]
pub async fn list(
    State(s): State<AppState>,
    actor: Actor,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<EntriesView>, ApiError> {
    require_role(&actor, &[Role::Compliance])?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::InvalidRequest(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    let after_seq = match q.cursor.as_deref() {
        None => 0,
        Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            ApiError::InvalidRequest("cursor is not one this API gave out".into())
        })?,
    };
    if let Some(d) = q.decision.as_deref() {
        if d != "allow" && d != "deny" {
            return Err(ApiError::InvalidRequest(
                "decision must be allow or deny".into(),
            ));
        }
    }
    let filter = AuditFilter {
        after_seq,
        customer_id: q.customer_id,
        actor: q.actor,
        action: q.action,
        decision: q.decision,
        since: time_param("since", q.since.as_deref())?,
        until: time_param("until", q.until.as_deref())?,
        limit: limit + 1,
    };
    let mut rows = store::audit::query(&s.db, &filter).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = if more {
        rows.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(Json(EntriesView {
        entries: rows.into_iter().map(EntryView::from).collect(),
        next_cursor,
    }))
}

/// `GET /v1/audit/verify`: recomputes the whole chain and the stored checkpoints.
#[utoipa::path(get, path = "/v1/audit/verify", operation_id = "verifyAuditChain",
    summary = "Verify the audit chain",
    description = "Recomputes the whole hash chain and checks the signed checkpoints. \
        Role: compliance.",
    responses((status = 200, description = "The verification report.", body = VerifyReport)),
    security(("bearer" = [])), tag = "audit")]
pub async fn verify_chain(
    State(s): State<AppState>,
    actor: Actor,
) -> Result<Json<VerifyReport>, ApiError> {
    require_role(&actor, &[Role::Compliance])?;
    let report = verify(&s.db, Some(s.checkpoints.public_key()), None).await?;
    Ok(Json(report))
}
