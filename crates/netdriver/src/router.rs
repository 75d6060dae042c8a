//! Routing domains: one network namespace per router (Neutron's
//! `qrouter`), joined to each of its networks' bridges by a veth and to
//! the operator's external bridge by another, with one small nftables
//! table of its own for NAT.
//!
//! ```text
//!  node namespace                 router namespace (routers/<key>)        external namespace
//!  nb-<net> ── nr-<key/net> ══ rn-<net>  10.0.0.1/16 (gateway)
//!                                  lo     169.254.169.254/32 (metadata)
//!                                  rg-<key> 203.0.113.5/24 + floating/32 ══ ng-<key> ── <external bridge>
//!                                  table ip nuage-router: SNAT out, DNAT/SNAT per floating address,
//!                                                         hairpin to floating addresses from inside
//! ```
//!
//! Forwarding is turned on inside the router namespace only, and nothing
//! is NATed or forwarded in the node's or the host's namespace. Every
//! link carries the alias `nuage:rlink:<key>/<network>` or
//! `nuage:rgw:<key>`, so observation reads owners back from the kernel.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkMessage};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};
use serde_json::{json, Value};

use crate::linux::{
    address_of, all_links, delete_link, errno, ipv4_addresses, link_alias, link_by_name, link_name,
    link_peer, nl, EADDRNOTAVAIL,
};
use crate::ns::connect;
use crate::{
    alias, bridge_name, router_external_ifname, router_link_ifname, router_mac, router_netns,
    router_port_ifname, router_uplink_ifname, Ipv4Cidr, NetError, NetResult, ObservedRouter,
    ObservedRouterLink, RouterSpec,
};

/// The table each router namespace holds; nothing else there is touched.
pub const ROUTER_TABLE: &str = "nuage-router";

/// How every router link's inner end is named ([`crate::router_link_ifname`]).
const ROUTER_LINK_PREFIX: &str = "rn-";

/// The packet mark of a hairpin connection's first packet, from `prerouting`
/// to `postrouting` ("nu"). Nothing else in a router namespace uses marks.
const HAIRPIN_MARK: u32 = 0x6e75;

/// The operator's external network, as the Linux driver reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalBridge {
    /// The bridge the routers' external legs join.
    pub bridge: String,
    /// The namespace holding it; `None` for the process's own (the host's).
    pub netns: Option<PathBuf>,
}

fn enter_file(f: &File, what: &str) -> NetResult<()> {
    nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| NetError::failed(format!("entering the {what} namespace"), e))
}

fn open_ns(path: &Path) -> NetResult<File> {
    crate::ns::open(path)
}

/// The calling thread's own namespace, to come back to or to open a socket
/// in.
fn own_ns() -> NetResult<File> {
    File::open("/proc/thread-self/ns/net")
        .map_err(|e| NetError::failed("opening this thread's network namespace", e))
}

/// Sockets in each namespace a router touches; made on the calling thread,
/// which ends with the operation.
struct Sockets {
    node: Handle,
    router: Handle,
    router_ns: File,
    external: Option<(Handle, File)>,
}

fn link_owner(key: &str, network: &str) -> String {
    alias("rlink", &format!("{key}/{network}"))
}

/// The router namespace exists (made now if not) and is set up:
/// forwarding on, written from inside it; the metadata address on `lo`.
fn ensure_netns(path: &Path) -> NetResult<()> {
    if !crate::node::is_netns(path)
        .map_err(|e| NetError::failed(format!("checking {}", path.display()), e))?
    {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)
                .map_err(|e| NetError::failed(format!("making {}", d.display()), e))?;
        }
        crate::node::ensure_node_netns(path).map_err(|e| {
            NetError::failed(format!("making router namespace {}", path.display()), e)
        })?;
    }
    Ok(())
}

/// Opens the sockets; leaves the thread in the router namespace.
fn open_sockets(
    node_ns: Option<&Path>,
    router_ns: &Path,
    external_ns: Option<Option<&Path>>,
) -> NetResult<Sockets> {
    let own = own_ns()?;
    let router_file = open_ns(router_ns)?;
    let external = match external_ns {
        None => None,
        Some(p) => {
            match p {
                Some(p) => enter_file(&open_ns(p)?, "external")?,
                None => enter_file(&own, "process's")?,
            }
            let h = connect()?;
            Some((h, own_ns()?))
        }
    };
    match node_ns {
        Some(p) => enter_file(&open_ns(p)?, "node")?,
        None => enter_file(&own, "process's")?,
    }
    let node = connect()?;
    enter_file(&router_file, "router")?;
    // Forwarding in this namespace only: /proc/sys/net shows the namespace
    // of the thread that opens it.
    let fwd = "/proc/sys/net/ipv4/ip_forward";
    if std::fs::read_to_string(fwd)
        .map(|v| v.trim() != "1")
        .unwrap_or(true)
    {
        std::fs::write(fwd, "1").map_err(|e| {
            NetError::failed(format!("enabling forwarding in {}", router_ns.display()), e)
        })?;
    }
    let router = connect()?;
    Ok(Sockets {
        node,
        router,
        router_ns: router_file,
        external,
    })
}

/// Makes `idx`'s IPv4 addresses exactly `want`.
async fn exact_addresses(h: &Handle, idx: u32, want: &[Ipv4Cidr], ctx: &str) -> NetResult<()> {
    let mut have = Vec::new();
    for a in ipv4_addresses(h, Some(idx)).await? {
        match address_of(&a) {
            Some(c) if want.contains(&c) => have.push(c),
            _ => match h.address().del(a).execute().await {
                Err(e) if errno(&e) != Some(EADDRNOTAVAIL) => {
                    return Err(NetError::failed(
                        format!("{ctx}: removing a stray address"),
                        e,
                    ))
                }
                _ => {}
            },
        }
    }
    for w in want.iter().filter(|w| !have.contains(w)) {
        h.address()
            .add(idx, IpAddr::V4(w.addr), w.prefix)
            .replace()
            .execute()
            .await
            .map_err(nl(format!("{ctx}: adding {w}")))?;
    }
    Ok(())
}

/// One veth pair between `outer` (a bridge's namespace, end `outer_name`
/// on `bridge`) and the router namespace (end `inner_name`): kept if both
/// ends exist and are each other's peers, made anew otherwise. Returns the
/// inner end's index.
#[allow(clippy::too_many_arguments)]
async fn ensure_pair(
    outer: &Handle,
    inner: &Handle,
    router_ns: &File,
    outer_name: &str,
    inner_name: &str,
    bridge: u32,
    owner: &str,
    mac: Option<crate::Mac>,
) -> NetResult<u32> {
    let o = link_by_name(outer, outer_name).await?;
    let i = link_by_name(inner, inner_name).await?;
    let paired = match (&o, &i) {
        // Peers in two namespaces: each reports the other's index in its
        // own namespace's numbering, so compare what can be compared: the
        // inner end's peer index is the outer end's.
        (Some(ol), Some(il)) => link_peer(il) == Some(ol.header.index),
        _ => false,
    };
    if !paired {
        if o.is_some() {
            delete_link(outer, outer_name, owner).await?;
        }
        if i.is_some() {
            delete_link(inner, inner_name, owner).await?;
        }
        let mut peer = rtnetlink::LinkMessageBuilder::<LinkUnspec>::new()
            .name(inner_name.to_string())
            .setns_by_fd(router_ns.as_raw_fd());
        if let Some(m) = mac {
            peer = peer.address(m.0.to_vec());
        }
        let msg = LinkVeth::new(outer_name, inner_name)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer.build())))
            .controller(bridge)
            .up()
            .build();
        outer
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(nl(format!("{owner}: creating the veth pair")))?;
    }
    // Owner, up, and the outer end on its bridge (again: a bridge made
    // anew has lost it).
    for (h, name, on) in [(outer, outer_name, Some(bridge)), (inner, inner_name, None)] {
        let l = link_by_name(h, name)
            .await?
            .ok_or_else(|| NetError::Failed(format!("{owner}: {name} vanished")))?;
        let mut m = LinkUnspec::new_with_index(l.header.index).alias(owner).up();
        if let Some(b) = on {
            m = m.controller(b);
        }
        h.link()
            .set(m.build())
            .execute()
            .await
            .map_err(nl(format!("{owner}: setting up {name}")))?;
        if on.is_none() {
            return Ok(l.header.index);
        }
    }
    Err(NetError::Failed(format!("{owner}: {inner_name} vanished")))
}

fn parse_rlink(a: &str) -> Option<(&str, &str)> {
    a.strip_prefix("nuage:rlink:")?.rsplit_once('/')
}

pub(crate) async fn ensure_router(
    node_ns: Option<PathBuf>,
    dir: PathBuf,
    external: Option<ExternalBridge>,
    nft: PathBuf,
    spec: RouterSpec,
) -> NetResult<()> {
    let path = router_netns(&dir, &spec.key);
    let ext_ns = spec
        .external
        .as_ref()
        .map(|_| {
            external.as_ref().map(|e| e.netns.clone()).ok_or_else(|| {
                NetError::Invalid(format!(
                    "router {}: an external gateway needs the node's external network, and none is configured",
                    spec.key
                ))
            })
        })
        .transpose()?;
    let key = spec.key.clone();
    let batch = compile_table(&spec);
    crate::ns::on_thread(None, move || async move {
        ensure_netns(&path)?;
        let s = open_sockets(
            node_ns.as_deref(),
            &path,
            ext_ns.as_ref().map(|p| p.as_deref()),
        )?;
        let lo = link_by_name(&s.router, "lo")
            .await?
            .ok_or_else(|| NetError::Failed(format!("router {key}: no lo")))?;
        s.router
            .link()
            .set(LinkUnspec::new_with_index(lo.header.index).up().build())
            .execute()
            .await
            .map_err(nl(format!("router {key}: setting lo up")))?;
        s.router
            .address()
            .add(
                lo.header.index,
                IpAddr::V4(crate::services::METADATA_ADDR),
                32,
            )
            .replace()
            .execute()
            .await
            .map_err(nl(format!("router {key}: the metadata address")))?;

        // Links on networks. Other domains' links in the node's namespace,
        // listed once: (name, alias, network).
        let others: Vec<(String, String, String)> = all_links(&s.node)
            .await?
            .iter()
            .filter_map(|o| {
                let a = link_alias(o)?;
                let (k, n) = parse_rlink(a)?;
                (k != key).then(|| (link_name(o).to_string(), a.to_string(), n.to_string()))
            })
            .collect();
        for l in &spec.links {
            let owner = link_owner(&key, &l.network_id);
            let bname = bridge_name(&l.network_id);
            let bridge = link_by_name(&s.node, &bname).await?.ok_or_else(|| {
                NetError::Failed(format!(
                    "router {key}: the bridge {bname} of network {} does not exist",
                    l.network_id
                ))
            })?;
            // A network is in one domain: another domain's link on this
            // bridge goes (deleting one end deletes both).
            for (name, owner, _) in others.iter().filter(|o| o.2 == l.network_id) {
                delete_link(&s.node, name, owner).await?;
            }
            let idx = ensure_pair(
                &s.node,
                &s.router,
                &s.router_ns,
                &router_port_ifname(&key, &l.network_id),
                &router_link_ifname(&l.network_id),
                bridge.header.index,
                &owner,
                Some(router_mac(&l.network_id)),
            )
            .await?;
            exact_addresses(&s.router, idx, &l.gateways, &owner).await?;
        }
        // Links it no longer lists.
        let links = all_links(&s.router).await?;
        for l in &links {
            if let Some((_, n)) = link_alias(l).and_then(parse_rlink) {
                if !spec.links.iter().any(|x| x.network_id == n) {
                    delete_link(&s.router, link_name(l), link_alias(l).unwrap_or("")).await?;
                }
            }
        }

        // The external leg.
        let rg = router_external_ifname(&key);
        let gw_owner = alias("rgw", &key);
        match (&spec.external, &s.external, &external) {
            (Some(e), Some((eh, _)), Some(xb)) => {
                let bridge = link_by_name(eh, &xb.bridge).await?.ok_or_else(|| {
                    NetError::Failed(format!(
                        "router {key}: the external bridge {} does not exist",
                        xb.bridge
                    ))
                })?;
                let idx = ensure_pair(
                    eh,
                    &s.router,
                    &s.router_ns,
                    &router_uplink_ifname(&key),
                    &rg,
                    bridge.header.index,
                    &gw_owner,
                    None,
                )
                .await?;
                let mut want = vec![e.address];
                want.extend(e.floating.iter().map(|f| Ipv4Cidr {
                    addr: f.public,
                    prefix: 32,
                }));
                exact_addresses(&s.router, idx, &want, &gw_owner).await?;
                if let Some(gw) = e.gateway {
                    let route = RouteMessageBuilder::<Ipv4Addr>::new()
                        .gateway(gw)
                        .output_interface(idx)
                        .build();
                    s.router
                        .route()
                        .add(route)
                        .replace()
                        .execute()
                        .await
                        .map_err(nl(format!("router {key}: the default route via {gw}")))?;
                }
            }
            _ => delete_link(&s.router, &rg, &gw_owner).await?,
        }
        // The table (input filter, NAT), whole, one transaction, from this
        // thread (the router namespace).
        crate::nft::run_nft_batch(&nft, &batch)?;
        Ok(())
    })
    .await
}

pub(crate) async fn remove_router(dir: PathBuf, key: String) -> NetResult<()> {
    let path = router_netns(&dir, &key);
    crate::ns::on_thread(None, move || async move {
        if crate::node::is_netns(&path)
            .map_err(|e| NetError::failed(format!("checking {}", path.display()), e))?
        {
            // Its links first: a socket of a service may keep the namespace
            // alive after its file is gone, and its veths with it.
            enter_file(&open_ns(&path)?, "router")?;
            let h = connect()?;
            for l in all_links(&h).await? {
                if let Some(a) = link_alias(&l) {
                    if a.starts_with("nuage:rlink:") || a.starts_with("nuage:rgw:") {
                        delete_link(&h, link_name(&l), a).await?;
                    }
                }
            }
            rustix::mount::unmount(&path, rustix::mount::UnmountFlags::DETACH).map_err(|e| {
                NetError::failed(format!("unmounting router namespace {}", path.display()), e)
            })?;
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(NetError::failed(format!("removing {}", path.display()), e))
            }
            _ => Ok(()),
        }
    })
    .await
}

/// How many rules the router table in the calling thread's namespace
/// holds, or `None` without the table: one `nft -j list ruleset ip`.
fn table_rules(nft: &PathBuf) -> NetResult<Option<usize>> {
    let out = crate::nft::run_nft(nft, &["-j", "list", "ruleset", "ip"], None)?;
    let v: Value = serde_json::from_slice(&out)
        .map_err(|e| NetError::failed("reading nft's router ruleset", e))?;
    let items = v["nftables"]
        .as_array()
        .ok_or_else(|| NetError::Failed("nft's router ruleset has no \"nftables\" array".into()))?;
    let ours = |kind: &str, key: &str| {
        items
            .iter()
            .filter(|i| i[kind]["family"] == "ip" && i[kind][key] == ROUTER_TABLE)
            .count()
    };
    Ok((ours("table", "name") > 0).then(|| ours("rule", "table")))
}

/// How many rules a router's table holds as [`compile_table`] makes it.
pub(crate) fn table_rule_count(spec: &RouterSpec) -> usize {
    compile_table(spec)["nftables"].as_array().map_or(0, |a| {
        a.iter().filter(|c| c["add"].get("rule").is_some()).count()
    })
}

/// Every router namespace under `dir`, with its links as found inside it.
/// A file that is not (or no longer) a namespace is listed too, without
/// links, so that it is removed. With `tables` (the `nft` program and the
/// rule count each router's table had when last applied), each router's
/// table is listed too and reported missing or changed; a router this
/// driver has not applied since it started is only checked to have one.
pub(crate) async fn observe_routers(
    dir: PathBuf,
    tables: Option<(PathBuf, BTreeMap<String, usize>)>,
) -> NetResult<Vec<ObservedRouter>> {
    crate::ns::on_thread(None, move || async move {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(NetError::failed(format!("listing {}", dir.display()), e)),
        };
        let mut out = Vec::new();
        for e in entries {
            let e = e.map_err(|e| NetError::failed(format!("listing {}", dir.display()), e))?;
            let Some(key) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = e.path();
            let mut r = ObservedRouter {
                key,
                netns: path.clone(),
                links: Vec::new(),
                external: None,
                table: None,
            };
            if crate::node::is_netns(&path)
                .map_err(|e| NetError::failed(format!("checking {}", path.display()), e))?
            {
                enter_file(&open_ns(&path)?, "router")?;
                if let Some((nft, want)) = &tables {
                    let have = table_rules(nft)?;
                    r.table = Some(match (have, want.get(&r.key)) {
                        (None, _) => false,
                        (Some(n), Some(w)) => n == *w,
                        (Some(_), None) => true,
                    });
                    if r.table == Some(false) {
                        tracing::warn!(router = %r.key, "a router's table was deleted or changed behind nuage's back");
                    }
                }
                let h = connect()?;
                let links = all_links(&h).await?;
                let addrs = ipv4_addresses(&h, None).await?;
                let of = |l: &LinkMessage| -> Vec<Ipv4Cidr> {
                    addrs
                        .iter()
                        .filter(|a| a.header.index == l.header.index)
                        .filter_map(address_of)
                        .collect()
                };
                for l in &links {
                    match link_alias(l) {
                        Some(a) if a.starts_with("nuage:rgw:") => r.external = Some(of(l)),
                        Some(a) => {
                            if let Some((_, n)) = parse_rlink(a) {
                                r.links.push(ObservedRouterLink {
                                    network_id: n.to_string(),
                                    ifname: link_name(l).to_string(),
                                    addresses: of(l),
                                    attached: false,
                                })
                            }
                        }
                        None => {}
                    }
                }
            }
            out.push(r);
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    })
    .await
}

/// The router namespace's table as one nft JSON batch replacing the one
/// in force. Always an input filter: from the router's networks only what
/// nuage serves there (ICMP, DNS on 53, metadata on
/// 169.254.169.254:80), from anywhere else only ICMP, and replies to what
/// the router itself opened; the rest to the router itself is dropped.
/// With an external leg, NAT: SNAT of its networks to its external
/// address, and for each floating address DNAT public → fixed (from
/// outside, and from the router's own networks: hairpin, then SNATed to
/// the sender's floating address or the router's address) and SNAT fixed
/// → public leaving by the external leg. Forwarding from the external leg
/// inward is allowed only for replies and DNATed connections: the router
/// does not route the external network into its private ones.
pub fn compile_table(spec: &RouterSpec) -> Value {
    let t = |body: Value| -> Value {
        let mut b = body;
        b["family"] = json!("ip");
        b["table"] = json!(ROUTER_TABLE);
        b
    };
    let rule = |chain: &str, expr: Vec<Value>| json!({ "add": { "rule": t(json!({ "chain": chain, "expr": expr })) } });
    let eq = |left: Value, right: Value| json!({ "match": { "op": "==", "left": left, "right": right } });
    let meta = |k: &str| json!({ "meta": { "key": k } });
    let ip = |f: &str| json!({ "payload": { "protocol": "ip", "field": f } });
    let accept = json!({ "accept": null });
    let mut cmds = vec![
        json!({ "add": { "table": { "family": "ip", "name": ROUTER_TABLE } } }),
        json!({ "delete": { "table": { "family": "ip", "name": ROUTER_TABLE } } }),
        json!({ "add": { "table": { "family": "ip", "name": ROUTER_TABLE } } }),
        json!({ "add": { "chain": t(json!({
            "name": "input", "type": "filter", "hook": "input", "prio": 0, "policy": "drop"
        })) } }),
    ];
    let links = json!(format!("{ROUTER_LINK_PREFIX}*"));
    for expr in [
        vec![eq(meta("iifname"), json!("lo"))],
        vec![
            json!({ "match": { "op": "in", "left": { "ct": { "key": "state" } }, "right": ["established", "related"] } }),
        ],
        vec![eq(meta("l4proto"), json!("icmp"))],
        vec![
            eq(meta("iifname"), links.clone()),
            eq(
                ip("daddr"),
                json!(crate::services::METADATA_ADDR.to_string()),
            ),
            eq(
                json!({ "payload": { "protocol": "tcp", "field": "dport" } }),
                json!(80),
            ),
        ],
        vec![
            eq(meta("iifname"), links.clone()),
            eq(meta("l4proto"), json!({ "set": ["tcp", "udp"] })),
            eq(
                json!({ "payload": { "protocol": "th", "field": "dport" } }),
                json!(53),
            ),
        ],
    ] {
        let mut expr = expr;
        expr.push(accept.clone());
        cmds.push(rule("input", expr));
    }
    let Some(e) = &spec.external else {
        return json!({ "nftables": cmds });
    };
    let rg = router_external_ifname(&spec.key);
    for (name, ty, hook, prio) in [
        ("prerouting", "nat", "prerouting", -100),
        ("postrouting", "nat", "postrouting", 100),
        ("forward", "filter", "forward", 0),
    ] {
        cmds.push(json!({ "add": { "chain": t(json!({
            "name": name, "type": ty, "hook": hook, "prio": prio, "policy": "accept"
        })) } }));
    }
    // Hairpin: a connection from one of the router's own networks to one
    // of its floating addresses is marked, DNATed like one from outside,
    // and SNATed below to the sender's public face (its floating address,
    // or the router's), so that the reply comes back through the router
    // instead of straight from the instance.
    if !e.floating.is_empty() {
        let publics: Vec<Value> = e
            .floating
            .iter()
            .map(|f| json!(f.public.to_string()))
            .collect();
        cmds.push(rule(
            "prerouting",
            vec![
                json!({ "match": { "op": "!=", "left": meta("iifname"), "right": rg } }),
                eq(ip("daddr"), json!({ "set": publics })),
                json!({ "mangle": { "key": meta("mark"), "value": HAIRPIN_MARK } }),
            ],
        ));
    }
    for f in &e.floating {
        cmds.push(rule(
            "prerouting",
            vec![
                eq(ip("daddr"), json!(f.public.to_string())),
                json!({ "dnat": { "addr": f.fixed.to_string() } }),
            ],
        ));
    }
    for f in &e.floating {
        cmds.push(rule(
            "postrouting",
            vec![
                eq(meta("mark"), json!(HAIRPIN_MARK)),
                eq(ip("saddr"), json!(f.fixed.to_string())),
                json!({ "snat": { "addr": f.public.to_string() } }),
            ],
        ));
    }
    if !e.floating.is_empty() {
        cmds.push(rule(
            "postrouting",
            vec![
                eq(meta("mark"), json!(HAIRPIN_MARK)),
                json!({ "snat": { "addr": e.address.addr.to_string() } }),
            ],
        ));
    }
    for f in &e.floating {
        cmds.push(rule(
            "postrouting",
            vec![
                eq(meta("oifname"), json!(rg)),
                eq(ip("saddr"), json!(f.fixed.to_string())),
                json!({ "snat": { "addr": f.public.to_string() } }),
            ],
        ));
    }
    let nets: Vec<Value> = spec
        .links
        .iter()
        .flat_map(|l| l.gateways.iter())
        .map(|g| json!({ "prefix": { "addr": g.network().to_string(), "len": g.prefix } }))
        .collect();
    if !nets.is_empty() {
        cmds.push(rule(
            "postrouting",
            vec![
                eq(meta("oifname"), json!(rg)),
                eq(ip("saddr"), json!({ "set": nets })),
                json!({ "snat": { "addr": e.address.addr.to_string() } }),
            ],
        ));
    }
    cmds.push(rule(
        "forward",
        vec![
            eq(meta("iifname"), json!(rg)),
            json!({ "match": { "op": "in", "left": { "ct": { "key": "state" } }, "right": ["established", "related"] } }),
            json!({ "accept": null }),
        ],
    ));
    cmds.push(rule(
        "forward",
        vec![
            eq(meta("iifname"), json!(rg)),
            json!({ "match": { "op": "in", "left": { "ct": { "key": "status" } }, "right": "dnat" } }),
            json!({ "accept": null }),
        ],
    ));
    cmds.push(rule(
        "forward",
        vec![eq(meta("iifname"), json!(rg)), json!({ "drop": null })],
    ));
    json!({ "nftables": cmds })
}
