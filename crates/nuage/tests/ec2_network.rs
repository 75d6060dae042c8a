//! The networking half of the EC2 Query API (issue 12, ADR 26) through
//! both aws CLIs (awscli 1.x on PATH, Debian's 2.9 at /usr/bin/aws, always
//! with --endpoint-url) against a real `nuage serve` without a compute
//! node: security groups and their rules, elastic addresses, VPCs and
//! subnets, network interfaces, and another project's ids answering
//! "not found". Nothing here makes a bridge or a rule: the service writes
//! the store, the data plane has its own tests.

mod common;

use std::path::Path;

use common::{call, project_with_member, str_of, Cli, Options, Server};
use serde_json::{json, Value};

const PW: &str = "correct horse battery staple";

fn start_plain() -> Server {
    Server::start_with(Options {
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "none".into())],
        ..Options::default()
    })
}

fn both_clis(s: &Server, cwd: &Path, each: impl Fn(&Cli<'_>, &str)) {
    for (n, bin) in ["aws", "/usr/bin/aws"].into_iter().enumerate() {
        each(
            &Cli {
                s,
                bin,
                cwd,
                creds: None,
            },
            &n.to_string(),
        );
    }
}

fn ids_of(v: &Value, list: &str, key: &str) -> Vec<String> {
    v[list]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x[key].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A project `name` with a member and EC2 credentials of its own.
async fn other_project(s: &Server, name: &str) -> (String, String) {
    let (pid, uid) = project_with_member(s, name, PW).await;
    let admin = s.admin_token().await;
    let (st, c) = call(
        s,
        &admin,
        "POST",
        &format!("/v3/users/{uid}/credentials/OS-EC2"),
        Some(json!({"tenant_id": pid})),
    )
    .await;
    assert_eq!(st, 201, "{c}");
    (
        str_of(&c["credential"], "access").to_string(),
        str_of(&c["credential"], "secret").to_string(),
    )
}

/// The operator's external network with 203.0.113.0/24, where elastic
/// addresses come from.
async fn external_network(s: &Server) -> String {
    let admin = s.admin_token().await;
    let (st, n) = call(
        s,
        &admin,
        "POST",
        "/nuage/v1/networks",
        Some(json!({"name": "ext", "external": true})),
    )
    .await;
    assert_eq!(st, 201, "{n}");
    let id = str_of(&n, "id").to_string();
    let (st, sub) = call(
        s,
        &admin,
        "POST",
        "/nuage/v1/subnets",
        Some(json!({"network_id": id, "cidr": "203.0.113.0/24"})),
    )
    .await;
    assert_eq!(st, 201, "{sub}");
    id
}

#[test]
fn security_group_lifecycle_through_both_aws_clis() {
    let s = start_plain();
    let work = tempfile::tempdir().expect("tempdir");
    both_clis(&s, work.path(), |aws, n| {
        let name = format!("web{n}");
        let g = aws.json(&[
            "ec2",
            "create-security-group",
            "--group-name",
            &name,
            "--description",
            "web servers",
            "--tag-specifications",
            "ResourceType=security-group,Tags=[{Key=tier,Value=front}]",
        ]);
        let gid = str_of(&g, "GroupId").to_string();
        assert!(gid.starts_with("sg-"), "{g}");
        aws.fails(
            "InvalidGroup.Duplicate",
            &[
                "ec2",
                "create-security-group",
                "--group-name",
                &name,
                "--description",
                "again",
            ],
        );
        aws.fails(
            "InvalidVpcID.NotFound",
            &[
                "ec2",
                "create-security-group",
                "--group-name",
                "elsewhere",
                "--description",
                "x",
                "--vpc-id",
                "vpc-00000000",
            ],
        );

        // SSH from a CIDR (the flat form) and ICMP (IpPermissions).
        aws.json(&[
            "ec2",
            "authorize-security-group-ingress",
            "--group-id",
            &gid,
            "--protocol",
            "tcp",
            "--port",
            "22",
            "--cidr",
            "10.0.0.0/8",
        ]);
        let r = aws.json(&[
            "ec2",
            "authorize-security-group-ingress",
            "--group-id",
            &gid,
            "--ip-permissions",
            "IpProtocol=icmp,FromPort=-1,ToPort=-1,IpRanges=[{CidrIp=0.0.0.0/0,Description=ping}]",
        ]);
        let added = &r["SecurityGroupRules"][0];
        assert_eq!(added["IpProtocol"], "icmp", "{r}");
        assert_eq!(added["CidrIpv4"], "0.0.0.0/0", "{r}");
        assert_eq!(added["IsEgress"], false, "{r}");

        let d = aws.json(&["ec2", "describe-security-groups", "--group-ids", &gid]);
        let sg = &d["SecurityGroups"][0];
        assert_eq!(sg["GroupName"], name.as_str(), "{d}");
        assert_eq!(sg["Description"], "web servers", "{d}");
        assert_eq!(
            sg["Tags"],
            json!([{"Key": "tier", "Value": "front"}]),
            "{d}"
        );
        let perms = sg["IpPermissions"].as_array().expect("IpPermissions");
        assert_eq!(perms.len(), 2, "{d}");
        let ssh = perms
            .iter()
            .find(|p| p["IpProtocol"] == "tcp")
            .expect("the tcp permission");
        assert_eq!((&ssh["FromPort"], &ssh["ToPort"]), (&json!(22), &json!(22)));
        assert_eq!(ssh["IpRanges"], json!([{"CidrIp": "10.0.0.0/8"}]), "{d}");
        let icmp = perms
            .iter()
            .find(|p| p["IpProtocol"] == "icmp")
            .expect("the icmp permission");
        assert_eq!(
            icmp["IpRanges"],
            json!([{"CidrIp": "0.0.0.0/0", "Description": "ping"}])
        );
        assert_eq!(sg["IpPermissionsEgress"][0]["IpProtocol"], "-1", "{d}");

        // Filters: AND across names, OR across values, wildcards, tags.
        let found = |filters: &[&str]| -> Vec<String> {
            let mut args = vec!["ec2", "describe-security-groups", "--filters"];
            args.extend_from_slice(filters);
            ids_of(&aws.json(&args), "SecurityGroups", "GroupId")
        };
        assert_eq!(
            found(&[
                "Name=group-name,Values=web*",
                "Name=ip-permission.from-port,Values=22",
            ]),
            [gid.as_str()]
        );
        assert_eq!(found(&["Name=tag:tier,Values=front,back"]), [gid.as_str()]);
        assert!(found(&["Name=tag:tier,Values=back"]).is_empty());
        assert!(found(&["Name=ip-permission.cidr,Values=192.168.*"]).is_empty());
        assert_eq!(
            found(&[
                "Name=description,Values=web servers",
                "Name=owner-id,Values=nobody"
            ]),
            Vec::<String>::new(),
            "filters are ANDed"
        );
        let all = found(&["Name=group-name,Values=default"]);
        assert_eq!(all.len(), 1, "the project's default group: {all:?}");
        aws.fails(
            "InvalidParameterValue",
            &[
                "ec2",
                "describe-security-groups",
                "--filters",
                "Name=no-such-filter,Values=x",
            ],
        );
        let rules = aws.json(&[
            "ec2",
            "describe-security-group-rules",
            "--filters",
            &format!("Name=group-id,Values={gid}"),
        ]);
        let rules = rules["SecurityGroupRules"].as_array().expect("rules");
        assert_eq!(rules.len(), 3, "two in, one out: {rules:?}");

        // A duplicate is refused; revoke twice: the second finds nothing.
        aws.fails(
            "InvalidPermission.Duplicate",
            &[
                "ec2",
                "authorize-security-group-ingress",
                "--group-id",
                &gid,
                "--protocol",
                "tcp",
                "--port",
                "22",
                "--cidr",
                "10.0.0.0/8",
            ],
        );
        let revoke = [
            "ec2",
            "revoke-security-group-ingress",
            "--group-id",
            &gid,
            "--protocol",
            "tcp",
            "--port",
            "22",
            "--cidr",
            "10.0.0.0/8",
        ];
        aws.json(&revoke);
        aws.fails("InvalidPermission.NotFound", &revoke);
        let d = aws.json(&["ec2", "describe-security-groups", "--group-names", &name]);
        let perms = d["SecurityGroups"][0]["IpPermissions"]
            .as_array()
            .expect("perms")
            .clone();
        assert_eq!(perms.len(), 1, "{d}");
        assert_eq!(perms[0]["IpProtocol"], "icmp", "{d}");
        // Egress, revoked by its structure.
        aws.json(&[
            "ec2",
            "revoke-security-group-egress",
            "--group-id",
            &gid,
            "--ip-permissions",
            "IpProtocol=-1,IpRanges=[{CidrIp=0.0.0.0/0}]",
        ]);
        let d = aws.json(&["ec2", "describe-security-groups", "--group-ids", &gid]);
        assert_eq!(d["SecurityGroups"][0]["IpPermissionsEgress"], json!([]));

        // The default group stays; the others go, by id or by name.
        aws.fails(
            "CannotDelete",
            &["ec2", "delete-security-group", "--group-name", "default"],
        );
        aws.json(&["ec2", "delete-security-group", "--group-id", &gid]);
        aws.fails(
            "InvalidGroup.NotFound",
            &["ec2", "describe-security-groups", "--group-ids", &gid],
        );
        aws.fails(
            "InvalidGroup.NotFound",
            &["ec2", "delete-security-group", "--group-id", &gid],
        );
        aws.json(&[
            "ec2",
            "create-security-group",
            "--group-name",
            &name,
            "--description",
            "the name is free again",
        ]);
        aws.json(&["ec2", "delete-security-group", "--group-name", &name]);
        aws.fails(
            "InvalidGroup.NotFound",
            &["ec2", "describe-security-groups", "--group-names", &name],
        );
    });
}

#[test]
fn vpcs_and_subnets_through_both_aws_clis() {
    let s = start_plain();
    let work = tempfile::tempdir().expect("tempdir");
    both_clis(&s, work.path(), |aws, n| {
        let v = aws.json(&[
            "ec2",
            "create-vpc",
            "--cidr-block",
            &format!("10.5{n}.0.0/16"),
            "--tag-specifications",
            &format!("ResourceType=vpc,Tags=[{{Key=Name,Value=lab{n}}}]"),
        ]);
        let vpc = str_of(&v["Vpc"], "VpcId").to_string();
        assert!(vpc.starts_with("vpc-"), "{v}");
        assert_eq!(v["Vpc"]["IsDefault"], false, "{v}");
        for bad in ["10.0.0.0/8", "10.0.0.0/29", "10.0.0.1/16", "not-a-cidr"] {
            aws.fails(
                "InvalidVpc.Range",
                &["ec2", "create-vpc", "--cidr-block", bad],
            );
        }

        let d = aws.json(&["ec2", "describe-vpcs"]);
        let vpcs = d["Vpcs"].as_array().expect("Vpcs");
        assert!(
            vpcs.iter().any(|x| x["IsDefault"] == true),
            "the default VPC: {d}"
        );
        let d = aws.json(&[
            "ec2",
            "describe-vpcs",
            "--filters",
            "Name=is-default,Values=true",
        ]);
        assert_eq!(d["Vpcs"].as_array().map(Vec::len), Some(1), "{d}");
        let d = aws.json(&[
            "ec2",
            "describe-vpcs",
            "--filters",
            &format!("Name=tag:Name,Values=lab{n}"),
        ]);
        assert_eq!(ids_of(&d, "Vpcs", "VpcId"), [vpc.as_str()], "{d}");
        assert_eq!(d["Vpcs"][0]["CidrBlock"], format!("10.5{n}.0.0/16"));
        aws.fails(
            "InvalidVpcID.NotFound",
            &["ec2", "describe-vpcs", "--vpc-ids", "vpc-00000000"],
        );

        let zone = aws.json(&["ec2", "describe-availability-zones"])["AvailabilityZones"][0]
            ["ZoneName"]
            .as_str()
            .expect("a zone")
            .to_string();
        let sub = aws.json(&[
            "ec2",
            "create-subnet",
            "--vpc-id",
            &vpc,
            "--cidr-block",
            &format!("10.5{n}.1.0/24"),
            "--availability-zone",
            &zone,
        ]);
        let subnet = str_of(&sub["Subnet"], "SubnetId").to_string();
        assert_eq!(sub["Subnet"]["VpcId"], vpc.as_str(), "{sub}");
        assert_eq!(sub["Subnet"]["AvailabilityZone"], zone.as_str(), "{sub}");
        let create = |cidr: &str, vpc: &str| {
            [
                "ec2",
                "create-subnet",
                "--vpc-id",
                vpc,
                "--cidr-block",
                cidr,
            ]
            .map(str::to_string)
        };
        let refuse = |code: &str, args: [String; 6]| {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            aws.fails(code, &a);
        };
        refuse("InvalidSubnet.Range", create("10.99.0.0/24", &vpc));
        refuse("InvalidSubnet.Range", create("10.5.0.1/24", &vpc));
        refuse(
            "InvalidSubnet.Conflict",
            create(&format!("10.5{n}.1.128/25"), &vpc),
        );
        refuse(
            "InvalidVpcID.NotFound",
            create(&format!("10.5{n}.2.0/24"), "vpc-00000000"),
        );
        aws.fails(
            "InvalidParameterValue",
            &[
                "ec2",
                "create-subnet",
                "--vpc-id",
                &vpc,
                "--cidr-block",
                &format!("10.5{n}.2.0/24"),
                "--availability-zone",
                "nowhere-9z",
            ],
        );
        aws.fails(
            "MissingParameter",
            &["ec2", "create-subnet", "--vpc-id", &vpc, "--cidr-block", ""],
        );
        let d = aws.json(&[
            "ec2",
            "describe-subnets",
            "--filters",
            &format!("Name=vpc-id,Values={vpc}"),
        ]);
        assert_eq!(ids_of(&d, "Subnets", "SubnetId"), [subnet.as_str()], "{d}");
        assert_eq!(d["Subnets"][0]["CidrBlock"], format!("10.5{n}.1.0/24"));
        let d = aws.json(&[
            "ec2",
            "describe-subnets",
            "--filters",
            "Name=default-for-az,Values=true",
        ]);
        assert_eq!(d["Subnets"].as_array().map(Vec::len), Some(1), "{d}");

        aws.json(&["ec2", "delete-subnet", "--subnet-id", &subnet]);
        aws.fails(
            "InvalidSubnetID.NotFound",
            &["ec2", "delete-subnet", "--subnet-id", &subnet],
        );
        aws.fails(
            "InvalidSubnetID.NotFound",
            &["ec2", "describe-subnets", "--subnet-ids", &subnet],
        );
        aws.json(&["ec2", "delete-vpc", "--vpc-id", &vpc]);
        aws.fails(
            "InvalidVpcID.NotFound",
            &["ec2", "describe-vpcs", "--vpc-ids", &vpc],
        );
        aws.fails(
            "InvalidVpcID.NotFound",
            &["ec2", "delete-vpc", "--vpc-id", &vpc],
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_interfaces_and_other_projects_ids() {
    let s = start_plain();
    let work = tempfile::tempdir().expect("tempdir");
    external_network(&s).await;
    let (key, secret) = other_project(&s, "beta").await;

    // An interface an address can reach: a VPC and subnet made through
    // EC2, a router joining it to the external network, a port on it.
    let admin = s.admin_token().await;
    let aws = Cli {
        s: &s,
        bin: "aws",
        cwd: work.path(),
        creds: None,
    };
    let vpc = aws.json(&["ec2", "create-vpc", "--cidr-block", "10.60.0.0/16"]);
    let vpc = str_of(&vpc["Vpc"], "VpcId").to_string();
    let sub = aws.json(&[
        "ec2",
        "create-subnet",
        "--vpc-id",
        &vpc,
        "--cidr-block",
        "10.60.1.0/24",
    ]);
    let subnet = str_of(&sub["Subnet"], "SubnetId").to_string();
    let g = aws.json(&[
        "ec2",
        "create-internet-gateway",
        "--tag-specifications",
        "ResourceType=internet-gateway,Tags=[{Key=Name,Value=out}]",
    ]);
    let igw = str_of(&g["InternetGateway"], "InternetGatewayId").to_string();
    assert!(igw.starts_with("igw-"), "{g}");
    assert_eq!(g["InternetGateway"]["Attachments"], json!([]), "{g}");
    // The main route table routes the VPC locally until a gateway joins.
    let rtb = aws.json(&[
        "ec2",
        "describe-route-tables",
        "--filters",
        &format!("Name=vpc-id,Values={vpc}"),
    ]);
    let table = &rtb["RouteTables"][0];
    let rtb_id = str_of(table, "RouteTableId").to_string();
    assert_eq!(
        table["Routes"],
        json!([{"DestinationCidrBlock": "10.60.0.0/16", "GatewayId": "local", "State": "active", "Origin": "CreateRouteTable"}]),
        "{rtb}"
    );
    assert_eq!(table["Associations"][0]["Main"], true, "{rtb}");
    let route = [
        "ec2",
        "create-route",
        "--route-table-id",
        &rtb_id,
        "--destination-cidr-block",
        "0.0.0.0/0",
        "--gateway-id",
        &igw,
    ];
    aws.fails("Gateway.NotAttached", &route);
    aws.json(&[
        "ec2",
        "attach-internet-gateway",
        "--internet-gateway-id",
        &igw,
        "--vpc-id",
        &vpc,
    ]);
    aws.fails(
        "Resource.AlreadyAssociated",
        &[
            "ec2",
            "attach-internet-gateway",
            "--internet-gateway-id",
            &igw,
            "--vpc-id",
            &vpc,
        ],
    );
    aws.json(&route);
    aws.fails(
        "InvalidParameterValue",
        &[
            "ec2",
            "create-route",
            "--route-table-id",
            &rtb_id,
            "--destination-cidr-block",
            "192.168.0.0/16",
            "--gateway-id",
            &igw,
        ],
    );
    let r = aws.json(&[
        "ec2",
        "associate-route-table",
        "--route-table-id",
        &rtb_id,
        "--subnet-id",
        &subnet,
    ]);
    assert!(str_of(&r, "AssociationId").starts_with("rtbassoc-"), "{r}");
    let d = aws.json(&[
        "ec2",
        "describe-internet-gateways",
        "--filters",
        &format!("Name=attachment.vpc-id,Values={vpc}"),
        "Name=tag:Name,Values=out",
    ]);
    assert_eq!(
        d["InternetGateways"][0]["Attachments"],
        json!([{"VpcId": vpc, "State": "available"}]),
        "{d}"
    );
    let rtb = aws.json(&["ec2", "describe-route-tables", "--route-table-ids", &rtb_id]);
    let routes = rtb["RouteTables"][0]["Routes"].as_array().expect("routes");
    assert!(
        routes
            .iter()
            .any(|r| r["DestinationCidrBlock"] == "0.0.0.0/0" && r["GatewayId"] == igw.as_str()),
        "{rtb}"
    );
    aws.fails(
        "DependencyViolation",
        &[
            "ec2",
            "delete-internet-gateway",
            "--internet-gateway-id",
            &igw,
        ],
    );
    let (st, port) = call(
        &s,
        &admin,
        "POST",
        "/nuage/v1/ports",
        Some(json!({"network_id": vpc})),
    )
    .await;
    assert_eq!(st, 201, "{port}");
    let eni = str_of(&port, "id").to_string();
    let private = port["fixed_ips"][0]["ip_address"]
        .as_str()
        .expect("an address")
        .to_string();

    let mut beta = Cli {
        s: &s,
        bin: "aws",
        cwd: work.path(),
        creds: Some((key.clone(), secret.clone())),
    };
    for bin in ["aws", "/usr/bin/aws"] {
        let aws = Cli {
            s: &s,
            bin,
            cwd: work.path(),
            creds: None,
        };
        beta.bin = bin;
        let a = aws.json(&["ec2", "allocate-address", "--domain", "vpc"]);
        let alloc = str_of(&a, "AllocationId").to_string();
        let ip = str_of(&a, "PublicIp").to_string();
        assert!(alloc.starts_with("eipalloc-"), "{a}");
        assert!(ip.starts_with("203.0.113."), "{a}");
        assert_eq!(a["Domain"], "vpc", "{a}");
        let d = aws.json(&["ec2", "describe-addresses", "--allocation-ids", &alloc]);
        assert_eq!(d["Addresses"][0]["PublicIp"], ip.as_str(), "{d}");
        let d = aws.json(&[
            "ec2",
            "describe-addresses",
            "--filters",
            &format!("Name=public-ip,Values={ip}"),
        ]);
        assert_eq!(ids_of(&d, "Addresses", "AllocationId"), [alloc.as_str()]);

        // Associated with the interface, shown on both sides, then not.
        let r = aws.json(&[
            "ec2",
            "associate-address",
            "--allocation-id",
            &alloc,
            "--network-interface-id",
            &eni,
        ]);
        let assoc = str_of(&r, "AssociationId").to_string();
        assert!(assoc.starts_with("eipassoc-"), "{r}");
        let d = aws.json(&["ec2", "describe-addresses", "--public-ips", &ip]);
        let addr = &d["Addresses"][0];
        assert_eq!(addr["NetworkInterfaceId"], eni.as_str(), "{d}");
        assert_eq!(addr["PrivateIpAddress"], private.as_str(), "{d}");
        assert_eq!(addr["AssociationId"], assoc.as_str(), "{d}");
        let d = aws.json(&[
            "ec2",
            "describe-network-interfaces",
            "--network-interface-ids",
            &eni,
        ]);
        let i = &d["NetworkInterfaces"][0];
        assert_eq!(i["Association"]["PublicIp"], ip.as_str(), "{d}");
        assert_eq!(i["PrivateIpAddress"], private.as_str(), "{d}");
        assert_eq!(i["VpcId"], vpc.as_str(), "{d}");
        assert_eq!(i["SubnetId"], subnet.as_str(), "{d}");
        aws.fails(
            "InvalidInstanceID.NotFound",
            &[
                "ec2",
                "associate-address",
                "--allocation-id",
                &alloc,
                "--instance-id",
                "i-00000000",
            ],
        );
        aws.json(&["ec2", "disassociate-address", "--association-id", &assoc]);
        aws.fails(
            "InvalidAssociationID.NotFound",
            &["ec2", "disassociate-address", "--association-id", &assoc],
        );
        let d = aws.json(&["ec2", "describe-addresses", "--allocation-ids", &alloc]);
        assert!(d["Addresses"][0].get("AssociationId").is_none(), "{d}");

        // Another project sees none of it, and cannot touch it.
        beta.fails(
            "InvalidAllocationID.NotFound",
            &["ec2", "describe-addresses", "--allocation-ids", &alloc],
        );
        beta.fails(
            "InvalidAllocationID.NotFound",
            &["ec2", "release-address", "--allocation-id", &alloc],
        );
        beta.fails(
            "InvalidVpcID.NotFound",
            &["ec2", "delete-vpc", "--vpc-id", &vpc],
        );
        beta.fails(
            "InvalidSubnetID.NotFound",
            &["ec2", "describe-subnets", "--subnet-ids", &subnet],
        );
        beta.fails(
            "InvalidNetworkInterfaceID.NotFound",
            &[
                "ec2",
                "describe-network-interfaces",
                "--network-interface-ids",
                &eni,
            ],
        );
        let mine = aws.json(&[
            "ec2",
            "describe-security-groups",
            "--group-names",
            "default",
        ]);
        let mine = str_of(&mine["SecurityGroups"][0], "GroupId").to_string();
        beta.fails(
            "InvalidGroup.NotFound",
            &["ec2", "describe-security-groups", "--group-ids", &mine],
        );
        beta.fails(
            "InvalidGroup.NotFound",
            &[
                "ec2",
                "authorize-security-group-ingress",
                "--group-id",
                &mine,
                "--protocol",
                "tcp",
                "--port",
                "22",
                "--cidr",
                "0.0.0.0/0",
            ],
        );

        aws.json(&["ec2", "release-address", "--allocation-id", &alloc]);
        aws.fails(
            "InvalidAllocationID.NotFound",
            &["ec2", "describe-addresses", "--allocation-ids", &alloc],
        );
        aws.fails(
            "InvalidAllocationID.NotFound",
            &["ec2", "release-address", "--allocation-id", &alloc],
        );
        aws.fails(
            "InvalidAddress.NotFound",
            &["ec2", "release-address", "--public-ip", &ip],
        );
    }

    aws.json(&[
        "ec2",
        "detach-internet-gateway",
        "--internet-gateway-id",
        &igw,
        "--vpc-id",
        &vpc,
    ]);
    aws.fails(
        "Gateway.NotAttached",
        &[
            "ec2",
            "detach-internet-gateway",
            "--internet-gateway-id",
            &igw,
            "--vpc-id",
            &vpc,
        ],
    );
    aws.json(&[
        "ec2",
        "delete-internet-gateway",
        "--internet-gateway-id",
        &igw,
    ]);
    aws.fails(
        "InvalidInternetGatewayID.NotFound",
        &[
            "ec2",
            "describe-internet-gateways",
            "--internet-gateway-ids",
            &igw,
        ],
    );

    // The floating_ips quota is EC2's address limit.
    let (st, q) = call(
        &s,
        &admin,
        "PUT",
        "/nuage/v1/projects/beta/quotas",
        Some(json!({"floating_ips": 1})),
    )
    .await;
    assert_eq!(st, 200, "{q}");
    let first = beta.json(&["ec2", "allocate-address"]);
    beta.fails("AddressLimitExceeded", &["ec2", "allocate-address"]);
    let d = beta.json(&["ec2", "describe-addresses"]);
    assert_eq!(
        ids_of(&d, "Addresses", "AllocationId"),
        [str_of(&first, "AllocationId").to_string()],
        "a refused allocation leaves nothing: {d}"
    );
}
