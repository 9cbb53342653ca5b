//! The customer privacy page, `/privacy/`, in real headless Chromium on both
//! databases: sign-in with the code from the outbox file, the data with its
//! deletion dates, the consent switches seen from an agent's side over the
//! API, "who has seen my data", the downloads, the requests, erasure, and
//! the frame's rules (CSRF, no ids to change, idle expiry, Finnish).
//! Screenshots of every page go to `target/screenshots/`.

use std::io::Read;

use reqwest::{redirect::Policy, Client, Method, StatusCode};
use serde_json::{json, Value};
use time::Duration;

use crate::console::webdriver::{self, Browser, Driver};
use crate::helpers::{Backend, Scenario, TestApp, Tok};
use crate::scenarios;
use crate::sign_in::support::{app_with_file_notifier, lines, outbox_file};
use crate::users::aids::{clock_at, T0};
use arkku::domain::Role;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        a_customer_signs_in_switches_consent_sees_who_looked_downloads_and_erases,
        the_sign_in_page_is_the_same_for_an_unknown_address_and_a_wrong_code_is_refused,
        no_form_reaches_another_customer_and_a_form_without_csrf_is_refused,
        an_idle_session_expires_and_the_pages_speak_finnish,
    ]
}

const PENA_EMAIL: &str = "pena@example.com";

/// A vault with the customers Pena and Liisa, its notifier writing the
/// outbox file, and a browser.
struct Privacy {
    app: TestApp,
    pena: String,
    liisa: String,
    browser: Browser,
    /// Codes read from the outbox so far.
    codes: usize,
    _driver: Driver,
}

async fn privacy(b: Backend, test: &str) -> Option<Privacy> {
    let driver = webdriver::start(test).await?;
    let app = app_with_file_notifier(b).await;
    clock_at(&app, T0);
    let pena = app
        .create_customer_ok(
            &app.service(),
            json!({"display_name": "Pena <script>alert(1)</script>", "contacts": [
                {"channel": "email", "value": PENA_EMAIL},
                {"channel": "phone", "value": "+358 40 123 4567"}
            ]}),
        )
        .await;
    let liisa = app
        .create_customer_ok(
            &app.service(),
            json!({"display_name": "Liisa", "contacts": [
                {"channel": "email", "value": "liisa@example.com"}
            ]}),
        )
        .await;
    let r = app
        .request(
            Method::POST,
            &format!("/v1/customers/{pena}/interactions"),
            Some(&app.agent("phone")),
            Some(json!({"channel": "phone", "kind": "complaint",
                "body": "The parcel came <b>broken</b>."})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let browser = driver
        .browser(&format!("privacy-{test}-{}", b.name()))
        .await;
    Some(Privacy {
        app,
        pena,
        liisa,
        browser,
        codes: 0,
        _driver: driver,
    })
}

impl Privacy {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.address)
    }

    /// Asks for a code for `value` on the sign-in page.
    async fn ask_code(&mut self, value: &str) {
        self.browser.goto(&self.url("/privacy/")).await;
        self.browser.type_into("#value", value).await;
        self.browser.click_and_wait("#send-code").await;
    }

    /// The next code the notifier wrote to the outbox file.
    async fn next_code(&mut self) -> String {
        self.codes += 1;
        let all = lines(&outbox_file(&self.app), self.codes).await;
        let line = &all[self.codes - 1];
        line["code"].as_str().expect("a code").to_owned()
    }

    /// Signs in as Pena with the code from the outbox file.
    async fn sign_in(&mut self) {
        self.ask_code(PENA_EMAIL).await;
        let code = self.next_code().await;
        self.browser.type_into("#code", &code).await;
        self.browser.click_and_wait("#verify").await;
        assert_eq!(self.browser.count("#signed-in-as").await, 1, "signed in");
    }

    async fn session_cookie(&self) -> String {
        let c = self.browser.cookie("arkku_session").await.expect("session");
        format!("arkku_session={}", c["value"].as_str().expect("value"))
    }

    /// A phone agent's read of Pena for support, case T-9: the e-mail
    /// channel joins the phone agent's view only with Pena's cross-channel
    /// consent for it.
    async fn agent_reads_pena(&self) -> Value {
        let token = self.app.agent("phone");
        let query = "purpose=support&reason=T-9";
        let r = self.app.read_customer(&token, &self.pena, query).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.json
    }
}

/// The channels a profile shows, sorted.
fn channels(profile: &Value) -> Vec<String> {
    let mut shown: Vec<String> = profile["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| c["channel"].as_str().expect("channel").to_owned())
        .collect();
    shown.sort();
    shown
}

fn plain() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client")
}

async fn a_customer_signs_in_switches_consent_sees_who_looked_downloads_and_erases(b: Backend) {
    let Some(mut p) = privacy(b, "journey").await else {
        return;
    };
    p.browser.goto(&p.url("/privacy/")).await;
    p.browser.screenshot("sign-in").await;
    p.ask_code(PENA_EMAIL).await;
    assert!(p
        .browser
        .text("#code-sent")
        .await
        .contains("p•••@example.com"));
    p.browser.screenshot("code").await;
    let code = p.next_code().await;
    p.browser.type_into("#code", &code).await;
    p.browser.click_and_wait("#verify").await;

    // Your data: every contact point, unmasked, with its deletion date.
    let contacts = p.browser.text("#contacts").await;
    assert!(
        contacts.contains(PENA_EMAIL) && contacts.contains("+358401234567"),
        "{contacts}"
    );
    assert!(
        contacts.contains("1 Dec 2028"),
        "730 days after T0: {contacts}"
    );
    assert!(
        p.browser.text("#display-name").await.contains("<script>"),
        "inert"
    );
    let interactions = p.browser.text("#interactions").await;
    assert!(
        interactions.contains("The parcel came <b>broken</b>."),
        "{interactions}"
    );
    assert!(interactions.contains("complaint"), "{interactions}");
    assert!(!p.browser.alert_open().await);
    p.browser.screenshot("data").await;
    p.browser.screenshot_tall("data-whole", 1400).await;

    // The e-mail channel's cross-channel consent, on: the phone agent sees it.
    assert_eq!(channels(&p.agent_reads_pena().await), ["phone"]);
    p.browser.goto(&p.url("/privacy/consents")).await;
    p.browser
        .click_and_wait("#switch-cross_channel-email")
        .await;
    assert_eq!(
        p.browser.text("#state-cross_channel-email").await,
        "allowed"
    );
    p.browser.screenshot("consents").await;
    p.browser.screenshot_tall("consents-whole", 1600).await;
    assert_eq!(channels(&p.agent_reads_pena().await), ["email", "phone"]);
    // And off again, with one button as well: withheld.
    p.browser
        .click_and_wait("#switch-cross_channel-email")
        .await;
    assert_eq!(
        p.browser.text("#state-cross_channel-email").await,
        "withdrawn"
    );
    let read = p.agent_reads_pena().await;
    assert_eq!(channels(&read), ["phone"]);
    assert_eq!(read["withheld"][0]["channel"], "email", "{read}");
    let history = p.browser.text("#consent-history").await;
    assert!(history.contains("cross-channel-notice v1") && history.contains("on this page"));

    // Who has seen my data: the reads, in plain words, without the agent's name.
    p.browser.goto(&p.url("/privacy/access")).await;
    let log = p.browser.text("#access-log").await;
    // (The audit log stamps entries with the system time, not the test clock.)
    let both = [
        "An agent of the phone channel viewed your phone number and your e-mail address on ",
        "An agent of the phone channel viewed your e-mail address and your phone number on ",
    ];
    assert!(both.iter().any(|s| log.contains(s)), "{log}");
    assert!(
        log.contains(" (Europe/Helsinki) for support, case T-9."),
        "{log}"
    );
    assert!(log.contains("asked to see your e-mail address"), "{log}");
    assert!(
        log.contains("refused: you have withdrawn your consent"),
        "{log}"
    );
    assert!(log.contains("refused: you have not allowed it"), "{log}");
    assert!(!log.contains("agent-1"), "no staff identity: {log}");
    p.browser.screenshot("access").await;

    // Requests: one the compliance officer registered for Pena.
    let r = p
        .app
        .request(
            Method::POST,
            "/v1/dsr/requests",
            Some(&p.app.compliance()),
            Some(json!({"kind": "access", "case_reference": "DSR-77", "customer_id": p.pena})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    p.browser.goto(&p.url("/privacy/requests")).await;
    let requests = p.browser.text("#requests").await;
    assert!(
        requests.contains("DSR-77") && requests.contains("received"),
        "{requests}"
    );
    p.browser.screenshot("requests").await;

    // Downloads: the ZIP opens, the JSON holds the e-mail address.
    p.browser.goto(&p.url("/privacy/")).await;
    let zip = p.browser.download("#download-zip").await;
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&zip).expect("zip")).expect("a ZIP");
    assert!(archive.len() > 1, "files in the ZIP");
    let mut first = String::new();
    archive
        .by_index(0)
        .expect("a file")
        .read_to_string(&mut first)
        .expect("text");
    // A fresh page for the second download (Chromium may hold back a
    // page's second automatic download).
    p.browser.goto(&p.url("/privacy/")).await;
    let json = p.browser.download("#download-json").await;
    let bundle: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("JSON");
    assert_eq!(bundle["customer"]["id"], p.pena.as_str());
    assert!(
        bundle["contacts"].to_string().contains(PENA_EMAIL),
        "{bundle}"
    );

    // Erase: a mistyped word erases nothing; the right one erases.
    p.browser.goto(&p.url("/privacy/erase")).await;
    p.browser.screenshot("erase").await;
    p.browser.type_into("#confirm", "erase please").await;
    p.browser.click_and_wait("#erase").await;
    assert!(p
        .browser
        .text("#erase-error")
        .await
        .contains("Nothing was erased"));
    assert_eq!(p.agent_reads_pena().await["id"], p.pena.as_str());
    p.browser.type_into("#confirm", "ERASE").await;
    p.browser.click_and_wait("#erase").await;
    assert!(p.browser.text("h1").await.contains("erased"));
    p.browser.screenshot("erased").await;
    assert!(
        p.browser.cookie("arkku_session").await.is_none(),
        "signed out"
    );
    let me = p.app.token(Tok {
        role: Role::Customer,
        sub: &p.pena,
        purposes: &[],
        channel: None,
    });
    p.app
        .request(Method::GET, "/v1/me", Some(&me), None)
        .await
        .assert_problem(410, "customer_erased");
    p.browser.close().await;
}

async fn the_sign_in_page_is_the_same_for_an_unknown_address_and_a_wrong_code_is_refused(
    b: Backend,
) {
    let Some(mut p) = privacy(b, "unknown").await else {
        return;
    };
    p.ask_code("nobody@example.com").await;
    let unknown = (p.browser.title().await, p.browser.text("main").await);
    p.browser.screenshot("unknown").await;
    p.ask_code("pena@example.com").await;
    let known = (p.browser.title().await, p.browser.text("main").await);
    assert_eq!(unknown.0, known.0);
    assert_eq!(
        unknown.1.replace("n•••@example.com", "X"),
        known.1.replace("p•••@example.com", "X"),
        "the same page, but for the masked value typed"
    );
    // The unknown value got no message; the known one did.
    let code = p.next_code().await;
    assert_eq!(lines(&outbox_file(&p.app), 1).await.len(), 1);
    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    p.browser.type_into("#code", wrong).await;
    p.browser.click_and_wait("#verify").await;
    assert!(p.browser.text("#sign-in-error").await.contains("not right"));
    assert!(p.browser.cookie("arkku_session").await.is_none());
    p.browser.screenshot("wrong-code").await;
    // The same challenge with the right code still signs in (attempts left).
    p.browser.type_into("#code", &code).await;
    p.browser.click_and_wait("#verify").await;
    assert_eq!(p.browser.count("#signed-in-as").await, 1);
    p.browser.close().await;
}

async fn no_form_reaches_another_customer_and_a_form_without_csrf_is_refused(b: Backend) {
    let Some(mut p) = privacy(b, "forged").await else {
        return;
    };
    p.sign_in().await;
    let cookie = p.session_cookie().await;
    p.browser.goto(&p.url("/privacy/consents")).await;
    let csrf = p
        .browser
        .attribute("input[name=csrf]", "value")
        .await
        .expect("a csrf field");
    let http = plain();
    let post = |path: &str, body: String| {
        http.post(p.url(path))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    };
    // No page takes an id; a forged customer_id field is ignored.
    let forged = format!(
        "csrf={csrf}&purpose=cross_channel&channel=email&action=grant&customer_id={}",
        p.liisa
    );
    let r = post("/privacy/consents", forged)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let ledger = |id: String| {
        let app = &p.app;
        async move {
            let path = format!("/v1/customers/{id}/consents");
            let r = app
                .request(Method::GET, &path, Some(&app.agent("email")), None)
                .await;
            r.json["history"].as_array().expect("history").len()
        }
    };
    assert_eq!(ledger(p.liisa.clone()).await, 0, "Liisa's ledger untouched");
    assert_eq!(ledger(p.pena.clone()).await, 1, "Pena's own grant");
    let r = http
        .get(p.url(&format!("/privacy/customers/{}", p.liisa)))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Without the token, with a wrong one, from another site: 403, nothing changes.
    let body = "purpose=cross_channel&channel=email&action=withdraw";
    for (form, origin) in [
        (body.to_owned(), None),
        (format!("{body}&csrf=forged"), None),
        (format!("{body}&csrf={csrf}"), Some("https://evil.example")),
    ] {
        let mut rb = post("/privacy/consents", form);
        if let Some(o) = origin {
            rb = rb.header("origin", o);
        }
        let r = rb.send().await.expect("post");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let r = post("/privacy/erase", "confirm=ERASE".into())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(ledger(p.pena.clone()).await, 1, "no withdrawal recorded");
    assert_eq!(
        p.agent_reads_pena().await["id"],
        p.pena.as_str(),
        "not erased"
    );
    p.browser.close().await;
}

async fn an_idle_session_expires_and_the_pages_speak_finnish(b: Backend) {
    let Some(mut p) = privacy(b, "finnish").await else {
        return;
    };
    p.sign_in().await;
    let cookie = p.browser.cookie("arkku_session").await.expect("cookie");
    assert_eq!(cookie["httpOnly"], true, "{cookie}");
    assert_eq!(cookie["secure"], true, "{cookie}");
    assert_eq!(cookie["sameSite"], "Strict", "{cookie}");
    p.browser.click_and_wait("#switch-language").await;
    assert_eq!(p.browser.text("h1").await, "Tietosi");
    assert!(p.browser.text("#contacts").await.contains("1.12.2028"));
    p.browser.screenshot("data-fi").await;
    p.browser.goto(&p.url("/privacy/consents")).await;
    assert_eq!(p.browser.text("#switch-cross_channel-email").await, "Salli");
    p.browser.screenshot("consents-fi").await;
    p.browser.screenshot_tall("consents-fi-whole", 1600).await;
    p.agent_reads_pena().await;
    p.browser.goto(&p.url("/privacy/access")).await;
    let log = p.browser.text("#access-log").await;
    assert!(
        log.contains("asiakaspalvelija (puhelin) katsoi: puhelinnumerosi"),
        "{log}"
    );
    p.browser.screenshot("access-fi").await;
    p.browser.goto(&p.url("/privacy/erase")).await;
    p.browser.screenshot("erase-fi").await;

    // Fourteen idle minutes keep the session; sixteen end it.
    clock_at(&p.app, T0 + Duration::minutes(14));
    p.browser.goto(&p.url("/privacy/requests")).await;
    assert_eq!(p.browser.count("#signed-in-as").await, 1);
    p.browser.screenshot("requests-fi").await;
    clock_at(&p.app, T0 + Duration::minutes(31));
    p.browser.goto(&p.url("/privacy/requests")).await;
    assert!(p.browser.current_url().await.ends_with("/privacy/"));
    assert_eq!(p.browser.count("#value").await, 1, "the sign-in form again");
    assert_eq!(p.app.count("web_sessions").await, 0);
    p.browser.close().await;
}
