//! The connection edge of `arkku serve`: one client holding many idle, slow
//! or half-sent connections must not take the server away from others.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use arkku::domain::Role;
use reqwest::{Client, StatusCode};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::helpers::{issue_token, spawn_app, Backend, Env, Scenario, Tok};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        one_client_holding_connections_past_the_caps_does_not_keep_others_out,
        a_client_expecting_100_continue_gets_continue_and_then_the_real_answer,
    ]
}

const PER_PEER: usize = 40;
const GLOBAL: usize = 60;

/// Opens a TCP connection to `server` from the loopback address `src`.
async fn connect_from(src: [u8; 4], server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((src, 0)))
        .expect("bind source");
    socket.connect(server).await.expect("connect")
}

/// What the server did with a connection within `wait`: closed it (EOF or
/// reset, with whatever it said first) or kept it open.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let deadline = Instant::now() + wait;
    loop {
        let mut buf = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// [`closed_within`] for many connections at once (one after the other would
/// let the idle timeout run out meanwhile).
async fn sort_out(streams: Vec<TcpStream>, wait: Duration) -> Vec<(TcpStream, Option<String>)> {
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let said = closed_within(&mut s, wait).await;
                (s, said)
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// GET `url` from 127.0.0.1; asserts 200 within one second.
async fn answers_within_a_second(client: &Client, url: &str, token: Option<&str>) {
    let start = Instant::now();
    let mut rb = client.get(url);
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url} did not answer: {e}"));
    assert_eq!(r.status(), StatusCode::OK, "{url}");
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{url} took {:?}",
        start.elapsed()
    );
}

async fn one_client_holding_connections_past_the_caps_does_not_keep_others_out(b: Backend) {
    // Arrange: small caps and timeouts, a customer to read.
    let env = Env::new(b).await;
    let per_peer = PER_PEER.to_string();
    let global = GLOBAL.to_string();
    let server = env
        .serve_with(&[
            ("ARKKU_MAX_CONNECTIONS", &global),
            ("ARKKU_MAX_CONNECTIONS_PER_PEER", &per_peer),
            // Long enough that no slow connection of act 1 times out while
            // acts 1 and 2 count the budget, even on two busy cores.
            ("ARKKU_IDLE_TIMEOUT", "12s"),
            ("ARKKU_HEADER_READ_TIMEOUT", "4s"),
            ("ARKKU_BODY_READ_TIMEOUT", "4s"),
        ])
        .await;
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let agent = issue_token(
        &env.issuer_key(),
        Tok {
            role: Role::Agent,
            sub: "agent-1",
            purposes: &["support"],
            channel: Some("phone"),
        },
    );
    // No kept-alive connections of its own, so the budget arithmetic below is exact.
    let client = Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let created = client
        .post(format!("{}/v1/customers", server.base))
        .bearer_auth(&agent)
        .json(&json!({"contacts": [{"channel": "phone", "value": "+358401234567"}]}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let profile = format!("{}/v1/customers/{id}?purpose=support", server.base);
    let healthz = format!("{}/healthz", server.base);

    // Act 1: the attacker (127.0.0.2) opens slow-header, slow-body and idle
    // connections, far past its per-peer cap.
    let attacker = [127, 0, 0, 2];
    let attack_began = Instant::now();
    let mut slow_header = Vec::new();
    for _ in 0..10 {
        let mut s = connect_from(attacker, addr).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: ")
            .await
            .unwrap();
        slow_header.push(s);
    }
    let mut slow_body = Vec::new();
    for _ in 0..10 {
        let mut s = connect_from(attacker, addr).await;
        let head = format!(
            "POST /v1/customers HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {agent}\r\n\
             content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"contacts\":"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        slow_body.push(s);
    }
    let mut idle = Vec::new();
    for _ in 0..(3 * PER_PEER) {
        idle.push(connect_from(attacker, addr).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Assert 1: past its cap the attacker's connections were refused at
    // once (a 503 or a plain close), the rest are held ...
    let mut held = Vec::new();
    let mut refused = 0;
    for (s, said) in sort_out(idle, Duration::from_millis(200)).await {
        match said {
            Some(said) => {
                assert!(
                    said.is_empty() || said.starts_with("HTTP/1.1 503"),
                    "a refusal says 503 or nothing: {said:?}"
                );
                refused += 1;
            }
            None => held.push(s),
        }
    }
    assert_eq!(
        held.len() + slow_header.len() + slow_body.len(),
        PER_PEER,
        "the attacker holds exactly its per-peer cap"
    );
    assert_eq!(refused, 3 * PER_PEER - held.len());
    // ... and everyone else is still served, quickly, an audited read included.
    answers_within_a_second(&client, &healthz, None).await;
    answers_within_a_second(&client, &profile, Some(&agent)).await;

    // Act 2: a second address fills what is left of the global budget and more.
    let mut second = Vec::new();
    for _ in 0..PER_PEER {
        second.push(connect_from([127, 0, 0, 3], addr).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Assert 2: beyond the global cap a new connection is refused at once.
    // The server notices a connection the test's client closed a moment
    // after it closed, so one or two slots may still come free now and take
    // a late connection each; a refusal must follow within a few tries.
    let mut late_held = Vec::new();
    let mut refusal = None;
    for _ in 0..4 {
        let start = Instant::now();
        let mut late = connect_from([127, 0, 0, 4], addr).await;
        match closed_within(&mut late, Duration::from_secs(1)).await {
            Some(said) => {
                refusal = Some((said, start.elapsed()));
                break;
            }
            None => late_held.push(late),
        }
    }
    let (said, took) = refusal.expect("a connection past the global cap is closed at once");
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 503"),
        "{said:?}"
    );
    assert!(took < Duration::from_secs(1), "refused after {took:?}");
    assert!(
        late_held.len() <= 2,
        "{} connections past the global cap were held",
        late_held.len()
    );
    let mut second_held = Vec::new();
    for (s, said) in sort_out(second, Duration::from_millis(200)).await {
        if said.is_none() {
            second_held.push(s);
        }
    }
    assert_eq!(
        second_held.len() + late_held.len(),
        GLOBAL - PER_PEER,
        "the global budget is full"
    );
    drop(late_held);

    // Assert 3: slow-header and slow-body connections are closed after their
    // 4 s timeouts, well before the 12 s idle timeout (allowing for two busy
    // cores); the late body is 408. Then the idle ones are closed too.
    let early = Duration::from_millis(8500).saturating_sub(attack_began.elapsed());
    for (_, said) in sort_out(slow_header, early).await {
        assert!(
            said.is_some(),
            "a slow-header connection is closed by the header timeout"
        );
    }
    for (_, said) in sort_out(slow_body, early).await {
        let said = said.expect("a slow-body connection is closed");
        assert!(said.starts_with("HTTP/1.1 408"), "{said:?}");
        assert!(said.contains("application/problem+json"), "{said:?}");
        assert!(said.contains("\"code\":\"request_timeout\""), "{said:?}");
    }
    let limit = Duration::from_secs(18);
    for (_, said) in sort_out(held, limit).await {
        assert!(said.is_some(), "an idle connection is closed");
    }
    for (_, said) in sort_out(second_held, limit).await {
        assert!(
            said.is_some(),
            "the second address's connections are closed"
        );
    }

    // Assert 4: with the budget free again the attacker's address is served too.
    answers_within_a_second(&client, &healthz, None).await;
    let mut again = connect_from(attacker, addr).await;
    again
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let said = closed_within(&mut again, Duration::from_secs(2))
        .await
        .expect("answered and closed");
    assert!(said.starts_with("HTTP/1.1 200"), "{said:?}");
}

async fn a_client_expecting_100_continue_gets_continue_and_then_the_real_answer(b: Backend) {
    let app = spawn_app(b).await;
    let addr: SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let body = r#"{"contacts": [{"channel": "phone", "value": "+358401234567"}]}"#;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/customers HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\
         connection: close\r\n\r\n",
        app.agent("phone"),
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("100 Continue in time")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 100"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );

    s.write_all(body.as_bytes()).await.unwrap();
    let said = closed_within(&mut s, Duration::from_secs(10))
        .await
        .expect("answered and closed");

    assert!(said.starts_with("HTTP/1.1 201"), "{said:?}");
    assert_eq!(app.count("customers").await, 1);
}
