//! The OpenStack Networking (Neutron) v2.0 door (issue 13, ADR 33):
//! networks, subnets, routers with an external gateway, ports, security
//! groups and rules, floating IPs, quotas and extensions, driven by the
//! real `openstack` CLI (python3-openstackclient) against a real `nuage
//! serve` without a compute node, and read back through the aws CLI: one
//! state, several doors. Faults are provoked over raw HTTP, each checked
//! to change nothing. Nothing here makes a bridge or a rule: the service
//! writes the store; the external network is 203.0.113.0/24 (TEST-NET-3)
//! in the store only.

mod common;

use common::{
    call, osc_fails, osc_ok, osc_text, project_with_member, start_without_compute as start_plain,
    str_of, Cli, Server,
};
use serde_json::{json, Value};

const PW: &str = "correct horse battery staple";

fn column(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| match &x[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// A raw Networking API request: (status, JSON body or Null).
async fn neutron(
    s: &Server,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = s.http().request(m, format!("{}/networking{path}", s.url()));
    if let Some(t) = token {
        rb = rb.header("x-auth-token", t);
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

fn fault_type(v: &Value) -> &str {
    v["NeutronError"]["type"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread")]
async fn openstack_cli_networks_routers_ports_groups_and_floating_ips() {
    let s = start_plain();
    let work = tempfile::tempdir().expect("tempdir");

    // The catalog names the door; the extensions say what it serves.
    let ext = osc_ok(&s, &["extension", "list", "--network"]);
    let aliases = column(&ext, "Alias");
    for want in ["router", "external-net", "security-group", "quotas"] {
        assert!(aliases.iter().any(|a| a == want), "{want}: {aliases:?}");
    }

    // The operator's external network (admin only attributes).
    let extnet = osc_ok(&s, &["network", "create", "--external", "--share", "ext"]);
    let ext_id = str_of(&extnet, "id").to_string();
    assert_eq!(extnet["router:external"], true, "{extnet}");
    osc_ok(
        &s,
        &[
            "subnet",
            "create",
            "--network",
            "ext",
            "--subnet-range",
            "203.0.113.0/24",
            "ext-sub",
        ],
    );

    // A network, renamed, with a subnet whose gateway and pool are given.
    let n = osc_ok(&s, &["network", "create", "--description", "blue", "net1"]);
    assert_eq!(n["description"], "blue", "{n}");
    let net_id = str_of(&n, "id").to_string();
    assert!(net_id.starts_with("vpc-"), "{n}");
    assert_eq!(n["status"], "ACTIVE", "{n}");
    osc_text(
        &s,
        &[
            "network",
            "set",
            "--name",
            "net1b",
            "--description",
            "green",
            "net1",
        ],
    );
    let shown = osc_ok(&s, &["network", "show", &net_id]);
    assert_eq!(shown["name"], "net1b", "{shown}");
    assert_eq!(shown["description"], "green", "{shown}");
    let all = column(&osc_ok(&s, &["network", "list"]), "ID");
    assert!(all.contains(&net_id) && all.contains(&ext_id), "{all:?}");
    let external = column(&osc_ok(&s, &["network", "list", "--external"]), "ID");
    assert_eq!(external, vec![ext_id.clone()]);

    let sub = osc_ok(
        &s,
        &[
            "subnet",
            "create",
            "--network",
            "net1b",
            "--subnet-range",
            "10.1.0.0/24",
            "--gateway",
            "10.1.0.1",
            "--allocation-pool",
            "start=10.1.0.10,end=10.1.0.100",
            "sub1",
        ],
    );
    let sub_id = str_of(&sub, "id").to_string();
    assert_eq!(sub["cidr"], "10.1.0.0/24", "{sub}");
    assert_eq!(sub["gateway_ip"], "10.1.0.1", "{sub}");
    let pools = sub["allocation_pools"].to_string();
    assert!(
        pools.contains("10.1.0.10") && pools.contains("10.1.0.100"),
        "{sub}"
    );

    // A router with its gateway on the external network, joining sub1.
    let r = osc_ok(&s, &["router", "create", "r1"]);
    let router_id = str_of(&r, "id").to_string();
    osc_text(&s, &["router", "set", "--external-gateway", "ext", "r1"]);
    let r = osc_ok(&s, &["router", "show", "r1"]);
    assert!(
        r["external_gateway_info"].to_string().contains(&ext_id),
        "{r}"
    );
    osc_text(&s, &["router", "add", "subnet", "r1", "sub1"]);
    // Its ports: the interface holding sub1's gateway, and its gateway
    // port on the external network.
    let ports = osc_ok(&s, &["port", "list", "--router", "r1", "--long"]);
    let mut owners = column(&ports, "Device Owner");
    owners.sort();
    assert_eq!(
        owners,
        ["network:router_gateway", "network:router_interface"],
        "{ports}"
    );
    let text = ports.to_string();
    assert!(
        text.contains("\"10.1.0.1\"") && text.contains("203.0.113."),
        "{ports}"
    );
    // The router is in use while it joins a subnet.
    let err = osc_fails(&s, &["router", "delete", "r1"]);
    assert!(err.contains("409") || err.contains("in use"), "{err}");

    // A port with an address asked for.
    let p = osc_ok(
        &s,
        &[
            "port",
            "create",
            "--network",
            "net1b",
            "--fixed-ip",
            "subnet=sub1,ip-address=10.1.0.50",
            "p1",
        ],
    );
    let port_id = str_of(&p, "id").to_string();
    assert!(p["fixed_ips"].to_string().contains("10.1.0.50"), "{p}");
    let ports = column(&osc_ok(&s, &["port", "list", "--network", "net1b"]), "ID");
    assert!(ports.contains(&port_id), "{ports:?}");
    let shown = osc_ok(&s, &["port", "show", "p1"]);
    assert_eq!(shown["network_id"], net_id.as_str(), "{shown}");
    // The same address twice is refused, and makes no port.
    let err = osc_fails(
        &s,
        &[
            "port",
            "create",
            "--network",
            "net1b",
            "--fixed-ip",
            "subnet=sub1,ip-address=10.1.0.50",
            "p2",
        ],
    );
    assert!(err.contains("409") || err.contains("already"), "{err}");
    let ports = osc_ok(&s, &["port", "list", "--network", "net1b"]);
    assert_eq!(ports.as_array().map(Vec::len), Some(2), "{ports}");

    // A security group with an SSH rule; a duplicate rule is refused.
    let g = osc_ok(&s, &["security", "group", "create", "web"]);
    let group_id = str_of(&g, "id").to_string();
    let rule = osc_ok(
        &s,
        &[
            "security",
            "group",
            "rule",
            "create",
            "--protocol",
            "tcp",
            "--dst-port",
            "22",
            "--remote-ip",
            "0.0.0.0/0",
            "web",
        ],
    );
    let rule_id = str_of(&rule, "id").to_string();
    assert_eq!(rule["port_range_min"], 22, "{rule}");
    let err = osc_fails(
        &s,
        &[
            "security",
            "group",
            "rule",
            "create",
            "--protocol",
            "tcp",
            "--dst-port",
            "22",
            "--remote-ip",
            "0.0.0.0/0",
            "web",
        ],
    );
    assert!(err.contains("409") || err.contains("exists"), "{err}");
    // The new group's own egress rule, as Neutron's, and the SSH one.
    let rules = osc_ok(&s, &["security", "group", "rule", "list", "web", "--long"]);
    assert!(column(&rules, "ID").contains(&rule_id), "{rules}");
    let mut directions = column(&rules, "Direction");
    directions.sort();
    assert_eq!(directions, ["egress", "ingress"], "{rules}");
    osc_text(
        &s,
        &[
            "port",
            "set",
            "--no-security-group",
            "--security-group",
            "web",
            "p1",
        ],
    );
    let shown = osc_ok(&s, &["port", "show", "p1"]);
    assert_eq!(shown["security_group_ids"], json!([group_id]), "{shown}");
    let err = osc_fails(&s, &["security", "group", "delete", "web"]);
    assert!(err.contains("409") || err.contains("in use"), "{err}");

    // A floating IP from the external network, associated and not.
    let f = osc_ok(&s, &["floating", "ip", "create", "ext"]);
    let fip_id = str_of(&f, "id").to_string();
    let address = str_of(&f, "floating_ip_address").to_string();
    assert!(address.starts_with("203.0.113."), "{f}");
    osc_text(&s, &["floating", "ip", "set", "--port", "p1", &fip_id]);
    let shown = osc_ok(&s, &["floating", "ip", "show", &fip_id]);
    assert_eq!(shown["port_id"], port_id.as_str(), "{shown}");
    assert_eq!(shown["fixed_ip_address"], "10.1.0.50", "{shown}");
    assert_eq!(shown["router_id"], router_id.as_str(), "{shown}");
    let listed = column(
        &osc_ok(&s, &["floating", "ip", "list"]),
        "Floating IP Address",
    );
    assert_eq!(listed, vec![address.clone()]);

    // The same objects through EC2.
    let aws = Cli {
        s: &s,
        bin: "aws",
        cwd: work.path(),
        creds: None,
    };
    let vpcs = aws.json(&["ec2", "describe-vpcs", "--vpc-ids", &net_id]);
    assert_eq!(vpcs["Vpcs"][0]["VpcId"], net_id.as_str(), "{vpcs}");
    let subnets = aws.json(&["ec2", "describe-subnets", "--subnet-ids", &sub_id]);
    assert_eq!(
        subnets["Subnets"][0]["CidrBlock"], "10.1.0.0/24",
        "{subnets}"
    );
    let groups = aws.json(&["ec2", "describe-security-groups", "--group-ids", &group_id]);
    assert_eq!(groups["SecurityGroups"][0]["GroupName"], "web", "{groups}");
    assert_eq!(
        groups["SecurityGroups"][0]["IpPermissions"][0]["FromPort"], 22,
        "{groups}"
    );
    let addrs = aws.json(&["ec2", "describe-addresses"]);
    assert_eq!(
        addrs["Addresses"][0]["PublicIp"],
        address.as_str(),
        "{addrs}"
    );
    assert_eq!(
        addrs["Addresses"][0]["AllocationId"],
        fip_id.as_str(),
        "{addrs}"
    );
    assert_eq!(
        addrs["Addresses"][0]["PrivateIpAddress"], "10.1.0.50",
        "{addrs}"
    );

    osc_text(&s, &["floating", "ip", "unset", "--port", &fip_id]);
    let shown = osc_ok(&s, &["floating", "ip", "show", &fip_id]);
    assert_eq!(shown["port_id"], Value::Null, "{shown}");

    // The long listings openstackclient formats from every attribute.
    for args in [
        &["network", "list", "--long"][..],
        &["subnet", "list", "--long"],
        &["router", "list", "--long"],
        &["port", "list", "--long"],
        &["security", "group", "list"],
        &["floating", "ip", "list", "--long"],
        &["availability", "zone", "list", "--network"],
    ] {
        let rows = osc_ok(&s, args);
        assert!(
            rows.as_array().is_some_and(|r| !r.is_empty()),
            "{args:?}: {rows}"
        );
    }
    let sub_list = column(&osc_ok(&s, &["subnet", "list", "--network", "net1b"]), "ID");
    assert_eq!(sub_list, vec![sub_id.clone()]);

    // Quotas: identity's floating_ips is Neutron's floatingip.
    let q = osc_ok(&s, &["quota", "show"]);
    assert_eq!(q["floating-ips"], 10, "{q}");
    let project = s.env()["OS_PROJECT_NAME"].clone();
    osc_text(&s, &["quota", "set", "--floating-ips", "3", &project]);
    let q = osc_ok(&s, &["quota", "show"]);
    assert_eq!(q["floating-ips"], 3, "{q}");

    // In-use deletes are refused and change nothing.
    let err = osc_fails(&s, &["network", "delete", "net1b"]);
    assert!(err.contains("409") || err.contains("in use"), "{err}");
    let err = osc_fails(&s, &["subnet", "delete", "sub1"]);
    assert!(err.contains("409") || err.contains("in use"), "{err}");
    osc_ok(&s, &["network", "show", &net_id]);

    // Tear down, in order.
    osc_text(&s, &["floating", "ip", "delete", &fip_id]);
    osc_text(&s, &["security", "group", "rule", "delete", &rule_id]);
    osc_text(&s, &["port", "delete", "p1"]);
    osc_text(&s, &["security", "group", "delete", "web"]);
    osc_text(&s, &["router", "remove", "subnet", "r1", "sub1"]);
    osc_text(&s, &["router", "unset", "--external-gateway", "r1"]);
    let r = osc_ok(&s, &["router", "show", "r1"]);
    assert_eq!(r["external_gateway_info"], Value::Null, "{r}");
    osc_text(&s, &["router", "delete", "r1"]);
    osc_text(&s, &["subnet", "delete", "sub1"]);
    osc_text(&s, &["network", "delete", "net1b"]);
    let all = column(&osc_ok(&s, &["network", "list"]), "ID");
    assert!(!all.contains(&net_id), "{all:?}");
    // EC2 no longer knows the VPC either.
    aws.fails(
        "InvalidVpcID.NotFound",
        &["ec2", "describe-vpcs", "--vpc-ids", &net_id],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_paging_and_projects_change_nothing() {
    let s = start_plain();
    let admin = s.admin_token().await;
    let t = Some(admin.as_str());

    // Discovery without a token; everything else needs one.
    let (st, v) = neutron(&s, None, "GET", "/", None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["versions"][0]["id"], "v2.0", "{v}");
    let (st, v) = neutron(&s, None, "GET", "/v2.0/networks", None).await;
    assert_eq!(st, 401, "{v}");
    let (st, v) = neutron(
        &s,
        t,
        "GET",
        "/v2.0/availability_zones?resource=network",
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["availability_zones"][0]["resource"], "network", "{v}");
    let (st, v) = neutron(&s, t, "GET", "/v2.0/extensions/router", None).await;
    assert_eq!(
        (st, &v["extension"]["alias"]),
        (200, &json!("router")),
        "{v}"
    );
    let (st, v) = neutron(&s, t, "GET", "/v2.0/extensions/dvr", None).await;
    assert_eq!(st, 404, "{v}");

    let (st, v) = neutron(
        &s,
        t,
        "POST",
        "/v2.0/networks",
        Some(r#"{"network": {"name": "a"}}"#),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let net = str_of(&v["network"], "id").to_string();
    let count = |v: &Value| v["networks"].as_array().map_or(0, Vec::len);
    let (_, before) = neutron(&s, t, "GET", "/v2.0/networks", None).await;

    // Malformed, mistyped and unknown input: 400, nothing made.
    for body in [
        r#"{"network": {"name": "b""#,
        r#"{"network": {"name": 7}}"#,
        r#"{"network": {"name": "b", "colour": "red"}}"#,
        r#"{"networks": {"name": "b"}}"#,
        r#"[]"#,
    ] {
        let (st, v) = neutron(&s, t, "POST", "/v2.0/networks", Some(body)).await;
        assert_eq!(st, 400, "{body}: {v}");
        assert!(v["NeutronError"]["message"].is_string(), "{v}");
    }
    let long = json!({"network": {"name": "b", "description": "x".repeat(256)}}).to_string();
    let (st, v) = neutron(&s, t, "POST", "/v2.0/networks", Some(&long)).await;
    assert_eq!((st, fault_type(&v)), (400, "InvalidInput"), "{v}");
    let (_, after) = neutron(&s, t, "GET", "/v2.0/networks", None).await;
    assert_eq!(count(&before), count(&after), "{after}");

    // Unknown ids, paths and methods.
    let (st, v) = neutron(&s, t, "GET", "/v2.0/networks/vpc-0000000000000000", None).await;
    assert_eq!((st, fault_type(&v)), (404, "NetworkNotFound"), "{v}");
    let (st, v) = neutron(&s, t, "DELETE", "/v2.0/ports/eni-0000000000000000", None).await;
    assert_eq!((st, fault_type(&v)), (404, "PortNotFound"), "{v}");
    let (st, _) = neutron(&s, t, "GET", "/v2.0/rockets", None).await;
    assert_eq!(st, 404);
    let (st, _) = neutron(&s, t, "PATCH", "/v2.0/networks", None).await;
    assert_eq!(st, 405);
    let (st, v) = neutron(&s, t, "GET", "/v2.0/networks?colour=red", None).await;
    assert_eq!(st, 400, "{v}");

    // A bad CIDR, an IPv6 subnet and an overlapping one: 400, no subnet.
    for cidr in ["10.0.0.0/33", "10.0.0.1/24", "banana"] {
        let body = json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}});
        let (st, v) = neutron(&s, t, "POST", "/v2.0/subnets", Some(&body.to_string())).await;
        assert_eq!((st, fault_type(&v)), (400, "InvalidInput"), "{cidr}: {v}");
    }
    let body = json!({"subnet": {"network_id": net, "cidr": "10.9.0.0/24", "ip_version": 4}});
    let (st, v) = neutron(&s, t, "POST", "/v2.0/subnets", Some(&body.to_string())).await;
    assert_eq!(st, 201, "{v}");
    let body = json!({"subnet": {"network_id": net, "cidr": "10.9.0.128/25", "ip_version": 4}});
    let (st, v) = neutron(&s, t, "POST", "/v2.0/subnets", Some(&body.to_string())).await;
    assert_eq!(st, 400, "{v}");
    let (_, v) = neutron(&s, t, "GET", &format!("/v2.0/networks/{net}"), None).await;
    assert_eq!(
        v["network"]["subnets"].as_array().map(Vec::len),
        Some(1),
        "{v}"
    );

    // Another project sees neither the network nor its id.
    let (_pid, _) = project_with_member(&s, "other", PW).await;
    let theirs = s.token_for("other-user", PW, Some("other")).await;
    let o = Some(theirs.as_str());
    let (st, v) = neutron(&s, o, "GET", &format!("/v2.0/networks/{net}"), None).await;
    assert_eq!((st, fault_type(&v)), (404, "NetworkNotFound"), "{v}");
    let (st, v) = neutron(&s, o, "DELETE", &format!("/v2.0/networks/{net}"), None).await;
    assert_eq!(st, 404, "{v}");
    let body = json!({"network": {"name": "stolen"}}).to_string();
    let (st, _) = neutron(&s, o, "PUT", &format!("/v2.0/networks/{net}"), Some(&body)).await;
    assert_eq!(st, 404);
    let (_, v) = neutron(&s, o, "GET", "/v2.0/networks", None).await;
    assert!(!v.to_string().contains(&net), "{v}");
    let (_, v) = neutron(&s, t, "GET", &format!("/v2.0/networks/{net}"), None).await;
    assert_eq!(v["network"]["name"], "a", "{v}");
    // Admin attributes are the admin's.
    let body = json!({"network": {"name": "x", "router:external": true}}).to_string();
    let (st, v) = neutron(&s, o, "POST", "/v2.0/networks", Some(&body)).await;
    assert_eq!((st, fault_type(&v)), (403, "PolicyNotAuthorized"), "{v}");
    // The admin narrows to a project with a filter.
    let body = json!({"network": {"name": "theirs"}}).to_string();
    let (st, v) = neutron(&s, o, "POST", "/v2.0/networks", Some(&body)).await;
    assert_eq!(st, 201, "{v}");
    let their_project = str_of(&v["network"], "project_id").to_string();
    assert_eq!(v["network"]["tenant_id"], their_project.as_str(), "{v}");
    let (_, v) = neutron(
        &s,
        t,
        "GET",
        &format!("/v2.0/networks?project_id={their_project}"),
        None,
    )
    .await;
    assert_eq!(column(&v["networks"], "name"), vec!["theirs"], "{v}");

    // Paging, sorting and fields as openstacksdk sends them.
    for name in ["p1", "p2", "p3"] {
        let body = json!({"network": {"name": name}}).to_string();
        let (st, _) = neutron(&s, t, "POST", "/v2.0/networks", Some(&body)).await;
        assert_eq!(st, 201);
    }
    let (st, v) = neutron(
        &s,
        t,
        "GET",
        "/v2.0/networks?name=p1&name=p2&name=p3&sort_key=name&sort_dir=desc&limit=2&fields=id&fields=name",
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(column(&v["networks"], "name"), vec!["p3", "p2"], "{v}");
    assert_eq!(
        v["networks"][0].as_object().map(|o| o.len()),
        Some(2),
        "{v}"
    );
    let next = str_of(&v["networks_links"][0], "href").to_string();
    let path = next
        .split("/networking")
        .nth(1)
        .expect("next link")
        .to_string();
    let (st, v) = neutron(&s, t, "GET", &path, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(column(&v["networks"], "name"), vec!["p1"], "{v}");
    assert!(v.get("networks_links").is_none(), "{v}");

    // Tags as strings, seen by EC2 as keys.
    let (st, _) = neutron(
        &s,
        t,
        "PUT",
        &format!("/v2.0/networks/{net}/tags/blue"),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let (_, v) = neutron(&s, t, "GET", "/v2.0/networks?tags=blue", None).await;
    assert_eq!(column(&v["networks"], "id"), vec![net.clone()], "{v}");
    let (st, v) = neutron(&s, o, "GET", &format!("/v2.0/networks/{net}/tags"), None).await;
    assert_eq!((st, fault_type(&v)), (404, "NetworkNotFound"), "{v}");
    let (st, _) = neutron(
        &s,
        o,
        "PUT",
        &format!("/v2.0/networks/{net}/tags/red"),
        None,
    )
    .await;
    assert_eq!(st, 404);
    let (_, v) = neutron(&s, t, "GET", &format!("/v2.0/networks/{net}/tags"), None).await;
    assert_eq!(v["tags"], json!(["blue"]), "{v}");
    let (st, _) = neutron(
        &s,
        t,
        "DELETE",
        &format!("/v2.0/networks/{net}/tags/blue"),
        None,
    )
    .await;
    assert_eq!(st, 204);
    let (st, v) = neutron(
        &s,
        t,
        "DELETE",
        &format!("/v2.0/networks/{net}/tags/blue"),
        None,
    )
    .await;
    assert_eq!(st, 404, "{v}");

    // Quotas: the floating IP limit is identity's, set through Neutron.
    let body = json!({"quota": {"floatingip": 0}}).to_string();
    let (st, v) = neutron(
        &s,
        t,
        "PUT",
        &format!("/v2.0/quotas/{their_project}"),
        Some(&body),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["quota"]["floatingip"], 0, "{v}");
    let (_, q) = call(
        &s,
        &admin,
        "GET",
        &format!("/nuage/v1/projects/{their_project}/quotas"),
        None,
    )
    .await;
    assert!(q.to_string().contains("floating_ips"), "{q}");
    let (_, v) = neutron(
        &s,
        t,
        "GET",
        &format!("/v2.0/quotas/{their_project}/default"),
        None,
    )
    .await;
    assert_eq!(v["quota"]["floatingip"], 10, "{v}");
    let body = json!({"quota": {"network": 5}}).to_string();
    let (st, _) = neutron(
        &s,
        t,
        "PUT",
        &format!("/v2.0/quotas/{their_project}"),
        Some(&body),
    )
    .await;
    assert_eq!(st, 400);
    let (st, v) = neutron(
        &s,
        o,
        "GET",
        &format!("/v2.0/quotas/{their_project}/details"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["quota"]["network"]["used"], 1, "{v}");
    assert_eq!(v["quota"]["floatingip"]["limit"], 0, "{v}");
}

/// openstacksdk (python3-openstacksdk) on the same calls: creation,
/// marker paging through `networks_links` (three pages of two), lookups
/// by name,
/// updates, a not-found error, deletion.
const SDK_SCRIPT: &str = r#"
import json, openstack
from openstack import exceptions
conn = openstack.connect()
net = conn.network
made = [net.create_network(name="sdk%d" % i) for i in (3, 1, 4, 0, 2)]
paged = sorted(n.name for n in net.networks(limit=2) if n.name.startswith("sdk"))
found = net.find_network("sdk4")
sub = net.create_subnet(network_id=found.id, cidr="10.20.0.0/24", ip_version=4,
                        name="sdksub", dns_nameservers=["10.20.0.53"])
renamed = net.update_network(found, name="sdk4b").name
try:
    net.get_network("vpc-0000000000000000")
    missing = "found"
except exceptions.ResourceNotFound:
    missing = "not found"
net.delete_subnet(sub)
for n in made:
    net.delete_network(n)
left = [n.name for n in net.networks() if n.name.startswith("sdk")]
print(json.dumps({"paged": paged, "renamed": renamed, "missing": missing,
                  "dns": sub.dns_nameservers, "left": left}))
"#;

#[test]
fn openstacksdk_pages_finds_updates_and_deletes() {
    let s = start_plain();
    let mut c = s.client("/usr/bin/python3");
    c.args(["-c", SDK_SCRIPT]);
    let (ok, out, err) = common::run(&mut c);
    assert!(ok, "openstacksdk script: {err}\n{}", s.logs());
    let v: Value = serde_json::from_str(out.trim()).expect("script output");
    assert_eq!(
        v["paged"],
        json!(["sdk0", "sdk1", "sdk2", "sdk3", "sdk4"]),
        "{v}"
    );
    assert_eq!(v["renamed"], "sdk4b", "{v}");
    assert_eq!(v["missing"], "not found", "{v}");
    assert_eq!(v["dns"], json!(["10.20.0.53"]), "{v}");
    assert_eq!(v["left"], json!([]), "{v}");
}
