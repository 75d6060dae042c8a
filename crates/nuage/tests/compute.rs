//! Compute end to end: a real `nuage serve` with the container driver
//! (Debian's runc, real cgroups and overlayfs), driven over HTTP and with
//! the `nuage` CLI. Needs root, runc and busybox-static, as CI has.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{call, nuage_bin, Server};
use serde_json::{json, Value};

/// Builds and uploads the busybox image with the real CLI, as a user would.
fn build_busybox(s: &Server) {
    let (ok, out, err) = common::run(
        s.client(nuage_bin())
            .args(["image", "build", "busybox", "--public"]),
    );
    assert!(
        ok,
        "nuage image build busybox failed:\n{out}\n{err}\n{}",
        s.logs()
    );
}

async fn setup() -> (Server, String) {
    let s = Server::start();
    build_busybox(&s);
    let t = s.admin_token().await;
    (s, t)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn run_one(s: &Server, t: &str, body: Value) -> String {
    let (st, v) = call(s, t, "POST", "/nuage/v1/instances", Some(body)).await;
    assert_eq!(st, 201, "run: {v}\n{}", s.logs());
    v["items"][0]["id"].as_str().expect("id").to_string()
}

/// Launches `body` (with its min_count) and returns every instance's id.
async fn launch(s: &Server, t: &str, body: Value) -> Vec<String> {
    let (st, v) = call(s, t, "POST", "/nuage/v1/instances", Some(body)).await;
    assert_eq!(st, 201, "run: {v}\n{}", s.logs());
    ids_of(&v)
}

fn ids_of(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

async fn wait(s: &Server, t: &str, id: &str, state: &str) -> Value {
    let (st, v) = call(
        s,
        t,
        "GET",
        &format!("/nuage/v1/instances/{id}?wait_for={state}&timeout=60"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["state"],
        state,
        "{id} did not reach {state}: {v}\n{}",
        s.logs()
    );
    v
}

async fn console(s: &Server, t: &str, id: &str) -> String {
    let (st, v) = call(
        s,
        t,
        "GET",
        &format!("/nuage/v1/instances/{id}/console"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    v["output"].as_str().unwrap_or_default().to_string()
}

/// Polls the console until it contains `needle`.
async fn console_until(s: &Server, t: &str, id: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = console(s, t, id).await;
        if c.contains(needle) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "console of {id} never showed {needle:?}:\n{c}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn act(s: &Server, t: &str, action: &str, ids: &[&str]) -> (u16, Value) {
    call(
        s,
        t,
        "POST",
        &format!("/nuage/v1/instances/{action}"),
        Some(json!({"instance_ids": ids})),
    )
    .await
}

#[tokio::test]
async fn lifecycle_user_data_console_stop_start_reboot_terminate() {
    let (s, t) = setup().await;
    let script = "#!/bin/sh\necho hello-from-user-data $(hostname)\ncat /mnt/config/nuage/instance-id; echo\necho marker > /root/kept\n";
    let id = run_one(&s, &t, json!({"image_id": "busybox", "instance_type": "t2.nano", "user_data": b64(script), "tags": {"Name": "web"}})).await;
    let v = wait(&s, &t, &id, "running").await;
    assert_eq!(v["status"], "ACTIVE");
    assert_eq!(v["tags"]["Name"], "web");
    let c = console_until(&s, &t, &id, "nuage-init: instance").await;
    let c = if c.contains(" up") {
        c
    } else {
        console_until(&s, &t, &id, " up").await
    };
    assert!(c.contains(&format!("hello-from-user-data {id}")), "{c}");
    assert_eq!(c.matches("hello-from-user-data").count(), 1, "{c}");

    // Stop and start: the instance store and the console survive, and the
    // user-data does not run again.
    let (st, v) = act(&s, &t, "stop", &[&id]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["items"][0]["previous_state"], "running");
    assert_eq!(v["items"][0]["current_state"], "stopping");
    let v = wait(&s, &t, &id, "stopped").await;
    assert_eq!(v["status"], "SHUTOFF");
    let (st, _) = act(&s, &t, "start", &[&id]).await;
    assert_eq!(st, 200);
    wait(&s, &t, &id, "running").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let c = loop {
        let c = console(&s, &t, &id).await;
        if c.matches(" up").count() >= 2 || Instant::now() > deadline {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        c.matches(" up").count() >= 2,
        "second boot not on the console:\n{c}"
    );
    assert_eq!(
        c.matches("hello-from-user-data").count(),
        1,
        "user-data ran twice:\n{c}"
    );
    let upper = s
        .data_dir()
        .join(format!("compute/instances/{id}/disk/upper/root/kept"));
    assert!(
        upper.exists(),
        "the instance store was lost across stop/start"
    );

    // Reboot keeps it running and boots again.
    let (st, v) = act(&s, &t, "reboot", &[&id]).await;
    assert_eq!(st, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = console(&s, &t, &id).await;
        if c.matches(" up").count() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "reboot did not boot again:\n{c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait(&s, &t, &id, "running").await;

    // Terminate: gone from the node, visible as terminated.
    let (st, v) = act(&s, &t, "terminate", &[&id]).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["items"][0]["current_state"], "shutting-down");
    wait(&s, &t, &id, "terminated").await;
    assert!(!s
        .data_dir()
        .join(format!("compute/instances/{id}"))
        .exists());
    assert_node_clean(&s, &BTreeSet::new());

    // Terminating twice and starting a terminated instance are refused.
    let (st, v) = act(&s, &t, "terminate", &[&id]).await;
    assert_eq!(st, 409, "{v}");
    let (st, v) = act(&s, &t, "start", &[&id]).await;
    assert_eq!(st, 409, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("terminated"),
        "{v}"
    );
}

/// Nothing on the node but the instances in `live`: no container, cgroup,
/// mount or directory of any other.
fn assert_node_clean(s: &Server, live: &BTreeSet<String>) {
    let data = s.data_dir();
    let names = |p: &Path| -> BTreeSet<String> {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        &names(&data.join("compute/instances")),
        live,
        "instance directories"
    );
    assert_eq!(
        &names(&data.join("compute/run/instances")),
        live,
        "instances' run directories"
    );
    assert_eq!(
        &names(&data.join("compute/run/runc")),
        live,
        "runc containers"
    );
    assert_eq!(
        &names(&data.join("compute/run/netns")),
        live,
        "network namespaces"
    );
    let parent = common::cgroup_parent(&data);
    for h in ["memory", "pids", "cpu"] {
        let dir = Path::new("/sys/fs/cgroup").join(h).join(&parent);
        let cg: BTreeSet<String> = names(&dir)
            .into_iter()
            .filter(|n| n.starts_with("i-"))
            .collect();
        assert_eq!(&cg, live, "{h} cgroups");
    }
    let mounts: BTreeSet<String> = common::mounts_under(&data.join("compute"))
        .iter()
        .filter_map(|m| {
            m.to_string_lossy()
                .split('/')
                .find(|c| c.starts_with("i-"))
                .map(String::from)
        })
        .collect();
    assert_eq!(&mounts, live, "mounts");
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let (s, t) = setup().await;
    let count = |v: &Value| v["items"].as_array().map(|a| a.len()).unwrap_or(0);
    let before = call(&s, &t, "GET", "/nuage/v1/instances", None).await.1;
    for (body, status, words) in [
        (
            json!({"image_id": "nope", "instance_type": "t2.nano"}),
            404,
            "image nope",
        ),
        (
            json!({"image_id": "busybox", "instance_type": "t9.huge"}),
            400,
            "instance type",
        ),
        (
            json!({"image_id": "busybox", "instance_type": "t2.nano", "user_data": b64(&"x".repeat(16 * 1024 + 1))}),
            400,
            "16384",
        ),
        (
            json!({"image_id": "busybox", "instance_type": "t2.nano", "key_name": "nokey"}),
            404,
            "key pair",
        ),
        (
            json!({"image_id": "busybox", "instance_type": "t2.nano", "min_count": 3, "max_count": 2}),
            400,
            "count",
        ),
        (
            json!({"image_id": "busybox", "instance_type": "t2.nano", "bogus": 1}),
            400,
            "bogus",
        ),
    ] {
        let (st, v) = call(&s, &t, "POST", "/nuage/v1/instances", Some(body.clone())).await;
        assert_eq!(st, status, "{body}: {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(words),
            "{body}: {v}"
        );
        assert!(v["error"]["request_id"].is_string());
    }
    // Invalid and unknown ids.
    let (st, _) = call(&s, &t, "GET", "/nuage/v1/instances/not-an-id", None).await;
    assert_eq!(st, 400);
    let (st, _) = call(
        &s,
        &t,
        "GET",
        "/nuage/v1/instances/i-00000000000000000",
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, _) = act(&s, &t, "stop", &["i-00000000000000000"]).await;
    assert_eq!(st, 404);
    // Quota: 2 instances allowed, 3 asked.
    let me = call(&s, &t, "GET", "/nuage/v1/tokens/self", None).await.1;
    let project = me["project"]["id"].as_str().expect("project").to_string();
    let (st, v) = call(
        &s,
        &t,
        "PUT",
        &format!("/nuage/v1/projects/{project}/quotas"),
        Some(json!({"instances": 2})),
    )
    .await;
    assert!(st == 200 || st == 204, "{v}");
    let (st, v) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/instances",
        Some(json!({"image_id": "busybox", "instance_type": "t2.nano", "min_count": 3})),
    )
    .await;
    assert_eq!(st, 413, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("quota exceeded for instances"),
        "{v}"
    );
    let after = call(&s, &t, "GET", "/nuage/v1/instances", None).await.1;
    assert_eq!(
        count(&before),
        count(&after),
        "a refused launch created instances"
    );
    // Key pair names are unique per project.
    let (st, v) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/key-pairs",
        Some(json!({"name": "k1", "key_type": "ed25519"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    assert!(v["private_key"]
        .as_str()
        .unwrap_or_default()
        .contains("OPENSSH PRIVATE KEY"));
    let (st, v) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/key-pairs",
        Some(json!({"name": "k1", "key_type": "ed25519"})),
    )
    .await;
    assert_eq!(st, 409, "{v}");
    let (st, v) = call(&s, &t, "GET", "/nuage/v1/key-pairs/k1", None).await;
    assert_eq!(st, 200);
    assert!(
        v.get("private_key").is_none(),
        "the private key is returned only once"
    );
    // Importing: the public half of k1 under another name; garbage is refused.
    let public = v["public_key"].as_str().expect("public key").to_string();
    let (st, w) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/key-pairs",
        Some(json!({"name": "k2", "public_key": public})),
    )
    .await;
    assert_eq!(st, 201, "{w}");
    assert_eq!(w["fingerprint"], v["fingerprint"]);
    assert!(w.get("private_key").is_none());
    let (st, w) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/key-pairs",
        Some(json!({"name": "k3", "public_key": "ssh-ed25519 AAAAnotakey"})),
    )
    .await;
    assert_eq!(st, 400, "{w}");
    // A corrupted image archive is refused with the reason; the image stays queued.
    let (st, img) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/images",
        Some(json!({"name": "broken"})),
    )
    .await;
    assert_eq!(st, 201, "{img}");
    let good = std::fs::read(build_tarball(&s)).expect("tarball");
    let r = s
        .http()
        .put(format!("{}/nuage/v1/images/broken/file", s.url()))
        .header("x-auth-token", &t)
        .body(good[..good.len() / 2].to_vec())
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert!(
        !v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{v}"
    );
    let (_, img) = call(&s, &t, "GET", "/nuage/v1/images/broken", None).await;
    assert_eq!(img["status"], "queued", "{img}");
    // An image in use cannot be deleted.
    let (st, v) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/instances",
        Some(json!({"image_id": "busybox", "instance_type": "t2.nano"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let id = v["items"][0]["id"].as_str().expect("id").to_string();
    let (st, v) = call(&s, &t, "DELETE", "/nuage/v1/images/busybox", None).await;
    assert_eq!(st, 409, "{v}");
    wait(&s, &t, &id, "running").await;
    act(&s, &t, "terminate", &[&id]).await;
    wait(&s, &t, &id, "terminated").await;
}

/// A busybox rootfs tarball made by the image builder.
fn build_tarball(s: &Server) -> std::path::PathBuf {
    let out = s.dir.path().join("busybox.tar.gz");
    nuage_image::builders::busybox(&out).expect("busybox builder");
    out
}

#[tokio::test]
async fn another_project_cannot_see_or_touch_instances_or_private_images() {
    let (s, t) = setup().await;
    for (path, body) in [
        ("/nuage/v1/projects", json!({"name": "other"})),
        (
            "/nuage/v1/users",
            json!({"name": "bob", "password": "bob-password-1", "default_project": "other"}),
        ),
    ] {
        let (st, v) = call(&s, &t, "POST", path, Some(body)).await;
        assert_eq!(st, 201, "{path}: {v}");
    }
    let (st, v) = call(
        &s,
        &t,
        "PUT",
        "/nuage/v1/projects/other/users/bob/roles/member",
        None,
    )
    .await;
    assert!(st == 204 || st == 200 || st == 201, "{v}");
    let bob = s.token_for("bob", "bob-password-1", Some("other")).await;
    let id = run_one(
        &s,
        &t,
        json!({"image_id": "busybox", "instance_type": "t2.nano"}),
    )
    .await;
    let (st, _) = call(&s, &bob, "GET", &format!("/nuage/v1/instances/{id}"), None).await;
    assert_eq!(st, 404);
    let (st, _) = act(&s, &bob, "terminate", &[&id]).await;
    assert_eq!(st, 404);
    let (_, v) = call(&s, &bob, "GET", "/nuage/v1/instances", None).await;
    assert_eq!(v["items"].as_array().map(|a| a.len()), Some(0));
    // Public images are visible; a private one is not until shared.
    let (st, _) = call(&s, &bob, "GET", "/nuage/v1/images/busybox", None).await;
    assert_eq!(st, 200);
    let (st, v) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/images",
        Some(json!({"name": "mine"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let mine = v["id"].as_str().expect("id").to_string();
    let (st, _) = call(&s, &bob, "GET", &format!("/nuage/v1/images/{mine}"), None).await;
    assert_eq!(st, 404);
    let (st, v) = call(
        &s,
        &bob,
        "POST",
        "/nuage/v1/images",
        Some(json!({"name": "pub", "visibility": "public"})),
    )
    .await;
    assert_eq!(st, 403, "only admins publish: {v}");
    let (st, v) = call(
        &s,
        &t,
        "POST",
        &format!("/nuage/v1/images/{mine}/members"),
        Some(json!({"project": "other"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = call(&s, &bob, "GET", &format!("/nuage/v1/images/{mine}"), None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["visibility"], "shared");
    act(&s, &t, "terminate", &[&id]).await;
    wait(&s, &t, &id, "terminated").await;
}

/// An init that ends on its own stops the instance (EC2's instance-initiated
/// shutdown), and the state reason says how it ended: the node agent reaps
/// the init and reads its status, it does not guess.
#[tokio::test]
async fn instance_initiated_shutdown_reports_the_init_status() {
    let (s, t) = setup().await;
    // nuage-init ends with status 0 on SIGTERM: a user-data "poweroff".
    let script = "#!/bin/sh\necho powering-off\nkill -TERM 1\n";
    let id = run_one(
        &s,
        &t,
        json!({"image_id": "busybox", "instance_type": "t2.nano", "user_data": b64(script)}),
    )
    .await;
    let v = wait(&s, &t, &id, "stopped").await;
    assert_eq!(
        v["state_reason"]["code"], "Client.InstanceInitiatedShutdown",
        "{v}"
    );
    assert_eq!(
        v["state_reason"]["message"], "Instance initiated shutdown: its init exited with status 0",
        "{v}"
    );
    act(&s, &t, "terminate", &[&id]).await;
    wait(&s, &t, &id, "terminated").await;
}

#[tokio::test]
async fn memory_limit_kills_and_is_reported_and_fork_bomb_is_held() {
    let (s, t) = setup().await;
    let (st, v) = call(&s, &t, "POST", "/nuage/v1/instance-types", Some(json!({"name": "tiny.mem", "vcpus": 1, "memory_mib": 32, "disk_gib": 1, "pids_limit": 64}))).await;
    assert_eq!(st, 201, "{v}");
    // A process that allocates 200 MiB in a 32 MiB instance is killed.
    let hog = "#!/bin/sh\necho hog-start\nsh -c 'x=$(head -c 200000000 /dev/zero | tr \"\\\\0\" a); echo survived'\necho hog-exit=$?\n";
    let a = run_one(
        &s,
        &t,
        json!({"image_id": "busybox", "instance_type": "tiny.mem", "user_data": b64(hog)}),
    )
    .await;
    // A fork bomb in a 64-pids instance is held there.
    let bomb = "#!/bin/sh\necho bomb-start\nb() { b | b & }; b\n";
    let b = run_one(
        &s,
        &t,
        json!({"image_id": "busybox", "instance_type": "tiny.mem", "user_data": b64(bomb)}),
    )
    .await;
    // The bomb's cgroup is sampled from its launch: the bomb burns out in a
    // moment, and once init itself cannot fork it may exit and the instance
    // stop (its cgroup gone), which is also "held".
    let pids = Path::new("/sys/fs/cgroup/pids")
        .join(common::cgroup_parent(&s.data_dir()))
        .join(&b)
        .join("pids.current");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            let mut refusals = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = std::fs::read_to_string(&pids) {
                    seen.extend(n.trim().parse::<u64>().ok());
                }
                // pids.events counts the forks the limit refused.
                if let Ok(e) = std::fs::read_to_string(pids.with_file_name("pids.events")) {
                    let refused = e
                        .strip_prefix("max ")
                        .and_then(|n| n.trim().parse::<u64>().ok())
                        .unwrap_or(0);
                    refusals = refusals.max(refused);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (seen, refusals)
        })
    };
    wait(&s, &t, &a, "running").await;
    wait(&s, &t, &b, "running").await;
    let c = console_until(&s, &t, &a, "hog-exit=").await;
    assert!(!c.contains("survived"), "the hog was not killed:\n{c}");
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let (_, v) = call(&s, &t, "GET", &format!("/nuage/v1/instances/{a}"), None).await;
        if v["oom_kills"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the OOM kill was never reported: {v}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    console_until(&s, &t, &b, "can't fork").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (seen, refusals) = sampler.join().expect("sampler");
    assert!(!seen.is_empty(), "the bomb's cgroup was never seen");
    let most = seen.iter().max().copied().unwrap_or_default();
    assert!(most <= 64, "fork bomb exceeded its pids limit: {most}");
    assert!(
        refusals > 0,
        "the limit never refused a fork (most pids seen: {most})"
    );
    // The host stays responsive.
    let started = Instant::now();
    let ok = std::process::Command::new("true")
        .status()
        .expect("spawn true")
        .success();
    assert!(
        ok && started.elapsed() < Duration::from_secs(1),
        "host unresponsive: {:?}",
        started.elapsed()
    );
    let (st, _) = call(&s, &t, "GET", "/healthz", None).await;
    assert_eq!(st, 200);
    let (st, v) = act(&s, &t, "terminate", &[&a, &b]).await;
    assert_eq!(st, 200, "{v}");
    wait(&s, &t, &a, "terminated").await;
    wait(&s, &t, &b, "terminated").await;
    assert_node_clean(&s, &BTreeSet::new());
}

#[tokio::test]
async fn describe_filters_and_pages() {
    let (s, t) = setup().await;
    let ids = launch(&s, &t, json!({"image_id": "busybox", "instance_type": "t2.nano", "min_count": 5, "tags": {"role": "db"}})).await;
    assert_eq!(ids.len(), 5);
    let web = run_one(
        &s,
        &t,
        json!({"image_id": "busybox", "instance_type": "t2.micro", "tags": {"role": "web"}}),
    )
    .await;
    for id in ids.iter().chain([&web]) {
        wait(&s, &t, id, "running").await;
    }
    let (_, v) = call(&s, &t, "GET", "/nuage/v1/instances?tag:role=web", None).await;
    assert_eq!(v["items"].as_array().map(|a| a.len()), Some(1), "{v}");
    let (_, v) = call(
        &s,
        &t,
        "GET",
        "/nuage/v1/instances?instance-type=t2.nano&instance-state-name=running",
        None,
    )
    .await;
    assert_eq!(v["items"].as_array().map(|a| a.len()), Some(5));
    let (st, _) = call(&s, &t, "GET", "/nuage/v1/instances?colour=blue", None).await;
    assert_eq!(st, 400);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let path = match &token {
            Some(tk) => format!("/nuage/v1/instances?max_results=2&next_token={tk}"),
            None => "/nuage/v1/instances?max_results=2".to_string(),
        };
        let (st, v) = call(&s, &t, "GET", &path, None).await;
        assert_eq!(st, 200, "{v}");
        for i in v["items"].as_array().expect("items") {
            seen.push(i["id"].as_str().expect("id").to_string());
        }
        match v["next_token"].as_str() {
            Some(tk) => token = Some(tk.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6, "{seen:?}");
    let all: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .chain([web.as_str()])
        .collect();
    let (st, v) = act(&s, &t, "terminate", &all).await;
    assert_eq!(st, 200, "{v}");
    for id in &all {
        wait(&s, &t, id, "terminated").await;
    }
}

#[tokio::test]
async fn cli_verbs_take_the_aws_flags() {
    let (s, _t) = setup().await;
    let nuage = |args: &[&str]| {
        let (ok, out, err) = common::run(s.client(nuage_bin()).args(args));
        assert!(ok, "nuage {args:?} failed:\n{out}\n{err}");
        out
    };
    let ud = s.dir.path().join("ud.sh");
    std::fs::write(&ud, "#!/bin/sh\necho cli-user-data-ran\n").expect("write");
    let out = nuage(&[
        "-o",
        "json",
        "run-instances",
        "--image-id",
        "busybox",
        "--instance-type",
        "t2.nano",
        "--count",
        "2",
        "--user-data",
        &format!("file://{}", ud.display()),
        "--tag-specifications",
        "ResourceType=instance,Tags=[{Key=Name,Value=cli}]",
        "--wait",
    ]);
    let v: Value = serde_json::from_str(&out).expect("run-instances JSON");
    let ids = ids_of(&v);
    assert_eq!(ids.len(), 2);
    // --wait prints the state reached, not the one before waiting.
    for i in v["items"].as_array().expect("items") {
        assert_eq!(i["state"], "running", "{out}");
    }
    let out = nuage(&[
        "describe-instances",
        "--filters",
        "Name=tag:Name,Values=cli",
        "Name=instance-state-name,Values=running",
    ]);
    for id in &ids {
        assert!(out.contains(id.as_str()), "{out}");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = nuage(&["get-console-output", "--instance-id", &ids[0]]);
        if out.contains("cli-user-data-ran") {
            break;
        }
        assert!(Instant::now() < deadline, "console: {out}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = nuage(&[
        "-o",
        "json",
        "stop-instances",
        "--instance-ids",
        &ids[0],
        "--wait",
    ]);
    let v: Value = serde_json::from_str(&out).expect("stop-instances JSON");
    assert_eq!(v["items"][0]["current_state"], "stopped", "{out}");
    let table = nuage(&["start-instances", "--instance-ids", &ids[0], "--wait"]);
    assert!(table.contains("running"), "{table}");
    nuage(&["stop-instances", "--instance-ids", &ids[0], "--wait"]);
    let out = nuage(&[
        "-o",
        "json",
        "describe-instances",
        "--instance-ids",
        &ids[0],
    ]);
    assert!(out.contains("\"stopped\""), "{out}");
    nuage(&["start-instances", "--instance-ids", &ids[0], "--wait"]);
    let out = nuage(&[
        "create-key-pair",
        "--key-name",
        "mykey",
        "--key-type",
        "ed25519",
    ]);
    assert!(out.contains("OPENSSH PRIVATE KEY"), "{out}");
    let out = nuage(&["describe-images"]);
    assert!(out.contains("busybox"), "{out}");
    let (ok, _, err) = common::run(s.client(nuage_bin()).args([
        "describe-instances",
        "--instance-ids",
        "i-00000000000000000",
    ]));
    assert!(
        !ok && err.contains("not found"),
        "an unknown id must fail: {err}"
    );
    let out = nuage(&["describe-instance-types"]);
    assert!(
        out.contains("m5.24xlarge") && out.contains("m1.tiny"),
        "{out}"
    );
    let out = nuage(&[
        "-o",
        "json",
        "terminate-instances",
        "--instance-ids",
        &ids[0],
        &ids[1],
        "--wait",
    ]);
    let v: Value = serde_json::from_str(&out).expect("terminate-instances JSON");
    for i in v["items"].as_array().expect("items") {
        assert_eq!(i["current_state"], "terminated", "{out}");
    }
    let (ok, _, err) =
        common::run(
            s.client(nuage_bin())
                .args(["terminate-instances", "--instance-ids", &ids[0]]),
        );
    assert!(!ok, "terminating twice must fail");
    assert!(err.contains("terminated"), "{err}");
}

/// The server is killed with SIGKILL at random moments while 100 instances
/// are launched and terminated; after a restart every instance reaches its
/// desired state and nothing is left on the node without its instance.
#[tokio::test]
async fn kill9_while_launching_and_terminating_converges_without_orphans() {
    // 100 one-vCPU instances on a 2-core machine: over-commit the CPU.
    let mut s = Server::start_with(common::Options {
        env: vec![("NUAGE_CPU_ALLOCATION_RATIO".into(), "100".into())],
        ..common::Options::default()
    });
    build_busybox(&s);
    let mut t = s.admin_token().await;
    let (st, v) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/instance-types",
        Some(json!({"name": "test.micro", "vcpus": 1, "memory_mib": 64, "disk_gib": 0})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let me = call(&s, &t, "GET", "/nuage/v1/tokens/self", None).await.1;
    let project = me["project"]["id"].as_str().expect("project").to_string();
    let (st, v) = call(
        &s,
        &t,
        "PUT",
        &format!("/nuage/v1/projects/{project}/quotas"),
        Some(json!({"instances": 500, "cores": 1000, "ram": 1_000_000})),
    )
    .await;
    assert!(st == 200 || st == 204, "{v}");
    let mut rng_state: u64 = 0x9e37_79b9_7f4a_7c15 ^ std::process::id() as u64;
    let mut rand = move |n: u64| {
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        rng_state % n
    };
    let mut all: Vec<String> = Vec::new();
    let mut to_terminate: Vec<String> = Vec::new();
    let mut in_flight = 0;
    for round in 0..4 {
        // 25 more instances, then terminate half of the previous round's.
        let ids = launch(
            &s,
            &t,
            json!({"image_id": "busybox", "instance_type": "test.micro", "min_count": 25}),
        )
        .await;
        if !to_terminate.is_empty() {
            let refs: Vec<&str> = to_terminate.iter().map(String::as_str).collect();
            let (st, v) = act(&s, &t, "terminate", &refs).await;
            assert_eq!(st, 200, "round {round}: {v}");
        }
        to_terminate = ids.iter().filter(|_| rand(2) == 0).cloned().collect();
        all.extend(ids);
        tokio::time::sleep(Duration::from_millis(rand(300))).await;
        let (_, v) = call(&s, &t, "GET", "/nuage/v1/instances", None).await;
        in_flight += v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|i| i["state"] == "pending" || i["state"] == "shutting-down")
                    .count()
            })
            .unwrap_or(0);
        s.kill9();
        s.spawn();
        t = s.admin_token().await;
    }
    assert!(
        in_flight > 0,
        "no kill landed while instances were being launched or terminated"
    );
    // Converge: every instance reaches running or terminated.
    let deadline = Instant::now() + Duration::from_secs(180);
    let live: BTreeSet<String> = loop {
        let (_, v) = call(&s, &t, "GET", "/nuage/v1/instances", None).await;
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let settled = items
            .iter()
            .all(|i| i["state"] == "running" || i["state"] == "terminated");
        if settled && items.len() == all.len() {
            break items
                .iter()
                .filter(|i| i["state"] == "running")
                .map(|i| i["id"].as_str().expect("id").to_string())
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "did not converge:\n{}\n{}",
            serde_json::to_string_pretty(&items).unwrap_or_default(),
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(!live.is_empty());
    assert_node_clean(&s, &live);
    // Every live instance really runs its init.
    for id in &live {
        let init = std::fs::read_to_string(
            s.data_dir()
                .join(format!("compute/run/instances/{id}/init")),
        )
        .expect("init record");
        let pid = init.split_whitespace().next().expect("pid");
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "{id}: init {pid} is not running"
        );
    }
    let refs: Vec<&str> = live.iter().map(String::as_str).collect();
    let (st, v) = act(&s, &t, "terminate", &refs).await;
    assert_eq!(st, 200, "{v}");
    for id in &live {
        wait(&s, &t, id, "terminated").await;
    }
    assert_node_clean(&s, &BTreeSet::new());
}

#[tokio::test]
async fn instances_on_postgres() {
    let s = Server::start_postgres().await;
    build_busybox(&s);
    let t = s.admin_token().await;
    let id = run_one(&s, &t, json!({"image_id": "busybox", "instance_type": "m1.tiny", "user_data": b64("#!/bin/sh\necho on-postgres\n")})).await;
    wait(&s, &t, &id, "running").await;
    console_until(&s, &t, &id, "on-postgres").await;
    act(&s, &t, "terminate", &[&id]).await;
    wait(&s, &t, &id, "terminated").await;
    assert_node_clean(&s, &BTreeSet::new());
}

/// Terminating instances while the reconciler moves them from pending to
/// running must not fail (it did, with 409, in CI): the write holds from
/// every state the terminate makes the same change from. The `fake` driver
/// (simulated nodes) starts instances at once, so the reconciler's writes
/// often land between the action's read and its write.
#[tokio::test]
async fn terminate_racing_the_reconciler_succeeds() {
    let s = Server::start_with(common::Options {
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "fake".into())],
        ..common::Options::default()
    });
    build_busybox(&s);
    let t = s.admin_token().await;
    for round in 0..10 {
        let ids = launch(
            &s,
            &t,
            json!({"image_id": "busybox", "instance_type": "t2.nano", "min_count": 20}),
        )
        .await;
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let (st, v) = act(&s, &t, "terminate", &refs).await;
        assert_eq!(st, 200, "round {round}: {v}\n{}", s.logs());
        let changes = v["items"].as_array().expect("state changes");
        assert_eq!(changes.len(), 20, "{v}");
        assert!(
            changes
                .iter()
                .all(|c| c["current_state"] == "shutting-down"),
            "{v}"
        );
        for id in &refs {
            wait(&s, &t, id, "terminated").await;
        }
    }
}

/// The server's soft open-file limit, from `/proc/<pid>/limits`.
fn nofile_soft(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    line.split_whitespace().nth(3).expect("soft").to_string()
}

fn set_nofile_soft(pid: u32, soft: &str) {
    let (ok, out, err) = common::run(
        std::process::Command::new("prlimit")
            .arg("--pid")
            .arg(pid.to_string())
            .arg(format!("--nofile={soft}:")),
    );
    assert!(ok, "prlimit --nofile={soft}: {out}{err}");
}

/// An observation that fails is not a state (issue 10: ~21,000 idle
/// connections exhausted the server's file descriptors, observe read the
/// failed open as "the instance stopped" and the reconciler deleted the
/// container). The real server's open-file limit is lowered under its
/// running instance so that every open fails with EMFILE while reconciles
/// run; the instance stays running with the same init, its container and
/// its recorded state untouched, and all is as before once the limit is
/// back.
#[tokio::test]
async fn failed_observation_changes_no_state_and_is_retried() {
    let (s, t) = setup().await;
    let id = run_one(
        &s,
        &t,
        json!({"image_id": "busybox", "instance_type": "t2.nano"}),
    )
    .await;
    let before = wait(&s, &t, &id, "running").await;
    let init_path = s
        .data_dir()
        .join(format!("compute/run/instances/{id}/init"));
    let runc_state = s.data_dir().join(format!("compute/run/runc/{id}"));
    let init_before = std::fs::read_to_string(&init_path).expect("init record");
    let pid = s.pid().expect("server pid");
    let soft = nofile_soft(pid);

    // One connection opened before the fault: the server cannot accept
    // new ones while it has no descriptors to spare.
    let http = s.http();
    let url = format!("{}/nuage/v1/instances/{id}", s.url());
    let get = || {
        http.get(&url)
            .header("x-auth-token", &t)
            .timeout(Duration::from_secs(2))
            .send()
    };
    assert_eq!(get().await.expect("GET").status(), 200);

    let log_len = s.logs().len();
    set_nofile_soft(pid, "0");
    // Every GET asks for a fresh observation (Compute::refresh); the
    // periodic resync (30 s) asks too. Wait until a reconcile of the
    // instance has failed on the fault, and a little longer (retries).
    let deadline = Instant::now() + Duration::from_secs(45);
    let failures = loop {
        let _ = get().await;
        let logs = s.logs();
        let failures = logs[log_len.min(logs.len())..]
            .lines()
            .filter(|l| l.contains("reconcile failed") && l.contains(&id))
            .count();
        if failures >= 2 || Instant::now() > deadline {
            break failures;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let during = std::fs::read_to_string(&init_path);
    set_nofile_soft(pid, &soft);
    assert!(
        failures >= 1,
        "no reconcile of {id} failed while the server could not open files:\n{}",
        s.logs()
    );
    let logs = s.logs();
    assert!(
        logs[log_len..].contains("Too many open files"),
        "the failures were not the EMFILE fault:\n{logs}"
    );
    assert_eq!(during.ok().as_deref(), Some(init_before.as_str()));

    // After the fault: retried, and nothing changed. Give the reconciler
    // a few passes (a GET each) to act on any wrong record.
    for _ in 0..10 {
        let (st, v) = call(&s, &t, "GET", &format!("/nuage/v1/instances/{id}"), None).await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["state"], "running", "{v}\n{}", s.logs());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, after) = call(&s, &t, "GET", &format!("/nuage/v1/instances/{id}"), None).await;
    assert_eq!(after["state"], "running");
    assert_eq!(after["state_reason"], before["state_reason"], "{after}");
    assert_eq!(
        std::fs::read_to_string(&init_path).expect("init record after"),
        init_before,
        "the init was restarted"
    );
    let init_pid = init_before.split_whitespace().next().expect("pid");
    assert!(
        Path::new(&format!("/proc/{init_pid}")).exists(),
        "the init {init_pid} no longer runs"
    );
    assert!(runc_state.exists(), "the container was deleted");
    // And the instance still answers to its actions.
    let (st, v) = act(&s, &t, "terminate", &[&id]).await;
    assert_eq!(st, 200, "{v}");
    wait(&s, &t, &id, "terminated").await;
    assert_node_clean(&s, &BTreeSet::new());
}

/// The instance's memory limit as its cgroup says (v1 or v2), in bytes.
fn cgroup_memory_limit(s: &Server, id: &str) -> u64 {
    let parent = common::cgroup_parent(&s.data_dir());
    for f in [
        format!("/sys/fs/cgroup/memory/{parent}/{id}/memory.limit_in_bytes"),
        format!("/sys/fs/cgroup/{parent}/{id}/memory.max"),
    ] {
        if let Ok(v) = std::fs::read_to_string(&f) {
            return v.trim().parse().expect("a memory limit");
        }
    }
    panic!("no memory cgroup for {id}");
}

/// Polls the instance until its node applied its spec generation.
async fn wait_applied(s: &Server, t: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (st, v) = call(s, t, "GET", &format!("/nuage/v1/instances/{id}"), None).await;
        assert_eq!(st, 200, "{v}");
        if v["observed_generation"] == v["generation"] {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "observed_generation never caught up: {v}\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Desired state is in the store and the reconciler re-applies a changed
/// spec: resizing a running instance bumps its generation, the container
/// takes the new memory limit in place (same init, no restart) and
/// observed_generation catches up; a stopped one starts with the new size.
/// A resize that cannot be done changes nothing.
#[tokio::test]
async fn resize_is_reapplied_in_place_and_observed_generation_catches_up() {
    let (s, t) = setup().await;
    let id = run_one(
        &s,
        &t,
        json!({"image_id": "busybox", "instance_type": "t2.nano"}),
    )
    .await;
    wait(&s, &t, &id, "running").await;
    let v = wait_applied(&s, &t, &id).await;
    assert_eq!(v["generation"], 1, "{v}");
    assert_eq!(cgroup_memory_limit(&s, &id), 512 << 20);
    let init_path = s
        .data_dir()
        .join(format!("compute/run/instances/{id}/init"));
    let init = std::fs::read_to_string(&init_path).expect("init");

    // Refused: unknown type, unknown field; nothing changes.
    let path = format!("/nuage/v1/instances/{id}");
    for (body, status) in [
        (json!({"instance_type": "no.such"}), 400),
        (json!({"instance_type": "t2.micro", "extra": 1}), 400),
    ] {
        let (st, v) = call(&s, &t, "PATCH", &path, Some(body.clone())).await;
        assert_eq!(st, status, "{body}: {v}");
    }
    let (_, v) = call(&s, &t, "GET", &path, None).await;
    assert_eq!(
        (v["instance_type"].clone(), v["generation"].clone()),
        (json!("t2.nano"), json!(1))
    );

    let (st, v) = call(
        &s,
        &t,
        "PATCH",
        &path,
        Some(json!({"instance_type": "t2.micro"})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["instance_type"], "t2.micro");
    assert_eq!(v["memory_mib"], 1024);
    assert_eq!(v["generation"], 2, "{v}");
    let v = wait_applied(&s, &t, &id).await;
    assert_eq!(v["state"], "running");
    assert_eq!(cgroup_memory_limit(&s, &id), 1 << 30, "{}", s.logs());
    assert_eq!(
        std::fs::read_to_string(&init_path).expect("init"),
        init,
        "a resize in place must not restart the instance"
    );

    // Stopped: the next start uses the new size.
    act(&s, &t, "stop", &[&id]).await;
    wait(&s, &t, &id, "stopped").await;
    let (st, v) = call(
        &s,
        &t,
        "PATCH",
        &path,
        Some(json!({"instance_type": "t2.nano"})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["generation"], 3);
    act(&s, &t, "start", &[&id]).await;
    wait(&s, &t, &id, "running").await;
    let v = wait_applied(&s, &t, &id).await;
    assert_eq!(v["generation"], 3);
    assert_eq!(cgroup_memory_limit(&s, &id), 512 << 20);

    // Terminated: no resize.
    act(&s, &t, "terminate", &[&id]).await;
    wait(&s, &t, &id, "terminated").await;
    let (st, v) = call(
        &s,
        &t,
        "PATCH",
        &path,
        Some(json!({"instance_type": "t2.micro"})),
    )
    .await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(v["error"]["code"], "conflict", "{v}");
}

/// A root filesystem whose init ignores SIGTERM (PID 1 of a namespace
/// without a handler): its stops take the whole grace period unless forced.
fn stubborn_tarball(s: &Server) -> std::path::PathBuf {
    let busybox = build_tarball(s);
    let root = s.dir.path().join("stubborn-root");
    std::fs::create_dir_all(&root).expect("mkdir");
    let (ok, _, err) = common::run(
        std::process::Command::new("tar")
            .arg("-xzf")
            .arg(&busybox)
            .arg("-C")
            .arg(&root),
    );
    assert!(ok, "untar: {err}");
    // The launch command of an imported root filesystem that has one.
    let init = root.join("sbin/nuage-init");
    let _ = std::fs::remove_file(&init);
    std::fs::write(
        &init,
        "#!/bin/sh\necho stubborn-up\nwhile :; do sleep 1; done\n",
    )
    .expect("init");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&init, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let out = s.dir.path().join("stubborn.tar.gz");
    let (ok, _, err) = common::run(
        std::process::Command::new("tar")
            .arg("-czf")
            .arg(&out)
            .arg("-C")
            .arg(&root)
            .arg("."),
    );
    assert!(ok, "tar: {err}");
    out
}

/// A forced stop is desired state, in the store: issued while a plain
/// stop waits out the grace period of an init that ignores SIGTERM, it
/// survives a kill -9 of the server before the reconcile, and the
/// restarted server stops the instance at once instead of waiting the
/// grace period (10 s) again.
#[tokio::test]
async fn forced_stop_survives_a_restart_before_the_reconcile() {
    let (mut s, t) = setup().await;
    let tarball = stubborn_tarball(&s);
    let (ok, out, err) = common::run(
        s.client(nuage_bin())
            .args(["image", "import"])
            .arg(&tarball)
            .args(["--name", "stubborn"]),
    );
    assert!(ok, "import: {out}{err}");
    let id = run_one(
        &s,
        &t,
        json!({"image_id": "stubborn", "instance_type": "t2.nano"}),
    )
    .await;
    wait(&s, &t, &id, "running").await;
    console_until(&s, &t, &id, "stubborn-up").await;
    let (st, v) = act(&s, &t, "stop", &[&id]).await;
    assert_eq!(st, 200, "{v}");
    // The reconciler now waits out the grace period; force the stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (st, v) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/instances/stop",
        Some(json!({"instance_ids": [id], "force": true})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    s.kill9();
    s.spawn();
    let t = s.admin_token().await;
    let restarted = Instant::now();
    let v = wait(&s, &t, &id, "stopped").await;
    let took = restarted.elapsed();
    assert!(
        took < Duration::from_secs(6),
        "the restarted server took {took:?} to stop {id}: the forced stop was lost\n{v}"
    );
    act(&s, &t, "terminate", &[&id]).await;
    wait(&s, &t, &id, "terminated").await;
}

/// Launches the same request with the same client token from 20 callers
/// at once; one launch happens and every caller gets its instances.
async fn same_token_from_twenty_callers(s: &Server) {
    build_busybox(s);
    let t = s.admin_token().await;
    let body = json!({"image_id": "busybox", "instance_type": "t2.nano", "min_count": 2,
                      "client_token": "retry-7"});
    let answers = futures_util::future::join_all(
        (0..20).map(|_| call(s, &t, "POST", "/nuage/v1/instances", Some(body.clone()))),
    )
    .await;
    let mut sets = BTreeSet::new();
    for (st, v) in &answers {
        assert_eq!(*st, 201, "{v}");
        let ids = ids_of(v);
        assert_eq!(ids.len(), 2, "{v}");
        sets.insert((v["reservation_id"].as_str().unwrap_or("").to_string(), ids));
    }
    assert_eq!(sets.len(), 1, "different answers: {sets:?}");
    let (_, all) = call(s, &t, "GET", "/nuage/v1/instances", None).await;
    assert_eq!(
        all["items"].as_array().map(Vec::len),
        Some(2),
        "one launch only: {all}"
    );
}

#[tokio::test]
async fn client_token_holds_under_concurrent_retries() {
    let s = Server::start_with(common::Options {
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "fake".into())],
        ..common::Options::default()
    });
    same_token_from_twenty_callers(&s).await;
}

#[tokio::test]
async fn client_token_holds_under_concurrent_retries_on_postgres() {
    let url = nuage_store::testing::fresh_postgres_url()
        .await
        .expect("a fresh PostgreSQL database");
    let s = Server::start_with(common::Options {
        database: Some(url),
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "fake".into())],
        ..common::Options::default()
    });
    same_token_from_twenty_callers(&s).await;
}
