//! Fuzz target for the SigV4 verifier: arbitrary bytes, split on NUL into
//! method, path, query, Authorization, x-amz-date, x-amz-content-sha256 and
//! Date, must never make `parse`, `verify` or the helpers panic.
//!
//! ```text
//! cargo +nightly fuzz run sigv4 fuzz/corpus/sigv4 fuzz/seeds/sigv4   # from the workspace root
//! ```
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use nuage_identity::sigv4::{self, SignedRequest};

fn header(map: &mut HeaderMap, name: &'static str, value: Option<&[u8]>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_static(name), value);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let mut next = || parts.next();
    let method = String::from_utf8_lossy(next().unwrap_or_default()).into_owned();
    let path = String::from_utf8_lossy(next().unwrap_or_default()).into_owned();
    let query = String::from_utf8_lossy(next().unwrap_or_default()).into_owned();
    let authorization = next();
    let amz_date = next();
    let content_sha256 = next();
    let date = next();
    let body_sha256 = next().map(|b| String::from_utf8_lossy(b).into_owned());

    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("s3.nuage.test"));
    header(&mut headers, "authorization", authorization);
    header(&mut headers, "x-amz-date", amz_date);
    header(&mut headers, "x-amz-content-sha256", content_sha256);
    header(&mut headers, "date", date);

    let req = SignedRequest {
        method: &method,
        path: &path,
        query: &query,
        headers: &headers,
        body_sha256: body_sha256.as_deref(),
    };
    let _ = sigv4::query_pairs(&query).count();
    if let Ok(Some(auth)) = sigv4::parse(&req) {
        let fixed = sigv4::parse_amz_date("20130524T000000Z").unwrap_or_default();
        let _ = sigv4::verify(
            &req,
            &auth,
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            fixed,
        );
        // At the request's own time, so that the signature check is reached too.
        if let Ok(t) = auth.time() {
            let _ = sigv4::verify(&req, &auth, "secret", t);
        }
        let _ = sigv4::canonical_request(&req, &auth);
        let _ = sigv4::string_to_sign(&req, &auth);
        let _ = auth.scope();
        let _ = auth.payload();
        let _ = auth.check_scope("us-east-1", "s3");
        let key = sigv4::signing_key(
            "secret",
            &auth.credential.date,
            &auth.credential.region,
            &auth.credential.service,
        );
        let _ = sigv4::chunk_signature(&key, &auth.amz_date, &auth.scope(), &auth.signature, data);
    }
});
