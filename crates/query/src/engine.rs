//! The engine every read API calls: plan a query, run its tasks concurrently on a backend,
//! merge their partial results as they arrive (off the async runtime), within the query's
//! limits. Dropping a query's future (its caller went away) stops it: its tasks are aborted
//! and running decodes see the cancel flag.

use crate::access::{DEFAULT_CACHE_BYTES, DataAccess};
use crate::backend::{DEFAULT_RESULTS_CACHE_BYTES, LocalBackend, QueryBackend};
use crate::error::QueryError;
use crate::fair::{DEFAULT_TASK_SLOTS, FairQueue};
use crate::partial::{
    Accumulator, HeatmapSeries, TimeSeries, finish_heatmap, finish_series, too_many_nodes,
};
use crate::plan::{self, BlockRef, Plan, ReadTask};
use crate::request::{
    HeatmapParams, Output, Query, QueryLimits, QueryStats, Selection, SeriesParams, TenantStats,
};
use metastore::{BlockQuery, Metastore};
use model::{Labels, MatchOp, Matcher, TenantId, Tree, label_names};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use storage::ObjectStore;
use tokio::task::JoinSet;

/// The engine's configuration (per process).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuerierConfig {
    /// Bytes of footers, series indexes, symbols and table metadata kept.
    pub cache_bytes: usize,
    /// Bytes of tasks' partial results kept.
    pub results_cache_bytes: usize,
    /// Whether long ranges read the compacted blocks' rollups (off: every profile is read; the
    /// answer is the same, which the tests and benchmarks check).
    pub use_rollups: bool,
    /// Read tasks running at once in this process, over all queries and tenants; more wait
    /// in a queue that serves tenants in turn.
    pub task_slots: usize,
}

impl Default for QuerierConfig {
    fn default() -> Self {
        QuerierConfig {
            cache_bytes: DEFAULT_CACHE_BYTES,
            results_cache_bytes: DEFAULT_RESULTS_CACHE_BYTES,
            use_rollups: true,
            task_slots: DEFAULT_TASK_SLOTS,
        }
    }
}

/// Reads profiles from storage, with the metastore as the index.
#[derive(Debug, Clone)]
pub struct Querier {
    metastore: Arc<dyn Metastore>,
    data: Arc<DataAccess>,
    backend: Arc<dyn QueryBackend>,
    use_rollups: bool,
    queue: FairQueue,
}

/// Sets the cancel flag when the query it belongs to is dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Querier {
    /// An engine running its tasks in this process.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        metastore: Arc<dyn Metastore>,
        config: QuerierConfig,
    ) -> Querier {
        let data = Arc::new(DataAccess::new(store, config.cache_bytes));
        let backend = Arc::new(LocalBackend::new(
            Arc::clone(&data),
            config.results_cache_bytes,
        ));
        Querier::with_backend(data, metastore, config, backend)
    }

    /// An engine running its tasks on `backend`; planning reads footers and indexes through
    /// `data` (which an in-process backend shares, so both use one set of caches).
    pub fn with_backend(
        data: Arc<DataAccess>,
        metastore: Arc<dyn Metastore>,
        config: QuerierConfig,
        backend: Arc<dyn QueryBackend>,
    ) -> Querier {
        Querier {
            metastore,
            data,
            backend,
            use_rollups: config.use_rollups,
            queue: FairQueue::new(config.task_slots),
        }
    }

    /// Read tasks waiting for a slot, over all queries.
    pub fn tasks_waiting(&self) -> usize {
        self.queue.waiting()
    }

    /// The storage access layer (its caches), shared with an in-process backend.
    pub fn data(&self) -> &Arc<DataAccess> {
        &self.data
    }

    /// The blocks of `tenant` that may hold `selection`'s datasets in `[lo_ms, hi_ms]`.
    async fn blocks(
        &self,
        selection: &Selection,
        lo_ms: i64,
        hi_ms: i64,
        profile_type: Option<String>,
    ) -> Result<Vec<metastore::BlockMeta>, QueryError> {
        // Equality matchers on service_name narrow the metastore's answer to that service.
        let services: Vec<String> = selection
            .matchers
            .iter()
            .filter(|m| m.name == label_names::SERVICE_NAME && m.op == MatchOp::Equal)
            .map(|m| m.value.clone())
            .collect();
        let query = BlockQuery {
            tenant: selection.tenant.clone(),
            start_ms: lo_ms,
            end_ms: hi_ms,
            service_names: if services.len() == 1 {
                services
            } else {
                Vec::new()
            },
            profile_type,
        };
        Ok(self.metastore.query_blocks(&query).await?)
    }

    /// The plan of `query`: what it reads, task by task.
    pub async fn plan(&self, query: &Query, limits: &QueryLimits) -> Result<Plan, QueryError> {
        let selection = &query.selection;
        let widen = match &query.output {
            Output::Series(p) => p.step_ms,
            Output::Heatmap(p) => p.step_ms,
            _ => 0,
        };
        let lo_ms = selection.range.start_ms.saturating_sub(widen);
        let blocks = self
            .blocks(
                selection,
                lo_ms,
                selection.range.end_ms,
                Some(selection.profile_type.clone()),
            )
            .await?;
        // Reading starts a step early for series and heatmaps (Pyroscope's first bucket).
        let mut planned = selection.clone();
        planned.range.start_ms = lo_ms;
        let planning = Arc::new(plan::Planning {
            matchers: plan::series_matchers(selection)?,
            selection: planned,
            output: query.output.clone(),
            use_rollups: self.use_rollups,
        });
        let mut set: JoinSet<Result<Vec<ReadTask>, QueryError>> = JoinSet::new();
        let mut pending = Vec::new();
        for meta in &blocks {
            let block = BlockRef::of(meta);
            for dataset in &meta.datasets {
                pending.push((block.clone(), dataset.clone()));
            }
        }
        let mut tasks = Vec::new();
        let mut pending = pending.into_iter();
        let parallelism = limits.parallelism.max(1);
        loop {
            while set.len() < parallelism {
                let Some((block, dataset)) = pending.next() else {
                    break;
                };
                let (data, planning) = (Arc::clone(&self.data), Arc::clone(&planning));
                set.spawn(async move {
                    let reader = data.reader(&block).await?;
                    let Some(index) = plan::dataset_index(
                        &reader,
                        &dataset.tenant,
                        &dataset.service_name,
                        dataset.offset,
                    ) else {
                        return Ok(Vec::new());
                    };
                    plan::plan_dataset(
                        &data,
                        &block,
                        (dataset.offset, dataset.length),
                        index,
                        &planning,
                    )
                    .await
                });
            }
            let Some(done) = set.join_next().await else {
                break;
            };
            tasks.extend(done.map_err(|e| QueryError::Internal(format!("planning failed: {e}")))??);
        }
        tasks.sort_by(|a, b| {
            (a.block.id, a.dataset, a.time_nanos).cmp(&(b.block.id, b.dataset, b.time_nanos))
        });
        let blocks_read: BTreeSet<ulid::Ulid> = tasks.iter().map(|t| t.block.id).collect();
        let datasets_read: BTreeSet<(ulid::Ulid, u32)> =
            tasks.iter().map(|t| (t.block.id, t.dataset)).collect();
        Ok(Plan {
            blocks: blocks_read.len(),
            datasets: datasets_read.len(),
            tasks,
        })
    }

    /// Plans and runs `query`, merging every task's result; the merged answer and what was read.
    async fn run(
        &self,
        query: Query,
        limits: &QueryLimits,
    ) -> Result<(Accumulator, QueryStats), QueryError> {
        let work = self.run_untimed(query, limits);
        match limits.timeout {
            Some(limit) => tokio::time::timeout(limit, work)
                .await
                .map_err(|_| QueryError::Timeout)?,
            None => work.await,
        }
    }

    async fn run_untimed(
        &self,
        query: Query,
        limits: &QueryLimits,
    ) -> Result<(Accumulator, QueryStats), QueryError> {
        let cancel = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(Arc::clone(&cancel));
        let plan = self.plan(&query, limits).await?;
        let mut stats = QueryStats {
            blocks: plan.blocks,
            datasets: plan.datasets,
            tasks: plan.tasks.len(),
            // Distinct row groups: two parts of one table (a range's two edges) may share one.
            row_groups_read: plan
                .tasks
                .iter()
                .flat_map(|t| {
                    t.row_groups
                        .iter()
                        .map(|&g| (t.block.id, t.dataset, t.table, g))
                })
                .collect::<std::collections::HashSet<_>>()
                .len(),
            row_groups_total: plan
                .tasks
                .iter()
                .map(|t| {
                    (
                        (t.block.id, t.dataset, t.table),
                        t.row_groups_total as usize,
                    )
                })
                .collect::<std::collections::HashMap<_, _>>()
                .values()
                .sum(),
            ..QueryStats::default()
        };
        let accumulator = Arc::new(Mutex::new(Accumulator::new(&query.output)));
        let query = Arc::new(query);
        let max_nodes = limits.max_nodes;
        let mut set: JoinSet<Result<QueryStats, QueryError>> = JoinSet::new();
        let mut tasks = plan.tasks.into_iter();
        let parallelism = limits.parallelism.max(1);
        loop {
            while set.len() < parallelism {
                let Some(task) = tasks.next() else {
                    break;
                };
                let (queue, backend, data, query, accumulator, cancel) = (
                    self.queue.clone(),
                    Arc::clone(&self.backend),
                    Arc::clone(&self.data),
                    Arc::clone(&query),
                    Arc::clone(&accumulator),
                    Arc::clone(&cancel),
                );
                set.spawn(async move {
                    let slot = queue.acquire(&query.selection.tenant).await;
                    let (partial, stats) = backend.execute(&task, &query, cancel).await?;
                    drop(slot);
                    data.cpu(move || {
                        let mut accumulator = accumulator
                            .lock()
                            .map_err(|_| QueryError::Internal("a merge failed".to_owned()))?;
                        accumulator.merge_shared(partial, max_nodes)
                    })
                    .await??;
                    Ok(stats)
                });
            }
            let Some(done) = set.join_next().await else {
                break;
            };
            let task_stats =
                done.map_err(|e| QueryError::Internal(format!("a query task failed: {e}")))??;
            stats.add(&task_stats);
        }
        let accumulator = Arc::try_unwrap(accumulator)
            .map_err(|_| QueryError::Internal("tasks outlived their query".to_owned()))?
            .into_inner()
            .map_err(|_| QueryError::Internal("a merge failed".to_owned()))?;
        Ok((accumulator, stats))
    }

    /// The merged stack tree of every selected profile, and what it took.
    pub async fn select_tree(
        &self,
        selection: &Selection,
        limits: &QueryLimits,
    ) -> Result<(Tree, QueryStats), QueryError> {
        let query = Query {
            selection: selection.clone(),
            output: Output::Tree,
            max_nodes: limits.max_nodes,
        };
        match self.run(query, limits).await? {
            (Accumulator::Tree(tree), stats) => {
                if tree.node_count() > limits.max_nodes {
                    return Err(too_many_nodes(limits.max_nodes));
                }
                Ok((tree, stats))
            }
            _ => Err(QueryError::Internal("not a tree".to_owned())),
        }
    }

    /// Every selected profile merged into one pprof, as `SelectMergeProfile` returns it: one
    /// sample type, no labels, symbols deduplicated, metadata of the profile type and range.
    pub async fn select_profile(
        &self,
        selection: &Selection,
        limits: &QueryLimits,
    ) -> Result<(formats::pprof::Profile, QueryStats), QueryError> {
        let query = Query {
            selection: selection.clone(),
            output: Output::Profile,
            max_nodes: limits.max_nodes,
        };
        let (accumulator, stats) = self.run(query, limits).await?;
        let Accumulator::Profile(merger, _) = accumulator else {
            return Err(QueryError::Internal("not a profile".to_owned()));
        };
        let profile_type = selection.profile_type.parse::<model::ProfileType>().ok();
        let range = selection.range;
        let profile = self
            .data
            .cpu(move || {
                let mut profile = merger.finish();
                if let Some(profile_type) = profile_type {
                    formats::pprof::set_select_merge_metadata(
                        &mut profile,
                        &profile_type,
                        range.start_ms,
                        range.end_ms,
                    );
                }
                profile
            })
            .await?;
        Ok((profile, stats))
    }

    /// The time series of the selected profiles, as Pyroscope's `SelectSeries` computes them:
    /// bucket ends at `start + k·step`; a profile at `t` goes to the first bucket end `>= t`
    /// (from a step before the start; one past the end holds the last partial step, which
    /// Pyroscope drops); only non-empty buckets; series sorted by labels.
    pub async fn select_series(
        &self,
        selection: &Selection,
        params: &SeriesParams,
        limits: &QueryLimits,
    ) -> Result<(Vec<TimeSeries>, QueryStats), QueryError> {
        if params.step_ms <= 0 {
            return Err(QueryError::InvalidArgument(
                "step must be >= 1ms".to_owned(),
            ));
        }
        let query = Query {
            selection: selection.clone(),
            output: Output::Series(params.clone()),
            max_nodes: limits.max_nodes,
        };
        let (accumulator, stats) = self.run(query, limits).await?;
        let Accumulator::Series(groups) = accumulator else {
            return Err(QueryError::Internal("not a series".to_owned()));
        };
        let params = params.clone();
        let series = self
            .data
            .cpu(move || finish_series(groups, &params))
            .await?;
        Ok((series, stats))
    }

    /// Per time slot, the distribution of the selected profiles' (or spans') totals over 20
    /// linear buckets between the smallest and the largest, with an exemplar per bucket.
    pub async fn select_heatmap(
        &self,
        selection: &Selection,
        params: &HeatmapParams,
        limits: &QueryLimits,
    ) -> Result<(Vec<HeatmapSeries>, QueryStats), QueryError> {
        if params.step_ms <= 0 {
            return Err(QueryError::InvalidArgument(
                "step must be >= 1ms".to_owned(),
            ));
        }
        let query = Query {
            selection: selection.clone(),
            output: Output::Heatmap(params.clone()),
            max_nodes: limits.max_nodes,
        };
        let (accumulator, stats) = self.run(query, limits).await?;
        let Accumulator::Heatmap {
            groups,
            labels,
            points,
            ..
        } = accumulator
        else {
            return Err(QueryError::Internal("not a heatmap".to_owned()));
        };
        let params = params.clone();
        let series = self
            .data
            .cpu(move || finish_heatmap(&groups, &labels, points, &params))
            .await?;
        Ok((series, stats))
    }

    /// Profile type ids of `tenant` with data in `[start_ms, end_ms]`, sorted.
    pub async fn profile_types(
        &self,
        tenant: &TenantId,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, QueryError> {
        Ok(self
            .metastore
            .label_values(tenant, label_names::PROFILE_TYPE, start_ms, end_ms)
            .await?)
    }

    /// The distinct label sets of `tenant`'s series matching any of `selectors` (each a list of
    /// matchers that must all hold; no selector: every series) in `[start_ms, end_ms]`, sorted.
    /// Reads only the series indexes (cached).
    pub async fn series(
        &self,
        tenant: &TenantId,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, QueryError> {
        let selectors: Vec<Vec<Matcher>> = if selectors.is_empty() {
            vec![Vec::new()]
        } else {
            selectors.to_vec()
        };
        let query = BlockQuery {
            tenant: tenant.clone(),
            start_ms,
            end_ms,
            service_names: Vec::new(),
            profile_type: None,
        };
        let blocks = self.metastore.query_blocks(&query).await?;
        let (lo, hi) = (
            start_ms.saturating_mul(1_000_000),
            end_ms.saturating_mul(1_000_000).saturating_add(999_999),
        );
        let selectors = Arc::new(selectors);
        let mut out = BTreeSet::new();
        let mut set: JoinSet<Result<Vec<Labels>, QueryError>> = JoinSet::new();
        let mut pending = blocks
            .iter()
            .flat_map(|meta| {
                meta.datasets
                    .iter()
                    .map(|d| (BlockRef::of(meta), d.clone()))
            })
            .collect::<Vec<_>>()
            .into_iter();
        let parallelism = crate::request::default_parallelism();
        loop {
            while set.len() < parallelism {
                let Some((block, dataset)) = pending.next() else {
                    break;
                };
                let (data, selectors, tenant) = (
                    Arc::clone(&self.data),
                    Arc::clone(&selectors),
                    tenant.clone(),
                );
                set.spawn(async move {
                    let reader = data.reader(&block).await?;
                    let Some(index) = plan::dataset_index(
                        &reader,
                        &tenant,
                        &dataset.service_name,
                        dataset.offset,
                    ) else {
                        return Ok(Vec::new());
                    };
                    let Some(info) = reader.datasets().get(index as usize) else {
                        return Ok(Vec::new());
                    };
                    if info.min_time_nanos > hi || info.max_time_nanos < lo {
                        return Ok(Vec::new());
                    }
                    let service_ok = |matchers: &[Matcher]| {
                        matchers
                            .iter()
                            .filter(|m| m.name == label_names::SERVICE_NAME)
                            .all(|m| m.matches(Some(&info.service_name)))
                    };
                    if !selectors.iter().any(|m| service_ok(m)) {
                        return Ok(Vec::new());
                    }
                    let series = data.series_index(&block, index).await?;
                    let mut found = Vec::new();
                    for matchers in selectors.iter() {
                        found.extend(
                            series
                                .select(matchers)
                                .into_iter()
                                .filter_map(|id| series.labels(id).cloned()),
                        );
                    }
                    Ok(found)
                });
            }
            let Some(done) = set.join_next().await else {
                break;
            };
            out.extend(
                done.map_err(|e| QueryError::Internal(format!("a query task failed: {e}")))??,
            );
        }
        Ok(out.into_iter().collect())
    }

    /// What `tenant` has stored in `[start_ms, end_ms]`, from the metastore alone.
    pub async fn tenant_stats(
        &self,
        tenant: &TenantId,
        start_ms: i64,
        end_ms: i64,
        profile_type: Option<String>,
    ) -> Result<TenantStats, QueryError> {
        let query = BlockQuery {
            tenant: tenant.clone(),
            start_ms,
            end_ms,
            service_names: Vec::new(),
            profile_type,
        };
        let mut stats = TenantStats::default();
        for block in self.metastore.query_blocks(&query).await? {
            let mut counted = false;
            for dataset in block.datasets.iter().filter(|d| &d.tenant == tenant) {
                counted = true;
                stats.datasets += 1;
                stats.bytes = stats.bytes.saturating_add(dataset.length);
                stats.range_ms = Some(match stats.range_ms {
                    None => (dataset.min_time_ms, dataset.max_time_ms),
                    Some((lo, hi)) => (lo.min(dataset.min_time_ms), hi.max(dataset.max_time_ms)),
                });
            }
            stats.blocks += usize::from(counted);
        }
        Ok(stats)
    }
}
