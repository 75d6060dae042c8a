//! EC2 error answers, and the one place where the core's typed errors
//! become EC2 codes (habit 15: the core knows no dialect).
//!
//! EC2 answers every error with `<Response><Errors><Error><Code>` and a
//! `<RequestID>`; clients branch on the code (`InvalidInstanceID.NotFound`,
//! `InvalidGroup.InUse`, ...), so the code is chosen from the error's
//! variant and the resource it names, never from its message.

use std::borrow::Cow;

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use nuage_compute::ComputeError;
use nuage_identity::{sigv4::SigV4Error, IdentityError};
use nuage_model::{ErrorKind, HasKind};
use nuage_network::NetworkError;

use crate::context;
use crate::s3::xml::escape_into;

/// An EC2 error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Error {
    pub status: u16,
    pub code: Cow<'static, str>,
    pub message: String,
}

pub type Result<T> = std::result::Result<T, Ec2Error>;

impl Ec2Error {
    pub fn new(
        status: u16,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Ec2Error {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// `InvalidParameterValue` (400): a value that is not valid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Ec2Error::new(400, "InvalidParameterValue", message)
    }

    /// `MissingParameter` (400).
    pub fn missing(name: &str) -> Self {
        Ec2Error::new(
            400,
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    }

    /// `InvalidParameterCombination` (400).
    pub fn combination(message: impl Into<String>) -> Self {
        Ec2Error::new(400, "InvalidParameterCombination", message)
    }

    /// `<Prefix>.Malformed` (400) for an id of the wrong shape, such as
    /// `InvalidInstanceID.Malformed`.
    pub fn malformed(code: &'static str, id: &str) -> Self {
        Ec2Error::new(400, code, format!("Invalid id: \"{id}\""))
    }

    /// `<Prefix>.NotFound` (400): EC2 answers a missing resource with 400.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Ec2Error::new(400, code, message)
    }

    /// The answer to a well-formed request that `DryRun` stopped (412).
    pub fn dry_run() -> Self {
        Ec2Error::new(
            412,
            "DryRunOperation",
            "Request would have succeeded, but DryRun flag is set.",
        )
    }

    /// The rendered error document.
    pub fn to_xml(&self, request_id: &str) -> String {
        let mut out = String::with_capacity(256 + self.message.len());
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>");
        escape_into(&mut out, &self.code);
        out.push_str("</Code><Message>");
        escape_into(&mut out, &self.message);
        out.push_str("</Message></Error></Errors><RequestID>");
        escape_into(&mut out, request_id);
        out.push_str("</RequestID></Response>");
        out
    }

    pub fn render(&self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut r = (status, self.to_xml(&context::request_id())).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/xml;charset=UTF-8"),
        );
        r
    }

    /// A core error's kind with the EC2 code used when its variant does
    /// not name a better one; internal errors are logged, not shown.
    fn from_kind<E: HasKind + std::error::Error>(e: &E) -> Self {
        let (kind, message) = context::public_error(e);
        let (status, code) = match kind {
            ErrorKind::Invalid => (400, "InvalidParameterValue"),
            ErrorKind::Unauthenticated => (401, "AuthFailure"),
            ErrorKind::Forbidden => (403, "UnauthorizedOperation"),
            ErrorKind::NotFound => (400, "InvalidParameterValue"),
            ErrorKind::AlreadyExists => (400, "InvalidParameterValue"),
            ErrorKind::Conflict => (400, "IncorrectState"),
            ErrorKind::QuotaExceeded => (400, "ResourceLimitExceeded"),
            ErrorKind::TooLarge => (400, "InvalidParameterValue"),
            ErrorKind::InsufficientCapacity => (500, "InsufficientInstanceCapacity"),
            ErrorKind::Internal => (500, "InternalError"),
            ErrorKind::Unavailable => (503, "Unavailable"),
        };
        Ec2Error::new(status, code, message)
    }
}

impl std::fmt::Display for Ec2Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl From<SigV4Error> for Ec2Error {
    fn from(e: SigV4Error) -> Self {
        let code = match e {
            SigV4Error::SignatureDoesNotMatch | SigV4Error::SignedHeaderMissing(_) => {
                "SignatureDoesNotMatch"
            }
            // EC2 has no RequestTimeTooSkewed (that is S3's): a date stamp
            // more than 15 minutes off either way is RequestExpired.
            SigV4Error::Expired | SigV4Error::NotYetValid | SigV4Error::RequestTimeTooSkewed => {
                "RequestExpired"
            }
            SigV4Error::IncompleteSignature(_) => "IncompleteSignature",
            SigV4Error::UnknownAccessKey => "AuthFailure",
            _ => "AuthFailure",
        };
        let status = if code == "AuthFailure" || code == "SignatureDoesNotMatch" {
            401
        } else {
            400
        };
        Ec2Error::new(status, code, e.to_string())
    }
}

impl From<IdentityError> for Ec2Error {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::SigV4(s) => s.into(),
            IdentityError::Forbidden { action, reason } => Ec2Error::new(
                403,
                "UnauthorizedOperation",
                format!("You are not authorized to perform this operation ({action}: {reason})."),
            ),
            other => match other.kind() {
                ErrorKind::Unauthenticated => Ec2Error::new(
                    401,
                    "AuthFailure",
                    "AWS was not able to validate the provided access credentials",
                ),
                _ => Ec2Error::from_kind(&other),
            },
        }
    }
}

/// The EC2 code prefix for a compute resource's ids.
fn compute_prefix(r: nuage_compute::Resource) -> Option<&'static str> {
    use nuage_compute::Resource as R;
    Some(match r {
        R::Instance => "InvalidInstanceID",
        R::Image => "InvalidAMIID",
        R::KeyPair => "InvalidKeyPair",
        R::InstanceType => "InvalidInstanceType",
        R::PlacementGroup => "InvalidPlacementGroup",
        _ => return None,
    })
}

impl From<ComputeError> for Ec2Error {
    fn from(e: ComputeError) -> Self {
        let e = match e {
            ComputeError::Identity(i) => return i.into(),
            ComputeError::Network(n) => return n.into(),
            e => e,
        };
        match &e {
            ComputeError::NotFound { kind, id } => match compute_prefix(*kind) {
                Some("InvalidInstanceType") => {
                    Ec2Error::invalid(format!("The instance type '{id}' does not exist"))
                }
                Some(p) => Ec2Error::not_found(
                    not_found_code(p),
                    format!("The {} ID '{id}' does not exist", kind.noun()),
                ),
                None => Ec2Error::from_kind(&e),
            },
            ComputeError::AlreadyExists { kind, name } => match compute_prefix(*kind) {
                Some("InvalidKeyPair") => Ec2Error::new(
                    400,
                    "InvalidKeyPair.Duplicate",
                    format!("The keypair '{name}' already exists."),
                ),
                Some("InvalidPlacementGroup") => Ec2Error::new(
                    400,
                    "InvalidPlacementGroup.Duplicate",
                    format!("The placement group '{name}' already exists."),
                ),
                Some("InvalidAMIID") => Ec2Error::new(
                    400,
                    "InvalidAMIName.Duplicate",
                    format!("AMI name {name} is already in use by an AMI of this account"),
                ),
                _ => Ec2Error::new(400, "InvalidParameterValue", e.to_string()),
            },
            ComputeError::InvalidName { kind, .. } => match compute_prefix(*kind) {
                Some("InvalidAMIID") => {
                    Ec2Error::new(400, "InvalidAMIName.Malformed", e.to_string())
                }
                _ => Ec2Error::invalid(e.to_string()),
            },
            ComputeError::IncorrectState { .. } => {
                Ec2Error::new(400, "IncorrectInstanceState", e.to_string())
            }
            ComputeError::QuotaExceeded(m) => {
                Ec2Error::new(400, "InstanceLimitExceeded", m.clone())
            }
            ComputeError::InsufficientCapacity(m) => {
                Ec2Error::new(500, "InsufficientInstanceCapacity", m.clone())
            }
            _ => Ec2Error::from_kind(&e),
        }
    }
}

/// `<Prefix>.NotFound` as a static string.
fn not_found_code(prefix: &'static str) -> &'static str {
    match prefix {
        "InvalidInstanceID" => "InvalidInstanceID.NotFound",
        "InvalidAMIID" => "InvalidAMIID.NotFound",
        "InvalidKeyPair" => "InvalidKeyPair.NotFound",
        "InvalidPlacementGroup" => "InvalidPlacementGroup.Unknown",
        "InvalidGroup" => "InvalidGroup.NotFound",
        "InvalidVpcID" => "InvalidVpcID.NotFound",
        "InvalidSubnetID" => "InvalidSubnetID.NotFound",
        "InvalidAllocationID" => "InvalidAllocationID.NotFound",
        "InvalidNetworkInterfaceID" => "InvalidNetworkInterfaceID.NotFound",
        "InvalidRouteTableID" => "InvalidRouteTableID.NotFound",
        "InvalidInternetGatewayID" => "InvalidInternetGatewayID.NotFound",
        "InvalidPermission" => "InvalidPermission.NotFound",
        _ => "InvalidParameterValue",
    }
}

/// The EC2 code prefix for a network resource's ids.
fn network_prefix(r: nuage_network::Resource) -> Option<&'static str> {
    use nuage_network::Resource as R;
    Some(match r {
        R::Network => "InvalidVpcID",
        R::Subnet => "InvalidSubnetID",
        R::SecurityGroup => "InvalidGroup",
        R::SecurityGroupRule => "InvalidPermission",
        R::FloatingIp => "InvalidAllocationID",
        R::Port => "InvalidNetworkInterfaceID",
        R::Router => "InvalidRouteTableID",
    })
}

impl From<NetworkError> for Ec2Error {
    fn from(e: NetworkError) -> Self {
        let e = match e {
            NetworkError::Identity(i) => return i.into(),
            e => e,
        };
        match &e {
            NetworkError::NotFound { kind, id } => match network_prefix(*kind) {
                Some(p) => Ec2Error::not_found(
                    not_found_code(p),
                    format!("The {} ID '{id}' does not exist", kind.noun()),
                ),
                None => Ec2Error::from_kind(&e),
            },
            NetworkError::AlreadyExists { kind, name } => match network_prefix(*kind) {
                Some("InvalidGroup") => Ec2Error::new(
                    400,
                    "InvalidGroup.Duplicate",
                    format!("The security group '{name}' already exists"),
                ),
                Some("InvalidPermission") => Ec2Error::new(
                    400,
                    "InvalidPermission.Duplicate",
                    format!("the specified rule {name} already exists"),
                ),
                _ => Ec2Error::invalid(e.to_string()),
            },
            NetworkError::InUse { kind, .. } => match network_prefix(*kind) {
                Some("InvalidGroup") => Ec2Error::new(400, "InvalidGroup.InUse", e.to_string()),
                _ => Ec2Error::new(400, "DependencyViolation", e.to_string()),
            },
            NetworkError::CannotDelete { .. } => Ec2Error::new(400, "CannotDelete", e.to_string()),
            NetworkError::InvalidCidr { .. } | NetworkError::OverlappingCidr { .. } => {
                Ec2Error::new(400, "InvalidSubnet.Range", e.to_string())
            }
            NetworkError::AddressInUse { .. } => {
                Ec2Error::new(400, "InvalidIPAddress.InUse", e.to_string())
            }
            NetworkError::PoolExhausted { .. } => {
                Ec2Error::new(400, "InsufficientFreeAddressesInSubnet", e.to_string())
            }
            NetworkError::QuotaExceeded { resource, .. } => {
                let code = match *resource {
                    "floating_ips" => "AddressLimitExceeded",
                    "security_groups" => "SecurityGroupLimitExceeded",
                    "networks" => "VpcLimitExceeded",
                    _ => "ResourceLimitExceeded",
                };
                Ec2Error::new(400, code, e.to_string())
            }
            NetworkError::LimitExceeded { what, .. } => {
                let code = if what.contains("rule") {
                    "RulesPerSecurityGroupLimitExceeded"
                } else {
                    "ResourceLimitExceeded"
                };
                Ec2Error::new(400, code, e.to_string())
            }
            _ => Ec2Error::from_kind(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_document_is_escaped_and_carries_the_request_id() {
        let e = Ec2Error::invalid("a <b> & 'c'");
        let xml = e.to_xml("req-1");
        assert!(xml.contains("<Code>InvalidParameterValue</Code>"), "{xml}");
        assert!(xml.contains("a &lt;b&gt; &amp; &apos;c&apos;"), "{xml}");
        assert!(xml.contains("<RequestID>req-1</RequestID>"), "{xml}");
    }

    #[test]
    fn core_errors_get_the_codes_clients_branch_on() {
        use nuage_compute::Resource as C;
        use nuage_network::Resource as N;
        let e: Ec2Error = ComputeError::not_found(C::Instance, "i-0123").into();
        assert_eq!(e.code, "InvalidInstanceID.NotFound");
        let e: Ec2Error = ComputeError::not_found(C::Image, "ami-0123").into();
        assert_eq!(e.code, "InvalidAMIID.NotFound");
        let e: Ec2Error = ComputeError::already_exists(C::KeyPair, "k").into();
        assert_eq!(e.code, "InvalidKeyPair.Duplicate");
        let e: Ec2Error = ComputeError::already_exists(C::Image, "web").into();
        assert_eq!(e.code, "InvalidAMIName.Duplicate");
        let e: Ec2Error = ComputeError::InvalidName {
            kind: C::Image,
            name: "ami-x".into(),
            reason: "looks like an id",
        }
        .into();
        assert_eq!(e.code, "InvalidAMIName.Malformed");
        let e: Ec2Error = NetworkError::not_found(N::SecurityGroup, "sg-1").into();
        assert_eq!(e.code, "InvalidGroup.NotFound");
        let e: Ec2Error = NetworkError::in_use(N::SecurityGroup, "sg-1", "i-1").into();
        assert_eq!(e.code, "InvalidGroup.InUse");
        let e: Ec2Error = NetworkError::not_found(N::FloatingIp, "eipalloc-1").into();
        assert_eq!(e.code, "InvalidAllocationID.NotFound");
    }
}
