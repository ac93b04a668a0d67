//! Pyroscope's ingest semantics on the real test profiles: validation errors with their exact
//! messages, the /ingest repairs, the split into series, and stacks preserved end to end.

use formats::pprof::{self, LabelLimits, ProfileLimits, prepare_push};
use model::{Labels, Tree};
use testkit::*;

fn decode(relative: &str) -> pprof::Profile {
    let body = std::fs::read(testdata(relative)).expect("read test file");
    pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES).expect("valid pprof")
}

/// Limits without the ingestion window: the test files were recorded years ago.
fn limits() -> ProfileLimits {
    ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..ProfileLimits::default()
    }
}

fn push_labels(name: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("service_name", "svc")])
}

#[test]
fn invalid_utf8_is_refused_with_pyroscopes_message() {
    let body = std::fs::read(testdata("pprof/invalid_utf8.pb.gz")).expect("read");
    let err = pprof::decode(&body, 1 << 20).expect_err("invalid UTF-8");
    assert!(
        err.to_string().starts_with("invalid utf8 string hex: "),
        "{err}"
    );
}

#[test]
fn broken_dotnet_fails_push_and_is_repaired_on_ingest() {
    let profile = decode("pprof/dotnet-pprof-3.pb.gz");
    let err = prepare_push(
        profile.clone(),
        &push_labels("process_cpu"),
        &limits(),
        &LabelLimits::default(),
        0,
        1,
    )
    .expect_err("function id 0");
    assert_eq!(err.message, "function id is 0");

    let mut fixed = profile;
    pprof::fix_dotnet(&mut fixed);
    let series = prepare_push(
        fixed,
        &push_labels("process_cpu"),
        &limits(),
        &LabelLimits::default(),
        0,
        1,
    )
    .expect("repaired");
    let ids: Vec<String> = series[0]
        .profile_types()
        .into_iter()
        .map(|(t, _)| t.to_string())
        .collect();
    assert!(
        ids.contains(&"process_cpu:alloc_samples:count::nanoseconds".to_owned()),
        "{ids:?}"
    );
    assert!(
        ids.contains(&"process_cpu:cpu:nanoseconds::nanoseconds".to_owned()),
        "{ids:?}"
    );
}

#[test]
fn pyspy_time_and_names_are_repaired() {
    let mut profile = decode("pprof/pyspy-1.pb.gz");
    assert!(
        profile.time_nanos < 31_536_000_000_000_000,
        "the file's time is from 1970 as ns"
    );
    pprof::fix_time(&mut profile.time_nanos, 1_700_000_000_000_000_000);
    assert_eq!(profile.time_nanos, 1_700_000_000_000_000_000);
    pprof::fix_scripting_function_names(&mut profile, "pyspy");
    let collapsed = model::write_collapsed(&pprof::to_tree(&profile, 0));
    assert!(collapsed.contains("main.py work"), "{collapsed}");
    let series = prepare_push(
        profile,
        &push_labels("process_cpu"),
        &limits(),
        &LabelLimits::default(),
        0,
        1,
    )
    .expect("valid");
    assert_eq!(
        series[0].profile_types()[0].0.to_string(),
        "process_cpu:samples:count::milliseconds"
    );
}

#[test]
fn sample_labels_split_series_but_span_ids_do_not() {
    let profile = decode("pprof/go.cpu.labels.pprof");
    let before: Vec<Tree> = pprof::to_trees(&profile);
    let series = prepare_push(
        profile,
        &push_labels("process_cpu"),
        &limits(),
        &LabelLimits::default(),
        0,
        1,
    )
    .expect("valid");
    assert!(series.len() > 1, "pprof labels split the profile");
    for one in &series {
        assert!(one.labels.get("span_id").is_none() && one.labels.get("profile_id").is_none());
        assert_eq!(one.labels.get("service_name"), Some("svc"));
    }
    for (index, tree) in before.iter().enumerate() {
        let mut after = Tree::new();
        for one in &series {
            after.merge(&pprof::to_tree(&one.profile, index));
        }
        assert_eq!(model::write_collapsed(&after), model::write_collapsed(tree));
    }
}

/// Every accepted test profile keeps its stacks through validation, normalisation and the split
/// (Go profiles keep their totals: the truncated-stack repair moves values to longer stacks).
#[test]
fn push_pipeline_preserves_stacks() {
    let mut checked = 0;
    let mut refused = Vec::new();
    for path in pprof_files() {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        let body = std::fs::read(&path).expect("read");
        let profile = match pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES) {
            Ok(profile) => profile,
            Err(error) => {
                refused.push(format!("{name}: {error}"));
                continue;
            }
        };
        let is_go = pprof::profile_language(&profile, &Labels::new()) == "go";
        let before = pprof::to_trees(&profile);
        let labels = push_labels("x");
        let label_limits = LabelLimits::default();
        let series = match prepare_push(profile, &labels, &limits(), &label_limits, 0, 1) {
            Ok(series) => series,
            Err(error) => {
                refused.push(format!("{name}: {error}"));
                continue;
            }
        };
        for (index, tree) in before.iter().enumerate() {
            let mut after = Tree::new();
            for one in &series {
                after.merge(&pprof::to_tree(&one.profile, index));
            }
            if is_go {
                assert_eq!(after.total(), tree.total(), "{}", path.display());
            } else {
                assert_eq!(
                    model::write_collapsed(&after),
                    model::write_collapsed(tree),
                    "{} sample type {index}",
                    path.display()
                );
            }
        }
        checked += 1;
    }
    // Exactly the two broken files are refused, with Pyroscope's messages.
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused[0].starts_with("dotnet-pprof-3.pb.gz: function id is 0"),
        "{refused:?}"
    );
    assert!(
        refused[1].starts_with("invalid_utf8.pb.gz: invalid utf8 string hex: "),
        "{refused:?}"
    );
    assert!(checked >= 28, "only {checked} profiles went through");
}

#[test]
fn profile_type_labels_of_a_go_heap() {
    let profile = decode("pprof/heap");
    let series = prepare_push(
        profile,
        &push_labels("memory"),
        &limits(),
        &LabelLimits::default(),
        0,
        1,
    )
    .expect("valid");
    let types = series[0].profile_types();
    let ids: Vec<String> = types.iter().map(|(t, _)| t.to_string()).collect();
    assert_eq!(
        ids,
        [
            "memory:alloc_objects:count:space:bytes",
            "memory:alloc_space:bytes:space:bytes",
            "memory:inuse_objects:count:space:bytes",
            "memory:inuse_space:bytes:space:bytes"
        ]
    );
    let labels = &types[0].1;
    assert_eq!(labels.get("__service_name__"), Some("svc"));
    assert_eq!(labels.get("__period_type__"), Some("space"));
    assert_eq!(labels.get("__type__"), Some("alloc_objects"));
}

/// 16,000 samples with one distinct label value each, over a large string table: the split makes
/// 16,000 series in time proportional to what they hold (no work per series over whole tables).
#[test]
fn many_series_from_one_profile_stay_cheap() {
    use pprof::proto::{Function, Label, Line, Location, Sample, ValueType};
    let samples = 16_000usize;
    let mut strings: Vec<String> = vec![
        "".into(),
        "cpu".into(),
        "nanoseconds".into(),
        "f".into(),
        "k".into(),
    ];
    let first_value = strings.len();
    strings.extend((0..samples).map(|i| format!("v{i}")));
    strings.extend((0..200_000).map(|i| format!("unused{i}")));
    let profile = pprof::Profile {
        sample_type: vec![ValueType { r#type: 1, unit: 2 }],
        string_table: strings,
        function: vec![Function {
            id: 1,
            name: 3,
            ..Default::default()
        }],
        location: vec![Location {
            id: 1,
            line: vec![Line {
                function_id: 1,
                ..Default::default()
            }],
            ..Default::default()
        }],
        sample: (0..samples)
            .map(|i| Sample {
                location_id: vec![1],
                value: vec![1],
                label: vec![Label {
                    key: 4,
                    str: (first_value + i) as i64,
                    ..Default::default()
                }],
            })
            .collect(),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let series = prepare_push(
        profile,
        &push_labels("process_cpu"),
        &limits(),
        &LabelLimits::default(),
        0,
        1,
    )
    .expect("valid");
    assert_eq!(series.len(), samples);
    assert!(series.iter().all(|s| s.profile.string_table.len() <= 8));
    assert!(
        started.elapsed().as_secs() < 20,
        "took {:?}",
        started.elapsed()
    );
}
