//! A dataset's symbols: strings, mappings, functions, locations, and stacks as a trie.
//!
//! Stack node 0 is the root; every other node is (parent node, location). A stack id is the
//! id of its leaf node, so a stack is stored once however many profiles hold it, and stacks
//! share their root-side prefixes.

use crate::BlockError;
use formats::pprof::{IdIndex, ProfileView, unnamed_frame};
use hashbrown::HashTable;
use model::{Interner, NodeId, Tree};
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher;

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SymbolsProto {
    #[prost(string, repeated, tag = "1")]
    pub strings: Vec<String>,
    #[prost(message, repeated, tag = "2")]
    pub mappings: Vec<MappingProto>,
    #[prost(message, repeated, tag = "3")]
    pub functions: Vec<FunctionProto>,
    #[prost(message, repeated, tag = "4")]
    pub locations: Vec<LocationProto>,
    /// Parent of stack node i + 1 (node 0, the root, is implicit).
    #[prost(uint32, repeated, tag = "5")]
    pub stack_parents: Vec<u32>,
    /// Location of stack node i + 1.
    #[prost(uint32, repeated, tag = "6")]
    pub stack_locations: Vec<u32>,
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub(crate) struct MappingProto {
    #[prost(uint64, tag = "1")]
    pub memory_start: u64,
    #[prost(uint64, tag = "2")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "3")]
    pub file_offset: u64,
    #[prost(uint32, tag = "4")]
    pub filename: u32,
    #[prost(uint32, tag = "5")]
    pub build_id: u32,
    #[prost(bool, tag = "6")]
    pub has_functions: bool,
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub(crate) struct FunctionProto {
    #[prost(uint32, tag = "1")]
    pub name: u32,
    #[prost(uint32, tag = "2")]
    pub system_name: u32,
    #[prost(uint32, tag = "3")]
    pub filename: u32,
    #[prost(int64, tag = "4")]
    pub start_line: i64,
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub(crate) struct LocationProto {
    /// Mapping index + 1; 0 for none.
    #[prost(uint32, tag = "1")]
    pub mapping: u32,
    #[prost(uint64, tag = "2")]
    pub address: u64,
    /// Function index of each line, innermost first (as pprof orders lines).
    #[prost(uint32, repeated, tag = "3")]
    pub line_functions: Vec<u32>,
    #[prost(int64, repeated, tag = "4")]
    pub line_numbers: Vec<i64>,
}

/// Symbols being collected for one dataset.
#[derive(Debug, Default)]
pub(crate) struct SymbolsBuilder {
    strings: Interner,
    mappings: Vec<MappingProto>,
    mapping_ids: FxHashMap<MappingProto, u32>,
    functions: Vec<FunctionProto>,
    function_ids: FxHashMap<FunctionProto, u32>,
    locations: Vec<LocationProto>,
    /// Location ids by the hash of their content (keys compared in `locations`).
    location_ids: HashTable<u32>,
    /// A reused key, so that known locations are found without allocating.
    scratch: LocationProto,
    stack_parents: Vec<u32>,
    stack_locations: Vec<u32>,
    /// Stack nodes by the hash of their (parent, location), which `stack_parents` and
    /// `stack_locations` hold: 4 bytes a node here instead of a 12-byte key and value (a
    /// compaction of a million distinct stacks holds some twenty million nodes).
    stack_nodes: HashTable<u32>,
    /// Leaf nodes of whole stacks seen by [`SymbolsBuilder::stack_id`], by the hash of their
    /// locations: a stack seen before (the same service sends the same hot stacks in every
    /// profile) is found with one lookup instead of one per frame.
    whole_stacks: HashTable<(u64, u32)>,
}

/// A profile's string table as dataset string ids, each looked up once.
struct ProfileStrings<'p, 'a> {
    profile: &'p ProfileView<'a>,
    ids: Vec<Option<u32>>,
}

impl<'p, 'a> ProfileStrings<'p, 'a> {
    fn new(profile: &'p ProfileView<'a>) -> Self {
        ProfileStrings {
            profile,
            ids: vec![None; profile.strings.len()],
        }
    }

    /// The dataset id of the profile's string `index` ("" when out of range).
    fn intern(&mut self, interner: &mut Interner, index: i64) -> u32 {
        let Some(slot) = usize::try_from(index)
            .ok()
            .and_then(|i| self.ids.get_mut(i))
        else {
            return interner.intern(self.profile.string(index));
        };
        *slot.get_or_insert_with(|| interner.intern(self.profile.string(index)))
    }
}

impl SymbolsBuilder {
    pub fn new() -> Self {
        let mut builder = SymbolsBuilder::default();
        builder.strings.intern("");
        builder
    }

    /// Interns the profile's locations; returns the dataset location index of each of the
    /// profile's locations (by position), `None` where a reference is broken.
    pub fn add_locations(&mut self, profile: &ProfileView<'_>) -> Vec<Option<u32>> {
        let functions = IdIndex::new(profile.functions.iter().map(|f| f.id));
        let mappings = IdIndex::new(profile.mappings.iter().map(|m| m.id));
        let mut function_map: Vec<Option<u32>> = vec![None; profile.functions.len()];
        let mut mapping_map: Vec<Option<u32>> = vec![None; profile.mappings.len()];
        // Each of the profile's strings interned once (a function's name and system name are
        // often one string, and many functions share a file name).
        let mut strings = ProfileStrings::new(profile);
        let mut out = Vec::with_capacity(profile.locations.len());
        for location in &profile.locations {
            let mapping = match mappings.get(location.mapping_id) {
                Some(position) => {
                    let id = match mapping_map[position] {
                        Some(id) => id,
                        None => {
                            let m = &profile.mappings[position];
                            let key = MappingProto {
                                memory_start: m.memory_start,
                                memory_limit: m.memory_limit,
                                file_offset: m.file_offset,
                                filename: strings.intern(&mut self.strings, m.filename),
                                build_id: strings.intern(&mut self.strings, m.build_id),
                                has_functions: m.has_functions,
                            };
                            let id = intern(&mut self.mappings, &mut self.mapping_ids, key);
                            mapping_map[position] = Some(id);
                            id
                        }
                    };
                    id + 1
                }
                None => 0,
            };
            let mut key = std::mem::take(&mut self.scratch);
            key.mapping = mapping;
            key.address = location.address;
            key.line_functions.clear();
            key.line_numbers.clear();
            let mut broken = false;
            for line in profile.location_lines(location) {
                let Some(position) = functions.get(line.function_id) else {
                    broken = true;
                    break;
                };
                let id = match function_map[position] {
                    Some(id) => id,
                    None => {
                        let f = &profile.functions[position];
                        let function = FunctionProto {
                            name: strings.intern(&mut self.strings, f.name),
                            system_name: strings.intern(&mut self.strings, f.system_name),
                            filename: strings.intern(&mut self.strings, f.filename),
                            start_line: f.start_line,
                        };
                        let id = intern(&mut self.functions, &mut self.function_ids, function);
                        function_map[position] = Some(id);
                        id
                    }
                };
                key.line_functions.push(id);
                key.line_numbers.push(line.line);
            }
            out.push((!broken).then(|| self.intern_location(&key)));
            self.scratch = key;
        }
        out
    }

    /// The id of a location, adding a copy of `key` if it is new.
    fn intern_location(&mut self, key: &LocationProto) -> u32 {
        let hash = FxBuildHasher.hash_one(key);
        let locations = &self.locations;
        if let Some(&id) = self
            .location_ids
            .find(hash, |&id| locations[id as usize] == *key)
        {
            return id;
        }
        let id = self.locations.len() as u32;
        self.locations.push(key.clone());
        let locations = &self.locations;
        self.location_ids.insert_unique(hash, id, |&other| {
            FxBuildHasher.hash_one(&locations[other as usize])
        });
        id
    }

    /// The stack id of dataset locations given root first. Empty stacks have no id.
    pub fn stack_id(&mut self, locations_root_first: &[u32]) -> Option<u32> {
        if locations_root_first.is_empty() {
            return None;
        }
        let hash = FxBuildHasher.hash_one(locations_root_first);
        let (parents, locations) = (&self.stack_parents, &self.stack_locations);
        if let Some(&(_, leaf)) = self.whole_stacks.find(hash, |&(h, leaf)| {
            h == hash && is_stack(parents, locations, leaf, locations_root_first)
        }) {
            return Some(leaf);
        }
        let mut node = 0u32;
        for &location in locations_root_first {
            node = self.stack_child(node, location);
        }
        self.whole_stacks
            .insert_unique(hash, (hash, node), |&(h, _)| h);
        Some(node)
    }

    /// The child of stack node `parent` at dataset location `location`, created if missing.
    fn stack_child(&mut self, parent: u32, location: u32) -> u32 {
        let hash = FxBuildHasher.hash_one((parent, location));
        let (parents, locations) = (&self.stack_parents, &self.stack_locations);
        let node_of = |&node: &u32| {
            let index = node as usize - 1;
            (parents[index], locations[index])
        };
        if let Some(&node) = self
            .stack_nodes
            .find(hash, |node| node_of(node) == (parent, location))
        {
            return node;
        }
        self.stack_parents.push(parent);
        self.stack_locations.push(location);
        let node = self.stack_parents.len() as u32;
        let (parents, locations) = (&self.stack_parents, &self.stack_locations);
        self.stack_nodes.insert_unique(hash, node, |&node| {
            let index = node as usize - 1;
            FxBuildHasher.hash_one((parents[index], locations[index]))
        });
        node
    }

    /// Re-interns another dataset's symbols; returns, for each of its stack nodes, the node
    /// here (index 0, the root, maps to the root).
    pub fn import(&mut self, source: &Symbols) -> Vec<u32> {
        let source = &source.proto;
        let string_map: Vec<u32> = source
            .strings
            .iter()
            .map(|s| self.strings.intern(s))
            .collect();
        let string = |i: u32| string_map.get(i as usize).copied().unwrap_or(0);
        let mapping_map: Vec<u32> = source
            .mappings
            .iter()
            .map(|m| {
                let key = MappingProto {
                    filename: string(m.filename),
                    build_id: string(m.build_id),
                    ..m.clone()
                };
                intern(&mut self.mappings, &mut self.mapping_ids, key)
            })
            .collect();
        let function_map: Vec<u32> = source
            .functions
            .iter()
            .map(|f| {
                let key = FunctionProto {
                    name: string(f.name),
                    system_name: string(f.system_name),
                    filename: string(f.filename),
                    start_line: f.start_line,
                };
                intern(&mut self.functions, &mut self.function_ids, key)
            })
            .collect();
        let location_map: Vec<u32> = source
            .locations
            .iter()
            .map(|l| {
                let key = LocationProto {
                    mapping: match l.mapping {
                        0 => 0,
                        m => mapping_map.get(m as usize - 1).map_or(0, |&id| id + 1),
                    },
                    address: l.address,
                    line_functions: l
                        .line_functions
                        .iter()
                        .map(|&f| function_map.get(f as usize).copied().unwrap_or(0))
                        .collect(),
                    line_numbers: l.line_numbers.clone(),
                };
                self.intern_location(&key)
            })
            .collect();
        // Parents precede children, so one pass in id order maps every node.
        let mut stacks = Vec::with_capacity(source.stack_parents.len() + 1);
        stacks.push(0u32);
        for (&parent, &location) in source.stack_parents.iter().zip(&source.stack_locations) {
            let parent = stacks.get(parent as usize).copied().unwrap_or(0);
            let location = location_map.get(location as usize).copied().unwrap_or(0);
            stacks.push(self.stack_child(parent, location));
        }
        stacks
    }

    pub fn finish(self) -> SymbolsProto {
        SymbolsProto {
            strings: self.strings.into_strings(),
            mappings: self.mappings,
            functions: self.functions,
            locations: self.locations,
            stack_parents: self.stack_parents,
            stack_locations: self.stack_locations,
        }
    }
}

/// Whether trie node `leaf` is the stack `root_first` (walked from the leaf to the root).
fn is_stack(parents: &[u32], locations: &[u32], leaf: u32, root_first: &[u32]) -> bool {
    let mut node = leaf;
    for &location in root_first.iter().rev() {
        let Some(index) = (node as usize).checked_sub(1) else {
            return false;
        };
        if locations.get(index) != Some(&location) {
            return false;
        }
        node = parents.get(index).copied().unwrap_or(0);
    }
    node == 0
}

fn intern<K: Clone + Eq + std::hash::Hash>(
    items: &mut Vec<K>,
    ids: &mut FxHashMap<K, u32>,
    key: K,
) -> u32 {
    if let Some(&id) = ids.get(&key) {
        return id;
    }
    let id = items.len() as u32;
    items.push(key.clone());
    ids.insert(key, id);
    id
}

/// Decoded symbols of one dataset, checked so that resolving stacks cannot go out of range.
#[derive(Debug, Clone)]
pub struct Symbols {
    proto: SymbolsProto,
}

impl Symbols {
    /// Decodes a symbols section as fetched (zstd-compressed); `dataset` names it in errors.
    pub fn decode_section(bytes: &[u8], dataset: usize) -> Result<Symbols, BlockError> {
        Self::decode(
            &crate::reader::decompress(bytes, dataset, "symbols")?,
            dataset,
        )
    }

    pub(crate) fn decode(bytes: &[u8], dataset: usize) -> Result<Symbols, BlockError> {
        use prost::Message;
        let proto = SymbolsProto::decode(bytes)?;
        let corrupt = |reason: String| BlockError::Corrupt {
            dataset,
            section: "symbols",
            reason,
        };
        let strings = proto.strings.len() as u32;
        let string_ok = |s: u32| s < strings;
        for m in &proto.mappings {
            if !string_ok(m.filename) || !string_ok(m.build_id) {
                return Err(corrupt("mapping string out of range".to_owned()));
            }
        }
        for f in &proto.functions {
            if !string_ok(f.name) || !string_ok(f.system_name) || !string_ok(f.filename) {
                return Err(corrupt("function string out of range".to_owned()));
            }
        }
        for l in &proto.locations {
            if l.mapping as usize > proto.mappings.len()
                || l.line_functions
                    .iter()
                    .any(|&f| f as usize >= proto.functions.len())
            {
                return Err(corrupt("location reference out of range".to_owned()));
            }
        }
        if proto.stack_parents.len() != proto.stack_locations.len() {
            return Err(corrupt("stack arrays differ in length".to_owned()));
        }
        for (i, (&parent, &location)) in proto
            .stack_parents
            .iter()
            .zip(&proto.stack_locations)
            .enumerate()
        {
            // Parents come before children: node i + 1 has a parent <= i.
            if parent as usize > i || location as usize >= proto.locations.len() {
                return Err(corrupt(format!("stack node {} is malformed", i + 1)));
            }
        }
        Ok(Symbols { proto })
    }

    /// About how many bytes it holds in memory (for caches bounded in bytes).
    pub fn memory_size(&self) -> usize {
        let p = &self.proto;
        p.strings.iter().map(|s| s.len() + 24).sum::<usize>()
            + p.mappings.len() * size_of::<MappingProto>()
            + p.functions.len() * size_of::<FunctionProto>()
            + p.locations
                .iter()
                .map(|l| size_of::<LocationProto>() + l.line_functions.len() * 12)
                .sum::<usize>()
            + p.stack_parents.len() * 8
    }

    /// Number of stack nodes, root included.
    pub fn stack_nodes(&self) -> usize {
        self.proto.stack_parents.len() + 1
    }

    fn string(&self, index: u32) -> &str {
        self.proto
            .strings
            .get(index as usize)
            .map_or("", String::as_str)
    }

    /// Frame names of a location, outermost first (pprof's naming, as the foundation's).
    fn frames(&self, location: u32, out: &mut Vec<String>) {
        let Some(l) = self.proto.locations.get(location as usize) else {
            return;
        };
        let mapping_file = match l.mapping {
            0 => "",
            m => self
                .proto
                .mappings
                .get(m as usize - 1)
                .map_or("", |m| self.string(m.filename)),
        };
        if l.line_functions.is_empty() {
            out.push(unnamed_frame(mapping_file).into_owned());
        }
        for &function in l.line_functions.iter().rev() {
            let name = self
                .proto
                .functions
                .get(function as usize)
                .map_or("", |f| self.string(f.name));
            if name.is_empty() {
                out.push(unnamed_frame(mapping_file).into_owned());
            } else {
                out.push(name.to_owned());
            }
        }
    }

    /// A pprof holding these symbols and one sample per `(stack id, value)` (a single value
    /// column whose type is left empty for the caller to name).
    pub fn to_pprof(&self, samples: &[(u32, i64)]) -> formats::pprof::Profile {
        use formats::pprof::proto::{Function, Line, Location, Mapping, Sample, ValueType};
        let p = &self.proto;
        let mut location_ids = Vec::new();
        let samples = samples
            .iter()
            .filter(|&&(stack, _)| stack != 0 && (stack as usize) < self.stack_nodes())
            .map(|&(stack, value)| {
                location_ids.clear();
                let mut node = stack;
                while node != 0 {
                    location_ids.push(u64::from(p.stack_locations[node as usize - 1]) + 1);
                    node = p.stack_parents[node as usize - 1];
                }
                Sample {
                    location_id: location_ids.clone(),
                    value: vec![value],
                    label: Vec::new(),
                }
            })
            .collect();
        formats::pprof::Profile {
            sample_type: vec![ValueType::default()],
            sample: samples,
            mapping: p
                .mappings
                .iter()
                .enumerate()
                .map(|(i, m)| Mapping {
                    id: i as u64 + 1,
                    memory_start: m.memory_start,
                    memory_limit: m.memory_limit,
                    file_offset: m.file_offset,
                    filename: i64::from(m.filename),
                    build_id: i64::from(m.build_id),
                    has_functions: m.has_functions,
                    ..Default::default()
                })
                .collect(),
            location: p
                .locations
                .iter()
                .enumerate()
                .map(|(i, l)| Location {
                    id: i as u64 + 1,
                    mapping_id: u64::from(l.mapping),
                    address: l.address,
                    line: l
                        .line_functions
                        .iter()
                        .zip(&l.line_numbers)
                        .map(|(&f, &line)| Line {
                            function_id: u64::from(f) + 1,
                            line,
                            column: 0,
                        })
                        .collect(),
                    is_folded: false,
                })
                .collect(),
            function: p
                .functions
                .iter()
                .enumerate()
                .map(|(i, f)| Function {
                    id: i as u64 + 1,
                    name: i64::from(f.name),
                    system_name: i64::from(f.system_name),
                    filename: i64::from(f.filename),
                    start_line: f.start_line,
                })
                .collect(),
            string_table: p.strings.clone(),
            ..Default::default()
        }
    }

    /// For every stack node: whether its frames, root first, begin with `call_site` (the
    /// `StackTraceSelector` rule: a prefix match on function names).
    pub fn stacks_under(&self, call_site: &[String]) -> Vec<bool> {
        // Per node, how many call-site frames its path matched; `None`: diverged.
        let mut matched: Vec<Option<usize>> = Vec::with_capacity(self.stack_nodes());
        matched.push(Some(0));
        let mut frames = Vec::new();
        for (&parent, &location) in self
            .proto
            .stack_parents
            .iter()
            .zip(&self.proto.stack_locations)
        {
            let state = matched
                .get(parent as usize)
                .copied()
                .flatten()
                .and_then(|done| {
                    if done >= call_site.len() {
                        return Some(done);
                    }
                    frames.clear();
                    self.frames(location, &mut frames);
                    let mut done = done;
                    for frame in &frames {
                        if done >= call_site.len() {
                            break;
                        }
                        if *frame != call_site[done] {
                            return None;
                        }
                        done += 1;
                    }
                    Some(done)
                });
            matched.push(state);
        }
        matched
            .into_iter()
            .map(|m| m.is_some_and(|done| done >= call_site.len()))
            .collect()
    }

    /// Adds `(stack id, value)` pairs into a tree of function names.
    pub fn add_to_tree(&self, samples: &[(u32, i64)], tree: &mut Tree) {
        self.add_to_tree_bounded(samples, tree, usize::MAX);
    }

    /// [`Symbols::add_to_tree`], stopping (and returning `false`) as soon as the tree holds
    /// more than `max_nodes` nodes: a query's memory bound, checked while it grows.
    pub fn add_to_tree_bounded(
        &self,
        samples: &[(u32, i64)],
        tree: &mut Tree,
        max_nodes: usize,
    ) -> bool {
        // Stack node → tree node, filled root-first (parents have smaller ids).
        let mut tree_nodes: Vec<Option<NodeId>> = vec![None; self.stack_nodes()];
        tree_nodes[0] = Some(Tree::ROOT);
        let mut frames = Vec::new();
        let mut leaves = Vec::with_capacity(samples.len());
        for &(stack, value) in samples {
            let Some(node) = self.tree_node(stack, tree, &mut tree_nodes, &mut frames) else {
                continue;
            };
            if tree.node_count() > max_nodes {
                return false;
            }
            leaves.push((node, value));
        }
        tree.add_self_values(&leaves);
        true
    }

    fn tree_node(
        &self,
        stack: u32,
        tree: &mut Tree,
        tree_nodes: &mut [Option<NodeId>],
        frames: &mut Vec<String>,
    ) -> Option<NodeId> {
        if stack as usize >= tree_nodes.len() || stack == 0 {
            return None;
        }
        // Walk up to the nearest resolved ancestor, then resolve down.
        let mut path = Vec::new();
        let mut node = stack;
        while tree_nodes[node as usize].is_none() {
            path.push(node);
            node = self.proto.stack_parents[node as usize - 1];
        }
        let mut current = tree_nodes[node as usize]?;
        for &stack_node in path.iter().rev() {
            frames.clear();
            self.frames(self.proto.stack_locations[stack_node as usize - 1], frames);
            for frame in frames.iter() {
                let name = tree.intern(frame);
                current = tree.child(current, name);
            }
            tree_nodes[stack_node as usize] = Some(current);
        }
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_stacks_and_trie_walks_agree() {
        let mut builder = SymbolsBuilder::new();
        let abc = builder.stack_id(&[1, 2, 3]).expect("stack");
        // A prefix of a known stack: the trie already has it, the whole-stack table not yet.
        let ab = builder.stack_id(&[1, 2]).expect("prefix");
        assert_eq!(builder.stack_parents[abc as usize - 1], ab);
        assert_eq!(builder.stack_id(&[1, 2, 3]), Some(abc));
        assert_eq!(builder.stack_id(&[1, 2]), Some(ab));
        // Same leaf location under another parent, and a longer stack through a known one.
        let xbc = builder.stack_id(&[9, 2, 3]).expect("stack");
        assert_ne!(xbc, abc);
        let abcd = builder.stack_id(&[1, 2, 3, 4]).expect("stack");
        assert_eq!(builder.stack_parents[abcd as usize - 1], abc);
        assert_eq!(builder.stack_id(&[]), None);
        // Location 0 is a location like any other.
        let zero = builder.stack_id(&[0]).expect("stack");
        assert_eq!(
            builder
                .stack_id(&[0, 0])
                .map(|n| builder.stack_parents[n as usize - 1]),
            Some(zero)
        );
        assert_eq!(builder.stack_parents.len(), 9);
    }
}
