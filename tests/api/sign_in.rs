//! Customer sign-in by one-time code (DESIGN.md §12.3) and the notifier:
//! the journey from `start` to the customer's own data, codes delivered to
//! the outbox file and to a signed webhook, the rules of a code (expiry,
//! attempts, once), no enumeration, and no code in logs or the audit log.

mod served;
pub(crate) mod support;

use std::time::{Duration, Instant};

use arkku::{config::NotifyMode, crypto::load_key_file};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{no_rate_limits, spawn_app, spawn_app_with, Backend, Scenario, TestApp};
use crate::scenarios;
use served::{
    a_customer_signs_in_with_the_code_from_the_outbox_file_and_reads_only_their_own_data,
    an_undelivered_code_is_delivered_after_a_restart,
};
use support::*;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_customer_signs_in_with_the_code_from_the_outbox_file_and_reads_only_their_own_data,
        the_webhook_gets_a_signed_message_and_one_refused_at_first_gets_it_on_retry,
        an_unknown_and_a_known_email_get_the_same_answer_in_comparable_time,
        a_sixth_check_fails_even_with_the_right_code_and_a_used_code_fails_again,
        a_code_expires_after_ten_minutes_and_its_token_after_fifteen,
        a_channel_without_sign_in_and_an_erased_customer_get_no_code,
        asking_too_often_for_one_value_answers_429_known_or_not,
        two_notifiers_on_one_outbox_deliver_each_message_once,
        an_undelivered_code_is_delivered_after_a_restart,
        malformed_sign_in_input_gets_a_clear_400_and_stores_nothing,
    ]
}

const MINUTE: Duration = Duration::from_secs(60);

/// The audit entries of `action`, as compliance reads them.
async fn audit_of(app: &TestApp, action: &str) -> Vec<Value> {
    let r = app
        .request(
            Method::GET,
            &format!("/v1/audit?action={action}&limit=200"),
            Some(&app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["entries"].as_array().expect("entries").clone()
}

async fn the_webhook_gets_a_signed_message_and_one_refused_at_first_gets_it_on_retry(b: Backend) {
    // Arrange: a receiver that refuses the first post.
    let receiver = Receiver::start(1).await;
    let app = app_with(b, NotifyMode::Webhook(receiver.url.clone()), |_| {}).await;
    let id = customer(&app, "hook@example.com").await;

    // Act
    let challenge = start_ok(&app, "email", "hook@example.com").await;
    let posts = receiver.delivered(1).await;

    // Assert: refused once, delivered on retry, the same signed message both times.
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert_eq!((posts[0].status, posts[1].status), (503, 200));
    let secret = load_key_file(&app.dir.path().join("data").join("notify.key")).expect("key");
    for p in &posts {
        assert_signed(p, secret.expose_secret());
    }
    let (first, second) = (body(&posts[0]), body(&posts[1]));
    assert_eq!(first, second, "a retry sends the same message");
    assert_eq!(second["type"], "sign_in_code");
    assert_eq!(second["channel"], "email");
    assert_eq!(second["to"], "hook@example.com");
    assert!(second["id"].is_string() && second["expires_at"].is_string());
    let code = second["code"].as_str().expect("code");
    let r = verify(&app, &challenge, code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let me = app
        .request(Method::GET, "/v1/me", r.json["access_token"].as_str(), None)
        .await;
    assert_eq!(me.json["id"], id.as_str());
    let deadline = Instant::now() + DELIVERY_LIMIT;
    while app.count("notifier_outbox").await != 0 {
        assert!(
            Instant::now() < deadline,
            "the delivered message stays in the outbox"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

/// The keys of a JSON object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    k.sort_unstable();
    k
}

async fn an_unknown_and_a_known_email_get_the_same_answer_in_comparable_time(b: Backend) {
    // Arrange: a known address; no rate limits, so that one value can be
    // asked for again and again.
    let app = spawn_app_with(b, no_rate_limits).await;
    customer(&app, "known@example.com").await;
    let _ = start(&app, "email", "known@example.com").await;
    let _ = start(&app, "email", "warmup@example.com").await;

    // Act: alternate known and unknown, timing each.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    let mut replies = Vec::new();
    for i in 0..15 {
        let t = Instant::now();
        let k = start(&app, "email", "known@example.com").await;
        known.push(t.elapsed());
        let t = Instant::now();
        let u = start(&app, "email", &format!("nobody{i}@example.com")).await;
        unknown.push(t.elapsed());
        replies.push((k, u));
    }

    // Assert: the same status, content type and shape every time.
    for (k, u) in &replies {
        assert_eq!(k.status, StatusCode::ACCEPTED, "{}", k.text);
        assert_eq!((k.status, &k.content_type), (u.status, &u.content_type));
        assert_eq!(keys(&k.json), ["challenge_id"]);
        assert_eq!(keys(&u.json), ["challenge_id"]);
    }
    // And comparable time: medians within 3x of each other (or 10 ms apart,
    // which is noise on a shared machine).
    let (k, u) = (median(known), median(unknown));
    println!("sign-in start medians: known {k:?}, unknown {u:?}");
    let (lo, hi) = (k.min(u), k.max(u));
    assert!(
        hi.as_secs_f64() < 3.0 * lo.as_secs_f64() || hi - lo < Duration::from_millis(10),
        "known {k:?} vs unknown {u:?}"
    );
    // A check of either challenge is answered alike.
    let (k, u) = &replies[0];
    let wrong_known = verify(&app, k.json["challenge_id"].as_str().unwrap(), "00000000").await;
    let any_unknown = verify(&app, u.json["challenge_id"].as_str().unwrap(), "00000000").await;
    wrong_known.assert_problem(400, "invalid_code");
    any_unknown.assert_problem(400, "invalid_code");
    assert_eq!(wrong_known.json["detail"], any_unknown.json["detail"]);
    // The audit log tells them apart; the entry of an unknown value names nobody.
    let entries = audit_of(&app, "auth.sign_in_start").await;
    let outcomes: Vec<(&str, bool)> = entries
        .iter()
        .map(|e| {
            (
                e["detail"]["outcome"].as_str().unwrap_or(""),
                e["customer_id"].is_null(),
            )
        })
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == ("code_queued", false))
            .count(),
        16
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == ("no_match", true))
            .count(),
        16
    );
    assert!(
        !format!("{entries:?}").contains("nobody"),
        "no value in the audit log"
    );
}

/// A code that is not `code`.
fn other_than(code: &str) -> String {
    let n: u32 = code.parse().expect("digits");
    format!("{:08}", (n + 1) % 100_000_000)
}

async fn a_sixth_check_fails_even_with_the_right_code_and_a_used_code_fails_again(b: Backend) {
    // Arrange
    let app = app_with_file_notifier(b).await;
    customer(&app, "six@example.com").await;
    let (challenge, code) = code_for(&app, "email", "six@example.com", 1).await;

    // Act: five wrong codes, then the right one.
    let mut wrong = Vec::new();
    for _ in 0..5 {
        wrong.push(verify(&app, &challenge, &other_than(&code)).await);
    }
    let sixth = verify(&app, &challenge, &code).await;

    // Assert
    for r in &wrong {
        r.assert_problem(400, "invalid_code");
    }
    sixth.assert_problem(400, "invalid_code");
    assert_eq!(
        sixth.json["detail"], wrong[0].json["detail"],
        "which failure is not said"
    );

    // A fresh code works once, and only once.
    let (challenge, code) = code_for(&app, "email", "six@example.com", 2).await;
    let first = verify(&app, &challenge, &code).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    verify(&app, &challenge, &code)
        .await
        .assert_problem(400, "invalid_code");

    // The audit log says why each failed.
    let reasons: Vec<String> = audit_of(&app, "auth.sign_in")
        .await
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["decision"].as_str().unwrap_or(""),
                e["detail"]["reason"].as_str().unwrap_or("")
            )
        })
        .collect();
    let mut expected = vec!["deny:wrong_code"; 5];
    expected.extend(["deny:attempts_exhausted", "allow:", "deny:already_used"]);
    assert_eq!(reasons, expected);
}

async fn a_code_expires_after_ten_minutes_and_its_token_after_fifteen(b: Backend) {
    // Arrange
    let app = app_with_file_notifier(b).await;
    customer(&app, "late@example.com").await;
    let (challenge, code) = code_for(&app, "email", "late@example.com", 1).await;

    // Act: eleven minutes later.
    app.set_clock_ahead(11 * MINUTE);
    let late = verify(&app, &challenge, &code).await;

    // Assert
    late.assert_problem(400, "invalid_code");

    // A new code then works, and its token lasts fifteen minutes.
    let (challenge, code) = code_for(&app, "email", "late@example.com", 2).await;
    let r = verify(&app, &challenge, &code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.json["access_token"].as_str().expect("token").to_owned();
    app.set_clock_ahead(25 * MINUTE);
    let within = app.request(Method::GET, "/v1/me", Some(&token), None).await;
    assert_eq!(within.status, StatusCode::OK, "{}", within.text);
    app.set_clock_ahead(27 * MINUTE);
    app.request(Method::GET, "/v1/me", Some(&token), None)
        .await
        .assert_problem(401, "unauthenticated");
}

async fn a_channel_without_sign_in_and_an_erased_customer_get_no_code(b: Backend) {
    // Arrange: Pena (e-mail and Instagram), Liisa erased.
    let app = app_with_file_notifier(b).await;
    customer(&app, "pena_six@example.com").await;
    let liisa = customer(&app, "liisa_six@example.com").await;
    let r = app
        .request(
            Method::DELETE,
            &format!("/v1/customers/{liisa}?reason=case-7"),
            Some(&app.compliance()),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Act: a code on Instagram (not a sign-in channel), one for Liisa,
    // then one for Pena's e-mail.
    start_ok(&app, "instagram", "@pena_six").await;
    start_ok(&app, "email", "liisa_six@example.com").await;
    let (_, _) = code_for(&app, "email", "pena_six@example.com", 1).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Assert: only Pena's e-mail got a message.
    let all = lines(&outbox_file(&app), 1).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["to"], "pena_six@example.com");
    assert_eq!(app.count("notifier_outbox").await, 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM sign_in_challenges WHERE customer_id IS NULL")
            .await,
        2,
        "the other two got challenges that never verify"
    );
    let outcomes: Vec<(String, bool)> = audit_of(&app, "auth.sign_in_start")
        .await
        .iter()
        .map(|e| {
            (
                e["detail"]["outcome"].as_str().unwrap_or("").to_owned(),
                e["customer_id"].is_null(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("not_a_sign_in_channel".to_owned(), true),
            ("no_match".to_owned(), true),
            ("code_queued".to_owned(), false)
        ]
    );
}

async fn asking_too_often_for_one_value_answers_429_known_or_not(b: Backend) {
    // Arrange: the shipped limits (three codes at once per value).
    let app = spawn_app(b).await;
    customer(&app, "often@example.com").await;

    // Act
    let mut answers = Vec::new();
    for value in ["often@example.com", "never@example.com"] {
        for _ in 0..3 {
            assert_eq!(
                start(&app, "email", value).await.status,
                StatusCode::ACCEPTED
            );
        }
        answers.push(start(&app, "email", value).await);
    }
    let other = start(&app, "email", "someone@example.com").await;

    // Assert
    for r in &answers {
        r.assert_problem(429, "rate_limited");
        let wait: u64 = r
            .header("retry-after")
            .expect("Retry-After")
            .parse()
            .expect("seconds");
        assert!((1..=60).contains(&wait), "{wait}");
    }
    assert_eq!(answers[0].json["detail"], answers[1].json["detail"]);
    assert_eq!(
        other.status,
        StatusCode::ACCEPTED,
        "another value has its own count"
    );
    let denied = audit_of(&app, "auth.sign_in_start")
        .await
        .iter()
        .filter(|e| e["decision"] == "deny" && e["detail"]["code"] == "rate_limited")
        .count();
    assert_eq!(denied, 2);
}

async fn two_notifiers_on_one_outbox_deliver_each_message_once(b: Backend) {
    // Arrange: two workers (two nodes' worth) draining one outbox.
    let receiver = Receiver::start(0).await;
    let app = app_with(b, NotifyMode::Webhook(receiver.url.clone()), no_rate_limits).await;
    arkku::app::spawn_notifier(&app.state);
    let n = 12;
    for i in 0..n {
        customer(&app, &format!("twice{i}@example.com")).await;
    }

    // Act
    for i in 0..n {
        start_ok(&app, "email", &format!("twice{i}@example.com")).await;
    }
    receiver.delivered(n).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Assert: every message once.
    let posts = receiver.posts();
    let mut ids: Vec<String> = posts.iter().map(|p| body(p)["id"].to_string()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((posts.len(), ids.len()), (n, n), "{posts:?}");
    assert_eq!(app.count("notifier_outbox").await, 0);
}

async fn malformed_sign_in_input_gets_a_clear_400_and_stores_nothing(b: Backend) {
    let app = spawn_app(b).await;
    let id = uuid::Uuid::now_v7().to_string();
    let cases = [
        (
            "/v1/auth/customer/start",
            json!({"channel": "pigeon", "value": "x"}),
            "unknown_channel",
        ),
        (
            "/v1/auth/customer/start",
            json!({"channel": "email", "value": "not an address"}),
            "invalid_email",
        ),
        (
            "/v1/auth/customer/start",
            json!({"channel": "phone", "value": "call me"}),
            "invalid_phone",
        ),
        (
            "/v1/auth/customer/start",
            json!({"channel": "email"}),
            "invalid_request",
        ),
        (
            "/v1/auth/customer/start",
            json!({"channel": "email", "value": "a@example.com", "customer_id": id}),
            "invalid_request",
        ),
        (
            "/v1/auth/customer/verify",
            json!({"challenge_id": id, "code": "1234"}),
            "invalid_request",
        ),
        (
            "/v1/auth/customer/verify",
            json!({"challenge_id": id, "code": "abcdefgh"}),
            "invalid_request",
        ),
        (
            "/v1/auth/customer/verify",
            json!({"challenge_id": "not-a-uuid", "code": "12345678"}),
            "invalid_request",
        ),
        (
            "/v1/auth/customer/verify",
            json!({"challenge_id": id, "code": 12345678}),
            "invalid_request",
        ),
        (
            "/v1/auth/customer/verify",
            json!({"challenge_id": id, "code": "12345678"}),
            "invalid_code",
        ),
    ];
    for (path, body, code) in cases {
        let r = app
            .request(Method::POST, path, None, Some(body.clone()))
            .await;
        r.assert_problem(400, code);
        assert!(
            !r.text.contains("call me") && !r.text.contains("not an address"),
            "{}",
            r.text
        );
    }
    let r = app
        .raw(
            Method::POST,
            "/v1/auth/customer/start",
            None,
            "text/plain",
            b"hi".to_vec(),
        )
        .await;
    r.assert_problem(415, "unsupported_media_type");
    assert_eq!(app.count("sign_in_challenges").await, 0);
    assert_eq!(app.count("notifier_outbox").await, 0);
}
