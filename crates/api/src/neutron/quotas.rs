//! `/v2.0/quotas`: the same quotas EC2 and the native API see, from
//! identity. Neutron's `floatingip` is identity's `floating_ips`, the one
//! network quota nuage enforces; the other Neutron resources are not
//! limited per project in nuage and show `-1` (unlimited), which cannot be
//! set. `details` counts what the project holds.

use axum::response::Response;
use http::{Method, StatusCode};
use nuage_model::identity::QUOTA_RESOURCES;
use nuage_model::{ErrorKind, HasKind};
use serde_json::{json, Map, Value};

use super::{answer, bad_method, member_of, no_content, unknown, Ctx, Fault, Result};

#[derive(Debug)]
pub enum Op {
    List,
    Show {
        project: String,
        view: View,
    },
    Update {
        project: String,
        set: Map<String, Value>,
    },
    Reset {
        project: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Limits,
    Details,
    Defaults,
}

/// Neutron quota names backed by identity's: (Neutron name, nuage resource).
const BACKED: &[(&str, &str)] = &[("floatingip", "floating_ips")];

/// Neutron resources nuage does not limit per project.
const UNLIMITED: &[&str] = &[
    "network",
    "subnet",
    "port",
    "router",
    "security_group",
    "security_group_rule",
    "rbac_policy",
    "subnetpool",
];

impl Op {
    pub fn parse(method: &Method, rest: &[&str], body: &[u8]) -> Result<Op> {
        let project = |p: &str| super::decode(p);
        Ok(match (method.clone(), rest) {
            (Method::GET, []) => Op::List,
            (Method::GET, [p]) => Op::Show {
                project: project(p)?,
                view: View::Limits,
            },
            (Method::GET, [p, "details"]) => Op::Show {
                project: project(p)?,
                view: View::Details,
            },
            (Method::GET, [p, "default"]) => Op::Show {
                project: project(p)?,
                view: View::Defaults,
            },
            (Method::PUT, [p]) => Op::Update {
                project: project(p)?,
                set: member_of::<Map<String, Value>>(body, "quota")?,
            },
            (Method::DELETE, [p]) => Op::Reset {
                project: project(p)?,
            },
            (_, [] | [_] | [_, "details" | "default"]) => return Err(bad_method()),
            _ => return Err(unknown("quotas")),
        })
    }

    pub async fn run(self, ctx: &Ctx<'_>) -> Result<Response> {
        let caller = ctx.caller;
        let identity = &ctx.core.identity;
        match self {
            Op::List => {
                let mut q = quota(ctx, &caller.project_id, View::Limits).await?;
                q.insert("project_id".into(), json!(caller.project_id));
                q.insert("tenant_id".into(), json!(caller.project_id));
                Ok(answer(StatusCode::OK, json!({ "quotas": [q] })))
            }
            Op::Show { project, view } => {
                let q = quota(ctx, &project, view).await?;
                Ok(answer(StatusCode::OK, json!({ "quota": q })))
            }
            Op::Update { project, set } => {
                let mut changes = Vec::new();
                for (name, value) in &set {
                    let limit = value
                        .as_i64()
                        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
                        .filter(|n| *n >= -1)
                        .ok_or_else(|| {
                            Fault::invalid(format!(
                                "'{value}' is not a valid limit for {name}: an integer, -1 for unlimited"
                            ))
                        })?;
                    match BACKED.iter().find(|(n, _)| n == name) {
                        Some((_, r)) => changes.push((r.to_string(), limit)),
                        None if UNLIMITED.contains(&name.as_str()) && limit == -1 => {}
                        None if UNLIMITED.contains(&name.as_str()) => {
                            return Err(Fault::invalid(format!(
                                "nuage does not limit {name} per project; only floatingip can be set"
                            )))
                        }
                        None => {
                            return Err(Fault::bad_request(format!(
                                "Unrecognized attribute(s) '{name}'"
                            )))
                        }
                    }
                }
                limits(ctx, &project).await?;
                if !changes.is_empty() {
                    identity.set_quotas(caller, &project, &changes).await?;
                }
                let q = quota(ctx, &project, View::Limits).await?;
                Ok(answer(StatusCode::OK, json!({ "quota": q })))
            }
            Op::Reset { project } => {
                limits(ctx, &project).await?;
                let defaults: Vec<(String, i64)> = BACKED
                    .iter()
                    .filter_map(|(_, r)| {
                        QUOTA_RESOURCES
                            .iter()
                            .find(|(q, _)| q == r)
                            .map(|(q, d)| (q.to_string(), *d))
                    })
                    .collect();
                identity.set_quotas(caller, &project, &defaults).await?;
                Ok(no_content())
            }
        }
    }
}

/// The project's limits by nuage resource; an unknown project is 404.
async fn limits(ctx: &Ctx<'_>, project: &str) -> Result<Vec<(String, i64)>> {
    match ctx.core.identity.quotas(ctx.caller, project).await {
        Ok(q) => Ok(q.into_iter().map(|q| (q.resource, q.limit)).collect()),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Fault::not_found(
            "ProjectNotFound",
            format!("Project {project} could not be found."),
        )),
        Err(e) => Err(e.into()),
    }
}

async fn quota(ctx: &Ctx<'_>, project: &str, view: View) -> Result<Map<String, Value>> {
    let limits = limits(ctx, project).await?;
    let limit_of = |resource: &str| -> i64 {
        let stored = limits.iter().find(|(r, _)| r == resource).map(|(_, l)| *l);
        let default = QUOTA_RESOURCES
            .iter()
            .find(|(r, _)| *r == resource)
            .map(|(_, d)| *d);
        match view {
            View::Defaults => default.unwrap_or(-1),
            _ => stored.or(default).unwrap_or(-1),
        }
    };
    let used = match view {
        View::Details => Some(usage(ctx, project).await?),
        _ => None,
    };
    let mut out = Map::new();
    let mut put = |name: &str, limit: i64| {
        let value = match &used {
            Some(u) => json!({
                "limit": limit,
                "used": u.iter().find(|(n, _)| *n == name).map_or(0, |(_, c)| *c),
                "reserved": 0,
            }),
            None => json!(limit),
        };
        out.insert(name.to_string(), value);
    };
    for (name, resource) in BACKED {
        put(name, limit_of(resource));
    }
    for name in UNLIMITED {
        put(name, -1);
    }
    Ok(out)
}

/// What `project` holds, by Neutron resource name.
async fn usage(ctx: &Ctx<'_>, project: &str) -> Result<Vec<(&'static str, i64)>> {
    let net = &ctx.core.network;
    let caller = ctx.caller;
    let all = project != caller.project_id;
    let count = |n: usize| n as i64;
    let networks: Vec<_> = net
        .list_networks(caller, all)
        .await?
        .into_iter()
        .filter(|n| n.project_id == project)
        .collect();
    let subnets: usize = networks.iter().map(|n| n.subnets.len()).sum();
    let ports = net
        .list_ports(caller, None, all)
        .await?
        .iter()
        .filter(|p| p.project_id == project)
        .count();
    let routers = net
        .list_routers(caller, all)
        .await?
        .iter()
        .filter(|r| r.project_id == project)
        .count();
    let fips = net
        .list_floating_ips(caller, all)
        .await?
        .iter()
        .filter(|f| f.project_id == project)
        .count();
    let groups: Vec<_> = net
        .list_security_groups(caller, all)
        .await?
        .into_iter()
        .filter(|g| g.project_id == project)
        .collect();
    let rules: usize = groups.iter().map(|g| g.rules.len()).sum();
    Ok(vec![
        ("network", count(networks.len())),
        ("subnet", count(subnets)),
        ("port", count(ports)),
        ("router", count(routers)),
        ("floatingip", count(fips)),
        ("security_group", count(groups.len())),
        ("security_group_rule", count(rules)),
    ])
}
