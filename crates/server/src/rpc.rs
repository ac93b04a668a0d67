//! Unary RPCs on the HTTP port, in the three protocols connect-go serves there (`api.md` §0):
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
use bytes::{BufMut, Bytes, BytesMut};
use http_body::Frame;
use model::TenantId;
use std::convert::Infallible;
use std::sync::Arc;

/// Largest request body after decompression (`distributor.ingestion-body-limit-mb`).
pub const BODY_LIMIT: usize = 256 << 20;

/// How message bytes are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Proto,
    Json,
}

/// How messages are carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Connect,
    Grpc,
    GrpcWeb { text: bool },
}

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

/// The protocol and codec a `Content-Type` names, or `None` when it names none of them.
pub fn negotiate(content_type: &str) -> Option<(Protocol, Codec)> {
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match media.as_str() {
        "application/proto" => (Protocol::Connect, Codec::Proto),
        "application/json" => (Protocol::Connect, Codec::Json),
        "application/grpc" | "application/grpc+proto" => (Protocol::Grpc, Codec::Proto),
        "application/grpc+json" => (Protocol::Grpc, Codec::Json),
        "application/grpc-web" | "application/grpc-web+proto" => {
            (Protocol::GrpcWeb { text: false }, Codec::Proto)
        }
        "application/grpc-web+json" => (Protocol::GrpcWeb { text: false }, Codec::Json),
        "application/grpc-web-text" | "application/grpc-web-text+proto" => {
            (Protocol::GrpcWeb { text: true }, Codec::Proto)
        }
        _ => return None,
    })
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
        .and_then(|bytes| decode::<Req>(codec, &bytes))
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
            let (flags, message) = unframe(&body)?;
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

/// The one length-prefixed message of a unary gRPC request: `flags(1) length(4, BE) message`.
fn unframe(body: &Bytes) -> Result<(u8, Bytes), ApiError> {
    if body.is_empty() {
        // An absent message is the empty message.
        return Ok((0, Bytes::new()));
    }
    let Some((&flags, rest)) = body.split_first() else {
        return Ok((0, Bytes::new()));
    };
    let length = rest
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| invalid("grpc: truncated message prefix"))?;
    let end = 5usize.saturating_add(length);
    if end > body.len() {
        return Err(invalid(format!(
            "grpc: message of {length} bytes but only {} sent",
            body.len() - 5
        )));
    }
    if end != body.len() {
        return Err(invalid("grpc: unary request with more than one message"));
    }
    Ok((flags, body.slice(5..end)))
}

fn decode<Req>(codec: Codec, bytes: &[u8]) -> Result<Req, ApiError>
where
    Req: prost::Message + Default + serde::de::DeserializeOwned,
{
    match codec {
        Codec::Proto => Req::decode(bytes).map_err(|e| invalid(format!("unmarshal message: {e}"))),
        Codec::Json => {
            serde_json::from_slice(bytes).map_err(|e| invalid(format!("unmarshal message: {e}")))
        }
    }
}

fn encode<Resp: prost::Message + serde::Serialize>(codec: Codec, message: &Resp) -> Vec<u8> {
    match codec {
        Codec::Proto => message.encode_to_vec(),
        // Serialising generated messages into memory cannot fail.
        Codec::Json => serde_json::to_vec(message).unwrap_or_default(),
    }
}

fn content_type(protocol: Protocol, codec: Codec) -> &'static str {
    match (protocol, codec) {
        (Protocol::Connect, Codec::Proto) => "application/proto",
        (Protocol::Connect, Codec::Json) => "application/json",
        (Protocol::Grpc, Codec::Proto) => "application/grpc",
        (Protocol::Grpc, Codec::Json) => "application/grpc+json",
        (Protocol::GrpcWeb { text: false }, Codec::Proto) => "application/grpc-web+proto",
        (Protocol::GrpcWeb { text: false }, Codec::Json) => "application/grpc-web+json",
        (Protocol::GrpcWeb { text: true }, _) => "application/grpc-web-text+proto",
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

/// One length-prefixed message.
fn frame(flags: u8, message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(flags);
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message);
    out.freeze()
}

fn grpc_status(code: u32, message: &str) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(code));
    if !message.is_empty()
        && let Ok(value) = HeaderValue::from_str(&percent_encode(message))
    {
        trailers.insert("grpc-message", value);
    }
    trailers
}

/// gRPC-Web's trailers: a frame with flag 0x80 holding HTTP/1-style header lines.
fn web_trailers(code: u32, message: &str) -> Bytes {
    let mut text = format!("grpc-status: {code}\r\n");
    if !message.is_empty() {
        text.push_str(&format!("grpc-message: {}\r\n", percent_encode(message)));
    }
    frame(0x80, text.as_bytes())
}

/// `grpc-message` is percent-encoded: bytes outside printable ASCII, and `%` itself.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for &byte in message.as_bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiates_every_protocol() {
        assert_eq!(
            negotiate("application/proto"),
            Some((Protocol::Connect, Codec::Proto))
        );
        assert_eq!(
            negotiate("application/json; charset=utf-8"),
            Some((Protocol::Connect, Codec::Json))
        );
        assert_eq!(
            negotiate("application/grpc+proto"),
            Some((Protocol::Grpc, Codec::Proto))
        );
        assert_eq!(
            negotiate("application/grpc-web-text"),
            Some((Protocol::GrpcWeb { text: true }, Codec::Proto))
        );
        assert_eq!(negotiate("text/plain"), None);
    }

    #[test]
    fn unframes_one_message_and_refuses_bad_prefixes() {
        let framed = frame(0, b"abc");
        assert_eq!(unframe(&framed), Ok((0, Bytes::from_static(b"abc"))));
        assert!(unframe(&Bytes::from_static(&[0, 0, 0])).is_err());
        assert!(unframe(&Bytes::from_static(&[0, 0, 0, 0, 9, 1])).is_err());
        let mut two = framed.to_vec();
        two.extend_from_slice(&framed);
        assert!(unframe(&Bytes::from(two)).is_err());
        assert_eq!(unframe(&Bytes::new()), Ok((0, Bytes::new())));
    }

    #[test]
    fn percent_encodes_grpc_messages() {
        assert_eq!(percent_encode("no org id"), "no org id");
        assert_eq!(
            percent_encode("100% ünïcode\n"),
            "100%25 %C3%BCn%C3%AFcode%0A"
        );
    }
}
