//! Shared inputs for the benchmarks under `benches/`: the real test profiles, synthetic trees,
//! and the embedded storage (local files and SQLite) the storage benchmarks write to.

use formats::pprof::ProfileLimits;
use metastore::SqliteMetastore;
use model::Tree;
use std::path::Path;
use std::sync::Arc;

// The repository's `testdata/`: a path, and a file's bytes (a missing file panics with its path).
pub use testkit::{read_testdata as read, testdata};

/// A field of `/proc/self/status` in KiB (`VmRSS:`, `VmHWM:`), 0 where there is none.
pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

/// Object storage on the local filesystem under `dir/objects` and a SQLite metastore in
/// `dir/metastore.db`: the embedded defaults of `emberscope serve`.
pub fn local_storage(dir: &Path) -> (Arc<dyn storage::ObjectStore>, Arc<SqliteMetastore>) {
    let store = storage::StorageConfig::Filesystem {
        dir: dir.join("objects"),
    }
    .open()
    .expect("store");
    let metastore = Arc::new(SqliteMetastore::open(&dir.join("metastore.db")).expect("metastore"));
    (store, metastore)
}

/// Push validation's limits without the ingestion window (the test files are years old) and,
/// when `unbounded`, without the profile size and sample count limits either.
pub fn bench_limits(unbounded: bool) -> ProfileLimits {
    let defaults = ProfileLimits::default();
    ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        max_profile_size_bytes: if unbounded {
            0
        } else {
            defaults.max_profile_size_bytes
        },
        max_samples: if unbounded { 0 } else { defaults.max_samples },
        ..defaults
    }
}

/// A tree of about `nodes` nodes with skewed values: a deterministic pseudo-random walk over a
/// fan-out of 8 and depth up to 24, like a large service's call tree.
pub fn synthetic_tree(nodes: usize) -> Tree {
    let mut tree = Tree::new();
    let names: Vec<u32> = (0..4096)
        .map(|i| tree.intern(&format!("pkg{}.fn{}", i % 97, i)))
        .collect();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut stack = Vec::with_capacity(24);
    while tree.node_count() < nodes {
        stack.clear();
        let depth = 4 + (next() % 21) as usize;
        for level in 0..depth {
            let fanout = if level < 3 { 8 } else { 64 };
            let pick = (next() % fanout) as usize;
            stack.push(names[(level * 131 + pick * 17) % names.len()]);
        }
        let value = 1 + (next() % 1000) as i64 * (1 + (next() % 3) as i64 * 100);
        tree.insert_ids(&stack, value);
    }
    tree
}

/// Functions the synthetic stacks are drawn from.
pub const SYNTHETIC_FUNCTIONS: u64 = 5_000;

/// A CPU profile of `stacks` distinct stacks (with overwhelming odds). `shared: false`: random
/// stacks of depth 8 to 31 over [`SYNTHETIC_FUNCTIONS`] functions, hardly any prefix shared
/// (the worst case for a stack trie). `shared: true`: a call tree as real programs have, five
/// frames every stack shares then seven levels of eight callees each (a stack is the base-8
/// digits of its number), so a million stacks make about 1.15 million tree nodes.
pub fn synthetic_profile(
    stacks: usize,
    seed: u64,
    time_nanos: i64,
    shared: bool,
) -> formats::pprof::Profile {
    use formats::pprof::proto::{Function, Line, Location, Sample, ValueType};
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut strings = vec![String::new(), "cpu".to_owned(), "nanoseconds".to_owned()];
    let mut function = Vec::new();
    let mut location = Vec::new();
    for id in 1..=SYNTHETIC_FUNCTIONS {
        strings.push(format!(
            "github.com/acme/service/pkg{}.Function{id}",
            id % 97
        ));
        let name = strings.len() as i64 - 1;
        function.push(Function {
            id,
            name,
            system_name: name,
            ..Default::default()
        });
        location.push(Location {
            id,
            line: vec![Line {
                function_id: id,
                line: (id % 500) as i64,
                column: 0,
            }],
            ..Default::default()
        });
    }
    let sample = (0..stacks)
        .map(|i| {
            let leaf_first: Vec<u64> = if shared {
                // Frames root first: 1..=5, then per level the callee named by that digit.
                let mut frames: Vec<u64> = (1..=5).collect();
                let mut rest = i as u64;
                for level in 0..7u64 {
                    frames.push(6 + level * 8 + rest % 8);
                    rest /= 8;
                }
                frames.reverse();
                frames
            } else {
                let depth = 8 + (next() % 24) as usize;
                (0..depth)
                    .map(|_| 1 + next() % SYNTHETIC_FUNCTIONS)
                    .collect()
            };
            Sample {
                location_id: leaf_first,
                value: vec![1 + (next() % 100) as i64 * 10_000_000],
                label: Vec::new(),
            }
        })
        .collect();
    formats::pprof::Profile {
        sample_type: vec![ValueType { r#type: 1, unit: 2 }],
        sample,
        location,
        function,
        string_table: strings,
        time_nanos,
        period_type: Some(ValueType { r#type: 1, unit: 2 }),
        period: 10_000_000,
        ..Default::default()
    }
}
