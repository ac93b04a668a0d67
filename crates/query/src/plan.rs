//! Planning: which parts of which blocks a query reads. The metastore names the blocks and
//! datasets that can match (tenant, service, profile type, time); each dataset's footer, series
//! index and table statistics (cached) narrow that to its matching series, to the table that
//! answers each part of the range (a rollup for whole hours or days, the profiles at the
//! edges) and to the row groups whose statistics hold those series and times. The result is a
//! [`Plan`]: tasks a backend can run anywhere, since they say exactly what to read.

use crate::access::DataAccess;
use crate::error::QueryError;
use crate::request::{Output, Selection};
use block::{Columns, DatasetInfo, RowGroupInfo, TableKind};
use metastore::BlockMeta;
use model::{MatchOp, Matcher, TenantId, label_names};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// A stored object, as a task names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockRef {
    pub id: Ulid,
    pub level: u32,
    pub shard: u32,
    /// The tenant of a compacted block; `None` for a segment.
    pub tenant: Option<TenantId>,
    /// Object size in bytes (the metastore's), so opening it needs no size request.
    pub size: u64,
    /// Of a segment: the profiles its reads skip, by the first 8 bytes of their id (sorted):
    /// those of the write requests it holds a second copy of (the metastore's
    /// `duplicate_requests`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_profiles: Vec<u64>,
}

impl BlockRef {
    pub fn of(meta: &BlockMeta) -> BlockRef {
        BlockRef {
            id: meta.id,
            level: meta.level,
            shard: meta.shard,
            tenant: meta.tenant.clone(),
            size: meta.size,
            skip_profiles: model::write_request::prefixes(&meta.duplicate_requests),
        }
    }

    pub fn path(&self) -> storage::Path {
        storage::paths::object(self.level, self.shard, self.tenant.as_ref(), self.id)
    }
}

/// The table a task reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskTable {
    Profiles,
    Rollup { resolution_ms: i64 },
}

impl TaskTable {
    pub(crate) fn kind(self) -> TableKind {
        match self {
            TaskTable::Profiles => TableKind::Profiles,
            TaskTable::Rollup { resolution_ms } => TableKind::Rollup(resolution_ms),
        }
    }
}

/// One unit of reading: part of one table of one dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadTask {
    pub block: BlockRef,
    /// The dataset's position in the block's footer.
    pub dataset: u32,
    /// The dataset's byte range in the object, as the metastore records it.
    pub dataset_bytes: (u64, u64),
    pub table: TaskTable,
    /// Row groups to read, ascending.
    pub row_groups: Vec<u32>,
    /// Row groups the table has.
    pub row_groups_total: u32,
    /// The dataset's series the query matches, ascending.
    pub series: Vec<u32>,
    /// Rows whose time (a profile's, or a rollup bucket's start) lies in this range, in
    /// nanoseconds, both ends included.
    pub time_nanos: (i64, i64),
    /// Whether the stack and value lists are read.
    pub stacks: bool,
    /// Whether the span ids are read.
    pub spans: bool,
    /// Whether the profile ids are read.
    pub profile_ids: bool,
    /// Rows of the row groups read, and bytes of the column chunks fetched (what the task
    /// costs, for `AnalyzeQuery`).
    pub rows: u64,
    pub bytes: u64,
}

impl ReadTask {
    pub(crate) fn columns(&self) -> Columns {
        // Skipping profiles by id reads their ids.
        let skips = !self.block.skip_profiles.is_empty() && self.table == TaskTable::Profiles;
        Columns {
            stacks: self.stacks,
            spans: self.spans,
            profile_ids: self.profile_ids || skips,
        }
    }
}

/// What a query reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub tasks: Vec<ReadTask>,
    /// Blocks and datasets the metastore named that the tasks read.
    pub blocks: usize,
    pub datasets: usize,
}

/// Row groups of the profiles table one task reads: one each when a dataset's part has a few
/// (a short range's edge: the cores share it), more when it has many (a long scan has tasks
/// enough, and each costs a fetch and a hop to a blocking thread). A row group holds 4,096
/// profiles.
fn row_groups_per_task(row_groups: usize) -> usize {
    if row_groups <= 8 { 1 } else { 4 }
}

/// The parts of `[lo, hi]` (ns, inclusive) and the table that reads each: whole buckets of
/// the coarsest resolution that fit (`resolutions` descending, in ms), the rest by the next
/// resolution, and what no bucket covers from the profiles.
pub(crate) fn cover(lo: i64, hi: i64, resolutions: &[i64]) -> Vec<(TaskTable, i64, i64)> {
    if lo > hi {
        return Vec::new();
    }
    let Some((&resolution_ms, finer)) = resolutions.split_first() else {
        return vec![(TaskTable::Profiles, lo, hi)];
    };
    let width = resolution_ms.saturating_mul(1_000_000);
    // Whole buckets [first, end) inside [lo, hi].
    let first = lo
        .div_euclid(width)
        .saturating_add(i64::from(lo.rem_euclid(width) != 0))
        .saturating_mul(width);
    let end = hi.saturating_add(1).div_euclid(width).saturating_mul(width);
    if width <= 0 || first >= end {
        return cover(lo, hi, finer);
    }
    let mut out = cover(lo, first - 1, finer);
    out.push((TaskTable::Rollup { resolution_ms }, first, end - 1));
    out.extend(cover(end, hi, finer));
    out
}

/// Whether a dataset (from its footer) can hold what `selection` asks for.
fn may_match(info: &DatasetInfo, selection: &Selection, lo: i64, hi: i64) -> bool {
    info.tenant == selection.tenant.as_str()
        && info.min_time_nanos <= hi
        && info.max_time_nanos >= lo
        && info
            .profile_types
            .binary_search(&selection.profile_type)
            .is_ok()
        && selection
            .matchers
            .iter()
            .filter(|m| m.name == label_names::SERVICE_NAME)
            .all(|m| m.matches(Some(&info.service_name)))
}

/// The row groups of `groups` that may hold one of `series` (ascending) in `[lo, hi]`.
pub(crate) fn prune(groups: &[RowGroupInfo], series: &[u32], lo: i64, hi: i64) -> Vec<u32> {
    groups
        .iter()
        .enumerate()
        .filter(|(_, g)| {
            g.min_time_nanos <= hi && g.max_time_nanos >= lo && {
                let first = series.partition_point(|&s| s < g.min_series);
                series.get(first).is_some_and(|&s| s <= g.max_series)
            }
        })
        .map(|(i, _)| i as u32)
        .collect()
}

/// The matchers a dataset's series index answers: the query's, and its profile type.
pub(crate) fn series_matchers(selection: &Selection) -> Result<Vec<Matcher>, QueryError> {
    let mut matchers = selection.matchers.clone();
    matchers.push(
        Matcher::new(
            label_names::PROFILE_TYPE,
            MatchOp::Equal,
            selection.profile_type.clone(),
        )
        .map_err(|e| QueryError::InvalidArgument(e.to_string()))?,
    );
    Ok(matchers)
}

/// What every dataset of one query is planned with.
#[derive(Debug)]
pub(crate) struct Planning {
    pub selection: Selection,
    pub output: Output,
    /// The series matchers (the selection's and its profile type).
    pub matchers: Vec<Matcher>,
    pub use_rollups: bool,
}

/// Plans the read of one dataset of one block: its tasks, or none when nothing matches.
pub(crate) async fn plan_dataset(
    data: &DataAccess,
    block: &BlockRef,
    dataset_bytes: (u64, u64),
    dataset: u32,
    planning: &Planning,
) -> Result<Vec<ReadTask>, QueryError> {
    let (selection, output) = (&planning.selection, &planning.output);
    let (matchers, use_rollups) = (&planning.matchers, planning.use_rollups);
    let (lo, hi) = selection.nanos();
    let reader = data.reader(block).await?;
    let Some(info) = reader.datasets().get(dataset as usize) else {
        return Ok(Vec::new());
    };
    if !may_match(info, selection, lo, hi) {
        return Ok(Vec::new());
    }
    let index = data.series_index(block, dataset).await?;
    let series = index.select(matchers);
    if series.is_empty() {
        return Ok(Vec::new());
    }
    // Rollups serve trees and profiles over whole buckets, when no per-profile filter applies.
    let mut resolutions: Vec<i64> =
        if use_rollups && !output.per_profile() && selection.rollups_allowed() {
            info.rollups.iter().map(|r| r.resolution_ms).collect()
        } else {
            Vec::new()
        };
    resolutions.sort_unstable_by(|a, b| b.cmp(a));
    // Span points and span exemplars sum a profile's samples by span: stacks, values, spans.
    let by_span = match output {
        Output::Heatmap(h) => h.spans,
        Output::Series(s) => s.exemplars == crate::request::ExemplarKind::Span,
        _ => false,
    };
    let stacks = !output.per_profile() || selection.filters_samples() || by_span;
    let spans = selection.span_ids.is_some() || by_span;
    let profile_ids = selection.profile_ids.is_some()
        || match output {
            Output::Series(s) => s.exemplars != crate::request::ExemplarKind::None,
            Output::Heatmap(h) => h.exemplars != crate::request::ExemplarKind::None,
            _ => false,
        };
    let mut tasks = Vec::new();
    for (table, from, to) in cover(lo, hi, &resolutions) {
        // Parts outside the dataset's data hold nothing.
        // (A rollup's part is cut to the buckets the dataset's data touches, so the same part
        // of an old block reads the same under a moving range, and its result can be cached.)
        let (from, to) = match table {
            TaskTable::Profiles => (from.max(info.min_time_nanos), to.min(info.max_time_nanos)),
            TaskTable::Rollup { resolution_ms } => {
                let width = resolution_ms.saturating_mul(1_000_000).max(1);
                let first = info.min_time_nanos.div_euclid(width).saturating_mul(width);
                let last = info
                    .max_time_nanos
                    .div_euclid(width)
                    .saturating_mul(width)
                    .saturating_add(width - 1);
                (from.max(first), to.min(last))
            }
        };
        if from > to || from > info.max_time_nanos || to < info.min_time_nanos {
            continue;
        }
        let meta = data.table(block, dataset, table.kind()).await?;
        let pruned = prune(meta.row_groups(), &series, from, to);
        let profile_ids = profile_ids && meta.has_profile_ids();
        let spans = spans && table == TaskTable::Profiles;
        let profile_ids = profile_ids && table == TaskTable::Profiles;
        let columns = Columns {
            stacks,
            spans,
            profile_ids,
        };
        // Profiles are split into tasks of a few row groups, so that the cores share a long
        // read of one dataset; a rollup is small and read by one task.
        let per_task = match table {
            TaskTable::Profiles => row_groups_per_task(pruned.len()),
            TaskTable::Rollup { .. } => usize::MAX,
        };
        for row_groups in pruned.chunks(per_task) {
            let rows = row_groups
                .iter()
                .filter_map(|&g| meta.row_groups().get(g as usize))
                .map(|g| g.rows)
                .sum();
            let groups: Vec<usize> = row_groups.iter().map(|&g| g as usize).collect();
            let bytes = meta
                .chunk_ranges(&groups, columns)
                .iter()
                .map(|r| r.end - r.start)
                .sum();
            tasks.push(ReadTask {
                block: block.clone(),
                dataset,
                dataset_bytes,
                table,
                row_groups: row_groups.to_vec(),
                row_groups_total: meta.row_groups().len() as u32,
                series: series.clone(),
                time_nanos: (from, to),
                stacks,
                spans,
                profile_ids,
                rows,
                bytes,
            });
        }
    }
    Ok(tasks)
}

/// The footer position of the dataset the metastore recorded at `offset` for `tenant` and
/// `service` (its first section starts there).
pub(crate) fn dataset_index(
    reader: &block::BlockReader,
    tenant: &TenantId,
    service: &str,
    offset: u64,
) -> Option<u32> {
    reader
        .datasets()
        .iter()
        .position(|d| {
            d.tenant == tenant.as_str()
                && d.service_name == service
                && d.series.is_some_and(|s| s.offset == offset)
        })
        .or_else(|| {
            reader
                .datasets()
                .iter()
                .position(|d| d.tenant == tenant.as_str() && d.service_name == service)
        })
        .map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3_600_000_000_000;
    const D: i64 = 24 * H;

    #[test]
    fn ranges_are_covered_by_whole_buckets_and_raw_edges() {
        let resolutions = [86_400_000, 3_600_000];
        // 30 days and a bit: raw to the first hour, hours to the first day, days, and back.
        let lo = 10 * D + 5 * H + 17;
        let hi = 40 * D + 2 * H + 99;
        let parts = cover(lo, hi, &resolutions);
        let days = TaskTable::Rollup {
            resolution_ms: 86_400_000,
        };
        let hours = TaskTable::Rollup {
            resolution_ms: 3_600_000,
        };
        assert_eq!(
            parts,
            vec![
                (TaskTable::Profiles, lo, 10 * D + 6 * H - 1),
                (hours, 10 * D + 6 * H, 11 * D - 1),
                (days, 11 * D, 40 * D - 1),
                (hours, 40 * D, 40 * D + 2 * H - 1),
                (TaskTable::Profiles, 40 * D + 2 * H, hi),
            ]
        );
        // The parts tile the range exactly.
        for pair in parts.windows(2) {
            assert_eq!(pair[0].2 + 1, pair[1].1);
        }
        // Less than a bucket: all raw; exactly one bucket: the bucket.
        assert_eq!(
            cover(H + 1, 2 * H, &resolutions),
            vec![(TaskTable::Profiles, H + 1, 2 * H)]
        );
        assert_eq!(
            cover(H, 2 * H - 1, &resolutions),
            vec![(hours, H, 2 * H - 1)]
        );
        assert_eq!(cover(5, 4, &resolutions), vec![]);
        assert_eq!(
            cover(-D - 3, 2, &[]),
            vec![(TaskTable::Profiles, -D - 3, 2)]
        );
    }

    #[test]
    fn row_groups_are_pruned_by_series_and_time() {
        let group = |min_series, max_series, min_time_nanos, max_time_nanos| RowGroupInfo {
            rows: 1,
            min_series,
            max_series,
            min_time_nanos,
            max_time_nanos,
        };
        let groups = [group(0, 3, 0, 10), group(4, 9, 0, 10), group(0, 9, 11, 20)];
        assert_eq!(prune(&groups, &[5], 0, 100), vec![1, 2]);
        assert_eq!(prune(&groups, &[1, 8], 12, 15), vec![2]);
        assert_eq!(prune(&groups, &[10], 0, 100), Vec::<u32>::new());
        assert_eq!(prune(&groups, &[2], 5, 10), vec![0]);
    }
}
