//! Compaction, garbage collection and retention on real storage (local files) and a real
//! metastore (SQLite), checked through the query read API against the foundation's stacks.

use compactor::{Compactor, CompactorConfig};
use formats::pprof::{self, LabelLimits, ProfileLimits, SeriesProfile};
use futures_lite::collect_keys;
use ingest::{SegmentWriter, SegmentWriterConfig};
use metastore::{Metastore, SqliteMetastore};
use model::{Labels, MatchOp, Matcher, TenantId, Tree, write_collapsed};
use query::{Querier, QueryLimits, Selection};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use storage::{ObjectStore, StorageConfig};

mod futures_lite {
    use storage::ObjectStore;
    /// Keys under a prefix.
    pub async fn collect_keys(store: &dyn ObjectStore, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        store
            .list(Some(&storage::Path::from(prefix)))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .expect("list")
    }
}

fn pushed(relative: &str, service: &str, time_nanos: i64) -> Vec<SeriesProfile> {
    let body = testkit::read_testdata(relative);
    let mut profile = pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES).expect("valid");
    profile.time_nanos = time_nanos;
    let limits = ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..ProfileLimits::default()
    };
    let labels = Labels::from_pairs([("__name__", "process_cpu"), ("service_name", service)]);
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

/// Writes `relative` as `service` of `tenant` once per time (one segment each, as `writer`
/// flushes every write); returns the tree of sample type 1 of everything written.
async fn write_copies(
    writer: &SegmentWriter,
    tenant: &TenantId,
    relative: &str,
    service: &str,
    times: impl IntoIterator<Item = i64>,
) -> Tree {
    let mut expected = Tree::new();
    for time in times {
        let series = pushed(relative, service, time);
        for one in &series {
            expected.merge(&pprof::to_tree(&one.profile, 1));
        }
        writer
            .write(tenant.clone(), series, 1)
            .await
            .expect("acknowledged");
    }
    expected
}

struct Env {
    _dir: tempfile::TempDir,
    store: Arc<dyn ObjectStore>,
    metastore: Arc<SqliteMetastore>,
}

fn env() -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = StorageConfig::Filesystem {
        dir: dir.path().join("objects"),
    }
    .open()
    .expect("store");
    let metastore =
        Arc::new(SqliteMetastore::open(&dir.path().join("metastore.db")).expect("metastore"));
    Env {
        _dir: dir,
        store,
        metastore,
    }
}

/// A writer that flushes every write into its own segment.
fn writer(env: &Env) -> SegmentWriter {
    let config = SegmentWriterConfig {
        flush_interval: Duration::from_millis(20),
        max_head_bytes: 1,
        ..SegmentWriterConfig::default()
    };
    SegmentWriter::start(config, Arc::clone(&env.store), env.metastore.clone())
}

fn compactor(env: &Env, config: CompactorConfig) -> Compactor {
    Compactor::new(Arc::clone(&env.store), env.metastore.clone(), config)
}

fn eager() -> CompactorConfig {
    CompactorConfig {
        min_segments_per_job: 1,
        grace_period: Duration::ZERO,
        ..CompactorConfig::default()
    }
}

async fn read(env: &Env, tenant: &TenantId, service: &str, profile_type: &str) -> String {
    let querier = Querier::new(
        Arc::clone(&env.store),
        env.metastore.clone(),
        Default::default(),
    );
    let selection = Selection::new(
        tenant.clone(),
        profile_type.to_owned(),
        vec![Matcher::new("service_name", MatchOp::Equal, service).expect("valid")],
        model::TimeRange::new(0, i64::MAX / 2_000_000).expect("ordered"),
    );
    let (tree, _) = querier
        .select_tree(&selection, &QueryLimits::default())
        .await
        .expect("query");
    write_collapsed(&tree)
}

const FILES: &[(&str, &str)] = &[
    ("pprof/cpu.pprof", "go-cpu"),
    ("pprof/heap", "go-heap"),
    ("pprof/profile_java", "java"),
    ("pprof/go.cpu.labels.pprof", "labels"),
    ("clients/pyroscope-io-1.4.0_cpu.pprof", "python"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_keeps_every_stack_and_frees_segments() {
    let env = env();
    let writer = writer(&env);
    let tenants = [
        TenantId::new("tenant-a").expect("valid"),
        TenantId::new("tenant-b").expect("valid"),
    ];
    let mut expected: BTreeMap<(String, String, String), Tree> = BTreeMap::new();
    for (t, tenant) in tenants.iter().enumerate() {
        for (i, (file, service)) in FILES.iter().enumerate() {
            if t == 1 && i % 2 == 1 {
                continue; // tenant b has fewer services
            }
            for copy in 0..2i64 {
                let time = 1_700_000_000_000_000_000 + copy * 10_000_000_000 + i as i64;
                let series = pushed(file, service, time);
                for one in &series {
                    for (index, (profile_type, _)) in one.profile_types().into_iter().enumerate() {
                        expected
                            .entry((
                                tenant.to_string(),
                                service.to_string(),
                                profile_type.to_string(),
                            ))
                            .or_default()
                            .merge(&pprof::to_tree(&one.profile, index));
                    }
                }
                writer
                    .write(tenant.clone(), series, 1)
                    .await
                    .expect("acknowledged");
            }
        }
    }
    writer.shutdown().await;
    let segments_before = collect_keys(&*env.store, "segments").await.len();
    assert!(segments_before >= 10, "{segments_before} segments");

    let check = |label: &'static str| {
        let env = &env;
        let expected = &expected;
        async move {
            for ((tenant, service, profile_type), tree) in expected {
                let tenant = TenantId::new(tenant).expect("valid");
                assert_eq!(
                    read(env, &tenant, service, profile_type).await,
                    write_collapsed(tree),
                    "{label}: {tenant} {service} {profile_type}"
                );
            }
        }
    };
    check("before compaction").await;

    let compactor = compactor(&env, eager());
    let report = compactor
        .compact_once(2_000)
        .await
        .expect("compact")
        .expect("a job ran");
    assert_eq!(report.segments, segments_before);
    assert_eq!(report.blocks, 2, "one block per tenant");
    assert_eq!(
        report.profiles_in, report.profiles_out,
        "no duplicates here"
    );
    check("after compaction").await;
    assert_eq!(
        env.metastore
            .live_blocks(0, 1000)
            .await
            .expect("live")
            .len(),
        0
    );
    assert_eq!(
        env.metastore
            .live_blocks(1, 1000)
            .await
            .expect("live")
            .len(),
        2
    );

    // Replaced segments go after the grace period; the blocks keep answering.
    assert_eq!(
        compactor.collect_garbage(1_999).await.expect("gc"),
        0,
        "still in grace"
    );
    assert_eq!(
        compactor.collect_garbage(3_000).await.expect("gc"),
        segments_before
    );
    assert!(collect_keys(&*env.store, "segments").await.is_empty());
    check("after garbage collection").await;
    assert_eq!(
        compactor.compact_once(4_000).await.expect("compact"),
        None,
        "nothing left to do"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_duplicates_are_kept_once() {
    let env = env();
    let writer = writer(&env);
    let tenant = TenantId::new("t").expect("valid");
    let time = 1_700_000_000_000_000_000;
    for _ in 0..3 {
        writer
            .write(tenant.clone(), pushed("pprof/cpu.pprof", "api", time), 1)
            .await
            .expect("ack");
    }
    writer.shutdown().await;
    let cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    let series = pushed("pprof/cpu.pprof", "api", time);
    let once = write_collapsed(&pprof::to_tree(&series[0].profile, 1));
    assert_ne!(
        read(&env, &tenant, "api", cpu).await,
        once,
        "three copies before compaction"
    );
    let report = compactor(&env, eager())
        .compact_once(1)
        .await
        .expect("compact")
        .expect("ran");
    assert_eq!(report.profiles_out * 3, report.profiles_in);
    assert_eq!(read(&env, &tenant, "api", cpu).await, once);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_old_data_per_tenant() {
    let env = env();
    let writer = writer(&env);
    let (short, long) = (
        TenantId::new("short").expect("valid"),
        TenantId::new("long").expect("valid"),
    );
    let hour_nanos = 3_600_000_000_000i64;
    let base = 1_700_000_000_000_000_000i64;
    for tenant in [&short, &long] {
        writer
            .write(tenant.clone(), pushed("pprof/cpu.pprof", "api", base), 1)
            .await
            .expect("ack");
        writer
            .write(
                tenant.clone(),
                pushed("pprof/cpu.pprof", "api", base + 48 * hour_nanos),
                1,
            )
            .await
            .expect("ack");
    }
    writer.shutdown().await;
    let mut config = eager();
    config
        .tenant_retention
        .insert(short.clone(), Duration::from_secs(24 * 3600));
    let compactor = compactor(&env, config);
    compactor
        .compact_once(1)
        .await
        .expect("compact")
        .expect("ran");
    // Now = base + 50 h: short keeps the last 24 h; long keeps everything.
    let now_ms = (base + 50 * hour_nanos) / 1_000_000;
    // Compacted blocks span both profiles, so nothing of a block is expired yet…
    assert_eq!(
        compactor.apply_retention(now_ms).await.expect("retention"),
        0
    );
    // …until all of a block's data is past its tenant's period.
    assert_eq!(
        compactor
            .apply_retention(now_ms + 24 * 3_600_000)
            .await
            .expect("retention"),
        1
    );
    let cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    assert!(read(&env, &short, "api", cpu).await.is_empty());
    assert!(!read(&env, &long, "api", cpu).await.is_empty());
    assert_eq!(
        compactor
            .collect_garbage(now_ms + 25 * 3_600_000)
            .await
            .expect("gc"),
        1 + 4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_the_jobs_and_levels_climb() {
    let env = env();
    let writer = writer(&env);
    let tenant = TenantId::new("t").expect("valid");
    let times = (0..6i64).map(|i| 1_700_000_000_000_000_000 + i * 10_000_000_000);
    let expected = write_copies(&writer, &tenant, "pprof/cpu.pprof", "api", times).await;
    writer.shutdown().await;
    let config = CompactorConfig {
        max_segments_per_job: 2,
        min_segments_per_job: 1,
        min_blocks_per_job: 2,
        grace_period: Duration::ZERO,
        ..CompactorConfig::default()
    };
    let (first, second) = (compactor(&env, config.clone()), compactor(&env, config));
    let mut reports = Vec::new();
    loop {
        let (a, b) = tokio::join!(first.compact_once(10), second.compact_once(10));
        let done: Vec<_> = [a.expect("first"), b.expect("second")]
            .into_iter()
            .flatten()
            .collect();
        if done.is_empty() {
            break;
        }
        reports.extend(done);
    }
    // Three level-0 jobs of two segments each, then one level-1 job of two of the three blocks.
    assert_eq!(reports.len(), 4, "{reports:?}");
    assert!(
        reports.iter().all(|r| r.segments == 2 && r.blocks == 1),
        "{reports:?}"
    );
    assert!(
        env.metastore
            .live_blocks(0, 100)
            .await
            .expect("live")
            .is_empty()
    );
    assert_eq!(
        env.metastore.live_blocks(1, 100).await.expect("live").len(),
        1
    );
    assert_eq!(
        env.metastore.live_blocks(2, 100).await.expect("live").len(),
        1
    );
    let cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    assert_eq!(
        read(&env, &tenant, "api", cpu).await,
        write_collapsed(&expected)
    );
}

/// `max_bytes_per_job`: a service larger than one job is compacted by several jobs, none of
/// them over the limit, into several blocks that together keep every stack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_sized_by_bytes() {
    let env = env();
    let writer = writer(&env);
    let tenant = TenantId::new("big").expect("valid");
    let times = (0..8i64).map(|copy| 1_700_000_000_000_000_000 + copy);
    let expected = write_copies(&writer, &tenant, "pprof/heap", "go-heap", times).await;
    let profile_type = pushed("pprof/heap", "go-heap", 0)[0].profile_types()[1]
        .0
        .to_string();
    writer.shutdown().await;
    let segments = env.metastore.live_blocks(0, 1000).await.expect("live");
    assert_eq!(segments.len(), 8);
    let largest = segments.iter().map(|s| s.size).max().expect("segments");
    // About three segments per job.
    let max_bytes = largest * 3 + largest / 2;
    let compactor = compactor(
        &env,
        CompactorConfig {
            max_bytes_per_job: max_bytes,
            max_level: 1,
            ..eager()
        },
    );
    let mut jobs = 0;
    while let Some(report) = compactor.compact_once(2_000).await.expect("compact") {
        assert!(
            report.bytes_in <= max_bytes,
            "a job read {} bytes, over {max_bytes}",
            report.bytes_in
        );
        jobs += 1;
    }
    assert!(
        jobs >= 3,
        "{jobs} jobs for 8 segments of at most a third of a job each"
    );
    assert!(
        env.metastore
            .live_blocks(0, 1000)
            .await
            .expect("live")
            .is_empty()
    );
    assert_eq!(
        env.metastore
            .live_blocks(1, 1000)
            .await
            .expect("live")
            .len(),
        jobs
    );
    assert_eq!(
        read(&env, &tenant, "go-heap", &profile_type).await,
        write_collapsed(&expected)
    );
}

/// Stores `files` (at `time`, `time + 1`, …) as the profiles of write `request`, with the
/// ids a distributor gives them, in one segment.
async fn store_request(
    writer: &SegmentWriter,
    tenant: &TenantId,
    request: &str,
    files: &[&str],
    time: i64,
) {
    use model::write_request::{profile_id, request_prefix};
    let prefix = request_prefix(request).expect("a UUID");
    let profiles = files
        .iter()
        .enumerate()
        .map(|(index, file)| {
            let series = pushed(file, "api", time + index as i64);
            (
                pprof::Prepared::Series(series),
                1,
                profile_id(prefix, index as u64),
            )
        })
        .collect();
    writer
        .add_request(tenant, profiles, Some(request))
        .await
        .expect("added")
        .durable()
        .await
        .expect("stored");
}

/// A write request retried on a second writer while the first was only slow is stored by
/// both; whichever segment records second holds it as a duplicate, and neither queries nor
/// compaction count it twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_stored_by_two_writers_counts_once() {
    use model::write_request::request_prefix;
    let env = env();
    let (first, second) = (writer(&env), writer(&env));
    let tenant = TenantId::new("t").expect("valid");
    let time = 1_700_000_000_000_000_000;
    let request = "0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b";
    let prefix = request_prefix(request).expect("a UUID");
    // Another request, stored once, in the second writer's segment too.
    let other = "11111111-2222-4333-8444-555555555555";
    let files = &["pprof/cpu.pprof", "pprof/go.cpu.labels.pprof"];
    // The retry lands first; the slow first attempt records after it.
    store_request(&second, &tenant, request, files, time).await;
    store_request(&second, &tenant, other, &["pprof/cpu.pprof"], time + 5).await;
    store_request(&first, &tenant, request, files, time).await;
    let segments = env.metastore.live_blocks(0, 100).await.expect("segments");
    assert_eq!(segments.len(), 3);
    let duplicates: Vec<_> = segments
        .iter()
        .filter(|s| !s.duplicate_requests.is_empty())
        .collect();
    assert_eq!(duplicates.len(), 1, "{segments:?}");
    assert_eq!(duplicates[0].duplicate_requests, vec![request.to_owned()]);
    assert_ne!(prefix, 0);

    let mut once = Tree::new();
    for (index, file) in files.iter().enumerate() {
        for one in pushed(file, "api", time + index as i64) {
            once.merge(&pprof::to_tree(&one.profile, 1));
        }
    }
    for one in pushed("pprof/cpu.pprof", "api", time + 5) {
        once.merge(&pprof::to_tree(&one.profile, 1));
    }
    let cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
    let once = write_collapsed(&once);
    assert_eq!(
        read(&env, &tenant, "api", cpu).await,
        once,
        "before compaction"
    );
    let report = compactor(&env, eager())
        .compact_once(1)
        .await
        .expect("compact")
        .expect("ran");
    assert_eq!(report.segments, 3);
    // The duplicate copy is skipped as it is read, not merged away as an equal profile.
    assert_eq!(report.profiles_in, report.profiles_out);
    assert_eq!(
        read(&env, &tenant, "api", cpu).await,
        once,
        "after compaction"
    );
    first.shutdown().await;
    second.shutdown().await;
}
