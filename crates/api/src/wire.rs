//! Small HTTP helpers the object dialects (S3, Swift, native) share.

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
