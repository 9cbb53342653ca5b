//! External identity providers (README "Trusting an SSO provider"): a
//! provider's JWKS is served from inside the test (an axum server on port
//! 0 that counts its requests and can go down), its tokens are signed here
//! with RSA (a fixture key: ring cannot generate RSA keys), P-256 and
//! Ed25519 keys (generated with ring), and the vault is driven over HTTP.
//! Time moves with the vault's test clock, so the 30-second refetch limit
//! and the refresh timer are tested without waiting for them.

use std::{
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use arkku::config::PolicySource;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend, Reply, Scenario, TestApp};
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

const ISS: &str = "https://sso.example.test/realms/shop";
/// The provider's test key (PKCS#1 DER, 2048 bits), made with
/// `openssl genrsa -traditional 2048 | openssl rsa -traditional -outform DER`.
/// Signs nothing outside these tests.
const RSA_DER: &[u8] = include_bytes!("fixtures/provider-rsa-test-key.der");
/// How long to wait for something the vault does in the background.
const PATIENCE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// The provider: keys and a JWKS server

/// A signing key of the provider and its public JWK.
struct Key {
    kid: String,
    alg: Algorithm,
    signing: EncodingKey,
    jwk: Value,
    /// The public key's bytes (for the algorithm-confusion attempts).
    public: Vec<u8>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn rsa_key(kid: &str) -> Key {
    let pair = ring::signature::RsaKeyPair::from_der(RSA_DER).unwrap();
    let c: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
    Key {
        kid: kid.into(),
        alg: Algorithm::RS256,
        signing: EncodingKey::from_rsa_der(RSA_DER),
        jwk: json!({"kty": "RSA", "use": "sig", "kid": kid, "n": b64(&c.n), "e": b64(&c.e)}),
        public: pair.public().as_ref().to_vec(),
    }
}

fn ec_key(kid: &str) -> Key {
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING as P256};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&P256, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&P256, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref();
    Key {
        kid: kid.into(),
        alg: Algorithm::ES256,
        signing: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
        public: point.to_vec(),
    }
}

fn ed_key(kid: &str) -> Key {
    use ring::signature::{Ed25519KeyPair, KeyPair};
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    Key {
        kid: kid.into(),
        alg: Algorithm::EdDSA,
        signing: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(&public)}),
        public,
    }
}

fn jwks(keys: &[&Key]) -> Vec<Value> {
    keys.iter().map(|k| k.jwk.clone()).collect()
}

#[derive(Default)]
struct ProviderState {
    keys: Mutex<Vec<Value>>,
    down: AtomicBool,
    requests: AtomicUsize,
}

/// A JWKS endpoint on a port-0 axum server.
struct Provider {
    state: Arc<ProviderState>,
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn certs(
    axum::extract::State(s): axum::extract::State<Arc<ProviderState>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    s.requests.fetch_add(1, Ordering::SeqCst);
    if s.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response();
    }
    let keys = s.keys.lock().unwrap().clone();
    axum::Json(json!({ "keys": keys })).into_response()
}

impl Provider {
    async fn start(keys: Vec<Value>) -> Provider {
        let state = Arc::new(ProviderState::default());
        *state.keys.lock().unwrap() = keys;
        let router = axum::Router::new()
            .route("/realms/shop/certs", axum::routing::get(certs))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/realms/shop/certs",
            listener.local_addr().unwrap()
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Provider {
            state,
            url,
            _stop: tx,
        }
    }

    fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    fn publish(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Waits until the vault has asked for the keys at least `n` times.
    async fn wait_for_requests(&self, n: usize) {
        let start = Instant::now();
        while self.requests() < n {
            assert!(
                start.elapsed() < PATIENCE,
                "the vault asked for the keys {} times, expected {n}",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

// ---------------------------------------------------------------------------
// The vault trusting the provider

struct Sso {
    app: TestApp,
    provider: Provider,
    customer: String,
    _policies: tempfile::TempDir,
}

fn auth_toml(issuer: &str, source: &str, algorithms: &str) -> String {
    format!(
        "[[issuers]]\nissuer = \"{issuer}\"\naudience = \"arkku\"\n{source}\nalgorithms = {algorithms}\n\
         [issuers.claims]\nrole = \"arkku_role\"\npurposes = \"arkku_purposes\"\nchannel = \"arkku_channel\"\n"
    )
}

/// A policy directory with the shipped policies and `auth`.
fn policy_dir(auth: &str) -> tempfile::TempDir {
    use arkku::policy::load::{SHIPPED_CHANNELS, SHIPPED_PURPOSES};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("channels.toml"), SHIPPED_CHANNELS).unwrap();
    std::fs::write(dir.path().join("purposes.toml"), SHIPPED_PURPOSES).unwrap();
    std::fs::write(dir.path().join("auth.toml"), auth).unwrap();
    dir
}

async fn vault_with(b: Backend, policies: &Path) -> TestApp {
    let dir = PathBuf::from(policies);
    let app = spawn_app_with(b, |c| c.policies = PolicySource::Dir(dir)).await;
    arkku::app::spawn_issuer_refresh(&app.state);
    app
}

/// A vault trusting a provider that publishes `keys`, allowing `algorithms`
/// (a TOML list), with one customer; returns once the keys were fetched.
async fn sso_with(b: Backend, keys: &[&Key], algorithms: &str) -> Sso {
    let provider = Provider::start(jwks(keys)).await;
    let policies = policy_dir(&auth_toml(
        ISS,
        &format!("jwks_uri = \"{}\"", provider.url),
        algorithms,
    ));
    let app = vault_with(b, policies.path()).await;
    provider.wait_for_requests(1).await;
    let customer = app
        .create_customer_ok(
            &app.service(),
            json!({"display_name": "Pena", "contacts": [{"channel": "phone", "value": "040 123 4567"}]}),
        )
        .await;
    Sso {
        app,
        provider,
        customer,
        _policies: policies,
    }
}

async fn sso(b: Backend, keys: &[&Key]) -> Sso {
    sso_with(b, keys, "[\"RS256\", \"ES256\", \"EdDSA\"]").await
}

impl Sso {
    fn now(&self) -> u64 {
        self.app.state.clock.unix_seconds()
    }

    /// The claims of an agent on the phone, for `support`, valid for 10 minutes.
    fn claims(&self) -> Value {
        let now = self.now();
        json!({"iss": ISS, "aud": "arkku", "sub": "alice", "arkku_role": "agent",
            "arkku_purposes": "openid support", "arkku_channel": "phone",
            "iat": now, "nbf": now, "exp": now + 600})
    }

    /// [`Sso::claims`] with some replaced (`null` removes one).
    fn claims_with(&self, changes: Value) -> Value {
        let mut c = self.claims();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    }

    async fn read(&self, token: &str) -> Reply {
        self.app
            .read_customer(token, &self.customer, "purpose=support")
            .await
    }

    async fn assert_reads(&self, token: &str) {
        let r = self.read(token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["id"], self.customer.as_str());
    }

    async fn assert_refused(&self, token: &str, why: &str) {
        let r = self.read(token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}: {}", r.text);
        r.assert_problem(401, "unauthenticated");
        assert!(!r.text.contains(token), "{why}: the token is not echoed");
    }

    /// Polls until `token` gets `status` (after something in the background).
    async fn eventually(&self, token: &str, status: StatusCode) {
        let start = Instant::now();
        loop {
            let r = self.read(token).await;
            if r.status == status {
                return;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "still {} rather than {status}: {}",
                r.status,
                r.text
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &key.signing).unwrap()
}

fn sign_header(header: Header, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn header(alg: Algorithm, kid: &str) -> Header {
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    h
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
