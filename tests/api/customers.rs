//! Creating, reading, updating customers and their contact points.

use arkku::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, Scenario, Tok};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        creating_a_customer_returns_the_masked_profile,
        reading_a_profile_without_consent_withholds_other_channels,
        a_back_office_read_withholds_every_channel_without_consent,
        revealing_needs_a_reason_and_is_audited_as_contact_reveal,
        the_same_value_twice_on_one_channel_is_a_conflict,
        adding_and_removing_a_contact_changes_the_profile,
        patching_sets_and_clears_fields,
        an_unknown_customer_is_not_found,
        the_role_matrix_is_enforced,
        a_read_must_name_a_purpose_the_token_lists,
        every_customer_request_is_audited,
        a_guessed_value_on_a_channel_the_caller_cannot_see_gets_the_same_answer_right_or_wrong,
        an_agent_adds_and_removes_contact_points_only_on_its_own_channel,
        the_openapi_document_describes_the_202_and_the_consent_confirmation,
    ]
}

fn pena() -> serde_json::Value {
    json!({
        "display_name": "Pena Virtanen",
        "external_ref": "CRM-1001",
        "preferred_channel": "phone",
        "contacts": [
            {"channel": "phone", "value": "040 123 4567", "label": "mobile"},
            {"channel": "email", "value": " Pena@Example.com "},
            {"channel": "instagram", "value": "@Pena_V"}
        ]
    })
}

async fn creating_a_customer_returns_the_masked_profile(b: Backend) {
    let app = spawn_app(b).await;
    let r = app.create_customer(&app.service(), pena()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let p = &r.json;
    assert_eq!(p["display_name"], "Pena Virtanen");
    assert_eq!(p["preferred_channel"], "phone");
    let values: Vec<&str> = p["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["+358*******67", "p***@example.com", "pe***"]);
    assert!(p["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["masked"] == true));
    assert!(uuid::Uuid::parse_str(p["id"].as_str().unwrap()).is_ok());
    assert!(
        !r.text.contains("1234567") && !r.text.contains("pena@"),
        "{}",
        r.text
    );
}

async fn reading_a_profile_without_consent_withholds_other_channels(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let r = app
        .read_customer(&app.agent("phone"), &id, "purpose=support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let contacts = r.json["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["channel"], "phone");
    assert_eq!(contacts[0]["value"], "+358*******67");
    assert_eq!(contacts[0]["label"], "mobile");
    let withheld = r.json["withheld"].as_array().unwrap();
    let mut channels: Vec<&str> = withheld
        .iter()
        .map(|w| w["channel"].as_str().unwrap())
        .collect();
    channels.sort();
    assert_eq!(channels, ["email", "instagram"]);
    assert!(withheld.iter().all(|w| w["reason"] == "consent_required"));
    assert!(!r.text.contains("example.com") && !r.text.contains("pe***"));

    // And never the reverse: the e-mail agent sees e-mail, not the phone.
    let r = app
        .read_customer(&app.agent("email"), &id, "purpose=support")
        .await;
    let contacts = r.json["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0]["channel"], "email");
    assert!(!r.text.contains("+358"));
}

async fn a_back_office_read_withholds_every_channel_without_consent(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let r = app
        .read_customer(&app.service(), &id, "purpose=support")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json["contacts"].as_array().unwrap().len(), 0);
    assert_eq!(r.json["withheld"].as_array().unwrap().len(), 3);
    assert_eq!(r.json["display_name"], "Pena Virtanen");
}

async fn revealing_needs_a_reason_and_is_audited_as_contact_reveal(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let agent = app.agent("phone");
    app.read_customer(&agent, &id, "purpose=support&reveal=true")
        .await
        .assert_problem(400, "invalid_request");
    let r = app
        .read_customer(&agent, &id, "purpose=support&reveal=true&reason=TICKET-42")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["contacts"][0]["value"], "+358401234567");
    assert_eq!(r.json["contacts"][0]["masked"], false);
    let audit = app.audit_text().await;
    assert!(
        audit.contains("contact.reveal") && audit.contains("TICKET-42"),
        "{audit}"
    );
    assert!(
        !audit.contains("358401234567"),
        "the audit log holds no contact value"
    );
}

async fn the_same_value_twice_on_one_channel_is_a_conflict(b: Backend) {
    let app = spawn_app(b).await;
    let svc = app.service();
    let id = app.create_customer_ok(&svc, pena()).await;
    // Another spelling of the same number, from the channel's own agent (who
    // may see the channel, so is told).
    app.add_contact(
        &app.agent("phone"),
        &id,
        json!({"channel": "phone", "value": "+358 40 1234567"}),
    )
    .await
    .assert_problem(409, "contact_exists");
    // The same number on another channel is fine.
    let r = app
        .add_contact(
            &app.agent("whatsapp"),
            &id,
            json!({"channel": "whatsapp", "value": "+358401234567"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Twice in one create request.
    app.create_customer(
        &svc,
        json!({"contacts": [
            {"channel": "email", "value": "a@b.fi"}, {"channel": "email", "value": "A@B.FI"}
        ]}),
    )
    .await
    .assert_problem(409, "contact_exists");
}

async fn adding_and_removing_a_contact_changes_the_profile(b: Backend) {
    let app = spawn_app(b).await;
    let svc = app.service();
    let id = app.create_customer_ok(&svc, json!({"contacts": []})).await;
    let r = app
        .add_contact(
            &app.agent("chat"),
            &id,
            json!({"channel": "chat", "value": "visitor-77", "label": "web"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["value"], "***");
    let contact_id = r.json["id"].as_str().unwrap().to_owned();
    let chat = app.agent("chat");
    let p = app.read_customer(&chat, &id, "purpose=support").await;
    assert_eq!(p.json["contacts"][0]["id"], contact_id.as_str());
    let r = app.remove_contact(&svc, &id, &contact_id).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let p = app.read_customer(&chat, &id, "purpose=support").await;
    assert_eq!(p.json["contacts"].as_array().unwrap().len(), 0);
    app.remove_contact(&svc, &id, &contact_id)
        .await
        .assert_problem(404, "not_found");
}

async fn patching_sets_and_clears_fields(b: Backend) {
    let app = spawn_app(b).await;
    let svc = app.service();
    let id = app.create_customer_ok(&svc, pena()).await;
    let r = app
        .patch_customer(
            &svc,
            &id,
            json!({"display_name": "P. Virtanen", "preferred_channel": "email"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let p = app.read_customer(&svc, &id, "purpose=support").await;
    assert_eq!(p.json["display_name"], "P. Virtanen");
    assert_eq!(p.json["preferred_channel"], "email");
    let r = app
        .patch_customer(&svc, &id, json!({"display_name": null}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let p = app.read_customer(&svc, &id, "purpose=support").await;
    assert!(p.json["display_name"].is_null());
    assert_eq!(
        p.json["preferred_channel"], "email",
        "an absent field is left alone"
    );
    app.patch_customer(&svc, &id, json!({"preferred_channel": "pigeon"}))
        .await
        .assert_problem(400, "unknown_channel");
}

async fn an_unknown_customer_is_not_found(b: Backend) {
    let app = spawn_app(b).await;
    let missing = uuid::Uuid::now_v7().to_string();
    let svc = app.service();
    app.read_customer(&svc, &missing, "purpose=support")
        .await
        .assert_problem(404, "not_found");
    app.patch_customer(&svc, &missing, json!({"display_name": "x"}))
        .await
        .assert_problem(404, "not_found");
    app.add_contact(
        &svc,
        &missing,
        json!({"channel": "email", "value": "a@b.fi"}),
    )
    .await
    .assert_problem(404, "not_found");
}

async fn the_role_matrix_is_enforced(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    for role in [Role::Compliance, Role::Customer, Role::Admin] {
        let sub = uuid::Uuid::now_v7().to_string();
        let t = app.token(Tok {
            role,
            sub: &sub,
            purposes: &["support", "dsr"],
            channel: None,
        });
        app.create_customer(&t, pena())
            .await
            .assert_problem(403, "forbidden");
        app.read_customer(&t, &id, "purpose=support")
            .await
            .assert_problem(403, "forbidden");
        app.patch_customer(&t, &id, json!({}))
            .await
            .assert_problem(403, "forbidden");
        app.add_contact(&t, &id, json!({"channel": "email", "value": "x@y.fi"}))
            .await
            .assert_problem(403, "forbidden");
        // Compliance staff may look up, for `dsr` only.
        let lookup = if role == Role::Compliance {
            "purpose_not_allowed"
        } else {
            "forbidden"
        };
        app.lookup(&t, "phone", "0401234567", "support")
            .await
            .assert_problem(403, lookup);
    }
    // Agents may create too.
    let r = app
        .create_customer(
            &app.agent("chat"),
            json!({"contacts": [{"channel": "chat", "value": "v-1"}]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

async fn a_read_must_name_a_purpose_the_token_lists(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let agent = app.agent("phone");
    app.read_customer(&agent, &id, "")
        .await
        .assert_problem(400, "invalid_request");
    app.read_customer(&agent, &id, "purpose=astrology")
        .await
        .assert_problem(400, "unknown_purpose");
    app.read_customer(&agent, &id, "purpose=marketing")
        .await
        .assert_problem(403, "purpose_not_allowed");
    // dsr exists but agents may not act for it, even when the token lists it.
    let t = app.token(Tok {
        role: Role::Agent,
        sub: "a",
        purposes: &["support", "dsr"],
        channel: Some("phone"),
    });
    app.read_customer(&t, &id, "purpose=dsr")
        .await
        .assert_problem(403, "purpose_not_allowed");
}

async fn every_customer_request_is_audited(b: Backend) {
    let app = spawn_app(b).await;
    let svc = app.service();
    let before = app.audit_count().await;
    let id = app.create_customer_ok(&svc, pena()).await;
    app.read_customer(&app.agent("phone"), &id, "purpose=support")
        .await;
    app.read_customer(&app.agent("phone"), &id, "purpose=marketing")
        .await; // denied
    app.patch_customer(&svc, &id, json!({"display_name": "X"}))
        .await;
    app.request(
        Method::POST,
        "/v1/lookup",
        Some(&svc),
        Some(json!({"channel": "phone", "value": "0401234567", "purpose": "support"})),
    )
    .await;
    assert_eq!(app.audit_count().await - before, 5);
    let text = app.audit_text().await;
    assert!(
        text.contains("purpose_not_allowed"),
        "denials carry their code"
    );
    for canary in [
        "Pena",
        "Virtanen",
        "CRM-1001",
        "358401234567",
        "401234567",
        "example.com",
        "pena_v",
    ] {
        assert!(!text.contains(canary), "audit log leaks {canary}");
    }
}

/// The `contact.add` audit entries' details, oldest first.
async fn contact_add_details(app: &crate::helpers::TestApp) -> Vec<Value> {
    arkku::store::audit::entries_after(app.db(), 0, 1000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|r| r.action == "contact.add")
        .map(|r| serde_json::from_str(&r.detail).expect("detail"))
        .collect()
}

/// The attack: guessing an e-mail address through 409 `contact_exists`. A
/// caller who may not see the channel (a phone agent, or the service without
/// the customer's cross_channel consent) gets the same 202, without an id,
/// whether the guess was right or not; the audit entry records the truth.
async fn a_guessed_value_on_a_channel_the_caller_cannot_see_gets_the_same_answer_right_or_wrong(
    b: Backend,
) {
    let app = spawn_app(b).await;
    let svc = app.service();
    let id = app.create_customer_ok(&svc, pena()).await;
    let contacts_before = app.count("contacts").await;

    let right = app
        .add_contact(
            &svc,
            &id,
            json!({"channel": "email", "value": "pena@example.com"}),
        )
        .await;
    let wrong = app
        .add_contact(
            &svc,
            &id,
            json!({"channel": "email", "value": "pentti@example.com"}),
        )
        .await;
    for r in [&right, &wrong] {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        assert!(r.json.get("id").is_none(), "{}", r.text);
    }
    assert_eq!(right.json, wrong.json);
    assert_eq!(
        right.json,
        json!({"channel": "email", "status": "accepted"})
    );
    assert_eq!(
        app.count("contacts").await,
        contacts_before + 1,
        "the new value was stored, the known one not twice"
    );
    let details = contact_add_details(&app).await;
    assert_eq!(details.len(), 2);
    assert_eq!(details[0]["outcome"], "duplicate", "{:?}", details);
    assert_eq!(details[0]["channel_visible"], false);
    assert!(details[0].get("contact_id").is_none());
    assert_eq!(details[1]["outcome"], "added", "{:?}", details);

    // With the customer's consent the service may see e-mail: it is told.
    let r = app
        .request(
            Method::POST,
            &format!("/v1/customers/{id}/consents"),
            Some(&app.compliance()),
            Some(json!({"purpose": "cross_channel", "channel": "email", "action": "grant",
                        "method": "written", "evidence": {"notice_id": "n", "notice_version": "1"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.add_contact(
        &svc,
        &id,
        json!({"channel": "email", "value": "PENA@example.com"}),
    )
    .await
    .assert_problem(409, "contact_exists");
    let r = app
        .add_contact(
            &svc,
            &id,
            json!({"channel": "email", "value": "virtanen@example.com"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.json["value"], "v***@example.com");
    let details = contact_add_details(&app).await;
    assert_eq!(details[2]["outcome"], "duplicate");
    assert_eq!(details[2]["channel_visible"], true);
    assert_eq!(details[3]["outcome"], "added");
}

async fn an_agent_adds_and_removes_contact_points_only_on_its_own_channel(b: Backend) {
    let app = spawn_app(b).await;
    let svc = app.service();
    let created = app.create_customer(&svc, pena()).await;
    let id = created.json["id"].as_str().expect("id").to_owned();
    let email_contact = created.json["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .find(|c| c["channel"] == "email")
        .expect("email contact")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let phone = app.agent("phone");
    let no_channel = app.token(Tok {
        role: Role::Agent,
        sub: "back-office",
        purposes: &["support"],
        channel: None,
    });
    let contacts_before = app.count("contacts").await;
    let audit_before = app.audit_count().await;

    app.add_contact(
        &phone,
        &id,
        json!({"channel": "email", "value": "guess@example.com"}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.remove_contact(&phone, &id, &email_contact)
        .await
        .assert_problem(403, "forbidden");
    app.add_contact(
        &no_channel,
        &id,
        json!({"channel": "phone", "value": "040 765 4321"}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.remove_contact(&no_channel, &id, &email_contact)
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        app.count("contacts").await,
        contacts_before,
        "nothing changed"
    );
    let denied: Vec<(String, Option<String>, Value)> =
        arkku::store::audit::entries_after(app.db(), 0, 1000)
            .await
            .expect("audit")
            .into_iter()
            .skip(usize::try_from(audit_before).expect("count"))
            .map(|r| {
                assert_eq!(r.decision, "deny", "{r:?}");
                let d: Value = serde_json::from_str(&r.detail).expect("detail");
                (r.action, r.channel, d["rule"].clone())
            })
            .collect();
    assert_eq!(
        denied,
        [
            (
                "contact.add".into(),
                Some("email".into()),
                json!("other_channel")
            ),
            (
                "contact.remove".into(),
                Some("email".into()),
                json!("other_channel")
            ),
            (
                "contact.add".into(),
                Some("phone".into()),
                json!("no_channel_context")
            ),
            (
                "contact.remove".into(),
                Some("email".into()),
                json!("no_channel_context")
            ),
        ]
    );

    // Its own channel is its to keep; the service keeps every channel.
    let r = app
        .add_contact(
            &phone,
            &id,
            json!({"channel": "phone", "value": "040 765 4321"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app.remove_contact(&svc, &id, &email_contact).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
}

async fn the_openapi_document_describes_the_202_and_the_consent_confirmation(b: Backend) {
    let app = spawn_app(b).await;
    let doc = app.request(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let add = &doc.json["paths"]["/v1/customers/{id}/contacts"]["post"]["responses"];
    for status in ["201", "202", "403", "409"] {
        assert!(
            add.get(status).is_some(),
            "contacts POST lacks {status}: {add}"
        );
    }
    let schemas = &doc.json["components"]["schemas"];
    assert!(schemas.get("AcceptedContact").is_some());
    let confirm = &schemas["ConfirmBody"]["properties"];
    assert!(confirm.get("consent_id").is_some(), "{confirm}");
    let receipt = &schemas["Receipt"]["properties"];
    for field in ["status", "confirms", "review"] {
        assert!(receipt.get(field).is_some(), "Receipt lacks {field}");
    }
}
