//! The compute core's rules behind Nova's and Glance's extras (ADR 32), on
//! both store engines: private instance types seen only by their projects
//! and admins, extra specs, placement groups found by id across projects
//! and their members launched through `RunRequest.placement_group`, image
//! tags, checksums computed during the upload, deactivated images neither
//! launched nor downloaded by others, community images.

use std::sync::Arc;

use nuage_compute::types::InstanceType;
use nuage_compute::{
    Compute, ComputeConfig, ComputeError, ImagePatch, LocalAgent, NewImage, NodeRegistration,
    RunRequest,
};
use nuage_driver::fake::FakeDriver;
use nuage_driver::Capacity;
use nuage_identity::{Bootstrap, Identity, IdentityConfig, NewProject};
use nuage_model::identity::Principal;
use nuage_model::{ErrorKind, HasKind};
use nuage_store::testing::{fresh, TestDb, ENGINES};
use sha2::Digest;

fn member(project: &str, user: &str) -> Principal {
    Principal {
        user_id: user.into(),
        user_name: user.into(),
        domain_id: "default".into(),
        project_id: project.into(),
        project_name: project.into(),
        project_domain_id: "default".into(),
        roles: vec!["member".into(), "reader".into()],
        method: "token".into(),
        audit_id: String::new(),
        expires_at: i64::MAX,
    }
}

/// A rootfs the image store takes.
fn rootfs() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let body = b"#!/bin/sh\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append_data(&mut h, "bin/sh", &body[..]).expect("tar");
    b.into_inner().expect("tar")
}

struct Cloud {
    compute: Compute,
    admin: Principal,
    alpha: Principal,
    beta: Principal,
    _t: TestDb,
    _images: tempfile::TempDir,
}

async fn cloud(engine: &str) -> Cloud {
    let t = fresh(engine).await.expect("db");
    let identity = Identity::open(t.db.clone(), IdentityConfig::default())
        .await
        .expect("identity");
    let out = identity
        .bootstrap(Bootstrap {
            admin_password: Some("admin-password-1".into()),
            access_key: None,
        })
        .await
        .expect("bootstrap");
    let mut admin = member(&out.admin_project_id, &out.admin_user_id);
    admin.roles.push("admin".into());
    let mut projects = Vec::new();
    for name in ["alpha", "beta"] {
        let p = identity
            .create_project(
                &admin,
                NewProject {
                    name: name.into(),
                    enabled: true,
                    ..Default::default()
                },
            )
            .await
            .expect("project");
        projects.push(p.id);
    }
    let images = tempfile::tempdir().expect("tmp");
    let store = nuage_image::ImageStore::open(&images.path().join("images")).expect("images");
    let compute = Compute::open(
        t.db.clone(),
        identity,
        store.clone(),
        ComputeConfig::default(),
    )
    .await
    .expect("compute");
    let driver = Arc::new(FakeDriver::new(Capacity {
        vcpus: 64,
        ram_mib: 64 * 1024,
        disk_gib: 1024,
        arch: "x86_64".into(),
        hypervisor: "fake".into(),
    }));
    compute
        .register_agent(
            Arc::new(LocalAgent::new("node-1", driver, store)),
            NodeRegistration {
                id: "node-1".into(),
                name: "node-1".into(),
                availability_zone: None,
                labels: Default::default(),
            },
        )
        .await
        .expect("node");
    Cloud {
        compute,
        admin,
        alpha: member(&projects[0], "alice"),
        beta: member(&projects[1], "bob"),
        _t: t,
        _images: images,
    }
}

fn kind<T: std::fmt::Debug>(r: Result<T, ComputeError>) -> ErrorKind {
    r.expect_err("refused").kind()
}

fn specs(kv: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    kv.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// (missing from the caller's list, refused by get).
async fn hidden(c: &Cloud, who: &Principal) -> (bool, bool) {
    let listed: Vec<String> = c
        .compute
        .list_instance_types(who)
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    let got = c.compute.get_instance_type(who, "private.one").await;
    (!listed.contains(&"private.one".to_string()), got.is_err())
}

#[tokio::test]
async fn private_types_extra_specs_and_access() {
    for engine in ENGINES {
        let c = cloud(engine).await;
        let t = InstanceType {
            name: "private.one".into(),
            vcpus: 1,
            memory_mib: 128,
            disk_gib: 1,
            pids_limit: 1024,
            io_weight: 100,
            builtin: false,
            is_public: false,
            description: Some("d".into()),
            extra_specs: Default::default(),
        };
        assert_eq!(
            kind(c.compute.create_instance_type(&c.alpha, t.clone()).await),
            ErrorKind::Forbidden
        );
        c.compute
            .create_instance_type(&c.admin, t)
            .await
            .expect("create");
        assert_eq!(hidden(&c, &c.alpha).await, (true, true), "{engine}");
        assert_eq!(hidden(&c, &c.admin).await, (false, false), "{engine}");
        c.compute
            .add_instance_type_access(&c.admin, "private.one", "alpha")
            .await
            .expect("access");
        let again = c
            .compute
            .add_instance_type_access(&c.admin, "private.one", "alpha")
            .await;
        assert_eq!(kind(again), ErrorKind::Conflict);
        let public = c
            .compute
            .add_instance_type_access(&c.admin, "m1.tiny", "alpha")
            .await;
        assert_eq!(kind(public), ErrorKind::Conflict, "public: no access list");
        assert_eq!(hidden(&c, &c.alpha).await, (false, false), "{engine}");
        assert_eq!(hidden(&c, &c.beta).await, (true, true), "{engine}");
        // Launchable as it is visible: by alpha, not by beta (for whom the
        // type does not exist), and nothing launched for beta.
        for who in [&c.alpha, &c.beta] {
            let img = image(&c, who, "launch", true).await;
            let run = RunRequest {
                image_id: img,
                instance_type: "private.one".into(),
                ..Default::default()
            };
            let r = c.compute.run_instances(who, run).await;
            if who.project_id == c.alpha.project_id {
                assert_eq!(r.expect("alpha launches").len(), 1, "{engine}");
            } else {
                assert_eq!(kind(r), ErrorKind::Invalid, "{engine}");
            }
        }

        // Extra specs merge, all or nothing.
        c.compute
            .set_extra_specs(&c.admin, "private.one", specs(&[("a", "1"), ("b", "2")]))
            .await
            .expect("specs");
        c.compute
            .set_extra_specs(&c.admin, "private.one", specs(&[("b", "3")]))
            .await
            .expect("specs");
        let bad = c
            .compute
            .set_extra_specs(
                &c.admin,
                "private.one",
                specs(&[("c", "1"), ("bad/key", "x")]),
            )
            .await;
        assert_eq!(kind(bad), ErrorKind::Invalid);
        let theirs = c
            .compute
            .set_extra_specs(&c.alpha, "private.one", specs(&[("c", "1")]))
            .await;
        assert_eq!(kind(theirs), ErrorKind::Forbidden);
        let missing = c
            .compute
            .unset_extra_spec(&c.admin, "private.one", "zz")
            .await;
        assert_eq!(kind(missing), ErrorKind::NotFound);
        c.compute
            .unset_extra_spec(&c.admin, "private.one", "a")
            .await
            .expect("unset");
        let got = c
            .compute
            .get_instance_type(&c.alpha, "private.one")
            .await
            .expect("get");
        assert_eq!(got.extra_specs, specs(&[("b", "3")]), "{engine}");
        assert_eq!(got.description.as_deref(), Some("d"));

        // Merges at once: each lands or is refused (409), none is lost.
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let compute = c.compute.clone();
                let admin = c.admin.clone();
                tokio::spawn(async move {
                    let key = format!("k{i}");
                    let r = compute
                        .set_extra_specs(&admin, "private.one", specs(&[(key.as_str(), "v")]))
                        .await;
                    (key, r.map_err(|e| e.kind()))
                })
            })
            .collect();
        let mut landed = vec!["b".to_string()];
        for t in tasks {
            let (key, r) = t.await.expect("task");
            match r {
                Ok(_) => landed.push(key),
                Err(k) => assert_eq!(k, ErrorKind::Conflict, "{engine}"),
            }
        }
        landed.sort();
        let now = c.compute.get_instance_type(&c.admin, "private.one").await;
        let keys: Vec<String> = now.expect("get").extra_specs.into_keys().collect();
        assert_eq!(keys, landed, "{engine}: a merge was lost");
        for k in landed.iter().filter(|k| *k != "b") {
            c.compute
                .unset_extra_spec(&c.admin, "private.one", k)
                .await
                .expect("unset");
        }

        // Access removed: hidden again; a type made again after a delete
        // starts with no access list.
        c.compute
            .remove_instance_type_access(&c.admin, "private.one", "alpha")
            .await
            .expect("remove");
        assert_eq!(hidden(&c, &c.alpha).await, (true, true), "{engine}");
        c.compute
            .add_instance_type_access(&c.admin, "private.one", "beta")
            .await
            .expect("access");
        c.compute
            .delete_instance_type(&c.admin, "private.one")
            .await
            .expect("delete");
        c.compute
            .create_instance_type(&c.admin, got)
            .await
            .expect("again");
        let access = c
            .compute
            .instance_type_access(&c.admin, "private.one")
            .await
            .expect("list");
        assert_eq!(access, Vec::<String>::new(), "{engine}");
    }
}

/// An image of `who`'s: queued, or active from a rootfs upload.
async fn image(c: &Cloud, who: &Principal, name: &str, data: bool) -> String {
    let img = c
        .compute
        .create_image(
            who,
            NewImage {
                name: name.into(),
                visibility: None,
                architecture: None,
                properties: Default::default(),
            },
        )
        .await
        .expect("image");
    if data {
        let mut up = c.compute.begin_upload(who, &img.id).await.expect("upload");
        let bytes = rootfs();
        // In two chunks: the digests follow the stream, not one write.
        let (a, b) = bytes.split_at(1000);
        up.write(a.to_vec().into()).await.expect("write");
        up.write(b.to_vec().into()).await.expect("write");
        up.finish().await.expect("finish");
    }
    img.id
}

#[tokio::test]
async fn placement_groups_by_id_and_their_members() {
    for engine in ENGINES {
        let c = cloud(engine).await;
        let img = image(&c, &c.alpha, "img", true).await;
        let g = c
            .compute
            .create_placement_group(&c.alpha, "apart", "spread")
            .await
            .expect("group");
        assert_eq!(g.project_id, c.alpha.project_id);
        assert_eq!(g.user_id.as_deref(), Some("alice"));
        // By id or name for its project and admins; others do not find it.
        for key in [g.id.as_str(), "apart"] {
            let found = c.compute.get_placement_group(&c.alpha, key).await;
            assert_eq!(found.expect("found").id, g.id, "{engine}");
        }
        assert!(c.compute.get_placement_group(&c.admin, &g.id).await.is_ok());
        let r = c.compute.get_placement_group(&c.beta, &g.id).await;
        assert_eq!(kind(r), ErrorKind::NotFound);
        let r = c.compute.delete_placement_group(&c.beta, &g.id).await;
        assert_eq!(kind(r), ErrorKind::NotFound);
        let r = c.compute.list_all_placement_groups(&c.alpha).await;
        assert_eq!(kind(r), ErrorKind::Forbidden);
        c.compute
            .create_placement_group(&c.beta, "apart", "cluster")
            .await
            .expect("same name, another project");
        let all = c.compute.list_all_placement_groups(&c.admin).await;
        assert_eq!(all.expect("all").len(), 2, "{engine}");

        // Members: the instances launched into it. One node, anti-affinity:
        // a second member does not fit.
        let run = RunRequest {
            image_id: img.clone(),
            instance_type: "t2.nano".into(),
            placement_group: Some("apart".into()),
            ..Default::default()
        };
        let one = c
            .compute
            .run_instances(&c.alpha, run.clone())
            .await
            .expect("run");
        let members = c.compute.placement_group_members(&c.alpha, &g).await;
        assert_eq!(members.expect("members"), vec![one[0].id.clone()]);
        let second = c.compute.run_instances(&c.alpha, run).await;
        assert_eq!(kind(second), ErrorKind::InsufficientCapacity, "{engine}");
        let members = c.compute.placement_group_members(&c.alpha, &g).await;
        assert_eq!(members.expect("members").len(), 1);
        let r = c.compute.delete_placement_group(&c.alpha, &g.id).await;
        assert_eq!(kind(r), ErrorKind::Conflict);
        assert!(c.compute.get_placement_group(&c.alpha, &g.id).await.is_ok());
    }
}

#[tokio::test]
async fn image_tags_hashes_deactivation_and_community() {
    for engine in ENGINES {
        let c = cloud(engine).await;
        let id = image(&c, &c.alpha, "img", true).await;
        let data = rootfs();
        let img = c.compute.get_image(&c.alpha, &id).await.expect("get");
        assert_eq!(img.md5, Some(hex::encode(md5::Md5::digest(&data))));
        assert_eq!(img.sha512, Some(hex::encode(sha2::Sha512::digest(&data))));

        // Tags: a set, checked; a refused change changes nothing.
        c.compute
            .add_image_tag(&c.alpha, &id, "b")
            .await
            .expect("tag");
        c.compute
            .add_image_tag(&c.alpha, &id, "a")
            .await
            .expect("tag");
        c.compute
            .add_image_tag(&c.alpha, &id, "a")
            .await
            .expect("again");
        let patch = ImagePatch {
            tags: Some(vec!["ok".into(), String::new()]),
            ..Default::default()
        };
        let r = c.compute.update_image(&c.alpha, &id, patch).await;
        assert_eq!(kind(r), ErrorKind::Invalid);
        let r = c.compute.remove_image_tag(&c.alpha, &id, "zz").await;
        assert_eq!(kind(r), ErrorKind::NotFound);
        let r = c.compute.add_image_tag(&c.beta, &id, "x").await;
        assert_eq!(kind(r), ErrorKind::NotFound);
        let img = c.compute.get_image(&c.alpha, &id).await.expect("get");
        assert_eq!(img.tags, ["a", "b"], "{engine}");

        // Deactivated: not launched, its data for admins only.
        let off = c.compute.deactivate_image(&c.alpha, &id).await;
        assert_eq!(off.expect("deactivate").status, "deactivated");
        let run = RunRequest {
            image_id: id.clone(),
            instance_type: "t2.nano".into(),
            ..Default::default()
        };
        let r = c.compute.run_instances(&c.alpha, run.clone()).await;
        assert_eq!(kind(r), ErrorKind::Invalid);
        let r = c.compute.open_image_data(&c.alpha, &id).await;
        assert_eq!(kind(r), ErrorKind::Forbidden);
        assert!(c.compute.open_image_data(&c.admin, &id).await.is_ok());
        let r = c.compute.deactivate_image(&c.beta, &id).await;
        assert_eq!(kind(r), ErrorKind::NotFound);
        c.compute.reactivate_image(&c.alpha, &id).await.expect("on");
        let queued = image(&c, &c.alpha, "queued", false).await;
        let r = c.compute.reactivate_image(&c.alpha, &queued).await;
        assert_eq!(kind(r), ErrorKind::Conflict);
        let r = c.compute.deactivate_image(&c.alpha, &queued).await;
        assert_eq!(kind(r), ErrorKind::Conflict);

        // Community: others launch it by id, and list it only when asked.
        let community = ImagePatch {
            visibility: Some("community".into()),
            ..Default::default()
        };
        c.compute
            .update_image(&c.alpha, &id, community)
            .await
            .expect("community");
        let listed = |q: Option<&str>| nuage_compute::ImageQuery {
            visibility: q.map(String::from),
            ..Default::default()
        };
        let ids = |v: Vec<nuage_compute::types::Image>| -> Vec<String> {
            v.into_iter().map(|i| i.id).collect()
        };
        let unasked = c.compute.list_images(&c.beta, &listed(None)).await;
        assert_eq!(ids(unasked.expect("list")), Vec::<String>::new());
        let asked = c
            .compute
            .list_images(&c.beta, &listed(Some("community")))
            .await;
        assert_eq!(ids(asked.expect("list")), vec![id.clone()], "{engine}");
        let launched = c.compute.run_instances(&c.beta, run).await;
        assert_eq!(launched.expect("community launch").len(), 1);
        let r = c.compute.share_image(&c.alpha, &id, "beta").await;
        assert_eq!(kind(r), ErrorKind::Conflict, "community images: no members");
    }
}
