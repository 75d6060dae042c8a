//! openstacksdk (python3-openstacksdk) against a real `nuage serve`: the
//! script `tests/openstack/sdk.py` drives flavors, key pairs, images, server
//! groups and limits through `openstack.connect()` with the admin.env
//! credentials, and checks that each bad input is refused and changes
//! nothing. Debian's Python runs it (/usr/bin/python3), where the SDK is.

mod common;

use common::{rootfs_tar, start_without_compute, Server};

fn sdk(s: &Server, image: &std::path::Path) -> (bool, String, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openstack/sdk.py");
    let mut c = s.client("/usr/bin/python3");
    c.arg(script).arg(image);
    common::run(&mut c)
}

#[tokio::test(flavor = "multi_thread")]
async fn openstacksdk_drives_flavors_keypairs_images_server_groups_and_limits() {
    let s = start_without_compute();
    let work = tempfile::tempdir().expect("tempdir");
    let tar = rootfs_tar(work.path());
    let (ok, out, err) = sdk(&s, &tar);
    assert!(
        ok && out.trim_end().ends_with("ok"),
        "sdk.py failed:\n{out}\n{err}\n{}",
        s.logs()
    );
}
