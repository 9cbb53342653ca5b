//! The console's keys and policies page, `/console/keys` (admins): key
//! versions and ages, the retention schedule and the last sweep, and how
//! each channel's data integrates. It calls [`keys::overview`], which
//! authorises the caller (other roles get the 403 page) and reads metadata
//! only; nothing secret reaches this module.

use std::time::Duration;

use askama::Template;
use axum::{extract::State, http::StatusCode, response::Response, routing::get, Router};
use time::{macros::format_description, OffsetDateTime};

use super::{render, session::Staff, ErrorPage, Frame, Lang, WebState};
use crate::{
    policy::{Integration, MaskMode, INTERACTION_KINDS},
    service::{
        keys::{
            self,
            overview::{ChannelRules, KeyFile, KeysOverview, LastSweep},
        },
        Error,
    },
};

const HERE: &str = "/console/keys";

/// The page's routes.
pub fn routes() -> Router<WebState> {
    Router::new().route(HERE, get(page))
}

/// `GET /console/keys`.
async fn page(State(state): State<WebState>, staff: Staff) -> Response {
    let f = staff.frame(HERE);
    match keys::overview(&state.app, &staff.caller()).await {
        Ok(o) => render(StatusCode::OK, &KeysPage::new(f, &o)),
        Err(Error::Forbidden) => render(StatusCode::FORBIDDEN, &NotAllowed { f }),
        Err(_) => {
            let message = f.t("error_unavailable");
            render(StatusCode::SERVICE_UNAVAILABLE, &ErrorPage { f, message })
        }
    }
}

/// The 403 page, in the staff member's own frame.
#[derive(Template)]
#[template(
    source = r#"{% extends "base.html" %}
{% block title %}{{ f.t("keys_not_allowed_title") }}{% endblock %}
{% block main %}
<h1>{{ f.t("keys_not_allowed_title") }}</h1>
<p id="error-message">{{ f.t("keys_not_allowed") }}</p>
<p><a href="/console/">{{ f.t("error_back") }}</a></p>
{% endblock %}"#,
    ext = "html"
)]
struct NotAllowed {
    f: Frame,
}

#[derive(Template)]
#[template(path = "keys.html")]
struct KeysPage {
    f: Frame,
    /// The rotation interval in words, if the policies name one.
    rotate_after: Option<String>,
    keys: Vec<KeyRow>,
    files: Vec<FileRow>,
    fingerprint: String,
    /// How often `serve` sweeps, in words; `None`: it does not.
    sweep_every: Option<String>,
    sweep: Option<SweepView>,
    /// The interaction kinds, as the retention table's columns (message keys).
    kinds: Vec<&'static str>,
    retention: Vec<RetentionRow>,
    /// Consent-based purposes and how long their consents last, in words.
    consent_ages: Vec<(String, String)>,
    channels: Vec<ChannelRow>,
}

struct KeyRow {
    domain: String,
    version: u32,
    current: bool,
    created: String,
    age_days: i64,
    data_keys: i64,
    due: bool,
}

struct FileRow {
    id: &'static str,
    name: &'static str,
    about: &'static str,
    modified: String,
    age_days: String,
    due: bool,
    pending: bool,
}

struct SweepView {
    as_of: String,
    elapsed_ms: i64,
    purged: i64,
    customers: i64,
    run_id: String,
    /// (message key of the table, what, how many).
    counts: Vec<(&'static str, String, u64)>,
}

struct RetentionRow {
    channel: String,
    contact: String,
    /// One per [`KeysPage::kinds`], in that order.
    interactions: Vec<String>,
}

struct ChannelRow {
    channel: String,
    kind: &'static str,
    /// Message key: may its data join other channels' views.
    integration: &'static str,
    /// How long the consent that opens it lasts, in words (consent only).
    consent_lasts: Option<String>,
    mask: &'static str,
    sign_in: &'static str,
}

impl KeysPage {
    fn new(f: Frame, o: &KeysOverview) -> Self {
        let lang = f.lang;
        let keys = o
            .channel_keys
            .iter()
            .map(|k| KeyRow {
                domain: k.domain.clone(),
                version: k.version,
                current: k.current,
                created: when(k.created_at),
                age_days: k.age_days,
                data_keys: k.data_keys,
                due: k.due,
            })
            .collect();
        let files = vec![
            file_row("root-key", "keys_root", "keys_root_about", &o.root),
            file_row("issuer-key", "keys_issuer", "keys_issuer_about", &o.issuer),
            file_row(
                "audit-key",
                "keys_audit",
                "keys_audit_about",
                &o.audit_signing,
            ),
        ];
        KeysPage {
            rotate_after: o.rotate_after.map(|d| span(d, lang)),
            keys,
            files,
            fingerprint: o.audit_fingerprint.clone(),
            sweep_every: (!o.sweep_every.is_zero()).then(|| span(o.sweep_every, lang)),
            sweep: o.last_sweep.as_ref().map(sweep_view),
            kinds: INTERACTION_KINDS.iter().map(|k| kind_key(k)).collect(),
            retention: o.channels.iter().map(|c| retention_row(c, lang)).collect(),
            consent_ages: o
                .consent_max_ages
                .iter()
                .map(|(p, d)| (p.clone(), span(*d, lang)))
                .collect(),
            channels: o
                .channels
                .iter()
                .map(|c| channel_row(c, o.cross_channel_max_age, lang))
                .collect(),
            f,
        }
    }
}

fn file_row(id: &'static str, name: &'static str, about: &'static str, k: &KeyFile) -> FileRow {
    FileRow {
        id,
        name,
        about,
        modified: k.modified.map(when).unwrap_or_else(|| "–".to_owned()),
        age_days: k.age_days.map_or_else(|| "–".to_owned(), |d| d.to_string()),
        due: k.due,
        pending: k.pending,
    }
}

fn sweep_view(s: &LastSweep) -> SweepView {
    let mut counts = Vec::new();
    for (table, map) in [
        ("keys_sweep_contacts", &s.contacts),
        ("keys_sweep_interactions", &s.interactions),
        ("keys_sweep_consents", &s.consents),
    ] {
        counts.extend(map.iter().map(|(what, n)| (table, what.clone(), *n)));
    }
    SweepView {
        as_of: when(s.as_of),
        elapsed_ms: s.elapsed_ms,
        purged: s.purged,
        customers: s.customers,
        run_id: s.run_id.clone(),
        counts,
    }
}

fn retention_row(c: &ChannelRules, lang: Lang) -> RetentionRow {
    RetentionRow {
        channel: c.channel.clone(),
        contact: span(c.contact_retention, lang),
        interactions: INTERACTION_KINDS
            .iter()
            .map(|k| {
                c.interactions
                    .get(*k)
                    .map_or_else(|| lang.t("keys_kept").to_owned(), |d| span(*d, lang))
            })
            .collect(),
    }
}

fn channel_row(c: &ChannelRules, consent_age: Option<Duration>, lang: Lang) -> ChannelRow {
    let integration = match c.integration {
        Integration::Always => "keys_integration_always",
        Integration::Consent => "keys_integration_consent",
        Integration::Never => "keys_integration_never",
    };
    ChannelRow {
        channel: c.channel.clone(),
        kind: c.kind,
        integration,
        consent_lasts: (c.integration == Integration::Consent)
            .then(|| consent_age.map(|d| span(d, lang)))
            .flatten(),
        mask: match c.mask {
            MaskMode::Default => "keys_mask_default",
            MaskMode::Always => "keys_mask_always",
            MaskMode::Never => "keys_mask_never",
        },
        sign_in: if c.sign_in { "keys_yes" } else { "keys_no" },
    }
}

/// The message key of an interaction kind's column.
fn kind_key(kind: &str) -> &'static str {
    match kind {
        "contact_request" => "keys_kind_contact_request",
        "complaint" => "keys_kind_complaint",
        "feedback" => "keys_kind_feedback",
        _ => "keys_kind_transcript",
    }
}

/// A time as the page shows it: `2026-12-02 10:00 UTC`.
fn when(t: OffsetDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

/// A policy's duration in words: whole days, else whole hours, else as
/// written (`90 days`, `1 hour`, `90s`).
fn span(d: Duration, lang: Lang) -> String {
    let s = d.as_secs();
    let (n, one, many) = if s > 0 && s.is_multiple_of(86_400) {
        (s / 86_400, "keys_day", "keys_days")
    } else if s > 0 && s.is_multiple_of(3_600) {
        (s / 3_600, "keys_hour", "keys_hours")
    } else {
        return humantime::format_duration(d).to_string();
    };
    format!("{n} {}", lang.t(if n == 1 { one } else { many }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_days_or_hours_in_both_languages() {
        let day = Duration::from_secs(86_400);
        assert_eq!(span(day * 730, Lang::En), "730 days");
        assert_eq!(span(day, Lang::En), "1 day");
        assert_eq!(span(day * 30, Lang::Fi), "30 päivää");
        assert_eq!(span(Duration::from_secs(3_600), Lang::Fi), "1 tunti");
        assert_eq!(span(Duration::from_secs(90), Lang::En), "1m 30s");
    }
}
