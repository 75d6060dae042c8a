//! A cloud in one process (identity, compute with the fake driver, network
//! on a real store) and the namespaces the services listen in: a "router"
//! namespace with one link per network and 169.254.169.254 on its `lo`, and
//! one "instance" namespace per instance at the other end of a veth, with
//! its address and a default route via the gateway. Everything lives in
//! namespaces made here: nothing touches the machine's network. Shared by
//! the tests and the benchmark (`examples/metadata_bench.rs`).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use nuage_compute::{Compute, ComputeConfig, HttpTokens, LocalAgent, NewImage, NewKeyPair};
use nuage_compute::{MetadataOptions, NodeRegistration, RunRequest};
use nuage_driver::fake::FakeDriver;
use nuage_driver::Capacity;
use nuage_identity::{Bootstrap, Identity, IdentityConfig, NewProject};
use nuage_metadata::InstanceServices;
use nuage_model::identity::Principal;
use nuage_netdriver::services::{RouterDomain, ServiceLink};
use nuage_netdriver::testing::NetNs;
use nuage_network::{NetworkConfig, NetworkService};
use nuage_store::testing::{fresh, TestDb};
use tokio::sync::watch;

pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const PREFIX: u8 = 16;

/// Fails (never skips) when what the tests drive is missing.
pub fn require_host() {
    assert!(
        rustix::process::geteuid().is_root(),
        "the instance services tests make network namespaces and must run as root"
    );
    let ip = std::process::Command::new("ip").arg("-V").output();
    assert!(
        ip.is_ok_and(|o| o.status.success()),
        "the instance services tests need ip (apt-get install iproute2)"
    );
}

pub fn member(project: &str, user: &str) -> Principal {
    Principal {
        user_id: user.into(),
        user_name: user.into(),
        domain_id: "default".into(),
        project_id: project.into(),
        project_name: project.into(),
        project_domain_id: "default".into(),
        roles: vec!["member".into(), "reader".into()],
        method: "token".into(),
        audit_id: String::new(),
        expires_at: i64::MAX,
    }
}

pub struct Cloud {
    pub compute: Compute,
    pub network: NetworkService,
    pub alpha: Principal,
    pub beta: Principal,
    pub image: String,
    pub t: TestDb,
    _images: tempfile::TempDir,
}

/// A rootfs image: enough for the image store to take it.
fn rootfs() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let body = b"#!/bin/sh\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append_data(&mut h, "bin/sh", &body[..]).expect("tar");
    b.into_inner().expect("tar")
}

impl Cloud {
    pub async fn new(engine: &str) -> Cloud {
        let t = fresh(engine).await.expect("db");
        let identity = Identity::open(t.db.clone(), IdentityConfig::default())
            .await
            .expect("identity");
        let out = identity
            .bootstrap(Bootstrap {
                admin_password: Some("admin-password-1".into()),
                access_key: None,
            })
            .await
            .expect("bootstrap");
        let mut admin = member(&out.admin_project_id, &out.admin_user_id);
        admin.roles.push("admin".into());
        let mut projects = Vec::new();
        for name in ["alpha", "beta"] {
            let p = identity
                .create_project(
                    &admin,
                    NewProject {
                        name: name.into(),
                        enabled: true,
                        ..Default::default()
                    },
                )
                .await
                .expect("project");
            projects.push(p.id);
        }
        let images = tempfile::tempdir().expect("tmp");
        let store = nuage_image::ImageStore::open(&images.path().join("images")).expect("images");
        let compute = Compute::open(
            t.db.clone(),
            identity.clone(),
            store.clone(),
            ComputeConfig::default(),
        )
        .await
        .expect("compute");
        let network = NetworkService::new(t.db.clone(), identity.clone(), NetworkConfig::default())
            .expect("network");
        compute.attach_network(network.clone());
        let driver = Arc::new(FakeDriver::new(Capacity {
            vcpus: 64,
            ram_mib: 256 * 1024,
            disk_gib: 1024,
            arch: "x86_64".into(),
            hypervisor: "fake".into(),
        }));
        compute
            .register_agent(
                Arc::new(LocalAgent::new("node-1", driver, store)),
                NodeRegistration {
                    id: "node-1".into(),
                    name: "node-1".into(),
                    availability_zone: None,
                    labels: Default::default(),
                },
            )
            .await
            .expect("node");
        let alpha = member(&projects[0], "alice");
        let beta = member(&projects[1], "bob");
        let img = compute
            .create_image(
                &alpha,
                NewImage {
                    name: "tiny".into(),
                    visibility: Some("private".into()),
                    architecture: None,
                    properties: Default::default(),
                },
            )
            .await
            .expect("image");
        let mut up = compute.begin_upload(&alpha, &img.id).await.expect("upload");
        up.write(rootfs().into()).await.expect("write");
        up.finish().await.expect("finish");
        compute
            .share_image(&alpha, &img.id, &projects[1])
            .await
            .expect("share");
        Cloud {
            compute,
            network,
            alpha,
            beta,
            image: img.id,
            t,
            _images: images,
        }
    }

    /// Launches one instance for `who`.
    pub async fn launch(
        &self,
        who: &Principal,
        key: Option<&str>,
        user_data: Option<&[u8]>,
        tokens: HttpTokens,
    ) -> nuage_compute::types::Instance {
        let mut out = self
            .compute
            .run_instances(
                who,
                RunRequest {
                    image_id: self.image.clone(),
                    instance_type: "t2.micro".into(),
                    key_name: key.map(String::from),
                    user_data: user_data
                        .map(|d| base64::engine::general_purpose::STANDARD.encode(d)),
                    metadata_options: Some(MetadataOptions {
                        http_tokens: Some(tokens),
                    }),
                    ..Default::default()
                },
            )
            .await
            .expect("launch");
        out.remove(0)
    }

    pub async fn key(&self, who: &Principal, name: &str) -> String {
        self.compute
            .create_key_pair(
                who,
                NewKeyPair {
                    name: name.into(),
                    key_type: Some("ed25519".into()),
                    public_key: None,
                },
            )
            .await
            .expect("key pair")
            .public_key
    }
}

pub fn address(i: &nuage_compute::types::Instance) -> Ipv4Addr {
    i.private_ip_address
        .as_deref()
        .expect("an address")
        .parse()
        .expect("ipv4")
}

pub fn network_of(i: &nuage_compute::types::Instance) -> String {
    i.network_interfaces[0].network_id.clone()
}

/// Runs `ip` inside `ns`; panics with its stderr if it fails.
pub fn ip(ns: &NetNs, args: &[&str]) {
    let out = ns.exec("ip", args).expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The router namespace and the instances' namespaces.
pub struct Namespaces {
    pub router: NetNs,
    pub instances: Vec<NetNs>,
    pub links: Vec<ServiceLink>,
    // Dropped last: the namespaces' files live in it.
    pub dir: tempfile::TempDir,
}

impl Namespaces {
    pub fn new() -> Namespaces {
        let dir = tempfile::tempdir().expect("tmp");
        let router = NetNs::create(dir.path(), "router").expect("router namespace");
        ip(&router, &["addr", "add", "169.254.169.254/32", "dev", "lo"]);
        // Two links may hold the same prefix (the test's second network):
        // the reverse-path filter would drop one of them.
        for k in ["all", "default"] {
            router
                .sysctl(&format!("net/ipv4/conf/{k}/rp_filter"), "0")
                .expect("rp_filter");
        }
        Namespaces {
            router,
            instances: Vec::new(),
            links: Vec::new(),
            dir,
        }
    }

    /// A network link `ifname` in the router (holding the gateway) and an
    /// instance namespace at its other end with `addr`; returns the
    /// instance namespace's index.
    pub fn add(&mut self, network_id: &str, ifname: &str, addr: Ipv4Addr) -> usize {
        let n = self.instances.len();
        let inst = NetNs::create(self.dir.path(), &format!("inst{n}")).expect("instance ns");
        let path = inst.path().display().to_string();
        ip(
            &self.router,
            &[
                "link", "add", ifname, "type", "veth", "peer", "name", "eth0", "netns", &path,
            ],
        );
        let gw = format!("{GATEWAY}/{PREFIX}");
        ip(&self.router, &["addr", "add", &gw, "dev", ifname]);
        ip(&self.router, &["link", "set", ifname, "up"]);
        self.router
            .sysctl(&format!("net/ipv4/conf/{ifname}/rp_filter"), "0")
            .expect("rp_filter");
        let a = format!("{addr}/{PREFIX}");
        ip(&inst, &["addr", "add", &a, "dev", "eth0"]);
        ip(&inst, &["link", "set", "eth0", "up"]);
        ip(
            &inst,
            &["route", "add", "default", "via", &GATEWAY.to_string()],
        );
        self.instances.push(inst);
        self.links.push(ServiceLink {
            network_id: network_id.into(),
            ifname: ifname.into(),
            gateway: GATEWAY,
            prefix: PREFIX,
        });
        n
    }

    pub fn domains(&self) -> Vec<RouterDomain> {
        vec![RouterDomain {
            key: "rtr-test".into(),
            netns: self.router.path().to_path_buf(),
            links: self.links.clone(),
        }]
    }
}

/// The services running over `cloud`, fed by a watch the test controls.
pub struct Running {
    pub domains: watch::Sender<Vec<RouterDomain>>,
    pub shutdown: watch::Sender<bool>,
    pub task: tokio::task::JoinHandle<()>,
}

pub fn start(cloud: &Cloud, domains: Vec<RouterDomain>) -> Running {
    start_with(cloud, domains, nuage_metadata::Limits::default())
}

pub fn start_with(
    cloud: &Cloud,
    domains: Vec<RouterDomain>,
    limits: nuage_metadata::Limits,
) -> Running {
    let services =
        InstanceServices::with_limits(cloud.compute.clone(), cloud.network.clone(), limits);
    let (dtx, drx) = watch::channel(domains);
    let (stx, srx) = watch::channel(false);
    let task = tokio::spawn(async move { services.run(drx, srx).await });
    Running {
        domains: dtx,
        shutdown: stx,
        task,
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Connects to `dst`, from `src` when given (an address of the calling
/// thread's namespace).
pub fn connect(src: Option<Ipv4Addr>, dst: SocketAddrV4) -> std::io::Result<TcpStream> {
    let s = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if let Some(a) = src {
        s.bind(&SocketAddr::V4(SocketAddrV4::new(a, 0)).into())?;
    }
    s.connect_timeout(&SocketAddr::V4(dst).into(), Duration::from_secs(2))?;
    s.set_tcp_nodelay(true)?;
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// One request on a fresh connection, read to the end (`Connection:
/// close`), from the calling thread's namespace.
pub fn http_here(
    src: Option<Ipv4Addr>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Answer> {
    let mut s = connect(
        src,
        SocketAddrV4::new(nuage_netdriver::services::METADATA_ADDR, 80),
    )?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse(&raw)
}

pub fn parse(raw: &[u8]) -> std::io::Result<Answer> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    Ok(Answer {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    })
}

/// One request from inside `ns`.
pub fn http(
    ns: &NetNs,
    src: Option<Ipv4Addr>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Answer> {
    ns.run(|| http_here(src, method, path, headers))?
}

/// Waits until the metadata service answers inside `ns` (the host opens
/// its sockets asynchronously).
pub fn wait_for_service(ns: &NetNs) {
    for _ in 0..200 {
        if http(ns, None, "GET", "/", &[]).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("the metadata service never answered");
}

/// A DNS question from inside `ns` to the gateway, over UDP or TCP;
/// returns the parsed answer.
pub fn dns(
    ns: &NetNs,
    name: &str,
    qtype: hickory_proto::rr::RecordType,
    tcp: bool,
) -> hickory_proto::op::Message {
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::Name;
    let mut q = Message::query();
    q.metadata.recursion_desired = true;
    q.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    let wire = q.to_vec().expect("encode");
    let server = SocketAddrV4::new(GATEWAY, 53);
    let raw = ns
        .run(|| -> std::io::Result<Vec<u8>> {
            if tcp {
                let mut s = connect(None, server)?;
                let mut framed = (wire.len() as u16).to_be_bytes().to_vec();
                framed.extend_from_slice(&wire);
                s.write_all(&framed)?;
                let mut len = [0u8; 2];
                s.read_exact(&mut len)?;
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut buf)?;
                Ok(buf)
            } else {
                let s = std::net::UdpSocket::bind("0.0.0.0:0")?;
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.send_to(&wire, server)?;
                let mut buf = vec![0u8; 4096];
                let n = s.recv(&mut buf)?;
                buf.truncate(n);
                Ok(buf)
            }
        })
        .expect("namespace thread")
        .expect("a DNS answer");
    let m = Message::from_vec(&raw).expect("decode");
    assert_eq!(
        m.metadata.id, q.metadata.id,
        "the answer echoes the query's id"
    );
    m
}

/// The A addresses of an answer.
pub fn a_records(m: &hickory_proto::op::Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            hickory_proto::rr::RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

pub fn path_exists(p: &Path) -> bool {
    p.exists()
}
