//! One QEMU process per VM: its command line from a [`VmConfig`], started
//! daemonized (so that it outlives a crash of nuage and is found again by
//! its pidfile and QMP socket), stopped through QMP (ACPI power button,
//! then `quit`), and a signal only when QMP no longer answers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal};

use crate::qmp::Qmp;
use crate::{DriverError, DriverResult};

/// How QEMU runs guest code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualization through /dev/kvm.
    Kvm,
    /// QEMU's own translator: slower, works everywhere.
    Tcg,
}

impl Accel {
    pub fn as_str(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// A disk of the VM: virtio-blk on the microvm's virtio-mmio bus.
#[derive(Debug, Clone)]
pub struct Disk {
    pub id: String,
    pub path: PathBuf,
    /// `raw` or `qcow2`; never probed from the file's contents.
    pub format: String,
    pub read_only: bool,
}

/// A NIC of the VM: virtio-net on a TAP device the network agent made.
#[derive(Debug, Clone)]
pub struct VmNic {
    pub id: String,
    pub tap: String,
    pub mac: String,
}

/// SMBIOS system information (type 1), read by cloud-init to recognise
/// the cloud.
#[derive(Debug, Clone)]
pub struct Smbios {
    pub manufacturer: String,
    pub product: String,
    pub serial: String,
    pub uuid: String,
}

/// Everything a VM's QEMU is started with.
#[derive(Debug, Clone)]
pub struct VmConfig {
    pub name: String,
    pub accel: Accel,
    pub vcpus: u32,
    pub memory_mib: u64,
    /// An ELF `vmlinux` with the PVH note.
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
    pub disks: Vec<Disk>,
    pub nics: Vec<VmNic>,
    pub smbios: Option<Smbios>,
    /// The VM's run directory: `qmp.sock`, `qemu.pid`, `console.log`.
    pub dir: PathBuf,
}

/// Kernel arguments every guest gets: the serial console, no reboot on
/// panic (QEMU exits instead, with `-no-reboot`), and a fixed TSC and loop
/// calibration, without which the microvm machine hangs calibrating.
pub const BASE_CMDLINE: &str =
    "console=ttyS0 reboot=t panic=-1 tsc_early_khz=2000000 lpj=8000000 i8042.noaux i8042.nomux i8042.dumbkbd";

impl VmConfig {
    pub fn qmp_socket(&self) -> PathBuf {
        self.dir.join("qmp.sock")
    }

    pub fn pidfile(&self) -> PathBuf {
        self.dir.join("qemu.pid")
    }

    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }

    /// QEMU's arguments (without the binary).
    pub fn args(&self) -> Vec<String> {
        let p = |x: &Path| x.display().to_string();
        let mut a: Vec<String> = vec![
            "-name".into(),
            format!("guest={},debug-threads=on", self.name),
            // microvm: no PCI, no firmware, virtio-mmio; ACPI for the power
            // button; the legacy PIT and PIC are not needed with the
            // kernel's APIC.
            "-machine".into(),
            "microvm,acpi=on,pit=off,pic=off,isa-serial=on,rtc=on".into(),
            "-accel".into(),
            self.accel.as_str().into(),
            "-cpu".into(),
            match self.accel {
                Accel::Kvm => "host".into(),
                Accel::Tcg => "max".into(),
            },
            "-smp".into(),
            self.vcpus.max(1).to_string(),
            "-m".into(),
            format!("{}M", self.memory_mib.max(64)),
            "-nodefaults".into(),
            "-no-user-config".into(),
            "-display".into(),
            "none".into(),
            "-no-reboot".into(),
            // The serial console appends, so that nuage may cut its head
            // off to bound it while QEMU writes on.
            "-chardev".into(),
            format!("file,id=console,path={},append=on", p(&self.console_log())),
            "-serial".into(),
            "chardev:console".into(),
            "-qmp".into(),
            format!("unix:{},server=on,wait=off", p(&self.qmp_socket())),
            "-pidfile".into(),
            p(&self.pidfile()),
            "-daemonize".into(),
            "-kernel".into(),
            p(&self.kernel),
            "-append".into(),
            self.cmdline.clone(),
        ];
        if let Some(initrd) = &self.initrd {
            a.extend(["-initrd".into(), p(initrd)]);
        }
        if let Some(s) = &self.smbios {
            a.extend([
                "-smbios".into(),
                format!(
                    "type=1,manufacturer={},product={},serial={},uuid={}",
                    s.manufacturer, s.product, s.serial, s.uuid
                ),
            ]);
        }
        for d in &self.disks {
            a.extend([
                "-blockdev".into(),
                format!(
                    "driver=file,filename={},node-name={}-file,read-only={}",
                    p(&d.path),
                    d.id,
                    if d.read_only { "on" } else { "off" }
                ),
                "-blockdev".into(),
                format!(
                    "driver={},file={}-file,node-name={},read-only={}",
                    d.format,
                    d.id,
                    d.id,
                    if d.read_only { "on" } else { "off" }
                ),
                "-device".into(),
                format!("virtio-blk-device,drive={},id=dev-{}", d.id, d.id),
            ]);
        }
        for n in &self.nics {
            a.extend([
                "-netdev".into(),
                format!("tap,id={},ifname={},script=no,downscript=no", n.id, n.tap),
                "-device".into(),
                format!("virtio-net-device,netdev={},mac={}", n.id, n.mac),
            ]);
        }
        a
    }
}

/// A running (or once running) VM's QEMU.
#[derive(Debug, Clone)]
pub struct Vm {
    pub dir: PathBuf,
    pub pid: i32,
}

fn pid_alive(pid: i32) -> bool {
    Pid::from_raw(pid).is_some_and(|p| rustix::process::test_kill_process(p).is_ok())
}

impl Vm {
    /// Starts QEMU for `cfg`; returns once QEMU has daemonized (its
    /// devices are set up and the guest is starting).
    pub async fn start(qemu: &Path, cfg: &VmConfig) -> DriverResult<Vm> {
        std::fs::create_dir_all(&cfg.dir)
            .map_err(|e| DriverError::failed(format!("cannot create {}", cfg.dir.display()), e))?;
        let _ = std::fs::remove_file(cfg.qmp_socket());
        let _ = std::fs::remove_file(cfg.pidfile());
        let out = tokio::process::Command::new(qemu)
            .args(cfg.args())
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| DriverError::failed(format!("cannot run {}", qemu.display()), e))?;
        if !out.status.success() {
            return Err(DriverError::Failed(format!(
                "QEMU for {} did not start ({}): {}",
                cfg.name,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Vm::find(&cfg.dir).ok_or_else(|| {
            DriverError::Failed(format!(
                "QEMU for {} started but left no live pidfile",
                cfg.name
            ))
        })
    }

    /// The VM whose run directory is `dir`, if its QEMU still lives.
    pub fn find(dir: &Path) -> Option<Vm> {
        let pid: i32 = std::fs::read_to_string(dir.join("qemu.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        // A pid reused by another program is not this VM.
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let needle = dir.join("qmp.sock").display().to_string();
        let ours = cmdline
            .split(|b| *b == 0)
            .any(|arg| String::from_utf8_lossy(arg).contains(&needle));
        (ours && pid_alive(pid)).then(|| Vm {
            dir: dir.to_path_buf(),
            pid,
        })
    }

    pub fn alive(&self) -> bool {
        Vm::find(&self.dir).is_some_and(|v| v.pid == self.pid)
    }

    pub async fn qmp(&self) -> DriverResult<Qmp> {
        Qmp::connect(&self.dir.join("qmp.sock")).await
    }

    /// Waits up to `timeout` for the process to be gone.
    async fn gone_within(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.alive() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Stops the VM: the ACPI power button and up to `grace` for the guest
    /// to power off, then QMP `quit`, and SIGKILL only if QEMU no longer
    /// answers. Idempotent: a VM already gone is stopped.
    pub async fn stop(&self, grace: Duration) -> DriverResult<()> {
        if !self.alive() {
            return Ok(());
        }
        if !grace.is_zero() {
            if let Ok(mut q) = self.qmp().await {
                if q.execute("system_powerdown", None).await.is_ok()
                    && self.gone_within(grace).await
                {
                    return Ok(());
                }
            }
        }
        if let Ok(mut q) = self.qmp().await {
            // QEMU answers and then exits; the answer may be lost with it.
            let _ = q.execute("quit", None).await;
            if self.gone_within(Duration::from_secs(5)).await {
                return Ok(());
            }
        }
        tracing::warn!(pid = self.pid, dir = %self.dir.display(), "QEMU does not answer QMP; killing it");
        if let Some(pid) = Pid::from_raw(self.pid) {
            let _ = rustix::process::kill_process(pid, Signal::KILL);
        }
        if self.gone_within(Duration::from_secs(5)).await {
            Ok(())
        } else {
            Err(DriverError::Failed(format!(
                "QEMU {} survived SIGKILL",
                self.pid
            )))
        }
    }
}
