//! Real QEMU guests: Debian's kernel (fetched with apt-get download and
//! unpacked to a PVH vmlinux) with an initramfs nuage writes, booted on the
//! microvm machine. Needs root-free QEMU (qemu-system-x86), busybox-static
//! and apt's package lists, as CI has.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nuage_driver_vm::initramfs::Initramfs;
use nuage_driver_vm::kernel::{self, Kernel};
use nuage_driver_vm::qemu::{Accel, Vm, VmConfig, BASE_CMDLINE};
use nuage_driver_vm::{accel, guest, qemu_binary};

/// The kernel, fetched once per machine into a cache the tests share.
fn kernel() -> Kernel {
    let cache = PathBuf::from("/var/cache/nuage-test/kernel");
    std::fs::create_dir_all(&cache).expect("kernel cache");
    kernel::debian_kernel(&cache).expect("Debian's kernel (apt-get download)")
}

fn busybox() -> PathBuf {
    let p = PathBuf::from("/bin/busybox");
    assert!(p.exists(), "busybox-static is needed");
    p
}

/// An initramfs whose init prints `lines` then idles (it never powers off:
/// the tests stop it).
fn initramfs(dir: &Path, script: &str) -> PathBuf {
    let out = dir.join("initrd.gz");
    let mut a = Initramfs::new(std::fs::File::create(&out).expect("initrd"));
    a.dir("bin").expect("dir");
    a.dir("proc").expect("dir");
    a.copy("bin/busybox", &busybox()).expect("busybox");
    a.file(
        "init",
        0o755,
        format!("#!/bin/busybox sh\n{script}").as_bytes(),
    )
    .expect("init");
    a.finish().expect("finish");
    out
}

fn wait_console(cfg: &VmConfig, want: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let c = std::fs::read_to_string(cfg.console_log()).unwrap_or_default();
        if c.contains(want) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{want:?} never showed on the console:\n{c}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_kernel_is_unpacked_to_a_pvh_vmlinux() {
    let k = kernel();
    let elf = std::fs::read(&k.vmlinux).expect("vmlinux");
    assert!(kernel::has_pvh_note(&elf));
    let bz = std::fs::read(&k.bzimage).expect("vmlinuz");
    assert!(!kernel::has_pvh_note(&bz));
    assert_eq!(kernel::extract_vmlinux(&bz).expect("extract"), elf);
    assert!(
        k.modules.iter().any(|m| m.ends_with("virtio_net.ko")),
        "{:?}",
        k.modules
    );
}

#[tokio::test]
async fn a_tcg_guest_boots_answers_qmp_and_stops() {
    let k = kernel();
    let tmp = tempfile::tempdir().expect("tmp");
    let initrd = initramfs(
        tmp.path(),
        "/bin/busybox mount -t proc proc /proc\necho guest-up $(/bin/busybox cat /proc/cmdline | /bin/busybox sed 's/.*nuage.id=\\([^ ]*\\).*/\\1/')\nwhile true; do /bin/busybox sleep 1; done\n",
    );
    let cfg = VmConfig {
        name: "i-0123456789abcdef0".into(),
        accel: Accel::Tcg,
        vcpus: 1,
        memory_mib: 256,
        kernel: k.vmlinux.clone(),
        initrd: Some(initrd),
        cmdline: format!("{BASE_CMDLINE} quiet nuage.id=i-0123456789abcdef0"),
        disks: vec![],
        nics: vec![],
        smbios: None,
        dir: tmp.path().join("run"),
    };
    let vm = Vm::start(&qemu_binary(), &cfg).await.expect("start");
    wait_console(
        &cfg,
        "guest-up i-0123456789abcdef0",
        Duration::from_secs(90),
    );

    // Found again from its run directory alone, as after a restart.
    let again = Vm::find(&cfg.dir).expect("found by its pidfile");
    assert_eq!(again.pid, vm.pid);
    let mut q = again.qmp().await.expect("qmp");
    assert_eq!(q.status().await.expect("status"), "running");
    assert!(q.version.starts_with(char::is_numeric), "{}", q.version);
    let err = q
        .execute("no-such-command", None)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("CommandNotFound"), "{err}");
    drop(q);

    // The guest ignores the power button (no acpid): the grace runs out,
    // QMP quit ends it.
    let t = Instant::now();
    vm.stop(Duration::from_secs(1)).await.expect("stop");
    assert!(!vm.alive());
    assert!(Vm::find(&cfg.dir).is_none());
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    vm.stop(Duration::from_secs(1))
        .await
        .expect("stopping again is fine");
}

#[tokio::test]
async fn the_accelerator_is_chosen_by_a_real_boot() {
    let k = kernel();
    let tmp = tempfile::tempdir().expect("tmp");
    let t = Instant::now();
    let p = accel::probe(
        &qemu_binary(),
        &k.vmlinux,
        &busybox(),
        tmp.path(),
        Duration::from_secs(8),
    )
    .await
    .expect("probe");
    eprintln!("probe: {:?} in {:?}", p, t.elapsed());
    match p.accel {
        Accel::Kvm => assert!(p.boot.is_some_and(|b| b < Duration::from_secs(8)), "{p:?}"),
        Accel::Tcg => assert!(p.boot.is_none() && !p.reason.is_empty(), "{p:?}"),
    }
    // Bounded by the timeout, and no probe QEMU left behind.
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(Vm::find(&tmp.path().join("accel-probe")).is_none());
    let left = std::process::Command::new("pgrep")
        .args(["-f", "nuage-accel-probe"])
        .output()
        .expect("pgrep");
    assert!(left.stdout.is_empty(), "a probe QEMU is left");
}

/// The busybox guest loads its modules, finds no network device here, and
/// powers off on the ACPI power button: a graceful stop, well within its
/// grace, without `quit`.
#[tokio::test]
async fn the_busybox_guest_powers_off_on_the_power_button() {
    let k = kernel();
    let tmp = tempfile::tempdir().expect("tmp");
    let initrd = tmp.path().join("initrd.gz");
    guest::busybox_initramfs(&k, &busybox(), &initrd).expect("initramfs");
    let cfg = VmConfig {
        name: "i-00000000000000bb0".into(),
        accel: Accel::Tcg,
        vcpus: 1,
        memory_mib: 256,
        kernel: k.vmlinux.clone(),
        initrd: Some(initrd),
        cmdline: format!("{BASE_CMDLINE} quiet"),
        disks: vec![],
        nics: vec![],
        smbios: None,
        dir: tmp.path().join("run"),
    };
    let vm = Vm::start(&qemu_binary(), &cfg).await.expect("start");
    wait_console(&cfg, "nuage-vm: no network device", Duration::from_secs(90));
    // acpid has had time to open the button's input device.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let t = Instant::now();
    vm.stop(Duration::from_secs(60)).await.expect("stop");
    assert!(!vm.alive());
    let c = wait_console(&cfg, "power button, powering off", Duration::from_secs(1));
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "{:?}\n{c}",
        t.elapsed()
    );
}
