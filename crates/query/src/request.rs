//! What a query asks: which profiles ([`Selection`]), what to make of them ([`Output`]), and
//! within which limits ([`QueryLimits`]). Both travel with the plan's tasks, so they are
//! serialisable.

use block::ProfileId;
use model::{Matcher, TenantId, TimeRange};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which profiles a query reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    pub tenant: TenantId,
    /// Profile type id (`process_cpu:cpu:nanoseconds:cpu:nanoseconds`).
    pub profile_type: String,
    /// Label matchers on the series (`service_name` among them, usually).
    pub matchers: Vec<Matcher>,
    pub range: TimeRange,
    /// Only samples carrying one of these span ids (`SelectMergeSpanProfile`); `None`: all.
    pub span_ids: Option<Vec<u64>>,
    /// Only these profiles (`profile_id_selector`); `None`: all.
    pub profile_ids: Option<Vec<ProfileId>>,
    /// Only stacks whose frames, root first, start with these names; empty: all.
    pub call_site: Vec<String>,
}

impl Selection {
    /// Every profile of `profile_type` matching `matchers` in `range`.
    pub fn new(
        tenant: TenantId,
        profile_type: String,
        matchers: Vec<Matcher>,
        range: TimeRange,
    ) -> Selection {
        Selection {
            tenant,
            profile_type,
            matchers,
            range,
            span_ids: None,
            profile_ids: None,
            call_site: Vec::new(),
        }
    }

    /// The selection's range in nanoseconds (profile timestamps' unit), both ends included.
    pub(crate) fn nanos(&self) -> (i64, i64) {
        (self.range.start_nanos(), self.range.end_nanos())
    }

    /// Whether only part of a profile's samples count (spans, or a call site).
    pub(crate) fn filters_samples(&self) -> bool {
        self.span_ids.is_some() || !self.call_site.is_empty()
    }

    /// Whether the query can be answered from rollups, which keep neither spans nor profiles.
    pub(crate) fn rollups_allowed(&self) -> bool {
        self.span_ids.is_none() && self.profile_ids.is_none()
    }
}

/// How the points of one time bucket combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Aggregation {
    #[default]
    Sum,
    Average,
}

/// Which exemplars a series or heatmap carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ExemplarKind {
    #[default]
    None,
    /// The profile of highest value behind each point.
    Individual,
    /// The span of highest value behind each point.
    Span,
}

/// What `SelectSeries` asks beyond the profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesParams {
    /// Labels that name a series; empty: everything is one series.
    pub group_by: Vec<String>,
    /// Bucket width in milliseconds (> 0).
    pub step_ms: i64,
    pub aggregation: Aggregation,
    /// Keep only the `limit` series with the largest totals.
    pub limit: Option<usize>,
    pub exemplars: ExemplarKind,
}

/// What `SelectHeatmap` asks beyond the profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeatmapParams {
    pub group_by: Vec<String>,
    /// Slot width in milliseconds (> 0).
    pub step_ms: i64,
    /// Whether a point is a profile's total (`false`) or one span's total within a profile.
    pub spans: bool,
    pub exemplars: ExemplarKind,
    pub limit: Option<usize>,
}

/// What a query makes of its profiles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Output {
    /// One stack tree (flame graphs, tree bytes, diffs).
    Tree,
    /// One pprof (`SelectMergeProfile`).
    Profile,
    /// Time series of the profiles' totals.
    Series(SeriesParams),
    /// Distributions of individual profiles' totals over time.
    Heatmap(HeatmapParams),
}

impl Output {
    /// Whether the answer needs each profile on its own (rollups cannot serve it).
    pub(crate) fn per_profile(&self) -> bool {
        matches!(self, Output::Series(_) | Output::Heatmap(_))
    }
}

/// A whole query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Query {
    pub selection: Selection,
    pub output: Output,
    /// Distinct stacks (tree nodes) a partial or merged tree may hold (the query's
    /// `max_nodes` limit, checked by every task as its tree grows).
    pub max_nodes: usize,
}

/// The bounds one query runs within (per tenant; `server` fills them from the limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Read tasks in flight at once.
    pub parallelism: usize,
    /// How long the query may run (`None`: no limit).
    pub timeout: Option<Duration>,
    /// Distinct stacks (tree nodes) a merged answer may hold: its memory bound.
    pub max_nodes: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        QueryLimits {
            parallelism: default_parallelism(),
            timeout: None,
            max_nodes: DEFAULT_MAX_QUERY_NODES,
        }
    }
}

/// Distinct stacks one query may merge by default: a tree of this many nodes takes about
/// 100 bytes a node with its names, so the default bounds a query at about 800 MiB.
pub const DEFAULT_MAX_QUERY_NODES: usize = 8_000_000;

/// Read tasks in flight by default: two per core (one fetching while one decodes).
pub fn default_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// What a query read, for `AnalyzeQuery` and the benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryStats {
    pub blocks: usize,
    pub datasets: usize,
    pub tasks: usize,
    /// Row groups read, and those the tables had in all (the rest were pruned).
    pub row_groups_read: usize,
    pub row_groups_total: usize,
    /// Bytes of column chunks fetched (cache misses of metadata not counted).
    pub bytes_read: u64,
    /// Profiles read one by one.
    pub profiles: u64,
    /// Rollup rows read, and the profiles they stood for.
    pub rollup_rows: u64,
    pub rolled_up_profiles: u64,
    /// Resolutions (ms) of the rollups read.
    pub rollup_resolutions: Vec<i64>,
    /// Tasks answered from the partial result cache.
    pub cached_tasks: usize,
}

impl QueryStats {
    /// Adds a task's counts (row groups are counted once per query, from its plan).
    pub(crate) fn add(&mut self, other: &QueryStats) {
        self.bytes_read += other.bytes_read;
        self.profiles += other.profiles;
        self.rollup_rows += other.rollup_rows;
        self.rolled_up_profiles += other.rolled_up_profiles;
        self.cached_tasks += other.cached_tasks;
        for r in &other.rollup_resolutions {
            if !self.rollup_resolutions.contains(r) {
                self.rollup_resolutions.push(*r);
            }
        }
        self.rollup_resolutions.sort_unstable();
    }
}

/// What a tenant has stored, for `GetProfileStats` and `AnalyzeQuery`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantStats {
    /// Oldest and newest profile times in ms, when there is data.
    pub range_ms: Option<(i64, i64)>,
    pub blocks: usize,
    pub datasets: usize,
    /// Bytes of the datasets (index, profiles, rollups and symbols).
    pub bytes: u64,
}

/// A profile id in its UUID text form (`8-4-4-4-12` hex digits); empty for a profile stored
/// without one.
pub fn profile_id_string(id: &ProfileId) -> String {
    if id.iter().all(|&b| b == 0) {
        return String::new();
    }
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A profile id from its UUID text form (with or without hyphens, any case, optionally in
/// braces or with a `urn:uuid:` prefix, as Go's `uuid.Parse` reads it).
pub fn parse_profile_id(text: &str) -> Result<ProfileId, String> {
    let trimmed = text
        .strip_prefix("urn:uuid:")
        .unwrap_or(text)
        .trim_start_matches('{')
        .trim_end_matches('}');
    let hex: String = match trimmed.len() {
        36 => {
            let bytes = trimmed.as_bytes();
            if [8, 13, 18, 23].iter().any(|&i| bytes[i] != b'-') {
                return Err("invalid UUID format".to_owned());
            }
            trimmed.chars().filter(|&c| c != '-').collect()
        }
        32 => trimmed.to_owned(),
        _ => return Err(format!("invalid UUID length: {}", text.len())),
    };
    let mut id = [0u8; 16];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = hex
            .get(2 * i..2 * i + 2)
            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            .ok_or_else(|| "invalid UUID format".to_owned())?;
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_ids_read_and_print_as_uuids() {
        let text = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
        let id = parse_profile_id(text).expect("valid");
        assert_eq!(id[0], 0x6b);
        assert_eq!(profile_id_string(&id), text);
        assert_eq!(parse_profile_id(&text.to_uppercase()), Ok(id));
        assert_eq!(parse_profile_id(&text.replace('-', "")), Ok(id));
        assert_eq!(parse_profile_id(&format!("{{{text}}}")), Ok(id));
        assert_eq!(parse_profile_id(&format!("urn:uuid:{text}")), Ok(id));
        assert_eq!(
            parse_profile_id("abc"),
            Err("invalid UUID length: 3".to_owned())
        );
        assert_eq!(
            parse_profile_id("6ba7b810x9dad-11d1-80b4-00c04fd430c8"),
            Err("invalid UUID format".to_owned())
        );
        assert_eq!(
            parse_profile_id("zba7b810-9dad-11d1-80b4-00c04fd430c8"),
            Err("invalid UUID format".to_owned())
        );
        assert_eq!(profile_id_string(&[0; 16]), "");
    }

    #[test]
    fn queries_travel_as_json() {
        let query = Query {
            selection: Selection {
                span_ids: Some(vec![7]),
                call_site: vec!["main".to_owned()],
                ..Selection::new(
                    TenantId::new("t").expect("valid"),
                    "process_cpu:cpu:nanoseconds:cpu:nanoseconds".to_owned(),
                    vec![Matcher::new("pod", model::MatchOp::Regex, "a.*").expect("valid")],
                    TimeRange::new(1, 2).expect("ordered"),
                )
            },
            output: Output::Series(SeriesParams {
                group_by: vec!["pod".to_owned()],
                step_ms: 1000,
                aggregation: Aggregation::Average,
                limit: Some(3),
                exemplars: ExemplarKind::Individual,
            }),
            max_nodes: 10,
        };
        let json = serde_json::to_string(&query).expect("serialise");
        let back: Query = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, query);
        assert!(back.selection.matchers[0].matches(Some("abc")));
        // A regex that does not compile does not arrive.
        let bad = json.replace("a.*", "(");
        assert!(serde_json::from_str::<Query>(&bad).is_err());
    }
}
