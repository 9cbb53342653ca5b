//! The profile document (`profile_docs`) and the consent facts beside it
//! (`consent_facts`): a read builds them, every change to what they copy
//! makes them stale in the same transaction (a consent change the facts
//! alone), a stale or unreadable one is never served, the document holds no
//! plaintext, and `serve` builds those of a vault that has none while it
//! serves.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{free_port, spawn_app, Backend, Reply, Scenario, TestApp};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_read_builds_the_document_and_every_change_makes_it_stale_until_read_again,
        the_document_holds_ciphertext_only_and_an_erasure_leaves_none,
        an_unreadable_document_is_read_from_the_tables_and_replaced,
        a_change_to_a_stale_document_moves_its_gen_again,
        a_pending_grant_leaves_the_facts_and_a_confirmation_or_withdrawal_makes_them_stale,
        a_lookup_decides_on_the_stored_facts_or_on_the_ledger_while_they_are_stale,
        serve_builds_the_documents_of_a_vault_that_has_none_while_it_serves,
    ]
}

/// Scenarios of row locks between writers and the projector: on SQLite a
/// writer holds the whole database, so they are PostgreSQL's only.
pub fn postgres_tests() -> Vec<Scenario> {
    scenarios![the_projector_stores_what_no_writer_holds_and_never_waits_holding_a_row]
}

const NAME: &str = "Aino Projektio";
const EMAIL: &str = "aino.projektio@example.com";
const PHONE: &str = "040 765 4321";

fn aino() -> Value {
    json!({"display_name": NAME, "contacts": [
        {"channel": "phone", "value": PHONE},
        {"channel": "email", "value": EMAIL}]})
}

/// The customer's document state: `None` without a row, else whether the
/// document is there.
async fn doc_state(app: &TestApp, id: &str) -> Option<bool> {
    let rows = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM profile_docs WHERE customer_id = {}",
            app.id_literal(id)
        ))
        .await;
    if rows == 0 {
        return None;
    }
    let built = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM profile_docs WHERE customer_id = {} AND doc IS NOT NULL",
            app.id_literal(id)
        ))
        .await;
    Some(built == 1)
}

/// The customer's facts state, as [`doc_state`] for `consent_facts`.
async fn facts_state(app: &TestApp, id: &str) -> Option<bool> {
    let lit = app.id_literal(id);
    let rows = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM consent_facts WHERE customer_id = {lit}"
        ))
        .await;
    if rows == 0 {
        return None;
    }
    let built = app
        .scalar(&format!(
            "SELECT COUNT(*) FROM consent_facts WHERE customer_id = {lit} AND facts IS NOT NULL"
        ))
        .await;
    Some(built == 1)
}

/// Waits until the customer's facts are stored.
async fn until_facts_built(app: &TestApp, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while facts_state(app, id).await != Some(true) {
        assert!(Instant::now() < deadline, "no facts stored for {id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the customer's document is stored (the projector writes it
/// after the read that built it has answered).
async fn until_built(app: &TestApp, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while doc_state(app, id).await != Some(true) {
        assert!(Instant::now() < deadline, "no document stored for {id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads as the service (every channel it may see) and returns the body,
/// without the per-request fields.
async fn read(app: &TestApp, id: &str) -> Value {
    let r = app
        .read_customer(&app.service(), id, "purpose=support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json
}

async fn ok(r: Reply, status: StatusCode) -> Reply {
    assert_eq!(r.status, status, "{}", r.text);
    r
}

/// The customer's own consent request (`grant`, `withdraw` or `confirm`)
/// at `/v1/me/consents`; 201 expected.
async fn customer_consents(app: &TestApp, id: &str, body: Value) -> Reply {
    ok(
        app.request(
            Method::POST,
            "/v1/me/consents",
            Some(&app.customer(id)),
            Some(body),
        )
        .await,
        StatusCode::CREATED,
    )
    .await
}

/// A grant of `cross_channel` for `channel`, as the customer gives it.
fn cross_channel_grant(channel: &str) -> Value {
    json!({"purpose": "cross_channel", "channel": channel, "action": "grant",
           "method": "spoken",
           "evidence": {"notice_id": "privacy-2026", "notice_version": "3"}})
}

/// Writes, past the triggers, stored facts of no events for the customer:
/// what a read or lookup then decides shows whether it used them.
async fn store_no_facts(app: &TestApp, id: &str) {
    app.exec(&format!(
        "UPDATE consent_facts SET facts = {} WHERE customer_id = {}",
        match app.db() {
            arkku::store::Db::Sqlite(..) => "X'0100'",
            arkku::store::Db::Postgres(_) => "'\\x0100'::bytea",
        },
        app.id_literal(id)
    ))
    .await;
}

/// Reads, checks the document goes stale at once after `change` and that
/// the next read shows `expect` of the change, then that the rebuilt
/// document serves exactly what the tables did.
async fn after_change(app: &TestApp, id: &str, what: &str, expect: impl Fn(&Value) -> bool) {
    assert_eq!(
        doc_state(app, id).await,
        Some(false),
        "{what}: the change left the document in place"
    );
    let from_tables = read(app, id).await;
    assert!(expect(&from_tables), "{what}: {from_tables}");
    until_built(app, id).await;
    let from_doc = read(app, id).await;
    assert_eq!(from_doc, from_tables, "{what}: the document differs");
}

async fn a_read_builds_the_document_and_every_change_makes_it_stale_until_read_again(b: Backend) {
    let app = spawn_app(b).await;
    let svc = app.service();
    let id = app.create_customer_ok(&svc, aino()).await;
    // Created with contact points: a row exists, with no document yet.
    assert_eq!(doc_state(&app, &id).await, Some(false));
    let first = read(&app, &id).await;
    until_built(&app, &id).await;
    assert_eq!(read(&app, &id).await, first, "read from the document");

    // The profile fields.
    ok(
        app.patch_customer(&svc, &id, json!({"display_name": "Aino Uusi"}))
            .await,
        StatusCode::NO_CONTENT,
    )
    .await;
    after_change(&app, &id, "patch", |v| v["display_name"] == "Aino Uusi").await;

    // A contact point added, then removed.
    ok(
        app.add_contact(
            &svc,
            &id,
            json!({"channel": "sms", "value": "+358401112223"}),
        )
        .await,
        StatusCode::ACCEPTED,
    )
    .await;
    after_change(&app, &id, "add contact", |v| {
        v["withheld"].as_array().is_some_and(|c| c.len() == 3)
    })
    .await;
    let contact_id = app
        .read_customer(&app.agent("sms"), &id, "purpose=support")
        .await
        .json["contacts"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["channel"] == "sms"))
        .and_then(|c| c["id"].as_str())
        .expect("the sms contact point")
        .to_owned();
    ok(
        app.remove_contact(&svc, &id, &contact_id).await,
        StatusCode::NO_CONTENT,
    )
    .await;
    after_change(&app, &id, "remove contact", |v| {
        v["withheld"].as_array().is_some_and(|c| c.len() == 2)
    })
    .await;

    // Consent: a phone agent sees e-mail only once the customer consents.
    // The grant leaves the document in place and makes the facts stale.
    until_built(&app, &id).await;
    until_facts_built(&app, &id).await;
    let doc_gen = format!(
        "SELECT gen FROM profile_docs WHERE customer_id = {}",
        app.id_literal(&id)
    );
    let gen_before = app.scalar(&doc_gen).await;
    let agent = app.agent("phone");
    let withheld = app.read_customer(&agent, &id, "purpose=support").await;
    assert_eq!(
        withheld.json["withheld"],
        json!([{"channel": "email", "reason": "consent_required"}]),
        "{}",
        withheld.text
    );
    customer_consents(&app, &id, cross_channel_grant("email")).await;
    assert_eq!(facts_state(&app, &id).await, Some(false), "consent");
    assert_eq!(doc_state(&app, &id).await, Some(true), "consent");
    assert_eq!(
        app.scalar(&doc_gen).await,
        gen_before,
        "consent moved the document"
    );
    let granted = app.read_customer(&agent, &id, "purpose=support").await;
    assert_eq!(granted.status, StatusCode::OK, "{}", granted.text);
    assert_eq!(granted.json["withheld"], json!([]), "{}", granted.text);
    until_facts_built(&app, &id).await;
    let again = app.read_customer(&agent, &id, "purpose=support").await;
    assert_eq!(again.json["withheld"], json!([]), "{}", again.text);
    assert_eq!(again.json["contacts"], granted.json["contacts"]);

    // An interaction touches its channel's contact point (last activity).
    ok(
        app.request(
            Method::POST,
            &format!("/v1/customers/{id}/interactions"),
            Some(&agent),
            Some(json!({"channel": "phone", "kind": "complaint", "body": "Projektio"})),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    after_change(&app, &id, "interaction", |_| true).await;
}

async fn the_document_holds_ciphertext_only_and_an_erasure_leaves_none(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), aino()).await;
    read(&app, &id).await;
    until_built(&app, &id).await;
    let doc: Vec<u8> = arkku::on_db!(app.db(), pool => {
        sqlx::query_scalar::<_, Vec<u8>>(&format!(
            "SELECT doc FROM profile_docs WHERE customer_id = {}",
            app.id_literal(&id)
        ))
        .fetch_one(pool)
        .await
    })
    .expect("document");
    let text = String::from_utf8_lossy(&doc);
    for plain in [NAME, EMAIL, "+358407654321", "407654321", "aino.projektio"] {
        assert!(!text.contains(plain), "{plain:?} in the document");
    }

    let r = app
        .request(
            Method::DELETE,
            &format!("/v1/customers/{id}?reason=DSR-2026-77"),
            Some(&app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(doc_state(&app, &id).await, Some(false), "erasure");
    let gone = app
        .read_customer(&app.service(), &id, "purpose=support")
        .await;
    gone.assert_problem(410, "customer_erased");
    // The tombstone's document, once built, holds no key and no value.
    until_built(&app, &id).await;
    app.read_customer(&app.service(), &id, "purpose=support")
        .await
        .assert_problem(410, "customer_erased");
}

async fn an_unreadable_document_is_read_from_the_tables_and_replaced(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), aino()).await;
    let first = read(&app, &id).await;
    until_built(&app, &id).await;
    // A document of a format this binary does not read (as one written by
    // a later version would be).
    app.exec(&format!(
        "UPDATE profile_docs SET doc = {} WHERE customer_id = {}",
        match app.db() {
            arkku::store::Db::Sqlite(..) => "X'FF00'",
            arkku::store::Db::Postgres(_) => "'\\xff00'::bytea",
        },
        app.id_literal(&id)
    ))
    .await;
    assert_eq!(read(&app, &id).await, first);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let replaced = app
            .scalar(&format!(
                "SELECT COUNT(*) FROM profile_docs WHERE customer_id = {} AND LENGTH(doc) > 2",
                app.id_literal(&id)
            ))
            .await;
        if replaced == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the document was not replaced");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(read(&app, &id).await, first);
}

/// Runs `statements` in one transaction.
async fn in_one_transaction(app: &TestApp, statements: &[String]) {
    arkku::on_db!(app.db(), pool => async {
        let mut tx = pool.begin().await?;
        for sql in statements {
            sqlx::query(sql).execute(&mut *tx).await?;
        }
        tx.commit().await
    }
    .await)
    .expect("transaction");
}

/// A transaction that changes several of a customer's tables makes its
/// document stale (PostgreSQL moves `gen` once per transaction, SQLite once
/// per row), and a later transaction moves `gen` again although the document
/// is already gone: that is what keeps a document a reader built before the
/// change from being stored after it.
async fn a_change_to_a_stale_document_moves_its_gen_again(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), aino()).await;
    let first = read(&app, &id).await;
    until_built(&app, &id).await;
    let lit = app.id_literal(&id);
    let gen_sql = format!("SELECT gen FROM profile_docs WHERE customer_id = {lit}");
    let before = app.scalar(&gen_sql).await;

    // Two contact points, three data keys and the customer row.
    in_one_transaction(
        &app,
        &[
            format!("UPDATE contacts SET label = label WHERE customer_id = {lit}"),
            format!("UPDATE data_keys SET key_version = key_version WHERE customer_id = {lit}"),
            format!("UPDATE customers SET updated_at = updated_at WHERE id = {lit}"),
        ],
    )
    .await;
    assert_eq!(
        doc_state(&app, &id).await,
        Some(false),
        "the document is still there"
    );
    let after = app.scalar(&gen_sql).await;
    match b {
        Backend::Postgres => assert_eq!(after, before + 1, "one bump per transaction"),
        Backend::Sqlite => assert_eq!(after, before + 6, "one bump per changed row"),
    }

    // One contact point, the document already stale.
    in_one_transaction(
        &app,
        &[format!(
            "UPDATE contacts SET label = label WHERE customer_id = {lit} AND channel = 'email'"
        )],
    )
    .await;
    assert_eq!(app.scalar(&gen_sql).await, after + 1);
    assert_eq!(
        read(&app, &id).await,
        first,
        "the tables still read the same"
    );
}

/// Whether the phone agent's view withholds the e-mail contact point, read
/// twice: once as the facts stand (stale or not), once after they are
/// stored; both reads must agree.
async fn email_withheld(app: &TestApp, id: &str) -> bool {
    let agent = app.agent("phone");
    let first = app.read_customer(&agent, id, "purpose=support").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    until_facts_built(app, id).await;
    let again = app.read_customer(&agent, id, "purpose=support").await;
    assert_eq!(
        again.json, first.json,
        "the stored facts serve what the ledger did"
    );
    first.json["withheld"]
        .as_array()
        .expect("withheld")
        .iter()
        .any(|w| w["channel"] == "email")
}

async fn a_pending_grant_leaves_the_facts_and_a_confirmation_or_withdrawal_makes_them_stale(
    b: Backend,
) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), aino()).await;
    assert!(email_withheld(&app, &id).await);
    // An agent records a grant: it waits for the customer and opens nothing.
    let pending = ok(
        app.request(
            Method::POST,
            &format!("/v1/customers/{id}/consents"),
            Some(&app.agent("phone")),
            Some(cross_channel_grant("email")),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        pending.json["status"], "pending_confirmation",
        "{}",
        pending.text
    );
    assert_eq!(facts_state(&app, &id).await, Some(true), "pending grant");
    assert!(email_withheld(&app, &id).await);

    // The customer confirms it.
    customer_consents(
        &app,
        &id,
        json!({"action": "confirm", "consent_id": pending.json["consent_id"]}),
    )
    .await;
    assert_eq!(facts_state(&app, &id).await, Some(false), "confirmation");
    assert!(!email_withheld(&app, &id).await);
    // A read decides on the stored facts: stored facts of no events,
    // written past the triggers, withhold the e-mail again.
    store_no_facts(&app, &id).await;
    assert!(email_withheld(&app, &id).await, "the read used the ledger");

    // And withdraws it.
    customer_consents(
        &app,
        &id,
        json!({"purpose": "cross_channel", "channel": "email", "action": "withdraw",
               "method": "spoken"}),
    )
    .await;
    assert_eq!(facts_state(&app, &id).await, Some(false), "withdrawal");
    assert!(email_withheld(&app, &id).await);
    assert_eq!(
        doc_state(&app, &id).await,
        Some(true),
        "no consent change moves the document"
    );
}

async fn a_lookup_decides_on_the_stored_facts_or_on_the_ledger_while_they_are_stale(b: Backend) {
    let app = spawn_app(b).await;
    let id = app.create_customer_ok(&app.service(), aino()).await;
    let email_agent = app.agent("email");
    let lookup = || app.lookup(&email_agent, "phone", PHONE, "support");
    lookup().await.assert_problem(404, "not_found");
    read(&app, &id).await;
    until_facts_built(&app, &id).await;
    lookup().await.assert_problem(404, "not_found");

    // The customer lets the phone number into other channels' views: the
    // facts are stale, and the lookup reads the ledger.
    customer_consents(&app, &id, cross_channel_grant("phone")).await;
    assert_eq!(facts_state(&app, &id).await, Some(false));
    let found = lookup().await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    assert_eq!(
        found.json["matches"][0]["customer_id"],
        id.as_str(),
        "{}",
        found.text
    );

    // A lookup stores nothing; a read does, and the lookup then decides on
    // the stored facts.
    assert_eq!(facts_state(&app, &id).await, Some(false));
    read(&app, &id).await;
    until_facts_built(&app, &id).await;
    let found = lookup().await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text);
    // (Stored facts of no events, written past the triggers, are what it
    // decides on: the phone number is withheld again.)
    store_no_facts(&app, &id).await;
    lookup().await.assert_problem(404, "not_found");
}

async fn serve_builds_the_documents_of_a_vault_that_has_none_while_it_serves(b: Backend) {
    // Arrange: a vault as written before the documents existed.
    let app = spawn_app(b).await;
    let svc = app.service();
    // Two contact points each, and on every third customer a third one
    // added later, so a customer's contact points differ in created_at.
    let mut ids = Vec::new();
    for i in 0..60 {
        let body = json!({"display_name": format!("Asiakas {i}"), "contacts": [
            {"channel": "email", "value": format!("asiakas{i}@example.com")},
            {"channel": "chat", "value": format!("vierailija-{i}")}]});
        ids.push(app.create_customer_ok(&svc, body).await);
    }
    for (i, id) in ids.iter().enumerate().step_by(3) {
        let phone = format!("040 100 {i:04}");
        ok(
            app.add_contact(&svc, id, json!({"channel": "phone", "value": phone}))
                .await,
            StatusCode::ACCEPTED,
        )
        .await;
    }
    // What the tables serve (every document is stale after the writes).
    let mut from_tables = Vec::new();
    for id in &ids {
        from_tables.push(read(&app, id).await);
    }
    for id in &ids {
        until_built(&app, id).await;
    }
    for id in &ids {
        until_facts_built(&app, id).await;
    }
    // Half without a document, half with one of the format before the
    // consent facts had a row of their own (migration 0019); no facts.
    app.exec(&format!(
        "UPDATE profile_docs SET doc = {}",
        match app.db() {
            arkku::store::Db::Sqlite(..) => "X'0100'",
            arkku::store::Db::Postgres(_) => "'\\x0100'::bytea",
        }
    ))
    .await;
    app.exec(
        "DELETE FROM profile_docs WHERE customer_id IN \
         (SELECT id FROM customers ORDER BY id LIMIT 30)",
    )
    .await;
    app.exec("DELETE FROM consent_facts").await;

    // Act: serve it.
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = app.cli_proc_with(
        &["serve"],
        &[("ARKKU_LISTEN", &listen), ("ARKKU_LOG_FORMAT", "json")],
    );
    let base = format!("http://{listen}");
    server.wait_healthy(&base, Duration::from_secs(15)).await;

    // Assert: customers read at once, and every document is built, also
    // of the 50 customers nobody read (so the start-up build did it, not
    // the reads).
    for id in &ids[..10] {
        let r = crate::helpers::send(
            crate::helpers::http_client()
                .get(format!("{base}/v1/customers/{id}?purpose=support"))
                .bearer_auth(&svc),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while app
        .scalar("SELECT COUNT(*) FROM profile_docs WHERE LENGTH(doc) > 2")
        .await
        < 60
        || app
            .scalar("SELECT COUNT(*) FROM consent_facts WHERE facts IS NOT NULL")
            .await
            < 60
    {
        assert!(Instant::now() < deadline, "documents not built");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (id, from_tables) in ids.iter().zip(&from_tables) {
        assert_eq!(doc_state(&app, id).await, Some(true), "{id}");
        assert_eq!(facts_state(&app, id).await, Some(true), "{id}");
        assert_eq!(
            &read(&app, id).await,
            from_tables,
            "the document built at start serves what the tables did"
        );
    }
    server.assert_running();
}

/// A transaction on its own connection that holds rows as an audit batch
/// does between its first effect and its commit.
struct Writer(sqlx::Transaction<'static, sqlx::Postgres>);

impl Writer {
    async fn begin(app: &TestApp) -> Self {
        let arkku::store::Db::Postgres(pool) = app.db() else {
            panic!("a PostgreSQL scenario");
        };
        Writer(pool.begin().await.expect("begin"))
    }

    async fn exec(&mut self, sql: &str) {
        sqlx::query(sql)
            .execute(&mut *self.0)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Runs `sql` and asserts it did not wait for the projector.
    async fn exec_unhindered(&mut self, sql: &str) {
        tokio::time::timeout(Duration::from_secs(2), self.exec(sql))
            .await
            .unwrap_or_else(|_| panic!("{sql} waited for a lock the projector held"));
    }
}

/// An audit batch can take a customer's facts row (a consent grant) and then
/// its document row (a contact's activity), or the other way round. A
/// projector that held one while waiting for the other would close a lock
/// cycle with it and stall the audit writer until PostgreSQL broke it (a
/// second): past the audit deadline, so requests were answered 503. It takes
/// only rows no writer holds, and gives up a new row a writer is creating.
async fn the_projector_stores_what_no_writer_holds_and_never_waits_holding_a_row(b: Backend) {
    let app = spawn_app(b).await;
    let svc = app.service();

    // Stale facts and a stale document, the facts row held by a writer.
    let id = app.create_customer_ok(&svc, aino()).await;
    customer_consents(&app, &id, cross_channel_grant("*")).await;
    assert_eq!(facts_state(&app, &id).await, Some(false));
    assert_eq!(doc_state(&app, &id).await, Some(false));
    let lit = app.id_literal(&id);
    let mut writer = Writer::begin(&app).await;
    writer
        .exec(&format!(
            "UPDATE consent_facts SET gen = gen + 1, facts = NULL WHERE customer_id = {lit}"
        ))
        .await;
    let served = read(&app, &id).await;
    // The document is stored beside the held row; the facts are left.
    until_built(&app, &id).await;
    assert_eq!(facts_state(&app, &id).await, Some(false));
    // The writer goes on to the document without waiting, and commits.
    writer
        .exec_unhindered(&format!(
            "UPDATE profile_docs SET gen = gen + 1, doc = NULL WHERE customer_id = {lit}"
        ))
        .await;
    writer.0.commit().await.expect("commit");
    assert_eq!(read(&app, &id).await, served);
    until_built(&app, &id).await;
    until_facts_built(&app, &id).await;

    // A customer with no facts row, which a writer is creating (its first
    // consent event) while a read offers the projector one.
    let other = app
        .create_customer_ok(
            &svc,
            json!({"display_name": "Toinen", "contacts": [{"channel": "email", "value": "toinen@example.com"}]}),
        )
        .await;
    assert_eq!(facts_state(&app, &other).await, None);
    // And one whose document the projector stores after that row.
    let third = app
        .create_customer_ok(
            &svc,
            json!({"display_name": "Kolmas", "contacts": [{"channel": "sms", "value": "040 222 3344"}]}),
        )
        .await;
    let lit = app.id_literal(&other);
    let mut writer = Writer::begin(&app).await;
    writer
        .exec(&format!(
            "INSERT INTO consent_facts (customer_id, gen, facts) VALUES ({lit}, 1, NULL)"
        ))
        .await;
    read(&app, &other).await;
    until_built(&app, &other).await;
    // The projector gave the new row up rather than wait for the writer
    // with it half-inserted: what was offered after it is stored while the
    // writer still holds the row, and the writer is not held up.
    read(&app, &third).await;
    until_built(&app, &third).await;
    writer
        .exec_unhindered(&format!(
            "UPDATE profile_docs SET gen = gen + 1, doc = NULL WHERE customer_id = {lit}"
        ))
        .await;
    writer.0.commit().await.expect("commit");
    assert_eq!(
        facts_state(&app, &other).await,
        Some(false),
        "the writer's row, untouched by the projector"
    );
    read(&app, &other).await;
    until_facts_built(&app, &other).await;
}
