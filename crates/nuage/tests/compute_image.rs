//! Images from instances (CreateImage, ADR 28) end to end: a real `nuage
//! serve` with the container driver (runc, overlayfs, cgroups), driven over
//! the native API and the `nuage` CLI. Needs root, runc and busybox-static.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{b64, build_busybox, call, nuage_bin, wait_state, Server};
use serde_json::{json, Value};

async fn launch(s: &Server, t: &str, image: &str, user_data: &str) -> String {
    let (st, v) = call(
        s,
        t,
        "POST",
        "/nuage/v1/instances",
        Some(json!({"image_id": image, "instance_type": "t2.nano", "user_data": b64(user_data)})),
    )
    .await;
    assert_eq!(st, 201, "run: {v}\n{}", s.logs());
    v["items"][0]["id"].as_str().expect("id").to_string()
}

async fn console_until(s: &Server, t: &str, id: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = call(
            s,
            t,
            "GET",
            &format!("/nuage/v1/instances/{id}/console"),
            None,
        )
        .await;
        let c = v["output"].as_str().unwrap_or_default().to_string();
        if c.contains(needle) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not on {id}'s console:\n{c}\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn act(s: &Server, t: &str, action: &str, id: &str) {
    let (st, v) = call(
        s,
        t,
        "POST",
        &format!("/nuage/v1/instances/{action}"),
        Some(json!({"instance_ids": [id]})),
    )
    .await;
    assert_eq!(st, 200, "{action} {id}: {v}");
}

async fn create_image(s: &Server, t: &str, id: &str, name: &str) -> (u16, Value) {
    call(
        s,
        t,
        "POST",
        &format!("/nuage/v1/instances/{id}/image"),
        Some(json!({"name": name, "description": "made by a test"})),
    )
    .await
}

/// Waits for the image to leave `snapshotting`; returns it.
async fn image_settled(s: &Server, t: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (st, v) = call(s, t, "GET", &format!("/nuage/v1/images/{id}"), None).await;
        assert_eq!(st, 200, "{v}");
        if v["status"] != "snapshotting" {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "image {id} still snapshotting\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the instance's cgroup (v2) is frozen; `None` without cgroup v2.
fn frozen(s: &Server, id: &str) -> Option<bool> {
    let f = Path::new("/sys/fs/cgroup")
        .join(common::cgroup_parent(&s.data_dir()))
        .join(id)
        .join("cgroup.freeze");
    std::fs::read_to_string(f).ok().map(|v| v.trim() == "1")
}

const WRITER: &str = "#!/bin/sh\necho snap-marker > /root/kept\nmkdir -p /srv/a && ln /root/kept /srv/a/hard && ln -s /root/kept /srv/soft\n[ -e /bin/vi ] && echo had-vi\nrm /bin/vi\nsync\necho wrote-it\n";

const READER: &str = "#!/bin/sh\necho \"kept=$(cat /root/kept) owner=$(stat -c %u:%g /root/kept) links=$(stat -c %h /root/kept) soft=$(cat /srv/soft) vi=$(ls /bin/vi 2>&1 | grep -c 'No such')\"\n";

#[tokio::test]
async fn image_of_a_running_then_stopped_instance_carries_its_disk() {
    let s = Server::start();
    build_busybox(&s);
    let t = s.admin_token().await;
    let a = launch(&s, &t, "busybox", WRITER).await;
    wait_state(&s, &t, &a, "running").await;
    let c = console_until(&s, &t, &a, "wrote-it").await;
    assert!(
        c.contains("had-vi"),
        "the image has no /bin/vi to delete:\n{c}"
    );

    // Of the running instance: answered at once, pending, then active.
    let (st, im) = create_image(&s, &t, &a, "from-running").await;
    assert_eq!(st, 202, "{im}\n{}", s.logs());
    assert!(
        im["status"] == "snapshotting" || im["status"] == "active",
        "{im}"
    );
    let img = im["id"].as_str().expect("id").to_string();
    let im = image_settled(&s, &t, &img).await;
    assert_eq!(im["status"], "active", "{im}\n{}", s.logs());
    assert_eq!(im["properties"]["image_type"], "snapshot", "{im}");
    assert_eq!(im["properties"]["instance_uuid"], a.as_str(), "{im}");
    assert_eq!(im["properties"]["description"], "made by a test", "{im}");
    // The source keeps running, thawed.
    let v = wait_state(&s, &t, &a, "running").await;
    assert_eq!(v["state"], "running");
    if let Some(f) = frozen(&s, &a) {
        assert!(!f, "the instance was left frozen");
    }
    assert!(
        s.logs().contains("root disk snapshot written"),
        "{}",
        s.logs()
    );

    // A new instance of it sees the file, its owner, its links, and the
    // deletion (an overlay whiteout) as the first instance left them.
    let b = launch(&s, &t, &img, READER).await;
    wait_state(&s, &t, &b, "running").await;
    let c = console_until(&s, &t, &b, "kept=").await;
    assert!(
        c.contains("kept=snap-marker owner=0:0 links=2 soft=snap-marker vi=1"),
        "{c}"
    );

    // Of the stopped instance, and through the CLI with --wait.
    act(&s, &t, "stop", &a).await;
    wait_state(&s, &t, &a, "stopped").await;
    let (ok, out, err) = common::run(s.client(nuage_bin()).args([
        "create-image",
        "--instance-id",
        &a,
        "--name",
        "from-stopped",
        "--no-reboot",
        "--wait",
    ]));
    assert!(ok, "nuage create-image: {out}\n{err}\n{}", s.logs());
    let img2 = out.trim().to_string();
    assert!(img2.starts_with("ami-"), "{out}");
    let (_, im2) = call(&s, &t, "GET", &format!("/nuage/v1/images/{img2}"), None).await;
    assert_eq!(im2["status"], "active", "{im2}");
    // Stopped, it is still stopped (nothing started it for the copy).
    wait_state(&s, &t, &a, "stopped").await;

    // Refusals: a name taken, a malformed name, an unknown instance.
    let (st, v) = create_image(&s, &t, &a, "from-running").await;
    assert_eq!(st, 409, "{v}");
    let (st, v) = create_image(&s, &t, &a, "ami-looks-like-an-id").await;
    assert_eq!(st, 400, "{v}");
    let (st, v) = create_image(&s, &t, "i-0123456789abcdef0", "x-1").await;
    assert_eq!(st, 404, "{v}");

    // A terminated instance has no disk left to copy.
    act(&s, &t, "terminate", &a).await;
    wait_state(&s, &t, &a, "terminated").await;
    let (st, v) = create_image(&s, &t, &a, "too-late").await;
    assert_eq!(st, 409, "{v}");
    let (_, list) = call(&s, &t, "GET", "/nuage/v1/images?name=too-late", None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");

    // In use, the image stays; once its instance is gone it goes.
    let (st, _) = call(&s, &t, "DELETE", &format!("/nuage/v1/images/{img}"), None).await;
    assert_eq!(st, 409);
    act(&s, &t, "terminate", &b).await;
    wait_state(&s, &t, &b, "terminated").await;
    for i in [&img, &img2] {
        let (st, v) = call(&s, &t, "DELETE", &format!("/nuage/v1/images/{i}"), None).await;
        assert_eq!(st, 204, "{v}");
    }
}

/// A kill -9 while an image is being made: after the restart the image is
/// `killed` (or `active`, if the copy won the race), never left pending;
/// no partial data remains, nothing unreferenced is kept, and the instance
/// is not left frozen.
#[tokio::test]
async fn kill9_while_an_image_is_made_leaves_it_failed_and_nothing_behind() {
    let mut s = Server::start();
    build_busybox(&s);
    let mut t = s.admin_token().await;
    // A disk big enough that the copy takes a while.
    let a = launch(
        &s,
        &t,
        "busybox",
        "#!/bin/sh\ndd if=/dev/urandom of=/root/big bs=1M count=200 2>/dev/null\nsync\necho big-written\n",
    )
    .await;
    wait_state(&s, &t, &a, "running").await;
    console_until(&s, &t, &a, "big-written").await;
    let mut killed = 0;
    for round in 0..3 {
        let (st, im) = create_image(&s, &t, &a, &format!("crash-{round}")).await;
        assert_eq!(st, 202, "{im}");
        let id = im["id"].as_str().expect("id").to_string();
        tokio::time::sleep(Duration::from_millis(150 * round)).await;
        s.kill9();
        s.spawn();
        t = s.admin_token().await;
        let (st, im) = call(&s, &t, "GET", &format!("/nuage/v1/images/{id}"), None).await;
        assert_eq!(st, 200, "{im}");
        assert!(
            im["status"] == "killed" || im["status"] == "active",
            "after a restart the image is {im}"
        );
        if im["status"] == "killed" {
            killed += 1;
        }
    }
    assert!(killed > 0, "no kill landed while an image was being made");
    // Nothing partial, nothing unreferenced.
    let images = s.data_dir().join("images");
    let tmp: Vec<_> = std::fs::read_dir(images.join("tmp"))
        .expect("tmp")
        .collect();
    assert!(tmp.is_empty(), "partial blobs left: {tmp:?}");
    let partial: Vec<String> = std::fs::read_dir(images.join("rootfs"))
        .expect("rootfs")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.contains(".partial-"))
        .collect();
    assert!(partial.is_empty(), "partial unpacks left: {partial:?}");
    let (_, list) = call(&s, &t, "GET", "/nuage/v1/images", None).await;
    let referenced: std::collections::BTreeSet<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["sha256"].as_str().map(str::to_string))
        .collect();
    let blobs: std::collections::BTreeSet<String> = std::fs::read_dir(images.join("blobs/sha256"))
        .expect("blobs")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(blobs, referenced, "blobs no image references were kept");
    // The instance runs on, thawed, and a new image of it still works.
    wait_state(&s, &t, &a, "running").await;
    if let Some(f) = frozen(&s, &a) {
        assert!(!f, "a crash mid-copy left the instance frozen");
    }
    let (st, im) = create_image(&s, &t, &a, "after-crash").await;
    assert_eq!(st, 202, "{im}");
    let im = image_settled(&s, &t, im["id"].as_str().expect("id")).await;
    assert_eq!(im["status"], "active", "{im}\n{}", s.logs());
}
