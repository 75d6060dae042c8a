//! S3 error answers, and the one place where the object engine's typed
//! errors become S3 codes and statuses (habit 15: the engine knows no
//! dialect; Swift and the native API map the same variants their way).

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use nuage_model::{ErrorKind, HasKind};
use nuage_object::ObjectError;

use super::{chunked, router::Operation, xml};
use crate::context;

/// An S3 error answer.
#[derive(Debug)]
pub(crate) struct S3Error {
    status: StatusCode,
    code: &'static str,
    message: String,
    extra: Vec<(&'static str, String)>,
}

impl S3Error {
    pub(crate) fn new(status: u16, code: &'static str, message: impl Into<String>) -> S3Error {
        S3Error {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    /// The HTTP status and the S3 error code (for the fuzz targets).
    pub(crate) fn status_and_code(&self) -> (u16, &'static str) {
        (self.status.as_u16(), self.code)
    }

    /// Adds an element to the error document (`<BucketName>`, ...).
    pub(crate) fn with(mut self, element: &'static str, value: impl Into<String>) -> S3Error {
        self.extra.push((element, value.into()));
        self
    }

    pub(crate) fn invalid(message: impl Into<String>) -> S3Error {
        S3Error::new(400, "InvalidArgument", message)
    }

    pub(crate) fn denied(message: impl Into<String>) -> S3Error {
        S3Error::new(403, "AccessDenied", message)
    }

    pub(crate) fn not_implemented(message: impl Into<String>) -> S3Error {
        S3Error::new(501, "NotImplemented", message)
    }

    /// The answer to an S3 operation nuage does not serve: it names the
    /// operation, so a client (or its user) knows what was refused.
    pub(crate) fn unimplemented(op: Operation) -> S3Error {
        S3Error::not_implemented(format!(
            "nuage does not implement the S3 operation {}; nothing was changed",
            op.name()
        ))
    }

    #[cfg(test)]
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }

    pub(crate) fn render(self, resource: &str, head: bool) -> Response {
        let mut e = xml::ErrorResponse::new(self.code, &self.message, context::request_id())
            .resource(resource);
        for (k, v) in self.extra {
            e = e.with(k, v);
        }
        let body = if head { String::new() } else { e.to_xml() };
        let mut r = (self.status, body).into_response();
        if !head {
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml"),
            );
        }
        r
    }
}

/// S3's code for an engine error (a multi-delete's per-key `<Code>`).
pub(crate) fn code(e: &ObjectError) -> &'static str {
    code_and_status(e).0
}

/// S3's code and status for an engine error.
fn code_and_status(e: &ObjectError) -> (&'static str, u16) {
    match e {
        ObjectError::NoSuchBucket(_) => ("NoSuchBucket", 404),
        ObjectError::NoSuchKey(_) => ("NoSuchKey", 404),
        ObjectError::NoSuchUpload(_) => ("NoSuchUpload", 404),
        ObjectError::BucketNotEmpty(_) => ("BucketNotEmpty", 409),
        ObjectError::BucketAlreadyExists(_) => ("BucketAlreadyExists", 409),
        ObjectError::BucketAlreadyOwnedByYou(_) => ("BucketAlreadyOwnedByYou", 409),
        ObjectError::InvalidBucketName(_) => ("InvalidBucketName", 400),
        ObjectError::KeyTooLong(_) => ("KeyTooLongError", 400),
        ObjectError::InvalidDigest => ("InvalidDigest", 400),
        ObjectError::BadDigest | ObjectError::ChecksumMismatch(_) => ("BadDigest", 400),
        ObjectError::ContentSha256Mismatch => ("XAmzContentSHA256Mismatch", 400),
        ObjectError::IncompleteBody { .. } | ObjectError::Body(_) => ("IncompleteBody", 400),
        ObjectError::BodyTooLong(_) => ("InvalidRequest", 400),
        ObjectError::EntityTooLarge(_) => ("EntityTooLarge", 400),
        ObjectError::EntityTooSmall(_) => ("EntityTooSmall", 400),
        ObjectError::InvalidPart(_) => ("InvalidPart", 400),
        ObjectError::InvalidPartOrder => ("InvalidPartOrder", 400),
        ObjectError::InvalidRange(_) => ("InvalidRange", 416),
        ObjectError::InvalidArgument(_) => ("InvalidArgument", 400),
        ObjectError::QuotaExceeded(_) => ("QuotaExceeded", 403),
        ObjectError::PreconditionFailed(_) | ObjectError::ConditionFailed(_) => {
            ("PreconditionFailed", 412)
        }
        ObjectError::AccessDenied(_) => ("AccessDenied", 403),
        ObjectError::Corrupt(_) | ObjectError::Internal(_) => ("InternalError", 500),
        ObjectError::Rejected { status, code, .. } => (code, *status),
        ObjectError::Identity(e) => match e.kind() {
            ErrorKind::Forbidden | ErrorKind::Unauthenticated => ("AccessDenied", 403),
            ErrorKind::NotFound => ("NoSuchBucket", 404),
            _ => ("InternalError", 500),
        },
    }
}

impl From<ObjectError> for S3Error {
    fn from(e: ObjectError) -> Self {
        let (code, status) = code_and_status(&e);
        let extra = match &e {
            ObjectError::NoSuchBucket(b) => vec![("BucketName", b.clone())],
            ObjectError::NoSuchKey(k) => vec![("Key", k.clone())],
            ObjectError::NoSuchUpload(u) => vec![("UploadId", u.clone())],
            ObjectError::ConditionFailed(c) => vec![("Condition", c.header_name().to_string())],
            _ => Vec::new(),
        };
        let (_, message) = context::public_error(&e);
        S3Error {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message,
            extra,
        }
    }
}

impl From<xml::XmlError> for S3Error {
    fn from(e: xml::XmlError) -> Self {
        S3Error::new(e.http_status(), e.s3_code(), e.to_string())
    }
}

impl From<chunked::ChunkedError> for S3Error {
    fn from(e: chunked::ChunkedError) -> Self {
        S3Error::new(e.http_status(), e.s3_code(), e.to_string())
    }
}
