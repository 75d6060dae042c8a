//! Fuzz target for the Swift operation parser (ADR 13): any method, path,
//! query and headers, with names drawn from the Swift API reference's query
//! parameters and operation headers (or arbitrary). The parser must never
//! panic, must answer the same twice, and may refuse only with the statuses
//! it documents (400, 404 not a Swift path, 405, 412, 501).
//!
//! ```text
//! scripts/fuzz 60 swift_router
//! ```
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use nuage_api::swift::parse_for_fuzzing as parse;
use nuage_fuzz::{header_map, method, query_string, Name};

const QUERY: &[&str] = &[
    "format",
    "limit",
    "marker",
    "end_marker",
    "prefix",
    "delimiter",
    "path",
    "reverse",
    "multipart-manifest",
    "temp_url_sig",
    "temp_url_expires",
    "filename",
    "inline",
    "symlink",
    "extract-archive",
    "bulk-delete",
    "heartbeat",
    "versions",
    "version-id",
    "partNumber",
];

const HEADERS: &[&str] = &[
    "x-object-manifest",
    "x-static-large-object",
    "x-symlink-target",
    "x-copy-from",
    "destination",
    "x-container-read",
    "x-container-write",
    "x-versions-location",
    "x-history-location",
    "x-container-sync-to",
    "x-delete-at",
    "x-delete-after",
    "x-account-meta-temp-url-key",
    "x-container-meta-quota-bytes",
    "x-object-meta-a",
    "x-fresh-metadata",
    "if-none-match",
    "range",
    "content-type",
    "x-detect-content-type",
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: u8,
    other_method: &'a str,
    account: &'a str,
    container: Option<&'a str>,
    object: Option<&'a str>,
    raw_path: Option<&'a str>,
    params: Vec<(Name<'a>, Option<&'a str>)>,
    headers: Vec<(Name<'a>, &'a [u8])>,
}

const METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST", "DELETE", "COPY", "OPTIONS"];

fuzz_target!(|input: Input<'_>| {
    let Some(method) = method(input.method, input.other_method, METHODS) else {
        return;
    };
    let path = match input.raw_path {
        Some(p) => p.to_owned(),
        None => {
            let mut p = format!("/v1/AUTH_{}", input.account);
            if let Some(c) = input.container {
                p.push('/');
                p.push_str(c);
                if let Some(o) = input.object {
                    p.push('/');
                    p.push_str(o);
                }
            }
            p
        }
    };
    let query = query_string("", &input.params, QUERY);
    let headers = header_map(&input.headers, HEADERS);
    let first = parse(&method, &path, &query, &headers);
    assert_eq!(first, parse(&method, &path, &query, &headers));
    if let Err(status) = first {
        assert!(
            matches!(status, 400 | 404 | 405 | 412 | 501),
            "refused with {status}"
        );
    }
});
