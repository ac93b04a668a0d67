//! Partial results of read tasks and their exact merges: stack trees and pprof profiles merge
//! by stack, time series by (labels, bucket) with sums and counts, heatmaps by points. Sums
//! are integer sums, so any order of merging gives the same answer.

use crate::error::QueryError;
use crate::request::{Aggregation, ExemplarKind, HeatmapParams, Output, SeriesParams};
use formats::pprof::{MergeOptions, ProfileMerger};
use model::Tree;
use std::collections::BTreeMap;

/// Labels naming a series of an answer (the `group_by` labels present).
pub type GroupKey = Vec<(String, String)>;

/// The profile (or span) behind a point.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exemplar {
    /// The profile's time in ms.
    pub timestamp: i64,
    /// Its id (UUID text); empty for profiles stored without one.
    pub profile_id: String,
    /// The span's id (16 hex digits) for span exemplars; empty otherwise.
    pub span_id: String,
    pub value: i64,
    /// The series' labels other than the `group_by` ones.
    pub labels: Vec<(String, String)>,
}

impl Exemplar {
    /// Which of two candidates a point keeps: the larger value, then the earlier, then the
    /// smaller id (so the choice does not depend on merge order).
    fn better_than(&self, other: &Exemplar) -> bool {
        (other.value, self.timestamp, &self.profile_id, &self.span_id)
            < (
                self.value,
                other.timestamp,
                &other.profile_id,
                &other.span_id,
            )
    }
}

/// One time bucket of a series being built.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Bucket {
    pub sum: i64,
    pub count: u64,
    pub exemplar: Option<Exemplar>,
}

impl Bucket {
    pub(crate) fn add(&mut self, value: i64, count: u64, exemplar: Option<Exemplar>) {
        self.sum = self.sum.wrapping_add(value);
        self.count += count;
        if let Some(candidate) = exemplar
            && self
                .exemplar
                .as_ref()
                .is_none_or(|e| candidate.better_than(e))
        {
            self.exemplar = Some(candidate);
        }
    }
}

/// One point of a heatmap being built: a profile's (or a span's) total in a slot, with what
/// its exemplar would say (made into an [`Exemplar`] only for the points that are chosen).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HeatPoint {
    /// Index into the partial's groups.
    pub group: u32,
    /// The slot's right edge, ms.
    pub slot: i64,
    pub value: i64,
    /// The profile's time, ms.
    pub time: i64,
    pub profile_id: block::ProfileId,
    /// The span's id, 0 for a profile's point.
    pub span: u64,
    /// Index into the partial's exemplar label sets.
    pub labels: u32,
}

impl HeatPoint {
    /// The same order as [`Exemplar::better_than`], on the raw point.
    fn better_than(&self, other: &HeatPoint) -> bool {
        (
            other.value,
            self.time,
            self.profile_id,
            self.span.to_le_bytes(),
        ) < (
            self.value,
            other.time,
            other.profile_id,
            other.span.to_le_bytes(),
        )
    }
}

/// What one read task contributes.
#[derive(Debug, Clone)]
pub enum Partial {
    Tree(Tree),
    Profile(formats::pprof::Profile),
    /// Group labels → bucket end (ms) → bucket.
    Series(BTreeMap<GroupKey, BTreeMap<i64, Bucket>>),
    Heatmap {
        groups: Vec<GroupKey>,
        /// Exemplar label sets (a series' labels other than the `group_by` ones).
        labels: Vec<Vec<(String, String)>>,
        points: Vec<HeatPoint>,
    },
}

impl Partial {
    /// About how many bytes it holds (for the result cache).
    pub(crate) fn memory_size(&self) -> usize {
        match self {
            Partial::Tree(tree) => tree.node_count() * 64 + 256,
            Partial::Profile(p) => {
                p.sample.len() * 48
                    + p.location.len() * 64
                    + p.string_table.iter().map(|s| s.len() + 24).sum::<usize>()
            }
            Partial::Series(groups) => groups.values().map(|b| b.len() * 64 + 64).sum(),
            Partial::Heatmap { points, .. } => points.len() * 64,
        }
    }
}

/// A query's answer being merged from partial results.
#[derive(Debug)]
pub(crate) enum Accumulator {
    Tree(Tree),
    Profile(Box<ProfileMerger>, bool),
    Series(BTreeMap<GroupKey, BTreeMap<i64, Bucket>>),
    Heatmap {
        groups: Vec<GroupKey>,
        index: BTreeMap<GroupKey, u32>,
        labels: Vec<Vec<(String, String)>>,
        label_index: BTreeMap<Vec<(String, String)>, u32>,
        points: Vec<HeatPoint>,
    },
}

impl Accumulator {
    pub fn new(output: &Output) -> Accumulator {
        match output {
            Output::Tree => Accumulator::Tree(Tree::new()),
            Output::Profile => Accumulator::Profile(
                Box::new(ProfileMerger::new(MergeOptions {
                    value_index: Some(0),
                    drop_labels: true,
                })),
                false,
            ),
            Output::Series(_) => Accumulator::Series(BTreeMap::new()),
            Output::Heatmap(_) => Accumulator::Heatmap {
                groups: Vec::new(),
                index: BTreeMap::new(),
                labels: Vec::new(),
                label_index: BTreeMap::new(),
                points: Vec::new(),
            },
        }
    }

    /// Adds a partial result that may be this query's alone: the first tree is taken as it is
    /// rather than copied (a tree of a million stacks is then held once, not twice).
    pub fn merge_shared(
        &mut self,
        partial: std::sync::Arc<Partial>,
        max_nodes: usize,
    ) -> Result<(), QueryError> {
        if let Accumulator::Tree(tree) = self
            && tree.node_count() <= 1
            && tree.total() == 0
        {
            match std::sync::Arc::try_unwrap(partial) {
                Ok(Partial::Tree(part)) => {
                    *tree = part;
                    return Ok(());
                }
                Ok(other) => return self.merge(&other, max_nodes),
                Err(shared) => return self.merge(&shared, max_nodes),
            }
        }
        self.merge(&partial, max_nodes)
    }

    /// Adds `partial`; `max_nodes` bounds the distinct stacks of a merged tree.
    pub fn merge(&mut self, partial: &Partial, max_nodes: usize) -> Result<(), QueryError> {
        match (self, partial) {
            (Accumulator::Tree(tree), Partial::Tree(part)) => {
                tree.merge(part);
                if tree.node_count() > max_nodes {
                    return Err(too_many_nodes(max_nodes));
                }
            }
            (Accumulator::Profile(merger, any), Partial::Profile(part)) => {
                merger
                    .merge(part)
                    .map_err(|e| QueryError::Internal(format!("merging profiles: {e}")))?;
                *any = true;
            }
            (Accumulator::Series(groups), Partial::Series(part)) => {
                for (key, buckets) in part {
                    let into = groups.entry(key.clone()).or_default();
                    for (&time, bucket) in buckets {
                        into.entry(time).or_default().add(
                            bucket.sum,
                            bucket.count,
                            bucket.exemplar.clone(),
                        );
                    }
                }
            }
            (
                Accumulator::Heatmap {
                    groups,
                    index,
                    labels,
                    label_index,
                    points,
                },
                Partial::Heatmap {
                    groups: part_groups,
                    labels: part_labels,
                    points: part_points,
                },
            ) => {
                let groups_map = intern_all(part_groups, groups, index);
                let labels_map = intern_all(part_labels, labels, label_index);
                points.reserve(part_points.len());
                for point in part_points {
                    let mut point = point.clone();
                    point.group = groups_map.get(point.group as usize).copied().unwrap_or(0);
                    point.labels = labels_map.get(point.labels as usize).copied().unwrap_or(0);
                    points.push(point);
                }
            }
            _ => {
                return Err(QueryError::Internal(
                    "a partial result of another kind".to_owned(),
                ));
            }
        }
        Ok(())
    }
}

/// The positions in `all` (added where missing) of each of `keys`.
fn intern_all(
    keys: &[Vec<(String, String)>],
    all: &mut Vec<Vec<(String, String)>>,
    index: &mut BTreeMap<Vec<(String, String)>, u32>,
) -> Vec<u32> {
    keys.iter()
        .map(|key| {
            *index.entry(key.clone()).or_insert_with(|| {
                all.push(key.clone());
                (all.len() - 1) as u32
            })
        })
        .collect()
}

pub(crate) fn too_many_nodes(max_nodes: usize) -> QueryError {
    QueryError::LimitExceeded(format!(
        "the query merges more than {max_nodes} distinct stacks (max_query_nodes): narrow the label selector or the time range"
    ))
}

/// One point of a time series.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoint {
    /// The bucket's right edge, ms.
    pub timestamp: i64,
    pub value: f64,
    pub exemplars: Vec<Exemplar>,
}

/// One time series of an answer: its labels (the `group_by` ones present) and its non-empty
/// buckets in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeSeries {
    pub labels: Vec<(String, String)>,
    pub points: Vec<SeriesPoint>,
}

/// The series of an answer, sorted by labels, cut to the `limit` of largest totals.
pub(crate) fn finish_series(
    groups: BTreeMap<GroupKey, BTreeMap<i64, Bucket>>,
    params: &SeriesParams,
) -> Vec<TimeSeries> {
    let mut out: Vec<TimeSeries> = groups
        .into_iter()
        .map(|(labels, buckets)| TimeSeries {
            labels,
            points: buckets
                .into_iter()
                .map(|(timestamp, bucket)| SeriesPoint {
                    timestamp,
                    value: match params.aggregation {
                        Aggregation::Sum => bucket.sum as f64,
                        Aggregation::Average => bucket.sum as f64 / bucket.count.max(1) as f64,
                    },
                    exemplars: bucket.exemplar.into_iter().collect(),
                })
                .collect(),
        })
        .collect();
    if let Some(limit) = params.limit {
        let totals: Vec<f64> = out
            .iter()
            .map(|s| s.points.iter().map(|p| p.value).sum())
            .collect();
        keep_largest(&mut out, &totals, limit);
    }
    out
}

/// Keeps the `limit` items of largest total (the first of equal ones), in their order.
fn keep_largest<T>(items: &mut Vec<T>, totals: &[f64], limit: usize) {
    if items.len() <= limit {
        return;
    }
    let mut ranked: Vec<(f64, usize)> = totals.iter().copied().zip(0..).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut keep: Vec<usize> = ranked.into_iter().take(limit).map(|(_, i)| i).collect();
    keep.sort_unstable();
    let mut index = 0;
    items.retain(|_| {
        let kept = keep.binary_search(&index).is_ok();
        index += 1;
        kept
    });
}

/// Rows of a heatmap's y axis: this many linear buckets between the smallest and the largest
/// point (Pyroscope's `DefaultYAxisBuckets`).
pub const HEATMAP_ROWS: usize = 20;

/// Points of one profile (same group, time, id and span) summed into one, as Pyroscope sums a
/// profile split over several series; points of profiles without an id stay apart.
fn sum_profiles(mut points: Vec<HeatPoint>) -> Vec<HeatPoint> {
    points.sort_by(|a, b| {
        (a.group, a.time, a.profile_id, a.span).cmp(&(b.group, b.time, b.profile_id, b.span))
    });
    let mut out: Vec<HeatPoint> = Vec::with_capacity(points.len());
    for point in points {
        match out.last_mut() {
            Some(last)
                if point.profile_id != [0; 16]
                    && (last.group, last.time, last.profile_id, last.span)
                        == (point.group, point.time, point.profile_id, point.span) =>
            {
                last.value = last.value.wrapping_add(point.value);
            }
            _ => out.push(point),
        }
    }
    out
}

/// One slot (column) of a heatmap series.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapSlot {
    /// The slot's right edge, ms.
    pub timestamp: i64,
    /// Lower edge of each y bucket.
    pub y_min: Vec<f64>,
    /// Points in each y bucket.
    pub counts: Vec<i32>,
    /// The point of highest value of each non-empty y bucket.
    pub exemplars: Vec<Exemplar>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HeatmapSeries {
    pub labels: Vec<(String, String)>,
    pub slots: Vec<HeatmapSlot>,
}

/// The heatmap of all points: y buckets linear between the global smallest and largest value.
pub(crate) fn finish_heatmap(
    groups: &[GroupKey],
    labels: &[Vec<(String, String)>],
    points: Vec<HeatPoint>,
    params: &HeatmapParams,
) -> Vec<HeatmapSeries> {
    if points.is_empty() {
        return Vec::new();
    }
    // Pyroscope's y axis: 20 integer lower edges `min + trunc(i·(max−min)/20)` between the
    // smallest point and the largest (at least 0); a value goes to the first bucket with
    // `lo <= v < hi`, or the last from its lower edge on (so equal values all land there).
    let points = sum_profiles(points);
    let min = points.iter().map(|p| p.value).min().unwrap_or(0);
    let mut max = points.iter().map(|p| p.value).max().unwrap_or(0).max(0);
    if max == min {
        max = min.saturating_add(1);
    }
    let span = i128::from(max) - i128::from(min);
    let edges: Vec<i64> = (0..HEATMAP_ROWS as i128)
        .map(|i| (i128::from(min) + i * span / HEATMAP_ROWS as i128) as i64)
        .collect();
    let y_min: Vec<f64> = edges.iter().map(|&e| e as f64).collect();
    let row_of = |value: i64| {
        (0..HEATMAP_ROWS - 1)
            .find(|&i| edges[i] <= value && value < edges[i + 1])
            .unwrap_or(HEATMAP_ROWS - 1)
    };
    // group → slot → (counts, best point per row)
    type Slot = (Vec<i32>, Vec<Option<HeatPoint>>);
    let mut series: BTreeMap<u32, BTreeMap<i64, Slot>> = BTreeMap::new();
    let mut totals: BTreeMap<u32, i64> = BTreeMap::new();
    for point in points {
        let row = row_of(point.value);
        let slot = series
            .entry(point.group)
            .or_default()
            .entry(point.slot)
            .or_insert_with(|| (vec![0; HEATMAP_ROWS], vec![None; HEATMAP_ROWS]));
        slot.0[row] += 1;
        *totals.entry(point.group).or_default() += 1;
        if params.exemplars != ExemplarKind::None
            && slot.1[row].as_ref().is_none_or(|e| point.better_than(e))
        {
            slot.1[row] = Some(point);
        }
    }
    let mut out: Vec<(GroupKey, u32, HeatmapSeries)> = series
        .into_iter()
        .map(|(group, slots)| {
            let key = groups.get(group as usize).cloned().unwrap_or_default();
            let series = HeatmapSeries {
                labels: key.clone(),
                slots: slots
                    .into_iter()
                    .map(|(timestamp, (counts, best))| HeatmapSlot {
                        timestamp,
                        y_min: y_min.clone(),
                        counts,
                        exemplars: best
                            .into_iter()
                            .flatten()
                            .map(|p| Exemplar {
                                timestamp: p.time,
                                profile_id: crate::request::profile_id_string(&p.profile_id),
                                span_id: if p.span == 0 {
                                    String::new()
                                } else {
                                    block::span_id_string(p.span)
                                },
                                value: p.value,
                                labels: labels.get(p.labels as usize).cloned().unwrap_or_default(),
                            })
                            .collect(),
                    })
                    .collect(),
            };
            (key, group, series)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(limit) = params.limit {
        let counts: Vec<f64> = out
            .iter()
            .map(|(_, group, _)| totals.get(group).copied().unwrap_or(0) as f64)
            .collect();
        keep_largest(&mut out, &counts, limit);
    }
    out.into_iter().map(|(_, _, s)| s).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exemplar(value: i64, timestamp: i64, id: &str) -> Exemplar {
        Exemplar {
            timestamp,
            profile_id: id.to_owned(),
            span_id: String::new(),
            value,
            labels: Vec::new(),
        }
    }

    #[test]
    fn buckets_keep_the_best_exemplar_whatever_the_order() {
        let candidates = [
            exemplar(5, 10, "b"),
            exemplar(7, 30, "c"),
            exemplar(7, 20, "d"),
            exemplar(1, 0, "a"),
        ];
        let mut forward = Bucket::default();
        for c in &candidates {
            forward.add(c.value, 1, Some(c.clone()));
        }
        let mut backward = Bucket::default();
        for c in candidates.iter().rev() {
            backward.add(c.value, 1, Some(c.clone()));
        }
        assert_eq!(forward, backward);
        assert_eq!(forward.sum, 20);
        assert_eq!(forward.count, 4);
        assert_eq!(forward.exemplar, Some(exemplar(7, 20, "d")));
    }

    #[test]
    fn heatmaps_bucket_linearly_between_the_extremes() {
        let point = |slot, value| HeatPoint {
            group: 0,
            slot,
            value,
            time: slot + value,
            profile_id: [1; 16],
            span: 0,
            labels: 0,
        };
        let params = HeatmapParams {
            group_by: Vec::new(),
            step_ms: 10,
            spans: false,
            exemplars: ExemplarKind::Individual,
            limit: None,
        };
        let series = finish_heatmap(
            &[Vec::new()],
            &[vec![("pod".to_owned(), "a".to_owned())]],
            vec![point(10, 0), point(10, 100), point(20, 50), point(20, 51)],
            &params,
        );
        assert_eq!(series.len(), 1);
        let slots = &series[0].slots;
        assert_eq!(slots.len(), 2);
        assert_eq!(slots[0].y_min[1], 5.0);
        assert_eq!(slots[0].counts[0], 1);
        assert_eq!(slots[0].counts[19], 1);
        assert_eq!(slots[1].counts[10], 2);
        // Equal values: max = min + 1, every bucket but the last empty.
        let same = finish_heatmap(
            &[Vec::new()],
            &[Vec::new()],
            vec![point(10, 7), point(20, 7)],
            &params,
        );
        assert_eq!(same[0].slots[0].counts[19], 1);
        assert_eq!(same[0].slots[0].y_min, vec![7.0; 20]);
        let id = crate::request::profile_id_string(&[1; 16]);
        let mut best = exemplar(51, 71, &id);
        best.labels = vec![("pod".to_owned(), "a".to_owned())];
        assert_eq!(slots[1].exemplars, vec![best]);
        assert_eq!(slots[0].counts.iter().sum::<i32>(), 2);
    }
}
