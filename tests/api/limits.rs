//! Enumeration and token lifetime: per-actor rate limits on lookups and
//! reveals (`limits.toml`), the token lifetime cap, one `Authorization`
//! header, and problem+json for oversized tokens and headers.

use std::path::Path;

use arkku::{config::PolicySource, domain::Role, store::audit::AuditRow};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{send, spawn_app, spawn_app_with, Backend, Reply, Scenario, TestApp, Tok};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        an_agent_past_its_lookup_limit_gets_429_with_retry_after_and_the_refusal_is_audited,
        an_agent_past_its_reveal_limit_gets_429_and_masked_reads_still_work,
        a_token_living_longer_than_the_policy_allows_is_refused,
        arkku_token_refuses_a_ttl_beyond_the_policy_cap,
        arkku_token_caps_the_ttl_at_a_day_unless_told_otherwise,
        a_request_with_two_authorization_headers_is_refused,
        oversized_tokens_and_headers_get_problem_json,
        policy_check_reports_an_invalid_limits_file,
    ]
}

/// The shipped channels and purposes with `limits` as limits.toml.
fn policy_dir(dir: &Path, limits: &str) -> std::path::PathBuf {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let out = dir.join("policies-limited");
    std::fs::create_dir_all(&out).unwrap();
    for f in ["channels.toml", "purposes.toml"] {
        std::fs::copy(shipped.join(f), out.join(f)).unwrap();
    }
    std::fs::write(out.join("limits.toml"), limits).unwrap();
    out
}

const TIGHT: &str = "[rate_limits.lookup]\nagent = { per_minute = 1, burst = 3 }\n\
                     [rate_limits.reveal]\nagent = { per_minute = 1, burst = 2 }\n\
                     [tokens]\nmax_lifetime = \"2h\"\n";

async fn limited_app(b: Backend) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let policies = policy_dir(dir.path(), TIGHT);
    let app = spawn_app_with(b, |c| c.policies = PolicySource::Dir(policies)).await;
    drop(dir);
    app
}

fn agent(app: &TestApp, sub: &str) -> String {
    app.token(Tok {
        role: Role::Agent,
        sub,
        purposes: &["support"],
        channel: Some("phone"),
    })
}

async fn audit_rows(app: &TestApp) -> Vec<AuditRow> {
    arkku::store::audit::entries_after(app.db(), 0, 1_000_000)
        .await
        .expect("audit rows")
}

#[track_caller]
fn assert_rate_limited(r: &Reply) {
    r.assert_problem(429, "rate_limited");
    let secs: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&secs), "Retry-After {secs}");
}

async fn an_agent_past_its_lookup_limit_gets_429_with_retry_after_and_the_refusal_is_audited(
    b: Backend,
) {
    // Arrange: a burst of 3 lookups, then one a minute.
    let app = limited_app(b).await;
    let a1 = agent(&app, "agent-1");
    app.create_customer_ok(
        &a1,
        json!({"contacts": [{"channel": "phone", "value": "+358401234567"}]}),
    )
    .await;

    // Act: the burst, then one more (a guess nobody holds).
    for _ in 0..3 {
        let r = app.lookup(&a1, "phone", "+358401234567", "support").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let refused = app.lookup(&a1, "phone", "+358409999999", "support").await;

    // Assert: 429 with Retry-After, audited as a deny with its code, and
    // another agent is counted apart.
    assert_rate_limited(&refused);
    let last = audit_rows(&app).await.pop().unwrap();
    assert_eq!(last.action, "lookup");
    assert_eq!(last.decision, "deny");
    assert_eq!(last.actor_sub, "agent-1");
    let detail: Value = serde_json::from_str(&last.detail).unwrap();
    assert_eq!(detail["code"], "rate_limited", "{detail}");
    assert!(!last.detail.contains("409999999"));
    let other = app
        .lookup(&agent(&app, "agent-2"), "phone", "+358401234567", "support")
        .await;
    assert_eq!(other.status, StatusCode::OK, "{}", other.text);
    app.assert_chain_verifies().await;
}

async fn an_agent_past_its_reveal_limit_gets_429_and_masked_reads_still_work(b: Backend) {
    let app = limited_app(b).await;
    let a1 = agent(&app, "agent-1");
    let id = app
        .create_customer_ok(
            &a1,
            json!({"contacts": [{"channel": "phone", "value": "+358401234567"}]}),
        )
        .await;
    let reveal = "purpose=support&reveal=true&reason=TICKET-1";
    for _ in 0..2 {
        let r = app.read_customer(&a1, &id, reveal).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["contacts"][0]["value"], "+358401234567");
    }

    let refused = app.read_customer(&a1, &id, reveal).await;

    assert_rate_limited(&refused);
    assert!(!refused.text.contains("401234567"));
    let last = audit_rows(&app).await.pop().unwrap();
    assert_eq!(last.action, "contact.reveal");
    assert_eq!(last.decision, "deny");
    let detail: Value = serde_json::from_str(&last.detail).unwrap();
    assert_eq!(detail["code"], "rate_limited", "{detail}");
    // A masked read is not a reveal and is not limited by it.
    let masked = app.read_customer(&a1, &id, "purpose=support").await;
    assert_eq!(masked.status, StatusCode::OK, "{}", masked.text);
    assert_eq!(masked.json["contacts"][0]["masked"], true);
}

/// A token signed with the vault's issuer key carrying exactly `claims`.
fn signed(app: &TestApp, claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(app.issuer_key().expose_secret()),
    )
    .unwrap()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn a_token_living_longer_than_the_policy_allows_is_refused(b: Backend) {
    // The shipped cap is 12 hours.
    let app = spawn_app(b).await;
    let claims = |iat: Option<i64>, exp: Value| {
        let mut c = json!({"sub": "agent-1", "role": "agent", "purposes": ["support"],
            "channel": "phone", "iss": "arkku-local", "aud": "arkku", "exp": exp});
        if let Some(iat) = iat {
            c["iat"] = json!(iat);
        }
        c
    };
    let t = now();
    let within = signed(&app, claims(Some(t), json!(t + 11 * 3600)));
    let too_long = signed(&app, claims(Some(t), json!(t + 13 * 3600)));
    let forever = signed(&app, claims(Some(t), json!(1u64 << 63)));
    let forever_no_iat = signed(&app, claims(None, json!(1u64 << 63)));
    let long_no_iat = signed(&app, claims(None, json!(t + 30 * 24 * 3600)));
    let body = json!({"contacts": [{"channel": "phone", "value": "+358401234567"}]});

    let ok = app.create_customer(&within, body.clone()).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.text);
    for (what, token) in [
        ("exp - iat = 13h", &too_long),
        ("exp = 2^63", &forever),
        ("exp = 2^63 without iat", &forever_no_iat),
        ("30 days without iat", &long_no_iat),
    ] {
        let r = app.create_customer(token, body.clone()).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text);
        r.assert_problem(401, "unauthenticated");
    }
}

async fn arkku_token_refuses_a_ttl_beyond_the_policy_cap(b: Backend) {
    let app = spawn_app(b).await;
    let args = |ttl: &'static str| {
        [
            "token",
            "--role",
            "agent",
            "--sub",
            "agent-1",
            "--purposes",
            "support",
            "--channel",
            "phone",
            "--ttl",
            ttl,
        ]
    };

    let century = app.cli(&args("876000h")).await;
    let day = app.cli(&args("13h")).await;
    let shift = app.cli(&args("8h")).await;

    century.assert_failed();
    assert!(
        century.stderr.contains("longer than the policy allows"),
        "{}",
        century.stderr
    );
    assert!(century.stdout.trim().is_empty(), "no token is printed");
    day.assert_failed();
    assert!(shift.status.success(), "{}", shift.stderr);
    let token = shift.stdout.lines().last().unwrap().trim().to_owned();
    let r = app
        .read_customer(&token, &uuid::Uuid::now_v7().to_string(), "purpose=support")
        .await;
    r.assert_problem(404, "not_found");
}

async fn arkku_token_caps_the_ttl_at_a_day_unless_told_otherwise(b: Backend) {
    // Arrange: a policy that accepts tokens of up to three days.
    let app = spawn_app(b).await;
    let dir = policy_dir(app.dir.path(), "[tokens]\nmax_lifetime = \"72h\"\n");
    let env = [("ARKKU_POLICIES", dir.to_str().unwrap())];
    let token = |ttl: &'static str, more: &'static [&'static str]| {
        let mut args = vec![
            "token", "--role", "service", "--sub", "crm-sync", "--ttl", ttl,
        ];
        args.extend_from_slice(more);
        app.cli_proc_with(&args, &env).finish()
    };

    // Act
    let day = token("24h", &[]).await;
    let longer = token("30h", &[]).await;
    let allowed = token("30h", &["--allow-long-ttl"]).await;
    let beyond_policy = token("73h", &["--allow-long-ttl"]).await;

    // Assert: a day is fine; longer needs the flag; the policy caps even that.
    assert!(day.status.success(), "{}", day.stderr);
    longer.assert_failed();
    assert!(
        longer.stderr.contains("longer than 24h") && longer.stderr.contains("--allow-long-ttl"),
        "{}",
        longer.stderr
    );
    assert!(
        !longer.stdout.contains("eyJ"),
        "no token: {}",
        longer.stdout
    );
    assert!(allowed.status.success(), "{}", allowed.stderr);
    let claims = jwt_claims(allowed.stdout.lines().last().unwrap().trim());
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 30 * 3600, "{claims}");
    beyond_policy.assert_failed();
    assert!(
        beyond_policy
            .stderr
            .contains("longer than the policy allows"),
        "{}",
        beyond_policy.stderr
    );
}

/// The claims of a JWT, read without checking its signature or claims.
fn jwt_claims(token: &str) -> Value {
    let mut v = jsonwebtoken::Validation::new(Algorithm::HS256);
    v.insecure_disable_signature_validation();
    v.validate_aud = false;
    v.validate_exp = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &jsonwebtoken::DecodingKey::from_secret(&[]), &v)
        .expect("a JWT")
        .claims
}

async fn a_request_with_two_authorization_headers_is_refused(b: Backend) {
    let app = spawn_app(b).await;
    let good = app.agent("phone");
    let body = json!({"contacts": [{"channel": "phone", "value": "+358401234567"}]});
    let url = format!("{}/v1/customers", app.address);
    let before = app.count("customers").await;

    for second in [good.clone(), "not-a-token".to_owned()] {
        let r = send(
            app.client
                .request(Method::POST, &url)
                .header("authorization", format!("Bearer {good}"))
                .header("authorization", format!("Bearer {second}"))
                .json(&body),
        )
        .await;
        r.assert_problem(401, "unauthenticated");
    }

    assert_eq!(app.count("customers").await, before, "nothing was created");
    let last = audit_rows(&app).await.pop().unwrap();
    assert_eq!(last.decision, "deny");
    assert_eq!(last.actor_sub, "anonymous");
}

async fn oversized_tokens_and_headers_get_problem_json(b: Backend) {
    let app = spawn_app(b).await;
    let url = format!(
        "{}/v1/customers/{}?purpose=support",
        app.address,
        uuid::Uuid::now_v7()
    );
    let get = |headers: Vec<(String, String)>| {
        let mut rb = app.client.get(&url);
        for (k, v) in headers {
            rb = rb.header(k, v);
        }
        send(rb)
    };

    // A 16 KiB token: refused by the verifier.
    let token = "a".repeat(16 * 1024);
    let r = get(vec![("authorization".into(), format!("Bearer {token}"))]).await;
    r.assert_problem(401, "unauthenticated");
    // A 512 KiB token: larger than any head the server reads.
    let token = "a".repeat(512 * 1024);
    let r = get(vec![("authorization".into(), format!("Bearer {token}"))]).await;
    r.assert_problem(431, "headers_too_large");
    // Too many header fields: refused before any handler runs.
    let many = (0..150)
        .map(|i| (format!("x-h{i}"), "v".to_owned()))
        .collect();
    let r = get(many).await;
    r.assert_problem(431, "headers_too_large");
    // And the server still serves.
    let r = app.request(Method::GET, "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn policy_check_reports_an_invalid_limits_file(b: Backend) {
    let app = spawn_app(b).await;
    let bad = policy_dir(
        app.dir.path(),
        "[rate_limits.lookup]\nagent = { per_minute = 0, burst = 5 }\n[tokens]\nmax_lifetime = \"1h\"\n",
    );
    let dir = bad.to_str().unwrap();

    let ran = app
        .cli_proc_with(&["policy", "check"], &[("ARKKU_POLICIES", dir)])
        .finish()
        .await;

    ran.assert_failed();
    assert!(
        ran.stderr.contains("limits.toml")
            && ran.stderr.contains("rate_limits.lookup.agent.per_minute"),
        "{}",
        ran.stderr
    );
}
