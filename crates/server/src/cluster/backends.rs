//! Query fan-out: a query frontend that runs no query backend of its own sends each read task
//! of its plan to one of the live query backends (in turn, so tasks spread), and to the next
//! one when a backend cannot be reached, times out, answers that it is unavailable or answers
//! garbage. Backends are stateless — any of them reads any block from the shared object store
//! — so a retried task gives the same partial result, and partial results merge exactly.
//!
//! The backend's side of the call ([`execute`]) runs the task on this process's
//! [`query::LocalBackend`].

use super::MemberClients;
use super::membership::{Membership, View};
use crate::AppState;
use crate::error::{ApiError, Code};
use crate::rpc::{Call, invalid};
use api::client::ClientError;
use api::proto::querybackend::v1 as wire;
use async_trait::async_trait;
use bytes::Bytes;
use metastore::Member;
use query::{Partial, QueryBackend, QueryError, QueryStats, ReadTask};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// The method a query frontend calls on a query backend.
pub(crate) const EXECUTE_PATH: &str = "/querybackend.v1.QueryBackendService/Execute";

/// The role name query backends record.
pub(crate) const QUERY_BACKEND: &str = "query-backend";

/// The query frontend's calls to the cluster's query backends.
#[derive(Debug, Clone)]
pub struct QueryFrontendConfig {
    /// How long a query frontend waits for a query backend's answer to one read task before
    /// it sends the task to another backend.
    pub backend_timeout: Duration,
    /// How many query backends a read task is offered to before the query fails (503).
    pub backend_attempts: usize,
}

impl Default for QueryFrontendConfig {
    fn default() -> Self {
        QueryFrontendConfig {
            backend_timeout: Duration::from_secs(30),
            backend_attempts: 3,
        }
    }
}

/// The cluster's query backends, as a [`QueryBackend`] for the query engine.
#[derive(Debug)]
pub(crate) struct RemoteBackends {
    membership: Arc<Membership>,
    clients: MemberClients,
    /// Backends a task is offered to before it fails.
    attempts: usize,
    /// Where the next task starts its walk over the backends.
    next: AtomicUsize,
}

impl RemoteBackends {
    pub fn new(membership: Arc<Membership>, config: &QueryFrontendConfig) -> RemoteBackends {
        RemoteBackends {
            membership,
            clients: MemberClients::new(config.backend_timeout),
            attempts: config.backend_attempts.max(1),
            next: AtomicUsize::new(0),
        }
    }
}

/// Why a call to one backend failed: worth another backend, or the query's answer.
enum Failure {
    Retry(String),
    Final(QueryError),
}

impl RemoteBackends {
    /// The view's backends not tried yet, starting at the next in turn, those a call recently
    /// failed on last.
    fn candidates(&self, view: &View, tried: &[String]) -> Vec<Member> {
        let mut backends: Vec<&Member> = view
            .members
            .iter()
            .filter(|m| m.has_role(QUERY_BACKEND) && !tried.contains(&m.id))
            .collect();
        if backends.is_empty() {
            return Vec::new();
        }
        backends.sort_by(|a, b| a.id.cmp(&b.id));
        let start = self.next.fetch_add(1, Ordering::Relaxed) % backends.len();
        backends.rotate_left(start);
        let (fresh, suspects): (Vec<&Member>, Vec<&Member>) = backends
            .into_iter()
            .partition(|m| !self.membership.is_suspect(&m.id));
        fresh.into_iter().chain(suspects).cloned().collect()
    }

    /// One call to one backend, its answer decoded.
    async fn call(
        &self,
        backend: &Member,
        body: Bytes,
    ) -> Result<(Arc<Partial>, QueryStats), Failure> {
        let client = self
            .clients
            .get(&backend.address)
            .map_err(|e| Failure::Final(QueryError::Internal(e)))?;
        let answer = match client
            .call_encoded::<wire::ExecuteResponse>(EXECUTE_PATH, body)
            .await
        {
            Ok(answer) => answer,
            Err(error) if error.is_retryable() => return Err(Failure::Retry(error.to_string())),
            Err(error) => return Err(Failure::Final(refusal(&error))),
        };
        // Decoding a large tree is CPU work.
        let decoded =
            tokio::task::spawn_blocking(move || query::wire::decode_result(&answer.result))
                .await
                .map_err(|e| {
                    Failure::Final(QueryError::Internal(format!("decoding failed: {e}")))
                })?;
        decoded
            .map(|(partial, stats)| (Arc::new(partial), stats))
            .map_err(|error| Failure::Retry(error.to_string()))
    }
}

/// A backend's refusal as the frontend's error; retryable failures never get here.
fn refusal(error: &ClientError) -> QueryError {
    match error.code() {
        Some(Code::InvalidArgument) => QueryError::InvalidArgument(error.message()),
        Some(Code::ResourceExhausted) => QueryError::LimitExceeded(error.message()),
        Some(Code::Canceled) => QueryError::Canceled,
        _ => QueryError::Internal(format!("a query backend failed: {}", error.message())),
    }
}

#[async_trait]
impl QueryBackend for RemoteBackends {
    async fn execute(
        &self,
        task: &ReadTask,
        query: &query::Query,
        cancel: Arc<AtomicBool>,
    ) -> Result<(Arc<Partial>, QueryStats), QueryError> {
        let body = Bytes::from(prost::Message::encode_to_vec(&wire::ExecuteRequest {
            task: query::wire::encode_task(task, query),
        }));
        let mut attempts = self.attempts;
        let mut tried: Vec<String> = Vec::new();
        let mut last = None;
        // The backends as last read; when all of them failed, the backends that joined since
        // (a rolling restart's new processes are not in the view until the next heartbeat).
        for round in 0..2 {
            if attempts == 0 {
                break;
            }
            let view = if round == 0 {
                self.membership.view()
            } else {
                self.membership.refresh().await
            };
            for backend in self.candidates(&view, &tried) {
                if attempts == 0 {
                    break;
                }
                attempts -= 1;
                tried.push(backend.id.clone());
                if cancel.load(Ordering::Relaxed) {
                    return Err(QueryError::Canceled);
                }
                // A query given up (its client gone, or out of time) drops its call: the
                // backend sees the connection close and stops the task's work.
                let answer = tokio::select! {
                    answer = self.call(&backend, body.clone()) => answer,
                    () = canceled(&cancel) => return Err(QueryError::Canceled),
                };
                match answer {
                    Ok(answer) => return Ok(answer),
                    Err(Failure::Final(error)) => return Err(error),
                    Err(Failure::Retry(error)) => {
                        tracing::warn!(backend = %backend.id, %error, "query backend failed; trying another");
                        self.membership.suspect(&backend.id, QUERY_BACKEND);
                        last = Some(error);
                    }
                }
            }
        }
        if tried.is_empty() {
            return Err(QueryError::Unavailable(
                "no query backend is available: none has a live heartbeat in the metastore"
                    .to_owned(),
            ));
        }
        Err(QueryError::Unavailable(format!(
            "no query backend answered: {}",
            last.unwrap_or_else(|| "none was tried".to_owned())
        )))
    }
}

/// Resolves once `cancel` is set (checked every 20 ms).
async fn canceled(cancel: &AtomicBool) {
    while !cancel.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sets its flag when dropped: a task whose caller went away (the frontend closed the
/// connection, and the server dropped the call) stops its work.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// `querybackend.v1.QueryBackendService/Execute`: one read task of a frontend's plan.
pub async fn execute(
    call: Call,
    request: wire::ExecuteRequest,
) -> Result<wire::ExecuteResponse, ApiError> {
    let state: &Arc<AppState> = &call.state;
    let Some(backend) = state.backend.as_ref() else {
        return Err(ApiError::new(
            Code::Unavailable,
            "this process does not run a query backend",
        ));
    };
    let (task, query) =
        query::wire::decode_task(&request.task).map_err(|e| invalid(e.to_string()))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(Arc::clone(&cancel));
    let (partial, stats) = backend
        .execute(&task, &query, cancel)
        .await
        .map_err(ApiError::from)?;
    let result = tokio::task::spawn_blocking(move || query::wire::encode_result(&partial, &stats))
        .await
        .map_err(|e| ApiError::new(Code::Internal, format!("encoding failed: {e}")))?;
    Ok(wire::ExecuteResponse { result })
}
