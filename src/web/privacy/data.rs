//! "Your data" (every contact point and interaction with its deletion
//! date, and the downloads), "Who has seen my data" (the access log in
//! plain words) and "Your requests" (the register's view for the customer).

use std::collections::HashMap;

use askama::Template;
use axum::{extract::State, http::StatusCode, response::Response};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{fail, session::Customer, words};
use crate::{
    service::{dsr_register, privacy},
    web::{render, Frame, WebState},
};

/// A contact point as the page lists it.
pub struct ContactLine {
    pub channel: String,
    pub value: Zeroizing<String>,
    pub label: Option<Zeroizing<String>>,
    pub added: String,
    pub deleted: String,
}

/// An interaction as the page lists it.
pub struct InteractionLine {
    pub channel: String,
    pub kind: String,
    pub body: Zeroizing<String>,
    pub at: String,
    pub deleted: String,
}

#[derive(Template)]
#[template(path = "privacy_data.html")]
struct DataPage {
    f: Frame,
    name: Option<Zeroizing<String>>,
    contacts: Vec<ContactLine>,
    interactions: Vec<InteractionLine>,
    /// When items go, and the zone the page's times are in.
    retention_note: String,
}

/// `GET /privacy/` signed in: the customer's data, unmasked (audited as a
/// read of their own record).
pub async fn show(state: &WebState, customer: Customer) -> Response {
    let lang = customer.lang;
    let zone = &state.app.config.display_zone;
    let bundle = match privacy::my_data(&state.app, &customer.caller()).await {
        Ok(b) => b,
        Err(e) => return fail(lang, &e),
    };
    let deadlines: HashMap<Uuid, Option<String>> = bundle
        .retention
        .iter()
        .map(|r| (r.id, r.delete_after.clone()))
        .collect();
    let deleted = |id: &Uuid| match deadlines.get(id).cloned().flatten() {
        Some(at) => words::rfc3339_date(lang, zone, &at),
        None => lang.t("privacy_kept_until_erased").to_owned(),
    };
    let contacts = bundle
        .contacts
        .into_iter()
        .map(|c| ContactLine {
            deleted: deleted(&c.id),
            channel: words::channel(lang, &c.channel),
            added: words::rfc3339_date(lang, zone, &c.created_at),
            value: c.value,
            label: c.label,
        })
        .collect();
    let interactions = bundle
        .interactions
        .into_iter()
        .map(|i| InteractionLine {
            deleted: deleted(&i.id),
            channel: words::channel(lang, &i.channel),
            kind: words::kind(lang, &i.kind),
            at: words::rfc3339_date_time(lang, zone, &i.created_at),
            body: i.body,
        })
        .collect();
    let page = DataPage {
        f: customer.frame("/privacy/"),
        name: bundle.customer.display_name,
        contacts,
        interactions,
        retention_note: words::fill(lang.t("privacy_retention_note"), &[("zone", zone.name())]),
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "privacy_access.html")]
struct AccessPage {
    f: Frame,
    /// Each entry's sentences, newest first.
    entries: Vec<Vec<String>>,
}

/// `GET /privacy/access`: who has seen the customer's data, in plain words.
pub async fn access(State(state): State<WebState>, customer: Customer) -> Response {
    let lang = customer.lang;
    let zone = &state.app.config.display_zone;
    let events = match privacy::access_log(&state.app, &customer.caller()).await {
        Ok(events) => events,
        Err(e) => return fail(lang, &e),
    };
    let page = AccessPage {
        f: customer.frame("/privacy/access"),
        entries: events
            .iter()
            .map(|e| words::sentences(lang, zone, e))
            .collect(),
    };
    render(StatusCode::OK, &page)
}

/// A request as the page lists it.
pub struct RequestLine {
    pub case_reference: String,
    pub kind: String,
    pub status: String,
    pub received: String,
    pub due: String,
    pub closed: String,
}

#[derive(Template)]
#[template(path = "privacy_requests.html")]
struct RequestsPage {
    f: Frame,
    requests: Vec<RequestLine>,
}

/// `GET /privacy/requests`: the customer's requests from the register.
pub async fn requests(State(state): State<WebState>, customer: Customer) -> Response {
    let lang = customer.lang;
    let zone = &state.app.config.display_zone;
    let own = match dsr_register::mine(&state.app, &customer.caller()).await {
        Ok(own) => own,
        Err(e) => return fail(lang, &e),
    };
    let requests = own
        .requests
        .into_iter()
        .map(|r| RequestLine {
            kind: words::request_word(lang, r.kind),
            status: words::request_word(lang, r.status),
            received: words::rfc3339_date(lang, zone, &r.received_at),
            due: words::rfc3339_date(lang, zone, &r.due_date),
            closed: r
                .closed_at
                .map(|c| words::rfc3339_date(lang, zone, &c))
                .unwrap_or_default(),
            case_reference: r.case_reference,
        })
        .collect();
    let page = RequestsPage {
        f: customer.frame("/privacy/requests"),
        requests,
    };
    render(StatusCode::OK, &page)
}
