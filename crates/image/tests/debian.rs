//! The Debian image: really debootstrapped from the node's apt mirror (a
//! few minutes), imported, unpacked, and booted: nuage-init under dash.

mod common;

use std::fs;
use std::path::Path;
use std::time::Instant;

use common::{import, require_root};
use nuage_image::builders::{self, DebianOptions, NUAGE_INIT};
use nuage_image::{Format, ImageStore};

#[test]
fn debian_builds_with_debootstrap_unpacks_and_boots() {
    require_root();
    assert!(
        [
            "/usr/sbin/debootstrap",
            "/sbin/debootstrap",
            "/usr/bin/debootstrap"
        ]
        .iter()
        .any(|p| Path::new(p).exists()),
        "debootstrap is missing: apt-get install debootstrap"
    );
    let work = tempfile::Builder::new()
        .prefix("nuage-image-debian-test-")
        .tempdir_in(std::env::temp_dir())
        .expect("tempdir");
    let out = work.path().join("debian.tar.gz");
    let opts = DebianOptions {
        build_dir: Some(work.path().to_path_buf()),
        ..DebianOptions::default()
    };
    let t = Instant::now();
    builders::debian(&out, &opts).expect("debootstrap builds the image");
    let took = t.elapsed();
    let size = fs::metadata(&out).expect("built").len();
    eprintln!("debian image: {size} bytes in {took:?}");
    assert_eq!(
        common::names(work.path()),
        ["debian.tar.gz"],
        "the build directory is removed"
    );

    let store = ImageStore::open(&work.path().join("images")).expect("store");
    let t = Instant::now();
    let blob = import(&store, &fs::read(&out).expect("read"));
    let u = store.unpack(&blob.sha256).expect("unpack");
    eprintln!(
        "debian image: imported and unpacked in {:?}, {u:?}",
        t.elapsed()
    );
    assert_eq!(u.format, Format::RootfsTar);
    assert_eq!(u.config.command, ["/sbin/nuage-init"]);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "aarch64",
        other => panic!("untested architecture {other}"),
    };
    assert_eq!(
        u.architecture.as_deref(),
        Some(arch),
        "from /bin/sh -> dash"
    );

    let root = store.rootfs_path(&blob.sha256);
    let suite = builders::host_suite().expect("host suite");
    let sources = fs::read_to_string(root.join("etc/apt/sources.list")).expect("sources.list");
    assert!(sources.contains(&suite), "{sources}");
    for p in [
        "usr/bin/apt-get",
        "usr/bin/dpkg",
        "etc/debian_version",
        "usr/bin/dash",
    ] {
        assert!(root.join(p).exists(), "/{p}");
    }
    // Merged /usr: /sbin -> usr/sbin, nuage-init lands in /usr/sbin.
    assert_eq!(
        fs::read_to_string(root.join("usr/sbin/nuage-init")).expect("nuage-init"),
        NUAGE_INIT
    );
    let lists: Vec<String> = common::names(&root.join("var/lib/apt/lists"))
        .into_iter()
        .filter(|n| n != "lock" && n != "partial" && n != "auxfiles")
        .collect();
    assert!(lists.is_empty(), "apt lists cleaned: {lists:?}");
    let debs = common::names(&root.join("var/cache/apt/archives"));
    assert!(debs.iter().all(|n| !n.ends_with(".deb")), "{debs:?}");
    assert!(!root.join("etc/resolv.conf").exists());
    assert!(!root.join("debootstrap").exists());
    assert!(
        !root.join("dev/null").exists(),
        "device nodes are the runtime's"
    );

    // Boot it: /bin/sh is dash here.
    let instance = work.path().join("instance");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&root)
        .arg(&instance)
        .status()
        .expect("cp");
    assert!(status.success());
    common::check_user_data_runs_once(&instance);
}

#[test]
fn debian_failure_is_reported_and_cleaned_up() {
    require_root();
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("debian.tar.gz");
    let opts = DebianOptions {
        // Nothing listens on the discard port: debootstrap fails at once.
        mirror: Some("http://127.0.0.1:9/debian".into()),
        build_dir: Some(work.path().to_path_buf()),
        ..DebianOptions::default()
    };
    let err = builders::debian(&out, &opts).expect_err("no mirror, no image");
    let msg = err.to_string();
    assert!(matches!(err, nuage_image::ImageError::Io(_)), "{err:?}");
    assert!(
        msg.contains("debootstrap") && msg.contains("127.0.0.1:9"),
        "{msg}"
    );
    assert!(
        common::names(work.path()).is_empty(),
        "build directory removed, no output"
    );
}
