//! Availability zones, `limits` and `os-quota-sets`: the zones the
//! scheduler places in, and the same quotas (and usage) that EC2 and the
//! native API see. Nova's fixed limits that nuage does not enforce
//! (metadata items, injected files, server groups) are shown as Nova's
//! defaults and cannot be set.

use std::collections::BTreeMap;

use axum::response::Response;
use http::{Method, StatusCode};
use nuage_model::identity::Principal;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{answer, bad_method, body, param, Fault, Result, Version};
use crate::Core;

#[derive(Debug)]
pub enum Op {
    Zones {
        detail: bool,
    },
    Limits {
        project: Option<String>,
    },
    Quotas {
        project: String,
        view: QuotaView,
    },
    SetQuotas {
        project: String,
        set: BTreeMap<String, Value>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaView {
    Limits,
    Detail,
    Defaults,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuotaBody {
    quota_set: BTreeMap<String, Value>,
}

/// Nova quota names backed by nuage's quotas: (Nova name, nuage resource).
const BACKED: &[(&str, &str)] = &[
    ("instances", "instances"),
    ("cores", "cores"),
    ("ram", "ram"),
];

/// Nova limits nuage does not enforce, shown at Nova's defaults:
/// (name, value, last microversion that shows it).
const FIXED: &[(&str, i64, u32)] = &[
    ("key_pairs", 100, u32::MAX),
    ("metadata_items", 128, u32::MAX),
    ("server_groups", 10, u32::MAX),
    ("server_group_members", 10, u32::MAX),
    ("injected_files", 5, 56),
    ("injected_file_content_bytes", 10240, 56),
    ("injected_file_path_bytes", 255, 56),
    ("fixed_ips", -1, 35),
    ("security_groups", 10, 35),
    ("security_group_rules", 20, 35),
];

impl Op {
    pub fn parse(
        method: &Method,
        first: &str,
        rest: &[&str],
        query: &[(String, String)],
        raw: &[u8],
    ) -> Result<Op> {
        match (method.clone(), first, rest) {
            (Method::GET, "os-availability-zone", []) => Ok(Op::Zones { detail: false }),
            (Method::GET, "os-availability-zone", ["detail"]) => Ok(Op::Zones { detail: true }),
            (Method::GET, "limits", []) => Ok(Op::Limits {
                project: param(query, "tenant_id").map(str::to_string),
            }),
            (Method::GET, "os-quota-sets", [project]) => Ok(Op::Quotas {
                project: project.to_string(),
                view: QuotaView::Limits,
            }),
            (Method::GET, "os-quota-sets", [project, "detail"]) => Ok(Op::Quotas {
                project: project.to_string(),
                view: QuotaView::Detail,
            }),
            (Method::GET, "os-quota-sets", [project, "defaults"]) => Ok(Op::Quotas {
                project: project.to_string(),
                view: QuotaView::Defaults,
            }),
            (Method::PUT, "os-quota-sets", [project]) => Ok(Op::SetQuotas {
                project: project.to_string(),
                set: body::<QuotaBody>(raw)?.quota_set,
            }),
            (Method::DELETE, "os-quota-sets", [_]) => Err(Fault::new(
                StatusCode::NOT_IMPLEMENTED,
                "nuage resets a quota by setting it to its default value",
            )),
            (_, "os-availability-zone", [] | ["detail"])
            | (_, "limits", [])
            | (_, "os-quota-sets", [_] | [_, "detail" | "defaults"]) => Err(bad_method()),
            _ => Err(Fault::not_found("The resource could not be found.")),
        }
    }

    pub async fn run(self, core: &Core, caller: &Principal, v: Version) -> Result<Response> {
        match self {
            Op::Zones { detail } => zones(core, caller, detail).await,
            Op::Limits { project } => {
                let project = project.unwrap_or_else(|| caller.project_id.clone());
                let limits = limits_of(core, caller, &project).await?;
                let used = core.compute.usage(caller, &project).await?;
                let lim = |r: &str| limits.get(r).copied().unwrap_or(-1);
                let mut absolute = json!({
                    "maxTotalInstances": lim("instances"),
                    "maxTotalCores": lim("cores"),
                    "maxTotalRAMSize": lim("ram"),
                    "maxTotalKeypairs": 100,
                    "maxServerMeta": 128,
                    "maxImageMeta": 128,
                    "maxServerGroups": 10,
                    "maxServerGroupMembers": 10,
                    "totalInstancesUsed": used.instances,
                    "totalCoresUsed": used.cores,
                    "totalRAMUsed": used.ram_mib,
                    "totalServerGroupsUsed": server_groups_of(core, caller, &project).await?,
                });
                if !v.at_least(36) {
                    absolute["maxTotalFloatingIps"] = json!(lim("floating_ips"));
                    absolute["totalFloatingIpsUsed"] = json!(0);
                    absolute["maxSecurityGroups"] = json!(10);
                    absolute["totalSecurityGroupsUsed"] = json!(0);
                    absolute["maxSecurityGroupRules"] = json!(20);
                }
                if !v.at_least(57) {
                    absolute["maxPersonality"] = json!(5);
                    absolute["maxPersonalitySize"] = json!(10240);
                }
                Ok(answer(
                    StatusCode::OK,
                    json!({"limits": {"rate": [], "absolute": absolute}}),
                ))
            }
            Op::Quotas { project, view } => {
                let set = quota_set(core, caller, &project, view, v).await?;
                Ok(answer(StatusCode::OK, json!({ "quota_set": set })))
            }
            Op::SetQuotas { project, set } => {
                let mut changes = Vec::new();
                for (name, value) in &set {
                    if name == "force" {
                        continue;
                    }
                    let limit = value
                        .as_i64()
                        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
                        .ok_or_else(|| {
                            Fault::bad_request(format!(
                                "Invalid input for field/attribute {name}. Value: {value}. It must be an integer."
                            ))
                        })?;
                    match BACKED.iter().find(|(n, _)| n == name) {
                        Some((_, resource)) => changes.push((resource.to_string(), limit)),
                        None if name == "floating_ips" && !v.at_least(36) => {
                            changes.push(("floating_ips".to_string(), limit))
                        }
                        None if FIXED.iter().any(|(n, _, last)| n == name && v.at_least(last.saturating_add(1))) => {
                            return Err(Fault::bad_request(format!(
                                "Invalid input for field/attribute quota_set. Additional properties are not allowed ('{name}' was unexpected)"
                            )))
                        }
                        None if FIXED.iter().any(|(n, _, _)| n == name) => {
                            return Err(Fault::bad_request(format!(
                                "nuage does not limit {name}; it can be shown, not set"
                            )))
                        }
                        None => {
                            return Err(Fault::bad_request(format!(
                                "Invalid input for field/attribute quota_set. Additional properties are not allowed ('{name}' was unexpected)"
                            )))
                        }
                    }
                }
                // The project must exist (quotas() says so) before any write.
                core.identity
                    .quotas(caller, &project)
                    .await
                    .map_err(|e| project_not_found(e, &project))?;
                core.identity.set_quotas(caller, &project, &changes).await?;
                let set = quota_set(core, caller, &project, QuotaView::Limits, v).await?;
                Ok(answer(StatusCode::OK, json!({ "quota_set": set })))
            }
        }
    }
}

fn project_not_found(e: nuage_identity::IdentityError, project: &str) -> Fault {
    use nuage_model::{ErrorKind, HasKind};
    match e.kind() {
        ErrorKind::NotFound => Fault::not_found(format!("Project {project} could not be found.")),
        _ => e.into(),
    }
}

/// A project's limits by nuage resource name (defaults filled in).
async fn limits_of(
    core: &Core,
    caller: &Principal,
    project: &str,
) -> Result<BTreeMap<String, i64>> {
    let quotas = core
        .identity
        .quotas(caller, project)
        .await
        .map_err(|e| project_not_found(e, project))?;
    Ok(quotas.into_iter().map(|q| (q.resource, q.limit)).collect())
}

async fn quota_set(
    core: &Core,
    caller: &Principal,
    project: &str,
    view: QuotaView,
    v: Version,
) -> Result<Map<String, Value>> {
    let limits: BTreeMap<String, i64> = match view {
        QuotaView::Defaults => {
            // Reading defaults still needs the right to read the project.
            limits_of(core, caller, project).await?;
            nuage_model::identity::QUOTA_RESOURCES
                .iter()
                .map(|(r, d)| (r.to_string(), *d))
                .collect()
        }
        _ => limits_of(core, caller, project).await?,
    };
    let used = match view {
        QuotaView::Detail => Some(core.compute.usage(caller, project).await?),
        _ => None,
    };
    let mut out = Map::new();
    out.insert("id".into(), json!(project));
    let mut put = |name: &str, limit: i64, in_use: i64| {
        let value = match used {
            Some(_) => json!({"limit": limit, "in_use": in_use, "reserved": 0}),
            None => json!(limit),
        };
        out.insert(name.to_string(), value);
    };
    for (name, resource) in BACKED {
        let in_use = used.map_or(0, |u| match *name {
            "instances" => u.instances,
            "cores" => u.cores,
            _ => u.ram_mib,
        });
        put(name, limits.get(*resource).copied().unwrap_or(-1), in_use);
    }
    if !v.at_least(36) {
        put(
            "floating_ips",
            limits.get("floating_ips").copied().unwrap_or(-1),
            0,
        );
    }
    for (name, value, last) in FIXED {
        if !v.at_least(last.saturating_add(1)) {
            let in_use = match (*name, used) {
                ("key_pairs", Some(u)) => u.key_pairs,
                _ => 0,
            };
            put(name, *value, in_use);
        }
    }
    Ok(out)
}

async fn zones(core: &Core, caller: &Principal, detail: bool) -> Result<Response> {
    let zones = core.compute.availability_zones(caller).await?;
    let hosts: Option<Vec<nuage_compute::types::Node>> = if detail {
        Some(core.compute.list_nodes(caller).await?)
    } else {
        None
    };
    let info: Vec<Value> = zones
        .iter()
        .map(|z| {
            let hosts = hosts.as_ref().map(|nodes| {
                let mut m = Map::new();
                for n in nodes.iter().filter(|n| n.availability_zone == z.name) {
                    m.insert(
                        n.name.clone(),
                        json!({"nova-compute": {
                            "available": n.enabled,
                            "active": n.enabled,
                            "updated_at": n.heartbeat_at,
                        }}),
                    );
                }
                Value::Object(m)
            });
            json!({
                "zoneName": z.name,
                "zoneState": {"available": z.state == "available"},
                "hosts": hosts,
            })
        })
        .collect();
    Ok(answer(
        StatusCode::OK,
        json!({ "availabilityZoneInfo": info }),
    ))
}

/// How many placement groups (Nova's server groups) `project` has: the
/// caller's own, or any project's for an admin.
async fn server_groups_of(core: &Core, caller: &Principal, project: &str) -> Result<usize> {
    let groups = if project == caller.project_id {
        core.compute.list_placement_groups(caller).await?
    } else {
        core.compute.list_all_placement_groups(caller).await?
    };
    Ok(groups.iter().filter(|g| g.project_id == project).count())
}
