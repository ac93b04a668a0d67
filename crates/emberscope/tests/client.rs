//! The client commands as a user runs them, against `emberscope serve`: `upload` real files,
//! `query` them back (compared with `emberscope collapse` of the same files), `ready`,
//! `loadgen`; every failure with its message and exit code 1.

mod common;

use common::{Server, shared, start};
use std::process::{Command, Output};

fn emberscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emberscope"))
        .args(args)
        .env_remove("EMBERSCOPE_URL")
        .env_remove("EMBERSCOPE_TENANT")
        .output()
        .expect("run emberscope")
}

fn ok(args: &[&str]) -> String {
    let output = emberscope(args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs a command that must fail with exit code 1; returns its stderr.
fn fails(args: &[&str]) -> String {
    let output = emberscope(args);
    assert_eq!(output.status.code(), Some(1), "{args:?} should fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn url(server: &Server) -> String {
    format!("http://{}", server.address)
}

const CPU: &str = "process_cpu:cpu:nanoseconds:cpu:nanoseconds";

#[test]
fn upload_then_query_back_the_same_stacks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let url = url(&server);
    let testdata = shared().join("testdata");
    let cpu = testdata.join("pprof/cpu.pprof").display().to_string();
    let heap = testdata.join("pprof/heap.pb.gz").display().to_string();
    let speedscope = testdata
        .join("speedscope/simple.speedscope.json")
        .display()
        .to_string();

    let out = ok(&[
        "upload",
        &cpu,
        &heap,
        "--service",
        "cli-app",
        "--label",
        "env=test",
        "--url",
        &url,
    ]);
    assert!(out.contains("uploaded 2 of 2 files"), "{out}");
    let out = ok(&[
        "upload",
        &speedscope,
        "--service",
        "cli-speedscope",
        "--url",
        &url,
    ]);
    assert!(out.contains("(Speedscope,"), "{out}");

    let query = format!("{CPU}{{service_name=\"cli-app\"}}");
    let range = ["--from", "2000-01-01T00:00:00Z", "--to", "now"];
    let table = ok(&[
        &["query", "flamegraph", "--query", &query, "--url", &url][..],
        &range[..],
    ]
    .concat());
    assert!(table.contains("total 470.00ms"), "{table}");
    assert!(table.contains("runtime.kevent"), "{table}");

    // The stored profile equals the file, as `emberscope collapse` reads both.
    let scratch = tempfile::tempdir().expect("scratch");
    let merged = scratch.path().join("merged.pb.gz").display().to_string();
    ok(&[
        &[
            "query", "pprof", "--query", &query, "-o", &merged, "--url", &url,
        ][..],
        &range[..],
    ]
    .concat());
    assert_eq!(
        ok(&["collapse", &merged]),
        ok(&["collapse", &cpu, "--sample-type", "cpu"])
    );
    let collapsed = scratch.path().join("stacks.txt").display().to_string();
    ok(&[
        &[
            "query",
            "flamegraph",
            "--query",
            &query,
            "-o",
            &collapsed,
            "--url",
            &url,
        ][..],
        &range[..],
    ]
    .concat());
    assert_eq!(
        std::fs::read_to_string(&collapsed).expect("collapsed"),
        ok(&["collapse", &cpu, "--sample-type", "cpu"])
    );

    let csv = ok(&[
        &[
            "query",
            "series",
            "--query",
            &query,
            "--group-by",
            "env",
            "--csv",
            "--url",
            &url,
        ][..],
        &range[..],
    ]
    .concat());
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "labels,timestamp_ms,value");
    assert!(
        lines[1].starts_with("{env=test},") && lines[1].ends_with(",470000000"),
        "{csv}"
    );

    let labels = ok(&[
        &["query", "labels", "--cardinality", "--url", &url][..],
        &range[..],
    ]
    .concat());
    assert!(labels.lines().any(|l| l.trim() == "1  env"), "{labels}");
    assert!(
        labels.lines().any(|l| l.trim() == "2  service_name"),
        "{labels}"
    );
    let values = ok(&[
        &[
            "query",
            "label-values",
            "--name",
            "service_name",
            "--url",
            &url,
        ][..],
        &range[..],
    ]
    .concat());
    assert_eq!(values, "cli-app\ncli-speedscope\n");
    let types = ok(&[&["query", "profile-types", "--url", &url][..], &range[..]].concat());
    assert!(types.lines().any(|l| l == CPU), "{types}");
    assert!(
        types
            .lines()
            .any(|l| l == "memory:inuse_space:bytes:space:bytes"),
        "{types}"
    );
    assert_eq!(ok(&["ready", "--url", &url]), "ready\n");
}

#[test]
fn every_failure_has_a_message_and_exit_code_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let url = url(&server);
    let stderr = fails(&["upload", "/no/such/file.pprof", "--url", &url]);
    assert!(
        stderr.contains("cannot read /no/such/file.pprof"),
        "{stderr}"
    );
    let invalid = shared()
        .join("testdata/pprof/invalid_utf8.pb.gz")
        .display()
        .to_string();
    let stderr = fails(&["upload", &invalid, "--format", "pprof", "--url", &url]);
    assert!(
        stderr.contains("is not a valid pprof: invalid utf8 string"),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 1 uploads failed"), "{stderr}");
    let stderr = fails(&["upload", &invalid, "--label", "oops", "--url", &url]);
    assert!(stderr.contains("expected NAME=VALUE"), "{stderr}");
    // Nothing listens on port 9 of loopback.
    let stderr = fails(&["ready", "--url", "http://127.0.0.1:9"]);
    assert!(
        stderr.contains("cannot reach http://127.0.0.1:9"),
        "{stderr}"
    );
    let stderr = fails(&["query", "flamegraph", "--query", "{}", "--url", &url]);
    assert!(stderr.contains("needs a profile type"), "{stderr}");
    let stderr = fails(&[
        "query",
        "profile-types",
        "--from",
        "yesterday",
        "--url",
        &url,
    ]);
    assert!(stderr.contains("--from"), "{stderr}");
    let stderr = fails(&["query", "labels", "--query", "{a=", "--url", &url]);
    assert!(stderr.contains("--query"), "{stderr}");
    // A server-side refusal: a range longer than the tenant allows.
    drop(server);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &["--querier.max-query-length", "1h"]);
    let stderr = fails(&[
        "query",
        "pprof",
        "--query",
        &format!("{CPU}{{}}"),
        "--from",
        "now-2h",
        "--url",
        &format!("http://{}", server.address),
    ]);
    assert!(
        stderr.contains("the query time range exceeds the limit"),
        "{stderr}"
    );
}

#[test]
fn loadgen_pushes_a_fleet_and_reports() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let url = url(&server);
    let profiles = shared().join("testdata/pprof").display().to_string();
    let report = ok(&[
        "loadgen",
        "--services",
        "2",
        "--pods",
        "2",
        "--interval",
        "1s",
        "--duration",
        "3s",
        "--profiles",
        &profiles,
        "--url",
        &url,
    ]);
    assert!(report.contains(" 0 failed"), "{report}");
    assert!(report.contains("acknowledge latency p50"), "{report}");
    let sent: usize = report
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("sent count");
    assert!((8..=16).contains(&sent), "{report}");
    let services = ok(&[
        "query",
        "label-values",
        "--name",
        "service_name",
        "--from",
        "now-1h",
        "--url",
        &url,
    ]);
    assert_eq!(services, "loadgen-0\nloadgen-1\n");
}

#[test]
fn tenants_and_credentials_travel_with_every_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &["--auth.multitenancy-enabled"]);
    let url = url(&server);
    let cpu = shared()
        .join("testdata/pprof/cpu.pprof")
        .display()
        .to_string();
    let stderr = fails(&["upload", &cpu, "--url", &url]);
    assert!(
        stderr.contains("401 (unauthenticated): no org id"),
        "{stderr}"
    );
    // Basic auth and a bearer token are sent along (the server ignores them, as Pyroscope does
    // behind its authenticating proxy); the tenant decides where the data goes.
    ok(&[
        "upload",
        &cpu,
        "--service",
        "t1-app",
        "--tenant",
        "t1",
        "--username",
        "u",
        "--password",
        "p",
        "--url",
        &url,
    ]);
    let range = ["--from", "2000-01-01T00:00:00Z"];
    let t1 = ok(&[
        &[
            "query",
            "label-values",
            "--name",
            "service_name",
            "--tenant",
            "t1",
            "--token",
            "abc",
            "--url",
            &url,
        ][..],
        &range[..],
    ]
    .concat());
    assert_eq!(t1, "t1-app\n");
    let t2 = ok(&[
        &[
            "query",
            "label-values",
            "--name",
            "service_name",
            "--tenant",
            "t2",
            "--url",
            &url,
        ][..],
        &range[..],
    ]
    .concat());
    assert_eq!(t2, "");
}

#[test]
fn upload_sends_jfr_recordings_to_the_jfr_endpoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let url = url(&server);
    let recording = shared()
        .join("testdata/jfr/cortex-dev-01__kafka-0__cpu_lock_alloc__0.jfr.gz")
        .display()
        .to_string();
    let out = ok(&["upload", &recording, "--service", "cli-java", "--url", &url]);
    assert!(out.contains("(Jfr,"), "{out}");
    let range = ["--from", "2000-01-01T00:00:00Z", "--to", "now"];
    let types = ok(&[&["query", "profile-types", "--url", &url][..], &range[..]].concat());
    for expected in [
        CPU,
        "memory:alloc_in_new_tlab_bytes:bytes:space:bytes",
        "memory:alloc_in_new_tlab_objects:count:space:bytes",
    ] {
        assert!(types.lines().any(|l| l == expected), "{expected}: {types}");
    }
    let query = format!("{CPU}{{service_name=\"cli-java\"}}");
    let table = ok(&[
        &["query", "flamegraph", "--query", &query, "--url", &url][..],
        &range[..],
    ]
    .concat());
    // 554 CPU samples of 10 ms in the recording, spent mostly in java.util.regex.
    assert!(table.contains("total 5.54s"), "{table}");
    assert!(
        table.contains("java/util/regex/Pattern$CharPropertyGreedy.match"),
        "{table}"
    );
}
