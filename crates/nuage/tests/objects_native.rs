//! Object storage through the native API and `nuage object ...`, against a
//! real `nuage serve` (no compute node), with the S3 dialect reading back
//! what the native API wrote.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use common::{call, nuage_bin, Options, Server};
use md5::{Digest, Md5};
use serde_json::{json, Value};

const MIB: usize = 1024 * 1024;

fn server() -> Server {
    Server::start_with(Options {
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "none".into())],
        ..Options::default()
    })
}

/// Bytes that differ at every offset, so a misplaced range shows.
fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

fn url(s: &Server, path: &str) -> String {
    format!("{}/nuage/v1{path}", s.url())
}

fn assert_error(status: u16, v: &Value, want_status: u16, code: &str) {
    assert_eq!(status, want_status, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
    assert!(
        v["error"]["request_id"]
            .as_str()
            .is_some_and(|m| m.starts_with("req-")),
        "{v}"
    );
}

/// PUTs `body` as an object; returns the status and the JSON answer.
async fn put_object(
    s: &Server,
    token: &str,
    path: &str,
    body: reqwest::Body,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut rb = s
        .http()
        .put(url(s, path))
        .header("x-auth-token", token)
        .timeout(Duration::from_secs(120));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.body(body).send().await.expect("PUT object");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// GETs an object with optional headers: status, headers, bytes.
async fn get_object(
    s: &Server,
    token: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut rb = s
        .http()
        .get(url(s, path))
        .header("x-auth-token", token)
        .timeout(Duration::from_secs(120));
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.expect("GET object");
    let status = r.status().as_u16();
    let h = r.headers().clone();
    (status, h, r.bytes().await.expect("body").to_vec())
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A body sent in chunks without a Content-Length: the server must
/// stream it rather than expect a size.
fn chunked(data: &[u8]) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        data.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures_util::stream::iter(chunks))
}

async fn stats(s: &Server, token: &str, bucket: &str) -> (i64, i64) {
    let (st, b) = call(
        s,
        token,
        "GET",
        &format!("/nuage/v1/buckets/{bucket}"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{b}");
    (
        b["objects"].as_i64().expect("objects"),
        b["bytes"].as_i64().expect("bytes"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_api_round_trip_and_s3_reads_it() {
    let s = server();
    let t = s.admin_token().await;

    // Buckets.
    let (st, b) = call(&s, &t, "PUT", "/nuage/v1/buckets/native-rt", None).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["acl"], "private");
    assert_eq!(b["objects"], 0);
    let (st, v) = call(&s, &t, "PUT", "/nuage/v1/buckets/native-rt", None).await;
    assert_error(st, &v, 409, "already_exists");
    let (st, b) = call(
        &s,
        &t,
        "PUT",
        "/nuage/v1/buckets/native-pub",
        Some(json!({"acl": "public-read"})),
    )
    .await;
    assert_eq!((st, b["acl"].as_str()), (201, Some("public-read")), "{b}");
    let (st, v) = call(&s, &t, "GET", "/nuage/v1/buckets", None).await;
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|b| b["name"].as_str())
        .collect();
    assert_eq!(names, ["native-pub", "native-rt"]);
    let (st, b) = call(
        &s,
        &t,
        "PATCH",
        "/nuage/v1/buckets/native-pub",
        Some(json!({"acl": "private", "metadata": {"team": "ops"}})),
    )
    .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(
        (b["acl"].as_str(), b["metadata"]["team"].as_str()),
        (Some("private"), Some("ops"))
    );

    // Objects: 0 B, 1 MiB with a Content-MD5 and metadata, 20 MiB chunked.
    let one = pattern(MIB, 1);
    let big = pattern(20 * MIB, 2);
    let (st, o) = put_object(
        &s,
        &t,
        "/buckets/native-rt/objects/empty",
        Vec::new().into(),
        &[],
    )
    .await;
    assert_eq!(st, 200, "{o}");
    assert_eq!(
        (o["size"].as_u64(), o["etag"].as_str()),
        (Some(0), Some(md5_hex(b"").as_str()))
    );
    let md5_b64 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&one));
    let (st, o) = put_object(
        &s,
        &t,
        "/buckets/native-rt/objects/dir/one.txt",
        one.clone().into(),
        &[
            ("content-type", "text/plain"),
            ("content-md5", &md5_b64),
            ("x-nuage-meta-color", "blue"),
            ("cache-control", "max-age=60"),
        ],
    )
    .await;
    assert_eq!(st, 200, "{o}");
    assert_eq!(o["etag"], md5_hex(&one));
    assert_eq!(o["metadata"], json!({"color": "blue"}));
    let (st, o) = put_object(
        &s,
        &t,
        "/buckets/native-rt/objects/dir/sub/big.bin",
        chunked(&big),
        &[],
    )
    .await;
    assert_eq!(st, 200, "{o}");
    assert_eq!(
        (o["size"].as_u64(), o["etag"].as_str()),
        (Some(big.len() as u64), Some(md5_hex(&big).as_str()))
    );
    assert_eq!(
        stats(&s, &t, "native-rt").await,
        (3, (MIB + 20 * MIB) as i64)
    );

    // Whole reads.
    let (st, h, body) = get_object(&s, &t, "/buckets/native-rt/objects/empty", &[]).await;
    assert_eq!((st, body.len()), (200, 0));
    assert_eq!(header(&h, "content-length"), "0");
    let (st, h, body) = get_object(&s, &t, "/buckets/native-rt/objects/dir/one.txt", &[]).await;
    assert_eq!(st, 200);
    assert!(body == one, "1 MiB object read back differs");
    assert_eq!(header(&h, "content-type"), "text/plain");
    assert_eq!(header(&h, "x-nuage-meta-color"), "blue");
    assert_eq!(header(&h, "cache-control"), "max-age=60");
    assert_eq!(header(&h, "etag"), format!("\"{}\"", md5_hex(&one)));
    let (st, h, body) = get_object(&s, &t, "/buckets/native-rt/objects/dir/sub/big.bin", &[]).await;
    assert_eq!(st, 200);
    assert_eq!(header(&h, "content-length"), big.len().to_string());
    assert!(body == big, "20 MiB object read back differs");

    // Ranges.
    let big_path = "/buckets/native-rt/objects/dir/sub/big.bin";
    let (st, h, body) = get_object(&s, &t, big_path, &[("range", "bytes=5000000-5999999")]).await;
    assert_eq!(st, 206);
    assert_eq!(
        header(&h, "content-range"),
        format!("bytes 5000000-5999999/{}", big.len())
    );
    assert!(body == big[5_000_000..6_000_000], "ranged read differs");
    let (st, _, body) = get_object(&s, &t, big_path, &[("range", "bytes=-10")]).await;
    assert_eq!((st, body.as_slice()), (206, &big[big.len() - 10..]));
    let r = s
        .http()
        .get(url(&s, big_path))
        .header("x-auth-token", &t)
        .header("range", "bytes=30000000-")
        .send()
        .await
        .expect("GET");
    assert_eq!(
        header(r.headers(), "content-range"),
        format!("bytes */{}", big.len())
    );
    let st = r.status().as_u16();
    assert_error(st, &r.json().await.expect("json"), 416, "invalid_range");

    // HEAD.
    let r = s
        .http()
        .head(url(&s, "/buckets/native-rt/objects/dir/one.txt"))
        .header("x-auth-token", &t)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "content-length"), MIB.to_string());
    assert_eq!(header(r.headers(), "x-nuage-meta-color"), "blue");
    assert_eq!(header(r.headers(), "accept-ranges"), "bytes");

    // Listing: rolled up at `/`, then page by page.
    let (st, v) = call(
        &s,
        &t,
        "GET",
        "/nuage/v1/buckets/native-rt/objects?delimiter=/",
        None,
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["prefixes"], json!(["dir/"]));
    assert_eq!(v["items"][0]["key"], "empty");
    assert!(v.get("next_token").is_none(), "{v}");
    let (_, v) = call(
        &s,
        &t,
        "GET",
        "/nuage/v1/buckets/native-rt/objects?prefix=dir/&delimiter=/",
        None,
    )
    .await;
    assert_eq!(
        (v["items"][0]["key"].as_str(), v["prefixes"][0].as_str()),
        (Some("dir/one.txt"), Some("dir/sub/")),
        "{v}"
    );
    let (_, p1) = call(
        &s,
        &t,
        "GET",
        "/nuage/v1/buckets/native-rt/objects?limit=2",
        None,
    )
    .await;
    let keys = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|o| o["key"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(keys(&p1), ["dir/one.txt", "dir/sub/big.bin"]);
    let next = p1["next_token"].as_str().expect("a next token");
    let (_, p2) = call(
        &s,
        &t,
        "GET",
        &format!("/nuage/v1/buckets/native-rt/objects?limit=2&after={next}"),
        None,
    )
    .await;
    assert_eq!(keys(&p2), ["empty"]);
    assert!(p2.get("next_token").is_none(), "{p2}");

    // Server-side copy, keeping then replacing the metadata.
    let (st, c) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/buckets/native-rt/objects/dir/one.txt:copy",
        Some(json!({"bucket": "native-pub", "key": "copied.txt"})),
    )
    .await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(
        (c["etag"].as_str(), c["metadata"]["color"].as_str()),
        (Some(md5_hex(&one).as_str()), Some("blue"))
    );
    let (st, c) = call(&s, &t, "POST", "/nuage/v1/buckets/native-pub/objects/copied.txt:copy", Some(json!({"key": "renamed.bin", "content_type": "application/x-demo", "metadata": {"k": "v"}}))).await;
    assert_eq!(st, 201, "{c}");
    assert_eq!(
        (c["content_type"].as_str(), &c["metadata"]),
        (Some("application/x-demo"), &json!({"k": "v"}))
    );
    let (st, _, body) = get_object(&s, &t, "/buckets/native-pub/objects/renamed.bin", &[]).await;
    assert!(st == 200 && body == one, "copy reads back differently");

    // The S3 dialect reads what the native API wrote.
    let env = s.env();
    let dl = s.dir.path().join("via-s3.bin");
    let out = s
        .client("aws")
        .args(["s3", "cp", "s3://native-rt/dir/sub/big.bin"])
        .arg(&dl)
        .args(["--endpoint-url", &env["AWS_ENDPOINT_URL"], "--no-progress"])
        .output()
        .expect("aws");
    assert!(
        out.status.success(),
        "aws s3 cp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(&dl).expect("download") == big,
        "S3 read differs"
    );
    let out = s
        .client("aws")
        .args([
            "s3api",
            "head-object",
            "--bucket",
            "native-rt",
            "--key",
            "dir/one.txt",
        ])
        .args(["--endpoint-url", &env["AWS_ENDPOINT_URL"]])
        .output()
        .expect("aws");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head: Value = serde_json::from_slice(&out.stdout).expect("head-object JSON");
    assert_eq!(
        (
            head["ContentType"].as_str(),
            head["Metadata"]["color"].as_str()
        ),
        (Some("text/plain"), Some("blue")),
        "{head}"
    );

    // Deletes.
    let (st, v) = call(&s, &t, "DELETE", "/nuage/v1/buckets/native-rt", None).await;
    assert_error(st, &v, 409, "conflict");
    for key in ["empty", "dir/one.txt", "dir/sub/big.bin"] {
        let (st, v) = call(
            &s,
            &t,
            "DELETE",
            &format!("/nuage/v1/buckets/native-rt/objects/{key}"),
            None,
        )
        .await;
        assert_eq!(st, 204, "{key}: {v}");
    }
    let (st, v) = call(
        &s,
        &t,
        "DELETE",
        "/nuage/v1/buckets/native-rt/objects/empty",
        None,
    )
    .await;
    assert_error(st, &v, 404, "not_found");
    let (st, v) = call(
        &s,
        &t,
        "GET",
        "/nuage/v1/buckets/native-rt/objects/empty",
        None,
    )
    .await;
    assert_error(st, &v, 404, "not_found");
    assert_eq!(stats(&s, &t, "native-rt").await, (0, 0));
    let (st, _) = call(&s, &t, "DELETE", "/nuage/v1/buckets/native-rt", None).await;
    assert_eq!(st, 204);
    let (st, v) = call(&s, &t, "GET", "/nuage/v1/buckets/native-rt", None).await;
    assert_error(st, &v, 404, "not_found");
}

/// Creates a user with `role` on a new project; returns its token.
async fn member_of_new_project(s: &Server, admin: &str, name: &str, role: &str) -> String {
    let (st, p) = call(
        s,
        admin,
        "POST",
        "/nuage/v1/projects",
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let user = format!("{name}-user");
    let (st, u) = call(
        s,
        admin,
        "POST",
        "/nuage/v1/users",
        Some(json!({"name": user, "password": "password-123", "default_project": name})),
    )
    .await;
    assert_eq!(st, 201, "{u}");
    let (st, v) = call(
        s,
        admin,
        "PUT",
        &format!("/nuage/v1/projects/{name}/users/{user}/roles/{role}"),
        None,
    )
    .await;
    assert_eq!(st, 204, "{v}");
    s.token_for(&user, "password-123", None).await
}

/// Segment files on disk, committed or not: a refused upload adds none.
fn segment_files(s: &Server) -> usize {
    let root = s.data_dir().join("objects");
    let tmp = std::fs::read_dir(root.join("tmp")).map_or(0, |d| d.count());
    let data = std::fs::read_dir(root.join("data"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|shard| std::fs::read_dir(shard.path()).map_or(0, |d| d.count()))
        .sum::<usize>();
    tmp + data
}

/// Sends a raw body with a content type: malformed JSON must be refused.
async fn send_raw(s: &Server, token: &str, method: &str, path: &str, body: &str) -> (u16, Value) {
    let r = s
        .http()
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).expect("method"),
            url(s, path),
        )
        .header("x-auth-token", token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let s = server();
    let t = s.admin_token().await;
    let (st, b) = call(&s, &t, "PUT", "/nuage/v1/buckets/guarded", None).await;
    assert_eq!(st, 201, "{b}");
    let keep = pattern(1000, 3);
    let (st, o) = put_object(
        &s,
        &t,
        "/buckets/guarded/objects/keep",
        keep.clone().into(),
        &[],
    )
    .await;
    assert_eq!(st, 200, "{o}");
    let files = segment_files(&s);
    let before = stats(&s, &t, "guarded").await;

    // A key over 1024 bytes.
    let long = "k".repeat(1025);
    let (st, v) = put_object(
        &s,
        &t,
        &format!("/buckets/guarded/objects/{long}"),
        vec![1u8; 10].into(),
        &[],
    )
    .await;
    assert_error(st, &v, 400, "invalid_request");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1024"),
        "{v}"
    );
    let (st, v) = call(
        &s,
        &t,
        "GET",
        &format!("/nuage/v1/buckets/guarded/objects/{long}"),
        None,
    )
    .await;
    assert_error(st, &v, 400, "invalid_request");

    // A wrong Content-MD5 (of other bytes), and one that is not an MD5;
    // the first also overwrites an existing key, which must survive.
    let wrong = base64::engine::general_purpose::STANDARD.encode(Md5::digest(b"other bytes"));
    for (key, md5) in [
        ("fresh", wrong.as_str()),
        ("keep", wrong.as_str()),
        ("fresh", "bm90LW1kNQ=="),
    ] {
        let (st, v) = put_object(
            &s,
            &t,
            &format!("/buckets/guarded/objects/{key}"),
            pattern(3 * MIB, 4).into(),
            &[("content-md5", md5)],
        )
        .await;
        assert_error(st, &v, 400, "invalid_request");
    }
    let (st, v) = call(
        &s,
        &t,
        "GET",
        "/nuage/v1/buckets/guarded/objects/fresh",
        None,
    )
    .await;
    assert_error(st, &v, 404, "not_found");
    let (st, _, body) = get_object(&s, &t, "/buckets/guarded/objects/keep", &[]).await;
    assert!(
        st == 200 && body == keep,
        "a refused overwrite changed the object"
    );

    // Unknown buckets.
    let (st, v) = put_object(
        &s,
        &t,
        "/buckets/no-such-bucket/objects/k",
        vec![1u8; 10].into(),
        &[],
    )
    .await;
    assert_error(st, &v, 404, "not_found");
    let (st, v) = call(
        &s,
        &t,
        "GET",
        "/nuage/v1/buckets/no-such-bucket/objects",
        None,
    )
    .await;
    assert_error(st, &v, 404, "not_found");
    let (st, v) = call(
        &s,
        &t,
        "POST",
        "/nuage/v1/buckets/guarded/objects/keep:copy",
        Some(json!({"bucket": "no-such-bucket", "key": "k"})),
    )
    .await;
    assert_error(st, &v, 404, "not_found");

    // Another project's bucket: neither readable nor writable, and not listed.
    let other = member_of_new_project(&s, &t, "other", "member").await;
    let (st, v) = call(&s, &other, "GET", "/nuage/v1/buckets", None).await;
    assert_eq!(
        (st, v["items"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{v}"
    );
    let (st, v) = call(&s, &other, "GET", "/nuage/v1/buckets/guarded", None).await;
    assert_error(st, &v, 403, "forbidden");
    let (st, v) = call(&s, &other, "GET", "/nuage/v1/buckets/guarded/objects", None).await;
    assert_error(st, &v, 403, "forbidden");
    let (st, v) = call(
        &s,
        &other,
        "GET",
        "/nuage/v1/buckets/guarded/objects/keep",
        None,
    )
    .await;
    assert_error(st, &v, 403, "forbidden");
    let (st, v) = put_object(
        &s,
        &other,
        "/buckets/guarded/objects/keep",
        vec![9u8; 10].into(),
        &[],
    )
    .await;
    assert_error(st, &v, 403, "forbidden");
    let (st, v) = call(
        &s,
        &other,
        "DELETE",
        "/nuage/v1/buckets/guarded/objects/keep",
        None,
    )
    .await;
    assert_error(st, &v, 403, "forbidden");
    let (st, v) = call(
        &s,
        &other,
        "PATCH",
        "/nuage/v1/buckets/guarded",
        Some(json!({"acl": "public-read"})),
    )
    .await;
    assert_error(st, &v, 403, "forbidden");
    let (st, v) = call(&s, &other, "DELETE", "/nuage/v1/buckets/guarded", None).await;
    assert_error(st, &v, 403, "forbidden");
    let (st, v) = call(&s, &other, "PUT", "/nuage/v1/buckets/guarded", None).await;
    assert_error(st, &v, 409, "already_exists");
    let (st, v) = call(&s, &other, "PUT", "/nuage/v1/buckets/other-b", None).await;
    assert_eq!(st, 201, "{v}");
    let (st, v) = call(
        &s,
        &other,
        "POST",
        "/nuage/v1/buckets/guarded/objects/keep:copy",
        Some(json!({"bucket": "other-b", "key": "stolen"})),
    )
    .await;
    assert_error(st, &v, 403, "forbidden");
    assert_eq!(stats(&s, &other, "other-b").await, (0, 0));

    // Malformed and mistyped JSON.
    let (st, v) = send_raw(&s, &t, "PUT", "/buckets/half-made", "{\"acl\":").await;
    assert_error(st, &v, 400, "invalid_request");
    let (st, v) = send_raw(
        &s,
        &t,
        "PUT",
        "/buckets/half-made",
        "{\"acl\":\"everyone\"}",
    )
    .await;
    assert_error(st, &v, 400, "invalid_request");
    let (st, v) = call(&s, &t, "GET", "/nuage/v1/buckets/half-made", None).await;
    assert_error(st, &v, 404, "not_found");
    let (st, v) = send_raw(&s, &t, "PATCH", "/buckets/guarded", "{\"acl\": 7}").await;
    assert_error(st, &v, 400, "invalid_request");
    let (st, v) = send_raw(
        &s,
        &t,
        "PATCH",
        "/buckets/guarded",
        "{\"visibility\": \"public\"}",
    )
    .await;
    assert_error(st, &v, 400, "invalid_request");
    let (st, v) = send_raw(
        &s,
        &t,
        "POST",
        "/buckets/guarded/objects/keep:copy",
        "{\"key\": ",
    )
    .await;
    assert_error(st, &v, 400, "invalid_request");
    let (st, v) = send_raw(
        &s,
        &t,
        "POST",
        "/buckets/guarded/objects/keep",
        "{\"key\": \"k2\"}",
    )
    .await;
    assert_error(st, &v, 400, "invalid_request");
    let (st, v) = call(&s, &t, "GET", "/nuage/v1/buckets/guarded", None).await;
    assert_eq!((st, v["acl"].as_str()), (200, Some("private")), "{v}");

    // Bad listings and ranges.
    for q in ["limit=0", "limit=1001", "limit=many", "color=red"] {
        let (st, v) = call(
            &s,
            &t,
            "GET",
            &format!("/nuage/v1/buckets/guarded/objects?{q}"),
            None,
        )
        .await;
        assert_error(st, &v, 400, "invalid_request");
    }
    let (st, _, _) = get_object(
        &s,
        &t,
        "/buckets/guarded/objects/keep",
        &[("range", "bytes=1000-")],
    )
    .await;
    assert_eq!(st, 416);

    assert_eq!(stats(&s, &t, "guarded").await, before);
    assert_eq!(
        segment_files(&s),
        files,
        "a refused upload left data behind"
    );
    let (_, v) = call(&s, &t, "GET", "/nuage/v1/buckets/guarded/objects", None).await;
    assert_eq!(v["items"].as_array().map(Vec::len), Some(1), "{v}");
}

/// `nuage ARGS` with admin.env: exit code, stdout bytes, stderr.
fn nuage(s: &Server, args: &[&str]) -> (i32, Vec<u8>, String) {
    run_nuage(s.client(nuage_bin()).args(args))
}

fn run_nuage(cmd: &mut Command) -> (i32, Vec<u8>, String) {
    let o = cmd.output().expect("run nuage");
    (
        o.status.code().unwrap_or(-1),
        o.stdout,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn ok(r: (i32, Vec<u8>, String)) -> String {
    assert_eq!(
        r.0,
        0,
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&r.1),
        r.2
    );
    String::from_utf8_lossy(&r.1).into_owned()
}

fn json_of(r: (i32, Vec<u8>, String)) -> Value {
    let out = ok(r);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}):\n{out}"))
}

#[test]
fn cli_verbs_end_to_end() {
    let s = server();
    let work = tempfile::tempdir().expect("temp dir");
    let big = pattern(20 * MIB, 5);
    let src = work.path().join("big.bin");
    std::fs::write(&src, &big).expect("write the source file");
    let src_s = src.to_str().expect("utf-8 path");

    ok(nuage(&s, &["object", "mb", "nuage://cli-bucket"]));
    let v = json_of(nuage(
        &s,
        &["-o", "json", "object", "mb", "cli-public", "--public"],
    ));
    assert_eq!(v["acl"], "public-read");
    let out = ok(nuage(&s, &["object", "ls"]));
    assert!(
        out.contains("cli-bucket") && out.contains("public-read"),
        "{out}"
    );

    // Upload: put names the key, cp takes the file's name under a prefix.
    let v = json_of(nuage(
        &s,
        &[
            "-o",
            "json",
            "object",
            "put",
            src_s,
            "cli-bucket/data/big.bin",
            "--metadata",
            "Origin=test",
        ],
    ));
    assert_eq!(
        (v["size"].as_u64(), v["etag"].as_str()),
        (Some(big.len() as u64), Some(md5_hex(&big).as_str())),
        "{v}"
    );
    ok(nuage(
        &s,
        &["object", "cp", src_s, "nuage://cli-bucket/more/"],
    ));
    let mut put_stdin = s.client(nuage_bin());
    put_stdin
        .args(["object", "put", "-", "cli-bucket/notes.txt"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = put_stdin.spawn().expect("nuage object put -");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"hello from a pipe\n")
            .expect("write stdin");
    }
    let o = child.wait_with_output().expect("wait");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // Listing.
    let out = ok(nuage(&s, &["object", "ls", "nuage://cli-bucket"]));
    assert!(
        out.contains("data/") && out.contains("PRE") && out.contains("notes.txt"),
        "{out}"
    );
    assert!(!out.contains("big.bin"), "not recursive:\n{out}");
    let v = json_of(nuage(
        &s,
        &["-o", "json", "object", "ls", "cli-bucket", "--recursive"],
    ));
    let keys: Vec<&str> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|o| o["key"].as_str())
        .collect();
    assert_eq!(keys, ["data/big.bin", "more/big.bin", "notes.txt"]);
    let v = json_of(nuage(
        &s,
        &["-o", "json", "object", "ls", "cli-bucket/data/"],
    ));
    assert_eq!(v["items"][0]["key"], "data/big.bin", "{v}");

    // Download to a file, to a directory, and to standard output.
    let dl = work.path().join("back.bin");
    ok(nuage(
        &s,
        &[
            "object",
            "get",
            "cli-bucket/data/big.bin",
            dl.to_str().expect("utf-8"),
        ],
    ));
    assert!(
        std::fs::read(&dl).expect("downloaded") == big,
        "download differs"
    );
    let into = work.path().join("into");
    std::fs::create_dir(&into).expect("dir");
    ok(nuage(
        &s,
        &[
            "object",
            "cp",
            "nuage://cli-bucket/more/big.bin",
            into.to_str().expect("utf-8"),
        ],
    ));
    assert!(
        std::fs::read(into.join("big.bin")).expect("downloaded") == big,
        "cp download differs"
    );
    let (code, stdout, err) = nuage(&s, &["object", "get", "cli-bucket/notes.txt", "-"]);
    assert_eq!(
        (code, stdout.as_slice()),
        (0, &b"hello from a pipe\n"[..]),
        "{err}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "temporary download files left");

    // Server-side copy, stat, and errors.
    ok(nuage(
        &s,
        &[
            "object",
            "cp",
            "nuage://cli-bucket/data/big.bin",
            "nuage://cli-public/copy.bin",
        ],
    ));
    let v = json_of(nuage(
        &s,
        &["-o", "json", "object", "stat", "cli-public/copy.bin"],
    ));
    assert_eq!(
        (v["size"].as_u64(), v["metadata"]["origin"].as_str()),
        (Some(big.len() as u64), Some("test")),
        "{v}"
    );
    let (code, _, err) = nuage(&s, &["object", "stat", "cli-bucket/missing"]);
    assert!(
        code == 1 && err.contains("does not exist") && err.contains("HTTP 404"),
        "{code}: {err}"
    );
    let (code, _, err) = nuage(
        &s,
        &[
            "object",
            "get",
            "cli-bucket/missing",
            work.path().join("m").to_str().expect("utf-8"),
        ],
    );
    assert!(code == 1 && err.contains("HTTP 404"), "{code}: {err}");
    assert!(!work.path().join("m").exists());
    let (code, _, err) = nuage(&s, &["object", "cp", "a", "b"]);
    assert!(code == 1 && err.contains("nuage://"), "{code}: {err}");
    let (code, _, err) = nuage(&s, &["object", "rb", "cli-bucket"]);
    assert!(code == 1 && err.contains("not empty"), "{code}: {err}");

    // Removal.
    ok(nuage(
        &s,
        &[
            "object",
            "rm",
            "cli-bucket/data/big.bin",
            "nuage://cli-bucket/more/big.bin",
            "cli-bucket/notes.txt",
        ],
    ));
    let v = json_of(nuage(
        &s,
        &["-o", "json", "object", "ls", "cli-bucket", "-r"],
    ));
    assert_eq!(v["items"], json!([]));
    ok(nuage(&s, &["object", "rb", "cli-bucket"]));
    let out = ok(nuage(&s, &["object", "ls"]));
    assert!(!out.contains("cli-bucket"), "{out}");
}
