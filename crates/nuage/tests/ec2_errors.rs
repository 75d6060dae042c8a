//! The EC2 error codes that need more than one caller or a particular
//! state to provoke (issue 12, "every error code provoked on purpose"):
//! stale and future signatures, readers and other projects, quotas,
//! capacity, groups in use and parameters that exclude each other. Each
//! refusal is checked to have changed nothing.
//!
//! Requests are signed by botocore's own signer (`tests/ec2/query.py`),
//! with the credentials of the caller each case needs.

mod common;

// A server without a compute node: capacity is then truly zero.
use common::{call, start_without_compute as start_plain, user_with_role, Server};
use serde_json::{json, Value};

/// One pair of EC2 credentials.
struct Creds {
    access: String,
    secret: String,
}

/// One request signed by botocore as `who` (the admin when `None`):
/// (status, body).
fn query(s: &Server, who: Option<&Creds>, params: &Value, flags: &[&str]) -> (u16, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ec2/query.py");
    let mut c = s.client("python3");
    c.arg(script)
        .arg(s.url())
        .arg(params.to_string())
        .args(flags);
    if let Some(w) = who {
        c.env("AWS_ACCESS_KEY_ID", &w.access)
            .env("AWS_SECRET_ACCESS_KEY", &w.secret);
    }
    let out = c.output().expect("run query.py");
    assert!(
        out.status.success(),
        "query.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
    (
        status.trim().parse().expect("status line"),
        body.to_string(),
    )
}

/// A request that must succeed; returns its body.
fn ok(s: &Server, who: Option<&Creds>, params: Value) -> String {
    let (st, body) = query(s, who, &params, &[]);
    assert_eq!(st, 200, "{params}: {body}");
    body
}

/// A request that must fail with `status` and `code`; checks the EC2 error
/// document's shape.
fn refused(
    s: &Server,
    who: Option<&Creds>,
    params: Value,
    flags: &[&str],
    status: u16,
    code: &str,
) {
    let (st, body) = query(s, who, &params, flags);
    assert_eq!(
        (st, error_code(&body).as_str()),
        (status, code),
        "{params} {flags:?}: {body}"
    );
    assert!(body.contains("<Response><Errors><Error>"), "{body}");
    assert!(body.contains("<RequestID>"), "{body}");
}

/// The `<Code>` of an EC2 error document.
fn error_code(body: &str) -> String {
    let at = body.find("<Code>").map(|i| i + 6).unwrap_or(0);
    let end = body[at..].find("</Code>").map_or(at, |i| at + i);
    body[at..end].to_string()
}

/// The texts of every `<tag>` element in `body`.
fn texts(body: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    body.split(&open)
        .skip(1)
        .filter_map(|s| s.split_once(&close).map(|(v, _)| v.to_string()))
        .collect()
}

/// EC2 credentials of `user` (id `uid`) for project `project` (id `pid`).
async fn ec2_creds(
    s: &Server,
    user: &str,
    password: &str,
    project: &str,
    pid: &str,
    uid: &str,
) -> Creds {
    let (access, secret) = common::ec2_credentials(s, user, password, project, pid, uid).await;
    Creds { access, secret }
}

/// A project with a member and its EC2 credentials: (project id, creds).
async fn member_project(s: &Server, name: &str) -> (String, Creds) {
    let pw = "member-pass-1";
    let (pid, uid) = common::project_with_member(s, name, pw).await;
    let creds = ec2_creds(s, &format!("{name}-user"), pw, name, &pid, &uid).await;
    (pid, creds)
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_and_future_signatures_are_request_expired_and_change_nothing() {
    let s = start_plain();
    // A clock two minutes off is within the allowed skew.
    let (st, body) = query(
        &s,
        None,
        &json!({"Action": "DescribeRegions"}),
        &["--date-offset", "-120"],
    );
    assert_eq!(st, 200, "{body}");

    for offset in ["-1200", "1200", "-86400"] {
        refused(
            &s,
            None,
            json!({"Action": "CreateKeyPair", "KeyName": format!("late{offset}")}),
            &["--date-offset", offset],
            400,
            "RequestExpired",
        );
    }
    let listed = ok(&s, None, json!({"Action": "DescribeKeyPairs"}));
    assert!(texts(&listed, "keyName").is_empty(), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn readers_are_refused_and_projects_do_not_see_each_other() {
    let s = start_plain();
    let (pid, member) = member_project(&s, "ec2team").await;
    let ruid = user_with_role(&s, &pid, "ec2team-reader", "reader-pass-1", "reader").await;
    let reader = ec2_creds(
        &s,
        "ec2team-reader",
        "reader-pass-1",
        "ec2team",
        &pid,
        &ruid,
    )
    .await;

    // A reader reads...
    ok(&s, Some(&reader), json!({"Action": "DescribeInstances"}));
    ok(&s, Some(&reader), json!({"Action": "DescribeKeyPairs"}));
    let groups_before = ok(
        &s,
        Some(&reader),
        json!({"Action": "DescribeSecurityGroups"}),
    );
    let vpcs_before = ok(&s, Some(&reader), json!({"Action": "DescribeVpcs"}));
    // ...and changes nothing, dry run or not.
    for params in [
        json!({"Action": "CreateKeyPair", "KeyName": "nope"}),
        json!({"Action": "CreateKeyPair", "KeyName": "nope", "DryRun": "true"}),
        json!({"Action": "CreateSecurityGroup", "GroupName": "nope", "GroupDescription": "x"}),
        json!({"Action": "CreateVpc", "CidrBlock": "10.77.0.0/16"}),
        json!({"Action": "AllocateAddress", "Domain": "vpc"}),
        json!({"Action": "RunInstances", "ImageId": "ami-0000000000000000", "MinCount": "1", "MaxCount": "1"}),
        json!({"Action": "TerminateInstances", "InstanceId.1": "i-0123456789abcdef0", "DryRun": "true"}),
    ] {
        refused(&s, Some(&reader), params, &[], 403, "UnauthorizedOperation");
    }
    let keys = ok(&s, Some(&member), json!({"Action": "DescribeKeyPairs"}));
    assert!(texts(&keys, "keyName").is_empty(), "{keys}");
    assert_eq!(
        texts(
            &ok(
                &s,
                Some(&member),
                json!({"Action": "DescribeSecurityGroups"})
            ),
            "groupId"
        ),
        texts(&groups_before, "groupId")
    );
    assert_eq!(
        texts(
            &ok(&s, Some(&member), json!({"Action": "DescribeVpcs"})),
            "vpcId"
        ),
        texts(&vpcs_before, "vpcId")
    );
    let addrs = ok(&s, Some(&member), json!({"Action": "DescribeAddresses"}));
    assert!(texts(&addrs, "allocationId").is_empty(), "{addrs}");

    // The member may; a dry run says so without doing it.
    refused(
        &s,
        Some(&member),
        json!({"Action": "CreateKeyPair", "KeyName": "mine", "DryRun": "true"}),
        &[],
        412,
        "DryRunOperation",
    );
    ok(
        &s,
        Some(&member),
        json!({"Action": "CreateKeyPair", "KeyName": "mine"}),
    );
    let made = ok(
        &s,
        Some(&member),
        json!({"Action": "CreateSecurityGroup", "GroupName": "ours", "GroupDescription": "team"}),
    );
    let sg = texts(&made, "groupId").pop().expect("groupId");

    // Another project's member sees none of it and cannot touch it. (The
    // cloud admin could: admin is cloud-wide, as in OpenStack.)
    let (_, other) = member_project(&s, "ec2other").await;
    let other = Some(&other);
    refused(
        &s,
        other,
        json!({"Action": "DescribeKeyPairs", "KeyName.1": "mine"}),
        &[],
        400,
        "InvalidKeyPair.NotFound",
    );
    refused(
        &s,
        other,
        json!({"Action": "DescribeSecurityGroups", "GroupId.1": sg}),
        &[],
        400,
        "InvalidGroup.NotFound",
    );
    refused(
        &s,
        other,
        json!({"Action": "DeleteSecurityGroup", "GroupId": sg}),
        &[],
        400,
        "InvalidGroup.NotFound",
    );
    refused(
        &s,
        other,
        json!({"Action": "AuthorizeSecurityGroupIngress", "GroupId": sg,
               "IpPermissions.1.IpProtocol": "tcp", "IpPermissions.1.FromPort": "22",
               "IpPermissions.1.ToPort": "22", "IpPermissions.1.IpRanges.1.CidrIp": "0.0.0.0/0"}),
        &[],
        400,
        "InvalidGroup.NotFound",
    );
    let mine = ok(
        &s,
        Some(&member),
        json!({"Action": "DescribeSecurityGroups", "GroupId.1": sg}),
    );
    assert_eq!(
        texts(&mine, "groupName"),
        vec!["ours".to_string()],
        "{mine}"
    );
    assert!(!mine.contains("<ipProtocol>tcp</ipProtocol>"), "{mine}");
}

#[tokio::test(flavor = "multi_thread")]
async fn quota_capacity_groups_in_use_and_parameter_combinations() {
    let s = start_plain();
    common::build_busybox(&s);
    let (pid, member) = member_project(&s, "ec2quota").await;
    let images = ok(
        &s,
        Some(&member),
        json!({"Action": "DescribeImages", "Owner.1": "amazon", "Filter.1.Name": "name", "Filter.1.Value.1": "busybox"}),
    );
    let ami = texts(&images, "imageId").pop().expect("busybox imageId");
    let run = json!({"Action": "RunInstances", "ImageId": ami, "InstanceType": "t2.nano",
                     "MinCount": "1", "MaxCount": "1"});

    // No room under the project's quota: InstanceLimitExceeded.
    let admin = s.admin_token().await;
    let (st, q) = call(
        &s,
        &admin,
        "PUT",
        &format!("/nuage/v1/projects/{pid}/quotas"),
        Some(json!({"instances": 0})),
    )
    .await;
    assert_eq!(st, 200, "{q}");
    refused(
        &s,
        Some(&member),
        run.clone(),
        &[],
        400,
        "InstanceLimitExceeded",
    );

    // Room in the quota but no node to run it: InsufficientInstanceCapacity.
    let (st, q) = call(
        &s,
        &admin,
        "PUT",
        &format!("/nuage/v1/projects/{pid}/quotas"),
        Some(json!({"instances": 5})),
    )
    .await;
    assert_eq!(st, 200, "{q}");
    refused(
        &s,
        Some(&member),
        run,
        &[],
        500,
        "InsufficientInstanceCapacity",
    );
    let none = ok(&s, Some(&member), json!({"Action": "DescribeInstances"}));
    assert!(texts(&none, "instanceId").is_empty(), "{none}");

    // A group that a port uses cannot be deleted: InvalidGroup.InUse.
    let vpc = texts(
        &ok(
            &s,
            Some(&member),
            json!({"Action": "CreateVpc", "CidrBlock": "10.78.0.0/16"}),
        ),
        "vpcId",
    )
    .pop()
    .expect("vpcId");
    ok(
        &s,
        Some(&member),
        json!({"Action": "CreateSubnet", "VpcId": vpc, "CidrBlock": "10.78.1.0/24"}),
    );
    let sg = texts(
        &ok(
            &s,
            Some(&member),
            json!({"Action": "CreateSecurityGroup", "GroupName": "busy", "GroupDescription": "in use", "VpcId": vpc}),
        ),
        "groupId",
    )
    .pop()
    .expect("groupId");
    let token = s
        .token_for("ec2quota-user", "member-pass-1", Some("ec2quota"))
        .await;
    let (st, port) = call(
        &s,
        &token,
        "POST",
        "/nuage/v1/ports",
        Some(json!({"network_id": vpc, "name": "holder", "security_groups": [sg]})),
    )
    .await;
    assert_eq!(st, 201, "{port}");
    refused(
        &s,
        Some(&member),
        json!({"Action": "DeleteSecurityGroup", "GroupId": sg}),
        &[],
        400,
        "InvalidGroup.InUse",
    );
    ok(
        &s,
        Some(&member),
        json!({"Action": "DescribeSecurityGroups", "GroupId.1": sg}),
    );
    let port_id = port["id"]
        .as_str()
        .or_else(|| port["port"]["id"].as_str())
        .unwrap_or_else(|| panic!("port id in {port}"))
        .to_string();
    let (st, _) = call(
        &s,
        &token,
        "DELETE",
        &format!("/nuage/v1/ports/{port_id}"),
        None,
    )
    .await;
    assert!(st == 204 || st == 200, "delete port: {st}");
    ok(
        &s,
        Some(&member),
        json!({"Action": "DeleteSecurityGroup", "GroupId": sg}),
    );

    // Parameters the reference says exclude each other.
    refused(
        &s,
        Some(&member),
        json!({"Action": "DescribeInstances", "InstanceId.1": "i-0123456789abcdef0", "MaxResults": "5"}),
        &[],
        400,
        "InvalidParameterCombination",
    );
    refused(
        &s,
        Some(&member),
        json!({"Action": "RegisterImage", "Name": "snap", "RootDeviceName": "/dev/sda1",
               "BlockDeviceMapping.1.DeviceName": "/dev/sda1",
               "BlockDeviceMapping.1.Ebs.SnapshotId": "snap-0123456789abcdef0"}),
        &[],
        400,
        "InvalidParameterCombination",
    );
    let imgs = ok(
        &s,
        Some(&member),
        json!({"Action": "DescribeImages", "Owner.1": "self"}),
    );
    assert!(texts(&imgs, "imageId").is_empty(), "{imgs}");
}
