//! Snapshots of an instance's root disk (CreateImage, Nova's
//! `createImage`): the merged overlay root filesystem, as the instance
//! sees it, written as one flat tar of a root filesystem, the format the
//! image store takes from `nuage image upload`.
//!
//! Why the merged view rather than the upper directory as a second layer:
//! the image store turns a root filesystem tar into an image with no parent
//! to keep, so images made from instances are images like any other (they
//! can be shared, and their source image deregistered). The cost is a copy
//! of the whole filesystem, measured in ADR 28.
//!
//! Owners: the host sees the instance's files under its slot of host ids
//! (ADR 16), base + id; the tar carries the ids the instance knows (id),
//! and any id outside the slot as 65534 (`nobody`, the kernel's overflow
//! id). Only what the image store unpacks is written: directories, regular
//! files, hard links and symbolic links (devices, FIFOs and sockets would
//! be skipped at unpacking anyway; extended attributes are not unpacked).
//!
//! Consistency: a running instance's cgroup is frozen for the copy (cgroup
//! v2 `cgroup.freeze`, v1 `freezer.state`), so the tar is one moment of its
//! disk, and thawed whatever happened. A `frozen` marker is written before
//! the freeze and removed after the thaw; the driver thaws every instance
//! that still has one when it starts, so a crash mid-copy never leaves an
//! instance frozen.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::userns::RANGE;

/// The kernel's overflow id, for owners outside the instance's slot.
const OVERFLOW_ID: u64 = 65_534;

/// How long a freeze may take to settle before the snapshot gives up.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);

/// Writes the tree at `root` to `out` as a tar, owners shifted down by
/// `base`. Returns how many members it wrote.
pub(crate) fn write_tar(root: &Path, base: u32, out: impl Write) -> io::Result<u64> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut count = 0u64;
    let meta = std::fs::symlink_metadata(root)?;
    let mut h = header(&meta, base, tar::EntryType::Directory);
    tar.append_data(&mut h, "./", io::empty())?;
    count += 1;
    // Depth first, sorted: the same disk gives the same bytes.
    let mut todo: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let dir = root.join(&rel);
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| at(&dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(|e| at(&dir, e))?;
        names.sort();
        let mut subdirs = Vec::new();
        for name in names {
            let rel_path = rel.join(&name);
            let path = root.join(&rel_path);
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                // Removed since listed (a stopped instance's tree, or a
                // running one's between freeze checks): not part of it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(at(&path, e)),
            };
            let ft = meta.file_type();
            if ft.is_dir() {
                let mut h = header(&meta, base, tar::EntryType::Directory);
                tar.append_data(&mut h, &rel_path, io::empty())
                    .map_err(|e| at(&path, e))?;
                subdirs.push(rel_path);
            } else if ft.is_symlink() {
                let target = std::fs::read_link(&path).map_err(|e| at(&path, e))?;
                let mut h = header(&meta, base, tar::EntryType::Symlink);
                tar.append_link(&mut h, &rel_path, &target)
                    .map_err(|e| at(&path, e))?;
            } else if ft.is_file() {
                if meta.nlink() > 1 {
                    let key = (meta.dev(), meta.ino());
                    if let Some(first) = links.get(&key) {
                        let mut h = header(&meta, base, tar::EntryType::Link);
                        tar.append_link(&mut h, &rel_path, first)
                            .map_err(|e| at(&path, e))?;
                        count += 1;
                        continue;
                    }
                    links.insert(key, rel_path.clone());
                }
                let f = File::open(&path).map_err(|e| at(&path, e))?;
                let mut h = header(&meta, base, tar::EntryType::Regular);
                h.set_size(meta.len());
                // A file that changed size since lstat (a stopped
                // instance's disk does not change; a frozen one neither)
                // would corrupt the archive: read exactly what was declared.
                let mut r = io::Read::take(f, meta.len());
                let mut buf = Vec::new();
                if meta.len() <= 64 * 1024 {
                    io::Read::read_to_end(&mut r, &mut buf).map_err(|e| at(&path, e))?;
                    if buf.len() as u64 != meta.len() {
                        return Err(at(&path, io::Error::other("changed size while copied")));
                    }
                    tar.append_data(&mut h, &rel_path, buf.as_slice())
                        .map_err(|e| at(&path, e))?;
                } else {
                    let mut exact = Exact {
                        inner: r,
                        left: meta.len(),
                    };
                    tar.append_data(&mut h, &rel_path, &mut exact)
                        .map_err(|e| at(&path, e))?;
                    if exact.left != 0 {
                        return Err(at(&path, io::Error::other("shrank while copied")));
                    }
                }
            } else {
                // Devices, FIFOs, sockets: the image store skips them.
                continue;
            }
            count += 1;
        }
        // Pushed in reverse so that the smallest name is walked first.
        todo.extend(subdirs.into_iter().rev());
    }
    tar.into_inner()?.flush()?;
    Ok(count)
}

/// A reader that counts what it still owes.
struct Exact<R> {
    inner: R,
    left: u64,
}

impl<R: io::Read> io::Read for Exact<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

fn header(meta: &std::fs::Metadata, base: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(unshift(meta.uid(), base));
    h.set_gid(unshift(meta.gid(), base));
    h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
    h.set_size(0);
    h
}

/// The id the instance knows for host id `id`.
fn unshift(id: u32, base: u32) -> u64 {
    if id >= base && id - base < RANGE {
        u64::from(id - base)
    } else {
        OVERFLOW_ID
    }
}

fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// The instance's freezer: the v2 `cgroup.freeze` or v1 `freezer.state`
/// file of one of its cgroup directories.
pub(crate) enum Freezer {
    V2(PathBuf),
    V1(PathBuf),
}

impl Freezer {
    /// The freezer among the instance's cgroup directories, if it has one.
    pub fn find(dirs: impl IntoIterator<Item = PathBuf>) -> Option<Freezer> {
        for d in dirs {
            if d.join("cgroup.freeze").exists() {
                return Some(Freezer::V2(d));
            }
            if d.join("freezer.state").exists() {
                return Some(Freezer::V1(d));
            }
        }
        None
    }

    /// Freezes and waits until every process is frozen.
    pub fn freeze(&self) -> io::Result<()> {
        let deadline = Instant::now() + FREEZE_TIMEOUT;
        match self {
            Freezer::V2(d) => {
                std::fs::write(d.join("cgroup.freeze"), "1")?;
                loop {
                    let events = std::fs::read_to_string(d.join("cgroup.events"))?;
                    if events.lines().any(|l| l.trim() == "frozen 1") {
                        return Ok(());
                    }
                    if Instant::now() >= deadline {
                        return Err(io::Error::other("the cgroup did not freeze in 10 s"));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Freezer::V1(d) => {
                let state = d.join("freezer.state");
                std::fs::write(&state, "FROZEN")?;
                loop {
                    if std::fs::read_to_string(&state)?.trim() == "FROZEN" {
                        return Ok(());
                    }
                    if Instant::now() >= deadline {
                        return Err(io::Error::other("the cgroup did not freeze in 10 s"));
                    }
                    // FREEZING: tasks still being stopped; asking again
                    // moves it on.
                    std::fs::write(&state, "FROZEN")?;
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        }
    }

    pub fn thaw(&self) -> io::Result<()> {
        match self {
            Freezer::V2(d) => std::fs::write(d.join("cgroup.freeze"), "0"),
            Freezer::V1(d) => std::fs::write(d.join("freezer.state"), "THAWED"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_outside_the_slot_become_nobody() {
        let base = 1 << 28;
        assert_eq!(unshift(base, base), 0);
        assert_eq!(unshift(base + 1000, base), 1000);
        assert_eq!(unshift(base + RANGE, base), OVERFLOW_ID);
        assert_eq!(unshift(0, base), OVERFLOW_ID);
    }

    #[test]
    fn tar_holds_files_links_and_directories_with_shifted_owners() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("etc/sub")).expect("mkdir");
        std::fs::write(root.join("etc/motd"), b"hello").expect("write");
        let big = vec![7u8; 200_000];
        std::fs::write(root.join("big"), &big).expect("write");
        std::fs::hard_link(root.join("etc/motd"), root.join("etc/sub/motd2")).expect("link");
        std::os::unix::fs::symlink("motd", root.join("etc/ln")).expect("symlink");
        let mut out = Vec::new();
        // The test's own files: owned by ids outside any slot.
        let n = write_tar(root, 1 << 28, &mut out).expect("tar");
        assert_eq!(
            n, 7,
            "root, big, etc, etc/ln, etc/motd, etc/sub, etc/sub/motd2"
        );
        let mut a = tar::Archive::new(out.as_slice());
        let mut seen = Vec::new();
        for e in a.entries().expect("entries") {
            let mut e = e.expect("entry");
            let path = e.path().expect("path").display().to_string();
            let kind = e.header().entry_type();
            assert_eq!(e.header().uid().expect("uid"), OVERFLOW_ID);
            let mut data = Vec::new();
            io::Read::read_to_end(&mut e, &mut data).expect("read");
            match path.as_str() {
                "etc/motd" => assert_eq!(data, b"hello"),
                "big" => assert_eq!(data, big),
                "etc/sub/motd2" => {
                    assert_eq!(kind, tar::EntryType::Link);
                    assert_eq!(
                        e.link_name().expect("link").expect("some").to_str(),
                        Some("etc/motd")
                    );
                }
                "etc/ln" => assert_eq!(kind, tar::EntryType::Symlink),
                _ => {}
            }
            seen.push(path);
        }
        assert_eq!(
            seen,
            [
                "./",
                "big",
                "etc",
                "etc/ln",
                "etc/motd",
                "etc/sub",
                "etc/sub/motd2"
            ]
        );
    }
}
