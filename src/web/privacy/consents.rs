//! Consents: one switch (a form with one button, "Allow" or "Withdraw") per
//! channel the customer has contact points on and per consent-based purpose,
//! beside the notice whose id and version become the grant's evidence
//! (method `web_form`). Withdrawing is one button, exactly as granting is.
//! The current state and the ledger's history come from
//! [`consents::list_mine`]; a change goes through [`consents::record_mine`],
//! the operation behind `POST /v1/me/consents`.

use askama::Template;
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    fail,
    session::{Customer, CustomerForm},
    words,
};
use crate::{
    policy::ANY_CHANNEL,
    service::{
        consents::{self, ConsentBody, Evidence, LedgerView, MyConsentBody},
        privacy,
    },
    web::{render, Frame, Lang, WebState},
};

/// One purpose's switches and its notice.
pub struct PurposeBlock {
    pub purpose: String,
    /// Its name, as a heading.
    pub name: String,
    pub notice_id: String,
    pub notice_version: String,
    pub notice: String,
    pub switches: Vec<Switch>,
}

/// One (purpose, channel) switch.
pub struct Switch {
    pub channel: String,
    pub channel_name: String,
    pub status: String,
    /// Whether the consent is in force now (the button withdraws it).
    pub on: bool,
}

/// One ledger event as the history lists it.
pub struct HistoryLine {
    pub at: String,
    pub purpose: String,
    pub channel: String,
    pub action: String,
    pub method: String,
    pub notice: String,
}

#[derive(Template)]
#[template(path = "privacy_consents.html")]
struct ConsentsPage {
    f: Frame,
    purposes: Vec<PurposeBlock>,
    history: Vec<HistoryLine>,
}

/// `GET /privacy/consents`.
pub async fn show(State(state): State<WebState>, customer: Customer) -> Response {
    let lang = customer.lang;
    let zone = &state.app.config.display_zone;
    let caller = customer.caller();
    let (data, ledger) = match (
        privacy::my_data(&state.app, &caller).await,
        consents::list_mine(&state.app, &caller).await,
    ) {
        (Ok(d), Ok(l)) => (d, l),
        (Err(e), _) | (_, Err(e)) => return fail(lang, &e),
    };
    let mut channels: Vec<String> = data.contacts.iter().map(|c| c.channel.clone()).collect();
    channels.dedup();
    channels.sort();
    channels.dedup();
    let notices = &state.app.policies.notices;
    let purposes = notices
        .iter()
        .map(|(purpose, notice)| PurposeBlock {
            purpose: purpose.to_string(),
            name: words::capitalised(words::purpose(lang, purpose.as_str())),
            notice_id: notice.id.clone(),
            notice_version: notice.version.clone(),
            notice: match lang {
                Lang::En => notice.text_en.clone(),
                Lang::Fi => notice.text_fi.clone(),
            },
            switches: channels
                .iter()
                .map(|ch| switch(lang, &ledger, purpose.as_str(), ch))
                .collect(),
        })
        .collect();
    let history = ledger
        .history
        .iter()
        .rev()
        .map(|e| HistoryLine {
            at: words::rfc3339_date_time(lang, zone, &e.at),
            purpose: words::purpose(lang, &e.purpose),
            channel: channel_name(lang, &e.channel),
            action: words::consent_status(lang, &e.action),
            method: words::consent_status(lang, &e.method),
            notice: e
                .evidence
                .as_ref()
                .map(|ev| format!("{} v{}", ev.notice_id, ev.notice_version))
                .unwrap_or_default(),
        })
        .collect();
    let page = ConsentsPage {
        f: customer.frame("/privacy/consents"),
        purposes,
        history,
    };
    render(StatusCode::OK, &page)
}

fn channel_name(lang: Lang, channel: &str) -> String {
    if channel == ANY_CHANNEL {
        lang.t("privacy_every_channel").to_owned()
    } else {
        words::channel(lang, channel)
    }
}

/// The switch of (`purpose`, `channel`): the channel's own state, else the
/// every-channel state, else not given.
fn switch(lang: Lang, ledger: &LedgerView, purpose: &str, channel: &str) -> Switch {
    let state_of = |ch: &str| {
        ledger
            .current
            .iter()
            .find(|s| s.purpose == purpose && s.channel == ch)
            .map(|s| s.status)
    };
    let status = state_of(channel)
        .or_else(|| state_of(ANY_CHANNEL))
        .unwrap_or("not_given");
    Switch {
        channel: channel.to_owned(),
        channel_name: words::channel(lang, channel),
        status: words::consent_status(lang, status),
        on: status == "granted",
    }
}

/// The switch's fields: which consent, and which way.
#[derive(Deserialize)]
pub struct ChangeFields {
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    action: String,
}

/// `POST /privacy/consents`: grants or withdraws one consent, with the
/// purpose's notice as the evidence, then shows the page again.
pub async fn change(State(state): State<WebState>, posted: CustomerForm<ChangeFields>) -> Response {
    let CustomerForm { customer, form } = posted;
    let lang = customer.lang;
    let Some(notice) = state.app.policies.notice(&form.purpose) else {
        return fail(
            lang,
            &crate::service::Error::InvalidRequest("purpose".into()),
        );
    };
    let body = ConsentBody {
        purpose: form.purpose.clone(),
        channel: form.channel,
        action: form.action,
        evidence: Some(Evidence {
            notice_id: notice.id.clone(),
            notice_version: notice.version.clone(),
        }),
        method: "web_form".to_owned(),
        expires_at: None,
    };
    let input = Ok(MyConsentBody::Change(body));
    match consents::record_mine(&state.app, &customer.caller(), input).await {
        Ok(_) => Redirect::to("/privacy/consents").into_response(),
        Err(e) => fail(lang, &e),
    }
}
