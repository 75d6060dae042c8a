//! AWS Signature Version 4: the one verifier every AWS-dialect front door
//! (EC2 Query, S3) calls.
//!
//! A front door describes the request it received as a [`SignedRequest`]
//! (borrowed, nothing copied), calls [`parse`] to learn whether and how it is
//! signed, looks the access key up (answering [`SigV4Error::UnknownAccessKey`]
//! when it does not exist), checks the credential scope against its own
//! region and service ([`SigV4Auth::check_scope`]) and then calls [`verify`]
//! with the key's secret.
//!
//! Canonicalization follows the AWS documentation and botocore, which the
//! integration test `tests/sigv4_botocore.rs` checks against:
//!
//! * **Path.** For service `s3` the path is used exactly as it arrived on the
//!   wire (it is already percent-encoded once; an empty path is `/`). For every
//!   other service the path is normalized like botocore does (`.` and `..`
//!   segments resolved, empty segments dropped) and then percent-encoded again,
//!   so `%20` on the wire becomes `%2520` in the canonical request.
//! * **Query.** Each name and value is percent-decoded and re-encoded with the
//!   AWS unreserved set (`A-Z a-z 0-9 - _ . ~`), then the pairs are sorted.
//!   A `+` in the raw query is decoded as a **space** (form-urlencoded rule,
//!   which is also what botocore's `AWSRequest(params=…)` produces on the wire
//!   while signing `%20`); a literal plus arrives as `%2B`. Front doors must
//!   decode query parameters the same way ([`query_pairs`] does), or the
//!   meaning they act on could differ from the meaning that was signed.
//! * **Headers.** The signed headers' values are trimmed, runs of spaces and
//!   tabs collapse to one space, repeated headers are joined with `,`.
//!
//! Nothing here panics on any input, and nothing is cached globally.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use nuage_model::{ErrorKind, HasKind};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every credential scope.
pub const TERMINATOR: &str = "aws4_request";
/// Payload hash of a request whose body is not signed (always for S3 presigned URLs).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Payload hash of an aws-chunked upload whose chunks are signed ([`chunk_signature`]).
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// Like [`STREAMING_PAYLOAD`], followed by signed trailing headers.
pub const STREAMING_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// aws-chunked upload with unsigned chunks and an (unsigned) checksum trailer.
pub const STREAMING_UNSIGNED_PAYLOAD_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// Hex SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// How far the request time of a header-signed request may be from the server clock.
pub const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
/// The longest validity of a presigned URL (7 days).
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;

const HEADER_X_AMZ_DATE: &str = "x-amz-date";
const HEADER_X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
const HEADER_X_AMZ_SECURITY_TOKEN: &str = "x-amz-security-token";

/// What a front door knows of one HTTP request, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The HTTP method as received (`GET`, `POST`, ...).
    pub method: &'a str,
    /// Raw path as received on the wire (percent-encoded), e.g. `/bucket/a%20b`.
    pub path: &'a str,
    /// Raw query string without `?`, may be empty.
    pub query: &'a str,
    /// The request headers. They must contain `host`: for HTTP/2 requests,
    /// which carry the authority in the `:authority` pseudo-header, the front
    /// door has to insert a `host` header built from the URI first.
    pub headers: &'a http::HeaderMap,
    /// Lowercase hex SHA-256 of the body when the front door has the whole
    /// body (EC2 Query POST); `None` otherwise, in which case the
    /// `x-amz-content-sha256` header value is used (S3 always sends it; for
    /// S3 presigned URLs the payload hash is `UNSIGNED-PAYLOAD`).
    pub body_sha256: Option<&'a str>,
}

/// The `Credential=` part: who signed, and for which day, region and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    /// `YYYYMMDD`
    pub date: String,
    pub region: String,
    pub service: String,
}

/// A parsed SigV4 authentication, from the `Authorization` header or from the
/// `X-Amz-*` query parameters of a presigned URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Auth {
    pub credential: Credential,
    /// Lowercase header names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// 64 hex digits, as sent.
    pub signature: String,
    /// `YYYYMMDDTHHMMSSZ` (converted from the `Date` header when that was used).
    pub amz_date: String,
    /// Whether this came from query parameters (a presigned URL).
    pub presigned: bool,
    /// `X-Amz-Expires` of a presigned URL.
    pub expires_secs: Option<u64>,
    /// The value that went into the canonical request: a hex SHA-256 or one of
    /// [`UNSIGNED_PAYLOAD`], [`STREAMING_PAYLOAD`], [`STREAMING_PAYLOAD_TRAILER`],
    /// [`STREAMING_UNSIGNED_PAYLOAD_TRAILER`]. See [`SigV4Auth::payload`].
    pub payload_hash: String,
    /// `X-Amz-Security-Token` (header or query) when the client sent one; the
    /// caller must check it belongs to the access key.
    pub security_token: Option<String>,
}

/// What the signature says about the body, from [`SigV4Auth::payload`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// The body is not covered by the signature.
    Unsigned,
    /// The body's SHA-256 (hex) was signed. When the front door did not pass
    /// `body_sha256` it must hash the body itself and reject a mismatch
    /// (`XAmzContentSHA256Mismatch`).
    Sha256(&'a str),
    /// aws-chunked body, every chunk signed with [`chunk_signature`]; the seed
    /// (previous signature of the first chunk) is [`SigV4Auth::signature`].
    StreamingSigned,
    /// Like `StreamingSigned`, followed by signed trailing headers.
    StreamingSignedTrailer,
    /// aws-chunked body with unsigned chunks and a checksum trailer.
    StreamingUnsignedTrailer,
}

impl SigV4Auth {
    /// `YYYYMMDD/region/service/aws4_request`, as used in strings to sign
    /// (also those of aws-chunked chunks).
    pub fn scope(&self) -> String {
        let c = &self.credential;
        let mut s = String::with_capacity(
            c.date.len() + c.region.len() + c.service.len() + TERMINATOR.len() + 3,
        );
        for (i, part) in [
            c.date.as_str(),
            c.region.as_str(),
            c.service.as_str(),
            TERMINATOR,
        ]
        .iter()
        .enumerate()
        {
            if i > 0 {
                s.push('/');
            }
            s.push_str(part);
        }
        s
    }

    /// The access key the request claims to be signed with.
    pub fn access_key_id(&self) -> &str {
        &self.credential.access_key_id
    }

    /// The request time (from `amz_date`).
    pub fn time(&self) -> Result<DateTime<Utc>, SigV4Error> {
        parse_amz_date(&self.amz_date).ok_or(SigV4Error::InvalidDate)
    }

    /// Checks that the credential scope names this front door's region and
    /// service; AWS answers a wrong one with `AuthorizationHeaderMalformed`.
    pub fn check_scope(&self, region: &str, service: &str) -> Result<(), SigV4Error> {
        if self.credential.region != region {
            return Err(SigV4Error::WrongScope(format!(
                "the region {:?} is wrong; expecting {:?}",
                self.credential.region, region
            )));
        }
        if self.credential.service != service {
            return Err(SigV4Error::WrongScope(format!(
                "the service {:?} is wrong; expecting {:?}",
                self.credential.service, service
            )));
        }
        Ok(())
    }

    /// Classifies [`SigV4Auth::payload_hash`].
    pub fn payload(&self) -> Payload<'_> {
        match self.payload_hash.as_str() {
            UNSIGNED_PAYLOAD => Payload::Unsigned,
            STREAMING_PAYLOAD => Payload::StreamingSigned,
            STREAMING_PAYLOAD_TRAILER => Payload::StreamingSignedTrailer,
            STREAMING_UNSIGNED_PAYLOAD_TRAILER => Payload::StreamingUnsignedTrailer,
            other => Payload::Sha256(other),
        }
    }
}

/// Why a request's SigV4 authentication was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// The `Authorization` header is not a well-formed SigV4 header.
    #[error("the authorization header is malformed: {0}")]
    MalformedHeader(String),
    /// The `X-Amz-*` query parameters of a presigned URL are malformed.
    #[error("the query-string authentication parameters are malformed: {0}")]
    MalformedQuery(String),
    /// A required part of the signature is missing.
    #[error("incomplete signature: {0}")]
    IncompleteSignature(String),
    /// Another scheme (signature version 2, SigV4a, ...).
    #[error("the authorization mechanism is not supported ({0}); use AWS4-HMAC-SHA256")]
    UnsupportedAlgorithm(String),
    /// Both an `Authorization` header and `X-Amz-*` auth query parameters.
    #[error("only one authentication mechanism is allowed: an Authorization header or X-Amz-* query parameters")]
    ConflictingAuth,
    /// No usable `x-amz-date`/`Date` header (or `X-Amz-Date` parameter).
    #[error("AWS authentication requires a valid Date or x-amz-date header")]
    InvalidDate,
    /// `x-amz-content-sha256` is neither a SHA-256 nor a known special value.
    #[error("invalid x-amz-content-sha256: {0}")]
    InvalidContentSha256(String),
    /// `x-amz-content-sha256` differs from the body the front door hashed.
    #[error("the provided x-amz-content-sha256 header does not match what was computed")]
    ContentSha256Mismatch,
    /// Neither `x-amz-content-sha256` nor a body hash from the front door.
    #[error("missing required header for this request: x-amz-content-sha256")]
    MissingContentSha256,
    /// The credential scope names another region or service.
    #[error("the credential scope is wrong: {0}")]
    WrongScope(String),
    /// A header listed in `SignedHeaders` is not in the request.
    #[error("the signed header {0:?} is not present in the request")]
    SignedHeaderMissing(String),
    /// The signature is wrong.
    #[error("the request signature we calculated does not match the signature you provided")]
    SignatureDoesNotMatch,
    /// Header-signed request more than 15 minutes away from the server clock.
    #[error("the difference between the request time and the current time is too large")]
    RequestTimeTooSkewed,
    /// Presigned URL past `X-Amz-Date + X-Amz-Expires`.
    #[error("request has expired")]
    Expired,
    /// Presigned URL dated in the future (beyond the allowed clock skew).
    #[error("request is not valid yet")]
    NotYetValid,
    /// For callers: the access key id is not known.
    #[error("the AWS access key id you provided does not exist in our records")]
    UnknownAccessKey,
}

impl SigV4Error {
    /// The AWS error code to answer with.
    pub fn aws_code(&self) -> &'static str {
        match self {
            SigV4Error::MalformedHeader(_) | SigV4Error::WrongScope(_) => {
                "AuthorizationHeaderMalformed"
            }
            SigV4Error::MalformedQuery(_) => "AuthorizationQueryParametersError",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignature",
            SigV4Error::UnsupportedAlgorithm(_) | SigV4Error::MissingContentSha256 => {
                "InvalidRequest"
            }
            SigV4Error::ConflictingAuth | SigV4Error::InvalidContentSha256(_) => "InvalidArgument",
            SigV4Error::ContentSha256Mismatch => "XAmzContentSHA256Mismatch",
            SigV4Error::SignedHeaderMissing(_) | SigV4Error::SignatureDoesNotMatch => {
                "SignatureDoesNotMatch"
            }
            SigV4Error::RequestTimeTooSkewed => "RequestTimeTooSkewed",
            SigV4Error::InvalidDate | SigV4Error::Expired | SigV4Error::NotYetValid => {
                "AccessDenied"
            }
            SigV4Error::UnknownAccessKey => "InvalidAccessKeyId",
        }
    }

    /// The HTTP status AWS uses with [`SigV4Error::aws_code`] (400 or 403).
    pub fn http_status(&self) -> u16 {
        self.kind().http_status()
    }
}

impl HasKind for SigV4Error {
    fn kind(&self) -> ErrorKind {
        match self {
            SigV4Error::MalformedHeader(_)
            | SigV4Error::MalformedQuery(_)
            | SigV4Error::IncompleteSignature(_)
            | SigV4Error::UnsupportedAlgorithm(_)
            | SigV4Error::ConflictingAuth
            | SigV4Error::InvalidContentSha256(_)
            | SigV4Error::ContentSha256Mismatch
            | SigV4Error::MissingContentSha256
            | SigV4Error::WrongScope(_) => ErrorKind::Invalid,
            SigV4Error::InvalidDate
            | SigV4Error::SignedHeaderMissing(_)
            | SigV4Error::SignatureDoesNotMatch
            | SigV4Error::RequestTimeTooSkewed
            | SigV4Error::Expired
            | SigV4Error::NotYetValid
            | SigV4Error::UnknownAccessKey => ErrorKind::Forbidden,
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing

/// Finds and parses the request's SigV4 authentication.
///
/// `Ok(None)` when the request carries no authentication at all (anonymous);
/// `Err` for a malformed one, for signature version 2, or for both an
/// `Authorization` header and presigned query parameters. Checks the shape
/// only: the time and the signature are [`verify`]'s job.
pub fn parse(req: &SignedRequest<'_>) -> Result<Option<SigV4Auth>, SigV4Error> {
    let mut authorization = req.headers.get_all(http::header::AUTHORIZATION).iter();
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(SigV4Error::MalformedHeader(
            "more than one Authorization header".into(),
        ));
    }
    let query = QueryAuth::scan(req.query);
    match header {
        Some(value) => {
            if query.has_sigv4() {
                return Err(SigV4Error::ConflictingAuth);
            }
            let value = value.to_str().map_err(|_| {
                SigV4Error::MalformedHeader("the Authorization header is not ASCII".into())
            })?;
            parse_header_form(req, value).map(Some)
        }
        None if query.has_sigv4() => parse_query_form(req, &query).map(Some),
        None if query.sigv2 => Err(SigV4Error::UnsupportedAlgorithm(
            "AWS signature version 2".into(),
        )),
        None => Ok(None),
    }
}

fn parse_header_form(req: &SignedRequest<'_>, value: &str) -> Result<SigV4Auth, SigV4Error> {
    let value = value.trim_matches([' ', '\t']);
    if value.is_empty() {
        return Err(SigV4Error::MalformedHeader(
            "the Authorization header is empty".into(),
        ));
    }
    let (algorithm, rest) = match value.split_once([' ', '\t']) {
        Some((a, r)) => (a, r),
        None => (value, ""),
    };
    if algorithm != ALGORITHM {
        return Err(unsupported(algorithm));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim_matches([' ', '\t']);
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(SigV4Error::MalformedHeader(format!(
                "{:?} is not of the form key=value",
                shorten(part)
            )));
        };
        let slot = match key.trim_matches([' ', '\t']) {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(SigV4Error::MalformedHeader(format!(
                    "unknown parameter {:?}",
                    shorten(other)
                )))
            }
        };
        if slot.replace(val.trim_matches([' ', '\t'])).is_some() {
            return Err(SigV4Error::MalformedHeader(format!(
                "parameter {key:?} given twice"
            )));
        }
    }
    let incomplete = |what: &str| {
        SigV4Error::IncompleteSignature(format!(
            "the Authorization header requires a {what:?} parameter"
        ))
    };
    let credential = credential.ok_or_else(|| incomplete("Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| incomplete("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("Signature"))?;

    let credential = parse_credential(credential, false)?;
    let signed_headers = parse_signed_headers(signed_headers, false)?;
    let signature = parse_signature(signature, false)?;
    let amz_date = header_date(req.headers)?;
    check_scope_date(&credential, &amz_date, false)?;

    let content_sha256 = single_header(req.headers, HEADER_X_AMZ_CONTENT_SHA256)?;
    let payload_hash = match content_sha256 {
        Some(declared) => {
            let declared = check_content_sha256(declared)?;
            if let Some(body) = req.body_sha256 {
                if is_hex_sha256(declared) && !declared.eq_ignore_ascii_case(body) {
                    return Err(SigV4Error::ContentSha256Mismatch);
                }
            }
            declared.to_owned()
        }
        None => match req.body_sha256 {
            Some(body) => body.to_owned(),
            None => return Err(SigV4Error::MissingContentSha256),
        },
    };
    let security_token =
        single_header(req.headers, HEADER_X_AMZ_SECURITY_TOKEN)?.map(str::to_owned);

    Ok(SigV4Auth {
        credential,
        signed_headers,
        signature,
        amz_date,
        presigned: false,
        expires_secs: None,
        payload_hash,
        security_token,
    })
}

fn parse_query_form(req: &SignedRequest<'_>, q: &QueryAuth<'_>) -> Result<SigV4Auth, SigV4Error> {
    if let Some(name) = q.duplicate {
        return Err(SigV4Error::MalformedQuery(format!(
            "the parameter {name} is given more than once"
        )));
    }
    let missing = || {
        SigV4Error::MalformedQuery(
            "query-string authentication version 4 requires the X-Amz-Algorithm, \
             X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders \
             and X-Amz-Expires parameters"
                .into(),
        )
    };
    let text = |v: &Option<Cow<'_, [u8]>>| -> Result<Option<String>, SigV4Error> {
        match v {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(bytes)
                .map(|s| Some(s.to_owned()))
                .map_err(|_| SigV4Error::MalformedQuery("a parameter is not UTF-8".into())),
        }
    };
    let algorithm = text(&q.algorithm)?.ok_or_else(missing)?;
    let credential = text(&q.credential)?.ok_or_else(missing)?;
    let date = text(&q.date)?.ok_or_else(missing)?;
    let expires = text(&q.expires)?.ok_or_else(missing)?;
    let signed_headers = text(&q.signed_headers)?.ok_or_else(missing)?;
    let signature = text(&q.signature)?.ok_or_else(missing)?;
    if algorithm != ALGORITHM {
        return Err(unsupported(&algorithm));
    }
    let credential = parse_credential(&credential, true)?;
    let signed_headers = parse_signed_headers(&signed_headers, true)?;
    let signature = parse_signature(&signature, true)?;
    if parse_amz_date(&date).is_none() {
        return Err(SigV4Error::MalformedQuery(
            "X-Amz-Date must be in the ISO8601 basic format YYYYMMDD'T'HHMMSS'Z'".into(),
        ));
    }
    check_scope_date(&credential, &date, true)?;
    let expires_secs = parse_expires(&expires)?;

    let payload_hash = match text(&q.content_sha256)? {
        Some(declared) => check_content_sha256(&declared)?.to_owned(),
        None => match single_header(req.headers, HEADER_X_AMZ_CONTENT_SHA256)? {
            Some(declared) => check_content_sha256(declared)?.to_owned(),
            // botocore's SigV4QueryAuth (every service but S3) signs the body
            // hash; S3SigV4QueryAuth signs UNSIGNED-PAYLOAD.
            None => match req.body_sha256 {
                Some(body) if credential.service != "s3" => body.to_owned(),
                _ => UNSIGNED_PAYLOAD.to_owned(),
            },
        },
    };
    let security_token = text(&q.security_token)?;

    Ok(SigV4Auth {
        credential,
        signed_headers,
        signature,
        amz_date: date,
        presigned: true,
        expires_secs: Some(expires_secs),
        payload_hash,
        security_token,
    })
}

/// The auth-related parameters of a query string, decoded.
#[derive(Default)]
struct QueryAuth<'a> {
    algorithm: Option<Cow<'a, [u8]>>,
    credential: Option<Cow<'a, [u8]>>,
    date: Option<Cow<'a, [u8]>>,
    expires: Option<Cow<'a, [u8]>>,
    signed_headers: Option<Cow<'a, [u8]>>,
    signature: Option<Cow<'a, [u8]>>,
    security_token: Option<Cow<'a, [u8]>>,
    content_sha256: Option<Cow<'a, [u8]>>,
    /// The first auth parameter found twice.
    duplicate: Option<&'static str>,
    /// `AWSAccessKeyId` present: signature version 2.
    sigv2: bool,
}

impl<'a> QueryAuth<'a> {
    fn scan(query: &'a str) -> Self {
        let mut q = QueryAuth::default();
        for (name, value) in raw_pairs(query) {
            let name = decode_component(name);
            let (slot, label) = match name.as_ref() {
                b"X-Amz-Algorithm" => (&mut q.algorithm, "X-Amz-Algorithm"),
                b"X-Amz-Credential" => (&mut q.credential, "X-Amz-Credential"),
                b"X-Amz-Date" => (&mut q.date, "X-Amz-Date"),
                b"X-Amz-Expires" => (&mut q.expires, "X-Amz-Expires"),
                b"X-Amz-SignedHeaders" => (&mut q.signed_headers, "X-Amz-SignedHeaders"),
                b"X-Amz-Signature" => (&mut q.signature, "X-Amz-Signature"),
                b"X-Amz-Security-Token" => (&mut q.security_token, "X-Amz-Security-Token"),
                n if n.eq_ignore_ascii_case(b"X-Amz-Content-Sha256") => {
                    (&mut q.content_sha256, "X-Amz-Content-Sha256")
                }
                b"AWSAccessKeyId" => {
                    q.sigv2 = true;
                    continue;
                }
                _ => continue,
            };
            if slot.replace(decode_component(value)).is_some() && q.duplicate.is_none() {
                q.duplicate = Some(label);
            }
        }
        q
    }

    fn has_sigv4(&self) -> bool {
        self.algorithm.is_some() || self.credential.is_some() || self.signature.is_some()
    }
}

fn unsupported(algorithm: &str) -> SigV4Error {
    if algorithm == "AWS" {
        SigV4Error::UnsupportedAlgorithm("AWS signature version 2".into())
    } else {
        SigV4Error::UnsupportedAlgorithm(format!("{:?}", shorten(algorithm)))
    }
}

fn malformed(presigned: bool, message: String) -> SigV4Error {
    if presigned {
        SigV4Error::MalformedQuery(message)
    } else {
        SigV4Error::MalformedHeader(message)
    }
}

/// At most 64 characters of attacker-provided text, for error messages.
fn shorten(s: &str) -> Cow<'_, str> {
    match s.char_indices().nth(64) {
        Some((end, _)) => Cow::Owned(format!("{}...", s.get(..end).unwrap_or(""))),
        None => Cow::Borrowed(s),
    }
}

fn parse_credential(s: &str, presigned: bool) -> Result<Credential, SigV4Error> {
    let bad = || {
        malformed(
            presigned,
            format!(
                "the Credential {:?} is malformed; expecting \
                 \"<ACCESS-KEY-ID>/YYYYMMDD/REGION/SERVICE/aws4_request\"",
                shorten(s)
            ),
        )
    };
    let mut parts = s.split('/');
    let (Some(key), Some(date), Some(region), Some(service), Some(terminator), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(bad());
    };
    let token = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_graphic());
    if !token(key) || !token(region) || !token(service) {
        return Err(bad());
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if terminator != TERMINATOR {
        return Err(malformed(
            presigned,
            format!(
                "the credential scope must end with {TERMINATOR:?}, not {:?}",
                shorten(terminator)
            ),
        ));
    }
    Ok(Credential {
        access_key_id: key.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    })
}

fn is_header_name_char(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.'
        | b'^' | b'_' | b'`' | b'|' | b'~')
}

fn parse_signed_headers(s: &str, presigned: bool) -> Result<Vec<String>, SigV4Error> {
    let mut names: Vec<String> = Vec::with_capacity(s.bytes().filter(|b| *b == b';').count() + 1);
    for name in s.split(';') {
        if name.is_empty() || !name.bytes().all(is_header_name_char) {
            return Err(malformed(
                presigned,
                format!(
                    "SignedHeaders {:?} must be lowercase header names separated by ';'",
                    shorten(s)
                ),
            ));
        }
        names.push(name.to_owned());
    }
    // Duplicates would only make the canonical request longer; refuse them.
    // Clients sort the list, so the check is usually one linear pass.
    let sorted_unique = names.windows(2).all(|w| match w {
        [a, b] => a < b,
        _ => true,
    });
    if !sorted_unique {
        let mut copy: Vec<&str> = names.iter().map(String::as_str).collect();
        copy.sort_unstable();
        if copy.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
            return Err(malformed(
                presigned,
                "SignedHeaders lists a header twice".into(),
            ));
        }
    }
    if !names.iter().any(|n| n == "host") {
        return Err(malformed(
            presigned,
            "the host header must be among the SignedHeaders".into(),
        ));
    }
    Ok(names)
}

fn parse_signature(s: &str, presigned: bool) -> Result<String, SigV4Error> {
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed(
            presigned,
            "the Signature must be 64 hexadecimal digits".into(),
        ));
    }
    Ok(s.to_owned())
}

fn parse_expires(s: &str) -> Result<u64, SigV4Error> {
    let bad = || {
        SigV4Error::MalformedQuery(format!(
            "X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGNED_EXPIRES_SECS}"
        ))
    };
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: u64 = s.parse().map_err(|_| bad())?;
    if !(1..=MAX_PRESIGNED_EXPIRES_SECS).contains(&n) {
        return Err(bad());
    }
    Ok(n)
}

fn check_scope_date(
    credential: &Credential,
    amz_date: &str,
    presigned: bool,
) -> Result<(), SigV4Error> {
    if amz_date.get(..8) != Some(credential.date.as_str()) {
        return Err(malformed(
            presigned,
            format!(
                "the credential date {:?} is not the date of the request time {:?}",
                credential.date, amz_date
            ),
        ));
    }
    Ok(())
}

/// The one value of a header that must not be repeated, as text.
fn single_header<'h>(
    headers: &'h http::HeaderMap,
    name: &str,
) -> Result<Option<&'h str>, SigV4Error> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(SigV4Error::MalformedHeader(format!(
            "the {name} header is given more than once"
        )));
    }
    first
        .to_str()
        .map(|s| Some(s.trim_matches([' ', '\t'])))
        .map_err(|_| SigV4Error::MalformedHeader(format!("the {name} header is not ASCII")))
}

fn is_hex_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_content_sha256(s: &str) -> Result<&str, SigV4Error> {
    match s {
        UNSIGNED_PAYLOAD
        | STREAMING_PAYLOAD
        | STREAMING_PAYLOAD_TRAILER
        | STREAMING_UNSIGNED_PAYLOAD_TRAILER => Ok(s),
        _ if is_hex_sha256(s) => Ok(s),
        _ => Err(SigV4Error::InvalidContentSha256(format!(
            "{:?} is neither a SHA-256 nor a supported payload type",
            shorten(s)
        ))),
    }
}

/// The request time from `x-amz-date`, else from `Date` (RFC 1123/2822),
/// as `YYYYMMDDTHHMMSSZ`.
fn header_date(headers: &http::HeaderMap) -> Result<String, SigV4Error> {
    let to_invalid = |_| SigV4Error::InvalidDate;
    if let Some(v) = single_header(headers, HEADER_X_AMZ_DATE).map_err(to_invalid)? {
        return match parse_amz_date(v) {
            Some(_) => Ok(v.to_owned()),
            None => Err(SigV4Error::InvalidDate),
        };
    }
    let v = single_header(headers, "date")
        .map_err(to_invalid)?
        .ok_or(SigV4Error::InvalidDate)?;
    let t = DateTime::parse_from_rfc2822(v).map_err(|_| SigV4Error::InvalidDate)?;
    format_amz_date(&t.with_timezone(&Utc)).ok_or(SigV4Error::InvalidDate)
}

/// Parses `YYYYMMDDTHHMMSSZ` strictly.
pub fn parse_amz_date(s: &str) -> Option<DateTime<Utc>> {
    let [y0, y1, y2, y3, mo0, mo1, d0, d1, b'T', h0, h1, mi0, mi1, s0, s1, b'Z'] = *s.as_bytes()
    else {
        return None;
    };
    let digits = [y0, y1, y2, y3, mo0, mo1, d0, d1, h0, h1, mi0, mi1, s0, s1];
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |a: u8, b: u8| u32::from(a - b'0') * 10 + u32::from(b - b'0');
    let year = i32::try_from(n(y0, y1) * 100 + n(y2, y3)).ok()?;
    let date = NaiveDate::from_ymd_opt(year, n(mo0, mo1), n(d0, d1))?;
    let time = date.and_hms_opt(n(h0, h1), n(mi0, mi1), n(s0, s1))?;
    Some(Utc.from_utc_datetime(&time))
}

fn format_amz_date(t: &DateTime<Utc>) -> Option<String> {
    use chrono::{Datelike, Timelike};
    if !(0..=9999).contains(&t.year()) {
        return None;
    }
    Some(format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

// ---------------------------------------------------------------------------
// Verification

/// Checks the request time (15 minutes of clock skew for header auth; for
/// presigned URLs `X-Amz-Expires` in 1..=604800 and `now` within
/// `[X-Amz-Date - 15 min, X-Amz-Date + X-Amz-Expires]`) and then the signature
/// with `secret`, compared in constant time.
pub fn verify(
    req: &SignedRequest<'_>,
    auth: &SigV4Auth,
    secret: &str,
    now: DateTime<Utc>,
) -> Result<(), SigV4Error> {
    check_time(auth, now)?;
    let c = &auth.credential;
    let key = signing_key(secret, &c.date, &c.region, &c.service);
    check_signature(req, auth, &key)
}

/// [`verify`] with a signing key the caller derived (and may have cached)
/// with [`signing_key`] for the auth's credential date, region and service.
pub fn verify_with_key(
    req: &SignedRequest<'_>,
    auth: &SigV4Auth,
    key: &[u8; 32],
    now: DateTime<Utc>,
) -> Result<(), SigV4Error> {
    check_time(auth, now)?;
    check_signature(req, auth, key)
}

fn check_time(auth: &SigV4Auth, now: DateTime<Utc>) -> Result<(), SigV4Error> {
    let t = auth.time()?;
    check_scope_date(&auth.credential, &auth.amz_date, auth.presigned)?;
    let (t, now) = (t.timestamp(), now.timestamp());
    if auth.presigned {
        let Some(expires) = auth
            .expires_secs
            .filter(|e| (1..=MAX_PRESIGNED_EXPIRES_SECS).contains(e))
        else {
            return Err(SigV4Error::MalformedQuery(format!(
                "X-Amz-Expires must be a number of seconds from 1 to {MAX_PRESIGNED_EXPIRES_SECS}"
            )));
        };
        if t.saturating_sub(now) > MAX_CLOCK_SKEW_SECS {
            return Err(SigV4Error::NotYetValid);
        }
        // expires <= 604800, the cast cannot wrap.
        if now > t.saturating_add(expires as i64) {
            return Err(SigV4Error::Expired);
        }
    } else if now.saturating_sub(t).saturating_abs() > MAX_CLOCK_SKEW_SECS {
        return Err(SigV4Error::RequestTimeTooSkewed);
    }
    Ok(())
}

fn check_signature(
    req: &SignedRequest<'_>,
    auth: &SigV4Auth,
    key: &[u8; 32],
) -> Result<(), SigV4Error> {
    let mut provided = [0u8; 32];
    hex::decode_to_slice(auth.signature.as_bytes(), &mut provided)
        .map_err(|_| SigV4Error::SignatureDoesNotMatch)?;
    let expected = raw_signature(req, auth, key)?;
    if bool::from(expected.ct_eq(&provided)) {
        Ok(())
    } else {
        Err(SigV4Error::SignatureDoesNotMatch)
    }
}

fn raw_signature(
    req: &SignedRequest<'_>,
    auth: &SigV4Auth,
    key: &[u8; 32],
) -> Result<[u8; 32], SigV4Error> {
    let mut hasher = Sha256::new();
    write_canonical_request(&mut hasher, req, auth)?;
    let canonical_hash: [u8; 32] = hasher.finalize().into();
    let mut mac = mac_with_key(&[key]);
    write_string_to_sign(&mut mac, auth, &canonical_hash);
    Ok(mac.finalize().into_bytes().into())
}

/// The signature (lowercase hex) that `auth` should carry for `req` under
/// `key` ([`signing_key`]); `auth.signature` itself is ignored. For signing
/// clients and tests: a verifier uses [`verify`], which compares in constant
/// time.
pub fn compute_signature(
    req: &SignedRequest<'_>,
    auth: &SigV4Auth,
    key: &[u8; 32],
) -> Result<String, SigV4Error> {
    raw_signature(req, auth, key).map(hex::encode)
}

/// The canonical request the signature covers, for diagnostics (AWS echoes
/// it in `SignatureDoesNotMatch` answers). Non-UTF-8 header bytes are shown
/// lossily.
pub fn canonical_request(req: &SignedRequest<'_>, auth: &SigV4Auth) -> Result<String, SigV4Error> {
    let mut out = Vec::with_capacity(256);
    write_canonical_request(&mut out, req, auth)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The string to sign, for diagnostics.
pub fn string_to_sign(req: &SignedRequest<'_>, auth: &SigV4Auth) -> Result<String, SigV4Error> {
    let mut hasher = Sha256::new();
    write_canonical_request(&mut hasher, req, auth)?;
    let canonical_hash: [u8; 32] = hasher.finalize().into();
    let mut out = Vec::with_capacity(160);
    write_string_to_sign(&mut out, auth, &canonical_hash);
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// HMAC signing key derivation: kSecret = "AWS4" + secret, then kDate,
/// kRegion, kService and kSigning. Exported for S3 aws-chunked uploads, whose
/// chunk signatures ([`chunk_signature`]) use it.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac(&[b"AWS4", secret.as_bytes()], &[date.as_bytes()]);
    let k_region = hmac(&[&k_date], &[region.as_bytes()]);
    let k_service = hmac(&[&k_region], &[service.as_bytes()]);
    hmac(&[&k_service], &[TERMINATOR.as_bytes()])
}

/// Signature of one aws-chunked chunk (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`),
/// as lowercase hex: the HMAC with `key` of
///
/// ```text
/// "AWS4-HMAC-SHA256-PAYLOAD\n" + amz_date + "\n" + scope + "\n" + previous_signature
///     + "\n" + hex(sha256("")) + "\n" + hex(sha256(chunk))
/// ```
///
/// The first chunk's previous signature is the request's
/// ([`SigV4Auth::signature`]); `scope` is [`SigV4Auth::scope`].
pub fn chunk_signature(
    key: &[u8; 32],
    amz_date: &str,
    scope: &str,
    previous_signature: &str,
    chunk: &[u8],
) -> String {
    let chunk_hex = sha256_hex(chunk);
    let sig = hmac(
        &[key],
        &[
            b"AWS4-HMAC-SHA256-PAYLOAD\n",
            amz_date.as_bytes(),
            b"\n",
            scope.as_bytes(),
            b"\n",
            previous_signature.as_bytes(),
            b"\n",
            EMPTY_SHA256.as_bytes(),
            b"\n",
            &chunk_hex,
        ],
    );
    hex::encode(sig)
}

/// Lowercase hex of the SHA-256 of `data`, without allocating.
fn sha256_hex(data: &[u8]) -> [u8; 64] {
    let hash: [u8; 32] = Sha256::digest(data).into();
    let mut out = [0u8; 64];
    let _ = hex::encode_to_slice(hash, &mut out); // sizes match
    out
}

/// Signature of the trailing headers of a signed aws-chunked upload
/// (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`), as lowercase hex: the
/// HMAC with `key` of
///
/// ```text
/// "AWS4-HMAC-SHA256-TRAILER\n" + amz_date + "\n" + scope + "\n"
///     + previous_signature + "\n" + hex(sha256(canonical_trailers))
/// ```
///
/// where the canonical trailers are the `name:value\n` lines and the
/// previous signature is the final (empty) chunk's.
pub fn trailer_signature(
    key: &[u8; 32],
    amz_date: &str,
    scope: &str,
    previous_signature: &str,
    canonical_trailers: &[u8],
) -> String {
    let hash_hex = sha256_hex(canonical_trailers);
    hex::encode(hmac(
        &[key],
        &[
            b"AWS4-HMAC-SHA256-TRAILER\n",
            amz_date.as_bytes(),
            b"\n",
            scope.as_bytes(),
            b"\n",
            previous_signature.as_bytes(),
            b"\n",
            &hash_hex,
        ],
    ))
}

/// Decodes a raw query string into name/value pairs exactly the way the
/// signature canonicalizes them: `%XX` decoded, `+` is a space, malformed
/// escapes kept literally, invalid UTF-8 replaced. Front doors should read
/// their parameters with this (or with the same rules, e.g.
/// `form_urlencoded::parse`) so that what they act on is what was signed.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> + '_ {
    raw_pairs(query).map(|(k, v)| {
        (
            bytes_to_text(decode_component(k)),
            bytes_to_text(decode_component(v)),
        )
    })
}

fn bytes_to_text(b: Cow<'_, [u8]>) -> Cow<'_, str> {
    match b {
        Cow::Borrowed(b) => String::from_utf8_lossy(b),
        Cow::Owned(b) => match String::from_utf8(b) {
            Ok(s) => Cow::Owned(s),
            Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
        },
    }
}

// ---------------------------------------------------------------------------
// Canonical request

/// Where canonical text goes: a hasher (verification) or a buffer (diagnostics).
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Sha256 {
    fn put(&mut self, bytes: &[u8]) {
        Digest::update(self, bytes);
    }
}

impl Sink for HmacSha256 {
    fn put(&mut self, bytes: &[u8]) {
        Mac::update(self, bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

fn write_canonical_request<S: Sink>(
    out: &mut S,
    req: &SignedRequest<'_>,
    auth: &SigV4Auth,
) -> Result<(), SigV4Error> {
    out.put(req.method.as_bytes());
    out.put(b"\n");

    if auth.credential.service == "s3" {
        out.put(if req.path.is_empty() {
            b"/"
        } else {
            req.path.as_bytes()
        });
    } else {
        write_normalized_path(out, req.path);
    }
    out.put(b"\n");

    let pairs = canonical_query_pairs(req.query, auth.presigned);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.put(b"&");
        }
        out.put(name.as_bytes());
        out.put(b"=");
        out.put(value.as_bytes());
    }
    out.put(b"\n");

    for name in &auth.signed_headers {
        let mut values = req.headers.get_all(name.as_str()).iter();
        let Some(first) = values.next() else {
            return Err(SigV4Error::SignedHeaderMissing(name.clone()));
        };
        out.put(name.as_bytes());
        out.put(b":");
        put_trimmed(out, first.as_bytes());
        for value in values {
            out.put(b",");
            put_trimmed(out, value.as_bytes());
        }
        out.put(b"\n");
    }
    out.put(b"\n");

    for (i, name) in auth.signed_headers.iter().enumerate() {
        if i > 0 {
            out.put(b";");
        }
        out.put(name.as_bytes());
    }
    out.put(b"\n");
    out.put(auth.payload_hash.as_bytes());
    Ok(())
}

fn write_string_to_sign<S: Sink>(out: &mut S, auth: &SigV4Auth, canonical_hash: &[u8; 32]) {
    let mut hash_hex = [0u8; 64];
    let _ = hex::encode_to_slice(canonical_hash, &mut hash_hex); // sizes match
    let c = &auth.credential;
    for part in [
        ALGORITHM.as_bytes(),
        b"\n",
        auth.amz_date.as_bytes(),
        b"\n",
        c.date.as_bytes(),
        b"/",
        c.region.as_bytes(),
        b"/",
        c.service.as_bytes(),
        b"/",
        TERMINATOR.as_bytes(),
        b"\n",
        &hash_hex,
    ] {
        out.put(part);
    }
}

/// Header value with leading/trailing whitespace removed and inner runs of
/// spaces/tabs collapsed to one space (`http` allows no other whitespace).
fn put_trimmed<S: Sink>(out: &mut S, value: &[u8]) {
    let mut first = true;
    for word in value
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|w| !w.is_empty())
    {
        if !first {
            out.put(b" ");
        }
        out.put(word);
        first = false;
    }
}

/// botocore's `normalize_url_path` (dot segments resolved, empty segments
/// dropped) followed by `quote(path, safe='/~')`.
fn write_normalized_path<S: Sink>(out: &mut S, path: &str) {
    if path.is_empty() {
        out.put(b"/");
        return;
    }
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    if path.starts_with('/') {
        out.put(b"/");
    }
    for (i, segment) in segments.iter().enumerate() {
        if i > 0 {
            out.put(b"/");
        }
        put_encoded(out, segment.as_bytes());
    }
    if path.ends_with('/') && !segments.is_empty() {
        out.put(b"/");
    }
}

/// AWS URI encoding: everything but `A-Z a-z 0-9 - _ . ~` as `%XX`.
fn put_encoded<S: Sink>(out: &mut S, bytes: &[u8]) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let run = rest.iter().take_while(|b| is_unreserved(**b)).count();
        let (plain, tail) = rest.split_at(run);
        if !plain.is_empty() {
            out.put(plain);
        }
        let Some((&b, tail)) = tail.split_first() else {
            break;
        };
        out.put(&[b'%', hex_upper(b >> 4), hex_upper(b & 0x0f)]);
        rest = tail;
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn hex_upper(nibble: u8) -> u8 {
    match nibble {
        0..=9 => b'0' + nibble,
        10..=15 => b'A' + (nibble - 10),
        _ => b'?',
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `name=value` pieces of a raw query, raw; empty pieces skipped, a piece
/// without `=` has an empty value.
fn raw_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// Percent-decodes one query component; `+` is a space; malformed escapes
/// are kept as they are.
fn decode_component(raw: &str) -> Cow<'_, [u8]> {
    let bytes = raw.as_bytes();
    if !bytes.iter().any(|b| *b == b'%' || *b == b'+') {
        return Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match rest {
            [] => break,
            [b'%', h, l, tail @ ..] => match (hex_value(*h), hex_value(*l)) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    rest = tail;
                }
                _ => {
                    out.push(b'%');
                    rest = rest.get(1..).unwrap_or_default();
                }
            },
            [b'+', tail @ ..] => {
                out.push(b' ');
                rest = tail;
            }
            [b, tail @ ..] => {
                out.push(*b);
                rest = tail;
            }
        }
    }
    Cow::Owned(out)
}

/// Whether a raw component is already in canonical form: only unreserved
/// characters and `%XX` escapes (uppercase hex) of reserved bytes.
fn is_canonical(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    loop {
        match rest {
            [] => return true,
            [b'%', h, l, tail @ ..] => {
                let upper = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
                if !upper(*h) || !upper(*l) {
                    return false;
                }
                match (hex_value(*h), hex_value(*l)) {
                    (Some(h), Some(l)) if !is_unreserved(h << 4 | l) => rest = tail,
                    _ => return false,
                }
            }
            [b, tail @ ..] => {
                if !is_unreserved(*b) {
                    return false;
                }
                rest = tail;
            }
        }
    }
}

/// Decode then AWS-encode one query component; borrows when it already is canonical.
fn canon_component(raw: &str) -> Cow<'_, str> {
    if is_canonical(raw.as_bytes()) {
        return Cow::Borrowed(raw);
    }
    let decoded = decode_component(raw);
    let mut out = Vec::with_capacity(decoded.len() + 8);
    put_encoded(&mut out, &decoded);
    // Only ASCII was written.
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn canonical_query_pairs(query: &str, presigned: bool) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    let mut pairs = Vec::new();
    for (name, value) in raw_pairs(query) {
        let name = canon_component(name);
        if presigned && name == "X-Amz-Signature" {
            continue;
        }
        pairs.push((name, canon_component(value)));
    }
    pairs.sort_unstable();
    pairs
}

// ---------------------------------------------------------------------------
// HMAC

/// An HMAC-SHA256 keyed with the concatenation of `key_parts`, without
/// allocating: HMAC zero-pads keys up to the 64-byte block and hashes longer
/// ones first, which is done here so the fixed-size (infallible) constructor
/// can be used.
fn mac_with_key(key_parts: &[&[u8]]) -> HmacSha256 {
    let total: usize = key_parts.iter().map(|p| p.len()).sum();
    let mut block = [0u8; 64];
    if total <= block.len() {
        let mut at = 0;
        for part in key_parts {
            if let Some(dst) = block.get_mut(at..at + part.len()) {
                dst.copy_from_slice(part);
            }
            at += part.len();
        }
    } else {
        let mut h = Sha256::new();
        for part in key_parts {
            h.update(part);
        }
        let digest: [u8; 32] = h.finalize().into();
        if let Some(dst) = block.get_mut(..digest.len()) {
            dst.copy_from_slice(&digest);
        }
    }
    <HmacSha256 as KeyInit>::new(&block.into())
}

fn hmac(key_parts: &[&[u8]], message_parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = mac_with_key(key_parts);
    for part in message_parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderName, HeaderValue};

    const IAM_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const S3_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn at(s: &str) -> DateTime<Utc> {
        parse_amz_date(s).unwrap()
    }

    fn sha256_hex(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn req<'a>(
        method: &'a str,
        path: &'a str,
        query: &'a str,
        headers: &'a HeaderMap,
        body_sha256: Option<&'a str>,
    ) -> SignedRequest<'a> {
        SignedRequest {
            method,
            path,
            query,
            headers,
            body_sha256,
        }
    }

    fn parse_ok(r: &SignedRequest<'_>) -> SigV4Auth {
        parse(r).unwrap().unwrap()
    }

    // --- AWS documentation vectors -------------------------------------------------

    /// "Create a canonical request for Signature Version 4": IAM ListUsers.
    fn iam_headers(signature: &str) -> HeaderMap {
        headers(&[
            (
                "authorization",
                &format!(
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                     SignedHeaders=content-type;host;x-amz-date, Signature={signature}"
                ),
            ),
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            ),
            ("host", "iam.amazonaws.com"),
            ("x-amz-date", "20150830T123600Z"),
        ])
    }
    const IAM_SIGNATURE: &str = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";

    #[test]
    fn sigv4_aws_doc_iam_list_users() {
        let h = iam_headers(IAM_SIGNATURE);
        let r = req(
            "GET",
            "/",
            "Action=ListUsers&Version=2010-05-08",
            &h,
            Some(EMPTY_SHA256),
        );
        let auth = parse_ok(&r);
        assert_eq!(auth.credential.access_key_id, "AKIDEXAMPLE");
        assert_eq!(auth.scope(), "20150830/us-east-1/iam/aws4_request");
        assert_eq!(
            canonical_request(&r, &auth).unwrap(),
            "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
             content-type:application/x-www-form-urlencoded; charset=utf-8\n\
             host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
             content-type;host;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            string_to_sign(&r, &auth).unwrap(),
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n\
             f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        verify(&r, &auth, IAM_SECRET, at("20150830T123600Z")).unwrap();
        auth.check_scope("us-east-1", "iam").unwrap();
        assert_eq!(
            auth.check_scope("eu-west-1", "iam").unwrap_err().aws_code(),
            "AuthorizationHeaderMalformed"
        );
    }

    #[test]
    fn sigv4_aws_doc_signing_keys() {
        assert_eq!(
            hex::encode(signing_key(IAM_SECRET, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
        assert_eq!(
            hex::encode(signing_key(IAM_SECRET, "20120215", "us-east-1", "iam")),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
        // A secret longer than the HMAC block is hashed first, like every HMAC does.
        let long = "x".repeat(200);
        let mut reference =
            <HmacSha256 as Mac>::new_from_slice(format!("AWS4{long}").as_bytes()).unwrap();
        reference.update(b"20150830");
        let k_date: [u8; 32] = reference.finalize().into_bytes().into();
        assert_eq!(hmac(&[b"AWS4", long.as_bytes()], &[b"20150830"]), k_date);
    }

    fn s3_doc(
        method: &'static str,
        path: &'static str,
        query: &'static str,
        extra: &[(&str, &str)],
        signed: &str,
        signature: &str,
        payload: &str,
    ) -> (HeaderMap, &'static str, &'static str, &'static str) {
        let mut pairs = vec![
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", payload),
        ];
        pairs.extend_from_slice(extra);
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders={signed},Signature={signature}"
        );
        pairs.push(("authorization", &authorization));
        (headers(&pairs), method, path, query)
    }

    /// "Signature Calculations for the Authorization Header: Transferring
    /// Payload in a Single Chunk": the four examples.
    #[test]
    fn sigv4_aws_doc_s3_single_chunk_examples() {
        let welcome = sha256_hex(b"Welcome to Amazon S3.");
        assert_eq!(
            welcome,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let cases = [
            s3_doc(
                "GET",
                "/test.txt",
                "",
                &[("range", "bytes=0-9")],
                "host;range;x-amz-content-sha256;x-amz-date",
                "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
                EMPTY_SHA256,
            ),
            s3_doc(
                "PUT",
                "/test%24file.text",
                "",
                &[
                    ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ],
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
                &welcome,
            ),
            s3_doc(
                "GET",
                "/",
                "lifecycle",
                &[],
                "host;x-amz-content-sha256;x-amz-date",
                "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
                EMPTY_SHA256,
            ),
            s3_doc(
                "GET",
                "/",
                "max-keys=2&prefix=J",
                &[],
                "host;x-amz-content-sha256;x-amz-date",
                "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
                EMPTY_SHA256,
            ),
        ];
        let now = at("20130524T000500Z");
        for (h, method, path, query) in &cases {
            let r = req(method, path, query, h, None);
            let auth = parse_ok(&r);
            assert!(!auth.presigned);
            verify(&r, &auth, S3_SECRET, now)
                .unwrap_or_else(|e| panic!("{method} {path}?{query}: {e}"));
            assert_eq!(
                verify(&r, &auth, IAM_SECRET, now),
                Err(SigV4Error::SignatureDoesNotMatch)
            );
        }
        // The PUT also works with the body hash given by the front door...
        let (h, method, path, query) = &cases[1];
        let r = req(method, path, query, h, Some(&welcome));
        verify(&r, &parse_ok(&r), S3_SECRET, now).unwrap();
        // ...and a body that is not the declared one is caught.
        let r = req(method, path, query, h, Some(EMPTY_SHA256));
        assert_eq!(parse(&r), Err(SigV4Error::ContentSha256Mismatch));
    }

    const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256\
        &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
        &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
        &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    /// "Authenticating Requests: Using Query Parameters": the presigned GET.
    #[test]
    fn sigv4_aws_doc_s3_presigned_get() {
        let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let r = req("GET", "/test.txt", PRESIGNED_QUERY, &h, None);
        let auth = parse_ok(&r);
        assert!(auth.presigned);
        assert_eq!(auth.expires_secs, Some(86400));
        assert_eq!(auth.payload_hash, UNSIGNED_PAYLOAD);
        assert_eq!(auth.payload(), Payload::Unsigned);
        assert_eq!(auth.credential.access_key_id, "AKIAIOSFODNN7EXAMPLE");
        assert!(canonical_request(&r, &auth)
            .unwrap()
            .starts_with("GET\n/test.txt\nX-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="));
        assert!(!canonical_request(&r, &auth)
            .unwrap()
            .contains("X-Amz-Signature"));
        verify(&r, &auth, S3_SECRET, at("20130524T000000Z")).unwrap();
        verify(&r, &auth, S3_SECRET, at("20130524T235959Z")).unwrap();
        verify(&r, &auth, S3_SECRET, at("20130525T000000Z")).unwrap();
        // Expired one second after X-Amz-Date + X-Amz-Expires.
        let err = verify(&r, &auth, S3_SECRET, at("20130525T000001Z")).unwrap_err();
        assert_eq!(err, SigV4Error::Expired);
        assert_eq!((err.aws_code(), err.http_status()), ("AccessDenied", 403));
        // Not valid yet (more than the allowed skew before X-Amz-Date).
        assert_eq!(
            verify(&r, &auth, S3_SECRET, at("20130523T234459Z")),
            Err(SigV4Error::NotYetValid)
        );
        verify(&r, &auth, S3_SECRET, at("20130523T234500Z")).unwrap();
    }

    /// "Signature Calculations for the Authorization Header: Transferring
    /// Payload in Multiple Chunks": seed request and the three chunk signatures.
    #[test]
    fn sigv4_aws_doc_s3_chunked_upload() {
        let h = headers(&[
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
                 SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
                 x-amz-decoded-content-length;x-amz-storage-class,\
                 Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            ),
            ("x-amz-content-sha256", STREAMING_PAYLOAD),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("content-length", "66824"),
        ]);
        let r = req("PUT", "/examplebucket/chunkObject.txt", "", &h, None);
        let auth = parse_ok(&r);
        assert_eq!(auth.payload(), Payload::StreamingSigned);
        verify(&r, &auth, S3_SECRET, at("20130524T000000Z")).unwrap();

        let key = signing_key(S3_SECRET, "20130524", "us-east-1", "s3");
        let scope = auth.scope();
        let first = chunk_signature(
            &key,
            &auth.amz_date,
            &scope,
            &auth.signature,
            &[b'a'; 65536],
        );
        assert_eq!(
            first,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
        let second = chunk_signature(&key, &auth.amz_date, &scope, &first, &[b'a'; 1024]);
        assert_eq!(
            second,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
        );
        let last = chunk_signature(&key, &auth.amz_date, &scope, &second, &[]);
        assert_eq!(
            last,
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
        );
        // verify_with_key gives the same answer with the caller's key.
        verify_with_key(&r, &auth, &key, at("20130524T000000Z")).unwrap();
    }

    // --- canonicalization details ----------------------------------------------------

    #[test]
    fn sigv4_canonical_query_rules() {
        let q = |raw: &str| {
            canonical_query_pairs(raw, false)
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert_eq!(q(""), "");
        assert_eq!(q("b=2&a=1"), "a=1&b=2");
        assert_eq!(q("a=2&a=1&a="), "a=&a=1&a=2");
        assert_eq!(q("flag&x="), "flag=&x=");
        assert_eq!(q("&&a=1&"), "a=1");
        // '+' is a space; a literal plus arrives as %2B.
        assert_eq!(q("q=a+b%2Bc"), "q=a%20b%2Bc");
        assert_eq!(q("k=%7e%41%2f"), "k=~A%2F");
        assert_eq!(q("k=~!*'()"), "k=~%21%2A%27%28%29");
        assert_eq!(q("k=a=b"), "k=a%3Db");
        assert_eq!(q("k=%zz%"), "k=%25zz%25");
        assert_eq!(q("k=%e2%82%ac"), "k=%E2%82%AC");
        assert_eq!(q("%C3%A9=1&z=2"), "%C3%A9=1&z=2");
        // Sorted on the encoded names.
        assert_eq!(q("a~=1&a%21=2"), "a%21=2&a~=1");
        // Presigned: X-Amz-Signature is left out.
        let p = canonical_query_pairs("X-Amz-Signature=abc&a=1", true);
        assert_eq!(p.len(), 1);
        // Borrowed when already canonical.
        assert!(matches!(canon_component("abc%2F"), Cow::Borrowed(_)));
        assert!(matches!(canon_component("abc%2f"), Cow::Owned(_)));

        let pairs: Vec<_> = query_pairs("a=b+c%2B&flag&x=%FF").collect();
        assert_eq!(pairs[0], ("a".into(), "b c+".into()));
        assert_eq!(pairs[1], ("flag".into(), "".into()));
        assert_eq!(pairs[2].1, "\u{fffd}");
    }

    #[test]
    fn sigv4_canonical_paths() {
        let path = |service: &str, p: &str| {
            let mut out = Vec::new();
            if service == "s3" {
                out.extend_from_slice(if p.is_empty() { b"/" } else { p.as_bytes() });
            } else {
                write_normalized_path(&mut out, p);
            }
            String::from_utf8(out).unwrap()
        };
        assert_eq!(path("iam", ""), "/");
        assert_eq!(path("iam", "/"), "/");
        assert_eq!(path("iam", "/a%20b/c d"), "/a%2520b/c%20d");
        assert_eq!(path("iam", "/a/./b/../c//d/"), "/a/c/d/");
        assert_eq!(path("iam", "/a/b/.."), "/a");
        assert_eq!(path("iam", "/.."), "/");
        assert_eq!(path("iam", "/~user/ü"), "/~user/%C3%BC");
        assert_eq!(path("s3", ""), "/");
        assert_eq!(path("s3", "/b/a%20b/./..//x"), "/b/a%20b/./..//x");
    }

    #[test]
    fn sigv4_header_values_are_trimmed_and_joined() {
        let h = headers(&[
            ("host", "example.test"),
            ("x-amz-date", "20150830T123600Z"),
            ("x-multi", "  a   b\t\tc  "),
            ("x-multi", "second"),
            ("x-empty", ""),
        ]);
        let auth = SigV4Auth {
            credential: Credential {
                access_key_id: "AK".into(),
                date: "20150830".into(),
                region: "r".into(),
                service: "svc".into(),
            },
            signed_headers: vec!["host".into(), "x-empty".into(), "x-multi".into()],
            signature: "0".repeat(64),
            amz_date: "20150830T123600Z".into(),
            presigned: false,
            expires_secs: None,
            payload_hash: EMPTY_SHA256.into(),
            security_token: None,
        };
        let r = req("GET", "/", "", &h, None);
        let c = canonical_request(&r, &auth).unwrap();
        assert!(c.contains(
            "\nhost:example.test\nx-empty:\nx-multi:a b c,second\n\nhost;x-empty;x-multi\n"
        ));
    }

    #[test]
    fn sigv4_date_header_instead_of_x_amz_date() {
        // Sign a request dated with the Date header, then verify it.
        let date = "Sun, 30 Aug 2015 12:36:00 GMT";
        let mut h = headers(&[("host", "iam.amazonaws.com"), ("date", date)]);
        let mut auth = SigV4Auth {
            credential: Credential {
                access_key_id: "AKIDEXAMPLE".into(),
                date: "20150830".into(),
                region: "us-east-1".into(),
                service: "iam".into(),
            },
            signed_headers: vec!["date".into(), "host".into()],
            signature: String::new(),
            amz_date: "20150830T123600Z".into(),
            presigned: false,
            expires_secs: None,
            payload_hash: EMPTY_SHA256.into(),
            security_token: None,
        };
        let r = req("GET", "/", "Action=ListUsers", &h, Some(EMPTY_SHA256));
        auth.signature = sign_for_tests(&r, &auth, IAM_SECRET);
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request,SignedHeaders=date;host,Signature={}",
                auth.signature
            ))
            .unwrap(),
        );
        let r = req("GET", "/", "Action=ListUsers", &h, Some(EMPTY_SHA256));
        let parsed = parse_ok(&r);
        assert_eq!(parsed, auth);
        verify(&r, &parsed, IAM_SECRET, at("20150830T124000Z")).unwrap();
        // botocore writes the Date header with "-0000".
        h.insert(
            "date",
            HeaderValue::from_static("Sun, 30 Aug 2015 12:36:00 -0000"),
        );
        let r = req("GET", "/", "Action=ListUsers", &h, Some(EMPTY_SHA256));
        assert_eq!(parse_ok(&r).amz_date, "20150830T123600Z");
    }

    fn sign_for_tests(r: &SignedRequest<'_>, auth: &SigV4Auth, secret: &str) -> String {
        let c = &auth.credential;
        let key = signing_key(secret, &c.date, &c.region, &c.service);
        compute_signature(r, auth, &key).unwrap()
    }

    // --- negative cases --------------------------------------------------------------

    #[test]
    fn sigv4_rejects_tampered_signature_and_headers() {
        let now = at("20150830T123600Z");
        // Every single-digit change of the signature.
        for i in 0..64 {
            let mut sig: Vec<u8> = IAM_SIGNATURE.bytes().collect();
            sig[i] = if sig[i] == b'0' { b'1' } else { b'0' };
            let h = iam_headers(std::str::from_utf8(&sig).unwrap());
            let r = req(
                "GET",
                "/",
                "Action=ListUsers&Version=2010-05-08",
                &h,
                Some(EMPTY_SHA256),
            );
            let auth = parse_ok(&r);
            let err = verify(&r, &auth, IAM_SECRET, now).unwrap_err();
            assert_eq!(err, SigV4Error::SignatureDoesNotMatch);
            assert_eq!(
                (err.aws_code(), err.kind()),
                ("SignatureDoesNotMatch", ErrorKind::Forbidden)
            );
        }
        // A signed header changed, the query changed, the path changed, the body changed.
        let mut h = iam_headers(IAM_SIGNATURE);
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-9"),
        );
        let r = req(
            "GET",
            "/",
            "Action=ListUsers&Version=2010-05-08",
            &h,
            Some(EMPTY_SHA256),
        );
        assert_eq!(
            verify(&r, &parse_ok(&r), IAM_SECRET, now),
            Err(SigV4Error::SignatureDoesNotMatch)
        );
        let h = iam_headers(IAM_SIGNATURE);
        for (path, query, body) in [
            ("/", "Action=ListUsers&Version=2010-05-09", EMPTY_SHA256),
            ("/", "Action=ListUsers&Version=2010-05-08&x=", EMPTY_SHA256),
            ("/x", "Action=ListUsers&Version=2010-05-08", EMPTY_SHA256),
            (
                "/",
                "Action=ListUsers&Version=2010-05-08",
                &sha256_hex(b"x"),
            ),
        ] {
            let r = req("GET", path, query, &h, Some(body));
            assert_eq!(
                verify(&r, &parse_ok(&r), IAM_SECRET, now),
                Err(SigV4Error::SignatureDoesNotMatch)
            );
        }
        // An unsigned header may change freely.
        let mut h = iam_headers(IAM_SIGNATURE);
        h.insert("user-agent", HeaderValue::from_static("whatever"));
        let r = req(
            "GET",
            "/",
            "Action=ListUsers&Version=2010-05-08",
            &h,
            Some(EMPTY_SHA256),
        );
        verify(&r, &parse_ok(&r), IAM_SECRET, now).unwrap();
        // A signed header removed from the request.
        let mut h = iam_headers(IAM_SIGNATURE);
        h.remove("content-type");
        let r = req(
            "GET",
            "/",
            "Action=ListUsers&Version=2010-05-08",
            &h,
            Some(EMPTY_SHA256),
        );
        let err = verify(&r, &parse_ok(&r), IAM_SECRET, now).unwrap_err();
        assert_eq!(err, SigV4Error::SignedHeaderMissing("content-type".into()));
        assert_eq!(err.aws_code(), "SignatureDoesNotMatch");
    }

    #[test]
    fn sigv4_rejects_clock_skew() {
        let h = iam_headers(IAM_SIGNATURE);
        let r = req(
            "GET",
            "/",
            "Action=ListUsers&Version=2010-05-08",
            &h,
            Some(EMPTY_SHA256),
        );
        let auth = parse_ok(&r);
        verify(&r, &auth, IAM_SECRET, at("20150830T125100Z")).unwrap();
        verify(&r, &auth, IAM_SECRET, at("20150830T122100Z")).unwrap();
        for now in ["20150830T125101Z", "20150830T122059Z", "20250101T000000Z"] {
            let err = verify(&r, &auth, IAM_SECRET, at(now)).unwrap_err();
            assert_eq!(err, SigV4Error::RequestTimeTooSkewed);
            assert_eq!(
                (err.aws_code(), err.http_status()),
                ("RequestTimeTooSkewed", 403)
            );
        }
    }

    #[test]
    fn sigv4_rejects_bad_presigned_expiry_and_scope() {
        let h = headers(&[("host", "examplebucket.s3.amazonaws.com")]);
        let now = at("20130524T000000Z");
        for expires in ["604801", "0", "-1", "1e3", "", "99999999999999999999", "+5"] {
            let query =
                PRESIGNED_QUERY.replace("X-Amz-Expires=86400", &format!("X-Amz-Expires={expires}"));
            let r = req("GET", "/test.txt", &query, &h, None);
            let err = parse(&r).unwrap_err();
            assert_eq!(
                err.aws_code(),
                "AuthorizationQueryParametersError",
                "{expires}"
            );
            assert_eq!(err.kind(), ErrorKind::Invalid);
        }
        // 604800 is allowed (the signature then no longer matches, which is fine here).
        let query = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=604800");
        let r = req("GET", "/test.txt", &query, &h, None);
        assert_eq!(
            verify(&r, &parse_ok(&r), S3_SECRET, now),
            Err(SigV4Error::SignatureDoesNotMatch)
        );
        // A hand-made auth with a too long expiry is refused by verify too.
        let r = req("GET", "/test.txt", PRESIGNED_QUERY, &h, None);
        let mut auth = parse_ok(&r);
        auth.expires_secs = Some(MAX_PRESIGNED_EXPIRES_SECS + 1);
        assert!(matches!(
            verify(&r, &auth, S3_SECRET, now),
            Err(SigV4Error::MalformedQuery(_))
        ));
        // Wrong scope date.
        let query = PRESIGNED_QUERY.replace("%2F20130524%2F", "%2F20130523%2F");
        let r = req("GET", "/test.txt", &query, &h, None);
        assert!(matches!(parse(&r), Err(SigV4Error::MalformedQuery(_))));
        // Missing parameters.
        for drop in [
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
            "X-Amz-Algorithm",
        ] {
            let query: Vec<&str> = PRESIGNED_QUERY
                .split('&')
                .filter(|p| !p.starts_with(drop))
                .collect();
            let query = query.join("&");
            let r = req("GET", "/test.txt", &query, &h, None);
            assert!(
                matches!(parse(&r), Err(SigV4Error::MalformedQuery(_))),
                "{drop}"
            );
        }
        // Duplicated parameter.
        let query = format!("{PRESIGNED_QUERY}&X-Amz-Date=20130524T000000Z");
        let r = req("GET", "/test.txt", &query, &h, None);
        assert!(matches!(parse(&r), Err(SigV4Error::MalformedQuery(_))));
        // Header and query auth together.
        let h2 = iam_headers(IAM_SIGNATURE);
        let r = req("GET", "/test.txt", PRESIGNED_QUERY, &h2, None);
        assert_eq!(parse(&r), Err(SigV4Error::ConflictingAuth));
        // host not signed.
        let query =
            PRESIGNED_QUERY.replace("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range");
        let r = req("GET", "/test.txt", &query, &h, None);
        assert!(matches!(parse(&r), Err(SigV4Error::MalformedQuery(_))));
        // Signature version 2 presigned URL.
        let r = req(
            "GET",
            "/test.txt",
            "AWSAccessKeyId=AK&Expires=1&Signature=x",
            &h,
            None,
        );
        assert!(matches!(
            parse(&r),
            Err(SigV4Error::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn sigv4_rejects_malformed_authorization_headers() {
        let good_cred = "Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request";
        let good_sh = "SignedHeaders=content-type;host;x-amz-date";
        let good_sig = format!("Signature={IAM_SIGNATURE}");
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "AuthorizationHeaderMalformed"),
            ("AWS4-HMAC-SHA256".into(), "IncompleteSignature"),
            ("AWS4-HMAC-SHA256 ".into(), "IncompleteSignature"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, {good_sh}"), "IncompleteSignature"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, {good_sig}"), "IncompleteSignature"),
            (format!("AWS4-HMAC-SHA256 {good_sh}, {good_sig}"), "IncompleteSignature"),
            ("AWS AKIDEXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=".into(), "InvalidRequest"),
            (format!("AWS4-HMAC-SHA1 {good_cred}, {good_sh}, {good_sig}"), "InvalidRequest"),
            (format!("AWS4-ECDSA-P256-SHA256 {good_cred}, {good_sh}, {good_sig}"), "InvalidRequest"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, {good_sh}, {good_sig}, Extra=1"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, {good_cred}, {good_sh}, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, {good_sh}, Signature"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam, {good_sh}, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request/x, {good_sh}, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws5_request, {good_sh}, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 Credential=/20150830/us-east-1/iam/aws4_request, {good_sh}, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/2015083/us-east-1/iam/aws4_request, {good_sh}, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150831/us-east-1/iam/aws4_request, {good_sh}, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE//us-east-1/iam/aws4_request, {good_sh}, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=content-type;x-amz-date, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=Host;x-amz-date, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host;;x-amz-date, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=host;host, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, SignedHeaders=, {good_sig}"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, {good_sh}, Signature=abc"), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, {good_sh}, Signature={}", "g".repeat(64)), "AuthorizationHeaderMalformed"),
            (format!("AWS4-HMAC-SHA256 {good_cred}, {good_sh}, Signature={}0", IAM_SIGNATURE), "AuthorizationHeaderMalformed"),
        ];
        for (value, code) in &cases {
            let mut h = iam_headers(IAM_SIGNATURE);
            h.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(value).unwrap(),
            );
            let r = req(
                "GET",
                "/",
                "Action=ListUsers&Version=2010-05-08",
                &h,
                Some(EMPTY_SHA256),
            );
            let err = parse(&r).expect_err(value);
            assert_eq!(err.aws_code(), *code, "{value:?}: {err}");
            assert_eq!(err.kind(), ErrorKind::Invalid, "{value:?}");
        }
        // Lenient spacing is fine: none, several, tabs.
        for value in [
            format!("AWS4-HMAC-SHA256 {good_cred},{good_sh},{good_sig}"),
            format!("AWS4-HMAC-SHA256   {good_cred} ,  {good_sh} ,\t{good_sig}  "),
            format!("AWS4-HMAC-SHA256\t{good_sig}, {good_sh}, {good_cred}"),
        ] {
            let mut h = iam_headers(IAM_SIGNATURE);
            h.insert(
                http::header::AUTHORIZATION,
                HeaderValue::from_str(&value).unwrap(),
            );
            let r = req(
                "GET",
                "/",
                "Action=ListUsers&Version=2010-05-08",
                &h,
                Some(EMPTY_SHA256),
            );
            verify(&r, &parse_ok(&r), IAM_SECRET, at("20150830T123600Z")).unwrap();
        }
        // Non-ASCII header value, two Authorization headers, bad dates, no date.
        let mut h = iam_headers(IAM_SIGNATURE);
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_bytes(b"AWS4-HMAC-SHA256 \xff").unwrap(),
        );
        let r = req("GET", "/", "", &h, Some(EMPTY_SHA256));
        assert!(matches!(parse(&r), Err(SigV4Error::MalformedHeader(_))));
        let mut h = iam_headers(IAM_SIGNATURE);
        h.append(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("AWS4-HMAC-SHA256"),
        );
        let r = req("GET", "/", "", &h, Some(EMPTY_SHA256));
        assert!(matches!(parse(&r), Err(SigV4Error::MalformedHeader(_))));
        for date in [
            "20150830T123600",
            "2015-08-30T12:36:00Z",
            "20150830T246000Z",
            "20151330T123600Z",
            "yesterday",
        ] {
            let mut h = iam_headers(IAM_SIGNATURE);
            h.insert("x-amz-date", HeaderValue::from_str(date).unwrap());
            let r = req("GET", "/", "", &h, Some(EMPTY_SHA256));
            let err = parse(&r).unwrap_err();
            assert_eq!(
                (err.clone(), err.aws_code(), err.http_status()),
                (SigV4Error::InvalidDate, "AccessDenied", 403)
            );
        }
        let mut h = iam_headers(IAM_SIGNATURE);
        h.remove("x-amz-date");
        let r = req("GET", "/", "", &h, Some(EMPTY_SHA256));
        assert_eq!(parse(&r), Err(SigV4Error::InvalidDate));
        // No body hash and no x-amz-content-sha256.
        let h = iam_headers(IAM_SIGNATURE);
        let r = req("GET", "/", "", &h, None);
        assert_eq!(parse(&r), Err(SigV4Error::MissingContentSha256));
        // Bad x-amz-content-sha256.
        let mut h = iam_headers(IAM_SIGNATURE);
        h.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"),
        );
        let r = req("GET", "/", "", &h, None);
        assert!(matches!(
            parse(&r),
            Err(SigV4Error::InvalidContentSha256(_))
        ));
        // Anonymous.
        let h = headers(&[("host", "x")]);
        let r = req("GET", "/", "a=b&X-Amz-Date=20150830T123600Z", &h, None);
        assert_eq!(parse(&r), Ok(None));
    }

    #[test]
    fn sigv4_error_kinds() {
        assert_eq!(
            SigV4Error::UnknownAccessKey.aws_code(),
            "InvalidAccessKeyId"
        );
        assert_eq!(SigV4Error::UnknownAccessKey.http_status(), 403);
        assert_eq!(
            SigV4Error::IncompleteSignature(String::new()).http_status(),
            400
        );
        assert_eq!(
            SigV4Error::MalformedHeader(String::new()).kind(),
            ErrorKind::Invalid
        );
        assert_eq!(
            SigV4Error::RequestTimeTooSkewed.kind(),
            ErrorKind::Forbidden
        );
        assert_eq!(SigV4Error::Expired.kind(), ErrorKind::Forbidden);
    }

    /// A cheap stand-in for the fuzz target that runs with every `cargo test`:
    /// random byte mutations of valid requests must never panic.
    #[test]
    fn sigv4_mutations_never_panic() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let iam_auth = iam_headers(IAM_SIGNATURE)
            .get("authorization")
            .unwrap()
            .as_bytes()
            .to_vec();
        let bases: [(&[u8], &[u8], &[u8]); 2] = [
            (&iam_auth, b"/", b"Action=ListUsers&Version=2010-05-08"),
            (b"", b"/test.txt", PRESIGNED_QUERY.as_bytes()),
        ];
        let alphabet = b"%+=&/;, \t.~-_aZ09\xc3\xa9\x00\x7fAWS4-HMAC-SHA256";
        let now = at("20130524T000000Z");
        for round in 0..20_000u32 {
            let (auth, path, query) = bases[(round % 2) as usize];
            let mut parts = [auth.to_vec(), path.to_vec(), query.to_vec()];
            for _ in 0..(next() % 6 + 1) {
                let part = &mut parts[(next() % 3) as usize];
                let pos = if part.is_empty() {
                    0
                } else {
                    (next() as usize) % part.len()
                };
                match next() % 4 {
                    0 if !part.is_empty() => {
                        part.remove(pos);
                    }
                    1 => part.insert(pos, alphabet[(next() as usize) % alphabet.len()]),
                    2 if !part.is_empty() => {
                        part[pos] = alphabet[(next() as usize) % alphabet.len()]
                    }
                    _ => part.truncate(pos),
                }
            }
            let mut h = headers(&[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-date", "20130524T000000Z"),
                ("content-type", "a   b"),
            ]);
            if let Ok(v) = HeaderValue::from_bytes(&parts[0]) {
                if !parts[0].is_empty() {
                    h.insert(http::header::AUTHORIZATION, v);
                }
            }
            let path = String::from_utf8_lossy(&parts[1]);
            let query = String::from_utf8_lossy(&parts[2]);
            let r = req("GET", &path, &query, &h, Some(EMPTY_SHA256));
            if let Ok(Some(auth)) = parse(&r) {
                let _ = verify(&r, &auth, S3_SECRET, now);
                let _ = canonical_request(&r, &auth);
            }
        }
    }
}
