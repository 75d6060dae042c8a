use axum::extract::rejection::JsonRejection;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use nuage_model::{ErrorKind, HasKind};

/// An error in the native dialect.
#[derive(Debug)]
pub struct NativeError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl NativeError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        NativeError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn of_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(crate::context::status_of(kind), kind.code(), message)
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::of_kind(ErrorKind::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::of_kind(ErrorKind::NotFound, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::of_kind(ErrorKind::Unauthenticated, message)
    }

    pub fn from_json_rejection(rej: JsonRejection) -> Self {
        match rej {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON, sent with Content-Type: application/json",
            ),
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::of_kind(
                    ErrorKind::TooLarge,
                    format!("the body is larger than {} bytes", super::BODY_LIMIT),
                )
            }
            other => Self::invalid(format!("the body is not valid: {}", other.body_text())),
        }
    }
}

impl<E: HasKind + std::error::Error> From<E> for NativeError {
    fn from(e: E) -> Self {
        let (kind, message) = crate::context::public_error(&e);
        Self::of_kind(kind, message)
    }
}

impl IntoResponse for NativeError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {
                "code": self.code,
                "message": self.message,
                "request_id": crate::context::request_id(),
            }
        });
        (self.status, axum::Json(body)).into_response()
    }
}
