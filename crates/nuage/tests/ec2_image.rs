//! EC2 CreateImage (issue 12, ADR 28) through both aws CLIs (awscli 1.x on
//! PATH, Debian's 2.9 at /usr/bin/aws, always with --endpoint-url) against
//! a real `nuage serve` running instances with the container driver:
//! create-image of a running instance, `wait image-available`, the image in
//! describe-images, an instance of it that sees what the first one wrote,
//! deregister; and every refusal with the code clients branch on.
//!
//! Needs root, runc, busybox-static and both aws CLIs, as CI has.

mod common;

use std::time::{Duration, Instant};

use common::{call, project_with_member, Cli, Server};
use serde_json::json;

/// A project `name` with a member and EC2 credentials of its own.
async fn other_project(s: &Server, name: &str) -> (String, String) {
    let (pid, uid) = project_with_member(s, name, "correct horse battery staple").await;
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
    let field = |k: &str| c["credential"][k].as_str().expect("credential").to_string();
    (field("access"), field("secret"))
}

async fn console_until(s: &Server, id: &str, needle: &str) -> String {
    let t = s.admin_token().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, v) = call(
            s,
            &t,
            "GET",
            &format!("/nuage/v1/instances/{id}/console"),
            None,
        )
        .await;
        let c = v["output"].as_str().unwrap_or_default().to_string();
        if c.contains(needle) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not on {id}'s console:\n{c}\n{}",
            s.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn run_one(aws: &Cli<'_>, image: &str, user_data: &str) -> String {
    let r = aws.json(&[
        "ec2",
        "run-instances",
        "--image-id",
        image,
        "--instance-type",
        "t2.nano",
        "--count",
        "1",
        "--user-data",
        user_data,
    ]);
    r["Instances"][0]["InstanceId"]
        .as_str()
        .unwrap_or_else(|| panic!("no instance: {r}"))
        .to_string()
}

#[tokio::test]
async fn create_image_wait_describe_launch_deregister_and_refusals() {
    let s = Server::start();
    common::build_busybox(&s);
    let (key, secret) = other_project(&s, "ec2-image-other").await;
    let work = tempfile::tempdir().expect("tempdir");
    let aws = Cli {
        s: &s,
        bin: "aws",
        cwd: work.path(),
        creds: None,
    };
    let busybox = aws.json(&[
        "ec2",
        "describe-images",
        "--owners",
        "amazon",
        "--filters",
        "Name=name,Values=busybox",
    ])["Images"][0]["ImageId"]
        .as_str()
        .expect("busybox image")
        .to_string();
    let source = run_one(
        &aws,
        &busybox,
        "#!/bin/sh\necho made-by-the-source > /root/kept\nsync\necho wrote-it\n",
    );
    aws.json(&["ec2", "wait", "instance-running", "--instance-ids", &source]);
    console_until(&s, &source, "wrote-it").await;

    for (n, bin) in ["aws", "/usr/bin/aws"].into_iter().enumerate() {
        let cli = Cli {
            s: &s,
            bin,
            cwd: work.path(),
            creds: None,
        };
        let name = format!("web-server-{n}");
        let r = cli.json(&[
            "ec2",
            "create-image",
            "--instance-id",
            &source,
            "--name",
            &name,
            "--description",
            "the source's disk",
            "--tag-specifications",
            "ResourceType=image,Tags=[{Key=team,Value=blue}]",
        ]);
        let ami = r["ImageId"]
            .as_str()
            .unwrap_or_else(|| panic!("{r}"))
            .to_string();
        assert!(ami.starts_with("ami-"), "{r}");
        cli.json(&["ec2", "wait", "image-available", "--image-ids", &ami]);
        let d = cli.json(&[
            "ec2",
            "describe-images",
            "--owners",
            "self",
            "--image-ids",
            &ami,
        ]);
        let im = &d["Images"][0];
        assert_eq!(im["State"], "available", "{d}");
        assert_eq!(im["Name"], name.as_str(), "{d}");
        assert_eq!(im["Description"], "the source's disk", "{d}");
        assert_eq!(im["Tags"], json!([{"Key": "team", "Value": "blue"}]), "{d}");
        let owner = im["OwnerId"].as_str().expect("OwnerId");
        let mine = cli.json(&[
            "ec2",
            "describe-images",
            "--owners",
            owner,
            "--filters",
            &format!("Name=name,Values={name}"),
        ]);
        assert_eq!(mine["Images"].as_array().map(Vec::len), Some(1), "{mine}");

        // An instance of the new image reaches running and sees the file.
        let copy = run_one(
            &cli,
            &ami,
            "#!/bin/sh\necho \"copy-sees: $(cat /root/kept)\"\n",
        );
        cli.json(&["ec2", "wait", "instance-running", "--instance-ids", &copy]);
        console_until(&s, &copy, "copy-sees: made-by-the-source").await;
        let d = cli.json(&["ec2", "describe-instances", "--instance-ids", &copy]);
        assert_eq!(
            d["Reservations"][0]["Instances"][0]["ImageId"],
            ami.as_str(),
            "{d}"
        );

        // A terminated instance cannot be imaged.
        cli.json(&["ec2", "terminate-instances", "--instance-ids", &copy]);
        cli.json(&[
            "ec2",
            "wait",
            "instance-terminated",
            "--instance-ids",
            &copy,
        ]);
        cli.fails(
            "IncorrectInstanceState",
            &[
                "ec2",
                "create-image",
                "--instance-id",
                &copy,
                "--name",
                "of-terminated",
            ],
        );
        // A name taken in the project.
        cli.fails(
            "InvalidAMIName.Duplicate",
            &[
                "ec2",
                "create-image",
                "--instance-id",
                &source,
                "--name",
                &name,
            ],
        );
        cli.json(&["ec2", "deregister-image", "--image-id", &ami]);
        cli.fails(
            "InvalidAMIID.NotFound",
            &["ec2", "describe-images", "--image-ids", &ami],
        );
    }

    // Refusals, each changing nothing.
    let create = |name: &str| {
        vec![
            "ec2".to_string(),
            "create-image".into(),
            "--instance-id".into(),
            source.clone(),
            "--name".into(),
            name.to_string(),
        ]
    };
    let args = |v: &[String]| v.to_vec();
    let refuse = |cli: &Cli<'_>, code: &str, v: Vec<String>| {
        let v: Vec<&str> = v.iter().map(String::as_str).collect();
        cli.fails(code, &v);
    };
    // EC2's name rule (a character it refuses; the CLIs check the length
    // themselves), and nuage's (a name shaped like an id), through the
    // typed error path.
    refuse(&aws, "InvalidAMIName.Malformed", create("bad*name"));
    refuse(&aws, "InvalidAMIName.Malformed", create("ami-0123abcd"));
    let mut v = args(&create("with-volumes"));
    v.extend([
        "--block-device-mappings".into(),
        "DeviceName=/dev/sdb,Ebs={VolumeSize=1}".into(),
    ]);
    refuse(&aws, "InvalidParameterValue", v);
    let mut v = args(&create("tagged-wrong"));
    v.extend([
        "--tag-specifications".into(),
        "ResourceType=instance,Tags=[{Key=a,Value=b}]".into(),
    ]);
    refuse(&aws, "InvalidParameterValue", v);
    let mut v = args(&create("dry"));
    v.push("--dry-run".into());
    refuse(&aws, "DryRunOperation", v);
    refuse(
        &aws,
        "InvalidInstanceID.NotFound",
        vec![
            "ec2".into(),
            "create-image".into(),
            "--instance-id".into(),
            "i-0123456789abcdef0".into(),
            "--name".into(),
            "nobody-home".into(),
        ],
    );
    refuse(
        &aws,
        "InvalidInstanceID.Malformed",
        vec![
            "ec2".into(),
            "create-image".into(),
            "--instance-id".into(),
            "x-1".into(),
            "--name".into(),
            "malformed".into(),
        ],
    );
    // Another project's instance is not found, for either CLI.
    for bin in ["aws", "/usr/bin/aws"] {
        let other = Cli {
            s: &s,
            bin,
            cwd: work.path(),
            creds: Some((key.clone(), secret.clone())),
        };
        refuse(&other, "InvalidInstanceID.NotFound", create("not-yours"));
    }
    // Nothing was made by any refusal: the admin's project owns the
    // busybox image it built, and no other.
    let mine = aws.json(&["ec2", "describe-images", "--owners", "self"]);
    let names: Vec<&str> = mine["Images"]
        .as_array()
        .expect("Images")
        .iter()
        .filter_map(|i| i["Name"].as_str())
        .collect();
    assert_eq!(names, ["busybox"], "{mine}");

    // A stopped instance is imaged too (awscli 2.9, --no-reboot).
    aws.json(&["ec2", "stop-instances", "--instance-ids", &source]);
    aws.json(&["ec2", "wait", "instance-stopped", "--instance-ids", &source]);
    let aws2 = Cli {
        s: &s,
        bin: "/usr/bin/aws",
        cwd: work.path(),
        creds: None,
    };
    let r = aws2.json(&[
        "ec2",
        "create-image",
        "--instance-id",
        &source,
        "--name",
        "of-stopped",
        "--no-reboot",
    ]);
    let ami = r["ImageId"].as_str().expect("ImageId").to_string();
    aws2.json(&["ec2", "wait", "image-available", "--image-ids", &ami]);
    let d = aws.json(&["ec2", "describe-instances", "--instance-ids", &source]);
    assert_eq!(
        d["Reservations"][0]["Instances"][0]["State"]["Name"], "stopped",
        "{d}"
    );
    aws.json(&["ec2", "deregister-image", "--image-id", &ami]);
    aws.json(&["ec2", "terminate-instances", "--instance-ids", &source]);
}
