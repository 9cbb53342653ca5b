//! The console's keys and policies page in real headless Chromium: an admin
//! opens it from the navigation and sees the channel key versions (a
//! rotation through `arkku keys rotate` shows its new version as current),
//! the retention schedule with the last sweep, and the channel table; the
//! page holds no key material. A compliance officer is not shown the entry
//! and gets 403 for the URL; without a session it leads to the sign-in.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::console::{console, plain, Console};
use crate::helpers::{Backend, Scenario};
use crate::scenarios;
use crate::users::aids::{add_user, cli_ok, code, PASSWORD, T0};

pub fn tests() -> Vec<Scenario> {
    scenarios![
        an_admin_sees_key_versions_the_retention_schedule_and_the_channels,
        a_compliance_officer_is_not_shown_the_page_and_is_refused_it,
    ]
}

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;

/// Signs the admin `olli` in (enrolled with `uri`) at the clock's `T0`.
async fn sign_in_olli(c: &mut Console, uri: &str) {
    c.browser.goto(&c.url("/console/")).await;
    c.browser.type_into("#name", "olli").await;
    c.browser.type_into("#password", PASSWORD).await;
    c.browser.type_into("#code", &code(uri, T0)).await;
    c.browser.click_and_wait("#sign-in").await;
    assert!(c.signed_in().await, "olli signed in");
}

/// The page's HTML as the signed-in browser's session gets it, and its status.
async fn page_html(c: &Console) -> (StatusCode, String) {
    let r = plain()
        .get(c.url("/console/keys"))
        .header("cookie", format!("arkku_session={}", c.session().await))
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Every form a key file's bytes could be written in on a page: the file's
/// text (hex), and the key's bytes as hex and base64 (both alphabets).
fn encodings(file_text: &str) -> Vec<String> {
    let hex = file_text.trim().to_owned();
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("a hex key file"))
        .collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    vec![
        hex.clone(),
        hex.to_uppercase(),
        b64.trim_end_matches('=').to_owned(),
        b64url,
    ]
}

async fn an_admin_sees_key_versions_the_retention_schedule_and_the_channels(b: Backend) {
    let Some(mut c) = console(b, "keys_page").await else {
        return;
    };
    // Arrange: a customer with a phone key, an e-mail address past its
    // retention, one sweep, and a rotation of the phone channel's key.
    let (uri, _) = add_user(&c.app, "olli", "admin", PASSWORD).await;
    let app = &c.app;
    app.create_customer_ok(
        &app.service(),
        json!({"contacts": [{"channel": "phone", "value": "040 123 4567"},
                            {"channel": "email", "value": "vanha@example.com"}]}),
    )
    .await;
    app.exec(&format!(
        "UPDATE contacts SET last_activity_at = last_activity_at - {} WHERE channel = 'email'",
        731 * DAY_US
    ))
    .await;
    cli_ok(app, &["retention", "run"]).await;
    let rotated = app
        .cli_proc_with(
            &["keys", "rotate", "--channel", "phone", "--grace", "300ms"],
            &[("ARKKU_KEY_REFRESH", "100ms")],
        )
        .finish()
        .await;
    assert!(rotated.status.success(), "{}", rotated.stderr);

    // Act: olli signs in and opens the page from the navigation.
    sign_in_olli(&mut c, &uri).await;
    c.browser
        .click_and_wait("nav.pages a[href='/console/keys']")
        .await;

    // Assert: the keys, the new phone version current and the old one gone.
    assert_eq!(c.browser.text("h1").await, "Keys and policies");
    c.browser.resize(1280, 3400).await;
    c.browser.screenshot("keys").await;
    let phone = c.browser.text("#key-phone-v2").await;
    assert!(
        phone.contains("current") && phone.contains("not due"),
        "{phone}"
    );
    assert_eq!(c.browser.count("#key-phone-v1").await, 0, "v1 retired");
    assert!(c.browser.text("#key-email-v1").await.contains("current"));
    assert!(c.browser.count("#root-key").await == 1);
    let interval = c.browser.text("#rotation-interval").await;
    assert!(interval.contains("365 days"), "{interval}");
    let fingerprint = c.browser.text("#audit-fingerprint").await;
    assert_eq!(fingerprint.len(), 64, "{fingerprint}");
    // The retention schedule and the sweep that purged the e-mail address.
    let email = c.browser.text("#retention-email").await;
    assert!(
        email.contains("730 days") && email.contains("30 days"),
        "{email}"
    );
    let sweep = c.browser.text("#last-sweep").await;
    assert!(sweep.contains("2026-12-02 10:00 UTC"), "{sweep}");
    assert_eq!(c.browser.text("#sweep-purged").await, "1");
    assert!(c.browser.text("#sweep-counts").await.contains("email"));
    // The channels and how they integrate.
    assert_eq!(c.browser.count("#channels tbody tr").await, 8);
    let whatsapp = c.browser.text("#channel-whatsapp").await;
    assert!(
        whatsapp.contains("cross-channel consent") && whatsapp.contains("365 days"),
        "{whatsapp}"
    );

    // No key material anywhere in the page.
    let (status, html) = page_html(&c).await;
    assert_eq!(status, StatusCode::OK);
    let data = c.app.dir.path().join("data");
    for file in ["root.key", "issuer.key", "audit.key"] {
        let text = std::fs::read_to_string(data.join(file)).expect("key file");
        for form in encodings(&text) {
            assert!(!html.contains(&form), "{file} appears in the page");
        }
    }

    // And in Finnish.
    c.browser.click_and_wait("#switch-language").await;
    assert_eq!(c.browser.text("h1").await, "Avaimet ja käytännöt");
    c.browser.screenshot("keys-fi").await;
    c.browser.close().await;
}

async fn a_compliance_officer_is_not_shown_the_page_and_is_refused_it(b: Backend) {
    let Some(mut c) = console(b, "keys_refused").await else {
        return;
    };
    c.sign_in(T0).await;

    assert_eq!(
        c.browser.count("nav.pages a[href='/console/keys']").await,
        0,
        "no navigation entry"
    );
    c.browser.goto(&c.url("/console/keys")).await;
    assert_eq!(c.browser.text("h1").await, "Not allowed");
    let message = c.browser.text("#error-message").await;
    assert!(message.contains("administrators only"), "{message}");
    assert!(c.signed_in().await, "still in their own frame");
    c.browser.screenshot("keys-refused").await;
    let (status, html) = page_html(&c).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!html.contains("channel-keys"), "no key table");
    // Without a session the URL leads to the sign-in page.
    let r = plain().get(c.url("/console/keys")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console/");
    c.browser.close().await;
}
