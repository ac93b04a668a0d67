//! The query API beyond flame graphs, against `emberscope serve`: SelectSeries, Diff,
//! SelectMergeSpanProfile, GetProfileStats, AnalyzeQuery and SelectMergeProfile in Connect
//! JSON; `/pyroscope/render` timelines and groups, DOT, `/render-diff` and `/label-values`;
//! and the same methods in gRPC-Web framing. Profiles are built here with known stacks, times
//! and span ids so every number has one right answer.

mod common;

use base64::Engine as _;
use common::{Server, request, start, url_encode};
use formats::pprof::proto::{Function, Label, Line, Location, Profile, Sample, ValueType};
use prost::Message as _;

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";
const SPAN: &str = "0123456789abcdef";

/// A CPU pprof of `stacks` (root-first frames `;`-joined, value, optional span id) at `time_ms`.
fn pprof(stacks: &[(&str, i64, Option<&str>)], time_ms: i64) -> Vec<u8> {
    let mut strings = vec![String::new()];
    let mut index = |s: &str| {
        if let Some(i) = strings.iter().position(|x| x == s) {
            return i as i64;
        }
        strings.push(s.to_owned());
        strings.len() as i64 - 1
    };
    let (cpu, nanoseconds, span_key) = (index("cpu"), index("nanoseconds"), index("span_id"));
    let mut functions: Vec<Function> = Vec::new();
    let mut samples = Vec::new();
    for (stack, value, span) in stacks {
        let mut location_id = Vec::new();
        for frame in stack.split(';').rev() {
            let name = index(frame);
            let id = match functions.iter().find(|f| f.name == name) {
                Some(f) => f.id,
                None => {
                    functions.push(Function {
                        id: functions.len() as u64 + 1,
                        name,
                        ..Default::default()
                    });
                    functions.len() as u64
                }
            };
            location_id.push(id);
        }
        let label = span
            .map(|s| Label {
                key: span_key,
                str: index(s),
                ..Default::default()
            })
            .into_iter()
            .collect();
        samples.push(Sample {
            location_id,
            value: vec![*value],
            label,
        });
    }
    let location = functions
        .iter()
        .map(|f| Location {
            id: f.id,
            line: vec![Line {
                function_id: f.id,
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    Profile {
        sample_type: vec![ValueType {
            r#type: cpu,
            unit: nanoseconds,
        }],
        sample: samples,
        location,
        function: functions,
        string_table: strings,
        time_nanos: time_ms * 1_000_000,
        period_type: Some(ValueType {
            r#type: cpu,
            unit: nanoseconds,
        }),
        period: 10_000_000,
        ..Default::default()
    }
    .encode_to_vec()
}

fn push(server: &Server, labels: &[(&str, &str)], profile: &[u8]) {
    let body = serde_json::json!({"series": [{
        "labels": labels.iter().map(|(n, v)| serde_json::json!({"name": n, "value": v})).collect::<Vec<_>>(),
        "samples": [{"rawProfile": base64::engine::general_purpose::STANDARD.encode(profile)}]
    }]});
    let (status, text) = request(
        server,
        "POST",
        "/push.v1.PusherService/Push",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
}

fn call(server: &Server, method: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    let (status, text) = request(
        server,
        "POST",
        &format!("/querier.v1.QuerierService/{method}"),
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method}: {e}: {text}"));
    (status, json)
}

fn ok(server: &Server, method: &str, body: &serde_json::Value) -> serde_json::Value {
    let (status, json) = call(server, method, body);
    assert_eq!(status, 200, "{method}: {json}");
    json
}

/// A server holding, for service `b`: pod p2 at `t` and `t + 1 s` (`foo;bar 1` with span
/// SPAN, `foo;baz 3`: 4 per profile) and pod p3 at `t` (`foo;baz 4`).
fn loaded() -> (tempfile::TempDir, Server, i64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let now = model::time::now_ms();
    let t = (now / 1000 - 600) * 1000;
    let p2 = [
        ("__name__", "process_cpu"),
        ("service_name", "b"),
        ("pod", "p2"),
    ];
    for time in [t, t + 1000] {
        push(
            &server,
            &p2,
            &pprof(&[("foo;bar", 1, Some(SPAN)), ("foo;baz", 3, None)], time),
        );
    }
    push(
        &server,
        &[
            ("__name__", "process_cpu"),
            ("service_name", "b"),
            ("pod", "p3"),
        ],
        &pprof(&[("foo;baz", 4, None)], t),
    );
    (dir, server, t)
}

fn points(series: &serde_json::Value) -> Vec<(String, f64)> {
    series["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            (
                p["timestamp"].as_str().expect("int64 as string").to_owned(),
                p["value"].as_f64().expect("double"),
            )
        })
        .collect()
}

#[test]
fn select_series_buckets_groups_and_limits() {
    let (_dir, server, t) = loaded();
    let query = |extra: serde_json::Value| {
        let mut body = serde_json::json!({
            "profileTypeID": CPU, "labelSelector": "{service_name=\"b\"}",
            "start": t - 1000, "end": t + 60_000, "step": 15,
        });
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        ok(&server, "SelectSeries", &body)
    };
    // Both profiles of p2 and the one of p3 fall in the first bucket, which ends at start + 15 s.
    let bucket = (t - 1000 + 15_000).to_string();
    let all = query(serde_json::json!({}));
    let series = all["series"].as_array().expect("series");
    assert_eq!(series.len(), 1, "{all}");
    assert!(series[0].get("labels").is_none(), "{all}");
    assert_eq!(points(&series[0]), vec![(bucket.clone(), 12.0)]);

    let by_pod = query(serde_json::json!({"groupBy": ["pod"]}));
    let series = by_pod["series"].as_array().expect("series");
    assert_eq!(series.len(), 2);
    assert_eq!(
        series[0]["labels"],
        serde_json::json!([{"name": "pod", "value": "p2"}])
    );
    assert_eq!(points(&series[0]), vec![(bucket.clone(), 8.0)]);
    assert_eq!(points(&series[1]), vec![(bucket.clone(), 4.0)]);

    let average = query(serde_json::json!({
        "groupBy": ["pod"], "aggregation": "TIME_SERIES_AGGREGATION_TYPE_AVERAGE"
    }));
    assert_eq!(points(&average["series"][0]), vec![(bucket, 4.0)]);

    let top = query(serde_json::json!({"groupBy": ["pod"], "limit": "1"}));
    assert_eq!(top["series"].as_array().map(Vec::len), Some(1));
    assert_eq!(top["series"][0]["labels"][0]["value"], "p2");

    // A 1 s step puts the two p2 profiles in separate buckets.
    let fine = query(serde_json::json!({"groupBy": ["pod"], "step": 1}));
    assert_eq!(
        points(&fine["series"][0]),
        vec![(t.to_string(), 4.0), ((t + 1000).to_string(), 4.0)]
    );

    let (status, error) = call(
        &server,
        "SelectSeries",
        &serde_json::json!({"profileTypeID": CPU, "labelSelector": "{}", "start": t, "end": t + 1}),
    );
    assert_eq!(status, 400);
    assert_eq!(error["message"], "step must be non-zero");
}

#[test]
fn diff_span_profile_stats_analyze_and_pprof_json() {
    let (_dir, server, t) = loaded();
    let side = |pod: &str| {
        serde_json::json!({
            "profileTypeID": CPU, "labelSelector": format!("{{pod=\"{pod}\"}}"),
            "start": t - 1000, "end": t + 60_000,
        })
    };
    let diff = ok(
        &server,
        "Diff",
        &serde_json::json!({"left": side("p2"), "right": side("p3")}),
    );
    let graph = &diff["flamegraph"];
    assert_eq!(graph["leftTicks"], "8");
    assert_eq!(graph["rightTicks"], "4");
    assert_eq!(graph["total"], "12");
    assert_eq!(
        graph["names"],
        serde_json::json!(["total", "foo", "baz", "bar"])
    );
    let (status, _) = call(&server, "Diff", &serde_json::json!({"left": side("p2")}));
    assert_eq!(status, 400);

    // Only samples carrying the span: foo;bar, once per p2 profile.
    let mut span = side("p2");
    span["spanSelector"] = serde_json::json!([SPAN]);
    let graph = ok(&server, "SelectMergeSpanProfile", &span);
    assert_eq!(graph["flamegraph"]["total"], "2");
    assert_eq!(
        graph["flamegraph"]["names"],
        serde_json::json!(["total", "foo", "bar"])
    );
    span["spanSelector"] = serde_json::json!(["span1"]);
    let none = ok(&server, "SelectMergeSpanProfile", &span);
    assert_eq!(none["flamegraph"]["names"], serde_json::json!(["total"]));

    // Stack trace selector: only stacks under foo;baz.
    let mut selected = side("p2");
    selected["stackTraceSelector"] =
        serde_json::json!({"callSite": [{"name": "foo"}, {"name": "baz"}]});
    let profile = ok(&server, "SelectMergeProfile", &selected);
    let samples = profile["sample"].as_array().expect("samples");
    assert_eq!(samples.len(), 1, "{profile}");
    assert_eq!(samples[0]["value"], serde_json::json!(["6"]));
    let strings = profile["stringTable"].as_array().expect("strings");
    assert!(strings.contains(&serde_json::json!("baz")));
    assert!(!strings.contains(&serde_json::json!("bar")));

    let stats = ok(&server, "GetProfileStats", &serde_json::json!({}));
    assert_eq!(stats["dataIngested"], true);
    let newest: i64 = stats["newestProfileTime"]
        .as_str()
        .expect("ms")
        .parse()
        .expect("ms");
    assert!(newest >= t + 1000 && newest < t + 2000, "{stats}");

    let analysis = ok(
        &server,
        "AnalyzeQuery",
        &serde_json::json!({"start": t - 1000, "end": t + 60_000,
            "query": format!("{CPU}{{service_name=\"b\"}}")}),
    );
    assert_eq!(analysis["queryImpact"]["totalQueriedSeries"], "2");
    assert_eq!(analysis["queryScopes"][0]["seriesCount"], "2");
}

#[test]
fn render_timeline_groups_dot_diff_and_label_values() {
    let (_dir, server, t) = loaded();
    let range = format!("from={}&until={}", t - 1000, t + 60_000);
    let query = url_encode(&format!("{CPU}{{service_name=\"b\"}}"));
    let render = common::get_json(
        &server,
        &format!("/pyroscope/render?query={query}&{range}"),
        &[],
    );
    assert_eq!(render["flamebearer"]["numTicks"], 12);
    let timeline = &render["timeline"];
    assert_eq!(timeline["durationDelta"], 15);
    let start = (t - 1000) / 1000;
    assert_eq!(timeline["startTime"], start - start % 15);
    let samples: Vec<u64> = serde_json::from_value(timeline["samples"].clone()).expect("samples");
    assert_eq!(samples.iter().sum::<u64>(), 12, "{timeline}");
    assert!(render["groups"].is_null());

    let grouped = common::get_json(
        &server,
        &format!("/pyroscope/render?query={query}&{range}&groupBy=pod"),
        &[],
    );
    let sum = |v: &serde_json::Value| {
        serde_json::from_value::<Vec<u64>>(v["samples"].clone())
            .expect("samples")
            .iter()
            .sum::<u64>()
    };
    assert_eq!(sum(&grouped["groups"]["p2"]), 8, "{grouped}");
    assert_eq!(sum(&grouped["groups"]["p3"]), 4);
    assert_eq!(sum(&grouped["timeline"]), 0, "two series: no main timeline");

    let (status, dot) = request(
        &server,
        "GET",
        &format!("/pyroscope/render?query={query}&{range}&format=dot"),
        &[],
        b"",
    );
    assert_eq!(status, 200);
    assert!(dot.contains("digraph") && dot.contains("foo"), "{dot}");

    let left = url_encode(&format!("{CPU}{{pod=\"p2\"}}"));
    let right = url_encode(&format!("{CPU}{{pod=\"p3\"}}"));
    let diff = common::get_json(
        &server,
        &format!(
            "/pyroscope/render-diff?leftQuery={left}&leftFrom={}&leftUntil={}&rightQuery={right}&rightFrom={}&rightUntil={}",
            t - 1000,
            t + 60_000,
            t - 1000,
            t + 60_000
        ),
        &[],
    );
    assert_eq!(diff["metadata"]["format"], "double");
    assert_eq!(diff["leftTicks"], 8);
    assert_eq!(diff["rightTicks"], 4);
    assert!(diff["timeline"].is_null());
    let other = url_encode("memory:inuse_space:bytes:space:bytes{}");
    let (status, _) = request(
        &server,
        "GET",
        &format!("/pyroscope/render-diff?leftQuery={left}&rightQuery={other}&{range}"),
        &[],
        b"",
    );
    assert_eq!(status, 400);

    assert_eq!(
        common::get_json(&server, "/pyroscope/label-values?label=pod", &[]),
        serde_json::json!(["p2", "p3"])
    );
    assert_eq!(
        common::get_json(&server, "/pyroscope/label-values?label=__name__", &[]),
        serde_json::json!([CPU])
    );
    assert_eq!(
        request(&server, "GET", "/pyroscope/label-values", &[], b"").0,
        400
    );
}

/// gRPC-Web framing over HTTP/1.1: a length-prefixed message, trailers in a last frame.
#[test]
fn grpc_web_calls_answer_with_framed_messages_and_trailers() {
    use api::proto::querier::v1::{ProfileTypesRequest, ProfileTypesResponse};
    let (_dir, server, _) = loaded();
    let message = ProfileTypesRequest::default().encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    let raw = raw_request(
        &server,
        "/querier.v1.QuerierService/ProfileTypes",
        "application/grpc-web+proto",
        &framed,
    );
    assert_eq!(raw[0], 0, "a data frame first");
    let length = u32::from_be_bytes([raw[1], raw[2], raw[3], raw[4]]) as usize;
    let response = ProfileTypesResponse::decode(&raw[5..5 + length]).expect("message");
    assert_eq!(response.profile_types.len(), 1);
    assert_eq!(response.profile_types[0].id, CPU);
    let trailer = &raw[5 + length..];
    assert_eq!(trailer[0], 0x80);
    assert_eq!(&trailer[5..], b"grpc-status: 0\r\n");

    // An invalid request: status 3 and its message in the trailer frame.
    let select = api::proto::querier::v1::SelectMergeStacktracesRequest::default().encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(select.len() as u32).to_be_bytes());
    framed.extend_from_slice(&select);
    let raw = raw_request(
        &server,
        "/querier.v1.QuerierService/SelectMergeStacktraces",
        "application/grpc-web+proto",
        &framed,
    );
    assert_eq!(raw[0], 0x80);
    let text = String::from_utf8_lossy(&raw[5..]);
    assert!(
        text.starts_with("grpc-status: 3\r\ngrpc-message: "),
        "{text}"
    );
}

/// POST over HTTP/1.1 returning the (de-chunked) body bytes of a 200 answer.
fn raw_request(server: &Server, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let (status, head, body) =
        common::post_bytes(server, path, &[("Content-Type", content_type)], body);
    assert_eq!(status, 200, "{head}");
    body
}

/// Settings are kept per tenant in object storage (they survive a restart), the newest write
/// wins; feature flags, version and build info answer as Grafana expects.
#[test]
fn settings_feature_flags_version_and_build_info() {
    let dir = tempfile::tempdir().expect("temp dir");
    let tenant_flag = ["--auth.multitenancy-enabled"];
    let rpc = |server: &Server, path: &str, tenant: &str, body: serde_json::Value| {
        let (status, text) = request(
            server,
            "POST",
            path,
            &[
                ("Content-Type", "application/json"),
                ("X-Scope-OrgID", tenant),
            ],
            body.to_string().as_bytes(),
        );
        assert_eq!(status, 200, "{path}: {text}");
        serde_json::from_str::<serde_json::Value>(&text).expect("json")
    };
    {
        let server = start(dir.path(), &tenant_flag);
        let set = rpc(
            &server,
            "/settings.v1.SettingsService/Set",
            "t1",
            serde_json::json!({"setting": {"name": "theme", "value": "dark", "modifiedAt": "2000"}}),
        );
        assert_eq!(set["setting"]["value"], "dark");
        // An older write loses.
        let stale = rpc(
            &server,
            "/settings.v1.SettingsService/Set",
            "t1",
            serde_json::json!({"setting": {"name": "theme", "value": "light", "modifiedAt": "1000"}}),
        );
        assert_eq!(stale["setting"]["value"], "dark");
        rpc(
            &server,
            "/settings.v1.SettingsService/Set",
            "t1",
            serde_json::json!({"setting": {"name": "gone", "value": "x"}}),
        );
        rpc(
            &server,
            "/settings.v1.SettingsService/Delete",
            "t1",
            serde_json::json!({"name": "gone"}),
        );
    }
    let server = start(dir.path(), &tenant_flag);
    let got = rpc(
        &server,
        "/settings.v1.SettingsService/Get",
        "t1",
        serde_json::json!({}),
    );
    assert_eq!(
        got,
        serde_json::json!({"settings": [{"name": "theme", "value": "dark", "modifiedAt": "2000"}]})
    );
    let other = rpc(
        &server,
        "/settings.v1.SettingsService/Get",
        "t2",
        serde_json::json!({}),
    );
    assert_eq!(
        other,
        serde_json::json!({}),
        "tenants do not share settings"
    );

    let flags = rpc(
        &server,
        "/capabilities.v1.FeatureFlagsService/GetFeatureFlags",
        "t1",
        serde_json::json!({}),
    );
    let names: Vec<&str> = flags["featureFlags"]
        .as_array()
        .expect("flags")
        .iter()
        .map(|f| f["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "pyroscopeRuler",
            "pyroscopeRulerFunctions",
            "utf8LabelNames",
            "v2StorageLayer"
        ]
    );
    let version = rpc(
        &server,
        "/version.v1.Version/Version",
        "",
        serde_json::json!({}),
    );
    assert_eq!(version["QuerierAPI"], "1");
    let info = common::get_json(&server, "/api/v1/status/buildinfo", &[]);
    assert_eq!(info["status"], "success");
    assert_eq!(info["data"]["version"], env!("CARGO_PKG_VERSION"));
}

/// `/metrics` counts what happened: requests by route, accepted and refused profiles, flushes.
#[test]
fn metrics_count_requests_ingest_and_flushes() {
    let (_dir, server, t) = loaded();
    let body = serde_json::json!({"series": [{
        "labels": [{"name": "service_name", "value": "b"}, {"name": "1bad", "value": "x"}],
        "samples": [{"rawProfile": base64::engine::general_purpose::STANDARD.encode(pprof(&[("a", 1, None)], t))}]
    }]});
    let (status, _) = request(
        &server,
        "POST",
        "/push.v1.PusherService/Push",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(status, 400);
    let (status, text) = request(&server, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .rsplit_once(' ')
            .map(|(_, v)| v.to_owned())
            .expect("value")
    };
    assert_eq!(
        line(
            "emberscope_requests_total{method=\"POST\",route=\"/push.v1.PusherService/Push\",status_code=\"200\"}"
        ),
        "3"
    );
    assert_eq!(
        line("emberscope_ingested_profiles_total{tenant=\"anonymous\"}"),
        "3"
    );
    assert_eq!(
        line("emberscope_discarded_profiles_total{reason=\"invalid_labels\",tenant=\"anonymous\"}"),
        "1"
    );
    let flushes: u64 = line("emberscope_segment_flush_duration_seconds_count")
        .parse()
        .expect("count");
    assert!(flushes >= 1, "{text}");
}

#[test]
fn exemplars_heatmaps_and_profile_ids() {
    let (_dir, server, t) = loaded();
    let series = ok(
        &server,
        "SelectSeries",
        &serde_json::json!({
            "profileTypeID": CPU, "labelSelector": "{service_name=\"b\"}",
            "start": t - 1000, "end": t + 60_000, "step": 1, "groupBy": ["pod"],
            "exemplarType": "EXEMPLAR_TYPE_INDIVIDUAL",
        }),
    );
    // p2 has a profile at t and at t + 1 s, each of 4: each point's exemplar is that profile.
    let p2 = &series["series"][0];
    assert_eq!(p2["labels"][0]["value"], "p2");
    let mut ids = Vec::new();
    for point in p2["points"].as_array().expect("points") {
        let exemplar = &point["exemplars"][0];
        assert_eq!(exemplar["value"], "4", "{point}");
        assert_eq!(exemplar["timestamp"], point["timestamp"]);
        let labels = exemplar["labels"].as_array().expect("labels");
        assert!(labels.iter().all(|l| l["name"] != "pod"), "{exemplar}");
        assert!(
            labels
                .iter()
                .any(|l| l["name"] == "service_name" && l["value"] == "b")
        );
        let id = exemplar["profileId"].as_str().expect("id").to_owned();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        ids.push(id);
    }
    assert_eq!(ids.len(), 2);
    assert_ne!(ids[0], ids[1], "every pushed profile has its own id");
    // The profile behind an exemplar opens alone, as a flame graph and as a pprof.
    let one = ok(
        &server,
        "SelectMergeStacktraces",
        &serde_json::json!({
            "profileTypeID": CPU, "labelSelector": "{service_name=\"b\"}",
            "start": t - 1000, "end": t + 60_000, "profileIdSelector": [ids[1]],
        }),
    );
    assert_eq!(one["flamegraph"]["total"], "4", "{one}");
    let profile = ok(
        &server,
        "SelectMergeProfile",
        &serde_json::json!({
            "profileTypeID": CPU, "labelSelector": "{}",
            "start": t - 1000, "end": t + 60_000, "profileIdSelector": [ids[0]],
        }),
    );
    let values: i64 = profile["sample"]
        .as_array()
        .expect("samples")
        .iter()
        .map(|s| {
            s["value"][0]
                .as_str()
                .expect("int64")
                .parse::<i64>()
                .expect("value")
        })
        .sum();
    assert_eq!(values, 4);
    let (status, error) = call(
        &server,
        "SelectMergeStacktraces",
        &serde_json::json!({
            "profileTypeID": CPU, "labelSelector": "{}", "start": t, "end": t + 1,
            "profileIdSelector": ["abc"],
        }),
    );
    assert_eq!(status, 400);
    assert_eq!(error["message"], "invalid UUID length: 3");

    // The heatmap of individual profiles: three profiles, 20 value buckets.
    let heatmap = ok(
        &server,
        "SelectHeatmap",
        &serde_json::json!({
            "profileTypeID": CPU, "labelSelector": "{service_name=\"b\"}",
            "start": t - 1000, "end": t + 60_000, "step": 60,
            "queryType": "HEATMAP_QUERY_TYPE_INDIVIDUAL",
            "exemplarType": "EXEMPLAR_TYPE_INDIVIDUAL",
        }),
    );
    let slots = heatmap["series"][0]["slots"].as_array().expect("slots");
    let counts: i64 = slots
        .iter()
        .flat_map(|s| s["counts"].as_array().expect("counts").clone())
        .map(|c| c.as_i64().expect("count"))
        .sum();
    assert_eq!(counts, 3, "{heatmap}");
    assert_eq!(slots[0]["yMin"].as_array().map(Vec::len), Some(20));
    assert!(
        !slots[0]["exemplars"]
            .as_array()
            .expect("exemplars")
            .is_empty()
    );
    // Spans: only p2's samples carry one, 1 in each of its two profiles.
    let spans = ok(
        &server,
        "SelectHeatmap",
        &serde_json::json!({
            "profileTypeID": CPU, "labelSelector": "{service_name=\"b\"}",
            "start": t - 1000, "end": t + 60_000, "step": 60,
            "queryType": "HEATMAP_QUERY_TYPE_SPAN", "exemplarType": "EXEMPLAR_TYPE_SPAN",
        }),
    );
    let slot = &spans["series"][0]["slots"][0];
    assert_eq!(slot["counts"][19], 2, "{spans}");
    assert_eq!(slot["exemplars"][0]["spanId"], SPAN);
    for (body, message) in [
        (
            serde_json::json!({"step": 0, "queryType": "HEATMAP_QUERY_TYPE_INDIVIDUAL"}),
            "step must be >= 1ms, got 0.000000",
        ),
        (
            serde_json::json!({"step": 1}),
            "valid heatmap query type must be specified",
        ),
        (
            serde_json::json!({"step": 1, "queryType": "HEATMAP_QUERY_TYPE_SPAN",
                "exemplarType": "EXEMPLAR_TYPE_INDIVIDUAL"}),
            "individual exemplars only available for individual query type",
        ),
    ] {
        let mut request = serde_json::json!({
            "profileTypeID": CPU, "labelSelector": "{}", "start": t, "end": t + 1000,
        });
        for (k, v) in body.as_object().expect("object") {
            request[k] = v.clone();
        }
        let (status, error) = call(&server, "SelectHeatmap", &request);
        assert_eq!((status, error["message"].as_str()), (400, Some(message)));
    }

    // AnalyzeQuery reports the plan: the profiles table, its row groups, rows and bytes.
    let analysis = ok(
        &server,
        "AnalyzeQuery",
        &serde_json::json!({"start": t - 1000, "end": t + 60_000,
            "query": format!("{CPU}{{service_name=\"b\"}}")}),
    );
    let scope = &analysis["queryScopes"][0];
    assert_eq!(scope["componentType"], "Profiles", "{analysis}");
    assert!(
        scope["componentCount"].as_str().is_some_and(|c| c != "0"),
        "{analysis}"
    );
    assert!(
        scope["profileBytes"].as_str().is_some_and(|b| b != "0"),
        "{analysis}"
    );
}
