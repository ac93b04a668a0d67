//! The roles as separate processes on shared infrastructure (objects on a real S3 server, moto;
//! metadata and membership in PostgreSQL; both started by `scripts/test.sh` set-up): two
//! distributors place each service on three segment writers by consistent hashing over the
//! live members; a query frontend sends its read tasks to two query backends. A segment writer,
//! a query backend and the compactor are killed with SIGKILL while pushes and queries go on,
//! and restarted: every push is acknowledged, the totals are exact (nothing acknowledged is
//! lost, nothing retried is counted twice), queries keep answering, and the frontend's answers
//! equal those of a process that reads everything itself.

mod common;

use common::{Server, get_json, request, start, url_encode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The shared configuration: storage, metastore and fast cluster timings.
fn config_file(dir: &std::path::Path, moto_port: u16, postgres: &str) -> String {
    let path = dir.join("cluster.yaml");
    std::fs::write(
        &path,
        format!(
            "storage:\n  backend: s3\n  s3:\n    bucket: emberscope\n    endpoint: http://127.0.0.1:{moto_port}\n    region: us-east-1\n    access-key-id: test\n    secret-access-key: test\n    allow-http: true\nmetastore:\n  backend: postgres\n  postgres:\n    url: \"{}\"\ncluster:\n  heartbeat-interval: 200ms\n  member-lease: 1500ms\nsegment-writer:\n  flush-interval: 100ms\ncompactor:\n  interval: 1s\ndistributor:\n  writer-timeout: 5s\n",
            postgres.replace('"', "\\\"")
        ),
    )
    .expect("write config");
    path.display().to_string()
}

struct Role {
    target: &'static str,
    data: tempfile::TempDir,
}

impl Role {
    fn new(target: &'static str) -> Role {
        Role {
            target,
            data: tempfile::tempdir().expect("data"),
        }
    }

    fn start(&self, config: &str) -> Server {
        start(
            self.data.path(),
            &["--config.file", config, "--target", self.target],
        )
    }
}

/// The members a process sees, as (roles, address).
fn members(server: &Server) -> Vec<(String, String)> {
    let cluster = get_json(server, "/cluster?format=json", &[]);
    cluster["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            let roles: Vec<&str> = m["roles"]
                .as_array()
                .expect("roles")
                .iter()
                .filter_map(|r| r.as_str())
                .collect();
            (
                roles.join(","),
                m["address"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn writers_seen(server: &Server) -> usize {
    members(server)
        .iter()
        .filter(|(roles, _)| roles == "segment-writer")
        .count()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

const SERVICES: usize = 6;
/// The total of `testdata/pprof/cpu.pprof` for its CPU type.
const CPU_TOTAL: u64 = 470_000_000;

fn total(query: &Server, service: usize) -> u64 {
    let selector = url_encode(&format!(
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds{{service_name=\"svc-{service}\"}}"
    ));
    let (status, body) = request(
        query,
        "GET",
        &format!("/pyroscope/render?query={selector}&from=946656000&until=now"),
        &[],
        b"",
    );
    if status != 200 {
        return u64::MAX;
    }
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["flamebearer"]["numTicks"].as_u64())
        .unwrap_or(u64::MAX)
}

#[test]
fn distributors_spread_over_segment_writers_and_survive_a_killed_writer() {
    let moto = testkit::emulator::start_moto_with_bucket("emberscope");
    let postgres = testkit::postgres::fresh_schema();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_file(dir.path(), moto.port, &postgres);

    // Distributors and a frontend alone are not ready, and say why.
    let distributors: Vec<Server> = (0..2)
        .map(|_| Role::new("distributor").start(&config))
        .collect();
    let frontend = Role::new("query-frontend").start(&config);
    let (status, text) = request(&distributors[0], "GET", "/ready", &[], b"");
    assert_eq!(
        (status, text.as_str()),
        (503, "not ready: no segment writer is live")
    );
    let (status, text) = request(&frontend, "GET", "/ready", &[], b"");
    assert_eq!(
        (status, text.as_str()),
        (503, "not ready: no query backend is live")
    );
    let (status, text) = request(
        &distributors[0],
        "POST",
        "/ingest?name=early&format=pprof",
        &[],
        &std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof"),
    );
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("no segment writer is available"), "{text}");

    let writer_roles: Vec<Role> = (0..3).map(|_| Role::new("segment-writer")).collect();
    let mut writers: Vec<Option<Server>> = writer_roles
        .iter()
        .map(|r| Some(r.start(&config)))
        .collect();
    let compactor_role = Role::new("compactor");
    let mut compactor = Some(compactor_role.start(&config));
    let backend_roles: Vec<Role> = (0..2).map(|_| Role::new("query-backend")).collect();
    let mut backends: Vec<Option<Server>> = backend_roles
        .iter()
        .map(|r| Some(r.start(&config)))
        .collect();
    // One process that runs its read tasks itself: the single-process reference.
    let query = Role::new("query-frontend,query-backend").start(&config);

    for distributor in &distributors {
        wait_for(
            "the distributor to see three writers",
            Duration::from_secs(20),
            || writers_seen(distributor) == 3,
        );
    }
    wait_for("the frontend to be ready", Duration::from_secs(20), || {
        request(&frontend, "GET", "/ready", &[], b"").0 == 200
    });
    assert_eq!(request(&distributors[1], "GET", "/ready", &[], b"").0, 200);
    let (_, metrics) = request(&distributors[0], "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains("emberscope_cluster_members{role=\"segment-writer\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("emberscope_cluster_ready 1\n"),
        "{metrics}"
    );
    // Every process is listed once with its roles; the page also renders as HTML.
    let listed = members(&query);
    assert_eq!(listed.len(), 3 + 2 + 1 + 2 + 1 + 1, "{listed:?}");
    let (status, html) = request(&query, "GET", "/cluster", &[], b"");
    assert_eq!(status, 200);
    assert!(html.contains("segment-writer"), "{html}");

    // Pushes go on from two clients, one per distributor, each push its own series.
    let cpu = Arc::new(std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof"));
    let sent = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Vec<Arc<Vec<AtomicUsize>>> = (0..2)
        .map(|_| Arc::new((0..SERVICES).map(|_| AtomicUsize::new(0)).collect()))
        .collect();
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    std::thread::scope(|scope| {
        for (client, distributor) in distributors.iter().enumerate() {
            let (cpu, sent, stop, acked, failures) = (
                Arc::clone(&cpu),
                Arc::clone(&sent),
                Arc::clone(&stop),
                Arc::clone(&acknowledged[client]),
                Arc::clone(&failures),
            );
            scope.spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let service = n % SERVICES;
                    let target = format!(
                        "/ingest?name=svc-{service}%7Bclient%3D%22c{client}%22%2Cpush%3D%22p{n}%22%7D&format=pprof"
                    );
                    let (status, text) = request(distributor, "POST", &target, &[], &cpu);
                    if status == 200 {
                        acked[service].fetch_add(1, Ordering::Relaxed);
                    } else if let Ok(mut failures) = failures.lock() {
                        failures.push(format!("{status}: {text}"));
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            });
        }
        // Queries go on against the frontend: (seconds since the backend was killed, ok).
        let killed_at = Arc::new(std::sync::Mutex::new(None::<Instant>));
        let answers = Arc::new(std::sync::Mutex::new(Vec::<(f64, bool)>::new()));
        {
            let (stop, killed_at, answers, frontend) = (
                Arc::clone(&stop),
                Arc::clone(&killed_at),
                Arc::clone(&answers),
                &frontend,
            );
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = total(frontend, 0) != u64::MAX;
                    let since = killed_at
                        .lock()
                        .ok()
                        .and_then(|k| k.map(|k| k.elapsed().as_secs_f64()))
                        .unwrap_or(-1.0);
                    if let Ok(mut answers) = answers.lock() {
                        answers.push((since, ok));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            });
        }
        let wait_sent = |count: usize| {
            wait_for("pushes", Duration::from_secs(60), || {
                sent.load(Ordering::Relaxed) >= count
            })
        };
        wait_sent(40);
        // A segment writer and a query backend die mid-load; the writer's keys move to the
        // next owners, the backend's tasks to the other backend.
        writers[1] = None;
        backends[0] = None;
        if let Ok(mut killed) = killed_at.lock() {
            *killed = Some(Instant::now());
        }
        wait_sent(100);
        for distributor in &distributors {
            wait_for(
                "the lease of the killed writer",
                Duration::from_secs(10),
                || writers_seen(distributor) == 2,
            );
        }
        // It comes back (a new member: heads are not kept on local disk) and the compactor
        // is killed and restarted.
        writers[1] = Some(writer_roles[1].start(&config));
        backends[0] = Some(backend_roles[0].start(&config));
        drop(compactor.take());
        wait_sent(160);
        compactor = Some(compactor_role.start(&config));
        for distributor in &distributors {
            wait_for("the restarted writer", Duration::from_secs(10), || {
                writers_seen(distributor) == 3
            });
        }
        wait_sent(220);
        // Queries answered for at least 10 s after the kill before the pushes stop.
        wait_for("10 s after the kill", Duration::from_secs(30), || {
            killed_at
                .lock()
                .ok()
                .and_then(|k| k.map(|k| k.elapsed() > Duration::from_secs(11)))
                .unwrap_or(false)
        });
        stop.store(true, Ordering::Relaxed);
        let answers = answers.lock().expect("answers").clone();
        let during: Vec<bool> = answers
            .iter()
            .filter(|(since, _)| *since >= 0.0 && *since < 10.0)
            .map(|(_, ok)| *ok)
            .collect();
        let failed = during.iter().filter(|ok| !**ok).count();
        eprintln!(
            "queries in the 10 s after the kill: {} answered, {failed} failed ({:.1} %)",
            during.len(),
            100.0 * failed as f64 / during.len().max(1) as f64
        );
        let late: Vec<&(f64, bool)> = answers.iter().filter(|(since, _)| *since >= 10.0).collect();
        assert!(!late.is_empty(), "no query after the fail-over");
        assert!(
            late.iter().all(|(_, ok)| *ok),
            "queries failed 10 s after the kill"
        );
        assert!(
            answers
                .iter()
                .filter(|(since, _)| *since < 0.0)
                .all(|(_, ok)| *ok)
        );
    });
    let failures = failures.lock().expect("failures").clone();
    assert!(failures.is_empty(), "pushes failed: {failures:?}");
    eprintln!("{} pushes acknowledged", sent.load(Ordering::Relaxed));

    // Every acknowledged push counts once: exact totals per service (a duplicate that a retry
    // left in two segments is dropped when they are compacted, which the wait allows for).
    let expected: Vec<u64> = (0..SERVICES)
        .map(|s| {
            let pushes: usize = acknowledged
                .iter()
                .map(|a| a[s].load(Ordering::Relaxed))
                .sum();
            pushes as u64 * CPU_TOTAL
        })
        .collect();
    wait_for("exact totals", Duration::from_secs(60), || {
        (0..SERVICES).all(|s| total(&query, s) == expected[s])
    });
    // The frontend, whose tasks run on the backends, answers what the single process answers:
    // the totals, and the whole flame graph.
    for (service, expected) in expected.iter().enumerate() {
        assert_eq!(total(&frontend, service), *expected, "svc-{service}");
    }
    let selector =
        url_encode("process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=~\"svc-.*\"}");
    let render = format!("/pyroscope/render?query={selector}&from=946656000&until=now");
    let (reference, distributed) = (
        get_json(&query, &render, &[]),
        get_json(&frontend, &render, &[]),
    );
    assert_eq!(reference["flamebearer"], distributed["flamebearer"]);
    assert!(reference["flamebearer"]["numTicks"].as_u64().unwrap_or(0) > 0);
    // The services were spread: every live writer took a share of the keys.
    let cluster = get_json(&distributors[0], "/cluster?format=json", &[]);
    let shares: Vec<f64> = cluster["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["ring_share"].as_f64())
        .collect();
    assert_eq!(shares.len(), 3, "{cluster}");
    assert!(shares.iter().all(|s| *s > 0.1), "{shares:?}");
    drop((compactor, backends, writers));
    drop(moto);
}
