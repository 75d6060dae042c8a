//! nuage-api's S3 protocol modules, compiled on their own for fuzzing.
//!
//! `xml.rs` and `chunked.rs` are pure protocol code that depends only on
//! external crates and on nuage-identity/nuage-object, never on the rest of
//! nuage-api. Including them by path keeps the fuzz build free of the HTTP
//! stack and of handler code under construction, and it fails loudly if
//! either module ever grows a `crate::` dependency.

#[path = "../../crates/api/src/s3/chunked.rs"]
pub mod chunked;
#[path = "../../crates/api/src/s3/xml.rs"]
pub mod xml;

/// The `nuage` CLI's parser of the aws CLI's argument syntaxes (shorthand,
/// its JSON form, counts, blobs): pure code on serde_json and base64, by
/// path for the same reason.
#[path = "../../crates/cli/src/shorthand.rs"]
pub mod shorthand;

/// A fuzzed query parameter or header name: one of the names the code
/// under test knows (so the fuzzer reaches past "unknown name"), or any
/// text.
#[derive(arbitrary::Arbitrary, Debug)]
pub enum Name<'a> {
    Known(u8),
    Other(&'a str),
}

impl<'a> Name<'a> {
    /// The name: `known[i mod len]`, or the text itself.
    pub fn pick(&self, known: &[&'static str]) -> &'a str {
        match self {
            Name::Known(i) => known[usize::from(*i) % known.len()],
            Name::Other(s) => s,
        }
    }
}

/// A header map of fuzzed names and values; pairs that are not valid HTTP
/// are left out, as a server's HTTP parser would refuse them.
pub fn header_map(pairs: &[(Name<'_>, &[u8])], known: &[&'static str]) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.pick(known).as_bytes()),
            http::HeaderValue::from_bytes(value),
        ) {
            headers.append(n, v);
        }
    }
    headers
}

/// `raw`, then each `name` or `name=value`, joined with `&`.
pub fn query_string(
    raw: &str,
    params: &[(Name<'_>, Option<&str>)],
    known: &[&'static str],
) -> String {
    let mut q = raw.to_owned();
    for (name, value) in params {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str(name.pick(known));
        if let Some(v) = value {
            q.push('=');
            q.push_str(v);
        }
    }
    q
}

/// An HTTP method: `known[index]` while `index` is in range (the dialect's
/// methods, reached often), else the fuzzed text; `None` when that is not a
/// valid method token.
pub fn method(index: u8, other: &str, known: &[&str]) -> Option<http::Method> {
    let name = known.get(usize::from(index)).copied().unwrap_or(other);
    http::Method::from_bytes(name.as_bytes()).ok()
}
