//! Rendering: an 8,192-node flame graph, and a 1M-node tree truncated to 8,192 nodes (as a flame
//! graph and as tree bytes).

use divan::Bencher;
use emberscope_benches::synthetic_tree;
use model::FlameGraph;

fn main() {
    divan::main();
}

#[divan::bench(sample_count = 20)]
fn flamegraph_8192_nodes(bencher: Bencher) {
    let tree = synthetic_tree(8192);
    bencher.bench(|| FlameGraph::from_tree(&tree, 8192));
}

#[divan::bench(sample_count = 10)]
fn flamegraph_1m_nodes_truncated_to_8192(bencher: Bencher) {
    let tree = synthetic_tree(1_000_000);
    bencher.bench(|| FlameGraph::from_tree(&tree, 8192));
}

#[divan::bench(sample_count = 10)]
fn tree_bytes_1m_nodes_truncated_to_8192(bencher: Bencher) {
    let tree = synthetic_tree(1_000_000);
    bencher.bench(|| tree.to_bytes(8192));
}

#[divan::bench(sample_count = 10)]
fn merge_two_1m_node_trees(bencher: Bencher) {
    let left = synthetic_tree(1_000_000);
    let right = synthetic_tree(1_000_000);
    bencher.bench(|| {
        let mut merged = left.clone();
        merged.merge(&right);
        merged
    });
}
