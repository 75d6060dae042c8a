//! Benchmark (not a test): how long each way of booting Debian's kernel
//! takes to reach the guest's init under one accelerator, side by side in
//! one run. Prints a Markdown table for docs/benchmarks.md.
//!
//!     cargo run --release -p nuage-driver-vm --example boot-paths -- [RUNS] [tcg|kvm]
//!
//! 1. `pc` machine (SeaBIOS) with the compressed bzImage: the usual way.
//! 2. `microvm` (qboot) with the compressed bzImage.
//! 3. `microvm` with the unpacked vmlinux through its PVH entry: what the
//!    VM driver does.
//!
//! Each boot: QEMU spawned → the init's marker on the serial console.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nuage_driver_vm::qemu::BASE_CMDLINE;
use nuage_driver_vm::{accel, kernel, qemu_binary};

const MARKER: &str = "NUAGE-ACCEL-PROBE-OK";

fn boot(machine: &str, accel: &str, kernel: &Path, initrd: &Path, log: &Path) -> Option<Duration> {
    let _ = std::fs::remove_file(log);
    let t = Instant::now();
    let mut child = Command::new(qemu_binary())
        .args([
            "-machine", machine, "-accel", accel, "-m", "256M", "-smp", "1",
        ])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-no-reboot",
        ])
        .args([
            "-chardev",
            &format!("file,id=c,path={}", log.display()),
            "-serial",
            "chardev:c",
        ])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", &format!("{BASE_CMDLINE} quiet")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let got = loop {
        if std::fs::read_to_string(log)
            .unwrap_or_default()
            .contains(MARKER)
        {
            break Some(t.elapsed());
        }
        if t.elapsed() > Duration::from_secs(60) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let _ = child.kill();
    let _ = child.wait();
    got
}

fn main() {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let accel_name = args.next().unwrap_or_else(|| "tcg".into());
    let cache = PathBuf::from("/var/cache/nuage-test/kernel");
    std::fs::create_dir_all(&cache).expect("cache");
    let k = kernel::debian_kernel(&cache).expect("Debian's kernel");
    let tmp = tempfile::tempdir().expect("tmp");
    let initrd = tmp.path().join("initrd.gz");
    accel::probe_initramfs(Path::new("/bin/busybox"), &initrd).expect("initramfs");
    let log = tmp.path().join("console.log");
    let paths = [
        ("`pc` (SeaBIOS), compressed bzImage", "pc", &k.bzimage),
        (
            "`microvm` (qboot), compressed bzImage",
            "microvm,acpi=on",
            &k.bzimage,
        ),
        (
            "`microvm`, vmlinux through the PVH entry",
            "microvm,acpi=on,pit=off,pic=off,rtc=on",
            &k.vmlinux,
        ),
    ];
    println!("| boot path ({accel_name}, kernel {}, 1 vCPU, 256 MiB), QEMU spawned → init's marker on the serial console, n={runs} | p50 | min | max |", k.release);
    println!("|---|---|---|---|");
    for (what, machine, image) in paths {
        let mut ms: Vec<f64> = (0..runs)
            .filter_map(|_| boot(machine, &accel_name, image, &initrd, &log))
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        if ms.is_empty() {
            println!("| {what} | did not boot within 60 s | | |");
            continue;
        }
        println!(
            "| {what} | {:.0} ms | {:.0} ms | {:.0} ms |",
            ms[ms.len() / 2],
            ms[0],
            ms[ms.len() - 1]
        );
    }
}
