//! `GET /metrics` through the real binary: `arkku serve` with
//! `ARKKU_METRICS_LISTEN` serves the series on that address only; driving
//! reads, a withheld channel, a bad token, token requests, audit appends and
//! a retention sweep moves each series by exactly what was done; and no
//! label value is an id, an e-mail address or a phone number, nor does any
//! value stored by the test appear anywhere in the scrape.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::clients::add_client;
use crate::helpers::{free_port, http_client, send, spawn_app, Backend, Reply, Scenario};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![serve_counts_what_it_does_on_its_own_metrics_listener_and_labels_nothing_personal]
}

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;

/// Values stored by this test: none may appear in a scrape.
const NAME: &str = "Quillon Vexmarrow";
const EMAIL: &str = "quillon.vexmarrow@example.com";
const PHONE: &str = "040 482 1999";
const PHONE_E164: &str = "+358404821999";
const SMS: &str = "050 717 3131";
const SMS_E164: &str = "+358507173131";

/// One sample: series name, labels, value.
type Sample = (String, Vec<(String, String)>, f64);

/// One scrape, parsed into samples.
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    fn parse(text: String) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("sample line");
                let value: f64 = value.parse().expect("sample value");
                let (name, labels) = match series.split_once('{') {
                    Some((name, rest)) => {
                        let inner = rest.strip_suffix('}').expect("closing brace");
                        let labels = inner
                            .split("\",")
                            .filter(|p| !p.is_empty())
                            .map(|p| {
                                let (k, v) = p.split_once("=\"").expect("label");
                                (k.to_owned(), v.trim_end_matches('"').to_owned())
                            })
                            .collect();
                        (name.to_owned(), labels)
                    }
                    None => (series.to_owned(), Vec::new()),
                };
                (name, labels, value)
            })
            .collect();
        Scrape { text, samples }
    }

    /// The sum of the samples of `name` whose labels include all of `want`.
    fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, labels, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    fn has(&self, name: &str, want: &[(&str, &str)]) -> bool {
        self.samples.iter().any(|(n, labels, _)| {
            n == name
                && want
                    .iter()
                    .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
    }
}

async fn scrape(metrics: &str) -> Scrape {
    let r = http_client()
        .get(format!("{metrics}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    Scrape::parse(r.text().await.expect("body"))
}

/// A request to the served binary.
async fn call(base: &str, method: Method, path: &str, token: Option<&str>) -> Reply {
    let mut rb = http_client().request(method, format!("{base}{path}"));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    send(rb).await
}

/// Is `v` shaped like a UUID, an e-mail address or a phone number?
fn looks_personal(v: &str) -> bool {
    let hex_dash = v.len() == 36
        && v.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
        && v.matches('-').count() == 4;
    let digits = v.chars().filter(char::is_ascii_digit).count();
    let phone = digits >= 7 && v.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c));
    hex_dash || v.contains('@') || phone
}

async fn serve_counts_what_it_does_on_its_own_metrics_listener_and_labels_nothing_personal(
    b: Backend,
) {
    // Arrange: a customer on phone and e-mail, one whose only contact point
    // will pass its retention, and a client; then the real binary.
    let app = spawn_app(b).await;
    let service = app.service();
    let quillon = app
        .create_customer_ok(
            &service,
            json!({"display_name": NAME, "contacts": [
                {"channel": "phone", "value": PHONE},
                {"channel": "email", "value": EMAIL}]}),
        )
        .await;
    let fading = app
        .create_customer_ok(
            &service,
            json!({"display_name": "Fading", "contacts": [{"channel": "sms", "value": SMS}]}),
        )
        .await;
    let client = add_client(&app, "crm", &["--role", "service", "--purposes", "support"]).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let metrics_listen = format!("127.0.0.1:{}", free_port());
    let mut server = app.cli_proc_with(
        &["serve"],
        &[
            ("ARKKU_LISTEN", &listen),
            ("ARKKU_METRICS_LISTEN", &metrics_listen),
            ("ARKKU_RETENTION_INTERVAL", "300ms"),
        ],
    );
    let base = format!("http://{listen}");
    let metrics = format!("http://{metrics_listen}");
    server.wait_healthy(&base, Duration::from_secs(15)).await;
    let before = scrape(&metrics).await;
    let audit_before = app.audit_count().await;

    // Act: three reads by a phone agent (phone permitted on the same
    // channel, e-mail withheld for want of consent), a bad token, a path
    // that matches no route, /metrics on the API's port, a wrong and a
    // right client secret.
    let agent = app.agent("phone");
    let read_path = format!("/v1/customers/{quillon}?purpose=support");
    for _ in 0..3 {
        let r = call(&base, Method::GET, &read_path, Some(&agent)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert_eq!(
            r.json["withheld"],
            json!([{"channel": "email", "reason": "consent_required"}]),
            "{}",
            r.text
        );
    }
    call(&base, Method::GET, &read_path, Some("not-a-token"))
        .await
        .assert_problem(401, "unauthenticated");
    let stray = call(&base, Method::GET, &format!("/v1/nowhere/{quillon}"), None).await;
    assert_eq!(stray.status, StatusCode::NOT_FOUND);
    let on_api = call(&base, Method::GET, "/metrics", None).await;
    assert_eq!(
        on_api.status,
        StatusCode::NOT_FOUND,
        "/metrics on the API port"
    );
    let token = |secret: &str| {
        http_client()
            .post(format!("{base}/oauth/token"))
            .basic_auth(&client.id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
    };
    let wrong = send(token("wrong-secret")).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.text);
    let right = send(token(&client.secret)).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.text);
    let after = scrape(&metrics).await;

    // Assert: each series moved by what was done.
    let delta = |name: &str, want: &[(&str, &str)]| after.sum(name, want) - before.sum(name, want);
    let read = [("route", "/v1/customers/{id}"), ("method", "GET")];
    assert_eq!(
        delta(
            "arkku_http_requests_total",
            &[read[0], read[1], ("status", "200")]
        ),
        3.0
    );
    assert_eq!(
        delta(
            "arkku_http_requests_total",
            &[read[0], read[1], ("status", "401")]
        ),
        1.0
    );
    assert_eq!(
        delta("arkku_http_request_duration_seconds_count", &read),
        4.0
    );
    assert!(delta("arkku_http_request_duration_seconds_sum", &read) > 0.0);
    assert_eq!(
        delta(
            "arkku_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        2.0,
        "the stray path and /metrics on the API port"
    );
    assert_eq!(
        delta(
            "arkku_http_requests_total",
            &[("route", "/oauth/token"), ("method", "POST")]
        ),
        2.0
    );
    assert_eq!(
        delta(
            "arkku_policy_decisions_total",
            &[("decision", "permit"), ("reason", "same_channel")]
        ),
        3.0
    );
    assert_eq!(
        delta(
            "arkku_policy_decisions_total",
            &[("decision", "withhold"), ("reason", "consent_required")]
        ),
        3.0
    );
    assert_eq!(
        delta("arkku_auth_failures_total", &[("kind", "bearer_token")]),
        1.0,
        "one refusal per refused request, none for the accepted ones"
    );
    assert_eq!(
        delta(
            "arkku_auth_failures_total",
            &[("kind", "client"), ("code", "invalid_client")]
        ),
        1.0
    );
    assert_eq!(
        delta("arkku_tokens_issued_total", &[("kind", "client")]),
        1.0
    );
    // Every request above wrote one audit entry (reads, refusals and token
    // requests alike): the writer counted exactly what the log gained.
    let appended = app.audit_count().await - audit_before;
    assert!(appended >= 6, "{appended} audit entries");
    assert_eq!(delta("arkku_audit_entries_total", &[]), appended as f64);
    assert_eq!(delta("arkku_audit_batch_size_sum", &[]), appended as f64);
    let batches = delta("arkku_audit_batch_size_count", &[]);
    assert!(
        (1.0..=appended as f64).contains(&batches),
        "{batches} batches"
    );
    assert_eq!(
        delta("arkku_audit_commit_duration_seconds_count", &[]),
        batches
    );
    // The state gauges are there.
    assert!(after.has("arkku_audit_queue_depth", &[]));
    assert!(after.sum("arkku_db_pool_max_connections", &[]) >= 1.0);
    assert!(after.has("arkku_db_pool_connections", &[("state", "idle")]));
    for key in ["root", "issuer", "audit"] {
        assert!(
            after.has("arkku_key_file_age_seconds", &[("key", key)]),
            "{key}"
        );
    }
    for domain in ["email", "phone", "sms", "_profile"] {
        assert!(
            after.has("arkku_channel_key_age_seconds", &[("domain", domain)]),
            "{domain}: {}",
            after.text
        );
    }

    // Sweeps: the sms contact point passes its retention and the sweeper of
    // `serve` purges it; then its customer, who has nothing left, grows old
    // and is erased. One step at a time: a sweep already past its contact
    // pass when both happen at once erases the customer with the contact.
    let swept_before = after.sum("arkku_retention_sweeps_total", &[("outcome", "ok")]);
    let wait_for = |name: &'static str, want: &'static [(&'static str, &'static str)]| {
        let metrics = metrics.clone();
        let before = before.sum(name, want);
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let now = scrape(&metrics).await;
                if now.sum(name, want) - before >= 1.0 {
                    return now;
                }
                assert!(
                    Instant::now() < deadline,
                    "no sweep moved {name}: {}",
                    now.text
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    app.exec(&format!(
        "UPDATE contacts SET last_activity_at = last_activity_at - {} WHERE channel = 'sms'",
        731 * DAY_US
    ))
    .await;
    let purged = wait_for(
        "arkku_retention_purged_rows_total",
        &[("table", "contacts")],
    )
    .await;
    assert_eq!(
        purged.sum("arkku_retention_erased_customers_total", &[])
            - before.sum("arkku_retention_erased_customers_total", &[]),
        0.0,
        "the customer is not erased while recently updated"
    );
    app.exec(&format!(
        "UPDATE customers SET updated_at = updated_at - {}",
        400 * DAY_US
    ))
    .await;
    let swept = wait_for("arkku_retention_erased_customers_total", &[]).await;
    let delta = |name: &str, want: &[(&str, &str)]| swept.sum(name, want) - before.sum(name, want);
    assert_eq!(
        delta(
            "arkku_retention_purged_rows_total",
            &[("table", "contacts")]
        ),
        1.0
    );
    assert_eq!(delta("arkku_retention_erased_customers_total", &[]), 1.0);
    assert_eq!(
        delta("arkku_retention_batches_total", &[]),
        2.0,
        "one audited batch for the contact point, one for the erasure"
    );
    assert!(swept.sum("arkku_retention_sweeps_total", &[("outcome", "ok")]) >= swept_before);
    assert!(swept.sum("arkku_retention_last_success_timestamp_seconds", &[]) > 1.7e9);

    // No label is an id, an address or a number; no stored value, id or
    // secret appears anywhere in the scrape.
    for s in [&before, &after, &swept] {
        for (name, labels, _) in &s.samples {
            for (k, v) in labels {
                assert!(!looks_personal(v), "{name}{{{k}={v:?}}}");
            }
        }
        for secret in [
            NAME,
            EMAIL,
            PHONE,
            PHONE_E164,
            SMS,
            SMS_E164,
            "404821999",
            quillon.as_str(),
            fading.as_str(),
            client.id.as_str(),
            client.secret.as_str(),
            "agent-1",
            "crm-sync",
        ] {
            assert!(!s.text.contains(secret), "{secret:?} in the scrape");
        }
    }
    let reply: Value = right.json;
    let issued = reply["access_token"].as_str().expect("token");
    assert!(!swept.text.contains(issued));
    server.assert_running();
}
