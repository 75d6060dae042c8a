//! Issue 12's end-to-end EC2 scenario against a real `nuage serve` with
//! real runc instances and a real data plane, through the clients EC2
//! users have: awscli 1.x (on PATH) for most steps, Debian's awscli 2.9
//! (/usr/bin/aws, always with --endpoint-url) for some, and boto3 with its
//! waiters and paginators (`tests/ec2/scenario.py`) for others.
//!
//! A key pair, a security group opening SSH and ICMP, a VPC with a subnet
//! and an internet gateway, two instances with user data and tags; then
//! describe with filters, console output, an elastic IP reached from the
//! external network (a bridge in a namespace this test creates: ping, and a
//! TCP connection to what the instance serves on port 22), reboot, stop and
//! start, terminate, and every resource deleted and gone. Nothing is
//! forwarded or NATed in the machine's own namespace. Needs root, runc,
//! busybox-static, nftables and the three clients, as CI has.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Aws, Options, Server};
use nuage_netdriver::testing::NetNs;
use serde_json::Value;

const EXT_HOST: &str = "192.168.101.1";

/// What every instance runs: a boot marker on its console, then a banner
/// naming itself on TCP 22 (where its security group lets SSH in).
const USER_DATA: &str = "#!/bin/sh\necho made-by $(hostname) > /scenario-mark\necho scenario-boot $(hostname)\nwhile true; do echo ssh-banner $(hostname) | nc -l -p 22; done\n";

fn eventually<T>(what: &str, s: &Server, f: impl FnMut() -> Option<T>) -> T {
    common::eventually(what, s, Duration::from_secs(30), f)
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut at = v;
    for k in path {
        at = match k.parse::<usize>() {
            Ok(i) => &at[i],
            Err(_) => &at[*k],
        };
    }
    at.as_str()
        .unwrap_or_else(|| panic!("no string at {path:?} in {v}"))
}

/// Every instance of a describe-instances answer.
fn instances(d: &Value) -> Vec<Value> {
    d["Reservations"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["Instances"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// How often the console of `id` shows this instance's boot marker.
fn boots(aws: &Aws<'_>, id: &str) -> usize {
    let c = aws.json(&["ec2", "get-console-output", "--instance-id", id]);
    c["Output"]
        .as_str()
        .unwrap_or_default()
        .matches(&format!("scenario-boot {id}"))
        .count()
}

/// A boto3 step of `tests/ec2/scenario.py`; its stdout.
fn boto3(s: &Server, args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ec2/scenario.py");
    let mut c = s.client("python3");
    c.arg(script).arg(s.url()).args(args);
    let (ok, out, err) = common::run(&mut c);
    assert!(
        ok,
        "scenario.py {}: {err}\n{out}\n{}",
        args.join(" "),
        s.logs()
    );
    out
}

fn sysctl_forward() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").expect("ip_forward")
}

#[test]
fn ec2_scenario_from_key_pair_to_everything_deleted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ext = NetNs::create(tmp.path(), "ext").expect("external namespace (run as root)");
    ext.add_bridge("ext0").expect("bridge");
    ext.add_address("ext0", format!("{EXT_HOST}/24").parse().expect("cidr"))
        .expect("address");
    let config = tmp.path().join("nuage.toml");
    std::fs::write(
        &config,
        format!(
            "[network.external]\nbridge = \"ext0\"\nnetns = \"{}\"\ncidr = \"192.168.101.0/24\"\n\
             gateway = \"{EXT_HOST}\"\npool_start = \"192.168.101.10\"\npool_end = \"192.168.101.50\"\n",
            ext.path().display()
        ),
    )
    .expect("config");
    let forward_before = sysctl_forward();
    let s = Server::start_with(Options {
        env: vec![("NUAGE_CONFIG".into(), config.display().to_string())],
        ..Options::default()
    });
    common::build_busybox(&s);
    let work = tempfile::tempdir().expect("tempdir");
    let aws = Aws {
        srv: &s,
        bin: "aws",
        cwd: work.path(),
    };
    let aws2 = Aws {
        srv: &s,
        bin: "/usr/bin/aws",
        cwd: work.path(),
    };

    // Key pair (awscli 1.x).
    let k = aws.json(&["ec2", "create-key-pair", "--key-name", "scenario-key"]);
    assert!(str_at(&k, &["KeyMaterial"]).contains("PRIVATE KEY"), "{k}");

    // VPC, subnet and internet gateway (awscli 2.9).
    let vpc = aws2.json(&[
        "ec2",
        "create-vpc",
        "--cidr-block",
        "10.20.0.0/16",
        "--tag-specifications",
        "ResourceType=vpc,Tags=[{Key=Name,Value=scenario-vpc}]",
    ]);
    let vpc = str_at(&vpc, &["Vpc", "VpcId"]).to_string();
    let subnet = aws2.json(&[
        "ec2",
        "create-subnet",
        "--vpc-id",
        &vpc,
        "--cidr-block",
        "10.20.1.0/24",
    ]);
    let subnet = str_at(&subnet, &["Subnet", "SubnetId"]).to_string();
    let igw = aws2.json(&["ec2", "create-internet-gateway"]);
    let igw = str_at(&igw, &["InternetGateway", "InternetGatewayId"]).to_string();
    aws2.ok(&[
        "ec2",
        "attach-internet-gateway",
        "--internet-gateway-id",
        &igw,
        "--vpc-id",
        &vpc,
    ]);
    let g = aws2.json(&[
        "ec2",
        "describe-internet-gateways",
        "--filters",
        &format!("Name=attachment.vpc-id,Values={vpc}"),
    ]);
    assert_eq!(
        str_at(&g, &["InternetGateways", "0", "InternetGatewayId"]),
        igw,
        "{g}"
    );
    let rt = aws2.json(&[
        "ec2",
        "describe-route-tables",
        "--filters",
        &format!("Name=vpc-id,Values={vpc}"),
    ]);
    let routes = rt["RouteTables"][0]["Routes"].as_array().cloned();
    assert!(
        routes
            .unwrap_or_default()
            .iter()
            .any(|r| r["DestinationCidrBlock"] == "0.0.0.0/0" && r["GatewayId"] == igw.as_str()),
        "{rt}"
    );

    // A security group with SSH and ICMP, both rules in one call; a call
    // whose last rule is a duplicate adds nothing.
    let sg = aws.json(&[
        "ec2",
        "create-security-group",
        "--group-name",
        "scenario-sg",
        "--description",
        "ssh and ping",
        "--vpc-id",
        &vpc,
    ]);
    let sg = str_at(&sg, &["GroupId"]).to_string();
    aws.ok(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &sg,
        "--ip-permissions",
        "IpProtocol=tcp,FromPort=22,ToPort=22,IpRanges=[{CidrIp=0.0.0.0/0}]",
        "IpProtocol=icmp,FromPort=-1,ToPort=-1,IpRanges=[{CidrIp=0.0.0.0/0}]",
    ]);
    let err = aws.fails(&[
        "ec2",
        "authorize-security-group-ingress",
        "--group-id",
        &sg,
        "--ip-permissions",
        "IpProtocol=tcp,FromPort=80,ToPort=80,IpRanges=[{CidrIp=0.0.0.0/0}]",
        "IpProtocol=tcp,FromPort=22,ToPort=22,IpRanges=[{CidrIp=0.0.0.0/0}]",
    ]);
    assert!(err.contains("InvalidPermission.Duplicate"), "{err}");
    let rules = aws.json(&[
        "ec2",
        "describe-security-group-rules",
        "--filters",
        &format!("Name=group-id,Values={sg}"),
    ]);
    let ingress: Vec<(i64, String)> = rules["SecurityGroupRules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| r["IsEgress"] == false)
        .map(|r| {
            (
                r["FromPort"].as_i64().unwrap_or(0),
                r["IpProtocol"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(ingress.len(), 2, "port 80 was not added: {rules}");
    assert!(ingress.contains(&(22, "tcp".into())), "{rules}");

    // A revoke naming one missing rule removes none (ICMP still answers
    // below); a missing rule id is its own code.
    let err = aws.fails(&[
        "ec2",
        "revoke-security-group-ingress",
        "--group-id",
        &sg,
        "--ip-permissions",
        "IpProtocol=icmp,FromPort=-1,ToPort=-1,IpRanges=[{CidrIp=0.0.0.0/0}]",
        "IpProtocol=udp,FromPort=53,ToPort=53,IpRanges=[{CidrIp=0.0.0.0/0}]",
    ]);
    assert!(err.contains("InvalidPermission.NotFound"), "{err}");
    let err = aws2.fails(&[
        "ec2",
        "revoke-security-group-ingress",
        "--group-id",
        &sg,
        "--security-group-rule-ids",
        "sgr-0123456789abcdef0",
    ]);
    assert!(err.contains("InvalidSecurityGroupRuleId.NotFound"), "{err}");

    // Two instances with user data and tags, in the subnet, in the group.
    let ami = aws.json(&[
        "ec2",
        "describe-images",
        "--owners",
        "amazon",
        "--filters",
        "Name=name,Values=busybox",
    ]);
    let ami = str_at(&ami, &["Images", "0", "ImageId"]).to_string();
    let run = aws.json(&[
        "ec2",
        "run-instances",
        "--image-id",
        &ami,
        "--instance-type",
        "t2.nano",
        "--count",
        "2",
        "--key-name",
        "scenario-key",
        "--subnet-id",
        &subnet,
        "--security-group-ids",
        &sg,
        "--user-data",
        USER_DATA,
        "--tag-specifications",
        "ResourceType=instance,Tags=[{Key=Name,Value=scenario-web},{Key=stage,Value=e2e}]",
    ]);
    let ids: Vec<String> = run["Instances"]
        .as_array()
        .expect("Instances")
        .iter()
        .map(|i| str_at(i, &["InstanceId"]).to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{run}");
    let mut wait = vec!["ec2", "wait", "instance-running", "--instance-ids"];
    wait.extend(ids.iter().map(String::as_str));
    aws.ok(&wait);

    // Describe with filters: both CLIs, then boto3's paginator.
    for a in [&aws, &aws2] {
        let d = a.json(&[
            "ec2",
            "describe-instances",
            "--filters",
            "Name=tag:Name,Values=scenario-*",
            &format!("Name=subnet-id,Values={subnet}"),
            &format!("Name=vpc-id,Values={vpc}"),
            "Name=key-name,Values=scenario-key",
        ]);
        let found = instances(&d);
        assert_eq!(found.len(), 2, "{} {d}", a.bin);
        for i in &found {
            assert_eq!(i["State"]["Name"], "running", "{i}");
            assert_eq!(i["VpcId"], vpc.as_str(), "{i}");
            let ip = str_at(i, &["PrivateIpAddress"]);
            assert!(ip.starts_with("10.20.1."), "{i}");
            assert_eq!(i["SecurityGroups"][0]["GroupId"], sg.as_str(), "{i}");
            assert_eq!(i["Tags"].as_array().map(Vec::len), Some(2), "{i}");
        }
        let none = a.json(&[
            "ec2",
            "describe-instances",
            "--filters",
            "Name=tag:stage,Values=prod",
        ]);
        assert!(instances(&none).is_empty(), "{none}");
    }
    let mut args = vec!["describe", vpc.as_str(), subnet.as_str()];
    args.extend(ids.iter().map(String::as_str));
    boto3(&s, &args);

    // Console output: the user data ran, in each instance.
    for id in &ids {
        eventually("the user data never showed on the console", &s, || {
            (boots(&aws, id) == 1).then_some(())
        });
    }

    // An elastic IP (boto3), reached from the external network: ping,
    // and the banner instance 0 serves on port 22.
    let eip: Value =
        serde_json::from_str(boto3(&s, &["address", &ids[0]]).trim()).expect("address JSON");
    let public = str_at(&eip, &["PublicIp"]).to_string();
    let allocation = str_at(&eip, &["AllocationId"]).to_string();
    assert!(public.starts_with("192.168.101."), "{eip}");
    let ssh: SocketAddr = format!("{public}:22").parse().expect("addr");
    let want = format!("ssh-banner {}", ids[0]);
    let reach = |what: &str| {
        eventually(what, &s, || {
            (common::ping_from(&ext, &public)
                && common::banner_from(&ext, ssh).as_deref() == Some(want.as_str()))
            .then_some(())
        })
    };
    reach("the external host never reached instance 0 by its elastic IP");
    let d = aws2.json(&[
        "ec2",
        "describe-addresses",
        "--filters",
        &format!("Name=instance-id,Values={}", ids[0]),
    ]);
    assert_eq!(str_at(&d, &["Addresses", "0", "PublicIp"]), public, "{d}");

    // Reboot (awscli 2.9): the init runs again, the address still answers.
    aws2.ok(&["ec2", "reboot-instances", "--instance-ids", &ids[0]]);
    eventually("the reboot never ran the init again", &s, || {
        (boots(&aws, &ids[0]) == 2).then_some(())
    });
    reach("instance 0 is not reachable after its reboot");

    // Stop and start (boto3 waiters): the address stays associated.
    boto3(&s, &["stop-start", &ids[0], &public]);
    assert_eq!(boots(&aws, &ids[0]), 3, "one more boot after the start");
    reach("instance 0 is not reachable after stop and start");

    // CreateImage from the running instance 0 (awscli 1.x), then a launch
    // of the new image: its disk holds the file instance 0 wrote.
    let made = aws.json(&[
        "ec2",
        "create-image",
        "--instance-id",
        &ids[0],
        "--name",
        "scenario-snap",
        "--description",
        "e2e snapshot",
    ]);
    let snap = str_at(&made, &["ImageId"]).to_string();
    aws2.ok(&["ec2", "wait", "image-available", "--image-ids", &snap]);
    let d = aws2.json(&[
        "ec2",
        "describe-images",
        "--owners",
        "self",
        "--image-ids",
        &snap,
    ]);
    assert_eq!(str_at(&d, &["Images", "0", "Name"]), "scenario-snap", "{d}");
    assert_eq!(str_at(&d, &["Images", "0", "State"]), "available", "{d}");
    let run2 = aws.json(&[
        "ec2",
        "run-instances",
        "--image-id",
        &snap,
        "--instance-type",
        "t2.nano",
        "--subnet-id",
        &subnet,
        "--security-group-ids",
        &sg,
        "--user-data",
        "#!/bin/sh\necho snap-sees $(cat /scenario-mark)\n",
    ]);
    let copy = str_at(&run2, &["Instances", "0", "InstanceId"]).to_string();
    aws2.ok(&["ec2", "wait", "instance-running", "--instance-ids", &copy]);
    let mark = format!("snap-sees made-by {}", ids[0]);
    eventually(
        "the new image's instance never showed instance 0's file",
        &s,
        || {
            let c = aws.json(&["ec2", "get-console-output", "--instance-id", &copy]);
            c["Output"]
                .as_str()
                .unwrap_or_default()
                .contains(&mark)
                .then_some(())
        },
    );
    // It is terminated and the image deregistered with the rest below.
    let mut ids = ids;
    ids.push(copy);

    // ModifyInstanceAttribute: user data only while stopped; the groups of
    // a running instance's interface; the group filters see the change.
    let err = aws.fails(&[
        "ec2",
        "modify-instance-attribute",
        "--instance-id",
        &ids[1],
        "--user-data",
        "Value=changed",
    ]);
    assert!(err.contains("IncorrectInstanceState"), "{err}");
    let alt = aws.json(&[
        "ec2",
        "create-security-group",
        "--group-name",
        "scenario-alt",
        "--description",
        "another group",
        "--vpc-id",
        &vpc,
    ]);
    let alt = str_at(&alt, &["GroupId"]).to_string();
    aws2.ok(&[
        "ec2",
        "modify-instance-attribute",
        "--instance-id",
        &ids[1],
        "--groups",
        &alt,
    ]);
    for filter in [
        format!("Name=instance.group-id,Values={alt}"),
        "Name=instance.group-name,Values=scenario-alt".to_string(),
    ] {
        let d = aws.json(&["ec2", "describe-instances", "--filters", &filter]);
        let got: Vec<String> = instances(&d)
            .iter()
            .map(|i| str_at(i, &["InstanceId"]).to_string())
            .collect();
        assert_eq!(got, vec![ids[1].clone()], "{filter}: {d}");
    }
    let d = aws.json(&[
        "ec2",
        "describe-instances",
        "--filters",
        &format!("Name=instance.group-id,Values={sg}"),
    ]);
    assert_eq!(instances(&d).len(), 2, "{d}");
    aws.ok(&["ec2", "stop-instances", "--instance-ids", &ids[1]]);
    aws.ok(&["ec2", "wait", "instance-stopped", "--instance-ids", &ids[1]]);
    aws.ok(&[
        "ec2",
        "modify-instance-attribute",
        "--instance-id",
        &ids[1],
        "--user-data",
        "Value=#!/bin/sh\necho changed-data $(hostname)\n",
    ]);
    aws.ok(&["ec2", "start-instances", "--instance-ids", &ids[1]]);
    aws.ok(&["ec2", "wait", "instance-running", "--instance-ids", &ids[1]]);
    let changed = format!("changed-data {}", ids[1]);
    eventually("the new user data never ran", &s, || {
        let c = aws.json(&["ec2", "get-console-output", "--instance-id", &ids[1]]);
        c["Output"]
            .as_str()
            .unwrap_or_default()
            .contains(&changed)
            .then_some(())
    });

    // The address goes: disassociated, no longer answering, released.
    aws.ok(&["ec2", "disassociate-address", "--public-ip", &public]);
    eventually("the elastic IP still answers", &s, || {
        (!common::ping_from(&ext, &public) && common::banner_from(&ext, ssh).is_none())
            .then_some(())
    });
    aws.ok(&["ec2", "release-address", "--allocation-id", &allocation]);

    // Terminate both and wait (awscli 1.x, then 2.9 agrees).
    let mut term = vec!["ec2", "terminate-instances", "--instance-ids"];
    term.extend(ids.iter().map(String::as_str));
    aws.ok(&term);
    let mut wait = vec!["ec2", "wait", "instance-terminated", "--instance-ids"];
    wait.extend(ids.iter().map(String::as_str));
    aws.ok(&wait);
    aws2.ok(&wait);

    // Delete everything, then check each is gone.
    aws.ok(&["ec2", "deregister-image", "--image-id", &snap]);
    let gone = aws.json(&["ec2", "describe-images", "--owners", "self"]);
    assert!(!gone.to_string().contains(&snap), "{gone}");
    for group in [&sg, &alt] {
        eventually("the group stayed in use after termination", &s, || {
            aws.run(&["ec2", "delete-security-group", "--group-id", group])
                .0
                .then_some(())
        });
    }
    aws2.ok(&[
        "ec2",
        "detach-internet-gateway",
        "--internet-gateway-id",
        &igw,
        "--vpc-id",
        &vpc,
    ]);
    aws2.ok(&[
        "ec2",
        "delete-internet-gateway",
        "--internet-gateway-id",
        &igw,
    ]);
    aws.ok(&["ec2", "delete-subnet", "--subnet-id", &subnet]);
    aws.ok(&["ec2", "delete-vpc", "--vpc-id", &vpc]);
    aws.ok(&["ec2", "delete-key-pair", "--key-name", "scenario-key"]);
    for (args, code) in [
        (
            vec!["ec2", "describe-security-groups", "--group-ids", &sg],
            "InvalidGroup.NotFound",
        ),
        (
            vec![
                "ec2",
                "describe-internet-gateways",
                "--internet-gateway-ids",
                &igw,
            ],
            "InvalidInternetGatewayID.NotFound",
        ),
        (
            vec!["ec2", "describe-subnets", "--subnet-ids", &subnet],
            "InvalidSubnetID.NotFound",
        ),
        (
            vec!["ec2", "describe-vpcs", "--vpc-ids", &vpc],
            "InvalidVpcID.NotFound",
        ),
        (
            vec!["ec2", "describe-key-pairs", "--key-names", "scenario-key"],
            "InvalidKeyPair.NotFound",
        ),
        (
            vec!["ec2", "describe-addresses", "--allocation-ids", &allocation],
            "InvalidAllocationID.NotFound",
        ),
    ] {
        let err = aws.fails(&args);
        assert!(err.contains(code), "{}: {err}", args.join(" "));
    }
    // Terminated instances are still described, as terminated, with no
    // interface left in the project.
    let mut d = vec!["ec2", "describe-instances", "--instance-ids"];
    d.extend(ids.iter().map(String::as_str));
    let d = aws.json(&d);
    for i in instances(&d) {
        assert_eq!(i["State"]["Name"], "terminated", "{i}");
    }
    let eni = aws.json(&[
        "ec2",
        "describe-network-interfaces",
        "--filters",
        &format!("Name=vpc-id,Values={vpc}"),
    ]);
    assert_eq!(
        eni["NetworkInterfaces"].as_array().map_or(0, Vec::len),
        0,
        "{eni}"
    );
    assert_eq!(sysctl_forward(), forward_before);
}
