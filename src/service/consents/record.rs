//! Recording a ledger event: a grant or withdrawal checked against the
//! purpose's policy, or the customer's confirmation of a pending grant; each
//! stored in one transaction with its audit entry.

use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use uuid::Uuid;

use super::{current::open_pending, ConfirmBody, ConsentBody, Evidence, Receipt};
use crate::{
    audit::{Action, Effect},
    domain::Actor,
    policy::{authorise_consent_record, LawfulBasis, PurposePolicy, ANY_CHANNEL},
    service::{audited::AuditScope, input::short_text, load::require_live, views::rfc3339},
    service::{Error, Services},
    store::{
        self,
        consents::{ConsentRow, EFFECTIVE, PENDING_CONFIRMATION, REVIEW_AGENT_RECORDED},
    },
};

/// A change as validated: the purpose's policy, the evidence, the expiry.
type Validated<'p> = (&'p PurposePolicy, Option<Evidence>, Option<i64>);

/// Checks a change against the policies (purpose, channel) and its own
/// rules (action, method, evidence on a grant, an expiry in the future).
fn validate<'p>(
    svc: &'p Services,
    body: &ConsentBody,
    now: OffsetDateTime,
) -> Result<Validated<'p>, Error> {
    let (_, purpose) = svc
        .policies
        .purpose(&body.purpose)
        .ok_or_else(|| Error::UnknownPurpose(body.purpose.chars().take(32).collect()))?;
    if purpose.lawful_basis != LawfulBasis::Consent {
        return Err(Error::InvalidRequest(format!(
            "purpose {} does not rest on consent",
            body.purpose
        )));
    }
    if body.channel != ANY_CHANNEL && svc.policies.channel(&body.channel).is_none() {
        return Err(Error::UnknownChannel(
            body.channel.chars().take(32).collect(),
        ));
    }
    let grant = match body.action.as_str() {
        "grant" => true,
        "withdraw" => false,
        _ => {
            return Err(Error::InvalidRequest(
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
        return Err(Error::InvalidRequest(
            "method must be 1 to 32 characters of a-z and _".into(),
        ));
    }
    let evidence = evidence(body.evidence.as_ref(), grant)?;
    let expires_at = expiry(body.expires_at.as_deref(), grant, now)?;
    Ok((purpose, evidence, expires_at))
}

/// The notice the customer saw: required on a grant.
fn evidence(given: Option<&Evidence>, grant: bool) -> Result<Option<Evidence>, Error> {
    match (given, grant) {
        (Some(e), _) => Ok(Some(Evidence {
            notice_id: short_text("evidence.notice_id", &e.notice_id, 64)?,
            notice_version: short_text("evidence.notice_version", &e.notice_version, 32)?,
        })),
        (None, true) => Err(Error::InvalidRequest(
            "a grant needs evidence: the notice_id and notice_version the customer saw".into(),
        )),
        (None, false) => Ok(None),
    }
}

/// When a grant ends by itself: a time in the future, on a grant only.
fn expiry(given: Option<&str>, grant: bool, now: OffsetDateTime) -> Result<Option<i64>, Error> {
    let Some(t) = given else {
        return Ok(None);
    };
    let t = OffsetDateTime::parse(t, &Rfc3339)
        .map_err(|_| Error::InvalidRequest("expires_at must be an RFC 3339 time".into()))?;
    if !grant || t <= now {
        return Err(Error::InvalidRequest(
            "expires_at must be in the future, on a grant".into(),
        ));
    }
    Ok(Some(store::to_micros(t)))
}

/// Records a grant or withdrawal for `customer_id`, as the purpose's policy
/// lets `actor` record it.
pub(super) async fn change(
    svc: &Services,
    actor: &Actor,
    customer_id: Uuid,
    body: ConsentBody,
    scope: &mut AuditScope,
) -> Result<Receipt, Error> {
    if body.action == "withdraw" {
        scope.action = Action::ConsentWithdraw;
    }
    let at = svc.clock.now();
    let (policy, evidence, expires_at) = validate(svc, &body, at)?;
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
        Error::WriteRefused(d.explain())
    })?;
    require_live(svc, customer_id).await?;
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
    commit_event(svc, scope, row, evidence, at).await
}

/// The customer confirms a grant an agent recorded for them: a new, effective
/// grant event with the pending grant's purpose, channel, evidence and expiry,
/// effective (and aging) from now. Only the latest event of its (purpose,
/// channel) can be confirmed: a later withdrawal or change closes it.
pub(super) async fn confirm(
    svc: &Services,
    actor: &Actor,
    customer_id: Uuid,
    body: ConfirmBody,
    scope: &mut AuditScope,
) -> Result<Receipt, Error> {
    if body.action != "confirm" {
        return Err(Error::InvalidRequest(
            "action must be grant, withdraw or confirm".into(),
        ));
    }
    require_live(svc, customer_id).await?;
    let rows = store::consents::for_customer(&svc.db, customer_id).await?;
    let pending = rows
        .iter()
        .find(|r| r.id == body.consent_id)
        .ok_or(Error::NotFound)?;
    scope.purpose = Some(pending.purpose.clone());
    scope.channel = Some(pending.channel.clone());
    let open = open_pending(&rows);
    if open
        .get(&(pending.purpose.as_str(), pending.channel.as_str()))
        .map(|r| r.id)
        != Some(pending.id)
    {
        return Err(Error::ConsentNotPending);
    }
    let at = svc.clock.now();
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
    commit_event(svc, scope, row, evidence, at).await
}

/// Stores one ledger event with its audit entry and returns its receipt.
async fn commit_event(
    svc: &Services,
    scope: &mut AuditScope,
    row: ConsentRow,
    evidence: Option<Evidence>,
    at: OffsetDateTime,
) -> Result<Receipt, Error> {
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
    let receipt = Receipt {
        consent_id: row.id,
        customer_id: row.customer_id,
        purpose: row.purpose.clone(),
        channel: row.channel.clone(),
        action: row.action.clone(),
        at: rfc3339(at),
        evidence,
        status,
        confirms: row.confirms,
        review,
    };
    // The ledger event rides its audit entry's commit: one transaction, no
    // commit of its own.
    if !scope.commit_with(svc, Effect::Consent(row)).await? {
        return Err(Error::CustomerErased);
    }
    Ok(receipt)
}
