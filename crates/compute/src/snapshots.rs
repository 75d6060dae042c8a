//! New images from instances' root disks (EC2 CreateImage, Nova's
//! `createImage` server action): one core call every front door shares.
//!
//! The call checks, records the image `snapshotting` (EC2 `pending`) and
//! returns its id; a task then asks the instance's node for a tar of its
//! root disk ([`nuage_driver::ComputeDriver::snapshot`]), stores it as a
//! blob, unpacks it as an upload would, and makes the image `active`
//! (`available`), or `killed` (EC2 `failed`) with the reason logged.
//!
//! Bounds: two snapshots copy at once; at most 32 are accepted and not
//! finished, past which CreateImage is refused as busy (EC2 `Unavailable`,
//! Nova 503) instead of queueing without end.
//!
//! Crash safety: the image row is the only record of the work. A restart
//! finds rows still `snapshotting` (their task died with the process) and
//! marks them `killed`; the blob being written lives in the image store's
//! `tmp/`, which opening the store empties, and a blob finished but not
//! yet recorded is unreferenced data that the image collector removes.
//! See `docs/adr/0028-create-image.md`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use nuage_identity::policy::{authorize, Rule};
use nuage_image::BlobWriter;
use nuage_model::identity::Principal;
use serde::Deserialize;

use crate::error::Resource;
use crate::images::check_name;
use crate::types::{Image, Instance, Launch, State, Visibility};
use crate::{now, repo, Compute, ComputeError, ComputeResult};

/// The status of an image whose data a snapshot task is making.
pub const SNAPSHOTTING: &str = "snapshotting";
/// The status of an image whose making failed (Glance's name; EC2 `failed`).
pub const KILLED: &str = "killed";

/// What a new image from an instance is given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSnapshot {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Tags (EC2 `TagSpecification` of type `image`), kept as properties.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl Compute {
    /// Starts a new image of the instance's root disk and returns it
    /// `snapshotting`. The instance must be running or stopped (its disk
    /// is on its node); a running one is held still for the copy by its
    /// driver, never rebooted. The image belongs to the caller's project
    /// and takes the source image's launch configuration and architecture.
    pub async fn create_image_from_instance(
        &self,
        caller: &Principal,
        instance_id: &str,
        new: NewSnapshot,
    ) -> ComputeResult<Image> {
        let inst = self.get_instance(caller, instance_id).await?;
        authorize(
            caller,
            "compute:create_image",
            Rule::ProjectWrite(&inst.project_id),
        )?;
        authorize(
            caller,
            "image:add_image",
            Rule::ProjectWrite(&caller.project_id),
        )?;
        check_name(&new.name)?;
        if !matches!(inst.state, State::Running | State::Stopped) {
            return Err(ComputeError::IncorrectState {
                id: inst.id.clone(),
                state: inst.state,
                action: "create an image of",
                hint: "; an image is made of a running or stopped instance",
            });
        }
        if new.properties.len() > 100 {
            return Err(ComputeError::invalid(
                "an image made from an instance takes at most 100 tags",
            ));
        }
        // Held by the task until it ends: the bound on accepted work.
        let queued = self
            .inner
            .snapshot_queue
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                ComputeError::Busy(format!(
                    "{} images from instances are already being made; retry when one is done",
                    crate::SNAPSHOTS_QUEUED
                ))
            })?;
        let source = repo::get_image(self.db().reader(), &inst.image_id).await?;
        let mut properties = new.properties;
        // Nova's properties of a snapshot image.
        properties.insert("image_type".into(), "snapshot".into());
        properties.insert("instance_uuid".into(), inst.id.clone());
        if let Some(d) = new.description {
            properties.insert("description".into(), d);
        }
        let image = Image {
            id: nuage_model::id::ec2("ami"),
            name: new.name.clone(),
            status: SNAPSHOTTING.into(),
            format: None,
            architecture: source.as_ref().and_then(|s| s.architecture.clone()),
            size: None,
            sha256: None,
            md5: None,
            sha512: None,
            tags: Vec::new(),
            visibility: Visibility::Private,
            owner: caller.project_id.clone(),
            members: Vec::new(),
            properties,
            command: Vec::new(),
            launch: source.map(|s| s.launch).unwrap_or_default(),
            created_at: String::new(),
            version: 1,
        };
        repo::insert_image(self.db().writer(), &image, now())
            .await
            .map_err(|e| match e {
                nuage_store::StoreError::AlreadyExists { .. } => {
                    ComputeError::already_exists(Resource::Image, &new.name)
                }
                e => e.into(),
            })?;
        let stored = repo::get_image(self.db().reader(), &image.id)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::Image, &image.id))?;
        let this = self.clone();
        let task_image = stored.clone();
        tokio::spawn(async move {
            let _queued = queued;
            let id = task_image.id.clone();
            let result = this.make_snapshot(&inst, task_image).await;
            if let Err(e) = result {
                tracing::warn!(image = %id, instance = %inst.id, error = %e, "image from instance failed");
                this.fail_snapshot(&id).await;
            }
        });
        Ok(stored)
    }

    /// The snapshot task: the node's tar into a blob, unpacked, recorded.
    async fn make_snapshot(&self, inst: &Instance, image: Image) -> ComputeResult<()> {
        let _slot = self
            .inner
            .snapshot_slots
            .acquire()
            .await
            .map_err(|e| ComputeError::internal("waiting for a snapshot slot", e))?;
        let agent = self.agent(&inst.node).ok_or_else(|| {
            ComputeError::Internal(format!(
                "the node {} of instance {} is not connected",
                inst.node, inst.id
            ))
        })?;
        let spec = crate::reconcile::InstanceReconciler {
            compute: self.clone(),
        }
        .spec(inst)
        .await?;
        let writer = Arc::new(Mutex::new(Some(self.inner.images.writer()?)));
        agent
            .snapshot(&spec, Box::new(SharedWriter(writer.clone())))
            .await
            .map_err(|e| ComputeError::driver(&inst.id, "snapshotting", e))?;
        let w = writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| ComputeError::Internal("the snapshot's blob writer is gone".into()))?;
        let _guard = self.inner.blob_gc.read().await;
        let store = self.inner.images.clone();
        let (blob, unpacked) = tokio::task::spawn_blocking(move || -> ComputeResult<_> {
            let blob = w.finish()?;
            let unpacked = store.unpack(&blob.sha256)?;
            Ok((blob, unpacked))
        })
        .await
        .map_err(|e| ComputeError::internal("unpacking the snapshot", e))??;
        let mut done = repo::get_image(self.db().reader(), &image.id)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::Image, &image.id))?;
        if done.status != SNAPSHOTTING {
            return Err(ComputeError::conflict(format!(
                "image {} is {} now",
                done.id, done.status
            )));
        }
        done.status = "active".into();
        done.sha256 = Some(blob.sha256);
        done.size = Some(blob.size as i64);
        done.format = Some(unpacked.format.as_str().to_string());
        if done.architecture.is_none() {
            done.architecture = unpacked.architecture.clone();
        }
        if done.launch.command.is_empty() {
            done.launch = Launch {
                command: unpacked.config.command.clone(),
                env: unpacked.config.env.clone(),
                workdir: unpacked.config.workdir.clone(),
            };
        }
        if !repo::update_image(self.db().writer(), &done, now()).await? {
            return Err(ComputeError::conflict(format!(
                "image {} changed while it was made",
                done.id
            )));
        }
        tracing::info!(image = %done.id, instance = %inst.id, size = blob.size, "image from instance available");
        Ok(())
    }

    /// Marks a snapshot image `killed` (if it still exists and is being
    /// made) and removes data nothing references.
    async fn fail_snapshot(&self, id: &str) {
        for _ in 0..5 {
            let image = match repo::get_image(self.db().reader(), id).await {
                Ok(Some(i)) if i.status == SNAPSHOTTING => i,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(image = %id, error = %e, "failed snapshot: image not read");
                    break;
                }
            };
            let mut failed = image;
            failed.status = KILLED.into();
            match repo::update_image(self.db().writer(), &failed, now()).await {
                Ok(true) => break,
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(image = %id, error = %e, "failed snapshot: image not marked killed");
                    break;
                }
            }
        }
        self.collect_images().await;
    }
}

/// The blob writer shared with the driver's blocking thread, so that the
/// task can finish the blob once the driver has written it.
struct SharedWriter(Arc<Mutex<Option<BlobWriter>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(w) => w.write(buf),
            None => Err(std::io::Error::other("the snapshot's blob writer is gone")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}
