//! The `token_burst` scenario: what guessing client secrets costs everyone
//! else. A parallel reader reads profiles alone, then again while a burst of
//! wrong secrets for one registered client hits `POST /oauth/token` (the
//! credential-stuffing row of SECURITY.md), a few rounds over; the two p99s
//! are the figure. The reader runs for exactly as long as the burst is being
//! answered, so its p99 is of the reads the burst could delay.
//! Also measured here: the token endpoint's rate for a known client with its
//! right secret, and what one argon2id verification costs on this machine.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use base64::{engine::general_purpose::STANDARD, Engine};
use http_body_util::BodyExt;
use hyper::{body::Bytes, Method};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::load::{self, Call, MakeCall, Outcome, Stop};

/// Wrong secrets in a burst.
pub const BURST: usize = 1000;
/// Seconds the reader runs alone right before each burst.
pub const ALONE_SECONDS: f64 = 3.0;
/// The wait between rounds: long enough for the peer's attempt budget (which
/// the burst empties) to hold a fresh client's budget again, with the two
/// attempts of [`register`], so that every burst reaches argon2 as often as
/// the first.
pub const REFILL: Duration = Duration::from_secs(
    (arkku::identity::attempts::CLIENT_BURST as u64 + 2)
        * arkku::identity::attempts::PEER_PERIOD.as_secs(),
);
/// Connections the burst is sent over.
pub const BURST_CONNECTIONS: usize = 32;
/// argon2id verifications timed for the per-verification figure.
const VERIFICATIONS: u32 = 20;

/// A client registered for the scenario.
pub struct Client {
    pub id: String,
    pub secret: Zeroizing<String>,
}

impl Client {
    /// The `Authorization` value of HTTP Basic with `secret`.
    fn basic(&self, secret: &str) -> Arc<str> {
        Arc::from(format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{secret}", self.id))
        ))
    }

    /// A token request with `secret`.
    fn token_call(&self, secret: &str) -> Call {
        Call {
            method: Method::POST,
            path: "/oauth/token".into(),
            token: None,
            body: Some(Bytes::from_static(b"grant_type=client_credentials")),
            oauth: Some(self.basic(secret)),
        }
    }

    /// Token requests with the right secret, as a [`MakeCall`].
    pub fn right_secret(&self) -> MakeCall {
        let basic = self.basic(&self.secret);
        Arc::new(move |_| Call {
            method: Method::POST,
            path: "/oauth/token".into(),
            token: None,
            body: Some(Bytes::from_static(b"grant_type=client_credentials")),
            oauth: Some(Arc::clone(&basic)),
        })
    }
}

/// Registers a service client for `support` through the admin API and
/// checks that its secret gets a token and that an unknown client is
/// refused (with another client id, so that the burst finds the client's
/// attempt budget as an attacker would: all of it but the one verification
/// its own first request used).
pub async fn register(addr: SocketAddr, admin: &Arc<str>) -> anyhow::Result<Client> {
    let body = json!({"name": "bench", "role": "service", "purposes": ["support"]});
    let create = Call {
        method: Method::POST,
        path: "/v1/admin/clients".into(),
        token: Some(Arc::clone(admin)),
        body: Some(Bytes::from(body.to_string())),
        oauth: None,
    };
    let (status, answer) = load::fetch(addr, create).await?;
    let v: Value = serde_json::from_slice(&answer).unwrap_or_default();
    anyhow::ensure!(status == 201, "registering a client: {status} {v}");
    let client = Client {
        id: v["client"]["client_id"]
            .as_str()
            .context("client_id")?
            .to_owned(),
        secret: Zeroizing::new(v["client_secret"].as_str().context("secret")?.to_owned()),
    };
    let (status, answer) = load::fetch(addr, client.token_call(&client.secret)).await?;
    let v: Value = serde_json::from_slice(&answer).unwrap_or_default();
    anyhow::ensure!(
        status == 200 && v["access_token"].is_string(),
        "the client's secret gets no token: {status}"
    );
    let stranger = Client {
        id: uuid::Uuid::now_v7().to_string(),
        secret: Zeroizing::new(String::new()),
    };
    let (status, _) = load::fetch(addr, stranger.token_call(&client.secret)).await?;
    anyhow::ensure!(
        status == 401,
        "an unknown client is answered {status}, not 401"
    );
    Ok(client)
}

/// What the burst was answered.
pub struct Burst {
    pub seconds: f64,
    pub statuses: BTreeMap<u16, u64>,
}

impl Burst {
    /// `401 ×10, 429 ×990`.
    pub fn summary(&self) -> String {
        self.statuses
            .iter()
            .map(|(s, n)| format!("{s} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Sends [`BURST`] token requests with wrong secrets for `client` over
/// [`BURST_CONNECTIONS`] connections, as fast as they are answered.
pub async fn wrong_secrets(addr: SocketAddr, client: &Client) -> anyhow::Result<Burst> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..BURST_CONNECTIONS {
        let calls: Vec<Call> = (lane..BURST)
            .step_by(BURST_CONNECTIONS)
            .map(|i| client.token_call(&format!("arkku_cs_guess{i}")))
            .collect();
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let host = addr.to_string();
            let mut statuses = BTreeMap::new();
            for call in calls {
                sender.ready().await?;
                let resp = sender.send_request(load::request(&host, call)?).await?;
                let status = resp.status().as_u16();
                resp.into_body().collect().await?;
                *statuses.entry(status).or_insert(0u64) += 1;
            }
            anyhow::Ok(statuses)
        });
    }
    let mut statuses = BTreeMap::new();
    while let Some(r) = tasks.join_next().await {
        for (s, n) in r?? {
            *statuses.entry(s).or_insert(0) += n;
        }
    }
    Ok(Burst {
        seconds: started.elapsed().as_secs_f64(),
        statuses,
    })
}

/// The reader (`reader`, over `concurrency` connections) driven for as long
/// as the burst is being answered.
pub async fn read_during_burst(
    addr: SocketAddr,
    server: u32,
    concurrency: usize,
    reader: MakeCall,
    client: &Client,
) -> anyhow::Result<(Outcome, Burst)> {
    let running = Arc::new(AtomicBool::new(true));
    let drive = tokio::spawn(load::drive_until(
        addr,
        server,
        concurrency,
        Stop::Cleared(Arc::clone(&running)),
        reader,
    ));
    let burst = wrong_secrets(addr, client).await;
    running.store(false, Ordering::Relaxed);
    let outcome = drive.await??;
    Ok((outcome, burst?))
}

/// The reader (over `concurrency` connections) alone for [`ALONE_SECONDS`]
/// and then during a burst, `rounds` times, each round against a freshly
/// registered client; the alone and the during runs merged, and the last
/// client.
pub async fn rounds(
    addr: SocketAddr,
    server: u32,
    (concurrency, rounds): (usize, usize),
    reader: MakeCall,
    admin: &Arc<str>,
) -> anyhow::Result<(Outcome, Outcome, Client)> {
    let (mut alone, mut during) = (Outcome::default(), Outcome::default());
    let mut last = None;
    for round in 1..=rounds.max(1) {
        if round > 1 {
            eprintln!("token_burst: waiting for the peer's attempt budget to refill …");
            tokio::time::sleep(REFILL).await;
        }
        let client = register(addr, admin).await?;
        let a = load::drive(
            addr,
            server,
            concurrency,
            ALONE_SECONDS,
            Arc::clone(&reader),
        );
        let a = a.await?;
        let (d, b) =
            read_during_burst(addr, server, concurrency, Arc::clone(&reader), &client).await?;
        eprintln!(
            "token_burst round {round}: {concurrency} connections; reader p99 {:.2} ms alone, \
             {:.2} ms during {BURST} wrong secrets answered in {:.2} s ({})",
            a.quantile_ms(0.99),
            d.quantile_ms(0.99),
            b.seconds,
            b.summary()
        );
        alone.absorb(a);
        during.absorb(d);
        last = Some(client);
    }
    let client = last.context("no round ran")?;
    Ok((alone, during, client))
}

/// Milliseconds per argon2id verification with the vault's parameters, one
/// at a time on this machine.
pub async fn argon2_ms() -> anyhow::Result<f64> {
    let hasher = arkku::identity::SecretHasher::with_permits(1, Duration::from_secs(60))?;
    let secret = || Zeroizing::new("arkku_cs_a-secret-of-the-usual-length-000000000".to_owned());
    let phc = hasher.hash(secret()).await?;
    let started = Instant::now();
    for _ in 0..VERIFICATIONS {
        anyhow::ensure!(hasher.verify(Some(&phc), secret()).await?, "no match");
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0 / f64::from(VERIFICATIONS))
}
