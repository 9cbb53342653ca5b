//! What a response says is what happened (README, "Retries"): a request answered
//! 503 changed nothing and released nothing, and its audit entry says it was
//! refused; `Idempotency-Key` lets a client retry a POST safely.
//!
//! Run through the real `arkku serve` binary, on both databases.

use std::time::Duration;

use arkku::domain::Role;
use reqwest::{Client, Method};
use serde_json::{json, Value};
use sqlx::Connection;

use crate::helpers::{
    db_scalar, http_client, issue_token, send, Backend, Env, Reply, Scenario, Tok,
};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        requests_answered_503_during_an_audit_stall_changed_nothing_and_are_logged_as_refused,
        a_retried_post_with_the_same_idempotency_key_gets_the_first_answer_and_writes_once,
        a_post_answered_503_is_retried_with_its_idempotency_key_and_runs_once,
    ]
}

/// The audit deadline of these tests, and how long the stall outlasts it
/// (shorter than SQLite's 5 s busy timeout, so the writer gets the lock
/// back once the stall ends and commits what it was holding).
const DEADLINE: &str = "400ms";
const STALL: Duration = Duration::from_millis(1600);

struct Client2 {
    http: Client,
    base: String,
}

impl Client2 {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        idempotency_key: Option<&str>,
    ) -> Reply {
        let mut rb = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(k) = idempotency_key {
            rb = rb.header("idempotency-key", k);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        send(rb).await
    }
}

impl Client2 {
    /// `POST /v1/customers`, with an `Idempotency-Key` if given.
    async fn create(&self, token: &str, body: Value, key: Option<&str>) -> Reply {
        self.call(Method::POST, "/v1/customers", token, Some(body), key)
            .await
    }
}

fn request_id(r: &Reply) -> String {
    r.header("x-request-id").expect("x-request-id").to_owned()
}

/// Holds the database's audit table against writers until dropped by `release`.
enum Stall {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Stall {
    async fn begin(b: Backend, url: &str) -> Self {
        match b {
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(url).await.expect("connect");
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut c)
                    .await
                    .expect("take the write lock");
                Stall::Sqlite(c)
            }
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
                sqlx::query("BEGIN").execute(&mut c).await.expect("begin");
                sqlx::query("LOCK TABLE audit_log IN EXCLUSIVE MODE")
                    .execute(&mut c)
                    .await
                    .expect("lock the audit table");
                Stall::Postgres(c)
            }
        }
    }

    async fn release(self) {
        match self {
            Stall::Sqlite(mut c) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut c)
                    .await
                    .expect("release");
                c.close().await.expect("close");
            }
            Stall::Postgres(mut c) => {
                sqlx::query("ROLLBACK")
                    .execute(&mut c)
                    .await
                    .expect("release");
                c.close().await.expect("close");
            }
        }
    }
}

async fn requests_answered_503_during_an_audit_stall_changed_nothing_and_are_logged_as_refused(
    b: Backend,
) {
    let env = Env::new(b).await;
    let server = env.serve_with(&[("ARKKU_AUDIT_TIMEOUT", DEADLINE)]).await;
    let c = Client2 {
        http: http_client(),
        base: server.base.clone(),
    };
    let key = env.issuer_key();
    let service = issue_token(
        &key,
        Tok {
            role: Role::Service,
            sub: "crm-sync",
            purposes: &["support"],
            channel: None,
        },
    );
    let agent = issue_token(
        &key,
        Tok {
            role: Role::Agent,
            sub: "alice",
            purposes: &["support"],
            channel: Some("phone"),
        },
    );
    let created = c
        .create(
            &service,
            json!({"display_name": "Pysähdys", "contacts": [
                {"channel": "phone", "value": "040 765 4321"},
                {"channel": "email", "value": "pysahdys@example.com"}]}),
            None,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().expect("id").to_owned();
    let me = issue_token(
        &key,
        Tok {
            role: Role::Customer,
            sub: &id,
            purposes: &[],
            channel: None,
        },
    );
    let db = env.db().await;
    let before = Counts::of(&db).await;

    // The stall: the audit table is locked past the deadline while writes,
    // reads and consent changes arrive.
    let stall = Stall::begin(b, &env.database_url).await;
    let grant = |channel: &str| {
        json!({"purpose": "marketing", "channel": channel, "action": "grant", "method": "web_form",
               "evidence": {"notice_id": "privacy-2026", "notice_version": "3"}})
    };
    let consents_path = "/v1/me/consents".to_owned();
    let interactions_path = format!("/v1/customers/{id}/interactions");
    let contacts_path = format!("/v1/customers/{id}/contacts");
    let read_path = format!("/v1/customers/{id}?purpose=support");
    // The stall ends on its own clock, whatever the requests are doing.
    let (fired, ()) = tokio::join!(
        async {
            tokio::join!(
                c.call(Method::POST, &consents_path, &me, Some(grant("email")), None),
                c.call(Method::POST, &consents_path, &me, Some(grant("phone")), None),
                c.call(
                    Method::POST,
                    &interactions_path,
                    &agent,
                    Some(json!({"channel": "phone", "kind": "contact_request", "body": "soita takaisin"})),
                    None
                ),
                c.create(&service, json!({"display_name": "Ei Ole", "contacts": [{"channel": "phone", "value": "040 111 2233"}]}), None),
                c.call(
                    Method::POST,
                    &contacts_path,
                    &service,
                    Some(json!({"channel": "sms", "value": "040 999 8877"})),
                    None
                ),
                c.call(Method::GET, &read_path, &agent, None, None),
            )
        },
        async {
            tokio::time::sleep(STALL).await;
            stall.release().await;
        },
    );
    // Everything queued before the stall ended is settled once a later
    // request through the same writer has been answered.
    let after_stall = c.call(Method::GET, &read_path, &agent, None, None).await;
    assert_eq!(after_stall.status, 200, "{}", after_stall.text);

    let (grant_email, grant_phone, interaction, create, contact, read) = fired;
    // What each request would add: (what, answer, rows it adds if it happened).
    let answers = [
        ("consent grant (email)", &grant_email, Counts::consent()),
        ("consent grant (phone)", &grant_phone, Counts::consent()),
        ("interaction create", &interaction, Counts::interaction()),
        (
            "customer create",
            &create,
            Counts::customer_with_one_contact(),
        ),
        ("contact add", &contact, Counts::contact()),
        ("profile read", &read, Counts::default()),
    ];
    let mut problems = Vec::new();
    let mut expected = before;
    for (what, r, adds) in answers {
        let rid = request_id(r);
        let entries = |decision: &str, code: &str| {
            format!(
                "SELECT COUNT(*) FROM audit_log WHERE request_id = '{rid}' \
                 AND decision = '{decision}' AND detail LIKE '%{code}%'"
            )
        };
        let allowed = db_scalar(&db, &entries("allow", "")).await;
        let refused = db_scalar(&db, &entries("deny", "\"code\":\"audit_unavailable\"")).await;
        match r.status.as_u16() {
            // Refused: its entry says so, and nothing of it happened.
            503 => {
                if r.json["code"] != "audit_unavailable" && r.json["code"] != "database_unavailable"
                {
                    problems.push(format!("{what}: {}", r.text));
                }
                if allowed != 0 || refused != 1 {
                    problems.push(format!(
                        "{what} answered 503, but its audit log holds {allowed} allow and \
                         {refused} refused entries (expected 0 and 1)"
                    ));
                }
            }
            // It waited for the database rather than the audit log, and
            // then went through: it must be there, with its allow entry.
            200..=299 => {
                expected = expected.plus(&adds);
                if allowed != 1 {
                    problems.push(format!(
                        "{what} answered {} but has {allowed} allow entries",
                        r.status
                    ));
                }
            }
            other => problems.push(format!("{what} answered {other}: {}", r.text)),
        }
    }
    // The requests that meet nothing but the audit log before their entry
    // must have missed its deadline: the stall was real.
    for (what, r) in [("consent grant", &grant_email), ("profile read", &read)] {
        if r.status != 503 {
            problems.push(format!("{what} answered {} during the stall", r.status));
        }
    }
    // And the database holds exactly what was answered 2xx.
    let after = Counts::of(&db).await;
    if after != expected {
        problems.push(format!(
            "the database does not match the answers: expected {expected:?}, found {after:?}"
        ));
    }
    let ledger = c.call(Method::GET, &consents_path, &me, None, None).await;
    let granted = [&grant_email, &grant_phone]
        .iter()
        .filter(|r| r.status.is_success())
        .count();
    if ledger.json["history"].as_array().map(Vec::len) != Some(granted) {
        problems.push(format!(
            "{granted} grants were answered 201, the ledger says: {}",
            ledger.text
        ));
    }
    assert!(problems.is_empty(), "{problems:#?}");

    // The chain still verifies, and the vault works again.
    db.close().await;
    env.verify_ok().await;
}

/// Rows that the writes of the stall would have added.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    customers: i64,
    contacts: i64,
    consents: i64,
    interactions: i64,
}

impl Counts {
    fn consent() -> Self {
        Counts {
            consents: 1,
            ..Counts::default()
        }
    }

    fn interaction() -> Self {
        Counts {
            interactions: 1,
            ..Counts::default()
        }
    }

    fn contact() -> Self {
        Counts {
            contacts: 1,
            ..Counts::default()
        }
    }

    fn customer_with_one_contact() -> Self {
        Counts {
            customers: 1,
            contacts: 1,
            ..Counts::default()
        }
    }

    fn plus(self, o: &Counts) -> Self {
        Counts {
            customers: self.customers + o.customers,
            contacts: self.contacts + o.contacts,
            consents: self.consents + o.consents,
            interactions: self.interactions + o.interactions,
        }
    }

    async fn of(db: &arkku::store::Db) -> Self {
        Counts {
            customers: db_scalar(db, "SELECT COUNT(*) FROM customers").await,
            contacts: db_scalar(db, "SELECT COUNT(*) FROM contacts").await,
            consents: db_scalar(db, "SELECT COUNT(*) FROM consents").await,
            interactions: db_scalar(db, "SELECT COUNT(*) FROM interactions").await,
        }
    }
}

/// The tokens of these tests.
struct Callers {
    service: String,
    other_service: String,
    agent: String,
    compliance: String,
}

impl Callers {
    fn of(env: &Env) -> Self {
        let key = env.issuer_key();
        let tok = |role, sub, purposes: &'static [&'static str], channel| {
            issue_token(
                &key,
                Tok {
                    role,
                    sub,
                    purposes,
                    channel,
                },
            )
        };
        Callers {
            service: tok(Role::Service, "crm-sync", &["support"], None),
            other_service: tok(Role::Service, "billing-sync", &["support"], None),
            agent: tok(Role::Agent, "alice", &["support"], Some("phone")),
            compliance: tok(Role::Compliance, "auditor", &["dsr"], None),
        }
    }
}

fn kirsi() -> Value {
    json!({"display_name": "Kirsi Kertaalleen", "contacts": [
        {"channel": "phone", "value": "040 246 8135"},
        {"channel": "email", "value": "kirsi@example.com"}]})
}

async fn count(db: &arkku::store::Db, sql: &str) -> i64 {
    db_scalar(db, sql).await
}

async fn a_retried_post_with_the_same_idempotency_key_gets_the_first_answer_and_writes_once(
    b: Backend,
) {
    let env = Env::new(b).await;
    let server = env.serve().await;
    let c = Client2 {
        http: http_client(),
        base: server.base.clone(),
    };
    let who = Callers::of(&env);
    let db = env.db().await;

    // A create, sent twice with one key: one customer, the same answer twice.
    let first = c.create(&who.service, kirsi(), Some("create-1")).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = c.create(&who.service, kirsi(), Some("create-1")).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.json, first.json, "the retry gets the first answer");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM customers").await, 1);
    let id = first.json["id"].as_str().expect("id").to_owned();

    // The same key for another request is refused; another caller's key space is its own.
    let mut other = kirsi();
    other["display_name"] = json!("Joku Muu");
    c.create(&who.service, other.clone(), Some("create-1"))
        .await
        .assert_problem(422, "idempotency_key_reused");
    let theirs = c.create(&who.other_service, other, Some("create-1")).await;
    assert_eq!(theirs.status, 201, "{}", theirs.text);
    assert_ne!(theirs.json["id"], first.json["id"]);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM customers").await, 2);

    // An interaction and a consent grant, each retried: one row each.
    let interactions = format!("/v1/customers/{id}/interactions");
    let note = json!({"channel": "phone", "kind": "contact_request", "body": "soita huomenna"});
    let i1 = c
        .call(
            Method::POST,
            &interactions,
            &who.agent,
            Some(note.clone()),
            Some("call-7"),
        )
        .await;
    assert_eq!(i1.status, 201, "{}", i1.text);
    let i2 = c
        .call(
            Method::POST,
            &interactions,
            &who.agent,
            Some(note),
            Some("call-7"),
        )
        .await;
    assert_eq!((i2.status.as_u16(), &i2.json), (201, &i1.json));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM interactions").await, 1);
    let me = issue_token(
        &env.issuer_key(),
        Tok {
            role: Role::Customer,
            sub: &id,
            purposes: &[],
            channel: None,
        },
    );
    let grant = json!({"purpose": "marketing", "channel": "email", "action": "grant",
        "method": "web_form", "evidence": {"notice_id": "privacy-2026", "notice_version": "3"}});
    let g1 = c
        .call(
            Method::POST,
            "/v1/me/consents",
            &me,
            Some(grant.clone()),
            Some("optin"),
        )
        .await;
    assert_eq!(g1.status, 201, "{}", g1.text);
    let g2 = c
        .call(
            Method::POST,
            "/v1/me/consents",
            &me,
            Some(grant),
            Some("optin"),
        )
        .await;
    assert_eq!((g2.status.as_u16(), &g2.json), (201, &g1.json));
    assert_eq!(count(&db, "SELECT COUNT(*) FROM consents").await, 1);

    // Every replay released data, so each is audited, as request.replay.
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'request.replay' AND decision = 'allow'"
        )
        .await,
        3
    );
    // Kept answers are sealed: the display name is not in the table in clear.
    let in_clear = match b {
        Backend::Sqlite => "SELECT COUNT(*) FROM idempotency_keys WHERE instr(response, 'Kertaalleen') > 0",
        Backend::Postgres => "SELECT COUNT(*) FROM idempotency_keys WHERE position('Kertaalleen'::bytea in response) > 0",
    };
    assert_eq!(count(&db, in_clear).await, 0);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM idempotency_keys WHERE response IS NOT NULL"
        )
        .await,
        4
    );

    // Malformed keys are refused before anything runs.
    for bad in ["", "with space", &"k".repeat(256), "tab\tkey"] {
        let r = c.create(&who.service, kirsi(), Some(bad)).await;
        r.assert_problem(400, "invalid_request");
    }
    let two = c
        .http
        .post(format!("{}/v1/customers", c.base))
        .bearer_auth(&who.service)
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .json(&kirsi())
        .send()
        .await
        .expect("sent");
    Reply::read(two)
        .await
        .assert_problem(400, "invalid_request");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM customers").await, 2);

    // After erasure the kept answers of that customer are gone: a replay
    // says the customer was erased, and releases nothing.
    let erased = c
        .call(
            Method::DELETE,
            &format!("/v1/customers/{id}?reason=CASE-9"),
            &who.compliance,
            None,
            None,
        )
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text);
    let after = c.create(&who.service, kirsi(), Some("create-1")).await;
    after.assert_problem(410, "customer_erased");
    assert!(!after.text.contains("Kertaalleen"), "{}", after.text);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM customers").await, 2);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM audit_log WHERE action = 'request.replay' AND decision = 'deny'"
        )
        .await,
        1
    );
    db.close().await;
    env.verify_ok().await;
}

async fn a_post_answered_503_is_retried_with_its_idempotency_key_and_runs_once(b: Backend) {
    let env = Env::new(b).await;
    let server = env.serve_with(&[("ARKKU_AUDIT_TIMEOUT", DEADLINE)]).await;
    let c = Client2 {
        http: http_client(),
        base: server.base.clone(),
    };
    let who = Callers::of(&env);
    let db = env.db().await;

    let stall = Stall::begin(b, &env.database_url).await;
    let during = c.create(&who.service, kirsi(), Some("retry-me")).await;
    // 503 from the audit log, or from the database itself (SQLite's write
    // lock also holds the key's own row): either way nothing was done.
    assert_eq!(during.status, 503, "{}", during.text);
    assert!(
        matches!(
            during.json["code"].as_str(),
            Some("audit_unavailable" | "database_unavailable")
        ),
        "{}",
        during.text
    );
    tokio::time::sleep(STALL).await;
    stall.release().await;

    let retried = c.create(&who.service, kirsi(), Some("retry-me")).await;
    assert_eq!(retried.status, 201, "{}", retried.text);
    assert_eq!(retried.header("idempotent-replayed"), None, "the retry ran");
    let replayed = c.create(&who.service, kirsi(), Some("retry-me")).await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(replayed.json["id"], retried.json["id"]);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM customers").await, 1);
    db.close().await;
    env.verify_ok().await;
}
