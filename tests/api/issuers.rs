//! External identity providers (README "Trusting an SSO provider"): a
//! provider's JWKS is served from inside the test ([`provider`]), its
//! tokens are signed here with RSA, P-256 and Ed25519 keys, and the vault is
//! driven over HTTP. Time moves with the vault's test clock, so the
//! 30-second refetch limit and the refresh timer are tested without waiting
//! for them.

mod provider;

use std::{path::Path, time::Duration};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::json;

use self::provider::*;
use crate::helpers::{Backend, Scenario};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        rs256_es256_and_eddsa_tokens_of_a_trusted_provider_read_a_profile,
        the_audit_log_names_the_providers_subject_qualified_by_its_issuer,
        a_verified_token_is_cached_but_still_expires_on_the_vaults_clock,
        a_new_key_at_the_provider_is_accepted_after_a_refetch,
        a_key_withdrawn_by_the_provider_is_refused_after_the_refresh,
        a_provider_that_goes_down_leaves_the_last_good_keys_in_use,
        a_provider_down_at_start_does_not_stop_the_vault,
        unknown_kids_refetch_at_most_once_per_thirty_seconds,
        a_foreign_issuers_hs256_token_is_refused,
        an_alg_swap_is_refused,
        wrong_audience_issuer_time_role_or_key_headers_are_refused,
        keys_from_a_jwks_file_are_trusted_too,
        policy_check_names_file_key_and_value_of_a_bad_auth_toml,
    ]
}

// ---------------------------------------------------------------------------
// Scenarios

async fn rs256_es256_and_eddsa_tokens_of_a_trusted_provider_read_a_profile(b: Backend) {
    let (rsa, ec, ed) = (rsa_key("rsa-1"), ec_key("ec-1"), ed_key("ed-1"));
    let s = sso(b, &[&rsa, &ec, &ed]).await;
    for key in [&rsa, &ec, &ed] {
        let token = sign(key, &s.claims());
        let r = s.read(&token).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}: {}", key.alg, r.text);
        // An agent on the phone for support sees the phone number (masked).
        assert_eq!(r.json["contacts"][0]["channel"], "phone", "{}", r.text);
    }
    // Purposes may come as an array too.
    let token = sign(&ec, &s.claims_with(json!({"arkku_purposes": ["support"]})));
    s.assert_reads(&token).await;
    // Without the purpose in its claims, the provider's agent may not read.
    let token = sign(&ec, &s.claims_with(json!({"arkku_purposes": "openid"})));
    let r = s.read(&token).await;
    r.assert_problem(403, "purpose_not_allowed");
}

async fn the_audit_log_names_the_providers_subject_qualified_by_its_issuer(b: Backend) {
    let ec = ec_key("ec-1");
    let s = sso(b, &[&ec]).await;
    s.assert_reads(&sign(&ec, &s.claims())).await;

    let r = s
        .app
        .request(
            Method::GET,
            "/v1/audit?action=customer.read",
            Some(&s.app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let entries = r.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", r.text);
    assert_eq!(
        entries[0]["actor"],
        json!({"sub": format!("{ISS}|alice"), "role": "agent", "client": null})
    );
    assert_eq!(entries[0]["decision"], "allow");
    assert_eq!(entries[0]["customer_id"], s.customer.as_str());
    // A reviewer finds the provider's user by the same name.
    let actor: String = url_encode(&format!("{ISS}|alice"));
    let r = s
        .app
        .request(
            Method::GET,
            &format!("/v1/audit?actor={actor}"),
            Some(&s.app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.json["entries"].as_array().unwrap().len(), 1, "{}", r.text);
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn a_verified_token_is_cached_but_still_expires_on_the_vaults_clock(b: Backend) {
    let rsa = rsa_key("rsa-1");
    let s = sso(b, &[&rsa]).await;
    let issuers = s.app.state.auth.issuers();
    let token = sign(&rsa, &s.claims());
    for _ in 0..3 {
        s.assert_reads(&token).await;
    }
    assert_eq!(issuers.cached_tokens(), 1, "verified once, kept");
    s.assert_reads(&sign(&rsa, &s.claims_with(json!({"sub": "bob"}))))
        .await;
    assert_eq!(issuers.cached_tokens(), 2);

    // Ten minutes and a bit later the cached token has expired.
    s.app.set_clock_ahead(Duration::from_secs(600 + 10));
    let r = s.read(&token).await;
    r.assert_problem(401, "unauthenticated");
    assert!(
        r.json["detail"].as_str().unwrap().contains("expired"),
        "{}",
        r.text
    );
}

async fn a_new_key_at_the_provider_is_accepted_after_a_refetch(b: Backend) {
    let (old, new) = (ec_key("2024"), rsa_key("2025"));
    let s = sso(b, &[&old]).await;
    s.assert_reads(&sign(&old, &s.claims())).await;

    s.provider.publish(jwks(&[&old, &new]));
    // Within 30 s of the last fetch an unknown kid fetches nothing.
    s.assert_refused(&sign(&new, &s.claims()), "the new kid before a refetch")
        .await;
    assert_eq!(s.provider.requests(), 1);

    s.app.set_clock_ahead(Duration::from_secs(31));
    s.assert_reads(&sign(&new, &s.claims())).await;
    assert_eq!(s.provider.requests(), 2, "the unknown kid fetched once");
    s.assert_reads(&sign(&old, &s.claims())).await;
}

async fn a_key_withdrawn_by_the_provider_is_refused_after_the_refresh(b: Backend) {
    let (old, kept) = (ec_key("old"), ed_key("kept"));
    let s = sso(b, &[&old, &kept]).await;
    // A token that lives 4 hours, verified and cached.
    let long = |key: &Key| {
        let now = s.now();
        sign(
            key,
            &s.claims_with(json!({"iat": now, "nbf": now, "exp": now + 4 * 3600})),
        )
    };
    let cached = long(&old);
    s.assert_reads(&cached).await;

    s.provider.publish(jwks(&[&kept]));
    // Until the refresh the vault knows nothing of it.
    s.assert_reads(&cached).await;
    // Past the refresh interval (1 h by default) the timer fetches again.
    s.app.set_clock_ahead(Duration::from_secs(3600 + 60));
    s.provider.wait_for_requests(2).await;
    s.eventually(&cached, StatusCode::UNAUTHORIZED).await;
    s.assert_refused(&long(&old), "a fresh token of the withdrawn key")
        .await;
    s.assert_reads(&long(&kept)).await;
}

async fn a_provider_that_goes_down_leaves_the_last_good_keys_in_use(b: Backend) {
    let (a, c) = (rsa_key("a"), ec_key("c"));
    let s = sso(b, &[&a]).await;
    s.assert_reads(&sign(&a, &s.claims())).await;

    s.provider.set_down(true);
    s.app.set_clock_ahead(Duration::from_secs(3600 + 60));
    s.provider.wait_for_requests(2).await;
    // The refresh failed; a token of the last good key (not cached) still works.
    s.assert_reads(&sign(&a, &s.claims())).await;
    // A key it never saw cannot be fetched while the provider is down.
    s.provider.publish(jwks(&[&a, &c]));
    s.assert_refused(
        &sign(&c, &s.claims()),
        "a new key while the provider is down",
    )
    .await;

    // Back up: after a failure the timer tries again 30 s later.
    s.provider.set_down(false);
    s.app.set_clock_ahead(Duration::from_secs(3600 + 60 + 31));
    s.eventually(&sign(&c, &s.claims()), StatusCode::OK).await;
    s.assert_reads(&sign(&a, &s.claims())).await;
}

async fn a_provider_down_at_start_does_not_stop_the_vault(b: Backend) {
    let ec = ec_key("ec-1");
    let provider = Provider::start(jwks(&[&ec])).await;
    provider.set_down(true);
    let policies = policy_dir(&auth_toml(
        ISS,
        &format!("jwks_uri = \"{}\"", provider.url),
        "[\"ES256\"]",
    ));
    let app = vault_with(b, policies.path()).await;
    provider.wait_for_requests(1).await;
    let customer = app
        .create_customer_ok(
            &app.service(),
            json!({"contacts": [{"channel": "phone", "value": "040 123 4567"}]}),
        )
        .await;
    let s = Sso {
        app,
        provider,
        customer,
        _policies: policies,
    };
    // The vault serves; the provider's tokens wait for its keys.
    s.assert_refused(&sign(&ec, &s.claims()), "no keys yet")
        .await;
    s.provider.set_down(false);
    s.app.set_clock_ahead(Duration::from_secs(31));
    s.eventually(&sign(&ec, &s.claims()), StatusCode::OK).await;
}

async fn unknown_kids_refetch_at_most_once_per_thirty_seconds(b: Backend) {
    let ec = ec_key("ec-1");
    let s = sso(b, &[&ec]).await;
    let unknown =
        |s: &Sso, kid: &str| sign_header(header(Algorithm::ES256, kid), &ec.signing, &s.claims());
    for i in 0..5 {
        s.assert_refused(&unknown(&s, &format!("made-up-{i}")), "unknown kid")
            .await;
    }
    assert_eq!(s.provider.requests(), 1, "no fetch within 30 s of the last");

    s.app.set_clock_ahead(Duration::from_secs(31));
    // A burst of unknown kids at once: one fetch.
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..20 {
        let request = s
            .app
            .client
            .get(format!(
                "{}/v1/customers/{}?purpose=support",
                s.app.address, s.customer
            ))
            .bearer_auth(unknown(&s, &format!("burst-{i}")));
        burst.spawn(async move { request.send().await.unwrap().status() });
    }
    while let Some(status) = burst.join_next().await {
        assert_eq!(status.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(s.provider.requests(), 2, "one fetch for the burst");
    s.assert_refused(&unknown(&s, "one-more"), "unknown kid")
        .await;
    assert_eq!(s.provider.requests(), 2);
    // The provider's own kid still works without any fetch.
    s.assert_reads(&sign(&ec, &s.claims())).await;
    assert_eq!(s.provider.requests(), 2);
}

async fn a_foreign_issuers_hs256_token_is_refused(b: Backend) {
    let rsa = rsa_key("rsa-1");
    let s = sso(b, &[&rsa]).await;
    s.assert_reads(&sign(&rsa, &s.claims())).await;
    for secret in [
        b"a secret the provider and the attacker share".to_vec(),
        rsa.public.clone(),
        rsa.jwk["n"].as_str().unwrap().as_bytes().to_vec(),
    ] {
        let token = sign_header(
            header(Algorithm::HS256, "rsa-1"),
            &EncodingKey::from_secret(&secret),
            &s.claims(),
        );
        s.assert_refused(&token, "HS256 from a foreign issuer")
            .await;
    }
    // Nor the local issuer's key for the provider's name.
    let token = sign_header(
        Header::new(Algorithm::HS256),
        &EncodingKey::from_secret(s.app.issuer_key().expose_secret()),
        &s.claims(),
    );
    s.assert_refused(&token, "the local key signing for the provider")
        .await;
    assert_eq!(
        s.provider.requests(),
        1,
        "a refused algorithm fetches nothing"
    );
}

async fn an_alg_swap_is_refused(b: Backend) {
    let (rsa, ec, ed) = (rsa_key("rsa-1"), ec_key("ec-1"), ed_key("ed-1"));
    // The issuer allows RS256 and ES256 only; its JWKS also holds an Ed25519 key.
    let s = sso_with(b, &[&rsa, &ec, &ed], "[\"RS256\", \"ES256\"]").await;
    s.assert_reads(&sign(&rsa, &s.claims())).await;
    s.assert_reads(&sign(&ec, &s.claims())).await;
    let cases = [
        (
            "HS256 keyed with the RSA public key",
            sign_header(
                header(Algorithm::HS256, "rsa-1"),
                &EncodingKey::from_secret(&rsa.public),
                &s.claims(),
            ),
        ),
        (
            "HS256 keyed with the EC public point",
            sign_header(
                header(Algorithm::HS256, "ec-1"),
                &EncodingKey::from_secret(&ec.public),
                &s.claims(),
            ),
        ),
        (
            "RS256 header on the EC key",
            sign_header(header(Algorithm::RS256, "ec-1"), &rsa.signing, &s.claims()),
        ),
        (
            "ES256 header on the RSA key",
            sign_header(header(Algorithm::ES256, "rsa-1"), &ec.signing, &s.claims()),
        ),
        ("EdDSA, not on the issuer's list", sign(&ed, &s.claims())),
        (
            "RS512 with the RSA key",
            sign_header(header(Algorithm::RS512, "rsa-1"), &rsa.signing, &s.claims()),
        ),
        (
            "PS256 with the RSA key",
            sign_header(header(Algorithm::PS256, "rsa-1"), &rsa.signing, &s.claims()),
        ),
    ];
    for (why, token) in cases {
        s.assert_refused(&token, why).await;
    }
}

async fn wrong_audience_issuer_time_role_or_key_headers_are_refused(b: Backend) {
    let (ec, rsa) = (ec_key("ec-1"), rsa_key("rsa-1"));
    let s = sso(b, &[&ec, &rsa]).await;
    let now = s.now();
    s.assert_reads(&sign(&ec, &s.claims())).await;
    let refused = [
        ("another audience", json!({"aud": "crm"})),
        ("no audience", json!({"aud": null})),
        (
            "an issuer not in auth.toml",
            json!({"iss": format!("{ISS}/")}),
        ),
        ("the local issuer's name", json!({"iss": "arkku-local"})),
        ("no issuer", json!({"iss": null})),
        ("expired", json!({"exp": now - 60})),
        ("no exp", json!({"exp": null})),
        ("not yet valid", json!({"nbf": now + 60})),
        ("longer than the 12 h cap", json!({"exp": now + 13 * 3600})),
        (
            "a customer",
            json!({"arkku_role": "customer", "sub": uuid::Uuid::now_v7().to_string()}),
        ),
        ("no role", json!({"arkku_role": null})),
        ("an unknown role", json!({"arkku_role": "superuser"})),
        ("no sub", json!({"sub": null})),
        ("a bad channel", json!({"arkku_channel": "Phone Line"})),
    ];
    for (why, changes) in refused {
        s.assert_refused(&sign(&ec, &s.claims_with(changes)), why)
            .await;
    }
    let r = s
        .read(&sign(&ec, &s.claims_with(json!({"exp": now - 60}))))
        .await;
    assert!(
        r.json["detail"].as_str().unwrap().contains("expired"),
        "{}",
        r.text
    );

    let mut jku = header(Algorithm::ES256, "ec-1");
    jku.jku = Some(s.provider.url.clone());
    let mut x5u = header(Algorithm::ES256, "ec-1");
    x5u.x5u = Some(s.provider.url.clone());
    let mut embedded = header(Algorithm::ES256, "ec-1");
    embedded.jwk = Some(serde_json::from_value(ec.jwk.clone()).unwrap());
    let mut x5c = header(Algorithm::ES256, "ec-1");
    x5c.x5c = Some(vec![b64(b"not really a certificate")]);
    for (why, h) in [("jku", jku), ("x5u", x5u), ("jwk", embedded), ("x5c", x5c)] {
        s.assert_refused(&sign_header(h, &ec.signing, &s.claims()), why)
            .await;
    }
    // Two keys and no kid: which one is meant is not guessed.
    let mut no_kid = Header::new(Algorithm::ES256);
    no_kid.kid = None;
    s.assert_refused(&sign_header(no_kid, &ec.signing, &s.claims()), "no kid")
        .await;
    // A foreign signature under the provider's kid.
    let forger = ec_key("ec-1");
    s.assert_refused(&sign(&forger, &s.claims()), "another key, same kid")
        .await;
}

async fn keys_from_a_jwks_file_are_trusted_too(b: Backend) {
    let ed = ed_key("file-1");
    let policies = policy_dir(&auth_toml(
        ISS,
        "jwks_file = \"sso-keys.json\"",
        "[\"EdDSA\"]",
    ));
    std::fs::write(
        policies.path().join("sso-keys.json"),
        json!({"keys": jwks(&[&ed])}).to_string(),
    )
    .unwrap();
    let app = vault_with(b, policies.path()).await;
    let customer = app
        .create_customer_ok(
            &app.service(),
            json!({"contacts": [{"channel": "phone", "value": "040 123 4567"}]}),
        )
        .await;
    let s = Sso {
        app,
        provider: Provider::start(Vec::new()).await,
        customer,
        _policies: policies,
    };
    s.assert_reads(&sign(&ed, &s.claims())).await;
    s.assert_refused(&sign(&ec_key("file-1"), &s.claims()), "ES256 not allowed")
        .await;
}

async fn policy_check_names_file_key_and_value_of_a_bad_auth_toml(b: Backend) {
    let ec = ec_key("ec-1");
    let s = sso(b, &[&ec]).await;
    let check = |dir: &Path| {
        s.app
            .cli_proc_with(
                &["policy", "check"],
                &[("ARKKU_POLICIES", dir.to_str().unwrap())],
            )
            .finish()
    };
    let uri = format!("jwks_uri = \"{}\"", s.provider.url);
    let good = policy_dir(&auth_toml(ISS, &uri, "[\"RS256\", \"ES256\"]"));
    let r = check(good.path()).await;
    assert!(r.status.success(), "{}", r.stderr);
    assert!(r.stdout.contains(ISS), "lists the issuer: {}", r.stdout);

    let cases = [
        (
            auth_toml(ISS, &uri, "[\"RS256\", \"HS256\"]"),
            "issuers[0].algorithms",
            "\"HS256\" is a shared-secret (HMAC) algorithm",
        ),
        (
            auth_toml(
                ISS,
                "jwks_uri = \"http://sso.example.test/certs\"",
                "[\"RS256\"]",
            ),
            "issuers[0].jwks_uri",
            "\"http://sso.example.test/certs\" must be https",
        ),
        (
            auth_toml("arkku-local", &uri, "[\"RS256\"]"),
            "issuers[0].issuer",
            "\"arkku-local\" is the vault's own issuer",
        ),
        (
            auth_toml(ISS, "jwks_file = \"missing.json\"", "[\"RS256\"]"),
            "issuers[0].jwks_file",
            "missing.json",
        ),
        (
            auth_toml(ISS, &uri, "[\"ES256\"]")
                .replace("role = \"arkku_role\"", "fixed_role = \"customer\""),
            "issuers[0].claims.fixed_role",
            "\"customer\" cannot come from a foreign issuer",
        ),
    ];
    for (text, key, reason) in cases {
        let dir = policy_dir(&text);
        let r = check(dir.path()).await;
        r.assert_failed();
        let file = dir.path().join("auth.toml").display().to_string();
        for needle in [file.as_str(), key, reason] {
            assert!(r.stderr.contains(needle), "{needle:?} not in {}", r.stderr);
        }
    }
}
