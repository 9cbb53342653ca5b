//! The error responses every operation shares, added once to the document
//! by what each operation takes (a token, a body, path or query parameters)
//! instead of being repeated on each handler, and the rule that every error
//! body is a [`Problem`] as `application/problem+json`.

use utoipa::{
    openapi::{
        header::HeaderBuilder,
        path::{Operation, ParameterIn},
        schema::{ObjectBuilder, Type},
        Content, Ref, RefOr, Response,
    },
    ToSchema,
};

use super::PROBLEM_JSON;
use crate::http::error::Problem;

/// An error response every operation of a kind can give.
pub(super) struct CommonError {
    status: &'static str,
    /// The machine code, as in the problem body; an operation's own text
    /// that names it already is left as it is.
    code: &'static str,
    pub(super) text: &'static str,
}

const INVALID_REQUEST: CommonError = CommonError {
    status: "400",
    code: "invalid_request",
    text: "`invalid_request`: a malformed id in the path, an unknown or invalid query \
           parameter, or a body that is not the documented JSON object.",
};
const UNAUTHENTICATED: CommonError = CommonError {
    status: "401",
    code: "unauthenticated",
    text: "`unauthenticated`: the bearer token is missing, malformed, expired or not \
           issued by this vault.",
};
const FORBIDDEN: CommonError = CommonError {
    status: "403",
    code: "forbidden",
    text: "`forbidden`: the token's role may not use this operation.",
};
const NOT_FOUND: CommonError = CommonError {
    status: "404",
    code: "not_found",
    text: "`not_found`: no such resource.",
};
const REQUEST_TIMEOUT: CommonError = CommonError {
    status: "408",
    code: "request_timeout",
    text: "`request_timeout`: the request body did not arrive in time.",
};
const KEY_IN_USE: CommonError = CommonError {
    status: "409",
    code: "idempotency_key_in_use",
    text: "`idempotency_key_in_use`: a request with this `Idempotency-Key` is still \
           running; retry after `Retry-After` seconds.",
};
pub(super) const PAYLOAD_TOO_LARGE: CommonError = CommonError {
    status: "413",
    code: "payload_too_large",
    text: "`payload_too_large`: the request body is larger than 1 MiB.",
};
const UNSUPPORTED_MEDIA_TYPE: CommonError = CommonError {
    status: "415",
    code: "unsupported_media_type",
    text: "`unsupported_media_type`: the request body must be `application/json`.",
};
const KEY_REUSED: CommonError = CommonError {
    status: "422",
    code: "idempotency_key_reused",
    text: "`idempotency_key_reused`: this `Idempotency-Key` was used for a different \
           request.",
};
const INTERNAL: CommonError = CommonError {
    status: "500",
    code: "internal",
    text: "`internal`: an unexpected error; its cause is logged with the request id.",
};
const UNAVAILABLE: CommonError = CommonError {
    status: "503",
    code: "unavailable",
    text: "`audit_unavailable` or `database_unavailable`: nothing was changed and \
           nothing was released, so a retry is safe; or `too_many_connections` at the \
           server's connection cap.",
};
const OVERLOADED: CommonError = CommonError {
    status: "503",
    code: "too_many_connections",
    text: "`too_many_connections`: the server is at its connection cap; retry later.",
};

/// The common errors `op` can give, by what it takes.
fn common_errors(op: &Operation, write: bool) -> Vec<&'static CommonError> {
    let params = op.parameters.as_deref().unwrap_or_default();
    let in_path = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path));
    let in_query = params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query));
    let body = op.request_body.is_some();
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let mut errors = Vec::new();
    if in_path || in_query || body {
        errors.push(&INVALID_REQUEST);
    }
    if secured {
        errors.extend([&UNAUTHENTICATED, &FORBIDDEN]);
    }
    if in_path {
        errors.push(&NOT_FOUND);
    }
    if body {
        errors.extend([
            &REQUEST_TIMEOUT,
            &PAYLOAD_TOO_LARGE,
            &UNSUPPORTED_MEDIA_TYPE,
        ]);
    }
    if write {
        errors.extend([&KEY_IN_USE, &KEY_REUSED]);
    }
    errors.push(&INTERNAL);
    errors.push(if secured { &UNAVAILABLE } else { &OVERLOADED });
    errors
}

/// Adds the common errors of `op`; where the operation documents a status
/// itself, its own text comes first and the common one is appended unless
/// it already names the code.
pub(super) fn add_common_errors(op: &mut Operation, write: bool) {
    for e in common_errors(op, write) {
        let responses = &mut op.responses.responses;
        match responses.get_mut(e.status) {
            Some(RefOr::T(own)) if own.description.is_empty() => {
                own.description = e.text.to_owned();
            }
            Some(RefOr::T(own)) if !own.description.contains(e.code) => {
                own.description = format!("{} Also {}", own.description, e.text);
            }
            Some(_) => {}
            None => {
                responses.insert(e.status.to_owned(), RefOr::T(Response::new(e.text)));
            }
        }
    }
}

/// Error responses carry a [`Problem`] as `application/problem+json`; the
/// headers that go with some of them are documented with them.
pub(super) fn mark_problems(op: &mut Operation, write: bool) {
    for (status, response) in op.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if status.starts_with('2') && write {
            add_header(
                response,
                "Idempotent-Replayed",
                Type::Boolean,
                "`true` when this is the kept answer to an earlier request with the same \
                 `Idempotency-Key`.",
            );
        }
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        let problem = RefOr::Ref(Ref::from_schema_name(Problem::name()));
        let is_problem = |c: &Content| matches!(&c.schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"));
        if response.content.is_empty() {
            response
                .content
                .insert(PROBLEM_JSON.to_owned(), Content::new(Some(problem)));
        } else if response
            .content
            .get("application/json")
            .is_some_and(is_problem)
        {
            if let Some(c) = response.content.shift_remove("application/json") {
                response.content.insert(PROBLEM_JSON.to_owned(), c);
            }
        }
        match status.as_str() {
            "401" => add_header(
                response,
                "WWW-Authenticate",
                Type::String,
                "`Bearer`: a bearer token is required.",
            ),
            "429" => add_header(
                response,
                "Retry-After",
                Type::Integer,
                "Seconds until the next request of this kind is allowed.",
            ),
            "409" if write => add_header(
                response,
                "Retry-After",
                Type::Integer,
                "With `idempotency_key_in_use`: seconds to wait before retrying.",
            ),
            _ => {}
        }
    }
}

fn add_header(response: &mut Response, name: &str, ty: Type, description: &str) {
    response.headers.insert(
        name.to_owned(),
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(ty))
            .description(Some(description))
            .build(),
    );
}
