//! Which S3 operation a request is, decided before anything acts
//! (docs/adr/0012).
//!
//! Every request becomes one [`Operation`] from its method, what it
//! addresses (the service, a bucket, an object), its sub-resource (`?acl`,
//! `?tagging`, ...) and the headers that select an operation
//! (`x-amz-copy-source`). The enum names every action of the Amazon S3 API
//! reference, so that dispatch is an exhaustive `match`: an operation
//! nuage does not implement is answered `501 NotImplemented` by name, and
//! a request that is no S3 operation at all gets an S3 error. Nothing
//! falls through to the plain bucket or object handler: that fall-through
//! once let `PUT ?tagging` overwrite an object with the tagging XML.

use std::collections::BTreeMap;

use http::{HeaderMap, Method};

use super::error::S3Error;

/// What a request addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Service,
    Bucket,
    Object,
}

macro_rules! operations {
    ($($op:ident),* $(,)?) => {
        /// Every action of the Amazon S3 API reference (general purpose
        /// and directory buckets), plus the browser's POST form upload and
        /// CORS preflight, which the reference describes apart.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Operation {
            $($op),*
        }

        impl Operation {
            /// The action's name in the S3 API reference.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(Operation::$op => stringify!($op)),*
                }
            }
        }
    };
}

operations! {
    AbortMultipartUpload,
    CompleteMultipartUpload,
    CopyObject,
    CreateBucket,
    CreateBucketMetadataConfiguration,
    CreateBucketMetadataTableConfiguration,
    CreateMultipartUpload,
    CreateSession,
    DeleteBucket,
    DeleteBucketAnalyticsConfiguration,
    DeleteBucketCors,
    DeleteBucketEncryption,
    DeleteBucketIntelligentTieringConfiguration,
    DeleteBucketInventoryConfiguration,
    DeleteBucketLifecycle,
    DeleteBucketMetadataConfiguration,
    DeleteBucketMetadataTableConfiguration,
    DeleteBucketMetricsConfiguration,
    DeleteBucketOwnershipControls,
    DeleteBucketPolicy,
    DeleteBucketReplication,
    DeleteBucketTagging,
    DeleteBucketWebsite,
    DeleteObject,
    DeleteObjects,
    DeleteObjectTagging,
    DeletePublicAccessBlock,
    GetBucketAbac,
    GetBucketAccelerateConfiguration,
    GetBucketAcl,
    GetBucketAnalyticsConfiguration,
    GetBucketCors,
    GetBucketEncryption,
    GetBucketIntelligentTieringConfiguration,
    GetBucketInventoryConfiguration,
    GetBucketLifecycleConfiguration,
    GetBucketLocation,
    GetBucketLogging,
    GetBucketMetadataConfiguration,
    GetBucketMetadataTableConfiguration,
    GetBucketMetricsConfiguration,
    GetBucketNotificationConfiguration,
    GetBucketOwnershipControls,
    GetBucketPolicy,
    GetBucketPolicyStatus,
    GetBucketReplication,
    GetBucketRequestPayment,
    GetBucketTagging,
    GetBucketVersioning,
    GetBucketWebsite,
    GetObject,
    GetObjectAcl,
    GetObjectAttributes,
    GetObjectLegalHold,
    GetObjectLockConfiguration,
    GetObjectRetention,
    GetObjectTagging,
    GetObjectTorrent,
    GetPublicAccessBlock,
    HeadBucket,
    HeadObject,
    ListBucketAnalyticsConfigurations,
    ListBucketIntelligentTieringConfigurations,
    ListBucketInventoryConfigurations,
    ListBucketMetricsConfigurations,
    ListBuckets,
    ListDirectoryBuckets,
    ListMultipartUploads,
    ListObjects,
    ListObjectsV2,
    ListObjectVersions,
    ListParts,
    OptionsObject,
    PostObject,
    PutBucketAbac,
    PutBucketAccelerateConfiguration,
    PutBucketAcl,
    PutBucketAnalyticsConfiguration,
    PutBucketCors,
    PutBucketEncryption,
    PutBucketIntelligentTieringConfiguration,
    PutBucketInventoryConfiguration,
    PutBucketLifecycleConfiguration,
    PutBucketLogging,
    PutBucketMetricsConfiguration,
    PutBucketNotificationConfiguration,
    PutBucketOwnershipControls,
    PutBucketPolicy,
    PutBucketReplication,
    PutBucketRequestPayment,
    PutBucketTagging,
    PutBucketVersioning,
    PutBucketWebsite,
    PutObject,
    PutObjectAcl,
    PutObjectLegalHold,
    PutObjectLockConfiguration,
    PutObjectRetention,
    PutObjectTagging,
    PutPublicAccessBlock,
    RenameObject,
    RestoreObject,
    SelectObjectContent,
    UpdateBucketMetadataInventoryTableConfiguration,
    UpdateBucketMetadataJournalTableConfiguration,
    UploadPart,
    UploadPartCopy,
    WriteGetObjectResponse,
}

/// The query parameters that select an operation (S3's sub-resources).
/// At most one may appear in a request.
const SUBRESOURCES: &[&str] = &[
    "abac",
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metadataConfiguration",
    "metadataInventoryTable",
    "metadataJournalTable",
    "metadataTable",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "renameObject",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "session",
    "tagging",
    "torrent",
    "uploads",
    "versioning",
    "versions",
    "website",
];

/// The other query parameters of the reference's operations: they qualify
/// an operation without selecting one. Anything else is refused, so that a
/// sub-resource newer than this list cannot reach a handler unrecognised.
const PARAMETERS: &[&str] = &[
    "bucket-region",
    "continuation-token",
    "delimiter",
    "encoding-type",
    "fetch-owner",
    "id",
    "key-marker",
    "list-type",
    "marker",
    "max-buckets",
    "max-directory-buckets",
    "max-keys",
    "max-parts",
    "max-uploads",
    "part-number-marker",
    "partNumber",
    "prefix",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "select-type",
    "start-after",
    "upload-id-marker",
    "uploadId",
    "version-id-marker",
    "versionId",
    // The SDKs' operation hint, which S3 ignores.
    "x-id",
];

/// A parameter that qualifies an operation, or a presigned URL's
/// authentication (`X-Amz-*`, checked by the SigV4 verifier).
fn is_parameter(name: &str) -> bool {
    PARAMETERS.contains(&name)
        || name
            .get(..6)
            .is_some_and(|p| p.eq_ignore_ascii_case("x-amz-"))
}

/// The HTTP methods S3 has operations for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Head,
    Put,
    Post,
    Delete,
    Options,
}

/// Parses a request into the one operation it names.
///
/// `bucket` is the addressed bucket's name, when there is one (the Object
/// Lambda callback `WriteGetObjectResponse` is addressed as a path).
pub(crate) fn route(
    method: &Method,
    level: Level,
    bucket: Option<&str>,
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
) -> Result<Operation, S3Error> {
    use Level::{Bucket, Object, Service};
    use Operation::*;
    use Verb::*;

    let verb = match *method {
        Method::GET => Get,
        Method::HEAD => Head,
        Method::PUT => Put,
        Method::POST => Post,
        Method::DELETE => Delete,
        Method::OPTIONS => Options,
        _ => {
            return Err(S3Error::new(
                405,
                "MethodNotAllowed",
                format!("S3 has no operation with the method {method}"),
            ))
        }
    };
    let mut sub: Option<&str> = None;
    for name in query.keys() {
        if let Some(s) = SUBRESOURCES.iter().copied().find(|s| *s == name.as_str()) {
            if let Some(first) = sub {
                return Err(S3Error::new(
                    400,
                    "InvalidRequest",
                    format!(
                        "the sub-resources ?{first} and ?{s} select different operations; \
                         send one per request"
                    ),
                ));
            }
            sub = Some(s);
        } else if !is_parameter(name) {
            return Err(S3Error::not_implemented(format!(
                "the query parameter {name:?} is not one nuage knows; \
                 no operation was performed"
            )));
        }
    }
    let has = |name: &str| query.contains_key(name);
    let copy = headers.contains_key("x-amz-copy-source");
    // Buckets are never versioned: their objects' one version is "null"
    // (S3's name for it), and any other id names nothing. Refused here,
    // so that no handler acts on the current object instead.
    if let Some(v) = query.get("versionId").filter(|v| *v != "null") {
        return Err(S3Error::invalid(format!(
            "invalid version id {v:?}: buckets here are not versioned; \
             their objects' only version is \"null\""
        ))
        .with("ArgumentName", "versionId")
        .with("ArgumentValue", v.as_str()));
    }
    if matches!(verb, Get | Head) && level == Object && has("partNumber") && !has("uploadId") {
        return Err(S3Error::not_implemented(
            "reading one part of an object (GetObject or HeadObject with partNumber) \
             is not implemented; read a byte range instead",
        ));
    }

    let op = match (level, verb, sub) {
        (_, Options, None) => OptionsObject,

        (Service, Get, None) if has("max-directory-buckets") => ListDirectoryBuckets,
        (Service, Get, None) => ListBuckets,

        (Bucket, Get, None) => match query.get("list-type").map(String::as_str) {
            None => ListObjects,
            Some("2") => ListObjectsV2,
            Some(_) => {
                return Err(S3Error::invalid("list-type must be 2 when present")
                    .with("ArgumentName", "list-type"))
            }
        },
        (Bucket, Get, Some("abac")) => GetBucketAbac,
        (Bucket, Get, Some("accelerate")) => GetBucketAccelerateConfiguration,
        (Bucket, Get, Some("acl")) => GetBucketAcl,
        (Bucket, Get, Some("analytics")) if has("id") => GetBucketAnalyticsConfiguration,
        (Bucket, Get, Some("analytics")) => ListBucketAnalyticsConfigurations,
        (Bucket, Get, Some("cors")) => GetBucketCors,
        (Bucket, Get, Some("encryption")) => GetBucketEncryption,
        (Bucket, Get, Some("intelligent-tiering")) if has("id") => {
            GetBucketIntelligentTieringConfiguration
        }
        (Bucket, Get, Some("intelligent-tiering")) => ListBucketIntelligentTieringConfigurations,
        (Bucket, Get, Some("inventory")) if has("id") => GetBucketInventoryConfiguration,
        (Bucket, Get, Some("inventory")) => ListBucketInventoryConfigurations,
        (Bucket, Get, Some("lifecycle")) => GetBucketLifecycleConfiguration,
        (Bucket, Get, Some("location")) => GetBucketLocation,
        (Bucket, Get, Some("logging")) => GetBucketLogging,
        (Bucket, Get, Some("metadataConfiguration")) => GetBucketMetadataConfiguration,
        (Bucket, Get, Some("metadataTable")) => GetBucketMetadataTableConfiguration,
        (Bucket, Get, Some("metrics")) if has("id") => GetBucketMetricsConfiguration,
        (Bucket, Get, Some("metrics")) => ListBucketMetricsConfigurations,
        (Bucket, Get, Some("notification")) => GetBucketNotificationConfiguration,
        (Bucket, Get, Some("object-lock")) => GetObjectLockConfiguration,
        (Bucket, Get, Some("ownershipControls")) => GetBucketOwnershipControls,
        (Bucket, Get, Some("policy")) => GetBucketPolicy,
        (Bucket, Get, Some("policyStatus")) => GetBucketPolicyStatus,
        (Bucket, Get, Some("publicAccessBlock")) => GetPublicAccessBlock,
        (Bucket, Get, Some("replication")) => GetBucketReplication,
        (Bucket, Get, Some("requestPayment")) => GetBucketRequestPayment,
        (Bucket, Get, Some("session")) => CreateSession,
        (Bucket, Get, Some("tagging")) => GetBucketTagging,
        (Bucket, Get, Some("uploads")) => ListMultipartUploads,
        (Bucket, Get, Some("versioning")) => GetBucketVersioning,
        (Bucket, Get, Some("versions")) => ListObjectVersions,
        (Bucket, Get, Some("website")) => GetBucketWebsite,

        (Bucket, Head, None) => HeadBucket,

        (Bucket, Put, None) => CreateBucket,
        (Bucket, Put, Some("abac")) => PutBucketAbac,
        (Bucket, Put, Some("accelerate")) => PutBucketAccelerateConfiguration,
        (Bucket, Put, Some("acl")) => PutBucketAcl,
        (Bucket, Put, Some("analytics")) => PutBucketAnalyticsConfiguration,
        (Bucket, Put, Some("cors")) => PutBucketCors,
        (Bucket, Put, Some("encryption")) => PutBucketEncryption,
        (Bucket, Put, Some("intelligent-tiering")) => PutBucketIntelligentTieringConfiguration,
        (Bucket, Put, Some("inventory")) => PutBucketInventoryConfiguration,
        (Bucket, Put, Some("lifecycle")) => PutBucketLifecycleConfiguration,
        (Bucket, Put, Some("logging")) => PutBucketLogging,
        (Bucket, Put, Some("metadataInventoryTable")) => {
            UpdateBucketMetadataInventoryTableConfiguration
        }
        (Bucket, Put, Some("metadataJournalTable")) => {
            UpdateBucketMetadataJournalTableConfiguration
        }
        (Bucket, Put, Some("metrics")) => PutBucketMetricsConfiguration,
        (Bucket, Put, Some("notification")) => PutBucketNotificationConfiguration,
        (Bucket, Put, Some("object-lock")) => PutObjectLockConfiguration,
        (Bucket, Put, Some("ownershipControls")) => PutBucketOwnershipControls,
        (Bucket, Put, Some("policy")) => PutBucketPolicy,
        (Bucket, Put, Some("publicAccessBlock")) => PutPublicAccessBlock,
        (Bucket, Put, Some("replication")) => PutBucketReplication,
        (Bucket, Put, Some("requestPayment")) => PutBucketRequestPayment,
        (Bucket, Put, Some("tagging")) => PutBucketTagging,
        (Bucket, Put, Some("versioning")) => PutBucketVersioning,
        (Bucket, Put, Some("website")) => PutBucketWebsite,

        (Bucket, Post, None) if bucket == Some("WriteGetObjectResponse") => WriteGetObjectResponse,
        (Bucket, Post, None) => PostObject,
        (Bucket, Post, Some("delete")) => DeleteObjects,
        (Bucket, Post, Some("metadataConfiguration")) => CreateBucketMetadataConfiguration,
        (Bucket, Post, Some("metadataTable")) => CreateBucketMetadataTableConfiguration,

        (Bucket, Delete, None) => DeleteBucket,
        (Bucket, Delete, Some("analytics")) => DeleteBucketAnalyticsConfiguration,
        (Bucket, Delete, Some("cors")) => DeleteBucketCors,
        (Bucket, Delete, Some("encryption")) => DeleteBucketEncryption,
        (Bucket, Delete, Some("intelligent-tiering")) => {
            DeleteBucketIntelligentTieringConfiguration
        }
        (Bucket, Delete, Some("inventory")) => DeleteBucketInventoryConfiguration,
        (Bucket, Delete, Some("lifecycle")) => DeleteBucketLifecycle,
        (Bucket, Delete, Some("metadataConfiguration")) => DeleteBucketMetadataConfiguration,
        (Bucket, Delete, Some("metadataTable")) => DeleteBucketMetadataTableConfiguration,
        (Bucket, Delete, Some("metrics")) => DeleteBucketMetricsConfiguration,
        (Bucket, Delete, Some("ownershipControls")) => DeleteBucketOwnershipControls,
        (Bucket, Delete, Some("policy")) => DeleteBucketPolicy,
        (Bucket, Delete, Some("publicAccessBlock")) => DeletePublicAccessBlock,
        (Bucket, Delete, Some("replication")) => DeleteBucketReplication,
        (Bucket, Delete, Some("tagging")) => DeleteBucketTagging,
        (Bucket, Delete, Some("website")) => DeleteBucketWebsite,

        (Object, Get, None) if has("uploadId") => ListParts,
        (Object, Get, None) => GetObject,
        (Object, Get, Some("acl")) => GetObjectAcl,
        (Object, Get, Some("attributes")) => GetObjectAttributes,
        (Object, Get, Some("legal-hold")) => GetObjectLegalHold,
        (Object, Get, Some("retention")) => GetObjectRetention,
        (Object, Get, Some("tagging")) => GetObjectTagging,
        (Object, Get, Some("torrent")) => GetObjectTorrent,

        (Object, Head, None) => HeadObject,

        (Object, Put, None) => match (has("partNumber"), has("uploadId"), copy) {
            (true, true, true) => UploadPartCopy,
            (true, true, false) => UploadPart,
            (false, false, true) => CopyObject,
            (false, false, false) => PutObject,
            (true, false, _) | (false, true, _) => {
                return Err(S3Error::invalid(
                    "partNumber and uploadId go together: a part belongs to an upload",
                ))
            }
        },
        (Object, Put, Some("acl")) => PutObjectAcl,
        (Object, Put, Some("legal-hold")) => PutObjectLegalHold,
        (Object, Put, Some("renameObject")) => RenameObject,
        (Object, Put, Some("retention")) => PutObjectRetention,
        (Object, Put, Some("tagging")) => PutObjectTagging,

        (Object, Post, None) if has("uploadId") => CompleteMultipartUpload,
        (Object, Post, Some("uploads")) => CreateMultipartUpload,
        (Object, Post, Some("restore")) => RestoreObject,
        (Object, Post, Some("select")) => SelectObjectContent,

        (Object, Delete, None) if has("uploadId") => AbortMultipartUpload,
        (Object, Delete, None) => DeleteObject,
        (Object, Delete, Some("tagging")) => DeleteObjectTagging,

        (level, _, sub) => {
            let (on, resource) = match level {
                Service => ("the service", "SERVICE"),
                Bucket => ("a bucket", "BUCKET"),
                Object => ("an object", "OBJECT"),
            };
            let with = sub.map_or(String::new(), |s| format!(" with ?{s}"));
            return Err(S3Error::new(
                405,
                "MethodNotAllowed",
                format!("S3 has no operation {method} on {on}{with}"),
            )
            .with("Method", method.as_str())
            .with("ResourceType", resource));
        }
    };
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(method: Method, level: Level, query: &str, copy: bool) -> Result<Operation, String> {
        let query: BTreeMap<String, String> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_string(), v.to_string())
            })
            .collect();
        let mut h = HeaderMap::new();
        if copy {
            h.insert("x-amz-copy-source", "/b/k".parse().expect("header"));
        }
        route(&method, level, Some("b"), &query, &h).map_err(|e| e.code().to_string())
    }

    #[test]
    fn sub_resources_select_their_operation() {
        use Level::*;
        use Operation::*;
        let cases = [
            (Method::PUT, Object, "tagging", false, Ok(PutObjectTagging)),
            (
                Method::DELETE,
                Object,
                "tagging",
                false,
                Ok(DeleteObjectTagging),
            ),
            (Method::GET, Object, "tagging", false, Ok(GetObjectTagging)),
            (Method::DELETE, Bucket, "cors", false, Ok(DeleteBucketCors)),
            (
                Method::DELETE,
                Bucket,
                "policy",
                false,
                Ok(DeleteBucketPolicy),
            ),
            (
                Method::PUT,
                Bucket,
                "versioning",
                false,
                Ok(PutBucketVersioning),
            ),
            (Method::PUT, Bucket, "", false, Ok(CreateBucket)),
            (Method::PUT, Object, "", true, Ok(CopyObject)),
            (
                Method::PUT,
                Object,
                "partNumber=1&uploadId=u",
                true,
                Ok(UploadPartCopy),
            ),
            (
                Method::PUT,
                Object,
                "partNumber=1&uploadId=u",
                false,
                Ok(UploadPart),
            ),
            (
                Method::PUT,
                Object,
                "partNumber=1",
                false,
                Err("InvalidArgument"),
            ),
            (Method::GET, Bucket, "list-type=2", false, Ok(ListObjectsV2)),
            (
                Method::GET,
                Bucket,
                "analytics&id=a",
                false,
                Ok(GetBucketAnalyticsConfiguration),
            ),
            (
                Method::GET,
                Bucket,
                "analytics",
                false,
                Ok(ListBucketAnalyticsConfigurations),
            ),
            (Method::GET, Service, "", false, Ok(ListBuckets)),
            (Method::POST, Bucket, "delete", false, Ok(DeleteObjects)),
            (
                Method::DELETE,
                Object,
                "uploadId=u",
                false,
                Ok(AbortMultipartUpload),
            ),
            (
                Method::GET,
                Bucket,
                "x-id=ListObjects",
                false,
                Ok(ListObjects),
            ),
            (
                Method::PUT,
                Object,
                "tagging&acl",
                false,
                Err("InvalidRequest"),
            ),
            (
                Method::PUT,
                Object,
                "frobnicate",
                false,
                Err("NotImplemented"),
            ),
            (
                Method::DELETE,
                Object,
                "cors",
                false,
                Err("MethodNotAllowed"),
            ),
            (Method::PATCH, Object, "", false, Err("MethodNotAllowed")),
            (Method::HEAD, Object, "acl", false, Err("MethodNotAllowed")),
            (
                Method::DELETE,
                Object,
                "versionId=3HL4kqtJ",
                false,
                Err("InvalidArgument"),
            ),
            (
                Method::DELETE,
                Object,
                "versionId=null",
                false,
                Ok(DeleteObject),
            ),
            (
                Method::GET,
                Object,
                "partNumber=1",
                false,
                Err("NotImplemented"),
            ),
            (Method::POST, Object, "", false, Err("MethodNotAllowed")),
        ];
        for (m, level, q, copy, want) in cases {
            let got = op(m.clone(), level, q, copy);
            assert_eq!(got, want.map_err(String::from), "{m} {level:?} ?{q}");
        }
    }
}
