//! Running one read task on its decoded rows: plain functions, run on a blocking thread. A
//! tree or pprof task sums values per stack id in the dataset's own ids (a flat array), then
//! names the stacks once; a series or heatmap task turns each profile into a point.

use crate::error::QueryError;
use crate::partial::{Bucket, Exemplar, GroupKey, HeatPoint, Partial};
use crate::plan::{ReadTask, TaskTable};
use crate::request::{ExemplarKind, HeatmapParams, Output, Query, QueryStats, SeriesParams};
use block::{ProfileId, RowBatch, SeriesIndex, Symbols};
use model::Tree;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a task reads, fetched and decoded.
#[derive(Debug)]
pub(crate) struct TaskData {
    pub batches: Vec<RowBatch>,
    /// The dataset's symbols (trees and profiles, and a call-site filter).
    pub symbols: Option<Arc<Symbols>>,
    pub index: Arc<SeriesIndex>,
}

/// The rows of a task that the query keeps, with the values of their kept samples.
struct Rows<'a> {
    task: &'a ReadTask,
    query: &'a Query,
    wanted: Vec<bool>,
    spans: Option<FxHashSet<u64>>,
    ids: Option<FxHashSet<ProfileId>>,
    /// Per stack node: whether it lies under the call site.
    under: Option<Vec<bool>>,
}

impl<'a> Rows<'a> {
    fn new(
        task: &'a ReadTask,
        query: &'a Query,
        index: &SeriesIndex,
        symbols: Option<&Symbols>,
    ) -> Rows<'a> {
        let mut wanted = vec![false; index.len()];
        for &id in &task.series {
            if let Some(slot) = wanted.get_mut(id as usize) {
                *slot = true;
            }
        }
        let selection = &query.selection;
        Rows {
            task,
            query,
            wanted,
            spans: selection
                .span_ids
                .as_ref()
                .map(|s| s.iter().copied().collect()),
            ids: selection
                .profile_ids
                .as_ref()
                .map(|s| s.iter().copied().collect()),
            under: (!selection.call_site.is_empty())
                .then(|| symbols.map(|s| s.stacks_under(&selection.call_site)))
                .flatten(),
        }
    }

    /// Whether row `row` of `batch` is one the task reads.
    fn keep(&self, batch: &RowBatch, row: usize) -> bool {
        let time = batch.time_nanos(row);
        self.wanted
            .get(batch.series_id(row) as usize)
            .copied()
            .unwrap_or(false)
            && time >= self.task.time_nanos.0
            && time <= self.task.time_nanos.1
            && self
                .ids
                .as_ref()
                .is_none_or(|ids| batch.profile_id(row).is_some_and(|id| ids.contains(&id)))
    }

    /// Whether sample `i` of a kept row counts.
    fn sample(&self, batch: &RowBatch, row: usize, i: usize, stack: u32) -> bool {
        self.spans
            .as_ref()
            .is_none_or(|spans| batch.spans(row).get(i).is_some_and(|s| spans.contains(s)))
            && self
                .under
                .as_ref()
                .is_none_or(|under| under.get(stack as usize).copied().unwrap_or(false))
    }

    /// A kept row's value: its total, or the sum of its counted samples when a filter applies.
    fn value(&self, batch: &RowBatch, row: usize) -> i64 {
        if !self.query.selection.filters_samples() {
            return batch.total(row);
        }
        let mut sum = 0i64;
        for (i, (&stack, &value)) in batch.stacks(row).iter().zip(batch.values(row)).enumerate() {
            if self.sample(batch, row, i, stack) {
                sum = sum.wrapping_add(value);
            }
        }
        sum
    }
}

fn check(cancel: &AtomicBool) -> Result<(), QueryError> {
    if cancel.load(Ordering::Relaxed) {
        return Err(QueryError::Canceled);
    }
    Ok(())
}

/// Runs `task` of `query` on its data.
pub(crate) fn run(
    task: &ReadTask,
    query: &Query,
    data: &TaskData,
    cancel: &AtomicBool,
) -> Result<(Partial, QueryStats), QueryError> {
    let rows = Rows::new(task, query, &data.index, data.symbols.as_deref());
    let mut stats = QueryStats {
        row_groups_read: task.row_groups.len(),
        ..QueryStats::default()
    };
    if let TaskTable::Rollup { resolution_ms } = task.table {
        stats.rollup_resolutions.push(resolution_ms);
    }
    let partial = match &query.output {
        Output::Tree | Output::Profile => {
            let symbols = data
                .symbols
                .as_deref()
                .ok_or_else(|| QueryError::Internal("a stack task without symbols".to_owned()))?;
            let samples = stack_sums(&rows, &data.batches, symbols, &mut stats, cancel)?;
            if matches!(query.output, Output::Tree) {
                let mut tree = Tree::new();
                if !symbols.add_to_tree_bounded(&samples, &mut tree, query.max_nodes) {
                    return Err(crate::partial::too_many_nodes(query.max_nodes));
                }
                Partial::Tree(tree)
            } else {
                Partial::Profile(symbols.to_pprof(&samples))
            }
        }
        Output::Series(params) => series(&rows, data, params, &mut stats, cancel)?,
        Output::Heatmap(params) => heatmap(&rows, data, params, &mut stats, cancel)?,
    };
    Ok((partial, stats))
}

/// (stack id, summed value) of every counted sample, by stack id, zero sums left out.
fn stack_sums(
    rows: &Rows<'_>,
    batches: &[RowBatch],
    symbols: &Symbols,
    stats: &mut QueryStats,
    cancel: &AtomicBool,
) -> Result<Vec<(u32, i64)>, QueryError> {
    let nodes = symbols.stack_nodes();
    let mut sums = vec![0i64; nodes];
    let mut seen = vec![false; nodes];
    let mut touched: Vec<u32> = Vec::new();
    for batch in batches {
        check(cancel)?;
        for row in 0..batch.len() {
            if !rows.keep(batch, row) {
                continue;
            }
            count(stats, rows.task, batch, row);
            for (i, (&stack, &value)) in batch.stacks(row).iter().zip(batch.values(row)).enumerate()
            {
                let Some(slot) = sums.get_mut(stack as usize) else {
                    continue;
                };
                if !rows.sample(batch, row, i, stack) {
                    continue;
                }
                *slot = slot.wrapping_add(value);
                if !seen[stack as usize] {
                    seen[stack as usize] = true;
                    touched.push(stack);
                }
            }
        }
    }
    touched.sort_unstable();
    Ok(touched
        .into_iter()
        .map(|s| (s, sums[s as usize]))
        .filter(|&(_, v)| v != 0)
        .collect())
}

fn count(stats: &mut QueryStats, task: &ReadTask, batch: &RowBatch, row: usize) {
    match task.table {
        TaskTable::Profiles => stats.profiles += 1,
        TaskTable::Rollup { .. } => {
            stats.rollup_rows += 1;
            stats.rolled_up_profiles += batch.profiles(row);
        }
    }
}

/// Series labels as an answer groups them: the `group_by` labels present, and the others (an
/// exemplar's labels).
struct Groups<'a> {
    index: &'a SeriesIndex,
    group_by: &'a [String],
    /// Series id → (group, exemplar labels), as met.
    by_series: FxHashMap<u32, (u32, u32)>,
    groups: Vec<GroupKey>,
    group_ids: BTreeMap<GroupKey, u32>,
    labels: Vec<Vec<(String, String)>>,
}

impl<'a> Groups<'a> {
    fn new(index: &'a SeriesIndex, group_by: &'a [String]) -> Self {
        Groups {
            index,
            group_by,
            by_series: FxHashMap::default(),
            groups: Vec::new(),
            group_ids: BTreeMap::new(),
            labels: Vec::new(),
        }
    }

    fn of(&mut self, series: u32) -> (u32, u32) {
        if let Some(&found) = self.by_series.get(&series) {
            return found;
        }
        let labels = self.index.labels(series);
        let key: GroupKey = self
            .group_by
            .iter()
            .filter_map(|name| {
                labels
                    .and_then(|l| l.get(name))
                    .map(|v| (name.clone(), v.to_owned()))
            })
            .collect();
        let others: Vec<(String, String)> = labels
            .map(|l| {
                l.iter()
                    .filter(|p| !self.group_by.contains(&p.name))
                    .map(|p| (p.name.clone(), p.value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let group = match self.group_ids.get(&key) {
            Some(&g) => g,
            None => {
                self.groups.push(key.clone());
                let g = (self.groups.len() - 1) as u32;
                self.group_ids.insert(key, g);
                g
            }
        };
        self.labels.push(others);
        let found = (group, (self.labels.len() - 1) as u32);
        self.by_series.insert(series, found);
        found
    }
}

/// The right edge of the bucket a time falls in: the grid `start + k·step` (k ≥ 0), a time
/// going to the first edge at or after it (Pyroscope's rule; times up to a step before the
/// start go to the first).
pub(crate) fn bucket_of(time_ms: i64, start_ms: i64, step_ms: i64) -> i64 {
    let offset = time_ms.saturating_sub(start_ms);
    let k = if offset <= 0 {
        0
    } else {
        offset.saturating_add(step_ms - 1) / step_ms
    };
    start_ms.saturating_add(k.saturating_mul(step_ms))
}

/// The best candidate of a row for an exemplar: the profile, or its span of largest value.
fn row_exemplar(
    rows: &Rows<'_>,
    batch: &RowBatch,
    row: usize,
    kind: ExemplarKind,
    value: i64,
) -> Option<(i64, u64)> {
    match kind {
        ExemplarKind::None => None,
        ExemplarKind::Individual => Some((value, 0)),
        ExemplarKind::Span => {
            let mut spans: FxHashMap<u64, i64> = FxHashMap::default();
            for (i, ((&stack, &v), &span)) in batch
                .stacks(row)
                .iter()
                .zip(batch.values(row))
                .zip(batch.spans(row))
                .enumerate()
            {
                if span != 0 && rows.sample(batch, row, i, stack) {
                    *spans.entry(span).or_default() += v;
                }
            }
            spans
                .into_iter()
                .max_by(|a, b| {
                    a.1.cmp(&b.1)
                        .then(b.0.to_le_bytes().cmp(&a.0.to_le_bytes()))
                })
                .map(|(span, v)| (v, span))
        }
    }
}

/// One candidate exemplar of a bucket, before it is made into an [`Exemplar`].
#[derive(Debug, Clone, Copy)]
struct Candidate {
    value: i64,
    time: i64,
    id: ProfileId,
    span: u64,
    labels: u32,
}

impl Candidate {
    fn better_than(&self, other: &Candidate) -> bool {
        (other.value, self.time, self.id, self.span.to_le_bytes())
            < (self.value, other.time, other.id, other.span.to_le_bytes())
    }

    fn exemplar(&self, labels: &[Vec<(String, String)>]) -> Exemplar {
        Exemplar {
            timestamp: self.time,
            profile_id: crate::request::profile_id_string(&self.id),
            span_id: if self.span == 0 {
                String::new()
            } else {
                block::span_id_string(self.span)
            },
            value: self.value,
            labels: labels
                .get(self.labels as usize)
                .cloned()
                .unwrap_or_default(),
        }
    }
}

fn series(
    rows: &Rows<'_>,
    data: &TaskData,
    params: &SeriesParams,
    stats: &mut QueryStats,
    cancel: &AtomicBool,
) -> Result<Partial, QueryError> {
    let range = rows.query.selection.range;
    let step = params.step_ms.max(1);
    let mut groups = Groups::new(&data.index, &params.group_by);
    // (group, bucket end) → (sum, count, best exemplar candidate)
    let mut buckets: FxHashMap<(u32, i64), (i64, u64, Option<Candidate>)> = FxHashMap::default();
    for batch in &data.batches {
        check(cancel)?;
        for row in 0..batch.len() {
            if !rows.keep(batch, row) {
                continue;
            }
            count(stats, rows.task, batch, row);
            let time = batch.time_nanos(row).div_euclid(1_000_000);
            // A profile after the last grid line before the end goes to the next one (as
            // Pyroscope's heatmap slots do; its series drop it, which hides the newest data
            // whenever the range is not a whole number of steps).
            let bucket = bucket_of(time, range.start_ms, step);
            let value = rows.value(batch, row);
            if rows.query.selection.filters_samples() && value == 0 {
                continue;
            }
            let (group, labels) = groups.of(batch.series_id(row));
            let slot = buckets.entry((group, bucket)).or_insert((0, 0, None));
            slot.0 = slot.0.wrapping_add(value);
            slot.1 += 1;
            if let Some((value, span)) = row_exemplar(rows, batch, row, params.exemplars, value) {
                let candidate = Candidate {
                    value,
                    time,
                    id: batch.profile_id(row).unwrap_or_default(),
                    span,
                    labels,
                };
                if slot
                    .2
                    .as_ref()
                    .is_none_or(|best| candidate.better_than(best))
                {
                    slot.2 = Some(candidate);
                }
            }
        }
    }
    let mut out: BTreeMap<GroupKey, BTreeMap<i64, Bucket>> = BTreeMap::new();
    for ((group, bucket), (sum, count, best)) in buckets {
        let key = groups.groups[group as usize].clone();
        out.entry(key).or_default().insert(
            bucket,
            Bucket {
                sum,
                count,
                exemplar: best.map(|c| c.exemplar(&groups.labels)),
            },
        );
    }
    Ok(Partial::Series(out))
}

fn heatmap(
    rows: &Rows<'_>,
    data: &TaskData,
    params: &HeatmapParams,
    stats: &mut QueryStats,
    cancel: &AtomicBool,
) -> Result<Partial, QueryError> {
    let range = rows.query.selection.range;
    let step = params.step_ms.max(1);
    let mut groups = Groups::new(&data.index, &params.group_by);
    let last_slot = bucket_of(range.end_ms, range.start_ms, step);
    let mut points = Vec::new();
    let mut spans: BTreeMap<u64, i64> = BTreeMap::new();
    for batch in &data.batches {
        check(cancel)?;
        for row in 0..batch.len() {
            if !rows.keep(batch, row) {
                continue;
            }
            count(stats, rows.task, batch, row);
            let time = batch.time_nanos(row).div_euclid(1_000_000);
            // Slots from the start to the first grid line at or after the end: nothing dropped.
            let slot = bucket_of(time, range.start_ms, step).min(last_slot);
            let (group, labels) = groups.of(batch.series_id(row));
            let id = batch.profile_id(row).unwrap_or_default();
            if params.spans {
                // One point per span: the sum of the profile's samples taken in it.
                spans.clear();
                for (i, ((&stack, &value), &span)) in batch
                    .stacks(row)
                    .iter()
                    .zip(batch.values(row))
                    .zip(batch.spans(row))
                    .enumerate()
                {
                    if span != 0 && rows.sample(batch, row, i, stack) {
                        *spans.entry(span).or_default() += value;
                    }
                }
                for (&span, &value) in &spans {
                    points.push(HeatPoint {
                        group,
                        slot,
                        value,
                        time,
                        // A span's point names no profile (as Pyroscope's).
                        profile_id: [0; 16],
                        span,
                        labels,
                    });
                }
            } else {
                let value = rows.value(batch, row);
                if rows.query.selection.filters_samples() && value == 0 {
                    continue;
                }
                points.push(HeatPoint {
                    group,
                    slot,
                    value,
                    time,
                    profile_id: id,
                    span: 0,
                    labels,
                });
            }
        }
    }
    Ok(Partial::Heatmap {
        groups: groups.groups,
        labels: groups.labels,
        points,
    })
}

#[cfg(test)]
mod tests {
    use super::bucket_of;

    #[test]
    fn buckets_follow_pyroscopes_grid() {
        // Grid at 100 + k·10; a time goes to the first edge at or after it.
        assert_eq!(bucket_of(100, 100, 10), 100);
        assert_eq!(bucket_of(101, 100, 10), 110);
        assert_eq!(bucket_of(110, 100, 10), 110);
        // Up to a step before the start: the first bucket.
        assert_eq!(bucket_of(90, 100, 10), 100);
        assert_eq!(bucket_of(95, 100, 10), 100);
        assert_eq!(bucket_of(i64::MAX, 100, 10), i64::MAX);
    }
}
