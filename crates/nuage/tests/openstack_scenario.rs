//! Issue 13's end-to-end OpenStack scenario against a real `nuage serve`
//! with real runc instances and a real data plane, through the clients
//! OpenStack users have: python3-openstackclient for every step, and
//! openstacksdk (`tests/openstack/scenario.py`) for the same core calls.
//!
//! A network, subnet and router with an external gateway; a security group
//! with rules; a key pair; an uploaded image; two servers with user data
//! (`server create --wait`); list and show, the console log, stop, start and
//! reboot; a floating IP created, added and reached from the external
//! network (a bridge in a namespace this test creates); `server image
//! create` and a server booted from it; the same servers seen through the
//! EC2 API; quotas shown and exceeded; the faults a user meets, each
//! changing nothing; then everything deleted and gone. Nothing is
//! forwarded or NATed in the machine's own namespace. Needs root, runc,
//! busybox-static, nftables, python3-openstackclient and
//! python3-openstacksdk, as CI has.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{osc_fails, osc_ok, osc_text, str_of, Aws, Options, Server};
use nuage_netdriver::testing::NetNs;
use serde_json::Value;

const EXT_HOST: &str = "192.168.102.1";

/// The group's SSH rule, made once and refused as a duplicate the second time.
const SSH_RULE: [&str; 11] = [
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
    "os-sg",
];

/// What every server runs: the file a snapshot must keep, a boot marker on
/// its console, then a banner naming itself on TCP 22.
const USER_DATA: &str = "#!/bin/sh\n[ -f /os-mark ] || echo made-by $(hostname) > /os-mark\necho os-boot $(hostname)\necho os-mark $(cat /os-mark)\nwhile true; do echo ssh-banner $(hostname) | nc -l -p 22; done\n";

/// `openstack ARGS -f json`: its parsed output.
fn eventually<T>(what: &str, s: &Server, f: impl FnMut() -> Option<T>) -> T {
    common::eventually(what, s, Duration::from_secs(60), f)
}

/// The names (or another column) of a list's rows.
fn column(list: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = list
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|r| r[key].as_str().unwrap_or_default().to_string())
        .collect();
    out.sort();
    out
}

/// Every address of a server's `addresses` (openstackclient shows a map
/// of network name to addresses).
fn addresses(server: &Value) -> Vec<String> {
    match &server["addresses"] {
        Value::Object(m) => m
            .values()
            .flat_map(|v| match v {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                Value::String(s) => s.split(", ").map(str::to_string).collect(),
                _ => vec![],
            })
            .collect(),
        Value::String(s) => s
            .split([';', ',', '='])
            .map(str::trim)
            .filter(|x| x.parse::<std::net::IpAddr>().is_ok())
            .map(str::to_string)
            .collect(),
        other => panic!("addresses: {other}"),
    }
}

fn status(s: &Server, server: &str) -> String {
    str_of(&osc_ok(s, &["server", "show", server]), "status").to_string()
}

fn wait_status(s: &Server, server: &str, want: &str) {
    eventually(&format!("{server} never reached {want}"), s, || {
        (status(s, server) == want).then_some(())
    });
}

/// How often the console of `server` shows its boot marker.
fn boots(s: &Server, server: &str, id: &str) -> usize {
    osc_text(s, &["console", "log", "show", server])
        .matches(&format!("os-boot {id}"))
        .count()
}

/// The openstacksdk steps of `tests/openstack/scenario.py`; its stdout.
fn sdk(s: &Server, args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openstack/scenario.py");
    let mut c = s.client("/usr/bin/python3");
    c.arg(script).args(args);
    let (ok, out, err) = common::run(&mut c);
    assert!(
        ok,
        "scenario.py {}: {err}\n{out}\n{}",
        args.join(" "),
        s.logs()
    );
    out
}

#[test]
fn openstack_scenario_from_network_to_everything_deleted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ext = NetNs::create(tmp.path(), "ext").expect("external namespace (run as root)");
    ext.add_bridge("ext0").expect("bridge");
    ext.add_address("ext0", format!("{EXT_HOST}/24").parse().expect("cidr"))
        .expect("address");
    let config = tmp.path().join("nuage.toml");
    std::fs::write(
        &config,
        format!(
            "[network.external]\nbridge = \"ext0\"\nnetns = \"{}\"\ncidr = \"192.168.102.0/24\"\n\
             gateway = \"{EXT_HOST}\"\npool_start = \"192.168.102.10\"\npool_end = \"192.168.102.50\"\n",
            ext.path().display()
        ),
    )
    .expect("config");
    let s = Server::start_with(Options {
        env: vec![("NUAGE_CONFIG".into(), config.display().to_string())],
        ..Options::default()
    });
    let work = tempfile::tempdir().expect("tempdir");
    let aws = Aws {
        srv: &s,
        bin: "aws",
        cwd: work.path(),
    };

    // Network, subnet, router with the external network as its gateway.
    let external = osc_ok(&s, &["network", "list", "--external"]);
    let external = external
        .as_array()
        .and_then(|a| a.first())
        .map(|n| str_of(n, "ID").to_string())
        .unwrap_or_else(|| panic!("no external network: {external}"));
    let net = osc_ok(&s, &["network", "create", "os-net"]);
    let net_id = str_of(&net, "id").to_string();
    let sub = osc_ok(
        &s,
        &[
            "subnet",
            "create",
            "--network",
            "os-net",
            "--subnet-range",
            "10.42.0.0/24",
            "os-sub",
        ],
    );
    assert_eq!(sub["cidr"], "10.42.0.0/24", "{sub}");
    let err = osc_fails(
        &s,
        &[
            "subnet",
            "create",
            "--network",
            "os-net",
            "--subnet-range",
            "10.42.0.0/33",
            "bad-sub",
        ],
    );
    assert!(!err.is_empty());
    let subs = osc_ok(&s, &["subnet", "list", "--network", "os-net"]);
    assert_eq!(column(&subs, "Name"), ["os-sub"], "{subs}");
    osc_ok(&s, &["router", "create", "os-rtr"]);
    osc_text(
        &s,
        &["router", "set", "--external-gateway", &external, "os-rtr"],
    );
    osc_text(&s, &["router", "add", "subnet", "os-rtr", "os-sub"]);
    let rtr = osc_ok(&s, &["router", "show", "os-rtr"]);
    assert!(
        rtr["external_gateway_info"].to_string().contains(&external),
        "{rtr}"
    );

    // A security group with SSH and ICMP.
    osc_ok(
        &s,
        &[
            "security",
            "group",
            "create",
            "--description",
            "ssh",
            "os-sg",
        ],
    );
    osc_ok(&s, &SSH_RULE);
    osc_ok(
        &s,
        &[
            "security",
            "group",
            "rule",
            "create",
            "--protocol",
            "icmp",
            "--remote-ip",
            "0.0.0.0/0",
            "os-sg",
        ],
    );
    let err = osc_fails(&s, &SSH_RULE);
    assert!(
        err.contains("409") || err.to_lowercase().contains("exist"),
        "{err}"
    );

    // A key pair; a second of the same name is refused.
    let key = osc_text(&s, &["keypair", "create", "os-key"]);
    assert!(key.contains("PRIVATE KEY"), "{key}");
    let err = osc_fails(&s, &["keypair", "create", "os-key"]);
    assert!(err.contains("409") || err.contains("exists"), "{err}");

    // An uploaded image: the built-in busybox image (its init runs the
    // user data), downloaded and uploaded again under another name.
    common::build_busybox(&s);
    let tar = work.path().join("busybox.tar");
    osc_text(
        &s,
        &[
            "image",
            "save",
            "--file",
            tar.to_str().expect("path"),
            "busybox",
        ],
    );
    let img = osc_ok(
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
            "os-img",
        ],
    );
    // openstackclient prints the image as created, before its upload.
    assert_eq!(img["name"], "os-img", "{img}");
    let img = osc_ok(&s, &["image", "show", "os-img"]);
    assert_eq!(img["status"], "active", "{img}");
    let user_data = work.path().join("user-data");
    std::fs::write(&user_data, USER_DATA).expect("user data");
    let user_data = user_data.to_str().expect("path");

    // Faults before any server: each names the problem and creates none.
    for (args, want) in [
        (vec!["--flavor", "no.such", "--image", "os-img"], "flavor"),
        (
            vec!["--flavor", "t2.nano", "--image", "ami-00000000"],
            "image",
        ),
    ] {
        let mut cmd = vec!["server", "create", "--network", "os-net"];
        cmd.extend(args);
        cmd.push("os-bad");
        let err = osc_fails(&s, &cmd);
        assert!(err.to_lowercase().contains(want), "{err}");
    }
    let err = osc_fails(
        &s,
        &[
            "server",
            "create",
            "--flavor",
            "t2.nano",
            "--image",
            "os-img",
            "--nic",
            "net-id=00000000-0000-0000-0000-000000000000",
            "os-bad",
        ],
    );
    assert!(!err.is_empty());
    let err = osc_fails(&s, &["--os-compute-api-version", "2.999", "server", "list"]);
    assert!(
        err.contains("2.999") || err.contains("406") || err.contains("version"),
        "{err}"
    );
    assert_eq!(osc_ok(&s, &["server", "list"]), Value::Array(vec![]));

    // Two servers, each waited for.
    let mut ids = Vec::new();
    for name in ["os-web-1", "os-web-2"] {
        let srv = osc_ok(
            &s,
            &[
                "server",
                "create",
                "--flavor",
                "t2.nano",
                "--image",
                "os-img",
                "--network",
                "os-net",
                "--security-group",
                "os-sg",
                "--key-name",
                "os-key",
                "--user-data",
                user_data,
                "--property",
                "stage=e2e",
                "--wait",
                name,
            ],
        );
        assert_eq!(srv["status"], "ACTIVE", "{srv}");
        ids.push(str_of(&srv, "id").to_string());
    }
    let list = osc_ok(&s, &["server", "list", "--long"]);
    assert_eq!(column(&list, "Name"), ["os-web-1", "os-web-2"], "{list}");
    let show = osc_ok(&s, &["server", "show", "os-web-1"]);
    assert_eq!(show["status"], "ACTIVE", "{show}");
    assert_eq!(show["key_name"], "os-key", "{show}");
    assert!(
        show["security_groups"].to_string().contains("os-sg"),
        "{show}"
    );
    let fixed = addresses(&show);
    assert_eq!(fixed.len(), 1, "{show}");
    assert!(fixed[0].starts_with("10.42.0."), "{show}");
    for (name, id) in ["os-web-1", "os-web-2"].iter().zip(&ids) {
        eventually("the user data never showed on the console", &s, || {
            (boots(&s, name, id) == 1).then_some(())
        });
    }

    // One state, two APIs: EC2 sees the same server, name and address.
    let d = aws.json(&["ec2", "describe-instances", "--instance-ids", &ids[0]]);
    let i = &d["Reservations"][0]["Instances"][0];
    assert_eq!(i["PrivateIpAddress"], fixed[0].as_str(), "{d}");
    let tags = i["Tags"].to_string();
    assert!(tags.contains("os-web-1"), "{d}");
    assert!(i["SecurityGroups"].to_string().contains("os-sg"), "{d}");

    // A floating IP, added, reached from the external network.
    let fip = osc_ok(&s, &["floating", "ip", "create", &external]);
    let public = str_of(&fip, "floating_ip_address").to_string();
    assert!(public.starts_with("192.168.102."), "{fip}");
    osc_text(
        &s,
        &["server", "add", "floating", "ip", "os-web-1", &public],
    );
    let ssh: SocketAddr = format!("{public}:22").parse().expect("addr");
    let want = format!("ssh-banner {}", ids[0]);
    let reach = |what: &str| {
        eventually(what, &s, || {
            (common::ping_from(&ext, &public)
                && common::banner_from(&ext, ssh).as_deref() == Some(want.as_str()))
            .then_some(())
        })
    };
    reach("the external host never reached os-web-1 by its floating IP");
    let show = osc_ok(&s, &["server", "show", "os-web-1"]);
    assert!(addresses(&show).contains(&public), "{show}");
    let d = aws.json(&["ec2", "describe-instances", "--instance-ids", &ids[0]]);
    assert_eq!(
        d["Reservations"][0]["Instances"][0]["PublicIpAddress"],
        public.as_str(),
        "{d}"
    );

    // Stop, start, reboot; an action invalid in the state is refused.
    osc_text(&s, &["server", "stop", "os-web-1"]);
    wait_status(&s, "os-web-1", "SHUTOFF");
    let err = osc_fails(&s, &["server", "stop", "os-web-1"]);
    assert!(err.contains("409") || err.contains("Cannot"), "{err}");
    osc_text(&s, &["server", "start", "os-web-1"]);
    wait_status(&s, "os-web-1", "ACTIVE");
    eventually("no second boot after the start", &s, || {
        (boots(&s, "os-web-1", &ids[0]) == 2).then_some(())
    });
    osc_text(&s, &["server", "reboot", "--wait", "os-web-1"]);
    eventually("no third boot after the reboot", &s, || {
        (boots(&s, "os-web-1", &ids[0]) == 3).then_some(())
    });
    reach("os-web-1 is not reachable after stop, start and reboot");

    // An image of the running server, and a server booted from it: its
    // disk holds the file os-web-1 wrote.
    osc_text(
        &s,
        &[
            "server", "image", "create", "--name", "os-snap", "--wait", "os-web-1",
        ],
    );
    let snap = osc_ok(&s, &["image", "show", "os-snap"]);
    assert_eq!(snap["status"], "active", "{snap}");
    let third = osc_ok(
        &s,
        &[
            "server",
            "create",
            "--flavor",
            "t2.nano",
            "--image",
            "os-snap",
            "--network",
            "os-net",
            "--user-data",
            user_data,
            "--wait",
            "os-from-snap",
        ],
    );
    let third_id = str_of(&third, "id").to_string();
    eventually("the snapshot's file never showed", &s, || {
        osc_text(&s, &["console", "log", "show", "os-from-snap"])
            .contains(&format!("os-mark made-by {}", ids[0]))
            .then_some(())
    });

    // openstacksdk: the same core calls.
    sdk(&s, &["check", &net_id, &ids[0], &ids[1], &third_id]);

    // Quotas: shown, then exceeded (nothing created), then restored.
    let project = s.env()["OS_PROJECT_NAME"].clone();
    let q = osc_ok(&s, &["quota", "show", &project]);
    assert!(q.to_string().contains("instances"), "{q}");
    osc_text(&s, &["quota", "set", "--instances", "3", &project]);
    let err = osc_fails(
        &s,
        &[
            "server",
            "create",
            "--flavor",
            "t2.nano",
            "--image",
            "os-img",
            "--network",
            "os-net",
            "os-over",
        ],
    );
    assert!(err.to_lowercase().contains("quota"), "{err}");
    let list = osc_ok(&s, &["server", "list"]);
    assert_eq!(list.as_array().map(Vec::len), Some(3), "{list}");
    osc_text(&s, &["quota", "set", "--instances", "20", &project]);

    // Everything deleted and gone.
    osc_text(
        &s,
        &["server", "remove", "floating", "ip", "os-web-1", &public],
    );
    osc_text(&s, &["floating", "ip", "delete", &public]);
    osc_text(
        &s,
        &[
            "server",
            "delete",
            "--wait",
            "os-web-1",
            "os-web-2",
            "os-from-snap",
        ],
    );
    assert_eq!(osc_ok(&s, &["server", "list"]), Value::Array(vec![]));
    osc_text(&s, &["image", "delete", "os-snap", "os-img"]);
    osc_text(&s, &["keypair", "delete", "os-key"]);
    osc_text(&s, &["security", "group", "delete", "os-sg"]);
    osc_text(&s, &["router", "remove", "subnet", "os-rtr", "os-sub"]);
    osc_text(&s, &["router", "delete", "os-rtr"]);
    osc_text(&s, &["subnet", "delete", "os-sub"]);
    osc_text(&s, &["network", "delete", "os-net"]);
    let nets = osc_ok(&s, &["network", "list"]);
    assert!(
        !column(&nets, "Name").contains(&"os-net".to_string()),
        "{nets}"
    );
    assert!(osc_ok(&s, &["floating", "ip", "list"])
        .as_array()
        .is_some_and(Vec::is_empty));
    let d = aws.json(&["ec2", "describe-addresses"]);
    assert_eq!(d["Addresses"], Value::Array(vec![]), "{d}");
}
