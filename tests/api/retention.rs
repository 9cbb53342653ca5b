//! The retention sweeper through `arkku retention run`: what it purges, that
//! it audits every batch, that a dry run changes nothing, that a second run
//! purges nothing (and is recorded all the same), and that a run killed
//! midway is finished by the next.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{free_port, spawn_app, Backend, Scenario, TestApp};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_sweep_purges_what_is_past_retention_and_a_second_run_purges_nothing,
        a_sweep_killed_midway_is_finished_by_the_next_with_the_same_end_state,
        batches_deleted_together_are_each_audited_with_their_own_ids,
        contact_points_of_several_channels_are_audited_channel_by_channel,
        a_sweep_as_of_a_later_time_needs_no_backdating,
        serve_sweeps_on_its_interval,
    ]
}

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;

async fn create(app: &TestApp, body: Value) -> String {
    app.create_customer_ok(&app.service(), body).await
}

async fn interaction(app: &TestApp, id: &str, channel: &str, kind: &str) -> String {
    let r = app
        .request(
            Method::POST,
            &format!("/v1/customers/{id}/interactions"),
            Some(&app.agent(channel)),
            Some(json!({"channel": channel, "kind": kind, "body": format!("{kind} body")})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json["id"].as_str().unwrap().to_owned()
}

async fn grant(app: &TestApp, id: &str, channel: &str) {
    let r = app
        .request(
            Method::POST,
            &format!("/v1/customers/{id}/consents"),
            Some(&app.compliance()),
            Some(
                json!({"purpose": "cross_channel", "channel": channel, "action": "grant",
                        "method": "spoken", "evidence": {"notice_id": "n", "notice_version": "1"}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// The `retention.purge` entries of the audit log, as compliance reads them.
async fn purge_entries(app: &TestApp) -> Vec<Value> {
    let r = app
        .request(
            Method::GET,
            "/v1/audit?action=retention.purge&limit=100",
            Some(&app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["entries"].as_array().expect("entries").clone()
}

/// Runs `arkku retention run args…`, asserts success, returns its JSON report.
async fn sweep(app: &TestApp, args: &[&str]) -> Value {
    let mut all = vec!["retention", "run"];
    all.extend_from_slice(args);
    let r = app.cli(&all).await;
    assert!(r.status.success(), "{}\n{}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

/// Row counts of every table the sweeper touches, and the erased customers.
async fn state(app: &TestApp) -> [i64; 5] {
    [
        app.count("contacts").await,
        app.count("interactions").await,
        app.count("consents").await,
        app.count("data_keys").await,
        app.scalar("SELECT COUNT(*) FROM customers WHERE erased_at IS NOT NULL")
            .await,
    ]
}

/// Two customers and some of their data moved into the past: Pena keeps a
/// phone number and a complaint; his e-mail, a transcript and a consent are
/// past retention. Kaisa's only contact point is past retention.
async fn seed(app: &TestApp) -> (String, String) {
    let pena = create(
        app,
        json!({"display_name": "Pena", "contacts": [
            {"channel": "phone", "value": "040 111 2222"},
            {"channel": "email", "value": "pena.vanha@example.com"}]}),
    )
    .await;
    let kaisa = create(
        app,
        json!({"display_name": "Kaisa", "contacts": [{"channel": "sms", "value": "050 333 4444"}]}),
    )
    .await;
    interaction(app, &pena, "phone", "transcript").await;
    interaction(app, &pena, "phone", "complaint").await;
    grant(app, &pena, "email").await;
    for sql in [
        format!("UPDATE contacts SET last_activity_at = last_activity_at - {} WHERE channel IN ('email', 'sms')", 731 * DAY_US),
        format!("UPDATE interactions SET created_at = created_at - {} WHERE kind = 'transcript'", 31 * DAY_US),
        format!("UPDATE consents SET at = at - {}", 366 * DAY_US),
        format!("UPDATE customers SET updated_at = updated_at - {}", 400 * DAY_US),
    ] {
        app.exec(&sql).await;
    }
    (pena, kaisa)
}

async fn a_sweep_purges_what_is_past_retention_and_a_second_run_purges_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let (pena, kaisa) = seed(&app).await;
    let before = state(&app).await;
    assert_eq!(before, [3, 2, 1, 5, 0]);

    // A dry run says what would go and changes nothing.
    let audit_before = app.audit_count().await;
    let dry = sweep(&app, &["--dry-run"]).await;
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["contacts"], json!({"email": 1, "sms": 1}), "{dry}");
    assert_eq!(dry["interactions"], json!({"phone.transcript": 1}), "{dry}");
    assert_eq!(dry["consents"], json!({"cross_channel": 1}), "{dry}");
    assert_eq!(dry["customers"], 1, "Kaisa would have nothing left: {dry}");
    assert_eq!(state(&app).await, before);
    assert_eq!(app.audit_count().await, audit_before);
    assert_eq!(
        app.count("retention_sweeps").await,
        0,
        "a dry run leaves no record"
    );

    let done = sweep(&app, &[]).await;
    assert_eq!(done["dry_run"], false);
    for key in ["contacts", "interactions", "consents", "customers"] {
        assert_eq!(done[key], dry[key], "{key}: {done}");
    }
    assert_eq!(done["purged"], 4);
    // Pena keeps his phone and complaint; Kaisa is erased with her data keys.
    assert_eq!(state(&app).await, [1, 1, 0, 3, 1]);
    let r = app
        .read_customer(&app.agent("phone"), &pena, "purpose=support")
        .await;
    assert_eq!(r.json["contacts"][0]["channel"], "phone", "{}", r.text);
    app.read_customer(&app.agent("sms"), &kaisa, "purpose=support")
        .await
        .assert_problem(410, "customer_erased");
    app.lookup(
        &app.agent("email"),
        "email",
        "pena.vanha@example.com",
        "support",
    )
    .await
    .assert_problem(404, "not_found");

    // Every batch is audited with ids and counts, never values; the chain holds.
    let entries = purge_entries(&app).await;
    assert_eq!(entries.len(), 5, "{entries:?}");
    assert!(entries
        .iter()
        .all(|e| e["actor"]["sub"] == "retention-sweeper"));
    let customers = entries
        .iter()
        .find(|e| e["detail"]["table"] == "customers")
        .expect("customer erasure entry");
    assert_eq!(customers["detail"]["customer_ids"], json!([kaisa]));
    let contacts: Vec<&Value> = entries
        .iter()
        .filter(|e| e["detail"]["table"] == "contacts")
        .collect();
    assert_eq!(contacts.len(), 2);
    assert_eq!(contacts[0]["detail"]["count"], 1);
    let text = app.audit_text().await;
    for value in ["pena.vanha", "333 4444", "3334444", "transcript body"] {
        assert!(!text.contains(value), "{value} in the audit log");
    }
    app.assert_chain_verifies().await;

    // Idempotent: nothing left to purge.
    let again = sweep(&app, &[]).await;
    assert_eq!(again["purged"], 0, "{again}");
    assert_eq!(again["customers"], 0, "{again}");
    assert_eq!(again["batches"], 0, "{again}");
    assert_eq!(state(&app).await, [1, 1, 0, 3, 1]);
    // Both runs are recorded, the empty one too, with counts and no ids.
    assert_eq!(app.count("retention_sweeps").await, 2);
    let last = arkku::store::sweeps::last(app.db()).await.unwrap().unwrap();
    assert_eq!((last.purged, last.customers, last.batches), (0, 0, 0));
    let first = "SELECT purged FROM retention_sweeps ORDER BY as_of, run_id LIMIT 1";
    assert_eq!(app.scalar(first).await, 4);
}

async fn a_sweep_killed_midway_is_finished_by_the_next_with_the_same_end_state(b: Backend) {
    let app = spawn_app(b).await;
    // Enough expired rows for many one-row batches.
    let mut ids = Vec::new();
    for n in 0..120 {
        ids.push(
            create(
                &app,
                json!({"contacts": [
                    {"channel": "email", "value": format!("vanha{n}@example.com")},
                    {"channel": "phone", "value": format!("040 555 {:04}", n)}]}),
            )
            .await,
        );
    }
    app.exec(&format!(
        "UPDATE contacts SET last_activity_at = last_activity_at - {} WHERE channel = 'email'",
        731 * DAY_US
    ))
    .await;
    let mut run = app.cli_proc(&["retention", "run", "--batch", "1"]);
    // Kill it once it has purged some but not all.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let left = app.count("contacts").await;
        if left < 235 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    run.sigkill();
    let emails = "SELECT COUNT(*) FROM contacts WHERE channel = 'email'";
    assert!(
        app.scalar(emails).await > 0,
        "killed before the end (one-row batches)"
    );
    let report = sweep(&app, &[]).await;
    assert_eq!(app.count("contacts").await, 120, "{report}");
    assert_eq!(app.scalar(emails).await, 0);
    assert_eq!(sweep(&app, &[]).await["purged"], 0);
    // Every customer still answers with their phone number; the chain holds.
    let r = app
        .read_customer(&app.agent("phone"), &ids[0], "purpose=support")
        .await;
    assert_eq!(
        r.json["contacts"].as_array().unwrap().len(),
        1,
        "{}",
        r.text
    );
    app.assert_chain_verifies().await;
}

async fn batches_deleted_together_are_each_audited_with_their_own_ids(b: Backend) {
    let app = spawn_app(b).await;
    for n in 0..25 {
        create(
            &app,
            json!({"contacts": [
                {"channel": "email", "value": format!("ryhma{n}@example.com")},
                {"channel": "phone", "value": format!("040 666 {:04}", n)}]}),
        )
        .await;
    }
    app.exec(&format!(
        "UPDATE contacts SET last_activity_at = last_activity_at - {} WHERE channel = 'email'",
        731 * DAY_US
    ))
    .await;
    // Batches of two: 13 entries, whichever batches share a delete
    // transaction (ten per delete).
    let done = sweep(&app, &["--batch", "2"]).await;
    assert_eq!(done["contacts"], json!({"email": 25}), "{done}");
    assert_eq!(done["batches"], 13, "{done}");
    assert_eq!(app.count("contacts").await, 25);
    let entries = purge_entries(&app).await;
    assert_eq!(entries.len(), 13, "{entries:?}");
    let mut ids = std::collections::BTreeSet::new();
    for e in &entries {
        let listed = e["detail"]["ids"].as_array().unwrap();
        assert_eq!(e["detail"]["count"], listed.len(), "{e}");
        assert!(matches!(listed.len(), 1 | 2), "{e}");
        assert_eq!(
            e["detail"]["customer_ids"].as_array().unwrap().len(),
            listed.len()
        );
        ids.extend(listed.iter().map(|v| v.as_str().unwrap().to_owned()));
    }
    assert_eq!(ids.len(), 25, "every purged row in exactly one entry");
    app.assert_chain_verifies().await;
}

/// Contact points of several channels expire together. On PostgreSQL one
/// fetch spans the channels and one statement deletes them (so a customer's
/// document is marked once); on SQLite a pass per channel. Either way every
/// entry names one channel and lists only that channel's rows, the report
/// counts each channel, and a channel that has not expired keeps its rows.
async fn contact_points_of_several_channels_are_audited_channel_by_channel(b: Backend) {
    let app = spawn_app(b).await;
    for n in 0..5 {
        create(
            &app,
            json!({"contacts": [
                {"channel": "email", "value": format!("kanava{n}@example.com")},
                {"channel": "phone", "value": format!("040 777 {:04}", n)},
                {"channel": "chat", "value": format!("visitor-{n}")}]}),
        )
        .await;
    }
    app.exec(&format!(
        "UPDATE contacts SET last_activity_at = last_activity_at - {} WHERE channel IN ('email', 'phone')",
        731 * DAY_US
    ))
    .await;
    app.exec("CREATE TABLE contacts_before AS SELECT id, channel FROM contacts")
        .await;
    let gens = "SELECT CAST(SUM(gen) AS BIGINT) FROM profile_docs";
    let gens_before = app.scalar(gens).await;

    // Batches of two: 2 + 2 + 1 rows per channel, three entries each.
    let done = sweep(&app, &["--batch", "2"]).await;
    // Each customer's document changes once on PostgreSQL (one delete for
    // both channels); on SQLite once per deleted row.
    let per_customer = match b {
        Backend::Postgres => 1,
        Backend::Sqlite => 2,
    };
    assert_eq!(app.scalar(gens).await - gens_before, 5 * per_customer);
    assert_eq!(done["contacts"], json!({"email": 5, "phone": 5}), "{done}");
    assert_eq!(done["purged"], 10, "{done}");
    assert_eq!(done["customers"], 0, "their chat keeps every customer");
    assert_eq!(done["batches"], 6, "{done}");
    let chat = "SELECT COUNT(*) FROM contacts WHERE channel = 'chat'";
    assert_eq!(app.scalar(chat).await, 5);
    assert_eq!(app.count("contacts").await, 5);

    let entries = purge_entries(&app).await;
    assert_eq!(entries.len(), 6, "{entries:?}");
    let mut listed_in_all = 0;
    for e in &entries {
        let channel = e["channel"].as_str().expect("an entry names its channel");
        let listed = e["detail"]["ids"].as_array().expect("ids");
        let ids: Vec<String> = listed
            .iter()
            .map(|v| app.id_literal(v.as_str().expect("an id")))
            .collect();
        let of_channel = format!(
            "SELECT COUNT(*) FROM contacts_before WHERE channel = '{channel}' AND id IN ({})",
            ids.join(", ")
        );
        assert_eq!(app.scalar(&of_channel).await, ids.len() as i64, "{e}");
        listed_in_all += ids.len();
    }
    assert_eq!(listed_in_all, 10, "every purged row in one entry");
    app.assert_chain_verifies().await;
}

async fn a_sweep_as_of_a_later_time_needs_no_backdating(b: Backend) {
    let app = spawn_app(b).await;
    let id = create(
        &app,
        json!({"contacts": [{"channel": "chat", "value": "visitor-42"}]}),
    )
    .await;
    interaction(&app, &id, "chat", "feedback").await;
    // Chat contacts are kept 365 days, feedback 365 days: in two years, all gone.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(800))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let dry = sweep(&app, &["--dry-run", "--now", &later]).await;
    assert_eq!(dry["contacts"], json!({"chat": 1}), "{dry}");
    assert_eq!(dry["interactions"], json!({"chat.feedback": 1}), "{dry}");
    assert_eq!(dry["customers"], 1, "{dry}");
    // Today nothing is due.
    let today = sweep(&app, &[]).await;
    assert_eq!(today["purged"], 0, "{today}");
    let r = app.cli(&["retention", "run", "--now", "yesterday"]).await;
    assert!(!r.status.success());
    assert!(r.stderr.contains("RFC 3339"), "{}", r.stderr);
}

async fn serve_sweeps_on_its_interval(b: Backend) {
    let app = spawn_app(b).await;
    let (_, kaisa) = seed(&app).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = app.cli_proc_with(
        &["serve"],
        &[
            ("ARKKU_LISTEN", &listen),
            ("ARKKU_RETENTION_INTERVAL", "300ms"),
        ],
    );
    server
        .wait_healthy(
            &format!("http://{listen}"),
            std::time::Duration::from_secs(15),
        )
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while state(&app).await != [1, 1, 0, 3, 1] {
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not sweep: {:?}",
            state(&app).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    server.assert_running();
    app.read_customer(&app.agent("sms"), &kaisa, "purpose=support")
        .await
        .assert_problem(410, "customer_erased");
}
