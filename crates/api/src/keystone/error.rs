use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use nuage_identity::IdentityError;
use nuage_model::{ErrorKind, HasKind};

/// An error in Keystone's shape: `{"error": {"code", "message", "title"}}`,
/// where `code` is the HTTP status as a number. The `WWW-Authenticate`
/// header of 401 answers is added by the router, which knows the public URL.
#[derive(Debug)]
pub struct KeystoneError {
    status: StatusCode,
    message: String,
    /// Seconds for `Retry-After`, on refusals that end by themselves.
    retry_after: Option<u64>,
}

impl KeystoneError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        KeystoneError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// An identity error, where a login's two "try again later" refusals
    /// keep their message and carry `Retry-After`: 429 for a throttled
    /// login (Keystone itself answers a locked account with 401, but 429 is
    /// the status `Retry-After` is defined for), 503 when every hashing
    /// worker stayed busy.
    pub fn identity(e: IdentityError) -> Self {
        let status = match &e {
            IdentityError::Throttled { .. } => StatusCode::TOO_MANY_REQUESTS,
            IdentityError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => return e.into(),
        };
        KeystoneError {
            status,
            message: format!("{e}."),
            retry_after: e.retry_after().map(nuage_identity::secs),
        }
    }

    pub fn of_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::new(crate::context::status_of(kind), message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn from_json_rejection(rej: JsonRejection) -> Self {
        match rej {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "The request body must be JSON, sent with Content-Type: application/json.",
            ),
            JsonRejection::BytesRejection(b) if b.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "The request body is larger than {} bytes.",
                        super::BODY_LIMIT
                    ),
                )
            }
            other => Self::bad_request(format!(
                "The request body is not valid: {}",
                other.body_text()
            )),
        }
    }

    pub fn from_query_rejection(rej: QueryRejection) -> Self {
        Self::bad_request(format!(
            "The query string is not valid: {}",
            rej.body_text()
        ))
    }
}

/// Keystone's title for a status: the standard reason phrase, with the
/// wording Keystone uses for 413.
fn title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "Request Entity Too Large",
        s => s.canonical_reason().unwrap_or("Error"),
    }
}

impl<E: HasKind + std::error::Error> From<E> for KeystoneError {
    fn from(e: E) -> Self {
        let (kind, message) = crate::context::public_error(&e);
        Self::of_kind(kind, message)
    }
}

impl IntoResponse for KeystoneError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {
                "code": self.status.as_u16(),
                "message": self.message,
                "title": title(self.status),
            }
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
        }
        resp
    }
}
