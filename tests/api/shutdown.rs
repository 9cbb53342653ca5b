//! Graceful shutdown of the real `arkku serve` (README "Running several
//! nodes"): on SIGTERM it stops accepting, answers the requests in progress
//! and commits their audit entries, then exits 0 — within
//! `ARKKU_SHUTDOWN_TIMEOUT`, even when a client never finishes its request.
//!
//! A request is held in progress by sending its head and half its body, so
//! SIGTERM lands while it is certainly inside the server; the rest of the
//! body follows after the signal.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use arkku::domain::Role;
use arkku::store::Db;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use uuid::Uuid;

use crate::helpers::{issue_token, no_rate_limits_env, Backend, Env, Scenario, Server, Tok};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        on_sigterm_requests_in_progress_finish_with_2xx_their_audit_is_durable_new_connections_are_refused_and_serve_exits_0,
        a_request_that_never_finishes_does_not_hold_a_stopping_serve_past_its_shutdown_deadline,
    ]
}

/// A `POST /v1/customers` written up to half its body.
struct HalfSent {
    stream: TcpStream,
    rest: Vec<u8>,
}

/// The token of an integration that creates customers.
fn service_token(env: &Env) -> String {
    issue_token(
        &env.issuer_key(),
        Tok {
            role: Role::Service,
            sub: "crm-sync",
            purposes: &["support"],
            channel: None,
        },
    )
}

fn address(server: &Server) -> &str {
    server.base.trim_start_matches("http://")
}

/// Opens a connection and sends the head and half the body of a create.
async fn half_send(server: &Server, token: &str, name: &str, phone: &str) -> HalfSent {
    let body = json!({
        "display_name": name,
        "contacts": [{"channel": "phone", "value": phone}]
    })
    .to_string()
    .into_bytes();
    let head = format!(
        "POST /v1/customers HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        address(server),
        body.len()
    );
    let mut stream = TcpStream::connect(address(server)).await.expect("connect");
    // One whole request first: the server has accepted this connection and
    // serves it, so the create below is on a live connection, not in the
    // listen backlog when SIGTERM closes the listener.
    let ping = format!("GET /healthz HTTP/1.1\r\nhost: {}\r\n\r\n", address(server));
    stream.write_all(ping.as_bytes()).await.expect("ping");
    read_one_answer(&mut stream).await;
    stream.write_all(head.as_bytes()).await.expect("head");
    let half = body.len() / 2;
    stream.write_all(&body[..half]).await.expect("half body");
    stream.flush().await.expect("flush");
    HalfSent {
        stream,
        rest: body[half..].to_vec(),
    }
}

/// Reads one answer with a `content-length` body off a kept-alive connection.
async fn read_one_answer(stream: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.expect("read head");
        assert_eq!(n, 1, "the connection closed before the answer's head ended");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await.expect("read body");
}

/// A raw HTTP/1.1 answer: status, `x-request-id`, body as JSON.
struct RawAnswer {
    status: u16,
    request_id: String,
    json: Value,
    text: String,
}

/// Sends the rest of the body and reads the answer (the server closes the
/// connection after it, as it is shutting down).
async fn finish(mut h: HalfSent) -> RawAnswer {
    h.stream.write_all(&h.rest).await.expect("rest of body");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), h.stream.read_to_end(&mut buf))
        .await
        .expect("the answer comes before the deadline")
        .expect("read answer");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let request_id = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-request-id")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    RawAnswer {
        status,
        request_id,
        json: serde_json::from_str(body).unwrap_or(Value::Null),
        text,
    }
}

async fn on_sigterm_requests_in_progress_finish_with_2xx_their_audit_is_durable_new_connections_are_refused_and_serve_exits_0(
    b: Backend,
) {
    let env = Env::new(b).await;
    let mut server = env
        .serve_with(&[no_rate_limits_env(), ("ARKKU_SHUTDOWN_TIMEOUT", "10s")])
        .await;
    let token = service_token(&env);
    let mut held = Vec::new();
    for k in 0..4 {
        let phone = format!("040 900 10{k:02}");
        held.push(half_send(&server, &token, &format!("Drain {k}"), &phone).await);
    }
    // Let the server read the heads: these requests are now in progress.
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.proc.sigterm();
    let signalled = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = TcpStream::connect(address(&server)).await;
    assert!(
        refused.is_err(),
        "a new connection after SIGTERM is refused (the listener is closed)"
    );
    server.proc.assert_running();

    let mut answers = Vec::new();
    for h in held {
        answers.push(finish(h).await);
    }
    let status = server.proc.wait_exit(Duration::from_secs(10)).await;
    let took = signalled.elapsed();
    assert!(status.success(), "serve exits 0 after SIGTERM: {status}");
    assert!(took < Duration::from_secs(10), "exited after {took:?}");
    for a in &answers {
        assert_eq!(
            a.status, 201,
            "a request in progress at SIGTERM: {}",
            a.text
        );
        assert!(!a.request_id.is_empty(), "{}", a.text);
    }
    let log = server.proc.stderr();
    assert!(log.contains("stopped accepting"), "{log}");
    assert!(log.contains("every connection drained"), "{log}");
    assert!(
        log.contains("every audit entry settled"),
        "the shutdown says what it drained: {log}"
    );

    // The server is gone: what it acknowledged is in the database.
    let db = env.db().await;
    let stored = customer_ids(&db).await;
    let logged = allowed_creates(&db).await;
    for a in &answers {
        let id = a.json["id"].as_str().expect("id of a 201");
        let id = Uuid::parse_str(id).expect("uuid");
        assert!(stored.contains(&id), "customer {id} is stored");
        assert!(
            logged.contains(&a.request_id),
            "the audit entry of {} is durable",
            a.request_id
        );
    }
    assert_eq!(
        stored.len(),
        4,
        "exactly the creates in progress at SIGTERM"
    );
    db.close().await;
    env.verify_ok().await;
}

async fn a_request_that_never_finishes_does_not_hold_a_stopping_serve_past_its_shutdown_deadline(
    b: Backend,
) {
    let env = Env::new(b).await;
    let mut server = env.serve_with(&[("ARKKU_SHUTDOWN_TIMEOUT", "1s")]).await;
    let token = service_token(&env);
    let stuck = half_send(&server, &token, "Never Finished", "040 900 2000").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.proc.sigterm();
    let signalled = Instant::now();
    let status = server.proc.wait_exit(Duration::from_secs(8)).await;
    let took = signalled.elapsed();
    assert!(status.success(), "serve exits 0 at the deadline: {status}");
    assert!(
        took >= Duration::from_millis(900),
        "it waited for the request in progress first ({took:?})"
    );
    let log = server.proc.stderr();
    assert!(log.contains("shutdown deadline passed"), "{log}");
    assert!(log.contains("shut down at the deadline"), "{log}");
    drop(stuck);

    let db = env.db().await;
    assert!(
        customer_ids(&db).await.is_empty() && allowed_creates(&db).await.is_empty(),
        "the unanswered create changed nothing"
    );
    db.close().await;
    env.verify_ok().await;
}

async fn customer_ids(db: &Db) -> BTreeSet<Uuid> {
    arkku::on_db!(db, pool => sqlx::query_scalar::<_, Uuid>("SELECT id FROM customers")
        .fetch_all(pool)
        .await)
    .expect("customer ids")
    .into_iter()
    .collect()
}

/// Request ids of the allowed `customer.create` entries.
async fn allowed_creates(db: &Db) -> BTreeSet<String> {
    arkku::on_db!(db, pool => sqlx::query_scalar::<_, String>(
        "SELECT request_id FROM audit_log WHERE action = 'customer.create' AND decision = 'allow'",
    )
    .fetch_all(pool)
    .await)
    .expect("audit request ids")
    .into_iter()
    .collect()
}
