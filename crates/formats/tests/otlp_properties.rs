//! Properties of the OTLP conversion: no input makes it panic (arbitrary bytes that prost
//! accepts, and small requests whose every index may point anywhere), and whatever it returns
//! is a self-consistent pprof that the push pipeline accepts without panicking.

use formats::otlp::proto::ExportProfilesServiceRequest;
use formats::otlp::proto::common::{AnyValue, any_value};
use formats::otlp::proto::profiles::{
    Function, KeyValueAndUnit, Line, Link, Location, Mapping, Profile, ProfilesDictionary,
    ResourceProfiles, Sample, ScopeProfiles, Stack, ValueType,
};
use formats::otlp::{self, OtlpSeries};
use formats::pprof::{LabelLimits, ProfileLimits, prepare_push};
use model::Labels;
use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use prost::Message as _;

const NOW: i64 = 1_700_000_000_000_000_000;

/// Every reference of the pprof points at something that exists.
fn assert_consistent(series: &OtlpSeries) {
    let p = &series.profile;
    let strings = p.string_table.len() as i64;
    assert_eq!(p.string_table.first().map(String::as_str), Some(""));
    let string_ok = |i: i64| (0..strings).contains(&i);
    assert_eq!(p.sample_type.len(), 1);
    for st in p.sample_type.iter().chain(p.period_type.iter()) {
        assert!(string_ok(st.r#type) && string_ok(st.unit));
    }
    for (i, m) in p.mapping.iter().enumerate() {
        assert_eq!(m.id, i as u64 + 1);
        assert!(string_ok(m.filename) && string_ok(m.build_id));
    }
    for (i, f) in p.function.iter().enumerate() {
        assert_eq!(f.id, i as u64 + 1);
        assert!(string_ok(f.name) && string_ok(f.system_name) && string_ok(f.filename));
    }
    for (i, l) in p.location.iter().enumerate() {
        assert_eq!(l.id, i as u64 + 1);
        assert!((1..=p.mapping.len() as u64).contains(&l.mapping_id));
        for line in &l.line {
            assert!((1..=p.function.len() as u64).contains(&line.function_id));
        }
    }
    for s in &p.sample {
        assert!(!s.value.is_empty());
        for id in &s.location_id {
            assert!((1..=p.location.len() as u64).contains(id));
        }
        for l in &s.label {
            assert!(string_ok(l.key) && string_ok(l.str));
        }
    }
    assert_eq!(
        series.labels.last().map(|(n, _)| n.as_str()),
        Some("service_name")
    );
}

fn check(request: &ExportProfilesServiceRequest) {
    let Ok(all) = otlp::convert(request, NOW) else {
        return;
    };
    let limits = ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..ProfileLimits::default()
    };
    for series in all {
        assert_consistent(&series);
        let labels = Labels::from_pairs(series.labels);
        let _ = prepare_push(
            series.profile,
            &labels,
            &limits,
            &LabelLimits::default(),
            series.raw_size,
            NOW,
        );
    }
}

const STRINGS: [&str; 10] = [
    "",
    "samples",
    "count",
    "cpu",
    "nanoseconds",
    "events",
    "service.name",
    "thread.name",
    "process.executable.build_id.gnu",
    "libc.so",
];

/// An index into a table of at least `len` entries, sometimes out of range.
fn index(len: i32) -> impl Strategy<Value = i32> {
    prop_oneof![80 => 0..len, 2 => -1..len + 3, 1 => any::<i32>()]
}

fn any_value() -> impl Strategy<Value = Option<AnyValue>> {
    prop_oneof![
        Just(None),
        prop::sample::select(&STRINGS[..]).prop_map(|s| Some(AnyValue {
            value: Some(any_value::Value::StringValue(s.to_owned())),
        })),
        any::<i64>().prop_map(|i| Some(AnyValue {
            value: Some(any_value::Value::IntValue(i)),
        })),
    ]
}

fn value_type() -> impl Strategy<Value = Option<ValueType>> {
    prop::option::weighted(
        0.9,
        (index(10), index(10)).prop_map(|(t, u)| ValueType {
            type_strindex: t,
            unit_strindex: u,
        }),
    )
}

fn dictionary() -> impl Strategy<Value = ProfilesDictionary> {
    // Every string of STRINGS (so that the names the rules look for exist), then some more.
    let strings = prop::collection::vec(prop::sample::select(&STRINGS[..]), 0..4).prop_map(|v| {
        STRINGS
            .iter()
            .chain(&v)
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
    });
    let mappings = prop::collection::vec(
        (
            any::<u64>(),
            index(10),
            prop::collection::vec(index(3), 0..3),
        )
            .prop_map(|(start, filename, attributes)| Mapping {
                memory_start: start,
                memory_limit: start.wrapping_add(0x1000),
                file_offset: 0,
                filename_strindex: filename,
                attribute_indices: attributes,
            }),
        2..4,
    );
    let functions = prop::collection::vec(
        (index(10), index(10), index(10)).prop_map(|(n, s, f)| Function {
            name_strindex: n,
            system_name_strindex: s,
            filename_strindex: f,
            start_line: 1,
        }),
        2..4,
    );
    let locations = prop::collection::vec(
        (
            index(2),
            any::<u64>(),
            prop::collection::vec((index(2), -1i64..50), 0..3),
        )
            .prop_map(|(mapping, address, lines)| Location {
                mapping_index: mapping,
                address,
                lines: lines
                    .into_iter()
                    .map(|(function_index, line)| Line {
                        function_index,
                        line,
                        column: 0,
                    })
                    .collect(),
                attribute_indices: Vec::new(),
            }),
        3..6,
    );
    let stacks = prop::collection::vec(
        prop::collection::vec(index(3), 0..6)
            .prop_map(|location_indices| Stack { location_indices }),
        2..4,
    );
    let attributes = prop::collection::vec(
        (index(10), any_value()).prop_map(|(key, value)| KeyValueAndUnit {
            key_strindex: key,
            value,
            unit_strindex: 0,
        }),
        3..6,
    );
    let links = prop::collection::vec(
        prop::collection::vec(any::<u8>(), 0..9).prop_map(|span_id| Link {
            trace_id: Vec::new(),
            span_id,
        }),
        1..3,
    );
    (
        strings, mappings, functions, locations, stacks, attributes, links,
    )
        .prop_map(
            |(
                string_table,
                mapping_table,
                function_table,
                location_table,
                stack_table,
                attribute_table,
                link_table,
            )| {
                ProfilesDictionary {
                    mapping_table,
                    location_table,
                    function_table,
                    link_table,
                    string_table,
                    attribute_table,
                    stack_table,
                }
            },
        )
}

fn sample() -> impl Strategy<Value = Sample> {
    (
        index(2),
        prop_oneof![
            8 => any::<i64>().prop_map(|v| vec![v]),
            1 => prop::collection::vec(any::<i64>(), 0..4),
        ],
        prop::collection::vec(index(3), 0..4),
        prop_oneof![4 => Just(0), 1 => index(1)],
        prop::collection::vec(any::<u64>(), 0..3),
    )
        .prop_map(
            |(stack_index, values, attribute_indices, link_index, timestamps)| Sample {
                stack_index,
                values,
                attribute_indices,
                link_index,
                timestamps_unix_nano: timestamps,
            },
        )
}

fn profile() -> impl Strategy<Value = Profile> {
    (
        value_type(),
        value_type(),
        prop_oneof![Just(0i64), Just(10), Just(-1), Just(i64::MAX)],
        prop::collection::vec(sample(), 0..6),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(sample_type, period_type, period, samples, time, duration)| Profile {
                sample_type,
                period_type,
                period,
                samples,
                time_unix_nano: time,
                duration_nano: duration,
                ..Default::default()
            },
        )
}

fn request() -> impl Strategy<Value = ExportProfilesServiceRequest> {
    (
        prop::option::weighted(0.98, dictionary()),
        prop::collection::vec(prop::collection::vec(profile(), 0..3), 1..3),
    )
        .prop_map(|(dictionary, profiles)| ExportProfilesServiceRequest {
            resource_profiles: profiles
                .into_iter()
                .map(|profiles| ResourceProfiles {
                    resource: None,
                    scope_profiles: vec![ScopeProfiles {
                        scope: None,
                        profiles,
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                })
                .collect(),
            dictionary,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(request) = ExportProfilesServiceRequest::decode(bytes.as_slice()) {
            check(&request);
        }
    }

    #[test]
    fn arbitrary_indices_never_panic(request in request()) {
        check(&request);
        // The conversion depends only on the message: the wire form converts alike.
        let decoded = ExportProfilesServiceRequest::decode(request.encode_to_vec().as_slice())
            .expect("our own encoding decodes");
        prop_assert_eq!(otlp::convert(&decoded, NOW), otlp::convert(&request, NOW));
    }
}

/// Mutations of the real fixture: every byte flipped somewhere must not panic either.
#[test]
fn mutated_fixture_never_panics() {
    let path = testkit::testdata("otlp/otel-ebpf-profile.pb.bin");
    let Ok(bytes) = std::fs::read(&path) else {
        panic!("cannot read {}", path.display());
    };
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(200));
    let strategy = prop::collection::vec((0..bytes.len(), any::<u8>()), 1..8);
    runner
        .run(&strategy, |flips| {
            let mut mutated = bytes.clone();
            for (at, byte) in flips {
                if let Some(slot) = mutated.get_mut(at) {
                    *slot = byte;
                }
            }
            if let Ok(request) = ExportProfilesServiceRequest::decode(mutated.as_slice()) {
                check(&request);
            }
            Ok(())
        })
        .expect("no panic");
}

/// Guards the generator against becoming vacuous: it must reach both successful conversions
/// (so that `assert_consistent` runs) and many kinds of errors.
#[test]
fn generated_requests_reach_series_and_errors() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut series = 0usize;
    let mut errors = std::collections::BTreeSet::new();
    for _ in 0..1_000 {
        let tree = request().new_tree(&mut runner).expect("generate");
        match otlp::convert(&tree.current(), NOW) {
            Ok(converted) => series += converted.len(),
            Err(error) => {
                let text = error.to_string();
                let kind = text.split(": ").take(2).collect::<Vec<_>>().join(": ");
                errors.insert(kind.chars().take(70).collect::<String>());
            }
        }
    }
    assert!(series >= 200, "{series} series");
    assert!(errors.len() >= 12, "{errors:#?}");
}
