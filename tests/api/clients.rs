//! Integration clients: registered with `arkku clients` or by an admin over
//! `/v1/admin/clients`, they get tokens at `POST /oauth/token` and read with
//! them like any caller; a wrong, revoked or rotated-away secret is refused,
//! and a revoked client's tokens are refused on every route and on every
//! node within two seconds.

use std::time::{Duration, Instant};

use arkku::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{issue_token, send, spawn_app, Backend, Env, Reply, Scenario, TestApp, Tok};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_client_added_by_the_cli_reads_a_profile_with_a_token_by_basic_or_by_form,
        the_cli_lists_shows_rotates_and_revokes_clients,
        admins_manage_clients_over_http_and_see_a_secret_only_once,
        a_wrong_secret_and_a_revoked_client_are_refused,
        a_rotated_away_secret_works_until_its_grace_period_ends,
        a_revoked_client_is_refused_by_another_node_within_two_seconds,
        every_route_refuses_a_revoked_clients_token,
        client_changes_are_audited_without_a_secret,
    ]
}

/// A registered client.
pub struct Client {
    pub id: String,
    pub secret: String,
}

/// The value of `key: value` on a line of `text`.
fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{text}"))
        .trim()
        .to_owned()
}

/// `arkku clients add NAME args…` against `app`; its id and secret.
pub async fn add_client(app: &TestApp, name: &str, args: &[&str]) -> Client {
    let mut all = vec!["clients", "add", name];
    all.extend_from_slice(args);
    let r = app.cli(&all).await;
    assert!(r.status.success(), "{}\n{}", r.stdout, r.stderr);
    Client {
        id: field(&r.stdout, "client_id"),
        secret: field(&r.stdout, "client_secret"),
    }
}

/// An agent client on `chat` for `support`, added with the CLI.
pub async fn helpdesk(app: &TestApp) -> Client {
    add_client(
        app,
        "helpdesk",
        &[
            "--role",
            "agent",
            "--purposes",
            "support",
            "--channel",
            "chat",
        ],
    )
    .await
}

/// `POST {base}/oauth/token` with HTTP Basic and `form`.
pub async fn token_basic_at(base: &str, c: &Client, form: &[(&str, &str)]) -> Reply {
    let mut body = vec![("grant_type", "client_credentials")];
    body.extend_from_slice(form);
    send(
        crate::helpers::http_client()
            .post(format!("{base}/oauth/token"))
            .basic_auth(&c.id, Some(&c.secret))
            .form(&body),
    )
    .await
}

/// `POST /oauth/token` with HTTP Basic and `form` (after `grant_type`).
pub async fn token_basic(app: &TestApp, c: &Client, form: &[(&str, &str)]) -> Reply {
    token_basic_at(&app.address, c, form).await
}

/// `POST /oauth/token` with the credentials as form fields.
pub async fn token_form(app: &TestApp, c: &Client) -> Reply {
    send(
        app.client
            .post(format!("{}/oauth/token", app.address))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", c.id.as_str()),
                ("client_secret", c.secret.as_str()),
            ]),
    )
    .await
}

/// A token for `c` (asserting 200).
pub async fn access_token(app: &TestApp, c: &Client) -> String {
    let r = token_basic(app, c, &[]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["access_token"].as_str().expect("token").to_owned()
}

/// The status of a profile read of customer `id` for `support` with `token`.
async fn read(app: &TestApp, token: &str, id: &str) -> StatusCode {
    app.read_customer(token, id, "purpose=support").await.status
}

/// A token of an admin, signed by the local issuer.
pub fn admin(app: &TestApp) -> String {
    app.token(Tok {
        role: Role::Admin,
        sub: "ops",
        purposes: &[],
        channel: None,
    })
}

async fn customer(app: &TestApp) -> String {
    app.create_customer_ok(
        &app.service(),
        json!({"contacts": [{"channel": "chat", "value": "pena-chat"}]}),
    )
    .await
}

async fn a_client_added_by_the_cli_reads_a_profile_with_a_token_by_basic_or_by_form(b: Backend) {
    // Arrange
    let app = spawn_app(b).await;
    let id = customer(&app).await;
    let c = helpdesk(&app).await;
    assert!(c.secret.starts_with("arkku_cs_"), "{}", c.secret);

    // Act: a token by HTTP Basic, and one by form fields.
    let basic = token_basic(&app, &c, &[]).await;
    let form = token_form(&app, &c).await;

    // Assert
    for r in [&basic, &form] {
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(
            r.content_type.starts_with("application/json"),
            "{}",
            r.content_type
        );
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("pragma"), Some("no-cache"));
        assert_eq!(r.json["token_type"], "Bearer");
        assert_eq!(r.json["expires_in"], 900);
        assert_eq!(r.json["scope"], "support");
        let token = r.json["access_token"].as_str().expect("token");
        let profile = app.read_customer(token, &id, "purpose=support").await;
        assert_eq!(profile.status, StatusCode::OK, "{}", profile.text);
        assert_eq!(profile.json["contacts"][0]["channel"], "chat");
    }
}

async fn the_cli_lists_shows_rotates_and_revokes_clients(b: Backend) {
    let app = spawn_app(b).await;
    let c = helpdesk(&app).await;
    let crm = add_client(
        &app,
        "crm sync",
        &[
            "--role",
            "service",
            "--purposes",
            "support,marketing",
            "--token-ttl",
            "1h",
        ],
    )
    .await;

    let list = app.cli(&["clients", "list"]).await;
    assert!(list.status.success(), "{}", list.stderr);
    assert!(
        list.stdout.contains(&c.id) && list.stdout.contains(&crm.id),
        "{}",
        list.stdout
    );
    assert!(
        !list.stdout.contains("arkku_cs_"),
        "a secret listed: {}",
        list.stdout
    );

    let show = app.cli(&["clients", "show", &crm.id]).await;
    assert!(show.status.success(), "{}", show.stderr);
    assert_eq!(field(&show.stdout, "role"), "service");
    assert_eq!(field(&show.stdout, "purposes"), "support,marketing");
    assert_eq!(field(&show.stdout, "token_ttl"), "1h");
    assert!(!show.stdout.contains("arkku_cs_"), "{}", show.stdout);

    let rotated = app
        .cli(&["clients", "rotate-secret", &crm.id, "--grace", "0s"])
        .await;
    assert!(rotated.status.success(), "{}", rotated.stderr);
    let new = Client {
        id: crm.id.clone(),
        secret: field(&rotated.stdout, "client_secret"),
    };
    assert_ne!(new.secret, crm.secret);
    assert_eq!(token_basic(&app, &new, &[]).await.status, StatusCode::OK);
    assert_eq!(
        token_basic(&app, &crm, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );

    let revoked = app.cli(&["clients", "revoke", &c.id]).await;
    assert!(revoked.status.success(), "{}", revoked.stderr);
    assert!(
        revoked.stdout.contains("revoked_at: "),
        "{}",
        revoked.stdout
    );
    assert_eq!(
        token_basic(&app, &c, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );

    // Wrong input is refused with a message, and nothing is registered.
    for bad in [
        vec![
            "clients",
            "add",
            "x",
            "--role",
            "admin",
            "--purposes",
            "support",
        ],
        vec![
            "clients",
            "add",
            "x",
            "--role",
            "agent",
            "--purposes",
            "nosuch",
        ],
        vec![
            "clients",
            "add",
            "x",
            "--role",
            "agent",
            "--purposes",
            "support",
            "--channel",
            "fax",
        ],
        vec![
            "clients",
            "add",
            "x",
            "--role",
            "agent",
            "--purposes",
            "support",
            "--token-ttl",
            "13h",
        ],
    ] {
        app.cli(&bad).await.assert_failed();
    }
    assert_eq!(app.count("clients").await, 2);
}

async fn admins_manage_clients_over_http_and_see_a_secret_only_once(b: Backend) {
    let app = spawn_app(b).await;
    let admin = admin(&app);
    let body = json!({"name": "phone system", "role": "agent", "purposes": ["support"],
                      "channel": "phone", "token_ttl_seconds": 600});

    // Only admins.
    let r = app
        .request(
            Method::POST,
            "/v1/admin/clients",
            Some(&app.service()),
            Some(body.clone()),
        )
        .await;
    r.assert_problem(403, "forbidden");

    let created = app
        .request(Method::POST, "/v1/admin/clients", Some(&admin), Some(body))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json["client"]["client_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let secret = created.json["client_secret"]
        .as_str()
        .expect("secret")
        .to_owned();
    assert!(secret.starts_with("arkku_cs_"));
    assert_eq!(created.json["client"]["token_ttl_seconds"], 600);
    let c = Client {
        id: id.clone(),
        secret,
    };
    let t = token_basic(&app, &c, &[]).await;
    assert_eq!(t.json["expires_in"], 600, "{}", t.text);

    let list = app
        .request(Method::GET, "/v1/admin/clients", Some(&admin), None)
        .await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.text);
    assert_eq!(list.json["clients"][0]["client_id"], id.as_str());
    let show = app
        .request(
            Method::GET,
            &format!("/v1/admin/clients/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(show.status, StatusCode::OK, "{}", show.text);
    assert_eq!(show.json["channel"], "phone");
    for r in [&list, &show] {
        assert!(
            !r.text.contains("arkku_cs_") && !r.text.contains("argon2"),
            "{}",
            r.text
        );
    }

    let rotated = app
        .request(
            Method::POST,
            &format!("/v1/admin/clients/{id}/secret"),
            Some(&admin),
            Some(json!({"grace_seconds": 60})),
        )
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert!(rotated.json["client_secret"]
        .as_str()
        .is_some_and(|s| s != c.secret));
    assert!(rotated.json["client"]["previous_secret_valid_until"].is_string());

    let revoked = app
        .request(
            Method::DELETE,
            &format!("/v1/admin/clients/{id}"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert!(revoked.json["revoked_at"].is_string());
    let again = app
        .request(
            Method::POST,
            &format!("/v1/admin/clients/{id}/secret"),
            Some(&admin),
            Some(json!({})),
        )
        .await;
    again.assert_problem(400, "invalid_request");

    let missing = uuid::Uuid::now_v7();
    app.request(
        Method::GET,
        &format!("/v1/admin/clients/{missing}"),
        Some(&admin),
        None,
    )
    .await
    .assert_problem(404, "not_found");
    for bad in [
        json!({"name": "x", "role": "customer", "purposes": ["support"]}),
        json!({"name": "x", "role": "agent", "purposes": []}),
        json!({"name": "x", "role": "service", "purposes": ["support"], "channel": "chat"}),
        json!({"name": "", "role": "agent", "purposes": ["support"]}),
        json!({"name": "x", "role": "agent", "purposes": ["support"], "secret_phc": "x"}),
    ] {
        app.request(Method::POST, "/v1/admin/clients", Some(&admin), Some(bad))
            .await
            .assert_problem(400, "invalid_request");
    }
    assert_eq!(app.count("clients").await, 1);
}

async fn a_wrong_secret_and_a_revoked_client_are_refused(b: Backend) {
    let app = spawn_app(b).await;
    let c = helpdesk(&app).await;
    let wrong = Client {
        id: c.id.clone(),
        secret: format!("{}x", c.secret),
    };
    let unknown = Client {
        id: uuid::Uuid::now_v7().to_string(),
        secret: c.secret.clone(),
    };
    for who in [&wrong, &unknown] {
        let r = token_basic(&app, who, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        assert_eq!(r.json["error"], "invalid_client");
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"arkku\""));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert!(r.json.get("access_token").is_none());
    }
    let token = access_token(&app, &c).await;
    let id = customer(&app).await;
    assert_eq!(read(&app, &token, &id).await, StatusCode::OK);

    let r = app.cli(&["clients", "revoke", &c.id]).await;
    assert!(r.status.success(), "{}", r.stderr);

    // Its secret and the token it had are refused.
    let r = token_basic(&app, &c, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.json["error"], "invalid_client");
    let start = Instant::now();
    while read(&app, &token, &id).await != StatusCode::UNAUTHORIZED {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "the revoked token still reads"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_rotated_away_secret_works_until_its_grace_period_ends(b: Backend) {
    let app = spawn_app(b).await;
    let old = helpdesk(&app).await;
    let id = customer(&app).await;
    let before = access_token(&app, &old).await;

    let r = app
        .cli(&["clients", "rotate-secret", &old.id, "--grace", "1h"])
        .await;
    assert!(r.status.success(), "{}", r.stderr);
    let new = Client {
        id: old.id.clone(),
        secret: field(&r.stdout, "client_secret"),
    };

    // Within the grace period both secrets work, and so does the old token:
    // instances of the tool on the old and on the new secret, side by side,
    // for as long as they like (neither is counted as a guess).
    for _ in 0..6 {
        for c in [&old, &new] {
            let r = token_basic(&app, c, &[]).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
    }
    assert_eq!(read(&app, &before, &id).await, StatusCode::OK);

    // After it, only the new one.
    app.set_clock_ahead(Duration::from_secs(3600 + 60));
    let r = token_basic(&app, &old, &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    assert_eq!(r.json["error"], "invalid_client");
    let fresh = token_basic(&app, &new, &[]).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.text);
    let token = fresh.json["access_token"].as_str().expect("token");
    assert_eq!(read(&app, token, &id).await, StatusCode::OK);
}

async fn a_revoked_client_is_refused_by_another_node_within_two_seconds(b: Backend) {
    // Arrange: two servers on one database, a client, its token on both.
    let env = Env::new(b).await;
    env.run_ok(&["migrate"], &[]).await;
    let one = env.serve().await;
    let two = env.serve().await;
    let r = env
        .run_ok(
            &[
                "clients",
                "add",
                "helpdesk",
                "--role",
                "service",
                "--purposes",
                "support",
            ],
            &[],
        )
        .await;
    let c = Client {
        id: field(&r.stdout, "client_id"),
        secret: field(&r.stdout, "client_secret"),
    };
    let t = token_basic_at(&one.base, &c, &[]).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.text);
    let token = t.json["access_token"].as_str().expect("token").to_owned();
    let http = crate::helpers::http_client();
    let probe = |base: &str| {
        let url = format!(
            "{base}/v1/customers/{}?purpose=support",
            uuid::Uuid::now_v7()
        );
        send(http.get(url).bearer_auth(&token))
    };
    // A customer that does not exist: 404 while the token is good.
    assert_eq!(probe(&one.base).await.status, StatusCode::NOT_FOUND);
    assert_eq!(probe(&two.base).await.status, StatusCode::NOT_FOUND);

    // Act: an admin revokes the client on node one.
    let admin = issue_token(
        &env.issuer_key(),
        Tok {
            role: Role::Admin,
            sub: "ops",
            purposes: &[],
            channel: None,
        },
    );
    let revoked = send(
        http.delete(format!("{}/v1/admin/clients/{}", one.base, c.id))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    let at = Instant::now();

    // Assert: node one refuses at once, node two within two seconds.
    probe(&one.base)
        .await
        .assert_problem(401, "unauthenticated");
    loop {
        let r = probe(&two.base).await;
        if r.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
        assert!(
            at.elapsed() < Duration::from_secs(2),
            "node two still accepts the revoked client's token after {:?}",
            at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "node two refused the token {:?} after the revocation",
        at.elapsed()
    );
}

/// Every operation of the OpenAPI document that needs a bearer token.
fn bearer_operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let bearer = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            if bearer {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

async fn every_route_refuses_a_revoked_clients_token(b: Backend) {
    let app = spawn_app(b).await;
    let c = add_client(
        &app,
        "everything",
        &["--role", "compliance", "--purposes", "dsr"],
    )
    .await;
    let token = access_token(&app, &c).await;
    let doc = app
        .request(Method::GET, "/openapi.json", None, None)
        .await
        .json;
    let ops = bearer_operations(&doc);
    assert!(ops.len() >= 25, "{ops:?}");
    // Before: the token is accepted (whatever the route then answers).
    let r = app
        .request(Method::GET, "/v1/audit", Some(&token), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let r = app
        .request(
            Method::DELETE,
            &format!("/v1/admin/clients/{}", c.id),
            Some(&admin(&app)),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    for (method, path) in ops {
        let url: String = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    uuid::Uuid::now_v7().to_string()
                } else {
                    seg.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let m = Method::from_bytes(method.as_bytes()).expect("method");
        let body = (m == Method::POST || m == Method::PATCH).then(|| json!({}));
        let r = app.request(m, &url, Some(&token), body).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {}",
            r.text
        );
        r.assert_problem(401, "unauthenticated");
    }
}

async fn client_changes_are_audited_without_a_secret(b: Backend) {
    let app = spawn_app(b).await;
    let c = helpdesk(&app).await;
    let r = app.cli(&["clients", "show", &c.id]).await;
    assert!(r.status.success());
    let r = app.cli(&["clients", "rotate-secret", &c.id]).await;
    assert!(r.status.success());
    let rotated = field(&r.stdout, "client_secret");
    let r = app.cli(&["clients", "revoke", &c.id]).await;
    assert!(r.status.success());

    let compliance = app.compliance();
    for action in [
        "client.create",
        "client.read",
        "client.rotate_secret",
        "client.revoke",
    ] {
        let r = app
            .request(
                Method::GET,
                &format!("/v1/audit?action={action}"),
                Some(&compliance),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let entries = r.json["entries"].as_array().expect("entries");
        assert_eq!(entries.len(), 1, "{action}: {}", r.text);
        let e = &entries[0];
        assert_eq!(e["decision"], "allow");
        assert_eq!(e["actor"]["sub"], "arkku-cli");
        assert_eq!(e["actor"]["role"], "admin");
        assert_eq!(e["detail"]["client_id"], c.id.as_str(), "{action}: {e}");
    }
    let all = app.audit_text().await;
    for secret in [&c.secret, &rotated] {
        assert!(!all.contains(secret.as_str()), "a secret in the audit log");
    }
    assert!(
        !all.contains("arkku_cs_") && !all.contains("$argon2"),
        "{all}"
    );
    app.assert_chain_verifies().await;
}
