//! Tree bytes (`PROFILE_FORMAT_TREE`, `api.md` §6.8): a depth-first walk from a virtual root with
//! an empty name; each node is `uvarint(len(name)) name uvarint(self) uvarint(child_count)`, and
//! children are written last child first. Truncation is that of §6.6.

use crate::tree::{NodeId, Tree};
use crate::truncate::min_value;

/// Why tree bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeBytesError {
    #[error("tree bytes end in the middle of a node at offset {offset}")]
    Truncated { offset: usize },
    #[error("tree bytes hold a varint longer than 10 bytes at offset {offset}")]
    VarintOverflow { offset: usize },
    #[error("tree bytes hold a name that is not valid UTF-8 at offset {offset}")]
    InvalidName { offset: usize },
    #[error("tree bytes nest deeper than {limit} levels")]
    TooDeep { limit: usize },
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

impl Tree {
    /// Serialises the tree truncated to `max_nodes` (0: no limit). An empty tree is no bytes.
    pub fn to_bytes(&self, max_nodes: usize) -> Vec<u8> {
        if self.node_count() == 0 {
            return Vec::new();
        }
        if min_value(self, max_nodes) == 0 {
            return self.write_bytes();
        }
        self.truncated(max_nodes).write_bytes()
    }

    fn write_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.node_count() * 16);
        let children = self.sorted_children();
        let mut stack = vec![Tree::ROOT];
        while let Some(node) = stack.pop() {
            let name = if node == Tree::ROOT {
                ""
            } else {
                self.name(node)
            };
            let kids = children.of(node);
            put_uvarint(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            put_uvarint(&mut out, self.self_value(node) as u64);
            put_uvarint(&mut out, kids.len() as u64);
            stack.extend_from_slice(kids);
        }
        out
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl Reader<'_> {
    fn uvarint(&mut self) -> Result<u64, TreeBytesError> {
        let start = self.offset;
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let Some(&byte) = self.bytes.get(self.offset) else {
                return Err(TreeBytesError::Truncated { offset: start });
            };
            self.offset += 1;
            if shift == 63 && byte > 1 {
                return Err(TreeBytesError::VarintOverflow { offset: start });
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(TreeBytesError::VarintOverflow { offset: start })
    }

    fn name(&mut self) -> Result<&str, TreeBytesError> {
        let start = self.offset;
        let len = self.uvarint()?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.offset.checked_add(len))
            .filter(|&end| end <= self.bytes.len())
            .ok_or(TreeBytesError::Truncated { offset: start })?;
        let name = std::str::from_utf8(&self.bytes[self.offset..end])
            .map_err(|_| TreeBytesError::InvalidName { offset: start })?;
        self.offset = end;
        Ok(name)
    }
}

/// Deepest nesting accepted when reading tree bytes (stacks are truncated at 1024 on ingest).
const MAX_DEPTH: usize = 4096;

/// Reads tree bytes back into a tree. Fewer than two bytes is the empty tree (as Pyroscope
/// reads them); self values are signed 64-bit integers carried as their two's complement, and
/// the virtual root's self value, if any, is ignored.
pub fn tree_from_bytes(bytes: &[u8]) -> Result<Tree, TreeBytesError> {
    let mut tree = Tree::new();
    if bytes.len() < 2 {
        return Ok(tree);
    }
    let mut reader = Reader { bytes, offset: 0 };
    // (tree node, children still to read)
    let mut open: Vec<(NodeId, u64)> = Vec::new();
    let mut values: Vec<(NodeId, i64)> = Vec::new();
    let mut first = true;
    loop {
        let offset = reader.offset;
        let name = reader.name()?.to_owned();
        let self_value = reader.uvarint()? as i64;
        let child_count = reader.uvarint()?;
        let node = if first {
            first = false;
            Tree::ROOT
        } else {
            let Some(parent) = open.last_mut() else {
                return Err(TreeBytesError::Truncated { offset });
            };
            parent.1 -= 1;
            let parent = parent.0;
            let name = tree.intern(&name);
            let node = tree.child(parent, name);
            if self_value != 0 {
                values.push((node, self_value));
            }
            node
        };
        open.push((node, child_count));
        while open.last().is_some_and(|&(_, left)| left == 0) {
            open.pop();
        }
        if open.len() > MAX_DEPTH {
            return Err(TreeBytesError::TooDeep { limit: MAX_DEPTH });
        }
        if open.is_empty() {
            break;
        }
    }
    if reader.offset != bytes.len() {
        return Err(TreeBytesError::Truncated {
            offset: reader.offset,
        });
    }
    tree.add_self_values(&values);
    Ok(tree)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_dfs_last_child_first() {
        let mut tree = Tree::new();
        tree.insert(&["a", "b"], 1);
        tree.insert(&["a", "c"], 2);
        let bytes = tree.to_bytes(0);
        let expected: Vec<u8> = [
            &[0u8, 0, 1][..], // root: "", self 0, 1 child
            &[1, b'a', 0, 2], // a, self 0, 2 children
            &[1, b'c', 2, 0], // c (last child first)
            &[1, b'b', 1, 0], // b
        ]
        .concat();
        assert_eq!(bytes, expected);
        let back = tree_from_bytes(&bytes).expect("valid bytes");
        let mut stacks = back.stacks();
        stacks.sort();
        assert_eq!(stacks, vec![(vec!["a", "b"], 1), (vec!["a", "c"], 2)]);
    }

    /// `Test_Tree_MarshalUnmarshal`: 9 unit stacks over {a,a1}x{b,b1}x{c,c1}, 3 nodes.
    #[test]
    fn truncated_round_trip_golden() {
        let mut tree = Tree::new();
        for a in ["a", "a1"] {
            for b in ["b", "b1"] {
                for c in ["c", "c1"] {
                    tree.insert(&[a, b, c], 1);
                }
            }
        }
        tree.insert(&["a", "b", "c"], 1);
        let back = tree_from_bytes(&tree.to_bytes(3)).expect("valid bytes");
        assert_eq!(
            crate::write_collapsed(&back),
            "a1;other 4\na;b;other 3\na;other 2\n"
        );
    }

    #[test]
    fn empty_tree_is_no_bytes() {
        assert!(Tree::new().to_bytes(0).is_empty());
        assert_eq!(tree_from_bytes(&[]).expect("empty").node_count(), 0);
    }

    #[test]
    fn negative_values_round_trip() {
        let mut tree = Tree::new();
        tree.insert(&["a"], -5);
        tree.insert(&["b"], i64::MAX);
        let back = tree_from_bytes(&tree.to_bytes(0)).expect("valid bytes");
        let mut stacks = back.stacks();
        stacks.sort();
        assert_eq!(stacks, vec![(vec!["a"], -5), (vec!["b"], i64::MAX)]);
        assert_eq!(tree_from_bytes(&[7]).expect("short").node_count(), 0);
    }

    #[test]
    fn bad_bytes_are_errors() {
        assert!(tree_from_bytes(&[0, 0, 1]).is_err());
        assert!(tree_from_bytes(&[5, b'a']).is_err());
        assert!(tree_from_bytes(&[0xff; 11]).is_err());
        assert!(tree_from_bytes(&[1, 0xff, 0, 0]).is_err());
    }
}
