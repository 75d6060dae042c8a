//! `POST /servers/{id}/action`: the actions nuage's compute service can
//! take, each checked first against the vm_states Nova allows it in (409
//! with Nova's message otherwise), then done by the core. Actions nuage
//! cannot honour (rebuild, migrate, shelve, ...) answer 501 by name.

use std::collections::BTreeMap;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode};
use nuage_compute::types::Instance;
use nuage_compute::{Action, InstancePatch, NewSnapshot};
use nuage_model::identity::Principal;
use nuage_model::{ErrorKind, HasKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::servers::{conflict, group_ids, server, state_fault};
use super::{answer, base, Fault, Result, Version};
use crate::Core;

/// Console bytes read to answer `os-getConsoleOutput` (its `length` is in
/// lines, taken from the end).
const CONSOLE_BYTES: usize = 1 << 20;

/// Nova actions nuage recognises and does not take, with why.
const NOT_SERVED: &[(&str, &str)] = &[
    ("rebuild", "a server's image is fixed at boot; delete it and create another"),
    ("migrate", "nuage does not move instances between nodes"),
    ("os-migrateLive", "nuage does not move instances between nodes"),
    ("evacuate", "nuage does not move instances between nodes"),
    ("shelve", "nuage does not shelve instances; stop it instead"),
    ("shelveOffload", "nuage does not shelve instances; stop it instead"),
    ("unshelve", "nuage does not shelve instances"),
    ("pause", "containers are not paused; stop the server instead"),
    ("unpause", "containers are not paused"),
    ("suspend", "containers are not suspended; stop the server instead"),
    ("resume", "containers are not suspended"),
    ("rescue", "nuage has no rescue image"),
    ("unrescue", "nuage has no rescue image"),
    ("lock", "nuage does not lock servers"),
    ("unlock", "nuage does not lock servers"),
    ("changePassword", "nuage's servers have no administrator password; use a key pair"),
    ("os-resetState", "an instance's state is what its node observes"),
    ("os-resetNetwork", "nuage re-applies a server's network on every reconcile"),
    ("injectNetworkInfo", "nuage re-applies a server's network on every reconcile"),
    ("forceDelete", "nuage deletes servers at once; use DELETE /servers/{id}"),
    ("restore", "nuage deletes servers at once; nothing to restore"),
    ("createBackup", "use createImage"),
    ("trigger_crash_dump", "containers have no crash dump"),
    ("os-getVNCConsole", "nuage's servers have a serial console only: os-getConsoleOutput"),
    ("os-getSPICEConsole", "nuage's servers have a serial console only: os-getConsoleOutput"),
    ("os-getSerialConsole", "nuage's servers have a serial console only: os-getConsoleOutput"),
    ("os-getRDPConsole", "nuage's servers have a serial console only: os-getConsoleOutput"),
    ("addFixedIp", "a server has one port: create it on the network you need"),
    ("removeFixedIp", "a server has one port"),
    ("addFloatingIp", "associate the floating IP with the server's port through the Network API (openstack server add floating ip does)"),
    ("removeFloatingIp", "disassociate the floating IP through the Network API"),
];

#[derive(Debug)]
pub enum ServerAction {
    Start,
    Stop,
    Reboot { hard: bool },
    Resize { flavor: String },
    ConfirmResize,
    RevertResize,
    CreateImage(CreateImage),
    ConsoleOutput { length: Option<i64> },
    AddSecurityGroup(String),
    RemoveSecurityGroup(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RebootBody {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResizeBody {
    #[serde(rename = "flavorRef")]
    flavor_ref: String,
    #[serde(default, rename = "OS-DCF:diskConfig")]
    disk_config: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateImage {
    name: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsoleBody {
    #[serde(default)]
    length: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupBody {
    name: String,
}

fn arg<T: serde::de::DeserializeOwned>(action: &str, v: Value) -> Result<T> {
    serde_json::from_value(v)
        .map_err(|e| Fault::bad_request(format!("Invalid input for field/attribute {action}: {e}")))
}

/// Checks that an action without arguments has none (`null` or `{}`).
fn no_arg(action: &str, v: &Value) -> Result<()> {
    match v {
        Value::Null => Ok(()),
        Value::Object(m) if m.is_empty() => Ok(()),
        _ => Err(Fault::bad_request(format!(
            "Invalid input for field/attribute {action}: it takes no arguments"
        ))),
    }
}

impl ServerAction {
    /// The body is one object with one key, the action's name.
    pub fn parse(raw: &[u8]) -> Result<ServerAction> {
        let body: serde_json::Map<String, Value> = super::body(raw)?;
        let mut entries = body.into_iter();
        let (Some((name, v)), None) = (entries.next(), entries.next()) else {
            return Err(Fault::bad_request(
                "An action body holds exactly one action.",
            ));
        };
        Ok(match name.as_str() {
            "os-start" => {
                no_arg(&name, &v)?;
                ServerAction::Start
            }
            "os-stop" => {
                no_arg(&name, &v)?;
                ServerAction::Stop
            }
            "reboot" => {
                let b: RebootBody = arg(&name, v)?;
                match b.kind.to_ascii_uppercase().as_str() {
                    "SOFT" => ServerAction::Reboot { hard: false },
                    "HARD" => ServerAction::Reboot { hard: true },
                    other => {
                        return Err(Fault::bad_request(format!(
                        "Invalid input for field/attribute type. Value: {other}. '{other}' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"
                    )))
                    }
                }
            }
            "resize" => {
                let b: ResizeBody = arg(&name, v)?;
                if b.disk_config
                    .as_deref()
                    .is_some_and(|d| d != "AUTO" && d != "MANUAL")
                {
                    return Err(Fault::bad_request(
                        "Invalid input for field/attribute OS-DCF:diskConfig.",
                    ));
                }
                ServerAction::Resize {
                    flavor: b
                        .flavor_ref
                        .trim_end_matches('/')
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                }
            }
            "confirmResize" => {
                no_arg(&name, &v)?;
                ServerAction::ConfirmResize
            }
            "revertResize" => {
                no_arg(&name, &v)?;
                ServerAction::RevertResize
            }
            "createImage" => ServerAction::CreateImage(arg(&name, v)?),
            "os-getConsoleOutput" => {
                let b: ConsoleBody = if v.is_null() {
                    ConsoleBody::default()
                } else {
                    arg(&name, v)?
                };
                let length = match b.length {
                    None | Some(Value::Null) => None,
                    Some(Value::Number(n)) => n.as_i64(),
                    // Nova takes the number as a string too.
                    Some(Value::String(s)) => Some(s.parse().map_err(|_| {
                        Fault::bad_request(format!(
                            "Invalid input for field/attribute length. Value: {s}."
                        ))
                    })?),
                    Some(other) => {
                        return Err(Fault::bad_request(format!(
                            "Invalid input for field/attribute length. Value: {other}."
                        )))
                    }
                };
                if length.is_some_and(|n| n < -1) {
                    return Err(Fault::bad_request(
                        "Invalid input for field/attribute length: it is -1 or more.",
                    ));
                }
                ServerAction::ConsoleOutput { length }
            }
            "addSecurityGroup" => ServerAction::AddSecurityGroup(arg::<GroupBody>(&name, v)?.name),
            "removeSecurityGroup" => {
                ServerAction::RemoveSecurityGroup(arg::<GroupBody>(&name, v)?.name)
            }
            other => {
                return Err(match NOT_SERVED.iter().find(|(n, _)| *n == other) {
                    Some((_, why)) => Fault::new(
                        StatusCode::NOT_IMPLEMENTED,
                        format!("nuage does not take the server action {other}: {why}"),
                    ),
                    None => Fault::bad_request(format!("There is no such action: {other}")),
                })
            }
        })
    }

    fn name(&self) -> &'static str {
        match self {
            ServerAction::Start => "start",
            ServerAction::Stop => "stop",
            ServerAction::Reboot { .. } => "reboot",
            ServerAction::Resize { .. } => "resize",
            ServerAction::ConfirmResize => "confirmResize",
            ServerAction::RevertResize => "revertResize",
            ServerAction::CreateImage(_) => "createImage",
            ServerAction::ConsoleOutput { .. } => "os-getConsoleOutput",
            ServerAction::AddSecurityGroup(_) => "addSecurityGroup",
            ServerAction::RemoveSecurityGroup(_) => "removeSecurityGroup",
        }
    }

    /// Whether Nova takes this action in the server's (vm_state,
    /// task_state) (its `check_instance_state` decorators).
    fn allowed(&self, i: &Instance) -> bool {
        let st = i.nova_state();
        let idle = st.task_state.is_none();
        match self {
            ServerAction::Stop => idle && matches!(st.vm_state, "active" | "error"),
            ServerAction::Start => idle && st.vm_state == "stopped",
            ServerAction::Reboot { hard: false } => idle && st.vm_state == "active",
            // A hard reboot also takes a server that is rebooting.
            ServerAction::Reboot { hard: true } => {
                matches!(st.vm_state, "active" | "stopped" | "error")
                    && matches!(st.task_state, None | Some("rebooting"))
            }
            ServerAction::Resize { .. } => idle && matches!(st.vm_state, "active" | "stopped"),
            // No resize ever waits for confirmation (ADR 31).
            ServerAction::ConfirmResize | ServerAction::RevertResize => false,
            ServerAction::CreateImage(_) => idle && matches!(st.vm_state, "active" | "stopped"),
            ServerAction::ConsoleOutput { .. }
            | ServerAction::AddSecurityGroup(_)
            | ServerAction::RemoveSecurityGroup(_) => true,
        }
    }

    pub async fn run(
        self,
        core: &Core,
        caller: &Principal,
        v: Version,
        id: &str,
    ) -> Result<Response> {
        let i = server(core, caller, id).await?;
        if !self.allowed(&i) {
            return Err(conflict(&i, self.name()));
        }
        let name = self.name();
        let act = |a: Action| {
            let ids = [i.id.clone()];
            async move { core.compute.act(caller, a, &ids, false).await }
        };
        match self {
            ServerAction::Start => {
                act(Action::Start)
                    .await
                    .map_err(|e| state_fault(e, &i, name))?;
                Ok(StatusCode::ACCEPTED.into_response())
            }
            ServerAction::Stop => {
                act(Action::Stop)
                    .await
                    .map_err(|e| state_fault(e, &i, name))?;
                Ok(StatusCode::ACCEPTED.into_response())
            }
            // The core restarts the init either way: a container has no
            // guest to ask for a clean reboot.
            ServerAction::Reboot { .. } => {
                act(Action::Reboot)
                    .await
                    .map_err(|e| state_fault(e, &i, name))?;
                Ok(StatusCode::ACCEPTED.into_response())
            }
            ServerAction::Resize { flavor } => {
                if flavor == i.instance_type {
                    return Err(Fault::bad_request(
                        "When resizing, instances must change flavor!",
                    ));
                }
                match core.compute.get_instance_type(caller, &flavor).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        return Err(Fault::bad_request(format!(
                            "Flavor {flavor} could not be found."
                        )))
                    }
                    Err(e) => return Err(e.into()),
                }
                core.compute
                    .modify_instance(
                        caller,
                        &i.id,
                        InstancePatch {
                            instance_type: Some(flavor),
                            ..InstancePatch::default()
                        },
                    )
                    .await
                    .map_err(|e| match e.kind() {
                        ErrorKind::InsufficientCapacity => {
                            Fault::bad_request(format!("No valid host was found. {e}"))
                        }
                        _ => state_fault(e, &i, name),
                    })?;
                Ok(StatusCode::ACCEPTED.into_response())
            }
            ServerAction::ConfirmResize | ServerAction::RevertResize => Err(conflict(&i, name)),
            ServerAction::CreateImage(c) => {
                let image = core
                    .compute
                    .create_image_from_instance(
                        caller,
                        &i.id,
                        NewSnapshot {
                            name: c.name,
                            description: None,
                            properties: c.metadata,
                        },
                    )
                    .await
                    .map_err(|e| state_fault(e, &i, name))?;
                let mut resp = if v.at_least(45) {
                    answer(StatusCode::ACCEPTED, json!({"image_id": image.id}))
                } else {
                    StatusCode::ACCEPTED.into_response()
                };
                if let Ok(loc) =
                    HeaderValue::from_str(&format!("{}/v2.1/images/{}", base(core), image.id))
                {
                    resp.headers_mut().insert(http::header::LOCATION, loc);
                }
                Ok(resp)
            }
            ServerAction::ConsoleOutput { length } => {
                let text = core
                    .compute
                    .console_output(caller, &i.id, CONSOLE_BYTES)
                    .await?;
                Ok(answer(
                    StatusCode::OK,
                    json!({"output": last_lines(&text, length)}),
                ))
            }
            ServerAction::AddSecurityGroup(g) | ServerAction::RemoveSecurityGroup(g) => {
                let adding = name == "addSecurityGroup";
                let gid = group_ids(core, caller, std::iter::once(g.as_str()))
                    .await
                    .ok()
                    .and_then(|ids| ids.into_iter().next())
                    .ok_or_else(|| {
                        Fault::not_found(format!(
                            "Security group {g} not found for project {}.",
                            caller.project_id
                        ))
                    })?;
                let mut ids: Vec<String> = i
                    .network_interfaces
                    .first()
                    .map(|n| n.security_groups.iter().map(|(id, _)| id.clone()).collect())
                    .unwrap_or_default();
                let has = ids.contains(&gid);
                match (adding, has) {
                    (true, true) => {
                        return Err(Fault::bad_request(format!(
                            "Security group {g} is already associated with the instance {}",
                            i.id
                        )))
                    }
                    (false, false) => {
                        return Err(Fault::bad_request(format!(
                            "Security group {g} not assigned to the instance {}",
                            i.id
                        )))
                    }
                    (true, false) => ids.push(gid),
                    (false, true) => ids.retain(|x| *x != gid),
                }
                core.compute
                    .modify_instance(
                        caller,
                        &i.id,
                        InstancePatch {
                            security_groups: Some(ids),
                            ..InstancePatch::default()
                        },
                    )
                    .await?;
                Ok(StatusCode::ACCEPTED.into_response())
            }
        }
    }
}

/// The last `length` lines of the console (all for none or -1).
fn last_lines(text: &str, length: Option<i64>) -> String {
    let Some(n) = length.filter(|n| *n >= 0) else {
        return text.to_string();
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    lines[lines.len().saturating_sub(n as usize)..].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(b: &str) -> Option<u16> {
        ServerAction::parse(b.as_bytes())
            .map_err(|f| f.status.as_u16())
            .err()
    }

    #[test]
    fn actions_are_parsed_as_nova_names_them() {
        let p = |b: &str| ServerAction::parse(b.as_bytes());
        assert!(matches!(p(r#"{"os-stop": null}"#), Ok(ServerAction::Stop)));
        assert!(matches!(
            p(r#"{"reboot": {"type": "HARD"}}"#),
            Ok(ServerAction::Reboot { hard: true })
        ));
        assert!(matches!(
            p(r#"{"resize": {"flavorRef": "http://x/flavors/t2.small"}}"#),
            Ok(ServerAction::Resize { flavor }) if flavor == "t2.small"
        ));
        assert!(matches!(
            p(r#"{"os-getConsoleOutput": {"length": "5"}}"#),
            Ok(ServerAction::ConsoleOutput { length: Some(5) })
        ));
        assert!(matches!(
            p(r#"{"createImage": {"name": "snap", "metadata": {"a": "b"}}}"#),
            Ok(ServerAction::CreateImage(_))
        ));
        assert_eq!(code(r#"{"reboot": {"type": "GENTLE"}}"#), Some(400));
        assert_eq!(code(r#"{"os-stop": {"now": true}}"#), Some(400));
        assert_eq!(code(r#"{"os-stop": null, "os-start": null}"#), Some(400));
        assert_eq!(code(r#"{"rebuild": {"imageRef": "x"}}"#), Some(501));
        assert_eq!(code(r#"{"fly": null}"#), Some(400));
        assert_eq!(code(r#"{"createImage": {}}"#), Some(400));
        assert_eq!(
            code(r#"{"os-getConsoleOutput": {"length": -5}}"#),
            Some(400)
        );
    }

    #[test]
    fn console_length_counts_lines_from_the_end() {
        assert_eq!(last_lines("a\nb\nc\n", Some(2)), "b\nc\n");
        assert_eq!(last_lines("a\nb\nc", Some(1)), "c");
        assert_eq!(last_lines("a\nb\n", None), "a\nb\n");
        assert_eq!(last_lines("a\nb\n", Some(-1)), "a\nb\n");
        assert_eq!(last_lines("a\nb\n", Some(0)), "");
    }
}
