//! The console's audit trail in real headless Chromium: the compliance
//! officer `anna` filters the trail to one customer, downloads the CSV and
//! its manifest through the page and proves them with the real `arkku audit
//! verify-export`; opens an entry and sees the hashes the API gives;
//! verifies the chain, tampers with an entry and sees it named. Through a
//! plain HTTP client: a malformed filter's 400 form and the verify form's
//! CSRF refusal. An admin gets no trail.

use arkku::{
    audit::checkpoint,
    crypto::{hex, CheckpointSigner, SecretKey},
    store::audit::CheckpointRow,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::audit_export::verify_export;
use crate::console::{console, plain, Console};
use crate::helpers::{Backend, Scenario};
use crate::scenarios;
use crate::users::aids::{add_user, cli_ok, code, PASSWORD, T0};

pub fn tests() -> Vec<Scenario> {
    scenarios![
        an_officer_filters_the_trail_to_one_customer_and_proves_the_download,
        an_entry_page_shows_the_hashes_the_api_gives,
        verifying_the_chain_says_ok_then_names_a_tampered_entry,
        a_malformed_filter_is_named_and_the_verify_form_needs_its_csrf_token,
        the_checkpoints_list_says_whose_signature_each_carries,
        an_admin_gets_no_audit_trail,
    ]
}

/// A reason a hostile caller might record; it must render as text.
const HOSTILE: &str = "<script>alert(1)</script>";

/// The console with two customers, each created and read by a phone agent
/// (one read with a hostile reason), and `anna` signed in.
async fn seeded(b: Backend, test: &str) -> Option<(Console, String, String)> {
    let mut c = console(b, test).await?;
    let phone = c.app.agent("phone");
    let mut ids = Vec::new();
    for value in ["040 123 4567", "040 765 4321"] {
        let body = json!({"contacts": [{"channel": "phone", "value": value}]});
        ids.push(c.app.create_customer_ok(&phone, body).await);
    }
    let hostile = "purpose=support&reason=%3Cscript%3Ealert(1)%3C%2Fscript%3E";
    for (id, query) in [(&ids[0], "purpose=support"), (&ids[1], hostile)] {
        let r = c.app.read_customer(&phone, id, query).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    c.sign_in(T0).await;
    // Tall enough for the trail's table, the verification's report and
    // the checkpoints in one screenshot.
    c.browser.resize(1100, 1500).await;
    let other = ids.pop().unwrap();
    let one = ids.pop().unwrap();
    Some((c, one, other))
}

/// The entries `GET /v1/audit` gives for `customer`.
async fn api_entries(c: &Console, customer: &str) -> Vec<Value> {
    let r = c
        .app
        .client
        .get(c.url("/v1/audit"))
        .bearer_auth(c.app.compliance())
        .query(&[("customer_id", customer)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    v["entries"].as_array().unwrap().clone()
}

/// The trail filtered to `customer` through the form.
async fn filter_to(c: &Console, customer: &str) {
    c.browser.goto(&c.url("/console/audit")).await;
    c.browser.type_into("#customer_id", customer).await;
    c.browser.click_and_wait("#apply-filters").await;
}

/// The session cookie header of the browser's session.
async fn cookie(c: &Console) -> String {
    format!("arkku_session={}", c.session().await)
}

async fn an_officer_filters_the_trail_to_one_customer_and_proves_the_download(b: Backend) {
    let Some((mut c, one, other)) = seeded(b, "audit_trail").await else {
        return;
    };
    filter_to(&c, &one).await;

    let expected = api_entries(&c, &one).await;
    assert_eq!(expected.len(), 2, "created and read");
    assert_eq!(c.browser.count("tr.entry-row").await, expected.len());
    let table = c.browser.text("#trail").await;
    assert!(table.contains(&one), "{table}");
    assert!(!table.contains(&other), "only that customer: {table}");
    assert!(
        c.browser.current_url().await.contains(&one),
        "a filtered view is a link"
    );
    c.browser.screenshot("trail-filtered").await;

    let csv_path = c.browser.download("#download-csv").await;
    let manifest_path = c.browser.download("#download-manifest").await;
    let through = c.app.scalar("SELECT MAX(seq) FROM audit_log").await - 1;
    let name = |p: &std::path::Path| p.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name(&csv_path), format!("arkku-audit-{through}.csv"));
    assert_eq!(
        name(&manifest_path),
        format!("arkku-audit-{through}.manifest.json")
    );
    let bytes = std::fs::read(&csv_path).unwrap();
    let body = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .expect("a byte-order mark");
    let mut reader = csv::Reader::from_reader(body);
    let column = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "customer_id")
        .expect("a customer_id column");
    let customers: Vec<String> = reader
        .records()
        .map(|r| r.unwrap()[column].to_owned())
        .collect();
    assert_eq!(customers, vec![one.clone(); 2], "that customer's rows only");

    let ran = verify_export(&c.app, &csv_path, &manifest_path).await;
    assert!(ran.status.success(), "{}\n{}", ran.stdout, ran.stderr);
    assert!(ran.stderr.contains("the export verifies"), "{}", ran.stderr);
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(
        manifest["through"], through,
        "both pinned to the page's bound"
    );
    assert_eq!(manifest["filters"]["customer_id"], one.as_str());
    c.browser.close().await;
}

async fn an_entry_page_shows_the_hashes_the_api_gives(b: Backend) {
    let Some((mut c, one, _)) = seeded(b, "audit_entry").await else {
        return;
    };
    filter_to(&c, &one).await;
    let read = api_entries(&c, &one).await.pop().unwrap();
    let seq = read["seq"].as_i64().unwrap();

    c.browser.click_and_wait(&format!("#entry-{seq}")).await;

    assert_eq!(c.browser.text("#entry-seq").await, seq.to_string());
    assert_eq!(c.browser.text("#entry-hash").await, read["hash"]);
    assert_eq!(c.browser.text("#entry-prev-hash").await, read["prev_hash"]);
    assert_eq!(c.browser.text("#entry-action").await, "customer.read");
    assert!(c.browser.text("#entry-detail").await.contains("revealed"));
    c.browser.screenshot("entry-detail").await;

    c.browser.click_and_wait("#previous-entry").await;
    assert_eq!(c.browser.text("#entry-seq").await, (seq - 1).to_string());
    assert_eq!(c.browser.text("#entry-hash").await, read["prev_hash"]);

    // In Finnish, the switch returns to the trail.
    c.browser.click_and_wait("#switch-language").await;
    assert_eq!(c.browser.text("h1").await, "Tarkastusloki");
    assert!(
        c.browser.count("tr.entry-row").await >= 4,
        "the whole trail"
    );
    c.browser.screenshot("trail-fi").await;
    c.browser.close().await;
}

async fn verifying_the_chain_says_ok_then_names_a_tampered_entry(b: Backend) {
    let Some((mut c, one, _)) = seeded(b, "audit_verify").await else {
        return;
    };
    c.browser.goto(&c.url("/console/audit")).await;
    assert!(
        c.browser.text("#trail").await.contains(HOSTILE),
        "the hostile reason is shown as text"
    );
    assert!(!c.browser.alert_open().await, "and no script ran");

    // A signed checkpoint of the head, as `arkku audit checkpoint` makes.
    cli_ok(&c.app, &["audit", "checkpoint"]).await;

    c.browser.click_and_wait("#verify-chain").await;
    let verdict = c.browser.text("#verify-verdict").await;
    assert!(verdict.contains("intact"), "{verdict}");
    assert_eq!(c.browser.text("#checkpoints-checked").await, "1");
    let points = c.browser.text("#checkpoints").await;
    assert!(points.contains("valid (this vault's key)"), "{points}");
    let count = c.app.audit_count().await;
    assert_eq!(c.browser.text("#entries-checked").await, count.to_string());
    assert_eq!(c.browser.text("#head-seq").await, count.to_string());
    assert_eq!(c.browser.count("#first-bad").await, 0);
    c.browser.screenshot("verify-ok").await;

    let seq = api_entries(&c, &one).await.pop().unwrap()["seq"]
        .as_i64()
        .unwrap();
    c.app
        .exec(&format!(
            "UPDATE audit_log SET reason = 'nothing to see' WHERE seq = {seq}"
        ))
        .await;
    c.browser.goto(&c.url("/console/audit/verify")).await;
    c.browser.click_and_wait("#verify-chain").await;

    let verdict = c.browser.text("#verify-verdict").await;
    assert!(verdict.contains("broken"), "{verdict}");
    assert_eq!(c.browser.text("#first-bad").await, seq.to_string());
    assert_eq!(
        c.browser.text("#entries-checked").await,
        (seq - 1).to_string()
    );
    assert!(c.browser.text("#problem").await.contains("does not match"));
    c.browser.screenshot("verify-broken").await;
    c.browser.click_and_wait("#first-bad-link").await;
    assert_eq!(c.browser.text("#entry-seq").await, seq.to_string());
    c.browser.close().await;
}

async fn a_malformed_filter_is_named_and_the_verify_form_needs_its_csrf_token(b: Backend) {
    let Some((c, _, _)) = seeded(b, "audit_refusals").await else {
        return;
    };
    let session = cookie(&c).await;
    let http = plain();

    let r = http
        .get(c.url("/console/audit?customer_id=not-a-uuid&from=2026-02-30&action=lookup"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"customer_id-error\""), "{page}");
    assert!(page.contains("Not a customer id"), "{page}");
    assert!(page.contains("id=\"from-error\""), "{page}");
    assert!(!page.contains("id=\"action-error\""), "only the bad fields");
    assert!(!page.contains("id=\"trail\""), "and no entries");

    for body in ["", "csrf=forged"] {
        let r = http
            .post(c.url("/console/audit/verify"))
            .header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{body:?}");
        assert!(!r.text().await.unwrap().contains("verify-verdict"));
    }
    c.browser.close().await;
}

async fn the_checkpoints_list_says_whose_signature_each_carries(b: Backend) {
    let Some((c, _, _)) = seeded(b, "audit_checkpoints").await else {
        return;
    };
    let db = c.app.db();
    let other = CheckpointSigner::from_seed(&SecretKey::generate().unwrap()).unwrap();
    for seq in [1, 2] {
        let hash = arkku::store::audit::hash_at(db, seq)
            .await
            .unwrap()
            .unwrap();
        let at = 1_796_205_610_000_000;
        let message = checkpoint::message(seq, &hash, at);
        // Entry 1: a good signature by a key that is not the vault's;
        // entry 2: the vault's key named, with a signature that is not its.
        let signature = match seq {
            1 => other.sign(&message).to_vec(),
            _ => vec![7; 64],
        };
        let public_key = match seq {
            1 => other.public_key().to_vec(),
            _ => hex_key(&c.app.cli(&["audit", "public-key"]).await.stdout),
        };
        let row = CheckpointRow {
            seq,
            hash,
            at,
            signature,
            public_key,
        };
        arkku::store::audit::insert_checkpoint(db, &row)
            .await
            .unwrap();
    }
    cli_ok(&c.app, &["audit", "checkpoint"]).await;

    let r = plain()
        .get(c.url("/console/audit/verify"))
        .header("cookie", cookie(&c).await)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    let rows: Vec<&str> = page.split("<tr>").skip(2).collect();
    assert_eq!(rows.len(), 3, "newest first: the head's, then 2 and 1");
    assert!(
        rows[0].contains("valid (this vault&#39;s key)")
            || rows[0].contains("valid (this vault&#x27;s key)"),
        "{}",
        rows[0]
    );
    assert!(rows[1].contains("invalid signature"), "{}", rows[1]);
    assert!(rows[2].contains("signed with another key"), "{}", rows[2]);
    assert!(rows[2].contains(&hex(other.public_key())), "which key");
    c.browser.close().await;
}

/// The key `arkku audit public-key` prints (hex), as bytes.
fn hex_key(stdout: &str) -> Vec<u8> {
    arkku::crypto::unhex(stdout.trim()).expect("a hex key")
}

async fn an_admin_gets_no_audit_trail(b: Backend) {
    let Some(mut c) = console(b, "audit_admin").await else {
        return;
    };
    let (uri, _) = add_user(&c.app, "root", "admin", PASSWORD).await;
    c.browser.goto(&c.url("/console/")).await;
    c.browser.type_into("#name", "root").await;
    c.browser.type_into("#password", PASSWORD).await;
    c.browser.type_into("#code", &code(&uri, T0)).await;
    c.browser.click_and_wait("#sign-in").await;
    assert!(c.browser.text("#signed-in-as").await.contains("admin"));
    assert_eq!(
        c.browser.count("a[href='/console/audit']").await,
        0,
        "the navigation does not list the trail"
    );

    c.browser.goto(&c.url("/console/audit")).await;
    let message = c.browser.text("#error-message").await;
    assert!(message.contains("not allowed"), "{message}");
    c.browser.screenshot("admin-not-allowed").await;

    let session = cookie(&c).await;
    for path in [
        "/console/audit",
        "/console/audit/1",
        "/console/audit/verify",
        "/console/audit/export.csv",
        "/console/audit/export.manifest.json",
    ] {
        let r = plain()
            .get(c.url(path))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let before = c.app.audit_count().await;
    let csv = plain()
        .get(c.url("/console/audit/export.csv"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        c.app.audit_count().await,
        before + 1,
        "the refused download is audited (deny)"
    );
    c.browser.close().await;
}
