//! Images (Glance, EC2 AMIs): registration, upload and unpacking,
//! visibility and sharing, deletion.
//!
//! An image row is created `queued`; its data is uploaded once (`saving`),
//! checked and unpacked, and the image becomes `active`. Data is stored by
//! content digest, so two images of the same bytes share one blob and one
//! unpacked tree, and every instance of an image shares that tree as the
//! lower layer of its overlay. Deleting an image that instances still use
//! is refused (409): the instance store lives on that tree.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;

use bytes::Bytes;
use nuage_identity::policy::{authorize, Rule};
use nuage_image::BlobWriter;
use nuage_model::identity::Principal;
use serde::Deserialize;

use crate::error::Resource;
use crate::types::{Image, Launch, Visibility};
use crate::{now, repo, Compute, ComputeError, ComputeResult};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewImage {
    pub name: String,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagePatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub visibility: Option<String>,
    /// Properties set (merged into the image's; Glance's custom
    /// properties, EC2's description).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Properties removed (after the ones set are merged).
    #[serde(default)]
    pub remove_properties: Vec<String>,
    /// The image's tags, replaced whole.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

/// Most tags on one image (Glance's `image_tag_quota` default).
pub const MAX_IMAGE_TAGS: usize = 128;

/// Tags are 1 to 255 characters without control characters, at most
/// [`MAX_IMAGE_TAGS`]; duplicates collapse (Glance's tags are a set).
pub(crate) fn check_image_tags(tags: Vec<String>) -> ComputeResult<Vec<String>> {
    for t in &tags {
        if t.is_empty() || t.chars().count() > 255 || t.chars().any(char::is_control) {
            return Err(ComputeError::invalid(format!(
                "image tag {t:?} is not 1 to 255 characters without control characters"
            )));
        }
    }
    let mut tags = tags;
    tags.sort();
    tags.dedup();
    if tags.len() > MAX_IMAGE_TAGS {
        return Err(ComputeError::QuotaExceeded(format!(
            "an image has at most {MAX_IMAGE_TAGS} tags"
        )));
    }
    Ok(tags)
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ImageQuery {
    pub name: Option<String>,
    pub visibility: Option<String>,
    /// `self` or a project id.
    pub owner: Option<String>,
}

pub(crate) fn check_name(name: &str) -> ComputeResult<()> {
    let bad = |reason| ComputeError::InvalidName {
        kind: Resource::Image,
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control() || c == '/') {
        return Err(bad(
            "an image name is 1 to 128 characters, without '/' or control characters",
        ));
    }
    if name.starts_with("ami-") {
        return Err(bad(
            "an image name may not start with ami- (that is how ids look)",
        ));
    }
    Ok(())
}

fn parse_visibility(v: &str, caller: &Principal) -> ComputeResult<Visibility> {
    let vis = Visibility::parse(v).ok_or_else(|| {
        ComputeError::invalid(format!(
            "visibility {v:?} is not private, shared, community or public"
        ))
    })?;
    if vis == Visibility::Public {
        authorize(caller, "image:publicize_image", Rule::Admin)?;
    }
    Ok(vis)
}

/// May `caller` see (and launch) `image`?
fn visible(caller: &Principal, image: &Image) -> bool {
    caller.is_admin()
        || image.owner == caller.project_id
        || image.visibility == Visibility::Public
        || image.visibility == Visibility::Community
        || (image.visibility == Visibility::Shared && image.members.contains(&caller.project_id))
}

impl Compute {
    pub async fn create_image(&self, caller: &Principal, new: NewImage) -> ComputeResult<Image> {
        authorize(
            caller,
            "image:add_image",
            Rule::ProjectWrite(&caller.project_id),
        )?;
        check_name(&new.name)?;
        let visibility = match &new.visibility {
            Some(v) => parse_visibility(v, caller)?,
            None => Visibility::Private,
        };
        if let Some(a) = &new.architecture {
            a.parse::<nuage_scheduler::Arch>()
                .map_err(ComputeError::Invalid)?;
        }
        let image = Image {
            id: nuage_model::id::ec2("ami"),
            name: new.name,
            status: "queued".into(),
            format: None,
            architecture: new.architecture,
            size: None,
            sha256: None,
            md5: None,
            sha512: None,
            tags: Vec::new(),
            visibility,
            owner: caller.project_id.clone(),
            members: Vec::new(),
            properties: new.properties,
            command: Vec::new(),
            launch: Launch::default(),
            created_at: String::new(),
            version: 1,
        };
        repo::insert_image(self.db().writer(), &image, now())
            .await
            .map_err(|e| match e {
                nuage_store::StoreError::AlreadyExists { .. } => {
                    ComputeError::already_exists(Resource::Image, &image.name)
                }
                e => e.into(),
            })?;
        self.load_image(&image.id).await
    }

    async fn load_image(&self, id: &str) -> ComputeResult<Image> {
        let mut image = repo::get_image(self.db().reader(), id)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::Image, id))?;
        image.members = repo::image_members(self.db().reader())
            .await?
            .remove(id)
            .unwrap_or_default();
        Ok(image)
    }

    /// The image named by id (`ami-…`) or name, if `caller` may see it. A
    /// name resolves to the caller's own image first, then to a visible one.
    pub async fn get_image(&self, caller: &Principal, id_or_name: &str) -> ComputeResult<Image> {
        authorize(
            caller,
            "image:get_image",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let missing = || ComputeError::not_found(Resource::Image, id_or_name);
        if id_or_name.starts_with("ami-") {
            let image = self.load_image(id_or_name).await.map_err(|_| missing())?;
            return if visible(caller, &image) {
                Ok(image)
            } else {
                Err(missing())
            };
        }
        let members = repo::image_members(self.db().reader()).await?;
        let mut candidates: Vec<Image> = repo::images_named(self.db().reader(), id_or_name)
            .await?
            .into_iter()
            .map(|mut i| {
                i.members = members.get(&i.id).cloned().unwrap_or_default();
                i
            })
            .filter(|i| visible(caller, i))
            .collect();
        candidates.sort_by_key(|i| {
            (
                i.owner != caller.project_id,
                i.visibility != Visibility::Public,
                i.visibility == Visibility::Community,
            )
        });
        candidates.into_iter().next().ok_or_else(missing)
    }

    pub async fn list_images(
        &self,
        caller: &Principal,
        q: &ImageQuery,
    ) -> ComputeResult<Vec<Image>> {
        authorize(
            caller,
            "image:get_images",
            Rule::ProjectRead(&caller.project_id),
        )?;
        let members = repo::image_members(self.db().reader()).await?;
        let owner = q.owner.as_deref().map(|o| {
            if o == "self" {
                caller.project_id.as_str()
            } else {
                o
            }
        });
        Ok(repo::list_images(self.db().reader())
            .await?
            .into_iter()
            .map(|mut i| {
                i.members = members.get(&i.id).cloned().unwrap_or_default();
                i
            })
            .filter(|i| visible(caller, i))
            // Others' community images are listed only when asked for.
            .filter(|i| {
                i.visibility != Visibility::Community
                    || i.owner == caller.project_id
                    || caller.is_admin()
                    || q.visibility.as_deref() == Some("community")
            })
            .filter(|i| q.name.as_deref().is_none_or(|n| i.name == n))
            .filter(|i| {
                q.visibility
                    .as_deref()
                    .is_none_or(|v| i.visibility.as_str() == v)
            })
            .filter(|i| owner.is_none_or(|o| i.owner == o))
            .collect())
    }

    /// The caller's own image (or any, for admins), for changes.
    async fn owned_image(
        &self,
        caller: &Principal,
        id_or_name: &str,
        action: &str,
    ) -> ComputeResult<Image> {
        let image = self.get_image(caller, id_or_name).await?;
        authorize(caller, action, Rule::ProjectWrite(&image.owner)).map_err(|_| {
            ComputeError::Identity(nuage_identity::IdentityError::Forbidden {
                action: action.into(),
                reason: format!("image {} belongs to another project", image.id),
            })
        })?;
        Ok(image)
    }

    pub async fn update_image(
        &self,
        caller: &Principal,
        id: &str,
        patch: ImagePatch,
    ) -> ComputeResult<Image> {
        let mut image = self.owned_image(caller, id, "image:modify_image").await?;
        if let Some(n) = patch.name {
            check_name(&n)?;
            image.name = n;
        }
        if let Some(v) = patch.visibility {
            image.visibility = parse_visibility(&v, caller)?;
        }
        if patch.properties.len() + image.properties.len() > 128 {
            return Err(ComputeError::invalid("an image has at most 128 properties"));
        }
        image.properties.extend(patch.properties);
        for k in &patch.remove_properties {
            if image.properties.remove(k).is_none() {
                return Err(ComputeError::invalid(format!(
                    "image {} has no property {k} to remove",
                    image.id
                )));
            }
        }
        if let Some(tags) = patch.tags {
            image.tags = check_image_tags(tags)?;
        }
        if !repo::update_image(self.db().writer(), &image, now()).await? {
            return Err(ComputeError::conflict(format!(
                "image {} changed meanwhile; read it again and retry",
                image.id
            )));
        }
        self.load_image(&image.id).await
    }

    /// Adds a tag (nothing changes if the image has it already).
    pub async fn add_image_tag(
        &self,
        caller: &Principal,
        id: &str,
        tag: &str,
    ) -> ComputeResult<Image> {
        let mut image = self.owned_image(caller, id, "image:modify_image").await?;
        if image.tags.iter().any(|t| t == tag) {
            return Ok(image);
        }
        let mut tags = image.tags.clone();
        tags.push(tag.to_string());
        image.tags = check_image_tags(tags)?;
        self.save_image(&image).await
    }

    /// Removes a tag; not found if the image does not have it.
    pub async fn remove_image_tag(
        &self,
        caller: &Principal,
        id: &str,
        tag: &str,
    ) -> ComputeResult<Image> {
        let mut image = self.owned_image(caller, id, "image:modify_image").await?;
        let before = image.tags.len();
        image.tags.retain(|t| t != tag);
        if image.tags.len() == before {
            return Err(ComputeError::not_found(Resource::ImageTag, tag));
        }
        self.save_image(&image).await
    }

    /// Deactivates an active image (admins and its owner): it can no
    /// longer be launched, and only admins may download its data, until
    /// it is reactivated. Deactivating a deactivated image changes nothing.
    pub async fn deactivate_image(&self, caller: &Principal, id: &str) -> ComputeResult<Image> {
        let mut image = self.owned_image(caller, id, "image:deactivate").await?;
        match image.status.as_str() {
            "deactivated" => return Ok(image),
            "active" => {}
            other => {
                return Err(ComputeError::conflict(format!(
                    "image {} is {other}; only an active image can be deactivated",
                    image.id
                )))
            }
        }
        image.status = "deactivated".into();
        self.save_image(&image).await
    }

    /// Makes a deactivated image active again (admins and its owner).
    pub async fn reactivate_image(&self, caller: &Principal, id: &str) -> ComputeResult<Image> {
        let mut image = self.owned_image(caller, id, "image:reactivate").await?;
        match image.status.as_str() {
            "active" => return Ok(image),
            "deactivated" => {}
            other => {
                return Err(ComputeError::conflict(format!(
                    "image {} is {other}; only a deactivated image can be reactivated",
                    image.id
                )))
            }
        }
        image.status = "active".into();
        self.save_image(&image).await
    }

    /// Writes a changed image if nobody changed it meanwhile.
    async fn save_image(&self, image: &Image) -> ComputeResult<Image> {
        if !repo::update_image(self.db().writer(), image, now()).await? {
            return Err(ComputeError::conflict(format!(
                "image {} changed meanwhile; read it again and retry",
                image.id
            )));
        }
        self.load_image(&image.id).await
    }

    pub async fn share_image(
        &self,
        caller: &Principal,
        id: &str,
        project: &str,
    ) -> ComputeResult<Image> {
        let image = self.owned_image(caller, id, "image:add_member").await?;
        if matches!(image.visibility, Visibility::Public | Visibility::Community) {
            return Err(ComputeError::conflict(format!(
                "image {} is {}: only private and shared images have members",
                image.id,
                image.visibility.as_str()
            )));
        }
        let p = self
            .inner
            .identity
            .find_project(project, None)
            .await?
            .ok_or_else(|| ComputeError::not_found(Resource::Project, project))?;
        repo::add_member(self.db().writer(), &image.id, &p.id, now()).await?;
        if image.visibility == Visibility::Private {
            let mut i = self.load_image(&image.id).await?;
            i.visibility = Visibility::Shared;
            repo::update_image(self.db().writer(), &i, now()).await?;
        }
        self.load_image(&image.id).await
    }

    pub async fn unshare_image(
        &self,
        caller: &Principal,
        id: &str,
        project: &str,
    ) -> ComputeResult<()> {
        let image = self.owned_image(caller, id, "image:delete_member").await?;
        let pid = match self.inner.identity.find_project(project, None).await? {
            Some(p) => p.id,
            None => project.to_string(),
        };
        if !repo::remove_member(self.db().writer(), &image.id, &pid).await? {
            return Err(ComputeError::NotShared {
                image: image.id.clone(),
                project: project.to_string(),
            });
        }
        Ok(())
    }

    /// Deletes an image; refused while an instance not yet terminated uses it.
    pub async fn delete_image(&self, caller: &Principal, id: &str) -> ComputeResult<()> {
        let image = self.owned_image(caller, id, "image:delete_image").await?;
        let mut tx = self.db().begin().await?;
        let users = repo::instances_using_image(&mut *tx, &image.id).await?;
        if users > 0 {
            return Err(ComputeError::conflict(format!(
                "image {} is in use by {users} instance(s); terminate them first",
                image.id
            )));
        }
        repo::delete_image(&mut *tx, &image.id).await?;
        tx.commit().await.map_err(nuage_store::StoreError::from)?;
        self.collect_images().await;
        Ok(())
    }

    /// Starts the upload of an image's data: the image must be `queued`.
    pub async fn begin_upload(&self, caller: &Principal, id: &str) -> ComputeResult<Upload> {
        let mut image = self.owned_image(caller, id, "image:upload_image").await?;
        if image.status != "queued" {
            return Err(ComputeError::conflict(format!(
                "image {} is {}; data can only be uploaded to a queued image",
                image.id, image.status
            )));
        }
        image.status = "saving".into();
        if !repo::update_image(self.db().writer(), &image, now()).await? {
            return Err(ComputeError::conflict(format!(
                "image {} is being uploaded by another request",
                image.id
            )));
        }
        image.version += 1;
        let writer = self.inner.images.writer()?;
        Ok(Upload {
            compute: self.clone(),
            image,
            writer: Some((writer, Hashes::default())),
            done: false,
        })
    }

    /// Removes stored image data that no image references any more.
    pub(crate) async fn collect_images(&self) {
        let _guard = self.inner.blob_gc.write().await;
        let keep: HashSet<String> = match repo::live_digests(self.db().reader()).await {
            Ok(d) => d.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "image collection skipped");
                return;
            }
        };
        let store = self.inner.images.clone();
        match tokio::task::spawn_blocking(move || store.gc(&keep)).await {
            Ok(Ok(removed)) if !removed.is_empty() => {
                tracing::info!(blobs = removed.len(), "unreferenced image data removed")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "image collection failed"),
            Err(e) => tracing::warn!(error = %e, "image collection panicked"),
        }
    }
}

/// The digests Glance shows besides the blob's own SHA-256, computed as
/// the data streams in (no second read of the file).
#[derive(Default)]
struct Hashes {
    md5: md5::Md5,
    sha512: sha2::Sha512,
}

impl Hashes {
    fn update(&mut self, chunk: &[u8]) {
        use sha2::Digest as _;
        self.md5.update(chunk);
        self.sha512.update(chunk);
    }

    fn finish(self) -> (String, String) {
        use sha2::Digest as _;
        (
            hex::encode(self.md5.finalize()),
            hex::encode(self.sha512.finalize()),
        )
    }
}

/// An upload in progress. Dropped without [`Upload::finish`], the image
/// returns to `queued` and the partial data is removed.
pub struct Upload {
    compute: Compute,
    image: Image,
    writer: Option<(BlobWriter, Hashes)>,
    done: bool,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("image", &self.image.id)
            .finish()
    }
}

impl Upload {
    pub fn image_id(&self) -> &str {
        &self.image.id
    }

    /// Appends a chunk of the archive (written off the async threads).
    pub async fn write(&mut self, chunk: Bytes) -> ComputeResult<()> {
        let (mut w, mut hashes) = self
            .writer
            .take()
            .ok_or_else(|| ComputeError::Internal("upload already failed".into()))?;
        let (w, hashes, r) = tokio::task::spawn_blocking(move || {
            hashes.update(&chunk);
            let r = w.write_all(&chunk);
            (w, hashes, r)
        })
        .await
        .map_err(|e| ComputeError::internal("writing image data", e))?;
        r.map_err(|e| ComputeError::internal("writing image data", e))?;
        self.writer = Some((w, hashes));
        Ok(())
    }

    /// Stores the data durably, checks and unpacks it, and makes the image
    /// active. A corrupted or unsupported archive is refused with the
    /// reason and the image stays `queued`.
    pub async fn finish(mut self) -> ComputeResult<Image> {
        match self.complete().await {
            Ok(image) => Ok(image),
            Err(e) => {
                self.reset().await;
                Err(e)
            }
        }
    }

    /// Gives up: the image is `queued` again once this returns, so the
    /// caller's error response never races the reset.
    pub async fn abort(mut self) {
        self.reset().await;
    }

    async fn reset(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        self.writer = None;
        let mut image = self.image.clone();
        image.status = "queued".into();
        if let Err(e) = repo::update_image(self.compute.db().writer(), &image, now()).await {
            tracing::warn!(image = %image.id, error = %e, "failed upload: image not reset to queued");
        }
    }

    async fn complete(&mut self) -> ComputeResult<Image> {
        let (w, hashes) = self
            .writer
            .take()
            .ok_or_else(|| ComputeError::Internal("upload already failed".into()))?;
        let (md5, sha512) = hashes.finish();
        let compute = self.compute.clone();
        let _guard = compute.inner.blob_gc.read().await;
        let store = compute.inner.images.clone();
        let result = tokio::task::spawn_blocking(move || -> ComputeResult<_> {
            let blob = w.finish()?;
            match store.unpack(&blob.sha256) {
                Ok(u) => Ok((blob, u)),
                Err(e) => {
                    let _ = store.remove(&blob.sha256);
                    Err(e.into())
                }
            }
        })
        .await
        .map_err(|e| ComputeError::internal("unpacking the image", e))??;
        let (blob, unpacked) = result;
        let mut image = self.image.clone();
        image.status = "active".into();
        image.sha256 = Some(blob.sha256);
        image.md5 = Some(md5);
        image.sha512 = Some(sha512);
        image.size = Some(blob.size as i64);
        image.format = Some(unpacked.format.as_str().to_string());
        if image.architecture.is_none() {
            image.architecture = unpacked.architecture.clone();
        }
        image.launch = Launch {
            command: unpacked.config.command.clone(),
            env: unpacked.config.env.clone(),
            workdir: unpacked.config.workdir.clone(),
        };
        if !repo::update_image(compute.db().writer(), &image, now()).await? {
            return Err(ComputeError::conflict(format!(
                "image {} changed during the upload",
                image.id
            )));
        }
        self.done = true;
        compute.load_image(&image.id).await
    }
}

/// The fallback when the request is dropped mid-upload (client gone): the
/// reset cannot be awaited here, so it is spawned.
impl Drop for Upload {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let compute = self.compute.clone();
        let mut image = self.image.clone();
        image.status = "queued".into();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = repo::update_image(compute.db().writer(), &image, now()).await {
                    tracing::warn!(image = %image.id, error = %e, "failed upload: image not reset to queued");
                }
            });
        }
    }
}
