//! Pyroscope's ingest-time repairs of Go profiles: generic type parameters are dropped from
//! every string, and stacks that Go's runtime truncated (32 frames for heap profiles before
//! Go 1.23, 64 for CPU profiles) get their missing root frames back from longer stacks that
//! share frames with them.
//!
//! The behaviour follows the research notes (`docs/research/go_fixes.md`, §1, §2 and §6); it is written
//! from that description, not from Pyroscope's source.
//!
//! # Pipeline
//!
//! [`fix_go_profile`] is what ingest does to a profile whose language is `go` (on the owned
//! profile when type parameters need dropping; otherwise only step 3 applies, and ingest runs
//! it on the decoded view, extending stacks in its flat arrays):
//!
//! 1. [`drop_go_type_parameters`] on every string-table entry (not only function names);
//! 2. if any string changed, the profile is re-normalised by "merging it with itself", so that
//!    functions and locations that became equal share one id (see [`fix_go_profile`]);
//! 3. if [`may_have_truncated_go_stacks`] says so, [`repair_go_truncated_stacks`] runs **once**.
//!
//! # Which repair variant, and why
//!
//! Two versions of the repair exist upstream. The current one indexes every group of stacks,
//! singletons included, and aborts chains after 56 steps; an older one skipped groups of fewer
//! than two samples and aborted after 16 steps. The committed fixtures
//! (`testdata/pprof/gotruncatefix/*.pb.gz.fixed`) are the only golden output we have, and they are
//! reproduced exactly only by the **old** variant, applied twice (the fixture-generation
//! procedure: `fix_go_profile`, then the repair a second time). So this module implements:
//!
//! * **old singleton rule**: a group of fewer than 2 samples is not indexed as a reference;
//! * **the last-group quirk**: the end of the last group (in sort order) is taken to be the number
//!   of groups rather than the number of long samples, so that group is normally neither indexed
//!   nor extended;
//! * **recursion limit 16** (the old variant's). The fixtures are reproduced with 16 and with 56
//!   alike (their dependency chains are short); 16 is the value that belongs with the old rule.
//!   Reaching the limit abandons the rest of the repair; groups already extended stay extended;
//! * **a stable sort** where Go uses an unstable one (it decides which sample of a group is the
//!   reference stack), and the samples' order in the profile is left unchanged: Go reorders them
//!   in place, which is invisible once the profile is normalised. Sorting in place was checked
//!   too and reproduces the fixtures as well.
//!
//! Samples are compared by location id. The gate is the current one (heap and CPU, §1.2).
//!
//! # Hostile input
//!
//! Nothing here panics on input-derived data: references to ids that do not exist are skipped (a
//! sample's unknown location ids are dropped from it during re-normalisation; unknown function
//! or mapping references become 0; out-of-range string indices become 0), value sums wrap, and
//! the repair appends at most `8 × (limit + 1)` ids to a sample per pass.

use super::frames::string_at;
use super::id_index::IdIndex;
use super::normalize::{same_sample, sample_hash};
use super::proto::{Function, Line, Location, Mapping, Profile, Sample, ValueType};
use super::view::{ProfileView, SampleView};
use hashbrown::HashTable;
use model::Interner;
use rustc_hash::FxHashMap;
use std::borrow::Cow;
use std::cmp::Ordering;

/// The start of a section that [`drop_go_type_parameters`] removes.
const SHAPE_PREFIX: &str = "[go.shape.";

/// Number of shifted windows indexed per suffix (offsets 1..=8 from the root end).
const TOKENS: usize = 8;
/// Length of a window ("token"), in location ids.
const TOKEN_LEN: usize = 16;
/// Length of the suffix samples are grouped by; shorter samples are left alone.
const SUFFIX_LEN: usize = TOKENS + TOKEN_LEN;
/// Groups with fewer samples are not used as references (the old rule; see the module docs).
const MIN_GROUP_SIZE: usize = 2;
/// Length of a dependency chain that abandons the repair (the old variant's limit).
const MAX_RECURSIVE_DEPTH: usize = 16;

/// Sample types of Go heap profiles.
const HEAP_SAMPLE_TYPES: [&str; 4] = [
    "alloc_objects",
    "alloc_space",
    "inuse_objects",
    "inuse_space",
];

/// Removes every `[go.shape.…]` section (brackets nested inside it included) from `name`:
/// `pkg.(*T[go.shape.int]).Method` becomes `pkg.(*T).Method`. Brackets that do not start with
/// `[go.shape.` are kept. If a section never closes, the rest of the string is kept unchanged.
pub fn drop_go_type_parameters(name: &str) -> Cow<'_, str> {
    if !name.contains(SHAPE_PREFIX) {
        return Cow::Borrowed(name);
    }
    let bytes = name.as_bytes();
    let mut out = String::with_capacity(name.len());
    let mut i = 0;
    loop {
        let rest = name.get(i..).unwrap_or("");
        let Some(relative) = rest.find(SHAPE_PREFIX) else {
            out.push_str(rest);
            break;
        };
        let open = i + relative;
        match closing_bracket(bytes, open) {
            Some(close) => {
                out.push_str(name.get(i..open).unwrap_or(""));
                // `close` is an ASCII `]`, so `close + 1` is a character boundary.
                i = close + 1;
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    if out.len() == name.len() {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(out)
    }
}

/// Position of the `]` that closes the `[` at `open`, counting nested brackets.
fn closing_bracket(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (position, &byte) in bytes.iter().enumerate().skip(open) {
        match byte {
            b'[' => depth += 1,
            b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(position);
                }
            }
            _ => {}
        }
    }
    None
}

/// Pyroscope's `FixGoProfile`, for a profile already known to come from Go: drops type
/// parameters from every string; if any string changed, re-normalises the profile by merging it
/// with itself; then, if [`may_have_truncated_go_stacks`], repairs truncated stacks once.
///
/// The self-merge: ids are renumbered densely in table order; strings are de-duplicated keeping
/// the first occurrence (all strings are kept, in table order); functions are keyed by
/// `(name, system_name, filename, start_line)`, mappings by `(size rounded up to 4 KiB,
/// file_offset, build id or else file name)`, locations by `(address, mapping, lines as
/// (function, line))` (the first occurrence keeps its other fields); samples by `(locations,
/// labels as sorted (key, str) pairs)`, with values summed and zero-valued samples kept. The
/// header (times, period, sample types, default sample type, drop/keep frames, comments) is kept.
pub fn fix_go_profile(profile: &mut Profile) {
    let mut changed = false;
    for string in &mut profile.string_table {
        let replacement = match drop_go_type_parameters(string) {
            Cow::Owned(new) => Some(new),
            Cow::Borrowed(_) => None,
        };
        if let Some(new) = replacement {
            *string = new;
            changed = true;
        }
    }
    if changed {
        merge_with_self(profile);
    }
    if may_have_truncated_go_stacks(profile) {
        repair_go_truncated_stacks(profile);
    }
}

/// Whether the profile looks like a Go heap or CPU profile whose stacks may have been truncated
/// by the runtime. Heap (any sample type `alloc_objects`, `alloc_space`, `inuse_objects` or
/// `inuse_space`): some sample has at least 28 locations and none has 33 or more (Go 1.23+ heap
/// profiles keep 128 frames). CPU (a sample type `cpu`): some sample has at least 60 locations.
pub fn may_have_truncated_go_stacks(profile: &Profile) -> bool {
    may_have_truncated(
        profile
            .sample_type
            .iter()
            .map(|st| string_at(profile, st.r#type)),
        profile.sample.iter().map(|s| s.location_id.len()),
    )
}

/// Whether a string of `profile` holds Go type parameters ([`fix_go_profile`] would rewrite
/// it and merge the profile with itself).
pub(crate) fn has_go_type_parameters(profile: &ProfileView<'_>) -> bool {
    profile
        .strings
        .iter()
        .any(|s| matches!(drop_go_type_parameters(s), Cow::Owned(_)))
}

/// [`may_have_truncated_go_stacks`] of a view.
pub(crate) fn view_may_have_truncated_go_stacks(profile: &ProfileView<'_>) -> bool {
    may_have_truncated(
        profile
            .sample_type
            .iter()
            .map(|&(ty, _)| profile.string(ty)),
        profile
            .samples
            .iter()
            .map(|s| (s.locations.1 - s.locations.0) as usize),
    )
}

fn may_have_truncated<'s>(
    mut types: impl Iterator<Item = &'s str> + Clone,
    depths: impl Iterator<Item = usize>,
) -> bool {
    let (min_depth, max_depth) = if types.clone().any(|t| HEAP_SAMPLE_TYPES.contains(&t)) {
        (32, Some(33))
    } else if types.any(|t| t == "cpu") {
        (64, None)
    } else {
        return false;
    };
    // Some truncated heap stacks are a little shorter than the limit.
    let min_depth: usize = min_depth - 4;
    let mut deep_enough = false;
    for depth in depths {
        if depth >= min_depth {
            deep_enough = true;
        }
        if let Some(max_depth) = max_depth
            && depth >= max_depth
        {
            return false;
        }
    }
    deep_enough
}

/// The last `n` ids of a stack (the whole stack if shorter).
fn suffix(ids: &[u64], n: usize) -> &[u64] {
    ids.get(ids.len().saturating_sub(n)..).unwrap_or(ids)
}

/// The samples' stacks, as the truncated-stack repair reads and extends them: owned samples or
/// a view's flat arrays.
trait Stacks {
    fn len(&self) -> usize;
    /// The location ids of sample `i` (empty if there is no such sample).
    fn ids(&self, i: usize) -> &[u64];
    /// Appends `tail` to the stack of sample `i`.
    fn extend(&mut self, i: usize, tail: &[u64]);
}

impl Stacks for Vec<Sample> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn ids(&self, i: usize) -> &[u64] {
        self.get(i).map_or(&[][..], |s| &s.location_id)
    }

    fn extend(&mut self, i: usize, tail: &[u64]) {
        if let Some(sample) = self.get_mut(i) {
            sample.location_id.extend_from_slice(tail);
        }
    }
}

/// A view's samples and its flat location ids: an extended stack is copied to the end of the
/// ids with its tail.
struct ViewStacks<'v> {
    samples: &'v mut [SampleView],
    location_ids: &'v mut Vec<u64>,
}

impl Stacks for ViewStacks<'_> {
    fn len(&self) -> usize {
        self.samples.len()
    }

    fn ids(&self, i: usize) -> &[u64] {
        self.samples
            .get(i)
            .and_then(|s| {
                self.location_ids
                    .get(s.locations.0 as usize..s.locations.1 as usize)
            })
            .unwrap_or(&[])
    }

    fn extend(&mut self, i: usize, tail: &[u64]) {
        let Some(sample) = self.samples.get_mut(i) else {
            return;
        };
        let (from, to) = (sample.locations.0 as usize, sample.locations.1 as usize);
        let start = self.location_ids.len();
        // Ranges are u32 offsets: a stack that would end past them is left as it is.
        let Ok(end) = u32::try_from(start + to.saturating_sub(from) + tail.len()) else {
            return;
        };
        if from > to || to > start {
            return;
        }
        self.location_ids.extend_from_within(from..to);
        self.location_ids.extend_from_slice(tail);
        sample.locations = (start as u32, end);
    }
}

/// The grouping suffix of sample `i` (empty if there is no such sample).
fn suffix_at(samples: &impl Stacks, i: usize) -> &[u64] {
    suffix(samples.ids(i), SUFFIX_LEN)
}

/// Orders suffixes as Go compares their ids' little-endian bytes: the first differing byte of
/// the concatenation decides, which for whole ids is a numeric comparison of the byte-swapped ids.
fn compare_suffixes(a: &[u64], b: &[u64]) -> Ordering {
    a.iter()
        .map(|id| id.swap_bytes())
        .cmp(b.iter().map(|id| id.swap_bytes()))
}

/// A dependency: the group that holds a window equal to another group's top token, and how many
/// frames it has beyond it (towards the root).
#[derive(Debug, Clone, Copy)]
struct Dependency {
    group: usize,
    offset: usize,
}

/// Pyroscope's `RepairGoTruncatedStacktraces` (the old variant; see the module docs), without the
/// gate. Samples with at least 24 locations are grouped by their last 24 location ids; a group
/// whose 16 root-most ids appear, 1 to 8 frames short of the root end, in another group's suffix
/// is missing those frames, and gets them (followed through chains of such groups) appended from
/// the final reference's first sample. Only existing location ids are appended; values, labels
/// and the samples' order are untouched.
pub fn repair_go_truncated_stacks(profile: &mut Profile) {
    repair_stacks(&mut profile.sample);
}

/// [`repair_go_truncated_stacks`] on a view (extended stacks are appended to its location ids).
pub(crate) fn repair_view_stacks(profile: &mut ProfileView<'_>) {
    repair_stacks(&mut ViewStacks {
        samples: &mut profile.samples,
        location_ids: &mut profile.location_ids,
    });
}

fn repair_stacks(samples: &mut impl Stacks) {
    // Step 0: the long samples, stably sorted by the byte order of their suffixes.
    let mut order: Vec<usize> = (0..samples.len())
        .filter(|&i| samples.ids(i).len() >= SUFFIX_LEN)
        .collect();
    if order.is_empty() {
        return;
    }
    order.sort_by(|&a, &b| compare_suffixes(suffix_at(samples, a), suffix_at(samples, b)));
    // Group starts (positions in `order`).
    let mut starts = Vec::new();
    let mut previous: Option<usize> = None;
    for (position, &sample) in order.iter().enumerate() {
        let current = suffix_at(samples, sample);
        if previous.is_none_or(|p| suffix_at(samples, p) != current) {
            starts.push(position);
        }
        previous = Some(sample);
    }
    let groups = starts.len();
    // The quirk: the last group ends at the number of groups, not at the number of samples.
    let end = |group: usize| starts.get(group + 1).copied().unwrap_or(groups);
    let first_sample =
        |group: usize| -> Option<usize> { starts.get(group).and_then(|&p| order.get(p)).copied() };

    let dependencies: Vec<Option<Dependency>> = {
        let samples = &*samples;
        let ids_of =
            |group: usize| -> &[u64] { first_sample(group).map_or(&[][..], |i| samples.ids(i)) };
        // Step 1: index each group's windows 1..=8 frames short of its root end.
        let mut index: FxHashMap<&[u64], Dependency> = FxHashMap::default();
        for (group, &start) in starts.iter().enumerate() {
            if end(group).saturating_sub(start) < MIN_GROUP_SIZE {
                continue;
            }
            let suffix = suffix(ids_of(group), SUFFIX_LEN);
            for offset in 1..=TOKENS {
                let Some(window) = suffix.get(SUFFIX_LEN - TOKEN_LEN - offset..SUFFIX_LEN - offset)
                else {
                    continue;
                };
                let better = index.get(window).is_none_or(|d| offset > d.offset);
                if better {
                    index.insert(window, Dependency { group, offset });
                }
            }
        }
        // Step 2: each group's direct dependency, by its 16 root-most ids.
        (0..groups)
            .map(|group| {
                let top = suffix(ids_of(group), TOKEN_LEN);
                index.get(top).copied().filter(|d| d.group != group)
            })
            .collect()
    };

    // Step 3: follow chains to the final reference and append its missing tail.
    for group in 0..groups {
        let mut current = dependencies.get(group).copied().flatten();
        let mut total = 0usize;
        let mut reference = None;
        let mut steps = 0usize;
        while let Some(dependency) = current {
            total = total.saturating_add(dependency.offset);
            reference = Some(dependency.group);
            match dependencies.get(dependency.group).copied().flatten() {
                None => break,
                Some(next) => {
                    current = Some(next);
                    steps += 1;
                    if steps == MAX_RECURSIVE_DEPTH {
                        return;
                    }
                }
            }
        }
        let Some(reference) = reference else {
            continue;
        };
        if total == 0 {
            continue;
        }
        let Some(reference_ids) = first_sample(reference).map(|i| samples.ids(i)) else {
            continue;
        };
        if total >= reference_ids.len() {
            continue;
        }
        let Some(tail) = reference_ids.get(reference_ids.len() - total..) else {
            continue;
        };
        let tail = tail.to_vec();
        let Some(members) = starts
            .get(group)
            .and_then(|&start| order.get(start..end(group)))
        else {
            continue;
        };
        for &member in members {
            samples.extend(member, &tail);
        }
    }
}

/// Rewrites string indices through the de-duplicated table; out of range becomes 0.
struct StringMap(Vec<u32>);

impl StringMap {
    fn get(&self, index: i64) -> i64 {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.0.get(i))
            .map_or(0, |&s| i64::from(s))
    }
}

/// Maps a referenced id to its new id through the table's id index; 0 and unknown ids give 0.
fn new_id(index: &IdIndex, new_ids: &[u64], id: u64) -> u64 {
    if id == 0 {
        return 0;
    }
    index
        .get(id)
        .and_then(|position| new_ids.get(position))
        .copied()
        .unwrap_or(0)
}

type LocationKey = (u64, u64, Vec<(u64, i64)>);

/// Pyroscope's "merge the profile with itself" normalisation (see [`fix_go_profile`]).
fn merge_with_self(profile: &mut Profile) {
    // Strings: de-duplicated, first occurrence kept, in table order.
    let mut interner = Interner::new();
    let strings = StringMap(
        profile
            .string_table
            .iter()
            .map(|s| interner.intern(s))
            .collect(),
    );
    let string_table = interner.into_strings();

    // Functions.
    let function_index = IdIndex::new(profile.function.iter().map(|f| f.id));
    let mut function_keys: FxHashMap<(i64, i64, i64, i64), u64> = FxHashMap::default();
    let mut functions = Vec::new();
    let mut function_ids = Vec::with_capacity(profile.function.len());
    for function in &profile.function {
        let key = (
            strings.get(function.name),
            strings.get(function.system_name),
            strings.get(function.filename),
            function.start_line,
        );
        let next = functions.len() as u64 + 1;
        let id = *function_keys.entry(key).or_insert(next);
        if id == next {
            functions.push(Function {
                id,
                name: key.0,
                system_name: key.1,
                filename: key.2,
                start_line: key.3,
            });
        }
        function_ids.push(id);
    }
    drop(function_keys);

    // Mappings.
    let mapping_index = IdIndex::new(profile.mapping.iter().map(|m| m.id));
    let mut mapping_keys: FxHashMap<(u64, u64, i64), u64> = FxHashMap::default();
    let mut mappings = Vec::new();
    let mut mapping_ids = Vec::with_capacity(profile.mapping.len());
    for mapping in &profile.mapping {
        let size = mapping.memory_limit.wrapping_sub(mapping.memory_start);
        let size = size.div_ceil(0x1000).wrapping_mul(0x1000);
        let build_id = strings.get(mapping.build_id);
        let file = if build_id != 0 {
            build_id
        } else {
            strings.get(mapping.filename)
        };
        let next = mappings.len() as u64 + 1;
        let id = *mapping_keys
            .entry((size, mapping.file_offset, file))
            .or_insert(next);
        if id == next {
            mappings.push(Mapping {
                id,
                filename: strings.get(mapping.filename),
                build_id,
                ..*mapping
            });
        }
        mapping_ids.push(id);
    }
    drop(mapping_keys);

    // Locations.
    let location_index = IdIndex::new(profile.location.iter().map(|l| l.id));
    let mut location_keys: FxHashMap<LocationKey, u64> = FxHashMap::default();
    let mut locations = Vec::new();
    let mut location_ids = Vec::with_capacity(profile.location.len());
    for location in &profile.location {
        let mapping_id = new_id(&mapping_index, &mapping_ids, location.mapping_id);
        let lines: Vec<Line> = location
            .line
            .iter()
            .map(|line| Line {
                function_id: new_id(&function_index, &function_ids, line.function_id),
                ..*line
            })
            .collect();
        let key = (
            location.address,
            mapping_id,
            lines.iter().map(|l| (l.function_id, l.line)).collect(),
        );
        let next = locations.len() as u64 + 1;
        let id = *location_keys.entry(key).or_insert(next);
        if id == next {
            locations.push(Location {
                id,
                mapping_id,
                address: location.address,
                line: lines,
                is_folded: location.is_folded,
            });
        }
        location_ids.push(id);
    }
    drop(location_keys);

    // Samples: rewritten in place, then equal ones summed.
    let mut index: HashTable<u32> = HashTable::with_capacity(profile.sample.len());
    let mut samples: Vec<Sample> = Vec::with_capacity(profile.sample.len());
    for mut sample in std::mem::take(&mut profile.sample) {
        sample.location_id.retain_mut(|id| {
            *id = new_id(&location_index, &location_ids, *id);
            *id != 0
        });
        for label in &mut sample.label {
            label.key = strings.get(label.key);
            label.str = strings.get(label.str);
            label.num_unit = strings.get(label.num_unit);
        }
        sample.label.sort_by_key(|l| (l.key, l.str));
        let hash = sample_hash(&sample);
        match index.find(hash, |&at| same_sample(&samples[at as usize], &sample)) {
            Some(&at) => {
                let existing = &mut samples[at as usize];
                if existing.value.len() < sample.value.len() {
                    existing.value.resize(sample.value.len(), 0);
                }
                for (total, value) in existing.value.iter_mut().zip(&sample.value) {
                    *total = total.wrapping_add(*value);
                }
            }
            None => {
                index.insert_unique(hash, samples.len() as u32, |&at| {
                    sample_hash(&samples[at as usize])
                });
                samples.push(sample);
            }
        }
    }

    let value_type = |vt: &ValueType| ValueType {
        r#type: strings.get(vt.r#type),
        unit: strings.get(vt.unit),
    };
    profile.sample_type = profile.sample_type.iter().map(value_type).collect();
    profile.period_type = profile.period_type.as_ref().map(value_type);
    profile.drop_frames = strings.get(profile.drop_frames);
    profile.keep_frames = strings.get(profile.keep_frames);
    profile.default_sample_type = strings.get(profile.default_sample_type);
    profile.doc_url = strings.get(profile.doc_url);
    for comment in &mut profile.comment {
        *comment = strings.get(*comment);
    }
    profile.sample = samples;
    profile.mapping = mappings;
    profile.location = locations;
    profile.function = functions;
    profile.string_table = string_table;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_type_parameters_table() {
        let cases = [
            ("", ""),
            ("pkg.Func", "pkg.Func"),
            ("pkg.Func[go.shape.int]", "pkg.Func"),
            ("pkg.(*T[go.shape.int]).Method", "pkg.(*T).Method"),
            ("pkg.Func[go.shape.int,go.shape.string]", "pkg.Func"),
            (
                "pkg.(*T[go.shape.struct { F []uint8 }]).Method",
                "pkg.(*T).Method",
            ),
            ("pkg.Func[int]", "pkg.Func[int]"),
            ("go.shape.int", "go.shape.int"),
            (
                "pkg.Func[go.shape.int].Method[go.shape.string]",
                "pkg.Func.Method",
            ),
            (
                "pkg.Func[go.shape.struct { F []uint8 }].Method[go.shape.int]",
                "pkg.Func.Method",
            ),
            // Unbalanced: the rest is kept as it is (upstream duplicates the prefix here).
            ("pkg.F[go.shape.int", "pkg.F[go.shape.int"),
            ("a[go.shape.x].b[go.shape.y", "a.b[go.shape.y"),
            ("pkg.F[go.shape.int]x]", "pkg.Fx]"),
            ("ünï[go.shape.ß]cödé", "ünïcödé"),
        ];
        for (input, expected) in cases {
            assert_eq!(drop_go_type_parameters(input), expected, "input {input:?}");
        }
        assert!(matches!(
            drop_go_type_parameters("pkg.Func[int]"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            drop_go_type_parameters("pkg.F[go.shape.int"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn suffix_order_is_little_endian_bytes() {
        assert_eq!(compare_suffixes(&[256], &[1]), Ordering::Less);
        assert_eq!(compare_suffixes(&[1, 2], &[1, 3]), Ordering::Less);
        assert_eq!(compare_suffixes(&[2], &[2]), Ordering::Equal);
    }
}
