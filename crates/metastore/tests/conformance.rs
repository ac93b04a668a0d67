//! One conformance suite for every metastore backend: embedded SQLite and a real PostgreSQL
//! (started by `scripts/postgres.sh`, which `scripts/test.sh` runs).

use metastore::{
    BlockMeta, BlockQuery, DatasetMeta, FORGET_MEMBERS_AFTER_MS, FORGET_REQUESTS_AFTER_MS,
    JobLimits, Member, Metastore, MetastoreError, PostgresMetastore, SqliteMetastore,
};
use model::TenantId;
use std::collections::HashSet;
use std::sync::Arc;
use ulid::Ulid;

fn tenant(name: &str, run: &str) -> TenantId {
    TenantId::new(&format!("{name}-{run}")).expect("valid tenant")
}

fn dataset(tenant: &TenantId, service: &str, min: i64, max: i64, types: &[&str]) -> DatasetMeta {
    DatasetMeta {
        tenant: tenant.clone(),
        service_name: service.to_owned(),
        min_time_ms: min,
        max_time_ms: max,
        profile_types: types.iter().map(|t| t.to_string()).collect(),
        offset: 0,
        length: 100,
    }
}

fn block(id: Ulid, level: u32, tenant: Option<&TenantId>, datasets: Vec<DatasetMeta>) -> BlockMeta {
    BlockMeta {
        id,
        shard: 1,
        level,
        tenant: tenant.cloned(),
        min_time_ms: datasets.iter().map(|d| d.min_time_ms).min().unwrap_or(0),
        max_time_ms: datasets.iter().map(|d| d.max_time_ms).max().unwrap_or(0),
        size: 1234,
        datasets,
        duplicate_requests: Vec::new(),
    }
}

fn query(tenant: &TenantId, start: i64, end: i64) -> BlockQuery {
    BlockQuery {
        tenant: tenant.clone(),
        start_ms: start,
        end_ms: end,
        service_names: Vec::new(),
        profile_type: None,
    }
}

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const HEAP: &str = "memory:inuse_space:bytes:space:bytes";

async fn suite(store: &dyn Metastore) {
    let run = Ulid::new().to_string().to_lowercase();
    // Ids in increasing order, as a writer creates them.
    let mut ids = ulid::Generator::new();
    let mut next_id = move || ids.generate().expect("ulid");
    let (a, b) = (tenant("a", &run), tenant("b", &run));

    // A segment with datasets of two tenants; a second one later in time.
    let s1 = next_id();
    let s2 = next_id();
    let segment1 = block(
        s1,
        0,
        None,
        vec![
            dataset(&a, "api", 1_000, 2_000, &[CPU]),
            dataset(&a, "db", 1_500, 2_500, &[CPU, HEAP]),
            dataset(&b, "api", 1_000, 2_000, &[HEAP]),
        ],
    );
    let segment2 = block(s2, 0, None, vec![dataset(&a, "api", 5_000, 6_000, &[CPU])]);
    store.add_block(&segment1).await.expect("add");
    store.add_block(&segment2).await.expect("add");
    assert!(
        matches!(store.add_block(&segment1).await, Err(MetastoreError::AlreadyExists(id)) if id == s1)
    );

    // Tenants see only their own datasets.
    let found = store
        .query_blocks(&query(&a, 0, 10_000))
        .await
        .expect("query");
    assert_eq!(found.len(), 2);
    assert_eq!(found[0].id, s1);
    assert_eq!(found[0].datasets.len(), 2);
    assert!(
        found
            .iter()
            .flat_map(|b| &b.datasets)
            .all(|d| d.tenant == a)
    );
    let found_b = store
        .query_blocks(&query(&b, 0, 10_000))
        .await
        .expect("query");
    assert_eq!(found_b.len(), 1);
    assert_eq!(
        found_b[0].datasets,
        vec![dataset(&b, "api", 1_000, 2_000, &[HEAP])]
    );

    // Time ranges overlap inclusively; filters by service and profile type.
    assert_eq!(
        store
            .query_blocks(&query(&a, 2_500, 4_999))
            .await
            .expect("query")
            .len(),
        1
    );
    assert!(
        store
            .query_blocks(&query(&a, 2_501, 4_999))
            .await
            .expect("query")
            .is_empty()
    );
    assert_eq!(
        store
            .query_blocks(&query(&a, 6_000, 7_000))
            .await
            .expect("query")[0]
            .id,
        s2
    );
    let mut only_db = query(&a, 0, 10_000);
    only_db.service_names = vec!["db".to_owned()];
    let found = store.query_blocks(&only_db).await.expect("query");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].datasets[0].service_name, "db");
    let mut only_heap = query(&a, 0, 10_000);
    only_heap.profile_type = Some(HEAP.to_owned());
    let found = store.query_blocks(&only_heap).await.expect("query");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].datasets.len(), 1);

    // Label values from the index alone.
    assert_eq!(
        store
            .label_values(&a, "service_name", 0, 10_000)
            .await
            .expect("values"),
        ["api", "db"]
    );
    assert_eq!(
        store
            .label_values(&a, "__profile_type__", 0, 10_000)
            .await
            .expect("values"),
        [HEAP, CPU]
    );
    assert_eq!(
        store
            .label_values(&a, "service_name", 5_000, 10_000)
            .await
            .expect("values"),
        ["api"]
    );
    assert!(
        store
            .label_values(&a, "pod", 0, 10_000)
            .await
            .expect("values")
            .is_empty()
    );

    // Live level-0 blocks across tenants, oldest first, every dataset included.
    let level0: Vec<BlockMeta> = store
        .live_blocks(0, 1_000_000)
        .await
        .expect("live blocks")
        .into_iter()
        .filter(|b| b.id == s1 || b.id == s2)
        .collect();
    assert_eq!(level0, vec![segment1.clone(), segment2.clone()]);

    // Compaction: both segments' tenant-a datasets into one block, atomically.
    let compacted = block(
        next_id(),
        1,
        Some(&a),
        vec![
            dataset(&a, "api", 1_000, 6_000, &[CPU]),
            dataset(&a, "db", 1_500, 2_500, &[CPU, HEAP]),
        ],
    );
    store
        .replace_blocks(&[s1, s2], std::slice::from_ref(&compacted), 50_000)
        .await
        .expect("replace");
    let found = store
        .query_blocks(&query(&a, 0, 10_000))
        .await
        .expect("query");
    assert_eq!(found, vec![compacted.clone()]);
    // (Tenant b's data lived in segment 1 too: a real compactor writes b's block in the same step.)
    assert!(
        store
            .query_blocks(&query(&b, 0, 10_000))
            .await
            .expect("query")
            .is_empty()
    );

    // Replacing blocks that are no longer live changes nothing.
    let stray = block(next_id(), 1, Some(&a), vec![dataset(&a, "x", 1, 2, &[CPU])]);
    let err = store
        .replace_blocks(&[s1], std::slice::from_ref(&stray), 60_000)
        .await
        .expect_err("s1 is gone");
    assert!(matches!(err, MetastoreError::NotFound(id) if id == s1));
    assert_eq!(
        store
            .query_blocks(&query(&a, 0, 10_000))
            .await
            .expect("query"),
        vec![compacted.clone()]
    );
    // A replacement whose new block already exists is refused whole too.
    let err = store
        .replace_blocks(&[compacted.id], std::slice::from_ref(&compacted), 60_000)
        .await;
    assert!(matches!(err, Err(MetastoreError::AlreadyExists(_))));
    assert_eq!(
        store
            .query_blocks(&query(&a, 0, 10_000))
            .await
            .expect("query"),
        vec![compacted.clone()]
    );

    // Tombstones after the grace period, then forgotten.
    let ours = |t: &[metastore::Tombstone]| -> Vec<Ulid> {
        t.iter()
            .map(|t| t.id)
            .filter(|id| *id == s1 || *id == s2)
            .collect()
    };
    assert!(ours(&store.tombstones(50_000).await.expect("tombstones")).is_empty());
    let due = store.tombstones(50_001).await.expect("tombstones");
    assert_eq!(ours(&due), vec![s1, s2]);
    assert!(
        due.iter()
            .filter(|t| t.id == s1)
            .all(|t| t.level == 0 && t.tenant.is_none() && t.deleted_at_ms == 50_000)
    );
    store
        .remove_tombstones(&[s1, s2, compacted.id])
        .await
        .expect("remove");
    assert!(ours(&store.tombstones(i64::MAX).await.expect("tombstones")).is_empty());
    // A live block is never forgotten through remove_tombstones.
    assert_eq!(
        store
            .query_blocks(&query(&a, 0, 10_000))
            .await
            .expect("query"),
        vec![compacted]
    );
}

/// Compaction jobs are planned by block count and by the blocks' stored sizes.
async fn jobs_suite(store: &dyn Metastore) {
    let run = Ulid::new().to_string().to_lowercase();
    let t = tenant("jobs", &run);
    // Level 7 is used by no other test: five blocks of 40 bytes.
    for _ in 0..5 {
        let mut meta = block(
            Ulid::new(),
            7,
            Some(&t),
            vec![dataset(&t, "s", 1, 2, &[CPU])],
        );
        meta.size = 40;
        store.add_block(&meta).await.expect("add");
    }
    let limits = JobLimits {
        min_blocks: 8,
        max_blocks: 64,
        max_bytes: 100,
    };
    // Two jobs of two blocks (80 bytes; a third would pass 100); the fifth block waits.
    assert_eq!(store.plan_compaction(7, limits, 0).await.expect("plan"), 2);
    assert_eq!(store.plan_compaction(7, limits, 0).await.expect("plan"), 0);
}

/// A segment is recorded with the write requests it holds, in one step; requests are known
/// until they are forgotten. A request recorded with one segment and then with another (a
/// retry on another writer) makes the second one's copy a duplicate, even when both record at
/// once.
async fn requests_suite(store: &dyn Metastore) {
    let run = Ulid::new().to_string().to_lowercase();
    let t = tenant("requests", &run);
    let (a, b, c) = (format!("{run}-a"), format!("{run}-b"), format!("{run}-c"));
    let now = 5_000_000_000_000i64;
    let segment = block(Ulid::new(), 0, None, vec![dataset(&t, "s", 1, 2, &[CPU])]);
    store
        .add_segment(&segment, &[a.clone(), b.clone()], now)
        .await
        .expect("add segment");
    let found = store
        .recorded_requests(&[c.clone(), b.clone(), a.clone()])
        .await
        .expect("recorded");
    assert_eq!(found, vec![a.clone(), b.clone()]);
    let blocks = store.query_blocks(&query(&t, 0, 10)).await.expect("query");
    assert_eq!(blocks.len(), 1, "the segment is recorded too");
    assert!(blocks[0].duplicate_requests.is_empty());
    let d = format!("{run}-d");
    let copy = block(Ulid::new(), 0, None, vec![dataset(&t, "s", 1, 2, &[CPU])]);
    store
        .add_segment(&copy, &[b.clone(), d.clone()], now)
        .await
        .expect("add segment");
    let blocks = store.query_blocks(&query(&t, 0, 10)).await.expect("query");
    let of = |id: Ulid| {
        blocks
            .iter()
            .find(|x| x.id == id)
            .map(|x| x.duplicate_requests.clone())
    };
    assert_eq!(of(segment.id), Some(Vec::new()));
    assert_eq!(of(copy.id), Some(vec![b.clone()]));
    // Two segments recording the same requests at once: each request is a duplicate in
    // exactly one of them.
    let (e, f) = (format!("{run}-e"), format!("{run}-f"));
    let (one, two) = (
        block(Ulid::new(), 0, None, vec![dataset(&t, "s", 5, 6, &[CPU])]),
        block(Ulid::new(), 0, None, vec![dataset(&t, "s", 5, 6, &[CPU])]),
    );
    let both = [e.clone(), f.clone()];
    let (r1, r2) = tokio::join!(
        store.add_segment(&one, &both, now),
        store.add_segment(&two, &both, now)
    );
    r1.expect("add segment");
    r2.expect("add segment");
    let blocks = store.query_blocks(&query(&t, 5, 6)).await.expect("query");
    let mut duplicates: Vec<String> = blocks
        .iter()
        .filter(|x| x.id == one.id || x.id == two.id)
        .flat_map(|x| x.duplicate_requests.clone())
        .collect();
    duplicates.sort();
    assert_eq!(duplicates, vec![e, f]);
    // A segment that fails to record (its id is taken) records none of its requests.
    let again = store
        .add_segment(&segment, std::slice::from_ref(&c), now)
        .await;
    assert!(again.is_err());
    assert!(
        store
            .recorded_requests(std::slice::from_ref(&c))
            .await
            .expect("recorded")
            .is_empty()
    );
    // An hour later, recording another segment forgets them.
    let later = block(Ulid::new(), 0, None, vec![dataset(&t, "s", 3, 4, &[CPU])]);
    store
        .add_segment(
            &later,
            std::slice::from_ref(&c),
            now + FORGET_REQUESTS_AFTER_MS + 1,
        )
        .await
        .expect("add segment");
    assert_eq!(
        store
            .recorded_requests(&[a, b, c.clone()])
            .await
            .expect("recorded"),
        vec![c]
    );
}

/// Heartbeats make members live; a silent member drops out of the live set and is forgotten
/// after `FORGET_MEMBERS_AFTER_MS`; leaving forgets at once.
async fn members_suite(store: &dyn Metastore) {
    let run = Ulid::new().to_string().to_lowercase();
    let member = |n: u32, roles: &[&str]| Member {
        id: format!("{run}-{n}"),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        address: format!("http://127.0.0.1:{}", 4000 + n),
        started_ms: 1_000,
        heartbeat_ms: 0,
    };
    let ours = |members: Vec<Member>| -> Vec<Member> {
        members
            .into_iter()
            .filter(|m| m.id.starts_with(&run))
            .collect()
    };
    let now = 4_000_000_000_000i64;
    let writer = member(1, &["segment-writer"]);
    let distributor = member(2, &["distributor", "query-frontend"]);
    store.heartbeat(&writer, now).await.expect("heartbeat");
    store
        .heartbeat(&distributor, now + 500)
        .await
        .expect("heartbeat");
    let live = ours(store.members(now).await.expect("members"));
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].id, writer.id);
    assert_eq!(live[0].heartbeat_ms, now);
    assert_eq!(live[1].roles, vec!["distributor", "query-frontend"]);
    assert!(live[1].has_role("query-frontend") && !live[1].has_role("compactor"));
    assert_eq!(live[1].address, distributor.address);
    // Only the distributor is heard from after `now`.
    let recent = ours(store.members(now + 1).await.expect("members"));
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].id, distributor.id);
    // A later heartbeat refreshes (and may change the address) without a second row.
    let mut moved = writer.clone();
    moved.address = "http://127.0.0.1:5001".to_owned();
    store
        .heartbeat(&moved, now + 1_000)
        .await
        .expect("heartbeat");
    let live = ours(store.members(now).await.expect("members"));
    assert_eq!(live.len(), 2);
    assert_eq!(live[0].address, moved.address);
    assert_eq!(live[0].started_ms, 1_000);
    // Leaving is at once and for good: a heartbeat that was in flight when the member left
    // does not bring it back. Silence long enough is forgetting.
    store
        .leave(&distributor.id, now + 1_100)
        .await
        .expect("leave");
    assert_eq!(ours(store.members(0).await.expect("members")).len(), 1);
    store
        .heartbeat(&distributor, now + 1_200)
        .await
        .expect("a late heartbeat");
    assert_eq!(ours(store.members(0).await.expect("members")).len(), 1);
    let third = member(3, &["compactor"]);
    store
        .heartbeat(&third, now + 1_000 + FORGET_MEMBERS_AFTER_MS + 1)
        .await
        .expect("heartbeat");
    let all = ours(store.members(0).await.expect("members"));
    assert_eq!(all.len(), 1, "the silent writer is forgotten");
    assert_eq!(all[0].id, third.id);
    store
        .leave(&third.id, now + 2_000 + FORGET_MEMBERS_AFTER_MS)
        .await
        .expect("leave");
}

/// Two workers on their own connections race for jobs: each job goes to exactly one of them,
/// and a job whose lease expired (its worker died) is leased again.
async fn lease_race(first: Arc<dyn Metastore>, second: Arc<dyn Metastore>) {
    let run = Ulid::new().to_string().to_lowercase();
    let t = tenant("race", &run);
    let jobs = 24;
    for _ in 0..jobs * 2 + 1 {
        let mut meta = block(
            Ulid::new(),
            3,
            Some(&t),
            vec![dataset(&t, "s", 1, 2, &[CPU])],
        );
        meta.size = 40;
        first.add_block(&meta).await.expect("add");
    }
    // Two blocks per job (a third would pass 100 bytes); the last block waits for company.
    let limits = JobLimits {
        min_blocks: 8,
        max_blocks: 64,
        max_bytes: 100,
    };
    assert_eq!(
        first.plan_compaction(3, limits, 0).await.expect("plan"),
        jobs
    );
    let now = 1_000_000;
    let worker = |store: Arc<dyn Metastore>, name: &'static str| {
        tokio::spawn(async move {
            let mut leased = Vec::new();
            while let Some(job) = store
                .lease_compaction_job(name, now, 60_000)
                .await
                .expect("lease")
            {
                assert_eq!(job.lease_owner, name);
                leased.push(job.id);
            }
            leased
        })
    };
    let (a, b) = (worker(first.clone(), "a"), worker(second.clone(), "b"));
    let (a, b) = (a.await.expect("worker a"), b.await.expect("worker b"));
    let all: HashSet<Ulid> = a.iter().chain(&b).copied().collect();
    assert_eq!(all.len(), a.len() + b.len(), "a job was leased twice");
    assert_eq!(all.len(), jobs, "every job leased");
    // Worker `a` dies: once its leases expire, `b` leases its jobs again; `a` cannot complete.
    let after = now + 60_001;
    let again = second
        .lease_compaction_job("b", after, 60_000)
        .await
        .expect("lease")
        .expect("an expired job");
    assert!(all.contains(&again.id));
    if a.contains(&again.id) {
        let lost = first
            .complete_compaction_job(again.id, "a", &[], after)
            .await
            .expect_err("the lease is b's now");
        assert!(matches!(lost, MetastoreError::LeaseLost(_)), "{lost}");
    }
}

#[tokio::test]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteMetastore::open(&dir.path().join("metastore.db")).expect("open");
    suite(&store).await;
    jobs_suite(&store).await;
    members_suite(&store).await;
    requests_suite(&store).await;
}

#[tokio::test]
async fn sqlite_workers_race_for_jobs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("metastore.db");
    let first = SqliteMetastore::open(&path).expect("open");
    let second = SqliteMetastore::open(&path).expect("open a second connection");
    lease_race(Arc::new(first), Arc::new(second)).await;
}

/// A SQLite database at `path` holding one block of `tenant`, closed again; the block's id.
async fn sqlite_with_one_block(path: &std::path::Path, tenant: &TenantId) -> Ulid {
    let id = Ulid::new();
    let store = SqliteMetastore::open(path).expect("open");
    store
        .add_block(&block(
            id,
            0,
            None,
            vec![dataset(tenant, "s", 1, 2, &[CPU])],
        ))
        .await
        .expect("add");
    id
}

#[tokio::test]
async fn sqlite_survives_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("metastore.db");
    let t = TenantId::new("persist").expect("valid");
    let id = sqlite_with_one_block(&path, &t).await;
    let store = SqliteMetastore::open(&path).expect("reopen");
    assert_eq!(
        store.query_blocks(&query(&t, 0, 10)).await.expect("query")[0].id,
        id
    );
}

/// A database made before duplicate requests were recorded gains their column on opening,
/// keeping its blocks.
#[tokio::test]
async fn sqlite_adds_the_duplicates_column_to_older_databases() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("metastore.db");
    let t = TenantId::new("older").expect("valid");
    let id = sqlite_with_one_block(&path, &t).await;
    {
        let old = rusqlite::Connection::open(&path).expect("connection");
        old.execute_batch("ALTER TABLE blocks DROP COLUMN duplicate_requests")
            .expect("make it as it was");
    }
    let store = SqliteMetastore::open(&path).expect("reopen");
    let blocks = store.query_blocks(&query(&t, 0, 10)).await.expect("query");
    assert_eq!(blocks[0].id, id);
    assert!(blocks[0].duplicate_requests.is_empty());
    let segment = block(Ulid::new(), 0, None, vec![dataset(&t, "s", 1, 2, &[CPU])]);
    store
        .add_segment(&segment, &["r".to_owned()], 1)
        .await
        .expect("add segment");
}

/// Calls that wait for the SQLite connection wait as tasks, not on blocking threads: with the
/// connection held up (another connection's write lock), many queued calls leave the blocking
/// pool to the rest of the server (the segment writer's flushes use it).
#[test]
fn sqlite_calls_queue_without_holding_blocking_threads() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("metastore.db");
    let store = SqliteMetastore::open(&path).expect("open");
    let t = TenantId::new("queued").expect("valid");
    let other = rusqlite::Connection::open(&path).expect("second connection");
    runtime.block_on(async {
        store
            .add_block(&block(
                Ulid::new(),
                0,
                None,
                vec![dataset(&t, "s", 1, 2, &[CPU])],
            ))
            .await
            .expect("add");
        // Another connection takes the write lock: planning compaction (an immediate
        // transaction) then waits in SQLite's busy handler (up to the store's 10 s busy
        // timeout) while holding the store's connection.
        other.execute_batch("BEGIN IMMEDIATE").expect("write lock");
        let limits = JobLimits {
            min_blocks: 2,
            max_blocks: 8,
            max_bytes: 1 << 20,
        };
        let planner = {
            let store = store.clone();
            tokio::spawn(async move { store.plan_compaction(0, limits, 0).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let (store, t) = (store.clone(), t.clone());
                tokio::spawn(async move { store.query_blocks(&query(&t, 0, 10)).await })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(
            !planner.is_finished(),
            "the planner waits for the write lock"
        );
        assert!(
            readers.iter().all(|r| !r.is_finished()),
            "the readers wait for the connection"
        );
        // Other blocking work still gets a thread at once.
        let unrelated = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            tokio::task::spawn_blocking(|| 42),
        )
        .await;
        assert_eq!(
            unrelated.expect("a blocking thread was free").expect("ran"),
            42
        );
        other.execute_batch("ROLLBACK").expect("release the lock");
        planner.await.expect("task").expect("planning goes through");
        for reader in readers {
            assert_eq!(reader.await.expect("task").expect("query").len(), 1);
        }
    });
}

#[tokio::test]
async fn postgres_conforms() {
    let config = testkit::postgres::url();
    let store = PostgresMetastore::connect(&config)
        .await
        .unwrap_or_else(|e| {
            let mut cause = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                cause.push_str(&format!(": {s}"));
                source = s.source();
            }
            panic!("cannot reach PostgreSQL at {config:?} ({cause}); scripts/test.sh starts it (scripts/postgres.sh)")
        });
    suite(&store).await;
    jobs_suite(&store).await;
    // Its own schema: forgetting members is global to a database.
    let own = PostgresMetastore::connect(&testkit::postgres::fresh_schema())
        .await
        .expect("connect");
    members_suite(&own).await;
    requests_suite(&own).await;
}

#[tokio::test]
async fn postgres_workers_race_for_jobs() {
    let config = testkit::postgres::fresh_schema();
    // Two metastores (two pools) of one connection each: two processes, in effect.
    let first = PostgresMetastore::connect_with(&config, 1)
        .await
        .expect("connect");
    let second = PostgresMetastore::connect_with(&config, 1)
        .await
        .expect("connect");
    lease_race(Arc::new(first), Arc::new(second)).await;
}

/// The processes of a cluster start at once: each creates the schema if it is missing, and
/// none fails on another's concurrent create. (Without the schema lock, ten processes started
/// by `scripts/cluster.sh` failed on `pg_type_typname_nsp_index`; tasks of one process hit the
/// race less often, so `tests/cluster_script.rs` is the sure check.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_processes_start_together_on_an_empty_database() {
    for _ in 0..4 {
        let config = testkit::postgres::fresh_schema();
        let mut starts = tokio::task::JoinSet::new();
        for _ in 0..10 {
            let config = config.clone();
            starts.spawn(async move { PostgresMetastore::connect_with(&config, 1).await });
        }
        while let Some(started) = starts.join_next().await {
            started
                .expect("task")
                .expect("connect while others create the schema");
        }
    }
}
