//! Sign-in through the real `arkku serve`: configured by its environment
//! (`ARKKU_NOTIFY=file`, `ARKKU_NOTIFY_URL`), with its log captured to be
//! searched for the code, and killed and started again with a code still
//! undelivered.

use std::time::{Duration, Instant};

use arkku::{crypto::load_key_file, domain::Role, store::audit::AuditRow};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::support::{assert_signed, body, lines, Receiver, DELIVERY_LIMIT};
use crate::helpers::{
    db_scalar, free_port, http_client, issue_token, send, Backend, Env, Reply, Tok,
};

/// A request to a served vault.
async fn call(
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut rb = http_client().request(method, format!("{base}{path}"));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    send(rb).await
}

/// A CRM integration's token for the vault of `env`.
fn service(env: &Env) -> String {
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

/// Creates a customer with one contact point; its id.
async fn create(base: &str, token: &str, channel: &str, value: &str) -> String {
    let r = call(
        base,
        Method::POST,
        "/v1/customers",
        Some(token),
        Some(json!({"display_name": "Pena", "contacts": [{"channel": channel, "value": value}]})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json["id"].as_str().expect("id").to_owned()
}

async fn start(base: &str, channel: &str, value: &str) -> String {
    let r = call(
        base,
        Method::POST,
        "/v1/auth/customer/start",
        None,
        Some(json!({"channel": channel, "value": value})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    r.json["challenge_id"].as_str().expect("id").to_owned()
}

async fn verify(base: &str, challenge: &str, code: &str) -> Reply {
    call(
        base,
        Method::POST,
        "/v1/auth/customer/verify",
        None,
        Some(json!({"challenge_id": challenge, "code": code})),
    )
    .await
}

/// What the outbox file says of one message, checked line by line.
fn assert_message(line: &Value, to: &str) -> String {
    assert_eq!(line["type"], "sign_in_code");
    assert_eq!(line["channel"], "email");
    assert_eq!(line["to"], to);
    let code = line["code"].as_str().expect("code").to_owned();
    assert!(
        code.len() == 8 && code.bytes().all(|c| c.is_ascii_digit()),
        "{code}"
    );
    let expires = arkku::domain::time::parse_rfc3339(line["expires_at"].as_str().expect("at"))
        .expect("RFC 3339");
    let left = expires - time::OffsetDateTime::now_utc();
    assert!(
        left > time::Duration::minutes(9) && left <= time::Duration::minutes(10),
        "{left}"
    );
    code
}

/// The token reads its own customer's profile and export, and nobody else's.
async fn assert_reads_only_its_own(base: &str, token: &str, own: &str, other: &str) {
    let me = call(base, Method::GET, "/v1/me", Some(token), None).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json["id"], own);
    let export = call(base, Method::GET, "/v1/me/export", Some(token), None).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.text);
    assert!(export.text.contains(own) && !export.text.contains(other));
    for path in [
        format!("/v1/customers/{other}?purpose=support"),
        format!("/v1/customers/{other}/export?purpose=dsr"),
    ] {
        call(base, Method::GET, &path, Some(token), None)
            .await
            .assert_problem(403, "forbidden");
    }
}

/// The audit entries of sign-in: one start naming the customer, an allowed
/// and a refused check.
fn assert_audited(audit: &[AuditRow], customer: &str) {
    let starts: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "auth.sign_in_start")
        .collect();
    assert_eq!(starts.len(), 1);
    assert_eq!(
        starts[0].customer_id.map(|c| c.to_string()).as_deref(),
        Some(customer)
    );
    assert_eq!(
        (starts[0].actor_sub.as_str(), starts[0].actor_role.as_str()),
        ("anonymous", "none")
    );
    let checks: Vec<_> = audit
        .iter()
        .filter(|e| e.action == "auth.sign_in")
        .map(|e| (e.decision.as_str(), e.customer_id.map(|c| c.to_string())))
        .collect();
    let who = Some(customer.to_owned());
    assert_eq!(checks, [("allow", who.clone()), ("deny", who)]);
}

pub async fn a_customer_signs_in_with_the_code_from_the_outbox_file_and_reads_only_their_own_data(
    b: Backend,
) {
    // Arrange: `arkku serve` delivering to the outbox file and logging at
    // debug level; two customers.
    let env = Env::new(b).await;
    let server = env
        .serve_with(&[("ARKKU_NOTIFY", "file"), ("ARKKU_LOG", "debug")])
        .await;
    let base = server.base.as_str();
    let service = service(&env);
    let pena = create(base, &service, "email", "pena.signin@example.com").await;
    let liisa = create(base, &service, "email", "liisa.signin@example.com").await;

    // Act: Pena asks for a code, with the address spelt otherwise, and
    // trades it for a token.
    let challenge = start(base, "email", "  Pena.SignIn@Example.COM ").await;
    let file = env.data.join("outbox.jsonl");
    let code = assert_message(&lines(&file, 1).await[0], "pena.signin@example.com");
    let verified = verify(base, &challenge, &code).await;

    // Assert: the file is owner-only; the token is Pena's, for 15 minutes.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "outbox.jsonl is owner-only");
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.text);
    assert_eq!(verified.header("cache-control"), Some("no-store"));
    assert_eq!(verified.json["token_type"], "Bearer");
    assert_eq!(verified.json["expires_in"], 900);
    let token = verified.json["access_token"].as_str().expect("token");
    assert_reads_only_its_own(base, token, &pena, &liisa).await;
    // The code works once.
    verify(base, &challenge, &code)
        .await
        .assert_problem(400, "invalid_code");

    // No code (and no address) in the log, the audit log or the outbox table.
    let db = env.db().await;
    let audit = arkku::store::audit::entries_after(&db, 0, 1_000_000)
        .await
        .expect("audit");
    let log = format!("{}{}", server.proc.stdout(), server.proc.stderr());
    assert!(
        log.contains("appended a sign-in code message to the outbox file"),
        "{log}"
    );
    for (what, text) in [("log", &log), ("audit log", &format!("{audit:?}"))] {
        assert!(!text.contains(&code), "the code is in the {what}");
        assert!(
            !text.contains("pena.signin@"),
            "the address is in the {what}"
        );
    }
    assert_audited(&audit, &pena);
    let left = db_scalar(&db, "SELECT COUNT(*) FROM notifier_outbox").await;
    assert_eq!(left, 0, "a delivered message leaves the outbox");
}

pub async fn an_undelivered_code_is_delivered_after_a_restart(b: Backend) {
    // Arrange: the receiver is down when the code is asked for.
    let env = Env::new(b).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let mut server = env.serve_with(&[("ARKKU_NOTIFY_URL", &url)]).await;
    create(&server.base, &service(&env), "sms", "040 111 2222").await;
    let challenge = start(&server.base, "sms", "+358401112222").await;
    let deadline = Instant::now() + DELIVERY_LIMIT;
    while !server.proc.stderr().contains("notifier delivery failed") {
        assert!(Instant::now() < deadline, "no delivery attempt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Act: the vault dies; the receiver comes up; the vault starts again.
    server.proc.sigkill();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the receiver's port");
    let receiver = Receiver::on(listener, 0);
    let server = env.serve_with(&[("ARKKU_NOTIFY_URL", &url)]).await;
    let posts = receiver.delivered(1).await;

    // Assert: delivered, signed, and the code signs in.
    let secret = load_key_file(&env.data.join("notify.key")).expect("key");
    assert_signed(&posts[0], secret.expose_secret());
    let message = body(&posts[0]);
    assert_eq!(message["to"], "+358401112222");
    assert_eq!(message["channel"], "sms");
    let code = message["code"].as_str().expect("code");
    let r = verify(&server.base, &challenge, code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        !server.proc.stderr().contains(code),
        "the code is in the log"
    );
}
