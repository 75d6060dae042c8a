//! Helpers shared by the integration tests: tar archives built member by
//! member (including malicious ones the tar crate refuses to write), and
//! a store in a temporary directory.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

use flate2::write::GzEncoder;
use flate2::Compression;
use nuage_image::{Blob, ImageStore};
use sha2::{Digest, Sha256};

/// A member of a test archive.
pub enum M<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Fifo(&'a str),
    CharDev(&'a str),
}

pub const MTIME: u64 = 1_600_000_000;

/// A tar of `members`, names written raw (so `..` and absolute names
/// survive), every member owned by 1000:1000 so ownership is visible.
pub fn tar(members: &[M<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        let mut h = tar::Header::new_gnu();
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(MTIME);
        h.set_size(0);
        let (name, data): (&str, &[u8]) = match m {
            M::Dir(n, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                (n, &[])
            }
            M::File(n, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                (n, data)
            }
            M::Symlink(n, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                set_raw(&mut h.as_old_mut().linkname, target);
                (n, &[])
            }
            M::Hardlink(n, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                set_raw(&mut h.as_old_mut().linkname, target);
                (n, &[])
            }
            M::Fifo(n) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(0o644);
                (n, &[])
            }
            M::CharDev(n) => {
                h.set_entry_type(tar::EntryType::Char);
                h.set_mode(0o666);
                h.set_device_major(1).expect("major");
                h.set_device_minor(3).expect("minor");
                (n, &[])
            }
        };
        set_raw(&mut h.as_old_mut().name, name);
        h.set_cksum();
        b.append(&h, data).expect("append");
    }
    b.into_inner().expect("tar")
}

/// A header for a regular file owned by root.
pub fn header(mode: u32, size: usize) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_mode(mode);
    h.set_size(size as u64);
    h
}

fn set_raw(field: &mut [u8], s: &str) {
    assert!(s.len() < field.len(), "{s} too long for a test header");
    field.fill(0);
    field[..s.len()].copy_from_slice(s.as_bytes());
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A store in a fresh temporary directory (kept alive by the TempDir).
pub fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(&dir.path().join("images")).expect("open store");
    (dir, store)
}

pub fn import(store: &ImageStore, bytes: &[u8]) -> Blob {
    let mut w = store.writer().expect("writer");
    // In uneven chunks, as an HTTP body arrives.
    for chunk in bytes.chunks(7919) {
        w.write_all(chunk).expect("write");
    }
    w.finish().expect("finish")
}

/// Names in a directory, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Nothing left behind by a failed unpack: no root filesystem, partial or
/// not, and no temporary files.
pub fn assert_nothing_left(store: &ImageStore) {
    assert_eq!(
        names(&store.root().join("rootfs")),
        Vec::<String>::new(),
        "rootfs/"
    );
    assert_eq!(
        names(&store.root().join("tmp")),
        Vec::<String>::new(),
        "tmp/"
    );
}

/// The `Invalid` message of a refused unpack, checking nothing was left.
pub fn refused(store: &ImageStore, bytes: &[u8]) -> String {
    let blob = import(store, bytes);
    let err = store
        .unpack(&blob.sha256)
        .expect_err("the archive must be refused");
    assert_nothing_left(store);
    match err {
        nuage_image::ImageError::Invalid(m) => {
            eprintln!("refused: {m}");
            m
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "these tests unpack with ownership and chroot: run them as root"
    );
}

/// A config drive as the container driver writes it, under `root`'s
/// /mnt/config.
pub fn config_drive(root: &Path, id: &str, user_data: Option<&str>) {
    let latest = root.join("mnt/config/openstack/latest");
    std::fs::create_dir_all(&latest).expect("mkdir config drive");
    std::fs::create_dir_all(root.join("mnt/config/nuage")).expect("mkdir");
    std::fs::write(
        latest.join("meta_data.json"),
        format!(r#"{{"uuid": "{id}", "hostname": "test", "name": "test"}}"#),
    )
    .expect("meta_data.json");
    std::fs::write(root.join("mnt/config/nuage/instance-id"), format!("{id}\n")).expect("id");
    match user_data {
        Some(u) => std::fs::write(latest.join("user_data"), u).expect("user_data"),
        None => {
            let _ = std::fs::remove_file(latest.join("user_data"));
        }
    }
}

/// What one boot of nuage-init printed, and how it ended.
pub struct Boot {
    pub lines: Vec<String>,
    /// Processes under the init once it said "up" (its idle footprint).
    pub idle_children: Vec<String>,
    pub status: std::process::ExitStatus,
}

/// Boots `/sbin/nuage-init` of the root filesystem `root` as PID 1 of a
/// new PID namespace (`unshare --pid --fork`, chroot), where the kernel
/// drops signals PID 1 has no handler for; waits for its "up" line, sends
/// SIGTERM, and expects it to exit promptly. Never hangs: every wait has
/// a deadline, after which the init is killed and the test fails.
pub fn boot(root: &Path) -> Boot {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    require_root();
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", "chroot"])
        .arg(root)
        .arg("/sbin/nuage-init")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("unshare (util-linux) runs");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let fail = |child: &mut std::process::Child, why: String| -> ! {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{why}");
    };
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                eprintln!("console: {line}");
                let up = line.starts_with("nuage-init: instance ") && line.ends_with(" up");
                lines.push(line);
                if up {
                    break;
                }
            }
            Err(_) => fail(&mut child, format!("no \"up\" line within 60 s: {lines:?}")),
        }
    }
    let init = children(child.id());
    let [init] = init.as_slice() else {
        fail(
            &mut child,
            format!("unshare should have one child, has {init:?}"),
        );
    };
    let status_text = std::fs::read_to_string(format!("/proc/{init}/status")).expect("status");
    let nspid = status_text
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap_or_default()
        .to_string();
    assert!(
        nspid.ends_with("\t1"),
        "the init is PID 1 in its namespace: {nspid}"
    );
    // The idle sleep is forked right after "up": give it a moment to exec.
    let settle = Instant::now() + Duration::from_secs(3);
    let idle_children = loop {
        let comms: Vec<String> = children(*init)
            .into_iter()
            .map(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .collect();
        if comms == ["sleep"] || Instant::now() > settle {
            break comms;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let pid = rustix::process::Pid::from_raw(*init as i32).expect("pid");
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(s) => break s,
            None if Instant::now() > deadline => fail(
                &mut child,
                format!("still running 10 s after SIGTERM: {lines:?}"),
            ),
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    reader.join().expect("reader");
    lines.extend(rx.try_iter().inspect(|l| eprintln!("console: {l}")));
    Boot {
        lines,
        idle_children,
        status,
    }
}

/// Pids whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// Checks the user-data contract over two boots of the same instance:
/// run once, its output on the console, its status recorded, not rerun.
pub fn check_user_data_runs_once(root: &Path) {
    let id = "i-0123abcd";
    let user_data = "#!/bin/sh\necho \"hello from user-data, $0\"\necho ran >>/var/log/user-data-runs\nexit 3\n";
    config_drive(root, id, Some(user_data));

    let first = boot(root);
    assert!(
        first.status.success(),
        "exit 0 on SIGTERM: {:?}",
        first.status
    );
    let expect = [
        format!("nuage-init: instance {id} booting"),
        "nuage-init: running user-data".to_string(),
        format!("hello from user-data, /var/lib/cloud/instances/{id}/user-data"),
        "nuage-init: user-data exited with status 3".to_string(),
        format!("nuage-init: instance {id} up"),
    ];
    let mut at = 0;
    for want in &expect {
        let found = first.lines[at..].iter().position(|l| l == want);
        let Some(i) = found else {
            panic!("{want:?} missing (in order) from {:?}", first.lines)
        };
        at += i + 1;
    }
    assert_eq!(
        first.idle_children,
        ["sleep"],
        "idle: one shell and one sleep"
    );
    let copy = root.join(format!("var/lib/cloud/instances/{id}/user-data"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&copy)
            .expect("user-data copied")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);
    assert!(root
        .join(format!("var/lib/cloud/instances/{id}/boot-finished"))
        .is_file());

    let second = boot(root);
    assert!(
        second.status.success(),
        "exit 0 on SIGTERM: {:?}",
        second.status
    );
    assert!(
        !second
            .lines
            .iter()
            .any(|l| l.contains("hello from user-data")),
        "user-data reran: {:?}",
        second.lines
    );
    assert_eq!(
        second.lines.last().map(String::as_str),
        Some("nuage-init: stopping")
    );
    let runs = std::fs::read_to_string(root.join("var/log/user-data-runs")).expect("runs");
    assert_eq!(runs, "ran\n", "user-data ran exactly once");

    // A new instance of the same image (another id) runs it again.
    config_drive(root, "i-other", Some(user_data));
    let third = boot(root);
    assert!(third
        .lines
        .iter()
        .any(|l| l.contains("hello from user-data")));
    // Without user data: just up.
    config_drive(root, "i-plain", None);
    let plain = boot(root);
    assert_eq!(
        plain.lines,
        [
            "nuage-init: instance i-plain booting",
            "nuage-init: instance i-plain up",
            "nuage-init: stopping"
        ]
    );
}
