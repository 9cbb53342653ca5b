//! The connection edge: accepting TCP connections and serving HTTP/1.1 on
//! them with limits, so that one client cannot take the server down.
//!
//! `axum::serve` has no header, body or idle timeout and no connection cap;
//! a single client holding thousands of idle sockets once exhausted the file
//! handles. This accept loop drives hyper directly and adds:
//!
//! - a **connection budget** below the process's file-handle limit (reserving
//!   handles for the database, key files and logs), with a fast refusal
//!   beyond it: the connection is accepted, handed a minimal 503 if the
//!   socket takes it at once, and closed, so the listen backlog never fills;
//! - a **per-peer cap** (IPv4 address, or IPv6 /64), so one client cannot hold
//!   the whole budget;
//! - an **idle timeout**: a connection with no request in progress and no byte
//!   read or written for this long is closed (keep-alive and never-used
//!   connections alike, and responses the client stopped reading);
//! - a **header read timeout**, from the first byte of a request head to its
//!   end. hyper's own `header_read_timeout` is not used: its clock starts when
//!   the connection becomes ready for a request, so it would also be the idle
//!   timeout and the two could not be set apart;
//! - a **body read timeout**: the whole request body must arrive within this
//!   time of its head (tower-http's body timeout restarts with every chunk, so
//!   a client trickling a byte at a time would never hit it);
//! - problem+json for the errors hyper answers by itself (a head too large or
//!   unparsable), which it would otherwise send with an empty body.
//!
//! Graceful shutdown keeps axum's behaviour: stop accepting (the listener is
//! closed, so a new connection is refused), let every connection finish its
//! request in progress, then return; and adds a deadline: connections still
//! busy after `shutdown_timeout` are left to be dropped with the runtime, so
//! one stuck client cannot hold a stopping node for ever.
//!
//! Longer than 500 lines: the accept loop, its timeouts and its connection caps
//! interlock (a slot is freed where a timeout fires), so they stay in one file;
//! its tests are the last 55 lines.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{body::Bytes, Router};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{watch, OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};
use tower::Service;

/// Largest request head (request line and headers) accepted; larger ones get
/// 431 `headers_too_large`. A token is refused above 8 KiB anyway.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;

/// File handles kept back from the connection budget for the database pool,
/// key and policy files, the log and the listener itself.
fn reserved_handles(soft_limit: u64) -> u64 {
    (soft_limit / 10).clamp(64, 1024)
}

/// The limits of the edge (from [`crate::config::Config`]).
#[derive(Debug, Clone, Copy)]
pub struct EdgeLimits {
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// Requested cap on open connections; lowered to fit the file-handle limit.
    pub max_connections: usize,
    /// Open connections one peer may hold; 0 for no per-peer cap (behind a
    /// proxy every connection comes from the proxy's address).
    pub max_connections_per_peer: usize,
    /// After the shutdown signal, how long the requests in progress may take
    /// before their connections are dropped.
    pub shutdown_timeout: Duration,
}

impl EdgeLimits {
    /// The connection budget: the configured cap, lowered to the soft
    /// `RLIMIT_NOFILE` minus a reserve when that is smaller.
    pub fn connection_budget(&self) -> usize {
        let requested = self.max_connections.max(1);
        match open_files_soft_limit() {
            Some(soft) => {
                let fit = soft.saturating_sub(reserved_handles(soft)).max(1);
                requested.min(usize::try_from(fit).unwrap_or(usize::MAX))
            }
            None => requested,
        }
    }
}

/// The soft limit on open files, read from `/proc/self/limits` (no unsafe,
/// no libc); `None` where that file does not exist or says "unlimited".
pub fn open_files_soft_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_open_files_limit(&text)
}

/// The soft "Max open files" value of a `/proc/<pid>/limits` text.
pub fn parse_open_files_limit(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files")
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Where the per-peer cap counts a connection: the IPv4 address, or the /64
/// of an IPv6 address (one host usually holds a whole /64).
pub fn peer_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
    }
}

/// Open connections per peer.
#[derive(Default)]
struct PeerCounts(Mutex<HashMap<IpAddr, usize>>);

/// One peer's slot; gives it back when the connection ends.
struct PeerSlot {
    peers: Arc<PeerCounts>,
    key: IpAddr,
}

impl PeerCounts {
    fn take(self: &Arc<Self>, key: IpAddr, cap: usize) -> Option<PeerSlot> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(key).or_insert(0);
        if cap != 0 && *n >= cap {
            return None;
        }
        *n += 1;
        Some(PeerSlot {
            peers: Arc::clone(self),
            key,
        })
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut map = self.peers.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// What a refused connection gets if its socket takes it at once.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 159\r\n\r\n\
{\"type\":\"urn:arkku:problem:too_many_connections\",\"title\":\"Service Unavailable\",\"status\":503,\"detail\":\"too many open connections\",\"code\":\"too_many_connections\"}";

/// Serves `router` on `listener` with `limits` until `shutdown` resolves,
/// then waits for the connections' requests in progress to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: EdgeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let budget = limits.connection_budget();
    if budget < limits.max_connections {
        tracing::warn!(
            requested = limits.max_connections,
            budget,
            "ARKKU_MAX_CONNECTIONS lowered to fit the open-files limit (raise `ulimit -n` for more)"
        );
    }
    tracing::info!(
        max_connections = budget,
        max_connections_per_peer = limits.max_connections_per_peer,
        header_read_timeout = ?limits.header_read_timeout,
        body_read_timeout = ?limits.body_read_timeout,
        idle_timeout = ?limits.idle_timeout,
        "connection limits"
    );
    let slots = Arc::new(Semaphore::new(budget));
    let peers = Arc::new(PeerCounts::default());
    // Every connection holds a receiver: a send tells them to shut down, and
    // `closed()` resolves once they all have (axum's graceful shutdown).
    let (signal, watcher) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(admitted) = admit(&slots, &peers, &limits, peer) else {
            refuse(stream, peer);
            continue;
        };
        let router = router.clone();
        let watcher = watcher.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, router, limits, watcher).await;
            drop(admitted);
        });
    }
    drop(listener);
    drop(watcher);
    let open = budget - slots.available_permits();
    tracing::info!(
        connections = open,
        deadline = ?limits.shutdown_timeout,
        "stopped accepting; draining the open connections"
    );
    signal.send_replace(());
    match tokio::time::timeout(limits.shutdown_timeout, signal.closed()).await {
        Ok(()) => tracing::info!(connections = open, "every connection drained"),
        Err(_) => tracing::warn!(
            connections = open,
            still_open = budget - slots.available_permits(),
            deadline = ?limits.shutdown_timeout,
            "shutdown deadline passed: the connections still open are dropped, \
             their requests unanswered"
        ),
    }
    Ok(())
}

/// A connection's hold on the budget and on its peer's slots.
struct Admitted {
    _slot: OwnedSemaphorePermit,
    _peer: PeerSlot,
}

fn admit(
    slots: &Arc<Semaphore>,
    peers: &Arc<PeerCounts>,
    limits: &EdgeLimits,
    peer: SocketAddr,
) -> Option<Admitted> {
    let peer_slot = peers.take(peer_key(peer.ip()), limits.max_connections_per_peer)?;
    let slot = Arc::clone(slots).try_acquire_owned().ok()?;
    Some(Admitted {
        _slot: slot,
        _peer: peer_slot,
    })
}

/// Hands a refused connection the 503 if its send buffer takes it without
/// waiting, and closes it: no task, no buffer, nothing kept.
fn refuse(stream: TcpStream, peer: SocketAddr) {
    tracing::debug!(peer = %peer.ip(), "connection refused: connection limit reached");
    let _ = stream.try_write(REFUSAL);
    drop(stream);
}

/// Like axum: a failed accept of one connection is skipped; anything else
/// (out of file handles) is logged and retried after a pause.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in a second");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Serves one connection until it ends, a limit closes it, or shutdown.
/// Each request carries the peer's address as axum's
/// [`ConnectInfo`](axum::extract::ConnectInfo), for the handlers that limit
/// per peer (the OAuth token endpoint).
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: EdgeLimits,
    mut watcher: watch::Receiver<()>,
) {
    let _ = stream.set_nodelay(true);
    let clock = Arc::new(ConnClock::new());
    let io = TokioIo::new(EdgeIo::new(stream, Arc::clone(&clock)));
    let body_timeout = limits.body_read_timeout;
    let service_clock = Arc::clone(&clock);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let in_flight = InFlight::begin(Arc::clone(&service_clock));
        let mut req = req.map(|body| axum::body::Body::new(DeadlineBody::new(body, body_timeout)));
        // The client address, for per-address limits (`http::peer`).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let mut router = router.clone();
        async move {
            let resp = router.call(req).await;
            drop(in_flight);
            resp
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .max_header_size(MAX_HEAD_BYTES)
        .header_read_timeout(None)
        .writev(false);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut shutting_down = false;
    loop {
        let wake = clock.next_check(&limits);
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            changed = watcher.changed(), if !shutting_down => {
                let _ = changed;
                shutting_down = true;
                conn.as_mut().graceful_shutdown();
            }
            () = clock.head_began.notified() => {}
            () = tokio::time::sleep_until(wake.into()) => {
                if let Some(why) = clock.expired(&limits) {
                    tracing::debug!(why, "connection closed");
                    return;
                }
            }
        }
    }
}

/// What the connection is doing, in milliseconds since it was accepted.
struct ConnClock {
    base: Instant,
    /// Last byte read or written, or the end of the last request.
    last_activity: AtomicU64,
    /// First byte of a request head still being read; 0 for none (else ms + 1).
    head_started: AtomicU64,
    in_flight: AtomicUsize,
    /// A response of ours is due, so the next status line written is ours.
    response_due: AtomicBool,
    /// Wakes the watchdog when a head starts, so it swaps the idle deadline
    /// for the (usually shorter) header deadline at once.
    head_began: tokio::sync::Notify,
}

impl ConnClock {
    fn new() -> Self {
        ConnClock {
            base: Instant::now(),
            last_activity: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            response_due: AtomicBool::new(false),
            head_began: tokio::sync::Notify::new(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.base + Duration::from_millis(ms)
    }

    fn on_read(&self) {
        let now = self.now();
        self.last_activity.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0
            && self
                .head_started
                .compare_exchange(0, now + 1, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.head_began.notify_one();
        }
    }

    fn on_write(&self) {
        self.last_activity.store(self.now(), Ordering::Relaxed);
    }

    /// When to look again.
    fn next_check(&self, limits: &EdgeLimits) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + limits.idle_timeout;
        }
        match self.head_started.load(Ordering::Acquire) {
            0 => self.at(self.last_activity.load(Ordering::Relaxed)) + limits.idle_timeout,
            started => self.at(started - 1) + limits.header_read_timeout,
        }
    }

    /// Why the connection must close now, if it must.
    fn expired(&self, limits: &EdgeLimits) -> Option<&'static str> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let now = Instant::now();
        match self.head_started.load(Ordering::Acquire) {
            0 => (now >= self.at(self.last_activity.load(Ordering::Relaxed)) + limits.idle_timeout)
                .then_some("idle timeout"),
            started => (now >= self.at(started - 1) + limits.header_read_timeout)
                .then_some("header read timeout"),
        }
    }
}

/// A request in progress on a connection (its head has been read).
struct InFlight(Arc<ConnClock>);

impl InFlight {
    fn begin(clock: Arc<ConnClock>) -> Self {
        clock.in_flight.fetch_add(1, Ordering::AcqRel);
        clock.head_started.store(0, Ordering::Release);
        clock.response_due.store(true, Ordering::Release);
        InFlight(clock)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.on_write();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The TCP stream as hyper sees it: reads and writes tick the connection's
/// clock, and an error response hyper writes by itself (with an empty body)
/// is replaced by the same status as problem+json.
struct EdgeIo {
    stream: TcpStream,
    clock: Arc<ConnClock>,
    /// Bytes of our replacement still to send; once set, hyper's own writes
    /// are swallowed (it closes the connection after such an error).
    replacement: Option<(Vec<u8>, usize)>,
}

impl EdgeIo {
    fn new(stream: TcpStream, clock: Arc<ConnClock>) -> Self {
        EdgeIo {
            stream,
            clock,
            replacement: None,
        }
    }

    /// Sends what is left of the replacement; Ready once it is all out.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, sent)) = self.replacement.as_mut() {
            if *sent >= bytes.len() {
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut self.stream).poll_write(cx, &bytes[*sent..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    *sent += n;
                    self.clock.on_write();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// hyper's own answer (`HTTP/1.1 431 …`, empty body) as problem+json.
fn problem_for_status_line(head: &[u8]) -> Vec<u8> {
    let status: u16 = head
        .get(9..12)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse().ok())
        .unwrap_or(400);
    let (code, detail) = match status {
        431 => (
            "headers_too_large",
            "the request headers are larger than the server accepts",
        ),
        414 => ("uri_too_long", "the request target is too long"),
        505 => (
            "http_version_not_supported",
            "only HTTP/1.0 and HTTP/1.1 are served",
        ),
        _ => ("invalid_request", "the request could not be parsed"),
    };
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Bad Request");
    let body = serde_json::json!({
        "type": format!("urn:arkku:problem:{code}"),
        "title": reason,
        "status": status,
        "detail": detail,
        "code": code,
    })
    .to_string();
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

impl AsyncRead for EdgeIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(res, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.on_read();
        }
        res
    }
}

impl AsyncWrite for EdgeIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_some() {
            return this.drain(cx).map_ok(|()| buf.len());
        }
        // A 1xx (`100 Continue`) precedes the response it announces; it is
        // neither hyper's error nor the end of the response that is due.
        if buf.starts_with(b"HTTP/1.")
            && buf.get(9) != Some(&b'1')
            && !this.clock.response_due.swap(false, Ordering::AcqRel)
        {
            // No request reached us, so this status line is hyper's own.
            this.replacement = Some((problem_for_status_line(buf), 0));
            return this.drain(cx).map_ok(|()| buf.len());
        }
        let res = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(res, Poll::Ready(Ok(n)) if n > 0) {
            this.clock.on_write();
        }
        res
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replacement.is_some() {
            std::task::ready!(this.drain(cx))?;
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replacement.is_some() {
            std::task::ready!(this.drain(cx))?;
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

/// The request body was not complete within the body read timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the body read timeout")]
pub struct BodyTimeout;

/// A request body that must be complete by a deadline set when its head
/// arrived (one deadline for the whole body, not one per chunk).
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if this.inner.is_end_stream() {
            return Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimeout))));
        }
        Pin::new(&mut this.inner).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_is_read_from_proc_limits() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max cpu time              unlimited            unlimited            seconds   \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_open_files_limit(text), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_open_files_limit(unlimited), None);
        assert_eq!(parse_open_files_limit(""), None);
    }

    #[test]
    fn the_budget_keeps_handles_back_below_the_limit() {
        assert_eq!(reserved_handles(1024), 102);
        assert_eq!(reserved_handles(256), 64);
        assert_eq!(reserved_handles(1 << 20), 1024);
    }

    #[test]
    fn ipv6_peers_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(peer_key(a), peer_key(b));
        assert_ne!(peer_key(a), peer_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(peer_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn hyper_errors_become_problem_json_with_their_status() {
        let out = problem_for_status_line(b"HTTP/1.1 431 Request Header Fields Too Large\r\n");
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(text.contains("content-type: application/problem+json"));
        let body = text.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "headers_too_large");
        assert_eq!(v["status"], 431);
    }

    #[test]
    fn the_refusal_is_a_complete_response() {
        let text = std::str::from_utf8(REFUSAL).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["code"], "too_many_connections");
    }
}
