//! Finding a data subject and acting on their record: the find form
//! (`/console/customers`, a POST so the value searched for never lands in a
//! URL), the masked record (`/console/customers/{id}`), the reveal and the
//! export download (each with a case reference: the one read of values,
//! audited as `export`), and the erasure with a typed confirmation.

use askama::Template;
use axum::{
    extract::{Path, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    failure, not_found, path_id,
    view::{self, short_id, Record, RequestLine, Subject},
};
use crate::{
    policy::DSR_PURPOSE,
    service::{
        dsr::{self, EraseQuery, ExportQuery},
        dsr_register::{self, ListQuery},
        export::{Bundle, Export},
        inventory::{self, Found, Inventory, LookupChannel},
        Error,
    },
    web::{
        render,
        session::{Staff, StaffForm},
        Frame, WebState,
    },
};

const HERE: &str = "/console/customers";
/// Longest case reference (as the service's).
const MAX_CASE: usize = 200;

/// The find form, with its results once searched.
#[derive(Template)]
#[template(path = "customer_find.html")]
struct FindPage {
    f: Frame,
    channels: Vec<ChannelOption>,
    channel: String,
    value: String,
    error: Option<&'static str>,
    results: Option<Vec<FoundLine>>,
}

/// A channel of the find form's list, with its kind's message key.
struct ChannelOption {
    name: String,
    kind_key: String,
}

fn options(channels: Vec<LookupChannel>) -> Vec<ChannelOption> {
    channels
        .into_iter()
        .map(|c| ChannelOption {
            kind_key: format!("dsr_kind_value_{}", c.kind),
            name: c.name,
        })
        .collect()
}

struct FoundLine {
    id: String,
    short: String,
    created: String,
}

impl FoundLine {
    fn of(found: &Found) -> Self {
        FoundLine {
            id: found.customer_id.to_string(),
            short: short_id(found.customer_id),
            created: found
                .created_at
                .as_deref()
                .map(view::when)
                .unwrap_or_default(),
        }
    }
}

/// `GET /console/customers`: the find form.
pub async fn find_form(State(state): State<WebState>, staff: Staff) -> Response {
    match inventory::lookup_channels(&state.app, &staff.caller()) {
        Ok(channels) => {
            let channels = options(channels);
            let channel = channels.first().map(|c| c.name.clone()).unwrap_or_default();
            let page = FindPage {
                f: staff.frame(HERE),
                channels,
                channel,
                value: String::new(),
                error: None,
                results: None,
            };
            render(StatusCode::OK, &page)
        }
        Err(e) => failure(&staff, HERE, &e),
    }
}

#[derive(Deserialize)]
pub struct FindFields {
    #[serde(default)]
    channel: String,
    #[serde(default)]
    value: String,
}

/// `POST /console/customers`: the lookup (purpose `dsr`, audited as
/// `lookup`), and the form again with the matches, or with what was wrong.
pub async fn find(State(state): State<WebState>, posted: StaffForm<FindFields>) -> Response {
    let StaffForm { staff, form } = posted;
    let caller = staff.caller();
    let channels = match inventory::lookup_channels(&state.app, &caller) {
        Ok(c) => options(c),
        Err(e) => return failure(&staff, HERE, &e),
    };
    let outcome = if form.value.trim().is_empty() {
        Err(Error::InvalidRequest("value is required".into()))
    } else {
        inventory::find(&state.app, &caller, &form.channel, &form.value).await
    };
    let (status, error, results, value) = match outcome {
        Ok(found) => {
            let lines = found.iter().map(FoundLine::of).collect();
            (StatusCode::OK, None, Some(lines), String::new())
        }
        // What was typed does not parse: the form again, the error at the field.
        Err(
            e @ (Error::InvalidRequest(_)
            | Error::InvalidPhone(_)
            | Error::InvalidEmail(_)
            | Error::UnknownChannel(_)),
        ) => {
            let key = if form.value.trim().is_empty() {
                "dsr_value_required"
            } else {
                super::message_key(&e)
            };
            (StatusCode::BAD_REQUEST, Some(key), None, form.value)
        }
        Err(e) => return failure(&staff, HERE, &e),
    };
    let page = FindPage {
        f: staff.frame(HERE),
        channels,
        channel: form.channel,
        value,
        error: error.map(|k| staff.lang.t(k)),
        results,
    };
    render(status, &page)
}

/// The customer page: masked, or with the values of one export.
#[derive(Template)]
#[template(path = "customer.html")]
struct CustomerPage {
    f: Frame,
    id: String,
    short: String,
    /// A live customer's record (masked unless revealed).
    record: Option<Box<Record>>,
    /// An erased customer's tombstone.
    erased_at: Option<String>,
    requests: Vec<RequestLine>,
    /// The case reference the values were revealed for.
    revealed_for: Option<String>,
    reveal_error: Option<&'static str>,
    export_error: Option<&'static str>,
}

/// Which of the page's forms an error belongs to.
enum FormError {
    Reveal(&'static str),
    Export(&'static str),
}

/// Draws the customer page: the inventory (its own `customer.inventory`
/// entry), the register's requests naming the customer, and the values of
/// `revealed` when the officer asked for them.
async fn customer_page(
    state: &WebState,
    staff: &Staff,
    id: Uuid,
    revealed: Option<(&Bundle, String)>,
    error: Option<FormError>,
) -> Response {
    let caller = staff.caller();
    let inventory = match inventory::inventory(&state.app, &caller, Ok(id)).await {
        Ok(i) => i,
        Err(e) => return failure(staff, HERE, &e),
    };
    let query = ListQuery {
        customer_id: Some(id),
        ..ListQuery::default()
    };
    let requests = match dsr_register::list(&state.app, &caller, Ok(query)).await {
        Ok(list) => list.requests.iter().map(RequestLine::of).collect(),
        Err(e) => return failure(staff, HERE, &e),
    };
    let status = match error {
        Some(_) => StatusCode::BAD_REQUEST,
        None => StatusCode::OK,
    };
    let (reveal_error, export_error) = match error {
        Some(FormError::Reveal(k)) => (Some(staff.lang.t(k)), None),
        Some(FormError::Export(k)) => (None, Some(staff.lang.t(k))),
        None => (None, None),
    };
    let (bundle, revealed_for) = revealed.unzip();
    let (record, erased_at) = match view::subject(inventory, bundle) {
        Subject::Live(record) => (Some(record), None),
        Subject::Erased { erased_at } => (None, Some(erased_at)),
    };
    let page = CustomerPage {
        f: staff.frame(HERE),
        id: id.to_string(),
        short: short_id(id),
        record,
        erased_at,
        requests,
        revealed_for,
        reveal_error,
        export_error,
    };
    render(status, &page)
}

/// `GET /console/customers/{id}`: what the vault holds, masked; the
/// tombstone once erased.
pub async fn page(State(state): State<WebState>, staff: Staff, Path(id): Path<String>) -> Response {
    let Some(id) = path_id(&id) else {
        return not_found(&staff, HERE);
    };
    customer_page(&state, &staff, id, None, None).await
}

/// A case reference as typed: trimmed, 1–200 characters, one line.
fn case_reference(text: &str) -> Result<String, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        Err("dsr_case_required")
    } else if text.chars().count() > MAX_CASE || text.chars().any(char::is_control) {
        Err("dsr_case_invalid")
    } else {
        Ok(text.to_owned())
    }
}

#[derive(Deserialize)]
pub struct CaseFields {
    #[serde(default)]
    case_reference: String,
    #[serde(default)]
    format: String,
}

/// The staff export of customer `id` for `case`, in `format`.
async fn run_export(
    state: &WebState,
    staff: &Staff,
    id: Uuid,
    case: &str,
    format: &str,
) -> Result<Export, Error> {
    let query = ExportQuery {
        purpose: Some(DSR_PURPOSE.to_owned()),
        format: Some(format.to_owned()),
        reason: Some(case.to_owned()),
    };
    dsr::export(&state.app, &staff.caller(), Ok(id), Ok(query)).await
}

/// `POST /console/customers/{id}/reveal`: the export (JSON, the case
/// reference as its `reason`), its values drawn into this one response.
pub async fn reveal(
    State(state): State<WebState>,
    Path(id): Path<String>,
    posted: StaffForm<CaseFields>,
) -> Response {
    let StaffForm { staff, form } = posted;
    let Some(id) = path_id(&id) else {
        return not_found(&staff, HERE);
    };
    let case = match case_reference(&form.case_reference) {
        Ok(c) => c,
        Err(k) => return customer_page(&state, &staff, id, None, Some(FormError::Reveal(k))).await,
    };
    match run_export(&state, &staff, id, &case, "json").await {
        Ok(Export::Json(bundle)) => {
            customer_page(&state, &staff, id, Some((&bundle, case)), None).await
        }
        Ok(Export::Zip(_)) => failure(&staff, HERE, &Error::Internal),
        Err(Error::InvalidRequest(_)) => {
            let error = Some(FormError::Reveal("dsr_case_invalid"));
            customer_page(&state, &staff, id, None, error).await
        }
        Err(e) => failure(&staff, HERE, &e),
    }
}

/// `POST /console/customers/{id}/export`: the export as a file to save
/// (JSON or ZIP), named for the customer and the day.
pub async fn export(
    State(state): State<WebState>,
    Path(id): Path<String>,
    posted: StaffForm<CaseFields>,
) -> Response {
    let StaffForm { staff, form } = posted;
    let Some(id) = path_id(&id) else {
        return not_found(&staff, HERE);
    };
    let format = if form.format == "zip" { "zip" } else { "json" };
    let case = match case_reference(&form.case_reference) {
        Ok(c) => c,
        Err(k) => return customer_page(&state, &staff, id, None, Some(FormError::Export(k))).await,
    };
    let stamp = view::day(&crate::domain::time::rfc3339(state.app.clock.now()));
    let name = format!("arkku-export-{id}-{stamp}.{format}");
    match run_export(&state, &staff, id, &case, format).await {
        Ok(Export::Json(bundle)) => match serde_json::to_vec_pretty(&bundle) {
            Ok(bytes) => attachment(bytes, "application/json", &name),
            Err(_) => failure(&staff, HERE, &Error::Internal),
        },
        Ok(Export::Zip(zip)) => attachment(zip.bytes, "application/zip", &name),
        Err(Error::InvalidRequest(_)) => {
            let error = Some(FormError::Export("dsr_case_invalid"));
            customer_page(&state, &staff, id, None, error).await
        }
        Err(e) => failure(&staff, HERE, &e),
    }
}

/// A file to save, under `name` (ASCII: a UUID, a date and an extension).
pub(super) fn attachment(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

/// The erasure's confirmation page.
#[derive(Template)]
#[template(path = "customer_erase.html")]
struct ErasePage {
    f: Frame,
    id: String,
    short: String,
    contacts: usize,
    interactions: usize,
    consents: usize,
    case_reference: String,
    confirm_error: Option<&'static str>,
    case_error: Option<&'static str>,
}

/// Draws the confirmation page for a live customer (what the erasure will
/// destroy, from the inventory); an erased one leads to its tombstone.
async fn erase_page(
    state: &WebState,
    staff: &Staff,
    id: Uuid,
    case_reference: String,
    errors: (Option<&'static str>, Option<&'static str>),
) -> Response {
    let held = match inventory::inventory(&state.app, &staff.caller(), Ok(id)).await {
        Ok(Inventory::Live(held)) => held,
        Ok(Inventory::Erased { .. }) => {
            return Redirect::to(&format!("/console/customers/{id}")).into_response()
        }
        Err(e) => return failure(staff, HERE, &e),
    };
    let status = match errors {
        (None, None) => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    };
    let page = ErasePage {
        f: staff.frame(HERE),
        id: id.to_string(),
        short: short_id(id),
        contacts: held.contacts.len(),
        interactions: held.interaction_count,
        consents: held.consents.len(),
        case_reference,
        confirm_error: errors.0.map(|k| staff.lang.t(k)),
        case_error: errors.1.map(|k| staff.lang.t(k)),
    };
    render(status, &page)
}

/// `GET /console/customers/{id}/erase`: the confirmation form.
pub async fn erase_form(
    State(state): State<WebState>,
    staff: Staff,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = path_id(&id) else {
        return not_found(&staff, HERE);
    };
    erase_page(&state, &staff, id, String::new(), (None, None)).await
}

#[derive(Deserialize)]
pub struct EraseFields {
    #[serde(default)]
    confirmation: String,
    #[serde(default)]
    case_reference: String,
}

/// `POST /console/customers/{id}/erase`: with the customer's short id typed
/// and a case reference, [`dsr::erase`] (which records the reference and
/// completes the register's request); anything else changes nothing.
pub async fn erase(
    State(state): State<WebState>,
    Path(id): Path<String>,
    posted: StaffForm<EraseFields>,
) -> Response {
    let StaffForm { staff, form } = posted;
    let Some(id) = path_id(&id) else {
        return not_found(&staff, HERE);
    };
    let confirmed = form.confirmation.trim().eq_ignore_ascii_case(&short_id(id));
    let case = match (case_reference(&form.case_reference), confirmed) {
        (Ok(case), true) => case,
        (case, confirmed) => {
            let errors = ((!confirmed).then_some("dsr_confirm_wrong"), case.err());
            return erase_page(&state, &staff, id, form.case_reference, errors).await;
        }
    };
    let query = EraseQuery { reason: Some(case) };
    match dsr::erase(&state.app, &staff.caller(), Ok(id), Ok(query)).await {
        Ok(_) => Redirect::to(&format!("/console/customers/{id}")).into_response(),
        Err(Error::InvalidRequest(_)) => {
            let errors = (None, Some("dsr_case_invalid"));
            erase_page(&state, &staff, id, form.case_reference, errors).await
        }
        Err(e) => failure(&staff, HERE, &e),
    }
}
