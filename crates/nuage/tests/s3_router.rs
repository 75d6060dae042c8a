//! The S3 front door recognises every request before anything acts
//! (issue 10, docs/adr/0012): a sub-resource nuage does not implement
//! answers `501 NotImplemented` and changes nothing; a combination that
//! names no S3 operation answers an S3 error; neither reaches the plain
//! bucket or object handler.
//!
//! Driven by both aws CLIs (awscli 1.x on PATH, Debian's 2.9 at
//! /usr/bin/aws) and by botocore-signed raw requests for the table of every
//! sub-resource of the S3 API reference. A missing client fails the test:
//! scripts/test installs them all.

mod common;

use std::collections::BTreeMap;

use common::{Aws, Options, Server};
use serde_json::{json, Value};

fn start() -> Server {
    Server::start_with(Options {
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "none".into())],
        ..Options::default()
    })
}

// ------------------------------------------------------------------ aws CLIs

/// Runs a command that must fail with the S3 error `code`.
fn fails_with(aws: &Aws, code: &str, args: &[&str]) {
    let err = aws.fails(args);
    assert!(
        err.contains(code),
        "{} {}: expected {code}: {err}",
        aws.bin,
        args.join(" ")
    );
}

/// Everything a client can see of the bucket and its object `key`.
fn state(aws: &Aws, bucket: &str, key: &str) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("body");
    let mut head = aws.json(&[
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        key,
        out.to_str().expect("utf-8 path"),
    ]);
    // The CLIs differ in what they print besides the object's headers.
    let head = json!({
        "ETag": head["ETag"].take(),
        "ContentLength": head["ContentLength"].take(),
        "ContentType": head["ContentType"].take(),
        "Metadata": head["Metadata"].take(),
    });
    let body = std::fs::read(&out).expect("read the object's body");
    let buckets = aws.json(&["s3api", "list-buckets"]);
    let names: Vec<&str> = buckets["Buckets"]
        .as_array()
        .map(|a| a.iter().filter_map(|b| b["Name"].as_str()).collect())
        .unwrap_or_default();
    let list = aws.json(&["s3api", "list-objects-v2", "--bucket", bucket]);
    let keys: Vec<(&str, &str)> = list["Contents"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|o| {
                    (
                        o["Key"].as_str().unwrap_or_default(),
                        o["ETag"].as_str().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let bucket_acl = aws.json(&["s3api", "get-bucket-acl", "--bucket", bucket]);
    let object_acl = aws.json(&["s3api", "get-object-acl", "--bucket", bucket, "--key", key]);
    json!({
        "buckets": names,
        "keys": keys,
        "object": head,
        "body": String::from_utf8_lossy(&body),
        "bucket_acl": bucket_acl,
        "object_acl": object_acl,
    })
}

/// The calls issue 10 found acting on the wrong thing, through one CLI.
fn unimplemented_calls_change_nothing(srv: &Server, bin: &str, bucket: &str) {
    let work = tempfile::tempdir().expect("tempdir");
    let aws = Aws {
        srv,
        bin,
        cwd: work.path(),
    };
    std::fs::write(work.path().join("body.txt"), "the original bytes\n").expect("write body");
    aws.json(&["s3api", "create-bucket", "--bucket", bucket]);
    aws.json(&[
        "s3api",
        "put-object",
        "--bucket",
        bucket,
        "--key",
        "doc.txt",
        "--body",
        "body.txt",
        "--content-type",
        "text/plain",
        "--metadata",
        "color=blue",
    ]);
    let before = state(&aws, bucket, "doc.txt");
    assert_eq!(before["body"], json!("the original bytes\n"), "{before}");
    let obj = ["--bucket", bucket, "--key", "doc.txt"];
    let bkt = ["--bucket", bucket];
    let with = |verb: &str, base: &[&str], extra: &[&str]| -> Vec<String> {
        ["s3api", verb]
            .iter()
            .chain(base)
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let refused: Vec<Vec<String>> = vec![
        with(
            "put-object-tagging",
            &obj,
            &["--tagging", "TagSet=[{Key=team,Value=web}]"],
        ),
        with("delete-object-tagging", &obj, &[]),
        with("delete-bucket-cors", &bkt, &[]),
        with("delete-bucket-policy", &bkt, &[]),
        with(
            "put-bucket-versioning",
            &bkt,
            &["--versioning-configuration", "Status=Enabled"],
        ),
        with(
            "put-bucket-tagging",
            &bkt,
            &["--tagging", "TagSet=[{Key=a,Value=b}]"],
        ),
        with("delete-bucket-tagging", &bkt, &[]),
        with("delete-bucket-lifecycle", &bkt, &[]),
        with("delete-bucket-website", &bkt, &[]),
        with("delete-bucket-encryption", &bkt, &[]),
        with("delete-public-access-block", &bkt, &[]),
        with(
            "put-bucket-policy",
            &bkt,
            &["--policy", r#"{"Version":"2012-10-17","Statement":[]}"#],
        ),
        with(
            "put-object-legal-hold",
            &obj,
            &["--legal-hold", "Status=ON"],
        ),
        with("list-object-versions", &bkt, &[]),
    ];
    for args in &refused {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_with(&aws, "NotImplemented", &args);
        let after = state(&aws, bucket, "doc.txt");
        assert_eq!(before, after, "{bin} {} changed something", args.join(" "));
    }

    // What nuage can answer honestly, it answers: there is no tag set.
    let tags = aws.json(&[
        "s3api",
        "get-object-tagging",
        "--bucket",
        bucket,
        "--key",
        "doc.txt",
    ]);
    assert_eq!(tags["TagSet"], json!([]), "{tags}");
    fails_with(
        &aws,
        "NoSuchTagSet",
        &["s3api", "get-bucket-tagging", "--bucket", bucket],
    );
    fails_with(
        &aws,
        "NoSuchCORSConfiguration",
        &["s3api", "get-bucket-cors", "--bucket", bucket],
    );
    fails_with(
        &aws,
        "NoSuchBucketPolicy",
        &["s3api", "get-bucket-policy", "--bucket", bucket],
    );
    let v = aws.json(&["s3api", "get-bucket-versioning", "--bucket", bucket]);
    assert!(
        v.get("Status").is_none(),
        "versioning was never enabled: {v}"
    );
    let loc = aws.json(&["s3api", "get-bucket-location", "--bucket", bucket]);
    assert!(loc.get("LocationConstraint").is_some(), "{loc}");
    assert_eq!(before, state(&aws, bucket, "doc.txt"));
}

#[test]
fn aws_cli_1_unimplemented_calls_change_nothing() {
    let srv = start();
    unimplemented_calls_change_nothing(&srv, "aws", "router-cli1");
}

#[test]
fn aws_cli_2_9_unimplemented_calls_change_nothing() {
    let srv = start();
    unimplemented_calls_change_nothing(&srv, "/usr/bin/aws", "router-cli2");
}

// ------------------------------------------------------------------ the table

/// Signs each request of a JSON table with botocore's S3 SigV4 signer,
/// sends it, and prints one JSON line per request: its status, its body,
/// and everything a client can see of the bucket and object afterwards.
const TABLE_SCRIPT: &str = r#"
import hashlib, json, os, sys, urllib.request, urllib.error
import botocore.auth, botocore.credentials, botocore.awsrequest

base = os.environ['NUAGE_URL']
creds = botocore.credentials.Credentials(os.environ['AWS_ACCESS_KEY_ID'], os.environ['AWS_SECRET_ACCESS_KEY'])
region = os.environ['AWS_DEFAULT_REGION']
bucket, key = sys.argv[1], sys.argv[2]

class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None
opener = urllib.request.build_opener(NoRedirect)

def send(method, path, query='', headers=None, body=b''):
    url = base + path + ('?' + query if query else '')
    req = botocore.awsrequest.AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    botocore.auth.S3SigV4Auth(creds, 's3', region).add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=body if body else None, method=method, headers=dict(p.headers))
    try:
        resp = opener.open(r, timeout=30)
        return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)

def state():
    s = {}
    for name, (path, q) in {
        'buckets': ('/', ''),
        'listing': ('/' + bucket, 'list-type=2'),
        'bucket_acl': ('/' + bucket, 'acl'),
        'object_acl': ('/' + bucket + '/' + key, 'acl'),
        'versioning': ('/' + bucket, 'versioning'),
        'uploads': ('/' + bucket, 'uploads'),
    }.items():
        st, b, _ = send('GET', path, q)
        s[name] = [st, b.decode('utf-8', 'replace')]
    st, b, h = send('GET', '/' + bucket + '/' + key)
    meta = sorted((k.lower(), v) for k, v in h.items()
                  if k.lower().startswith('x-amz-meta-') or k.lower() in ('etag', 'content-type', 'content-length', 'last-modified'))
    s['object'] = [st, hashlib.sha256(b).hexdigest(), meta]
    return s

for line in sys.stdin:
    case = json.loads(line)
    before = state()
    st, body, h = send(case['method'], case['path'], case['query'], case.get('headers'), case['body'].encode())
    after = state()
    print(json.dumps({'status': st, 'body': body.decode('utf-8', 'replace'),
                      'request_id': h.get('x-amz-request-id', ''),
                      'changed': [k for k in before if before[k] != after[k]]}), flush=True)
"#;

/// A sub-resource's name, the query it is sent with, and the operations S3
/// has for it as (method, level, operation).
type SubResource = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str, &'static str)],
);

/// One request of the table: what it is, method, path, query, the
/// operation S3 names (if any), and the (status, code) expected.
type Case = (
    String,
    &'static str,
    String,
    String,
    Option<&'static str>,
    (u16, &'static str),
);

/// The S3 API reference's sub-resources, with what S3 names each
/// (method, addressed level) combination; a combination not listed names
/// no S3 operation. The query a sub-resource is sent with adds what its
/// operations require (`id=` for the configurations kept by id).
const SUBRESOURCES: &[SubResource] = &[
    (
        "abac",
        "abac",
        &[
            ("GET", "bucket", "GetBucketAbac"),
            ("PUT", "bucket", "PutBucketAbac"),
        ],
    ),
    (
        "accelerate",
        "accelerate",
        &[
            ("GET", "bucket", "GetBucketAccelerateConfiguration"),
            ("PUT", "bucket", "PutBucketAccelerateConfiguration"),
        ],
    ),
    (
        "acl",
        "acl",
        &[
            ("GET", "bucket", "GetBucketAcl"),
            ("PUT", "bucket", "PutBucketAcl"),
            ("GET", "object", "GetObjectAcl"),
            ("PUT", "object", "PutObjectAcl"),
        ],
    ),
    (
        "analytics",
        "analytics&id=a1",
        &[
            ("GET", "bucket", "GetBucketAnalyticsConfiguration"),
            ("PUT", "bucket", "PutBucketAnalyticsConfiguration"),
            ("DELETE", "bucket", "DeleteBucketAnalyticsConfiguration"),
        ],
    ),
    (
        "analytics (list)",
        "analytics",
        &[("GET", "bucket", "ListBucketAnalyticsConfigurations")],
    ),
    (
        "attributes",
        "attributes",
        &[("GET", "object", "GetObjectAttributes")],
    ),
    (
        "cors",
        "cors",
        &[
            ("GET", "bucket", "GetBucketCors"),
            ("PUT", "bucket", "PutBucketCors"),
            ("DELETE", "bucket", "DeleteBucketCors"),
        ],
    ),
    ("delete", "delete", &[("POST", "bucket", "DeleteObjects")]),
    (
        "encryption",
        "encryption",
        &[
            ("GET", "bucket", "GetBucketEncryption"),
            ("PUT", "bucket", "PutBucketEncryption"),
            ("DELETE", "bucket", "DeleteBucketEncryption"),
        ],
    ),
    (
        "intelligent-tiering",
        "intelligent-tiering&id=t1",
        &[
            ("GET", "bucket", "GetBucketIntelligentTieringConfiguration"),
            ("PUT", "bucket", "PutBucketIntelligentTieringConfiguration"),
            (
                "DELETE",
                "bucket",
                "DeleteBucketIntelligentTieringConfiguration",
            ),
        ],
    ),
    (
        "intelligent-tiering (list)",
        "intelligent-tiering",
        &[(
            "GET",
            "bucket",
            "ListBucketIntelligentTieringConfigurations",
        )],
    ),
    (
        "inventory",
        "inventory&id=i1",
        &[
            ("GET", "bucket", "GetBucketInventoryConfiguration"),
            ("PUT", "bucket", "PutBucketInventoryConfiguration"),
            ("DELETE", "bucket", "DeleteBucketInventoryConfiguration"),
        ],
    ),
    (
        "inventory (list)",
        "inventory",
        &[("GET", "bucket", "ListBucketInventoryConfigurations")],
    ),
    (
        "legal-hold",
        "legal-hold",
        &[
            ("GET", "object", "GetObjectLegalHold"),
            ("PUT", "object", "PutObjectLegalHold"),
        ],
    ),
    (
        "lifecycle",
        "lifecycle",
        &[
            ("GET", "bucket", "GetBucketLifecycleConfiguration"),
            ("PUT", "bucket", "PutBucketLifecycleConfiguration"),
            ("DELETE", "bucket", "DeleteBucketLifecycle"),
        ],
    ),
    (
        "location",
        "location",
        &[("GET", "bucket", "GetBucketLocation")],
    ),
    (
        "logging",
        "logging",
        &[
            ("GET", "bucket", "GetBucketLogging"),
            ("PUT", "bucket", "PutBucketLogging"),
        ],
    ),
    (
        "metadataConfiguration",
        "metadataConfiguration",
        &[
            ("GET", "bucket", "GetBucketMetadataConfiguration"),
            ("POST", "bucket", "CreateBucketMetadataConfiguration"),
            ("DELETE", "bucket", "DeleteBucketMetadataConfiguration"),
        ],
    ),
    (
        "metadataInventoryTable",
        "metadataInventoryTable",
        &[(
            "PUT",
            "bucket",
            "UpdateBucketMetadataInventoryTableConfiguration",
        )],
    ),
    (
        "metadataJournalTable",
        "metadataJournalTable",
        &[(
            "PUT",
            "bucket",
            "UpdateBucketMetadataJournalTableConfiguration",
        )],
    ),
    (
        "metadataTable",
        "metadataTable",
        &[
            ("GET", "bucket", "GetBucketMetadataTableConfiguration"),
            ("POST", "bucket", "CreateBucketMetadataTableConfiguration"),
            ("DELETE", "bucket", "DeleteBucketMetadataTableConfiguration"),
        ],
    ),
    (
        "metrics",
        "metrics&id=m1",
        &[
            ("GET", "bucket", "GetBucketMetricsConfiguration"),
            ("PUT", "bucket", "PutBucketMetricsConfiguration"),
            ("DELETE", "bucket", "DeleteBucketMetricsConfiguration"),
        ],
    ),
    (
        "metrics (list)",
        "metrics",
        &[("GET", "bucket", "ListBucketMetricsConfigurations")],
    ),
    (
        "notification",
        "notification",
        &[
            ("GET", "bucket", "GetBucketNotificationConfiguration"),
            ("PUT", "bucket", "PutBucketNotificationConfiguration"),
        ],
    ),
    (
        "object-lock",
        "object-lock",
        &[
            ("GET", "bucket", "GetObjectLockConfiguration"),
            ("PUT", "bucket", "PutObjectLockConfiguration"),
        ],
    ),
    (
        "ownershipControls",
        "ownershipControls",
        &[
            ("GET", "bucket", "GetBucketOwnershipControls"),
            ("PUT", "bucket", "PutBucketOwnershipControls"),
            ("DELETE", "bucket", "DeleteBucketOwnershipControls"),
        ],
    ),
    (
        "policy",
        "policy",
        &[
            ("GET", "bucket", "GetBucketPolicy"),
            ("PUT", "bucket", "PutBucketPolicy"),
            ("DELETE", "bucket", "DeleteBucketPolicy"),
        ],
    ),
    (
        "policyStatus",
        "policyStatus",
        &[("GET", "bucket", "GetBucketPolicyStatus")],
    ),
    (
        "publicAccessBlock",
        "publicAccessBlock",
        &[
            ("GET", "bucket", "GetPublicAccessBlock"),
            ("PUT", "bucket", "PutPublicAccessBlock"),
            ("DELETE", "bucket", "DeletePublicAccessBlock"),
        ],
    ),
    (
        "renameObject",
        "renameObject",
        &[("PUT", "object", "RenameObject")],
    ),
    (
        "replication",
        "replication",
        &[
            ("GET", "bucket", "GetBucketReplication"),
            ("PUT", "bucket", "PutBucketReplication"),
            ("DELETE", "bucket", "DeleteBucketReplication"),
        ],
    ),
    (
        "requestPayment",
        "requestPayment",
        &[
            ("GET", "bucket", "GetBucketRequestPayment"),
            ("PUT", "bucket", "PutBucketRequestPayment"),
        ],
    ),
    ("restore", "restore", &[("POST", "object", "RestoreObject")]),
    (
        "retention",
        "retention",
        &[
            ("GET", "object", "GetObjectRetention"),
            ("PUT", "object", "PutObjectRetention"),
        ],
    ),
    (
        "select",
        "select&select-type=2",
        &[("POST", "object", "SelectObjectContent")],
    ),
    ("session", "session", &[("GET", "bucket", "CreateSession")]),
    (
        "tagging",
        "tagging",
        &[
            ("GET", "bucket", "GetBucketTagging"),
            ("PUT", "bucket", "PutBucketTagging"),
            ("DELETE", "bucket", "DeleteBucketTagging"),
            ("GET", "object", "GetObjectTagging"),
            ("PUT", "object", "PutObjectTagging"),
            ("DELETE", "object", "DeleteObjectTagging"),
        ],
    ),
    (
        "torrent",
        "torrent",
        &[("GET", "object", "GetObjectTorrent")],
    ),
    (
        "uploads",
        "uploads",
        &[
            ("GET", "bucket", "ListMultipartUploads"),
            ("POST", "object", "CreateMultipartUpload"),
        ],
    ),
    (
        "versioning",
        "versioning",
        &[
            ("GET", "bucket", "GetBucketVersioning"),
            ("PUT", "bucket", "PutBucketVersioning"),
        ],
    ),
    (
        "versions",
        "versions",
        &[("GET", "bucket", "ListObjectVersions")],
    ),
    (
        "website",
        "website",
        &[
            ("GET", "bucket", "GetBucketWebsite"),
            ("PUT", "bucket", "PutBucketWebsite"),
            ("DELETE", "bucket", "DeleteBucketWebsite"),
        ],
    ),
    // A sub-resource S3 does not have: never an operation.
    ("frobnicate", "frobnicate", &[]),
];

/// What nuage answers for the operations it serves in the table, without
/// the headers or bodies that would make them act: (status, S3 code).
fn served(op: &str) -> Option<(u16, &'static str)> {
    Some(match op {
        "GetBucketAcl"
        | "GetObjectAcl"
        | "GetBucketLocation"
        | "GetBucketVersioning"
        | "ListMultipartUploads"
        | "GetObjectTagging"
        | "GetBucketAccelerateConfiguration"
        | "GetBucketLogging"
        | "GetBucketNotificationConfiguration"
        | "GetBucketRequestPayment" => (200, ""),
        // Canned ACLs only: a PUT ?acl without x-amz-acl is a grant list.
        "PutBucketAcl" | "PutObjectAcl" => (501, "NotImplemented"),
        // The body below is no Delete document.
        "DeleteObjects" => (400, "MalformedXML"),
        // Served: answered with an upload id, which the test aborts.
        "CreateMultipartUpload" => (200, ""),
        "GetBucketTagging" => (404, "NoSuchTagSet"),
        "GetBucketCors" => (404, "NoSuchCORSConfiguration"),
        "GetBucketPolicy" => (404, "NoSuchBucketPolicy"),
        "GetBucketLifecycleConfiguration" => (404, "NoSuchLifecycleConfiguration"),
        "GetBucketWebsite" => (404, "NoSuchWebsiteConfiguration"),
        "GetBucketEncryption" => (404, "ServerSideEncryptionConfigurationNotFoundError"),
        "GetPublicAccessBlock" => (404, "NoSuchPublicAccessBlockConfiguration"),
        "GetBucketOwnershipControls" => (404, "OwnershipControlsNotFoundError"),
        "GetObjectLockConfiguration" => (404, "ObjectLockConfigurationNotFoundError"),
        "GetBucketReplication" => (404, "ReplicationConfigurationNotFoundError"),
        _ => return None,
    })
}

/// Every sub-resource × GET/PUT/POST/DELETE/HEAD on a bucket and on an
/// object, signed by botocore: each unserved operation answers
/// `501 NotImplemented` naming it, each combination S3 does not have
/// answers `405 MethodNotAllowed`, and none changes the bucket, its
/// listing, the object's bytes, ETag and metadata, ACLs or uploads.
#[test]
fn every_sub_resource_is_recognised_and_unserved_ones_change_nothing() {
    let srv = start();
    let work = tempfile::tempdir().expect("tempdir");
    let aws = Aws {
        srv: &srv,
        bin: "aws",
        cwd: work.path(),
    };
    let (bucket, key) = ("router-table", "dir/obj.txt");
    std::fs::write(work.path().join("body.txt"), "table bytes\n").expect("write body");
    aws.json(&["s3api", "create-bucket", "--bucket", bucket]);
    aws.json(&[
        "s3api",
        "put-object",
        "--bucket",
        bucket,
        "--key",
        key,
        "--body",
        "body.txt",
        "--metadata",
        "color=green",
        "--content-type",
        "text/plain",
    ]);

    // (what, method, path, query, the operation S3 names, answer expected)
    let mut cases: Vec<Case> = Vec::new();
    for (name, query, ops) in SUBRESOURCES {
        for level in ["bucket", "object"] {
            for method in ["GET", "PUT", "POST", "DELETE", "HEAD"] {
                // A listing's row adds the listing only (without `id=`).
                if name.ends_with("(list)") && (method, level) != ("GET", "bucket") {
                    continue;
                }
                let op = ops
                    .iter()
                    .find(|(m, l, _)| *m == method && *l == level)
                    .map(|(_, _, op)| *op);
                let path = match level {
                    "bucket" => format!("/{bucket}"),
                    _ => format!("/{bucket}/{key}"),
                };
                let want = match op {
                    Some(op) => served(op).unwrap_or((501, "NotImplemented")),
                    // Not a sub-resource of S3's: refused as unknown.
                    None if *name == "frobnicate" => (501, "NotImplemented"),
                    None => (405, "MethodNotAllowed"),
                };
                let what = format!("{method} {level} ?{name}");
                cases.push((what, method, path, query.to_string(), op, want));
            }
        }
    }
    let object = format!("/{bucket}/{key}");
    for (what, method, query, want) in [
        // Buckets are not versioned: another version id names nothing.
        (
            "DELETE a version",
            "DELETE",
            "versionId=3HL4kqtJlcpXroDTDmJ",
            (400, "InvalidArgument"),
        ),
        (
            "GET a version",
            "GET",
            "versionId=3HL4kqtJlcpXroDTDmJ",
            (400, "InvalidArgument"),
        ),
        (
            "PUT a part without its upload",
            "PUT",
            "partNumber=1",
            (400, "InvalidArgument"),
        ),
        (
            "PUT a part of no number",
            "PUT",
            "uploadId=abc",
            (400, "InvalidArgument"),
        ),
        (
            "GET one part",
            "GET",
            "partNumber=1",
            (501, "NotImplemented"),
        ),
        (
            "PUT two sub-resources",
            "PUT",
            "tagging&acl",
            (400, "InvalidRequest"),
        ),
        ("PATCH an object", "PATCH", "", (405, "MethodNotAllowed")),
        ("POST an object", "POST", "", (405, "MethodNotAllowed")),
    ] {
        cases.push((
            what.into(),
            method,
            object.clone(),
            query.into(),
            None,
            want,
        ));
    }
    let input: String = cases
        .iter()
        .map(|(_, method, path, query, _, _)| {
            // A body a fall-through would store or parse.
            let body = if matches!(*method, "PUT" | "POST") {
                "<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>"
            } else {
                ""
            };
            json!({"method": method, "path": path, "query": query, "body": body}).to_string() + "\n"
        })
        .collect();
    let mut c = srv.client("python3");
    c.args(["-c", TABLE_SCRIPT, bucket, key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("python3 with botocore");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(input.as_bytes()).expect("write the table");
    }
    let out = child.wait_with_output().expect("run the table");
    assert!(
        out.status.success(),
        "table script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON answer"))
        .collect();
    assert_eq!(answers.len(), cases.len(), "one answer per request");

    let mut failures = Vec::new();
    let mut seen: BTreeMap<&str, u16> = BTreeMap::new();
    for ((what, method, _, _, op, want), a) in cases.iter().zip(&answers) {
        let status = a["status"].as_u64().unwrap_or_default() as u16;
        let body = a["body"].as_str().unwrap_or_default();
        let changed = a["changed"].as_array().cloned().unwrap_or_default();
        let what = format!("{what} ({})", op.unwrap_or("no operation"));
        let (want_status, want_code) = *want;
        let code_ok = *method == "HEAD"
            || want_code.is_empty()
            || body.contains(&format!("<Code>{want_code}</Code>"));
        if status != want_status || !code_ok {
            failures.push(format!("{what}: {status} {body}"));
        }
        if let (Some(op), 501) = (op, want_status) {
            // Recognised as the operation it is, and said with the request id.
            let rid = a["request_id"].as_str().unwrap_or_default();
            if !body.contains(op) || rid.is_empty() || !body.contains(rid) {
                failures.push(format!("{what}: the answer does not name it: {body}"));
            }
        }
        // Only CreateMultipartUpload may change something (an upload).
        let allowed: &[&str] = if *op == Some("CreateMultipartUpload") {
            &["uploads"]
        } else {
            &[]
        };
        if changed
            .iter()
            .any(|c| !allowed.contains(&c.as_str().unwrap_or_default()))
        {
            failures.push(format!("{what} changed {changed:?}: {status} {body}"));
        }
        if let Some(op) = op {
            *seen.entry(op).or_default() += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} requests misbehaved:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Every operation of the table was sent once.
    let named: usize = SUBRESOURCES.iter().map(|(_, _, ops)| ops.len()).sum();
    assert_eq!(seen.len(), named, "{seen:?}");
}
