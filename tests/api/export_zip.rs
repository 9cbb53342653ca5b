//! The export ZIP a customer (or a privacy officer on their behalf) downloads
//! and opens in a spreadsheet: READMEs in English and Finnish, column names
//! in words, local times with their zone, retention rows that say what they
//! are about, phone numbers without a visible quote, and no cell a
//! spreadsheet would run.

use std::io::Read;

use arkku::domain::DisplayZone;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, Backend, Scenario, TestApp};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_customers_zip_reads_plainly_and_runs_nothing,
        a_privacy_officers_zip_shows_times_in_the_configured_zone,
    ]
}

const EVIL: &str = "=HYPERLINK(\"http://evil\")";

/// A customer with a phone number, an e-mail address, a user name, a
/// hostile name, an interaction and a consent, read once by a phone agent
/// (the e-mail withheld), then the customer's ZIP and JSON exports.
async fn customer_with_history(app: &TestApp) -> String {
    let id = app
        .create_customer_ok(
            &app.service(),
            json!({"display_name": EVIL, "contacts": [
                {"channel": "phone", "value": "040 765 4321", "label": "koti"},
                {"channel": "email", "value": "pena.zip@example.com", "label": "-work"},
                {"channel": "instagram", "value": "@pena_zip"}
            ]}),
        )
        .await;
    let read = app
        .read_customer(&app.agent("phone"), &id, "purpose=support")
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    let r = app
        .request(
            Method::POST,
            &format!("/v1/customers/{id}/interactions"),
            Some(&app.agent("phone")),
            Some(json!({"channel": "phone", "kind": "contact_request", "body": "+1+cmd|' /C calc'!A0"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let grant = json!({"purpose": "cross_channel", "channel": "email", "action": "grant",
        "method": "web_form", "evidence": {"notice_id": "privacy-2026", "notice_version": "3"}});
    let r = app
        .request(
            Method::POST,
            "/v1/me/consents",
            Some(&app.customer(&id)),
            Some(grant),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    id
}

/// The ZIP at `path` with `token`: its files by name (READMEs as text, CSV
/// files as rows of cells, the byte-order mark checked and removed).
async fn zip_files(app: &TestApp, token: &str, path: &str) -> Vec<(String, String)> {
    let r = app
        .client
        .get(format!("{}{path}", app.address))
        .bearer_auth(token)
        .send()
        .await
        .expect("export");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/zip");
    let bytes = r.bytes().await.expect("body");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip");
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).expect("a file");
        let mut text = String::new();
        f.read_to_string(&mut text).expect("utf-8");
        let name = f.name().expect("a file name").into_owned();
        if name.ends_with(".csv") {
            text = text
                .strip_prefix('\u{feff}')
                .expect("a byte-order mark")
                .to_owned();
        }
        files.push((name, text));
    }
    files
}

fn file<'a>(files: &'a [(String, String)], name: &str) -> &'a str {
    &files.iter().find(|(n, _)| n == name).expect(name).1
}

fn rows(csv_text: &str) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(csv_text.as_bytes());
    r.records()
        .map(|rec| rec.expect("a CSV row").iter().map(str::to_owned).collect())
        .collect()
}

/// What a spreadsheet would run: a cell starting (after whitespace) with
/// `=`, `+`, `-`, `@` or their full-width forms, or with a tab or CR.
fn runnable(cell: &str) -> bool {
    cell.starts_with(['\t', '\r'])
        || cell
            .trim_start()
            .starts_with(['=', '+', '-', '@', '＝', '＋', '－', '＠'])
}

/// Every cell of every CSV file is inert.
fn assert_nothing_runs(files: &[(String, String)]) {
    for (name, text) in files.iter().filter(|(n, _)| n.ends_with(".csv")) {
        for row in rows(text) {
            for cell in row {
                assert!(!runnable(&cell), "{name}: {cell:?}");
            }
        }
    }
}

/// The READMEs: plain words, the zone, the reason codes.
fn assert_readmes(files: &[(String, String)]) {
    let readme = file(files, "README.txt");
    assert!(readme.contains("Europe/Helsinki"), "{readme}");
    assert!(readme.contains("consent_required") && readme.contains("retention_expired"));
    assert!(readme.contains("JSON"));
    let lueminut = file(files, "LUEMINUT.txt");
    assert!(lueminut.contains("Europe/Helsinki") && lueminut.contains("SYYKOODIT"));
}

/// Column names in words; the phone number reads naturally, with no quote
/// before it. Returns the phone's row.
fn assert_contacts_read_naturally(files: &[(String, String)]) -> Vec<String> {
    let contacts = rows(file(files, "contacts.csv"));
    assert_eq!(
        contacts[0],
        [
            "Channel",
            "Contact type",
            "Value",
            "Label",
            "Added on",
            "Last used on",
            "Will be deleted on",
            "Contact id"
        ]
    );
    assert_eq!(contacts.len(), 4);
    let phone = contacts.iter().find(|r| r[0] == "phone").expect("phone");
    assert_eq!(phone[1], "phone number");
    assert_eq!(phone[2], "(+358) 40 7654321");
    let email = contacts.iter().find(|r| r[0] == "email").expect("email");
    assert_eq!(email[2], "pena.zip@example.com");
    assert_eq!(email[3], "'-work");
    for (name, text) in files {
        assert!(!text.contains("'+358") && !text.contains("'(+"), "{name}");
    }
    phone.clone()
}

async fn a_customers_zip_reads_plainly_and_runs_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let id = customer_with_history(&app).await;
    let files = zip_files(&app, &app.customer(&id), "/v1/me/export?format=zip").await;
    let mut names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "LUEMINUT.txt",
            "README.txt",
            "access_log.csv",
            "consents.csv",
            "contacts.csv",
            "customer.csv",
            "export.csv",
            "interactions.csv",
            "retention.csv"
        ]
    );
    assert_readmes(&files);
    let phone = assert_contacts_read_naturally(&files);

    // Local times with the zone, the same instants as the JSON's UTC.
    let json = app
        .request(Method::GET, "/v1/me/export", Some(&app.customer(&id)), None)
        .await;
    assert_eq!(json.status, StatusCode::OK, "{}", json.text);
    let zone = DisplayZone::parse("Europe/Helsinki").unwrap();
    let phone_json = json.json["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "phone")
        .unwrap();
    let created = phone_json["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z'), "the JSON keeps UTC: {created}");
    assert_eq!(phone[4], zone.local_rfc3339(created));
    assert!(
        phone[4].contains(" (Europe/Helsinki, UTC+0"),
        "{}",
        phone[4]
    );

    // The hostile name and body are written as text, not formulas.
    let customer = rows(file(&files, "customer.csv"));
    assert_eq!(customer[0][1], "Name");
    assert_eq!(customer[1][1], format!("'{EVIL}"));
    let interactions = rows(file(&files, "interactions.csv"));
    assert_eq!(interactions[1][1], "contact request");
    assert_eq!(interactions[1][2], "'+1+cmd|' /C calc'!A0");
    assert_nothing_runs(&files);

    assert_access_log_and_retention_in_words(&files, &json.json);
    app.request(
        Method::GET,
        "/v1/me/export?format=xml",
        Some(&app.customer(&id)),
        None,
    )
    .await
    .assert_problem(400, "invalid_request");
}

/// The access log says what happened and why in words and codes; each
/// retention row names its item and what happens then.
fn assert_access_log_and_retention_in_words(files: &[(String, String)], json: &Value) {
    let log = rows(file(files, "access_log.csv"));
    assert_eq!(
        log[0],
        [
            "When",
            "What happened",
            "By whom",
            "Purpose",
            "Channel",
            "Outcome",
            "Reason codes",
            "Entry number"
        ]
    );
    let read = log
        .iter()
        .find(|r| r[1] == "your details were viewed")
        .expect("the agent's read");
    assert_eq!(read[2], "a customer service agent");
    assert_eq!(read[5], "allowed");
    assert!(read[6].contains("phone shown: same_channel"), "{read:?}");
    assert!(
        read[6].contains("email withheld: consent_required"),
        "{read:?}"
    );
    let entry = json["access_log"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "customer.read")
        .unwrap();
    assert!(entry["reasons"]
        .as_array()
        .unwrap()
        .contains(&json!({"outcome": "withheld", "channel": "email", "code": "consent_required"})));

    let retention = rows(file(files, "retention.csv"));
    assert_eq!(
        retention[0],
        [
            "About",
            "Channel",
            "Will be deleted on",
            "What happens then",
            "Item id"
        ]
    );
    let phone = retention
        .iter()
        .find(|r| r[0] == "Your phone number (+358) 40 7654321")
        .expect("the phone's retention row");
    assert!(phone[2].contains("(Europe/Helsinki, UTC+0"), "{phone:?}");
    assert_eq!(
        phone[3],
        "This contact point is deleted for good, unless it is used again before then."
    );
    assert!(retention
        .iter()
        .any(|r| r[0].starts_with("Your contact request recorded on ")));
    assert!(retention
        .iter()
        .any(|r| r[0].starts_with("Consent for cross_channel given on ")));
}

async fn a_privacy_officers_zip_shows_times_in_the_configured_zone(b: Backend) {
    let app = spawn_app_with(b, |c| {
        c.display_zone = DisplayZone::parse("America/New_York").unwrap();
    })
    .await;
    let id = customer_with_history(&app).await;
    let files = zip_files(
        &app,
        &app.compliance(),
        &format!("/v1/customers/{id}/export?purpose=dsr&format=zip"),
    )
    .await;
    let about = rows(file(&files, "export.csv"));
    assert_eq!(
        about[0],
        ["Format", "Customer id", "Exported on", "Times are in"]
    );
    assert_eq!(about[1][0], "arkku-export/1");
    assert_eq!(about[1][1], id);
    assert!(
        about[1][2].contains("(America/New_York, UTC-0"),
        "{:?}",
        about[1]
    );
    assert_eq!(about[1][3], "America/New_York");
    assert!(file(&files, "README.txt").contains("2026-12-02 05:14 (America/New_York, UTC-05:00)"));
    assert!(file(&files, "LUEMINUT.txt").contains("America/New_York"));
    assert_nothing_runs(&files);
}
