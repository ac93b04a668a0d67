//! `/ingest` with the legacy text formats and speedscope, end to end: the profile type, labels
//! and values Pyroscope derives (`api.md` §2.1, §7), read back through `/pyroscope/render` and
//! the Connect label APIs.

mod common;

use common::{Server, get_json, request, start, url_encode};

fn ingest(server: &Server, query: &str, content_type: Option<&str>, body: &[u8]) -> (u16, String) {
    let headers: Vec<(&str, &str)> = content_type
        .map(|c| vec![("Content-Type", c)])
        .unwrap_or_default();
    request(server, "POST", &format!("/ingest?{query}"), &headers, body)
}

/// Collapsed stacks (`a;b value`, sorted) of a render answer.
fn collapsed(server: &Server, profile_type: &str, selector: &str) -> Vec<String> {
    let query = url_encode(&format!("{profile_type}{selector}"));
    let render = get_json(
        server,
        &format!("/pyroscope/render?query={query}&from=946656000&until=now"),
        &[],
    );
    // Walk the flamebearer levels back into stacks (4 values per node: x delta, total, self, name).
    let names: Vec<String> =
        serde_json::from_value(render["flamebearer"]["names"].clone()).expect("names");
    let levels: Vec<Vec<i64>> =
        serde_json::from_value(render["flamebearer"]["levels"].clone()).expect("levels");
    let mut out = Vec::new();
    // (x start, x end, path) of every node of the previous level.
    let mut previous: Vec<(i64, i64, Vec<String>)> = vec![(0, i64::MAX, Vec::new())];
    for level in levels.iter().skip(1) {
        let mut current = Vec::new();
        let mut x = 0;
        for node in level.chunks(4) {
            x += node[0];
            let (total, self_value, name) = (node[1], node[2], &names[node[3] as usize]);
            let parent = previous
                .iter()
                .find(|(start, end, _)| *start <= x && x < *end)
                .map(|(_, _, path)| path.clone())
                .unwrap_or_default();
            let mut path = parent;
            path.push(name.clone());
            if self_value != 0 {
                out.push(format!("{} {self_value}", path.join(";")));
            }
            current.push((x, x + total, path));
            x += total;
        }
        previous = current;
    }
    out.sort();
    out
}

#[test]
fn folded_lines_and_speedscope_bodies_become_series() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let cpu = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

    // The curl example of api.md: folded with no format, 100 Hz → 10 ms per sample.
    let (status, text) = ingest(
        &server,
        &format!("name={}&spyName=gospy", url_encode("app{env=prod}")),
        None,
        b"foo;bar 100\nfoo;baz 200",
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        collapsed(
            &server,
            cpu,
            "{service_name=\"app\",env=\"prod\",pyroscope_spy=\"gospy\"}"
        ),
        vec!["foo;bar 1000000000", "foo;baz 2000000000"]
    );

    // Lines count one per line; `.wall` selects the wall type.
    let (status, text) = ingest(
        &server,
        "name=lines-app.wall&format=lines&sampleRate=1000",
        None,
        b"a;b\na;b\na;c\n",
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        collapsed(
            &server,
            "wall:wall:nanoseconds:cpu:nanoseconds",
            "{service_name=\"lines-app\"}"
        ),
        vec!["a;b 2000000", "a;c 1000000"]
    );

    // Speedscope: simple.speedscope.json → a;b 500, a;b;c 500, a;b;d 400 at 10 000 Hz.
    let simple = std::fs::read(testkit::testdata("speedscope/simple.speedscope.json"))
        .expect("speedscope file");
    let (status, text) = ingest(&server, "name=ss-app&format=speedscope", None, &simple);
    assert_eq!(status, 200, "{text}");
    let period = 1_000_000_000 / 10_000;
    assert_eq!(
        collapsed(&server, cpu, "{service_name=\"ss-app\"}"),
        vec![
            format!("a;b {}", 500 * period),
            format!("a;b;c {}", 500 * period),
            format!("a;b;d {}", 400 * period)
        ]
    );
    let values = get_json(&server, "/pyroscope/label-values?label=profile_name", &[]);
    assert_eq!(values, serde_json::json!(["simple.txt"]));

    // Two profiles with a unit: `app.seconds` → wall type, one series per profile name.
    let two = std::fs::read(testkit::testdata("speedscope/two-sampled.speedscope.json"))
        .expect("speedscope file");
    let (status, text) = ingest(&server, "name=two-app&format=speedscope", None, &two);
    assert_eq!(status, 200, "{text}");
    let types = get_json(&server, "/pyroscope/label-values?label=__name__", &[]);
    assert!(
        types
            .as_array()
            .expect("types")
            .contains(&serde_json::json!("wall:wall:nanoseconds:cpu:nanoseconds")),
        "{types}"
    );

    // Errors: a bad count and an unknown type suffix are 422; no name is 400.
    let (status, text) = ingest(&server, "name=bad", None, b"foo;bar x");
    assert_eq!(status, 422, "{text}");
    let (status, text) = ingest(&server, "name=bad.nosuchtype", None, b"foo 1");
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("unknown profile type"), "{text}");
    assert_eq!(ingest(&server, "format=lines", None, b"a").0, 400);
    // Text uploads carrying a profile id are dropped with 200.
    let (status, _) = ingest(
        &server,
        &format!("name={}", url_encode("dropped{profile_id=1}")),
        None,
        b"x 1",
    );
    assert_eq!(status, 200);
    let services = get_json(&server, "/pyroscope/label-values?label=service_name", &[]);
    assert!(
        !services
            .as_array()
            .expect("names")
            .contains(&serde_json::json!("dropped"))
    );
}
