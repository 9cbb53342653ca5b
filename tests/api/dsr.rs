//! Data subject rights: the customer's own view, export (JSON, validated
//! against the published schema; the ZIP has its own module, `export_zip`)
//! and erasure by crypto-shredding.

use arkku::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, Reply, Scenario, TestApp, Tok};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_customer_sees_their_own_profile_unmasked_and_nobody_elses,
        an_export_holds_everything_on_the_customer_and_nothing_of_another,
        only_the_customer_and_dsr_staff_may_export,
        erasure_shreds_the_customer_and_a_second_erasure_changes_nothing,
        a_customer_erases_themselves,
        staff_erasure_needs_a_case_reference_and_records_it,
    ]
}

const SHARED_PHONE: &str = "040 765 4321";

fn pena() -> Value {
    json!({"display_name": "Pena Export", "external_ref": "CRM-77", "preferred_channel": "email",
           "contacts": [
        {"channel": "phone", "value": SHARED_PHONE, "label": "koti"},
        {"channel": "email", "value": "pena.export@example.com"},
        {"channel": "instagram", "value": "@pena_export"}
    ]})
}

/// Another customer with the same (household) phone number.
fn liisa() -> Value {
    json!({"display_name": "Liisa Naapuri", "contacts": [
        {"channel": "phone", "value": SHARED_PHONE},
        {"channel": "email", "value": "liisa.naapuri@example.com"}
    ]})
}

fn dsr_staff(app: &TestApp) -> String {
    app.compliance()
}

async fn get(app: &TestApp, token: &str, path: &str) -> Reply {
    app.request(Method::GET, path, Some(token), None).await
}

async fn delete(app: &TestApp, token: &str, path: &str) -> Reply {
    app.request(Method::DELETE, path, Some(token), None).await
}

async fn interaction(app: &TestApp, id: &str, channel: &str, kind: &str, body: &str) -> String {
    let r = app
        .request(
            Method::POST,
            &format!("/v1/customers/{id}/interactions"),
            Some(&app.agent(channel)),
            Some(json!({"channel": channel, "kind": kind, "body": body})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json["id"].as_str().unwrap().to_owned()
}

fn assert_valid_export(bundle: &Value) {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs/arkku-export-1.schema.json"),
        )
        .expect("schema file"),
    )
    .expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(bundle)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "export violates its schema: {errors:#?}\n{bundle:#}"
    );
}

async fn a_customer_sees_their_own_profile_unmasked_and_nobody_elses(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let other = app.create_customer_ok(&app.service(), liisa()).await;
    let r = get(&app, &app.customer(&id), "/v1/me").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["id"], id.as_str());
    assert_eq!(r.json["display_name"], "Pena Export");
    let values: Vec<(&str, &str, bool)> = r.json["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().unwrap(),
                c["value"].as_str().unwrap(),
                c["masked"].as_bool().unwrap(),
            )
        })
        .collect();
    // Every channel, unmasked: it is the customer's own data, no consent needed.
    assert_eq!(
        values,
        [
            ("phone", "+358407654321", false),
            ("email", "pena.export@example.com", false),
            ("instagram", "pena_export", false)
        ]
    );
    assert_eq!(r.json["withheld"], json!([]));
    assert!(!r.text.contains("Liisa") && !r.text.contains(&other));
    // Staff do not use /v1/me.
    get(&app, &app.agent("phone"), "/v1/me")
        .await
        .assert_problem(403, "forbidden");
    get(
        &app,
        &app.customer("0190b0a0-0000-7000-8000-000000000000"),
        "/v1/me",
    )
    .await
    .assert_problem(404, "not_found");
}

async fn an_export_holds_everything_on_the_customer_and_nothing_of_another(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let other = app.create_customer_ok(&app.service(), liisa()).await;
    let call = interaction(
        &app,
        &id,
        "phone",
        "contact_request",
        "Soittopyyntö laskusta",
    )
    .await;
    interaction(&app, &id, "email", "complaint", "Valitus toimituksesta").await;
    interaction(&app, &other, "phone", "complaint", "Naapurin oma valitus").await;
    let r = app
        .request(
            Method::POST,
            &format!("/v1/customers/{id}/consents"),
            Some(&app.compliance()),
            Some(json!({"purpose": "cross_channel", "channel": "email", "action": "grant",
                        "method": "spoken", "evidence": {"notice_id": "privacy", "notice_version": "7"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    app.read_customer(&app.agent("phone"), &id, "purpose=support")
        .await;
    app.read_customer(&app.agent("phone"), &other, "purpose=support")
        .await;
    // The shared number finds both; the export of one must not name the other.
    let r = app
        .lookup(&app.agent("phone"), "phone", SHARED_PHONE, "support")
        .await;
    assert_eq!(r.json["matches"].as_array().unwrap().len(), 2, "{}", r.text);

    let mine = get(&app, &app.customer(&id), "/v1/me/export").await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
    let staff = get(
        &app,
        &dsr_staff(&app),
        &format!("/v1/customers/{id}/export?purpose=dsr&reason=DSR-2026-14"),
    )
    .await;
    assert_eq!(staff.status, StatusCode::OK, "{}", staff.text);

    for r in [&mine, &staff] {
        let e = &r.json;
        assert_valid_export(e);
        assert_eq!(e["format"], "arkku-export/1");
        assert_eq!(e["customer"]["id"], id.as_str());
        assert_eq!(e["customer"]["display_name"], "Pena Export");
        assert_eq!(e["customer"]["external_ref"], "CRM-77");
        let contacts: Vec<(&str, &str)> = e["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["channel"].as_str().unwrap(), c["value"].as_str().unwrap()))
            .collect();
        assert_eq!(
            contacts,
            [
                ("phone", "+358407654321"),
                ("email", "pena.export@example.com"),
                ("instagram", "pena_export")
            ]
        );
        assert_eq!(e["contacts"][0]["label"], "koti");
        let bodies: Vec<&str> = e["interactions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["body"].as_str().unwrap())
            .collect();
        assert_eq!(bodies, ["Soittopyyntö laskusta", "Valitus toimituksesta"]);
        assert_eq!(e["consents"][0]["evidence"]["notice_version"], "7");
        assert_eq!(e["consents"][0]["method"], "spoken");
        // The access log: every audit entry about this customer.
        let actions: Vec<&str> = e["access_log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        for expected in [
            "customer.create",
            "interaction.create",
            "consent.grant",
            "customer.read",
        ] {
            assert!(
                actions.contains(&expected),
                "{expected} missing from {actions:?}"
            );
        }
        let read = e["access_log"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["action"] == "customer.read")
            .unwrap();
        assert_eq!(read["role"], "agent");
        assert_eq!(read["purpose"], "support");
        assert_eq!(read["decision"], "allow");
        // Retention: a date for each contact point, interaction and consent.
        let retention = e["retention"].as_array().unwrap();
        assert_eq!(retention.len(), 3 + 2 + 1, "{retention:#?}");
        let of = |item_id: &str| {
            retention
                .iter()
                .find(|r| r["id"] == item_id)
                .unwrap_or_else(|| panic!("no retention for {item_id}"))
        };
        let due = of(&call)["delete_after"].as_str().unwrap();
        assert!(due > e["exported_at"].as_str().unwrap(), "{due}");
        // Nothing of the other customer, though they share a phone number.
        for foreign in [other.as_str(), "Liisa", "liisa.naapuri", "Naapurin"] {
            assert!(
                !r.text.contains(foreign),
                "the export names {foreign}: {}",
                r.text
            );
        }
    }
    // The staff export's own audit entry.
    assert!(
        staff.json["access_log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["action"] == "export" && a["role"] == "customer"),
        "the customer's own export is in the staff export's access log"
    );
    let text = app.audit_text().await;
    assert!(
        text.contains("DSR-2026-14"),
        "the request's reason is audited"
    );
    assert!(!text.contains("Soittopyyntö"), "no body in the audit log");
}

async fn only_the_customer_and_dsr_staff_may_export(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let path = |q: &str| format!("/v1/customers/{id}/export{q}");
    let staff = dsr_staff(&app);
    get(&app, &staff, &path(""))
        .await
        .assert_problem(400, "invalid_request");
    get(&app, &staff, &path("?purpose=support"))
        .await
        .assert_problem(403, "purpose_not_allowed");
    get(&app, &staff, &path("?purpose=dsr&x=1"))
        .await
        .assert_problem(400, "invalid_request");
    get(&app, &app.agent("phone"), &path("?purpose=dsr"))
        .await
        .assert_problem(403, "forbidden");
    let no_dsr = app.token(Tok {
        role: Role::Compliance,
        sub: "auditor",
        purposes: &["support"],
        channel: None,
    });
    get(&app, &no_dsr, &path("?purpose=dsr"))
        .await
        .assert_problem(403, "purpose_not_allowed");
    get(
        &app,
        &staff,
        "/v1/customers/0190b0a0-0000-7000-8000-000000000000/export?purpose=dsr",
    )
    .await
    .assert_problem(404, "not_found");
    get(&app, &app.customer(&id), &path("?purpose=dsr"))
        .await
        .assert_problem(403, "forbidden");
    // Every attempt is audited, allowed or not.
    let r = get(&app, &staff, "/v1/audit?action=export&limit=100").await;
    let entries = r.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 7, "{}", r.text);
    assert!(entries.iter().all(|e| e["decision"] == "deny"));
}

async fn assert_erased(app: &TestApp, id: &str, values: &[(&str, &str)]) {
    for table in ["data_keys", "contacts", "interactions", "consents"] {
        let n = app
            .scalar(&format!(
                "SELECT COUNT(*) FROM {table} t JOIN customers c ON c.id = t.customer_id \
                 WHERE c.erased_at IS NOT NULL"
            ))
            .await;
        assert_eq!(n, 0, "{table} still holds rows of an erased customer");
    }
    app.read_customer(&app.agent("phone"), id, "purpose=support")
        .await
        .assert_problem(410, "customer_erased");
    get(app, &app.customer(id), "/v1/me")
        .await
        .assert_problem(410, "customer_erased");
    get(
        app,
        &dsr_staff(app),
        &format!("/v1/customers/{id}/export?purpose=dsr"),
    )
    .await
    .assert_problem(410, "customer_erased");
    for (channel, value) in values {
        let r = app
            .lookup(&app.agent(channel), channel, value, "support")
            .await;
        let found = r.json["matches"]
            .as_array()
            .map(|m| m.iter().any(|m| m["customer_id"] == *id))
            .unwrap_or(false);
        assert!(
            !found,
            "a lookup of {value} still finds the erased customer"
        );
    }
    app.assert_chain_verifies().await;
}

async fn erasure_shreds_the_customer_and_a_second_erasure_changes_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let other = app.create_customer_ok(&app.service(), liisa()).await;
    interaction(&app, &id, "phone", "complaint", "Poistettava valitus").await;
    let staff = dsr_staff(&app);
    let path = format!("/v1/customers/{id}?reason=DSR-2026-21");
    delete(&app, &app.agent("phone"), &path)
        .await
        .assert_problem(403, "forbidden");

    let r = delete(&app, &staff, &path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["id"], id.as_str());
    let erased_at = r.json["erased_at"].as_str().unwrap().to_owned();
    assert_erased(
        &app,
        &id,
        &[
            ("phone", SHARED_PHONE),
            ("email", "pena.export@example.com"),
            ("instagram", "pena_export"),
        ],
    )
    .await;
    // The tombstone keeps the id; nothing sealed is left on the row.
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM customers WHERE erased_at IS NOT NULL \
             AND display_name IS NULL AND external_ref IS NULL AND preferred_channel IS NULL"
        )
        .await,
        1
    );
    // The neighbour with the same number is untouched.
    let r = app
        .lookup(&app.agent("phone"), "phone", SHARED_PHONE, "support")
        .await;
    assert_eq!(
        r.json["matches"][0]["customer_id"],
        other.as_str(),
        "{}",
        r.text
    );
    let r = app
        .read_customer(&app.agent("phone"), &other, "purpose=support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // A second erasure is a no-op with the same tombstone.
    let before = app.audit_count().await;
    let r = delete(&app, &staff, &path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["erased_at"], erased_at.as_str());
    assert_eq!(app.audit_count().await, before + 1);

    let r = get(
        &app,
        &staff,
        &format!("/v1/audit?customer_id={id}&action=customer.erase"),
    )
    .await;
    let entries = r.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{}", r.text);
    assert_eq!(entries[0]["decision"], "deny");
    assert_eq!(entries[1]["detail"]["contacts"], 3);
    assert_eq!(entries[1]["detail"]["interactions"], 1);
    assert_eq!(entries[1]["detail"]["already_erased"], false);
    assert_eq!(entries[2]["detail"]["already_erased"], true);
    delete(
        &app,
        &staff,
        "/v1/customers/0190b0a0-0000-7000-8000-000000000000?reason=DSR-2026-21",
    )
    .await
    .assert_problem(404, "not_found");
}

async fn a_customer_erases_themselves(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let me = app.customer(&id);
    let r = delete(&app, &me, "/v1/me").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["id"], id.as_str());
    assert_erased(&app, &id, &[("email", "pena.export@example.com")]).await;
    let r = delete(&app, &me, "/v1/me").await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "a second erasure is a no-op: {}",
        r.text
    );
}

async fn staff_erasure_needs_a_case_reference_and_records_it(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), pena()).await;
    let staff = dsr_staff(&app);
    let bare = format!("/v1/customers/{id}");

    // Without a case reference, or with an empty or hostile one, nothing is erased.
    for path in [
        bare.clone(),
        format!("{bare}?reason="),
        format!("{bare}?reason=%E2%80%AEcase"),
        format!("{bare}?reason=CASE-1&extra=1"),
    ] {
        delete(&app, &staff, &path)
            .await
            .assert_problem(400, "invalid_request");
    }
    let r = app
        .read_customer(&app.agent("phone"), &id, "purpose=support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "still there: {}", r.text);

    // With one, the erasure happens and its entry names the case.
    let r = delete(&app, &staff, &format!("{bare}?reason=DSR-2026-42")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'customer.erase' \
             AND decision = 'allow' AND reason = 'DSR-2026-42'"
        )
        .await,
        1
    );
    app.assert_chain_verifies().await;
}
