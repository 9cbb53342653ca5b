//! The `arkku` binary (README, "Command line"), run as a user would:
//! a fresh working directory, no `ARKKU_*` from the outside, and every child
//! process killed when the test ends, pass or fail.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::helpers::{
    db_scalar, free_port, fresh_postgres_database, spawn_arkku, Backend, Proc, Ran, Scenario,
};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        serve_without_configuration_creates_private_keys_warns_and_serves_a_cli_token,
        serve_refuses_a_root_key_file_readable_by_group_or_others,
        without_automatic_keys_serve_refuses_to_start_and_creates_nothing,
        policy_check_passes_the_shipped_policies_and_names_file_key_and_reason_of_a_broken_one,
        policy_check_names_file_key_reason_and_value_for_every_kind_of_bad_value,
        policy_check_refuses_consent_recorders_the_vault_does_not_allow,
        migrate_succeeds_and_running_it_twice_changes_nothing,
        keys_init_then_status_lists_every_channel_and_the_profile_at_version_1,
        the_listen_address_and_data_dir_come_from_a_flag_or_its_env_twin,
        every_global_flag_has_an_env_twin_and_the_flag_wins,
        token_refuses_an_unknown_role_purpose_or_channel,
    ]
}

/// How long `serve` may take to answer /healthz, or to refuse to start.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A working directory and environment for the binary. On PostgreSQL it
/// carries `ARKKU_DATABASE_URL` of a fresh database; on SQLite the default
/// (a file under the data dir) is left alone.
struct Cli {
    /// The working directory (starts empty).
    dir: TempDir,
    /// stdout and stderr of the children, kept outside the working directory.
    logs: TempDir,
    vars: Vec<(String, String)>,
    database_url: Option<String>,
    runs: AtomicU32,
}

impl Cli {
    async fn new(b: Backend) -> Self {
        let database_url = match b {
            Backend::Sqlite => None,
            Backend::Postgres => Some(fresh_postgres_database().await),
        };
        let mut vars = Vec::new();
        if let Some(url) = &database_url {
            vars.push(("ARKKU_DATABASE_URL".to_owned(), url.clone()));
        }
        Cli {
            dir: tempfile::tempdir().expect("tempdir"),
            logs: tempfile::tempdir().expect("tempdir"),
            vars,
            database_url,
            runs: AtomicU32::new(0),
        }
    }

    /// Adds an environment variable for every later command.
    fn env(mut self, key: &str, value: impl Into<String>) -> Self {
        self.vars.push((key.to_owned(), value.into()));
        self
    }

    /// A path inside the working directory.
    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Starts `arkku args…` with the test's environment plus `extra`.
    fn spawn(&self, args: &[&str], extra: &[(&str, &str)]) -> Proc {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        let vars = self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        let env = vars.chain(extra.iter().copied());
        spawn_arkku(args, self.dir.path(), self.logs.path(), &n.to_string(), env)
    }

    /// Runs `arkku args…` to completion.
    async fn run(&self, args: &[&str], extra: &[(&str, &str)]) -> Ran {
        self.spawn(args, extra).finish().await
    }

    /// Runs `arkku args…` and asserts it succeeded.
    async fn run_ok(&self, args: &[&str], extra: &[(&str, &str)]) -> Ran {
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
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Asserts a generated key file: 64 lowercase hex characters and a newline, mode 0600.
#[track_caller]
fn assert_key_file(path: &Path) -> String {
    assert_eq!(mode(path), 0o600, "{} must be mode 0600", path.display());
    let text = std::fs::read_to_string(path).expect("key file");
    let hex = text.strip_suffix('\n').unwrap_or(&text);
    assert_eq!(hex.len(), 64, "{}", path.display());
    assert!(
        hex.chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{} holds hex",
        path.display()
    );
    hex.to_owned()
}

/// The token printed by `arkku token`: the last line of stdout.
#[track_caller]
fn token_of(r: &Ran) -> String {
    let token = r.stdout.lines().last().expect("a line of output").trim();
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWT on the last line: {}", r.stdout);
    assert!(
        parts.iter().all(|p| !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')),
        "{token}"
    );
    token.to_owned()
}

/// A pristine copy of the shipped policies in `dir`.
fn copy_policies(dir: &Path) {
    std::fs::create_dir_all(dir).expect("mkdir");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    for name in ["channels.toml", "purposes.toml"] {
        std::fs::copy(shipped.join(name), dir.join(name)).expect("copy policy");
    }
}

/// The files and directories directly in `dir`.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

async fn serve_without_configuration_creates_private_keys_warns_and_serves_a_cli_token(b: Backend) {
    let cli = Cli::new(b).await;
    assert!(entries(cli.dir.path()).is_empty());
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    let mut server = cli.spawn(&["serve"], &[("ARKKU_LISTEN", &listen)]);
    server.wait_healthy(&base, START_LIMIT).await;

    // Keys in ./arkku-data, owner-only.
    let data = cli.path("arkku-data");
    assert!(data.is_dir(), "./arkku-data is created");
    assert_eq!(mode(&data), 0o700, "the data dir is private");
    let root = assert_key_file(&data.join("root.key"));
    let issuer = assert_key_file(&data.join("issuer.key"));
    assert_ne!(root, issuer, "two independent keys");
    match b {
        Backend::Sqlite => assert!(data.join("arkku.db").is_file(), "the embedded database"),
        Backend::Postgres => assert!(!data.join("arkku.db").exists(), "PostgreSQL is used"),
    }

    // A loud warning about the generated root key, without the key.
    let log = server.stderr();
    assert!(
        log.contains("WARN") && log.contains("GENERATED A NEW ROOT KEY"),
        "{log}"
    );
    assert!(log.contains("arkku-data/root.key"), "names the file: {log}");
    assert!(
        !log.contains(&root) && !log.contains(&issuer),
        "keys never reach the log"
    );

    // A token from `arkku token` (same directory, same issuer key) works on the server.
    let ran = cli
        .run_ok(
            &[
                "token",
                "--role",
                "agent",
                "--sub",
                "a",
                "--purposes",
                "support",
                "--channel",
                "phone",
            ],
            &[],
        )
        .await;
    let token = token_of(&ran);
    assert_eq!(
        assert_key_file(&data.join("issuer.key")),
        issuer,
        "token reuses the issuer key"
    );

    let client = Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let r = client
        .post(format!("{base}/v1/customers"))
        .json(&json!({
            "display_name": "Kalle Kokeilu",
            "contacts": [{"channel": "phone", "value": "040 123 4567"}]
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "the API needs a token"
    );
    let r = client
        .post(format!("{base}/v1/customers"))
        .bearer_auth(&token)
        .json(&json!({
            "display_name": "Kalle Kokeilu",
            "contacts": [{"channel": "phone", "value": "040 123 4567"}]
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.expect("json");
    let id = created["id"].as_str().expect("id");
    let r = client
        .get(format!("{base}/v1/customers/{id}?purpose=support"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), StatusCode::OK);
    let profile: Value = r.json().await.expect("json");
    assert_eq!(profile["id"], id);
    assert_eq!(profile["display_name"], "Kalle Kokeilu");
    assert_eq!(profile["contacts"][0]["channel"], "phone");
    assert_eq!(profile["contacts"][0]["value"], "+358*******67");
}

async fn serve_refuses_a_root_key_file_readable_by_group_or_others(b: Backend) {
    let cli = Cli::new(b).await;
    let data = cli.path("data");
    let cli = cli.env("ARKKU_DATA_DIR", data.display().to_string());
    std::fs::create_dir_all(&data).expect("mkdir");
    let key = data.join("root.key");
    let content = format!("{}\n", "5a".repeat(32));
    std::fs::write(&key, &content).expect("write key");
    for bad in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(bad)).expect("chmod");
        let listen = format!("127.0.0.1:{}", free_port());
        let mut server = cli.spawn(&["serve"], &[("ARKKU_LISTEN", &listen)]);
        let status = server.wait_exit(START_LIMIT).await;
        let err = server.stderr();
        assert!(!status.success(), "mode {bad:04o} must be refused: {err}");
        assert!(
            err.contains(&key.display().to_string()),
            "names the file: {err}"
        );
        assert!(
            err.contains(&format!("{bad:04o}")),
            "names the permissions: {err}"
        );
        assert!(
            !err.contains(&"5a".repeat(32)),
            "never prints the key: {err}"
        );
        assert_eq!(
            std::fs::read_to_string(&key).expect("key"),
            content,
            "the key file is left alone"
        );
        assert_eq!(mode(&key), bad, "the mode is not silently fixed");
    }
    // Control: the same file with mode 0600 is accepted.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = cli.spawn(&["serve"], &[("ARKKU_LISTEN", &listen)]);
    server
        .wait_healthy(&format!("http://{listen}"), START_LIMIT)
        .await;
}

async fn without_automatic_keys_serve_refuses_to_start_and_creates_nothing(b: Backend) {
    let cli = Cli::new(b).await;
    let listen = format!("127.0.0.1:{}", free_port());
    type Variant<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let variants: [Variant; 3] = [
        (&["serve", "--no-auto-keys"], &[]),
        (&["serve"], &[("ARKKU_AUTO_KEYS", "false")]),
        (&["serve", "--auto-keys", "false"], &[]),
    ];
    for (args, extra) in variants {
        let mut env = vec![("ARKKU_LISTEN", listen.as_str())];
        env.extend_from_slice(extra);
        let mut server = cli.spawn(args, &env);
        let status = server.wait_exit(START_LIMIT).await;
        let err = server.stderr();
        let what = format!("{} {extra:?}", args.join(" "));
        assert!(!status.success(), "{what} must refuse: {err}");
        assert!(err.contains("root.key"), "{what} names the key file: {err}");
        assert!(
            err.contains("automatic key creation is off"),
            "{what} says why: {err}"
        );
        assert_eq!(
            entries(cli.dir.path()),
            Vec::<String>::new(),
            "{what} creates nothing"
        );
    }
    if let Some(url) = &cli.database_url {
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_one(&pool)
        .await
        .expect("count tables");
        pool.close().await;
        assert_eq!(tables, 0, "nothing is created in the database either");
    }
}

async fn policy_check_passes_the_shipped_policies_and_names_file_key_and_reason_of_a_broken_one(
    b: Backend,
) {
    let cli = Cli::new(b).await;
    let good = cli.path("good");
    copy_policies(&good);
    let r = cli
        .run_ok(
            &["policy", "check", "--policies", &good.display().to_string()],
            &[],
        )
        .await;
    assert!(r.stdout.contains("policies ok"), "{}", r.stdout);
    // The built-in copy (no ./policies here) is the same set.
    let r = cli.run_ok(&["policy", "check"], &[]).await;
    assert!(r.stdout.contains("policies ok"), "{}", r.stdout);

    let broken = cli.path("broken");
    copy_policies(&broken);
    let file = broken.join("channels.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    let email = text.find("[channels.email]").expect("email table");
    let at = email
        + text[email..]
            .find("integration = \"consent\"")
            .expect("email integration");
    let text = format!(
        "{}integration = \"sometimes\"{}",
        &text[..at],
        &text[at + "integration = \"consent\"".len()..]
    );
    std::fs::write(&file, text).expect("write");

    let by_flag = cli
        .run(
            &[
                "policy",
                "check",
                "--policies",
                &broken.display().to_string(),
            ],
            &[],
        )
        .await;
    let broken_dir = broken.display().to_string();
    let by_env = cli
        .run(&["policy", "check"], &[("ARKKU_POLICIES", &broken_dir)])
        .await;
    for r in [&by_flag, &by_env] {
        r.assert_failed();
        assert!(
            r.stderr.contains(&file.display().to_string()),
            "names the file: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("channels.email.integration"),
            "names the key: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("unknown integration mode \"sometimes\""),
            "says why, naming the value: {}",
            r.stderr
        );
    }

    // And serve refuses the same broken policies before listening.
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = cli.spawn(
        &["serve", "--policies", &broken_dir],
        &[("ARKKU_LISTEN", &listen)],
    );
    let status = server.wait_exit(START_LIMIT).await;
    let err = server.stderr();
    assert!(!status.success(), "{err}");
    assert!(err.contains("channels.email.integration"), "{err}");
}

async fn policy_check_names_file_key_reason_and_value_for_every_kind_of_bad_value(b: Backend) {
    let cli = Cli::new(b).await;
    // (file, text replaced, replacement, key named, reason and value named;
    // a long value is cut at 40 characters)
    let cases = [
        (
            "channels.toml",
            "kind = \"phone\"",
            "kind = \"pigeon\"",
            "channels.phone.kind",
            "unknown kind \"pigeon\"",
        ),
        (
            "channels.toml",
            "contact_retention = \"365d\"",
            "contact_retention = \"a while\"",
            "contact_retention",
            "\"a while\" is not a duration",
        ),
        (
            "channels.toml",
            "transcript = \"30d\"",
            "transcript = \"30 fortnights\"",
            "interactions.transcript",
            "\"30 fortnights\" is not a duration",
        ),
        (
            "channels.toml",
            "integration = \"consent\"",
            "integration = \"maybe\"",
            "channels.email.integration",
            "unknown integration mode \"maybe\"",
        ),
        (
            "channels.toml",
            "sign_in = true",
            "sign_in = \"yes\"",
            "channels.email.sign_in",
            "must be true or false, not \"yes\"",
        ),
        (
            "purposes.toml",
            "[purposes.dsr]",
            "[purposes.dsr_old]",
            "purposes.dsr",
            "must exist",
        ),
        (
            "purposes.toml",
            "roles = [\"compliance\", \"customer\"]",
            "roles = [\"compliance\", \"janitor\"]",
            "purposes.dsr.roles",
            "unknown role \"janitor\"",
        ),
        (
            "purposes.toml",
            "max_age = \"365d\"",
            "max_age = \"soon\"",
            "purposes.cross_channel.max_age",
            "\"soon\" is not a duration",
        ),
        (
            "channels.toml",
            "integration = \"consent\"",
            "integration = true",
            "integration",
            "must be a string, not true",
        ),
        (
            "purposes.toml",
            "lawful_basis = \"contract\"",
            "lawful_basis = \"because the contract says so, and then some more words\"",
            "lawful_basis",
            "unknown lawful basis \"because the contract says so, and then s\"…",
        ),
    ];
    for (i, (name, from, to, key, reason)) in cases.into_iter().enumerate() {
        let dir = cli.path(&format!("bad-{i}"));
        copy_policies(&dir);
        let file = dir.join(name);
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.contains(from), "{name} has no {from:?}");
        std::fs::write(&file, text.replacen(from, to, 1)).expect("write");
        let r = cli
            .run(
                &["policy", "check", "--policies", &dir.display().to_string()],
                &[],
            )
            .await;
        r.assert_failed();
        for needle in [&file.display().to_string(), key, reason] {
            assert!(
                r.stderr.contains(needle),
                "case {i}: {needle:?} not in {}",
                r.stderr
            );
        }
    }
}

/// Who may record consent is policy, checked before the server starts: a
/// service (no customer in front of it) or an admin is refused, and so is an
/// immediate attestation that is not a plain boolean.
async fn policy_check_refuses_consent_recorders_the_vault_does_not_allow(b: Backend) {
    let cli = Cli::new(b).await;
    let recorders = "consent_recorders = [\"agent\", \"compliance\"]";
    let cases = [
        (
            "consent_recorders = [\"agent\", \"service\"]",
            "purposes.cross_channel.consent_recorders",
            "\"service\" may not record consent",
        ),
        (
            "consent_recorders = [\"admin\"]",
            "purposes.cross_channel.consent_recorders",
            "\"admin\" may not record consent",
        ),
        (
            "consent_recorders = [\"compliance\"]\nimmediate_agent_attestation = true",
            "purposes.cross_channel.immediate_agent_attestation",
            "agents do not record consent",
        ),
    ];
    for (i, (to, key, reason)) in cases.into_iter().enumerate() {
        let dir = cli.path(&format!("recorders-{i}"));
        copy_policies(&dir);
        let file = dir.join("purposes.toml");
        let text = std::fs::read_to_string(&file).expect("read");
        assert!(text.contains(recorders), "no {recorders:?}");
        let text = text.replacen(recorders, to, 1).replacen(
            "immediate_agent_attestation = false\n",
            "",
            1,
        );
        std::fs::write(&file, text).expect("write");
        let r = cli
            .run(
                &["policy", "check", "--policies", &dir.display().to_string()],
                &[],
            )
            .await;
        r.assert_failed();
        for needle in [key, reason] {
            assert!(
                r.stderr.contains(needle),
                "case {i}: {needle:?} not in {}",
                r.stderr
            );
        }
    }
}

async fn migrate_succeeds_and_running_it_twice_changes_nothing(b: Backend) {
    let cli = Cli::new(b).await;
    let data = cli.path("data");
    let cli = cli.env("ARKKU_DATA_DIR", data.display().to_string());
    for _ in 0..2 {
        let r = cli.run_ok(&["migrate"], &[]).await;
        assert!(r.stdout.contains("migrations applied"), "{}", r.stdout);
    }
    let url = match &cli.database_url {
        Some(url) => url.clone(),
        None => {
            let file = data.join("arkku.db");
            assert!(file.is_file(), "migrate creates the SQLite database");
            format!("sqlite://{}", file.display())
        }
    };
    let migrations = std::fs::read_dir(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(b.name()),
    )
    .expect("migrations")
    .count() as i64;
    let db = arkku::store::Db::connect(&url).await.expect("connect");
    let applied = db_scalar(&db, "SELECT COUNT(*) FROM _sqlx_migrations WHERE success").await;
    assert_eq!(applied, migrations, "each migration applied once");
    let customers = db_scalar(&db, "SELECT COUNT(*) FROM customers").await;
    assert_eq!(customers, 0);
}

/// Rows of `arkku keys status`: (domain, version, data_keys). The table is
/// `domain version data_keys created_at age state`, ended by a blank line
/// before the root key file.
pub fn key_status(stdout: &str) -> Vec<(String, String, String)> {
    let mut lines = stdout.lines();
    let header = lines.next().expect("header");
    assert!(
        header.contains("domain") && header.contains("version") && header.contains("state"),
        "{stdout}"
    );
    let mut rows: Vec<(String, String, String)> = lines
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(cols.len(), 6, "{l}");
            (cols[0].to_owned(), cols[1].to_owned(), cols[2].to_owned())
        })
        .collect();
    rows.sort();
    assert!(
        stdout.contains("root key file: "),
        "names the root key file: {stdout}"
    );
    rows
}

async fn keys_init_then_status_lists_every_channel_and_the_profile_at_version_1(b: Backend) {
    let cli = Cli::new(b).await;
    let data = cli.path("data");
    let cli = cli.env("ARKKU_DATA_DIR", data.display().to_string());
    cli.run_ok(&["keys", "init"], &[]).await;
    let root = assert_key_file(&data.join("root.key"));
    assert_key_file(&data.join("issuer.key"));

    let r = cli.run_ok(&["keys", "status"], &[]).await;
    // `_index` holds the blind-index key (wrapped under the root like a channel key).
    let mut expected: Vec<(String, String, String)> = [
        "_index",
        "_profile",
        "chat",
        "email",
        "instagram",
        "messenger",
        "phone",
        "postal",
        "sms",
        "whatsapp",
    ]
    .iter()
    .map(|d| (d.to_string(), "1".to_owned(), "0".to_owned()))
    .collect();
    expected.sort();
    assert_eq!(key_status(&r.stdout), expected, "{}", r.stdout);

    // A second init keeps what exists.
    cli.run_ok(&["keys", "init"], &[]).await;
    assert_eq!(assert_key_file(&data.join("root.key")), root);
    let r = cli.run_ok(&["keys", "status"], &[]).await;
    assert_eq!(key_status(&r.stdout), expected, "{}", r.stdout);
}

async fn the_listen_address_and_data_dir_come_from_a_flag_or_its_env_twin(b: Backend) {
    // By flag.
    let cli = Cli::new(b).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = cli.spawn(
        &["serve", "--listen", &listen, "--data-dir", "by-flag"],
        &[],
    );
    server
        .wait_healthy(&format!("http://{listen}"), START_LIMIT)
        .await;
    assert_key_file(&cli.path("by-flag").join("root.key"));
    assert_eq!(entries(cli.dir.path()), ["by-flag"]);
    drop(server);

    // By environment (a fresh directory and database: the keys differ).
    let cli = Cli::new(b).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let mut server = cli.spawn(
        &["serve"],
        &[("ARKKU_LISTEN", &listen), ("ARKKU_DATA_DIR", "by-env")],
    );
    server
        .wait_healthy(&format!("http://{listen}"), START_LIMIT)
        .await;
    assert_key_file(&cli.path("by-env").join("root.key"));
    assert_eq!(entries(cli.dir.path()), ["by-env"]);
}

async fn every_global_flag_has_an_env_twin_and_the_flag_wins(b: Backend) {
    let cli = Cli::new(b).await;
    let help = cli.run_ok(&["serve", "--help"], &[]).await.stdout;
    // Split the help into one block per option.
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in help.lines() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("--").or_else(|| {
            t.strip_prefix("-h, --")
                .or_else(|| t.strip_prefix("-V, --"))
        }) {
            let flag = rest.split([' ', '=', '<']).next().unwrap_or("").to_owned();
            blocks.push((flag, line.to_owned()));
        } else if let Some((_, text)) = blocks.last_mut() {
            text.push_str(line);
        }
    }
    let flags: Vec<&str> = blocks.iter().map(|(f, _)| f.as_str()).collect();
    for expected in [
        "listen",
        "database",
        "data-dir",
        "policies",
        "root-key-file",
        "issuer-key-file",
        "default-region",
        "auto-keys",
    ] {
        assert!(flags.contains(&expected), "--{expected} in {help}");
    }
    for (flag, text) in &blocks {
        // --no-auto-keys is the flag form of ARKKU_AUTO_KEYS=false (tested elsewhere).
        if matches!(flag.as_str(), "help" | "version" | "no-auto-keys") {
            continue;
        }
        assert!(
            text.contains("[env: ARKKU_"),
            "--{flag} has no ARKKU_* twin: {text}"
        );
    }

    // The issuer key file by flag and by env; the flag beats the env.
    let token = ["token", "--role", "admin", "--sub", "op"];
    cli.run_ok(
        &[&token[..], &["--issuer-key-file", "flag.key"]].concat(),
        &[],
    )
    .await;
    assert_key_file(&cli.path("flag.key"));
    cli.run_ok(&token, &[("ARKKU_ISSUER_KEY_FILE", "env.key")])
        .await;
    assert_key_file(&cli.path("env.key"));
    cli.run_ok(
        &[&token[..], &["--issuer-key-file", "flag-wins.key"]].concat(),
        &[("ARKKU_ISSUER_KEY_FILE", "env-loses.key")],
    )
    .await;
    assert!(cli.path("flag-wins.key").is_file());
    assert!(!cli.path("env-loses.key").exists());
    // Same for the data dir.
    cli.run_ok(
        &[&token[..], &["--data-dir", "dir-flag"]].concat(),
        &[("ARKKU_DATA_DIR", "dir-env")],
    )
    .await;
    assert_key_file(&cli.path("dir-flag").join("issuer.key"));
    assert!(!cli.path("dir-env").exists());

    // The default region: a bad one is refused by flag and by env, naming the setting.
    let r = cli
        .run(&[&token[..], &["--default-region", "XX"]].concat(), &[])
        .await;
    r.assert_failed();
    assert!(r.stderr.contains("ARKKU_DEFAULT_REGION"), "{}", r.stderr);
    let r = cli.run(&token, &[("ARKKU_DEFAULT_REGION", "XX")]).await;
    r.assert_failed();
    assert!(r.stderr.contains("ARKKU_DEFAULT_REGION"), "{}", r.stderr);
    cli.run_ok(&token, &[("ARKKU_DEFAULT_REGION", "SE")]).await;

    // The display zone likewise: an unknown IANA name refuses to start.
    let r = cli
        .run(
            &[&token[..], &["--display-timezone", "Mars/Olympus"]].concat(),
            &[],
        )
        .await;
    r.assert_failed();
    assert!(r.stderr.contains("ARKKU_DISPLAY_TIMEZONE"), "{}", r.stderr);
    assert!(r.stderr.contains("Mars/Olympus"), "{}", r.stderr);
    let r = cli
        .run(&token, &[("ARKKU_DISPLAY_TIMEZONE", "Helsinki")])
        .await;
    r.assert_failed();
    assert!(r.stderr.contains("unknown time zone"), "{}", r.stderr);
    cli.run_ok(&token, &[("ARKKU_DISPLAY_TIMEZONE", "UTC")])
        .await;
}

async fn token_refuses_an_unknown_role_purpose_or_channel(b: Backend) {
    let cli = Cli::new(b).await;
    let data = cli.path("data");
    let cli = cli.env("ARKKU_DATA_DIR", data.display().to_string());
    let cases: [(&[&str], &str); 4] = [
        (&["--role", "wizard", "--sub", "a"], "unknown role"),
        (
            &["--role", "agent", "--sub", "a", "--purposes", "astrology"],
            "unknown purpose",
        ),
        (
            &[
                "--role",
                "service",
                "--sub",
                "a",
                "--purposes",
                "support,astrology",
            ],
            "unknown purpose",
        ),
        // A well-formed channel name that channels.toml does not define.
        (
            &["--role", "agent", "--sub", "a", "--channel", "pigeon"],
            "unknown channel",
        ),
    ];
    for (args, reason) in cases {
        let r = cli.run(&[&["token"][..], args].concat(), &[]).await;
        r.assert_failed();
        assert!(r.stderr.contains(reason), "{args:?}: {}", r.stderr);
        assert!(
            !r.stdout.contains("eyJ"),
            "{args:?} prints no token: {}",
            r.stdout
        );
    }
    // Control: the same command with a known role and purposes prints a token.
    let r = cli
        .run_ok(
            &[
                "token",
                "--role",
                "service",
                "--sub",
                "a",
                "--purposes",
                "support,dsr",
            ],
            &[],
        )
        .await;
    token_of(&r);
}
