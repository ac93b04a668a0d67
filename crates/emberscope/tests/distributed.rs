//! The same binary on shared infrastructure, configured by a YAML file: objects on a real S3
//! server (moto, on loopback) and metadata in PostgreSQL (both started by `scripts/test.sh`
//! set-up). A second process with an empty data folder sees everything the first stored, so
//! nothing lives on local disk; options also come from the environment.

mod common;

use common::{get_json, request, start, start_with_env, url_encode};
use std::process::Command;

#[test]
fn s3_and_postgres_from_a_config_file_and_the_environment() {
    let moto = testkit::emulator::start_moto_with_bucket("emberscope");
    let postgres = testkit::postgres::fresh_schema();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("emberscope.yaml");
    std::fs::write(
        &config,
        format!(
            "storage:\n  backend: s3\n  s3:\n    bucket: emberscope\n    endpoint: http://127.0.0.1:{}\n    region: us-east-1\n    access-key-id: test\n    secret-access-key: test\n    allow-http: true\nmetastore:\n  backend: postgres\n  postgres:\n    url: \"{}\"\ncompactor:\n  interval: 1s\n",
            moto.port,
            postgres.replace('"', "\\\"")
        ),
    )
    .expect("write config");
    let config_arg = config.display().to_string();
    let cpu = std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof");
    let query = url_encode("process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"remote\"}");
    let render = format!("/pyroscope/render?query={query}&from=946656000&until=now");
    {
        let first = tempfile::tempdir().expect("data");
        let server = start(first.path(), &["--config.file", &config_arg]);
        let (status, text) = request(
            &server,
            "POST",
            "/ingest?name=remote&format=pprof",
            &[],
            &cpu,
        );
        assert_eq!(status, 200, "{text}");
        assert_eq!(
            get_json(&server, &render, &[])["flamebearer"]["numTicks"],
            470_000_000
        );
        // Nothing went to the local data folder.
        assert!(!first.path().join("objects").exists());
        assert!(!first.path().join("metastore.db").exists());
    }
    // A second process, empty data folder, multi-tenancy switched on from the environment.
    let second = tempfile::tempdir().expect("data");
    let server = start_with_env(
        second.path(),
        &["--config.file", &config_arg],
        &[("EMBERSCOPE_AUTH_MULTITENANCY_ENABLED", "true")],
    );
    let (status, text) = request(&server, "GET", &render, &[], b"");
    assert_eq!(status, 401, "{text}");
    // The first process stored as tenant "anonymous": ask for it by name.
    let again = get_json(&server, &render, &[("X-Scope-OrgID", "anonymous")]);
    assert_eq!(again["flamebearer"]["numTicks"], 470_000_000);
    // The object store goes away: a query that must read it answers 503, in seconds.
    drop(moto);
    let other = url_encode("process_cpu:samples:count:cpu:nanoseconds{service_name=\"remote\"}");
    let started = std::time::Instant::now();
    let (status, text) = request(
        &server,
        "GET",
        &format!("/pyroscope/render?query={other}&from=946656000&until=now"),
        &[("X-Scope-OrgID", "anonymous")],
        b"",
    );
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("object storage is unavailable"), "{text}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn a_bad_configuration_stops_the_server_with_a_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("bad.yaml");
    std::fs::write(&config, "storage:\n  backend: s3\n").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_emberscope"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config.file"])
        .arg(&config)
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("storage.s3.bucket is required"), "{stderr}");
    let output = Command::new(env!("CARGO_BIN_EXE_emberscope"))
        .args(["serve", "--target", "metastore"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the roles are all, distributor"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
