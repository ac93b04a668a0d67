//! The API client commands (`upload`, `query`, `ready`, `loadgen`): they speak to a server the
//! way the real clients do, through `api`'s typed client — Connect unary with protobuf bodies
//! for the API services, plain HTTP for `/ingest` and `/ready` — with a tenant
//! (`X-Scope-OrgID`), basic auth or a bearer token.

pub mod loadgen;
pub mod query;
pub mod timearg;
pub mod upload;

use anyhow::{Context, Result, bail};
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

/// A connection to one server: the API's typed client with the command line's credentials.
#[derive(Debug, Clone)]
pub struct Client {
    api: api::client::ApiClient,
}

impl Client {
    pub fn new(args: &ClientArgs) -> Result<Client> {
        if args.username.is_some() && args.token.is_some() {
            bail!("--username and --token both set: choose basic auth or a bearer token");
        }
        if args.password.is_some() && args.username.is_none() {
            bail!("--password needs --username");
        }
        let credentials = api::client::Credentials {
            tenant: args.tenant.clone(),
            basic: args
                .username
                .clone()
                .map(|user| (user, args.password.clone())),
            bearer: args.token.clone(),
        };
        let api = api::client::ApiClient::new(&args.url, credentials, args.timeout)?;
        Ok(Client { api })
    }

    /// A Connect unary call with protobuf bodies.
    pub async fn call<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        path: &str,
        request: &Req,
    ) -> Result<Resp> {
        Ok(self.api.call(path, request).await?)
    }

    /// A POST of raw bytes; the body of a 200 answer.
    pub async fn post(&self, path: &str, content_type: &str, bytes: Vec<u8>) -> Result<Bytes> {
        Ok(self.api.post(path, content_type, bytes).await?)
    }

    /// A GET: (status, body).
    pub async fn get(&self, path: &str) -> Result<(u16, Bytes)> {
        Ok(self.api.get(path).await?)
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
