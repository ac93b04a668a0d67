//! Shared inputs for the benchmarks under `benches/`: the real test profiles, synthetic trees,
//! and the embedded storage (local files and SQLite) the storage benchmarks write to.

use formats::pprof::ProfileLimits;
use metastore::SqliteMetastore;
use model::Tree;
use std::path::Path;
use std::sync::Arc;

// The repository's `testdata/`: a path, and a file's bytes (a missing file panics with its path).
pub use testkit::{read_testdata as read, testdata};

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
