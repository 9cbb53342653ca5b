//! Interactions: contact requests, complaints, feedback and transcripts, one
//! channel each, with a body encrypted under the customer's data key of that
//! channel.
//!
//! An agent records and resolves interactions on the channel it serves only
//! ([`crate::policy::authorise_channel_write`]): recording restarts the
//! channel's contact retention, and an interaction the agent cannot read is
//! not its to close. Reads pass through the integration rule like a profile
//! read: an agent sees the interactions of its own channel, and another
//! channel's only with the customer's consent; past its kind's retention an
//! interaction is gone. The overdue list is the promise list of a support
//! tool: open contact requests past their due date, without bodies.

mod read;
mod write;

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    views::{InteractionView, WithheldView},
    Caller, Error, Services,
};
use crate::{
    audit::Action,
    policy::{Access, Operation},
};

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
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Why the data is read (required): a purpose of purposes.toml the token lists.
    #[param(required = true, example = "support")]
    pub purpose: Option<String>,
    /// Free text for the audit log, e.g. a ticket number.
    pub reason: Option<String>,
}

/// Query of `GET /v1/interactions/overdue`.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct OverdueQuery {
    /// Why the list is read (required), normally `support`.
    #[param(required = true, example = "support")]
    pub purpose: Option<String>,
    /// At most this many, most overdue first (1 to 1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
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

/// An agent records an interaction on the channel it serves: the new
/// interaction, without its body.
pub async fn create(
    svc: &Services,
    caller: &Caller,
    customer: Result<Uuid, Error>,
    input: Result<NewInteractionBody, Error>,
) -> Result<CreatedInteraction, Error> {
    let named = customer.as_ref().ok().copied();
    svc.audited_for(
        caller,
        Action::InteractionCreate,
        named,
        async |actor, scope| {
            let id = customer?;
            let body = input?;
            svc.authorise(actor, Operation::CreateInteraction, None, scope)?;
            write::create(svc, actor, id, body, scope).await
        },
    )
    .await
}

/// The interactions of a customer the reader may see, oldest first, and the
/// channels withheld with reasons.
pub async fn list(
    svc: &Services,
    caller: &Caller,
    customer: Result<Uuid, Error>,
    input: Result<ListQuery, Error>,
) -> Result<InteractionsView, Error> {
    let named = customer.as_ref().ok().copied();
    svc.audited_for(
        caller,
        Action::InteractionRead,
        named,
        async |actor, scope| {
            let id = customer?;
            let q = input?;
            let access = svc.authorise(
                actor,
                Operation::ListInteractions,
                q.purpose.as_deref(),
                scope,
            )?;
            let Access::Purpose(grant) = access else {
                return Err(Error::Internal);
            };
            read::list(svc, grant, id, q.reason.as_deref(), scope).await
        },
    )
    .await
}

/// An agent resolves an interaction of the channel it serves (`resolved`
/// must be `true`). Resolving twice keeps the first time.
pub async fn resolve(
    svc: &Services,
    caller: &Caller,
    ids: Result<(Uuid, Uuid), Error>,
    input: Result<ResolveBody, Error>,
) -> Result<(), Error> {
    let named = ids.as_ref().ok().map(|(id, _)| *id);
    svc.audited_for(
        caller,
        Action::InteractionResolve,
        named,
        async |actor, scope| {
            let (id, iid) = ids?;
            scope.detail("interaction_id", iid.to_string());
            let body = input?;
            svc.authorise(actor, Operation::ResolveInteraction, None, scope)?;
            write::resolve(svc, actor, id, iid, body, scope).await
        },
    )
    .await
}

/// Open contact requests past their due date, most overdue first, without
/// bodies. The list carries ids, channel, kind and times only, so it spans
/// channels: a support tool shows every promise that must be kept today.
/// Requests past their retention are gone and not listed.
pub async fn overdue(
    svc: &Services,
    caller: &Caller,
    input: Result<OverdueQuery, Error>,
) -> Result<OverdueList, Error> {
    svc.audited(caller, Action::InteractionRead, async |actor, scope| {
        let q = input?;
        svc.authorise(
            actor,
            Operation::ListOverdueInteractions,
            q.purpose.as_deref(),
            scope,
        )?;
        read::overdue(svc, q.limit, scope).await
    })
    .await
}
