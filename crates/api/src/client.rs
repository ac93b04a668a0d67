//! A typed client of the API: Connect unary calls with protobuf bodies (what Pyroscope's
//! clients send), raw POSTs (`/ingest`) and GETs, with a tenant (`X-Scope-OrgID`), basic auth
//! or a bearer token. The command-line client uses it, and so can any role calling another.

use crate::codes::Code;
use bytes::Bytes;
use std::time::Duration;

/// Who a client is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Sent as `X-Scope-OrgID`.
    pub tenant: Option<String>,
    /// Basic auth (user, password).
    pub basic: Option<(String, Option<String>)>,
    /// `Authorization: Bearer ...`.
    pub bearer: Option<String>,
}

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("cannot reach {base}: {cause}")]
    Unreachable { base: String, cause: String },
    #[error("{url}: {cause}")]
    Transport { url: String, cause: String },
    #[error("{path}: the answer is not a valid message: {cause}")]
    Decode { path: String, cause: String },
    /// The server answered with an error.
    #[error("{}", describe_error(path, *status, body))]
    Server {
        path: String,
        status: u16,
        body: Bytes,
    },
}

impl ClientError {
    /// The API code of a server's error answer (from its Connect body, else its status).
    pub fn code(&self) -> Option<Code> {
        let ClientError::Server { status, body, .. } = self else {
            return None;
        };
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|json| json["code"].as_str().map(Code::from_name))
            .or(Some(match status {
                400 => Code::InvalidArgument,
                401 | 403 => Code::Unauthenticated,
                404 => Code::NotFound,
                429 => Code::ResourceExhausted,
                503 => Code::Unavailable,
                504 => Code::DeadlineExceeded,
                _ => Code::Internal,
            }))
    }
}

impl ClientError {
    /// The server's own message for an error answer (its Connect body's `message`), else this
    /// error's description.
    pub fn message(&self) -> String {
        if let ClientError::Server { body, .. } = self
            && let Some(message) = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|json| json["message"].as_str().map(str::to_owned))
        {
            return message;
        }
        self.to_string()
    }

    /// Whether another server may succeed where this one failed: it could not be reached, did
    /// not answer in time, or answered that it is unavailable or broken (not that the request
    /// is wrong or over a limit).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Setup(_) => false,
            ClientError::Timeout { .. }
            | ClientError::Unreachable { .. }
            | ClientError::Transport { .. }
            | ClientError::Decode { .. } => true,
            ClientError::Server { .. } => matches!(
                self.code(),
                Some(Code::Unavailable | Code::Internal | Code::DeadlineExceeded | Code::Canceled)
            ),
        }
    }
}

/// A connection to one server.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
    timeout: Duration,
}

enum Body {
    Proto(Bytes),
    Raw {
        bytes: Vec<u8>,
        content_type: String,
    },
    None,
}

impl ApiClient {
    /// A client of the server at `base` (`http://host:port`), giving up on a request after
    /// `timeout`.
    pub fn new(
        base: &str,
        credentials: Credentials,
        timeout: Duration,
    ) -> Result<ApiClient, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ClientError::Setup(root_cause(&e)))?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            credentials,
            timeout,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body,
    ) -> Result<(u16, Bytes), ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(tenant) = &self.credentials.tenant {
            request = request.header("X-Scope-OrgID", tenant);
        }
        if let Some((user, password)) = &self.credentials.basic {
            request = request.basic_auth(user, password.as_deref());
        }
        if let Some(token) = &self.credentials.bearer {
            request = request.bearer_auth(token);
        }
        request = match body {
            // Connect unary as the real clients send it: the protocol version and the deadline.
            Body::Proto(bytes) => request
                .header("Content-Type", "application/proto")
                .header("Connect-Protocol-Version", "1")
                .header(
                    "Connect-Timeout-Ms",
                    self.timeout.as_millis().clamp(1, 9_999_999_999).to_string(),
                )
                .body(bytes),
            Body::Raw {
                bytes,
                content_type,
            } => request.header("Content-Type", content_type).body(bytes),
            Body::None => request,
        };
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                ClientError::Timeout {
                    url: url.clone(),
                    timeout: self.timeout,
                }
            } else if e.is_connect() {
                ClientError::Unreachable {
                    base: self.base.clone(),
                    cause: root_cause(&e),
                }
            } else {
                ClientError::Transport {
                    url: url.clone(),
                    cause: root_cause(&e),
                }
            }
        })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| ClientError::Transport {
            url: url.clone(),
            cause: format!("the answer broke off: {}", root_cause(&e)),
        })?;
        Ok((status, bytes))
    }

    /// A Connect unary call with protobuf bodies.
    pub async fn call<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<Resp, ClientError> {
        self.call_encoded(path, Bytes::from(request.encode_to_vec()))
            .await
    }

    /// A Connect unary call of an already encoded request (sent again as it is on a retry).
    pub async fn call_encoded<Resp: prost::Message + Default>(
        &self,
        path: &str,
        request: Bytes,
    ) -> Result<Resp, ClientError> {
        let (status, bytes) = self
            .send(reqwest::Method::POST, path, Body::Proto(request))
            .await?;
        if status != 200 {
            return Err(ClientError::Server {
                path: path.to_owned(),
                status,
                body: bytes,
            });
        }
        Resp::decode(bytes).map_err(|e| ClientError::Decode {
            path: path.to_owned(),
            cause: e.to_string(),
        })
    }

    /// A POST of raw bytes; the body of a 200 answer.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Bytes, ClientError> {
        let (status, answer) = self
            .send(
                reqwest::Method::POST,
                path,
                Body::Raw {
                    bytes,
                    content_type: content_type.to_owned(),
                },
            )
            .await?;
        if status != 200 {
            return Err(ClientError::Server {
                path: path.to_owned(),
                status,
                body: answer,
            });
        }
        Ok(answer)
    }

    /// A GET: (status, body).
    pub async fn get(&self, path: &str) -> Result<(u16, Bytes), ClientError> {
        self.send(reqwest::Method::GET, path, Body::None).await
    }
}

/// The innermost cause of an HTTP client error (reqwest's own text is generic).
fn root_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// "server answered 400 (invalid_argument): message" from a Pyroscope-style error body.
pub fn describe_error(path: &str, status: u16, body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(json) if json.get("message").is_some() => format!(
            "{path}: the server answered {status} ({}): {}",
            json["code"].as_str().unwrap_or("unknown"),
            json["message"].as_str().unwrap_or("")
        ),
        _ => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                format!("{path}: the server answered {status}")
            } else {
                format!(
                    "{path}: the server answered {status}: {}",
                    text.chars().take(500).collect::<String>()
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_keep_their_code_and_message() {
        let error = ClientError::Server {
            path: "/x".to_owned(),
            status: 400,
            body: Bytes::from_static(br#"{"code":"invalid_argument","message":"bad"}"#),
        };
        assert_eq!(
            error.to_string(),
            "/x: the server answered 400 (invalid_argument): bad"
        );
        assert_eq!(error.code(), Some(Code::InvalidArgument));
        let plain = ClientError::Server {
            path: "/y".to_owned(),
            status: 503,
            body: Bytes::from_static(b"down"),
        };
        assert_eq!(plain.to_string(), "/y: the server answered 503: down");
        assert_eq!(plain.code(), Some(Code::Unavailable));
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named() {
        let client = ApiClient::new(
            "http://127.0.0.1:1",
            Credentials::default(),
            Duration::from_secs(5),
        )
        .expect("client");
        let error = client.get("/ready").await.expect_err("nothing listens");
        assert!(
            error
                .to_string()
                .starts_with("cannot reach http://127.0.0.1:1"),
            "{error}"
        );
    }
}
