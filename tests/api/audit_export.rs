//! The audit trail's console filters (purpose, channel, reason) on `GET
//! /v1/audit`, the CSV export of a filtered view with its signed manifest,
//! and `arkku audit verify-export`, which proves a download unaltered
//! offline and names what was changed.
//!
//! Over 500 lines: one journey (filter, download, verify, tamper) whose
//! scenarios share the download and verification helpers below.

use std::path::{Path, PathBuf};

use arkku::{
    audit::export::Manifest,
    crypto::{hex, CheckpointSigner, SecretKey},
};
use reqwest::{header::HeaderMap, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, Reply, Scenario, TestApp};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        purpose_channel_and_reason_filters_narrow_and_page_correctly,
        malformed_filters_and_bounds_are_refused_naming_the_parameter,
        a_filtered_csv_export_holds_exactly_the_filtered_entries_with_every_field,
        cells_a_spreadsheet_would_execute_are_neutralised_with_an_apostrophe,
        only_compliance_may_export_and_every_csv_download_is_audited,
        the_same_query_and_bound_give_the_same_bytes_and_a_covering_checkpoint,
        verify_export_accepts_untouched_downloads_filtered_or_not,
        verify_export_names_the_row_when_one_csv_byte_changed,
        verify_export_rejects_a_changed_manifest_field,
        verify_export_rejects_a_manifest_signed_by_another_key,
    ]
}

// ---------------------------------------------------------------- helpers --

/// A formula a spreadsheet would run, stored as a read's reason.
const FORMULA: &str = "=HYPERLINK(\"http://evil.example/\",\"click\")";

/// A response read as bytes (the CSV's byte-order mark and all).
struct Download {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Download {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

async fn get(app: &TestApp, path: &str, token: &str, query: &[(&str, &str)]) -> Download {
    let r = app
        .client
        .request(Method::GET, format!("{}{path}", app.address))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .expect("sent");
    Download {
        status: r.status(),
        headers: r.headers().clone(),
        bytes: r.bytes().await.expect("body").to_vec(),
    }
}

async fn page(app: &TestApp, query: &[(&str, &str)]) -> Reply {
    let r = app
        .client
        .get(format!("{}/v1/audit", app.address))
        .bearer_auth(app.compliance())
        .query(query);
    crate::helpers::send(r).await
}

/// Every entry matching `filter`, walking pages of `limit`; asserts that
/// no page is empty or over-full.
async fn walk(app: &TestApp, filter: &[(&str, &str)], limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    let limit_s = limit.to_string();
    for _ in 0..200 {
        let mut q: Vec<(&str, &str)> = filter.to_vec();
        q.push(("limit", &limit_s));
        if let Some(c) = &cursor {
            q.push(("cursor", c));
        }
        let r = page(app, &q).await;
        assert_eq!(r.status, StatusCode::OK, "{q:?}: {}", r.text);
        let entries = r.json["entries"].as_array().unwrap().clone();
        assert!(entries.len() <= limit, "{q:?}");
        match r.json["next_cursor"].as_str() {
            Some(c) => {
                assert_eq!(entries.len(), limit, "{q:?}: only a last page is short");
                cursor = Some(c.to_owned());
                out.extend(entries);
            }
            None => {
                out.extend(entries);
                return out;
            }
        }
    }
    panic!("the walk of {filter:?} does not end");
}

fn seqs(entries: &[Value]) -> Vec<i64> {
    entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

/// Entries with varied purposes, channels and reasons (one a formula).
async fn varied(app: &TestApp) -> (String, String) {
    let svc = app.service();
    let phone = app.agent("phone");
    let chat = app.agent("chat");
    let a = app
        .create_customer_ok(
            &svc,
            json!({"contacts": [{"channel": "phone", "value": "040 123 4567"}]}),
        )
        .await;
    let b = app
        .create_customer_ok(
            &chat,
            json!({"contacts": [{"channel": "chat", "value": "visitor-5"}]}),
        )
        .await;
    let read = |token: String, id: String, q: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let mut q = q;
            q.push(("purpose", "support".into()));
            app.client
                .get(format!("{}/v1/customers/{id}", app.address))
                .bearer_auth(token)
                .query(&q)
                .send()
                .await
                .expect("sent");
        }
    };
    read(phone.clone(), a.clone(), vec![]).await;
    read(phone.clone(), a.clone(), vec![("reason", "T-9".into())]).await;
    read(chat.clone(), b.clone(), vec![("reason", FORMULA.into())]).await;
    read(chat.clone(), b.clone(), vec![("reason", "T-9".into())]).await;
    app.read_customer(&phone, &a, "purpose=marketing")
        .await
        .assert_problem(403, "purpose_not_allowed");
    app.lookup(&phone, "phone", "0401234567", "support").await;
    (a, b)
}

/// Writes `bytes` into the test's directory and returns the path.
pub(crate) fn file(app: &TestApp, name: &str, bytes: &[u8]) -> PathBuf {
    let p = app.dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The CSV and manifest of one query, pinned to the CSV's bound.
async fn download_pair(app: &TestApp, filter: &[(&str, &str)]) -> (Vec<u8>, Value) {
    let token = app.compliance();
    let csv = get(app, "/v1/audit/export", &token, filter).await;
    assert_eq!(
        csv.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&csv.bytes)
    );
    let through = csv.header("arkku-audit-through").to_owned();
    let mut q = filter.to_vec();
    q.push(("through", &through));
    let m = get(app, "/v1/audit/export/manifest", &token, &q).await;
    assert_eq!(
        m.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&m.bytes)
    );
    (csv.bytes, m.json())
}

/// Runs `arkku audit verify-export` on the files, with the public key the
/// vault prints.
pub(crate) async fn verify_export(
    app: &TestApp,
    csv: &Path,
    manifest: &Path,
) -> crate::helpers::Ran {
    let key = app.cli(&["audit", "public-key"]).await;
    assert!(key.status.success(), "{}", key.stderr);
    let key_file = file(app, "audit.pub", key.stdout.as_bytes());
    app.cli(&[
        "audit",
        "verify-export",
        "--csv",
        csv.to_str().unwrap(),
        "--manifest",
        manifest.to_str().unwrap(),
        "--public-key",
        key_file.to_str().unwrap(),
    ])
    .await
}

/// The data rows of a CSV download, cells as strings.
fn rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let body = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .expect("a byte-order mark");
    let mut r = csv::Reader::from_reader(body);
    let header = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

// ------------------------------------------------------------------ tests --

async fn purpose_channel_and_reason_filters_narrow_and_page_correctly(b: Backend) {
    let app = spawn_app(b).await;
    varied(&app).await;
    let all = walk(&app, &[], 1000).await;
    type Pred = Box<dyn Fn(&Value) -> bool + Send + Sync>;
    let cases: Vec<(Vec<(&str, &str)>, Pred)> = vec![
        (
            vec![("purpose", "support")],
            Box::new(|e| e["purpose"] == "support"),
        ),
        (
            vec![("purpose", "marketing")],
            Box::new(|e| e["purpose"] == "marketing"),
        ),
        (
            vec![("channel", "phone")],
            Box::new(|e| e["channel"] == "phone"),
        ),
        (
            vec![("channel", "chat")],
            Box::new(|e| e["channel"] == "chat"),
        ),
        (vec![("reason", "T-9")], Box::new(|e| e["reason"] == "T-9")),
        (
            vec![("reason", FORMULA)],
            Box::new(|e| e["reason"] == FORMULA),
        ),
        (
            vec![("reason", "T-9"), ("channel", "chat")],
            Box::new(|e| e["reason"] == "T-9" && e["channel"] == "chat"),
        ),
        (
            vec![
                ("purpose", "support"),
                ("channel", "phone"),
                ("decision", "allow"),
            ],
            Box::new(|e| {
                e["purpose"] == "support" && e["channel"] == "phone" && e["decision"] == "allow"
            }),
        ),
        (vec![("reason", "T-10")], Box::new(|_| false)),
    ];
    for (filter, pred) in cases {
        let expected: Vec<Value> = all.iter().filter(|e| pred(e)).cloned().collect();
        assert!(expected.len() < all.len(), "{filter:?} narrows (test data)");
        let whole = walk(&app, &filter, 1000).await;
        assert_eq!(whole, expected, "GET /v1/audit {filter:?}");
        for limit in [1, 2] {
            let paged = walk(&app, &filter, limit).await;
            assert_eq!(
                seqs(&paged),
                seqs(&expected),
                "{filter:?} in pages of {limit}"
            );
        }
    }
}

async fn malformed_filters_and_bounds_are_refused_naming_the_parameter(b: Backend) {
    let app = spawn_app(b).await;
    varied(&app).await;
    let n = app.audit_count().await;
    let long = "x".repeat(201);
    let over = (n + 100).to_string();
    let token = app.compliance();
    let both: &[(&str, &str, &str)] = &[
        ("purpose", "Support!", "purpose"),
        ("purpose", "", "purpose"),
        ("channel", "PHONE", "channel"),
        ("channel", "a b", "channel"),
        ("reason", "", "reason"),
        ("reason", "   ", "reason"),
        ("reason", &long, "reason"),
        ("reason", "a\u{7}b", "reason"),
        ("action", "Customer Read", "action"),
        ("decision", "maybe", "decision"),
        ("since", "yesterday", "since"),
    ];
    for &(k, v, name) in both {
        let r = page(&app, &[(k, v)]).await;
        r.assert_problem(400, "invalid_request");
        assert!(
            r.json["detail"].as_str().unwrap().contains(name),
            "{k}={v:?}: {}",
            r.text
        );
        for path in ["/v1/audit/export", "/v1/audit/export/manifest"] {
            let d = get(&app, path, &token, &[(k, v)]).await;
            assert_eq!(d.status, StatusCode::BAD_REQUEST, "{path} {k}={v:?}");
            assert!(
                d.json()["detail"].as_str().unwrap().contains(name),
                "{path} {k}={v:?}"
            );
        }
    }
    for (v, path) in [
        ("0", "/v1/audit/export"),
        (over.as_str(), "/v1/audit/export"),
        ("-1", "/v1/audit/export/manifest"),
        (over.as_str(), "/v1/audit/export/manifest"),
        ("x", "/v1/audit/export/manifest"),
    ] {
        let d = get(&app, path, &token, &[("through", v)]).await;
        assert_eq!(d.status, StatusCode::BAD_REQUEST, "{path} through={v}");
        assert!(
            d.json()["detail"].as_str().unwrap().contains("through"),
            "{path} through={v}"
        );
    }
    let r = page(&app, &[("through", "1")]).await;
    r.assert_problem(400, "invalid_request");
}

async fn a_filtered_csv_export_holds_exactly_the_filtered_entries_with_every_field(b: Backend) {
    let app = spawn_app(b).await;
    let (a, _) = varied(&app).await;
    let filter = [("customer_id", a.as_str()), ("purpose", "support")];
    let expected = walk(&app, &filter, 1000).await;
    assert!(expected.len() >= 2, "test data");
    let d = get(&app, "/v1/audit/export", &app.compliance(), &filter).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.header("content-type"), "text/csv; charset=utf-8");
    let through = d.header("arkku-audit-through").parse::<i64>().unwrap();
    assert_eq!(
        d.header("content-disposition"),
        format!("attachment; filename=\"arkku-audit-{through}.csv\"")
    );
    let text = String::from_utf8(d.bytes.clone()).unwrap();
    assert!(text.ends_with("\r\n"), "CRLF line ends");
    let (header, rows) = rows(&d.bytes);
    assert_eq!(
        header.join(","),
        "seq,time,actor_sub,actor_role,actor_client,action,customer_id,channel,purpose,\
         decision,reason,request_id,detail,prev_hash,hash"
    );
    assert_eq!(rows.len(), expected.len());
    let s = |v: &Value| v.as_str().unwrap_or("").to_owned();
    for (row, e) in rows.iter().zip(&expected) {
        let want = [
            e["seq"].to_string(),
            s(&e["at"]),
            s(&e["actor"]["sub"]),
            s(&e["actor"]["role"]),
            s(&e["actor"]["client"]),
            s(&e["action"]),
            s(&e["customer_id"]),
            s(&e["channel"]),
            s(&e["purpose"]),
            s(&e["decision"]),
            s(&e["reason"]),
            s(&e["request_id"]),
        ];
        assert_eq!(row[..12], want[..], "row of seq {}", e["seq"]);
        let detail: Value = serde_json::from_str(&row[12]).unwrap();
        assert_eq!(detail, e["detail"]);
        assert_eq!(row[13], s(&e["prev_hash"]));
        assert_eq!(row[14], s(&e["hash"]));
    }
}

async fn cells_a_spreadsheet_would_execute_are_neutralised_with_an_apostrophe(b: Backend) {
    let app = spawn_app(b).await;
    varied(&app).await;
    let d = get(
        &app,
        "/v1/audit/export",
        &app.compliance(),
        &[("reason", FORMULA)],
    )
    .await;
    assert_eq!(d.status, StatusCode::OK);
    let (_, rows) = rows(&d.bytes);
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0][10],
        format!("'{FORMULA}"),
        "the reason cell is inert"
    );
    for row in &rows {
        for cell in row {
            let t = cell.trim_start();
            assert!(
                !t.starts_with(['=', '+', '-', '@']) && !cell.starts_with(['\t', '\r']),
                "{cell:?}"
            );
        }
    }
    // The stored value is unchanged, and the API still returns it as is.
    let e = walk(&app, &[("reason", FORMULA)], 10).await;
    assert_eq!(e[0]["reason"], FORMULA);
}

async fn only_compliance_may_export_and_every_csv_download_is_audited(b: Backend) {
    let app = spawn_app(b).await;
    let (a, _) = varied(&app).await;
    for path in ["/v1/audit/export", "/v1/audit/export/manifest"] {
        let d = get(&app, path, &app.agent("phone"), &[]).await;
        assert_eq!(d.status, StatusCode::FORBIDDEN, "{path}");
    }
    let before = app.audit_count().await;
    let d = get(
        &app,
        "/v1/audit/export",
        &app.compliance(),
        &[("customer_id", &a)],
    )
    .await;
    assert_eq!(d.status, StatusCode::OK);
    let through: i64 = d.header("arkku-audit-through").parse().unwrap();
    assert_eq!(
        through, before,
        "the bound is the last entry before the export's own"
    );
    let entries = walk(&app, &[("action", "audit.export")], 100).await;
    let mine = entries.last().unwrap();
    assert_eq!(mine["decision"], "allow");
    assert_eq!(mine["actor"]["sub"], "auditor");
    assert_eq!(mine["detail"]["through"], through);
    assert_eq!(mine["detail"]["filters"], json!({"customer_id": a}));
    let refused = &entries[0];
    assert_eq!(
        refused["decision"], "deny",
        "the agent's attempt is on record"
    );
    assert_eq!(refused["actor"]["sub"], "agent-1");
    // The manifest download adds nothing.
    let n = app.audit_count().await;
    let q = [
        ("customer_id", a.as_str()),
        ("through", &through.to_string()),
    ];
    let m = get(&app, "/v1/audit/export/manifest", &app.compliance(), &q).await;
    assert_eq!(m.status, StatusCode::OK);
    assert_eq!(app.audit_count().await, n);
}

async fn the_same_query_and_bound_give_the_same_bytes_and_a_covering_checkpoint(b: Backend) {
    let app = spawn_app(b).await;
    varied(&app).await;
    assert_eq!(
        app.count("audit_checkpoints").await,
        0,
        "none yet (every 1000)"
    );
    let (csv, manifest) = download_pair(&app, &[]).await;
    let through = manifest["through"].as_i64().unwrap();
    // The log grows; the same bound still gives the same file and manifest facts.
    varied(&app).await;
    let q = [("through", through.to_string())];
    let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let again = get(&app, "/v1/audit/export", &app.compliance(), &q).await;
    assert_eq!(again.bytes, csv, "the same bytes twice");
    let m2 = get(&app, "/v1/audit/export/manifest", &app.compliance(), &q)
        .await
        .json();
    for k in [
        "csv_sha256",
        "csv_bytes",
        "entries",
        "first_seq",
        "last_seq",
        "last_hash",
        "checkpoint",
    ] {
        assert_eq!(m2[k], manifest[k], "{k}");
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, &csv);
    assert_eq!(manifest["csv_sha256"], hex(digest.as_ref()));
    assert_eq!(manifest["csv_bytes"], csv.len());
    assert_eq!(manifest["format"], "arkku-audit-export/1");
    assert_eq!(manifest["entries"], through);
    assert_eq!(manifest["last_seq"], through);
    let c = &manifest["checkpoint"];
    assert!(c["seq"].as_i64().unwrap() >= through);
    assert_eq!(
        app.count("audit_checkpoints").await,
        1,
        "made once, then reused"
    );
    let key = app.cli(&["audit", "public-key"]).await;
    assert_eq!(manifest["public_key"], key.stdout.trim());
    assert_eq!(c["public_key"], key.stdout.trim());
}

async fn verify_export_accepts_untouched_downloads_filtered_or_not(b: Backend) {
    let app = spawn_app(b).await;
    let (a, _) = varied(&app).await;
    for (i, filter) in [
        vec![],
        vec![("customer_id", a.as_str())],
        vec![("reason", FORMULA)],
    ]
    .into_iter()
    .enumerate()
    {
        let (csv, manifest) = download_pair(&app, &filter).await;
        let c = file(&app, &format!("e{i}.csv"), &csv);
        let m = file(&app, &format!("e{i}.json"), manifest.to_string().as_bytes());
        let ran = verify_export(&app, &c, &m).await;
        assert!(
            ran.status.success(),
            "{filter:?}: {}\n{}",
            ran.stdout,
            ran.stderr
        );
        let out: Value = serde_json::from_str(&ran.stdout).unwrap();
        assert_eq!(out["entries"], manifest["entries"]);
        assert_eq!(out["chained"], filter.is_empty());
    }
    // On the vault host the key comes from the audit key file.
    let (csv, manifest) = download_pair(&app, &[]).await;
    let c = file(&app, "host.csv", &csv);
    let m = file(
        &app,
        "host.json",
        serde_json::to_string_pretty(&manifest).unwrap().as_bytes(),
    );
    let ran = app
        .cli(&[
            "audit",
            "verify-export",
            "--csv",
            c.to_str().unwrap(),
            "--manifest",
            m.to_str().unwrap(),
        ])
        .await;
    assert!(ran.status.success(), "{}", ran.stderr);
}

async fn verify_export_names_the_row_when_one_csv_byte_changed(b: Backend) {
    let app = spawn_app(b).await;
    varied(&app).await;
    let (csv, manifest) = download_pair(&app, &[]).await;
    let m = file(&app, "m.json", manifest.to_string().as_bytes());
    // Change one byte of row 3's decision: "allow" -> "allew"/"deny" -> "deby".
    let text = String::from_utf8(csv.clone()).unwrap();
    let row3 = text.match_indices("\r\n").nth(2).unwrap().0 + 2;
    let line_end = row3 + text[row3..].find("\r\n").unwrap();
    let line = &text[row3..line_end];
    let pos = row3
        + line
            .find(",allow,")
            .or_else(|| line.find(",deny,"))
            .unwrap()
        + 3;
    let mut changed = csv.clone();
    changed[pos] ^= 0x01;
    let c = file(&app, "changed.csv", &changed);
    let ran = verify_export(&app, &c, &m).await;
    ran.assert_failed();
    assert!(ran.stderr.contains("SHA-256"), "{}", ran.stderr);
    assert!(ran.stderr.contains("CSV row 3 (seq 3)"), "{}", ran.stderr);
    // A dropped row is found too, by the count and the broken chain.
    let mut lines: Vec<&str> = text.split_inclusive("\r\n").collect();
    lines.remove(4);
    let c = file(&app, "dropped.csv", lines.concat().as_bytes());
    let ran = verify_export(&app, &c, &m).await;
    ran.assert_failed();
    assert!(
        ran.stderr.contains("does not follow the previous entry"),
        "{}",
        ran.stderr
    );
}

async fn verify_export_rejects_a_changed_manifest_field(b: Backend) {
    let app = spawn_app(b).await;
    let (a, _) = varied(&app).await;
    let (csv, manifest) = download_pair(&app, &[("customer_id", &a)]).await;
    let c = file(&app, "x.csv", &csv);
    for (field, value) in [
        ("entries", json!(manifest["entries"].as_i64().unwrap() - 1)),
        (
            "filters",
            json!({"customer_id": null, "actor": null, "action": null, "decision": null,
            "purpose": null, "channel": null, "reason": null, "since": null, "until": null}),
        ),
        ("through", json!(manifest["through"].as_i64().unwrap() + 1)),
        ("signed_at", json!("2020-01-01T00:00:00Z")),
    ] {
        let mut m = manifest.clone();
        m[field] = value;
        let p = file(&app, "changed.json", m.to_string().as_bytes());
        let ran = verify_export(&app, &c, &p).await;
        ran.assert_failed();
        assert!(
            ran.stderr.contains("manifest's signature"),
            "{field}: {}",
            ran.stderr
        );
    }
}

async fn verify_export_rejects_a_manifest_signed_by_another_key(b: Backend) {
    let app = spawn_app(b).await;
    varied(&app).await;
    let (csv, manifest) = download_pair(&app, &[]).await;
    let c = file(&app, "x.csv", &csv);
    let other = CheckpointSigner::from_seed(&SecretKey::generate().unwrap()).unwrap();
    let mut m: Manifest = serde_json::from_value(manifest).unwrap();
    m.public_key = hex(other.public_key());
    m.signature = hex(&other.sign(&m.signed_message()));
    let p = file(
        &app,
        "other.json",
        serde_json::to_string(&m).unwrap().as_bytes(),
    );
    let ran = verify_export(&app, &c, &p).await;
    ran.assert_failed();
    assert!(
        ran.stderr.contains("manifest's signature"),
        "{}",
        ran.stderr
    );
    // Trusting the forger's key instead does not help: the checkpoint is the vault's.
    let k = file(&app, "other.pub", hex(other.public_key()).as_bytes());
    let ran = app
        .cli(&[
            "audit",
            "verify-export",
            "--csv",
            c.to_str().unwrap(),
            "--manifest",
            p.to_str().unwrap(),
            "--public-key",
            k.to_str().unwrap(),
        ])
        .await;
    ran.assert_failed();
    assert!(ran.stderr.contains("checkpoint"), "{}", ran.stderr);
}
