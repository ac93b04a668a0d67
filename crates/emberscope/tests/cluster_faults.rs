//! Members that misbehave, registered in the cluster's membership beside real processes (one
//! segment writer, one query backend, a distributor, a query frontend and a compactor on moto
//! and PostgreSQL): a writer and a backend that answer garbage, a writer that hangs, and a
//! writer that stores (through a proxy to the real one) but never answers. Every push is
//! acknowledged by moving on to the real writer within the timeout, queries keep answering,
//! and a retry of a call whose answer was lost is recognised as stored — totals are exact at
//! once. Then the metastore (a PostgreSQL of the test's own, crashed and started again) and
//! object storage (behind a proxy that refuses and cuts connections) going away under load:
//! 503s that say what is missing, and nothing acknowledged lost.

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

/// A PostgreSQL server of this test's own (the one the other tests share stays untouched):
/// the installed server's binaries (`scripts/postgres.sh` installs them) on a fresh data
/// folder and a free port, run as the `postgres` user.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> PrivatePostgres {
        let version = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL installed (scripts/postgres.sh)")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .expect("a PostgreSQL version");
        let bin = std::path::PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        let dir = tempfile::tempdir().expect("temp dir");
        // The server runs as `postgres`, which must reach its folder.
        Command::new("chmod")
            .args(["0777", &dir.path().display().to_string()])
            .status()
            .expect("chmod");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let postgres = PrivatePostgres { dir, bin, port };
        postgres.as_postgres(&format!(
            "{}/initdb -D {} -A trust -U postgres",
            postgres.bin.display(),
            postgres.data()
        ));
        postgres.up();
        postgres
    }

    fn data(&self) -> String {
        self.dir.path().join("pg").display().to_string()
    }

    fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// Runs `command` as the `postgres` user; whether it succeeded.
    fn try_as_postgres(&self, command: &str) -> bool {
        Command::new("su")
            .args(["postgres", "-s", "/bin/sh", "-c", command])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn as_postgres(&self, command: &str) {
        assert!(self.try_as_postgres(command), "as postgres: {command}");
    }

    fn up(&self) {
        self.as_postgres(&format!(
            "{}/pg_ctl -D {} -l {}/log -w -o '-p {} -k {} -c listen_addresses=127.0.0.1' start",
            self.bin.display(),
            self.data(),
            self.dir.path().display(),
            self.port,
            self.dir.path().display()
        ));
    }

    /// `pg_ctl stop -m immediate`: the server stops as a crash would (no shutdown
    /// checkpoint, connections cut).
    fn stop_command(&self) -> String {
        format!(
            "{}/pg_ctl -D {} -m immediate -w stop",
            self.bin.display(),
            self.data()
        )
    }

    fn crash(&self) {
        self.as_postgres(&self.stop_command());
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // Already stopped is fine here.
        let _ = self.try_as_postgres(&self.stop_command());
    }
}

/// A TCP proxy in front of a server that can be switched off: it then refuses connections and
/// cuts the open ones, as object storage that is down or refusing writes looks to a client.
struct Switch {
    address: String,
    down: Arc<AtomicBool>,
}

impl Switch {
    fn to(port: u16) -> Switch {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let down = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&down);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if flag.load(Ordering::Relaxed) {
                    continue; // dropped: the connection is refused
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                    continue;
                };
                for (from, to) in [
                    (client.try_clone(), server.try_clone()),
                    (server.try_clone(), client.try_clone()),
                ] {
                    let (Ok(from), Ok(to)) = (from, to) else {
                        continue;
                    };
                    let flag = Arc::clone(&flag);
                    std::thread::spawn(move || pipe(from, to, &flag));
                }
            }
        });
        Switch { address, down }
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` until either closes or the switch goes down.
fn pipe(mut from: TcpStream, mut to: TcpStream, down: &AtomicBool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buffer = [0u8; 65536];
    loop {
        if down.load(Ordering::Relaxed) {
            break;
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(std::net::Shutdown::Both);
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// What a run of pushes got back.
#[derive(Default)]
struct Pushes {
    sent: u64,
    acknowledged: u64,
    refused: Vec<String>,
}

impl Pushes {
    /// Pushes `cpu` as the `n`th profile of service `outage`.
    fn push(&mut self, server: &common::Server, cpu: &[u8]) {
        let target = format!(
            "/ingest?name=outage%7Bpush%3D%22p{}%22%7D&format=pprof",
            self.sent
        );
        self.sent += 1;
        match common::try_request(server, "POST", &target, &[], cpu) {
            Ok((200, _)) => self.acknowledged += 1,
            Ok((status, body)) => self.refused.push(format!("{status}: {body}")),
            Err(error) => self.refused.push(error.to_string()),
        }
    }

    /// Pushes for `seconds`; the answers refused meanwhile.
    fn for_a_while(&mut self, server: &common::Server, cpu: &[u8], seconds: u64) -> Vec<String> {
        let (started, before) = (Instant::now(), self.refused.len());
        while started.elapsed() < Duration::from_secs(seconds) {
            self.push(server, cpu);
        }
        self.refused[before..].to_vec()
    }

    /// Pushes until one is acknowledged again (within 30 s).
    fn until_acknowledged(&mut self, server: &common::Server, cpu: &[u8], after: &str) {
        let started = Instant::now();
        loop {
            let before = self.acknowledged;
            self.push(server, cpu);
            if self.acknowledged > before {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "pushes still refused 30 s after {after}: {:?}",
                self.refused.last()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The metastore (a PostgreSQL crash) and then object storage (connections refused and cut)
/// going away under load, in a cluster (a distributor, a segment writer, and the query and
/// compaction roles in a third process): meanwhile pushes get 503 and queries a 5xx, saying
/// what is unavailable; pushes are acknowledged again once each is back, without restarting
/// anything; every acknowledged push is counted, and nothing more than was sent.
#[test]
fn metastore_and_storage_outages_cost_time_not_data() {
    let postgres = PrivatePostgres::start();
    let moto = testkit::emulator::start_moto_with_bucket("emberscope");
    let storage = Switch::to(moto.port);
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("cluster.yaml");
    std::fs::write(
        &config,
        format!(
            "storage:\n  backend: s3\n  s3:\n    bucket: emberscope\n    endpoint: http://{}\n    region: us-east-1\n    access-key-id: test\n    secret-access-key: test\n    allow-http: true\nmetastore:\n  backend: postgres\n  postgres:\n    url: \"{}\"\ncluster:\n  heartbeat-interval: 200ms\n  member-lease: 1500ms\nsegment-writer:\n  flush-interval: 50ms\ndistributor:\n  writer-timeout: 5s\n  writer-batch-window: 50ms\n  ingestion-rate-limit-mb: 0\n",
            storage.address,
            postgres.url()
        ),
    )
    .expect("config");
    let config = config.display().to_string();
    let folders: Vec<tempfile::TempDir> =
        (0..3).map(|_| tempfile::tempdir().expect("data")).collect();
    let role = |n: usize, target: &str| {
        start(
            folders[n].path(),
            &["--config.file", &config, "--target", target],
        )
    };
    let _writer = role(0, "segment-writer");
    let reader = role(1, "query-frontend,query-backend,compactor");
    let distributor = role(2, "distributor");
    wait_for(
        "the writer in the distributor's view",
        Duration::from_secs(20),
        || members_with(&distributor, "segment-writer") == 1,
    );
    let cpu = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/pprof/cpu.pprof"),
    )
    .expect("test profile");
    let selector =
        url_encode("process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"outage\"}");
    let render = format!("/pyroscope/render?query={selector}&from=946656000&until=now");
    let mut pushes = Pushes::default();
    for _ in 0..20 {
        pushes.push(&distributor, &cpu);
    }
    assert_eq!(pushes.acknowledged, 20, "{:?}", pushes.refused);
    // Pushes at once share the distributor's HTTP calls to the writer, each answered alone.
    let together = 32;
    let start = std::sync::Barrier::new(together);
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let running: Vec<_> = (0..together)
            .map(|n| {
                let (distributor, cpu, start) = (&distributor, &cpu, &start);
                scope.spawn(move || {
                    let target =
                        format!("/ingest?name=outage%7Btogether%3D%22t{n}%22%7D&format=pprof");
                    start.wait();
                    common::try_request(distributor, "POST", &target, &[], cpu)
                        .map_or(0, |(status, _)| status)
                })
            })
            .collect();
        running
            .into_iter()
            .map(|t| t.join().expect("pusher"))
            .collect()
    });
    assert!(answers.iter().all(|&s| s == 200), "{answers:?}");
    pushes.sent += together as u64;
    pushes.acknowledged += together as u64;
    let metrics = request(&distributor, "GET", "/metrics", &[], b"").1;
    let counter = |name: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    let (calls, requests) = (
        counter("emberscope_distributor_writer_http_calls_total "),
        counter("emberscope_distributor_writer_requests_total "),
    );
    assert_eq!(requests, 20 + together as u64);
    assert!(
        calls < requests,
        "{calls} HTTP calls for {requests} requests"
    );
    eprintln!("{requests} requests to the writer in {calls} HTTP calls");

    postgres.crash();
    let refused = pushes.for_a_while(&distributor, &cpu, 3);
    assert!(
        !refused.is_empty(),
        "no push refused while the metastore was down"
    );
    let (status, body) = common::try_request(&reader, "GET", &render, &[], b"")
        .expect("an answer while the metastore is down");
    assert!(
        status >= 500 && body.contains("metastore"),
        "{status}: {body}"
    );
    postgres.up();
    pushes.until_acknowledged(&distributor, &cpu, "PostgreSQL came back");

    storage.set_down(true);
    let refused_by_storage = pushes.for_a_while(&distributor, &cpu, 3);
    assert!(
        !refused_by_storage.is_empty(),
        "no push refused while object storage was down"
    );
    storage.set_down(false);
    pushes.until_acknowledged(&distributor, &cpu, "object storage came back");
    for _ in 0..20 {
        pushes.push(&distributor, &cpu);
    }
    eprintln!(
        "{} of {} pushes refused; while the metastore was down, for example: {:?}; while \
         object storage was: {:?}",
        pushes.refused.len(),
        pushes.sent,
        refused.first(),
        refused_by_storage.first()
    );
    for answer in &pushes.refused {
        assert!(answer.starts_with("503: "), "{answer}");
    }
    assert!(
        refused.iter().any(|a| a.contains("metastore")),
        "{refused:?}"
    );
    assert!(
        refused_by_storage
            .iter()
            .any(|a| a.contains("storing segment")),
        "{refused_by_storage:?}"
    );
    // Every acknowledged push counts; a refused one may too (its segment recorded just as
    // the connection was cut), never more than was sent.
    let (acknowledged, sent) = (pushes.acknowledged, pushes.sent);
    let mut found = 0;
    wait_for(
        "the acknowledged pushes in queries",
        Duration::from_secs(30),
        || {
            found = common::try_request(&reader, "GET", &render, &[], b"")
                .ok()
                .filter(|(status, _)| *status == 200)
                .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
                .and_then(|v| v["flamebearer"]["numTicks"].as_u64())
                .unwrap_or(0);
            found >= acknowledged * CPU_TOTAL
        },
    );
    assert!(
        found <= sent * CPU_TOTAL && found % CPU_TOTAL == 0,
        "{found} for {acknowledged} acknowledged of {sent} sent"
    );
}
