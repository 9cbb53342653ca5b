//! The register of data subject requests: due dates one calendar month on,
//! extensions with reasons and their limit, the state machine, the order
//! by urgency as the clock moves, the CSV download, the customer's own
//! view, the link to erasure, and the audit entries of every change.
//!
//! Over 500 lines because each scenario walks one rule end to end through
//! HTTP; splitting them would only scatter the register's contract.

use std::time::Duration;

use arkku::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, Reply, Scenario, TestApp, Tok};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_request_is_listed_due_one_calendar_month_after_receipt,
        an_extension_needs_a_reason_and_stops_at_two_months,
        invalid_transitions_are_refused_and_closed_requests_stay_closed,
        overdue_and_due_soon_requests_lead_the_list_as_the_clock_moves,
        the_register_downloads_as_csv_with_formulas_neutralised,
        a_customer_sees_their_own_requests_and_nobody_elses,
        only_dsr_staff_keep_the_register,
        an_erasure_under_the_case_reference_completes_the_erasure_request,
    ]
}

const DAY: Duration = Duration::from_secs(86_400);

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> Reply {
    app.request(Method::POST, path, Some(token), Some(body))
        .await
}

async fn get(app: &TestApp, token: &str, path: &str) -> Reply {
    app.request(Method::GET, path, Some(token), None).await
}

/// Registers a request (asserting 201) and returns it.
async fn register(app: &TestApp, body: Value) -> Value {
    let r = post(app, &app.compliance(), "/v1/dsr/requests", body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json
}

async fn transition(app: &TestApp, id: &str, body: Value) -> Reply {
    let path = format!("/v1/dsr/requests/{id}/transition");
    post(app, &app.compliance(), &path, body).await
}

async fn extend(app: &TestApp, id: &str, body: Value) -> Reply {
    let path = format!("/v1/dsr/requests/{id}/extend");
    post(app, &app.compliance(), &path, body).await
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn customer(app: &TestApp, email: &str) -> String {
    app.create_customer_ok(
        &app.agent("email"),
        json!({"contacts": [{"channel": "email", "value": email}]}),
    )
    .await
}

/// The case references of the register's list, in order.
async fn listed(app: &TestApp, query: &str) -> Vec<Value> {
    let r = get(app, &app.compliance(), &format!("/v1/dsr/requests{query}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["requests"].as_array().unwrap().clone()
}

async fn audit_rows(app: &TestApp, action: &str, case: &str) -> i64 {
    app.scalar(&format!(
        "SELECT COUNT(*) FROM audit_log WHERE action = '{action}' AND reason = '{case}' \
         AND decision = 'allow' AND purpose = 'dsr'"
    ))
    .await
}

async fn a_request_is_listed_due_one_calendar_month_after_receipt(b: Backend) {
    // Arrange: one request received on 31 January, one received now.
    let app = spawn_app(b).await;
    let jan = register(
        &app,
        json!({"kind": "access", "case_reference": "DSR-2026-001",
               "received_at": "2026-01-31T09:30:00Z", "note": "by post"}),
    )
    .await;
    let now = register(
        &app,
        json!({"kind": "rectification", "case_reference": "DSR-2026-002"}),
    )
    .await;

    // Assert: 31 January is due on the last day of February; both are listed.
    assert_eq!(jan["due_date"], "2026-02-28");
    assert_eq!(jan["due_at"], "2026-03-01T00:00:00Z");
    assert_eq!(jan["status"], "received");
    assert_eq!(jan["overdue"], true, "its due date has passed");
    assert_eq!(
        jan["next"],
        json!(["identity_verified", "refused", "withdrawn"])
    );
    assert_eq!(
        jan["handled_by"],
        json!({"sub": "auditor", "role": "compliance"})
    );
    let today = app.state.clock.now().date();
    let want = arkku::domain::dsr::due_date(today, 0).unwrap();
    assert_eq!(now["due_date"], want.to_string());
    assert_eq!(now["overdue"], false);
    let list = listed(&app, "").await;
    let cases: Vec<_> = list.iter().map(|r| r["case_reference"].clone()).collect();
    assert_eq!(Value::from(cases), json!(["DSR-2026-001", "DSR-2026-002"]));

    // The same case reference twice is refused; the history holds the note.
    let again = post(
        &app,
        &app.compliance(),
        "/v1/dsr/requests",
        json!({"kind": "access", "case_reference": "DSR-2026-001"}),
    )
    .await;
    again.assert_problem(409, "case_reference_exists");
    let one = get(
        &app,
        &app.compliance(),
        &format!("/v1/dsr/requests/{}", id(&jan)),
    )
    .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.text);
    assert_eq!(one.json["history"][0]["change"], "create");
    assert_eq!(one.json["history"][0]["reason"], "by post");

    // A future receipt, an unknown kind and an unknown field are refused.
    for body in [
        json!({"kind": "access", "case_reference": "X-1", "received_at": "2999-01-01T00:00:00Z"}),
        json!({"kind": "deletion", "case_reference": "X-2"}),
        json!({"kind": "access", "case_reference": "X-3", "status": "completed"}),
        json!({"kind": "access", "case_reference": "X-4", "customer_id": uuid::Uuid::now_v7()}),
    ] {
        let r = post(&app, &app.compliance(), "/v1/dsr/requests", body).await;
        r.assert_problem(400, "invalid_request");
    }
    assert_eq!(
        audit_rows(&app, "dsr.request.create", "DSR-2026-001").await,
        1
    );
    assert!(
        !app.audit_text().await.contains("by post"),
        "a note is never audited"
    );
}

async fn an_extension_needs_a_reason_and_stops_at_two_months(b: Backend) {
    let app = spawn_app(b).await;
    let req = register(&app, json!({"kind": "access", "case_reference": "EXT-1"})).await;
    let rid = id(&req);
    let received = app.state.clock.now().date();
    let due = |months| {
        arkku::domain::dsr::due_date(received, months)
            .unwrap()
            .to_string()
    };

    // No reason, or months out of range: 400, nothing changes.
    extend(&app, &rid, json!({"months": 1}))
        .await
        .assert_problem(400, "invalid_request");
    extend(
        &app,
        &rid,
        json!({"months": 3, "reason": "complex request"}),
    )
    .await
    .assert_problem(400, "invalid_request");
    extend(
        &app,
        &rid,
        json!({"months": 0, "reason": "complex request"}),
    )
    .await
    .assert_problem(400, "invalid_request");

    // One month, then a second: the due date counts from the receipt.
    let r = extend(
        &app,
        &rid,
        json!({"months": 1, "reason": "complex request"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["due_date"], due(1));
    assert_eq!(r.json["extension_months"], 1);
    extend(&app, &rid, json!({"months": 2, "reason": "many requests"}))
        .await
        .assert_problem(409, "invalid_transition");
    let r = extend(&app, &rid, json!({"months": 1, "reason": "many requests"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["due_date"], due(2));

    // Beyond three months in all: refused.
    extend(&app, &rid, json!({"months": 1, "reason": "still more"}))
        .await
        .assert_problem(409, "invalid_transition");
    let one = get(&app, &app.compliance(), &format!("/v1/dsr/requests/{rid}")).await;
    let history = one.json["history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{}", one.text);
    assert_eq!(history[1]["change"], "extend");
    assert_eq!(history[1]["months"], 1);
    assert_eq!(history[1]["reason"], "complex request");
    assert_eq!(one.json["request"]["due_date"], due(2));

    // Audited: the two extensions allowed, the refusals denied; no reason text.
    assert_eq!(audit_rows(&app, "dsr.request.update", "EXT-1").await, 2);
    let denied = app
        .scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'dsr.request.update' \
             AND decision = 'deny'",
        )
        .await;
    assert_eq!(denied, 5);
    let text = app.audit_text().await;
    assert!(!text.contains("complex request") && !text.contains("many requests"));
}

async fn invalid_transitions_are_refused_and_closed_requests_stay_closed(b: Backend) {
    let app = spawn_app(b).await;
    let pena = customer(&app, "pena.register@example.com").await;
    let req = register(&app, json!({"kind": "access", "case_reference": "ST-1"})).await;
    let rid = id(&req);

    // Not before identity is verified; not verified without a customer.
    for to in ["completed", "in_progress", "received"] {
        transition(&app, &rid, json!({"to": to}))
            .await
            .assert_problem(409, "invalid_transition");
    }
    transition(&app, &rid, json!({"to": "identity_verified"}))
        .await
        .assert_problem(400, "invalid_request");
    transition(&app, &rid, json!({"to": "refused"}))
        .await
        .assert_problem(400, "invalid_request");
    transition(&app, &rid, json!({"to": "done"}))
        .await
        .assert_problem(400, "invalid_request");

    // received → identity_verified (naming the customer) → in_progress → completed.
    let r = transition(
        &app,
        &rid,
        json!({"to": "identity_verified", "customer_id": pena}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["customer_id"], pena.as_str());
    let r = transition(&app, &rid, json!({"to": "in_progress"})).await;
    assert_eq!(r.json["status"], "in_progress", "{}", r.text);
    let r = transition(&app, &rid, json!({"to": "completed"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["next"], json!([]));
    assert!(r.json["closed_at"].is_string());

    // Closed is final: no move, no extension.
    for to in ["in_progress", "withdrawn", "refused"] {
        transition(&app, &rid, json!({"to": to, "reason": "late"}))
            .await
            .assert_problem(409, "invalid_transition");
    }
    extend(&app, &rid, json!({"months": 1, "reason": "late"}))
        .await
        .assert_problem(409, "invalid_transition");

    // Refusing needs a reason and closes the request.
    let other = register(&app, json!({"kind": "erasure", "case_reference": "ST-2"})).await;
    let r = transition(
        &app,
        &id(&other),
        json!({"to": "refused", "reason": "identity could not be verified"}),
    )
    .await;
    assert_eq!(r.json["status"], "refused", "{}", r.text);
    assert_eq!(audit_rows(&app, "dsr.request.update", "ST-1").await, 3);
    assert!(!app
        .audit_text()
        .await
        .contains("identity could not be verified"));
}

async fn overdue_and_due_soon_requests_lead_the_list_as_the_clock_moves(b: Backend) {
    // Arrange: a request received now, one 40 days ago (overdue), one 26
    // days ago (due within a week), and a closed one.
    let app = spawn_app(b).await;
    let now = app.state.clock.now();
    let ago = |d: i64| arkku::domain::time::rfc3339(now - time::Duration::days(d));
    register(&app, json!({"kind": "access", "case_reference": "C-NOW"})).await;
    register(
        &app,
        json!({"kind": "access", "case_reference": "C-SOON", "received_at": ago(26)}),
    )
    .await;
    register(
        &app,
        json!({"kind": "erasure", "case_reference": "C-LATE", "received_at": ago(40)}),
    )
    .await;
    let closed = register(
        &app,
        json!({"kind": "access", "case_reference": "C-DONE", "received_at": ago(50)}),
    )
    .await;
    let r = transition(&app, &id(&closed), json!({"to": "withdrawn"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Act + Assert: overdue first, then due soon, then the rest, closed last.
    let flags = |list: &[Value]| -> Vec<(String, bool, bool)> {
        list.iter()
            .map(|r| {
                (
                    r["case_reference"].as_str().unwrap().to_owned(),
                    r["overdue"].as_bool().unwrap(),
                    r["due_soon"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let s = |c: &str, o, d| (c.to_owned(), o, d);
    assert_eq!(
        flags(&listed(&app, "").await),
        vec![
            s("C-LATE", true, false),
            s("C-SOON", false, true),
            s("C-NOW", false, false),
            s("C-DONE", false, false),
        ]
    );

    // 27 days on, the new request is due soon; 40 days on, all are overdue.
    app.set_clock_ahead(DAY * 27);
    assert_eq!(
        flags(&listed(&app, "").await),
        vec![
            s("C-LATE", true, false),
            s("C-SOON", true, false),
            s("C-NOW", false, true),
            s("C-DONE", false, false),
        ]
    );
    app.set_clock_ahead(DAY * 40);
    let open = listed(&app, "?kind=access&status=received").await;
    assert_eq!(
        flags(&open),
        vec![s("C-SOON", true, false), s("C-NOW", true, false)]
    );

    // An overdue request can no longer be extended.
    let late = &open[1];
    extend(&app, &id(late), json!({"months": 1, "reason": "too late"}))
        .await
        .assert_problem(409, "invalid_transition");
    let r = get(&app, &app.compliance(), "/v1/dsr/requests?status=nosuch").await;
    r.assert_problem(400, "invalid_request");
}

async fn the_register_downloads_as_csv_with_formulas_neutralised(b: Backend) {
    let app = spawn_app(b).await;
    register(
        &app,
        json!({"kind": "access", "case_reference": "=HYPERLINK(\"http://x\",\"y\")"}),
    )
    .await;
    register(&app, json!({"kind": "erasure", "case_reference": "CSV-2"})).await;

    let r = get(&app, &app.compliance(), "/v1/dsr/requests.csv").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.content_type.starts_with("text/csv"), "{}", r.content_type);
    assert!(r
        .header("content-disposition")
        .is_some_and(|d| d.contains("arkku-dsr-requests-")));
    let mut reader = csv::Reader::from_reader(r.text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(header[..4], ["id", "case_reference", "kind", "status"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let cases: Vec<&str> = rows.iter().map(|r| &r[1]).collect();
    assert!(
        cases.contains(&"'=HYPERLINK(\"http://x\",\"y\")"),
        "{cases:?}"
    );
    assert!(cases.contains(&"CSV-2"));

    // Filtered, and audited with the row count.
    let r = get(&app, &app.compliance(), "/v1/dsr/requests.csv?kind=erasure").await;
    assert_eq!(r.text.lines().count(), 2, "{}", r.text);
    let exports = app
        .scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'dsr.request.export' \
             AND decision = 'allow'",
        )
        .await;
    assert_eq!(exports, 2);
    let agent = get(&app, &app.agent("phone"), "/v1/dsr/requests.csv").await;
    agent.assert_problem(403, "forbidden");
}

async fn a_customer_sees_their_own_requests_and_nobody_elses(b: Backend) {
    let app = spawn_app(b).await;
    let pena = customer(&app, "pena.own@example.com").await;
    let liisa = customer(&app, "liisa.own@example.com").await;
    register(
        &app,
        json!({"kind": "access", "case_reference": "OWN-P", "customer_id": pena}),
    )
    .await;
    register(
        &app,
        json!({"kind": "erasure", "case_reference": "OWN-L", "customer_id": liisa}),
    )
    .await;
    register(
        &app,
        json!({"kind": "access", "case_reference": "OWN-NONE"}),
    )
    .await;

    let r = get(&app, &app.customer(&pena), "/v1/me/requests").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mine = r.json["requests"].as_array().unwrap();
    assert_eq!(mine.len(), 1, "{}", r.text);
    assert_eq!(mine[0]["case_reference"], "OWN-P");
    assert_eq!(mine[0]["status"], "received");
    assert!(mine[0]["due_date"].is_string());
    assert!(mine[0].get("handled_by").is_none(), "no staff identity");

    // The staff register is not theirs to read, by list or by id.
    let token = app.customer(&pena);
    get(&app, &token, "/v1/dsr/requests")
        .await
        .assert_problem(403, "forbidden");
    get(
        &app,
        &token,
        &format!("/v1/dsr/requests?customer_id={liisa}"),
    )
    .await
    .assert_problem(403, "forbidden");
    // Staff have no "own" requests.
    get(&app, &app.compliance(), "/v1/me/requests")
        .await
        .assert_problem(403, "forbidden");
}

async fn only_dsr_staff_keep_the_register(b: Backend) {
    let app = spawn_app(b).await;
    let req = register(&app, json!({"kind": "access", "case_reference": "ROLE-1"})).await;
    let no_dsr = app.token(Tok {
        role: Role::Compliance,
        sub: "auditor",
        purposes: &[],
        channel: None,
    });
    let admin = app.token(Tok {
        role: Role::Admin,
        sub: "ops",
        purposes: &["dsr"],
        channel: None,
    });
    let body = json!({"kind": "access", "case_reference": "ROLE-2"});
    post(&app, &no_dsr, "/v1/dsr/requests", body.clone())
        .await
        .assert_problem(403, "purpose_not_allowed");
    get(&app, &no_dsr, "/v1/dsr/requests")
        .await
        .assert_problem(403, "purpose_not_allowed");
    for token in [admin, app.agent("phone"), app.service()] {
        post(&app, &token, "/v1/dsr/requests", body.clone())
            .await
            .assert_problem(403, "forbidden");
        get(&app, &token, &format!("/v1/dsr/requests/{}", id(&req)))
            .await
            .assert_problem(403, "forbidden");
    }
    app.request(Method::GET, "/v1/dsr/requests", None, None)
        .await
        .assert_problem(401, "unauthenticated");
    let refused = app
        .scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'dsr.request.create' \
             AND decision = 'deny'",
        )
        .await;
    assert_eq!(refused, 4, "every refused write is audited");
    get(
        &app,
        &app.compliance(),
        &format!("/v1/dsr/requests/{}", uuid::Uuid::now_v7()),
    )
    .await
    .assert_problem(404, "not_found");
}

async fn an_erasure_under_the_case_reference_completes_the_erasure_request(b: Backend) {
    let app = spawn_app(b).await;
    let pena = customer(&app, "pena.erase@example.com").await;
    let req = register(
        &app,
        json!({"kind": "erasure", "case_reference": "ER-7", "customer_id": pena}),
    )
    .await;
    let rid = id(&req);
    let r = transition(&app, &rid, json!({"to": "identity_verified"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Not completed by hand while the customer is there.
    transition(&app, &rid, json!({"to": "completed"}))
        .await
        .assert_problem(409, "invalid_transition");

    // Act: the erasure under the request's case reference.
    let r = app
        .request(
            Method::DELETE,
            &format!("/v1/customers/{pena}?reason=ER-7"),
            Some(&app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Assert: the request is completed, and the trail links both by ER-7.
    let one = get(&app, &app.compliance(), &format!("/v1/dsr/requests/{rid}")).await;
    assert_eq!(one.json["request"]["status"], "completed", "{}", one.text);
    assert_eq!(audit_rows(&app, "dsr.request.update", "ER-7").await, 2);
    let erased = app
        .scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'customer.erase' \
             AND reason = 'ER-7' AND decision = 'allow'",
        )
        .await;
    assert_eq!(erased, 1);
    // The register keeps the closed request beside the tombstone.
    let kept = app
        .scalar(
            "SELECT COUNT(*) FROM dsr_requests WHERE case_reference = 'ER-7' \
             AND closed_at IS NOT NULL",
        )
        .await;
    assert_eq!(kept, 1);
    app.assert_chain_verifies().await;
}
