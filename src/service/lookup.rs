//! Caller-ID lookup: which customers hold this value on this channel.
//! Matches pass through the integration rule like a profile read: a match
//! the reader may not see is left out, as if it did not exist. Compliance
//! staff look up for purpose `dsr`, to find the data subject of a request:
//! every live match is theirs to see (reason `data_subject`), and the
//! lookup is audited like any other.

use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::{
    audited::AuditScope,
    views::{LookupView, MatchView},
    Caller, Error, Services,
};
use crate::{
    audit::Action,
    domain::Actor,
    policy::{
        decide_channel, Access, ChannelDecision, LimitedAction, Operation, PermitReason,
        PurposeGrant, Retained, DSR_PURPOSE,
    },
    store::{self, customers::LookupHit},
};

/// Most matches returned for one value.
const MAX_MATCHES: i64 = 100;

/// What a lookup asks: `POST /v1/lookup`'s body.
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

/// Looks a value up: the matches the caller may see, or 404 `not_found`
/// when there are none.
pub async fn lookup(
    svc: &Services,
    caller: &Caller,
    input: Result<LookupBody, Error>,
) -> Result<LookupView, Error> {
    svc.audited(caller, Action::Lookup, async |actor, scope| {
        let body = input?;
        lookup_as(svc, actor, body, scope).await
    })
    .await
}

async fn lookup_as(
    svc: &Services,
    actor: &Actor,
    body: LookupBody,
    scope: &mut AuditScope,
) -> Result<LookupView, Error> {
    let access = svc.authorise(actor, Operation::Lookup, Some(&body.purpose), scope)?;
    let Access::Purpose(grant) = access else {
        return Err(Error::Internal);
    };
    svc.limiter.check(LimitedAction::Lookup, actor)?;
    let contact = svc.parse_contact(&body.channel, &body.value)?;
    scope.channel = Some(contact.channel.to_string());
    let index = svc
        .blind
        .compute(contact.channel.as_str(), contact.value.index_key());
    let hits =
        store::customers::lookup(&svc.db, contact.channel.as_str(), &index, MAX_MATCHES).await?;
    let now = svc.clock.now();
    let mut matches = Vec::new();
    let mut decisions = Vec::new();
    for h in hits {
        let reason = decide(svc, &grant, &contact.channel, &h, now);
        decisions.push(json!({"customer_id": h.customer_id, "reason": reason.0}));
        if reason.1 {
            matches.push(MatchView {
                customer_id: h.customer_id,
                contact_id: h.contact_id,
                channel: contact.channel.to_string(),
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
        return Err(Error::NotFound);
    }
    Ok(LookupView { matches })
}

/// One hit's decision: its reason code and whether the caller sees it.
fn decide(
    svc: &Services,
    grant: &PurposeGrant,
    channel: &crate::domain::ChannelId,
    hit: &LookupHit,
    now: time::OffsetDateTime,
) -> (&'static str, bool) {
    if grant.purpose().as_str() == DSR_PURPOSE {
        return (PermitReason::DataSubject.as_str(), true);
    }
    let consents = super::ledger::of_facts(&hit.consents);
    let item = Retained::Contact {
        last_activity_at: store::from_micros(hit.last_activity_at),
    };
    let decision = decide_channel(&svc.policies, grant, channel, &consents, item, false, now);
    svc.metrics.decision(&decision);
    let permitted = matches!(decision, ChannelDecision::Permit(_));
    (decision.reason_code(), permitted)
}
