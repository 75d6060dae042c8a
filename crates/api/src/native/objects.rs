//! Native API for object storage: buckets and objects of the one engine
//! that S3 and Swift also speak (`core.objects`), so an object put here is
//! read through either. Metadata travels as JSON; object bytes travel raw,
//! streamed both ways, with user metadata in `x-nuage-meta-*` headers.
//!
//! An object's key is the rest of the path after `/objects/` and may hold
//! `/`. Copy is a custom method on the source, AIP style:
//! `POST .../objects/{key}:copy` with the destination in a JSON body; the
//! one `:copy` suffix is always stripped, so any key can be copied
//! (`a:copy` is copied by `POST .../objects/a:copy:copy`).

use crate::zerocopy::ZeroCopy;
use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::Router;
use base64::Engine;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use nuage_object::{
    Acl, Bucket, BucketPatch, CopySource, ListQuery, MetadataDirective, NewBucket, ObjectError,
    ObjectMeta, ObjectSummary, PutOptions, RangeSpec,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Caller, Json, NativeError};
use crate::wire::http_date;
use crate::SharedCore;

type Result<T> = std::result::Result<T, NativeError>;

/// Prefix of the request and response headers carrying user metadata.
const META_PREFIX: &str = "x-nuage-meta-";
/// Largest page of a listing.
const MAX_LIST: usize = 1000;

pub fn routes() -> Router<SharedCore> {
    Router::new()
        .route("/nuage/v1/buckets", get(list_buckets))
        .route(
            "/nuage/v1/buckets/{bucket}",
            get(bucket_info)
                .put(create_bucket)
                .patch(update_bucket)
                .delete(delete_bucket),
        )
        .route("/nuage/v1/buckets/{bucket}/objects", get(list_objects))
        // Uploads stream to disk: the JSON body limit must not cap them.
        .route(
            "/nuage/v1/buckets/{bucket}/objects/{*key}",
            put(put_object)
                .layer(DefaultBodyLimit::disable())
                .get(get_object)
                .head(head_object)
                .delete(delete_object)
                .post(copy_object),
        )
}

// ------------------------------------------------------------------ views

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn bucket_view(b: &Bucket) -> Value {
    json!({
        "name": b.name,
        "project_id": b.project_id,
        "acl": b.acl.as_str(),
        "region": b.region,
        "created_at": rfc3339(b.created_ms),
        "objects": b.objects,
        "bytes": b.bytes,
        "metadata": b.meta,
    })
}

fn object_view(o: &ObjectMeta) -> Value {
    json!({
        "bucket": o.bucket,
        "key": o.key,
        "size": o.size,
        "etag": o.etag,
        "content_type": o.content_type,
        "last_modified": rfc3339(o.modified_ms),
        "metadata": o.user_meta,
        "headers": o.headers,
        "checksum": o.checksum.as_ref().map(|(a, v)| json!({"algorithm": a.header_suffix(), "value": v})),
        "parts": o.parts,
    })
}

fn summary_view(o: &ObjectSummary) -> Value {
    json!({
        "key": o.key,
        "size": o.size,
        "etag": o.etag,
        "content_type": o.content_type,
        "last_modified": rfc3339(o.modified_ms),
    })
}

/// The engine's error by its kind, except an unsatisfiable range: 416,
/// which HTTP clients (curl -C, resumable downloads) act on.
fn object_error(e: ObjectError) -> NativeError {
    match e {
        ObjectError::InvalidRange(_) => NativeError::new(
            StatusCode::RANGE_NOT_SATISFIABLE,
            "invalid_range",
            e.to_string(),
        ),
        e => e.into(),
    }
}

fn path<T>(p: std::result::Result<Path<T>, PathRejection>) -> Result<T> {
    p.map(|Path(v)| v)
        .map_err(|e| NativeError::invalid(format!("the path is not valid: {}", e.body_text())))
}

fn query<T>(q: std::result::Result<Query<T>, QueryRejection>) -> Result<T> {
    q.map(|Query(v)| v).map_err(|e| {
        NativeError::invalid(format!("the query string is not valid: {}", e.body_text()))
    })
}

/// A JSON body that may be absent: bucket creation needs none.
fn optional_json<T: DeserializeOwned + Default>(headers: &HeaderMap, body: &Bytes) -> Result<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim();
            m.eq_ignore_ascii_case("application/json") || m.ends_with("+json")
        });
    if !json {
        return Err(NativeError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the body must be JSON, sent with Content-Type: application/json",
        ));
    }
    axum::Json::<T>::from_bytes(body)
        .map(|axum::Json(v)| v)
        .map_err(NativeError::from_json_rejection)
}

fn parse_acl(s: &str) -> Result<Acl> {
    Acl::parse(s).ok_or_else(|| {
        NativeError::invalid(format!(
            "acl {s:?} is not one of private, public-read, public-read-write and authenticated-read"
        ))
    })
}

// ---------------------------------------------------------------- buckets

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BucketsQuery {
    /// Another project's buckets (admins): its id.
    project: Option<String>,
}

async fn list_buckets(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    q: std::result::Result<Query<BucketsQuery>, QueryRejection>,
) -> Result<Response> {
    let q = query(q)?;
    let buckets = match q.project {
        Some(project) => core.objects.list_project_buckets(&p, &project).await?,
        None => core.objects.list_buckets(&p).await?,
    };
    let items: Vec<Value> = buckets.iter().map(bucket_view).collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewBucketBody {
    acl: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

async fn create_bucket(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    name: std::result::Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let name = path(name)?;
    let b: NewBucketBody = optional_json(&headers, &body)?;
    let acl = match b.acl.as_deref() {
        Some(a) => parse_acl(a)?,
        None => Acl::Private,
    };
    let bucket = core
        .objects
        .create_bucket(
            &p,
            NewBucket {
                name,
                acl,
                meta: b.metadata,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, axum::Json(bucket_view(&bucket))).into_response())
}

async fn bucket_info(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    name: std::result::Result<Path<String>, PathRejection>,
) -> Result<Response> {
    let name = path(name)?;
    let b = core.objects.head_bucket(Some(&p), &name)?;
    Ok(axum::Json(bucket_view(&b)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BucketPatchBody {
    acl: Option<String>,
    /// A `null` value removes the entry.
    #[serde(default)]
    metadata: BTreeMap<String, Option<String>>,
}

async fn update_bucket(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    name: std::result::Result<Path<String>, PathRejection>,
    Json(body): Json<BucketPatchBody>,
) -> Result<Response> {
    let name = path(name)?;
    let patch = BucketPatch {
        acl: body.acl.as_deref().map(parse_acl).transpose()?,
        meta: body.metadata,
        ..Default::default()
    };
    let b = core.objects.update_bucket(&p, &name, patch).await?;
    Ok(axum::Json(bucket_view(&b)).into_response())
}

async fn delete_bucket(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    name: std::result::Result<Path<String>, PathRejection>,
) -> Result<StatusCode> {
    let name = path(name)?;
    core.objects.delete_bucket(&p, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- listing

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    #[serde(default)]
    prefix: String,
    delimiter: Option<String>,
    /// Exclusive start: the `next_token` of the previous page.
    after: Option<String>,
    limit: Option<usize>,
}

async fn list_objects(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    name: std::result::Result<Path<String>, PathRejection>,
    q: std::result::Result<Query<ListParams>, QueryRejection>,
) -> Result<Response> {
    let name = path(name)?;
    let q = query(q)?;
    let limit = q.limit.unwrap_or(MAX_LIST);
    if !(1..=MAX_LIST).contains(&limit) {
        return Err(NativeError::invalid(format!(
            "limit={limit}: pages hold 1 to {MAX_LIST} entries"
        )));
    }
    let page = core
        .objects
        .list_objects(
            Some(&p),
            &name,
            ListQuery {
                prefix: q.prefix,
                delimiter: q.delimiter.filter(|d| !d.is_empty()),
                after: q.after.filter(|a| !a.is_empty()),
                max: limit,
            },
        )
        .await?;
    let items: Vec<Value> = page.objects.iter().map(summary_view).collect();
    let mut body = json!({ "items": items, "prefixes": page.prefixes });
    if let Some(next) = page.next.filter(|_| page.truncated) {
        body["next_token"] = json!(next);
    }
    Ok(axum::Json(body).into_response())
}

// ---------------------------------------------------------------- objects

/// `x-nuage-meta-*` request headers, lowercase names without the prefix.
fn user_meta(h: &HeaderMap) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, value) in h {
        let Some(key) = name.as_str().strip_prefix(META_PREFIX) else {
            continue;
        };
        if key.is_empty() {
            return Err(NativeError::invalid(format!(
                "a {META_PREFIX}* header needs a name after the prefix"
            )));
        }
        let value = std::str::from_utf8(value.as_bytes())
            .map_err(|_| NativeError::invalid(format!("the value of {name} is not UTF-8")))?;
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

fn content_md5(h: &HeaderMap) -> Result<Option<[u8; 16]>> {
    let Some(v) = h.get("content-md5") else {
        return Ok(None);
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes())
        .ok()
        .and_then(|d| <[u8; 16]>::try_from(d).ok())
        .ok_or_else(|| object_error(ObjectError::InvalidDigest))?;
    Ok(Some(raw))
}

fn content_length(h: &HeaderMap) -> Result<Option<u64>> {
    h.get(header::CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .ok_or_else(|| NativeError::invalid("Content-Length is not a number"))
        })
        .transpose()
}

/// Streams the body to the engine, which acknowledges only once the bytes
/// and the metadata are on disk and every declared digest matched.
async fn put_object(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    at: std::result::Result<Path<(String, String)>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let (bucket, key) = path(at)?;
    let opts = PutOptions {
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(String::from),
        user_meta: user_meta(&headers)?,
        headers: nuage_object::kept_headers(
            headers
                .iter()
                .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))),
        ),
        content_length: content_length(&headers)?,
        content_md5: content_md5(&headers)?,
        ..Default::default()
    };
    let stream = body
        .into_data_stream()
        .map_err(|e| ObjectError::Body(e.to_string()));
    let o = core
        .objects
        .put_object(Some(&p), &bucket, &key, opts, stream)
        .await
        .map_err(object_error)?;
    Ok((
        [(header::ETAG, quoted(&o.etag))],
        axum::Json(object_view(&o)),
    )
        .into_response())
}

fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// The headers describing an object on GET and HEAD.
fn object_headers(o: &ObjectMeta) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut set = |name: HeaderName, value: &str| {
        if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
            h.insert(name, v);
        }
    };
    set(header::CONTENT_TYPE, &o.content_type);
    set(header::ETAG, &quoted(&o.etag));
    set(header::LAST_MODIFIED, &http_date(o.modified_ms));
    set(header::ACCEPT_RANGES, "bytes");
    for (k, v) in &o.headers {
        if let Ok(name) = HeaderName::from_bytes(k.as_bytes()) {
            set(name, v);
        }
    }
    for (k, v) in &o.user_meta {
        if let Ok(name) = HeaderName::from_bytes(format!("{META_PREFIX}{k}").as_bytes()) {
            set(name, v);
        }
    }
    h
}

async fn get_object(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    at: std::result::Result<Path<(String, String)>, PathRejection>,
    zero_copy: Option<ZeroCopy>,
    headers: HeaderMap,
) -> Result<Response> {
    let (bucket, key) = path(at)?;
    // A Range header that is not one `bytes=` range is ignored, as S3 does.
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(RangeSpec::parse);
    let (o, r, data) = match core
        .objects
        .get_object(Some(&p), &bucket, &key, range)
        .await
    {
        Ok(found) => found,
        Err(ObjectError::InvalidRange(size)) => {
            let mut resp = object_error(ObjectError::InvalidRange(size)).into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(resp);
        }
        Err(e) => return Err(object_error(e)),
    };
    let mut h = object_headers(&o);
    let (status, len) = match r {
        Some(r) => {
            if let Ok(v) = HeaderValue::from_str(&r.content_range()) {
                h.insert(header::CONTENT_RANGE, v);
            }
            (StatusCode::PARTIAL_CONTENT, r.end - r.start)
        }
        None => (StatusCode::OK, o.size),
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    Ok((status, h, ZeroCopy::body(zero_copy, data)).into_response())
}

async fn head_object(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    at: std::result::Result<Path<(String, String)>, PathRejection>,
) -> Result<Response> {
    let (bucket, key) = path(at)?;
    let o = core
        .objects
        .head_object(Some(&p), &bucket, &key)
        .await
        .map_err(object_error)?;
    let mut h = object_headers(&o);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(o.size));
    Ok((StatusCode::OK, h).into_response())
}

/// Unlike S3, deleting a missing key is 404: the native API says what
/// happened, and `nuage object rm` reports a typo.
async fn delete_object(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    at: std::result::Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode> {
    let (bucket, key) = path(at)?;
    if !core
        .objects
        .delete_object(Some(&p), &bucket, &key)
        .await
        .map_err(object_error)?
    {
        return Err(object_error(ObjectError::NoSuchKey(key)));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CopyBody {
    /// The copy's bucket; default: the source's.
    bucket: Option<String>,
    /// The copy's key.
    key: String,
    /// Given (either of them), the copy's content type and user metadata
    /// replace the source's; otherwise both are copied.
    content_type: Option<String>,
    metadata: Option<BTreeMap<String, String>>,
}

/// `POST .../objects/{key}:copy`: a server-side copy, one commit whatever
/// the size (the engine shares the bytes).
async fn copy_object(
    State(core): State<SharedCore>,
    Caller(p): Caller,
    at: std::result::Result<Path<(String, String)>, PathRejection>,
    Json(body): Json<CopyBody>,
) -> Result<Response> {
    let (bucket, key) = path(at)?;
    let Some(src_key) = key.strip_suffix(":copy") else {
        return Err(NativeError::invalid(
            "POST on an object copies it: end the path with :copy (POST .../objects/KEY:copy)",
        ));
    };
    let directive = if body.content_type.is_some() || body.metadata.is_some() {
        MetadataDirective::Replace {
            content_type: body.content_type,
            user_meta: body.metadata.unwrap_or_default(),
            headers: BTreeMap::new(),
        }
    } else {
        MetadataDirective::Copy
    };
    let dest_bucket = body.bucket.unwrap_or_else(|| bucket.clone());
    let o = core
        .objects
        .copy_object(
            Some(&p),
            &CopySource::new(bucket, src_key),
            &dest_bucket,
            &body.key,
            directive,
            None,
        )
        .await
        .map_err(object_error)?;
    Ok((
        StatusCode::CREATED,
        [(header::ETAG, quoted(&o.etag))],
        axum::Json(object_view(&o)),
    )
        .into_response())
}
