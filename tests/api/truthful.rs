//! What a response says is what happened (DESIGN.md §11): a request answered
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
        .call(
            Method::POST,
            "/v1/customers",
            &service,
            Some(json!({"display_name": "Pysähdys", "contacts": [
                {"channel": "phone", "value": "040 765 4321"},
                {"channel": "email", "value": "pysahdys@example.com"}]})),
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
    let (fired, _) = tokio::join!(
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
                c.call(
                    Method::POST,
                    "/v1/customers",
                    &service,
                    Some(json!({"display_name": "Ei Ole", "contacts": [{"channel": "phone", "value": "040 111 2233"}]})),
                    None
                ),
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
        tokio::time::sleep(STALL),
    );
    stall.release().await;
    // Everything queued before the stall ended is settled once a later
    // request through the same writer has been answered.
    let after_stall = c.call(Method::GET, &read_path, &agent, None, None).await;
    assert_eq!(after_stall.status, 200, "{}", after_stall.text);

    let (grant_email, grant_phone, interaction, create, contact, read) = fired;
    let answers = [
        ("consent grant (email)", &grant_email),
        ("consent grant (phone)", &grant_phone),
        ("interaction create", &interaction),
        ("customer create", &create),
        ("contact add", &contact),
        ("profile read", &read),
    ];
    let mut problems = Vec::new();
    for (what, r) in answers {
        // Each request was waiting on the stalled audit log past its deadline.
        if r.status != 503 || r.json["code"] != "audit_unavailable" {
            problems.push(format!(
                "{what} answered {} during the stall: {}",
                r.status, r.text
            ));
            continue;
        }
        // Its audit entry, if written, says the request was refused.
        let rid = request_id(r);
        let allowed = db_scalar(
            &db,
            &format!(
                "SELECT COUNT(*) FROM audit_log WHERE request_id = '{rid}' AND decision = 'allow'"
            ),
        )
        .await;
        let refused = db_scalar(
            &db,
            &format!(
                "SELECT COUNT(*) FROM audit_log WHERE request_id = '{rid}' AND decision = 'deny' \
                 AND detail LIKE '%\"code\":\"audit_unavailable\"%'"
            ),
        )
        .await;
        if allowed != 0 || refused != 1 {
            problems.push(format!(
                "{what} answered 503, but its audit log holds {allowed} allow and {refused} \
                 refused entries (expected 0 and 1)"
            ));
        }
    }
    // And nothing that was answered 503 happened.
    let after = Counts::of(&db).await;
    if after != before {
        problems.push(format!(
            "requests answered 503 changed the database: before {before:?}, after {after:?}"
        ));
    }
    let ledger = c.call(Method::GET, &consents_path, &me, None, None).await;
    if ledger.json["history"] != json!([]) {
        problems.push(format!(
            "grants answered 503 are in the consent ledger: {}",
            ledger.text
        ));
    }
    assert!(problems.is_empty(), "{problems:#?}");

    // The chain still verifies, and the vault works again.
    db.close().await;
    env.verify_ok().await;
}

/// Rows that the writes of the stall would have added.
#[derive(Debug, PartialEq, Eq)]
struct Counts {
    customers: i64,
    contacts: i64,
    consents: i64,
    interactions: i64,
}

impl Counts {
    async fn of(db: &arkku::store::Db) -> Self {
        Counts {
            customers: db_scalar(db, "SELECT COUNT(*) FROM customers").await,
            contacts: db_scalar(db, "SELECT COUNT(*) FROM contacts").await,
            consents: db_scalar(db, "SELECT COUNT(*) FROM consents").await,
            interactions: db_scalar(db, "SELECT COUNT(*) FROM interactions").await,
        }
    }
}
