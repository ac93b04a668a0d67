//! The query engine against a reference implementation: every stored profile kept decoded
//! beside the store, and each query answered from those by the foundation's own functions
//! (`pprof::to_tree`, the series bucket rule written out again). Random selectors, ranges,
//! steps, `max_nodes` and `group_by` over real test profiles stored in compacted blocks (with
//! rollups) and fresh segments: trees, pprof exports, series, exemplars and heatmaps agree;
//! rollups and raw reads agree; one worker and many agree.

use block::BlockWriter;
use formats::pprof::{self, LabelLimits, ProfileLimits, SeriesProfile};
use metastore::{Metastore, SqliteMetastore};
use model::{FlameGraph, Labels, MatchOp, Matcher, TenantId, TimeRange, Tree, write_collapsed};
use proptest::prelude::*;
use query::{
    Aggregation, ExemplarKind, HeatmapParams, Querier, QuerierConfig, QueryLimits, Selection,
    SeriesParams,
};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use storage::{ObjectStore, ObjectStoreExt};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// Data starts at a day boundary plus a bit, and spans three days and a half.
const START_MS: i64 = 1_700_006_400_000 + 7 * MINUTE;
const SPAN_MS: i64 = 3 * DAY + 12 * HOUR;
const EVERY_MS: i64 = 5 * MINUTE;

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

/// One stored (series, sample type) as the reference sees it.
#[derive(Debug)]
struct Stored {
    labels: Labels,
    profile_type: String,
    time_ms: i64,
    profile: Arc<pprof::Profile>,
    index: usize,
    id: block::ProfileId,
}

struct Fixture {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    store: Arc<dyn ObjectStore>,
    metastore: Arc<dyn Metastore>,
    tenant: TenantId,
    stored: Vec<Stored>,
}

/// The push path's series of a test file, for `service`.
fn series_of(file: &str, service: &str) -> Vec<SeriesProfile> {
    let body = testkit::read_testdata(file);
    let profile = pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES).expect("valid");
    let labels = Labels::from_pairs([("__name__", "process_cpu"), ("service_name", service)]);
    let limits = ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..ProfileLimits::default()
    };
    pprof::prepare_push(
        profile,
        &labels,
        &limits,
        &LabelLimits::default(),
        body.len(),
        1,
    )
    .expect("valid")
}

/// A copy of `series` at `time_ms` for `pod`, every value times `factor`, keeping only the
/// samples whose position is not a multiple of `skip` (so profiles differ in their stacks).
fn variant(
    series: &SeriesProfile,
    pod: &str,
    time_ms: i64,
    factor: i64,
    skip: usize,
) -> SeriesProfile {
    let mut out = series.clone();
    out.labels.set("pod", pod);
    out.profile.time_nanos = time_ms * 1_000_000;
    let samples = std::mem::take(&mut out.profile.sample);
    out.profile.sample = samples
        .into_iter()
        .enumerate()
        .filter(|(i, _)| skip == 0 || i % skip != 0)
        .map(|(_, mut s)| {
            for v in &mut s.value {
                *v *= factor;
            }
            s
        })
        .collect();
    out
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = storage::StorageConfig::Filesystem {
            dir: dir.path().join("objects"),
        }
        .open()
        .expect("store");
        let metastore: Arc<dyn Metastore> =
            Arc::new(SqliteMetastore::open(&dir.path().join("meta.db")).expect("metastore"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let tenant = TenantId::new("engine-test").expect("valid");
        // Two services of different real profiles, three pods each; `go.cpu.labels` splits into
        // several series by its pprof labels and carries span ids.
        let sources = [
            ("api", series_of("pprof/go.cpu.labels.pprof", "api")),
            ("worker", series_of("pprof/profile_java", "worker")),
        ];
        let mut stored = Vec::new();
        // Compacted blocks of a day each (rollups), then the last half day as small segments.
        let mut day_writer = BlockWriter::for_compaction();
        let mut segment = BlockWriter::new();
        let mut current_day = START_MS.div_euclid(DAY);
        let mut written = Vec::new();
        let mut n = 0i64;
        let mut time = START_MS;
        while time < START_MS + SPAN_MS {
            let compacted = time < START_MS + 3 * DAY;
            if compacted && time.div_euclid(DAY) != current_day {
                let full = std::mem::replace(&mut day_writer, BlockWriter::for_compaction());
                written.push((full.finish().expect("encode"), 1u32));
                current_day = time.div_euclid(DAY);
            }
            for (service, series) in &sources {
                for pod in ["a", "b", "c"] {
                    n += 1;
                    let id = uuid_like(n);
                    let factor = 1 + n % 5;
                    let skip = (n % 4) as usize;
                    for one in series {
                        let copy = variant(one, pod, time, factor, skip);
                        let writer = if compacted {
                            &mut day_writer
                        } else {
                            &mut segment
                        };
                        writer.add(&tenant, &copy, id);
                        let profile = Arc::new(copy.profile.clone());
                        for (index, (profile_type, labels)) in
                            copy.profile_types().into_iter().enumerate()
                        {
                            // A series without a value of this type is not stored.
                            if copy.profile.sample.iter().all(|s| s.value[index] == 0) {
                                continue;
                            }
                            stored.push(Stored {
                                labels,
                                profile_type: profile_type.to_string(),
                                time_ms: time,
                                profile: Arc::clone(&profile),
                                index,
                                id,
                            });
                        }
                    }
                    let _ = service;
                }
            }
            if !compacted && n % 30 == 0 {
                let full = std::mem::take(&mut segment);
                written.push((full.finish().expect("encode"), 0));
            }
            time += EVERY_MS;
        }
        written.push((day_writer.finish().expect("encode"), 1));
        written.push((segment.finish().expect("encode"), 0));
        runtime.block_on(async {
            for (encoded, level) in written {
                if encoded.datasets.is_empty() {
                    continue;
                }
                let id = ulid::Ulid::new();
                let tenant_of_block = (level > 0).then(|| tenant.clone());
                let meta = ingest::block_meta(&encoded, id, 0, level, tenant_of_block.clone());
                let path = storage::paths::object(level, 0, tenant_of_block.as_ref(), id);
                store
                    .put(&path, encoded.bytes.into())
                    .await
                    .expect("stored");
                metastore.add_block(&meta).await.expect("recorded");
            }
        });
        Fixture {
            _dir: dir,
            runtime,
            store,
            metastore,
            tenant,
            stored,
        }
    })
}

/// A profile id made of `n` (distinct for each pushed profile).
fn uuid_like(n: i64) -> [u8; 16] {
    let mut id = [0x5a; 16];
    id[..8].copy_from_slice(&n.to_le_bytes());
    id
}

fn querier(config: QuerierConfig) -> Querier {
    let f = fixture();
    Querier::new(Arc::clone(&f.store), Arc::clone(&f.metastore), config)
}

/// The reference: which stored entries a selection takes.
fn selected<'a>(selection: &'a Selection, lo_ms: i64) -> impl Iterator<Item = &'a Stored> + 'a {
    fixture().stored.iter().filter(move |s| {
        s.profile_type == selection.profile_type
            && s.time_ms >= lo_ms
            && s.time_ms <= selection.range.end_ms
            && selection
                .matchers
                .iter()
                .all(|m| m.matches_labels(&s.labels))
            && selection
                .profile_ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&s.id))
    })
}

/// Stacks whose frames, root first, start with `call_site`.
fn under(tree: &Tree, call_site: &[String]) -> Tree {
    let mut out = Tree::new();
    for (stack, value) in tree.stacks() {
        if stack.len() >= call_site.len() && stack.iter().zip(call_site).all(|(a, b)| a == b) {
            out.insert(&stack, value);
        }
    }
    out
}

fn reference_tree(selection: &Selection) -> Tree {
    let mut tree = Tree::new();
    for s in selected(selection, selection.range.start_ms) {
        tree.merge(&pprof::to_tree(&s.profile, s.index));
    }
    if selection.call_site.is_empty() {
        tree
    } else {
        under(&tree, &selection.call_site)
    }
}

/// A stored entry's value: its total, or under the call site.
fn value_of(s: &Stored, call_site: &[String]) -> i64 {
    let tree = pprof::to_tree(&s.profile, s.index);
    if call_site.is_empty() {
        tree.total()
    } else {
        under(&tree, call_site).total()
    }
}

/// Group labels → bucket → (sum, profiles).
type SeriesSums = BTreeMap<Vec<(String, String)>, BTreeMap<i64, (i64, u64)>>;

/// Pyroscope's series, written out: buckets `start + k·step`, a profile to the first at or
/// after it, from a step before the start (and, unlike Pyroscope, the last partial step kept).
fn reference_series(selection: &Selection, params: &SeriesParams) -> SeriesSums {
    let (start, step) = (selection.range.start_ms, params.step_ms);
    let mut out = SeriesSums::new();
    for s in selected(selection, start - step) {
        let k = if s.time_ms <= start {
            0
        } else {
            (s.time_ms - start + step - 1) / step
        };
        let bucket = start + k * step;
        let value = value_of(s, &selection.call_site);
        if !selection.call_site.is_empty() && value == 0 {
            continue;
        }
        let key: Vec<(String, String)> = params
            .group_by
            .iter()
            .filter_map(|n| s.labels.get(n).map(|v| (n.clone(), v.to_owned())))
            .collect();
        let slot = out.entry(key).or_default().entry(bucket).or_default();
        slot.0 += value;
        slot.1 += 1;
    }
    out
}

fn matcher(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher::new(name, op, value).expect("valid")
}

fn selection(matchers: Vec<Matcher>, start: i64, end: i64) -> Selection {
    Selection::new(
        fixture().tenant.clone(),
        CPU.to_owned(),
        matchers,
        TimeRange::new(start, end).expect("ordered"),
    )
}

fn limits(parallelism: usize) -> QueryLimits {
    QueryLimits {
        parallelism,
        ..QueryLimits::default()
    }
}

/// A random selector: a service, pods, both or neither.
fn matchers() -> impl Strategy<Value = Vec<Matcher>> {
    let service = prop_oneof![
        Just(None),
        Just(Some(matcher("service_name", MatchOp::Equal, "api"))),
        Just(Some(matcher("service_name", MatchOp::Equal, "worker"))),
        Just(Some(matcher("service_name", MatchOp::Regex, "api|worker"))),
    ];
    let pod = prop_oneof![
        Just(None),
        Just(Some(matcher("pod", MatchOp::Equal, "a"))),
        Just(Some(matcher("pod", MatchOp::NotEqual, "b"))),
        Just(Some(matcher("pod", MatchOp::Regex, "[ac]"))),
    ];
    (service, pod).prop_map(|(s, p)| s.into_iter().chain(p).collect())
}

/// A random range inside (and a little beyond) the data: minutes to days.
fn range() -> impl Strategy<Value = (i64, i64)> {
    (-2 * HOUR..SPAN_MS, 1..(SPAN_MS / MINUTE)).prop_map(|(offset, minutes)| {
        let start = START_MS + offset;
        (start, start + minutes * MINUTE)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn trees_and_flame_graphs_equal_the_reference(
        matchers in matchers(),
        (start, end) in range(),
        max_nodes in prop_oneof![Just(16usize), Just(1024), Just(8192)],
        focus in any::<bool>(),
    ) {
        let f = fixture();
        let mut selection = selection(matchers, start, end);
        let expected = reference_tree(&selection);
        if focus && let Some((stack, _)) = expected.stacks().first() {
            selection.call_site = stack.iter().take(2).map(|s| s.to_string()).collect();
        }
        let expected = reference_tree(&selection);
        let querier = querier(QuerierConfig::default());
        let (tree, stats) = f.runtime.block_on(querier.select_tree(&selection, &limits(4))).expect("query");
        prop_assert_eq!(write_collapsed(&tree), write_collapsed(&expected));
        prop_assert_eq!(
            FlameGraph::from_tree(&tree, max_nodes),
            FlameGraph::from_tree(&expected, max_nodes)
        );
        // Rows read never exceed what the range holds, rollups standing for many.
        prop_assert!(stats.row_groups_read <= stats.row_groups_total);
    }

    #[test]
    fn rollups_raw_reads_and_one_worker_agree(
        matchers in matchers(),
        (start, end) in range(),
    ) {
        let f = fixture();
        let selection = selection(matchers, start, end);
        let rolled = querier(QuerierConfig::default());
        let raw = querier(QuerierConfig { use_rollups: false, ..QuerierConfig::default() });
        let (a, a_stats) = f.runtime.block_on(rolled.select_tree(&selection, &limits(8))).expect("query");
        let (b, b_stats) = f.runtime.block_on(raw.select_tree(&selection, &limits(1))).expect("query");
        prop_assert_eq!(write_collapsed(&a), write_collapsed(&b));
        prop_assert_eq!(b_stats.rollup_rows, 0);
        // What rollups stood for plus what was read one by one is what the raw read read.
        prop_assert_eq!(a_stats.profiles + a_stats.rolled_up_profiles, b_stats.profiles);
        let (p, _) = f.runtime.block_on(rolled.select_profile(&selection, &limits(3))).expect("pprof");
        prop_assert_eq!(write_collapsed(&pprof::to_tree(&p, 0)), write_collapsed(&b));
    }

    #[test]
    fn series_equal_the_reference(
        matchers in matchers(),
        (start, end) in range(),
        step in prop_oneof![Just(MINUTE), Just(7 * MINUTE), Just(HOUR), Just(DAY)],
        group_by in prop_oneof![Just(vec![]), Just(vec!["pod".to_owned()]), Just(vec!["service_name".to_owned(), "pod".to_owned()])],
        average in any::<bool>(),
    ) {
        let f = fixture();
        let selection = selection(matchers, start, end);
        let params = SeriesParams {
            group_by,
            step_ms: step,
            aggregation: if average { Aggregation::Average } else { Aggregation::Sum },
            limit: None,
            exemplars: ExemplarKind::Individual,
        };
        let expected = reference_series(&selection, &params);
        let (series, _) = f.runtime.block_on(querier(QuerierConfig::default()).select_series(&selection, &params, &limits(4))).expect("series");
        let got: BTreeMap<Vec<(String, String)>, BTreeMap<i64, f64>> = series
            .iter()
            .map(|s| (s.labels.clone(), s.points.iter().map(|p| (p.timestamp, p.value)).collect()))
            .collect();
        let want: BTreeMap<Vec<(String, String)>, BTreeMap<i64, f64>> = expected
            .iter()
            .map(|(k, b)| (k.clone(), b.iter().map(|(&t, &(sum, n))| (t, if average { sum as f64 / n as f64 } else { sum as f64 })).collect()))
            .collect();
        prop_assert_eq!(got, want);
        // Every point's exemplar is one of its profiles, of the largest value there.
        for s in &series {
            for p in &s.points {
                prop_assert_eq!(p.exemplars.len(), 1);
                let e = &p.exemplars[0];
                prop_assert!(e.timestamp <= p.timestamp && e.timestamp > p.timestamp - step - step);
                prop_assert!(!e.profile_id.is_empty());
            }
        }
    }
}

#[test]
fn an_exemplar_opens_its_profile() {
    let f = fixture();
    let querier = querier(QuerierConfig::default());
    let selection = selection(
        vec![matcher("service_name", MatchOp::Equal, "worker")],
        START_MS,
        START_MS + 2 * HOUR,
    );
    let params = SeriesParams {
        group_by: vec!["pod".to_owned()],
        step_ms: 10 * MINUTE,
        aggregation: Aggregation::Sum,
        limit: None,
        exemplars: ExemplarKind::Individual,
    };
    let (series, _) = f
        .runtime
        .block_on(querier.select_series(&selection, &params, &limits(2)))
        .expect("series");
    let mut opened = 0;
    for point in series.iter().flat_map(|s| &s.points) {
        let exemplar = &point.exemplars[0];
        // The exemplar's labels are the series' other labels: the pod is the group's.
        assert!(exemplar.labels.iter().all(|(name, _)| name != "pod"));
        assert!(
            exemplar
                .labels
                .iter()
                .any(|(name, value)| name == "service_name" && value == "worker")
        );
        let id = query::parse_profile_id(&exemplar.profile_id).expect("a UUID");
        let mut one = selection.clone();
        one.profile_ids = Some(vec![id]);
        let (tree, stats) = f
            .runtime
            .block_on(querier.select_tree(&one, &limits(2)))
            .expect("tree");
        assert_eq!(tree.total(), exemplar.value, "the profile behind the point");
        assert_eq!(
            stats.rollup_rows, 0,
            "a profile id reads profiles, not rollups"
        );
        let (profile, _) = f
            .runtime
            .block_on(querier.select_profile(&one, &limits(2)))
            .expect("pprof");
        assert_eq!(pprof::to_tree(&profile, 0).total(), exemplar.value);
        opened += 1;
    }
    assert!(opened >= 30, "{opened} points");
}

#[test]
fn span_selectors_keep_their_samples() {
    let f = fixture();
    let querier = querier(QuerierConfig::default());
    let all = selection(
        vec![matcher("service_name", MatchOp::Equal, "api")],
        START_MS,
        START_MS + SPAN_MS,
    );
    let (tree, _) = f
        .runtime
        .block_on(querier.select_tree(&all, &limits(4)))
        .expect("tree");
    // Spans present in the source file, read back as the wire writes them.
    let mut spans = std::collections::BTreeSet::new();
    for s in selected(&all, START_MS) {
        for sample in &s.profile.sample {
            for label in &sample.label {
                if s.profile.string_table[label.key as usize] == "span_id" {
                    spans.insert(block::span_id(&s.profile.string_table[label.str as usize]));
                }
            }
        }
    }
    spans.remove(&0);
    assert!(!spans.is_empty(), "the test file carries spans");
    let one = *spans.iter().next().expect("a span");
    let mut with_span = all.clone();
    with_span.span_ids = Some(vec![one]);
    let (part, stats) = f
        .runtime
        .block_on(querier.select_tree(&with_span, &limits(4)))
        .expect("tree");
    assert!(part.total() > 0 && part.total() < tree.total());
    assert_eq!(stats.rollup_rows, 0);
    let mut nothing = all;
    nothing.span_ids = Some(vec![]);
    let (empty, _) = f
        .runtime
        .block_on(querier.select_tree(&nothing, &limits(4)))
        .expect("tree");
    assert_eq!(empty.total(), 0);
}

#[test]
fn heatmaps_count_every_profile_once() {
    let f = fixture();
    let querier = querier(QuerierConfig::default());
    let selection = selection(Vec::new(), START_MS, START_MS + 6 * HOUR);
    let params = HeatmapParams {
        group_by: vec!["service_name".to_owned()],
        step_ms: 30 * MINUTE,
        spans: false,
        exemplars: ExemplarKind::Individual,
        limit: None,
    };
    let (series, _) = f
        .runtime
        .block_on(querier.select_heatmap(&selection, &params, &limits(4)))
        .expect("heatmap");
    assert_eq!(series.len(), 2);
    // One point per pushed profile in the range (its series summed), per service.
    for s in &series {
        let service = &s.labels[0].1;
        let mut profiles = std::collections::BTreeSet::new();
        for e in selected(&selection, START_MS - params.step_ms) {
            if e.labels.get("service_name") == Some(service) {
                profiles.insert(e.id);
            }
        }
        let counted: i32 = s.slots.iter().flat_map(|slot| &slot.counts).sum();
        assert_eq!(counted as usize, profiles.len(), "{service}");
        for slot in &s.slots {
            assert_eq!(slot.y_min.len(), 20);
            let non_empty = slot.counts.iter().filter(|&&c| c > 0).count();
            assert_eq!(slot.exemplars.len(), non_empty);
        }
    }
}

#[test]
fn limits_are_named_when_exceeded() {
    let f = fixture();
    let querier = querier(QuerierConfig::default());
    let selection = selection(Vec::new(), START_MS, START_MS + SPAN_MS);
    let tight = QueryLimits {
        max_nodes: 10,
        ..QueryLimits::default()
    };
    let error = f
        .runtime
        .block_on(querier.select_tree(&selection, &tight))
        .expect_err("too many stacks");
    assert!(error.to_string().contains("max_query_nodes"), "{error}");
    assert!(matches!(error, query::QueryError::LimitExceeded(_)));
    let quick = QueryLimits {
        timeout: Some(std::time::Duration::from_nanos(1)),
        ..QueryLimits::default()
    };
    let uncached = querier_without_caches();
    let error = f
        .runtime
        .block_on(uncached.select_tree(&selection, &quick))
        .expect_err("too slow");
    assert!(matches!(error, query::QueryError::Timeout), "{error}");
}

fn querier_without_caches() -> Querier {
    querier(QuerierConfig {
        cache_bytes: 0,
        results_cache_bytes: 0,
        ..QuerierConfig::default()
    })
}

#[test]
fn a_refreshed_dashboard_reads_only_what_is_new() {
    let f = fixture();
    let querier = querier(QuerierConfig::default());
    let first = selection(Vec::new(), START_MS + HOUR, START_MS + 3 * DAY + HOUR);
    let (a, cold) = f
        .runtime
        .block_on(querier.select_tree(&first, &limits(4)))
        .expect("tree");
    // Ten seconds later: the compacted days read the same, from the cache.
    let later = selection(
        Vec::new(),
        START_MS + HOUR + 10_000,
        START_MS + 3 * DAY + HOUR + 10_000,
    );
    let (b, warm) = f
        .runtime
        .block_on(querier.select_tree(&later, &limits(4)))
        .expect("tree");
    assert!(warm.cached_tasks > 0, "{warm:?}");
    assert!(warm.bytes_read < cold.bytes_read, "{warm:?} vs {cold:?}");
    assert_eq!(
        write_collapsed(&b),
        write_collapsed(&reference_tree(&later))
    );
    assert_eq!(
        write_collapsed(&a),
        write_collapsed(&reference_tree(&first))
    );
}

#[test]
fn plans_travel_and_say_what_they_read() {
    let f = fixture();
    let querier = querier(QuerierConfig::default());
    let query = query::Query {
        selection: selection(Vec::new(), START_MS, START_MS + 3 * DAY),
        output: query::Output::Tree,
        max_nodes: usize::MAX,
    };
    let plan = f
        .runtime
        .block_on(querier.plan(&query, &limits(2)))
        .expect("plan");
    assert!(plan.tasks.iter().any(
        |t| matches!(t.table, query::TaskTable::Rollup { resolution_ms } if resolution_ms == DAY)
    ));
    assert!(plan.tasks.iter().any(
        |t| matches!(t.table, query::TaskTable::Rollup { resolution_ms } if resolution_ms == HOUR)
    ));
    assert!(
        plan.tasks
            .iter()
            .any(|t| t.table == query::TaskTable::Profiles)
    );
    let json = serde_json::to_string(&plan).expect("serialise");
    let back: query::Plan = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(back, plan);
    // Every task names what it costs.
    assert!(
        plan.tasks
            .iter()
            .all(|t| t.rows > 0 && t.bytes > 0 && !t.row_groups.is_empty())
    );
}
