//! `GET /console/audit`: the filter form and one page of the entries that
//! match, oldest first as `GET /v1/audit` gives them; and the CSV and
//! manifest downloads of the same view, both pinned to the `through` fixed
//! when the page rendered, so the manifest covers exactly that CSV file.

use askama::Template;
use axum::{
    extract::{rejection::QueryRejection, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};

use super::{
    error, failure,
    form::{FieldError, TrailForm},
    HERE,
};
use crate::{
    audit::Action,
    http::audit::{attachment, csv_response},
    service::{
        audit_export::{self, ExportQuery},
        audit_review::{self, EntryView},
    },
    web::{render, session::Staff, Frame, WebState},
};

/// Entries per page.
const PAGE: i64 = 50;

/// One option of a `<select>`.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// One field of the filter form: a text, date or select input.
pub struct Field {
    pub id: &'static str,
    pub label: &'static str,
    /// `text`, `date` or `select`.
    pub kind: &'static str,
    pub value: String,
    pub hint: Option<&'static str>,
    pub error: Option<&'static str>,
    /// The ids of the hint and error, for `aria-describedby`.
    pub described: String,
    pub choices: Vec<Choice>,
}

/// An entry as a row of the table.
pub struct Row {
    pub seq: i64,
    pub at: String,
    /// `at` to the second, for people (the column says UTC).
    pub when: String,
    pub role: String,
    pub sub: String,
    pub action: String,
    pub customer: Option<String>,
    pub channel: Option<String>,
    pub purpose: Option<String>,
    pub allowed: bool,
    pub decision: &'static str,
    pub reason: Option<String>,
}

/// The trail page.
#[derive(Template)]
#[template(path = "audit_trail.html")]
pub struct TrailPage {
    f: Frame,
    fields: Vec<Field>,
    /// Set when the form was refused: what to fix.
    summary: Option<&'static str>,
    /// The results part (absent when the form was refused).
    results: Option<Results>,
}

/// A page of entries and the links around it.
pub struct Results {
    rows: Vec<Row>,
    next: Option<String>,
    first: Option<String>,
    /// The download links, with the bound they pin (none for an empty log).
    csv: Option<String>,
    manifest: Option<String>,
    through: Option<i64>,
}

/// The action filter's options, by name.
fn action_choices(f: &Frame, chosen: &str) -> Vec<Choice> {
    let mut names: Vec<&'static str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    names.sort_unstable();
    let any = Choice {
        value: "any",
        label: f.t("audit_any"),
        selected: chosen.is_empty() || chosen == "any",
    };
    let each = names.into_iter().map(|n| Choice {
        value: n,
        label: n,
        selected: chosen == n,
    });
    std::iter::once(any).chain(each).collect()
}

fn decision_choices(f: &Frame, chosen: &str) -> Vec<Choice> {
    [
        ("any", "audit_any"),
        ("allow", "audit_allow"),
        ("deny", "audit_deny"),
    ]
    .into_iter()
    .map(|(value, key)| Choice {
        value,
        label: f.t(key),
        selected: chosen == value || (value == "any" && chosen.is_empty()),
    })
    .collect()
}

/// The form's fields with their values and errors.
fn fields(f: &Frame, form: &TrailForm, errors: &[FieldError]) -> Vec<Field> {
    let field = |id: &'static str, key: &'static str, kind: &'static str, value: &str| {
        let error = errors.iter().find(|e| e.field == id).map(|e| f.t(e.key));
        let hint = (id == "customer_id").then(|| f.t("audit_customer_hint"));
        let mut described = Vec::new();
        if hint.is_some() {
            described.push(format!("{id}-hint"));
        }
        if kind == "date" {
            // One hint below the form says how both dates are read.
            described.push("dates-hint".to_owned());
        }
        if error.is_some() {
            described.push(format!("{id}-error"));
        }
        let choices = match id {
            "action" => action_choices(f, value.trim()),
            "decision" => decision_choices(f, value.trim()),
            _ => Vec::new(),
        };
        Field {
            id,
            label: f.t(key),
            kind,
            value: value.to_owned(),
            hint,
            error,
            described: described.join(" "),
            choices,
        }
    };
    vec![
        field("customer_id", "audit_customer", "text", &form.customer_id),
        field("actor", "audit_actor", "text", &form.actor),
        field("action", "audit_action", "select", &form.action),
        field("decision", "audit_decision", "select", &form.decision),
        field("purpose", "audit_purpose", "text", &form.purpose),
        field("channel", "audit_channel", "text", &form.channel),
        field("reason", "audit_reason", "text", &form.reason),
        field("from", "audit_from", "date", &form.from),
        field("to", "audit_to", "date", &form.to),
    ]
}

impl Row {
    fn of(f: &Frame, e: EntryView) -> Row {
        let allowed = e.decision == "allow";
        Row {
            seq: e.seq,
            when: e.at.get(..19).unwrap_or(&e.at).replace('T', " "),
            at: e.at,
            role: e.actor.role,
            sub: e.actor.sub,
            action: e.action,
            customer: e.customer_id.map(|c| c.to_string()),
            channel: e.channel,
            purpose: e.purpose,
            allowed,
            decision: f.t(if allowed { "audit_allow" } else { "audit_deny" }),
            reason: e.reason,
        }
    }
}

/// `GET /console/audit`.
pub async fn trail(
    State(state): State<WebState>,
    staff: Staff,
    query: Result<Query<TrailForm>, QueryRejection>,
) -> Response {
    let Ok(Query(form)) = query else {
        return error(&staff, StatusCode::BAD_REQUEST, "error_bad_request");
    };
    let f = staff.frame(HERE);
    let checked = match form.check() {
        Ok(c) => c,
        Err(errors) => {
            let cursor = errors.iter().find(|e| e.field == "cursor");
            let page = TrailPage {
                fields: fields(&f, &form, &errors),
                summary: Some(f.t(cursor.map_or("audit_fix_fields", |e| e.key))),
                results: None,
                f,
            };
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let caller = staff.caller();
    let page = match audit_review::list(&state.app, &caller, Ok(checked.audit_query(PAGE))).await {
        Ok(p) => p,
        Err(e) => return failure(&staff, e),
    };
    // Read after the page: the downloads hold at least what is on screen.
    let through = match audit_export::current_through(&state.app, &caller).await {
        Ok(t) => t,
        Err(e) => return failure(&staff, e),
    };
    let pinned = through.map(|t| t.to_string());
    let download = |path| {
        pinned
            .as_deref()
            .map(|t| form.link(path, &[("through", t)]))
    };
    let results = Results {
        next: page
            .next_cursor
            .as_deref()
            .map(|c| form.link(HERE, &[("cursor", c)])),
        first: (!form.cursor.trim().is_empty()).then(|| form.link(HERE, &[])),
        csv: download("/console/audit/export.csv"),
        manifest: download("/console/audit/export.manifest.json"),
        through,
        rows: page.entries.into_iter().map(|e| Row::of(&f, e)).collect(),
    };
    let page = TrailPage {
        fields: fields(&f, &form, &[]),
        summary: None,
        results: Some(results),
        f,
    };
    render(StatusCode::OK, &page)
}

/// The export query of a download link's filters and bound; `None` for a
/// link this page did not draw (the caller answers the 400 page).
fn export_query(query: Result<Query<TrailForm>, QueryRejection>) -> Option<ExportQuery> {
    let Query(form) = query.ok()?;
    let checked = form.check().ok()?;
    Some(checked.export_query(&form.through))
}

/// `GET /console/audit/export.csv`: the view as CSV (audited as
/// `audit.export` by the service, as the API's download is).
pub async fn download_csv(
    State(state): State<WebState>,
    staff: Staff,
    query: Result<Query<TrailForm>, QueryRejection>,
) -> Response {
    let Some(q) = export_query(query) else {
        return error(&staff, StatusCode::BAD_REQUEST, "audit_invalid_request");
    };
    match audit_export::export_csv(&state.app, &staff.caller(), Ok(q)).await {
        Ok(download) => csv_response(download),
        Err(e) => failure(&staff, e),
    }
}

/// `GET /console/audit/export.manifest.json`: the signed manifest of that
/// CSV file (same filters, same `through`).
pub async fn download_manifest(
    State(state): State<WebState>,
    staff: Staff,
    query: Result<Query<TrailForm>, QueryRejection>,
) -> Response {
    let Some(q) = export_query(query) else {
        return error(&staff, StatusCode::BAD_REQUEST, "audit_invalid_request");
    };
    match audit_export::export_manifest(&state.app, &staff.caller(), Ok(q)).await {
        Ok(m) => {
            let name = audit_export::manifest_file_name(m.through);
            let mut r = Json(m).into_response();
            attachment(r.headers_mut(), &name);
            r
        }
        Err(e) => failure(&staff, e),
    }
}
