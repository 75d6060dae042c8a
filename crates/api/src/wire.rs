//! Small HTTP helpers the dialects share.

use http::{header, HeaderMap, HeaderValue};

/// Sets a header from text, skipping names or values HTTP cannot carry
/// (user metadata may hold anything; a response must never fail for it).
pub fn set_header(h: &mut HeaderMap, name: &str, value: impl AsRef<str>) {
    if let (Ok(n), Ok(v)) = (
        header::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value.as_ref()),
    ) {
        h.insert(n, v);
    }
}

/// An IMF-fixdate (`Last-Modified`, `Expires`) from Unix milliseconds.
pub fn http_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// A percent-encoded path segment as UTF-8 text; `None` when it is not.
pub fn decode_path(s: &str) -> Option<String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|c| c.into_owned())
}

/// A request's headers whose values are text, by name; what the engine's
/// header rules (kept headers, conditions) read.
pub fn text_headers(h: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    h.iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?)))
}

/// The request's conditions (RFC 7232), for the engine to evaluate.
pub fn conditions(h: &HeaderMap) -> nuage_object::Conditions {
    nuage_object::Conditions::from_headers(text_headers(h))
}

/// A request's query string as decoded `(name, value)` pairs, in order.
pub fn query_pairs(uri: &http::Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// OpenStack's marker paging: at most `limit` items after the one whose
/// key is `marker`, and whether more follow; `None` when no item has that
/// key (each dialect words that error its own way).
pub fn after_marker<'a, T>(
    all: &'a [T],
    key: impl Fn(&T) -> &str,
    marker: Option<&str>,
    limit: Option<usize>,
) -> Option<(&'a [T], bool)> {
    let start = match marker {
        None => 0,
        Some(m) => all.iter().position(|x| key(x) == m)? + 1,
    };
    let rest = &all[start.min(all.len())..];
    let n = limit.unwrap_or(usize::MAX).min(rest.len());
    Some((&rest[..n], rest.len() > n))
}
