//! A distributor's calls to one segment writer, coalesced: first attempts that come within a
//! short window of each other (at most [`MAX_CALLS`] calls or [`MAX_BYTES`] bytes) travel as
//! one `PushBatch` HTTP call, and each gets its own answer. HTTP's cost per call (syscalls on
//! both sides, a wake-up of both processes' threads), which `perf` found to be most of what
//! the distributor → writer hop adds, is then shared by the calls of a batch. Retries go on
//! their own (`writers.rs`), so a batch's failure is each of its calls' failure, and each is
//! offered to its key's next owner as before.
//!
//! One task per writer address gathers its batches and drives their HTTP calls (a
//! `FuturesUnordered`, no task per batch); the calls waiting in it are bounded by the
//! distributor's ingest places.

use super::writers::{PUSH_BATCH_PATH, PUSH_PATH};
use api::client::{ApiClient, ClientError};
use api::proto::segmentwriter::v1 as wire;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Calls in one batch, at most.
pub(crate) const MAX_CALLS: usize = 64;
/// Bytes of the calls in one batch, at most (a batch goes as soon as it reaches this).
pub(crate) const MAX_BYTES: usize = 8 << 20;
/// Calls queued for a writer's task before a caller waits to queue its own.
const QUEUE: usize = 256;

/// HTTP calls made to writers, and the distributor requests they carried.
#[derive(Debug, Default)]
pub(crate) struct CallCounts {
    pub http_calls: AtomicU64,
    pub requests: AtomicU64,
}

struct Pending {
    body: Bytes,
    answer: oneshot::Sender<Result<(), ClientError>>,
}

/// The queue of one writer's calls.
#[derive(Debug, Clone)]
pub(crate) struct Coalescer {
    calls: mpsc::Sender<Pending>,
    address: String,
}

impl Coalescer {
    /// Starts the task that batches calls to `client`'s writer over `window`.
    pub fn start(client: ApiClient, window: Duration, counts: Arc<CallCounts>) -> Coalescer {
        let (calls, queue) = mpsc::channel(QUEUE);
        let address = client.base().to_owned();
        tokio::spawn(run(client, window, queue, counts));
        Coalescer { calls, address }
    }

    /// Sends one encoded `PushRequest` with the calls that come within the window; its own
    /// answer.
    pub async fn push(&self, body: Bytes) -> Result<(), ClientError> {
        let (answer, wait) = oneshot::channel();
        self.calls
            .send(Pending { body, answer })
            .await
            .map_err(|_| self.stopped())?;
        wait.await.map_err(|_| self.stopped())?
    }

    fn stopped(&self) -> ClientError {
        ClientError::Transport {
            url: format!("{}{PUSH_BATCH_PATH}", self.address),
            cause: "the batching of calls to this writer stopped".to_owned(),
        }
    }
}

/// Gathers batches from `queue` and sends them, until the queue closes and every call is
/// answered.
async fn run(
    client: ApiClient,
    window: Duration,
    mut queue: mpsc::Receiver<Pending>,
    counts: Arc<CallCounts>,
) {
    let mut in_flight = FuturesUnordered::new();
    let mut batch: Vec<Pending> = Vec::new();
    let mut bytes = 0usize;
    let mut deadline = Instant::now();
    let mut open = true;
    loop {
        if !open && batch.is_empty() && in_flight.is_empty() {
            return;
        }
        let ready = tokio::select! {
            Some(()) = in_flight.next(), if !in_flight.is_empty() => false,
            next = queue.recv(), if open => match next {
                Some(call) => {
                    if batch.is_empty() {
                        deadline = Instant::now() + window;
                    }
                    bytes += call.body.len();
                    batch.push(call);
                    batch.len() >= MAX_CALLS || bytes >= MAX_BYTES
                }
                None => {
                    open = false;
                    true
                }
            },
            () = tokio::time::sleep_until(deadline), if !batch.is_empty() => true,
        };
        if ready && !batch.is_empty() {
            counts.http_calls.fetch_add(1, Ordering::Relaxed);
            counts
                .requests
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            in_flight.push(send(client.clone(), std::mem::take(&mut batch)));
            bytes = 0;
        }
    }
}

/// One call as it is (`Push`), several as a `PushBatch`; every caller gets its answer.
async fn send(client: ApiClient, mut batch: Vec<Pending>) {
    if batch.len() == 1
        && let Some(call) = batch.pop()
    {
        let answer = client
            .call_encoded::<wire::PushResponse>(PUSH_PATH, call.body)
            .await
            .map(|_| ());
        let _ = call.answer.send(answer);
        return;
    }
    let body = encode_batch(batch.iter().map(|call| &call.body));
    match client
        .call_encoded::<wire::PushBatchResponse>(PUSH_BATCH_PATH, body)
        .await
    {
        Ok(response) if response.results.len() == batch.len() => {
            for (call, result) in batch.into_iter().zip(response.results) {
                let _ = call.answer.send(outcome(&client, &result));
            }
        }
        Ok(response) => {
            let error = ClientError::Decode {
                path: PUSH_BATCH_PATH.to_owned(),
                cause: format!(
                    "{} results for a batch of {} calls",
                    response.results.len(),
                    batch.len()
                ),
            };
            for call in batch {
                let _ = call.answer.send(Err(error.clone()));
            }
        }
        Err(error) => {
            for call in batch {
                let _ = call.answer.send(Err(error.clone()));
            }
        }
    }
}

/// A `PushBatchRequest` of already encoded `PushRequest`s (field 1, each length-delimited):
/// no call is decoded or encoded again.
pub(crate) fn encode_batch<'a>(calls: impl Iterator<Item = &'a Bytes> + Clone) -> Bytes {
    let size: usize = calls.clone().map(|body| body.len() + 11).sum();
    let mut out = BytesMut::with_capacity(size);
    for body in calls {
        prost::encoding::encode_key(1, prost::encoding::WireType::LengthDelimited, &mut out);
        prost::encoding::encode_varint(body.len() as u64, &mut out);
        out.extend_from_slice(body);
    }
    out.freeze()
}

/// One call's answer within a batch, as the error its own call would have got.
fn outcome(client: &ApiClient, result: &wire::PushResult) -> Result<(), ClientError> {
    if result.code.is_empty() {
        return Ok(());
    }
    let code = api::Code::from_name(&result.code);
    let body = serde_json::json!({ "code": code.name(), "message": result.message });
    Err(ClientError::Server {
        path: format!("{}{PUSH_BATCH_PATH}", client.base()),
        status: code.status().as_u16(),
        body: Bytes::from(body.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn a_batch_is_its_calls_as_they_were_encoded() {
        let calls: Vec<wire::PushRequest> = (0..3)
            .map(|n| wire::PushRequest {
                tenant: format!("t{n}"),
                profiles: vec![wire::Profile {
                    size: n,
                    pprof: Bytes::from(vec![n as u8; 200 * n as usize]),
                    ..Default::default()
                }],
                request_id: format!("r{n}"),
                retry: false,
            })
            .collect();
        let encoded: Vec<Bytes> = calls
            .iter()
            .map(|c| Bytes::from(c.encode_to_vec()))
            .collect();
        let batch = encode_batch(encoded.iter());
        let decoded = wire::PushBatchRequest::decode(batch).expect("a PushBatchRequest");
        assert_eq!(decoded.requests, calls);
    }
}
