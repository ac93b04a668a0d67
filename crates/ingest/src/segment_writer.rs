//! The segment writer: a head of pending writes per shard, flushed as one segment object.
//!
//! A write resolves only after the segment holding it is stored (a conditional create on a new
//! key, retried) and recorded in the metastore (retried): an acknowledged write survives any
//! crash, and a crash loses only writes not yet acknowledged. The metastore records a segment
//! only once its object is complete, so a restart never sees a half-written segment (an object
//! stored but never recorded is garbage for compaction to remove). Memory is bounded: the head
//! flushes at `max_head_bytes`, and while it flushes new writes wait in a bounded queue, whose
//! senders then wait in turn.

use block::BlockWriter;
use formats::pprof::SeriesProfile;
use metastore::{Metastore, MetastoreError};
use model::TenantId;
use std::sync::Arc;
use std::time::Duration;
use storage::object_store::{ObjectStore, PutMode, PutOptions};
use storage::paths;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use ulid::Ulid;

/// Settings of one segment writer.
#[derive(Debug, Clone)]
pub struct SegmentWriterConfig {
    pub shard: u32,
    /// Flush at least this often while writes are pending.
    pub flush_interval: Duration,
    /// Flush as soon as the head holds this many (decompressed profile) bytes.
    pub max_head_bytes: usize,
    /// Writes that may wait for the head; beyond this, senders wait (back-pressure).
    pub queue_depth: usize,
    /// Attempts to store a segment and to record it before the writes fail.
    pub attempts: u32,
    /// Time allowed for one attempt.
    pub attempt_timeout: Duration,
}

impl Default for SegmentWriterConfig {
    fn default() -> Self {
        SegmentWriterConfig {
            shard: 0,
            flush_interval: Duration::from_millis(500),
            max_head_bytes: 64 << 20,
            queue_depth: 1024,
            attempts: 5,
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a write was not acknowledged. Nothing of it is visible to queries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("the segment writer has stopped")]
    Closed,
    #[error("encoding segment {segment} failed: {reason}")]
    Encode { segment: Ulid, reason: String },
    #[error("storing segment {segment} failed after {attempts} attempts: {reason}")]
    Store {
        segment: Ulid,
        attempts: u32,
        reason: String,
    },
    #[error("recording segment {segment} failed after {attempts} attempts: {reason}")]
    Record {
        segment: Ulid,
        attempts: u32,
        reason: String,
    },
}

enum Request {
    Write {
        tenant: TenantId,
        series: Vec<SeriesProfile>,
        size: usize,
        ack: oneshot::Sender<Result<(), IngestError>>,
    },
    Flush(oneshot::Sender<()>),
}

/// A running segment writer for one shard.
#[derive(Debug)]
pub struct SegmentWriter {
    requests: mpsc::Sender<Request>,
    task: JoinHandle<()>,
    stats: Arc<FlushStats>,
}

/// Upper bounds (seconds) of the flush latency histogram buckets.
pub const FLUSH_BUCKETS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// What the writer's flushes took, for `/metrics`: a cumulative histogram of flush latency
/// (from the head's flush start to the metastore record) and failures.
#[derive(Debug, Default)]
pub struct FlushStats {
    /// Flushes that took at most `FLUSH_BUCKETS[i]` seconds (not cumulative; see `buckets`).
    counts: [std::sync::atomic::AtomicU64; FLUSH_BUCKETS.len()],
    count: std::sync::atomic::AtomicU64,
    micros: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
}

impl FlushStats {
    fn record(&self, elapsed: Duration, failed: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = FLUSH_BUCKETS.iter().position(|&bound| seconds <= bound) {
            self.counts[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.micros.fetch_add(
            u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            Relaxed,
        );
        if failed {
            self.failures.fetch_add(1, Relaxed);
        }
    }

    /// Cumulative counts per bucket of [`FLUSH_BUCKETS`], as Prometheus histograms are.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut total = 0;
        FLUSH_BUCKETS
            .iter()
            .zip(&self.counts)
            .map(|(&bound, count)| {
                total += count.load(Relaxed);
                (bound, total)
            })
            .collect()
    }

    /// (flushes, total seconds, failed flushes).
    pub fn totals(&self) -> (u64, f64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.count.load(Relaxed),
            self.micros.load(Relaxed) as f64 / 1e6,
            self.failures.load(Relaxed),
        )
    }
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Write { tenant, size, .. } => write!(f, "Write({tenant}, {size} bytes)"),
            Request::Flush(_) => f.write_str("Flush"),
        }
    }
}

impl SegmentWriter {
    /// Starts the writer's task on the current tokio runtime.
    pub fn start(
        config: SegmentWriterConfig,
        store: Arc<dyn ObjectStore>,
        metastore: Arc<dyn Metastore>,
    ) -> SegmentWriter {
        let (requests, receiver) = mpsc::channel(config.queue_depth.max(1));
        let stats = Arc::new(FlushStats::default());
        let task = tokio::spawn(run(config, store, metastore, receiver, Arc::clone(&stats)));
        SegmentWriter {
            requests,
            task,
            stats,
        }
    }

    /// The flush latency histogram and failure count.
    pub fn stats(&self) -> Arc<FlushStats> {
        Arc::clone(&self.stats)
    }

    /// Writes the series of one pushed profile; resolves once they are durable (or failed).
    /// `size` is what the write counts against the head's size limit.
    pub async fn write(
        &self,
        tenant: TenantId,
        series: Vec<SeriesProfile>,
        size: usize,
    ) -> Result<(), IngestError> {
        let (ack, done) = oneshot::channel();
        self.requests
            .send(Request::Write {
                tenant,
                series,
                size,
                ack,
            })
            .await
            .map_err(|_| IngestError::Closed)?;
        done.await.map_err(|_| IngestError::Closed)?
    }

    /// Flushes whatever is pending now and waits for it.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.requests.send(Request::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Stops accepting writes, flushes the pending ones, and waits for the task.
    pub async fn shutdown(self) {
        drop(self.requests);
        let _ = self.task.await;
    }
}

struct Head {
    writer: BlockWriter,
    acks: Vec<oneshot::Sender<Result<(), IngestError>>>,
    bytes: usize,
}

impl Head {
    fn new() -> Head {
        Head {
            writer: BlockWriter::new(),
            acks: Vec::new(),
            bytes: 0,
        }
    }
}

async fn run(
    config: SegmentWriterConfig,
    store: Arc<dyn ObjectStore>,
    metastore: Arc<dyn Metastore>,
    mut requests: mpsc::Receiver<Request>,
    stats: Arc<FlushStats>,
) {
    let mut head = Head::new();
    let mut ticker = tokio::time::interval(config.flush_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            request = requests.recv() => match request {
                Some(Request::Write { tenant, series, size, ack }) => {
                    for one in &series {
                        head.writer.add(&tenant, one);
                    }
                    head.bytes = head.bytes.saturating_add(size);
                    head.acks.push(ack);
                    if head.bytes >= config.max_head_bytes {
                        flush(&config, &store, &*metastore, &mut head, &stats).await;
                    }
                }
                Some(Request::Flush(done)) => {
                    flush(&config, &store, &*metastore, &mut head, &stats).await;
                    let _ = done.send(());
                }
                None => {
                    flush(&config, &store, &*metastore, &mut head, &stats).await;
                    return;
                }
            },
            _ = ticker.tick() => {
                if !head.acks.is_empty() {
                    flush(&config, &store, &*metastore, &mut head, &stats).await;
                }
            }
        }
    }
}

async fn flush(
    config: &SegmentWriterConfig,
    store: &Arc<dyn ObjectStore>,
    metastore: &dyn Metastore,
    head: &mut Head,
    stats: &FlushStats,
) {
    let pending = std::mem::replace(head, Head::new());
    if pending.acks.is_empty() {
        return;
    }
    let outcome = if pending.writer.is_empty() {
        Ok(()) // only profiles without samples: nothing to store
    } else {
        let started = std::time::Instant::now();
        let outcome = persist(config, store, metastore, pending.writer).await;
        stats.record(started.elapsed(), outcome.is_err());
        outcome
    };
    if let Err(error) = &outcome {
        warn!(shard = config.shard, writes = pending.acks.len(), %error, "segment flush failed");
    }
    for ack in pending.acks {
        let _ = ack.send(outcome.clone());
    }
}

async fn persist(
    config: &SegmentWriterConfig,
    store: &Arc<dyn ObjectStore>,
    metastore: &dyn Metastore,
    writer: BlockWriter,
) -> Result<(), IngestError> {
    let segment = Ulid::new();
    let encoded = tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(|e| IngestError::Encode {
            segment,
            reason: e.to_string(),
        })?
        .map_err(|e| IngestError::Encode {
            segment,
            reason: e.to_string(),
        })?;
    let meta = encoded.meta(segment, config.shard, 0, None);
    let key = paths::segment(config.shard, segment);
    let payload = bytes_payload(encoded.bytes);
    let mut last_error = String::new();
    let mut stored = false;
    for attempt in 1..=config.attempts {
        let options = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match tokio::time::timeout(
            config.attempt_timeout,
            store.put_opts(&key, payload.clone(), options),
        )
        .await
        {
            Ok(Ok(_)) => stored = true,
            // A fresh key exists only if an earlier attempt of ours landed but its reply was lost.
            Ok(Err(storage::object_store::Error::AlreadyExists { .. })) if attempt > 1 => {
                stored = true
            }
            Ok(Err(error)) => last_error = error.to_string(),
            Err(_) => last_error = format!("timed out after {:?}", config.attempt_timeout),
        }
        if stored {
            break;
        }
        debug!(shard = config.shard, %segment, attempt, "segment upload failed, retrying");
        tokio::time::sleep(backoff(attempt)).await;
    }
    if !stored {
        return Err(IngestError::Store {
            segment,
            attempts: config.attempts,
            reason: last_error,
        });
    }
    for attempt in 1..=config.attempts {
        match tokio::time::timeout(config.attempt_timeout, metastore.add_block(&meta)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(MetastoreError::AlreadyExists(_))) if attempt > 1 => return Ok(()),
            Ok(Err(error)) => last_error = error.to_string(),
            Err(_) => last_error = format!("timed out after {:?}", config.attempt_timeout),
        }
        tokio::time::sleep(backoff(attempt)).await;
    }
    Err(IngestError::Record {
        segment,
        attempts: config.attempts,
        reason: last_error,
    })
}

fn bytes_payload(bytes: Vec<u8>) -> storage::object_store::PutPayload {
    storage::object_store::PutPayload::from(bytes)
}

/// 50 ms, 100 ms, 200 ms, … capped at 2 s.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(50u64.saturating_mul(1 << attempt.min(6))).min(Duration::from_secs(2))
}
