//! The read API the query side builds on: select profiles by tenant, profile type, label
//! matchers and time range, across every stored block, into one stack tree.
//!
//! Owns planning from the metastore (only blocks with a dataset of the tenant, the service and
//! the profile type that overlaps the range) and merging per-block selections. Rendering (flame
//! graphs, pprof) and the HTTP API live in the server.

use block::{BlockError, BlockReader, SelectQuery};
use metastore::{BlockQuery, Metastore, MetastoreError};
use model::label_names;
use model::{MatchOp, Matcher, TenantId, Tree};
use std::sync::Arc;
use storage::ObjectStore;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("metastore: {0}")]
    Metastore(#[from] MetastoreError),
    #[error("block {block}: {source}")]
    Block {
        block: ulid::Ulid,
        #[source]
        source: BlockError,
    },
}

/// What to read.
#[derive(Debug, Clone)]
pub struct ProfileQuery {
    pub tenant: TenantId,
    pub profile_type: String,
    pub matchers: Vec<Matcher>,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Only samples with one of these span ids; `None`: all samples.
    pub span_ids: Option<Vec<u64>>,
    /// Only stacks starting (root first) with these function names; empty: all.
    pub call_site: Vec<String>,
}

impl ProfileQuery {
    /// Every profile of `profile_type` matching `matchers` in `[start_ms, end_ms]`.
    pub fn new(
        tenant: TenantId,
        profile_type: String,
        matchers: Vec<Matcher>,
        start_ms: i64,
        end_ms: i64,
    ) -> ProfileQuery {
        ProfileQuery {
            tenant,
            profile_type,
            matchers,
            start_ms,
            end_ms,
            span_ids: None,
            call_site: Vec::new(),
        }
    }
}

/// How the points of one time bucket combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregation {
    #[default]
    Sum,
    Average,
}

/// What `SelectSeries` asks beyond the profiles.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesQuery {
    /// Labels that name a series; empty: everything is one series.
    pub group_by: Vec<String>,
    /// Bucket width in milliseconds (> 0).
    pub step_ms: i64,
    pub aggregation: Aggregation,
    /// Keep only the `limit` series with the largest totals.
    pub limit: Option<usize>,
}

/// One time series: its labels (the `group_by` ones present) and its non-empty buckets as
/// (bucket end in ms, value), in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    pub labels: Vec<(String, String)>,
    pub points: Vec<(i64, f64)>,
}

/// What a tenant has stored, for `GetProfileStats` and `AnalyzeQuery`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantStats {
    /// Oldest and newest profile times in ms, when there is data.
    pub range_ms: Option<(i64, i64)>,
    pub blocks: usize,
    pub datasets: usize,
    /// Bytes of the datasets (index, profiles and symbols).
    pub bytes: u64,
}

/// Counters of one query's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueryStats {
    pub blocks: usize,
    pub datasets: usize,
    pub profiles: usize,
}

/// Reads profiles from storage with the metastore as the index.
#[derive(Debug, Clone)]
pub struct Querier {
    store: Arc<dyn ObjectStore>,
    metastore: Arc<dyn Metastore>,
}

impl Querier {
    pub fn new(store: Arc<dyn ObjectStore>, metastore: Arc<dyn Metastore>) -> Querier {
        Querier { store, metastore }
    }

    /// The reader of a block or segment the metastore recorded.
    async fn open(&self, meta: &metastore::BlockMeta) -> Result<BlockReader, QueryError> {
        let key = storage::paths::object(meta.level, meta.shard, meta.tenant.as_ref(), meta.id);
        BlockReader::open(Arc::clone(&self.store), key)
            .await
            .map_err(|source| QueryError::Block {
                block: meta.id,
                source,
            })
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
    pub async fn series(
        &self,
        tenant: &TenantId,
        selectors: &[Vec<Matcher>],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<model::Labels>, QueryError> {
        let everything = [Vec::new()];
        let selectors = if selectors.is_empty() {
            &everything[..]
        } else {
            selectors
        };
        let plan = BlockQuery {
            tenant: tenant.clone(),
            start_ms,
            end_ms,
            service_names: Vec::new(),
            profile_type: None,
        };
        let blocks = self.metastore.query_blocks(&plan).await?;
        let mut out = std::collections::BTreeSet::new();
        let (start_nanos, end_nanos) = (
            start_ms.saturating_mul(1_000_000),
            end_ms.saturating_mul(1_000_000).saturating_add(999_999),
        );
        for meta in &blocks {
            let reader = self.open(meta).await?;
            for matchers in selectors {
                let found = reader
                    .series(tenant, matchers, start_nanos, end_nanos)
                    .await
                    .map_err(|source| QueryError::Block {
                        block: meta.id,
                        source,
                    })?;
                out.extend(found);
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Every matching profile merged into one pprof, as `SelectMergeProfile` returns it: one
    /// sample type, no labels, symbols deduplicated, metadata of the profile type and range.
    pub async fn select_profile(
        &self,
        query: &ProfileQuery,
    ) -> Result<formats::pprof::Profile, QueryError> {
        use formats::pprof::{MergeOptions, ProfileMerger, set_select_merge_metadata};
        let mut merger = ProfileMerger::new(MergeOptions {
            value_index: Some(0),
            drop_labels: true,
        });
        self.for_each_selection(query, |selection| {
            // Every part has the same (empty) sample type, so merging cannot fail.
            let _ = merger.merge(&selection.symbols.to_pprof(&selection.samples));
        })
        .await?;
        let mut profile = merger.finish();
        if let Ok(profile_type) = query.profile_type.parse::<model::ProfileType>() {
            set_select_merge_metadata(&mut profile, &profile_type, query.start_ms, query.end_ms);
        }
        Ok(profile)
    }

    /// The time series of the matching profiles, as Pyroscope's `SelectSeries` computes them:
    /// bucket ends at `start + k·step`; a profile at `t` goes to the first bucket end `>= t`;
    /// only non-empty buckets; series sorted by labels.
    pub async fn select_series(
        &self,
        query: &ProfileQuery,
        series: &SeriesQuery,
    ) -> Result<Vec<TimeSeries>, QueryError> {
        use std::collections::BTreeMap;
        let step = series.step_ms.max(1);
        // group labels → bucket end → (sum, profiles)
        // Bucket end → (sum of values, profiles).
        type Buckets = BTreeMap<i64, (f64, u64)>;
        let mut groups: BTreeMap<Vec<(String, String)>, Buckets> = BTreeMap::new();
        self.for_each_selection(query, |selection| {
            let keys: Vec<Vec<(String, String)>> = selection
                .series
                .iter()
                .map(|(labels, _)| {
                    series
                        .group_by
                        .iter()
                        .filter_map(|name| labels.get(name).map(|v| (name.clone(), v.to_owned())))
                        .collect()
                })
                .collect();
            for point in &selection.points {
                let Some(key) = keys.get(point.series) else {
                    continue;
                };
                let t = point.time_nanos.div_euclid(1_000_000);
                let offset = t.saturating_sub(query.start_ms).max(0);
                let bucket = query.start_ms.saturating_add(
                    (offset as u64)
                        .div_ceil(step as u64)
                        .saturating_mul(step as u64) as i64,
                );
                let slot = groups
                    .entry(key.clone())
                    .or_default()
                    .entry(bucket)
                    .or_insert((0.0, 0));
                slot.0 += point.value as f64;
                slot.1 += 1;
            }
        })
        .await?;
        let mut out: Vec<TimeSeries> = groups
            .into_iter()
            .map(|(labels, buckets)| TimeSeries {
                labels,
                points: buckets
                    .into_iter()
                    .map(|(t, (sum, count))| match series.aggregation {
                        Aggregation::Sum => (t, sum),
                        Aggregation::Average => (t, sum / count.max(1) as f64),
                    })
                    .collect(),
            })
            .collect();
        if let Some(limit) = series.limit
            && out.len() > limit
        {
            let total = |s: &TimeSeries| s.points.iter().map(|p| p.1).sum::<f64>();
            let mut ranked: Vec<(f64, usize)> =
                out.iter().enumerate().map(|(i, s)| (total(s), i)).collect();
            ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut keep: Vec<usize> = ranked.into_iter().take(limit).map(|(_, i)| i).collect();
            keep.sort_unstable();
            let mut index = 0;
            out.retain(|_| {
                let kept = keep.binary_search(&index).is_ok();
                index += 1;
                kept
            });
        }
        Ok(out)
    }

    /// What `tenant` has stored in `[start_ms, end_ms]`, from the metastore alone.
    pub async fn tenant_stats(
        &self,
        tenant: &TenantId,
        start_ms: i64,
        end_ms: i64,
        profile_type: Option<String>,
    ) -> Result<TenantStats, QueryError> {
        let plan = BlockQuery {
            tenant: tenant.clone(),
            start_ms,
            end_ms,
            service_names: Vec::new(),
            profile_type,
        };
        let mut stats = TenantStats::default();
        for block in self.metastore.query_blocks(&plan).await? {
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

    /// The merged stack tree of every matching profile, and what it took.
    pub async fn select_tree(
        &self,
        query: &ProfileQuery,
    ) -> Result<(Tree, QueryStats), QueryError> {
        let mut tree = Tree::new();
        let stats = self
            .for_each_selection(query, |selection| selection.add_to_tree(&mut tree))
            .await?;
        Ok((tree, stats))
    }

    /// Plans the blocks of `query` and hands every dataset's selection to `visit`.
    async fn for_each_selection(
        &self,
        query: &ProfileQuery,
        mut visit: impl FnMut(&block::Selection),
    ) -> Result<QueryStats, QueryError> {
        // Equality matchers on service_name narrow the planning to those services.
        let service_names: Vec<String> = query
            .matchers
            .iter()
            .filter(|m| m.name == label_names::SERVICE_NAME && m.op == MatchOp::Equal)
            .map(|m| m.value.clone())
            .collect();
        let plan = BlockQuery {
            tenant: query.tenant.clone(),
            start_ms: query.start_ms,
            end_ms: query.end_ms,
            service_names: if service_names.len() == 1 {
                service_names
            } else {
                Vec::new()
            },
            profile_type: Some(query.profile_type.clone()),
        };
        let blocks = self.metastore.query_blocks(&plan).await?;
        let select = SelectQuery {
            tenant: query.tenant.clone(),
            profile_type: query.profile_type.clone(),
            matchers: query.matchers.clone(),
            start_nanos: query.start_ms.saturating_mul(1_000_000),
            end_nanos: query
                .end_ms
                .saturating_mul(1_000_000)
                .saturating_add(999_999),
            span_ids: query.span_ids.clone(),
            call_site: query.call_site.clone(),
        };
        let mut stats = QueryStats::default();
        for meta in &blocks {
            let reader = self.open(meta).await?;
            let selections = reader
                .select(&select)
                .await
                .map_err(|source| QueryError::Block {
                    block: meta.id,
                    source,
                })?;
            stats.blocks += 1;
            for selection in &selections {
                stats.datasets += 1;
                stats.profiles += selection.profiles;
                visit(selection);
            }
        }
        Ok(stats)
    }
}
