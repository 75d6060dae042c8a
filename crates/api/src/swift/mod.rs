//! The Swift dialect: `/v1/AUTH_<project>/<container>/<object>` over the
//! object engine, authenticated by Keystone tokens (`X-Auth-Token`).
//!
//! A container is a bucket owned by the account's project (an admin may
//! act in any account; the engine's policy decides); bucket names are
//! global (docs/adr/0010-object-storage.md), so a container name another
//! project holds is refused with 409. `X-Container-Read: .r:*` lets anyone
//! read the objects, `.rlistings` list the container, `*:*` any user do
//! both (docs/adr/0013). Errors are Swift's: a status and a short
//! plain-text body.
//!
//! Each request is first recognised as one [`router::Operation`]; what
//! nuage does not implement is refused there (501) before anything acts.
//! Every answer, errors included, carries Swift's `X-Trans-Id`,
//! `X-Openstack-Request-Id`, `Content-Type` and `Date`.

mod router;

use crate::zerocopy::ZeroCopy;
use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use nuage_model::identity::Principal;
use nuage_model::{ErrorKind, HasKind};
use nuage_object::{
    AccountQuery, Acl, BucketPatch, Conditional, CopySource, ListQuery, MetadataDirective,
    NewBucket, ObjectError, ObjectMeta, PutOptions, RangeSpec,
};
use serde_json::json;

use crate::wire::{self, http_date, set_header as set};
use crate::{auth, context, Core, SharedCore};

use router::{Listing, Operation, LISTING_LIMIT};

/// A refusal, in Swift's form: a status and a sentence.
#[derive(Debug)]
pub(crate) struct Fail(StatusCode, String);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        // A 501 says what in its first words (clients show the status
        // already, and the `swift` client only 60 characters of the body).
        let body = if self.0.is_server_error() && self.0 != StatusCode::NOT_IMPLEMENTED {
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
            ObjectError::PreconditionFailed(_) | ObjectError::ConditionFailed(_) => {
                StatusCode::PRECONDITION_FAILED
            }
            _ => match e.kind() {
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::Forbidden => StatusCode::FORBIDDEN,
                ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
                ErrorKind::Conflict | ErrorKind::AlreadyExists => StatusCode::CONFLICT,
                ErrorKind::Internal | ErrorKind::Unavailable => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
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

/// The Swift operation parser on raw request parts, as the front door calls
/// it: the operation recognised (its `Debug` form), or the status of the
/// refusal. For the fuzz target `fuzz/fuzz_targets/swift_router.rs` only.
#[doc(hidden)]
pub fn parse_for_fuzzing(
    method: &http::Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> std::result::Result<String, u16> {
    let query: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    Operation::parse(method, path, &query, headers)
        .map(|op| format!("{op:?}"))
        .map_err(|Fail(status, _)| status.as_u16())
}

/// Serves one Swift request (and `GET /info`).
pub async fn handle(core: SharedCore, req: Request) -> Response {
    let mut r = match serve(&core, req).await {
        Ok(r) => r,
        Err(f) => f.into_response(),
    };
    swift_headers(r.headers_mut());
    r
}

/// The headers every Swift answer carries; clients and operators quote
/// `X-Trans-Id` when something went wrong.
fn swift_headers(h: &mut HeaderMap) {
    let id = context::request_id();
    set(h, "x-trans-id", &id);
    set(h, "x-openstack-request-id", &id);
    if !h.contains_key(header::CONTENT_TYPE) {
        set(h, "content-type", "text/plain; charset=utf-8");
    }
    if !h.contains_key(header::DATE) {
        set(h, "date", http_date(chrono::Utc::now().timestamp_millis()));
    }
}

async fn serve(core: &Core, req: Request) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let query = crate::wire::query_pairs(&parts.uri);
    let op = Operation::parse(&parts.method, parts.uri.path(), &query, &parts.headers)?;
    if op == Operation::Info {
        return Ok(info());
    }
    let caller = match auth::token(&parts) {
        Some(t) => Some(
            core.identity
                .validate(t)
                .await
                .map_err(|e| Fail(StatusCode::UNAUTHORIZED, context::public_error(&e).1))?,
        ),
        None => None,
    };
    let caller = caller.as_ref();
    match dispatch(core, caller, op, &parts, body).await {
        // Swift asks an anonymous client to authenticate, rather than
        // refusing it outright.
        Err(Fail(StatusCode::FORBIDDEN, _)) if caller.is_none() => Err(Fail(
            StatusCode::UNAUTHORIZED,
            "an X-Auth-Token is required".into(),
        )),
        r => r,
    }
}

/// Acts on a recognised request: one arm per operation.
async fn dispatch(
    core: &Core,
    caller: Option<&Principal>,
    op: Operation,
    parts: &http::request::Parts,
    body: Body,
) -> Result<Response> {
    let h = &parts.headers;
    match op {
        Operation::Info => Ok(info()),
        Operation::HeadAccount(a) => {
            let (hm, _) = account(core, require(caller)?, &a.project).await?;
            Ok((StatusCode::NO_CONTENT, hm).into_response())
        }
        Operation::ListContainers(a, l) => {
            list_containers(core, require(caller)?, &a.project, &l).await
        }
        Operation::PostAccount(a) => {
            core.objects
                .update_account_meta(require(caller)?, &a.project, meta_headers(h, "account"))
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Operation::PutContainer(c) => put_container(core, require(caller)?, &c, h).await,
        Operation::PostContainer(c) => {
            let caller = require(caller)?;
            owned(core, &c)?;
            update_container(core, caller, &c, read_acl(h)?, meta_headers(h, "container")).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Operation::DeleteContainer(c) => {
            let caller = require(caller)?;
            owned(core, &c)?;
            core.objects.delete_bucket(caller, &c.name).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Operation::HeadContainer(c) => {
            owned(core, &c)?;
            let b = core.objects.head_bucket(caller, &c.name)?;
            Ok((StatusCode::NO_CONTENT, container_headers(&b)).into_response())
        }
        Operation::ListObjects(c, l) => list_objects(core, caller, &c, &l).await,
        Operation::HeadObject(o) => {
            owned(core, &o.container)?;
            let m = match core
                .objects
                .head_object_if(caller, &o.container.name, &o.key, &wire::conditions(h))
                .await?
            {
                Conditional::Served(m) => m,
                Conditional::NotModified(m) => return Ok(not_modified(&m)),
            };
            let mut hm = object_headers(&m);
            set(&mut hm, "content-length", m.size.to_string());
            Ok((StatusCode::OK, hm).into_response())
        }
        Operation::GetObject(o) => get_object(core, caller, &o, parts).await,
        Operation::PutObject {
            object,
            if_none_match,
        } => put_object(core, require(caller)?, &object, if_none_match, h, body).await,
        Operation::CopyObject {
            to,
            from_container,
            from_object,
        } => {
            let caller = require(caller)?;
            owned(core, &to.container)?;
            let m = core
                .objects
                .copy_object(
                    Some(caller),
                    &CopySource::new(&from_container, &from_object),
                    &to.container.name,
                    &to.key,
                    MetadataDirective::Copy,
                    None,
                )
                .await?;
            Ok(written(&m))
        }
        Operation::PostObject(o) => {
            let caller = require(caller)?;
            owned(core, &o.container)?;
            let meta = meta_headers(h, "object")
                .into_iter()
                .filter_map(|(k, v)| Some((k, v?)))
                .collect();
            let ct = h
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            core.objects
                .update_object_meta(caller, &o.container.name, &o.key, ct, meta, kept_headers(h))
                .await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Operation::DeleteObject(o) => {
            let caller = require(caller)?;
            owned(core, &o.container)?;
            if !core
                .objects
                .delete_object(Some(caller), &o.container.name, &o.key)
                .await?
            {
                return Err(Fail(
                    StatusCode::NOT_FOUND,
                    format!("the object {} does not exist", o.key),
                ));
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

/// Swift's capabilities (`GET /info`): only what nuage enforces. No
/// `slo`, `bulk_delete`, `tempurl` or `versioned_writes` section, so
/// clients that read this document do not try them.
fn info() -> Response {
    let body = json!({
        "swift": {
            "version": concat!("nuage-", env!("CARGO_PKG_VERSION")),
            "max_file_size": nuage_object::MAX_OBJECT_SIZE,
            "max_object_name_length": nuage_object::MAX_KEY_LEN,
            "max_container_name_length": nuage_object::MAX_BUCKET_NAME_LEN,
            "max_meta_overall_size": nuage_object::MAX_META_SIZE,
            "container_listing_limit": LISTING_LIMIT,
            "account_listing_limit": LISTING_LIMIT,
            "allow_account_management": false,
            "account_autocreate": true,
            "strict_cors_mode": true,
            "policies": [{"name": "default", "default": true}],
        }
    });
    let mut r = (StatusCode::OK, body.to_string()).into_response();
    set(
        r.headers_mut(),
        "content-type",
        "application/json; charset=utf-8",
    );
    r
}

fn require(caller: Option<&Principal>) -> Result<&Principal> {
    caller.ok_or_else(|| {
        Fail(
            StatusCode::UNAUTHORIZED,
            "an X-Auth-Token is required".into(),
        )
    })
}

/// Swift's account rule, the engine's: the container is reached through
/// its own account only.
fn owned(core: &Core, c: &router::Container) -> Result<()> {
    Ok(core.objects.in_account(&c.account.project, &c.name)?)
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

/// The account's headers and its containers.
async fn account(
    core: &Core,
    caller: &Principal,
    project: &str,
) -> Result<(HeaderMap, Vec<nuage_object::Bucket>)> {
    let buckets = core.objects.list_project_buckets(caller, project).await?;
    let mut h = HeaderMap::new();
    for (k, v) in core.objects.account_meta(caller, project).await? {
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
    Ok((h, buckets))
}

async fn list_containers(
    core: &Core,
    caller: &Principal,
    project: &str,
    l: &Listing,
) -> Result<Response> {
    let (h, _) = account(core, caller, project).await?;
    let picked = core
        .objects
        .list_account(
            caller,
            project,
            &AccountQuery {
                prefix: l.prefix.clone(),
                after: l.marker.clone(),
                before: l.end_marker.clone(),
                max: l.limit,
            },
        )
        .await?;
    if picked.is_empty() && !l.json {
        return Ok((StatusCode::NO_CONTENT, h).into_response());
    }
    let body = if l.json {
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
    Ok(listing(StatusCode::OK, h, body, l.json))
}

/// `X-Container-Read` as the bucket's two grants, (who may list, who may
/// read the objects): `.r:*` (any referrer: anyone) reads objects,
/// `.rlistings` lists, `*:*` (any user of any project) does both;
/// `X-Remove-Container-Read` or an empty value grants nothing. Other
/// elements (referrer lists, per-project and per-user grants) are not
/// kept, so they are refused rather than dropped.
fn read_acl(h: &HeaderMap) -> Result<Option<(Acl, Acl)>> {
    if h.contains_key("x-remove-container-read") {
        return Ok(Some((Acl::Private, Acl::Private)));
    }
    let Some(v) = h.get("x-container-read") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| bad("X-Container-Read is not valid text"))?;
    let (mut list, mut read, mut users) = (false, false, false);
    for e in v.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match e {
            ".r:*" => read = true,
            ".rlistings" => list = true,
            "*:*" => users = true,
            other => {
                return Err(Fail(
                    StatusCode::NOT_IMPLEMENTED,
                    format!("not implemented by nuage: the read ACL element {other:?} (it keeps .r:*, .rlistings and *:*); nothing was changed"),
                ))
            }
        }
    }
    let grant = |anyone: bool| match (anyone, users) {
        (true, _) => Acl::PublicRead,
        (false, true) => Acl::AuthenticatedRead,
        (false, false) => Acl::Private,
    };
    Ok(Some((grant(list), grant(read))))
}

/// The `X-Container-Read` that shows a bucket's grants. Swift has no
/// anonymous writes (a public-read-write bucket shows its read side) and
/// no listing for users only (S3's authenticated-read bucket shows none).
fn read_acl_header(b: &nuage_object::Bucket) -> Option<String> {
    let (list, read) = (b.acl.lets_read(false), b.object_acl.lets_read(false));
    let mut v = Vec::new();
    if read {
        v.push(".r:*");
    }
    if list {
        v.push(".rlistings");
    }
    if b.acl.lets_read(true) && b.object_acl.lets_read(true) && !(list && read) {
        v.push("*:*");
    }
    (!v.is_empty()).then(|| v.join(","))
}

/// Creates the container in the account of the path (the engine's policy
/// decides who may), or updates it if that account has it already.
async fn put_container(
    core: &Core,
    caller: &Principal,
    c: &router::Container,
    h: &HeaderMap,
) -> Result<Response> {
    let meta = meta_headers(h, "container");
    let acl = read_acl(h)?;
    let (list, read) = acl.unwrap_or((Acl::Private, Acl::Private));
    match core
        .objects
        .create_bucket_in(
            caller,
            &c.account.project,
            NewBucket {
                name: c.name.clone(),
                acl: list,
                meta: meta
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
                    .collect(),
            },
            read,
        )
        .await
    {
        Ok(_) => Ok(StatusCode::CREATED.into_response()),
        Err(ObjectError::BucketAlreadyOwnedByYou(_)) => {
            // Swift's PUT on an existing container updates it.
            update_container(core, caller, c, acl, meta).await?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// Sets a container's read grants (when given) and metadata.
async fn update_container(
    core: &Core,
    caller: &Principal,
    c: &router::Container,
    acl: Option<(Acl, Acl)>,
    meta: BTreeMap<String, Option<String>>,
) -> Result<()> {
    core.objects
        .update_bucket(
            caller,
            &c.name,
            BucketPatch {
                acl: acl.map(|a| a.0),
                object_acl: acl.map(|a| a.1),
                meta,
            },
        )
        .await?;
    Ok(())
}

fn container_headers(b: &nuage_object::Bucket) -> HeaderMap {
    let mut hm = HeaderMap::new();
    set(&mut hm, "x-container-object-count", b.objects.to_string());
    set(&mut hm, "x-container-bytes-used", b.bytes.to_string());
    set(&mut hm, "x-timestamp", timestamp(b.created_ms));
    if let Some(v) = read_acl_header(b) {
        set(&mut hm, "x-container-read", v);
    }
    for (k, v) in &b.meta {
        set(&mut hm, &format!("x-container-meta-{k}"), v);
    }
    hm
}

async fn list_objects(
    core: &Core,
    caller: Option<&Principal>,
    c: &router::Container,
    l: &Listing,
) -> Result<Response> {
    owned(core, c)?;
    let b = core.objects.head_bucket(caller, &c.name)?;
    let hm = container_headers(&b);
    let page = core
        .objects
        .list_objects(
            caller,
            &c.name,
            ListQuery {
                prefix: l.prefix.clone(),
                delimiter: l.delimiter.clone(),
                after: l.marker.clone(),
                max: l.limit,
            },
        )
        .await?;
    // Objects and subdirs, merged in order.
    let mut entries: Vec<(String, Option<&nuage_object::ObjectSummary>)> = page
        .objects
        .iter()
        .map(|o| (o.key.clone(), Some(o)))
        .chain(page.prefixes.iter().map(|p| (p.clone(), None)))
        .filter(|(k, _)| l.end_marker.as_ref().is_none_or(|e| k < e))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    if entries.is_empty() && !l.json {
        return Ok((StatusCode::NO_CONTENT, hm).into_response());
    }
    let body = if l.json {
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
    Ok(listing(StatusCode::OK, hm, body, l.json))
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

/// The headers the engine keeps with an object.
fn kept_headers(h: &HeaderMap) -> BTreeMap<String, String> {
    nuage_object::kept_headers(wire::text_headers(h))
}

/// Swift's 304: the object's headers (its ETag, Last-Modified, metadata,
/// as Swift's own 304 keeps them) without a body.
fn not_modified(o: &ObjectMeta) -> Response {
    (StatusCode::NOT_MODIFIED, object_headers(o)).into_response()
}

/// The answer to a write: 201 with the new object's ETag.
fn written(o: &ObjectMeta) -> Response {
    let mut hm = HeaderMap::new();
    set(&mut hm, "etag", &o.etag);
    set(&mut hm, "last-modified", http_date(o.modified_ms));
    (StatusCode::CREATED, hm).into_response()
}

async fn get_object(
    core: &Core,
    caller: Option<&Principal>,
    o: &router::Object,
    parts: &http::request::Parts,
) -> Result<Response> {
    owned(core, &o.container)?;
    let range = parts
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(RangeSpec::parse);
    let conditions = wire::conditions(&parts.headers);
    let (m, r, data) = match core
        .objects
        .get_object_if(caller, &o.container.name, &o.key, range, &conditions)
        .await?
    {
        Conditional::Served(read) => read,
        Conditional::NotModified(m) => return Ok(not_modified(&m)),
    };
    let mut hm = object_headers(&m);
    let (status, len) = match r {
        Some(r) => {
            set(&mut hm, "content-range", r.content_range());
            (StatusCode::PARTIAL_CONTENT, r.end - r.start)
        }
        None => (StatusCode::OK, m.size),
    };
    set(&mut hm, "content-length", len.to_string());
    let body = ZeroCopy::body(ZeroCopy::for_request(parts), data);
    Ok((status, hm, body).into_response())
}

async fn put_object(
    core: &Core,
    caller: &Principal,
    o: &router::Object,
    if_none_match: bool,
    h: &HeaderMap,
    body: Body,
) -> Result<Response> {
    owned(core, &o.container)?;
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
        if_none_match,
        ..Default::default()
    };
    let stream = body
        .into_data_stream()
        .map_err(|e| ObjectError::Body(e.to_string()));
    let m = core
        .objects
        .put_object(Some(caller), &o.container.name, &o.key, opts, stream)
        .await?;
    Ok(written(&m))
}
