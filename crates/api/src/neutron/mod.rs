//! The OpenStack Networking (Neutron) v2.0 API under `/networking`, as
//! devstack lays it out (ADR 33): the client finds `<public>/networking`
//! in the catalog and appends `/v2.0/...`. Networks, subnets, ports,
//! routers, floating IPs, security groups and their rules, quotas and
//! tags, over the same network service the EC2 and native doors use: a
//! Neutron network is the EC2 VPC, a floating IP the elastic address.
//!
//! As every door (habit 12): the request is recognised whole (method,
//! path, query and body into one [`Op`]) before anything acts; unknown
//! collections answer 404, a wrong method 405, and errors take Neutron's
//! shape, `{"NeutronError": {"type": "NetworkNotFound", "message": ...,
//! "detail": ""}}`, with Neutron's type names, chosen here from the core's
//! typed errors (habit 15).

mod list;
mod networks;
mod ports;
mod quotas;
mod routers;
mod security;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode};
use nuage_model::identity::Principal;
use nuage_model::{ErrorKind, HasKind};
use nuage_network::{NetworkError, Resource};
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

pub use list::Listing;

use crate::{auth, context, Core, SharedCore};

/// Largest request body the door reads.
const MAX_BODY: usize = 1 << 20;

/// A Neutron fault: `{"NeutronError": {"type", "message", "detail"}}`.
#[derive(Debug)]
pub struct Fault {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl Fault {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Fault {
            status,
            kind,
            message: message.into(),
        }
    }

    /// `400 InvalidInput`: a value Neutron's attribute validation refuses.
    pub fn invalid(message: impl Into<String>) -> Self {
        Fault::new(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            format!("Invalid input for operation: {}", message.into()),
        )
    }

    /// `400 HTTPBadRequest`: a body or query that is not what the API takes.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Fault::new(StatusCode::BAD_REQUEST, "HTTPBadRequest", message)
    }

    pub fn not_found(kind: &'static str, message: impl Into<String>) -> Self {
        Fault::new(StatusCode::NOT_FOUND, kind, message)
    }

    /// A core error, by variant where Neutron has a name for it, else by
    /// kind; internal details stay in the log.
    pub fn from_core<E: HasKind + std::error::Error>(e: &E) -> Self {
        let (kind, message) = context::public_error(e);
        let (status, name) = match kind {
            ErrorKind::Invalid => (StatusCode::BAD_REQUEST, "InvalidInput"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
            ErrorKind::AlreadyExists | ErrorKind::Conflict => (StatusCode::CONFLICT, "Conflict"),
            ErrorKind::QuotaExceeded => (StatusCode::CONFLICT, "OverQuota"),
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "PolicyNotAuthorized"),
            ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, "HTTPUnauthorized"),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable"),
            _ => (context::status_of(kind), "NeutronError"),
        };
        Fault::new(status, name, message)
    }
}

/// Neutron's name for a missing resource of `kind`.
pub fn not_found_type(kind: Resource) -> &'static str {
    match kind {
        Resource::Network => "NetworkNotFound",
        Resource::Subnet => "SubnetNotFound",
        Resource::Port => "PortNotFound",
        Resource::Router => "RouterNotFound",
        Resource::SecurityGroup => "SecurityGroupNotFound",
        Resource::SecurityGroupRule => "SecurityGroupRuleNotFound",
        Resource::FloatingIp => "FloatingIPNotFound",
    }
}

impl From<NetworkError> for Fault {
    fn from(e: NetworkError) -> Self {
        let conflict = |name, m: String| Fault::new(StatusCode::CONFLICT, name, m);
        match &e {
            NetworkError::NotFound { kind, id } => Fault::not_found(
                not_found_type(*kind),
                format!("{} {id} could not be found.", capitalised(kind.noun())),
            ),
            NetworkError::InvalidCidr { .. }
            | NetworkError::Invalid(_)
            | NetworkError::GatewayOutsideSubnet { .. }
            | NetworkError::InvalidRule(_)
            | NetworkError::OverlappingCidr { .. } => Fault::invalid(e.to_string()),
            NetworkError::AlreadyExists {
                kind: Resource::SecurityGroupRule,
                ..
            } => conflict(
                "SecurityGroupRuleExists",
                format!("Security group rule already exists: {e}"),
            ),
            NetworkError::AlreadyExists { .. } => conflict("Conflict", e.to_string()),
            NetworkError::PoolExhausted { .. } => {
                conflict("IpAddressGenerationFailure", e.to_string())
            }
            NetworkError::AddressInUse { .. } => {
                conflict("IpAddressAlreadyAllocated", e.to_string())
            }
            NetworkError::InUse { kind, .. } => conflict(
                match kind {
                    Resource::Network => "NetworkInUse",
                    Resource::Subnet => "SubnetInUse",
                    Resource::Port => "PortInUse",
                    Resource::Router => "RouterInUse",
                    Resource::SecurityGroup => "SecurityGroupInUse",
                    Resource::FloatingIp => "FloatingIPPortAlreadyAssociated",
                    Resource::SecurityGroupRule => "InUse",
                },
                e.to_string(),
            ),
            NetworkError::CannotDelete { .. } => {
                conflict("SecurityGroupCannotRemoveDefault", e.to_string())
            }
            NetworkError::NotAttached { .. } => {
                Fault::not_found("RouterInterfaceNotFoundForSubnet", e.to_string())
            }
            NetworkError::NotReachable { .. } => {
                Fault::not_found("ExternalGatewayForFloatingIPNotFound", e.to_string())
            }
            NetworkError::QuotaExceeded { .. } | NetworkError::LimitExceeded { .. } => {
                conflict("OverQuota", format!("Quota exceeded for resources: {e}"))
            }
            NetworkError::Conflict(_) => conflict("Conflict", e.to_string()),
            NetworkError::Internal(_) | NetworkError::Identity(_) | NetworkError::Store(_) => {
                Fault::from_core(&e)
            }
        }
    }
}

impl From<nuage_identity::IdentityError> for Fault {
    fn from(e: nuage_identity::IdentityError) -> Self {
        Fault::from_core(&e)
    }
}

impl From<nuage_compute::ComputeError> for Fault {
    fn from(e: nuage_compute::ComputeError) -> Self {
        Fault::from_core(&e)
    }
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        let body =
            json!({"NeutronError": {"type": self.kind, "message": self.message, "detail": ""}});
        (self.status, axum::Json(body)).into_response()
    }
}

pub type Result<T> = std::result::Result<T, Fault>;

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// One recognised Neutron request.
#[derive(Debug)]
enum Op {
    /// `GET /networking/`: the versions document.
    Versions,
    /// `GET /networking/v2.0/`: the resources of v2.0.
    Resources,
    Extensions,
    Extension(String),
    Zones(Listing),
    Networks(networks::Op),
    Ports(ports::Op),
    Routers(routers::Op),
    Security(security::Op),
    Quotas(quotas::Op),
    Tags {
        kind: Resource,
        id: String,
        op: TagOp,
    },
}

/// `/v2.0/{resource}/{id}/tags[/{tag}]`.
#[derive(Debug)]
enum TagOp {
    List,
    Check(String),
    Add(String),
    Replace(Vec<String>),
    Remove(String),
    RemoveAll,
}

/// The collections of v2.0 this door serves, with their member names.
const COLLECTIONS: &[(&str, &str)] = &[
    ("networks", "network"),
    ("subnets", "subnet"),
    ("ports", "port"),
    ("routers", "router"),
    ("floatingips", "floatingip"),
    ("security-groups", "security_group"),
    ("security-group-rules", "security_group_rule"),
    ("quotas", "quota"),
    ("availability_zones", "availability_zone"),
    ("extensions", "extension"),
];

/// The extensions whose behaviour this door serves: (alias, name,
/// description).
const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway."),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway (always on in nuage)."),
    ("security-group", "security-group", "The security groups extension."),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"),
    ("standard-attr-tag", "Tag support for resources with standard attribute: subnet, floatingip, router, security_group, network, port", "Enables to set tag on resources with standard attribute."),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
    ("availability_zone", "Availability Zone", "The availability zone extension."),
    ("network_availability_zone", "Network Availability Zone", "Availability zone support for network."),
    ("router_availability_zone", "Router Availability Zone", "Availability zone support for router."),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("port-security", "Port Security", "Provides port security"),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("project-id", "project_id field enabled", "Extension that indicates that project_id field is enabled."),
    ("sorting", "Sorting support", "Enables sort feature."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("fip-port-details", "Floating IP Port Details Extension", "Add port_details attribute to Floating IP resource"),
    ("filter-validation", "Filter parameters validation", "Provides validation on filter parameters."),
];

/// The request's path below `/networking`, split into segments, a
/// trailing `.json` (older clients) dropped.
fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches("/networking")
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.strip_suffix(".json").unwrap_or(s))
        .collect()
}

impl Op {
    /// Recognises `method path` with its query and body; nothing has
    /// acted yet.
    fn parse(method: &Method, path: &str, query: &[(String, String)], body: &[u8]) -> Result<Op> {
        let segs = segments(path);
        let Some((version, rest)) = segs.split_first() else {
            return match *method {
                Method::GET => Ok(Op::Versions),
                _ => Err(bad_method()),
            };
        };
        if *version != "v2.0" {
            return Err(Fault::not_found(
                "HTTPNotFound",
                format!(
                    "nuage serves the Networking API as v2.0 under /networking/v2.0, not {version}"
                ),
            ));
        }
        let Some((first, more)) = rest.split_first() else {
            return match *method {
                Method::GET => Ok(Op::Resources),
                _ => Err(bad_method()),
            };
        };
        // `/{collection}/{id}/tags[/{tag}]` for the tagged resources.
        if let [id, "tags", tag @ ..] = more {
            let kind = match *first {
                "networks" => Resource::Network,
                "subnets" => Resource::Subnet,
                "ports" => Resource::Port,
                "routers" => Resource::Router,
                "floatingips" => Resource::FloatingIp,
                "security-groups" => Resource::SecurityGroup,
                _ => return Err(unknown(first)),
            };
            let op = match (method.clone(), tag) {
                (Method::GET, []) => TagOp::List,
                (Method::PUT, []) => TagOp::Replace(body_of::<TagsBody>(body)?.tags),
                (Method::DELETE, []) => TagOp::RemoveAll,
                (Method::GET, [t]) => TagOp::Check(decode(t)?),
                (Method::PUT, [t]) => TagOp::Add(decode(t)?),
                (Method::DELETE, [t]) => TagOp::Remove(decode(t)?),
                (_, [] | [_]) => return Err(bad_method()),
                _ => return Err(unknown(first)),
            };
            return Ok(Op::Tags {
                kind,
                id: decode(id)?,
                op,
            });
        }
        match *first {
            "extensions" => match (method.clone(), more) {
                (Method::GET, []) => Ok(Op::Extensions),
                (Method::GET, [alias]) => Ok(Op::Extension(alias.to_string())),
                (_, [] | [_]) => Err(bad_method()),
                _ => Err(unknown(first)),
            },
            "availability_zones" => match (method.clone(), more) {
                (Method::GET, []) => Ok(Op::Zones(Listing::parse(query)?)),
                (_, []) => Err(bad_method()),
                _ => Err(unknown(first)),
            },
            "networks" | "subnets" => {
                networks::Op::parse(method, first, more, query, body).map(Op::Networks)
            }
            "ports" => ports::Op::parse(method, more, query, body).map(Op::Ports),
            "routers" | "floatingips" => {
                routers::Op::parse(method, first, more, query, body).map(Op::Routers)
            }
            "security-groups" | "security-group-rules" => {
                security::Op::parse(method, first, more, query, body).map(Op::Security)
            }
            "quotas" => quotas::Op::parse(method, more, body).map(Op::Quotas),
            other => Err(unknown(other)),
        }
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsBody {
    tags: Vec<String>,
}

/// `404` for a path no resource of v2.0 answers.
pub fn unknown(what: &str) -> Fault {
    Fault::not_found(
        "HTTPNotFound",
        format!("The resource could not be found: the Networking API has no {what} here."),
    )
}

/// `405`, as Neutron answers a method a resource does not take.
pub fn bad_method() -> Fault {
    Fault::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "HTTPMethodNotAllowed",
        "The method specified is not allowed for this resource.",
    )
}

/// A path segment, percent-decoded.
pub fn decode(s: &str) -> Result<String> {
    crate::wire::decode_path(s)
        .ok_or_else(|| Fault::bad_request("a path segment is not UTF-8 text"))
}

/// Parses a JSON body into `T`: malformed JSON, wrong types and unknown
/// attributes are all 400, as Neutron's attribute validation answers them.
pub fn body_of<T: DeserializeOwned>(raw: &[u8]) -> Result<T> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(Fault::bad_request(
            "The request body is empty; it must be a JSON object.",
        ));
    }
    let v: Value = serde_json::from_slice(raw)
        .map_err(|e| Fault::bad_request(format!("Malformed request body: {e}")))?;
    serde_json::from_value(v).map_err(|e| {
        let m = e.to_string();
        if m.starts_with("unknown field") {
            Fault::bad_request(format!("Unrecognized attribute(s): {m}"))
        } else {
            Fault::invalid(format!("Invalid data format: {m}"))
        }
    })
}

/// `{"<member>": {...}}`, the member's object as `T`.
pub fn member_of<T: DeserializeOwned>(raw: &[u8], member: &str) -> Result<T> {
    let mut outer: Map<String, Value> = body_of(raw)?;
    let inner = outer
        .remove(member)
        .ok_or_else(|| Fault::bad_request(format!("Resource body required: {member}")))?;
    if let Some(k) = outer.keys().next() {
        return Err(Fault::bad_request(format!(
            "Unrecognized attribute(s) '{k}' beside {member}"
        )));
    }
    if !inner.is_object() {
        return Err(Fault::bad_request(format!(
            "Invalid format for {member}: it must be an object"
        )));
    }
    body_of(&serde_json::to_vec(&inner).unwrap_or_default())
}

/// An id segment, decoded.
pub fn id_of(s: &str) -> Result<String> {
    decode(s)
}

/// ISO 8601 (seconds, `Z`) from Unix milliseconds, as Neutron's
/// timestamps.
pub fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// The attributes every Neutron resource with standard attributes shows.
pub fn standard(
    v: &mut Map<String, Value>,
    project: &str,
    created_ms: i64,
    revision: i64,
    tags: Vec<String>,
) {
    v.insert("tenant_id".into(), json!(project));
    v.insert("project_id".into(), json!(project));
    v.insert("created_at".into(), json!(iso(created_ms)));
    v.insert("updated_at".into(), json!(iso(created_ms)));
    v.insert("revision_number".into(), json!(revision));
    v.insert("tags".into(), json!(tags));
}

/// Checks a description before anything is made, so a bad one makes
/// nothing (the rule is the network service's).
pub fn check_description(text: Option<&str>) -> Result<()> {
    if let Some(t) = text {
        nuage_network::check_description(t)?;
    }
    Ok(())
}

/// A project id a body names (`project_id` or `tenant_id`) must be the
/// caller's: the core makes resources in the caller's project only.
pub fn own_project(caller: &Principal, a: Option<&str>, b: Option<&str>) -> Result<()> {
    for p in [a, b].into_iter().flatten() {
        if p != caller.project_id {
            return Err(Fault::invalid(format!(
                "nuage creates a resource in the caller's project ({}), not in {p}; scope a token to {p} to create there",
                caller.project_id
            )));
        }
    }
    Ok(())
}

/// The door's base URL, for links.
pub fn base(core: &Core) -> String {
    format!("{}/networking", core.public_url.trim_end_matches('/'))
}

/// A JSON answer with a status.
pub fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// `204 No Content`.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Serves one Networking API request.
pub async fn handle(core: SharedCore, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let mut resp = match serve(&core, &parts, body).await {
        Ok(r) => r,
        Err(f) => f.into_response(),
    };
    if let Ok(v) = HeaderValue::from_str(&context::request_id()) {
        resp.headers_mut().insert("x-openstack-request-id", v);
    }
    resp
}

async fn serve(core: &Core, parts: &http::request::Parts, body: Body) -> Result<Response> {
    let raw = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        Fault::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "HTTPRequestEntityTooLarge",
            format!("The request body is larger than {MAX_BODY} bytes."),
        )
    })?;
    let query = crate::wire::query_pairs(&parts.uri);
    let op = Op::parse(&parts.method, parts.uri.path(), &query, &raw)?;
    match op {
        Op::Versions => {
            return Ok(answer(
                StatusCode::OK,
                json!({"versions": [{
                    "id": "v2.0",
                    "status": "CURRENT",
                    "links": [{"rel": "self", "href": format!("{}/v2.0/", base(core))}],
                }]}),
            ))
        }
        Op::Resources => {
            let resources: Vec<Value> = COLLECTIONS
                .iter()
                .map(|(c, m)| {
                    json!({"name": m, "collection": c,
                        "links": [{"rel": "self", "href": format!("{}/v2.0/{c}", base(core))}]})
                })
                .collect();
            return Ok(answer(StatusCode::OK, json!({ "resources": resources })));
        }
        _ => {}
    }
    let caller = authenticate(core, parts).await?;
    let ctx = Ctx {
        core,
        caller: &caller,
        query: &query,
    };
    match op {
        Op::Versions | Op::Resources => Err(Fault::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "NeutronError",
            "version documents are answered above",
        )),
        Op::Extensions => Ok(answer(
            StatusCode::OK,
            json!({"extensions": EXTENSIONS.iter().map(extension_view).collect::<Vec<_>>()}),
        )),
        Op::Extension(alias) => match EXTENSIONS.iter().find(|e| e.0 == alias) {
            Some(e) => Ok(answer(
                StatusCode::OK,
                json!({"extension": extension_view(e)}),
            )),
            None => Err(Fault::not_found(
                "HTTPNotFound",
                format!("Extension with alias {alias} does not exist"),
            )),
        },
        Op::Zones(listing) => {
            let zones = core.compute.availability_zones(&caller).await?;
            let mut items = Vec::new();
            for z in &zones {
                for resource in ["network", "router"] {
                    let mut m = Map::new();
                    m.insert("name".into(), json!(z.name));
                    m.insert("resource".into(), json!(resource));
                    m.insert("state".into(), json!(z.state));
                    items.push(m);
                }
            }
            listing.answer(core, "availability_zones", ZONE_ATTRS, items)
        }
        Op::Networks(op) => op.run(&ctx).await,
        Op::Ports(op) => op.run(&ctx).await,
        Op::Routers(op) => op.run(&ctx).await,
        Op::Security(op) => op.run(&ctx).await,
        Op::Quotas(op) => op.run(&ctx).await,
        Op::Tags { kind, id, op } => tags(&ctx, kind, &id, op).await,
    }
}

const ZONE_ATTRS: &[&str] = &["name", "resource", "state"];

fn extension_view(e: &(&str, &str, &str)) -> Value {
    json!({"alias": e.0, "name": e.1, "description": e.2, "links": [], "updated": "2013-01-20T00:00:00-00:00"})
}

/// What every handler needs: the core, the caller, the query.
pub struct Ctx<'a> {
    pub core: &'a Core,
    pub caller: &'a Principal,
    pub query: &'a [(String, String)],
}

impl Ctx<'_> {
    /// Whether lists span every project (Neutron's admin sees them all,
    /// and narrows with `project_id`/`tenant_id` filters).
    pub fn all_projects(&self) -> bool {
        self.caller.is_admin()
    }

    /// Fills in the stored descriptions of `items` (views whose `id` has
    /// one), from one query.
    pub async fn describe(&self, items: &mut [Map<String, Value>]) -> Result<()> {
        let all = self
            .core
            .network
            .descriptions(self.caller, self.all_projects())
            .await?;
        if all.is_empty() {
            return Ok(());
        }
        for item in items.iter_mut() {
            let text = item
                .get("id")
                .and_then(Value::as_str)
                .and_then(|id| all.get(id));
            if let Some(text) = text {
                item.insert("description".into(), json!(text));
            }
        }
        Ok(())
    }

    /// One view with its description filled in.
    pub async fn described(&self, v: Map<String, Value>) -> Result<Map<String, Value>> {
        let mut items = [v];
        self.describe(&mut items).await?;
        let [v] = items;
        Ok(v)
    }

    /// Sets the description given to a resource just made or changed:
    /// `None` (not given) changes nothing.
    pub async fn set_description(
        &self,
        kind: Resource,
        id: &str,
        text: Option<&str>,
    ) -> Result<()> {
        if let Some(text) = text {
            self.core
                .network
                .set_description(self.caller, kind, id, text)
                .await?;
        }
        Ok(())
    }

    /// The tags of the caller's project's network resources, as Neutron's
    /// strings: an EC2 tag with a value shows as `key=value`.
    pub async fn tags(&self) -> Result<std::collections::BTreeMap<String, Vec<String>>> {
        let all = self.core.network.tags(self.caller).await?;
        Ok(all
            .into_iter()
            .map(|(id, kv)| {
                (
                    id,
                    kv.into_iter().map(|(k, v)| tag_string(&k, &v)).collect(),
                )
            })
            .collect())
    }
}

/// One EC2 key/value tag as a Neutron tag string.
fn tag_string(k: &str, v: &str) -> String {
    if v.is_empty() {
        k.to_string()
    } else {
        format!("{k}={v}")
    }
}

/// The tag sub-resource: Neutron's tags are strings, stored as EC2 tags
/// with an empty value, so one tag set serves both doors.
async fn tags(ctx: &Ctx<'_>, kind: Resource, id: &str, op: TagOp) -> Result<Response> {
    let net = &ctx.core.network;
    let caller = ctx.caller;
    if nuage_network::tags::kind_of(id) != Some(kind) {
        return Err(NetworkError::not_found(kind, id).into());
    }
    // The resource must be one the caller sees, whatever the operation;
    // a change is checked again (ownership, the member role) by the core.
    match kind {
        Resource::Network => net.get_network(caller, id).await.map(drop),
        Resource::Subnet => net.get_subnet(caller, id).await.map(drop),
        Resource::Port => net.get_port(caller, id).await.map(drop),
        Resource::Router => net.get_router(caller, id).await.map(drop),
        Resource::FloatingIp => net.get_floating_ip(caller, id).await.map(drop),
        Resource::SecurityGroup => net.get_security_group(caller, id).await.map(drop),
        Resource::SecurityGroupRule => Err(NetworkError::not_found(kind, id)),
    }?;
    let current = ctx.tags().await?.remove(id).unwrap_or_default();
    let check = |t: &str| -> Result<()> {
        if t.is_empty() || t.chars().count() > 60 || t.contains(',') {
            return Err(Fault::invalid(format!(
                "'{t}' is not a valid tag: 1 to 60 characters, no comma"
            )));
        }
        Ok(())
    };
    let removal = |t: &str| -> (String, Option<String>) {
        match t.split_once('=') {
            Some((k, v)) if !current.iter().any(|c| c == t && !c.contains('=')) => {
                (k.to_string(), Some(v.to_string()))
            }
            _ => (t.to_string(), None),
        }
    };
    match op {
        TagOp::List => Ok(answer(StatusCode::OK, json!({ "tags": current }))),
        TagOp::Check(t) => {
            if current.contains(&t) {
                Ok(no_content())
            } else {
                Err(Fault::not_found(
                    "TagNotFound",
                    format!("Tag {t} could not be found for resource {id}."),
                ))
            }
        }
        TagOp::Add(t) => {
            check(&t)?;
            if !current.contains(&t) {
                let set = [(t, String::new())].into_iter().collect();
                net.set_tags(caller, id, &set, &[]).await?;
            }
            Ok(no_content())
        }
        TagOp::Replace(new) => {
            for t in &new {
                check(t)?;
            }
            let remove: Vec<_> = current.iter().map(|t| removal(t)).collect();
            let set = new.iter().map(|t| (t.clone(), String::new())).collect();
            net.set_tags(caller, id, &set, &remove).await?;
            Ok(answer(StatusCode::OK, json!({ "tags": new })))
        }
        TagOp::Remove(t) => {
            if !current.contains(&t) {
                return Err(Fault::not_found(
                    "TagNotFound",
                    format!("Tag {t} could not be found for resource {id}."),
                ));
            }
            net.set_tags(caller, id, &Default::default(), &[removal(&t)])
                .await?;
            Ok(no_content())
        }
        TagOp::RemoveAll => {
            let remove: Vec<_> = current.iter().map(|t| removal(t)).collect();
            if !remove.is_empty() {
                net.set_tags(caller, id, &Default::default(), &remove)
                    .await?;
            }
            Ok(no_content())
        }
    }
}

/// The caller of a request, from its Keystone token.
async fn authenticate(core: &Core, parts: &http::request::Parts) -> Result<Principal> {
    let unauthenticated = || {
        Fault::new(
            StatusCode::UNAUTHORIZED,
            "HTTPUnauthorized",
            "The request you have made requires authentication.",
        )
    };
    let Some(token) = auth::token(parts) else {
        return Err(unauthenticated());
    };
    core.identity.validate(token).await.map_err(|e| {
        let (kind, message) = context::public_error(&e);
        match kind {
            ErrorKind::Internal | ErrorKind::Unavailable => Fault::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceUnavailable",
                message,
            ),
            _ => unauthenticated(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<Op>) -> Option<u16> {
        r.map_err(|f| f.status.as_u16()).err()
    }

    #[test]
    fn paths_are_recognised_before_anything_acts() {
        let get = |p: &str| Op::parse(&Method::GET, p, &[], b"");
        assert!(matches!(get("/networking"), Ok(Op::Versions)));
        assert!(matches!(get("/networking/v2.0/"), Ok(Op::Resources)));
        assert!(matches!(
            get("/networking/v2.0/networks"),
            Ok(Op::Networks(_))
        ));
        assert!(matches!(
            get("/networking/v2.0/networks.json"),
            Ok(Op::Networks(_))
        ));
        assert!(matches!(
            get("/networking/v2.0/ports/eni-1/tags"),
            Ok(Op::Tags {
                kind: Resource::Port,
                ..
            })
        ));
        assert_eq!(code(get("/networking/v2.0/rockets")), Some(404));
        assert_eq!(code(get("/networking/v3/networks")), Some(404));
        assert_eq!(
            code(get("/networking/v2.0/networks/vpc-1/rockets")),
            Some(404)
        );
        assert_eq!(
            code(Op::parse(
                &Method::PATCH,
                "/networking/v2.0/networks",
                &[],
                b""
            )),
            Some(405)
        );
        assert_eq!(
            code(Op::parse(
                &Method::POST,
                "/networking/v2.0/networks",
                &[],
                b"{"
            )),
            Some(400)
        );
        assert_eq!(
            code(Op::parse(
                &Method::POST,
                "/networking/v2.0/networks",
                &[],
                br#"{"network": {"name": "a", "colour": "red"}}"#
            )),
            Some(400)
        );
        assert_eq!(
            code(Op::parse(
                &Method::POST,
                "/networking/v2.0/networks",
                &[],
                br#"{"network": {"name": 7}}"#
            )),
            Some(400)
        );
    }

    #[test]
    fn core_errors_take_neutrons_names() {
        let f: Fault = NetworkError::not_found(Resource::Network, "vpc-1").into();
        assert_eq!((f.status.as_u16(), f.kind), (404, "NetworkNotFound"));
        let f: Fault = NetworkError::in_use(Resource::Subnet, "subnet-1", "x").into();
        assert_eq!((f.status.as_u16(), f.kind), (409, "SubnetInUse"));
        let f: Fault = NetworkError::AddressInUse {
            subnet: "s".into(),
            ip: "10.0.0.5".into(),
        }
        .into();
        assert_eq!(
            (f.status.as_u16(), f.kind),
            (409, "IpAddressAlreadyAllocated")
        );
        let f: Fault = NetworkError::QuotaExceeded {
            resource: "floating_ips",
            limit: 1,
            used: 1,
        }
        .into();
        assert_eq!((f.status.as_u16(), f.kind), (409, "OverQuota"));
    }
}
