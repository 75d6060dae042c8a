//! `os-services` (admins): one `nova-compute` per node (its zone, up or
//! down by heartbeat, enabled or disabled), and the controller's
//! `nova-scheduler` and `nova-conductor`, which are this process.

use axum::response::Response;
use http::{Method, StatusCode};
use nuage_model::identity::Principal;
use serde_json::{json, Value};

use super::{answer, bad_method, param, Fault, Result, Version};
use crate::Core;

/// A node whose last heartbeat is older than this is down (it beats every
/// 10 s; Nova's `service_down_time` is 60 s).
const DOWN_AFTER_SECS: i64 = 60;

/// The host the controller's services are shown on.
const CONTROLLER: &str = "controller";

/// Whether a heartbeat (RFC 3339) is recent enough for "up".
pub fn is_up(heartbeat_at: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(heartbeat_at)
        .is_ok_and(|t| chrono::Utc::now().signed_duration_since(t).num_seconds() <= DOWN_AFTER_SECS)
}

#[derive(Debug)]
pub enum Op {
    List {
        binary: Option<String>,
        host: Option<String>,
    },
}

impl Op {
    pub fn parse(method: &Method, rest: &[&str], query: &[(String, String)]) -> Result<Op> {
        match (method.clone(), rest) {
            (Method::GET, []) => Ok(Op::List {
                binary: param(query, "binary").map(String::from),
                host: param(query, "host").map(String::from),
            }),
            (Method::PUT | Method::DELETE, [_, ..]) => Err(Fault::new(
                StatusCode::NOT_IMPLEMENTED,
                "nuage's services are its nodes and its controller: they are enabled, disabled and removed with the native API",
            )),
            (_, []) => Err(bad_method()),
            _ => Err(Fault::not_found("The resource could not be found.")),
        }
    }

    pub async fn run(self, core: &Core, caller: &Principal, v: Version) -> Result<Response> {
        let Op::List { binary, host } = self;
        let nodes = core.compute.list_nodes(caller).await?;
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6f")
            .to_string();
        let id = |k: usize, uuid: String| -> Value {
            if v.at_least(53) {
                json!(uuid)
            } else {
                json!(k + 1)
            }
        };
        let mut all: Vec<Value> = vec![
            json!({"id": id(0, "scheduler".into()), "binary": "nova-scheduler", "host": CONTROLLER,
                   "zone": "internal", "status": "enabled", "state": "up", "updated_at": now,
                   "disabled_reason": null}),
            json!({"id": id(1, "conductor".into()), "binary": "nova-conductor", "host": CONTROLLER,
                   "zone": "internal", "status": "enabled", "state": "up", "updated_at": now,
                   "disabled_reason": null}),
        ];
        for (k, n) in nodes.iter().enumerate() {
            let updated = chrono::DateTime::parse_from_rfc3339(&n.heartbeat_at)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
                .unwrap_or_default();
            all.push(json!({
                "id": id(k + 2, format!("compute-{}", n.id)),
                "binary": "nova-compute",
                "host": n.name,
                "zone": n.availability_zone,
                "status": if n.enabled { "enabled" } else { "disabled" },
                "state": if is_up(&n.heartbeat_at) { "up" } else { "down" },
                "updated_at": updated,
                "disabled_reason": null,
            }));
        }
        if v.at_least(11) {
            for s in &mut all {
                s["forced_down"] = json!(false);
            }
        }
        all.retain(|s| {
            binary.as_ref().is_none_or(|b| s["binary"] == json!(b))
                && host.as_ref().is_none_or(|h| s["host"] == json!(h))
        });
        Ok(answer(StatusCode::OK, json!({ "services": all })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_tell_up_from_down() {
        let now = chrono::Utc::now();
        assert!(is_up(&now.to_rfc3339()));
        assert!(!is_up(&(now - chrono::Duration::seconds(120)).to_rfc3339()));
        assert!(!is_up("never"));
    }
}
