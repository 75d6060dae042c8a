//! Errors of the compute service, mapped onto the shared error kinds.

use nuage_identity::IdentityError;
use nuage_model::{ErrorKind, HasKind};
use nuage_store::StoreError;

pub type ComputeResult<T> = Result<T, ComputeError>;

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The resource's state does not allow the operation (EC2's
    /// IncorrectInstanceState, Glance's 409).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    QuotaExceeded(String),
    /// No node can take the instances (Nova's NoValidHost, EC2's
    /// InsufficientInstanceCapacity); the message says why per filter.
    #[error("{0}")]
    NoCapacity(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ComputeError {
    pub fn invalid(m: impl Into<String>) -> Self {
        ComputeError::Invalid(m.into())
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        ComputeError::NotFound(m.into())
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        ComputeError::Conflict(m.into())
    }
    pub fn internal(context: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        ComputeError::Internal(format!("{context}: {e}"))
    }
}

impl From<nuage_image::ImageError> for ComputeError {
    fn from(e: nuage_image::ImageError) -> Self {
        match e {
            nuage_image::ImageError::Invalid(m) => ComputeError::Invalid(m),
            other => ComputeError::Internal(other.to_string()),
        }
    }
}

impl From<serde_json::Error> for ComputeError {
    fn from(e: serde_json::Error) -> Self {
        ComputeError::Internal(format!("stored JSON is not valid: {e}"))
    }
}

impl HasKind for ComputeError {
    fn kind(&self) -> ErrorKind {
        match self {
            ComputeError::Invalid(_) => ErrorKind::Invalid,
            ComputeError::NotFound(_) => ErrorKind::NotFound,
            ComputeError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            ComputeError::Conflict(_) => ErrorKind::Conflict,
            ComputeError::QuotaExceeded(_) => ErrorKind::QuotaExceeded,
            ComputeError::NoCapacity(_) => ErrorKind::InsufficientCapacity,
            ComputeError::Internal(_) => ErrorKind::Internal,
            ComputeError::Identity(e) => e.kind(),
            ComputeError::Store(e) => e.kind(),
        }
    }
}
