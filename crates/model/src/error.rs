//! The error kinds every area error maps onto.
//!
//! Each core area keeps its own `thiserror` enum; front doors only need to know
//! which *kind* of failure happened to pick their dialect's status and code, so
//! every area error implements [`HasKind`].

use serde::Serialize;

/// What kind of failure happened, independent of the API dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is malformed or violates a rule on its values.
    Invalid,
    /// No credentials, or credentials that do not identify anyone.
    Unauthenticated,
    /// The caller is known but not allowed to do this.
    Forbidden,
    /// The named resource does not exist (or is not visible to the caller).
    NotFound,
    /// A resource with this unique name already exists.
    AlreadyExists,
    /// The resource changed since the caller read it (optimistic concurrency),
    /// or its state does not allow the operation.
    Conflict,
    /// The project's quota would be exceeded.
    QuotaExceeded,
    /// The request body is larger than the front door accepts.
    TooLarge,
    /// Something failed inside nuage; the caller can retry.
    Internal,
    /// A backing service (database, runtime) is unavailable.
    Unavailable,
    /// No node can take what was asked (Nova's NoValidHost, EC2's
    /// InsufficientInstanceCapacity); the message says why and is public.
    InsufficientCapacity,
}

impl ErrorKind {
    /// The HTTP status that REST-style dialects use for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::Invalid => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::QuotaExceeded => 413,
            ErrorKind::TooLarge => 413,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable | ErrorKind::InsufficientCapacity => 503,
        }
    }

    /// A short machine-readable code used by the native API.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid_request",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::QuotaExceeded => "quota_exceeded",
            ErrorKind::InsufficientCapacity => "insufficient_capacity",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Internal => "internal",
            ErrorKind::Unavailable => "unavailable",
        }
    }
}

/// Implemented by every area error so front doors can render it.
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}
