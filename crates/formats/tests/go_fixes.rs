//! Pyroscope's Go ingest fixes: type-parameter dropping against the shared `.txt` golden, the
//! truncated-stack repair against the shared `gotruncatefix` fixtures, synthetic repairs, the
//! gate, and hostile input.

use formats::pprof::proto::{Function, Label, Line, Location, Mapping, Profile, Sample, ValueType};
use formats::pprof::{
    self, drop_go_type_parameters, fix_go_profile, may_have_truncated_go_stacks,
    repair_go_truncated_stacks,
};
use std::path::Path;

use testkit::testdata;

fn decode_file(path: &Path) -> Profile {
    let body = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn collapsed(profile: &Profile, value_index: usize) -> String {
    model::write_collapsed(&pprof::to_tree(profile, value_index))
}

fn totals(profile: &Profile) -> Vec<i64> {
    (0..profile.sample_type.len())
        .map(|i| {
            profile
                .sample
                .iter()
                .map(|s| s.value.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect()
}

#[test]
fn type_parameters_match_the_shared_golden_line_by_line() {
    let input = std::fs::read_to_string(testdata("pprof/go_type_parameters.txt")).expect("input");
    let expected =
        std::fs::read_to_string(testdata("pprof/go_type_parameters.expected.txt")).expect("golden");
    let input: Vec<&str> = input.lines().collect();
    let expected: Vec<&str> = expected.lines().collect();
    assert!(!input.is_empty());
    assert_eq!(input.len(), expected.len(), "line counts differ");
    for (number, (line, want)) in input.iter().zip(&expected).enumerate() {
        assert_eq!(
            drop_go_type_parameters(line),
            *want,
            "line {} differs",
            number + 1
        );
    }
}

/// The fixture-generation procedure: `fix_go_profile`, then the repair a second time.
fn check_fixture(name: &str, doubled: bool) {
    let path = testdata(&format!("pprof/gotruncatefix/{name}"));
    let mut profile = decode_file(&path);
    let before = totals(&profile);
    fix_go_profile(&mut profile);
    assert_eq!(
        totals(&profile),
        before,
        "{name}: fix_go_profile changed the totals"
    );
    repair_go_truncated_stacks(&mut profile);

    let mut fixed = decode_file(&path.with_file_name(format!("{name}.fixed")));
    for string in &mut fixed.string_table {
        *string = string.replace("[...]", "");
    }
    if doubled {
        for sample in &mut fixed.sample {
            for value in &mut sample.value {
                assert_eq!(*value % 2, 0, "{name}: .fixed value {value} is not doubled");
                *value /= 2;
            }
        }
    }
    assert_eq!(profile.sample_type.len(), fixed.sample_type.len());
    for index in 0..profile.sample_type.len() {
        let ours = collapsed(&profile, index);
        let theirs = collapsed(&fixed, index);
        if ours != theirs {
            let ours_lines: std::collections::BTreeSet<&str> = ours.lines().collect();
            let theirs_lines: std::collections::BTreeSet<&str> = theirs.lines().collect();
            let only_ours = ours_lines.difference(&theirs_lines).count();
            let only_theirs = theirs_lines.difference(&ours_lines).count();
            panic!(
                "{name}, value index {index}: {only_ours} stacks only ours, {only_theirs} only in .fixed"
            );
        }
    }
}

#[test]
fn cpu_fixture_is_reproduced() {
    check_fixture("cpu_go_truncated_1.pb.gz", false);
}

#[test]
fn heap_fixture_1_is_reproduced() {
    check_fixture("heap_go_truncated_1.pb.gz", true);
}

#[test]
fn heap_fixture_2_is_reproduced() {
    check_fixture("heap_go_truncated_2.pb.gz", true);
}

/// Ingest repairs truncated stacks on the decoded view (its flat arrays), not on the owned
/// profile, unless type parameters need rewriting: for each fixture with its type parameters
/// already dropped, the stored stacks are those of the owned repair checked above.
#[test]
fn ingest_repairs_the_view_as_the_owned_profile_is_repaired() {
    let limits = pprof::ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..pprof::ProfileLimits::default()
    };
    let labels = model::Labels::from_pairs([("__name__", "memory"), ("service_name", "go-app")]);
    for name in [
        "cpu_go_truncated_1.pb.gz",
        "heap_go_truncated_1.pb.gz",
        "heap_go_truncated_2.pb.gz",
    ] {
        let mut owned = decode_file(&testdata(&format!("pprof/gotruncatefix/{name}")));
        for string in &mut owned.string_table {
            *string = drop_go_type_parameters(string).into_owned();
        }
        let series = pprof::prepare_push(
            owned.clone(),
            &labels,
            &limits,
            &pprof::LabelLimits::default(),
            0,
            1,
        )
        .unwrap_or_else(|e| panic!("{name}: {}", e.message));
        assert_eq!(series.len(), 1, "{name}");
        let before = collapsed(&owned, 0);
        assert!(may_have_truncated_go_stacks(&owned), "{name}");
        repair_go_truncated_stacks(&mut owned);
        let repaired = collapsed(&owned, 0);
        assert_ne!(before, repaired, "{name}: the fixture needs a repair");
        for index in 0..owned.sample_type.len() {
            assert_eq!(
                collapsed(&series[0].profile, index),
                collapsed(&owned, index),
                "{name}: sample type {index}"
            );
        }
    }
}

#[test]
fn fixtures_pass_the_gate() {
    for name in [
        "cpu_go_truncated_1.pb.gz",
        "heap_go_truncated_1.pb.gz",
        "heap_go_truncated_2.pb.gz",
    ] {
        let profile = decode_file(&testdata(&format!("pprof/gotruncatefix/{name}")));
        assert!(may_have_truncated_go_stacks(&profile), "{name}");
    }
}

fn value_type(strings: &mut Vec<String>, ty: &str, unit: &str) -> ValueType {
    let mut index = |s: &str| {
        if let Some(i) = strings.iter().position(|x| x == s) {
            return i as i64;
        }
        strings.push(s.to_owned());
        strings.len() as i64 - 1
    };
    ValueType {
        r#type: index(ty),
        unit: index(unit),
    }
}

/// A profile with one function and one location per id in `ids`, named `f<id>`.
fn profile_with(types: &[(&str, &str)], ids: impl IntoIterator<Item = u64>) -> Profile {
    let mut strings = vec![String::new()];
    let sample_type = types
        .iter()
        .map(|(t, u)| value_type(&mut strings, t, u))
        .collect();
    let mut profile = Profile {
        sample_type,
        ..Default::default()
    };
    for id in ids {
        strings.push(format!("f{id}"));
        profile.function.push(Function {
            id,
            name: strings.len() as i64 - 1,
            ..Default::default()
        });
        profile.location.push(Location {
            id,
            line: vec![Line {
                function_id: id,
                line: 1,
                column: 0,
            }],
            ..Default::default()
        });
    }
    profile.string_table = strings;
    profile
}

fn sample(ids: Vec<u64>, value: i64, types: usize) -> Sample {
    Sample {
        location_id: ids,
        value: vec![value; types],
        label: Vec::new(),
    }
}

const HEAP: [(&str, &str); 2] = [("alloc_objects", "count"), ("alloc_space", "bytes")];

/// A full stack `F` (leaf first) of ids `1..=full`; two reference samples (`F` under two
/// different leaves, ids 101 and 102) forming one group; a truncated sample, `F` without its
/// `missing` root-most frames; and a 24-frame filler (ids 201..=224) that sorts last, because the
/// last group in sort order is never extended or used (the upstream quirk).
fn synthetic(types: &[(&str, &str)], full: u64, missing: u64) -> (Profile, Vec<u64>) {
    let mut profile = profile_with(types, (1..=full).chain([101, 102]).chain(201..=224));
    let stack: Vec<u64> = (1..=full).collect();
    let n = types.len();
    let reference = |leaf: u64| [leaf].into_iter().chain(1..=full).collect::<Vec<u64>>();
    profile.sample.push(sample(reference(101), 10, n));
    profile.sample.push(sample(reference(102), 20, n));
    profile
        .sample
        .push(sample((1..=full - missing).collect(), 5, n));
    profile.sample.push(sample((201..=224).collect(), 1, n));
    (profile, stack)
}

#[test]
fn a_truncated_group_gains_the_missing_root_frames() {
    let (mut profile, full) = synthetic(&[("cpu", "nanoseconds")], 40, 4);
    let before = profile.clone();
    repair_go_truncated_stacks(&mut profile);
    assert_eq!(profile.sample[2].location_id, full, "the truncated stack");
    // Everything else is untouched, and the samples keep their order.
    for i in [0, 1, 3] {
        assert_eq!(profile.sample[i], before.sample[i]);
    }
    assert_eq!(totals(&profile), totals(&before));
}

#[test]
fn a_singleton_reference_is_not_used() {
    // The old rule: a group of one sample is not indexed, so nothing can depend on it.
    let (mut profile, _) = synthetic(&[("cpu", "nanoseconds")], 40, 4);
    profile.sample.remove(1);
    let before = profile.clone();
    repair_go_truncated_stacks(&mut profile);
    assert_eq!(profile, before);
}

#[test]
fn heap_profiles_are_repaired_through_the_gate() {
    // Stacks of 27..=32 frames: deep enough (>= 28) and none of 33 or more.
    let (mut profile, full) = synthetic(&HEAP, 31, 4);
    assert!(may_have_truncated_go_stacks(&profile));
    fix_go_profile(&mut profile);
    assert_eq!(profile.sample[2].location_id, full);
}

#[test]
fn heap_profiles_with_a_stack_of_33_frames_are_not_repaired() {
    let (mut profile, _) = synthetic(&HEAP, 31, 4);
    let deep: Vec<u64> = (301..=333).collect();
    let mut extended = profile_with(&HEAP, deep.clone());
    profile.function.append(&mut extended.function);
    profile.location.append(&mut extended.location);
    // Re-point the new functions' names at a string of their own.
    for function in profile.function.iter_mut().filter(|f| f.id > 300) {
        profile.string_table.push(format!("g{}", function.id));
        function.name = profile.string_table.len() as i64 - 1;
    }
    profile.sample.push(sample(deep, 1, HEAP.len()));
    assert!(!may_have_truncated_go_stacks(&profile));
    let before = profile.clone();
    fix_go_profile(&mut profile);
    assert_eq!(profile, before);
}

#[test]
fn the_gate_needs_deep_enough_stacks_and_a_known_sample_type() {
    let (profile, _) = synthetic(&[("cpu", "nanoseconds")], 40, 4);
    // CPU needs a stack of 60 or more.
    assert!(!may_have_truncated_go_stacks(&profile));
    let (profile, _) = synthetic(&[("cpu", "nanoseconds")], 60, 4);
    assert!(may_have_truncated_go_stacks(&profile));
    // Neither heap nor cpu.
    let (profile, _) = synthetic(&[("samples", "count")], 60, 4);
    assert!(!may_have_truncated_go_stacks(&profile));
    // Heap needs 28 or more.
    let (profile, _) = synthetic(&HEAP, 26, 2);
    assert!(!may_have_truncated_go_stacks(&profile));
}

#[test]
fn renaming_merges_functions_locations_and_samples() {
    let mut profile = profile_with(&[("cpu", "nanoseconds")], 1..=4);
    // f2 and f3 become the same function after dropping type parameters.
    profile.string_table[profile.function[1].name as usize] = "pkg.F[go.shape.int]".into();
    profile.string_table[profile.function[2].name as usize] = "pkg.F[go.shape.string]".into();
    profile.string_table.push("pkg.F".into()); // a duplicate after the rename
    profile.sample.push(sample(vec![2, 1], 3, 1));
    profile.sample.push(sample(vec![3, 1], 4, 1));
    profile.sample.push(sample(vec![4, 1], 0, 1));
    profile.sample.push(Sample {
        location_id: vec![3, 1],
        value: vec![5],
        label: vec![Label {
            key: 1,
            str: 2,
            ..Default::default()
        }],
    });
    fix_go_profile(&mut profile);

    let mut strings = profile.string_table.clone();
    strings.sort();
    strings.dedup();
    assert_eq!(
        strings.len(),
        profile.string_table.len(),
        "duplicate strings"
    );
    assert_eq!(profile.function.len(), 3);
    assert_eq!(profile.location.len(), 3);
    let ids: Vec<u64> = profile.location.iter().map(|l| l.id).collect();
    assert_eq!(ids, [1, 2, 3]);
    let samples: Vec<(Vec<u64>, Vec<i64>, usize)> = profile
        .sample
        .iter()
        .map(|s| (s.location_id.clone(), s.value.clone(), s.label.len()))
        .collect();
    assert_eq!(
        samples,
        [
            (vec![2, 1], vec![7], 0),
            (vec![3, 1], vec![0], 0), // zero samples are kept
            (vec![2, 1], vec![5], 1), // labels keep samples apart
        ]
    );
    assert_eq!(collapsed(&profile, 0), "f1;pkg.F 12\n");
}

#[test]
fn hostile_input_does_not_panic() {
    let mut profile = profile_with(&[("cpu", "nanoseconds")], [1, 2, 3, 7, 1 << 40]);
    profile.string_table.push("x[go.shape.int]".into());
    profile.string_table.push("x[go.shape.int".into());
    profile.function.push(Function {
        id: 9,
        name: 999,
        system_name: -5,
        filename: i64::MAX,
        start_line: 0,
    });
    profile.location.push(Location {
        id: 0,
        mapping_id: 77,
        line: vec![Line {
            function_id: 12345,
            line: 1,
            column: 0,
        }],
        ..Default::default()
    });
    profile.location.push(Location {
        id: 3,
        ..Default::default()
    });
    profile.mapping.push(Mapping {
        id: 5,
        memory_start: 10,
        memory_limit: 1,
        filename: 1000,
        build_id: -1,
        ..Default::default()
    });
    profile.mapping.push(Mapping {
        id: 6,
        memory_start: 0,
        memory_limit: u64::MAX,
        ..Default::default()
    });
    profile.sample_type.push(ValueType {
        r#type: -1,
        unit: 1 << 40,
    });
    profile.period_type = Some(ValueType {
        r#type: 99,
        unit: -3,
    });
    profile.default_sample_type = 1 << 50;
    profile.sample.push(Sample::default());
    profile.sample.push(sample(vec![0, 0, 0], 1, 1));
    profile
        .sample
        .push(sample(vec![999, 1 << 40, 42, u64::MAX], i64::MAX, 3));
    profile
        .sample
        .push(sample(vec![999, 1 << 40, 42, u64::MAX], i64::MAX, 3));
    profile.sample.push(Sample {
        location_id: vec![1, 2],
        value: vec![1],
        label: vec![Label {
            key: -1,
            str: 1 << 33,
            num: 3,
            num_unit: -9,
        }],
    });
    // A 10,000-deep stack, a periodic one (its windows match each other everywhere) and many
    // 60+-frame stacks whose windows chain into each other.
    profile.sample.push(sample(
        (0..10_000).map(|i| [1, 2, 3, 7][i % 4]).collect(),
        1,
        1,
    ));
    for shift in 0..40 {
        for leaf in [1, 2] {
            let mut ids = vec![leaf];
            ids.extend((0..60 + shift).map(|i| [1, 2, 3][(i + shift) % 3]));
            profile.sample.push(sample(ids, 1, 1));
        }
    }
    profile.sample.push(sample(vec![1 << 40; 10_000], 1, 1));

    let mut copy = profile.clone();
    repair_go_truncated_stacks(&mut copy);
    repair_go_truncated_stacks(&mut copy);
    assert!(may_have_truncated_go_stacks(&profile));
    fix_go_profile(&mut profile);
    repair_go_truncated_stacks(&mut profile);
    let _ = pprof::to_trees(&profile);
    // The repair appends a bounded number of frames per pass.
    let longest = profile.sample.iter().map(|s| s.location_id.len()).max();
    assert!(
        longest.is_some_and(|l| l <= 10_000 + 2 * 8 * 17),
        "{longest:?}"
    );

    // Nothing at all, and no strings.
    let mut empty = Profile::default();
    fix_go_profile(&mut empty);
    repair_go_truncated_stacks(&mut empty);
    assert!(!may_have_truncated_go_stacks(&empty));
}
