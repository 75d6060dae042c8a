//! Fuzz target for SigV4 parsing with arbitrary requests: method, path, raw
//! query plus query parameters and headers whose names are drawn from the
//! ones the verifier reads (or are arbitrary), and an Authorization header
//! assembled from fuzzed parts so that the fuzzer reaches past the prefix
//! checks. `parse` and everything that takes its result must never panic.
//!
//! ```text
//! scripts/fuzz 60 sigv4_parse
//! ```
#![no_main]

use arbitrary::Arbitrary;
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use nuage_fuzz::Name;
use nuage_identity::sigv4::{self, SignedRequest};

const HEADERS: &[&str] = &[
    "host",
    "authorization",
    "x-amz-date",
    "date",
    "x-amz-content-sha256",
    "x-amz-security-token",
    "content-type",
    "content-md5",
    "range",
    "x-amz-meta-a",
    "x-amz-trailer",
    "x-amz-decoded-content-length",
];

const PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
    "AWSAccessKeyId",
    "Signature",
    "prefix",
    "uploads",
];

#[derive(Arbitrary, Debug)]
struct AuthHeader<'a> {
    algorithm: Option<&'a str>,
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
    separator: &'a str,
    suffix: &'a str,
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: &'a str,
    path: &'a str,
    raw_query: &'a str,
    params: Vec<(Name<'a>, &'a str)>,
    headers: Vec<(Name<'a>, &'a [u8])>,
    auth: Option<AuthHeader<'a>>,
    body_sha256: Option<&'a str>,
    secret: &'a str,
}

fuzz_target!(|input: Input<'_>| {
    let mut query = input.raw_query.to_owned();
    for (name, value) in &input.params {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(name.pick(PARAMS));
        query.push('=');
        query.push_str(value);
    }

    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.pick(HEADERS).as_bytes()),
            HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    if let Some(a) = &input.auth {
        let value = format!(
            "{} Credential={}{}SignedHeaders={}{}Signature={}{}",
            a.algorithm.unwrap_or(sigv4::ALGORITHM),
            a.credential,
            a.separator,
            a.signed_headers,
            a.separator,
            a.signature,
            a.suffix
        );
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.append(http::header::AUTHORIZATION, value);
        }
    }

    let req = SignedRequest {
        method: input.method,
        path: input.path,
        query: &query,
        headers: &headers,
        body_sha256: input.body_sha256,
    };
    for (name, value) in sigv4::query_pairs(&query) {
        std::hint::black_box((name, value));
    }
    let Ok(Some(auth)) = sigv4::parse(&req) else {
        return;
    };
    let _ = auth.scope();
    let _ = auth.payload();
    let _ = auth.check_scope("us-east-1", "s3");
    if let Ok(t) = auth.time() {
        let _ = sigv4::verify(&req, &auth, input.secret, t);
    }
    let fixed = sigv4::parse_amz_date("20130524T000000Z").unwrap_or_default();
    let _ = sigv4::verify(&req, &auth, input.secret, fixed);
    let _ = sigv4::canonical_request(&req, &auth);
    let _ = sigv4::string_to_sign(&req, &auth);
    let c = &auth.credential;
    let key = sigv4::signing_key(input.secret, &c.date, &c.region, &c.service);
    let _ = sigv4::compute_signature(&req, &auth, &key);
});
