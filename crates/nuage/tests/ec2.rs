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
