//! Who is calling: from (network, source address) to the port and its
//! instance, and the addresses a network's resolver answers for.
//!
//! Both are cached, and every cached answer is checked against the
//! network revision before use: a port deleted or an address handed to
//! another instance bumps it in the same transaction, so a cached identity
//! never outlives the port it came from. The rest of what an instance
//! reads (type, user data, key) is refreshed after [`FRESH_FOR`] at most.
//!
//! The revision read is shared without going stale: a request uses the
//! result of a read that *started after it arrived*, so requests that
//! arrive while one read runs share the next one. Under load one read
//! serves many requests; no request ever sees a revision older than its
//! own arrival.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nuage_compute::{Compute, InstanceMetadata};
use nuage_network::types::Port;
use nuage_network::{NetworkService, PortWiring, REVISION_AREA};

/// How long an instance's own data is served from the cache.
const FRESH_FOR: Duration = Duration::from_secs(2);
/// Callers and networks remembered at most; past it the cache starts over.
const MAX_ENTRIES: usize = 8192;

/// A request's origin, as the socket it arrived on knows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    /// The network of the link the socket is bound to.
    pub network_id: Arc<str>,
    /// The packet's source address.
    pub address: Ipv4Addr,
}

/// A network's instance addresses: (instance id, address).
pub(crate) type Zone = Arc<Vec<(String, Ipv4Addr)>>;

/// An identified caller: its port and its instance.
#[derive(Debug)]
pub(crate) struct Resolved {
    pub port: Port,
    pub meta: InstanceMetadata,
    /// The names of the calling port's security groups.
    pub group_names: Vec<String>,
    /// Every port of the instance, `eth0` first.
    pub wiring: Vec<PortWiring>,
}

struct Entry<T> {
    revision: i64,
    at: Instant,
    value: T,
}

/// The caches and the services behind them.
pub(crate) struct Directory {
    compute: Compute,
    network: NetworkService,
    callers: Mutex<HashMap<Caller, Entry<Option<Arc<Resolved>>>>>,
    zones: Mutex<HashMap<Arc<str>, Entry<Zone>>>,
    /// Revision reads started so far; grows only under `reader`.
    started: AtomicU64,
    /// Held by the request reading the revision.
    reader: tokio::sync::Mutex<()>,
    /// The last read: (its number in `started`, the revision).
    last: Mutex<(u64, i64)>,
}

/// Why a caller could not be looked up (the store failed): the request
/// gets a 500 or SERVFAIL and nothing is cached.
#[derive(Debug, thiserror::Error)]
#[error("looking up the caller: {0}")]
pub(crate) struct LookupError(String);

impl Directory {
    pub fn new(compute: Compute, network: NetworkService) -> Self {
        Directory {
            compute,
            network,
            callers: Mutex::new(HashMap::new()),
            zones: Mutex::new(HashMap::new()),
            started: AtomicU64::new(0),
            reader: tokio::sync::Mutex::new(()),
            last: Mutex::new((0, 0)),
        }
    }

    /// The network revision as of a read that started after this call.
    async fn revision(&self) -> Result<i64, LookupError> {
        // Any read numbered above `need` starts after this line.
        let need = self.started.load(Ordering::SeqCst) + 1;
        let _reading = self.reader.lock().await;
        let (n, rev) = *lock(&self.last);
        if n >= need {
            return Ok(rev);
        }
        let n = self.started.fetch_add(1, Ordering::SeqCst) + 1;
        let rev = self
            .network
            .db()
            .revision(REVISION_AREA)
            .await
            .map_err(|e| LookupError(e.to_string()))?;
        *lock(&self.last) = (n, rev);
        Ok(rev)
    }

    /// The caller's port and instance; `None` when no instance port holds
    /// that address on that network.
    pub async fn resolve(&self, caller: &Caller) -> Result<Option<Arc<Resolved>>, LookupError> {
        let revision = self.revision().await?;
        if let Some(e) = lock(&self.callers).get(caller) {
            if e.revision == revision && e.at.elapsed() < FRESH_FOR {
                return Ok(e.value.clone());
            }
        }
        let value = self.load(caller).await?;
        let mut m = lock(&self.callers);
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(
            caller.clone(),
            Entry {
                revision,
                at: Instant::now(),
                value: value.clone(),
            },
        );
        Ok(value)
    }

    async fn load(&self, caller: &Caller) -> Result<Option<Arc<Resolved>>, LookupError> {
        let err = |e: &dyn std::fmt::Display| LookupError(e.to_string());
        let Some(port) = self
            .network
            .instance_port_at(&caller.network_id, caller.address)
            .await
            .map_err(|e| err(&e))?
        else {
            return Ok(None);
        };
        let Some(meta) = self
            .compute
            .instance_metadata(&port.device_id)
            .await
            .map_err(|e| err(&e))?
        else {
            return Ok(None);
        };
        let group_names = self
            .network
            .security_group_names(&port.security_groups)
            .await
            .map_err(|e| err(&e))?;
        let wiring = self
            .network
            .instance_wiring(&port.device_id)
            .await
            .map_err(|e| err(&e))?;
        Ok(Some(Arc::new(Resolved {
            port,
            meta,
            group_names,
            wiring,
        })))
    }

    /// Every instance address on `network`: (instance id, address).
    pub async fn zone(&self, network: &Arc<str>) -> Result<Zone, LookupError> {
        let revision = self.revision().await?;
        if let Some(e) = lock(&self.zones).get(network) {
            if e.revision == revision {
                return Ok(e.value.clone());
            }
        }
        let value = Arc::new(
            self.network
                .instance_addresses_on(network)
                .await
                .map_err(|e| LookupError(e.to_string()))?,
        );
        let mut m = lock(&self.zones);
        if m.len() >= MAX_ENTRIES {
            m.clear();
        }
        m.insert(
            network.clone(),
            Entry {
                revision,
                at: Instant::now(),
                value: value.clone(),
            },
        );
        Ok(value)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
