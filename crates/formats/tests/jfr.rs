//! JFR conversion against Pyroscope's goldens: every recording of `testdata/jfr` converts to
//! profiles whose stacks equal the expected `*.pb.gz` beside it (the goldens without query
//! labels; those selecting one `thread_name` are checked through the server), and broken
//! recordings are errors, never panics.

use formats::jfr::{self, JfrError, JfrInput, JfrLimits};
use formats::pprof::{self, Profile};
use prost::Message as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use testkit::testdata;

/// The golden of no query labels (`xxhash64` of the empty label set).
const NO_LABELS: &str = "17241709254077376921";

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn convert(name: &str) -> jfr::Recording {
    let dir = testdata("jfr");
    let body = read(&dir.join(format!("{name}.jfr.gz")));
    let labels_path = dir.join(format!("{name}.labels.pb.gz"));
    let labels = labels_path.exists().then(|| read(&labels_path));
    jfr::convert(JfrInput {
        body: &body,
        labels: labels.as_deref(),
        sample_rate: jfr::DEFAULT_SAMPLE_RATE,
        start_time_nanos: 1_700_000_000_000_000_000,
        duration_nanos: 10_000_000_000,
        limits: JfrLimits::default(),
    })
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn string(profile: &Profile, index: i64) -> &str {
    profile
        .string_table
        .get(index as usize)
        .map_or("", String::as_str)
}

/// `name:type:unit:period_type:period_unit` of each sample type, with ':' as '_' (as the
/// golden file names write them).
fn type_ids(metric: &str, profile: &Profile) -> Vec<String> {
    let period = profile.period_type.unwrap_or_default();
    profile
        .sample_type
        .iter()
        .map(|t| {
            format!(
                "{metric}_{}_{}_{}_{}",
                string(profile, t.r#type),
                string(profile, t.unit),
                string(profile, period.r#type),
                string(profile, period.unit)
            )
        })
        .collect()
}

fn collapsed(profile: &Profile, index: usize) -> String {
    model::write_collapsed(&pprof::to_tree(profile, index))
}

/// Golden files by recording: (profile type with '_', path), for the no-label goldens.
fn goldens() -> BTreeMap<String, Vec<(String, PathBuf)>> {
    testkit::jfr_goldens()
        .into_iter()
        .map(|(recording, goldens)| {
            let no_labels = goldens
                .into_iter()
                .filter(|(_, hash, _)| hash.to_string() == NO_LABELS)
                .map(|(kind, _, path)| (kind, path))
                .collect();
            (recording, no_labels)
        })
        .collect()
}

#[test]
fn every_recording_reproduces_its_goldens() {
    let goldens = goldens();
    assert!(goldens.len() >= 8, "JFR goldens missing: {goldens:?}");
    let mut compared = 0;
    for (recording, expected) in &goldens {
        let converted = convert(recording);
        let mut produced = BTreeMap::new();
        for p in &converted.profiles {
            for (index, id) in type_ids(p.metric_name, &p.profile).into_iter().enumerate() {
                produced.insert(id, collapsed(&p.profile, index));
            }
        }
        for (kind, path) in expected {
            let golden = pprof::decode(&read(path), pprof::DEFAULT_MAX_DECOMPRESSED_BYTES)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let want = collapsed(&golden, 0);
            let got = produced.get(kind).unwrap_or_else(|| {
                panic!(
                    "{recording}: no {kind} profile (have {:?})",
                    produced.keys()
                )
            });
            if *got != want {
                let diff: Vec<_> = want.lines().filter(|l| !got.contains(l)).take(5).collect();
                panic!(
                    "{recording} {kind}: stacks differ; first expected lines missing: {diff:#?}"
                );
            }
            compared += 1;
        }
        // Nothing beyond the goldens: every produced series has one.
        for kind in produced.keys() {
            assert!(
                expected.iter().any(|(k, _)| k == kind),
                "{recording}: {kind} has no golden"
            );
        }
    }
    assert!(compared >= 20, "only {compared} goldens compared");
}

fn input(body: &[u8]) -> JfrInput<'_> {
    JfrInput {
        body,
        labels: None,
        sample_rate: jfr::DEFAULT_SAMPLE_RATE,
        start_time_nanos: 0,
        duration_nanos: 0,
        limits: JfrLimits::default(),
    }
}

fn raw(name: &str) -> Vec<u8> {
    let gz = read(&testdata("jfr").join(format!("{name}.jfr.gz")));
    formats::compression::decompress(&gz, 1 << 30)
        .expect("gzip")
        .into_owned()
}

fn totals(recording: &jfr::Recording) -> BTreeMap<String, Vec<i64>> {
    recording
        .profiles
        .iter()
        .flat_map(|p| {
            type_ids(p.metric_name, &p.profile)
                .into_iter()
                .enumerate()
                .map(|(i, id)| {
                    let values = p.profile.sample.iter().map(|s| s.value[i]).collect();
                    (id, values)
                })
                .collect::<Vec<_>>()
        })
        .map(|(id, values): (String, Vec<i64>)| (id, vec![values.iter().sum()]))
        .collect()
}

#[test]
fn chunks_back_to_back_add_up() {
    let one = raw("cortex-dev-01__kafka-0__cpu_lock_alloc__0");
    let mut two = one.clone();
    two.extend_from_slice(&one);
    let (once, twice) = (
        jfr::convert(input(&one)).expect("one chunk"),
        jfr::convert(input(&two)).expect("two chunks"),
    );
    let (once_totals, twice_totals) = (totals(&once), totals(&twice));
    assert_eq!(
        once_totals.keys().collect::<Vec<_>>(),
        twice_totals.keys().collect::<Vec<_>>()
    );
    for (id, total) in &once_totals {
        assert!(total[0] > 0, "{id}");
        assert_eq!(twice_totals[id][0], total[0] * 2, "{id}");
    }
    // Same stacks: the second chunk's pools are read afresh and name the same functions.
    // The stacks of the second chunk add into the samples of the first: memory follows the
    // distinct stacks, not the number of chunks.
    for (a, b) in once.profiles.iter().zip(&twice.profiles) {
        assert_eq!(a.profile.function.len(), b.profile.function.len());
        assert_eq!(a.profile.sample.len(), b.profile.sample.len());
    }
    assert_eq!(once.event, "cpu");
}

#[test]
fn context_labels_become_sample_labels() {
    let with = convert("dump1");
    let cpu = &with.profiles[0].profile;
    assert_eq!(with.profiles[0].metric_name, "process_cpu");
    assert_eq!(with.event, "itimer");
    let threads: std::collections::BTreeSet<&str> = cpu
        .sample
        .iter()
        .flat_map(|s| &s.label)
        .filter(|l| string(cpu, l.key) == "thread_name")
        .map(|l| string(cpu, l.str))
        .collect();
    assert!(threads.len() >= 4, "{threads:?}");
    assert!(threads.iter().all(|t| t.starts_with("pool-2-thread-")));
    // Without the labels field, the same samples carry no labels.
    let without = jfr::convert(input(&raw("dump1"))).expect("dump1");
    assert!(
        without.profiles[0]
            .profile
            .sample
            .iter()
            .all(|s| s.label.is_empty())
    );
    assert_eq!(totals(&with), totals(&without));
}

#[test]
fn labels_that_are_not_a_snapshot_are_an_error() {
    let body = raw("dump1");
    let mut bad = input(&body);
    bad.labels = Some(b"\x0a\xff\xff\xff");
    assert!(matches!(jfr::convert(bad), Err(JfrError::Labels(_))));
}

#[test]
fn sample_rate_sets_the_weight_of_a_cpu_sample() {
    let body = raw("cortex-dev-01__kafka-0__cpu__0");
    let at = |rate: u32| {
        let mut i = input(&body);
        i.sample_rate = rate;
        let recording = jfr::convert(i).expect("valid");
        let cpu = &recording.profiles[0].profile;
        (
            cpu.period,
            cpu.sample.iter().map(|s| s.value[0]).sum::<i64>(),
        )
    };
    let (period_100, total_100) = at(100);
    let (period_1000, total_1000) = at(1000);
    assert_eq!((period_100, period_1000), (10_000_000, 1_000_000));
    assert_eq!(total_100, total_1000 * 10);
}

#[test]
fn broken_recordings_are_errors_never_panics() {
    let body = raw("cortex-dev-01__kafka-0__cpu__0");
    let mut zeroed = body.clone();
    zeroed[0] = 0;
    assert_eq!(jfr::convert(input(&zeroed)), Err(JfrError::NotJfr));
    assert!(matches!(
        jfr::convert(input(&body[..body.len() - 1])),
        Err(JfrError::Truncated { .. })
    ));
    assert!(jfr::convert(input(b"")).expect("empty").profiles.is_empty());
    // Every cut and a byte flipped at many places: an error or a result, never a panic.
    let step = body.len() / 40;
    for at in (0..body.len()).step_by(step.max(1)) {
        let _ = jfr::convert(input(&body[..at]));
        let mut flipped = body.clone();
        flipped[at] ^= 0x5a;
        if let Ok(recording) = jfr::convert(input(&flipped)) {
            for p in recording.profiles {
                let locations = p.profile.location.len() as u64;
                assert!(
                    p.profile
                        .sample
                        .iter()
                        .all(|s| s.location_id.iter().all(|&id| id >= 1 && id <= locations))
                );
                let _ = p.profile.encode_to_vec();
            }
        }
    }
}

#[test]
fn limits_bound_what_a_recording_may_expand_to() {
    let gz = read(&testdata("jfr").join("cortex-dev-01__kafka-0__cpu__0.jfr.gz"));
    let mut small = input(&gz);
    small.limits.max_bytes = 100_000;
    assert!(matches!(jfr::convert(small), Err(JfrError::TooLarge(_))));
    let mut small = input(&gz);
    small.limits.max_chunk_bytes = 100_000;
    assert!(matches!(jfr::convert(small), Err(JfrError::TooLarge(_))));
}
