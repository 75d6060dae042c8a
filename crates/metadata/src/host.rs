//! The listener host: keeps one set of listeners per link of every router
//! domain the network agent publishes, in step with the watch. A link that
//! appears gets its sockets; one that goes (or changes namespace, network
//! or address) has its tasks aborted, which closes its sockets. A link
//! whose sockets could not be opened is tried again every few seconds.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use nuage_netdriver::services::{RouterDomain, ServiceLink};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{dns, imds, sockets, Inner};

const RETRY: Duration = Duration::from_secs(2);

/// What identifies a link's listeners: any change means new sockets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LinkKey {
    netns: PathBuf,
    ifname: String,
    network_id: String,
    gateway: Ipv4Addr,
}

/// The tasks serving one link; dropping it aborts them.
struct Listeners(Vec<JoinHandle<()>>);

impl Drop for Listeners {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

fn wanted(domains: &[RouterDomain]) -> HashMap<LinkKey, ServiceLink> {
    let mut out = HashMap::new();
    for d in domains {
        for l in &d.links {
            out.insert(
                LinkKey {
                    netns: d.netns.clone(),
                    ifname: l.ifname.clone(),
                    network_id: l.network_id.clone(),
                    gateway: l.gateway,
                },
                l.clone(),
            );
        }
    }
    out
}

/// Brings `running` to `want`; returns whether some link failed to open.
async fn sync(
    inner: &Arc<Inner>,
    running: &mut HashMap<LinkKey, Listeners>,
    want: &HashMap<LinkKey, ServiceLink>,
) -> bool {
    running.retain(|k, _| {
        let keep = want.contains_key(k);
        if !keep {
            tracing::info!(network = %k.network_id, ifname = %k.ifname, "instance services closed");
        }
        keep
    });
    let mut failed = false;
    for (k, link) in want {
        if running.contains_key(k) {
            continue;
        }
        match sockets::open(&k.netns, link).await {
            Ok(s) => match start(inner, link, s) {
                Ok(l) => {
                    tracing::info!(network = %k.network_id, ifname = %k.ifname, gateway = %k.gateway, "instance services listening");
                    running.insert(k.clone(), l);
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(network = %k.network_id, error = %e, "instance services: serving the link's sockets");
                }
            },
            Err(e) => {
                failed = true;
                tracing::warn!(network = %k.network_id, ifname = %k.ifname, netns = %k.netns.display(), error = %e, "instance services: opening the link's sockets; trying again");
            }
        }
    }
    failed
}

fn start(
    inner: &Arc<Inner>,
    link: &ServiceLink,
    s: sockets::LinkSockets,
) -> std::io::Result<Listeners> {
    let network: Arc<str> = Arc::from(link.network_id.as_str());
    let metadata = tokio::net::TcpListener::from_std(s.metadata)?;
    let udp = tokio::net::UdpSocket::from_std(s.dns_udp)?;
    let tcp = tokio::net::TcpListener::from_std(s.dns_tcp)?;
    Ok(Listeners(vec![
        tokio::spawn(imds::serve(inner.clone(), network.clone(), metadata)),
        tokio::spawn(dns::serve_udp(inner.clone(), network.clone(), udp)),
        tokio::spawn(dns::serve_tcp(inner.clone(), network, tcp)),
    ]))
}

pub(crate) async fn run(
    inner: Arc<Inner>,
    mut domains: watch::Receiver<Vec<RouterDomain>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut running: HashMap<LinkKey, Listeners> = HashMap::new();
    loop {
        if *shutdown.borrow() {
            break;
        }
        let want = wanted(&domains.borrow_and_update());
        let failed = sync(&inner, &mut running, &want).await;
        tokio::select! {
            r = domains.changed() => {
                if r.is_err() {
                    // The agent is gone: keep serving what it last published.
                    let _ = shutdown.changed().await;
                    break;
                }
            }
            _ = tokio::time::sleep(RETRY), if failed => {}
            _ = shutdown.changed() => {}
        }
    }
    running.clear();
}
