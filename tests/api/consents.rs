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
    consent(&app, &phone, &path, grant("cross_channel", "*")).await;
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
    consent(&app, &phone, &path, grant("cross_channel", "*")).await; // later, but "*"
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
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let mut g = grant("cross_channel", "email");
    g["expires_at"] = json!(soon
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format"));
    assert_eq!(
        consent(&app, &phone, &path, g).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        channels(&app.read_customer(&phone, &id, "purpose=support").await),
        ["phone", "email"]
    );
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
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
        json!([{"purpose": "marketing", "channel": "email", "status": "withdrawn"}])
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
    consent(
        &app,
        &email_agent,
        &format!("/v1/customers/{id}/consents"),
        grant("cross_channel", "phone"),
    )
    .await;
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
