//! OTLP profiles into `emberscope serve` three ways — gRPC (Python's grpcio over h2c), OTLP/HTTP
//! protobuf and OTLP/HTTP JSON — each read back through `SelectMergeProfile` as exactly the
//! golden Pyroscope's own integration test expects (`otel-ebpf-profile.out.json`); the
//! corrupted request is refused with InvalidArgument / 400 and stores nothing.

mod common;

use testkit::strprofile;

use common::{Server, start};
use formats::otlp::ExportProfilesServiceRequest;
use formats::otlp::proto::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use prost::Message as _;
use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> ExportProfilesServiceRequest {
    let bytes = std::fs::read(testkit::testdata("otlp").join(name)).expect("fixture");
    ExportProfilesServiceRequest::decode(bytes.as_slice()).expect("fixture decodes")
}

/// The fixture with a scope attribute `test_run_no=<run>`, as Pyroscope's test adds it.
fn tagged(run: &str) -> ExportProfilesServiceRequest {
    let mut request = fixture("otel-ebpf-profile.pb.bin");
    for resource in &mut request.resource_profiles {
        for scope in &mut resource.scope_profiles {
            scope
                .scope
                .get_or_insert_with(InstrumentationScope::default)
                .attributes
                .push(KeyValue {
                    key: "test_run_no".to_owned(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(run.to_owned())),
                    }),
                });
        }
    }
    request
}

/// (status, content type, body) of a POST.
fn post(server: &Server, path: &str, content_type: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
    let (status, head, body) =
        common::post_bytes(server, path, &[("Content-Type", content_type)], body);
    let kind = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or("")
        .trim()
        .to_owned();
    (status, kind, body)
}

/// `SelectMergeProfile` of the CPU type for one run, in strprofile form with sorted samples.
fn read_back(server: &Server, run: &str) -> serde_json::Value {
    use api::proto::querier::v1::SelectMergeProfileRequest;
    let now = model::time::now_ms();
    let request = SelectMergeProfileRequest {
        profile_type_id: "process_cpu:cpu:nanoseconds:cpu:nanoseconds".to_owned(),
        label_selector: format!("{{service_name=\"unknown_service\",test_run_no=\"{run}\"}}"),
        start: 1000,
        end: now,
        ..Default::default()
    };
    let (status, _, body) = post(
        server,
        "/querier.v1.QuerierService/SelectMergeProfile",
        "application/proto",
        &request.encode_to_vec(),
    );
    assert_eq!(status, 200);
    let profile = formats::pprof::Profile::decode(body.as_slice()).expect("pprof");
    assert!(!profile.sample.is_empty(), "run {run}: nothing stored");
    strprofile::sorted_samples(strprofile::strprofile(&profile, false))
}

fn golden() -> serde_json::Value {
    let text = std::fs::read_to_string(testkit::testdata("otlp/otel-ebpf-profile.out.json"))
        .expect("golden");
    strprofile::sorted_samples(serde_json::from_str(&text).expect("JSON"))
}

fn python() -> PathBuf {
    std::env::var("EMBERSCOPE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python")
        })
}

/// Exports over gRPC with grpcio; returns (status name, details).
fn grpc_export(server: &Server, request: &ExportProfilesServiceRequest) -> (String, String) {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("request.pb");
    std::fs::write(&file, request.encode_to_vec()).expect("write");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/grpc/otlp_export.py");
    let output = Command::new(python())
        .arg(&script)
        .arg(&server.address)
        .arg(&file)
        .arg(dir.path())
        .output()
        .expect("run the gRPC exporter (scripts/test.sh installs grpcio)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    (
        result["code"].as_str().unwrap_or("").to_owned(),
        result["details"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn otlp_over_grpc_http_protobuf_and_http_json_matches_pyroscopes_golden() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let expected = golden();

    let (code, details) = grpc_export(&server, &tagged("grpc"));
    assert_eq!((code.as_str(), details.as_str()), ("OK", ""));
    assert_eq!(read_back(&server, "grpc"), expected);

    let (status, kind, body) = post(
        &server,
        "/v1development/profiles",
        "application/x-protobuf",
        &tagged("http-proto").encode_to_vec(),
    );
    assert_eq!((status, kind.as_str()), (200, "application/x-protobuf"));
    assert!(body.is_empty());
    assert_eq!(read_back(&server, "http-proto"), expected);

    let json = serde_json::to_vec(&tagged("http-json")).expect("protojson");
    let (status, _, body) = post(
        &server,
        "/v1development/profiles",
        "application/json",
        &json,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(read_back(&server, "http-json"), expected);
}

#[test]
fn bad_otlp_requests_are_refused_with_pyroscopes_messages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let corrupted = fixture("otel-ebpf-profile-corrupted.pb.bin");
    let (code, details) = grpc_export(&server, &corrupted);
    assert_eq!(code, "INVALID_ARGUMENT");
    assert!(
        details.contains("failed to convert otel profile: invalid stack index: 1000000000"),
        "{details}"
    );
    let (status, _, body) = post(
        &server,
        "/v1development/profiles",
        "application/x-protobuf",
        &corrupted.encode_to_vec(),
    );
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("invalid stack index: 1000000000"), "{text}");
    // Nothing of it was stored.
    let (_, _, types) = post(
        &server,
        "/querier.v1.QuerierService/ProfileTypes",
        "application/json",
        b"{}",
    );
    assert_eq!(String::from_utf8_lossy(&types), "{}");

    let cases: [(&str, &[u8], u16, &str); 4] = [
        (
            "text/plain",
            b"x",
            415,
            "Unsupported Content-Type: text/plain",
        ),
        (
            "application/x-protobuf",
            b"\xff\xff",
            400,
            "Failed to parse protobuf request",
        ),
        (
            "application/json",
            b"{\"resourceProfiles\": 5}",
            400,
            "Failed to parse JSON request",
        ),
        (
            "application/x-protobuf",
            b"",
            400,
            "missing profile metadata dictionary",
        ),
    ];
    for (kind, body, want, message) in cases {
        let (status, _, text) = post(&server, "/v1development/profiles", kind, body);
        let text = String::from_utf8_lossy(&text);
        assert_eq!(status, want, "{kind}: {text}");
        assert!(text.contains(message), "{kind}: {text}");
    }
}
