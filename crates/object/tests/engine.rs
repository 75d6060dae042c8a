//! The object engine through its API, on a real directory and SQLite file.

use std::collections::BTreeMap;

use bytes::Bytes;
use md5::Digest as _;
use nuage_identity::{Bootstrap, Identity, IdentityConfig};
use nuage_model::identity::Principal;
use nuage_model::{ErrorKind, HasKind};
use nuage_object::checksum::{Algorithm, Expected, Hasher};
use nuage_object::*;

/// Which refusal the engine answered: the variant's name, as the engine
/// makes no dialect's codes (habit 15); a refusal by the identity layer's
/// policy reads as `AccessDenied`, which it is.
fn variant(e: &ObjectError) -> String {
    if e.kind() == ErrorKind::Forbidden {
        return "AccessDenied".into();
    }
    format!("{e:?}")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default()
        .to_string()
}

struct World {
    _db: nuage_store::testing::TestDb,
    dir: tempfile::TempDir,
    identity: Identity,
    admin: Principal,
    store: ObjectStore,
}

fn config() -> ObjectConfig {
    ObjectConfig {
        region: "nuage-1".into(),
        upload_expiry: DEFAULT_UPLOAD_EXPIRY,
    }
}

async fn world() -> World {
    let db = nuage_store::testing::fresh("sqlite").await.expect("db");
    let identity = Identity::open(db.db.clone(), IdentityConfig::default())
        .await
        .expect("identity");
    identity
        .bootstrap(Bootstrap {
            admin_password: Some("admin-password-1".into()),
            access_key: None,
        })
        .await
        .expect("bootstrap");
    let (_, admin) = identity
        .login("admin", None, "admin-password-1", None, None)
        .await
        .expect("login");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ObjectStore::open(dir.path(), identity.clone(), config())
        .await
        .expect("open");
    World {
        _db: db,
        dir,
        identity,
        admin,
        store,
    }
}

/// A member of another project.
fn stranger() -> Principal {
    Principal {
        user_id: "u-other".into(),
        user_name: "other".into(),
        domain_id: "default".into(),
        project_id: "p-other".into(),
        project_name: "other".into(),
        project_domain_id: "default".into(),
        roles: vec!["member".into(), "reader".into()],
        method: "token".into(),
        audit_id: String::new(),
        expires_at: i64::MAX,
    }
}

fn body(data: &[u8]) -> futures_util::stream::Iter<std::vec::IntoIter<Result<Bytes, ObjectError>>> {
    // Split in uneven pieces, as a network would.
    let mut pieces = Vec::new();
    let mut at = 0;
    let mut n = 1;
    while at < data.len() {
        let end = (at + n).min(data.len());
        pieces.push(Ok(Bytes::copy_from_slice(&data[at..end])));
        at = end;
        n = n * 3 + 7;
    }
    futures_util::stream::iter(pieces)
}

fn opts(len: usize) -> PutOptions {
    PutOptions {
        content_length: Some(len as u64),
        ..Default::default()
    }
}

async fn bucket(w: &World, name: &str) {
    w.store
        .create_bucket(
            &w.admin,
            NewBucket {
                name: name.into(),
                acl: Acl::Private,
                meta: BTreeMap::new(),
            },
        )
        .await
        .expect("bucket");
}

async fn get(w: &World, b: &str, k: &str) -> Vec<u8> {
    let (_, _, body) = w
        .store
        .get_object(Some(&w.admin), b, k, None)
        .await
        .expect("get");
    body.collect().await.expect("body")
}

async fn assert_clean(w: &World) {
    // Let the collector run.
    for _ in 0..50 {
        let (orphans, missing) = w.store.fsck().await.expect("fsck");
        if orphans.is_empty() && missing.is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (orphans, missing) = w.store.fsck().await.expect("fsck");
    panic!("orphans {orphans:?} missing {missing:?}");
}

fn data(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn put_get_overwrite_delete() {
    let w = world().await;
    bucket(&w, "b1").await;
    for size in [0usize, 1, 4096, 300_000, 3 * 1024 * 1024 + 5] {
        let d = data(size, 1);
        let m = w
            .store
            .put_object(Some(&w.admin), "b1", "k", opts(size), body(&d))
            .await
            .expect("put");
        assert_eq!(m.etag, hex::encode(md5::Md5::digest(&d)));
        assert_eq!(m.size, size as u64);
        assert_eq!(get(&w, "b1", "k").await, d, "size {size}");
    }
    let h = w
        .store
        .head_object(Some(&w.admin), "b1", "k")
        .await
        .expect("head");
    assert_eq!(h.content_type, "binary/octet-stream");
    assert!(w
        .store
        .delete_object(Some(&w.admin), "b1", "k")
        .await
        .expect("delete"));
    assert!(!w
        .store
        .delete_object(Some(&w.admin), "b1", "k")
        .await
        .expect("delete again"));
    let e = w
        .store
        .get_object(Some(&w.admin), "b1", "k", None)
        .await
        .expect_err("gone");
    assert_eq!(variant(&e), "NoSuchKey");
    let b = w.store.head_bucket(Some(&w.admin), "b1").expect("bucket");
    assert_eq!((b.objects, b.bytes), (0, 0));
    assert_clean(&w).await;
    w.store
        .delete_bucket(&w.admin, "b1")
        .await
        .expect("delete bucket");
    assert_eq!(
        w.store
            .head_bucket(Some(&w.admin), "b1")
            .map(|_| ())
            .map_err(|e| variant(&e))
            .expect_err("gone"),
        "NoSuchBucket"
    );
}

#[tokio::test]
async fn ranges() {
    let w = world().await;
    bucket(&w, "r").await;
    let d = data(2 * 1024 * 1024, 9);
    w.store
        .put_object(Some(&w.admin), "r", "k", opts(d.len()), body(&d))
        .await
        .expect("put");
    for (spec, want) in [
        ("bytes=0-9", &d[0..10]),
        ("bytes=100-", &d[100..]),
        ("bytes=-5", &d[d.len() - 5..]),
        ("bytes=2000000-99999999", &d[2_000_000..]),
    ] {
        let r = RangeSpec::parse(spec).expect("spec");
        let (_, range, body) = w
            .store
            .get_object(Some(&w.admin), "r", "k", Some(r))
            .await
            .expect("get");
        assert!(range.is_some());
        assert_eq!(body.collect().await.expect("body"), want, "{spec}");
    }
    let r = RangeSpec::parse("bytes=3000000-").expect("spec");
    let e = w
        .store
        .get_object(Some(&w.admin), "r", "k", Some(r))
        .await
        .expect_err("past the end");
    assert_eq!(variant(&e), "InvalidRange");
}

#[tokio::test]
async fn listing_matches_a_model() {
    let w = world().await;
    bucket(&w, "l").await;
    let mut keys = Vec::new();
    for a in ["a", "b", "photos", "zz"] {
        for i in 0..40 {
            keys.push(format!("{a}/{i:03}"));
            keys.push(format!("{a}/{i:03}/x/y"));
        }
        keys.push(a.to_string());
    }
    keys.push("é/unicode".into());
    keys.push("a+b".into());
    keys.sort();
    for k in &keys {
        w.store
            .put_object(Some(&w.admin), "l", k, opts(1), body(b"x"))
            .await
            .expect("put");
    }
    for (prefix, delim) in [
        ("", None),
        ("", Some("/")),
        ("a/", Some("/")),
        ("photos/0", None),
        ("b", Some("/")),
        ("nothing", None),
    ] {
        // The model: every entry in order.
        let mut model: Vec<String> = Vec::new();
        for k in keys.iter().filter(|k| k.starts_with(prefix)) {
            let e = match delim.and_then(|d| {
                k[prefix.len()..]
                    .find(d)
                    .map(|i| k[..prefix.len() + i + d.len()].to_string())
            }) {
                Some(cp) => cp,
                None => k.clone(),
            };
            if model.last() != Some(&e) {
                model.push(e);
            }
        }
        for max in [1usize, 7, 1000] {
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let page = w
                    .store
                    .list_objects(
                        Some(&w.admin),
                        "l",
                        ListQuery {
                            prefix: prefix.into(),
                            delimiter: delim.map(String::from),
                            after: after.clone(),
                            max,
                        },
                    )
                    .await
                    .expect("list");
                let mut entries: Vec<String> = page
                    .objects
                    .iter()
                    .map(|o| o.key.clone())
                    .chain(page.prefixes.iter().cloned())
                    .collect();
                entries.sort();
                assert!(entries.len() <= max);
                got.extend(entries);
                if !page.truncated {
                    break;
                }
                after = page.next.clone();
                assert!(after.is_some());
            }
            assert_eq!(
                got, model,
                "prefix {prefix:?} delimiter {delim:?} max {max}"
            );
        }
    }
}

#[tokio::test]
async fn multipart_complete_abort_and_errors() {
    let w = world().await;
    bucket(&w, "m").await;
    let p1 = data(5 * 1024 * 1024, 1);
    let p2 = data(1000, 2);
    let up = w
        .store
        .create_multipart(
            Some(&w.admin),
            "m",
            "big",
            PutOptions {
                content_type: Some("text/plain".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("create");
    let e1 = w
        .store
        .upload_part(
            Some(&w.admin),
            "m",
            "big",
            &up.upload_id,
            1,
            opts(p1.len()),
            body(&p1),
        )
        .await
        .expect("part 1");
    // A part uploaded twice: the second wins.
    w.store
        .upload_part(
            Some(&w.admin),
            "m",
            "big",
            &up.upload_id,
            2,
            opts(3),
            body(b"old"),
        )
        .await
        .expect("part 2 old");
    let e2 = w
        .store
        .upload_part(
            Some(&w.admin),
            "m",
            "big",
            &up.upload_id,
            2,
            opts(p2.len()),
            body(&p2),
        )
        .await
        .expect("part 2");
    let parts = w
        .store
        .list_parts(Some(&w.admin), "m", "big", &up.upload_id, 0, 1000)
        .await
        .expect("list");
    assert_eq!(parts.parts.len(), 2);
    let out_of_order = w
        .store
        .complete_multipart(
            Some(&w.admin),
            "m",
            "big",
            &up.upload_id,
            vec![
                CompletePart {
                    number: 2,
                    etag: e2.etag.clone(),
                },
                CompletePart {
                    number: 1,
                    etag: e1.etag.clone(),
                },
            ],
        )
        .await
        .expect_err("order");
    assert_eq!(variant(&out_of_order), "InvalidPartOrder");
    let wrong = w
        .store
        .complete_multipart(
            Some(&w.admin),
            "m",
            "big",
            &up.upload_id,
            vec![CompletePart {
                number: 1,
                etag: "\"0000\"".into(),
            }],
        )
        .await
        .expect_err("etag");
    assert_eq!(variant(&wrong), "InvalidPart");
    let m = w
        .store
        .complete_multipart(
            Some(&w.admin),
            "m",
            "big",
            &up.upload_id,
            vec![
                CompletePart {
                    number: 1,
                    etag: format!("\"{}\"", e1.etag),
                },
                CompletePart {
                    number: 2,
                    etag: e2.etag.clone(),
                },
            ],
        )
        .await
        .expect("complete");
    let mut all = p1.clone();
    all.extend_from_slice(&p2);
    assert_eq!(m.size, all.len() as u64);
    assert!(m.etag.ends_with("-2"));
    assert_eq!(m.content_type, "text/plain");
    assert_eq!(get(&w, "m", "big").await, all);
    let r = RangeSpec::parse("bytes=5242870-5242889").expect("range");
    let (_, _, b) = w
        .store
        .get_object(Some(&w.admin), "m", "big", Some(r))
        .await
        .expect("range across parts");
    assert_eq!(b.collect().await.expect("body"), &all[5242870..5242890]);
    // Small parts are refused at completion.
    let up = w
        .store
        .create_multipart(Some(&w.admin), "m", "small", PutOptions::default(), None)
        .await
        .expect("create");
    let a = w
        .store
        .upload_part(
            Some(&w.admin),
            "m",
            "small",
            &up.upload_id,
            1,
            opts(3),
            body(b"abc"),
        )
        .await
        .expect("p1");
    let b = w
        .store
        .upload_part(
            Some(&w.admin),
            "m",
            "small",
            &up.upload_id,
            2,
            opts(3),
            body(b"def"),
        )
        .await
        .expect("p2");
    let e = w
        .store
        .complete_multipart(
            Some(&w.admin),
            "m",
            "small",
            &up.upload_id,
            vec![
                CompletePart {
                    number: 1,
                    etag: a.etag,
                },
                CompletePart {
                    number: 2,
                    etag: b.etag,
                },
            ],
        )
        .await
        .expect_err("too small");
    assert_eq!(variant(&e), "EntityTooSmall");
    let list = w
        .store
        .list_uploads(Some(&w.admin), "m", "", None, None, 100)
        .await
        .expect("uploads");
    assert_eq!(list.uploads.len(), 1);
    w.store
        .abort_multipart(Some(&w.admin), "m", "small", &up.upload_id)
        .await
        .expect("abort");
    let e = w
        .store
        .abort_multipart(Some(&w.admin), "m", "small", &up.upload_id)
        .await
        .expect_err("twice");
    assert_eq!(variant(&e), "NoSuchUpload");
    assert_clean(&w).await;
}

#[tokio::test]
async fn copy_shares_bytes_and_survives_the_source() {
    let w = world().await;
    bucket(&w, "c").await;
    let d = data(400_000, 3);
    w.store
        .put_object(Some(&w.admin), "c", "src", opts(d.len()), body(&d))
        .await
        .expect("put");
    let m = w
        .store
        .copy_object(
            Some(&w.admin),
            &CopySource::new("c", "src"),
            "c",
            "dst",
            MetadataDirective::Copy,
            None,
        )
        .await
        .expect("copy");
    assert_eq!(m.size, d.len() as u64);
    w.store
        .delete_object(Some(&w.admin), "c", "src")
        .await
        .expect("delete src");
    assert_eq!(get(&w, "c", "dst").await, d);
    let b = w.store.head_bucket(Some(&w.admin), "c").expect("bucket");
    assert_eq!((b.objects, b.bytes), (1, d.len() as i64));
    assert_clean(&w).await;
    w.store
        .delete_object(Some(&w.admin), "c", "dst")
        .await
        .expect("delete dst");
    assert_clean(&w).await;
}

#[tokio::test]
async fn bad_digests_store_nothing() {
    let w = world().await;
    bucket(&w, "d").await;
    let d = data(10_000, 4);
    let bad_md5 = PutOptions {
        content_md5: Some([0; 16]),
        ..opts(d.len())
    };
    let e = w
        .store
        .put_object(Some(&w.admin), "d", "k", bad_md5, body(&d))
        .await
        .expect_err("md5");
    assert_eq!(variant(&e), "BadDigest");
    let mut h = Hasher::new(Algorithm::Crc32);
    h.update(b"something else");
    let bad_crc = PutOptions {
        checksum: Some(ChecksumSpec::Verify(Expected {
            algorithm: Algorithm::Crc32,
            digest: h.finish(),
        })),
        ..opts(d.len())
    };
    let e = w
        .store
        .put_object(Some(&w.admin), "d", "k", bad_crc, body(&d))
        .await
        .expect_err("crc");
    assert_eq!(variant(&e), "ChecksumMismatch");
    let e = w
        .store
        .put_object(Some(&w.admin), "d", "k", opts(d.len() + 1), body(&d))
        .await
        .expect_err("short");
    assert_eq!(variant(&e), "IncompleteBody");
    let e = w
        .store
        .put_object(Some(&w.admin), "d", "k", opts(d.len() - 1), body(&d))
        .await
        .expect_err("long");
    assert_eq!(variant(&e), "BodyTooLong");
    let big = data(600_000, 5);
    let e = w
        .store
        .put_object(Some(&w.admin), "d", "k", opts(big.len() - 1), body(&big))
        .await
        .expect_err("long streamed");
    assert_eq!(variant(&e), "BodyTooLong");
    let e = w
        .store
        .put_object(Some(&w.admin), "d", &"k".repeat(1025), opts(1), body(b"x"))
        .await
        .expect_err("key");
    assert_eq!(variant(&e), "KeyTooLong");
    let mut h = Hasher::new(Algorithm::Crc32);
    h.update(&d);
    let good_crc = PutOptions {
        checksum: Some(ChecksumSpec::Verify(Expected {
            algorithm: Algorithm::Crc32,
            digest: h.finish(),
        })),
        ..opts(d.len())
    };
    let m = w
        .store
        .put_object(Some(&w.admin), "d", "ok", good_crc, body(&d))
        .await
        .expect("good crc");
    assert_eq!(m.checksum.map(|c| c.0), Some(Algorithm::Crc32));
    let page = w
        .store
        .list_objects(
            Some(&w.admin),
            "d",
            ListQuery {
                max: 10,
                ..Default::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(page.objects.len(), 1);
    assert_clean(&w).await;
}

#[tokio::test]
async fn projects_are_isolated_and_public_read_is_open() {
    let w = world().await;
    bucket(&w, "mine").await;
    w.store
        .put_object(Some(&w.admin), "mine", "k", opts(2), body(b"hi"))
        .await
        .expect("put");
    let other = stranger();
    let e = w
        .store
        .get_object(Some(&other), "mine", "k", None)
        .await
        .expect_err("foreign");
    assert_eq!(variant(&e), "AccessDenied");
    let e = w
        .store
        .get_object(None, "mine", "k", None)
        .await
        .expect_err("anonymous");
    assert_eq!(variant(&e), "AccessDenied");
    let e = w
        .store
        .create_bucket(
            &other,
            NewBucket {
                name: "mine".into(),
                acl: Acl::Private,
                meta: BTreeMap::new(),
            },
        )
        .await
        .expect_err("taken");
    assert_eq!(variant(&e), "BucketAlreadyExists");
    // A public-read bucket lists to anyone; its objects stay private.
    w.store
        .update_bucket(
            &w.admin,
            "mine",
            BucketPatch {
                acl: Some(Acl::PublicRead),
                ..Default::default()
            },
        )
        .await
        .expect("acl");
    let page = w
        .store
        .list_objects(
            None,
            "mine",
            ListQuery {
                max: 10,
                ..Default::default()
            },
        )
        .await
        .expect("anonymous listing");
    assert_eq!(page.objects.len(), 1);
    let e = w
        .store
        .get_object(None, "mine", "k", None)
        .await
        .expect_err("anonymous read of a private object");
    assert_eq!(variant(&e), "AccessDenied");
    // The object ACL (Swift's .r:*) opens every object, without listing.
    w.store
        .update_bucket(
            &w.admin,
            "mine",
            BucketPatch {
                acl: Some(Acl::Private),
                object_acl: Some(Acl::PublicRead),
                ..Default::default()
            },
        )
        .await
        .expect("object acl");
    let (_, _, b) = w
        .store
        .get_object(None, "mine", "k", None)
        .await
        .expect("anonymous read");
    assert_eq!(b.collect().await.expect("body"), b"hi");
    let e = w
        .store
        .list_objects(None, "mine", ListQuery::default())
        .await
        .expect_err("anonymous listing");
    assert_eq!(variant(&e), "AccessDenied");
    // A canned ACL alone replaces both grants.
    w.store
        .update_bucket(
            &w.admin,
            "mine",
            BucketPatch {
                acl: Some(Acl::PublicRead),
                ..Default::default()
            },
        )
        .await
        .expect("acl");
    let e = w
        .store
        .get_object(None, "mine", "k", None)
        .await
        .expect_err("object acl reset");
    assert_eq!(variant(&e), "AccessDenied");
    let e = w
        .store
        .put_object(Some(&other), "mine", "k2", opts(1), body(b"x"))
        .await
        .expect_err("foreign write");
    assert_eq!(variant(&e), "AccessDenied");
    assert!(w.store.list_buckets(&other).await.expect("list").is_empty());
}

#[tokio::test]
async fn object_acls_conditional_deletes_and_account_meta() {
    let w = world().await;
    bucket(&w, "acl").await;
    let public = PutOptions {
        acl: Some(Acl::PublicRead),
        ..opts(4)
    };
    w.store
        .put_object(Some(&w.admin), "acl", "open", public, body(b"open"))
        .await
        .expect("put public");
    w.store
        .put_object(Some(&w.admin), "acl", "shut", opts(4), body(b"shut"))
        .await
        .expect("put private");
    let other = stranger();
    // A public-read object of a private bucket: anyone reads it, nothing else.
    for caller in [None, Some(&other)] {
        let (m, _, b) = w
            .store
            .get_object(caller, "acl", "open", None)
            .await
            .expect("public object");
        assert_eq!(m.acl, Acl::PublicRead);
        assert_eq!(b.collect().await.expect("body"), b"open");
        for key in ["shut", "missing"] {
            let e = w
                .store
                .head_object(caller, "acl", key)
                .await
                .expect_err("private or missing");
            assert_eq!(variant(&e), "AccessDenied", "{key}");
        }
    }
    w.store
        .set_object_acl(&w.admin, "acl", "open", Acl::Private)
        .await
        .expect("set acl");
    let e = w
        .store
        .get_object(None, "acl", "open", None)
        .await
        .expect_err("now private");
    assert_eq!(variant(&e), "AccessDenied");
    let e = w
        .store
        .set_object_acl(&other, "acl", "shut", Acl::PublicRead)
        .await
        .expect_err("foreign acl change");
    assert_eq!(variant(&e), "AccessDenied");

    // Deletes conditional on the ETag, in one commit.
    let r = w
        .store
        .delete_objects(
            Some(&w.admin),
            "acl",
            vec![
                (
                    "open".into(),
                    Some("\"00000000000000000000000000000000\"".into()),
                ),
                (
                    "shut".into(),
                    Some(format!("\"{:x}\"", md5::Md5::digest(b"shut"))),
                ),
                ("missing".into(), Some("*".into())),
            ],
        )
        .await
        .expect("delete objects");
    let codes: Vec<_> = r
        .iter()
        .map(|x| x.as_ref().map_err(variant).copied())
        .collect();
    assert_eq!(
        codes,
        [
            Err("PreconditionFailed".to_string()),
            Ok(true),
            Err("NoSuchKey".to_string())
        ]
    );
    assert_eq!(get(&w, "acl", "open").await, b"open");
    w.store
        .head_object(Some(&w.admin), "acl", "shut")
        .await
        .expect_err("deleted");

    // Account metadata: merged, removed key by key, project-scoped.
    let patch = |kv: &[(&str, Option<&str>)]| {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect::<BTreeMap<_, _>>()
    };
    let project = w.admin.project_id.clone();
    w.store
        .update_account_meta(
            &w.admin,
            &project,
            patch(&[("a", Some("1")), ("b", Some("2"))]),
        )
        .await
        .expect("set");
    let m = w
        .store
        .update_account_meta(&w.admin, &project, patch(&[("a", None), ("c", Some("3"))]))
        .await
        .expect("merge");
    assert_eq!(
        m,
        patch(&[("b", Some("2")), ("c", Some("3"))])
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect()
    );
    assert_eq!(
        w.store
            .account_meta(&w.admin, &project)
            .await
            .expect("read"),
        m
    );
    let e = w
        .store
        .account_meta(&other, &project)
        .await
        .expect_err("foreign account");
    assert_eq!(variant(&e), "AccessDenied");
    let e = w
        .store
        .update_account_meta(
            &w.admin,
            &project,
            patch(&[("big", Some(&"x".repeat(9000)))]),
        )
        .await
        .expect_err("too big");
    assert_eq!(variant(&e), "InvalidArgument");
    assert_eq!(
        w.store
            .account_meta(&w.admin, &project)
            .await
            .expect("read"),
        m
    );
}

#[tokio::test]
async fn byte_and_bucket_quotas() {
    let w = world().await;
    let project = w.admin.project_id.clone();
    w.identity
        .set_quota(&w.admin, &project, "bytes", 1000)
        .await
        .expect("quota");
    w.identity
        .set_quota(&w.admin, &project, "buckets", 1)
        .await
        .expect("quota");
    bucket(&w, "q").await;
    let e = w
        .store
        .create_bucket(
            &w.admin,
            NewBucket {
                name: "q2".into(),
                acl: Acl::Private,
                meta: BTreeMap::new(),
            },
        )
        .await
        .expect_err("buckets");
    assert_eq!(variant(&e), "QuotaExceeded");
    w.store
        .put_object(Some(&w.admin), "q", "a", opts(600), body(&data(600, 1)))
        .await
        .expect("fits");
    let e = w
        .store
        .put_object(Some(&w.admin), "q", "b", opts(600), body(&data(600, 1)))
        .await
        .expect_err("bytes");
    assert_eq!(variant(&e), "QuotaExceeded");
    // Overwriting with the same size fits.
    w.store
        .put_object(Some(&w.admin), "q", "a", opts(900), body(&data(900, 1)))
        .await
        .expect("overwrite");
    assert_clean(&w).await;
}

#[tokio::test]
async fn corruption_is_reported_not_served() {
    let w = world().await;
    bucket(&w, "x").await;
    for (k, n) in [("small", 1000usize), ("large", 2 * 1024 * 1024)] {
        let d = data(n, 7);
        w.store
            .put_object(Some(&w.admin), "x", k, opts(n), body(&d))
            .await
            .expect("put");
    }
    // Flip one byte of every stored file.
    for shard in std::fs::read_dir(w.dir.path().join("data")).expect("data") {
        for f in std::fs::read_dir(shard.expect("shard").path()).expect("shard") {
            let p = f.expect("file").path();
            let mut bytes = std::fs::read(&p).expect("read");
            bytes[500] ^= 0xff;
            std::fs::write(&p, bytes).expect("write");
        }
    }
    let e = w
        .store
        .get_object(Some(&w.admin), "x", "small", None)
        .await
        .expect_err("small corrupt");
    assert_eq!(variant(&e), "Corrupt");
    let (_, _, body) = w
        .store
        .get_object(Some(&w.admin), "x", "large", None)
        .await
        .expect("stream starts");
    assert!(
        body.collect().await.is_err(),
        "a corrupt stream must end in an error"
    );
    let bad = w.store.verify_bucket(&w.admin, "x").await.expect("verify");
    assert_eq!(bad, vec!["large".to_string(), "small".to_string()]);
    let e = w
        .store
        .head_object(Some(&w.admin), "x", "large")
        .await
        .expect_err("marked");
    assert_eq!(variant(&e), "Corrupt");
}

#[tokio::test]
async fn reopening_keeps_everything_and_removes_uncommitted_data() {
    let w = world().await;
    bucket(&w, "p").await;
    let d = data(70_000, 8);
    w.store
        .put_object(Some(&w.admin), "p", "k", opts(d.len()), body(&d))
        .await
        .expect("put");
    // An uncommitted segment, as a crash mid-upload leaves it.
    std::fs::write(
        w.dir
            .path()
            .join("tmp")
            .join("deadbeefdeadbeefdeadbeefdeadbeef"),
        b"partial",
    )
    .expect("tmp");
    let again = ObjectStore::open(w.dir.path(), w.identity.clone(), config())
        .await
        .expect("reopen");
    let (_, _, b) = again
        .get_object(Some(&w.admin), "p", "k", None)
        .await
        .expect("get");
    assert_eq!(b.collect().await.expect("body"), d);
    assert!(std::fs::read_dir(w.dir.path().join("tmp"))
        .expect("tmp")
        .next()
        .is_none());
    let (orphans, missing) = again.fsck().await.expect("fsck");
    assert!(
        orphans.is_empty() && missing.is_empty(),
        "{orphans:?} {missing:?}"
    );
}

/// The canned ACLs beyond public-read: authenticated-read opens listing to
/// any caller with credentials, public-read-write opens listing and object
/// writes to anyone (charged to the bucket's project); reading an object
/// needs its own ACL; the bucket itself and ACLs stay the project's.
#[tokio::test]
async fn authenticated_read_and_public_read_write() {
    let w = world().await;
    let other = stranger();
    for (name, acl) in [
        ("members", Acl::AuthenticatedRead),
        ("drop", Acl::PublicReadWrite),
    ] {
        w.store
            .create_bucket(
                &w.admin,
                NewBucket {
                    name: name.into(),
                    acl,
                    meta: BTreeMap::new(),
                },
            )
            .await
            .expect("bucket");
    }
    w.store
        .put_object(Some(&w.admin), "members", "k", opts(2), body(b"hi"))
        .await
        .expect("put");
    // authenticated-read: another project lists, never reads the
    // (private) objects nor writes; anonymous callers do neither.
    let e = w
        .store
        .get_object(Some(&other), "members", "k", None)
        .await
        .expect_err("outsider reads a private object");
    assert_eq!(variant(&e), "AccessDenied");
    w.store
        .list_objects(Some(&other), "members", ListQuery::default())
        .await
        .expect("outsider lists");
    let e = w
        .store
        .put_object(Some(&other), "members", "x", opts(1), body(b"x"))
        .await
        .expect_err("outsider writes");
    assert_eq!(variant(&e), "AccessDenied");
    let e = w
        .store
        .head_object(None, "members", "k")
        .await
        .expect_err("anonymous reads");
    assert_eq!(variant(&e), "AccessDenied");
    // public-read-write: anonymous put, list, delete; counted for the
    // owner's project. Reading needs the object's own ACL.
    let before = w.store.usage(&w.admin.project_id);
    w.store
        .put_object(None, "drop", "anon", opts(5), body(b"12345"))
        .await
        .expect("anonymous put");
    assert_eq!(w.store.usage(&w.admin.project_id).1, before.1 + 5);
    w.store
        .list_objects(None, "drop", ListQuery::default())
        .await
        .expect("anonymous listing");
    let e = w
        .store
        .get_object(None, "drop", "anon", None)
        .await
        .expect_err("anonymous get of a private object");
    assert_eq!(variant(&e), "AccessDenied");
    let public = PutOptions {
        acl: Some(Acl::PublicRead),
        ..opts(5)
    };
    w.store
        .put_object(None, "drop", "anon", public, body(b"12345"))
        .await
        .expect("anonymous put, public-read");
    let (_, _, b) = w
        .store
        .get_object(None, "drop", "anon", None)
        .await
        .expect("anonymous get");
    assert_eq!(b.collect().await.expect("body"), b"12345");
    assert!(w
        .store
        .delete_object(Some(&other), "drop", "anon")
        .await
        .expect("outsider deletes"));
    // ... but neither the bucket nor ACLs are theirs.
    let e = w
        .store
        .update_bucket(
            &other,
            "drop",
            BucketPatch {
                acl: Some(Acl::Private),
                ..BucketPatch::default()
            },
        )
        .await
        .expect_err("outsider changes the ACL");
    assert_eq!(variant(&e), "AccessDenied");
    let e = w
        .store
        .delete_bucket(&other, "drop")
        .await
        .expect_err("outsider deletes the bucket");
    assert_eq!(variant(&e), "AccessDenied");
    assert_eq!(
        w.store
            .head_bucket(Some(&w.admin), "drop")
            .expect("kept")
            .acl,
        Acl::PublicReadWrite
    );
}

/// An admin creates a bucket in another project (Swift's `PUT
/// /v1/AUTH_<other>/c`): it is that project's; a member cannot; a project
/// that does not exist is refused; `in_account` reaches a bucket through
/// its own project only.
#[tokio::test]
async fn buckets_in_another_project() {
    let w = world().await;
    let other = stranger();
    let other_project = w
        .identity
        .create_project(
            &w.admin,
            nuage_identity::NewProject {
                name: "target".into(),
                domain_id: None,
                description: String::new(),
                enabled: true,
            },
        )
        .await
        .expect("project");
    let new = |name: &str| NewBucket {
        name: name.into(),
        acl: Acl::Private,
        meta: BTreeMap::new(),
    };
    let b = w
        .store
        .create_bucket_in(&w.admin, &other_project.id, new("theirs"), Acl::Private)
        .await
        .expect("admin creates in another project");
    assert_eq!(b.project_id, other_project.id);
    w.store
        .in_account(&other_project.id, "theirs")
        .expect("in its project");
    let e = w
        .store
        .in_account(&w.admin.project_id, "theirs")
        .expect_err("not the admin's");
    assert_eq!(variant(&e), "NoSuchBucket");
    assert!(w
        .store
        .list_buckets(&w.admin)
        .await
        .expect("list")
        .iter()
        .all(|b| b.name != "theirs"));
    let e = w
        .store
        .create_bucket_in(&other, &other_project.id, new("nope"), Acl::Private)
        .await
        .expect_err("a member of another project");
    assert_eq!(variant(&e), "AccessDenied");
    let e = w
        .store
        .create_bucket_in(&w.admin, "no-such-project", new("nowhere"), Acl::Private)
        .await
        .expect_err("no such project");
    assert_eq!(
        nuage_model::HasKind::kind(&e),
        nuage_model::ErrorKind::NotFound
    );
    assert!(w.store.head_bucket(Some(&w.admin), "nowhere").is_err());
}

/// A store made before object ACLs existed (schema version 0) is migrated
/// on open, and its buckets keep the readers their ACL let in: a
/// public-read bucket's objects stay readable by anyone.
#[tokio::test]
async fn version_0_buckets_keep_their_readers() {
    let w = world().await;
    bucket(&w, "old-public").await;
    bucket(&w, "old-private").await;
    for b in ["old-public", "old-private"] {
        w.store
            .put_object(Some(&w.admin), b, "k", opts(2), body(b"hi"))
            .await
            .expect("put");
    }
    let dir = w.dir.path().to_path_buf();
    drop(w.store);
    // Back to version 0: no object_acl column, the old ACL alone.
    let c = rusqlite::Connection::open(dir.join("objects.db")).expect("sqlite");
    c.execute_batch(
        "ALTER TABLE buckets DROP COLUMN object_acl;
         UPDATE buckets SET acl = 'public-read' WHERE name = 'old-public';
         PRAGMA user_version = 0;",
    )
    .expect("downgrade");
    drop(c);
    let store = ObjectStore::open(&dir, w.identity.clone(), config())
        .await
        .expect("open");
    let (_, _, b) = store
        .get_object(None, "old-public", "k", None)
        .await
        .expect("kept its anonymous readers");
    assert_eq!(b.collect().await.expect("body"), b"hi");
    let e = store
        .get_object(None, "old-private", "k", None)
        .await
        .expect_err("private stays private");
    assert_eq!(variant(&e), "AccessDenied");
    let b = store.head_bucket(None, "old-public").expect("lists");
    assert_eq!((b.acl, b.object_acl), (Acl::PublicRead, Acl::PublicRead));
    let c = rusqlite::Connection::open(dir.join("objects.db")).expect("sqlite");
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(v, 1);
}

/// The engine alone decides which headers an object keeps, on every path
/// that sets them: a PUT, a copy that replaces metadata, a metadata
/// update, a multipart upload. Unknown headers and empty values are not
/// kept, whatever the dialect passed (a copy used to keep anything it was
/// given).
#[tokio::test]
async fn kept_headers_are_the_engines_rule_on_every_path() {
    let w = world().await;
    bucket(&w, "kh").await;
    let given = |extra: &str| -> BTreeMap<String, String> {
        [
            ("Content-Disposition", "attachment; filename=\"a.txt\""),
            ("content-encoding", "gzip"),
            ("cache-control", "max-age=60"),
            ("expires", "Thu, 01 Dec 2033 16:00:00 GMT"),
            ("content-language", ""),
            ("x-robots-tag", "noindex"),
            ("x-amz-meta-sneaky", "1"),
            ("etag", extra),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let want: BTreeMap<String, String> = [
        ("cache-control", "max-age=60"),
        ("content-disposition", "attachment; filename=\"a.txt\""),
        ("content-encoding", "gzip"),
        ("expires", "Thu, 01 Dec 2033 16:00:00 GMT"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let m = w
        .store
        .put_object(
            Some(&w.admin),
            "kh",
            "put",
            PutOptions {
                headers: given("x"),
                ..opts(2)
            },
            body(b"hi"),
        )
        .await
        .expect("put");
    assert_eq!(m.headers, want, "put");
    let m = w
        .store
        .copy_object(
            Some(&w.admin),
            &CopySource::new("kh", "put"),
            "kh",
            "copy",
            MetadataDirective::Replace {
                content_type: None,
                user_meta: BTreeMap::new(),
                headers: given("y"),
            },
            None,
        )
        .await
        .expect("copy");
    assert_eq!(m.headers, want, "copy with replaced metadata");
    let h = w
        .store
        .head_object(Some(&w.admin), "kh", "copy")
        .await
        .expect("head");
    assert_eq!(h.headers, want, "copy, read back");
    let m = w
        .store
        .update_object_meta(&w.admin, "kh", "put", None, BTreeMap::new(), given("z"))
        .await
        .expect("post");
    assert_eq!(m.headers, want, "metadata update");
    let up = w
        .store
        .create_multipart(
            Some(&w.admin),
            "kh",
            "mp",
            PutOptions {
                headers: given("m"),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("initiate");
    let part = w
        .store
        .upload_part(
            Some(&w.admin),
            "kh",
            "mp",
            &up.upload_id,
            1,
            opts(3),
            body(b"abc"),
        )
        .await
        .expect("part");
    let m = w
        .store
        .complete_multipart(
            Some(&w.admin),
            "kh",
            "mp",
            &up.upload_id,
            vec![CompletePart {
                number: 1,
                etag: part.etag,
            }],
        )
        .await
        .expect("complete");
    assert_eq!(m.headers, want, "multipart");
}

/// Conditional reads (RFC 7232), evaluated by the engine against the
/// version it reads: 304 as an answer carrying the object's metadata, 412
/// as `ConditionFailed` naming the header; a condition tells nothing to a
/// caller who may not read the object, and opens the object to no one.
#[tokio::test]
async fn conditional_reads() {
    let w = world().await;
    bucket(&w, "cr").await;
    let m = w
        .store
        .put_object(Some(&w.admin), "cr", "k", opts(5), body(b"hello"))
        .await
        .expect("put");
    let quoted = format!("\"{}\"", m.etag);
    let last_modified = chrono::DateTime::from_timestamp_millis(m.modified_ms)
        .expect("time")
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let earlier = chrono::DateTime::from_timestamp_millis(m.modified_ms - 10_000)
        .expect("time")
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let cond = |h: &[(&str, &str)]| Conditions::from_headers(h.iter().copied());
    // (conditions, Ok(true) served / Ok(false) not modified / Err(variant))
    let cases: Vec<(Conditions, Result<bool, &str>)> = vec![
        (cond(&[]), Ok(true)),
        (cond(&[("if-match", &quoted)]), Ok(true)),
        (cond(&[("if-match", &m.etag)]), Ok(true)),
        (cond(&[("if-match", "\"other\"")]), Err("If-Match")),
        (cond(&[("if-none-match", &quoted)]), Ok(false)),
        (cond(&[("if-none-match", "*")]), Ok(false)),
        (cond(&[("if-none-match", "\"other\", \"more\"")]), Ok(true)),
        (cond(&[("if-modified-since", &last_modified)]), Ok(false)),
        (cond(&[("if-modified-since", &earlier)]), Ok(true)),
        (cond(&[("if-unmodified-since", &last_modified)]), Ok(true)),
        (
            cond(&[("if-unmodified-since", &earlier)]),
            Err("If-Unmodified-Since"),
        ),
        (
            cond(&[("if-match", "other"), ("if-none-match", "*")]),
            Err("If-Match"),
        ),
    ];
    for (c, want) in &cases {
        let got = match w
            .store
            .get_object_if(Some(&w.admin), "cr", "k", Some(RangeSpec::Suffix(2)), c)
            .await
        {
            Ok(Conditional::Served((o, r, b))) => {
                assert_eq!(o.etag, m.etag);
                assert_eq!(r.map(|r| (r.start, r.end)), Some((3, 5)));
                assert_eq!(b.collect().await.expect("body"), b"lo");
                Ok(true)
            }
            Ok(Conditional::NotModified(o)) => {
                assert_eq!(
                    (o.etag.as_str(), o.modified_ms),
                    (m.etag.as_str(), m.modified_ms)
                );
                Ok(false)
            }
            Err(ObjectError::ConditionFailed(c)) => Err(c.header_name()),
            Err(e) => panic!("{c:?}: {e}"),
        };
        assert_eq!(got, *want, "GET {c:?}");
        let got = match w.store.head_object_if(Some(&w.admin), "cr", "k", c).await {
            Ok(Conditional::Served(_)) => Ok(true),
            Ok(Conditional::NotModified(_)) => Ok(false),
            Err(ObjectError::ConditionFailed(c)) => Err(c.header_name()),
            Err(e) => panic!("{c:?}: {e}"),
        };
        assert_eq!(got, *want, "HEAD {c:?}");
    }
    // A range past the end does not matter when the answer is 304.
    let r = w
        .store
        .get_object_if(
            Some(&w.admin),
            "cr",
            "k",
            Some(RangeSpec::From {
                first: 99,
                last: None,
            }),
            &cond(&[("if-none-match", "*")]),
        )
        .await
        .expect("304 before the range");
    assert!(matches!(r, Conditional::NotModified(_)));
    // Who may not read learns nothing from a condition.
    for c in [cond(&[("if-none-match", "*")]), cond(&[("if-match", "x")])] {
        let e = w
            .store
            .get_object_if(None, "cr", "k", None, &c)
            .await
            .expect_err("anonymous");
        assert_eq!(variant(&e), "AccessDenied", "{c:?}");
        let e = w
            .store
            .head_object_if(Some(&stranger()), "cr", "k", &c)
            .await
            .expect_err("stranger");
        assert_eq!(variant(&e), "AccessDenied", "{c:?}");
    }
    // An object its ACL opens answers its conditions to anyone.
    w.store
        .set_object_acl(&w.admin, "cr", "k", Acl::PublicRead)
        .await
        .expect("acl");
    let r = w
        .store
        .get_object_if(None, "cr", "k", None, &cond(&[("if-none-match", &quoted)]))
        .await
        .expect("public 304");
    assert!(matches!(r, Conditional::NotModified(_)));
    let e = w
        .store
        .get_object_if(None, "cr", "k", None, &cond(&[("if-match", "x")]))
        .await
        .expect_err("public 412");
    assert_eq!(variant(&e), "ConditionFailed");
}

/// `If-None-Match: *` on a PUT writes a new key only: an existing object
/// is left as it was (bytes, metadata, counters, no data file left), and
/// of writers racing for a new key exactly one wins.
#[tokio::test]
async fn put_if_none_match_writes_only_new_keys() {
    let w = world().await;
    bucket(&w, "pn").await;
    let only_new = |d: &[u8]| PutOptions {
        if_none_match: true,
        ..opts(d.len())
    };
    let first = w
        .store
        .put_object(
            Some(&w.admin),
            "pn",
            "k",
            only_new(b"first"),
            body(b"first"),
        )
        .await
        .expect("a new key is written");
    let big = data(400_000, 9);
    for d in [&b"second"[..], &big] {
        let e = w
            .store
            .put_object(Some(&w.admin), "pn", "k", only_new(d), body(d))
            .await
            .expect_err("overwrite refused");
        assert!(
            matches!(e, ObjectError::ConditionFailed(Condition::IfNoneMatch)),
            "{e}"
        );
    }
    assert_eq!(get(&w, "pn", "k").await, b"first");
    let h = w
        .store
        .head_object(Some(&w.admin), "pn", "k")
        .await
        .expect("head");
    assert_eq!((h.etag, h.modified_ms), (first.etag, first.modified_ms));
    let b = w.store.head_bucket(Some(&w.admin), "pn").expect("bucket");
    assert_eq!((b.objects, b.bytes), (1, 5));
    assert_clean(&w).await;

    // Racing writers of one new key: the commit decides, once.
    let mut tasks = Vec::new();
    for i in 0..8u8 {
        let store = w.store.clone();
        let admin = w.admin.clone();
        tasks.push(tokio::spawn(async move {
            let d = data(70_000, i);
            let opts = PutOptions {
                if_none_match: true,
                ..opts(d.len())
            };
            store
                .put_object(Some(&admin), "pn", "race", opts, body(&d))
                .await
                .map(|_| i)
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(i) => won.push(i),
            Err(ObjectError::ConditionFailed(Condition::IfNoneMatch)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(won.len(), 1, "{won:?}");
    assert_eq!(get(&w, "pn", "race").await, data(70_000, won[0]));
    assert_clean(&w).await;
}
