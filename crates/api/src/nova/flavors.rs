//! Flavors: nuage's instance types, named by their name (a flavor's id is
//! its name, as Nova allows string ids), public to every project.

use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use nuage_compute::types::InstanceType;
use nuage_model::identity::Principal;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{answer, bad_method, base, body, param, Fault, Result, Version};
use crate::Core;

#[derive(Debug)]
pub enum Op {
    List { detail: bool, page: ListQuery },
    Get(String),
    Create(NewFlavor),
    Delete(String),
    ExtraSpecs(String),
    Access(String),
}

/// The list filters and paging Nova takes on flavors.
#[derive(Debug, Default)]
pub struct ListQuery {
    min_ram: Option<u64>,
    min_disk: Option<u64>,
    /// `Some(false)`: private flavors only (there are none).
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
            (Method::GET, [id]) => Ok(Op::Get(id.to_string())),
            (Method::DELETE, [id]) => Ok(Op::Delete(id.to_string())),
            (Method::GET, [id, "os-extra_specs"]) => Ok(Op::ExtraSpecs(id.to_string())),
            (Method::GET, [id, "os-flavor-access"]) => Ok(Op::Access(id.to_string())),
            (_, [_, "os-extra_specs", ..]) | (Method::POST, [_, "action"]) => Err(Fault::new(
                StatusCode::NOT_IMPLEMENTED,
                "nuage's flavors carry no extra specs or access lists yet: every flavor is public",
            )),
            (_, [] | [_] | [_, "os-flavor-access"]) => Err(bad_method()),
            _ => Err(Fault::not_found("The resource could not be found.")),
        }
    }

    pub async fn run(self, core: &Core, caller: &Principal, v: Version) -> Result<Response> {
        match self {
            Op::List { detail, page } => {
                let mut all = core.compute.list_instance_types(caller).await?;
                all.retain(|t| {
                    page.min_ram.is_none_or(|m| t.memory_mib >= m)
                        && page.min_disk.is_none_or(|d| t.disk_gib >= d)
                        && page.is_public != Some(false)
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
                get(core, caller, &id).await?;
                Ok(answer(StatusCode::OK, json!({"extra_specs": {}})))
            }
            Op::Access(id) => {
                get(core, caller, &id).await?;
                Err(Fault::not_found(
                    "Access list not available for public flavors.",
                ))
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
    if new.is_public == Some(false) {
        return Err(Fault::new(
            StatusCode::NOT_IMPLEMENTED,
            "nuage's flavors are all public; private flavors with access lists are not served yet",
        ));
    }
    if new.description.is_some() && !v.at_least(55) {
        return Err(Fault::bad_request(
            "Invalid input for field/attribute flavor. Additional properties are not allowed ('description' was unexpected)",
        ));
    }
    if new.description.as_deref().is_some_and(|d| !d.is_empty()) {
        return Err(Fault::new(
            StatusCode::NOT_IMPLEMENTED,
            "nuage's flavors carry no description yet",
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
    })
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
        out["description"] = Value::Null;
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
        "os-flavor-access:is_public": true,
        "rxtx_factor": 1.0,
        "links": links(core, t),
    });
    if v.at_least(55) {
        out["description"] = Value::Null;
    }
    if v.at_least(61) {
        out["extra_specs"] = json!({});
    }
    out
}
