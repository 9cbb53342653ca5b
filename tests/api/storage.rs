//! What the database holds: ciphertext only, bound to its place (SECURITY.md,
//! "Key hierarchy").
//!
//! The leak tests look at the bytes at rest (the SQLite file with its -wal and
//! -shm, or a `pg_dump` of the test database); the sabotage tests move and
//! corrupt ciphertexts with direct SQL and expect an integrity failure (500
//! `internal`), never another customer's data and never garbage.

use std::path::{Path, PathBuf};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, Backend, Reply, Scenario, TestApp};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        the_database_holds_no_plaintext_contact_value_name_or_reference,
        the_audit_log_holds_none_of_the_stored_values,
        a_contact_ciphertext_copied_to_another_customer_fails_to_open,
        a_contact_ciphertext_copied_to_another_channel_of_the_customer_fails_to_open,
        a_contact_ciphertext_copied_to_another_row_or_field_fails_to_open,
        a_flipped_byte_in_a_stored_value_fails_to_open,
        a_display_name_ciphertext_copied_to_another_customer_or_field_fails_to_open,
        both_backends_have_the_same_migration_files,
        an_erased_customer_leaves_no_key_ciphertext_or_index_in_the_database_files,
        a_retention_purge_leaves_no_key_ciphertext_or_index_in_the_database_files,
    ]
}

// --- canaries -------------------------------------------------------------

/// A customer whose every stored value is distinctive, so a byte search for it
/// at rest cannot match anything else.
fn canary_customer() -> Value {
    json!({
        "display_name": "Ulpukka Kanervisto",
        "external_ref": "EXT-CANARY-904177",
        "preferred_channel": "phone",
        "contacts": [
            {"channel": "phone", "value": "050 987 6543", "label": "LabelKanariMobile"},
            {"channel": "sms", "value": "+358 50 9876543"},
            {"channel": "whatsapp", "value": "00358509876543"},
            {"channel": "email", "value": " Ulpukka.Kanervisto@Sirkkala-Posti.fi "},
            {"channel": "instagram", "value": "@Ulpukka_Bird"},
            {"channel": "messenger", "value": "UlpuMessengerX9"},
            {"channel": "postal", "value": "Sirkkalankuja 17 B, 00990 Tunturila"}
        ]
    })
}

/// Every spelling of every canary value (as sent, normalised, lower-cased,
/// digits only), plus what the later steps of the tests add.
const CANARIES: &[&str] = &[
    // display name, also after the patch
    "Ulpukka Kanervisto",
    "Kanervisto",
    "Ulpu Kanervisto-Laine",
    // external reference
    "EXT-CANARY-904177",
    "CANARY-904177",
    // phone as sent, E.164, international and national digits
    "050 987 6543",
    "+358 50 9876543",
    "00358509876543",
    "+358509876543",
    "358509876543",
    "0509876543",
    "509876543",
    // e-mail as sent and normalised
    "Ulpukka.Kanervisto@Sirkkala-Posti.fi",
    "ulpukka.kanervisto@sirkkala-posti.fi",
    "Sirkkala-Posti",
    // handles
    "@Ulpukka_Bird",
    "ulpukka_bird",
    "UlpuMessengerX9",
    // label
    "LabelKanariMobile",
    // postal text
    "Sirkkalankuja",
    "Tunturila",
    // chat contact added later
    "visitor-kanari-5531",
    // an interaction body
    "Kanarialintu soitti laskusta",
];

/// Asserts that `haystack` holds no canary, in any letter case.
#[track_caller]
fn assert_no_canary(haystack: &[u8], where_: &str) {
    let lower = haystack.to_ascii_lowercase();
    for canary in CANARIES {
        let c = canary.to_ascii_lowercase();
        assert!(
            find(&lower, c.as_bytes()).is_none(),
            "{where_} holds the plaintext {canary:?}"
        );
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The bytes of every bytea literal (`\\x…` hex) in a `pg_dump` text dump,
/// each followed by a NUL, so a search sees bytea content as stored.
fn decode_bytea(dump: &[u8]) -> Vec<u8> {
    fn nibble(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < dump.len() {
        if dump[i] == b'\\' && dump[i + 1] == b'x' {
            i += 2;
            while i + 1 < dump.len() {
                match (nibble(dump[i]), nibble(dump[i + 1])) {
                    (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                    _ => break,
                }
                i += 2;
            }
            out.push(0);
        } else {
            i += 1;
        }
    }
    out
}

/// Fills the vault with the canary customer and works with it a little:
/// patch, add a contact, masked and revealed reads, lookups in every spelling.
/// Returns the customer id and its phone contact id.
async fn exercise_canaries(app: &TestApp) -> (Uuid, Uuid) {
    let svc = app.service();
    let r = app.create_customer(&svc, canary_customer()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_owned();
    let phone_contact = contact_id(&r, "phone");

    let r = app
        .patch_customer(&svc, &id, json!({"display_name": "Ulpu Kanervisto-Laine"}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let r = app
        .add_contact(
            &app.agent("chat"),
            &id,
            json!({"channel": "chat", "value": "visitor-kanari-5531"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let phone = app.agent("phone");
    let r = app
        .read_customer(&phone, &id, "purpose=support&reveal=true&reason=TICKET-7")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.json["contacts"][0]["value"], "+358509876543",
        "the vault can still read what it stored: {}",
        r.text
    );
    assert_eq!(r.json["display_name"], "Ulpu Kanervisto-Laine");
    for spelling in [
        "050 987 6543",
        "+358 50 9876543",
        "+358509876543",
        "00358509876543",
    ] {
        let r = app.lookup(&phone, "phone", spelling, "support").await;
        assert_eq!(r.status, StatusCode::OK, "{spelling}: {}", r.text);
    }
    let r = app
        .lookup(
            &app.agent("email"),
            "email",
            "ULPUKKA.KANERVISTO@SIRKKALA-POSTI.FI",
            "support",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app
        .lookup(
            &app.agent("instagram"),
            "instagram",
            "ulpukka_bird",
            "support",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // An interaction with a distinctive body, recorded and read back.
    let r = app
        .request(
            Method::POST,
            &format!("/v1/customers/{id}/interactions"),
            Some(&phone),
            Some(json!({"channel": "phone", "kind": "complaint",
                        "body": "Kanarialintu soitti laskusta"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let r = app
        .request(
            Method::GET,
            &format!("/v1/customers/{id}/interactions?purpose=support"),
            Some(&phone),
            None,
        )
        .await;
    assert_eq!(
        r.json["interactions"][0]["body"], "Kanarialintu soitti laskusta",
        "{}",
        r.text
    );
    // A lookup with an invalid spelling of the number is refused, not stored.
    app.lookup(&phone, "phone", "050 987 6543 ext 9", "support")
        .await
        .assert_problem(400, "invalid_phone");

    (uuid(&id), phone_contact)
}

/// The id of the first contact on `channel` in a profile response.
fn contact_id(profile: &Reply, channel: &str) -> Uuid {
    let c = profile.json["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .find(|c| c["channel"] == channel)
        .unwrap_or_else(|| panic!("no {channel} contact in {}", profile.text));
    uuid(c["id"].as_str().expect("contact id"))
}

fn uuid(s: &str) -> Uuid {
    Uuid::parse_str(s).expect("a uuid")
}

/// The stored ciphertext of one contact's `value`.
async fn stored_value(app: &TestApp, contact: Uuid) -> Vec<u8> {
    arkku::on_db!(app.db(), pool => sqlx::query_scalar::<_, Vec<u8>>(
        "SELECT value FROM contacts WHERE id = $1",
    )
    .bind(contact)
    .fetch_one(pool)
    .await)
    .expect("read stored value")
}

/// `pg_dump` from PATH, else from the newest PostgreSQL under /usr/lib/postgresql.
fn pg_dump_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("pg_dump");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin").join("pg_dump"))
        .filter(|p| p.is_file())
        .collect();
    found.sort_by_key(|p| {
        p.components()
            .nth(4)
            .and_then(|c| c.as_os_str().to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    found
        .pop()
        .expect("pg_dump is neither on PATH nor under /usr/lib/postgresql/*/bin")
}

/// The bytes at rest: the SQLite file with its -wal and -shm, or a data dump
/// of the PostgreSQL database followed by its bytea columns decoded.
fn bytes_at_rest(app: &TestApp) -> Vec<u8> {
    match app.backend {
        Backend::Sqlite => {
            let path = app
                .database_url
                .strip_prefix("sqlite://")
                .expect("sqlite URL");
            let path = Path::new(path);
            assert!(
                path.starts_with(app.dir.path()),
                "the test database lives in the test's temp dir"
            );
            let mut all = std::fs::read(path).expect("read the SQLite file");
            for suffix in ["-wal", "-shm"] {
                let mut side = path.as_os_str().to_owned();
                side.push(suffix);
                if let Ok(bytes) = std::fs::read(PathBuf::from(side)) {
                    all.extend_from_slice(&bytes);
                }
            }
            all
        }
        Backend::Postgres => {
            let out = std::process::Command::new(pg_dump_binary())
                .arg("--data-only")
                .arg(format!("--dbname={}", app.database_url))
                .output()
                .expect("run pg_dump");
            assert!(
                out.status.success(),
                "pg_dump failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mut all = out.stdout;
            let bytea = decode_bytea(&all);
            all.push(0);
            all.extend_from_slice(&bytea);
            all
        }
    }
}

async fn the_database_holds_no_plaintext_contact_value_name_or_reference(b: Backend) {
    let app = spawn_app(b).await;
    let (customer, phone_contact) = exercise_canaries(&app).await;
    let ciphertext = stored_value(&app, phone_contact).await;
    let at_rest = bytes_at_rest(&app);
    let lower = at_rest.to_ascii_lowercase();

    // Positive controls: the search does see what is stored.
    assert!(
        find(&lower, b"phone").is_some(),
        "the channel name is stored"
    );
    match b {
        Backend::Sqlite => {
            assert!(
                find(&at_rest, customer.as_bytes()).is_some(),
                "the customer id (uuid bytes) is stored"
            );
            assert!(
                find(&at_rest, &ciphertext).is_some(),
                "the phone ciphertext is stored as read back"
            );
        }
        Backend::Postgres => {
            assert!(
                find(&lower, customer.to_string().as_bytes()).is_some(),
                "the customer id is in the dump"
            );
            assert!(
                find(&at_rest, &ciphertext).is_some(),
                "the phone ciphertext is in the dump (bytea decoded)"
            );
        }
    }
    assert!(
        ciphertext.len() > "+358509876543".len(),
        "a sealed value carries a nonce and a tag"
    );

    assert_no_canary(&at_rest, &format!("the {} database", b.name()));
}

async fn the_audit_log_holds_none_of_the_stored_values(b: Backend) {
    let app = spawn_app(b).await;
    let (customer, _) = exercise_canaries(&app).await;
    // A lookup that finds nothing and one that is withheld are audited too.
    app.lookup(&app.agent("phone"), "phone", "+358 50 9876540", "support")
        .await
        .assert_problem(404, "not_found");
    app.lookup(&app.service(), "phone", "050 987 6543", "support")
        .await
        .assert_problem(404, "not_found");

    let text = app.audit_text().await;
    assert!(
        text.contains(&customer.to_string()) && text.contains("lookup"),
        "the audit log records the work done: {text}"
    );
    assert!(
        text.contains("TICKET-7"),
        "the reveal reason is audited: {text}"
    );
    assert_no_canary(text.as_bytes(), "the audit log");
}

// --- ciphertexts bound to their place ---------------------------------------

/// Phone numbers of the sabotage tests, each held by one contact only.
const A_PHONE: &str = "040 765 4321";
const A_PHONE_E164: &str = "+358407654321";
const A_SMS: &str = "040 765 4322";
const A_SECOND_PHONE: &str = "040 765 4323";
const B_PHONE: &str = "050 111 2233";

/// Asserts the opaque integrity failure, and that the body leaks none of `secrets`.
#[track_caller]
fn assert_integrity_failure(r: &Reply, secrets: &[&str]) {
    r.assert_problem(500, "internal");
    for s in secrets {
        assert!(!r.text.contains(s), "the error leaks {s:?}: {}", r.text);
    }
}

/// Copies `column` of row `from` onto row `to` of `table`.
async fn copy_column(app: &TestApp, table: &str, column: &str, from: Uuid, to: Uuid) {
    let sql = format!(
        "UPDATE {table} SET {column} = (SELECT {column} FROM {table} WHERE id = $1) WHERE id = $2"
    );
    let n = arkku::on_db!(app.db(), pool => sqlx::query(&sql)
        .bind(from)
        .bind(to)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
    .expect("copy ciphertext");
    assert_eq!(n, 1, "{sql}");
}

async fn create(app: &TestApp, body: Value) -> Reply {
    let r = app.create_customer(&app.service(), body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r
}

fn id_of(r: &Reply) -> String {
    r.json["id"].as_str().expect("id").to_owned()
}

async fn a_contact_ciphertext_copied_to_another_customer_fails_to_open(b: Backend) {
    let app = spawn_app(b).await;
    let a = create(
        &app,
        json!({"contacts": [{"channel": "phone", "value": A_PHONE}]}),
    )
    .await;
    let bee = create(
        &app,
        json!({"contacts": [{"channel": "phone", "value": B_PHONE}]}),
    )
    .await;
    let phone = app.agent("phone");
    let r = app
        .read_customer(&phone, &id_of(&bee), "purpose=support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "before: {}", r.text);
    assert_eq!(r.json["contacts"][0]["value"], "+358*******33");

    copy_column(
        &app,
        "contacts",
        "value",
        contact_id(&a, "phone"),
        contact_id(&bee, "phone"),
    )
    .await;

    let secrets = [A_PHONE_E164, "407654321", "+358*******21"];
    let r = app
        .read_customer(&phone, &id_of(&bee), "purpose=support")
        .await;
    assert_integrity_failure(&r, &secrets);
    let r = app
        .read_customer(
            &phone,
            &id_of(&bee),
            "purpose=support&reveal=true&reason=T-1",
        )
        .await;
    assert_integrity_failure(&r, &secrets);
    // The victim of the copy is not harmed: A still reads.
    let r = app
        .read_customer(&phone, &id_of(&a), "purpose=support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["contacts"][0]["value"], "+358*******21");
}

async fn a_contact_ciphertext_copied_to_another_channel_of_the_customer_fails_to_open(b: Backend) {
    let app = spawn_app(b).await;
    let a = create(
        &app,
        json!({"contacts": [
            {"channel": "phone", "value": A_PHONE},
            {"channel": "sms", "value": A_SMS}
        ]}),
    )
    .await;
    let id = id_of(&a);
    let sms = app.agent("sms");
    let r = app.read_customer(&sms, &id, "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "before: {}", r.text);
    assert_eq!(r.json["contacts"][0]["value"], "+358*******22");

    copy_column(
        &app,
        "contacts",
        "value",
        contact_id(&a, "phone"),
        contact_id(&a, "sms"),
    )
    .await;

    let r = app
        .read_customer(&sms, &id, "purpose=support&reveal=true&reason=T-2")
        .await;
    assert_integrity_failure(&r, &[A_PHONE_E164, "407654321", "+358*******21"]);
    // The phone agent never opens the (withheld) sms contact, so it still reads.
    let r = app
        .read_customer(&app.agent("phone"), &id, "purpose=support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["contacts"][0]["value"], "+358*******21");
}

async fn a_contact_ciphertext_copied_to_another_row_or_field_fails_to_open(b: Backend) {
    let app = spawn_app(b).await;
    // Same customer, same channel, same data key: only the AAD's record id and
    // field name tell the ciphertexts apart.
    let a = create(
        &app,
        json!({"contacts": [
            {"channel": "phone", "value": A_PHONE, "label": "work"},
            {"channel": "phone", "value": A_SECOND_PHONE, "label": "home"}
        ]}),
    )
    .await;
    let id = id_of(&a);
    let contacts = a.json["contacts"].as_array().expect("contacts");
    let first = uuid(contacts[0]["id"].as_str().expect("contact id"));
    let second = uuid(contacts[1]["id"].as_str().expect("contact id"));
    let phone = app.agent("phone");
    let r = app.read_customer(&phone, &id, "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "before: {}", r.text);

    copy_column(&app, "contacts", "value", first, second).await;
    let r = app
        .read_customer(&phone, &id, "purpose=support&reveal=true&reason=T-3")
        .await;
    assert_integrity_failure(&r, &[A_PHONE_E164, "407654321", "407654323"]);

    // Another customer for the field swap: the row's value moved into its label.
    let c = create(
        &app,
        json!({"contacts": [{"channel": "phone", "value": A_PHONE, "label": "work"}]}),
    )
    .await;
    let cid = id_of(&c);
    let r = app.read_customer(&phone, &cid, "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "before: {}", r.text);
    assert_eq!(r.json["contacts"][0]["label"], "work");
    let contact = contact_id(&c, "phone");
    arkku::on_db!(app.db(), pool => sqlx::query("UPDATE contacts SET label = value WHERE id = $1")
        .bind(contact)
        .execute(pool)
        .await
        .map(drop))
    .expect("swap field");
    let r = app.read_customer(&phone, &cid, "purpose=support").await;
    assert_integrity_failure(&r, &[A_PHONE_E164, "407654321"]);
}

async fn a_flipped_byte_in_a_stored_value_fails_to_open(b: Backend) {
    let app = spawn_app(b).await;
    let a = create(
        &app,
        json!({"contacts": [{"channel": "phone", "value": A_PHONE}]}),
    )
    .await;
    let contact = contact_id(&a, "phone");
    let mut sealed = stored_value(&app, contact).await;
    let middle = sealed.len() / 2;
    sealed[middle] ^= 0x01;
    arkku::on_db!(app.db(), pool => sqlx::query("UPDATE contacts SET value = $1 WHERE id = $2")
        .bind(&sealed)
        .bind(contact)
        .execute(pool)
        .await
        .map(drop))
    .expect("write flipped value");
    assert_eq!(stored_value(&app, contact).await, sealed);

    let phone = app.agent("phone");
    for query in ["purpose=support", "purpose=support&reveal=true&reason=T-4"] {
        let r = app.read_customer(&phone, &id_of(&a), query).await;
        assert_integrity_failure(&r, &[A_PHONE_E164, "407654321"]);
    }
}

async fn a_display_name_ciphertext_copied_to_another_customer_or_field_fails_to_open(b: Backend) {
    let app = spawn_app(b).await;
    let a = create(
        &app,
        json!({"display_name": "Aapeli Alkio", "contacts": []}),
    )
    .await;
    let bee = create(
        &app,
        json!({"display_name": "Beata Berg", "external_ref": "REF-BEATA", "contacts": []}),
    )
    .await;
    let svc = app.service();
    let r = app
        .read_customer(&svc, &id_of(&bee), "purpose=support")
        .await;
    assert_eq!(r.status, StatusCode::OK, "before: {}", r.text);
    assert_eq!(r.json["display_name"], "Beata Berg");

    let a_id = uuid(&id_of(&a));
    let b_id = uuid(&id_of(&bee));
    copy_column(&app, "customers", "display_name", a_id, b_id).await;
    let r = app
        .read_customer(&svc, &id_of(&bee), "purpose=support")
        .await;
    assert_integrity_failure(&r, &["Aapeli", "Alkio"]);
    let r = app.read_customer(&svc, &id_of(&a), "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["display_name"], "Aapeli Alkio");

    // Within one customer: the external reference sealed as the display name
    // (every customer that has both; A has no external reference).
    let c = create(
        &app,
        json!({"display_name": "Cecilia C", "external_ref": "REF-CECILIA", "contacts": []}),
    )
    .await;
    let r = app.read_customer(&svc, &id_of(&c), "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "before: {}", r.text);
    app.exec(
        "UPDATE customers SET display_name = external_ref \
         WHERE display_name IS NOT NULL AND external_ref IS NOT NULL",
    )
    .await;
    let r = app.read_customer(&svc, &id_of(&c), "purpose=support").await;
    assert_integrity_failure(&r, &["REF-CECILIA"]);
    let r = app.read_customer(&svc, &id_of(&a), "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn both_backends_have_the_same_migration_files(_b: Backend) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let names = |dir: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("read migrations/{dir}: {e}"))
            .map(|e| {
                e.expect("dir entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        v.sort();
        v
    };
    let sqlite = names("sqlite");
    let postgres = names("postgres");
    assert!(!sqlite.is_empty(), "there are migrations");
    assert!(
        sqlite.iter().all(|n| n.ends_with(".sql")),
        "only .sql files: {sqlite:?}"
    );
    assert_eq!(
        sqlite, postgres,
        "migrations/sqlite and migrations/postgres must hold the same file names"
    );
}

// --- erasure residue ------------------------------------------------------

/// Every sealed byte string an erasure must remove, read straight from the
/// tables: the wrapped data keys, every field ciphertext and every blind-index
/// tag of `customer`, each with what it is (never its content) for messages.
async fn sealed_bytes_of(app: &TestApp, customer: Uuid) -> Vec<(&'static str, Vec<u8>)> {
    const QUERIES: [(&str, &str); 7] = [
        (
            "wrapped data key",
            "SELECT wrapped FROM data_keys WHERE customer_id = $1",
        ),
        (
            "contact value",
            "SELECT value FROM contacts WHERE customer_id = $1",
        ),
        (
            "contact label",
            "SELECT label FROM contacts WHERE customer_id = $1 AND label IS NOT NULL",
        ),
        (
            "blind index tag",
            "SELECT blind_index FROM contacts WHERE customer_id = $1",
        ),
        (
            "display name",
            "SELECT display_name FROM customers WHERE id = $1 AND display_name IS NOT NULL",
        ),
        (
            "external reference",
            "SELECT external_ref FROM customers WHERE id = $1 AND external_ref IS NOT NULL",
        ),
        (
            "interaction body",
            "SELECT body FROM interactions WHERE customer_id = $1",
        ),
    ];
    let mut out = Vec::new();
    for (what, sql) in QUERIES {
        let rows: Vec<Vec<u8>> = arkku::on_db!(app.db(), pool => sqlx::query_scalar(sql)
            .bind(customer)
            .fetch_all(pool)
            .await)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.extend(rows.into_iter().map(|bytes| (what, bytes)));
    }
    out
}

/// The sealed byte strings of `secrets` that occur in `haystack`, by kind.
fn residue<'a>(haystack: &[u8], secrets: &'a [(&'static str, Vec<u8>)]) -> Vec<&'a str> {
    secrets
        .iter()
        .filter(|(_, bytes)| find(haystack, bytes).is_some())
        .map(|(what, _)| *what)
        .collect()
}

/// The files of every table, index and TOAST relation of the test database,
/// after a checkpoint wrote the shared buffers out; `None` when this process
/// cannot read PostgreSQL's data directory (not on the database host, or not
/// allowed to).
async fn postgres_relation_files(app: &TestApp) -> Option<Vec<u8>> {
    let arkku::store::Db::Postgres(pool) = app.db() else {
        panic!("a PostgreSQL test");
    };
    sqlx::query("CHECKPOINT").execute(pool).await.ok()?;
    let data_dir: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
        .fetch_one(pool)
        .await
        .ok()?;
    let files: Vec<String> = sqlx::query_scalar(
        "SELECT pg_relation_filepath(c.oid) FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname IN ('public', 'pg_toast') AND c.relkind IN ('r', 'i', 't') \
         AND pg_relation_filepath(c.oid) IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .expect("relation file paths");
    let mut all = Vec::new();
    for file in files {
        match std::fs::read(Path::new(&data_dir).join(&file)) {
            Ok(bytes) => all.extend_from_slice(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return None,
        }
    }
    Some(all)
}

async fn an_erased_customer_leaves_no_key_ciphertext_or_index_in_the_database_files(b: Backend) {
    // Arrange: a customer with a phone and an e-mail contact (labelled), a
    // profile and an interaction, and what the database holds of them.
    let app = spawn_app(b).await;
    let svc = app.service();
    let id = app
        .create_customer_ok(
            &svc,
            json!({
                "display_name": "Jäännös Poistettava",
                "external_ref": "RESIDUE-REF-1",
                "contacts": [
                    {"channel": "phone", "value": "040 555 0199", "label": "koti"},
                    {"channel": "email", "value": "jaannos.poistettava@example.com"}
                ]
            }),
        )
        .await;
    let r = app
        .request(
            Method::POST,
            &format!("/v1/customers/{id}/interactions"),
            Some(&app.agent("phone")),
            Some(json!({"channel": "phone", "kind": "complaint", "body": "Poistettava valitus"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let customer = uuid(&id);
    let secrets = sealed_bytes_of(&app, customer).await;
    let kinds: std::collections::BTreeSet<&str> = secrets.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds.len(),
        7,
        "every kind of sealed data is there: {kinds:?}"
    );
    assert!(
        secrets
            .iter()
            .filter(|(k, _)| *k == "wrapped data key")
            .count()
            >= 2,
        "a data key per channel"
    );
    // Positive control: before the erasure the search finds every one of them.
    if b == Backend::Sqlite {
        let before = bytes_at_rest(&app);
        assert_eq!(residue(&before, &secrets).len(), secrets.len());
        // The attacker's setting: the inserts have reached the database file.
        app.exec("PRAGMA wal_checkpoint(PASSIVE)").await;
    }

    // Act
    let r = app
        .request(
            Method::DELETE,
            &format!("/v1/customers/{id}?reason=DSR-RESIDUE"),
            Some(&app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Assert: the rows are gone on both databases ...
    assert!(
        sealed_bytes_of(&app, customer).await.is_empty(),
        "the erasure left sealed rows behind"
    );
    match b {
        // ... and on SQLite no byte of them is left in the live files: the
        // database file (freed cells and pages) nor its -wal and -shm.
        Backend::Sqlite => {
            let after = bytes_at_rest(&app);
            let left = residue(&after, &secrets);
            assert!(
                left.is_empty(),
                "the SQLite files still hold, byte for byte: {left:?}"
            );
        }
        // On PostgreSQL the deleted tuples stay in the relation files until
        // they are vacuumed (SECURITY.md says so and what to do); VACUUM FULL
        // rewrites the files without them.
        Backend::Postgres => {
            let Some(dead) = postgres_relation_files(&app).await else {
                println!("note: PostgreSQL's data directory is not readable here; the relation files were not inspected");
                return;
            };
            assert!(
                !residue(&dead, &secrets).is_empty(),
                "dead tuples stay in the relation files until VACUUM"
            );
            sqlx::raw_sql("VACUUM FULL")
                .execute(match app.db() {
                    arkku::store::Db::Postgres(pool) => pool,
                    _ => unreachable!(),
                })
                .await
                .expect("VACUUM FULL");
            let vacuumed = postgres_relation_files(&app)
                .await
                .expect("readable as before");
            let left = residue(&vacuumed, &secrets);
            assert!(left.is_empty(), "VACUUM FULL left: {left:?}");
        }
    }
}

async fn a_retention_purge_leaves_no_key_ciphertext_or_index_in_the_database_files(b: Backend) {
    // Arrange: a customer whose every record will be past retention.
    let app = spawn_app(b).await;
    let id = app
        .create_customer_ok(
            &app.service(),
            json!({
                "display_name": "Vanheneva Asiakas",
                "contacts": [
                    {"channel": "phone", "value": "040 555 0177", "label": "työ"},
                    {"channel": "email", "value": "vanheneva.asiakas@example.com"}
                ]
            }),
        )
        .await;
    let customer = uuid(&id);
    let secrets = sealed_bytes_of(&app, customer).await;
    assert!(secrets.len() >= 6, "keys, values, label, tags, name");
    if b == Backend::Sqlite {
        assert_eq!(residue(&bytes_at_rest(&app), &secrets).len(), secrets.len());
        app.exec("PRAGMA wal_checkpoint(PASSIVE)").await;
    }

    // Act: the real sweeper, twenty years from now.
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(7300))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = app.cli(&["retention", "run", "--now", &later]).await;
    assert!(r.status.success(), "{}\n{}", r.stdout, r.stderr);
    let report: Value = serde_json::from_str(&r.stdout).expect("a JSON report");
    assert_eq!(report["customers"], 1, "{report}");

    // Assert: the rows are gone, and on SQLite no byte of them is left.
    assert!(sealed_bytes_of(&app, customer).await.is_empty());
    if b == Backend::Sqlite {
        let left = residue(&bytes_at_rest(&app), &secrets);
        assert!(
            left.is_empty(),
            "the SQLite files still hold, byte for byte: {left:?}"
        );
    }
}
