//! The OAuth endpoints to the letter of their RFCs: the client-credentials
//! grant's errors (RFC 6749 §5.2), scope narrowing, the attempt limit before
//! argon2, token revocation (RFC 7009), the server metadata (RFC 8414), and
//! the audit entries of each.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::clients::{access_token, add_client, helpdesk, token_basic, token_form, Client};
use crate::helpers::{send, spawn_app, Backend, Reply, Scenario, TestApp};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_scope_narrows_the_clients_purposes_and_never_widens_them,
        malformed_token_requests_get_the_rfcs_errors,
        a_burst_of_wrong_secrets_is_refused_before_argon2_and_spares_the_client,
        revoking_a_token_refuses_that_token_only,
        the_metadata_document_names_the_endpoints,
        token_requests_are_audited_without_a_secret,
    ]
}

/// `POST /oauth/{endpoint}` with a raw body and optional Basic credentials.
async fn post(
    app: &TestApp,
    endpoint: &str,
    basic: Option<&Client>,
    content_type: &str,
    body: &str,
) -> Reply {
    let mut rb = app
        .client
        .post(format!("{}/oauth/{endpoint}", app.address))
        .header("content-type", content_type)
        .body(body.to_owned());
    if let Some(c) = basic {
        rb = rb.basic_auth(&c.id, Some(&c.secret));
    }
    send(rb).await
}

const FORM: &str = "application/x-www-form-urlencoded";

/// Asserts an OAuth error: status, `error`, and the no-store headers.
#[track_caller]
fn assert_oauth_error(r: &Reply, status: u16, error: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert!(
        r.content_type.starts_with("application/json"),
        "{}",
        r.content_type
    );
    assert_eq!(r.json["error"], error, "{}", r.text);
    assert!(r.json["error_description"].is_string(), "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
}

async fn a_scope_narrows_the_clients_purposes_and_never_widens_them(b: Backend) {
    let app = spawn_app(b).await;
    let c = add_client(
        &app,
        "crm",
        &["--role", "service", "--purposes", "support,marketing"],
    )
    .await;

    let all = token_basic(&app, &c, &[]).await;
    assert_eq!(all.json["scope"], "support marketing", "{}", all.text);
    let narrow = token_basic(&app, &c, &[("scope", "marketing")]).await;
    assert_eq!(narrow.status, StatusCode::OK, "{}", narrow.text);
    assert_eq!(narrow.json["scope"], "marketing");
    // The narrowed token cannot read for the purpose it left out.
    let token = narrow.json["access_token"].as_str().expect("token");
    let id = uuid::Uuid::now_v7();
    let r = app
        .read_customer(token, &id.to_string(), "purpose=support")
        .await;
    r.assert_problem(403, "purpose_not_allowed");

    for scope in ["support dsr", "cross_channel", "SUPPORT"] {
        let r = token_basic(&app, &c, &[("scope", scope)]).await;
        assert_oauth_error(&r, 400, "invalid_scope");
    }
}

async fn malformed_token_requests_get_the_rfcs_errors(b: Backend) {
    let app = spawn_app(b).await;
    let c = helpdesk(&app).await;
    let creds = format!("client_id={}&client_secret={}", c.id, c.secret);

    // Both client authentications at once.
    let both = format!("grant_type=client_credentials&{creds}");
    assert_oauth_error(
        &post(&app, "token", Some(&c), FORM, &both).await,
        400,
        "invalid_request",
    );
    // A grant type the vault does not serve, and none at all.
    let r = post(
        &app,
        "token",
        None,
        FORM,
        &format!("grant_type=password&{creds}"),
    )
    .await;
    assert_oauth_error(&r, 400, "unsupported_grant_type");
    assert_oauth_error(
        &post(&app, "token", None, FORM, &creds).await,
        400,
        "invalid_request",
    );
    // A repeated parameter; JSON instead of a form.
    let twice = format!("grant_type=client_credentials&grant_type=client_credentials&{creds}");
    assert_oauth_error(
        &post(&app, "token", None, FORM, &twice).await,
        400,
        "invalid_request",
    );
    let r = post(
        &app,
        "token",
        Some(&c),
        "application/json",
        r#"{"grant_type":"client_credentials"}"#,
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request");
    // No client authentication, an id without a secret, another scheme.
    let r = post(&app, "token", None, FORM, "grant_type=client_credentials").await;
    assert_oauth_error(&r, 401, "invalid_client");
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"arkku\""));
    let r = post(
        &app,
        "token",
        None,
        FORM,
        &format!("grant_type=client_credentials&client_id={}", c.id),
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
    let r = send(
        app.client
            .post(format!("{}/oauth/token", app.address))
            .bearer_auth(&c.secret)
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_oauth_error(&r, 401, "invalid_client");
    // Unknown parameters are ignored, and an empty one counts as absent.
    let r = post(
        &app,
        "token",
        None,
        FORM,
        &format!("grant_type=client_credentials&scope=&audience=x&{creds}"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["scope"], "support");
    // Other methods are not served.
    let r = app.request(Method::GET, "/oauth/token", None, None).await;
    r.assert_problem(405, "method_not_allowed");
}

async fn a_burst_of_wrong_secrets_is_refused_before_argon2_and_spares_the_client(b: Backend) {
    let app = spawn_app(b).await;
    let c = helpdesk(&app).await;
    // The client has shown its secret once before the attack.
    assert_eq!(token_basic(&app, &c, &[]).await.status, StatusCode::OK);
    let wrong = Client {
        id: c.id.clone(),
        secret: "arkku_cs_guess".to_owned(),
    };

    let mut refused = Vec::new();
    for _ in 0..30 {
        let r = token_basic(&app, &wrong, &[]).await;
        match r.status {
            StatusCode::UNAUTHORIZED => assert_eq!(r.json["error"], "invalid_client"),
            StatusCode::TOO_MANY_REQUESTS => refused.push(r),
            other => panic!("{other}: {}", r.text),
        }
    }
    // At most the client id's budget (three, one spent by its own first
    // request) reached argon2; the rest were refused at once.
    assert!(refused.len() >= 26, "only {} of 30 refused", refused.len());
    for r in &refused {
        assert_oauth_error(r, 429, "slow_down");
        let wait: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&wait), "{wait}");
    }
    // The client itself still gets its tokens.
    let r = token_form(&app, &c).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The burst is in the audit log as refusals.
    let r = app
        .request(
            Method::GET,
            "/v1/audit?action=auth.token&decision=deny&limit=100",
            Some(&app.compliance()),
            None,
        )
        .await;
    let codes: Vec<&str> = r.json["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["detail"]["code"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(codes.len(), 30, "{}", r.text);
    assert!(codes.contains(&"slow_down") && codes.contains(&"invalid_client"));
}

async fn revoking_a_token_refuses_that_token_only(b: Backend) {
    let app = spawn_app(b).await;
    let c = helpdesk(&app).await;
    let other = add_client(&app, "other", &["--role", "agent", "--purposes", "support"]).await;
    let first = access_token(&app, &c).await;
    let second = access_token(&app, &c).await;
    let others = access_token(&app, &other).await;
    let probe = async |t: &str| {
        app.read_customer(t, &uuid::Uuid::now_v7().to_string(), "purpose=support")
            .await
            .status
    };

    // Another client's token, and one that is no token at all: 200, nothing revoked.
    for token in [others.as_str(), "not-a-token"] {
        let r = post(&app, "revoke", Some(&c), FORM, &format!("token={token}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
    assert_eq!(probe(&others).await, StatusCode::NOT_FOUND);

    // Its own token, with the hint: revoked, on this node at once.
    let r = post(
        &app,
        "revoke",
        Some(&c),
        FORM,
        &format!("token={first}&token_type_hint=access_token"),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(probe(&first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(probe(&second).await, StatusCode::NOT_FOUND);
    // Still refused after the snapshot reloads from the database.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(probe(&first).await, StatusCode::UNAUTHORIZED);
    assert_eq!(probe(&second).await, StatusCode::NOT_FOUND);

    // Without a token, or without client authentication: the RFC's errors.
    let r = post(
        &app,
        "revoke",
        Some(&c),
        FORM,
        "token_type_hint=access_token",
    )
    .await;
    assert_oauth_error(&r, 400, "invalid_request");
    let r = post(&app, "revoke", None, FORM, &format!("token={second}")).await;
    assert_oauth_error(&r, 401, "invalid_client");
    assert_eq!(probe(&second).await, StatusCode::NOT_FOUND);
}

async fn the_metadata_document_names_the_endpoints(b: Backend) {
    let app = spawn_app(b).await;
    let r = app
        .request(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let base = app.address.as_str();
    let m = &r.json;
    assert_eq!(m["issuer"], base);
    assert_eq!(m["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(m["revocation_endpoint"], format!("{base}/oauth/revoke"));
    assert_eq!(m["grant_types_supported"], json!(["client_credentials"]));
    assert_eq!(m["response_types_supported"], json!([]));
    let methods = json!(["client_secret_basic", "client_secret_post"]);
    assert_eq!(m["token_endpoint_auth_methods_supported"], methods);
    assert_eq!(m["revocation_endpoint_auth_methods_supported"], methods);
    let scopes = m["scopes_supported"].as_array().expect("scopes");
    assert!(scopes.contains(&json!("support")) && scopes.contains(&json!("dsr")));

    // Behind a TLS proxy the URLs are https.
    let r = send(
        app.client
            .get(format!("{base}/.well-known/oauth-authorization-server"))
            .header("x-forwarded-proto", "https"),
    )
    .await;
    assert!(r.json["token_endpoint"]
        .as_str()
        .is_some_and(|u| u.starts_with("https://")));
}

async fn token_requests_are_audited_without_a_secret(b: Backend) {
    let app = spawn_app(b).await;
    let c = helpdesk(&app).await;
    let token = access_token(&app, &c).await;
    let wrong = Client {
        id: c.id.clone(),
        secret: format!("{}0", c.secret),
    };
    assert_eq!(
        token_basic(&app, &wrong, &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = post(&app, "revoke", Some(&c), FORM, &format!("token={token}")).await;
    assert_eq!(r.status, StatusCode::OK);

    let compliance = app.compliance();
    let read = async |q: &str| {
        let r = app
            .request(
                Method::GET,
                &format!("/v1/audit?{q}"),
                Some(&compliance),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json["entries"].as_array().expect("entries").clone()
    };
    let issued = read("action=auth.token&decision=allow").await;
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0]["actor"]["sub"], c.id.as_str());
    assert_eq!(issued[0]["actor"]["role"], "agent");
    assert_eq!(issued[0]["actor"]["client"], c.id.as_str());
    assert_eq!(issued[0]["detail"]["client_id"], c.id.as_str());
    let denied = read("action=auth.token&decision=deny").await;
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["actor"]["sub"], "anonymous");
    assert_eq!(denied[0]["detail"]["client_id"], c.id.as_str());
    assert_eq!(denied[0]["detail"]["code"], "invalid_client");
    let revoked = read("action=auth.revoke").await;
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["detail"]["revoked"], true);
    assert_eq!(revoked[0]["detail"]["jti"], issued[0]["detail"]["jti"]);

    let all = app.audit_text().await;
    for secret in [&c.secret, &wrong.secret, &token] {
        assert!(
            !all.contains(secret.as_str()),
            "a secret or token in the audit log"
        );
    }
}
