//! Host-side mounts: the overlay root filesystem of each instance. Made with mount(2)
//! directly (rustix), never by exec'ing mount(8).

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};

const OVERLAYFS_SUPER_MAGIC: u64 = 0x794c_7630;
const NSFS_MAGIC: u64 = 0x6e73_6673;
pub(crate) const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;

/// The filesystem type (`statfs.f_type`) of whatever is mounted at `path`.
pub(crate) fn fs_type(path: &Path) -> io::Result<u64> {
    let st = rustix::fs::statfs(path)?;
    // f_type is a signed word whose width depends on the arch; magics are 32-bit.
    Ok(st.f_type as u64 & 0xffff_ffff)
}

pub(crate) fn is_overlay(path: &Path) -> bool {
    matches!(fs_type(path), Ok(OVERLAYFS_SUPER_MAGIC))
}

pub(crate) fn is_nsfs(path: &Path) -> bool {
    matches!(fs_type(path), Ok(NSFS_MAGIC))
}

/// Characters that overlayfs' option parser would split or misread.
pub(crate) fn overlay_safe(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|s| !s.contains([',', ':', '\\', '\n']) && !s.is_empty())
}

/// Mounts overlayfs at `target`: `lower` read-only and shared, `upper` and
/// `work` private to the instance. `index=off` because many instances share
/// one lower directory (with the index on, the kernel refuses that).
pub(crate) fn mount_overlay(
    lower: &Path,
    upper: &Path,
    work: &Path,
    target: &Path,
) -> io::Result<()> {
    for p in [lower, upper, work] {
        if !overlay_safe(p) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("path unusable in overlay options: {}", p.display()),
            ));
        }
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={},index=off",
        lower.display(),
        upper.display(),
        work.display()
    );
    let data = CString::new(data).map_err(io::Error::other)?;
    rustix::mount::mount(
        "overlay",
        target,
        "overlay",
        MountFlags::empty(),
        data.as_c_str(),
    )?;
    Ok(())
}

/// Unmounts everything stacked on `path`; lazily (MNT_DETACH) if busy.
/// Ok when nothing is (or remains) mounted there.
pub(crate) fn unmount_all(path: &Path) -> io::Result<()> {
    for _ in 0..32 {
        match rustix::mount::unmount(path, UnmountFlags::NOFOLLOW) {
            Ok(()) => continue,
            Err(Errno::BUSY) => {
                rustix::mount::unmount(path, UnmountFlags::DETACH | UnmountFlags::NOFOLLOW)?
            }
            // Not a mount point (any more), or gone.
            Err(Errno::INVAL) | Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other(format!(
        "{} stays mounted",
        path.display()
    )))
}

/// Mount points listed in `/proc/self/mountinfo`, with their filesystem type
/// and super options.
pub(crate) struct MountEntry {
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub super_options: String,
}

pub(crate) fn mountinfo() -> io::Result<Vec<MountEntry>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text.lines().filter_map(parse_mountinfo_line).collect())
}

fn parse_mountinfo_line(line: &str) -> Option<MountEntry> {
    let (left, right) = line.split_once(" - ")?;
    let mount_point = left.split(' ').nth(4)?;
    let mut r = right.split(' ');
    let fs_type = r.next()?.to_string();
    let _source = r.next()?;
    let super_options = r.next().unwrap_or("").to_string();
    Some(MountEntry {
        mount_point: PathBuf::from(unescape(mount_point)),
        fs_type,
        super_options,
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo() {
        let e = parse_mountinfo_line(
            "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
        )
        .expect("parses");
        assert_eq!(e.mount_point, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(e.fs_type, "cgroup");
        assert_eq!(e.super_options, "rw,memory");
        let e = parse_mountinfo_line(
            "99 27 0:50 / /var/lib/a\\040b/x rw shared:1 - overlay overlay rw,lowerdir=/x",
        )
        .expect("parses");
        assert_eq!(e.mount_point, PathBuf::from("/var/lib/a b/x"));
    }
}
