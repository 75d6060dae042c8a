//! Where the services every instance reaches through its gateway (the
//! metadata service at 169.254.169.254:80, the DNS resolver at the
//! gateway's address) must listen: the contract between the network agent,
//! which makes the router namespaces and publishes them, and the instance
//! services, which open their sockets inside them.
//!
//! Each network's gateway lives in a router namespace: a router's own, or
//! an implicit one for a network no router serves (EC2's VPC router). One
//! namespace per routing domain is what lets two projects use the same
//! CIDR on one node: each domain has its own routing table and conntrack.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The metadata service's address, on every router namespace.
pub const METADATA_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);

/// One network as a router namespace sees it: the interface facing the
/// network's bridge and the gateway address it holds there. A socket bound
/// to this interface (SO_BINDTODEVICE) hears only this network's
/// instances, so the caller's network is known from the socket, never from
/// anything the caller says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLink {
    pub network_id: String,
    /// The interface's name inside the router namespace.
    pub ifname: String,
    /// The gateway address on it (the DNS resolver's address).
    pub gateway: Ipv4Addr,
    pub prefix: u8,
}

/// A router namespace and the networks it is the gateway of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouterDomain {
    /// The router's id, or `net:<network id>` for a network's implicit one.
    pub key: String,
    /// The namespace: a bind-mounted nsfs file.
    pub netns: PathBuf,
    pub links: Vec<ServiceLink>,
}
