//! The client commands as a user runs them, against `emberscope serve`: `upload` real files,
//! `query` them back (compared with `emberscope collapse` of the same files), `ready`,
//! `loadgen`; every failure with its message and exit code 1.

mod common;

use common::{Server, start};
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn emberscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_emberscope"))
        .args(args)
        .env_remove("EMBERSCOPE_URL")
        .env_remove("EMBERSCOPE_TENANT")
        .env_remove("EMBERSCOPE_USERNAME")
        .env_remove("EMBERSCOPE_PASSWORD")
        .env_remove("EMBERSCOPE_TOKEN")
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

/// Runs a command that must fail with exit code 1 and an `emberscope: ` message; returns its
/// stderr.
fn fails(args: &[&str]) -> String {
    let output = emberscope(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{args:?} should fail: {stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("emberscope: ")),
        "{args:?}: {stderr}"
    );
    stderr
}

const EMPTY_200: &str = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// An HTTP server on loopback that answers every request with `answer` and hands each request
/// it read (head and body, as text) to the receiver: what a command put on the wire.
fn recording_server(answer: &'static str) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let mut buffer = [0u8; 8192];
            // The head, then as many body bytes as Content-Length says.
            let complete = |request: &[u8]| {
                let text = String::from_utf8_lossy(request);
                let Some(end) = text.find("\r\n\r\n") else {
                    return false;
                };
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        let (name, value) = l.split_once(':')?;
                        name.eq_ignore_ascii_case("content-length")
                            .then(|| value.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                request.len() >= end + 4 + length
            };
            while !complete(&request) {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let _ = stream.write_all(answer.as_bytes());
            if sender
                .send(String::from_utf8_lossy(&request).into_owned())
                .is_err()
            {
                return;
            }
        }
    });
    (format!("http://{address}"), receiver)
}

fn next_request(requests: &mpsc::Receiver<String>) -> String {
    requests
        .recv_timeout(Duration::from_secs(10))
        .expect("a request reached the recording server")
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
    let testdata = testkit::workspace_root().join("testdata");
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

    // The heap's in-use space, the speedscope file and a folded file come back as they went in
    // (text values scaled by 1e9 / sampleRate: 10000 in the speedscope file, 100 by default).
    let collapsed_of = |query: &str| {
        let path = scratch.path().join("out.txt").display().to_string();
        ok(&[
            &[
                "query",
                "flamegraph",
                "--query",
                query,
                "-o",
                &path,
                "--url",
                &url,
            ][..],
            &range[..],
        ]
        .concat());
        std::fs::read_to_string(&path).expect("collapsed")
    };
    assert_eq!(
        collapsed_of("memory:inuse_space:bytes:space:bytes{service_name=\"cli-app\"}"),
        ok(&["collapse", &heap, "--sample-type", "inuse_space"])
    );
    assert_eq!(
        collapsed_of(&format!("{CPU}{{service_name=\"cli-speedscope\"}}")),
        "a;b 50000000\na;b;c 50000000\na;b;d 40000000\n"
    );
    let folded = scratch.path().join("stacks.folded");
    std::fs::write(&folded, "foo;bar 100\nfoo;baz 200\n").expect("folded file");
    let out = ok(&[
        "upload",
        &folded.display().to_string(),
        "--service",
        "cli-folded",
        "--url",
        &url,
    ]);
    assert!(out.contains("(Folded, 24 bytes)"), "{out}");
    assert_eq!(
        collapsed_of(&format!("{CPU}{{service_name=\"cli-folded\"}}")),
        "foo;bar 1000000000\nfoo;baz 2000000000\n"
    );
    let types = ok(&[
        &[
            "query",
            "profile-types",
            "--query",
            "{service_name=\"cli-folded\"}",
            "--url",
            &url,
        ][..],
        &range[..],
    ]
    .concat());
    assert_eq!(types, format!("{CPU}\n"));

    // Flamebearer JSON with -o x.json; the top table cut by --top; the series as a table.
    let json_path = scratch.path().join("graph.json");
    ok(&[
        &[
            "query",
            "flamegraph",
            "--query",
            &query,
            "-o",
            &json_path.display().to_string(),
            "--url",
            &url,
        ][..],
        &range[..],
    ]
    .concat());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json_path).expect("json")).expect("valid JSON");
    assert_eq!(json["flamebearer"]["numTicks"], 470_000_000, "{json}");
    assert!(
        json["flamebearer"]["names"]
            .as_array()
            .is_some_and(|names| names.iter().any(|n| n == "runtime.kevent")),
        "{json}"
    );
    let top = ok(&[
        &[
            "query",
            "flamegraph",
            "--query",
            &query,
            "--top",
            "1",
            "--url",
            &url,
        ][..],
        &range[..],
    ]
    .concat());
    assert_eq!(top.lines().count(), 3, "{top}");
    assert!(
        top.lines()
            .nth(2)
            .is_some_and(|l| l.ends_with("runtime.kevent")),
        "{top}"
    );
    let series = ok(&[
        &[
            "query",
            "series",
            "--query",
            &query,
            "--group-by",
            "env",
            "--url",
            &url,
        ][..],
        &range[..],
    ]
    .concat());
    let rows: Vec<&str> = series.lines().collect();
    assert!(rows[0].starts_with("time (UTC)"), "{series}");
    assert!(
        rows.len() == 2 && rows[1].contains(" 470.00ms ") && rows[1].ends_with("{env=test}"),
        "{series}"
    );
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
    let invalid = testkit::testdata("pprof/invalid_utf8.pb.gz")
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
    assert!(
        stderr.contains("--from: \"yesterday\" is not a time"),
        "{stderr}"
    );
    let stderr = fails(&["query", "labels", "--query", "{a=", "--url", &url]);
    assert!(stderr.contains("--query \"{a=\":"), "{stderr}");
    let cpu_all = format!("{CPU}{{}}");
    let stderr = fails(&[
        "query", "series", "--query", &cpu_all, "--from", "now", "--to", "now-1h", "--url", &url,
    ]);
    assert!(stderr.contains("--from is after --to"), "{stderr}");
    let stderr = fails(&["query", "flamegraph", "--query", "nope{}", "--url", &url]);
    assert!(
        stderr.contains("--query \"nope{}\": not a profile type"),
        "{stderr}"
    );
    let stderr = fails(&[
        "query", "series", "--query", &cpu_all, "--step", "0", "--url", &url,
    ]);
    assert!(stderr.contains("--step must be positive"), "{stderr}");
    let stderr = fails(&[
        "query",
        "pprof",
        "--query",
        &cpu_all,
        "-o",
        "/no/such/dir/p.pb.gz",
        "--url",
        &url,
    ]);
    assert!(
        stderr.contains("cannot write /no/such/dir/p.pb.gz"),
        "{stderr}"
    );
    // The server refuses what a wrong --format makes of a file.
    let cpu = testkit::testdata("pprof/cpu.pprof").display().to_string();
    let stderr = fails(&["upload", &cpu, "--format", "folded", "--url", &url]);
    assert!(
        stderr.contains("cpu.pprof: upload refused: /ingest"),
        "{stderr}"
    );
    assert!(stderr.contains("the server answered 4"), "{stderr}");
    let stderr = fails(&["upload", &cpu, "--label", "service_name=x", "--url", &url]);
    assert!(
        stderr.contains("service_name comes from --service"),
        "{stderr}"
    );
    // A file larger than the server's body limit is refused before it is read (sparse here).
    let scratch = tempfile::tempdir().expect("scratch");
    let huge = scratch.path().join("huge.pprof");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len((256 << 20) + 1))
        .expect("sparse file");
    let stderr = fails(&["upload", &huge.display().to_string(), "--url", &url]);
    assert!(
        stderr.contains("is 268435457 bytes; the limit is 268435456"),
        "{stderr}"
    );
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
    let profiles = testkit::testdata("pprof").display().to_string();
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
fn loadgen_replays_its_built_in_profiles_by_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &[]);
    let url = url(&server);
    // Five pods, one push each: each pod starts on the next built-in profile.
    let report = ok(&[
        "loadgen",
        "--services",
        "1",
        "--pods",
        "5",
        "--rate",
        "50",
        "--max-requests",
        "5",
        "--url",
        &url,
    ]);
    assert!(report.contains(" 5 ok, 0 failed"), "{report}");
    let sources = ok(&[
        "query",
        "label-values",
        "--name",
        "source",
        "--from",
        "now-1h",
        "--url",
        &url,
    ]);
    assert_eq!(
        sources, "go-cpu\ngo-heap\njava-cpu\nnode-wall\npython-cpu\n",
        "every built-in profile is accepted and pushed"
    );
    let types = ok(&["query", "profile-types", "--from", "now-1h", "--url", &url]);
    for kind in [
        "process_cpu:cpu:nanoseconds",
        "memory:alloc_space:bytes",
        "wall:",
    ] {
        assert!(types.contains(kind), "{kind} in {types}");
    }
}

#[test]
fn tenants_and_credentials_travel_with_every_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), &["--auth.multitenancy-enabled"]);
    let url = url(&server);
    let cpu = testkit::testdata("pprof/cpu.pprof").display().to_string();
    let stderr = fails(&["upload", &cpu, "--url", &url]);
    assert!(
        stderr.contains("401 (unauthenticated): no org id"),
        "{stderr}"
    );
    // Basic auth and a bearer token are sent along (the server ignores them, as Pyroscope does
    // behind its authenticating proxy; `credentials_and_connect_headers_are_on_the_wire` reads
    // them on the wire); the tenant decides where the data goes.
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
    let recording = testkit::testdata("jfr/cortex-dev-01__kafka-0__cpu_lock_alloc__0.jfr.gz")
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

#[test]
fn credentials_and_connect_headers_are_on_the_wire() {
    let (url, requests) = recording_server(EMPTY_200);
    let cpu = testkit::testdata("pprof/cpu.pprof").display().to_string();
    ok(&[
        "upload",
        &cpu,
        "--tenant",
        "t1",
        "--username",
        "u",
        "--password",
        "p",
        "--timeout",
        "5s",
        "--url",
        &url,
    ]);
    let push = next_request(&requests).to_ascii_lowercase();
    assert!(
        push.starts_with("post /push.v1.pusherservice/push http/1.1\r\n"),
        "{push}"
    );
    for header in [
        "x-scope-orgid: t1",
        "authorization: basic dtpw", // base64 of u:p
        "content-type: application/proto",
        "connect-protocol-version: 1",
        "connect-timeout-ms: 5000",
    ] {
        assert!(
            push.contains(&format!("\r\n{header}\r\n")),
            "{header}: {push}"
        );
    }
    ok(&[
        "query",
        "label-values",
        "--name",
        "service_name",
        "--token",
        "abc",
        "--url",
        &url,
    ]);
    let query = next_request(&requests).to_ascii_lowercase();
    assert!(
        query.starts_with("post /querier.v1.querierservice/labelvalues http/1.1\r\n"),
        "{query}"
    );
    assert!(
        query.contains("\r\nauthorization: bearer abc\r\n"),
        "{query}"
    );
    assert!(!query.contains("x-scope-orgid"), "{query}");
    // `ready` wants the body `ready`: an empty 200 is not ready.
    let stderr = fails(&["ready", "--tenant", "t2", "--url", &url]);
    assert!(stderr.contains("not ready: 200"), "{stderr}");
    let ready = next_request(&requests).to_ascii_lowercase();
    assert!(
        ready.starts_with("get /ready http/1.1\r\n") && ready.contains("\r\nx-scope-orgid: t2\r\n"),
        "{ready}"
    );
    // Basic auth and a token at once would send two Authorization headers: refused unsent.
    let stderr = fails(&["ready", "--username", "u", "--token", "abc", "--url", &url]);
    assert!(
        stderr.contains("--username and --token both set"),
        "{stderr}"
    );
    let stderr = fails(&["ready", "--password", "p", "--url", &url]);
    assert!(stderr.contains("--password needs --username"), "{stderr}");
    // The server answers in order: the next request it sees is this one, not a refused one's.
    let _ = fails(&["ready", "--tenant", "after-the-refusals", "--url", &url]);
    let next = next_request(&requests);
    assert!(
        next.contains("after-the-refusals"),
        "a refused command sent {next}"
    );
}

#[test]
fn broken_and_silent_servers_are_errors() {
    let (url, _requests) =
        recording_server("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nzzz");
    let stderr = fails(&["query", "label-values", "--name", "x", "--url", &url]);
    assert!(
        stderr
            .contains("/querier.v1.QuerierService/LabelValues: the answer is not a valid message"),
        "{stderr}"
    );
    let (url, _requests) = recording_server(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 8\r\nConnection: close\r\n\r\nstarting",
    );
    let stderr = fails(&["ready", "--url", &url]);
    assert!(stderr.contains("not ready: 503 starting"), "{stderr}");
    // A server that takes the connection and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", silent.local_addr().expect("address"));
    let started = Instant::now();
    let stderr = fails(&["ready", "--timeout", "300ms", "--url", &url]);
    assert!(
        stderr.contains("/ready: no answer within 300ms"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn loadgen_is_bounded_and_says_what_is_wrong() {
    let (url, requests) = recording_server(EMPTY_200);
    let profiles = testkit::testdata("pprof").display().to_string();
    // One pod due every ten minutes, for one second: one push, and done in about a second.
    let started = Instant::now();
    let report = ok(&[
        "loadgen",
        "--services",
        "1",
        "--pods",
        "1",
        "--interval",
        "10m",
        "--duration",
        "1s",
        "--profiles",
        &profiles,
        "--url",
        &url,
    ]);
    assert!(started.elapsed() < Duration::from_secs(8), "{report}");
    assert!(report.starts_with("sent 1 pushes"), "{report}");
    assert!(
        next_request(&requests).starts_with("POST /push.v1.PusherService/Push HTTP/1.1\r\n"),
        "a Push"
    );
    // --rate sets the pace over the fleet; --max-requests ends the run early.
    let started = Instant::now();
    let report = ok(&[
        "loadgen",
        "--services",
        "2",
        "--pods",
        "2",
        "--interval",
        "1h",
        "--rate",
        "20",
        "--max-requests",
        "5",
        "--duration",
        "1m",
        "--profiles",
        &profiles,
        "--url",
        &url,
    ]);
    assert!(report.starts_with("sent 5 pushes"), "{report}");
    assert!(report.contains(" 5 ok, 0 failed"), "{report}");
    assert!(started.elapsed() < Duration::from_secs(20), "{report}");
    // Far behind schedule (a rate no server meets), the run still ends at --duration.
    let started = Instant::now();
    let report = ok(&[
        "loadgen",
        "--rate",
        "1000000",
        "--duration",
        "1s",
        "--profiles",
        &profiles,
        "--url",
        &url,
    ]);
    assert!(started.elapsed() < Duration::from_secs(8), "{report}");
    while requests.try_recv().is_ok() {}
    for bad in ["nan", "0", "-1", "inf", "1e-30"] {
        let rate = format!("--rate={bad}");
        let stderr = fails(&["loadgen", &rate, "--profiles", &profiles, "--url", &url]);
        assert!(
            stderr.contains("not a positive number of pushes per second"),
            "{bad}: {stderr}"
        );
    }
    let empty = tempfile::tempdir().expect("empty folder");
    let folder = empty.path().display().to_string();
    let stderr = fails(&["loadgen", "--profiles", &folder, "--url", &url]);
    assert!(stderr.contains("no pprof files in"), "{stderr}");
    let (refusing, _requests) = recording_server(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\nConnection: close\r\n\r\noops",
    );
    let stderr = fails(&[
        "loadgen",
        "--services",
        "1",
        "--pods",
        "1",
        "--duration",
        "1s",
        "--profiles",
        &profiles,
        "--url",
        &refusing,
    ]);
    assert!(stderr.contains("every push failed"), "{stderr}");
}
