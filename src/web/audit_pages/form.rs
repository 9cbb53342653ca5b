//! The trail's filter form (a GET, so a filtered view is a link a colleague
//! can open): the fields as the browser sends them, checked one by one so
//! that a bad one is named next to its field, and turned into the queries
//! of the service operations (`audit_review::list`, `audit_export::*`).
//!
//! The date range is read as whole UTC days: `from` is the start of its day,
//! `to` includes its whole day (the query's `until` is the next midnight).

use serde::{Deserialize, Serialize};
use time::{macros::format_description, Date, Duration, OffsetDateTime, Time};
use uuid::Uuid;

use crate::{
    audit::Action,
    domain::{short_text, time::rfc3339, ChannelId, Purpose},
    service::{audit_export::ExportQuery, audit_review::AuditQuery},
};

/// Longest actor filter (as the API takes it).
const MAX_ACTOR: usize = 255;
/// Longest reason filter (as the API takes it).
const MAX_REASON: usize = 200;

/// The form's fields as sent: text, an empty field meaning "any". `cursor`
/// is the page (from a "Next page" link), `through` the bound a download
/// link pins.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct TrailForm {
    pub customer_id: String,
    pub actor: String,
    pub action: String,
    pub decision: String,
    pub purpose: String,
    pub channel: String,
    pub reason: String,
    pub from: String,
    pub to: String,
    pub cursor: String,
    pub through: String,
}

/// A field that is not valid, and the message key that says why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub key: &'static str,
}

/// The form's filters, each checked.
#[derive(Debug, Default, Clone)]
pub struct Checked {
    customer_id: Option<Uuid>,
    actor: Option<String>,
    action: Option<String>,
    decision: Option<String>,
    purpose: Option<String>,
    channel: Option<String>,
    reason: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
}

/// A field's text, trimmed; `None` when empty or "any".
fn given(v: &str) -> Option<&str> {
    let t = v.trim();
    (!t.is_empty() && t != "any").then_some(t)
}

/// A `YYYY-MM-DD` day (what `<input type="date">` sends).
fn day(v: &str) -> Option<Date> {
    Date::parse(v, format_description!("[year]-[month]-[day]")).ok()
}

/// The start of `d` in UTC, as RFC 3339.
fn midnight(d: Date) -> String {
    rfc3339(OffsetDateTime::new_utc(d, Time::MIDNIGHT))
}

impl TrailForm {
    /// The filters, or every field that is not valid.
    pub fn check(&self) -> Result<Checked, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut bad = |field, key| errors.push(FieldError { field, key });
        let mut c = Checked::default();
        if let Some(v) = given(&self.customer_id) {
            match Uuid::parse_str(v) {
                Ok(id) => c.customer_id = Some(id),
                Err(_) => bad("customer_id", "audit_error_customer_id"),
            }
        }
        if let Some(v) = given(&self.actor) {
            match short_text(v, MAX_ACTOR) {
                Ok(a) => c.actor = Some(a),
                Err(_) => bad("actor", "audit_error_actor"),
            }
        }
        if let Some(v) = given(&self.action) {
            match Action::ALL.iter().find(|a| a.as_str() == v) {
                Some(a) => c.action = Some(a.as_str().to_owned()),
                None => bad("action", "audit_error_action"),
            }
        }
        match given(&self.decision) {
            None => {}
            Some(d @ ("allow" | "deny")) => c.decision = Some(d.to_owned()),
            Some(_) => bad("decision", "audit_error_decision"),
        }
        if let Some(v) = given(&self.purpose) {
            match Purpose::parse(v) {
                Ok(_) => c.purpose = Some(v.to_owned()),
                Err(_) => bad("purpose", "audit_error_purpose"),
            }
        }
        if let Some(v) = given(&self.channel) {
            match ChannelId::parse(v) {
                Ok(_) => c.channel = Some(v.to_owned()),
                Err(_) => bad("channel", "audit_error_channel"),
            }
        }
        if let Some(v) = given(&self.reason) {
            match short_text(v, MAX_REASON) {
                Ok(r) => c.reason = Some(r),
                Err(_) => bad("reason", "audit_error_reason"),
            }
        }
        let from = given(&self.from).map(|v| day(v).ok_or(()));
        let to = given(&self.to).map(|v| day(v).ok_or(()));
        match from {
            Some(Ok(d)) => c.since = Some(midnight(d)),
            Some(Err(())) => bad("from", "audit_error_date"),
            None => {}
        }
        match to {
            Some(Ok(d)) => match d.checked_add(Duration::days(1)) {
                Some(next) => c.until = Some(midnight(next)),
                None => bad("to", "audit_error_date"),
            },
            Some(Err(())) => bad("to", "audit_error_date"),
            None => {}
        }
        if let (Some(Ok(f)), Some(Ok(t))) = (from, to) {
            if t < f {
                bad("to", "audit_error_range");
            }
        }
        if let Some(v) = given(&self.cursor) {
            match v.parse::<i64>() {
                Ok(n) if n >= 0 => c.cursor = Some(n.to_string()),
                _ => bad("cursor", "audit_error_cursor"),
            }
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(errors)
        }
    }

    /// The form's filters (not its page or bound) as query pairs, for the
    /// links the page draws; empty fields are left out.
    pub fn filter_pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("customer_id", &self.customer_id),
            ("actor", &self.actor),
            ("action", &self.action),
            ("decision", &self.decision),
            ("purpose", &self.purpose),
            ("channel", &self.channel),
            ("reason", &self.reason),
            ("from", &self.from),
            ("to", &self.to),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| (k, v)))
        .collect()
    }

    /// `?query` of the form's filters plus `extra` pairs.
    pub fn link(&self, path: &str, extra: &[(&'static str, &str)]) -> String {
        let mut pairs = self.filter_pairs();
        pairs.extend_from_slice(extra);
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        }
    }
}

impl Checked {
    /// The page query of `GET /v1/audit`'s operation, `limit` entries.
    pub fn audit_query(self, limit: i64) -> AuditQuery {
        AuditQuery {
            customer_id: self.customer_id,
            actor: self.actor,
            action: self.action,
            decision: self.decision,
            purpose: self.purpose,
            channel: self.channel,
            reason: self.reason,
            since: self.since,
            until: self.until,
            limit: Some(limit),
            cursor: self.cursor,
        }
    }

    /// The export's query, bounded by `through` (checked by the service).
    pub fn export_query(self, through: &str) -> ExportQuery {
        ExportQuery {
            customer_id: self.customer_id,
            actor: self.actor,
            action: self.action,
            decision: self.decision,
            purpose: self.purpose,
            channel: self.channel,
            reason: self.reason,
            since: self.since,
            until: self.until,
            through: given(through).map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &str) -> TrailForm {
        serde_urlencoded::from_str(pairs).unwrap()
    }

    #[test]
    fn empty_fields_and_any_filter_nothing() {
        let c = form("customer_id=&action=any&decision=any&from=&to=")
            .check()
            .unwrap();
        let q = c.audit_query(50);
        assert!(q.customer_id.is_none() && q.action.is_none() && q.decision.is_none());
        assert!(q.since.is_none() && q.until.is_none());
    }

    #[test]
    fn the_date_range_is_whole_utc_days() {
        let q = form("from=2026-12-01&to=2026-12-02")
            .check()
            .unwrap()
            .audit_query(50);
        assert_eq!(q.since.as_deref(), Some("2026-12-01T00:00:00Z"));
        assert_eq!(q.until.as_deref(), Some("2026-12-03T00:00:00Z"));
    }

    #[test]
    fn each_bad_field_is_named() {
        let errors = form(
            "customer_id=nope&action=drop.table&decision=maybe&purpose=Bad Purpose\
             &channel=%20x%20y&from=2026-13-01&to=yesterday&cursor=-1",
        )
        .check()
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "customer_id",
                "action",
                "decision",
                "purpose",
                "channel",
                "from",
                "to",
                "cursor"
            ]
        );
        let backwards = form("from=2026-12-02&to=2026-12-01").check().unwrap_err();
        assert_eq!(
            backwards,
            [FieldError {
                field: "to",
                key: "audit_error_range"
            }]
        );
    }

    #[test]
    fn links_carry_the_filters_escaped() {
        let f = form("customer_id=&reason=T-9%20%26%20more&action=lookup");
        assert_eq!(
            f.link("/console/audit", &[("cursor", "40")]),
            "/console/audit?action=lookup&reason=T-9+%26+more&cursor=40"
        );
        assert_eq!(TrailForm::default().link("/x", &[]), "/x");
    }
}
