use std::time::Duration;

use nuage_model::{ErrorKind, HasKind};
use nuage_store::StoreError;

pub type IdentityResult<T> = Result<T, IdentityError>;

/// Errors of the identity service. Messages never contain secrets.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("the request could not be authenticated: {0}")]
    Unauthenticated(&'static str),
    #[error("{action} is not allowed: {reason}")]
    Forbidden { action: String, reason: String },
    #[error("{0}")]
    Invalid(String),
    /// The operation is not allowed in the resource's current state.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    SigV4(#[from] crate::sigv4::SigV4Error),
    #[error("password hashing failed")]
    Hash,
    /// Every password hashing worker stayed busy past the wait deadline;
    /// nothing was checked or changed.
    #[error("too many password checks are waiting; try again in {} s", secs(*retry_after))]
    Busy { retry_after: Duration },
    /// The user (or name) or the source address failed too many logins and
    /// is locked for a while; nothing was checked.
    #[error("too many failed logins; try again in {} s", secs(*retry_after))]
    Throttled { retry_after: Duration },
}

/// Whole seconds, rounded up, as `Retry-After` wants them.
pub fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl IdentityError {
    /// How long the caller should wait before trying again, for the errors
    /// that say so (front doors send it as `Retry-After`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            IdentityError::Busy { retry_after } | IdentityError::Throttled { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

impl IdentityError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        IdentityError::Invalid(msg.into())
    }
}

impl HasKind for IdentityError {
    fn kind(&self) -> ErrorKind {
        match self {
            IdentityError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            IdentityError::Forbidden { .. } => ErrorKind::Forbidden,
            IdentityError::Invalid(_) => ErrorKind::Invalid,
            IdentityError::Conflict(_) => ErrorKind::Conflict,
            IdentityError::Store(e) => e.kind(),
            IdentityError::SigV4(e) => e.kind(),
            IdentityError::Hash => ErrorKind::Internal,
            IdentityError::Busy { .. } => ErrorKind::Unavailable,
            IdentityError::Throttled { .. } => ErrorKind::Unauthenticated,
        }
    }
}
