//! The query engine at scale (issue 15). Two data sets, both on the embedded storage (local
//! files, SQLite):
//!
//! - **fleet**: SERVICES services × PODS pods, one profile per pod every 10 s for DAYS days,
//!   each a random variant (75 % of its stacks, values scaled) of a real profile of `testdata/`
//!   (service 0 is the Java one). Generated straight into storage through the compaction path
//!   (`BlockWriter::for_compaction` with `add_dataset`, which writes the rollups), one block per
//!   service and 12 hours, as compaction of a busy tenant leaves them; pushing 26 million
//!   profiles through the API would take hours. Kept under `target/bench-data/` (delete it to
//!   generate again).
//! - **pushed**: one pod at one profile a minute for 30 days, written through the server's own
//!   segment writer and compacted by its own compactor (levels 0 → 1 → 2), in process.
//!
//! For each query: the engine on fresh caches (a new `Querier` per run: every footer, index,
//! symbol table and column chunk read again; the OS page cache warm), the median of five runs;
//! and the same with the metadata cached. Beside them the same reads without rollups, and with
//! one worker. The 30-day flame graph's peak resident memory is measured alone (the peak reset
//! with `/proc/self/clear_refs` before it). With `--pprof`, Google's `pprof -proto` merges the
//! same 24 hours of service 0 written as pprof files (that takes minutes).
//!
//! With `--million`, a flame graph over one dataset of a million distinct stacks (prefix-sharing,
//! and random) reports its peak memory.
//!
//! `cargo bench -p emberscope-benches --bench query -- [DAYS] [SERVICES] [PODS] [--pprof] [--million]`
//! (default 30 10 10).

use block::{BlockReader, BlockWriter, DatasetContents, ProfileRow};
use formats::pprof::{self, LabelLimits, SeriesProfile};
use metastore::Metastore;
use model::{Labels, MatchOp, Matcher, TenantId, TimeRange};
use query::{
    Aggregation, ExemplarKind, Querier, QuerierConfig, QueryLimits, Selection, SeriesParams,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::{ObjectStore, ObjectStoreExt};
use ulid::Ulid;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECOND: i64 = 1_000;
const HOUR: i64 = 3_600 * SECOND;
const DAY: i64 = 24 * HOUR;
/// Where the fleet's time axis ends (a fixed instant, so the data set can be kept).
const END_MS: i64 = 1_767_225_600_000;
/// Where the queries end: not on a bucket boundary, as a dashboard's "last 24 h" is not.
const QUERY_END_MS: i64 = END_MS - 7 * 60 * SECOND - 17 * SECOND;
/// One block per service and this much time.
const BLOCK_MS: i64 = 12 * HOUR;
const INTERVAL_MS: i64 = 10 * SECOND;
const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

/// The real profiles the services send, service 0 first.
const SOURCES: [&str; 10] = [
    "pprof/profile_java",
    "pprof/profile_python",
    "pprof/go.cpu.labels.pprof",
    "pprof/profile_nodejs",
    "pprof/cpu-js.pb.gz",
    "pprof/cpu.pprof",
    "pprof/nodejs-wall.pb.gz",
    "clients/datadog-pprof-5.14.4_node_wall_cpu.pprof.gz",
    "pprof/heap.pb.gz",
    "pprof/heap_delta",
];

/// A small deterministic hash (splitmix64), for the variants.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn service_name(service: usize) -> String {
    format!("service-{service}")
}

fn pod_name(service: usize, pod: usize) -> String {
    format!("service-{service}-pod-{pod}")
}

/// The series the push path makes of a test file for a service.
fn series_of(file: &str, service: &str) -> Vec<SeriesProfile> {
    let body = emberscope_benches::read(file);
    let profile = pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES).expect("valid");
    let labels = Labels::from_pairs([("__name__", "process_cpu"), ("service_name", service)]);
    pprof::prepare_push(
        profile,
        &labels,
        &emberscope_benches::bench_limits(true),
        &LabelLimits::default(),
        body.len(),
        0,
    )
    .expect("valid")
}

/// A variant of a stored profile row at `time_ms` (seeded by the pushed profile's `seed`):
/// three quarters of its stacks, values times 1 to 8.
fn variant(row: &ProfileRow, seed: u64, time_ms: i64, id: [u8; 16]) -> ProfileRow {
    let factor = 1 + (mix(seed) % 8) as i64;
    let mut out = ProfileRow {
        series_id: row.series_id,
        time_nanos: time_ms * 1_000_000,
        total: 0,
        stack_ids: Vec::with_capacity(row.stack_ids.len()),
        values: Vec::with_capacity(row.values.len()),
        span_ids: Vec::with_capacity(row.span_ids.len()),
        profile_id: id,
    };
    for (i, ((&stack, &value), &span)) in row
        .stack_ids
        .iter()
        .zip(&row.values)
        .zip(&row.span_ids)
        .enumerate()
    {
        if mix(seed ^ (i as u64) << 32).is_multiple_of(4) {
            continue;
        }
        out.stack_ids.push(stack);
        out.values.push(value * factor);
        out.span_ids.push(span);
        out.total += value * factor;
    }
    out
}

/// The seed and id of the profile a pod pushed at `time_ms`.
fn profile_seed(service: usize, pod: usize, time_ms: i64) -> (u64, [u8; 16]) {
    let seed = mix(((service as u64) << 48) ^ ((pod as u64) << 40) ^ time_ms as u64);
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&seed.to_le_bytes());
    id[8..].copy_from_slice(&mix(seed).to_le_bytes());
    (seed, id)
}

/// Each service's dataset as the push path stores it for its pods: symbols, series and one row
/// per (pod, series, sample type), read back from a block.
async fn templates(tenant: &TenantId, services: usize, pods: usize) -> Vec<DatasetContents> {
    let mut writer = BlockWriter::new();
    for service in 0..services {
        let source = SOURCES[service % SOURCES.len()];
        for series in series_of(source, &service_name(service)) {
            for pod in 0..pods {
                let mut one = series.clone();
                one.labels.set("pod", pod_name(service, pod));
                writer.add(tenant, &one, [0; 16]);
            }
        }
    }
    let bytes = writer.finish().expect("encoded").bytes;
    let reader = BlockReader::from_bytes(bytes.into()).await.expect("open");
    let mut out = Vec::new();
    for service in 0..services {
        let name = service_name(service);
        let index = reader
            .datasets()
            .iter()
            .position(|d| d.service_name == name)
            .expect("dataset");
        out.push(reader.read_dataset(index).await.expect("read"));
    }
    out
}

/// Generates the fleet into `dir` (objects and a SQLite metastore).
async fn generate(dir: &Path, days: i64, services: usize, pods: usize) {
    let tenant = TenantId::new("bench").expect("valid");
    let (store, metastore) = emberscope_benches::local_storage(dir);
    let templates = templates(&tenant, services, pods).await;
    let start_ms = END_MS - days * DAY;
    let started = Instant::now();
    let mut written = 0u64;
    let mut profiles = 0u64;
    let mut window = start_ms;
    while window < END_MS {
        for (service, template) in templates.iter().enumerate() {
            let mut by_pod: Vec<Vec<&ProfileRow>> = vec![Vec::new(); pods];
            for row in template.rows() {
                let labels = template.series.labels(row.series_id).expect("series");
                let pod = labels.get("pod").expect("pod");
                let index: usize = pod
                    .rsplit('-')
                    .next()
                    .and_then(|p| p.parse().ok())
                    .expect("pod index");
                by_pod[index].push(row);
            }
            let mut rows = Vec::new();
            let mut time = window;
            while time < window + BLOCK_MS {
                for (pod, pod_rows) in by_pod.iter().enumerate() {
                    // Pods push a second apart.
                    let at = time + pod as i64 * SECOND;
                    let (seed, id) = profile_seed(service, pod, at);
                    for row in pod_rows {
                        rows.push(variant(row, seed ^ u64::from(row.series_id), at, id));
                    }
                    profiles += 1;
                }
                time += INTERVAL_MS;
            }
            let mut writer = BlockWriter::for_compaction();
            writer
                .add_dataset(&template.with_rows(rows))
                .expect("dataset");
            let encoded = tokio::task::spawn_blocking(move || writer.finish())
                .await
                .expect("task")
                .expect("encoded");
            let id = Ulid::new();
            let meta = ingest::block_meta(&encoded, id, 0, 2, Some(tenant.clone()));
            written += encoded.bytes.len() as u64;
            store
                .put(&storage::paths::block(&tenant, id), encoded.bytes.into())
                .await
                .expect("stored");
            metastore.add_block(&meta).await.expect("recorded");
        }
        window += BLOCK_MS;
        let done = (window - start_ms) as f64 / (days * DAY) as f64;
        eprint!(
            "\rgenerating: {:.0} % ({profiles} profiles, {:.0} MB, {:.0} s)   ",
            done * 100.0,
            written as f64 / 1e6,
            started.elapsed().as_secs_f64()
        );
    }
    eprintln!();
}

/// A flame graph's or series' timing: (median, min) of `runs` runs of `work`.
async fn time_runs<F, Fut>(runs: usize, mut work: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        work().await;
        times.push(started.elapsed());
    }
    times.sort();
    (times[times.len() / 2], times[0])
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn selection(tenant: &TenantId, service: &str, from_ms: i64, to_ms: i64) -> Selection {
    Selection::new(
        tenant.clone(),
        CPU.to_owned(),
        vec![Matcher::new("service_name", MatchOp::Equal, service).expect("valid")],
        TimeRange::new(from_ms, to_ms).expect("ordered"),
    )
}

/// Runs every query of the report against one data set.
async fn report(
    name: &str,
    store: Arc<dyn ObjectStore>,
    metastore: Arc<dyn Metastore>,
    tenant: &TenantId,
    service: &str,
    end_ms: i64,
    group_by: &str,
) {
    let fresh =
        |config: QuerierConfig| Querier::new(Arc::clone(&store), Arc::clone(&metastore), config);
    let no_results = QuerierConfig {
        results_cache_bytes: 0,
        ..QuerierConfig::default()
    };
    let limits = QueryLimits::default();
    let one = QueryLimits {
        parallelism: 1,
        ..QueryLimits::default()
    };
    println!("\n{name}: {service}");
    println!(
        "| query | fresh engine, median (best) | metadata cached | without rollups | one worker | profiles (rolled up) | row groups | bytes |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (label, span) in [
        ("flame graph 1 h", HOUR),
        ("flame graph 24 h", DAY),
        ("flame graph 30 d", 30 * DAY),
    ] {
        let sel = selection(tenant, service, end_ms - span, end_ms);
        let (cold, cold_best) = time_runs(5, || async {
            fresh(no_results)
                .select_tree(&sel, &limits)
                .await
                .expect("tree");
        })
        .await;
        let warm_engine = fresh(no_results);
        warm_engine.select_tree(&sel, &limits).await.expect("tree");
        let (warm, _) = time_runs(5, || async {
            warm_engine.select_tree(&sel, &limits).await.expect("tree");
        })
        .await;
        let raw_config = QuerierConfig {
            use_rollups: false,
            ..no_results
        };
        let (raw, _) = time_runs(3, || async {
            fresh(raw_config)
                .select_tree(&sel, &limits)
                .await
                .expect("tree");
        })
        .await;
        let (single, _) = time_runs(3, || async {
            fresh(no_results)
                .select_tree(&sel, &one)
                .await
                .expect("tree");
        })
        .await;
        let (_, stats) = fresh(no_results)
            .select_tree(&sel, &limits)
            .await
            .expect("tree");
        println!(
            "| {label} | {} ({}) | {} | {} | {} | {} ({}) | {} of {} | {:.1} MB |",
            ms(cold),
            ms(cold_best),
            ms(warm),
            ms(raw),
            ms(single),
            stats.profiles + stats.rolled_up_profiles,
            stats.rolled_up_profiles,
            stats.row_groups_read,
            stats.row_groups_total,
            stats.bytes_read as f64 / 1e6,
        );
    }
    for (label, span) in [
        ("series 24 h, step 1 h", DAY),
        ("series 30 d, step 1 h", 30 * DAY),
    ] {
        let sel = selection(tenant, service, end_ms - span, end_ms);
        let params = SeriesParams {
            group_by: vec![group_by.to_owned()],
            step_ms: HOUR,
            aggregation: Aggregation::Sum,
            limit: None,
            exemplars: ExemplarKind::None,
        };
        let (cold, cold_best) = time_runs(5, || async {
            fresh(no_results)
                .select_series(&sel, &params, &limits)
                .await
                .expect("series");
        })
        .await;
        let warm_engine = fresh(no_results);
        let (warm, _) = time_runs(5, || async {
            warm_engine
                .select_series(&sel, &params, &limits)
                .await
                .expect("series");
        })
        .await;
        let (single, _) = time_runs(3, || async {
            fresh(no_results)
                .select_series(&sel, &params, &one)
                .await
                .expect("series");
        })
        .await;
        let (_, stats) = fresh(no_results)
            .select_series(&sel, &params, &limits)
            .await
            .expect("series");
        println!(
            "| {label}, by {group_by} | {} ({}) | {} | — | {} | {} | {} of {} | {:.1} MB |",
            ms(cold),
            ms(cold_best),
            ms(warm),
            ms(single),
            stats.profiles,
            stats.row_groups_read,
            stats.row_groups_total,
            stats.bytes_read as f64 / 1e6,
        );
    }
}

/// Peak resident memory of one 30-day flame graph on a fresh engine, the peak reset first.
async fn peak_of_30_days(
    store: Arc<dyn ObjectStore>,
    metastore: Arc<dyn Metastore>,
    tenant: &TenantId,
    service: &str,
    end_ms: i64,
) {
    let before = emberscope_benches::status_kib("VmRSS:");
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let querier = Querier::new(store, metastore, QuerierConfig::default());
    let sel = selection(tenant, service, end_ms - 30 * DAY, end_ms);
    let started = Instant::now();
    let (tree, _) = querier
        .select_tree(&sel, &QueryLimits::default())
        .await
        .expect("tree");
    println!(
        "30-day flame graph of {service} ({} nodes) in {}: peak resident {:.0} MiB (resident before {:.0} MiB)",
        tree.node_count(),
        ms(started.elapsed()),
        emberscope_benches::status_kib("VmHWM:") as f64 / 1024.0,
        before as f64 / 1024.0
    );
}

/// A flame graph over one dataset of a million distinct stacks, for stacks sharing prefixes as
/// real programs' do and for random ones (the worst case, answered by the node limit): each
/// data set is written once under `dir`, then queried in a child process of its own, whose
/// peak resident memory is the query's.
async fn million_stacks(dir: &Path) {
    for kind in ["shared", "random"] {
        let folder = dir.join(format!("million-{kind}"));
        if !folder.join("complete").exists() {
            let _ = std::fs::remove_dir_all(&folder);
            std::fs::create_dir_all(&folder).expect("folder");
            let (store, metastore) = emberscope_benches::local_storage(&folder);
            let tenant = TenantId::new("bench").expect("valid");
            let profile = emberscope_benches::synthetic_profile(
                1_000_000,
                7,
                (END_MS - HOUR) * 1_000_000,
                kind == "shared",
            );
            let labels =
                Labels::from_pairs([("__name__", "process_cpu"), ("service_name", "million")]);
            let series = pprof::prepare_push(
                profile,
                &labels,
                &emberscope_benches::bench_limits(true),
                &LabelLimits::default(),
                0,
                0,
            )
            .expect("valid");
            let mut writer = BlockWriter::for_compaction();
            for one in &series {
                writer.add(&tenant, one, [9; 16]);
            }
            let encoded = writer.finish().expect("encoded");
            let id = Ulid::new();
            let meta = ingest::block_meta(&encoded, id, 0, 1, Some(tenant.clone()));
            store
                .put(&storage::paths::block(&tenant, id), encoded.bytes.into())
                .await
                .expect("stored");
            metastore.add_block(&meta).await.expect("recorded");
            std::fs::write(folder.join("complete"), b"").expect("marker");
        }
        let output = std::process::Command::new(std::env::current_exe().expect("this program"))
            .arg("--million-query")
            .arg(&folder)
            .output()
            .expect("child");
        print!("{}", String::from_utf8_lossy(&output.stdout));
    }
}

/// The child's side of [`million_stacks`]: one flame graph on a fresh process.
async fn million_query(folder: &Path) {
    let (store, metastore) = emberscope_benches::local_storage(folder);
    let before = emberscope_benches::status_kib("VmRSS:");
    let tenant = TenantId::new("bench").expect("valid");
    let querier = Querier::new(store, metastore, QuerierConfig::default());
    let sel = selection(&tenant, "million", END_MS - DAY, END_MS);
    let started = Instant::now();
    let outcome = querier.select_tree(&sel, &QueryLimits::default()).await;
    let elapsed = started.elapsed();
    let what = match &outcome {
        Ok((tree, _)) => format!("a tree of {} nodes", tree.node_count()),
        Err(e) => format!("refused: {e}"),
    };
    println!(
        "flame graph of 1,000,000 {} stacks: {what} in {}; peak resident {:.0} MiB (the process before it: {:.0} MiB)",
        folder.file_name().and_then(|n| n.to_str()).unwrap_or(""),
        ms(elapsed),
        emberscope_benches::status_kib("VmHWM:") as f64 / 1024.0,
        before as f64 / 1024.0
    );
}

/// The pushed data set: one pod, one profile a minute for 30 days, through the segment writer
/// and the compactor.
async fn pushed(dir: &Path) -> (Arc<dyn ObjectStore>, Arc<dyn Metastore>, i64) {
    let (store, metastore) = emberscope_benches::local_storage(dir);
    let metastore: Arc<dyn Metastore> = metastore;
    let end_ms = END_MS;
    if dir.join("complete").exists() {
        return (store, metastore, end_ms);
    }
    let tenant = TenantId::new("bench").expect("valid");
    let series = series_of(SOURCES[0], "pushed");
    let writer = ingest::SegmentWriter::start(
        ingest::SegmentWriterConfig::default(),
        Arc::clone(&store),
        Arc::clone(&metastore),
    );
    let started = Instant::now();
    let mut pending = Vec::new();
    let minutes = 30 * 24 * 60;
    for minute in 0..minutes {
        let at = end_ms - 30 * DAY + minute * 60 * SECOND;
        let mut batch = Vec::new();
        for one in &series {
            let mut copy = one.clone();
            copy.labels.set("pod", "pushed-pod-0");
            copy.profile.time_nanos = at * 1_000_000;
            batch.push(copy);
        }
        let write = writer
            .add(&tenant, pprof::Prepared::Series(batch), 20_000)
            .await
            .expect("added");
        pending.push(write);
        if pending.len() >= 2_000 {
            for write in pending.drain(..) {
                write.durable().await.expect("stored");
            }
        }
    }
    for write in pending {
        write.durable().await.expect("stored");
    }
    writer.shutdown().await;
    eprintln!(
        "pushed {minutes} profiles in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let compactor = compactor::Compactor::new(
        Arc::clone(&store),
        Arc::clone(&metastore),
        compactor::CompactorConfig::default(),
    );
    let started = Instant::now();
    let mut jobs = 0;
    while compactor
        .compact_once(model::time::now_ms())
        .await
        .expect("compaction")
        .is_some()
    {
        jobs += 1;
    }
    eprintln!(
        "compacted in {jobs} jobs, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    std::fs::write(dir.join("complete"), b"").expect("marker");
    (store, metastore, end_ms)
}

/// `pprof -proto` on the same 24 hours of one pod of service 0 (8,640 profiles), written as
/// pprof files, beside the engine's flame graph of that pod and range.
async fn pprof_baseline(dir: &Path, store: Arc<dyn ObjectStore>, metastore: Arc<dyn Metastore>) {
    let files = dir.join("pprof-24h-pod-0");
    std::fs::create_dir_all(&files).expect("folder");
    let body = emberscope_benches::read(SOURCES[0]);
    let base = pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES).expect("valid");
    let (from, to) = (QUERY_END_MS - DAY, QUERY_END_MS);
    let mut paths = Vec::new();
    let mut time = END_MS - 31 * DAY;
    while time < END_MS {
        let at = time;
        time += INTERVAL_MS;
        if at < from || at > to {
            continue;
        }
        let (seed, _) = profile_seed(0, 0, at);
        let mut profile = base.clone();
        profile.time_nanos = at * 1_000_000;
        let factor = 1 + (mix(seed) % 8) as i64;
        let samples = std::mem::take(&mut profile.sample);
        profile.sample = samples
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !mix(seed ^ (*i as u64) << 32).is_multiple_of(4))
            .map(|(_, mut s)| {
                s.value.iter_mut().for_each(|v| *v *= factor);
                s
            })
            .collect();
        let path = files.join(format!("{at}.pb"));
        if !path.exists() {
            use prost::Message as _;
            std::fs::write(&path, profile.encode_to_vec()).expect("write");
        }
        paths.push(path);
    }
    let out = dir.join("pprof-24h-pod-0.pb.gz");
    let started = Instant::now();
    let status = std::process::Command::new("pprof")
        .args(["-symbolize=none", "-proto", "-output"])
        .arg(&out)
        .args(&paths)
        .status();
    let pprof_time = started.elapsed();
    let tenant = TenantId::new("bench").expect("valid");
    let mut sel = selection(&tenant, "service-0", from, to);
    sel.matchers
        .push(Matcher::new("pod", MatchOp::Equal, pod_name(0, 0)).expect("valid"));
    let (ours, _) = time_runs(5, || async {
        Querier::new(
            Arc::clone(&store),
            Arc::clone(&metastore),
            QuerierConfig::default(),
        )
        .select_profile(&sel, &QueryLimits::default())
        .await
        .expect("pprof");
    })
    .await;
    match status {
        Ok(s) if s.success() => println!(
            "24 h of one pod ({} profiles) merged into one pprof: pprof -proto {:.1} s, emberscope (fresh engine, median) {}: {:.0}x",
            paths.len(),
            pprof_time.as_secs_f64(),
            ms(ours),
            pprof_time.as_secs_f64() / ours.as_secs_f64()
        ),
        other => println!("pprof -proto failed: {other:?} (scripts/pprof-oracle installs it)"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--bench"))
        .collect();
    if let Some(at) = args.iter().position(|a| a == "--million-query") {
        let folder = PathBuf::from(args.get(at + 1).expect("a folder"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(million_query(&folder));
        return;
    }
    let numbers: Vec<i64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let days = numbers.first().copied().unwrap_or(30);
    let services = numbers.get(1).copied().unwrap_or(10) as usize;
    let pods = numbers.get(2).copied().unwrap_or(10) as usize;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    let dir = root.join(format!("query-fleet-{days}d-{services}x{pods}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let tenant = TenantId::new("bench").expect("valid");
    runtime.block_on(async {
        if !dir.join("complete").exists() {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("folder");
            generate(&dir, days, services, pods).await;
            std::fs::write(dir.join("complete"), b"").expect("marker");
        }
        let (store, metastore) = emberscope_benches::local_storage(&dir);
        let metastore: Arc<dyn Metastore> = metastore;
        if let Some(at) = args.iter().position(|a| a == "--repeat-hours") {
            // For a profiler: one range (hours back from the queries' end) again and again on
            // an engine with its metadata cached (no results cache).
            let hours: i64 = args.get(at + 1).and_then(|h| h.parse().ok()).unwrap_or(1);
            let querier = Querier::new(
                Arc::clone(&store),
                Arc::clone(&metastore),
                QuerierConfig {
                    results_cache_bytes: 0,
                    ..QuerierConfig::default()
                },
            );
            let sel = selection(&tenant, "service-0", QUERY_END_MS - hours * HOUR, QUERY_END_MS);
            for workers in [1, query::default_parallelism()] {
                let limits = QueryLimits {
                    parallelism: workers,
                    ..QueryLimits::default()
                };
                let (median, best) = time_runs(200, || async {
                    querier.select_tree(&sel, &limits).await.expect("tree");
                })
                .await;
                let (_, stats) = querier.select_tree(&sel, &limits).await.expect("tree");
                println!(
                    "{hours} h flame graph, {workers} worker(s), 200 runs: median {}, best {} ({} tasks, {} profiles, {} rolled up)",
                    ms(median),
                    ms(best),
                    stats.tasks,
                    stats.profiles,
                    stats.rolled_up_profiles
                );
            }
            return;
        }
        peak_of_30_days(
            Arc::clone(&store),
            Arc::clone(&metastore),
            &tenant,
            "service-0",
            QUERY_END_MS,
        )
        .await;
        if args.iter().any(|a| a == "--million") {
            million_stacks(&root).await;
        }
        report(
            &format!("fleet: {services} services × {pods} pods, a profile every 10 s, {days} days, one block per service and 12 h"),
            Arc::clone(&store),
            Arc::clone(&metastore),
            &tenant,
            "service-0",
            QUERY_END_MS,
            "pod",
        )
        .await;
        if args.iter().any(|a| a == "--pprof") {
            pprof_baseline(&dir, Arc::clone(&store), Arc::clone(&metastore)).await;
        }
        let pushed_dir = root.join("query-pushed-30d");
        std::fs::create_dir_all(&pushed_dir).expect("folder");
        let (store, metastore, _) = pushed(&pushed_dir).await;
        report(
            "pushed: one pod, a profile a minute, 30 days, through the segment writer and compactor",
            store,
            metastore,
            &tenant,
            "pushed",
            QUERY_END_MS,
            "pod",
        )
        .await;
    });
}
