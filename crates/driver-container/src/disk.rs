//! The root disk of each instance (ADR 16): a sparse file holding an ext4
//! filesystem of the instance type's size, attached to a loop device and
//! mounted at `disk/`, which holds the overlay's upper and work
//! directories. Writing past the size fails with ENOSPC inside, and `df /`
//! shows the size (overlayfs reports its upper filesystem).
//!
//! Why not project quotas on one shared filesystem: this kernel has no
//! quota format for ext4 (QFMT_V2), no XFS quota and no tmpfs quota, so
//! project quotas cannot be had; measured in ADR 16. `mkfs` runs once per
//! size (a template under `disks/`); each instance's file is a sparse copy
//! of it (only the metadata blocks are copied), so a launch pays a copy of a
//! few hundred KiB, a loop attach and a mount. The loop device is attached
//! with two ioctls (`LOOP_CTL_GET_FREE`, `LOOP_CONFIGURE` with autoclear),
//! not by running `losetup` twice, which cost a launch ~5 ms.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use rustix::fs::SeekFrom;

/// Makes the per-size templates and attaches loop devices.
pub(crate) struct Disks {
    templates: PathBuf,
    mkfs: PathBuf,
    /// Serialises template creation (one `mkfs` per size, ever).
    making: Mutex<()>,
}

impl Disks {
    pub fn new(templates: PathBuf, mkfs: PathBuf) -> Disks {
        Disks {
            templates,
            mkfs,
            making: Mutex::new(()),
        }
    }

    /// Mounts the instance's disk (`image`, made `size_gib` large if
    /// missing) at `mount_point`, unless something is mounted there already.
    pub fn ensure_mounted(
        &self,
        image: &Path,
        size_gib: u64,
        mount_point: &Path,
    ) -> io::Result<()> {
        if is_mount_point(mount_point)? {
            return Ok(());
        }
        if !image.exists() {
            let template = self.template(size_gib)?;
            let tmp = image.with_extension("tmp");
            copy_sparse(&template, &tmp)?;
            std::fs::rename(&tmp, image)?;
        }
        // The device detaches itself when its last user goes (autoclear):
        // the mount, or this open file if the mount fails.
        let (dev, _open) = attach(image)?;
        rustix::mount::mount(
            &dev,
            mount_point,
            "ext4",
            rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
            c"",
        )?;
        Ok(())
    }

    /// The template of `size_gib`, made (ext4, no journal, no reserved
    /// blocks, no resize inode) on first use.
    fn template(&self, size_gib: u64) -> io::Result<PathBuf> {
        let path = self.templates.join(format!("{size_gib}G.ext4"));
        let _guard = self.making.lock().unwrap_or_else(|e| e.into_inner());
        if path.exists() {
            return Ok(path);
        }
        std::fs::create_dir_all(&self.templates)?;
        let tmp = path.with_extension("tmp");
        let f = File::create(&tmp)?;
        f.set_len(
            size_gib.checked_mul(1 << 30).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "disk size overflows")
            })?,
        )?;
        drop(f);
        self.run(
            &self.mkfs,
            &[
                "-q".as_ref(),
                "-F".as_ref(),
                "-t".as_ref(),
                "ext4".as_ref(),
                "-m".as_ref(),
                "0".as_ref(),
                "-O".as_ref(),
                "^has_journal,^resize_inode".as_ref(),
                "-E".as_ref(),
                "nodiscard,lazy_itable_init=1,root_owner=0:0".as_ref(),
                tmp.as_os_str(),
            ],
        )?;
        File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    fn run(&self, bin: &Path, args: &[&std::ffi::OsStr]) -> io::Result<Vec<u8>> {
        let out = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("exec {}: {e}", bin.display())))?;
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(io::Error::other(format!(
                "{} failed ({}): {}",
                bin.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

/// `/dev/loop-control`'s "give me a free device" request.
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
/// Binds a backing file and sets its flags in one call (Linux 5.8).
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
/// Detach when the last reference (the mount) goes.
const LO_FLAGS_AUTOCLEAR: u32 = 4;

/// `struct loop_info64` of <linux/loop.h>.
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    size_limit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// `struct loop_config` of <linux/loop.h>.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// Attaches `image` to a free loop device, marked to detach itself with its
/// last user. Returns the device's path and its open file (the one user until
/// the caller mounts it). Another process may take the free device between
/// the two calls (EBUSY): then ask again.
fn attach(image: &Path) -> io::Result<(PathBuf, File)> {
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")?;
    let backing = OpenOptions::new().read(true).write(true).open(image)?;
    let mut info = LoopInfo64 {
        device: 0,
        inode: 0,
        rdevice: 0,
        offset: 0,
        size_limit: 0,
        number: 0,
        encrypt_type: 0,
        encrypt_key_size: 0,
        flags: LO_FLAGS_AUTOCLEAR,
        file_name: [0; 64],
        crypt_name: [0; 64],
        encrypt_key: [0; 32],
        init: [0; 2],
    };
    // For `losetup --list` and /sys/block/loopN/loop/backing_file readers.
    let name = image.as_os_str().as_encoded_bytes();
    let tail = &name[name.len().saturating_sub(63)..];
    info.file_name[..tail.len()].copy_from_slice(tail);
    let config = LoopConfig {
        fd: u32::try_from(backing.as_raw_fd()).map_err(io::Error::other)?,
        block_size: 0,
        info,
        reserved: [0; 8],
    };
    for _ in 0..16 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and writes nothing.
        #[allow(unsafe_code)]
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let dev = PathBuf::from(format!("/dev/loop{n}"));
        let loop_file = OpenOptions::new().read(true).write(true).open(&dev)?;
        // SAFETY: the argument points to a live `struct loop_config` of the
        // layout the kernel reads; the kernel writes nothing back; both fds
        // are open for the whole call.
        #[allow(unsafe_code)]
        let rc = unsafe {
            libc::ioctl(
                loop_file.as_raw_fd(),
                LOOP_CONFIGURE,
                &config as *const LoopConfig,
            )
        };
        if rc == 0 {
            return Ok((dev, loop_file));
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EBUSY) {
            return Err(io::Error::new(
                err.kind(),
                format!("attaching {} to {}: {err}", image.display(), dev.display()),
            ));
        }
    }
    Err(io::Error::other(
        "every free loop device was taken by someone else 16 times in a row",
    ))
}

/// Whether `path` is the root of a mount other than its parent's.
pub(crate) fn is_mount_point(path: &Path) -> io::Result<bool> {
    let Some(parent) = path.parent() else {
        return Ok(true);
    };
    match std::fs::metadata(path) {
        Ok(m) => Ok(m.dev() != std::fs::metadata(parent)?.dev()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Copies `from` to `to` extent by extent, leaving holes holes.
fn copy_sparse(from: &Path, to: &Path) -> io::Result<()> {
    let src = File::open(from)?;
    let len = src.metadata()?.len();
    let dst = File::create(to)?;
    dst.set_len(len)?;
    let mut pos = 0u64;
    while pos < len {
        let data = match rustix::fs::seek(&src, SeekFrom::Data(pos)) {
            Ok(d) => d,
            // No data after `pos`: the rest is a hole.
            Err(rustix::io::Errno::NXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let hole = rustix::fs::seek(&src, SeekFrom::Hole(data))?;
        let (mut off_in, mut off_out) = (data, data);
        while off_in < hole {
            let want = usize::try_from(hole - off_in).unwrap_or(usize::MAX);
            let n = rustix::fs::copy_file_range(
                &src,
                Some(&mut off_in),
                &dst,
                Some(&mut off_out),
                want,
            )?;
            if n == 0 {
                return Err(io::Error::other("template shrank while copied"));
            }
        }
        pos = hole;
    }
    dst.sync_all()
}
