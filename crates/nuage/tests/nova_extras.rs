//! Nova's extras over the compute core (issue 13): server groups (the
//! core's placement groups), admins' flavors with descriptions, extra specs
//! and private access lists, driven by the real `openstack` CLI and by raw
//! HTTP for what a client would not send. Every refused request is checked
//! to change nothing.

mod common;

use common::{call, osc, osc_ok, start_without_compute as start_plain, Server};
use serde_json::{json, Value};

fn column(list: &Value, key: &str) -> Vec<String> {
    let mut v: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| x[key].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

/// A raw Compute API request: (status, JSON body or Null).
async fn nova(
    s: &Server,
    token: &str,
    method: &str,
    path: &str,
    version: Option<&str>,
    body: Option<&str>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = s
        .http()
        .request(m, format!("{}/compute/v2.1{path}", s.url()))
        .header("x-auth-token", token);
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
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A raw request and the status it must get: (token, method, path,
/// microversion, body, status).
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    u16,
);

/// Nova's fault shape: `{"<name>": {"code": N, "message": "..."}}`.
fn fault(v: &Value, name: &str, code: u16) -> String {
    let f = &v[name];
    assert_eq!(f["code"], json!(code), "{v}");
    let m = f["message"].as_str().unwrap_or_default().to_string();
    assert!(!m.is_empty(), "{v}");
    m
}

#[tokio::test(flavor = "multi_thread")]
async fn openstack_cli_server_groups_follow_placement_groups() {
    let s = start_plain();
    let admin = s.admin_token().await;

    // Before 2.64: `policies`.
    let g = osc_ok(
        &s,
        &[
            "--os-compute-api-version",
            "2.15",
            "server",
            "group",
            "create",
            "--policy",
            "anti-affinity",
            "apart",
        ],
    );
    let id = g["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("pg-"), "{g}");
    assert!(g["policies"].to_string().contains("anti-affinity"), "{g}");
    assert!(g["members"] == json!([]) || g["members"] == "", "{g}");
    // From 2.64 (what the CLI negotiates): `policy` and `rules`.
    let g2 = osc_ok(
        &s,
        &[
            "server", "group", "create", "--policy", "affinity", "together",
        ],
    );
    assert_eq!(g2["policy"], "affinity", "{g2}");
    let shown = osc_ok(&s, &["server", "group", "show", &id]);
    assert_eq!(shown["name"], "apart", "{shown}");
    let by_name = osc_ok(&s, &["server", "group", "show", "apart"]);
    assert_eq!(by_name["id"], id.as_str(), "{by_name}");
    assert_eq!(
        column(&osc_ok(&s, &["server", "group", "list"]), "Name"),
        ["apart", "together"]
    );

    // The same groups are the native API's placement groups.
    let (st, pgs) = call(&s, &admin, "GET", "/nuage/v1/placement-groups", None).await;
    assert_eq!(st, 200, "{pgs}");
    let strategies: Vec<(String, String)> = pgs["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap_or_default().into(),
                g["strategy"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    assert_eq!(
        strategies,
        [
            ("apart".to_string(), "spread".to_string()),
            ("together".to_string(), "cluster".to_string())
        ]
    );

    // Soft policies are refused with the reason, and nothing is made.
    let err = osc(
        &s,
        &[],
        &[
            "--os-compute-api-version",
            "2.15",
            "server",
            "group",
            "create",
            "--policy",
            "soft-anti-affinity",
            "soft",
        ],
        true,
    )
    .expect_err("soft policy");
    assert!(err.contains("not supported"), "{err}");
    let bad = [
        (
            None,
            r#"{"server_group": {"name": "x", "policies": ["soft-affinity"]}}"#,
        ),
        (
            None,
            r#"{"server_group": {"name": "x", "policies": ["affinity", "anti-affinity"]}}"#,
        ),
        (
            None,
            r#"{"server_group": {"name": "x", "policy": "affinity"}}"#,
        ),
        (
            None,
            r#"{"server_group": {"name": "", "policies": ["affinity"]}}"#,
        ),
        (
            None,
            r#"{"server_group": {"name": "x", "policies": "affinity"}}"#,
        ),
        (
            None,
            r#"{"server_group": {"name": "x", "policies": ["sideways"]}}"#,
        ),
        (None, r#"{"server_group": {"name": "x"}}"#),
        (
            None,
            r#"{"server_group": {"name": "x", "policies": ["affinity"]"#,
        ),
        (
            Some("2.64"),
            r#"{"server_group": {"name": "x", "policy": "anti-affinity", "rules": {"max_server_per_host": 3}}}"#,
        ),
        (
            Some("2.64"),
            r#"{"server_group": {"name": "x", "policy": "affinity", "rules": {"max_server_per_host": 1}}}"#,
        ),
        (
            Some("2.64"),
            r#"{"server_group": {"name": "x", "policies": ["affinity"]}}"#,
        ),
    ];
    for (v, body) in bad {
        let (st, out) = nova(&s, &admin, "POST", "/os-server-groups", v, Some(body)).await;
        assert_eq!(st, 400, "{body}: {out}");
        fault(&out, "badRequest", 400);
    }
    // A duplicate name (the core's groups are unique by name in a project).
    let (st, out) = nova(
        &s,
        &admin,
        "POST",
        "/os-server-groups",
        None,
        Some(r#"{"server_group": {"name": "apart", "policies": ["affinity"]}}"#),
    )
    .await;
    assert_eq!(st, 409, "{out}");
    let (_, all) = nova(&s, &admin, "GET", "/os-server-groups", Some("2.64"), None).await;
    let groups = all["server_groups"].as_array().expect("groups");
    assert_eq!(groups.len(), 2, "{all}");
    assert!(groups.iter().all(|g| g.get("policies").is_none()
        && g["rules"] == json!({})
        && g["user_id"].as_str().is_some_and(|u| !u.is_empty())));

    // Another project sees none of them, and cannot delete them; with
    // all_projects it still sees only its own (an admin sees all).
    let (_, _) = common::project_with_member(&s, "sgother", "sg-other-pass1").await;
    let other = s
        .token_for("sgother-user", "sg-other-pass1", Some("sgother"))
        .await;
    let (st, mine) = nova(
        &s,
        &other,
        "GET",
        "/os-server-groups?all_projects=true",
        None,
        None,
    )
    .await;
    assert_eq!(
        (st, mine["server_groups"].clone()),
        (200, json!([])),
        "{mine}"
    );
    let (st, out) = nova(
        &s,
        &other,
        "GET",
        &format!("/os-server-groups/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 404, "{out}");
    fault(&out, "itemNotFound", 404);
    let (st, _) = nova(
        &s,
        &other,
        "DELETE",
        &format!("/os-server-groups/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (st, theirs) = nova(
        &s,
        &other,
        "POST",
        "/os-server-groups",
        None,
        Some(r#"{"server_group": {"name": "apart", "policies": ["affinity"]}}"#),
    )
    .await;
    assert_eq!(st, 200, "{theirs}");
    let (_, everyone) = nova(
        &s,
        &admin,
        "GET",
        "/os-server-groups?all_projects=True",
        None,
        None,
    )
    .await;
    assert_eq!(
        everyone["server_groups"].as_array().map(Vec::len),
        Some(3),
        "{everyone}"
    );
    let (_, page) = nova(
        &s,
        &admin,
        "GET",
        "/os-server-groups?all_projects=1&limit=1&offset=1",
        None,
        None,
    )
    .await;
    assert_eq!(
        page["server_groups"].as_array().map(Vec::len),
        Some(1),
        "{page}"
    );
    let (_, own) = nova(&s, &admin, "GET", "/os-server-groups", None, None).await;
    assert_eq!(
        own["server_groups"].as_array().map(Vec::len),
        Some(2),
        "{own}"
    );

    // Deleted by name through the CLI, by id by raw HTTP; then gone.
    osc(&s, &[], &["server", "group", "delete", "together"], false).expect("delete by name");
    let (st, _) = nova(
        &s,
        &admin,
        "DELETE",
        &format!("/os-server-groups/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 204);
    // (openstackclient 6.0 fails on a group it cannot find with a Python
    // error of its own; the API's answer is Nova's 404.)
    osc(&s, &[], &["server", "group", "show", &id], true).expect_err("deleted");
    let (st, out) = nova(
        &s,
        &admin,
        "GET",
        &format!("/os-server-groups/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 404, "{out}");
    fault(&out, "itemNotFound", 404);
    assert_eq!(osc_ok(&s, &["server", "group", "list"]), json!([]));
}

/// Members are the instances launched into the placement group (here by
/// the native API, which names the group); a group with members is not
/// deleted.
#[tokio::test(flavor = "multi_thread")]
async fn server_group_members_are_the_groups_instances() {
    let s = Server::start_with(common::Options {
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "fake".into())],
        ..common::Options::default()
    });
    common::build_busybox(&s);
    let admin = s.admin_token().await;
    let g = osc_ok(
        &s,
        &["server", "group", "create", "--policy", "affinity", "pack"],
    );
    let id = g["id"].as_str().expect("id").to_string();
    let (st, run) = call(
        &s,
        &admin,
        "POST",
        "/nuage/v1/instances",
        Some(json!({"image_id": "busybox", "instance_type": "t2.nano", "min_count": 2, "placement_group": "pack"})),
    )
    .await;
    assert!(st == 200 || st == 201, "{run}");
    let mut launched: Vec<String> = run["items"]
        .as_array()
        .expect("instances")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect();
    launched.sort();
    let (st, shown) = nova(
        &s,
        &admin,
        "GET",
        &format!("/os-server-groups/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 200, "{shown}");
    let mut members: Vec<String> =
        serde_json::from_value(shown["server_group"]["members"].clone()).expect("members");
    members.sort();
    assert_eq!(members, launched, "{shown}");
    let (st, out) = nova(
        &s,
        &admin,
        "DELETE",
        &format!("/os-server-groups/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 409, "{out}");
    fault(&out, "conflictingRequest", 409);
    let (st, _) = nova(
        &s,
        &admin,
        "GET",
        &format!("/os-server-groups/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(st, 200, "a refused delete changes nothing");
}

#[tokio::test(flavor = "multi_thread")]
async fn openstack_cli_private_flavors_extra_specs_and_access() {
    let s = start_plain();
    let admin = s.admin_token().await;
    let (pid, _) = common::project_with_member(&s, "flavorguest", "flavor-guest-pass1").await;
    let (_, _) = common::project_with_member(&s, "flavorother", "flavor-other-pass1").await;
    let guest = [
        ("OS_USERNAME", "flavorguest-user"),
        ("OS_PASSWORD", "flavor-guest-pass1"),
        ("OS_PROJECT_NAME", "flavorguest"),
    ];
    let stranger = [
        ("OS_USERNAME", "flavorother-user"),
        ("OS_PASSWORD", "flavor-other-pass1"),
        ("OS_PROJECT_NAME", "flavorother"),
    ];

    let made = osc_ok(
        &s,
        &[
            "--os-compute-api-version",
            "2.61",
            "flavor",
            "create",
            "--private",
            "--ram",
            "128",
            "--disk",
            "1",
            "--vcpus",
            "1",
            "--property",
            "hw:cpu_policy=shared",
            "--description",
            "small and private",
            "secret.small",
        ],
    );
    assert_eq!(made["os-flavor-access:is_public"], false, "{made}");
    assert!(
        made["properties"].to_string().contains("cpu_policy"),
        "{made}"
    );
    assert_eq!(made["description"], "small and private", "{made}");

    osc(
        &s,
        &[],
        &[
            "flavor",
            "set",
            "--property",
            "quota:cpu_shares=512",
            "--property",
            "k=v",
            "secret.small",
        ],
        false,
    )
    .expect("flavor set --property");
    osc(
        &s,
        &[],
        &["flavor", "unset", "--property", "k", "secret.small"],
        false,
    )
    .expect("flavor unset --property");
    let shown = osc_ok(&s, &["flavor", "show", "secret.small"]);
    let props = shown["properties"].to_string();
    assert!(
        props.contains("cpu_shares") && props.contains("cpu_policy"),
        "{shown}"
    );
    assert!(!props.contains("\"k\""), "{shown}");
    // Shown inline from 2.61, by the extra specs calls before.
    let (_, v) = nova(
        &s,
        &admin,
        "GET",
        "/flavors/secret.small",
        Some("2.61"),
        None,
    )
    .await;
    assert_eq!(
        v["flavor"]["extra_specs"],
        json!({"hw:cpu_policy": "shared", "quota:cpu_shares": "512"}),
        "{v}"
    );
    let (_, v) = nova(
        &s,
        &admin,
        "GET",
        "/flavors/secret.small/os-extra_specs/quota:cpu_shares",
        None,
        None,
    )
    .await;
    assert_eq!(v, json!({"quota:cpu_shares": "512"}));

    // Only admins see a private flavor until a project is given access.
    let all = column(&osc_ok(&s, &["flavor", "list", "--all"]), "Name");
    assert!(all.contains(&"secret.small".to_string()), "{all:?}");
    let public = column(&osc_ok(&s, &["flavor", "list"]), "Name");
    assert!(!public.contains(&"secret.small".to_string()), "{public:?}");
    let theirs = osc(&s, &guest, &["flavor", "list"], true).expect("guest list");
    assert!(!column(&theirs, "Name").contains(&"secret.small".to_string()));
    osc(&s, &guest, &["flavor", "show", "secret.small"], true).expect_err("hidden from guest");

    osc(
        &s,
        &[],
        &["flavor", "set", "--project", "flavorguest", "secret.small"],
        false,
    )
    .expect("flavor set --project");
    let (_, access) = nova(
        &s,
        &admin,
        "GET",
        "/flavors/secret.small/os-flavor-access",
        None,
        None,
    )
    .await;
    assert_eq!(
        access,
        json!({"flavor_access": [{"flavor_id": "secret.small", "tenant_id": pid}]})
    );
    let theirs = osc(&s, &guest, &["flavor", "list"], true).expect("guest list");
    assert!(column(&theirs, "Name").contains(&"secret.small".to_string()));
    let seen = osc(&s, &guest, &["flavor", "show", "secret.small"], true).expect("guest show");
    assert_eq!(seen["ram"], 128, "{seen}");
    // Another project still does not see it.
    let other = osc(&s, &stranger, &["flavor", "list", "--all"], true).expect("other list");
    assert!(!column(&other, "Name").contains(&"secret.small".to_string()));
    osc(&s, &stranger, &["flavor", "show", "secret.small"], true).expect_err("hidden");

    // Description (2.55).
    osc(
        &s,
        &[],
        &[
            "--os-compute-api-version",
            "2.55",
            "flavor",
            "set",
            "--description",
            "now described",
            "secret.small",
        ],
        false,
    )
    .expect("flavor set --description");
    let (_, v) = nova(
        &s,
        &admin,
        "GET",
        "/flavors/secret.small",
        Some("2.55"),
        None,
    )
    .await;
    assert_eq!(v["flavor"]["description"], "now described", "{v}");

    // Refusals, each changing nothing.
    let guest_token = s
        .token_for(
            "flavorguest-user",
            "flavor-guest-pass1",
            Some("flavorguest"),
        )
        .await;
    let before = nova(
        &s,
        &admin,
        "GET",
        "/flavors/secret.small",
        Some("2.61"),
        None,
    )
    .await
    .1;
    let cases: &[Case] = &[
        (
            &guest_token,
            "POST",
            "/flavors/secret.small/os-extra_specs",
            None,
            Some(r#"{"extra_specs": {"a": "b"}}"#),
            403,
        ),
        (
            &admin,
            "POST",
            "/flavors/secret.small/os-extra_specs",
            None,
            Some(r#"{"extra_specs": {"bad key!": "b"}}"#),
            400,
        ),
        (
            &admin,
            "POST",
            "/flavors/secret.small/os-extra_specs",
            None,
            Some(r#"{"extra_specs": {"a": ["b"]}}"#),
            400,
        ),
        (
            &admin,
            "POST",
            "/flavors/secret.small/os-extra_specs",
            None,
            Some(r#"{"specs": {}}"#),
            400,
        ),
        (
            &admin,
            "PUT",
            "/flavors/secret.small/os-extra_specs/a",
            None,
            Some(r#"{"b": "c"}"#),
            400,
        ),
        (
            &admin,
            "DELETE",
            "/flavors/secret.small/os-extra_specs/nope",
            None,
            None,
            404,
        ),
        (
            &admin,
            "GET",
            "/flavors/secret.small/os-extra_specs/nope",
            None,
            None,
            404,
        ),
        (
            &admin,
            "POST",
            "/flavors/nope/os-extra_specs",
            None,
            Some(r#"{"extra_specs": {"a": "b"}}"#),
            404,
        ),
        (
            &admin,
            "PUT",
            "/flavors/secret.small",
            Some("2.54"),
            Some(r#"{"flavor": {"description": "x"}}"#),
            404,
        ),
        (
            &admin,
            "PUT",
            "/flavors/secret.small",
            Some("2.55"),
            Some(r#"{"flavor": {"name": "x"}}"#),
            400,
        ),
        (
            &guest_token,
            "PUT",
            "/flavors/secret.small",
            Some("2.55"),
            Some(r#"{"flavor": {"description": "x"}}"#),
            403,
        ),
        (
            &admin,
            "POST",
            "/flavors/secret.small/action",
            None,
            Some(r#"{"addTenantAccess": {"tenant": "flavorguest"}}"#),
            409,
        ),
        (
            &admin,
            "POST",
            "/flavors/secret.small/action",
            None,
            Some(r#"{"addTenantAccess": {"tenant": "no-such-project"}}"#),
            404,
        ),
        (
            &admin,
            "POST",
            "/flavors/secret.small/action",
            None,
            Some(r#"{"removeTenantAccess": {"tenant": "flavorother"}}"#),
            404,
        ),
        (
            &admin,
            "POST",
            "/flavors/secret.small/action",
            None,
            Some(r#"{"grant": {"tenant": "x"}}"#),
            400,
        ),
        (
            &guest_token,
            "POST",
            "/flavors/secret.small/action",
            None,
            Some(r#"{"removeTenantAccess": {"tenant": "flavorguest"}}"#),
            403,
        ),
        (
            &admin,
            "POST",
            "/flavors/m1.tiny/action",
            None,
            Some(r#"{"addTenantAccess": {"tenant": "flavorguest"}}"#),
            409,
        ),
        (
            &admin,
            "GET",
            "/flavors/m1.tiny/os-flavor-access",
            None,
            None,
            404,
        ),
        (
            &admin,
            "POST",
            "/flavors",
            None,
            Some(r#"{"flavor": {"name": "sw", "ram": 64, "vcpus": 1, "disk": 1, "swap": 512}}"#),
            400,
        ),
        (
            &admin,
            "POST",
            "/flavors",
            None,
            Some(
                r#"{"flavor": {"name": "eph", "ram": 64, "vcpus": 1, "disk": 1, "OS-FLV-EXT-DATA:ephemeral": 1}}"#,
            ),
            400,
        ),
    ];
    for (token, method, path, v, body, status) in cases {
        let (st, out) = nova(&s, token, method, path, *v, *body).await;
        assert_eq!(st, *status, "{method} {path} {body:?}: {out}");
        let name = out
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_default();
        fault(&out, &name, *status);
    }
    let after = nova(
        &s,
        &admin,
        "GET",
        "/flavors/secret.small",
        Some("2.61"),
        None,
    )
    .await
    .1;
    assert_eq!(before, after, "refused requests changed the flavor");
    let (_, access) = nova(
        &s,
        &admin,
        "GET",
        "/flavors/secret.small/os-flavor-access",
        None,
        None,
    )
    .await;
    assert_eq!(
        access["flavor_access"].as_array().map(Vec::len),
        Some(1),
        "{access}"
    );
    for name in ["sw", "eph"] {
        let (st, _) = nova(&s, &admin, "GET", &format!("/flavors/{name}"), None, None).await;
        assert_eq!(st, 404, "{name} was made");
    }

    // Access removed: hidden again; deleted: gone for everyone.
    osc(
        &s,
        &[],
        &[
            "flavor",
            "unset",
            "--project",
            "flavorguest",
            "secret.small",
        ],
        false,
    )
    .expect("flavor unset --project");
    osc(&s, &guest, &["flavor", "show", "secret.small"], true).expect_err("hidden again");
    osc(&s, &[], &["flavor", "delete", "secret.small"], false).expect("flavor delete");
    osc(&s, &[], &["flavor", "show", "secret.small"], true).expect_err("deleted");
}

/// The native API changes the same instance types: private, with extra
/// specs and an access list, seen through Nova by the project given access.
#[tokio::test(flavor = "multi_thread")]
async fn native_api_private_types_are_novas_private_flavors() {
    let s = start_plain();
    let admin = s.admin_token().await;
    let (pid, _) = common::project_with_member(&s, "nativeguest", "native-guest-pass1").await;
    let guest = s
        .token_for(
            "nativeguest-user",
            "native-guest-pass1",
            Some("nativeguest"),
        )
        .await;
    let (st, t) = call(
        &s,
        &admin,
        "POST",
        "/nuage/v1/instance-types",
        Some(
            json!({"name": "native.private", "vcpus": 1, "memory_mib": 64, "disk_gib": 1,
                    "is_public": false, "extra_specs": {"a": "1"}}),
        ),
    )
    .await;
    assert_eq!(st, 201, "{t}");
    let path = "/nuage/v1/instance-types/native.private";
    let (st, _) = call(&s, &guest, "GET", path, None).await;
    assert_eq!(st, 404, "hidden from other projects");
    // Refused, changing nothing: a non-string value, a member's change.
    let specs = format!("{path}/extra-specs");
    let (st, _) = call(&s, &admin, "PATCH", &specs, Some(json!({"b": ["x"]}))).await;
    assert_eq!(st, 400);
    let (st, _) = call(&s, &guest, "PATCH", &specs, Some(json!({"b": "2"}))).await;
    assert!(st == 403 || st == 404, "{st}");
    let (st, t) = call(&s, &admin, "PATCH", &specs, Some(json!({"b": "2"}))).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["extra_specs"], json!({"a": "1", "b": "2"}), "{t}");
    let (st, _) = call(&s, &admin, "DELETE", &format!("{specs}/a"), None).await;
    assert_eq!(st, 204);
    let access = format!("{path}/access/nativeguest");
    let (st, list) = call(&s, &admin, "PUT", &access, None).await;
    assert_eq!((st, list["items"].clone()), (200, json!([pid])), "{list}");
    let (st, v) = nova(
        &s,
        &guest,
        "GET",
        "/flavors/native.private",
        Some("2.61"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["flavor"]["extra_specs"], json!({"b": "2"}), "{v}");
    assert_eq!(v["flavor"]["os-flavor-access:is_public"], false, "{v}");
    let (st, _) = call(&s, &admin, "DELETE", &access, None).await;
    assert_eq!(st, 204);
    let (st, _) = call(&s, &guest, "GET", path, None).await;
    assert_eq!(st, 404, "hidden again");
    let (st, list) = call(&s, &admin, "GET", &format!("{path}/access"), None).await;
    assert_eq!((st, list["items"].clone()), (200, json!([])), "{list}");
}
