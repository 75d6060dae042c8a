//! Errors of the object engine, typed so that each dialect maps them onto
//! its own codes in one place (S3: `nuage_api`'s `s3/error.rs`; Swift and
//! the native API: their status, or the [`ErrorKind`]). No dialect's code
//! is made here, except the one a dialect's own decoder put in
//! [`ObjectError::Rejected`] to travel through the engine.

use nuage_identity::IdentityError;
use nuage_model::{ErrorKind, HasKind};

pub type ObjectResult<T> = Result<T, ObjectError>;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("the bucket {0} does not exist")]
    NoSuchBucket(String),
    #[error("the key {0} does not exist")]
    NoSuchKey(String),
    #[error("the upload {0} does not exist, or was completed or aborted")]
    NoSuchUpload(String),
    #[error("the bucket {0} is not empty")]
    BucketNotEmpty(String),
    /// The name is taken by another project (names are global, as S3's).
    #[error("the bucket name {0} is already taken; bucket names are shared by every project")]
    BucketAlreadyExists(String),
    /// The caller's own project has it already.
    #[error("you already own the bucket {0}")]
    BucketAlreadyOwnedByYou(String),
    #[error("{0}")]
    InvalidBucketName(String),
    #[error("the key is {0} bytes long; keys are at most 1024 bytes")]
    KeyTooLong(usize),
    /// Content-MD5 is not valid base64 of 16 bytes.
    #[error("the Content-MD5 you specified is not valid")]
    InvalidDigest,
    /// A declared digest (Content-MD5) does not match the body.
    #[error("the Content-MD5 you specified did not match what was received")]
    BadDigest,
    /// An `x-amz-checksum-*` value does not match the body.
    #[error("the {0} checksum you specified did not match what was received")]
    ChecksumMismatch(&'static str),
    /// The payload's sha256 (x-amz-content-sha256) does not match the body.
    #[error("the provided x-amz-content-sha256 does not match what was computed")]
    ContentSha256Mismatch,
    /// The body ended before the declared length.
    #[error("the body has {got} bytes, fewer than the {declared} declared")]
    IncompleteBody { declared: u64, got: u64 },
    /// The body went on past the declared length.
    #[error("the body is longer than the {0} bytes declared")]
    BodyTooLong(u64),
    #[error("objects are at most {0} bytes; use a multipart upload")]
    EntityTooLarge(u64),
    #[error("part {0} is smaller than the 5 MiB minimum of every part but the last")]
    EntityTooSmall(u32),
    #[error("{0}")]
    InvalidPart(String),
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    #[error("the range is not satisfiable: the object has {0} bytes")]
    InvalidRange(u64),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    QuotaExceeded(String),
    /// A condition of the request (an ETag to match) does not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A conditional request's header (RFC 7232) does not hold: nothing
    /// was read or written.
    #[error("the condition {} does not hold for this object; nothing was done", .0.header_name())]
    ConditionFailed(crate::Condition),
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The stored bytes no longer match their checksum.
    #[error("the stored data of {0} is corrupted; it is not served")]
    Corrupt(String),
    /// The client went away or its body failed mid-stream.
    #[error("reading the request body failed: {0}")]
    Body(String),
    /// The request body was refused by the dialect's decoder (a bad chunk
    /// signature, a wrong trailer checksum): its own code and status.
    #[error("{message}")]
    Rejected {
        status: u16,
        code: &'static str,
        message: String,
    },
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl ObjectError {
    pub fn internal(context: impl std::fmt::Display, e: impl std::fmt::Display) -> Self {
        ObjectError::Internal(format!("{context}: {e}"))
    }
}

impl From<std::io::Error> for ObjectError {
    fn from(e: std::io::Error) -> Self {
        ObjectError::Internal(format!("object data: {e}"))
    }
}

impl From<serde_json::Error> for ObjectError {
    fn from(e: serde_json::Error) -> Self {
        ObjectError::Internal(format!("stored JSON is not valid: {e}"))
    }
}

impl HasKind for ObjectError {
    fn kind(&self) -> ErrorKind {
        match self {
            ObjectError::NoSuchBucket(_)
            | ObjectError::NoSuchKey(_)
            | ObjectError::NoSuchUpload(_) => ErrorKind::NotFound,
            ObjectError::BucketNotEmpty(_)
            | ObjectError::PreconditionFailed(_)
            | ObjectError::ConditionFailed(_) => ErrorKind::Conflict,
            ObjectError::BucketAlreadyExists(_) | ObjectError::BucketAlreadyOwnedByYou(_) => {
                ErrorKind::AlreadyExists
            }
            ObjectError::EntityTooLarge(_) => ErrorKind::TooLarge,
            ObjectError::QuotaExceeded(_) => ErrorKind::QuotaExceeded,
            ObjectError::AccessDenied(_) => ErrorKind::Forbidden,
            ObjectError::Corrupt(_) | ObjectError::Internal(_) => ErrorKind::Internal,
            ObjectError::Identity(e) => e.kind(),
            _ => ErrorKind::Invalid,
        }
    }
}
