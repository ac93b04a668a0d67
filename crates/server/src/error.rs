//! Errors of the HTTP API: one small vocabulary of codes, mapped to HTTP status once, written
//! as Pyroscope writes them: `{"code":"invalid_argument","message":"…"}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Connect-style error codes, with the HTTP status Pyroscope answers for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidArgument,
    Unauthenticated,
    NotFound,
    ResourceExhausted,
    Unavailable,
    Internal,
    /// A body that could not be converted (`/ingest`'s 422).
    Unprocessable,
    PayloadTooLarge,
    UnsupportedMediaType,
    Unimplemented,
    /// A query that ran out of time.
    DeadlineExceeded,
    /// The caller went away (Pyroscope's 499).
    Canceled,
}

impl Code {
    pub fn status(self) -> StatusCode {
        match self {
            Code::InvalidArgument => StatusCode::BAD_REQUEST,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Code::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            Code::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::Canceled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        }
    }

    /// The gRPC status code (`grpc-status`).
    pub fn grpc(self) -> u32 {
        match self {
            Code::InvalidArgument | Code::Unprocessable | Code::UnsupportedMediaType => 3,
            Code::NotFound => 5,
            Code::ResourceExhausted | Code::PayloadTooLarge => 8,
            Code::Unimplemented => 12,
            Code::Canceled => 1,
            Code::DeadlineExceeded => 4,
            Code::Internal => 13,
            Code::Unavailable => 14,
            Code::Unauthenticated => 16,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Code::InvalidArgument => "invalid_argument",
            Code::Unauthenticated => "unauthenticated",
            Code::NotFound => "not_found",
            Code::ResourceExhausted => "resource_exhausted",
            Code::Unavailable => "unavailable",
            Code::Internal => "internal",
            Code::Unimplemented => "unimplemented",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::Canceled => "canceled",
            // HTTP statuses without a Connect code are written as "unknown".
            Code::Unprocessable | Code::PayloadTooLarge | Code::UnsupportedMediaType => "unknown",
        }
    }
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<query::QueryError> for ApiError {
    /// A query's failure as the caller sees it: its own mistakes and limits 400, the storage or
    /// metastore unreachable 503, out of time 504.
    fn from(error: query::QueryError) -> ApiError {
        use query::QueryError as E;
        let code = match &error {
            E::InvalidArgument(_) | E::LimitExceeded(_) => Code::InvalidArgument,
            E::Unavailable(_) => Code::Unavailable,
            E::Timeout => Code::DeadlineExceeded,
            E::Canceled => Code::Canceled,
            E::Internal(_) => Code::Internal,
        };
        ApiError::new(code, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code.name(), "message": self.message });
        (self.code.status(), axum::Json(body)).into_response()
    }
}
