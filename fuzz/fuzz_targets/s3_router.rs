//! Fuzz target for the S3 operation router (ADR 12): any method, addressing,
//! query and headers, with names drawn from the S3 API reference's
//! sub-resources, parameters and operation-selecting headers (or arbitrary).
//! The router must never panic, must answer the same twice, and may refuse
//! only with the statuses it documents (400 malformed, 405 no such method,
//! 501 not implemented); a request it accepts names one operation, and the
//! same request with one more sub-resource is never another operation that
//! silently ignores it.
//!
//! ```text
//! scripts/fuzz 60 s3_router
//! ```
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nuage_api::s3::route_for_fuzzing as route;
use nuage_fuzz::{header_map, method, query_string, Name};

const QUERY: &[&str] = &[
    "acl",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
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
    "legal-hold",
    "accelerate",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
    "uploadId",
    "partNumber",
    "versionId",
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "continuation-token",
    "start-after",
    "encoding-type",
    "marker",
    "x-id",
    "X-Amz-Signature",
    "response-content-type",
    "renameObject",
    "id",
];

const HEADERS: &[&str] = &[
    "x-amz-copy-source",
    "x-amz-copy-source-range",
    "x-amz-tagging",
    "x-amz-acl",
    "x-amz-grant-read",
    "x-amz-server-side-encryption",
    "x-amz-server-side-encryption-customer-algorithm",
    "x-amz-object-lock-mode",
    "x-amz-bucket-object-lock-enabled",
    "x-amz-mfa",
    "x-amz-write-offset-bytes",
    "x-amz-rename-source",
    "x-amz-metadata-directive",
    "x-amz-request-route",
    "x-amz-content-sha256",
    "content-type",
    "content-md5",
    "range",
    "if-match",
    "if-none-match",
    "origin",
    "access-control-request-method",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: u8,
    other_method: &'a str,
    bucket: Option<&'a str>,
    key: Option<&'a str>,
    raw_query: &'a str,
    params: Vec<(Name<'a>, Option<&'a str>)>,
    headers: Vec<(Name<'a>, &'a [u8])>,
    extra: u8,
}

const METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"];

fuzz_target!(|input: Input<'_>| {
    let Some(method) = method(input.method, input.other_method, METHODS) else {
        return;
    };
    let headers = header_map(&input.headers, HEADERS);
    let query = query_string(input.raw_query, &input.params, QUERY);
    let first = route(&method, input.bucket, input.key, &query, &headers);
    let again = route(&method, input.bucket, input.key, &query, &headers);
    assert_eq!(first, again, "the router is not deterministic");
    match first {
        Err((status, code)) => {
            assert!(
                matches!(status, 400 | 405 | 501),
                "refused with {status} {code}"
            );
            assert!(!code.is_empty());
        }
        Ok(op) => {
            // One more sub-resource selects another operation or is
            // refused; it is never ignored by the operation just chosen,
            // unless it was already there.
            // (Only where names are plain: `%74agging` decodes to `tagging`.)
            if query.contains(['%', '+']) {
                return;
            }
            let sub = QUERY[usize::from(input.extra) % 26];
            let already = query.split('&').any(|p| p.split('=').next() == Some(sub));
            let more = format!("{query}&{sub}");
            if let Ok(op2) = route(&method, input.bucket, input.key, &more, &headers) {
                assert!(already || op2 != op, "?{sub} was ignored by {op}");
            }
        }
    }
});
