//! The guest kernel: Debian's, fetched as a package, and unpacked once from
//! its compressed `bzImage` into the `vmlinux` QEMU boots through the PVH
//! entry (no decompression in the guest: under TCG that alone takes ~3 s
//! of a 5 s boot).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{DriverError, DriverResult};

/// The kernel modules a guest needs for its virtio devices and its ACPI
/// power button, by file name: Debian builds them as modules
/// (`CONFIG_VIRTIO_*=m`, `CONFIG_ACPI_BUTTON=m`, `CONFIG_INPUT_EVDEV=m`), so
/// the initramfs carries them and the guest's init loads them in this order.
pub const GUEST_MODULES: &[&str] = &[
    "evdev.ko",
    "button.ko",
    "virtio.ko",
    "virtio_ring.ko",
    "virtio_mmio.ko",
    "virtio_pci_legacy_dev.ko",
    "virtio_pci_modern_dev.ko",
    "virtio_pci.ko",
    "virtio_blk.ko",
    "failover.ko",
    "net_failover.ko",
    "virtio_net.ko",
];

/// An unpacked guest kernel.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The Debian kernel release, e.g. `6.1.0-57-amd64`.
    pub release: String,
    /// The uncompressed ELF image with its PVH note.
    pub vmlinux: PathBuf,
    /// The compressed image as the package ships it (for machines that
    /// boot through the 16-bit entry).
    pub bzimage: PathBuf,
    /// [`GUEST_MODULES`] found in the package, in that order.
    pub modules: Vec<PathBuf>,
}

/// The compressed kernel inside a `bzImage`, as its setup header locates it.
fn payload(bzimage: &[u8]) -> DriverResult<&[u8]> {
    let invalid = |why: &str| DriverError::Invalid(format!("not a bzImage: {why}"));
    if bzimage.get(0x202..0x206) != Some(b"HdrS") {
        return Err(invalid("no HdrS setup header"));
    }
    let version = u16::from_le_bytes([bzimage[0x206], bzimage[0x207]]);
    if version < 0x208 {
        return Err(invalid("boot protocol before 2.08 has no payload fields"));
    }
    let u32_at = |at: usize| -> DriverResult<usize> {
        let b = bzimage
            .get(at..at + 4)
            .ok_or_else(|| invalid("header cut short"))?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let setup_sects = match bzimage[0x1f1] {
        0 => 4,
        n => usize::from(n),
    };
    let start = (setup_sects + 1) * 512 + u32_at(0x248)?;
    let len = u32_at(0x24c)?;
    bzimage
        .get(start..start.saturating_add(len))
        .ok_or_else(|| invalid("payload outside the file"))
}

/// The uncompressed kernel of a `bzImage`. The payload's length in the
/// header stops short of the xz stream's end in Debian's images, so the
/// decoder reads on to the end of its stream.
pub fn extract_vmlinux(bzimage: &[u8]) -> DriverResult<Vec<u8>> {
    let p = payload(bzimage)?;
    let start = p.as_ptr() as usize - bzimage.as_ptr() as usize;
    let rest = &bzimage[start..];
    let mut out = Vec::with_capacity(p.len() * 8);
    if rest.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        unxz(rest, &mut out)?;
    } else if rest.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(rest)
            .read_to_end(&mut out)
            .map_err(|e| DriverError::Invalid(format!("the kernel's gzip payload: {e}")))?;
    } else {
        let magic: Vec<String> = rest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        return Err(DriverError::Invalid(format!(
            "the kernel's payload is compressed in a format nuage does not unpack (magic {}); xz and gzip are",
            magic.join(" ")
        )));
    }
    if !out.starts_with(b"\x7fELF") {
        return Err(DriverError::Invalid(
            "the kernel's payload is not an ELF image".into(),
        ));
    }
    Ok(out)
}

/// Decodes the one xz stream at the start of `input` (the image goes on
/// after it) into `out`, stopping at the stream's end.
fn unxz(input: &[u8], out: &mut Vec<u8>) -> DriverResult<()> {
    let mut stream = xz2::stream::Stream::new_stream_decoder(u64::MAX, 0)
        .map_err(|e| DriverError::failed("cannot start an xz decoder", e))?;
    loop {
        let used = stream.total_in() as usize;
        if out.capacity() - out.len() < 1 << 20 {
            out.reserve(16 << 20);
        }
        let status = stream
            .process_vec(
                &input[used.min(input.len())..],
                out,
                xz2::stream::Action::Run,
            )
            .map_err(|e| DriverError::Invalid(format!("the kernel's xz payload: {e}")))?;
        match status {
            xz2::stream::Status::StreamEnd => return Ok(()),
            _ if stream.total_in() as usize >= input.len() && out.capacity() > out.len() => {
                return Err(DriverError::Invalid(
                    "the kernel's xz payload ends early".into(),
                ))
            }
            _ => {}
        }
    }
}

/// Whether an ELF64 kernel has the PVH entry note (Xen's
/// `XEN_ELFNOTE_PHYS32_ENTRY`), without which QEMU cannot boot it directly.
pub fn has_pvh_note(elf: &[u8]) -> bool {
    const PT_NOTE: u32 = 4;
    const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
    let u16_at = |at: usize| {
        elf.get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        elf.get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let u64_at = |at: usize| {
        elf.get(at..at + 8).map(|b| {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            u64::from_le_bytes(a)
        })
    };
    // ELF64, little-endian.
    if !elf.starts_with(b"\x7fELF") || elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return false;
    }
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38))
    else {
        return false;
    };
    for i in 0..usize::from(phnum) {
        let ph = phoff as usize + i * usize::from(phentsize);
        if u32_at(ph) != Some(PT_NOTE) {
            continue;
        }
        let (Some(off), Some(size)) = (u64_at(ph + 8), u64_at(ph + 32)) else {
            continue;
        };
        let (mut at, end) = (off as usize, (off + size) as usize);
        while at + 12 <= end {
            let (Some(namesz), Some(descsz), Some(kind)) =
                (u32_at(at), u32_at(at + 4), u32_at(at + 8))
            else {
                break;
            };
            let name = elf.get(at + 12..at + 12 + namesz as usize).unwrap_or(&[]);
            if kind == XEN_ELFNOTE_PHYS32_ENTRY && name.starts_with(b"Xen") {
                return true;
            }
            let pad = |n: u32| (n as usize).div_ceil(4) * 4;
            at += 12 + pad(namesz) + pad(descsz);
        }
    }
    false
}

fn run(cmd: &mut Command) -> DriverResult<String> {
    let out = cmd
        .output()
        .map_err(|e| DriverError::failed(format!("cannot run {cmd:?}"), e))?;
    if !out.status.success() {
        return Err(DriverError::Failed(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The kernel package `linux-image-amd64` stands for on this machine.
fn debian_kernel_package() -> DriverResult<String> {
    let deps = run(Command::new("apt-cache").args(["depends", "linux-image-amd64"]))?;
    deps.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(str::trim)
        .find(|p| p.starts_with("linux-image-") && p.ends_with("-amd64"))
        .map(str::to_string)
        .ok_or_else(|| {
            DriverError::Failed(
                "apt knows no kernel behind linux-image-amd64 (run apt-get update)".into(),
            )
        })
}

/// Debian's current amd64 kernel in `cache` (fetched with `apt-get download`
/// and unpacked once; later calls reuse it). The package is read as a
/// stream: only the kernel and the virtio modules are written.
pub fn debian_kernel(cache: &Path) -> DriverResult<Kernel> {
    let package = debian_kernel_package()?;
    let release = package.trim_start_matches("linux-image-").to_string();
    // The layout's version: a cache written with fewer modules is not reused.
    let dir = cache.join(format!("{release}.2"));
    let kernel = Kernel {
        release: release.clone(),
        vmlinux: dir.join("vmlinux"),
        bzimage: dir.join("vmlinuz"),
        modules: GUEST_MODULES
            .iter()
            .map(|m| dir.join("modules").join(m))
            .collect(),
    };
    if kernel.vmlinux.exists() {
        return Ok(kernel.present());
    }
    // Concurrent fetches (threads or processes) each work apart; the first
    // to publish wins and the others use its copy.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let work = cache.join(format!(".fetch-{}-{nanos}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("modules"))
        .map_err(|e| DriverError::failed(format!("cannot create {}", work.display()), e))?;
    run(Command::new("apt-get")
        .args(["download", "-q", &package])
        .current_dir(&work))?;
    let deb = std::fs::read_dir(&work)
        .map_err(|e| DriverError::failed("cannot list the download", e))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| DriverError::Failed(format!("apt-get download {package} left no .deb")))?;
    let mut child = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| DriverError::failed("cannot run dpkg-deb", e))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| DriverError::Failed("dpkg-deb has no stdout".into()))?;
    let mut archive = tar::Archive::new(stdout);
    let entries = archive
        .entries()
        .map_err(|e| DriverError::failed("cannot read the kernel package", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| DriverError::failed("kernel package entry", e))?;
        let path = entry
            .path()
            .map_err(|e| DriverError::failed("kernel package path", e))?
            .into_owned();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let to = if path.starts_with("./boot") && name.starts_with("vmlinuz-") {
            work.join("vmlinuz")
        } else if GUEST_MODULES.contains(&name.as_str()) {
            work.join("modules").join(&name)
        } else {
            continue;
        };
        entry
            .unpack(&to)
            .map_err(|e| DriverError::failed(format!("cannot unpack {}", path.display()), e))?;
    }
    let _ = child.wait();
    let bz = std::fs::read(work.join("vmlinuz"))
        .map_err(|e| DriverError::failed("the package holds no vmlinuz", e))?;
    let elf = extract_vmlinux(&bz)?;
    if !has_pvh_note(&elf) {
        return Err(DriverError::Invalid(format!(
            "{package}'s kernel has no PVH entry note; QEMU cannot boot it directly"
        )));
    }
    std::fs::write(work.join("vmlinux"), elf)
        .map_err(|e| DriverError::failed("cannot write vmlinux", e))?;
    let _ = std::fs::remove_file(&deb);
    // Published whole or not at all.
    if let Err(e) = std::fs::rename(&work, &dir) {
        let _ = std::fs::remove_dir_all(&work);
        if !kernel.vmlinux.exists() {
            return Err(DriverError::failed(
                format!("cannot publish {}", dir.display()),
                e,
            ));
        }
    }
    Ok(kernel.present())
}

impl Kernel {
    /// Drops the modules the package did not have (older kernels had no
    /// split virtio-pci helpers).
    fn present(mut self) -> Self {
        self.modules.retain(|m| m.exists());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_bzimage() {
        assert!(matches!(
            extract_vmlinux(b"hello"),
            Err(DriverError::Invalid(_))
        ));
        let mut fake = vec![0u8; 0x400];
        fake[0x202..0x206].copy_from_slice(b"HdrS");
        fake[0x206] = 0x0f;
        fake[0x207] = 0x02;
        fake[0x1f1] = 1;
        // Payload at 1024 (past the end).
        assert!(extract_vmlinux(&fake).is_err());
        assert!(!has_pvh_note(b"\x7fELF"));
        assert!(!has_pvh_note(&fake));
    }
}
