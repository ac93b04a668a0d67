//! The API client commands (`upload`, `query`, `ready`, `loadgen`): they speak to a server the
//! way the real clients do — Connect unary with protobuf bodies for the API services, plain
//! HTTP for `/ingest` and `/ready` — with a tenant (`X-Scope-OrgID`), basic auth or a bearer
//! token.

pub mod loadgen;
pub mod query;
pub mod timearg;
pub mod upload;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use clap::Args;
use std::time::Duration;

/// Where the server is and who we are, shared by every client command.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:4040", env = "EMBERSCOPE_URL")]
    pub url: String,
    /// Tenant id, sent as X-Scope-OrgID.
    #[arg(long, env = "EMBERSCOPE_TENANT")]
    pub tenant: Option<String>,
    /// Basic auth user name.
    #[arg(long, env = "EMBERSCOPE_USERNAME")]
    pub username: Option<String>,
    /// Basic auth password.
    #[arg(long, env = "EMBERSCOPE_PASSWORD")]
    pub password: Option<String>,
    /// Bearer token (Authorization: Bearer ...).
    #[arg(long, env = "EMBERSCOPE_TOKEN")]
    pub token: Option<String>,
    /// Give up on a request after this long.
    #[arg(long, default_value = "30s", value_parser = model::parse_duration)]
    pub timeout: Duration,
}

/// A connection to one server.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    args: ClientArgs,
}

/// What a request sends beyond its body.
enum Body {
    Proto(Vec<u8>),
    Raw {
        bytes: Vec<u8>,
        content_type: String,
    },
    None,
}

impl Client {
    pub fn new(args: &ClientArgs) -> Result<Client> {
        if args.username.is_some() && args.token.is_some() {
            bail!("--username and --token both set: choose basic auth or a bearer token");
        }
        if args.password.is_some() && args.username.is_none() {
            bail!("--password needs --username");
        }
        let http = reqwest::Client::builder()
            .timeout(args.timeout)
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Client {
            http,
            base: args.url.trim_end_matches('/').to_owned(),
            args: args.clone(),
        })
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Body) -> Result<(u16, Bytes)> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(tenant) = &self.args.tenant {
            request = request.header("X-Scope-OrgID", tenant);
        }
        if let Some(user) = &self.args.username {
            request = request.basic_auth(user, self.args.password.as_deref());
        }
        if let Some(token) = &self.args.token {
            request = request.bearer_auth(token);
        }
        request = match body {
            // Connect unary as the real clients send it: the protocol version and the deadline.
            Body::Proto(bytes) => request
                .header("Content-Type", "application/proto")
                .header("Connect-Protocol-Version", "1")
                .header(
                    "Connect-Timeout-Ms",
                    self.args
                        .timeout
                        .as_millis()
                        .clamp(1, 9_999_999_999)
                        .to_string(),
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
                anyhow!("{url}: no answer within {:?}", self.args.timeout)
            } else if e.is_connect() {
                anyhow!("cannot reach {}: {}", self.base, root_cause(&e))
            } else {
                anyhow!("{url}: {}", root_cause(&e))
            }
        })?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{url}: the answer broke off"))?;
        Ok((status, bytes))
    }

    /// A Connect unary call with protobuf bodies.
    pub async fn call<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<Resp> {
        let (status, bytes) = self
            .send(
                reqwest::Method::POST,
                path,
                Body::Proto(request.encode_to_vec()),
            )
            .await?;
        if status != 200 {
            bail!("{}", describe_error(path, status, &bytes));
        }
        Resp::decode(bytes).with_context(|| format!("{path}: the answer is not a valid message"))
    }

    /// A POST of raw bytes; the body of a 200 answer.
    pub async fn post(&self, path: &str, content_type: &str, bytes: Vec<u8>) -> Result<Bytes> {
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
            bail!("{}", describe_error(path, status, &answer));
        }
        Ok(answer)
    }

    /// A GET: (status, body).
    pub async fn get(&self, path: &str) -> Result<(u16, Bytes)> {
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

/// `emberscope ready`: exits 0 when the server says it is ready.
pub async fn ready(args: &ClientArgs) -> Result<()> {
    let client = Client::new(args)?;
    let (status, body) = client.get("/ready").await?;
    let text = String::from_utf8_lossy(&body);
    if status == 200 && text.trim() == "ready" {
        println!("ready");
        Ok(())
    } else {
        bail!("not ready: {status} {}", text.trim())
    }
}

/// Runs an async client command on a small runtime.
pub fn block_on<F: Future<Output = Result<()>>>(future: F) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(future)
}
