//! Crash test: the real binary ingests under load and is killed with SIGKILL at random moments,
//! over several rounds on the same data folder. Afterwards every acknowledged profile is there
//! exactly once with the same stacks, every unacknowledged one is there whole or not at all,
//! and every recorded segment reads back.

use block::BlockReader;
use formats::pprof::{self, LabelLimits, ProfileLimits};
use metastore::{BlockQuery, Metastore, SqliteMetastore};
use model::{Labels, TenantId, Tree, write_collapsed};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn cpu_file() -> PathBuf {
    testkit::testdata("pprof/cpu.pprof")
}

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

/// One round: start the ingester, let it run `millis`, kill it with SIGKILL; the uids it
/// acknowledged.
fn round(data: &std::path::Path, prefix: &str, millis: u64) -> BTreeSet<String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_emberscope"))
        .args([
            "debug-ingest",
            "--tenant",
            "crash-tenant",
            "--count",
            "1000000",
            "--concurrency",
            "16",
        ])
        .arg("--data")
        .arg(data)
        .arg("--file")
        .arg(cpu_file())
        .args(["--prefix", prefix])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start emberscope debug-ingest");
    let stdout = child.stdout.take().expect("stdout");
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let reader = {
        let acked = Arc::clone(&acked);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(uid) = line.strip_prefix("acked ") {
                    acked.lock().expect("lock").insert(uid.to_owned());
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(millis));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let _ = reader.join();
    acked.lock().expect("lock").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_profiles_survive_sigkill_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut acked = BTreeSet::new();
    // Kill times from a fixed pseudo-random sequence: different moments of the flush cycle.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for r in 0..4 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let millis = 700 + seed % 900;
        let prefix = format!("r{r}");
        let data = data.clone();
        let got = tokio::task::spawn_blocking(move || round(&data, &prefix, millis))
            .await
            .expect("round");
        eprintln!(
            "round {r}: killed after {millis} ms, {} writes acknowledged",
            got.len()
        );
        acked.extend(got);
    }
    assert!(
        acked.len() >= 20,
        "too few writes acknowledged ({}) for the test to mean anything",
        acked.len()
    );

    // Read everything back in process.
    let store = storage::StorageConfig::Filesystem {
        dir: data.join("objects"),
    }
    .open()
    .expect("store");
    let metastore = SqliteMetastore::open(&data.join("metastore.db")).expect("metastore");
    let tenant = TenantId::new("crash-tenant").expect("valid");
    let blocks = metastore
        .query_blocks(&BlockQuery {
            tenant: tenant.clone(),
            start_ms: i64::MIN / 2,
            end_ms: i64::MAX / 2,
            service_names: Vec::new(),
            profile_type: None,
        })
        .await
        .expect("query");
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut tree = Tree::new();
    for meta in &blocks {
        let reader = BlockReader::open(
            Arc::clone(&store),
            storage::paths::segment(meta.shard, meta.id),
        )
        .await
        .expect("every recorded segment is whole");
        // Every dataset read whole: each stored profile of the CPU type counted by its uid.
        for index in 0..reader.datasets().len() {
            let dataset = reader.read_dataset(index).await.expect("readable");
            if dataset.info.tenant != tenant.as_str() {
                continue;
            }
            let mut sums: BTreeMap<u32, i64> = BTreeMap::new();
            for row in dataset.rows() {
                let labels = dataset.series.labels(row.series_id).expect("series");
                if labels.get("__profile_type__") != Some(CPU) {
                    continue;
                }
                let uid = labels.get("uid").expect("uid label").to_owned();
                *counts.entry(uid).or_insert(0) += 1;
                for (&stack, &value) in row.stack_ids.iter().zip(&row.values) {
                    *sums.entry(stack).or_default() += value;
                }
            }
            let samples: Vec<(u32, i64)> = sums.into_iter().collect();
            dataset.symbols.add_to_tree(&samples, &mut tree);
        }
    }
    for uid in &acked {
        assert_eq!(
            counts.get(uid),
            Some(&1),
            "acknowledged {uid} must be stored exactly once"
        );
    }
    assert!(
        counts.values().all(|&c| c == 1),
        "no profile is stored twice"
    );
    // Every stored profile (acknowledged or not) is whole: the stacks are n copies of the file's.
    let body = std::fs::read(cpu_file()).expect("read");
    let profile = pprof::decode(&body, 1 << 20).expect("valid");
    let limits = ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..ProfileLimits::default()
    };
    let labels = Labels::from_pairs([("__name__", "process_cpu"), ("service_name", "crash")]);
    let series = pprof::prepare_push(profile, &labels, &limits, &LabelLimits::default(), 0, 1)
        .expect("valid");
    let mut expected = Tree::new();
    for _ in 0..counts.len() {
        expected.merge(&pprof::to_tree(&series[0].profile, 1));
    }
    assert_eq!(write_collapsed(&tree), write_collapsed(&expected));
    eprintln!(
        "{} acknowledged, {} stored ({} stored without an acknowledgement), {} segments",
        acked.len(),
        counts.len(),
        counts.len() - acked.len(),
        blocks.len()
    );
}
