//! The S3 dialect: path- and virtual-hosted-style REST over the object
//! engine, authenticated by the shared SigV4 verifier (docs/adr/0010).
//!
//! This module parses the request (addressing, SigV4, the operation it
//! names, payload encoding, headers), calls the engine, and renders S3's
//! XML and error codes. No rule about objects lives here: quotas, policy,
//! durability and digests are the engine's. Every request is recognised
//! as one S3 operation before anything acts (`router`, docs/adr/0012).

pub mod chunked;
mod error;
mod handlers;
mod router;
pub mod xml;

pub use handlers::handle;

/// The S3 operation router on raw request parts, as the front door calls
/// it: the operation's name in the S3 API reference, or the status and S3
/// error code of the refusal. For the fuzz target
/// `fuzz/fuzz_targets/s3_router.rs` only.
#[doc(hidden)]
pub fn route_for_fuzzing(
    method: &http::Method,
    bucket: Option<&str>,
    key: Option<&str>,
    query: &str,
    headers: &http::HeaderMap,
) -> Result<&'static str, (u16, &'static str)> {
    let query: std::collections::BTreeMap<String, String> =
        nuage_identity::sigv4::query_pairs(query)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
    let level = match (bucket, key) {
        (None, _) => router::Level::Service,
        (Some(_), None) => router::Level::Bucket,
        (Some(_), Some(_)) => router::Level::Object,
    };
    router::route(method, level, bucket, &query, headers)
        .map(router::Operation::name)
        .map_err(|e| e.status_and_code())
}
