//! Import and unpack of every accepted format, built here member by member,
//! and refusal of corrupt, truncated, tampered and malicious archives.

mod common;

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::{
    assert_nothing_left, gzip, import, names, refused, require_root, sha256, store, tar, M, MTIME,
};
use nuage_image::{Format, ImageStore};
use serde_json::json;

/// A minimal root filesystem: a shell, so it counts as one.
fn rootfs_tar(extra: &[M<'_>]) -> Vec<u8> {
    let mut members = vec![
        M::Dir("bin", 0o755),
        M::File("bin/sh", 0o755, b"#!fake shell\n"),
    ];
    members.extend(extra.iter().map(|m| match m {
        M::Dir(a, b) => M::Dir(a, *b),
        M::File(a, b, c) => M::File(a, *b, c),
        M::Symlink(a, b) => M::Symlink(a, b),
        M::Hardlink(a, b) => M::Hardlink(a, b),
        M::Fifo(a) => M::Fifo(a),
        M::CharDev(a) => M::CharDev(a),
    }));
    tar(&members)
}

/// An OCI image layout as a tar: `layers` are (blob bytes, uncompressed
/// tar, media type); `tamper` edits blobs after their digests are taken.
struct Oci {
    files: Vec<(String, Vec<u8>)>,
}

impl Oci {
    fn new() -> Oci {
        Oci { files: Vec::new() }
    }

    fn blob(&mut self, bytes: Vec<u8>) -> serde_json::Value {
        let hex = sha256(&bytes);
        let size = bytes.len();
        self.files.push((format!("blobs/sha256/{hex}"), bytes));
        json!({ "digest": format!("sha256:{hex}"), "size": size })
    }

    fn image(
        &mut self,
        config: serde_json::Value,
        layers: &[(Vec<u8>, &str)],
    ) -> serde_json::Value {
        let mut cfg = self.blob(serde_json::to_vec(&config).expect("json"));
        cfg["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
        let mut descs = Vec::new();
        for (bytes, media) in layers {
            let mut d = self.blob(bytes.clone());
            d["mediaType"] = json!(media);
            descs.push(d);
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": cfg,
            "layers": descs,
        });
        let mut d = self.blob(serde_json::to_vec(&manifest).expect("json"));
        d["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
        d
    }

    fn archive(mut self, manifests: Vec<serde_json::Value>) -> Vec<u8> {
        let index = json!({ "schemaVersion": 2, "manifests": manifests });
        self.files.push((
            "index.json".into(),
            serde_json::to_vec(&index).expect("json"),
        ));
        self.files.push((
            "oci-layout".into(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ));
        let mut b = tar::Builder::new(Vec::new());
        for (name, bytes) in &self.files {
            let mut h = common::header(0o644, bytes.len());
            b.append_data(&mut h, name, bytes.as_slice())
                .expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn corrupt(&mut self, hex_prefix_of: &[u8]) {
        let name = format!("blobs/sha256/{}", sha256(hex_prefix_of));
        for (n, bytes) in &mut self.files {
            if *n == name {
                let last = bytes.len() - 1;
                bytes[last] ^= 0x01;
            }
        }
    }
}

fn oci_layers() -> (Vec<u8>, Vec<u8>) {
    let l1 = tar(&[
        M::Dir("etc", 0o755),
        M::File("etc/a", 0o644, b"a"),
        M::File("etc/b", 0o640, b"b"),
        M::Dir("opt", 0o755),
        M::Dir("opt/keep", 0o755),
        M::File("opt/keep/x", 0o644, b"x"),
        M::Dir("opt/opq", 0o700),
        M::File("opt/opq/old1", 0o644, b"old"),
        M::Dir("opt/gone", 0o755),
        M::File("opt/gone/f", 0o644, b"f"),
        M::Dir("usr", 0o755),
        M::Dir("usr/bin", 0o755),
        M::File("usr/bin/tool", 0o4755, b"tool"),
        M::Hardlink("usr/bin/tool2", "usr/bin/tool"),
        M::Symlink("bin", "usr/bin"),
        M::Dir("dev", 0o755),
        M::Fifo("dev/fifo"),
        M::CharDev("dev/null"),
    ]);
    let l2 = tar(&[
        M::File("etc/.wh.a", 0o644, b""),
        M::File("etc/c", 0o600, b"c"),
        M::Dir("opt/opq", 0o755),
        // Before the marker: the marker only hides lower layers.
        M::File("opt/opq/new", 0o644, b"new"),
        M::File("opt/opq/.wh..wh..opq", 0o644, b""),
        M::File("opt/.wh.gone", 0o644, b""),
        // Through the symlink of the lower layer.
        M::File("bin/via-link", 0o755, b"via"),
    ]);
    (l1, l2)
}

fn oci_config(l1: &[u8], l2: &[u8], arch: &str) -> serde_json::Value {
    json!({
        "architecture": arch,
        "os": "linux",
        "config": {
            "Entrypoint": ["/app"],
            "Cmd": ["--serve", "8080"],
            "Env": ["PATH=/usr/bin:/bin", "MODE=test"],
            "WorkingDir": "/srv"
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": [format!("sha256:{}", sha256(l1)), format!("sha256:{}", sha256(l2))]
        }
    })
}

fn oci_archive(tamper: Option<&str>) -> Vec<u8> {
    let (l1, l2) = oci_layers();
    let l1_gz = gzip(&l1);
    let mut oci = Oci::new();
    let mut amd = oci.image(
        oci_config(&l1, &l2, "amd64"),
        &[
            (l1_gz.clone(), "application/vnd.oci.image.layer.v1.tar+gzip"),
            (l2.clone(), "application/vnd.oci.image.layer.v1.tar"),
        ],
    );
    amd["platform"] = json!({ "architecture": "amd64", "os": "linux" });
    // Another platform whose layer is absent, as in a multi-arch export
    // of only the local platform's blobs.
    let mut arm = oci.image(oci_config(&l1, &l2, "arm64"), &[]);
    arm["platform"] = json!({ "architecture": "arm64", "os": "linux", "variant": "v8" });
    let mut attestation = oci.image(json!({}), &[]);
    attestation["platform"] = json!({ "architecture": "unknown", "os": "unknown" });
    attestation["annotations"] = json!({ "vnd.docker.reference.type": "attestation-manifest" });
    match tamper {
        Some("layer") => oci.corrupt(&l1_gz),
        Some("config") => {
            oci.corrupt(&serde_json::to_vec(&oci_config(&l1, &l2, "amd64")).expect("json"))
        }
        _ => {}
    }
    let (first, second) = if std::env::consts::ARCH == "aarch64" {
        (arm, amd)
    } else {
        (amd, arm)
    };
    oci.archive(vec![first, second, attestation])
}

fn check_oci_tree(root: &Path) {
    assert!(!root.join("etc/a").exists(), "whiteout .wh.a");
    assert_eq!(fs::read(root.join("etc/b")).expect("etc/b"), b"b");
    assert_eq!(fs::read(root.join("etc/c")).expect("etc/c"), b"c");
    assert_eq!(fs::read(root.join("opt/keep/x")).expect("x"), b"x");
    assert!(!root.join("opt/opq/old1").exists(), "opaque directory");
    assert_eq!(fs::read(root.join("opt/opq/new")).expect("new"), b"new");
    assert!(!root.join("opt/gone").exists(), "whiteout of a directory");
    assert_eq!(
        fs::read(root.join("usr/bin/via-link")).expect("via"),
        b"via"
    );
    assert_eq!(
        fs::read_link(root.join("bin")).expect("symlink"),
        Path::new("usr/bin")
    );
    let tool = fs::metadata(root.join("usr/bin/tool")).expect("tool");
    let tool2 = fs::metadata(root.join("usr/bin/tool2")).expect("tool2");
    assert_eq!(tool.ino(), tool2.ino(), "hard link");
    assert_eq!(tool.mode() & 0o7777, 0o4755, "setuid kept");
    let b = fs::metadata(root.join("etc/b")).expect("b");
    assert_eq!(b.mode() & 0o7777, 0o640);
    assert_eq!((b.uid(), b.gid()), (1000, 1000), "ownership");
    assert_eq!(b.mtime() as u64, MTIME, "file mtime");
    let etc = fs::metadata(root.join("etc")).expect("etc");
    assert_eq!(
        etc.mtime() as u64,
        MTIME,
        "directory mtime, set after its files"
    );
    let opq = fs::metadata(root.join("opt/opq")).expect("opq");
    assert_eq!(opq.mode() & 0o7777, 0o755, "upper layer's directory mode");
    assert!(!root.join("dev/fifo").exists(), "fifos skipped");
    assert!(!root.join("dev/null").exists(), "device nodes skipped");
}

#[test]
fn oci_archive_layers_whiteouts_and_config() {
    require_root();
    let (_d, store) = store();
    for bytes in [oci_archive(None), gzip(&oci_archive(None))] {
        let blob = import(&store, &bytes);
        let u = store.unpack(&blob.sha256).expect("unpack");
        assert_eq!(u.format, Format::OciArchive);
        let arch = if std::env::consts::ARCH == "aarch64" {
            "aarch64"
        } else {
            "x86_64"
        };
        assert_eq!(u.architecture.as_deref(), Some(arch));
        assert_eq!(u.config.command, ["/app", "--serve", "8080"]);
        assert_eq!(u.config.env, ["PATH=/usr/bin:/bin", "MODE=test"]);
        assert_eq!(u.config.workdir, "/srv");
        // b, c, x, new, tool (tool2 is the same inode), via
        assert_eq!(u.unpacked_bytes, 1 + 1 + 1 + 3 + 4 + 3);
        check_oci_tree(&store.rootfs_path(&blob.sha256));
    }
    assert!(names(&store.root().join("tmp")).is_empty());
}

#[test]
fn oci_digest_mismatch_is_refused() {
    let (_d, store) = store();
    let m = refused(&store, &oci_archive(Some("layer")));
    assert!(m.contains("digest mismatch"), "{m}");
    assert!(m.contains("layer 1 of 2"), "{m}");
    let m = refused(&store, &oci_archive(Some("config")));
    assert!(m.contains("config") && m.contains("digest mismatch"), "{m}");
}

#[test]
fn oci_missing_blob_and_bad_digest() {
    let (_d, store) = store();
    let mut oci = Oci::new();
    let layer = gzip(&rootfs_tar(&[]));
    let d = oci.image(json!({"os": "linux"}), &[(layer.clone(), "x")]);
    oci.files
        .retain(|(n, _)| *n != format!("blobs/sha256/{}", sha256(&layer)));
    let m = refused(&store, &oci.archive(vec![d]));
    assert!(m.contains("missing from the archive"), "{m}");

    let oci = Oci::new();
    let m = refused(
        &store,
        &oci.archive(vec![
            json!({"digest": "sha256:../../../etc/passwd", "size": 1}),
        ]),
    );
    assert!(m.contains("malformed digest"), "{m}");

    let mut oci = Oci::new();
    let a = oci.image(json!({}), &[]);
    let b = oci.image(json!({"os": "linux"}), &[]);
    let m = refused(&store, &oci.archive(vec![a, b]));
    assert!(m.contains("holds 2 images"), "{m}");
}

/// A classic `docker save`: `<id>/layer.tar`, `<config hex>.json`,
/// manifest.json; one layer is a symlink to another file, as docker writes
/// repeated layers.
fn docker_archive(wrong_diff_id: bool) -> Vec<u8> {
    let l1 = rootfs_tar(&[M::Dir("etc", 0o755), M::File("etc/motd", 0o644, b"hello")]);
    let l2 = tar(&[
        M::File("etc/.wh.motd", 0o644, b""),
        M::File("etc/issue", 0o644, b"issue"),
    ]);
    let l3 = tar(&[M::Dir("srv", 0o755), M::File("srv/data", 0o644, b"data")]);
    let mut diff_ids: Vec<String> = [&l1, &l2, &l3]
        .iter()
        .map(|l| format!("sha256:{}", sha256(l)))
        .collect();
    if wrong_diff_id {
        diff_ids[1] = format!("sha256:{}", sha256(b"something else"));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "arm64",
        "os": "linux",
        "config": { "Cmd": ["/bin/sh", "-c", "echo hi"], "Env": ["A=b"] },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .expect("json");
    let config_name = format!("{}.json", sha256(&config));
    let ids = ["1111", "2222", "3333"];
    let manifest = serde_json::to_vec(&json!([{
        "Config": config_name,
        "RepoTags": ["test:latest"],
        "Layers": ids.iter().map(|i| format!("{i}/layer.tar")).collect::<Vec<_>>(),
    }]))
    .expect("json");
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut h = common::header(0o644, bytes.len());
        b.append_data(&mut h, name, bytes).expect("append");
    };
    add(&config_name, &config);
    add("1111/layer.tar", &l1);
    add("1111/VERSION", b"1.0");
    add("2222/layer.tar", &l2);
    add("shared/layer.tar", &l3);
    add("manifest.json", &manifest);
    add("repositories", br#"{"test":{"latest":"3333"}}"#);
    let mut h = common::header(0o777, 0);
    h.set_entry_type(tar::EntryType::Symlink);
    b.append_link(&mut h, "3333/layer.tar", "../shared/layer.tar")
        .expect("link");
    b.into_inner().expect("tar")
}

#[test]
fn docker_save_classic_archive() {
    require_root();
    let (_d, store) = store();
    let blob = import(&store, &docker_archive(false));
    let u = store.unpack(&blob.sha256).expect("unpack");
    assert_eq!(u.format, Format::DockerArchive);
    assert_eq!(u.architecture.as_deref(), Some("aarch64"));
    assert_eq!(u.config.command, ["/bin/sh", "-c", "echo hi"]);
    assert_eq!(u.config.env, ["A=b"]);
    assert_eq!(u.config.workdir, "/");
    let root = store.rootfs_path(&blob.sha256);
    assert!(root.join("bin/sh").is_file());
    assert!(!root.join("etc/motd").exists(), "whiteout");
    assert_eq!(fs::read(root.join("etc/issue")).expect("issue"), b"issue");
    assert_eq!(fs::read(root.join("srv/data")).expect("data"), b"data");
    assert_eq!(
        names(&root),
        ["bin", "etc", "srv"],
        "only the layers' content"
    );
}

#[test]
fn docker_diff_id_mismatch_is_refused() {
    let (_d, store) = store();
    let m = refused(&store, &docker_archive(true));
    assert!(
        m.contains("diff_id mismatch") && m.contains("layer 2 of 3"),
        "{m}"
    );
}

#[test]
fn rootfs_tarball_plain_and_gzip() {
    require_root();
    let (_d, store) = store();
    let t = rootfs_tar(&[
        M::Dir("sbin", 0o755),
        M::File("sbin/init", 0o755, b"init"),
        M::Dir("tmp", 0o1777),
    ]);
    for bytes in [t.clone(), gzip(&t)] {
        let blob = import(&store, &bytes);
        let u = store.unpack(&blob.sha256).expect("unpack");
        assert_eq!(u.format, Format::RootfsTar);
        assert_eq!(u.config.command, ["/sbin/init"]);
        assert_eq!(
            u.config.env,
            ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        );
        assert_eq!(u.config.workdir, "/");
        assert_eq!(u.architecture, None, "a fake shell is not ELF");
        let tmp = fs::metadata(store.rootfs_path(&blob.sha256).join("tmp")).expect("tmp");
        assert_eq!(tmp.permissions().mode() & 0o7777, 0o1777);
    }
    // Only a shell: the shell.
    let blob = import(&store, &rootfs_tar(&[]));
    assert_eq!(
        store.unpack(&blob.sha256).expect("unpack").config.command,
        ["/bin/sh"]
    );
}

/// Pseudo-random bytes (xorshift), so compression cannot shrink them.
fn noise(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn corrupt_truncated_empty_and_unknown_archives_are_refused() {
    let (_d, store) = store();
    let big = noise(300_000);
    let t = rootfs_tar(&[
        M::File("bin/big", 0o644, &big),
        M::File("bin/after", 0o644, b"x"),
    ]);
    let gz = gzip(&t);

    let m = refused(&store, &gz[..gz.len() / 2]);
    assert!(
        m.contains("truncated") || m.contains("corrupt"),
        "half a tar.gz: {m}"
    );

    let mut bad_crc = gz.clone();
    let at = bad_crc.len() - 8;
    bad_crc[at] ^= 0xff;
    let m = refused(&store, &bad_crc);
    assert!(m.contains("corrupt"), "bad gzip CRC: {m}");

    let m = refused(&store, &t[..t.len() / 2]);
    assert!(m.contains("truncated"), "half a plain tar: {m}");

    // Garbage where the third header is (after bin/ and bin/sh).
    let mut bad_header = t.clone();
    let third = 512 + 512 + 512;
    bad_header[third..third + 512].copy_from_slice(&noise(512));
    let m = refused(&store, &bad_header);
    assert!(
        m.contains("corrupt") && m.contains("after 2 members"),
        "garbage header: {m}"
    );
    assert!(
        m.len() < 400 && !m.contains('\u{fffd}'),
        "garbage quoted: {m}"
    );

    let m = refused(&store, &noise(4096));
    assert!(m.contains("not a tar archive"), "garbage: {m}");

    let m = refused(&store, b"");
    assert!(m.contains("empty"), "empty file: {m}");

    let m = refused(&store, &[0u8; 10240]);
    assert!(m.contains("empty"), "tar with no members: {m}");

    let m = refused(&store, &tar(&[M::File("hello.txt", 0o644, b"hi")]));
    assert!(m.contains("unrecognised"), "not a rootfs: {m}");

    let m = refused(&store, b"\x28\xb5\x2f\xfd\x00\x00\x00\x00");
    assert!(m.contains("zstd"), "zstd: {m}");

    let m = refused(&store, b"QFI\xfb\x00\x00\x00\x03");
    assert!(m.contains("qcow2"), "qcow2: {m}");
}

#[test]
fn unsafe_paths_are_refused_or_contained() {
    require_root();
    let (_d, store) = store();
    let m = refused(&store, &rootfs_tar(&[M::File("../etc/x", 0o644, b"x")]));
    assert!(m.contains("unsafe path"), "{m}");
    let m = refused(&store, &rootfs_tar(&[M::File("a/../../x", 0o644, b"x")]));
    assert!(m.contains("unsafe path"), "{m}");
    let m = refused(&store, &rootfs_tar(&[M::Hardlink("hl", "/etc/passwd")]));
    assert!(m.contains("hard link"), "{m}");

    let outside = tempfile::tempdir().expect("tempdir");
    let out = outside.path().to_str().expect("utf-8 path");
    fs::write(outside.path().join("secret"), b"secret").expect("write");
    fs::write(outside.path().join("target"), b"original").expect("write");
    let abs = format!("{out}/abs");
    let up = "up/".to_string() + out.trim_start_matches('/') + "/pwned2";
    let hl = "evil/secret";
    let m = refused(
        &store,
        &rootfs_tar(&[M::Symlink("evil", out), M::Hardlink("hl2", hl)]),
    );
    assert!(m.contains("hard link"), "hard link through a symlink: {m}");
    assert_eq!(
        fs::metadata(outside.path().join("secret"))
            .expect("secret")
            .nlink(),
        1
    );

    let blob = import(
        &store,
        &rootfs_tar(&[
            M::File(&abs, 0o644, b"abs"),
            M::Symlink("evil", out),
            M::File("evil/pwned", 0o644, b"pwned"),
            M::Symlink("up", "../../../../../../../.."),
            M::File(&up, 0o644, b"pwned2"),
            M::Symlink("victim", &format!("{out}/target")),
            M::File("victim", 0o644, b"replaced"),
        ]),
    );
    store.unpack(&blob.sha256).expect("contained, so accepted");
    let root = store.rootfs_path(&blob.sha256);
    let inside = root.join(out.trim_start_matches('/'));
    assert_eq!(fs::read(inside.join("abs")).expect("abs"), b"abs");
    assert_eq!(fs::read(inside.join("pwned")).expect("pwned"), b"pwned");
    assert_eq!(fs::read(inside.join("pwned2")).expect("pwned2"), b"pwned2");
    assert_eq!(fs::read(root.join("victim")).expect("victim"), b"replaced");
    assert_eq!(
        names(outside.path()),
        ["secret", "target"],
        "nothing written outside"
    );
    assert_eq!(
        fs::read(outside.path().join("target")).expect("target"),
        b"original"
    );
}

#[test]
fn whiteouts_do_not_follow_symlinks_out() {
    require_root();
    let (_d, store) = store();
    let outside = tempfile::tempdir().expect("tempdir");
    let out = outside.path().to_str().expect("utf-8 path");
    fs::write(outside.path().join("keepme"), b"keep").expect("write");
    let l1 = rootfs_tar(&[
        M::Symlink("victim", out),
        M::Symlink("rel", "../../../../../.."),
    ]);
    let rel = "rel/".to_string() + out.trim_start_matches('/') + "/.wh.keepme";
    let l2 = tar(&[
        M::File("victim/.wh.keepme", 0o644, b""),
        M::File("victim/.wh..wh..opq", 0o644, b""),
        M::File(&rel, 0o644, b""),
    ]);
    let mut oci = Oci::new();
    let d = oci.image(
        json!({"os": "linux"}),
        &[
            (l1, "application/vnd.oci.image.layer.v1.tar"),
            (l2, "application/vnd.oci.image.layer.v1.tar"),
        ],
    );
    let blob = import(&store, &oci.archive(vec![d]));
    let u = store.unpack(&blob.sha256).expect("unpack");
    assert_eq!(u.config.command, ["/bin/sh"], "no Cmd: the rootfs's shell");
    assert_eq!(names(outside.path()), ["keepme"]);

    let (_d, store) = common::store();
    let l = tar(&[M::File("etc/.wh...", 0o644, b"")]);
    let mut oci = Oci::new();
    let d = oci.image(json!({}), &[(rootfs_tar(&[]), "t"), (l, "t")]);
    let m = refused(&store, &oci.archive(vec![d]));
    assert!(m.contains("bad whiteout"), "{m}");
}

#[test]
fn reimport_is_idempotent_and_concurrent_unpacks_agree() {
    require_root();
    let (_d, store) = store();
    let bytes = gzip(&rootfs_tar(&[M::File("etc/x", 0o644, b"x")]));
    let a = import(&store, &bytes);
    let b = import(&store, &bytes);
    assert_eq!(a, b);
    assert_eq!(a.size, bytes.len() as u64);
    assert_eq!(a.sha256, sha256(&bytes));
    assert_eq!(store.blobs().expect("blobs"), [a.sha256.as_str()]);
    assert!(store.has_blob(&a.sha256));

    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| store.unpack(&a.sha256)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("no panic"))
            .collect()
    });
    let first = results[0].clone().expect("unpack");
    for r in results {
        assert_eq!(r.expect("unpack"), first);
    }
    assert_eq!(
        names(&store.root().join("rootfs")),
        [a.sha256.clone(), format!("{}.json", a.sha256)]
    );
    assert_eq!(store.unpack(&a.sha256).expect("again"), first);
    assert_eq!(
        store.unpacked(&a.sha256).expect("read"),
        Some(first.clone())
    );

    // A lost root filesystem (or one without its metadata) is redone.
    fs::remove_file(
        store
            .root()
            .join("rootfs")
            .join(format!("{}.json", a.sha256)),
    )
    .expect("rm");
    assert_eq!(store.unpack(&a.sha256).expect("redo"), first);
    assert!(store.rootfs_path(&a.sha256).join("etc/x").is_file());
}

#[test]
fn dropped_writer_leaves_nothing() {
    let (_d, store) = store();
    let mut w = store.writer().expect("writer");
    std::io::Write::write_all(&mut w, b"half an upload").expect("write");
    assert_eq!(names(&store.root().join("tmp")).len(), 1);
    drop(w);
    assert_nothing_left(&store);
    assert!(store.blobs().expect("blobs").is_empty());
}

#[test]
fn remove_and_gc() {
    require_root();
    let (_d, store) = store();
    let a = import(&store, &rootfs_tar(&[M::File("a", 0o644, b"a")]));
    let b = import(&store, &rootfs_tar(&[M::File("b", 0o644, b"b")]));
    let c = import(&store, &rootfs_tar(&[M::File("c", 0o644, b"c")]));
    store.unpack(&a.sha256).expect("a");
    store.unpack(&b.sha256).expect("b");
    let keep: HashSet<String> = [format!("sha256:{}", a.sha256)].into_iter().collect();
    let mut removed = store.gc(&keep).expect("gc");
    removed.sort();
    let mut want = vec![b.sha256.clone(), c.sha256.clone()];
    want.sort();
    assert_eq!(removed, want);
    assert!(store.has_blob(&a.sha256) && store.rootfs_path(&a.sha256).is_dir());
    assert!(!store.has_blob(&b.sha256) && !store.rootfs_path(&b.sha256).exists());
    assert!(!store.has_blob(&c.sha256));
    assert_eq!(
        names(&store.root().join("rootfs")),
        [a.sha256.clone(), format!("{}.json", a.sha256)]
    );
    assert!(store.gc(&keep).expect("gc again").is_empty());

    store.remove(&a.sha256).expect("remove");
    store.remove(&a.sha256).expect("remove again");
    assert_nothing_left(&store);
    assert!(store.blobs().expect("blobs").is_empty());
    assert!(matches!(
        store.remove("../../etc"),
        Err(nuage_image::ImageError::Invalid(_))
    ));
    assert!(matches!(
        store.unpack(&"0".repeat(64)),
        Err(nuage_image::ImageError::Io(m)) if m.contains("not stored")
    ));
}

#[test]
fn open_cleans_up_after_a_crash() {
    require_root();
    let (d, store) = store();
    let a = import(&store, &rootfs_tar(&[]));
    store.unpack(&a.sha256).expect("unpack");
    let root = store.root().to_path_buf();
    let partial = root
        .join("rootfs")
        .join(format!("{}.partial-1-2-3", "b".repeat(64)));
    fs::create_dir_all(partial.join("usr/lib")).expect("mkdir");
    fs::write(partial.join("usr/lib/x"), b"x").expect("write");
    fs::write(root.join("tmp/blob-abc"), b"half").expect("write");
    fs::write(
        root.join("rootfs").join(format!("{}.json", "c".repeat(64))),
        b"{}",
    )
    .expect("write");
    let reopened = ImageStore::open(&root).expect("reopen");
    assert_eq!(
        names(&root.join("rootfs")),
        [a.sha256.clone(), format!("{}.json", a.sha256)]
    );
    assert!(names(&root.join("tmp")).is_empty());
    assert_eq!(
        reopened.unpack(&a.sha256).expect("still there").format,
        Format::RootfsTar
    );
    drop(d);
}

/// docker ≥ 25 writes an OCI layout plus a manifest.json naming blobs by
/// path; both routes must give the same image.
#[test]
fn docker_25_archive_either_route() {
    require_root();
    let (l1, l2) = oci_layers();
    let config = oci_config(&l1, &l2, "amd64");
    let config_bytes = serde_json::to_vec(&config).expect("json");
    let mut oci = Oci::new();
    let d = oci.image(
        config,
        &[
            (l1.clone(), "application/vnd.oci.image.layer.v1.tar"),
            (l2.clone(), "application/vnd.oci.image.layer.v1.tar"),
        ],
    );
    let manifest = serde_json::to_vec(&json!([{
        "Config": format!("blobs/sha256/{}", sha256(&config_bytes)),
        "RepoTags": ["app:1"],
        "Layers": [format!("blobs/sha256/{}", sha256(&l1)), format!("blobs/sha256/{}", sha256(&l2))],
    }]))
    .expect("json");
    oci.files.push(("manifest.json".into(), manifest));
    let with_layout = oci.archive(vec![d]);
    // The same files without oci-layout and index.json: the docker route.
    let docker_only = {
        let mut a = tar::Archive::new(with_layout.as_slice());
        let mut b = tar::Builder::new(Vec::new());
        for e in a.entries().expect("entries") {
            let mut e = e.expect("entry");
            let name = e.path().expect("path").to_string_lossy().into_owned();
            if name == "oci-layout" || name == "index.json" {
                continue;
            }
            let mut h = e.header().clone();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).expect("read");
            b.append_data(&mut h, &name, data.as_slice())
                .expect("append");
        }
        b.into_inner().expect("tar")
    };
    let (_d, store) = store();
    for (bytes, format) in [
        (with_layout, Format::OciArchive),
        (docker_only, Format::DockerArchive),
    ] {
        let blob = import(&store, &bytes);
        let u = store.unpack(&blob.sha256).expect("unpack");
        assert_eq!(u.format, format);
        assert_eq!(u.config.command, ["/app", "--serve", "8080"]);
        check_oci_tree(&store.rootfs_path(&blob.sha256));
    }
}

/// Every directory and file under `dir` with its mode, the tree's content
/// (unpacked root filesystems) left out.
fn store_modes(dir: &Path, out: &mut Vec<(String, u32, bool)>) {
    for e in fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("entry");
        let m = fs::symlink_metadata(e.path()).expect("metadata");
        out.push((
            e.path().display().to_string(),
            m.mode() & 0o7777,
            m.is_dir(),
        ));
        if m.is_dir() && e.file_name().len() != 64 {
            store_modes(&e.path(), out);
        }
    }
}

#[test]
fn setuid_and_device_members_are_never_usable_on_the_host() {
    require_root();
    let (dir, store) = store();
    let members = || {
        vec![
            M::Dir("usr/bin", 0o755),
            M::File("usr/bin/su", 0o4755, b"su"),
            M::File("usr/bin/wall", 0o2755, b"wall"),
            M::CharDev("dev/mem"),
            M::CharDev("mem"),
            M::Fifo("fifo"),
        ]
    };
    let mut with_link = members();
    with_link.push(M::Hardlink("passwd-link", "/etc/passwd"));
    let blob = import(&store, &rootfs_tar(&with_link));
    // The hard link out is refused as a whole, and changes nothing.
    let m = store
        .unpack(&blob.sha256)
        .expect_err("hard link to /etc/passwd");
    assert!(m.to_string().contains("hard link"), "{m}");
    assert_nothing_left(&store);
    assert_eq!(fs::metadata("/etc/passwd").expect("passwd").nlink(), 1);

    let blob = import(&store, &rootfs_tar(&members()));
    store.unpack(&blob.sha256).expect("unpack");
    let root = store.rootfs_path(&blob.sha256);
    // No device node or fifo anywhere in the tree.
    let mut todo = vec![root.clone()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let t = e.file_type().expect("type");
            use std::os::unix::fs::FileTypeExt;
            assert!(
                !(t.is_char_device() || t.is_block_device() || t.is_fifo()),
                "{} is a device or fifo",
                e.path().display()
            );
            if t.is_dir() {
                todo.push(e.path());
            }
        }
    }
    // The setuid binaries stay (instances need su), but no host user can
    // reach them: a real unprivileged process is refused on the way.
    let su = root.join("usr/bin/su");
    assert_eq!(fs::metadata(&su).expect("su").mode() & 0o7777, 0o4755);
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg("/bin/cat")
        .arg(&su)
        .output()
        .expect("setpriv runs");
    assert!(!out.status.success(), "nobody read {}", su.display());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The store's own directories are 0700 and its files 0600.
    let mut modes = Vec::new();
    store_modes(&dir.path().join("images"), &mut modes);
    assert!(
        modes.iter().any(|(_, _, d)| !d),
        "no files walked: {modes:?}"
    );
    for (path, mode, is_dir) in &modes {
        let want = if *is_dir { 0o700 } else { 0o600 };
        if path.ends_with(&blob.sha256) && *is_dir {
            continue; // the unpacked tree's root: the archive's mode, inside 0700
        }
        assert_eq!(*mode, want, "{path} is {mode:o}");
    }
}
