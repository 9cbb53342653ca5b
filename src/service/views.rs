//! Response bodies, and the conversions from opened records into them.

use serde::{Deserialize, Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::{
    policy::Disclosure,
    store::{self, consents::ConsentRow},
    vault::records::{OpenedContact, OpenedInteraction},
};

/// Kept here for the callers that import it from this module; the format
/// itself is [`crate::domain::time`].
pub use crate::domain::time::rfc3339;

pub(crate) fn secret<S: Serializer>(v: &Zeroizing<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

pub(crate) fn secret_opt<S: Serializer>(
    v: &Option<Zeroizing<String>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.serialize_some(v.as_str()),
        None => s.serialize_none(),
    }
}

/// A contact point as released: masked unless revealed.
#[derive(Serialize, ToSchema)]
pub struct ContactView {
    pub id: Uuid,
    pub channel: String,
    #[serde(serialize_with = "secret")]
    #[schema(value_type = String, example = "+358*******67")]
    pub value: Zeroizing<String>,
    pub masked: bool,
    #[serde(serialize_with = "secret_opt")]
    #[schema(value_type = Option<String>)]
    pub label: Option<Zeroizing<String>>,
    #[schema(example = "2026-11-23T18:37:24.123456Z")]
    pub created_at: String,
}

impl From<OpenedContact> for ContactView {
    fn from(c: OpenedContact) -> Self {
        ContactView {
            id: c.id,
            channel: c.channel,
            value: c.value,
            masked: c.masked,
            label: c.label,
            created_at: rfc3339(c.created_at),
        }
    }
}

/// A channel the reader may not see, with the reason code.
#[derive(Serialize, ToSchema, Clone)]
pub struct WithheldView {
    pub channel: String,
    #[schema(example = "consent_required")]
    pub reason: &'static str,
}

impl WithheldView {
    /// The withheld channels of one read, in channel order.
    pub fn list(d: &Disclosure) -> Vec<WithheldView> {
        d.withheld()
            .map(|(channel, reason)| WithheldView {
                channel: channel.to_owned(),
                reason: reason.as_str(),
            })
            .collect()
    }
}

/// A customer profile filtered by the integration rule.
#[derive(Serialize, ToSchema)]
pub struct ProfileView {
    pub id: Uuid,
    #[serde(serialize_with = "secret_opt")]
    #[schema(value_type = Option<String>)]
    pub display_name: Option<Zeroizing<String>>,
    #[serde(serialize_with = "secret_opt")]
    #[schema(value_type = Option<String>)]
    pub external_ref: Option<Zeroizing<String>>,
    pub preferred_channel: Option<String>,
    pub created_at: String,
    pub contacts: Vec<ContactView>,
    pub withheld: Vec<WithheldView>,
}

/// One lookup hit.
#[derive(Serialize, ToSchema)]
pub struct MatchView {
    pub customer_id: Uuid,
    pub contact_id: Uuid,
    pub channel: String,
}

/// Lookup response.
#[derive(Serialize, ToSchema)]
pub struct LookupView {
    pub matches: Vec<MatchView>,
}

/// An interaction as released to a reader permitted its channel.
#[derive(Serialize, ToSchema)]
pub struct InteractionView {
    pub id: Uuid,
    pub channel: String,
    #[schema(example = "contact_request")]
    pub kind: String,
    #[serde(serialize_with = "secret")]
    #[schema(value_type = String)]
    pub body: Zeroizing<String>,
    pub created_at: String,
    pub due_at: Option<String>,
    pub resolved_at: Option<String>,
}

impl From<OpenedInteraction> for InteractionView {
    fn from(i: OpenedInteraction) -> Self {
        InteractionView {
            id: i.id,
            channel: i.channel,
            kind: i.kind,
            body: i.body,
            created_at: rfc3339(i.created_at),
            due_at: i.due_at.map(rfc3339),
            resolved_at: i.resolved_at.map(rfc3339),
        }
    }
}

/// The notice the customer saw when consenting.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    #[schema(example = "privacy-notice-2026")]
    pub notice_id: String,
    #[schema(example = "3")]
    pub notice_version: String,
}

/// One ledger event.
#[derive(Serialize, ToSchema)]
pub struct ConsentEventView {
    pub consent_id: Uuid,
    pub purpose: String,
    pub channel: String,
    pub action: String,
    pub evidence: Option<Evidence>,
    pub method: String,
    pub source_channel: Option<String>,
    pub recorded_by: String,
    pub at: String,
    pub expires_at: Option<String>,
    /// `effective` or `pending_confirmation`, as recorded.
    pub status: String,
    /// On a customer's confirmation: the pending grant it confirms.
    pub confirms: Option<Uuid>,
    /// `agent_recorded` when flagged for compliance review.
    pub review: Option<String>,
}

impl From<ConsentRow> for ConsentEventView {
    fn from(r: ConsentRow) -> Self {
        ConsentEventView {
            consent_id: r.id,
            evidence: match (r.notice_id, r.notice_version) {
                (Some(notice_id), Some(notice_version)) => Some(Evidence {
                    notice_id,
                    notice_version,
                }),
                _ => None,
            },
            purpose: r.purpose,
            channel: r.channel,
            action: r.action,
            method: r.method,
            source_channel: r.source_channel,
            recorded_by: r.actor_role,
            at: rfc3339(store::from_micros(r.at)),
            expires_at: r.expires_at.map(|t| rfc3339(store::from_micros(t))),
            status: r.status,
            confirms: r.confirms,
            review: r.review,
        }
    }
}
