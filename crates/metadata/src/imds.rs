//! The instance metadata service (EC2's IMDS and OpenStack's metadata
//! API) on one network's link. Each connection's caller is the link's
//! network and the connection's source address; a request is parsed into
//! an [`Endpoint`] and dispatched by an exhaustive match (habit 12):
//! anything else is 404, a wrong method 405.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::directory::{Caller, Resolved};
use crate::token::{MAX_TTL, MIN_TTL};
use crate::{dns, Inner};

/// The IP TTL of a token's response (EC2's `HttpPutResponseHopLimit`,
/// default 1): it reaches the instance but dies at the first hop beyond,
/// so a container behind the instance's NAT cannot get a token.
const PUT_HOP_LIMIT: u32 = 1;
/// The TTL of every other response (Linux's default).
const DEFAULT_TTL: u32 = 64;

/// One connection: its caller, and its socket for the per-response TTL.
#[derive(Clone)]
struct Conn {
    caller: Caller,
    socket: Arc<std::os::fd::OwnedFd>,
    /// Whether the socket's TTL is the hop limit now.
    limited: Arc<std::sync::atomic::AtomicBool>,
}

impl Conn {
    /// Sets the TTL of the responses that follow (one request at a time
    /// on an HTTP/1 connection); a syscall only when it changes.
    fn hop_limit(&self, limited: bool) {
        use std::sync::atomic::Ordering;
        if self.limited.swap(limited, Ordering::Relaxed) != limited {
            let ttl = if limited { PUT_HOP_LIMIT } else { DEFAULT_TTL };
            if let Err(e) = socket2::SockRef::from(&*self.socket).set_ttl_v4(ttl) {
                tracing::warn!(error = %e, "metadata service: setting the response TTL");
            }
        }
    }
}

const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";

/// Accepts connections on `listener` until aborted.
pub(crate) async fn serve(inner: Arc<Inner>, network: Arc<str>, listener: TcpListener) {
    let router = Router::new().fallback(handle).with_state(inner.clone());
    let slots = Arc::new(Semaphore::new(inner.limits.http_connections));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and the like: wait a little rather than spin.
                tracing::warn!(error = %e, "metadata service: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let SocketAddr::V4(peer) = peer else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let socket = {
            use std::os::fd::AsFd;
            match stream.as_fd().try_clone_to_owned() {
                Ok(fd) => Arc::new(fd),
                Err(e) => {
                    tracing::warn!(error = %e, "metadata service: duplicating a socket");
                    continue;
                }
            }
        };
        let conn = Conn {
            caller: Caller {
                network_id: network.clone(),
                address: *peer.ip(),
            },
            socket,
            limited: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        let svc = tower::ServiceBuilder::new()
            .map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(conn.clone());
                req
            })
            .service(router.clone());
        let timeout = inner.limits.header_timeout;
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .max_buf_size(16 * 1024)
                // `printf 'GET ...' | nc` shuts its side once the request is
                // sent; without half-close hyper would drop the answer.
                .half_close(true)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
            let _ = conn.await;
            drop(permit);
        });
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// `/`: the EC2 versions.
    Versions,
    /// `/latest/`: what a version holds.
    Version,
    /// `PUT /latest/api/token`.
    Token,
    /// `/latest/meta-data/<path>` (empty: the listing).
    MetaData(Vec<String>),
    UserData,
    /// `/<version>/dynamic/instance-identity/document`, where SDKs read the
    /// region (unsigned: no `signature` or `pkcs7`).
    IdentityDocument,
    /// `/<version>/dynamic/` and `…/instance-identity/`: fixed listings.
    DynamicListing(&'static str),
    /// `/openstack`: OpenStack's versions.
    OsVersions,
    /// `/openstack/latest/`.
    OsVersion,
    OsMetaData,
    OsUserData,
    OsNetworkData,
}

/// An EC2 version: `latest` or a date (`2009-04-04`), all served alike.
fn is_version(s: &str) -> bool {
    s == "latest"
        || (s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            }))
}

impl Endpoint {
    fn parse(path: &str) -> Option<Endpoint> {
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        Some(match segs.as_slice() {
            [] => Endpoint::Versions,
            ["openstack"] => Endpoint::OsVersions,
            ["openstack", v] if is_version(v) => Endpoint::OsVersion,
            ["openstack", v, "meta_data.json"] if is_version(v) => Endpoint::OsMetaData,
            ["openstack", v, "user_data"] if is_version(v) => Endpoint::OsUserData,
            ["openstack", v, "network_data.json"] if is_version(v) => Endpoint::OsNetworkData,
            [v] if is_version(v) => Endpoint::Version,
            [v, "api", "token"] if is_version(v) => Endpoint::Token,
            [v, "user-data"] if is_version(v) => Endpoint::UserData,
            [v, "dynamic"] if is_version(v) => Endpoint::DynamicListing("instance-identity/"),
            [v, "dynamic", "instance-identity"] if is_version(v) => {
                Endpoint::DynamicListing("document")
            }
            [v, "dynamic", "instance-identity", "document"] if is_version(v) => {
                Endpoint::IdentityDocument
            }
            [v, "meta-data", rest @ ..] if is_version(v) => {
                Endpoint::MetaData(rest.iter().map(|s| s.to_string()).collect())
            }
            _ => return None,
        })
    }
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"))],
        body.into(),
    )
        .into_response()
}

fn status(s: StatusCode) -> Response {
    text(s, s.canonical_reason().unwrap_or_default())
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    Extension(conn): Extension<Conn>,
    method: Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let parsed = Endpoint::parse(uri.path());
    conn.hop_limit(parsed == Some(Endpoint::Token) && method == Method::PUT);
    let resolved = match inner.directory.resolve(&conn.caller).await {
        Ok(Some(r)) => r,
        // No port holds that address on this network: nothing at all.
        Ok(None) => return status(StatusCode::NOT_FOUND),
        Err(e) => {
            tracing::warn!(error = %e, "metadata service");
            return status(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let Some(endpoint) = parsed else {
        return status(StatusCode::NOT_FOUND);
    };
    let instance = &resolved.meta.instance.id;
    if endpoint == Endpoint::Token {
        if method != Method::PUT {
            return status(StatusCode::METHOD_NOT_ALLOWED);
        }
        // A request relayed by a proxy in the instance is not the instance
        // asking (EC2 refuses it the same way).
        if headers.contains_key("x-forwarded-for") {
            return status(StatusCode::FORBIDDEN);
        }
        let ttl = headers
            .get(TTL_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|t| (MIN_TTL..=MAX_TTL).contains(t));
        let Some(ttl) = ttl else {
            return status(StatusCode::BAD_REQUEST);
        };
        let token = inner.tokens.issue(instance, now_secs() + ttl);
        let mut r = text(StatusCode::OK, token);
        r.headers_mut().insert(TTL_HEADER, HeaderValue::from(ttl));
        return r;
    }
    if method != Method::GET && method != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    match headers.get(TOKEN_HEADER) {
        Some(t) => {
            let ok = t
                .to_str()
                .is_ok_and(|t| inner.tokens.verify(t, instance, now_secs()));
            if !ok {
                return status(StatusCode::UNAUTHORIZED);
            }
        }
        None if resolved.meta.http_tokens == nuage_compute::HttpTokens::Required => {
            return status(StatusCode::UNAUTHORIZED)
        }
        None => {}
    }
    let region = &inner.region;
    match endpoint {
        Endpoint::Token => status(StatusCode::METHOD_NOT_ALLOWED),
        Endpoint::Versions => text(StatusCode::OK, "latest"),
        Endpoint::Version => text(StatusCode::OK, "dynamic\nmeta-data\nuser-data"),
        Endpoint::DynamicListing(l) => text(StatusCode::OK, l),
        Endpoint::IdentityDocument => json_body(identity_document(&resolved, region)),
        Endpoint::MetaData(path) => {
            let tree = meta_data(&resolved, region);
            match tree.walk(&path) {
                Some(body) => text(StatusCode::OK, body),
                None => status(StatusCode::NOT_FOUND),
            }
        }
        Endpoint::UserData | Endpoint::OsUserData => match &resolved.meta.user_data {
            Some(d) => text(StatusCode::OK, d.clone()),
            None => status(StatusCode::NOT_FOUND),
        },
        Endpoint::OsVersions => text(StatusCode::OK, "latest"),
        Endpoint::OsVersion => text(
            StatusCode::OK,
            if resolved.meta.user_data.is_some() {
                "meta_data.json\nnetwork_data.json\nuser_data"
            } else {
                "meta_data.json\nnetwork_data.json"
            },
        ),
        Endpoint::OsMetaData => json_body(os_meta_data(&resolved, region)),
        Endpoint::OsNetworkData => json_body(os_network_data(&resolved)),
    }
}

fn json_body(v: Value) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        v.to_string(),
    )
        .into_response()
}

/// The meta-data tree: a leaf's body, or a directory whose listing names
/// its children (a sub-directory with a trailing `/`, as EC2 lists them).
enum Node {
    Leaf(String),
    Dir(Vec<(String, Node)>),
    /// Served but not listed (`public-keys/0/`, which EC2 lists as
    /// `0=<name>`).
    Unlisted(Box<Node>),
}

impl Node {
    fn walk(&self, path: &[String]) -> Option<String> {
        match (self, path) {
            (Node::Leaf(s), []) => Some(s.clone()),
            (Node::Dir(children), []) => Some(
                children
                    .iter()
                    .filter_map(|(name, n)| match n {
                        Node::Dir(_) => Some(format!("{name}/")),
                        Node::Leaf(_) => Some(name.clone()),
                        Node::Unlisted(_) => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            (Node::Dir(children), [first, rest @ ..]) => children
                .iter()
                .find(|(name, _)| name == first)
                .and_then(|(_, n)| n.walk(rest)),
            (Node::Unlisted(n), _) => n.walk(path),
            (Node::Leaf(_), _) => None,
        }
    }
}

fn leaf(name: &str, v: impl Into<String>) -> (String, Node) {
    (name.to_string(), Node::Leaf(v.into()))
}

fn dir(name: &str, children: Vec<(String, Node)>) -> (String, Node) {
    (name.to_string(), Node::Dir(children))
}

/// `ip-10-0-0-5.<region>.compute.internal`, or the instance id while it
/// has no address.
fn private_name(r: &Resolved, region: &str) -> String {
    match r.wiring.first() {
        Some(w) => dns::private_name(w.address, region),
        None => r.meta.instance.hostname.clone(),
    }
}

fn meta_data(r: &Resolved, region: &str) -> Node {
    let i = &r.meta.instance;
    let name = private_name(r, region);
    let local_ipv4 = i.private_ip_address.clone().unwrap_or_default();
    let mac = r.wiring.first().map(|w| w.mac.clone()).unwrap_or_default();
    let mut macs = Vec::new();
    for (n, w) in r.wiring.iter().enumerate() {
        let addr = i.network_interfaces.iter().find(|a| a.port_id == w.port_id);
        let mut m = vec![
            leaf("device-number", n.to_string()),
            leaf("interface-id", w.port_id.clone()),
            leaf("local-hostname", dns::private_name(w.address, region)),
            leaf("local-ipv4s", w.address.to_string()),
            leaf("mac", w.mac.clone()),
        ];
        if let Some(p) = addr.and_then(|a| a.public_ip.clone()) {
            m.push(leaf("public-ipv4s", p));
        }
        if w.port_id == r.port.id {
            m.push(leaf(
                "security-group-ids",
                r.port.security_groups.join("\n"),
            ));
            m.push(leaf("security-groups", r.group_names.join("\n")));
        }
        if let Some(a) = addr {
            m.push(leaf("subnet-id", a.subnet_id.clone()));
        }
        m.push(leaf(
            "subnet-ipv4-cidr-block",
            format!("{}/{}", network_of(w.address, w.prefix), w.prefix),
        ));
        m.push(leaf("vpc-id", w.network_id.clone()));
        macs.push(dir(&w.mac, m));
    }
    let mut top = vec![
        leaf("ami-id", i.image_id.clone()),
        leaf("ami-launch-index", i.launch_index.to_string()),
        leaf("hostname", name.clone()),
        leaf("instance-id", i.id.clone()),
        leaf("instance-type", i.instance_type.clone()),
        leaf("local-hostname", name),
        leaf("local-ipv4", local_ipv4),
        leaf("mac", mac),
        dir("network", vec![dir("interfaces", vec![dir("macs", macs)])]),
        dir(
            "placement",
            vec![
                leaf("availability-zone", i.availability_zone.clone()),
                leaf("region", region.to_string()),
            ],
        ),
    ];
    if let Some(p) = &i.public_ip_address {
        top.push(leaf("public-ipv4", p.clone()));
    }
    if let Some((key, openssh)) = &r.meta.public_key {
        top.push((
            "public-keys".into(),
            // EC2 lists `0=<name>` and serves the key under `0/`.
            Node::Dir(vec![
                (format!("0={key}"), Node::Leaf(String::new())),
                (
                    "0".into(),
                    Node::Unlisted(Box::new(Node::Dir(vec![leaf(
                        "openssh-key",
                        openssh.clone(),
                    )]))),
                ),
            ]),
        ));
    }
    top.push(leaf("reservation-id", i.reservation_id.clone()));
    top.push(leaf("security-groups", r.group_names.join("\n")));
    Node::Dir(top)
}

fn network_of(a: std::net::Ipv4Addr, prefix: u8) -> std::net::Ipv4Addr {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    };
    std::net::Ipv4Addr::from(u32::from(a) & mask)
}

fn identity_document(r: &Resolved, region: &str) -> Value {
    let i = &r.meta.instance;
    json!({
        "accountId": i.project_id,
        "availabilityZone": i.availability_zone,
        "imageId": i.image_id,
        "instanceId": i.id,
        "instanceType": i.instance_type,
        "pendingTime": i.launch_time,
        "privateIp": i.private_ip_address,
        "region": region,
        "version": "2017-09-30",
    })
}

fn os_meta_data(r: &Resolved, region: &str) -> Value {
    let i = &r.meta.instance;
    let keys: serde_json::Map<String, Value> = r
        .meta
        .public_key
        .iter()
        .map(|(n, k)| (n.clone(), Value::String(k.clone())))
        .collect();
    let key_list: Vec<Value> = r
        .meta
        .public_key
        .iter()
        .map(|(n, k)| json!({ "name": n, "type": "ssh", "data": k }))
        .collect();
    json!({
        "uuid": i.id,
        "name": i.tags.get("Name").cloned().unwrap_or_else(|| i.hostname.clone()),
        "hostname": private_name(r, region),
        "availability_zone": i.availability_zone,
        "public_keys": keys,
        "keys": key_list,
        "launch_index": i.launch_index,
        "project_id": i.project_id,
        "meta": i.tags,
        "devices": [],
    })
}

fn os_network_data(r: &Resolved) -> Value {
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let mut dns_servers = Vec::new();
    for (n, w) in r.wiring.iter().enumerate() {
        let link = format!("tap{}", w.port_id);
        links.push(json!({
            "id": link,
            "vif_id": w.port_id,
            "type": "ethernet",
            "ethernet_mac_address": w.mac,
            "mtu": 1500,
        }));
        let netmask = network_of(std::net::Ipv4Addr::BROADCAST, w.prefix);
        let mut net = json!({
            "id": format!("network{n}"),
            "type": "ipv4",
            "link": link,
            "ip_address": w.address.to_string(),
            "netmask": netmask.to_string(),
            "network_id": w.network_id,
            "routes": [],
        });
        if let Some(g) = w.gateway {
            if n == 0 {
                net["routes"] = json!([{
                    "network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": g.to_string(),
                }]);
            }
            let svc = json!({ "type": "dns", "address": g.to_string() });
            net["services"] = json!([svc.clone()]);
            if !dns_servers.contains(&svc) {
                dns_servers.push(svc);
            }
        }
        networks.push(net);
    }
    json!({ "links": links, "networks": networks, "services": dns_servers })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_into_endpoints_and_nothing_else() {
        assert_eq!(Endpoint::parse("/"), Some(Endpoint::Versions));
        assert_eq!(Endpoint::parse("/latest/api/token"), Some(Endpoint::Token));
        assert_eq!(
            Endpoint::parse("/2009-04-04/meta-data/instance-id"),
            Some(Endpoint::MetaData(vec!["instance-id".into()]))
        );
        assert_eq!(
            Endpoint::parse("/latest/meta-data/"),
            Some(Endpoint::MetaData(vec![]))
        );
        assert_eq!(
            Endpoint::parse("/openstack/latest/meta_data.json"),
            Some(Endpoint::OsMetaData)
        );
        for bad in [
            "/latest/api/token/x",
            "/v1/meta-data",
            "/openstack/latest/vendor_data.json",
            "/../latest/user-data",
            "/latest/dynamic/instance-identity/pkcs7",
        ] {
            assert_eq!(Endpoint::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn masks() {
        let a: std::net::Ipv4Addr = "10.0.3.7".parse().expect("ip");
        assert_eq!(network_of(a, 16).to_string(), "10.0.0.0");
        assert_eq!(
            network_of(std::net::Ipv4Addr::BROADCAST, 24).to_string(),
            "255.255.255.0"
        );
    }
}
