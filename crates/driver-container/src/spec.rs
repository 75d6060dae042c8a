//! The OCI runtime spec (`config.json`) of an instance.
//!
//! Built as a `serde_json::Value` by hand rather than with the `oci-spec`
//! crate: the document is small and fixed in shape, this keeps every field
//! the driver sets in one readable place next to the reason for it, and it
//! avoids a dependency tree (builders, getters, strum) that would cost more
//! build time than the ~150 lines it replaces.

use std::path::Path;

use nuage_driver::{InstanceSpec, CONFIG_DRIVE_MOUNT};
use serde_json::{json, Value};

use crate::cgroups::Cgroups;
use crate::{seccomp, userns};

/// Docker's default capability set: what most images expect, and nothing
/// that reaches outside the namespaces (no SYS_ADMIN, SYS_PTRACE, NET_ADMIN…).
pub(crate) const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The CFS period; the quota is `vcpus` periods.
pub(crate) const CPU_PERIOD_US: u64 = 100_000;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(crate) struct Paths<'a> {
    /// The hard RLIMIT_NOFILE of this process: runc sets rlimits after
    /// dropping CAP_SYS_RESOURCE, so the instance can get at most this.
    pub nofile_hard: u64,
    pub netns: &'a Path,
    /// The instance's user namespace (bind mount) and the host id its
    /// root maps to (ADR 16).
    pub userns: &'a Path,
    pub id_base: u32,
    pub config_drive: &'a Path,
    pub hosts: &'a Path,
    pub resolv_conf: &'a Path,
}

/// The instance's `/etc/hosts` and `/etc/resolv.conf`, as runc users write
/// them: localhost and the instance's own names on its first address; the
/// network's resolver at the first NIC's gateway, searching the region's
/// private domain (so `ip-10-0-0-5` and an instance id resolve).
pub(crate) fn name_files(spec: &InstanceSpec) -> (String, String) {
    let mut hosts =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    let nic = spec.nics.first();
    let addr = nic.and_then(|n| n.address.split('/').next());
    match addr {
        Some(a) => {
            let ip_name = format!("ip-{}", a.replace('.', "-"));
            match &spec.dns_domain {
                Some(d) => {
                    hosts.push_str(&format!("{a}\t{ip_name}.{d} {ip_name} {}\n", spec.hostname))
                }
                None => hosts.push_str(&format!("{a}\t{ip_name} {}\n", spec.hostname)),
            }
        }
        None => hosts.push_str(&format!("127.0.1.1\t{}\n", spec.hostname)),
    }
    let mut resolv = String::new();
    if let Some(d) = &spec.dns_domain {
        resolv.push_str(&format!("search {d}\n"));
    }
    match nic.and_then(|n| n.gateway.as_deref()) {
        Some(g) => resolv.push_str(&format!("nameserver {g}\n")),
        // No network, or an isolated subnet: no resolver to name.
        None => resolv.push_str("# no resolver: the instance has no gateway\n"),
    }
    (hosts, resolv)
}

pub(crate) fn config(spec: &InstanceSpec, paths: &Paths<'_>, cg: &Cgroups) -> Value {
    let mut env = spec.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        // runc resolves a relative command with the container's PATH.
        env.insert(0, DEFAULT_PATH.to_string());
    }
    let cwd = if spec.workdir.is_empty() {
        "/"
    } else {
        &spec.workdir
    };
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": spec.command,
            "env": env,
            "cwd": cwd,
            "capabilities": {
                "bounding": CAPABILITIES,
                "effective": CAPABILITIES,
                "permitted": CAPABILITIES,
            },
            "rlimits": [{
                "type": "RLIMIT_NOFILE",
                "hard": paths.nofile_hard,
                "soft": paths.nofile_hard.min(1024),
            }],
            "noNewPrivileges": true,
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": spec.hostname,
        "mounts": mounts(paths),
        "linux": {
            "uidMappings": [{ "containerID": 0, "hostID": paths.id_base, "size": userns::RANGE }],
            "gidMappings": [{ "containerID": 0, "hostID": paths.id_base, "size": userns::RANGE }],
            "seccomp": seccomp::profile(),
            "cgroupsPath": cg.path_of(&spec.id),
            "resources": resources(spec, cg),
            // runc joins the user and network namespaces the driver made
            // (the network one is owned by the user one), and makes the
            // others inside them.
            "namespaces": [
                { "type": "user", "path": paths.userns },
                { "type": "pid" },
                { "type": "network", "path": paths.netns },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" },
            ],
            // As `runc spec` generates them: kernel information and knobs
            // the namespaces do not cover.
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    })
}

fn mounts(paths: &Paths<'_>) -> Value {
    json!([
        { "destination": "/proc", "type": "proc", "source": "proc" },
        { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
          "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
        { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
          "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
        { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
          "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
        { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
          "options": ["nosuid", "noexec", "nodev"] },
        { "destination": "/sys", "type": "sysfs", "source": "sysfs",
          "options": ["nosuid", "noexec", "nodev", "ro"] },
        { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
          "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] },
        { "destination": CONFIG_DRIVE_MOUNT, "type": "bind", "source": paths.config_drive,
          "options": ["rbind", "ro", "nosuid", "nodev", "noexec"] },
        // Read-only: the driver rewrites it on every start (the network
        // driver will add the instance's addresses), edits would not last.
        { "destination": "/etc/hosts", "type": "bind", "source": paths.hosts,
          "options": ["bind", "ro", "nosuid", "nodev", "noexec"] },
        { "destination": "/etc/resolv.conf", "type": "bind", "source": paths.resolv_conf,
          "options": ["bind", "ro", "nosuid", "nodev", "noexec"] },
    ])
}

fn resources(spec: &InstanceSpec, cg: &Cgroups) -> Value {
    let r = &spec.resources;
    let vcpus = u64::from(r.vcpus.max(1));
    let limit = r.memory_mib.saturating_mul(1 << 20);
    let mut memory = json!({ "limit": limit });
    if cg.swap_limit {
        // OCI's swap is memory+swap (v1 memsw); runc turns limit == swap
        // into memory.swap.max = 0 on v2.
        memory["swap"] = json!(limit);
    } else if !cg.unified {
        // No memsw (swapaccount off): the best v1 can do is not to swap
        // this group's anonymous memory. (v2 has no swappiness knob.)
        memory["swappiness"] = json!(0);
    }
    let mut res = json!({
        // Deny every device; runc adds its default allow list (null, zero,
        // full, random, urandom, tty, pts, ptmx) and creates those nodes.
        "devices": [{ "allow": false, "access": "rwm" }],
        "memory": memory,
        "cpu": {
            // v1 cpu.shares; runc maps it to cpu.weight on v2.
            "shares": (1024 * vcpus).min(262_144),
            "quota": CPU_PERIOD_US * vcpus,
            "period": CPU_PERIOD_US,
        },
        "pids": { "limit": i64::from(r.pids_limit.max(1)) },
    });
    if cg.io_weight {
        res["blockIO"] = json!({ "weight": r.io_weight.clamp(10, 1000) });
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_resolver_follow_the_first_nic() {
        let mut spec = InstanceSpec {
            id: "i-1".into(),
            hostname: "i-1".into(),
            rootfs: "/r".into(),
            command: vec![],
            env: vec![],
            workdir: "/".into(),
            resources: nuage_driver::Resources {
                vcpus: 1,
                memory_mib: 64,
                pids_limit: 64,
                io_weight: 100,
                disk_gib: 1,
            },
            config_drive: vec![],
            nics: vec![nuage_driver::Nic {
                port_id: "eni-1".into(),
                network_id: "vpc-1".into(),
                vlan: None,
                mac: "fa:16:3e:00:00:01".into(),
                address: "10.0.0.5/16".into(),
                gateway: Some("10.0.0.1".into()),
                host_ifname: "nv-1".into(),
            }],
            dns_domain: Some("nuage-1.compute.internal".into()),
        };
        let (hosts, resolv) = name_files(&spec);
        assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");
        assert!(
            hosts.contains("10.0.0.5\tip-10-0-0-5.nuage-1.compute.internal ip-10-0-0-5 i-1\n"),
            "{hosts}"
        );
        assert_eq!(
            resolv,
            "search nuage-1.compute.internal\nnameserver 10.0.0.1\n"
        );
        spec.nics.clear();
        let (hosts, resolv) = name_files(&spec);
        assert!(hosts.contains("127.0.1.1\ti-1\n"), "{hosts}");
        assert!(!resolv.contains("nameserver"), "{resolv}");
    }
}
