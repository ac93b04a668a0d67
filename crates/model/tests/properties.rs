//! Property tests of the tree algebra: merge is associative and commutative and keeps totals;
//! truncation keeps the total and the node budget; every encoding round-trips.

use model::{FlameGraph, Tree, parse_collapsed, tree_from_bytes, write_collapsed};
use proptest::prelude::*;

/// Stacks over a small alphabet (so that paths share prefixes) with positive values.
fn stacks() -> impl Strategy<Value = Vec<(Vec<String>, i64)>> {
    let frame = prop::sample::select(vec!["a", "b", "c", "d", "other", "main", "é", "x;y"])
        .prop_map(|s| s.replace(';', "_"));
    prop::collection::vec((prop::collection::vec(frame, 1..7), 1i64..1_000), 0..40)
}

/// Stacks with any values, zero, negative and extreme ones included.
fn any_stacks() -> impl Strategy<Value = Vec<(Vec<String>, i64)>> {
    let frame = prop::sample::select(vec!["a", "b", "c", "other", "total", ""]);
    let value = prop_oneof![
        Just(0i64),
        Just(i64::MAX),
        Just(i64::MIN),
        -1000i64..1000,
        any::<i64>()
    ];
    prop::collection::vec(
        (
            prop::collection::vec(frame.prop_map(String::from), 1..6),
            value,
        ),
        0..30,
    )
}

fn tree_of(stacks: &[(Vec<String>, i64)]) -> Tree {
    let mut tree = Tree::new();
    for (stack, value) in stacks {
        tree.insert(stack, *value);
    }
    tree
}

fn merged(trees: &[&Tree]) -> Tree {
    let mut out = Tree::new();
    for tree in trees {
        out.merge(tree);
    }
    out
}

/// Nodes of the tree by path, for comparing shapes with their values.
fn nodes(tree: &Tree) -> Vec<(String, i64, i64)> {
    let mut out: Vec<(String, i64, i64)> = (1..=tree.node_count() as u32)
        .map(|id| {
            (
                tree.path(id).join(";"),
                tree.self_value(id),
                tree.total_of(id),
            )
        })
        .collect();
    out.sort();
    out
}

proptest! {
    #[test]
    fn merge_is_commutative_and_associative(a in stacks(), b in stacks(), c in stacks()) {
        let (a, b, c) = (tree_of(&a), tree_of(&b), tree_of(&c));
        prop_assert_eq!(nodes(&merged(&[&a, &b])), nodes(&merged(&[&b, &a])));
        let left = merged(&[&merged(&[&a, &b]), &c]);
        let right = merged(&[&a, &merged(&[&b, &c])]);
        prop_assert_eq!(nodes(&left), nodes(&right));
        prop_assert_eq!(left.total(), a.total() + b.total() + c.total());
    }

    #[test]
    fn merge_algebra_holds_for_any_values(a in any_stacks(), b in any_stacks(), c in any_stacks()) {
        let (a, b, c) = (tree_of(&a), tree_of(&b), tree_of(&c));
        prop_assert_eq!(nodes(&merged(&[&a, &b])), nodes(&merged(&[&b, &a])));
        let left = merged(&[&merged(&[&a, &b]), &c]);
        let right = merged(&[&a, &merged(&[&b, &c])]);
        prop_assert_eq!(nodes(&left), nodes(&right));
        prop_assert_eq!(left.total(), a.total().wrapping_add(b.total()).wrapping_add(c.total()));
    }

    #[test]
    fn encodings_round_trip_any_values(s in any_stacks(), max_nodes in 0usize..8) {
        let tree = tree_of(&s);
        let back = tree_from_bytes(&tree.to_bytes(0)).expect("our own bytes");
        prop_assert_eq!(nodes(&back), nodes(&tree));
        // Rendering never panics, whatever the values.
        let _ = FlameGraph::from_tree(&tree, max_nodes);
        let _ = tree.to_bytes(max_nodes);
        let _ = model::FlameGraphDiff::from_trees(&tree, &tree, max_nodes);
    }

    #[test]
    fn merging_trees_equals_inserting_all_stacks(a in stacks(), b in stacks()) {
        let all: Vec<_> = a.iter().chain(&b).cloned().collect();
        prop_assert_eq!(nodes(&merged(&[&tree_of(&a), &tree_of(&b)])), nodes(&tree_of(&all)));
    }

    #[test]
    fn truncation_keeps_total_and_budget(s in stacks(), max_nodes in 1usize..20) {
        let tree = tree_of(&s);
        let cut = tree.truncated(max_nodes);
        prop_assert_eq!(cut.total(), tree.total());
        let others = (1..=cut.node_count() as u32).filter(|&id| cut.name(id) == "other").count();
        // Nodes tied at the cut-off are all kept (as in Pyroscope), so the budget holds
        // exactly when the kept totals are distinct; in general it is exceeded only by ties.
        let min = {
            let mut totals: Vec<i64> = (1..=tree.node_count() as u32).map(|id| tree.total_of(id)).collect();
            totals.sort_unstable_by(|a, b| b.cmp(a));
            if totals.len() <= max_nodes { 0 } else { totals[max_nodes - 1] }
        };
        let above = (1..=tree.node_count() as u32).filter(|&id| tree.total_of(id) > min).count();
        let tied = (1..=tree.node_count() as u32).filter(|&id| tree.total_of(id) == min).count();
        prop_assert!(above < max_nodes || min == 0);
        // Every kept node had a total at or above the cut-off: at most max_nodes - 1 + ties.
        prop_assert!(cut.node_count() - others <= above + tied);
        if tied == 1 {
            prop_assert!(cut.node_count() - others <= max_nodes);
        }
        if min == 0 {
            prop_assert_eq!(nodes(&cut), nodes(&tree));
        }
        let graph = FlameGraph::from_tree(&tree, max_nodes);
        prop_assert_eq!(graph.total, tree.total());
        let drawn: usize = graph.levels.iter().skip(1).map(|level| level.len() / 4).sum();
        let drawn_others = graph.levels.iter().skip(1)
            .flat_map(|level| level.chunks(4))
            .filter(|node| graph.names[node[3] as usize] == "other")
            .count();
        prop_assert!(drawn - drawn_others <= max_nodes + tied);
    }

    #[test]
    fn tree_bytes_round_trip(s in stacks(), max_nodes in 0usize..20) {
        let tree = tree_of(&s);
        let back = tree_from_bytes(&tree.to_bytes(max_nodes)).expect("our own bytes");
        prop_assert_eq!(nodes(&back), nodes(&tree.truncated(max_nodes)));
    }

    #[test]
    fn collapsed_round_trip(s in stacks()) {
        let tree = tree_of(&s);
        let text = write_collapsed(&tree);
        let back = parse_collapsed(&text).expect("our own text");
        prop_assert_eq!(nodes(&back), nodes(&tree));
    }

    #[test]
    fn flamegraph_levels_account_for_every_node(s in stacks()) {
        let tree = tree_of(&s);
        let graph = FlameGraph::from_tree(&tree, 0);
        let drawn: usize = graph.levels.iter().skip(1).map(|level| level.len() / 4).sum();
        // Without truncation only existing "other" subtrees are folded, into one synthetic
        // "other" under each parent that has such a child.
        let ids = 1..=tree.node_count() as u32;
        let visible = ids.clone().filter(|&id| !tree.path(id).contains(&"other")).count();
        let mut parents: Vec<u32> = ids
            .filter(|&id| tree.name(id) == "other" && !tree.path(tree.parent(id)).contains(&"other"))
            .map(|id| tree.parent(id))
            .collect();
        parents.sort_unstable();
        parents.dedup();
        prop_assert_eq!(drawn, visible + parents.len());
        // Each level's absolute extents stay inside the total.
        for level in &graph.levels {
            let mut end = 0i64;
            for node in level.chunks(4) {
                let x = end + node[0];
                prop_assert!(node[0] >= 0 && x + node[1] <= graph.total);
                end = x + node[1];
            }
        }
    }
}
