//! Connect unary, the protocol of Pyroscope's API services on the HTTP port: `POST` with
//! `application/proto` or `application/json` (protojson), optionally gzip
//! (`Content-Encoding`/`Connect-Content-Encoding`); answers in the same codec; errors as JSON.

use crate::error::{ApiError, Code};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

/// Largest request body after decompression (`distributor.ingestion-body-limit-mb`).
pub const BODY_LIMIT: usize = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Proto,
    Json,
}

pub fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidArgument, message)
}

/// The request's codec and its decompressed body.
pub fn read(headers: &HeaderMap, body: Bytes) -> Result<(Codec, Bytes), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let codec = match content_type.as_str() {
        "application/proto" => Codec::Proto,
        "application/json" => Codec::Json,
        _ => {
            return Err(ApiError::new(
                Code::UnsupportedMediaType,
                format!(
                    "invalid content-type: {content_type:?}; expecting \"application/proto\" or \"application/json\""
                ),
            ));
        }
    };
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .or_else(|| headers.get("connect-content-encoding"))
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity");
    let body = match encoding {
        "gzip" => Bytes::from(
            formats::compression::decompress(&body, BODY_LIMIT)
                .map_err(|e| invalid(e.to_string()))?
                .into_owned(),
        ),
        "identity" | "" => body,
        other => {
            return Err(ApiError::new(
                Code::Unimplemented,
                format!("unknown compression {other:?}"),
            ));
        }
    };
    Ok((codec, body))
}

/// An answer in the request's codec: the message, or its protojson form.
pub fn respond(codec: Codec, message: &impl prost::Message, json: &serde_json::Value) -> Response {
    match codec {
        Codec::Proto => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/proto")],
            message.encode_to_vec(),
        )
            .into_response(),
        Codec::Json => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            json.to_string(),
        )
            .into_response(),
    }
}

/// A protojson int64: a JSON string or number.
pub fn json_i64(value: &serde_json::Value, field: &str) -> Result<i64, ApiError> {
    match value.get(field) {
        None | Some(serde_json::Value::Null) => Ok(0),
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| invalid(format!("unmarshal message: {field}: not an integer"))),
        Some(serde_json::Value::String(s)) => s
            .parse()
            .map_err(|_| invalid(format!("unmarshal message: {field}: invalid value {s:?}"))),
        Some(other) => Err(invalid(format!(
            "unmarshal message: {field}: invalid value {other}"
        ))),
    }
}

/// A protojson string field.
pub fn json_string(value: &serde_json::Value, field: &str) -> Result<String, ApiError> {
    match value.get(field) {
        None | Some(serde_json::Value::Null) => Ok(String::new()),
        Some(serde_json::Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(invalid(format!(
            "unmarshal message: {field}: invalid value {other}"
        ))),
    }
}

/// The JSON object of a request body (an empty body is refused, as Connect refuses it).
pub fn json_object(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid(format!("unmarshal message: {e}")))?;
    if !value.is_object() {
        return Err(invalid("unmarshal message: not a JSON object"));
    }
    Ok(value)
}
