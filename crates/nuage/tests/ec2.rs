//! The EC2 Query API (issue 12) through real clients against a real
//! `nuage serve`: both aws CLIs (awscli 1.x on PATH, Debian's 2.9 at
//! /usr/bin/aws, always with --endpoint-url), python3-boto3, and requests
//! signed by botocore's own signer (`tests/ec2/query.py`) for the inputs no
//! client sends.
//!
//! A missing client fails the test: scripts/test installs them all.

mod common;

use std::process::Command;

use common::{Aws, Options, Server};
use serde_json::{json, Value};

/// A server without a compute node, for the calls that need none.
fn start_plain() -> Server {
    Server::start_with(Options {
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "none".into())],
        ..Options::default()
    })
}

/// One request signed by botocore (see `tests/ec2/query.py`): (status, body).
fn query(s: &Server, params: &Value, flags: &[&str]) -> (u16, String) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ec2/query.py");
    let mut c = s.client("python3");
    c.arg(script)
        .arg(s.url())
        .arg(params.to_string())
        .args(flags);
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

/// The `<Code>` of an EC2 error document.
fn code(body: &str) -> String {
    let at = body.find("<Code>").map(|i| i + 6).unwrap_or(0);
    let end = body[at..].find("</Code>").map_or(at, |i| at + i);
    body[at..end].to_string()
}

fn both_clis(s: &Server, cwd: &std::path::Path, each: impl Fn(&Aws<'_>)) {
    for bin in ["aws", "/usr/bin/aws"] {
        each(&Aws { srv: s, bin, cwd });
    }
}

#[test]
fn regions_zones_and_account_attributes_through_both_aws_clis() {
    let s = start_plain();
    let work = tempfile::tempdir().expect("tempdir");
    let region = s.env()["AWS_DEFAULT_REGION"].clone();
    both_clis(&s, work.path(), |aws| {
        let r = aws.json(&["ec2", "describe-regions"]);
        let regions = r["Regions"].as_array().expect("Regions");
        assert_eq!(regions.len(), 1, "{r}");
        assert_eq!(regions[0]["RegionName"], region.as_str());
        assert!(
            s.url()
                .contains(regions[0]["Endpoint"].as_str().expect("Endpoint")),
            "{r}"
        );
        let r = aws.json(&[
            "ec2",
            "describe-regions",
            "--filters",
            "Name=region-name,Values=no-such-*",
        ]);
        assert_eq!(r["Regions"], json!([]), "{r}");

        let z = aws.json(&["ec2", "describe-availability-zones"]);
        let zones = z["AvailabilityZones"].as_array().expect("zones");
        assert!(!zones.is_empty(), "{z}");
        assert_eq!(zones[0]["RegionName"], region.as_str());
        assert_eq!(zones[0]["State"], "available");
        let name = zones[0]["ZoneName"].as_str().expect("ZoneName").to_string();
        let z = aws.json(&["ec2", "describe-availability-zones", "--zone-names", &name]);
        assert_eq!(z["AvailabilityZones"][0]["ZoneName"], name.as_str());
        let err = aws.fails(&[
            "ec2",
            "describe-availability-zones",
            "--zone-names",
            "nowhere-9z",
        ]);
        assert!(err.contains("InvalidParameterValue"), "{err}");

        let a = aws.json(&["ec2", "describe-account-attributes"]);
        let attrs = a["AccountAttributes"].as_array().expect("attributes");
        let names: Vec<&str> = attrs
            .iter()
            .filter_map(|x| x["AttributeName"].as_str())
            .collect();
        assert!(names.contains(&"supported-platforms"), "{a}");
        assert!(names.contains(&"max-instances"), "{a}");
    });
}

#[test]
fn requests_are_recognised_before_anything_acts() {
    let s = start_plain();
    let ok = query(&s, &json!({"Action": "DescribeRegions"}), &[]);
    assert_eq!(ok.0, 200, "{}", ok.1);
    assert!(
        ok.1.contains(
            "<DescribeRegionsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
        ),
        "{}",
        ok.1
    );
    assert!(ok.1.contains("<requestId>"), "{}", ok.1);
    let get = query(&s, &json!({"Action": "DescribeRegions"}), &["--get"]);
    assert_eq!(get.0, 200, "GET: {}", get.1);

    let cases: &[(Value, &[&str], u16, &str)] = &[
        (
            json!({"Action": "LaunchRockets"}),
            &[],
            400,
            "InvalidAction",
        ),
        (
            json!({"Action": "DescribeRegions", "Bogus": "1"}),
            &[],
            400,
            "UnknownParameter",
        ),
        (
            json!({"Action": "DescribeRegions", "Version": ""}),
            &[],
            400,
            "MissingParameter",
        ),
        (
            json!({"Action": "DescribeRegions", "RegionName.0": "x"}),
            &[],
            400,
            "InvalidParameterValue",
        ),
        (
            json!({"Action": "DescribeRegions", "Filter.1.Name": "nope", "Filter.1.Value.1": "x"}),
            &[],
            400,
            "InvalidParameterValue",
        ),
        (
            json!({"Action": "DescribeRegions", "DryRun": "maybe"}),
            &[],
            400,
            "InvalidParameterValue",
        ),
        (json!({"Version": "2016-11-15"}), &[], 400, "MissingAction"),
        (
            json!({"Action": "DescribeRegions"}),
            &["--unsigned"],
            401,
            "AuthFailure",
        ),
        (
            json!({"Action": "DescribeRegions"}),
            &["--secret", "wrong"],
            401,
            "SignatureDoesNotMatch",
        ),
        (
            json!({"Action": "DescribeRegions"}),
            &["--region", "elsewhere-1"],
            401,
            "AuthFailure",
        ),
        (
            json!({"Action": "DescribeRegions", "DryRun": "true"}),
            &[],
            412,
            "DryRunOperation",
        ),
    ];
    for (params, flags, status, want) in cases {
        let (st, body) = query(&s, params, flags);
        assert_eq!(
            (st, code(&body).as_str()),
            (*status, *want),
            "{params} {flags:?}: {body}"
        );
        assert!(body.contains("<Response><Errors><Error>"), "{body}");
        assert!(body.contains("<RequestID>"), "{body}");
    }

    // Both CLIs read the codes.
    let work = tempfile::tempdir().expect("tempdir");
    both_clis(&s, work.path(), |aws| {
        let err = aws.fails(&["ec2", "describe-regions", "--dry-run"]);
        assert!(err.contains("DryRunOperation"), "{}: {err}", aws.bin);
    });
    // Unsigned EC2 calls without a form body still reach the EC2 door.
    let r = Command::new("python3")
        .args(["-c", &format!("import urllib.request,urllib.error\ntry:\n urllib.request.urlopen('{}/?Action=DescribeRegions&Version=2016-11-15')\nexcept urllib.error.HTTPError as e:\n print(e.code, e.read().decode())", s.url())])
        .env("SSL_CERT_FILE", s.env().get("AWS_CA_BUNDLE").cloned().unwrap_or_default())
        .output()
        .expect("python3");
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(
        out.starts_with("401") && out.contains("<Code>AuthFailure</Code>"),
        "{out}"
    );
}

/// The image id of the public busybox image, as EC2 names it.
fn busybox_ami(aws: &Aws<'_>) -> String {
    let v = aws.json(&[
        "ec2",
        "describe-images",
        "--owners",
        "amazon",
        "--filters",
        "Name=name,Values=busybox",
    ]);
    v["Images"][0]["ImageId"]
        .as_str()
        .unwrap_or_else(|| panic!("no busybox image: {v}"))
        .to_string()
}

fn ids(v: &Value) -> Vec<String> {
    v["Instances"]
        .as_array()
        .expect("Instances")
        .iter()
        .map(|i| i["InstanceId"].as_str().expect("InstanceId").to_string())
        .collect()
}

#[test]
fn key_pairs_through_both_aws_clis() {
    let s = start_plain();
    let work = tempfile::tempdir().expect("tempdir");
    both_clis(&s, work.path(), |aws| {
        let tag = if aws.bin == "aws" { "one" } else { "two" };
        let rsa = format!("rsa-{tag}");
        let k = aws.json(&["ec2", "create-key-pair", "--key-name", &rsa]);
        assert!(
            k["KeyMaterial"]
                .as_str()
                .expect("material")
                .contains("PRIVATE KEY"),
            "{k}"
        );
        assert!(
            k["KeyPairId"].as_str().expect("id").starts_with("key-"),
            "{k}"
        );
        let ed = format!("ed-{tag}");
        let k = aws.json(&[
            "ec2",
            "create-key-pair",
            "--key-name",
            &ed,
            "--key-type",
            "ed25519",
        ]);
        assert!(
            k["KeyMaterial"]
                .as_str()
                .expect("material")
                .contains("OPENSSH PRIVATE KEY"),
            "{k}"
        );
        let err = aws.fails(&["ec2", "create-key-pair", "--key-name", &rsa]);
        assert!(err.contains("InvalidKeyPair.Duplicate"), "{err}");
        let err = aws.fails(&[
            "ec2",
            "create-key-pair",
            "--key-name",
            "x",
            "--key-type",
            "dsa",
        ]);
        assert!(
            err.contains("InvalidParameterValue")
                || err.contains("Invalid choice")
                || err.contains("Invalid value"),
            "{err}"
        );

        let pubkey = work.path().join(format!("{tag}.pub"));
        std::fs::write(&pubkey, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEWZPN7ksbi7VR5HPq0eGRrqASUr4nMn2ZtG9RfZeJfS test@nuage\n").expect("write key");
        let imported = format!("imported-{tag}");
        let k = aws.json(&[
            "ec2",
            "import-key-pair",
            "--key-name",
            &imported,
            "--public-key-material",
            &format!("fileb://{}", pubkey.display()),
        ]);
        assert_eq!(k["KeyName"], imported.as_str(), "{k}");
        let d = aws.json(&["ec2", "describe-key-pairs", "--key-names", &imported, &ed]);
        assert_eq!(d["KeyPairs"].as_array().expect("KeyPairs").len(), 2, "{d}");
        let d = aws.json(&[
            "ec2",
            "describe-key-pairs",
            "--filters",
            "Name=key-type,Values=ed25519",
            "Name=key-name,Values=*-".to_string().as_str(),
        ]);
        assert_eq!(d["KeyPairs"], json!([]), "{d}");
        let d = aws.json(&[
            "ec2",
            "describe-key-pairs",
            "--filters",
            &format!("Name=key-name,Values=*-{tag}"),
            "Name=key-type,Values=ed25519",
        ]);
        assert_eq!(d["KeyPairs"].as_array().expect("KeyPairs").len(), 2, "{d}");
        let err = aws.fails(&["ec2", "describe-key-pairs", "--key-names", "nobody"]);
        assert!(err.contains("InvalidKeyPair.NotFound"), "{err}");
        aws.ok(&["ec2", "delete-key-pair", "--key-name", &imported]);
        let err = aws.fails(&["ec2", "describe-key-pairs", "--key-names", &imported]);
        assert!(err.contains("InvalidKeyPair.NotFound"), "{err}");
    });
}

#[test]
fn instances_from_run_to_terminate_with_both_aws_clis_and_boto3() {
    let s = Server::start();
    common::build_busybox(&s);
    let work = tempfile::tempdir().expect("tempdir");
    let aws = Aws {
        srv: &s,
        bin: "aws",
        cwd: work.path(),
    };
    let ami = busybox_ami(&aws);
    aws.ok(&["ec2", "create-key-pair", "--key-name", "k1"]);

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
        "k1",
        "--user-data",
        "#!/bin/sh\necho hello-from-ec2-user-data\n",
        "--tag-specifications",
        "ResourceType=instance,Tags=[{Key=Name,Value=web},{Key=team,Value=blue}]",
        "--client-token",
        "scenario-1",
    ]);
    let launched = ids(&run);
    assert_eq!(launched.len(), 2, "{run}");
    assert_eq!(run["Instances"][0]["State"]["Name"], "pending", "{run}");
    // ClientToken: the retry answers the same instances.
    let again = aws.json(&[
        "ec2",
        "run-instances",
        "--image-id",
        &ami,
        "--instance-type",
        "t2.nano",
        "--count",
        "2",
        "--key-name",
        "k1",
        "--client-token",
        "scenario-1",
    ]);
    assert_eq!(ids(&again), launched);

    let mut wait = vec!["ec2", "wait", "instance-running", "--instance-ids"];
    wait.extend(launched.iter().map(String::as_str));
    aws.ok(&wait);

    // Debian's awscli 2.9 reads the same instances, with filters.
    let aws2 = Aws {
        srv: &s,
        bin: "/usr/bin/aws",
        cwd: work.path(),
    };
    for a in [&aws, &aws2] {
        let d = a.json(&[
            "ec2",
            "describe-instances",
            "--filters",
            "Name=tag:Name,Values=w?b",
            "Name=instance-state-name,Values=running",
        ]);
        let insts: Vec<&Value> = d["Reservations"]
            .as_array()
            .expect("Reservations")
            .iter()
            .flat_map(|r| r["Instances"].as_array().expect("Instances").iter())
            .collect();
        assert_eq!(insts.len(), 2, "{d}");
        for i in &insts {
            assert_eq!(i["State"]["Code"], 16, "{i}");
            assert_eq!(i["KeyName"], "k1");
            assert_eq!(i["ImageId"], ami.as_str());
            let ip = i["PrivateIpAddress"].as_str().expect("PrivateIpAddress");
            assert!(
                i["PrivateDnsName"]
                    .as_str()
                    .expect("dns")
                    .starts_with(&format!("ip-{}", ip.replace('.', "-"))),
                "{i}"
            );
            assert!(
                i["VpcId"].as_str().expect("VpcId").starts_with("vpc-"),
                "{i}"
            );
            assert!(
                i["SubnetId"]
                    .as_str()
                    .expect("SubnetId")
                    .starts_with("subnet-"),
                "{i}"
            );
            assert_eq!(i["NetworkInterfaces"][0]["PrivateIpAddress"], ip);
            assert_eq!(i["SecurityGroups"][0]["GroupName"], "default", "{i}");
            assert_eq!(
                i["Placement"]["AvailabilityZone"]
                    .as_str()
                    .map(|z| !z.is_empty()),
                Some(true)
            );
            assert!(i["LaunchTime"].as_str().is_some());
            let tags: Vec<&Value> = i["Tags"].as_array().expect("Tags").iter().collect();
            assert_eq!(tags.len(), 2, "{i}");
        }
        let d = a.json(&[
            "ec2",
            "describe-instances",
            "--filters",
            "Name=tag:Name,Values=db",
        ]);
        assert_eq!(d["Reservations"], json!([]), "{d}");
        let d = a.json(&[
            "ec2",
            "describe-instance-status",
            "--instance-ids",
            &launched[0],
        ]);
        assert_eq!(
            d["InstanceStatuses"][0]["InstanceState"]["Name"], "running",
            "{d}"
        );
    }

    // Console output carries what the user data printed.
    let mut console = String::new();
    for _ in 0..40 {
        let c = aws.json(&["ec2", "get-console-output", "--instance-id", &launched[0]]);
        console = c["Output"].as_str().unwrap_or_default().to_string();
        if console.contains("hello-from-ec2-user-data") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    assert!(
        console.contains("hello-from-ec2-user-data"),
        "console: {console:?}"
    );

    // boto3: paginator over MaxResults, waiter, attribute calls.
    let script = r#"
import boto3, os, sys
ec2 = boto3.client("ec2", endpoint_url=sys.argv[1], verify=os.environ.get("AWS_CA_BUNDLE") or None)
ids = sys.argv[2:]
pages = list(ec2.get_paginator("describe_instances").paginate(PaginationConfig={"PageSize": 5}))
seen = [i["InstanceId"] for p in pages for r in p["Reservations"] for i in r["Instances"]]
assert sorted(seen) == sorted(ids), (seen, ids)
ud = ec2.describe_instance_attribute(InstanceId=ids[0], Attribute="userData")
import base64
assert b"hello-from-ec2-user-data" in base64.b64decode(ud["UserData"]["Value"]), ud
ec2.stop_instances(InstanceIds=[ids[1]])
ec2.get_waiter("instance_stopped").wait(InstanceIds=[ids[1]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
ec2.modify_instance_attribute(InstanceId=ids[1], InstanceType={"Value": "t2.micro"})
t = ec2.describe_instance_attribute(InstanceId=ids[1], Attribute="instanceType")
assert t["InstanceType"]["Value"] == "t2.micro", t
ec2.start_instances(InstanceIds=[ids[1]])
ec2.get_waiter("instance_running").wait(InstanceIds=[ids[1]], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
ec2.reboot_instances(InstanceIds=[ids[1]])
print("boto3 ok")
"#;
    let mut c = s.client("python3");
    c.args(["-c", script, &s.url()]).args(&launched);
    let (ok, out, err) = common::run(&mut c);
    assert!(
        ok && out.contains("boto3 ok"),
        "boto3: {out}\n{err}\n{}",
        s.logs()
    );

    // Tags on instances and network resources, one surface.
    let sg = aws.json(&[
        "ec2",
        "describe-security-groups",
        "--group-names",
        "default",
    ])["SecurityGroups"][0]["GroupId"]
        .as_str()
        .expect("default group")
        .to_string();
    aws.ok(&[
        "ec2",
        "create-tags",
        "--resources",
        &launched[0],
        &sg,
        "--tags",
        "Key=env,Value=prod",
        "Key=owner,Value=ops",
    ]);
    let t = aws.json(&["ec2", "describe-tags", "--filters", "Name=key,Values=env"]);
    let mut tagged: Vec<(String, String)> = t["Tags"]
        .as_array()
        .expect("Tags")
        .iter()
        .map(|x| {
            (
                x["ResourceId"].as_str().unwrap_or("").to_string(),
                x["ResourceType"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    tagged.sort();
    let mut want = vec![
        (launched[0].clone(), "instance".to_string()),
        (sg.clone(), "security-group".to_string()),
    ];
    want.sort();
    assert_eq!(tagged, want, "{t}");
    let d = aws.json(&[
        "ec2",
        "describe-instances",
        "--filters",
        "Name=tag:env,Values=prod",
    ]);
    assert_eq!(
        d["Reservations"][0]["Instances"].as_array().map(Vec::len),
        Some(1),
        "{d}"
    );
    aws.ok(&[
        "ec2",
        "delete-tags",
        "--resources",
        &launched[0],
        "--tags",
        "Key=env,Value=staging",
        "Key=owner",
    ]);
    let t = aws.json(&[
        "ec2",
        "describe-tags",
        "--filters",
        &format!("Name=resource-id,Values={}", launched[0]),
    ]);
    let keys: Vec<&str> = t["Tags"]
        .as_array()
        .expect("Tags")
        .iter()
        .filter_map(|x| x["Key"].as_str())
        .collect();
    assert!(
        keys.contains(&"env") && !keys.contains(&"owner"),
        "value-qualified delete keeps env, removes owner: {t}"
    );
    // An unknown id among several changes none of them.
    let err = aws.fails(&[
        "ec2",
        "create-tags",
        "--resources",
        &launched[1],
        "i-0123456789abcdef0",
        "--tags",
        "Key=x,Value=y",
    ]);
    assert!(err.contains("InvalidInstanceID.NotFound"), "{err}");
    let t = aws.json(&["ec2", "describe-tags", "--filters", "Name=key,Values=x"]);
    assert_eq!(t["Tags"], json!([]), "{t}");

    // Errors clients branch on.
    let err = aws.fails(&[
        "ec2",
        "describe-instances",
        "--instance-ids",
        "i-0123456789abcdef0",
    ]);
    assert!(err.contains("InvalidInstanceID.NotFound"), "{err}");
    let err = aws.fails(&["ec2", "describe-instances", "--instance-ids", "i-nothex"]);
    assert!(err.contains("InvalidInstanceID.Malformed"), "{err}");
    let err = aws.fails(&[
        "ec2",
        "run-instances",
        "--image-id",
        "ami-0123456789abcdef0",
        "--instance-type",
        "t2.nano",
    ]);
    assert!(err.contains("InvalidAMIID.NotFound"), "{err}");
    let err = aws.fails(&[
        "ec2",
        "run-instances",
        "--image-id",
        "busybox",
        "--instance-type",
        "t2.nano",
    ]);
    assert!(err.contains("InvalidAMIID.Malformed"), "{err}");
    let err = aws.fails(&[
        "ec2",
        "run-instances",
        "--image-id",
        &ami,
        "--instance-type",
        "t2.nano",
        "--key-name",
        "nokey",
    ]);
    assert!(err.contains("InvalidKeyPair.NotFound"), "{err}");
    let err = aws.fails(&[
        "ec2",
        "run-instances",
        "--image-id",
        &ami,
        "--instance-type",
        "t2.nano",
        "--dry-run",
    ]);
    assert!(err.contains("DryRunOperation"), "{err}");
    let err = aws.fails(&[
        "ec2",
        "describe-instances",
        "--filters",
        "Name=no-such-filter,Values=x",
    ]);
    assert!(err.contains("InvalidParameterValue"), "{err}");

    let mut term = vec!["ec2", "terminate-instances", "--instance-ids"];
    term.extend(launched.iter().map(String::as_str));
    let t = aws.json(&term);
    assert_eq!(
        t["TerminatingInstances"].as_array().expect("changes").len(),
        2,
        "{t}"
    );
    let mut wait = vec!["ec2", "wait", "instance-terminated", "--instance-ids"];
    wait.extend(launched.iter().map(String::as_str));
    aws.ok(&wait);
    let err = aws.fails(&["ec2", "stop-instances", "--instance-ids", &launched[0]]);
    assert!(err.contains("IncorrectInstanceState"), "{err}");
    // Nothing ran without being asked: only the two launched exist.
    let d = aws.json(&["ec2", "describe-instances"]);
    let all: Vec<&Value> = d["Reservations"]
        .as_array()
        .expect("r")
        .iter()
        .flat_map(|r| r["Instances"].as_array().expect("i").iter())
        .collect();
    assert_eq!(all.len(), 2, "{d}");
}

#[tokio::test(flavor = "multi_thread")]
async fn images_registered_from_an_object_shared_and_deregistered() {
    let s = start_plain();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let tar = common::rootfs_tar(w);

    let aws = Aws {
        srv: &s,
        bin: "aws",
        cwd: w,
    };
    aws.ok(&["s3", "mb", "s3://imgs"]);
    aws.ok(&["s3", "cp", tar.to_str().expect("path"), "s3://imgs/bb.tar"]);
    let before = aws.json(&["ec2", "describe-images", "--owners", "self"])["Images"]
        .as_array()
        .map_or(0, Vec::len);

    // Bad input changes nothing.
    let err = aws.fails(&["ec2", "register-image", "--name", "nowhere"]);
    assert!(err.contains("MissingParameter"), "{err}");
    let err = aws.fails(&[
        "ec2",
        "register-image",
        "--name",
        "nowhere",
        "--image-location",
        "imgs/missing.tar",
    ]);
    assert!(err.contains("InvalidParameterValue"), "{err}");
    let garbage = w.join("garbage.tar");
    std::fs::write(&garbage, b"this is not a tar").expect("write");
    aws.ok(&[
        "s3",
        "cp",
        garbage.to_str().expect("path"),
        "s3://imgs/garbage.tar",
    ]);
    let err = aws.fails(&[
        "ec2",
        "register-image",
        "--name",
        "garbage",
        "--image-location",
        "imgs/garbage.tar",
    ]);
    assert!(err.contains("InvalidParameterValue"), "{err}");
    let after = aws.json(&["ec2", "describe-images", "--owners", "self"])["Images"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        before, after,
        "a refused RegisterImage left an image behind"
    );

    let r = aws.json(&[
        "ec2",
        "register-image",
        "--name",
        "my-busybox",
        "--image-location",
        "imgs/bb.tar",
        "--architecture",
        "x86_64",
        "--description",
        "from an object",
    ]);
    let ami = r["ImageId"].as_str().expect("ImageId").to_string();
    let d = aws.json(&["ec2", "describe-images", "--image-ids", &ami]);
    assert_eq!(d["Images"][0]["State"], "available", "{d}");
    assert_eq!(d["Images"][0]["Name"], "my-busybox");
    let d = aws.json(&[
        "ec2",
        "describe-image-attribute",
        "--image-id",
        &ami,
        "--attribute",
        "description",
    ]);
    assert_eq!(d["Description"]["Value"], "from an object", "{d}");

    // Shared with another project, whose member then sees it.
    let (other, _) = common::project_with_member(&s, "ec2-images-other", "Other-password-1").await;
    aws.ok(&[
        "ec2",
        "modify-image-attribute",
        "--image-id",
        &ami,
        "--launch-permission",
        &format!("Add=[{{UserId={other}}}]"),
    ]);
    let d = aws.json(&[
        "ec2",
        "describe-image-attribute",
        "--image-id",
        &ami,
        "--attribute",
        "launchPermission",
    ]);
    assert_eq!(d["LaunchPermissions"], json!([{"UserId": other}]), "{d}");
    let err = aws.fails(&[
        "ec2",
        "modify-image-attribute",
        "--image-id",
        &ami,
        "--launch-permission",
        "Add=[{UserId=no-such-project}]",
    ]);
    assert!(err.contains("InvalidUserID.Malformed"), "{err}");
    aws.ok(&[
        "ec2",
        "modify-image-attribute",
        "--image-id",
        &ami,
        "--launch-permission",
        &format!("Remove=[{{UserId={other}}}]"),
    ]);
    let d = aws.json(&[
        "ec2",
        "describe-image-attribute",
        "--image-id",
        &ami,
        "--attribute",
        "launchPermission",
    ]);
    assert_eq!(d["LaunchPermissions"], json!([]), "{d}");

    aws.ok(&["ec2", "deregister-image", "--image-id", &ami]);
    let err = aws.fails(&["ec2", "describe-images", "--image-ids", &ami]);
    assert!(err.contains("InvalidAMIID.NotFound"), "{err}");
    let err = aws.fails(&["ec2", "deregister-image", "--image-id", &ami]);
    assert!(err.contains("InvalidAMIID.NotFound"), "{err}");
}
