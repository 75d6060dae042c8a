//! The parts of the virtual machine driver (issue 14, ADR 34): one QEMU
//! process per instance, controlled through its QMP socket and never by
//! signals alone; the accelerator decided by really booting a probe guest
//! (KVM when it boots in time, else TCG); guests booted fast through the
//! kernel's PVH entry on QEMU's `microvm` machine, from a `vmlinux`
//! extracted once from the distribution's compressed `bzImage`, with an
//! initramfs nuage writes itself.

pub mod accel;
pub mod guest;
pub mod initramfs;
pub mod kernel;
pub mod qemu;
pub mod qmp;

pub use nuage_driver::{DriverError, DriverResult};

/// The QEMU binary: `NUAGE_QEMU` or Debian's `qemu-system-x86_64`.
pub fn qemu_binary() -> std::path::PathBuf {
    std::env::var_os("NUAGE_QEMU")
        .map(Into::into)
        .unwrap_or_else(|| "qemu-system-x86_64".into())
}
