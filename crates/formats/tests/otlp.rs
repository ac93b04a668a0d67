//! OTLP → pprof against Pyroscope's goldens (`docs/research/otlp_ingest.md` §6–§8): the unit
//! goldens `Test*.json` (inputs rebuilt from the note), the eBPF profiler fixture and its
//! `SelectMergeProfile` golden, the corrupted fixture, and protojson.

use formats::otlp::proto::ExportProfilesServiceRequest;
use formats::otlp::proto::common::{AnyValue, KeyValue, any_value};
use formats::otlp::proto::profiles::{
    Function, KeyValueAndUnit, Line, Location, Mapping, Profile as OtlpProfile, ProfilesDictionary,
    ResourceProfiles, Sample, ScopeProfiles, Stack, ValueType,
};
use formats::otlp::{self, OtlpSeries};
use formats::pprof::{
    LabelLimits, MergeOptions, ProfileLimits, ProfileMerger, prepare_push,
    set_select_merge_metadata,
};
use model::{Labels, ProfileType};
use prost::Message as _;
use serde_json::{Value, json};
use testkit::strprofile::{sorted_samples, string, strprofile};
use testkit::testdata;

fn golden(name: &str) -> Value {
    let text = std::fs::read_to_string(testdata(&format!("otlp/{name}"))).expect("read golden");
    serde_json::from_str(&text).expect("golden is JSON")
}

// ---------------------------------------------------------------------------------------------
// Request builders for the unit goldens (note §8): one resource profile without resource, one
// scope profile without scope, one profile with time 239.

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn mapping(start: u64, limit: u64, filename: i32) -> Mapping {
    Mapping {
        memory_start: start,
        memory_limit: limit,
        filename_strindex: filename,
        ..Default::default()
    }
}

fn location(mapping: i32, address: u64, lines: &[(i32, i64)]) -> Location {
    Location {
        mapping_index: mapping,
        address,
        lines: lines
            .iter()
            .map(|&(function_index, line)| Line {
                function_index,
                line,
                column: 0,
            })
            .collect(),
        ..Default::default()
    }
}

fn stack(locations: &[i32]) -> Stack {
    Stack {
        location_indices: locations.to_vec(),
    }
}

fn string_attribute(key: i32, value: &str) -> KeyValueAndUnit {
    KeyValueAndUnit {
        key_strindex: key,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        unit_strindex: 0,
    }
}

fn int_attribute(key: i32, value: i64) -> KeyValueAndUnit {
    KeyValueAndUnit {
        key_strindex: key,
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        unit_strindex: 0,
    }
}

fn sample(stack: i32, values: &[i64], attributes: &[i32]) -> Sample {
    Sample {
        stack_index: stack,
        values: values.to_vec(),
        attribute_indices: attributes.to_vec(),
        ..Default::default()
    }
}

fn value_type(ty: i32, unit: i32) -> Option<ValueType> {
    Some(ValueType {
        type_strindex: ty,
        unit_strindex: unit,
    })
}

fn profile(sample_type: Option<ValueType>, samples: Vec<Sample>) -> OtlpProfile {
    OtlpProfile {
        sample_type,
        samples,
        time_unix_nano: 239,
        ..Default::default()
    }
}

fn request(dictionary: ProfilesDictionary, profile: OtlpProfile) -> ExportProfilesServiceRequest {
    ExportProfilesServiceRequest {
        resource_profiles: vec![ResourceProfiles {
            resource: None,
            scope_profiles: vec![ScopeProfiles {
                scope: None,
                profiles: vec![profile],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
        dictionary: Some(dictionary),
    }
}

const NOW: i64 = 1_700_000_000_000_000_000;

fn convert(request: &ExportProfilesServiceRequest) -> Vec<OtlpSeries> {
    otlp::convert(request, NOW).expect("conversion succeeds")
}

fn label<'a>(series: &'a OtlpSeries, name: &str) -> Option<&'a str> {
    series
        .labels
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The offcpu dictionary of note §8.2 (also used by §8.3 with other strings).
fn offcpu_dictionary(string_table: Vec<String>, file: i32) -> ProfilesDictionary {
    ProfilesDictionary {
        string_table,
        mapping_table: vec![mapping(0x1000, 0x1000, file)],
        location_table: vec![
            location(0, 0x1e0, &[]),
            location(0, 0x2f0, &[]),
            location(0, 0x3f0, &[]),
        ],
        stack_table: vec![stack(&[0, 1]), stack(&[2])],
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------------------------
// §8 unit goldens

#[test]
fn symbolized_function_names() {
    let dictionary = ProfilesDictionary {
        string_table: strings(&["file1.so", "samples", "ms"]),
        mapping_table: vec![mapping(0x1000, 0x1000, 0)],
        location_table: vec![location(0, 0x1e0, &[]), location(0, 0x2f0, &[])],
        stack_table: vec![stack(&[0, 1])],
        ..Default::default()
    };
    let series = convert(&request(
        dictionary,
        profile(value_type(1, 2), vec![sample(0, &[239], &[])]),
    ));
    assert_eq!(series.len(), 1);
    assert_eq!(label(&series[0], "__name__"), Some(""));
    assert_eq!(
        strprofile(&series[0].profile, true),
        golden("TestSymbolizedFunctionNames.json")
    );
}

#[test]
fn offcpu_values_are_summed() {
    let dictionary = offcpu_dictionary(strings(&["events", "nanoseconds", "file1.so"]), 2);
    let series = convert(&request(
        dictionary,
        profile(
            value_type(0, 1),
            vec![sample(0, &[239], &[]), sample(1, &[1, 2, 3, 4, 5, 6], &[])],
        ),
    ));
    assert_eq!(series.len(), 1);
    assert_eq!(label(&series[0], "__name__"), Some("off_cpu"));
    assert_eq!(
        strprofile(&series[0].profile, true),
        golden("TestConversionOffCpu.json")
    );
}

#[test]
fn samples_with_different_value_sizes_are_refused() {
    let dictionary = offcpu_dictionary(
        strings(&[
            "wrote_type",
            "wrong_unit",
            "file1.so",
            "period_type",
            "period_unit",
        ]),
        2,
    );
    let mut p = profile(
        value_type(0, 1),
        vec![sample(0, &[239], &[]), sample(1, &[1, 2, 3, 4, 5, 6], &[])],
    );
    p.period_type = value_type(3, 4);
    p.period = 100;
    let error = otlp::convert(&request(dictionary, p), NOW).expect_err("must fail");
    assert_eq!(
        error.to_string(),
        "failed to convert otel profile: sample values length mismatch 6 1"
    );
}

fn sample_attributes_request(with_int_attributes: bool) -> ExportProfilesServiceRequest {
    let mut attribute_table = vec![
        string_attribute(2, "firefox"),
        string_attribute(2, "chrome"),
    ];
    let (first, second): (&[i32], &[i32]) = if with_int_attributes {
        // Newer upstream adds `cpu.logical_number` ints; non-string values are dropped.
        attribute_table.push(int_attribute(5, 0));
        attribute_table.push(int_attribute(5, 7));
        (&[0, 2], &[1, 3])
    } else {
        (&[0], &[1])
    };
    let dictionary = ProfilesDictionary {
        string_table: strings(&[
            "firefox.so",
            "chrome.so",
            "process",
            "samples",
            "ms",
            "cpu.logical_number",
        ]),
        mapping_table: vec![mapping(0x1000, 0x1000, 0), mapping(0x1000, 0x1000, 1)],
        location_table: vec![
            location(0, 0x1e, &[]),
            location(0, 0x2e, &[]),
            location(1, 0x3e, &[]),
            location(1, 0x4e, &[]),
        ],
        stack_table: vec![stack(&[0, 1]), stack(&[2, 3])],
        attribute_table,
        ..Default::default()
    };
    request(
        dictionary,
        profile(
            value_type(3, 4),
            vec![sample(0, &[0xef], first), sample(1, &[0xefef], second)],
        ),
    )
}

#[test]
fn sample_attributes_become_sample_labels() {
    for with_int_attributes in [false, true] {
        let series = convert(&sample_attributes_request(with_int_attributes));
        assert_eq!(series.len(), 1, "no sample carries service.name");
        let names: Vec<&str> = series[0].labels.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["__delta__", "__otel__", "__name__", "service_name"],
            "sample attributes are not series labels"
        );
        assert_eq!(
            strprofile(&series[0].profile, true),
            golden("TestSampleAttributes.json"),
            "with int attributes: {with_int_attributes}"
        );
    }
}

#[test]
fn different_service_names_split_the_profile() {
    let dictionary = ProfilesDictionary {
        string_table: strings(&[
            "service-a.so",
            "service-b.so",
            "service-c.so",
            "serviceA_func1",
            "service_a.go",
            "serviceA_func2",
            "serviceB_func1",
            "service_b.go",
            "serviceB_func2",
            "serviceC_func3",
            "service_c.go",
            "service.name",
            "samples",
            "count",
            "cpu",
            "nanoseconds",
        ]),
        mapping_table: vec![
            mapping(0x1000, 0x2000, 0),
            mapping(0x2000, 0x3000, 1),
            mapping(0x4000, 0x5000, 2),
        ],
        function_table: [(3, 4), (5, 4), (6, 7), (8, 7), (9, 10)]
            .iter()
            .map(|&(name, file)| Function {
                name_strindex: name,
                system_name_strindex: name,
                filename_strindex: file,
                start_line: 0,
            })
            .collect(),
        location_table: vec![
            location(0, 0x1100, &[(0, 10)]),
            location(0, 0x1200, &[(1, 20)]),
            location(1, 0x2100, &[(2, 30)]),
            location(1, 0x2200, &[(3, 40)]),
            location(2, 0xef0, &[(4, 50)]),
        ],
        stack_table: vec![stack(&[0, 1]), stack(&[2, 3]), stack(&[4, 4])],
        attribute_table: vec![
            string_attribute(11, "service-a"),
            string_attribute(11, "service-b"),
        ],
        ..Default::default()
    };
    let mut p = profile(
        value_type(12, 13),
        vec![
            sample(0, &[100], &[0]),
            sample(1, &[200], &[1]),
            sample(2, &[700], &[]),
        ],
    );
    p.period_type = value_type(14, 15);
    p.period = 10_000_000;
    let series = convert(&request(dictionary, p));

    let mut label_sets: Vec<Labels> = series
        .iter()
        .map(|s| Labels::from_pairs(s.labels.clone()))
        .collect();
    label_sets.sort();
    let expected: Vec<Labels> = ["service-a", "service-b", "unknown_service"]
        .iter()
        .map(|service| {
            Labels::from_pairs([
                ("__delta__", "false"),
                ("__name__", "process_cpu"),
                ("__otel__", "true"),
                ("service_name", service),
            ])
        })
        .collect();
    assert_eq!(label_sets, expected);
    // First-seen order of the sample service names.
    let services: Vec<&str> = series
        .iter()
        .map(|s| label(s, "service_name").unwrap_or_default())
        .collect();
    assert_eq!(services, ["service-a", "service-b", "unknown_service"]);

    for (one, file) in series.iter().zip([
        "TestDifferentServiceNames_service_a_profile.json",
        "TestDifferentServiceNames_service_b_profile.json",
        "TestDifferentServiceNames_unknown_profile.json",
    ]) {
        let rendered = strprofile(&one.profile, true);
        assert_eq!(rendered, golden(file), "{file}");
        assert!(!rendered.to_string().contains("service.name"), "{file}");
        let period_type = one.profile.period_type.expect("period type");
        assert_eq!(string(&one.profile, period_type.r#type), "cpu");
        assert_eq!(string(&one.profile, period_type.unit), "nanoseconds");
    }
}

// ---------------------------------------------------------------------------------------------
// The eBPF profiler fixture (note §2, §5.5, §7)

fn fixture(name: &str) -> ExportProfilesServiceRequest {
    let bytes = std::fs::read(testdata(&format!("otlp/{name}"))).expect("read fixture");
    ExportProfilesServiceRequest::decode(bytes.as_slice()).expect("fixture decodes")
}

fn otlp_profiles(request: &ExportProfilesServiceRequest) -> Vec<&OtlpProfile> {
    request
        .resource_profiles
        .iter()
        .flat_map(|r| &r.scope_profiles)
        .flat_map(|s| &s.profiles)
        .collect()
}

#[test]
fn ebpf_fixture_converts_into_cpu_and_off_cpu_series() {
    let request = fixture("otel-ebpf-profile.pb.bin");
    let series = convert(&request);
    let sources = otlp_profiles(&request);
    // No sample carries service.name: one series per Profile message.
    assert_eq!(series.len(), 5);
    assert_eq!(sources.len(), 5);
    let names: Vec<&str> = series
        .iter()
        .map(|s| label(s, "__name__").unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "process_cpu",
            "off_cpu",
            "off_cpu",
            "process_cpu",
            "off_cpu"
        ]
    );
    // The first resource's `container.id` is "": empty values are dropped.
    let containers: Vec<&str> = series
        .iter()
        .map(|s| label(s, "container.id").unwrap_or("<none>"))
        .collect();
    let (d6, d41) = (
        "d6fda26d6a2b381688f058186e0fb3a2d6f8785b1c6c20b0c0c813031210625c",
        "41d8d76710f5d57b404505a32f730879265dcd466b3d86e35a871e9da7ce941f",
    );
    assert_eq!(containers, ["<none>", "<none>", d6, d41, d41]);
    for (one, source) in series.iter().zip(&sources) {
        assert_eq!(label(one, "service_name"), Some("unknown_service"));
        assert_eq!(label(one, "__delta__"), Some("false"));
        assert_eq!(label(one, "__otel__"), Some("true"));
        assert_eq!(label(one, "otel.scope.name"), None);
        assert_eq!(one.raw_size, source.encoded_len());
        let p = &one.profile;
        assert_eq!(p.time_nanos, source.time_unix_nano as i64);
        assert_eq!(p.sample.len(), source.samples.len());
        let sample_type = p.sample_type.first().expect("one sample type");
        let types = (string(p, sample_type.r#type), string(p, sample_type.unit));
        let period_type = p.period_type.expect("a period type");
        let period_types = (string(p, period_type.r#type), string(p, period_type.unit));
        let expected_values: Vec<Vec<i64>> = if label(one, "__name__") == Some("process_cpu") {
            assert_eq!(types, ("cpu", "nanoseconds"));
            assert_eq!(period_types, ("cpu", "nanoseconds"));
            assert_eq!(p.period, 50_000_000);
            // The eBPF profiler sends CPU samples as timestamps only: one count per timestamp.
            source
                .samples
                .iter()
                .map(|s| {
                    assert!(s.values.is_empty());
                    vec![s.timestamps_unix_nano.len() as i64 * 50_000_000]
                })
                .collect()
        } else {
            assert_eq!(types, ("events", "nanoseconds"));
            assert_eq!(period_types, ("", ""), "present but empty, as sent");
            assert_eq!(p.period, 0);
            source
                .samples
                .iter()
                .map(|s| vec![s.values.iter().sum()])
                .collect()
        };
        let values: Vec<Vec<i64>> = p.sample.iter().map(|s| s.value.clone()).collect();
        assert_eq!(values, expected_values);
        // Thread and executable names are sample labels; the int attributes are dropped.
        let keys: std::collections::BTreeSet<&str> = p
            .sample
            .iter()
            .flat_map(|s| &s.label)
            .map(|l| string(p, l.key))
            .collect();
        assert!(keys.contains("thread.name"), "{keys:?}");
        assert!(!keys.contains("process.pid") && !keys.contains("thread.id"));
    }
}

#[test]
fn corrupted_fixture_has_an_invalid_stack_index() {
    let request = fixture("otel-ebpf-profile-corrupted.pb.bin");
    let error = otlp::convert(&request, NOW).expect_err("must fail");
    assert_eq!(
        error.to_string(),
        "failed to convert otel profile: invalid stack index: 1000000000"
    );
}

/// What the server does with each converted pprof, then `SelectMergeProfile` of
/// `process_cpu:cpu:nanoseconds:cpu:nanoseconds` for `service_name="unknown_service"`.
#[test]
fn ebpf_fixture_select_merge_profile_matches_pyroscope() {
    let mut request = fixture("otel-ebpf-profile.pb.bin");
    // As Pyroscope's test does: a scope attribute that marks the run.
    for scope in request
        .resource_profiles
        .iter_mut()
        .flat_map(|r| &mut r.scope_profiles)
    {
        let scope = scope.scope.get_or_insert_with(Default::default);
        scope.attributes.push(KeyValue {
            key: "test_run_no".to_owned(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("run-1".to_owned())),
            }),
        });
    }
    let limits = ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..ProfileLimits::default()
    };
    let wanted: ProfileType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
        .parse()
        .expect("profile type");
    let mut merger = ProfileMerger::new(MergeOptions {
        value_index: Some(0),
        drop_labels: true,
    });
    let mut merged_series = 0;
    for one in convert(&request) {
        let labels = Labels::from_pairs(one.labels);
        let pushed = prepare_push(
            one.profile,
            &labels,
            &limits,
            &LabelLimits::default(),
            one.raw_size,
            NOW,
        )
        .expect("valid push");
        for series in pushed {
            let matches = series.profile_types().iter().any(|(profile_type, labels)| {
                *profile_type == wanted
                    && labels.get("service_name") == Some("unknown_service")
                    && labels.get("test_run_no") == Some("run-1")
            });
            if matches {
                merger.merge(&series.profile).expect("same sample type");
                merged_series += 1;
            }
        }
    }
    assert!(merged_series > 1, "series are split by sample labels");
    let mut merged = merger.finish();
    set_select_merge_metadata(&mut merged, &wanted, 1000, NOW / 1_000_000);
    assert!(!merged.function.is_empty() && !merged.mapping.is_empty());
    assert!(!merged.location.is_empty() && !merged.sample.is_empty());
    let ours = sorted_samples(strprofile(&merged, false));
    let expected = sorted_samples(golden("otel-ebpf-profile.out.json"));
    if ours != expected {
        panic!("{}", describe_difference(&ours, &expected));
    }
}

/// Which samples differ, for a readable failure.
fn describe_difference(ours: &Value, expected: &Value) -> String {
    let samples = |v: &Value| -> Vec<String> {
        v["samples"]
            .as_array()
            .map(|a| a.iter().map(Value::to_string).collect())
            .unwrap_or_default()
    };
    let (a, b) = (samples(ours), samples(expected));
    let only_ours: Vec<&String> = a.iter().filter(|s| !b.contains(s)).collect();
    let only_expected: Vec<&String> = b.iter().filter(|s| !a.contains(s)).collect();
    format!(
        "metadata ours {} / expected {}\n{} samples vs {}\nonly ours: {only_ours:#?}\nonly expected: {only_expected:#?}",
        json!({"sample_types": ours["sample_types"], "period": ours["period"]}),
        json!({"sample_types": expected["sample_types"], "period": expected["period"]}),
        a.len(),
        b.len(),
    )
}

// ---------------------------------------------------------------------------------------------
// protojson (note §3.3)

#[test]
fn protojson_round_trips_the_fixture() {
    let request = fixture("otel-ebpf-profile.pb.bin");
    let text = serde_json::to_string(&request).expect("serialise");
    // 1.9 names, 64-bit integers as strings, as Go's protojson writes them.
    assert!(text.contains("\"samples\":") && text.contains("\"lines\":"));
    assert!(text.contains("\"timeUnixNano\":\""));
    let parsed: ExportProfilesServiceRequest = serde_json::from_str(&text).expect("parse back");
    assert_eq!(parsed, request);
    assert_eq!(convert(&parsed), convert(&request));
}

fn rename_key(value: &mut Value, inside: &str, from: &str, to: &str) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(items)) = map.get_mut(inside) {
                for item in items.iter_mut() {
                    if let Some(moved) = item.as_object_mut().and_then(|o| o.remove(from)) {
                        item[to] = moved;
                    }
                }
            }
            for child in map.values_mut() {
                rename_key(child, inside, from, to);
            }
        }
        Value::Array(items) => {
            for child in items {
                rename_key(child, inside, from, to);
            }
        }
        _ => {}
    }
}

#[test]
fn otlp_1_8_json_names_are_refused_and_1_9_names_accepted() {
    for (json_file, binary_file) in [
        ("otel-ebpf-profile.pb.json", "otel-ebpf-profile.pb.bin"),
        (
            "otel-ebpf-profile-corrupted.pb.json",
            "otel-ebpf-profile-corrupted.pb.bin",
        ),
    ] {
        let text = std::fs::read_to_string(testdata(&format!("otlp/{json_file}"))).expect("read");
        let error = serde_json::from_str::<ExportProfilesServiceRequest>(&text)
            .expect_err("OTLP 1.8 names are unknown fields");
        let message = error.to_string();
        assert!(
            message.contains("unknown field `sample`") || message.contains("unknown field `line`"),
            "{message}"
        );
        // With the 1.8 → 1.9 renames the fixture JSON is the binary fixture.
        let mut value: Value = serde_json::from_str(&text).expect("JSON");
        rename_key(&mut value, "profiles", "sample", "samples");
        rename_key(&mut value, "locationTable", "line", "lines");
        let parsed: ExportProfilesServiceRequest =
            serde_json::from_value(value).expect("1.9 names parse");
        assert_eq!(parsed, fixture(binary_file), "{json_file}");
    }
}

/// The protojson rules of note §3.3 that our generated serde impls share with Go's protojson.
#[test]
fn protojson_follows_go_protojson() {
    fn parse(text: &str) -> serde_json::Result<ExportProfilesServiceRequest> {
        serde_json::from_str(text)
    }
    let refused = [
        r#"{"resourceProfiles":[],"dictionary":{},"extra":1}"#,
        r#"{"dictionary":{},"dictionary":{}}"#,
        r#"{"resourceProfiles":[],"resource_profiles":[]}"#,
        r#"{"resourceProfiles":[{"resource":{"attributes":[{"key":"a",
            "value":{"stringValue":"x","intValue":"3"}}]}}]}"#,
    ];
    for text in refused {
        assert!(parse(text).is_err(), "{text}");
    }
    // Bytes in standard or URL-safe base64, padded or not; 32-bit integers quoted or not;
    // 64-bit integers as strings or numbers; a null message is unset.
    let link = |text: &str| {
        parse(text)
            .expect("valid")
            .dictionary
            .expect("dictionary")
            .link_table[0]
            .span_id
            .clone()
    };
    assert_eq!(
        link(r#"{"dictionary":{"linkTable":[{"spanId":"+/8="}]}}"#),
        [251, 255]
    );
    assert_eq!(
        link(r#"{"dictionary":{"linkTable":[{"spanId":"-_8"}]}}"#),
        [251, 255]
    );
    let stacks =
        parse(r#"{"dictionary":{"stackTable":[{"locationIndices":["1",2]}]}}"#).expect("valid");
    assert_eq!(
        stacks.dictionary.expect("dictionary").stack_table[0].location_indices,
        [1, 2]
    );
    let numbers = parse(
        r#"{"resourceProfiles":[{"scopeProfiles":[{"profiles":[{"period":5,"timeUnixNano":7}]}]}]}"#,
    )
    .expect("valid");
    let profile = &numbers.resource_profiles[0].scope_profiles[0].profiles[0];
    assert_eq!((profile.period, profile.time_unix_nano), (5, 7));
    assert_eq!(
        parse(r#"{"dictionary":null}"#).expect("valid").dictionary,
        None
    );
}

#[test]
fn protojson_accepts_proto_names() {
    let proto_names = r#"{"resource_profiles":[{"scope_profiles":[{"profiles":[{
        "sample_type":{"type_strindex":1,"unit_strindex":2},
        "samples":[{"stack_index":0,"values":["5"]}],"time_unix_nano":"239"}]}]}],
        "dictionary":{"string_table":["","samples","ms"],"stack_table":[{}]}}"#;
    let request: ExportProfilesServiceRequest =
        serde_json::from_str(proto_names).expect("proto field names are accepted");
    let series = convert(&request);
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].profile.sample[0].value, vec![5]);
    assert_eq!(series[0].profile.time_nanos, 239);
}
