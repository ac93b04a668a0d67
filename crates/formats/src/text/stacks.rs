//! The stack tree every text format is read into, and its conversion to pprof.
//!
//! It merges stacks as Pyroscope's legacy tree (`pkg/og/storage/tree`) does: a node per
//! (parent, frame name), values added with 64-bit wraparound, a key `a;b;c` split at every `;`
//! (a trailing `;` adds no empty frame, a leading or doubled one does). Only nodes whose value
//! is not zero become samples, so adding zero changes nothing and is skipped.
//!
//! [`KeyCursor`] follows a key that grows and shrinks at its end (the trie and tree formats
//! walk their stacks depth first), so each stack costs only its new bytes instead of its whole
//! length. The tree counts what it holds against [`TextLimits`].

use super::{TextError, TextLimits};
use crate::pprof::proto::{Function, Line, Location, Profile, Sample, ValueType};
use hashbrown::HashTable;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher;

/// The root: the empty stack.
pub(crate) const ROOT: u32 = 0;

#[derive(Debug, Clone, Copy)]
struct Node {
    parent: u32,
    name: u32,
    depth: u32,
    value: i64,
}

/// Distinct frame names, stored once.
#[derive(Debug, Default)]
struct Names {
    bytes: Vec<u8>,
    spans: Vec<(usize, usize)>,
    index: HashTable<u32>,
}

impl Names {
    fn get(&self, id: u32) -> &[u8] {
        let (start, end) = self.spans.get(id as usize).copied().unwrap_or_default();
        self.bytes.get(start..end).unwrap_or_default()
    }

    fn intern(&mut self, name: &[u8]) -> Result<u32, TextError> {
        let hash = FxBuildHasher.hash_one(name);
        let Names {
            bytes,
            spans,
            index,
        } = self;
        let lookup = |id: &u32| -> &[u8] {
            let (start, end) = spans.get(*id as usize).copied().unwrap_or_default();
            bytes.get(start..end).unwrap_or_default()
        };
        if let Some(&id) = index.find(hash, |id| lookup(id) == name) {
            return Ok(id);
        }
        let id = u32::try_from(spans.len()).map_err(|_| TextError::TooManyNodes {
            limit: u32::MAX as usize,
        })?;
        let start = bytes.len();
        bytes.extend_from_slice(name);
        spans.push((start, bytes.len()));
        index.insert_unique(hash, id, |id| {
            let (start, end) = spans.get(*id as usize).copied().unwrap_or_default();
            FxBuildHasher.hash_one(bytes.get(start..end).unwrap_or_default())
        });
        Ok(id)
    }
}

/// The merged stacks of one profile.
#[derive(Debug)]
pub(crate) struct StackTree {
    names: Names,
    nodes: Vec<Node>,
    children: FxHashMap<(u32, u32), u32>,
    limits: TextLimits,
    /// Sum of the depths of the nodes whose value is not zero.
    sample_frames: usize,
    /// Frame-name bytes still allowed to be looked up through [`StackTree::child`], once
    /// [`StackTree::meter_expansion`] has been called.
    expansion_left: Option<usize>,
}

/// The sample type, period and time of the pprof a tree becomes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PprofMeta<'a> {
    pub sample_type: &'a str,
    pub sample_unit: &'a str,
    /// `(period, period type, period unit)`.
    pub period: Option<(i64, &'a str, &'a str)>,
    pub time_nanos: i64,
}

impl StackTree {
    pub(crate) fn new(limits: TextLimits) -> Self {
        StackTree {
            names: Names::default(),
            nodes: vec![Node {
                parent: ROOT,
                name: u32::MAX,
                depth: 0,
                value: 0,
            }],
            children: FxHashMap::default(),
            limits,
            sample_frames: 0,
            expansion_left: None,
        }
    }

    /// The limits left for another tree read from the same body.
    pub(crate) fn remaining_limits(&self) -> TextLimits {
        TextLimits {
            max_nodes: self.limits.max_nodes.saturating_sub(self.nodes.len() - 1),
            max_sample_frames: self
                .limits
                .max_sample_frames
                .saturating_sub(self.sample_frames),
            max_expansion_bytes: self
                .expansion_left
                .unwrap_or(self.limits.max_expansion_bytes),
        }
    }

    /// Counts the name bytes that [`StackTree::child`] looks up from now on against
    /// `max_expansion_bytes`: for formats whose body is smaller than the stacks it stands for.
    pub(crate) fn meter_expansion(&mut self) {
        self.expansion_left = Some(self.limits.max_expansion_bytes);
    }

    /// The id of a frame name (for formats that name frames by index, like speedscope).
    pub(crate) fn intern(&mut self, name: &[u8]) -> Result<u32, TextError> {
        self.names.intern(name)
    }

    /// The child of `parent` named `name`, created when missing.
    pub(crate) fn child(&mut self, parent: u32, name: &[u8]) -> Result<u32, TextError> {
        if let Some(left) = &mut self.expansion_left {
            let cost = name.len() + 1;
            *left = left.checked_sub(cost).ok_or(TextError::ExpansionLimit {
                limit: self.limits.max_expansion_bytes,
            })?;
        }
        let name = self.names.intern(name)?;
        self.child_named(parent, name)
    }

    /// The child of `parent` whose name has id `name`, created when missing.
    pub(crate) fn child_named(&mut self, parent: u32, name: u32) -> Result<u32, TextError> {
        if let Some(&id) = self.children.get(&(parent, name)) {
            return Ok(id);
        }
        let too_many = TextError::TooManyNodes {
            limit: self.limits.max_nodes,
        };
        if self.nodes.len() > self.limits.max_nodes {
            return Err(too_many);
        }
        let id = u32::try_from(self.nodes.len()).map_err(|_| too_many)?;
        let depth = self
            .nodes
            .get(parent as usize)
            .map_or(0, |p| p.depth.saturating_add(1));
        self.nodes.push(Node {
            parent,
            name,
            depth,
            value: 0,
        });
        self.children.insert((parent, name), id);
        Ok(id)
    }

    /// Adds `value` to the stack ending at `node`.
    pub(crate) fn add(&mut self, node: u32, value: i64) -> Result<(), TextError> {
        let Some(slot) = self.nodes.get_mut(node as usize) else {
            debug_assert!(false, "node {node} does not exist");
            return Ok(());
        };
        let before = slot.value;
        slot.value = before.wrapping_add(value);
        let depth = slot.depth as usize;
        match (before == 0, slot.value == 0) {
            (true, false) => {
                self.sample_frames = self.sample_frames.saturating_add(depth);
                if self.sample_frames > self.limits.max_sample_frames {
                    return Err(TextError::TooManySampleFrames {
                        limit: self.limits.max_sample_frames,
                    });
                }
            }
            (false, true) => self.sample_frames = self.sample_frames.saturating_sub(depth),
            _ => {}
        }
        Ok(())
    }

    /// Adds `value` to the stack `key`, split as Pyroscope's `Tree.Insert` splits it.
    pub(crate) fn insert_key(&mut self, key: &[u8], value: i64) -> Result<(), TextError> {
        if value == 0 {
            return Ok(());
        }
        let mut node = ROOT;
        let mut frames = key.split(|&b| b == b';').peekable();
        while let Some(frame) = frames.next() {
            if frame.is_empty() && frames.peek().is_none() {
                // `a;` is the stack `a`, and the empty key is the root.
                break;
            }
            node = self.child(node, frame)?;
        }
        self.add(node, value)
    }

    /// Multiplies every value (Pyroscope's `Tree.Scale`, with wraparound).
    pub(crate) fn scale(&mut self, factor: i64) {
        for node in &mut self.nodes {
            node.value = node.value.wrapping_mul(factor);
        }
    }

    /// The pprof: one sample per node with a value (leaf first), one function and location per
    /// distinct frame name, strings deduplicated with `""` first.
    pub(crate) fn to_pprof(&self, meta: &PprofMeta<'_>) -> Result<Profile, TextError> {
        let mut strings = StringTable::default();
        let mut profile = Profile {
            time_nanos: meta.time_nanos,
            ..Profile::default()
        };
        profile.sample_type.push(ValueType {
            r#type: strings.index(meta.sample_type),
            unit: strings.index(meta.sample_unit),
        });
        if let Some((period, period_type, period_unit)) = meta.period {
            profile.period = period;
            profile.period_type = Some(ValueType {
                r#type: strings.index(period_type),
                unit: strings.index(period_unit),
            });
        }
        // Location (and function) id of each name id, 0 while unused.
        let mut location_of = vec![0u64; self.names.spans.len()];
        for node in &self.nodes {
            if node.value == 0 {
                continue;
            }
            let mut location_id = Vec::with_capacity(node.depth as usize);
            let mut current = *node;
            while current.depth > 0 {
                let Some(slot) = location_of.get_mut(current.name as usize) else {
                    break;
                };
                if *slot == 0 {
                    let name = self.names.get(current.name);
                    let name = std::str::from_utf8(name).map_err(|_| TextError::InvalidUtf8 {
                        name: lossy_prefix(name),
                    })?;
                    let id = profile.function.len() as u64 + 1;
                    let name = strings.index(name);
                    profile.function.push(Function {
                        id,
                        name,
                        system_name: name,
                        ..Function::default()
                    });
                    profile.location.push(Location {
                        id,
                        line: vec![Line {
                            function_id: id,
                            ..Line::default()
                        }],
                        ..Location::default()
                    });
                    *slot = id;
                }
                location_id.push(*slot);
                let Some(parent) = self.nodes.get(current.parent as usize) else {
                    break;
                };
                current = *parent;
            }
            profile.sample.push(Sample {
                location_id,
                value: vec![node.value],
                label: Vec::new(),
            });
        }
        profile.string_table = strings.strings;
        Ok(profile)
    }

    /// Every stack with a value as `a;b;c value` lines in the order of their frames (the
    /// `String()` of Pyroscope's tree), for tests.
    #[cfg(test)]
    pub(crate) fn collapsed(&self) -> String {
        let mut lines: Vec<(Vec<&[u8]>, i64)> = Vec::new();
        for node in &self.nodes {
            if node.value == 0 {
                continue;
            }
            let mut frames = Vec::new();
            let mut current = *node;
            while current.depth > 0 {
                frames.push(self.names.get(current.name));
                current = self.nodes[current.parent as usize];
            }
            frames.reverse();
            lines.push((frames, node.value));
        }
        lines.sort();
        let mut out = String::new();
        for (frames, value) in lines {
            let stack: Vec<String> = frames
                .iter()
                .map(|f| String::from_utf8_lossy(f).into_owned())
                .collect();
            out.push_str(&format!("{} {value}\n", stack.join(";")));
        }
        out
    }
}

/// At most 100 characters of a name that is not UTF-8, for the error message.
fn lossy_prefix(name: &[u8]) -> String {
    String::from_utf8_lossy(name).chars().take(100).collect()
}

#[derive(Debug)]
struct StringTable<'a> {
    strings: Vec<String>,
    index: FxHashMap<&'a str, i64>,
}

impl Default for StringTable<'_> {
    fn default() -> Self {
        let mut index = FxHashMap::default();
        index.insert("", 0);
        StringTable {
            strings: vec![String::new()],
            index,
        }
    }
}

impl<'a> StringTable<'a> {
    fn index(&mut self, s: &'a str) -> i64 {
        if let Some(&at) = self.index.get(s) {
            return at;
        }
        let at = self.strings.len() as i64;
        self.strings.push(s.to_owned());
        self.index.insert(s, at);
        at
    }
}

/// A mark to go back to: the key's length and the cursor's state at that length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    len: usize,
    node: u32,
    pending: usize,
}

/// A key built by appending and truncating bytes, kept split into tree nodes as it grows: the
/// frames ended by a `;` are already nodes, the last frame waits for its end.
#[derive(Debug)]
pub(crate) struct KeyCursor {
    buf: Vec<u8>,
    /// Bytes before `start` are not part of the key (the tree format drops two).
    start: usize,
    /// The node of the frames before `pending`.
    node: u32,
    /// Where the unfinished last frame starts.
    pending: usize,
}

impl KeyCursor {
    pub(crate) fn new(start: usize) -> Self {
        KeyCursor {
            buf: Vec::new(),
            start,
            node: ROOT,
            pending: start,
        }
    }

    /// The length of the bytes appended so far (key and skipped prefix).
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn mark(&self) -> Mark {
        Mark {
            len: self.buf.len(),
            node: self.node,
            pending: self.pending,
        }
    }

    pub(crate) fn reset(&mut self, mark: Mark) {
        debug_assert!(mark.len <= self.buf.len());
        self.buf.truncate(mark.len);
        self.node = mark.node;
        self.pending = mark.pending;
    }

    /// Appends `bytes`, turning each frame they end into a node of `tree`.
    pub(crate) fn push(&mut self, tree: &mut StackTree, bytes: &[u8]) -> Result<(), TextError> {
        let scan_from = self.buf.len().max(self.start);
        self.buf.extend_from_slice(bytes);
        let KeyCursor {
            buf, node, pending, ..
        } = self;
        let Some(new) = buf.get(scan_from..) else {
            return Ok(());
        };
        for (offset, _) in new.iter().enumerate().filter(|(_, b)| **b == b';') {
            let end = scan_from + offset;
            let frame = buf.get(*pending..end).unwrap_or_default();
            *node = tree.child(*node, frame)?;
            *pending = end + 1;
        }
        Ok(())
    }

    /// The node of the whole key (split as [`StackTree::insert_key`] splits it).
    pub(crate) fn key_node(&self, tree: &mut StackTree) -> Result<u32, TextError> {
        match self.buf.get(self.pending..) {
            Some(last) if !last.is_empty() => tree.child(self.node, last),
            _ => Ok(self.node),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_as_pyroscope_splits_them() {
        let mut tree = StackTree::new(TextLimits::default());
        for (key, value) in [
            ("a;b", 1),
            ("a;b;", 2),
            ("a;;b", 4),
            (";a", 8),
            ("", 16),
            (";", 32),
        ] {
            tree.insert_key(key.as_bytes(), value).expect("insert");
        }
        assert_eq!(tree.collapsed(), " 16\n 32\n;a 8\na;;b 4\na;b 3\n");
    }

    #[test]
    fn cursor_matches_insert_key() {
        let mut by_key = StackTree::new(TextLimits::default());
        let mut by_cursor = StackTree::new(TextLimits::default());
        let mut cursor = KeyCursor::new(0);
        let chunks: [&[u8]; 5] = [b"a;b", b"c;", b";d", b"", b"e"];
        for chunk in chunks {
            cursor.push(&mut by_cursor, chunk).expect("push");
            let node = cursor.key_node(&mut by_cursor).expect("node");
            by_cursor.add(node, 1).expect("add");
            let key = cursor.buf.clone();
            by_key.insert_key(&key, 1).expect("insert");
        }
        let mark = cursor.mark();
        cursor.push(&mut by_cursor, b";x;y").expect("push");
        cursor.reset(mark);
        cursor.push(&mut by_cursor, b"z").expect("push");
        let node = cursor.key_node(&mut by_cursor).expect("node");
        by_cursor.add(node, 1).expect("add");
        by_key.insert_key(b"a;bc;;dez", 1).expect("insert");
        assert_eq!(by_cursor.collapsed(), by_key.collapsed());
    }

    #[test]
    fn limits_are_enforced() {
        let limits = TextLimits {
            max_nodes: 2,
            ..TextLimits::default()
        };
        let mut tree = StackTree::new(limits);
        tree.insert_key(b"a;b", 1).expect("two nodes");
        assert!(matches!(
            tree.insert_key(b"a;c", 1),
            Err(TextError::TooManyNodes { limit: 2 })
        ));

        let limits = TextLimits {
            max_sample_frames: 3,
            ..TextLimits::default()
        };
        let mut tree = StackTree::new(limits);
        tree.insert_key(b"a;b", 1).expect("2 frames");
        tree.insert_key(b"a;b", -1).expect("back to 0 frames");
        tree.insert_key(b"a;b;c", 1).expect("3 frames");
        assert!(matches!(
            tree.insert_key(b"a", 1),
            Err(TextError::TooManySampleFrames { limit: 3 })
        ));

        let limits = TextLimits {
            max_expansion_bytes: 5,
            ..TextLimits::default()
        };
        let mut tree = StackTree::new(limits);
        tree.meter_expansion();
        tree.insert_key(b"ab;c", 1).expect("3 + 2 bytes");
        assert!(matches!(
            tree.insert_key(b"c", 1),
            Err(TextError::ExpansionLimit { limit: 5 })
        ));
    }

    #[test]
    fn pprof_has_one_location_per_name() {
        let mut tree = StackTree::new(TextLimits::default());
        tree.insert_key(b"a;b;a", 5).expect("insert");
        tree.insert_key(b"b", 7).expect("insert");
        tree.scale(10);
        let profile = tree
            .to_pprof(&PprofMeta {
                sample_type: "cpu",
                sample_unit: "nanoseconds",
                period: Some((10, "cpu", "nanoseconds")),
                time_nanos: 42,
            })
            .expect("pprof");
        assert_eq!(profile.string_table, ["", "cpu", "nanoseconds", "a", "b"]);
        assert_eq!(profile.function.len(), 2);
        assert_eq!(profile.location.len(), 2);
        assert_eq!(profile.sample.len(), 2);
        assert_eq!(profile.sample[0].location_id, [1, 2, 1]);
        assert_eq!(profile.sample[0].value, [50]);
        assert_eq!(profile.sample[1].location_id, [2]);
        assert_eq!(profile.sample[1].value, [70]);
        assert_eq!(profile.period, 10);
        assert_eq!(profile.time_nanos, 42);
        assert!(profile.mapping.is_empty());
    }

    #[test]
    fn invalid_utf8_is_refused_only_when_it_is_a_sample_frame() {
        let mut tree = StackTree::new(TextLimits::default());
        tree.insert_key(b"a;\xff", 0).expect("zero adds nothing");
        tree.insert_key(b"a", 1).expect("insert");
        let meta = PprofMeta {
            sample_type: "samples",
            sample_unit: "count",
            period: None,
            time_nanos: 0,
        };
        tree.to_pprof(&meta).expect("no invalid name in a sample");
        tree.insert_key(b"a;\xff", 1).expect("insert");
        assert!(matches!(
            tree.to_pprof(&meta),
            Err(TextError::InvalidUtf8 { .. })
        ));
    }
}
