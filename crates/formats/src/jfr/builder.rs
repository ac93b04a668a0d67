//! One pprof profile per kind of series a recording yields (CPU, wall, allocations in and
//! outside TLABs, allocation samples, monitor and park contention, live objects, native
//! allocations), built as events arrive. Memory follows the distinct stacks and functions, not
//! the number of events: equal (stack, context) pairs in a chunk add into one sample.

use crate::pprof::proto::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};
use hashbrown::HashTable;
use model::Interner;
use rustc_hash::{FxBuildHasher, FxHashMap};
use std::hash::BuildHasher as _;

/// The series kinds, with the sample types and period type Pyroscope gives each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SeriesKind {
    Cpu,
    Wall,
    AllocInNewTlab,
    AllocOutsideTlab,
    AllocSample,
    Lock,
    ThreadPark,
    LiveObject,
    Malloc,
}

impl SeriesKind {
    pub(crate) const ALL: [SeriesKind; 9] = [
        SeriesKind::Cpu,
        SeriesKind::Wall,
        SeriesKind::AllocInNewTlab,
        SeriesKind::AllocOutsideTlab,
        SeriesKind::AllocSample,
        SeriesKind::Lock,
        SeriesKind::ThreadPark,
        SeriesKind::LiveObject,
        SeriesKind::Malloc,
    ];

    /// The position of the kind in [`SeriesKind::ALL`] (the declaration order).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The `__name__` of the series.
    pub(crate) fn metric(self) -> &'static str {
        match self {
            SeriesKind::Cpu => "process_cpu",
            SeriesKind::Wall => "wall",
            SeriesKind::AllocInNewTlab
            | SeriesKind::AllocOutsideTlab
            | SeriesKind::AllocSample
            | SeriesKind::LiveObject
            | SeriesKind::Malloc => "memory",
            SeriesKind::Lock => "mutex",
            SeriesKind::ThreadPark => "block",
        }
    }

    fn sample_types(self) -> &'static [(&'static str, &'static str)] {
        match self {
            SeriesKind::Cpu => &[("cpu", "nanoseconds")],
            SeriesKind::Wall => &[("wall", "nanoseconds")],
            SeriesKind::AllocInNewTlab => &[
                ("alloc_in_new_tlab_objects", "count"),
                ("alloc_in_new_tlab_bytes", "bytes"),
            ],
            SeriesKind::AllocOutsideTlab => &[
                ("alloc_outside_tlab_objects", "count"),
                ("alloc_outside_tlab_bytes", "bytes"),
            ],
            SeriesKind::AllocSample => &[
                ("alloc_sample_objects", "count"),
                ("alloc_sample_bytes", "bytes"),
            ],
            SeriesKind::Lock | SeriesKind::ThreadPark => {
                &[("contentions", "count"), ("delay", "nanoseconds")]
            }
            SeriesKind::LiveObject => &[("live", "count")],
            SeriesKind::Malloc => &[("malloc_objects", "count"), ("malloc_bytes", "bytes")],
        }
    }

    fn period_type(self) -> Option<(&'static str, &'static str)> {
        match self {
            SeriesKind::Cpu => Some(("cpu", "nanoseconds")),
            SeriesKind::Wall => Some(("wall", "nanoseconds")),
            SeriesKind::AllocInNewTlab | SeriesKind::AllocOutsideTlab | SeriesKind::AllocSample => {
                Some(("space", "bytes"))
            }
            SeriesKind::Lock => Some(("mutex", "count")),
            SeriesKind::ThreadPark => Some(("block", "count")),
            SeriesKind::LiveObject => Some(("objects", "count")),
            SeriesKind::Malloc => None,
        }
    }

    /// How many values each sample of the series has.
    pub(crate) fn width(self) -> usize {
        self.sample_types().len()
    }
}

/// A frame resolved to its function name and line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ResolvedFrame {
    pub name: std::rc::Rc<str>,
    pub line: i64,
}

/// What separates samples of one stack: the context's labels (by context id) and span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub(crate) struct Correlation {
    pub context_id: i64,
    pub span_id: i64,
    pub span_name: i64,
}

/// Builds the pprof of one series kind.
#[derive(Debug)]
pub(crate) struct SeriesBuilder {
    kind: SeriesKind,
    strings: Interner,
    functions: Vec<Function>,
    function_ids: FxHashMap<i64, u64>,
    locations: Vec<Location>,
    location_ids: FxHashMap<(u64, i64), u64>,
    samples: Vec<Sample>,
    /// Every sample by (locations, correlation): a stack seen again in a later chunk adds into
    /// its sample, so memory follows the distinct stacks, not the number of chunks.
    sample_index: HashTable<(u64, usize)>,
    correlations: Vec<Correlation>,
    /// (stack trace key, correlation) → sample, for the current chunk only (keys are per chunk).
    chunk_samples: FxHashMap<(u64, Correlation), usize>,
}

fn sample_hash(location_id: &[u64], correlation: Correlation) -> u64 {
    FxBuildHasher.hash_one((location_id, correlation))
}

impl SeriesBuilder {
    pub(crate) fn new(kind: SeriesKind) -> SeriesBuilder {
        let mut builder = SeriesBuilder {
            kind,
            strings: Interner::new(),
            functions: Vec::new(),
            function_ids: FxHashMap::default(),
            locations: Vec::new(),
            location_ids: FxHashMap::default(),
            samples: Vec::new(),
            sample_index: HashTable::new(),
            correlations: Vec::new(),
            chunk_samples: FxHashMap::default(),
        };
        builder.string("");
        builder
    }

    fn string(&mut self, text: &str) -> i64 {
        i64::from(self.strings.intern(text))
    }

    fn location(&mut self, frame: &ResolvedFrame) -> u64 {
        let name = self.string(&frame.name);
        let function_id = match self.function_ids.get(&name) {
            Some(&id) => id,
            None => {
                let id = self.functions.len() as u64 + 1;
                self.functions.push(Function {
                    id,
                    name,
                    ..Function::default()
                });
                self.function_ids.insert(name, id);
                id
            }
        };
        *self
            .location_ids
            .entry((function_id, frame.line))
            .or_insert_with(|| {
                let id = self.locations.len() as u64 + 1;
                self.locations.push(Location {
                    id,
                    mapping_id: 1,
                    line: vec![Line {
                        function_id,
                        line: frame.line,
                        column: 0,
                    }],
                    ..Location::default()
                });
                id
            })
    }

    /// Forgets the chunk-local keys (call between chunks).
    pub(crate) fn end_chunk(&mut self) {
        self.chunk_samples.clear();
    }

    /// Adds `values` to the sample of (stack, correlation); `frames` resolves the stack (leaf
    /// first) and `labels` the correlation's labels the first time the pair is seen.
    pub(crate) fn add(
        &mut self,
        stack_key: u64,
        correlation: Correlation,
        values: &[i64],
        frames: impl FnOnce() -> Vec<ResolvedFrame>,
        labels: impl FnOnce() -> Vec<(String, String)>,
    ) {
        if let Some(&index) = self.chunk_samples.get(&(stack_key, correlation)) {
            self.add_values(index, values);
            return;
        }
        let location_id: Vec<u64> = frames().iter().map(|f| self.location(f)).collect();
        let hash = sample_hash(&location_id, correlation);
        let (samples, correlations) = (&self.samples, &self.correlations);
        if let Some(&(_, index)) = self.sample_index.find(hash, |&(h, i)| {
            h == hash && correlations[i] == correlation && samples[i].location_id == location_id
        }) {
            self.chunk_samples.insert((stack_key, correlation), index);
            self.add_values(index, values);
            return;
        }
        let label = labels()
            .iter()
            .map(|(key, value)| Label {
                key: self.string(key),
                str: self.string(value),
                ..Label::default()
            })
            .collect();
        let mut value = vec![0; self.kind.width()];
        for (sum, v) in value.iter_mut().zip(values) {
            *sum = *v;
        }
        let index = self.samples.len();
        self.chunk_samples.insert((stack_key, correlation), index);
        self.sample_index
            .insert_unique(hash, (hash, index), |&(h, _)| h);
        self.correlations.push(correlation);
        self.samples.push(Sample {
            location_id,
            value,
            label,
        });
    }

    fn add_values(&mut self, index: usize, values: &[i64]) {
        for (sum, value) in self.samples[index].value.iter_mut().zip(values) {
            *sum = sum.wrapping_add(*value);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The finished profile.
    pub(crate) fn finish(mut self, time_nanos: i64, duration_nanos: i64, period: i64) -> Profile {
        let sample_type = self
            .kind
            .sample_types()
            .iter()
            .map(|(kind, unit)| ValueType {
                r#type: self.string(kind),
                unit: self.string(unit),
            })
            .collect();
        let period_type = self.kind.period_type().map(|(kind, unit)| ValueType {
            r#type: self.string(kind),
            unit: self.string(unit),
        });
        Profile {
            sample_type,
            sample: self.samples,
            mapping: vec![Mapping {
                id: 1,
                has_functions: true,
                ..Mapping::default()
            }],
            location: self.locations,
            function: self.functions,
            string_table: self.strings.into_strings(),
            time_nanos,
            duration_nanos,
            period_type,
            period,
            ..Profile::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SeriesKind;

    #[test]
    fn kinds_are_listed_in_declaration_order() {
        for (position, kind) in SeriesKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), position, "{kind:?}");
        }
    }
}
