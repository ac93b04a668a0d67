//! The framing of unary calls in the three protocols connect-go serves on one port (`api.md`
//! §0): **Connect** (`application/proto`, `application/json` = protojson), **gRPC**
//! (`application/grpc[+proto|+json]`, length-prefixed messages, status in trailers) and
//! **gRPC-Web** (`application/grpc-web[+proto]`, and `-text` = base64; trailers as a last frame
//! in the body). Plain functions over bytes and headers: a server and a client build on them.

use crate::codes::{Code, Status};
use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};

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

fn invalid(message: impl Into<String>) -> Status {
    Status::new(Code::InvalidArgument, message)
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

/// The `Content-Type` of an answer in `protocol` and `codec`.
pub fn content_type(protocol: Protocol, codec: Codec) -> &'static str {
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

/// A message from its bytes in `codec`.
/// Binary fields declared as `Bytes` (a segment writer's profiles) share `bytes`' buffer rather
/// than being copied out of it.
pub fn decode<M>(codec: Codec, bytes: Bytes) -> Result<M, Status>
where
    M: prost::Message + Default + serde::de::DeserializeOwned,
{
    match codec {
        Codec::Proto => M::decode(bytes).map_err(|e| invalid(format!("unmarshal message: {e}"))),
        Codec::Json => {
            serde_json::from_slice(&bytes).map_err(|e| invalid(format!("unmarshal message: {e}")))
        }
    }
}

/// A message's bytes in `codec`.
pub fn encode<M: prost::Message + serde::Serialize>(codec: Codec, message: &M) -> Vec<u8> {
    match codec {
        Codec::Proto => message.encode_to_vec(),
        // Serialising generated messages into memory cannot fail.
        Codec::Json => serde_json::to_vec(message).unwrap_or_default(),
    }
}

/// One length-prefixed message: `flags(1) length(4, BE) message`.
pub fn frame(flags: u8, message: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + message.len());
    out.put_u8(flags);
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message);
    out.freeze()
}

/// The one length-prefixed message of a unary gRPC request: its flags and bytes.
pub fn unframe(body: &Bytes) -> Result<(u8, Bytes), Status> {
    let Some((&flags, rest)) = body.split_first() else {
        // An absent message is the empty message.
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

/// gRPC's status trailers (`grpc-status`, and `grpc-message` when there is one).
pub fn grpc_status(code: u32, message: &str) -> HeaderMap {
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
pub fn web_trailers(code: u32, message: &str) -> Bytes {
    let mut text = format!("grpc-status: {code}\r\n");
    if !message.is_empty() {
        text.push_str(&format!("grpc-message: {}\r\n", percent_encode(message)));
    }
    frame(0x80, text.as_bytes())
}

/// `grpc-message` is percent-encoded: bytes outside printable ASCII, and `%` itself.
pub fn percent_encode(message: &str) -> String {
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
        for (protocol, codec) in [
            (Protocol::Connect, Codec::Json),
            (Protocol::Grpc, Codec::Proto),
            (Protocol::GrpcWeb { text: false }, Codec::Proto),
        ] {
            assert_eq!(
                negotiate(content_type(protocol, codec)),
                Some((protocol, codec))
            );
        }
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
