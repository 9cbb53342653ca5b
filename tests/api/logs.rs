//! The log of the real `arkku serve`: one access line per request with the
//! route template, status, latency and actor, and none of the data that
//! passed through. The test stores distinctive values, drives every
//! operation `/openapi.json` lists (a new one is driven without being
//! named here) and the pages under `/console` and `/privacy`, sends values
//! in paths, query strings and headers, and then reads stderr: every line
//! JSON, one access line per request, no ESC byte, none of the values.

use std::collections::{BTreeSet, HashMap};

use reqwest::{header, redirect::Policy, Client, Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    free_port, no_rate_limits_env, spawn_app, Backend, Proc, Reply, Scenario, TestApp, Tok,
    START_LIMIT,
};
use crate::scenarios;
use crate::sign_in::support::{lines, outbox_file};
use crate::users::aids::{add_user, clock_at, code, secret_of, T0};
use arkku::domain::Role;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        every_request_has_one_json_line_and_the_log_holds_none_of_the_data,
        the_text_format_has_the_same_lines_without_colour,
    ]
}

// Distinctive values: each must appear nowhere in the log.
const NAME: &str = "Quentin Zyxwarbler";
const RENAMED: &str = "Quentin Zyxwarbler-Oddfellow";
const EMAIL: &str = "quentin.zyx7731@example.org";
const PHONE: &str = "+358 40 771 3377";
const PHONE_E164: &str = "+358407713377";
const SMS: &str = "+358 50 661 2299";
const SMS_E164: &str = "+358506612299";
const POSTAL: &str = "Kuusikuja 17 B 42, 00990 Helsinki";
const EXTERNAL_REF: &str = "EXT-Tapir-7713";
const BODY: &str = "The parcel came broken, says Wombat-5512";
const NOTICE: &str = "notice-Okapi-8820";
const CASE: &str = "CASE-Axolotl-4471";
const CASE_WEB: &str = "CASE-Axolotl-4472";
const NOTE: &str = "note-Narwhal-3391 called from his sister's phone";
const REASON: &str = "reason-Pangolin-6643";
const PASSWORD: &str = "Staff-Passphrase-Ibex-9921";
const HEADER_VALUE: &str = "header-Marmot-1188";
const QUERY_VALUE: &str = "query-Dingo-5521";
const IDEMPOTENCY_KEY: &str = "idem-Gecko-4402";

/// Fragments of the values above that must not appear either (the values
/// may be logged normalised or split).
const FRAGMENTS: &[&str] = &[
    "Zyxwarbler",
    "zyx7731",
    "407713377",
    "506612299",
    "Kuusikuja",
    "Tapir-7713",
    "Wombat-5512",
    "Okapi-8820",
    "Axolotl",
    "Narwhal-3391",
    "Pangolin-6643",
    "Ibex-9921",
    "Marmot-1188",
    "Dingo-5521",
    "Gecko-4402",
];

/// Who a request is logged as.
#[derive(Debug, Clone)]
enum Who {
    Nobody,
    Is(&'static str, String),
    /// A staff member or customer of the web pages: the role, and a sub.
    Role(&'static str),
    /// Either nobody, or someone: a request that ends who it was.
    Any,
}

/// A request the test sent, as its access line must show it.
#[derive(Debug)]
struct Sent {
    method: Method,
    route: String,
    status: u16,
    request_id: String,
    who: Who,
}

/// A client of the served vault that records what it sent and what it
/// must not find in the log.
struct Driver {
    base: String,
    client: Client,
    sent: Vec<Sent>,
    secrets: Vec<String>,
}

/// A browser's cookies, as far as these pages set them.
#[derive(Default, Clone)]
struct Jar(HashMap<String, String>);

impl Jar {
    fn take(&mut self, reply: &Reply) {
        for v in reply.headers.get_all(header::SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                if value.is_empty() {
                    self.0.remove(name);
                } else {
                    self.0.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Driver {
    /// Sends `rb` (for `route`, as `who`), with a distinctive header, and
    /// records it.
    async fn send(&mut self, method: Method, route: &str, who: Who, rb: RequestBuilder) -> Reply {
        let rb = rb
            .header("x-probe", HEADER_VALUE)
            .header(header::USER_AGENT, HEADER_VALUE);
        let r = crate::helpers::send(rb).await;
        let request_id = r
            .header("x-request-id")
            .unwrap_or_else(|| panic!("{method} {route}: no x-request-id"))
            .to_owned();
        self.sent.push(Sent {
            method,
            route: route.to_owned(),
            status: r.status.as_u16(),
            request_id,
            who,
        });
        r
    }

    /// An API request with a bearer token and a JSON body.
    async fn api(
        &mut self,
        method: Method,
        route: &str,
        path: &str,
        token: Option<(&str, Who)>,
        body: Option<Value>,
    ) -> Reply {
        let mut rb = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        let mut who = Who::Nobody;
        if let Some((t, w)) = token {
            rb = rb.bearer_auth(t);
            who = w;
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        self.send(method, route, who, rb).await
    }

    /// A page request with the cookies of `jar` (updated from the answer).
    async fn page(
        &mut self,
        jar: &mut Jar,
        method: Method,
        route: &str,
        path: &str,
        who: Who,
        form: Option<&[(&str, &str)]>,
    ) -> Reply {
        let mut rb = self
            .client
            .request(method.clone(), format!("{}{path}", self.base));
        if !jar.0.is_empty() {
            rb = rb.header(header::COOKIE, jar.header());
        }
        if let Some(fields) = form {
            rb = rb.form(fields);
        }
        let r = self.send(method, route, who, rb).await;
        jar.take(&r);
        r
    }

    fn secret(&mut self, s: &str) {
        assert!(!s.is_empty());
        self.secrets.push(s.to_owned());
    }
}

/// The value of the hidden field `name` in the form posting to `action`.
fn hidden(html: &str, action: &str, name: &str) -> String {
    let start = html
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("no form posting to {action} in:\n{html}"));
    let form = &html[start..];
    let form = &form[..form.find("</form>").unwrap_or(form.len())];
    let needle = format!("name=\"{name}\" value=\"");
    let at = form
        .find(&needle)
        .unwrap_or_else(|| panic!("no field {name} in the form of {action}"))
        + needle.len();
    form[at..].split('"').next().unwrap_or("").to_owned()
}

/// The `n`th sign-in code the notifier wrote to the outbox file.
async fn code_in_outbox(app: &TestApp, n: usize) -> String {
    let all = lines(&outbox_file(app), n).await;
    all[n - 1]["code"].as_str().expect("a code").to_owned()
}

/// A vault with the compliance officer `anna` and the admin `otto`, served
/// by the real binary with `ARKKU_LOG_FORMAT=format` and the notifier
/// writing the outbox file.
async fn served(b: Backend, format: &str) -> (TestApp, Proc, String, String, String) {
    let app = spawn_app(b).await;
    clock_at(&app, T0);
    let (anna, _) = add_user(&app, "anna", "compliance", PASSWORD).await;
    let (otto, _) = add_user(&app, "otto", "admin", PASSWORD).await;
    let listen = format!("127.0.0.1:{}", free_port());
    let mut proc = app.cli_proc_with(
        &["serve"],
        &[
            ("ARKKU_LISTEN", &listen),
            ("ARKKU_LOG_FORMAT", format),
            // Our own debug lines too: they must not leak either.
            ("ARKKU_LOG", "info,arkku=debug"),
            ("ARKKU_NOTIFY", "file"),
            // The harness sets NO_COLOR; empty, it asks for nothing, so
            // only the terminal test keeps colour out of the file.
            ("NO_COLOR", ""),
            no_rate_limits_env(),
        ],
    );
    let base = format!("http://{listen}");
    proc.wait_healthy(&base, START_LIMIT).await;
    (app, proc, base, anna, otto)
}

fn plain() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn every_request_has_one_json_line_and_the_log_holds_none_of_the_data(b: Backend) {
    let (app, proc, base, anna_uri, otto_uri) = served(b, "json").await;
    let mut d = Driver {
        base,
        client: plain(),
        sent: Vec::new(),
        secrets: vec![secret_of(&anna_uri), secret_of(&otto_uri)],
    };
    let tok = |role, sub: &'static str, purposes: &'static [&'static str], channel| {
        let t = app.token(Tok {
            role,
            sub,
            purposes,
            channel,
        });
        (t, Who::Is(role_name(role), sub.to_owned()))
    };
    let service = tok(Role::Service, "crm-sync", &["support"], None);
    let email_agent = tok(Role::Agent, "agent-7", &["support"], Some("email"));
    let phone_agent = tok(Role::Agent, "agent-8", &["support"], Some("phone"));
    let compliance = tok(Role::Compliance, "auditor", &["dsr"], None);
    let admin = tok(Role::Admin, "ops-admin", &[], None);
    for t in [&service, &email_agent, &phone_agent, &compliance, &admin] {
        d.secret(&t.0);
    }
    let with = |t: &(String, Who)| Some((t.0.clone(), t.1.clone()));
    macro_rules! api {
        ($m:expr, $route:expr, $path:expr, $tok:expr, $body:expr) => {{
            let t: Option<(String, Who)> = $tok;
            let path = $path;
            let p: &str = path.as_ref();
            d.api(
                $m,
                $route,
                p,
                t.as_ref().map(|(s, w)| (s.as_str(), w.clone())),
                $body,
            )
            .await
        }};
    }

    // --- the API, operation by operation ---------------------------------
    let r = d
        .send(
            Method::POST,
            "/v1/customers",
            service.1.clone(),
            d.client
                .post(format!("{}/v1/customers", d.base))
                .bearer_auth(&service.0)
                .header("idempotency-key", IDEMPOTENCY_KEY)
                .json(&json!({
                    "display_name": NAME,
                    "external_ref": EXTERNAL_REF,
                    "preferred_channel": "email",
                    "contacts": [
                        {"channel": "email", "value": EMAIL},
                        {"channel": "phone", "value": PHONE},
                        {"channel": "postal", "value": POSTAL},
                    ]
                })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_owned();
    let one = format!("/v1/customers/{id}");
    let read = format!("purpose=support&reveal=true&reason={REASON}");
    let support = format!("purpose=support&reason={REASON}");
    let r = api!(
        Method::GET,
        "/v1/customers/{id}",
        format!("{one}?{read}"),
        with(&email_agent),
        None
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.text.contains(EMAIL), "the read released the e-mail");
    let contact = r.json["contacts"][0]["id"]
        .as_str()
        .expect("contact id")
        .to_owned();
    api!(
        Method::PATCH,
        "/v1/customers/{id}",
        one.as_str(),
        with(&service),
        Some(json!({"display_name": RENAMED}))
    );
    let r = api!(
        Method::POST,
        "/v1/customers/{id}/contacts",
        format!("{one}/contacts"),
        with(&service),
        Some(json!({"channel": "sms", "value": SMS}))
    );
    assert!(r.status.is_success(), "{}", r.text);
    let grant = json!({"purpose": "cross_channel", "channel": "email", "action": "grant",
        "method": "spoken", "evidence": {"notice_id": NOTICE, "notice_version": "3"}});
    let r = api!(
        Method::POST,
        "/v1/customers/{id}/consents",
        format!("{one}/consents"),
        with(&phone_agent),
        Some(grant)
    );
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let pending = r.json["consent_id"].as_str().unwrap_or_default().to_owned();
    api!(
        Method::GET,
        "/v1/customers/{id}/consents",
        format!("{one}/consents"),
        with(&phone_agent),
        None
    );
    let r = api!(
        Method::POST,
        "/v1/customers/{id}/interactions",
        format!("{one}/interactions"),
        with(&phone_agent),
        Some(
            json!({"channel": "phone", "kind": "contact_request", "body": BODY,
            "due_at": "2026-12-01T08:00:00Z"})
        )
    );
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let interaction = r.json["id"].as_str().expect("interaction id").to_owned();
    let r = api!(
        Method::GET,
        "/v1/customers/{id}/interactions",
        format!("{one}/interactions?{support}"),
        with(&phone_agent),
        None
    );
    assert!(r.text.contains("Wombat-5512"), "{}", r.text);
    api!(
        Method::GET,
        "/v1/interactions/overdue",
        "/v1/interactions/overdue?purpose=support",
        with(&phone_agent),
        None
    );
    api!(
        Method::PATCH,
        "/v1/customers/{id}/interactions/{interaction_id}",
        format!("{one}/interactions/{interaction}"),
        with(&phone_agent),
        Some(json!({"resolved": true}))
    );
    let r = api!(
        Method::POST,
        "/v1/lookup",
        "/v1/lookup",
        with(&email_agent),
        Some(json!({"channel": "email", "value": EMAIL, "purpose": "support"}))
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    api!(
        Method::GET,
        "/v1/customers/{id}/export",
        format!("{one}/export?purpose=dsr&reason={REASON}"),
        with(&compliance),
        None
    );

    // Data subject requests.
    let r = api!(
        Method::POST,
        "/v1/dsr/requests",
        "/v1/dsr/requests",
        with(&compliance),
        Some(json!({"kind": "access", "case_reference": CASE, "note": NOTE, "customer_id": id}))
    );
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let dsr = r.json["id"].as_str().expect("request id").to_owned();
    for (route, path) in [
        ("/v1/dsr/requests", "/v1/dsr/requests".to_owned()),
        ("/v1/dsr/requests.csv", "/v1/dsr/requests.csv".to_owned()),
        ("/v1/dsr/requests/{id}", format!("/v1/dsr/requests/{dsr}")),
    ] {
        let r = api!(Method::GET, route, path, with(&compliance), None);
        assert_eq!(r.status, StatusCode::OK, "{route}: {}", r.text);
    }
    api!(
        Method::POST,
        "/v1/dsr/requests/{id}/extend",
        format!("/v1/dsr/requests/{dsr}/extend"),
        with(&compliance),
        Some(json!({"months": 1, "reason": REASON}))
    );
    api!(
        Method::POST,
        "/v1/dsr/requests/{id}/transition",
        format!("/v1/dsr/requests/{dsr}/transition"),
        with(&compliance),
        Some(json!({"to": "identity_verified"}))
    );

    // The audit log.
    for (route, path) in [
        ("/v1/audit", format!("/v1/audit?customer_id={id}")),
        ("/v1/audit/verify", "/v1/audit/verify".to_owned()),
        ("/v1/audit/export", "/v1/audit/export".to_owned()),
        (
            "/v1/audit/export/manifest",
            "/v1/audit/export/manifest".to_owned(),
        ),
    ] {
        let r = api!(Method::GET, route, path, with(&compliance), None);
        assert_eq!(r.status, StatusCode::OK, "{route}: {}", r.text);
    }

    // The customer signs in with a code, and reads and changes their own.
    let r = api!(
        Method::POST,
        "/v1/auth/customer/start",
        "/v1/auth/customer/start",
        None,
        Some(json!({"channel": "email", "value": EMAIL}))
    );
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    let challenge = r.json["challenge_id"]
        .as_str()
        .expect("challenge")
        .to_owned();
    let code1 = code_in_outbox(&app, 1).await;
    d.secret(&code1);
    d.secret(&code1.replace(' ', ""));
    let r = api!(
        Method::POST,
        "/v1/auth/customer/verify",
        "/v1/auth/customer/verify",
        None,
        Some(json!({"challenge_id": challenge, "code": code1}))
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let me_token = r.json["access_token"].as_str().expect("token").to_owned();
    d.secret(&me_token);
    let me = Some((me_token, Who::Is("customer", id.clone())));
    for (route, path) in [
        ("/v1/me", "/v1/me"),
        ("/v1/me/consents", "/v1/me/consents"),
        ("/v1/me/export", "/v1/me/export"),
        ("/v1/me/requests", "/v1/me/requests"),
    ] {
        let r = api!(Method::GET, route, path, me.clone(), None);
        assert_eq!(r.status, StatusCode::OK, "{route}: {}", r.text);
    }
    let r = api!(
        Method::POST,
        "/v1/me/consents",
        "/v1/me/consents",
        me.clone(),
        Some(json!({"action": "confirm", "consent_id": pending}))
    );
    assert!(r.status.is_success(), "{}", r.text);

    // Integration clients and their tokens.
    let r = api!(
        Method::POST,
        "/v1/admin/clients",
        "/v1/admin/clients",
        with(&admin),
        Some(json!({"name": "crm", "role": "service", "purposes": ["support"]}))
    );
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let client = r.json["client"]["client_id"]
        .as_str()
        .expect("client id")
        .to_owned();
    let secret = r.json["client_secret"].as_str().expect("secret").to_owned();
    d.secret(&secret);
    api!(
        Method::GET,
        "/v1/admin/clients",
        "/v1/admin/clients",
        with(&admin),
        None
    );
    api!(
        Method::GET,
        "/v1/admin/clients/{id}",
        format!("/v1/admin/clients/{client}"),
        with(&admin),
        None
    );
    let rb = d
        .client
        .post(format!("{}/oauth/token", d.base))
        .basic_auth(&client, Some(&secret))
        .form(&[("grant_type", "client_credentials")]);
    let r = d.send(Method::POST, "/oauth/token", Who::Nobody, rb).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let client_token = r.json["access_token"].as_str().expect("token").to_owned();
    d.secret(&client_token);
    let r = api!(
        Method::GET,
        "/v1/customers/{id}",
        format!("{one}?{read}"),
        Some((client_token.clone(), Who::Is("service", client.clone()))),
        None
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let rb = d
        .client
        .post(format!("{}/oauth/revoke", d.base))
        .basic_auth(&client, Some(&secret))
        .form(&[("token", client_token.as_str())]);
    d.send(Method::POST, "/oauth/revoke", Who::Nobody, rb).await;
    let r = api!(
        Method::POST,
        "/v1/admin/clients/{id}/secret",
        format!("/v1/admin/clients/{client}/secret"),
        with(&admin),
        Some(json!({}))
    );
    if let Some(s) = r.json["client_secret"].as_str() {
        d.secret(s);
    }
    api!(
        Method::DELETE,
        "/v1/admin/clients/{id}",
        format!("/v1/admin/clients/{client}"),
        with(&admin),
        None
    );

    // Values where they do not belong: in a path, a query, an unknown route.
    api!(
        Method::GET,
        "/v1/customers/{id}",
        format!("/v1/customers/{EMAIL}?{QUERY_VALUE}={EMAIL}"),
        with(&email_agent),
        None
    );
    api!(
        Method::GET,
        "unmatched",
        format!("/nowhere/{EMAIL}/{PHONE_E164}?q={QUERY_VALUE}"),
        None,
        None
    );
    // A method the route does not have: refused before any extractor runs.
    let unread = service.0.clone();
    api!(
        Method::PUT,
        "/v1/customers/{id}",
        one.clone(),
        Some((unread, Who::Nobody)),
        Some(json!({"display_name": NAME}))
    );
    // A refused token is logged (at debug) inside the request, with its
    // request id and without the path.
    let mut refused = Vec::new();
    for path in [format!("{one}?{read}"), format!("/v1/customers/{EMAIL}")] {
        let forged = Some((format!("{}x", email_agent.0), Who::Nobody));
        api!(Method::GET, "/v1/customers/{id}", path, forged, None);
        refused.push(d.sent.last().expect("sent").request_id.clone());
    }
    for (route, path) in [
        ("/healthz", "/healthz"),
        ("/readyz", "/readyz"),
        (
            "/.well-known/oauth-authorization-server",
            "/.well-known/oauth-authorization-server",
        ),
        ("/openapi.json", "/openapi.json"),
        ("/docs", "/docs"),
        ("/docs/docs.js", "/docs/docs.js"),
    ] {
        api!(Method::GET, route, path, None, None);
    }

    // --- the staff console ------------------------------------------------
    let mut anna = Jar::default();
    let staff = || Who::Role("compliance");
    for (route, path) in [("/", "/"), ("/console", "/console")] {
        let r = d
            .page(&mut anna, Method::GET, route, path, Who::Nobody, None)
            .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{route}");
    }
    let anna_in = staff_sign_in(&mut d, &mut anna, "anna", &anna_uri).await;
    d.secret(&anna_in);
    let r = d
        .page(
            &mut anna,
            Method::GET,
            "/console/",
            "/console/",
            staff(),
            None,
        )
        .await;
    let csrf = hidden(&r.text, "/console/sign-out", "csrf");
    d.secret(&csrf);
    let css = r
        .text
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|h| h.contains(".css"))
        .expect("a stylesheet")
        .to_owned();
    for path in [
        "/console/audit",
        "/console/audit/export.csv",
        "/console/audit/export.manifest.json",
        "/console/audit/verify",
        "/console/customers",
        "/console/requests",
    ] {
        let r = d
            .page(&mut anna, Method::GET, path, path, staff(), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    }
    let c = csrf.as_str();
    d.page(
        &mut anna,
        Method::POST,
        "/console/audit/verify",
        "/console/audit/verify",
        staff(),
        Some(&[("csrf", c)]),
    )
    .await;
    d.page(
        &mut anna,
        Method::GET,
        "/console/audit/{seq}",
        "/console/audit/1",
        staff(),
        None,
    )
    .await;
    let r = d
        .page(
            &mut anna,
            Method::POST,
            "/console/customers",
            "/console/customers",
            staff(),
            Some(&[("csrf", c), ("channel", "email"), ("value", EMAIL)]),
        )
        .await;
    assert!(
        r.status.is_success() || r.status.is_redirection(),
        "{}",
        r.text
    );
    let page = format!("/console/customers/{id}");
    d.page(
        &mut anna,
        Method::GET,
        "/console/customers/{id}",
        &page,
        staff(),
        None,
    )
    .await;
    let r = d
        .page(
            &mut anna,
            Method::POST,
            "/console/customers/{id}/reveal",
            &format!("{page}/reveal"),
            staff(),
            Some(&[("csrf", c), ("case_reference", CASE_WEB)]),
        )
        .await;
    assert!(r.text.contains(EMAIL), "revealed: {}", r.text);
    d.page(
        &mut anna,
        Method::POST,
        "/console/customers/{id}/export",
        &format!("{page}/export"),
        staff(),
        Some(&[
            ("csrf", c),
            ("case_reference", CASE_WEB),
            ("format", "json"),
        ]),
    )
    .await;
    d.page(
        &mut anna,
        Method::GET,
        "/console/customers/{id}/erase",
        &format!("{page}/erase"),
        staff(),
        None,
    )
    .await;
    let r = d
        .page(
            &mut anna,
            Method::POST,
            "/console/requests",
            "/console/requests",
            staff(),
            Some(&[
                ("csrf", c),
                ("kind", "access"),
                ("case_reference", CASE_WEB),
                ("customer_id", &id),
                ("note", NOTE),
                ("received", ""),
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "registered: {}", r.text);
    d.page(
        &mut anna,
        Method::POST,
        "/console/requests/download",
        "/console/requests/download",
        staff(),
        Some(&[("csrf", c)]),
    )
    .await;
    let request_page = format!("/console/requests/{dsr}");
    d.page(
        &mut anna,
        Method::GET,
        "/console/requests/{id}",
        &request_page,
        staff(),
        None,
    )
    .await;
    d.page(
        &mut anna,
        Method::POST,
        "/console/requests/{id}/extend",
        &format!("{request_page}/extend"),
        staff(),
        Some(&[("csrf", c), ("months", "1"), ("reason", REASON)]),
    )
    .await;
    d.page(
        &mut anna,
        Method::POST,
        "/console/requests/{id}/transition",
        &format!("{request_page}/transition"),
        staff(),
        Some(&[("csrf", c), ("to", "refused"), ("reason", REASON)]),
    )
    .await;
    let mut nobody = Jar::default();
    d.page(
        &mut nobody,
        Method::GET,
        "/console/{*rest}",
        &format!("/console/{EMAIL}"),
        Who::Nobody,
        None,
    )
    .await;
    d.page(
        &mut nobody,
        Method::GET,
        "/lang/{code}",
        "/lang/fi",
        Who::Nobody,
        None,
    )
    .await;
    d.page(
        &mut nobody,
        Method::GET,
        "/static/arkku.css",
        &css,
        Who::Nobody,
        None,
    )
    .await;
    let mut otto = Jar::default();
    let otto_in = staff_sign_in(&mut d, &mut otto, "otto", &otto_uri).await;
    d.secret(&otto_in);
    let r = d
        .page(
            &mut otto,
            Method::GET,
            "/console/keys",
            "/console/keys",
            Who::Role("admin"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Wrong passwords until the account locks: the lock is a warning,
    // logged inside the request that caused it.
    let locked = lock_out(&mut d, &app).await;

    // --- the customer's privacy page ---------------------------------------
    let mut pena = Jar::default();
    let customer = || Who::Is("customer", id.clone());
    d.page(
        &mut pena,
        Method::GET,
        "/privacy",
        "/privacy",
        Who::Nobody,
        None,
    )
    .await;
    let r = d
        .page(
            &mut pena,
            Method::GET,
            "/privacy/",
            "/privacy/",
            Who::Nobody,
            None,
        )
        .await;
    let form = hidden(&r.text, "/privacy/sign-in", "csrf");
    let r = d
        .page(
            &mut pena,
            Method::POST,
            "/privacy/sign-in",
            "/privacy/sign-in",
            Who::Nobody,
            Some(&[("csrf", &form), ("value", EMAIL)]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let action = "/privacy/sign-in/code";
    let (form, challenge, sent_to) = (
        hidden(&r.text, action, "csrf"),
        hidden(&r.text, action, "challenge"),
        hidden(&r.text, action, "sent_to"),
    );
    let code2 = code_in_outbox(&app, 2).await;
    d.secret(&code2);
    d.secret(&code2.replace(' ', ""));
    let r = d
        .page(
            &mut pena,
            Method::POST,
            action,
            action,
            Who::Nobody,
            Some(&[
                ("csrf", &form),
                ("challenge", &challenge),
                ("sent_to", &sent_to),
                ("code", &code2),
            ]),
        )
        .await;
    assert!(r.status.is_redirection(), "signed in: {}", r.text);
    let session = pena.0.get("arkku_session").expect("a session").clone();
    d.secret(&session);
    let r = d
        .page(
            &mut pena,
            Method::GET,
            "/privacy/consents",
            "/privacy/consents",
            customer(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let p = hidden(&r.text, "/privacy/sign-out", "csrf");
    let (purpose, channel, change) = (
        hidden(&r.text, "/privacy/consents", "purpose"),
        hidden(&r.text, "/privacy/consents", "channel"),
        hidden(&r.text, "/privacy/consents", "action"),
    );
    d.page(
        &mut pena,
        Method::POST,
        "/privacy/consents",
        "/privacy/consents",
        customer(),
        Some(&[
            ("csrf", &p),
            ("purpose", &purpose),
            ("channel", &channel),
            ("action", &change),
        ]),
    )
    .await;
    for path in [
        "/privacy/",
        "/privacy/access",
        "/privacy/requests",
        "/privacy/erase",
    ] {
        let r = d
            .page(&mut pena, Method::GET, path, path, customer(), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
    }
    d.page(
        &mut pena,
        Method::POST,
        "/privacy/export",
        "/privacy/export",
        customer(),
        Some(&[("csrf", &p), ("format", "json")]),
    )
    .await;
    d.page(
        &mut nobody,
        Method::GET,
        "/privacy/{*rest}",
        &format!("/privacy/{EMAIL}"),
        Who::Nobody,
        None,
    )
    .await;

    // --- what ends things, last ------------------------------------------
    api!(
        Method::DELETE,
        "/v1/customers/{id}/contacts/{contact_id}",
        format!("{one}/contacts/{contact}"),
        with(&service),
        None
    );
    let c = csrf.as_str();
    d.page(
        &mut anna,
        Method::POST,
        "/console/customers/{id}/erase",
        &format!("{page}/erase"),
        staff(),
        Some(&[
            ("csrf", c),
            ("confirmation", &id[..8]),
            ("case_reference", CASE_WEB),
        ]),
    )
    .await;
    d.page(
        &mut anna,
        Method::POST,
        "/console/sign-out",
        "/console/sign-out",
        staff(),
        Some(&[("csrf", c)]),
    )
    .await;
    d.page(
        &mut pena,
        Method::POST,
        "/privacy/erase",
        "/privacy/erase",
        Who::Any,
        Some(&[("csrf", &p), ("confirm", "ERASE")]),
    )
    .await;
    d.page(
        &mut pena,
        Method::POST,
        "/privacy/sign-out",
        "/privacy/sign-out",
        Who::Any,
        Some(&[("csrf", &p)]),
    )
    .await;
    let me_any = me.clone().map(|(t, _)| (t, Who::Any));
    api!(Method::DELETE, "/v1/me", "/v1/me", me_any, None);
    api!(
        Method::DELETE,
        "/v1/customers/{id}",
        format!("{one}?reason={REASON}"),
        with(&compliance),
        None
    );

    // Every operation of the document was driven; one added later is sent
    // here with a distinctive body, so that its line is checked too.
    let doc = app.request(Method::GET, "/openapi.json", None, None).await;
    let driven: BTreeSet<(String, String)> = d
        .sent
        .iter()
        .map(|s| (s.method.to_string(), s.route.clone()))
        .collect();
    for (path, item) in doc.json["paths"].as_object().expect("paths") {
        for m in item.as_object().expect("path item").keys() {
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).expect("method");
            if driven.contains(&(method.to_string(), path.clone())) {
                continue;
            }
            let concrete = path.replace("{id}", &id).replace("{contact_id}", &contact);
            api!(
                method,
                path,
                concrete,
                with(&admin),
                Some(json!({"value": EMAIL, "note": NOTE}))
            );
        }
    }

    // --- the log --------------------------------------------------------
    let text = proc.stderr();
    assert!(!text.contains('\u{1b}'), "an ESC byte in the log");
    let mut secrets: Vec<String> = FRAGMENTS.iter().map(|s| s.to_string()).collect();
    for v in [
        NAME, RENAMED, EMAIL, PHONE, PHONE_E164, SMS, SMS_E164, POSTAL, BODY, NOTE, PASSWORD,
    ] {
        secrets.push(v.to_owned());
    }
    secrets.extend(d.secrets.iter().cloned());
    // A token's signature alone is as telling as the token.
    for t in d.secrets.iter().filter(|s| s.matches('.').count() == 2) {
        secrets.push(t.rsplit('.').next().unwrap_or_default().to_owned());
    }
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "the log holds {s:?}:\n{text}");
    }
    // The ids that were only ever in paths stay out too.
    for s in [&contact, &interaction, &dsr] {
        assert!(!text.contains(s.as_str()), "the log holds the id {s}");
    }

    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "arkku::access")
        .collect();
    let mut by_id: HashMap<&str, Vec<&Value>> = HashMap::new();
    for line in &access {
        let rid = line["request_id"].as_str().expect("request_id");
        by_id.entry(rid).or_default().push(line);
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["message"], "request", "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
        let latency = line["latency_ms"].as_f64().expect("latency_ms");
        assert!((0.0..30_000.0).contains(&latency), "{line}");
        let fields: BTreeSet<&str> = line
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        let allowed = [
            "timestamp",
            "level",
            "message",
            "target",
            "request_id",
            "method",
            "route",
            "status",
            "latency_ms",
            "role",
            "sub",
        ];
        assert!(fields.iter().all(|f| allowed.contains(f)), "{line}");
    }
    for s in &d.sent {
        let found = by_id.get(s.request_id.as_str()).map_or(0, Vec::len);
        assert_eq!(found, 1, "{} {}: {found} access lines", s.method, s.route);
        let line = by_id[s.request_id.as_str()][0];
        let what = format!("{} {}", s.method, s.route);
        assert_eq!(line["method"], s.method.as_str(), "{what}: {line}");
        assert_eq!(line["route"], s.route.as_str(), "{what}: {line}");
        assert_eq!(line["status"], s.status, "{what}: {line}");
        match &s.who {
            Who::Nobody => {
                assert!(line.get("role").is_none(), "{what}: {line}");
                assert!(line.get("sub").is_none(), "{what}: {line}");
            }
            Who::Is(role, sub) => {
                assert_eq!(line["role"], *role, "{what}: {line}");
                assert_eq!(line["sub"], sub.as_str(), "{what}: {line}");
            }
            Who::Role(role) => {
                assert_eq!(line["role"], *role, "{what}: {line}");
                let sub = line["sub"].as_str().expect("a sub");
                assert!(uuid::Uuid::parse_str(sub).is_ok(), "{what}: {line}");
            }
            Who::Any => assert_eq!(
                line.get("role").is_some(),
                line.get("sub").is_some(),
                "{what}: {line}"
            ),
        }
    }
    // Lines written inside a request carry its id, as a field of their own
    // (no span is copied into lines), and name no request that was not sent.
    for line in &lines {
        assert!(
            line.get("span").is_none() && line.get("spans").is_none(),
            "{line}"
        );
        if let Some(rid) = line.get("request_id") {
            let rid = rid.as_str().expect("request_id");
            assert!(by_id.contains_key(rid), "a line of no request: {line}");
        }
    }
    let inside = |message: &str, rid: &str| {
        lines
            .iter()
            .filter(|l| l["message"] == message && l["request_id"] == rid)
            .count()
    };
    for rid in &refused {
        assert_eq!(inside("token refused", rid), 1, "request {rid}:\n{text}");
    }
    let lock = "staff account locked after repeated failed sign-ins";
    assert_eq!(inside(lock, &locked), 1, "request {locked}:\n{text}");
    let warned = lines
        .iter()
        .find(|l| l["message"] == lock)
        .expect("lock line");
    assert_eq!(warned["level"], "WARN", "{warned}");

    // Besides the test's own requests, only the start-up health check.
    let ours: BTreeSet<&str> = d.sent.iter().map(|s| s.request_id.as_str()).collect();
    for line in &access {
        let rid = line["request_id"].as_str().unwrap_or_default();
        assert!(
            ours.contains(rid) || line["route"] == "/healthz",
            "an access line of no request: {line}"
        );
    }
    assert!(d.sent.len() > 90, "{} requests", d.sent.len());
    drop(proc);
}

async fn the_text_format_has_the_same_lines_without_colour(b: Backend) {
    let (app, proc, base, _, _) = served(b, "text").await;
    let mut d = Driver {
        base,
        client: plain(),
        sent: Vec::new(),
        secrets: Vec::new(),
    };
    let service = app.service();
    let r = d
        .api(
            Method::POST,
            "/v1/customers",
            "/v1/customers",
            Some((&service, Who::Is("service", "crm-sync".into()))),
            Some(json!({"display_name": NAME, "contacts": [{"channel": "email", "value": EMAIL}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.json["id"].as_str().expect("id").to_owned();
    d.api(
        Method::GET,
        "/v1/customers/{id}",
        &format!("/v1/customers/{id}?purpose=support&reason={REASON}"),
        Some((&service, Who::Is("service", "crm-sync".into()))),
        None,
    )
    .await;
    d.api(
        Method::GET,
        "unmatched",
        &format!("/nowhere/{EMAIL}"),
        None,
        None,
    )
    .await;
    let forged = format!("{service}x");
    d.api(
        Method::GET,
        "/v1/customers/{id}",
        &format!("/v1/customers/{id}"),
        Some((&forged, Who::Nobody)),
        None,
    )
    .await;
    let refused = d.sent.last().expect("sent").request_id.clone();

    let text = proc.stderr();
    assert!(!text.contains('\u{1b}'), "an ESC byte in the log");
    for s in [NAME, EMAIL, "Zyxwarbler", "zyx7731", REASON, &service] {
        assert!(!text.contains(s), "the log holds {s:?}:\n{text}");
    }
    assert!(
        text.lines().all(|l| !l.starts_with('{')),
        "text, not JSON:\n{text}"
    );
    for s in &d.sent {
        let line = text
            .lines()
            .find(|l| l.contains("arkku::access") && l.contains(&s.request_id))
            .unwrap_or_else(|| panic!("no access line for {} {}:\n{text}", s.method, s.route));
        for field in [
            format!("method=\"{}\"", s.method),
            format!("route=\"{}\"", s.route),
            format!("status={}", s.status),
        ] {
            assert!(line.contains(&field), "{field} missing: {line}");
        }
        assert!(line.contains("latency_ms="), "{line}");
        if let Who::Is(role, sub) = &s.who {
            assert!(line.contains(&format!("role=\"{role}\"")), "{line}");
            assert!(line.contains(&format!("sub=\"{sub}\"")), "{line}");
        }
    }

    // A line inside a request ends with the request's id.
    let line = text
        .lines()
        .find(|l| l.contains("token refused"))
        .unwrap_or_else(|| panic!("no refusal logged:\n{text}"));
    assert!(
        line.ends_with(&format!(" request_id=\"{refused}\"")),
        "{line}"
    );

    // With no format set, a command writing to a file logs JSON.
    let r = app.cli(&["migrate"]).await;
    assert!(r.status.success(), "{}", r.stderr);
    assert!(!r.stderr.is_empty(), "migrate logs something");
    for l in r.stderr.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string(), "{l}");
    }
    drop(proc);
}

/// Signs `name` in to the console with the code of the clock's instant;
/// returns the session cookie.
async fn staff_sign_in(d: &mut Driver, jar: &mut Jar, name: &str, uri: &str) -> String {
    let r = d
        .page(
            jar,
            Method::GET,
            "/console/",
            "/console/",
            Who::Nobody,
            None,
        )
        .await;
    let csrf = hidden(&r.text, "/console/sign-in", "csrf");
    let totp = code(uri, T0);
    let r = d
        .page(
            jar,
            Method::POST,
            "/console/sign-in",
            "/console/sign-in",
            Who::Nobody,
            Some(&[
                ("csrf", &csrf),
                ("name", name),
                ("password", PASSWORD),
                ("code", &totp),
            ]),
        )
        .await;
    assert!(r.status.is_redirection(), "{name} signed in: {}", r.text);
    jar.0.get("arkku_session").expect("a session").clone()
}

/// Signs in as `lena`, a compliance officer added for this, with a wrong
/// password until her account locks; returns the id of the request that
/// locked it.
async fn lock_out(d: &mut Driver, app: &TestApp) -> String {
    add_user(app, "lena", "compliance", PASSWORD).await;
    let mut jar = Jar::default();
    let r = d
        .page(
            &mut jar,
            Method::GET,
            "/console/",
            "/console/",
            Who::Nobody,
            None,
        )
        .await;
    let mut csrf = hidden(&r.text, "/console/sign-in", "csrf");
    for _ in 0..arkku::identity::lockout::MAX_FAILURES {
        let r = d
            .page(
                &mut jar,
                Method::POST,
                "/console/sign-in",
                "/console/sign-in",
                Who::Nobody,
                Some(&[
                    ("csrf", &csrf),
                    ("name", "lena"),
                    ("password", "Wrong-Passphrase-Ibex-9921"),
                    ("code", "000000"),
                ]),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        csrf = hidden(&r.text, "/console/sign-in", "csrf");
    }
    d.sent.last().expect("sent").request_id.clone()
}

fn role_name(role: Role) -> &'static str {
    role.as_str()
}
