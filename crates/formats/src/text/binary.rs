//! The two binary formats of `/ingest`, both depth-first node lists with unsigned LEB128
//! varints (Go's `binary.ReadUvarint`):
//!
//! * **trie** (`transporttrie.IterateRaw`): per node the name length, the name (appended to the
//!   names of the open nodes: prefix compression), the value and the descendant count. A node
//!   with a value adds it to its whole key; a node with descendants stays open until that many
//!   children have ended. Nodes follow each other until the body ends (after the first node's
//!   subtree, further nodes are its children). A body that ends between nodes is complete.
//! * **tree** (`tree.DeserializeNoDict`): per node the name length, the name, the self value
//!   and the child count; the first node is the root and reading stops when its subtree is
//!   complete (later bytes are ignored). Children with the same name are one node whose self
//!   value is the last one read. A node's stack is `;` + the names from the root joined by `;`,
//!   less its first two bytes (so an empty root name gives `a;b`).
//!
//! Keys are then split at `;` like any text key. Two differences from Go, both on bodies no
//! client writes: a trie node with an empty name that is not the first leaves the key as it
//! was (Go cuts the previous node's length again, or panics), and a tree name length that
//! overflows 64 bits is an error (Go ignores it).

use super::TextError;
use super::stacks::{KeyCursor, Mark, StackTree};
use rustc_hash::FxHashMap;

/// A position in a binary body.
#[derive(Debug)]
struct Reader<'a> {
    format: &'static str,
    body: &'a [u8],
    offset: usize,
}

impl<'a> Reader<'a> {
    fn new(format: &'static str, body: &'a [u8]) -> Self {
        Reader {
            format,
            body,
            offset: 0,
        }
    }

    fn at_end(&self) -> bool {
        self.offset >= self.body.len()
    }

    fn truncated(&self) -> TextError {
        TextError::Truncated {
            format: self.format,
            offset: self.offset,
        }
    }

    fn uvarint(&mut self) -> Result<u64, TextError> {
        let start = self.offset;
        let mut value = 0u64;
        for (index, &byte) in self
            .body
            .get(start..)
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            if index == 9 && byte > 1 {
                return Err(TextError::VarintOverflow {
                    format: self.format,
                    offset: start,
                });
            }
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte < 0x80 {
                self.offset = start + index + 1;
                return Ok(value);
            }
        }
        self.offset = self.body.len();
        Err(self.truncated())
    }

    fn bytes(&mut self, len: u64) -> Result<&'a [u8], TextError> {
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.offset.checked_add(len))
            .filter(|&end| end <= self.body.len())
            .ok_or_else(|| self.truncated())?;
        let out = self
            .body
            .get(self.offset..end)
            .ok_or_else(|| self.truncated())?;
        self.offset = end;
        Ok(out)
    }
}

/// Reads a transport trie into `tree`.
pub(crate) fn parse_trie(body: &[u8], tree: &mut StackTree) -> Result<(), TextError> {
    tree.meter_expansion();
    let mut reader = Reader::new("trie", body);
    let mut cursor = KeyCursor::new(0);
    // Open nodes: descendants still to come and the key before the node's name.
    let mut open: Vec<(u64, Mark)> = Vec::new();
    while !reader.at_end() {
        let before = cursor.mark();
        let name_len = reader.uvarint()?;
        let name = reader.bytes(name_len)?;
        cursor.push(tree, name)?;
        let value = reader.uvarint()?;
        let descendants = reader.uvarint()?;
        if value > 0 {
            let node = cursor.key_node(tree)?;
            // Go passes the value through `int` and back: the same 64 bits.
            tree.add(node, value as i64)?;
        }
        if descendants != 0 {
            open.push((descendants, before));
            continue;
        }
        cursor.reset(before);
        close_ended_nodes(&mut open, &mut cursor);
    }
    Ok(())
}

/// After a leaf: counts it against its parent and closes every open node (but the first)
/// whose descendants have all been read, as `IterateRaw` does.
fn close_ended_nodes(open: &mut Vec<(u64, Mark)>, cursor: &mut KeyCursor) {
    let Some((count, _)) = open.last_mut() else {
        return;
    };
    *count = count.wrapping_sub(1);
    while open.len() > 1 {
        let Some(&(count, mark)) = open.last() else {
            break;
        };
        if count != 0 {
            break;
        }
        open.pop();
        cursor.reset(mark);
        // The first node's count is never used, so Go does not decrement it.
        if open.len() > 1
            && let Some((parent_count, _)) = open.last_mut()
        {
            *parent_count = parent_count.wrapping_sub(1);
        }
    }
}

/// Reads a "NoDict" tree into `tree`.
pub(crate) fn parse_tree(body: &[u8], tree: &mut StackTree) -> Result<(), TextError> {
    tree.meter_expansion();
    const NO_PARENT: u32 = u32::MAX;
    let mut reader = Reader::new("tree", body);
    // The stack is the label without its first two bytes.
    let mut cursor = KeyCursor::new(2);
    // Nodes of the body by (parent, name): id and the self value added for it so far.
    let mut nodes: FxHashMap<(u32, &[u8]), (u32, u64)> = FxHashMap::default();
    // Nodes with children still to read: id, children left, label before the node's name.
    let mut open: Vec<(u32, u64, Mark)> = vec![(NO_PARENT, 1, cursor.mark())];
    while let Some((parent, children_left, parent_end)) = open.last_mut() {
        let parent = *parent;
        let parent_end = *parent_end;
        *children_left -= 1;
        if *children_left == 0 {
            open.pop();
        }
        let name_len = reader.uvarint()?;
        let name = reader.bytes(name_len)?;
        let self_value = reader.uvarint()?;
        let children = reader.uvarint()?;

        let next_id = u32::try_from(nodes.len())
            .ok()
            .filter(|&id| id != NO_PARENT)
            .ok_or(TextError::TooManyNodes {
                limit: NO_PARENT as usize,
            })?;
        let (id, previous) = nodes.entry((parent, name)).or_insert((next_id, 0));
        let (id, previous) = (*id, std::mem::replace(previous, self_value));

        // The label: `;`, the root's name, then `;` and a name per level.
        cursor.reset(parent_end);
        cursor.push(tree, b";")?;
        cursor.push(tree, name)?;
        // A repeated node replaces its self value: add the difference.
        let delta = self_value.wrapping_sub(previous);
        if cursor.len() > 2 && delta != 0 {
            let node = cursor.key_node(tree)?;
            tree.add(node, delta as i64)?;
        }
        if children > 0 {
            open.push((id, children, cursor.mark()));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::text::TextLimits;
    use std::collections::BTreeMap;

    pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    fn trie(body: &[u8]) -> Result<String, TextError> {
        let mut tree = StackTree::new(TextLimits::default());
        parse_trie(body, &mut tree)?;
        Ok(tree.collapsed())
    }

    fn nodict(body: &[u8]) -> Result<String, TextError> {
        let mut tree = StackTree::new(TextLimits::default());
        parse_tree(body, &mut tree)?;
        Ok(tree.collapsed())
    }

    fn node(out: &mut Vec<u8>, name: &str, value: u64, children: u64) {
        put_uvarint(out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        put_uvarint(out, value);
        put_uvarint(out, children);
    }

    #[test]
    fn varints_are_leb128() {
        let mut body = Vec::new();
        for value in [0, 1, 127, 128, 300, u64::MAX] {
            put_uvarint(&mut body, value);
        }
        let mut reader = Reader::new("test", &body);
        for value in [0, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(reader.uvarint().expect("valid"), value);
        }
        assert!(matches!(reader.uvarint(), Err(TextError::Truncated { .. })));
        let mut reader = Reader::new("test", &[0xff; 10]);
        assert!(matches!(
            reader.uvarint(),
            Err(TextError::VarintOverflow { .. })
        ));
        let mut reader = Reader::new("test", &[0x80, 0x80]);
        assert!(matches!(reader.uvarint(), Err(TextError::Truncated { .. })));
    }

    #[test]
    fn trie_names_are_prefix_compressed() {
        // "" → "foo;ba" → {"r" = 3, "z" = 4 → {";qux" = 5}}, then "x;y" = 1 under the root.
        let mut body = Vec::new();
        node(&mut body, "", 0, 2);
        node(&mut body, "foo;ba", 0, 2);
        node(&mut body, "r", 3, 0);
        node(&mut body, "z", 4, 1);
        node(&mut body, ";qux", 5, 0);
        node(&mut body, "x;y", 1, 0);
        assert_eq!(
            trie(&body).expect("valid"),
            "foo;bar 3\nfoo;baz 4\nfoo;baz;qux 5\nx;y 1\n"
        );
        // Nodes after the root's subtree are more children of the root.
        node(&mut body, "x;y", 2, 0);
        assert!(trie(&body).expect("valid").ends_with("x;y 3\n"));
        assert_eq!(trie(&[]).expect("empty"), "");
    }

    #[test]
    fn truncated_tries_fail() {
        let mut body = Vec::new();
        node(&mut body, "", 0, 1);
        node(&mut body, "abc", 1, 0);
        for cut in 1..body.len() {
            let result = trie(&body[..cut]);
            // Ending right after a whole node is a complete body.
            if cut == 3 {
                assert_eq!(result.expect("complete"), "");
            } else {
                assert!(
                    matches!(result, Err(TextError::Truncated { .. })),
                    "cut {cut}"
                );
            }
        }
        let mut huge = Vec::new();
        put_uvarint(&mut huge, u64::MAX);
        huge.push(b'a');
        assert!(matches!(trie(&huge), Err(TextError::Truncated { .. })));
    }

    #[test]
    fn tree_matches_pyroscope_example() {
        // Pyroscope's test tree: root "" → a → {b self 1, c self 2}.
        let body = b"\x00\x00\x01\x01a\x00\x02\x01b\x01\x00\x01c\x02\x00";
        assert_eq!(nodict(body).expect("valid"), "a;b 1\na;c 2\n");
    }

    #[test]
    fn tree_quirks() {
        // A root name is part of the label: ";xy;a" less two bytes is "y;a".
        let mut body = Vec::new();
        node(&mut body, "xy", 7, 1);
        node(&mut body, "a", 1, 0);
        assert_eq!(nodict(&body).expect("valid"), "y 7\ny;a 1\n");
        // The root's own value and first-level names of one byte or less need 3 label bytes.
        let mut body = Vec::new();
        node(&mut body, "", 9, 2);
        node(&mut body, "a", 1, 0);
        node(&mut body, "", 2, 0);
        assert_eq!(nodict(&body).expect("valid"), "a 1\n");
        // Same-named siblings are one node: the last self value wins; bytes after the root's
        // subtree are ignored.
        let mut body = Vec::new();
        node(&mut body, "", 0, 3);
        node(&mut body, "a", 5, 0);
        node(&mut body, "b", 1, 0);
        node(&mut body, "a", 2, 1);
        node(&mut body, "c", 4, 0);
        body.extend_from_slice(b"trailing garbage");
        assert_eq!(nodict(&body).expect("valid"), "a 2\na;c 4\nb 1\n");
        // A name with `;` splits into frames.
        let mut body = Vec::new();
        node(&mut body, "", 0, 1);
        node(&mut body, "a;b", 3, 0);
        assert_eq!(nodict(&body).expect("valid"), "a;b 3\n");
    }

    #[test]
    fn truncated_trees_fail() {
        let mut body = Vec::new();
        node(&mut body, "", 0, 1);
        node(&mut body, "abc", 1, 2);
        node(&mut body, "d", 1, 0);
        for cut in 0..body.len() {
            assert!(
                matches!(nodict(&body[..cut]), Err(TextError::Truncated { .. })),
                "cut {cut}"
            );
        }
        // A child count far beyond the body costs nothing up front.
        let mut body = Vec::new();
        node(&mut body, "", 0, u64::MAX);
        node(&mut body, "a", 1, 0);
        assert!(matches!(nodict(&body), Err(TextError::Truncated { .. })));
    }

    /// Encodes stacks (frames without `;`) as a transport trie with real prefix compression:
    /// a radix tree over the keys' bytes, root first, children depth first.
    pub(crate) fn encode_trie(stacks: &BTreeMap<Vec<u8>, u64>) -> Vec<u8> {
        fn encode(entries: &[(&[u8], u64)], out: &mut Vec<u8>) {
            // `entries` are sorted, non-empty and distinct; group them by first byte.
            let mut groups: Vec<&[(&[u8], u64)]> = Vec::new();
            let mut start = 0;
            for i in 1..=entries.len() {
                if i == entries.len() || entries[i].0[0] != entries[start].0[0] {
                    groups.push(&entries[start..i]);
                    start = i;
                }
            }
            put_uvarint(out, groups.len() as u64);
            for group in groups {
                let first = group[0].0;
                let common = group.iter().fold(first.len(), |len, (key, _)| {
                    first[..len]
                        .iter()
                        .zip(key.iter())
                        .take_while(|(a, b)| a == b)
                        .count()
                });
                let value: u64 = group
                    .iter()
                    .filter(|(key, _)| key.len() == common)
                    .map(|(_, v)| v)
                    .sum();
                let rest: Vec<(&[u8], u64)> = group
                    .iter()
                    .filter(|(key, _)| key.len() > common)
                    .map(|(key, v)| (&key[common..], *v))
                    .collect();
                put_uvarint(out, common as u64);
                out.extend_from_slice(&first[..common]);
                put_uvarint(out, value);
                if rest.is_empty() {
                    put_uvarint(out, 0);
                } else {
                    encode(&rest, out);
                }
            }
        }
        let mut out = Vec::new();
        let root_value = stacks.get(&Vec::new()).copied().unwrap_or(0);
        let entries: Vec<(&[u8], u64)> = stacks
            .iter()
            .filter(|(key, _)| !key.is_empty())
            .map(|(key, v)| (key.as_slice(), *v))
            .collect();
        put_uvarint(&mut out, 0);
        put_uvarint(&mut out, root_value);
        if entries.is_empty() {
            put_uvarint(&mut out, 0);
        } else {
            encode(&entries, &mut out);
        }
        out
    }

    /// Encodes stacks as a "NoDict" tree: an unnamed root, one node per frame.
    pub(crate) fn encode_tree(stacks: &BTreeMap<Vec<Vec<u8>>, u64>) -> Vec<u8> {
        #[derive(Default)]
        struct Node {
            value: u64,
            children: BTreeMap<Vec<u8>, Node>,
        }
        fn encode(name: &[u8], node: &Node, out: &mut Vec<u8>) {
            put_uvarint(out, name.len() as u64);
            out.extend_from_slice(name);
            put_uvarint(out, node.value);
            put_uvarint(out, node.children.len() as u64);
            for (name, child) in &node.children {
                encode(name, child, out);
            }
        }
        let mut root = Node::default();
        for (frames, value) in stacks {
            let mut node = &mut root;
            for frame in frames {
                node = node.children.entry(frame.clone()).or_default();
            }
            node.value += value;
        }
        let mut out = Vec::new();
        encode(b"", &root, &mut out);
        out
    }

    #[test]
    fn encoders_round_trip() {
        let mut keys = BTreeMap::new();
        for (key, value) in [("a;b;c", 1), ("a;b", 2), ("a;bc", 3), ("b", 4), ("", 5)] {
            keys.insert(key.as_bytes().to_vec(), value);
        }
        assert_eq!(
            trie(&encode_trie(&keys)).expect("valid"),
            " 5\na;b 2\na;b;c 1\na;bc 3\nb 4\n"
        );
        let mut stacks = BTreeMap::new();
        stacks.insert(vec![b"a".to_vec(), b"b".to_vec()], 2);
        stacks.insert(vec![b"a".to_vec()], 1);
        stacks.insert(vec![b"c".to_vec()], 0);
        assert_eq!(
            nodict(&encode_tree(&stacks)).expect("valid"),
            "a 1\na;b 2\n"
        );
    }
}
