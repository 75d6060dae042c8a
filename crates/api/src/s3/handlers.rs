//! S3 operations: request parsing, engine calls, XML answers.

use crate::zerocopy::ZeroCopy;
use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, TryStreamExt};
use http::request::Parts;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use nuage_identity::sigv4::{self, Payload, SignedRequest};
use nuage_identity::IdentityError;
use nuage_model::identity::Principal;
use nuage_object::checksum::{Algorithm, Expected};
use nuage_object::{
    Acl, BucketPatch, ChecksumSpec, CompletePart, Conditional, CopySource, ListQuery,
    MetadataDirective, NewBucket, ObjectError, ObjectMeta, PutOptions, RangeSpec,
};
use sha2::{Digest, Sha256};

use super::chunked::{self, AwsChunked, ChunkSigning};
use super::error::S3Error;
use super::router::{self, Level, Operation};
use super::xml;
use crate::wire::{http_date, set_header as set};
use crate::{context, wire, Core, SharedCore, RESERVED_BUCKET_NAMES};

/// Largest XML request body (a complete of 10,000 parts fits).
const MAX_XML_BODY: usize = 4 * 1024 * 1024;
/// Keys per listing page at most (S3's).
const MAX_KEYS: usize = 1000;

type Result<T> = std::result::Result<T, S3Error>;

/// Decoder errors travel through the engine as body errors that keep
/// their S3 code.
fn chunked_to_object(e: chunked::ChunkedError) -> ObjectError {
    ObjectError::Rejected {
        status: e.http_status(),
        code: e.s3_code(),
        message: e.to_string(),
    }
}

/// Serves one S3 request.
pub async fn handle(core: SharedCore, req: Request) -> Response {
    let head = req.method() == Method::HEAD;
    let resource = req.uri().path().to_string();
    match serve(&core, req).await {
        Ok(r) => r,
        Err(e) => e.render(&resource, head),
    }
}

/// What the request addresses.
struct Target {
    bucket: Option<String>,
    key: Option<String>,
}

fn decode(s: &str) -> Result<String> {
    wire::decode_path(s).ok_or_else(|| S3Error::invalid("the path is not valid UTF-8"))
}

/// Path style (`/bucket/key`) or virtual-hosted style (`bucket.<host>/key`).
fn target(core: &Core, parts: &Parts) -> Result<Target> {
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let base = core
        .public_url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split(['/', ':'])
        .next()
        .unwrap_or("");
    let path = parts.uri.path();
    // `<bucket>.localhost` always means loopback (RFC 6761), so clients on
    // the machine can use virtual-hosted style whatever the public URL.
    let vhost = [base, "localhost"]
        .into_iter()
        .filter(|b| !b.is_empty() && host.len() > b.len() + 1)
        .find_map(|b| host.strip_suffix(b)?.strip_suffix('.'));
    if let Some(bucket) = vhost {
        // One '/' only: keys may begin with '/' themselves.
        let key = path.strip_prefix('/').unwrap_or(path);
        return Ok(Target {
            bucket: Some(bucket.to_string()),
            key: (!key.is_empty()).then(|| decode(key)).transpose()?,
        });
    }
    let rest = path.trim_start_matches('/');
    if rest.is_empty() {
        return Ok(Target {
            bucket: None,
            key: None,
        });
    }
    let (b, k) = rest.split_once('/').unwrap_or((rest, ""));
    Ok(Target {
        bucket: Some(decode(b)?),
        key: (!k.is_empty()).then(|| decode(k)).transpose()?,
    })
}

/// Who signed, and how the body is encoded.
struct Auth {
    principal: Option<Principal>,
    payload: PayloadKind,
}

enum PayloadKind {
    None,
    Sha256([u8; 32]),
    Chunked(chunked::Options),
}

async fn authenticate(core: &Core, parts: &Parts) -> Result<Auth> {
    let headers = crate::auth::signed_headers(parts);
    let signed = SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &headers,
        body_sha256: None,
    };
    match core.identity.authenticate_sigv4_keyed(&signed).await {
        Ok(Some((principal, auth, key))) => {
            auth.check_scope(&core.region, "s3")
                .map_err(|e| S3Error::new(e.http_status(), e.aws_code(), e.to_string()))?;
            let payload = match auth.payload() {
                Payload::Unsigned => PayloadKind::None,
                Payload::Sha256(hex) => {
                    let mut raw = [0u8; 32];
                    hex::decode_to_slice(hex, &mut raw)
                        .map_err(|_| S3Error::invalid("x-amz-content-sha256 is not a SHA-256"))?;
                    PayloadKind::Sha256(raw)
                }
                Payload::StreamingSigned | Payload::StreamingSignedTrailer => {
                    let signing = ChunkSigning::from_parts(
                        key,
                        &auth.amz_date,
                        &auth.scope(),
                        &auth.signature,
                    );
                    let mode = if auth.payload() == Payload::StreamingSigned {
                        chunked::Mode::Signed(signing)
                    } else {
                        chunked::Mode::SignedTrailer(signing)
                    };
                    PayloadKind::Chunked(chunked::Options::from_headers(mode, &parts.headers)?)
                }
                Payload::StreamingUnsignedTrailer => PayloadKind::Chunked(
                    chunked::Options::from_headers(chunked::Mode::UnsignedTrailer, &parts.headers)?,
                ),
            };
            Ok(Auth {
                principal: Some(principal),
                payload,
            })
        }
        Ok(None) => Ok(Auth {
            principal: None,
            payload: PayloadKind::None,
        }),
        Err(IdentityError::SigV4(e)) => {
            let mut err = S3Error::new(e.http_status(), e.aws_code(), e.to_string());
            if matches!(e, sigv4::SigV4Error::SignatureDoesNotMatch) {
                if let Ok(Some(a)) = sigv4::parse(&signed) {
                    if let (Ok(sts), Ok(cr)) = (
                        sigv4::string_to_sign(&signed, &a),
                        sigv4::canonical_request(&signed, &a),
                    ) {
                        err = err
                            .with("AWSAccessKeyId", a.credential.access_key_id.clone())
                            .with("StringToSign", sts)
                            .with("SignatureProvided", a.signature.clone())
                            .with("CanonicalRequest", cr);
                    }
                }
            }
            Err(err)
        }
        Err(e) => {
            let (_, msg) = context::public_error(&e);
            Err(S3Error::denied(msg))
        }
    }
}

fn q(query: &BTreeMap<String, String>, name: &str) -> Option<String> {
    query.get(name).cloned()
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn require(auth: &Auth) -> Result<&Principal> {
    auth.principal
        .as_ref()
        .ok_or_else(|| S3Error::denied("anonymous users may only use public buckets and objects"))
}

async fn serve(core: &Core, req: Request) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let auth = authenticate(core, &parts).await?;
    let t = target(core, &parts)?;
    let query: BTreeMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            sigv4::query_pairs(q)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let level = match (&t.bucket, &t.key) {
        (None, _) => Level::Service,
        (Some(_), None) => Level::Bucket,
        (Some(_), Some(_)) => Level::Object,
    };
    let op = router::route(
        &parts.method,
        level,
        t.bucket.as_deref(),
        &query,
        &parts.headers,
    )?;
    // The router guarantees the addressing each operation needs.
    let bucket = t.bucket.unwrap_or_default();
    let key = t.key.unwrap_or_default();
    let h = &parts.headers;
    use Operation::*;
    match op {
        ListBuckets => list_buckets(core, require(&auth)?).await,

        CreateBucket => create_bucket(core, &auth, &bucket, h, body).await,
        HeadBucket => {
            let b = core.objects.head_bucket(auth.principal.as_ref(), &bucket)?;
            let mut hm = HeaderMap::new();
            set(&mut hm, "x-amz-bucket-region", &b.region);
            Ok((StatusCode::OK, hm).into_response())
        }
        DeleteBucket => {
            core.objects.delete_bucket(require(&auth)?, &bucket).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        ListObjects | ListObjectsV2 => list_objects(core, &auth, &bucket, &query).await,
        ListMultipartUploads => list_uploads(core, &auth, &bucket, &query).await,
        DeleteObjects => delete_objects(core, &auth, &bucket, h, body).await,
        GetBucketLocation => {
            let b = core.objects.head_bucket(auth.principal.as_ref(), &bucket)?;
            Ok(xml_response(
                StatusCode::OK,
                xml::LocationConstraint { region: b.region }.to_xml(),
            ))
        }
        GetBucketAcl => {
            let b = core.objects.head_bucket(Some(require(&auth)?), &bucket)?;
            Ok(xml_response(
                StatusCode::OK,
                acl_xml(core, &b.project_id, b.acl).await,
            ))
        }
        PutBucketAcl => put_bucket_acl(core, &auth, &bucket, h).await,

        // Configurations nuage never stores, answered as S3 answers a
        // bucket on which they were never set.
        GetBucketVersioning => fixed(core, &auth, &bucket, "VersioningConfiguration", &[]),
        GetBucketAccelerateConfiguration => {
            fixed(core, &auth, &bucket, "AccelerateConfiguration", &[])
        }
        GetBucketLogging => fixed(core, &auth, &bucket, "BucketLoggingStatus", &[]),
        GetBucketNotificationConfiguration => {
            fixed(core, &auth, &bucket, "NotificationConfiguration", &[])
        }
        GetBucketRequestPayment => fixed(
            core,
            &auth,
            &bucket,
            "RequestPaymentConfiguration",
            &[("Payer", "BucketOwner")],
        ),
        GetBucketTagging => absent(core, &auth, &bucket, "NoSuchTagSet", "tag set"),
        GetBucketCors => absent(
            core,
            &auth,
            &bucket,
            "NoSuchCORSConfiguration",
            "CORS configuration",
        ),
        GetBucketPolicy => absent(core, &auth, &bucket, "NoSuchBucketPolicy", "bucket policy"),
        GetBucketLifecycleConfiguration => absent(
            core,
            &auth,
            &bucket,
            "NoSuchLifecycleConfiguration",
            "lifecycle configuration",
        ),
        GetBucketWebsite => absent(
            core,
            &auth,
            &bucket,
            "NoSuchWebsiteConfiguration",
            "website configuration",
        ),
        GetBucketEncryption => absent(
            core,
            &auth,
            &bucket,
            "ServerSideEncryptionConfigurationNotFoundError",
            "server-side encryption configuration",
        ),
        GetPublicAccessBlock => absent(
            core,
            &auth,
            &bucket,
            "NoSuchPublicAccessBlockConfiguration",
            "public access block configuration",
        ),
        GetBucketOwnershipControls => absent(
            core,
            &auth,
            &bucket,
            "OwnershipControlsNotFoundError",
            "ownership controls",
        ),
        GetObjectLockConfiguration => absent(
            core,
            &auth,
            &bucket,
            "ObjectLockConfigurationNotFoundError",
            "object lock configuration",
        ),
        GetBucketReplication => absent(
            core,
            &auth,
            &bucket,
            "ReplicationConfigurationNotFoundError",
            "replication configuration",
        ),

        PutObject => put_object(core, auth, &bucket, &key, h, body).await,
        CopyObject => copy_object(core, &auth, &bucket, &key, h).await,
        GetObject | HeadObject => get_object(core, &auth, &bucket, &key, &parts, &query).await,
        DeleteObject => {
            core.objects
                .delete_object(auth.principal.as_ref(), &bucket, &key)
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        GetObjectAcl => {
            let b = core.objects.head_bucket(Some(require(&auth)?), &bucket)?;
            let o = core
                .objects
                .head_object(auth.principal.as_ref(), &bucket, &key)
                .await?;
            Ok(xml_response(
                StatusCode::OK,
                acl_xml(core, &b.project_id, o.acl).await,
            ))
        }
        PutObjectAcl => {
            let acl = required_canned_acl(h)?;
            core.objects
                .set_object_acl(require(&auth)?, &bucket, &key, acl)
                .await?;
            Ok(StatusCode::OK.into_response())
        }
        GetObjectTagging => {
            // Objects carry no tags: an existing object's tag set is empty.
            core.objects
                .head_object(auth.principal.as_ref(), &bucket, &key)
                .await?;
            Ok(xml_response(
                StatusCode::OK,
                xml::fixed_configuration("Tagging", &[("TagSet", "")]),
            ))
        }

        CreateMultipartUpload => create_multipart(core, &auth, &bucket, &key, h).await,
        UploadPart => upload_part(core, auth, &bucket, &key, &query, h, body).await,
        UploadPartCopy => upload_part_copy(core, &auth, &bucket, &key, &query, h).await,
        ListParts => list_parts(core, &auth, &bucket, &key, &query).await,
        CompleteMultipartUpload => {
            complete_multipart(core, &auth, &bucket, &key, &query, h, body).await
        }
        AbortMultipartUpload => {
            let id = q(&query, "uploadId").unwrap_or_default();
            core.objects
                .abort_multipart(auth.principal.as_ref(), &bucket, &key, &id)
                .await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }

        // Named, recognised, and not served: nothing acts (docs/adr/0012).
        CreateBucketMetadataConfiguration
        | CreateBucketMetadataTableConfiguration
        | CreateSession
        | DeleteBucketAnalyticsConfiguration
        | DeleteBucketCors
        | DeleteBucketEncryption
        | DeleteBucketIntelligentTieringConfiguration
        | DeleteBucketInventoryConfiguration
        | DeleteBucketLifecycle
        | DeleteBucketMetadataConfiguration
        | DeleteBucketMetadataTableConfiguration
        | DeleteBucketMetricsConfiguration
        | DeleteBucketOwnershipControls
        | DeleteBucketPolicy
        | DeleteBucketReplication
        | DeleteBucketTagging
        | DeleteBucketWebsite
        | DeleteObjectTagging
        | DeletePublicAccessBlock
        | GetBucketAbac
        | GetBucketAnalyticsConfiguration
        | GetBucketIntelligentTieringConfiguration
        | GetBucketInventoryConfiguration
        | GetBucketMetadataConfiguration
        | GetBucketMetadataTableConfiguration
        | GetBucketMetricsConfiguration
        | GetBucketPolicyStatus
        | GetObjectAttributes
        | GetObjectLegalHold
        | GetObjectRetention
        | GetObjectTorrent
        | ListBucketAnalyticsConfigurations
        | ListBucketIntelligentTieringConfigurations
        | ListBucketInventoryConfigurations
        | ListBucketMetricsConfigurations
        | ListDirectoryBuckets
        | ListObjectVersions
        | OptionsObject
        | PostObject
        | PutBucketAbac
        | PutBucketAccelerateConfiguration
        | PutBucketAnalyticsConfiguration
        | PutBucketCors
        | PutBucketEncryption
        | PutBucketIntelligentTieringConfiguration
        | PutBucketInventoryConfiguration
        | PutBucketLifecycleConfiguration
        | PutBucketLogging
        | PutBucketMetricsConfiguration
        | PutBucketNotificationConfiguration
        | PutBucketOwnershipControls
        | PutBucketPolicy
        | PutBucketReplication
        | PutBucketRequestPayment
        | PutBucketTagging
        | PutBucketVersioning
        | PutBucketWebsite
        | PutObjectLegalHold
        | PutObjectLockConfiguration
        | PutObjectRetention
        | PutObjectTagging
        | PutPublicAccessBlock
        | RenameObject
        | RestoreObject
        | SelectObjectContent
        | UpdateBucketMetadataInventoryTableConfiguration
        | UpdateBucketMetadataJournalTableConfiguration
        | WriteGetObjectResponse => Err(S3Error::unimplemented(op)),
    }
}

/// A bucket configuration nuage never stores, for a caller who may read
/// the bucket: S3's document for "never set".
fn fixed(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    root: &str,
    children: &[(&str, &str)],
) -> Result<Response> {
    core.objects.head_bucket(auth.principal.as_ref(), bucket)?;
    Ok(xml_response(
        StatusCode::OK,
        xml::fixed_configuration(root, children),
    ))
}

/// A bucket configuration S3 reports missing with its own 404 code when
/// it was never set, as it never is here.
fn absent(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    code: &'static str,
    what: &str,
) -> Result<Response> {
    core.objects.head_bucket(auth.principal.as_ref(), bucket)?;
    Err(S3Error::new(
        404,
        code,
        format!("the bucket {bucket} has no {what}: nuage does not store one"),
    )
    .with("BucketName", bucket))
}

async fn owner(core: &Core, project: &str) -> xml::Owner {
    xml::Owner {
        id: project.to_string(),
        display_name: core
            .identity
            .project_name(project)
            .await
            .unwrap_or_else(|| project.to_string()),
    }
}

async fn acl_xml(core: &Core, project: &str, acl: Acl) -> String {
    xml::AccessControlPolicy {
        owner: owner(core, project).await,
        acl,
    }
    .to_xml()
}

async fn list_buckets(core: &Core, p: &Principal) -> Result<Response> {
    let buckets = core.objects.list_buckets(p).await?;
    let doc = xml::ListAllMyBucketsResult {
        owner: xml::Owner {
            id: p.project_id.clone(),
            display_name: p.project_name.clone(),
        },
        buckets: buckets
            .iter()
            .map(|b| xml::BucketEntry {
                name: b.name.clone(),
                creation_date: time(b.created_ms),
            })
            .collect(),
    };
    Ok(xml_response(StatusCode::OK, doc.to_xml()))
}

/// S3's bucket naming rules (the general-purpose bucket rules), plus the
/// names other dialects own on the shared endpoint (docs/adr/0002).
fn check_bucket_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(S3Error::new(
            400,
            "InvalidBucketName",
            format!("the bucket name {name:?} is not valid: {why}"),
        )
        .with("BucketName", name))
    };
    if !(3..=63).contains(&name.len()) {
        return bad("it must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return bad("only lowercase letters, digits, '.' and '-' are allowed");
    }
    let first = name.as_bytes()[0];
    let last = name.as_bytes()[name.len() - 1];
    if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
        return bad("it must begin and end with a letter or a digit");
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return bad("dots may not be adjacent to each other or to hyphens");
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return bad("it must not look like an IP address");
    }
    if name.starts_with("xn--") || name.ends_with("-s3alias") || name.ends_with("--ol-s3") {
        return bad("the prefix xn-- and suffixes -s3alias and --ol-s3 are reserved");
    }
    if RESERVED_BUCKET_NAMES.contains(&name) {
        return bad("the name is reserved by another API on this endpoint");
    }
    Ok(())
}

fn canned_acl(h: &HeaderMap) -> Result<Option<Acl>> {
    header_str(h, "x-amz-acl")
        .map(|v| {
            xml::canned_acl(v).ok_or_else(|| {
                S3Error::invalid(format!("{v:?} is not a canned ACL"))
                    .with("ArgumentName", "x-amz-acl")
            })
        })
        .transpose()
}

/// Reads a small body whole, checking its signed sha256 and Content-MD5.
async fn small_body(body: Body, h: &HeaderMap, payload: &PayloadKind) -> Result<Bytes> {
    let bytes = axum::body::to_bytes(body, MAX_XML_BODY)
        .await
        .map_err(|_| {
            S3Error::new(
                400,
                "MaxMessageLengthExceeded",
                format!("the request body is over {MAX_XML_BODY} bytes"),
            )
        })?;
    if let PayloadKind::Sha256(want) = payload {
        let got: [u8; 32] = Sha256::digest(&bytes).into();
        if &got != want {
            return Err(S3Error::new(
                400,
                "XAmzContentSHA256Mismatch",
                "the provided x-amz-content-sha256 does not match what was computed",
            ));
        }
    }
    if let Some(md5) = content_md5(h)? {
        let got: [u8; 16] = md5::Md5::digest(&bytes).into();
        if got != md5 {
            return Err(S3Error::new(
                400,
                "BadDigest",
                "the Content-MD5 you specified did not match what was received",
            ));
        }
    }
    if let Some(Some(e)) = checksum_header(h)?.map(|c| match c {
        ChecksumSpec::Verify(e) => Some(e),
        ChecksumSpec::Compute(_) => None,
    }) {
        let mut hasher = nuage_object::checksum::Hasher::new(e.algorithm);
        hasher.update(&bytes);
        if hasher.finish() != e.digest {
            return Err(S3Error::new(
                400,
                "BadDigest",
                format!(
                    "the {} you specified did not match what was received",
                    e.algorithm.header_name()
                ),
            ));
        }
    }
    Ok(bytes)
}

async fn create_bucket(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    h: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let p = require(auth)?;
    check_bucket_name(bucket)?;
    let acl = canned_acl(h)?.unwrap_or(Acl::Private);
    let body = small_body(body, h, &auth.payload).await?;
    let cfg = xml::CreateBucketConfiguration::from_xml(&body)?;
    if let Some(loc) = cfg.location_constraint {
        if loc != core.region {
            return Err(S3Error::new(
                400,
                "InvalidLocationConstraint",
                format!(
                    "the location constraint {loc:?} is not this region; use {:?}",
                    core.region
                ),
            ));
        }
    }
    core.objects
        .create_bucket(
            p,
            NewBucket {
                name: bucket.to_string(),
                acl,
                meta: BTreeMap::new(),
            },
        )
        .await?;
    let mut hm = HeaderMap::new();
    set(&mut hm, "location", format!("/{bucket}"));
    Ok((StatusCode::OK, hm).into_response())
}

/// PutBucketAcl / PutObjectAcl: the `x-amz-acl` header is required (ACL
/// grant lists in an XML body are not supported).
fn required_canned_acl(h: &HeaderMap) -> Result<Acl> {
    canned_acl(h)?.ok_or_else(|| {
        S3Error::new(
            501,
            "NotImplemented",
            "PutBucketAcl and PutObjectAcl take canned ACLs only (the x-amz-acl header); \
             ACL grant lists are not implemented and nothing was changed",
        )
    })
}

async fn put_bucket_acl(core: &Core, auth: &Auth, bucket: &str, h: &HeaderMap) -> Result<Response> {
    let p = require(auth)?;
    let acl = required_canned_acl(h)?;
    core.objects
        .update_bucket(
            p,
            bucket,
            BucketPatch {
                acl: Some(acl),
                ..Default::default()
            },
        )
        .await?;
    Ok(StatusCode::OK.into_response())
}

fn max_keys(query: &BTreeMap<String, String>, name: &str) -> Result<usize> {
    match query.get(name) {
        None => Ok(MAX_KEYS),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| (n as usize).min(MAX_KEYS))
            .ok_or_else(|| {
                S3Error::invalid(format!("{name} must be a non-negative integer"))
                    .with("ArgumentName", name)
            }),
    }
}

async fn list_objects(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    query: &BTreeMap<String, String>,
) -> Result<Response> {
    let v2 = q(query, "list-type").as_deref() == Some("2");
    let max = max_keys(query, "max-keys")?;
    let prefix = q(query, "prefix").unwrap_or_default();
    let delimiter = q(query, "delimiter").filter(|d| !d.is_empty());
    let encoding = match q(query, "encoding-type") {
        None => None,
        Some(e) => Some(xml::EncodingType::parse(&e).ok_or_else(|| {
            S3Error::invalid("encoding-type must be url").with("ArgumentName", "encoding-type")
        })?),
    };
    let token = q(query, "continuation-token");
    let after = if v2 {
        match &token {
            Some(t) => Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        S3Error::invalid("the continuation token is not valid")
                            .with("ArgumentName", "continuation-token")
                    })?,
            ),
            None => q(query, "start-after").filter(|s| !s.is_empty()),
        }
    } else {
        q(query, "marker").filter(|s| !s.is_empty())
    };
    let page = core
        .objects
        .list_objects(
            auth.principal.as_ref(),
            bucket,
            ListQuery {
                prefix: prefix.clone(),
                delimiter: delimiter.clone(),
                after,
                max,
            },
        )
        .await?;
    let fetch_owner = !v2 || q(query, "fetch-owner").as_deref() == Some("true");
    let b = core.objects.head_bucket(auth.principal.as_ref(), bucket)?;
    let own = if fetch_owner {
        Some(owner(core, &b.project_id).await)
    } else {
        None
    };
    let next = page.next.clone();
    let doc = xml::ListBucketResult {
        name: bucket.to_string(),
        prefix,
        delimiter: delimiter.clone(),
        max_keys: max as u32,
        is_truncated: page.truncated,
        encoding_type: encoding,
        contents: page
            .objects
            .into_iter()
            .map(|o| xml::ObjectEntry {
                key: o.key,
                last_modified: time(o.modified_ms),
                etag: o.etag,
                size: o.size,
                storage_class: "STANDARD".into(),
                owner: own.clone(),
            })
            .collect(),
        common_prefixes: page.prefixes,
        version: if v2 {
            xml::ListVersion::V2 {
                continuation_token: token,
                next_continuation_token: next
                    .map(|n| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n)),
                start_after: q(query, "start-after"),
            }
        } else {
            xml::ListVersion::V1 {
                marker: q(query, "marker").unwrap_or_default(),
                next_marker: if delimiter.is_some() { next } else { None },
            }
        },
    };
    Ok(xml_response(StatusCode::OK, doc.to_xml()))
}

fn content_md5(h: &HeaderMap) -> Result<Option<[u8; 16]>> {
    match header_str(h, "content-md5") {
        None => Ok(None),
        Some(v) => base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
            .map(Some)
            .ok_or_else(|| {
                S3Error::new(
                    400,
                    "InvalidDigest",
                    "the Content-MD5 you specified is not valid",
                )
            }),
    }
}

/// An `x-amz-checksum-<alg>` header to verify, if any.
fn checksum_header(h: &HeaderMap) -> Result<Option<ChecksumSpec>> {
    for a in Algorithm::ALL {
        if let Some(v) = header_str(h, a.header_name()) {
            let digest = a.decode(v).ok_or_else(|| {
                S3Error::invalid(format!(
                    "the value of {} is not a valid {} checksum",
                    a.header_name(),
                    a.header_suffix()
                ))
            })?;
            return Ok(Some(ChecksumSpec::Verify(Expected {
                algorithm: a,
                digest,
            })));
        }
    }
    Ok(None)
}

/// User metadata and kept headers of a PUT, copy or initiate.
fn put_meta(
    h: &HeaderMap,
) -> (
    Option<String>,
    BTreeMap<String, String>,
    BTreeMap<String, String>,
) {
    let mut user = BTreeMap::new();
    for (name, v) in h {
        if let Some(k) = name.as_str().strip_prefix("x-amz-meta-") {
            user.insert(
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            );
        }
    }
    // Which headers are kept is the engine's rule; the aws-chunked coding
    // is S3's transfer's, not the object's, so it is taken out first.
    let kept = nuage_object::kept_headers(h.iter().filter_map(|(n, v)| {
        let v = v.to_str().ok()?;
        if n != header::CONTENT_ENCODING {
            return Some((n.as_str(), v.to_string()));
        }
        let codings: Vec<&str> = v
            .split(',')
            .map(str::trim)
            .filter(|e| !e.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        Some((n.as_str(), codings.join(", ")))
    }));
    (header_str(h, "content-type").map(String::from), user, kept)
}

/// The engine options and the body stream of an upload (object or part).
fn upload_body(
    auth: Auth,
    h: &HeaderMap,
    body: Body,
) -> Result<(
    PutOptions,
    futures_util::stream::BoxStream<'static, std::result::Result<Bytes, ObjectError>>,
)> {
    let (content_type, user_meta, headers) = put_meta(h);
    let mut opts = PutOptions {
        content_type,
        user_meta,
        headers,
        content_md5: content_md5(h)?,
        checksum: checksum_header(h)?,
        ..Default::default()
    };
    let raw = body.into_data_stream();
    let stream = match auth.payload {
        PayloadKind::Chunked(o) => {
            opts.content_length = o.decoded_length;
            if let Some(a) = o.trailer {
                if opts.checksum.is_none() {
                    opts.checksum = Some(ChecksumSpec::Compute(a));
                }
            }
            AwsChunked::new(raw, o).map_err(chunked_to_object).boxed()
        }
        other => {
            let len = header_str(h, "content-length").ok_or_else(|| {
                S3Error::new(
                    411,
                    "MissingContentLength",
                    "you must provide the Content-Length HTTP header",
                )
            })?;
            opts.content_length = Some(
                len.parse()
                    .map_err(|_| S3Error::invalid("Content-Length is not a number"))?,
            );
            if let PayloadKind::Sha256(s) = other {
                opts.content_sha256 = Some(s);
            }
            raw.map_err(|e| ObjectError::Body(e.to_string())).boxed()
        }
    };
    Ok((opts, stream))
}

fn stored_checksum_header(hm: &mut HeaderMap, o: &Option<(Algorithm, String)>) {
    if let Some((a, v)) = o {
        set(hm, a.header_name(), v);
    }
}

/// S3's conditional PutObject: `If-None-Match: *` writes only a new key;
/// S3 refuses any other value, and nuage does not implement `If-Match` on
/// writes, so it refuses that too rather than overwrite unconditionally.
fn put_condition(h: &HeaderMap) -> Result<bool> {
    if h.contains_key(header::IF_MATCH) {
        return Err(S3Error::new(
            501,
            "NotImplemented",
            "If-Match on PutObject is not implemented by nuage; nothing was written",
        )
        .with("Header", "If-Match"));
    }
    match header_str(h, "if-none-match").map(str::trim) {
        None => Ok(false),
        Some("*") => Ok(true),
        Some(_) => Err(S3Error::new(
            501,
            "NotImplemented",
            "If-None-Match on PutObject takes only *; nothing was written",
        )
        .with("Header", "If-None-Match")),
    }
}

async fn put_object(
    core: &Core,
    auth: Auth,
    bucket: &str,
    key: &str,
    h: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let p = auth.principal.clone();
    let acl = canned_acl(h)?;
    let if_none_match = put_condition(h)?;
    let (mut opts, stream) = upload_body(auth, h, body)?;
    opts.acl = acl;
    opts.if_none_match = if_none_match;
    let o = core
        .objects
        .put_object(p.as_ref(), bucket, key, opts, stream)
        .await?;
    let mut hm = HeaderMap::new();
    set(&mut hm, "etag", xml::quote_etag(&o.etag));
    stored_checksum_header(&mut hm, &o.checksum);
    Ok((StatusCode::OK, hm).into_response())
}

/// S3's 304: no body, the object's ETag and Last-Modified.
fn not_modified(o: &ObjectMeta) -> Response {
    let mut hm = HeaderMap::new();
    set(&mut hm, "etag", xml::quote_etag(&o.etag));
    set(&mut hm, "last-modified", http_date(o.modified_ms));
    (StatusCode::NOT_MODIFIED, hm).into_response()
}

fn object_headers(
    o: &ObjectMeta,
    query: &BTreeMap<String, String>,
    with_checksum: bool,
) -> HeaderMap {
    let mut hm = HeaderMap::new();
    set(&mut hm, "etag", xml::quote_etag(&o.etag));
    set(&mut hm, "last-modified", http_date(o.modified_ms));
    set(&mut hm, "content-type", &o.content_type);
    set(&mut hm, "accept-ranges", "bytes");
    for (k, v) in &o.headers {
        set(&mut hm, k, v);
    }
    for (k, v) in &o.user_meta {
        set(&mut hm, &format!("x-amz-meta-{k}"), v);
    }
    if let Some(n) = o.parts {
        set(&mut hm, "x-amz-mp-parts-count", n.to_string());
    }
    if with_checksum {
        stored_checksum_header(&mut hm, &o.checksum);
    }
    for (param, name) in [
        ("response-content-type", "content-type"),
        ("response-content-language", "content-language"),
        ("response-expires", "expires"),
        ("response-cache-control", "cache-control"),
        ("response-content-disposition", "content-disposition"),
        ("response-content-encoding", "content-encoding"),
    ] {
        if let Some(v) = query.get(param) {
            set(&mut hm, name, v);
        }
    }
    hm
}

async fn get_object(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    key: &str,
    parts: &http::request::Parts,
    query: &BTreeMap<String, String>,
) -> Result<Response> {
    let h = &parts.headers;
    let head = parts.method == Method::HEAD;
    let caller = auth.principal.as_ref();
    // S3 ignores a Range it cannot parse; one past the end is refused by
    // the engine (InvalidRange).
    let range = header_str(h, "range").and_then(RangeSpec::parse);
    let checksum_mode =
        header_str(h, "x-amz-checksum-mode").is_some_and(|v| v.eq_ignore_ascii_case("enabled"));
    let conditions = wire::conditions(h);
    if head {
        let o = match core
            .objects
            .head_object_if(caller, bucket, key, &conditions)
            .await?
        {
            Conditional::Served(o) => o,
            Conditional::NotModified(o) => return Ok(not_modified(&o)),
        };
        let mut hm = object_headers(&o, query, checksum_mode);
        let (status, len) = match range.map(|r| r.resolve(o.size)).transpose()? {
            Some(r) => {
                set(&mut hm, "content-range", r.content_range());
                (StatusCode::PARTIAL_CONTENT, r.end - r.start)
            }
            None => (StatusCode::OK, o.size),
        };
        set(&mut hm, "content-length", len.to_string());
        return Ok((status, hm).into_response());
    }
    let (o, r, data) = match core
        .objects
        .get_object_if(caller, bucket, key, range, &conditions)
        .await?
    {
        Conditional::Served(read) => read,
        Conditional::NotModified(o) => return Ok(not_modified(&o)),
    };
    let mut hm = object_headers(&o, query, checksum_mode && r.is_none());
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

fn copy_source(h: &HeaderMap) -> Result<CopySource> {
    let raw = header_str(h, "x-amz-copy-source").unwrap_or("");
    let raw = raw.split_once("?versionId=").map_or(raw, |(p, _)| p);
    let src = decode(raw.trim_start_matches('/'))?;
    let (b, k) = src
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| {
            S3Error::invalid("x-amz-copy-source must be <bucket>/<key>")
                .with("ArgumentName", "x-amz-copy-source")
        })?;
    Ok(CopySource {
        if_match: header_str(h, "x-amz-copy-source-if-match").map(str::to_string),
        if_none_match: header_str(h, "x-amz-copy-source-if-none-match").map(str::to_string),
        ..CopySource::new(b, k)
    })
}

async fn copy_object(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    key: &str,
    h: &HeaderMap,
) -> Result<Response> {
    let p = auth.principal.as_ref();
    let src = copy_source(h)?;
    let directive = match header_str(h, "x-amz-metadata-directive").unwrap_or("COPY") {
        d if d.eq_ignore_ascii_case("COPY") => MetadataDirective::Copy,
        d if d.eq_ignore_ascii_case("REPLACE") => {
            let (content_type, user_meta, headers) = put_meta(h);
            MetadataDirective::Replace {
                content_type,
                user_meta,
                headers,
            }
        }
        d => {
            return Err(
                S3Error::invalid(format!("unknown metadata directive {d:?}"))
                    .with("ArgumentName", "x-amz-metadata-directive"),
            )
        }
    };
    let acl = canned_acl(h)?;
    let o = core
        .objects
        .copy_object(p, &src, bucket, key, directive, acl)
        .await
        .map_err(|e| match e {
            ObjectError::InvalidArgument(m) => S3Error::new(400, "InvalidRequest", m),
            e => e.into(),
        })?;
    let doc = xml::CopyObjectResult {
        last_modified: time(o.modified_ms),
        etag: o.etag,
    };
    Ok(xml_response(StatusCode::OK, doc.to_xml()))
}

async fn delete_objects(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    h: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let p = auth.principal.as_ref();
    let body = small_body(body, h, &auth.payload).await?;
    let req = xml::Delete::from_xml(&body)?;
    let asked = req
        .objects
        .iter()
        .map(|o| (o.key.clone(), o.etag.clone()))
        .collect();
    let results = core.objects.delete_objects(p, bucket, asked).await?;
    let keys = req.objects.into_iter().map(|o| o.key);
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for (k, r) in keys.into_iter().zip(results) {
        match r {
            Ok(_) => deleted.push(xml::DeletedEntry {
                key: k,
                version_id: None,
            }),
            Err(e) => errors.push(xml::DeleteErrorEntry {
                key: k,
                version_id: None,
                code: super::error::code(&e).to_string(),
                message: context::public_error(&e).1,
            }),
        }
    }
    let doc = xml::DeleteResult {
        quiet: req.quiet,
        deleted,
        errors,
    };
    Ok(xml_response(StatusCode::OK, doc.to_xml()))
}

async fn create_multipart(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    key: &str,
    h: &HeaderMap,
) -> Result<Response> {
    let p = auth.principal.as_ref();
    let acl = canned_acl(h)?;
    let (content_type, user_meta, headers) = put_meta(h);
    let alg = match header_str(h, "x-amz-checksum-algorithm") {
        Some(a) => Some(
            Algorithm::from_name(a)
                .ok_or_else(|| S3Error::invalid(format!("unknown checksum algorithm {a:?}")))?,
        ),
        None => None,
    };
    let up = core
        .objects
        .create_multipart(
            p,
            bucket,
            key,
            PutOptions {
                content_type,
                user_meta,
                headers,
                acl,
                ..Default::default()
            },
            alg,
        )
        .await?;
    let doc = xml::InitiateMultipartUploadResult {
        bucket: up.bucket,
        key: up.key,
        upload_id: up.upload_id,
    };
    Ok(xml_response(StatusCode::OK, doc.to_xml()))
}

/// UploadPartCopy: a part made of a source object's bytes, all of them or
/// the `x-amz-copy-source-range` asked for (`bytes=first-last`).
async fn upload_part_copy(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    key: &str,
    query: &BTreeMap<String, String>,
    h: &HeaderMap,
) -> Result<Response> {
    let p = auth.principal.as_ref();
    let number = part_number(query)?;
    let id = q(query, "uploadId").unwrap_or_default();
    let src = copy_source(h)?;
    let range = match header_str(h, "x-amz-copy-source-range") {
        None => None,
        Some(v) => Some(copy_range(v)?),
    };
    let part = core
        .objects
        .upload_part_copy(p, &src, range, bucket, key, &id, number)
        .await
        .map_err(|e| match e {
            ObjectError::InvalidArgument(m) => {
                S3Error::invalid(m).with("ArgumentName", "x-amz-copy-source-range")
            }
            e => e.into(),
        })?;
    let doc = xml::CopyPartResult {
        last_modified: time(part.modified_ms),
        etag: part.etag,
    };
    Ok(xml_response(StatusCode::OK, doc.to_xml()))
}

/// `x-amz-copy-source-range`: `bytes=first-last`, both given, in order.
fn copy_range(v: &str) -> Result<(u64, u64)> {
    let bad = || {
        S3Error::invalid(format!(
            "x-amz-copy-source-range must be bytes=first-last, not {v:?}"
        ))
        .with("ArgumentName", "x-amz-copy-source-range")
    };
    let (a, b) = v
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(bad)?;
    let first: u64 = a.trim().parse().map_err(|_| bad())?;
    let last: u64 = b.trim().parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok((first, last))
}

fn part_number(query: &BTreeMap<String, String>) -> Result<u32> {
    q(query, "partNumber")
        .and_then(|n| n.parse().ok())
        .filter(|n| (1..=xml::MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            S3Error::invalid("Part number must be an integer between 1 and 10000, inclusive")
                .with("ArgumentName", "partNumber")
        })
}

async fn upload_part(
    core: &Core,
    auth: Auth,
    bucket: &str,
    key: &str,
    query: &BTreeMap<String, String>,
    h: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let p = auth.principal.clone();
    let number = part_number(query)?;
    let id = q(query, "uploadId").unwrap_or_default();
    let (opts, stream) = upload_body(auth, h, body)?;
    let part = core
        .objects
        .upload_part(p.as_ref(), bucket, key, &id, number, opts, stream)
        .await?;
    let mut hm = HeaderMap::new();
    set(&mut hm, "etag", xml::quote_etag(&part.etag));
    stored_checksum_header(&mut hm, &part.checksum);
    Ok((StatusCode::OK, hm).into_response())
}

fn checksums(c: &Option<(Algorithm, String)>) -> xml::Checksums {
    let mut out = xml::Checksums::default();
    if let Some((a, v)) = c {
        let v = Some(v.clone());
        match a {
            Algorithm::Crc32 => out.crc32 = v,
            Algorithm::Crc32c => out.crc32c = v,
            Algorithm::Crc64nvme => out.crc64nvme = v,
            Algorithm::Sha1 => out.sha1 = v,
            Algorithm::Sha256 => out.sha256 = v,
        }
    }
    out
}

async fn list_parts(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    key: &str,
    query: &BTreeMap<String, String>,
) -> Result<Response> {
    let p = auth.principal.as_ref();
    let id = q(query, "uploadId").unwrap_or_default();
    let max = max_keys(query, "max-parts")?;
    let after: u32 = match q(query, "part-number-marker") {
        Some(m) => m
            .parse()
            .map_err(|_| S3Error::invalid("part-number-marker must be an integer"))?,
        None => 0,
    };
    let page = core
        .objects
        .list_parts(p, bucket, key, &id, after, max)
        .await?;
    let b = core.objects.head_bucket(p, bucket)?;
    let own = owner(core, &b.project_id).await;
    let doc = xml::ListPartsResult {
        bucket: bucket.to_string(),
        key: key.to_string(),
        upload_id: id,
        part_number_marker: after,
        next_part_number_marker: page.next_marker,
        max_parts: max as u32,
        is_truncated: page.truncated,
        parts: page
            .parts
            .iter()
            .map(|pt| xml::PartEntry {
                part_number: pt.number,
                last_modified: time(pt.modified_ms),
                etag: pt.etag.clone(),
                size: pt.size,
                checksums: checksums(&pt.checksum),
            })
            .collect(),
        initiator: own.clone(),
        owner: own,
        storage_class: "STANDARD".into(),
        checksum_algorithm: page
            .upload
            .checksum_algorithm
            .map(|a| a.header_suffix().to_ascii_uppercase()),
    };
    Ok(xml_response(StatusCode::OK, doc.to_xml()))
}

async fn complete_multipart(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    key: &str,
    query: &BTreeMap<String, String>,
    h: &HeaderMap,
    body: Body,
) -> Result<Response> {
    let p = auth.principal.as_ref();
    let id = q(query, "uploadId").unwrap_or_default();
    let body = small_body(body, h, &auth.payload).await?;
    let req = xml::CompleteMultipartUpload::from_xml(&body)?;
    let parts = req
        .parts
        .into_iter()
        .map(|pt| CompletePart {
            number: pt.part_number,
            etag: pt.etag,
        })
        .collect();
    let o = core
        .objects
        .complete_multipart(p, bucket, key, &id, parts)
        .await?;
    let base = core.public_url.trim_end_matches('/');
    let doc = xml::CompleteMultipartUploadResult {
        location: format!("{base}/{bucket}/{key}"),
        bucket: bucket.to_string(),
        key: key.to_string(),
        etag: o.etag,
        checksums: checksums(&o.checksum),
    };
    Ok(xml_response(StatusCode::OK, doc.to_xml()))
}

async fn list_uploads(
    core: &Core,
    auth: &Auth,
    bucket: &str,
    query: &BTreeMap<String, String>,
) -> Result<Response> {
    let p = auth.principal.as_ref();
    let max = max_keys(query, "max-uploads")?;
    let prefix = q(query, "prefix").unwrap_or_default();
    let page = core
        .objects
        .list_uploads(
            p,
            bucket,
            &prefix,
            q(query, "key-marker"),
            q(query, "upload-id-marker"),
            max,
        )
        .await?;
    let b = core.objects.head_bucket(p, bucket)?;
    let own = owner(core, &b.project_id).await;
    let doc = xml::ListMultipartUploadsResult {
        bucket: bucket.to_string(),
        key_marker: q(query, "key-marker").unwrap_or_default(),
        upload_id_marker: q(query, "upload-id-marker").unwrap_or_default(),
        next_key_marker: page.next_key_marker,
        next_upload_id_marker: page.next_upload_marker,
        delimiter: None,
        prefix,
        max_uploads: max as u32,
        is_truncated: page.truncated,
        encoding_type: None,
        uploads: page
            .uploads
            .into_iter()
            .map(|u| xml::UploadEntry {
                key: u.key,
                upload_id: u.upload_id,
                initiator: own.clone(),
                owner: own.clone(),
                storage_class: "STANDARD".into(),
                initiated: time(u.initiated_ms),
            })
            .collect(),
        common_prefixes: Vec::new(),
    };
    Ok(xml_response(StatusCode::OK, doc.to_xml()))
}
