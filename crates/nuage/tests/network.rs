//! Networking through the front doors, end to end: a real `nuage serve`
//! answering the native API over HTTP and the `nuage` CLI. The API only
//! writes the store (no bridge, veth or rule is made here); the data plane
//! has its own tests inside network namespaces.

mod common;

use common::{call, nuage_bin, project_with_member, Server};
use serde_json::{json, Value};

const PW: &str = "correct horse battery staple";

/// A member's token for a new project `name`.
async fn member(s: &Server, name: &str) -> String {
    project_with_member(s, name, PW).await;
    s.token_for(&format!("{name}-user"), PW, Some(name)).await
}

/// Sends a request that must answer `want`; returns the body.
async fn expect(
    s: &Server,
    t: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    want: u16,
) -> Value {
    let (st, v) = call(s, t, method, path, body).await;
    assert_eq!(st, want, "{method} {path}: {v}\n{}", s.logs());
    v
}

/// A refusal: `want` with the native error body and its `code`.
async fn refused(
    s: &Server,
    t: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    want: u16,
    code: &str,
) -> String {
    let v = expect(s, t, method, path, body, want).await;
    assert_eq!(v["error"]["code"], code, "{method} {path}: {v}");
    v["error"]["message"]
        .as_str()
        .expect("an error message")
        .to_string()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

fn ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(id)
        .collect()
}

/// Networks, subnets, groups, ports, routers and floating addresses through
/// HTTP: made, read, refused when wrong (with nothing changed), invisible
/// to another project, and deleted.
#[tokio::test]
async fn native_api_crud_isolation_and_refusals() {
    api_scenario(Server::start()).await;
}

/// The same on PostgreSQL (NUAGE_TEST_POSTGRES).
#[tokio::test]
async fn native_api_on_postgres() {
    api_scenario(Server::start_postgres().await).await;
}

async fn api_scenario(s: Server) {
    let admin = s.admin_token().await;
    let a = member(&s, "alpha").await;
    let b = member(&s, "beta").await;

    // Networks and subnets.
    let net = expect(
        &s,
        &a,
        "POST",
        "/nuage/v1/networks",
        Some(json!({"name": "net-a"})),
        201,
    )
    .await;
    let net_id = id(&net);
    assert!(net_id.starts_with("vpc-"), "{net}");
    assert_eq!(net["external"], false);
    let got = expect(
        &s,
        &a,
        "GET",
        &format!("/nuage/v1/networks/{net_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(got["name"], "net-a");
    assert!(ids(&expect(&s, &a, "GET", "/nuage/v1/networks", None, 200).await).contains(&net_id));

    let sub = expect(
        &s,
        &a,
        "POST",
        "/nuage/v1/subnets",
        Some(json!({"network_id": net_id, "name": "a1", "cidr": "10.1.0.0/24"})),
        201,
    )
    .await;
    let sub_id = id(&sub);
    assert_eq!(sub["gateway_ip"], "10.1.0.1", "{sub}");
    let before = expect(
        &s,
        &a,
        "GET",
        &format!("/nuage/v1/networks/{net_id}"),
        None,
        200,
    )
    .await;

    // Bad subnets: refused in the dialect, nothing changed.
    let m = refused(
        &s,
        &a,
        "POST",
        "/nuage/v1/subnets",
        Some(json!({"network_id": net_id, "cidr": "10.1.0.128/25"})),
        409,
        "conflict",
    )
    .await;
    assert!(m.contains("overlaps"), "{m}");
    let m = refused(
        &s,
        &a,
        "POST",
        "/nuage/v1/subnets",
        Some(json!({"network_id": net_id, "cidr": "10.2.0.0/24", "gateway_ip": "10.3.0.1"})),
        400,
        "invalid_request",
    )
    .await;
    assert!(m.contains("10.3.0.1"), "{m}");
    refused(
        &s,
        &a,
        "POST",
        "/nuage/v1/subnets",
        Some(json!({"network_id": net_id, "cidr": "10.2.0.1/24"})),
        400,
        "invalid_request",
    )
    .await;
    refused(
        &s,
        &a,
        "POST",
        "/nuage/v1/subnets",
        Some(json!({"network_id": net_id, "cidr": "10.2.0.0/24", "color": "blue"})),
        400,
        "invalid_request",
    )
    .await;
    let subnets = expect(
        &s,
        &a,
        "GET",
        &format!("/nuage/v1/subnets?network_id={net_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(ids(&subnets), [sub_id.as_str()]);
    let after = expect(
        &s,
        &a,
        "GET",
        &format!("/nuage/v1/networks/{net_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(before, after, "a refused subnet changed the network");

    // Security groups and rules.
    let web = expect(
        &s,
        &a,
        "POST",
        "/nuage/v1/security-groups",
        Some(json!({"name": "web", "description": "front"})),
        201,
    )
    .await;
    let web_id = id(&web);
    assert!(web_id.starts_with("sg-"));
    let rule = expect(
        &s,
        &a,
        "POST",
        &format!("/nuage/v1/security-groups/{web_id}/rules"),
        Some(
            json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 22,
                    "port_range_max": 22, "remote_cidr": "192.0.2.0/24"}),
        ),
        201,
    )
    .await;
    assert!(id(&rule).starts_with("sgr-"), "{rule}");
    let group = expect(
        &s,
        &a,
        "GET",
        &format!("/nuage/v1/security-groups/{web_id}"),
        None,
        200,
    )
    .await;
    for bad in [
        json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 80, "port_range_max": 22}),
        json!({"direction": "ingress", "protocol": "tcp", "port_range_min": 1, "port_range_max": 70000}),
        json!({"direction": "ingress", "protocol": "gre"}),
        json!({"direction": "sideways", "protocol": "tcp"}),
    ] {
        let (st, v) = call(
            &s,
            &a,
            "POST",
            &format!("/nuage/v1/security-groups/{web_id}/rules"),
            Some(bad.clone()),
        )
        .await;
        assert_eq!(st, 400, "{bad} was not refused: {v}");
        assert_eq!(v["error"]["code"], "invalid_request", "{v}");
    }
    let same = expect(
        &s,
        &a,
        "GET",
        &format!("/nuage/v1/security-groups/{web_id}"),
        None,
        200,
    )
    .await;
    // The agent's progress (observed_generation) moves on its own; the
    // group itself must not.
    let user_view = |mut g: Value| {
        if let Some(o) = g.as_object_mut() {
            o.remove("observed_generation");
        }
        g
    };
    assert_eq!(
        user_view(group.clone()),
        user_view(same.clone()),
        "a refused rule changed the group"
    );

    // A port in the group, standing for an instance's.
    let port = expect(
        &s,
        &a,
        "POST",
        "/nuage/v1/ports",
        Some(json!({"network_id": net_id, "security_groups": [web_id],
                    "device_owner": "compute:instance", "device_id": "i-0a0000000000000a1"})),
        201,
    )
    .await;
    let port_id = id(&port);
    assert_eq!(port["fixed_ips"][0]["ip_address"], "10.1.0.2", "{port}");
    let by_device = expect(
        &s,
        &a,
        "GET",
        "/nuage/v1/ports?device_id=i-0a0000000000000a1",
        None,
        200,
    )
    .await;
    assert_eq!(ids(&by_device), [port_id.as_str()]);
    let m = refused(
        &s,
        &a,
        "DELETE",
        &format!("/nuage/v1/security-groups/{web_id}"),
        None,
        409,
        "conflict",
    )
    .await;
    assert!(m.contains("in use"), "{m}");
    assert_eq!(
        user_view(
            expect(
                &s,
                &a,
                "GET",
                &format!("/nuage/v1/security-groups/{web_id}"),
                None,
                200
            )
            .await
        ),
        user_view(same)
    );

    // Another project sees none of it and can touch none of it.
    for path in [
        format!("/nuage/v1/networks/{net_id}"),
        format!("/nuage/v1/subnets/{sub_id}"),
        format!("/nuage/v1/security-groups/{web_id}"),
        format!("/nuage/v1/ports/{port_id}"),
    ] {
        refused(&s, &b, "GET", &path, None, 404, "not_found").await;
        refused(&s, &b, "DELETE", &path, None, 404, "not_found").await;
    }
    refused(
        &s,
        &b,
        "POST",
        "/nuage/v1/subnets",
        Some(json!({"network_id": net_id, "cidr": "10.9.0.0/24"})),
        404,
        "not_found",
    )
    .await;
    refused(
        &s,
        &b,
        "POST",
        "/nuage/v1/ports",
        Some(json!({"network_id": net_id})),
        404,
        "not_found",
    )
    .await;
    // A rule may not name another project's group.
    let bg = expect(
        &s,
        &b,
        "POST",
        "/nuage/v1/security-groups",
        Some(json!({"name": "web"})),
        201,
    )
    .await;
    let bg_id = id(&bg);
    refused(
        &s,
        &b,
        "POST",
        &format!("/nuage/v1/security-groups/{bg_id}/rules"),
        Some(json!({"direction": "ingress", "protocol": "all", "remote_group_id": web_id})),
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        expect(
            &s,
            &b,
            "GET",
            &format!("/nuage/v1/security-groups/{bg_id}"),
            None,
            200
        )
        .await,
        bg
    );
    let b_nets = ids(&expect(&s, &b, "GET", "/nuage/v1/networks", None, 200).await);
    assert!(!b_nets.contains(&net_id), "{b_nets:?}");
    let b_groups = ids(&expect(&s, &b, "GET", "/nuage/v1/security-groups", None, 200).await);
    assert!(!b_groups.contains(&web_id));
    // ... nor lists every project's: that is the admin's.
    refused(
        &s,
        &b,
        "GET",
        "/nuage/v1/networks?all_projects=true",
        None,
        403,
        "forbidden",
    )
    .await;

    // An external network is the operator's.
    refused(
        &s,
        &a,
        "POST",
        "/nuage/v1/networks",
        Some(json!({"name": "mine", "external": true})),
        403,
        "forbidden",
    )
    .await;
    let ext = expect(
        &s,
        &admin,
        "POST",
        "/nuage/v1/networks",
        Some(json!({"name": "ext", "external": true})),
        201,
    )
    .await;
    let ext_id = id(&ext);
    expect(
        &s,
        &admin,
        "POST",
        "/nuage/v1/subnets",
        Some(json!({"network_id": ext_id, "cidr": "203.0.113.0/24"})),
        201,
    )
    .await;

    // A router joins the subnet to the external network.
    let r = expect(
        &s,
        &a,
        "POST",
        "/nuage/v1/routers",
        Some(json!({"name": "r1"})),
        201,
    )
    .await;
    let r_id = id(&r);
    let r = expect(
        &s,
        &a,
        "PUT",
        &format!("/nuage/v1/routers/{r_id}/gateway"),
        Some(json!({"network_id": ext_id})),
        200,
    )
    .await;
    assert_eq!(r["external_network_id"], ext_id.as_str(), "{r}");
    assert!(
        r["external_ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("203.0.113.")),
        "{r}"
    );
    let r = expect(
        &s,
        &a,
        "POST",
        &format!("/nuage/v1/routers/{r_id}/interfaces"),
        Some(json!({"subnet_id": sub_id})),
        200,
    )
    .await;
    assert_eq!(r["interfaces"][0]["ip_address"], "10.1.0.1", "{r}");
    refused(
        &s,
        &b,
        "GET",
        &format!("/nuage/v1/routers/{r_id}"),
        None,
        404,
        "not_found",
    )
    .await;

    // Floating addresses: allocate, associate, refuse a foreign one.
    let fa = expect(
        &s,
        &a,
        "POST",
        "/nuage/v1/floating-ips",
        Some(json!({})),
        201,
    )
    .await;
    let fa_id = id(&fa);
    assert!(fa_id.starts_with("eipalloc-"), "{fa}");
    let fb = expect(
        &s,
        &b,
        "POST",
        "/nuage/v1/floating-ips",
        Some(json!({})),
        201,
    )
    .await;
    let fb_id = id(&fb);
    // The floating_ips quota holds: beta may have one, and a refused
    // allocation leaves nothing behind.
    expect(
        &s,
        &admin,
        "PUT",
        "/nuage/v1/projects/beta/quotas",
        Some(json!({"floating_ips": 1})),
        200,
    )
    .await;
    refused(
        &s,
        &b,
        "POST",
        "/nuage/v1/floating-ips",
        Some(json!({})),
        413,
        "quota_exceeded",
    )
    .await;
    let b_fips = expect(&s, &b, "GET", "/nuage/v1/floating-ips", None, 200).await;
    assert_eq!(ids(&b_fips), [fb_id.as_str()]);
    // Only external networks give floating addresses.
    refused(
        &s,
        &a,
        "POST",
        "/nuage/v1/floating-ips",
        Some(json!({"network_id": net_id})),
        400,
        "invalid_request",
    )
    .await;
    let f = expect(
        &s,
        &a,
        "PUT",
        &format!("/nuage/v1/floating-ips/{fa_id}/association"),
        Some(json!({"port_id": port_id})),
        200,
    )
    .await;
    assert_eq!(f["fixed_ip_address"], "10.1.0.2", "{f}");
    assert_eq!(f["router_id"], r_id.as_str(), "{f}");
    refused(
        &s,
        &a,
        "PUT",
        &format!("/nuage/v1/floating-ips/{fb_id}/association"),
        Some(json!({"port_id": port_id})),
        404,
        "not_found",
    )
    .await;
    refused(
        &s,
        &b,
        "PUT",
        &format!("/nuage/v1/floating-ips/{fb_id}/association"),
        Some(json!({"port_id": port_id})),
        404,
        "not_found",
    )
    .await;
    let fb_now = expect(
        &s,
        &b,
        "GET",
        &format!("/nuage/v1/floating-ips/{fb_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(fb_now, fb, "a refused association changed the address");
    assert_eq!(fb_now["port_id"], Value::Null);

    // Things in use are not deleted.
    refused(
        &s,
        &a,
        "DELETE",
        &format!("/nuage/v1/routers/{r_id}"),
        None,
        409,
        "conflict",
    )
    .await;
    refused(
        &s,
        &a,
        "DELETE",
        &format!("/nuage/v1/networks/{net_id}"),
        None,
        409,
        "conflict",
    )
    .await;

    // Undo it all.
    let f = expect(
        &s,
        &a,
        "DELETE",
        &format!("/nuage/v1/floating-ips/{fa_id}/association"),
        None,
        200,
    )
    .await;
    assert_eq!(f["port_id"], Value::Null, "{f}");
    expect(
        &s,
        &a,
        "DELETE",
        &format!("/nuage/v1/floating-ips/{fa_id}"),
        None,
        204,
    )
    .await;
    refused(
        &s,
        &a,
        "GET",
        &format!("/nuage/v1/floating-ips/{fa_id}"),
        None,
        404,
        "not_found",
    )
    .await;
    let r = expect(
        &s,
        &a,
        "DELETE",
        &format!("/nuage/v1/routers/{r_id}/interfaces/{sub_id}"),
        None,
        200,
    )
    .await;
    assert_eq!(r["interfaces"], json!([]), "{r}");
    let r = expect(
        &s,
        &a,
        "DELETE",
        &format!("/nuage/v1/routers/{r_id}/gateway"),
        None,
        200,
    )
    .await;
    assert_eq!(r["external_network_id"], Value::Null, "{r}");
    expect(
        &s,
        &a,
        "DELETE",
        &format!("/nuage/v1/routers/{r_id}"),
        None,
        204,
    )
    .await;
    expect(
        &s,
        &a,
        "DELETE",
        &format!("/nuage/v1/security-group-rules/{}", id(&rule)),
        None,
        204,
    )
    .await;
    let g = expect(
        &s,
        &a,
        "GET",
        &format!("/nuage/v1/security-groups/{web_id}"),
        None,
        200,
    )
    .await;
    // What is left is the egress-all rule every new group starts with.
    assert_eq!(g["rules"].as_array().map(Vec::len), Some(1), "{g}");
    assert_eq!(g["rules"][0]["direction"], "egress", "{g}");
}

/// Runs `nuage -o json ARGS` as the admin; must succeed.
fn cli_json(s: &Server, args: &[&str]) -> Value {
    let (ok, out, err) = common::run(s.client(nuage_bin()).args(["-o", "json"]).args(args));
    assert!(ok, "nuage {}: {err}\n{out}", args.join(" "));
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("nuage {}: not JSON ({e}): {out}", args.join(" ")))
}

/// Runs `nuage ARGS`, which must fail with exit code 1; returns stderr.
fn cli_fails(s: &Server, args: &[&str]) -> String {
    let out = s
        .client(nuage_bin())
        .args(args)
        .output()
        .expect("run nuage");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "nuage {}: {err}",
        args.join(" ")
    );
    err
}

fn str_of(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .to_string()
}

/// `run-instances` with the busybox image and t2.nano, then `extra`.
fn run<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "run-instances",
        "--image-id",
        "busybox",
        "--instance-type",
        "t2.nano",
    ];
    args.extend_from_slice(extra);
    args
}

/// `run-instances --subnet-id --private-ip-address --security-group-ids`,
/// as the aws CLI spells them: the port takes that subnet, address and
/// groups; an address already held, one address for several instances, or
/// a subnet and network that disagree are refused and hold no address.
#[tokio::test]
async fn run_instances_on_a_subnet_with_an_address_and_groups() {
    let s = Server::start_with(common::Options {
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "fake".into())],
        ..common::Options::default()
    });
    let (ok, out, err) = common::run(
        s.client(nuage_bin())
            .args(["image", "build", "busybox", "--public"]),
    );
    assert!(ok, "image build: {out}\n{err}");
    let net = cli_json(&s, &["network", "create", "app"]);
    let net_id = str_of(&net, "id");
    let sub = cli_json(
        &s,
        &[
            "subnet",
            "create",
            "--network",
            &net_id,
            "--cidr",
            "10.7.0.0/24",
        ],
    );
    let sub_id = str_of(&sub, "id");
    let g = cli_json(
        &s,
        &[
            "create-security-group",
            "--group-name",
            "web",
            "--description",
            "w",
        ],
    );
    let g_id = str_of(&g, "id");

    let v = cli_json(
        &s,
        &run(&[
            "--subnet-id",
            &sub_id,
            "--private-ip-address",
            "10.7.0.9",
            "--security-group-ids",
            &g_id,
        ]),
    );
    let inst = &v["items"][0];
    assert_eq!(inst["private_ip_address"], "10.7.0.9", "{v}");
    let iid = str_of(inst, "id");
    let ports = cli_json(&s, &["port", "list"]);
    let port = ports["items"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["device_id"] == iid.as_str()))
        .unwrap_or_else(|| panic!("no port of {iid} in {ports}"))
        .clone();
    assert_eq!(port["security_groups"], json!([g_id]), "{port}");
    assert_eq!(port["fixed_ips"][0]["subnet_id"], sub_id.as_str(), "{port}");

    let held = |s: &Server| {
        cli_json(s, &["port", "list"])["items"]
            .as_array()
            .map_or(0, |p| {
                p.iter()
                    .filter(|p| p["network_id"] == net_id.as_str())
                    .count()
            })
    };
    let before = held(&s);
    let err = cli_fails(
        &s,
        &run(&["--subnet-id", &sub_id, "--private-ip-address", "10.7.0.9"]),
    );
    assert!(err.contains("10.7.0.9"), "{err}");
    let err = cli_fails(
        &s,
        &run(&[
            "--count",
            "2",
            "--subnet-id",
            &sub_id,
            "--private-ip-address",
            "10.7.0.20",
        ]),
    );
    assert!(err.contains("one instance"), "{err}");
    let other = cli_json(&s, &["network", "create", "other"]);
    let (st, v) = call(
        &s,
        &s.admin_token().await,
        "POST",
        "/nuage/v1/instances",
        Some(json!({"image_id": "busybox", "instance_type": "t2.nano",
            "subnet_id": sub_id, "network_id": str_of(&other, "id")})),
    )
    .await;
    assert_eq!(st, 400, "{v}");
    assert_eq!(held(&s), before, "a refused launch holds no address");
    // The next launch on the subnet takes the lowest free address.
    let v = cli_json(&s, &run(&["--subnet-id", &sub_id]));
    assert_eq!(v["items"][0]["private_ip_address"], "10.7.0.2", "{v}");
}

/// The CLI's nouns and aws verbs against the real server, as the admin
/// (admin.env), with JSON output parsed.
#[tokio::test]
async fn cli_verbs_end_to_end() {
    let s = Server::start();
    let admin = s.admin_token().await;

    let ext = cli_json(&s, &["network", "create", "ext", "--external"]);
    let ext_id = str_of(&ext, "id");
    assert_eq!(ext["external"], true);
    cli_json(
        &s,
        &[
            "subnet",
            "create",
            "--network",
            &ext_id,
            "--cidr",
            "203.0.113.0/24",
        ],
    );
    let net = cli_json(&s, &["network", "create", "app"]);
    let net_id = str_of(&net, "id");
    let sub = cli_json(
        &s,
        &[
            "subnet",
            "create",
            "app-1",
            "--network",
            &net_id,
            "--cidr",
            "10.5.0.0/24",
            "--dns-server",
            "10.5.0.53",
        ],
    );
    let sub_id = str_of(&sub, "id");
    assert_eq!(sub["dns_servers"], json!(["10.5.0.53"]));
    let err = cli_fails(
        &s,
        &[
            "subnet",
            "create",
            "--network",
            &net_id,
            "--cidr",
            "10.5.0.0/25",
        ],
    );
    assert!(
        err.contains("overlaps") && err.contains("HTTP 409"),
        "{err}"
    );
    let listed = cli_json(&s, &["subnet", "list", "--network", &net_id]);
    assert_eq!(ids(&listed), [sub_id.as_str()]);
    let shown = cli_json(&s, &["network", "show", &net_id]);
    assert_eq!(shown["subnets"], json!([sub_id]));

    let r = cli_json(
        &s,
        &["router", "create", "r", "--external-network", &ext_id],
    );
    let r_id = str_of(&r, "id");
    let r = cli_json(&s, &["router", "add-interface", &r_id, "--subnet", &sub_id]);
    assert_eq!(r["interfaces"][0]["subnet_id"], sub_id.as_str(), "{r}");
    assert_eq!(ids(&cli_json(&s, &["router", "list"])), [r_id.as_str()]);

    // Security groups, as the aws CLI spells them.
    let g = cli_json(
        &s,
        &[
            "create-security-group",
            "--group-name",
            "web",
            "--description",
            "front",
        ],
    );
    let g_id = str_of(&g, "id");
    let added = cli_json(
        &s,
        &[
            "authorize-security-group-ingress",
            "--group-name",
            "web",
            "--protocol",
            "tcp",
            "--port",
            "22",
            "--cidr",
            "0.0.0.0/0",
        ],
    );
    assert_eq!(added["items"][0]["port_range_min"], 22, "{added}");
    cli_json(
        &s,
        &[
            "authorize-security-group-ingress", "--group-id", &g_id, "--ip-permissions",
            "IpProtocol=udp,FromPort=53,ToPort=53,IpRanges=[{CidrIp=10.0.0.0/8}],UserIdGroupPairs=[{GroupId=web}]",
        ],
    );
    cli_json(
        &s,
        &[
            "authorize-security-group-egress",
            "--group-id",
            &g_id,
            "--protocol",
            "icmp",
            "--port",
            "8-0",
        ],
    );
    let described = cli_json(&s, &["describe-security-groups", "--group-names", "web"]);
    assert_eq!(
        described["items"].as_array().map(Vec::len),
        Some(1),
        "{described}"
    );
    // Four added, and the egress-all rule every new group starts with.
    assert_eq!(
        described["items"][0]["rules"].as_array().map(Vec::len),
        Some(5),
        "{described}"
    );
    let err = cli_fails(
        &s,
        &[
            "authorize-security-group-ingress",
            "--group-id",
            &g_id,
            "--protocol",
            "tcp",
            "--port",
            "80-22",
        ],
    );
    assert!(err.contains("HTTP 400"), "{err}");
    let err = cli_fails(
        &s,
        &[
            "authorize-security-group-ingress",
            "--group-id",
            &g_id,
            "--protocol",
            "gre",
        ],
    );
    assert!(err.contains("HTTP 400"), "{err}");
    let revoked = cli_json(
        &s,
        &[
            "revoke-security-group-ingress",
            "--group-id",
            &g_id,
            "--protocol",
            "tcp",
            "--port",
            "22",
            "--cidr",
            "0.0.0.0/0",
        ],
    );
    assert_eq!(
        revoked["RevokedRuleIds"].as_array().map(Vec::len),
        Some(1),
        "{revoked}"
    );
    let err = cli_fails(
        &s,
        &[
            "revoke-security-group-ingress",
            "--group-id",
            &g_id,
            "--protocol",
            "tcp",
            "--port",
            "22",
        ],
    );
    assert!(err.contains("no such ingress rule"), "{err}");
    let described = cli_json(&s, &["describe-security-groups", "--group-ids", &g_id]);
    assert_eq!(
        described["items"][0]["rules"].as_array().map(Vec::len),
        Some(4),
        "{described}"
    );

    // An instance's port (compute's launch makes these; made here through
    // the API so that no instance runs).
    let instance = "i-0b0000000000000b1";
    let (st, port) = call(
        &s,
        &admin,
        "POST",
        "/nuage/v1/ports",
        Some(json!({"network_id": net_id, "security_groups": [g_id],
                    "device_owner": "compute:instance", "device_id": instance})),
    )
    .await;
    assert_eq!(st, 201, "{port}");
    let port_id = str_of(&port, "id");
    let ports = cli_json(&s, &["port", "list", "--device-id", instance]);
    assert_eq!(ids(&ports), [port_id.as_str()]);
    assert_eq!(
        cli_json(&s, &["port", "show", &port_id])["mac_address"],
        port["mac_address"]
    );
    // The interface's groups change: by name, then back by id.
    cli_json(&s, &["create-security-group", "--group-name", "db"]);
    let p = cli_json(
        &s,
        &[
            "modify-network-interface-attribute",
            "--network-interface-id",
            &port_id,
            "--groups",
            "db",
            "web",
        ],
    );
    assert_eq!(
        p["security_groups"].as_array().map(Vec::len),
        Some(2),
        "{p}"
    );
    let err = cli_fails(
        &s,
        &[
            "modify-network-interface-attribute",
            "--network-interface-id",
            &port_id,
            "--groups",
            "sg-0000000000000dead",
        ],
    );
    assert!(err.contains("HTTP 404"), "{err}");
    let p = cli_json(
        &s,
        &[
            "modify-network-interface-attribute",
            "--network-interface-id",
            &port_id,
            "--groups",
            &g_id,
        ],
    );
    assert_eq!(p["security_groups"], json!([g_id]), "{p}");
    // The default output is a table, one row per item.
    let (ok, table, err) = common::run(s.client(nuage_bin()).args(["port", "list"]));
    assert!(ok, "{err}");
    let row = table
        .lines()
        .find(|l| l.contains(&port_id))
        .unwrap_or_else(|| panic!("no row for {port_id}:\n{table}"));
    assert!(
        row.contains(instance) && row.contains("10.5.0.2"),
        "{table}"
    );
    let err = cli_fails(&s, &["delete-security-group", "--group-name", "web"]);
    assert!(err.contains("in use") && err.contains("HTTP 409"), "{err}");

    // Elastic addresses.
    let f = cli_json(&s, &["allocate-address", "--domain", "vpc"]);
    let f_id = str_of(&f, "id");
    let public = str_of(&f, "floating_ip_address");
    assert!(public.starts_with("203.0.113."), "{f}");
    let f = cli_json(
        &s,
        &[
            "associate-address",
            "--allocation-id",
            &f_id,
            "--instance-id",
            instance,
        ],
    );
    assert_eq!(f["port_id"], port_id.as_str(), "{f}");
    assert_eq!(
        f["fixed_ip_address"], port["fixed_ips"][0]["ip_address"],
        "{f}"
    );
    let err = cli_fails(
        &s,
        &[
            "associate-address",
            "--allocation-id",
            &f_id,
            "--instance-id",
            "i-0000000000000dead",
        ],
    );
    assert!(err.contains("no network interface"), "{err}");
    let d = cli_json(&s, &["describe-addresses", "--public-ips", &public]);
    assert_eq!(d["items"][0]["port_id"], port_id.as_str(), "{d}");
    let f = cli_json(&s, &["disassociate-address", "--public-ip", &public]);
    assert_eq!(f["port_id"], Value::Null, "{f}");
    let f = cli_json(
        &s,
        &[
            "associate-address",
            "--allocation-id",
            &f_id,
            "--network-interface-id",
            &port_id,
        ],
    );
    assert_eq!(f["port_id"], port_id.as_str(), "{f}");
    cli_json(&s, &["disassociate-address", "--allocation-id", &f_id]);
    let (ok, _, err) =
        common::run(
            s.client(nuage_bin())
                .args(["release-address", "--allocation-id", &f_id]),
        );
    assert!(ok, "{err}");
    assert_eq!(cli_json(&s, &["describe-addresses"])["items"], json!([]));

    // Tear down in order; each step through the CLI.
    let (st, _) = call(
        &s,
        &admin,
        "DELETE",
        &format!("/nuage/v1/ports/{port_id}"),
        None,
    )
    .await;
    assert_eq!(st, 409, "a device's port is not deleted by hand");
    cli_json(
        &s,
        &["router", "remove-interface", &r_id, "--subnet", &sub_id],
    );
    let r = cli_json(&s, &["router", "set-gateway", &r_id, "--clear"]);
    assert_eq!(r["external_ip"], Value::Null, "{r}");
    let (ok, _, err) = common::run(s.client(nuage_bin()).args(["router", "delete", &r_id]));
    assert!(ok, "{err}");
    assert_eq!(cli_json(&s, &["router", "list"])["items"], json!([]));
}
