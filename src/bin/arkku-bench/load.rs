//! The closed-loop client: C connections over loopback, each sending its next
//! request as soon as the previous answer is read, for S seconds. Kept cheap
//! (raw HTTP/1.1 on hyper, no JSON parsing of answers) because it shares the
//! two cores with the server it measures.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::{body::Bytes, Method, Request};
use hyper_util::rt::TokioIo;

use crate::procs::cpu_seconds;

/// One request to send.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub token: Option<Arc<str>>,
    pub body: Option<Bytes>,
    /// A whole `Authorization` value (HTTP Basic) instead of the bearer token,
    /// and a form body instead of JSON: the OAuth token endpoint's request.
    pub oauth: Option<Arc<str>>,
}

/// Makes the next call from a random number.
pub type MakeCall = Arc<dyn Fn(u64) -> Call + Send + Sync>;

/// What one run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    pub ok: u64,
    pub failed: u64,
    pub seconds: f64,
    /// Latency of every answered request, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// CPU seconds the server process used meanwhile, if it could be read.
    pub server_cpu_s: Option<f64>,
    /// CPU seconds this process (the client) used meanwhile.
    pub client_cpu_s: Option<f64>,
}

impl Outcome {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.seconds.max(1e-9)
    }
    /// `cpu_s` per answered request, in microseconds.
    pub fn cpu_us_per_op(&self, cpu_s: Option<f64>) -> Option<f64> {
        cpu_s
            .filter(|_| self.ok > 0)
            .map(|s| s * 1e6 / self.ok as f64)
    }
    /// Adds another run's requests, time and CPU to this one's.
    pub fn absorb(&mut self, other: Outcome) {
        self.ok += other.ok;
        self.failed += other.failed;
        self.seconds += other.seconds;
        self.latencies_us.extend(other.latencies_us);
        self.latencies_us.sort_unstable();
        let sum = |a: Option<f64>, b: Option<f64>| Some(a.unwrap_or(0.0) + b?);
        self.server_cpu_s = sum(self.server_cpu_s, other.server_cpu_s);
        self.client_cpu_s = sum(self.client_cpu_s, other.client_cpu_s);
    }

    /// The latency at quantile `q` (0..=1), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// xorshift64*: a fast, dependency-free source of request choices.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// When a drive ends: at an instant, or when a flag is cleared.
#[derive(Clone)]
pub enum Stop {
    At(Instant),
    Cleared(Arc<AtomicBool>),
}

impl Stop {
    fn reached(&self) -> bool {
        match self {
            Stop::At(t) => Instant::now() >= *t,
            Stop::Cleared(running) => !running.load(Ordering::Relaxed),
        }
    }
}

async fn connection(
    addr: SocketAddr,
    make: MakeCall,
    stop: Stop,
    seed: u64,
) -> anyhow::Result<(u64, u64, Vec<u32>)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut rng = seed | 1;
    let (mut ok, mut failed, mut lat) = (0u64, 0u64, Vec::with_capacity(100_000));
    let host = addr.to_string();
    while !stop.reached() {
        let req = request(&host, make(next(&mut rng)))?;
        let started = Instant::now();
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        resp.into_body().collect().await?;
        let us = u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX);
        if status.is_success() {
            ok += 1;
            lat.push(us);
        } else {
            failed += 1;
        }
    }
    Ok((ok, failed, lat))
}

/// Drives `addr` (served by process `server`) with `concurrency`
/// connections for `seconds`.
pub async fn drive(
    addr: SocketAddr,
    server: u32,
    concurrency: usize,
    seconds: f64,
    make: MakeCall,
) -> anyhow::Result<Outcome> {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    drive_until(addr, server, concurrency, Stop::At(until), make).await
}

/// [`drive`] until `stop`.
pub async fn drive_until(
    addr: SocketAddr,
    server: u32,
    concurrency: usize,
    stop: Stop,
    make: MakeCall,
) -> anyhow::Result<Outcome> {
    let cpu_before = (cpu_seconds("self"), cpu_seconds(&server.to_string()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..concurrency {
        tasks.spawn(connection(
            addr,
            Arc::clone(&make),
            stop.clone(),
            0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1),
        ));
    }
    let mut out = Outcome::default();
    while let Some(r) = tasks.join_next().await {
        let (ok, failed, lat) = r??;
        out.ok += ok;
        out.failed += failed;
        out.latencies_us.extend(lat);
    }
    out.seconds = started.elapsed().as_secs_f64();
    let used = |before: Option<f64>, after: Option<f64>| Some(after? - before?);
    out.client_cpu_s = used(cpu_before.0, cpu_seconds("self"));
    out.server_cpu_s = used(cpu_before.1, cpu_seconds(&server.to_string()));
    out.latencies_us.sort_unstable();
    Ok(out)
}

/// The HTTP request of a call.
pub fn request(host: &str, call: Call) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut req = Request::builder()
        .method(call.method)
        .uri(call.path)
        .header("host", host);
    if let Some(t) = &call.token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(basic) = &call.oauth {
        req = req
            .header("authorization", &**basic)
            .header("content-type", "application/x-www-form-urlencoded");
    } else if call.body.is_some() {
        req = req.header("content-type", "application/json");
    }
    Ok(req.body(Full::new(call.body.unwrap_or_default()))?)
}

/// Sends one call and returns the status and body (for checking that a
/// scenario measures what it says before it is driven).
pub async fn fetch(addr: SocketAddr, call: Call) -> anyhow::Result<(u16, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let resp = sender
        .send_request(request(&addr.to_string(), call)?)
        .await?;
    let status = resp.status().as_u16();
    Ok((status, resp.into_body().collect().await?.to_bytes()))
}

/// Sends every call once, over `concurrency` kept-alive connections (for
/// seeding through the API), and fails on the first answer that is not a
/// success.
pub async fn send_all(
    addr: SocketAddr,
    concurrency: usize,
    calls: Vec<Call>,
) -> anyhow::Result<()> {
    let mut lanes: Vec<Vec<Call>> = (0..concurrency.max(1)).map(|_| Vec::new()).collect();
    let width = lanes.len();
    for (i, call) in calls.into_iter().enumerate() {
        lanes[i % width].push(call);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for lane in lanes.into_iter().filter(|l| !l.is_empty()) {
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let host = addr.to_string();
            for call in lane {
                let what = format!("{} {}", call.method, call.path);
                sender.ready().await?;
                let resp = sender.send_request(request(&host, call)?).await?;
                let status = resp.status();
                let body = resp.into_body().collect().await?.to_bytes();
                anyhow::ensure!(
                    status.is_success(),
                    "{what}: {status} {}",
                    String::from_utf8_lossy(&body)
                );
            }
            Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok(())
}
