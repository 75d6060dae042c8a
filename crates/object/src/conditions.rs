//! Conditional requests (RFC 7232): the rule every dialect's GET, HEAD and
//! PUT follow, decided here once so that S3 and Swift answer the same
//! request the same way. Each front door only reads the four headers and
//! renders the outcome (S3: 304 without a body or `PreconditionFailed`;
//! Swift: 304 or 412 with its usual headers).

use chrono::{DateTime, NaiveDateTime};

/// The condition headers of a request, as the client sent them (ETag lists
/// quoted or not, `*`, HTTP dates in any of RFC 7231's three forms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub if_unmodified_since: Option<String>,
}

/// One of the four conditions, named so a dialect can say which failed
/// (S3's `<Condition>` element).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    IfMatch,
    IfNoneMatch,
    IfModifiedSince,
    IfUnmodifiedSince,
}

impl Condition {
    /// The header's name, as RFC 7232 spells it.
    pub fn header_name(self) -> &'static str {
        match self {
            Condition::IfMatch => "If-Match",
            Condition::IfNoneMatch => "If-None-Match",
            Condition::IfModifiedSince => "If-Modified-Since",
            Condition::IfUnmodifiedSince => "If-Unmodified-Since",
        }
    }
}

/// Why a read is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmet {
    /// The client's copy is current (If-None-Match or If-Modified-Since on
    /// a read): HTTP 304.
    NotModified,
    /// This condition does not hold: HTTP 412.
    Failed(Condition),
}

/// What a conditional read gives: the object, or "not modified" with the
/// object's metadata (a 304 carries its ETag and Last-Modified). A failed
/// condition is an error ([`crate::ObjectError::ConditionFailed`]).
#[derive(Debug)]
pub enum Conditional<T> {
    Served(T),
    NotModified(Box<crate::ObjectMeta>),
}

impl Conditions {
    /// The four headers among a request's `(name, value)` pairs, names in
    /// any case; the first of a repeated header counts.
    pub fn from_headers<K: AsRef<str>, V: AsRef<str>>(
        headers: impl IntoIterator<Item = (K, V)>,
    ) -> Conditions {
        let mut c = Conditions::default();
        for (k, v) in headers {
            let slot = match k.as_ref().to_ascii_lowercase().as_str() {
                "if-match" => &mut c.if_match,
                "if-none-match" => &mut c.if_none_match,
                "if-modified-since" => &mut c.if_modified_since,
                "if-unmodified-since" => &mut c.if_unmodified_since,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(v.as_ref().to_string());
            }
        }
        c
    }

    /// RFC 7232 section 6, for a read (GET or HEAD) of an object with this
    /// ETag (hex, unquoted) and modification time: If-Match, else
    /// If-Unmodified-Since; then If-None-Match, else If-Modified-Since. A
    /// date that cannot be parsed is ignored, as the RFC says; times
    /// compare to the second, the precision of an HTTP date.
    pub fn evaluate(&self, etag: &str, modified_ms: i64) -> Result<(), Unmet> {
        let modified = modified_ms.div_euclid(1000);
        if let Some(list) = &self.if_match {
            if !list_matches(list, etag, false) {
                return Err(Unmet::Failed(Condition::IfMatch));
            }
        } else if let Some(t) = self
            .if_unmodified_since
            .as_deref()
            .and_then(parse_http_date)
        {
            if modified > t {
                return Err(Unmet::Failed(Condition::IfUnmodifiedSince));
            }
        }
        if let Some(list) = &self.if_none_match {
            if list_matches(list, etag, true) {
                return Err(Unmet::NotModified);
            }
        } else if let Some(t) = self.if_modified_since.as_deref().and_then(parse_http_date) {
            if modified <= t {
                return Err(Unmet::NotModified);
            }
        }
        Ok(())
    }
}

/// Whether an ETag list (`*`, or tags quoted or not, comma-separated) names
/// `etag`. `weak` is If-None-Match's weak comparison, where `W/"x"`
/// matches `x`; If-Match compares strongly, so a weak tag never matches.
pub fn list_matches(list: &str, etag: &str, weak: bool) -> bool {
    list.split(',').map(str::trim).any(|e| {
        if e == "*" {
            return true;
        }
        let e = match e.strip_prefix("W/") {
            Some(rest) if weak => rest,
            Some(_) => return false,
            None => e,
        };
        e.trim_matches('"') == etag
    })
}

/// An HTTP date (IMF-fixdate, RFC 850 or asctime) as seconds since the
/// epoch.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc2822(s) {
        return Some(d.timestamp());
    }
    [
        "%a, %d %b %Y %H:%M:%S GMT",
        "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %e %H:%M:%S %Y",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .map(|d| d.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETAG: &str = "0123abcd";
    /// 1994-11-06 08:49:37 UTC, and a time within that second.
    const T: i64 = 784_111_777;
    const T_MS: i64 = T * 1000 + 500;
    const AT: &str = "Sun, 06 Nov 1994 08:49:37 GMT";
    const BEFORE: &str = "Sun, 06 Nov 1994 08:49:36 GMT";

    fn c(h: &[(&str, &str)]) -> Conditions {
        Conditions::from_headers(h.iter().copied())
    }

    #[test]
    fn the_three_date_forms() {
        for s in [
            AT,
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            " Sun, 06 Nov 1994 08:49:37 +0000 ",
        ] {
            assert_eq!(parse_http_date(s), Some(T), "{s}");
        }
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn etag_lists() {
        for (list, weak, want) in [
            ("*", false, true),
            ("0123abcd", false, true),
            ("\"0123abcd\"", false, true),
            ("\"x\", \"0123abcd\"", false, true),
            ("x,0123abcd", false, true),
            ("\"x\"", false, false),
            ("W/\"0123abcd\"", false, false),
            ("W/\"0123abcd\"", true, true),
            ("\"0123abc\"", true, false),
        ] {
            assert_eq!(list_matches(list, ETAG, weak), want, "{list} weak={weak}");
        }
    }

    #[test]
    fn rfc_7232_precedence() {
        use Condition::*;
        use Unmet::*;
        type Case<'a> = (&'a [(&'a str, &'a str)], Result<(), Unmet>);
        let cases: &[Case] = &[
            (&[], Ok(())),
            (&[("If-Match", "\"0123abcd\"")], Ok(())),
            (&[("if-match", "nope")], Err(Failed(IfMatch))),
            (&[("if-unmodified-since", AT)], Ok(())),
            (
                &[("if-unmodified-since", BEFORE)],
                Err(Failed(IfUnmodifiedSince)),
            ),
            // If-Match holds: If-Unmodified-Since is not looked at.
            (
                &[("if-match", "*"), ("if-unmodified-since", BEFORE)],
                Ok(()),
            ),
            (&[("if-none-match", "*")], Err(NotModified)),
            (&[("if-none-match", "0123abcd")], Err(NotModified)),
            (&[("if-none-match", "other")], Ok(())),
            (&[("if-modified-since", AT)], Err(NotModified)),
            (&[("if-modified-since", BEFORE)], Ok(())),
            (&[("if-modified-since", "not a date")], Ok(())),
            // If-None-Match does not match: If-Modified-Since is ignored.
            (
                &[("if-none-match", "other"), ("if-modified-since", AT)],
                Ok(()),
            ),
            (
                &[
                    ("if-none-match", "\"0123abcd\""),
                    ("if-modified-since", BEFORE),
                ],
                Err(NotModified),
            ),
            // A failed If-Match wins over a matching If-None-Match.
            (
                &[("if-match", "other"), ("if-none-match", "*")],
                Err(Failed(IfMatch)),
            ),
            (
                &[("if-match", "0123abcd"), ("if-none-match", "0123abcd")],
                Err(NotModified),
            ),
            (
                &[
                    ("if-unmodified-since", BEFORE),
                    ("if-modified-since", BEFORE),
                ],
                Err(Failed(IfUnmodifiedSince)),
            ),
        ];
        for (h, want) in cases {
            assert_eq!(c(h).evaluate(ETAG, T_MS), *want, "{h:?}");
        }
        assert_eq!(c(&[("content-type", "x")]), Conditions::default());
        assert_eq!(
            c(&[("if-match", "a"), ("IF-MATCH", "b")])
                .if_match
                .as_deref(),
            Some("a")
        );
    }
}
