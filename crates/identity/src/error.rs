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
        }
    }
}
