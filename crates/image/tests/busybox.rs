//! The busybox image: built from the node's busybox-static, imported like
//! an upload, unpacked, and booted for real with its nuage-init.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{import, require_root, store};
use nuage_image::builders::{self, NUAGE_INIT};
use nuage_image::Format;

fn build(out: &Path) -> Duration {
    assert!(
        Path::new(builders::BUSYBOX).exists(),
        "{} is missing: apt-get install busybox-static",
        builders::BUSYBOX
    );
    let t = Instant::now();
    builders::busybox(out).expect("busybox image builds");
    t.elapsed()
}

#[test]
fn busybox_builds_fast_and_deterministically() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("a.tar.gz");
    let b = dir.path().join("b.tar.gz");
    let took = build(&a);
    let size = fs::metadata(&a).expect("built").len();
    eprintln!("busybox image: {size} bytes in {took:?}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    build(&b);
    assert_eq!(
        fs::read(&a).expect("a"),
        fs::read(&b).expect("b"),
        "same bytes"
    );
    assert_eq!(
        dir.path().read_dir().expect("ls").count(),
        2,
        "no temporary files left beside the output"
    );
}

#[test]
fn busybox_is_refused_when_missing_or_dynamic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x.tar.gz");
    let err = builders::busybox_from(&dir.path().join("nope"), &out).expect_err("missing");
    assert!(
        err.to_string().contains("apt-get install busybox-static"),
        "{err}"
    );
    // Any dynamically linked binary stands in for Debian's `busybox`.
    let err = builders::busybox_from(Path::new("/bin/ls"), &out).expect_err("dynamic");
    assert!(err.to_string().contains("dynamically linked"), "{err}");
    assert!(!out.exists());
}

#[test]
fn busybox_imports_unpacks_and_runs() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let tarball = dir.path().join("busybox.tar.gz");
    build(&tarball);
    let bytes = fs::read(&tarball).expect("read");
    let (_d, store) = store();
    let blob = import(&store, &bytes);
    let u = store.unpack(&blob.sha256).expect("unpack");
    assert_eq!(u.format, Format::RootfsTar);
    assert_eq!(u.config.command, ["/sbin/nuage-init"]);
    assert_eq!(u.config.workdir, "/");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        other => panic!("untested architecture {other}"),
    };
    assert_eq!(u.architecture.as_deref(), Some(arch));
    assert!(u.unpacked_bytes > 1_000_000, "{}", u.unpacked_bytes);

    let root = store.rootfs_path(&blob.sha256);
    for applet in [
        "bin/sh",
        "usr/bin/wget",
        "usr/bin/nc",
        "usr/sbin/httpd",
        "sbin/udhcpc",
        "bin/ls",
    ] {
        let p = root.join(applet);
        assert!(
            fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()),
            "{applet} is an applet symlink"
        );
        assert!(
            p.exists(),
            "{applet} resolves (relative link) on the host too"
        );
    }
    assert_eq!(
        fs::read_to_string(root.join("sbin/nuage-init")).expect("init"),
        NUAGE_INIT
    );
    let mode = |p: &str| fs::metadata(root.join(p)).expect(p).permissions().mode() & 0o7777;
    assert_eq!(mode("sbin/nuage-init"), 0o755);
    assert_eq!(mode("tmp"), 0o1777);
    assert_eq!(mode("root"), 0o700);
    let passwd = fs::read_to_string(root.join("etc/passwd")).expect("passwd");
    assert!(passwd.starts_with("root:x:0:0:") && passwd.contains("\nnobody:x:65534:"));
    for d in ["proc", "sys", "dev", "run", "mnt", "var/lib"] {
        assert!(root.join(d).is_dir(), "/{d}");
    }

    // The applets work inside it.
    let out = Command::new("chroot")
        .arg(&root)
        .args([
            "/bin/sh",
            "-c",
            "echo ok && wget --help 2>&1 | head -1 && id -un",
        ])
        .output()
        .expect("chroot runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with("ok\n") && text.contains("BusyBox") && text.ends_with("root\n"),
        "{text}"
    );

    // The same bytes again: the same blob, the same answer, no second tree.
    let again = import(&store, &bytes);
    assert_eq!(again, blob);
    assert_eq!(store.unpack(&again.sha256).expect("again"), u);
    assert_eq!(store.blobs().expect("blobs"), [blob.sha256.as_str()]);
    assert_eq!(common::names(&store.root().join("rootfs")).len(), 2);
}

#[test]
fn nuage_init_under_busybox_sh_runs_user_data_once() {
    require_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let tarball = dir.path().join("busybox.tar.gz");
    build(&tarball);
    let (_d, store) = store();
    let blob = import(&store, &fs::read(&tarball).expect("read"));
    store.unpack(&blob.sha256).expect("unpack");
    // Instances write to their own copy (the driver's overlay), never to
    // the store's tree.
    let instance = dir.path().join("instance");
    let status = Command::new("cp")
        .arg("-a")
        .arg(store.rootfs_path(&blob.sha256))
        .arg(&instance)
        .status()
        .expect("cp");
    assert!(status.success());
    common::check_user_data_runs_once(&instance);
}
