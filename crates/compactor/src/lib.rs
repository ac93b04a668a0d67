//! Compaction and retention, run inside the single binary (or as their own role later).
//!
//! Compaction takes the oldest level-0 segments (each holding datasets of many tenants) and
//! writes one level-1 block per tenant, re-interning symbols per dataset and keeping exact
//! duplicate profiles once; the new blocks become visible and the segments become tombstones in
//! one metastore step. Garbage collection deletes tombstoned objects after a grace period.
//! Retention turns blocks whose data is older than the tenant's period into tombstones.
//!
//! Memory: one job holds the datasets of at most `max_segments_per_job` segments (each bounded
//! by the segment writer's head size). Still to come: leased jobs for many workers, higher
//! levels, and spilling for datasets with millions of distinct stacks.

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
    /// Segments waiting before a job runs (fewer: nothing to gain yet).
    pub min_segments_per_job: usize,
    /// How long replaced objects stay readable for queries already planned on them.
    pub grace_period: Duration,
    /// Retention when a tenant has no period of its own; `None` keeps data forever.
    pub default_retention: Option<Duration>,
    /// Per-tenant retention periods.
    pub tenant_retention: HashMap<TenantId, Duration>,
}

impl Default for CompactorConfig {
    fn default() -> Self {
        CompactorConfig {
            max_segments_per_job: 64,
            min_segments_per_job: 8,
            grace_period: Duration::from_secs(3600),
            default_retention: None,
            tenant_retention: HashMap::new(),
        }
    }
}

/// What one compaction job did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactionReport {
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
        }
    }

    fn key(meta: &BlockMeta) -> storage::Path {
        paths::object(meta.level, meta.shard, meta.tenant.as_ref(), meta.id)
    }

    /// Runs one compaction job if enough segments wait; `None` when there was nothing to do.
    pub async fn compact_once(
        &self,
        now_ms: i64,
    ) -> Result<Option<CompactionReport>, CompactError> {
        let segments = self
            .metastore
            .live_blocks(0, self.config.max_segments_per_job)
            .await?;
        if segments.is_empty() || segments.len() < self.config.min_segments_per_job {
            return Ok(None);
        }
        let mut report = CompactionReport {
            segments: segments.len(),
            ..Default::default()
        };
        let mut writers: BTreeMap<TenantId, BlockWriter> = BTreeMap::new();
        for meta in &segments {
            let reader = BlockReader::open(Arc::clone(&self.store), Self::key(meta))
                .await
                .map_err(|source| CompactError::Block {
                    block: meta.id,
                    source,
                })?;
            report.bytes_in += reader.size();
            for index in 0..reader.datasets().len() {
                let contents =
                    reader
                        .read_dataset(index)
                        .await
                        .map_err(|source| CompactError::Block {
                            block: meta.id,
                            source,
                        })?;
                report.profiles_in += contents.profiles() as u64;
                let tenant =
                    TenantId::new(&contents.info.tenant).map_err(|e| CompactError::Block {
                        block: meta.id,
                        source: BlockError::NotABlock(e.to_string()),
                    })?;
                writers
                    .entry(tenant)
                    .or_insert_with(BlockWriter::for_compaction)
                    .add_dataset(&contents)
                    .map_err(|source| CompactError::Block {
                        block: meta.id,
                        source,
                    })?;
            }
        }
        let mut new_blocks = Vec::new();
        for (tenant, writer) in writers {
            let encoded = tokio::task::spawn_blocking(move || writer.finish())
                .await
                .map_err(|e| CompactError::Encode(e.to_string()))?
                .map_err(|e| CompactError::Encode(e.to_string()))?;
            let id = Ulid::new();
            let meta = encoded.meta(id, 0, 1, Some(tenant.clone()));
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
        let old: Vec<Ulid> = segments.iter().map(|s| s.id).collect();
        if let Err(error) = self
            .metastore
            .replace_blocks(&old, &new_blocks, now_ms)
            .await
        {
            // Someone else compacted these first: our blocks were never recorded, remove them.
            for meta in &new_blocks {
                let _ = self.store.delete(&Self::key(meta)).await;
            }
            return Err(error.into());
        }
        info!(
            segments = report.segments,
            blocks = report.blocks,
            bytes_in = report.bytes_in,
            bytes_out = report.bytes_out,
            "compacted segments"
        );
        Ok(Some(report))
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
        for level in [0, 1] {
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
    pub fn start(self, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                ticker.tick().await;
                let now = now_ms();
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

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
