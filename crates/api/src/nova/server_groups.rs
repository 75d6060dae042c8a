//! Server groups (`/os-server-groups`): the compute service's placement
//! groups, whose id is the server group's id. Policy `affinity` is the
//! strategy `cluster` (one node), `anti-affinity` is `spread` (a node each);
//! the scheduler's filters honour them. Soft policies are refused: the
//! scheduler has no weigher that would prefer, rather than require, them.
//! Until 2.64 a group shows a `policies` list and `metadata`; from 2.64 one
//! `policy` and its `rules`.

use axum::response::{IntoResponse, Response};
use http::{Method, StatusCode};
use nuage_compute::types::PlacementGroup;
use nuage_model::identity::Principal;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::{answer, bad_method, body, param, Fault, Result, Version};
use crate::Core;

#[derive(Debug)]
pub enum Op {
    List {
        all_projects: bool,
        limit: Option<usize>,
        offset: usize,
    },
    Get(String),
    /// The raw `server_group` object, checked against the microversion
    /// before anything acts.
    Create(Map<String, Value>),
    Delete(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    server_group: Map<String, Value>,
}

/// A new group, as checked.
#[derive(Debug, PartialEq)]
struct NewGroup {
    name: String,
    /// The placement group's strategy.
    strategy: &'static str,
}

fn truthy(v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Ok(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Ok(false),
        _ => Err(Fault::bad_request(format!(
            "Invalid input for query parameters all_projects. Value: {v}. {v} is not a boolean"
        ))),
    }
}

fn number(query: &[(String, String)], name: &str) -> Result<Option<usize>> {
    param(query, name)
        .map(|v| {
            v.parse().map_err(|_| {
                Fault::bad_request(format!(
                    "Invalid input for query parameters {name}. Value: {v}. It is not a non-negative integer"
                ))
            })
        })
        .transpose()
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
                all_projects: param(query, "all_projects")
                    .map(truthy)
                    .transpose()?
                    .unwrap_or(false),
                limit: number(query, "limit")?,
                offset: number(query, "offset")?.unwrap_or(0),
            }),
            (Method::POST, []) => Ok(Op::Create(body::<CreateBody>(raw)?.server_group)),
            (Method::GET, [id]) => Ok(Op::Get(id.to_string())),
            (Method::DELETE, [id]) => Ok(Op::Delete(id.to_string())),
            (_, [] | [_]) => Err(bad_method()),
            _ => Err(Fault::not_found("The resource could not be found.")),
        }
    }

    pub async fn run(self, core: &Core, caller: &Principal, v: Version) -> Result<Response> {
        match self {
            Op::List {
                all_projects,
                limit,
                offset,
            } => {
                // Nova ignores all_projects for non-admins.
                let groups = if all_projects && caller.is_admin() {
                    core.compute.list_all_placement_groups(caller).await?
                } else {
                    core.compute.list_placement_groups(caller).await?
                };
                let mut out = Vec::new();
                for g in groups.iter().skip(offset).take(limit.unwrap_or(usize::MAX)) {
                    let members = core.compute.placement_group_members(caller, g).await?;
                    out.push(view(g, &members, v));
                }
                Ok(answer(StatusCode::OK, json!({ "server_groups": out })))
            }
            Op::Get(id) => {
                let g = get(core, caller, &id).await?;
                let members = core.compute.placement_group_members(caller, &g).await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({"server_group": view(&g, &members, v)}),
                ))
            }
            Op::Create(raw) => {
                let new = check_new(&raw, v)?;
                let g = core
                    .compute
                    .create_placement_group(caller, &new.name, new.strategy)
                    .await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({"server_group": view(&g, &[], v)}),
                ))
            }
            Op::Delete(id) => {
                let g = get(core, caller, &id).await?;
                core.compute
                    .delete_placement_group(caller, &g.id)
                    .await
                    .map_err(|e| not_found_or(e, &id))?;
                Ok(StatusCode::NO_CONTENT.into_response())
            }
        }
    }
}

async fn get(core: &Core, caller: &Principal, id: &str) -> Result<PlacementGroup> {
    core.compute
        .get_placement_group(caller, id)
        .await
        .map_err(|e| not_found_or(e, id))
}

/// Nova's own words for a group that does not exist.
fn not_found_or(e: nuage_compute::ComputeError, id: &str) -> Fault {
    use nuage_model::{ErrorKind, HasKind};
    match e.kind() {
        ErrorKind::NotFound => Fault::not_found(format!("Instance group {id} could not be found.")),
        _ => e.into(),
    }
}

/// The placement strategy of a Nova policy.
fn strategy(policy: &str) -> Result<&'static str> {
    match policy {
        "affinity" => Ok("cluster"),
        "anti-affinity" => Ok("spread"),
        "soft-affinity" | "soft-anti-affinity" => Err(Fault::bad_request(format!(
            "Policy {policy} is not supported by nuage's scheduler: it places by affinity and anti-affinity filters only, with no weigher that would prefer rather than require; use affinity or anti-affinity"
        ))),
        other => Err(Fault::bad_request(format!(
            "Invalid input for field/attribute policy. Value: {other}. '{other}' is not one of ['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity']"
        ))),
    }
}

fn unexpected(key: &str) -> Fault {
    Fault::bad_request(format!(
        "Invalid input for field/attribute server_group. Additional properties are not allowed ('{key}' was unexpected)"
    ))
}

/// Checks a `server_group` object as Nova's schema for the microversion
/// would: `policies` (one policy) before 2.64, `policy` and `rules` from.
fn check_new(raw: &Map<String, Value>, v: Version) -> Result<NewGroup> {
    let modern = v.at_least(64);
    for key in raw.keys() {
        let known = match key.as_str() {
            "name" => true,
            "policies" => !modern,
            "policy" | "rules" => modern,
            _ => false,
        };
        if !known {
            return Err(unexpected(key));
        }
    }
    let name = match raw.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= 255 => n.clone(),
        Some(Value::String(_)) => {
            return Err(Fault::bad_request(
                "Invalid input for field/attribute name: a server group name is 1 to 255 characters, not blank",
            ))
        }
        Some(_) => {
            return Err(Fault::bad_request(
                "Invalid input for field/attribute name: it is not a string",
            ))
        }
        None => return Err(Fault::bad_request("'name' is a required property")),
    };
    let policy = if modern {
        match raw.get("policy") {
            Some(Value::String(p)) => p.as_str(),
            Some(_) => return Err(Fault::bad_request("'policy' must be a string")),
            None => return Err(Fault::bad_request("'policy' is a required property")),
        }
    } else {
        match raw.get("policies") {
            Some(Value::Array(ps)) if ps.len() == 1 => ps[0]
                .as_str()
                .ok_or_else(|| Fault::bad_request("'policies' must hold strings"))?,
            Some(Value::Array(_)) => {
                return Err(Fault::bad_request(
                    "Invalid input for field/attribute policies: exactly one policy is allowed",
                ))
            }
            Some(_) => return Err(Fault::bad_request("'policies' must be a list")),
            None => return Err(Fault::bad_request("'policies' is a required property")),
        }
    };
    let strategy = strategy(policy)?;
    if let Some(rules) = raw.get("rules") {
        let rules = rules
            .as_object()
            .ok_or_else(|| Fault::bad_request("'rules' must be an object"))?;
        for (k, val) in rules {
            if k != "max_server_per_host" {
                return Err(Fault::bad_request(format!(
                    "Invalid input for field/attribute rules. Additional properties are not allowed ('{k}' was unexpected)"
                )));
            }
            if policy != "anti-affinity" {
                return Err(Fault::bad_request(
                    "Only anti-affinity policy supports \"max_server_per_host\" rule.",
                ));
            }
            // The scheduler's anti-affinity filter puts one member per node.
            if val.as_u64() != Some(1) && val.as_str() != Some("1") {
                return Err(Fault::bad_request(
                    "nuage's anti-affinity places at most one member per host: max_server_per_host can only be 1",
                ));
            }
        }
    }
    Ok(NewGroup { name, strategy })
}

/// Nova's policy name of a placement strategy.
fn policy(g: &PlacementGroup) -> &'static str {
    if g.strategy == "cluster" {
        "affinity"
    } else {
        "anti-affinity"
    }
}

fn view(g: &PlacementGroup, members: &[String], v: Version) -> Value {
    let mut out = json!({
        "id": g.id,
        "name": g.name,
        "members": members,
        "project_id": g.project_id,
    });
    if v.at_least(64) {
        out["policy"] = json!(policy(g));
        out["rules"] = json!({});
    } else {
        out["policies"] = json!([policy(g)]);
        out["metadata"] = json!({});
    }
    if v.at_least(13) {
        out["user_id"] = json!(g.user_id.clone().unwrap_or_default());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("object")
    }

    #[test]
    fn policies_follow_the_microversion() {
        let old = Version(2, 15);
        let new = Version(2, 64);
        let ok = |raw: Value, v| check_new(&obj(raw), v).map_err(|f| f.message);
        assert_eq!(
            ok(json!({"name": "g", "policies": ["anti-affinity"]}), old),
            Ok(NewGroup {
                name: "g".into(),
                strategy: "spread"
            })
        );
        assert_eq!(
            ok(json!({"name": "g", "policy": "affinity", "rules": {}}), new).map(|g| g.strategy),
            Ok("cluster")
        );
        // The other version's shape is refused.
        assert!(ok(json!({"name": "g", "policy": "affinity"}), old).is_err());
        assert!(ok(json!({"name": "g", "policies": ["affinity"]}), new).is_err());
        // Soft policies, two policies, unknown rules, unknown keys.
        let soft = ok(json!({"name": "g", "policies": ["soft-affinity"]}), old);
        assert!(soft.is_err_and(|m| m.contains("not supported")));
        assert!(ok(
            json!({"name": "g", "policies": ["affinity", "anti-affinity"]}),
            old
        )
        .is_err());
        assert!(ok(
            json!({"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 2}}),
            new
        )
        .is_err());
        assert!(ok(
            json!({"name": "g", "policy": "anti-affinity", "rules": {"max_server_per_host": 1}}),
            new
        )
        .is_ok());
        assert!(ok(
            json!({"name": "g", "policy": "affinity", "rules": {"max_server_per_host": 1}}),
            new
        )
        .is_err());
        assert!(ok(json!({"name": "", "policies": ["affinity"]}), old).is_err());
        assert!(ok(json!({"name": "g", "policies": ["affinity"], "x": 1}), old).is_err());
    }
}
