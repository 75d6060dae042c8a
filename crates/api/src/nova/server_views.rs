//! How an instance looks as a Nova server, by microversion. The mapping of
//! nuage's tags onto Nova's name, metadata, description and server tags
//! is here alone (ADR 31): `Name` is the name, `nova:description` the
//! description, `nova:tag:<tag>` (empty value) a server tag, every other
//! tag a metadata item, so EC2 and Nova show one set of tags.

use std::collections::{BTreeMap, HashMap};

use nuage_compute::types::Instance;
use nuage_model::identity::Principal;
use serde_json::{json, Map, Value};
use sha2::Digest;

use super::Version;

/// The tag holding a server's name (EC2's `Name`).
pub const NAME_TAG: &str = "Name";
/// The tag holding a server's description (2.19).
pub const DESCRIPTION_TAG: &str = "nova:description";
/// The prefix of the tags holding server tags (2.26).
pub const TAG_PREFIX: &str = "nova:tag:";

/// Whether a tag key is the door's own (name, description, server tag),
/// not a metadata item.
pub fn reserved(key: &str) -> bool {
    key == NAME_TAG || key.starts_with("nova:")
}

pub fn name(i: &Instance) -> &str {
    i.tags.get(NAME_TAG).map_or("", String::as_str)
}

pub fn metadata(i: &Instance) -> BTreeMap<String, String> {
    i.tags
        .iter()
        .filter(|(k, _)| !reserved(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub fn server_tags(i: &Instance) -> Vec<String> {
    i.tags
        .keys()
        .filter_map(|k| k.strip_prefix(TAG_PREFIX))
        .map(String::from)
        .collect()
}

/// What every server of one answer shares: links' base, the caller, the
/// networks' names.
pub struct ViewCtx<'a> {
    pub base: String,
    pub caller: &'a Principal,
    pub version: Version,
    /// Network id → name, for `addresses`.
    pub networks: HashMap<String, String>,
}

impl ViewCtx<'_> {
    pub fn links(&self, kind: &str, id: &str) -> Value {
        json!([
            {"rel": "self", "href": format!("{}/v2.1/{kind}/{id}", self.base)},
            {"rel": "bookmark", "href": format!("{}/{kind}/{id}", self.base)},
        ])
    }
}

/// Nova's time format, `2017-02-14T19:23:58Z`.
pub fn nova_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// `OS-SRV-USG:*` times, `2017-02-14T19:23:59.000000` (no zone).
fn usage_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string())
        .unwrap_or_default()
}

/// `addresses`: by network name, fixed then floating, as Nova shows them.
pub fn addresses(i: &Instance, networks: &HashMap<String, String>) -> Value {
    let mut out = Map::new();
    for nic in &i.network_interfaces {
        let name = networks
            .get(&nic.network_id)
            .cloned()
            .unwrap_or_else(|| nic.network_id.clone());
        let list = out
            .entry(name)
            .or_insert_with(|| Value::Array(Vec::new()))
            .as_array_mut();
        let Some(list) = list else { continue };
        list.push(json!({
            "addr": nic.private_ip,
            "version": 4,
            "OS-EXT-IPS:type": "fixed",
            "OS-EXT-IPS-MAC:mac_addr": nic.mac_address,
        }));
        if let Some(public) = &nic.public_ip {
            list.push(json!({
                "addr": public,
                "version": 4,
                "OS-EXT-IPS:type": "floating",
                "OS-EXT-IPS-MAC:mac_addr": nic.mac_address,
            }));
        }
    }
    Value::Object(out)
}

/// The names of the security groups of the server's ports, once each.
pub fn security_groups(i: &Instance) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for nic in &i.network_interfaces {
        for (_, name) in &nic.security_groups {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
    }
    names
}

/// Nova's `hostId`: the host hashed with the project, so projects cannot
/// compare hosts.
fn host_id(i: &Instance) -> String {
    let mut h = sha2::Sha224::new();
    h.update(i.project_id.as_bytes());
    h.update(i.node.as_bytes());
    hex::encode(h.finalize())
}

/// `GET /servers`' short entry.
pub fn brief(i: &Instance, ctx: &ViewCtx<'_>) -> Value {
    json!({"id": i.id, "name": name(i), "links": ctx.links("servers", &i.id)})
}

/// `GET /servers/{id}` and `/servers/detail`'s entry.
pub fn detail(i: &Instance, ctx: &ViewCtx<'_>) -> Value {
    let v = ctx.version;
    let st = i.nova_state();
    let flavor = if v.at_least(47) {
        json!({
            "original_name": i.instance_type,
            "vcpus": i.vcpus,
            "ram": i.memory_mib,
            "disk": i.disk_gib,
            "ephemeral": 0,
            "swap": 0,
            "extra_specs": {},
        })
    } else {
        json!({"id": i.instance_type, "links": [
            {"rel": "bookmark", "href": format!("{}/flavors/{}", ctx.base, i.instance_type)}
        ]})
    };
    let groups: Vec<Value> = security_groups(i)
        .into_iter()
        .map(|n| json!({ "name": n }))
        .collect();
    let updated = i.terminated_ms.unwrap_or(i.launch_ms);
    let mut out = json!({
        "id": i.id,
        "name": name(i),
        "status": st.status,
        "tenant_id": i.project_id,
        "user_id": i.user_id,
        "metadata": metadata(i),
        "hostId": host_id(i),
        "image": {"id": i.image_id, "links": [
            {"rel": "bookmark", "href": format!("{}/images/{}", ctx.base, i.image_id)}
        ]},
        "flavor": flavor,
        "created": nova_time(i.launch_ms),
        "updated": nova_time(updated),
        "addresses": addresses(i, &ctx.networks),
        "accessIPv4": "",
        "accessIPv6": "",
        "links": ctx.links("servers", &i.id),
        "key_name": i.key_name,
        "progress": if st.status == "BUILD" { 0 } else { 100 },
        "config_drive": "",
        "security_groups": groups,
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": i.availability_zone,
        "OS-EXT-STS:vm_state": st.vm_state,
        "OS-EXT-STS:task_state": st.task_state,
        "OS-EXT-STS:power_state": st.power_state,
        "OS-SRV-USG:launched_at": usage_time(i.launch_ms),
        "OS-SRV-USG:terminated_at": i.terminated_ms.map(usage_time),
        "os-extended-volumes:volumes_attached": [],
    });
    if ctx.caller.is_admin() {
        out["OS-EXT-SRV-ATTR:host"] = json!(i.node);
        out["OS-EXT-SRV-ATTR:hypervisor_hostname"] = json!(i.node);
        out["OS-EXT-SRV-ATTR:instance_name"] = json!(i.id);
        if v.at_least(3) {
            out["OS-EXT-SRV-ATTR:reservation_id"] = json!(i.reservation_id);
            out["OS-EXT-SRV-ATTR:launch_index"] = json!(i.launch_index);
            out["OS-EXT-SRV-ATTR:hostname"] = json!(i.hostname);
            out["OS-EXT-SRV-ATTR:kernel_id"] = json!("");
            out["OS-EXT-SRV-ATTR:ramdisk_id"] = json!("");
            out["OS-EXT-SRV-ATTR:root_device_name"] = Value::Null;
        }
        if v.at_least(16) {
            out["host_status"] = json!("UP");
        }
    }
    if v.at_least(9) {
        out["locked"] = json!(false);
    }
    if v.at_least(19) {
        out["description"] = json!(i.tags.get(DESCRIPTION_TAG));
    }
    if v.at_least(26) {
        out["tags"] = json!(server_tags(i));
    }
    if v.at_least(63) {
        out["trusted_image_certificates"] = Value::Null;
    }
    if v.at_least(73) {
        out["locked_reason"] = Value::Null;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_keys_are_not_metadata() {
        assert!(reserved("Name"));
        assert!(reserved("nova:tag:web"));
        assert!(reserved("nova:description"));
        assert!(!reserved("name"));
        assert!(!reserved("role"));
    }

    #[test]
    fn times_take_novas_formats() {
        assert_eq!(nova_time(1_487_100_238_000), "2017-02-14T19:23:58Z");
        assert_eq!(usage_time(1_487_100_238_500), "2017-02-14T19:23:58.500000");
    }
}
