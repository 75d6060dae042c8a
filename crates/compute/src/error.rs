//! Errors of the compute service, typed so that every front door maps them
//! onto its dialect's codes (EC2 `InvalidInstanceID.NotFound`,
//! `IncorrectInstanceState`, Nova `itemNotFound`...) by matching variants,
//! never by reading messages. The shared [`ErrorKind`] each maps to gives
//! the native API its status and code.

use nuage_driver::DriverError;
use nuage_identity::IdentityError;
use nuage_model::{ErrorKind, HasKind};
use nuage_store::StoreError;

use crate::types::State;

pub type ComputeResult<T> = Result<T, ComputeError>;

/// What kind of thing an error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Image,
    Instance,
    InstanceType,
    KeyPair,
    PlacementGroup,
    Project,
    /// One key of an instance type's extra specs.
    ExtraSpec,
    /// A project on a private instance type's access list.
    FlavorAccess,
    /// A tag of an image.
    ImageTag,
}

impl Resource {
    pub fn noun(self) -> &'static str {
        match self {
            Resource::Image => "image",
            Resource::Instance => "instance",
            Resource::InstanceType => "instance type",
            Resource::KeyPair => "key pair",
            Resource::PlacementGroup => "placement group",
            Resource::Project => "project",
            Resource::ExtraSpec => "extra spec",
            Resource::FlavorAccess => "instance type access for",
            Resource::ImageTag => "image tag",
        }
    }

    fn article(self) -> &'static str {
        match self {
            Resource::Image
            | Resource::InstanceType
            | Resource::ExtraSpec
            | Resource::ImageTag
            | Resource::FlavorAccess => "an",
            _ => "a",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("{0}")]
    Invalid(String),
    /// It does not exist, or the caller may not see it (the same answer).
    #[error("{} {id} not found", kind.noun())]
    NotFound { kind: Resource, id: String },
    /// An image is not shared with the project named.
    #[error("image {image} is not shared with project {project}")]
    NotShared { image: String, project: String },
    /// A name the rules of its kind refuse (EC2's InvalidAMIName.Malformed).
    #[error("{} name {name:?} is not valid: {reason}", kind.noun())]
    InvalidName {
        kind: Resource,
        name: String,
        reason: &'static str,
    },
    #[error("{} {} named {name} already exists", kind.article(), kind.noun())]
    AlreadyExists { kind: Resource, name: String },
    /// The instance's state does not allow the operation (EC2's
    /// IncorrectInstanceState, Nova's 409); `hint` says what would.
    #[error("cannot {action} instance {id}: it is {}{hint}", state.as_str())]
    IncorrectState {
        id: String,
        state: State,
        action: &'static str,
        hint: &'static str,
    },
    /// Another conflict: an image's status, a resource still in use, a
    /// change that raced another.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    QuotaExceeded(String),
    /// No node can take the instances (Nova's NoValidHost, EC2's
    /// InsufficientInstanceCapacity); the message says why per filter.
    #[error("{0}")]
    InsufficientCapacity(String),
    /// A node's driver failed (or could not observe) while acting on an
    /// instance; the reconciler retries it with back-off.
    #[error("{doing} instance {id}")]
    Driver {
        id: String,
        doing: &'static str,
        #[source]
        source: DriverError,
    },
    #[error("{0}")]
    Internal(String),
    /// Too much of this work is already queued; the caller may retry.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network service refused or failed (a launch's ports).
    #[error(transparent)]
    Network(#[from] nuage_network::NetworkError),
}

impl ComputeError {
    pub fn invalid(m: impl Into<String>) -> Self {
        ComputeError::Invalid(m.into())
    }
    pub fn not_found(kind: Resource, id: impl Into<String>) -> Self {
        ComputeError::NotFound {
            kind,
            id: id.into(),
        }
    }
    pub fn already_exists(kind: Resource, name: impl Into<String>) -> Self {
        ComputeError::AlreadyExists {
            kind,
            name: name.into(),
        }
    }
    pub fn conflict(m: impl Into<String>) -> Self {
        ComputeError::Conflict(m.into())
    }
    pub fn driver(id: impl Into<String>, doing: &'static str, source: DriverError) -> Self {
        ComputeError::Driver {
            id: id.into(),
            doing,
            source,
        }
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

/// The shared kind of each error: one exhaustive match, so a new variant
/// cannot reach a front door unclassified.
impl HasKind for ComputeError {
    fn kind(&self) -> ErrorKind {
        match self {
            ComputeError::Invalid(_) | ComputeError::InvalidName { .. } => ErrorKind::Invalid,
            ComputeError::NotFound { .. } | ComputeError::NotShared { .. } => ErrorKind::NotFound,
            ComputeError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            ComputeError::IncorrectState { .. } | ComputeError::Conflict(_) => ErrorKind::Conflict,
            ComputeError::QuotaExceeded(_) => ErrorKind::QuotaExceeded,
            ComputeError::InsufficientCapacity(_) => ErrorKind::InsufficientCapacity,
            ComputeError::Driver { .. } | ComputeError::Internal(_) => ErrorKind::Internal,
            ComputeError::Busy(_) => ErrorKind::Unavailable,
            ComputeError::Identity(e) => e.kind(),
            ComputeError::Store(e) => e.kind(),
            ComputeError::Network(e) => e.kind(),
        }
    }
}
