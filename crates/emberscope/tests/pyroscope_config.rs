//! emberscope started as Pyroscope is: `emberscope -config.file=F` with no subcommand and
//! Go-style flags, reading a configuration file written with Pyroscope's keys (as its
//! documentation shows them), `${VAR}` expanded. Each setting takes effect (port, storage
//! folder, tenancy, the ingestion limit with Pyroscope's 429); settings this design does not
//! need are named once in a warning; bad files and command lines stop the start with one
//! message and exit code 1. The operational endpoints Pyroscope users script against
//! (`/config`, `/runtime_config`, `/services`) answer in Pyroscope's forms.

mod common;

use common::request;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn emberscope(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_emberscope"));
    command
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied());
    command
}

fn cpu() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/pprof/cpu.pprof"))
        .expect("test profile")
}

#[test]
fn a_pyroscope_configuration_file_and_command_line_take_effect() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let objects = dir.path().join("profiles");
    std::fs::write(
        dir.path().join("pyroscope.yaml"),
        format!(
            "server:\n  http_listen_address: 127.0.0.1\n  http_listen_port: {port}\n  \
             grpc_listen_port: 9095\nmultitenancy_enabled: true\nstorage:\n  backend: \
             filesystem\n  filesystem:\n    dir: ${{PROFILES_DIR}}\nlimits:\n  \
             ingestion_rate_mb: 0.0001\n  ingestion_burst_size_mb: 0.01\n  \
             reject_older_than: ${{REJECT_OLDER:-0}}\ningester:\n  lifecycler:\n    ring:\n      \
             replication_factor: 1\nmemberlist:\n  join_members:\n    - a:7946\n    - b:7946\n"
        ),
    )
    .expect("config");
    let mut server = common::spawn(
        emberscope(
            dir.path(),
            &[
                "-config.file=pyroscope.yaml",
                "-config.expand-env=true",
                "-target=all",
            ],
            &[("PROFILES_DIR", &objects.display().to_string())],
        )
        .stderr(Stdio::piped()),
    );
    assert_eq!(
        server.address,
        format!("127.0.0.1:{port}"),
        "the port of server.http_listen_port"
    );
    let stderr = server.take_stderr().expect("stderr");

    // multitenancy_enabled: a push without a tenant is refused, one with a tenant stored.
    let target = "/ingest?name=svc&format=pprof";
    let (status, _) = request(&server, "POST", target, &[], &cpu());
    assert_eq!(status, 401);
    let tenant = [("X-Scope-OrgID", "team-a")];
    let (status, body) = request(&server, "POST", target, &tenant, &cpu());
    assert_eq!(status, 200, "{body}");
    // storage.filesystem.dir: the segment is there.
    let stored = walk(&objects);
    assert!(
        stored.iter().any(|p| p.ends_with(".seg")),
        "{stored:?} under {}",
        objects.display()
    );
    // limits.ingestion_rate_mb: pushes past the burst get Pyroscope's 429.
    let statuses: Vec<u16> = (0..6)
        .map(|_| request(&server, "POST", target, &tenant, &cpu()).0)
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
    // The settings not needed are named once, with why.
    server.stop();
    let mut warned = String::new();
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        if line.contains("does not need") {
            warned.push_str(&line);
        }
    }
    assert!(
        warned.contains("ingester.lifecycler.ring.replication_factor (no ingester")
            && warned.contains("memberlist.join_members")
            && warned.contains("server.grpc_listen_port"),
        "{warned}"
    );
}

/// Every path under `dir`.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn bad_files_and_command_lines_stop_with_one_message() {
    let dir = tempfile::tempdir().expect("dir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("misspelt.yaml", "limits:\n  ingestion_rate_mbb: 4\n");
    write(
        "unset.yaml",
        "storage:\n  backend: s3\n  s3:\n    bucket_name: ${BUCKET}\n",
    );
    write("wrong-type.yaml", "server:\n  http_listen_port: many\n");
    write("not-yaml.yaml", "server: [unclosed\n");
    write("unknown-block.yaml", "ingestor:\n  x: 1\n");
    let cases: [(&[&str], &[&str]); 6] = [
        (
            &["-config.file=misspelt.yaml"],
            &[
                "limits.ingestion_rate_mbb",
                "did you mean \"limits.ingestion_rate_mb\"",
            ],
        ),
        (
            &["-config.file=unset.yaml", "-config.expand-env"],
            &["unset.yaml", "${BUCKET} is not set"],
        ),
        (
            &["-config.file=wrong-type.yaml"],
            &["server.http-listen-port", "\"many\""],
        ),
        (
            &["-config.file=not-yaml.yaml"],
            &["not-yaml.yaml", "not valid YAML"],
        ),
        (&["-config.file=unknown-block.yaml"], &["ingestor.x"]),
        (
            &["-target=all", "--listen", "127.0.0.1:0"],
            &["-target=all", "--listen", "one way"],
        ),
    ];
    for (args, expected) in cases {
        let output = emberscope(dir.path(), args, &[])
            .stdin(Stdio::null())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        for text in expected {
            assert!(stderr.contains(text), "{args:?}: {text:?} not in {stderr}");
        }
        assert!(output.stdout.is_empty(), "{args:?}: nothing started");
    }
}

/// `/config` (and Pyroscope v2's `/api/v1/status/config…`), `/runtime_config` and `/services`
/// answer as operators script them: YAML of the effective settings with secrets as
/// `********`, only what differs from the defaults with `mode=diff`, the defaults with
/// `mode=defaults`; the overrides in force; each component running.
#[test]
fn operational_endpoints_show_the_configuration_and_the_components() {
    let dir = tempfile::tempdir().expect("dir");
    let overrides = dir.path().join("overrides.yaml");
    std::fs::write(
        &overrides,
        "overrides:\n  team-a:\n    ingestion_rate_mb: 42\n    max_label_names_per_series: 7\n",
    )
    .expect("overrides");
    let server = common::start(
        &dir.path().join("data"),
        &[
            "--storage.s3.secret-access-key",
            "hunter2",
            "--metastore.postgres.url",
            "host=db user=me password=swordfish",
            "--runtime-config.file",
            &overrides.display().to_string(),
        ],
    );
    let get = |target: &str| {
        let (status, body) = request(&server, "GET", target, &[], b"");
        assert_eq!(status, 200, "{target}: {body}");
        body
    };
    let current = get("/config");
    let parsed: serde_yaml::Value = serde_yaml::from_str(&current).expect("YAML");
    assert_eq!(parsed["storage"]["s3"]["secret-access-key"], "********");
    assert_eq!(
        parsed["metastore"]["postgres"]["url"],
        "host=db user=me password=********"
    );
    assert!(!current.contains("hunter2") && !current.contains("swordfish"));
    assert_eq!(parsed["target"], "all");
    let diff = get("/config?mode=diff");
    let parsed_diff: serde_yaml::Value = serde_yaml::from_str(&diff).expect("YAML");
    assert_eq!(
        parsed_diff["runtime-config"]["file"],
        overrides.display().to_string()
    );
    assert!(parsed_diff.get("target").is_none(), "{diff}");
    assert_eq!(get("/api/v1/status/config/diff"), diff);
    assert_eq!(get("/api/v1/status/config"), current);
    let defaults: serde_yaml::Value =
        serde_yaml::from_str(&get("/config?mode=defaults")).expect("YAML");
    assert_eq!(defaults["listen"], "0.0.0.0:4040");
    assert_eq!(
        get("/api/v1/status/config/default"),
        get("/config?mode=defaults")
    );
    assert_eq!(
        request(&server, "GET", "/config?mode=everything", &[], b"").0,
        400
    );

    let runtime: serde_yaml::Value =
        serde_yaml::from_str(&get("/runtime_config?mode=diff")).expect("YAML");
    let team = &runtime["overrides"]["team-a"];
    assert_eq!(team["ingestion_rate_mb"].as_f64(), Some(42.0));
    assert_eq!(team["max_label_names_per_series"].as_u64(), Some(7));
    assert!(team.get("max_label_value_length").is_none(), "{team:?}");
    let whole: serde_yaml::Value = serde_yaml::from_str(&get("/runtime_config")).expect("YAML");
    assert!(
        whole["overrides"]["team-a"]
            .get("max_label_value_length")
            .is_some()
    );

    let services = get("/services");
    for component in [
        "server",
        "distributor",
        "segment-writer",
        "query-frontend",
        "compactor",
    ] {
        assert!(
            services.contains(&format!("{component}: Running")),
            "{component} in {services}"
        );
    }
}

/// `/debug/pprof/profile?seconds=2` under load: a pprof that Google's `pprof` reads, whose
/// stacks name emberscope's functions; a second one meanwhile is refused (429), a bad
/// `seconds` is 400.
#[test]
fn the_server_profiles_itself_on_request() {
    let dir = tempfile::tempdir().expect("dir");
    let server = common::start(&dir.path().join("data"), &[]);
    // Load: `emberscope loadgen`, hundreds of pushes a second while the profile is taken.
    let mut load = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_emberscope"))
            .args(["loadgen", "--url", &format!("http://{}", server.address)])
            .args(["--duration", "6s", "--rate", "300", "--concurrency", "64"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start loadgen"),
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    let profile = std::thread::scope(|scope| {
        let taking = scope.spawn(|| common::get_bytes(&server, "/debug/pprof/profile?seconds=3"));
        std::thread::sleep(std::time::Duration::from_millis(500));
        let (second, _) = request(&server, "GET", "/debug/pprof/profile?seconds=1", &[], b"");
        (second, taking.join().expect("profile"))
    });
    let _ = load.0.kill();
    let (second, body) = profile;
    assert_eq!(second, 429, "a second profile at once");
    assert_eq!(
        request(&server, "GET", "/debug/pprof/profile?seconds=0", &[], b"").0,
        400
    );
    let file = dir.path().join("profile.pb.gz");
    std::fs::write(&file, &body).expect("write");
    let raw = testkit::oracle::pprof_raw(&file).expect("Google's pprof reads the profile");
    assert!(raw.contains("PeriodType: cpu nanoseconds"), "{raw}");
    assert!(
        ["formats::", "server::", "block::", "ingest::", "tokio::"]
            .iter()
            .any(|name| raw.contains(name)),
        "no emberscope function in {raw}"
    );
}

/// Pyroscope's S3 block as its documentation writes it (`endpoint` a host and port without a
/// scheme, `insecure: true` for plain HTTP, `bucket_name`) against a real S3 server: pushes
/// are stored there and read back.
#[test]
fn pyroscope_s3_settings_store_in_a_real_s3_server() {
    let moto = testkit::emulator::start_moto_with_bucket("pyroscope-data");
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("pyroscope.yaml"),
        format!(
            "storage:\n  backend: s3\n  s3:\n    bucket_name: pyroscope-data\n    endpoint: \
             127.0.0.1:{}\n    region: us-east-1\n    access_key_id: test\n    \
             secret_access_key: test\n    insecure: true\nlimits:\n  reject_older_than: 0\n",
            moto.port
        ),
    )
    .expect("config");
    let server = common::spawn(
        emberscope(
            dir.path(),
            &[
                "-config.file=pyroscope.yaml",
                "-server.http-listen-address=127.0.0.1",
                "-server.http-listen-port=0",
            ],
            &[],
        )
        .stderr(Stdio::null()),
    );
    let (status, body) = request(
        &server,
        "POST",
        "/ingest?name=s3svc&format=pprof",
        &[],
        &cpu(),
    );
    assert_eq!(status, 200, "{body}");
    let selector =
        common::url_encode("process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"s3svc\"}");
    let (status, body) = request(
        &server,
        "GET",
        &format!("/pyroscope/render?query={selector}&from=946656000&until=now"),
        &[],
        b"",
    );
    assert_eq!(status, 200, "{body}");
    let ticks =
        serde_json::from_str::<serde_json::Value>(&body).expect("json")["flamebearer"]["numTicks"]
            .as_u64();
    assert_eq!(ticks, Some(470_000_000), "{body}");
}

/// Pyroscope's `runtime_config` block names the overrides file and its period: the tenant's
/// limits are the file's, and a change to the file applies while the server runs.
#[test]
fn pyroscope_runtime_config_is_read_and_reloaded() {
    let dir = tempfile::tempdir().expect("dir");
    let overrides = dir.path().join("overrides.yaml");
    std::fs::write(
        &overrides,
        "overrides:\n  small:\n    max_query_length: 1h\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("pyroscope.yaml"),
        format!(
            "multitenancy_enabled: true\nruntime_config:\n  file: {}\n  period: 1s\nserver:\n  \
             http_listen_address: 127.0.0.1\n  http_listen_port: 0\n",
            overrides.display()
        ),
    )
    .expect("config");
    let server = common::spawn(
        emberscope(dir.path(), &["-config.file=pyroscope.yaml"], &[]).stderr(Stdio::null()),
    );
    let tenant = [("X-Scope-OrgID", "small")];
    let limit = || {
        common::get_json(&server, "/api/v1/tenant_limits", &tenant)["max_query_length"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(limit(), "1h");
    std::fs::write(
        &overrides,
        "overrides:\n  small:\n    max_query_length: 3h\n",
    )
    .expect("rewrite");
    common::wait_for(
        "the overrides reloaded",
        std::time::Duration::from_secs(20),
        || limit() == "3h",
    );
    let runtime: serde_yaml::Value =
        serde_yaml::from_str(&request(&server, "GET", "/runtime_config?mode=diff", &[], b"").1)
            .expect("YAML");
    assert_eq!(runtime["overrides"]["small"]["max_query_length"], "3h");
}
