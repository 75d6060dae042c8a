//! Flavors: nuage's instance types, named by their name (a flavor's id is
//! its name, as Nova allows string ids). Admins create, describe (2.55)
//! and delete them, set their extra specs (shown inline from 2.61) and make
//! them private with an access list; who sees a private flavor is the
//! compute service's rule, applied to launches too.

use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use nuage_compute::types::InstanceType;
use nuage_model::identity::Principal;
use nuage_model::HasKind;
use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{answer, bad_method, base, body, param, Fault, Result, Version};
use crate::Core;

#[derive(Debug)]
pub enum Op {
    List {
        detail: bool,
        page: ListQuery,
    },
    Get(String),
    Create(NewFlavor),
    /// `PUT /flavors/{id}`: the description (2.55).
    Update(String, Option<String>),
    Delete(String),
    ExtraSpecs(String),
    ExtraSpec(String, String),
    /// `POST .../os-extra_specs` and (`one`) `PUT .../os-extra_specs/{key}`.
    SetExtraSpecs {
        id: String,
        specs: BTreeMap<String, String>,
        one: bool,
    },
    DeleteExtraSpec(String, String),
    Access(String),
    AddAccess(String, String),
    RemoveAccess(String, String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    flavor: UpdateFlavor,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateFlavor {
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecsBody {
    extra_specs: Map<String, Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
enum ActionBody {
    #[serde(rename = "addTenantAccess")]
    Add(Tenant),
    #[serde(rename = "removeTenantAccess")]
    Remove(Tenant),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Tenant {
    tenant: String,
}

/// Extra spec values as Nova takes them: strings, numbers or booleans,
/// kept as strings.
fn spec_values(raw: Map<String, Value>) -> Result<BTreeMap<String, String>> {
    raw.into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => {
                    return Err(Fault::bad_request(format!(
                        "Invalid input for field/attribute extra_specs. Value of {k} must be a string, number or boolean"
                    )))
                }
            };
            Ok((k, v))
        })
        .collect()
}

/// The list filters and paging Nova takes on flavors.
#[derive(Debug, Default)]
pub struct ListQuery {
    min_ram: Option<u64>,
    min_disk: Option<u64>,
    /// For admins: `Some(true)` public flavors (the default), `Some(false)`
    /// private ones, `None` all. Others see what they may use, always.
    is_public: Option<bool>,
    limit: Option<usize>,
    marker: Option<String>,
    sort_key: String,
    descending: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FlavorBody {
    flavor: NewFlavor,
}

/// `POST /flavors`'s `flavor` object.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewFlavor {
    name: String,
    ram: u64,
    vcpus: u32,
    disk: u64,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    swap: Option<u64>,
    #[serde(default, rename = "OS-FLV-EXT-DATA:ephemeral")]
    ephemeral: Option<u64>,
    #[serde(default)]
    rxtx_factor: Option<f64>,
    #[serde(default, rename = "os-flavor-access:is_public")]
    is_public: Option<bool>,
    #[serde(default)]
    description: Option<String>,
}

fn number<T: std::str::FromStr>(query: &[(String, String)], name: &str) -> Result<Option<T>> {
    param(query, name)
        .map(|v| {
            v.parse()
                .map_err(|_| Fault::bad_request(format!("Invalid {name} filter [{v}]")))
        })
        .transpose()
}

impl ListQuery {
    fn parse(query: &[(String, String)]) -> Result<ListQuery> {
        let is_public = match param(query, "is_public").map(str::to_ascii_lowercase) {
            None => Some(true),
            Some(v) if v == "none" || v == "all" => None,
            Some(v) if ["true", "t", "1", "yes", "y", "on"].contains(&v.as_str()) => Some(true),
            Some(v) if ["false", "f", "0", "no", "n", "off"].contains(&v.as_str()) => Some(false),
            Some(v) => {
                return Err(Fault::bad_request(format!(
                    "Invalid is_public filter [{v}]"
                )))
            }
        };
        let sort_key = match param(query, "sort_key").unwrap_or("flavorid") {
            k @ ("flavorid" | "id" | "name" | "memory_mb" | "root_gb" | "vcpus") => k.to_string(),
            other => {
                return Err(Fault::bad_request(format!(
                    "Invalid sort_key {other}: use flavorid, name, memory_mb, root_gb or vcpus"
                )))
            }
        };
        let descending = match param(query, "sort_dir").unwrap_or("asc") {
            "asc" => false,
            "desc" => true,
            other => {
                return Err(Fault::bad_request(format!(
                    "Invalid sort_dir {other}: asc or desc"
                )))
            }
        };
        Ok(ListQuery {
            min_ram: number(query, "minRam")?,
            min_disk: number(query, "minDisk")?,
            is_public,
            limit: number(query, "limit")?,
            marker: param(query, "marker").map(str::to_string),
            sort_key,
            descending,
        })
    }
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
                page: ListQuery::parse(query)?,
            }),
            (Method::GET, ["detail"]) => Ok(Op::List {
                detail: true,
                page: ListQuery::parse(query)?,
            }),
            (Method::POST, []) => Ok(Op::Create(body::<FlavorBody>(raw)?.flavor)),
            (Method::GET, [i]) => Ok(Op::Get(id(i))),
            (Method::PUT, [i]) => Ok(Op::Update(
                id(i),
                body::<UpdateBody>(raw)?.flavor.description,
            )),
            (Method::DELETE, [i]) => Ok(Op::Delete(id(i))),
            (Method::GET, [i, "os-extra_specs"]) => Ok(Op::ExtraSpecs(id(i))),
            (Method::POST, [i, "os-extra_specs"]) => Ok(Op::SetExtraSpecs {
                id: id(i),
                specs: spec_values(body::<SpecsBody>(raw)?.extra_specs)?,
                one: false,
            }),
            (Method::GET, [i, "os-extra_specs", k]) => Ok(Op::ExtraSpec(id(i), id(k))),
            (Method::PUT, [i, "os-extra_specs", k]) => {
                let specs = spec_values(body::<Map<String, Value>>(raw)?)?;
                if specs.len() != 1 || !specs.contains_key(*k) {
                    return Err(Fault::bad_request("Request body and URI mismatch"));
                }
                Ok(Op::SetExtraSpecs {
                    id: id(i),
                    specs,
                    one: true,
                })
            }
            (Method::DELETE, [i, "os-extra_specs", k]) => Ok(Op::DeleteExtraSpec(id(i), id(k))),
            (Method::GET, [i, "os-flavor-access"]) => Ok(Op::Access(id(i))),
            (Method::POST, [i, "action"]) => Ok(match body::<ActionBody>(raw)? {
                ActionBody::Add(t) => Op::AddAccess(id(i), t.tenant),
                ActionBody::Remove(t) => Op::RemoveAccess(id(i), t.tenant),
            }),
            (_, [] | [_] | [_, "os-flavor-access" | "os-extra_specs" | "action"])
            | (_, [_, "os-extra_specs", _]) => Err(bad_method()),
            _ => Err(Fault::not_found("The resource could not be found.")),
        }
    }

    pub async fn run(self, core: &Core, caller: &Principal, v: Version) -> Result<Response> {
        match self {
            Op::List { detail, page } => {
                let mut all = core.compute.list_instance_types(caller).await?;
                let admin = caller.is_admin();
                all.retain(|t| {
                    page.min_ram.is_none_or(|m| t.memory_mib >= m)
                        && page.min_disk.is_none_or(|d| t.disk_gib >= d)
                        && (!admin || page.is_public.is_none_or(|p| p == t.is_public))
                });
                match page.sort_key.as_str() {
                    "memory_mb" => all
                        .sort_by(|a, b| a.memory_mib.cmp(&b.memory_mib).then(a.name.cmp(&b.name))),
                    "root_gb" => {
                        all.sort_by(|a, b| a.disk_gib.cmp(&b.disk_gib).then(a.name.cmp(&b.name)))
                    }
                    "vcpus" => all.sort_by(|a, b| a.vcpus.cmp(&b.vcpus).then(a.name.cmp(&b.name))),
                    _ => all.sort_by(|a, b| a.name.cmp(&b.name)),
                }
                if page.descending {
                    all.reverse();
                }
                let (shown, more) = crate::wire::after_marker(
                    &all,
                    |t| t.name.as_str(),
                    page.marker.as_deref(),
                    page.limit,
                )
                .ok_or_else(|| {
                    Fault::bad_request(format!(
                        "marker [{}] not found",
                        page.marker.as_deref().unwrap_or_default()
                    ))
                })?;
                let items: Vec<Value> = shown
                    .iter()
                    .map(|t| {
                        if detail {
                            view(core, t, v)
                        } else {
                            brief(core, t, v)
                        }
                    })
                    .collect();
                let mut out = json!({ "flavors": items });
                if let (Some(limit), Some(last)) = (page.limit, shown.last()) {
                    if more {
                        let path = if detail { "flavors/detail" } else { "flavors" };
                        out["flavors_links"] = json!([{
                            "rel": "next",
                            "href": format!("{}/v2.1/{path}?limit={limit}&marker={}", base(core), last.name),
                        }]);
                    }
                }
                Ok(answer(StatusCode::OK, out))
            }
            Op::Get(id) => {
                let t = get(core, caller, &id).await?;
                Ok(answer(StatusCode::OK, json!({"flavor": view(core, &t, v)})))
            }
            Op::ExtraSpecs(id) => {
                let t = get(core, caller, &id).await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({"extra_specs": t.extra_specs}),
                ))
            }
            Op::ExtraSpec(id, key) => {
                let t = get(core, caller, &id).await?;
                let value = t.extra_specs.get(&key).ok_or_else(|| {
                    Fault::not_found(format!("Flavor {id} has no extra specs with key {key}."))
                })?;
                Ok(answer(StatusCode::OK, json!({ key: value })))
            }
            Op::SetExtraSpecs { id, specs, one } => {
                core.compute
                    .set_extra_specs(caller, &id, specs.clone())
                    .await
                    .map_err(|e| not_found_or(e, &id))?;
                // Nova answers with what was set: the body, or the one key.
                let body = if one {
                    json!(specs)
                } else {
                    json!({ "extra_specs": specs })
                };
                Ok(answer(StatusCode::OK, body))
            }
            Op::DeleteExtraSpec(id, key) => {
                get(core, caller, &id).await?;
                core.compute
                    .unset_extra_spec(caller, &id, &key)
                    .await
                    .map_err(|e| match e.kind() {
                        nuage_model::ErrorKind::NotFound => Fault::not_found(format!(
                            "Flavor {id} has no extra specs with key {key}."
                        )),
                        _ => e.into(),
                    })?;
                Ok(StatusCode::OK.into_response())
            }
            Op::Access(id) => {
                let t = get(core, caller, &id).await?;
                if t.is_public {
                    return Err(Fault::not_found(
                        "Access list not available for public flavors.",
                    ));
                }
                let list = core.compute.instance_type_access(caller, &id).await?;
                Ok(answer(StatusCode::OK, access_view(&id, &list)))
            }
            Op::AddAccess(id, project) => {
                get(core, caller, &id).await?;
                let list = core
                    .compute
                    .add_instance_type_access(caller, &id, &project)
                    .await
                    .map_err(|e| not_found_or(e, &id))?;
                Ok(answer(StatusCode::OK, access_view(&id, &list)))
            }
            Op::RemoveAccess(id, project) => {
                get(core, caller, &id).await?;
                let list = core
                    .compute
                    .remove_instance_type_access(caller, &id, &project)
                    .await
                    .map_err(|e| match e.kind() {
                        nuage_model::ErrorKind::NotFound => Fault::not_found(format!(
                            "Flavor access not found for {id} / {project} combination."
                        )),
                        _ => e.into(),
                    })?;
                Ok(answer(StatusCode::OK, access_view(&id, &list)))
            }
            Op::Update(id, description) => {
                if !v.at_least(55) {
                    return Err(Fault::not_found(
                        "Updating a flavor's description takes microversion 2.55 or later.",
                    ));
                }
                let t = core
                    .compute
                    .set_instance_type_description(caller, &id, description)
                    .await
                    .map_err(|e| not_found_or(e, &id))?;
                Ok(answer(StatusCode::OK, json!({"flavor": view(core, &t, v)})))
            }
            Op::Create(new) => {
                let t = check_new(new, v)?;
                let t = core.compute.create_instance_type(caller, t).await?;
                Ok(answer(StatusCode::OK, json!({"flavor": view(core, &t, v)})))
            }
            Op::Delete(id) => {
                core.compute
                    .delete_instance_type(caller, &id)
                    .await
                    .map_err(|e| not_found_or(e, &id))?;
                Ok(StatusCode::ACCEPTED.into_response())
            }
        }
    }
}

async fn get(core: &Core, caller: &Principal, id: &str) -> Result<InstanceType> {
    core.compute
        .get_instance_type(caller, id)
        .await
        .map_err(|e| not_found_or(e, id))
}

/// Nova's own words for a flavor that does not exist.
fn not_found_or(e: nuage_compute::ComputeError, id: &str) -> Fault {
    use nuage_model::{ErrorKind, HasKind};
    match e.kind() {
        ErrorKind::NotFound => Fault::not_found(format!("Flavor {id} could not be found.")),
        _ => e.into(),
    }
}

/// Checks a new flavor against what nuage's instance types can be.
fn check_new(new: NewFlavor, v: Version) -> Result<InstanceType> {
    if let Some(id) = &new.id {
        if id != &new.name && id != "auto" {
            return Err(Fault::bad_request(format!(
                "nuage names a flavor by its name: give no id, or id {:?}",
                new.name
            )));
        }
    }
    if new.swap.unwrap_or(0) != 0 || new.ephemeral.unwrap_or(0) != 0 {
        return Err(Fault::bad_request(
            "nuage's flavors have one root disk: swap and ephemeral must be 0",
        ));
    }
    if new.rxtx_factor.is_some_and(|r| r != 1.0) {
        return Err(Fault::bad_request(
            "nuage's flavors have an rxtx_factor of 1.0",
        ));
    }
    if new.description.is_some() && !v.at_least(55) {
        return Err(Fault::bad_request(
            "Invalid input for field/attribute flavor. Additional properties are not allowed ('description' was unexpected)",
        ));
    }
    Ok(InstanceType {
        name: new.name,
        vcpus: new.vcpus,
        memory_mib: new.ram,
        disk_gib: new.disk,
        pids_limit: nuage_compute::catalog::default_pids_limit(new.vcpus),
        io_weight: nuage_compute::catalog::DEFAULT_IO_WEIGHT,
        builtin: false,
        is_public: new.is_public.unwrap_or(true),
        description: new.description.filter(|d| !d.is_empty()),
        extra_specs: BTreeMap::new(),
    })
}

fn access_view(id: &str, projects: &[String]) -> Value {
    let list: Vec<Value> = projects
        .iter()
        .map(|p| json!({"flavor_id": id, "tenant_id": p}))
        .collect();
    json!({ "flavor_access": list })
}

fn links(core: &Core, t: &InstanceType) -> Value {
    json!([
        {"rel": "self", "href": format!("{}/v2.1/flavors/{}", base(core), t.name)},
        {"rel": "bookmark", "href": format!("{}/flavors/{}", base(core), t.name)},
    ])
}

/// A flavor in a plain list.
fn brief(core: &Core, t: &InstanceType, v: Version) -> Value {
    let mut out = json!({"id": t.name, "name": t.name, "links": links(core, t)});
    if v.at_least(55) {
        out["description"] = json!(t.description);
    }
    out
}

/// A flavor in full, as the microversion shows it.
fn view(core: &Core, t: &InstanceType, v: Version) -> Value {
    let mut out = json!({
        "id": t.name,
        "name": t.name,
        "ram": t.memory_mib,
        "disk": t.disk_gib,
        "vcpus": t.vcpus,
        "swap": if v.at_least(75) { json!(0) } else { json!("") },
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "OS-FLV-DISABLED:disabled": false,
        "os-flavor-access:is_public": t.is_public,
        "rxtx_factor": 1.0,
        "links": links(core, t),
    });
    if v.at_least(55) {
        out["description"] = json!(t.description);
    }
    if v.at_least(61) {
        out["extra_specs"] = json!(t.extra_specs);
    }
    out
}
