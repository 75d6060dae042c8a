//! The OpenStack Image (Glance v2) door (issue 13, first part), driven by
//! the real `openstack` CLI (python3-openstackclient) and by raw HTTP for
//! what a client would not send. The images are the ones EC2 and the
//! native API see.

mod common;

use common::{glance, osc, osc_ok, rootfs_tar, start_without_compute as start_plain, Aws};
use serde_json::{json, Value};

fn names(list: &Value) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| x["Name"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn openstack_cli_creates_uploads_lists_downloads_and_deletes_images() {
    let s = start_plain();
    let work = tempfile::tempdir().expect("tempdir");
    let tar = rootfs_tar(work.path());
    let bytes = std::fs::read(&tar).expect("tar bytes");

    let made = osc_ok(
        &s,
        &[
            "image",
            "create",
            "--file",
            tar.to_str().expect("path"),
            "--disk-format",
            "raw",
            "--container-format",
            "bare",
            "--property",
            "os_distro=busybox",
            "bb-glance",
        ],
    );
    let id = made["id"].as_str().expect("id").to_string();
    let shown = osc_ok(&s, &["image", "show", &id]);
    assert_eq!(shown["status"], "active", "{shown}");
    assert_eq!(shown["size"], json!(bytes.len()), "{shown}");
    assert_eq!(shown["disk_format"], "raw", "{shown}");
    let props = shown["properties"].to_string();
    assert!(props.contains("busybox"), "{shown}");
    let by_name = osc_ok(&s, &["image", "show", "bb-glance"]);
    assert_eq!(by_name["id"], id.as_str(), "{by_name}");

    // Listed, filtered; EC2 sees the same image.
    assert!(names(&osc_ok(&s, &["image", "list"])).contains(&"bb-glance".to_string()));
    assert_eq!(
        names(&osc_ok(
            &s,
            &["image", "list", "--property", "os_distro=busybox"]
        )),
        ["bb-glance"]
    );
    let aws = Aws {
        srv: &s,
        bin: "aws",
        cwd: work.path(),
    };
    let ec2 = aws.json(&["ec2", "describe-images", "--image-ids", &id]);
    assert_eq!(ec2["Images"][0]["Name"], "bb-glance", "{ec2}");

    // Downloaded byte for byte.
    let out = work.path().join("back.tar");
    osc(
        &s,
        &[],
        &["image", "save", "--file", out.to_str().expect("path"), &id],
        false,
    )
    .expect("image save");
    assert_eq!(std::fs::read(&out).expect("saved"), bytes);

    // Updated with JSON patch through the CLI.
    osc(
        &s,
        &[],
        &[
            "image",
            "set",
            "--name",
            "bb-renamed",
            "--property",
            "owner_note=kept",
            &id,
        ],
        false,
    )
    .expect("image set");
    let shown = osc_ok(&s, &["image", "show", &id]);
    assert_eq!(shown["name"], "bb-renamed", "{shown}");
    assert!(shown["properties"].to_string().contains("kept"), "{shown}");

    // Shared with another project: it sees the image; then not.
    let (other, _) = common::project_with_member(&s, "glanceother", "glance-pass-1").await;
    osc_ok(&s, &["image", "add", "project", &id, &other]);
    let member = [
        ("OS_USERNAME", "glanceother-user"),
        ("OS_PASSWORD", "glance-pass-1"),
        ("OS_PROJECT_NAME", "glanceother"),
    ];
    let theirs = osc(&s, &member, &["image", "show", &id], true).expect("member sees the image");
    assert_eq!(theirs["name"], "bb-renamed", "{theirs}");
    let err = osc(&s, &member, &["image", "delete", &id], false).expect_err("not theirs to delete");
    assert!(
        err.contains("403") || err.to_lowercase().contains("forbidden") || err.contains("Failed"),
        "{err}"
    );
    osc(&s, &[], &["image", "remove", "project", &id, &other], false).expect("remove project");
    assert!(osc(&s, &member, &["image", "show", &id], true).is_err());

    osc(&s, &[], &["image", "delete", &id], false).expect("image delete");
    assert!(osc(&s, &[], &["image", "show", &id], true).is_err());
    let ec2 = aws.json(&["ec2", "describe-images", "--owners", "self"]);
    assert!(!ec2.to_string().contains(&id), "{ec2}");
}

/// (authenticated, method, path, content type, body, status).
type Case<'a> = (
    bool,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    u16,
);

#[tokio::test(flavor = "multi_thread")]
async fn versions_and_faults_change_nothing() {
    let s = start_plain();
    let admin = s.admin_token().await;
    let (st, v) = glance(&s, None, "GET", "/", None, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["versions"][0]["status"], "CURRENT", "{v}");

    let cases: &[Case] = &[
        (false, "GET", "/v2/images", None, None, 401),
        (
            true,
            "GET",
            "/v2/images/ami-0000000000000000",
            None,
            None,
            404,
        ),
        (
            true,
            "POST",
            "/v2/images",
            Some("application/json"),
            Some("{not json"),
            400,
        ),
        (
            true,
            "POST",
            "/v2/images",
            Some("application/json"),
            Some(r#"{"name": "q", "disk_format": "vhd"}"#),
            400,
        ),
        (
            true,
            "POST",
            "/v2/images",
            Some("application/json"),
            Some(r#"{"name": "q", "container_format": "ovf"}"#),
            400,
        ),
        (
            true,
            "POST",
            "/v2/images",
            Some("application/json"),
            Some(r#"{"name": "q", "visibility": "sideways"}"#),
            400,
        ),
        (
            true,
            "POST",
            "/v2/images",
            Some("application/json"),
            Some(r#"{"name": "q", "status": "active"}"#),
            403,
        ),
        (true, "GET", "/v2/images?limit=many", None, None, 400),
        (true, "GET", "/v2/images?sort_key=colour", None, None, 400),
        (
            true,
            "POST",
            "/v2/images/x/import",
            Some("application/json"),
            Some("{}"),
            404,
        ),
        (true, "PUT", "/v2/images/x/tags/t", None, None, 404),
        (true, "GET", "/v2/tasks", None, None, 501),
        (true, "GET", "/v2/rockets", None, None, 404),
        (true, "PUT", "/v2/images", None, None, 405),
    ];
    for (auth, method, path, ct, body, status) in cases {
        let tok = auth.then_some(admin.as_str());
        let (st, v) = glance(&s, tok, method, path, *ct, *body).await;
        assert_eq!(st, *status, "{method} {path}: {v}");
        assert!(
            v["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{method} {path}: {v}"
        );
        assert!(
            v["code"]
                .as_str()
                .is_some_and(|c| c.starts_with(&status.to_string())),
            "{v}"
        );
    }
    let (_, list) = glance(&s, Some(&admin), "GET", "/v2/images?name=q", None, None).await;
    assert_eq!(list["images"], json!([]), "{list}");

    // A patch needs Glance's media type; a bad one changes nothing.
    let (st, made) = glance(
        &s,
        Some(&admin),
        "POST",
        "/v2/images",
        Some("application/json"),
        Some(r#"{"name": "p1"}"#),
    )
    .await;
    assert_eq!(st, 201, "{made}");
    assert_eq!(made["status"], "queued", "{made}");
    let id = made["id"].as_str().expect("id");
    let patch = r#"[{"op": "replace", "path": "/name", "value": "p2"}]"#;
    let (st, v) = glance(
        &s,
        Some(&admin),
        "PATCH",
        &format!("/v2/images/{id}"),
        Some("application/json"),
        Some(patch),
    )
    .await;
    assert_eq!(st, 415, "{v}");
    let bad = r#"[{"op": "replace", "path": "/name", "value": "p2"}, {"op": "replace", "path": "/id", "value": "x"}]"#;
    let (st, v) = glance(
        &s,
        Some(&admin),
        "PATCH",
        &format!("/v2/images/{id}"),
        Some("application/openstack-images-v2.1-json-patch"),
        Some(bad),
    )
    .await;
    assert_eq!(st, 403, "{v}");
    let (_, shown) = glance(
        &s,
        Some(&admin),
        "GET",
        &format!("/v2/images/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(shown["name"], "p1", "{shown}");
    let (st, v) = glance(
        &s,
        Some(&admin),
        "PATCH",
        &format!("/v2/images/{id}"),
        Some("application/openstack-images-v2.1-json-patch"),
        Some(patch),
    )
    .await;
    assert_eq!((st, v["name"].clone()), (200, json!("p2")), "{v}");
    // A queued image has no data to download.
    let (st, _) = glance(
        &s,
        Some(&admin),
        "GET",
        &format!("/v2/images/{id}/file"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 204);
}
