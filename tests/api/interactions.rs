//! Interactions: recorded per channel with an encrypted body, read through the
//! integration rule, gone past their retention, and the promise list of open
//! contact requests past due.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, Reply, Scenario, TestApp, Tok};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        an_agent_reads_its_own_channels_interactions_and_others_only_with_consent,
        an_open_contact_request_past_due_is_listed_without_its_body_until_resolved,
        data_past_its_retention_is_gone_at_read_time,
        bad_interaction_input_gets_its_code_and_stores_nothing,
        every_interaction_request_is_audited_without_its_body,
        an_agent_records_and_resolves_interactions_only_on_its_own_channel,
    ]
}

/// Microseconds in a day, for moving stored times into the past.
const DAY_US: i64 = 86_400_000_000;

fn pena() -> Value {
    json!({"display_name": "Pena", "contacts": [
        {"channel": "phone", "value": "040 123 4567"},
        {"channel": "email", "value": "pena@example.com"}
    ]})
}

async fn record(app: &TestApp, token: &str, id: &str, body: Value) -> Reply {
    app.request(
        Method::POST,
        &format!("/v1/customers/{id}/interactions"),
        Some(token),
        Some(body),
    )
    .await
}

async fn record_ok(app: &TestApp, token: &str, id: &str, body: Value) -> String {
    let r = record(app, token, id, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json["id"].as_str().expect("id").to_owned()
}

async fn list(app: &TestApp, token: &str, id: &str) -> Reply {
    app.request(
        Method::GET,
        &format!("/v1/customers/{id}/interactions?purpose=support"),
        Some(token),
        None,
    )
    .await
}

async fn resolve(app: &TestApp, token: &str, id: &str, iid: &str, body: Value) -> Reply {
    app.request(
        Method::PATCH,
        &format!("/v1/customers/{id}/interactions/{iid}"),
        Some(token),
        Some(body),
    )
    .await
}

async fn overdue(app: &TestApp, token: &str) -> Reply {
    app.request(
        Method::GET,
        "/v1/interactions/overdue?purpose=support",
        Some(token),
        None,
    )
    .await
}

/// `(channel, kind, body)` of every interaction in a list response.
fn seen(r: &Reply) -> Vec<(String, String, String)> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["interactions"]
        .as_array()
        .expect("interactions")
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_owned();
            (s("channel"), s("kind"), s("body"))
        })
        .collect()
}

fn withheld(r: &Reply) -> Vec<(String, String)> {
    r.json["withheld"]
        .as_array()
        .expect("withheld")
        .iter()
        .map(|w| {
            (
                w["channel"].as_str().unwrap().to_owned(),
                w["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn triple(channel: &str, kind: &str, body: &str) -> (String, String, String) {
    (channel.into(), kind.into(), body.into())
}

async fn an_agent_reads_its_own_channels_interactions_and_others_only_with_consent(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let email = app.agent("email");
    let call = "Soitti laskusta.\nLupasin soittaa takaisin huomenna 🙂";
    let r = record(
        &app,
        &phone,
        &id,
        json!({"channel": "phone", "kind": "contact_request", "body": call,
               "due_at": "2030-01-02T09:00:00Z"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["kind"], "contact_request");
    assert_eq!(r.json["due_at"], "2030-01-02T09:00:00Z");
    assert!(
        r.json.get("body").is_none(),
        "the receipt does not echo the body: {}",
        r.text
    );
    record_ok(
        &app,
        &email,
        &id,
        json!({"channel": "email", "kind": "complaint", "body": "Paketti myöhässä"}),
    )
    .await;

    // Each agent sees its own channel's interactions, in full.
    let r = list(&app, &phone, &id).await;
    assert_eq!(seen(&r), [triple("phone", "contact_request", call)]);
    assert_eq!(withheld(&r), [("email".into(), "consent_required".into())]);
    assert!(!r.text.contains("Paketti"), "{}", r.text);
    let r = list(&app, &email, &id).await;
    assert_eq!(seen(&r), [triple("email", "complaint", "Paketti myöhässä")]);

    // With the customer's cross_channel consent on e-mail (recorded by
    // compliance, so it takes effect at once), the phone agent sees the
    // complaint too; withdrawn, it is gone again on the next read.
    let consents = format!("/v1/customers/{id}/consents");
    let grant = json!({"purpose": "cross_channel", "channel": "email", "action": "grant",
                       "method": "spoken", "evidence": {"notice_id": "n", "notice_version": "1"}});
    let r = app
        .request(
            Method::POST,
            &consents,
            Some(&app.compliance()),
            Some(grant),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = list(&app, &phone, &id).await;
    assert_eq!(
        seen(&r),
        [
            triple("phone", "contact_request", call),
            triple("email", "complaint", "Paketti myöhässä")
        ]
    );
    assert!(withheld(&r).is_empty(), "{}", r.text);
    let withdraw = json!({"purpose": "cross_channel", "channel": "email", "action": "withdraw",
                          "method": "spoken"});
    app.request(Method::POST, &consents, Some(&phone), Some(withdraw))
        .await;
    let r = list(&app, &phone, &id).await;
    assert_eq!(seen(&r).len(), 1);
    assert_eq!(withheld(&r), [("email".into(), "consent_withdrawn".into())]);

    // Only agents read interactions; an unknown customer is 404.
    list(&app, &app.service(), &id)
        .await
        .assert_problem(403, "forbidden");
    list(&app, &phone, "0190b0a0-0000-7000-8000-000000000000")
        .await
        .assert_problem(404, "not_found");
    app.request(
        Method::GET,
        &format!("/v1/customers/{id}/interactions"),
        Some(&phone),
        None,
    )
    .await
    .assert_problem(400, "invalid_request");
}

async fn an_open_contact_request_past_due_is_listed_without_its_body_until_resolved(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let other = app.create_customer_ok(&app.service(), json!({})).await;
    let phone = app.agent("phone");
    let late = record_ok(
        &app,
        &phone,
        &id,
        json!({"channel": "phone", "kind": "contact_request", "body": "Lupaus-salaisuus-4411",
               "due_at": "2026-01-01T08:00:00Z"}),
    )
    .await;
    let later = record_ok(
        &app,
        &app.agent("email"),
        &other,
        json!({"channel": "email", "kind": "contact_request", "body": "x",
               "due_at": "2026-01-01T07:00:00Z"}),
    )
    .await;
    // Not overdue: due in the future, no due date, or not a contact request.
    for body in [
        json!({"channel": "phone", "kind": "contact_request", "body": "x", "due_at": "2099-01-01T00:00:00Z"}),
        json!({"channel": "phone", "kind": "contact_request", "body": "x"}),
        json!({"channel": "phone", "kind": "complaint", "body": "x", "due_at": "2026-01-01T00:00:00Z"}),
    ] {
        record_ok(&app, &phone, &id, body).await;
    }

    let service = app.service();
    let r = overdue(&app, &service).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let list = r.json["overdue"].as_array().expect("overdue");
    assert_eq!(list.len(), 2, "{}", r.text);
    // Most overdue first; customer, channel, kind and times, and nothing else.
    assert_eq!(list[0]["id"], later.as_str());
    assert_eq!(list[0]["customer_id"], other.as_str());
    assert_eq!(list[0]["channel"], "email");
    assert_eq!(list[1]["id"], late.as_str());
    assert_eq!(list[1]["due_at"], "2026-01-01T08:00:00Z");
    let mut keys: Vec<&str> = list[1]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "channel",
            "created_at",
            "customer_id",
            "due_at",
            "id",
            "kind"
        ]
    );
    assert!(!r.text.contains("Lupaus-salaisuus"), "{}", r.text);

    // Resolving keeps the promise: 204, listed no more, resolved_at shown.
    let r = resolve(&app, &phone, &id, &late, json!({"resolved": true})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = overdue(&app, &phone).await;
    assert_eq!(r.json["overdue"].as_array().unwrap().len(), 1, "{}", r.text);
    let r = list_all(&app, &phone, &id).await;
    let resolved = find(&r, &late);
    let first = resolved["resolved_at"]
        .as_str()
        .expect("resolved_at")
        .to_owned();
    // Resolving twice is harmless and keeps the first time.
    let r = resolve(&app, &phone, &id, &late, json!({"resolved": true})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = list_all(&app, &phone, &id).await;
    assert_eq!(find(&r, &late)["resolved_at"], first.as_str());

    // Reopening is not a thing; nor is resolving another customer's request.
    resolve(&app, &phone, &id, &late, json!({"resolved": false}))
        .await
        .assert_problem(400, "invalid_request");
    resolve(&app, &phone, &id, &later, json!({"resolved": true}))
        .await
        .assert_problem(404, "not_found");
    resolve(
        &app,
        &phone,
        &id,
        &late,
        json!({"resolved": true, "at": "x"}),
    )
    .await
    .assert_problem(400, "invalid_request");
    // The list needs a purpose the token lists, and a sane limit.
    for q in [
        "",
        "?purpose=marketing",
        "?purpose=support&limit=0",
        "?purpose=support&limit=x",
    ] {
        let r = app
            .request(
                Method::GET,
                &format!("/v1/interactions/overdue{q}"),
                Some(&phone),
                None,
            )
            .await;
        assert!(r.status.is_client_error(), "{q}: {}", r.text);
    }
    overdue(&app, &app.compliance())
        .await
        .assert_problem(403, "forbidden");
}

async fn list_all(app: &TestApp, token: &str, id: &str) -> Reply {
    let r = list(app, token, id).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r
}

fn find<'a>(r: &'a Reply, iid: &str) -> &'a Value {
    r.json["interactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == iid)
        .unwrap_or_else(|| panic!("{iid} not in {}", r.text))
}

async fn data_past_its_retention_is_gone_at_read_time(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let transcript = record_ok(
        &app,
        &phone,
        &id,
        json!({"channel": "phone", "kind": "transcript", "body": "Puhelun litterointi"}),
    )
    .await;
    record_ok(
        &app,
        &phone,
        &id,
        json!({"channel": "phone", "kind": "complaint", "body": "Valitus"}),
    )
    .await;
    let due = record_ok(
        &app,
        &phone,
        &id,
        json!({"channel": "phone", "kind": "contact_request", "body": "Soita",
               "due_at": "2026-01-01T00:00:00Z"}),
    )
    .await;

    // A transcript is kept 30 days: 31 days on, it is gone; the complaint stays.
    app.exec(&format!(
        "UPDATE interactions SET created_at = created_at - {} WHERE kind = 'transcript'",
        31 * DAY_US
    ))
    .await;
    let r = list_all(&app, &phone, &id).await;
    assert!(
        r.json["interactions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["id"] != transcript.as_str()),
        "{}",
        r.text
    );
    assert!(!r.text.contains("litterointi"), "{}", r.text);
    assert_eq!(seen(&r).len(), 2);

    // A contact request is kept 90 days: past that it is not a promise any more.
    assert_eq!(
        overdue(&app, &phone).await.json["overdue"][0]["id"],
        due.as_str()
    );
    app.exec(&format!(
        "UPDATE interactions SET created_at = created_at - {} WHERE kind <> 'complaint'",
        91 * DAY_US
    ))
    .await;
    let r = overdue(&app, &phone).await;
    assert_eq!(r.json["overdue"], json!([]), "{}", r.text);

    // Everything of a channel past its retention: withheld as retention_expired.
    app.exec(&format!(
        "UPDATE interactions SET created_at = created_at - {}",
        731 * DAY_US
    ))
    .await;
    let r = list_all(&app, &phone, &id).await;
    assert!(seen(&r).is_empty(), "{}", r.text);
    assert_eq!(withheld(&r), [("phone".into(), "retention_expired".into())]);

    // A contact point is kept 730 days after its last activity.
    app.exec(&format!(
        "UPDATE contacts SET last_activity_at = last_activity_at - {} WHERE channel = 'phone'",
        731 * DAY_US
    ))
    .await;
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["contacts"], json!([]), "{}", r.text);
    let w = r.json["withheld"].as_array().unwrap();
    assert!(
        w.contains(&json!({"channel": "phone", "reason": "retention_expired"})),
        "{}",
        r.text
    );
    assert!(!r.text.contains("4567"), "{}", r.text);
    // A lookup does not find what is gone.
    app.lookup(&phone, "phone", "040 123 4567", "support")
        .await
        .assert_problem(404, "not_found");
    // New activity on the channel does not bring expired data back.
    record_ok(
        &app,
        &phone,
        &id,
        json!({"channel": "phone", "kind": "feedback", "body": "Kiitos"}),
    )
    .await;
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(r.json["contacts"], json!([]), "{}", r.text);
    app.lookup(&phone, "phone", "040 123 4567", "support")
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        seen(&list_all(&app, &phone, &id).await),
        [triple("phone", "feedback", "Kiitos")]
    );

    // Activity on a live contact point's channel restarts its retention.
    app.exec(&format!(
        "UPDATE contacts SET last_activity_at = last_activity_at - {} WHERE channel = 'email'",
        700 * DAY_US
    ))
    .await;
    record_ok(
        &app,
        &app.agent("email"),
        &id,
        json!({"channel": "email", "kind": "feedback", "body": "Hyvä"}),
    )
    .await;
    app.exec(&format!(
        "UPDATE contacts SET last_activity_at = last_activity_at - {} WHERE channel = 'email'",
        100 * DAY_US
    ))
    .await;
    let r = app
        .read_customer(&app.agent("email"), &id, "purpose=support")
        .await;
    assert_eq!(
        r.json["contacts"][0]["channel"], "email",
        "the e-mail address was active 100 days ago: {}",
        r.text
    );
}

async fn bad_interaction_input_gets_its_code_and_stores_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let ok = json!({"channel": "phone", "kind": "complaint", "body": "x"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let cases = [
        (with("channel", json!("pigeon")), "unknown_channel"),
        (with("kind", json!("gossip")), "invalid_request"),
        (with("body", json!("")), "invalid_request"),
        (with("body", json!("   ")), "invalid_request"),
        (with("body", json!("a\u{0}b")), "invalid_request"),
        (with("body", json!("a".repeat(100_001))), "invalid_request"),
        (with("due_at", json!("tomorrow")), "invalid_request"),
        (with("due_at", json!(5)), "invalid_request"),
        (
            with("id", json!("0190b0a0-0000-7000-8000-000000000000")),
            "invalid_request",
        ),
        (
            with("created_at", json!("2020-01-01T00:00:00Z")),
            "invalid_request",
        ),
        (
            json!({"channel": "phone", "kind": "complaint"}),
            "invalid_request",
        ),
        (json!([]), "invalid_request"),
    ];
    for (body, code) in cases {
        record(&app, &phone, &id, body.clone())
            .await
            .assert_problem(400, code);
    }
    let r = app
        .raw(
            Method::POST,
            &format!("/v1/customers/{id}/interactions"),
            Some(&phone),
            "text/plain",
            b"hello".to_vec(),
        )
        .await;
    r.assert_problem(415, "unsupported_media_type");
    record(&app, &app.service(), &id, ok.clone())
        .await
        .assert_problem(403, "forbidden");
    record(
        &app,
        &phone,
        "0190b0a0-0000-7000-8000-000000000000",
        ok.clone(),
    )
    .await
    .assert_problem(404, "not_found");
    record(&app, &phone, "not-a-uuid", ok.clone())
        .await
        .assert_problem(400, "invalid_request");
    assert_eq!(app.count("interactions").await, 0);
    // Newlines and tabs are fine in a body.
    record_ok(
        &app,
        &phone,
        &id,
        with("body", json!("rivi 1\n\trivi 2\r\n")),
    )
    .await;
    assert_eq!(app.count("interactions").await, 1);
}

async fn every_interaction_request_is_audited_without_its_body(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let secret = "Salainen-runko-77813";
    let before = app.audit_count().await;
    let iid = record_ok(
        &app,
        &phone,
        &id,
        json!({"channel": "phone", "kind": "contact_request", "body": secret,
               "due_at": "2026-01-01T00:00:00Z"}),
    )
    .await;
    list_all(&app, &phone, &id).await;
    resolve(&app, &phone, &id, &iid, json!({"resolved": true})).await;
    overdue(&app, &phone).await;
    record(
        &app,
        &app.service(),
        &id,
        json!({"channel": "phone", "kind": "complaint", "body": secret}),
    )
    .await
    .assert_problem(403, "forbidden");
    assert_eq!(app.audit_count().await, before + 5);

    let r = app
        .request(
            Method::GET,
            &format!("/v1/audit?customer_id={id}&limit=100"),
            Some(&app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let entries = r.json["entries"].as_array().unwrap();
    let by_action =
        |a: &str| -> Vec<&Value> { entries.iter().filter(|e| e["action"] == a).collect() };
    let created = by_action("interaction.create");
    assert_eq!(created.len(), 2, "{}", r.text);
    assert_eq!(created[0]["decision"], "allow");
    assert_eq!(created[0]["channel"], "phone");
    assert_eq!(created[0]["detail"]["interaction_id"], iid.as_str());
    assert_eq!(created[0]["detail"]["kind"], "contact_request");
    assert_eq!(created[1]["decision"], "deny");
    let read = by_action("interaction.read");
    assert_eq!(read.len(), 1, "{}", r.text);
    assert_eq!(read[0]["purpose"], "support");
    assert_eq!(
        read[0]["detail"]["released"],
        json!([{"channel": "phone", "reason": "same_channel"}])
    );
    let resolved = by_action("interaction.resolve");
    assert_eq!(resolved.len(), 1, "{}", r.text);
    assert_eq!(resolved[0]["detail"]["interaction_id"], iid.as_str());

    // The promise list is one entry naming the customers it showed.
    let r = app
        .request(
            Method::GET,
            "/v1/audit?action=interaction.read&limit=100",
            Some(&app.compliance()),
            None,
        )
        .await;
    let listing = r.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["customer_id"].is_null())
        .unwrap_or_else(|| panic!("no overdue entry in {}", r.text));
    assert_eq!(listing["detail"]["overdue"], 0, "resolved before listing");

    assert!(
        !app.audit_text().await.contains(secret),
        "an interaction body reached the audit log"
    );
}

/// The attack: a phone agent resolving e-mail interactions whose bodies it
/// cannot see, and recording e-mail interactions (which restarts e-mail's
/// contact retention). Both are 403, audited as deny, and change nothing.
async fn an_agent_records_and_resolves_interactions_only_on_its_own_channel(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let email = app.agent("email");
    let no_channel = app.token(Tok {
        role: arkku::domain::Role::Agent,
        sub: "back-office",
        purposes: &["support"],
        channel: None,
    });
    let complaint = record_ok(
        &app,
        &email,
        &id,
        json!({"channel": "email", "kind": "complaint", "body": "Paketti myöhässä"}),
    )
    .await;
    let activity = "SELECT MAX(last_activity_at) FROM contacts WHERE channel = 'email'";
    let email_activity = app.scalar(activity).await;
    let stored = app.count("interactions").await;
    let audit_before = app.audit_count().await;

    record(
        &app,
        &phone,
        &id,
        json!({"channel": "email", "kind": "feedback", "body": "keksitty"}),
    )
    .await
    .assert_problem(403, "forbidden");
    record(
        &app,
        &no_channel,
        &id,
        json!({"channel": "phone", "kind": "feedback", "body": "keksitty"}),
    )
    .await
    .assert_problem(403, "forbidden");
    resolve(&app, &phone, &id, &complaint, json!({"resolved": true}))
        .await
        .assert_problem(403, "forbidden");
    resolve(
        &app,
        &no_channel,
        &id,
        &complaint,
        json!({"resolved": true}),
    )
    .await
    .assert_problem(403, "forbidden");

    assert_eq!(app.count("interactions").await, stored);
    assert_eq!(
        app.scalar(activity).await,
        email_activity,
        "e-mail's retention did not restart"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM interactions WHERE resolved_at IS NOT NULL")
            .await,
        0,
        "still open"
    );
    let rows = arkku::store::audit::entries_after(app.db(), 0, 1000)
        .await
        .expect("audit");
    // Each refusal names the rule that refused it.
    let denied: Vec<(&str, &str, Option<&str>, Value)> = rows
        .iter()
        .skip(usize::try_from(audit_before).expect("count"))
        .map(|r| {
            let d: Value = serde_json::from_str(&r.detail).expect("detail");
            let rule = d["rule"].clone();
            (
                r.action.as_str(),
                r.decision.as_str(),
                r.channel.as_deref(),
                rule,
            )
        })
        .collect();
    assert_eq!(
        denied,
        [
            (
                "interaction.create",
                "deny",
                Some("email"),
                json!("other_channel")
            ),
            (
                "interaction.create",
                "deny",
                Some("phone"),
                json!("no_channel_context")
            ),
            (
                "interaction.resolve",
                "deny",
                Some("email"),
                json!("other_channel")
            ),
            (
                "interaction.resolve",
                "deny",
                Some("email"),
                json!("no_channel_context")
            ),
        ]
    );
    // The phone agent records on its own channel; the e-mail agent resolves its own.
    record_ok(
        &app,
        &phone,
        &id,
        json!({"channel": "phone", "kind": "feedback", "body": "Kiitos"}),
    )
    .await;
    let r = resolve(&app, &email, &id, &complaint, json!({"resolved": true})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}
