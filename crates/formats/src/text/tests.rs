//! Tests of [`convert`] as the server uses it: real speedscope files with Pyroscope's expected
//! results and profile types, the `curl` example of `api.md`, round trips through small
//! encoders of each format, and arbitrary bodies.

use super::*;
use crate::pprof::{self, LabelLimits, ProfileLimits};
use model::Labels;
use proptest::prelude::*;
use std::collections::BTreeMap;

/// The profile's stacks as sorted `a;b value` lines, read from the pprof alone.
fn collapsed(profile: &Profile) -> String {
    let name_of = |location_id: u64| -> &str {
        let location = profile
            .location
            .iter()
            .find(|l| l.id == location_id)
            .expect("location");
        let function = profile
            .function
            .iter()
            .find(|f| f.id == location.line[0].function_id)
            .expect("function");
        &profile.string_table[function.name as usize]
    };
    let mut lines: Vec<String> = profile
        .sample
        .iter()
        .map(|s| {
            let frames: Vec<&str> = s.location_id.iter().rev().map(|&id| name_of(id)).collect();
            format!("{} {}", frames.join(";"), s.value[0])
        })
        .collect();
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// The profile type id Pyroscope would store the profile under.
fn profile_type(text: &TextProfile) -> String {
    let labels = Labels::from_pairs([
        ("__name__", text.metric_name.as_str()),
        ("service_name", text.service_name.as_str()),
    ]);
    let types = pprof::profile_type_labels(&labels, &text.profile);
    assert_eq!(types.len(), 1);
    types[0].0.to_string()
}

fn convert_one(format: TextFormat, body: &[u8], app: &str) -> TextProfile {
    let mut profiles = convert(TextInput::new(format, body, app)).expect("valid body");
    assert_eq!(profiles.len(), 1);
    profiles.remove(0)
}

#[test]
fn curl_example_is_cpu_nanoseconds() {
    let text = convert_one(TextFormat::Folded, b"foo;bar 100", "app");
    assert_eq!(text.metric_name, "process_cpu");
    assert_eq!(text.service_name, "app");
    assert!(text.labels.is_empty());
    assert_eq!(
        profile_type(&text),
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    );
    assert_eq!(text.profile.period, 10_000_000);
    assert_eq!(collapsed(&text.profile), "foo;bar 1000000000\n");
    assert_eq!(text.profile.string_table[0], "");
    assert_eq!(text.profile.sample_type.len(), 1);
}

#[test]
fn converted_profiles_pass_the_push_path() {
    let now = 1_700_000_000_000_000_000;
    let mut input = TextInput::new(TextFormat::Folded, b"foo;bar 100\nfoo;baz 5\n", "app");
    input.start_time_nanos = now;
    let text = convert(input).expect("valid").remove(0);
    let labels = Labels::from_pairs([
        ("__name__", text.metric_name.as_str()),
        ("service_name", text.service_name.as_str()),
    ]);
    let series = pprof::prepare_push(
        text.profile,
        &labels,
        &ProfileLimits::default(),
        &LabelLimits::default(),
        0,
        now,
    )
    .expect("valid push");
    assert_eq!(series.len(), 1);
    let tree = pprof::to_tree(&series[0].profile, 0);
    assert_eq!(
        model::write_collapsed(&tree),
        "foo;bar 1000000000\nfoo;baz 50000000\n"
    );
    assert_eq!(series[0].profile.time_nanos, now);
}

#[test]
fn suffixes_and_sample_rates() {
    let body = b"a;b 3\n";
    let text = convert_one(TextFormat::Folded, body, "my.app.inuse_space");
    assert_eq!(text.service_name, "my.app");
    assert_eq!(text.metric_name, "memory");
    assert_eq!(profile_type(&text), "memory:inuse_space:bytes::");
    assert_eq!(collapsed(&text.profile), "a;b 3\n");
    assert_eq!(text.profile.period_type, None);

    let mut input = TextInput::new(TextFormat::Folded, body, "app.wall");
    input.sample_rate = 1000;
    let text = convert(input).expect("valid").remove(0);
    assert_eq!(profile_type(&text), "wall:wall:nanoseconds:cpu:nanoseconds");
    assert_eq!(collapsed(&text.profile), "a;b 3000000\n");

    input.sample_rate = 0;
    let text = convert(input).expect("valid").remove(0);
    assert_eq!(profile_type(&text), "wall:samples:count::");
    assert_eq!(collapsed(&text.profile), "a;b 3\n");

    let err = convert(TextInput::new(TextFormat::Folded, body, "my.app")).expect_err("app");
    assert!(matches!(&err, TextError::UnknownProfileType(t) if t == "app"));
    assert_eq!(err.to_string(), "unknown profile type: app");
    // A bad body is reported before an unknown type.
    let err = convert(TextInput::new(TextFormat::Folded, b"a x", "my.app")).expect_err("body");
    assert!(matches!(err, TextError::BadCount { .. }));
}

#[test]
fn speedscope_files_give_pyroscope_profile_types() {
    let read = |name: &str, app: &str| {
        let body = testkit::read_testdata(&format!("speedscope/{name}"));
        let mut input = TextInput::new(TextFormat::Speedscope, &body, app);
        input.start_time_nanos = 7;
        convert(input).expect(name)
    };
    let expected = "a;b 500\na;b;c 500\na;b;d 400\n";
    let scaled = |period: i64| {
        expected
            .lines()
            .map(|l| {
                let (stack, value) = l.rsplit_once(' ').expect("line");
                let value: i64 = value.parse().expect("value");
                format!("{stack} {}\n", value * period)
            })
            .collect::<String>()
    };

    let simple = read("simple.speedscope.json", "foo");
    assert_eq!(simple.len(), 1);
    assert_eq!(simple[0].service_name, "foo");
    assert_eq!(simple[0].sample_rate, 10_000);
    assert_eq!(
        simple[0].labels,
        [LabelPair::new("profile_name", "simple.txt")]
    );
    assert_eq!(
        profile_type(&simple[0]),
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    );
    assert_eq!(simple[0].profile.period, 100_000);
    assert_eq!(simple[0].profile.time_nanos, 7);
    assert_eq!(collapsed(&simple[0].profile), scaled(100_000));

    let two = read("two-sampled.speedscope.json", "foo");
    assert_eq!(two.len(), 2);
    for (text, name) in two.iter().zip(["one", "two"]) {
        assert_eq!(text.service_name, "foo");
        assert_eq!(text.labels, [LabelPair::new("profile_name", name)]);
        assert_eq!(profile_type(text), "wall:wall:nanoseconds:cpu:nanoseconds");
        assert_eq!(collapsed(&text.profile), scaled(10_000_000));
    }

    let bytes = read("two-sampled-bytes.speedscope.json", "foo");
    assert_eq!(bytes.len(), 2);
    for text in &bytes {
        assert_eq!(profile_type(text), "memory:samples:bytes::");
        assert_eq!(collapsed(&text.profile), "a;b 5\na;b;c 5\na;b;d 4\n");
    }

    let duplicates = read("duplicates.speedscope.json", "foo");
    assert_eq!(duplicates.len(), 1);
    assert_eq!(
        duplicates[0].labels,
        [LabelPair::new("profile_name", "one")]
    );
    assert_eq!(
        profile_type(&duplicates[0]),
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
    );
    assert_eq!(
        collapsed(&duplicates[0].profile),
        "a;b 15000000000\na;b;c 15000000000\na;b;d 12000000000\n"
    );

    // Several profiles keep the app's own suffix in the service name.
    let two = read("two-sampled.speedscope.json", "foo.cpu");
    assert_eq!(two[0].service_name, "foo.cpu");
    assert_eq!(two[0].metric_name, "wall");
}

#[test]
fn every_format_gives_the_same_profile() {
    let mut keys = BTreeMap::new();
    keys.insert(b"main;work;hash".to_vec(), 3u64);
    keys.insert(b"main;work".to_vec(), 2);
    keys.insert(b"main;idle".to_vec(), 1);
    let folded = b"main;work;hash 3\nmain;work 2\nmain;idle 1\n";
    let lines =
        b"main;work;hash\nmain;idle\nmain;work;hash\nmain;work\nmain;work;hash\nmain;work\n";
    let stacks: BTreeMap<Vec<Vec<u8>>, u64> = keys
        .iter()
        .map(|(k, v)| (k.split(|&b| b == b';').map(<[u8]>::to_vec).collect(), *v))
        .collect();
    let bodies = [
        (TextFormat::Folded, folded.to_vec()),
        (TextFormat::Lines, lines.to_vec()),
        (TextFormat::Trie, binary::tests::encode_trie(&keys)),
        (TextFormat::Tree, binary::tests::encode_tree(&stacks)),
    ];
    for (format, body) in bodies {
        let text = convert_one(format, &body, "app.alloc_objects");
        assert_eq!(
            collapsed(&text.profile),
            "main;idle 1\nmain;work 2\nmain;work;hash 3\n",
            "{format:?}"
        );
        assert_eq!(profile_type(&text), "memory:alloc_objects:count::");
        assert_eq!(text.profile.function.len(), 4, "{format:?}");
    }
}

#[test]
fn format_selection_follows_pyroscope() {
    let cases = [
        ("", "", Some(TextFormat::Folded)),
        ("folded", "text/plain", Some(TextFormat::Folded)),
        ("trie", "", Some(TextFormat::Trie)),
        ("lines", "binary/octet-stream+trie", Some(TextFormat::Trie)),
        ("", "binary/octet-stream+tree", Some(TextFormat::Tree)),
        ("lines", "", Some(TextFormat::Lines)),
        (
            "speedscope",
            "multipart/form-data; boundary=x",
            Some(TextFormat::Speedscope),
        ),
        ("jfr", "", None),
        ("pprof", "", None),
        ("", "multipart/form-data; boundary=x", None),
    ];
    for (format, content_type, expected) in cases {
        assert_eq!(
            TextFormat::select(format, content_type),
            expected,
            "{format:?} {content_type:?}"
        );
    }
}

#[test]
fn expanding_bodies_are_bounded() {
    // A trie chain of 20 000 one-frame nodes, each with a value: 3 bytes a node, but
    // 200 million location references as samples.
    let mut body = Vec::new();
    for _ in 0..20_000 {
        body.extend_from_slice(&[2, b'a', b';', 1, 1]);
    }
    let err = convert(TextInput::new(TextFormat::Trie, &body, "app")).expect_err("too big");
    assert!(
        matches!(err, TextError::TooManySampleFrames { .. }),
        "{err}"
    );

    // Evented speedscope: each open costs one node, not the whole stack.
    let mut events = Vec::new();
    for _ in 0..50_000 {
        events.push(r#"{"type":"O","frame":0,"at":0}"#.to_owned());
    }
    let body = format!(
        r#"{{"$schema":"https://www.speedscope.app/file-format-schema.json","shared":{{"frames":[{{"name":"a"}}]}},"profiles":[{{"type":"evented","unit":"none","events":[{}]}}]}}"#,
        events.join(",")
    );
    let text = convert(TextInput::new(
        TextFormat::Speedscope,
        body.as_bytes(),
        "app",
    ))
    .expect("valid");
    assert!(text[0].profile.sample.is_empty());
}

fn frame() -> impl Strategy<Value = String> {
    "[a-z]{1,3}"
}

fn stacks() -> impl Strategy<Value = BTreeMap<Vec<String>, u64>> {
    prop::collection::btree_map(prop::collection::vec(frame(), 1..6), 1u64..1000, 0..20)
}

fn expected(stacks: &BTreeMap<Vec<String>, u64>) -> String {
    let mut lines: Vec<String> = stacks
        .iter()
        .map(|(frames, v)| format!("{} {v}", frames.join(";")))
        .collect();
    lines.sort();
    lines.iter().map(|l| format!("{l}\n")).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let limits = TextLimits { max_nodes: 1_000, max_sample_frames: 10_000, max_expansion_bytes: 100_000 };
        for format in TextFormat::ALL {
            for app in ["app", "app.inuse_space", "app.nope"] {
                let mut input = TextInput::new(format, &body, app);
                input.limits = limits;
                if let Ok(profiles) = convert(input) {
                    for text in profiles {
                        prop_assert_eq!(text.profile.string_table[0].as_str(), "");
                        prop_assert_eq!(text.profile.sample_type.len(), 1);
                        let frames: usize = text.profile.sample.iter().map(|s| s.location_id.len()).sum();
                        prop_assert!(frames <= limits.max_sample_frames);
                    }
                }
            }
        }
    }

    #[test]
    fn arbitrary_text_bodies_never_panic(body in "[a-c; \\n\\r0-9+-]{0,200}") {
        for format in [TextFormat::Folded, TextFormat::Lines] {
            let _ = convert(TextInput::new(format, body.as_bytes(), "app"));
        }
    }

    #[test]
    fn damaged_encodings_never_panic(
        stacks in stacks(),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let keys: BTreeMap<Vec<u8>, u64> =
            stacks.iter().map(|(f, v)| (f.join(";").into_bytes(), *v)).collect();
        let frames: BTreeMap<Vec<Vec<u8>>, u64> = stacks
            .iter()
            .map(|(f, v)| (f.iter().map(|s| s.as_bytes().to_vec()).collect(), *v))
            .collect();
        for (format, mut body) in [
            (TextFormat::Trie, binary::tests::encode_trie(&keys)),
            (TextFormat::Tree, binary::tests::encode_tree(&frames)),
        ] {
            let at = flip.index(body.len());
            body[at] = byte;
            let _ = convert(TextInput::new(format, &body, "app"));
            body.truncate(cut.index(body.len()));
            let _ = convert(TextInput::new(format, &body, "app"));
        }
    }

    #[test]
    fn every_encoding_round_trips(stacks in stacks()) {
        let want = expected(&stacks);
        let folded: String = stacks.iter().map(|(f, v)| format!("{} {v}\n", f.join(";"))).collect();
        let lines: String = stacks.iter().flat_map(|(f, v)| {
            std::iter::repeat_n(format!("{}\n", f.join(";")), *v as usize % 5 + 1)
        }).collect();
        let lines_want = expected(&stacks.iter().map(|(f, v)| (f.clone(), *v % 5 + 1)).collect());
        let keys: BTreeMap<Vec<u8>, u64> =
            stacks.iter().map(|(f, v)| (f.join(";").into_bytes(), *v)).collect();
        let frames: BTreeMap<Vec<Vec<u8>>, u64> = stacks
            .iter()
            .map(|(f, v)| (f.iter().map(|s| s.as_bytes().to_vec()).collect(), *v))
            .collect();
        let cases = [
            (TextFormat::Folded, folded.into_bytes(), &want),
            (TextFormat::Lines, lines.into_bytes(), &lines_want),
            (TextFormat::Trie, binary::tests::encode_trie(&keys), &want),
            (TextFormat::Tree, binary::tests::encode_tree(&frames), &want),
        ];
        for (format, body, want) in cases {
            let mut input = TextInput::new(format, &body, "app");
            input.sample_rate = 0;
            let text = convert(input).expect("valid").remove(0);
            prop_assert_eq!(&collapsed(&text.profile), want, "{:?}", format);
        }
    }
}
