//! The consent ledger and its effect on what each channel's agent sees.

use arkku::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, Reply, Scenario, TestApp, Tok};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_cross_channel_grant_lets_that_channel_into_another_agents_view,
        a_withdrawal_takes_effect_on_the_next_read_with_its_reason,
        a_channel_specific_withdrawal_wins_over_a_wildcard_grant,
        a_grant_needs_evidence_and_a_consent_based_purpose,
        a_consent_past_its_expiry_has_lapsed,
        the_customer_manages_their_own_consents_and_sees_the_ledger,
        a_customer_token_reaches_only_its_own_ledger,
        lookups_follow_consent_too,
        every_consent_change_is_audited_with_its_purpose_and_channel,
        an_agents_own_grant_opens_nothing_until_the_customer_confirms_it,
        only_the_roles_the_policy_names_record_consent_and_an_agent_only_with_its_channel,
        a_withdrawal_by_an_agent_takes_effect_at_once_and_closes_a_pending_grant,
        a_malformed_customer_consent_body_is_refused_without_echoing_its_values,
    ]
}

fn pena() -> Value {
    json!({"display_name": "Pena", "contacts": [
        {"channel": "phone", "value": "040 123 4567"},
        {"channel": "email", "value": "pena@example.com"},
        {"channel": "instagram", "value": "@pena_v"}
    ]})
}

fn evidence() -> Value {
    json!({"notice_id": "privacy-2026", "notice_version": "3"})
}

async fn consent(app: &TestApp, token: &str, path: &str, body: Value) -> Reply {
    app.request(Method::POST, path, Some(token), Some(body))
        .await
}

fn grant(purpose: &str, channel: &str) -> Value {
    json!({"purpose": purpose, "channel": channel, "action": "grant", "method": "spoken", "evidence": evidence()})
}

fn withdraw(purpose: &str, channel: &str) -> Value {
    json!({"purpose": purpose, "channel": channel, "action": "withdraw", "method": "spoken"})
}

/// The customer confirms the pending grant `consent_id` an agent recorded.
async fn confirm(app: &TestApp, id: &str, consent_id: &Value) -> Reply {
    consent(
        app,
        &app.customer(id),
        "/v1/me/consents",
        json!({"action": "confirm", "consent_id": consent_id}),
    )
    .await
}

/// An agent records a grant the customer gave, and the customer confirms it.
async fn grant_confirmed(app: &TestApp, agent: &str, id: &str, body: Value) {
    let pending = consent(app, agent, &format!("/v1/customers/{id}/consents"), body).await;
    assert_eq!(pending.status, StatusCode::CREATED, "{}", pending.text);
    assert_eq!(
        pending.json["status"], "pending_confirmation",
        "{}",
        pending.text
    );
    let r = confirm(app, id, &pending.json["consent_id"]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

fn channels(r: &Reply) -> Vec<String> {
    r.json["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| c["channel"].as_str().expect("channel").to_owned())
        .collect()
}

fn withheld(r: &Reply, channel: &str) -> Option<String> {
    r.json["withheld"]
        .as_array()
        .expect("withheld")
        .iter()
        .find(|w| w["channel"] == channel)
        .map(|w| w["reason"].as_str().expect("reason").to_owned())
}

async fn a_cross_channel_grant_lets_that_channel_into_another_agents_view(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(channels(&r), ["phone"]);
    let receipt = consent(
        &app,
        &phone,
        &format!("/v1/customers/{id}/consents"),
        grant("cross_channel", "email"),
    )
    .await;
    assert_eq!(receipt.status, StatusCode::CREATED, "{}", receipt.text);
    for field in [
        "consent_id",
        "customer_id",
        "purpose",
        "channel",
        "action",
        "at",
        "evidence",
    ] {
        assert!(
            !receipt.json[field].is_null(),
            "receipt lacks {field}: {}",
            receipt.text
        );
    }
    assert_eq!(receipt.json["customer_id"], id.as_str());
    let r = confirm(&app, &id, &receipt.json["consent_id"]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(channels(&r), ["phone", "email"]);
    assert_eq!(r.json["contacts"][1]["value"], "p***@example.com");
    assert_eq!(
        withheld(&r, "instagram").as_deref(),
        Some("consent_required"),
        "only email was granted"
    );
    // A back-office read sees the consented channel too, and only it.
    let r = app
        .read_customer(&app.service(), &id, "purpose=support")
        .await;
    assert_eq!(channels(&r), ["email"]);
}

async fn a_withdrawal_takes_effect_on_the_next_read_with_its_reason(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let path = format!("/v1/customers/{id}/consents");
    grant_confirmed(&app, &phone, &id, grant("cross_channel", "*")).await;
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(channels(&r), ["phone", "email", "instagram"]);
    let w = consent(&app, &phone, &path, withdraw("cross_channel", "*")).await;
    assert_eq!(w.status, StatusCode::CREATED, "{}", w.text);
    assert_eq!(w.json["action"], "withdraw");
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(channels(&r), ["phone"]);
    assert_eq!(withheld(&r, "email").as_deref(), Some("consent_withdrawn"));
}

async fn a_channel_specific_withdrawal_wins_over_a_wildcard_grant(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let path = format!("/v1/customers/{id}/consents");
    consent(&app, &phone, &path, withdraw("cross_channel", "instagram")).await;
    grant_confirmed(&app, &phone, &id, grant("cross_channel", "*")).await; // later, but "*"
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(channels(&r), ["phone", "email"]);
    assert_eq!(
        withheld(&r, "instagram").as_deref(),
        Some("consent_withdrawn")
    );
}

async fn a_grant_needs_evidence_and_a_consent_based_purpose(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let path = format!("/v1/customers/{id}/consents");
    let before = app.audit_count().await;
    let mut no_evidence = grant("cross_channel", "email");
    no_evidence
        .as_object_mut()
        .expect("object")
        .remove("evidence");
    consent(&app, &phone, &path, no_evidence)
        .await
        .assert_problem(400, "invalid_request");
    consent(&app, &phone, &path, grant("support", "email"))
        .await
        .assert_problem(400, "invalid_request");
    consent(&app, &phone, &path, grant("astrology", "email"))
        .await
        .assert_problem(400, "unknown_purpose");
    consent(&app, &phone, &path, grant("cross_channel", "pigeon"))
        .await
        .assert_problem(400, "unknown_channel");
    let mut odd = grant("cross_channel", "email");
    odd["action"] = json!("maybe");
    consent(&app, &phone, &path, odd)
        .await
        .assert_problem(400, "invalid_request");
    let mut past = grant("cross_channel", "email");
    past["expires_at"] = json!("2000-01-01T00:00:00Z");
    consent(&app, &phone, &path, past)
        .await
        .assert_problem(400, "invalid_request");
    // Service tokens may not record consent; unknown customers are 404.
    consent(&app, &app.service(), &path, grant("cross_channel", "email"))
        .await
        .assert_problem(403, "forbidden");
    let missing = uuid::Uuid::now_v7();
    consent(
        &app,
        &phone,
        &format!("/v1/customers/{missing}/consents"),
        grant("cross_channel", "email"),
    )
    .await
    .assert_problem(404, "not_found");
    let r = app.request(Method::GET, &path, Some(&phone), None).await;
    assert_eq!(
        r.json["history"].as_array().expect("history").len(),
        0,
        "nothing was recorded"
    );
    assert_eq!(
        app.audit_count().await - before,
        9,
        "every attempt is audited"
    );
}

async fn a_consent_past_its_expiry_has_lapsed(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let path = format!("/v1/customers/{id}/consents");
    let in_an_hour = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    let mut g = grant("cross_channel", "email");
    g["expires_at"] = json!(arkku::domain::time::rfc3339(in_an_hour));
    grant_confirmed(&app, &phone, &id, g).await;
    assert_eq!(
        channels(&app.read_customer(&phone, &id, "purpose=support").await),
        ["phone", "email"]
    );
    // Two hours pass for the ledger: every event of it moves two hours back
    // (the read path takes its time from the system clock, not the test
    // clock, so the ledger moves instead of the clock; no sleeping either way).
    let two_hours_us = 2 * 3600 * 1_000_000_i64;
    app.exec(&format!(
        "UPDATE consents SET at = at - {two_hours_us}, expires_at = expires_at - {two_hours_us}"
    ))
    .await;
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(channels(&r), ["phone"]);
    assert_eq!(withheld(&r, "email").as_deref(), Some("consent_lapsed"));
    let ledger = app.request(Method::GET, &path, Some(&phone), None).await;
    assert_eq!(
        ledger.json["current"][0]["status"], "lapsed",
        "{}",
        ledger.text
    );
}

async fn the_customer_manages_their_own_consents_and_sees_the_ledger(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let me = app.token(Tok {
        role: Role::Customer,
        sub: &id,
        purposes: &[],
        channel: None,
    });
    let r = consent(&app, &me, "/v1/me/consents", grant("marketing", "email")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = consent(&app, &me, "/v1/me/consents", withdraw("marketing", "email")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let ledger = app
        .request(Method::GET, "/v1/me/consents", Some(&me), None)
        .await;
    assert_eq!(ledger.status, StatusCode::OK, "{}", ledger.text);
    assert_eq!(
        ledger.json["current"],
        json!([{"purpose": "marketing", "channel": "email", "status": "withdrawn",
                "pending_consent_id": null}])
    );
    let history = ledger.json["history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["action"], "grant");
    assert_eq!(history[0]["evidence"], evidence());
    assert_eq!(history[0]["recorded_by"], "customer");
    assert_eq!(history[1]["action"], "withdraw");
    // Staff see the same ledger.
    let staff = app
        .request(
            Method::GET,
            &format!("/v1/customers/{id}/consents"),
            Some(&app.agent("email")),
            None,
        )
        .await;
    assert_eq!(staff.json["history"], ledger.json["history"]);
}

async fn a_customer_token_reaches_only_its_own_ledger(b: Backend) {
    let app = spawn_app(b).await;
    let mine = app.create_customer_ok(&app.service(), pena()).await;
    let other = app
        .create_customer_ok(&app.service(), json!({"contacts": []}))
        .await;
    let me = app.token(Tok {
        role: Role::Customer,
        sub: &mine,
        purposes: &[],
        channel: None,
    });
    // The customer endpoints of staff are not theirs.
    app.request(
        Method::GET,
        &format!("/v1/customers/{other}/consents"),
        Some(&me),
        None,
    )
    .await
    .assert_problem(403, "forbidden");
    consent(
        &app,
        &me,
        &format!("/v1/customers/{other}/consents"),
        grant("cross_channel", "email"),
    )
    .await
    .assert_problem(403, "forbidden");
    // Staff tokens may not use /v1/me.
    app.request(
        Method::GET,
        "/v1/me/consents",
        Some(&app.agent("phone")),
        None,
    )
    .await
    .assert_problem(403, "forbidden");
    // A customer token for a customer that does not exist finds nothing.
    let ghost = uuid::Uuid::now_v7().to_string();
    let t = app.token(Tok {
        role: Role::Customer,
        sub: &ghost,
        purposes: &[],
        channel: None,
    });
    app.request(Method::GET, "/v1/me/consents", Some(&t), None)
        .await
        .assert_problem(404, "not_found");
}

async fn lookups_follow_consent_too(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let email_agent = app.agent("email");
    app.lookup(&email_agent, "phone", "0401234567", "support")
        .await
        .assert_problem(404, "not_found");
    // The agent's own grant finds nothing until the customer confirms it.
    let pending = consent(
        &app,
        &email_agent,
        &format!("/v1/customers/{id}/consents"),
        grant("cross_channel", "phone"),
    )
    .await;
    app.lookup(&email_agent, "phone", "0401234567", "support")
        .await
        .assert_problem(404, "not_found");
    let r = confirm(&app, &id, &pending.json["consent_id"]).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .lookup(&email_agent, "phone", "0401234567", "support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["matches"][0]["customer_id"], id.as_str());
}

async fn every_consent_change_is_audited_with_its_purpose_and_channel(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let path = format!("/v1/customers/{id}/consents");
    consent(&app, &phone, &path, grant("cross_channel", "email")).await;
    consent(&app, &phone, &path, withdraw("cross_channel", "email")).await;
    let rows = arkku::store::audit::entries_after(app.db(), 0, 100)
        .await
        .expect("audit");
    let changes: Vec<_> = rows
        .iter()
        .filter(|r| r.action.starts_with("consent."))
        .map(|r| {
            (
                r.action.as_str(),
                r.decision.as_str(),
                r.purpose.as_deref(),
                r.channel.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        changes,
        [
            (
                "consent.grant",
                "allow",
                Some("cross_channel"),
                Some("email")
            ),
            (
                "consent.withdraw",
                "allow",
                Some("cross_channel"),
                Some("email")
            ),
        ]
    );
    let text = app.audit_text().await;
    for canary in ["pena@example.com", "358401234567", "Pena"] {
        assert!(!text.contains(canary), "the audit log holds {canary}");
    }
}

/// The attack: a phone agent attests a made-up consent for every channel and
/// reads the e-mail at once. Now the grant waits for the customer, opens
/// nothing meanwhile (profile, interactions, lookup), is flagged for review
/// in the ledger and the audit entry, and takes effect when confirmed.
async fn an_agents_own_grant_opens_nothing_until_the_customer_confirms_it(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let email_agent = app.agent("email");
    let r = app
        .request(
            Method::POST,
            &format!("/v1/customers/{id}/interactions"),
            Some(&email_agent),
            Some(json!({"channel": "email", "kind": "complaint", "body": "Paketti myöhässä"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let path = format!("/v1/customers/{id}/consents");

    let receipt = consent(&app, &phone, &path, grant("cross_channel", "*")).await;
    assert_eq!(receipt.status, StatusCode::CREATED, "{}", receipt.text);
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(channels(&r), ["phone"], "{}", r.text);
    assert_eq!(withheld(&r, "email").as_deref(), Some("consent_required"));
    assert_eq!(
        receipt.json["status"], "pending_confirmation",
        "{}",
        receipt.text
    );
    assert_eq!(receipt.json["review"], "agent_recorded", "{}", receipt.text);
    let pending_id = receipt.json["consent_id"].clone();
    let r = app
        .request(
            Method::GET,
            &format!("/v1/customers/{id}/interactions?purpose=support"),
            Some(&phone),
            None,
        )
        .await;
    assert!(!r.text.contains("Paketti"), "{}", r.text);
    app.lookup(&phone, "email", "pena@example.com", "support")
        .await
        .assert_problem(404, "not_found");

    // The customer sees what waits for them, and the ledger flags it.
    let mine = app
        .request(
            Method::GET,
            "/v1/me/consents",
            Some(&app.customer(&id)),
            None,
        )
        .await;
    assert_eq!(
        mine.json["current"],
        json!([{"purpose": "cross_channel", "channel": "*",
                "status": "pending_confirmation", "pending_consent_id": pending_id}]),
        "{}",
        mine.text
    );
    let history = &mine.json["history"];
    assert_eq!(history[0]["status"], "pending_confirmation");
    assert_eq!(history[0]["review"], "agent_recorded");
    assert_eq!(history[0]["source_channel"], "phone");
    let entry = arkku::store::audit::entries_after(app.db(), 0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .find(|r| r.action == "consent.grant")
        .expect("the grant is audited");
    let detail: Value = serde_json::from_str(&entry.detail).expect("detail");
    assert_eq!(detail["review"], "agent_recorded", "{detail}");
    assert_eq!(detail["status"], "pending_confirmation", "{detail}");

    // The agent cannot confirm for the customer.
    consent(
        &app,
        &phone,
        "/v1/me/consents",
        json!({"action": "confirm", "consent_id": pending_id}),
    )
    .await
    .assert_problem(403, "forbidden");

    let confirmed = confirm(&app, &id, &pending_id).await;
    assert_eq!(confirmed.status, StatusCode::CREATED, "{}", confirmed.text);
    assert_eq!(confirmed.json["status"], "effective");
    assert_eq!(confirmed.json["confirms"], pending_id);
    assert_eq!(confirmed.json["evidence"], evidence());
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(channels(&r), ["phone", "email", "instagram"], "{}", r.text);
    let r = app
        .request(
            Method::GET,
            &format!("/v1/customers/{id}/interactions?purpose=support"),
            Some(&phone),
            None,
        )
        .await;
    assert!(r.text.contains("Paketti"), "{}", r.text);

    // Append-only: the pending grant stays as it was, the confirmation is
    // its own event; a second confirmation finds nothing pending.
    let ledger = app.request(Method::GET, &path, Some(&phone), None).await;
    let history = ledger.json["history"].as_array().expect("history");
    assert_eq!(history.len(), 2, "{}", ledger.text);
    assert_eq!(history[0]["status"], "pending_confirmation");
    assert_eq!(history[1]["status"], "effective");
    assert_eq!(history[1]["confirms"], pending_id);
    assert_eq!(history[1]["recorded_by"], "customer");
    assert_eq!(
        ledger.json["current"],
        json!([{"purpose": "cross_channel", "channel": "*", "status": "granted",
                "pending_consent_id": null}])
    );
    confirm(&app, &id, &pending_id)
        .await
        .assert_problem(409, "consent_not_pending");
    confirm(&app, &id, &json!(uuid::Uuid::now_v7().to_string()))
        .await
        .assert_problem(404, "not_found");
    // The export shows the status too.
    let export = app
        .request(Method::GET, "/v1/me/export", Some(&app.customer(&id)), None)
        .await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    assert_eq!(export.json["consents"][0]["status"], "pending_confirmation");
    assert_eq!(export.json["consents"][0]["review"], "agent_recorded");
    assert_eq!(export.json["consents"][1]["confirms"], pending_id);
}

async fn only_the_roles_the_policy_names_record_consent_and_an_agent_only_with_its_channel(
    b: Backend,
) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let path = format!("/v1/customers/{id}/consents");
    let no_channel = app.token(Tok {
        role: Role::Agent,
        sub: "back-office",
        purposes: &["support"],
        channel: None,
    });
    let before = app.audit_count().await;
    for body in [grant("cross_channel", "*"), withdraw("cross_channel", "*")] {
        consent(&app, &no_channel, &path, body)
            .await
            .assert_problem(403, "forbidden");
    }
    consent(&app, &app.service(), &path, grant("cross_channel", "*"))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        app.audit_count().await - before,
        3,
        "every refusal is audited"
    );
    let denied = arkku::store::audit::entries_after(app.db(), 0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|r| r.action.starts_with("consent.") && r.decision == "deny")
        .count();
    assert_eq!(denied, 3);
    let ledger = app
        .request(Method::GET, &path, Some(&app.agent("phone")), None)
        .await;
    assert_eq!(ledger.json["history"], json!([]), "{}", ledger.text);

    // Compliance acts on a documented request and reads nothing through the
    // integration rule: its grant takes effect at once, unflagged.
    let r = consent(
        &app,
        &app.compliance(),
        &path,
        grant("cross_channel", "email"),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["status"], "effective");
    assert!(r.json["review"].is_null(), "{}", r.text);
    let r = app
        .read_customer(&app.agent("phone"), &id, "purpose=support")
        .await;
    assert_eq!(channels(&r), ["phone", "email"]);
}

async fn a_withdrawal_by_an_agent_takes_effect_at_once_and_closes_a_pending_grant(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let phone = app.agent("phone");
    let path = format!("/v1/customers/{id}/consents");
    let r = consent(
        &app,
        &app.customer(&id),
        "/v1/me/consents",
        grant("cross_channel", "email"),
    )
    .await;
    assert_eq!(r.json["status"], "effective", "{}", r.text);
    assert_eq!(
        channels(&app.read_customer(&phone, &id, "purpose=support").await),
        ["phone", "email"]
    );
    let w = consent(&app, &phone, &path, withdraw("cross_channel", "email")).await;
    assert_eq!(w.status, StatusCode::CREATED, "{}", w.text);
    assert_eq!(w.json["status"], "effective");
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(withheld(&r, "email").as_deref(), Some("consent_withdrawn"));

    // A pending grant withdrawn before the customer confirms cannot be
    // confirmed any more.
    let pending = consent(&app, &phone, &path, grant("cross_channel", "email")).await;
    assert_eq!(pending.json["status"], "pending_confirmation");
    consent(&app, &phone, &path, withdraw("cross_channel", "email")).await;
    confirm(&app, &id, &pending.json["consent_id"])
        .await
        .assert_problem(409, "consent_not_pending");
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(withheld(&r, "email").as_deref(), Some("consent_withdrawn"));
}

async fn a_malformed_customer_consent_body_is_refused_without_echoing_its_values(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let me = app.customer(&id);
    let before = app.count("consents").await;
    for body in [
        json!({"action": "confirm", "consent_id": "pena@example.com"}),
        json!({"action": "confirm", "consent_id": 358_401_234_567_u64}),
        json!({"action": "confirm"}),
        json!({"action": "confirm", "consent_id": uuid::Uuid::now_v7(), "purpose": "x"}),
        json!({"purpose": "cross_channel", "channel": 358_401_234_567_u64, "action": "grant",
               "method": "spoken", "evidence": evidence()}),
    ] {
        let r = consent(&app, &me, "/v1/me/consents", body).await;
        r.assert_problem(400, "invalid_request");
        for secret in ["pena@example.com", "358401234567"] {
            assert!(!r.text.contains(secret), "{}", r.text);
        }
    }
    assert_eq!(app.count("consents").await, before, "nothing was recorded");
}
