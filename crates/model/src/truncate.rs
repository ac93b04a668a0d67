//! Truncation to `max_nodes` with the synthetic "other" node (`api.md` §6.6).
//!
//! When a tree has more than `max_nodes` nodes, `min_value` is the `max_nodes`-th largest node
//! total. Under every node, children whose total is below it, and children already named
//! "other", are folded into one synthetic "other" child (self = total = their sum) placed after
//! the kept children. Nodes tied at `min_value` are all kept, as in Pyroscope.

use crate::tree::{Children, NodeId, Tree};

/// The name of the synthetic node that holds what truncation removed.
pub const OTHER: &str = "other";

/// The smallest total a node needs to survive truncation to `max_nodes`; 0 means nothing is
/// cut (the tree is small enough, or `max_nodes` is 0 for "no limit").
pub fn min_value(tree: &Tree, max_nodes: usize) -> i64 {
    if max_nodes == 0 || tree.node_count() <= max_nodes {
        return 0;
    }
    let mut totals: Vec<i64> = tree.node_totals().collect();
    let (_, nth, _) = totals.select_nth_unstable_by(max_nodes - 1, |a, b| b.cmp(a));
    *nth
}

/// One child in a flame graph: a real node or the synthetic "other".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VisibleChild {
    Node(NodeId),
    Other { total: i64 },
}

/// The children of `node` drawn in a flame graph cut at `min_value`: kept children by name,
/// then one synthetic "other" holding the totals of the children below the cut and of any
/// child already named "other" (flame graphs always fold those, as Pyroscope does).
pub(crate) fn visible_children(
    tree: &Tree,
    children: &Children,
    node: NodeId,
    min_value: i64,
    out: &mut Vec<VisibleChild>,
) {
    out.clear();
    let mut other_total = 0i64;
    for &child in children.of(node) {
        if tree.total_of(child) >= min_value && tree.name(child) != OTHER {
            out.push(VisibleChild::Node(child));
        } else {
            other_total = other_total.wrapping_add(tree.total_of(child));
        }
    }
    if other_total != 0 {
        out.push(VisibleChild::Other { total: other_total });
    }
}

impl Tree {
    /// A copy of this tree truncated to `max_nodes` (0: no limit), as tree bytes carry it:
    /// under each node, children below the cut are folded into the child named "other"
    /// (created if missing; an existing "other" is always kept, its own children cut too).
    pub fn truncated(&self, max_nodes: usize) -> Tree {
        let min = min_value(self, max_nodes);
        if min == 0 {
            return self.clone();
        }
        let children = self.sorted_children();
        let mut out = Tree::new();
        let other_name = out.intern(OTHER);
        let mut stack: Vec<(NodeId, NodeId)> = vec![(Tree::ROOT, Tree::ROOT)];
        while let Some((source, target)) = stack.pop() {
            if source != Tree::ROOT && self.self_value(source) != 0 {
                out.add_value(target, self.self_value(source));
            }
            let mut other_total = 0i64;
            for &child in children.of(source) {
                if self.total_of(child) >= min || self.name(child) == OTHER {
                    let name = out.intern(self.name(child));
                    let node = out.child(target, name);
                    stack.push((child, node));
                } else {
                    other_total = other_total.wrapping_add(self.total_of(child));
                }
            }
            if other_total > 0 {
                let node = out.child(target, other_name);
                out.add_value(node, other_total);
            }
        }
        out
    }
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

    fn folded(tree: &Tree) -> Vec<(String, i64)> {
        let mut stacks: Vec<(String, i64)> = tree
            .stacks()
            .into_iter()
            .map(|(path, value)| (path.join(";"), value))
            .collect();
        stacks.sort();
        stacks
    }

    /// `pkg/model/flamegraph_test.go`'s truncation golden (`api.md` §6.6).
    #[test]
    fn pyroscope_golden() {
        let input = tree(&[
            ("foo;bar", 1),
            ("foo;bar;baz", 1),
            ("foo;qux", 2),
            ("fred;zoo", 1),
            ("fred;other", 1),
        ]);
        assert_eq!(min_value(&input, 4), 2);
        let expected = [
            ("foo;bar", 1),
            ("foo;bar;other", 1),
            ("foo;qux", 2),
            ("fred;other", 2),
        ];
        let expected: Vec<(String, i64)> =
            expected.iter().map(|(s, v)| (s.to_string(), *v)).collect();
        assert_eq!(folded(&input.truncated(4)), expected);
    }

    #[test]
    fn small_trees_are_not_cut() {
        let input = tree(&[("a;other", 1), ("b", 2)]);
        assert_eq!(min_value(&input, 3), 0);
        assert_eq!(min_value(&input, 0), 0);
        assert_eq!(folded(&input.truncated(3)), folded(&input));
    }
}
