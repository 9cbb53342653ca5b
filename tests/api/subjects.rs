//! The data subject request pages in real headless Chromium, on both
//! databases: finding a customer by a phone number spelt another way, the
//! masked record (no value in the page, no read of values in the audit
//! trail), the reveal with a case reference (exactly one export entry), the
//! JSON and ZIP downloads, the erasure with a typed confirmation; and in
//! [`register`], the register of requests, CSRF refusals and an admin's
//! "not allowed". Screenshots go to `target/screenshots/`.

mod register;

use std::io::Read as _;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::console::{console, plain, Console};
use crate::helpers::{Backend, Scenario, TestApp};
use crate::scenarios;
use crate::users::aids::{audit_entries, T0};

pub fn tests() -> Vec<Scenario> {
    let mut all = scenarios![
        a_customer_found_by_phone_shows_masked_and_a_reveal_is_the_one_read_of_values,
        erasing_needs_the_typed_short_id_and_records_the_case_reference,
    ];
    all.extend(register::tests());
    all
}

const PHONE: &str = "+358401234567";
const EMAIL: &str = "pena.hostile@example.com";
const HOSTILE: &str = "<script>alert(1)</script>";
const BODY: &str = "Call back about invoice 77";

/// A customer with a phone number and an e-mail address (each added by an
/// agent of its channel) and a hostile display name; its id.
pub(crate) async fn seed_customer(app: &TestApp) -> String {
    let id = app
        .create_customer_ok(
            &app.agent("phone"),
            json!({"display_name": HOSTILE,
                   "contacts": [{"channel": "phone", "value": "+358 40 1234567", "label": "mobile"}]}),
        )
        .await;
    let r = app
        .add_contact(
            &app.agent("email"),
            &id,
            json!({"channel": "email", "value": EMAIL}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let phone = app.agent("phone");
    let writes = [
        (
            "interactions",
            json!({"channel": "phone", "kind": "contact_request", "body": BODY,
                   "due_at": "2026-12-01T09:00:00Z"}),
        ),
        (
            "consents",
            json!({"purpose": "cross_channel", "channel": "email", "action": "grant",
                   "method": "spoken",
                   "evidence": {"notice_id": "privacy-2026", "notice_version": "3"}}),
        ),
    ];
    for (part, body) in writes {
        let path = format!("/v1/customers/{id}/{part}");
        let r = app
            .request(Method::POST, &path, Some(&phone), Some(body))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{part}: {}", r.text);
    }
    id
}

/// Entries about the customer through `GET /v1/audit?customer_id=`.
pub(crate) async fn entries_about(app: &TestApp, id: &str) -> Vec<Value> {
    let r = app
        .request(
            Method::GET,
            &format!("/v1/audit?customer_id={id}&limit=1000"),
            Some(&app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["entries"].as_array().expect("entries").clone()
}

/// Opens the find form and looks `value` up on `channel`.
async fn find(c: &mut Console, channel: &str, value: &str) {
    c.browser.goto(&c.url("/console/customers")).await;
    c.browser
        .click(&format!("#channel option[value='{channel}']"))
        .await;
    c.browser.type_into("#value", value).await;
    c.browser.click_and_wait("#find").await;
}

async fn a_customer_found_by_phone_shows_masked_and_a_reveal_is_the_one_read_of_values(b: Backend) {
    let Some(mut c) = console(b, "subjects_find").await else {
        return;
    };
    let id = seed_customer(&c.app).await;
    c.browser.resize(1100, 1800).await;
    c.sign_in(T0).await;

    // A number nobody holds, and one that is no number at all.
    find(&mut c, "phone", "050 000 0000").await;
    assert!(c.browser.text("#no-match").await.contains("No customer"));
    find(&mut c, "phone", "not a number").await;
    assert!(c
        .browser
        .text("#value-error")
        .await
        .contains("phone number"));
    let invalid = c.browser.attribute("#value", "aria-invalid").await;
    assert_eq!(invalid.as_deref(), Some("true"));

    // Found by the number written another way; the value is not in the URL.
    find(&mut c, "phone", "040 123 4567").await;
    assert!(c
        .browser
        .current_url()
        .await
        .ends_with("/console/customers"));
    assert_eq!(c.browser.count("#results a.found").await, 1);
    assert!(c.browser.text("#results").await.contains(&id));
    c.browser.screenshot("find-results").await;
    let lookups = audit_entries(&c.app, "lookup").await;
    let decisions: Vec<_> = lookups.iter().map(|e| e["decision"].clone()).collect();
    assert_eq!(decisions, ["deny", "deny", "allow"], "each audited");

    c.browser.click_and_wait("#results a.found").await;
    assert_masked(&mut c, &id).await;

    c.browser.type_into("#reveal-case", "DSR-2026-0042").await;
    c.browser.click_and_wait("#reveal").await;
    let contacts = c.browser.text("#contacts").await;
    assert!(
        contacts.contains(PHONE) && contacts.contains(EMAIL),
        "{contacts}"
    );
    assert_eq!(c.browser.text("#display-name").await, HOSTILE, "as text");
    assert!(c.browser.text("#interactions").await.contains(BODY));
    assert!(
        !c.browser.alert_open().await,
        "the hostile name did not run"
    );
    assert!(c
        .browser
        .text("#revealed-note")
        .await
        .contains("DSR-2026-0042"));
    c.browser.screenshot("revealed").await;
    let exports = audit_entries(&c.app, "export").await;
    assert_eq!(exports.len(), 1, "one read of values: {exports:?}");
    assert_eq!(exports[0]["reason"], "DSR-2026-0042");
    assert_eq!(exports[0]["customer_id"], id.as_str());

    // The downloads, through the page.
    downloads_hold_the_values(&c, &id).await;
    let exports = audit_entries(&c.app, "export").await;
    assert_eq!(exports.len(), 3, "a reveal and two downloads");
    assert!(exports.iter().all(|e| e["reason"] == "DSR-2026-0042"));
    c.app.assert_chain_verifies().await;
    c.browser.close().await;
}

/// The customer's page as it opens: every value masked, the shape shown,
/// and no read of values in the audit trail, only the look.
async fn assert_masked(c: &mut Console, id: &str) {
    assert!(c.browser.current_url().await.ends_with(id));
    let html = c.browser.source().await;
    for value in [PHONE, "1234567", EMAIL, "alert(1)", BODY] {
        assert!(!html.contains(value), "{value} is not on the masked page");
    }
    assert!(c.browser.text("#contacts").await.contains("••••"));
    assert_eq!(c.browser.text("#display-name").await, "••••");
    assert!(c.browser.text("#contacts").await.contains("phone"));
    assert!(!c.browser.alert_open().await, "no script ran");
    let consents = c.browser.text("#consents").await;
    assert!(
        consents.contains("waiting for the customer's confirmation"),
        "{consents}"
    );
    let channels = c.browser.text("#interaction-channels").await;
    assert!(
        channels.contains("phone 1 1 1"),
        "count, open, overdue: {channels}"
    );
    c.browser.screenshot("masked").await;
    for action in ["export", "customer.read", "contact.reveal"] {
        let found = audit_entries(&c.app, action).await;
        assert!(found.is_empty(), "browsing logs no {action}: {found:?}");
    }
    let looks = audit_entries(&c.app, "customer.inventory").await;
    assert_eq!(looks.len(), 1, "{looks:?}");
    assert_eq!(looks[0]["detail"]["values"], "masked", "{looks:?}");
    assert_eq!(looks[0]["customer_id"], id);
}

/// The JSON and ZIP downloads of the customer's page hold its values.
async fn downloads_hold_the_values(c: &Console, id: &str) {
    c.browser.type_into("#export-case", "DSR-2026-0042").await;
    let json_file = c.browser.download("#download-json").await;
    let name = json_file
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(name, format!("arkku-export-{id}-2026-12-02.json"));
    let bundle: Value = serde_json::from_slice(&std::fs::read(&json_file).unwrap()).unwrap();
    let values: Vec<&str> = bundle["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["value"].as_str())
        .collect();
    assert!(
        values.contains(&PHONE) && values.contains(&EMAIL),
        "{values:?}"
    );

    let zip_file = c.browser.download("#download-zip").await;
    let zip_name = zip_file.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(zip_name, format!("arkku-export-{id}-2026-12-02.zip"));
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip_file).unwrap()).unwrap();
    let names: Vec<String> = archive
        .file_names()
        .map(|n| n.unwrap().into_owned())
        .collect();
    assert!(names.iter().any(|n| n == "contacts.csv"), "{names:?}");
    let mut contacts_csv = String::new();
    archive
        .by_name("contacts.csv")
        .unwrap()
        .read_to_string(&mut contacts_csv)
        .unwrap();
    assert!(contacts_csv.contains(EMAIL), "{contacts_csv}");
}

async fn erasing_needs_the_typed_short_id_and_records_the_case_reference(b: Backend) {
    let Some(mut c) = console(b, "subjects_erase").await else {
        return;
    };
    let id = seed_customer(&c.app).await;
    let short: String = id.chars().take(8).collect();
    c.browser.resize(1100, 1400).await;
    // The register's erasure request under the reference, identity verified.
    let request = register::api_request(&c.app, "erasure", "DSR-2026-0043", Some(&id), None).await;
    register::api_step(&c.app, &request, "identity_verified").await;
    c.sign_in(T0).await;
    c.browser
        .goto(&c.url(&format!("/console/customers/{id}")))
        .await;
    c.browser.click_and_wait("#erase-link").await;
    assert_eq!(c.browser.text("#confirm-word").await, short);

    // A wrong confirmation: refused (400), nothing erased.
    c.browser.type_into("#confirmation", "deadbeef").await;
    c.browser.type_into("#erase-case", "DSR-2026-0043").await;
    c.browser.screenshot("erase-confirmation").await;
    c.browser.click_and_wait("#erase").await;
    assert!(c
        .browser
        .text("#confirm-error")
        .await
        .contains("Nothing was erased"));
    let csrf = c
        .browser
        .attribute("input[name=csrf]", "value")
        .await
        .unwrap();
    let cookie = format!("arkku_session={}", c.session().await);
    let r = plain()
        .post(c.url(&format!("/console/customers/{id}/erase")))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&confirmation=nope&case_reference=DSR-2026-0043"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let read = c
        .app
        .read_customer(&c.app.agent("phone"), &id, "purpose=support")
        .await;
    assert_eq!(read.status, StatusCode::OK, "still there");
    assert!(audit_entries(&c.app, "customer.erase").await.is_empty());

    // The right one.
    c.browser.type_into("#confirmation", &short).await;
    c.browser.click_and_wait("#erase").await;
    assert!(c.browser.current_url().await.ends_with(&id));
    assert!(c.browser.text("#tombstone").await.contains("Erased"));
    assert_eq!(c.browser.count("#kept li").await, 4);
    assert!(c
        .browser
        .text("#customer-requests")
        .await
        .contains("completed"));
    c.browser.screenshot("tombstone").await;

    // The officer finds the erasure and its reference in the audit trail,
    // through the navigation and the trail's filter form.
    c.browser
        .click_and_wait("nav.pages a[href='/console/audit']")
        .await;
    c.browser.type_into("#customer_id", &id).await;
    c.browser.type_into("#reason", "DSR-2026-0043").await;
    c.browser.click_and_wait("#apply-filters").await;
    // The case's whole story: the register's entries and the erasure.
    let trail = c.browser.text("#trail tbody").await;
    assert!(
        trail
            .lines()
            .any(|row| row.contains("customer.erase") && row.contains("DSR-2026-0043")),
        "{trail}"
    );
    assert!(trail.contains("dsr.request.create"), "{trail}");
    c.browser.screenshot("erasure-in-trail").await;

    assert_erased_with_its_reference(&c.app, &id, &request).await;
    c.app.assert_chain_verifies().await;
    c.browser.close().await;
}

/// The API agrees: the customer answers 410, its erasure entry carries the
/// case reference, and the register's request under it is completed.
async fn assert_erased_with_its_reference(app: &TestApp, id: &str, request: &str) {
    let read = app
        .read_customer(&app.agent("phone"), id, "purpose=support")
        .await;
    read.assert_problem(410, "customer_erased");
    let erase: Vec<Value> = entries_about(app, id)
        .await
        .into_iter()
        .filter(|e| e["action"] == "customer.erase")
        .collect();
    assert_eq!(erase.len(), 1, "{erase:?}");
    assert_eq!(erase[0]["reason"], "DSR-2026-0043");
    assert_eq!(erase[0]["decision"], "allow");
    let detail = register::api_read(app, request).await;
    assert_eq!(detail["request"]["status"], "completed", "{detail}");
}
