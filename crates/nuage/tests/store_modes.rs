//! The object and image stores keep what tenants put in them from other
//! host users: after an S3 put (the aws CLI) and an image build, every file
//! of both stores is 0600 and every directory 0700 (ADR 16). The unpacked
//! root filesystems' own content keeps the image's modes, behind 0700.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::{nuage_bin, Server};

fn walk(dir: &Path, skip: &Path, out: &mut Vec<(String, u32, bool)>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let e = e.expect("entry");
        let m = std::fs::symlink_metadata(e.path()).expect("metadata");
        if e.path().parent() == Some(skip) && m.is_dir() {
            continue; // an unpacked tree: the image's own modes
        }
        out.push((
            e.path().display().to_string(),
            m.mode() & 0o7777,
            m.is_dir(),
        ));
        if m.is_dir() {
            walk(&e.path(), skip, out);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_and_image_stores_are_private_after_a_put() {
    let s = Server::start();
    let (ok, out, err) = common::run(
        s.client(nuage_bin())
            .args(["image", "build", "busybox", "--public"]),
    );
    assert!(ok, "image build: {out}\n{err}");
    let work = tempfile::tempdir().expect("tempdir");
    let file = work.path().join("secret.txt");
    std::fs::write(&file, b"tenant data").expect("write");
    for args in [
        vec!["s3", "mb", "s3://private-bucket"],
        vec![
            "s3",
            "cp",
            file.to_str().expect("utf-8"),
            "s3://private-bucket/secret.txt",
        ],
    ] {
        let (ok, out, err) = common::run(
            s.client("aws")
                .args(&args)
                .args(["--endpoint-url", &s.url()]),
        );
        assert!(ok, "aws {}: {out}\n{err}", args.join(" "));
    }
    let mut entries = Vec::new();
    for store in ["objects", "images"] {
        let root = s.data_dir().join(store);
        let m = std::fs::metadata(&root).expect("store");
        entries.push((root.display().to_string(), m.mode() & 0o7777, true));
        walk(&root, &s.data_dir().join("images/rootfs"), &mut entries);
    }
    assert!(
        entries.iter().filter(|e| !e.2).count() >= 3,
        "the walk found no files: {entries:?}"
    );
    let wrong: Vec<_> = entries
        .iter()
        .filter(|(_, mode, dir)| *mode != if *dir { 0o700 } else { 0o600 })
        .collect();
    assert!(wrong.is_empty(), "not private: {wrong:?}");
}
