//! Merging many pprof profiles into one: functions, locations, mappings and strings are
//! deduplicated and only what samples reference is kept; samples with the same locations and
//! labels are summed. This is `pprof -proto a b c` and, with one value column and no labels,
//! the profile `SelectMergeProfile` returns. Like both, the result's `time_nanos` is the
//! earliest non-zero one and its `duration_nanos` the sum of the inputs'.

use super::id_index::IdIndex;
use super::proto::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};
use super::view::ProfileView;
use hashbrown::HashTable;
use model::Interner;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::{BuildHasher, Hash, Hasher};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("cannot merge profiles with different sample types: {expected} and {found}")]
    SampleTypes { expected: String, found: String },
    #[error("cannot merge profiles with different period types: {expected} and {found}")]
    PeriodTypes { expected: String, found: String },
    #[error("sample type index {index} is out of range: the profile has {len} sample types")]
    ValueIndex { index: usize, len: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FunctionKey {
    name: u32,
    system_name: u32,
    filename: u32,
    start_line: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct MappingKey {
    memory_start: u64,
    memory_limit: u64,
    file_offset: u64,
    filename: u32,
    build_id: u32,
    flags: [bool; 4],
}

/// The hash of a location's identity: its output mapping id, address, lines (output function
/// id, line, column) and folding.
fn location_hash(
    mapping: u64,
    address: u64,
    lines: impl Iterator<Item = (u64, i64, i64)>,
    is_folded: bool,
) -> u64 {
    let mut hasher = FxBuildHasher.build_hasher();
    (mapping, address, is_folded).hash(&mut hasher);
    for line in lines {
        line.hash(&mut hasher);
    }
    hasher.finish()
}

/// What the merged profile keeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct MergeOptions {
    /// Keep only this value column (`SelectMergeProfile`); `None` keeps all of them.
    pub value_index: Option<usize>,
    /// Drop sample labels, summing samples that differ only by labels.
    pub drop_labels: bool,
}

const UNMAPPED: u64 = u64::MAX;

/// Accumulates profiles one at a time (so memory holds one input and the result).
#[derive(Debug, Default)]
pub struct ProfileMerger {
    options: MergeOptions,
    strings: Interner,
    sample_type: Option<Vec<(String, String)>>,
    /// The inputs' period type (None: they have none), known once `sample_type` is set.
    period_type: Option<(String, String)>,
    period: i64,
    default_sample_type: String,
    time_nanos: i64,
    duration_nanos: i64,
    functions: FxHashMap<FunctionKey, u64>,
    mappings: FxHashMap<MappingKey, u64>,
    /// Output locations by identity; values are indices into `out.location`.
    locations: HashTable<u32>,
    /// A location's lines while it is looked up (reused: no allocation per location).
    scratch_lines: Vec<(u64, i64, i64)>,
    /// Output samples by (location ids, labels); values are indices into `out.sample`.
    samples: HashTable<u32>,
    out: Profile,
}

/// Lookup of a view's functions, mappings and locations by id, built once per view.
#[derive(Debug)]
pub struct ViewIndex {
    functions: IdIndex,
    mappings: IdIndex,
    locations: IdIndex,
}

impl ViewIndex {
    pub fn new(profile: &ProfileView<'_>) -> ViewIndex {
        ViewIndex {
            functions: IdIndex::new(profile.functions.iter().map(|f| f.id)),
            mappings: IdIndex::new(profile.mappings.iter().map(|m| m.id)),
            locations: IdIndex::new(profile.locations.iter().map(|l| l.id)),
        }
    }
}

/// Input position → output id: a vector for a whole profile, a hash map for a few samples of a
/// large one (so that merging many small subsets costs what the subsets hold).
enum Table {
    Dense(Vec<u64>),
    Sparse(FxHashMap<usize, u64>),
}

impl Table {
    fn get(&self, position: usize) -> Option<u64> {
        match self {
            Table::Dense(slots) => slots.get(position).copied().filter(|&id| id != UNMAPPED),
            Table::Sparse(map) => map.get(&position).copied(),
        }
    }

    fn set(&mut self, position: usize, id: u64) {
        match self {
            Table::Dense(slots) => {
                if let Some(slot) = slots.get_mut(position) {
                    *slot = id;
                }
            }
            Table::Sparse(map) => {
                map.insert(position, id);
            }
        }
    }
}

/// Per-input translation tables from input positions to output ids.
struct Remap {
    strings: Table,
    functions: Table,
    mappings: Table,
    locations: Table,
}

impl Remap {
    fn dense(profile: &ProfileView<'_>) -> Remap {
        Remap {
            strings: Table::Dense(vec![UNMAPPED; profile.strings.len()]),
            functions: Table::Dense(vec![UNMAPPED; profile.functions.len()]),
            mappings: Table::Dense(vec![UNMAPPED; profile.mappings.len()]),
            locations: Table::Dense(vec![UNMAPPED; profile.locations.len()]),
        }
    }

    fn sparse() -> Remap {
        Remap {
            strings: Table::Sparse(FxHashMap::default()),
            functions: Table::Sparse(FxHashMap::default()),
            mappings: Table::Sparse(FxHashMap::default()),
            locations: Table::Sparse(FxHashMap::default()),
        }
    }
}

/// The hash of a sample's identity: its output location ids and labels.
fn sample_hash(location_ids: &[u64], labels: impl Iterator<Item = (u32, u32, i64, u32)>) -> u64 {
    let mut hasher = FxBuildHasher.build_hasher();
    location_ids.hash(&mut hasher);
    for label in labels {
        label.hash(&mut hasher);
    }
    hasher.finish()
}

fn describe(types: &[(String, String)]) -> String {
    let parts: Vec<String> = types.iter().map(|(t, u)| format!("{t}/{u}")).collect();
    format!("[{}]", parts.join(" "))
}

impl ProfileMerger {
    pub fn new(options: MergeOptions) -> Self {
        let mut strings = Interner::new();
        strings.intern("");
        ProfileMerger {
            options,
            strings,
            ..Default::default()
        }
    }

    /// Adds one profile. Profiles must agree on sample types and period type.
    pub fn merge(&mut self, profile: &Profile) -> Result<(), MergeError> {
        self.merge_view(&ProfileView::from_profile(profile))
    }

    /// Adds one profile view. Profiles must agree on sample types and period type.
    pub fn merge_view(&mut self, profile: &ProfileView<'_>) -> Result<(), MergeError> {
        let index = ViewIndex::new(profile);
        let mut remap = Remap::dense(profile);
        self.merge_samples(
            profile,
            &index,
            &mut remap,
            0..profile.samples.len(),
            |_| true,
        )
    }

    /// Adds the samples at positions `samples` of a view, with only the labels `keep_label`
    /// accepts. Costs what those samples reference, not the size of the view's tables.
    pub fn merge_view_subset(
        &mut self,
        profile: &ProfileView<'_>,
        index: &ViewIndex,
        samples: impl IntoIterator<Item = usize>,
        keep_label: impl Fn(&super::view::LabelView) -> bool,
    ) -> Result<(), MergeError> {
        self.merge_samples(profile, index, &mut Remap::sparse(), samples, keep_label)
    }

    fn merge_samples(
        &mut self,
        profile: &ProfileView<'_>,
        index: &ViewIndex,
        remap: &mut Remap,
        samples: impl IntoIterator<Item = usize>,
        keep_label: impl Fn(&super::view::LabelView) -> bool,
    ) -> Result<(), MergeError> {
        self.check_compatible(profile)?;
        if profile.time_nanos != 0 && (self.time_nanos == 0 || profile.time_nanos < self.time_nanos)
        {
            self.time_nanos = profile.time_nanos;
        }
        self.duration_nanos = self.duration_nanos.saturating_add(profile.duration_nanos);
        let (functions, mappings, locations) =
            (&index.functions, &index.mappings, &index.locations);
        let mut location_ids: Vec<u64> = Vec::new();
        let mut labels: Vec<(u32, u32, i64, u32)> = Vec::new();
        let mut values: Vec<i64> = Vec::new();
        for position in samples {
            let Some(sample) = profile.samples.get(position) else {
                continue;
            };
            let sample_values = profile.sample_values(sample);
            values.clear();
            match self.options.value_index {
                Some(index) => values.push(sample_values.get(index).copied().unwrap_or(0)),
                None => values.extend_from_slice(sample_values),
            }
            if values.iter().all(|&v| v == 0) {
                continue;
            }
            // A sample that points at a missing location is skipped whole, as trees skip it.
            if profile
                .sample_locations(sample)
                .iter()
                .any(|&id| locations.get(id).is_none())
            {
                continue;
            }
            location_ids.clear();
            for &id in profile.sample_locations(sample) {
                if let Some(position) = locations.get(id) {
                    let location = self.location(profile, position, functions, mappings, remap);
                    location_ids.push(location);
                }
            }
            labels.clear();
            if !self.options.drop_labels {
                for l in profile
                    .sample_labels(sample)
                    .iter()
                    .filter(|l| keep_label(l))
                {
                    let label = (
                        self.string(profile, l.key, remap),
                        self.string(profile, l.str, remap),
                        l.num,
                        self.string(profile, l.num_unit, remap),
                    );
                    labels.push(label);
                }
                labels.sort_unstable();
            }
            self.add_sample(&location_ids, &labels, &values);
        }
        Ok(())
    }

    fn add_sample(
        &mut self,
        location_ids: &[u64],
        labels: &[(u32, u32, i64, u32)],
        values: &[i64],
    ) {
        let hash = sample_hash(location_ids, labels.iter().copied());
        let out = &mut self.out.sample;
        let same = |&index: &u32| {
            let sample = &out[index as usize];
            sample.location_id == location_ids
                && sample.label.len() == labels.len()
                && sample.label.iter().zip(labels).all(|(a, b)| {
                    (a.key, a.str, a.num, a.num_unit)
                        == (i64::from(b.0), i64::from(b.1), b.2, i64::from(b.3))
                })
        };
        if let Some(&index) = self.samples.find(hash, same) {
            for (total, value) in out[index as usize].value.iter_mut().zip(values) {
                *total = total.wrapping_add(*value);
            }
            return;
        }
        let index = out.len() as u32;
        out.push(Sample {
            location_id: location_ids.to_vec(),
            value: values.to_vec(),
            label: labels
                .iter()
                .map(|&(key, str, num, num_unit)| Label {
                    key: i64::from(key),
                    str: i64::from(str),
                    num,
                    num_unit: i64::from(num_unit),
                })
                .collect(),
        });
        let out = &self.out.sample;
        self.samples.insert_unique(hash, index, |&i| {
            let sample = &out[i as usize];
            let labels = sample
                .label
                .iter()
                .map(|l| (l.key as u32, l.str as u32, l.num, l.num_unit as u32));
            sample_hash(&sample.location_id, labels)
        });
    }

    fn check_compatible(&mut self, profile: &ProfileView<'_>) -> Result<(), MergeError> {
        let pair =
            |(t, u): (i64, i64)| (profile.string(t).to_owned(), profile.string(u).to_owned());
        let mut types: Vec<(String, String)> =
            profile.sample_type.iter().map(|&st| pair(st)).collect();
        if let Some(index) = self.options.value_index {
            if index >= types.len() {
                return Err(MergeError::ValueIndex {
                    index,
                    len: types.len(),
                });
            }
            types = vec![types.swap_remove(index)];
        }
        let period_type = profile.period_type.map(pair);
        match &self.sample_type {
            Some(expected) => {
                if *expected != types {
                    return Err(MergeError::SampleTypes {
                        expected: describe(expected),
                        found: describe(&types),
                    });
                }
                if self.period_type != period_type {
                    let show = |p: &Option<(String, String)>| match p {
                        Some(p) => describe(std::slice::from_ref(p)),
                        None => "none".to_owned(),
                    };
                    return Err(MergeError::PeriodTypes {
                        expected: show(&self.period_type),
                        found: show(&period_type),
                    });
                }
                self.period = self.period.max(profile.period);
            }
            None => {
                self.sample_type = Some(types);
                self.period_type = period_type;
                self.period = profile.period;
                self.default_sample_type = profile.string(profile.default_sample_type).to_owned();
            }
        }
        Ok(())
    }

    fn string(&mut self, profile: &ProfileView<'_>, index: i64, remap: &mut Remap) -> u32 {
        let Some(position) = usize::try_from(index)
            .ok()
            .filter(|&i| i < profile.strings.len())
        else {
            return 0;
        };
        if let Some(id) = remap.strings.get(position) {
            return id as u32;
        }
        let id = self.strings.intern(profile.string(index));
        remap.strings.set(position, u64::from(id));
        id
    }

    fn function(&mut self, profile: &ProfileView<'_>, position: usize, remap: &mut Remap) -> u64 {
        if let Some(id) = remap.functions.get(position) {
            return id;
        }
        let function = profile.functions[position];
        let key = FunctionKey {
            name: self.string(profile, function.name, remap),
            system_name: self.string(profile, function.system_name, remap),
            filename: self.string(profile, function.filename, remap),
            start_line: function.start_line,
        };
        let next = self.out.function.len() as u64 + 1;
        let id = *self.functions.entry(key.clone()).or_insert(next);
        if id == next {
            self.out.function.push(Function {
                id,
                name: i64::from(key.name),
                system_name: i64::from(key.system_name),
                filename: i64::from(key.filename),
                start_line: key.start_line,
            });
        }
        remap.functions.set(position, id);
        id
    }

    fn mapping(&mut self, profile: &ProfileView<'_>, position: usize, remap: &mut Remap) -> u64 {
        if let Some(id) = remap.mappings.get(position) {
            return id;
        }
        let mapping = &profile.mappings[position];
        let key = MappingKey {
            memory_start: mapping.memory_start,
            memory_limit: mapping.memory_limit,
            file_offset: mapping.file_offset,
            filename: self.string(profile, mapping.filename, remap),
            build_id: self.string(profile, mapping.build_id, remap),
            flags: [
                mapping.has_functions,
                mapping.has_filenames,
                mapping.has_line_numbers,
                mapping.has_inline_frames,
            ],
        };
        let next = self.out.mapping.len() as u64 + 1;
        let id = *self.mappings.entry(key.clone()).or_insert(next);
        if id == next {
            self.out.mapping.push(Mapping {
                id,
                memory_start: key.memory_start,
                memory_limit: key.memory_limit,
                file_offset: key.file_offset,
                filename: i64::from(key.filename),
                build_id: i64::from(key.build_id),
                has_functions: key.flags[0],
                has_filenames: key.flags[1],
                has_line_numbers: key.flags[2],
                has_inline_frames: key.flags[3],
            });
        }
        remap.mappings.set(position, id);
        id
    }

    fn location(
        &mut self,
        profile: &ProfileView<'_>,
        position: usize,
        functions: &IdIndex,
        mappings: &IdIndex,
        remap: &mut Remap,
    ) -> u64 {
        if let Some(id) = remap.locations.get(position) {
            return id;
        }
        let location = profile.locations[position];
        let mapping = match mappings.get(location.mapping_id) {
            Some(m) => self.mapping(profile, m, remap),
            None => 0,
        };
        let mut lines = std::mem::take(&mut self.scratch_lines);
        lines.clear();
        for line in profile.location_lines(&location) {
            let function = match functions.get(line.function_id) {
                Some(f) => self.function(profile, f, remap),
                None => 0,
            };
            lines.push((function, line.line, line.column));
        }
        let (address, is_folded) = (location.address, location.is_folded);
        let hash = location_hash(mapping, address, lines.iter().copied(), is_folded);
        let out = &mut self.out.location;
        let same = |&index: &u32| {
            let l = &out[index as usize];
            l.mapping_id == mapping
                && l.address == address
                && l.is_folded == is_folded
                && l.line.len() == lines.len()
                && l.line
                    .iter()
                    .zip(&lines)
                    .all(|(a, b)| (a.function_id, a.line, a.column) == *b)
        };
        let id = match self.locations.find(hash, same) {
            Some(&index) => out[index as usize].id,
            None => {
                let index = out.len() as u32;
                let id = u64::from(index) + 1;
                out.push(Location {
                    id,
                    mapping_id: mapping,
                    address,
                    line: lines
                        .iter()
                        .map(|&(function_id, line, column)| Line {
                            function_id,
                            line,
                            column,
                        })
                        .collect(),
                    is_folded,
                });
                let out = &self.out.location;
                self.locations.insert_unique(hash, index, |&i| {
                    let l = &out[i as usize];
                    let lines = l.line.iter().map(|l| (l.function_id, l.line, l.column));
                    location_hash(l.mapping_id, l.address, lines, l.is_folded)
                });
                id
            }
        };
        self.scratch_lines = lines;
        remap.locations.set(position, id);
        id
    }

    /// Number of distinct samples so far.
    pub fn sample_count(&self) -> usize {
        self.out.sample.len()
    }

    /// The merged profile. Sample and period type strings come after the symbols in the string
    /// table (unit before type), as Pyroscope's merged profiles have them.
    pub fn finish(mut self) -> Profile {
        let value_type = |strings: &mut Interner, (t, u): &(String, String)| {
            let unit = strings.intern(u);
            let ty = strings.intern(t);
            ValueType {
                r#type: i64::from(ty),
                unit: i64::from(unit),
            }
        };
        let types = self.sample_type.take().unwrap_or_default();
        self.out.sample_type = types
            .iter()
            .map(|st| value_type(&mut self.strings, st))
            .collect();
        if let Some(period_type) = self.period_type.take() {
            self.out.period_type = Some(value_type(&mut self.strings, &period_type));
        }
        self.out.period = self.period;
        if !self.default_sample_type.is_empty() {
            self.out.default_sample_type =
                i64::from(self.strings.intern(&self.default_sample_type));
        }
        self.out.time_nanos = self.time_nanos;
        self.out.duration_nanos = self.duration_nanos;
        self.out.string_table = self.strings.into_strings();
        self.out
    }
}

/// Gives a merged profile the metadata `SelectMergeProfile` returns for `profile_type`: one
/// sample type and the period type (their strings appended if missing, sample unit first), the
/// period Pyroscope derives from the type's name (`process_cpu` 1e9, `memory` 524288, else 1),
/// `time_nanos` = the query's end and `duration_nanos` = its length.
pub fn set_select_merge_metadata(
    profile: &mut Profile,
    profile_type: &model::ProfileType,
    start_ms: i64,
    end_ms: i64,
) {
    if profile.string_table.is_empty() {
        profile.string_table.push(String::new());
    }
    let mut index_of = |s: &str| -> i64 {
        match profile.string_table.iter().rposition(|t| t == s) {
            Some(index) => index as i64,
            None => {
                profile.string_table.push(s.to_owned());
                profile.string_table.len() as i64 - 1
            }
        }
    };
    let unit = index_of(&profile_type.sample_unit);
    let ty = index_of(&profile_type.sample_type);
    let period_type = index_of(&profile_type.period_type);
    let period_unit = index_of(&profile_type.period_unit);
    profile.sample_type = vec![ValueType { r#type: ty, unit }];
    profile.default_sample_type = ty;
    profile.period_type = Some(ValueType {
        r#type: period_type,
        unit: period_unit,
    });
    profile.period = match profile_type.name.as_str() {
        "process_cpu" => 1_000_000_000,
        "memory" => 512 * 1024,
        _ => 1,
    };
    profile.time_nanos = end_ms.saturating_mul(1_000_000);
    profile.duration_nanos = end_ms.saturating_sub(start_ms).saturating_mul(1_000_000);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile like the one Pyroscope's microservices test pushes per service: functions and
    /// locations foo, bar, baz, boz on one mapping; stacks `foo;bar;baz` 1 and `foo;bar;boz` 3
    /// (leaf first in pprof, so the leaf is foo).
    fn service_profile() -> Profile {
        let strings = ["", "cpu", "nanoseconds", "foo", "bar", "baz", "boz"];
        Profile {
            sample_type: vec![ValueType { r#type: 1, unit: 2 }],
            period_type: Some(ValueType { r#type: 1, unit: 2 }),
            period: 10_000_000,
            string_table: strings.iter().map(|s| s.to_string()).collect(),
            mapping: vec![Mapping {
                id: 1,
                has_functions: true,
                ..Default::default()
            }],
            function: (1..=4)
                .map(|id| Function {
                    id,
                    name: id as i64 + 2,
                    ..Default::default()
                })
                .collect(),
            location: (1..=4)
                .map(|id| Location {
                    id,
                    mapping_id: 1,
                    line: vec![Line {
                        function_id: id,
                        line: 0,
                        column: 0,
                    }],
                    ..Default::default()
                })
                .collect(),
            sample: vec![
                Sample {
                    location_id: vec![1, 2, 3],
                    value: vec![1],
                    label: vec![],
                },
                Sample {
                    location_id: vec![1, 2, 4],
                    value: vec![3],
                    label: vec![],
                },
            ],
            ..Default::default()
        }
    }

    /// The exact pprof of `TestMicroServicesIntegration`'s SelectMergeProfile (`api.md` §8).
    #[test]
    fn select_merge_profile_golden() {
        let services = 100;
        let mut merger = ProfileMerger::new(MergeOptions {
            value_index: Some(0),
            drop_labels: true,
        });
        for _ in 0..services {
            merger.merge(&service_profile()).expect("same types");
        }
        let mut merged = merger.finish();
        let profile_type: model::ProfileType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
            .parse()
            .expect("valid id");
        set_select_merge_metadata(&mut merged, &profile_type, 1_000, 7_201_000);
        assert_eq!(
            merged.string_table,
            ["", "foo", "bar", "baz", "boz", "nanoseconds", "cpu"]
        );
        assert_eq!(merged.sample_type, vec![ValueType { r#type: 6, unit: 5 }]);
        assert_eq!(merged.period_type, Some(ValueType { r#type: 6, unit: 5 }));
        assert_eq!(merged.period, 1_000_000_000);
        assert_eq!(
            merged.mapping,
            vec![Mapping {
                id: 1,
                has_functions: true,
                ..Default::default()
            }]
        );
        let locations: Vec<(u64, u64, u64)> = merged
            .location
            .iter()
            .map(|l| (l.id, l.mapping_id, l.line[0].function_id))
            .collect();
        assert_eq!(locations, [(1, 1, 1), (2, 1, 2), (3, 1, 3), (4, 1, 4)]);
        let functions: Vec<(u64, i64)> = merged.function.iter().map(|f| (f.id, f.name)).collect();
        assert_eq!(functions, [(1, 1), (2, 2), (3, 3), (4, 4)]);
        let samples: Vec<(Vec<u64>, Vec<i64>)> = merged
            .sample
            .iter()
            .map(|s| (s.location_id.clone(), s.value.clone()))
            .collect();
        assert_eq!(
            samples,
            [
                (vec![1, 2, 3], vec![services]),
                (vec![1, 2, 4], vec![3 * services])
            ]
        );
        assert_eq!(merged.time_nanos, 7_201_000_000_000);
        assert_eq!(merged.duration_nanos, 7_200_000_000_000);
    }
}
