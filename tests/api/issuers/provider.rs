//! The SSO provider of the issuer tests: its signing keys (RSA from a
//! fixture, since ring cannot generate RSA keys; P-256 and Ed25519 generated
//! with ring), a JWKS endpoint on a port-0 axum server that counts its
//! requests and can go down, and a vault that trusts it.

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
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend, Reply, TestApp};

pub(super) const ISS: &str = "https://sso.example.test/realms/shop";
/// The provider's test key (PKCS#1 DER, 2048 bits), made with
/// `openssl genrsa -traditional 2048 | openssl rsa -traditional -outform DER`.
/// Signs nothing outside these tests.
pub(super) const RSA_DER: &[u8] = include_bytes!("provider-rsa-test-key.der");
/// How long to wait for something the vault does in the background.
pub(super) const PATIENCE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// The provider: keys and a JWKS server

/// A signing key of the provider and its public JWK.
pub(super) struct Key {
    pub(super) kid: String,
    pub(super) alg: Algorithm,
    pub(super) signing: EncodingKey,
    pub(super) jwk: Value,
    /// The public key's bytes (for the algorithm-confusion attempts).
    pub(super) public: Vec<u8>,
}

pub(super) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(super) fn rsa_key(kid: &str) -> Key {
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

pub(super) fn ec_key(kid: &str) -> Key {
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

pub(super) fn ed_key(kid: &str) -> Key {
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

pub(super) fn jwks(keys: &[&Key]) -> Vec<Value> {
    keys.iter().map(|k| k.jwk.clone()).collect()
}

#[derive(Default)]
pub(super) struct ProviderState {
    pub(super) keys: Mutex<Vec<Value>>,
    pub(super) down: AtomicBool,
    pub(super) requests: AtomicUsize,
}

/// A JWKS endpoint on a port-0 axum server.
pub(super) struct Provider {
    pub(super) state: Arc<ProviderState>,
    pub(super) url: String,
    pub(super) _stop: tokio::sync::oneshot::Sender<()>,
}

pub(super) async fn certs(
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
    pub(super) async fn start(keys: Vec<Value>) -> Provider {
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

    pub(super) fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    pub(super) fn publish(&self, keys: Vec<Value>) {
        *self.state.keys.lock().unwrap() = keys;
    }

    pub(super) fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// Waits until the vault has asked for the keys at least `n` times.
    pub(super) async fn wait_for_requests(&self, n: usize) {
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

pub(super) struct Sso {
    pub(super) app: TestApp,
    pub(super) provider: Provider,
    pub(super) customer: String,
    pub(super) _policies: tempfile::TempDir,
}

pub(super) fn auth_toml(issuer: &str, source: &str, algorithms: &str) -> String {
    format!(
        "[[issuers]]\nissuer = \"{issuer}\"\naudience = \"arkku\"\n{source}\nalgorithms = {algorithms}\n\
         [issuers.claims]\nrole = \"arkku_role\"\npurposes = \"arkku_purposes\"\nchannel = \"arkku_channel\"\n"
    )
}

/// A policy directory with the shipped policies and `auth`.
pub(super) fn policy_dir(auth: &str) -> tempfile::TempDir {
    use arkku::policy::load::{SHIPPED_CHANNELS, SHIPPED_PURPOSES};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("channels.toml"), SHIPPED_CHANNELS).unwrap();
    std::fs::write(dir.path().join("purposes.toml"), SHIPPED_PURPOSES).unwrap();
    std::fs::write(dir.path().join("auth.toml"), auth).unwrap();
    dir
}

pub(super) async fn vault_with(b: Backend, policies: &Path) -> TestApp {
    let dir = PathBuf::from(policies);
    let app = spawn_app_with(b, |c| c.policies = PolicySource::Dir(dir)).await;
    arkku::app::spawn_issuer_refresh(&app.state);
    app
}

/// A vault trusting a provider that publishes `keys`, allowing `algorithms`
/// (a TOML list), with one customer; returns once the keys were fetched.
pub(super) async fn sso_with(b: Backend, keys: &[&Key], algorithms: &str) -> Sso {
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

pub(super) async fn sso(b: Backend, keys: &[&Key]) -> Sso {
    sso_with(b, keys, "[\"RS256\", \"ES256\", \"EdDSA\"]").await
}

impl Sso {
    pub(super) fn now(&self) -> u64 {
        self.app.state.clock.unix_seconds()
    }

    /// The claims of an agent on the phone, for `support`, valid for 10 minutes.
    pub(super) fn claims(&self) -> Value {
        let now = self.now();
        json!({"iss": ISS, "aud": "arkku", "sub": "alice", "arkku_role": "agent",
            "arkku_purposes": "openid support", "arkku_channel": "phone",
            "iat": now, "nbf": now, "exp": now + 600})
    }

    /// [`Sso::claims`] with some replaced (`null` removes one).
    pub(super) fn claims_with(&self, changes: Value) -> Value {
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

    pub(super) async fn read(&self, token: &str) -> Reply {
        self.app
            .read_customer(token, &self.customer, "purpose=support")
            .await
    }

    pub(super) async fn assert_reads(&self, token: &str) {
        let r = self.read(token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(r.json["id"], self.customer.as_str());
    }

    pub(super) async fn assert_refused(&self, token: &str, why: &str) {
        let r = self.read(token).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{why}: {}", r.text);
        r.assert_problem(401, "unauthenticated");
        assert!(!r.text.contains(token), "{why}: the token is not echoed");
    }

    /// Polls until `token` gets `status` (after something in the background).
    pub(super) async fn eventually(&self, token: &str, status: StatusCode) {
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

pub(super) fn sign(key: &Key, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &key.signing).unwrap()
}

pub(super) fn sign_header(header: Header, key: &EncodingKey, claims: &Value) -> String {
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub(super) fn header(alg: Algorithm, kid: &str) -> Header {
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    h
}
