//! The register of data subject requests (`/console/requests`): what is
//! overdue or due within seven days first, marked in words, then the rest;
//! a form to register a request; a request's page with its history and
//! only the steps its state allows (the table of
//! [`crate::domain::dsr::RequestStatus::next`], as the service reports
//! it); and the register as CSV. The rules live in
//! [`crate::service::dsr_register`]; these pages show them.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{failure, not_found, path_id, view};
use crate::{
    domain::dsr::RequestKind,
    service::{
        dsr_register::{
            self, EventView, ExtendBody, ListQuery, NewRequestBody, RequestView, TransitionBody,
        },
        Error,
    },
    web::{
        render,
        session::{Staff, StaffForm},
        Frame, WebState,
    },
};

const HERE: &str = "/console/requests";

/// One line of the register.
struct Line {
    id: String,
    received: String,
    kind_key: String,
    case_reference: String,
    due_date: String,
    extension_months: u8,
    extension_reason: Option<String>,
    status_key: String,
    handler: String,
    /// `dsr_overdue`, `dsr_due_soon`, or empty.
    urgency_key: &'static str,
}

/// Who handled a request, as the page names them: the signed-in officer by
/// name, anyone else by the subject their entries carry.
fn handler(staff: &Staff, sub: &str, role: &str) -> String {
    if sub == staff.account.id.to_string() {
        staff.account.name.as_str().to_owned()
    } else {
        format!("{sub} ({role})")
    }
}

impl Line {
    fn of(staff: &Staff, r: &RequestView, extension_reason: Option<String>) -> Self {
        Line {
            id: r.id.to_string(),
            received: view::day(&r.received_at),
            kind_key: format!("dsr_kind_{}", r.kind),
            case_reference: r.case_reference.clone(),
            due_date: r.due_date.clone(),
            extension_months: r.extension_months,
            extension_reason,
            status_key: format!("dsr_status_{}", r.status),
            handler: handler(staff, &r.handled_by.sub, &r.handled_by.role),
            urgency_key: if r.overdue {
                "dsr_overdue"
            } else if r.due_soon {
                "dsr_due_soon"
            } else {
                ""
            },
        }
    }
}

/// The latest extension's reason in a request's history.
fn extension_reason(history: &[EventView]) -> Option<String> {
    history
        .iter()
        .rev()
        .find(|e| e.change == "extend")
        .and_then(|e| e.reason.clone())
}

/// What the registration form holds, and what was wrong with it.
#[derive(Default)]
struct NewForm {
    kind: String,
    case_reference: String,
    received: String,
    customer_id: String,
    note: String,
    error: Option<&'static str>,
}

/// The register.
#[derive(Template)]
#[template(path = "requests.html")]
struct RegisterPage {
    f: Frame,
    attention: Vec<Line>,
    rest: Vec<Line>,
    form: NewForm,
}

/// Draws the register: urgent requests first (the service's order), each
/// extended one with the reason of its extension.
async fn register_page(
    state: &WebState,
    staff: &Staff,
    status: StatusCode,
    form: NewForm,
) -> Response {
    let caller = staff.caller();
    let list = match dsr_register::list(&state.app, &caller, Ok(ListQuery::default())).await {
        Ok(list) => list,
        Err(e) => return failure(staff, HERE, &e),
    };
    let (mut attention, mut rest) = (Vec::new(), Vec::new());
    for r in &list.requests {
        let reason = if r.extension_months > 0 {
            match dsr_register::read(&state.app, &caller, Ok(r.id)).await {
                Ok(detail) => extension_reason(&detail.history),
                Err(e) => return failure(staff, HERE, &e),
            }
        } else {
            None
        };
        let line = Line::of(staff, r, reason);
        if r.overdue || r.due_soon {
            attention.push(line);
        } else {
            rest.push(line);
        }
    }
    let page = RegisterPage {
        f: staff.frame(HERE),
        attention,
        rest,
        form,
    };
    render(status, &page)
}

/// `GET /console/requests`.
pub async fn register(State(state): State<WebState>, staff: Staff) -> Response {
    let today = view::day(&crate::domain::time::rfc3339(state.app.clock.now()));
    let form = NewForm {
        received: today,
        ..NewForm::default()
    };
    register_page(&state, &staff, StatusCode::OK, form).await
}

#[derive(Deserialize)]
pub struct NewFields {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    case_reference: String,
    #[serde(default)]
    received: String,
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    note: String,
}

/// The request body of the form's fields, or the message key of the first
/// field that is wrong.
fn new_body(f: &NewFields) -> Result<NewRequestBody, &'static str> {
    RequestKind::parse(&f.kind).ok_or("dsr_kind_invalid")?;
    let case = f.case_reference.trim();
    if case.is_empty() {
        return Err("dsr_case_required");
    }
    let received = f.received.trim();
    let received_at = if received.is_empty() {
        None
    } else {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        let date = time::Date::parse(received, format).map_err(|_| "dsr_date_invalid")?;
        Some(format!("{date}T00:00:00Z"))
    };
    let customer = f.customer_id.trim();
    let customer_id = if customer.is_empty() {
        None
    } else {
        Some(Uuid::parse_str(customer).map_err(|_| "dsr_customer_invalid")?)
    };
    let note = f.note.trim();
    Ok(NewRequestBody {
        kind: f.kind.clone(),
        case_reference: case.to_owned(),
        received_at,
        customer_id,
        note: (!note.is_empty()).then(|| note.to_owned()),
    })
}

/// `POST /console/requests`: registers a request, then back to the register.
pub async fn create(State(state): State<WebState>, posted: StaffForm<NewFields>) -> Response {
    let StaffForm { staff, form } = posted;
    let (status, error) = match new_body(&form) {
        Err(key) => (StatusCode::BAD_REQUEST, key),
        Ok(body) => match dsr_register::create(&state.app, &staff.caller(), Ok(body)).await {
            Ok(_) => return Redirect::to(HERE).into_response(),
            Err(e @ (Error::InvalidRequest(_) | Error::CaseReferenceExists)) => {
                (crate::http::error::status(&e), super::message_key(&e))
            }
            Err(e) => return failure(&staff, HERE, &e),
        },
    };
    let form = NewForm {
        kind: form.kind,
        case_reference: form.case_reference,
        received: form.received,
        customer_id: form.customer_id,
        note: form.note,
        error: Some(error),
    };
    register_page(&state, &staff, status, form).await
}

/// `POST /console/requests/download`: the register as CSV (audited as
/// `dsr.request.export`).
pub async fn download(State(state): State<WebState>, posted: StaffForm<NoFields>) -> Response {
    let staff = posted.staff;
    match dsr_register::export_csv(&state.app, &staff.caller(), Ok(ListQuery::default())).await {
        Ok(csv) => {
            super::customers::attachment(csv.bytes, "text/csv; charset=utf-8", &csv.file_name)
        }
        Err(e) => failure(&staff, HERE, &e),
    }
}

/// A form of no fields but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

/// A step a request may take next, as a button.
struct Step {
    to: &'static str,
    label_key: String,
    /// Verifying the identity names the customer when the request does not.
    needs_customer: bool,
    /// Refusing needs a reason.
    needs_reason: bool,
}

struct HistoryLine {
    at: String,
    who: String,
    change_key: String,
    from_key: String,
    to_key: String,
    months: String,
    reason: String,
}

/// A request's page.
#[derive(Template)]
#[template(path = "request.html")]
struct RequestPage {
    f: Frame,
    r: Line,
    received_at: String,
    customer_id: Option<String>,
    closed_at: Option<String>,
    steps: Vec<Step>,
    can_extend: bool,
    history: Vec<HistoryLine>,
    error: Option<&'static str>,
}

/// Draws request `id` with its history and next steps.
async fn request_page(
    state: &WebState,
    staff: &Staff,
    id: Uuid,
    status: StatusCode,
    error: Option<&'static str>,
) -> Response {
    let detail = match dsr_register::read(&state.app, &staff.caller(), Ok(id)).await {
        Ok(d) => d,
        Err(e) => return failure(staff, HERE, &e),
    };
    let r = &detail.request;
    let steps = r
        .next
        .iter()
        .map(|to| Step {
            to,
            label_key: format!("dsr_step_{to}"),
            needs_customer: *to == "identity_verified" && r.customer_id.is_none(),
            needs_reason: *to == "refused",
        })
        .collect();
    let history = detail
        .history
        .iter()
        .map(|e| HistoryLine {
            at: view::when(&e.at),
            who: handler(staff, &e.actor.sub, &e.actor.role),
            change_key: format!("dsr_change_{}", e.change),
            from_key: e
                .from
                .as_ref()
                .map(|s| format!("dsr_status_{s}"))
                .unwrap_or_default(),
            to_key: format!("dsr_status_{}", e.to),
            months: e.months.map(|m| m.to_string()).unwrap_or_default(),
            reason: e.reason.clone().unwrap_or_default(),
        })
        .collect();
    let page = RequestPage {
        f: staff.frame(HERE),
        r: Line::of(staff, r, extension_reason(&detail.history)),
        received_at: view::when(&r.received_at),
        customer_id: r.customer_id.map(|c| c.to_string()),
        closed_at: r.closed_at.as_deref().map(view::when),
        can_extend: !r.next.is_empty() && !r.overdue && r.extension_months < 2,
        steps,
        history,
        error,
    };
    render(status, &page)
}

/// `GET /console/requests/{id}`.
pub async fn page(State(state): State<WebState>, staff: Staff, Path(id): Path<String>) -> Response {
    let Some(id) = path_id(&id) else {
        return not_found(&staff, HERE);
    };
    request_page(&state, &staff, id, StatusCode::OK, None).await
}

#[derive(Deserialize)]
pub struct StepFields {
    #[serde(default)]
    to: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    customer_id: String,
    #[serde(default)]
    months: String,
}

fn optional(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// After a change: back to the request, or its page again with what the
/// register refused, in words.
async fn after_change(
    state: &WebState,
    staff: &Staff,
    id: Uuid,
    outcome: Result<RequestView, Error>,
) -> Response {
    match outcome {
        Ok(_) => Redirect::to(&format!("{HERE}/{id}")).into_response(),
        Err(e @ (Error::InvalidRequest(_) | Error::InvalidTransition(_))) => {
            let status = crate::http::error::status(&e);
            request_page(state, staff, id, status, Some(super::message_key(&e))).await
        }
        Err(e) => failure(staff, HERE, &e),
    }
}

/// `POST /console/requests/{id}/transition`: one of the next steps.
pub async fn transition(
    State(state): State<WebState>,
    Path(id): Path<String>,
    posted: StaffForm<StepFields>,
) -> Response {
    let StaffForm { staff, form } = posted;
    let Some(id) = path_id(&id) else {
        return not_found(&staff, HERE);
    };
    let customer_id = match optional(&form.customer_id).map(|c| Uuid::parse_str(&c)) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(_)) => {
            let key = Some("dsr_customer_invalid");
            return request_page(&state, &staff, id, StatusCode::BAD_REQUEST, key).await;
        }
    };
    let body = TransitionBody {
        to: form.to,
        reason: optional(&form.reason),
        customer_id,
    };
    let outcome = dsr_register::transition(&state.app, &staff.caller(), Ok(id), Ok(body)).await;
    after_change(&state, &staff, id, outcome).await
}

/// `POST /console/requests/{id}/extend`: one or two more months, for a
/// reason (required; the service allows two months in all).
pub async fn extend(
    State(state): State<WebState>,
    Path(id): Path<String>,
    posted: StaffForm<StepFields>,
) -> Response {
    let StaffForm { staff, form } = posted;
    let Some(id) = path_id(&id) else {
        return not_found(&staff, HERE);
    };
    let Some(reason) = optional(&form.reason) else {
        let key = Some("dsr_reason_required");
        return request_page(&state, &staff, id, StatusCode::BAD_REQUEST, key).await;
    };
    let body = ExtendBody {
        months: form.months.trim().parse().unwrap_or(0),
        reason: Some(reason),
    };
    let outcome = dsr_register::extend(&state.app, &staff.caller(), Ok(id), Ok(body)).await;
    after_change(&state, &staff, id, outcome).await
}
