//! Per-tenant limits from the runtime overrides file, enforced with Pyroscope's errors and
//! status codes, re-read while the server runs; other tenants keep the defaults.

mod common;

use common::{Server, get_json, request, start, url_encode};
use std::time::{Duration, Instant};

fn ingest(server: &Server, tenant: &str, body: &[u8]) -> (u16, String) {
    request(
        server,
        "POST",
        "/ingest?name=limited&format=pprof",
        &[("X-Scope-OrgID", tenant)],
        body,
    )
}

#[test]
fn overrides_limit_one_tenant_and_reload_while_running() {
    let dir = tempfile::tempdir().expect("temp dir");
    let overrides = dir.path().join("overrides.yaml");
    std::fs::write(
        &overrides,
        "overrides:\n  small:\n    ingestion_rate_mb: 0.0001\n    ingestion_burst_size_mb: 0.01\n    max_query_length: 1h\n    max_flamegraph_nodes_max: 10\n    ingestion_body_limit_mb: 0.002\n",
    )
    .expect("write overrides");
    let overrides_arg = overrides.display().to_string();
    let server = start(
        dir.path(),
        &[
            "--auth.multitenancy-enabled",
            "--runtime-config.file",
            &overrides_arg,
            "--runtime-config.reload-period",
            "1s",
        ],
    );
    let cpu = std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof");
    assert!(
        cpu.len() < 2097,
        "the test needs a profile under the body limit"
    );

    // The tenant's limits are visible.
    let limits = get_json(
        &server,
        "/api/v1/tenant_limits",
        &[("X-Scope-OrgID", "small")],
    );
    assert_eq!(limits["max_query_length"], "1h");
    assert_eq!(limits["ingestion_rate_mb"], 0.0001);
    let default = get_json(
        &server,
        "/api/v1/tenant_limits",
        &[("X-Scope-OrgID", "other")],
    );
    assert_eq!(default["max_query_length"], "0s");

    // Rate: 100 B/s (negligible refill even on a slow machine) with a 10 kB burst; cpu.pprof is ~3 kB uncompressed: a few pass, then 429.
    let mut statuses = Vec::new();
    let mut refusal = String::new();
    for _ in 0..6 {
        let (status, text) = ingest(&server, "small", &cpu);
        if status == 429 {
            refusal = text;
        }
        statuses.push(status);
    }
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(
        refusal.contains("push rate limit (100 B) exceeded while adding"),
        "{refusal}"
    );
    // Another tenant is not limited.
    for _ in 0..6 {
        assert_eq!(ingest(&server, "other", &cpu).0, 200);
    }
    // Body limit: 2 KiB-ish for "small" → 413.
    let (status, text) = ingest(&server, "small", &vec![0u8; 4096]);
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("request body too large"), "{text}");

    // Query length and flame graph nodes.
    let query = url_encode("process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"limited\"}");
    let (status, text) = request(
        &server,
        "GET",
        &format!("/pyroscope/render?query={query}&from=now-2h&until=now"),
        &[("X-Scope-OrgID", "small")],
        b"",
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains(
            "the query time range exceeds the limit (max_query_length, actual: 2h, limit: 1h)"
        ),
        "{text}"
    );
    let (status, text) = request(
        &server,
        "GET",
        &format!("/pyroscope/render?query={query}&from=now-30m&until=now&maxNodes=11"),
        &[("X-Scope-OrgID", "small")],
        b"",
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("max flamegraph nodes limit 11 is greater than allowed 10"),
        "{text}"
    );
    assert_eq!(
        request(
            &server,
            "GET",
            &format!("/pyroscope/render?query={query}&from=now-2h&until=now"),
            &[("X-Scope-OrgID", "other")],
            b"",
        )
        .0,
        200
    );

    // The file changes: the new limit applies without a restart.
    std::fs::write(
        &overrides,
        "overrides:\n  small:\n    max_query_length: 3h\n",
    )
    .expect("rewrite");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let limits = get_json(
            &server,
            "/api/v1/tenant_limits",
            &[("X-Scope-OrgID", "small")],
        );
        if limits["max_query_length"] == "3h" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "overrides were not reloaded: {limits}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, text) = request(
        &server,
        "GET",
        &format!("/pyroscope/render?query={query}&from=now-2h&until=now"),
        &[("X-Scope-OrgID", "small")],
        b"",
    );
    assert_eq!(status, 200, "{text}");
}

#[test]
fn ingest_requests_beyond_the_cap_wait_with_their_bodies_unread() {
    use std::io::{Read as _, Write as _};
    let data = tempfile::tempdir().expect("tempdir");
    let server = start(data.path(), &["--distributor.max-concurrent-requests", "1"]);
    let body = std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("cpu.pprof");
    // The first push takes the only place and keeps it: half its body is still to come.
    let mut first = std::net::TcpStream::connect(&server.address).expect("connect");
    write!(
        first,
        "POST /ingest?name=first&format=pprof HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .expect("head");
    first
        .write_all(&body[..body.len() / 2])
        .expect("half a body");
    std::thread::sleep(Duration::from_millis(300));
    // A second push waits for it; queries are not held up.
    let address = server.address.clone();
    let second_body = body.clone();
    let second = std::thread::spawn(move || {
        let started = Instant::now();
        let mut stream = std::net::TcpStream::connect(&address).expect("connect");
        write!(
            stream,
            "POST /ingest?name=second&format=pprof HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            second_body.len()
        )
        .expect("head");
        stream.write_all(&second_body).expect("body");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        (started.elapsed(), response)
    });
    std::thread::sleep(Duration::from_millis(700));
    let (status, _) = request(&server, "GET", "/ready", &[], b"");
    assert_eq!(status, 200);
    assert!(
        !second.is_finished(),
        "the second push did not wait for the first"
    );
    first
        .write_all(&body[body.len() / 2..])
        .expect("rest of the body");
    let mut response = String::new();
    first.read_to_string(&mut response).expect("first response");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (waited, response) = second.join().expect("second push");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(waited >= Duration::from_millis(600), "{waited:?}");
}
