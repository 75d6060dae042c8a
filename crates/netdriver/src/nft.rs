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
//!   IPv6 (nuage gives none). `inet` ingress sees IP only, so ARP is not
//!   filtered here (ADR 20);
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
//! chain forward          hook forward: not ours → accept; ct invalid → drop;
//!                        ct established,related → accept; egress vmap; goto to-port
//! chain to-port          ingress vmap; accept (not a port: a gateway, a router)
//! chain out-<p>, in-<p>  jump g-<g>-out / g-<g>-in for each group of p; drop
//! chain g-<g>-out        each egress rule → goto to-port (then the destination's ingress)
//! chain g-<g>-in         each ingress rule → accept
//! chain spoof-<p>        hook ingress on p's host veth: wrong MAC, IPv6, wrong IPv4 → drop
//! ```
//!
//! A group's rules live once in its chains, however many ports it has; a
//! membership change is a set update ([`members_update`]) and rewrites no
//! rule. The whole table is replaced in one batch (`add table`, `delete
//! table`, then everything), which the kernel commits as one transaction:
//! an error anywhere leaves the previous table untouched. Conntrack entries
//! outlive the table, so established connections survive a re-apply.

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

/// The whole `inet nuage` table for the plan, as one nft JSON batch that
/// replaces the table in force.
pub fn compile(plan: &SecurityPlan) -> NetResult<Value> {
    validate(plan)?;
    let mut cmds = vec![
        add("table", json!({ "name": TABLE })),
        json!({ "delete": { "table": { "family": FAMILY, "name": TABLE } } }),
        add("table", json!({ "name": TABLE })),
    ];
    let addtable = |v: &mut Vec<Value>, kind: &str, body: Value| v.push(add(kind, body));

    // Chains first: map elements and rules name them.
    addtable(
        &mut cmds,
        "chain",
        json!({ "name": "forward", "type": "filter", "hook": "forward", "prio": 0, "policy": "accept" }),
    );
    cmds.push(chain("to-port"));
    for g in &plan.groups {
        cmds.push(chain(&format!("g-{}-in", g.id)));
        cmds.push(chain(&format!("g-{}-out", g.id)));
    }
    for p in &plan.ports {
        cmds.push(chain(&format!("in-{}", p.id)));
        cmds.push(chain(&format!("out-{}", p.id)));
        addtable(
            &mut cmds,
            "chain",
            json!({ "name": format!("spoof-{}", p.id), "type": "filter", "hook": "ingress",
                    "dev": p.host_ifname, "prio": -300, "policy": "accept" }),
        );
    }

    // Sets and maps.
    let bridges: BTreeSet<String> = plan
        .ports
        .iter()
        .map(|p| bridge_name(&p.network_id))
        .collect();
    let mut set = json!({ "name": "bridges", "type": "ifname" });
    if !bridges.is_empty() {
        set["elem"] = json!(bridges);
    }
    cmds.push(add("set", set));
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
    for (g, elems) in &members {
        let mut set = json!({ "name": members_set(g), "type": ["ifname", "ipv4_addr"] });
        if !elems.is_empty() {
            set["elem"] = json!(elems);
        }
        cmds.push(add("set", set));
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

    // Rules.
    cmds.push(rule(
        "forward",
        vec![
            matches("!=", meta("iifname"), json!("@bridges")),
            matches("!=", meta("oifname"), json!("@bridges")),
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
        vec![json!({ "vmap": { "key": { "concat": [meta("iifname"), payload("ip", "saddr")] }, "data": "@egress" } })],
    ));
    cmds.push(rule("forward", vec![to("goto", "to-port")]));
    cmds.push(rule(
        "to-port",
        vec![json!({ "vmap": { "key": { "concat": [meta("oifname"), payload("ip", "daddr")] }, "data": "@ingress" } })],
    ));
    cmds.push(rule("to-port", vec![verdict("accept")]));
    for g in &plan.groups {
        for r in &g.rules {
            let mut expr = rule_matches(r);
            match r.direction {
                Direction::Ingress => {
                    expr.push(verdict("accept"));
                    cmds.push(rule(&format!("g-{}-in", g.id), expr));
                }
                Direction::Egress => {
                    expr.push(to("goto", "to-port"));
                    cmds.push(rule(&format!("g-{}-out", g.id), expr));
                }
            }
        }
    }
    for p in &plan.ports {
        for (dir, chain) in [
            ("in", format!("in-{}", p.id)),
            ("out", format!("out-{}", p.id)),
        ] {
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

fn run_nft(program: &PathBuf, args: &[&str], input: Option<&[u8]>) -> NetResult<Vec<u8>> {
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

/// Whether `inet nuage` exists, from nft's JSON listing of the tables.
pub async fn table_exists(host_netns: Option<PathBuf>, program: PathBuf) -> NetResult<bool> {
    let out = crate::ns::on_thread(host_netns, move || async move {
        run_nft(&program, &["-j", "list", "tables", FAMILY], None)
    })
    .await?;
    let v: Value = serde_json::from_slice(&out)
        .map_err(|e| NetError::failed("reading nft's table list", e))?;
    let items = v["nftables"]
        .as_array()
        .ok_or_else(|| NetError::Failed("nft's table list has no \"nftables\" array".into()))?;
    Ok(items
        .iter()
        .any(|i| i["table"]["family"] == FAMILY && i["table"]["name"] == TABLE))
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
        // Replace, not merge: add + delete + add of the one table.
        assert_eq!(cmds[1]["delete"]["table"]["name"], TABLE);
        assert!(cmds.iter().all(|c| {
            let body = c
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(|b| b.as_object());
            body.and_then(|b| b.values().next()).is_some_and(|o| {
                o["family"] == FAMILY && (o["table"] == TABLE || o["name"] == TABLE)
            })
        }));
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
