//! Which accelerator a node uses, decided by booting a probe guest: KVM
//! only when a guest really reaches its init under it within a timeout.
//! `/dev/kvm` existing proves nothing (on some hosts guests hang under it),
//! so its presence alone never chooses KVM.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::initramfs::Initramfs;
use crate::qemu::{Accel, Vm, VmConfig, BASE_CMDLINE};
use crate::{DriverError, DriverResult};

/// What the probe guest prints once its init runs.
const MARKER: &str = "NUAGE-ACCEL-PROBE-OK";

/// The probe's verdict, with why.
#[derive(Debug, Clone)]
pub struct Probe {
    pub accel: Accel,
    pub reason: String,
    /// How long the KVM guest took to reach its init, when it did.
    pub boot: Option<Duration>,
}

/// The probe guest's initramfs: busybox and an init that prints the
/// marker and powers off.
pub fn probe_initramfs(busybox: &Path, out: &Path) -> DriverResult<()> {
    let file = std::fs::File::create(out)
        .map_err(|e| DriverError::failed(format!("cannot create {}", out.display()), e))?;
    let mut a = Initramfs::new(std::io::BufWriter::new(file));
    a.dir("bin")?;
    a.copy("bin/busybox", busybox)?;
    a.file(
        "init",
        0o755,
        format!("#!/bin/busybox sh\necho {MARKER}\n/bin/busybox poweroff -f\n").as_bytes(),
    )?;
    a.finish()?;
    Ok(())
}

/// Boots the probe guest under KVM and waits up to `timeout` for its
/// marker on the serial console; TCG otherwise. The probe VM is always
/// stopped before this returns.
pub async fn probe(
    qemu: &Path,
    kernel: &Path,
    busybox: &Path,
    work: &Path,
    timeout: Duration,
) -> DriverResult<Probe> {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return Ok(Probe {
            accel: Accel::Tcg,
            reason: "/dev/kvm cannot be opened".into(),
            boot: None,
        });
    }
    let dir = work.join("accel-probe");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| DriverError::failed(format!("cannot create {}", dir.display()), e))?;
    let initrd = dir.join("initrd.gz");
    probe_initramfs(busybox, &initrd)?;
    let cfg = VmConfig {
        name: "nuage-accel-probe".into(),
        accel: Accel::Kvm,
        vcpus: 1,
        memory_mib: 128,
        kernel: kernel.to_path_buf(),
        initrd: Some(initrd),
        cmdline: format!("{BASE_CMDLINE} quiet"),
        disks: vec![],
        nics: vec![],
        smbios: None,
        dir: dir.clone(),
    };
    let started = Instant::now();
    let vm = match Vm::start(qemu, &cfg).await {
        Ok(vm) => vm,
        Err(e) => {
            return Ok(Probe {
                accel: Accel::Tcg,
                reason: format!("QEMU would not start under KVM: {e}"),
                boot: None,
            })
        }
    };
    let booted = loop {
        let console = std::fs::read_to_string(cfg.console_log()).unwrap_or_default();
        if console.contains(MARKER) {
            break Some(started.elapsed());
        }
        if started.elapsed() >= timeout {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    vm.stop(Duration::ZERO).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(match booted {
        Some(t) => Probe {
            accel: Accel::Kvm,
            reason: format!("a guest reached its init under KVM in {} ms", t.as_millis()),
            boot: Some(t),
        },
        None => Probe {
            accel: Accel::Tcg,
            reason: format!(
                "a guest did not reach its init under KVM within {} s",
                timeout.as_secs_f32()
            ),
            boot: None,
        },
    })
}
