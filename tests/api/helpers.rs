//! The test harness: a fresh vault per test on a port-0 server, one helper
//! per endpoint, and direct database access for sabotage tests.

use std::{
    ffi::OsStr,
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use arkku::{
    clock::{Clock, TestTime, TEST_CLOCK_ENV},
    config::Config,
    crypto::{load_key_file, SecretKey},
    domain::{ChannelId, Role},
    store::Db,
    token::{self, TokenRequest},
    AppState,
};
use reqwest::{header::HeaderMap, Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

pub type ScenarioFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
pub type ScenarioFn = fn(Backend) -> ScenarioFuture;
pub type Scenario = (&'static str, ScenarioFn);

/// The PostgreSQL server to test against, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("ARKKU_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

/// Prefix of the databases the tests create (dropped at the end).
const DB_PREFIX: &str = "arkku_test_";

/// Runs one scenario on its own runtime.
pub fn run(backend: Backend, f: ScenarioFn) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(f(backend));
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Creates a fresh PostgreSQL database and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let admin = postgres_url().expect("ARKKU_TEST_POSTGRES_URL");
    let name = format!("{DB_PREFIX}{}", uuid::Uuid::now_v7().simple());
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("create test database");
    pool.close().await;
    CREATED
        .lock()
        .expect("created databases")
        .push(name.clone());
    with_database(&admin, &name)
}

/// The URL of a PostgreSQL database that does not exist yet, for a test
/// that expects `arkku` to create it; dropped at the end like the others.
pub fn unborn_postgres_database() -> String {
    let admin = postgres_url().expect("ARKKU_TEST_POSTGRES_URL");
    let name = format!("{DB_PREFIX}{}", uuid::Uuid::now_v7().simple());
    CREATED
        .lock()
        .expect("created databases")
        .push(name.clone());
    with_database(&admin, &name)
}

/// The databases this run created (another run's are not ours to drop).
static CREATED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Drops the databases this run created.
pub fn drop_test_databases() {
    let Some(admin) = postgres_url() else { return };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let Ok(pool) = sqlx::PgPool::connect(&admin).await else {
            return;
        };
        let names = std::mem::take(&mut *CREATED.lock().expect("created databases"));
        for name in names {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&pool)
                .await;
        }
        pool.close().await;
    });
}

/// Where [`unlimited_policies`] writes its policy directory.
fn unlimited_policies_path() -> PathBuf {
    std::env::temp_dir().join(format!("arkku-test-unlimited-{}", std::process::id()))
}

/// The shipped policies without rate limits, for load tests that drive one
/// token far past an agent's limits to test something else (written once
/// per test run, removed at its end).
pub fn unlimited_policies() -> &'static str {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        use arkku::policy::load::{SHIPPED_CHANNELS, SHIPPED_PURPOSES};
        let dir = unlimited_policies_path();
        std::fs::create_dir_all(&dir).expect("policy dir");
        std::fs::write(dir.join("channels.toml"), SHIPPED_CHANNELS).expect("channels");
        std::fs::write(dir.join("purposes.toml"), SHIPPED_PURPOSES).expect("purposes");
        std::fs::write(
            dir.join("limits.toml"),
            "[tokens]\nmax_lifetime = \"12h\"\n",
        )
        .expect("limits");
        dir.to_str().expect("utf-8 temp dir").to_owned()
    })
}

/// `ARKKU_POLICIES` for [`Env::serve_with`]: no rate limits.
pub fn no_rate_limits_env() -> (&'static str, &'static str) {
    ("ARKKU_POLICIES", unlimited_policies())
}

/// For [`spawn_app_with`]: no rate limits.
pub fn no_rate_limits(c: &mut Config) {
    c.policies = arkku::config::PolicySource::Dir(PathBuf::from(unlimited_policies()));
}

/// Removes the directory of [`unlimited_policies`], if this run made it.
pub fn remove_unlimited_policies() {
    let _ = std::fs::remove_dir_all(unlimited_policies_path());
}

/// A running vault on a fresh database.
pub struct TestApp {
    pub backend: Backend,
    pub address: String,
    pub client: Client,
    pub state: AppState,
    pub database_url: String,
    pub dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts a vault on a fresh database of `backend`, listening on port 0.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], with a chance to adjust the configuration.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let database_url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("arkku.db").display()),
        Backend::Postgres => fresh_postgres_database().await,
    };
    let mut config = Config::for_data_dir(dir.path().join("data"), database_url.clone());
    adjust(&mut config);
    let clock = Clock::from_file(clock_file(dir.path()));
    let state = arkku::app::open_with_clock(config, clock)
        .await
        .expect("vault starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serve_state = state.clone();
    tokio::spawn(async move {
        let _ = arkku::serve(listener, serve_state, async {
            let _ = rx.await;
        })
        .await;
    });
    TestApp {
        backend,
        address,
        client: http_client(),
        state,
        database_url,
        dir,
        shutdown: Some(tx),
    }
}

/// An HTTP client with the tests' 30-second timeout.
pub fn http_client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Sends a request and reads the response whole.
pub async fn send(rb: RequestBuilder) -> Reply {
    Reply::read(rb.send().await.expect("request sent")).await
}

/// A response read whole: status, headers and body as JSON (or Null).
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    /// Reads a response whole; an error only if the body cannot be read.
    pub async fn try_read(r: Response) -> reqwest::Result<Self> {
        let status = r.status();
        let headers = r.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = r.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            content_type,
            headers,
            text,
            json,
        })
    }

    /// Reads a response whole (the test fails if the body cannot be read).
    pub async fn read(r: Response) -> Self {
        Self::try_read(r).await.expect("body")
    }

    /// A response header as text, if present and readable.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json error with this status and code.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text);
        assert_eq!(
            self.content_type, "application/problem+json",
            "content type; body: {}",
            self.text
        );
        assert_eq!(self.json["code"], code, "code; body: {}", self.text);
        assert_eq!(self.json["status"], status);
    }
}

/// A token for tests.
pub struct Tok<'a> {
    pub role: Role,
    pub sub: &'a str,
    pub purposes: &'a [&'a str],
    pub channel: Option<&'a str>,
}

impl TestApp {
    /// The local issuer key (what `arkku token` signs with).
    pub fn issuer_key(&self) -> arkku::crypto::SecretKey {
        load_key_file(&self.dir.path().join("data").join("issuer.key")).expect("issuer key")
    }

    /// A valid token, issued on the vault's clock.
    pub fn token(&self, t: Tok<'_>) -> String {
        issue_token_at(&self.issuer_key(), t, self.state.clock.now())
    }

    /// An agent serving `channel` with purpose `support`.
    pub fn agent(&self, channel: &str) -> String {
        self.token(Tok {
            role: Role::Agent,
            sub: "agent-1",
            purposes: &["support"],
            channel: Some(channel),
        })
    }

    /// The customer `id` themselves (role customer, no purposes).
    pub fn customer(&self, id: &str) -> String {
        self.token(Tok {
            role: Role::Customer,
            sub: id,
            purposes: &[],
            channel: None,
        })
    }

    /// The compliance officer `auditor` with purpose `dsr` (reads the audit log).
    pub fn compliance(&self) -> String {
        self.token(Tok {
            role: Role::Compliance,
            sub: "auditor",
            purposes: &["dsr"],
            channel: None,
        })
    }

    /// An integration (service role) with purpose `support`.
    pub fn service(&self) -> String {
        self.token(Tok {
            role: Role::Service,
            sub: "crm-sync",
            purposes: &["support"],
            channel: None,
        })
    }

    /// Starts `arkku args…` against this vault's database and data dir (where
    /// the server keeps its keys), with no other `ARKKU_*` from outside.
    pub fn cli_proc(&self, args: &[&str]) -> Proc {
        self.cli_proc_with(args, &[])
    }

    /// Like [`TestApp::cli_proc`], with extra environment.
    pub fn cli_proc_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Proc {
        let logs = self.dir.path().join("cli-logs");
        std::fs::create_dir_all(&logs).expect("logs dir");
        let name = format!("run-{}", uuid::Uuid::now_v7());
        let data = self.dir.path().join("data");
        let env = [
            ("ARKKU_DATABASE_URL", OsStr::new(&self.database_url)),
            ("ARKKU_DATA_DIR", data.as_os_str()),
        ];
        let clock = clock_env(self.dir.path());
        let extra = extra.iter().map(|&(k, v)| (k, OsStr::new(v)));
        spawn_arkku(
            args,
            self.dir.path(),
            &logs,
            &name,
            env.into_iter()
                .chain(clock.iter().map(|(k, v)| (*k, v.as_os_str())))
                .chain(extra),
        )
    }

    /// Runs `arkku args…` like [`TestApp::cli_proc`] to the end.
    pub async fn cli(&self, args: &[&str]) -> Ran {
        self.cli_proc(args).finish().await
    }

    /// Asserts through `GET /v1/audit/verify` that the whole chain verifies.
    pub async fn assert_chain_verifies(&self) {
        let r = self
            .request(
                Method::GET,
                "/v1/audit/verify",
                Some(&self.compliance()),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["ok"], true, "{}", r.text);
    }

    /// Any request; `body` is sent as JSON when given.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        send(rb).await
    }

    /// A request with a raw body and content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Reply {
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.address))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        send(rb).await
    }

    pub async fn create_customer(&self, token: &str, body: Value) -> Reply {
        self.request(Method::POST, "/v1/customers", Some(token), Some(body))
            .await
    }

    /// Creates a customer and returns its id (asserting 201).
    pub async fn create_customer_ok(&self, token: &str, body: Value) -> String {
        let r = self.create_customer(token, body).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.json["id"].as_str().expect("id").to_owned()
    }

    pub async fn read_customer(&self, token: &str, id: &str, query: &str) -> Reply {
        self.request(
            Method::GET,
            &format!("/v1/customers/{id}?{query}"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn patch_customer(&self, token: &str, id: &str, body: Value) -> Reply {
        self.request(
            Method::PATCH,
            &format!("/v1/customers/{id}"),
            Some(token),
            Some(body),
        )
        .await
    }

    pub async fn add_contact(&self, token: &str, id: &str, body: Value) -> Reply {
        self.request(
            Method::POST,
            &format!("/v1/customers/{id}/contacts"),
            Some(token),
            Some(body),
        )
        .await
    }

    pub async fn remove_contact(&self, token: &str, id: &str, contact_id: &str) -> Reply {
        self.request(
            Method::DELETE,
            &format!("/v1/customers/{id}/contacts/{contact_id}"),
            Some(token),
            None,
        )
        .await
    }

    pub async fn lookup(&self, token: &str, channel: &str, value: &str, purpose: &str) -> Reply {
        self.request(
            Method::POST,
            "/v1/lookup",
            Some(token),
            Some(json!({"channel": channel, "value": value, "purpose": purpose})),
        )
        .await
    }

    /// The database, for sabotage and inspection.
    pub fn db(&self) -> &Db {
        &self.state.db
    }

    /// Runs one SQL statement directly (same text on both backends).
    pub async fn exec(&self, sql: &str) {
        arkku::on_db!(self.db(), pool => sqlx::query(sql).execute(pool).await.map(drop))
            .expect("sql");
    }

    /// One integer from the database (`SELECT COUNT(*) …` and the like).
    pub async fn scalar(&self, sql: &str) -> i64 {
        db_scalar(self.db(), sql).await
    }

    /// An id (a UUID) as an SQL literal of the backend's id type.
    pub fn id_literal(&self, id: &str) -> String {
        match self.db() {
            arkku::store::Db::Sqlite(..) => format!("X'{}'", id.replace('-', "")),
            arkku::store::Db::Postgres(_) => format!("'{id}'::uuid"),
        }
    }

    /// Number of rows in `table`.
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// Number of audit entries.
    pub async fn audit_count(&self) -> i64 {
        self.count("audit_log").await
    }

    /// Every audit row as text, for leak checks.
    pub async fn audit_text(&self) -> String {
        let rows = arkku::store::audit::entries_after(self.db(), 0, 1_000_000)
            .await
            .expect("audit");
        rows.iter()
            .map(|r| format!("{r:?}"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// One integer from `db` (`SELECT COUNT(*) …` and the like); the test fails on an error.
pub async fn db_scalar(db: &Db, sql: &str) -> i64 {
    arkku::on_db!(db, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A token signed with `key` by the local issuer, valid for an hour.
pub fn issue_token(key: &SecretKey, t: Tok<'_>) -> String {
    issue_token_at(key, t, time::OffsetDateTime::now_utc())
}

/// Like [`issue_token`], issued at `now` (a test vault's clock).
pub fn issue_token_at(key: &SecretKey, t: Tok<'_>, now: time::OffsetDateTime) -> String {
    let purposes: Vec<String> = t.purposes.iter().map(|s| s.to_string()).collect();
    let channel = t.channel.map(|c| ChannelId::parse(c).expect("channel"));
    token::issue(
        key,
        arkku::config::LOCAL_ISSUER,
        arkku::config::AUDIENCE,
        &TokenRequest {
            role: t.role,
            sub: t.sub,
            purposes: &purposes,
            channel: channel.as_ref(),
            ttl: Duration::from_secs(3600),
        },
        now,
    )
    .expect("token")
}

// --- the test clock --------------------------------------------------------------

/// The test clock file of a test directory: the in-process server of a
/// [`TestApp`] reads it, and so does every `arkku` the test starts once the
/// test has moved time ([`set_clock`]). No file: the system time.
pub fn clock_file(dir: &Path) -> PathBuf {
    dir.join("clock")
}

/// Moves the clock of the test directory `dir` (atomically: a reader sees
/// the old time or the new, never a half-written file).
pub fn set_clock(dir: &Path, t: TestTime) {
    let tmp = dir.join("clock.tmp");
    std::fs::write(&tmp, t.to_file_text()).expect("write clock");
    std::fs::rename(&tmp, clock_file(dir)).expect("move clock");
}

/// `ARKKU_TEST_CLOCK_FILE` for a child, once the test has set the clock
/// (so that the tests that never move time see no warning about it).
fn clock_env(dir: &Path) -> Option<(&'static str, PathBuf)> {
    let file = clock_file(dir);
    file.exists().then_some((TEST_CLOCK_ENV, file))
}

impl TestApp {
    /// Runs the vault (and the `arkku` commands the test starts) `ahead` of
    /// the system time from now on.
    pub fn set_clock_ahead(&self, ahead: Duration) {
        let secs = i64::try_from(ahead.as_secs()).expect("seconds");
        set_clock(self.dir.path(), TestTime::Offset(secs));
    }
}

impl Env {
    /// Runs every `arkku` of this environment (running ones at their next
    /// reading of the time) `ahead` of the system time.
    pub fn set_clock_ahead(&self, ahead: Duration) {
        let secs = i64::try_from(ahead.as_secs()).expect("seconds");
        set_clock(self.dir.path(), TestTime::Offset(secs));
    }
}

// --- the real binary ------------------------------------------------------------

/// The `arkku` binary under test.
pub const ARKKU_BIN: &str = env!("CARGO_BIN_EXE_arkku");

/// How long an `arkku` command that should finish quickly may take.
pub const EXIT_LIMIT: Duration = Duration::from_secs(30);

/// Starts `arkku args…` in `dir` with no `ARKKU_*` from outside, `NO_COLOR=1`
/// and then `env` in order; stdout and stderr go to `logs/{name}.out` and `.err`.
pub fn spawn_arkku<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    args: &[&str],
    dir: &Path,
    logs: &Path,
    name: &str,
    env: impl IntoIterator<Item = (K, V)>,
) -> Proc {
    let out = logs.join(format!("{name}.out"));
    let err = logs.join(format!("{name}.err"));
    let mut cmd = Command::new(ARKKU_BIN);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ARKKU_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    Proc {
        child: cmd.spawn().expect("start arkku"),
        out,
        err,
        what: args.join(" "),
    }
}

/// A child `arkku` process that is killed when dropped (also when a test panics).
pub struct Proc {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    what: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// What a finished command left.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Asserts the command failed.
    #[track_caller]
    pub fn assert_failed(&self) {
        assert!(
            !self.status.success(),
            "expected a failure\nstdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
    }
}

impl Proc {
    /// What the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// What the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Sends SIGKILL and reaps the process.
    pub fn sigkill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    /// Sends SIGTERM (with kill(1): the crate forbids unsafe code, so no
    /// libc call) and returns at once; [`Proc::wait_exit`] reaps it.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(status.success(), "kill -TERM {}: {status}", self.child.id());
    }

    /// Fails the test if the process has exited.
    #[track_caller]
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!(
                "arkku {} exited with {status}\nstderr: {}",
                self.what,
                self.stderr()
            );
        }
    }

    /// Waits for the process to exit; fails the test if it takes longer than `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "arkku {} still runs after {limit:?}\nstderr: {}",
                self.what,
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (up to [`EXIT_LIMIT`]) for the process to exit and returns what it left.
    pub async fn finish(mut self) -> Ran {
        let status = self.wait_exit(EXIT_LIMIT).await;
        Ran {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    /// Polls `GET base/healthz` until it answers 200; fails the test if the
    /// server exits or does not answer within `limit`.
    pub async fn wait_healthy(&mut self, base: &str, limit: Duration) {
        let client = Client::builder()
            .timeout(Duration::from_millis(500))
            .build()
            .expect("client");
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "arkku {} exited with {status} before answering\nstderr: {}",
                    self.what,
                    self.stderr()
                );
            }
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
                assert_eq!(r.status(), StatusCode::OK, "/healthz");
                return;
            }
            assert!(
                start.elapsed() < limit,
                "arkku {} did not answer /healthz within {limit:?}\nstderr: {}",
                self.what,
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

// --- several processes on one vault ------------------------------------------

/// How long `serve` may take to answer /healthz (other tests share the two cores).
pub const START_LIMIT: Duration = Duration::from_secs(15);

/// A running `arkku serve`.
pub struct Server {
    pub proc: Proc,
    pub base: String,
}

/// One data dir and one database for any number of `arkku` processes: they
/// share the root, issuer and audit keys and the database.
pub struct Env {
    /// The working directory of every child.
    pub dir: TempDir,
    pub data: PathBuf,
    pub database_url: String,
    runs: std::sync::atomic::AtomicU32,
}

impl Env {
    pub async fn new(b: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let database_url = match b {
            Backend::Sqlite => format!("sqlite://{}", data.join("arkku.db").display()),
            Backend::Postgres => fresh_postgres_database().await,
        };
        Env {
            dir,
            data,
            database_url,
            runs: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Starts `arkku args…` with only this environment's `ARKKU_*` settings
    /// and `extra`.
    pub fn spawn(&self, args: &[&str], extra: &[(&str, &str)]) -> Proc {
        let n = self.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let logs = self.dir.path().join("logs");
        std::fs::create_dir_all(&logs).expect("logs dir");
        let own = [
            ("ARKKU_DATA_DIR", self.data.as_os_str()),
            ("ARKKU_DATABASE_URL", OsStr::new(&self.database_url)),
        ];
        let clock = clock_env(self.dir.path());
        let extra = extra.iter().map(|&(k, v)| (k, OsStr::new(v)));
        spawn_arkku(
            args,
            self.dir.path(),
            &logs,
            &n.to_string(),
            own.into_iter()
                .chain(clock.iter().map(|(k, v)| (*k, v.as_os_str())))
                .chain(extra),
        )
    }

    /// Runs `arkku args…` to completion.
    pub async fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Ran {
        self.spawn(args, extra).finish().await
    }

    /// Runs `arkku args…` and asserts it succeeded.
    pub async fn run_ok(&self, args: &[&str], extra: &[(&str, &str)]) -> Ran {
        let r = self.run(args, extra).await;
        assert!(
            r.status.success(),
            "arkku {} failed: {}\nstdout: {}\nstderr: {}",
            args.join(" "),
            r.status,
            r.stdout,
            r.stderr
        );
        r
    }

    /// Starts `arkku serve` on a free port and waits until it answers.
    pub async fn serve(&self) -> Server {
        self.serve_with(&[]).await
    }

    /// [`Env::serve`] with more environment variables.
    pub async fn serve_with(&self, extra: &[(&str, &str)]) -> Server {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut env = vec![("ARKKU_LISTEN", listen.as_str())];
        env.extend_from_slice(extra);
        let mut proc = self.spawn(&["serve"], &env);
        let base = format!("http://{listen}");
        proc.wait_healthy(&base, START_LIMIT).await;
        Server { proc, base }
    }

    /// Runs `arkku audit verify`; asserts exit 0 and returns its JSON report.
    pub async fn verify_ok(&self) -> Value {
        let Ran {
            status,
            stdout,
            stderr,
        } = self.run(&["audit", "verify"], &[]).await;
        assert!(
            status.success(),
            "arkku audit verify failed: {status}\nstdout: {stdout}\nstderr: {stderr}"
        );
        let report: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("audit verify prints a JSON report ({e}): {stdout}"));
        assert_eq!(report["ok"], true, "{stdout}");
        report
    }

    /// The database, opened directly.
    pub async fn db(&self) -> Db {
        Db::connect(&self.database_url).await.expect("connect")
    }

    /// The shared issuer key (what `arkku token` signs with).
    pub fn issuer_key(&self) -> SecretKey {
        load_key_file(&self.data.join("issuer.key")).expect("issuer key")
    }

    /// The root key file.
    pub fn root_key_file(&self) -> PathBuf {
        self.data.join("root.key")
    }
}
