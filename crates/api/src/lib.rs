//! nuage's HTTP front doors, all on one listener.
//!
//! Each dialect (native JSON, Keystone v3; later EC2, S3, Swift, OpenStack
//! compute/network/volume/image, Kubernetes) is a thin translator: it parses
//! a request into a core call, lets [`auth::authenticate`] turn the
//! credentials into a principal, calls the core service (which checks policy),
//! and renders the answer or the error in its own dialect. No business rule
//! lives here. [`router`] decides which dialect a request belongs to; see
//! `docs/adr/0002-one-endpoint-routing.md` for the rule.

pub mod auth;
pub mod conn;
pub mod context;
pub mod ec2;
mod framing;
pub mod glance;
pub mod keystone;
pub mod native;
pub mod neutron;
pub mod nova;
mod route;
pub mod s3;
pub mod swift;
mod wire;
pub mod zerocopy;

use std::sync::Arc;

use nuage_identity::Identity;

pub use context::Metrics;
pub use route::{router, Dialect, RESERVED_BUCKET_NAMES};

/// Everything a front door can call, shared by all requests.
#[derive(Clone, Debug)]
pub struct Core {
    pub identity: Identity,
    pub compute: nuage_compute::Compute,
    pub objects: nuage_object::ObjectStore,
    /// Networks, subnets, ports, routers, security groups, floating addresses.
    pub network: nuage_network::NetworkService,
    /// The region name clients must use (AWS_DEFAULT_REGION, OS region).
    pub region: String,
    /// The URL clients reach this server at, for catalogs and links.
    pub public_url: String,
    pub metrics: Arc<Metrics>,
}

pub type SharedCore = Arc<Core>;
