//! The error vocabulary of the API: Connect-style codes, each with the HTTP status Pyroscope
//! answers, its gRPC status code and its Connect name, and an error as it travels
//! (`{"code": "...", "message": "..."}`).

use http::StatusCode;

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

    /// The code a Connect error name stands for (`unknown` and names not listed: internal).
    pub fn from_name(name: &str) -> Code {
        match name {
            "invalid_argument" | "failed_precondition" | "out_of_range" => Code::InvalidArgument,
            "unauthenticated" | "permission_denied" => Code::Unauthenticated,
            "not_found" => Code::NotFound,
            "resource_exhausted" => Code::ResourceExhausted,
            "unavailable" => Code::Unavailable,
            "unimplemented" => Code::Unimplemented,
            "deadline_exceeded" => Code::DeadlineExceeded,
            "canceled" => Code::Canceled,
            _ => Code::Internal,
        }
    }
}

/// An error as the API carries it: a code and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Status {
    pub code: Code,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }

    /// Connect's error body: `{"code":"invalid_argument","message":"…"}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({ "code": self.code.name(), "message": self.message }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_names() {
        for code in [
            Code::InvalidArgument,
            Code::Unauthenticated,
            Code::NotFound,
            Code::ResourceExhausted,
            Code::Unavailable,
            Code::Internal,
            Code::Unimplemented,
            Code::DeadlineExceeded,
            Code::Canceled,
        ] {
            assert_eq!(Code::from_name(code.name()), code);
        }
        assert_eq!(Code::Canceled.status().as_u16(), 499);
        assert_eq!(
            Status::new(Code::Unavailable, "down").to_json(),
            r#"{"code":"unavailable","message":"down"}"#
        );
    }
}
