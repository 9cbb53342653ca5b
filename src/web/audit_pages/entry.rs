//! `GET /console/audit/{seq}`: one entry, every field, its detail object as
//! a table, its hash and the hash it links to (with a link to that entry).

use askama::Template;
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use serde_json::Value;

use super::{error, failure, HERE};
use crate::{
    service::audit_review::{self, EntryView},
    web::{render, session::Staff, Frame, WebState},
};

/// The entry page.
#[derive(Template)]
#[template(path = "audit_entry.html")]
pub struct EntryPage {
    f: Frame,
    e: EntryView,
    /// The decision in words.
    decision: &'static str,
    /// The detail object's fields, each value as text.
    detail: Vec<(String, String)>,
    /// The entry before (none for the first).
    prev_seq: Option<i64>,
}

/// A detail object as (field, value) rows: strings as they are, anything
/// else as compact JSON; a detail that is not an object is one row.
fn detail_rows(detail: &Value) -> Vec<(String, String)> {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match detail {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Value::Null => Vec::new(),
        other => vec![(String::new(), text(other))],
    }
}

/// `GET /console/audit/{seq}`: a seq that is not a number is no page.
pub async fn entry(
    State(state): State<WebState>,
    staff: Staff,
    Path(seq): Path<String>,
) -> Response {
    let Ok(seq) = seq.parse::<i64>() else {
        return error(&staff, StatusCode::NOT_FOUND, "audit_no_such_entry");
    };
    let e = match audit_review::read(&state.app, &staff.caller(), seq).await {
        Ok(e) => e,
        Err(err) => return failure(&staff, err),
    };
    let f = staff.frame(HERE);
    let page = EntryPage {
        decision: f.t(if e.decision == "allow" {
            "audit_allow"
        } else {
            "audit_deny"
        }),
        detail: detail_rows(&e.detail),
        prev_seq: (e.seq > 1).then(|| e.seq - 1),
        e,
        f,
    };
    render(StatusCode::OK, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_object_becomes_rows_of_text() {
        let d = serde_json::json!({"released": ["email"], "through": 7, "format": "csv"});
        let rows = detail_rows(&d);
        assert!(rows.contains(&("released".into(), "[\"email\"]".into())));
        assert!(rows.contains(&("through".into(), "7".into())));
        assert!(rows.contains(&("format".into(), "csv".into())));
        assert!(detail_rows(&Value::Null).is_empty());
    }
}
