//! Images a fresh node can make without internet access, as gzip-compressed
//! rootfs tarballs to import like any upload: `busybox` from Debian's
//! busybox-static (instant, ~1 MiB), `debian` with debootstrap from the
//! node's own apt mirror (minutes, ~50 MiB). Both start [`NUAGE_INIT`].

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{self, BufRead, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use flate2::write::GzEncoder;
use flate2::Compression;

use crate::elf::Elf;
use crate::layer::{clean, resolve};
use crate::{ImageError, Result};

/// The init of built-in images, installed as `/sbin/nuage-init`: prints the
/// boot, runs a `#!` user-data script from the config drive once per
/// instance, then idles as PID 1 until SIGTERM.
pub const NUAGE_INIT: &str = include_str!("nuage-init.sh");

/// Where Debian's busybox-static puts its binary.
pub const BUSYBOX: &str = "/bin/busybox";

const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// Writes a tiny root filesystem made of Debian's static busybox to `out`
/// (gzip tarball): /bin/busybox, a symlink per applet (sh, wget, nc, httpd,
/// udhcpc, ...), /etc/passwd and /etc/group with root and nobody, the usual
/// empty directories, and /sbin/nuage-init. The same busybox gives the same
/// bytes.
pub fn busybox(out: &Path) -> Result<()> {
    busybox_from(Path::new(BUSYBOX), out)
}

/// [`busybox`] with the binary taken from `binary`.
pub fn busybox_from(binary: &Path, out: &Path) -> Result<()> {
    let missing = || {
        ImageError::Io(format!(
            "{} is missing: apt-get install busybox-static",
            binary.display()
        ))
    };
    let mut f = File::open(binary).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => missing(),
        _ => ImageError::io(format!("opening {}", binary.display()), e),
    })?;
    let elf = Elf::read(&mut f).ok_or_else(|| {
        ImageError::Io(format!(
            "{} is not an ELF binary: apt-get install busybox-static",
            binary.display()
        ))
    })?;
    let is_static = elf
        .is_static(&mut f)
        .map_err(|e| ImageError::io(format!("reading {}", binary.display()), e))?;
    if !is_static {
        return Err(ImageError::Io(format!(
            "{} is dynamically linked (Debian's busybox package): apt-get install busybox-static",
            binary.display()
        )));
    }
    let meta = f
        .metadata()
        .map_err(|e| ImageError::io(binary.display(), e))?;
    drop(f);
    let body =
        fs::read(binary).map_err(|e| ImageError::io(format!("reading {}", binary.display()), e))?;

    let list = Command::new(binary)
        .arg("--list-full")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ImageError::io(format!("running {} --list-full", binary.display()), e))?;
    if !list.status.success() {
        return Err(ImageError::Io(format!(
            "{} --list-full failed ({})",
            binary.display(),
            list.status
        )));
    }

    let mut tree: BTreeMap<PathBuf, Node> = BTreeMap::new();
    for (dir, mode) in [
        ("bin", 0o755),
        ("dev", 0o755),
        ("etc", 0o755),
        ("home", 0o755),
        ("mnt", 0o755),
        ("proc", 0o555),
        ("root", 0o700),
        ("run", 0o755),
        ("sbin", 0o755),
        ("sys", 0o555),
        ("tmp", 0o1777),
        ("usr", 0o755),
        ("usr/bin", 0o755),
        ("usr/sbin", 0o755),
        ("var", 0o755),
        ("var/lib", 0o755),
        ("var/log", 0o755),
        ("var/tmp", 0o1777),
    ] {
        tree.insert(dir.into(), Node::Dir(mode));
    }
    let files: [(&str, u32, &[u8]); 6] = [
        (
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", 0o644, b"root:x:0:\nnobody:x:65534:\n"),
        ("etc/shadow", 0o600, b"root:*::0:::::\nnobody:*::0:::::\n"),
        ("etc/hostname", 0o644, b""),
        (
            "etc/os-release",
            0o644,
            b"NAME=\"nuage busybox\"\nID=busybox\nPRETTY_NAME=\"nuage busybox\"\n",
        ),
        ("sbin/nuage-init", 0o755, NUAGE_INIT.as_bytes()),
    ];
    for (path, mode, data) in files {
        tree.insert(path.into(), Node::File(mode, data.to_vec()));
    }
    tree.insert("bin/busybox".into(), Node::File(0o755, body));
    for line in String::from_utf8_lossy(&list.stdout).lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let rel = clean(Path::new(line))?;
        if rel.as_os_str().is_empty() || tree.contains_key(&rel) {
            continue;
        }
        let mut target = PathBuf::new();
        for _ in 1..rel.components().count() {
            target.push("..");
        }
        target.push("bin/busybox");
        for dir in rel.ancestors().skip(1) {
            if !dir.as_os_str().is_empty() {
                tree.entry(dir.to_path_buf()).or_insert(Node::Dir(0o755));
            }
        }
        tree.insert(rel, Node::Symlink(target));
    }

    let mtime = meta.mtime().max(1) as u64;
    write_atomic(out, |w| {
        let mut tar = tar::Builder::new(GzEncoder::new(w, Compression::default()));
        for (path, node) in &tree {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(mtime);
            match node {
                Node::Dir(mode) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(*mode);
                    h.set_size(0);
                    tar.append_data(&mut h, path, io::empty())?;
                }
                Node::File(mode, data) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(*mode);
                    h.set_size(data.len() as u64);
                    tar.append_data(&mut h, path, data.as_slice())?;
                }
                Node::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_mode(0o777);
                    h.set_size(0);
                    tar.append_link(&mut h, path, target)?;
                }
            }
        }
        tar.into_inner()?.finish()?;
        Ok(())
    })
}

enum Node {
    Dir(u32),
    File(u32, Vec<u8>),
    Symlink(PathBuf),
}

/// How to build a Debian image; every field has a sensible default.
#[derive(Debug, Clone, Default)]
pub struct DebianOptions {
    /// The release (`bookworm`); default: the node's own (/etc/os-release).
    pub suite: Option<String>,
    /// The archive; default: the one apt on the node uses, else deb.debian.org.
    pub mirror: Option<String>,
    /// Extra packages (debootstrap's `--include`).
    pub include: Vec<String>,
    /// Where the root filesystem is built (needs ~300 MiB, removed after);
    /// default: the system's temporary directory.
    pub build_dir: Option<PathBuf>,
}

/// Builds a minimal Debian (debootstrap's minbase: apt, dpkg, bash,
/// coreutils; no init system) with /sbin/nuage-init and no apt caches, and
/// writes it to `out` as a gzip tarball. Runs debootstrap, as root, which
/// prints its progress to stderr; takes a few minutes.
pub fn debian(out: &Path, opts: &DebianOptions) -> Result<()> {
    let debootstrap = which("debootstrap").ok_or_else(|| {
        ImageError::Io("debootstrap is missing: apt-get install debootstrap".into())
    })?;
    let suite = match &opts.suite {
        Some(s) => s.clone(),
        None => host_suite().ok_or_else(|| {
            ImageError::Io(
                "cannot tell the node's Debian suite (no VERSION_CODENAME in /etc/os-release); \
                 name one"
                    .into(),
            )
        })?,
    };
    let mirror = opts
        .mirror
        .clone()
        .or_else(|| apt_mirror(&suite))
        .unwrap_or_else(|| DEFAULT_MIRROR.to_string());
    let parent = opts.build_dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = BuildDir::new(&parent)?;
    let rootfs = work.path().join("rootfs");

    let mut cmd = Command::new(&debootstrap);
    cmd.arg("--variant=minbase");
    if !opts.include.is_empty() {
        cmd.arg(format!("--include={}", opts.include.join(",")));
    }
    cmd.arg(&suite).arg(&rootfs).arg(&mirror);
    eprintln!("nuage: {cmd:?}");
    let started = std::time::Instant::now();
    // debootstrap's progress (I: lines) goes to our stderr, as does its stdout.
    let stderr = io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| ImageError::io("duplicating stderr", e))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(stderr))
        .status()
        .map_err(|e| ImageError::io(format!("running {}", debootstrap.display()), e))?;
    work.unmount()?;
    if !status.success() {
        let log =
            fs::read_to_string(rootfs.join("debootstrap/debootstrap.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(ImageError::Io(format!(
            "debootstrap {suite} from {mirror} failed ({status}); the end of its log:\n{}",
            tail.join("\n")
        )));
    }
    tidy_debian(&rootfs)?;
    eprintln!(
        "nuage: debootstrap done in {:.0?}; writing {}",
        started.elapsed(),
        out.display()
    );
    write_atomic(out, |w| {
        let mut tar = tar::Builder::new(GzEncoder::new(w, Compression::default()));
        append_tree(&mut tar, &rootfs)?;
        tar.into_inner()?.finish()?;
        Ok(())
    })?;
    eprintln!(
        "nuage: Debian {suite} image written in {:.0?}",
        started.elapsed()
    );
    Ok(())
}

/// Installs nuage-init and removes what should not ship: apt's caches and
/// lists, the build log, the builder's hostname and DNS settings (the
/// runtime provides the instance's).
fn tidy_debian(rootfs: &Path) -> Result<()> {
    let sbin = resolve(rootfs, Path::new("sbin"), true, true)?
        .ok_or_else(|| ImageError::Io("no /sbin in the Debian root filesystem".into()))?;
    let init = sbin.join("nuage-init");
    fs::write(&init, NUAGE_INIT)
        .and_then(|()| fs::set_permissions(&init, fs::Permissions::from_mode(0o755)))
        .map_err(|e| ImageError::io(format!("writing {}", init.display()), e))?;
    let keep = ["lock", "partial", "auxfiles"];
    for dir in [
        "var/cache/apt",
        "var/cache/apt/archives",
        "var/cache/apt/archives/partial",
        "var/lib/apt/lists",
        "var/lib/apt/lists/partial",
    ] {
        let dir = rootfs.join(dir);
        let Ok(list) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in list.flatten() {
            let name = entry.file_name();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if is_file && !keep.iter().any(|k| name == *k) {
                fs::remove_file(entry.path()).map_err(|e| {
                    ImageError::io(format!("removing {}", entry.path().display()), e)
                })?;
            }
        }
    }
    for file in ["var/log/bootstrap.log", "etc/resolv.conf"] {
        match fs::remove_file(rootfs.join(file)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ImageError::io(format!("removing /{file}"), e)),
        }
    }
    fs::write(rootfs.join("etc/hostname"), b"")
        .map_err(|e| ImageError::io("emptying /etc/hostname", e))?;
    Ok(())
}

/// Appends the tree under `root` in name order: directories, files (hard
/// links as links), symlinks; device nodes, fifos and sockets are left out
/// (the runtime provides /dev) and mounted filesystems are not entered.
fn append_tree<W: Write>(tar: &mut tar::Builder<W>, root: &Path) -> io::Result<()> {
    let root_dev = fs::symlink_metadata(root)?.dev();
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let mut names: Vec<_> = fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort();
        // Reverse onto the stack so children come out in name order, each
        // directory's subtree right after it.
        let mut subdirs = Vec::new();
        for name in names {
            let rel = rel.join(&name);
            let path = root.join(&rel);
            let m = fs::symlink_metadata(&path)?;
            let t = m.file_type();
            let mut h = tar::Header::new_gnu();
            h.set_metadata_in_mode(&m, tar::HeaderMode::Complete);
            if t.is_dir() {
                h.set_size(0);
                tar.append_data(&mut h, &rel, io::empty())?;
                if m.dev() == root_dev {
                    subdirs.push(rel);
                }
            } else if t.is_symlink() {
                let target = fs::read_link(&path)?;
                tar.append_link(&mut h, &rel, target)?;
            } else if t.is_file() {
                if m.nlink() > 1 {
                    if let Some(first) = links.get(&(m.dev(), m.ino())) {
                        h.set_entry_type(tar::EntryType::Link);
                        h.set_size(0);
                        tar.append_link(&mut h, &rel, first)?;
                        continue;
                    }
                    links.insert((m.dev(), m.ino()), rel.clone());
                }
                tar.append_data(&mut h, &rel, File::open(&path)?)?;
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

/// Writes `out` through a temporary file beside it, so that it is complete
/// or absent.
fn write_atomic(out: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".nuage-image-")
        .tempfile_in(dir)
        .map_err(|e| ImageError::io(format!("creating a file in {}", dir.display()), e))?;
    write(tmp.as_file_mut())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| ImageError::io(format!("writing {}", out.display()), e))?;
    tmp.persist(out)
        .map_err(|e| ImageError::io(format!("writing {}", out.display()), e.error))?;
    Ok(())
}

/// The build directory of `debian`; never deleted while something is
/// mounted in it (debootstrap mounts /proc, /sys and may bind the host's
/// device nodes into the target).
struct BuildDir {
    dir: Option<tempfile::TempDir>,
}

impl BuildDir {
    fn new(parent: &Path) -> Result<BuildDir> {
        let dir = tempfile::Builder::new()
            .prefix("nuage-debian-")
            .tempdir_in(parent)
            .map_err(|e| {
                ImageError::io(
                    format!("creating a build directory in {}", parent.display()),
                    e,
                )
            })?;
        Ok(BuildDir { dir: Some(dir) })
    }

    fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/nonexistent"))
    }

    /// Unmounts what debootstrap left mounted under the build directory,
    /// deepest first.
    fn unmount(&self) -> Result<()> {
        let mut points = mounts_under(self.path());
        points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for p in points {
            rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH).map_err(|e| {
                ImageError::io(format!("unmounting {}", p.display()), io::Error::from(e))
            })?;
        }
        Ok(())
    }
}

impl Drop for BuildDir {
    fn drop(&mut self) {
        let _ = self.unmount();
        if let Some(dir) = self.dir.take() {
            if !mounts_under(dir.path()).is_empty() {
                eprintln!(
                    "nuage: {} still has mounts; left in place",
                    dir.path().display()
                );
                let _ = dir.keep();
            }
        }
    }
}

/// Mount points at or below `dir`, from /proc/self/mountinfo.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(f) = File::open("/proc/self/mountinfo") else {
        return Vec::new();
    };
    io::BufReader::new(f)
        .lines()
        .map_while(|l| l.ok())
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mountinfo))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mountinfo(s: &str) -> String {
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

/// A program on PATH or in the sbin directories root's PATH has.
fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

/// The node's Debian release codename, from /etc/os-release.
pub fn host_suite() -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim().trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

/// The archive apt on this node uses for `suite`: the first `deb` source of
/// /etc/apt/sources.list, then sources.list.d (one-line `.list` and deb822
/// `.sources`), naming that suite.
pub fn apt_mirror(suite: &str) -> Option<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(list) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = list.flatten().map(|e| e.path()).collect();
        more.sort();
        files.extend(more);
    }
    files.iter().find_map(|f| {
        let text = fs::read_to_string(f).ok()?;
        match f.extension().and_then(|e| e.to_str()) {
            Some("sources") => mirror_from_deb822(&text, suite),
            _ if f.extension().is_none_or(|e| e == "list") => mirror_from_list(&text, suite),
            _ => None,
        }
    })
}

fn usable_uri(uri: &str) -> bool {
    ["http://", "https://", "file:/"]
        .iter()
        .any(|p| uri.starts_with(p))
}

/// From one-line sources: `deb [options] uri suite components...`.
pub(crate) fn mirror_from_list(text: &str, suite: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let line = line.split('#').next()?.trim();
        let rest = line.strip_prefix("deb ")?.trim_start();
        let rest = match rest.strip_prefix('[') {
            Some(r) => r.split_once(']')?.1,
            None => rest,
        };
        let mut words = rest.split_whitespace();
        let uri = words.next()?;
        (words.next()? == suite && usable_uri(uri)).then(|| uri.to_string())
    })
}

/// From deb822 sources: the first stanza of `Types: deb` listing the suite.
pub(crate) fn mirror_from_deb822(text: &str, suite: &str) -> Option<String> {
    let mut stanzas = Vec::new();
    let mut current: HashMap<String, String> = HashMap::new();
    let mut last_key = String::new();
    for line in text.lines().chain(std::iter::once("")) {
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            if !current.is_empty() {
                stanzas.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(v) = current.get_mut(&last_key) {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            last_key = k.trim().to_ascii_lowercase();
            current.insert(last_key.clone(), v.trim().to_string());
        }
    }
    stanzas.iter().find_map(|s| {
        let has = |k: &str, w: &str| {
            s.get(k)
                .is_some_and(|v| v.split_whitespace().any(|x| x == w))
        };
        if !has("types", "deb")
            || !has("suites", suite)
            || s.get("enabled").is_some_and(|v| v == "no")
        {
            return None;
        }
        s.get("uris")?
            .split_whitespace()
            .find(|u| usable_uri(u))
            .map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb822_mirror() {
        let text = "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n\
                    URIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n\
                    Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n\
                    Types: deb\nURIs: http://deb.debian.org/debian-security\n\
                    Suites: bookworm-security\nComponents: main\n";
        assert_eq!(
            mirror_from_deb822(text, "bookworm").as_deref(),
            Some("http://deb.debian.org/debian")
        );
        assert_eq!(
            mirror_from_deb822(text, "bookworm-security").as_deref(),
            Some("http://deb.debian.org/debian-security")
        );
        assert_eq!(mirror_from_deb822(text, "trixie"), None);
        let disabled = "Types: deb\nURIs: http://a/debian\nSuites: bookworm\nEnabled: no\n\n\
                        Types: deb-src deb\nURIs: http://b/debian\nSuites: bookworm\n";
        assert_eq!(
            mirror_from_deb822(disabled, "bookworm").as_deref(),
            Some("http://b/debian")
        );
    }

    #[test]
    fn one_line_mirror() {
        let text = "# comment\ndeb-src http://src/debian bookworm main\n\
                    deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main\n";
        assert_eq!(
            mirror_from_list(text, "bookworm").as_deref(),
            Some("http://mirror.example/debian/")
        );
        assert_eq!(
            mirror_from_list("deb cdrom:[x]/ bookworm main\n", "bookworm"),
            None
        );
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }

    #[test]
    fn init_is_posix_sh() {
        assert!(NUAGE_INIT.starts_with("#!/bin/sh\n"));
        for shell in ["/bin/dash", "/bin/busybox"] {
            assert!(
                Path::new(shell).exists(),
                "{shell} is missing: apt-get install dash busybox-static"
            );
            let mut cmd = Command::new(shell);
            if shell.ends_with("busybox") {
                cmd.arg("sh");
            }
            let out = cmd
                .arg("-n")
                .arg("-c")
                .arg(NUAGE_INIT)
                .output()
                .expect("shell runs");
            assert!(
                out.status.success(),
                "{shell}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
