//! The Nova servers API (issue 13, ADR 31) end to end: a real `nuage
//! serve` with the container driver (runc), driven by the real `openstack`
//! CLI (python3-openstackclient) as a user would, read back through
//! `aws ec2 describe-instances` (one state, two doors), and by raw HTTP for
//! microversion-dependent shapes and for the faults, each checked to change
//! nothing. Needs root, runc, busybox-static, the openstack and aws CLIs.

mod common;

use std::time::{Duration, Instant};

use common::{build_busybox, osc, osc_ok, project_with_member, Cli, Server};
use serde_json::{json, Value};

fn osc_text(s: &Server, args: &[&str]) -> String {
    match osc(s, &[], args, false) {
        Ok(Value::String(t)) => t,
        Ok(other) => other.to_string(),
        Err(e) => panic!("openstack {}: {e}\n{}", args.join(" "), s.logs()),
    }
}

/// A raw Compute API request: (status, headers, JSON body or Null).
async fn nova(
    s: &Server,
    token: &str,
    method: &str,
    path: &str,
    version: Option<&str>,
    body: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = s
        .http()
        .request(m, format!("{}/compute/v2.1{path}", s.url()))
        .header("x-auth-token", token)
        .timeout(Duration::from_secs(60));
    if let Some(v) = version {
        rb = rb.header("openstack-api-version", format!("compute {v}"));
    }
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap_or_default();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// Polls `server show` until its status is `want` (60 s at most).
fn wait_status(s: &Server, id: &str, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = osc_ok(s, &["server", "show", id]);
        if v["status"] == want {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never {want}: {v}\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Every server of the admin's project, as the detail listing shows them:
/// a fault must leave this unchanged.
async fn snapshot(s: &Server, t: &str) -> Vec<Value> {
    let (st, _, v) = nova(s, t, "GET", "/servers/detail", Some("2.79"), None).await;
    assert_eq!(st, 200, "{v}");
    let mut all = v["servers"].as_array().cloned().unwrap_or_default();
    for one in &mut all {
        // What moves on its own: the controller's observations.
        for k in ["updated", "OS-EXT-STS:task_state", "progress"] {
            one[k] = Value::Null;
        }
    }
    all
}

fn fault(v: &Value, name: &str, status: u16) -> String {
    assert_eq!(v[name]["code"], status, "{v}");
    v[name]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} message in {v}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn openstack_cli_drives_servers_and_ec2_sees_them() {
    let s = Server::start();
    let work = tempfile::tempdir().expect("tempdir");
    let aws = Cli {
        s: &s,
        bin: "aws",
        cwd: work.path(),
        creds: None,
    };
    // The built-in busybox image: its init runs the user data.
    build_busybox(&s);
    let image = osc_ok(&s, &["image", "show", "busybox"]);
    let image_id = image["id"].as_str().expect("image id").to_string();
    osc_text(&s, &["keypair", "create", "k1"]);
    aws.json(&[
        "ec2",
        "create-security-group",
        "--group-name",
        "web",
        "--description",
        "web servers",
    ]);
    let ud = work.path().join("user-data.sh");
    std::fs::write(
        &ud,
        "#!/bin/sh\necho nova-boot $(hostname)\nwhile true; do sleep 1; done\n",
    )
    .expect("user data");

    // Two servers, waited for.
    let mut ids = Vec::new();
    for name in ["web-1", "web-2"] {
        let made = osc_ok(
            &s,
            &[
                "server",
                "create",
                "--wait",
                "--flavor",
                "t2.nano",
                "--image",
                "busybox",
                "--key-name",
                "k1",
                "--security-group",
                "web",
                "--user-data",
                ud.to_str().expect("path"),
                "--property",
                "role=frontend",
                name,
            ],
        );
        assert_eq!(made["status"], "ACTIVE", "{made}");
        assert_eq!(made["name"], name, "{made}");
        ids.push(made["id"].as_str().expect("id").to_string());
    }
    let (a, b) = (ids[0].clone(), ids[1].clone());

    let list = osc_ok(&s, &["server", "list"]);
    let names: Vec<&str> = list
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|x| x["Name"].as_str())
        .collect();
    assert_eq!(names, ["web-2", "web-1"], "newest first: {list}");
    let long = osc_ok(&s, &["server", "list", "--long", "--name", "^web-1$"]);
    assert_eq!(long.as_array().map(Vec::len), Some(1), "{long}");
    assert_eq!(long[0]["ID"], a.as_str(), "{long}");
    assert_eq!(long[0]["Power State"], 1, "{long}");
    assert_eq!(long[0]["Availability Zone"], "nuage-1a", "{long}");

    let shown = osc_ok(&s, &["server", "show", &a]);
    assert_eq!(shown["key_name"], "k1", "{shown}");
    assert_eq!(shown["OS-EXT-STS:vm_state"], "active", "{shown}");
    let shown_text = shown.to_string();
    assert!(shown_text.contains("role"), "{shown}");
    assert!(shown_text.contains("web"), "security group: {shown}");

    // The same instance through EC2: name tag, address and groups.
    let d = aws.json(&["ec2", "describe-instances", "--instance-ids", &a]);
    let inst = &d["Reservations"][0]["Instances"][0];
    let tags = inst["Tags"].as_array().cloned().unwrap_or_default();
    assert!(
        tags.contains(&json!({"Key": "Name", "Value": "web-1"})),
        "{inst}"
    );
    assert!(
        tags.contains(&json!({"Key": "role", "Value": "frontend"})),
        "{inst}"
    );
    let ip = inst["PrivateIpAddress"].as_str().expect("private ip");
    let admin = s.admin_token().await;
    let (_, _, raw) = nova(&s, &admin, "GET", &format!("/servers/{a}"), None, None).await;
    let addrs = raw["server"]["addresses"].to_string();
    assert!(addrs.contains(ip), "{ip} not in {addrs}");
    assert!(addrs.contains("\"fixed\""), "{addrs}");
    let groups: Vec<&str> = inst["SecurityGroups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["GroupName"].as_str())
        .collect();
    assert_eq!(groups, ["web"], "{inst}");

    // Name and metadata: set, unset, seen by EC2.
    osc_text(
        &s,
        &[
            "server",
            "set",
            "--name",
            "front-1",
            "--property",
            "tier=a",
            &a,
        ],
    );
    osc_text(&s, &["server", "unset", "--property", "role", &a]);
    let shown = osc_ok(&s, &["server", "show", &a]);
    assert_eq!(shown["name"], "front-1", "{shown}");
    let props = shown["properties"].to_string();
    assert!(props.contains("tier") && !props.contains("role"), "{shown}");
    let d = aws.json(&["ec2", "describe-instances", "--instance-ids", &a]);
    let tags = d["Reservations"][0]["Instances"][0]["Tags"].clone();
    assert!(
        tags.as_array()
            .is_some_and(|t| t.contains(&json!({"Key": "Name", "Value": "front-1"}))
                && !t.iter().any(|x| x["Key"] == "role")),
        "{tags}"
    );

    // The console shows the user data ran.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = osc_text(&s, &["console", "log", "show", &a]);
        if log.contains("nova-boot") {
            break;
        }
        assert!(Instant::now() < deadline, "console: {log}\n{}", s.logs());
        std::thread::sleep(Duration::from_millis(300));
    }

    // Stop, start, reboot.
    osc_text(&s, &["server", "stop", &b]);
    wait_status(&s, &b, "SHUTOFF");
    let (st, _, v) = nova(
        &s,
        &admin,
        "POST",
        &format!("/servers/{b}/action"),
        None,
        Some(r#"{"os-stop": null}"#),
    )
    .await;
    assert_eq!(st, 409, "{v}");
    assert_eq!(
        fault(&v, "conflictingRequest", 409),
        format!("Cannot 'stop' instance {b} while it is in vm_state stopped")
    );
    osc_text(&s, &["server", "start", &b]);
    wait_status(&s, &b, "ACTIVE");
    osc_text(&s, &["server", "reboot", "--wait", &b]);
    wait_status(&s, &b, "ACTIVE");

    // Security groups added and removed on a running server.
    osc_text(&s, &["server", "add", "security", "group", &b, "default"]);
    let d = aws.json(&["ec2", "describe-instances", "--instance-ids", &b]);
    let mut groups: Vec<String> = d["Reservations"][0]["Instances"][0]["SecurityGroups"]
        .as_array()
        .expect("groups")
        .iter()
        .filter_map(|g| g["GroupName"].as_str().map(String::from))
        .collect();
    groups.sort();
    assert_eq!(groups, ["default", "web"], "{d}");
    osc_text(&s, &["server", "remove", "security", "group", &b, "web"]);
    let shown = osc_ok(&s, &["server", "show", &b]);
    let sg = shown["security_groups"].to_string();
    assert!(sg.contains("default") && !sg.contains("web"), "{shown}");

    // An image of a running server, and a server booted from it.
    osc_text(
        &s,
        &[
            "server", "image", "create", "--wait", "--name", "snap-1", &a,
        ],
    );
    let snap = osc_ok(&s, &["image", "show", "snap-1"]);
    assert_eq!(snap["status"], "active", "{snap}");
    let c = osc_ok(
        &s,
        &[
            "server",
            "create",
            "--wait",
            "--flavor",
            "t2.nano",
            "--image",
            "snap-1",
            "from-snap",
        ],
    );
    assert_eq!(c["status"], "ACTIVE", "{c}");
    let c_id = c["id"].as_str().expect("id").to_string();

    // Faults over HTTP, each changing nothing.
    let before = snapshot(&s, &admin).await;
    let create = |body: Value| body.to_string();
    let bad_creates: Vec<(String, u16, &str, &str)> = vec![
        (
            "{\"server\": ".to_string(),
            400,
            "badRequest",
            "Invalid input",
        ),
        (
            create(json!({"server": {"name": 7, "flavorRef": "t2.nano", "imageRef": image_id}})),
            400,
            "badRequest",
            "Invalid input",
        ),
        (
            create(
                json!({"server": {"name": "x", "flavorRef": "t2.nano", "imageRef": image_id, "rocket": true}}),
            ),
            400,
            "badRequest",
            "unknown field",
        ),
        (
            create(json!({"server": {"name": "x", "flavorRef": "m9.huge", "imageRef": image_id}})),
            400,
            "badRequest",
            "Flavor m9.huge could not be found.",
        ),
        (
            create(
                json!({"server": {"name": "x", "flavorRef": "t2.nano", "imageRef": "ami-00000000000000000"}}),
            ),
            400,
            "badRequest",
            "Image ami-00000000000000000 could not be found.",
        ),
        (
            create(
                json!({"server": {"name": "x", "flavorRef": "t2.nano", "imageRef": image_id,
                "networks": [{"uuid": "net-nope"}]}}),
            ),
            400,
            "badRequest",
            "Network net-nope could not be found.",
        ),
        (
            create(
                json!({"server": {"name": "x", "flavorRef": "t2.nano", "imageRef": image_id,
                "networks": "none"}}),
            ),
            400,
            "badRequest",
            "networks 'none'",
        ),
        (
            create(
                json!({"server": {"name": "x", "flavorRef": "t2.nano", "imageRef": image_id,
                "key_name": "nokey"}}),
            ),
            400,
            "badRequest",
            "Invalid key_name provided.",
        ),
        (
            create(
                json!({"server": {"name": "x", "flavorRef": "t2.nano", "imageRef": image_id,
                "security_groups": [{"name": "nosuch"}]}}),
            ),
            400,
            "badRequest",
            "Security group nosuch not found",
        ),
        (
            create(
                json!({"server": {"name": "x", "flavorRef": "t2.nano", "imageRef": image_id,
                "min_count": 1000, "max_count": 1000}}),
            ),
            403,
            "forbidden",
            "quota exceeded",
        ),
    ];
    for (body, status, name, words) in &bad_creates {
        let (st, _, v) = nova(&s, &admin, "POST", "/servers", None, Some(body)).await;
        assert_eq!(st, *status, "{body}: {v}");
        let msg = fault(&v, name, *status);
        assert!(msg.contains(words), "{body}: {msg}");
    }
    let (st, _, v) = nova(
        &s,
        &admin,
        "GET",
        "/servers/i-0123456789abcdef0",
        None,
        None,
    )
    .await;
    assert_eq!(st, 404, "{v}");
    assert_eq!(
        fault(&v, "itemNotFound", 404),
        "Instance i-0123456789abcdef0 could not be found."
    );
    // Another project's server is not found, and stays as it was.
    project_with_member(&s, "other", "pw-other").await;
    let other = s.token_for("other-user", "pw-other", Some("other")).await;
    for (m, path, body) in [
        ("GET", format!("/servers/{a}"), None),
        ("DELETE", format!("/servers/{a}"), None),
        (
            "PUT",
            format!("/servers/{a}"),
            Some(r#"{"server": {"name": "mine"}}"#),
        ),
        (
            "POST",
            format!("/servers/{a}/action"),
            Some(r#"{"os-stop": null}"#),
        ),
    ] {
        let (st, _, v) = nova(&s, &other, m, &path, None, body).await;
        assert_eq!(st, 404, "{m} {path}: {v}");
    }
    let (_, _, v) = nova(&s, &other, "GET", "/servers", None, None).await;
    assert_eq!(v["servers"], json!([]), "{v}");
    let conflicts = [
        (r#"{"os-start": null}"#, "start"),
        (r#"{"confirmResize": null}"#, "confirmResize"),
    ];
    for (body, action) in conflicts {
        let (st, _, v) = nova(
            &s,
            &admin,
            "POST",
            &format!("/servers/{a}/action"),
            None,
            Some(body),
        )
        .await;
        assert_eq!(st, 409, "{v}");
        assert_eq!(
            fault(&v, "conflictingRequest", 409),
            format!("Cannot '{action}' instance {a} while it is in vm_state active")
        );
    }
    let (st, _, v) = nova(
        &s,
        &admin,
        "POST",
        &format!("/servers/{a}/action"),
        None,
        Some(r#"{"rebuild": {"imageRef": "x"}}"#),
    )
    .await;
    assert_eq!(st, 501, "{v}");
    fault(&v, "notImplemented", 501);
    let (st, _, v) = nova(
        &s,
        &admin,
        "PUT",
        &format!("/servers/{a}/metadata"),
        None,
        Some(r#"{"metadata": {"Name": "sneaky"}}"#),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        snapshot(&s, &admin).await,
        before,
        "a fault changed something"
    );

    // Microversion shapes, tags and metadata, paging.
    let (_, _, old) = nova(
        &s,
        &admin,
        "GET",
        &format!("/servers/{a}"),
        Some("2.1"),
        None,
    )
    .await;
    assert_eq!(old["server"]["flavor"]["id"], "t2.nano", "{old}");
    assert!(old["server"].get("tags").is_none(), "{old}");
    assert!(old["server"].get("locked").is_none(), "{old}");
    assert!(old["server"]["OS-EXT-SRV-ATTR:host"].is_string(), "{old}");
    let (st, _, v) = nova(
        &s,
        &admin,
        "PUT",
        &format!("/servers/{a}/tags/blue"),
        Some("2.26"),
        None,
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let (st, _, v) = nova(
        &s,
        &admin,
        "PUT",
        &format!("/servers/{a}"),
        Some("2.19"),
        Some(r#"{"server": {"description": "the front"}}"#),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["server"]["description"], "the front", "{v}");
    let (_, _, new) = nova(
        &s,
        &admin,
        "GET",
        &format!("/servers/{a}"),
        Some("2.79"),
        None,
    )
    .await;
    let srv = &new["server"];
    assert_eq!(srv["flavor"]["original_name"], "t2.nano", "{new}");
    assert_eq!(srv["tags"], json!(["blue"]), "{new}");
    assert_eq!(srv["locked"], false, "{new}");
    assert_eq!(srv["description"], "the front", "{new}");
    assert_eq!(
        srv["metadata"],
        json!({"tier": "a"}),
        "tags stay out of metadata: {new}"
    );
    let (_, _, v) = nova(&s, &admin, "GET", "/servers?tags=blue", Some("2.26"), None).await;
    assert_eq!(v["servers"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["servers"][0]["id"], a.as_str(), "{v}");
    let (st, _, v) = nova(
        &s,
        &admin,
        "PUT",
        &format!("/servers/{a}/metadata/colour"),
        None,
        Some(r#"{"meta": {"colour": "red"}}"#),
    )
    .await;
    assert_eq!((st, v), (200, json!({"meta": {"colour": "red"}})));
    let (_, _, v) = nova(
        &s,
        &admin,
        "GET",
        &format!("/servers/{a}/metadata"),
        None,
        None,
    )
    .await;
    assert_eq!(v, json!({"metadata": {"colour": "red", "tier": "a"}}));
    // Paging: three servers, one a page, newest first.
    let (_, _, p1) = nova(&s, &admin, "GET", "/servers?limit=2", None, None).await;
    let page: Vec<&str> = p1["servers"]
        .as_array()
        .expect("page")
        .iter()
        .filter_map(|x| x["id"].as_str())
        .collect();
    assert_eq!(page, [c_id.as_str(), b.as_str()], "{p1}");
    let next = p1["servers_links"][0]["href"].as_str().expect("next link");
    let rest = next.split("/compute/v2.1").nth(1).expect("path");
    let (_, _, p2) = nova(&s, &admin, "GET", rest, None, None).await;
    assert_eq!(p2["servers"][0]["id"], a.as_str(), "{p2}");
    assert_eq!(p2["servers"].as_array().map(Vec::len), Some(1), "{p2}");
    let (st, _, v) = nova(&s, &admin, "GET", "/servers?marker=i-nope", None, None).await;
    assert_eq!(st, 400, "{v}");

    // Hypervisors and services (admins).
    let hv = osc_ok(&s, &["hypervisor", "list"]);
    assert_eq!(hv.as_array().map(Vec::len), Some(1), "{hv}");
    assert_eq!(hv[0]["State"], "up", "{hv}");
    let services = osc_ok(&s, &["compute", "service", "list"]);
    let binaries: Vec<&str> = services
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|x| x["Binary"].as_str())
        .collect();
    assert_eq!(
        binaries,
        ["nova-scheduler", "nova-conductor", "nova-compute"],
        "{services}"
    );
    let (st, _, v) = nova(&s, &other, "GET", "/os-hypervisors", None, None).await;
    assert_eq!(st, 403, "{v}");

    // Deleted, waited for, gone from both doors.
    osc_text(&s, &["server", "delete", "--wait", &a, &c_id]);
    let list = osc_ok(&s, &["server", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    let d = aws.json(&["ec2", "describe-instances", "--instance-ids", &a]);
    assert_eq!(
        d["Reservations"][0]["Instances"][0]["State"]["Name"], "terminated",
        "{d}"
    );
    osc_text(&s, &["server", "delete", "--wait", &b]);
}
