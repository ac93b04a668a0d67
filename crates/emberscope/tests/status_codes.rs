//! Pyroscope's status-code matrix (`api.md` §8, TestStatusCodes, v1 storage) against
//! `emberscope serve`: `/pyroscope/render`, `/pyroscope/render-diff` and the querier's Connect
//! methods in JSON, every case with the status Pyroscope answers. Plus hostile input: bombs,
//! huge labels, truncated protobuf — each refused with its 4xx while the server stays up.

mod common;

use common::{Server, request, start, url_encode};

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

fn loaded() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let cpu = std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof");
    let (status, text) = request(&server, "POST", "/ingest?name=app&format=pprof", &[], &cpu);
    assert_eq!(status, 200, "{text}");
    (dir, server)
}

fn render_cases() -> Vec<(String, &'static str, u16)> {
    let q = url_encode(&format!("{CPU}{{service_name=\"app\"}}"));
    let range = "from=946656000&until=now";
    let mut cases: Vec<(String, &'static str, u16)> = [
        (format!("query={q}&{range}"), "valid"),
        (format!("query={q}&{range}&format=dot"), "dot"),
        (
            format!("query={q}&{range}&format=dot&maxNodes=10"),
            "dot with maxNodes",
        ),
        (
            format!("query={q}&{range}&format=dot&max-nodes=10"),
            "dot with max-nodes",
        ),
        (
            format!("query={q}&{range}&groupBy=service_name"),
            "group by one label",
        ),
        (
            format!("query={q}&{range}&groupBy=service_name&groupBy=pyroscope_spy"),
            "group by two labels",
        ),
        (
            format!("query={q}&{range}&aggregation=sum"),
            "aggregation sum",
        ),
        (
            format!("query={q}&{range}&aggregation=avg"),
            "aggregation avg",
        ),
        (
            format!("query={q}&{range}&aggregation=median"),
            "invalid aggregation is ignored",
        ),
        (format!("query={q}&{range}&maxNodes=0"), "max nodes zero"),
        (
            format!("query={q}&{range}&maxNodes=abc"),
            "max nodes not a number",
        ),
        (
            format!(
                "query={q}&{range}&maxNodes=100&groupBy=service_name&aggregation=avg&format=json"
            ),
            "all combined",
        ),
        (format!("query={q}"), "default range"),
    ]
    .into_iter()
    .map(|(query, name)| (query, name, 200))
    .collect();
    cases.extend(
        [
            (format!("query={q}&from=0&until=0"), "zero range"),
            ("from=now-1h&until=now".to_owned(), "missing query"),
            ("query=&from=now-1h&until=now".to_owned(), "empty query"),
            (
                format!("query={}&from=now-1h", url_encode("{service_name=")),
                "unparsable query",
            ),
            (
                format!("query={}&from=now-1h", url_encode("{service_name=\"app\"}")),
                "no profile type",
            ),
            (
                format!("query={}&from=now-1h", url_encode("cpu{}")),
                "invalid profile type",
            ),
            (
                format!("query={q}&from=0&until=0&format=dot"),
                "dot with zero range",
            ),
            (
                format!("query={q}&{range}&maxNodes=2000000"),
                "max nodes over the limit",
            ),
            (
                format!("query={q}&{range}&maxNodes=-1"),
                "negative max nodes",
            ),
        ]
        .into_iter()
        .map(|(query, name)| (query, name, 400)),
    );
    cases
}

#[test]
fn render_and_render_diff_answer_pyroscopes_statuses() {
    let (_dir, server) = loaded();
    for (query, name, want) in render_cases() {
        let (status, body) = request(
            &server,
            "GET",
            &format!("/pyroscope/render?{query}"),
            &[],
            b"",
        );
        assert_eq!(status, want, "render, {name}: {body}");
    }
    let q = url_encode(&format!("{CPU}{{service_name=\"app\"}}"));
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let (status, _) = request(
            &server,
            method,
            &format!("/pyroscope/render?query={q}"),
            &[],
            b"",
        );
        assert_eq!(status, 405, "render {method}");
        let (status, _) = request(&server, method, "/pyroscope/render-diff", &[], b"");
        assert_eq!(status, 405, "render-diff {method}");
    }
    let side = "from=946656000&until=now";
    let mem = url_encode("memory:inuse_space:bytes:space:bytes{}");
    let bad = url_encode("{a=");
    let diff_cases: Vec<(String, &str, u16)> = vec![
        (
            format!(
                "leftQuery={q}&leftFrom=946656000&leftUntil=now&rightQuery={q}&rightFrom=946656000&rightUntil=now"
            ),
            "valid",
            200,
        ),
        (
            format!("leftQuery={q}&rightQuery={q}&maxNodes=10&{side}"),
            "max nodes",
            200,
        ),
        (
            format!("rightQuery={q}&rightFrom=now-1h&rightUntil=now"),
            "missing left query",
            400,
        ),
        (
            format!("leftQuery={q}&leftFrom=now-1h&leftUntil=now"),
            "missing right query",
            400,
        ),
        (
            format!("leftQuery={bad}&rightQuery={q}"),
            "invalid left query",
            400,
        ),
        (
            format!("leftQuery={q}&rightQuery={bad}"),
            "invalid right query",
            400,
        ),
        (
            format!("leftQuery={q}&rightQuery={mem}"),
            "mismatched profile types",
            400,
        ),
        (
            format!("leftQuery={q}&leftFrom=0&leftUntil=0&rightQuery={q}"),
            "zero left range",
            400,
        ),
        (
            format!("leftQuery={q}&rightQuery={q}&rightFrom=0&rightUntil=0"),
            "zero right range",
            400,
        ),
    ];
    for (query, name, want) in diff_cases {
        let (status, body) = request(
            &server,
            "GET",
            &format!("/pyroscope/render-diff?{query}"),
            &[],
            b"",
        );
        assert_eq!(status, want, "render-diff, {name}: {body}");
    }
}

/// One Connect JSON call.
fn call(server: &Server, method: &str, content_type: &str, body: &str) -> (u16, String) {
    request(
        server,
        "POST",
        &format!("/querier.v1.QuerierService/{method}"),
        &[("Content-Type", content_type)],
        body.as_bytes(),
    )
}

#[test]
fn querier_methods_answer_pyroscopes_statuses() {
    let (_dir, server) = loaded();
    let now = model::time::now_ms();
    let start: i64 = 946_656_000_000;
    let select = |extra: &str| {
        format!(
            r#"{{"profileTypeID":"{CPU}","labelSelector":"{{service_name=\"app\"}}","start":{start},"end":{now}{extra}}}"#
        )
    };
    let valid_select = select("");
    let mut cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "ProfileTypes",
            format!(r#"{{"start":{start},"end":{now}}}"#),
            200,
            "valid",
        ),
        ("ProfileTypes", "{}".to_owned(), 200, "zero range"),
        (
            "ProfileTypes",
            r#"{"start":-5,"end":-1}"#.to_owned(),
            200,
            "negative range",
        ),
        (
            "ProfileTypes",
            r#"{"start":"now-1h"}"#.to_owned(),
            400,
            "wrong JSON type",
        ),
        ("ProfileTypes", "{not json".to_owned(), 400, "invalid JSON"),
        ("ProfileTypes", String::new(), 400, "empty body"),
        (
            "LabelNames",
            format!(r#"{{"start":{start},"end":{now}}}"#),
            200,
            "valid",
        ),
        ("LabelNames", "{}".to_owned(), 200, "no range"),
        (
            "LabelNames",
            r#"{"matchers":["{a="]}"#.to_owned(),
            200,
            "invalid matcher (v1)",
        ),
        (
            "LabelValues",
            r#"{"name":"service_name"}"#.to_owned(),
            200,
            "valid",
        ),
        (
            "LabelValues",
            r#"{"name":"service_name","matchers":["{"]}"#.to_owned(),
            200,
            "invalid matcher (v1)",
        ),
        (
            "Series",
            r#"{"matchers":["{service_name=\"app\"}"]}"#.to_owned(),
            200,
            "valid",
        ),
        (
            "Series",
            r#"{"labelNames":["service_name"]}"#.to_owned(),
            200,
            "label names, no range",
        ),
        ("SelectMergeStacktraces", valid_select.clone(), 200, "valid"),
        (
            "SelectMergeStacktraces",
            select(r#","maxNodes":10"#),
            200,
            "max nodes",
        ),
        (
            "SelectMergeStacktraces",
            select(r#","format":2"#),
            200,
            "tree format",
        ),
        (
            "SelectMergeStacktraces",
            select(r#","format":"PROFILE_FORMAT_TREE""#),
            200,
            "tree format by name",
        ),
        (
            "SelectMergeStacktraces",
            format!(
                r#"{{"profileTypeID":"{CPU}","labelSelector":"{{}}","start":{now},"end":{start}}}"#
            ),
            400,
            "start after end",
        ),
        (
            "SelectMergeStacktraces",
            format!(r#"{{"labelSelector":"{{}}","start":{start},"end":{now}}}"#),
            400,
            "missing profile type",
        ),
        (
            "SelectMergeStacktraces",
            format!(r#"{{"profileTypeID":"","labelSelector":"{{}}","start":{start},"end":{now}}}"#),
            400,
            "empty profile type",
        ),
        (
            "SelectMergeStacktraces",
            format!(
                r#"{{"profileTypeID":"cpu","labelSelector":"{{}}","start":{start},"end":{now}}}"#
            ),
            400,
            "invalid profile type",
        ),
        (
            "SelectMergeStacktraces",
            format!(r#"{{"profileTypeID":"{CPU}","start":{start},"end":{now}}}"#),
            400,
            "missing label selector",
        ),
        (
            "SelectMergeStacktraces",
            format!(
                r#"{{"profileTypeID":"{CPU}","labelSelector":"{{a=","start":{start},"end":{now}}}"#
            ),
            400,
            "invalid label selector",
        ),
        (
            "SelectMergeStacktraces",
            format!(r#"{{"profileTypeID":"{CPU}","labelSelector":"{{}}"}}"#),
            400,
            "missing range",
        ),
        (
            "SelectMergeStacktraces",
            select(r#","maxNodes":-1"#),
            400,
            "negative max nodes",
        ),
        ("SelectMergeProfile", valid_select.clone(), 200, "valid"),
        (
            "SelectMergeProfile",
            format!(r#"{{"profileTypeID":"{CPU}","labelSelector":"{{}}"}}"#),
            400,
            "missing range",
        ),
        ("SelectSeries", select(r#","step":15"#), 200, "valid"),
        (
            "SelectSeries",
            select(r#","step":15,"groupBy":["service_name"],"limit":"5""#),
            200,
            "group by and limit",
        ),
        (
            "SelectSeries",
            select(r#","step":15,"aggregation":"TIME_SERIES_AGGREGATION_TYPE_AVERAGE""#),
            200,
            "average",
        ),
        ("SelectSeries", valid_select.clone(), 400, "no step"),
        (
            "SelectSeries",
            select(r#","step":15,"start":0"#).replacen(&format!("\"start\":{start},"), "", 1),
            400,
            "missing start",
        ),
        (
            "SelectMergeSpanProfile",
            select(r#","spanSelector":["span1"]"#),
            200,
            "span selector (no data)",
        ),
        (
            "SelectMergeSpanProfile",
            format!(r#"{{"profileTypeID":"{CPU}","labelSelector":"{{}}"}}"#),
            400,
            "missing range",
        ),
        (
            "Diff",
            format!(r#"{{"left":{valid_select},"right":{valid_select}}}"#),
            200,
            "valid",
        ),
        (
            "Diff",
            format!(r#"{{"left":{valid_select}}}"#),
            400,
            "missing right",
        ),
        (
            "Diff",
            format!(r#"{{"right":{valid_select}}}"#),
            400,
            "missing left",
        ),
    ];
    // Every Select* method refuses the shared bad inputs.
    for method in [
        "SelectMergeStacktraces",
        "SelectMergeProfile",
        "SelectSeries",
        "SelectMergeSpanProfile",
        "Diff",
    ] {
        cases.push((method, "{not json".to_owned(), 400, "invalid JSON"));
        cases.push((method, String::new(), 400, "empty body"));
    }
    for (method, body, want, name) in &cases {
        let (status, text) = call(&server, method, "application/json", body);
        assert_eq!(status, *want, "{method}, {name}: {text}");
        if *want == 400 {
            let error: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {name}: {e}: {text}"));
            assert_eq!(error["code"], "invalid_argument", "{method}, {name}");
        }
    }
    for method in [
        "ProfileTypes",
        "LabelNames",
        "LabelValues",
        "Series",
        "SelectMergeStacktraces",
        "SelectMergeProfile",
        "SelectSeries",
        "SelectMergeSpanProfile",
        "Diff",
    ] {
        let path = format!("/querier.v1.QuerierService/{method}");
        for verb in ["GET", "PUT", "DELETE", "PATCH"] {
            let (status, _) = request(&server, verb, &path, &[], b"");
            assert_eq!(status, 405, "{method} {verb}");
        }
        let (status, _) = call(&server, method, "text/plain", "{}");
        assert_eq!(status, 415, "{method} text/plain");
    }
}

#[test]
fn hostile_input_gets_its_4xx_and_the_server_stays_up() {
    use base64::Engine as _;
    let (_dir, server) = loaded();
    let push = |labels: serde_json::Value, profile: &[u8]| {
        let body = serde_json::json!({"series": [{
            "labels": labels,
            "samples": [{"rawProfile": base64::engine::general_purpose::STANDARD.encode(profile)}]
        }]});
        request(
            &server,
            "POST",
            "/push.v1.PusherService/Push",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    };
    let cpu = std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof");
    // A 10 MB label value.
    let (status, text) = push(
        serde_json::json!([
            {"name": "__name__", "value": "process_cpu"},
            {"name": "service_name", "value": "x"},
            {"name": "big", "value": "v".repeat(10 << 20)}
        ]),
        &cpu,
    );
    assert_eq!(status, 400, "{}", &text[..text.len().min(300)]);
    assert!(
        text.contains("label value too long"),
        "{}",
        &text[..text.len().min(300)]
    );
    // 100 000 labels.
    let many: Vec<serde_json::Value> = (0..100_000)
        .map(|i| serde_json::json!({"name": format!("l{i}"), "value": "v"}))
        .collect();
    let (status, text) = push(serde_json::Value::Array(many), &cpu);
    assert_eq!(status, 400, "{}", &text[..text.len().min(300)]);
    // A truncated protobuf pprof, and bytes that are no profile at all.
    let raw = formats::compression::decompress(&cpu, 1 << 20)
        .expect("gunzip")
        .into_owned();
    for broken in [
        &raw[..raw.len() / 2],
        b"\x0a\xff\xff\xff\xff\x0f".as_slice(),
    ] {
        let (status, _) = push(
            serde_json::json!([{"name": "service_name", "value": "x"}]),
            broken,
        );
        assert_eq!(status, 400);
        let (status, _) = request(&server, "POST", "/ingest?name=x&format=pprof", &[], broken);
        assert_eq!(status, 422);
    }
    // A gzip bomb: 64 MiB of zeros in well under 100 kB.
    let bomb = {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; 64 << 20]).expect("compress");
        encoder.finish().expect("compress")
    };
    let (status, _) = push(
        serde_json::json!([{"name": "service_name", "value": "x"}]),
        &bomb,
    );
    assert_eq!(status, 400);
    // A truncated Connect protobuf request.
    let (status, _) = request(
        &server,
        "POST",
        "/push.v1.PusherService/Push",
        &[("Content-Type", "application/proto")],
        b"\x0a\x80\x80\x04",
    );
    assert_eq!(status, 400);
    // Still serving, with the data from before.
    let q = url_encode(&format!("{CPU}{{service_name=\"app\"}}"));
    let render = common::get_json(
        &server,
        &format!("/pyroscope/render?query={q}&from=946656000&until=now"),
        &[],
    );
    assert_eq!(render["flamebearer"]["numTicks"], 470_000_000);
}

#[test]
fn unparsable_accept_headers_are_400_on_every_route() {
    let (_data, server) = loaded();
    for (target, method) in [
        ("/ready", "GET"),
        ("/pyroscope/label-values?label=service_name", "GET"),
        ("/querier.v1.QuerierService/ProfileTypes", "POST"),
    ] {
        for (accept, error) in [
            ("text json", "mime: expected slash after first token"),
            (
                "application/json, text/",
                "mime: expected token after slash",
            ),
            ("*/*; q", "mime: invalid media parameter"),
        ] {
            let (status, body) = request(
                &server,
                method,
                target,
                &[("Accept", accept), ("Content-Type", "application/json")],
                b"{}",
            );
            assert_eq!(status, 400, "{target} {accept:?}: {body}");
            assert_eq!(
                body,
                format!("Invalid header format: {error}\n"),
                "{target}"
            );
        }
        // Browsers' and clients' usual headers pass.
        let (status, body) = request(
            &server,
            method,
            target,
            &[
                ("Accept", "text/html,application/xml;q=0.9,*/*;q=0.8"),
                ("Content-Type", "application/json"),
            ],
            b"{}",
        );
        assert_eq!(status, 200, "{target}: {body}");
    }
}
