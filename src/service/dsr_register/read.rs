//! Looking at the register: the list (open requests by urgency), one
//! request with its history, a customer's own requests, and the CSV
//! download. Only the download leaves an audit entry (see the module
//! documentation of [`super`]).

use uuid::Uuid;

use super::{
    load, ListQuery, OwnRequests, RegisterCsv, Request, RequestDetail, RequestList, MAX_TEXT,
};
use crate::{
    audit::Action,
    domain::{
        dsr::{RequestKind, RequestStatus},
        Actor,
    },
    policy::{Operation, DSR_PURPOSE},
    service::{export::csv_cell, Caller, Error, Services},
    store::{self, dsr_requests::Filter},
};

/// The most requests one listing returns.
const MAX_LIMIT: i64 = 1000;
const DEFAULT_LIMIT: i64 = 500;

fn caller_actor(caller: &Caller) -> Result<&Actor, Error> {
    caller.as_ref().map_err(Clone::clone)
}

/// The filter and limit of a listing, parsed.
fn filter(q: &ListQuery) -> Result<(Filter<'_>, i64), Error> {
    if let Some(s) = q.status.as_deref() {
        RequestStatus::parse(s).ok_or_else(|| {
            Error::InvalidRequest(
                "status must be received, identity_verified, in_progress, completed, refused or withdrawn"
                    .into(),
            )
        })?;
    }
    if let Some(k) = q.kind.as_deref() {
        RequestKind::parse(k).ok_or_else(|| {
            Error::InvalidRequest("kind must be access, erasure or rectification".into())
        })?;
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::InvalidRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let f = Filter {
        status: q.status.as_deref(),
        kind: q.kind.as_deref(),
        customer_id: q.customer_id,
    };
    Ok((f, limit))
}

async fn rows(svc: &Services, q: &ListQuery) -> Result<Vec<Request>, Error> {
    let (f, limit) = filter(q)?;
    store::dsr_requests::list(&svc.db, &f, limit)
        .await?
        .into_iter()
        .map(Request::parse)
        .collect()
}

/// `GET /v1/dsr/requests`: the register, overdue first, then due within
/// seven days, then by due date, then closed requests; each with its
/// `overdue` and `due_soon` flags as of the vault's clock.
pub async fn list(
    svc: &Services,
    caller: &Caller,
    query: Result<ListQuery, Error>,
) -> Result<RequestList, Error> {
    let actor = caller_actor(caller)?;
    svc.authorise_unlogged_for(actor, Operation::ListDsrRequests, DSR_PURPOSE)?;
    let q = query?;
    let now = svc.clock.now();
    let requests = rows(svc, &q).await?.iter().map(|r| r.view(now)).collect();
    Ok(RequestList { requests })
}

/// `GET /v1/dsr/requests/{id}`: one request with its history.
pub async fn read(
    svc: &Services,
    caller: &Caller,
    id: Result<Uuid, Error>,
) -> Result<RequestDetail, Error> {
    let actor = caller_actor(caller)?;
    svc.authorise_unlogged_for(actor, Operation::ReadDsrRequest, DSR_PURPOSE)?;
    let req = load(svc, id?).await?;
    let history = store::dsr_requests::events(&svc.db, req.row.id).await?;
    Ok(RequestDetail {
        request: req.view(svc.clock.now()),
        history: history.into_iter().map(Into::into).collect(),
    })
}

/// `GET /v1/me/requests`: the customer's own requests (customer token),
/// with their state and due date; never another customer's, and without
/// who handled them or the officers' reasons.
pub async fn mine(svc: &Services, caller: &Caller) -> Result<OwnRequests, Error> {
    let actor = caller_actor(caller)?;
    svc.authorise_unlogged(actor, Operation::ListOwnDsrRequests)?;
    let own = actor.customer.ok_or(Error::Forbidden)?;
    let q = ListQuery {
        customer_id: Some(own),
        limit: Some(MAX_LIMIT),
        ..ListQuery::default()
    };
    let requests = rows(svc, &q).await?.iter().map(Request::own_view).collect();
    Ok(OwnRequests { requests })
}

/// `GET /v1/dsr/requests.csv`: the register (as filtered) as CSV, in the
/// order of the list, every cell neutralised against spreadsheet formulas.
/// Audited (`dsr.request.export`, with the filters and the row count): it
/// is the register leaving the vault.
pub async fn export_csv(
    svc: &Services,
    caller: &Caller,
    query: Result<ListQuery, Error>,
) -> Result<RegisterCsv, Error> {
    svc.audited(caller, Action::DsrRequestExport, async |actor, scope| {
        svc.authorise(
            actor,
            Operation::ExportDsrRequests,
            Some(DSR_PURPOSE),
            scope,
        )?;
        let q = query?;
        let reqs = rows(svc, &q).await?;
        for (key, v) in [("status", &q.status), ("kind", &q.kind)] {
            if let Some(v) = v {
                scope.detail(key, v.chars().take(MAX_TEXT).collect::<String>());
            }
        }
        if let Some(c) = q.customer_id {
            scope.customer_id = Some(c);
        }
        scope.detail("rows", reqs.len());
        let now = svc.clock.now();
        let bytes = csv(&reqs, now).map_err(|e| Error::internal(&e))?;
        let stamp = now.date();
        Ok(RegisterCsv {
            bytes,
            file_name: format!(
                "arkku-dsr-requests-{:04}-{:02}-{:02}.csv",
                stamp.year(),
                u8::from(stamp.month()),
                stamp.day()
            ),
        })
    })
    .await
}

const CSV_HEADER: [&str; 15] = [
    "id",
    "case_reference",
    "kind",
    "status",
    "customer_id",
    "received_at",
    "due_date",
    "extension_months",
    "overdue",
    "due_soon",
    "handled_by",
    "handler_role",
    "created_at",
    "updated_at",
    "closed_at",
];

fn csv(reqs: &[Request], now: time::OffsetDateTime) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_HEADER)?;
    for r in reqs {
        let v = r.view(now);
        let cells = [
            v.id.to_string(),
            v.case_reference,
            v.kind.to_owned(),
            v.status.to_owned(),
            v.customer_id.map(|c| c.to_string()).unwrap_or_default(),
            v.received_at,
            v.due_date,
            v.extension_months.to_string(),
            v.overdue.to_string(),
            v.due_soon.to_string(),
            v.handled_by.sub,
            v.handled_by.role,
            v.created_at,
            v.updated_at,
            v.closed_at.unwrap_or_default(),
        ];
        w.write_record(
            cells
                .iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .iter()
                .map(|c| c.as_bytes()),
        )?;
    }
    w.into_inner().map_err(|e| e.into_error().into())
}
