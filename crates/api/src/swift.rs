//! The Swift dialect: `/v1/AUTH_<project>/<container>/<object>` over the
//! object engine, authenticated by Keystone tokens (`X-Auth-Token`).
//!
//! A container is a bucket owned by the account's project; bucket names are
//! global (docs/adr/0010-object-storage.md), so a container name another
//! project holds is refused with 409. A container is public when its read
//! ACL is `.r:*` (S3's public-read); anonymous GET and HEAD then work.
//! Errors are Swift's: a status and a short plain-text body.

use crate::zerocopy::ZeroCopy;
use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use nuage_model::identity::Principal;
use nuage_object::{
    Acl, BucketPatch, CopySource, ListQuery, MetadataDirective, NewBucket, ObjectError, ObjectMeta,
    PutOptions, RangeSpec,
};
use serde_json::json;

use crate::wire::{http_date, set_header as set};
use crate::{auth, context, wire, Core, SharedCore};

/// Containers and objects listed per request at most (Swift's default).
const LISTING_LIMIT: usize = 10_000;

struct Fail(StatusCode, String);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let body = if self.0.is_server_error() {
            format!("{} {}\n", self.0, self.1)
        } else {
            format!("{}\n", self.1)
        };
        let mut r = (self.0, body).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}

impl From<ObjectError> for Fail {
    fn from(e: ObjectError) -> Self {
        use nuage_model::ErrorKind as Kind;
        let status = match &e {
            ObjectError::NoSuchBucket(_) | ObjectError::NoSuchKey(_) => StatusCode::NOT_FOUND,
            ObjectError::BucketNotEmpty(_) | ObjectError::BucketAlreadyExists(_) => {
                StatusCode::CONFLICT
            }
            ObjectError::BadDigest | ObjectError::ChecksumMismatch(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ObjectError::AccessDenied(_) => StatusCode::FORBIDDEN,
            ObjectError::QuotaExceeded(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ObjectError::EntityTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ObjectError::InvalidRange(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ObjectError::IncompleteBody { .. } | ObjectError::Body(_) => {
                StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ObjectError::KeyTooLong(_) | ObjectError::InvalidBucketName(_) => {
                StatusCode::BAD_REQUEST
            }
            ObjectError::NoSuchUpload(_) => StatusCode::NOT_FOUND,
            ObjectError::BucketAlreadyOwnedByYou(_) => StatusCode::CONFLICT,
            ObjectError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            ObjectError::InvalidDigest
            | ObjectError::ContentSha256Mismatch
            | ObjectError::BodyTooLong(_)
            | ObjectError::EntityTooSmall(_)
            | ObjectError::InvalidPart(_)
            | ObjectError::InvalidPartOrder
            | ObjectError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            ObjectError::Corrupt(_) | ObjectError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ObjectError::Rejected { status, .. } => {
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ObjectError::Identity(i) => match nuage_model::HasKind::kind(i) {
                Kind::Forbidden | Kind::Unauthenticated => StatusCode::FORBIDDEN,
                Kind::NotFound => StatusCode::NOT_FOUND,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            },
        };
        let (_, msg) = context::public_error(&e);
        Fail(status, msg)
    }
}

type Result<T> = std::result::Result<T, Fail>;

fn bad(msg: impl Into<String>) -> Fail {
    Fail(StatusCode::BAD_REQUEST, msg.into())
}

/// Serves one Swift request.
pub async fn handle(core: SharedCore, req: Request) -> Response {
    match serve(&core, req).await {
        Ok(r) => r,
        Err(f) => f.into_response(),
    }
}

async fn serve(core: &Core, req: Request) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    let rest = path
        .strip_prefix("/v1/AUTH_")
        .ok_or_else(|| Fail(StatusCode::NOT_FOUND, "not a Swift path".into()))?;
    let mut it = rest.splitn(3, '/');
    let account = decode(it.next().unwrap_or(""))?;
    let container = it
        .next()
        .filter(|c| !c.is_empty())
        .map(decode)
        .transpose()?;
    let object = it
        .next()
        .filter(|o| !o.is_empty())
        .map(decode)
        .transpose()?;
    let caller = match auth::token(&parts) {
        Some(t) => Some(
            core.identity
                .validate(t)
                .await
                .map_err(|e| Fail(StatusCode::UNAUTHORIZED, context::public_error(&e).1))?,
        ),
        None => None,
    };
    let query: BTreeMap<String, String> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let json = query.get("format").map(String::as_str) == Some("json")
        || parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("application/json"));
    let h = &parts.headers;
    let m = &parts.method;
    match (container, object) {
        (None, _) => {
            let caller = caller.as_ref().ok_or_else(|| {
                Fail(
                    StatusCode::UNAUTHORIZED,
                    "an X-Auth-Token is required".into(),
                )
            })?;
            account_op(core, caller, &account, m, h, &query, json).await
        }
        (Some(c), None) => {
            container_op(core, caller.as_ref(), &account, &c, m, h, &query, json).await
        }
        (Some(c), Some(o)) => {
            object_op(core, caller.as_ref(), &account, &c, &o, &parts, body).await
        }
    }
}

fn decode(s: &str) -> Result<String> {
    wire::decode_path(s).ok_or_else(|| bad("the path is not valid UTF-8"))
}

fn require(caller: Option<&Principal>) -> Result<&Principal> {
    caller.ok_or_else(|| {
        Fail(
            StatusCode::UNAUTHORIZED,
            "an X-Auth-Token is required".into(),
        )
    })
}

/// The container, if it belongs to the account of the path.
fn owned(
    core: &Core,
    caller: Option<&Principal>,
    account: &str,
    name: &str,
) -> Result<nuage_object::Bucket> {
    let b = match core.objects.head_bucket(caller, name) {
        Ok(b) => b,
        // Swift asks an anonymous client to authenticate, rather than
        // refusing it outright.
        Err(ObjectError::AccessDenied(_)) if caller.is_none() => {
            return Err(Fail(
                StatusCode::UNAUTHORIZED,
                "an X-Auth-Token is required".into(),
            ))
        }
        Err(e) => return Err(e.into()),
    };
    if b.project_id != account {
        return Err(Fail(
            StatusCode::NOT_FOUND,
            format!("the container {name} does not exist"),
        ));
    }
    Ok(b)
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

fn timestamp(ms: i64) -> String {
    format!("{}.{:05}", ms / 1000, (ms % 1000) * 100)
}

/// `X-<kind>-Meta-*` headers: set (non-empty) and removed (empty, or
/// `X-Remove-<kind>-Meta-*`).
fn meta_headers(h: &HeaderMap, kind: &str) -> BTreeMap<String, Option<String>> {
    let set_prefix = format!("x-{kind}-meta-");
    let remove_prefix = format!("x-remove-{kind}-meta-");
    let mut out = BTreeMap::new();
    for (name, v) in h {
        let n = name.as_str();
        let v = v.to_str().unwrap_or("").to_string();
        if let Some(k) = n.strip_prefix(&set_prefix) {
            out.insert(k.to_string(), (!v.is_empty()).then_some(v));
        } else if let Some(k) = n.strip_prefix(&remove_prefix) {
            out.insert(k.to_string(), None);
        }
    }
    out
}

fn limit(query: &BTreeMap<String, String>) -> Result<usize> {
    match query.get("limit") {
        None => Ok(LISTING_LIMIT),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= LISTING_LIMIT)
            .ok_or_else(|| {
                Fail(
                    StatusCode::PRECONDITION_FAILED,
                    format!("limit must be at most {LISTING_LIMIT}"),
                )
            }),
    }
}

fn listing(status: StatusCode, headers: HeaderMap, body: String, json: bool) -> Response {
    let mut r = (status, body).into_response();
    *r.headers_mut() = headers;
    set(
        r.headers_mut(),
        "content-type",
        if json {
            "application/json; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        },
    );
    r
}

async fn account_op(
    core: &Core,
    caller: &Principal,
    account: &str,
    m: &Method,
    req: &HeaderMap,
    query: &BTreeMap<String, String>,
    json: bool,
) -> Result<Response> {
    if *m == Method::POST {
        core.objects
            .update_account_meta(caller, account, meta_headers(req, "account"))
            .await?;
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let buckets = core.objects.list_project_buckets(caller, account).await?;
    let mut h = HeaderMap::new();
    for (k, v) in core.objects.account_meta(caller, account).await? {
        set(&mut h, &format!("x-account-meta-{k}"), v);
    }
    set(
        &mut h,
        "x-account-container-count",
        buckets.len().to_string(),
    );
    set(
        &mut h,
        "x-account-object-count",
        buckets.iter().map(|b| b.objects).sum::<i64>().to_string(),
    );
    set(
        &mut h,
        "x-account-bytes-used",
        buckets.iter().map(|b| b.bytes).sum::<i64>().to_string(),
    );
    set(
        &mut h,
        "x-timestamp",
        timestamp(buckets.iter().map(|b| b.created_ms).min().unwrap_or(0)),
    );
    match *m {
        Method::HEAD => Ok((StatusCode::NO_CONTENT, h).into_response()),
        Method::GET => {
            let prefix = query.get("prefix").cloned().unwrap_or_default();
            let marker = query.get("marker").cloned().unwrap_or_default();
            let end = query.get("end_marker").cloned();
            let n = limit(query)?;
            let picked: Vec<_> = buckets
                .iter()
                .filter(|b| b.name.starts_with(&prefix) && b.name > marker)
                .filter(|b| end.as_ref().is_none_or(|e| &b.name < e))
                .take(n)
                .collect();
            if picked.is_empty() && !json {
                return Ok((StatusCode::NO_CONTENT, h).into_response());
            }
            let body = if json {
                serde_json::to_string(
                    &picked
                        .iter()
                        .map(|b| json!({"name": b.name, "count": b.objects, "bytes": b.bytes, "last_modified": iso(b.created_ms)}))
                        .collect::<Vec<_>>(),
                )
                .unwrap_or_default()
            } else {
                picked.iter().map(|b| format!("{}\n", b.name)).collect()
            };
            Ok(listing(StatusCode::OK, h, body, json))
        }
        _ => Err(Fail(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{m} is not allowed on an account"),
        )),
    }
}

/// `X-Container-Read`: `.r:*` (any referrer: anyone) is public-read,
/// `*:*` (any user of any project) authenticated-read, anything else
/// private (per-project and per-user grants are not kept).
fn read_acl(h: &HeaderMap) -> Option<Acl> {
    let v = h.get("x-container-read")?.to_str().ok()?;
    let has = |e: &str| v.split(',').any(|p| p.trim() == e);
    Some(if has(".r:*") {
        Acl::PublicRead
    } else if has("*:*") {
        Acl::AuthenticatedRead
    } else {
        Acl::Private
    })
}

/// The `X-Container-Read` that shows a bucket's ACL (Swift has no
/// anonymous writes: a public-read-write bucket shows its read side).
fn read_acl_header(acl: Acl) -> Option<&'static str> {
    match acl {
        Acl::Private => None,
        Acl::PublicRead | Acl::PublicReadWrite => Some(".r:*,.rlistings"),
        Acl::AuthenticatedRead => Some("*:*"),
    }
}

#[allow(clippy::too_many_arguments)]
async fn container_op(
    core: &Core,
    caller: Option<&Principal>,
    account: &str,
    name: &str,
    m: &Method,
    h: &HeaderMap,
    query: &BTreeMap<String, String>,
    json: bool,
) -> Result<Response> {
    match *m {
        Method::PUT => {
            let caller = require(caller)?;
            if caller.project_id != account && !caller.is_admin() {
                return Err(Fail(
                    StatusCode::FORBIDDEN,
                    "containers are created in your own account".into(),
                ));
            }
            let meta = meta_headers(h, "container");
            let acl = read_acl(h);
            match core
                .objects
                .create_bucket(
                    caller,
                    NewBucket {
                        name: name.to_string(),
                        acl: acl.unwrap_or(Acl::Private),
                        meta: meta
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                            .collect(),
                    },
                )
                .await
            {
                Ok(_) => Ok(StatusCode::CREATED.into_response()),
                Err(ObjectError::BucketAlreadyOwnedByYou(_)) => {
                    // Swift's PUT on an existing container updates it.
                    core.objects
                        .update_bucket(caller, name, BucketPatch { acl, meta })
                        .await?;
                    Ok(StatusCode::ACCEPTED.into_response())
                }
                Err(e) => Err(e.into()),
            }
        }
        Method::POST => {
            let caller = require(caller)?;
            owned(core, Some(caller), account, name)?;
            core.objects
                .update_bucket(
                    caller,
                    name,
                    BucketPatch {
                        acl: read_acl(h),
                        meta: meta_headers(h, "container"),
                    },
                )
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Method::DELETE => {
            let caller = require(caller)?;
            owned(core, Some(caller), account, name)?;
            core.objects.delete_bucket(caller, name).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Method::HEAD | Method::GET => {
            let b = owned(core, caller, account, name)?;
            let mut hm = HeaderMap::new();
            set(&mut hm, "x-container-object-count", b.objects.to_string());
            set(&mut hm, "x-container-bytes-used", b.bytes.to_string());
            set(&mut hm, "x-timestamp", timestamp(b.created_ms));
            if let Some(v) = read_acl_header(b.acl) {
                set(&mut hm, "x-container-read", v);
            }
            for (k, v) in &b.meta {
                set(&mut hm, &format!("x-container-meta-{k}"), v);
            }
            if *m == Method::HEAD {
                return Ok((StatusCode::NO_CONTENT, hm).into_response());
            }
            let n = limit(query)?;
            let prefix = query.get("prefix").cloned().unwrap_or_default();
            let delimiter = query.get("delimiter").cloned().filter(|d| !d.is_empty());
            let end = query.get("end_marker").cloned();
            let page = core
                .objects
                .list_objects(
                    caller,
                    name,
                    ListQuery {
                        prefix,
                        delimiter,
                        after: query.get("marker").cloned().filter(|m| !m.is_empty()),
                        max: n,
                    },
                )
                .await?;
            // Objects and subdirs, merged in order.
            let mut entries: Vec<(String, Option<&nuage_object::ObjectSummary>)> = page
                .objects
                .iter()
                .map(|o| (o.key.clone(), Some(o)))
                .chain(page.prefixes.iter().map(|p| (p.clone(), None)))
                .filter(|(k, _)| end.as_ref().is_none_or(|e| k < e))
                .collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            if entries.is_empty() && !json {
                return Ok((StatusCode::NO_CONTENT, hm).into_response());
            }
            let body = if json {
                let items: Vec<_> = entries
                    .iter()
                    .map(|(k, o)| match o {
                        Some(o) => json!({
                            "name": k,
                            "hash": o.etag,
                            "bytes": o.size,
                            "content_type": o.content_type,
                            "last_modified": iso(o.modified_ms),
                        }),
                        None => json!({"subdir": k}),
                    })
                    .collect();
                serde_json::to_string(&items).unwrap_or_default()
            } else {
                entries.iter().map(|(k, _)| format!("{k}\n")).collect()
            };
            Ok(listing(StatusCode::OK, hm, body, json))
        }
        _ => Err(Fail(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{m} is not allowed on a container"),
        )),
    }
}

/// Headers of an object, for GET and HEAD.
fn object_headers(o: &ObjectMeta) -> HeaderMap {
    let mut h = HeaderMap::new();
    set(&mut h, "etag", &o.etag);
    set(&mut h, "content-type", &o.content_type);
    set(&mut h, "last-modified", http_date(o.modified_ms));
    set(&mut h, "x-timestamp", timestamp(o.modified_ms));
    set(&mut h, "accept-ranges", "bytes");
    for (k, v) in &o.user_meta {
        set(&mut h, &format!("x-object-meta-{k}"), v);
    }
    for (k, v) in &o.headers {
        set(&mut h, k, v);
    }
    h
}

/// Stored headers Swift keeps with an object.
fn kept_headers(h: &HeaderMap) -> BTreeMap<String, String> {
    [
        "content-encoding",
        "content-disposition",
        "content-language",
        "cache-control",
        "expires",
    ]
    .iter()
    .filter_map(|n| Some((n.to_string(), h.get(*n)?.to_str().ok()?.to_string())))
    .collect()
}

#[allow(clippy::too_many_arguments)]
async fn object_op(
    core: &Core,
    caller: Option<&Principal>,
    account: &str,
    container: &str,
    key: &str,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Response> {
    let (m, h) = (&parts.method, &parts.headers);
    owned(core, caller, account, container)?;
    match *m {
        Method::GET | Method::HEAD => {
            let range = h
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(RangeSpec::parse);
            if *m == Method::HEAD {
                let o = core.objects.head_object(caller, container, key).await?;
                let mut hm = object_headers(&o);
                set(&mut hm, "content-length", o.size.to_string());
                return Ok((StatusCode::OK, hm).into_response());
            }
            let (o, r, data) = core
                .objects
                .get_object(caller, container, key, range)
                .await?;
            let mut hm = object_headers(&o);
            let (status, len) = match r {
                Some(r) => {
                    set(&mut hm, "content-range", r.content_range());
                    (StatusCode::PARTIAL_CONTENT, r.end - r.start)
                }
                None => (StatusCode::OK, o.size),
            };
            set(&mut hm, "content-length", len.to_string());
            let body = ZeroCopy::body(ZeroCopy::for_request(parts), data);
            Ok((status, hm, body).into_response())
        }
        Method::PUT => {
            let caller = require(caller)?;
            if let Some(src) = h.get("x-copy-from").and_then(|v| v.to_str().ok()) {
                let src = decode(src.trim_start_matches('/'))?;
                let (sb, sk) = src.split_once('/').ok_or_else(|| {
                    Fail(
                        StatusCode::PRECONDITION_FAILED,
                        "X-Copy-From must be <container>/<object>".into(),
                    )
                })?;
                let o = core
                    .objects
                    .copy_object(
                        Some(caller),
                        &CopySource::new(sb, sk),
                        container,
                        key,
                        MetadataDirective::Copy,
                        None,
                    )
                    .await?;
                let mut hm = HeaderMap::new();
                set(&mut hm, "etag", &o.etag);
                set(&mut hm, "last-modified", http_date(o.modified_ms));
                return Ok((StatusCode::CREATED, hm).into_response());
            }
            let length = match h.get(header::CONTENT_LENGTH) {
                Some(v) => Some(
                    v.to_str()
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| bad("Content-Length is not a number"))?,
                ),
                None if h
                    .get(header::TRANSFER_ENCODING)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked")) =>
                {
                    None
                }
                None => {
                    return Err(Fail(
                        StatusCode::LENGTH_REQUIRED,
                        "Content-Length or chunked transfer encoding is required".into(),
                    ))
                }
            };
            let content_md5 = match h.get(header::ETAG).and_then(|v| v.to_str().ok()) {
                Some(e) => {
                    let mut raw = [0u8; 16];
                    hex::decode_to_slice(e.trim_matches('"'), &mut raw).map_err(|_| {
                        Fail(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "the ETag header is not an MD5".into(),
                        )
                    })?;
                    Some(raw)
                }
                None => None,
            };
            let opts = PutOptions {
                content_type: h
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(String::from),
                user_meta: meta_headers(h, "object")
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, v?)))
                    .collect(),
                headers: kept_headers(h),
                content_length: length,
                content_md5,
                ..Default::default()
            };
            let stream = body
                .into_data_stream()
                .map_err(|e| ObjectError::Body(e.to_string()));
            let o = core
                .objects
                .put_object(Some(caller), container, key, opts, stream)
                .await?;
            let mut hm = HeaderMap::new();
            set(&mut hm, "etag", &o.etag);
            set(&mut hm, "last-modified", http_date(o.modified_ms));
            Ok((StatusCode::CREATED, hm).into_response())
        }
        Method::POST => {
            let caller = require(caller)?;
            let meta = meta_headers(h, "object")
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect();
            let ct = h
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            core.objects
                .update_object_meta(caller, container, key, ct, meta, kept_headers(h))
                .await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Method::DELETE => {
            let caller = require(caller)?;
            if !core
                .objects
                .delete_object(Some(caller), container, key)
                .await?
            {
                return Err(Fail(
                    StatusCode::NOT_FOUND,
                    format!("the object {key} does not exist"),
                ));
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => Err(Fail(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{m} is not allowed on an object"),
        )),
    }
}
