//! The segment writer: a head of pending writes per shard, flushed as one segment object.
//!
//! A write is added to the head by the task that makes it (interning its series while they are
//! still in that thread's cache, and freeing them there), then waits for its segment. It
//! resolves only after the segment holding it is stored (a conditional create on a new key,
//! retried) and recorded in the metastore (retried): an acknowledged write survives any crash,
//! and a crash loses only writes not yet acknowledged. The metastore records a segment only
//! once its object is complete, so a restart never sees a half-written segment (an object
//! stored but never recorded is garbage for compaction to remove). Memory is bounded: the head
//! flushes at `max_head_bytes`, writes keep being added to a fresh head while one flushes, and
//! when two heads' worth waits for storage, new writes wait for room (back-pressure).

use block::BlockWriter;
use formats::pprof::{Prepared, SeriesProfile};
use metastore::{Metastore, MetastoreError};
use model::TenantId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use storage::object_store::{ObjectStore, PutMode, PutOptions};
use storage::paths;
use tokio::sync::{Mutex, Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};
use ulid::Ulid;

/// Settings of one segment writer.
#[derive(Debug, Clone)]
pub struct SegmentWriterConfig {
    pub shard: u32,
    /// Flush at least this often while writes are pending.
    pub flush_interval: Duration,
    /// Flush as soon as the head holds this many (decompressed profile) bytes. At most twice
    /// this waits for storage (a head flushing and the next one filling); beyond it, writes
    /// wait for room.
    pub max_head_bytes: usize,
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
    #[error(
        "storing segment {segment} in object storage failed after {attempts} attempts: {reason}"
    )]
    Store {
        segment: Ulid,
        attempts: u32,
        reason: String,
    },
    #[error(
        "recording segment {segment} in the metastore failed after {attempts} attempts: {reason}"
    )]
    Record {
        segment: Ulid,
        attempts: u32,
        reason: String,
    },
}

/// What the writer's task is asked besides its interval: flush now (and say when done).
struct FlushRequest(oneshot::Sender<()>);

/// A running segment writer for one shard.
#[derive(Debug)]
pub struct SegmentWriter {
    shared: Arc<Shared>,
    flushes: mpsc::Sender<FlushRequest>,
    task: JoinHandle<()>,
    stats: Arc<FlushStats>,
}

/// The head and what the writing tasks and the flushing task share.
#[derive(Debug)]
struct Shared {
    head: Mutex<Head>,
    /// Room for the bytes of writes not yet stored, in KiB: two heads' worth.
    room: Arc<Semaphore>,
    room_kib: u32,
    max_head_bytes: usize,
    /// Wakes the flushing task when the head is full.
    full: Notify,
    /// Set once the writer stops taking writes, before its last head is taken: a write that
    /// sees it unset under the head's lock is in that head.
    closed: AtomicBool,
    /// The write requests of the head being flushed (set and cleared under the head's lock).
    flushing: std::sync::Mutex<Vec<String>>,
}

impl Shared {
    /// Takes the head to flush it, noting its requests as being flushed.
    async fn take_head(&self) -> Head {
        let mut head = self.head.lock().await;
        let taken = std::mem::replace(&mut *head, Head::new());
        if let Ok(mut flushing) = self.flushing.lock() {
            flushing.clone_from(&taken.requests);
        }
        taken
    }

    /// Forgets the requests of the head just flushed.
    async fn flushed(&self) {
        let _head = self.head.lock().await;
        if let Ok(mut flushing) = self.flushing.lock() {
            flushing.clear();
        }
    }
}

impl Shared {
    /// Whether `head` should be flushed now: it holds `max_head_bytes`, or half the room (one
    /// head's worth; many small writes round up to more room than their bytes).
    fn is_full(&self, head: &Head) -> bool {
        head.bytes >= self.max_head_bytes || head.room_kib >= self.room_kib / 2
    }
}

/// A write added to the head, waiting for its segment to be stored and recorded.
#[derive(Debug)]
pub struct PendingWrite(oneshot::Receiver<Result<(), IngestError>>);

impl PendingWrite {
    /// Resolves once the write is durable (or its segment failed).
    pub async fn durable(self) -> Result<(), IngestError> {
        self.0.await.map_err(|_| IngestError::Closed)?
    }
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

impl SegmentWriter {
    /// Starts the writer's task on the current tokio runtime.
    pub fn start(
        config: SegmentWriterConfig,
        store: Arc<dyn ObjectStore>,
        metastore: Arc<dyn Metastore>,
    ) -> SegmentWriter {
        let room_kib = u32::try_from(config.max_head_bytes.saturating_mul(2) / 1024)
            .unwrap_or(u32::MAX)
            .clamp(1, Semaphore::MAX_PERMITS as u32);
        let shared = Arc::new(Shared {
            head: Mutex::new(Head::new()),
            room: Arc::new(Semaphore::new(room_kib as usize)),
            room_kib,
            max_head_bytes: config.max_head_bytes,
            full: Notify::new(),
            closed: AtomicBool::new(false),
            flushing: std::sync::Mutex::new(Vec::new()),
        });
        let (flushes, receiver) = mpsc::channel(16);
        let stats = Arc::new(FlushStats::default());
        let task = tokio::spawn(run(
            config,
            store,
            metastore,
            Arc::clone(&shared),
            receiver,
            Arc::clone(&stats),
        ));
        SegmentWriter {
            shared,
            flushes,
            task,
            stats,
        }
    }

    /// The flush latency histogram and failure count.
    pub fn stats(&self) -> Arc<FlushStats> {
        Arc::clone(&self.stats)
    }

    /// Adds the series of one pushed profile to the head, waiting for room when two heads'
    /// worth is waiting for storage; the profile is freed when this returns. `size` is what
    /// the write counts against the head's size limit. The profile gets a new random id
    /// (a UUID v4, as Pyroscope's distributor gives every pushed profile), which all its series
    /// and sample types share: the id exemplars and `profile_id_selector` name it by.
    pub async fn add(
        &self,
        tenant: &TenantId,
        profile: Prepared<'_>,
        size: usize,
    ) -> Result<PendingWrite, IngestError> {
        self.add_with_id(
            tenant,
            profile,
            size,
            *uuid::Uuid::new_v4().as_bytes(),
            None,
        )
        .await
    }

    /// As [`SegmentWriter::add`], with the id the caller chose (a distributor's, so that a
    /// profile written twice after a retry is recognised as one) and the distributor's write
    /// request it came in, which the segment is recorded with (`Metastore::add_segment`).
    pub async fn add_with_id(
        &self,
        tenant: &TenantId,
        profile: Prepared<'_>,
        size: usize,
        id: [u8; 16],
        request: Option<&str>,
    ) -> Result<PendingWrite, IngestError> {
        self.add_request(tenant, vec![(profile, size, id)], request)
            .await
    }

    /// As [`SegmentWriter::add_with_id`] for every profile (with its size and id) of one
    /// distributor write request at once: they go into one head, so that the request is in
    /// one segment, and whether it is recorded (a retry's question) is all or nothing.
    pub async fn add_request(
        &self,
        tenant: &TenantId,
        profiles: Vec<(Prepared<'_>, usize, [u8; 16])>,
        request: Option<&str>,
    ) -> Result<PendingWrite, IngestError> {
        let size = profiles.iter().map(|(_, size, _)| size).sum::<usize>();
        let kib = u32::try_from(size / 1024 + 1)
            .unwrap_or(u32::MAX)
            .min(self.shared.room_kib);
        let room = Arc::clone(&self.shared.room)
            .acquire_many_owned(kib)
            .await
            .map_err(|_| IngestError::Closed)?;
        let (ack, done) = oneshot::channel();
        {
            let mut head = self.shared.head.lock().await;
            if self.shared.closed.load(Ordering::Acquire) {
                return Err(IngestError::Closed);
            }
            for (profile, _, id) in &profiles {
                head.writer.add_profile(tenant, profile, *id);
            }
            if let Some(request) = request
                && head.requests.last().is_none_or(|last| last != request)
            {
                head.requests.push(request.to_owned());
            }
            head.bytes = head.bytes.saturating_add(size);
            head.room_kib = head.room_kib.saturating_add(kib);
            head.acks.push(ack);
            head.room.push(room);
            if self.shared.is_full(&head) {
                self.shared.full.notify_one();
            }
        }
        drop(profiles);
        Ok(PendingWrite(done))
    }

    /// Writes the series of one pushed profile; resolves once they are durable (or failed).
    pub async fn write(
        &self,
        tenant: TenantId,
        series: Vec<SeriesProfile>,
        size: usize,
    ) -> Result<(), IngestError> {
        self.add(&tenant, Prepared::Series(series), size)
            .await?
            .durable()
            .await
    }

    /// Whether a write of distributor request `request` is pending here: added and not yet
    /// stored and recorded (or failed). A retry of such a request waits for it
    /// ([`SegmentWriter::flush`]) rather than adding the profiles a second time.
    pub async fn holds_request(&self, request: &str) -> bool {
        let head = self.shared.head.lock().await;
        head.requests.iter().any(|r| r == request)
            || self
                .shared
                .flushing
                .lock()
                .is_ok_and(|flushing| flushing.iter().any(|r| r == request))
    }

    /// Flushes whatever is pending now and waits for it.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.flushes.send(FlushRequest(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Stops accepting writes, flushes the pending ones, and waits for the task.
    pub async fn shutdown(self) {
        drop(self.flushes);
        let _ = self.task.await;
    }
}

#[derive(Debug)]
struct Head {
    writer: BlockWriter,
    acks: Vec<oneshot::Sender<Result<(), IngestError>>>,
    /// The room the head's writes hold, given back once they are stored (or failed).
    room: Vec<OwnedSemaphorePermit>,
    /// The KiB of room that holds (each write rounds its size up to the next KiB).
    room_kib: u32,
    bytes: usize,
    /// The distributors' write requests whose profiles the head holds.
    requests: Vec<String>,
}

impl Head {
    fn new() -> Head {
        Head {
            writer: BlockWriter::new(),
            acks: Vec::new(),
            room: Vec::new(),
            room_kib: 0,
            bytes: 0,
            requests: Vec::new(),
        }
    }
}

async fn run(
    config: SegmentWriterConfig,
    store: Arc<dyn ObjectStore>,
    metastore: Arc<dyn Metastore>,
    shared: Arc<Shared>,
    mut flushes: mpsc::Receiver<FlushRequest>,
    stats: Arc<FlushStats>,
) {
    let mut ticker = tokio::time::interval(config.flush_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let done = tokio::select! {
            request = flushes.recv() => match request {
                Some(FlushRequest(done)) => Some(done),
                None => {
                    // Stopping: no write is added after this head is taken.
                    shared.closed.store(true, Ordering::Release);
                    let head = shared.take_head().await;
                    shared.room.close();
                    flush(&config, &store, &*metastore, head, &stats, &shared).await;
                    return;
                }
            },
            () = shared.full.notified() => {
                // A wake-up left by a write into a head already taken: not a reason to flush.
                if !shared.is_full(&*shared.head.lock().await) {
                    continue;
                }
                None
            }
            _ = ticker.tick() => None,
        };
        let head = shared.take_head().await;
        flush(&config, &store, &*metastore, head, &stats, &shared).await;
        if let Some(done) = done {
            let _ = done.send(());
        }
    }
}

async fn flush(
    config: &SegmentWriterConfig,
    store: &Arc<dyn ObjectStore>,
    metastore: &dyn Metastore,
    pending: Head,
    stats: &FlushStats,
    shared: &Shared,
) {
    if pending.acks.is_empty() {
        shared.flushed().await;
        return;
    }
    let outcome = if pending.writer.is_empty() {
        Ok(()) // only profiles without samples: nothing to store
    } else {
        let started = std::time::Instant::now();
        let outcome = persist(config, store, metastore, pending.writer, pending.requests).await;
        stats.record(started.elapsed(), outcome.is_err());
        outcome
    };
    if let Err(error) = &outcome {
        warn!(shard = config.shard, writes = pending.acks.len(), %error, "segment flush failed");
    }
    // Its requests are no longer held by the time their writes are answered.
    shared.flushed().await;
    for ack in pending.acks {
        let _ = ack.send(outcome.clone());
    }
    drop(pending.room);
}

async fn persist(
    config: &SegmentWriterConfig,
    store: &Arc<dyn ObjectStore>,
    metastore: &dyn Metastore,
    writer: BlockWriter,
    mut requests: Vec<String>,
) -> Result<(), IngestError> {
    requests.sort_unstable();
    requests.dedup();
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
    let meta = block_meta(&encoded, segment, config.shard, 0, None);
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
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let record = metastore.add_segment(&meta, &requests, now_ms);
        match tokio::time::timeout(config.attempt_timeout, record).await {
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

/// What the metastore records of an encoded block once it is stored as `id`.
pub fn block_meta(
    encoded: &block::EncodedBlock,
    id: Ulid,
    shard: u32,
    level: u32,
    tenant: Option<TenantId>,
) -> metastore::BlockMeta {
    let datasets = encoded
        .datasets
        .iter()
        .map(|d| {
            metastore::DatasetMeta::from_nanos(
                d.tenant.clone(),
                d.service_name.clone(),
                d.min_time_nanos,
                d.max_time_nanos,
                d.profile_types.clone(),
                d.offset,
                d.length,
            )
        })
        .collect();
    metastore::BlockMeta::new(
        id,
        shard,
        level,
        tenant,
        encoded.bytes.len() as u64,
        datasets,
    )
}
