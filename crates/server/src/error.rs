//! Errors of the HTTP API: one small vocabulary of codes, mapped to HTTP status once, written
//! as Pyroscope writes them: `{"code":"invalid_argument","message":"…"}`.

use axum::response::{IntoResponse, Response};

pub use api::Code;

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

impl From<api::Status> for ApiError {
    fn from(status: api::Status) -> ApiError {
        ApiError::new(status.code, status.message)
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
