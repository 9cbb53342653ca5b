//! Bad input (README, the error rules): malformed, oversized and hostile requests
//! get a clear 4xx problem+json with their stable code, never a 5xx, never
//! echo a contact value, and change nothing: no customer, no contact point,
//! no profile field, no `allow` audit entry.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{send, spawn_app, Backend, Reply, Scenario, TestApp, Tok};
use crate::scenarios;
use arkku::domain::Role;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_body_over_one_mebibyte_is_payload_too_large,
        a_body_just_under_the_limit_is_read_and_judged_on_its_content,
        a_body_that_is_not_json_is_unsupported_media_type,
        malformed_json_is_an_invalid_request,
        a_json_document_followed_by_more_text_is_an_invalid_request,
        a_json_array_instead_of_an_object_is_an_invalid_request,
        unknown_fields_are_rejected_and_create_nothing,
        unknown_fields_in_patch_contact_and_lookup_bodies_are_rejected,
        a_value_of_the_wrong_type_is_rejected_without_echoing_it,
        a_malformed_id_in_the_path_is_an_invalid_request,
        an_invalid_email_is_invalid_email,
        an_invalid_phone_is_invalid_phone,
        an_unknown_channel_is_unknown_channel,
        an_unknown_purpose_on_lookup_is_unknown_purpose,
        an_unknown_query_parameter_is_an_invalid_request,
        reveal_must_be_a_boolean,
        an_over_long_or_empty_display_name_or_field_is_refused,
        a_display_name_with_bidirectional_or_invisible_characters_is_refused_on_create_and_patch,
        a_label_or_reason_with_invisible_characters_is_refused,
        a_display_name_with_an_emoji_sequence_or_a_persian_joiner_is_kept_as_written,
        one_bad_contact_rejects_the_whole_create,
        an_unknown_route_is_a_not_found_problem,
        a_wrong_method_is_a_method_not_allowed_problem,
        every_problem_carries_the_request_id,
        hostile_input_never_causes_a_server_error,
        hostile_input_to_consents_interactions_and_rights_never_causes_a_server_error,
    ]
}

// ---------------------------------------------------------------------------
// Fixtures

const MIB: usize = 1024 * 1024;

/// A vault with one customer (display name, phone and e-mail contacts).
struct Vault {
    app: TestApp,
    svc: String,
    id: String,
    contact_id: String,
}

async fn vault(b: Backend) -> Vault {
    let app = spawn_app(b).await;
    let svc = app.service();
    let r = app
        .create_customer(
            &svc,
            json!({
                "display_name": "Pena Virtanen",
                "preferred_channel": "phone",
                "contacts": [
                    {"channel": "phone", "value": "040 123 4567", "label": "mobile"},
                    {"channel": "email", "value": "pena@example.com"}
                ]
            }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_owned();
    let contact_id = r.json["contacts"][0]["id"]
        .as_str()
        .expect("contact id")
        .to_owned();
    Vault {
        app,
        svc,
        id,
        contact_id,
    }
}

/// What a rejected request must leave alone.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    customers: i64,
    contacts: i64,
    /// `allow` audit entries of writes.
    writes_allowed: usize,
}

impl Vault {
    async fn stored(&self) -> Stored {
        let writes_allowed = arkku::store::audit::entries_after(self.app.db(), 0, 1_000_000)
            .await
            .expect("audit")
            .iter()
            .filter(|e| {
                e.decision == "allow"
                    && matches!(
                        e.action.as_str(),
                        "customer.create" | "customer.update" | "contact.add" | "contact.remove"
                    )
            })
            .count();
        Stored {
            customers: self.app.count("customers").await,
            contacts: self.app.count("contacts").await,
            writes_allowed,
        }
    }

    /// The profile as a back-office reader sees it (name, preferred channel).
    async fn profile(&self) -> Value {
        let r = self
            .app
            .read_customer(&self.svc, &self.id, "purpose=support")
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        json!({
            "display_name": r.json["display_name"],
            "preferred_channel": r.json["preferred_channel"],
            "external_ref": r.json["external_ref"],
        })
    }

    /// The customer's contact ids as the phone and e-mail agents see them.
    async fn contact_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for ch in ["phone", "email"] {
            let r = self
                .app
                .read_customer(&self.app.agent(ch), &self.id, "purpose=support")
                .await;
            for c in r.json["contacts"].as_array().expect("contacts") {
                ids.push(c["id"].as_str().expect("id").to_owned());
            }
        }
        ids.sort();
        ids
    }

    /// Everything a rejection must leave alone, in one value.
    async fn snapshot(&self) -> (Stored, Value, Vec<String>) {
        (
            self.stored().await,
            self.profile().await,
            self.contact_ids().await,
        )
    }

    async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        self.app
            .raw(Method::POST, path, Some(&self.svc), content_type, body)
            .await
    }

    /// A lookup by an agent serving `channel`: 404 when nothing matches.
    async fn assert_not_found_by_lookup(&self, channel: &str, value: &str) {
        self.app
            .lookup(&self.app.agent(channel), channel, value, "support")
            .await
            .assert_problem(404, "not_found");
    }
}

/// A request without a content type (reqwest adds none for a raw body).
async fn without_content_type(app: &TestApp, token: &str, path: &str, body: &[u8]) -> Reply {
    let rb = app
        .client
        .request(Method::POST, format!("{}{path}", app.address))
        .bearer_auth(token)
        .body(body.to_vec());
    send(rb).await
}

/// The problem's `detail` (and title) do not contain `secret`.
#[track_caller]
fn assert_not_echoed(r: &Reply, secret: &str) {
    for field in ["detail", "title", "type"] {
        let s = r.json[field].as_str().unwrap_or("");
        assert!(
            !s.contains(secret),
            "the {field} echoes the input {secret:?}: {}",
            r.text
        );
    }
}

// ---------------------------------------------------------------------------
// Scenarios

async fn a_body_over_one_mebibyte_is_payload_too_large(b: Backend) {
    let v = vault(b).await;
    let app = &v.app;
    let before = v.snapshot().await;
    let big = "x".repeat(MIB + 16);

    app.create_customer(
        &v.svc,
        json!({"display_name": "Big", "contacts": [{"channel": "chat", "value": big}]}),
    )
    .await
    .assert_problem(413, "payload_too_large");
    app.create_customer(&v.svc, json!({"display_name": big, "contacts": []}))
        .await
        .assert_problem(413, "payload_too_large");
    app.patch_customer(&v.svc, &v.id, json!({"display_name": big}))
        .await
        .assert_problem(413, "payload_too_large");
    app.add_contact(&v.svc, &v.id, json!({"channel": "chat", "value": big}))
        .await
        .assert_problem(413, "payload_too_large");
    app.request(
        Method::POST,
        "/v1/lookup",
        Some(&v.svc),
        Some(json!({"channel": "chat", "value": big, "purpose": "support"})),
    )
    .await
    .assert_problem(413, "payload_too_large");
    assert_eq!(
        v.snapshot().await,
        before,
        "an oversized body changes nothing"
    );
}

async fn a_body_just_under_the_limit_is_read_and_judged_on_its_content(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    // Just under 1 MiB: not 413; the over-long text value is the problem.
    let value = "x".repeat(MIB - 200);
    let body = json!({"contacts": [{"channel": "chat", "value": value}]});
    assert!(serde_json::to_vec(&body).expect("json").len() < MIB);
    let r = v.app.create_customer(&v.svc, body).await;
    r.assert_problem(400, "invalid_request");
    assert_not_echoed(&r, &"x".repeat(64));
    assert_eq!(v.snapshot().await, before);
}

async fn a_body_that_is_not_json_is_unsupported_media_type(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    let create = serde_json::to_vec(&json!({
        "display_name": "Plain",
        "contacts": [{"channel": "email", "value": "plain@example.com"}]
    }))
    .expect("json");
    let lookup = serde_json::to_vec(
        &json!({"channel": "phone", "value": "040 123 4567", "purpose": "support"}),
    )
    .expect("json");
    let patch = serde_json::to_vec(&json!({"display_name": "Plain"})).expect("json");
    let contact = serde_json::to_vec(&json!({"channel": "email", "value": "plain@example.com"}))
        .expect("json");
    let customer = format!("/v1/customers/{}", v.id);
    let contacts = format!("/v1/customers/{}/contacts", v.id);

    for ct in [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "text/json",
        "application/jsonp",
        "json",
        "",
    ] {
        v.post_raw("/v1/customers", ct, create.clone())
            .await
            .assert_problem(415, "unsupported_media_type");
        v.post_raw("/v1/lookup", ct, lookup.clone())
            .await
            .assert_problem(415, "unsupported_media_type");
        v.post_raw(&contacts, ct, contact.clone())
            .await
            .assert_problem(415, "unsupported_media_type");
        v.app
            .raw(Method::PATCH, &customer, Some(&v.svc), ct, patch.clone())
            .await
            .assert_problem(415, "unsupported_media_type");
    }
    // No content type at all.
    for (path, body) in [
        ("/v1/customers", &create),
        ("/v1/lookup", &lookup),
        (contacts.as_str(), &contact),
    ] {
        without_content_type(&v.app, &v.svc, path, body)
            .await
            .assert_problem(415, "unsupported_media_type");
    }
    assert_eq!(v.snapshot().await, before, "nothing was written");
    v.assert_not_found_by_lookup("email", "plain@example.com")
        .await;

    // Control: the same bytes as JSON are accepted.
    let r = v
        .post_raw("/v1/customers", "application/json; charset=utf-8", create)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn malformed_json_is_an_invalid_request(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b" ".to_vec(),
        b"{".to_vec(),
        br#"{"contacts": ["#.to_vec(),
        br#"{contacts: []}"#.to_vec(),
        br#"{'contacts': []}"#.to_vec(),
        br#"{"contacts": [],}"#.to_vec(),
        br#"{"display_name": "a" "contacts": []}"#.to_vec(),
        br#"{"display_name": "\x"}"#.to_vec(),
        br#"{"display_name": "unterminated}"#.to_vec(),
        br#"{"display_name": "\ud800"}"#.to_vec(),
        br#"{"contacts": [], "display_name": NaN}"#.to_vec(),
        b"\xff\xfe{\x00}".to_vec(),
        b"\xef\xbb\xbf{\"contacts\": []}".to_vec(),
        b"null".to_vec(),
        b"\"contacts\"".to_vec(),
        b"42".to_vec(),
    ];
    for body in bodies {
        let r = v
            .post_raw("/v1/customers", "application/json", body.clone())
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "body {:?}: {}",
            String::from_utf8_lossy(&body),
            r.text
        );
        r.assert_problem(400, "invalid_request");
        v.post_raw("/v1/lookup", "application/json", body.clone())
            .await
            .assert_problem(400, "invalid_request");
        v.app
            .raw(
                Method::PATCH,
                &format!("/v1/customers/{}", v.id),
                Some(&v.svc),
                "application/json",
                body,
            )
            .await
            .assert_problem(400, "invalid_request");
    }
    assert_eq!(v.snapshot().await, before, "nothing was written");
}

/// A body is exactly one JSON object: `{"contacts": []}}` or `{…} garbage`
/// must not be read as its first value.
async fn a_json_document_followed_by_more_text_is_an_invalid_request(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    let trailers: [&str; 5] = ["}", " garbage", r#"{"display_name": "Twice"}"#, ",", "]"];
    let customer = format!("/v1/customers/{}", v.id);
    let mut wrong = Vec::new();
    for trailer in trailers {
        for (method, path, doc) in [
            (
                Method::POST,
                "/v1/customers",
                r#"{"display_name": "Trailing", "contacts": []}"#,
            ),
            (
                Method::PATCH,
                customer.as_str(),
                r#"{"display_name": "Trailing"}"#,
            ),
            (
                Method::POST,
                "/v1/lookup",
                r#"{"channel": "phone", "value": "040 123 4567", "purpose": "support"}"#,
            ),
        ] {
            let body = format!("{doc}{trailer}");
            let r = v
                .app
                .raw(
                    method.clone(),
                    path,
                    Some(&v.app.agent("phone")),
                    "application/json",
                    body.clone().into_bytes(),
                )
                .await;
            if r.status != StatusCode::BAD_REQUEST || r.json["code"] != "invalid_request" {
                wrong.push(format!("{method} {path} {body:?} -> {}", r.status));
            }
        }
    }
    let after = v.snapshot().await;
    if after != before {
        wrong.push(format!("stored state changed: {before:?} -> {after:?}"));
    }
    assert!(
        wrong.is_empty(),
        "trailing text after the JSON body is accepted:\n  {}",
        wrong.join("\n  ")
    );
}

/// serde's derived deserialisers also accept an array of the fields in
/// declaration order; the API takes JSON objects only, so `[]` or
/// `["X-1", "Pena", "phone", []]` must not create a customer.
async fn a_json_array_instead_of_an_object_is_an_invalid_request(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    let customer = format!("/v1/customers/{}", v.id);
    let mut wrong = Vec::new();
    for (method, path, body) in [
        (Method::POST, "/v1/customers", json!([])),
        (
            Method::POST,
            "/v1/customers",
            json!(["X-1", "Positional", "phone", [["chat", "v-9", null]]]),
        ),
        (Method::PATCH, customer.as_str(), json!(["Positional"])),
        (
            Method::POST,
            "/v1/lookup",
            json!(["phone", "040 123 4567", "support"]),
        ),
        (
            Method::POST,
            &format!("/v1/customers/{}/contacts", v.id),
            json!(["chat", "v-10"]),
        ),
    ] {
        let r = v
            .app
            .request(
                method.clone(),
                path,
                Some(&v.app.agent("phone")),
                Some(body.clone()),
            )
            .await;
        if r.status != StatusCode::BAD_REQUEST || r.json["code"] != "invalid_request" {
            wrong.push(format!("{method} {path} {body} -> {}", r.status));
        }
    }
    let after = v.snapshot().await;
    if after != before {
        wrong.push(format!("stored state changed: {before:?} -> {after:?}"));
    }
    assert!(
        wrong.is_empty(),
        "a JSON array is accepted in place of an object:\n  {}",
        wrong.join("\n  ")
    );
}

async fn unknown_fields_are_rejected_and_create_nothing(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    let own_id = uuid::Uuid::now_v7().to_string();
    let contact = json!({"channel": "email", "value": "mass@example.com"});
    let bodies = [
        json!({"id": own_id, "contacts": [contact]}),
        json!({"created_at": "2000-01-01T00:00:00Z", "contacts": [contact]}),
        json!({"erased_at": null, "contacts": [contact]}),
        json!({"role": "admin", "contacts": [contact]}),
        json!({"Contacts": [contact]}),
        json!({"display_name": "Mass", "displayName": "Mass", "contacts": [contact]}),
        json!({"contacts": [{"channel": "email", "value": "mass@example.com", "role": "admin"}]}),
        json!({"contacts": [{"channel": "email", "value": "mass@example.com", "id": own_id}]}),
        json!({"contacts": [{"channel": "email", "value": "mass@example.com", "customer_id": v.id}]}),
        json!({"contacts": [{"channel": "email", "value": "mass@example.com", "masked": false}]}),
        json!({"contacts": [{"channel": "email", "value": "mass@example.com", "created_at": "2000-01-01T00:00:00Z"}]}),
    ];
    for body in bodies {
        let r = v.app.create_customer(&v.svc, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        r.assert_problem(400, "invalid_request");
        let detail = r.json["detail"].as_str().unwrap_or("");
        assert!(detail.contains("unknown field"), "{body}: {detail}");
    }
    // The same key twice is not a way around the check either.
    let r = v
        .post_raw(
            "/v1/customers",
            "application/json",
            br#"{"display_name": "A", "display_name": "B", "contacts": []}"#.to_vec(),
        )
        .await;
    r.assert_problem(400, "invalid_request");

    assert_eq!(v.snapshot().await, before, "no customer was created");
    v.assert_not_found_by_lookup("email", "mass@example.com")
        .await;
    // The chosen id was not taken either.
    v.app
        .read_customer(&v.svc, &own_id, "purpose=support")
        .await
        .assert_problem(404, "not_found");

    // Control: without the extra field the body is accepted.
    let r = v
        .app
        .create_customer(&v.svc, json!({"contacts": [contact]}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_ne!(r.json["id"], own_id.as_str());
}

async fn unknown_fields_in_patch_contact_and_lookup_bodies_are_rejected(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    let other = uuid::Uuid::now_v7().to_string();
    for body in [
        json!({"display_name": "Mallory", "id": other}),
        json!({"display_name": "Mallory", "created_at": "2000-01-01T00:00:00Z"}),
        json!({"display_name": "Mallory", "erased_at": "2000-01-01T00:00:00Z"}),
        json!({"display_name": "Mallory", "contacts": []}),
        json!({"display_name": "Mallory", "external_ref": "X-1"}),
    ] {
        v.app
            .patch_customer(&v.svc, &v.id, body)
            .await
            .assert_problem(400, "invalid_request");
    }
    for body in [
        json!({"channel": "email", "value": "extra@example.com", "customer_id": other}),
        json!({"channel": "email", "value": "extra@example.com", "id": other}),
        json!({"channel": "email", "value": "extra@example.com", "masked": false}),
    ] {
        v.app
            .add_contact(&v.svc, &v.id, body)
            .await
            .assert_problem(400, "invalid_request");
    }
    v.app
        .request(
            Method::POST,
            "/v1/lookup",
            Some(&v.app.agent("phone")),
            Some(
                json!({"channel": "phone", "value": "040 123 4567", "purpose": "support",
                        "role": "admin"}),
            ),
        )
        .await
        .assert_problem(400, "invalid_request");
    assert_eq!(v.snapshot().await, before, "the profile is unchanged");
    v.assert_not_found_by_lookup("email", "extra@example.com")
        .await;
}

async fn a_value_of_the_wrong_type_is_rejected_without_echoing_it(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    let secret = "358401234567";
    let creates = [
        json!({"contacts": [{"channel": "phone", "value": 358_401_234_567_u64}]}),
        json!({"contacts": [{"channel": "phone", "value": 358_401_234_567.0}]}),
        json!({"contacts": [{"channel": "phone", "value": -358_401_234_567_i64}]}),
        json!({"contacts": [{"channel": "phone", "value": ["+358401234567"]}]}),
        json!({"contacts": [{"channel": "phone", "value": {"number": "+358401234567"}}]}),
        json!({"contacts": [{"channel": "phone", "value": "+358401234567", "label": 358_401_234_567_u64}]}),
        json!({"contacts": [{"channel": 358_401_234_567_u64, "value": "x"}]}),
        json!({"display_name": 358_401_234_567_u64, "contacts": []}),
        json!({"external_ref": [358_401_234_567_u64], "contacts": []}),
        json!({"contacts": {"channel": "phone", "value": "+358401234567"}}),
        json!({"contacts": "+358401234567"}),
        json!({"contacts": [{"channel": "phone", "value": true}]}),
        json!({"contacts": [{"channel": "phone", "value": null}]}),
    ];
    for body in creates {
        let r = v.app.create_customer(&v.svc, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        r.assert_problem(400, "invalid_request");
        assert!(
            !r.text.contains(secret),
            "{body}: the value came back: {}",
            r.text
        );
    }
    let r = v
        .app
        .request(
            Method::POST,
            "/v1/lookup",
            Some(&v.app.agent("phone")),
            Some(json!({"channel": "phone", "value": 358_401_234_567_u64, "purpose": "support"})),
        )
        .await;
    r.assert_problem(400, "invalid_request");
    assert!(!r.text.contains(secret), "{}", r.text);
    let r = v
        .app
        .add_contact(
            &v.svc,
            &v.id,
            json!({"channel": "whatsapp", "value": 358_401_234_567_u64}),
        )
        .await;
    r.assert_problem(400, "invalid_request");
    assert!(!r.text.contains(secret), "{}", r.text);
    let r = v
        .app
        .patch_customer(&v.svc, &v.id, json!({"display_name": 358_401_234_567_u64}))
        .await;
    r.assert_problem(400, "invalid_request");
    assert!(!r.text.contains(secret), "{}", r.text);
    // The detail still says which field was wrong.
    let r = v
        .app
        .create_customer(
            &v.svc,
            json!({"contacts": [{"channel": "phone", "value": 358_401_234_567_u64}]}),
        )
        .await;
    let detail = r.json["detail"].as_str().unwrap_or("");
    assert!(detail.contains("value"), "{detail}");

    assert_eq!(v.snapshot().await, before, "nothing was written");
}

async fn a_malformed_id_in_the_path_is_an_invalid_request(b: Backend) {
    let v = vault(b).await;
    let app = &v.app;
    let before = v.snapshot().await;
    let bad_ids = [
        "not-a-uuid",
        "xyz",
        "0",
        "00000000-0000-0000-0000-00000000000g",
        "00000000-0000-0000-0000-0000000000000",
        "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
        "%00",
        "1%20OR%201%3D1",
        "%F0%9F%98%80",
    ];
    for bad in bad_ids {
        app.read_customer(&v.svc, bad, "purpose=support")
            .await
            .assert_problem(400, "invalid_request");
        app.patch_customer(&v.svc, bad, json!({"display_name": "X"}))
            .await
            .assert_problem(400, "invalid_request");
        app.add_contact(&v.svc, bad, json!({"channel": "chat", "value": "v-1"}))
            .await
            .assert_problem(400, "invalid_request");
        app.remove_contact(&v.svc, &v.id, bad)
            .await
            .assert_problem(400, "invalid_request");
        app.remove_contact(&v.svc, bad, &v.contact_id)
            .await
            .assert_problem(400, "invalid_request");
    }
    let r = app.remove_contact(&v.svc, &v.id, "xyz").await;
    r.assert_problem(400, "invalid_request");
    assert_eq!(v.snapshot().await, before, "the contact is still there");
}

async fn an_invalid_email_is_invalid_email(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    for bad in [
        "pena.virtanen-at-example.com",
        "pena@",
        "@example.com",
        "pena@@example.com",
        "pena virtanen@example.com",
        "pena@example",
        "pena..v@example.com",
        "<pena@example.com>",
        "pena@example..com",
        "",
    ] {
        let r = v
            .app
            .create_customer(
                &v.svc,
                json!({"contacts": [{"channel": "email", "value": bad}]}),
            )
            .await;
        r.assert_problem(400, "invalid_email");
        if bad.len() >= 6 {
            assert_not_echoed(&r, bad);
        }
        v.app
            .add_contact(&v.svc, &v.id, json!({"channel": "email", "value": bad}))
            .await
            .assert_problem(400, "invalid_email");
        v.app
            .lookup(&v.app.agent("email"), "email", bad, "support")
            .await
            .assert_problem(400, "invalid_email");
    }
    assert_eq!(v.snapshot().await, before, "nothing was written");
}

async fn an_invalid_phone_is_invalid_phone(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    for bad in [
        "12",
        "+358",
        "040 123 4567 8901 2345 6789",
        "+1 800 FLOWERS",
        "phone",
        "+358 40 123 4567 ext. 12",
        "040#1234567",
        "---",
        "",
        &"9".repeat(80),
    ] {
        for channel in ["phone", "sms", "whatsapp"] {
            let r = v
                .app
                .create_customer(
                    &v.svc,
                    json!({"contacts": [{"channel": channel, "value": bad}]}),
                )
                .await;
            r.assert_problem(400, "invalid_phone");
            if bad.len() >= 6 {
                assert_not_echoed(&r, bad);
            }
        }
        v.app
            .add_contact(&v.svc, &v.id, json!({"channel": "sms", "value": bad}))
            .await
            .assert_problem(400, "invalid_phone");
        v.app
            .lookup(&v.app.agent("phone"), "phone", bad, "support")
            .await
            .assert_problem(400, "invalid_phone");
    }
    assert_eq!(v.snapshot().await, before, "nothing was written");
}

async fn an_unknown_channel_is_unknown_channel(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    for bad in ["pigeon", "telegram", "Email", "e-mail", "", "*", "../email"] {
        v.app
            .create_customer(
                &v.svc,
                json!({"contacts": [{"channel": bad, "value": "x@y.fi"}]}),
            )
            .await
            .assert_problem(400, "unknown_channel");
        v.app
            .create_customer(&v.svc, json!({"preferred_channel": bad, "contacts": []}))
            .await
            .assert_problem(400, "unknown_channel");
        v.app
            .add_contact(&v.svc, &v.id, json!({"channel": bad, "value": "x@y.fi"}))
            .await
            .assert_problem(400, "unknown_channel");
        v.app
            .patch_customer(&v.svc, &v.id, json!({"preferred_channel": bad}))
            .await
            .assert_problem(400, "unknown_channel");
        v.app
            .lookup(&v.svc, bad, "x@y.fi", "support")
            .await
            .assert_problem(400, "unknown_channel");
    }
    assert_eq!(v.snapshot().await, before, "nothing was written");
}

async fn an_unknown_purpose_on_lookup_is_unknown_purpose(b: Backend) {
    let v = vault(b).await;
    let agent = v.app.agent("phone");
    // Control: the lookup itself would find the customer.
    let r = v
        .app
        .lookup(&agent, "phone", "040 123 4567", "support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for bad in ["astrology", "SUPPORT", "support ", "", "*", "../support"] {
        let r = v.app.lookup(&agent, "phone", "040 123 4567", bad).await;
        r.assert_problem(400, "unknown_purpose");
        assert!(
            r.json.get("matches").is_none() && !r.text.contains(&v.id),
            "{}",
            r.text
        );
    }
    // On a read too.
    v.app
        .read_customer(&agent, &v.id, "purpose=astrology")
        .await
        .assert_problem(400, "unknown_purpose");
}

async fn an_unknown_query_parameter_is_an_invalid_request(b: Backend) {
    let v = vault(b).await;
    let agent = v.app.agent("phone");
    for query in [
        "purpose=support&admin=true",
        "purpose=support&role=compliance",
        "Purpose=support",
        "purpose=support&extra",
        "purpose=support&purpose=marketing",
        "purpose=support&reveal=false&reveal=true&reason=x",
        "purpose[]=support",
    ] {
        let r = v.app.read_customer(&agent, &v.id, query).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "?{query}: {}", r.text);
        r.assert_problem(400, "invalid_request");
        assert!(r.json.get("contacts").is_none());
    }
    // Control.
    let r = v.app.read_customer(&agent, &v.id, "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn reveal_must_be_a_boolean(b: Backend) {
    let v = vault(b).await;
    let agent = v.app.agent("phone");
    let reveals_before = v.app.audit_text().await.matches("contact.reveal").count();
    for reveal in ["maybe", "1", "yes", "TRUE", "", "true%00", "tru"] {
        let r = v
            .app
            .read_customer(
                &agent,
                &v.id,
                &format!("purpose=support&reveal={reveal}&reason=T-1"),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "reveal={reveal}: {}",
            r.text
        );
        r.assert_problem(400, "invalid_request");
        assert!(!r.text.contains("358401234567"), "{}", r.text);
    }
    assert_eq!(
        v.app.audit_text().await.matches("contact.reveal").count(),
        reveals_before,
        "nothing was revealed"
    );
    // Control: reveal=true with a reason reveals.
    let r = v
        .app
        .read_customer(&agent, &v.id, "purpose=support&reveal=true&reason=T-1")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["contacts"][0]["value"], "+358401234567");
}

async fn an_over_long_or_empty_display_name_or_field_is_refused(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    let long = "N".repeat(1000);
    for (body, code) in [
        (
            json!({"display_name": long, "contacts": []}),
            "invalid_display_name",
        ),
        (
            json!({"display_name": "N".repeat(201), "contacts": []}),
            "invalid_display_name",
        ),
        (
            json!({"display_name": "ä".repeat(201), "contacts": []}),
            "invalid_display_name",
        ),
        (
            json!({"display_name": "", "contacts": []}),
            "invalid_display_name",
        ),
        (
            json!({"display_name": "   ", "contacts": []}),
            "invalid_display_name",
        ),
        (
            json!({"display_name": "Pena\nVirtanen", "contacts": []}),
            "invalid_display_name",
        ),
        (
            json!({"external_ref": "R".repeat(1000), "contacts": []}),
            "invalid_request",
        ),
        (
            json!({"contacts": [{"channel": "chat", "value": "v-1", "label": "L".repeat(65)}]}),
            "invalid_request",
        ),
        (
            json!({"contacts": [{"channel": "chat", "value": "v".repeat(1025)}]}),
            "invalid_request",
        ),
    ] {
        let r = v.app.create_customer(&v.svc, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        r.assert_problem(400, code);
        assert_not_echoed(&r, "NNNNNNNNNN");
    }
    v.app
        .patch_customer(&v.svc, &v.id, json!({"display_name": long}))
        .await
        .assert_problem(400, "invalid_display_name");
    v.app
        .add_contact(
            &v.svc,
            &v.id,
            json!({"channel": "chat", "value": "v-2", "label": "L".repeat(65)}),
        )
        .await
        .assert_problem(400, "invalid_request");
    assert_eq!(v.snapshot().await, before, "nothing was written");

    // Control: 200 characters (multi-byte ones, too) are fine.
    let r = v
        .app
        .create_customer(
            &v.svc,
            json!({"display_name": "ä".repeat(200), "contacts": []}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

async fn one_bad_contact_rejects_the_whole_create(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    v.app
        .create_customer(
            &v.svc,
            json!({"display_name": "Half", "contacts": [
                {"channel": "email", "value": "half@example.com"},
                {"channel": "phone", "value": "not a number"}
            ]}),
        )
        .await
        .assert_problem(400, "invalid_phone");
    v.app
        .create_customer(
            &v.svc,
            json!({"display_name": "Half", "contacts": [
                {"channel": "email", "value": "half@example.com"},
                {"channel": "pigeon", "value": "coo"}
            ]}),
        )
        .await
        .assert_problem(400, "unknown_channel");
    assert_eq!(v.snapshot().await, before, "nothing was written");
    v.assert_not_found_by_lookup("email", "half@example.com")
        .await;
}

async fn an_unknown_route_is_a_not_found_problem(b: Backend) {
    let v = vault(b).await;
    // `/` is the way to the staff console (a redirect), not an unknown route.
    for (method, path) in [
        (Method::GET, "/nope"),
        (Method::GET, "/v1"),
        (Method::GET, "/v1/customer"),
        (Method::GET, "/v2/customers"),
        (Method::POST, "/v1/lookups"),
        (Method::GET, "/V1/CUSTOMERS"),
        (Method::GET, "/v1/customers/x/y/z/w"),
        (Method::GET, "/v1/../etc/passwd"),
        (Method::GET, "/%00"),
    ] {
        for token in [None, Some(v.svc.as_str())] {
            let r = v.app.request(method.clone(), path, token, None).await;
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                r.text
            );
            r.assert_problem(404, "not_found");
        }
    }
    let r = v
        .app
        .request(
            Method::GET,
            &format!("/v1/customers/{}/nope", v.id),
            Some(&v.svc),
            None,
        )
        .await;
    r.assert_problem(404, "not_found");
}

async fn a_wrong_method_is_a_method_not_allowed_problem(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    let customer = format!("/v1/customers/{}", v.id);
    let contacts = format!("/v1/customers/{}/contacts", v.id);
    let contact = format!("/v1/customers/{}/contacts/{}", v.id, v.contact_id);
    for (method, path) in [
        (Method::PUT, "/v1/customers"),
        (Method::GET, "/v1/customers"),
        (Method::DELETE, "/v1/customers"),
        (Method::PATCH, "/v1/customers"),
        (Method::GET, "/v1/lookup"),
        (Method::PUT, "/v1/lookup"),
        (Method::PUT, customer.as_str()),
        (Method::POST, customer.as_str()),
        (Method::GET, contacts.as_str()),
        (Method::PUT, contacts.as_str()),
        (Method::GET, contact.as_str()),
        (Method::PUT, contact.as_str()),
        (Method::PATCH, contact.as_str()),
        (Method::POST, "/healthz"),
    ] {
        let r = v
            .app
            .request(
                method.clone(),
                path,
                Some(&v.svc),
                Some(json!({"display_name": "Wrong", "contacts": []})),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}: {}",
            r.text
        );
        r.assert_problem(405, "method_not_allowed");
    }
    assert_eq!(v.snapshot().await, before, "nothing was written");
}

async fn every_problem_carries_the_request_id(b: Backend) {
    let v = vault(b).await;
    let app = &v.app;
    let url = |p: &str| format!("{}{p}", app.address);
    let requests = [
        // 400
        app.client
            .post(url("/v1/customers"))
            .bearer_auth(&v.svc)
            .json(&json!({"contacts": [{"channel": "email", "value": "nope"}]})),
        // 401
        app.client
            .get(url(&format!("/v1/customers/{}?purpose=support", v.id))),
        // 404
        app.client.get(url("/nope")),
        // 405
        app.client.put(url("/v1/customers")).bearer_auth(&v.svc),
        // 413
        app.client
            .post(url("/v1/customers"))
            .bearer_auth(&v.svc)
            .header("content-type", "application/json")
            .body(vec![b' '; MIB + 1]),
        // 415
        app.client
            .post(url("/v1/lookup"))
            .bearer_auth(&v.svc)
            .header("content-type", "text/plain")
            .body("{}"),
    ];
    let mut seen = Vec::new();
    for rb in requests {
        let r = send(rb).await;
        let header = r.header("x-request-id").map(str::to_owned);
        assert!(r.status.is_client_error(), "{}", r.text);
        assert_eq!(r.content_type, "application/problem+json", "{}", r.text);
        let id = r.json["request_id"].as_str().unwrap_or("").to_owned();
        assert!(
            uuid::Uuid::parse_str(&id).is_ok(),
            "request_id is a UUID: {}",
            r.text
        );
        assert_eq!(
            header.as_deref(),
            Some(id.as_str()),
            "x-request-id matches the body"
        );
        for key in ["type", "title", "status", "detail", "code"] {
            assert!(r.json.get(key).is_some(), "{key} in {}", r.text);
        }
        assert!(!seen.contains(&id), "request ids are unique");
        seen.push(id);
    }
    // A client-supplied request id is not taken over.
    let r = send(
        app.client
            .get(url("/nope"))
            .header("x-request-id", "injected\" id"),
    )
    .await;
    let header = r.header("x-request-id").map(str::to_owned);
    assert_ne!(r.json["request_id"], "injected\" id");
    assert_ne!(header.as_deref(), Some("injected\" id"));
}

/// Odd strings for every text field.
fn hostile_strings() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "\t",
        "\r\n",
        "\u{0000}",
        "a\u{0000}b",
        "\u{0007}\u{0008}",
        "\u{001b}[31mred\u{001b}[0m",
        "\u{007f}",
        "\u{200B}",
        "\u{202E}gnp.exe",
        "\u{FEFF}pena@example.com",
        "\u{FFFF}",
        "\u{10FFFF}",
        "😀",
        "👨\u{200D}👩\u{200D}👧",
        "Ω≈ç√∫",
        "Pe\u{0301}na",
        "ｐｅｎａ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        "../../etc/passwd",
        "..\\..\\windows\\system32",
        "%00",
        "%2e%2e%2f",
        "' OR 1=1 --",
        "\"; DROP TABLE customers; --",
        "1); DELETE FROM audit_log; --",
        "\\",
        "\\u0000",
        "<script>alert(1)</script>",
        "${jndi:ldap://x/a}",
        "{{7*7}}",
        "%s%s%s%n",
        "+",
        "++358",
        "+358 40 123 4567 ext 5",
        "@",
        "a@b@c",
        "null",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.push("0".repeat(100));
    v.push("9".repeat(5000));
    v.push("\u{0000}".repeat(1000));
    v.push("x".repeat(200_000));
    // ~600 KB of two-byte characters: long, yet under 1 MiB.
    v.push("é".repeat(300_000));
    v
}

/// Odd JSON values that are not strings.
fn hostile_values() -> Vec<Value> {
    let mut nested = json!([]);
    for _ in 0..100 {
        nested = json!([nested]);
    }
    vec![
        Value::Null,
        json!(true),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e308),
        json!(-0.0),
        json!([]),
        json!([[[["a"]]]]),
        nested,
        json!({}),
        json!({"$ne": null}),
    ]
}

/// Every status is 2xx or 4xx; every non-2xx is a problem+json with a code.
#[track_caller]
fn assert_clean_answer(r: &Reply, what: &str) {
    let s = r.status.as_u16();
    assert!(
        r.status.is_success() || r.status.is_client_error(),
        "{what}: status {s}: {}",
        r.text.chars().take(500).collect::<String>()
    );
    if !r.status.is_success() {
        assert_eq!(
            r.content_type, "application/problem+json",
            "{what}: {}",
            r.text
        );
        assert_eq!(r.json["status"], s, "{what}: {}", r.text);
        assert!(
            r.json["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{what}: {}",
            r.text
        );
    }
}

async fn hostile_input_never_causes_a_server_error(b: Backend) {
    let v = vault(b).await;
    let app = &v.app;
    let agents: Vec<(&str, String)> = ["email", "phone", "instagram", "chat", "postal"]
        .into_iter()
        .map(|c| (c, app.agent(c)))
        .collect();
    let mut inputs: Vec<Value> = hostile_strings().into_iter().map(Value::String).collect();
    inputs.extend(hostile_values());
    let short = |x: &Value| x.to_string().chars().take(40).collect::<String>();

    for x in &inputs {
        let sx = short(x);
        let secret = x.as_str().filter(|s| s.chars().count() >= 8);
        // Create: the input as value (every kind), channel, label, display name.
        for (channel, agent) in &agents {
            let r = app
                .create_customer(
                    &v.svc,
                    json!({"contacts": [{"channel": channel, "value": x}]}),
                )
                .await;
            assert_clean_answer(&r, &format!("create {channel} value {sx}"));
            if let (false, Some(s)) = (r.status.is_success(), secret) {
                assert_not_echoed(&r, s);
            }
            let r = lookup_value(app, agent, channel, x).await;
            assert_clean_answer(&r, &format!("lookup {channel} value {sx}"));
            if let (false, Some(s)) = (r.status.is_success(), secret) {
                assert_not_echoed(&r, s);
            }
        }
        for body in [
            json!({"contacts": [{"channel": x, "value": "v-1"}]}),
            json!({"contacts": [{"channel": "chat", "value": "v-1", "label": x}]}),
            json!({"display_name": x, "contacts": []}),
            json!({"external_ref": x, "contacts": []}),
            json!({"preferred_channel": x, "contacts": []}),
            json!({"display_name": x, "external_ref": x,
                   "contacts": [{"channel": "chat", "value": x, "label": x}]}),
        ] {
            let r = app.create_customer(&v.svc, body).await;
            assert_clean_answer(&r, &format!("create with {sx}"));
        }
        let r = app
            .request(
                Method::POST,
                "/v1/lookup",
                Some(&v.svc),
                Some(json!({"channel": x, "value": "v-1", "purpose": "support"})),
            )
            .await;
        assert_clean_answer(&r, &format!("lookup channel {sx}"));
        let r = app
            .request(
                Method::POST,
                "/v1/lookup",
                Some(&v.svc),
                Some(json!({"channel": "chat", "value": "v-1", "purpose": x})),
            )
            .await;
        assert_clean_answer(&r, &format!("lookup purpose {sx}"));
        // Update and add contact on the existing customer.
        let r = app
            .patch_customer(&v.svc, &v.id, json!({"display_name": x}))
            .await;
        assert_clean_answer(&r, &format!("patch display_name {sx}"));
        let r = app
            .add_contact(
                &v.svc,
                &v.id,
                json!({"channel": "chat", "value": x, "label": x}),
            )
            .await;
        assert_clean_answer(&r, &format!("add contact {sx}"));
        // And in the query string of a read.
        if let Some(s) = x.as_str().filter(|s| s.len() < 2000) {
            let q: String = url_encode(s);
            for query in [
                format!("purpose={q}"),
                format!("purpose=support&reason={q}"),
                format!("purpose=support&reveal=true&reason={q}"),
            ] {
                let r = app.read_customer(&agents[1].1, &v.id, &query).await;
                assert_clean_answer(&r, &format!("read ?{}", short(&json!(query))));
            }
        }
    }

    // Hostile JSON documents as whole bodies.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let deep_object = format!(
        "{}{}",
        r#"{"display_name":"#.repeat(10_000),
        "}".repeat(10_000)
    );
    let raw_bodies: Vec<Vec<u8>> = vec![
        deep.into_bytes(),
        deep_object.into_bytes(),
        br#"{"contacts": [], "display_name": 1e999999}"#.to_vec(),
        format!(
            r#"{{"contacts": [{{"channel": "phone", "value": {}}}]}}"#,
            "9".repeat(100_000)
        )
        .into_bytes(),
        br#"{"display_name": "\udfff\ud800", "contacts": []}"#.to_vec(),
        br#"{"display_name": "\u0000", "contacts": []}"#.to_vec(),
        format!(
            r#"{{"contacts": [{}]}}"#,
            vec![r#"{"channel":"chat","value":"v"}"#; 5000].join(",")
        )
        .into_bytes(),
        format!(
            r#"{{"contacts": [], "display_name": "{}"}}"#,
            "\\u0000".repeat(100_000)
        )
        .into_bytes(),
    ];
    for body in raw_bodies {
        for path in ["/v1/customers", "/v1/lookup"] {
            let r = v.post_raw(path, "application/json", body.clone()).await;
            assert_clean_answer(&r, &format!("raw body to {path}"));
            assert!(!r.status.is_success(), "{path}: {}", r.text);
        }
    }

    // The vault is still healthy and working, for an agent whose lookup
    // allowance the loop above did not spend (`agent-1` may by now be
    // rate limited, rightly, however fast this machine ran the loop).
    let r = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let fresh = app.token(Tok {
        role: Role::Agent,
        sub: "agent-after-the-storm",
        purposes: &["support"],
        channel: Some("phone"),
    });
    let r = app.read_customer(&fresh, &v.id, "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.lookup(&fresh, "phone", "040 123 4567", "support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A lookup whose value may be any JSON.
async fn lookup_value(app: &TestApp, token: &str, channel: &str, value: &Value) -> Reply {
    app.request(
        Method::POST,
        "/v1/lookup",
        Some(token),
        Some(json!({"channel": channel, "value": value, "purpose": "support"})),
    )
    .await
}

async fn hostile_input_to_consents_interactions_and_rights_never_causes_a_server_error(b: Backend) {
    let v = vault(b).await;
    let app = &v.app;
    let agent = app.agent("phone");
    let compliance = app.compliance();
    let me = app.token(crate::helpers::Tok {
        role: arkku::domain::Role::Customer,
        sub: &v.id,
        purposes: &[],
        channel: None,
    });
    let interactions = format!("/v1/customers/{}/interactions", v.id);
    let consents = format!("/v1/customers/{}/consents", v.id);
    let r = app
        .request(
            Method::POST,
            &interactions,
            Some(&agent),
            Some(json!({"channel": "phone", "kind": "complaint", "body": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let iid = r.json["id"].as_str().unwrap().to_owned();
    let resolve = format!("{interactions}/{iid}");

    let mut inputs: Vec<Value> = hostile_strings().into_iter().map(Value::String).collect();
    inputs.extend(hostile_values());
    let short = |x: &Value| x.to_string().chars().take(40).collect::<String>();
    let evidence = json!({"notice_id": "n", "notice_version": "1"});
    for x in &inputs {
        let sx = short(x);
        let bodies: Vec<(Method, &str, &str, Value)> = vec![
            (
                Method::POST,
                &interactions,
                &agent,
                json!({"channel": x, "kind": "complaint", "body": "b"}),
            ),
            (
                Method::POST,
                &interactions,
                &agent,
                json!({"channel": "phone", "kind": x, "body": "b"}),
            ),
            (
                Method::POST,
                &interactions,
                &agent,
                json!({"channel": "phone", "kind": "complaint", "body": x}),
            ),
            (
                Method::POST,
                &interactions,
                &agent,
                json!({"channel": "phone", "kind": "contact_request", "body": "b", "due_at": x}),
            ),
            (Method::PATCH, &resolve, &agent, json!({"resolved": x})),
            (
                Method::POST,
                &consents,
                &agent,
                json!({"purpose": x, "channel": "email", "action": "grant", "method": "spoken", "evidence": evidence}),
            ),
            (
                Method::POST,
                &consents,
                &agent,
                json!({"purpose": "cross_channel", "channel": x, "action": "grant", "method": "spoken", "evidence": evidence}),
            ),
            (
                Method::POST,
                &consents,
                &agent,
                json!({"purpose": "cross_channel", "channel": "email", "action": x, "method": "spoken", "evidence": evidence}),
            ),
            (
                Method::POST,
                &consents,
                &agent,
                json!({"purpose": "cross_channel", "channel": "email", "action": "grant", "method": x, "evidence": evidence}),
            ),
            (
                Method::POST,
                &consents,
                &agent,
                json!({"purpose": "cross_channel", "channel": "email", "action": "grant", "method": "spoken", "evidence": x}),
            ),
            (
                Method::POST,
                &consents,
                &agent,
                json!({"purpose": "cross_channel", "channel": "email", "action": "grant", "method": "spoken", "evidence": {"notice_id": x, "notice_version": x}}),
            ),
            (
                Method::POST,
                &consents,
                &agent,
                json!({"purpose": "cross_channel", "channel": "email", "action": "grant", "method": "spoken", "evidence": evidence, "expires_at": x}),
            ),
            (
                Method::POST,
                "/v1/me/consents",
                &me,
                json!({"purpose": "marketing", "channel": x, "action": "withdraw", "method": "web_form"}),
            ),
        ];
        for (method, path, token, body) in bodies {
            let r = app
                .request(method.clone(), path, Some(token), Some(body))
                .await;
            assert_clean_answer(&r, &format!("{method} {path} with {sx}"));
        }
        if let Some(s) = x.as_str().filter(|s| s.len() < 2000) {
            let q = url_encode(s);
            let reads = [
                (format!("{interactions}?purpose={q}"), &agent),
                (format!("{interactions}?purpose=support&reason={q}"), &agent),
                (
                    format!("/v1/interactions/overdue?purpose=support&limit={q}"),
                    &agent,
                ),
                (format!("/v1/interactions/overdue?purpose={q}"), &agent),
                (format!("/v1/me/export?format={q}"), &me),
                (
                    format!("/v1/customers/{}/export?purpose=dsr&format={q}", v.id),
                    &compliance,
                ),
                (
                    format!("/v1/customers/{}/export?purpose={q}", v.id),
                    &compliance,
                ),
                (
                    format!("/v1/customers/{}/export?purpose=dsr&reason={q}", v.id),
                    &compliance,
                ),
                (
                    format!("/v1/customers/{q}/interactions?purpose=support"),
                    &agent,
                ),
                (format!("/v1/customers/{q}/export?purpose=dsr"), &compliance),
            ];
            for (path, token) in reads {
                let r = app.request(Method::GET, &path, Some(token), None).await;
                assert_clean_answer(&r, &format!("GET {}", short(&json!(path))));
            }
            let r = app
                .request(
                    Method::DELETE,
                    &format!("/v1/customers/{q}?reason=CASE-1"),
                    Some(&compliance),
                    None,
                )
                .await;
            assert_clean_answer(&r, &format!("DELETE customer {sx}"));
        }
    }
    // Hostile whole bodies to the newer POST and PATCH endpoints.
    let raw_bodies: Vec<Vec<u8>> = vec![
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(),
        br#"{"channel": "phone", "kind": "complaint", "body": "\udfff\ud800"}"#.to_vec(),
        br#"{"resolved": 1e999999}"#.to_vec(),
        b"\xff\xfe{}".to_vec(),
    ];
    for body in raw_bodies {
        for (method, path, token) in [
            (Method::POST, interactions.as_str(), &agent),
            (Method::PATCH, resolve.as_str(), &agent),
            (Method::POST, consents.as_str(), &agent),
            (Method::POST, "/v1/me/consents", &me),
        ] {
            let r = app
                .client
                .request(method.clone(), format!("{}{path}", app.address))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("send");
            let r = Reply::read(r).await;
            assert_clean_answer(&r, &format!("raw body to {method} {path}"));
            assert!(!r.status.is_success(), "{path}: {}", r.text);
        }
    }
    // The vault still answers for the customer, and the chain verifies.
    let r = app
        .request(
            Method::GET,
            &format!("{interactions}?purpose=support"),
            Some(&agent),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    app.assert_chain_verifies().await;
}

/// Display names an agent would see reordered or that hide characters: a
/// right-to-left override (the attack's), the other bidirectional controls,
/// zero-width characters, a byte-order mark, a soft hyphen, tag characters.
const INVISIBLE_NAMES: [&str; 14] = [
    "Pena \u{202E}nenatriV",
    "\u{202A}Pena",
    "Pena\u{202B}",
    "Pe\u{202C}na",
    "Pe\u{202D}na",
    "Pena \u{2066}V\u{2069}",
    "Pena \u{2067}V",
    "Pena \u{2068}V",
    "Pe\u{200E}na\u{200F}",
    "Pena\u{061C} V",
    "Pe\u{200B}na",
    "Pe\u{200D}na",
    "\u{FEFF}Pena\u{2060}",
    "Pena\u{E0041}\u{E0042}",
];

async fn a_display_name_with_bidirectional_or_invisible_characters_is_refused_on_create_and_patch(
    b: Backend,
) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    for name in INVISIBLE_NAMES {
        // Create: refused, nothing stored.
        let r = v
            .app
            .create_customer(
                &v.svc,
                json!({"display_name": name, "contacts": [{"channel": "chat", "value": "v-9"}]}),
            )
            .await;
        r.assert_problem(400, "invalid_display_name");
        assert!(
            r.json["detail"].as_str().unwrap().contains("invisible"),
            "{name:?}: the detail names the rule: {}",
            r.text
        );
        assert_not_echoed(&r, "Pe");
        // Patch: refused, the stored name unchanged.
        let r = v
            .app
            .patch_customer(&v.svc, &v.id, json!({"display_name": name}))
            .await;
        r.assert_problem(400, "invalid_display_name");
        assert_not_echoed(&r, "Pe");
    }
    assert_eq!(v.snapshot().await, before, "nothing was written");
    assert_eq!(v.profile().await["display_name"], "Pena Virtanen");
}

async fn a_label_or_reason_with_invisible_characters_is_refused(b: Backend) {
    let v = vault(b).await;
    let before = v.snapshot().await;
    let r = v
        .app
        .add_contact(
            &v.svc,
            &v.id,
            json!({"channel": "chat", "value": "v-3", "label": "ko\u{200B}ti"}),
        )
        .await;
    r.assert_problem(400, "invalid_request");
    let r = v
        .app
        .create_customer(
            &v.svc,
            json!({"external_ref": "CRM\u{202E}77", "contacts": []}),
        )
        .await;
    r.assert_problem(400, "invalid_request");
    let r = v
        .app
        .read_customer(
            &v.app.agent("phone"),
            &v.id,
            "purpose=support&reveal=true&reason=TICKET%E2%80%AE42",
        )
        .await;
    r.assert_problem(400, "invalid_request");
    assert_eq!(v.snapshot().await, before, "nothing was written");
}

async fn a_display_name_with_an_emoji_sequence_or_a_persian_joiner_is_kept_as_written(b: Backend) {
    let v = vault(b).await;
    // A technologist emoji (ZWJ between two emoji), and a Persian name with
    // a zero-width non-joiner between two letters: writing, not hiding.
    for name in [
        "Pena \u{1F469}\u{200D}\u{1F4BB}",
        "\u{0645}\u{06CC}\u{200C}\u{062E}\u{0648}\u{0627}\u{0647}\u{0645}",
    ] {
        let r = v
            .app
            .create_customer(&v.svc, json!({"display_name": name, "contacts": []}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{name:?}: {}", r.text);
        let id = r.json["id"].as_str().unwrap().to_owned();
        let r = v.app.read_customer(&v.svc, &id, "purpose=support").await;
        assert_eq!(r.json["display_name"], name, "{}", r.text);
        let r = v
            .app
            .patch_customer(&v.svc, &v.id, json!({"display_name": name}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
        assert_eq!(v.profile().await["display_name"], name);
    }
}
