//! Round trips and merge properties of pprof on the real test profiles.

use formats::pprof::{self, MergeOptions, ProfileMerger};
use model::{Tree, write_collapsed};
use proptest::prelude::*;
use testkit::*;

fn decode(path: &std::path::Path) -> Option<pprof::Profile> {
    let body = std::fs::read(path).expect("read");
    pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES).ok()
}

#[test]
fn encode_decode_round_trips_every_file() {
    let mut checked = 0;
    for path in pprof_files() {
        let Some(profile) = decode(&path) else {
            continue;
        };
        let bytes = pprof::encode_gzip(&profile);
        let back =
            pprof::decode(&bytes, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES).expect("our own bytes");
        assert_eq!(back, profile, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 25);
}

/// Go heap profiles with the same sample and period types.
fn heap_group() -> Vec<pprof::Profile> {
    [
        "pprof/heap",
        "pprof/heap_delta",
        "pprof/heap.pb.gz",
        "pprof/req_5.pprof",
    ]
    .iter()
    .map(|p| decode(&testdata(p)).expect("valid"))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Merging in any order, with repeats, gives the sum of the inputs' stacks, for every value.
    #[test]
    fn merge_is_order_free_and_sums(order in prop::collection::vec(0usize..4, 1..8)) {
        let group = heap_group();
        let mut merger = ProfileMerger::new(MergeOptions::default());
        let mut expected: Vec<Tree> = (0..4).map(|_| Tree::new()).collect();
        for &i in &order {
            merger.merge(&group[i]).expect("compatible");
            for (tree, one) in expected.iter_mut().zip(pprof::to_trees(&group[i])) {
                tree.merge(&one);
            }
        }
        let merged = merger.finish();
        for (index, tree) in expected.iter().enumerate() {
            prop_assert_eq!(write_collapsed(&pprof::to_tree(&merged, index)), write_collapsed(tree));
        }
        // Only referenced symbols survive, each once.
        let mut names: Vec<&str> = merged.string_table.iter().map(String::as_str).collect();
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        prop_assert_eq!(names.len(), count);
    }

    /// One value column without labels (SelectMergeProfile) equals that column's tree.
    #[test]
    fn single_column_merge(index in 0usize..4, copies in 1usize..4) {
        let group = heap_group();
        let mut merger = ProfileMerger::new(MergeOptions { value_index: Some(index), drop_labels: true });
        let mut expected = Tree::new();
        for _ in 0..copies {
            merger.merge(&group[0]).expect("compatible");
            expected.merge(&pprof::to_tree(&group[0], index));
        }
        let merged = merger.finish();
        prop_assert_eq!(merged.sample_type.len(), 1);
        prop_assert!(merged.sample.iter().all(|s| s.label.is_empty()));
        prop_assert_eq!(write_collapsed(&pprof::to_tree(&merged, 0)), write_collapsed(&expected));
    }
}
