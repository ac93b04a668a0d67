//! Speedscope JSON (<https://www.speedscope.app/file-format-schema.json>) read as Pyroscope's
//! `pkg/og/convert/speedscope` reads it.
//!
//! * `$schema` must be the schema URL. Profiles with the same (name, type, unit, start value)
//!   are merged (samples, weights and events appended), then ordered by start value.
//! * `sampled`: each sample is a list of frame indices, root first, weighted by `weights[i]`.
//! * `evented`: `O`/`C` events open and close frames; the time up to each event goes to the
//!   stack open before it. Times must not decrease and a close must match the innermost open.
//! * Values: a weight or time is truncated to an integer, then multiplied by 100 (1 for
//!   `bytes`). As in Pyroscope, the time up to an *open* event is not multiplied.
//! * The sample rate, when the request left it at 100, becomes the unit's: `none` 10 000,
//!   `seconds` 100, `milliseconds` 10⁵, `microseconds` 10⁸, `nanoseconds` 10¹¹ computed in 32
//!   bits (1 215 752 192, so its period is 0 and Pyroscope stores zeros), `bytes` 0.
//!
//! Go reads JSON more loosely (key case ignored, `null` anywhere a zero, invalid UTF-8
//! replaced); here keys are exact, `null` is accepted for fields but not inside arrays, and
//! other fields than those used are not checked.

use super::stacks::{ROOT, StackTree};
use super::{TextError, TextLimits};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Deserializer};

const SCHEMA: &str = "https://www.speedscope.app/file-format-schema.json";
/// How much precision Pyroscope means to keep when it makes values integers.
const PRECISION: u32 = 100;

#[derive(Debug, Deserialize)]
struct File {
    #[serde(rename = "$schema")]
    schema: Option<String>,
    shared: Option<Shared>,
    profiles: Option<Vec<RawProfile>>,
}

#[derive(Debug, Deserialize)]
struct Shared {
    frames: Option<Vec<Frame>>,
}

#[derive(Debug, Deserialize)]
struct Frame {
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawProfile {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    unit: Option<String>,
    start_value: Option<f64>,
    events: Option<Vec<Event>>,
    samples: Option<Vec<Vec<f64>>>,
    weights: Option<Vec<f64>>,
}

#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "type", default)]
    kind: EventKind,
    #[serde(default, deserialize_with = "zero_if_null")]
    at: f64,
    #[serde(default, deserialize_with = "zero_if_null")]
    frame: f64,
}

#[derive(Debug, Default)]
enum EventKind {
    Open,
    Close,
    #[default]
    Missing,
    Other(Box<str>),
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(
            match Option::<String>::deserialize(deserializer)?.as_deref() {
                Some("O") => EventKind::Open,
                Some("C") => EventKind::Close,
                None | Some("") => EventKind::Missing,
                Some(other) => EventKind::Other(other.into()),
            },
        )
    }
}

fn zero_if_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or_default())
}

/// The units Pyroscope knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    None,
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
    Bytes,
}

impl Unit {
    fn parse(unit: &str) -> Result<Unit, TextError> {
        Ok(match unit {
            "none" => Unit::None,
            "nanoseconds" => Unit::Nanoseconds,
            "microseconds" => Unit::Microseconds,
            "milliseconds" => Unit::Milliseconds,
            "seconds" => Unit::Seconds,
            "bytes" => Unit::Bytes,
            other => return Err(TextError::UnknownUnit(other.to_owned())),
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Unit::None => "none",
            Unit::Nanoseconds => "nanoseconds",
            Unit::Microseconds => "microseconds",
            Unit::Milliseconds => "milliseconds",
            Unit::Seconds => "seconds",
            Unit::Bytes => "bytes",
        }
    }

    /// Computed in 32 bits with wraparound, as Go computes it.
    fn default_sample_rate(self) -> u32 {
        match self {
            Unit::Nanoseconds => PRECISION.wrapping_mul(1_000_000_000),
            Unit::Microseconds => PRECISION.wrapping_mul(1_000_000),
            Unit::Milliseconds => PRECISION.wrapping_mul(1_000),
            Unit::Seconds => PRECISION,
            Unit::None => PRECISION.wrapping_mul(100),
            Unit::Bytes => 0,
        }
    }

    fn multiplier(self) -> u64 {
        match self {
            Unit::Bytes => 1,
            _ => u64::from(PRECISION),
        }
    }
}

/// One (merged) speedscope profile, read.
#[derive(Debug)]
pub(crate) struct Parsed {
    /// The profile's `name`: the `profile_name` label.
    pub name: String,
    pub unit: Unit,
    pub sample_rate: u32,
    pub tree: StackTree,
}

/// The profiles of a speedscope file, in Pyroscope's order.
#[derive(Debug)]
pub(crate) struct SpeedscopeFile {
    pub profiles: Vec<Parsed>,
}

/// Reads a speedscope file; `sample_rate` is the request's. The limits hold for all profiles
/// together.
pub(crate) fn parse(
    body: &[u8],
    sample_rate: u32,
    limits: TextLimits,
) -> Result<SpeedscopeFile, TextError> {
    let file: File = serde_json::from_slice(body)?;
    let schema = file.schema.unwrap_or_default();
    if schema != SCHEMA {
        return Err(TextError::UnknownSchema(schema));
    }
    let frames = file.shared.and_then(|s| s.frames).unwrap_or_default();
    let mut limits = limits;
    let mut profiles = Vec::new();
    for raw in merge(file.profiles.unwrap_or_default()) {
        let unit_name = raw.unit.as_deref().unwrap_or_default();
        // Pyroscope cannot tell a default rate from an explicit 100.
        let rate = if sample_rate == crate::text::DEFAULT_SAMPLE_RATE {
            Unit::parse(unit_name)?.default_sample_rate()
        } else {
            sample_rate
        };
        let mut tree = StackTree::new(limits);
        let mut names = FrameNames::new(&frames);
        let unit = match raw.kind.as_deref().unwrap_or_default() {
            "evented" => {
                let unit = Unit::parse(unit_name)?;
                let events = raw.events.unwrap_or_default();
                let start = raw.start_value.unwrap_or_default();
                parse_evented(&mut tree, &mut names, &events, start, unit.multiplier())?;
                unit
            }
            "sampled" => {
                let unit = Unit::parse(unit_name)?;
                let samples = raw.samples.unwrap_or_default();
                let weights = raw.weights.unwrap_or_default();
                parse_sampled(&mut tree, &mut names, &samples, &weights, unit.multiplier())?;
                unit
            }
            other => return Err(TextError::UnsupportedProfileType(other.to_owned())),
        };
        limits = tree.remaining_limits();
        profiles.push(Parsed {
            name: raw.name.unwrap_or_default(),
            unit,
            sample_rate: rate,
            tree,
        });
    }
    Ok(SpeedscopeFile { profiles })
}

/// Merges profiles with the same (name, type, unit, start value), keeping the first one's
/// place, and sorts them by start value.
fn merge(profiles: Vec<RawProfile>) -> Vec<RawProfile> {
    let mut merged: Vec<RawProfile> = Vec::new();
    // (name, type, unit, start value bits) → place in `merged`.
    let mut index: FxHashMap<(String, String, String, u64), usize> = FxHashMap::default();
    for profile in profiles {
        let start = profile.start_value.unwrap_or_default();
        // 0.0 and -0.0 are one key, as in Go.
        let start_bits = if start == 0.0 { 0 } else { start.to_bits() };
        let key = (
            profile.name.clone().unwrap_or_default(),
            profile.kind.clone().unwrap_or_default(),
            profile.unit.clone().unwrap_or_default(),
            start_bits,
        );
        match index.get(&key).and_then(|&at| merged.get_mut(at)) {
            Some(into) => {
                append(&mut into.samples, profile.samples);
                append(&mut into.events, profile.events);
                append(&mut into.weights, profile.weights);
            }
            None => {
                index.insert(key, merged.len());
                merged.push(profile);
            }
        }
    }
    merged.sort_by(|a, b| {
        let (a, b) = (
            a.start_value.unwrap_or_default(),
            b.start_value.unwrap_or_default(),
        );
        a.total_cmp(&b)
    });
    merged
}

fn append<T>(into: &mut Option<Vec<T>>, from: Option<Vec<T>>) {
    if let Some(mut from) = from {
        into.get_or_insert_with(Vec::new).append(&mut from);
    }
}

/// Name ids of the shared frames, interned in one tree as they are first used.
struct FrameNames<'a> {
    frames: &'a [Frame],
    ids: FxHashMap<usize, u32>,
}

impl<'a> FrameNames<'a> {
    fn new(frames: &'a [Frame]) -> Self {
        FrameNames {
            frames,
            ids: FxHashMap::default(),
        }
    }

    /// The name id of frame `index` (Go's `int(f)` truncates), or `InvalidFrame`.
    fn id(&mut self, tree: &mut StackTree, index: f64) -> Result<u32, TextError> {
        let index = index as i64;
        let invalid = TextError::InvalidFrame(index);
        let at = usize::try_from(index).map_err(|_| invalid)?;
        if let Some(&id) = self.ids.get(&at) {
            return Ok(id);
        }
        let Some(frame) = self.frames.get(at) else {
            return Err(TextError::InvalidFrame(index));
        };
        let id = tree.intern(frame.name.as_deref().unwrap_or_default().as_bytes())?;
        self.ids.insert(at, id);
        Ok(id)
    }
}

/// Go's `uint64(x)` for the non-negative times and weights it converts.
fn to_u64(x: f64) -> u64 {
    x as u64
}

fn parse_evented(
    tree: &mut StackTree,
    names: &mut FrameNames<'_>,
    events: &[Event],
    start: f64,
    multiplier: u64,
) -> Result<(), TextError> {
    let mut last = start;
    // Open frames: index as given and tree node of the stack up to it.
    let mut open: Vec<(i64, u32)> = Vec::new();
    for event in events {
        let at = event.at;
        if at < last {
            return Err(TextError::EventsOutOfOrder { at, last });
        }
        let frame = event.frame as i64;
        let name = names.id(tree, event.frame)?;
        match &event.kind {
            EventKind::Close => {
                let Some(&(top, node)) = open.last() else {
                    return Err(TextError::NothingToClose(at));
                };
                if top != frame {
                    return Err(TextError::CloseNotOpen(frame));
                }
                let value = to_u64(at - last).wrapping_mul(multiplier);
                tree.add(node, value as i64)?;
                open.pop();
            }
            EventKind::Open => {
                let parent = match open.last() {
                    Some(&(_, node)) => {
                        // Pyroscope adds the time before an open without the multiplier.
                        tree.add(node, to_u64(at - last) as i64)?;
                        node
                    }
                    None => ROOT,
                };
                open.push((frame, tree.child_named(parent, name)?));
            }
            EventKind::Missing => return Err(TextError::UnknownEventType(String::new())),
            EventKind::Other(kind) => return Err(TextError::UnknownEventType(kind.to_string())),
        }
        last = at;
    }
    Ok(())
}

fn parse_sampled(
    tree: &mut StackTree,
    names: &mut FrameNames<'_>,
    samples: &[Vec<f64>],
    weights: &[f64],
    multiplier: u64,
) -> Result<(), TextError> {
    if samples.len() != weights.len() {
        return Err(TextError::WeightsMismatch {
            samples: samples.len(),
            weights: weights.len(),
        });
    }
    for (sample, &weight) in samples.iter().zip(weights) {
        if weight < 0.0 {
            return Err(TextError::NegativeWeight(weight));
        }
        let mut node = ROOT;
        for &frame in sample {
            // Go checks `fid > len` and then panics on `fid == len`; both are errors here.
            let name = names.id(tree, frame)?;
            node = tree.child_named(node, name)?;
        }
        let value = to_u64(weight).wrapping_mul(multiplier);
        tree.add(node, value as i64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata_file(name: &str) -> Vec<u8> {
        testkit::read_testdata(&format!("speedscope/{name}"))
    }

    fn read(body: &[u8]) -> Result<Vec<(String, String, u32)>, TextError> {
        let file = parse(body, 100, TextLimits::default())?;
        Ok(file
            .profiles
            .iter()
            .map(|p| (p.name.clone(), p.tree.collapsed(), p.sample_rate))
            .collect())
    }

    const EXPECTED: &str = "a;b 500\na;b;c 500\na;b;d 400\n";

    #[test]
    fn pyroscope_expected_results() {
        let simple = read(&testdata_file("simple.speedscope.json")).expect("simple");
        assert_eq!(
            simple,
            [("simple.txt".to_owned(), EXPECTED.to_owned(), 10_000)]
        );

        let two = read(&testdata_file("two-sampled.speedscope.json")).expect("two");
        assert_eq!(
            two,
            [
                ("one".to_owned(), EXPECTED.to_owned(), 100),
                ("two".to_owned(), EXPECTED.to_owned(), 100),
            ]
        );

        let bytes = read(&testdata_file("two-sampled-bytes.speedscope.json")).expect("bytes");
        let weights = "a;b 5\na;b;c 5\na;b;d 4\n".to_owned();
        assert_eq!(
            bytes,
            [
                ("one".to_owned(), weights.clone(), 0),
                ("two".to_owned(), weights, 0),
            ]
        );

        let duplicates = read(&testdata_file("duplicates.speedscope.json")).expect("duplicates");
        assert_eq!(
            duplicates,
            [(
                "one".to_owned(),
                "a;b 1500\na;b;c 1500\na;b;d 1200\n".to_owned(),
                100
            )]
        );
    }

    fn one_profile(profile: &str) -> String {
        format!(
            r#"{{"$schema":"{SCHEMA}","shared":{{"frames":[{{"name":"a"}},{{"name":"b"}},{{"name":"a"}}]}},"profiles":[{profile}]}}"#
        )
    }

    fn error(body: &str) -> String {
        read(body.as_bytes()).expect_err(body).to_string()
    }

    #[test]
    fn errors_carry_pyroscope_messages() {
        assert_eq!(error(r#"{"$schema":"x"}"#), "Unknown schema: x");
        assert!(error("[1]").starts_with("speedscope JSON: "));
        let cases = [
            (
                r#"{"type":"sampled","unit":"parsecs","samples":[],"weights":[]}"#,
                "invalid profile unit: unknown unit parsecs",
            ),
            (
                r#"{"type":"flat","unit":"none"}"#,
                "Profile type flat not supported",
            ),
            (
                r#"{"type":"sampled","unit":"none","samples":[[0]],"weights":[]}"#,
                "Unequal lengths of samples and weights: 1 != 0",
            ),
            (
                r#"{"type":"sampled","unit":"none","samples":[[0]],"weights":[-1]}"#,
                "Negative weight -1.000000",
            ),
            (
                r#"{"type":"sampled","unit":"none","samples":[[3]],"weights":[1]}"#,
                "Invalid frame 3",
            ),
            (
                r#"{"type":"sampled","unit":"none","samples":[[-2]],"weights":[1]}"#,
                "Invalid frame -2",
            ),
            (
                r#"{"type":"evented","unit":"none","events":[{"type":"O","frame":0,"at":2},{"type":"C","frame":0,"at":1}]}"#,
                "Events out of order, 1.000000 < 2.000000",
            ),
            (
                r#"{"type":"evented","unit":"none","events":[{"type":"C","frame":0,"at":1}]}"#,
                "No stack to close at 1.000000",
            ),
            (
                r#"{"type":"evented","unit":"none","events":[{"type":"O","frame":0},{"type":"C","frame":1}]}"#,
                "Closing non-open frame 1",
            ),
            (
                r#"{"type":"evented","unit":"none","events":[{"type":"X","frame":0}]}"#,
                "Unknown event type X",
            ),
        ];
        for (profile, message) in cases {
            assert_eq!(error(&one_profile(profile)), message, "{profile}");
        }
    }

    #[test]
    fn frames_merge_by_name_and_values_truncate() {
        // Frames 0 and 2 are both "a"; weights are truncated before the multiplier.
        let body = one_profile(
            r#"{"type":"sampled","unit":"milliseconds","samples":[[0,1],[2,1.9],[0]],"weights":[1.9,2,0.5]}"#,
        );
        let read = read(body.as_bytes()).expect("valid");
        assert_eq!(read, [(String::new(), "a;b 300\n".to_owned(), 100_000)]);
    }

    #[test]
    fn open_events_add_unscaled_time() {
        // a from 0 to 10, b from 4 to 6: a gets 4 (unscaled) + 400, b gets 200.
        let body = one_profile(
            r#"{"type":"evented","unit":"seconds","startValue":0,"events":[
                {"type":"O","frame":0,"at":0},{"type":"O","frame":1,"at":4},
                {"type":"C","frame":1,"at":6},{"type":"C","frame":0,"at":10}]}"#,
        );
        let read = read(body.as_bytes()).expect("valid");
        assert_eq!(read, [(String::new(), "a 404\na;b 200\n".to_owned(), 100)]);
    }

    #[test]
    fn sample_rates_follow_the_unit_only_by_default() {
        let profile = |unit: &str| {
            one_profile(&format!(
                r#"{{"type":"sampled","unit":"{unit}","samples":[],"weights":[]}}"#
            ))
        };
        for (unit, rate) in [
            ("none", 10_000),
            ("seconds", 100),
            ("milliseconds", 100_000),
            ("microseconds", 100_000_000),
            ("nanoseconds", 1_215_752_192),
            ("bytes", 0),
        ] {
            let file = parse(profile(unit).as_bytes(), 100, TextLimits::default()).expect(unit);
            assert_eq!(file.profiles[0].sample_rate, rate, "{unit}");
            let file = parse(profile(unit).as_bytes(), 7, TextLimits::default()).expect(unit);
            assert_eq!(file.profiles[0].sample_rate, 7, "{unit}");
        }
    }

    #[test]
    fn merged_evented_profiles_restart_their_clock() {
        // Appending the second profile's events makes time go back, as in Pyroscope.
        let evented = r#"{"type":"evented","name":"p","unit":"none","events":[{"type":"O","frame":0,"at":0},{"type":"C","frame":0,"at":5}]}"#;
        let body = one_profile(&format!("{evented},{evented}"));
        assert_eq!(error(&body), "Events out of order, 0.000000 < 5.000000");
    }

    #[test]
    fn profiles_are_ordered_by_start_value() {
        let body = one_profile(
            r#"{"type":"sampled","name":"late","unit":"bytes","startValue":5,"samples":[[0]],"weights":[1]},
               {"type":"sampled","name":"early","unit":"bytes","startValue":1,"samples":[[1]],"weights":[2]}"#,
        );
        let names: Vec<String> = read(body.as_bytes())
            .expect("valid")
            .into_iter()
            .map(|(name, _, _)| name)
            .collect();
        assert_eq!(names, ["early", "late"]);
    }

    #[test]
    fn limits_hold_across_profiles() {
        let profile = r#"{"type":"sampled","unit":"none","samples":[[0,1]],"weights":[1]}"#;
        let body = one_profile(&format!("{profile},{}", profile.replace("none", "bytes")));
        let limits = TextLimits {
            max_nodes: 3,
            ..TextLimits::default()
        };
        let err = parse(body.as_bytes(), 100, limits).expect_err("4 nodes");
        assert!(matches!(err, TextError::TooManyNodes { limit: 1 }), "{err}");
    }
}
