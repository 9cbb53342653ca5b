//! Changing the register: a new request, an extension of its due date, a
//! move to another state. Each is authorised (compliance, purpose `dsr`),
//! checked against the state machine of [`crate::domain::dsr`], its audit
//! entry committed, and only then written, on the condition that nobody
//! changed the request meanwhile.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{load, ExtendBody, NewRequestBody, Request, RequestView, TransitionBody, MAX_TEXT};
use crate::{
    audit::Action,
    domain::{
        dsr::{due_at, RequestKind, RequestStatus, MAX_EXTENSION_MONTHS},
        time::parse_rfc3339,
        Actor,
    },
    policy::{Operation, DSR_PURPOSE},
    service::{audited::AuditScope, input::short_text, Caller, Error, Services},
    store::{
        self,
        dsr_requests::{EventRow, RequestRow, CASE_UNIQUE},
        StoreError,
    },
};

/// The optional short text field `name`, bounded like a reason.
fn optional_text(name: &str, v: Option<&str>) -> Result<Option<String>, Error> {
    v.map(|v| short_text(name, v, MAX_TEXT)).transpose()
}

fn staff(
    svc: &Services,
    actor: &Actor,
    op: Operation,
    scope: &mut AuditScope,
) -> Result<(), Error> {
    svc.authorise(actor, op, Some(DSR_PURPOSE), scope).map(drop)
}

/// Refuses a customer id that names no customer (an erased one is fine:
/// a request may come after, or be about, an erasure).
async fn require_customer(svc: &Services, id: Uuid) -> Result<(), Error> {
    match store::customers::state(&svc.db, id).await? {
        Some(_) => Ok(()),
        None => Err(Error::InvalidRequest(
            "customer_id names no customer".into(),
        )),
    }
}

/// The history line of a change by `actor`.
fn event(actor: &Actor, req: &RequestRow, change: &str, now: i64) -> EventRow {
    EventRow {
        id: Uuid::now_v7(),
        request_id: req.id,
        at: now,
        actor_sub: actor.sub.clone(),
        actor_role: actor.role.as_str().to_owned(),
        change: change.to_owned(),
        from_status: None,
        to_status: req.status.clone(),
        months: None,
        reason: None,
    }
}

/// Names the request in the audit entry: its id, kind and case reference
/// (as the entry's `reason`, as an erasure's), and its customer.
fn name_in_entry(scope: &mut AuditScope, req: &Request) {
    scope.reason = Some(req.row.case_reference.clone());
    scope.customer_id = req.row.customer_id;
    scope.detail("dsr_request_id", req.row.id.to_string());
    scope.detail("kind", req.kind.as_str());
}

/// `POST /v1/dsr/requests`: enters a request in the register, received now
/// or at the time given, due one calendar month after receipt.
pub async fn create(
    svc: &Services,
    caller: &Caller,
    body: Result<NewRequestBody, Error>,
) -> Result<RequestView, Error> {
    svc.audited(caller, Action::DsrRequestCreate, async |actor, scope| {
        staff(svc, actor, Operation::CreateDsrRequest, scope)?;
        let body = body?;
        let now = svc.clock.now();
        let kind = RequestKind::parse(&body.kind).ok_or_else(|| {
            Error::InvalidRequest("kind must be access, erasure or rectification".into())
        })?;
        let case = short_text("case_reference", &body.case_reference, MAX_TEXT)?;
        let note = optional_text("note", body.note.as_deref())?;
        let received = received_at(body.received_at.as_deref(), now)?;
        let due = due_at(received, 0)
            .ok_or_else(|| Error::InvalidRequest("received_at is out of range".into()))?;
        if let Some(c) = body.customer_id {
            require_customer(svc, c).await?;
        }
        if store::dsr_requests::by_case(&svc.db, &case)
            .await?
            .is_some()
        {
            scope.reason = Some(case);
            return Err(Error::CaseReferenceExists);
        }
        let at = store::to_micros(now);
        let row = RequestRow {
            id: Uuid::now_v7(),
            case_reference: case,
            kind: kind.as_str().to_owned(),
            status: RequestStatus::Received.as_str().to_owned(),
            customer_id: body.customer_id,
            received_at: store::to_micros(received),
            due_at: store::to_micros(due),
            extension_months: 0,
            handled_by: actor.sub.clone(),
            handler_role: actor.role.as_str().to_owned(),
            created_at: at,
            updated_at: at,
            closed_at: None,
        };
        let mut first = event(actor, &row, "create", at);
        first.reason = note;
        let req = Request::parse(row)?;
        name_in_entry(scope, &req);
        scope.detail("status", req.status.as_str());
        scope.detail("due_date", req.due_date());
        scope.commit_before_write(svc).await?;
        store::dsr_requests::insert(&svc.db, &req.row, &first)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(CASE_UNIQUE) => Error::CaseReferenceExists,
                e => e.into(),
            })?;
        Ok(req.view(now))
    })
    .await
}

/// When a request was received: the time given (never in the future), or now.
fn received_at(given: Option<&str>, now: OffsetDateTime) -> Result<OffsetDateTime, Error> {
    let Some(text) = given else {
        return Ok(now);
    };
    let t = parse_rfc3339(text)
        .map_err(|_| Error::InvalidRequest("received_at must be an RFC 3339 instant".into()))?;
    if t > now {
        return Err(Error::InvalidRequest(
            "received_at may not be in the future".into(),
        ));
    }
    if t.year() < 2000 {
        return Err(Error::InvalidRequest("received_at is out of range".into()));
    }
    Ok(t)
}

/// `POST /v1/dsr/requests/{id}/extend`: moves the due date of an open,
/// not yet overdue request on by one or two months (two in total), for a
/// recorded reason. Art. 12(3) lets the controller extend only while the
/// request is still within its period, telling the data subject why.
pub async fn extend(
    svc: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
    body: Result<ExtendBody, Error>,
) -> Result<RequestView, Error> {
    svc.audited(caller, Action::DsrRequestUpdate, async |actor, scope| {
        staff(svc, actor, Operation::UpdateDsrRequest, scope)?;
        let (id, body) = (id?, body?);
        let months = u8::try_from(body.months)
            .ok()
            .filter(|m| (1..=MAX_EXTENSION_MONTHS).contains(m))
            .ok_or_else(|| Error::InvalidRequest("months must be 1 or 2".into()))?;
        let reason = body
            .reason
            .as_deref()
            .ok_or_else(|| Error::InvalidRequest("reason is required for an extension".into()))
            .and_then(|r| short_text("reason", r, MAX_TEXT))?;
        let req = load(svc, id).await?;
        name_in_entry(scope, &req);
        scope.detail("change", "extend");
        scope.detail("months", months);
        let now = svc.clock.now();
        if req.status.is_final() {
            return Err(Error::InvalidTransition(format!(
                "a {} request is closed and cannot be extended",
                req.status.as_str()
            )));
        }
        let total = req.extension_months().saturating_add(months);
        if total > MAX_EXTENSION_MONTHS {
            return Err(Error::InvalidTransition(format!(
                "the due date may be extended by at most {MAX_EXTENSION_MONTHS} months in total; \
                 this request has {} already",
                req.extension_months()
            )));
        }
        if now >= req.due_at() {
            return Err(Error::InvalidTransition(
                "an overdue request cannot be extended: an extension is decided within the current period".into(),
            ));
        }
        let due = due_at(store::from_micros(req.row.received_at), total).ok_or(Error::Internal)?;
        let at = store::to_micros(now);
        let mut row = changed_by(actor, &req.row, at);
        row.extension_months = i64::from(total);
        row.due_at = store::to_micros(due);
        let mut line = event(actor, &row, "extend", at);
        line.from_status = Some(req.row.status.clone());
        line.months = Some(i64::from(months));
        line.reason = Some(reason);
        save(svc, scope, &req, row, &line, now).await
    })
    .await
}

/// `POST /v1/dsr/requests/{id}/transition`: moves a request to a state the
/// table allows next. Verifying identity names the customer; refusing needs
/// a reason; completing an erasure request needs the customer erased.
pub async fn transition(
    svc: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
    body: Result<TransitionBody, Error>,
) -> Result<RequestView, Error> {
    svc.audited(caller, Action::DsrRequestUpdate, async |actor, scope| {
        staff(svc, actor, Operation::UpdateDsrRequest, scope)?;
        let (id, body) = (id?, body?);
        let to = RequestStatus::parse(&body.to).ok_or_else(|| {
            Error::InvalidRequest(
                "to must be identity_verified, in_progress, completed, refused or withdrawn".into(),
            )
        })?;
        let reason = optional_text("reason", body.reason.as_deref())?;
        let req = load(svc, id).await?;
        name_in_entry(scope, &req);
        scope.detail("change", "transition");
        scope.detail("from", req.status.as_str());
        scope.detail("to", to.as_str());
        let customer = settle_customer(svc, &req, to, body.customer_id).await?;
        check_transition(svc, &req, to, customer, reason.is_some()).await?;
        scope.customer_id = customer;
        let now = svc.clock.now();
        let at = store::to_micros(now);
        let mut row = changed_by(actor, &req.row, at);
        row.status = to.as_str().to_owned();
        row.customer_id = customer;
        row.closed_at = to.is_final().then_some(at);
        let mut line = event(actor, &row, "transition", at);
        line.from_status = Some(req.row.status.clone());
        line.reason = reason;
        save(svc, scope, &req, row, &line, now).await
    })
    .await
}

/// The customer a request names after moving to `to`: the one it named, or
/// the one given with `identity_verified`.
async fn settle_customer(
    svc: &Services,
    req: &Request,
    to: RequestStatus,
    given: Option<Uuid>,
) -> Result<Option<Uuid>, Error> {
    match (req.row.customer_id, given) {
        (known, None) => Ok(known),
        (Some(known), Some(g)) if known == g => Ok(Some(known)),
        (Some(_), Some(_)) => Err(Error::InvalidTransition(
            "the request names another customer already".into(),
        )),
        (None, Some(g)) if to == RequestStatus::IdentityVerified => {
            require_customer(svc, g).await?;
            Ok(Some(g))
        }
        (None, Some(_)) => Err(Error::InvalidRequest(
            "customer_id is given when the identity is verified".into(),
        )),
    }
}

/// The rules of a move beyond the table.
async fn check_transition(
    svc: &Services,
    req: &Request,
    to: RequestStatus,
    customer: Option<Uuid>,
    has_reason: bool,
) -> Result<(), Error> {
    if !req.status.may_become(to) {
        let next: Vec<_> = req.status.next().iter().map(|s| s.as_str()).collect();
        return Err(Error::InvalidTransition(if next.is_empty() {
            format!(
                "a {} request is closed; it cannot change",
                req.status.as_str()
            )
        } else {
            format!(
                "a {} request cannot become {}; it may become {}",
                req.status.as_str(),
                to.as_str(),
                next.join(", ")
            )
        }));
    }
    match to {
        RequestStatus::IdentityVerified if customer.is_none() => Err(Error::InvalidRequest(
            "customer_id is required to verify the identity: the customer the requester is".into(),
        )),
        RequestStatus::Refused if !has_reason => Err(Error::InvalidRequest(
            "reason is required to refuse a request".into(),
        )),
        RequestStatus::Completed if req.kind == RequestKind::Erasure => {
            let erased = match customer {
                Some(c) => matches!(store::customers::state(&svc.db, c).await?, Some(Some(_))),
                None => false,
            };
            if erased {
                Ok(())
            } else {
                Err(Error::InvalidTransition(
                    "an erasure request is completed by erasing the customer with its case reference"
                        .into(),
                ))
            }
        }
        _ => Ok(()),
    }
}

/// The row as `actor` leaves it at `at`, before the change itself.
fn changed_by(actor: &Actor, row: &RequestRow, at: i64) -> RequestRow {
    RequestRow {
        handled_by: actor.sub.clone(),
        handler_role: actor.role.as_str().to_owned(),
        updated_at: at.max(row.updated_at),
        ..row.clone()
    }
}

/// Commits the entry, then the change on the condition that the request is
/// as it was read; a concurrent change answers 409.
async fn save(
    svc: &Services,
    scope: &mut AuditScope,
    before: &Request,
    row: RequestRow,
    line: &EventRow,
    now: OffsetDateTime,
) -> Result<RequestView, Error> {
    let after = Request::parse(row)?;
    scope.detail("status", after.status.as_str());
    scope.detail("due_date", after.due_date());
    scope.detail("extension_months", after.extension_months());
    scope.commit_before_write(svc).await?;
    if !store::dsr_requests::update(&svc.db, &before.row, &after.row, line).await? {
        return Err(Error::InvalidTransition(
            "the request changed meanwhile; read it again".into(),
        ));
    }
    Ok(after.view(now))
}

/// Completes the register's open erasure request with this case reference
/// once a staff erasure of `customer` under it has run (see the module
/// documentation): its own `dsr.request.update` entry, by the same caller.
/// A request of another kind or customer, or one that is not identity
/// verified or in progress, is left as it is (the officer sees it open).
pub async fn settle_erasure(
    svc: &Services,
    caller: &Caller,
    case_reference: &str,
    customer: Uuid,
) -> Result<(), Error> {
    let Some(row) = store::dsr_requests::by_case(&svc.db, case_reference).await? else {
        return Ok(());
    };
    let req = Request::parse(row)?;
    let ready = matches!(
        req.status,
        RequestStatus::IdentityVerified | RequestStatus::InProgress
    );
    if req.kind != RequestKind::Erasure || req.row.customer_id != Some(customer) || !ready {
        return Ok(());
    }
    svc.audited(caller, Action::DsrRequestUpdate, async |actor, scope| {
        staff(svc, actor, Operation::UpdateDsrRequest, scope)?;
        name_in_entry(scope, &req);
        scope.detail("change", "transition");
        scope.detail("from", req.status.as_str());
        scope.detail("to", RequestStatus::Completed.as_str());
        scope.detail("by", "erasure");
        let now = svc.clock.now();
        let at = store::to_micros(now);
        let mut row = changed_by(actor, &req.row, at);
        row.status = RequestStatus::Completed.as_str().to_owned();
        row.closed_at = Some(at);
        let mut line = event(actor, &row, "transition", at);
        line.from_status = Some(req.row.status.clone());
        save(svc, scope, &req, row, &line, now).await.map(drop)
    })
    .await
}
