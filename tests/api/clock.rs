//! The test clock: time rules that tests reach by moving the vault's clock
//! (`ARKKU_TEST_CLOCK_FILE` for the real binary, the same file for the
//! in-process server) instead of sleeping. Token expiry, the tokens `arkku
//! token` signs, and retention sweeps of `arkku retention run` and of
//! `serve` all read it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, Env, Scenario, TestApp, Tok, START_LIMIT};
use crate::scenarios;
use arkku::domain::Role;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_token_is_refused_once_the_clock_passes_its_expiry,
        arkku_token_signs_on_its_clock_and_a_vault_behind_it_refuses_the_token,
        a_consent_lapses_on_the_ledger_once_the_clock_passes_its_expiry,
        retention_run_sweeps_as_of_the_clock,
        serve_sweeps_as_of_its_clock,
    ]
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// A request any valid service token may make: the read of a customer that
/// does not exist (404), or 401 when the token is refused.
async fn read_status(app: &TestApp, token: &str) -> StatusCode {
    app.read_customer(token, &uuid::Uuid::now_v7().to_string(), "purpose=support")
        .await
        .status
}

/// `arkku token` for a service with purpose `support`: its token, and what it
/// logged.
async fn cli_token(app: &TestApp) -> (String, String) {
    let r = app
        .cli(&[
            "token",
            "--role",
            "service",
            "--sub",
            "crm-sync",
            "--purposes",
            "support",
        ])
        .await;
    assert!(r.status.success(), "{}", r.stderr);
    let token = r.stdout.lines().last().expect("a token").trim().to_owned();
    (token, r.stderr)
}

async fn a_token_is_refused_once_the_clock_passes_its_expiry(b: Backend) {
    // Arrange: a token valid for an hour.
    let app = spawn_app(b).await;
    let token = app.service();
    assert_eq!(read_status(&app, &token).await, StatusCode::NOT_FOUND);

    // Act: half an hour later it still works; two hours later it has expired.
    app.set_clock_ahead(HOUR / 2);
    let within = read_status(&app, &token).await;
    app.set_clock_ahead(2 * HOUR);
    let after = app
        .read_customer(&token, &uuid::Uuid::now_v7().to_string(), "purpose=support")
        .await;

    // Assert
    assert_eq!(within, StatusCode::NOT_FOUND);
    after.assert_problem(401, "unauthenticated");
}

async fn arkku_token_signs_on_its_clock_and_a_vault_behind_it_refuses_the_token(b: Backend) {
    // Arrange: the vault and its CLI two hours ahead.
    let app = spawn_app(b).await;
    app.set_clock_ahead(2 * HOUR);

    // Act: a token from `arkku token` on that clock, used on it and then on
    // the system time again.
    let (token, stderr) = cli_token(&app).await;
    let ahead = read_status(&app, &token).await;
    app.set_clock_ahead(Duration::ZERO);
    let behind = read_status(&app, &token).await;

    // Assert: a debug build says that its time comes from a file; the token
    // is good on the clock it was made on, and not yet valid two hours before.
    assert!(stderr.contains("ARKKU_TEST_CLOCK_FILE"), "{stderr}");
    assert_eq!(ahead, StatusCode::NOT_FOUND);
    assert_eq!(behind, StatusCode::UNAUTHORIZED);
}

async fn a_consent_lapses_on_the_ledger_once_the_clock_passes_its_expiry(b: Backend) {
    // Arrange: the customer grants cross_channel on e-mail for an hour.
    let app = spawn_app(b).await;
    let id = app
        .create_customer_ok(
            &app.service(),
            json!({"contacts": [{"channel": "email", "value": "kaisa@example.com"}]}),
        )
        .await;
    let me = |app: &TestApp| {
        app.token(Tok {
            role: Role::Customer,
            sub: &id,
            purposes: &[],
            channel: None,
        })
    };
    let until = app.state.clock.now() + time::Duration::hours(1);
    let grant = json!({"purpose": "cross_channel", "channel": "email", "action": "grant",
        "method": "web_form", "evidence": {"notice_id": "privacy-2026", "notice_version": "3"},
        "expires_at": arkku::domain::time::rfc3339(until)});
    let r = app
        .request(
            Method::POST,
            "/v1/me/consents",
            Some(&me(&app)),
            Some(grant),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let status = async |app: &TestApp| {
        let r = app
            .request(Method::GET, "/v1/me/consents", Some(&me(app)), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json["current"][0]["status"].clone()
    };

    // Act
    let before = status(&app).await;
    app.set_clock_ahead(2 * HOUR);
    let after = status(&app).await;

    // Assert
    assert_eq!(before, "granted");
    assert_eq!(after, "lapsed");
}

/// A customer with one chat contact point (kept 365 days after its last
/// activity by the shipped policy).
async fn chat_customer(app: &TestApp) -> String {
    app.create_customer_ok(
        &app.service(),
        json!({"contacts": [{"channel": "chat", "value": "visitor-7"}]}),
    )
    .await
}

/// `arkku retention run`, as JSON.
async fn retention_run(app: &TestApp) -> Value {
    let r = app.cli(&["retention", "run"]).await;
    assert!(r.status.success(), "{}\n{}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

async fn retention_run_sweeps_as_of_the_clock(b: Backend) {
    // Arrange
    let app = spawn_app(b).await;
    chat_customer(&app).await;

    // Act: a sweep a day later, then one 400 days later (no --now).
    app.set_clock_ahead(DAY);
    let next_day = retention_run(&app).await;
    app.set_clock_ahead(400 * DAY);
    let next_year = retention_run(&app).await;

    // Assert: the contact point lives out its 365 days, then goes with its
    // customer, and the report says as of when.
    assert_eq!(next_day["purged"], 0, "{next_day}");
    assert_eq!(next_year["contacts"], json!({"chat": 1}), "{next_year}");
    assert_eq!(next_year["customers"], 1, "{next_year}");
    assert_eq!(app.count("contacts").await, 0);
    let year = |r: &Value| -> i32 {
        let at = r["now"].as_str().expect("now");
        arkku::domain::time::parse_rfc3339(at)
            .unwrap_or_else(|e| panic!("{e}: {at}"))
            .year()
    };
    let expected = (time::OffsetDateTime::now_utc() + time::Duration::days(400)).year();
    assert_eq!(year(&next_year), expected, "{next_year}");
}

async fn serve_sweeps_as_of_its_clock(b: Backend) {
    // Arrange: a contact point of a customer, and `serve` sweeping often on a
    // clock still at the system time.
    let env = Env::new(b).await;
    env.run_ok(&["migrate"], &[]).await;
    env.set_clock_ahead(Duration::ZERO);
    let server = env
        .serve_with(&[("ARKKU_RETENTION_INTERVAL", "200ms")])
        .await;
    let token = crate::helpers::issue_token(
        &env.issuer_key(),
        Tok {
            role: Role::Service,
            sub: "crm-sync",
            purposes: &["support"],
            channel: None,
        },
    );
    let r = crate::helpers::send(
        crate::helpers::http_client()
            .post(format!("{}/v1/customers", server.base))
            .bearer_auth(&token)
            .json(&json!({"contacts": [{"channel": "chat", "value": "visitor-8"}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let db = env.db().await;
    let contacts = || crate::helpers::db_scalar(&db, "SELECT COUNT(*) FROM contacts");
    // Two more sweeps on today's clock (one of them begun after the write) keep it.
    let sweeps =
        |s: &crate::helpers::Server| s.proc.stderr().matches("retention sweep done").count();
    let seen = sweeps(&server);
    let deadline = std::time::Instant::now() + START_LIMIT;
    while sweeps(&server) < seen + 2 {
        assert!(std::time::Instant::now() < deadline, "serve does not sweep");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(contacts().await, 1, "kept while within retention");

    // Act: the clock moves past the chat retention.
    env.set_clock_ahead(400 * DAY);

    // Assert: the next sweep purges it, with the server still running.
    let deadline = std::time::Instant::now() + START_LIMIT;
    while contacts().await != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not sweep as of its clock"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut server = server;
    server.proc.assert_running();
}
