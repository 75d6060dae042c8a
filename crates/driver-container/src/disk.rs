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
//! few hundred KiB, a loop attach and a mount.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use rustix::fs::SeekFrom;

/// Makes the per-size templates and attaches loop devices.
pub(crate) struct Disks {
    templates: PathBuf,
    mkfs: PathBuf,
    losetup: PathBuf,
    /// Serialises template creation (one `mkfs` per size, ever).
    making: Mutex<()>,
}

impl Disks {
    pub fn new(templates: PathBuf, mkfs: PathBuf, losetup: PathBuf) -> Disks {
        Disks {
            templates,
            mkfs,
            losetup,
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
        let dev = self.attach(image)?;
        let mounted = rustix::mount::mount(
            &dev,
            mount_point,
            "ext4",
            rustix::mount::MountFlags::NOSUID | rustix::mount::MountFlags::NODEV,
            c"",
        );
        // Detaching a device in use only marks it to be freed with its last
        // user (the mount): nothing is left behind when the disk is unmounted.
        let detached = self.run(self.losetup.as_path(), &["-d".as_ref(), dev.as_os_str()]);
        mounted?;
        detached.map(|_| ())
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

    /// `losetup --find --show`: a free loop device backed by `image`.
    fn attach(&self, image: &Path) -> io::Result<PathBuf> {
        let out = self.run(
            &self.losetup,
            &["--find".as_ref(), "--show".as_ref(), image.as_os_str()],
        )?;
        let dev = String::from_utf8_lossy(&out).trim().to_string();
        if !dev.starts_with("/dev/loop") {
            return Err(io::Error::other(format!("losetup answered {dev:?}")));
        }
        Ok(PathBuf::from(dev))
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
