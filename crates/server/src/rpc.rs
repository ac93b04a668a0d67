//! Unary RPCs on the HTTP port, in the three protocols connect-go serves there (`api.md` §0;
//! the framing is `api::wire`'s):
//! **Connect** (`application/proto`, `application/json` = protojson; gzip by
//! `Content-Encoding`), **gRPC** (`application/grpc[+proto|+json]`, length-prefixed messages,
//! status in trailers; HTTP/2 cleartext) and **gRPC-Web** (`application/grpc-web[+proto]`, and
//! `-text` = base64; trailers as a last frame in the body).
//!
//! Each method is written once as `async fn(Call, Request) -> Result<Response, ApiError>`;
//! [`unary`] decodes the request and writes the answer or the error in the caller's protocol.

use crate::AppState;
use crate::error::{ApiError, Code};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use http_body::Frame;
use model::TenantId;
use std::convert::Infallible;
use std::sync::Arc;

/// Largest request body after decompression (`distributor.ingestion-body-limit-mb`).
pub const BODY_LIMIT: usize = 256 << 20;

pub use api::wire::{Codec, Protocol, negotiate};
use api::wire::{content_type, decode, encode, frame, grpc_status, unframe, web_trailers};

pub fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(Code::InvalidArgument, message)
}

/// What a method gets besides its request message.
#[derive(Debug)]
pub struct Call {
    pub state: Arc<AppState>,
    pub headers: HeaderMap,
}

impl Call {
    /// The caller's tenant (`X-Scope-OrgID`), or 401 `no org id`.
    pub fn tenant(&self) -> Result<TenantId, ApiError> {
        crate::tenant::tenant(&self.headers, self.state.multitenancy)
    }
}

/// Serves one unary call: decode, run `method`, encode.
pub async fn unary<Req, Resp, F, Fut>(
    state: Arc<AppState>,
    headers: HeaderMap,
    body: Bytes,
    method: F,
) -> Response
where
    Req: prost::Message + Default + serde::de::DeserializeOwned,
    Resp: prost::Message + serde::Serialize,
    F: FnOnce(Call, Req) -> Fut,
    Fut: Future<Output = Result<Resp, ApiError>>,
{
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some((protocol, codec)) = negotiate(content_type) else {
        return ApiError::new(
            Code::UnsupportedMediaType,
            format!(
                "invalid content-type: {content_type:?}; expecting \"application/proto\" or \"application/json\""
            ),
        )
        .into_response();
    };
    let request = match read_message(protocol, &headers, body)
        .and_then(|bytes| decode::<Req>(codec, bytes).map_err(ApiError::from))
    {
        Ok(request) => request,
        Err(error) => return write_error(protocol, codec, &error),
    };
    let call = Call { state, headers };
    match method(call, request).await {
        Ok(response) => write_message(protocol, codec, &response),
        Err(error) => write_error(protocol, codec, &error),
    }
}

/// The request message's bytes: unframed (gRPC) and decompressed.
fn read_message(protocol: Protocol, headers: &HeaderMap, body: Bytes) -> Result<Bytes, ApiError> {
    let gunzip = |bytes: &[u8]| -> Result<Bytes, ApiError> {
        formats::compression::decompress(bytes, BODY_LIMIT)
            .map(|b| Bytes::from(b.into_owned()))
            .map_err(|e| invalid(e.to_string()))
    };
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("identity")
            .to_owned()
    };
    match protocol {
        Protocol::Connect => {
            let encoding = headers
                .get(header::CONTENT_ENCODING)
                .or_else(|| headers.get("connect-content-encoding"))
                .and_then(|v| v.to_str().ok())
                .unwrap_or("identity");
            match encoding {
                "gzip" => gunzip(&body),
                "identity" | "" => Ok(body),
                other => Err(ApiError::new(
                    Code::Unimplemented,
                    format!("unknown compression {other:?}: supported encodings are gzip"),
                )),
            }
        }
        Protocol::Grpc | Protocol::GrpcWeb { .. } => {
            let body = if protocol == (Protocol::GrpcWeb { text: true }) {
                Bytes::from(
                    base64::engine::general_purpose::STANDARD
                        .decode(body.as_ref())
                        .map_err(|e| invalid(format!("grpc-web-text body: {e}")))?,
                )
            } else {
                body
            };
            let (flags, message) = unframe(&body).map_err(ApiError::from)?;
            if flags & 1 == 0 {
                return Ok(message);
            }
            match header("grpc-encoding").as_str() {
                "gzip" => gunzip(&message),
                other => Err(ApiError::new(
                    Code::Unimplemented,
                    format!("compressed message with grpc-encoding {other:?}"),
                )),
            }
        }
    }
}

/// An answer in the caller's protocol and codec.
pub fn write_message<Resp: prost::Message + serde::Serialize>(
    protocol: Protocol,
    codec: Codec,
    message: &Resp,
) -> Response {
    let bytes = encode(codec, message);
    let kind = content_type(protocol, codec);
    match protocol {
        Protocol::Connect => {
            (StatusCode::OK, [(header::CONTENT_TYPE, kind)], bytes).into_response()
        }
        Protocol::Grpc => {
            let frames = [
                Ok::<_, Infallible>(Frame::data(frame(0, &bytes))),
                Ok(Frame::trailers(grpc_status(0, ""))),
            ];
            let body = http_body_util::StreamBody::new(futures::stream::iter(frames));
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, kind)],
                Body::new(body),
            )
                .into_response()
        }
        Protocol::GrpcWeb { text } => {
            let mut out = frame(0, &bytes).to_vec();
            out.extend_from_slice(&web_trailers(0, ""));
            web_response(kind, text, out)
        }
    }
}

/// An error in the caller's protocol: Connect's JSON body with its HTTP status, or gRPC's
/// `grpc-status`/`grpc-message` (trailers-only for gRPC, a trailer frame for gRPC-Web).
pub fn write_error(protocol: Protocol, codec: Codec, error: &ApiError) -> Response {
    let kind = content_type(protocol, codec);
    match protocol {
        Protocol::Connect => error.clone().into_response(),
        Protocol::Grpc => {
            let mut response = StatusCode::OK.into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            headers.extend(grpc_status(error.code.grpc(), &error.message));
            response
        }
        Protocol::GrpcWeb { text } => web_response(
            kind,
            text,
            web_trailers(error.code.grpc(), &error.message).to_vec(),
        ),
    }
}

fn web_response(kind: &'static str, text: bool, body: Vec<u8>) -> Response {
    let body = if text {
        base64::engine::general_purpose::STANDARD
            .encode(&body)
            .into_bytes()
    } else {
        body
    };
    (StatusCode::OK, [(header::CONTENT_TYPE, kind)], body).into_response()
}
