//! Multipart uploads: parts are segments of their own, and completing an
//! upload makes them the object's segments in one commit, without copying
//! a byte. Aborted and expired uploads send their parts to the garbage.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::Stream;
use nuage_model::identity::Principal;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::checksum::{self, Algorithm};
use crate::data::new_id;
use crate::error::{ObjectError, ObjectResult};
use crate::objects::{
    check_digests, replace_object, unref, want, CopySource, ObjectMeta, PutOptions, RangeSpec, Seg,
};
use crate::{
    check_meta_size, now_ms, validate_key, Access, Acl, ObjectStore, MAX_OBJECT_SIZE, MIN_PART_SIZE,
};

/// A multipart upload in progress.
#[derive(Debug, Clone, Serialize)]
pub struct UploadInfo {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub initiated_ms: i64,
    pub checksum_algorithm: Option<Algorithm>,
}

/// One uploaded part.
#[derive(Debug, Clone, Serialize)]
pub struct PartInfo {
    pub number: u32,
    pub size: u64,
    /// Hex MD5 of the part, without quotes.
    pub etag: String,
    pub modified_ms: i64,
    pub checksum: Option<(Algorithm, String)>,
}

/// A part named in a complete request.
#[derive(Debug, Clone)]
pub struct CompletePart {
    pub number: u32,
    /// With or without quotes.
    pub etag: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartsPage {
    pub upload: UploadInfo,
    pub parts: Vec<PartInfo>,
    pub truncated: bool,
    pub next_marker: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UploadsPage {
    pub uploads: Vec<UploadInfo>,
    pub truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_upload_marker: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, Serialize)]
struct UploadMeta {
    #[serde(default)]
    user: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The completed object's canned ACL.
    #[serde(default, skip_serializing_if = "Acl::is_private")]
    acl: Acl,
}

fn load_upload(c: &Connection, id: &str) -> ObjectResult<Option<(UploadInfo, String, UploadMeta)>> {
    Ok(c.prepare_cached(
        "SELECT id, bucket, key, initiated_ms, checksum_algorithm, content_type, meta FROM uploads WHERE id = ?1",
    )?
    .query_row(params![id], |r| {
        let alg: Option<String> = r.get(4)?;
        let meta: String = r.get(6)?;
        Ok((
            UploadInfo {
                upload_id: r.get(0)?,
                bucket: r.get(1)?,
                key: r.get(2)?,
                initiated_ms: r.get(3)?,
                checksum_algorithm: alg.as_deref().and_then(Algorithm::from_name),
            },
            r.get::<_, String>(5)?,
            serde_json::from_str(&meta).unwrap_or_default(),
        ))
    })
    .optional()?)
}

fn upload_for(
    c: &Connection,
    id: &str,
    bucket: &str,
    key: &str,
) -> ObjectResult<(UploadInfo, String, UploadMeta)> {
    match load_upload(c, id)? {
        Some(u) if u.0.bucket == bucket && u.0.key == key => Ok(u),
        _ => Err(ObjectError::NoSuchUpload(id.to_string())),
    }
}

fn part_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(PartInfo, Seg)> {
    let checksum: Option<String> = r.get(5)?;
    let size = r.get::<_, i64>(1)? as u64;
    Ok((
        PartInfo {
            number: r.get::<_, i64>(0)? as u32,
            size,
            etag: r.get(2)?,
            modified_ms: r.get(6)?,
            checksum: checksum.and_then(|c| {
                let (a, v) = c.split_once(':')?;
                Some((Algorithm::from_name(a)?, v.to_string()))
            }),
        },
        Seg {
            id: r.get(3)?,
            size,
            crc: r.get::<_, i64>(4)? as u32,
        },
    ))
}

const PART_COLUMNS: &str = "number, size, etag, segment, crc32c, checksum, modified_ms";

/// Removes an upload and its parts inside a commit; whether garbage was made.
fn drop_upload(c: &Connection, id: &str, keep: &[String]) -> ObjectResult<bool> {
    let mut garbage = false;
    let segs: Vec<String> = c
        .prepare_cached("SELECT segment FROM parts WHERE upload_id = ?1")?
        .query_map(params![id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for s in segs {
        if !keep.contains(&s) {
            garbage |= unref(c, &s)?;
        }
    }
    c.prepare_cached("DELETE FROM parts WHERE upload_id = ?1")?
        .execute(params![id])?;
    c.prepare_cached("DELETE FROM uploads WHERE id = ?1")?
        .execute(params![id])?;
    Ok(garbage)
}

impl ObjectStore {
    /// Starts a multipart upload; metadata given now is the object's.
    pub async fn create_multipart(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        key: &str,
        opts: PutOptions,
        checksum_algorithm: Option<Algorithm>,
    ) -> ObjectResult<UploadInfo> {
        validate_key(key)?;
        check_meta_size(&opts.user_meta)?;
        self.check(caller, bucket, "object:put_object", Access::Write)?;
        let info = UploadInfo {
            upload_id: new_id(),
            bucket: bucket.to_string(),
            key: key.to_string(),
            initiated_ms: now_ms(),
            checksum_algorithm,
        };
        let row = info.clone();
        let meta = UploadMeta {
            user: opts.user_meta,
            headers: crate::kept_headers(opts.headers),
            acl: opts.acl.unwrap_or_default(),
        };
        let ct = opts
            .content_type
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "binary/octet-stream".into());
        self.meta()
            .write(move |c| {
                if !c
                    .prepare_cached("SELECT 1 FROM buckets WHERE name = ?1")?
                    .exists(params![row.bucket])?
                {
                    return Err(ObjectError::NoSuchBucket(row.bucket.clone()));
                }
                c.execute(
                    "INSERT INTO uploads (id, bucket, key, initiated_ms, content_type, meta, checksum_algorithm) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        row.upload_id,
                        row.bucket,
                        row.key,
                        row.initiated_ms,
                        ct,
                        serde_json::to_string(&meta)?,
                        row.checksum_algorithm.map(|a| a.header_suffix())
                    ],
                )?;
                Ok(())
            })
            .await?;
        Ok(info)
    }

    /// UploadPartCopy: part `number` made of the bytes of `src`, all of them
    /// or the inclusive range `(first, last)`, which must lie inside it
    /// (unlike a GET's Range). The bytes are read and written again: a part
    /// is a segment of its own.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        &self,
        caller: Option<&Principal>,
        src: &CopySource,
        range: Option<(u64, u64)>,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
    ) -> ObjectResult<PartInfo> {
        let outside = |size: u64| {
            ObjectError::InvalidArgument(format!(
                "the range to copy is not within the source's {size} bytes"
            ))
        };
        let spec = range.map(|(first, last)| RangeSpec::From {
            first,
            last: Some(last),
        });
        let (o, r, body) = self
            .get_object(caller, &src.bucket, &src.key, spec)
            .await
            .map_err(|e| match e {
                ObjectError::InvalidRange(size) => outside(size),
                e => e,
            })?;
        if range.is_some_and(|(_, last)| last >= o.size) {
            return Err(outside(o.size));
        }
        src.check(&o)?;
        let opts = PutOptions {
            content_length: Some(r.map_or(o.size, |r| r.end - r.start)),
            ..PutOptions::default()
        };
        self.upload_part(
            caller,
            bucket,
            key,
            upload_id,
            number,
            opts,
            body.into_stream(),
        )
        .await
    }

    /// Stores one part (1 to 10,000), replacing a part of the same number.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part<S, E>(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        opts: PutOptions,
        body: S,
    ) -> ObjectResult<PartInfo>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: Into<ObjectError>,
    {
        if !(1..=10_000).contains(&number) {
            return Err(ObjectError::InvalidArgument(
                "part numbers are integers from 1 to 10000".into(),
            ));
        }
        let b = self.check(caller, bucket, "object:put_object", Access::Write)?;
        let (id, bk, k) = (upload_id.to_string(), bucket.to_string(), key.to_string());
        self.meta()
            .read(move |c| upload_for(c, &id, &bk, &k).map(|_| ()))
            .await?;
        let quota = self.bytes_quota(&b.project_id).await?;
        self.early_quota_check(&b.project_id, quota, opts.content_length, async { 0 })
            .await?;
        let w = self
            .data()
            .write(body, want(&opts, MAX_OBJECT_SIZE))
            .await?;
        let checksum = match check_digests(&opts, &w) {
            Ok(c) => c,
            Err(e) => {
                self.data().discard_tmp(&w.id);
                return Err(e);
            }
        };
        let part = PartInfo {
            number,
            size: w.size,
            etag: hex::encode(w.md5),
            modified_ms: now_ms(),
            checksum,
        };
        let row = part.clone();
        let (id, bk, k) = (upload_id.to_string(), bucket.to_string(), key.to_string());
        let seg = w.id.clone();
        let crc = w.crc32c;
        let r = self
            .meta()
            .write(move |c| {
                upload_for(c, &id, &bk, &k)?;
                let old: Option<String> = c
                    .prepare_cached("SELECT segment FROM parts WHERE upload_id = ?1 AND number = ?2")?
                    .query_row(params![id, row.number], |r| r.get(0))
                    .optional()?;
                let mut garbage = false;
                if let Some(old) = old {
                    garbage |= unref(c, &old)?;
                }
                c.prepare_cached("INSERT INTO segments (id, refs) VALUES (?1, 1)")?
                    .execute(params![seg])?;
                let sql = format!("INSERT OR REPLACE INTO parts (upload_id, {PART_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
                c.prepare_cached(&sql)?.execute(params![
                    id,
                    row.number,
                    row.size as i64,
                    row.etag,
                    seg,
                    crc as i64,
                    row.checksum.as_ref().map(|(a, v)| format!("{}:{v}", a.header_suffix())),
                    row.modified_ms
                ])?;
                Ok(garbage)
            })
            .await;
        match r {
            Ok(garbage) => {
                self.data().publish(&w.id);
                if garbage {
                    self.notify_garbage();
                }
                Ok(part)
            }
            Err(e) => {
                self.data().discard_tmp(&w.id);
                Err(e)
            }
        }
    }

    /// The parts of an upload, by number, after `after`.
    pub async fn list_parts(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        key: &str,
        upload_id: &str,
        after: u32,
        max: usize,
    ) -> ObjectResult<PartsPage> {
        self.check(caller, bucket, "object:list_parts", Access::List)?;
        let (id, bk, k) = (upload_id.to_string(), bucket.to_string(), key.to_string());
        self.meta()
            .read(move |c| {
                let (upload, _, _) = upload_for(c, &id, &bk, &k)?;
                let sql = format!("SELECT {PART_COLUMNS} FROM parts WHERE upload_id = ?1 AND number > ?2 ORDER BY number LIMIT ?3");
                let mut parts: Vec<PartInfo> = c
                    .prepare_cached(&sql)?
                    .query_map(params![id, after, max as i64 + 1], part_row)?
                    .map(|r| r.map(|(p, _)| p))
                    .collect::<Result<_, _>>()?;
                let truncated = parts.len() > max;
                parts.truncate(max);
                let next_marker = if truncated { parts.last().map(|p| p.number) } else { None };
                Ok(PartsPage { upload, parts, truncated, next_marker })
            })
            .await
    }

    /// Completes an upload: the listed parts, in ascending order, become
    /// the object. Its ETag is S3's: MD5 of the parts' MD5s, `-N`.
    pub async fn complete_multipart(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletePart>,
    ) -> ObjectResult<ObjectMeta> {
        let b = self.check(caller, bucket, "object:put_object", Access::Write)?;
        if parts.is_empty() {
            return Err(ObjectError::InvalidPart(
                "a multipart upload is completed with at least one part".into(),
            ));
        }
        if parts.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(ObjectError::InvalidPartOrder);
        }
        let quota = self.bytes_quota(&b.project_id).await?;
        let project = b.project_id.clone();
        let (id, bk, k) = (upload_id.to_string(), bucket.to_string(), key.to_string());
        let (meta, d_objects, d_bytes, garbage) = self
            .meta()
            .write(move |c| {
                let (upload, content_type, um) = upload_for(c, &id, &bk, &k)?;
                let sql = format!(
                    "SELECT {PART_COLUMNS} FROM parts WHERE upload_id = ?1 AND number = ?2"
                );
                let mut segments = Vec::with_capacity(parts.len());
                let mut md5s = checksum::md5();
                let mut size = 0u64;
                let last = parts.len() - 1;
                let mut too_small = None;
                for (i, want) in parts.iter().enumerate() {
                    let (p, seg) = c
                        .prepare_cached(&sql)?
                        .query_row(params![id, want.number], part_row)
                        .optional()?
                        .ok_or_else(|| {
                            ObjectError::InvalidPart(format!(
                                "part {} was not uploaded",
                                want.number
                            ))
                        })?;
                    if want.etag.trim_matches('"') != p.etag {
                        return Err(ObjectError::InvalidPart(format!(
                            "part {}'s ETag is \"{}\", not {}",
                            want.number, p.etag, want.etag
                        )));
                    }
                    if i != last && p.size < MIN_PART_SIZE {
                        too_small.get_or_insert(p.number);
                    }
                    let raw = hex::decode(&p.etag)
                        .map_err(|e| ObjectError::internal("a stored part ETag", e))?;
                    md5s.update(&raw);
                    size += p.size;
                    segments.push(seg);
                }
                // Every part is checked to exist first (InvalidPart), as S3.
                if let Some(n) = too_small {
                    return Err(ObjectError::EntityTooSmall(n));
                }
                let keep: Vec<String> = segments.iter().map(|s| s.id.clone()).collect();
                let mut garbage = drop_upload(c, &id, &keep)?;
                let meta = ObjectMeta {
                    bucket: bk.clone(),
                    key: k.clone(),
                    size,
                    etag: format!("{}-{}", hex::encode(md5s.finalize()), segments.len()),
                    content_type,
                    modified_ms: now_ms(),
                    user_meta: um.user,
                    headers: um.headers,
                    checksum: None,
                    parts: Some(segments.len() as u32),
                    acl: um.acl,
                    segments,
                };
                let _ = upload.checksum_algorithm;
                let (d_objects, d_bytes, g) = replace_object(c, &project, quota, &meta)?;
                garbage |= g;
                Ok((meta, d_objects, d_bytes, garbage))
            })
            .await?;
        self.count(bucket, d_objects, d_bytes);
        if garbage {
            self.notify_garbage();
        }
        Ok(meta)
    }

    /// Abandons an upload; its parts are removed.
    pub async fn abort_multipart(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> ObjectResult<()> {
        self.check(caller, bucket, "object:abort_multipart", Access::Write)?;
        let (id, bk, k) = (upload_id.to_string(), bucket.to_string(), key.to_string());
        let garbage = self
            .meta()
            .write(move |c| {
                upload_for(c, &id, &bk, &k)?;
                drop_upload(c, &id, &[])
            })
            .await?;
        if garbage {
            self.notify_garbage();
        }
        Ok(())
    }

    /// Uploads in progress in a bucket, by key then upload id.
    pub async fn list_uploads(
        &self,
        caller: Option<&Principal>,
        bucket: &str,
        prefix: &str,
        key_marker: Option<String>,
        upload_marker: Option<String>,
        max: usize,
    ) -> ObjectResult<UploadsPage> {
        self.check(caller, bucket, "object:list_uploads", Access::List)?;
        let (bk, prefix) = (bucket.to_string(), prefix.to_string());
        self.meta()
            .read(move |c| {
                let km = key_marker.unwrap_or_default();
                let um = upload_marker.unwrap_or_default();
                let mut st = c.prepare_cached(
                    "SELECT id, key, initiated_ms, checksum_algorithm FROM uploads WHERE bucket = ?1 AND (key > ?2 OR (key = ?2 AND id > ?3)) AND key >= ?4 ORDER BY key, id LIMIT ?5",
                )?;
                let rows = st.query_map(params![bk, km, um, prefix, max as i64 + 1], |r| {
                    let alg: Option<String> = r.get(3)?;
                    Ok(UploadInfo {
                        upload_id: r.get(0)?,
                        bucket: bk.clone(),
                        key: r.get(1)?,
                        initiated_ms: r.get(2)?,
                        checksum_algorithm: alg.as_deref().and_then(Algorithm::from_name),
                    })
                })?;
                let mut uploads = Vec::new();
                for u in rows {
                    let u = u?;
                    if !u.key.starts_with(&prefix) {
                        break;
                    }
                    uploads.push(u);
                }
                let truncated = uploads.len() > max;
                uploads.truncate(max);
                let (nk, nu) = match (truncated, uploads.last()) {
                    (true, Some(u)) => (Some(u.key.clone()), Some(u.upload_id.clone())),
                    _ => (None, None),
                };
                Ok(UploadsPage { uploads, truncated, next_key_marker: nk, next_upload_marker: nu })
            })
            .await
    }

    /// Aborts uploads older than the configured expiry (S3's lifecycle rule
    /// AbortIncompleteMultipartUpload, always on).
    pub(crate) async fn expire_uploads(&self) -> ObjectResult<()> {
        let cutoff = now_ms() - self.inner_upload_expiry_ms();
        let (n, garbage) = self
            .meta()
            .write(move |c| {
                let ids: Vec<String> = c
                    .prepare_cached("SELECT id FROM uploads WHERE initiated_ms < ?1")?
                    .query_map(params![cutoff], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut garbage = false;
                for id in &ids {
                    garbage |= drop_upload(c, id, &[])?;
                }
                Ok((ids.len(), garbage))
            })
            .await?;
        if n > 0 {
            tracing::info!(uploads = n, "expired multipart uploads aborted");
        }
        if garbage {
            self.notify_garbage();
        }
        Ok(())
    }
}
