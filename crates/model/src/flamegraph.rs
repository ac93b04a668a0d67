//! The `FlameGraph` levels encoding and its diff form (`api.md` §6.7).
//!
//! Level 0 holds one node named "total". Each node is `[x_delta, total, self, name_index]`
//! (diff: `[xl_delta, total_l, self_l, xr_delta, total_r, self_r, name_index]`), nodes of a level
//! ordered by absolute x, where a node's x is its parent's x plus the parent's self plus the
//! totals of earlier siblings, and `x_delta` is the distance from the end of the previous node
//! of the level. Names are numbered in the first-visit order of a depth-first walk that visits
//! the right-most child first.
//!
//! Sums wrap on overflow (as Go's int64 arithmetic does in Pyroscope): hostile values give
//! meaningless numbers, never a panic.

use crate::interner::Interner;
use crate::tree::{NodeId, Tree};
use crate::truncate::{OTHER, VisibleChild, min_value, visible_children};

const TOTAL: &str = "total";

/// A flame graph in Pyroscope's levels encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlameGraph {
    pub names: Vec<String>,
    pub levels: Vec<Vec<i64>>,
    pub total: i64,
    pub max_self: i64,
}

/// One laid-out node: absolute x, values and name index.
#[derive(Debug, Clone, Copy)]
struct Placed<const N: usize> {
    x: [i64; N],
    total: [i64; N],
    self_value: [i64; N],
    name: i64,
}

/// Turns per-level placed nodes (in any order) into delta-encoded level rows.
fn encode_levels<const N: usize>(mut levels: Vec<Vec<Placed<N>>>) -> Vec<Vec<i64>> {
    let width = 3 * N + 1;
    levels
        .iter_mut()
        .map(|level| {
            level.reverse();
            let mut row = Vec::with_capacity(level.len() * width);
            let mut end = [0i64; N];
            for node in level.iter() {
                for (side, end) in end.iter_mut().enumerate() {
                    row.push(node.x[side].wrapping_sub(*end));
                    row.push(node.total[side]);
                    row.push(node.self_value[side]);
                    *end = node.x[side].wrapping_add(node.total[side]);
                }
                row.push(node.name);
            }
            row
        })
        .collect()
}

impl FlameGraph {
    /// Renders `tree` truncated to `max_nodes` (0: no limit).
    pub fn from_tree(tree: &Tree, max_nodes: usize) -> FlameGraph {
        let min = min_value(tree, max_nodes);
        let children = tree.sorted_children();
        let mut names = Interner::new();
        names.intern(TOTAL);
        let root_total = tree.total();
        let mut levels: Vec<Vec<Placed<1>>> = vec![vec![Placed {
            x: [0],
            total: [root_total],
            self_value: [0],
            name: 0,
        }]];
        let mut max_self = 0i64;
        let mut stack: Vec<(VisibleChild, usize, i64)> = Vec::new();
        let mut visible = Vec::new();
        let mut push_children = |node: NodeId, depth: usize, x: i64, stack: &mut Vec<_>| {
            visible_children(tree, &children, node, min, &mut visible);
            let mut child_x = x;
            for &child in &visible {
                stack.push((child, depth + 1, child_x));
                child_x = child_x.wrapping_add(match child {
                    VisibleChild::Node(c) => tree.total_of(c),
                    VisibleChild::Other { total } => total,
                });
            }
        };
        push_children(Tree::ROOT, 0, 0, &mut stack);
        while let Some((item, depth, x)) = stack.pop() {
            if levels.len() <= depth {
                levels.push(Vec::new());
            }
            let (name, total, self_value) = match item {
                VisibleChild::Node(node) => {
                    (tree.name(node), tree.total_of(node), tree.self_value(node))
                }
                VisibleChild::Other { total } => (OTHER, total, total),
            };
            max_self = max_self.max(self_value);
            levels[depth].push(Placed {
                x: [x],
                total: [total],
                self_value: [self_value],
                name: i64::from(names.intern(name)),
            });
            if let VisibleChild::Node(node) = item {
                push_children(node, depth, x.wrapping_add(self_value), &mut stack);
            }
        }
        FlameGraph {
            names: names.into_strings(),
            levels: encode_levels(levels),
            total: root_total,
            max_self,
        }
    }
}

/// A diff flame graph: the union of two trees, each node carrying both sides' values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlameGraphDiff {
    pub names: Vec<String>,
    pub levels: Vec<Vec<i64>>,
    pub total: i64,
    pub max_self: i64,
    pub left_ticks: i64,
    pub right_ticks: i64,
}

/// Why two trees cannot be diffed. The messages are Pyroscope's, including its wording for a
/// bad right tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("both trees require only positive values")]
    BothNegative,
    #[error("left tree require only positive values")]
    LeftNegative,
    #[error("left tree require only positive values")]
    RightNegative,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiffItem {
    Node(NodeId),
    Other { left: i64, right: i64 },
}

impl FlameGraphDiff {
    /// Renders the diff of `left` and `right`, truncated to `max_nodes` (0: no limit): a node
    /// stays when either side's total reaches that side's cut-off.
    pub fn from_trees(left: &Tree, right: &Tree, max_nodes: usize) -> Result<Self, DiffError> {
        let negative = |tree: &Tree| tree.node_selves().any(|v| v < 0);
        match (negative(left), negative(right)) {
            (true, true) => return Err(DiffError::BothNegative),
            (true, false) => return Err(DiffError::LeftNegative),
            (false, true) => return Err(DiffError::RightNegative),
            (false, false) => {}
        }
        let mut union = Tree::new();
        let left_map = union.merge_mapped(left);
        let right_map = union.merge_mapped(right);
        let n = union.node_count() + 1;
        let mut values = vec![[0i64; 4]; n]; // total_l, self_l, total_r, self_r
        for (id, &u) in left_map.iter().enumerate() {
            values[u as usize][0] = left.total_of(id as NodeId);
            values[u as usize][1] = left.self_value(id as NodeId);
        }
        for (id, &u) in right_map.iter().enumerate() {
            values[u as usize][2] = right.total_of(id as NodeId);
            values[u as usize][3] = right.self_value(id as NodeId);
        }
        let min = combined_min_value(&values, [left.total(), right.total()], max_nodes);
        let children = union.sorted_children();
        // The root's empty name takes index 0 and is shown as "total" (a function named ""
        // shares it, one named "total" does not: Pyroscope's diff keys names this way).
        let mut names = Interner::new();
        names.intern("");
        let mut levels: Vec<Vec<Placed<2>>> = vec![vec![Placed {
            x: [0, 0],
            total: [left.total(), right.total()],
            self_value: [0, 0],
            name: 0,
        }]];
        let mut max_self = 0i64;
        let mut stack: Vec<(DiffItem, usize, [i64; 2])> = Vec::new();
        let push_children = |node: NodeId, depth: usize, x: [i64; 2], stack: &mut Vec<_>| {
            let mut child_x = x;
            let mut other = [0i64; 2];
            let mut folded = false;
            for &child in children.of(node) {
                let v = values[child as usize];
                let keep = v[0] >= min || v[2] >= min;
                if keep {
                    stack.push((DiffItem::Node(child), depth + 1, child_x));
                    child_x = [child_x[0].wrapping_add(v[0]), child_x[1].wrapping_add(v[2])];
                } else {
                    other = [other[0].wrapping_add(v[0]), other[1].wrapping_add(v[2])];
                    folded = true;
                }
            }
            if folded && (other[0] != 0 || other[1] != 0) {
                let item = DiffItem::Other {
                    left: other[0],
                    right: other[1],
                };
                stack.push((item, depth + 1, child_x));
            }
        };
        push_children(Tree::ROOT, 0, [0, 0], &mut stack);
        while let Some((item, depth, x)) = stack.pop() {
            if levels.len() <= depth {
                levels.push(Vec::new());
            }
            let (name, total, self_value) = match item {
                DiffItem::Node(node) => {
                    let v = values[node as usize];
                    (union.name(node), [v[0], v[2]], [v[1], v[3]])
                }
                DiffItem::Other { left, right } => (OTHER, [left, right], [left, right]),
            };
            max_self = max_self.max(self_value[0]).max(self_value[1]);
            levels[depth].push(Placed {
                x,
                total,
                self_value,
                name: i64::from(names.intern(name)),
            });
            if let DiffItem::Node(node) = item {
                let inner = [
                    x[0].wrapping_add(self_value[0]),
                    x[1].wrapping_add(self_value[1]),
                ];
                push_children(node, depth, inner, &mut stack);
            }
        }
        let mut names = names.into_strings();
        names[0] = TOTAL.to_owned();
        Ok(FlameGraphDiff {
            names,
            levels: encode_levels(levels),
            total: left.total().wrapping_add(right.total()),
            max_self,
            left_ticks: left.total(),
            right_ticks: right.total(),
        })
    }
}

/// The diff's cut-off: the `max_nodes`-th largest `max(left total, right total)` over the union
/// tree, its root included; 0 when the union has at most `max_nodes` nodes.
fn combined_min_value(values: &[[i64; 4]], root_totals: [i64; 2], max_nodes: usize) -> i64 {
    // values[0] is the union's root, whose slots are unused: use the trees' totals.
    if max_nodes == 0 || values.len() <= max_nodes {
        return 0;
    }
    let mut larger: Vec<i64> = values[1..].iter().map(|v| v[0].max(v[2])).collect();
    larger.push(root_totals[0].max(root_totals[1]));
    let (_, nth, _) = larger.select_nth_unstable_by(max_nodes - 1, |a, b| b.cmp(a));
    *nth
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(stacks: &[(&str, i64)]) -> Tree {
        let mut tree = Tree::new();
        for (stack, value) in stacks {
            let frames: Vec<&str> = stack.split(';').collect();
            tree.insert(&frames, *value);
        }
        tree
    }

    /// `Test_ExportToFlamebearer` (`api.md` §6.7), verbatim.
    #[test]
    fn single_golden() {
        let graph = FlameGraph::from_tree(&tree(&[("a;b;e", 1), ("a;c", 2), ("a;c;d", 1)]), 0);
        assert_eq!(graph.names, ["total", "a", "c", "d", "b", "e"]);
        assert_eq!(
            graph.levels,
            vec![
                vec![0, 4, 0, 0],
                vec![0, 4, 0, 1],
                vec![0, 1, 0, 4, 0, 3, 2, 2],
                vec![0, 1, 1, 5, 2, 1, 1, 3],
            ]
        );
        assert_eq!(graph.total, 4);
        assert_eq!(graph.max_self, 2);
    }

    /// The diff golden of `api.md` §6.7, verbatim.
    #[test]
    fn diff_golden() {
        let left = tree(&[("a;b", 1), ("a;c", 2)]);
        let right = tree(&[("a;b", 4), ("a;c", 8)]);
        let diff = FlameGraphDiff::from_trees(&left, &right, 0).expect("non-negative");
        assert_eq!(diff.names, ["total", "a", "c", "b"]);
        assert_eq!(
            diff.levels,
            vec![
                vec![0, 3, 0, 0, 12, 0, 0],
                vec![0, 3, 0, 0, 12, 0, 1],
                vec![0, 1, 1, 0, 4, 4, 3, 0, 2, 2, 0, 8, 8, 2],
            ]
        );
        assert_eq!(diff.total, 15);
        assert_eq!(diff.max_self, 8);
        assert_eq!((diff.left_ticks, diff.right_ticks), (3, 12));
    }

    #[test]
    fn diff_rejects_negative_values() {
        let bad = tree(&[("a", -1)]);
        let good = tree(&[("a", 1)]);
        assert_eq!(
            FlameGraphDiff::from_trees(&bad, &good, 0),
            Err(DiffError::LeftNegative)
        );
        assert_eq!(
            FlameGraphDiff::from_trees(&bad, &bad, 0),
            Err(DiffError::BothNegative)
        );
        let err = FlameGraphDiff::from_trees(&good, &bad, 0).expect_err("negative right");
        assert_eq!(err.to_string(), "left tree require only positive values");
    }

    #[test]
    fn diff_truncates_on_the_larger_side() {
        // Union nodes (root included) by max(L, R): root 20, a 10, b 10, c 1 -> 3rd largest 10.
        let left = tree(&[("a", 10), ("c", 1)]);
        let right = tree(&[("b", 10)]);
        let diff = FlameGraphDiff::from_trees(&left, &right, 3).expect("non-negative");
        assert_eq!(diff.names, ["total", "other", "b", "a"]);
        assert_eq!(
            diff.levels[1],
            vec![
                0, 10, 10, 0, 0, 0, 3, 0, 0, 0, 0, 10, 10, 2, 0, 1, 1, 0, 0, 0, 1
            ]
        );
    }

    #[test]
    fn flamegraph_folds_existing_other_nodes() {
        let graph = FlameGraph::from_tree(&tree(&[("a", 1), ("other;x", 2)]), 0);
        assert_eq!(graph.names, ["total", "other", "a"]);
        assert_eq!(
            graph.levels,
            vec![vec![0, 3, 0, 0], vec![0, 1, 1, 2, 0, 2, 2, 1]]
        );
    }

    #[test]
    fn truncated_graph_puts_other_after_kept_children() {
        // Root children: big (10), zz (10), small (1): "other" comes after "zz".
        let graph = FlameGraph::from_tree(&tree(&[("big", 10), ("zz", 10), ("small", 1)]), 2);
        assert_eq!(graph.names, ["total", "other", "zz", "big"]);
        assert_eq!(
            graph.levels[1],
            vec![0, 10, 10, 3, 0, 10, 10, 2, 0, 1, 1, 1]
        );
        assert_eq!(graph.total, 21);
    }

    #[test]
    fn empty_tree_has_only_total() {
        let graph = FlameGraph::from_tree(&Tree::new(), 0);
        assert_eq!(graph.names, ["total"]);
        assert_eq!(graph.levels, vec![vec![0, 0, 0, 0]]);
    }
}
