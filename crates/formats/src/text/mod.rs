//! The legacy text and binary bodies of Pyroscope's `/ingest` (`api.md` §2.1) turned into pprof
//! profiles, so that they take the same write path as a pushed pprof: folded ("groups") text,
//! one stack per line ("lines"), the transport trie, the "NoDict" tree and speedscope JSON.
//!
//! Each body is read into a stack tree (`stacks.rs`) that merges equal stacks the way
//! Pyroscope's legacy tree does (frames split at `;`, values added with 64-bit wraparound),
//! then the type suffix of the app name chooses `__name__`, the sample type and the period
//! (`metadata.rs`, Pyroscope's `convertMetadata`), and the tree becomes one pprof with one
//! sample type ([`TextProfile`]).
//! Speedscope bodies give one profile per (merged) speedscope profile.
//!
//! What this module does not do: labels other than those a body carries (`profile_name`), the
//! `profile_id` rule and the push itself belong to the server; no I/O. Every size that comes
//! from the body is checked against what is left of it, and [`TextLimits`] bound the memory a
//! small body can make us use (a trie or tree repeats its prefixes once per stack).
//!
//! Main entry points: [`convert`] and [`TextFormat::select`].

mod binary;
mod folded;
mod metadata;
mod speedscope;
mod stacks;
#[cfg(test)]
mod tests;

use crate::pprof::Profile;
use model::LabelPair;

pub use metadata::UNKNOWN_PROFILE_TYPE;

/// The `sampleRate` Pyroscope assumes when the request has none (or an unparsable one).
pub const DEFAULT_SAMPLE_RATE: u32 = 100;

/// The body formats of `/ingest` that this module reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextFormat {
    /// `stack count` per line, split at the last space (`format` absent, `folded`, `groups`, …).
    Folded,
    /// One stack per line, each counting 1 (`format=lines`).
    Lines,
    /// Pyroscope's transport trie (`format=trie` or `Content-Type: binary/octet-stream+trie`).
    Trie,
    /// Pyroscope's legacy "NoDict" tree (`format=tree` or `binary/octet-stream+tree`).
    Tree,
    /// Speedscope JSON (`format=speedscope`).
    Speedscope,
}

impl TextFormat {
    /// Every format, for tests and fuzzing.
    pub const ALL: [TextFormat; 5] = [
        TextFormat::Folded,
        TextFormat::Lines,
        TextFormat::Trie,
        TextFormat::Tree,
        TextFormat::Speedscope,
    ];

    /// The format Pyroscope's `readInputRawDataFromRequest` picks for the `format` query value
    /// (empty when absent) and the `Content-Type` header (empty when absent), in its order:
    /// trie, tree, lines, then `jfr` and `pprof` (not text: `None`), speedscope, then a
    /// multipart body (pprof form: `None`), and folded for everything else.
    pub fn select(format: &str, content_type: &str) -> Option<TextFormat> {
        if format == "trie" || content_type == "binary/octet-stream+trie" {
            return Some(TextFormat::Trie);
        }
        if format == "tree" || content_type == "binary/octet-stream+tree" {
            return Some(TextFormat::Tree);
        }
        match format {
            "lines" => Some(TextFormat::Lines),
            "jfr" | "pprof" => None,
            "speedscope" => Some(TextFormat::Speedscope),
            _ if content_type.contains("multipart/form-data") => None,
            _ => Some(TextFormat::Folded),
        }
    }
}

/// Bounds on what one body may expand to. A folded body holds every frame it yields, but a trie
/// or tree shares prefixes and a speedscope event repeats its open stack, so a small body can
/// stand for a very large profile; past these limits conversion fails with an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextLimits {
    /// Distinct stack prefixes (nodes of the merged stack tree), over all profiles of a body.
    pub max_nodes: usize,
    /// Location references of the resulting samples (the sum of their stack depths), over all
    /// profiles of a body. Pyroscope refuses pprofs over 4 MiB by default, and each reference
    /// takes at least a byte, so the default refuses nothing Pyroscope would keep.
    pub max_sample_frames: usize,
    /// Bytes of frame names looked up while expanding a trie or tree body (each stack's
    /// shared prefix is read again for every stack under it).
    pub max_expansion_bytes: usize,
}

impl Default for TextLimits {
    fn default() -> Self {
        TextLimits {
            max_nodes: 4 << 20,
            max_sample_frames: 16 << 20,
            max_expansion_bytes: 256 << 20,
        }
    }
}

/// One `/ingest` request body in a text format, with the metadata its conversion needs.
#[derive(Debug, Clone, Copy)]
pub struct TextInput<'a> {
    pub format: TextFormat,
    /// The request body, already decompressed.
    pub body: &'a [u8],
    /// The app part of the `name` query parameter (before `{`), e.g. `app.cpu`.
    pub app_name: &'a str,
    /// `sampleRate`; [`DEFAULT_SAMPLE_RATE`] when the request has none.
    pub sample_rate: u32,
    /// The request's `from`, in nanoseconds since the epoch: the pprof `time_nanos`.
    pub start_time_nanos: i64,
    pub limits: TextLimits,
}

impl<'a> TextInput<'a> {
    /// An input with Pyroscope's defaults: sample rate 100, start time 0, default limits.
    pub fn new(format: TextFormat, body: &'a [u8], app_name: &'a str) -> Self {
        TextInput {
            format,
            body,
            app_name,
            sample_rate: DEFAULT_SAMPLE_RATE,
            start_time_nanos: 0,
            limits: TextLimits::default(),
        }
    }
}

/// One converted profile and the series labels the body decides.
#[derive(Debug, Clone, PartialEq)]
pub struct TextProfile {
    /// One sample type; functions and locations one per frame name; `time_nanos` the start
    /// time; `period_type`/`period` set for CPU and wall profiles with a sample rate.
    pub profile: Profile,
    /// The `__name__` label: `process_cpu`, `wall`, `memory`, `goroutine`, `mutex`, `block` or
    /// `exceptions`.
    pub metric_name: String,
    /// The app name without its type suffix: `service_name` (or `app_name` when the request
    /// labels already have a `service_name`).
    pub service_name: String,
    /// Labels the body sets (speedscope: `profile_name`), applied over the request's labels
    /// as Pyroscope's `LabelSet.Add` applies them: a value replaces the request's label of
    /// that name, an empty value removes it.
    pub labels: Vec<LabelPair>,
    /// The sample rate used for the period (speedscope replaces the default 100 by its unit's).
    pub sample_rate: u32,
}

/// Why a body could not be converted. Messages follow Pyroscope's where it has one.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    #[error("line {line}: sample count {count:?} is not an integer")]
    BadCount { line: usize, count: String },
    #[error("{format} body ends inside a node at byte {offset}")]
    Truncated { format: &'static str, offset: usize },
    #[error("{format} body has a varint longer than 64 bits at byte {offset}")]
    VarintOverflow { format: &'static str, offset: usize },
    #[error("frame name {name:?} is not valid UTF-8")]
    InvalidUtf8 { name: String },
    #[error("{UNKNOWN_PROFILE_TYPE}: {0}")]
    UnknownProfileType(String),
    #[error("speedscope JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("Unknown schema: {0}")]
    UnknownSchema(String),
    #[error("invalid profile unit: unknown unit {0}")]
    UnknownUnit(String),
    #[error("Profile type {0} not supported")]
    UnsupportedProfileType(String),
    #[error("Events out of order, {at:.6} < {last:.6}")]
    EventsOutOfOrder { at: f64, last: f64 },
    #[error("Invalid frame {0}")]
    InvalidFrame(i64),
    #[error("No stack to close at {0:.6}")]
    NothingToClose(f64),
    #[error("Closing non-open frame {0}")]
    CloseNotOpen(i64),
    #[error("Unknown event type {0}")]
    UnknownEventType(String),
    #[error("Unequal lengths of samples and weights: {samples} != {weights}")]
    WeightsMismatch { samples: usize, weights: usize },
    #[error("Negative weight {0:.6}")]
    NegativeWeight(f64),
    #[error("the profile has more than {limit} distinct stack prefixes")]
    TooManyNodes { limit: usize },
    #[error("the profile's samples have more than {limit} frames in all")]
    TooManySampleFrames { limit: usize },
    #[error("the body expands to more than {limit} bytes of frame names")]
    ExpansionLimit { limit: usize },
}

/// Converts one `/ingest` body into pprof profiles: one for the text and binary formats, one
/// per merged speedscope profile (none for a speedscope file without profiles).
///
/// The body is read first, then the app name's suffix is resolved (so a malformed body is
/// reported before an unknown type, as Pyroscope does). Values keep Pyroscope's 64-bit
/// wraparound; stacks whose values sum to zero are dropped.
pub fn convert(input: TextInput<'_>) -> Result<Vec<TextProfile>, TextError> {
    let mut tree = stacks::StackTree::new(input.limits);
    match input.format {
        TextFormat::Folded => folded::parse_folded(input.body, &mut tree)?,
        TextFormat::Lines => folded::parse_lines(input.body, &mut tree)?,
        TextFormat::Trie => binary::parse_trie(input.body, &mut tree)?,
        TextFormat::Tree => binary::parse_tree(input.body, &mut tree)?,
        TextFormat::Speedscope => return convert_speedscope(input),
    }
    let profile = build(input.app_name, input.sample_rate, input, tree, Vec::new())?;
    Ok(vec![profile])
}

fn convert_speedscope(input: TextInput<'_>) -> Result<Vec<TextProfile>, TextError> {
    let file = speedscope::parse(input.body, input.sample_rate, input.limits)?;
    let multi = file.profiles.len() > 1;
    let mut out = Vec::with_capacity(file.profiles.len());
    for parsed in file.profiles {
        // Several profiles in one file are told apart by their unit: `app.seconds`.
        let app_name = if multi {
            format!("{}.{}", input.app_name, parsed.unit.as_str())
        } else {
            input.app_name.to_owned()
        };
        let labels = vec![LabelPair::new("profile_name", parsed.name)];
        out.push(build(
            &app_name,
            parsed.sample_rate,
            input,
            parsed.tree,
            labels,
        )?);
    }
    Ok(out)
}

/// Pyroscope's `ingest_adapter.go:Put` for one tree: metadata from the app name, scaling of
/// CPU and wall values by the period, and the pprof.
fn build(
    app_name: &str,
    sample_rate: u32,
    input: TextInput<'_>,
    mut tree: stacks::StackTree,
    labels: Vec<LabelPair>,
) -> Result<TextProfile, TextError> {
    let meta = metadata::resolve(app_name, sample_rate)?;
    if let Some(factor) = meta.scale {
        tree.scale(factor);
    }
    let profile = tree.to_pprof(&stacks::PprofMeta {
        sample_type: meta.sample_type,
        sample_unit: meta.sample_unit,
        period: meta.period,
        time_nanos: input.start_time_nanos,
    })?;
    Ok(TextProfile {
        profile,
        metric_name: meta.metric.to_owned(),
        service_name: meta.service_name,
        labels,
        sample_rate,
    })
}
