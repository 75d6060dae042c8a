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
