//! A real gRPC client — Python's `grpcio` (HTTP/2 cleartext, installed by `scripts/test.sh`
//! into `target/test-venv`) — pushes a profile and queries it back on the same port that serves
//! HTTP and Connect: the bytes it gets equal what the pprof oracle says the file holds.

mod common;

use common::start;
use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    if let Ok(path) = std::env::var("EMBERSCOPE_PYTHON") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python")
}

#[test]
fn grpc_client_pushes_and_queries_over_h2c() {
    let python = python();
    assert!(
        python.exists(),
        "{} is missing: scripts/test.sh installs grpcio into target/test-venv",
        python.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &["--auth.multitenancy-enabled"]);
    let out = tempfile::tempdir().expect("generated code dir");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/grpc/grpc_client.py");
    let output = Command::new(&python)
        .arg(&script)
        .arg(&server.address)
        .arg(testkit::testdata("pprof/cpu.pprof"))
        .arg(out.path())
        .output()
        .expect("run the gRPC client");
    assert!(
        output.status.success(),
        "grpc client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("client prints JSON");
    assert_eq!(
        result["profile_types"],
        serde_json::json!([
            "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
            "process_cpu:samples:count:cpu:nanoseconds"
        ])
    );
    // cpu.pprof holds 470 ms of CPU time (`pprof -top` says "Total samples = 470ms").
    assert_eq!(result["total"], 470_000_000);
    assert_eq!(result["pprof_total"], 470_000_000);
    let names: Vec<String> = serde_json::from_value(result["names"].clone()).expect("names");
    assert!(names.iter().any(|n| n == "runtime.mcall"), "{names:?}");
    assert_eq!(
        result["error"],
        serde_json::json!(["INVALID_ARGUMENT", "missing time range in the query"])
    );
    assert_eq!(
        result["no_tenant"],
        serde_json::json!(["UNAUTHENTICATED", "no org id"])
    );
}
