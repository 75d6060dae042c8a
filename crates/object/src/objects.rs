//! Objects: put, get (whole or a range), head, delete, copy, list, and
//! metadata updates.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;
use nuage_model::identity::Principal;
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::checksum::{self, Algorithm, Expected};
use crate::conditions::{Condition, Conditional, Conditions, Unmet};
use crate::data::{DataDir, Piece, Segments, Want};
use crate::error::{ObjectError, ObjectResult};
use crate::{check_meta_size, now_ms, validate_key, Access, Acl, ObjectStore, MAX_OBJECT_SIZE};

/// Bodies up to this size are read in the lookup's blocking call.
const SMALL_READ: u64 = 256 * 1024;

/// What a client asks to be checked or kept about an upload's checksum.
#[derive(Debug, Clone)]
pub enum ChecksumSpec {
    /// The client sent this value: verify it, and keep it.
    Verify(Expected),
    /// The value was verified upstream (an aws-chunked trailer): compute
    /// and keep it.
    Compute(Algorithm),
}

/// The HTTP headers stored with an object and given back on GET and HEAD:
/// those S3 (PutObject) and Swift (the object server's `allowed_headers`)
/// both document, so an object written through one dialect reads the same
/// through the other, and a browser reading a public object gets its
/// encoding and disposition. Every other header a client sends is not kept
/// (Swift's `X-Robots-Tag` neither: S3 has no such header).
pub const KEPT_HEADERS: [&str; 5] = [
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
];

/// The kept headers among `headers`, by lowercase name, the first of a
/// repeated one; the engine keeps only these, whatever a dialect passes.
/// An empty value means nothing and is not kept (it is how Swift's POST
/// removes one).
pub fn kept_headers<K: AsRef<str>, V: AsRef<str>>(
    headers: impl IntoIterator<Item = (K, V)>,
) -> BTreeMap<String, String> {
    let mut kept = BTreeMap::new();
    for (k, v) in headers {
        let k = k.as_ref().to_ascii_lowercase();
        let v = v.as_ref().trim();
        if KEPT_HEADERS.contains(&k.as_str()) && !v.is_empty() {
            kept.entry(k).or_insert_with(|| v.to_string());
        }
    }
    kept
}

/// What accompanies an object's bytes.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    /// `x-amz-meta-*` / `X-Object-Meta-*`, lowercase names without prefix.
    pub user_meta: BTreeMap<String, String>,
    /// Stored HTTP headers given back on GET: content-encoding,
    /// content-disposition, content-language, cache-control, expires.
    pub headers: BTreeMap<String, String>,
    /// The exact length declared (Content-Length or
    /// x-amz-decoded-content-length).
    pub content_length: Option<u64>,
    pub content_md5: Option<[u8; 16]>,
    pub checksum: Option<ChecksumSpec>,
    /// The payload sha256 the signature covered, to check.
    pub content_sha256: Option<[u8; 32]>,
    /// The object's canned ACL (S3's `x-amz-acl`); private when absent.
    pub acl: Option<Acl>,
    /// Store only if no object has the key (`If-None-Match: *` in both
    /// dialects): checked in the commit, so of two racing writers one
    /// fails with [`ObjectError::ConditionFailed`] and nothing of its is
    /// kept. The body is read first: refusing after an await but before
    /// the body left HTTP/1 connections of clients that sent `Expect:
    /// 100-continue` (boto3) out of step, their next request read as
    /// garbage (a 400).
    pub if_none_match: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Seg {
    pub id: String,
    pub size: u64,
    pub crc: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct StoredMeta {
    #[serde(default)]
    user: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The object's canned ACL.
    #[serde(default, skip_serializing_if = "Acl::is_private")]
    acl: Acl,
}

impl StoredMeta {
    fn of(o: &ObjectMeta) -> StoredMeta {
        StoredMeta {
            user: o.user_meta.clone(),
            headers: o.headers.clone(),
            acl: o.acl,
        }
    }
}

/// An object's metadata.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectMeta {
    pub bucket: String,
    pub key: String,
    pub size: u64,
    /// Hex MD5, or `<hex>-<parts>` for a multipart object; without quotes.
    pub etag: String,
    pub content_type: String,
    pub modified_ms: i64,
    pub user_meta: BTreeMap<String, String>,
    pub headers: BTreeMap<String, String>,
    /// The additional checksum the client gave, base64.
    pub checksum: Option<(Algorithm, String)>,
    /// Number of parts of a multipart object.
    pub parts: Option<u32>,
    /// Who may read the object besides its bucket's readers: public-read
    /// opens it to anyone, even in a private bucket.
    pub acl: Acl,
    #[serde(skip)]
    pub(crate) segments: Vec<Seg>,
}

impl ObjectMeta {
    /// Whether an `If-Match`-style list of ETags (quoted or not, `*` for
    /// any) names this object's.
    pub fn etag_matches(&self, list: &str) -> bool {
        crate::conditions::list_matches(list, &self.etag, false)
    }
}

/// Why the bucket does not open its objects to a caller, for [`admit`].
pub(crate) struct Denied {
    refusal: ObjectError,
    /// Whether the caller may list the bucket, and so learn which keys
    /// exist.
    may_list: bool,
}

/// What a read gives a caller the bucket refuses (`denied`): only an
/// object whose ACL lets it read (`authenticated`: whether the caller has
/// credentials); a missing key is `NoSuchKey` to a caller who may list the
/// bucket (S3's rule), and the bucket's refusal to anyone else, so that it
/// learns nothing more.
fn admit<T>(
    denied: Option<Denied>,
    authenticated: bool,
    r: ObjectResult<T>,
    meta: impl Fn(&T) -> &ObjectMeta,
) -> ObjectResult<T> {
    match (denied, r) {
        (None, r) => r,
        (Some(_), Ok(x)) if meta(&x).acl.lets_read(authenticated) => Ok(x),
        (Some(d), Err(e @ ObjectError::NoSuchKey(_))) if d.may_list => Err(e),
        (Some(d), _) => Err(d.refusal),
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectSummary {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub modified_ms: i64,
    pub content_type: String,
}

/// A listing request. `after` is exclusive (S3's marker, start-after and
/// decoded continuation token; Swift's marker).
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub after: Option<String>,
    /// Entries (objects and common prefixes) at most; 0 gives an empty,
    /// truncated-if-anything page.
    pub max: usize,
}

/// A page of a listing, in byte order of the keys.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListPage {
    pub objects: Vec<ObjectSummary>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or prefix returned: the `after` of the next page.
    pub next: Option<String>,
}

/// A `Range:` request, before it is resolved against the object's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=first-[last]`, inclusive.
    From { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// Parses an HTTP `Range` header of one range; `None` if it is not
    /// of that form (S3 then ignores it and sends everything).
    pub fn parse(header: &str) -> Option<RangeSpec> {
        let spec = header.trim().strip_prefix("bytes=")?;
        if spec.contains(',') {
            return None;
        }
        let (a, b) = spec.split_once('-')?;
        let (a, b) = (a.trim(), b.trim());
        if a.is_empty() {
            return b.parse().ok().map(RangeSpec::Suffix);
        }
        let first = a.parse().ok()?;
        let last = if b.is_empty() {
            None
        } else {
            Some(b.parse().ok()?)
        };
        if last.is_some_and(|l| l < first) {
            return None;
        }
        Some(RangeSpec::From { first, last })
    }

    /// The byte range this means for an object of `size` bytes.
    pub fn resolve(self, size: u64) -> ObjectResult<ByteRange> {
        match self {
            RangeSpec::From { first, last } => {
                if first >= size {
                    return Err(ObjectError::InvalidRange(size));
                }
                let last = last.map_or(size - 1, |l| l.min(size - 1));
                Ok(ByteRange {
                    start: first,
                    end: last + 1,
                    size,
                })
            }
            RangeSpec::Suffix(n) => {
                if n == 0 || size == 0 {
                    return Err(ObjectError::InvalidRange(size));
                }
                Ok(ByteRange {
                    start: size.saturating_sub(n),
                    end: size,
                    size,
                })
            }
        }
    }
}

/// A resolved range: bytes `start..end` of an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
    pub size: u64,
}

impl ByteRange {
    /// `Content-Range` value.
    pub fn content_range(&self) -> String {
        format!("bytes {}-{}/{}", self.start, self.end - 1, self.size)
    }
}

/// The bytes of a GET: in memory when small, else opened segment files.
pub enum ObjectBody {
    Full(Bytes),
    Segments(Segments),
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ObjectBody::Full(b) => write!(f, "ObjectBody::Full({} bytes)", b.len()),
            ObjectBody::Segments(s) => s.fmt(f),
        }
    }
}

impl ObjectBody {
    /// The bytes as a stream, whichever form they are in.
    pub fn into_stream(self) -> Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>> {
        match self {
            ObjectBody::Full(b) => Box::pin(futures_util::stream::iter([Ok(b)])),
            ObjectBody::Segments(s) => Box::pin(s.into_bytes()),
        }
    }

    /// Everything, gathered (for tests and small internal reads).
    pub async fn collect(self) -> io::Result<Vec<u8>> {
        use futures_util::StreamExt;
        match self {
            ObjectBody::Full(b) => Ok(b.to_vec()),
            ObjectBody::Segments(s) => {
                let mut s = std::pin::pin!(s.into_bytes());
                let mut out = Vec::new();
                while let Some(c) = s.next().await {
                    out.extend_from_slice(&c?);
                }
                Ok(out)
            }
        }
    }
}

/// Where a copy reads from.
#[derive(Debug, Clone)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    /// Copy only if the source's ETag matches one of these (S3's
    /// `x-amz-copy-source-if-match`, `*` for any).
    pub if_match: Option<String>,
    /// Copy only if the source's ETag matches none of these.
    pub if_none_match: Option<String>,
}

impl CopySource {
    /// A copy of `bucket/key` with no condition.
    pub fn new(bucket: impl Into<String>, key: impl Into<String>) -> CopySource {
        CopySource {
            bucket: bucket.into(),
            key: key.into(),
            if_match: None,
            if_none_match: None,
        }
    }

    /// The conditions on the source, checked against the version the copy
    /// reads (so no other version can slip in between).
    pub(crate) fn check(&self, source: &ObjectMeta) -> ObjectResult<()> {
        if self
            .if_match
            .as_deref()
            .is_some_and(|v| !source.etag_matches(v))
        {
            return Err(ObjectError::PreconditionFailed(
                "the source's ETag does not match x-amz-copy-source-if-match".into(),
            ));
        }
        if self
            .if_none_match
            .as_deref()
            .is_some_and(|v| source.etag_matches(v))
        {
            return Err(ObjectError::PreconditionFailed(
                "the source's ETag matches x-amz-copy-source-if-none-match".into(),
            ));
        }
        Ok(())
    }
}

/// S3's x-amz-metadata-directive.
#[derive(Debug, Clone)]
pub enum MetadataDirective {
    Copy,
    Replace {
        content_type: Option<String>,
        user_meta: BTreeMap<String, String>,
        headers: BTreeMap<String, String>,
    },
}

pub(crate) const OBJECT_COLUMNS: &str =
    "bucket, key, size, etag, content_type, modified_ms, meta, checksum, parts, segments, corrupt";

pub(crate) fn object_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(ObjectMeta, bool)> {
    let meta: String = r.get(6)?;
    let meta: StoredMeta = serde_json::from_str(&meta).unwrap_or_default();
    let checksum: Option<String> = r.get(7)?;
    let segments: String = r.get(9)?;
    let size: i64 = r.get(2)?;
    let parts: Option<i64> = r.get(8)?;
    let corrupt: i64 = r.get(10)?;
    Ok((
        ObjectMeta {
            bucket: r.get(0)?,
            key: r.get(1)?,
            size: size as u64,
            etag: r.get(3)?,
            content_type: r.get(4)?,
            modified_ms: r.get(5)?,
            user_meta: meta.user,
            headers: meta.headers,
            checksum: checksum.and_then(|c| {
                let (a, v) = c.split_once(':')?;
                Some((Algorithm::from_name(a)?, v.to_string()))
            }),
            parts: parts.map(|p| p as u32),
            acl: meta.acl,
            segments: serde_json::from_str(&segments).unwrap_or_default(),
        },
        corrupt != 0,
    ))
}

pub(crate) fn load_object(
    c: &Connection,
    bucket: &str,
    key: &str,
) -> ObjectResult<Option<(ObjectMeta, bool)>> {
    let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 AND key = ?2");
    Ok(c.prepare_cached(&sql)?
        .query_row(params![bucket, key], object_row)
        .optional()?)
}

/// Drops one reference to a segment; the last one sends it to the garbage.
/// Returns whether it did.
pub(crate) fn unref(c: &Connection, id: &str) -> ObjectResult<bool> {
    let refs: Option<i64> = c
        .prepare_cached("SELECT refs FROM segments WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?;
    match refs {
        Some(n) if n > 1 => {
            c.prepare_cached("UPDATE segments SET refs = refs - 1 WHERE id = ?1")?
                .execute(params![id])?;
            Ok(false)
        }
        Some(_) => {
            c.prepare_cached("DELETE FROM segments WHERE id = ?1")?
                .execute(params![id])?;
            c.prepare_cached("INSERT OR IGNORE INTO garbage (id) VALUES (?1)")?
                .execute(params![id])?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Checks the byte quota inside a commit: `add` more bytes for `project`.
pub(crate) fn check_bytes_quota(
    c: &Connection,
    project: &str,
    limit: i64,
    add: i64,
) -> ObjectResult<()> {
    if limit < 0 || add <= 0 {
        return Ok(());
    }
    let used: i64 = c
        .prepare_cached("SELECT COALESCE(SUM(bytes), 0) FROM buckets WHERE project_id = ?1")?
        .query_row(params![project], |r| r.get(0))?;
    if used + add > limit {
        return Err(ObjectError::QuotaExceeded(format!(
            "the project stores {used} bytes; {add} more would pass its quota of {limit}"
        )));
    }
    Ok(())
}

/// Writes `meta` as the object at its bucket and key, replacing what was
/// there, inside a commit. Returns the change of the bucket's counters and
/// whether segments went to the garbage.
pub(crate) fn replace_object(
    c: &Connection,
    project: &str,
    quota: i64,
    meta: &ObjectMeta,
) -> ObjectResult<(i64, i64, bool)> {
    let exists = c
        .prepare_cached("SELECT 1 FROM buckets WHERE name = ?1")?
        .exists(params![meta.bucket])?;
    if !exists {
        return Err(ObjectError::NoSuchBucket(meta.bucket.clone()));
    }
    let old = load_object(c, &meta.bucket, &meta.key)?;
    let old_size = old.as_ref().map_or(0, |(o, _)| o.size as i64);
    check_bytes_quota(c, project, quota, meta.size as i64 - old_size)?;
    let mut garbage = false;
    if let Some((o, _)) = &old {
        for s in &o.segments {
            garbage |= unref(c, &s.id)?;
        }
    }
    let stored = StoredMeta::of(meta);
    let sql = format!(
        "INSERT OR REPLACE INTO objects ({OBJECT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 0)"
    );
    c.prepare_cached(&sql)?.execute(params![
        meta.bucket,
        meta.key,
        meta.size as i64,
        meta.etag,
        meta.content_type,
        meta.modified_ms,
        serde_json::to_string(&stored)?,
        meta.checksum
            .as_ref()
            .map(|(a, v)| format!("{}:{v}", a.header_suffix())),
        meta.parts.map(i64::from),
        serde_json::to_string(&meta.segments)?,
    ])?;
    let d_objects = if old.is_some() { 0 } else { 1 };
    let d_bytes = meta.size as i64 - old_size;
    c.prepare_cached(
        "UPDATE buckets SET objects = objects + ?2, bytes = bytes + ?3 WHERE name = ?1",
    )?
    .execute(params![meta.bucket, d_objects, d_bytes])?;
    Ok((d_objects, d_bytes, garbage))
}

/// Checks the digests a client declared against what was computed.
pub(crate) fn check_digests(
    opts: &PutOptions,
    w: &crate::data::Written,
) -> ObjectResult<Option<(Algorithm, String)>> {
    if let Some(md5) = opts.content_md5 {
        if md5 != w.md5 {
            return Err(ObjectError::BadDigest);
        }
    }
    if let Some(sha) = opts.content_sha256 {
        if Some(sha) != w.sha256 {
            return Err(ObjectError::ContentSha256Mismatch);
        }
    }
    match &opts.checksum {
        None => Ok(None),
        Some(ChecksumSpec::Verify(e)) => {
            if w.extra.as_deref() != Some(e.digest.as_slice()) {
                return Err(ObjectError::ChecksumMismatch(e.algorithm.header_suffix()));
            }
            Ok(Some((e.algorithm, checksum::to_base64(&e.digest))))
        }
        Some(ChecksumSpec::Compute(a)) => {
            Ok(w.extra.as_deref().map(|d| (*a, checksum::to_base64(d))))
        }
    }
}

pub(crate) fn want(opts: &PutOptions, max: u64) -> Want {
    Want {
        sha256: opts.content_sha256.is_some(),
        extra: opts.checksum.as_ref().map(|c| match c {
            ChecksumSpec::Verify(e) => e.algorithm,
            ChecksumSpec::Compute(a) => *a,
        }),
        declared: opts.content_length,
        max,
    }
}

fn default_content_type(ct: Option<String>) -> String {
    ct.filter(|c| !c.is_empty())
        .unwrap_or_else(|| "binary/octet-stream".to_string())
}

impl ObjectStore {
    /// Stores an object, replacing any of the same key, once its bytes and
    /// metadata are on disk. Declared digests are checked first: a mismatch
    /// stores nothing.
    pub async fn put_object<S, E>(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        key: &str,
        opts: PutOptions,
        body: S,
    ) -> ObjectResult<ObjectMeta>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<ObjectError>,
    {
        validate_key(key)?;
        check_meta_size(&opts.user_meta)?;
        let b = self.check(caller, bucket, "object:put_object", Access::Write)?;
        if let Some(len) = opts.content_length {
            if len > MAX_OBJECT_SIZE {
                return Err(ObjectError::EntityTooLarge(MAX_OBJECT_SIZE));
            }
        }
        let quota = self.bytes_quota(&b.project_id).await?;
        let replaced = async {
            match self.head_object(caller, bucket, key).await {
                Ok(o) => o.size,
                Err(_) => 0,
            }
        };
        self.early_quota_check(&b.project_id, quota, opts.content_length, replaced)
            .await?;
        // An empty object (a "directory" marker, say) has no segment: no
        // file to write, fsync and rename, only its row.
        let w = if opts.content_length == Some(0) {
            DataDir::empty(body, want(&opts, MAX_OBJECT_SIZE)).await?
        } else {
            self.data()
                .write(body, want(&opts, MAX_OBJECT_SIZE))
                .await?
        };
        let checksum = match check_digests(&opts, &w) {
            Ok(c) => c,
            Err(e) => {
                self.data().discard_tmp(&w.id);
                return Err(e);
            }
        };
        let meta = ObjectMeta {
            bucket: bucket.to_string(),
            key: key.to_string(),
            size: w.size,
            etag: hex::encode(w.md5),
            content_type: default_content_type(opts.content_type),
            modified_ms: now_ms(),
            user_meta: opts.user_meta,
            headers: kept_headers(opts.headers),
            checksum,
            parts: None,
            acl: opts.acl.unwrap_or_default(),
            segments: match w.id.is_empty() {
                true => Vec::new(),
                false => vec![crate::objects::Seg {
                    id: w.id.clone(),
                    size: w.size,
                    crc: w.crc32c,
                }],
            },
        };
        let row = meta.clone();
        let project = b.project_id.clone();
        let seg = w.id.clone();
        let only_if_absent = opts.if_none_match;
        let r = self
            .meta()
            .write(move |c| {
                if only_if_absent && load_object(c, &row.bucket, &row.key)?.is_some() {
                    return Err(ObjectError::ConditionFailed(Condition::IfNoneMatch));
                }
                if !seg.is_empty() {
                    c.prepare_cached("INSERT INTO segments (id, refs) VALUES (?1, 1)")?
                        .execute(params![seg])?;
                }
                replace_object(c, &project, quota, &row)
            })
            .await;
        match r {
            Ok((d_objects, d_bytes, garbage)) => {
                self.data().publish(&w.id);
                self.count(bucket, d_objects, d_bytes);
                if garbage {
                    self.notify_garbage();
                }
                Ok(meta)
            }
            Err(e) => {
                self.data().discard_tmp(&w.id);
                Err(e)
            }
        }
    }

    /// Refuses an upload before its bytes travel when its declared length
    /// cannot fit the byte quota, unless what it replaces frees enough
    /// (`replaced`, looked up only then). The commit checks again exactly.
    pub(crate) async fn early_quota_check(
        &self,
        project: &str,
        quota: i64,
        len: Option<u64>,
        replaced: impl std::future::Future<Output = u64>,
    ) -> ObjectResult<()> {
        let Some(len) = len.filter(|_| quota >= 0) else {
            return Ok(());
        };
        let (_, used) = self.usage(project);
        if used + len as i64 <= quota {
            return Ok(());
        }
        if used - replaced.await as i64 + len as i64 > quota {
            return Err(ObjectError::QuotaExceeded(format!(
                "the project stores {used} bytes; {len} more would pass its quota of {quota}"
            )));
        }
        Ok(())
    }

    /// An object's metadata, if the caller may read it.
    pub async fn head_object(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        key: &str,
    ) -> ObjectResult<ObjectMeta> {
        validate_key(key)?;
        let denied = self.check_object_read(caller, bucket)?;
        let (b, k) = (bucket.to_string(), key.to_string());
        let found = self.meta().read(move |c| load_object(c, &b, &k)).await;
        let found = found.and_then(|f| f.ok_or_else(|| ObjectError::NoSuchKey(key.to_string())));
        let (meta, corrupt) = admit(denied, caller.is_some(), found, |(m, _)| m)?;
        if corrupt {
            return Err(ObjectError::Corrupt(format!("{bucket}/{key}")));
        }
        Ok(meta)
    }

    /// An object's metadata if the caller may read it and the request's
    /// conditions hold (RFC 7232, [`Conditions::evaluate`]); "not
    /// modified" is an answer, a failed condition an error.
    pub async fn head_object_if(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        key: &str,
        conditions: &Conditions,
    ) -> ObjectResult<Conditional<ObjectMeta>> {
        let meta = self.head_object(caller, bucket, key).await?;
        match conditions.evaluate(&meta.etag, meta.modified_ms) {
            Ok(()) => Ok(Conditional::Served(meta)),
            Err(u) => unmet(u, meta),
        }
    }

    /// An object's metadata and bytes (a range of them if asked). The
    /// files are opened before this returns, so a concurrent overwrite or
    /// delete does not cut the answer short.
    pub async fn get_object(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        key: &str,
        range: Option<RangeSpec>,
    ) -> ObjectResult<(ObjectMeta, Option<ByteRange>, ObjectBody)> {
        match self
            .get_object_if(caller, bucket, key, range, &Conditions::default())
            .await?
        {
            Conditional::Served(r) => Ok(r),
            Conditional::NotModified(_) => Err(ObjectError::Internal(
                "a read without conditions was answered \"not modified\"".into(),
            )),
        }
    }

    /// [`ObjectStore::get_object`] under the request's conditions, checked
    /// against the very version whose files are opened, and before the
    /// range (RFC 7232 section 6): a condition that does not hold opens no
    /// file.
    pub async fn get_object_if(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        key: &str,
        range: Option<RangeSpec>,
        conditions: &Conditions,
    ) -> ObjectResult<Conditional<(ObjectMeta, Option<ByteRange>, ObjectBody)>> {
        validate_key(key)?;
        let denied = self.check_object_read(caller, bucket)?;
        let store = self.clone();
        let (b, k) = (bucket.to_string(), key.to_string());
        let conds = conditions.clone();
        let conn = self.meta().reader()?;
        let (conn, r) = tokio::task::spawn_blocking(move || {
            let r = open_for_read(&conn, store.data(), &b, &k, range, &conds);
            (conn, r)
        })
        .await
        .map_err(|e| ObjectError::internal("reading an object", e))?;
        self.meta().give_back(conn);
        // The caller's right to read comes first: a condition tells
        // nothing to one who may not read the object.
        let (meta, range, opened) = admit(denied, caller.is_some(), r, |(m, _, _)| m)?;
        let body = match opened {
            Opened::Unmet(u) => return unmet(u, meta),
            Opened::Small(Ok(bytes)) => ObjectBody::Full(bytes),
            Opened::Small(Err(())) => {
                self.mark_corrupt(bucket, key, &meta.segments).await;
                return Err(ObjectError::Corrupt(format!("{bucket}/{key}")));
            }
            Opened::Pieces(pieces) => {
                let store = self.clone();
                let (b, k) = (bucket.to_string(), key.to_string());
                let segs = meta.segments.clone();
                let handle = tokio::runtime::Handle::current();
                ObjectBody::Segments(DataDir::segments(
                    pieces,
                    Box::new(move || {
                        handle.spawn(async move { store.mark_corrupt(&b, &k, &segs).await });
                    }),
                ))
            }
        };
        Ok(Conditional::Served((meta, range, body)))
    }

    /// Records that an object's bytes no longer match their checksum; it is
    /// then refused rather than served. Only the version whose `segments`
    /// were read is marked: an overwrite since then is left alone.
    pub(crate) async fn mark_corrupt(&self, bucket: &str, key: &str, segments: &[Seg]) {
        tracing::error!(
            bucket,
            key,
            "stored object data does not match its checksum"
        );
        let (b, k) = (bucket.to_string(), key.to_string());
        let segs = match serde_json::to_string(segments) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "recording a corrupt object");
                return;
            }
        };
        let r = self
            .meta()
            .write(move |c| {
                c.execute(
                    "UPDATE objects SET corrupt = 1 WHERE bucket = ?1 AND key = ?2 AND segments = ?3",
                    params![b, k, segs],
                )?;
                Ok(())
            })
            .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "recording a corrupt object");
        }
    }

    /// Whether `caller` may read objects of `bucket`: `None` if so, the
    /// refusal if only objects whose own ACL opens them are, an error if
    /// the bucket is missing.
    fn check_object_read(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
    ) -> ObjectResult<Option<Denied>> {
        match self.check(caller, bucket, "object:get_object", Access::ReadObjects) {
            Ok(_) => Ok(None),
            Err(refusal @ ObjectError::AccessDenied(_)) => Ok(Some(Denied {
                refusal,
                may_list: self
                    .check(caller, bucket, "object:list_objects", Access::List)
                    .is_ok(),
            })),
            Err(e) => Err(e),
        }
    }

    /// Sets an object's canned ACL (S3's PutObjectAcl).
    pub async fn set_object_acl(
        &self,
        caller: &Principal,
        bucket: &str,
        key: &str,
        acl: Acl,
    ) -> ObjectResult<ObjectMeta> {
        validate_key(key)?;
        self.check(Some(caller), bucket, "object:put_object_acl", Access::Owner)?;
        self.rewrite_object(bucket, key, move |o| o.acl = acl).await
    }

    /// Changes an object's row (its bytes stay) in one commit.
    async fn rewrite_object(
        &self,
        bucket: &str,
        key: &str,
        change: impl FnOnce(&mut ObjectMeta) + Send + 'static,
    ) -> ObjectResult<ObjectMeta> {
        let (b, k) = (bucket.to_string(), key.to_string());
        self.meta()
            .write(move |c| {
                let (mut o, _) =
                    load_object(c, &b, &k)?.ok_or_else(|| ObjectError::NoSuchKey(k.clone()))?;
                change(&mut o);
                c.execute(
                    "UPDATE objects SET content_type = ?3, meta = ?4, modified_ms = ?5 WHERE bucket = ?1 AND key = ?2",
                    params![
                        b,
                        k,
                        o.content_type,
                        serde_json::to_string(&StoredMeta::of(&o))?,
                        o.modified_ms
                    ],
                )?;
                Ok(o)
            })
            .await
    }

    /// Deletes an object; deleting a missing key is not an error (S3).
    /// Returns whether it existed.
    pub async fn delete_object(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        key: &str,
    ) -> ObjectResult<bool> {
        validate_key(key)?;
        self.check(caller, bucket, "object:delete_object", Access::Write)?;
        let r = self
            .delete_keys(bucket, vec![(key.to_string(), None)])
            .await?;
        let r: Vec<bool> = r.into_iter().collect::<ObjectResult<_>>()?;
        Ok(r.into_iter().next().is_some_and(|x| x))
    }

    /// Deletes many keys in one commit (S3's DeleteObjects); per key,
    /// whether it existed. A key given with an ETag is deleted only if its
    /// object's ETag is that one (`*`: any object), else its result is
    /// PreconditionFailed (NoSuchKey if there is none).
    pub async fn delete_objects(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        keys: Vec<(String, Option<String>)>,
    ) -> ObjectResult<Vec<ObjectResult<bool>>> {
        self.check(caller, bucket, "object:delete_object", Access::Write)?;
        let mut valid = Vec::new();
        let mut out: Vec<Option<ObjectResult<bool>>> = Vec::with_capacity(keys.len());
        for (k, etag) in keys {
            match validate_key(&k) {
                Ok(()) => {
                    valid.push((k, etag));
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        let mut done = self.delete_keys(bucket, valid).await?.into_iter();
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or_else(|| done.next().unwrap_or(Ok(false))))
            .collect())
    }

    async fn delete_keys(
        &self,
        bucket: &str,
        keys: Vec<(String, Option<String>)>,
    ) -> ObjectResult<Vec<ObjectResult<bool>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let b = bucket.to_string();
        let (existed, d_objects, d_bytes, garbage) = self
            .meta()
            .write(move |c| {
                let mut existed = Vec::with_capacity(keys.len());
                let (mut d_objects, mut d_bytes, mut garbage) = (0i64, 0i64, false);
                for (k, if_match) in &keys {
                    let found = load_object(c, &b, k)?;
                    if let Some(want) = if_match {
                        match &found {
                            None => {
                                existed.push(Err(ObjectError::NoSuchKey(k.clone())));
                                continue;
                            }
                            Some((o, _)) if !o.etag_matches(want) => {
                                existed.push(Err(ObjectError::PreconditionFailed(format!(
                                    "the ETag of {k} is not {want}"
                                ))));
                                continue;
                            }
                            Some(_) => {}
                        }
                    }
                    match found {
                        Some((o, _)) => {
                            for s in &o.segments {
                                garbage |= unref(c, &s.id)?;
                            }
                            c.prepare_cached("DELETE FROM objects WHERE bucket = ?1 AND key = ?2")?
                                .execute(params![b, k])?;
                            d_objects -= 1;
                            d_bytes -= o.size as i64;
                            existed.push(Ok(true));
                        }
                        None => existed.push(Ok(false)),
                    }
                }
                c.prepare_cached(
                    "UPDATE buckets SET objects = objects + ?2, bytes = bytes + ?3 WHERE name = ?1",
                )?
                .execute(params![b, d_objects, d_bytes])?;
                Ok((existed, d_objects, d_bytes, garbage))
            })
            .await?;
        self.count(bucket, d_objects, d_bytes);
        if garbage {
            self.notify_garbage();
        }
        Ok(existed)
    }

    /// Server-side copy: the new object shares the source's bytes (segments
    /// are reference-counted), so a copy of any size is one commit.
    pub async fn copy_object(
        &self,
        caller: Option<&Principal>,
        src: &CopySource,
        bucket: &str,
        key: &str,
        directive: MetadataDirective,
        acl: Option<Acl>,
    ) -> ObjectResult<ObjectMeta> {
        validate_key(&src.key)?;
        validate_key(key)?;
        if let Some(d) = self.check_object_read(caller, &src.bucket)? {
            return Err(d.refusal);
        }
        let b = self.check(caller, bucket, "object:put_object", Access::Write)?;
        if src.bucket == bucket && src.key == key && matches!(directive, MetadataDirective::Copy) {
            return Err(ObjectError::InvalidArgument(
                "this copy request is illegal because it is trying to copy an object to itself without changing the object's metadata".into(),
            ));
        }
        if let MetadataDirective::Replace { user_meta, .. } = &directive {
            check_meta_size(user_meta)?;
        }
        let quota = self.bytes_quota(&b.project_id).await?;
        let (sb, sk) = (src.bucket.clone(), src.key.clone());
        let src = src.clone();
        let (db, dk) = (bucket.to_string(), key.to_string());
        let project = b.project_id.clone();
        let (meta, d_objects, d_bytes, garbage) = self
            .meta()
            .write(move |c| {
                let (s, corrupt) =
                    load_object(c, &sb, &sk)?.ok_or_else(|| ObjectError::NoSuchKey(sk.clone()))?;
                if corrupt {
                    return Err(ObjectError::Corrupt(format!("{sb}/{sk}")));
                }
                src.check(&s)?;
                for seg in &s.segments {
                    c.prepare_cached("UPDATE segments SET refs = refs + 1 WHERE id = ?1")?
                        .execute(params![seg.id])?;
                }
                // As S3: a copy gets the ACL asked for, not the source's.
                let mut meta = ObjectMeta {
                    bucket: db,
                    key: dk,
                    modified_ms: now_ms(),
                    acl: acl.unwrap_or_default(),
                    ..s
                };
                if let MetadataDirective::Replace {
                    content_type,
                    user_meta,
                    headers,
                } = directive
                {
                    meta.content_type = default_content_type(content_type);
                    meta.user_meta = user_meta;
                    meta.headers = kept_headers(headers);
                }
                let (a, b, g) = replace_object(c, &project, quota, &meta)?;
                Ok((meta, a, b, g))
            })
            .await?;
        self.count(bucket, d_objects, d_bytes);
        if garbage {
            self.notify_garbage();
        }
        Ok(meta)
    }

    /// Replaces an object's metadata without touching its bytes (Swift's
    /// POST on an object).
    pub async fn update_object_meta(
        &self,
        caller: &Principal,
        bucket: &str,
        key: &str,
        content_type: Option<String>,
        user_meta: BTreeMap<String, String>,
        headers: BTreeMap<String, String>,
    ) -> ObjectResult<ObjectMeta> {
        validate_key(key)?;
        check_meta_size(&user_meta)?;
        self.check(Some(caller), bucket, "object:put_object", Access::Write)?;
        self.rewrite_object(bucket, key, move |o| {
            if let Some(ct) = content_type {
                o.content_type = default_content_type(Some(ct));
            }
            o.user_meta = user_meta;
            o.headers = kept_headers(headers);
            o.modified_ms = now_ms();
        })
        .await
    }

    /// A page of keys in byte order, with S3's prefix/delimiter rules:
    /// keys under `prefix` whose rest contains the delimiter are rolled up
    /// into one common prefix each. Reads only the page's rows (plus one
    /// seek per common prefix), whatever the bucket's size.
    pub async fn list_objects(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        q: ListQuery,
    ) -> ObjectResult<ListPage> {
        self.check(caller, bucket, "object:list_objects", Access::List)?;
        let b = bucket.to_string();
        self.meta().read(move |c| list(c, &b, &q)).await
    }
}

enum Opened {
    Small(Result<Bytes, ()>),
    Pieces(Vec<Piece>),
    /// A condition did not hold: nothing was opened.
    Unmet(Unmet),
}

/// A read's answer when its conditions do not hold.
fn unmet<T>(u: Unmet, meta: ObjectMeta) -> ObjectResult<Conditional<T>> {
    match u {
        Unmet::NotModified => Ok(Conditional::NotModified(Box::new(meta))),
        Unmet::Failed(c) => Err(ObjectError::ConditionFailed(c)),
    }
}

fn open_for_read(
    c: &Connection,
    data: &DataDir,
    bucket: &str,
    key: &str,
    range: Option<RangeSpec>,
    conditions: &Conditions,
) -> ObjectResult<(ObjectMeta, Option<ByteRange>, Opened)> {
    // A concurrent overwrite may remove the files between the lookup and
    // the open: look again.
    for _ in 0..5 {
        let (meta, corrupt) =
            load_object(c, bucket, key)?.ok_or_else(|| ObjectError::NoSuchKey(key.to_string()))?;
        if corrupt {
            return Err(ObjectError::Corrupt(format!("{bucket}/{key}")));
        }
        if let Err(u) = conditions.evaluate(&meta.etag, meta.modified_ms) {
            return Ok((meta, None, Opened::Unmet(u)));
        }
        let r = match range {
            Some(spec) => Some(spec.resolve(meta.size)?),
            None => None,
        };
        let (start, end) = r.map_or((0, meta.size), |r| (r.start, r.end));
        let mut pieces = Vec::new();
        let mut at = 0u64;
        let mut missing = false;
        for s in &meta.segments {
            let (s_start, s_end) = (at, at + s.size);
            at = s_end;
            if s_end <= start || s_start >= end || s.size == 0 {
                continue;
            }
            let from = start.max(s_start) - s_start;
            let to = end.min(s_end) - s_start;
            match data.open_segment(&s.id) {
                Ok(file) => pieces.push(Piece {
                    file: std::sync::Arc::new(file),
                    offset: from,
                    len: to - from,
                    whole_crc: (from == 0 && to == s.size).then_some(s.crc),
                }),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    missing = true;
                    break;
                }
                Err(e) => return Err(e.into()),
            }
        }
        if missing {
            continue;
        }
        let len = end - start;
        if len <= SMALL_READ && pieces.len() <= 1 {
            let bytes = match pieces.pop() {
                None => Ok(Bytes::new()),
                Some(p) => DataDir::read_small(&p.file, p.offset, p.len as usize, p.whole_crc)?,
            };
            return Ok((meta, r, Opened::Small(bytes)));
        }
        return Ok((meta, r, Opened::Pieces(pieces)));
    }
    Err(ObjectError::Internal(format!(
        "the data of {bucket}/{key} kept changing while it was opened"
    )))
}

fn list(c: &Connection, bucket: &str, q: &ListQuery) -> ObjectResult<ListPage> {
    let mut page = ListPage::default();
    // The scan position: keys > `cursor` (or >= when `inclusive`).
    let (mut cursor, mut inclusive) = match &q.after {
        Some(a) if a.as_str() >= q.prefix.as_str() => (a.clone(), false),
        _ => (q.prefix.clone(), true),
    };
    let delim = q.delimiter.as_deref().filter(|d| !d.is_empty());
    let mut last_prefix: Option<String> = None;
    // A marker that is a common prefix (the previous page ended on it):
    // skip everything under it, as S3 does.
    if let (Some(d), Some(a)) = (delim, q.after.as_deref()) {
        if a.len() > q.prefix.len() && a.starts_with(&q.prefix) && a.ends_with(d) {
            let rest = &a[q.prefix.len()..];
            if rest.find(d) == Some(rest.len() - d.len()) {
                cursor = format!("{a}\u{10FFFF}");
                inclusive = false;
                last_prefix = Some(a.to_string());
            }
        }
    }
    let batch = (q.max + 1).clamp(2, 1000);
    let mut gt = c.prepare_cached(
        "SELECT key, size, etag, modified_ms, content_type FROM objects WHERE bucket = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
    )?;
    let mut ge = c.prepare_cached(
        "SELECT key, size, etag, modified_ms, content_type FROM objects WHERE bucket = ?1 AND key >= ?2 ORDER BY key LIMIT ?3",
    )?;
    let count = |p: &ListPage| p.objects.len() + p.prefixes.len();
    'scan: loop {
        let st = if inclusive { &mut ge } else { &mut gt };
        let rows = st.query_map(params![bucket, cursor, batch as i64], |r| {
            Ok(ObjectSummary {
                key: r.get(0)?,
                size: r.get::<_, i64>(1)? as u64,
                etag: r.get(2)?,
                modified_ms: r.get(3)?,
                content_type: r.get(4)?,
            })
        })?;
        let mut seen = 0;
        for row in rows {
            let o = row?;
            seen += 1;
            if !o.key.starts_with(&q.prefix) {
                break 'scan;
            }
            let rolled = delim.and_then(|d| {
                o.key[q.prefix.len()..]
                    .find(d)
                    .map(|i| o.key[..q.prefix.len() + i + d.len()].to_string())
            });
            if count(&page) >= q.max {
                page.truncated = true;
                break 'scan;
            }
            match rolled {
                Some(cp) => {
                    if last_prefix.as_deref() == Some(cp.as_str()) {
                        cursor = o.key;
                        inclusive = false;
                        continue;
                    }
                    page.prefixes.push(cp.clone());
                    page.next = Some(cp.clone());
                    // Skip everything under this prefix: seek past it.
                    cursor = format!("{cp}\u{10FFFF}");
                    inclusive = false;
                    last_prefix = Some(cp);
                    continue 'scan;
                }
                None => {
                    cursor = o.key.clone();
                    inclusive = false;
                    page.next = Some(o.key.clone());
                    page.objects.push(o);
                }
            }
        }
        if seen < batch {
            break;
        }
    }
    if !page.truncated {
        page.next = None;
    }
    Ok(page)
}

pub(crate) async fn verify_bucket(store: &ObjectStore, bucket: &str) -> ObjectResult<Vec<String>> {
    let b = bucket.to_string();
    let data = store.data().clone();
    let conn = store.meta().reader()?;
    let (conn, r) = tokio::task::spawn_blocking(move || {
        let r = (|| -> ObjectResult<Vec<(String, Vec<Seg>)>> {
            let sql =
                format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE bucket = ?1 ORDER BY key");
            let mut st = conn.prepare(&sql)?;
            let rows = st.query_map(params![b], object_row)?;
            let mut bad = Vec::new();
            for row in rows {
                let (o, corrupt) = row?;
                if corrupt {
                    bad.push((o.key, Vec::new()));
                    continue;
                }
                for s in &o.segments {
                    let ok = match data.open_segment(&s.id) {
                        Ok(mut f) => {
                            let mut crc = 0u32;
                            let mut buf = vec![0u8; 1024 * 1024];
                            let mut n_total = 0u64;
                            loop {
                                let n = io::Read::read(&mut f, &mut buf)?;
                                if n == 0 {
                                    break;
                                }
                                n_total += n as u64;
                                crc = crate::checksum::crc32c_append(crc, &buf[..n]);
                            }
                            crc == s.crc && n_total == s.size
                        }
                        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
                        Err(e) => return Err(e.into()),
                    };
                    if !ok {
                        bad.push((o.key.clone(), o.segments.clone()));
                        break;
                    }
                }
            }
            Ok(bad)
        })();
        (conn, r)
    })
    .await
    .map_err(|e| ObjectError::internal("verifying a bucket", e))?;
    store.meta().give_back(conn);
    let bad = r?;
    for (k, segments) in &bad {
        if !segments.is_empty() {
            store.mark_corrupt(bucket, k, segments).await;
        }
    }
    Ok(bad.into_iter().map(|(k, _)| k).collect())
}
