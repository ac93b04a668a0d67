//! Java Flight Recorder recordings (what the Pyroscope Java agent sends to
//! `/ingest?format=jfr`) turned into pprof profiles, one per kind of series, as Pyroscope's
//! `jfr-parser` maps them (`api.md` §2.1): execution samples → `process_cpu` (and `wall` when the
//! recording's `event` setting is `wall`), async-profiler's wall-clock samples → `wall`,
//! allocations in and outside TLABs and allocation samples → `memory`, live objects →
//! `memory:live`, monitor enter → `mutex`, thread park → `block`, native allocations →
//! `memory:malloc`. Context labels from the agent's `labels` field become sample labels.
//!
//! The reader is our own and is driven by each chunk's metadata (`metadata.rs`), so it reads
//! recordings of any JDK or async-profiler version: chunks are read one at a time from the
//! (possibly gzip) stream (`chunk.rs`), each chunk's constant pools are kept for the types a
//! profile needs (`pools.rs`), and its events are decoded by their declared fields
//! (`value.rs`) into per-series builders (`builder.rs`). Memory follows the largest chunk and
//! the distinct stacks, not the recording's length. Bad bytes are errors, never panics.
//!
//! Deliberate differences from `jfr-parser`: the count of an event is always 1 (jfr-parser
//! lets one wall-clock sample's `samples` leak into the counts of later events), and context
//! labels apply to every event type that carries a `contextId`.
//!
//! Main entry point: [`convert`].

mod builder;
mod chunk;
mod cursor;
mod error;
mod labels;
mod metadata;
mod pools;
mod reader;
mod symbols;
mod value;

pub use error::JfrError;
pub use labels::{Context, LabelsSnapshot};

use crate::compression::Compression;
use crate::pprof::Profile;
use builder::{Correlation, ResolvedFrame, SeriesBuilder, SeriesKind};
use chunk::ChunkStream;
use labels::ContextLabels;
use metadata::{ClassDef, Metadata};
use model::label_names;
use pools::Pools;
use reader::Chunk;
use rustc_hash::FxHashMap;
use std::io::Read;
use std::rc::Rc;
use value::Value;

/// The `sampleRate` Pyroscope assumes for a recording when the request has none.
pub const DEFAULT_SAMPLE_RATE: u32 = 100;

/// Bounds on what one recording may make us read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JfrLimits {
    /// Bytes of the (decompressed) recording in all.
    pub max_bytes: usize,
    /// Bytes of one chunk: a chunk is held in memory while it is read.
    pub max_chunk_bytes: usize,
}

impl Default for JfrLimits {
    fn default() -> Self {
        JfrLimits {
            max_bytes: 1 << 30,
            max_chunk_bytes: 256 << 20,
        }
    }
}

/// One recording with what its conversion needs.
#[derive(Debug, Clone, Copy)]
pub struct JfrInput<'a> {
    /// The recording, raw or gzip (told by its first bytes).
    pub body: &'a [u8],
    /// The `labels` field (a `LabelsSnapshot`), raw or gzip; `None` when absent.
    pub labels: Option<&'a [u8]>,
    /// `sampleRate`: CPU and wall samples weigh `1e9 / sample_rate` nanoseconds.
    pub sample_rate: u32,
    /// `time_nanos` and `duration_nanos` of the profiles (the request's `from` and `until`).
    pub start_time_nanos: i64,
    pub duration_nanos: i64,
    pub limits: JfrLimits,
}

/// One series kind's profile.
#[derive(Debug, Clone, PartialEq)]
pub struct JfrProfile {
    /// The `__name__` of its series (`process_cpu`, `wall`, `memory`, `mutex`, `block`).
    pub metric_name: &'static str,
    pub profile: Profile,
}

/// What a recording converts to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recording {
    pub profiles: Vec<JfrProfile>,
    /// The recording's `event` setting (`cpu`, `itimer`, `wall`, …), Pyroscope's `jfr_event`
    /// label; empty when the recording has none (JDK recordings).
    pub event: String,
}

/// Converts a recording; an empty body converts to no profiles.
pub fn convert(input: JfrInput<'_>) -> Result<Recording, JfrError> {
    let labels = match input.labels {
        Some(bytes) if !bytes.is_empty() => {
            let bytes = crate::compression::decompress(bytes, input.limits.max_bytes)
                .map_err(|e| JfrError::Labels(e.to_string()))?;
            ContextLabels::decode(&bytes)?
        }
        _ => ContextLabels::default(),
    };
    let reader: Box<dyn Read + '_> = match Compression::sniff(input.body) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input.body)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(input.body)
                .map_err(|e| JfrError::corrupt(format!("zstd: {e}")))?,
        ),
        Compression::None => Box::new(input.body),
    };
    let mut stream = ChunkStream::new(reader, input.limits.max_chunk_bytes, input.limits.max_bytes);
    let mut converter = Converter::new(&labels, input.sample_rate);
    while let Some((header, bytes)) = stream.next_chunk()? {
        let chunk = Chunk::read(header, bytes)?;
        converter.chunk(&chunk)?;
    }
    Ok(converter.finish(input.start_time_nanos, input.duration_nanos))
}

/// Where an event type keeps the fields conversion reads.
#[derive(Debug, Clone, Copy, Default)]
struct Fields {
    stack_trace: Option<usize>,
    state: Option<usize>,
    context_id: Option<usize>,
    span_id: Option<usize>,
    span_name: Option<usize>,
    tlab_size: Option<usize>,
    allocation_size: Option<usize>,
    weight: Option<usize>,
    duration: Option<usize>,
    samples: Option<usize>,
    size: Option<usize>,
    name: Option<usize>,
    value: Option<usize>,
}

impl Fields {
    fn of(class: &ClassDef) -> Fields {
        Fields {
            stack_trace: class.field("stackTrace"),
            state: class.field("state"),
            context_id: class.field("contextId"),
            span_id: class.field("spanId"),
            span_name: class.field("spanName"),
            tlab_size: class.field("tlabSize"),
            allocation_size: class.field("allocationSize"),
            weight: class.field("weight"),
            duration: class.field("duration"),
            samples: class.field("samples"),
            size: class.field("size"),
            name: class.field("name"),
            value: class.field("value"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    ExecutionSample,
    WallClockSample,
    AllocationInNewTlab,
    AllocationOutsideTlab,
    AllocationSample,
    MonitorEnter,
    ThreadPark,
    LiveObject,
    Malloc,
    ActiveSetting,
}

impl EventKind {
    fn from_name(name: &str) -> Option<EventKind> {
        Some(match name {
            "jdk.ExecutionSample" => EventKind::ExecutionSample,
            "profiler.WallClockSample" => EventKind::WallClockSample,
            "jdk.ObjectAllocationInNewTLAB" => EventKind::AllocationInNewTlab,
            "jdk.ObjectAllocationOutsideTLAB" => EventKind::AllocationOutsideTlab,
            "jdk.ObjectAllocationSample" => EventKind::AllocationSample,
            "jdk.JavaMonitorEnter" => EventKind::MonitorEnter,
            "jdk.ThreadPark" => EventKind::ThreadPark,
            "profiler.LiveObject" => EventKind::LiveObject,
            "profiler.Malloc" => EventKind::Malloc,
            "jdk.ActiveSetting" => EventKind::ActiveSetting,
            _ => return None,
        })
    }
}

/// The event types of one chunk that conversion reads.
fn event_types(metadata: &Metadata) -> FxHashMap<u64, (EventKind, Fields)> {
    metadata
        .classes
        .iter()
        .filter_map(|(&id, class)| {
            EventKind::from_name(&class.name).map(|kind| (id, (kind, Fields::of(class))))
        })
        .collect()
}

struct Converter<'l> {
    labels: &'l ContextLabels,
    /// Nanoseconds a CPU or wall sample stands for.
    period: i64,
    builders: Vec<SeriesBuilder>,
    event: String,
}

impl<'l> Converter<'l> {
    fn new(labels: &'l ContextLabels, sample_rate: u32) -> Self {
        Converter {
            labels,
            period: if sample_rate == 0 {
                0
            } else {
                1_000_000_000 / i64::from(sample_rate)
            },
            builders: SeriesKind::ALL
                .iter()
                .map(|&k| SeriesBuilder::new(k))
                .collect(),
            event: String::new(),
        }
    }

    fn chunk(&mut self, chunk: &Chunk<'_>) -> Result<(), JfrError> {
        let types = event_types(&chunk.metadata);
        let pools = &chunk.pools;
        let mut names = FunctionNames::default();
        chunk.events(
            |id| types.contains_key(&id),
            |id, _class, values| {
                let Some(&(kind, fields)) = types.get(&id) else {
                    return Ok(());
                };
                self.event(kind, &fields, values, pools, &mut names);
                Ok(())
            },
        )?;
        for builder in &mut self.builders {
            builder.end_chunk();
        }
        Ok(())
    }

    fn event(
        &mut self,
        kind: EventKind,
        fields: &Fields,
        values: &[Value],
        pools: &Pools,
        names: &mut FunctionNames,
    ) {
        let get = |index: Option<usize>| index.and_then(|i| values.get(i));
        let int = |index: Option<usize>| get(index).and_then(Value::as_i64).unwrap_or(0);
        if kind == EventKind::ActiveSetting {
            let text = |index| match get(index) {
                Some(Value::String(text)) => Some(text.clone()),
                Some(Value::StringRef(key) | Value::Ref(key)) => pools.strings.get(key).cloned(),
                _ => None,
            };
            if text(fields.name).as_deref() == Some("event") {
                self.event = text(fields.value).unwrap_or_default();
            }
            return;
        }
        let Some(stack_key) = get(fields.stack_trace).and_then(Value::as_ref_key) else {
            return;
        };
        let Some(stack) = pools.stack_traces.get(&stack_key) else {
            return;
        };
        let correlation = Correlation {
            context_id: int(fields.context_id),
            span_id: int(fields.span_id),
            span_name: int(fields.span_name),
        };
        let period = self.period;
        let wall_mode = self.event == "wall";
        let labels = self.labels;
        let builders = &mut self.builders;
        let mut add = |kind: SeriesKind, values: &[i64]| {
            builders[kind.index()].add(
                stack_key,
                correlation,
                values,
                || {
                    stack
                        .iter()
                        .filter_map(|frame| {
                            names.get(frame.method, pools).map(|name| ResolvedFrame {
                                name,
                                line: frame.line,
                            })
                        })
                        .collect()
                },
                || context_labels(labels, correlation),
            );
        };
        match kind {
            EventKind::ExecutionSample => {
                let state = get(fields.state)
                    .and_then(Value::as_ref_key)
                    .and_then(|key| pools.thread_state(key));
                if state.is_some_and(|s| s != "STATE_SLEEPING") {
                    add(SeriesKind::Cpu, &[period]);
                }
                if wall_mode {
                    add(SeriesKind::Wall, &[period]);
                }
            }
            EventKind::WallClockSample => {
                let samples = get(fields.samples).and_then(Value::as_i64).unwrap_or(1);
                add(SeriesKind::Wall, &[samples.saturating_mul(period)]);
            }
            EventKind::AllocationInNewTlab => {
                add(SeriesKind::AllocInNewTlab, &[1, int(fields.tlab_size)]);
            }
            EventKind::AllocationOutsideTlab => {
                add(
                    SeriesKind::AllocOutsideTlab,
                    &[1, int(fields.allocation_size)],
                );
            }
            EventKind::AllocationSample => add(SeriesKind::AllocSample, &[1, int(fields.weight)]),
            EventKind::MonitorEnter => add(SeriesKind::Lock, &[1, int(fields.duration)]),
            EventKind::ThreadPark => add(SeriesKind::ThreadPark, &[1, int(fields.duration)]),
            EventKind::LiveObject => add(SeriesKind::LiveObject, &[1]),
            EventKind::Malloc => add(SeriesKind::Malloc, &[1, int(fields.size)]),
            EventKind::ActiveSetting => {}
        }
    }

    fn finish(self, time_nanos: i64, duration_nanos: i64) -> Recording {
        let period = self.period;
        let profiles = self
            .builders
            .into_iter()
            .zip(SeriesKind::ALL)
            .filter(|(builder, _)| !builder.is_empty())
            .map(|(builder, kind)| {
                let period = match kind {
                    SeriesKind::Cpu | SeriesKind::Wall => period,
                    _ => 1,
                };
                JfrProfile {
                    metric_name: kind.metric(),
                    profile: builder.finish(time_nanos, duration_nanos, period),
                }
            })
            .collect();
        Recording {
            profiles,
            event: self.event,
        }
    }
}

/// The sample labels of a correlation: its context's labels, then `profile_id` (the span id as
/// 16 hex digits, which the server stores as `span_id`) and `span_name`.
fn context_labels(labels: &ContextLabels, correlation: Correlation) -> Vec<(String, String)> {
    let mut out = labels.get(correlation.context_id).to_vec();
    if correlation.span_id != 0 {
        out.push((
            label_names::PROFILE_ID.to_owned(),
            format!("{:016x}", correlation.span_id as u64),
        ));
    }
    if correlation.span_name != 0
        && let Some(name) = labels.string(correlation.span_name)
    {
        out.push(("span_name".to_owned(), name.to_owned()));
    }
    out
}

/// Function names of one chunk's methods, resolved once each.
#[derive(Default)]
struct FunctionNames {
    names: FxHashMap<u64, Option<Rc<str>>>,
}

impl FunctionNames {
    fn get(&mut self, method: u64, pools: &Pools) -> Option<Rc<str>> {
        self.names
            .entry(method)
            .or_insert_with(|| {
                let method = pools.methods.get(&method)?;
                let class = pools.class_name(method.class?)?;
                let name = pools.symbol(method.name?)?;
                Some(Rc::from(symbols::frame_name(
                    &symbols::normalize(class),
                    &symbols::normalize(name),
                )))
            })
            .clone()
    }
}
