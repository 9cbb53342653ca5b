//! The OpenAPI document and the interactive docs: the router answers exactly
//! the operations the document describes, the document passes
//! `openapi-spec-validator`, and `/docs` serves its page and vendored files
//! with the right content types under a strict Content-Security-Policy.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, Reply, Scenario, TestApp};
use crate::scenarios;

pub fn tests() -> Vec<Scenario> {
    scenarios![
        the_router_answers_exactly_the_documented_operations,
        the_openapi_document_passes_the_spec_validator,
        the_docs_page_and_its_files_are_served_under_a_strict_policy,
    ]
}

/// Every operation the API serves (and the README lists).
const SURFACE: [(&str, &str); 42] = [
    ("POST", "/v1/customers"),
    ("GET", "/v1/customers/{id}"),
    ("PATCH", "/v1/customers/{id}"),
    ("DELETE", "/v1/customers/{id}"),
    ("POST", "/v1/customers/{id}/contacts"),
    ("DELETE", "/v1/customers/{id}/contacts/{contact_id}"),
    ("GET", "/v1/customers/{id}/consents"),
    ("POST", "/v1/customers/{id}/consents"),
    ("GET", "/v1/customers/{id}/interactions"),
    ("POST", "/v1/customers/{id}/interactions"),
    ("PATCH", "/v1/customers/{id}/interactions/{interaction_id}"),
    ("GET", "/v1/customers/{id}/export"),
    ("POST", "/v1/lookup"),
    ("GET", "/v1/interactions/overdue"),
    ("GET", "/v1/me"),
    ("DELETE", "/v1/me"),
    ("GET", "/v1/me/consents"),
    ("POST", "/v1/me/consents"),
    ("GET", "/v1/me/export"),
    ("GET", "/v1/me/requests"),
    ("GET", "/v1/dsr/requests"),
    ("POST", "/v1/dsr/requests"),
    ("GET", "/v1/dsr/requests.csv"),
    ("GET", "/v1/dsr/requests/{id}"),
    ("POST", "/v1/dsr/requests/{id}/extend"),
    ("POST", "/v1/dsr/requests/{id}/transition"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/audit/verify"),
    ("GET", "/v1/audit/export"),
    ("GET", "/v1/audit/export/manifest"),
    ("POST", "/v1/auth/customer/start"),
    ("POST", "/v1/auth/customer/verify"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/v1/admin/clients"),
    ("POST", "/v1/admin/clients"),
    ("GET", "/v1/admin/clients/{id}"),
    ("DELETE", "/v1/admin/clients/{id}"),
    ("POST", "/v1/admin/clients/{id}/secret"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/revoke"),
    ("GET", "/.well-known/oauth-authorization-server"),
];

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn document(app: &TestApp) -> Value {
    let r = app.request(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.content_type, "application/json");
    r.json
}

/// A path template with every `{param}` replaced by a fresh id.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                uuid::Uuid::now_v7().to_string()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Asserts that `reply` is one of the answers `op` documents, with a body
/// that its schema for that status and content type accepts.
fn assert_documented(doc: &Value, op: &Value, what: &str, reply: &Reply) {
    let status = reply.status.as_str();
    let response = &op["responses"][status];
    assert!(
        response.is_object(),
        "{what} answered {status}, which it does not document: {}",
        reply.text
    );
    let media = reply.content_type.split(';').next().unwrap_or("").trim();
    let schema = &response["content"][media]["schema"];
    assert!(
        schema.is_object(),
        "{what} {status} answered {media}, which it does not document"
    );
    // The schema's `$ref`s point into the document's components.
    let root = json!({"$ref": "#/schema", "schema": schema, "components": doc["components"]});
    let validator = jsonschema::validator_for(&root).expect("a valid schema");
    let errors: Vec<String> = validator
        .iter_errors(&reply.json)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} {status}: the body does not match its schema: {errors:#?}\n{}",
        reply.text
    );
}

async fn the_router_answers_exactly_the_documented_operations(b: Backend) {
    let app = spawn_app(b).await;
    let doc = document(&app).await;
    let paths = doc["paths"].as_object().expect("paths");
    let documented: BTreeSet<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            let item = item.as_object().expect("path item");
            item.keys()
                .map(|m| (m.to_uppercase(), path.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let listed: BTreeSet<(String, String)> = SURFACE
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, listed,
        "the document's operations differ from the API's"
    );

    // Without a token every operation is answered by its handler, as the
    // document says; any other method on a documented path is 405.
    for (path, item) in paths {
        let url = concrete(path);
        for method in METHODS {
            let what = format!("{method} {path}");
            let m = Method::from_bytes(method.as_bytes()).expect("method");
            let reply = app.request(m, &url, None, None).await;
            match item.get(method.to_lowercase()) {
                Some(op) => {
                    assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{what}");
                    assert_documented(&doc, op, &what, &reply);
                    let bearer = op["security"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
                    if bearer {
                        reply.assert_problem(401, "unauthenticated");
                    }
                }
                None => reply.assert_problem(405, "method_not_allowed"),
            }
        }
    }
    let r = app
        .request(Method::GET, "/v1/no-such-thing", None, None)
        .await;
    r.assert_problem(404, "not_found");
}

/// The validator's command (`openapi-spec-validator`, from PyPI, pinned and
/// installed by `.ci/run`).
const VALIDATOR_ENV: &str = "ARKKU_OPENAPI_VALIDATOR";

async fn the_openapi_document_passes_the_spec_validator(b: Backend) {
    let app = spawn_app(b).await;
    let r = app.request(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let Some(validator) = std::env::var_os(VALIDATOR_ENV).filter(|v| !v.is_empty()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must validate the OpenAPI document: set {VALIDATOR_ENV}"
        );
        println!(
            "note: openapi-spec-validator SKIPPED: set {VALIDATOR_ENV} to its command \
             (.ci/run installs it) to validate /openapi.json"
        );
        return;
    };
    let file = app.dir.path().join("openapi.json");
    std::fs::write(&file, &r.text).expect("write the document");
    let out = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .expect("run openapi-spec-validator");
    assert!(
        out.status.success(),
        "openapi-spec-validator refused /openapi.json:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The files a page refers to with `src="…"` or `href="…"`.
fn references(html: &str) -> Vec<&str> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attr| html.split(attr).skip(1))
        .filter_map(|rest| rest.split('"').next())
        .collect()
}

async fn the_docs_page_and_its_files_are_served_under_a_strict_policy(b: Backend) {
    let app = spawn_app(b).await;
    let page = app.request(Method::GET, "/docs", None, None).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.text);
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    let csp = page
        .header("content-security-policy")
        .expect("a Content-Security-Policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing from {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(
        !page.text.contains("//"),
        "the page loads nothing from elsewhere: {}",
        page.text
    );

    // Every file the page names is served, relative to /docs, with its type.
    let files = references(&page.text);
    assert_eq!(files.len(), 3, "{files:?}");
    for file in files {
        let expected = if file.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else if file.ends_with(".css") {
            "text/css; charset=utf-8"
        } else {
            panic!("unexpected reference {file}")
        };
        let r = app
            .request(Method::GET, &format!("/{file}"), None, None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "/{file}");
        assert_eq!(r.content_type, expected, "/{file}");
        assert!(r.header("content-security-policy").is_some(), "/{file}");
        assert!(r.text.len() > 100, "/{file} is empty");
    }

    // The page's script renders the vault's own document.
    let init = app.request(Method::GET, "/docs/docs.js", None, None).await;
    assert!(init.text.contains("url: \"openapi.json\""), "{}", init.text);
    assert!(init.text.contains("validatorUrl: null"), "{}", init.text);
}
