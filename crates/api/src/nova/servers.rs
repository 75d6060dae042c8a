//! `/servers`: Nova servers are the compute service's instances, made,
//! listed and changed through the same calls the EC2 door makes (ADR 31).
//! The door only translates: Nova's names for flavors, images, networks
//! and security groups into the core's ids, Nova's filters into the
//! core's, and instances into Nova's views.

use std::collections::{BTreeMap, HashMap};

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode};
use nuage_compute::types::{Instance, State};
use nuage_compute::{Action, InstanceQuery, RunRequest};
use nuage_model::identity::Principal;
use nuage_model::{ErrorKind, HasKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::server_actions::ServerAction;
use super::server_views::{self as views, ViewCtx};
use super::{answer, bad_method, base, body, param, Fault, Result, Version};
use crate::Core;

/// Nova's largest page (`[api] max_limit`).
const MAX_LIMIT: usize = 1000;

#[derive(Debug)]
pub enum Op {
    Create(Box<CreateBody>),
    List { detail: bool, query: Box<ListQuery> },
    Show(String),
    Update(String, Box<UpdateServer>),
    Delete(String),
    Action(String, ServerAction),
    Metadata(String, MetaOp),
    Tags(String, TagOp),
}

/// `/servers/{id}/metadata[/key]`.
#[derive(Debug)]
pub enum MetaOp {
    List,
    /// PUT: the metadata become exactly these.
    Replace(BTreeMap<String, String>),
    /// POST: these are added or replaced.
    Merge(BTreeMap<String, String>),
    Get(String),
    Set(String, BTreeMap<String, String>),
    Delete(String),
}

/// `/servers/{id}/tags[/tag]` (2.26).
#[derive(Debug)]
pub enum TagOp {
    List,
    Replace(Vec<String>),
    DeleteAll,
    Check(String),
    Add(String),
    Delete(String),
}

/// `POST /servers`' body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    server: NewServer,
    #[serde(default, rename = "os:scheduler_hints")]
    scheduler_hints: Option<SchedulerHints>,
    #[serde(default, rename = "OS-SCH-HNT:scheduler_hints")]
    old_scheduler_hints: Option<SchedulerHints>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchedulerHints {
    /// A server group's id: the core's placement group.
    #[serde(default)]
    group: Option<String>,
}

/// The `server` object of a create.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewServer {
    name: String,
    #[serde(rename = "flavorRef")]
    flavor_ref: String,
    #[serde(default, rename = "imageRef")]
    image_ref: Option<String>,
    #[serde(default)]
    key_name: Option<String>,
    #[serde(default)]
    security_groups: Option<Vec<NamedGroup>>,
    #[serde(default)]
    networks: Option<Networks>,
    #[serde(default)]
    user_data: Option<String>,
    #[serde(default)]
    metadata: Option<BTreeMap<String, String>>,
    #[serde(default)]
    availability_zone: Option<String>,
    #[serde(default)]
    min_count: Option<u32>,
    #[serde(default)]
    max_count: Option<u32>,
    #[serde(default)]
    return_reservation_id: Option<bool>,
    /// 2.19 and later.
    #[serde(default)]
    description: Option<String>,
    /// 2.52 and later.
    #[serde(default)]
    tags: Option<Vec<String>>,
    /// `AUTO` or `MANUAL`: containers have no partitions to grow; taken
    /// and shown as MANUAL.
    #[serde(default, rename = "OS-DCF:diskConfig")]
    disk_config: Option<String>,
    #[serde(default)]
    config_drive: Option<Value>,
    /// Refused with a reason: a container is booted from its image.
    #[serde(default)]
    block_device_mapping_v2: Option<Value>,
    #[serde(default, rename = "adminPass")]
    admin_pass: Option<String>,
    #[serde(default)]
    personality: Option<Value>,
    #[serde(default, rename = "accessIPv4")]
    access_ipv4: Option<String>,
    #[serde(default, rename = "accessIPv6")]
    access_ipv6: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NamedGroup {
    name: String,
}

/// `networks`: `"auto"`, `"none"` or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Networks {
    Word(String),
    List(Vec<NetworkRequest>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkRequest {
    #[serde(default)]
    uuid: Option<String>,
    #[serde(default)]
    port: Option<String>,
    #[serde(default)]
    fixed_ip: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    server: UpdateServer,
}

/// `PUT /servers/{id}`'s `server`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateServer {
    #[serde(default)]
    name: Option<String>,
    /// 2.19 and later; null clears it.
    #[serde(default, deserialize_with = "some_value")]
    description: Option<Option<String>>,
    #[serde(default, rename = "accessIPv4")]
    access_ipv4: Option<String>,
    #[serde(default, rename = "accessIPv6")]
    access_ipv6: Option<String>,
    #[serde(default, rename = "OS-DCF:diskConfig")]
    disk_config: Option<String>,
}

/// A field that may be given as null (Some(None)) or absent (None).
fn some_value<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetadataBody {
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MetaBody {
    meta: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TagsBody {
    tags: Vec<String>,
}

/// `GET /servers[/detail]`'s filters, sort and page, as Nova reads them.
#[derive(Debug, Default)]
pub struct ListQuery {
    name: Option<regex::Regex>,
    ip: Option<regex::Regex>,
    status: Option<String>,
    image: Option<String>,
    flavor: Option<String>,
    availability_zone: Option<String>,
    key_name: Option<String>,
    reservation_id: Option<String>,
    host: Option<String>,
    changes_since: Option<i64>,
    all_tenants: bool,
    project_id: Option<String>,
    user_id: Option<String>,
    tags: Vec<String>,
    tags_any: Vec<String>,
    not_tags: Vec<String>,
    not_tags_any: Vec<String>,
    sort: Vec<(String, bool)>,
    limit: Option<usize>,
    marker: Option<String>,
}

fn regex_param(query: &[(String, String)], name: &str) -> Result<Option<regex::Regex>> {
    param(query, name)
        .map(|p| {
            regex::Regex::new(p).map_err(|e| {
                Fault::bad_request(format!("Invalid regular expression {name}={p}: {e}"))
            })
        })
        .transpose()
}

fn list_of(query: &[(String, String)], name: &str) -> Vec<String> {
    param(query, name)
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// An ISO 8601 time as milliseconds.
fn parse_time(name: &str, s: &str) -> Result<i64> {
    let invalid = || {
        Fault::bad_request(format!(
            "Invalid input for query parameters {name}. Value: {s}. '{s}' is not a 'date-time'"
        ))
    };
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .map(|t| t.and_utc().timestamp_millis())
        .map_err(|_| invalid())
}

/// The sort keys Nova accepts (its `SERVER_LIST_SORT_KEYS`, those nuage
/// has), with `uuid`, `display_name` and the times.
const SORT_KEYS: &[&str] = &[
    "created_at",
    "updated_at",
    "launched_at",
    "terminated_at",
    "display_name",
    "uuid",
    "id",
    "vm_state",
    "task_state",
    "power_state",
    "availability_zone",
    "instance_type_id",
    "image_ref",
    "key_name",
    "host",
    "node",
    "hostname",
    "launch_index",
    "project_id",
    "user_id",
    "reservation_id",
];

impl ListQuery {
    fn parse(query: &[(String, String)]) -> Result<ListQuery> {
        let limit = param(query, "limit")
            .map(|l| match l.parse::<usize>() {
                Ok(n) => Ok(n.min(MAX_LIMIT)),
                Err(_) => Err(Fault::bad_request(format!(
                    "Invalid input for query parameters limit. Value: {l}. '{l}' does not match '^[0-9]*$'"
                ))),
            })
            .transpose()?;
        let truthy = |v: &str| {
            !matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "off" | "no"
            )
        };
        let keys: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "sort_key")
            .map(|(_, v)| v.as_str())
            .collect();
        let dirs: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "sort_dir")
            .map(|(_, v)| v.as_str())
            .collect();
        let mut sort = Vec::new();
        for (n, key) in keys.iter().enumerate() {
            if !SORT_KEYS.contains(key) {
                return Err(Fault::bad_request(format!(
                    "Invalid input for query parameters sort_key. Value: {key}. '{key}' is not one of {SORT_KEYS:?}"
                )));
            }
            let desc = match dirs.get(n).or(dirs.last()).copied().unwrap_or("desc") {
                "asc" => false,
                "desc" => true,
                other => {
                    return Err(Fault::bad_request(format!(
                        "Invalid input for query parameters sort_dir. Value: {other}. '{other}' is not one of ['asc', 'desc']"
                    )))
                }
            };
            sort.push((key.to_string(), desc));
        }
        if sort.is_empty() {
            let desc = dirs.first().is_none_or(|d| *d != "asc");
            sort.push(("created_at".to_string(), desc));
        }
        Ok(ListQuery {
            name: regex_param(query, "name")?,
            ip: regex_param(query, "ip")?,
            status: param(query, "status").map(|s| s.to_ascii_uppercase()),
            image: param(query, "image").map(ref_id),
            flavor: param(query, "flavor").map(ref_id),
            availability_zone: param(query, "availability_zone").map(String::from),
            key_name: param(query, "key_name").map(String::from),
            reservation_id: param(query, "reservation_id").map(String::from),
            host: param(query, "host")
                .or(param(query, "node"))
                .map(String::from),
            changes_since: param(query, "changes-since")
                .or(param(query, "changes_since"))
                .map(|t| parse_time("changes-since", t))
                .transpose()?,
            all_tenants: param(query, "all_tenants").is_some_and(truthy),
            project_id: param(query, "project_id")
                .or(param(query, "tenant_id"))
                .map(String::from),
            user_id: param(query, "user_id").map(String::from),
            tags: list_of(query, "tags"),
            tags_any: list_of(query, "tags-any"),
            not_tags: list_of(query, "not-tags"),
            not_tags_any: list_of(query, "not-tags-any"),
            sort,
            limit,
            marker: param(query, "marker").map(String::from),
        })
    }

    /// The filters the core answers (it narrows in the store).
    fn core_query(&self, caller: &Principal) -> InstanceQuery {
        let mut filters: Vec<(String, Vec<String>)> = Vec::new();
        let mut eq = |name: &str, v: &Option<String>| {
            if let Some(v) = v {
                filters.push((name.to_string(), vec![v.clone()]));
            }
        };
        eq("image-id", &self.image);
        eq("instance-type", &self.flavor);
        eq("availability-zone", &self.availability_zone);
        eq("key-name", &self.key_name);
        eq("reservation-id", &self.reservation_id);
        let admin = caller.is_admin();
        // Nova drops the admin-only filters of other callers.
        if admin {
            eq("node", &self.host);
            if self.all_tenants {
                eq("owner-id", &self.project_id);
            }
        }
        for t in &self.tags {
            filters.push((format!("tag:{}{t}", views::TAG_PREFIX), Vec::new()));
        }
        InstanceQuery {
            filters,
            all_projects: admin && self.all_tenants,
            ..InstanceQuery::default()
        }
    }

    /// The filters the door applies to what the core returned.
    fn keeps(&self, i: &Instance) -> bool {
        let st = i.nova_state();
        if i.state == State::Terminated && self.changes_since.is_none() {
            return false;
        }
        let has = |t: &String| i.tags.contains_key(&format!("{}{t}", views::TAG_PREFIX));
        self.name
            .as_ref()
            .is_none_or(|r| r.is_match(views::name(i)))
            && self.status.as_ref().is_none_or(|s| s == st.status)
            && self.ip.as_ref().is_none_or(|r| {
                i.network_interfaces.iter().any(|n| {
                    r.is_match(&n.private_ip) || n.public_ip.as_ref().is_some_and(|p| r.is_match(p))
                })
            })
            && self
                .changes_since
                .is_none_or(|t| i.launch_ms >= t || i.terminated_ms.is_some_and(|d| d >= t))
            && self.user_id.as_ref().is_none_or(|u| *u == i.user_id)
            && (self.tags_any.is_empty() || self.tags_any.iter().any(has))
            && (self.not_tags.is_empty() || !self.not_tags.iter().all(has))
            && !self.not_tags_any.iter().any(has)
    }

    fn sort(&self, items: &mut [Instance]) {
        let key = |i: &Instance, k: &str| -> String {
            let st = i.nova_state();
            match k {
                "display_name" => views::name(i).to_string(),
                "uuid" | "id" => i.id.clone(),
                "updated_at" | "terminated_at" => {
                    format!("{:016x}", i.terminated_ms.unwrap_or(i.launch_ms))
                }
                "vm_state" => st.vm_state.to_string(),
                "task_state" => st.task_state.unwrap_or_default().to_string(),
                "power_state" => st.power_state.to_string(),
                "availability_zone" => i.availability_zone.clone(),
                "instance_type_id" => i.instance_type.clone(),
                "image_ref" => i.image_id.clone(),
                "key_name" => i.key_name.clone().unwrap_or_default(),
                "host" | "node" => i.node.clone(),
                "hostname" => i.hostname.clone(),
                "launch_index" => format!("{:08x}", i.launch_index),
                "project_id" => i.project_id.clone(),
                "user_id" => i.user_id.clone(),
                "reservation_id" => i.reservation_id.clone(),
                // created_at, launched_at: launch order.
                _ => format!("{:016x}:{:08x}", i.launch_ms, i.launch_index),
            }
        };
        items.sort_by(|a, b| {
            for (k, desc) in &self.sort {
                let o = key(a, k).cmp(&key(b, k));
                let o = if *desc { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            // Nova's last key, the id, in the first key's direction.
            let o = a.id.cmp(&b.id);
            if self.sort.first().is_some_and(|(_, d)| *d) {
                o.reverse()
            } else {
                o
            }
        });
    }
}

/// The id in a reference that may be a link (`…/flavors/m1.tiny`).
fn ref_id(r: &str) -> String {
    r.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(r)
        .to_string()
}

impl Op {
    pub fn parse(
        method: &Method,
        rest: &[&str],
        query: &[(String, String)],
        raw: &[u8],
    ) -> Result<Op> {
        let id = |s: &str| s.to_string();
        match (method.clone(), rest) {
            (Method::GET, []) => Ok(Op::List {
                detail: false,
                query: Box::new(ListQuery::parse(query)?),
            }),
            (Method::GET, ["detail"]) => Ok(Op::List {
                detail: true,
                query: Box::new(ListQuery::parse(query)?),
            }),
            (Method::POST, []) => Ok(Op::Create(Box::new(body::<CreateBody>(raw)?))),
            (_, [] | ["detail"]) => Err(bad_method()),
            (Method::GET, [s]) => Ok(Op::Show(id(s))),
            (Method::PUT, [s]) => Ok(Op::Update(id(s), Box::new(body::<UpdateBody>(raw)?.server))),
            (Method::DELETE, [s]) => Ok(Op::Delete(id(s))),
            (_, [_]) => Err(bad_method()),
            (Method::POST, [s, "action"]) => Ok(Op::Action(id(s), ServerAction::parse(raw)?)),
            (_, [_, "action"]) => Err(bad_method()),
            (m, [s, "metadata"]) => {
                let op = match m {
                    Method::GET => MetaOp::List,
                    Method::PUT => MetaOp::Replace(body::<MetadataBody>(raw)?.metadata),
                    Method::POST => MetaOp::Merge(body::<MetadataBody>(raw)?.metadata),
                    _ => return Err(bad_method()),
                };
                Ok(Op::Metadata(id(s), op))
            }
            (m, [s, "metadata", key]) => {
                let op = match m {
                    Method::GET => MetaOp::Get(id(key)),
                    Method::PUT => MetaOp::Set(id(key), body::<MetaBody>(raw)?.meta),
                    Method::DELETE => MetaOp::Delete(id(key)),
                    _ => return Err(bad_method()),
                };
                Ok(Op::Metadata(id(s), op))
            }
            (m, [s, "tags"]) => {
                let op = match m {
                    Method::GET => TagOp::List,
                    Method::PUT => TagOp::Replace(body::<TagsBody>(raw)?.tags),
                    Method::DELETE => TagOp::DeleteAll,
                    _ => return Err(bad_method()),
                };
                Ok(Op::Tags(id(s), op))
            }
            (m, [s, "tags", tag]) => {
                let op = match m {
                    Method::GET => TagOp::Check(id(tag)),
                    Method::PUT => TagOp::Add(id(tag)),
                    Method::DELETE => TagOp::Delete(id(tag)),
                    _ => return Err(bad_method()),
                };
                Ok(Op::Tags(id(s), op))
            }
            (_, [_, sub, ..]) => Err(Fault::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("nuage does not serve /servers/{{id}}/{sub} through the Compute API"),
            )),
        }
    }

    pub async fn run(self, core: &Core, caller: &Principal, v: Version) -> Result<Response> {
        match self {
            Op::Create(b) => create(core, caller, v, *b).await,
            Op::List { detail, query } => list(core, caller, v, detail, *query).await,
            Op::Show(id) => {
                let i = server(core, caller, &id).await?;
                let ctx = view_ctx(core, caller, v, false).await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({"server": views::detail(&i, &ctx)}),
                ))
            }
            Op::Update(id, u) => update(core, caller, v, &id, *u).await,
            Op::Delete(id) => {
                let i = server(core, caller, &id).await?;
                if i.state != State::ShuttingDown {
                    core.compute
                        .act(
                            caller,
                            Action::Terminate,
                            std::slice::from_ref(&i.id),
                            false,
                        )
                        .await
                        .map_err(|e| state_fault(e, &i, "delete"))?;
                }
                Ok(StatusCode::NO_CONTENT.into_response())
            }
            Op::Action(id, a) => a.run(core, caller, v, &id).await,
            Op::Metadata(id, op) => metadata(core, caller, &id, op).await,
            Op::Tags(id, op) => {
                if !v.at_least(26) {
                    return Err(Fault::not_found(
                        "The resource could not be found: server tags need microversion 2.26 or later.",
                    ));
                }
                tags(core, caller, &id, op).await
            }
        }
    }
}

/// Nova's words for a server the caller cannot see.
pub fn server_not_found(id: &str) -> Fault {
    Fault::not_found(format!("Instance {id} could not be found."))
}

/// The caller's server `id`; unknown, foreign, malformed or deleted ids
/// are all "not found", as in Nova.
pub async fn server(core: &Core, caller: &Principal, id: &str) -> Result<Instance> {
    let i = core
        .compute
        .get_instance(caller, id)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound | ErrorKind::Invalid | ErrorKind::Forbidden => server_not_found(id),
            _ => e.into(),
        })?;
    if i.state == State::Terminated {
        return Err(server_not_found(id));
    }
    Ok(i)
}

/// A core error of an action on `i`, with Nova's message for a state the
/// action cannot be taken in.
pub fn state_fault(e: nuage_compute::ComputeError, i: &Instance, action: &str) -> Fault {
    match e {
        nuage_compute::ComputeError::IncorrectState { .. } => conflict(i, action),
        e => e.into(),
    }
}

/// `409`: "Cannot '<action>' instance <id> while it is in vm_state <s>".
pub fn conflict(i: &Instance, action: &str) -> Fault {
    let st = i.nova_state();
    let what = match st.task_state {
        Some(t) => format!("task_state {t}"),
        None => format!("vm_state {}", st.vm_state),
    };
    Fault::new(
        StatusCode::CONFLICT,
        format!("Cannot '{action}' instance {} while it is in {what}", i.id),
    )
}

/// The view context: one read of the networks' names per answer.
pub async fn view_ctx<'a>(
    core: &Core,
    caller: &'a Principal,
    v: Version,
    all_projects: bool,
) -> Result<ViewCtx<'a>> {
    let networks = core
        .network
        .list_networks(caller, all_projects && caller.is_admin())
        .await
        .map_err(|e| Fault::from_core(&e))?
        .into_iter()
        .map(|n| (n.id, n.name))
        .collect::<HashMap<_, _>>();
    Ok(ViewCtx {
        base: base(core),
        caller,
        version: v,
        networks,
    })
}

async fn list(
    core: &Core,
    caller: &Principal,
    v: Version,
    detail: bool,
    q: ListQuery,
) -> Result<Response> {
    if q.all_tenants && !caller.is_admin() {
        return Err(Fault::new(
            StatusCode::FORBIDDEN,
            "Policy doesn't allow os_compute_api:servers:index:get_all_tenants to be performed.",
        ));
    }
    // One scan: the core narrows in the store and reads the addresses of
    // what it returns in batches; the door filters, sorts and pages.
    let mut items = core
        .compute
        .describe_instances(caller, &q.core_query(caller))
        .await?
        .items;
    items.retain(|i| q.keeps(i));
    q.sort(&mut items);
    let start = match &q.marker {
        None => 0,
        Some(m) => {
            items
                .iter()
                .position(|i| &i.id == m)
                .ok_or_else(|| Fault::bad_request(format!("marker [{m}] not found")))?
                + 1
        }
    };
    let limit = q.limit.unwrap_or(MAX_LIMIT);
    let page = &items[start.min(items.len())..(start + limit).min(items.len())];
    let ctx = view_ctx(core, caller, v, q.all_tenants).await?;
    let servers: Vec<Value> = page
        .iter()
        .map(|i| {
            if detail {
                views::detail(i, &ctx)
            } else {
                views::brief(i, &ctx)
            }
        })
        .collect();
    let mut out = json!({ "servers": servers });
    // Nova links the next page whenever a page is full.
    if let (Some(last), true) = (page.last(), page.len() == limit && limit > 0) {
        let path = if detail { "servers/detail" } else { "servers" };
        out["servers_links"] = json!([{
            "rel": "next",
            "href": format!("{}/v2.1/{path}?limit={limit}&marker={}", ctx.base, last.id),
        }]);
    }
    Ok(answer(StatusCode::OK, out))
}

/// Refuses keys a Nova schema would not take at this microversion.
fn unexpected(field: &str) -> Fault {
    Fault::bad_request(format!(
        "Invalid input for field/attribute server. Additional properties are not allowed ('{field}' was unexpected)"
    ))
}

/// Metadata as Nova checks it, and never one of the door's own keys.
fn check_metadata(m: &BTreeMap<String, String>) -> Result<()> {
    for (k, v) in m {
        if k.is_empty() || k.len() > 255 || v.len() > 255 {
            return Err(Fault::bad_request(format!(
                "Invalid input for field/attribute metadata. Value: {k}. keys are 1 to 255 characters, values at most 255"
            )));
        }
        if views::reserved(k) {
            return Err(Fault::bad_request(format!(
                "metadata key {k:?} is reserved: nuage keeps the server's name in the Name tag and its description and tags under nova:"
            )));
        }
    }
    Ok(())
}

fn check_tag(t: &str) -> Result<()> {
    if t.is_empty() || t.len() > 60 || t.contains(['/', ',']) {
        return Err(Fault::bad_request(format!(
            "Invalid input for tag {t:?}: tags are 1 to 60 characters without '/' or ','"
        )));
    }
    Ok(())
}

async fn create(core: &Core, caller: &Principal, v: Version, b: CreateBody) -> Result<Response> {
    let s = b.server;
    if s.description.is_some() && !v.at_least(19) {
        return Err(unexpected("description"));
    }
    if s.tags.is_some() && !v.at_least(52) {
        return Err(unexpected("tags"));
    }
    if s.personality.is_some() {
        if v.at_least(57) {
            return Err(unexpected("personality"));
        }
        return Err(Fault::bad_request(
            "nuage does not inject files (personality); pass them in user_data",
        ));
    }
    if s.block_device_mapping_v2.is_some() {
        return Err(Fault::bad_request(
            "nuage boots a server from its image (imageRef); block device mappings and volumes are not supported",
        ));
    }
    if s.admin_pass.is_some() {
        return Err(Fault::bad_request(
            "nuage's servers have no administrator password to set; use key_name",
        ));
    }
    if s.access_ipv4.as_deref().is_some_and(|a| !a.is_empty())
        || s.access_ipv6.as_deref().is_some_and(|a| !a.is_empty())
    {
        return Err(Fault::bad_request(
            "nuage does not record accessIPv4/accessIPv6; a server's addresses are its ports'",
        ));
    }
    if let Some(d) = &s.disk_config {
        if d != "AUTO" && d != "MANUAL" {
            return Err(Fault::bad_request(format!(
                "Invalid input for field/attribute OS-DCF:diskConfig. Value: {d}. '{d}' is not one of ['AUTO', 'MANUAL']"
            )));
        }
    }
    let no_drive = |c: &Value| match c {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty() || s == "false",
        _ => false,
    };
    if s.config_drive.as_ref().is_some_and(|c| !no_drive(c)) {
        return Err(Fault::bad_request(
            "nuage has no config drive; instances read their metadata and user data from the metadata service",
        ));
    }
    if s.name.trim().is_empty() || s.name.len() > 255 {
        return Err(Fault::bad_request(
            "Invalid input for field/attribute name. The name is 1 to 255 characters, not only spaces.",
        ));
    }
    let Some(image_ref) = s.image_ref.as_deref().filter(|r| !r.is_empty()) else {
        return Err(Fault::bad_request(
            "nuage boots a server from an image: imageRef is required",
        ));
    };
    let image_id = ref_id(image_ref);
    let flavor = ref_id(&s.flavor_ref);
    let mut tags = s.metadata.clone().unwrap_or_default();
    check_metadata(&tags)?;
    tags.insert(views::NAME_TAG.to_string(), s.name.clone());
    if let Some(d) = &s.description {
        tags.insert(views::DESCRIPTION_TAG.to_string(), d.clone());
    }
    for t in s.tags.iter().flatten() {
        check_tag(t)?;
        tags.insert(format!("{}{t}", views::TAG_PREFIX), String::new());
    }
    // What Nova's create checks, with its messages, before the core.
    match core.compute.get_instance_type(caller, &flavor).await {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Fault::bad_request(format!(
                "Flavor {flavor} could not be found."
            )))
        }
        Err(e) => return Err(e.into()),
    }
    match core.compute.get_image(caller, &image_id).await {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(Fault::bad_request(format!(
                "Image {image_id} could not be found."
            )))
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(k) = &s.key_name {
        match core.compute.get_key_pair(caller, k).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(Fault::bad_request("Invalid key_name provided."))
            }
            Err(e) => return Err(e.into()),
        }
    }
    let (network_id, private_ip) = networks(core, caller, s.networks.as_ref()).await?;
    let security_groups = match &s.security_groups {
        None => None,
        Some(named) => Some(group_ids(core, caller, named.iter().map(|g| g.name.as_str())).await?),
    };
    let hints = b
        .scheduler_hints
        .or(b.old_scheduler_hints)
        .unwrap_or_default();
    let min = s.min_count.unwrap_or(1);
    let max = s.max_count.unwrap_or(min);
    if max < min {
        return Err(Fault::bad_request("min_count must be <= max_count"));
    }
    let req = RunRequest {
        image_id,
        instance_type: flavor,
        min_count: Some(min),
        max_count: Some(max),
        key_name: s.key_name.clone(),
        user_data: s.user_data.clone(),
        tags,
        availability_zone: s.availability_zone.clone().map(|az| {
            // `zone:host` places on a host for admins in Nova; nuage's
            // scheduler takes the zone.
            az.split(':').next().unwrap_or_default().to_string()
        }),
        placement_group: hints.group,
        network_id,
        security_groups,
        private_ip_address: private_ip,
        ..RunRequest::default()
    };
    let made = core
        .compute
        .run_instances(caller, req)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::InsufficientCapacity => Fault::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("No valid host was found. {e}"),
            ),
            ErrorKind::NotFound => Fault::bad_request(e.to_string()),
            _ => e.into(),
        })?;
    let Some(first) = made.first() else {
        return Err(Fault::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the launch made no server",
        ));
    };
    if s.return_reservation_id == Some(true) {
        return Ok(answer(
            StatusCode::ACCEPTED,
            json!({"reservation_id": first.reservation_id}),
        ));
    }
    let ctx = view_ctx(core, caller, v, false).await?;
    let groups: Vec<Value> = views::security_groups(first)
        .into_iter()
        .map(|n| json!({ "name": n }))
        .collect();
    let mut resp = answer(
        StatusCode::ACCEPTED,
        json!({"server": {
            "id": first.id,
            "links": ctx.links("servers", &first.id),
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": groups,
        }}),
    );
    if let Ok(loc) = HeaderValue::from_str(&format!("{}/v2.1/servers/{}", ctx.base, first.id)) {
        resp.headers_mut().insert(http::header::LOCATION, loc);
    }
    Ok(resp)
}

/// `networks` as the core's port request: (network id, fixed address).
async fn networks(
    core: &Core,
    caller: &Principal,
    n: Option<&Networks>,
) -> Result<(Option<String>, Option<String>)> {
    match n {
        None => Ok((None, None)),
        Some(Networks::Word(w)) if w == "auto" => Ok((None, None)),
        Some(Networks::Word(w)) if w == "none" => Err(Fault::bad_request(
            "nuage gives every server a port: networks 'none' is not supported; use 'auto' or name a network",
        )),
        Some(Networks::Word(w)) => Err(Fault::bad_request(format!(
            "Invalid input for field/attribute networks. Value: {w}. '{w}' is not one of ['none', 'auto']"
        ))),
        // An empty list (novaclient's default before 2.37) is Nova's
        // "any network available": the project's default network.
        Some(Networks::List(list)) if list.is_empty() => Ok((None, None)),
        Some(Networks::List(list)) => {
            let [one] = list.as_slice() else {
                return Err(Fault::bad_request(
                    "nuage gives a server one port: name one network (or none for the default network)",
                ));
            };
            if one.port.is_some() {
                return Err(Fault::bad_request(
                    "nuage makes a server's port itself: booting on an existing port is not supported; name its network (uuid) instead",
                ));
            }
            if one.tag.is_some() {
                return Err(Fault::bad_request("nuage does not tag devices: drop the network's tag"));
            }
            let Some(uuid) = &one.uuid else {
                return Err(Fault::bad_request(
                    "Invalid input for field/attribute networks: a network needs a uuid",
                ));
            };
            match core.network.get_network(caller, uuid).await {
                Ok(_) => Ok((Some(uuid.clone()), one.fixed_ip.clone())),
                Err(e) if e.kind() == ErrorKind::NotFound => Err(Fault::bad_request(format!(
                    "Network {uuid} could not be found."
                ))),
                Err(e) => Err(Fault::from_core(&e)),
            }
        }
    }
}

/// Security group names (or ids) as ids of the caller's project's groups,
/// as EC2's RunInstances resolves names.
pub async fn group_ids<'a>(
    core: &Core,
    caller: &Principal,
    names: impl Iterator<Item = &'a str>,
) -> Result<Vec<String>> {
    let all = core
        .network
        .list_security_groups(caller, false)
        .await
        .map_err(|e| Fault::from_core(&e))?;
    let mut ids = Vec::new();
    for name in names {
        let found = all
            .iter()
            .find(|g| g.project_id == caller.project_id && (g.name == name || g.id == name))
            .ok_or_else(|| {
                Fault::bad_request(format!(
                    "Security group {name} not found for project {}.",
                    caller.project_id
                ))
            })?;
        if !ids.contains(&found.id) {
            ids.push(found.id.clone());
        }
    }
    Ok(ids)
}

async fn update(
    core: &Core,
    caller: &Principal,
    v: Version,
    id: &str,
    u: UpdateServer,
) -> Result<Response> {
    if u.description.is_some() && !v.at_least(19) {
        return Err(unexpected("description"));
    }
    if u.access_ipv4.is_some() || u.access_ipv6.is_some() {
        return Err(Fault::bad_request(
            "nuage does not record accessIPv4/accessIPv6; a server's addresses are its ports'",
        ));
    }
    if let Some(d) = &u.disk_config {
        if d != "AUTO" && d != "MANUAL" {
            return Err(Fault::bad_request(format!(
                "Invalid input for field/attribute OS-DCF:diskConfig. Value: {d}. '{d}' is not one of ['AUTO', 'MANUAL']"
            )));
        }
    }
    if u.name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.len() > 255)
    {
        return Err(Fault::bad_request(
            "Invalid input for field/attribute name. The name is 1 to 255 characters, not only spaces.",
        ));
    }
    let i = server(core, caller, id).await?;
    let mut set = BTreeMap::new();
    let mut remove = Vec::new();
    if let Some(n) = u.name {
        set.insert(views::NAME_TAG.to_string(), n);
    }
    match u.description {
        Some(Some(d)) => {
            set.insert(views::DESCRIPTION_TAG.to_string(), d);
        }
        Some(None) => remove.push((views::DESCRIPTION_TAG.to_string(), None)),
        None => {}
    }
    core.compute
        .set_instance_tags(caller, &i.id, &set, &remove)
        .await?;
    let i = server(core, caller, id).await?;
    let ctx = view_ctx(core, caller, v, false).await?;
    Ok(answer(
        StatusCode::OK,
        json!({"server": views::detail(&i, &ctx)}),
    ))
}

async fn metadata(core: &Core, caller: &Principal, id: &str, op: MetaOp) -> Result<Response> {
    let i = server(core, caller, id).await?;
    let current = views::metadata(&i);
    let missing = |k: &str| Fault::not_found(format!("Metadata item was not found: {k}"));
    let single = matches!(op, MetaOp::Set(..));
    let (set, remove): (BTreeMap<String, String>, Vec<String>) = match op {
        MetaOp::List => {
            return Ok(answer(StatusCode::OK, json!({ "metadata": current })));
        }
        MetaOp::Get(k) => {
            let v = current.get(&k).ok_or_else(|| missing(&k))?;
            return Ok(answer(StatusCode::OK, json!({"meta": { k: v }})));
        }
        MetaOp::Replace(m) => {
            check_metadata(&m)?;
            let gone = current
                .keys()
                .filter(|k| !m.contains_key(*k))
                .cloned()
                .collect();
            (m, gone)
        }
        MetaOp::Merge(m) => {
            check_metadata(&m)?;
            (m, Vec::new())
        }
        MetaOp::Set(k, m) => {
            if m.len() != 1 || !m.contains_key(&k) {
                return Err(Fault::bad_request(
                    "Request body and URI mismatch: meta must hold exactly the key in the URI",
                ));
            }
            check_metadata(&m)?;
            (m, Vec::new())
        }
        MetaOp::Delete(k) => {
            if !current.contains_key(&k) {
                return Err(missing(&k));
            }
            core.compute
                .set_instance_tags(caller, &i.id, &BTreeMap::new(), &[(k, None)])
                .await?;
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
    };
    let remove: Vec<(String, Option<String>)> = remove.into_iter().map(|k| (k, None)).collect();
    core.compute
        .set_instance_tags(caller, &i.id, &set, &remove)
        .await?;
    // PUT /metadata/{key} answers `meta`; the others the whole metadata.
    if single {
        return Ok(answer(StatusCode::OK, json!({ "meta": set })));
    }
    let i = server(core, caller, id).await?;
    Ok(answer(
        StatusCode::OK,
        json!({ "metadata": views::metadata(&i) }),
    ))
}

async fn tags(core: &Core, caller: &Principal, id: &str, op: TagOp) -> Result<Response> {
    let i = server(core, caller, id).await?;
    let current = views::server_tags(&i);
    let key = |t: &str| format!("{}{t}", views::TAG_PREFIX);
    let no_tag = |t: &str| {
        Fault::not_found(format!(
            "Tag '{t}' could not be found for instance {}",
            i.id
        ))
    };
    match op {
        TagOp::List => Ok(answer(StatusCode::OK, json!({ "tags": current }))),
        TagOp::Check(t) => {
            if current.contains(&t) {
                Ok(StatusCode::NO_CONTENT.into_response())
            } else {
                Err(no_tag(&t))
            }
        }
        TagOp::Replace(list) => {
            for t in &list {
                check_tag(t)?;
            }
            if list.len() > 50 {
                return Err(Fault::bad_request("A server has at most 50 tags."));
            }
            let set: BTreeMap<String, String> =
                list.iter().map(|t| (key(t), String::new())).collect();
            let remove: Vec<(String, Option<String>)> = current
                .iter()
                .filter(|t| !list.contains(t))
                .map(|t| (key(t), None))
                .collect();
            core.compute
                .set_instance_tags(caller, &i.id, &set, &remove)
                .await?;
            let i = server(core, caller, id).await?;
            Ok(answer(
                StatusCode::OK,
                json!({"tags": views::server_tags(&i)}),
            ))
        }
        TagOp::DeleteAll => {
            let remove: Vec<(String, Option<String>)> =
                current.iter().map(|t| (key(t), None)).collect();
            core.compute
                .set_instance_tags(caller, &i.id, &BTreeMap::new(), &remove)
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        TagOp::Add(t) => {
            check_tag(&t)?;
            let existed = current.contains(&t);
            if !existed {
                let set = BTreeMap::from([(key(&t), String::new())]);
                core.compute
                    .set_instance_tags(caller, &i.id, &set, &[])
                    .await?;
            }
            let mut resp = if existed {
                StatusCode::NO_CONTENT.into_response()
            } else {
                StatusCode::CREATED.into_response()
            };
            if let Ok(loc) =
                HeaderValue::from_str(&format!("{}/v2.1/servers/{}/tags/{t}", base(core), i.id))
            {
                resp.headers_mut().insert(http::header::LOCATION, loc);
            }
            Ok(resp)
        }
        TagOp::Delete(t) => {
            if !current.contains(&t) {
                return Err(no_tag(&t));
            }
            core.compute
                .set_instance_tags(caller, &i.id, &BTreeMap::new(), &[(key(&t), None)])
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn code<T: std::fmt::Debug>(r: Result<T>) -> Option<u16> {
        r.map_err(|f| f.status.as_u16()).err()
    }

    #[test]
    fn create_bodies_are_checked_as_novas_schema() {
        let parse = |b: &str| Op::parse(&Method::POST, &[], &[], b.as_bytes());
        let ok = parse(
            r#"{"server": {"name": "a", "flavorRef": "http://x/compute/flavors/t2.nano",
                "imageRef": "ami-1", "networks": "auto", "security_groups": [{"name": "web"}],
                "metadata": {"k": "v"}, "min_count": 1},
                "os:scheduler_hints": {"group": "pg-1"}}"#,
        );
        let Ok(Op::Create(b)) = ok else {
            panic!("{ok:?}")
        };
        assert_eq!(ref_id(&b.server.flavor_ref), "t2.nano");
        assert_eq!(
            b.scheduler_hints.and_then(|h| h.group).as_deref(),
            Some("pg-1")
        );
        let nets =
            parse(r#"{"server": {"name": "a", "flavorRef": "f", "networks": [{"uuid": "n"}]}}"#);
        assert!(matches!(nets, Ok(Op::Create(_))), "{nets:?}");
        assert_eq!(code(parse("{")), Some(400));
        assert_eq!(
            code(parse(r#"{"server": {"name": 3, "flavorRef": "f"}}"#)),
            Some(400)
        );
        assert_eq!(code(parse(r#"{"server": {"name": "a"}}"#)), Some(400));
        assert_eq!(
            code(parse(
                r#"{"server": {"name": "a", "flavorRef": "f", "rocket": 1}}"#
            )),
            Some(400)
        );
        assert_eq!(
            code(parse(
                r#"{"server": {"name": "a", "flavorRef": "f", "min_count": -1}}"#
            )),
            Some(400)
        );
    }

    #[test]
    fn paths_and_methods_are_recognised() {
        let p = |m: Method, path: &[&str], b: &str| Op::parse(&m, path, &[], b.as_bytes());
        assert!(matches!(
            p(Method::GET, &["detail"], ""),
            Ok(Op::List { detail: true, .. })
        ));
        assert!(matches!(p(Method::GET, &["i-1"], ""), Ok(Op::Show(_))));
        assert!(matches!(p(Method::DELETE, &["i-1"], ""), Ok(Op::Delete(_))));
        assert!(matches!(
            p(Method::PUT, &["i-1"], r#"{"server": {"name": "b"}}"#),
            Ok(Op::Update(..))
        ));
        assert!(matches!(
            p(
                Method::PUT,
                &["i-1", "metadata", "k"],
                r#"{"meta": {"k": "v"}}"#
            ),
            Ok(Op::Metadata(_, MetaOp::Set(..)))
        ));
        assert!(matches!(
            p(Method::PUT, &["i-1", "tags", "web"], ""),
            Ok(Op::Tags(_, TagOp::Add(_)))
        ));
        assert_eq!(code(p(Method::PATCH, &["i-1"], "")), Some(405));
        assert_eq!(code(p(Method::DELETE, &[], "")), Some(405));
        assert_eq!(
            code(p(Method::GET, &["i-1", "os-interface"], "")),
            Some(501)
        );
        assert_eq!(
            code(p(Method::PUT, &["i-1"], r#"{"server": {"nom": "b"}}"#)),
            Some(400)
        );
    }

    #[test]
    fn list_queries_take_novas_parameters() {
        let l = ListQuery::parse(&q(&[
            ("name", "^web-[0-9]+$"),
            ("status", "active"),
            ("flavor", "t2.nano"),
            ("tags", "a,b"),
            ("sort_key", "display_name"),
            ("sort_dir", "asc"),
            ("limit", "5000"),
            ("changes-since", "2024-01-02T03:04:05Z"),
        ]))
        .expect("query");
        assert_eq!(l.status.as_deref(), Some("ACTIVE"));
        assert_eq!(l.limit, Some(MAX_LIMIT));
        assert_eq!(l.sort, vec![("display_name".to_string(), false)]);
        assert!(l.name.as_ref().is_some_and(|r| r.is_match("web-12")));
        assert_eq!(l.tags, ["a", "b"]);
        assert_eq!(code(ListQuery::parse(&q(&[("name", "(")]))), Some(400));
        assert_eq!(
            code(ListQuery::parse(&q(&[("sort_key", "rocket")]))),
            Some(400)
        );
        assert_eq!(
            code(ListQuery::parse(&q(&[
                ("sort_dir", "up"),
                ("sort_key", "uuid")
            ]))),
            Some(400)
        );
        assert_eq!(code(ListQuery::parse(&q(&[("limit", "-1")]))), Some(400));
        assert_eq!(
            code(ListQuery::parse(&q(&[("changes-since", "yesterday")]))),
            Some(400)
        );
        let d = ListQuery::parse(&[]).expect("default");
        assert_eq!(d.sort, vec![("created_at".to_string(), true)]);
    }
}
