//! Least privilege (ADR 16) against real runc: user namespaces, seccomp,
//! loopback, /proc. Run as root; they fail (never skip) without runc or
//! /bin/busybox.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use common::{fixture, new_id, Fixture};
use nuage_driver::{ComputeDriver, Power};
use nuage_driver_container::{ContainerConfig, ContainerDriver};

const T: Duration = Duration::from_secs(20);

/// The first host id the driver hands out (`userns::FIRST_BASE`).
const FIRST_BASE: u32 = 1 << 28;

fn pid_of(p: &Power) -> u32 {
    match p {
        Power::Running { pid } => *pid,
        other => panic!("expected Running, got {other:?}"),
    }
}

/// The real and effective ids of a host process, from its status file.
fn host_ids(pid: u32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in status of {pid}"));
    line.split_whitespace()
        .skip(1)
        .map(|v| v.parse().expect("id"))
        .collect()
}

/// A static x86-64 program that makes one system call with three integer
/// arguments and exits with the error it got (1 for EPERM), or 0 when the
/// call succeeded. Hand-assembled: images have no compiler, and busybox has
/// no applet for keyctl.
fn syscall_probe(nr: u32, args: [u32; 3]) -> Vec<u8> {
    assert_eq!(
        std::env::consts::ARCH,
        "x86_64",
        "the syscall probe is x86-64 code"
    );
    let mut code = Vec::new();
    for (op, v) in [
        (0xB8u8, nr),
        (0xBF, args[0]),
        (0xBE, args[1]),
        (0xBA, args[2]),
    ] {
        code.push(op); // mov eax|edi|esi|edx, imm32
        code.extend_from_slice(&v.to_le_bytes());
    }
    code.extend_from_slice(&[0x45, 0x31, 0xD2]); // xor r10d, r10d
    code.extend_from_slice(&[0x0F, 0x05]); // syscall
    code.extend_from_slice(&[0x85, 0xC0]); // test eax, eax
    code.extend_from_slice(&[0x78, 0x04]); // js +4 (an error)
    code.extend_from_slice(&[0x31, 0xC0]); // xor eax, eax (success: 0)
    code.extend_from_slice(&[0xEB, 0x02]); // jmp +2
    code.extend_from_slice(&[0xF7, 0xD8]); // neg eax (-errno → errno)
    code.extend_from_slice(&[0x89, 0xC7]); // mov edi, eax
    code.extend_from_slice(&[0xB8, 60, 0, 0, 0]); // mov eax, 60 (exit)
    code.extend_from_slice(&[0x0F, 0x05]); // syscall
    let load: u64 = 0x40_0000;
    let entry = load + 64 + 56;
    let size = (64 + 56 + code.len()) as u64;
    let mut elf = Vec::new();
    elf.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0");
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3Eu16.to_le_bytes()); // x86-64
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&entry.to_le_bytes());
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers
    elf.extend_from_slice(&0u64.to_le_bytes()); // no sections
    elf.extend_from_slice(&0u32.to_le_bytes());
    for v in [64u16, 56, 1, 64, 0, 0] {
        elf.extend_from_slice(&v.to_le_bytes());
    }
    elf.extend_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    elf.extend_from_slice(&5u32.to_le_bytes()); // R+X
    elf.extend_from_slice(&0u64.to_le_bytes()); // offset
    elf.extend_from_slice(&load.to_le_bytes());
    elf.extend_from_slice(&load.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&0x1000u64.to_le_bytes());
    elf.extend_from_slice(&code);
    elf
}

fn put_probe(fx: &Fixture, name: &str, nr: u32, args: [u32; 3]) {
    let path = fx.rootfs.join("bin").join(name);
    std::fs::write(&path, syscall_probe(nr, args)).expect("write probe");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

async fn run(fx: &Fixture, script: &str) -> (String, String, u32) {
    let id = new_id();
    let spec = fx.spec(&id, &format!("{script}; echo DONE; exec sleep 1000"));
    let obs = fx
        .driver
        .ensure_running(&spec)
        .await
        .expect("ensure_running");
    let pid = pid_of(&obs.power);
    let c = fx.wait_console(&id, "DONE", T).await;
    (id, c, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_inside_is_an_unprivileged_range_outside_one_per_instance() {
    let fx = fixture();
    let (a, c, pid) = run(
        &fx,
        "id; ls -ln /bin/busybox; touch /made-inside; echo written=$?; cat /proc/self/uid_map",
    )
    .await;
    assert!(
        c.contains("uid=0(root) gid=0(root)") || c.contains("uid=0 gid=0"),
        "{c}"
    );
    // The image's root-owned files are the instance root's, through the
    // idmapped image: root inside can write over them (copy-up).
    assert!(c.contains(" 0        0 ") || c.contains(" 0 0 "), "{c}");
    assert!(c.contains("written=0"), "{c}");
    let uids = host_ids(pid, "Uid:");
    let base = uids[0];
    assert!(base >= FIRST_BASE, "root inside is host uid {base}: {c}");
    assert!(uids.iter().all(|&u| u == base), "{uids:?}");
    assert!(host_ids(pid, "Gid:").iter().all(|&g| g == base));
    let map = ["0".to_string(), base.to_string(), "65536".to_string()];
    assert!(
        c.lines()
            .any(|l| l.split_whitespace().eq(map.iter().map(String::as_str))),
        "{c}"
    );
    // Written inside, owned outside by the instance's root: not the host's.
    let upper = fx.driver.instance_dir(&a).join("disk/upper/made-inside");
    assert_eq!(std::fs::metadata(&upper).expect("upper file").uid(), base);
    // The image itself is untouched (no chown of the shared lower).
    assert_eq!(
        std::fs::metadata(fx.rootfs.join("bin/busybox"))
            .expect("image")
            .uid(),
        0
    );
    // The instance's directory: its own root may pass, no other host user.
    for d in [fx.driver.instance_dir(&a), fx.driver.run_dir(&a)] {
        let dir = std::fs::metadata(&d).expect("dir");
        assert_eq!(
            (dir.uid(), dir.gid(), dir.mode() & 0o7777),
            (0, base, 0o710),
            "{}",
            d.display()
        );
    }

    // A second instance gets a range of its own.
    let (b, _, pid_b) = run(&fx, "true").await;
    let base_b = host_ids(pid_b, "Uid:")[0];
    assert!(
        base_b >= FIRST_BASE && base_b.abs_diff(base) >= 65_536,
        "{base} {base_b}"
    );

    // A restarted driver never hands out a live range again.
    let again = ContainerDriver::new(ContainerConfig {
        state_dir: fx.tmp.path().join("state"),
        runtime: fx.driver.config().runtime.clone(),
        cgroup_parent: fx.parent.clone(),
    })
    .expect("driver restarts");
    let c_id = new_id();
    let spec = fx.spec(&c_id, "exec sleep 1000");
    let obs = again.ensure_running(&spec).await.expect("third instance");
    let base_c = host_ids(pid_of(&obs.power), "Uid:")[0];
    assert!(
        base_c != base && base_c != base_b,
        "a live range was reused: {base} {base_b} {base_c}"
    );
    for id in [&a, &b, &c_id] {
        fx.driver.ensure_absent(id).await.expect("absent");
        fx.assert_nothing_left(id);
    }
    // Removed instances free their ranges: the lowest comes back.
    let (d, _, pid_d) = run(&fx, "true").await;
    assert_eq!(host_ids(pid_d, "Uid:")[0], base.min(base_b).min(base_c));
    fx.driver.ensure_absent(&d).await.expect("absent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seccomp_denies_keyctl_and_new_user_namespaces() {
    let fx = fixture();
    // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, create):
    // allowed to any process without seccomp, denied by Docker's profile.
    put_probe(&fx, "probe-keyctl", 250, [0, (-3i32) as u32, 1]);
    // unshare(CLONE_NEWUSER | CLONE_NEWNS): unprivileged user namespaces
    // are allowed by the kernel, even nested; the profile denies unshare.
    put_probe(&fx, "probe-unshare", 272, [0x1000_0000 | 0x0002_0000, 0, 0]);
    // getpid: allowed, so the probe itself is proven to work.
    put_probe(&fx, "probe-getpid", 39, [0, 0, 0]);
    let (id, c, _) = run(
        &fx,
        "probe-getpid; echo getpid=$?; probe-keyctl; echo keyctl=$?; \
         probe-unshare; echo unshare=$?; \
         unshare -U -m true; echo unshare-cmd=$?; \
         mount -t tmpfs t /mnt; echo mount=$?; \
         grep Seccomp: /proc/self/status",
    )
    .await;
    assert!(c.contains("getpid=0"), "{c}");
    assert!(c.contains("keyctl=1"), "keyctl must fail with EPERM: {c}");
    assert!(c.contains("unshare=1"), "unshare must fail with EPERM: {c}");
    assert!(!c.contains("unshare-cmd=0"), "{c}");
    assert!(!c.contains("mount=0"), "{c}");
    assert!(c.contains("Seccomp:\t2"), "no seccomp filter: {c}");
    fx.driver.ensure_absent(&id).await.expect("absent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_is_up() {
    let fx = fixture();
    let (id, c, _) = run(
        &fx,
        "ip link show lo; ping -c 1 -W 2 127.0.0.1 >/dev/null 2>&1; echo ping=$?",
    )
    .await;
    let link = c.lines().find(|l| l.contains("lo:")).unwrap_or_default();
    assert!(link.contains(",UP"), "lo is down: {c}");
    assert!(c.contains("ping=0"), "{c}");
    fx.driver.ensure_absent(&id).await.expect("absent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proc_tricks_do_not_write_host_files() {
    let fx = fixture();
    let core_pattern = std::fs::read("/proc/sys/kernel/core_pattern").expect("core_pattern");
    let id = new_id();
    let spec = fx.spec(
        &id,
        "for f in /proc/sys/kernel/core_pattern /proc/sysrq-trigger /proc/1/root/etc/hosts \
           /proc/self/root/mnt/config/openstack/latest/user_data /proc/sys/vm/drop_caches; do \
           if echo '|/tmp/pwn' > $f 2>/dev/null; then echo WROTE $f; else echo refused $f; fi; done; \
         chmod 666 /etc/hosts 2>/dev/null && echo CHMOD-HOSTS; \
         echo DONE; exec sleep 1000",
    );
    fx.driver.ensure_running(&spec).await.expect("run");
    let c = fx.wait_console(&id, "DONE", T).await;
    assert!(!c.contains("WROTE"), "{c}");
    assert!(!c.contains("CHMOD-HOSTS"), "{c}");
    assert_eq!(c.matches("refused ").count(), 5, "{c}");
    assert_eq!(
        std::fs::read("/proc/sys/kernel/core_pattern").expect("core_pattern"),
        core_pattern
    );
    let dir = fx.driver.run_dir(&id);
    let hosts = std::fs::read_to_string(dir.join("hosts")).expect("hosts");
    assert!(hosts.starts_with("127.0.0.1\tlocalhost"), "{hosts}");
    assert_eq!(
        std::fs::metadata(dir.join("hosts")).expect("hosts").mode() & 0o777,
        0o644
    );
    let ud = std::fs::read(dir.join("config-drive/openstack/latest/user_data")).expect("ud");
    assert_eq!(ud, b"#!/bin/sh\necho user-data-here\n");
    assert!(Path::new("/proc/sys/kernel/core_pattern").exists());
    fx.driver.ensure_absent(&id).await.expect("absent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_disk_is_the_types_size_and_full_is_enospc() {
    let fx = fixture();
    assert_eq!(common::resources().disk_gib, 1);
    let (id, c, _) = run(
        &fx,
        "df -k / | tail -1; dd if=/dev/zero of=/fill bs=1M count=1200 2>&1; \
         echo dd-done; rm /fill; echo after > /after && echo rewritable",
    )
    .await;
    // df: 1 GiB less the filesystem's own metadata (< 3%).
    let size_kib: u64 = c
        .lines()
        .find(|l| l.ends_with(" /"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no df line: {c}"));
    assert!(
        ((1 << 20) * 97 / 100..=1 << 20).contains(&size_kib),
        "df / shows {size_kib} KiB: {c}"
    );
    assert!(c.contains("No space left on device"), "{c}");
    assert!(c.contains("rewritable"), "space comes back once freed: {c}");
    // The host's filesystem holds a sparse file no larger than the disk.
    let image = fx.driver.instance_dir(&id).join("disk.img");
    let m = std::fs::metadata(&image).expect("disk.img");
    assert_eq!(m.len(), 1 << 30);
    assert!(m.blocks() * 512 <= (1 << 30) + (1 << 20), "{}", m.blocks());
    fx.driver.ensure_absent(&id).await.expect("absent");
    fx.assert_nothing_left(&id);
}
