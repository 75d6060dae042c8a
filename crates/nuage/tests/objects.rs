//! Object storage (issue 4) through real clients against a real `nuage
//! serve`: both aws CLIs (awscli 1.x on PATH, Debian's 2.9 at
//! /usr/bin/aws), python3-boto3, Debian's `swift`, raw signed requests for
//! the inputs no client sends, and the SIGKILL reliability test.
//!
//! A missing client fails the test: scripts/test installs them all.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use common::{Aws, Options, Server};
use hmac::{Hmac, Mac};
use md5::Md5;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

// ------------------------------------------------------------------ servers

fn opts(tls: bool) -> Options {
    Options {
        tls,
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "none".into())],
        ..Options::default()
    }
}

/// A server without a compute node (no containers involved).
fn start() -> Server {
    Server::start_with(opts(false))
}

fn start_tls() -> Server {
    Server::start_with(opts(true))
}

// ------------------------------------------------------------------ data

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

fn sha_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// S3's ETag of a multipart object cut in `part`-byte parts.
fn multipart_etag(b: &[u8], part: usize) -> String {
    let mut all = Vec::new();
    let mut n = 0;
    for c in b.chunks(part) {
        all.extend_from_slice(&Md5::digest(c));
        n += 1;
    }
    format!("{}-{n}", md5_hex(&all))
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, data).expect("write file");
    p
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Files left in `<data-dir>/objects/tmp`.
fn tmp_files(srv: &Server) -> Vec<String> {
    std::fs::read_dir(srv.data_dir().join("objects/tmp"))
        .expect("objects/tmp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Files under `<data-dir>/objects/data/*/`.
fn data_files(srv: &Server) -> usize {
    std::fs::read_dir(srv.data_dir().join("objects/data"))
        .expect("objects/data")
        .flatten()
        .map(|shard| std::fs::read_dir(shard.path()).map_or(0, |d| d.count()))
        .sum()
}

/// Waits until `objects/tmp` is empty (a refused upload's file is removed
/// as its request ends); panics with the files left.
fn assert_tmp_empty(srv: &Server) {
    for _ in 0..100 {
        if tmp_files(srv).is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("objects/tmp is not empty: {:?}", tmp_files(srv));
}

// ------------------------------------------------------------------ curl

/// `curl` with the server's CA; returns the status and the body.
fn curl(srv: &Server, args: &[&str]) -> (u16, Vec<u8>) {
    let (status, body) = curl_written(srv, args, "%{http_code}");
    (status.parse().expect("status"), body)
}

/// `curl` with the server's CA, printing `write_out` (curl's `-w`) after
/// the body; returns what it printed and the body.
fn curl_written(srv: &Server, args: &[&str], write_out: &str) -> (String, Vec<u8>) {
    let mut c = srv.client("curl");
    c.args(["-sS", "-o", "-", "-w", &format!("\n{write_out}")]);
    if srv.opts.tls {
        let ca = srv.data_dir().join("tls/ca.pem");
        c.arg("--cacert").arg(ca);
    }
    c.args(args);
    let out = c.output().expect("run curl (apt-get install curl)");
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut body = out.stdout;
    let at = body
        .iter()
        .rposition(|b| *b == b'\n')
        .expect("curl status line");
    let written = String::from_utf8_lossy(&body[at + 1..]).trim().to_string();
    body.truncate(at);
    (written, body)
}

fn assert_xml_error(status: u16, body: &[u8], want_status: u16, code: &str) {
    let text = String::from_utf8_lossy(body);
    assert_eq!(status, want_status, "{text}");
    assert!(
        text.contains("<Error>") && text.contains(&format!("<Code>{code}</Code>")),
        "expected an S3 {code} error, got {text}"
    );
}

// ------------------------------------------------------------------ aws CLIs

/// The version line of an aws CLI; fails loudly when it is missing.
fn aws_version(bin: &str) -> String {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{bin} is missing ({e}): scripts/test installs both aws CLIs"));
    let v = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{bin} --version: {v}");
    v.trim().to_string()
}

fn keys(list: &Value, field: &str, name: &str) -> Vec<String> {
    list[field]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x[name].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// What one aws CLI must do against the server (issue 4's list).
/// `crc32`: the CLI sends x-amz-checksum-crc32 (awscli 1.x with a recent
/// botocore), which is kept and given back with --checksum-mode ENABLED.
fn aws_suite(srv: &Server, bin: &str, bucket: &str, crc32: bool) {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let aws = Aws { srv, bin, cwd: w };
    let s3b = format!("s3://{bucket}");

    // mb, ls
    aws.ok(&["s3", "mb", &s3b]);
    let ls = aws.ok(&["s3", "ls"]);
    assert!(
        ls.lines().any(|l| l.ends_with(&format!(" {bucket}"))),
        "{ls}"
    );

    // cp of a small file
    let small = bytes(1000, 1);
    let p = write(w, "small.bin", &small);
    aws.ok(&["s3", "cp", s(&p), &format!("{s3b}/small.bin")]);
    let h = aws.json(&[
        "s3api",
        "head-object",
        "--bucket",
        bucket,
        "--key",
        "small.bin",
    ]);
    assert_eq!(h["ContentLength"], json!(1000), "{h}");
    assert_eq!(h["ETag"], json!(format!("\"{}\"", md5_hex(&small))), "{h}");

    // sync up, sync down, and a second sync that finds nothing to do
    let a = b"hello from sync\n".to_vec();
    let bb = bytes(300 * 1024, 2); // over 256 KiB: the streaming path
    write(w, "up/a.txt", &a);
    write(w, "up/sub/b.bin", &bb);
    write(w, "up/sub/c.txt", b"");
    aws.ok(&["s3", "sync", "up", &format!("{s3b}/tree/")]);
    let ls = aws.ok(&["s3", "ls", "--recursive", &format!("{s3b}/tree/")]);
    for k in ["tree/a.txt", "tree/sub/b.bin", "tree/sub/c.txt"] {
        assert!(ls.lines().any(|l| l.ends_with(k)), "{k} not in {ls}");
    }
    aws.ok(&["s3", "sync", &format!("{s3b}/tree/"), "down"]);
    assert_eq!(read(&w.join("down/a.txt")), a);
    assert_eq!(read(&w.join("down/sub/b.bin")), bb);
    assert_eq!(read(&w.join("down/sub/c.txt")), b"");
    let again = aws.ok(&["s3", "sync", "up", &format!("{s3b}/tree/")]);
    assert!(again.trim().is_empty(), "a second sync uploaded: {again}");

    // put-object with a content type and metadata, head-object
    let obj = bytes(5000, 3);
    let p = write(w, "obj.bin", &obj);
    let r = aws.json(&[
        "s3api",
        "put-object",
        "--bucket",
        bucket,
        "--key",
        "api/obj.bin",
        "--body",
        s(&p),
        "--content-type",
        "application/x-nuage-test",
        "--metadata",
        "color=blue,size=big",
    ]);
    let etag = format!("\"{}\"", md5_hex(&obj));
    assert_eq!(r["ETag"], json!(etag), "{r}");
    let h = aws.json(&[
        "s3api",
        "head-object",
        "--bucket",
        bucket,
        "--key",
        "api/obj.bin",
        "--checksum-mode",
        "ENABLED",
    ]);
    assert_eq!(h["ContentLength"], json!(5000), "{h}");
    assert_eq!(h["ETag"], json!(etag), "{h}");
    assert_eq!(h["ContentType"], json!("application/x-nuage-test"), "{h}");
    assert_eq!(
        h["Metadata"],
        json!({"color": "blue", "size": "big"}),
        "{h}"
    );
    if crc32 {
        let crc = crc32fast::hash(&obj).to_be_bytes();
        assert_eq!(h["ChecksumCRC32"], json!(b64(&crc)), "{h}");
    }

    // get-object with a range
    let out = w.join("range.out");
    let g = aws.json(&[
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "api/obj.bin",
        "--range",
        "bytes=100-199",
        s(&out),
    ]);
    assert_eq!(read(&out), &obj[100..200]);
    assert_eq!(g["ContentRange"], json!("bytes 100-199/5000"), "{g}");
    assert_eq!(g["ContentLength"], json!(100), "{g}");

    // list-objects-v2 with a delimiter, with a prefix, and page by page
    let l = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        bucket,
        "--delimiter",
        "/",
    ]);
    assert_eq!(keys(&l, "Contents", "Key"), ["small.bin"], "{l}");
    assert_eq!(
        keys(&l, "CommonPrefixes", "Prefix"),
        ["api/", "tree/"],
        "{l}"
    );
    let l = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        bucket,
        "--prefix",
        "tree/",
        "--delimiter",
        "/",
    ]);
    assert_eq!(keys(&l, "Contents", "Key"), ["tree/a.txt"], "{l}");
    assert_eq!(keys(&l, "CommonPrefixes", "Prefix"), ["tree/sub/"], "{l}");
    let all = [
        "api/obj.bin",
        "small.bin",
        "tree/a.txt",
        "tree/sub/b.bin",
        "tree/sub/c.txt",
    ];
    let l = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        bucket,
        "--page-size",
        "2",
    ]);
    assert_eq!(keys(&l, "Contents", "Key"), all, "{l}");
    // page by page with a delimiter: v2 continuation tokens and v1
    // markers that land on common prefixes
    for op in ["list-objects-v2", "list-objects"] {
        let l = aws.json(&[
            "s3api",
            op,
            "--bucket",
            bucket,
            "--delimiter",
            "/",
            "--page-size",
            "1",
        ]);
        assert_eq!(keys(&l, "Contents", "Key"), ["small.bin"], "{op}: {l}");
        assert_eq!(
            keys(&l, "CommonPrefixes", "Prefix"),
            ["api/", "tree/"],
            "{op}: {l}"
        );
    }

    // copy-object, keeping and replacing the metadata
    let c = aws.json(&[
        "s3api",
        "copy-object",
        "--bucket",
        bucket,
        "--key",
        "api/copy.bin",
        "--copy-source",
        &format!("{bucket}/api/obj.bin"),
    ]);
    assert_eq!(c["CopyObjectResult"]["ETag"], json!(etag), "{c}");
    let h = aws.json(&[
        "s3api",
        "head-object",
        "--bucket",
        bucket,
        "--key",
        "api/copy.bin",
    ]);
    assert_eq!(
        h["Metadata"],
        json!({"color": "blue", "size": "big"}),
        "{h}"
    );
    assert_eq!(h["ContentType"], json!("application/x-nuage-test"), "{h}");
    aws.json(&[
        "s3api",
        "copy-object",
        "--bucket",
        bucket,
        "--key",
        "api/copy2.bin",
        "--copy-source",
        &format!("{bucket}/api/obj.bin"),
        "--metadata-directive",
        "REPLACE",
        "--metadata",
        "color=red",
        "--content-type",
        "text/plain",
    ]);
    let out = w.join("copy2.out");
    let g = aws.json(&[
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "api/copy2.bin",
        s(&out),
    ]);
    assert_eq!(read(&out), obj);
    assert_eq!(g["Metadata"], json!({"color": "red"}), "{g}");
    assert_eq!(g["ContentType"], json!("text/plain"), "{g}");

    // multipart: over the 8 MiB threshold, in 8 MiB parts
    let big = bytes(9 * MIB + 517, 4);
    let p = write(w, "big.bin", &big);
    aws.ok(&["s3", "cp", s(&p), &format!("{s3b}/big.bin")]);
    let h = aws.json(&[
        "s3api",
        "head-object",
        "--bucket",
        bucket,
        "--key",
        "big.bin",
    ]);
    let want = multipart_etag(&big, 8 * MIB);
    assert!(want.ends_with("-2"));
    assert_eq!(h["ETag"], json!(format!("\"{want}\"")), "{h}");
    assert_eq!(h["ContentLength"], json!(big.len()), "{h}");
    let out = w.join("big.out");
    aws.ok(&["s3", "cp", &format!("{s3b}/big.bin"), s(&out)]);
    assert!(
        sha_hex(&read(&out)) == sha_hex(&big),
        "the multipart object came back different"
    );
    // a range across the parts' boundary
    let (from, to) = (8 * MIB - 10, 8 * MIB + 9);
    aws.json(&[
        "s3api",
        "get-object",
        "--bucket",
        bucket,
        "--key",
        "big.bin",
        "--range",
        &format!("bytes={from}-{to}"),
        s(&out),
    ]);
    assert_eq!(read(&out), &big[from..=to]);

    // presign, then curl: good, tampered, expired
    let url = aws
        .ok(&[
            "s3",
            "presign",
            &format!("{s3b}/api/obj.bin"),
            "--expires-in",
            "300",
        ])
        .trim()
        .to_string();
    let (code, body) = curl(srv, &[&url]);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, obj);
    let at = url.find("X-Amz-Signature=").expect("signature") + "X-Amz-Signature=".len();
    let mut tampered = url.clone();
    let flip = if &url[at..at + 1] == "0" { "1" } else { "0" };
    tampered.replace_range(at..at + 1, flip);
    let (code, body) = curl(srv, &[&tampered]);
    assert_xml_error(code, &body, 403, "SignatureDoesNotMatch");
    let other_key = url.replace("/api/obj.bin?", "/api/copy.bin?");
    assert_ne!(other_key, url);
    let (code, body) = curl(srv, &[&other_key]);
    assert_xml_error(code, &body, 403, "SignatureDoesNotMatch");
    let short = aws
        .ok(&[
            "s3",
            "presign",
            &format!("{s3b}/api/obj.bin"),
            "--expires-in",
            "1",
        ])
        .trim()
        .to_string();
    std::thread::sleep(Duration::from_millis(2500));
    let (code, body) = curl(srv, &[&short]);
    assert_xml_error(code, &body, 403, "AccessDenied");

    // rm, rm --recursive, rb
    aws.ok(&["s3", "rm", &format!("{s3b}/small.bin")]);
    let err = aws.fails(&[
        "s3api",
        "head-object",
        "--bucket",
        bucket,
        "--key",
        "small.bin",
    ]);
    assert!(err.contains("404") || err.contains("Not Found"), "{err}");
    aws.ok(&["s3", "rm", "--recursive", &format!("{s3b}/")]);
    let l = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        bucket,
        "--no-paginate",
    ]);
    assert!(keys(&l, "Contents", "Key").is_empty(), "{l}");
    assert_eq!(l["KeyCount"], json!(0), "{l}");
    aws.ok(&["s3", "rb", &s3b]);
    let ls = aws.ok(&["s3", "ls"]);
    assert!(!ls.contains(bucket), "{ls}");
    aws.fails(&["s3api", "head-bucket", "--bucket", bucket]);
}

/// awscli 1.x on PATH (a recent botocore: x-amz-checksum-crc32 headers).
#[test]
fn aws_cli_1_over_http() {
    let v = aws_version("aws");
    assert!(
        v.starts_with("aws-cli/1."),
        "`aws` on PATH must be awscli 1.x (scripts/test installs it), got {v}"
    );
    let srv = start();
    aws_suite(&srv, "aws", "cli-one", true);
}

/// Debian's awscli 2.9 (Content-MD5, a real payload sha256).
#[test]
fn aws_cli_2_9_over_http() {
    let v = aws_version("/usr/bin/aws");
    assert!(
        v.starts_with("aws-cli/2."),
        "/usr/bin/aws must be Debian's awscli 2.x, got {v}"
    );
    let srv = start();
    aws_suite(&srv, "/usr/bin/aws", "cli-two", false);
}

/// awscli 1.x over https: uploads are aws-chunked with
/// STREAMING-UNSIGNED-PAYLOAD-TRAILER and a CRC32 trailer, which the
/// server checks and keeps.
#[test]
fn aws_cli_1_over_tls_sends_aws_chunked() {
    let v = aws_version("aws");
    assert!(v.starts_with("aws-cli/1."), "{v}");
    let srv = start_tls();
    assert!(srv.url().starts_with("https://"), "{}", srv.url());
    assert!(srv.env().contains_key("AWS_CA_BUNDLE"));
    aws_suite(&srv, "aws", "cli-tls", true);

    // The wire format really was aws-chunked with a trailer.
    let work = tempfile::tempdir().expect("tempdir");
    let aws = Aws {
        srv: &srv,
        bin: "aws",
        cwd: work.path(),
    };
    aws.ok(&["s3", "mb", "s3://chunked"]);
    let data = bytes(700 * 1024, 9);
    let p = write(work.path(), "d.bin", &data);
    let mut c = srv.client("aws");
    c.args([
        "s3api",
        "put-object",
        "--bucket",
        "chunked",
        "--key",
        "d.bin",
        "--body",
        s(&p),
        "--debug",
        "--endpoint-url",
        &srv.url(),
    ]);
    let (ok, out, err) = common::run(&mut c);
    assert!(ok, "{out}\n{}", &err[err.len().saturating_sub(3000)..]);
    assert!(
        err.contains("STREAMING-UNSIGNED-PAYLOAD-TRAILER") && err.contains("aws-chunked"),
        "awscli did not send an aws-chunked body with a trailer"
    );
    let h = aws.json(&[
        "s3api",
        "head-object",
        "--bucket",
        "chunked",
        "--key",
        "d.bin",
        "--checksum-mode",
        "ENABLED",
    ]);
    assert_eq!(h["ContentLength"], json!(data.len()), "{h}");
    assert_eq!(h["ETag"], json!(format!("\"{}\"", md5_hex(&data))), "{h}");
    assert_eq!(
        h["ChecksumCRC32"],
        json!(b64(&crc32fast::hash(&data).to_be_bytes())),
        "{h}"
    );
    let out = work.path().join("d.out");
    aws.json(&[
        "s3api",
        "get-object",
        "--bucket",
        "chunked",
        "--key",
        "d.bin",
        s(&out),
    ]);
    assert_eq!(read(&out), data);
}

// ------------------------------------------------------------------ boto3

/// Runs with python3-boto3: path style on NUAGE_URL, virtual-hosted style
/// on `http://localhost:<port>` (buckets as `<bucket>.localhost`, which
/// RFC 6761 sends to loopback; the script resolves it so, as glibc without
/// nss-myhostname does not).
const BOTO3_SCRIPT: &str = r#"
import base64, hashlib, io, os, socket, sys, urllib.error, urllib.request
import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

url = os.environ['NUAGE_URL']
region = os.environ['AWS_DEFAULT_REGION']
tag = sys.argv[1]
seen_hosts = set()

_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *a, **k):
    if isinstance(host, str):
        seen_hosts.add(host)
        if host.endswith('.localhost'):
            host = '127.0.0.1'
    return _getaddrinfo(host, *a, **k)
socket.getaddrinfo = getaddrinfo

def client(style, endpoint):
    return boto3.client('s3', endpoint_url=endpoint, region_name=region,
                        config=Config(signature_version='s3v4', s3={'addressing_style': style},
                                      retries={'max_attempts': 1}))

def expect_error(code, f, **k):
    try:
        f(**k)
    except ClientError as e:
        got = e.response['Error']['Code']
        assert got == code, (code, got, e.response)
        return
    raise AssertionError('expected ' + code)

port = url.rsplit(':', 1)[1]
for style, endpoint in (('path', url), ('virtual', 'http://localhost:' + port)):
    c = client(style, endpoint)
    b = 'boto-%s-%s' % (tag, style)
    c.create_bucket(Bucket=b)
    assert b in [x['Name'] for x in c.list_buckets()['Buckets']]
    c.head_bucket(Bucket=b)

    data = os.urandom(70000)
    key = 'dir/a b+c.bin'
    r = c.put_object(Bucket=b, Key=key, Body=data, Metadata={'k': 'v'}, ContentType='application/x-boto')
    assert r['ETag'] == '"%s"' % hashlib.md5(data).hexdigest(), r
    g = c.get_object(Bucket=b, Key=key)
    assert g['Body'].read() == data
    assert g['Metadata'] == {'k': 'v'}, g['Metadata']
    assert g['ContentType'] == 'application/x-boto', g['ContentType']
    g = c.get_object(Bucket=b, Key=key, Range='bytes=10-19')
    assert g['Body'].read() == data[10:20]
    c.put_object(Bucket=b, Key='/lead', Body=b'slash')
    assert c.get_object(Bucket=b, Key='/lead')['Body'].read() == b'slash'
    l = c.list_objects_v2(Bucket=b, Prefix='/')
    assert [o['Key'] for o in l['Contents']] == ['/lead'], l
    c.delete_object(Bucket=b, Key='/lead')
    c.put_object(Bucket=b, Key='top.txt', Body=b'top')
    l = c.list_objects_v2(Bucket=b)
    assert [o['Key'] for o in l['Contents']] == [key, 'top.txt'], l
    l = c.list_objects(Bucket=b, Delimiter='/')
    assert [p['Prefix'] for p in l['CommonPrefixes']] == ['dir/'], l
    assert [o['Key'] for o in l['Contents']] == ['top.txt'], l

    big = os.urandom(12 * 1024 * 1024 + 1)
    cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    c.upload_fileobj(io.BytesIO(big), b, 'big', Config=cfg)
    h = c.head_object(Bucket=b, Key='big')
    assert h['ETag'].endswith('-3"'), h['ETag']
    assert h['ContentLength'] == len(big), h
    out = io.BytesIO()
    c.download_fileobj(b, 'big', out)
    assert hashlib.sha256(out.getvalue()).digest() == hashlib.sha256(big).digest()

    u = c.generate_presigned_url('get_object', Params={'Bucket': b, 'Key': key}, ExpiresIn=120)
    if style == 'virtual':
        assert ('//%s.localhost:' % b) in u, u
    assert urllib.request.urlopen(u).read() == data
    try:
        at = u.index('X-Amz-Signature=') + len('X-Amz-Signature=')
        urllib.request.urlopen(u[:at] + ('1' if u[at] == '0' else '0') + u[at + 1:])
        raise AssertionError('a tampered presigned URL was accepted')
    except urllib.error.HTTPError as e:
        assert e.code == 403 and b'<Code>SignatureDoesNotMatch</Code>' in e.read()

    wrong = base64.b64encode(hashlib.md5(b'something else').digest()).decode()
    expect_error('BadDigest', c.put_object, Bucket=b, Key='bad', Body=b'hello', ContentMD5=wrong)
    expect_error('NoSuchKey', c.get_object, Bucket=b, Key='bad')

    r = c.delete_objects(Bucket=b, Delete={'Objects': [{'Key': key}, {'Key': 'big'}, {'Key': 'top.txt'}, {'Key': 'never-was'}]})
    assert sorted(d['Key'] for d in r['Deleted']) == sorted([key, 'big', 'top.txt', 'never-was']), r
    assert not r.get('Errors'), r
    assert 'Contents' not in c.list_objects_v2(Bucket=b)
    c.delete_bucket(Bucket=b)
    expect_error('NoSuchBucket', c.list_objects_v2, Bucket=b)

assert any(h.endswith('.localhost') for h in seen_hosts), seen_hosts
print('boto3 OK', boto3.__version__)
"#;

/// The interpreters to run boto3 with: Debian's python3 (python3-boto3),
/// and the `python3` on PATH when it is another one.
fn pythons() -> Vec<String> {
    let real = |p: &str| -> Option<String> {
        let out = std::process::Command::new(p)
            .args([
                "-c",
                "import os, sys, boto3; print(os.path.realpath(sys.executable))",
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let debian = real("/usr/bin/python3").expect(
        "/usr/bin/python3 with boto3 (python3-boto3) is required: scripts/test installs it",
    );
    let mut v = vec!["/usr/bin/python3".to_string()];
    if let Some(other) = real("python3") {
        if other != debian {
            v.push("python3".to_string());
        }
    }
    v
}

#[test]
fn boto3_path_and_virtual_hosted() {
    let srv = start();
    for (i, py) in pythons().iter().enumerate() {
        let (ok, out, err) =
            common::run(srv.client(py).args(["-c", BOTO3_SCRIPT, &format!("t{i}")]));
        assert!(ok && out.contains("boto3 OK"), "{py}: {out}\n{err}");
    }
}

// ------------------------------------------------------------------ swift

struct Swift<'a> {
    srv: &'a Server,
    cwd: &'a Path,
}

impl Swift<'_> {
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let mut c = self.srv.client("swift");
        c.current_dir(self.cwd).args(args);
        common::run(&mut c)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.run(args);
        assert!(ok, "swift {}: {err}\n{out}", args.join(" "));
        out
    }

    /// `swift stat ...` as a map of its "Name: value" lines.
    fn stat(&self, args: &[&str]) -> BTreeMap<String, String> {
        let mut a = vec!["stat"];
        a.extend_from_slice(args);
        self.ok(&a)
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    /// The storage URL and a token, from `swift auth`.
    fn auth(&self) -> (String, String) {
        let out = self.ok(&["auth"]);
        let get = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("{name} in {out}"))
                .trim_matches('"')
                .trim_matches('\'')
                .to_string()
        };
        (get("OS_STORAGE_URL"), get("OS_AUTH_TOKEN"))
    }
}

#[test]
fn swift_client_and_both_dialects() {
    let srv = start();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let sw = Swift { srv: &srv, cwd: w };
    let aws = Aws {
        srv: &srv,
        bin: "aws",
        cwd: w,
    };
    let (ok, _, err) = sw.run(&["--version"]);
    assert!(ok, "swift (python3-swiftclient) is required: {err}");

    // upload, list with a prefix, stat, post metadata, download, delete
    let one = bytes(4000, 11);
    let x = bytes(300 * 1024, 12);
    write(w, "one.bin", &one);
    write(w, "dir/x.bin", &x);
    write(w, "dir/y.txt", b"why\n");
    sw.ok(&["upload", "swift-box", "one.bin", "dir/x.bin", "dir/y.txt"]);
    let l = sw.ok(&["list", "swift-box"]);
    assert_eq!(
        l.lines().collect::<Vec<_>>(),
        ["dir/x.bin", "dir/y.txt", "one.bin"]
    );
    let l = sw.ok(&["list", "swift-box", "--prefix", "dir/"]);
    assert_eq!(l.lines().collect::<Vec<_>>(), ["dir/x.bin", "dir/y.txt"]);
    let l = sw.ok(&["list", "swift-box", "--delimiter", "/"]);
    assert_eq!(l.lines().collect::<Vec<_>>(), ["dir/", "one.bin"]);
    let st = sw.stat(&[]);
    assert_eq!(
        st.get("Containers").map(String::as_str),
        Some("1"),
        "{st:?}"
    );
    assert_eq!(st.get("Objects").map(String::as_str), Some("3"), "{st:?}");
    let total = one.len() + x.len() + 4;
    assert_eq!(st.get("Bytes"), Some(&total.to_string()), "{st:?}");
    let st = sw.stat(&["swift-box", "one.bin"]);
    assert_eq!(
        st.get("Content Length").map(String::as_str),
        Some("4000"),
        "{st:?}"
    );
    assert_eq!(st.get("ETag"), Some(&md5_hex(&one)), "{st:?}");
    sw.ok(&[
        "post",
        "swift-box",
        "one.bin",
        "-m",
        "color:green",
        "-m",
        "Shape:round",
    ]);
    let st = sw.stat(&["swift-box", "one.bin"]);
    assert_eq!(
        st.get("Meta Color").map(String::as_str),
        Some("green"),
        "{st:?}"
    );
    assert_eq!(
        st.get("Meta Shape").map(String::as_str),
        Some("round"),
        "{st:?}"
    );
    assert_eq!(st.get("ETag"), Some(&md5_hex(&one)), "{st:?}");
    sw.ok(&["post", "swift-box", "-m", "owner:alice"]);
    let st = sw.stat(&["swift-box"]);
    assert_eq!(
        st.get("Meta Owner").map(String::as_str),
        Some("alice"),
        "{st:?}"
    );
    assert_eq!(st.get("Objects").map(String::as_str), Some("3"), "{st:?}");
    sw.ok(&["download", "swift-box", "one.bin", "-o", "one.out"]);
    assert_eq!(read(&w.join("one.out")), one);
    sw.ok(&["download", "swift-box", "dir/x.bin", "-o", "x.out"]);
    assert_eq!(read(&w.join("x.out")), x);
    sw.ok(&["delete", "swift-box", "dir/y.txt"]);
    let l = sw.ok(&["list", "swift-box"]);
    assert_eq!(l.lines().collect::<Vec<_>>(), ["dir/x.bin", "one.bin"]);

    // Swift -> S3: the same bytes, the same ETag, the metadata
    let out = w.join("s3.out");
    let g = aws.json(&[
        "s3api",
        "get-object",
        "--bucket",
        "swift-box",
        "--key",
        "one.bin",
        s(&out),
    ]);
    assert_eq!(read(&out), one);
    assert_eq!(g["ETag"], json!(format!("\"{}\"", md5_hex(&one))), "{g}");
    assert_eq!(
        g["Metadata"],
        json!({"color": "green", "shape": "round"}),
        "{g}"
    );

    // S3 -> Swift
    let via_s3 = bytes(123_456, 13);
    let p = write(w, "via-s3.bin", &via_s3);
    let r = aws.json(&[
        "s3api",
        "put-object",
        "--bucket",
        "swift-box",
        "--key",
        "from/s3.bin",
        "--body",
        s(&p),
        "--metadata",
        "origin=s3",
    ]);
    assert_eq!(r["ETag"], json!(format!("\"{}\"", md5_hex(&via_s3))), "{r}");
    sw.ok(&["download", "swift-box", "from/s3.bin", "-o", "from-s3.out"]);
    assert_eq!(read(&w.join("from-s3.out")), via_s3);
    let st = sw.stat(&["swift-box", "from/s3.bin"]);
    assert_eq!(st.get("ETag"), Some(&md5_hex(&via_s3)), "{st:?}");
    assert_eq!(
        st.get("Meta Origin").map(String::as_str),
        Some("s3"),
        "{st:?}"
    );

    // S3's canned public-read on a bucket: anonymous listing, never the
    // objects themselves (S3's meaning: reading an object needs the
    // object's ACL); a public-read object is then readable.
    let anon = format!("{}/swift-box/one.bin", srv.url());
    let anon_list = format!("{}/swift-box?list-type=2", srv.url());
    let (code, body) = curl(&srv, &[&anon]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    aws.ok(&[
        "s3api",
        "put-bucket-acl",
        "--bucket",
        "swift-box",
        "--acl",
        "public-read",
    ]);
    let acl = aws.json(&["s3api", "get-bucket-acl", "--bucket", "swift-box"]);
    assert!(acl.to_string().contains("AllUsers"), "{acl}");
    let (code, body) = curl(&srv, &[&anon_list]);
    let listing = String::from_utf8_lossy(&body);
    assert_eq!(code, 200, "{listing}");
    assert!(listing.contains("<Key>one.bin</Key>"), "{listing}");
    let (code, body) = curl(&srv, &[&anon]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    let (storage, token) = sw.auth();
    let swift_anon = format!("{storage}/swift-box/one.bin");
    let swift_anon_list = format!("{storage}/swift-box");
    // Swift shows the listing grant alone, and answers the same.
    let st = sw.stat(&["swift-box"]);
    assert_eq!(
        st.get("Read ACL").map(String::as_str),
        Some(".rlistings"),
        "{st:?}"
    );
    let (code, body) = curl(&srv, &[&swift_anon_list]);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let (code, _) = curl(&srv, &[&swift_anon]);
    assert_eq!(code, 401);
    aws.ok(&[
        "s3api",
        "put-object-acl",
        "--bucket",
        "swift-box",
        "--key",
        "one.bin",
        "--acl",
        "public-read",
    ]);
    let (code, body) = curl(&srv, &[&anon]);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, one);
    let (code, body) = curl(&srv, &[&swift_anon]);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, one);
    aws.ok(&[
        "s3api",
        "put-object-acl",
        "--bucket",
        "swift-box",
        "--key",
        "one.bin",
        "--acl",
        "private",
    ]);
    aws.ok(&[
        "s3api",
        "put-bucket-acl",
        "--bucket",
        "swift-box",
        "--acl",
        "private",
    ]);
    let (code, body) = curl(&srv, &[&anon]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    let (code, body) = curl(&srv, &[&anon_list]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    // Anonymous Swift on a private container: 401, as Swift answers.
    let (code, _) = curl(&srv, &[&swift_anon]);
    assert_eq!(code, 401);

    // Swift's `.r:*` alone: anyone reads the objects, nobody lists.
    sw.ok(&["post", "swift-box", "-r", ".r:*"]);
    let (code, body) = curl(&srv, &[&anon]);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, one);
    let (code, body) = curl(&srv, &[&swift_anon]);
    assert_eq!(code, 200);
    assert_eq!(body, one);
    let (code, body) = curl(&srv, &[&anon_list]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    let (code, _) = curl(&srv, &[&swift_anon_list]);
    assert_eq!(code, 401);
    // `.r:*,.rlistings`: reading and listing.
    sw.ok(&["post", "swift-box", "-r", ".r:*,.rlistings"]);
    let st = sw.stat(&["swift-box"]);
    assert_eq!(
        st.get("Read ACL").map(String::as_str),
        Some(".r:*,.rlistings"),
        "{st:?}"
    );
    let (code, body) = curl(&srv, &[&swift_anon_list]);
    assert_eq!(code, 200);
    assert_eq!(String::from_utf8_lossy(&body).lines().count(), 3);
    let (code, _) = curl(&srv, &[&anon_list]);
    assert_eq!(code, 200);
    let (code, _) = curl(&srv, &[&anon]);
    assert_eq!(code, 200);
    // anonymous writes stay refused
    let (code, _) = curl(
        &srv,
        &[
            "-X",
            "PUT",
            "--data-binary",
            "x",
            &format!("{storage}/swift-box/anon"),
        ],
    );
    assert_eq!(code, 401);
    let (code, body) = curl(
        &srv,
        &[
            "-X",
            "PUT",
            "--data-binary",
            "x",
            &format!("{}/swift-box/anon", srv.url()),
        ],
    );
    assert_xml_error(code, &body, 403, "AccessDenied");
    // `*:*` (any user of any project) lists and reads for users with
    // credentials (S3 shows authenticated-read), never anonymously.
    sw.ok(&["post", "swift-box", "-r", "*:*"]);
    let st = sw.stat(&["swift-box"]);
    assert_eq!(
        st.get("Read ACL").map(String::as_str),
        Some("*:*"),
        "{st:?}"
    );
    let acl = Aws {
        srv: &srv,
        bin: "aws",
        cwd: w,
    }
    .json(&["s3api", "get-bucket-acl", "--bucket", "swift-box"])
    .to_string();
    assert!(acl.contains("AuthenticatedUsers"), "{acl}");
    let (code, body) = curl(&srv, &[&anon]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    sw.ok(&["post", "swift-box", "-r", ""]);
    let (code, body) = curl(&srv, &[&anon]);
    assert_xml_error(code, &body, 403, "AccessDenied");

    // Swift's errors: 404 for a missing container, 401 without a token,
    // 409 deleting a container that holds objects (and it stays).
    let auth = format!("X-Auth-Token: {token}");
    let (code, _) = curl(&srv, &["-H", &auth, &format!("{storage}/no-such-box")]);
    assert_eq!(code, 404);
    let (code, _) = curl(&srv, &["-H", &auth, &format!("{storage}/no-such-box/obj")]);
    assert_eq!(code, 404);
    let (code, _) = curl(&srv, &[&format!("{storage}/swift-box")]);
    assert_eq!(code, 401);
    let (code, _) = curl(&srv, &[&storage]);
    assert_eq!(code, 401);
    let (code, _) = curl(
        &srv,
        &[
            "-H",
            "X-Auth-Token: not-a-token",
            &format!("{storage}/swift-box"),
        ],
    );
    assert_eq!(code, 401);
    let (code, _) = curl(
        &srv,
        &["-X", "DELETE", "-H", &auth, &format!("{storage}/swift-box")],
    );
    assert_eq!(code, 409);
    let l = sw.ok(&["list", "swift-box"]);
    assert_eq!(l.lines().count(), 3, "{l}");

    // swift delete empties and removes the container
    sw.ok(&["delete", "swift-box"]);
    let l = sw.ok(&["list"]);
    assert!(!l.contains("swift-box"), "{l}");

    // Account metadata: swift post -m sets and removes keys, one at a
    // time, and swift stat shows what is kept.
    sw.ok(&["post", "-m", "team:blue", "-m", "tier:gold"]);
    sw.ok(&["post", "-m", "tier:silver"]);
    let st = sw.stat(&[]);
    assert_eq!(
        st.get("Meta Team").map(String::as_str),
        Some("blue"),
        "{st:?}"
    );
    assert_eq!(
        st.get("Meta Tier").map(String::as_str),
        Some("silver"),
        "{st:?}"
    );
    sw.ok(&["post", "-m", "team:"]);
    let st = sw.stat(&[]);
    assert!(!st.contains_key("Meta Team"), "{st:?}");
    assert_eq!(
        st.get("Meta Tier").map(String::as_str),
        Some("silver"),
        "{st:?}"
    );
    // More than 8 KiB of metadata is refused and changes nothing.
    let big = format!("X-Account-Meta-Big: {}", "b".repeat(9000));
    let (code, _) = curl(&srv, &["-X", "POST", "-H", &auth, "-H", &big, &storage]);
    assert_eq!(code, 400);
    let st = sw.stat(&[]);
    assert!(!st.contains_key("Meta Big"), "{st:?}");
    assert_eq!(
        st.get("Meta Tier").map(String::as_str),
        Some("silver"),
        "{st:?}"
    );
}

/// Object ACLs, UploadPartCopy and conditional multi-delete through
/// awscli 1.x, with anonymous reads by curl.
#[test]
fn object_acls_part_copy_and_conditional_delete() {
    let srv = start();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let aws = Aws {
        srv: &srv,
        bin: "aws",
        cwd: w,
    };
    aws.ok(&["s3", "mb", "s3://acl-box"]);
    let open = bytes(3000, 41);
    let shut = bytes(2000, 42);
    write(w, "open.bin", &open);
    write(w, "shut.bin", &shut);
    // An object ACL opens one object of a private bucket to anyone.
    aws.ok(&[
        "s3",
        "cp",
        "open.bin",
        "s3://acl-box/open.bin",
        "--acl",
        "public-read",
    ]);
    aws.ok(&["s3", "cp", "shut.bin", "s3://acl-box/shut.bin"]);
    let url = |k: &str| format!("{}/acl-box/{k}", srv.url());
    let (code, body) = curl(&srv, &[&url("open.bin")]);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, open);
    let (code, _) = curl(&srv, &["-I", &url("open.bin")]);
    assert_eq!(code, 200);
    let (code, body) = curl(&srv, &[&url("shut.bin")]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    // A missing key of a private bucket is a refusal, not a 404, anonymously.
    let (code, body) = curl(&srv, &[&url("never-was")]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    // ... and the bucket's listing stays closed.
    let (code, body) = curl(&srv, &[&format!("{}/acl-box", srv.url())]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    let acl = aws.json(&[
        "s3api",
        "get-object-acl",
        "--bucket",
        "acl-box",
        "--key",
        "open.bin",
    ]);
    assert!(acl.to_string().contains("AllUsers"), "{acl}");
    let acl = aws.json(&[
        "s3api",
        "get-object-acl",
        "--bucket",
        "acl-box",
        "--key",
        "shut.bin",
    ]);
    assert!(!acl.to_string().contains("AllUsers"), "{acl}");
    // put-object-acl both ways.
    aws.ok(&[
        "s3api",
        "put-object-acl",
        "--bucket",
        "acl-box",
        "--key",
        "open.bin",
        "--acl",
        "private",
    ]);
    let (code, body) = curl(&srv, &[&url("open.bin")]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    aws.ok(&[
        "s3api",
        "put-object-acl",
        "--bucket",
        "acl-box",
        "--key",
        "shut.bin",
        "--acl",
        "public-read",
    ]);
    let (code, body) = curl(&srv, &[&url("shut.bin")]);
    assert_eq!(code, 200);
    assert_eq!(body, shut);
    // A copy gets the ACL it asks for, not its source's.
    aws.ok(&[
        "s3",
        "cp",
        "s3://acl-box/shut.bin",
        "s3://acl-box/copy-private.bin",
    ]);
    let (code, _) = curl(&srv, &[&url("copy-private.bin")]);
    assert_eq!(code, 403);
    aws.ok(&[
        "s3",
        "cp",
        "s3://acl-box/open.bin",
        "s3://acl-box/copy-public.bin",
        "--acl",
        "public-read",
    ]);
    let (code, body) = curl(&srv, &[&url("copy-public.bin")]);
    assert_eq!(code, 200);
    assert_eq!(body, open);
    // A multipart upload (over the 8 MiB threshold) keeps its ACL.
    let big = bytes(9 * 1024 * 1024 + 17, 43);
    write(w, "big.bin", &big);
    aws.ok(&[
        "s3",
        "cp",
        "big.bin",
        "s3://acl-box/big.bin",
        "--acl",
        "public-read",
    ]);
    let (code, body) = curl(&srv, &[&url("big.bin")]);
    assert_eq!(code, 200);
    assert!(
        body == big,
        "anonymous GET of a public multipart object differs"
    );
    // A name that is no canned ACL is InvalidArgument and stores nothing.
    let err = aws.fails(&[
        "s3api",
        "put-object",
        "--bucket",
        "acl-box",
        "--key",
        "bad-acl.bin",
        "--body",
        "open.bin",
        "--acl",
        "everyone",
    ]);
    assert!(err.contains("InvalidArgument"), "{err}");
    let l = aws.json(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        "acl-box",
        "--prefix",
        "bad-acl",
    ]);
    assert!(l.get("Contents").is_none(), "{l}");

    // The other canned ACLs. Another project's member (with S3 keys) and
    // anonymous curl are the outsiders.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let other = rt.block_on(stranger(&srv, "acl-outsider", "outsider-pw-1"));
    let other_get = |path: &str| call_s3(&srv, Some(&other), raw("GET", path));
    // public-read-write on an object: readable by anyone (WRITE means
    // nothing on an object, as in S3), shown as both grants.
    aws.ok(&[
        "s3",
        "cp",
        "open.bin",
        "s3://acl-box/rw.bin",
        "--acl",
        "public-read-write",
    ]);
    let (code, body) = curl(&srv, &[&url("rw.bin")]);
    assert_eq!((code, body == open), (200, true));
    let acl = aws
        .json(&[
            "s3api",
            "get-object-acl",
            "--bucket",
            "acl-box",
            "--key",
            "rw.bin",
        ])
        .to_string();
    assert!(acl.contains("AllUsers") && acl.contains("WRITE"), "{acl}");
    let (code, body) = curl(&srv, &["-X", "PUT", "--data-binary", "x", &url("rw.bin")]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    // authenticated-read on an object: any caller with credentials, of any
    // project, reads it; anonymous callers do not.
    aws.ok(&[
        "s3",
        "cp",
        "shut.bin",
        "s3://acl-box/members.bin",
        "--acl",
        "authenticated-read",
    ]);
    let (code, body) = curl(&srv, &[&url("members.bin")]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    let a = other_get("/acl-box/members.bin");
    assert_eq!((a.status, a.body == shut), (200, true), "{}", a.text());
    other_get("/acl-box/open.bin").is_error(403, "AccessDenied"); // private by now
                                                                  // authenticated-read on a bucket: outsiders with credentials list and
                                                                  // read, never write; anonymous callers do neither.
    aws.ok(&[
        "s3api",
        "create-bucket",
        "--bucket",
        "members-box",
        "--acl",
        "authenticated-read",
    ]);
    aws.ok(&["s3", "cp", "open.bin", "s3://members-box/o.bin"]);
    other_get("/members-box/o.bin").is_error(403, "AccessDenied");
    // ... but it may learn which keys exist: a missing one is NoSuchKey.
    other_get("/members-box/never-was").is_error(404, "NoSuchKey");
    let a = call_s3(
        &srv,
        Some(&other),
        raw("GET", "/members-box").q("list-type", "2"),
    );
    assert!(
        a.status == 200 && a.text().contains("<Key>o.bin</Key>"),
        "{}",
        a.text()
    );
    call_s3(
        &srv,
        Some(&other),
        raw("PUT", "/members-box/theirs.bin").body(b"x"),
    )
    .is_error(403, "AccessDenied");
    let (code, body) = curl(&srv, &[&format!("{}/members-box/o.bin", srv.url())]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    // public-read-write on a bucket: anyone, even anonymous, puts, lists
    // and deletes objects, and reads those whose ACL opens them; the
    // bucket and its ACL stay the project's.
    aws.ok(&[
        "s3api",
        "create-bucket",
        "--bucket",
        "drop-box",
        "--acl",
        "public-read-write",
    ]);
    let drop = |k: &str| format!("{}/drop-box/{k}", srv.url());
    let src = w.join("open.bin");
    let upload = format!("@{}", s(&src));
    let (code, body) = curl(
        &srv,
        &["-X", "PUT", "--data-binary", &upload, &drop("anon.bin")],
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    aws.ok(&["s3", "cp", "s3://drop-box/anon.bin", "anon.out"]);
    assert!(
        read(&w.join("anon.out")) == open,
        "anonymous upload differs"
    );
    let (code, body) = curl(&srv, &[&drop("anon.bin")]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    let (code, body) = curl(
        &srv,
        &[
            "-X",
            "PUT",
            "-H",
            "x-amz-acl: public-read",
            "--data-binary",
            &upload,
            &drop("anon.bin"),
        ],
    );
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let (code, body) = curl(&srv, &[&drop("anon.bin")]);
    assert_eq!((code, body == open), (200, true));
    let a = call_s3(&srv, Some(&other), raw("DELETE", "/drop-box/anon.bin"));
    assert_eq!(a.status, 204, "{}", a.text());
    let (code, _) = curl(&srv, &["-I", &drop("anon.bin")]);
    assert_eq!(code, 404);
    let (code, body) = curl(
        &srv,
        &[
            "-X",
            "PUT",
            "-H",
            "x-amz-acl: private",
            &format!("{}/drop-box?acl", srv.url()),
        ],
    );
    assert_xml_error(code, &body, 403, "AccessDenied");
    let (code, body) = curl(&srv, &["-X", "DELETE", &format!("{}/drop-box", srv.url())]);
    assert_xml_error(code, &body, 403, "AccessDenied");
    let acl = aws
        .json(&["s3api", "get-bucket-acl", "--bucket", "drop-box"])
        .to_string();
    assert!(acl.contains("WRITE"), "the bucket's ACL changed: {acl}");
    aws.ok(&["s3", "rb", "s3://drop-box"]);
    aws.ok(&["s3", "rb", "--force", "s3://members-box"]);
    aws.ok(&["s3", "rm", "s3://acl-box/rw.bin"]);
    aws.ok(&["s3", "rm", "s3://acl-box/members.bin"]);

    // UploadPartCopy: a part from a range of big.bin, a part from a whole
    // small object, the rest uploaded; complete gives the concatenation.
    let up = aws.json(&[
        "s3api",
        "create-multipart-upload",
        "--bucket",
        "acl-box",
        "--key",
        "assembled",
    ]);
    let id = up["UploadId"].as_str().expect("UploadId").to_string();
    let first = 5 * 1024 * 1024;
    // upload-part-copy of `src` (with `range`) as part `n`.
    let part_copy = |n: &str, src: &str, range: Option<&str>| {
        let mut args = vec![
            "s3api",
            "upload-part-copy",
            "--bucket",
            "acl-box",
            "--key",
            "assembled",
            "--upload-id",
            &id,
            "--part-number",
            n,
            "--copy-source",
            src,
        ];
        if let Some(r) = range {
            args.extend(["--copy-source-range", r]);
        }
        aws.run(&args)
    };
    let etag_of = |(ok, out, err): (bool, String, String)| -> String {
        assert!(ok, "upload-part-copy: {err}");
        let v: Value = serde_json::from_str(&out).expect("JSON");
        v["CopyPartResult"]["ETag"]
            .as_str()
            .expect("ETag")
            .to_string()
    };
    let range1 = format!("bytes=1000-{}", 1000 + first - 1);
    let e1 = etag_of(part_copy("1", "acl-box/big.bin", Some(&range1)));
    assert_eq!(e1, format!("\"{}\"", md5_hex(&big[1000..1000 + first])));
    let e2 = etag_of(part_copy("2", "acl-box/open.bin", None));
    // Bad input: a range past the source's end, a reversed range, a
    // missing source; none adds a part.
    for (range, src) in [
        ("bytes=0-99999999", "acl-box/open.bin"),
        ("bytes=10-5", "acl-box/open.bin"),
        ("bytes=0-1", "acl-box/never-was"),
    ] {
        let (ok, out, _) = part_copy("3", src, Some(range));
        assert!(!ok, "upload-part-copy {src} {range} succeeded: {out}");
    }
    let parts = aws.json(&[
        "s3api",
        "list-parts",
        "--bucket",
        "acl-box",
        "--key",
        "assembled",
        "--upload-id",
        &id,
    ]);
    assert_eq!(parts["Parts"].as_array().map(Vec::len), Some(2), "{parts}");
    let done = json!({"Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]})
        .to_string();
    aws.ok(&[
        "s3api",
        "complete-multipart-upload",
        "--bucket",
        "acl-box",
        "--key",
        "assembled",
        "--upload-id",
        &id,
        "--multipart-upload",
        &done,
    ]);
    aws.ok(&["s3", "cp", "s3://acl-box/assembled", "assembled.out"]);
    let mut want = big[1000..1000 + first].to_vec();
    want.extend_from_slice(&open);
    assert!(
        read(&w.join("assembled.out")) == want,
        "assembled object differs"
    );

    // Copy conditions on the source: a failed one is PreconditionFailed
    // (for a copy and for a part copy) and copies nothing.
    let etag_open = format!("\"{}\"", md5_hex(&open));
    let wrong = "\"0123456789abcdef0123456789abcdef\"";
    for (flag, value) in [
        ("--copy-source-if-match", wrong),
        ("--copy-source-if-none-match", etag_open.as_str()),
    ] {
        let err = aws.fails(&[
            "s3api",
            "copy-object",
            "--bucket",
            "acl-box",
            "--key",
            "cond-copy.bin",
            "--copy-source",
            "acl-box/open.bin",
            flag,
            value,
        ]);
        assert!(err.contains("PreconditionFailed"), "{flag}: {err}");
    }
    let (ok, _, err) = aws.run(&[
        "s3api",
        "head-object",
        "--bucket",
        "acl-box",
        "--key",
        "cond-copy.bin",
    ]);
    assert!(!ok, "a refused copy stored its object");
    assert!(err.contains("404") || err.contains("Not Found"), "{err}");
    aws.ok(&[
        "s3api",
        "copy-object",
        "--bucket",
        "acl-box",
        "--key",
        "cond-copy.bin",
        "--copy-source",
        "acl-box/open.bin",
        "--copy-source-if-match",
        &etag_open,
    ]);
    aws.ok(&["s3", "rm", "s3://acl-box/cond-copy.bin"]);
    let up = aws.json(&[
        "s3api",
        "create-multipart-upload",
        "--bucket",
        "acl-box",
        "--key",
        "cond-part",
    ]);
    let cond_id = up["UploadId"].as_str().expect("UploadId").to_string();
    let err = aws.fails(&[
        "s3api",
        "upload-part-copy",
        "--bucket",
        "acl-box",
        "--key",
        "cond-part",
        "--upload-id",
        &cond_id,
        "--part-number",
        "1",
        "--copy-source",
        "acl-box/open.bin",
        "--copy-source-if-match",
        wrong,
    ]);
    assert!(err.contains("PreconditionFailed"), "{err}");
    let parts = aws.json(&[
        "s3api",
        "list-parts",
        "--bucket",
        "acl-box",
        "--key",
        "cond-part",
        "--upload-id",
        &cond_id,
    ]);
    assert!(
        parts["Parts"].as_array().is_none_or(Vec::is_empty),
        "a refused part copy added a part: {parts}"
    );
    aws.ok(&[
        "s3api",
        "abort-multipart-upload",
        "--bucket",
        "acl-box",
        "--key",
        "cond-part",
        "--upload-id",
        &cond_id,
    ]);

    // Conditional multi-delete: a wrong ETag keeps the object and says
    // PreconditionFailed; the right one (and `*`) deletes.
    let del = json!({"Objects": [
        {"Key": "open.bin", "ETag": "\"0123456789abcdef0123456789abcdef\""},
        {"Key": "shut.bin", "ETag": format!("\"{}\"", md5_hex(&shut))},
        {"Key": "copy-public.bin", "ETag": "*"},
        {"Key": "never-was", "ETag": "*"},
    ]})
    .to_string();
    let r = aws.json(&[
        "s3api",
        "delete-objects",
        "--bucket",
        "acl-box",
        "--delete",
        &del,
    ]);
    let deleted: Vec<&str> = r["Deleted"].as_array().map_or(vec![], |a| {
        a.iter().filter_map(|d| d["Key"].as_str()).collect()
    });
    assert_eq!(deleted, ["shut.bin", "copy-public.bin"], "{r}");
    let errors: Vec<(&str, &str)> = r["Errors"].as_array().map_or(vec![], |a| {
        a.iter()
            .filter_map(|e| Some((e["Key"].as_str()?, e["Code"].as_str()?)))
            .collect()
    });
    assert_eq!(
        errors,
        [
            ("open.bin", "PreconditionFailed"),
            ("never-was", "NoSuchKey")
        ],
        "{r}"
    );
    let h = aws.json(&[
        "s3api",
        "head-object",
        "--bucket",
        "acl-box",
        "--key",
        "open.bin",
    ]);
    assert_eq!(h["ETag"], json!(etag_open));
    let del = json!({"Objects": [{"Key": "open.bin", "ETag": etag_open}]}).to_string();
    let r = aws.json(&[
        "s3api",
        "delete-objects",
        "--bucket",
        "acl-box",
        "--delete",
        &del,
    ]);
    assert_eq!(r["Deleted"][0]["Key"], json!("open.bin"), "{r}");
    let l = aws.json(&["s3api", "list-objects-v2", "--bucket", "acl-box"]);
    let left: Vec<&str> = l["Contents"].as_array().map_or(vec![], |a| {
        a.iter().filter_map(|o| o["Key"].as_str()).collect()
    });
    assert_eq!(left, ["assembled", "big.bin", "copy-private.bin"], "{l}");
}

// ------------------------------------------------------------------ raw SigV4

/// An access key to sign with.
#[derive(Clone)]
struct Creds {
    access: String,
    secret: String,
    region: String,
}

impl Creds {
    fn admin(srv: &Server) -> Creds {
        let env = srv.env();
        Creds {
            access: env["AWS_ACCESS_KEY_ID"].clone(),
            secret: env["AWS_SECRET_ACCESS_KEY"].clone(),
            region: env["AWS_DEFAULT_REGION"].clone(),
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("hmac key");
    m.update(data.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// RFC 3986 encoding as SigV4 wants it (`/` kept when `path`).
fn uri_encode(s: &str, path: bool) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b'/' if path => "/".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A request to sign and send over a plain socket, so that anything a
/// client would never send can be sent.
struct Raw {
    method: &'static str,
    /// Unencoded; encoded here.
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The x-amz-content-sha256 to sign; the body's sha256 when None.
    payload: Option<String>,
    /// Content-Length to declare: the body's length when None, omitted
    /// when Some(None).
    content_length: Option<Option<usize>>,
    /// Close the writing side after the body (a client that went away).
    shutdown: bool,
}

fn raw(method: &'static str, path: &str) -> Raw {
    Raw {
        method,
        path: path.to_string(),
        query: Vec::new(),
        headers: Vec::new(),
        body: Vec::new(),
        payload: None,
        content_length: None,
        shutdown: false,
    }
}

impl Raw {
    fn q(mut self, k: &str, v: &str) -> Raw {
        self.query.push((k.into(), v.into()));
        self
    }
    fn h(mut self, k: &str, v: &str) -> Raw {
        self.headers.push((k.to_ascii_lowercase(), v.into()));
        self
    }
    fn body(mut self, b: &[u8]) -> Raw {
        self.body = b.to_vec();
        self
    }
}

/// An answer: status, lowercase headers, body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// An S3 error with this status and code, as XML.
    fn is_error(&self, status: u16, code: &str) -> &Self {
        assert_xml_error(self.status, &self.body, status, code);
        assert_eq!(
            self.headers.get("content-type").map(String::as_str),
            Some("application/xml"),
            "{self:?}"
        );
        self
    }
}

/// Scope date, x-amz-date and the signing key of `c` for now.
fn signing_key(c: &Creds) -> (String, String, Vec<u8>) {
    let now = chrono::Utc::now();
    let date = now.format("%Y%m%d").to_string();
    let amz = now.format("%Y%m%dT%H%M%SZ").to_string();
    let k = hmac(format!("AWS4{}", c.secret).as_bytes(), &date);
    let k = hmac(&k, &c.region);
    let k = hmac(&k, "s3");
    let k = hmac(&k, "aws4_request");
    (date, amz, k)
}

/// The request's head, signed with `c` (when given), and its seed
/// signature.
fn sign(srv: &Server, c: Option<&Creds>, r: &Raw) -> (String, String) {
    let path = uri_encode(&r.path, true);
    let mut query: Vec<(String, String)> = r
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers = r.headers.clone();
    headers.push(("host".into(), format!("127.0.0.1:{}", srv.port)));
    match r.content_length {
        None => headers.push(("content-length".into(), r.body.len().to_string())),
        Some(Some(n)) => headers.push(("content-length".into(), n.to_string())),
        Some(None) => {}
    }
    let mut seed = String::new();
    if let Some(c) = c {
        let (date, amz, key) = signing_key(c);
        let payload = r.payload.clone().unwrap_or_else(|| sha_hex(&r.body));
        headers.push(("x-amz-date".into(), amz.clone()));
        headers.push(("x-amz-content-sha256".into(), payload.clone()));
        headers.sort();
        let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        let signed = signed.join(";");
        let canonical = format!(
            "{}\n{path}\n{query}\n{}\n{signed}\n{payload}",
            r.method,
            headers
                .iter()
                .map(|(k, v)| format!("{k}:{}\n", v.trim()))
                .collect::<String>()
        );
        let scope = format!("{date}/{}/s3/aws4_request", c.region);
        let sts = format!(
            "AWS4-HMAC-SHA256\n{amz}\n{scope}\n{}",
            sha_hex(canonical.as_bytes())
        );
        seed = hex::encode(hmac(&key, &sts));
        headers.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={seed}",
                c.access
            ),
        ));
    }
    let target = if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    };
    let mut head = format!("{} {target} HTTP/1.1\r\n", r.method);
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("connection: close\r\n\r\n");
    (head, seed)
}

/// Sends a head and body on a new connection; `None` when the server cut
/// the connection without an answer.
fn send(srv: &Server, head: &str, body: &[u8], shutdown: bool) -> Option<Answer> {
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", srv.port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    sock.write_all(head.as_bytes()).expect("send head");
    if sock.write_all(body).is_err() {
        // The server answered before reading everything; read it.
    }
    if shutdown {
        let _ = sock.shutdown(std::net::Shutdown::Write);
    }
    let mut all = Vec::new();
    let _ = sock.read_to_end(&mut all);
    let at = all.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&all[..at]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = all[at + 4..].to_vec();
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
            let n =
                usize::from_str_radix(String::from_utf8_lossy(&rest[..nl]).trim(), 16).unwrap_or(0);
            if n == 0 || rest.len() < nl + 2 + n {
                break;
            }
            out.extend_from_slice(&rest[nl + 2..nl + 2 + n]);
            rest = &rest[nl + 2 + n + 2..];
        }
        body = out;
    }
    Some(Answer {
        status,
        headers,
        body,
    })
}

/// Signs `r` with `c` (anonymous when None) and sends it; the server must
/// answer.
fn call_s3(srv: &Server, c: Option<&Creds>, r: Raw) -> Answer {
    let (head, _) = sign(srv, c, &r);
    send(srv, &head, &r.body, r.shutdown)
        .unwrap_or_else(|| panic!("no answer to {} {}", r.method, r.path))
}

/// An aws-chunked body signed chunk by chunk
/// (STREAMING-AWS4-HMAC-SHA256-PAYLOAD); `corrupt` spoils the signature
/// of that chunk (0-based).
fn chunked_upload(
    srv: &Server,
    c: &Creds,
    path: &str,
    data: &[u8],
    chunk: usize,
    corrupt: Option<usize>,
    declared: usize,
) -> Option<Answer> {
    let pieces: Vec<&[u8]> = data.chunks(chunk).chain(std::iter::once(&[][..])).collect();
    let sig_len = ";chunk-signature=".len() + 64 + 2;
    let encoded: usize = pieces
        .iter()
        .map(|p| format!("{:x}", p.len()).len() + sig_len + p.len() + 2)
        .sum();
    let mut r = raw("PUT", path)
        .h("content-encoding", "aws-chunked")
        .h("x-amz-decoded-content-length", &declared.to_string());
    r.payload = Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD".into());
    r.content_length = Some(Some(encoded));
    let (head, seed) = sign(srv, Some(c), &r);
    let amz = head
        .lines()
        .find_map(|l| l.strip_prefix("x-amz-date: "))
        .expect("x-amz-date")
        .trim()
        .to_string();
    let (date, _, key) = signing_key(c);
    let scope = format!("{date}/{}/s3/aws4_request", c.region);
    let mut prev = seed;
    let mut body = Vec::new();
    for (i, p) in pieces.iter().enumerate() {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{amz}\n{scope}\n{prev}\n{}\n{}",
            sha_hex(b""),
            sha_hex(p)
        );
        let mut sig = hex::encode(hmac(&key, &sts));
        prev = sig.clone();
        if corrupt == Some(i) {
            sig = sig.replace(|ch: char| ch != '0', "0");
        }
        body.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", p.len()).as_bytes());
        body.extend_from_slice(p);
        body.extend_from_slice(b"\r\n");
    }
    assert_eq!(body.len(), encoded);
    send(srv, &head, &body, false)
}

fn exists(srv: &Server, c: &Creds, path: &str) -> bool {
    let a = call_s3(srv, Some(c), raw("HEAD", path));
    assert!(matches!(a.status, 200 | 404), "HEAD {path}: {}", a.status);
    a.status == 200
}

fn list_keys(srv: &Server, c: &Creds, bucket: &str) -> Vec<String> {
    let a = call_s3(
        srv,
        Some(c),
        raw("GET", &format!("/{bucket}")).q("list-type", "2"),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    a.text()
        .split("<Key>")
        .skip(1)
        .filter_map(|x| x.split_once("</Key>").map(|(k, _)| k.to_string()))
        .collect()
}

fn bucket_names(srv: &Server, c: &Creds) -> Vec<String> {
    let a = call_s3(srv, Some(c), raw("GET", "/"));
    assert_eq!(a.status, 200, "{}", a.text());
    a.text()
        .split("<Name>")
        .skip(1)
        .filter_map(|x| x.split_once("</Name>").map(|(k, _)| k.to_string()))
        .collect()
}

fn put(srv: &Server, c: &Creds, path: &str, data: &[u8]) {
    let a = call_s3(srv, Some(c), raw("PUT", path).body(data));
    assert_eq!(a.status, 200, "PUT {path}: {}", a.text());
}

fn get(srv: &Server, c: &Creds, path: &str) -> Vec<u8> {
    let a = call_s3(srv, Some(c), raw("GET", path));
    assert_eq!(a.status, 200, "GET {path}: {}", a.text());
    a.body
}

/// Starts a multipart upload; its id.
fn initiate(srv: &Server, c: &Creds, path: &str) -> String {
    let a = call_s3(srv, Some(c), raw("POST", path).q("uploads", ""));
    assert_eq!(a.status, 200, "{}", a.text());
    let t = a.text();
    t.split_once("<UploadId>")
        .and_then(|(_, r)| r.split_once("</UploadId>"))
        .map(|(id, _)| id.to_string())
        .unwrap_or_else(|| panic!("no UploadId in {t}"))
}

fn upload_part(srv: &Server, c: &Creds, path: &str, id: &str, n: u32, data: &[u8]) -> String {
    let a = call_s3(
        srv,
        Some(c),
        raw("PUT", path)
            .q("partNumber", &n.to_string())
            .q("uploadId", id)
            .body(data),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    a.headers["etag"].clone()
}

fn complete_xml(parts: &[(u32, &str)]) -> Vec<u8> {
    let mut x = String::from("<CompleteMultipartUpload>");
    for (n, e) in parts {
        x.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
        ));
    }
    x.push_str("</CompleteMultipartUpload>");
    x.into_bytes()
}

/// A project, a member of it with `password`, and an S3 key of theirs.
async fn stranger(srv: &Server, name: &str, password: &str) -> Creds {
    let (pid, uid) = common::project_with_member(srv, name, password).await;
    let (access, secret) =
        common::ec2_credentials(srv, &format!("{name}-user"), password, name, &pid, &uid).await;
    Creds {
        access,
        secret,
        region: srv.env()["AWS_DEFAULT_REGION"].clone(),
    }
}

// ------------------------------------------------------------------ bad input

/// Each bad request gets its S3 error, in XML, and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_and_changes_nothing() {
    let srv = start();
    let c = Creds::admin(&srv);
    let before = bucket_names(&srv, &c);

    // Invalid bucket names: uppercase, too short, reserved for another API.
    for name in [
        "Upper-Case",
        "ab",
        "v3",
        "nuage",
        "-dash",
        "a..b",
        "192.168.1.1",
    ] {
        call_s3(&srv, Some(&c), raw("PUT", &format!("/{name}"))).is_error(400, "InvalidBucketName");
    }
    assert_eq!(bucket_names(&srv, &c), before);

    let a = call_s3(&srv, Some(&c), raw("PUT", "/bad-input"));
    assert_eq!(a.status, 200, "{}", a.text());
    put(&srv, &c, "/bad-input/keep", b"kept bytes");

    // A key over 1024 bytes.
    let long = format!("/bad-input/{}", "k".repeat(1025));
    call_s3(&srv, Some(&c), raw("PUT", &long).body(b"x")).is_error(400, "KeyTooLongError");
    put(&srv, &c, &format!("/bad-input/{}", "k".repeat(1024)), b"x");
    call_s3(
        &srv,
        Some(&c),
        raw("DELETE", &format!("/bad-input/{}", "k".repeat(1024))),
    );

    // A wrong Content-MD5: nothing stored, and an overwrite keeps the old
    // object; a malformed one is InvalidDigest.
    let wrong = b64(&Md5::digest(b"other bytes"));
    call_s3(
        &srv,
        Some(&c),
        raw("PUT", "/bad-input/md5")
            .h("content-md5", &wrong)
            .body(b"the bytes"),
    )
    .is_error(400, "BadDigest");
    assert!(!exists(&srv, &c, "/bad-input/md5"));
    call_s3(
        &srv,
        Some(&c),
        raw("PUT", "/bad-input/keep")
            .h("content-md5", &wrong)
            .body(b"new bytes!"),
    )
    .is_error(400, "BadDigest");
    assert_eq!(get(&srv, &c, "/bad-input/keep"), b"kept bytes");
    call_s3(
        &srv,
        Some(&c),
        raw("PUT", "/bad-input/md5")
            .h("content-md5", "not-base64!")
            .body(b"x"),
    )
    .is_error(400, "InvalidDigest");
    // ... also on the streaming path (over 256 KiB)
    let big = bytes(600 * 1024, 21);
    call_s3(
        &srv,
        Some(&c),
        raw("PUT", "/bad-input/md5")
            .h("content-md5", &wrong)
            .body(&big),
    )
    .is_error(400, "BadDigest");
    assert!(!exists(&srv, &c, "/bad-input/md5"));
    // A wrong x-amz-checksum-crc32, and a body that is not what was signed.
    call_s3(
        &srv,
        Some(&c),
        raw("PUT", "/bad-input/crc")
            .h("x-amz-checksum-crc32", &b64(&[1, 2, 3, 4]))
            .body(b"the bytes"),
    )
    .is_error(400, "BadDigest");
    let mut r = raw("PUT", "/bad-input/sha").body(b"the bytes");
    r.payload = Some(sha_hex(b"other bytes"));
    call_s3(&srv, Some(&c), r).is_error(400, "XAmzContentSHA256Mismatch");
    assert!(!exists(&srv, &c, "/bad-input/crc"));
    assert!(!exists(&srv, &c, "/bad-input/sha"));

    // No Content-Length: 411, with no body and with HTTP chunked encoding.
    let mut r = raw("PUT", "/bad-input/nolen");
    r.content_length = Some(None);
    r.payload = Some("UNSIGNED-PAYLOAD".into());
    call_s3(&srv, Some(&c), r).is_error(411, "MissingContentLength");
    let mut r = raw("PUT", "/bad-input/nolen").h("transfer-encoding", "chunked");
    r.content_length = Some(None);
    r.payload = Some("UNSIGNED-PAYLOAD".into());
    r.body = b"5\r\nhello\r\n0\r\n\r\n".to_vec();
    call_s3(&srv, Some(&c), r).is_error(411, "MissingContentLength");
    assert!(!exists(&srv, &c, "/bad-input/nolen"));

    // A body shorter than its Content-Length, the client gone: an
    // IncompleteBody answer or a cut connection, and nothing stored, on
    // both the small and the streaming path.
    for (declared, sent) in [(1000, 400), (2 * MIB, 700 * 1024)] {
        let mut r = raw("PUT", "/bad-input/short").body(&bytes(sent, 22));
        r.content_length = Some(Some(declared));
        r.payload = Some("UNSIGNED-PAYLOAD".into());
        r.shutdown = true;
        let (head, _) = sign(&srv, Some(&c), &r);
        if let Some(a) = send(&srv, &head, &r.body, true) {
            a.is_error(400, "IncompleteBody");
        }
        assert!(!exists(&srv, &c, "/bad-input/short"));
        assert_tmp_empty(&srv);
    }

    // aws-chunked: a correct body is stored; a bad chunk signature, or
    // more bytes than x-amz-decoded-content-length, store nothing.
    let data = bytes(200 * 1024, 23);
    let a = chunked_upload(
        &srv,
        &c,
        "/bad-input/chunked",
        &data,
        64 * 1024,
        None,
        data.len(),
    )
    .expect("an answer");
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(get(&srv, &c, "/bad-input/chunked"), data);
    let a = chunked_upload(
        &srv,
        &c,
        "/bad-input/chunk-sig",
        &data,
        64 * 1024,
        Some(1),
        data.len(),
    )
    .expect("an answer");
    a.is_error(403, "SignatureDoesNotMatch");
    let a = chunked_upload(
        &srv,
        &c,
        "/bad-input/chunk-sig",
        &data,
        64 * 1024,
        Some(3),
        data.len(),
    )
    .expect("an answer");
    a.is_error(403, "SignatureDoesNotMatch");
    assert!(!exists(&srv, &c, "/bad-input/chunk-sig"));
    let a = chunked_upload(
        &srv,
        &c,
        "/bad-input/chunk-long",
        &data,
        64 * 1024,
        None,
        1000,
    )
    .expect("an answer");
    assert_eq!(a.status, 400, "{}", a.text());
    let a = chunked_upload(
        &srv,
        &c,
        "/bad-input/chunk-long",
        &data,
        64 * 1024,
        None,
        data.len() + 1,
    )
    .expect("an answer");
    a.is_error(400, "IncompleteBody");
    assert!(!exists(&srv, &c, "/bad-input/chunk-long"));
    assert_tmp_empty(&srv);

    // Multipart: parts too small, out of order, unknown; malformed XML.
    let id = initiate(&srv, &c, "/bad-input/mp");
    let p1 = bytes(1024, 24);
    let p2 = bytes(1024, 25);
    let e1 = upload_part(&srv, &c, "/bad-input/mp", &id, 1, &p1);
    let e2 = upload_part(&srv, &c, "/bad-input/mp", &id, 2, &p2);
    assert_eq!(e1, format!("\"{}\"", md5_hex(&p1)));
    let complete = |xml: Vec<u8>| {
        call_s3(
            &srv,
            Some(&c),
            raw("POST", "/bad-input/mp").q("uploadId", &id).body(&xml),
        )
    };
    complete(complete_xml(&[(1, &e1), (2, &e2)])).is_error(400, "EntityTooSmall");
    complete(complete_xml(&[(2, &e2), (1, &e1)])).is_error(400, "InvalidPartOrder");
    complete(complete_xml(&[(1, &e1), (3, &e2)])).is_error(400, "InvalidPart");
    complete(complete_xml(&[(1, &e2)])).is_error(400, "InvalidPart");
    complete(b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>".to_vec())
        .is_error(400, "MalformedXML");
    complete(b"not xml at all".to_vec()).is_error(400, "MalformedXML");
    assert!(!exists(&srv, &c, "/bad-input/mp"));
    // the upload is still there, with its parts
    let a = call_s3(
        &srv,
        Some(&c),
        raw("GET", "/bad-input/mp").q("uploadId", &id),
    );
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(a.text().matches("<Part>").count(), 2, "{}", a.text());
    // a single small part is a valid object (the last part may be small)
    let a = complete(complete_xml(&[(2, &e2)]));
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(get(&srv, &c, "/bad-input/mp"), p2);
    call_s3(
        &srv,
        Some(&c),
        raw("GET", "/bad-input/mp").q("uploadId", &id),
    )
    .is_error(404, "NoSuchUpload");
    call_s3(
        &srv,
        Some(&c),
        raw("PUT", "/bad-input/mp")
            .q("partNumber", "10001")
            .q("uploadId", &id)
            .body(b"x"),
    )
    .is_error(400, "InvalidArgument");

    // Abort: the upload goes from the listing, its parts from the disk.
    let before = data_files(&srv);
    let id2 = initiate(&srv, &c, "/bad-input/aborted");
    upload_part(
        &srv,
        &c,
        "/bad-input/aborted",
        &id2,
        1,
        &bytes(600 * 1024, 26),
    );
    assert_eq!(data_files(&srv), before + 1);
    let uploads = call_s3(&srv, Some(&c), raw("GET", "/bad-input").q("uploads", ""));
    assert!(uploads.text().contains(&id2), "{}", uploads.text());
    let a = call_s3(
        &srv,
        Some(&c),
        raw("DELETE", "/bad-input/aborted").q("uploadId", &id2),
    );
    assert_eq!(a.status, 204, "{}", a.text());
    let uploads = call_s3(&srv, Some(&c), raw("GET", "/bad-input").q("uploads", ""));
    assert!(!uploads.text().contains(&id2), "{}", uploads.text());
    call_s3(
        &srv,
        Some(&c),
        raw("PUT", "/bad-input/aborted")
            .q("partNumber", "2")
            .q("uploadId", &id2)
            .body(b"x"),
    )
    .is_error(404, "NoSuchUpload");
    for _ in 0..100 {
        if data_files(&srv) == before {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        data_files(&srv),
        before,
        "an aborted upload's part was left"
    );

    // Malformed XML in delete-objects: nothing deleted.
    let md5 = b64(&Md5::digest(b"<Delete><Object><Key>keep</Key>"));
    call_s3(
        &srv,
        Some(&c),
        raw("POST", "/bad-input")
            .q("delete", "")
            .h("content-md5", &md5)
            .body(b"<Delete><Object><Key>keep</Key>"),
    )
    .is_error(400, "MalformedXML");
    assert!(exists(&srv, &c, "/bad-input/keep"));

    // Ranges past the end: 416 InvalidRange; a range that starts inside is
    // cut at the end.
    call_s3(
        &srv,
        Some(&c),
        raw("GET", "/bad-input/keep").h("range", "bytes=100-200"),
    )
    .is_error(416, "InvalidRange");
    let a = call_s3(
        &srv,
        Some(&c),
        raw("GET", "/bad-input/keep").h("range", "bytes=5-200"),
    );
    assert_eq!(a.status, 206);
    assert_eq!(a.body, b"bytes");
    assert_eq!(a.headers["content-range"], "bytes 5-9/10");

    // NoSuchBucket, NoSuchKey, BucketNotEmpty.
    call_s3(&srv, Some(&c), raw("GET", "/no-such-bucket/k")).is_error(404, "NoSuchBucket");
    call_s3(&srv, Some(&c), raw("GET", "/no-such-bucket")).is_error(404, "NoSuchBucket");
    call_s3(&srv, Some(&c), raw("PUT", "/no-such-bucket/k").body(b"x"))
        .is_error(404, "NoSuchBucket");
    call_s3(&srv, Some(&c), raw("GET", "/bad-input/missing")).is_error(404, "NoSuchKey");
    call_s3(&srv, Some(&c), raw("DELETE", "/bad-input")).is_error(409, "BucketNotEmpty");
    assert!(bucket_names(&srv, &c).contains(&"bad-input".to_string()));
    let a = call_s3(&srv, Some(&c), raw("PUT", "/bad-input"));
    a.is_error(409, "BucketAlreadyOwnedByYou");

    // A wrong secret: SignatureDoesNotMatch, nothing stored.
    let wrong_secret = Creds {
        secret: format!("{}x", c.secret),
        ..c.clone()
    };
    call_s3(
        &srv,
        Some(&wrong_secret),
        raw("PUT", "/bad-input/forged").body(b"x"),
    )
    .is_error(403, "SignatureDoesNotMatch");
    call_s3(&srv, Some(&wrong_secret), raw("GET", "/bad-input/keep"))
        .is_error(403, "SignatureDoesNotMatch");
    let unknown = Creds {
        access: "AKIANOSUCHKEY0000000".into(),
        ..c.clone()
    };
    call_s3(&srv, Some(&unknown), raw("GET", "/bad-input/keep"))
        .is_error(403, "InvalidAccessKeyId");
    // Anonymous: private buckets are closed.
    call_s3(&srv, None, raw("GET", "/bad-input/keep")).is_error(403, "AccessDenied");
    call_s3(&srv, None, raw("PUT", "/bad-input/anon").body(b"x")).is_error(403, "AccessDenied");
    call_s3(&srv, None, raw("GET", "/bad-input")).is_error(403, "AccessDenied");

    // A member of another project: AccessDenied on our private bucket,
    // reading, listing, writing and deleting; the name stays ours.
    let other = stranger(&srv, "elsewhere", "elsewhere-password-1").await;
    call_s3(&srv, Some(&other), raw("GET", "/bad-input/keep")).is_error(403, "AccessDenied");
    call_s3(&srv, Some(&other), raw("GET", "/bad-input")).is_error(403, "AccessDenied");
    call_s3(
        &srv,
        Some(&other),
        raw("PUT", "/bad-input/theirs").body(b"x"),
    )
    .is_error(403, "AccessDenied");
    call_s3(&srv, Some(&other), raw("DELETE", "/bad-input/keep")).is_error(403, "AccessDenied");
    call_s3(&srv, Some(&other), raw("PUT", "/bad-input")).is_error(409, "BucketAlreadyExists");
    assert!(bucket_names(&srv, &other).is_empty());

    // After all that: exactly what was stored on purpose.
    assert_eq!(list_keys(&srv, &c, "bad-input"), ["chunked", "keep", "mp"]);
    assert_eq!(get(&srv, &c, "/bad-input/keep"), b"kept bytes");
    assert_tmp_empty(&srv);
}

// ------------------------------------------------------------------ kill test

/// What a key holds: nothing, or bytes (by sha256 and length) and their
/// X-Object-Meta-* metadata.
#[derive(Debug, Clone, PartialEq)]
enum Held {
    Absent,
    Present {
        sha: String,
        len: usize,
        meta: BTreeMap<String, String>,
    },
}

/// A key's acknowledged state, and the state an operation in flight at the
/// kill would give it (either is allowed afterwards, nothing else).
#[derive(Debug, Clone)]
struct KeyModel {
    acked: Held,
    in_flight: Option<Held>,
}

/// Bytes the server says `sendfile` sent (its /metrics).
async fn sendfile_bytes(srv: &Server) -> u64 {
    let m = srv
        .http()
        .get(format!("{}/metrics", srv.url()))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    m.lines()
        .find_map(|l| l.strip_prefix("nuage_object_sendfile_bytes_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sendfile counter in {m}"))
}

/// A GET through `curl` with extra flags; the status, the HTTP version and
/// the body.
fn curl_get(srv: &Server, token: &str, url: &str, flags: &[&str]) -> (u16, String, Vec<u8>) {
    let auth = format!("x-auth-token: {token}");
    let mut args = vec!["-H", &auth];
    args.extend_from_slice(flags);
    args.push(url);
    let (written, body) = curl_written(srv, &args, "%{http_code} %{http_version}");
    let (code, version) = written.split_once(' ').expect("code and version");
    (code.parse().expect("status"), version.to_string(), body)
}

/// Large GETs of plain HTTP/1 connections are sent by the kernel from the
/// page cache (`sendfile`, docs/adr/0011): the bytes are exact, whole and
/// in ranges, across the segments of a multipart object, in every dialect,
/// on a reused connection, over HTTP/1.0, and after a client gave up
/// mid-body; HTTP/2 gets the same bytes read the usual way; a corrupt
/// segment cuts the answer short and is refused after.
#[tokio::test(flavor = "multi_thread")]
async fn zero_copy_gets_send_exact_bytes() {
    let srv = start();
    let c = Creds::admin(&srv);
    let (token, base) = swift_login(&srv).await;
    let http = srv.http();
    put(&srv, &c, "/zcopy", &[]);
    let big = bytes(20 * MIB + 12_345, 41);
    put(&srv, &c, "/zcopy/big", &big);
    let multi = bytes(11 * MIB + 7, 42);
    let id = initiate(&srv, &c, "/zcopy/multi");
    let mut etags = Vec::new();
    for (n, part) in multi.chunks(5 * MIB).enumerate() {
        etags.push(upload_part(
            &srv,
            &c,
            "/zcopy/multi",
            &id,
            n as u32 + 1,
            part,
        ));
    }
    let parts: Vec<(u32, &str)> = (1..).zip(etags.iter().map(String::as_str)).collect();
    let a = call_s3(
        &srv,
        Some(&c),
        raw("POST", "/zcopy/multi")
            .q("uploadId", &id)
            .body(&complete_xml(&parts)),
    );
    assert_eq!(a.status, 200, "{}", a.text());

    // Swift, one keep-alive connection: whole objects, ranges inside a
    // segment and across two.
    let before = sendfile_bytes(&srv).await;
    let mut expected_sent = 0;
    let cases = [
        ("big", None),
        ("multi", None),
        ("big", Some((1000, 10 * MIB))),
        ("multi", Some((5 * MIB - 3, 10 * MIB + 5))),
        ("big", None),
    ];
    for (key, range) in cases {
        let mut rq = http
            .get(format!("{base}/zcopy/{key}"))
            .header("x-auth-token", &token);
        if let Some((a, b)) = range {
            rq = rq.header("range", format!("bytes={a}-{}", b - 1));
        }
        let r = rq.send().await.expect("GET");
        assert_eq!(r.status(), if range.is_some() { 206 } else { 200 });
        let body = r.bytes().await.expect("body");
        let whole = if key == "big" { &big } else { &multi };
        let want = range.map_or(&whole[..], |(a, b)| &whole[a..b]);
        assert_eq!(body.len(), want.len(), "{key} {range:?}");
        assert!(body[..] == want[..], "{key} {range:?}: wrong bytes");
        expected_sent += want.len() as u64;
    }
    assert_eq!(sendfile_bytes(&srv).await - before, expected_sent);

    // S3 (raw signed request) and the native API.
    assert!(
        get(&srv, &c, "/zcopy/multi") == multi,
        "S3 GET: wrong bytes"
    );
    let native = srv.admin_token().await;
    let r = http
        .get(format!("{}/nuage/v1/buckets/zcopy/objects/big", srv.url()))
        .bearer_auth(&native)
        .send()
        .await
        .expect("native GET");
    assert_eq!(r.status(), 200);
    assert!(
        r.bytes().await.expect("native body")[..] == big[..],
        "native GET: wrong bytes"
    );

    // HTTP/1.0 gets the kernel's copy too; HTTP/2 does not, same bytes.
    let before = sendfile_bytes(&srv).await;
    let url = format!("{base}/zcopy/big");
    let (code, version, body) = curl_get(&srv, &token, &url, &["--http1.0"]);
    assert_eq!((code, version.as_str()), (200, "1")); // curl prints 1.0 as "1"
    assert!(body == big, "HTTP/1.0: wrong bytes");
    assert_eq!(sendfile_bytes(&srv).await - before, big.len() as u64);
    let (code, version, body) = curl_get(&srv, &token, &url, &["--http2-prior-knowledge"]);
    assert_eq!((code, version.as_str()), (200, "2"));
    assert!(body == big, "HTTP/2: wrong bytes");
    assert_eq!(sendfile_bytes(&srv).await - before, big.len() as u64);

    // Pipelined requests on one connection: each body whole, in order.
    let path = base.trim_start_matches(&srv.url()).to_string();
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", srv.port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut reqs = String::new();
    for (key, range) in [
        ("big", "bytes=7-"),
        ("multi", "bytes=0-"),
        ("big", "bytes=0-99"),
    ] {
        reqs.push_str(&format!(
            "GET {path}/zcopy/{key} HTTP/1.1\r\nHost: localhost\r\nX-Auth-Token: {token}\r\nRange: {range}\r\n\r\n"
        ));
    }
    sock.write_all(reqs.as_bytes()).expect("send pipelined");
    let mut reader = std::io::BufReader::new(sock);
    for want in [&big[7..], &multi[..], &big[..100]] {
        let mut status = String::new();
        std::io::BufRead::read_line(&mut reader, &mut status).expect("status line");
        assert!(status.starts_with("HTTP/1.1 206"), "{status}");
        let mut len = None;
        loop {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut reader, &mut line).expect("head line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse::<usize>().ok();
            }
        }
        let mut body = vec![0u8; len.expect("content-length")];
        reader.read_exact(&mut body).expect("pipelined body");
        assert!(
            body == want,
            "pipelined: wrong bytes ({} bytes)",
            want.len()
        );
    }

    // A client that hangs up mid-body leaves the server serving.
    let mut quitter = srv
        .client("curl")
        .args(["-sS", "-H", &format!("x-auth-token: {token}"), &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("curl");
    let mut first = vec![0u8; MIB];
    quitter
        .stdout
        .take()
        .expect("stdout")
        .read_exact(&mut first)
        .expect("first MiB");
    assert!(first == big[..MIB]);
    let _ = quitter.kill();
    let _ = quitter.wait();
    let (code, _, body) = curl_get(&srv, &token, &url, &[]);
    assert_eq!(code, 200);
    assert!(body == big, "after a hang-up: wrong bytes");

    // A flipped byte in the stored segment: the answer is cut short, then
    // the object is refused.
    let seg = walk(&srv.data_dir().join("objects/data"))
        .into_iter()
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == big.len() as u64))
        .expect("the segment of big");
    let mut stored = read(&seg);
    stored[3 * MIB] ^= 0x5a;
    std::fs::write(&seg, &stored).expect("corrupt the segment");
    let r = http
        .get(&url)
        .header("x-auth-token", &token)
        .send()
        .await
        .expect("GET corrupt");
    assert_eq!(r.status(), 200, "the answer starts before the check ends");
    if let Ok(b) = r.bytes().await {
        assert!(b.len() < big.len(), "a corrupt object served whole");
    }
    // The corruption is recorded by a task the cut answer started: a
    // request that comes before its commit is cut short the same way
    // (curl exits 18), and is tried again.
    let mut refused = false;
    for _ in 0..100 {
        let mut c = srv.client("curl");
        c.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("x-auth-token: {token}"))
            .arg(&url);
        let out = c.output().expect("run curl");
        if out.stdout == b"500" {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(refused, "a corrupt object is still served");
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A project-scoped Keystone token and the Swift account URL.
async fn swift_login(srv: &Server) -> (String, String) {
    let pw = srv.env()["OS_PASSWORD"].clone();
    common::swift_login(srv, "admin", &pw, "admin").await
}

const KEYS_PER_WRITER: usize = 6;
const WRITERS: usize = 4;

fn key_name(writer: usize, k: usize) -> String {
    format!("w{writer}/key-{k}")
}

fn random_size(rng: &mut impl Rng) -> usize {
    match rng.gen_range(0..100) {
        0..=4 => 0,
        5..=29 => rng.gen_range(1..4096),
        30..=59 => rng.gen_range(4096..256 * 1024),
        _ => rng.gen_range(256 * 1024..=3 * MIB),
    }
}

/// One writer: puts, overwrites, copies, posts metadata and deletes its own
/// keys until the server goes away. Returns its keys' models.
async fn writer(
    http: reqwest::Client,
    base: String,
    token: String,
    id: usize,
    round: usize,
    mut model: Vec<KeyModel>,
) -> Vec<KeyModel> {
    let mut rng = rand::rngs::StdRng::seed_from_u64((round * 100 + id) as u64);
    let mut n = 0;
    loop {
        n += 1;
        let k = rng.gen_range(0..KEYS_PER_WRITER);
        let url = format!("{base}/{}", key_name(id, k));
        let gen = format!("r{round}-w{id}-{n}");
        let op = rng.gen_range(0..10);
        let (req, next) = match (op, &model[k].acked) {
            (0..=5, _) => {
                let len = random_size(&mut rng);
                let mut data = vec![0u8; len];
                rng.fill_bytes(&mut data);
                let sha = sha_hex(&data);
                let meta =
                    BTreeMap::from([("sha".to_string(), sha.clone()), ("gen".to_string(), gen)]);
                // Swift wants a Content-Length even for an empty body.
                let mut rb = http
                    .put(&url)
                    .header("x-auth-token", &token)
                    .header("content-length", len.to_string())
                    .body(data);
                for (m, v) in &meta {
                    rb = rb.header(format!("x-object-meta-{m}"), v);
                }
                (rb, Held::Present { sha, len, meta })
            }
            (6, _) => {
                let src = rng.gen_range(0..KEYS_PER_WRITER);
                match &model[src].acked {
                    Held::Present { .. } if src != k => (
                        http.put(&url)
                            .header("x-auth-token", &token)
                            .header("x-copy-from", format!("/kill/{}", key_name(id, src)))
                            .header("content-length", "0")
                            .body(Vec::new()),
                        model[src].acked.clone(),
                    ),
                    _ => continue,
                }
            }
            (7, Held::Present { sha, len, .. }) => {
                let meta = BTreeMap::from([
                    ("posted".to_string(), "yes".to_string()),
                    ("gen".to_string(), gen),
                ]);
                let mut rb = http.post(&url).header("x-auth-token", &token);
                for (m, v) in &meta {
                    rb = rb.header(format!("x-object-meta-{m}"), v);
                }
                (
                    rb,
                    Held::Present {
                        sha: sha.clone(),
                        len: *len,
                        meta,
                    },
                )
            }
            (7, Held::Absent) => continue,
            _ => (
                http.delete(&url).header("x-auth-token", &token),
                Held::Absent,
            ),
        };
        match req.send().await {
            Err(_) => {
                // The server was killed: this one may or may not have happened.
                model[k].in_flight = Some(next);
                return model;
            }
            Ok(r) => {
                let st = r.status().as_u16();
                let absent_ok = st == 404 && next == Held::Absent && model[k].acked == Held::Absent;
                if !(200..300).contains(&st) && !absent_ok {
                    let text = r.text().await.unwrap_or_default();
                    panic!("writer {id}: {url} answered {st}: {text}");
                }
                // The answer is the acknowledgement; reading it fully makes
                // sure it was not cut.
                if r.bytes().await.is_err() {
                    model[k].in_flight = Some(next);
                    return model;
                }
                model[k].acked = next;
            }
        }
    }
}

/// What a key holds on the server now.
async fn observe(http: &reqwest::Client, base: &str, token: &str, key: &str) -> Held {
    let r = http
        .get(format!("{base}/{key}"))
        .header("x-auth-token", token)
        .send()
        .await
        .expect("GET after restart");
    match r.status().as_u16() {
        404 => Held::Absent,
        200 => {
            let meta: BTreeMap<String, String> = r
                .headers()
                .iter()
                .filter_map(|(n, v)| {
                    Some((
                        n.as_str().strip_prefix("x-object-meta-")?.to_string(),
                        v.to_str().ok()?.to_string(),
                    ))
                })
                .collect();
            let declared: Option<usize> = r
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok()?.parse().ok());
            let body = r.bytes().await.expect("object body");
            assert_eq!(declared, Some(body.len()), "{key}: a cut answer");
            Held::Present {
                sha: sha_hex(&body),
                len: body.len(),
                meta,
            }
        }
        s => panic!("GET {key} after restart: {s}"),
    }
}

/// Opens the engine on the stopped server's data and runs its fsck: no
/// file without a row, no row without its file, reference counts right.
async fn fsck(srv: &Server, identity: &nuage_identity::Identity) {
    let store = nuage_object::ObjectStore::open(
        &srv.data_dir().join("objects"),
        identity.clone(),
        nuage_object::ObjectConfig {
            region: "nuage-1".into(),
            upload_expiry: nuage_object::DEFAULT_UPLOAD_EXPIRY,
        },
    )
    .await
    .expect("open the object engine");
    let (orphans, missing) = store.fsck().await.expect("fsck");
    assert!(orphans.is_empty(), "orphaned object data: {orphans:?}");
    assert!(missing.is_empty(), "object data missing: {missing:?}");
}

/// Issue 4's reliability test: SIGKILL while writers write, overwrite,
/// copy, post metadata and delete; after each restart every acknowledged
/// object reads back exactly, deleted ones are gone, an operation in
/// flight is applied whole or not at all, and no data is left over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_while_writing_loses_nothing_acknowledged() {
    let mut srv = start();
    let db = nuage_store::testing::fresh("sqlite").await.expect("db");
    let identity =
        nuage_identity::Identity::open(db.db.clone(), nuage_identity::IdentityConfig::default())
            .await
            .expect("identity");
    let (token, account) = swift_login(&srv).await;
    let r = srv
        .http()
        .put(format!("{account}/kill"))
        .header("x-auth-token", &token)
        .send()
        .await
        .expect("create container");
    assert_eq!(r.status(), 201);
    let base = format!("{account}/kill");
    let mut models: Vec<Vec<KeyModel>> = (0..WRITERS)
        .map(|_| {
            vec![
                KeyModel {
                    acked: Held::Absent,
                    in_flight: None,
                };
                KEYS_PER_WRITER
            ]
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut in_flight_seen = 0;
    let rounds = 6;
    for round in 0..rounds {
        let (token, _) = swift_login(&srv).await;
        let tasks: Vec<_> = models
            .drain(..)
            .enumerate()
            .map(|(i, m)| {
                tokio::spawn(writer(srv.http(), base.clone(), token.clone(), i, round, m))
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(400..2500))).await;
        srv.kill9();
        for t in tasks {
            models.push(t.await.expect("writer"));
        }
        in_flight_seen += models
            .iter()
            .flatten()
            .filter(|m| m.in_flight.is_some())
            .count();

        // Restart on the same data and check every key.
        srv.spawn();
        assert!(
            tmp_files(&srv).is_empty(),
            "round {round}: objects/tmp after restart: {:?}",
            tmp_files(&srv)
        );
        let (token, _) = swift_login(&srv).await;
        // A new client: pooled connections died with the old process.
        let http = srv.http();
        let mut present = BTreeMap::new();
        for (w, keys) in models.iter_mut().enumerate() {
            for (k, m) in keys.iter_mut().enumerate() {
                let name = key_name(w, k);
                let seen = observe(&http, &base, &token, &name).await;
                assert!(
                    seen == m.acked || Some(&seen) == m.in_flight.as_ref(),
                    "round {round}: {name} is {seen:?}; acknowledged {:?}, in flight {:?}",
                    m.acked,
                    m.in_flight
                );
                if let Held::Present { len, .. } = &seen {
                    present.insert(name, *len);
                }
                m.acked = seen;
                m.in_flight = None;
            }
        }
        // The listing agrees.
        let r = http
            .get(format!("{base}?format=json"))
            .header("x-auth-token", &token)
            .send()
            .await
            .expect("listing");
        let listing: Value = r.json().await.expect("listing JSON");
        let listed: BTreeMap<String, usize> = listing
            .as_array()
            .expect("array")
            .iter()
            .map(|o| {
                (
                    o["name"].as_str().unwrap_or_default().to_string(),
                    o["bytes"].as_u64().unwrap_or_default() as usize,
                )
            })
            .collect();
        assert_eq!(listed, present, "round {round}: the listing");
        let r = http
            .head(&base)
            .header("x-auth-token", &token)
            .send()
            .await
            .expect("container HEAD");
        let count: usize = r.headers()["x-container-object-count"]
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .expect("object count");
        let bytes_used: usize = r.headers()["x-container-bytes-used"]
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .expect("bytes used");
        assert_eq!(count, present.len(), "round {round}: object count");
        assert_eq!(
            bytes_used,
            present.values().sum::<usize>(),
            "round {round}: bytes used"
        );

        // Nothing orphaned: stop (nothing in flight) and fsck the data.
        srv.kill9();
        fsck(&srv, &identity).await;
        srv.spawn();
    }
    assert!(
        in_flight_seen > 0,
        "no operation was ever cut by a kill: the test proved nothing"
    );
    let status = srv.terminate();
    assert!(status.success(), "{status}\n{}", srv.logs());
    fsck(&srv, &identity).await;
}

// ------------------------------------------- one engine, two dialects alike

/// boto3 as a thin client for the cross-dialect tests: `put`, `copy` and
/// `head` print what S3 shows of the kept headers (HEAD and GET), for the
/// test to compare with what Swift shows; `conditions` runs S3's
/// conditional GET, HEAD and PUT cases and prints `conditions OK`.
const BOTO3_DIALECTS: &str = r#"
import datetime, json, os, sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

c = boto3.client('s3', endpoint_url=os.environ['NUAGE_URL'],
                 region_name=os.environ['AWS_DEFAULT_REGION'],
                 config=Config(signature_version='s3v4', s3={'addressing_style': 'path'},
                               retries={'max_attempts': 1}))
# Headers boto3 1.26 has no parameter for, added to the next PutObject.
extra = {}
def add_extra(request, **kw):
    for k, v in extra.items():
        request.headers[k] = v
c.meta.events.register('before-sign.s3.PutObject', add_extra)

SHOWN = ('content-disposition', 'content-encoding', 'cache-control', 'expires',
         'content-language', 'x-robots-tag')
def shown(r):
    return {k: v for k, v in r['ResponseMetadata']['HTTPHeaders'].items() if k in SHOWN}

def views(b, key):
    g = c.get_object(Bucket=b, Key=key)
    g['Body'].read()
    return {'head': shown(c.head_object(Bucket=b, Key=key)), 'get': shown(g)}

def status(f, **k):
    try:
        r = f(**k)
        if 'Body' in r:
            r['Body'].read()
        return 200, r['ResponseMetadata']['HTTPHeaders'], {}
    except ClientError as e:
        return (e.response['ResponseMetadata']['HTTPStatusCode'],
                e.response['ResponseMetadata']['HTTPHeaders'], e.response['Error'])

op, b = sys.argv[1], sys.argv[2]
if op == 'put':
    c.create_bucket(Bucket=b)
    c.put_object(Bucket=b, Key='from-s3', Body=b'gzipped bytes',
                 ContentDisposition='attachment; filename="report.txt"',
                 ContentEncoding='gzip', CacheControl='max-age=3600, public',
                 Expires=datetime.datetime(2033, 12, 1, 16, 0, 0, tzinfo=datetime.timezone.utc),
                 ContentLanguage='fr-CA')
    print(json.dumps(views(b, 'from-s3')))
elif op == 'copy':
    c.copy_object(Bucket=b, Key=sys.argv[4], CopySource={'Bucket': b, 'Key': sys.argv[3]},
                  MetadataDirective='REPLACE', ContentDisposition='inline',
                  ContentLanguage='de')
    print(json.dumps(views(b, sys.argv[4])))
elif op == 'head':
    print(json.dumps({k: views(b, k) for k in sys.argv[3:]}))
elif op == 'conditions':
    c.create_bucket(Bucket=b)
    c.put_object(Bucket=b, Key='k', Body=b'version one')
    h = c.head_object(Bucket=b, Key='k')
    etag, lm = h['ETag'], h['LastModified']
    earlier, later = lm - datetime.timedelta(seconds=10), lm + datetime.timedelta(seconds=10)
    cases = [
        ({}, 200),
        ({'IfMatch': etag}, 200),
        ({'IfMatch': etag.strip('"')}, 200),
        ({'IfMatch': '"nope"'}, 412),
        ({'IfMatch': '"nope", ' + etag}, 200),
        ({'IfNoneMatch': etag}, 304),
        ({'IfNoneMatch': '*'}, 304),
        ({'IfNoneMatch': '"other"'}, 200),
        ({'IfModifiedSince': lm}, 304),
        ({'IfModifiedSince': earlier}, 200),
        ({'IfUnmodifiedSince': earlier}, 412),
        ({'IfUnmodifiedSince': lm}, 200),
        # RFC 7232's order: If-Match, else If-Unmodified-Since; then
        # If-None-Match, else If-Modified-Since.
        ({'IfMatch': etag, 'IfUnmodifiedSince': earlier}, 200),
        ({'IfNoneMatch': '"other"', 'IfModifiedSince': later}, 200),
        ({'IfMatch': '"nope"', 'IfNoneMatch': etag}, 412),
        ({'IfUnmodifiedSince': earlier, 'IfNoneMatch': etag}, 412),
    ]
    for cond, want in cases:
        for name, f in (('GET', c.get_object), ('HEAD', c.head_object)):
            got, headers, err = status(f, Bucket=b, Key='k', **cond)
            assert got == want, (name, cond, got, want, err)
            if got == 304:
                assert headers.get('etag') == etag, (name, cond, headers)
                assert headers.get('content-length', '0') == '0', (name, cond, headers)
            if got == 412 and name == 'GET':
                assert err['Code'] == 'PreconditionFailed', (cond, err)
                assert err.get('Condition') in ('If-Match', 'If-Unmodified-Since'), (cond, err)

    # A conditional PUT: If-None-Match: * writes a new key only. Refused
    # many times over one connection: boto3 sends Expect: 100-continue,
    # and a refusal that left the body unread put the connection out of
    # step (the next request answered 400) about once in ten.
    for _ in range(30):
        extra['If-None-Match'] = '*'
        got, _, err = status(c.put_object, Bucket=b, Key='k', Body=b'version two')
        assert (got, err.get('Code')) == (412, 'PreconditionFailed'), (got, err)
        extra.clear()
        assert c.get_object(Bucket=b, Key='k')['Body'].read() == b'version one'
        assert c.head_object(Bucket=b, Key='k')['ETag'] == etag
    extra['If-None-Match'] = '*'
    got, _, err = status(c.put_object, Bucket=b, Key='new', Body=b'fresh')
    assert got == 200, err
    assert c.get_object(Bucket=b, Key='new')['Body'].read() == b'fresh'
    # Other values, and If-Match on a write, are refused, not ignored.
    for k, v in (('If-None-Match', etag), ('If-Match', etag)):
        extra.clear()
        extra[k] = v
        got, _, err = status(c.put_object, Bucket=b, Key='k', Body=b'version three')
        assert (got, err.get('Code')) == (501, 'NotImplemented'), (k, got, err)
    extra.clear()
    assert c.get_object(Bucket=b, Key='k')['Body'].read() == b'version one'
    print('conditions OK')
"#;

/// Runs BOTO3_DIALECTS with Debian's python3 (python3-boto3); its output.
fn boto3_dialects(srv: &Server, args: &[&str]) -> String {
    let mut c = srv.client("/usr/bin/python3");
    c.arg("-c").arg(BOTO3_DIALECTS).args(args);
    let (ok, out, err) = common::run(&mut c);
    assert!(ok, "boto3 {args:?}: {out}\n{err}");
    out
}

/// One Swift request with a token; status, headers and body.
async fn swift_call(
    srv: &Server,
    token: &str,
    method: reqwest::Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut rb = srv
        .http()
        .request(method, url)
        .header("x-auth-token", token)
        .body(body.to_vec());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.expect("swift request");
    let st = r.status().as_u16();
    let h = r.headers().clone();
    (st, h, r.bytes().await.expect("body").to_vec())
}

/// The kept headers a response shows, by lowercase name.
fn shown(h: &reqwest::header::HeaderMap) -> BTreeMap<String, String> {
    [
        "content-disposition",
        "content-encoding",
        "cache-control",
        "expires",
        "content-language",
        "x-robots-tag",
    ]
    .into_iter()
    .filter_map(|n| Some((n.to_string(), h.get(n)?.to_str().ok()?.to_string())))
    .collect()
}

fn header_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// S3 and Swift store and give back the same headers, the engine's set
/// (Content-Disposition, Content-Encoding, Cache-Control, Expires,
/// Content-Language): what boto3 writes, Swift's HEAD and GET show, and
/// what the `swift` client writes, boto3's HEAD and GET show; a header
/// neither keeps (Swift's X-Robots-Tag) or an empty value is kept by
/// neither; Swift's POST replaces them and S3's REPLACE copy sets them,
/// read through the other dialect. Before, each front door had its own
/// list, and an empty value written through Swift came back through S3.
#[tokio::test(flavor = "multi_thread")]
async fn both_dialects_keep_the_same_headers() {
    let srv = start();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let sw = Swift { srv: &srv, cwd: w };
    let (token, account) = swift_login(&srv).await;
    let get = reqwest::Method::GET;
    let head = reqwest::Method::HEAD;
    let both_s3 = |v: &Value, want: &BTreeMap<String, String>, what: &str| {
        for view in ["head", "get"] {
            let got: BTreeMap<String, String> =
                serde_json::from_value(v[view].clone()).expect("headers");
            assert_eq!(&got, want, "S3 {view} of {what}");
        }
    };
    let both_swift = |url: String, want: BTreeMap<String, String>, what: &'static str| {
        let (token, head, get) = (token.clone(), head.clone(), get.clone());
        let srv = &srv;
        async move {
            for m in [head, get] {
                let (st, h, _) = swift_call(srv, &token, m.clone(), &url, &[], b"").await;
                assert_eq!(st, 200, "Swift {m} of {what}");
                assert_eq!(shown(&h), want, "Swift {m} of {what}");
            }
        }
    };

    // S3 writes, Swift reads.
    let from_s3 = header_map(&[
        ("content-disposition", "attachment; filename=\"report.txt\""),
        ("content-encoding", "gzip"),
        ("cache-control", "max-age=3600, public"),
        ("expires", "Thu, 01 Dec 2033 16:00:00 GMT"),
        ("content-language", "fr-CA"),
    ]);
    let v: Value =
        serde_json::from_str(&boto3_dialects(&srv, &["put", "same-headers"])).expect("boto3 JSON");
    both_s3(&v, &from_s3, "from-s3");
    let box_url = format!("{account}/same-headers");
    both_swift(format!("{box_url}/from-s3"), from_s3.clone(), "from-s3").await;

    // The swift client writes, S3 reads.
    write(w, "payload.bin", b"gzipped bytes");
    sw.ok(&[
        "upload",
        "same-headers",
        "payload.bin",
        "--object-name",
        "from-swift",
        "-H",
        "Content-Disposition: attachment; filename=\"swift.txt\"",
        "-H",
        "Content-Encoding: gzip",
        "-H",
        "Cache-Control: no-cache",
        "-H",
        "Expires: Fri, 02 Dec 2033 10:00:00 GMT",
        "-H",
        "Content-Language: en-GB",
        "-H",
        "X-Robots-Tag: noindex",
    ]);
    let from_swift = header_map(&[
        ("content-disposition", "attachment; filename=\"swift.txt\""),
        ("content-encoding", "gzip"),
        ("cache-control", "no-cache"),
        ("expires", "Fri, 02 Dec 2033 10:00:00 GMT"),
        ("content-language", "en-GB"),
    ]);
    both_swift(
        format!("{box_url}/from-swift"),
        from_swift.clone(),
        "from-swift",
    )
    .await;
    // An empty value means nothing, in either dialect.
    let (st, _, body) = swift_call(
        &srv,
        &token,
        reqwest::Method::PUT,
        &format!("{box_url}/empty"),
        &[("content-language", ""), ("content-disposition", "inline")],
        b"x",
    )
    .await;
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
    let inline = header_map(&[("content-disposition", "inline")]);
    both_swift(format!("{box_url}/empty"), inline.clone(), "empty").await;
    let v: Value = serde_json::from_str(&boto3_dialects(
        &srv,
        &["head", "same-headers", "from-swift", "empty"],
    ))
    .expect("boto3 JSON");
    both_s3(&v["from-swift"], &from_swift, "from-swift");
    both_s3(&v["empty"], &inline, "empty");

    // Swift's POST replaces the kept headers; S3 sees the new set.
    let (st, _, _) = swift_call(
        &srv,
        &token,
        reqwest::Method::POST,
        &format!("{box_url}/from-s3"),
        &[("content-disposition", "inline"), ("x-robots-tag", "none")],
        b"",
    )
    .await;
    assert_eq!(st, 202);
    let v: Value =
        serde_json::from_str(&boto3_dialects(&srv, &["head", "same-headers", "from-s3"]))
            .expect("boto3 JSON");
    both_s3(&v["from-s3"], &inline, "from-s3 after Swift's POST");

    // S3's copy with REPLACE sets them; Swift sees the new set.
    let v: Value = serde_json::from_str(&boto3_dialects(
        &srv,
        &["copy", "same-headers", "from-swift", "copied"],
    ))
    .expect("boto3 JSON");
    let copied = header_map(&[
        ("content-disposition", "inline"),
        ("content-language", "de"),
    ]);
    both_s3(&v, &copied, "copied");
    both_swift(format!("{box_url}/copied"), copied, "copied").await;
}

/// Conditional requests are the engine's, so both dialects answer them
/// alike (RFC 7232): boto3 through S3 (304 without a body, 412
/// PreconditionFailed naming the condition, `If-None-Match: *` on PUT),
/// raw requests and the `swift` client through Swift (304 and 412 with
/// Swift's headers, ETags quoted or not, `If-None-Match: *` on PUT). A
/// refused conditional PUT changes nothing. Before, Swift ignored every
/// condition on reads and refused `If-None-Match` on PUT, and S3 ignored
/// `If-None-Match` on PUT and overwrote.
#[tokio::test(flavor = "multi_thread")]
async fn both_dialects_answer_conditional_requests_alike() {
    let srv = start();
    let out = boto3_dialects(&srv, &["conditions", "cond-s3"]);
    assert!(out.contains("conditions OK"), "{out}");

    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let sw = Swift { srv: &srv, cwd: w };
    let (token, account) = swift_login(&srv).await;
    let box_url = format!("{account}/cond-swift");
    let url = format!("{box_url}/k");
    let put = reqwest::Method::PUT;
    let (st, _, _) = swift_call(&srv, &token, put.clone(), &box_url, &[], b"").await;
    assert_eq!(st, 201);
    let (st, h, _) = swift_call(&srv, &token, put.clone(), &url, &[], b"version one").await;
    assert_eq!(st, 201);
    let etag = h["etag"].to_str().expect("etag").to_string();
    assert_eq!(etag, md5_hex(b"version one"));
    let (_, h, _) = swift_call(&srv, &token, reqwest::Method::HEAD, &url, &[], b"").await;
    let lm = h["last-modified"]
        .to_str()
        .expect("last-modified")
        .to_string();
    let at = chrono::DateTime::parse_from_rfc2822(&lm).expect("date");
    let fmt = |d: chrono::DateTime<chrono::FixedOffset>| {
        d.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
    };
    let earlier = fmt(at - chrono::Duration::seconds(10));
    let later = fmt(at + chrono::Duration::seconds(10));
    let quoted = format!("\"{etag}\"");
    let cases: Vec<(Vec<(&str, &str)>, u16)> = vec![
        (vec![], 200),
        (vec![("if-match", &etag)], 200),
        (vec![("if-match", &quoted)], 200),
        (vec![("if-match", "nope")], 412),
        (vec![("if-match", "*")], 200),
        (vec![("if-none-match", &etag)], 304),
        (vec![("if-none-match", &quoted)], 304),
        (vec![("if-none-match", "*")], 304),
        (vec![("if-none-match", "other, more")], 200),
        (vec![("if-modified-since", &lm)], 304),
        (vec![("if-modified-since", &earlier)], 200),
        (vec![("if-unmodified-since", &earlier)], 412),
        (vec![("if-unmodified-since", &lm)], 200),
        (
            vec![("if-match", &etag), ("if-unmodified-since", &earlier)],
            200,
        ),
        (
            vec![("if-none-match", "other"), ("if-modified-since", &later)],
            200,
        ),
        (vec![("if-match", "nope"), ("if-none-match", &etag)], 412),
    ];
    for (h, want) in &cases {
        for m in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let (st, hs, body) = swift_call(&srv, &token, m.clone(), &url, h, b"").await;
            let text = String::from_utf8_lossy(&body);
            assert_eq!(st, *want, "Swift {m} {h:?}: {text}");
            for name in ["x-trans-id", "x-openstack-request-id", "date"] {
                assert!(hs.contains_key(name), "Swift {m} {h:?}: no {name}");
            }
            match st {
                200 if m == reqwest::Method::GET => assert_eq!(body, b"version one"),
                304 => {
                    assert!(body.is_empty(), "{m} {h:?}: {text}");
                    assert_eq!(hs["etag"], etag.as_str(), "{m} {h:?}");
                }
                412 if m == reqwest::Method::GET => {
                    assert!(text.contains("does not hold"), "{h:?}: {text}")
                }
                _ => {}
            }
        }
    }

    // The swift client's --header: 304 and 412 are not downloads.
    let (ok, out, err) = sw.run(&["stat", "cond-swift", "k", "-H", "If-Match: nope"]);
    assert!(!ok && format!("{out}{err}").contains("412"), "{out}{err}");
    let (ok, out, err) = sw.run(&[
        "stat",
        "cond-swift",
        "k",
        "-H",
        &format!("If-Match: {etag}"),
    ]);
    assert!(ok && out.contains(&etag), "{out}{err}");
    let (ok, out, err) = sw.run(&[
        "download",
        "cond-swift",
        "k",
        "-o",
        "k.out",
        "-H",
        &format!("If-None-Match: {etag}"),
    ]);
    assert!(!ok && format!("{out}{err}").contains("304"), "{out}{err}");
    assert!(!w.join("k.out").exists(), "a 304 wrote a file");
    sw.ok(&[
        "download",
        "cond-swift",
        "k",
        "-o",
        "k.out",
        "-H",
        "If-None-Match: other",
    ]);
    assert_eq!(read(&w.join("k.out")), b"version one");

    // PUT with If-None-Match: * writes a new key only; a refused one
    // changes nothing.
    let (st, hs, body) = swift_call(
        &srv,
        &token,
        put.clone(),
        &url,
        &[("if-none-match", "*")],
        b"version two",
    )
    .await;
    assert_eq!(st, 412, "{}", String::from_utf8_lossy(&body));
    assert!(hs.contains_key("x-trans-id"));
    let (st, hs, body) = swift_call(&srv, &token, reqwest::Method::GET, &url, &[], b"").await;
    assert_eq!((st, body.as_slice()), (200, &b"version one"[..]));
    assert_eq!(hs["etag"], etag.as_str());
    assert_eq!(hs["last-modified"], lm.as_str());
    let (st, _, body) = swift_call(
        &srv,
        &token,
        put.clone(),
        &url,
        &[("if-none-match", &etag)],
        b"version three",
    )
    .await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(st, 400, "{text}");
    assert!(text.contains("If-None-Match only supports *"), "{text}");
    write(w, "new.txt", b"fresh");
    sw.ok(&["upload", "cond-swift", "new.txt", "-H", "If-None-Match: *"]);
    let (ok, out, err) = sw.run(&["upload", "cond-swift", "new.txt", "-H", "If-None-Match: *"]);
    assert!(!ok && format!("{out}{err}").contains("412"), "{out}{err}");
    let (st, _, body) = swift_call(
        &srv,
        &token,
        reqwest::Method::GET,
        &format!("{box_url}/new.txt"),
        &[],
        b"",
    )
    .await;
    assert_eq!((st, body.as_slice()), (200, &b"fresh"[..]));
    let (_, hs, _) = swift_call(&srv, &token, reqwest::Method::HEAD, &box_url, &[], b"").await;
    assert_eq!(hs["x-container-object-count"], "2");
    assert_eq!(
        hs["x-container-bytes-used"],
        (b"version one".len() + b"fresh".len()).to_string().as_str()
    );
}
