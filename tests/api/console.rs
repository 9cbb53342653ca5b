//! The staff console in real headless Chromium (through chromedriver) and,
//! where a browser would not do what an attacker's script does, through a
//! plain HTTP client: sign-in with a password and a TOTP code computed from
//! the enrolment URI of the real `arkku users add`, refusals, CSRF, session
//! expiry by the test clock, sign-out and disable, security headers and the
//! two languages. Screenshots of every page visited go to
//! `target/screenshots/`, named by test and backend.

pub(crate) mod webdriver;

use reqwest::{redirect::Policy, Client, StatusCode};
use time::Duration;

use crate::helpers::{spawn_app, Backend, Scenario, TestApp};
use crate::scenarios;
use crate::users::aids::{add_user, cli_ok, clock_at, code, PASSWORD, T0};
use webdriver::{Browser, Driver};

pub fn tests() -> Vec<Scenario> {
    scenarios![
        signing_in_with_a_password_and_a_totp_code_opens_the_home_page,
        a_wrong_code_or_password_is_refused_without_saying_which,
        a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing,
        an_idle_session_expires_when_the_clock_passes_fifteen_minutes,
        sign_out_and_disable_end_the_session_at_once,
        every_console_response_carries_the_security_headers,
        the_language_switches_to_finnish_and_back_and_accept_language_chooses,
    ]
}

/// A vault with the compliance officer `anna`, and a browser (the tests of
/// the console's other pages use it too).
pub(crate) struct Console {
    pub(crate) app: TestApp,
    pub(crate) uri: String,
    pub(crate) browser: Browser,
    // Dropped last: it takes Chromium down with it.
    _driver: Driver,
}

pub(crate) async fn console(b: Backend, test: &str) -> Option<Console> {
    let driver = webdriver::start(test).await?;
    let app = spawn_app(b).await;
    clock_at(&app, T0);
    let (uri, _) = add_user(&app, "anna", "compliance", PASSWORD).await;
    let browser = driver.browser(&format!("{test}-{}", b.name())).await;
    Some(Console {
        app,
        uri,
        browser,
        _driver: driver,
    })
}

impl Console {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.address)
    }

    /// Fills in and sends the sign-in form.
    pub(crate) async fn sign_in_with(&mut self, password: &str, code: &str) {
        self.browser.goto(&self.url("/console/")).await;
        self.browser.type_into("#name", "anna").await;
        self.browser.type_into("#password", password).await;
        self.browser.type_into("#code", code).await;
        self.browser.click_and_wait("#sign-in").await;
    }

    /// Signs in with the code of the clock's instant `at`.
    pub(crate) async fn sign_in(&mut self, at: time::OffsetDateTime) {
        let code = code(&self.uri, at);
        self.sign_in_with(PASSWORD, &code).await;
        self.browser.screenshot("signed-in").await;
        assert!(self.signed_in().await, "signed in");
    }

    pub(crate) async fn signed_in(&self) -> bool {
        self.browser.count("#signed-in-as").await == 1
    }

    /// The browser's session cookie value.
    pub(crate) async fn session(&self) -> String {
        let c = self
            .browser
            .cookie("arkku_session")
            .await
            .expect("a session cookie");
        c["value"].as_str().expect("a value").to_owned()
    }
}

/// A client that shows redirects instead of following them.
pub(crate) fn plain() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

async fn signing_in_with_a_password_and_a_totp_code_opens_the_home_page(b: Backend) {
    let Some(mut c) = console(b, "sign_in").await else {
        return;
    };
    c.browser.goto(&c.url("/")).await;
    assert!(
        c.browser.current_url().await.ends_with("/console/"),
        "/ leads to the console"
    );
    assert!(c.browser.title().await.starts_with("Sign in"), "the title");
    c.browser.screenshot("sign-in").await;

    c.sign_in(T0).await;

    let who = c.browser.text("#signed-in-as").await;
    assert!(who.contains("anna") && who.contains("compliance"), "{who}");
    assert_eq!(c.browser.text("h1").await, "Staff console");
    c.browser.screenshot("home").await;
    assert!(!c.browser.alert_open().await, "no script ran");
    let cookie = c
        .browser
        .cookie("arkku_session")
        .await
        .expect("session cookie");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["secure"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    assert_eq!(cookie["path"], "/", "{cookie}");
    assert!(
        cookie.get("expiry").is_none(),
        "a browser-session cookie: {cookie}"
    );
    // The database holds a hash of the id, never the id.
    let id = c.session().await;
    assert_eq!(c.app.count("web_sessions").await, 1);
    let hash = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    let db = c.app.db();
    let by_hash = arkku::store::web_sessions::by_hash(db, hash.as_ref()).await;
    assert!(by_hash.unwrap().is_some(), "kept by its hash");
    let by_id = arkku::store::web_sessions::by_hash(db, id.as_bytes()).await;
    assert!(by_id.unwrap().is_none(), "not by the id itself");
    c.browser.close().await;
}

async fn a_wrong_code_or_password_is_refused_without_saying_which(b: Backend) {
    let Some(mut c) = console(b, "refused").await else {
        return;
    };
    let right = code(&c.uri, T0);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };

    c.sign_in_with(PASSWORD, wrong).await;
    let after_wrong_code = c.browser.text("#sign-in-error").await;
    c.browser.screenshot("wrong-code").await;
    c.sign_in_with("not the password at all", &right).await;
    let after_wrong_password = c.browser.text("#sign-in-error").await;

    assert_eq!(
        after_wrong_code, after_wrong_password,
        "the same words for either"
    );
    assert!(
        after_wrong_code.contains("name, password or code"),
        "{after_wrong_code}"
    );
    assert!(!c.signed_in().await);
    assert!(c.browser.cookie("arkku_session").await.is_none());
    assert_eq!(c.app.count("web_sessions").await, 0);
    // The name typed is kept; the password field is empty again.
    assert_eq!(
        c.browser.attribute("#name", "value").await.as_deref(),
        Some("anna")
    );
    c.browser.close().await;
}

async fn a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(b: Backend) {
    let Some(mut c) = console(b, "csrf").await else {
        return;
    };
    c.sign_in(T0).await;
    let session = format!("arkku_session={}", c.session().await);
    let http = plain();

    // Sign-out without a token, with a wrong one, and from another site.
    let cases = [
        ("", None),
        ("csrf=forged", None),
        ("csrf=", Some("https://evil.example")),
    ];
    for (body, origin) in cases {
        let mut rb = http
            .post(c.url("/console/sign-out"))
            .header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(o) = origin {
            rb = rb.header("origin", o);
        }
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{body} {origin:?}");
        assert!(r.text().await.unwrap().contains("could not be accepted"));
    }
    assert_eq!(
        c.app.count("web_sessions").await,
        1,
        "the session is still there"
    );
    c.browser.refresh().await;
    assert!(c.signed_in().await, "and still signed in");

    // The sign-in form is protected too: without its token nothing is checked.
    let audited_before = c.app.count("audit_log").await;
    let r = http
        .post(c.url("/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("name=anna&password={PASSWORD}&code=123456"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        c.app.count("audit_log").await,
        audited_before,
        "no sign-in was tried"
    );
    c.browser.close().await;
}

async fn an_idle_session_expires_when_the_clock_passes_fifteen_minutes(b: Backend) {
    let Some(mut c) = console(b, "idle").await else {
        return;
    };
    c.sign_in(T0).await;

    clock_at(&c.app, T0 + Duration::minutes(14));
    c.browser.refresh().await;
    assert!(c.signed_in().await, "14 minutes idle: still signed in");
    clock_at(
        &c.app,
        T0 + Duration::minutes(14 + 15) + Duration::seconds(1),
    );
    c.browser.refresh().await;

    assert!(!c.signed_in().await, "15 minutes idle: signed out");
    assert_eq!(c.browser.count("#sign-in").await, 1, "the sign-in form");
    c.browser.screenshot("expired").await;
    assert_eq!(
        c.app.count("web_sessions").await,
        0,
        "the expired row is gone"
    );
    c.browser.close().await;
}

async fn sign_out_and_disable_end_the_session_at_once(b: Backend) {
    let Some(mut c) = console(b, "sign_out").await else {
        return;
    };
    c.sign_in(T0).await;
    let old = format!("arkku_session={}", c.session().await);

    c.browser.click_and_wait("#sign-out").await;

    assert!(!c.signed_in().await);
    assert_eq!(c.app.count("web_sessions").await, 0);
    let r = plain()
        .get(c.url("/console/"))
        .header("cookie", &old)
        .send()
        .await
        .unwrap();
    let page = r.text().await.unwrap();
    assert!(
        page.contains("id=\"sign-in\"") && !page.contains("signed-in-as"),
        "the old id is worthless"
    );

    // A new session, ended by `arkku users disable` from the vault host.
    let later = T0 + Duration::seconds(30);
    clock_at(&c.app, later);
    c.sign_in(later).await;
    cli_ok(&c.app, &["users", "disable", "anna"]).await;
    c.browser.refresh().await;
    assert!(
        !c.signed_in().await,
        "disabled: signed out on the next request"
    );
    assert_eq!(c.app.count("web_sessions").await, 0);
    c.browser.close().await;
}

async fn every_console_response_carries_the_security_headers(b: Backend) {
    let app = spawn_app(b).await;
    let http = plain();
    let get = |path: &str| http.get(format!("{}{path}", app.address)).send();

    let root = get("/").await.unwrap();
    assert_eq!(root.status(), StatusCode::SEE_OTHER);
    assert_eq!(root.headers()["location"], "/console/");
    for (path, status) in [
        ("/console/", StatusCode::OK),
        ("/console/no-such-page", StatusCode::NOT_FOUND),
    ] {
        let r = get(path).await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["cache-control"], "no-store", "{path}");
        assert!(
            h["content-type"].to_str().unwrap().starts_with("text/html"),
            "{path}"
        );
    }
    let css = get("/static/arkku.css").await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age=31536000"));
    assert_eq!(css.headers()["x-content-type-options"], "nosniff");
}

async fn the_language_switches_to_finnish_and_back_and_accept_language_chooses(b: Backend) {
    let Some(mut c) = console(b, "language").await else {
        return;
    };
    c.browser.goto(&c.url("/console/")).await;
    assert_eq!(
        c.browser.attribute("html", "lang").await.as_deref(),
        Some("en")
    );

    c.browser.click_and_wait("#switch-language").await;
    assert_eq!(
        c.browser.attribute("html", "lang").await.as_deref(),
        Some("fi")
    );
    assert_eq!(
        c.browser.text("h1").await,
        "Kirjaudu henkilökunnan konsoliin"
    );
    c.browser.screenshot("sign-in-fi").await;
    c.sign_in(T0).await;
    assert_eq!(c.browser.text("h1").await, "Henkilökunnan konsoli");
    c.browser.screenshot("home-fi").await;
    c.browser.click_and_wait("#switch-language").await;
    assert_eq!(
        c.browser.attribute("html", "lang").await.as_deref(),
        Some("en")
    );
    assert_eq!(c.browser.text("h1").await, "Staff console");
    let address = c.app.address.clone();
    c.browser.close().await;

    // Without the cookie, Accept-Language decides.
    for (accept, lang) in [
        ("fi-FI,fi;q=0.9,en;q=0.8", "fi"),
        ("en;q=0.4, fi;q=0.2", "en"),
        ("sv", "en"),
    ] {
        let page = plain()
            .get(format!("{address}/console/"))
            .header("accept-language", accept)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            page.contains(&format!("<html lang=\"{lang}\">")),
            "{accept}"
        );
    }
}
