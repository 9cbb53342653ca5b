//! Caller-ID lookup: `POST /v1/lookup` (SECURITY.md, "Blind index").

use std::collections::BTreeSet;

use arkku::{domain::Role, store::audit::AuditRow};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Backend, Reply, Scenario, TestApp, Tok};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        every_spelling_of_a_phone_number_finds_the_same_customer_and_contact,
        a_match_names_customer_contact_and_channel_and_never_the_value,
        email_lookup_ignores_case_and_surrounding_whitespace,
        handle_lookup_ignores_a_leading_at_sign_and_case,
        a_value_nobody_holds_is_not_found,
        a_number_held_on_one_channel_is_not_found_on_another,
        a_removed_contact_is_no_longer_found,
        two_customers_sharing_a_number_are_both_listed,
        an_agent_of_another_channel_gets_not_found_without_consent,
        a_service_token_gets_not_found_without_consent,
        every_lookup_is_audited_without_the_value,
        an_invalid_phone_number_is_invalid_phone,
        an_unknown_channel_is_unknown_channel,
        a_purpose_the_token_does_not_list_is_not_allowed,
        the_default_region_decides_what_a_national_number_means,
        compliance_finds_a_data_subject_by_email_or_phone_for_purpose_dsr,
    ]
}

/// Creates a customer with these contacts; returns its id and the contact ids
/// by channel (first contact per channel).
async fn customer_with(app: &TestApp, contacts: Value) -> (String, Vec<(String, String)>) {
    let r = app
        .create_customer(&app.service(), json!({ "contacts": contacts }))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_owned();
    let contacts = r.json["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().expect("channel").to_owned(),
                c["id"].as_str().expect("contact id").to_owned(),
            )
        })
        .collect();
    (id, contacts)
}

fn contact_on(contacts: &[(String, String)], channel: &str) -> String {
    contacts
        .iter()
        .find(|(c, _)| c == channel)
        .map(|(_, id)| id.clone())
        .unwrap_or_else(|| panic!("no {channel} contact"))
}

/// The matches of a 200 lookup as (customer_id, contact_id, channel).
#[track_caller]
fn matches(r: &Reply) -> BTreeSet<(String, String, String)> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["matches"]
        .as_array()
        .unwrap_or_else(|| panic!("no matches array: {}", r.text))
        .iter()
        .map(|m| {
            (
                m["customer_id"].as_str().expect("customer_id").to_owned(),
                m["contact_id"].as_str().expect("contact_id").to_owned(),
                m["channel"].as_str().expect("channel").to_owned(),
            )
        })
        .collect()
}

fn one(customer: &str, contact: &str, channel: &str) -> BTreeSet<(String, String, String)> {
    BTreeSet::from([(customer.to_owned(), contact.to_owned(), channel.to_owned())])
}

/// Every audit row, oldest first.
async fn audit_rows(app: &TestApp) -> Vec<AuditRow> {
    arkku::store::audit::entries_after(app.db(), 0, 1_000_000)
        .await
        .expect("audit rows")
}

async fn every_spelling_of_a_phone_number_finds_the_same_customer_and_contact(b: Backend) {
    let app = spawn_app(b).await;
    let (id, contacts) =
        customer_with(&app, json!([{"channel": "phone", "value": "040 123 4567"}])).await;
    let contact = contact_on(&contacts, "phone");
    let agent = app.agent("phone");
    for spelling in [
        "040 123 4567",
        "+358 40 1234567",
        "+358401234567",
        "00358401234567",
        "040-123 45 67",
        " 0401234567 ",
    ] {
        let r = app.lookup(&agent, "phone", spelling, "support").await;
        assert_eq!(
            matches(&r),
            one(&id, &contact, "phone"),
            "{spelling:?}: {}",
            r.text
        );
    }
}

async fn a_match_names_customer_contact_and_channel_and_never_the_value(b: Backend) {
    let app = spawn_app(b).await;
    let (id, contacts) = customer_with(
        &app,
        json!([{"channel": "phone", "value": "+358 40 1234567", "label": "mobile"}]),
    )
    .await;
    let r = app
        .lookup(&app.agent("phone"), "phone", "0401234567", "support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.json,
        json!({"matches": [{
            "customer_id": id,
            "contact_id": contact_on(&contacts, "phone"),
            "channel": "phone"
        }]}),
        "exactly the ids and the channel, nothing else"
    );
    for leak in ["401234567", "+358", "*", "mobile"] {
        assert!(
            !r.text.contains(leak),
            "the match leaks {leak:?}: {}",
            r.text
        );
    }
}

async fn email_lookup_ignores_case_and_surrounding_whitespace(b: Backend) {
    let app = spawn_app(b).await;
    let (id, contacts) = customer_with(
        &app,
        json!([{"channel": "email", "value": "Pena.Virtanen@Example.com"}]),
    )
    .await;
    let contact = contact_on(&contacts, "email");
    let agent = app.agent("email");
    for spelling in [
        "pena.virtanen@example.com",
        "PENA.VIRTANEN@EXAMPLE.COM",
        "  Pena.Virtanen@example.COM\t",
        "\npena.virtanen@Example.com ",
    ] {
        let r = app.lookup(&agent, "email", spelling, "support").await;
        assert_eq!(
            matches(&r),
            one(&id, &contact, "email"),
            "{spelling:?}: {}",
            r.text
        );
    }
    // Only case and surrounding space are ignored: another address is another address.
    app.lookup(&agent, "email", "pena.virtanen@example.fi", "support")
        .await
        .assert_problem(404, "not_found");
    app.lookup(&agent, "email", "penavirtanen@example.com", "support")
        .await
        .assert_problem(404, "not_found");
}

async fn handle_lookup_ignores_a_leading_at_sign_and_case(b: Backend) {
    let app = spawn_app(b).await;
    let (id, contacts) =
        customer_with(&app, json!([{"channel": "instagram", "value": "@Pena_V"}])).await;
    let contact = contact_on(&contacts, "instagram");
    let agent = app.agent("instagram");
    for spelling in ["@Pena_V", "pena_v", "PENA_V", "@pena_v", " @PeNa_v "] {
        let r = app.lookup(&agent, "instagram", spelling, "support").await;
        assert_eq!(
            matches(&r),
            one(&id, &contact, "instagram"),
            "{spelling:?}: {}",
            r.text
        );
    }
    app.lookup(&agent, "instagram", "pena_v2", "support")
        .await
        .assert_problem(404, "not_found");
}

async fn a_value_nobody_holds_is_not_found(b: Backend) {
    let app = spawn_app(b).await;
    let agent = app.agent("phone");
    // An empty vault.
    app.lookup(&agent, "phone", "040 123 4567", "support")
        .await
        .assert_problem(404, "not_found");
    customer_with(&app, json!([{"channel": "phone", "value": "040 123 4567"}])).await;
    // A neighbouring number.
    app.lookup(&agent, "phone", "040 123 4568", "support")
        .await
        .assert_problem(404, "not_found");
    let r = app
        .lookup(
            &app.agent("email"),
            "email",
            "nobody@example.com",
            "support",
        )
        .await;
    r.assert_problem(404, "not_found");
    assert!(r.json.get("matches").is_none(), "{}", r.text);
}

async fn a_number_held_on_one_channel_is_not_found_on_another(b: Backend) {
    let app = spawn_app(b).await;
    customer_with(&app, json!([{"channel": "phone", "value": "040 123 4567"}])).await;
    for channel in ["sms", "whatsapp"] {
        app.lookup(&app.agent(channel), channel, "040 123 4567", "support")
            .await
            .assert_problem(404, "not_found");
    }
}

async fn a_removed_contact_is_no_longer_found(b: Backend) {
    let app = spawn_app(b).await;
    let (id, contacts) =
        customer_with(&app, json!([{"channel": "phone", "value": "040 123 4567"}])).await;
    let agent = app.agent("phone");
    let r = app.lookup(&agent, "phone", "0401234567", "support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .remove_contact(&app.service(), &id, &contact_on(&contacts, "phone"))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    app.lookup(&agent, "phone", "0401234567", "support")
        .await
        .assert_problem(404, "not_found");
}

async fn two_customers_sharing_a_number_are_both_listed(b: Backend) {
    let app = spawn_app(b).await;
    let (first, first_contacts) =
        customer_with(&app, json!([{"channel": "phone", "value": "040 123 4567"}])).await;
    let (second, second_contacts) = customer_with(
        &app,
        json!([{"channel": "phone", "value": "+358401234567"}]),
    )
    .await;
    // A third customer with another number is not listed.
    customer_with(&app, json!([{"channel": "phone", "value": "040 765 4321"}])).await;
    let r = app
        .lookup(&app.agent("phone"), "phone", "+358 40 1234567", "support")
        .await;
    let mut expected = one(&first, &contact_on(&first_contacts, "phone"), "phone");
    expected.extend(one(
        &second,
        &contact_on(&second_contacts, "phone"),
        "phone",
    ));
    assert_eq!(matches(&r), expected, "{}", r.text);
    assert_eq!(r.json["matches"].as_array().expect("matches").len(), 2);
}

async fn an_agent_of_another_channel_gets_not_found_without_consent(b: Backend) {
    let app = spawn_app(b).await;
    customer_with(
        &app,
        json!([
            {"channel": "phone", "value": "040 123 4567"},
            {"channel": "email", "value": "pena@example.com"}
        ]),
    )
    .await;
    let email_agent = app.agent("email");
    // The e-mail agent may look up e-mail…
    let r = app
        .lookup(&email_agent, "email", "pena@example.com", "support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // …but a phone match is withheld, exactly like no match at all.
    let withheld = app
        .lookup(&email_agent, "phone", "040 123 4567", "support")
        .await;
    withheld.assert_problem(404, "not_found");
    let absent = app
        .lookup(&email_agent, "phone", "040 765 4321", "support")
        .await;
    absent.assert_problem(404, "not_found");
    assert_eq!(withheld.json["title"], absent.json["title"]);
    assert_eq!(withheld.json["detail"], absent.json["detail"]);
    assert!(!withheld.text.contains("consent"), "{}", withheld.text);
}

async fn a_service_token_gets_not_found_without_consent(b: Backend) {
    let app = spawn_app(b).await;
    customer_with(
        &app,
        json!([
            {"channel": "phone", "value": "040 123 4567"},
            {"channel": "email", "value": "pena@example.com"}
        ]),
    )
    .await;
    let svc = app.service();
    app.lookup(&svc, "phone", "040 123 4567", "support")
        .await
        .assert_problem(404, "not_found");
    app.lookup(&svc, "email", "pena@example.com", "support")
        .await
        .assert_problem(404, "not_found");
    // The same lookup by the phone agent does find it.
    let r = app
        .lookup(&app.agent("phone"), "phone", "040 123 4567", "support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn every_lookup_is_audited_without_the_value(b: Backend) {
    let app = spawn_app(b).await;
    let (id, _) = customer_with(
        &app,
        json!([
            {"channel": "phone", "value": "040 123 4567"},
            {"channel": "email", "value": "pena.lookup@example.com"}
        ]),
    )
    .await;
    let before = audit_rows(&app).await.len();
    let phone = app.agent("phone");
    // found; not found; withheld for another channel's agent; withheld for a service.
    let r = app.lookup(&phone, "phone", "040 123 4567", "support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.lookup(&phone, "phone", "040 999 8877", "support")
        .await
        .assert_problem(404, "not_found");
    app.lookup(&app.agent("email"), "phone", "+358401234567", "support")
        .await
        .assert_problem(404, "not_found");
    app.lookup(
        &app.service(),
        "email",
        "Pena.Lookup@example.com",
        "support",
    )
    .await
    .assert_problem(404, "not_found");
    // and the refusals: invalid value, unknown channel, purpose not granted.
    app.lookup(&phone, "phone", "040 123 4567 ext 12", "support")
        .await
        .assert_problem(400, "invalid_phone");
    app.lookup(&phone, "pigeon", "040 123 4567", "support")
        .await
        .assert_problem(400, "unknown_channel");
    app.lookup(&phone, "phone", "040 123 4567", "marketing")
        .await
        .assert_problem(403, "purpose_not_allowed");

    let rows = audit_rows(&app).await;
    let new = &rows[before..];
    assert_eq!(new.len(), 7, "one entry per lookup: {new:#?}");
    assert!(new.iter().all(|r| r.action == "lookup"), "{new:#?}");
    let decisions: Vec<&str> = new.iter().map(|r| r.decision.as_str()).collect();
    assert_eq!(
        decisions,
        ["allow", "deny", "deny", "deny", "deny", "deny", "deny"]
    );
    assert_eq!(new[0].customer_id.map(|u| u.to_string()), Some(id.clone()));
    assert_eq!(new[0].channel.as_deref(), Some("phone"));
    assert_eq!(new[0].purpose.as_deref(), Some("support"));
    assert_eq!(new[0].actor_role, "agent");
    for (row, code) in new[1..].iter().zip([
        "not_found",
        "not_found",
        "not_found",
        "invalid_phone",
        "unknown_channel",
        "purpose_not_allowed",
    ]) {
        assert!(row.detail.contains(code), "{code}: {row:?}");
    }
    assert_eq!(new[3].actor_role, "service");

    let text = app.audit_text().await;
    for value in [
        "401234567",
        "358401234567",
        "040 123 4567",
        "409998877",
        "999 8877",
        "pena.lookup",
        "Pena.Lookup",
        "example.com",
    ] {
        assert!(!text.contains(value), "the audit log holds {value:?}");
    }
}

async fn an_invalid_phone_number_is_invalid_phone(b: Backend) {
    let app = spawn_app(b).await;
    let agent = app.agent("phone");
    for bad in ["abc", "12", "040 123 4567 ext 12", "+", "tel:+358401234567"] {
        let r = app.lookup(&agent, "phone", bad, "support").await;
        r.assert_problem(400, "invalid_phone");
        if bad.len() > 3 {
            assert!(
                !r.text.contains(bad),
                "the error echoes {bad:?}: {}",
                r.text
            );
        }
    }
    // Phone-kind channels other than phone validate the same way.
    app.lookup(&app.agent("sms"), "sms", "not a number", "support")
        .await
        .assert_problem(400, "invalid_phone");
}

async fn an_unknown_channel_is_unknown_channel(b: Backend) {
    let app = spawn_app(b).await;
    let agent = app.agent("phone");
    for channel in ["pigeon", "telex", "fax"] {
        app.lookup(&agent, channel, "040 123 4567", "support")
            .await
            .assert_problem(400, "unknown_channel");
    }
}

async fn a_purpose_the_token_does_not_list_is_not_allowed(b: Backend) {
    let app = spawn_app(b).await;
    customer_with(&app, json!([{"channel": "phone", "value": "040 123 4567"}])).await;
    let agent = app.agent("phone");
    app.lookup(&agent, "phone", "040 123 4567", "marketing")
        .await
        .assert_problem(403, "purpose_not_allowed");
    app.lookup(&app.service(), "phone", "040 123 4567", "cross_channel")
        .await
        .assert_problem(403, "purpose_not_allowed");
    app.lookup(&agent, "phone", "040 123 4567", "astrology")
        .await
        .assert_problem(400, "unknown_purpose");
    // With the purpose in the token, the same lookup is answered.
    let t = app.token(Tok {
        role: Role::Agent,
        sub: "agent-2",
        purposes: &["marketing", "support"],
        channel: Some("phone"),
    });
    let r = app.lookup(&t, "phone", "040 123 4567", "support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn the_default_region_decides_what_a_national_number_means(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.default_region = arkku::domain::Region::parse("SE").expect("SE is a region");
    })
    .await;
    let (id, contacts) =
        customer_with(&app, json!([{"channel": "phone", "value": "070 123 4567"}])).await;
    let contact = contact_on(&contacts, "phone");
    let agent = app.agent("phone");
    let r = app
        .read_customer(&agent, &id, "purpose=support&reveal=true&reason=T-SE")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.json["contacts"][0]["value"], "+46701234567",
        "stored as a Swedish number"
    );
    for spelling in ["070 123 4567", "+46701234567", "+46 70 123 45 67"] {
        let r = app.lookup(&agent, "phone", spelling, "support").await;
        assert_eq!(
            matches(&r),
            one(&id, &contact, "phone"),
            "{spelling:?}: {}",
            r.text
        );
    }
    // The Finnish reading of the same digits is another number.
    app.lookup(&agent, "phone", "+358701234567", "support")
        .await
        .assert_problem(404, "not_found");

    // And with the default region (FI) the national spelling means Finland.
    let fi = spawn_app(b).await;
    customer_with(&fi, json!([{"channel": "phone", "value": "040 123 4567"}])).await;
    let r = fi
        .lookup(&fi.agent("phone"), "phone", "+358401234567", "support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// A data subject request starts from what the customer tells: an e-mail
/// address or a phone number. Compliance staff look it up for purpose `dsr`,
/// see every live match (reason `data_subject`, whatever the consents), and
/// the lookup is audited like any other; for any other purpose they are refused.
async fn compliance_finds_a_data_subject_by_email_or_phone_for_purpose_dsr(b: Backend) {
    let app = spawn_app(b).await;
    let (id, contacts) = customer_with(
        &app,
        json!([
            {"channel": "phone", "value": "040 123 4567"},
            {"channel": "email", "value": "pena.dsr@example.com"}
        ]),
    )
    .await;
    let officer = app.compliance();
    let before = audit_rows(&app).await.len();

    let by_email = app
        .lookup(&officer, "email", "Pena.DSR@example.com", "dsr")
        .await;
    assert_eq!(
        matches(&by_email),
        one(&id, &contact_on(&contacts, "email"), "email")
    );
    let by_phone = app
        .lookup(&officer, "phone", "+358 40 1234567", "dsr")
        .await;
    assert_eq!(
        matches(&by_phone),
        one(&id, &contact_on(&contacts, "phone"), "phone")
    );
    app.lookup(&officer, "email", "pena.dsr@example.com", "support")
        .await
        .assert_problem(403, "purpose_not_allowed");
    // A customer token may not look anyone up, not even for dsr.
    let customer = app.token(Tok {
        role: Role::Customer,
        sub: &id,
        purposes: &["dsr"],
        channel: None,
    });
    app.lookup(&customer, "email", "pena.dsr@example.com", "dsr")
        .await
        .assert_problem(403, "forbidden");

    let rows = audit_rows(&app).await;
    let new = &rows[before..];
    assert_eq!(new.len(), 4, "{new:#?}");
    assert!(new.iter().all(|r| r.action == "lookup"), "{new:#?}");
    for row in &new[..2] {
        assert_eq!(row.decision, "allow");
        assert_eq!(row.actor_role, "compliance");
        assert_eq!(row.purpose.as_deref(), Some("dsr"));
        assert_eq!(row.customer_id.map(|u| u.to_string()), Some(id.clone()));
        assert!(row.detail.contains("data_subject"), "{row:?}");
    }
    assert_eq!(new[2].decision, "deny");
    assert!(
        new[2].detail.contains("purpose_not_allowed"),
        "{:?}",
        new[2]
    );
    assert_eq!(new[3].decision, "deny");
    let text = app.audit_text().await;
    assert!(!text.contains("pena.dsr"), "the audit log holds the value");
}
