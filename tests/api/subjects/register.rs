//! The register of requests in the browser (overdue first as the clock
//! moves, an extension with its reason, a request walked to completion,
//! the CSV download), and what refuses: a POST without its CSRF token, and
//! an admin, who gets "not allowed" and no link to these pages.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use time::Duration;

use crate::console::{console, plain, Console};
use crate::helpers::{Backend, Scenario, TestApp};
use crate::scenarios;
use crate::users::aids::{add_user, audit_entries, clock_at, code, PASSWORD, T0};

pub fn tests() -> Vec<Scenario> {
    scenarios![
        the_register_puts_the_overdue_request_first_and_walks_one_to_completion,
        a_post_without_its_token_is_refused_and_an_admin_is_not_allowed,
    ]
}

/// Registers a request through the API; its id.
pub(crate) async fn api_request(
    app: &TestApp,
    kind: &str,
    case: &str,
    customer: Option<&str>,
    received_at: Option<&str>,
) -> String {
    let body = json!({"kind": kind, "case_reference": case,
                      "customer_id": customer, "received_at": received_at});
    let r = app
        .request(
            Method::POST,
            "/v1/dsr/requests",
            Some(&app.compliance()),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.json["id"].as_str().unwrap().to_owned()
}

/// Moves a request on through the API.
pub(crate) async fn api_step(app: &TestApp, id: &str, to: &str) {
    let path = format!("/v1/dsr/requests/{id}/transition");
    let r = app
        .request(
            Method::POST,
            &path,
            Some(&app.compliance()),
            Some(json!({"to": to})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// A request with its history, through the API.
pub(crate) async fn api_read(app: &TestApp, id: &str) -> Value {
    let path = format!("/v1/dsr/requests/{id}");
    let r = app
        .request(Method::GET, &path, Some(&app.compliance()), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json
}

/// The id of the request under `case`, through the API.
async fn id_of(app: &TestApp, case: &str) -> String {
    let r = app
        .request(
            Method::GET,
            "/v1/dsr/requests",
            Some(&app.compliance()),
            None,
        )
        .await;
    let list = r.json["requests"].as_array().unwrap();
    let found = list.iter().find(|r| r["case_reference"] == case);
    found.expect(case)["id"].as_str().unwrap().to_owned()
}

async fn the_register_puts_the_overdue_request_first_and_walks_one_to_completion(b: Backend) {
    let Some(mut c) = console(b, "subjects_register").await else {
        return;
    };
    let customer = super::seed_customer(&c.app).await;
    // Received twenty days ago: due on 12 December, overdue from the 13th.
    let early = "2026-11-12T09:00:00Z";
    api_request(&c.app, "access", "DSR-2026-0100", None, Some(early)).await;
    c.browser.resize(1100, 1400).await;
    c.sign_in(T0).await;

    c.browser.goto(&c.url("/console/requests")).await;
    assert_eq!(c.browser.count("#nothing-urgent").await, 1);
    c.browser.click("#new-kind option[value='access']").await;
    c.browser.type_into("#new-case", "DSR-2026-0101").await;
    c.browser.type_into("#new-customer", &customer).await;
    c.browser.click_and_wait("#register").await;
    assert!(c.browser.current_url().await.ends_with("/console/requests"));
    let rest = c.browser.text("#rest").await;
    assert!(
        rest.contains("DSR-2026-0101") && rest.contains("2027-01-02"),
        "{rest}"
    );

    // Eleven days on (signed in again: the session has long gone idle).
    let later = T0 + Duration::days(11);
    clock_at(&c.app, later);
    c.sign_in(later).await;
    c.browser.goto(&c.url("/console/requests")).await;
    let urgent = c.browser.text("#attention").await;
    assert!(
        urgent.contains("DSR-2026-0100") && urgent.contains("Overdue"),
        "{urgent}"
    );
    assert!(!urgent.contains("DSR-2026-0101"), "{urgent}");
    assert_eq!(c.browser.count("#attention .badge.dsr_overdue").await, 1);
    c.browser.screenshot("register-overdue").await;

    // Extend the other one, with a reason, and complete it.
    let id = id_of(&c.app, "DSR-2026-0101").await;
    extend_and_complete(&mut c, &id).await;

    // The register as CSV.
    c.browser.goto(&c.url("/console/requests")).await;
    assert!(c.browser.text("#rest").await.contains("three systems"));
    let file = c.browser.download("#download-csv").await;
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(
        csv.contains("DSR-2026-0100") && csv.contains("DSR-2026-0101"),
        "{csv}"
    );
    assert!(
        file.to_string_lossy().ends_with("2026-12-13.csv"),
        "{file:?}"
    );
    assert_eq!(audit_entries(&c.app, "dsr.request.export").await.len(), 1);
    c.browser.click_and_wait("#switch-language").await;
    assert_eq!(c.browser.text("h1").await, "Pyyntörekisteri");
    c.browser.screenshot("register-fi").await;
    c.browser.close().await;
}

/// On request `id`'s page (from the register): an extension with its
/// reason, then only the steps its state allows, one by one, to completion.
async fn extend_and_complete(c: &mut Console, id: &str) {
    c.browser
        .click_and_wait(&format!("#rest a[href='/console/requests/{id}']"))
        .await;
    c.browser.screenshot("request-open").await;
    c.browser
        .type_into("#extend-reason", "The data sits in three systems")
        .await;
    c.browser.click_and_wait("#extend").await;
    let due = c.browser.text("#due-date").await;
    assert!(
        due.starts_with("2027-02-02") && due.contains("three systems"),
        "{due}"
    );

    // Only the next steps the state allows, each a button.
    assert_eq!(c.browser.count("#to-completed").await, 0, "identity first");
    c.browser.click_and_wait("#to-identity_verified").await;
    assert_eq!(c.browser.count("#to-identity_verified").await, 0);
    c.browser.click_and_wait("#to-completed").await;
    assert_eq!(c.browser.text("#request-status").await, "completed");
    assert_eq!(c.browser.count("#final").await, 1);
    assert_eq!(c.browser.count("#history tbody tr").await, 4);
    c.browser.screenshot("request").await;
}

/// Signs `name` in through the form, with the code of `uri` at `at`.
async fn sign_in_as(c: &mut Console, name: &str, uri: &str, at: time::OffsetDateTime) {
    c.browser.goto(&c.url("/console/")).await;
    c.browser.type_into("#name", name).await;
    c.browser.type_into("#password", PASSWORD).await;
    c.browser.type_into("#code", &code(uri, at)).await;
    c.browser.click_and_wait("#sign-in").await;
    assert!(c.signed_in().await, "{name} signed in");
}

async fn a_post_without_its_token_is_refused_and_an_admin_is_not_allowed(b: Backend) {
    let Some(mut c) = console(b, "subjects_refusals").await else {
        return;
    };
    let customer = super::seed_customer(&c.app).await;
    c.sign_in(T0).await;
    let session = format!("arkku_session={}", c.session().await);
    let http = plain();
    let posts = [
        (
            "/console/customers".to_owned(),
            "channel=phone&value=0401234567",
        ),
        (
            "/console/requests".to_owned(),
            "kind=access&case_reference=X-1",
        ),
        (
            format!("/console/customers/{customer}/erase"),
            "confirmation=x&case_reference=X-2",
        ),
        (
            format!("/console/customers/{customer}/reveal"),
            "case_reference=X-3",
        ),
    ];
    for (path, body) in &posts {
        let r = http
            .post(c.url(path))
            .header("cookie", &session)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(*body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(c.app.count("dsr_requests").await, 0, "nothing registered");
    // With its token, a value that is no phone number is a 400 page.
    c.browser.goto(&c.url("/console/customers")).await;
    let csrf = c
        .browser
        .attribute("input[name=csrf]", "value")
        .await
        .unwrap();
    let r = http
        .post(c.url("/console/customers"))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&channel=phone&value=12ab"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("id=\"value-error\""));
    for action in ["export", "customer.erase"] {
        assert!(audit_entries(&c.app, action).await.is_empty(), "{action}");
    }
    // A reveal's answer, like every page here, is kept by no cache.
    let r = http
        .post(c.url(&format!("/console/customers/{customer}/reveal")))
        .header("cookie", &session)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&case_reference=X-4"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.text().await.unwrap().contains(super::PHONE));
    c.browser.click_and_wait("#sign-out").await;

    an_admin_is_not_allowed(&mut c, &customer).await;
    c.browser.close().await;
}

/// An admin signed in: no link to these pages, and "not allowed" (403) at
/// their doors.
async fn an_admin_is_not_allowed(c: &mut Console, customer: &str) {
    let at = T0 + Duration::seconds(40);
    clock_at(&c.app, at);
    let (uri, _) = add_user(&c.app, "olli", "admin", PASSWORD).await;
    sign_in_as(c, "olli", &uri, at).await;
    for path in ["/console/customers", "/console/requests"] {
        let link = format!("nav.pages a[href='{path}']");
        assert_eq!(c.browser.count(&link).await, 0, "{path}");
    }
    for path in [
        "/console/customers".to_owned(),
        "/console/requests".to_owned(),
        format!("/console/customers/{customer}"),
    ] {
        c.browser.goto(&c.url(&path)).await;
        let message = c.browser.text("#error-message").await;
        assert!(message.contains("not allowed"), "{path}: {message}");
    }
    c.browser.screenshot("admin-not-allowed").await;
    let admin = format!("arkku_session={}", c.session().await);
    let r = plain()
        .get(c.url(&format!("/console/customers/{customer}")))
        .header("cookie", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
