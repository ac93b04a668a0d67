//! Members that misbehave, registered in the cluster's membership beside real processes (one
//! segment writer, one query backend, a distributor, a query frontend and a compactor on moto
//! and PostgreSQL): a writer and a backend that answer garbage, a writer that hangs, and a
//! writer that stores (through a proxy to the real one) but never answers. Every push is
//! acknowledged by moving on to the real writer within the timeout, queries keep answering,
//! and a retry of a call whose answer was lost is recognised as stored — totals are exact at
//! once.

mod common;

use common::{members_with, request, start, url_encode, wait_for};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a fake member answers.
#[derive(Clone, Copy)]
enum Behaviour {
    /// An HTTP 200 whose body is not what was asked for.
    Garbage,
    /// Reads the request and never answers.
    Hang,
    /// Forwards the request to `real`, waits for its answer, and drops it.
    StoreThenVanish,
}

/// A fake member on loopback; returns its address.
fn fake(behaviour: Behaviour, real: String, stop: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let real = real.clone();
            std::thread::spawn(move || serve(behaviour, stream, &real));
        }
    });
    address
}

/// Reads one HTTP/1.1 request (head and Content-Length body).
fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    let mut buffer = [0u8; 65536];
    loop {
        let n = stream.read(&mut buffer).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buffer[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                return Some(data);
            }
        }
    }
}

fn serve(behaviour: Behaviour, mut stream: TcpStream, real: &str) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    while let Some(request) = read_request(&mut stream) {
        match behaviour {
            Behaviour::Garbage => {
                let body = b"\x00\x00\x00\x00\x05hello, I am not protobuf";
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/proto\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    )
                    .as_bytes(),
                );
                let _ = stream.write_all(body);
            }
            Behaviour::Hang => {
                std::thread::sleep(Duration::from_secs(60));
                return;
            }
            Behaviour::StoreThenVanish => {
                if let Ok(mut upstream) = TcpStream::connect(real) {
                    let _ = upstream.write_all(&request);
                    // The writer answers once the profiles are stored and recorded.
                    let _ = upstream.set_read_timeout(Some(Duration::from_secs(30)));
                    let mut answer = [0u8; 4096];
                    let _ = upstream.read(&mut answer);
                }
                // ... and the answer never reaches the distributor.
                let _ = stream.shutdown(std::net::Shutdown::Both);
                return;
            }
        }
    }
}

/// Keeps `members` (id, role, address) heard from in the metastore, as their processes would.
fn heartbeats(postgres: String, members: Vec<(String, String, String)>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            for (id, role, address) in &members {
                let sql = format!(
                    "INSERT INTO members (id, roles, address, started_at, heartbeat_at) VALUES ('{id}', '{role}', 'http://{address}', {now}, {now}) ON CONFLICT (id) DO UPDATE SET heartbeat_at = {now}"
                );
                let _ = Command::new("psql")
                    .arg(&postgres)
                    .args(["-qAtc", &sql])
                    .output();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
}

const CPU_TOTAL: u64 = 470_000_000;

#[test]
fn garbage_hanging_and_silent_members_cost_time_not_data() {
    let moto = testkit::emulator::start_moto_with_bucket("emberscope");
    let postgres = testkit::postgres::fresh_schema();
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("cluster.yaml");
    std::fs::write(
        &config,
        format!(
            "storage:\n  backend: s3\n  s3:\n    bucket: emberscope\n    endpoint: http://127.0.0.1:{}\n    region: us-east-1\n    access-key-id: test\n    secret-access-key: test\n    allow-http: true\nmetastore:\n  backend: postgres\n  postgres:\n    url: \"{}\"\ncluster:\n  heartbeat-interval: 200ms\n  member-lease: 1500ms\ncompactor:\n  interval: 1s\ndistributor:\n  writer-timeout: 1s\n  writer-attempts: 5\n  ingestion-rate-limit-mb: 0\nquery-frontend:\n  backend-timeout: 2s\n  backend-attempts: 4\n",
            moto.port,
            postgres.replace('"', "\\\"")
        ),
    )
    .expect("config");
    let config = config.display().to_string();
    let folders: Vec<tempfile::TempDir> =
        (0..5).map(|_| tempfile::tempdir().expect("data")).collect();
    let mut next = folders.iter();
    let mut role = |target: &str| {
        let data = next.next().expect("a data folder");
        start(data.path(), &["--config.file", &config, "--target", target])
    };
    let writer = role("segment-writer");
    let _backend = role("query-backend");
    let _compactor = role("compactor");
    let distributor = role("distributor");
    let frontend = role("query-frontend");

    let stop = Arc::new(AtomicBool::new(false));
    let garbage_writer = fake(Behaviour::Garbage, String::new(), Arc::clone(&stop));
    let hanging_writer = fake(Behaviour::Hang, String::new(), Arc::clone(&stop));
    let silent_writer = fake(
        Behaviour::StoreThenVanish,
        writer.address.clone(),
        Arc::clone(&stop),
    );
    let garbage_backend = fake(Behaviour::Garbage, String::new(), Arc::clone(&stop));
    heartbeats(
        postgres,
        vec![
            (
                "fake-garbage-writer".into(),
                "segment-writer".into(),
                garbage_writer,
            ),
            (
                "fake-hanging-writer".into(),
                "segment-writer".into(),
                hanging_writer,
            ),
            (
                "fake-silent-writer".into(),
                "segment-writer".into(),
                silent_writer,
            ),
            (
                "fake-garbage-backend".into(),
                "query-backend".into(),
                garbage_backend,
            ),
        ],
        Arc::clone(&stop),
    );
    wait_for("the fake members", Duration::from_secs(20), || {
        members_with(&distributor, "segment-writer") == 4
            && members_with(&frontend, "query-backend") == 2
    });

    // Services spread over the ring, so every fake writer owns some of them first.
    let cpu = std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof");
    let services = 24;
    let started = Instant::now();
    for service in 0..services {
        let (status, text) = request(
            &distributor,
            "POST",
            &format!("/ingest?name=svc-{service}&format=pprof"),
            &[],
            &cpu,
        );
        assert_eq!(status, 200, "svc-{service}: {text}");
    }
    eprintln!(
        "{services} pushes past a garbage, a hanging and a silent writer in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The distributor counted its failovers.
    let (_, metrics) = request(&distributor, "GET", "/metrics", &[], b"");
    let failovers: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("emberscope_cluster_failovers_total{role=\"segment-writer\"} ")
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(failovers >= 3, "{metrics}");

    // Each push counts once, though the silent writer's were stored twice (once through it,
    // once by the retry): exact once compacted. Queries pass the garbage backend.
    let total = |service: usize| -> Option<u64> {
        let selector = url_encode(&format!(
            "process_cpu:cpu:nanoseconds:cpu:nanoseconds{{service_name=\"svc-{service}\"}}"
        ));
        let (status, body) = request(
            &frontend,
            "GET",
            &format!("/pyroscope/render?query={selector}&from=946656000&until=now"),
            &[],
            b"",
        );
        (status == 200)
            .then(|| serde_json::from_str::<serde_json::Value>(&body).ok())
            .flatten()
            .and_then(|v| v["flamebearer"]["numTicks"].as_u64())
    };
    // Acknowledged means stored and recorded: the totals are exact at once, not after a
    // compaction — the silent writer's profiles were stored once, and the retry found its
    // request recorded and only acknowledged.
    let totals: Vec<Option<u64>> = (0..services).map(total).collect();
    assert!(
        totals.iter().all(|t| *t == Some(CPU_TOTAL)),
        "totals are not exact: {totals:?}"
    );
    stop.store(true, Ordering::Relaxed);
    drop(moto);
}
