//! Errors of the network service, typed so that every front door maps them
//! onto its dialect (EC2 `InvalidGroup.NotFound`, `DependencyViolation`,
//! `AddressLimitExceeded`, `InvalidSubnet.Conflict`; Neutron's 404, 409
//! `IpAddressGenerationFailure`, `OverQuota`) by matching variants, never
//! by reading messages. Each maps to one shared [`ErrorKind`] for the
//! native API.

use nuage_identity::IdentityError;
use nuage_model::{ErrorKind, HasKind};
use nuage_store::StoreError;

pub type NetworkResult<T> = Result<T, NetworkError>;

/// What kind of thing an error names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Network,
    Subnet,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    FloatingIp,
}

impl Resource {
    pub fn noun(self) -> &'static str {
        match self {
            Resource::Network => "network",
            Resource::Subnet => "subnet",
            Resource::Port => "port",
            Resource::Router => "router",
            Resource::SecurityGroup => "security group",
            Resource::SecurityGroupRule => "security group rule",
            Resource::FloatingIp => "floating IP",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A value the request gave is not valid; the message says which.
    #[error("{0}")]
    Invalid(String),
    #[error("{cidr:?} is not a valid IPv4 CIDR: {reason}")]
    InvalidCidr { cidr: String, reason: &'static str },
    /// Two subnets of one network may not share an address.
    #[error("{cidr} overlaps subnet {existing} ({existing_cidr}) of network {network}")]
    OverlappingCidr {
        cidr: String,
        network: String,
        existing: String,
        existing_cidr: String,
    },
    #[error("gateway {gateway} is not a usable address of {cidr}")]
    GatewayOutsideSubnet { gateway: String, cidr: String },
    /// A security group rule that cannot be enforced as written.
    #[error("invalid security group rule: {0}")]
    InvalidRule(String),
    /// It does not exist, or the caller may not see it (the same answer).
    #[error("{} {id} not found", kind.noun())]
    NotFound { kind: Resource, id: String },
    #[error("a {} named {name} already exists", kind.noun())]
    AlreadyExists { kind: Resource, name: String },
    /// Every address of the pools is taken.
    #[error("no free address left in {} {id}", kind.noun())]
    PoolExhausted { kind: Resource, id: String },
    /// The address asked for is held by another port.
    #[error("address {ip} of subnet {subnet} is already in use")]
    AddressInUse { subnet: String, ip: String },
    /// Something still uses the resource (EC2's DependencyViolation,
    /// Neutron's InUse); `by` says what.
    #[error("{} {id} is in use by {by}", kind.noun())]
    InUse {
        kind: Resource,
        id: String,
        by: String,
    },
    /// A resource that exists for the project's sake (its `default`
    /// security group) cannot be deleted (EC2's CannotDelete).
    #[error("{} {id} cannot be deleted: {reason}", kind.noun())]
    CannotDelete {
        kind: Resource,
        id: String,
        reason: &'static str,
    },
    /// The router joins no subnet of the network it is to be detached
    /// from (EC2's Gateway.NotAttached).
    #[error("router {router} is not attached to network {network}")]
    NotAttached { router: String, network: String },
    /// A floating address cannot reach the port: no router of the project
    /// joins the port's subnet to the address's external network.
    #[error("external network {network} is not reachable from subnet {subnet}: add the subnet to a router whose gateway is on that network")]
    NotReachable { network: String, subnet: String },
    #[error("quota exceeded for {resource}: the project uses {used} of {limit}")]
    QuotaExceeded {
        resource: &'static str,
        limit: i64,
        used: i64,
    },
    /// A fixed bound of the service, not a project quota (EC2's
    /// RulesPerSecurityGroupLimitExceeded).
    #[error("too many {what}: the limit is {limit}")]
    LimitExceeded { what: &'static str, limit: i64 },
    /// A change that raced another, or a state that does not allow it.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NetworkError {
    pub fn invalid(m: impl Into<String>) -> Self {
        NetworkError::Invalid(m.into())
    }
    pub fn not_found(kind: Resource, id: impl Into<String>) -> Self {
        NetworkError::NotFound {
            kind,
            id: id.into(),
        }
    }
    pub fn in_use(kind: Resource, id: impl Into<String>, by: impl Into<String>) -> Self {
        NetworkError::InUse {
            kind,
            id: id.into(),
            by: by.into(),
        }
    }
    pub fn rule(m: impl Into<String>) -> Self {
        NetworkError::InvalidRule(m.into())
    }
}

impl From<nuage_store::sqlx::Error> for NetworkError {
    fn from(e: nuage_store::sqlx::Error) -> Self {
        NetworkError::Store(StoreError::from(e))
    }
}

/// The shared kind of each error: one exhaustive match, so a new variant
/// cannot reach a front door unclassified.
impl HasKind for NetworkError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::Invalid(_)
            | NetworkError::InvalidCidr { .. }
            | NetworkError::GatewayOutsideSubnet { .. }
            | NetworkError::InvalidRule(_)
            | NetworkError::CannotDelete { .. } => ErrorKind::Invalid,
            NetworkError::NotFound { .. } => ErrorKind::NotFound,
            NetworkError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            NetworkError::OverlappingCidr { .. }
            | NetworkError::PoolExhausted { .. }
            | NetworkError::AddressInUse { .. }
            | NetworkError::InUse { .. }
            | NetworkError::NotReachable { .. }
            | NetworkError::NotAttached { .. }
            | NetworkError::Conflict(_) => ErrorKind::Conflict,
            NetworkError::QuotaExceeded { .. } | NetworkError::LimitExceeded { .. } => {
                ErrorKind::QuotaExceeded
            }
            NetworkError::Internal(_) => ErrorKind::Internal,
            NetworkError::Identity(e) => e.kind(),
            NetworkError::Store(e) => e.kind(),
        }
    }
}
