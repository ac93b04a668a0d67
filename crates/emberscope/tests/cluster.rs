//! Cluster mode as a user runs it: `scripts/cluster.sh up` starts a real S3 server (moto) and
//! PostgreSQL, 2 distributors, 3 segment writers, 1 query frontend, 2 query backends and
//! 1 compactor, each its own process. Under load from `emberscope loadgen` against both
//! distributors and from this test's own pushes (whose totals it knows exactly):
//! - a segment writer, a query backend and the compactor are killed with SIGKILL and
//!   restarted: every push is acknowledged, queries keep answering (the failed fraction during
//!   the fail-over is printed; none after 10 s);
//! - then every role is restarted in turn (SIGTERM: a clean leave), without errors visible to
//!   clients (clients that find a distributor's port closed move to the other, as behind a
//!   load balancer: loadgen given both URLs, and this test's pushers);
//! - totals are exact (nothing acknowledged lost, nothing retried counted twice), and the
//!   frontend's flame graph equals that of one process that reads everything itself.
//!
//! Finally, with every writer and backend stopped, `/ready` and pushes say what is missing.

mod common;

use common::{
    Server, get_json, members_with, request, start_with_env, try_request, url_encode, wait_for,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Timings for a test: members are seen within 200 ms and gone 1.5 s after their last beat.
const ENV: [(&str, &str); 5] = [
    ("EMBERSCOPE_CLUSTER_HEARTBEAT_INTERVAL", "200ms"),
    ("EMBERSCOPE_CLUSTER_MEMBER_LEASE", "1500ms"),
    ("EMBERSCOPE_COMPACTOR_INTERVAL", "1s"),
    // The tenant's rate is not what is tested here.
    ("EMBERSCOPE_DISTRIBUTOR_INGESTION_RATE_LIMIT_MB", "0"),
    // The test profile is years old.
    ("EMBERSCOPE_VALIDATION_REJECT_OLDER_THAN", "0"),
];

fn script() -> PathBuf {
    testkit::workspace_root().join("scripts/cluster.sh")
}

/// Runs `scripts/cluster.sh ARGS` with the test's binary and timings.
fn cluster_sh(args: &[&str]) {
    let output = Command::new(script())
        .args(args)
        .env("EMBERSCOPE_BIN", env!("CARGO_BIN_EXE_emberscope"))
        .envs(ENV)
        .output()
        .expect("run scripts/cluster.sh");
    assert!(
        output.status.success(),
        "scripts/cluster.sh {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `scripts/cluster.sh down` when the test ends, however it ends.
struct Cluster {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Cluster {
    fn up() -> Cluster {
        let dir = tempfile::tempdir().expect("dir");
        cluster_sh(&["up", &dir.path().display().to_string()]);
        let text = std::fs::read_to_string(dir.path().join("cluster.env")).expect("cluster.env");
        let env = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        Cluster { dir, env }
    }

    fn path(&self) -> String {
        self.dir.path().display().to_string()
    }

    fn ingest(&self) -> Vec<Server> {
        self.env["INGEST_URLS"].split(' ').map(Server::at).collect()
    }

    fn query(&self) -> Server {
        Server::at(&self.env["QUERY_URL"])
    }

    fn kill(&self, process: &str) {
        let pid = std::fs::read_to_string(self.dir.path().join(format!("pids/{process}.pid")))
            .expect("pid file");
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn start(&self, process: &str) {
        cluster_sh(&["start", &self.path(), process]);
    }

    fn stop(&self, process: &str) {
        cluster_sh(&["stop", &self.path(), process]);
    }

    fn config(&self) -> String {
        self.dir
            .path()
            .join("emberscope.yaml")
            .display()
            .to_string()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["down", &self.path()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Sets the flag when dropped, also while a panic unwinds.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

const SERVICES: usize = 6;
/// The total of `testdata/pprof/cpu.pprof` for its CPU type.
const CPU_TOTAL: u64 = 470_000_000;

/// A service's CPU total, or why the query was not answered.
fn try_total(query: &Server, service: usize) -> Result<u64, String> {
    let selector = url_encode(&format!(
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds{{service_name=\"svc-{service}\"}}"
    ));
    let (status, body) = try_request(
        query,
        "GET",
        &format!("/pyroscope/render?query={selector}&from=946656000&until=now"),
        &[],
        b"",
    )
    .map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{status}: {body}"));
    }
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["flamebearer"]["numTicks"].as_u64())
        .ok_or(body)
}

fn total(query: &Server, service: usize) -> Option<u64> {
    try_total(query, service).ok()
}

/// `emberscope loadgen` against one distributor for `seconds`.
fn loadgen(url: &str, seconds: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_emberscope"))
        .args(["loadgen", "--url", url, "--services", "4", "--pods", "5"])
        .args(["--interval", "1s", "--duration", &format!("{seconds}s")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start loadgen")
}

/// Pushes from one client: each push its own series of one of the services, to its
/// distributor, or to the other one when its port is closed (as behind a load balancer).
struct Pusher {
    acknowledged: Vec<AtomicUsize>,
    failures: Mutex<Vec<String>>,
    sent: AtomicUsize,
}

impl Pusher {
    fn run(&self, client: usize, distributors: &[Server], cpu: &[u8], stop: &AtomicBool) {
        let mut n = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let service = n % SERVICES;
            let target = format!(
                "/ingest?name=svc-{service}%7Bclient%3D%22c{client}%22%2Cpush%3D%22p{n}%22%7D&format=pprof"
            );
            let mut answer = None;
            for attempt in 0..distributors.len() * 20 {
                let distributor = &distributors[(client + attempt) % distributors.len()];
                match try_request(distributor, "POST", &target, &[], cpu) {
                    Ok(done) => {
                        answer = Some(done);
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
            match answer {
                Some((200, _)) => {
                    self.acknowledged[service].fetch_add(1, Ordering::Relaxed);
                }
                Some((status, text)) => self.fail(format!("{status}: {text}")),
                None => self.fail("no distributor reachable".to_owned()),
            }
            self.sent.fetch_add(1, Ordering::Relaxed);
            n += 1;
        }
    }

    fn fail(&self, failure: String) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.push(failure);
        }
    }
}

#[test]
fn a_cluster_survives_killed_and_restarted_members_under_load() {
    let cluster = Cluster::up();
    let distributors = cluster.ingest();
    let frontend = cluster.query();
    // Every process of the layout is a member (once the frontend has read the heartbeats).
    wait_for("nine members", Duration::from_secs(10), || {
        get_json(&frontend, "/cluster?format=json", &[])["members"]
            .as_array()
            .map(Vec::len)
            == Some(2 + 3 + 1 + 2 + 1)
    });
    wait_for("three writers", Duration::from_secs(10), || {
        members_with(&distributors[0], "segment-writer") == 3
    });
    let (status, html) = request(&frontend, "GET", "/cluster", &[], b"");
    assert_eq!(status, 200);
    assert!(html.contains("segment-writer"), "{html}");
    let (_, metrics) = request(&distributors[0], "GET", "/metrics", &[], b"");
    assert!(
        metrics.contains("emberscope_cluster_members{role=\"segment-writer\"} 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("emberscope_cluster_ready 1\n"),
        "{metrics}"
    );

    let cpu = std::fs::read(testkit::testdata("pprof/cpu.pprof")).expect("pprof");
    let pusher = Pusher {
        acknowledged: (0..SERVICES).map(|_| AtomicUsize::new(0)).collect(),
        failures: Mutex::new(Vec::new()),
        sent: AtomicUsize::new(0),
    };
    let stop = AtomicBool::new(false);
    let killed_at = Mutex::new(None::<Instant>);
    // (seconds since the kill, or -1 before it; answered)
    let answers = Mutex::new(Vec::<(f64, bool)>::new());
    let query_errors = Mutex::new(Vec::<String>::new());
    let querying = AtomicBool::new(true);
    // Two loaders, each given both distributors (in a different order), as clients behind a
    // load balancer.
    let urls: Vec<&str> = cluster.env["INGEST_URLS"].split(' ').collect();
    let reversed: Vec<&str> = urls.iter().rev().copied().collect();
    let loads: Vec<Child> = [urls.join(","), reversed.join(",")]
        .iter()
        .map(|urls| loadgen(urls, 45))
        .collect();
    std::thread::scope(|scope| {
        // A failed assertion below must stop the pushing and querying threads, or the scope
        // would wait for them forever.
        let _stop = StopOnDrop(&stop);
        for client in 0..2 {
            let (pusher, distributors, cpu, stop) = (&pusher, &distributors, &cpu, &stop);
            scope.spawn(move || pusher.run(client, distributors, cpu, stop));
        }
        scope.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                if querying.load(Ordering::Relaxed) {
                    let answer = try_total(&frontend, 0);
                    if let (Err(error), Ok(mut errors)) = (&answer, query_errors.lock()) {
                        errors.push(error.clone());
                    }
                    let ok = answer.is_ok();
                    let since = killed_at
                        .lock()
                        .ok()
                        .and_then(|k| k.map(|k| k.elapsed().as_secs_f64()))
                        .unwrap_or(-1.0);
                    if let Ok(mut answers) = answers.lock() {
                        answers.push((since, ok));
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let wait_sent = |count: usize| {
            wait_for("pushes", Duration::from_secs(60), || {
                pusher.sent.load(Ordering::Relaxed) >= count
            })
        };
        wait_sent(40);
        // SIGKILL mid-load: a writer's keys move to the next owners, a backend's tasks to
        // the other backend; the compactor's job is leased again after its lease.
        for process in ["segment-writer-2", "query-backend-1", "compactor-1"] {
            cluster.kill(process);
        }
        if let Ok(mut killed) = killed_at.lock() {
            *killed = Some(Instant::now());
        }
        wait_sent(100);
        wait_for(
            "the writer's lease to pass",
            Duration::from_secs(10),
            || members_with(&distributors[0], "segment-writer") == 2,
        );
        for process in ["segment-writer-2", "query-backend-1", "compactor-1"] {
            cluster.start(process);
        }
        wait_for("10 s after the kill", Duration::from_secs(30), || {
            killed_at
                .lock()
                .ok()
                .and_then(|k| k.map(|k| k.elapsed() > Duration::from_secs(11)))
                .unwrap_or(false)
        });
        // A rolling restart of every role but the one frontend (queries pause for it).
        for process in [
            "segment-writer-1",
            "segment-writer-2",
            "segment-writer-3",
            "query-backend-1",
            "query-backend-2",
            "distributor-1",
            "distributor-2",
            "compactor-1",
        ] {
            cluster.stop(process);
            cluster.start(process);
        }
        querying.store(false, Ordering::Relaxed);
        cluster.stop("query-frontend-1");
        cluster.start("query-frontend-1");
        querying.store(true, Ordering::Relaxed);
        wait_sent(pusher.sent.load(Ordering::Relaxed) + 20);
        stop.store(true, Ordering::Relaxed);
    });
    let failures = pusher.failures.lock().expect("failures").clone();
    assert!(failures.is_empty(), "pushes failed: {failures:?}");
    let answers = answers.lock().expect("answers").clone();
    let during: Vec<bool> = answers
        .iter()
        .filter(|(since, _)| (0.0..10.0).contains(since))
        .map(|(_, ok)| *ok)
        .collect();
    let failed = during.iter().filter(|ok| !**ok).count();
    eprintln!(
        "{} pushes acknowledged; queries in the 10 s after the kill: {} answered, {failed} failed ({:.1} %)",
        pusher.sent.load(Ordering::Relaxed),
        during.len(),
        100.0 * failed as f64 / during.len().max(1) as f64
    );
    let late: Vec<&(f64, bool)> = answers.iter().filter(|(since, _)| *since >= 10.0).collect();
    assert!(!late.is_empty(), "no query after the fail-over");
    assert!(
        late.iter().all(|(_, ok)| *ok),
        "queries failed 10 s after the kill or during the rolling restart: {:?}",
        query_errors.lock().map(|e| e.clone()).unwrap_or_default()
    );
    assert!(answers.iter().filter(|(s, _)| *s < 0.0).all(|(_, ok)| *ok));
    for mut load in loads {
        let mut out = String::new();
        if let Some(mut stdout) = load.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        }
        let _ = load.wait();
        eprintln!("loadgen: {}", out.lines().next().unwrap_or_default());
        assert!(out.contains(" 0 failed"), "loadgen saw errors: {out}");
    }

    // Every acknowledged push counts once (a duplicate that a retry left in two segments is
    // dropped when they are compacted, which the wait allows for).
    let expected: Vec<u64> = pusher
        .acknowledged
        .iter()
        .map(|a| a.load(Ordering::Relaxed) as u64 * CPU_TOTAL)
        .collect();
    wait_for("exact totals", Duration::from_secs(60), || {
        (0..SERVICES).all(|s| total(&frontend, s) == Some(expected[s]))
    });
    // One process that reads everything itself answers the same flame graph.
    let data = tempfile::tempdir().expect("data");
    let reference = start_with_env(
        data.path(),
        &[
            "--config.file",
            &cluster.config(),
            "--target",
            "query-frontend,query-backend",
        ],
        &ENV,
    );
    let selector =
        url_encode("process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=~\"svc-.*\"}");
    let render = format!("/pyroscope/render?query={selector}&from=946656000&until=now");
    let (one, many) = (
        get_json(&reference, &render, &[]),
        get_json(&frontend, &render, &[]),
    );
    assert_eq!(one["flamebearer"], many["flamebearer"]);
    assert_eq!(
        one["flamebearer"]["numTicks"].as_u64(),
        Some(expected.iter().sum::<u64>())
    );

    // Without writers and backends (the reference process is one too), /ready and pushes
    // say what is missing.
    drop(reference);
    for process in ["segment-writer-1", "segment-writer-2", "segment-writer-3"] {
        cluster.stop(process);
    }
    for process in ["query-backend-1", "query-backend-2"] {
        cluster.stop(process);
    }
    wait_for("the members to leave", Duration::from_secs(10), || {
        let (writers, backends) = (
            members_with(&distributors[0], "segment-writer"),
            members_with(&frontend, "query-backend"),
        );
        writers == 0 && backends == 0
    });
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
        &distributors[1],
        "POST",
        "/ingest?name=late&format=pprof",
        &[],
        &cpu,
    );
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("no segment writer is available"), "{text}");
}
