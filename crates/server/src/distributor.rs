//! The distributor: the one ingest pipeline. Every ingest path (Push, `/ingest` in each of its
//! formats, OTLP) describes how to turn its request into a [`Batch`] of owned profiles
//! (decompressing or converting them), and [`distribute`] does the rest in the same order for
//! all of them: the conversion on a blocking thread, the memory budget, the tenant's ingestion
//! rate, the segment writer — this process's own (which decodes, validates, splits and interns,
//! also off the async runtime: [`crate::store`]) or the owners of the batch's keys among the
//! cluster's writers ([`crate::cluster::writers`]) — and the wait until every write is durable
//! before the client is answered.

use crate::AppState;
use crate::cluster::writers::{Calls, Writers};
use crate::error::{ApiError, Code};
use crate::labelset::AppName;
use crate::store;
use bytes::Bytes;
use formats::pprof;
use model::{Labels, TenantId};
use std::sync::Arc;
use std::time::Duration;

/// The distributor's settings.
#[derive(Debug, Clone)]
pub struct DistributorConfig {
    /// Memory budget of the pushes being processed (decoded profiles); more pushes wait.
    pub max_inflight_bytes: usize,
    /// Ingest requests handled at once; more wait with their bodies unread.
    pub max_concurrent_ingest: usize,
    /// How long a distributor waits for a segment writer's answer (the segment stored and
    /// recorded) before it sends the batch to the next owner.
    pub writer_timeout: Duration,
    /// How many segment writers a batch is offered to before the client gets 503.
    pub writer_attempts: usize,
    /// How long a first call to a segment writer waits for others to share its HTTP call
    /// (0: each call alone).
    pub writer_batch_window: Duration,
}

impl Default for DistributorConfig {
    fn default() -> Self {
        DistributorConfig {
            max_inflight_bytes: 256 << 20,
            max_concurrent_ingest: 256,
            writer_timeout: Duration::from_secs(10),
            writer_attempts: 3,
            writer_batch_window: Duration::from_millis(20),
        }
    }
}

/// The profiles of one request, owned, ready for a segment writer.
pub(crate) struct Batch {
    pub profiles: Vec<Incoming>,
    /// The uncompressed bytes the request counts against the tenant's ingestion rate.
    pub total: usize,
    /// The distributor's call this batch came in, when it came from another process.
    pub request: Option<String>,
}

impl Batch {
    /// A batch whose total is the sum of its profiles' sizes.
    pub fn summed(profiles: Vec<Incoming>) -> Batch {
        let total = profiles
            .iter()
            .fold(0usize, |sum, p| sum.saturating_add(p.size));
        Batch {
            profiles,
            total,
            request: None,
        }
    }
}

/// One profile of a batch.
pub(crate) struct Incoming {
    pub body: Body,
    /// Its size as limits and metrics count it (its uncompressed pprof bytes, or what a
    /// converter reports).
    pub size: usize,
    /// Its id (a UUID v4, as Pyroscope's distributor gives every pushed profile), chosen here
    /// so that a write retried on another segment writer stores the same profile.
    pub id: [u8; 16],
}

impl Incoming {
    /// A profile with a new id.
    pub fn new(body: Body, size: usize) -> Incoming {
        Incoming {
            body,
            size,
            id: *uuid::Uuid::new_v4().as_bytes(),
        }
    }
}

/// What a profile arrives as.
pub(crate) enum Body {
    /// An uncompressed pprof encoding and the request's series labels (Push).
    Pprof { bytes: Bytes, labels: Labels },
    /// An `/ingest` pprof upload: repaired, then labelled from its own sample types
    /// ([`crate::legacy_ingest::repair_upload`]).
    Upload { bytes: Bytes, upload: Upload },
    /// A converted profile (text formats, JFR, OTLP) and its labels.
    Profile {
        profile: pprof::Profile,
        labels: Labels,
    },
}

/// What an `/ingest` pprof upload's repairs and labels need from its request.
pub(crate) struct Upload {
    pub name: AppName,
    pub spy: String,
    /// `from`, the start of the profile when it has no time of its own.
    pub from_nanos: i64,
    /// The .NET repair applies (it depends on the form's `sample_type_config`).
    pub dotnet: bool,
    /// `sample_type_config` renames: sample type → display name.
    pub renames: Vec<(String, String)>,
}

/// Runs `convert` off the async runtime, then stores its batch for `tenant` and answers once
/// every profile of it is durable. Nothing of a batch is stored if any of its profiles is
/// invalid.
pub(crate) async fn distribute<F>(
    state: &Arc<AppState>,
    tenant: &TenantId,
    convert: F,
) -> Result<(), ApiError>
where
    F: FnOnce() -> Result<Batch, ApiError> + Send + 'static,
{
    let writers = match &state.writers {
        Writers::Local => return distribute_here(state, tenant, convert).await,
        Writers::Remote(writers) => writers,
    };
    // Converted and encoded in one go (one trip to the CPU pool): the batch is freed as its
    // calls are made, and they are what is held until the writers answer.
    let tenant_owned = tenant.clone();
    let (calls, total, count) = off_runtime(move || {
        let batch = convert()?;
        let (total, count) = (batch.total, batch.profiles.len());
        Ok((Calls::encode(&tenant_owned, batch)?, total, count))
    })
    .await?;
    if count == 0 {
        return Ok(());
    }
    let reservation = state.inflight.reserve_bytes(calls.bytes()).await;
    admit(state, tenant, total)?;
    // Encoded: the request's place goes to the next one.
    store::release_ingest_permit();
    let written = writers.send_all(calls).await;
    drop(reservation);
    written?;
    state.metrics.ingested(tenant, total, count as u64);
    Ok(())
}

/// The tenant's ingestion rate: its share of the live distributors'.
fn admit(state: &AppState, tenant: &TenantId, bytes: usize) -> Result<(), ApiError> {
    let distributors = state.membership.view().distributors;
    state
        .limits
        .admit(tenant, bytes, distributors)
        .inspect_err(|_| {
            state.metrics.discarded(tenant, "rate_limited");
        })
}

/// [`distribute`] to this process's own segment writer, in process.
async fn distribute_here<F>(
    state: &Arc<AppState>,
    tenant: &TenantId,
    convert: F,
) -> Result<(), ApiError>
where
    F: FnOnce() -> Result<Batch, ApiError> + Send + 'static,
{
    let batch = off_runtime(convert).await?;
    if batch.profiles.is_empty() {
        return Ok(());
    }
    // A batch decoded here takes about `DECODED_PER_ENCODED_BYTE` times its size until it is
    // in the head.
    let reservation = state.inflight.reserve(batch.total).await;
    admit(state, tenant, batch.total)?;
    let added = store::write(state, tenant, batch).await;
    // The profiles are in the head (or refused): the head's size limit bounds them from here.
    drop(reservation);
    store::release_ingest_permit();
    added?.durable(state, tenant).await
}

/// Ingest's CPU work (decompression, conversion, decoding, encoding) runs on a fixed pool of
/// one thread per core, fed through a bounded queue. Tokio's blocking pool, used before,
/// grew to hundreds of threads while requests waited for room in a full head, each thread with
/// its allocator's own heap of decoded profiles: 3.6 GiB of RSS under `scripts/load_bench.sh`
/// where the design before the pipeline took 179 MiB.
struct CpuPool {
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// Places in the queue: a job waits for one on the runtime, never blocking a thread.
    places: tokio::sync::Semaphore,
}

type Job = Box<dyn FnOnce() + Send>;

static CPU_POOL: std::sync::LazyLock<CpuPool> = std::sync::LazyLock::new(|| {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(threads);
    let queue = Arc::new(std::sync::Mutex::new(queue));
    for index in 0..threads {
        let queue = Arc::clone(&queue);
        let spawned = std::thread::Builder::new()
            .name(format!("ingest-cpu-{index}"))
            .spawn(move || {
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start an ingest thread");
        }
    }
    CpuPool {
        jobs,
        places: tokio::sync::Semaphore::new(threads),
    }
});

/// Runs CPU work (decompression, conversion, decoding) on the ingest pool, off the async
/// runtime; at most one job per core runs or waits in the queue, the others wait here.
pub(crate) async fn off_runtime<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    let pool = &*CPU_POOL;
    let place = pool
        .places
        .acquire()
        .await
        .map_err(|_| ApiError::new(Code::Internal, "ingest is shutting down"))?;
    let (done, answer) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        let _ = done.send(result);
    });
    // A place is held, so the queue has room and this does not block.
    pool.jobs
        .send(job)
        .map_err(|_| ApiError::new(Code::Internal, "ingest is shutting down"))?;
    let result = answer.await;
    drop(place);
    match result {
        Ok(Ok(result)) => result,
        _ => {
            tracing::error!("ingest work failed");
            Err(ApiError::new(
                Code::Internal,
                "ingest failed: internal error",
            ))
        }
    }
}
