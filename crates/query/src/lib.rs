//! The read API the query side builds on: select profiles by tenant, profile type, label
//! matchers and time range, across every stored block, into one stack tree.
//!
//! Owns planning from the metastore (only blocks with a dataset of the tenant, the service and
//! the profile type that overlaps the range) and merging per-block selections. Rendering (flame
//! graphs, pprof, series) and the HTTP API arrive with the server.

use block::{BlockError, BlockReader, SelectQuery};
use metastore::{BlockQuery, Metastore, MetastoreError};
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

    /// Profile type ids of `tenant` with data in `[start_ms, end_ms]`, sorted.
    pub async fn profile_types(
        &self,
        tenant: &TenantId,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<String>, QueryError> {
        Ok(self
            .metastore
            .label_values(tenant, metastore::PROFILE_TYPE, start_ms, end_ms)
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
            let key = storage::paths::object(meta.level, meta.shard, meta.tenant.as_ref(), meta.id);
            let reader = BlockReader::open(Arc::clone(&self.store), key)
                .await
                .map_err(|source| QueryError::Block {
                    block: meta.id,
                    source,
                })?;
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
            .filter(|m| m.name == "service_name" && m.op == MatchOp::Equal)
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
        };
        let mut stats = QueryStats::default();
        for meta in &blocks {
            let key = storage::paths::object(meta.level, meta.shard, meta.tenant.as_ref(), meta.id);
            let reader = BlockReader::open(Arc::clone(&self.store), key)
                .await
                .map_err(|source| QueryError::Block {
                    block: meta.id,
                    source,
                })?;
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
