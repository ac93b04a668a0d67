//! Compaction and retention, run inside the single binary (or as their own role later).
//!
//! Compaction takes the oldest level-0 segments (each holding datasets of many tenants) and
//! writes one level-1 block per tenant, re-interning symbols per dataset and keeping exact
//! duplicate profiles once; the new blocks become visible and the segments become tombstones in
//! one metastore step. Garbage collection deletes tombstoned objects after a grace period.
//! Retention turns blocks whose data is older than the tenant's period into tombstones.
//!
//! Work is planned and leased through the metastore's job queue, so several workers (or
//! processes) never compact the same blocks; a worker that dies loses its lease, and a worker
//! whose lease was taken over cannot record its result. Levels: segments (0) merge into
//! per-tenant blocks (1), which merge into larger ones (2).
//!
//! Memory: one job holds the datasets of at most `max_segments_per_job` blocks and
//! `max_bytes_per_job` bytes of block objects, so it follows the configured job size, not the
//! service: a dataset's stacks cost about 14 bytes per trie node (a million distinct stacks of
//! depth 8–31 in 83 MB of segments: 283 MiB, `benches/compaction.rs`), and a service with more
//! distinct stacks than one job holds is compacted by several jobs into several blocks.

use block::{BlockError, BlockReader, BlockWriter};
use metastore::{BlockMeta, Metastore, MetastoreError};
use model::TenantId;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use storage::object_store::{ObjectStore, PutMode, PutOptions};
use storage::{ObjectStoreExt, paths};
use tracing::{info, warn};
use ulid::Ulid;

#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("metastore: {0}")]
    Metastore(#[from] MetastoreError),
    #[error("object storage: {0}")]
    Storage(#[from] storage::object_store::Error),
    #[error("block {block}: {source}")]
    Block {
        block: Ulid,
        #[source]
        source: BlockError,
    },
    #[error("encoding a compacted block failed: {0}")]
    Encode(String),
}

#[derive(Debug, Clone)]
pub struct CompactorConfig {
    /// Segments merged by one job, at most.
    pub max_segments_per_job: usize,
    /// Bytes of block objects merged by one job, at most (a block larger than this is left as
    /// it is above level 0); this bounds a job's memory.
    pub max_bytes_per_job: u64,
    /// Segments waiting before a job runs (fewer: nothing to gain yet).
    pub min_segments_per_job: usize,
    /// How long replaced objects stay readable for queries already planned on them.
    pub grace_period: Duration,
    /// Retention when a tenant has no period of its own; `None` keeps data forever.
    pub default_retention: Option<Duration>,
    /// Per-tenant retention periods.
    pub tenant_retention: HashMap<TenantId, Duration>,
    /// Blocks of one tenant at a level ≥ 1 waiting before they merge into the next level.
    pub min_blocks_per_job: usize,
    /// Levels compacted: blocks reach at most this level.
    pub max_level: u32,
    /// How long a worker holds a job before another may take it over.
    pub lease: Duration,
    /// How often a running compactor ([`Compactor::start`]) looks for work.
    pub interval: Duration,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        CompactorConfig {
            max_segments_per_job: 64,
            max_bytes_per_job: 128 << 20,
            min_segments_per_job: 8,
            grace_period: Duration::from_secs(3600),
            default_retention: None,
            tenant_retention: HashMap::new(),
            min_blocks_per_job: 8,
            max_level: 2,
            lease: Duration::from_secs(600),
            interval: Duration::from_secs(30),
        }
    }
}

/// What one compaction job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
    /// Blocks (segments at level 0) merged.
    pub segments: usize,
    pub blocks: usize,
    pub profiles_in: u64,
    pub profiles_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

#[derive(Debug, Clone)]
pub struct Compactor {
    store: Arc<dyn ObjectStore>,
    metastore: Arc<dyn Metastore>,
    config: CompactorConfig,
    /// This worker's name in job leases.
    owner: String,
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Compactor {
    pub fn new(
        store: Arc<dyn ObjectStore>,
        metastore: Arc<dyn Metastore>,
        config: CompactorConfig,
    ) -> Compactor {
        Compactor {
            store,
            metastore,
            config,
            owner: format!("compactor-{}", Ulid::new()),
        }
    }

    fn key(meta: &BlockMeta) -> storage::Path {
        paths::object(meta.level, meta.shard, meta.tenant.as_ref(), meta.id)
    }

    /// Plans jobs where enough blocks wait and runs one leased job (lowest level first);
    /// `None` when there was nothing to do.
    pub async fn compact_once(
        &self,
        now_ms: i64,
    ) -> Result<Option<CompactionReport>, CompactError> {
        for level in 0..self.config.max_level {
            let min = if level == 0 {
                self.config.min_segments_per_job
            } else {
                self.config.min_blocks_per_job
            };
            let limits = metastore::JobLimits {
                min_blocks: min,
                max_blocks: self.config.max_segments_per_job,
                max_bytes: self.config.max_bytes_per_job,
            };
            self.metastore
                .plan_compaction(level, limits, now_ms)
                .await?;
        }
        let lease_ms = millis(self.config.lease);
        let Some(job) = self
            .metastore
            .lease_compaction_job(&self.owner, now_ms, lease_ms)
            .await?
        else {
            return Ok(None);
        };
        match self.run_job(&job, now_ms).await {
            Ok(report) => Ok(Some(report)),
            Err(CompactError::Metastore(MetastoreError::NotFound(block))) => {
                // A block of the job went away (retention): plan again from what is live.
                warn!(job = %job.id, %block, "compaction job lost a block, dropping it");
                self.metastore.drop_compaction_job(job.id).await?;
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    async fn run_job(
        &self,
        job: &metastore::CompactionJob,
        now_ms: i64,
    ) -> Result<CompactionReport, CompactError> {
        let mut report = CompactionReport {
            segments: job.blocks.len(),
            ..Default::default()
        };
        let mut writers: BTreeMap<TenantId, BlockWriter> = BTreeMap::new();
        for meta in &job.blocks {
            let reader = BlockReader::open(Arc::clone(&self.store), Self::key(meta))
                .await
                .map_err(|source| CompactError::Block {
                    block: meta.id,
                    source,
                })?;
            report.bytes_in += reader.size();
            // The copies of write requests this segment holds twice are not carried over.
            let skip = Arc::new(model::write_request::prefixes(&meta.duplicate_requests));
            for index in 0..reader.datasets().len() {
                let block = meta.id;
                let failed = move |source| CompactError::Block { block, source };
                let fetched = reader.fetch_dataset(index).await.map_err(failed)?;
                let tenant = TenantId::new(&reader.datasets()[index].tenant)
                    .map_err(|e| failed(BlockError::NotABlock(e.to_string())))?;
                let writer = writers
                    .remove(&tenant)
                    .unwrap_or_else(BlockWriter::for_compaction);
                // Decoding the dataset and re-interning it are CPU work: off the runtime.
                let skip = Arc::clone(&skip);
                let (writer, profiles) = tokio::task::spawn_blocking(move || {
                    let mut contents = fetched.decode()?;
                    contents.skip_profiles(&skip);
                    let mut writer = writer;
                    writer.add_dataset(&contents)?;
                    Ok::<_, BlockError>((writer, contents.profiles()))
                })
                .await
                .map_err(|e| CompactError::Encode(e.to_string()))?
                .map_err(failed)?;
                report.profiles_in += profiles as u64;
                writers.insert(tenant, writer);
            }
        }
        let mut new_blocks = Vec::new();
        for (tenant, writer) in writers {
            let encoded = tokio::task::spawn_blocking(move || writer.finish())
                .await
                .map_err(|e| CompactError::Encode(e.to_string()))?
                .map_err(|e| CompactError::Encode(e.to_string()))?;
            let id = Ulid::new();
            let meta = BlockMeta::new(
                id,
                0,
                job.level + 1,
                Some(tenant.clone()),
                encoded.bytes.len() as u64,
                encoded
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
                    .collect(),
            );
            report.profiles_out += encoded.datasets.iter().map(|d| d.profiles).sum::<u64>();
            report.bytes_out += encoded.bytes.len() as u64;
            let options = PutOptions {
                mode: PutMode::Create,
                ..Default::default()
            };
            self.store
                .put_opts(&paths::block(&tenant, id), encoded.bytes.into(), options)
                .await?;
            new_blocks.push(meta);
        }
        report.blocks = new_blocks.len();
        if let Err(error) = self
            .metastore
            .complete_compaction_job(job.id, &self.owner, &new_blocks, now_ms)
            .await
        {
            // The lease was lost (another worker took over) or a block vanished: our blocks
            // were never recorded, so remove them.
            for meta in &new_blocks {
                let _ = self.store.delete(&Self::key(meta)).await;
            }
            return Err(error.into());
        }
        info!(
            level = job.level,
            blocks_in = report.segments,
            blocks_out = report.blocks,
            bytes_in = report.bytes_in,
            bytes_out = report.bytes_out,
            "compaction job done"
        );
        Ok(report)
    }

    /// Deletes the objects of blocks tombstoned longer than the grace period ago; returns how
    /// many were removed.
    pub async fn collect_garbage(&self, now_ms: i64) -> Result<usize, CompactError> {
        let due = self
            .metastore
            .tombstones(now_ms.saturating_sub(millis(self.config.grace_period)))
            .await?;
        let mut removed = Vec::with_capacity(due.len());
        for tombstone in &due {
            let key = paths::object(
                tombstone.level,
                tombstone.shard,
                tombstone.tenant.as_ref(),
                tombstone.id,
            );
            match self.store.delete(&key).await {
                Ok(()) | Err(storage::object_store::Error::NotFound { .. }) => {
                    removed.push(tombstone.id)
                }
                Err(error) => {
                    warn!(block = %tombstone.id, %error, "deleting a replaced object failed")
                }
            }
        }
        self.metastore.remove_tombstones(&removed).await?;
        Ok(removed.len())
    }

    fn retention(&self, tenant: &TenantId) -> Option<Duration> {
        self.config
            .tenant_retention
            .get(tenant)
            .copied()
            .or(self.config.default_retention)
    }

    /// Tombstones every live block all of whose data is older than its tenant's retention
    /// period; returns how many.
    pub async fn apply_retention(&self, now_ms: i64) -> Result<usize, CompactError> {
        let mut expired = Vec::new();
        for level in 0..=self.config.max_level {
            for meta in self.metastore.live_blocks(level, usize::MAX >> 1).await? {
                let all_expired = !meta.datasets.is_empty()
                    && meta.datasets.iter().all(|d| {
                        self.retention(&d.tenant).is_some_and(|period| {
                            d.max_time_ms < now_ms.saturating_sub(millis(period))
                        })
                    });
                if all_expired {
                    expired.push(meta.id);
                }
            }
        }
        if !expired.is_empty() {
            self.metastore.replace_blocks(&expired, &[], now_ms).await?;
        }
        Ok(expired.len())
    }

    /// Runs compaction, retention and garbage collection every `interval` until the task is
    /// aborted.
    pub fn start(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker =
                tokio::time::interval(self.config.interval.max(Duration::from_millis(1)));
            loop {
                ticker.tick().await;
                let now = model::time::now_ms();
                if let Err(error) = self.compact_once(now).await {
                    warn!(%error, "compaction failed");
                }
                if let Err(error) = self.apply_retention(now).await {
                    warn!(%error, "retention failed");
                }
                if let Err(error) = self.collect_garbage(now).await {
                    warn!(%error, "garbage collection failed");
                }
            }
        })
    }
}
