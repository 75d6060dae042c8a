//! The services every instance reaches through its network's gateway: the
//! instance metadata service at 169.254.169.254:80 (EC2's paths with
//! IMDSv2 tokens, and OpenStack's) and the network's DNS resolver at the
//! gateway's address, port 53 (UDP and TCP).
//!
//! Both know their caller only by where its packet arrived: each socket is
//! opened inside a router namespace and bound (SO_BINDTODEVICE) to the
//! interface facing one network, so the network is the socket's; the
//! source address is the packet's, and the data plane lets a port send
//! only from its own address, so the pair names one port and through its
//! device the instance. Nothing the caller says (a header, a query name)
//! ever chooses whose data it reads. This crate reads compute and network;
//! it writes nothing and nothing but the binary depends on it. See
//! `docs/adr/0023-instance-services.md`.

mod directory;
mod dns;
mod host;
mod imds;
mod sockets;
mod token;

use std::sync::Arc;
use std::time::Duration;

use nuage_compute::Compute;
use nuage_netdriver::services::RouterDomain;
use nuage_network::NetworkService;
use tokio::sync::watch;

/// Bounds on what a caller can hold (habit 14).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Metadata connections open at once on one network's link.
    pub http_connections: usize,
    /// DNS TCP connections open at once on one network's link.
    pub dns_tcp_connections: usize,
    /// How long a client may take to send a request's headers, and how
    /// long a kept-alive connection may sit idle.
    pub header_timeout: Duration,
    /// How long a DNS TCP connection may sit idle between queries.
    pub dns_idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            http_connections: 256,
            dns_tcp_connections: 64,
            header_timeout: Duration::from_secs(5),
            dns_idle_timeout: Duration::from_secs(10),
        }
    }
}

/// The metadata service and the DNS resolver of every network on this
/// node; cheap to clone.
#[derive(Clone)]
pub struct InstanceServices {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for InstanceServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstanceServices")
            .field("region", &self.inner.region)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) region: String,
    pub(crate) limits: Limits,
    pub(crate) directory: directory::Directory,
    pub(crate) tokens: token::TokenKey,
}

impl InstanceServices {
    /// The services over `compute` and `network`; the region (of the
    /// `ip-a-b-c-d.<region>.compute.internal` names) is compute's.
    pub fn new(compute: Compute, network: NetworkService) -> Self {
        Self::with_limits(compute, network, Limits::default())
    }

    pub fn with_limits(compute: Compute, network: NetworkService, limits: Limits) -> Self {
        let region = compute.region().to_string();
        InstanceServices {
            inner: Arc::new(Inner {
                directory: directory::Directory::new(compute, network),
                tokens: token::TokenKey::random(),
                region,
                limits,
            }),
        }
    }

    /// The private DNS domain of this region: `<region>.compute.internal`.
    pub fn domain(&self) -> String {
        dns::domain(&self.inner.region)
    }

    /// Listens on every link of every router domain `domains` publishes,
    /// following its changes (a new link gets its listeners, a link gone
    /// has them closed), until `shutdown` turns true.
    pub async fn run(
        &self,
        domains: watch::Receiver<Vec<RouterDomain>>,
        shutdown: watch::Receiver<bool>,
    ) {
        host::run(self.inner.clone(), domains, shutdown).await
    }
}
