//! openstacksdk (python3-openstacksdk) against a real `nuage serve`: the
//! script `tests/openstack/sdk.py` drives flavors, key pairs, images, server
//! groups and limits through `openstack.connect()` with the admin.env
//! credentials, and checks that each bad input is refused and changes
//! nothing. Debian's Python runs it (/usr/bin/python3), where the SDK is.
//! It runs on both store engines: the same SQL serves SQLite and PostgreSQL.

mod common;

use common::{rootfs_tar, start_without_compute, Options, Server};

fn sdk(s: &Server) {
    let work = tempfile::tempdir().expect("tempdir");
    let tar = rootfs_tar(work.path());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openstack/sdk.py");
    let mut c = s.client("/usr/bin/python3");
    c.arg(script).arg(&tar);
    let (ok, out, err) = common::run(&mut c);
    assert!(
        ok && out.trim_end().ends_with("ok"),
        "sdk.py failed:\n{out}\n{err}\n{}",
        s.logs()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openstacksdk_drives_flavors_keypairs_images_server_groups_and_limits() {
    sdk(&start_without_compute());
}

#[tokio::test(flavor = "multi_thread")]
async fn openstacksdk_on_postgresql() {
    let url = nuage_store::testing::fresh_postgres_url()
        .await
        .expect("a fresh PostgreSQL database");
    sdk(&Server::start_with(Options {
        database: Some(url),
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "none".into())],
        ..Options::default()
    }));
}
