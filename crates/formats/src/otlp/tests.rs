//! Rules of note §4–§5 one at a time: error texts, service names, series labels, mappings.

use super::convert::convert_within;
use super::proto::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use super::proto::profiles::{
    Function, KeyValueAndUnit, Line, Link, Location, Mapping, Profile, ProfilesDictionary,
    ResourceProfiles, Sample, ScopeProfiles, Stack, ValueType,
};
use super::proto::resource::Resource;
use super::{ExportProfilesServiceRequest, OtlpError, OtlpSeries, convert};
use crate::pprof::proto as pprof;

const NOW: i64 = 1_234;

fn text(value: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(value.to_owned())),
    })
}

fn int(value: i64) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::IntValue(value)),
    })
}

fn key_value(key: &str, value: Option<AnyValue>) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value,
    }
}

fn attribute(key: i32, value: Option<AnyValue>) -> KeyValueAndUnit {
    KeyValueAndUnit {
        key_strindex: key,
        value,
        unit_strindex: 0,
    }
}

fn line(function_index: i32, line: i64) -> Line {
    Line {
        function_index,
        line,
        column: 7,
    }
}

fn sample(stack_index: i32, values: &[i64], attribute_indices: &[i32]) -> Sample {
    Sample {
        stack_index,
        values: values.to_vec(),
        attribute_indices: attribute_indices.to_vec(),
        ..Default::default()
    }
}

/// Strings, tables and a CPU profile (`samples/count`, period `cpu/nanoseconds` 10) with
/// entry 0 of every table the zero value, as real senders do.
fn dictionary() -> ProfilesDictionary {
    let strings = [
        "",
        "samples",
        "count",
        "cpu",
        "nanoseconds",
        "libc.so",
        "main",
        "main.c",
        "service.name",
        "thread.name",
        "process.executable.build_id.gnu",
        "events",
    ];
    ProfilesDictionary {
        string_table: strings.iter().map(|s| s.to_string()).collect(),
        mapping_table: vec![
            Mapping::default(),
            Mapping {
                memory_start: 0x1000,
                memory_limit: 0x2000,
                file_offset: 0x10,
                filename_strindex: 5,
                attribute_indices: vec![2],
            },
        ],
        function_table: vec![
            Function::default(),
            Function {
                name_strindex: 6,
                system_name_strindex: 6,
                filename_strindex: 7,
                start_line: 3,
            },
        ],
        location_table: vec![
            Location::default(),
            Location {
                mapping_index: 1,
                address: 0x1100,
                lines: vec![line(1, 12)],
                ..Default::default()
            },
            Location {
                mapping_index: 1,
                address: 0x1200,
                ..Default::default()
            },
            Location {
                mapping_index: 0,
                address: 0x30,
                lines: vec![line(1, 30)],
                ..Default::default()
            },
        ],
        stack_table: vec![
            Stack::default(),
            Stack {
                location_indices: vec![1, 2],
            },
            Stack {
                location_indices: vec![3, 1],
            },
        ],
        attribute_table: vec![
            KeyValueAndUnit::default(),
            attribute(8, text("svc-a")),
            attribute(10, text("abc")),
            attribute(9, text("t1")),
            attribute(9, int(5)),
            attribute(9, text("")),
        ],
        link_table: vec![
            Link::default(),
            Link {
                trace_id: vec![1; 16],
                span_id: vec![0x0a, 0xbc, 0, 0xff, 1, 2, 3, 4],
            },
        ],
    }
}

fn cpu_profile(samples: Vec<Sample>) -> Profile {
    Profile {
        sample_type: Some(ValueType {
            type_strindex: 1,
            unit_strindex: 2,
        }),
        period_type: Some(ValueType {
            type_strindex: 3,
            unit_strindex: 4,
        }),
        period: 10,
        samples,
        time_unix_nano: 5_000,
        ..Default::default()
    }
}

fn request_with(
    dictionary: ProfilesDictionary,
    profiles: Vec<Profile>,
) -> ExportProfilesServiceRequest {
    ExportProfilesServiceRequest {
        resource_profiles: vec![ResourceProfiles {
            resource: None,
            scope_profiles: vec![ScopeProfiles {
                scope: None,
                profiles,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
        dictionary: Some(dictionary),
    }
}

fn request(profile: Profile) -> ExportProfilesServiceRequest {
    request_with(dictionary(), vec![profile])
}

fn error_of(request: &ExportProfilesServiceRequest) -> String {
    match convert(request, NOW) {
        Ok(series) => panic!("expected an error, got {} series", series.len()),
        Err(error) => error.to_string(),
    }
}

fn converted(request: &ExportProfilesServiceRequest) -> Vec<OtlpSeries> {
    match convert(request, NOW) {
        Ok(series) => series,
        Err(error) => panic!("unexpected error: {error}"),
    }
}

fn label<'a>(series: &'a OtlpSeries, name: &str) -> Option<&'a str> {
    series
        .labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn string(profile: &pprof::Profile, index: i64) -> &str {
    usize::try_from(index)
        .ok()
        .and_then(|i| profile.string_table.get(i))
        .map_or("", String::as_str)
}

#[test]
fn request_checks_come_first() {
    let mut no_dictionary = request(cpu_profile(vec![]));
    no_dictionary.dictionary = None;
    no_dictionary.resource_profiles.clear();
    assert_eq!(no_dictionary.dictionary, None);
    assert_eq!(
        error_of(&no_dictionary),
        "missing profile metadata dictionary"
    );
    assert_eq!(
        convert(&no_dictionary, NOW),
        Err(OtlpError::MissingDictionary)
    );
    let mut no_resources = request(cpu_profile(vec![]));
    no_resources.resource_profiles.clear();
    assert_eq!(error_of(&no_resources), "missing resource profiles");
}

#[test]
fn profile_without_samples_gives_nothing_even_without_sample_type() {
    let mut profile = cpu_profile(vec![]);
    profile.sample_type = None;
    assert!(converted(&request(profile)).is_empty());
}

#[test]
fn conversion_errors_have_pyroscopes_text() {
    let prefix = "failed to convert otel profile: ";
    type Mutation = Box<dyn Fn(&mut ProfilesDictionary, &mut Profile)>;
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "sample type is missing",
            Box::new(|_, p| p.sample_type = None),
        ),
        (
            "could not process sample type: could not access type string: index 99 out of bounds",
            Box::new(|_, p| {
                p.sample_type = Some(ValueType {
                    type_strindex: 99,
                    unit_strindex: 2,
                })
            }),
        ),
        (
            "could not process sample type: could not access unit string: index -1 out of bounds",
            Box::new(|_, p| {
                p.sample_type = Some(ValueType {
                    type_strindex: 1,
                    unit_strindex: -1,
                })
            }),
        ),
        (
            "could not access type string: index 12 out of bounds",
            Box::new(|_, p| {
                p.period_type = Some(ValueType {
                    type_strindex: 12,
                    unit_strindex: 4,
                })
            }),
        ),
        (
            "could not access unit string: index 40 out of bounds",
            Box::new(|_, p| {
                p.period_type = Some(ValueType {
                    type_strindex: 3,
                    unit_strindex: 40,
                })
            }),
        ),
        (
            "sample value is required",
            Box::new(|_, p| p.samples[0].values.clear()),
        ),
        (
            "sample values length mismatch 2 1",
            Box::new(|_, p| p.samples[0].values = vec![1, 2]),
        ),
        (
            "could not access attribute at index 1: index 6 out of bounds",
            Box::new(|_, p| p.samples[0].attribute_indices = vec![1, 6]),
        ),
        (
            "could not access attribute key: index 50 out of bounds",
            Box::new(|d, p| {
                d.attribute_table.push(attribute(50, text("x")));
                p.samples[0].attribute_indices = vec![1, 6];
            }),
        ),
        (
            "could not access link at index 2: index 2 out of bounds",
            Box::new(|_, p| p.samples[0].link_index = 2),
        ),
        (
            "invalid stack index: 3",
            Box::new(|_, p| p.samples[0].stack_index = 3),
        ),
        (
            "invalid stack index: -1",
            Box::new(|_, p| p.samples[0].stack_index = -1),
        ),
        (
            "could not access location at index 4: index 4 out of bounds",
            Box::new(|d, _| d.stack_table[1].location_indices = vec![1, 4]),
        ),
        (
            "could not access mapping at index 2: index 2 out of bounds",
            Box::new(|d, _| d.location_table[2].mapping_index = 2),
        ),
        (
            "could not access mapping file name string: index 77 out of bounds",
            Box::new(|d, _| d.mapping_table[1].filename_strindex = 77),
        ),
        (
            "could not process line at index 1: could not access function: index 2 out of bounds",
            Box::new(|d, _| d.location_table[1].lines.push(line(2, 1))),
        ),
        (
            "could not access function name string: index 100 out of bounds",
            Box::new(|d, _| d.function_table[1].name_strindex = 100),
        ),
        (
            "could not access function system name string: index 101 out of bounds",
            Box::new(|d, _| d.function_table[1].system_name_strindex = 101),
        ),
        (
            "could not access function file name string: index 102 out of bounds",
            Box::new(|d, _| d.function_table[1].filename_strindex = 102),
        ),
    ];
    for (expected, mutate) in cases {
        let mut dictionary = dictionary();
        let mut profile = cpu_profile(vec![sample(1, &[1], &[1])]);
        mutate(&mut dictionary, &mut profile);
        let got = error_of(&request_with(dictionary, vec![profile]));
        assert_eq!(got, format!("{prefix}{expected}"));
    }
}

#[test]
fn a_bad_index_in_the_service_name_lookup_drops_the_profile_silently() {
    // The first sample converts; the second's lookup fails: nothing, and no error.
    let profile = cpu_profile(vec![sample(1, &[1], &[]), sample(1, &[1], &[3, 99])]);
    assert!(converted(&request(profile)).is_empty());
    let mut dictionary = dictionary();
    dictionary.attribute_table.push(attribute(-5, text("x")));
    let profile = cpu_profile(vec![sample(1, &[1], &[6])]);
    assert!(converted(&request_with(dictionary, vec![profile])).is_empty());
    // Once `service.name` is found the lookup stops; the label step reports the bad index.
    let profile = cpu_profile(vec![sample(1, &[1], &[1, 99])]);
    assert_eq!(
        error_of(&request(profile)),
        "failed to convert otel profile: could not access attribute at index 1: index 99 out of bounds"
    );
}

#[test]
fn cpu_values_times_period_and_sample_labels() {
    let mut first = sample(1, &[], &[3, 4, 5, 1]);
    first.timestamps_unix_nano = vec![1, 2, 3];
    first.link_index = 1;
    let profile = cpu_profile(vec![first, sample(2, &[4], &[])]);
    let series = converted(&request(profile));
    assert_eq!(series.len(), 2, "one per sample service name");
    assert_eq!(label(&series[0], "service_name"), Some("svc-a"));
    assert_eq!(label(&series[1], "service_name"), Some("unknown_service"));
    let p = &series[0].profile;
    assert_eq!(p.sample[0].value, vec![30], "3 timestamps × period 10");
    assert_eq!(series[1].profile.sample[0].value, vec![40]);
    assert_eq!(p.time_nanos, 5_000);
    assert_eq!(p.duration_nanos, 10_000_000_000);
    assert_eq!(string(p, p.default_sample_type), "samples");
    let labels: Vec<(&str, &str)> = p.sample[0]
        .label
        .iter()
        .map(|l| (string(p, l.key), string(p, l.str)))
        .collect();
    // Ints and empty strings dropped, service.name skipped, the link's span id in hex.
    assert_eq!(
        labels,
        [("thread.name", "t1"), ("span_id", "0abc00ff01020304")]
    );
    assert_eq!(p.string_table[0], "");
}

#[test]
fn mappings_are_created_per_sample_with_surveyed_flags() {
    // Stack 1: mapping 1 with a symbolised and an unsymbolised location. Stack 2: location 3
    // (mapping 0, symbolised) and location 1 again (converted already, keeps its mapping).
    let profile = cpu_profile(vec![sample(1, &[1], &[]), sample(2, &[1], &[])]);
    let series = converted(&request(profile));
    assert_eq!(series.len(), 1);
    let p = &series[0].profile;
    assert_eq!(p.mapping.len(), 3, "one per distinct mapping per sample");
    let m1 = &p.mapping[0];
    assert_eq!(
        (m1.id, m1.memory_start, m1.memory_limit, m1.file_offset),
        (1, 0x1000, 0x2000, 0x10)
    );
    assert_eq!(string(p, m1.filename), "libc.so");
    assert_eq!(string(p, m1.build_id), "abc");
    assert!(!m1.has_functions && !m1.has_line_numbers && !m1.has_filenames);
    assert!(!m1.has_inline_frames);
    // Second sample: mapping 0 (all locations symbolised), then mapping 1 (only location 1).
    let (m0, m1_again) = (&p.mapping[1], &p.mapping[2]);
    assert_eq!(string(p, m0.filename), "");
    assert!(m0.has_functions && m0.has_line_numbers && m0.has_filenames);
    assert!(m1_again.has_functions);
    assert_eq!(p.location.len(), 3);
    assert_eq!(p.sample[0].location_id, vec![1, 2]);
    assert_eq!(p.sample[1].location_id, vec![3, 1]);
    assert_eq!(
        p.location[0].mapping_id, 1,
        "from the first sample that used it"
    );
    assert_eq!(p.location[2].mapping_id, 2);
    assert_eq!(p.location[0].line[0].line, 12);
    assert_eq!(p.location[0].line[0].column, 0, "column dropped");
    assert_eq!(p.function.len(), 1, "functions converted once");
    assert_eq!(string(p, p.function[0].name), "main");
    assert_eq!(p.function[0].start_line, 3);
}

#[test]
fn off_cpu_and_custom_profile_types() {
    let mut off_cpu = cpu_profile(vec![sample(1, &[1, 2, 3], &[])]);
    off_cpu.sample_type = Some(ValueType {
        type_strindex: 11,
        unit_strindex: 4,
    });
    // Present but empty, as the eBPF profiler sends it.
    off_cpu.period_type = Some(ValueType::default());
    off_cpu.period = 0;
    off_cpu.time_unix_nano = 0;
    off_cpu.duration_nano = 77;
    let series = converted(&request(off_cpu));
    assert_eq!(label(&series[0], "__name__"), Some("off_cpu"));
    assert_eq!(series[0].profile.sample[0].value, vec![6]);
    assert_eq!(series[0].profile.time_nanos, NOW);
    assert_eq!(series[0].profile.duration_nanos, 77);

    // `cpu:nanoseconds:samples:count`: custom, named after the period type, values kept.
    let mut custom = cpu_profile(vec![sample(1, &[4], &[])]);
    custom.sample_type = Some(ValueType {
        type_strindex: 3,
        unit_strindex: 4,
    });
    custom.period_type = Some(ValueType {
        type_strindex: 1,
        unit_strindex: 2,
    });
    let series = converted(&request(custom));
    assert_eq!(label(&series[0], "__name__"), Some("samples"));
    assert_eq!(series[0].profile.sample[0].value, vec![4]);
    // Without a period there is no value count check and no name.
    let mut no_period = cpu_profile(vec![sample(1, &[4, 5], &[])]);
    no_period.period = 0;
    let series = converted(&request(no_period));
    assert_eq!(label(&series[0], "__name__"), Some(""));
    assert_eq!(series[0].profile.sample[0].value, vec![4, 5]);
}

#[test]
fn resource_service_name_and_series_labels() {
    let resource = |attributes: Vec<KeyValue>| Resource {
        attributes,
        ..Default::default()
    };
    let cases = [
        (vec![], "unknown_service"),
        (
            vec![
                key_value("process.executable.name", text("node")),
                key_value("service.name", int(3)),
                key_value("service.name", text("")),
            ],
            "unknown_service:node",
        ),
        (
            vec![
                key_value("process.executable.name", text("a")),
                key_value("process.executable.name", text("b")),
            ],
            "unknown_service:a:b",
        ),
        (
            vec![
                key_value("service.name", text("svc")),
                key_value("process.executable.name", text("a")),
            ],
            "svc",
        ),
    ];
    for (attributes, expected) in cases {
        let mut request = request(cpu_profile(vec![sample(1, &[1], &[])]));
        request.resource_profiles[0].resource = Some(resource(attributes));
        let series = converted(&request);
        assert_eq!(label(&series[0], "service_name"), Some(expected));
    }

    let mut request = request(cpu_profile(vec![sample(1, &[1], &[])]));
    request.resource_profiles[0].resource = Some(resource(vec![
        key_value("container.id", text("c1")),
        key_value("__name__", text("evil")),
        key_value("host.name", text("")),
        key_value("pid", int(5)),
        key_value("service.name", text("svc")),
    ]));
    request.resource_profiles[0].scope_profiles[0].scope = Some(InstrumentationScope {
        name: "ignored".to_owned(),
        attributes: vec![
            key_value("container.id", text("c2")),
            key_value("run", text("7")),
        ],
        ..Default::default()
    });
    let series = converted(&request);
    let labels: Vec<(&str, &str)> = series[0]
        .labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [
            ("__delta__", "false"),
            ("__otel__", "true"),
            ("__name__", "process_cpu"),
            ("container.id", "c1"),
            ("service.name", "svc"),
            ("run", "7"),
            ("service_name", "svc"),
        ]
    );
}

#[test]
fn series_follow_request_order() {
    let profiles = vec![
        cpu_profile(vec![sample(1, &[1], &[])]),
        cpu_profile(vec![]),
        cpu_profile(vec![sample(2, &[1], &[1]), sample(1, &[1], &[])]),
    ];
    let series = converted(&request_with(dictionary(), profiles));
    let services: Vec<&str> = series
        .iter()
        .map(|s| label(s, "service_name").unwrap_or_default())
        .collect();
    assert_eq!(services, ["unknown_service", "svc-a", "unknown_service"]);
    assert!(series.iter().all(|s| s.raw_size > 0));
}

#[test]
fn output_is_bounded() {
    let three = request(cpu_profile(vec![sample(1, &[1], &[]); 3]));
    let needed = (1..200)
        .find(|&limit| convert_within(&three, NOW, limit).is_ok())
        .expect("a small request fits in 200 words");
    assert_eq!(
        convert_within(&three, NOW, needed - 1).map(|s| s.len()),
        Err(OtlpError::Convert(super::ConvertError::TooLarge {
            limit: needed - 1
        }))
    );
    // One more sample on the same two-location stack costs two words.
    let four = request(cpu_profile(vec![sample(1, &[1], &[]); 4]));
    assert!(convert_within(&four, NOW, needed + 1).is_err());
    assert!(convert_within(&four, NOW, needed + 2).is_ok());
}

/// Many samples with distinct service names, all referring to one long string: each pprof
/// copies it once, and the budget counts the copies.
#[test]
fn copies_of_long_strings_are_bounded() {
    let mut dictionary = dictionary();
    dictionary.string_table.push("x".repeat(1 << 16));
    let long = dictionary.string_table.len() as i32 - 1;
    dictionary.function_table[1].name_strindex = long;
    let first = dictionary.attribute_table.len() as i32;
    for i in 0..64 {
        dictionary
            .attribute_table
            .push(attribute(8, text(&format!("svc-{i}"))));
    }
    let samples = (0..64).map(|i| sample(1, &[1], &[first + i])).collect();
    let request = request_with(dictionary, vec![cpu_profile(samples)]);
    let series = converted(&request);
    assert_eq!(series.len(), 64);
    // 64 copies of 64 KiB, twice each (table and index): about 1 Mi words.
    let error = convert_within(&request, NOW, 1 << 20);
    assert!(
        matches!(
            error,
            Err(OtlpError::Convert(super::ConvertError::TooLarge { .. }))
        ),
        "{error:?}"
    );
}
