//! The OpenStack Compute (Nova) v2.1 door (issue 13, first part): version
//! discovery and microversions, flavors, key pairs, availability zones,
//! limits and quota sets, driven by the real `openstack` CLI
//! (python3-openstackclient) and by raw HTTP for what a client would not
//! send. The same key pairs and quotas are read back through EC2 and the
//! native API: one state, several doors.

mod common;

use common::{call, osc, osc_ok, start_without_compute as start_plain, Aws, Server};
use serde_json::{json, Value};

fn column(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| x[key].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A raw Compute API request: (status, headers, JSON body or Null).
async fn nova(
    s: &Server,
    token: Option<&str>,
    method: &str,
    path: &str,
    version: Option<&str>,
    body: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = s.http().request(m, format!("{}/compute{path}", s.url()));
    if let Some(t) = token {
        rb = rb.header("x-auth-token", t);
    }
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

#[tokio::test(flavor = "multi_thread")]
async fn openstack_cli_flavors_keypairs_zones_limits_and_quotas() {
    let s = start_plain();
    let work = tempfile::tempdir().expect("tempdir");

    // Flavors: the built-in types, by name.
    let flavors = osc_ok(&s, &["flavor", "list", "--all"]);
    let names = column(&flavors, "Name");
    for want in ["m1.tiny", "m1.small", "t2.nano", "t2.micro"] {
        assert!(names.iter().any(|n| n == want), "{want} missing: {names:?}");
    }
    let tiny = osc_ok(&s, &["flavor", "show", "m1.tiny"]);
    assert_eq!(
        (
            tiny["ram"].as_u64(),
            tiny["vcpus"].as_u64(),
            tiny["disk"].as_u64()
        ),
        (Some(512), Some(1), Some(1)),
        "{tiny}"
    );
    let made = osc_ok(
        &s,
        &[
            "flavor",
            "create",
            "--ram",
            "256",
            "--disk",
            "1",
            "--vcpus",
            "2",
            "nuage.test",
        ],
    );
    assert_eq!(made["id"], "nuage.test", "{made}");
    // The native API sees the same instance type.
    let admin = s.admin_token().await;
    let (st, t) = call(
        &s,
        &admin,
        "GET",
        "/nuage/v1/instance-types/nuage.test",
        None,
    )
    .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["vcpus"], 2, "{t}");
    let err = osc(
        &s,
        &[],
        &[
            "flavor",
            "create",
            "--ram",
            "256",
            "--disk",
            "1",
            "--vcpus",
            "2",
            "nuage.test",
        ],
        true,
    )
    .expect_err("duplicate flavor");
    assert!(err.contains("409") || err.contains("exists"), "{err}");
    osc(&s, &[], &["flavor", "delete", "nuage.test"], false).expect("flavor delete");
    let err = osc(&s, &[], &["flavor", "show", "nuage.test"], true).expect_err("deleted flavor");
    assert!(err.contains("nuage.test"), "{err}");

    // Key pairs: generated (private key saved by the CLI) and imported.
    let private = work.path().join("k1.pem");
    osc_ok(
        &s,
        &[
            "keypair",
            "create",
            "--private-key",
            private.to_str().expect("path"),
            "k1",
        ],
    );
    let pem = std::fs::read_to_string(&private).expect("private key written");
    assert!(pem.contains("PRIVATE KEY"), "{pem}");
    let pubkey = work.path().join("k2.pub");
    std::fs::write(
        &pubkey,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGtWuQ2VnOm9VpWwqXhcfaH7bGsJdD7o6k2IJ9FWmQ5A me@host\n",
    )
    .expect("write key");
    let k2 = osc_ok(
        &s,
        &[
            "keypair",
            "create",
            "--public-key",
            pubkey.to_str().expect("path"),
            "k2",
        ],
    );
    assert_eq!(k2["name"], "k2", "{k2}");
    let mut listed = column(&osc_ok(&s, &["keypair", "list"]), "Name");
    listed.sort();
    assert_eq!(listed, ["k1", "k2"]);
    let shown = osc_ok(&s, &["keypair", "show", "k2"]);
    assert!(
        shown["fingerprint"].as_str().is_some_and(|f| !f.is_empty()),
        "{shown}"
    );
    let err = osc(
        &s,
        &[],
        &[
            "keypair",
            "create",
            "--public-key",
            pubkey.to_str().expect("path"),
            "k2",
        ],
        true,
    )
    .expect_err("duplicate key pair");
    assert!(err.contains("already exists"), "{err}");
    // EC2 sees the same key pairs.
    let aws = Aws {
        srv: &s,
        bin: "aws",
        cwd: work.path(),
    };
    let ec2 = aws.json(&["ec2", "describe-key-pairs"]);
    let mut ec2_names: Vec<String> = ec2["KeyPairs"]
        .as_array()
        .expect("KeyPairs")
        .iter()
        .map(|k| k["KeyName"].as_str().unwrap_or_default().to_string())
        .collect();
    ec2_names.sort();
    assert_eq!(ec2_names, ["k1", "k2"]);
    osc(&s, &[], &["keypair", "delete", "k1", "k2"], false).expect("keypair delete");
    assert!(aws.json(&["ec2", "describe-key-pairs"])["KeyPairs"]
        .as_array()
        .is_none_or(Vec::is_empty));

    // Availability zones, limits and quotas.
    let zones = osc_ok(&s, &["availability", "zone", "list", "--compute"]);
    assert!(!column(&zones, "Zone Name").is_empty(), "{zones}");
    let limits = osc_ok(&s, &["limits", "show", "--absolute"]);
    let get = |l: &Value, name: &str| {
        l.as_array()
            .and_then(|a| a.iter().find(|x| x["Name"] == name))
            .map(|x| x["Value"].clone())
            .unwrap_or_else(|| panic!("{name} not in {l}"))
    };
    assert_eq!(get(&limits, "maxTotalInstances"), json!(20), "{limits}");
    assert_eq!(get(&limits, "totalInstancesUsed"), json!(0), "{limits}");
    let project = s.env()["OS_PROJECT_NAME"].clone();
    osc(
        &s,
        &[],
        &["quota", "set", "--instances", "7", "--cores", "9", &project],
        false,
    )
    .expect("quota set");
    let limits = osc_ok(&s, &["limits", "show", "--absolute"]);
    assert_eq!(get(&limits, "maxTotalInstances"), json!(7), "{limits}");
    assert_eq!(get(&limits, "maxTotalCores"), json!(9), "{limits}");
    // The native API and EC2 see the same quota.
    let tok = osc_ok(&s, &["token", "issue"]);
    let pid = tok["project_id"].as_str().expect("project_id");
    let (st, q) = call(
        &s,
        &admin,
        "GET",
        &format!("/nuage/v1/projects/{pid}/quotas"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{q}");
    assert_eq!(q["quotas"]["instances"], 7, "{q}");
}

/// (token?, method, path, microversion, body, status, fault name).
type Fault<'a> = (
    Option<&'a str>,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    u16,
    &'a str,
);

#[tokio::test(flavor = "multi_thread")]
async fn versions_microversions_and_faults() {
    let s = start_plain();
    let admin = s.admin_token().await;

    // Discovery needs no token.
    let (st, _, v) = nova(&s, None, "GET", "/", None, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["versions"][0]["id"], "v2.1", "{v}");
    let (st, _, v) = nova(&s, None, "GET", "/v2.1/", None, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["version"]["min_version"], "2.1", "{v}");
    assert_eq!(v["version"]["version"], "2.79", "{v}");

    // The version used is answered; shapes follow it.
    let (st, h, v) = nova(&s, Some(&admin), "GET", "/v2.1/flavors/m1.tiny", None, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h["openstack-api-version"], "compute 2.1");
    assert_eq!(v["flavor"]["swap"], "", "{v}");
    assert!(v["flavor"].get("description").is_none(), "{v}");
    let (st, h, v) = nova(
        &s,
        Some(&admin),
        "GET",
        "/v2.1/flavors/m1.tiny",
        Some("latest"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(h["openstack-api-version"], "compute 2.79");
    assert_eq!(v["flavor"]["swap"], 0, "{v}");
    assert_eq!(v["flavor"]["extra_specs"], json!({}), "{v}");

    let faults: &[Fault] = &[
        (
            None,
            "GET",
            "/v2.1/flavors",
            None,
            None,
            401,
            "unauthorized",
        ),
        (
            Some("t"),
            "GET",
            "/v2.1/flavors",
            Some("2.500"),
            None,
            406,
            "computeFault",
        ),
        (
            Some("t"),
            "GET",
            "/v2.1/flavors",
            Some("3.0"),
            None,
            406,
            "computeFault",
        ),
        (
            Some("t"),
            "GET",
            "/v2.1/flavors",
            Some("x.y"),
            None,
            400,
            "badRequest",
        ),
        (
            Some("t"),
            "GET",
            "/v2.1/os-aggregates",
            None,
            None,
            501,
            "notImplemented",
        ),
        (
            Some("t"),
            "GET",
            "/v2.1/rockets",
            None,
            None,
            404,
            "itemNotFound",
        ),
        (
            Some("t"),
            "PATCH",
            "/v2.1/flavors",
            None,
            None,
            405,
            "badMethod",
        ),
        (
            Some("t"),
            "GET",
            "/v2.1/flavors/nope",
            None,
            None,
            404,
            "itemNotFound",
        ),
        (
            Some("t"),
            "POST",
            "/v2.1/flavors",
            None,
            Some("{not json"),
            400,
            "badRequest",
        ),
        (
            Some("t"),
            "POST",
            "/v2.1/flavors",
            None,
            Some(r#"{"flavor": {"name": "x", "ram": "lots", "vcpus": 1, "disk": 1}}"#),
            400,
            "badRequest",
        ),
        (
            Some("t"),
            "POST",
            "/v2.1/flavors",
            None,
            Some(r#"{"flavor": {"name": "x", "ram": 64, "vcpus": 1, "disk": 1, "colour": "red"}}"#),
            400,
            "badRequest",
        ),
        (
            Some("t"),
            "POST",
            "/v2.1/flavors",
            Some("2.54"),
            Some(
                r#"{"flavor": {"name": "x", "ram": 64, "vcpus": 1, "disk": 1, "description": "d"}}"#,
            ),
            400,
            "badRequest",
        ),
        (
            Some("t"),
            "POST",
            "/v2.1/os-keypairs",
            None,
            Some(r#"{"keypair": {"name": "k", "type": "ssh"}}"#),
            400,
            "badRequest",
        ),
        (
            Some("t"),
            "PUT",
            "/v2.1/os-quota-sets/nope",
            None,
            Some(r#"{"quota_set": {"instances": 5}}"#),
            404,
            "itemNotFound",
        ),
        (
            Some("t"),
            "PUT",
            "/v2.1/os-quota-sets/x",
            None,
            Some(r#"{"quota_set": {"instances": "many"}}"#),
            400,
            "badRequest",
        ),
    ];
    for (token, method, path, version, body, status, name) in faults {
        let tok = token.map(|_| admin.as_str());
        let (st, _, v) = nova(&s, tok, method, path, *version, *body).await;
        assert_eq!(st, *status, "{method} {path} {version:?}: {v}");
        assert_eq!(v[*name]["code"], *status, "{method} {path}: {v}");
        assert!(
            v[*name]["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{v}"
        );
    }
    // None of those created anything.
    let (_, _, list) = nova(
        &s,
        Some(&admin),
        "GET",
        "/v2.1/flavors?is_public=none",
        None,
        None,
    )
    .await;
    assert!(
        !column(&list["flavors"], "id").contains(&"x".to_string()),
        "{list}"
    );
    let (_, _, keys) = nova(&s, Some(&admin), "GET", "/v2.1/os-keypairs", None, None).await;
    assert_eq!(keys["keypairs"], json!([]), "{keys}");

    // A member may not create flavors or set quotas, nor read another
    // project's quotas; nothing changes.
    let (pid, _) = common::project_with_member(&s, "novateam", "nova-pass-1").await;
    let member = s
        .token_for("novateam-user", "nova-pass-1", Some("novateam"))
        .await;
    let (st, _, v) = nova(
        &s,
        Some(&member),
        "POST",
        "/v2.1/flavors",
        None,
        Some(r#"{"flavor": {"name": "mine", "ram": 64, "vcpus": 1, "disk": 1}}"#),
    )
    .await;
    assert_eq!(
        (st, v["forbidden"]["code"].clone()),
        (403, json!(403)),
        "{v}"
    );
    let (st, _, v) = nova(
        &s,
        Some(&member),
        "PUT",
        &format!("/v2.1/os-quota-sets/{pid}"),
        None,
        Some(r#"{"quota_set": {"instances": 500}}"#),
    )
    .await;
    assert_eq!(st, 403, "{v}");
    let tok = osc_ok(&s, &["token", "issue"]);
    let admin_pid = tok["project_id"].as_str().expect("project_id");
    let (st, _, v) = nova(
        &s,
        Some(&member),
        "GET",
        &format!("/v2.1/os-quota-sets/{admin_pid}"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 403, "{v}");
    let (st, _, v) = nova(
        &s,
        Some(&member),
        "GET",
        &format!("/v2.1/os-quota-sets/{pid}/detail"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["quota_set"]["instances"],
        json!({"limit": 20, "in_use": 0, "reserved": 0}),
        "{v}"
    );
    let (_, _, f) = nova(&s, Some(&admin), "GET", "/v2.1/flavors/mine", None, None).await;
    assert_eq!(f["itemNotFound"]["code"], 404, "{f}");
}
