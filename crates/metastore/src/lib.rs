//! The metastore: which blocks exist and what they hold, so that a query reads only the objects
//! (and the datasets inside them) that can match.
//!
//! It owns the [`Metastore`] trait and its two real backends, sharing one conformance suite:
//! [`SqliteMetastore`] (embedded, the single-binary default) and [`PostgresMetastore`] (an
//! existing, replicated database for a cluster). It does not own the objects themselves (the
//! `storage` crate) nor their format (`block`). A block is recorded only after its object is
//! stored; replacing blocks (compaction, retention) is one atomic step that leaves tombstones,
//! whose objects are deleted after a grace period. It also holds the compaction job queue:
//! jobs are planned from the live blocks, leased by one worker at a time with an expiry (so a
//! dead worker's job is leased again), and completed by the same atomic replacement. And it holds
//! the cluster's membership: each process records a heartbeat, and the live members are those
//! heard from within a lease (PostgreSQL's consistency, not a protocol of ours).

mod postgres;
mod sqlite;
mod types;

pub use postgres::{DEFAULT_POOL_SIZE, PostgresMetastore};
pub use sqlite::SqliteMetastore;
pub use types::{BlockMeta, BlockQuery, CompactionJob, DatasetMeta, JobLimits, Member, Tombstone};

use async_trait::async_trait;
use model::TenantId;
use ulid::Ulid;

#[derive(Debug, thiserror::Error)]
pub enum MetastoreError {
    #[error("block {0} is already recorded")]
    AlreadyExists(Ulid),
    #[error("block {0} is not recorded (or was already replaced)")]
    NotFound(Ulid),
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("compaction job {0} is not leased by this worker (lease lost or job gone)")]
    LeaseLost(Ulid),
    #[error("the metastore holds invalid data: {0}")]
    Corrupt(String),
    #[error("postgres connection pool: {0}")]
    Pool(String),
    #[error("metastore task failed: {0}")]
    Task(String),
}

/// The block index. Every call is atomic; a call that returns `Ok` is durable.
#[async_trait]
pub trait Metastore: Send + Sync + std::fmt::Debug {
    /// Records a stored block. A second call with the same id is refused.
    async fn add_block(&self, block: &BlockMeta) -> Result<(), MetastoreError>;

    /// Records a stored segment and, in the same step, the write requests (distributors' call
    /// ids) whose profiles it holds, so that a request retried elsewhere after its answer was
    /// lost is known as stored ([`Metastore::recorded_requests`]). A request already recorded
    /// with another segment (retried elsewhere while this writer was slow) stays recorded with
    /// that one, and this segment is recorded with it among its
    /// [`BlockMeta::duplicate_requests`], for readers to skip. Requests are forgotten after
    /// [`FORGET_REQUESTS_AFTER_MS`]; `now_ms` is the recording time.
    async fn add_segment(
        &self,
        block: &BlockMeta,
        requests: &[String],
        now_ms: i64,
    ) -> Result<(), MetastoreError>;

    /// Which of `requests` are recorded with a stored segment.
    async fn recorded_requests(&self, requests: &[String]) -> Result<Vec<String>, MetastoreError>;

    /// Live blocks with a dataset of the query's tenant that overlaps its time range and
    /// matches its filters; each block carries only those datasets. Ordered by block id.
    async fn query_blocks(&self, query: &BlockQuery) -> Result<Vec<BlockMeta>, MetastoreError>;

    /// The values of a dataset-level label (`service_name` or `__profile_type__`) in the live
    /// datasets of `tenant` overlapping `[start_ms, end_ms]`, sorted and distinct. Other names
    /// give an empty list (they live in the blocks' own series indexes).
    async fn label_values(
        &self,
        tenant: &TenantId,
        name: &str,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, MetastoreError>;

    /// Replaces the live blocks `old` by `new` in one step (compaction, retention): `new`
    /// becomes visible and `old` becomes tombstones stamped `now_ms`. Refused, changing
    /// nothing, when any of `old` is not live.
    async fn replace_blocks(
        &self,
        old: &[Ulid],
        new: &[BlockMeta],
        now_ms: i64,
    ) -> Result<(), MetastoreError>;

    /// Live blocks of one level across tenants, oldest (smallest id) first, at most `limit`:
    /// what compaction and retention work through.
    async fn live_blocks(&self, level: u32, limit: usize)
    -> Result<Vec<BlockMeta>, MetastoreError>;

    /// Plans compaction jobs over the live blocks of `level` that are in no job yet, oldest
    /// first: level 0 (segments, any tenants) in groups within `limits` (blocks and bytes),
    /// higher levels per tenant. A group smaller than `limits.min_blocks` waits unless it is
    /// full by bytes. Returns the jobs created.
    async fn plan_compaction(
        &self,
        level: u32,
        limits: JobLimits,
        now_ms: i64,
    ) -> Result<usize, MetastoreError>;

    /// Leases the oldest job whose lease is free or expired to `owner` until
    /// `now_ms + lease_ms`. Many workers may call this at once; each job goes to one of them.
    async fn lease_compaction_job(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> Result<Option<CompactionJob>, MetastoreError>;

    /// Finishes a leased job in one step: its blocks are replaced by `new` (as
    /// `replace_blocks`) and the job is removed. Refused with `LeaseLost` when `owner` no longer
    /// holds an unexpired lease, and with `NotFound` when one of its blocks is no longer live.
    async fn complete_compaction_job(
        &self,
        job: Ulid,
        owner: &str,
        new: &[BlockMeta],
        now_ms: i64,
    ) -> Result<(), MetastoreError>;

    /// Drops a job (its blocks become plannable again), whoever holds it.
    async fn drop_compaction_job(&self, job: Ulid) -> Result<(), MetastoreError>;

    /// Tombstones stamped before `before_ms`: blocks whose objects may now be deleted.
    async fn tombstones(&self, before_ms: i64) -> Result<Vec<Tombstone>, MetastoreError>;

    /// Forgets tombstones once their objects are deleted.
    async fn remove_tombstones(&self, ids: &[Ulid]) -> Result<(), MetastoreError>;

    /// Records `member` alive at `now_ms` (its `heartbeat_ms` is ignored), inserting or
    /// refreshing it; members not heard from for [`FORGET_MEMBERS_AFTER_MS`] are forgotten.
    async fn heartbeat(&self, member: &Member, now_ms: i64) -> Result<(), MetastoreError>;

    /// Members heard from at or after `since_ms`, ordered by id.
    async fn members(&self, since_ms: i64) -> Result<Vec<Member>, MetastoreError>;

    /// Takes a member out of the live set at once (it is shutting down), for good: the row
    /// stays as a tombstone (its heartbeat the negated `now_ms`) until it is forgotten, so a
    /// heartbeat of the leaving process still in flight cannot bring it back.
    async fn leave(&self, id: &str, now_ms: i64) -> Result<(), MetastoreError>;
}

/// How long a silent member stays listed (as not live) before it is forgotten.
/// How long a recorded write request is remembered: far longer than any retry takes.
pub const FORGET_REQUESTS_AFTER_MS: i64 = 3_600_000;

pub const FORGET_MEMBERS_AFTER_MS: i64 = 3_600_000;
