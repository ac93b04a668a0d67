//! Any bytes through the pprof path: decompress, decode, name frames, build trees, merge, and
//! render. Nothing may panic; errors are values.
#![no_main]

use formats::pprof::{self, MergeOptions, ProfileMerger};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(profile) = pprof::decode(data, 16 << 20) else {
        return;
    };
    for tree in pprof::to_trees(&profile) {
        let graph = model::FlameGraph::from_tree(&tree, 64);
        assert_eq!(graph.total, tree.total());
        let bytes = tree.to_bytes(64);
        let _ = model::tree_from_bytes(&bytes);
    }
    let mut merger = ProfileMerger::new(MergeOptions::default());
    if merger.merge(&profile).is_ok() {
        let _ = merger.merge(&profile);
        let _ = merger.finish();
    }
});
