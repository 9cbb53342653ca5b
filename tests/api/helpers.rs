//! The test harness: a fresh vault per test on a port-0 server, one helper
//! per endpoint, and direct database access for sabotage tests.

use std::{future::Future, pin::Pin, time::Duration};

use arkku::{
    config::Config,
    crypto::load_key_file,
    domain::{ChannelId, Role},
    store::Db,
    token::{self, TokenRequest},
    AppState,
};
use reqwest::{Client, Method, Response, StatusCode};
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
    let state = arkku::app::open(config).await.expect("vault starts");
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
        client: Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        state,
        database_url,
        dir,
        shutdown: Some(tx),
    }
}

/// A response read whole: status, headers and body as JSON (or Null).
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

impl Reply {
    async fn from(r: Response) -> Self {
        let status = r.status();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = r.text().await.expect("body");
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            text,
            json,
        }
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

    /// A valid token.
    pub fn token(&self, t: Tok<'_>) -> String {
        let purposes: Vec<String> = t.purposes.iter().map(|s| s.to_string()).collect();
        let channel = t.channel.map(|c| ChannelId::parse(c).expect("channel"));
        token::issue(
            &self.issuer_key(),
            arkku::config::LOCAL_ISSUER,
            arkku::config::AUDIENCE,
            &TokenRequest {
                role: t.role,
                sub: t.sub,
                purposes: &purposes,
                channel: channel.as_ref(),
                ttl: Duration::from_secs(3600),
            },
        )
        .expect("token")
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

    /// An integration (service role) with purpose `support`.
    pub fn service(&self) -> String {
        self.token(Tok {
            role: Role::Service,
            sub: "crm-sync",
            purposes: &["support"],
            channel: None,
        })
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
        Reply::from(rb.send().await.expect("request sent")).await
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
        Reply::from(rb.send().await.expect("request sent")).await
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

    /// Number of audit entries.
    pub async fn audit_count(&self) -> i64 {
        arkku::on_db!(self.db(), pool => sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_log").fetch_one(pool).await)
            .expect("count")
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
