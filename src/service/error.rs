//! The one error type of the vault's operations, with the stable machine
//! code of each (README "Error codes"). The HTTP edge maps each to a status
//! (`http::error`); a page or a CLI command maps them its own way. Internal
//! causes are logged with the request id; callers only see `internal`.

use super::request;

/// Every error the API answers with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidEmail(String),
    #[error("{0}")]
    InvalidPhone(String),
    #[error("{0}")]
    InvalidDisplayName(String),
    #[error("unknown channel {0:?}")]
    UnknownChannel(String),
    #[error("unknown purpose {0:?}")]
    UnknownPurpose(String),
    /// 401 `unauthenticated`, saying which of the causes in [`AuthFailure`].
    #[error("{0}")]
    Unauthenticated(AuthFailure),
    #[error("this role may not use this endpoint")]
    Forbidden,
    /// A write the policy refuses (which channel, who records consent): 403
    /// `forbidden`, with the rule as the detail.
    #[error("{0}")]
    WriteRefused(&'static str),
    #[error("the token does not allow this purpose, or the role may not act for it")]
    PurposeNotAllowed,
    #[error("no such resource")]
    NotFound,
    #[error("the customer already has this value on this channel")]
    ContactExists,
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyKeyReused,
    #[error("a request with this Idempotency-Key is still in progress")]
    IdempotencyKeyInUse,
    #[error("this consent is not a grant awaiting confirmation (already confirmed, superseded by a later change, or not recorded by staff)")]
    ConsentNotPending,
    #[error("the customer has been erased")]
    CustomerErased,
    /// A register entry already holds this case reference: 409.
    #[error("a data subject request with this case reference is already registered")]
    CaseReferenceExists,
    /// A change the register's state machine or extension rule does not
    /// allow (which, in words): 409 `invalid_transition`.
    #[error("{0}")]
    InvalidTransition(String),
    /// A sign-in code that does not sign in: wrong, expired, used, or past
    /// its attempts; which of them is never said (DESIGN.md §12.3).
    #[error("the code is wrong or no longer valid; ask for a new one")]
    InvalidCode,
    #[error("the request body is larger than 1 MiB")]
    PayloadTooLarge,
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    #[error("too many requests of this kind from this caller; retry later")]
    RateLimited { retry_after_secs: u64 },
    /// The password hasher stayed busy (every slot taken): 503 with
    /// `Retry-After`; nothing changed.
    #[error("the vault is busy hashing secrets; nothing changed, retry later")]
    Busy { retry_after_secs: u64 },
    #[error("the audit log is unavailable; nothing was released")]
    AuditUnavailable,
    #[error("the database is unavailable")]
    DatabaseUnavailable,
    #[error("internal error")]
    Internal,
}

/// Why a request carries no valid credential. The code stays
/// `unauthenticated`; the detail says which, so a client knows whether to
/// send a token, fix its header, or get a new one. It never says which
/// check of a well-formed token failed (signature, issuer, audience).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Expired,
    Invalid,
}

impl AuthFailure {
    /// The failure as one word (a label of `/metrics`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::Malformed => "malformed",
            AuthFailure::Expired => "expired",
            AuthFailure::Invalid => "invalid",
        }
    }
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthFailure::Missing => {
                "a bearer token is required: the request has no Authorization header"
            }
            AuthFailure::Malformed => {
                "the Authorization header does not hold one well-formed bearer token"
            }
            AuthFailure::Expired => "the token has expired (or is not valid yet); get a new one",
            AuthFailure::Invalid => "the token is not valid for this vault",
        })
    }
}

impl Error {
    /// The stable machine code (README "Error codes").
    pub fn code(&self) -> &'static str {
        use Error::*;
        match self {
            InvalidRequest(_) => "invalid_request",
            InvalidEmail(_) => "invalid_email",
            InvalidPhone(_) => "invalid_phone",
            InvalidDisplayName(_) => "invalid_display_name",
            UnknownChannel(_) => "unknown_channel",
            UnknownPurpose(_) => "unknown_purpose",
            Unauthenticated(_) => "unauthenticated",
            Forbidden | WriteRefused(_) => "forbidden",
            PurposeNotAllowed => "purpose_not_allowed",
            NotFound => "not_found",
            ContactExists => "contact_exists",
            IdempotencyKeyReused => "idempotency_key_reused",
            IdempotencyKeyInUse => "idempotency_key_in_use",
            ConsentNotPending => "consent_not_pending",
            CustomerErased => "customer_erased",
            CaseReferenceExists => "case_reference_exists",
            InvalidTransition(_) => "invalid_transition",
            InvalidCode => "invalid_code",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            RequestTimeout => "request_timeout",
            MethodNotAllowed => "method_not_allowed",
            RateLimited { .. } => "rate_limited",
            Busy { .. } => "busy",
            AuditUnavailable => "audit_unavailable",
            DatabaseUnavailable => "database_unavailable",
            Internal => "internal",
        }
    }

    /// Logs an internal cause with the request id and returns the opaque error.
    /// The cause must not contain plaintext; store, crypto and audit errors don't.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(request_id = %request::id(), error = %cause, "internal error");
        Error::Internal
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(e: crate::store::StoreError) -> Self {
        if e.is_unavailable() {
            tracing::warn!(request_id = %request::id(), error = %e, "database unavailable");
            Error::DatabaseUnavailable
        } else {
            Error::internal(&e)
        }
    }
}

impl From<crate::vault::VaultError> for Error {
    fn from(e: crate::vault::VaultError) -> Self {
        match e {
            crate::vault::VaultError::Store(s) => s.into(),
            other => Error::internal(&other),
        }
    }
}
