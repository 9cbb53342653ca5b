//! The compliance view of the audit log: filtered reads with cursor
//! pagination (`GET /v1/audit`, the console's trail), one entry by its seq
//! (the console's entry page), chain verification (`GET /v1/audit/verify`)
//! and the stored checkpoints with their signature status (the console's
//! verification page). Compliance role only.
//!
//! Reading the log is not itself logged — not a page, not an entry, not a
//! verification: entries hold no contact data (ids, actions, reason codes),
//! and an entry per look at the log would grow it with every page a
//! compliance officer turns, burying the entries about customers. What does
//! leave the vault, the CSV download, is logged (`audit.export`, see
//! [`super::audit_export`]). The operator's reads on the vault host (`arkku
//! audit verify`, `arkku audit export`) go through the same verification and
//! the same entry view.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{input::short_text, views::rfc3339, Caller, Error, Services};
use crate::{
    audit::{
        checkpoint::signature_valid,
        export::ExportFilters,
        verify::{verify, VerifyReport},
    },
    crypto::hex,
    domain::{ChannelId, Purpose},
    policy::Operation,
    store::{
        self,
        audit::{AuditFilter, AuditRow, CheckpointRow},
        Db, StoreError,
    },
};

/// Most entries per page.
const MAX_LIMIT: i64 = 1000;
/// Entries per read when the operator exports the whole log.
const EXPORT_PAGE: i64 = 10_000;

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
    #[param(value_type = Option<crate::http::openapi::AuditDecision>, inline)]
    pub decision: Option<String>,
    /// The purpose the request named, e.g. `support` (a purpose name).
    pub purpose: Option<String>,
    /// The channel acted on or the agent's channel, e.g. `phone` (a channel name).
    pub channel: Option<String>,
    /// The reason or case reference recorded, exactly (1 to 200 characters).
    pub reason: Option<String>,
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

impl AuditQuery {
    fn split(self) -> (Filters, Option<i64>, Option<String>) {
        let f = Filters {
            customer_id: self.customer_id,
            actor: self.actor,
            action: self.action,
            decision: self.decision,
            purpose: self.purpose,
            channel: self.channel,
            reason: self.reason,
            since: self.since,
            until: self.until,
        };
        (f, self.limit, self.cursor)
    }
}

/// The filters a view of the log takes (the page query, the export and
/// the console's form), as the request gave them; [`Filters::validate`]
/// checks each and names the one that is not valid.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub customer_id: Option<Uuid>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub decision: Option<String>,
    pub purpose: Option<String>,
    pub channel: Option<String>,
    pub reason: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Longest `actor` filter (a token's `sub`).
const MAX_ACTOR: usize = 255;
/// Longest `reason` filter (reasons are stored up to 200 characters).
const MAX_REASON: usize = 200;

impl Filters {
    /// The store's filter (no cursor, bound or limit yet) and its record
    /// for an export's manifest (times in RFC 3339 UTC); 400
    /// `invalid_request` naming the parameter that is not valid.
    pub fn validate(self) -> Result<(AuditFilter, ExportFilters), Error> {
        let bad = |name: &str, rule: &str| Error::InvalidRequest(format!("{name} {rule}"));
        let actor = self
            .actor
            .map(|a| short_text("actor", &a, MAX_ACTOR))
            .transpose()?;
        if let Some(a) = self.action.as_deref() {
            let ok = (1..=64).contains(&a.len())
                && a.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.'
                });
            if !ok {
                return Err(bad(
                    "action",
                    "must be an action name such as customer.read",
                ));
            }
        }
        if let Some(d) = self.decision.as_deref() {
            if d != "allow" && d != "deny" {
                return Err(bad("decision", "must be allow or deny"));
            }
        }
        if let Some(p) = self.purpose.as_deref() {
            Purpose::parse(p).map_err(|e| bad("purpose", &e.to_string()))?;
        }
        if let Some(c) = self.channel.as_deref() {
            ChannelId::parse(c).map_err(|e| bad("channel", &e.to_string()))?;
        }
        let reason = self
            .reason
            .map(|r| short_text("reason", &r, MAX_REASON))
            .transpose()?;
        let since = time_param("since", self.since.as_deref())?;
        let until = time_param("until", self.until.as_deref())?;
        let text = |t: Option<OffsetDateTime>| t.map(rfc3339);
        let record = ExportFilters {
            customer_id: self.customer_id.map(|c| c.to_string()),
            actor: actor.clone(),
            action: self.action.clone(),
            decision: self.decision.clone(),
            purpose: self.purpose.clone(),
            channel: self.channel.clone(),
            reason: reason.clone(),
            since: text(since),
            until: text(until),
        };
        let filter = AuditFilter {
            customer_id: self.customer_id,
            actor,
            action: self.action,
            decision: self.decision,
            purpose: self.purpose,
            channel: self.channel,
            reason,
            since: since.map(store::to_micros),
            until: until.map(store::to_micros),
            ..AuditFilter::default()
        };
        Ok((filter, record))
    }
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

/// `GET /v1/audit`: entries oldest first, filtered, one page at a time.
pub async fn list(
    svc: &Services,
    caller: &Caller,
    query: Result<AuditQuery, Error>,
) -> Result<EntriesView, Error> {
    let actor = caller.as_ref().map_err(Clone::clone)?;
    let q = query?;
    svc.authorise_unlogged(actor, Operation::ReadAudit)?;
    let (filter, limit) = filter(q)?;
    let mut rows = store::audit::query(&svc.db, &filter).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let next_cursor = if more {
        rows.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(EntriesView {
        entries: rows.into_iter().map(EntryView::from).collect(),
        next_cursor,
    })
}

/// The store's filter for a page of `limit` entries (one more is read to
/// tell whether another page follows); 400 `invalid_request` naming the
/// parameter that is not valid.
fn filter(q: AuditQuery) -> Result<(AuditFilter, i64), Error> {
    let (filters, limit, cursor) = q.split();
    let limit = limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::InvalidRequest(format!(
            "limit must be 1 to {MAX_LIMIT}"
        )));
    }
    let after_seq =
        match cursor.as_deref() {
            None => 0,
            Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                Error::InvalidRequest("cursor is not one this API gave out".into())
            })?,
        };
    let (filter, _) = filters.validate()?;
    Ok((
        AuditFilter {
            after_seq,
            limit: limit + 1,
            ..filter
        },
        limit,
    ))
}

fn time_param(name: &str, v: Option<&str>) -> Result<Option<OffsetDateTime>, Error> {
    v.map(|s| {
        OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|_| Error::InvalidRequest(format!("{name} must be an RFC 3339 time")))
    })
    .transpose()
}

/// `GET /v1/audit/verify`: recomputes the whole chain and checks the stored
/// checkpoints against the vault's signing key.
pub async fn verify_chain(svc: &Services, caller: &Caller) -> Result<VerifyReport, Error> {
    let actor = caller.as_ref().map_err(Clone::clone)?;
    svc.authorise_unlogged(actor, Operation::VerifyAudit)?;
    Ok(verify_log(&svc.db, svc.checkpoints.public_key(), None).await?)
}

/// One entry by its seq (the console's entry page): 404 if there is none.
/// Not logged, for the same reason as [`list`].
pub async fn read(svc: &Services, caller: &Caller, seq: i64) -> Result<EntryView, Error> {
    let actor = caller.as_ref().map_err(Clone::clone)?;
    svc.authorise_unlogged(actor, Operation::ReadAudit)?;
    if seq < 1 {
        return Err(Error::NotFound);
    }
    let rows = store::audit::entries_after(&svc.db, seq - 1, 1).await?;
    rows.into_iter()
        .find(|r| r.seq == seq)
        .map(EntryView::from)
        .ok_or(Error::NotFound)
}

/// Whose signature a stored checkpoint carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureStatus {
    /// Valid, made with this vault's audit key.
    Valid,
    /// Valid for the key the checkpoint names, which is not this vault's:
    /// someone else signed it, so it vouches for nothing here.
    OtherKey,
    /// Not a valid signature for the key it names.
    Invalid,
}

/// A stored checkpoint as the console lists it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointView {
    pub seq: i64,
    pub hash: String,
    pub at: String,
    /// The Ed25519 public key the checkpoint names, hex.
    pub public_key: String,
    pub signature: SignatureStatus,
}

/// Every stored checkpoint, oldest first, with its signature checked
/// against this vault's audit key (whether the entry still holds the
/// checkpoint's hash is [`verify_chain`]'s part). Not logged, as
/// [`verify_chain`] is not.
pub async fn checkpoints(svc: &Services, caller: &Caller) -> Result<Vec<CheckpointView>, Error> {
    let actor = caller.as_ref().map_err(Clone::clone)?;
    svc.authorise_unlogged(actor, Operation::VerifyAudit)?;
    let trusted = svc.checkpoints.public_key();
    let rows = store::audit::checkpoints(&svc.db).await?;
    Ok(rows
        .iter()
        .map(|c| CheckpointView {
            seq: c.seq,
            hash: hex(&c.hash),
            at: rfc3339(store::from_micros(c.at)),
            public_key: hex(&c.public_key),
            signature: if signature_valid(c, Some(trusted)) {
                SignatureStatus::Valid
            } else if signature_valid(c, None) {
                SignatureStatus::OtherKey
            } else {
                SignatureStatus::Invalid
            },
        })
        .collect())
}

// --- the operator's reads ------------------------------------------------------

/// `arkku audit verify`: the same verification for the operator on the
/// vault host, who may also hold a checkpoint `kept` from before (which
/// detects a truncated tail). `trusted_key` is the public key that signs
/// the vault's checkpoints.
pub async fn verify_log(
    db: &Db,
    trusted_key: &[u8],
    kept: Option<&CheckpointRow>,
) -> Result<VerifyReport, StoreError> {
    verify(db, Some(trusted_key), kept).await
}

/// Why `arkku audit export` stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportLogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The entry could not be written where the operator sends the log.
    #[error(transparent)]
    Write(#[from] std::io::Error),
}

/// `arkku audit export`: every entry, in seq order, handed to `each` as it
/// appears in `GET /v1/audit`. Returns how many there were.
pub async fn export_log(
    db: &Db,
    mut each: impl FnMut(EntryView) -> std::io::Result<()>,
) -> Result<u64, ExportLogError> {
    let mut after = 0;
    let mut count = 0;
    loop {
        let rows = store::audit::entries_after(db, after, EXPORT_PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for r in rows {
            each(EntryView::from(r))?;
            count += 1;
        }
    }
    Ok(count)
}
