//! Bearer tokens (SECURITY.md, "Tokens"): forged, tampered, foreign-signed,
//! mis-addressed, expired, not-yet-valid and key-pointing tokens are all
//! 401 `unauthenticated`, look alike, never come back in the answer, and
//! change nothing. Every refusal is checked against a positive control (the
//! honest twin of the token is accepted), so a 401 proves the defect was
//! noticed and not that the request was wrong in some other way.

use arkku::config::{AUDIENCE, LOCAL_ISSUER};
use jsonwebtoken::{
    jwk::{AlgorithmParameters, CommonParameters, Jwk, OctetKeyParameters, OctetKeyType},
    Algorithm, EncodingKey, Header,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{send, spawn_app, Backend, Reply, Scenario, TestApp};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_valid_token_reaches_the_customer_endpoints,
        a_request_without_an_authorization_header_is_unauthenticated,
        a_non_bearer_scheme_is_unauthenticated,
        a_garbage_token_is_unauthenticated,
        an_alg_none_token_is_unauthenticated,
        a_token_signed_with_a_guessed_key_is_unauthenticated,
        a_token_whose_payload_was_modified_is_unauthenticated,
        a_payload_re_signed_with_a_random_key_is_unauthenticated,
        a_token_for_another_audience_is_unauthenticated,
        a_token_from_another_issuer_is_unauthenticated,
        a_token_expired_beyond_the_leeway_is_unauthenticated,
        a_token_not_yet_valid_beyond_the_leeway_is_unauthenticated,
        the_clock_leeway_is_seconds_not_zero_and_not_a_minute,
        a_token_without_exp_is_unauthenticated,
        a_token_without_sub_iss_aud_or_role_is_unauthenticated,
        a_token_whose_header_names_a_jku_is_unauthenticated,
        a_token_carrying_its_own_jwk_is_unauthenticated,
        a_token_whose_header_names_an_x5u_is_unauthenticated,
        a_token_carrying_an_x5c_chain_is_unauthenticated,
        hs384_and_hs512_signed_with_the_issuer_key_are_unauthenticated,
        an_asymmetric_algorithm_header_is_unauthenticated,
        a_token_with_an_unknown_role_is_unauthenticated,
        a_customer_token_whose_sub_is_not_a_uuid_is_unauthenticated,
        a_refusal_says_whether_the_token_was_missing_malformed_expired_or_invalid,
        a_refused_token_is_never_echoed,
        a_refused_token_changes_nothing,
    ]
}

// ---------------------------------------------------------------------------
// Crafting tokens

const PHONE: &str = "040 123 4567";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims of a valid agent token serving the phone channel for `support`.
fn claims() -> Value {
    let now = now();
    json!({
        "sub": "agent-1",
        "role": "agent",
        "purposes": ["support"],
        "channel": "phone",
        "iss": LOCAL_ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    })
}

/// [`claims`] with some fields replaced (`null` removes a field).
fn claims_with(changes: Value) -> Value {
    let mut c = claims();
    let map = c.as_object_mut().expect("claims are an object");
    for (k, v) in changes.as_object().expect("changes are an object") {
        if v.is_null() {
            map.remove(k);
        } else {
            map.insert(k.clone(), v.clone());
        }
    }
    c
}

/// Signs with jsonwebtoken, whatever the header says.
fn sign(header: &Header, claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(key)).expect("token signs")
}

/// A well-formed HS256 token over `claims` signed with `key`.
fn hs256(claims: &Value, key: &[u8]) -> String {
    sign(&Header::new(Algorithm::HS256), claims, key)
}

/// Base64url without padding (RFC 7515 §2), written out so the test needs no
/// encoder from the crate under test.
fn b64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let n = (u32::from(chunk[0]) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn part(v: &Value) -> String {
    b64url(&serde_json::to_vec(v).expect("json"))
}

/// A token assembled by hand: any header, any claims, HMAC-SHA256 over them.
fn hand_hs256(header: &Value, claims: &Value, key: &[u8]) -> String {
    let input = format!("{}.{}", part(header), part(claims));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let tag = ring::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64url(tag.as_ref()))
}

/// A token assembled by hand with the given signature bytes.
fn hand_signed(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!("{}.{}.{}", part(header), part(claims), b64url(signature))
}

fn random_bytes(n: usize) -> Vec<u8> {
    use ring::rand::SecureRandom;
    let mut v = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut v)
        .expect("randomness");
    v
}

/// The three dot-separated parts of a token.
fn parts(token: &str) -> [&str; 3] {
    let mut it = token.splitn(3, '.');
    let p = [
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
    ];
    assert!(!p[2].is_empty(), "a signed token has three parts: {token}");
    p
}

// ---------------------------------------------------------------------------
// A vault with one customer, and the two customer endpoints the tokens try

/// What came back, with the headers that matter here.
struct Answer {
    reply: Reply,
    www_authenticate: Option<String>,
    request_id_header: Option<String>,
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut rb = app.client.request(method, format!("{}{path}", app.address));
    if let Some(a) = authorization {
        rb = rb.header("authorization", a);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let reply = send(rb).await;
    Answer {
        www_authenticate: reply.header("www-authenticate").map(str::to_owned),
        request_id_header: reply.header("x-request-id").map(str::to_owned),
        reply,
    }
}

struct Vault {
    app: TestApp,
    /// An existing customer with a phone contact.
    id: String,
    /// The local issuer key bytes (HS256).
    key: Vec<u8>,
}

async fn vault(b: Backend) -> Vault {
    let app = spawn_app(b).await;
    let id = app
        .create_customer_ok(
            &app.service(),
            json!({"display_name": "Pena", "contacts": [{"channel": "phone", "value": PHONE}]}),
        )
        .await;
    let key = app.issuer_key().expose_secret().to_vec();
    Vault { app, id, key }
}

impl Vault {
    /// A valid token (agent, phone, support) signed with the issuer key.
    fn good(&self) -> String {
        hs256(&claims(), &self.key)
    }

    /// `GET /v1/customers/{id}?purpose=support` with this Authorization header.
    async fn read(&self, authorization: Option<&str>) -> Answer {
        call(
            &self.app,
            Method::GET,
            &format!("/v1/customers/{}?purpose=support", self.id),
            authorization,
            None,
        )
        .await
    }

    /// `POST /v1/lookup` of the customer's phone number.
    async fn lookup(&self, authorization: Option<&str>) -> Answer {
        call(
            &self.app,
            Method::POST,
            "/v1/lookup",
            authorization,
            Some(json!({"channel": "phone", "value": PHONE, "purpose": "support"})),
        )
        .await
    }

    /// Audit entries that allowed something.
    async fn allowed_entries(&self) -> usize {
        arkku::store::audit::entries_after(self.app.db(), 0, 1_000_000)
            .await
            .expect("audit")
            .iter()
            .filter(|e| e.decision == "allow")
            .count()
    }

    /// The token gets the profile and the lookup match.
    async fn assert_accepted(&self, token: &str) {
        let bearer = format!("Bearer {token}");
        let r = self.read(Some(&bearer)).await.reply;
        assert_eq!(r.status, StatusCode::OK, "read with {token}: {}", r.text);
        assert_eq!(r.json["id"], self.id.as_str());
        let r = self.lookup(Some(&bearer)).await.reply;
        assert_eq!(r.status, StatusCode::OK, "lookup with {token}: {}", r.text);
        assert_eq!(r.json["matches"][0]["customer_id"], self.id.as_str());
    }

    /// The token is refused on both endpoints.
    async fn assert_refused(&self, token: &str) {
        self.assert_refused_header(Some(&format!("Bearer {token}")), token)
            .await;
    }

    /// This Authorization header is refused on both endpoints: 401
    /// `unauthenticated` problem+json with `WWW-Authenticate: Bearer` and a
    /// request id, nothing of `secret` in the answer, nothing allowed.
    async fn assert_refused_header(&self, authorization: Option<&str>, secret: &str) {
        let allowed = self.allowed_entries().await;
        for (what, a) in [
            ("read", self.read(authorization).await),
            ("lookup", self.lookup(authorization).await),
        ] {
            let r = &a.reply;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{what} with {authorization:?}: {}",
                r.text
            );
            r.assert_problem(401, "unauthenticated");
            assert_eq!(
                a.www_authenticate.as_deref(),
                Some("Bearer"),
                "{what}: WWW-Authenticate"
            );
            let rid = r.json["request_id"].as_str().unwrap_or("");
            assert!(!rid.is_empty(), "{what}: request_id in {}", r.text);
            assert_eq!(a.request_id_header.as_deref(), Some(rid), "{what}");
            assert!(
                r.json.get("id").is_none() && r.json.get("matches").is_none(),
                "{what}: no data in {}",
                r.text
            );
            assert_not_echoed(r, secret);
        }
        assert_eq!(
            self.allowed_entries().await,
            allowed,
            "a refused token is never allowed anything"
        );
    }
}

/// Neither the token nor any long piece of it is in the answer.
#[track_caller]
fn assert_not_echoed(r: &Reply, secret: &str) {
    if secret.len() >= 6 {
        assert!(!r.text.contains(secret), "the token came back: {}", r.text);
    }
    for piece in secret.split('.').filter(|p| p.len() >= 12) {
        assert!(
            !r.text.contains(piece),
            "a piece of the token came back: {}",
            r.text
        );
    }
}

// ---------------------------------------------------------------------------
// Scenarios

async fn a_valid_token_reaches_the_customer_endpoints(b: Backend) {
    let v = vault(b).await;
    // What `arkku token` issues, what jsonwebtoken signs, and what this file
    // assembles by hand are all accepted: the forgeries below differ from
    // these in one defect only.
    v.assert_accepted(&v.app.agent("phone")).await;
    v.assert_accepted(&v.good()).await;
    v.assert_accepted(&hand_hs256(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &claims(),
        &v.key,
    ))
    .await;
}

async fn a_request_without_an_authorization_header_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_refused_header(None, "").await;
    v.assert_refused_header(Some(""), "").await;
    v.assert_refused_header(Some("Bearer"), "").await;
    v.assert_refused_header(Some("Bearer "), "").await;
    v.assert_refused_header(Some("Bearer    "), "").await;
}

async fn a_non_bearer_scheme_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    let good = v.good();
    v.assert_accepted(&good).await;
    let basic = format!("Basic {}", b64url(b"agent-1:secret"));
    v.assert_refused_header(Some(&basic), &basic).await;
    // Even a valid token is refused under another scheme.
    for scheme in ["Basic", "Token", "JWT", "Digest", "Bearer:", "Bearerx"] {
        v.assert_refused_header(Some(&format!("{scheme} {good}")), &good)
            .await;
    }
    // No separator between scheme and token.
    v.assert_refused_header(Some(&format!("Bearer{good}")), &good)
        .await;
    // The bare token without a scheme.
    v.assert_refused_header(Some(&good), &good).await;
}

async fn a_garbage_token_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    let good = v.good();
    let [h, p, s] = parts(&good);
    let garbage = [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        "..".to_owned(),
        "...".to_owned(),
        "eyJ.eyJ.eyJ".to_owned(),
        "null".to_owned(),
        "{}".to_owned(),
        format!("{h}.{p}"),
        format!("{h}.{p}."),
        format!("{h}..{s}"),
        format!(".{p}.{s}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{s}x"),
        format!("{h}.{p}.!{s}"),
        format!("{p}.{h}.{s}"),
        good.replace('.', ""),
        good.chars().rev().collect(),
        // Over the 8 KiB token limit.
        format!("{h}.{}.{s}", "A".repeat(9000)),
    ];
    for token in &garbage {
        v.assert_refused(token).await;
    }
}

async fn an_alg_none_token_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    let c = claims();
    // The hand-built HS256 twin is accepted: the encoding below is sound.
    v.assert_accepted(&hand_hs256(
        &json!({"alg": "HS256", "typ": "JWT"}),
        &c,
        &v.key,
    ))
    .await;
    let real_signature = parts(&v.good())[2].to_owned();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        // Empty signature, the classic form.
        v.assert_refused(&format!("{}.{}.", part(&header), part(&c)))
            .await;
        // Without the trailing dot.
        v.assert_refused(&format!("{}.{}", part(&header), part(&c)))
            .await;
        // With a real signature attached.
        v.assert_refused(&format!("{}.{}.{real_signature}", part(&header), part(&c)))
            .await;
    }
    // No alg at all.
    v.assert_refused(&hand_hs256(&json!({"typ": "JWT"}), &c, &v.key))
        .await;
}

async fn a_token_signed_with_a_guessed_key_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    let guesses: [&[u8]; 8] = [
        b"secret",
        b"",
        b"arkku",
        b"arkku-local",
        b"changeme",
        b"password",
        &[0u8; 32],
        b"your-256-bit-secret",
    ];
    for key in guesses {
        v.assert_refused(&hs256(&claims(), key)).await;
    }
}

async fn a_token_whose_payload_was_modified_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    let good = v.good();
    v.assert_accepted(&good).await;
    let [h, _, s] = parts(&good);
    let tampered = [
        json!({"role": "compliance"}),
        json!({"role": "service", "channel": null}),
        json!({"purposes": ["support", "marketing", "dsr"]}),
        json!({"channel": "email"}),
        json!({"sub": "someone-else"}),
        json!({"exp": now() + 10 * 365 * 24 * 3600}),
    ];
    for change in tampered {
        let payload = part(&claims_with(change.clone()));
        let token = format!("{h}.{payload}.{s}");
        v.assert_refused(&token).await;
    }
    // Re-encoding the very same claims differently (key order, spacing)
    // changes the signed bytes too.
    let spaced = b64url(
        serde_json::to_string_pretty(&claims())
            .expect("json")
            .as_bytes(),
    );
    v.assert_refused(&format!("{h}.{spaced}.{s}")).await;
}

async fn a_payload_re_signed_with_a_random_key_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    for len in [32, 64, 16] {
        let key = random_bytes(len);
        v.assert_refused(&hs256(&claims(), &key)).await;
        v.assert_refused(&hs256(&claims_with(json!({"role": "compliance"})), &key))
            .await;
    }
}

async fn a_token_for_another_audience_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    for aud in [
        json!("other-service"),
        json!(["other-service"]),
        json!("ARKKU"),
        json!(""),
        json!([]),
        json!(42),
    ] {
        v.assert_refused(&hs256(&claims_with(json!({"aud": aud})), &v.key))
            .await;
    }
}

async fn a_token_from_another_issuer_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    for iss in [
        json!("https://attacker.example"),
        json!("arkku"),
        json!("ARKKU-LOCAL"),
        json!("arkku-local "),
        json!(""),
        json!(["https://attacker.example"]),
    ] {
        v.assert_refused(&hs256(&claims_with(json!({"iss": iss})), &v.key))
            .await;
    }
}

async fn a_token_expired_beyond_the_leeway_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    let now = now();
    for exp in [now - 60, now - 30, now - 3600, 0] {
        let c = claims_with(json!({"iat": exp - 600, "nbf": exp - 600, "exp": exp}));
        v.assert_refused(&hs256(&c, &v.key)).await;
    }
}

async fn a_token_not_yet_valid_beyond_the_leeway_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    let now = now();
    for nbf in [now + 60, now + 30, now + 3600] {
        let c = claims_with(json!({"iat": now, "nbf": nbf, "exp": nbf + 600}));
        v.assert_refused(&hs256(&c, &v.key)).await;
    }
}

async fn the_clock_leeway_is_seconds_not_zero_and_not_a_minute(b: Backend) {
    let v = vault(b).await;
    // Each token is made from the clock just before it is sent, so the
    // margins below hold however slow the machine is.
    let expired = |secs: i64| {
        let now = now();
        hs256(
            &claims_with(json!({"iat": now - 600, "nbf": now - 600, "exp": now - secs})),
            &v.key,
        )
    };
    let early = |secs: i64| {
        let now = now();
        hs256(
            &claims_with(json!({"iat": now, "nbf": now + secs, "exp": now + 600})),
            &v.key,
        )
    };
    // Inside the leeway of 5 s: a clock a few seconds off is tolerated.
    v.assert_accepted(&expired(3)).await;
    v.assert_accepted(&early(3)).await;
    // Past it, refused, though the library default (a minute) would accept.
    for secs in [10, 59, 60] {
        v.assert_refused(&expired(secs)).await;
        v.assert_refused(&early(secs)).await;
    }
}

async fn a_token_without_exp_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    for exp in [Value::Null, json!("9999999999"), json!(-1), json!(true)] {
        let mut c = claims();
        if exp.is_null() {
            c.as_object_mut().expect("object").remove("exp");
        } else {
            c["exp"] = exp;
        }
        v.assert_refused(&hs256(&c, &v.key)).await;
    }
}

async fn a_token_without_sub_iss_aud_or_role_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    for claim in ["sub", "iss", "aud", "role"] {
        let mut c = claims();
        c.as_object_mut().expect("object").remove(claim);
        v.assert_refused(&hs256(&c, &v.key)).await;
    }
    v.assert_refused(&hs256(&claims_with(json!({"sub": ""})), &v.key))
        .await;
    v.assert_refused(&hs256(&json!({}), &v.key)).await;
}

/// A header that names `jku`/`jwk`/`x5u`/`x5c` is refused even when the
/// signature is made with the real issuer key: the header alone is the defect.
async fn a_token_whose_header_names_a_jku_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    let mut header = Header::new(Algorithm::HS256);
    header.jku = Some("https://attacker.example/.well-known/jwks.json".into());
    v.assert_refused(&sign(&header, &claims(), &v.key)).await;
    v.assert_refused(&sign(&header, &claims(), b"attacker-key"))
        .await;
    header.jku = Some(String::new());
    v.assert_refused(&sign(&header, &claims(), &v.key)).await;
}

async fn a_token_carrying_its_own_jwk_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    let attacker = random_bytes(32);
    for (embedded, signing) in [
        (attacker.as_slice(), attacker.as_slice()),
        (v.key.as_slice(), v.key.as_slice()),
    ] {
        let mut header = Header::new(Algorithm::HS256);
        header.jwk = Some(Jwk {
            common: CommonParameters::default(),
            algorithm: AlgorithmParameters::OctetKey(OctetKeyParameters {
                key_type: OctetKeyType::Octet,
                value: b64url(embedded),
            }),
        });
        v.assert_refused(&sign(&header, &claims(), signing)).await;
    }
}

async fn a_token_whose_header_names_an_x5u_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    let mut header = Header::new(Algorithm::HS256);
    header.x5u = Some("https://attacker.example/cert.pem".into());
    v.assert_refused(&sign(&header, &claims(), &v.key)).await;
    v.assert_refused(&sign(&header, &claims(), b"attacker-key"))
        .await;
}

async fn a_token_carrying_an_x5c_chain_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    let mut header = Header::new(Algorithm::HS256);
    header.x5c = Some(vec!["MIIBszCCAVmgAwIBAgIUQ3Vz".into()]);
    v.assert_refused(&sign(&header, &claims(), &v.key)).await;
}

async fn hs384_and_hs512_signed_with_the_issuer_key_are_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    for alg in [Algorithm::HS384, Algorithm::HS512] {
        v.assert_refused(&sign(&Header::new(alg), &claims(), &v.key))
            .await;
    }
    // An HS384 header on an HS256 signature by the real key.
    let [_, p, s] = parts(&v.good()).map(str::to_owned);
    let h = part(&json!({"alg": "HS384", "typ": "JWT"}));
    v.assert_refused(&format!("{h}.{p}.{s}")).await;
}

async fn an_asymmetric_algorithm_header_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    v.assert_accepted(&v.good()).await;
    for alg in ["RS256", "RS512", "PS256", "ES256", "ES384", "EdDSA"] {
        let header = json!({"alg": alg, "typ": "JWT"});
        // An arbitrary signature.
        v.assert_refused(&hand_signed(&header, &claims(), &random_bytes(256)))
            .await;
        // Key confusion: the issuer's secret used as an HMAC key under an
        // asymmetric header.
        v.assert_refused(&hand_hs256(&header, &claims(), &v.key))
            .await;
    }
}

async fn a_token_with_an_unknown_role_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    // Control: a known role that may not use these endpoints parses and is
    // forbidden (403), so the 401 below is about the role claim itself.
    let compliance = hs256(&claims_with(json!({"role": "compliance"})), &v.key);
    v.app
        .read_customer(&compliance, &v.id, "purpose=support")
        .await
        .assert_problem(403, "forbidden");
    for role in [
        json!("superuser"),
        json!("root"),
        json!("Agent"),
        json!("ADMIN"),
        json!("agent "),
        json!(""),
        json!(["agent"]),
        json!(1),
        json!(null),
    ] {
        let mut c = claims();
        c["role"] = role;
        v.assert_refused(&hs256(&c, &v.key)).await;
    }
}

async fn a_customer_token_whose_sub_is_not_a_uuid_is_unauthenticated(b: Backend) {
    let v = vault(b).await;
    let customer = |sub: &str| {
        hs256(
            &claims_with(json!({"role": "customer", "sub": sub, "channel": null})),
            &v.key,
        )
    };
    // Control: a customer token with a UUID sub is a verified caller whom
    // these endpoints forbid (403).
    let ok = customer(&v.id);
    v.app
        .read_customer(&ok, &v.id, "purpose=support")
        .await
        .assert_problem(403, "forbidden");
    for sub in [
        "pena",
        "not-a-uuid",
        "00000000-0000-0000-0000-00000000000g",
        "{00000000-0000-0000-0000}",
        "' OR 1=1 --",
    ] {
        v.assert_refused(&customer(sub)).await;
    }
}

/// A refusal keeps its code (401 `unauthenticated`) but says which of four
/// things went wrong, so a client knows whether to send a token, fix its
/// header, or get a new one; among well-formed tokens it never says which
/// check failed (signature, issuer, audience).
async fn a_refusal_says_whether_the_token_was_missing_malformed_expired_or_invalid(b: Backend) {
    let v = vault(b).await;
    let [h, p, _] = parts(&v.good()).map(str::to_owned);
    let now = now();
    let causes: [(&str, Option<String>); 8] = [
        ("missing", None),
        ("malformed", Some("Basic YWdlbnQtMTpzZWNyZXQ".to_owned())),
        ("malformed", Some("Bearer garbage".to_owned())),
        (
            "malformed",
            Some(format!(
                "Bearer {}.{p}.",
                part(&json!({"alg": "none", "typ": "JWT"}))
            )),
        ),
        (
            "expired",
            Some(format!(
                "Bearer {}",
                hs256(&claims_with(json!({"exp": now - 60})), &v.key)
            )),
        ),
        (
            "invalid",
            Some(format!("Bearer {}", hs256(&claims(), b"secret"))),
        ),
        (
            "invalid",
            Some(format!(
                "Bearer {}",
                hs256(&claims_with(json!({"aud": "x"})), &v.key)
            )),
        ),
        ("invalid", Some(format!("Bearer {h}.{p}.AAAA"))),
    ];
    let mut seen: std::collections::BTreeMap<&str, Value> = Default::default();
    for (kind, auth) in &causes {
        let a = v.read(auth.as_deref()).await;
        a.reply.assert_problem(401, "unauthenticated");
        let detail = a.reply.json["detail"].clone();
        let first = seen.entry(kind).or_insert_with(|| detail.clone());
        assert_eq!(
            &detail, first,
            "{auth:?}: every {kind} refusal reads the same"
        );
    }
    let details: std::collections::BTreeSet<String> =
        seen.values().map(|d| d.to_string()).collect();
    assert_eq!(details.len(), 4, "four distinct details: {seen:?}");
    assert!(seen["missing"]
        .as_str()
        .unwrap_or("")
        .contains("no Authorization header"));
    assert!(seen["expired"].as_str().unwrap_or("").contains("expired"));
}

async fn a_refused_token_is_never_echoed(b: Backend) {
    let v = vault(b).await;
    let canary = "CANARY-c2VjcmV0LXRva2Vu";
    let forged = hs256(
        &claims_with(json!({"sub": canary, "role": "compliance"})),
        b"guess",
    );
    for token in [canary.to_owned(), forged] {
        let auth = format!("Bearer {token}");
        for a in [v.read(Some(&auth)).await, v.lookup(Some(&auth)).await] {
            a.reply.assert_problem(401, "unauthenticated");
            assert_not_echoed(&a.reply, &token);
            assert!(!a.reply.text.contains("CANARY"), "{}", a.reply.text);
            assert!(
                !a.www_authenticate.unwrap_or_default().contains("CANARY"),
                "WWW-Authenticate echoes the token"
            );
        }
    }
    let audit = v.app.audit_text().await;
    assert!(!audit.contains("CANARY"), "the audit log holds a token");
}

async fn a_refused_token_changes_nothing(b: Backend) {
    let v = vault(b).await;
    let app = &v.app;
    let svc = app.service();
    let contact_id = app
        .read_customer(&app.agent("phone"), &v.id, "purpose=support")
        .await
        .json["contacts"][0]["id"]
        .as_str()
        .expect("contact id")
        .to_owned();
    let service = claims_with(json!({"sub": "crm-sync", "role": "service", "channel": null}));
    let [h, _, s] = parts(&v.good()).map(str::to_owned);
    let forged = [
        // alg none with service claims
        format!(
            "{}.{}.",
            part(&json!({"alg": "none", "typ": "JWT"})),
            part(&service)
        ),
        // the agent's signature on service claims
        format!("{h}.{}.{s}", part(&service)),
        // a guessed key
        hs256(&service, b"secret"),
        // expired
        hs256(
            &claims_with(json!({"role": "service", "channel": null, "exp": now() - 60})),
            &v.key,
        ),
    ];
    let before = v.allowed_entries().await;
    for token in &forged {
        let bearer = Some(format!("Bearer {token}"));
        let bearer = bearer.as_deref();
        let calls = [
            (
                Method::POST,
                "/v1/customers".to_owned(),
                Some(json!({"display_name": "Intruder",
                            "contacts": [{"channel": "email", "value": "intruder@evil.example"}]})),
            ),
            (
                Method::PATCH,
                format!("/v1/customers/{}", v.id),
                Some(json!({"display_name": "Intruder"})),
            ),
            (
                Method::POST,
                format!("/v1/customers/{}/contacts", v.id),
                Some(json!({"channel": "email", "value": "intruder@evil.example"})),
            ),
            (
                Method::DELETE,
                format!("/v1/customers/{}/contacts/{contact_id}", v.id),
                None,
            ),
        ];
        for (method, path, body) in calls {
            let a = call(app, method.clone(), &path, bearer, body).await;
            assert_eq!(
                a.reply.status,
                StatusCode::UNAUTHORIZED,
                "{method} {path}: {}",
                a.reply.text
            );
            a.reply.assert_problem(401, "unauthenticated");
        }
    }
    assert_eq!(v.allowed_entries().await, before, "nothing was allowed");
    // The profile is as it was: same name, the phone contact still there.
    let r = app.read_customer(&svc, &v.id, "purpose=support").await;
    assert_eq!(r.json["display_name"], "Pena");
    let r = app
        .read_customer(&app.agent("phone"), &v.id, "purpose=support")
        .await;
    assert_eq!(r.json["contacts"][0]["id"], contact_id.as_str());
    assert_eq!(r.json["contacts"].as_array().map(Vec::len), Some(1));
    // No intruder e-mail anywhere.
    app.lookup(
        &app.agent("email"),
        "email",
        "intruder@evil.example",
        "support",
    )
    .await
    .assert_problem(404, "not_found");
}
