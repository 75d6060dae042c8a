//! `os-hypervisors` (admins): each compute node is one hypervisor, with
//! the capacity and use the scheduler sees (`Compute::list_nodes`).

use axum::response::Response;
use http::{Method, StatusCode};
use nuage_compute::types::Node;
use nuage_model::identity::Principal;
use serde_json::{json, Value};

use super::services::is_up;
use super::{answer, bad_method, param, Fault, Result, Version};
use crate::Core;

#[derive(Debug)]
pub enum Op {
    List {
        detail: bool,
        pattern: Option<String>,
    },
    Show(String),
    Statistics,
}

impl Op {
    pub fn parse(method: &Method, rest: &[&str], query: &[(String, String)]) -> Result<Op> {
        if method != Method::GET {
            return Err(bad_method());
        }
        let pattern = param(query, "hypervisor_hostname_pattern").map(String::from);
        match rest {
            [] => Ok(Op::List {
                detail: false,
                pattern,
            }),
            ["detail"] => Ok(Op::List {
                detail: true,
                pattern,
            }),
            ["statistics"] => Ok(Op::Statistics),
            [id] => Ok(Op::Show(id.to_string())),
            [_, sub] => Err(Fault::new(
                StatusCode::NOT_IMPLEMENTED,
                format!("nuage does not serve /os-hypervisors/{{id}}/{sub}; list servers with ?host= (admins)"),
            )),
            _ => Err(Fault::not_found("The resource could not be found.")),
        }
    }

    pub async fn run(self, core: &Core, caller: &Principal, v: Version) -> Result<Response> {
        let nodes = core.compute.list_nodes(caller).await?;
        match self {
            Op::List { detail, pattern } => {
                let list: Vec<Value> = nodes
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| pattern.as_ref().is_none_or(|p| n.name.contains(p.as_str())))
                    .map(|(k, n)| {
                        if detail {
                            view(n, k, v)
                        } else {
                            json!({
                                "id": id(n, k, v),
                                "hypervisor_hostname": n.name,
                                "state": state(n),
                                "status": status(n),
                            })
                        }
                    })
                    .collect();
                Ok(answer(StatusCode::OK, json!({ "hypervisors": list })))
            }
            Op::Show(want) => {
                let (k, n) = nodes
                    .iter()
                    .enumerate()
                    .find(|(k, n)| n.id == want || (k + 1).to_string() == want)
                    .ok_or_else(|| {
                        Fault::not_found(format!("Hypervisor with ID {want} could not be found."))
                    })?;
                Ok(answer(StatusCode::OK, json!({"hypervisor": view(n, k, v)})))
            }
            Op::Statistics => {
                let sum = |f: fn(&Node) -> u64| nodes.iter().map(f).sum::<u64>();
                let (vcpus, used_vcpus) = (sum(|n| n.vcpus.into()), sum(|n| n.used_vcpus.into()));
                let (ram, used_ram) = (sum(|n| n.ram_mib), sum(|n| n.used_ram_mib));
                let (disk, used_disk) = (sum(|n| n.disk_gib), sum(|n| n.used_disk_gib));
                Ok(answer(
                    StatusCode::OK,
                    json!({"hypervisor_statistics": {
                        "count": nodes.len(),
                        "vcpus": vcpus,
                        "vcpus_used": used_vcpus,
                        "memory_mb": ram,
                        "memory_mb_used": used_ram,
                        "free_ram_mb": ram.saturating_sub(used_ram),
                        "local_gb": disk,
                        "local_gb_used": used_disk,
                        "free_disk_gb": disk.saturating_sub(used_disk),
                        "disk_available_least": disk.saturating_sub(used_disk),
                        "current_workload": 0,
                        "running_vms": sum(|n| n.instances.into()),
                    }}),
                ))
            }
        }
    }
}

/// A node's id as Nova shows it: a number before 2.53, then a string id.
fn id(n: &Node, k: usize, v: Version) -> Value {
    if v.at_least(53) {
        json!(n.id)
    } else {
        json!(k + 1)
    }
}

fn state(n: &Node) -> &'static str {
    if is_up(&n.heartbeat_at) {
        "up"
    } else {
        "down"
    }
}

fn status(n: &Node) -> &'static str {
    if n.enabled {
        "enabled"
    } else {
        "disabled"
    }
}

fn view(n: &Node, k: usize, v: Version) -> Value {
    json!({
        "id": id(n, k, v),
        "hypervisor_hostname": n.name,
        "hypervisor_type": n.hypervisor,
        "hypervisor_version": 1,
        "host_ip": "127.0.0.1",
        "state": state(n),
        "status": status(n),
        "vcpus": n.vcpus,
        "vcpus_used": n.used_vcpus,
        "memory_mb": n.ram_mib,
        "memory_mb_used": n.used_ram_mib,
        "free_ram_mb": n.ram_mib.saturating_sub(n.used_ram_mib),
        "local_gb": n.disk_gib,
        "local_gb_used": n.used_disk_gib,
        "free_disk_gb": n.disk_gib.saturating_sub(n.used_disk_gib),
        "disk_available_least": n.disk_gib.saturating_sub(n.used_disk_gib),
        "current_workload": 0,
        "running_vms": n.instances,
        "cpu_info": json!({"arch": n.arch}).to_string(),
        "service": {
            "host": n.name,
            "id": if v.at_least(53) { json!(format!("compute-{}", n.id)) } else { json!(k + 3) },
            "disabled_reason": null,
        },
    })
}
