//! Where read tasks run. [`QueryBackend`] is the seam: the query engine hands it tasks and
//! merges what comes back, so a backend may run them in this process ([`LocalBackend`]) or in
//! another (the cluster's query backends, which get the same serialisable tasks).

use crate::access::DataAccess;
use crate::cache::ByteCache;
use crate::error::QueryError;
use crate::exec::{self, TaskData};
use crate::partial::Partial;
use crate::plan::ReadTask;
use crate::request::{Output, Query, QueryStats};
use async_trait::async_trait;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Runs read tasks.
#[async_trait]
pub trait QueryBackend: Send + Sync + std::fmt::Debug {
    /// Runs `task` of `query`: its partial result and what it read. `cancel` is set when the
    /// query's caller went away; a task may stop early then.
    async fn execute(
        &self,
        task: &ReadTask,
        query: &Query,
        cancel: Arc<AtomicBool>,
    ) -> Result<(Arc<Partial>, QueryStats), QueryError>;
}

/// The partial result cache's size when none is configured.
pub const DEFAULT_RESULTS_CACHE_BYTES: usize = 64 << 20;

/// Runs tasks in this process, on the shared [`DataAccess`], keeping the partial results of
/// stack tasks (trees and profiles) in a cache bounded in bytes: blocks never change, so the
/// same task of the same query gives the same answer.
#[derive(Debug)]
pub struct LocalBackend {
    data: Arc<DataAccess>,
    results: ByteCache<String, (Arc<Partial>, QueryStats)>,
}

impl LocalBackend {
    pub fn new(data: Arc<DataAccess>, results_cache_bytes: usize) -> LocalBackend {
        LocalBackend {
            data,
            results: ByteCache::new(results_cache_bytes),
        }
    }

    /// The cache key of a task's result, when it can be cached: everything the result depends
    /// on (the task says what is read; the selection's filters and the output what is made of
    /// it). Time series and heatmaps depend on the query's range too, so they are not cached.
    fn key(task: &ReadTask, query: &Query) -> Option<String> {
        if !matches!(query.output, Output::Tree | Output::Profile) {
            return None;
        }
        let selection = &query.selection;
        serde_json::to_string(&(
            task,
            &selection.profile_type,
            &selection.span_ids,
            &selection.profile_ids,
            &selection.call_site,
            &query.output,
        ))
        .ok()
    }
}

#[async_trait]
impl QueryBackend for LocalBackend {
    async fn execute(
        &self,
        task: &ReadTask,
        query: &Query,
        cancel: Arc<AtomicBool>,
    ) -> Result<(Arc<Partial>, QueryStats), QueryError> {
        let key = Self::key(task, query);
        if let Some(found) = key.as_ref().and_then(|k| self.results.get(k)) {
            let (partial, mut stats) = (Arc::clone(&found.0), found.1.clone());
            stats.cached_tasks = 1;
            stats.bytes_read = 0;
            return Ok((partial, stats));
        }
        let index = self.data.series_index(&task.block, task.dataset).await?;
        let symbols = if task.stacks && matches!(query.output, Output::Tree | Output::Profile)
            || !query.selection.call_site.is_empty()
        {
            Some(self.data.symbols(&task.block, task.dataset).await?)
        } else {
            None
        };
        let table = self
            .data
            .table(&task.block, task.dataset, task.table.kind())
            .await?;
        let groups: Vec<usize> = task.row_groups.iter().map(|&g| g as usize).collect();
        let columns = task.columns();
        let ranges = table.chunk_ranges(&groups, columns);
        let chunks = self
            .data
            .chunks(&task.block, task.dataset, task.table.kind(), &ranges)
            .await?;
        let bytes_read: u64 = ranges.iter().map(|r| r.end - r.start).sum();
        // Only the rows of the task's series and time are decoded whole.
        let mut wanted = vec![false; index.len()];
        for &id in &task.series {
            if let Some(slot) = wanted.get_mut(id as usize) {
                *slot = true;
            }
        }
        let filter = block::RowFilterSpec {
            series: Arc::new(wanted),
            time_nanos: task.time_nanos,
            skip_profiles: Arc::new(task.block.skip_profiles.clone()),
        };
        let (task_owned, query_owned) = (task.clone(), query.clone());
        let (partial, mut stats) = self
            .data
            .cpu(move || {
                let id = task_owned.block.id;
                let batches = table
                    .decode_rows(
                        chunks,
                        &groups,
                        columns,
                        task_owned.dataset as usize,
                        Some(&filter),
                    )
                    .map_err(|e| QueryError::block(id, e))?;
                let data = TaskData {
                    batches,
                    symbols,
                    index,
                };
                exec::run(&task_owned, &query_owned, &data, &cancel)
            })
            .await??;
        stats.bytes_read = bytes_read;
        let partial = Arc::new(partial);
        if let Some(key) = key {
            let size = partial.memory_size() + key.len();
            self.results
                .insert(key, Arc::new((Arc::clone(&partial), stats.clone())), size);
        }
        Ok((partial, stats))
    }
}
