//! The audit log (SECURITY.md, "Audit"): one entry per
//! customer request, allowed or denied, with nothing secret in it; the
//! compliance API; verification that names the first bad entry, over HTTP and
//! with `arkku audit verify`; signed checkpoints; fail-closed appends; export.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use arkku::{
    audit::{checkpoint, entry_hash},
    crypto::{hex, unhex, CheckpointSigner},
    domain::Role,
    store::audit::CheckpointRow,
};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::helpers::{self, spawn_app, spawn_app_with, Backend, Reply, Scenario, TestApp, Tok};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        every_customer_request_appends_exactly_one_entry_naming_actor_action_decision_and_request_id,
        no_name_reference_contact_value_label_or_token_reaches_the_log_or_its_export,
        only_compliance_may_read_or_verify_the_audit_log,
        each_audit_filter_narrows_to_exactly_the_matching_entries,
        audit_pages_walk_every_entry_oldest_first_without_duplicates_or_gaps,
        malformed_audit_queries_are_invalid_requests,
        an_untouched_log_verifies_over_http_and_on_the_command_line,
        an_edited_entry_is_named_as_the_first_bad_one,
        an_edited_decision_is_named_as_the_first_bad_one,
        a_deleted_entry_is_named_as_the_first_bad_one,
        an_entry_inserted_in_the_middle_is_named_as_the_first_bad_one,
        an_entry_appended_by_hand_is_named_as_the_first_bad_one,
        swapped_entries_are_named_at_the_first_moved_one,
        a_truncated_tail_passes_without_a_kept_checkpoint_and_fails_with_one,
        a_kept_checkpoint_that_was_altered_or_signed_by_another_key_is_rejected,
        checkpoints_are_signed_every_n_entries_with_the_key_the_cli_prints,
        a_history_rewritten_with_recomputed_hashes_is_caught_by_signed_checkpoints,
        when_audit_appends_fail_requests_answer_503_release_nothing_and_recover_without_a_gap,
        a_write_refused_during_an_audit_outage_changes_nothing,
        a_batch_failing_at_its_commit_while_later_ones_are_written_acknowledges_only_durable_chained_entries,
        export_prints_every_entry_as_one_json_line_in_seq_order,
        the_operators_export_and_verification_show_what_compliance_sees,
        a_forged_stored_checkpoint_fails_verification_even_with_a_kept_checkpoint_of_that_entry,
        serve_started_on_a_chain_with_an_edited_entry_is_not_ready_and_names_the_entry,
        an_entry_edited_while_serve_runs_is_found_by_a_background_pass,
    ]
}

// ---------------------------------------------------------------- helpers --

/// A response with its `x-request-id` header.
struct Answer {
    reply: Reply,
    request_id: String,
}

/// Sends a request and reads the response whole, with its request id.
async fn send(rb: RequestBuilder) -> Answer {
    let reply = helpers::send(rb).await;
    let request_id = reply
        .header("x-request-id")
        .expect("every response carries x-request-id")
        .to_owned();
    Answer { reply, request_id }
}

/// A request to `path`, with a bearer token when given.
fn req(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
    let rb = app.client.request(method, format!("{}{path}", app.address));
    match token {
        Some(t) => rb.bearer_auth(t),
        None => rb,
    }
}

/// `GET /v1/audit?query` as compliance.
async fn audit_page(app: &TestApp, query: &str) -> Reply {
    app.request(
        Method::GET,
        &format!("/v1/audit?{query}"),
        Some(&app.compliance()),
        None,
    )
    .await
}

/// Every entry matching `filter` (a query string without limit/cursor),
/// following the cursor page by page.
async fn all_entries(app: &TestApp, filter: &str) -> Vec<Value> {
    walk_pages(app, filter, 1000).await
}

/// [`all_entries`], `limit` per page (each page checked to hold at most it).
pub(crate) async fn walk_pages(app: &TestApp, filter: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = format!("limit={limit}&{filter}");
        if let Some(c) = &cursor {
            q.push_str(&format!("&cursor={c}"));
        }
        let r = audit_page(app, &q).await;
        assert_eq!(r.status, StatusCode::OK, "GET /v1/audit?{q}: {}", r.text);
        let page = r.json["entries"].as_array().expect("entries");
        assert!(page.len() <= limit, "a page holds at most its limit");
        out.extend(page.iter().cloned());
        match r.json["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// The newest entry, through the API.
async fn last_entry(app: &TestApp) -> Value {
    let n = app.audit_count().await;
    let r = audit_page(app, &format!("cursor={}&limit=1", n - 1)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let e = r.json["entries"][0].clone();
    assert_eq!(e["seq"], n, "the newest entry has seq = count: {}", r.text);
    e
}

/// The seqs of entries.
pub(crate) fn seqs(entries: &[Value]) -> Vec<i64> {
    entries
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect()
}

/// `GET /v1/audit/verify` as compliance.
async fn verify_http(app: &TestApp) -> Value {
    let r = app
        .request(
            Method::GET,
            "/v1/audit/verify",
            Some(&app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json
}

/// A column of integers from the database.
async fn column(app: &TestApp, sql: &str) -> Vec<i64> {
    arkku::on_db!(app.db(), pool => sqlx::query_scalar::<_, i64>(sql).fetch_all(pool).await)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Asserts the listed fields of an audit entry; `code` stands for `detail.code`.
#[track_caller]
fn assert_entry(e: &Value, expected: Value) {
    for (k, v) in expected.as_object().expect("object") {
        let actual = if k == "code" {
            e["detail"].get("code").cloned().unwrap_or(Value::Null)
        } else {
            e[k.as_str()].clone()
        };
        assert_eq!(&actual, v, "entry field {k}; entry: {e}");
    }
}

/// A request that must append exactly one entry: returns the answer and that entry,
/// after checking the entry carries the response's request id.
async fn audited(app: &TestApp, rb: RequestBuilder) -> (Reply, Value) {
    let before = app.audit_count().await;
    let a = send(rb).await;
    assert_eq!(
        app.audit_count().await,
        before + 1,
        "exactly one entry for a {} answer: {}",
        a.reply.status,
        a.reply.text
    );
    let e = last_entry(app).await;
    assert_eq!(
        e["request_id"], a.request_id,
        "the entry names the request id of the response"
    );
    (a.reply, e)
}

/// Percent-encodes a query value (timestamps hold `:` and maybe `+`).
fn enc(s: &str) -> String {
    s.replace('%', "%25")
        .replace('+', "%2B")
        .replace(':', "%3A")
}

fn parse_time(s: &str) -> OffsetDateTime {
    OffsetDateTime::parse(s, &Rfc3339).unwrap_or_else(|e| panic!("{s} is RFC 3339: {e}"))
}

fn pena() -> Value {
    json!({
        "display_name": "Pena Virtanen",
        "external_ref": "CRM-1001",
        "preferred_channel": "phone",
        "contacts": [
            {"channel": "phone", "value": "040 123 4567", "label": "Kesamokki"},
            {"channel": "email", "value": " Pena@Example.com "},
            {"channel": "instagram", "value": "@Pena_V"}
        ]
    })
}

/// Eight entries of known content on a fresh log; returns the customer id.
///
/// 1 customer.create allow · 2 customer.read allow · 3 customer.read deny
/// (purpose_not_allowed) · 4 customer.update allow · 5 lookup allow ·
/// 6 customer.read deny (not_found) · 7 contact.add allow · 8 customer.read
/// deny (unauthenticated).
async fn seed(app: &TestApp) -> String {
    assert_eq!(app.audit_count().await, 0, "a fresh vault has an empty log");
    let svc = app.service();
    let agent = app.agent("phone");
    let id = app.create_customer_ok(&svc, pena()).await;
    let r = app.read_customer(&agent, &id, "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.read_customer(&agent, &id, "purpose=marketing")
        .await
        .assert_problem(403, "purpose_not_allowed");
    let r = app
        .patch_customer(&svc, &id, json!({"display_name": "P. Virtanen"}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app.lookup(&agent, "phone", "0401234567", "support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let missing = uuid::Uuid::now_v7().to_string();
    app.read_customer(&agent, &missing, "purpose=support")
        .await
        .assert_problem(404, "not_found");
    let r = app
        .add_contact(
            &app.agent("chat"),
            &id,
            json!({"channel": "chat", "value": "visitor-9"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    send(req(
        app,
        Method::GET,
        &format!("/v1/customers/{id}?purpose=support"),
        None,
    ))
    .await
    .reply
    .assert_problem(401, "unauthenticated");
    assert_eq!(app.audit_count().await, 8);
    id
}

// -------------------------------------------------------------- the CLI --

/// `arkku audit verify [extra…]`: the report it printed. Asserts exit 0 when
/// the report says ok and exit 1 when it does not.
async fn verify_cli(app: &TestApp, extra: &[&str]) -> Value {
    let mut args = vec!["audit", "verify"];
    args.extend_from_slice(extra);
    let r = app.cli(&args).await;
    let report: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| {
        panic!(
            "arkku audit verify prints its report as JSON ({e})\nexit: {}\nstdout: {}\nstderr: {}",
            r.status, r.stdout, r.stderr
        )
    });
    let expected = if report["ok"] == true { 0 } else { 1 };
    assert_eq!(
        r.status.code(),
        Some(expected),
        "exit code for ok={}; stderr: {}",
        report["ok"],
        r.stderr
    );
    report
}

/// `arkku audit checkpoint`: the checkpoint file it printed, and that file saved.
async fn keep_checkpoint(app: &TestApp, dir: &Path, name: &str) -> (Value, PathBuf) {
    let r = app.cli(&["audit", "checkpoint"]).await;
    assert!(r.status.success(), "{}\n{}", r.stdout, r.stderr);
    let cp: Value = serde_json::from_str(&r.stdout).expect("a checkpoint as JSON");
    let path = dir.join(name);
    std::fs::write(&path, &r.stdout).expect("keep the checkpoint");
    (cp, path)
}

/// Writes a checkpoint file.
fn write_checkpoint(dir: &Path, name: &str, cp: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(cp).expect("json")).expect("write");
    path.to_string_lossy().into_owned()
}

/// A bad report names `first_bad` and says why.
#[track_caller]
fn assert_bad(report: &Value, first_bad: i64) {
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["first_bad_seq"], first_bad, "{report}");
    assert!(
        report["problem"].as_str().is_some_and(|p| !p.is_empty()),
        "a bad report says what is wrong: {report}"
    );
}

/// A good report covers `n` entries.
#[track_caller]
fn assert_good(report: &Value, n: i64) {
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["entries_checked"], n, "{report}");
    assert_eq!(report["head_seq"], n, "{report}");
    assert!(report["first_bad_seq"].is_null(), "{report}");
    assert!(report["problem"].is_null(), "{report}");
}

// ------------------------------------------------ one entry per request --

async fn every_customer_request_appends_exactly_one_entry_naming_actor_action_decision_and_request_id(
    b: Backend,
) {
    let app = spawn_app(b).await;
    let svc = app.service();
    let agent = app.agent("phone");
    let compliance = app.compliance();
    let service = json!({"sub": "crm-sync", "role": "service", "client": null});
    let agent_1 = json!({"sub": "agent-1", "role": "agent", "client": null});
    let anonymous = json!({"sub": "anonymous", "role": "none", "client": null});

    // 201: a create.
    let (r, e) = audited(
        &app,
        req(&app, Method::POST, "/v1/customers", Some(&svc)).json(&pena()),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_entry(
        &e,
        json!({"action": "customer.create", "decision": "allow", "code": null, "actor": service,
               "customer_id": id, "channel": null, "purpose": null, "reason": null}),
    );
    assert_eq!(e["detail"]["contacts"], 3, "{e}");

    // 200: a read.
    let read = |token: Option<&str>, id: &str, q: &str| {
        req(&app, Method::GET, &format!("/v1/customers/{id}?{q}"), token)
    };
    let (r, e) = audited(&app, read(Some(&agent), &id, "purpose=support")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_entry(
        &e,
        json!({"action": "customer.read", "decision": "allow", "code": null, "actor": agent_1,
               "customer_id": id, "purpose": "support", "reason": null}),
    );
    // Every channel decision is recorded with its reason code.
    assert_eq!(
        e["detail"]["released"],
        json!([{"channel": "phone", "reason": "same_channel"}]),
        "{e}"
    );
    assert_eq!(
        e["detail"]["withheld"],
        json!([{"channel": "email", "reason": "consent_required"}, {"channel": "instagram", "reason": "consent_required"}]),
        "{e}"
    );
    // The read's channel context (the agent's phone) is recorded in `channel`.
    assert_eq!(e["channel"], "phone", "{e}");

    // 200: a reveal, with its reason.
    let (r, e) = audited(
        &app,
        read(
            Some(&agent),
            &id,
            "purpose=support&reveal=true&reason=TICKET-42",
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_entry(
        &e,
        json!({"action": "contact.reveal", "decision": "allow", "code": null, "actor": agent_1,
               "customer_id": id, "purpose": "support", "reason": "TICKET-42"}),
    );
    assert_eq!(e["detail"]["revealed"], true, "{e}");

    // 401: no token, and a token that is not one.
    let (r, e) = audited(&app, read(None, &id, "purpose=support")).await;
    r.assert_problem(401, "unauthenticated");
    assert_entry(
        &e,
        json!({"action": "customer.read", "decision": "deny", "code": "unauthenticated",
               "actor": anonymous, "customer_id": id, "purpose": null}),
    );
    let (r, e) = audited(
        &app,
        req(&app, Method::POST, "/v1/customers", Some("not.a.token")).json(&pena()),
    )
    .await;
    r.assert_problem(401, "unauthenticated");
    assert_entry(
        &e,
        json!({"action": "customer.create", "decision": "deny", "code": "unauthenticated",
               "actor": anonymous, "customer_id": null}),
    );

    // 403: a role that may not read profiles.
    let (r, e) = audited(&app, read(Some(&compliance), &id, "purpose=support")).await;
    r.assert_problem(403, "forbidden");
    assert_entry(
        &e,
        json!({"action": "customer.read", "decision": "deny", "code": "forbidden",
               "actor": {"sub": "auditor", "role": "compliance", "client": null},
               "customer_id": id}),
    );

    // 403: a purpose the token does not list.
    let (r, e) = audited(&app, read(Some(&agent), &id, "purpose=marketing")).await;
    r.assert_problem(403, "purpose_not_allowed");
    assert_entry(
        &e,
        json!({"action": "customer.read", "decision": "deny", "code": "purpose_not_allowed",
               "actor": agent_1, "customer_id": id}),
    );
    // The refused purpose is not recorded as if it had been granted.
    assert_ne!(e["purpose"], "support", "{e}");

    // 404: an unknown customer.
    let missing = uuid::Uuid::now_v7().to_string();
    let (r, e) = audited(&app, read(Some(&agent), &missing, "purpose=support")).await;
    r.assert_problem(404, "not_found");
    assert_entry(
        &e,
        json!({"action": "customer.read", "decision": "deny", "code": "not_found",
               "actor": agent_1, "customer_id": missing, "purpose": "support"}),
    );

    // 400: a malformed id, a malformed body, an invalid value.
    let (r, e) = audited(&app, read(Some(&agent), "not-a-uuid", "purpose=support")).await;
    r.assert_problem(400, "invalid_request");
    assert_entry(
        &e,
        json!({"action": "customer.read", "decision": "deny", "code": "invalid_request",
               "actor": agent_1, "customer_id": null}),
    );
    let (r, e) = audited(
        &app,
        req(&app, Method::POST, "/v1/customers", Some(&svc)).json(&json!({"contacts": 5})),
    )
    .await;
    r.assert_problem(400, "invalid_request");
    assert_entry(
        &e,
        json!({"action": "customer.create", "decision": "deny", "code": "invalid_request",
               "actor": service, "customer_id": null}),
    );
    let (r, e) = audited(
        &app,
        req(&app, Method::POST, "/v1/customers", Some(&svc))
            .json(&json!({"id": id, "contacts": []})),
    )
    .await;
    r.assert_problem(400, "invalid_request");
    assert_entry(
        &e,
        json!({"action": "customer.create", "decision": "deny", "code": "invalid_request"}),
    );
    let (r, e) = audited(
        &app,
        req(
            &app,
            Method::POST,
            &format!("/v1/customers/{id}/contacts"),
            Some(&svc),
        )
        .json(&json!({"channel": "email", "value": "not-an-address"})),
    )
    .await;
    r.assert_problem(400, "invalid_email");
    assert_entry(
        &e,
        json!({"action": "contact.add", "decision": "deny", "code": "invalid_email",
               "actor": service, "customer_id": id}),
    );

    // 415 and 413: bodies refused before they are read as JSON.
    let (r, e) = audited(
        &app,
        req(&app, Method::POST, "/v1/customers", Some(&svc))
            .header("content-type", "text/plain")
            .body("hello"),
    )
    .await;
    r.assert_problem(415, "unsupported_media_type");
    assert_entry(
        &e,
        json!({"action": "customer.create", "decision": "deny", "code": "unsupported_media_type"}),
    );
    let big = format!("{{\"display_name\": \"{}\"}}", "x".repeat(1_100_000));
    let (r, e) = audited(
        &app,
        req(&app, Method::POST, "/v1/customers", Some(&svc))
            .header("content-type", "application/json")
            .body(big),
    )
    .await;
    r.assert_problem(413, "payload_too_large");
    assert_entry(
        &e,
        json!({"action": "customer.create", "decision": "deny", "code": "payload_too_large"}),
    );

    // 204: an update.
    let (r, e) = audited(
        &app,
        req(
            &app,
            Method::PATCH,
            &format!("/v1/customers/{id}"),
            Some(&svc),
        )
        .json(&json!({"display_name": "P. Virtanen"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_entry(
        &e,
        json!({"action": "customer.update", "decision": "allow", "code": null, "actor": service,
               "customer_id": id}),
    );
    assert_eq!(e["detail"]["fields"], json!(["display_name"]), "{e}");

    // 201 and 204: a contact added (by the agent, on its own channel) and
    // removed, with its channel.
    let (r, e) = audited(
        &app,
        req(
            &app,
            Method::POST,
            &format!("/v1/customers/{id}/contacts"),
            Some(&agent),
        )
        .json(&json!({"channel": "phone", "value": "050 765 4321"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let contact_id = r.json["id"].as_str().unwrap().to_owned();
    assert_entry(
        &e,
        json!({"action": "contact.add", "decision": "allow", "code": null, "actor": agent_1,
               "customer_id": id, "channel": "phone"}),
    );
    assert_eq!(e["detail"]["contact_id"], contact_id.as_str(), "{e}");
    let (r, e) = audited(
        &app,
        req(
            &app,
            Method::DELETE,
            &format!("/v1/customers/{id}/contacts/{contact_id}"),
            Some(&svc),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_entry(
        &e,
        json!({"action": "contact.remove", "decision": "allow", "code": null, "actor": service,
               "customer_id": id, "channel": "phone"}),
    );
    // Removing it again: 404, still one entry.
    let (r, e) = audited(
        &app,
        req(
            &app,
            Method::DELETE,
            &format!("/v1/customers/{id}/contacts/{contact_id}"),
            Some(&svc),
        ),
    )
    .await;
    r.assert_problem(404, "not_found");
    assert_entry(
        &e,
        json!({"action": "contact.remove", "decision": "deny", "code": "not_found", "customer_id": id}),
    );

    // Lookups: a hit and a miss.
    let lookup = |value: &str| {
        req(&app, Method::POST, "/v1/lookup", Some(&agent))
            .json(&json!({"channel": "phone", "value": value, "purpose": "support"}))
    };
    let (r, e) = audited(&app, lookup("+358 40 123 4567")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_entry(
        &e,
        json!({"action": "lookup", "decision": "allow", "code": null, "actor": agent_1,
               "customer_id": id, "channel": "phone", "purpose": "support"}),
    );
    assert_eq!(e["detail"]["matches"], 1, "{e}");
    let (r, e) = audited(&app, lookup("0409999999")).await;
    r.assert_problem(404, "not_found");
    assert_entry(
        &e,
        json!({"action": "lookup", "decision": "deny", "code": "not_found", "actor": agent_1,
               "customer_id": null, "channel": "phone", "purpose": "support"}),
    );
    let (r, e) = audited(
        &app,
        req(&app, Method::POST, "/v1/lookup", None)
            .json(&json!({"channel": "phone", "value": "0401234567", "purpose": "support"})),
    )
    .await;
    r.assert_problem(401, "unauthenticated");
    assert_entry(
        &e,
        json!({"action": "lookup", "decision": "deny", "code": "unauthenticated", "actor": anonymous}),
    );

    // Every entry's request id is distinct, and they are numbered 1..n.
    let all = all_entries(&app, "").await;
    let n = app.audit_count().await;
    assert_eq!(seqs(&all), (1..=n).collect::<Vec<_>>());
    let mut ids: Vec<&str> = all
        .iter()
        .map(|e| e["request_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len() as i64,
        n,
        "one request, one request id, one entry"
    );
}

// ------------------------------------------------------------- no leaks --

async fn no_name_reference_contact_value_label_or_token_reaches_the_log_or_its_export(b: Backend) {
    let app = spawn_app(b).await;
    let svc = app.service();
    let phone = app.agent("phone");
    let email = app.agent("email");
    let insta = app.agent("instagram");
    let before = app.audit_count().await;
    let id = app.create_customer_ok(&svc, pena()).await;
    let mut requests = 1;
    for (token, q) in [
        (&phone, "purpose=support"),
        (&phone, "purpose=support&reveal=true&reason=TICKET-42"),
        (&email, "purpose=support&reveal=true&reason=TICKET-43"),
        (&insta, "purpose=support&reveal=true&reason=TICKET-44"),
        (&phone, "purpose=marketing"),
    ] {
        app.read_customer(token, &id, q).await;
        requests += 1;
    }
    for spelling in [
        "040 123 4567",
        "+358 40 123 4567",
        "+358401234567",
        "00358401234567",
        "0401234567",
        "040-1234567",
    ] {
        app.lookup(&phone, "phone", spelling, "support").await;
        requests += 1;
    }
    for (channel, token, value) in [
        ("email", &email, "PENA@example.COM"),
        ("email", &email, "pena@example.com"),
        ("instagram", &insta, "pena_v"),
        ("instagram", &insta, "@PENA_V"),
    ] {
        app.lookup(token, channel, value, "support").await;
        requests += 1;
    }
    for body in [
        json!({"display_name": "Pentti Salakala"}),
        json!({"preferred_channel": "Kirjekyyhky"}),
    ] {
        app.patch_customer(&svc, &id, body).await;
        requests += 1;
    }
    for body in [
        json!({"channel": "email", "value": "salainen@posti.example", "label": "Tyopaikka"}),
        json!({"channel": "email", "value": "broken@@salakala"}),
        json!({"channel": "phone", "value": "0501239876"}),
        json!({"channel": "phone", "value": "not-a-phone-salakala"}),
        json!({"channel": "whatsapp", "value": "+358 40 123 4567", "label": "Kesamokki"}),
    ] {
        app.add_contact(&svc, &id, body).await;
        requests += 1;
    }
    // A create whose body is refused, and requests with bad tokens.
    app.create_customer(
        &svc,
        json!({"display_name": "Salakala Oy", "ssn": "131052-308T"}),
    )
    .await;
    app.create_customer("eyJhbGciOiJub25lIn0.e30.salakalatoken", pena())
        .await;
    requests += 2;
    assert_eq!(app.audit_count().await - before, requests);

    let via_api = serde_json::to_string(&all_entries(&app, "").await).unwrap();
    let export = app.cli(&["audit", "export", "--format", "jsonl"]).await;
    assert!(export.status.success(), "{}", export.stderr);
    assert!(
        via_api.contains("TICKET-42") && export.stdout.contains("TICKET-44"),
        "a reveal's reason is the caller's free text and is kept"
    );

    let mut canaries: Vec<String> = [
        "Pena",
        "Virtanen",
        "Pentti",
        "Salakala",
        "salakala",
        "CRM-1001",
        "Kesamokki",
        "Tyopaikka",
        "Kirjekyyhky",
        "401234567",
        "40 123 4567",
        "123 4567",
        "1234567",
        "501239876",
        "40-1234567",
        "example.com",
        "example.COM",
        "posti.example",
        "pena_v",
        "PENA_V",
        "Pena_V",
        "131052-308T",
        "+358*******67",
        "p***@",
        "pe***",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for t in [&svc, &phone, &email, &insta] {
        canaries.push(t.clone());
        canaries.push(t.rsplit('.').next().unwrap().to_owned());
    }
    for (what, text) in [
        ("GET /v1/audit", &via_api),
        ("arkku audit export", &export.stdout),
    ] {
        for canary in &canaries {
            assert!(!text.contains(canary.as_str()), "{what} leaks {canary:?}");
        }
    }
}

// ------------------------------------------------------ the audit API --

async fn only_compliance_may_read_or_verify_the_audit_log(b: Backend) {
    let app = spawn_app(b).await;
    seed(&app).await;
    let customer_sub = uuid::Uuid::now_v7().to_string();
    let others = [
        app.agent("phone"),
        app.service(),
        app.token(Tok {
            role: Role::Customer,
            sub: &customer_sub,
            purposes: &["dsr"],
            channel: None,
        }),
        app.token(Tok {
            role: Role::Admin,
            sub: "root",
            purposes: &["support", "dsr"],
            channel: None,
        }),
    ];
    for path in ["/v1/audit", "/v1/audit/verify"] {
        for t in &others {
            let r = app.request(Method::GET, path, Some(t), None).await;
            r.assert_problem(403, "forbidden");
            assert!(!r.text.contains("customer.read"), "{}", r.text);
        }
        app.request(Method::GET, path, None, None)
            .await
            .assert_problem(401, "unauthenticated");
        app.request(Method::GET, path, Some("not.a.token"), None)
            .await
            .assert_problem(401, "unauthenticated");
        let r = app
            .request(Method::GET, path, Some(&app.compliance()), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    }
    let r = audit_page(&app, "").await;
    assert_eq!(r.json["entries"].as_array().unwrap().len(), 8);
    assert!(r.json["next_cursor"].is_null());
}

async fn each_audit_filter_narrows_to_exactly_the_matching_entries(b: Backend) {
    let app = spawn_app(b).await;
    let svc = app.service();
    let phone = app.agent("phone");
    let chat = app.agent("chat");
    let a = app.create_customer_ok(&svc, pena()).await;
    let b_id = app
        .create_customer_ok(
            &chat,
            json!({"contacts": [{"channel": "chat", "value": "visitor-5"}]}),
        )
        .await;
    app.read_customer(&phone, &a, "purpose=support").await;
    app.read_customer(&phone, &a, "purpose=marketing").await;
    app.read_customer(&chat, &b_id, "purpose=support").await;
    app.read_customer(&chat, &uuid::Uuid::now_v7().to_string(), "purpose=support")
        .await;
    app.lookup(&phone, "phone", "0401234567", "support").await;
    app.patch_customer(&svc, &b_id, json!({"display_name": "B"}))
        .await;
    app.read_customer(&svc, &a, "purpose=support").await;
    app.read_customer(&chat, &b_id, "purpose=support").await;

    let all = all_entries(&app, "").await;
    let n = app.audit_count().await;
    assert_eq!(all.len() as i64, n);
    assert_eq!(seqs(&all), (1..=n).collect::<Vec<_>>(), "oldest first");
    let times: Vec<OffsetDateTime> = all
        .iter()
        .map(|e| parse_time(e["at"].as_str().unwrap()))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "times follow seq");
    let at = |i: usize| all[i]["at"].as_str().unwrap().to_owned();
    let (lo, hi) = (3, 8);
    let (t_lo, t_hi) = (times[lo], times[hi]);

    type Pred<'a> = Box<dyn Fn(&Value) -> bool + Send + Sync + 'a>;
    let cases: Vec<(String, Pred<'_>)> = vec![
        (
            format!("customer_id={a}"),
            Box::new(|e: &Value| e["customer_id"] == a.as_str()),
        ),
        (
            format!("customer_id={b_id}"),
            Box::new(|e: &Value| e["customer_id"] == b_id.as_str()),
        ),
        (
            "actor=crm-sync".into(),
            Box::new(|e: &Value| e["actor"]["sub"] == "crm-sync"),
        ),
        (
            "actor=agent-1".into(),
            Box::new(|e: &Value| e["actor"]["sub"] == "agent-1"),
        ),
        (
            "action=customer.read".into(),
            Box::new(|e: &Value| e["action"] == "customer.read"),
        ),
        (
            "action=customer.create".into(),
            Box::new(|e: &Value| e["action"] == "customer.create"),
        ),
        (
            "action=lookup".into(),
            Box::new(|e: &Value| e["action"] == "lookup"),
        ),
        (
            "decision=deny".into(),
            Box::new(|e: &Value| e["decision"] == "deny"),
        ),
        (
            "decision=allow".into(),
            Box::new(|e: &Value| e["decision"] == "allow"),
        ),
        (
            format!("since={}", enc(&at(lo))),
            Box::new(move |e: &Value| parse_time(e["at"].as_str().unwrap()) >= t_lo),
        ),
        (
            format!("until={}", enc(&at(hi))),
            Box::new(move |e: &Value| parse_time(e["at"].as_str().unwrap()) < t_hi),
        ),
        (
            format!("since={}&until={}", enc(&at(lo)), enc(&at(hi))),
            Box::new(move |e: &Value| {
                let t = parse_time(e["at"].as_str().unwrap());
                t >= t_lo && t < t_hi
            }),
        ),
        (
            format!("customer_id={a}&decision=deny"),
            Box::new(|e: &Value| e["customer_id"] == a.as_str() && e["decision"] == "deny"),
        ),
        (
            format!("actor=agent-1&action=customer.read&customer_id={b_id}"),
            Box::new(|e: &Value| {
                e["actor"]["sub"] == "agent-1"
                    && e["action"] == "customer.read"
                    && e["customer_id"] == b_id.as_str()
            }),
        ),
        ("actor=nobody".into(), Box::new(|_: &Value| false)),
    ];
    for (query, pred) in cases {
        let expected: Vec<i64> = seqs(&all.iter().filter(|e| pred(e)).cloned().collect::<Vec<_>>());
        assert!(
            expected.len() < all.len() && (!expected.is_empty() || query == "actor=nobody"),
            "{query} must narrow to some entries (test data)"
        );
        let got = all_entries(&app, &query).await;
        assert_eq!(seqs(&got), expected, "GET /v1/audit?{query}");
        // The filtered entries are the same entries, not other views of them.
        for e in &got {
            assert_eq!(
                e,
                &all[usize::try_from(e["seq"].as_i64().unwrap() - 1).unwrap()]
            );
        }
    }
    // The time bounds cut where they say: `since` inclusive, `until` exclusive.
    let got = all_entries(
        &app,
        &format!("since={}&until={}", enc(&at(lo)), enc(&at(lo + 1))),
    )
    .await;
    assert_eq!(seqs(&got), [all[lo]["seq"].as_i64().unwrap()]);
}

async fn audit_pages_walk_every_entry_oldest_first_without_duplicates_or_gaps(b: Backend) {
    let app = spawn_app(b).await;
    let id = seed(&app).await;
    app.read_customer(&app.agent("phone"), &id, "purpose=support")
        .await;
    app.read_customer(&app.agent("phone"), &id, "purpose=marketing")
        .await;
    let n = app.audit_count().await;
    assert_eq!(n, 10, "an even count: the last page is full");

    for (filter, expected) in [
        ("", (1..=n).collect::<Vec<_>>()),
        ("decision=deny&", vec![3, 6, 8, 10]),
        (
            &*format!("customer_id={id}&"),
            vec![1, 2, 3, 4, 5, 7, 8, 9, 10],
        ),
    ] {
        let mut walked = Vec::new();
        let mut pages = 0;
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                None => format!("{filter}limit=2"),
                Some(c) => format!("{filter}limit=2&cursor={c}"),
            };
            let r = audit_page(&app, &q).await;
            assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
            let page = r.json["entries"].as_array().unwrap();
            assert!(!page.is_empty() && page.len() <= 2, "{q}: {}", r.text);
            walked.extend(seqs(page));
            pages += 1;
            assert!(pages <= 20, "the walk ends");
            match &r.json["next_cursor"] {
                Value::Null => break,
                Value::String(c) => cursor = Some(c.clone()),
                other => panic!("next_cursor is a string or null: {other}"),
            }
        }
        assert_eq!(
            walked, expected,
            "walk of {filter:?}: no duplicates, no gaps, oldest first"
        );
        assert_eq!(
            pages,
            expected.len().div_ceil(2),
            "{filter:?}: no empty last page"
        );
    }
    assert_eq!(
        app.audit_count().await,
        n,
        "reading the log adds no entries"
    );
}

async fn malformed_audit_queries_are_invalid_requests(b: Backend) {
    let app = spawn_app(b).await;
    seed(&app).await;
    for q in [
        "cursor=abc",
        "cursor=-1",
        "cursor=1.5",
        "cursor=",
        "limit=0",
        "limit=1001",
        "limit=-5",
        "limit=x",
        "since=yesterday",
        "since=2024-13-01T00:00:00Z",
        "since=2024-06-01",
        "until=nope",
        "decision=maybe",
        "customer_id=not-a-uuid",
        "foo=1",
        "seq=1",
        "limit=2&page=2",
    ] {
        let r = audit_page(&app, q).await;
        r.assert_problem(400, "invalid_request");
        assert!(r.json["entries"].is_null(), "{q}: {}", r.text);
    }
    for q in [
        "limit=1",
        "limit=1000",
        "cursor=0",
        "cursor=999",
        "since=2000-01-01T00:00:00Z",
    ] {
        let r = audit_page(&app, q).await;
        assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.text);
    }
    assert_eq!(
        audit_page(&app, "cursor=999").await.json["entries"],
        json!([]),
        "a cursor past the end is an empty last page"
    );
}

// ---------------------------------------------------------- verification --

async fn an_untouched_log_verifies_over_http_and_on_the_command_line(b: Backend) {
    let app = spawn_app(b).await;
    // An empty log verifies, ending at the genesis hash.
    let report = verify_http(&app).await;
    assert_good(&report, 0);
    assert_eq!(report["head_hash"], "0".repeat(64));

    seed(&app).await;
    let n = app.audit_count().await;
    let last = last_entry(&app).await;
    let report = verify_http(&app).await;
    assert_good(&report, n);
    assert_eq!(report["head_hash"], last["hash"], "{report}");
    let cli = verify_cli(&app, &[]).await;
    assert_good(&cli, n);
    assert_eq!(cli["head_hash"], last["hash"]);

    // The chain as the API shows it: genesis, then each entry links to the one before.
    let all = all_entries(&app, "").await;
    assert_eq!(all[0]["prev_hash"], "0".repeat(64));
    for w in all.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"]);
    }
}

/// Seeds eight known entries, applies `tamper` statement by statement, and
/// asserts both the API and the CLI name `first_bad`.
async fn assert_tampering_detected(b: Backend, tamper: &[&str], first_bad: i64) {
    let app = spawn_app(b).await;
    seed(&app).await;
    assert_good(&verify_http(&app).await, 8);
    for sql in tamper {
        app.exec(sql).await;
    }
    let report = verify_http(&app).await;
    assert_bad(&report, first_bad);
    assert_eq!(report["entries_checked"], first_bad - 1, "{report}");
    let cli = verify_cli(&app, &[]).await;
    assert_bad(&cli, first_bad);
    assert_eq!(cli["problem"], report["problem"]);
}

async fn an_edited_entry_is_named_as_the_first_bad_one(b: Backend) {
    assert_tampering_detected(b, &["UPDATE audit_log SET detail = '{}' WHERE seq = 3"], 3).await;
}

async fn an_edited_decision_is_named_as_the_first_bad_one(b: Backend) {
    // Entry 3 is a denied read; make it look allowed.
    assert_tampering_detected(
        b,
        &["UPDATE audit_log SET decision = 'allow' WHERE seq = 3 AND decision = 'deny'"],
        3,
    )
    .await;
}

async fn a_deleted_entry_is_named_as_the_first_bad_one(b: Backend) {
    assert_tampering_detected(b, &["DELETE FROM audit_log WHERE seq = 4"], 4).await;
}

async fn an_entry_inserted_in_the_middle_is_named_as_the_first_bad_one(b: Backend) {
    // Make room at 4 by renumbering 4..8 to 5..9, then forge entry 4 from entry 3.
    assert_tampering_detected(
        b,
        &[
            "UPDATE audit_log SET seq = seq + 1000 WHERE seq >= 4",
            "UPDATE audit_log SET seq = seq - 999 WHERE seq >= 1000",
            "INSERT INTO audit_log (seq, at, actor_sub, actor_role, actor_client, action, \
             customer_id, channel, purpose, decision, reason, request_id, detail, prev_hash, hash) \
             SELECT 4, at, actor_sub, actor_role, actor_client, action, customer_id, channel, \
             purpose, 'allow', reason, request_id, detail, prev_hash, hash \
             FROM audit_log WHERE seq = 3",
        ],
        4,
    )
    .await;
}

async fn an_entry_appended_by_hand_is_named_as_the_first_bad_one(b: Backend) {
    // A copy of entry 5 (a lookup) as entry 9.
    assert_tampering_detected(
        b,
        &[
            "INSERT INTO audit_log (seq, at, actor_sub, actor_role, actor_client, action, \
           customer_id, channel, purpose, decision, reason, request_id, detail, prev_hash, hash) \
           SELECT 9, at, actor_sub, actor_role, actor_client, action, customer_id, channel, \
           purpose, decision, reason, request_id, detail, prev_hash, hash \
           FROM audit_log WHERE seq = 5",
        ],
        9,
    )
    .await;
}

async fn swapped_entries_are_named_at_the_first_moved_one(b: Backend) {
    // Everything but seq trades places between entries 2 and 3.
    assert_tampering_detected(
        b,
        &[
            "UPDATE audit_log SET seq = -2 WHERE seq = 2",
            "UPDATE audit_log SET seq = 2 WHERE seq = 3",
            "UPDATE audit_log SET seq = 3 WHERE seq = -2",
        ],
        2,
    )
    .await;
}

async fn a_truncated_tail_passes_without_a_kept_checkpoint_and_fails_with_one(b: Backend) {
    let app = spawn_app(b).await;
    let id = seed(&app).await;
    let keep = TempDir::new().unwrap();
    let (cp, file) = keep_checkpoint(&app, keep.path(), "checkpoint-8.json").await;
    let file = file.to_string_lossy().into_owned();
    assert_eq!(cp["format"], "arkku-checkpoint/1");
    assert_eq!(cp["seq"], 8);
    assert_eq!(cp["hash"], last_entry(&app).await["hash"]);
    for _ in 0..4 {
        app.read_customer(&app.agent("phone"), &id, "purpose=support")
            .await;
    }
    assert_eq!(app.audit_count().await, 12);
    // A log that only grew still matches the kept checkpoint.
    let report = verify_cli(&app, &["--checkpoint", &file]).await;
    assert_good(&report, 12);
    assert!(
        report["checkpoints_checked"].as_u64().unwrap() >= 1,
        "{report}"
    );

    // Cut the tail below the kept checkpoint.
    app.exec("DELETE FROM audit_log WHERE seq > 5").await;
    // The checkpoint stored by `arkku audit checkpoint` still gives it away...
    let report = verify_http(&app).await;
    assert_bad(&report, 6);
    assert_bad(&verify_cli(&app, &[]).await, 6);
    // ...until the attacker deletes that too: now the log alone looks fine.
    app.exec("DELETE FROM audit_checkpoints WHERE seq > 5")
        .await;
    assert_good(&verify_http(&app).await, 5);
    assert_good(&verify_cli(&app, &[]).await, 5);
    // The checkpoint kept outside the vault does not.
    let report = verify_cli(&app, &["--checkpoint", &file]).await;
    assert_bad(&report, 6);
    assert_eq!(report["head_seq"], 5, "{report}");
    assert_eq!(report["entries_checked"], 5, "{report}");
}

async fn a_kept_checkpoint_that_was_altered_or_signed_by_another_key_is_rejected(b: Backend) {
    let app = spawn_app(b).await;
    seed(&app).await;
    let keep = TempDir::new().unwrap();
    let (cp, good) = keep_checkpoint(&app, keep.path(), "good.json").await;
    let good = good.to_string_lossy().into_owned();
    assert_good(&verify_cli(&app, &["--checkpoint", &good]).await, 8);
    let all = all_entries(&app, "").await;

    let flip = |hex: &str| {
        let mut s = hex.to_owned();
        let last = if s.ends_with('0') { "1" } else { "0" };
        s.replace_range(s.len() - 1.., last);
        s
    };
    let mut variants: Vec<(&str, Value, i64)> = Vec::new();
    let mut c = cp.clone();
    c["hash"] = all[6]["hash"].clone();
    variants.push(("another entry's hash", c, 8));
    let mut c = cp.clone();
    c["hash"] = json!(flip(cp["hash"].as_str().unwrap()));
    variants.push(("a flipped hash", c, 8));
    let mut c = cp.clone();
    c["signature"] = json!(flip(cp["signature"].as_str().unwrap()));
    variants.push(("a flipped signature", c, 8));
    let mut c = cp.clone();
    c["seq"] = json!(7);
    c["hash"] = all[6]["hash"].clone();
    variants.push(("moved to entry 7", c, 7));
    let mut c = cp.clone();
    c["at_micros"] = json!(cp["at_micros"].as_i64().unwrap() + 1);
    variants.push(("another time", c, 8));
    // Re-signed, correctly, by a key that is not the vault's.
    let other = CheckpointSigner::from_seed(&app.issuer_key()).unwrap();
    let hash = unhex(cp["hash"].as_str().unwrap()).unwrap();
    let at = cp["at_micros"].as_i64().unwrap();
    let mut c = cp.clone();
    c["signature"] = json!(hex(&other.sign(&checkpoint::message(8, &hash, at))));
    c["public_key"] = json!(hex(other.public_key()));
    variants.push(("signed by another key", c, 8));
    let mut c = cp.clone();
    c["public_key"] = json!(hex(other.public_key()));
    variants.push(("naming another key", c, 8));

    for (what, c, seq) in variants {
        let path = write_checkpoint(keep.path(), "bad.json", &c);
        let report = verify_cli(&app, &["--checkpoint", &path]).await;
        assert_eq!(
            report["ok"], false,
            "a kept checkpoint with {what}: {report}"
        );
        assert_eq!(report["first_bad_seq"], seq, "{what}: {report}");
    }
    // Not a checkpoint at all: refused, non-zero.
    std::fs::write(keep.path().join("junk.json"), "{\"seq\": 8}").unwrap();
    let r = app
        .cli(&[
            "audit",
            "verify",
            "--checkpoint",
            &keep.path().join("junk.json").to_string_lossy(),
        ])
        .await;
    assert!(!r.status.success(), "{}", r.stdout);
    assert!(r.stderr.contains("junk.json"), "{}", r.stderr);
    // And the good one still passes.
    assert_good(&verify_cli(&app, &["--checkpoint", &good]).await, 8);
}

async fn checkpoints_are_signed_every_n_entries_with_the_key_the_cli_prints(b: Backend) {
    let app = spawn_app_with(b, |c| c.audit_checkpoint_every = 5).await;
    let id = seed(&app).await;
    for _ in 0..4 {
        app.read_customer(&app.agent("phone"), &id, "purpose=support")
            .await;
    }
    assert_eq!(app.audit_count().await, 12);
    assert_eq!(
        column(&app, "SELECT seq FROM audit_checkpoints ORDER BY seq").await,
        [5, 10]
    );
    let all = all_entries(&app, "").await;
    let stored = arkku::store::audit::checkpoints(app.db()).await.unwrap();
    for c in &stored {
        let i = usize::try_from(c.seq - 1).unwrap();
        assert_eq!(
            hex(&c.hash),
            all[i]["hash"],
            "checkpoint {} holds that entry's hash",
            c.seq
        );
    }
    let report = verify_http(&app).await;
    assert_good(&report, 12);
    assert_eq!(report["checkpoints_checked"], 2, "{report}");
    assert_eq!(verify_cli(&app, &[]).await["checkpoints_checked"], 2);

    // The public key the CLI prints is the one that signed them.
    let r = app.cli(&["audit", "public-key"]).await;
    assert!(r.status.success(), "{}", r.stderr);
    let key = r.stdout.trim();
    assert_eq!(key.len(), 64, "{key}");
    assert!(
        key.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{key}"
    );
    for c in &stored {
        assert_eq!(hex(&c.public_key), key);
        assert!(checkpoint::signature_valid(c, Some(&unhex(key).unwrap())));
    }

    // A stored checkpoint whose hash was edited.
    app.exec("UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_log WHERE seq = 4) WHERE seq = 5")
        .await;
    assert_bad(&verify_http(&app).await, 5);
    assert_bad(&verify_cli(&app, &[]).await, 5);
    app.exec("UPDATE audit_checkpoints SET hash = (SELECT hash FROM audit_log WHERE seq = 5) WHERE seq = 5")
        .await;
    assert_good(&verify_http(&app).await, 12);

    // A stored checkpoint carrying another checkpoint's signature.
    app.exec(
        "UPDATE audit_checkpoints SET signature = \
         (SELECT c.signature FROM audit_checkpoints c WHERE c.seq = 10) WHERE seq = 5",
    )
    .await;
    assert_bad(&verify_http(&app).await, 5);
    assert_bad(&verify_cli(&app, &[]).await, 5);

    // A stored checkpoint of the right hash, correctly signed by a key that is not the vault's.
    let other = CheckpointSigner::from_seed(&app.issuer_key()).unwrap();
    let five = &stored[0];
    let forged = CheckpointRow {
        seq: 5,
        hash: five.hash.clone(),
        at: five.at,
        signature: other
            .sign(&checkpoint::message(5, &five.hash, five.at))
            .to_vec(),
        public_key: other.public_key().to_vec(),
    };
    app.exec("DELETE FROM audit_checkpoints WHERE seq = 5")
        .await;
    arkku::store::audit::insert_checkpoint(app.db(), &forged)
        .await
        .unwrap();
    let report = verify_http(&app).await;
    assert_bad(&report, 5);
    assert!(
        report["problem"].as_str().unwrap().contains("signed"),
        "{report}"
    );
    assert_bad(&verify_cli(&app, &[]).await, 5);

    // Put the real one back: all is well again.
    app.exec("DELETE FROM audit_checkpoints WHERE seq = 5")
        .await;
    arkku::store::audit::insert_checkpoint(app.db(), five)
        .await
        .unwrap();
    assert_good(&verify_http(&app).await, 12);
}

async fn a_history_rewritten_with_recomputed_hashes_is_caught_by_signed_checkpoints(b: Backend) {
    let app = spawn_app_with(b, |c| c.audit_checkpoint_every = 5).await;
    seed(&app).await;
    let keep = TempDir::new().unwrap();
    let (_, kept) = keep_checkpoint(&app, keep.path(), "kept.json").await;
    let kept = kept.to_string_lossy().into_owned();

    // Entry 3 (a denied read) becomes an allowed one, and every later hash is
    // recomputed, so each entry links correctly to the one before.
    let mut rows = arkku::store::audit::entries_after(app.db(), 0, 100)
        .await
        .unwrap();
    assert_eq!(rows[2].decision, "deny");
    rows[2].decision = "allow".into();
    let mut prev: [u8; 32] = rows[1].hash.clone().try_into().unwrap();
    for r in rows.iter_mut().skip(2) {
        r.prev_hash = prev.to_vec();
        prev = entry_hash(&prev, r);
        r.hash = prev.to_vec();
        let sql = "UPDATE audit_log SET decision = $1, prev_hash = $2, hash = $3 WHERE seq = $4";
        arkku::on_db!(app.db(), pool => sqlx::query(sql)
            .bind(&r.decision)
            .bind(&r.prev_hash)
            .bind(&r.hash)
            .bind(r.seq)
            .execute(pool)
            .await
            .map(drop))
        .unwrap();
    }
    // The stored checkpoint at 5 holds the old hash.
    let report = verify_http(&app).await;
    assert_bad(&report, 5);
    assert!(
        report["problem"].as_str().unwrap().contains("rewritten"),
        "{report}"
    );
    assert_bad(&verify_cli(&app, &[]).await, 5);
    // Without stored checkpoints the rewrite is consistent in itself...
    app.exec("DELETE FROM audit_checkpoints").await;
    assert_good(&verify_http(&app).await, 8);
    // ...but not with the checkpoint kept from before.
    let report = verify_cli(&app, &["--checkpoint", &kept]).await;
    assert_bad(&report, 8);
}

// ------------------------------------------------------------ fail-closed --

/// Makes every insert into audit_log fail.
async fn block_audit(app: &TestApp) {
    match app.backend {
        Backend::Sqlite => {
            app.exec(
                "CREATE TRIGGER audit_block BEFORE INSERT ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'blocked'); END",
            )
            .await
        }
        Backend::Postgres => {
            app.exec(
                "CREATE FUNCTION audit_block() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'blocked'; END $$",
            )
            .await;
            app.exec(
                "CREATE TRIGGER audit_block BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION audit_block()",
            )
            .await;
        }
    }
}

async fn unblock_audit(app: &TestApp) {
    match app.backend {
        Backend::Sqlite => app.exec("DROP TRIGGER audit_block").await,
        Backend::Postgres => app.exec("DROP TRIGGER audit_block ON audit_log").await,
    }
}

async fn when_audit_appends_fail_requests_answer_503_release_nothing_and_recover_without_a_gap(
    b: Backend,
) {
    let app = spawn_app(b).await;
    let svc = app.service();
    let agent = app.agent("phone");
    let id = app.create_customer_ok(&svc, pena()).await;
    let reveal = "purpose=support&reveal=true&reason=x";
    let r = app.read_customer(&agent, &id, reveal).await;
    assert_eq!(
        r.json["contacts"][0]["value"], "+358401234567",
        "{}",
        r.text
    );
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json["audit"], "ok");
    let before = app.audit_count().await;

    block_audit(&app).await;
    let secrets = [
        id.as_str(),
        "Pena",
        "Virtanen",
        "CRM-1001",
        "401234567",
        "+358*******67",
        "example.com",
        "Kesamokki",
        "pe***",
    ];
    let started = Instant::now();
    let read = app.read_customer(&agent, &id, reveal).await;
    let lookup = app.lookup(&agent, "phone", "0401234567", "support").await;
    let create = app
        .create_customer(
            &svc,
            json!({"display_name": "Outage Oy", "contacts": [{"channel": "chat", "value": "visitor-503"}]}),
        )
        .await;
    for (what, r) in [("read", &read), ("lookup", &lookup), ("create", &create)] {
        r.assert_problem(503, "audit_unavailable");
        for s in secrets
            .iter()
            .chain(&["Outage", "visitor-503", "contacts", "matches"])
        {
            assert!(
                !r.text.contains(s),
                "the {what} 503 releases {s:?}: {}",
                r.text
            );
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a failing append fails fast, not at the deadline: {:?}",
        started.elapsed()
    );
    assert_eq!(app.audit_count().await, before, "nothing was appended");
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    assert_eq!(ready.json["audit"], "failing", "{}", ready.text);
    assert_eq!(ready.json["database"], "ok", "{}", ready.text);

    // Still failing while blocked: the readiness probe really tries an insert.
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );

    unblock_audit(&app).await;
    // Readiness recovers by itself, before any traffic, and leaves no entry.
    let ready = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.json["audit"], "ok");
    assert_eq!(
        app.audit_count().await,
        before,
        "the probe leaves nothing behind"
    );
    let r = app.read_customer(&agent, &id, reveal).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["contacts"][0]["value"], "+358401234567");

    let n = app.audit_count().await;
    assert_eq!(n, before + 1, "only the successful read is logged");
    let e = last_entry(&app).await;
    assert_entry(
        &e,
        json!({"action": "contact.reveal", "decision": "allow", "customer_id": id}),
    );
    assert_eq!(
        seqs(&all_entries(&app, "").await),
        (1..=n).collect::<Vec<_>>()
    );
    assert_good(&verify_http(&app).await, n);
}

/// A batch fails only at its commit (a deferred trigger that waits half a
/// second, then refuses) while reads queue behind it. They must be chained
/// onto the head that exists, not onto the refused batch's last hash (a
/// writer that prepares the next batch while one commits would know only
/// that one). Every read answered 200 has its entry, the refused one has
/// none, and the log stays one verified, gap-free chain.
async fn a_batch_failing_at_its_commit_while_later_ones_are_written_acknowledges_only_durable_chained_entries(
    b: Backend,
) {
    if b == Backend::Sqlite {
        // SQLite commits one batch at a time and has no deferred triggers.
        return;
    }
    let app = spawn_app_with(b, helpers::no_rate_limits).await;
    let svc = app.service();
    let agent = app.agent("phone");
    let doomed = app.create_customer_ok(&svc, pena()).await;
    let fine = app
        .create_customer_ok(
            &svc,
            json!({"display_name": "Fine Oy", "contacts": [{"channel": "phone", "value": "040 765 4321"}]}),
        )
        .await;
    app.exec(
        "CREATE FUNCTION audit_fail_commit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_sleep(0.5); RAISE EXCEPTION 'refused at commit'; END $$",
    )
    .await;
    app.exec(&format!(
        "CREATE CONSTRAINT TRIGGER audit_fail_commit AFTER INSERT ON audit_log \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
         WHEN (NEW.customer_id = '{doomed}') EXECUTE FUNCTION audit_fail_commit()"
    ))
    .await;
    let before = app.audit_count().await;

    let read = |id: &str| {
        app.client
            .get(format!("{}/v1/customers/{id}?purpose=support", app.address))
            .bearer_auth(&agent)
    };
    let failing = send(read(&doomed));
    let later = async {
        // The doomed batch is committing (its trigger waits): these queue
        // behind it, a few at a time, and are written while it commits.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut set = tokio::task::JoinSet::new();
        for round in 0..8u64 {
            for _ in 0..4 {
                let rb = read(&fine);
                set.spawn(async move {
                    tokio::time::sleep(Duration::from_millis(round * 40)).await;
                    send(rb).await
                });
            }
        }
        let mut answers = Vec::new();
        while let Some(a) = set.join_next().await {
            answers.push(a.expect("a read task"));
        }
        answers
    };
    let (failing, later) = tokio::join!(failing, later);

    failing.reply.assert_problem(503, "audit_unavailable");
    assert_eq!(
        app.audit_count().await,
        before + later.len() as i64,
        "one entry per acknowledged read, none for the refused one"
    );
    let entries = all_entries(&app, "").await;
    let logged: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["request_id"].as_str())
        .collect();
    assert!(
        !logged.contains(&failing.request_id.as_str()),
        "the refused read left no entry"
    );
    for a in &later {
        assert_eq!(
            a.reply.status,
            StatusCode::OK,
            "a read behind the failed batch is chained again, not failed: {}",
            a.reply.text
        );
        let n = logged.iter().filter(|r| **r == a.request_id).count();
        assert_eq!(n, 1, "an acknowledged read has exactly one entry");
    }
    let n = entries.len() as i64;
    assert_eq!(seqs(&entries), (1..=n).collect::<Vec<_>>(), "gap-free");
    let report = verify_http(&app).await;
    assert_eq!(report["ok"], true, "{report}");
}

async fn a_write_refused_during_an_audit_outage_changes_nothing(b: Backend) {
    // Writes commit their entry before the data changes, so a write answered
    // 503 for an audit outage has changed nothing, and nothing goes unlogged.
    let app = spawn_app(b).await;
    let chat = app.agent("chat");
    let existing = app
        .create_customer_ok(
            &chat,
            json!({"display_name": "Before Oy", "contacts": [{"channel": "chat", "value": "visitor-1"}]}),
        )
        .await;
    let contact_id = {
        let r = app.read_customer(&chat, &existing, "purpose=support").await;
        r.json["contacts"][0]["id"].as_str().unwrap().to_owned()
    };
    let before = app.audit_count().await;
    block_audit(&app).await;
    app.create_customer(
        &chat,
        json!({"display_name": "Outage Oy", "contacts": [{"channel": "chat", "value": "visitor-503"}]}),
    )
    .await
    .assert_problem(503, "audit_unavailable");
    app.patch_customer(&chat, &existing, json!({"display_name": "Changed Oy"}))
        .await
        .assert_problem(503, "audit_unavailable");
    app.add_contact(
        &chat,
        &existing,
        json!({"channel": "chat", "value": "visitor-2"}),
    )
    .await
    .assert_problem(503, "audit_unavailable");
    app.remove_contact(&chat, &existing, &contact_id)
        .await
        .assert_problem(503, "audit_unavailable");
    unblock_audit(&app).await;

    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM customers").await,
        1,
        "the refused create stored nothing"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM contacts").await,
        1,
        "no contact added or removed"
    );
    assert_eq!(
        app.audit_count().await,
        before,
        "no entry for requests that did nothing"
    );
    app.lookup(&chat, "chat", "visitor-503", "support")
        .await
        .assert_problem(404, "not_found");
    let r = app.read_customer(&chat, &existing, "purpose=support").await;
    assert_eq!(
        r.json["display_name"], "Before Oy",
        "the refused patch changed nothing"
    );
    assert_eq!(r.json["contacts"][0]["id"], contact_id.as_str());
    assert_good(&verify_http(&app).await, app.audit_count().await);
}

// ---------------------------------------------------------------- export --

async fn export_prints_every_entry_as_one_json_line_in_seq_order(b: Backend) {
    let app = spawn_app(b).await;
    seed(&app).await;
    let r = app.cli(&["audit", "export", "--format", "jsonl"]).await;
    assert!(r.status.success(), "{}", r.stderr);
    assert!(r.stdout.ends_with('\n'), "{}", r.stdout);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len() as i64, app.audit_count().await);
    let all = all_entries(&app, "").await;
    for (i, line) in lines.iter().enumerate() {
        let e: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {i}: {e}: {line}"));
        assert!(e.is_object(), "{line}");
        assert_eq!(e["seq"], i as i64 + 1, "{line}");
        assert_eq!(e, all[i], "the export shows what the API shows");
    }
    // The default format is jsonl; other formats are refused.
    let d = app.cli(&["audit", "export"]).await;
    assert!(d.status.success(), "{}", d.stderr);
    assert_eq!(d.stdout, r.stdout);
    let csv = app.cli(&["audit", "export", "--format", "csv"]).await;
    assert!(!csv.status.success());
    assert!(csv.stdout.is_empty(), "{}", csv.stdout);
}

/// The operator's reads on the vault host (`arkku audit export`, `arkku
/// audit verify`) through the service: the same entries as `GET /v1/audit`,
/// the same verification as `GET /v1/audit/verify`.
async fn the_operators_export_and_verification_show_what_compliance_sees(b: Backend) {
    let app = spawn_app(b).await;
    seed(&app).await;
    let mut exported = Vec::new();
    let n = arkku::service::audit_review::export_log(app.db(), |e| {
        exported.push(serde_json::to_value(e).map_err(std::io::Error::other)?);
        Ok(())
    })
    .await
    .expect("export");
    assert_eq!(n as i64, app.audit_count().await);
    assert_eq!(exported, all_entries(&app, "").await);

    let key = app.state.checkpoints.public_key();
    let report = arkku::service::audit_review::verify_log(app.db(), key, None)
        .await
        .expect("verify");
    let report = serde_json::to_value(&report).expect("report");
    assert_eq!(report, verify_http(&app).await);
    assert_good(&report, n as i64);
}

// --------------------------------------------- integrity at the edges --

/// Overwrites the stored checkpoint of entry `seq` with `hash` and `signature`.
async fn forge_stored_checkpoint(app: &TestApp, seq: i64, hash: &[u8], signature: &[u8]) {
    arkku::on_db!(app.db(), pool => sqlx::query(
        "UPDATE audit_checkpoints SET hash = $2, signature = $3 WHERE seq = $1",
    )
    .bind(seq)
    .bind(hash)
    .bind(signature)
    .execute(pool)
    .await
    .map(drop))
    .expect("forge the stored checkpoint");
}

async fn a_forged_stored_checkpoint_fails_verification_even_with_a_kept_checkpoint_of_that_entry(
    b: Backend,
) {
    // Arrange: eight entries, a checkpoint of entry 8 stored and kept.
    let app = spawn_app(b).await;
    seed(&app).await;
    let keep = TempDir::new().unwrap();
    let (cp, kept) = keep_checkpoint(&app, keep.path(), "kept.json").await;
    let kept = kept.to_string_lossy().into_owned();
    assert_eq!(cp["seq"], 8);
    assert_good(&verify_cli(&app, &["--checkpoint", &kept]).await, 8);
    let hash = unhex(cp["hash"].as_str().unwrap()).unwrap();
    let signature = unhex(cp["signature"].as_str().unwrap()).unwrap();
    let entry_7 = unhex(all_entries(&app, "").await[6]["hash"].as_str().unwrap()).unwrap();
    let mut bad_signature = signature.clone();
    bad_signature[0] ^= 1;

    for (what, forged_hash, forged_signature, why) in [
        (
            "a broken signature",
            &hash,
            &bad_signature,
            "not signed by this vault",
        ),
        (
            "another entry's hash",
            &entry_7,
            &signature,
            "another hash than the kept checkpoint",
        ),
    ] {
        // Act
        forge_stored_checkpoint(&app, 8, forged_hash, forged_signature).await;
        let r = app.cli(&["audit", "verify", "--checkpoint", &kept]).await;

        // Assert: refused, naming the entry and why.
        r.assert_failed();
        let report: Value = serde_json::from_str(&r.stdout).expect("a JSON report");
        assert_bad(&report, 8);
        assert!(
            report["problem"].as_str().unwrap().contains(why),
            "{what}: {report}"
        );
        assert!(
            r.stderr.contains("stored checkpoint") && r.stderr.contains(why),
            "{what}: the command says why: {}",
            r.stderr
        );
    }
    // The real one restored, the kept checkpoint vouches for the log again.
    forge_stored_checkpoint(&app, 8, &hash, &signature).await;
    assert_good(&verify_cli(&app, &["--checkpoint", &kept]).await, 8);
}

/// Starts the real `arkku serve` on `app`'s database and data dir.
async fn serve_beside(app: &TestApp, extra: &[(&str, &str)]) -> (helpers::Proc, String) {
    let listen = format!("127.0.0.1:{}", helpers::free_port());
    let mut env = vec![("ARKKU_LISTEN", listen.as_str())];
    env.extend_from_slice(extra);
    let mut proc = app.cli_proc_with(&["serve"], &env);
    let base = format!("http://{listen}");
    proc.wait_healthy(&base, helpers::START_LIMIT).await;
    (proc, base)
}

/// Polls `/readyz` until its `audit_chain` is `want`; returns the last answer.
async fn readyz_until_chain(base: &str, want: &str) -> Reply {
    let client = helpers::http_client();
    let start = Instant::now();
    loop {
        let r = helpers::send(client.get(format!("{base}/readyz"))).await;
        if r.json["audit_chain"] == want {
            return r;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "/readyz never reported audit_chain {want}: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `/readyz` says the chain is broken at `seq`, and the server logged it.
#[track_caller]
fn assert_broken_at(r: &Reply, seq: i64) {
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text);
    assert_eq!(r.json["status"], "unavailable", "{}", r.text);
    assert_eq!(r.json["audit"], "broken", "{}", r.text);
    assert_eq!(r.json["audit_first_bad_seq"], seq, "{}", r.text);
    assert!(
        r.json["audit_chain_problem"]
            .as_str()
            .is_some_and(|p| p.contains("does not match its hash")),
        "{}",
        r.text
    );
}

async fn serve_started_on_a_chain_with_an_edited_entry_is_not_ready_and_names_the_entry(
    b: Backend,
) {
    // Arrange: eight entries, entry 3 edited in the database.
    let app = spawn_app(b).await;
    seed(&app).await;
    app.exec("UPDATE audit_log SET detail = '{}' WHERE seq = 3")
        .await;

    // Act: the real binary starts on it (and does answer: start-up does not
    // wait for the verification).
    let (proc, base) = serve_beside(&app, &[]).await;
    let r = readyz_until_chain(&base, "broken").await;

    // Assert
    assert_broken_at(&r, 3);
    let logs = proc.stderr();
    assert!(
        logs.contains("THE AUDIT CHAIN DOES NOT VERIFY") && logs.contains("\"first_bad_seq\":3"),
        "the error is logged: {logs}"
    );
    assert!(logs.contains("ERROR"), "{logs}");
}

async fn an_entry_edited_while_serve_runs_is_found_by_a_background_pass(b: Backend) {
    // Arrange: a checkpoint every five entries, so the passes start after one.
    let app = spawn_app_with(b, |c| c.audit_checkpoint_every = 5).await;
    seed(&app).await;
    let (proc, base) = serve_beside(
        &app,
        &[
            ("ARKKU_AUDIT_VERIFY_INTERVAL", "200ms"),
            ("ARKKU_AUDIT_CHECKPOINT_EVERY", "5"),
        ],
    )
    .await;
    let r = readyz_until_chain(&base, "intact").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["audit"], "ok", "{}", r.text);
    assert!(r.json["audit_first_bad_seq"].is_null(), "{}", r.text);

    // Act: entry 7 comes after the signed checkpoint of entry 5.
    app.exec("UPDATE audit_log SET reason = 'edited' WHERE seq = 7")
        .await;

    // Assert
    let r = readyz_until_chain(&base, "broken").await;
    assert_broken_at(&r, 7);
    assert!(
        proc.stderr().contains("\"first_bad_seq\":7"),
        "{}",
        proc.stderr()
    );
}
