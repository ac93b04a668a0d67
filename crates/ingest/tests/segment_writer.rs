//! The segment writer against real storage (local files) and a real metastore (SQLite):
//! acknowledged writes are stored and recorded; failed stores are retried or refused, never
//! acknowledged and lost.

use formats::pprof::{self, LabelLimits, ProfileLimits, SeriesProfile};
use ingest::{IngestError, SegmentWriter, SegmentWriterConfig};
use metastore::{BlockQuery, Metastore, SqliteMetastore};
use model::{Labels, TenantId, Tree, write_collapsed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::{Fault, FaultyStore, ObjectStore, StorageConfig};

fn cpu_series(service: &str) -> Vec<SeriesProfile> {
    let body = testkit::read_testdata("pprof/cpu.pprof");
    let profile = pprof::decode(&body, 1 << 20).expect("valid");
    let limits = ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..ProfileLimits::default()
    };
    let labels = Labels::from_pairs([("__name__", "process_cpu"), ("service_name", service)]);
    pprof::prepare_push(profile, &labels, &limits, &LabelLimits::default(), 0, 1).expect("valid")
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<dyn ObjectStore>,
    metastore: Arc<SqliteMetastore>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = StorageConfig::Filesystem {
        dir: dir.path().join("objects"),
    }
    .open()
    .expect("store");
    let metastore =
        Arc::new(SqliteMetastore::open(&dir.path().join("metastore.db")).expect("metastore"));
    Setup {
        _dir: dir,
        store,
        metastore,
    }
}

fn config() -> SegmentWriterConfig {
    SegmentWriterConfig {
        flush_interval: Duration::from_millis(50),
        attempts: 3,
        attempt_timeout: Duration::from_millis(300),
        ..SegmentWriterConfig::default()
    }
}

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

async fn stored_stacks(setup: &Setup, tenant: &TenantId) -> (usize, String) {
    let query = BlockQuery {
        tenant: tenant.clone(),
        start_ms: i64::MIN / 2,
        end_ms: i64::MAX / 2,
        service_names: Vec::new(),
        profile_type: None,
    };
    let blocks = setup.metastore.query_blocks(&query).await.expect("query");
    let metastore: Arc<dyn Metastore> = setup.metastore.clone();
    let querier = query::Querier::new(Arc::clone(&setup.store), metastore, Default::default());
    let selection = query::Selection::new(
        tenant.clone(),
        CPU.to_owned(),
        Vec::new(),
        model::TimeRange::new(i64::MIN / 4_000_000, i64::MAX / 4_000_000).expect("ordered"),
    );
    let (tree, _) = querier
        .select_tree(&selection, &query::QueryLimits::default())
        .await
        .expect("select");
    (blocks.len(), write_collapsed(&tree))
}

fn expected_stacks(copies: i64) -> String {
    let series = cpu_series("api");
    let mut tree = Tree::new();
    for _ in 0..copies {
        tree.merge(&pprof::to_tree(&series[0].profile, 1));
    }
    write_collapsed(&tree)
}

#[tokio::test]
async fn acknowledged_writes_are_stored_and_recorded() {
    let setup = setup();
    let writer = SegmentWriter::start(config(), Arc::clone(&setup.store), setup.metastore.clone());
    let tenant = TenantId::new("t1").expect("valid");
    let started = Instant::now();
    let (a, b) = tokio::join!(
        writer.write(tenant.clone(), cpu_series("api"), 1000),
        writer.write(tenant.clone(), cpu_series("api"), 1000)
    );
    a.expect("acknowledged");
    b.expect("acknowledged");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "flushed on the interval"
    );
    let (segments, stacks) = stored_stacks(&setup, &tenant).await;
    assert!(segments >= 1);
    assert_eq!(stacks, expected_stacks(2));
    // Another tenant sees nothing.
    let (none, _) = stored_stacks(&setup, &TenantId::new("t2").expect("valid")).await;
    assert_eq!(none, 0);
    writer.shutdown().await;
}

#[tokio::test]
async fn shutdown_flushes_pending_writes() {
    let setup = setup();
    let slow = SegmentWriterConfig {
        flush_interval: Duration::from_secs(3600),
        ..config()
    };
    let writer = Arc::new(SegmentWriter::start(
        slow,
        Arc::clone(&setup.store),
        setup.metastore.clone(),
    ));
    let tenant = TenantId::new("t").expect("valid");
    let pending = {
        let writer = Arc::clone(&writer);
        let tenant = tenant.clone();
        tokio::spawn(async move { writer.write(tenant, cpu_series("api"), 10).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    Arc::try_unwrap(writer)
        .expect("only owner")
        .shutdown()
        .await;
    pending.await.expect("task").expect("flushed at shutdown");
    assert_eq!(stored_stacks(&setup, &tenant).await.1, expected_stacks(1));
}

#[tokio::test]
async fn failed_uploads_are_retried() {
    let setup = setup();
    let faulty = Arc::new(FaultyStore::new(Arc::clone(&setup.store)));
    faulty.plan([Fault::Fail, Fault::Hang(Duration::from_secs(5))]);
    let writer = SegmentWriter::start(config(), faulty.clone(), setup.metastore.clone());
    let tenant = TenantId::new("t").expect("valid");
    writer
        .write(tenant.clone(), cpu_series("api"), 10)
        .await
        .expect("stored on the third attempt");
    assert_eq!(faulty.writes(), 3);
    assert_eq!(
        stored_stacks(&setup, &tenant).await,
        (1, expected_stacks(1))
    );
    writer.shutdown().await;
}

#[tokio::test]
async fn a_lost_reply_is_not_a_duplicate() {
    let setup = setup();
    let faulty = Arc::new(FaultyStore::new(Arc::clone(&setup.store)));
    faulty.plan([Fault::StoreThenFail]);
    let writer = SegmentWriter::start(config(), faulty.clone(), setup.metastore.clone());
    let tenant = TenantId::new("t").expect("valid");
    writer
        .write(tenant.clone(), cpu_series("api"), 10)
        .await
        .expect("acknowledged");
    assert_eq!(
        stored_stacks(&setup, &tenant).await,
        (1, expected_stacks(1)),
        "exactly once"
    );
    writer.shutdown().await;
}

#[tokio::test]
async fn writes_that_cannot_be_stored_are_refused_not_lost() {
    let setup = setup();
    let faulty = Arc::new(FaultyStore::new(Arc::clone(&setup.store)));
    faulty.plan([Fault::Fail, Fault::Fail, Fault::Fail]);
    let writer = SegmentWriter::start(config(), faulty.clone(), setup.metastore.clone());
    let tenant = TenantId::new("t").expect("valid");
    let err = writer
        .write(tenant.clone(), cpu_series("api"), 10)
        .await
        .expect_err("all attempts fail");
    assert!(
        matches!(err, IngestError::Store { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(stored_stacks(&setup, &tenant).await.0, 0, "nothing visible");
    // The next write goes through.
    writer
        .write(tenant.clone(), cpu_series("api"), 10)
        .await
        .expect("stored");
    assert_eq!(
        stored_stacks(&setup, &tenant).await,
        (1, expected_stacks(1))
    );
    writer.shutdown().await;
}

#[tokio::test]
async fn a_full_head_flushes_at_once() {
    let setup = setup();
    let small = SegmentWriterConfig {
        flush_interval: Duration::from_secs(3600),
        max_head_bytes: 100,
        ..config()
    };
    let writer = SegmentWriter::start(small, Arc::clone(&setup.store), setup.metastore.clone());
    let tenant = TenantId::new("t").expect("valid");
    tokio::time::timeout(
        Duration::from_secs(5),
        writer.write(tenant.clone(), cpu_series("api"), 100),
    )
    .await
    .expect("no wait for the interval")
    .expect("stored");
    writer.shutdown().await;
}

/// While a flush waits for storage, writes go on into a fresh head (their `add` returns at
/// once); once two heads' worth waits, a further write waits for room until the flush is done.
#[tokio::test]
async fn writes_fill_a_new_head_while_one_flushes_and_wait_beyond_two_heads() {
    let setup = setup();
    let faulty = Arc::new(FaultyStore::new(Arc::clone(&setup.store)));
    // The first upload hangs 1.5 s and fails; the retry stores it.
    faulty.plan([Fault::Hang(Duration::from_millis(1500))]);
    let small = SegmentWriterConfig {
        flush_interval: Duration::from_secs(3600),
        max_head_bytes: 4 << 10, // room for two heads: 8 KiB
        attempt_timeout: Duration::from_secs(5),
        ..config()
    };
    let writer = SegmentWriter::start(small, faulty.clone(), setup.metastore.clone());
    let tenant = TenantId::new("t").expect("valid");
    // 4 KiB + 1 KiB of room: fills the head, whose flush then hangs.
    let first = writer
        .add(&tenant, cpu_series("api").into(), 4 << 10)
        .await
        .expect("added");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // 2 KiB (3 KiB of room): goes into the next head at once.
    let started = Instant::now();
    let second = writer
        .add(&tenant, cpu_series("api").into(), 2 << 10)
        .await
        .expect("added");
    assert!(
        started.elapsed() < Duration::from_millis(300),
        "waited for the flush"
    );
    // 1 KiB more (2 KiB of room): only 8 - 5 - 3 = 0 KiB left, so it waits for the flush.
    let third = tokio::time::timeout(
        Duration::from_millis(300),
        writer.add(&tenant, cpu_series("api").into(), 1 << 10),
    )
    .await;
    assert!(third.is_err(), "a write beyond two heads did not wait");
    first.durable().await.expect("stored on the retry");
    let third = tokio::time::timeout(
        Duration::from_secs(5),
        writer.add(&tenant, cpu_series("api").into(), 1 << 10),
    )
    .await
    .expect("room once the first head is stored")
    .expect("added");
    writer.flush().await;
    second.durable().await.expect("stored");
    third.durable().await.expect("stored");
    assert_eq!(stored_stacks(&setup, &tenant).await.1, expected_stacks(3));
    writer.shutdown().await;
}

/// A writer knows the requests it holds, from their adding until their segment is stored and
/// recorded (a retry of one waits for it rather than adding its profiles again); a request's
/// profiles go into one segment.
#[tokio::test]
async fn a_request_is_held_until_its_segment_is_recorded() {
    let setup = setup();
    let faulty = Arc::new(FaultyStore::new(Arc::clone(&setup.store)));
    faulty.plan([Fault::Hang(Duration::from_millis(200))]);
    let writer = SegmentWriter::start(config(), faulty.clone(), setup.metastore.clone());
    let tenant = TenantId::new("t").expect("valid");
    let request = "0193a5b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b";
    let profiles = (0..3u8)
        .map(|n| (pprof::Prepared::Series(cpu_series("api")), 10, [n; 16]))
        .collect();
    let pending = writer
        .add_request(&tenant, profiles, Some(request))
        .await
        .expect("added");
    assert!(writer.holds_request(request).await, "in the head");
    assert!(!writer.holds_request("another").await);
    let started = Instant::now();
    while faulty.writes() == 0 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        writer.holds_request(request).await,
        "while its segment is being stored"
    );
    pending
        .durable()
        .await
        .expect("stored on the second attempt");
    assert!(!writer.holds_request(request).await, "once recorded");
    let recorded = setup
        .metastore
        .recorded_requests(&[request.to_owned()])
        .await
        .expect("recorded");
    assert_eq!(recorded, vec![request.to_owned()]);
    assert_eq!(
        stored_stacks(&setup, &tenant).await,
        (1, expected_stacks(3))
    );
    writer.shutdown().await;
}
