//! `emberscope serve` as a process: a captured request of the real Node.js SDK replayed byte for
//! byte to `/ingest`, read back through `/pyroscope/render` as exactly the flame graph of the
//! file's stacks; tenants kept apart; bad input answered with Pyroscope's status codes; data
//! still there after SIGKILL and a restart.

mod common;

use common::{Server, request, start, url_encode};
use formats::pprof;
use model::{FlameGraph, Labels};
use std::io::{Read, Write};
use std::net::TcpStream;

fn captured() -> (String, Vec<u8>) {
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(testkit::testdata(
            "clients/pyroscope-nodejs-0.6.4_request_meta.json",
        ))
        .expect("meta"),
    )
    .expect("json");
    let query = meta["query"].as_str().expect("query").to_owned();
    let body = std::fs::read(testkit::testdata(
        "clients/pyroscope-nodejs-0.6.4_ingest_wall.pprof.gz",
    ))
    .expect("body");
    (query, body)
}

const WALL: &str = "wall:wall:nanoseconds:wall:nanoseconds";

/// The flame graph the server must answer for the captured file: its stacks, via the
/// foundation's decoder and renderer.
fn expected_graph(body: &[u8]) -> FlameGraph {
    let profile = pprof::decode(body, 1 << 24).expect("valid");
    let labels = Labels::from_pairs([("__name__", "wall"), ("service_name", "research.node.app")]);
    let types = pprof::profile_type_labels(&labels, &profile);
    let index = types
        .iter()
        .position(|(t, _)| t.to_string() == WALL)
        .expect("a wall sample type");
    FlameGraph::from_tree(&pprof::to_tree(&profile, index), 8192)
}

fn render_target() -> String {
    let query = format!("{WALL}{{service_name=\"research.node.app\"}}");
    let encoded = url_encode(&query);
    format!("/pyroscope/render?query={encoded}&from=946656000&until=now&format=json")
}

fn check_render(server: &Server, headers: &[(&str, &str)], expected: &FlameGraph) {
    let (status, body) = request(server, "GET", &render_target(), headers, b"");
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let names: Vec<String> =
        serde_json::from_value(json["flamebearer"]["names"].clone()).expect("names");
    let levels: Vec<Vec<i64>> =
        serde_json::from_value(json["flamebearer"]["levels"].clone()).expect("levels");
    assert_eq!(names, expected.names);
    assert_eq!(levels, expected.levels);
    assert_eq!(json["flamebearer"]["numTicks"], expected.total);
    assert_eq!(json["metadata"]["units"], "nanoseconds");
}

#[test]
fn captured_sdk_request_round_trips_and_survives_sigkill() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (query, body) = captured();
    let expected = expected_graph(&body);
    assert!(expected.total > 0);
    {
        let server = start(dir.path(), &[]);
        assert_eq!(
            request(&server, "GET", "/ready", &[], b""),
            (200, "ready".to_owned())
        );
        let (status, text) = request(
            &server,
            "POST",
            &format!("/ingest?{query}"),
            &[("Content-Type", "application/octet-stream")],
            &body,
        );
        assert_eq!(status, 200, "{text}");
        check_render(&server, &[], &expected);
        // The server is killed without warning: the acknowledged write must survive.
    }
    let server = start(dir.path(), &[]);
    check_render(&server, &[], &expected);
}

#[test]
fn tenants_are_kept_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (query, body) = captured();
    let server = start(dir.path(), &["--auth.multitenancy-enabled"]);
    let ingest = format!("/ingest?{query}");
    let (status, text) = request(&server, "POST", &ingest, &[], &body);
    assert_eq!(
        (status, text.as_str()),
        (401, r#"{"code":"unauthenticated","message":"no org id"}"#)
    );
    let (status, _) = request(
        &server,
        "POST",
        &ingest,
        &[("X-Scope-OrgID", "tenant-b")],
        &body,
    );
    assert_eq!(status, 200);
    check_render(
        &server,
        &[("X-Scope-OrgID", "tenant-b")],
        &expected_graph(&body),
    );
    let (status, other) = request(
        &server,
        "GET",
        &render_target(),
        &[("X-Scope-OrgID", "tenant-a")],
        b"",
    );
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&other).expect("json");
    assert_eq!(
        json["flamebearer"]["numTicks"], 0,
        "tenant-a sees nothing of tenant-b"
    );
    assert_eq!(request(&server, "GET", &render_target(), &[], b"").0, 401);
}

#[test]
fn bad_requests_get_pyroscope_status_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let pprof_ingest = "/ingest?name=app&format=pprof";
    // Not a profile.
    assert_eq!(
        request(
            &server,
            "POST",
            pprof_ingest,
            &[],
            b"\x0a\xff\xff\xff\xff not protobuf"
        )
        .0,
        422
    );
    // A compression bomb: 16 MiB of zeros (over the 4 MiB profile limit) in a few KiB of gzip.
    let bomb = {
        use std::io::Write as _;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; 16 << 20]).expect("compress");
        encoder.finish().expect("compress")
    };
    assert!(bomb.len() < 200_000);
    let (status, text) = request(&server, "POST", pprof_ingest, &[], &bomb);
    assert_eq!(status, 400, "{text}");
    // A pprof gzipped twice is decompressed once, as Pyroscope does: what is left is not a
    // profile (422), and a bomb nested inside cannot pass the size limit.
    let twice = {
        use std::io::Write as _;
        let once = std::fs::read(testkit::testdata("pprof/heap.pb.gz")).expect("file");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(&once).expect("compress");
        encoder.finish().expect("compress")
    };
    let (status, text) = request(&server, "POST", pprof_ingest, &[], &twice);
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("failed to parse pprof"), "{text}");
    // Invalid UTF-8 in the string table: 422 on /ingest.
    let invalid = std::fs::read(testkit::testdata("pprof/invalid_utf8.pb.gz")).expect("file");
    let (status, text) = request(&server, "POST", pprof_ingest, &[], &invalid);
    assert_eq!(status, 422, "{text}");
    assert!(text.contains("invalid utf8 string hex"), "{text}");
    // No name.
    assert_eq!(
        request(&server, "POST", "/ingest?format=pprof", &[], b"x").0,
        400
    );
    // Render without a query, with an unparsable one, with a bad profile type, with max nodes too big.
    assert_eq!(
        request(&server, "GET", "/pyroscope/render", &[], b"").0,
        400
    );
    assert_eq!(
        request(&server, "GET", "/pyroscope/render?query=%7Ba%3D", &[], b"").0,
        400
    );
    assert_eq!(
        request(
            &server,
            "GET",
            "/pyroscope/render?query=cpu%7B%7D",
            &[],
            b""
        )
        .0,
        400
    );
    let (status, text) = request(
        &server,
        "GET",
        &format!("{}&max-nodes=2000000", render_target()),
        &[],
        b"",
    );
    assert_eq!(status, 400);
    assert!(
        text.contains("max flamegraph nodes limit 2000000 is greater than allowed 1048576"),
        "{text}"
    );
    // Wrong methods.
    assert_eq!(request(&server, "GET", "/ingest", &[], b"").0, 405);
    assert_eq!(
        request(&server, "POST", "/pyroscope/render", &[], b"").0,
        405
    );
    // The server is still up.
    assert_eq!(request(&server, "GET", "/ready", &[], b"").0, 200);
}

fn python_push() -> (serde_json::Value, Vec<u8>) {
    let meta: serde_json::Value = serde_json::from_slice(
        &std::fs::read(testkit::testdata(
            "clients/pyroscope-io-1.4.0_request_meta.json",
        ))
        .expect("meta"),
    )
    .expect("json");
    let body = std::fs::read(testkit::testdata(
        "clients/pyroscope-io-1.4.0_push_connect_body.gz.bin",
    ))
    .expect("body");
    (meta, body)
}

/// The labels the captured Push request carries (decoded with the server's own wire types).
fn pushed_labels(gzip_body: &[u8]) -> Labels {
    use prost::Message;
    let raw = formats::compression::decompress(gzip_body, 1 << 24).expect("gzip");
    let request = api::proto::push::v1::PushRequest::decode(raw.as_ref()).expect("a PushRequest");
    Labels::from_pairs(
        request.series[0]
            .labels
            .iter()
            .map(|l| (l.name.clone(), l.value.clone())),
    )
}

fn render_of(
    server: &Server,
    profile_type: &str,
    service: &str,
    headers: &[(&str, &str)],
) -> serde_json::Value {
    let query = format!("{profile_type}{{service_name=\"{service}\"}}");
    let encoded = url_encode(&query);
    let (status, body) = request(
        server,
        "GET",
        &format!("/pyroscope/render?query={encoded}&from=946656000&until=now"),
        headers,
        b"",
    );
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("json")
}

#[test]
fn captured_python_sdk_push_round_trips() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &["--auth.multitenancy-enabled"]);
    let (meta, body) = python_push();
    let headers: Vec<(String, String)> = meta["headers"]
        .as_object()
        .expect("headers")
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "host" | "content-length"))
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
        .collect();
    let header_refs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, text) = request(
        &server,
        "POST",
        "/push.v1.PusherService/Push",
        &header_refs,
        &body,
    );
    assert_eq!(status, 200, "{text}");

    let labels = pushed_labels(&body);
    let service = labels.get("service_name").expect("service_name").to_owned();
    let inner =
        std::fs::read(testkit::testdata("clients/pyroscope-io-1.4.0_cpu.pprof")).expect("pprof");
    let profile = pprof::decode(&inner, 1 << 24).expect("valid");
    let types = pprof::profile_type_labels(&labels, &profile);
    assert!(!types.is_empty());
    for (index, (profile_type, _)) in types.iter().enumerate() {
        let expected = FlameGraph::from_tree(&pprof::to_tree(&profile, index), 8192);
        let json = render_of(
            &server,
            &profile_type.to_string(),
            &service,
            &[("X-Scope-OrgID", "tenant-a")],
        );
        let names: Vec<String> =
            serde_json::from_value(json["flamebearer"]["names"].clone()).expect("names");
        let levels: Vec<Vec<i64>> =
            serde_json::from_value(json["flamebearer"]["levels"].clone()).expect("levels");
        assert_eq!(
            (names, levels),
            (expected.names.clone(), expected.levels.clone()),
            "{profile_type}"
        );
        assert!(expected.total > 0);
    }
}

#[test]
fn push_json_and_errors() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let cpu = std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof");
    let json = serde_json::json!({"series": [{
        "labels": [{"name": "__name__", "value": "process_cpu"}, {"name": "service_name", "value": "json-app"}],
        "samples": [{"ID": "734FD599-6865-419E-9475-932762D8F469", "rawProfile": base64::engine::general_purpose::STANDARD.encode(&cpu)}]
    }]})
    .to_string();
    let push = "/push.v1.PusherService/Push";
    let as_json = [("Content-Type", "application/json")];
    assert_eq!(
        request(&server, "POST", push, &as_json, json.as_bytes()),
        (200, "{}".to_owned())
    );
    let got = render_of(
        &server,
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
        "json-app",
        &[],
    );
    let profile = pprof::decode(&cpu, 1 << 24).expect("valid");
    assert_eq!(
        got["flamebearer"]["numTicks"],
        pprof::to_tree(&profile, 1).total()
    );

    let (status, text) = request(
        &server,
        "POST",
        push,
        &[("Content-Type", "text/plain")],
        b"x",
    );
    assert_eq!(status, 415, "{text}");
    let (status, text) = request(&server, "POST", push, &as_json, b"{not json");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("\"code\":\"invalid_argument\""), "{text}");
    let (status, text) = request(&server, "POST", push, &as_json, br#"{"series":[]}"#);
    assert_eq!(
        (status, text.contains("no profiles received")),
        (400, true),
        "{text}"
    );
    let dotnet = std::fs::read(testkit::testdata("pprof/dotnet-pprof-3.pb.gz")).expect("pprof");
    let broken = serde_json::json!({"series": [{"labels": [{"name": "__name__", "value": "process_cpu"}, {"name": "service_name", "value": "dotnet"}],
        "samples": [{"rawProfile": base64::engine::general_purpose::STANDARD.encode(&dotnet)}]}]})
    .to_string();
    let (status, text) = request(&server, "POST", push, &as_json, broken.as_bytes());
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("function id is 0"), "{text}");
    assert_eq!(request(&server, "GET", push, &[], b"").0, 405);
}

#[test]
fn connect_querier_serves_profile_types_and_flame_graphs() {
    use api::proto::querier::v1::{
        ProfileFormat, SelectMergeStacktracesRequest, SelectMergeStacktracesResponse,
    };
    use base64::Engine as _;
    use prost::Message;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let cpu = std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof");
    let json = serde_json::json!({"series": [{
        "labels": [{"name": "__name__", "value": "process_cpu"}, {"name": "service_name", "value": "q-app"}],
        "samples": [{"rawProfile": base64::engine::general_purpose::STANDARD.encode(&cpu)}]
    }]})
    .to_string();
    let as_json = [("Content-Type", "application/json")];
    assert_eq!(
        request(
            &server,
            "POST",
            "/push.v1.PusherService/Push",
            &as_json,
            json.as_bytes()
        )
        .0,
        200
    );

    let (status, types) = request(
        &server,
        "POST",
        "/querier.v1.QuerierService/ProfileTypes",
        &as_json,
        b"{}",
    );
    assert_eq!(status, 200, "{types}");
    let types: serde_json::Value = serde_json::from_str(&types).expect("json");
    let ids: Vec<&str> = types["profileTypes"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|t| t["ID"].as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
            "process_cpu:samples:count:cpu:nanoseconds"
        ]
    );

    let profile = pprof::decode(&cpu, 1 << 24).expect("valid");
    let tree = pprof::to_tree(&profile, 1);
    let expected = FlameGraph::from_tree(&tree, 8192);
    let now_ms = model::time::now_ms();
    let select = serde_json::json!({
        "profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
        "labelSelector": "{service_name=\"q-app\"}",
        "start": 1000, "end": now_ms.to_string(), "maxNodes": 8192
    })
    .to_string();
    let path = "/querier.v1.QuerierService/SelectMergeStacktraces";
    let (status, body) = request(&server, "POST", path, &as_json, select.as_bytes());
    assert_eq!(status, 200, "{body}");
    let got: serde_json::Value = serde_json::from_str(&body).expect("json");
    let names: Vec<String> =
        serde_json::from_value(got["flamegraph"]["names"].clone()).expect("names");
    assert_eq!(names, expected.names);
    let levels: Vec<Vec<i64>> = got["flamegraph"]["levels"]
        .as_array()
        .expect("levels")
        .iter()
        .map(|l| {
            l["values"]
                .as_array()
                .expect("values")
                .iter()
                .map(|v| v.as_str().expect("int64 as string").parse().expect("int"))
                .collect()
        })
        .collect();
    assert_eq!(levels, expected.levels);
    assert_eq!(got["flamegraph"]["total"], expected.total.to_string());

    // The same in proto, as tree bytes.
    let proto = SelectMergeStacktracesRequest {
        profile_type_id: "process_cpu:cpu:nanoseconds:cpu:nanoseconds".to_owned(),
        label_selector: "{service_name=\"q-app\"}".to_owned(),
        start: 1000,
        end: now_ms,
        max_nodes: None,
        format: ProfileFormat::Tree as i32,
        ..Default::default()
    }
    .encode_to_vec();
    let (status, _, response) = common::post_bytes(
        &server,
        path,
        &[("Content-Type", "application/proto")],
        &proto,
    );
    assert_eq!(status, 200);
    let decoded =
        SelectMergeStacktracesResponse::decode(response.as_slice()).expect("a response message");
    let back = model::tree_from_bytes(&decoded.tree).expect("tree bytes");
    assert_eq!(model::write_collapsed(&back), model::write_collapsed(&tree));

    // Pyroscope's 4xx matrix for this method.
    for (body, why) in [
        ("", "empty body"),
        ("{not json", "malformed JSON"),
        (
            r#"{"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds","labelSelector":"{}","start":"now-1h","end":"now"}"#,
            "wrong JSON types",
        ),
        (
            r#"{"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds","labelSelector":"{}","start":2000,"end":1000}"#,
            "start after end",
        ),
        (
            r#"{"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds","labelSelector":"{}"}"#,
            "missing range",
        ),
        (
            r#"{"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds","start":1,"end":2}"#,
            "missing label selector",
        ),
        (
            r#"{"profileTypeID":"cpu","labelSelector":"{}","start":1,"end":2}"#,
            "invalid profile type",
        ),
        (
            r#"{"profileTypeID":"process_cpu:cpu:nanoseconds:cpu:nanoseconds","labelSelector":"{a=","start":1,"end":2}"#,
            "invalid label selector",
        ),
    ] {
        let (status, text) = request(&server, "POST", path, &as_json, body.as_bytes());
        assert_eq!(status, 400, "{why}: {text}");
    }
    assert_eq!(
        request(
            &server,
            "POST",
            path,
            &[("Content-Type", "text/plain")],
            b"{}"
        )
        .0,
        415
    );
    assert_eq!(request(&server, "GET", path, &[], b"").0, 405);
    // A negative start on ProfileTypes is fine.
    assert_eq!(
        request(
            &server,
            "POST",
            "/querier.v1.QuerierService/ProfileTypes",
            &as_json,
            br#"{"start":-1,"end":-1}"#
        )
        .0,
        200
    );
}

#[test]
fn connect_label_apis_answer_from_the_series_indexes() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let cpu = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof"));
    let as_json = [("Content-Type", "application/json")];
    for service in ["svc-1", "svc-2"] {
        let push = serde_json::json!({"series": [{
            "labels": [{"name": "__name__", "value": "process_cpu"}, {"name": "service_name", "value": service}, {"name": "job", "value": "test"}],
            "samples": [{"rawProfile": cpu}]
        }]})
        .to_string();
        assert_eq!(
            request(
                &server,
                "POST",
                "/push.v1.PusherService/Push",
                &as_json,
                push.as_bytes()
            )
            .0,
            200
        );
    }
    let call = |method: &str, body: &str| -> serde_json::Value {
        let (status, text) = request(
            &server,
            "POST",
            &format!("/querier.v1.QuerierService/{method}"),
            &as_json,
            body.as_bytes(),
        );
        assert_eq!(status, 200, "{method}: {text}");
        serde_json::from_str(&text).expect("json")
    };
    // What Pyroscope's microservices test expects of LabelNames.
    assert_eq!(
        call("LabelNames", "{}")["names"],
        serde_json::json!([
            "__name__",
            "__period_type__",
            "__period_unit__",
            "__profile_type__",
            "__service_name__",
            "__type__",
            "__unit__",
            "job",
            "service_name"
        ])
    );
    assert_eq!(
        call("LabelValues", r#"{"name":"service_name"}"#)["names"],
        serde_json::json!(["svc-1", "svc-2"])
    );
    assert_eq!(
        call(
            "LabelValues",
            r#"{"name":"service_name","matchers":["{service_name=\"svc-2\"}"]}"#
        )["names"],
        serde_json::json!(["svc-2"])
    );
    assert_eq!(
        call(
            "LabelValues",
            r#"{"name":"service_name","matchers":["{job=\"other\"}"]}"#
        ),
        // protojson leaves empty lists out.
        serde_json::json!({})
    );
    let series = call(
        "Series",
        r#"{"matchers":["{service_name=\"svc-1\"}"],"labelNames":["service_name","__profile_type__"]}"#,
    );
    assert_eq!(
        series["labelsSet"],
        serde_json::json!([
            {"labels": [{"name": "service_name", "value": "svc-1"}, {"name": "__profile_type__", "value": "process_cpu:cpu:nanoseconds:cpu:nanoseconds"}]},
            {"labels": [{"name": "service_name", "value": "svc-1"}, {"name": "__profile_type__", "value": "process_cpu:samples:count:cpu:nanoseconds"}]}
        ])
    );
    // Pyroscope v1 answers invalid matchers and missing ranges with 200.
    assert_eq!(
        call("LabelNames", r#"{"matchers":["{a="]}"#),
        serde_json::json!({})
    );
}

#[test]
fn connect_select_merge_profile_returns_the_pprof() {
    use api::proto::querier::v1::SelectMergeProfileRequest;
    use base64::Engine as _;
    use prost::Message;
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let cpu = std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof");
    let push = serde_json::json!({"series": [{
        "labels": [{"name": "__name__", "value": "process_cpu"}, {"name": "service_name", "value": "pprof-app"}],
        "samples": [{"rawProfile": base64::engine::general_purpose::STANDARD.encode(&cpu)}]
    }]})
    .to_string();
    let as_json = [("Content-Type", "application/json")];
    for _ in 0..2 {
        assert_eq!(
            request(
                &server,
                "POST",
                "/push.v1.PusherService/Push",
                &as_json,
                push.as_bytes()
            )
            .0,
            200
        );
    }
    let now_ms = model::time::now_ms();
    let body = SelectMergeProfileRequest {
        profile_type_id: "process_cpu:cpu:nanoseconds:cpu:nanoseconds".to_owned(),
        label_selector: "{service_name=\"pprof-app\"}".to_owned(),
        start: 1000,
        end: now_ms,
        max_nodes: None,
        ..Default::default()
    }
    .encode_to_vec();
    let mut stream = TcpStream::connect(&server.address).expect("connect");
    write!(
        stream,
        "POST /querier.v1.QuerierService/SelectMergeProfile HTTP/1.1\r\nHost: x\r\nContent-Type: application/proto\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("send");
    stream.write_all(&body).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    let merged = pprof::decode(&response[split..], 1 << 24).expect("a pprof");
    // One sample type, Pyroscope's metadata, and twice the file's stacks.
    let string = |i: i64| merged.string_table[i as usize].clone();
    assert_eq!(merged.sample_type.len(), 1);
    assert_eq!(
        (
            string(merged.sample_type[0].r#type),
            string(merged.sample_type[0].unit)
        ),
        ("cpu".to_owned(), "nanoseconds".to_owned())
    );
    assert_eq!(merged.period, 1_000_000_000);
    assert!(merged.sample.iter().all(|s| s.label.is_empty()));
    let original = pprof::decode(&cpu, 1 << 24).expect("valid");
    let mut twice = pprof::to_tree(&original, 1);
    twice.merge(&pprof::to_tree(&original, 1));
    assert_eq!(
        model::write_collapsed(&pprof::to_tree(&merged, 0)),
        model::write_collapsed(&twice)
    );
    // Only what samples reference is kept, each string once.
    let mut strings = merged.string_table.clone();
    strings.sort();
    strings.dedup();
    assert_eq!(strings.len(), merged.string_table.len());
}

/// Sends `GET /ready` on `stream`, keeping the connection open or asking to close it.
fn ask_ready(server: &Server, stream: &mut TcpStream, keep_alive: bool) {
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let head = format!(
        "GET /ready HTTP/1.1\r\nHost: {}\r\nConnection: {connection}\r\n\r\n",
        server.address
    );
    stream.write_all(head.as_bytes()).expect("send");
}

/// Reads the start of a kept-alive answer: it must be a 200.
fn expect_ready_status(stream: &mut TcpStream) {
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).expect("answered");
    assert_eq!(&answer, b"HTTP/1.1 200");
}

/// Reads a whole answer (the connection closes after it) within `timeout`: it must be a 200.
fn expect_ready_until_close(stream: &mut TcpStream, timeout: std::time::Duration, what: &str) {
    stream.set_read_timeout(Some(timeout)).expect("timeout");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect(what);
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&response)
    );
}

/// `--server.http-conn-limit 1`: while one connection is open a second is not served; it is
/// once the first closes.
#[test]
fn the_connection_limit_holds_further_connections_until_one_closes() {
    use std::time::Duration;
    let data = tempfile::tempdir().expect("temp dir");
    let server = start(data.path(), &["--server.http-conn-limit", "1"]);
    let mut first = TcpStream::connect(&server.address).expect("connect");
    ask_ready(&server, &mut first, true);
    expect_ready_status(&mut first);
    // The first connection stays open: the second waits to be accepted.
    let mut second = TcpStream::connect(&server.address).expect("queued in the kernel");
    ask_ready(&server, &mut second, false);
    second
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut byte = [0u8; 1];
    assert!(
        second.read(&mut byte).is_err(),
        "a second connection was served while the first was open"
    );
    drop(first);
    expect_ready_until_close(
        &mut second,
        Duration::from_secs(10),
        "served after the first closed",
    );
}

/// An idle keep-alive connection does not keep its place under the connection limit: the
/// server closes it after 30 s without a request, and a waiting connection is then served.
#[test]
fn idle_connections_give_their_place_back() {
    use std::time::{Duration, Instant};
    let data = tempfile::tempdir().expect("temp dir");
    let server = start(data.path(), &["--server.http-conn-limit", "1"]);
    let mut idle = TcpStream::connect(&server.address).expect("connect");
    ask_ready(&server, &mut idle, true);
    expect_ready_status(&mut idle);
    let started = Instant::now();
    let mut waiting = TcpStream::connect(&server.address).expect("queued in the kernel");
    ask_ready(&server, &mut waiting, false);
    expect_ready_until_close(
        &mut waiting,
        Duration::from_secs(60),
        "served once the idle connection was closed",
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(20) && waited < Duration::from_secs(50),
        "served after {waited:?}"
    );
    // The idle connection was closed by the server: the rest of its response, then EOF.
    idle.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).expect("closed");
}

/// The server's log lines (on stderr) as `--log.format` asks.
fn log_lines(format: &str) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("stderr.log");
    common::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_emberscope"))
            .args(["serve", "--listen", "127.0.0.1:0", "--log.level", "debug"])
            .args(["--log.format", format])
            .arg("--data")
            .arg(dir.path().join("data"))
            .stderr(std::fs::File::create(&log).expect("log file")),
    )
    .stop();
    std::fs::read_to_string(&log).expect("log")
}

/// Logs written to a file (stderr not a terminal) carry no terminal colour codes; they are
/// logfmt as Pyroscope's are by default, or one JSON object per line.
#[test]
fn logs_are_logfmt_or_json_without_colour_codes() {
    let written = log_lines("logfmt");
    assert!(!written.contains('\u{1b}'), "{written}");
    let listening = written
        .lines()
        .find(|l| l.contains("listening"))
        .unwrap_or_else(|| panic!("no listening line in {written}"));
    assert!(
        listening.starts_with("ts=")
            && listening.contains(
                " level=info caller=server msg=\"emberscope listening\" address=127.0.0.1:"
            ),
        "{listening}"
    );
    let written = log_lines("json");
    for line in written.lines() {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            event["level"].is_string() && event["message"].is_string(),
            "{line}"
        );
    }
    assert!(
        written.contains("\"message\":\"emberscope listening\""),
        "{written}"
    );
}
