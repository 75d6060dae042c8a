//! `os-security-groups`, read only and before 2.36 as in Nova: the
//! network service's groups of the caller's project in Nova's old shape.
//! openstackclient finds a group here by name when no Network API is in
//! the catalog (`server create --security-group`, `server add security
//! group`); groups are made and changed through the Network API or EC2.

use axum::response::Response;
use http::{Method, StatusCode};
use nuage_model::identity::Principal;
use nuage_network::types::{Direction, SecurityGroup};
use serde_json::{json, Value};

use super::{answer, bad_method, Fault, Result, Version};
use crate::Core;

#[derive(Debug)]
pub enum Op {
    List,
    Show(String),
}

impl Op {
    pub fn parse(method: &Method, rest: &[&str]) -> Result<Op> {
        match (method.clone(), rest) {
            (Method::GET, [] | ["detail"]) => Ok(Op::List),
            (Method::GET, [id]) => Ok(Op::Show(id.to_string())),
            (Method::POST | Method::PUT | Method::DELETE, _) => Err(Fault::new(
                StatusCode::NOT_IMPLEMENTED,
                "nuage makes and changes security groups through the Network API and EC2; os-security-groups is read only",
            )),
            (_, [] | [_]) => Err(bad_method()),
            _ => Err(Fault::not_found("The resource could not be found.")),
        }
    }

    pub async fn run(self, core: &Core, caller: &Principal, v: Version) -> Result<Response> {
        if v.at_least(36) {
            return Err(Fault::not_found(
                "The resource could not be found: os-security-groups ends at microversion 2.35; use the Network API.",
            ));
        }
        let all: Vec<SecurityGroup> = core
            .network
            .list_security_groups(caller, false)
            .await
            .map_err(|e| Fault::from_core(&e))?
            .into_iter()
            .filter(|g| g.project_id == caller.project_id)
            .collect();
        match self {
            Op::List => {
                let list: Vec<Value> = all.iter().map(view).collect();
                Ok(answer(StatusCode::OK, json!({ "security_groups": list })))
            }
            Op::Show(id) => {
                let g = all
                    .iter()
                    .find(|g| g.id == id)
                    .ok_or_else(|| Fault::not_found(format!("Security group {id} not found.")))?;
                Ok(answer(StatusCode::OK, json!({"security_group": view(g)})))
            }
        }
    }
}

/// Nova's shape: ingress rules only (Nova's groups had no egress rules).
fn view(g: &SecurityGroup) -> Value {
    let rules: Vec<Value> = g
        .rules
        .iter()
        .filter(|r| r.direction == Direction::Ingress)
        .map(|r| {
            json!({
                "id": r.id,
                "parent_group_id": g.id,
                "ip_protocol": r.protocol.as_str(),
                "from_port": r.port_range_min.map_or(-1, i32::from),
                "to_port": r.port_range_max.map_or(-1, i32::from),
                "ip_range": r.remote_cidr.as_ref().map_or(json!({}), |c| json!({"cidr": c})),
                "group": r.remote_group_id.as_ref().map_or(json!({}), |id| json!({"name": id, "tenant_id": g.project_id})),
            })
        })
        .collect();
    json!({
        "id": g.id,
        "name": g.name,
        "description": g.description,
        "tenant_id": g.project_id,
        "rules": rules,
    })
}
