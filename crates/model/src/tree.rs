//! The stack tree: stacks of function names merged by path, with self and total values.

use crate::interner::Interner;
use rustc_hash::FxHashMap;

/// Index of a node in a [`Tree`]. The virtual root is [`Tree::ROOT`].
pub type NodeId = u32;

#[derive(Debug, Clone, Copy)]
struct Node {
    name: u32,
    parent: NodeId,
    self_value: i64,
    total: i64,
}

/// A call tree keyed by function-name paths, as Pyroscope's query results are.
///
/// Node 0 is a virtual root with an empty name; every stack hangs below it, root frame first.
/// A parent is always created before its children, so node ids are a topological order. The
/// root's total is the sum of all inserted values.
#[derive(Debug, Clone)]
pub struct Tree {
    names: Interner,
    nodes: Vec<Node>,
    /// `(parent << 32) | name` → child.
    children: FxHashMap<u64, NodeId>,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    pub const ROOT: NodeId = 0;

    pub fn new() -> Self {
        let mut names = Interner::new();
        let root_name = names.intern("");
        Self {
            names,
            nodes: vec![Node {
                name: root_name,
                parent: Self::ROOT,
                self_value: 0,
                total: 0,
            }],
            children: FxHashMap::default(),
        }
    }

    /// Interns a function name for use with [`Tree::child`] and [`Tree::insert_ids`].
    pub fn intern(&mut self, name: &str) -> u32 {
        self.names.intern(name)
    }

    /// The child of `parent` with interned name `name`, created if missing.
    pub fn child(&mut self, parent: NodeId, name: u32) -> NodeId {
        let next = self.nodes.len() as NodeId;
        let nodes = &mut self.nodes;
        let key = (u64::from(parent) << 32) | u64::from(name);
        *self.children.entry(key).or_insert_with(|| {
            nodes.push(Node {
                name,
                parent,
                self_value: 0,
                total: 0,
            });
            next
        })
    }

    /// Adds `value` to the leaf `node` as self and to every node on its path as total.
    pub fn add_value(&mut self, node: NodeId, value: i64) {
        let n = &mut self.nodes[node as usize];
        n.self_value = n.self_value.wrapping_add(value);
        let mut current = node;
        loop {
            let n = &mut self.nodes[current as usize];
            n.total = n.total.wrapping_add(value);
            if current == Self::ROOT {
                break;
            }
            current = n.parent;
        }
    }

    /// Adds many self values at once, then recomputes every total in one pass over the tree:
    /// cheaper than [`Tree::add_value`] per value when the values outnumber the nodes or the
    /// stacks are deep.
    pub fn add_self_values(&mut self, values: &[(NodeId, i64)]) {
        if values.is_empty() {
            return;
        }
        for &(node, value) in values {
            let n = &mut self.nodes[node as usize];
            n.self_value = n.self_value.wrapping_add(value);
        }
        for node in &mut self.nodes {
            node.total = node.self_value;
        }
        // Children always have larger ids than their parents.
        for id in (1..self.nodes.len()).rev() {
            let (total, parent) = (self.nodes[id].total, self.nodes[id].parent);
            let p = &mut self.nodes[parent as usize];
            p.total = p.total.wrapping_add(total);
        }
    }

    /// Inserts one stack of interned names, root first. An empty stack is ignored.
    pub fn insert_ids(&mut self, stack_root_first: &[u32], value: i64) {
        if stack_root_first.is_empty() {
            return;
        }
        let mut node = Self::ROOT;
        for &name in stack_root_first {
            node = self.child(node, name);
        }
        self.add_value(node, value);
    }

    /// Inserts one stack of names, root first. An empty stack is ignored.
    pub fn insert<S: AsRef<str>>(&mut self, stack_root_first: &[S], value: i64) {
        if stack_root_first.is_empty() {
            return;
        }
        let mut node = Self::ROOT;
        for name in stack_root_first {
            let id = self.names.intern(name.as_ref());
            node = self.child(node, id);
        }
        self.add_value(node, value);
    }

    /// Adds every stack of `other` into this tree.
    pub fn merge(&mut self, other: &Tree) {
        self.merge_mapped(other);
    }

    /// Adds every stack of `other` into this tree and returns, for each node of `other`, the
    /// node of this tree it landed on.
    pub fn merge_mapped(&mut self, other: &Tree) -> Vec<NodeId> {
        let mut mapped: Vec<NodeId> = Vec::with_capacity(other.nodes.len());
        mapped.push(Self::ROOT);
        for node in &other.nodes[1..] {
            let name = self.names.intern(other.names.resolve(node.name));
            let parent = mapped[node.parent as usize];
            let id = self.child(parent, name);
            let target = &mut self.nodes[id as usize];
            target.self_value = target.self_value.wrapping_add(node.self_value);
            target.total = target.total.wrapping_add(node.total);
            mapped.push(id);
        }
        self.nodes[0].total = self.nodes[0].total.wrapping_add(other.nodes[0].total);
        mapped
    }

    /// Number of nodes, not counting the virtual root.
    pub fn node_count(&self) -> usize {
        self.nodes.len() - 1
    }

    /// Sum of all values (the root's total).
    pub fn total(&self) -> i64 {
        self.nodes[0].total
    }

    pub fn name(&self, node: NodeId) -> &str {
        self.names.resolve(self.nodes[node as usize].name)
    }

    pub fn self_value(&self, node: NodeId) -> i64 {
        self.nodes[node as usize].self_value
    }

    pub fn total_of(&self, node: NodeId) -> i64 {
        self.nodes[node as usize].total
    }

    pub fn parent(&self, node: NodeId) -> NodeId {
        self.nodes[node as usize].parent
    }

    /// Every node's total, virtual root excluded.
    pub(crate) fn node_totals(&self) -> impl Iterator<Item = i64> + '_ {
        self.nodes[1..].iter().map(|n| n.total)
    }

    /// Every node's self value, virtual root excluded.
    pub(crate) fn node_selves(&self) -> impl Iterator<Item = i64> + '_ {
        self.nodes[1..].iter().map(|n| n.self_value)
    }

    /// Children of every node, each list sorted by name in byte order (as Pyroscope keeps them).
    pub fn sorted_children(&self) -> Children {
        let mut counts = vec![0u32; self.nodes.len() + 1];
        for node in &self.nodes[1..] {
            counts[node.parent as usize + 1] += 1;
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let mut fill = counts.clone();
        let mut ids = vec![0 as NodeId; self.nodes.len() - 1];
        for (id, node) in self.nodes.iter().enumerate().skip(1) {
            let slot = &mut fill[node.parent as usize];
            ids[*slot as usize] = id as NodeId;
            *slot += 1;
        }
        for parent in 0..self.nodes.len() {
            let range = counts[parent] as usize..counts[parent + 1] as usize;
            ids[range]
                .sort_unstable_by(|&a, &b| self.name(a).as_bytes().cmp(self.name(b).as_bytes()));
        }
        Children {
            offsets: counts,
            ids,
        }
    }

    /// The names from the root's child down to `node`.
    pub fn path(&self, node: NodeId) -> Vec<&str> {
        let mut path = Vec::new();
        let mut current = node;
        while current != Self::ROOT {
            path.push(self.name(current));
            current = self.parent(current);
        }
        path.reverse();
        path
    }

    /// Every stack with a non-zero self value, as (names root first, value).
    pub fn stacks(&self) -> Vec<(Vec<&str>, i64)> {
        (1..self.nodes.len() as NodeId)
            .filter(|&id| self.self_value(id) != 0)
            .map(|id| (self.path(id), self.self_value(id)))
            .collect()
    }
}

/// Children lists of every node of a tree, in compressed form.
#[derive(Debug, Clone)]
pub struct Children {
    offsets: Vec<u32>,
    ids: Vec<NodeId>,
}

impl Children {
    pub fn of(&self, node: NodeId) -> &[NodeId] {
        let start = self.offsets[node as usize] as usize;
        let end = self.offsets[node as usize + 1] as usize;
        &self.ids[start..end]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_sums_paths() {
        let mut tree = Tree::new();
        tree.insert(&["a", "b"], 1);
        tree.insert(&["a", "b"], 2);
        tree.insert(&["a", "c"], 4);
        tree.insert::<&str>(&[], 9);
        assert_eq!(tree.total(), 7);
        assert_eq!(tree.node_count(), 3);
        let mut stacks = tree.stacks();
        stacks.sort();
        assert_eq!(stacks, vec![(vec!["a", "b"], 3), (vec!["a", "c"], 4)]);
    }

    #[test]
    fn children_are_sorted_by_bytes() {
        let mut tree = Tree::new();
        for name in ["b", "a", "B", "é", "aa"] {
            tree.insert(&[name], 1);
        }
        let children = tree.sorted_children();
        let names: Vec<&str> = children
            .of(Tree::ROOT)
            .iter()
            .map(|&c| tree.name(c))
            .collect();
        assert_eq!(names, ["B", "a", "aa", "b", "é"]);
    }

    #[test]
    fn batched_self_values_give_the_same_totals() {
        let mut one_by_one = Tree::new();
        let mut batched = Tree::new();
        let mut batch = Vec::new();
        for (stack, value) in [
            (&["a", "b"][..], 2),
            (&["a"][..], 3),
            (&["c", "d", "e"][..], 5),
        ] {
            one_by_one.insert(stack, value);
            let mut node = Tree::ROOT;
            for name in stack {
                let id = batched.intern(name);
                node = batched.child(node, id);
            }
            batch.push((node, value));
        }
        batched.add_self_values(&batch);
        assert_eq!(batched.total(), one_by_one.total());
        for id in 1..=batched.node_count() as NodeId {
            assert_eq!(batched.total_of(id), one_by_one.total_of(id), "node {id}");
        }
    }

    #[test]
    fn merge_adds_values() {
        let mut left = Tree::new();
        left.insert(&["a", "b"], 1);
        let mut right = Tree::new();
        right.insert(&["a", "b"], 2);
        right.insert(&["x"], 5);
        left.merge(&right);
        let mut stacks = left.stacks();
        stacks.sort();
        assert_eq!(stacks, vec![(vec!["a", "b"], 3), (vec!["x"], 5)]);
        assert_eq!(left.total(), 8);
        assert_eq!(left.total_of(1), 3);
    }
}
