//! Security groups as one nftables table, `inet nuage`: a pure compiler
//! from a plain description to nft's JSON batch, and its application as one
//! transaction through `nft -j -f -`.
//!
//! Why `inet` and not `bridge`: the rules must be stateful (replies to
//! allowed traffic pass) and this kernel has no `nf_conntrack_bridge`, so
//! `ct state` fails in the bridge family. Bridged IPv4 reaches the `inet`
//! forward hook through br_netfilter, which the driver turns on per nuage
//! bridge (`nf_call_iptables`), not for the whole namespace. br_netfilter
//! shows the *bridge* as the packet's interface there (nftables has no
//! `physdev`), so:
//!
//! - anti-spoofing runs earlier, in one `ingress` chain per port hooked on
//!   its host veth (an `inet` table may hold ingress chains since Linux
//!   5.10): a port sends only from its MAC and its IPv4 address, and no
//!   IPv6 (nuage gives none). `inet` ingress sees IP only, so what is not
//!   IP (ARP above all) is filtered by a second table of the same name,
//!   `bridge nuage` ([`compile_l2`], ADR 27): from a port only its own
//!   MAC, ARP only for its own (address, MAC), nothing but IPv4 and ARP;
//! - with sources thus proven, (bridge, IPv4 address) names a port: the
//!   `egress` and `ingress` verdict maps send a packet from or to a port to
//!   that port's chain, and group membership sets hold such pairs (an
//!   address alone would be ambiguous: networks may overlap).
//!
//! Layout, for ports p and groups g:
//!
//! ```text
//! set bridges            ifname                   bridges with ports
//! set m-<g>              ifname . ipv4_addr       members of g
//! map egress / ingress   ifname . ipv4_addr : verdict   goto out-<p> / in-<p>
//! chain forward          hook forward: not on a nuage bridge (nb-*) → accept; ct invalid → drop;
//!                        ct established,related → accept; egress vmap; unknown source → drop; goto to-port
//! chain to-port          ingress vmap; unknown port on a nuage bridge → drop; accept (routed on)
//! chain out-<p>, in-<p>  jump g-<g>-out / g-<g>-in for each group of p; drop
//! chain g-<g>-out        each egress rule → goto to-port (then the destination's ingress)
//! chain g-<g>-in         each ingress rule → accept
//! chain spoof-<p>        hook ingress on p's host veth: wrong MAC, IPv6, wrong IPv4 → drop
//! chain zone             hook prerouting, before conntrack: each bridge's packets → its ct zone
//!
//! table bridge nuage
//! set macs               ifname . ether_addr                 each port's veth and MAC
//! set arp                ifname . ipv4_addr . ether_addr     what each port's ARP may claim
//! chain ports            hook prerouting: not from nv-* → accept; MAC not its own → drop;
//!                        ARP claiming its own → accept; anything but IPv4 → drop
//! ```
//!
//! A group's rules live once in its chains, however many ports it has; a
//! membership change is a set update ([`members_update`]) and rewrites no
//! rule. [`compile`] replaces the whole table in one batch (`add table`,
//! `delete table`, then everything); [`compile_update`] changes only what
//! differs from the plan in force (nft spends ~0.15 ms per rule, so a
//! whole table of 1,000 rules costs half a second). Both tables travel in
//! the same batch, and the kernel commits either batch as one transaction: an error anywhere leaves the previous
//! table untouched. Conntrack entries outlive the table, so established
//! connections survive a re-apply.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::{bridge_name, validate_id, Ipv4Cidr, Mac, Member, NetError, NetResult};

/// The table nuage owns; nothing else in the ruleset is touched.
pub const TABLE: &str = "nuage";
const FAMILY: &str = "inet";
/// The family of nuage's second table of the same name, which filters
/// what `inet` never sees: ARP and other non-IP frames from ports.
const L2_FAMILY: &str = "bridge";
/// How every port's host end is named ([`crate::port_ifname`]).
const PORT_PREFIX: &str = "nv-";

/// Everything the node enforces: its ports and the groups they are in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityPlan {
    pub ports: Vec<SgPort>,
    pub groups: Vec<SecurityGroup>,
}

/// A port as security groups see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgPort {
    pub id: String,
    pub network_id: String,
    /// The host end of its veth pair ([`crate::port_ifname`]).
    pub host_ifname: String,
    pub mac: Mac,
    pub ip: Ipv4Addr,
    /// Its security groups; none means nothing in or out.
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub rules: Vec<SgRule>,
}

/// An allow rule: security groups only ever allow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgRule {
    pub direction: Direction,
    pub protocol: Protocol,
    /// The peer: the source of ingress traffic, the destination of egress.
    pub remote: Remote,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Ingress,
    Egress,
}

/// An inclusive destination port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub from: u16,
    pub to: u16,
}

impl PortRange {
    pub const ANY: PortRange = PortRange { from: 0, to: 65535 };

    pub fn single(port: u16) -> Self {
        PortRange {
            from: port,
            to: port,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    All,
    Tcp(PortRange),
    Udp(PortRange),
    /// ICMP, of one type (and code) or of any.
    Icmp {
        icmp_type: Option<u8>,
        code: Option<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remote {
    Any,
    Cidr(Ipv4Cidr),
    /// The members of a security group.
    Group(String),
}

fn members_set(group: &str) -> String {
    format!("m-{group}")
}

fn obj(kind: &str, mut body: Value) -> Value {
    if let Some(m) = body.as_object_mut() {
        m.insert("family".into(), json!(FAMILY));
        m.insert("table".into(), json!(TABLE));
    }
    json!({ kind: body })
}

fn add(kind: &str, body: Value) -> Value {
    json!({ "add": obj(kind, body) })
}

/// An object of the `bridge nuage` table.
fn l2_obj(kind: &str, mut body: Value) -> Value {
    if let Some(m) = body.as_object_mut() {
        m.insert("family".into(), json!(L2_FAMILY));
        m.insert("table".into(), json!(TABLE));
    }
    json!({ kind: body })
}

fn l2_add(kind: &str, body: Value) -> Value {
    json!({ "add": l2_obj(kind, body) })
}

fn chain(name: &str) -> Value {
    add("chain", json!({ "name": name }))
}

fn rule(chain: &str, expr: Vec<Value>) -> Value {
    add("rule", json!({ "chain": chain, "expr": expr }))
}

fn meta(key: &str) -> Value {
    json!({ "meta": { "key": key } })
}

fn payload(protocol: &str, field: &str) -> Value {
    json!({ "payload": { "protocol": protocol, "field": field } })
}

fn matches(op: &str, left: Value, right: Value) -> Value {
    json!({ "match": { "op": op, "left": left, "right": right } })
}

fn eq(left: Value, right: Value) -> Value {
    matches("==", left, right)
}

fn verdict(v: &str) -> Value {
    json!({ v: null })
}

fn to(v: &str, target: &str) -> Value {
    json!({ v: { "target": target } })
}

fn pair(network_id: &str, ip: Ipv4Addr) -> Value {
    json!({ "concat": [bridge_name(network_id), ip.to_string()] })
}

/// The first three bytes of a frame's Ethernet source or destination
/// (br_netfilter keeps the bridged frame's link-layer header).
fn router_mac_of(field: &str) -> Value {
    let offset = if field == "saddr" { 48 } else { 0 };
    json!({ "payload": { "base": "ll", "offset": offset, "len": 24 } })
}

fn router_mac_prefix() -> Value {
    let p = crate::ROUTER_MAC_PREFIX;
    json!((u32::from(p[0]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[2]))
}

fn validate_ifname(port: &SgPort) -> NetResult<()> {
    let n = &port.host_ifname;
    if n.is_empty()
        || n.len() > crate::IFNAMSIZ_MAX
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(NetError::Invalid(format!(
            "port {}: bad host interface name {n:?}",
            port.id
        )));
    }
    Ok(())
}

fn validate(plan: &SecurityPlan) -> NetResult<()> {
    let mut groups = BTreeSet::new();
    for g in &plan.groups {
        validate_id("security group", &g.id)?;
        if !groups.insert(g.id.as_str()) {
            return Err(NetError::Invalid(format!("security group {} twice", g.id)));
        }
    }
    for g in &plan.groups {
        for r in &g.rules {
            let range = match &r.protocol {
                Protocol::Tcp(p) | Protocol::Udp(p) => Some(p),
                _ => None,
            };
            if range.is_some_and(|p| p.from > p.to) {
                return Err(NetError::Invalid(format!(
                    "security group {}: port range {:?} is empty",
                    g.id, r.protocol
                )));
            }
            if let Protocol::Icmp {
                icmp_type: None,
                code: Some(_),
            } = r.protocol
            {
                return Err(NetError::Invalid(format!(
                    "security group {}: an ICMP code needs an ICMP type",
                    g.id
                )));
            }
            if let Remote::Group(o) = &r.remote {
                if !groups.contains(o.as_str()) {
                    return Err(NetError::Invalid(format!(
                        "security group {}: a rule names group {o}, which is not in the plan",
                        g.id
                    )));
                }
            }
        }
    }
    let mut ports = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    for p in &plan.ports {
        validate_id("port", &p.id)?;
        validate_id("network", &p.network_id)?;
        validate_ifname(p)?;
        if !ports.insert(p.id.as_str()) {
            return Err(NetError::Invalid(format!("port {} twice", p.id)));
        }
        if !addresses.insert((p.network_id.as_str(), p.ip)) {
            return Err(NetError::Invalid(format!(
                "port {}: address {} is another port's on network {}",
                p.id, p.ip, p.network_id
            )));
        }
        for g in &p.groups {
            if !groups.contains(g.as_str()) {
                return Err(NetError::Invalid(format!(
                    "port {}: security group {g} is not in the plan",
                    p.id
                )));
            }
        }
    }
    Ok(())
}

/// The matches of one rule, from the point of view of the port it guards.
fn rule_matches(r: &SgRule) -> Vec<Value> {
    let (ifkey, addr) = match r.direction {
        Direction::Ingress => ("iifname", "saddr"),
        Direction::Egress => ("oifname", "daddr"),
    };
    let mut m = Vec::new();
    match &r.remote {
        Remote::Any => {}
        Remote::Cidr(c) if c.prefix == 0 => {}
        Remote::Cidr(c) if c.prefix == 32 => {
            m.push(eq(payload("ip", addr), json!(c.addr.to_string())))
        }
        Remote::Cidr(c) => m.push(eq(
            payload("ip", addr),
            json!({ "prefix": { "addr": c.network().to_string(), "len": c.prefix } }),
        )),
        Remote::Group(g) => m.push(eq(
            json!({ "concat": [meta(ifkey), payload("ip", addr)] }),
            json!(format!("@{}", members_set(g))),
        )),
    }
    let ports = |proto: &str, p: &PortRange, m: &mut Vec<Value>| {
        if *p == PortRange::ANY {
            m.push(eq(meta("l4proto"), json!(proto)));
        } else if p.from == p.to {
            m.push(eq(payload(proto, "dport"), json!(p.from)));
        } else {
            m.push(eq(
                payload(proto, "dport"),
                json!({ "range": [p.from, p.to] }),
            ));
        }
    };
    match &r.protocol {
        Protocol::All => {}
        Protocol::Tcp(p) => ports("tcp", p, &mut m),
        Protocol::Udp(p) => ports("udp", p, &mut m),
        Protocol::Icmp { icmp_type, code } => {
            m.push(eq(meta("l4proto"), json!("icmp")));
            if let Some(t) = icmp_type {
                m.push(eq(payload("icmp", "type"), json!(t)));
            }
            if let Some(c) = code {
                m.push(eq(payload("icmp", "code"), json!(c)));
            }
        }
    }
    m
}

fn port_chain_names(p: &SgPort) -> [String; 2] {
    [format!("in-{}", p.id), format!("out-{}", p.id)]
}

fn spoof_chain(p: &SgPort) -> Value {
    add(
        "chain",
        json!({ "name": format!("spoof-{}", p.id), "type": "filter", "hook": "ingress",
                "dev": p.host_ifname, "prio": -300, "policy": "accept" }),
    )
}

/// The rules of a port's own chains: jumps to its groups, then drop; its
/// anti-spoofing.
fn port_rules(p: &SgPort) -> Vec<Value> {
    let mut cmds = Vec::new();
    for (dir, chain) in ["in", "out"].iter().zip(port_chain_names(p)) {
        for g in &p.groups {
            cmds.push(rule(&chain, vec![to("jump", &format!("g-{g}-{dir}"))]));
        }
        cmds.push(rule(&chain, vec![verdict("drop")]));
    }
    let spoof = format!("spoof-{}", p.id);
    cmds.push(rule(
        &spoof,
        vec![
            matches("!=", payload("ether", "saddr"), json!(p.mac.to_string())),
            verdict("drop"),
        ],
    ));
    cmds.push(rule(
        &spoof,
        vec![eq(meta("nfproto"), json!("ipv6")), verdict("drop")],
    ));
    cmds.push(rule(
        &spoof,
        vec![
            matches("!=", payload("ip", "saddr"), json!(p.ip.to_string())),
            verdict("drop"),
        ],
    ));
    cmds
}

fn group_rules(g: &SecurityGroup) -> Vec<Value> {
    group_rules_of(g, None)
}

/// The rules of a group's chains, of one direction only if given.
fn group_rules_of(g: &SecurityGroup, only: Option<Direction>) -> Vec<Value> {
    g.rules
        .iter()
        .filter(|r| only.is_none_or(|d| d == r.direction))
        .map(|r| {
            let mut expr = rule_matches(r);
            let chain = match r.direction {
                Direction::Ingress => {
                    expr.push(verdict("accept"));
                    format!("g-{}-in", g.id)
                }
                Direction::Egress => {
                    expr.push(to("goto", "to-port"));
                    format!("g-{}-out", g.id)
                }
            };
            rule(&chain, expr)
        })
        .collect()
}

fn map_elems(op: &str, p: &SgPort, with_verdict: bool) -> [Value; 2] {
    [("egress", "out-"), ("ingress", "in-")].map(|(map, prefix)| {
        let key = pair(&p.network_id, p.ip);
        let elem = if with_verdict {
            json!([key, to("goto", &format!("{prefix}{}", p.id))])
        } else {
            key
        };
        json!({ op: obj("element", json!({ "name": map, "elem": [elem] })) })
    })
}

/// The members of every group of the plan, as set elements.
fn members_of(plan: &SecurityPlan) -> BTreeMap<&str, Vec<Value>> {
    let mut members: BTreeMap<&str, Vec<Value>> = plan
        .groups
        .iter()
        .map(|g| (g.id.as_str(), Vec::new()))
        .collect();
    for p in &plan.ports {
        for g in &p.groups {
            members
                .entry(g.as_str())
                .or_default()
                .push(pair(&p.network_id, p.ip));
        }
    }
    members
}

fn set_with(name: &str, kind: Value, elems: Vec<Value>) -> Value {
    let mut set = json!({ "name": name, "type": kind });
    if !elems.is_empty() {
        set["elem"] = json!(elems);
    }
    add("set", set)
}

fn bridges_of(plan: &SecurityPlan) -> Vec<Value> {
    let b: BTreeSet<String> = plan
        .ports
        .iter()
        .map(|p| bridge_name(&p.network_id))
        .collect();
    b.into_iter().map(Value::from).collect()
}

/// A port's elements in the `bridge nuage` sets: its MAC on its veth, and
/// the one (address, MAC) its ARP may claim.
fn l2_elems(p: &SgPort) -> [(&'static str, Value); 2] {
    let (ifname, mac) = (p.host_ifname.as_str(), p.mac.to_string());
    [
        ("macs", json!({ "concat": [ifname, mac] })),
        ("arp", json!({ "concat": [ifname, p.ip.to_string(), mac] })),
    ]
}

fn l2_element_cmds(op: &str, p: &SgPort) -> Vec<Value> {
    l2_elems(p)
        .into_iter()
        .map(|(set, e)| json!({ op: l2_obj("element", json!({ "name": set, "elem": [e] })) }))
        .collect()
}

/// The `bridge nuage` table, whole: one chain on the bridges' prerouting
/// hook, before br_netfilter hands IPv4 to `inet`. A frame from a port's
/// veth (`nv-*`) must come from the port's MAC; an ARP frame must claim
/// the port's own address and MAC (so no gratuitous ARP for a foreign
/// address, no reply in another's name); anything but IPv4 and ARP is
/// dropped. A port the plan does not name yet sends nothing (fail closed,
/// as in `inet`); router links and trunks are not ports and pass.
fn compile_l2(plan: &SecurityPlan) -> Vec<Value> {
    let mut cmds = vec![
        l2_add("table", json!({ "name": TABLE })),
        json!({ "delete": { "table": { "family": L2_FAMILY, "name": TABLE } } }),
        l2_add("table", json!({ "name": TABLE })),
        l2_add(
            "chain",
            json!({ "name": "ports", "type": "filter", "hook": "prerouting", "prio": -200,
                    "policy": "accept" }),
        ),
    ];
    for (name, kind) in [
        ("macs", json!(["ifname", "ether_addr"])),
        ("arp", json!(["ifname", "ipv4_addr", "ether_addr"])),
    ] {
        let mut set = json!({ "name": name, "type": kind });
        let elems: Vec<Value> = plan
            .ports
            .iter()
            .flat_map(l2_elems)
            .filter(|(s, _)| *s == name)
            .map(|(_, e)| e)
            .collect();
        if !elems.is_empty() {
            set["elem"] = json!(elems);
        }
        cmds.push(l2_add("set", set));
    }
    let l2_rule = |expr: Vec<Value>| l2_add("rule", json!({ "chain": "ports", "expr": expr }));
    cmds.push(l2_rule(vec![
        matches("!=", meta("iifname"), json!(format!("{PORT_PREFIX}*"))),
        verdict("accept"),
    ]));
    cmds.push(l2_rule(vec![
        matches(
            "!=",
            json!({ "concat": [meta("iifname"), payload("ether", "saddr")] }),
            json!("@macs"),
        ),
        verdict("drop"),
    ]));
    // The `arp` payload brings its own `ether type arp` dependency.
    cmds.push(l2_rule(vec![
        eq(
            json!({ "concat": [meta("iifname"), payload("arp", "saddr ip"), payload("arp", "saddr ether")] }),
            json!("@arp"),
        ),
        verdict("accept"),
    ]));
    cmds.push(l2_rule(vec![
        matches("!=", payload("ether", "type"), json!("ip")),
        verdict("drop"),
    ]));
    cmds
}

/// Each nuage bridge's conntrack zone, by bridge name: 16 bits of the
/// name's hash, the next free one on a collision (probed in the order of
/// the network ids, so the same networks always get the same zones), never
/// zone 0, which everything else on the node shares. Stable across
/// restarts and plans, so established flows keep their entries.
pub fn zones(plan: &SecurityPlan) -> BTreeMap<String, u16> {
    let networks: BTreeSet<&str> = plan.ports.iter().map(|p| p.network_id.as_str()).collect();
    let mut used = BTreeSet::new();
    let mut out = BTreeMap::new();
    for n in networks {
        let name = bridge_name(n);
        let hex = name.get(BRIDGE_HASH_AT..BRIDGE_HASH_AT + 4).unwrap_or("0");
        let mut z = u16::from_str_radix(hex, 16).unwrap_or(0);
        while z == 0 || used.contains(&z) {
            z = z.wrapping_add(1);
        }
        used.insert(z);
        out.insert(name, z);
    }
    out
}

/// Where a bridge name's hex digits begin (after `nb-`).
const BRIDGE_HASH_AT: usize = crate::BRIDGE_PREFIX.len();

/// The rules of the `zone` chain: each bridge's packets into its zone.
fn zone_rules(plan: &SecurityPlan) -> Vec<Value> {
    zones(plan)
        .into_iter()
        .map(|(bridge, z)| {
            rule(
                "zone",
                vec![
                    eq(meta("iifname"), json!(bridge)),
                    json!({ "mangle": { "key": { "ct": { "key": "zone" } }, "value": z } }),
                ],
            )
        })
        .collect()
}

fn flush_chain(name: &str) -> Value {
    json!({ "flush": obj("chain", json!({ "name": name })) })
}

fn delete_chain(name: &str) -> [Value; 2] {
    [
        flush_chain(name),
        json!({ "delete": obj("chain", json!({ "name": name })) }),
    ]
}

/// The whole `inet nuage` table for the plan, as one nft JSON batch that
/// replaces the table in force.
pub fn compile(plan: &SecurityPlan) -> NetResult<Value> {
    validate(plan)?;
    let mut cmds = vec![
        add("table", json!({ "name": TABLE })),
        json!({ "delete": { "table": { "family": FAMILY, "name": TABLE } } }),
        add("table", json!({ "name": TABLE })),
    ];

    // Chains first: map elements and rules name them.
    cmds.push(add(
        "chain",
        json!({ "name": "forward", "type": "filter", "hook": "forward", "prio": 0, "policy": "accept" }),
    ));
    // Before conntrack (-200): a bridge's flows are tracked in its own
    // zone, so overlapping networks never share an entry.
    cmds.push(add(
        "chain",
        json!({ "name": "zone", "type": "filter", "hook": "prerouting", "prio": -300, "policy": "accept" }),
    ));
    cmds.push(chain("to-port"));
    for g in &plan.groups {
        cmds.push(chain(&format!("g-{}-in", g.id)));
        cmds.push(chain(&format!("g-{}-out", g.id)));
    }
    for p in &plan.ports {
        for c in port_chain_names(p) {
            cmds.push(chain(&c));
        }
        cmds.push(spoof_chain(p));
    }

    // Sets and maps.
    cmds.push(set_with("bridges", json!("ifname"), bridges_of(plan)));
    for (g, elems) in members_of(plan) {
        cmds.push(set_with(
            &members_set(g),
            json!(["ifname", "ipv4_addr"]),
            elems,
        ));
    }
    for (name, prefix) in [("egress", "out-"), ("ingress", "in-")] {
        let mut map = json!({ "name": name, "type": ["ifname", "ipv4_addr"], "map": "verdict" });
        let elems: Vec<Value> = plan
            .ports
            .iter()
            .map(|p| {
                json!([
                    pair(&p.network_id, p.ip),
                    to("goto", &format!("{prefix}{}", p.id))
                ])
            })
            .collect();
        if !elems.is_empty() {
            map["elem"] = json!(elems);
        }
        cmds.push(add("map", map));
    }

    // Rules. Every nuage bridge is filtered, whether its ports are in the
    // plan yet or not: a port the plan does not name yet (just plugged,
    // before the agent's next pass) neither sends nor receives.
    let ours = json!(format!("{}*", crate::BRIDGE_PREFIX));
    cmds.push(rule(
        "forward",
        vec![
            matches("!=", meta("iifname"), ours.clone()),
            matches("!=", meta("oifname"), ours.clone()),
            verdict("accept"),
        ],
    ));
    cmds.push(rule(
        "forward",
        vec![
            matches("in", json!({ "ct": { "key": "state" } }), json!("invalid")),
            verdict("drop"),
        ],
    ));
    cmds.push(rule(
        "forward",
        vec![
            matches(
                "in",
                json!({ "ct": { "key": "state" } }),
                json!(["established", "related"]),
            ),
            verdict("accept"),
        ],
    ));
    cmds.push(rule(
        "forward",
        vec![
            json!({ "vmap": { "key": { "concat": [meta("iifname"), payload("ip", "saddr")] }, "data": "@egress" } }),
        ],
    ));
    // From a router (its MAC, which no instance may send from): to the
    // destination port's ingress rules.
    cmds.push(rule(
        "forward",
        vec![
            eq(router_mac_of("saddr"), router_mac_prefix()),
            to("goto", "to-port"),
        ],
    ));
    cmds.push(rule(
        "forward",
        vec![
            matches("==", meta("iifname"), ours.clone()),
            verdict("drop"),
        ],
    ));
    cmds.push(rule("forward", vec![to("goto", "to-port")]));
    cmds.push(rule(
        "to-port",
        vec![
            json!({ "vmap": { "key": { "concat": [meta("oifname"), payload("ip", "daddr")] }, "data": "@ingress" } }),
        ],
    ));
    // To a router (the gateway, metadata, DNS, beyond): the sender's
    // egress rules passed.
    cmds.push(rule(
        "to-port",
        vec![
            eq(router_mac_of("daddr"), router_mac_prefix()),
            verdict("accept"),
        ],
    ));
    cmds.push(rule(
        "to-port",
        vec![matches("==", meta("oifname"), ours), verdict("drop")],
    ));
    cmds.push(rule("to-port", vec![verdict("accept")]));
    cmds.extend(zone_rules(plan));
    for g in &plan.groups {
        cmds.extend(group_rules(g));
    }
    for p in &plan.ports {
        cmds.extend(port_rules(p));
    }
    cmds.extend(compile_l2(plan));
    Ok(json!({ "nftables": cmds }))
}

/// One batch taking the table from `old` (the plan in force) to `new`,
/// touching only what differs: the chains of changed groups and ports, the
/// sets whose members changed (and those in `dirty_sets`, changed since by
/// [`members_update`]), map elements of moved ports. The table's skeleton
/// (`forward`, `to-port`, the maps) is assumed as [`compile`] made it; if
/// it is not (deleted by hand), the batch fails whole and nothing changes.
pub fn compile_update(
    old: &SecurityPlan,
    new: &SecurityPlan,
    dirty_sets: &BTreeSet<String>,
) -> NetResult<Value> {
    validate(new)?;
    let old_groups: BTreeMap<&str, &SecurityGroup> =
        old.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let new_groups: BTreeMap<&str, &SecurityGroup> =
        new.groups.iter().map(|g| (g.id.as_str(), g)).collect();
    let old_ports: BTreeMap<&str, &SgPort> = old.ports.iter().map(|p| (p.id.as_str(), p)).collect();
    let new_ports: BTreeMap<&str, &SgPort> = new.ports.iter().map(|p| (p.id.as_str(), p)).collect();
    let (old_members, new_members) = (members_of(old), members_of(new));
    let mut cmds = Vec::new();

    // 1. New chains and sets.
    for g in new
        .groups
        .iter()
        .filter(|g| !old_groups.contains_key(g.id.as_str()))
    {
        cmds.push(chain(&format!("g-{}-in", g.id)));
        cmds.push(chain(&format!("g-{}-out", g.id)));
        let elems = new_members.get(g.id.as_str()).cloned().unwrap_or_default();
        cmds.push(set_with(
            &members_set(&g.id),
            json!(["ifname", "ipv4_addr"]),
            elems,
        ));
    }
    for p in new
        .ports
        .iter()
        .filter(|p| !old_ports.contains_key(p.id.as_str()))
    {
        for c in port_chain_names(p) {
            cmds.push(chain(&c));
        }
        cmds.push(spoof_chain(p));
    }
    // 2. Group chains: new, or changed rules.
    for g in &new.groups {
        match old_groups.get(g.id.as_str()) {
            None => cmds.extend(group_rules(g)),
            Some(o) => {
                for (d, suffix) in [(Direction::Ingress, "in"), (Direction::Egress, "out")] {
                    let of = |g: &SecurityGroup| -> Vec<SgRule> {
                        g.rules
                            .iter()
                            .filter(|r| r.direction == d)
                            .cloned()
                            .collect()
                    };
                    let (before, after) = (of(o), of(g));
                    if before == after {
                        continue;
                    }
                    if after.len() > before.len() && after[..before.len()] == before[..] {
                        // Rules only added at the end (an API add: rules
                        // come in creation order): append them. The chain
                        // ends as a whole apply makes it, and nft parses
                        // one rule instead of the group's hundreds.
                        let added = SecurityGroup {
                            id: g.id.clone(),
                            rules: after[before.len()..].to_vec(),
                        };
                        cmds.extend(group_rules_of(&added, Some(d)));
                    } else {
                        cmds.push(flush_chain(&format!("g-{}-{suffix}", g.id)));
                        cmds.extend(group_rules_of(g, Some(d)));
                    }
                }
            }
        }
    }
    // 3. Membership of groups that stay.
    for g in new
        .groups
        .iter()
        .filter(|g| old_groups.contains_key(g.id.as_str()))
    {
        let now = new_members.get(g.id.as_str());
        if dirty_sets.contains(&g.id) || old_members.get(g.id.as_str()) != now {
            let name = members_set(&g.id);
            cmds.push(json!({ "flush": obj("set", json!({ "name": name })) }));
            if let Some(elems) = now.filter(|e| !e.is_empty()) {
                cmds.push(add("element", json!({ "name": name, "elem": elems })));
            }
        }
    }
    // 4. Ports.
    for p in old
        .ports
        .iter()
        .filter(|p| !new_ports.contains_key(p.id.as_str()))
    {
        cmds.extend(map_elems("delete", p, false));
        cmds.extend(l2_element_cmds("delete", p));
    }
    for p in &new.ports {
        match old_ports.get(p.id.as_str()) {
            None => {
                cmds.extend(port_rules(p));
                cmds.extend(map_elems("add", p, true));
                cmds.extend(l2_element_cmds("add", p));
            }
            Some(o) if *o != p => {
                if l2_elems(o) != l2_elems(p) {
                    cmds.extend(l2_element_cmds("delete", o));
                    cmds.extend(l2_element_cmds("add", p));
                }
                if (&o.network_id, o.ip) != (&p.network_id, p.ip) {
                    cmds.extend(map_elems("delete", o, false));
                    cmds.extend(map_elems("add", p, true));
                }
                for c in port_chain_names(p) {
                    cmds.push(flush_chain(&c));
                }
                let spoof = format!("spoof-{}", p.id);
                if o.host_ifname != p.host_ifname {
                    cmds.extend(delete_chain(&spoof));
                    cmds.push(spoof_chain(p));
                } else {
                    cmds.push(flush_chain(&spoof));
                }
                cmds.extend(port_rules(p));
            }
            Some(_) => {}
        }
    }
    // 5. Which bridges are nuage's, and their zones.
    if zones(new) != zones(old) {
        cmds.push(flush_chain("zone"));
        cmds.extend(zone_rules(new));
    }
    let bridges = bridges_of(new);
    if bridges != bridges_of(old) {
        cmds.push(json!({ "flush": obj("set", json!({ "name": "bridges" })) }));
        if !bridges.is_empty() {
            cmds.push(add(
                "element",
                json!({ "name": "bridges", "elem": bridges }),
            ));
        }
    }
    // 6. What went, once nothing refers to it.
    for p in old
        .ports
        .iter()
        .filter(|p| !new_ports.contains_key(p.id.as_str()))
    {
        for c in port_chain_names(p) {
            cmds.extend(delete_chain(&c));
        }
        cmds.extend(delete_chain(&format!("spoof-{}", p.id)));
    }
    for g in old
        .groups
        .iter()
        .filter(|g| !new_groups.contains_key(g.id.as_str()))
    {
        cmds.extend(delete_chain(&format!("g-{}-in", g.id)));
        cmds.extend(delete_chain(&format!("g-{}-out", g.id)));
        cmds.push(json!({ "delete": obj("set", json!({ "name": members_set(&g.id) })) }));
    }
    Ok(json!({ "nftables": cmds }))
}

/// One batch replacing the members of one group: flush and refill its set
/// in a single transaction.
pub fn members_update(group_id: &str, members: &[Member]) -> NetResult<Value> {
    validate_id("security group", group_id)?;
    for m in members {
        validate_id("network", &m.network_id)?;
    }
    let name = members_set(group_id);
    let mut cmds = vec![json!({ "flush": obj("set", json!({ "name": name })) })];
    if !members.is_empty() {
        let elems: Vec<Value> = members.iter().map(|m| pair(&m.network_id, m.ip)).collect();
        cmds.push(add("element", json!({ "name": name, "elem": elems })));
    }
    Ok(json!({ "nftables": cmds }))
}

pub(crate) fn run_nft(
    program: &PathBuf,
    args: &[&str],
    input: Option<&[u8]>,
) -> NetResult<Vec<u8>> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NetError::failed(format!("running {}", program.display()), e))?;
    if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(data)
            .map_err(|e| NetError::failed("writing the ruleset to nft", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::failed("waiting for nft", e))?;
    if !out.status.success() {
        return Err(NetError::Failed(format!(
            "nft {} refused ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}

/// Hands a batch to `nft -j -f -` from the calling thread, whose
/// namespace the child inherits.
pub(crate) fn run_nft_batch(program: &PathBuf, batch: &Value) -> NetResult<()> {
    let input =
        serde_json::to_vec(batch).map_err(|e| NetError::failed("encoding the ruleset", e))?;
    run_nft(program, &["-j", "-f", "-"], Some(&input)).map(drop)
}

/// Hands a batch to `nft -j -f -` from a thread inside the node's
/// namespace (the child inherits it): one netlink transaction, all or
/// nothing.
pub async fn apply(host_netns: Option<PathBuf>, program: PathBuf, batch: Value) -> NetResult<()> {
    let input =
        serde_json::to_vec(&batch).map_err(|e| NetError::failed("encoding the ruleset", e))?;
    crate::ns::on_thread(host_netns, move || async move {
        run_nft(&program, &["-j", "-f", "-"], Some(&input)).map(drop)
    })
    .await
}

/// Whether both of nuage's tables (`inet nuage`, `bridge nuage`) exist,
/// from nft's JSON listing of the tables.
pub async fn table_exists(host_netns: Option<PathBuf>, program: PathBuf) -> NetResult<bool> {
    let out = crate::ns::on_thread(host_netns, move || async move {
        run_nft(&program, &["-j", "list", "tables"], None)
    })
    .await?;
    let v: Value = serde_json::from_slice(&out)
        .map_err(|e| NetError::failed("reading nft's table list", e))?;
    let items = v["nftables"]
        .as_array()
        .ok_or_else(|| NetError::Failed("nft's table list has no \"nftables\" array".into()))?;
    Ok([FAMILY, L2_FAMILY].iter().all(|f| {
        items
            .iter()
            .any(|i| i["table"]["family"] == *f && i["table"]["name"] == TABLE)
    }))
}

/// How many rules nuage's tables hold now, or `None` without them.
pub async fn table_rule_count(
    host_netns: Option<PathBuf>,
    program: PathBuf,
) -> NetResult<Option<usize>> {
    if !table_exists(host_netns.clone(), program.clone()).await? {
        return Ok(None);
    }
    let out = crate::ns::on_thread(host_netns, move || async move {
        let mut all = Vec::new();
        for f in [FAMILY, L2_FAMILY] {
            all.push(run_nft(&program, &["-j", "list", "table", f, TABLE], None)?);
        }
        Ok(all)
    })
    .await?;
    let mut n = 0;
    for o in out {
        let v: Value =
            serde_json::from_slice(&o).map_err(|e| NetError::failed("reading nft's table", e))?;
        let items = v["nftables"]
            .as_array()
            .ok_or_else(|| NetError::Failed("nft's table has no \"nftables\" array".into()))?;
        n += items.iter().filter(|i| i.get("rule").is_some()).count();
    }
    Ok(Some(n))
}

/// How many rules a whole apply of `plan` makes.
pub fn plan_rule_count(plan: &SecurityPlan) -> NetResult<usize> {
    let batch = compile(plan)?;
    Ok(batch["nftables"].as_array().map_or(0, |a| {
        a.iter().filter(|c| c["add"].get("rule").is_some()).count()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(id: &str, net: &str, ip: [u8; 4], groups: &[&str]) -> SgPort {
        SgPort {
            id: id.into(),
            network_id: net.into(),
            host_ifname: crate::port_ifname(id),
            mac: Mac([2, 0, ip[0], ip[1], ip[2], ip[3]]),
            ip: Ipv4Addr::from(ip),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn web() -> SecurityGroup {
        SecurityGroup {
            id: "sg-web".into(),
            rules: vec![
                SgRule {
                    direction: Direction::Ingress,
                    protocol: Protocol::Tcp(PortRange::single(80)),
                    remote: Remote::Cidr("10.0.0.0/8".parse().expect("cidr")),
                },
                SgRule {
                    direction: Direction::Ingress,
                    protocol: Protocol::All,
                    remote: Remote::Group("sg-web".into()),
                },
                SgRule {
                    direction: Direction::Egress,
                    protocol: Protocol::All,
                    remote: Remote::Any,
                },
            ],
        }
    }

    #[test]
    fn compiles_one_table_with_group_chains_and_sets() {
        let plan = SecurityPlan {
            ports: vec![
                port("p1", "n1", [10, 0, 0, 2], &["sg-web"]),
                port("p2", "n1", [10, 0, 0, 3], &["sg-web"]),
            ],
            groups: vec![web()],
        };
        let v = compile(&plan).expect("compile");
        let text = v.to_string();
        let cmds = v["nftables"].as_array().expect("array");
        // Replace, not merge: add + delete + add of each of the two
        // tables, and nothing outside them.
        assert_eq!(cmds[1]["delete"]["table"]["name"], TABLE);
        let deleted: Vec<_> = cmds
            .iter()
            .filter_map(|c| c["delete"]["table"]["family"].as_str())
            .collect();
        assert_eq!(deleted, [FAMILY, L2_FAMILY]);
        assert!(cmds.iter().all(|c| {
            let body = c
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|b| b.as_object());
            body.and_then(|b| b.values().next()).is_some_and(|o| {
                (o["family"] == FAMILY || o["family"] == L2_FAMILY)
                    && (o["table"] == TABLE || o["name"] == TABLE)
            })
        }));
        // Each port's MAC: its spoof chain, and its MAC and ARP identity
        // in the bridge table.
        assert_eq!(text.matches("\"02:00:0a:00:00:03\"").count(), 3, "{text}");
        // The group's rules once, whatever its number of ports.
        assert_eq!(text.matches("\"dport\"").count(), 1, "{text}");
        assert!(text.contains("\"m-sg-web\""));
        assert!(text.contains("spoof-p2"));
        assert!(text.contains(&crate::port_ifname("p1")));
    }

    #[test]
    fn refuses_bad_plans() {
        let mut bad_range = web();
        bad_range.rules[0].protocol = Protocol::Udp(PortRange { from: 9, to: 8 });
        let foreign = SecurityGroup {
            id: "sg-a".into(),
            rules: vec![SgRule {
                direction: Direction::Ingress,
                protocol: Protocol::All,
                remote: Remote::Group("sg-elsewhere".into()),
            }],
        };
        let code_only = SecurityGroup {
            id: "sg-b".into(),
            rules: vec![SgRule {
                direction: Direction::Ingress,
                protocol: Protocol::Icmp {
                    icmp_type: None,
                    code: Some(0),
                },
                remote: Remote::Any,
            }],
        };
        for groups in [
            vec![bad_range],
            vec![foreign],
            vec![code_only],
            vec![web(), web()],
        ] {
            let plan = SecurityPlan {
                ports: vec![],
                groups,
            };
            assert!(matches!(compile(&plan), Err(NetError::Invalid(_))));
        }
        let unknown_group = SecurityPlan {
            ports: vec![port("p1", "n1", [10, 0, 0, 2], &["sg-nope"])],
            groups: vec![],
        };
        assert!(matches!(compile(&unknown_group), Err(NetError::Invalid(_))));
        let same_ip = SecurityPlan {
            ports: vec![
                port("p1", "n1", [10, 0, 0, 2], &[]),
                port("p2", "n1", [10, 0, 0, 2], &[]),
            ],
            groups: vec![],
        };
        assert!(matches!(compile(&same_ip), Err(NetError::Invalid(_))));
        // The same address on two networks is fine: they may overlap.
        let overlap = SecurityPlan {
            ports: vec![
                port("p1", "n1", [10, 0, 0, 2], &[]),
                port("p2", "n2", [10, 0, 0, 2], &[]),
            ],
            groups: vec![],
        };
        compile(&overlap).expect("overlapping networks");
    }

    #[test]
    fn updates_touch_only_what_changed() {
        let old = SecurityPlan {
            ports: vec![
                port("p1", "n1", [10, 0, 0, 2], &["sg-web"]),
                port("p2", "n1", [10, 0, 0, 3], &["sg-web"]),
            ],
            groups: vec![web()],
        };
        let none = BTreeSet::new();
        let same = compile_update(&old, &old, &none).expect("same");
        assert_eq!(same["nftables"].as_array().map(Vec::len), Some(0));

        // One rule more in the group: its two chains, nothing else.
        let mut new = old.clone();
        new.groups[0].rules.push(SgRule {
            direction: Direction::Ingress,
            protocol: Protocol::Udp(PortRange::single(53)),
            remote: Remote::Any,
        });
        let v = compile_update(&old, &new, &none).expect("rule");
        let text = v.to_string();
        assert!(!text.contains("\"table\":{"), "{text}");
        assert_eq!(
            v["nftables"].as_array().map(Vec::len),
            Some(1),
            "appended: one rule added, no flush: {text}"
        );
        assert!(text.contains("g-sg-web-in") && !text.contains("g-sg-web-out"));
        assert!(
            !text.contains("in-p1") && !text.contains("\"set\""),
            "{text}"
        );
        // One rule fewer (or changed): its chain is flushed and refilled.
        let text = compile_update(&new, &old, &none)
            .expect("removed")
            .to_string();
        assert_eq!(text.matches("\"flush\"").count(), 1, "{text}");
        assert!(text.contains("g-sg-web-in") && !text.contains("g-sg-web-out"));

        // A port moving address: its map elements move, its chains are
        // rewritten, the group's set follows.
        let mut moved = old.clone();
        moved.ports[1].ip = Ipv4Addr::new(10, 0, 0, 33);
        let v = compile_update(&old, &moved, &none).expect("moved");
        let text = v.to_string();
        assert!(text.contains("\"delete\":{\"element\""), "{text}");
        assert!(text.contains("10.0.0.33") && text.contains("spoof-p2"));
        assert!(!text.contains("spoof-p1"));

        // A port gone: its elements and chains deleted, after its rules.
        let mut gone = old.clone();
        gone.ports.pop();
        let cmds = compile_update(&old, &gone, &none).expect("gone");
        let cmds = cmds["nftables"].as_array().expect("array");
        let last = cmds.last().expect("commands").to_string();
        assert!(
            last.contains("delete") && last.contains("spoof-p2"),
            "{last}"
        );

        // A set changed by `members_update` is rewritten even when the
        // plans agree.
        let dirty = BTreeSet::from(["sg-web".to_string()]);
        let text = compile_update(&old, &old, &dirty)
            .expect("dirty")
            .to_string();
        assert!(text.contains("m-sg-web"));
    }

    #[test]
    fn every_bridge_gets_its_own_zone_and_keeps_it() {
        let plan = |nets: &[&str]| SecurityPlan {
            ports: nets
                .iter()
                .enumerate()
                .map(|(i, n)| port(&format!("p{i}"), n, [10, 0, 0, 2], &[]))
                .collect(),
            groups: vec![],
        };
        let many: Vec<String> = (0..2000).map(|i| format!("net-{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let z = zones(&plan(&many));
        let distinct: BTreeSet<u16> = z.values().copied().collect();
        assert_eq!(distinct.len(), 2000, "two bridges share a zone");
        assert!(!distinct.contains(&0));
        // A network's zone does not depend on which others are there,
        // short of a collision.
        let one = zones(&plan(&["net-7"]));
        assert_eq!(one[&bridge_name("net-7")], z[&bridge_name("net-7")]);
        // The zone chain is rewritten only when the bridges change.
        let none = BTreeSet::new();
        let a = plan(&["n1", "n2"]);
        let mut b = a.clone();
        b.ports[1].ip = Ipv4Addr::new(10, 0, 0, 9);
        let text = compile_update(&a, &b, &none).expect("update").to_string();
        assert!(!text.contains("\"zone\""), "{text}");
        let text = compile_update(&a, &plan(&["n1", "n3"]), &none)
            .expect("update")
            .to_string();
        assert!(text.contains(&bridge_name("n3")) && text.contains("\"zone\""));
    }

    #[test]
    fn membership_update_touches_one_set_only() {
        let v = members_update(
            "sg-web",
            &[Member {
                network_id: "n1".into(),
                ip: Ipv4Addr::new(10, 0, 0, 9),
            }],
        )
        .expect("update");
        let cmds = v["nftables"].as_array().expect("array");
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[0]["flush"]["set"]["name"], "m-sg-web");
        assert_eq!(cmds[1]["add"]["element"]["name"], "m-sg-web");
        assert!(!v.to_string().contains("\"rule\""));
    }
}
