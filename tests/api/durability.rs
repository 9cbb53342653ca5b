//! Durability under concurrency and failure (SECURITY.md, "Audit"): one gap-free,
//! verifiable audit order under concurrent requests and across two `serve`
//! processes on one database; no acknowledged write lost when the server is
//! killed with SIGKILL; a fast 503 without customer data when the database
//! goes away or stays locked; and the durability settings the audit log rests on.
//!
//! All traffic stays on 127.0.0.1, every loop is bounded, and every child
//! process is killed when the test ends, pass or fail.

use std::{
    collections::BTreeSet,
    str::FromStr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use arkku::{crypto::SecretKey, domain::Role, store::Db};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::{net::TcpListener, task::JoinSet};
use uuid::Uuid;

use crate::helpers::{
    http_client, issue_token, no_rate_limits, no_rate_limits_env, postgres_url, spawn_app,
    spawn_app_with, Backend, Env, Reply, Scenario, Tok,
};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        concurrent_requests_get_exactly_one_audit_entry_each_in_one_gap_free_verified_order,
        two_serve_processes_on_one_database_keep_one_gap_free_verified_audit_chain,
        a_consent_change_through_one_process_decides_the_next_read_at_the_other,
        after_sigkill_under_load_every_acknowledged_request_and_customer_is_stored_and_the_chain_verifies,
        a_lost_or_locked_database_gives_a_fast_503_without_customer_data,
        the_database_runs_with_durable_settings_and_a_restarted_serve_logs_no_warnings,
    ]
}

// --- tokens and requests ----------------------------------------------------

/// The tokens the load uses.
#[derive(Clone)]
struct Tokens {
    /// An agent of channel phone with purpose support.
    agent: String,
    /// An integration with purpose support (creates customers).
    service: String,
    compliance: String,
}

impl Tokens {
    fn signed_with(key: &SecretKey) -> Self {
        Tokens {
            agent: issue_token(
                key,
                Tok {
                    role: Role::Agent,
                    sub: "agent-load",
                    purposes: &["support"],
                    channel: Some("phone"),
                },
            ),
            service: issue_token(
                key,
                Tok {
                    role: Role::Service,
                    sub: "crm-sync",
                    purposes: &["support"],
                    channel: None,
                },
            ),
            compliance: issue_token(
                key,
                Tok {
                    role: Role::Compliance,
                    sub: "auditor",
                    purposes: &["dsr"],
                    channel: None,
                },
            ),
        }
    }
}

/// One answer: status, the `x-request-id` header, and the body.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    request_id: String,
    text: String,
    json: Value,
}

async fn send(
    client: &Client,
    method: Method,
    url: String,
    token: Option<&str>,
    body: Option<&Value>,
) -> reqwest::Result<Answer> {
    let mut rb = client.request(method, url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(b);
    }
    let reply = Reply::try_read(rb.send().await?).await?;
    Ok(Answer {
        status: reply.status.as_u16(),
        request_id: reply.header("x-request-id").unwrap_or("").to_owned(),
        text: reply.text,
        json: reply.json,
    })
}

/// A customer made before the load, for reads and lookups.
#[derive(Debug, Clone)]
struct Seed {
    id: String,
    phone: String,
}

/// What one load request does, and what it must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `POST /v1/customers` by the service: 201.
    Create,
    /// A profile read by the phone agent for support: 200.
    Read,
    /// A lookup of a seeded number: 200.
    Lookup,
    /// A lookup of a number nobody has: 404.
    LookupMiss,
    /// A read of an id that does not exist: 404.
    ReadUnknown,
    /// A read for a purpose the token does not list: 403.
    ReadWrongPurpose,
    /// A read without a token: 401.
    ReadWithoutToken,
}

impl Kind {
    /// A fixed mix: creates, reads and lookups, and some refusals.
    fn of(task: usize, j: usize) -> Self {
        match (task + j) % 8 {
            0 => Kind::Create,
            1 | 2 => Kind::Read,
            3 => Kind::Lookup,
            4 => Kind::LookupMiss,
            5 => Kind::ReadUnknown,
            6 => Kind::ReadWrongPurpose,
            _ => Kind::ReadWithoutToken,
        }
    }

    fn expected(self) -> u16 {
        match self {
            Kind::Create => 201,
            Kind::Read | Kind::Lookup => 200,
            Kind::LookupMiss | Kind::ReadUnknown => 404,
            Kind::ReadWrongPurpose => 403,
            Kind::ReadWithoutToken => 401,
        }
    }
}

/// A Finnish mobile number unique to (`prefix`, `task`, `j`).
fn phone(prefix: u8, task: usize, j: usize) -> String {
    format!("040 {prefix}{:02}{:04}", task % 100, j % 10_000)
}

fn new_customer(name: &str, phone: &str) -> Value {
    json!({
        "display_name": name,
        "contacts": [{"channel": "phone", "value": phone, "label": "mobile"}]
    })
}

async fn request(
    client: &Client,
    base: &str,
    tokens: &Tokens,
    seeds: &[Seed],
    kind: Kind,
    task: usize,
    j: usize,
) -> reqwest::Result<Answer> {
    let seed = &seeds[(task + j) % seeds.len()];
    let read = |id: &str, purpose: &str| format!("{base}/v1/customers/{id}?purpose={purpose}");
    let lookup = |value: &str| json!({"channel": "phone", "value": value, "purpose": "support"});
    let (agent, service) = (Some(tokens.agent.as_str()), Some(tokens.service.as_str()));
    match kind {
        Kind::Create => {
            let body = new_customer(&format!("Load {task}-{j}"), &phone(6, task, j));
            let url = format!("{base}/v1/customers");
            send(client, Method::POST, url, service, Some(&body)).await
        }
        Kind::Read => send(client, Method::GET, read(&seed.id, "support"), agent, None).await,
        Kind::Lookup => {
            let url = format!("{base}/v1/lookup");
            send(client, Method::POST, url, agent, Some(&lookup(&seed.phone))).await
        }
        Kind::LookupMiss => {
            let url = format!("{base}/v1/lookup");
            let body = lookup(&phone(8, task, j));
            send(client, Method::POST, url, agent, Some(&body)).await
        }
        Kind::ReadUnknown => {
            let url = read(&Uuid::now_v7().to_string(), "support");
            send(client, Method::GET, url, agent, None).await
        }
        Kind::ReadWrongPurpose => {
            send(
                client,
                Method::GET,
                read(&seed.id, "marketing"),
                agent,
                None,
            )
            .await
        }
        Kind::ReadWithoutToken => {
            send(client, Method::GET, read(&seed.id, "support"), None, None).await
        }
    }
}

/// Creates `n` customers one after another; returns them and the request ids.
async fn seed(client: &Client, base: &str, tokens: &Tokens, n: usize) -> (Vec<Seed>, Vec<String>) {
    let mut seeds = Vec::new();
    let mut ids = Vec::new();
    for k in 0..n {
        let phone = phone(7, 0, k);
        let body = new_customer(&format!("Seed Customer {k}"), &phone);
        let url = format!("{base}/v1/customers");
        let a = send(
            client,
            Method::POST,
            url,
            Some(&tokens.service),
            Some(&body),
        )
        .await
        .expect("seed request");
        assert_eq!(a.status, 201, "seed customer: {}", a.text);
        ids.push(a.request_id);
        let id = a.json["id"].as_str().expect("id").to_owned();
        seeds.push(Seed { id, phone });
    }
    (seeds, ids)
}

/// One answered load request.
#[derive(Debug)]
struct Sent {
    kind: Kind,
    target: usize,
    answer: Answer,
}

/// Runs `tasks` concurrent clients of `per_task` requests each; client `t`
/// talks to `targets[t % targets.len()]`. Every request must get an answer.
async fn drive(
    targets: &[String],
    tokens: &Tokens,
    seeds: &[Seed],
    tasks: usize,
    per_task: usize,
) -> Vec<Sent> {
    let client = http_client();
    let mut set = JoinSet::new();
    for task in 0..tasks {
        let target = task % targets.len();
        let base = targets[target].clone();
        let (client, tokens, seeds) = (client.clone(), tokens.clone(), seeds.to_vec());
        set.spawn(async move {
            let mut out = Vec::with_capacity(per_task);
            for j in 0..per_task {
                let kind = Kind::of(task, j);
                let answer = request(&client, &base, &tokens, &seeds, kind, task, j)
                    .await
                    .unwrap_or_else(|e| panic!("{kind:?} to {base} got no answer: {e}"));
                out.push(Sent {
                    kind,
                    target,
                    answer,
                });
            }
            out
        });
    }
    let mut all = Vec::with_capacity(tasks * per_task);
    while let Some(r) = set.join_next().await {
        all.extend(r.expect("client task"));
    }
    all
}

/// No 5xx, the expected status for every kind, and a request id on every answer.
#[track_caller]
fn assert_answers(sent: &[Sent]) {
    let describe = |s: &Sent| format!("{:?} -> {} {}", s.kind, s.answer.status, s.answer.text);
    let server_errors: Vec<String> = sent
        .iter()
        .filter(|s| s.answer.status >= 500)
        .map(describe)
        .collect();
    assert!(
        server_errors.is_empty(),
        "{} of {} requests answered 5xx, e.g. {:?}",
        server_errors.len(),
        sent.len(),
        &server_errors[..server_errors.len().min(5)]
    );
    let wrong: Vec<String> = sent
        .iter()
        .filter(|s| s.answer.status != s.kind.expected())
        .map(describe)
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} requests got an unexpected status, e.g. {:?}",
        wrong.len(),
        sent.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert!(
        sent.iter().all(|s| !s.answer.request_id.is_empty()),
        "every answer carries x-request-id"
    );
}

// --- the audit log, read directly --------------------------------------------

/// `(COUNT(*), MIN(seq), MAX(seq))` of the audit log.
async fn audit_shape(db: &Db) -> (i64, Option<i64>, Option<i64>) {
    arkku::on_db!(db, pool => sqlx::query_as::<_, (i64, Option<i64>, Option<i64>)>(
        "SELECT COUNT(*), MIN(seq), MAX(seq) FROM audit_log",
    )
    .fetch_one(pool)
    .await)
    .expect("audit shape")
}

/// Every request id in the audit log, in seq order.
async fn audit_request_ids(db: &Db) -> Vec<String> {
    arkku::on_db!(db, pool => sqlx::query_scalar::<_, String>(
        "SELECT request_id FROM audit_log ORDER BY seq",
    )
    .fetch_all(pool)
    .await)
    .expect("audit request ids")
}

/// Every customer id in the customers table.
async fn customer_ids(db: &Db) -> BTreeSet<Uuid> {
    arkku::on_db!(db, pool => sqlx::query_scalar::<_, Uuid>("SELECT id FROM customers")
        .fetch_all(pool)
        .await)
    .expect("customer ids")
    .into_iter()
    .collect()
}

/// The log holds seqs exactly `1..=n` for the `n` requests in `sent_ids`, and
/// exactly one entry per request id: nothing lost, doubled, or invented.
async fn assert_one_entry_per_request_in_one_order(db: &Db, sent_ids: &[String]) {
    let n = sent_ids.len() as i64;
    let (count, min, max) = audit_shape(db).await;
    assert_eq!(
        (count, min, max),
        (n, Some(1), Some(n)),
        "(COUNT, MIN(seq), MAX(seq)) of the audit log after {n} requests: seqs must be exactly 1..={n}"
    );
    let logged = audit_request_ids(db).await;
    let logged_set: BTreeSet<&str> = logged.iter().map(String::as_str).collect();
    let sent_set: BTreeSet<&str> = sent_ids.iter().map(String::as_str).collect();
    assert_eq!(sent_set.len(), sent_ids.len(), "request ids are unique");
    assert_eq!(
        logged_set.len(),
        logged.len(),
        "no request is audited twice"
    );
    let missing: Vec<&&str> = sent_set.difference(&logged_set).collect();
    let unknown: Vec<&&str> = logged_set.difference(&sent_set).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "audit request ids differ from the x-request-id headers: {} not audited (e.g. {:?}), \
         {} audited but never answered (e.g. {:?})",
        missing.len(),
        &missing[..missing.len().min(3)],
        unknown.len(),
        &unknown[..unknown.len().min(3)]
    );
}

/// Asserts a verification report says ok for `n` entries.
#[track_caller]
fn assert_verified(report: &Value, n: i64) {
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["entries_checked"], n, "{report}");
    assert_eq!(report["head_seq"], n, "{report}");
    assert_eq!(report["first_bad_seq"], Value::Null, "{report}");
}

// --- 1. one order under concurrency -----------------------------------------

async fn concurrent_requests_get_exactly_one_audit_entry_each_in_one_gap_free_verified_order(
    b: Backend,
) {
    let app = spawn_app_with(b, no_rate_limits).await;
    let tokens = Tokens::signed_with(&app.issuer_key());
    let (seeds, mut ids) = seed(&http_client(), &app.address, &tokens, 4).await;

    let sent = drive(std::slice::from_ref(&app.address), &tokens, &seeds, 16, 25).await;
    assert_eq!(sent.len(), 16 * 25);
    assert_answers(&sent);
    ids.extend(sent.iter().map(|s| s.answer.request_id.clone()));
    assert_one_entry_per_request_in_one_order(app.db(), &ids).await;

    let v = send(
        &http_client(),
        Method::GET,
        format!("{}/v1/audit/verify", app.address),
        Some(&tokens.compliance),
        None,
    )
    .await
    .expect("verify");
    assert_eq!(v.status, 200, "{}", v.text);
    assert_verified(&v.json, ids.len() as i64);
}

// --- 2. two processes, one database -----------------------------------------

async fn two_serve_processes_on_one_database_keep_one_gap_free_verified_audit_chain(b: Backend) {
    let env = Env::new(b).await;
    // The first creates the keys and the schema; the second finds them.
    let mut first = env.serve_with(&[no_rate_limits_env()]).await;
    let mut second = env.serve_with(&[no_rate_limits_env()]).await;
    let tokens = Tokens::signed_with(&env.issuer_key());
    let (seeds, mut ids) = seed(&http_client(), &first.base, &tokens, 4).await;

    let targets = [first.base.clone(), second.base.clone()];
    let sent = drive(&targets, &tokens, &seeds, 12, 25).await;
    assert_eq!(sent.len(), 12 * 25);
    assert_answers(&sent);
    for t in 0..2 {
        assert_eq!(
            sent.iter().filter(|s| s.target == t).count(),
            6 * 25,
            "each process serves half"
        );
    }
    ids.extend(sent.iter().map(|s| s.answer.request_id.clone()));
    first.proc.assert_running();
    second.proc.assert_running();

    let db = env.db().await;
    assert_one_entry_per_request_in_one_order(&db, &ids).await;
    db.close().await;
    let report = env.verify_ok().await;
    assert_verified(&report, ids.len() as i64);
}

async fn a_consent_change_through_one_process_decides_the_next_read_at_the_other(b: Backend) {
    let env = Env::new(b).await;
    let first = env.serve().await;
    let second = env.serve().await;
    let tokens = Tokens::signed_with(&env.issuer_key());
    let client = http_client();
    let body = json!({"contacts": [
        {"channel": "phone", "value": "040 123 4567"},
        {"channel": "email", "value": "pena@example.com"}
    ]});
    let r = send(
        &client,
        Method::POST,
        format!("{}/v1/customers", first.base),
        Some(&tokens.service),
        Some(&body),
    )
    .await
    .expect("create");
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_owned();
    let consent = |action: &str| {
        let mut c = json!({"purpose": "cross_channel", "channel": "email", "action": action, "method": "spoken"});
        if action == "grant" {
            c["evidence"] = json!({"notice_id": "n", "notice_version": "1"});
        }
        c
    };
    // The phone agent's view at the second process, as each change lands at the first.
    let channels_at_second = || async {
        let r = send(
            &client,
            Method::GET,
            format!("{}/v1/customers/{id}?purpose=support", second.base),
            Some(&tokens.agent),
            None,
        )
        .await
        .expect("read");
        assert_eq!(r.status, 200, "{}", r.text);
        let shown: Vec<String> = r.json["contacts"]
            .as_array()
            .expect("contacts")
            .iter()
            .map(|c| c["channel"].as_str().unwrap_or_default().to_owned())
            .collect();
        (shown, r.json["withheld"].clone())
    };
    for (action, shown, withheld) in [
        ("grant", vec!["phone", "email"], json!([])),
        (
            "withdraw",
            vec!["phone"],
            json!([{"channel": "email", "reason": "consent_withdrawn"}]),
        ),
        ("grant", vec!["phone", "email"], json!([])),
    ] {
        let r = send(
            &client,
            Method::POST,
            format!("{}/v1/customers/{id}/consents", first.base),
            Some(&tokens.compliance),
            Some(&consent(action)),
        )
        .await
        .expect("consent");
        assert_eq!(r.status, 201, "{}", r.text);
        let (got, w) = channels_at_second().await;
        assert_eq!(got, shown, "after {action}");
        assert_eq!(w, withheld, "after {action}");
    }
}

// --- 3. SIGKILL under load -----------------------------------------------------

/// What one client saw before the server died.
#[derive(Default)]
struct Seen {
    /// Request ids of every 2xx or 4xx answer.
    acknowledged: Vec<String>,
    /// Ids of customers whose create answered 201.
    created: Vec<String>,
    server_errors: Vec<String>,
}

async fn after_sigkill_under_load_every_acknowledged_request_and_customer_is_stored_and_the_chain_verifies(
    b: Backend,
) {
    let env = Env::new(b).await;
    let mut server = env.serve().await;
    let tokens = Tokens::signed_with(&env.issuer_key());
    let (seeds, seed_ids) = seed(&http_client(), &server.base, &tokens, 2).await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut set = JoinSet::new();
    for task in 0..8 {
        let (client, base, tokens, seeds) = (
            http_client(),
            server.base.clone(),
            tokens.clone(),
            seeds.clone(),
        );
        let stop = Arc::clone(&stop);
        set.spawn(async move {
            let mut seen = Seen::default();
            for j in 0..5_000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let kind = if j % 2 == 0 { Kind::Create } else { Kind::Read };
                match request(&client, &base, &tokens, &seeds, kind, task, j).await {
                    Ok(a) if a.status < 500 => {
                        if kind == Kind::Create && a.status == 201 {
                            let id = a.json["id"].as_str().expect("id of a 201").to_owned();
                            seen.created.push(id);
                        }
                        seen.acknowledged.push(a.request_id);
                    }
                    Ok(a) => seen
                        .server_errors
                        .push(format!("{kind:?} -> {} {}", a.status, a.text)),
                    // The server is gone: this request was not acknowledged.
                    Err(_) => break,
                }
            }
            seen
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.proc.sigkill();
    stop.store(true, Ordering::Relaxed);
    let mut seen = Seen::default();
    let collect = async {
        while let Some(r) = set.join_next().await {
            let s = r.expect("client task");
            seen.acknowledged.extend(s.acknowledged);
            seen.created.extend(s.created);
            seen.server_errors.extend(s.server_errors);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), collect)
        .await
        .expect("clients stop once the server is gone");
    assert!(
        seen.server_errors.is_empty(),
        "5xx under load: {:?}",
        &seen.server_errors[..seen.server_errors.len().min(5)]
    );
    assert!(
        seen.acknowledged.len() >= 20 && !seen.created.is_empty(),
        "the load ran before the kill: {} acknowledged, {} created",
        seen.acknowledged.len(),
        seen.created.len()
    );

    // Without restarting: everything acknowledged is in the database.
    let db = env.db().await;
    let logged: BTreeSet<String> = audit_request_ids(&db).await.into_iter().collect();
    let lost: Vec<&String> = seed_ids
        .iter()
        .chain(&seen.acknowledged)
        .filter(|id| !logged.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged requests have no audit entry after SIGKILL, e.g. {:?}",
        lost.len(),
        seen.acknowledged.len() + seed_ids.len(),
        &lost[..lost.len().min(3)]
    );
    let stored = customer_ids(&db).await;
    let lost: Vec<&String> = seeds
        .iter()
        .map(|s| &s.id)
        .chain(&seen.created)
        .filter(|id| !stored.contains(&Uuid::parse_str(id).expect("uuid")))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} customers created with 201 are missing after SIGKILL: {:?}",
        lost.len(),
        seen.created.len() + seeds.len(),
        &lost[..lost.len().min(3)]
    );
    let (count, min, max) = audit_shape(&db).await;
    assert_eq!(min, Some(1), "the log starts at seq 1");
    assert_eq!(Some(count), max, "no gap in the seqs after SIGKILL");
    db.close().await;
    let report = env.verify_ok().await;
    assert_verified(&report, count);

    // After a restart the chain continues at the next seq and still verifies.
    let restarted = env.serve().await;
    let a = request(
        &http_client(),
        &restarted.base,
        &tokens,
        &seeds,
        Kind::Read,
        0,
        0,
    )
    .await
    .expect("read after restart");
    assert_eq!(a.status, 200, "{}", a.text);
    let db = env.db().await;
    let ids = audit_request_ids(&db).await;
    db.close().await;
    assert_eq!(ids.len() as i64, count + 1);
    assert_eq!(
        ids.last(),
        Some(&a.request_id),
        "the next entry is seq {}",
        count + 1
    );
    let v = send(
        &http_client(),
        Method::GET,
        format!("{}/v1/audit/verify", restarted.base),
        Some(&tokens.compliance),
        None,
    )
    .await
    .expect("verify");
    assert_eq!(v.status, 200, "{}", v.text);
    assert_verified(&v.json, count + 1);
}

// --- 4. the database going away ------------------------------------------------

const OUTAGE_NAME: &str = "Aino Katkoskinen";
const OUTAGE_PHONE: &str = "040 555 1234";

fn outage_customer() -> Value {
    new_customer(OUTAGE_NAME, OUTAGE_PHONE)
}

/// A 503 (`database_unavailable` or `audit_unavailable`) problem, in time,
/// that holds none of `secrets`.
#[track_caller]
fn assert_fast_503(what: &str, r: &Reply, took: Duration, limit: Duration, secrets: &[&str]) {
    assert!(took < limit, "{what} took {took:?} (limit {limit:?})");
    assert_eq!(r.status.as_u16(), 503, "{what}: {}", r.text);
    assert_eq!(r.content_type, "application/problem+json", "{what}");
    let code = r.json["code"].as_str().unwrap_or("");
    assert!(
        code == "database_unavailable" || code == "audit_unavailable",
        "{what}: {}",
        r.text
    );
    for s in secrets {
        assert!(!r.text.contains(s), "{what} leaks {s:?}: {}", r.text);
    }
    for key in ["id", "display_name", "contacts", "withheld", "matches"] {
        assert!(
            r.json.get(key).is_none(),
            "{what} holds {key:?}: {}",
            r.text
        );
    }
}

async fn timed<F: std::future::Future>(f: F) -> (F::Output, Duration) {
    let start = Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

async fn a_lost_or_locked_database_gives_a_fast_503_without_customer_data(b: Backend) {
    match b {
        Backend::Postgres => lost_postgres(b).await,
        Backend::Sqlite => locked_sqlite(b).await,
    }
}

/// A TCP proxy in front of PostgreSQL that can be cut.
struct Proxy {
    port: u16,
    accept: tokio::task::JoinHandle<()>,
    conns: Arc<Mutex<JoinSet<()>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let conns = Arc::new(Mutex::new(JoinSet::new()));
        let tracked = Arc::clone(&conns);
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tracked.lock().unwrap().spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy {
            port,
            accept,
            conns,
        }
    }

    /// Stops accepting (the port now refuses) and drops every open connection.
    async fn cut(self) {
        self.accept.abort();
        let _ = self.accept.await;
        let mut conns = std::mem::take(&mut *self.conns.lock().unwrap());
        conns.abort_all();
        while conns.join_next().await.is_some() {}
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
fn via_port(url: &str, port: u16) -> String {
    let scheme_end = url.find("://").expect("scheme") + 3;
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let userinfo = match authority.rfind('@') {
        Some(i) => &authority[..=i],
        None => "",
    };
    format!(
        "{}{userinfo}127.0.0.1:{port}{}",
        &url[..scheme_end],
        &rest[authority_end..]
    )
}

async fn lost_postgres(b: Backend) {
    let admin = postgres_url().expect("ARKKU_TEST_POSTGRES_URL");
    let opts = sqlx::postgres::PgConnectOptions::from_str(&admin).expect("PostgreSQL URL");
    let upstream = format!("{}:{}", opts.get_host(), opts.get_port());
    let proxy = Proxy::start(upstream).await;
    let port = proxy.port;
    // spawn_app_with creates the database on the real server first.
    let app = spawn_app_with(b, |c| c.database_url = via_port(&c.database_url, port)).await;
    let agent = app.agent("phone");
    let id = app
        .create_customer_ok(&app.service(), outage_customer())
        .await;
    let r = app.read_customer(&agent, &id, "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["display_name"], OUTAGE_NAME);
    let masked = r.json["contacts"][0]["value"]
        .as_str()
        .expect("masked")
        .to_owned();
    let r = app.lookup(&agent, "phone", OUTAGE_PHONE, "support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let entries_before = app.audit_count().await;

    proxy.cut().await;
    let secrets = [OUTAGE_NAME, "5551234", masked.as_str(), id.as_str()];
    let limit = Duration::from_secs(5);
    let (r, took) = timed(app.read_customer(&agent, &id, "purpose=support")).await;
    assert_fast_503("a profile read", &r, took, limit, &secrets);
    let (r, took) = timed(app.lookup(&agent, "phone", OUTAGE_PHONE, "support")).await;
    assert_fast_503("a lookup", &r, took, limit, &secrets);
    let (r, took) = timed(app.request(Method::GET, "/readyz", None, None)).await;
    assert!(took < limit, "/readyz took {took:?}");
    assert_eq!(r.status.as_u16(), 503, "/readyz: {}", r.text);
    assert_eq!(r.json["database"], "unavailable", "{}", r.text);

    // Behind the proxy the database itself is fine: the log still verifies and
    // holds the entries of the requests answered before the cut.
    let db = Db::connect(&app.database_url)
        .await
        .expect("direct connect");
    let report = arkku::audit::verify::verify(&db, None, None)
        .await
        .expect("verify");
    assert!(report.ok, "{report:?}");
    assert!(
        report.entries_checked as i64 >= entries_before,
        "{report:?}"
    );
    db.close().await;
}

async fn locked_sqlite(b: Backend) {
    // The audit deadline (the default, spelled out) is shorter than the lock,
    // and the lock outlasts the vault's SQLite busy timeout (5 s), so a write
    // that waits for it gives up while it is still held. (A lock shorter than
    // the busy timeout only delays a write: it then commits and is audited.)
    const DEADLINE: Duration = Duration::from_secs(2);
    const HOLD: Duration = Duration::from_secs(6);
    let app = spawn_app_with(b, |c| c.audit_timeout = DEADLINE).await;
    let agent = app.agent("phone");
    let service = app.service();
    let id = app.create_customer_ok(&service, outage_customer()).await;
    let r = app.read_customer(&agent, &id, "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let masked = r.json["contacts"][0]["value"]
        .as_str()
        .expect("masked")
        .to_owned();

    // Another connection, as another process would, takes the write lock and keeps it.
    let mut holder = sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .expect("second connection");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .expect("exclusive lock");
    let release = tokio::spawn(async move {
        tokio::time::sleep(HOLD).await;
        sqlx::query("COMMIT")
            .execute(&mut holder)
            .await
            .expect("release the lock");
        holder.close().await.expect("close");
    });
    let locked_name = "Lukko Odottaja";
    let (read, lookup, create, ready) = tokio::join!(
        timed(app.read_customer(&agent, &id, "purpose=support")),
        timed(app.lookup(&agent, "phone", OUTAGE_PHONE, "support")),
        timed(app.create_customer(&service, new_customer(locked_name, "040 555 9876"))),
        async {
            // By now the read and the lookup have missed their audit deadline.
            tokio::time::sleep(DEADLINE + Duration::from_secs(1)).await;
            app.request(Method::GET, "/readyz", None, None).await
        },
    );
    release.await.expect("lock released");

    // Reads release nothing once their audit entry misses its deadline.
    let secrets = [OUTAGE_NAME, "5551234", masked.as_str(), id.as_str()];
    let limit = DEADLINE + Duration::from_millis(1500);
    assert_fast_503(
        "a profile read under the lock",
        &read.0,
        read.1,
        limit,
        &secrets,
    );
    assert_fast_503(
        "a lookup under the lock",
        &lookup.0,
        lookup.1,
        limit,
        &secrets,
    );
    // The write does not hang: it answers by the audit deadline after the lock is gone.
    let (create, took) = create;
    assert!(
        took < HOLD + DEADLINE,
        "a create under the lock took {took:?}: {}",
        create.text
    );

    // Once the lock is released everything works again and the log verifies.
    let created = app
        .create_customer_ok(&service, new_customer("Lukko Vapaa", "040 555 4321"))
        .await;
    let r = app.read_customer(&agent, &created, "purpose=support").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = app.request(Method::GET, "/readyz", None, None).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "/readyz after the lock: {}",
        r.text
    );
    let compliance = app.compliance();
    let v = app
        .request(Method::GET, "/v1/audit/verify", Some(&compliance), None)
        .await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.text);
    assert_eq!(v.json["ok"], true, "{}", v.text);

    // What the create under the lock answered, and what /readyz said while
    // audit appends were missing their deadline (all problems at once).
    let mut problems = Vec::new();
    match create.status.as_u16() {
        201 => {
            // It waited for the lock, then committed and was audited: it must be there.
            let cid = create.json["id"].as_str().unwrap_or_default();
            let r = app.read_customer(&agent, cid, "purpose=support").await;
            if r.status != StatusCode::OK || r.json["display_name"] != locked_name {
                problems.push(format!(
                    "the create under the lock answered 201 but its customer reads as {} {}",
                    r.status, r.text
                ));
            }
        }
        503 if matches!(
            create.json["code"].as_str(),
            Some("database_unavailable" | "audit_unavailable")
        ) => {}
        _ => problems.push(format!(
            "a create under a write lock held past the busy timeout answered {} after {took:?} \
             (expected 503 database_unavailable or audit_unavailable, or 201 once the lock is gone): {}",
            create.status, create.text
        )),
    }
    if ready.status != StatusCode::SERVICE_UNAVAILABLE || ready.json["audit"] == "ok" {
        problems.push(format!(
            "/readyz answered {} {} while audit appends were missing their deadline \
             (reads and lookups answered 503 audit_unavailable)",
            ready.status, ready.text
        ));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

// --- 5. durability settings ----------------------------------------------------

async fn the_database_runs_with_durable_settings_and_a_restarted_serve_logs_no_warnings(
    b: Backend,
) {
    let app = spawn_app(b).await;
    match app.db() {
        Db::Sqlite(pool, _) => {
            let mut plain = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .expect("plain connection");
            let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                .fetch_one(&mut plain)
                .await
                .expect("journal_mode");
            assert_eq!(mode.to_ascii_lowercase(), "wal", "the file is in WAL mode");
            plain.close().await.expect("close");
            // Every connection the vault's pool holds at once: WAL and synchronous=FULL.
            let mut conns = Vec::new();
            for _ in 0..pool.options().get_max_connections() {
                conns.push(pool.acquire().await.expect("acquire"));
            }
            for c in conns.iter_mut() {
                let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
                    .fetch_one(&mut **c)
                    .await
                    .expect("journal_mode");
                let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
                    .fetch_one(&mut **c)
                    .await
                    .expect("synchronous");
                assert_eq!(mode.to_ascii_lowercase(), "wal");
                assert_eq!(sync, 2, "synchronous=FULL on every pool connection");
            }
        }
        Db::Postgres(pool) => {
            // Through the vault's own pool, so a per-session override would show.
            for setting in ["synchronous_commit", "fsync"] {
                let v: String = sqlx::query_scalar(&format!("SHOW {setting}"))
                    .fetch_one(pool)
                    .await
                    .expect(setting);
                assert_eq!(
                    v, "on",
                    "PostgreSQL {setting} must be on for a durable audit log"
                );
            }
        }
    }
    drop(app);

    // The real binary: the first start generates keys and warns about that
    // only; a restart with the same keys and database warns about nothing.
    let env = Env::new(b).await;
    let mut first = env.serve().await;
    first.proc.sigkill();
    let log = first.proc.stderr();
    for line in log.lines() {
        assert!(!line.contains("ERROR"), "first start: {log}");
        if line.contains("WARN") {
            assert!(line.contains("GENERATED A NEW"), "first start: {log}");
        }
    }
    let mut server = env.serve().await;
    let tokens = Tokens::signed_with(&env.issuer_key());
    let (seeds, _) = seed(&http_client(), &server.base, &tokens, 1).await;
    for kind in [
        Kind::Read,
        Kind::Lookup,
        Kind::LookupMiss,
        Kind::ReadWithoutToken,
    ] {
        let a = request(&http_client(), &server.base, &tokens, &seeds, kind, 0, 0)
            .await
            .expect("request");
        assert_eq!(a.status, kind.expected(), "{kind:?}: {}", a.text);
    }
    server.proc.assert_running();
    let log = server.proc.stderr();
    assert!(log.contains("arkku listening"), "{log}");
    assert!(
        !log.contains("WARN") && !log.contains("ERROR"),
        "a restarted serve logs no warning or error: {log}"
    );
}
