//! The register of data subject requests: what came in (access, erasure,
//! rectification), by when it must be answered, where it stands and who
//! handled it. Compliance staff (a token listing `dsr`) keep it; a customer
//! sees the status of their own requests.
//!
//! Writes ([`write`]: create, extend, transition) and the CSV download are
//! audited (`dsr.request.*`, the entry's `reason` holding the case
//! reference, as an erasure's does, so the trail links the two); looking at
//! the register ([`read`]) is not, like reviewing the audit log: the
//! register holds ids, kinds, dates and states, no contact data. Reasons and
//! notes are the officer's words: bounded, stored in the history, shown to
//! staff, never logged or audited.
//!
//! The link to the operations that answer a request: a staff erasure whose
//! case reference names an open erasure request of the same customer (or of
//! no customer yet) completes that request ([`write::settle_erasure`]); an
//! export or a rectification is completed by the officer, whose export
//! entry carries the case reference as its `reason`.

mod read;
mod write;

pub use read::{export_csv, list, mine, read};
pub use write::{create, extend, settle_erasure, transition};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{views::rfc3339, Error};
use crate::{
    domain::dsr::{urgency, RequestKind, RequestStatus, Urgency},
    store::{
        self,
        dsr_requests::{EventRow, RequestRow},
        StoreError,
    },
};

/// Longest case reference, reason or note accepted.
pub const MAX_TEXT: usize = 200;

/// `POST /v1/dsr/requests`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequestBody {
    /// `access`, `erasure` or `rectification`.
    #[schema(example = "erasure")]
    pub kind: String,
    /// The case reference (unique; the one an erasure or export records).
    #[schema(example = "DSR-2026-0042", max_length = 200)]
    pub case_reference: String,
    /// When the request arrived (RFC 3339; default now; never in the future).
    pub received_at: Option<String>,
    /// The customer, once known (may be given later, when identity is verified).
    pub customer_id: Option<Uuid>,
    /// A short note for the history (no personal data; never logged).
    #[schema(max_length = 200)]
    pub note: Option<String>,
}

/// `POST /v1/dsr/requests/{id}/extend`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendBody {
    /// 1 or 2; at most two months in total (GDPR Art. 12(3)).
    #[schema(minimum = 1, maximum = 2)]
    pub months: i64,
    /// Why the request needs longer (required; never logged).
    #[schema(max_length = 200)]
    pub reason: Option<String>,
}

/// `POST /v1/dsr/requests/{id}/transition`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// The state to move to: `identity_verified`, `in_progress`, `completed`,
    /// `refused` or `withdrawn`, as the request's `next` allows.
    #[schema(example = "identity_verified")]
    pub to: String,
    /// Why (required for `refused`; never logged).
    #[schema(max_length = 200)]
    pub reason: Option<String>,
    /// The customer the requester was verified to be (with
    /// `identity_verified`, when the request names none yet).
    pub customer_id: Option<Uuid>,
}

/// Query of `GET /v1/dsr/requests` and `GET /v1/dsr/requests.csv`.
#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only requests in this state.
    pub status: Option<String>,
    /// Only requests of this kind.
    pub kind: Option<String>,
    /// Only requests of this customer.
    pub customer_id: Option<Uuid>,
    /// At most this many (1–1000, default 500).
    pub limit: Option<i64>,
}

/// Who last acted on a request: the token's subject and role.
#[derive(Serialize, ToSchema, Clone)]
pub struct HandlerView {
    pub sub: String,
    pub role: String,
}

/// A request in the register.
#[derive(Serialize, ToSchema)]
pub struct RequestView {
    pub id: Uuid,
    pub case_reference: String,
    #[schema(example = "erasure")]
    pub kind: &'static str,
    #[schema(example = "received")]
    pub status: &'static str,
    pub customer_id: Option<Uuid>,
    pub received_at: String,
    /// The last day to answer (UTC), `YYYY-MM-DD`.
    #[schema(example = "2026-02-28")]
    pub due_date: String,
    /// The instant the request becomes overdue: the end of `due_date`.
    pub due_at: String,
    pub extension_months: u8,
    /// Open and past its due date.
    pub overdue: bool,
    /// Open, not overdue, and due within seven days.
    pub due_soon: bool,
    /// The states it may move to next (empty once final).
    pub next: Vec<&'static str>,
    pub handled_by: HandlerView,
    pub created_at: String,
    pub updated_at: String,
    pub closed_at: Option<String>,
}

/// One line of a request's history.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub at: String,
    pub actor: HandlerView,
    /// `create`, `extend` or `transition`.
    pub change: String,
    pub from: Option<String>,
    pub to: String,
    /// Months added, for `extend`.
    pub months: Option<i64>,
    pub reason: Option<String>,
}

/// A request with its history, oldest first.
#[derive(Serialize, ToSchema)]
pub struct RequestDetail {
    pub request: RequestView,
    pub history: Vec<EventView>,
}

/// The register, open requests first (overdue, then due soon, then by due
/// date), then closed ones.
#[derive(Serialize, ToSchema)]
pub struct RequestList {
    pub requests: Vec<RequestView>,
}

/// One of the customer's own requests: no handler, no history.
#[derive(Serialize, ToSchema)]
pub struct OwnRequestView {
    pub id: Uuid,
    pub case_reference: String,
    pub kind: &'static str,
    pub status: &'static str,
    pub received_at: String,
    pub due_date: String,
    pub closed_at: Option<String>,
}

/// `GET /v1/me/requests`.
#[derive(Serialize, ToSchema)]
pub struct OwnRequests {
    pub requests: Vec<OwnRequestView>,
}

/// The register as a CSV file.
pub struct RegisterCsv {
    pub bytes: Vec<u8>,
    pub file_name: String,
}

/// A stored request, its names parsed (a row the code did not write is
/// corrupt, an internal error).
pub(crate) struct Request {
    pub row: RequestRow,
    pub kind: RequestKind,
    pub status: RequestStatus,
}

impl Request {
    fn parse(row: RequestRow) -> Result<Self, Error> {
        let kind = RequestKind::parse(&row.kind);
        let status = RequestStatus::parse(&row.status);
        match (kind, status) {
            (Some(kind), Some(status)) => Ok(Request { row, kind, status }),
            _ => Err(StoreError::Corrupt("dsr_requests kind or status").into()),
        }
    }

    fn extension_months(&self) -> u8 {
        u8::try_from(self.row.extension_months).unwrap_or(u8::MAX)
    }

    fn due_at(&self) -> OffsetDateTime {
        store::from_micros(self.row.due_at)
    }

    /// The due date: the day that ends at `due_at`.
    fn due_date(&self) -> String {
        let last = self.due_at() - time::Duration::DAY;
        let d = last.date();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    }

    fn view(&self, now: OffsetDateTime) -> RequestView {
        let r = &self.row;
        let urgent = urgency(self.status, self.due_at(), now);
        RequestView {
            id: r.id,
            case_reference: r.case_reference.clone(),
            kind: self.kind.as_str(),
            status: self.status.as_str(),
            customer_id: r.customer_id,
            received_at: at(r.received_at),
            due_date: self.due_date(),
            due_at: at(r.due_at),
            extension_months: self.extension_months(),
            overdue: urgent == Urgency::Overdue,
            due_soon: urgent == Urgency::DueSoon,
            next: self.status.next().iter().map(|s| s.as_str()).collect(),
            handled_by: HandlerView {
                sub: r.handled_by.clone(),
                role: r.handler_role.clone(),
            },
            created_at: at(r.created_at),
            updated_at: at(r.updated_at),
            closed_at: r.closed_at.map(at),
        }
    }

    fn own_view(&self) -> OwnRequestView {
        let r = &self.row;
        OwnRequestView {
            id: r.id,
            case_reference: r.case_reference.clone(),
            kind: self.kind.as_str(),
            status: self.status.as_str(),
            received_at: at(r.received_at),
            due_date: self.due_date(),
            closed_at: r.closed_at.map(at),
        }
    }
}

impl From<EventRow> for EventView {
    fn from(e: EventRow) -> Self {
        EventView {
            at: at(e.at),
            actor: HandlerView {
                sub: e.actor_sub,
                role: e.actor_role,
            },
            change: e.change,
            from: e.from_status,
            to: e.to_status,
            months: e.months,
            reason: e.reason,
        }
    }
}

fn at(us: store::Micros) -> String {
    rfc3339(store::from_micros(us))
}

/// Loads request `id` (404 if none).
async fn load(svc: &super::Services, id: Uuid) -> Result<Request, Error> {
    let row = store::dsr_requests::by_id(&svc.db, id)
        .await?
        .ok_or(Error::NotFound)?;
    Request::parse(row)
}
