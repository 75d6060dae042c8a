//! Launches that networking refuses, end to end through the native API of a
//! real `nuage serve` (the `fake` compute driver: instances need no runc
//! here, their ports and addresses are the store's): a launch onto another
//! project's network is refused with a clear error and changes nothing,
//! and a launch refused for any reason (a foreign or unknown security
//! group, the instance quota) leaves IPAM as it was: the next instance
//! gets the next address.

mod common;

use common::{build_busybox, call, project_with_member, Options, Server};
use serde_json::{json, Value};

const PW: &str = "correct horse battery staple";

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

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().expect("items").clone()
}

async fn launch(s: &Server, t: &str, body: Value) -> (u16, Value) {
    call(s, t, "POST", "/nuage/v1/instances", Some(body)).await
}

/// The addresses held on `subnet`, as an admin sees every project's ports.
async fn held(s: &Server, admin: &str, network: &str) -> Vec<String> {
    let ports = expect(
        s,
        admin,
        "GET",
        "/nuage/v1/ports?all_projects=true",
        None,
        200,
    )
    .await;
    let mut out: Vec<String> = items(&ports)
        .iter()
        .filter(|p| p["network_id"] == network)
        .flat_map(|p| {
            p["fixed_ips"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|ip| ip["ip_address"].as_str().unwrap_or_default().to_string())
        })
        .collect();
    out.sort();
    out
}

fn fake_driver() -> Vec<(String, String)> {
    vec![("NUAGE_COMPUTE_DRIVER".into(), "fake".into())]
}

#[tokio::test]
async fn refused_launches_change_nothing_and_leave_ipam_as_it_was() {
    refusals(Server::start_with(Options {
        env: fake_driver(),
        ..Options::default()
    }))
    .await;
}

/// The same on PostgreSQL (NUAGE_TEST_POSTGRES).
#[tokio::test]
async fn refused_launches_on_postgres() {
    let url = nuage_store::testing::fresh_postgres_url()
        .await
        .expect("a fresh PostgreSQL database");
    refusals(Server::start_with(Options {
        database: Some(url),
        env: fake_driver(),
        ..Options::default()
    }))
    .await;
}

async fn refusals(s: Server) {
    build_busybox(&s);
    let admin = s.admin_token().await;
    let (alpha_id, _) = project_with_member(&s, "alpha", PW).await;
    let a = s.token_for("alpha-user", PW, Some("alpha")).await;
    project_with_member(&s, "beta", PW).await;
    let b = s.token_for("beta-user", PW, Some("beta")).await;

    let net = expect(
        &s,
        &a,
        "POST",
        "/nuage/v1/networks",
        Some(json!({"name": "net-a"})),
        201,
    )
    .await;
    let net_id = net["id"].as_str().expect("id").to_string();
    expect(
        &s,
        &a,
        "POST",
        "/nuage/v1/subnets",
        Some(json!({"network_id": net_id, "cidr": "10.1.0.0/24"})),
        201,
    )
    .await;
    let beta_group = expect(
        &s,
        &b,
        "POST",
        "/nuage/v1/security-groups",
        Some(json!({"name": "b-web"})),
        201,
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string();

    // Beta launches onto alpha's network: refused, and nothing is made.
    let (st, v) = launch(
        &s,
        &b,
        json!({"image_id": "busybox", "instance_type": "t2.nano", "network_id": net_id}),
    )
    .await;
    assert_eq!(st, 404, "{v}");
    let m = v["error"]["message"].as_str().unwrap_or_default();
    assert!(m.contains(&net_id), "the error names the network: {v}");
    let beta_instances = expect(&s, &b, "GET", "/nuage/v1/instances", None, 200).await;
    assert!(items(&beta_instances).is_empty(), "{beta_instances}");
    let beta_ports = expect(&s, &b, "GET", "/nuage/v1/ports", None, 200).await;
    assert!(items(&beta_ports).is_empty(), "{beta_ports}");
    let beta_networks = expect(&s, &b, "GET", "/nuage/v1/networks", None, 200).await;
    assert!(
        items(&beta_networks).is_empty(),
        "not even beta's default network: {beta_networks}"
    );
    assert!(held(&s, &admin, &net_id).await.is_empty());

    // Alpha's first instance takes the first address.
    let on_a = |extra: Value| {
        let mut body =
            json!({"image_id": "busybox", "instance_type": "t2.nano", "network_id": net_id});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        body
    };
    let (st, v) = launch(&s, &a, on_a(json!({}))).await;
    assert_eq!(st, 201, "{v}\n{}", s.logs());
    assert_eq!(v["items"][0]["private_ip_address"], "10.1.0.2", "{v}");
    let before = held(&s, &admin, &net_id).await;
    assert_eq!(before, ["10.1.0.2"]);

    // Refusals of every kind, after the port of an earlier instance of the
    // same call may already have been allocated in the transaction.
    for (why, body, status) in [
        (
            "a group of another project",
            on_a(json!({"security_groups": [beta_group], "min_count": 2})),
            404,
        ),
        (
            "a group that does not exist",
            on_a(json!({"security_groups": ["sg-0123456789abcdef0"], "min_count": 2})),
            404,
        ),
        (
            "a network that does not exist",
            json!({"image_id": "busybox", "instance_type": "t2.nano", "network_id": "vpc-0123456789abcdef0"}),
            404,
        ),
    ] {
        let (st, v) = launch(&s, &a, body).await;
        assert_eq!(st, status, "{why}: {v}");
        assert_eq!(
            held(&s, &admin, &net_id).await,
            before,
            "{why}: IPAM unchanged"
        );
    }
    // The quota: alpha may run 2 instances, asks for 3 more.
    expect(
        &s,
        &admin,
        "PUT",
        &format!("/nuage/v1/projects/{alpha_id}/quotas"),
        Some(json!({"instances": 2})),
        200,
    )
    .await;
    let (st, v) = launch(&s, &a, on_a(json!({"min_count": 3}))).await;
    assert_eq!(
        (st, &v["error"]["code"]),
        (413, &json!("quota_exceeded")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("quota"),
        "{v}"
    );
    assert_eq!(held(&s, &admin, &net_id).await, before, "quota: unchanged");
    let alpha_instances = expect(&s, &a, "GET", "/nuage/v1/instances", None, 200).await;
    assert_eq!(items(&alpha_instances).len(), 1, "{alpha_instances}");

    // The next launch gets the next address: nothing was held in between.
    let (st, v) = launch(&s, &a, on_a(json!({}))).await;
    assert_eq!(st, 201, "{v}\n{}", s.logs());
    assert_eq!(v["items"][0]["private_ip_address"], "10.1.0.3", "{v}");
}
