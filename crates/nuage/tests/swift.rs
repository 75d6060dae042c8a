//! The Swift front door against a real `nuage serve`, through the real
//! `swift` client (python3-swiftclient), curl and raw requests: every
//! request is recognised before anything acts (what nuage does not
//! implement is refused with 501 and changes nothing), `/info` and the
//! headers every Swift answer carries, segmented uploads refused, an
//! admin acting on another account, and the read ACLs' meaning.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Options, Server};
use serde_json::{json, Value};

fn start() -> Server {
    Server::start_with(Options {
        env: vec![("NUAGE_COMPUTE_DRIVER".into(), "none".into())],
        ..Options::default()
    })
}

async fn admin_login(srv: &Server) -> (String, String) {
    let pw = srv.env()["OS_PASSWORD"].clone();
    common::swift_login(srv, "admin", &pw, "admin").await
}

/// Sends one request; returns status, headers and body text.
async fn send(
    srv: &Server,
    token: Option<&str>,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, reqwest::header::HeaderMap, String) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut rb = srv.http().request(m, url).body(body.to_vec());
    if let Some(t) = token {
        rb = rb.header("x-auth-token", t);
    }
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.expect("request");
    let status = r.status().as_u16();
    let h = r.headers().clone();
    (status, h, r.text().await.unwrap_or_default())
}

/// A request of the table: method, path under the account, headers, body.
type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, &'a [u8]);

/// Everything a client can see of an account: its headers, its listing,
/// and each container's headers, listing, and objects' headers and bytes.
/// Volatile headers (ids, dates) are left out.
async fn snapshot(srv: &Server, token: &str, account: &str) -> BTreeMap<String, String> {
    let volatile = [
        "date",
        "x-trans-id",
        "x-openstack-request-id",
        "x-request-id",
        "x-amz-request-id",
    ];
    let mut out = BTreeMap::new();
    let mut record = |what: String, status: u16, h: &reqwest::header::HeaderMap, body: &str| {
        let mut hs: Vec<String> = h
            .iter()
            .filter(|(k, _)| !volatile.contains(&k.as_str()))
            .map(|(k, v)| format!("{k}: {}", v.to_str().unwrap_or("?")))
            .collect();
        hs.sort();
        out.insert(what, format!("{status}\n{}\n{body}", hs.join("\n")));
    };
    let (st, h, body) = send(
        srv,
        Some(token),
        "GET",
        &format!("{account}?format=json"),
        &[],
        b"",
    )
    .await;
    record("account".into(), st, &h, &body);
    let containers: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
    for c in containers {
        let name = c["name"].as_str().expect("name").to_string();
        let url = format!("{account}/{name}");
        let (st, h, body) = send(
            srv,
            Some(token),
            "GET",
            &format!("{url}?format=json"),
            &[],
            b"",
        )
        .await;
        record(format!("container {name}"), st, &h, &body);
        let objects: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        for o in objects {
            let key = o["name"].as_str().expect("key").to_string();
            let (st, h, body) =
                send(srv, Some(token), "GET", &format!("{url}/{key}"), &[], b"").await;
            record(format!("object {name}/{key}"), st, &h, &body);
        }
    }
    out
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The headers every Swift answer carries, errors included.
fn assert_swift_headers(what: &str, h: &reqwest::header::HeaderMap) {
    for name in [
        "x-trans-id",
        "x-openstack-request-id",
        "content-type",
        "date",
    ] {
        assert!(!header(h, name).is_empty(), "{what}: no {name} in {h:?}");
    }
    assert_eq!(
        header(h, "x-trans-id"),
        header(h, "x-openstack-request-id"),
        "{what}"
    );
}

/// Every query parameter and operation header of the Object Storage API
/// that nuage does not implement is refused with 501, in Swift's form, and
/// changes no container, object or metadata. Before the router, each of
/// these reached the plain handler: a DLO manifest was stored as a 0-byte
/// object, an expiry or a versions location was ignored, a bulk delete
/// changed the account's metadata.
#[tokio::test(flavor = "multi_thread")]
async fn unimplemented_requests_are_refused_and_change_nothing() {
    let srv = start();
    let (token, account) = admin_login(&srv).await;
    let t = Some(token.as_str());
    for (m, path, h, body) in [
        (
            "PUT",
            "/tbl",
            vec![("x-container-meta-color", "blue")],
            &b""[..],
        ),
        (
            "PUT",
            "/tbl/obj",
            vec![
                ("x-object-meta-shape", "round"),
                ("content-type", "text/plain"),
            ],
            b"hello",
        ),
        ("PUT", "/tbl/other", vec![], b"other"),
        ("POST", "", vec![("x-account-meta-team", "blue")], b""),
    ] {
        let (st, _, text) = send(&srv, t, m, &format!("{account}{path}"), &h, body).await;
        assert!((200..300).contains(&st), "{m} {path}: {st} {text}");
    }
    let before = snapshot(&srv, &token, &account).await;
    assert_eq!(before.len(), 4, "{before:?}");

    let manifest = br#"[{"path": "/tbl/obj", "etag": null, "size_bytes": null}]"#;
    let cases: Vec<Case> = vec![
        // account
        (
            "POST",
            "?bulk-delete",
            vec![("content-type", "text/plain")],
            b"/tbl/obj\n",
        ),
        ("PUT", "/tbl?extract-archive=tar", vec![], b"not a tar"),
        ("PUT", "?extract-archive=tar.gz", vec![], b"not a tar"),
        ("GET", "?reverse=true", vec![], b""),
        ("GET", "?delimiter=-", vec![], b""),
        ("GET", "?format=xml", vec![], b""),
        (
            "POST",
            "",
            vec![("x-account-meta-temp-url-key", "secret")],
            b"",
        ),
        (
            "POST",
            "",
            vec![("x-account-meta-temp-url-key-2", "secret")],
            b"",
        ),
        ("POST", "", vec![("x-account-meta-quota-bytes", "10")], b""),
        (
            "POST",
            "",
            vec![("x-account-access-control", r#"{"read-only":["x"]}"#)],
            b"",
        ),
        // containers
        ("PUT", "/tbl", vec![("x-versions-location", "old")], b""),
        ("POST", "/tbl", vec![("x-versions-location", "old")], b""),
        (
            "POST",
            "/tbl",
            vec![("x-remove-versions-location", "x")],
            b"",
        ),
        ("POST", "/tbl", vec![("x-history-location", "old")], b""),
        (
            "POST",
            "/tbl",
            vec![("x-remove-history-location", "x")],
            b"",
        ),
        ("POST", "/tbl", vec![("x-versions-enabled", "true")], b""),
        (
            "POST",
            "/tbl",
            vec![("x-container-sync-to", "//realm/cluster/AUTH_x/c")],
            b"",
        ),
        ("POST", "/tbl", vec![("x-container-sync-key", "k")], b""),
        ("POST", "/tbl", vec![("x-container-write", "*:*")], b""),
        (
            "POST",
            "/tbl",
            vec![("x-container-read", ".r:example.com")],
            b"",
        ),
        (
            "POST",
            "/tbl",
            vec![("x-container-read", "AUTH_other:*")],
            b"",
        ),
        (
            "POST",
            "/tbl",
            vec![("x-container-read", ".r:*,.r:-bad.example")],
            b"",
        ),
        ("POST", "/tbl", vec![("x-storage-policy", "gold")], b""),
        (
            "POST",
            "/tbl",
            vec![("x-container-meta-temp-url-key", "k")],
            b"",
        ),
        (
            "POST",
            "/tbl",
            vec![("x-container-meta-quota-bytes", "1")],
            b"",
        ),
        (
            "POST",
            "/tbl",
            vec![("x-container-meta-quota-count", "1")],
            b"",
        ),
        (
            "POST",
            "/tbl",
            vec![("x-container-meta-web-index", "index.html")],
            b"",
        ),
        (
            "POST",
            "/tbl",
            vec![("x-container-meta-web-listings", "true")],
            b"",
        ),
        (
            "POST",
            "/tbl",
            vec![("x-container-meta-access-control-allow-origin", "*")],
            b"",
        ),
        ("PUT", "/tbl2", vec![("x-versions-location", "old")], b""),
        ("PUT", "/tbl3", vec![("x-storage-policy", "gold")], b""),
        ("GET", "/tbl?reverse=1", vec![], b""),
        ("GET", "/tbl?path=a", vec![], b""),
        ("GET", "/tbl?format=xml", vec![], b""),
        ("GET", "/tbl?versions", vec![], b""),
        ("DELETE", "/tbl?bulk-delete", vec![], b""),
        // objects
        (
            "PUT",
            "/tbl/obj",
            vec![("x-object-manifest", "tbl/seg")],
            b"",
        ),
        ("PUT", "/tbl/man", vec![("x-object-manifest", "tbl/o")], b""),
        ("PUT", "/tbl/obj?multipart-manifest=put", vec![], manifest),
        ("PUT", "/tbl/slo?multipart-manifest=put", vec![], manifest),
        (
            "PUT",
            "/tbl/obj",
            vec![("x-static-large-object", "true")],
            manifest,
        ),
        (
            "PUT",
            "/tbl/obj",
            vec![("x-delete-at", "4102444800")],
            b"new",
        ),
        ("PUT", "/tbl/obj", vec![("x-delete-after", "60")], b"new"),
        ("PUT", "/tbl/exp", vec![("x-delete-after", "60")], b"new"),
        ("POST", "/tbl/obj", vec![("x-delete-at", "4102444800")], b""),
        ("POST", "/tbl/obj", vec![("x-delete-after", "60")], b""),
        (
            "PUT",
            "/tbl/link",
            vec![("x-symlink-target", "tbl/obj")],
            b"",
        ),
        (
            "PUT",
            "/tbl/link",
            vec![
                ("x-symlink-target", "tbl/obj"),
                ("x-symlink-target-account", "AUTH_x"),
            ],
            b"",
        ),
        (
            "PUT",
            "/tbl/copy",
            vec![
                ("x-copy-from", "tbl/obj"),
                ("x-copy-from-account", "AUTH_x"),
            ],
            b"",
        ),
        (
            "PUT",
            "/tbl/copy",
            vec![("x-copy-from", "tbl/obj"), ("x-fresh-metadata", "true")],
            b"",
        ),
        (
            "PUT",
            "/tbl/obj",
            vec![("x-detect-content-type", "true")],
            b"new",
        ),
        (
            "PUT",
            "/tbl/copy",
            vec![("x-copy-from", "tbl/obj"), ("if-none-match", "*")],
            b"",
        ),
        ("PUT", "/tbl/obj?heartbeat=on", vec![], b"new"),
        ("PUT", "/tbl/obj?version-id=1", vec![], b"new"),
        ("COPY", "/tbl/obj", vec![("destination", "tbl/copy")], b""),
        ("DELETE", "/tbl/obj?multipart-manifest=delete", vec![], b""),
        ("DELETE", "/tbl/obj?version-id=1", vec![], b""),
        (
            "GET",
            "/tbl/obj?temp_url_sig=00&temp_url_expires=4102444800",
            vec![],
            b"",
        ),
        ("GET", "/tbl/obj?filename=x.txt", vec![], b""),
        ("GET", "/tbl/obj?version-id=1", vec![], b""),
        ("GET", "/tbl/obj?multipart-manifest=put", vec![], b""),
        ("HEAD", "/tbl/obj?symlink=put", vec![], b""),
        ("POST", "/tbl/obj?not-a-swift-parameter=1", vec![], b""),
    ];
    for (m, path, h, body) in &cases {
        let url = format!("{account}{path}");
        let (st, hs, text) = send(&srv, t, m, &url, h, body).await;
        assert_eq!(st, 501, "{m} {path} {h:?}: {st} {text}");
        assert_swift_headers(&format!("{m} {path}"), &hs);
        if *m != "HEAD" {
            assert!(text.contains("not implemented"), "{m} {path} {h:?}: {text}");
        }
    }
    let after = snapshot(&srv, &token, &account).await;
    assert_eq!(before, after, "an unimplemented request changed something");

    // The same requests without a token are refused the same way: the
    // operation is recognised before the caller.
    let (st, _, _) = send(
        &srv,
        None,
        "PUT",
        &format!("{account}/tbl/obj"),
        &[("x-delete-after", "1")],
        b"x",
    )
    .await;
    assert_eq!(st, 501);
}

/// `GET /info` is Swift's capabilities document, with nuage's own limits
/// and no section for what it does not implement; every answer (success,
/// client error, 501, /info) carries X-Trans-Id, X-Openstack-Request-Id,
/// Content-Type and Date.
#[tokio::test(flavor = "multi_thread")]
async fn info_and_the_headers_of_every_answer() {
    let srv = start();
    let (token, account) = admin_login(&srv).await;
    let t = Some(token.as_str());
    let (st, h, body) = send(&srv, None, "GET", &format!("{}/info", srv.url()), &[], b"").await;
    assert_eq!(st, 200, "{body}");
    assert_swift_headers("/info", &h);
    assert!(
        header(&h, "content-type").starts_with("application/json"),
        "{h:?}"
    );
    let info: Value = serde_json::from_str(&body).expect("info is JSON");
    assert_eq!(
        info["swift"]["max_file_size"],
        json!(5u64 * 1024 * 1024 * 1024),
        "{info}"
    );
    assert_eq!(
        info["swift"]["container_listing_limit"],
        json!(10_000),
        "{info}"
    );
    assert_eq!(
        info["swift"]["max_object_name_length"],
        json!(1024),
        "{info}"
    );
    for absent in [
        "slo",
        "bulk_delete",
        "bulk_upload",
        "tempurl",
        "versioned_writes",
        "symlink",
    ] {
        assert!(info.get(absent).is_none(), "{absent} in {info}");
    }
    // The swift client reads it too.
    let mut c = srv.client("swift");
    c.arg("capabilities");
    let (ok, out, err) = common::run(&mut c);
    assert!(ok, "swift capabilities: {err}");
    assert!(out.contains("max_file_size: 5368709120"), "{out}");

    let (st, h, _) = send(&srv, t, "PUT", &format!("{account}/hdr"), &[], b"").await;
    assert_eq!(st, 201);
    assert_swift_headers("PUT container", &h);
    for (what, tok, m, url, want) in [
        ("HEAD account", t, "HEAD", account.clone(), 204),
        ("GET listing", t, "GET", format!("{account}/hdr"), 204),
        (
            "missing container",
            t,
            "GET",
            format!("{account}/nope"),
            404,
        ),
        ("no token", None, "GET", format!("{account}/hdr"), 401),
        (
            "bad token",
            Some("not-a-token"),
            "HEAD",
            account.clone(),
            401,
        ),
        (
            "not implemented",
            t,
            "GET",
            format!("{account}?reverse=1"),
            501,
        ),
        ("not allowed", t, "PATCH", format!("{account}/hdr"), 405),
    ] {
        let (st, h, body) = send(&srv, tok, m, &url, &[], b"").await;
        assert_eq!(st, want, "{what}: {body}");
        assert_swift_headers(what, &h);
    }
}

/// Runs the `swift` client in `cwd` with the admin's environment.
fn swift(srv: &Server, cwd: &Path, args: &[&str]) -> (bool, String, String) {
    let mut c = srv.client("swift");
    c.current_dir(cwd).args(args);
    common::run(&mut c)
}

/// `swift upload --segment-size` (DLO, and SLO with `--use-slo`) fails
/// with a clear error, a non-zero exit and a sentence naming what is not
/// implemented, and leaves no manifest object: before, the manifest was
/// stored as a plain object and read back as 0 bytes or as the JSON
/// manifest. The segments uploaded before the manifest stay in
/// `<container>_segments`, as docs/adr/0013 says.
#[test]
fn segmented_uploads_fail_clearly_and_leave_no_manifest() {
    let srv = start();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    std::fs::write(w.join("big.bin"), vec![7u8; 3000]).expect("write");
    for (container, extra, what) in [
        (
            "dlo",
            vec![],
            "not implemented by nuage: dynamic large objects",
        ),
        (
            "slo",
            vec!["--use-slo"],
            "not implemented by nuage: static large objects",
        ),
    ] {
        let mut args = vec!["upload", "--segment-size", "1000"];
        args.extend(extra.iter().copied());
        args.extend([container, "big.bin"]);
        let (ok, out, err) = swift(&srv, w, &args);
        assert!(!ok, "swift {args:?} succeeded: {out}");
        let all = format!("{out}{err}");
        assert!(all.contains("501"), "swift {args:?}: {all}");
        assert!(
            all.contains(what),
            "swift {args:?}: the refusal does not say what: {all}"
        );
        let (ok, segments, err) = swift(&srv, w, &["list", &format!("{container}_segments")]);
        assert!(ok, "swift list {container}_segments: {err}");
        assert_eq!(segments.lines().count(), 3, "{container}: {segments}");
        let (ok, list, err) = swift(&srv, w, &["list", container]);
        assert!(ok || err.contains("404"), "swift list {container}: {err}");
        assert!(
            !list.lines().any(|l| l == "big.bin"),
            "{container}: manifest left: {list}"
        );
        let (ok, _, err) = swift(&srv, w, &["stat", container, "big.bin"]);
        assert!(
            !ok && err.contains("404"),
            "{container}/big.bin exists: {err}"
        );
    }
    // A plain upload of the same file works.
    let (ok, out, err) = swift(&srv, w, &["upload", "plain", "big.bin"]);
    assert!(ok, "{out}{err}");
    let (ok, _, err) = swift(&srv, w, &["download", "plain", "big.bin", "-o", "back.bin"]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(w.join("back.bin")).expect("read"),
        vec![7u8; 3000]
    );
}

/// An admin writing to another account's path acts in that account: the
/// container is the other project's (listed there, 404 through the
/// admin's own account), objects go there, a second PUT updates it. A
/// member of the other project cannot do the same in the admin's account,
/// and an account of no project is refused; neither creates anything.
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_acts_in_another_account() {
    let srv = start();
    let (admin, admin_account) = admin_login(&srv).await;
    let (pid, _) = common::project_with_member(&srv, "tenant", "tenant-pw-1").await;
    let (member, member_account) =
        common::swift_login(&srv, "tenant-user", "tenant-pw-1", "tenant").await;
    let other = format!("{}/v1/AUTH_{pid}", srv.url());
    assert_eq!(member_account, other);
    let names = |body: &str| body.lines().map(String::from).collect::<Vec<_>>();

    let (st, _, body) = send(
        &srv,
        Some(&admin),
        "PUT",
        &format!("{other}/theirs"),
        &[("x-container-meta-by", "admin")],
        b"",
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let (st, _, body) = send(&srv, Some(&member), "GET", &other, &[], b"").await;
    assert_eq!(
        (st, names(&body)),
        (200, vec!["theirs".to_string()]),
        "{body}"
    );
    let (_, _, body) = send(&srv, Some(&admin), "GET", &admin_account, &[], b"").await;
    assert!(!names(&body).contains(&"theirs".to_string()), "{body}");
    let (st, _, _) = send(
        &srv,
        Some(&admin),
        "HEAD",
        &format!("{admin_account}/theirs"),
        &[],
        b"",
    )
    .await;
    assert_eq!(st, 404);
    // Objects the admin puts there are the member's to read; a second PUT
    // of the container updates it.
    let (st, _, body) = send(
        &srv,
        Some(&admin),
        "PUT",
        &format!("{other}/theirs/o.txt"),
        &[],
        b"from admin",
    )
    .await;
    assert_eq!(st, 201, "{body}");
    let (st, _, body) = send(
        &srv,
        Some(&member),
        "GET",
        &format!("{other}/theirs/o.txt"),
        &[],
        b"",
    )
    .await;
    assert_eq!((st, body.as_str()), (200, "from admin"));
    let (st, _, _) = send(
        &srv,
        Some(&admin),
        "PUT",
        &format!("{other}/theirs"),
        &[("x-container-meta-by", "again")],
        b"",
    )
    .await;
    assert_eq!(st, 202);
    let (_, h, _) = send(
        &srv,
        Some(&member),
        "HEAD",
        &format!("{other}/theirs"),
        &[],
        b"",
    )
    .await;
    assert_eq!(header(&h, "x-container-meta-by"), "again");
    assert_eq!(header(&h, "x-container-object-count"), "1");

    // The real client, pointed at the other account.
    let work = tempfile::tempdir().expect("tempdir");
    std::fs::write(work.path().join("f.txt"), b"via swift").expect("write");
    let (ok, out, err) = swift(
        &srv,
        work.path(),
        &["--os-storage-url", &other, "upload", "cli-box", "f.txt"],
    );
    assert!(ok, "{out}{err}");
    let (st, _, body) = send(
        &srv,
        Some(&member),
        "GET",
        &format!("{other}/cli-box/f.txt"),
        &[],
        b"",
    )
    .await;
    assert_eq!((st, body.as_str()), (200, "via swift"));

    // A member acting in another account, an account of no project.
    let before = send(&srv, Some(&admin), "GET", &admin_account, &[], b"")
        .await
        .2;
    let (st, h, body) = send(
        &srv,
        Some(&member),
        "PUT",
        &format!("{admin_account}/intruder"),
        &[],
        b"",
    )
    .await;
    assert_eq!(st, 403, "{body}");
    assert_swift_headers("403", &h);
    let ghost = format!("{}/v1/AUTH_no-such-project", srv.url());
    let (st, _, body) = send(
        &srv,
        Some(&admin),
        "PUT",
        &format!("{ghost}/nowhere"),
        &[],
        b"",
    )
    .await;
    assert_eq!(st, 404, "{body}");
    assert_eq!(
        send(&srv, Some(&admin), "GET", &admin_account, &[], b"")
            .await
            .2,
        before
    );
    let (_, _, body) = send(&srv, Some(&member), "GET", &other, &[], b"").await;
    assert_eq!(names(&body), ["cli-box", "theirs"]);
    let (st, _, _) = send(
        &srv,
        Some(&admin),
        "HEAD",
        &format!("{admin_account}/nowhere"),
        &[],
        b"",
    )
    .await;
    assert_eq!(st, 404);
}

/// Swift's read ACLs, through `swift post -r` and anonymous curl: `.r:*`
/// reads objects without listing, `.rlistings` adds the listing, `*:*`
/// opens both to users with a token only; removing the ACL closes all.
#[test]
fn read_acls_read_and_list_apart() {
    let srv = start();
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    std::fs::write(w.join("o.txt"), b"public bytes").expect("write");
    let run = |args: &[&str]| {
        let (ok, out, err) = swift(&srv, w, args);
        assert!(ok, "swift {args:?}: {out}{err}");
        out
    };
    run(&["upload", "pub", "o.txt"]);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (token, account) = rt.block_on(admin_login(&srv));
    let anon = |url: &str| rt.block_on(send(&srv, None, "GET", url, &[], b""));
    let object = format!("{account}/pub/o.txt");
    let container = format!("{account}/pub");
    let read_acl = || {
        let h = rt
            .block_on(send(&srv, Some(&token), "HEAD", &container, &[], b""))
            .1;
        header(&h, "x-container-read").to_string()
    };
    assert_eq!((anon(&object).0, anon(&container).0), (401, 401));

    run(&["post", "pub", "-r", ".r:*"]);
    assert_eq!(read_acl(), ".r:*");
    let (st, _, body) = anon(&object);
    assert_eq!((st, body.as_str()), (200, "public bytes"));
    assert_eq!(anon(&container).0, 401, "listing without .rlistings");
    // Every object is open, so a missing one is simply missing.
    assert_eq!(anon(&format!("{account}/pub/missing")).0, 404);

    run(&["post", "pub", "-r", ".r:*,.rlistings"]);
    assert_eq!(read_acl(), ".r:*,.rlistings");
    let (st, _, body) = anon(&container);
    assert_eq!((st, body.as_str()), (200, "o.txt\n"));
    assert_eq!(anon(&object).0, 200);
    assert_eq!(anon(&format!("{account}/pub/missing")).0, 404);

    run(&["post", "pub", "-r", "*:*"]);
    assert_eq!(read_acl(), "*:*");
    assert_eq!((anon(&object).0, anon(&container).0), (401, 401));

    run(&["post", "pub", "-r", ""]);
    assert_eq!(read_acl(), "");
    assert_eq!((anon(&object).0, anon(&container).0), (401, 401));
    // Writes stay the project's under every read ACL.
    run(&["post", "pub", "-r", ".r:*,.rlistings"]);
    let (st, _, _) = rt.block_on(send(
        &srv,
        None,
        "PUT",
        &format!("{account}/pub/new"),
        &[],
        b"x",
    ));
    assert_eq!(st, 401);
    assert_eq!(anon(&container).2, "o.txt\n");
}
