//! A fleet: three `arkku serve` processes on one PostgreSQL database, sharing
//! `root.key`, `issuer.key` and `audit.key`, under mixed load from clients
//! spread over the nodes (creates, profile reads, consent changes), with one
//! node killed with SIGKILL midway and started again on its address.
//!
//! Afterwards: every acknowledged (2xx) write reads back through another
//! node, the audit log is one gap-free order (seqs exactly 1..N: the primary
//! key on `seq` is what orders appends across processes, see
//! `store/audit/append.rs`), every acknowledged request has its entry, and
//! `arkku audit verify` exits 0.
//!
//! PostgreSQL only (main.rs registers it so): several processes on one
//! SQLite file are one host's concern, tested in `durability`.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use arkku::{domain::Role, store::Db};
use reqwest::{Client, Method};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::helpers::{
    free_port, http_client, issue_token, no_rate_limits_env, Backend, Env, Proc, Reply, Scenario,
    Tok, START_LIMIT,
};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        three_nodes_under_mixed_load_with_one_killed_and_restarted_lose_no_acknowledged_write_and_keep_one_verified_audit_order,
    ]
}

const NODES: usize = 3;
/// Client tasks; task `t` talks to node `t % NODES`.
const CLIENTS: usize = 9;
/// Seeded customers; task `t` changes the consents of those with `i % CLIENTS == t`.
const SEEDS: usize = 27;

#[derive(Clone)]
struct Tokens {
    service: String,
    agent: String,
    compliance: String,
}

impl Tokens {
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
        Tokens {
            service: tok(Role::Service, "crm-sync", &["support"], None),
            agent: tok(Role::Agent, "agent-fleet", &["support"], Some("phone")),
            compliance: tok(Role::Compliance, "auditor", &["dsr"], None),
        }
    }
}

/// Starts `arkku serve` on `listen` and waits until it answers.
async fn start_node(env: &Env, listen: &str) -> Proc {
    let mut proc = env.spawn(
        &["serve"],
        &[("ARKKU_LISTEN", listen), no_rate_limits_env()],
    );
    proc.wait_healthy(&format!("http://{listen}"), START_LIMIT)
        .await;
    proc
}

async fn call(
    client: &Client,
    method: Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> reqwest::Result<Reply> {
    let mut rb = client.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    Reply::try_read(rb.send().await?).await
}

fn consent(action: &str) -> Value {
    let mut c = json!({"purpose": "cross_channel", "channel": "email", "action": action, "method": "spoken"});
    if action == "grant" {
        c["evidence"] = json!({"notice_id": "privacy-notice", "notice_version": "3"});
    }
    c
}

/// What one client saw.
#[derive(Default)]
struct Seen {
    /// Request ids of every 2xx.
    acknowledged: Vec<String>,
    /// (customer id, display name, node that created it) of every 201 create.
    created: Vec<(String, String, usize)>,
    /// (customer id, consent id) of every 201 consent change.
    consents: Vec<(String, String)>,
    reads: usize,
    /// Acknowledged at the killed node after its restart.
    after_restart: usize,
    /// Requests that got no answer (the node was down).
    unanswered: usize,
    unexpected: Vec<String>,
}

async fn three_nodes_under_mixed_load_with_one_killed_and_restarted_lose_no_acknowledged_write_and_keep_one_verified_audit_order(
    b: Backend,
) {
    assert_eq!(b, Backend::Postgres, "registered for PostgreSQL only");
    let env = Env::new(b).await;
    let listens: Vec<String> = (0..NODES)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let bases: Vec<String> = listens.iter().map(|l| format!("http://{l}")).collect();
    // The first node creates the keys and the schema; the others find them.
    let mut nodes = Vec::new();
    for listen in &listens {
        nodes.push(start_node(&env, listen).await);
    }
    let tokens = Tokens::of(&env);
    let client = http_client();

    let mut seeds = Vec::new();
    for i in 0..SEEDS {
        let body = json!({"display_name": format!("Seed {i}"), "contacts": [
            {"channel": "phone", "value": format!("040 700 {i:04}")},
            {"channel": "email", "value": format!("seed{i}@example.com")}
        ]});
        let r = call(
            &client,
            Method::POST,
            format!("{}/v1/customers", bases[i % NODES]),
            &tokens.service,
            Some(body),
        )
        .await
        .expect("seed");
        assert_eq!(r.status.as_u16(), 201, "{}", r.text);
        seeds.push(r.json["id"].as_str().expect("id").to_owned());
    }

    let stop = Arc::new(AtomicBool::new(false));
    let restarted = Arc::new(AtomicBool::new(false));
    let mut set = JoinSet::new();
    for t in 0..CLIENTS {
        let node = t % NODES;
        let base = bases[node].clone();
        let (client, tokens, seeds) = (http_client(), tokens.clone(), seeds.clone());
        let (stop, restarted) = (Arc::clone(&stop), Arc::clone(&restarted));
        set.spawn(async move {
            let mut seen = Seen::default();
            let mine: Vec<&String> = seeds
                .iter()
                .enumerate()
                .filter(|(i, _)| i % CLIENTS == t)
                .map(|(_, s)| s)
                .collect();
            for j in 0..100_000usize {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (what, answer, expected) = match j % 4 {
                    0 => {
                        let name = format!("Fleet {t}-{j}");
                        let body = json!({"display_name": name, "contacts": [
                            {"channel": "phone", "value": format!("041 {t}{:06}", j)}
                        ]});
                        let url = format!("{base}/v1/customers");
                        let r = call(&client, Method::POST, url, &tokens.service, Some(body));
                        ("create", r.await, 201)
                    }
                    1 | 2 => {
                        let id = &seeds[(t * 7 + j) % seeds.len()];
                        let url = format!("{base}/v1/customers/{id}?purpose=support");
                        (
                            "read",
                            call(&client, Method::GET, url, &tokens.agent, None).await,
                            200,
                        )
                    }
                    _ => {
                        let id = mine[(j / 4) % mine.len()];
                        let action = if (j / 4 / mine.len()).is_multiple_of(2) {
                            "grant"
                        } else {
                            "withdraw"
                        };
                        let url = format!("{base}/v1/customers/{id}/consents");
                        let r = call(
                            &client,
                            Method::POST,
                            url,
                            &tokens.compliance,
                            Some(consent(action)),
                        );
                        ("consent", r.await, 201)
                    }
                };
                let r = match answer {
                    Ok(r) => r,
                    Err(_) => {
                        // The node is down: not acknowledged; try again shortly.
                        seen.unanswered += 1;
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if r.status.as_u16() != expected {
                    seen.unexpected
                        .push(format!("{what} at node {node} -> {} {}", r.status, r.text));
                    continue;
                }
                let request_id = r.header("x-request-id").unwrap_or("").to_owned();
                seen.acknowledged.push(request_id);
                if node == NODES - 1 && restarted.load(Ordering::Relaxed) {
                    seen.after_restart += 1;
                }
                match what {
                    "create" => seen.created.push((
                        r.json["id"].as_str().unwrap_or("").to_owned(),
                        r.json["display_name"].as_str().unwrap_or("").to_owned(),
                        node,
                    )),
                    "consent" => seen.consents.push((
                        r.json["customer_id"].as_str().unwrap_or("").to_owned(),
                        r.json["consent_id"].as_str().unwrap_or("").to_owned(),
                    )),
                    _ => seen.reads += 1,
                }
            }
            seen
        });
    }

    // Midway: kill the last node, then start it again on its address.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    nodes[NODES - 1].sigkill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    nodes[NODES - 1] = start_node(&env, &listens[NODES - 1]).await;
    restarted.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    stop.store(true, Ordering::Relaxed);

    let mut seen = Seen::default();
    let collect = async {
        while let Some(r) = set.join_next().await {
            let s = r.expect("client task");
            seen.acknowledged.extend(s.acknowledged);
            seen.created.extend(s.created);
            seen.consents.extend(s.consents);
            seen.reads += s.reads;
            seen.after_restart += s.after_restart;
            seen.unanswered += s.unanswered;
            seen.unexpected.extend(s.unexpected);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), collect)
        .await
        .expect("the clients stop");
    for n in nodes.iter_mut() {
        n.assert_running();
    }
    assert!(
        seen.unexpected.is_empty(),
        "{} unexpected answers, e.g. {:?}",
        seen.unexpected.len(),
        &seen.unexpected[..seen.unexpected.len().min(5)]
    );
    assert!(
        seen.created.len() >= 20 && seen.consents.len() >= 20 && seen.reads >= 40,
        "the load ran: {} creates, {} consent changes, {} reads",
        seen.created.len(),
        seen.consents.len(),
        seen.reads
    );
    assert!(
        seen.after_restart > 0,
        "the restarted node served again ({} requests unanswered while it was down)",
        seen.unanswered
    );
    println!(
        "fleet: {} acknowledged ({} creates, {} consent changes, {} reads), {} unanswered while a node was down, {} at the restarted node",
        seen.acknowledged.len(),
        seen.created.len(),
        seen.consents.len(),
        seen.reads,
        seen.unanswered,
        seen.after_restart
    );

    // Every acknowledged create reads back through another node.
    let created = Arc::new(seen.created);
    let mut reads = JoinSet::new();
    for part in 0..6 {
        let (client, tokens, bases, created) = (
            client.clone(),
            tokens.clone(),
            bases.clone(),
            Arc::clone(&created),
        );
        reads.spawn(async move {
            let mut missing = Vec::new();
            for (id, name, node) in created.iter().skip(part).step_by(6) {
                let other = &bases[(node + 1) % NODES];
                let url = format!("{other}/v1/customers/{id}?purpose=support");
                let r = call(&client, Method::GET, url, &tokens.agent, None)
                    .await
                    .expect("read back");
                if r.status.as_u16() != 200 || r.json["display_name"] != *name.as_str() {
                    missing.push(format!("{id} -> {} {}", r.status, r.text));
                }
            }
            missing
        });
    }
    let mut missing = Vec::new();
    while let Some(r) = reads.join_next().await {
        missing.extend(r.expect("read-back task"));
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged creates do not read back, e.g. {:?}",
        missing.len(),
        created.len(),
        &missing[..missing.len().min(3)]
    );

    // Every acknowledged consent change is in its customer's ledger.
    let mut by_customer: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (customer, consent_id) in &seen.consents {
        by_customer.entry(customer).or_default().insert(consent_id);
    }
    for (i, (customer, ids)) in by_customer.iter().enumerate() {
        let url = format!("{}/v1/customers/{customer}/consents", bases[i % NODES]);
        let r = call(&client, Method::GET, url, &tokens.compliance, None)
            .await
            .expect("ledger");
        assert_eq!(r.status.as_u16(), 200, "{}", r.text);
        let history: BTreeSet<&str> = r.json["history"]
            .as_array()
            .expect("history")
            .iter()
            .filter_map(|e| e["consent_id"].as_str())
            .collect();
        let lost: Vec<&&str> = ids.difference(&history).collect();
        assert!(
            lost.is_empty(),
            "consent changes of {customer} lost: {lost:?}"
        );
    }

    // One gap-free audit order holding every acknowledged request.
    let db = env.db().await;
    let (count, min, max, distinct) = audit_shape(&db).await;
    assert_eq!(min, Some(1), "the log starts at seq 1");
    assert_eq!(Some(count), max, "seqs 1..N without a gap");
    assert_eq!(count, distinct, "no seq twice");
    let logged = audit_request_ids(&db).await;
    db.close().await;
    let unique: BTreeSet<&str> = logged.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), logged.len(), "no request is audited twice");
    let lost: Vec<&String> = seen
        .acknowledged
        .iter()
        .filter(|id| !unique.contains(id.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged requests have no audit entry, e.g. {:?}",
        lost.len(),
        seen.acknowledged.len(),
        &lost[..lost.len().min(3)]
    );
    let report = env.verify_ok().await;
    assert_eq!(report["entries_checked"], count, "{report}");
    assert_eq!(report["head_seq"], count, "{report}");
}

/// `(COUNT(*), MIN(seq), MAX(seq), COUNT(DISTINCT seq))` of the audit log.
async fn audit_shape(db: &Db) -> (i64, Option<i64>, Option<i64>, i64) {
    arkku::on_db!(db, pool => sqlx::query_as::<_, (i64, Option<i64>, Option<i64>, i64)>(
        "SELECT COUNT(*), MIN(seq), MAX(seq), COUNT(DISTINCT seq) FROM audit_log",
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
