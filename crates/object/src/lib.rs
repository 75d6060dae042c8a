//! nuage's object engine (S3 and Swift in the course): buckets owned by
//! projects, objects with metadata, multipart uploads, durable on the local
//! disk. The S3 and Swift front doors are two dialects over it, so an object
//! written through one is read through the other.
//!
//! Durability (see [`data`] and [`meta`]): an object's bytes are fsynced in
//! `tmp/` (file and directory) before its metadata commits, and the commit
//! is fsynced before the request is acknowledged. An overwrite is one
//! commit that swaps the row: readers see the old or the new object, and a
//! reader that opened the old bytes keeps reading them. A crash never shows
//! a partial object: an uncommitted segment is not reachable, and is
//! removed at the next start. Bucket names are global, as S3's; see
//! `docs/adr/0010-object-storage.md`.

mod account;
pub mod checksum;
pub mod conditions;
mod data;
mod error;
mod fastmd5;
mod meta;
mod multipart;
mod objects;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use nuage_identity::policy::{authorize, Rule};
use nuage_identity::Identity;
use nuage_model::identity::Principal;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

pub use conditions::{Condition, Conditional, Conditions, Unmet};
pub use data::{FileSpan, Segments, SPAN};
pub use error::{ObjectError, ObjectResult};
pub use multipart::{CompletePart, PartInfo, PartsPage, UploadInfo, UploadsPage};
pub use objects::{
    kept_headers, ByteRange, ChecksumSpec, CopySource, ListPage, ListQuery, MetadataDirective,
    ObjectBody, ObjectMeta, ObjectSummary, PutOptions, RangeSpec, KEPT_HEADERS,
};

/// Largest single PUT (S3's limit), and largest part.
pub const MAX_OBJECT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Smallest part but the last (S3's 5 MiB).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Longest key, in bytes (S3 and Swift).
pub const MAX_KEY_LEN: usize = 1024;
/// Longest bucket (container) name, in bytes.
pub const MAX_BUCKET_NAME_LEN: usize = 255;
/// Most bytes of metadata names and values kept on one bucket, object or
/// account.
pub const MAX_META_SIZE: usize = 8 * 1024;
/// Incomplete multipart uploads are aborted after this long.
pub const DEFAULT_UPLOAD_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Who may use a bucket or an object besides its project: S3's canned
/// ACLs. On a bucket ([`Bucket::acl`]), reading is listing it (S3's bucket
/// READ), never reading its objects; writing is putting, copying into and
/// deleting objects (never changing the bucket or its ACLs: that stays
/// with the project). On an object, and as a bucket's
/// [`Bucket::object_acl`], reading is reading the object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Acl {
    /// Only the owning project (S3's `private`, Swift's default).
    #[default]
    Private,
    /// Anyone, even anonymous, may read (S3's `public-read`; Swift's
    /// `.rlistings` on a bucket, `.r:*` as its object ACL).
    PublicRead,
    /// Anyone, even anonymous, may read and write (S3's
    /// `public-read-write`; objects written so belong to the bucket's
    /// project and count in its quota).
    PublicReadWrite,
    /// Any authenticated caller, of any project, may read (S3's
    /// `authenticated-read`; Swift's `*:*` sets it on both the bucket and
    /// its object ACL).
    AuthenticatedRead,
}

impl Acl {
    pub fn as_str(self) -> &'static str {
        match self {
            Acl::Private => "private",
            Acl::PublicRead => "public-read",
            Acl::PublicReadWrite => "public-read-write",
            Acl::AuthenticatedRead => "authenticated-read",
        }
    }

    pub fn is_private(&self) -> bool {
        *self == Acl::Private
    }

    pub fn parse(s: &str) -> Option<Acl> {
        [
            Acl::Private,
            Acl::PublicRead,
            Acl::PublicReadWrite,
            Acl::AuthenticatedRead,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
    }

    /// Whether a caller outside the project may read (`authenticated`:
    /// whether it has credentials at all).
    pub fn lets_read(self, authenticated: bool) -> bool {
        match self {
            Acl::Private => false,
            Acl::PublicRead | Acl::PublicReadWrite => true,
            Acl::AuthenticatedRead => authenticated,
        }
    }

    /// Whether anyone may write a bucket's objects.
    pub fn lets_write(self) -> bool {
        self == Acl::PublicReadWrite
    }
}

/// What a caller wants of a bucket, for [`ObjectStore::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Listing it (its objects, its uploads), heading it: the bucket's ACL.
    List,
    /// Reading any of its objects: the bucket's object ACL (an object's
    /// own ACL may open it further, see `objects::admit`).
    ReadObjects,
    /// Putting, copying into, deleting its objects.
    Write,
    /// Changing or deleting the bucket, setting ACLs: the project only.
    Owner,
}

/// A bucket (an S3 bucket, a Swift container).
#[derive(Debug, Clone, Serialize)]
pub struct Bucket {
    pub name: String,
    pub project_id: String,
    pub created_ms: i64,
    /// Who else may list the bucket, or write its objects.
    pub acl: Acl,
    /// Who else may read every object of the bucket, whatever the object's
    /// own ACL (Swift's `.r:*`); S3 has no such grant and its canned ACLs
    /// set it back to private.
    pub object_acl: Acl,
    pub region: String,
    /// Swift's `X-Container-Meta-*`, lowercase names without the prefix.
    pub meta: BTreeMap<String, String>,
    pub objects: i64,
    pub bytes: i64,
}

/// Options of a new bucket.
#[derive(Debug, Clone)]
pub struct NewBucket {
    pub name: String,
    pub acl: Acl,
    pub meta: BTreeMap<String, String>,
}

/// A change to a bucket's ACL or metadata.
#[derive(Debug, Clone, Default)]
pub struct BucketPatch {
    /// A new ACL replaces the whole ACL: the object ACL becomes
    /// `object_acl`, private when that is `None`.
    pub acl: Option<Acl>,
    /// Only with `acl`.
    pub object_acl: Option<Acl>,
    /// `None` values remove the entry.
    pub meta: BTreeMap<String, Option<String>>,
}

/// A page of an account's buckets: names with `prefix`, strictly between
/// `after` and `before`, `max` at most.
#[derive(Debug, Clone, Default)]
pub struct AccountQuery {
    pub prefix: String,
    pub after: Option<String>,
    pub before: Option<String>,
    pub max: usize,
}

/// How the engine is set up.
#[derive(Debug, Clone)]
pub struct ObjectConfig {
    pub region: String,
    pub upload_expiry: Duration,
}

/// The object engine; cheap to clone.
#[derive(Clone)]
pub struct ObjectStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore").finish_non_exhaustive()
    }
}

struct Inner {
    meta: meta::Meta,
    data: data::DataDir,
    identity: Identity,
    config: ObjectConfig,
    /// Every bucket, by name: the engine is the only writer of its store,
    /// so this is never stale. Counters are updated after each commit.
    buckets: RwLock<HashMap<String, Arc<Mutex<Bucket>>>>,
    /// Woken when segments were put in the garbage table.
    garbage: Arc<Notify>,
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl ObjectStore {
    /// Opens the engine in `dir` (created if needed) and repairs what a
    /// crash left: renames of committed segments are finished, uncommitted
    /// ones and garbage are removed, expired uploads are aborted. Then
    /// starts the background collector.
    pub async fn open(
        dir: &Path,
        identity: Identity,
        config: ObjectConfig,
    ) -> ObjectResult<ObjectStore> {
        std::fs::create_dir_all(dir)
            .map_err(|e| ObjectError::internal(format!("creating {}", dir.display()), e))?;
        let data = data::DataDir::open(dir)?;
        // Tenants' metadata: 0600 (SQLite gives its WAL and shared-memory
        // files the database's mode).
        let db = dir.join("objects.db");
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&db)
            .and_then(|_| std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)))
            .map_err(|e| ObjectError::internal(format!("creating {}", db.display()), e))?;
        let meta = meta::Meta::open(&db)?;
        let store = ObjectStore {
            inner: Arc::new(Inner {
                meta,
                data,
                identity,
                config,
                buckets: RwLock::new(HashMap::new()),
                garbage: Arc::new(Notify::new()),
            }),
        };
        store.recover_tmp().await?;
        store.collect_garbage().await?;
        store.load_buckets().await?;
        store.expire_uploads().await?;
        let weak = Arc::downgrade(&store.inner);
        let wake = store.inner.garbage.clone();
        tokio::spawn(async move {
            loop {
                let notified = wake.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let Some(inner) = weak.upgrade() else { return };
                    if let Err(e) = (ObjectStore { inner }).collect_garbage().await {
                        tracing::warn!(error = %e, "object garbage collection");
                    }
                }
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep(Duration::from_secs(600)) => {
                        let Some(inner) = weak.upgrade() else { return };
                        if let Err(e) = (ObjectStore { inner }).expire_uploads().await {
                            tracing::warn!(error = %e, "expiring multipart uploads");
                        }
                    }
                }
            }
        });
        Ok(store)
    }

    async fn recover_tmp(&self) -> ObjectResult<()> {
        let ids = self.inner.data.tmp_ids()?;
        if ids.is_empty() {
            return Ok(());
        }
        let lookup = ids.clone();
        let committed: Vec<bool> = self
            .inner
            .meta
            .read(move |c| {
                let mut st = c.prepare_cached("SELECT 1 FROM segments WHERE id = ?1")?;
                let mut out = Vec::with_capacity(lookup.len());
                for id in &lookup {
                    out.push(st.exists(params![id])?);
                }
                Ok(out)
            })
            .await?;
        let (mut moved, mut removed) = (0, 0);
        for (id, c) in ids.iter().zip(committed) {
            self.inner.data.recover(id, c)?;
            if c {
                moved += 1;
            } else {
                removed += 1;
            }
        }
        tracing::info!(
            moved,
            removed,
            "object segments left by an interrupted write recovered"
        );
        Ok(())
    }

    /// Removes the files of garbage segments, then their rows.
    async fn collect_garbage(&self) -> ObjectResult<()> {
        loop {
            let ids: Vec<String> = self
                .inner
                .meta
                .read(|c| {
                    let mut st = c.prepare_cached("SELECT id FROM garbage LIMIT 1000")?;
                    let rows = st.query_map([], |r| r.get(0))?;
                    Ok(rows.collect::<Result<Vec<String>, _>>()?)
                })
                .await?;
            if ids.is_empty() {
                return Ok(());
            }
            let data = self.inner.data.clone();
            let done = ids.clone();
            tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                for id in &done {
                    data.remove(id)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| ObjectError::internal("removing garbage", e))??;
            let n = ids.len();
            self.inner
                .meta
                .write(move |c| {
                    let mut st = c.prepare_cached("DELETE FROM garbage WHERE id = ?1")?;
                    for id in &ids {
                        st.execute(params![id])?;
                    }
                    Ok(())
                })
                .await?;
            if n < 1000 {
                return Ok(());
            }
        }
    }

    async fn load_buckets(&self) -> ObjectResult<()> {
        let all = self
            .inner
            .meta
            .read(|c| {
                let mut st = c.prepare(
                    "SELECT name, project_id, created_ms, acl, region, meta, objects, bytes, object_acl FROM buckets",
                )?;
                let rows = st.query_map([], bucket_row)?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        let mut map = self
            .inner
            .buckets
            .write()
            .map_err(|_| ObjectError::Internal("bucket cache poisoned".into()))?;
        for b in all {
            map.insert(b.name.clone(), Arc::new(Mutex::new(b)));
        }
        Ok(())
    }

    pub(crate) fn notify_garbage(&self) {
        self.inner.garbage.notify_one();
    }

    /// The bucket, if it exists.
    pub(crate) fn bucket_entry(&self, name: &str) -> ObjectResult<Arc<Mutex<Bucket>>> {
        self.inner
            .buckets
            .read()
            .map_err(|_| ObjectError::Internal("bucket cache poisoned".into()))?
            .get(name)
            .cloned()
            .ok_or_else(|| ObjectError::NoSuchBucket(name.to_string()))
    }

    pub(crate) fn bucket_snapshot(&self, name: &str) -> ObjectResult<Bucket> {
        let e = self.bucket_entry(name)?;
        let b = e
            .lock()
            .map_err(|_| ObjectError::Internal("bucket cache poisoned".into()))?
            .clone();
        Ok(b)
    }

    /// Applies a committed change of a bucket's counters to the cache.
    pub(crate) fn count(&self, bucket: &str, objects: i64, bytes: i64) {
        if let Ok(e) = self.bucket_entry(bucket) {
            if let Ok(mut b) = e.lock() {
                b.objects += objects;
                b.bytes += bytes;
            }
        }
    }

    /// Checks `action` on `bucket` for `caller` (None: anonymous): what
    /// the bucket's ACL opens to others is open; everything else follows
    /// the project policy.
    pub(crate) fn check(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        action: &str,
        access: Access,
    ) -> ObjectResult<Bucket> {
        let b = self.bucket_snapshot(bucket)?;
        let open = match access {
            Access::List => b.acl.lets_read(caller.is_some()),
            Access::ReadObjects => b.object_acl.lets_read(caller.is_some()),
            Access::Write => b.acl.lets_write(),
            Access::Owner => false,
        };
        if open {
            return Ok(b);
        }
        let Some(p) = caller else {
            return Err(ObjectError::AccessDenied(format!(
                "anonymous access to {bucket} is not allowed"
            )));
        };
        let rule = match access {
            Access::List | Access::ReadObjects => Rule::ProjectRead(&b.project_id),
            Access::Write | Access::Owner => Rule::ProjectWrite(&b.project_id),
        };
        authorize_as(p, action, rule).map(|()| b)
    }

    pub(crate) fn meta(&self) -> &meta::Meta {
        &self.inner.meta
    }

    pub(crate) fn data(&self) -> &data::DataDir {
        &self.inner.data
    }

    pub(crate) fn inner_upload_expiry_ms(&self) -> i64 {
        self.inner.config.upload_expiry.as_millis() as i64
    }

    pub fn region(&self) -> &str {
        &self.inner.config.region
    }

    /// The byte quota of `project` (-1: unlimited).
    pub(crate) async fn bytes_quota(&self, project: &str) -> ObjectResult<i64> {
        Ok(self.inner.identity.quota_limit(project, "bytes").await?)
    }

    // ---------------------------------------------------------------- buckets

    /// Creates a bucket owned by the caller's project. Names are global:
    /// one taken by another project is refused.
    pub async fn create_bucket(&self, caller: &Principal, new: NewBucket) -> ObjectResult<Bucket> {
        let project = caller.project_id.clone();
        self.create_bucket_in(caller, &project, new, Acl::Private)
            .await
    }

    /// Creates a bucket owned by `project` (Swift's account of the path),
    /// whose objects `object_acl` opens: the policy decides whether the
    /// caller may create there (an admin may, in any project that exists).
    pub async fn create_bucket_in(
        &self,
        caller: &Principal,
        project: &str,
        new: NewBucket,
        object_acl: Acl,
    ) -> ObjectResult<Bucket> {
        validate_bucket_name(&new.name)?;
        let project = project.to_string();
        authorize_as(caller, "object:create_bucket", Rule::ProjectWrite(&project))?;
        if project != caller.project_id {
            // A bucket of a project that does not exist would be nobody's.
            self.inner.identity.get_project(caller, &project).await?;
        }
        if let Ok(b) = self.bucket_snapshot(&new.name) {
            return Err(if b.project_id == project {
                ObjectError::BucketAlreadyOwnedByYou(new.name)
            } else {
                ObjectError::BucketAlreadyExists(new.name)
            });
        }
        let limit = self.inner.identity.quota_limit(&project, "buckets").await?;
        let b = Bucket {
            name: new.name.clone(),
            project_id: project.clone(),
            created_ms: now_ms(),
            acl: new.acl,
            object_acl,
            region: self.inner.config.region.clone(),
            meta: new.meta,
            objects: 0,
            bytes: 0,
        };
        let row = b.clone();
        self.inner
            .meta
            .write(move |c| {
                if let Some(owner) = c
                    .query_row(
                        "SELECT project_id FROM buckets WHERE name = ?1",
                        params![row.name],
                        |r| r.get::<_, String>(0),
                    )
                    .optional()?
                {
                    return Err(if owner == row.project_id {
                        ObjectError::BucketAlreadyOwnedByYou(row.name.clone())
                    } else {
                        ObjectError::BucketAlreadyExists(row.name.clone())
                    });
                }
                if limit >= 0 {
                    let n: i64 = c.query_row(
                        "SELECT COUNT(*) FROM buckets WHERE project_id = ?1",
                        params![row.project_id],
                        |r| r.get(0),
                    )?;
                    if n >= limit {
                        return Err(ObjectError::QuotaExceeded(format!(
                            "the project has {n} buckets, its quota"
                        )));
                    }
                }
                c.execute(
                    "INSERT INTO buckets (name, project_id, created_ms, acl, region, meta, object_acl) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        row.name,
                        row.project_id,
                        row.created_ms,
                        row.acl.as_str(),
                        row.region,
                        serde_json::to_string(&row.meta)?,
                        row.object_acl.as_str()
                    ],
                )?;
                Ok(())
            })
            .await?;
        self.inner
            .buckets
            .write()
            .map_err(|_| ObjectError::Internal("bucket cache poisoned".into()))?
            .insert(b.name.clone(), Arc::new(Mutex::new(b.clone())));
        tracing::info!(bucket = %b.name, project = %b.project_id, "bucket created");
        Ok(b)
    }

    /// The bucket, if the caller may read it (no I/O: buckets are cached).
    pub fn head_bucket(&self, caller: Option<&Principal>, name: &str) -> ObjectResult<Bucket> {
        self.check(caller, name, "object:head_bucket", Access::List)
    }

    /// Swift's account rule: a container is reached through the account
    /// (project) that owns it only; through any other it does not exist.
    /// Checks nothing about the caller (each operation does).
    pub fn in_account(&self, project: &str, name: &str) -> ObjectResult<()> {
        match self.bucket_snapshot(name) {
            Ok(b) if b.project_id == project => Ok(()),
            Ok(_) | Err(ObjectError::NoSuchBucket(_)) => {
                Err(ObjectError::NoSuchBucket(name.to_string()))
            }
            Err(e) => Err(e),
        }
    }

    /// A page of `project`'s buckets, by name (Swift's account listing).
    pub async fn list_account(
        &self,
        caller: &Principal,
        project: &str,
        q: &AccountQuery,
    ) -> ObjectResult<Vec<Bucket>> {
        let all = self.list_project_buckets(caller, project).await?;
        Ok(all
            .into_iter()
            .filter(|b| b.name.starts_with(&q.prefix))
            .filter(|b| q.after.as_ref().is_none_or(|a| &b.name > a))
            .filter(|b| q.before.as_ref().is_none_or(|e| &b.name < e))
            .take(q.max)
            .collect())
    }

    /// The buckets of the caller's project, by name.
    pub async fn list_buckets(&self, caller: &Principal) -> ObjectResult<Vec<Bucket>> {
        self.list_project_buckets(caller, &caller.project_id.clone())
            .await
    }

    /// The buckets of `project`, by name.
    pub async fn list_project_buckets(
        &self,
        caller: &Principal,
        project: &str,
    ) -> ObjectResult<Vec<Bucket>> {
        authorize_as(caller, "object:list_buckets", Rule::ProjectRead(project))?;
        let map = self
            .inner
            .buckets
            .read()
            .map_err(|_| ObjectError::Internal("bucket cache poisoned".into()))?;
        let mut out: Vec<Bucket> = map
            .values()
            .filter_map(|e| e.lock().ok().map(|b| b.clone()))
            .filter(|b| b.project_id == project)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Deletes an empty bucket (no objects, no multipart uploads).
    pub async fn delete_bucket(&self, caller: &Principal, name: &str) -> ObjectResult<()> {
        self.check(Some(caller), name, "object:delete_bucket", Access::Owner)?;
        let n = name.to_string();
        self.inner
            .meta
            .write(move |c| {
                let busy = c
                    .prepare_cached("SELECT 1 FROM objects WHERE bucket = ?1 LIMIT 1")?
                    .exists(params![n])?
                    || c.prepare_cached("SELECT 1 FROM uploads WHERE bucket = ?1 LIMIT 1")?
                        .exists(params![n])?;
                if busy {
                    return Err(ObjectError::BucketNotEmpty(n.clone()));
                }
                if c.execute("DELETE FROM buckets WHERE name = ?1", params![n])? == 0 {
                    return Err(ObjectError::NoSuchBucket(n.clone()));
                }
                Ok(())
            })
            .await?;
        self.inner
            .buckets
            .write()
            .map_err(|_| ObjectError::Internal("bucket cache poisoned".into()))?
            .remove(name);
        tracing::info!(bucket = %name, "bucket deleted");
        Ok(())
    }

    /// Changes a bucket's ACL or metadata.
    pub async fn update_bucket(
        &self,
        caller: &Principal,
        name: &str,
        patch: BucketPatch,
    ) -> ObjectResult<Bucket> {
        let mut b = self.check(Some(caller), name, "object:update_bucket", Access::Owner)?;
        if let Some(acl) = patch.acl {
            b.acl = acl;
            b.object_acl = patch.object_acl.unwrap_or(Acl::Private);
        }
        for (k, v) in patch.meta {
            match v {
                Some(v) => b.meta.insert(k, v),
                None => b.meta.remove(&k),
            };
        }
        check_meta_size(&b.meta)?;
        let row = b.clone();
        self.inner
            .meta
            .write(move |c| {
                c.execute(
                    "UPDATE buckets SET acl = ?2, meta = ?3, object_acl = ?4 WHERE name = ?1",
                    params![
                        row.name,
                        row.acl.as_str(),
                        serde_json::to_string(&row.meta)?,
                        row.object_acl.as_str()
                    ],
                )?;
                Ok(())
            })
            .await?;
        let e = self.bucket_entry(name)?;
        let mut cur = e
            .lock()
            .map_err(|_| ObjectError::Internal("bucket cache poisoned".into()))?;
        cur.acl = b.acl;
        cur.object_acl = b.object_acl;
        cur.meta = b.meta.clone();
        Ok(cur.clone())
    }

    /// Buckets and bytes used by `project`.
    pub fn usage(&self, project: &str) -> (i64, i64) {
        let Ok(map) = self.inner.buckets.read() else {
            return (0, 0);
        };
        map.values()
            .filter_map(|e| e.lock().ok().map(|b| (b.project_id == project, b.bytes)))
            .filter(|(mine, _)| *mine)
            .fold((0, 0), |(n, bytes), (_, b)| (n + 1, bytes + b))
    }

    /// Checks every stored segment of `bucket` against its checksum; returns
    /// the keys found corrupted (and marks them so they are not served).
    pub async fn verify_bucket(
        &self,
        caller: &Principal,
        bucket: &str,
    ) -> ObjectResult<Vec<String>> {
        self.check(Some(caller), bucket, "object:verify", Access::Owner)?;
        objects::verify_bucket(self, bucket).await
    }

    /// What would be lost or leaked: `(orphans, missing)`, both empty on a
    /// sound store. Orphans are files in `data/` and `tmp/` that no row
    /// references, and segments counted more often than objects and parts
    /// name them (never freed). Missing are committed segments whose file
    /// is gone, and segments named more often than counted, or named
    /// without a row (freed while in use). For tests and `nuage object
    /// fsck`: it walks everything.
    pub async fn fsck(&self) -> ObjectResult<(Vec<String>, Vec<String>)> {
        let data = self.inner.data.clone();
        let mut files = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<String>> {
            let mut v = data.data_ids()?;
            v.extend(data.tmp_ids()?);
            Ok(v)
        })
        .await
        .map_err(|e| ObjectError::internal("walking object data", e))??;
        files.sort();
        let (rows, leaked, freed) = self
            .inner
            .meta
            .read(|c| {
                let mut st =
                    c.prepare("SELECT id FROM segments UNION SELECT id FROM garbage ORDER BY 1")?;
                let rows = st.query_map([], |r| r.get(0))?;
                let rows = rows.collect::<Result<Vec<String>, _>>()?;
                // Who names each segment: objects (a copy shares them) and
                // parts of uploads in progress.
                let mut named: HashMap<String, i64> = HashMap::new();
                let mut st = c.prepare("SELECT segments FROM objects")?;
                for segs in st.query_map([], |r| r.get::<_, String>(0))? {
                    let segs: Vec<objects::Seg> = serde_json::from_str(&segs?)?;
                    for seg in segs {
                        *named.entry(seg.id).or_default() += 1;
                    }
                }
                let mut st = c.prepare("SELECT segment FROM parts")?;
                for seg in st.query_map([], |r| r.get::<_, String>(0))? {
                    *named.entry(seg?).or_default() += 1;
                }
                let (mut leaked, mut freed) = (Vec::new(), Vec::new());
                let mut st = c.prepare("SELECT id, refs FROM segments")?;
                let counted =
                    st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
                for row in counted {
                    let (id, refs) = row?;
                    let n = named.remove(&id).unwrap_or(0);
                    if refs > n {
                        leaked.push(format!("{id} (counted {refs}, named {n})"));
                    } else if refs < n {
                        freed.push(format!("{id} (counted {refs}, named {n})"));
                    }
                }
                freed.extend(named.into_keys().map(|id| format!("{id} (named, no row)")));
                Ok((rows, leaked, freed))
            })
            .await?;
        let mut orphans: Vec<String> = files
            .iter()
            .filter(|f| rows.binary_search(f).is_err())
            .cloned()
            .collect();
        orphans.extend(leaked);
        let mut missing: Vec<String> = rows
            .iter()
            .filter(|r| files.binary_search(r).is_err())
            .cloned()
            .collect();
        missing.extend(freed);
        Ok((orphans, missing))
    }
}

fn bucket_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Bucket> {
    let acl: String = r.get(3)?;
    let meta: String = r.get(5)?;
    Ok(Bucket {
        name: r.get(0)?,
        project_id: r.get(1)?,
        created_ms: r.get(2)?,
        acl: Acl::parse(&acl).unwrap_or(Acl::Private),
        region: r.get(4)?,
        meta: serde_json::from_str(&meta).unwrap_or_default(),
        objects: r.get(6)?,
        bytes: r.get(7)?,
        object_acl: Acl::parse(&r.get::<_, String>(8)?).unwrap_or(Acl::Private),
    })
}

/// The engine's own rule, shared by both dialects: 1 to 255 bytes, no `/`,
/// no control characters. S3's stricter DNS rule is the S3 dialect's.
pub fn validate_bucket_name(name: &str) -> ObjectResult<()> {
    if name.is_empty() || name.len() > MAX_BUCKET_NAME_LEN {
        return Err(ObjectError::InvalidBucketName(format!(
            "bucket names are 1 to 255 bytes; {:?} is {}",
            name,
            name.len()
        )));
    }
    if name.contains('/') || name.chars().any(char::is_control) {
        return Err(ObjectError::InvalidBucketName(format!(
            "bucket name {name:?} contains '/' or a control character"
        )));
    }
    Ok(())
}

/// Keys: 1 to 1024 bytes of UTF-8 (they arrive as `&str`).
pub fn validate_key(key: &str) -> ObjectResult<()> {
    if key.is_empty() {
        return Err(ObjectError::InvalidArgument("the key is empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ObjectError::KeyTooLong(key.len()));
    }
    Ok(())
}

/// User metadata is limited as S3's (2 KiB of names and values).
/// The project policy's answer, as the engine's error.
pub(crate) fn authorize_as(caller: &Principal, action: &str, rule: Rule<'_>) -> ObjectResult<()> {
    authorize(caller, action, rule).map_err(|e| ObjectError::AccessDenied(e.to_string()))
}

pub(crate) fn check_meta_size(meta: &BTreeMap<String, String>) -> ObjectResult<()> {
    let n: usize = meta.iter().map(|(k, v)| k.len() + v.len()).sum();
    if n > MAX_META_SIZE {
        return Err(ObjectError::InvalidArgument(format!(
            "metadata is {n} bytes; at most 8 KiB is kept"
        )));
    }
    Ok(())
}
