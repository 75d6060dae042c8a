//! Applying one tar stream (a rootfs tarball, an image layer, or the outer
//! archive being staged) onto a directory, as `docker load` would inside a
//! chroot: symlinks met on the way resolve inside the directory, `..` in a
//! member name is refused, device nodes are skipped (the runtime provides
//! /dev), and OCI whiteouts delete what lower layers left.
//!
//! The tar crate parses and writes each member's data, mode, owner and mtime;
//! where a member goes is decided here, because the crate's own containment
//! check resolves symlinks on the host (an image's `/var/run -> /run` would
//! then point out of the image) and its hard link handling trusts the name.

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use crate::{ImageError, Result};

/// Symlinks followed while resolving one path, as Linux's MAXSYMLINKS.
const MAX_LINKS: usize = 40;
const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// Directory mtimes to set once everything is written (writing into a
/// directory changes its mtime), keyed by real path.
pub(crate) type DirTimes = BTreeMap<PathBuf, u64>;

/// Counts of what a stream held.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Applied {
    /// Members seen, including skipped ones.
    pub entries: u64,
}

/// What went wrong reading the archive, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    None,
    Ended,
    Failed(io::ErrorKind),
}

/// Reads through to `inner`, remembering whether reading failed or hit the
/// end, so an error while writing a member can be blamed on the archive
/// (truncated, corrupt) or on the node (disk full).
struct Watch<R> {
    inner: R,
    trouble: Rc<Cell<Trouble>>,
}

impl<R: Read> Read for Watch<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(0) if !buf.is_empty() => {
                if self.trouble.get() == Trouble::None {
                    self.trouble.set(Trouble::Ended);
                }
                Ok(0)
            }
            Err(e) => {
                self.trouble.set(Trouble::Failed(e.kind()));
                Err(e)
            }
            ok => ok,
        }
    }
}

/// Where a path inside `root` really is, following symlinks as if `root`
/// were `/` (absolute targets and `..` never leave it). Missing directories
/// are created (0755, as docker does) when `create` is set; otherwise a
/// missing component ends the walk with `None`. The last component is
/// followed only if `follow_last`, and may be missing.
pub(crate) fn resolve(
    root: &Path,
    rel: &Path,
    follow_last: bool,
    create: bool,
) -> Result<Option<PathBuf>> {
    let mut done: Vec<OsString> = Vec::new();
    let mut todo: VecDeque<OsString> = VecDeque::new();
    push_components(&mut todo, rel, 0);
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        if c == ".." {
            done.pop();
            continue;
        }
        let last = todo.is_empty();
        let mut path = root.to_path_buf();
        path.extend(&done);
        path.push(&c);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() && (follow_last || !last) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(ImageError::invalid(format!(
                        "too many levels of symbolic links resolving /{}",
                        rel.display()
                    )));
                }
                let target = fs::read_link(&path).map_err(|e| ImageError::io(path.display(), e))?;
                if target.is_absolute() {
                    done.clear();
                }
                push_components(&mut todo, &target, 0);
            }
            Ok(m) => {
                if !last && !m.is_dir() {
                    if create {
                        return Err(ImageError::invalid(format!(
                            "/{} is not a directory",
                            display_rel(&done, &c)
                        )));
                    }
                    return Ok(None);
                }
                if create && !m.is_dir() && !m.file_type().is_symlink() {
                    return Err(ImageError::invalid(format!(
                        "/{} is not a directory",
                        display_rel(&done, &c)
                    )));
                }
                done.push(c);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if create {
                    fs::create_dir(&path).map_err(|e| fs_error(root, &path, e))?;
                } else if !last {
                    return Ok(None);
                }
                done.push(c);
            }
            Err(e) => return Err(fs_error(root, &path, e)),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&done);
    Ok(Some(out))
}

fn display_rel(done: &[OsString], c: &OsStr) -> String {
    let mut p = PathBuf::new();
    p.extend(done);
    p.push(c);
    p.display().to_string()
}

/// Queues `path`'s components at the front of `todo` (at `at`), `..` kept
/// as a marker; root and `.` dropped.
fn push_components(todo: &mut VecDeque<OsString>, path: &Path, at: usize) {
    let mut i = at;
    for c in path.components() {
        let s = match c {
            Component::Normal(s) => s.to_os_string(),
            Component::ParentDir => OsString::from(".."),
            _ => continue,
        };
        todo.insert(i, s);
        i += 1;
    }
}

/// A member name made relative and checked: leading `/` and `.` dropped (as
/// GNU tar does), `..` refused: nothing legitimate needs it.
pub(crate) fn clean(name: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                return Err(ImageError::invalid(format!(
                    "unsafe path {:?} in the archive (contains ..)",
                    name.display().to_string()
                )))
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

/// An error of the node's filesystem at `path` (in the tree at `root`): the
/// node's fault unless it can only come from what the archive asked for,
/// which is then told without the node's paths.
pub(crate) fn fs_error(root: &Path, path: &Path, e: io::Error) -> ImageError {
    use io::ErrorKind as K;
    let node = matches!(
        e.kind(),
        K::StorageFull
            | K::QuotaExceeded
            | K::ReadOnlyFilesystem
            | K::OutOfMemory
            | K::PermissionDenied
            | K::Interrupted
            | K::TimedOut
            | K::ResourceBusy
            | K::StaleNetworkFileHandle
    ) || e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error())
        || e.raw_os_error() == Some(rustix::io::Errno::MFILE.raw_os_error())
        || e.raw_os_error() == Some(rustix::io::Errno::NFILE.raw_os_error());
    if node {
        ImageError::io(format!("writing {}", path.display()), e)
    } else {
        let shown = path.strip_prefix(root).unwrap_or(path);
        ImageError::invalid(format!("cannot create /{}: {}", shown.display(), cause(&e)))
    }
}

/// Removes whatever is at `path` without following a symlink there.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let r = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ImageError::io(format!("removing {}", path.display()), e)),
    }
}

/// Applies the tar stream `reader` onto `root` and gives the reader back
/// (for the caller to drain: checksums sit at the end of gzip streams).
/// With `whiteouts`, `.wh.` members delete from what is already in `root`.
pub(crate) fn apply<R: Read>(
    reader: R,
    root: &Path,
    whiteouts: bool,
    dirs: &mut DirTimes,
) -> Result<(R, Applied)> {
    let trouble = Rc::new(Cell::new(Trouble::None));
    let mut archive = tar::Archive::new(Watch {
        inner: reader,
        trouble: trouble.clone(),
    });
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    archive.set_mask(0);
    let mut applied = Applied::default();
    // Paths this stream wrote, and their ancestors: an opaque marker or a
    // whiteout only hides what lower layers had.
    let mut touched: HashSet<PathBuf> = HashSet::new();
    // The last parent directory resolved, valid until something is removed
    // or a directory member arrives (either can change what a path means).
    let mut cached: Option<(PathBuf, PathBuf)> = None;
    let not_tar = |n: u64, e: io::Error| {
        // The tar crate quotes the bad header's bytes: only say why when
        // that reads as text.
        let why = cause(&e);
        let why = if why.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            format!(" ({why})")
        } else {
            String::new()
        };
        if n == 0 {
            ImageError::invalid(format!("not a tar archive{why}"))
        } else {
            ImageError::invalid(format!(
                "corrupt or truncated tar archive: bad header after {n} members{why}"
            ))
        }
    };
    let entries = archive.entries().map_err(|e| not_tar(0, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| not_tar(applied.entries, e))?;
        applied.entries += 1;
        let kind = entry.header().entry_type();
        let name = entry
            .path()
            .map_err(|e| ImageError::invalid(format!("bad member name: {e}")))?
            .into_owned();
        let rel = clean(&name)?;
        use tar::EntryType as T;
        match kind {
            T::Char | T::Block | T::Fifo | T::XGlobalHeader => continue,
            T::Regular | T::Continuous | T::GNUSparse | T::Directory | T::Symlink | T::Link => {}
            // Unknown types: POSIX says regular file, but nothing we know
            // makes them; skipping is the safer reading.
            _ => continue,
        }
        if kind != T::Link && (entry.header().uid().is_err() || entry.header().gid().is_err()) {
            return Err(ImageError::invalid(format!(
                "member {:?} has a malformed owner (uid/gid) field",
                name.display().to_string()
            )));
        }
        let Some(file_name) = rel.file_name().map(OsStr::to_os_string) else {
            // The archive's root (`./`): its mode and owner are the rootfs's.
            if kind == T::Directory {
                entry
                    .unpack(root)
                    .map_err(|e| member_error(trouble.get(), &name, root, root, e))?;
                if let Ok(t) = entry.header().mtime() {
                    dirs.insert(root.to_path_buf(), t);
                }
            }
            continue;
        };
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();

        if whiteouts && file_name.as_bytes().starts_with(WHITEOUT) {
            cached = None;
            let bytes = file_name.as_bytes();
            let victim = OsStr::from_bytes(&bytes[WHITEOUT.len()..]);
            if victim.is_empty() || victim == "." || victim == ".." {
                return Err(ImageError::invalid(format!(
                    "bad whiteout {:?}",
                    name.display().to_string()
                )));
            }
            // Whiteouts of what is not there (or not in a real directory
            // of this tree) have nothing to hide.
            let Some(dir) = resolve(root, &parent_rel, true, false)? else {
                continue;
            };
            if !fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            if bytes == OPAQUE {
                let list = fs::read_dir(&dir).map_err(|e| ImageError::io(dir.display(), e))?;
                for child in list {
                    let child = child.map_err(|e| ImageError::io(dir.display(), e))?;
                    let path = child.path();
                    if !touched.contains(&path) {
                        remove_any(&path)?;
                    }
                }
            } else if bytes.starts_with(b".wh..wh.") {
                // AUFS bookkeeping (.wh..wh.plnk and friends): not content.
            } else {
                let path = dir.join(victim);
                if !touched.contains(&path) {
                    remove_any(&path)?;
                }
            }
            continue;
        }

        let parent = match &cached {
            Some((r, p)) if *r == parent_rel => p.clone(),
            _ => {
                let p = resolve(root, &parent_rel, true, true)?.ok_or_else(|| {
                    ImageError::Io(format!("cannot create /{}", parent_rel.display()))
                })?;
                cached = Some((parent_rel.clone(), p.clone()));
                p
            }
        };
        let dst = parent.join(&file_name);
        // What lower layers (or earlier members) left is replaced, except a
        // directory by a directory, which merges (docker's rule).
        match fs::symlink_metadata(&dst) {
            Ok(m) if m.is_dir() && kind == T::Directory => {}
            Ok(_) => {
                remove_any(&dst)?;
                cached = None;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fs_error(root, &dst, e)),
        }
        if kind == T::Link {
            let target = entry
                .link_name()
                .map_err(|e| ImageError::invalid(format!("bad hard link name: {e}")))?
                .ok_or_else(|| {
                    ImageError::invalid(format!(
                        "hard link {:?} without a target",
                        name.display().to_string()
                    ))
                })?
                .into_owned();
            let target_rel = clean(&target)?;
            let src = resolve(root, &target_rel, false, false)?
                .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| !m.is_dir()))
                .ok_or_else(|| {
                    ImageError::invalid(format!(
                        "hard link {:?} points to {:?}, which is not in the archive before it",
                        name.display().to_string(),
                        target.display().to_string()
                    ))
                })?;
            fs::hard_link(&src, &dst).map_err(|e| fs_error(root, &dst, e))?;
        } else {
            entry
                .unpack(&dst)
                .map_err(|e| member_error(trouble.get(), &name, root, &dst, e))?;
        }
        if kind == T::Directory {
            cached = None;
            if let Ok(t) = entry.header().mtime() {
                dirs.insert(dst.clone(), t);
            }
        }
        if whiteouts {
            let mut p = dst;
            while p.starts_with(root) && touched.insert(p.clone()) {
                if !p.pop() {
                    break;
                }
            }
        }
    }
    let watch = archive.into_inner();
    Ok((watch.inner, applied))
}

/// The innermost error: the tar crate wraps OS errors in messages naming
/// the node's paths.
fn cause(e: &io::Error) -> String {
    let mut inner: &dyn std::error::Error = e;
    if let Some(wrapped) = e.get_ref() {
        inner = wrapped;
    }
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string()
}

/// Blames a failed member on the archive when reading it failed or ended
/// early, and on the node's filesystem otherwise.
fn member_error(
    trouble: Trouble,
    name: &Path,
    root: &Path,
    dst: &Path,
    e: io::Error,
) -> ImageError {
    let name = name.display().to_string();
    match trouble {
        Trouble::Ended | Trouble::Failed(io::ErrorKind::UnexpectedEof) => ImageError::invalid(
            format!("the archive is truncated: it ends inside member {name:?}"),
        ),
        Trouble::Failed(_) => ImageError::invalid(format!(
            "the archive is corrupt inside member {name:?} ({})",
            cause(&e)
        )),
        Trouble::None => fs_error(root, dst, e),
    }
}

/// Sets the directory mtimes recorded while applying (after the last write
/// into them); directories removed since are skipped.
pub(crate) fn set_dir_times(dirs: &DirTimes) -> Result<()> {
    for (dir, secs) in dirs.iter().rev() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(*secs);
        let f = match fs::File::open(dir) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ImageError::io(dir.display(), e)),
        };
        if !f.metadata().is_ok_and(|m| m.is_dir()) {
            continue;
        }
        f.set_times(fs::FileTimes::new().set_modified(t).set_accessed(t))
            .map_err(|e| ImageError::io(format!("setting times of {}", dir.display()), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn resolve_stays_inside() {
        let d = tempfile::tempdir().expect("tempdir");
        let root = d.path();
        fs::create_dir_all(root.join("usr/bin")).expect("mkdir");
        fs::write(root.join("usr/bin/dash"), b"x").expect("write");
        symlink("usr/bin", root.join("bin")).expect("symlink");
        symlink("dash", root.join("usr/bin/sh")).expect("symlink");
        symlink("/", root.join("up")).expect("symlink");
        symlink("../../../../..", root.join("usr/escape")).expect("symlink");
        symlink("loop", root.join("loop")).expect("symlink");

        let r = |p: &str, follow| resolve(root, Path::new(p), follow, false).expect("resolves");
        assert_eq!(r("bin/sh", true), Some(root.join("usr/bin/dash")));
        assert_eq!(r("bin/sh", false), Some(root.join("usr/bin/sh")));
        assert_eq!(
            r("/up/up/usr/bin/dash", true),
            Some(root.join("usr/bin/dash"))
        );
        assert_eq!(r("usr/escape/etc", true), Some(root.join("etc")));
        assert_eq!(r("usr/escape/etc/passwd", true), None);
        assert_eq!(r("missing/x", true), None);
        assert!(resolve(root, Path::new("loop"), true, false).is_err());

        let made = resolve(root, Path::new("up/var/lib/x"), true, true)
            .expect("creates")
            .expect("a path");
        assert_eq!(made, root.join("var/lib/x"));
        assert!(made.is_dir());
    }

    #[test]
    fn clean_refuses_parent_components() {
        assert_eq!(
            clean(Path::new("/./etc//passwd")).expect("ok"),
            PathBuf::from("etc/passwd")
        );
        assert!(clean(Path::new("../etc/x")).is_err());
        assert!(clean(Path::new("a/../../b")).is_err());
    }
}
