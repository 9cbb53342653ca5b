//! What the sign-in tests share: a vault whose notifier runs, the two
//! endpoints, the outbox file, and a webhook receiver served from inside
//! the test.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use arkku::config::NotifyMode;
use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend, Reply, TestApp};

/// How long a test waits for the notifier.
pub const DELIVERY_LIMIT: Duration = Duration::from_secs(20);

/// A vault on `backend` whose notifier appends to `outbox.jsonl` and runs.
pub async fn app_with_file_notifier(b: Backend) -> TestApp {
    app_with(b, NotifyMode::File, |_| {}).await
}

/// A vault with notifier `mode` (started), and the configuration adjusted.
pub async fn app_with(
    b: Backend,
    mode: NotifyMode,
    adjust: impl FnOnce(&mut arkku::config::Config),
) -> TestApp {
    let app = spawn_app_with(b, |c| {
        c.notify = mode;
        adjust(c);
    })
    .await;
    arkku::app::spawn_notifier(&app.state);
    app
}

/// The file `ARKKU_NOTIFY=file` writes in this app's data dir.
pub fn outbox_file(app: &TestApp) -> PathBuf {
    app.state.config.notify_file()
}

pub async fn start(app: &TestApp, channel: &str, value: &str) -> Reply {
    app.request(
        Method::POST,
        "/v1/auth/customer/start",
        None,
        Some(json!({"channel": channel, "value": value})),
    )
    .await
}

/// Starts a sign-in and returns the challenge id (asserting 202).
pub async fn start_ok(app: &TestApp, channel: &str, value: &str) -> String {
    let r = start(app, channel, value).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    r.json["challenge_id"]
        .as_str()
        .expect("challenge_id")
        .to_owned()
}

pub async fn verify(app: &TestApp, challenge: &str, code: &str) -> Reply {
    app.request(
        Method::POST,
        "/v1/auth/customer/verify",
        None,
        Some(json!({"challenge_id": challenge, "code": code})),
    )
    .await
}

/// The JSON lines of an outbox file once it holds at least `n`.
pub async fn lines(path: &Path, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + DELIVERY_LIMIT;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
            .collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} holds {} lines, not {n}",
            path.display(),
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts a sign-in for `value` and returns the challenge id and the code
/// that the file notifier delivered for it (the `n`th line of the file).
pub async fn code_for(app: &TestApp, channel: &str, value: &str, n: usize) -> (String, String) {
    let challenge = start_ok(app, channel, value).await;
    let all = lines(&outbox_file(app), n).await;
    let code = all[n - 1]["code"].as_str().expect("code").to_owned();
    (challenge, code)
}

/// A customer with an e-mail address, a phone number and an Instagram
/// handle; its id.
pub async fn customer(app: &TestApp, email: &str) -> String {
    app.create_customer_ok(
        &app.service(),
        json!({"display_name": "Pena Sign-In", "contacts": [
            {"channel": "email", "value": email},
            {"channel": "instagram", "value": format!("@{}", email.split('@').next().unwrap_or("x"))}
        ]}),
    )
    .await
}

/// One post a [`Receiver`] got.
#[derive(Clone, Debug)]
pub struct Post {
    pub signature: String,
    pub body: Vec<u8>,
    /// What the receiver answered.
    pub status: u16,
}

struct Shared {
    posts: Mutex<Vec<Post>>,
    /// Posts still to refuse with 503.
    refuse: Mutex<usize>,
}

/// A webhook receiver on a port of its own, which records every post and
/// refuses the first `refuse` of them.
pub struct Receiver {
    pub url: String,
    shared: Arc<Shared>,
}

impl Receiver {
    pub async fn start(refuse: usize) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Self::on(listener, refuse)
    }

    /// A receiver on an already-bound listener.
    pub fn on(listener: tokio::net::TcpListener, refuse: usize) -> Self {
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let shared = Arc::new(Shared {
            posts: Mutex::new(Vec::new()),
            refuse: Mutex::new(refuse),
        });
        let app = axum::Router::new()
            .route("/hook", post(hook))
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { url, shared }
    }

    pub fn posts(&self) -> Vec<Post> {
        self.shared.posts.lock().expect("posts").clone()
    }

    /// The posts once `n` of them were answered 200.
    pub async fn delivered(&self, n: usize) -> Vec<Post> {
        let deadline = Instant::now() + DELIVERY_LIMIT;
        loop {
            let posts = self.posts();
            if posts.iter().filter(|p| p.status == 200).count() >= n {
                return posts;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} posts, {n} accepted expected: {posts:?}",
                posts.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn hook(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let signature = headers
        .get("arkku-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let status = {
        let mut refuse = s.refuse.lock().expect("refuse");
        if *refuse > 0 {
            *refuse -= 1;
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    };
    s.posts.lock().expect("posts").push(Post {
        signature,
        body: body.to_vec(),
        status: status.as_u16(),
    });
    status
}

/// Checks a post's `arkku-signature` as a receiver must: `t` within a
/// minute of now, `v1` the HMAC-SHA256 of `"<t>.<body>"` under `secret`.
pub fn assert_signed(post: &Post, secret: &[u8]) {
    let (t, v1) = post
        .signature
        .split_once(',')
        .and_then(|(t, v)| Some((t.strip_prefix("t=")?, v.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("malformed signature {:?}", post.signature));
    let t: i64 = t.parse().expect("t is unix seconds");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - t).abs() <= 60, "timestamp {t} is not now ({now})");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(&post.body);
    let expected = arkku::crypto::hex(ring::hmac::sign(&key, &signed).as_ref());
    assert_eq!(v1, expected, "the signature does not verify");
}

/// The body of a post as JSON.
pub fn body(post: &Post) -> Value {
    serde_json::from_slice(&post.body).expect("a JSON body")
}
