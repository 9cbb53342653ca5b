//! The OpenAPI 3.1 document served at `/openapi.json`.
//!
//! Each operation is declared once, by its handler's `#[utoipa::path]`, and
//! each resource's `router()` routes the handler from that same declaration
//! (`utoipa_axum::routes!`), so the router and the document cannot drift.
//! This module holds what every operation shares, added once here rather
//! than repeated on each handler: the document's header and tags, the bearer
//! scheme, the `Idempotency-Key` header of the write POSTs, and ([`errors`])
//! the error responses an operation can give by what it takes (a token, a
//! body, path or query parameters), all as `application/problem+json`
//! [`Problem`]s.

use axum::{
    body::Bytes,
    http::{header, HeaderValue},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use utoipa::{
    openapi::{
        path::{HttpMethod, Operation, ParameterBuilder, ParameterIn},
        schema::{ObjectBuilder, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        OpenApi as Document, RefOr, Required,
    },
    OpenApi, ToSchema,
};

use super::{error::Problem, AppState};

mod errors;

/// The media type of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The document's header, tags and shared schemas; the operations come from
/// the routes (see [`super::api_routes`]).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "arkku",
        description = "A privacy vault for customer contact data. Every request gets an \
            `x-request-id` response header, and every error is an RFC 9457 \
            `application/problem+json` body with a stable machine `code` and the same \
            `request_id`, except at the OAuth endpoints (tag `oauth`), whose errors are \
            RFC 6749 JSON. Callers authenticate with a bearer token (JWT): integration \
            clients get theirs at `POST /oauth/token`; `arkku token` issues others."
    ),
    tags(
        (name = "customers", description = "Customer profiles and contact points, filtered by the integration rule."),
        (name = "lookup", description = "Which customers hold a contact value (caller id)."),
        (name = "consents", description = "The consent ledger: grants, withdrawals and confirmations."),
        (name = "interactions", description = "Contact requests, complaints and other interactions, and the promises past due."),
        (name = "me", description = "The customer's own data: profile, export and erasure."),
        (name = "compliance", description = "Data subject requests handled by compliance staff."),
        (name = "dsr_register", description = "The register of data subject requests: received, due, extended, where each stands and who handled it."),
        (name = "audit", description = "The tamper-evident audit log, for compliance staff."),
        (name = "sign_in", description = "Customer sign-in by one-time code: no token needed."),
        (name = "health", description = "Liveness and readiness."),
        (name = "admin", description = "Integration clients, managed by admins."),
        (name = "oauth", description = "OAuth 2.0 for integration clients: tokens by the client-credentials grant, revocation, server metadata. Errors here are RFC 6749 JSON, not problem+json."),
    ),
    components(schemas(Problem))
)]
struct ApiDoc;

// The value sets of two query parameters that the handlers read as text and
// check themselves; these types only describe them.

/// How an export is rendered.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExportFormat {
    /// `arkku-export/1` as JSON (the default).
    Json,
    /// The same content as CSV files in a ZIP archive.
    Zip,
}

/// What the policy decided.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum AuditDecision {
    Allow,
    Deny,
}

/// An export rendered as CSV files in a ZIP archive (binary).
pub struct ZipArchive;

impl utoipa::PartialSchema for ZipArchive {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("application/zip")
            .description(Some(
                "CSV files (UTF-8, comma separated, header row) in a ZIP archive.",
            ))
            .into()
    }
}

impl ToSchema for ZipArchive {}

/// A filtered view of the audit log as a CSV file (text).
pub struct CsvFile;

impl utoipa::PartialSchema for CsvFile {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .content_media_type("text/csv")
            .description(Some(
                "UTF-8 with a byte-order mark, comma separated, CRLF line ends, a header row \
                 (seq, time, actor_sub, actor_role, actor_client, action, customer_id, channel, \
                 purpose, decision, reason, request_id, detail, prev_hash, hash). A cell that a \
                 spreadsheet would execute starts with an apostrophe.",
            ))
            .into()
    }
}

impl ToSchema for CsvFile {}

/// The document before the operations are merged in.
pub fn base() -> Document {
    ApiDoc::openapi()
}

/// Whether `path` is one of the OAuth endpoints, whose errors follow the
/// OAuth RFCs (JSON `{error, error_description}`) rather than RFC 9457.
pub fn is_oauth(path: &str) -> bool {
    path.starts_with("/oauth/") || path.starts_with("/.well-known/")
}

/// Completes the document gathered from the routes: the security schemes,
/// the `Idempotency-Key` header and the shared error responses (the OAuth
/// endpoints document their own).
pub fn finish(mut doc: Document) -> Document {
    add_bearer_scheme(&mut doc);
    for (path, item) in doc.paths.paths.iter_mut() {
        if is_oauth(path) {
            continue;
        }
        for (method, op) in operations(item) {
            let write = method == HttpMethod::Post && super::idempotency::is_write(path);
            if write {
                add_idempotency_key(op);
            }
            errors::add_common_errors(op, write);
            errors::mark_problems(op, write);
        }
    }
    doc
}

/// The operations of one path, with their methods.
fn operations(
    item: &mut utoipa::openapi::PathItem,
) -> impl Iterator<Item = (HttpMethod, &mut Operation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
}

fn add_bearer_scheme(doc: &mut Document) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A token from `POST /oauth/token` (integration clients) or `arkku token`: \
                     its role, purposes and (for agents) channel decide what it may do.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        "client_basic",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Basic)
                .description(Some(
                    "An integration client's id and secret (RFC 6749 §2.3.1: each \
                     form-urlencoded, then joined by `:` and base64-encoded), at the OAuth \
                     endpoints only. The form fields `client_id` and `client_secret` may be \
                     used instead.",
                ))
                .build(),
        ),
    );
}

/// `Idempotency-Key` on a write POST (see [`super::idempotency`]).
fn add_idempotency_key(op: &mut Operation) {
    let param = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Makes a retry safe: a repeat with the same key and request gets the first \
             2xx answer again (header `Idempotent-Replayed: true`) for 24 hours; \
             the same key with another request is 422 `idempotency_key_reused`; \
             while the first still runs, 409 `idempotency_key_in_use`. \
             1 to 255 visible ASCII characters, scoped to the caller.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[!-~]+$")),
        ))
        .build();
    op.parameters.get_or_insert_with(Vec::new).push(param);
}

/// `GET /openapi.json`: the document, serialised once.
pub fn router(doc: &Document) -> Router<AppState> {
    let body = match doc.to_json() {
        Ok(json) => Some(Bytes::from(json)),
        Err(e) => {
            tracing::error!(error = %e, "the OpenAPI document does not serialise");
            None
        }
    };
    Router::new().route(
        "/openapi.json",
        get(move || {
            let body = body.clone();
            async move { serve(body) }
        }),
    )
}

fn serve(body: Option<Bytes>) -> Response {
    match body {
        Some(body) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        None => super::error::ApiError::Internal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    fn document() -> Value {
        let doc = super::super::openapi_document();
        serde_json::from_str(&doc.to_json().expect("serialises")).expect("JSON")
    }

    /// `(method, path, operation)` for every operation of the document.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut ops = Vec::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                ops.push((method.clone(), path.clone(), op.clone()));
            }
        }
        ops
    }

    fn statuses(op: &Value) -> BTreeSet<&str> {
        op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(String::as_str)
            .collect()
    }

    #[test]
    fn every_operation_has_a_unique_id_a_summary_and_a_tag() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (method, path, op) in operations(&doc) {
            let id = op["operationId"].as_str().expect("an operationId");
            assert!(ids.insert(id.to_owned()), "{id} repeats ({method} {path})");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{id}"
            );
            assert!(op["tags"].as_array().is_some_and(|t| t.len() == 1), "{id}");
            for (status, response) in op["responses"].as_object().expect("responses") {
                let text = response["description"].as_str().unwrap_or_default();
                assert!(!text.is_empty(), "{id} {status} has no description");
            }
        }
        assert_eq!(ids.len(), 42);
    }

    #[test]
    fn the_document_cites_nothing_outside_the_repository() {
        let text = document().to_string();
        assert!(!text.contains("DESIGN"), "{text}");
    }

    #[test]
    fn parameters_sit_where_the_request_carries_them() {
        for (method, path, op) in operations(&document()) {
            let in_template: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            let in_path: BTreeSet<&str> = params
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().expect("name"))
                .collect();
            assert_eq!(in_path, in_template, "{method} {path}");
            for p in params.iter().filter(|p| p["in"] == "path") {
                assert_eq!(p["required"], true, "{method} {path} {p}");
            }
        }
    }

    #[test]
    fn errors_are_problems_and_each_operation_lists_what_it_can_answer() {
        let doc = document();
        for (method, path, op) in operations(&doc) {
            if super::is_oauth(&path) {
                continue;
            }
            let id = op["operationId"].as_str().unwrap_or_default();
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let body = op.get("requestBody").is_some();
            let write = method == "post" && super::super::idempotency::is_write(&path);
            let has = statuses(&op);
            let mut expected = vec!["500", "503"];
            if secured {
                expected.extend(["401", "403"]);
            }
            if body {
                expected.extend(["400", "408", "413", "415"]);
            }
            if write {
                expected.extend(["409", "422"]);
                let key = op["parameters"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
                assert!(key, "{id} lacks the Idempotency-Key header");
            }
            for status in expected {
                assert!(has.contains(status), "{id} does not document {status}");
            }
            for (status, response) in op["responses"].as_object().expect("responses") {
                if !(status.starts_with('4') || status.starts_with('5')) || id == "checkReadiness" {
                    continue;
                }
                let content = response["content"].as_object().expect("content");
                assert_eq!(content.len(), 1, "{id} {status}");
                assert_eq!(
                    content[super::PROBLEM_JSON]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{id} {status}"
                );
            }
        }
    }

    #[test]
    fn the_oauth_endpoints_document_their_errors_as_oauth_json() {
        let doc = document();
        let oauth: Vec<_> = operations(&doc)
            .into_iter()
            .filter(|(_, path, _)| super::is_oauth(path))
            .collect();
        assert_eq!(oauth.len(), 3);
        for (method, path, op) in oauth {
            for (status, response) in op["responses"].as_object().expect("responses") {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                let content = response["content"].as_object().expect("content");
                assert_eq!(
                    content["application/json"]["schema"]["$ref"],
                    "#/components/schemas/OAuthErrorBody",
                    "{method} {path} {status}"
                );
            }
            if method == "post" {
                let has = statuses(&op);
                for status in ["400", "401", "429", "500", "503"] {
                    assert!(has.contains(status), "{path} does not document {status}");
                }
            }
        }
    }

    #[test]
    fn the_body_limit_is_the_one_the_document_states() {
        assert_eq!(super::super::BODY_LIMIT, 1024 * 1024);
        assert!(super::errors::PAYLOAD_TOO_LARGE.text.contains("1 MiB"));
    }
}
