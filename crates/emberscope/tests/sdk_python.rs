//! The real Pyroscope Python SDK (`pyroscope-io` from PyPI, installed by `scripts/test.sh` into
//! `target/test-venv`) profiles a small program against `emberscope serve`; the known busy
//! function comes back through `/pyroscope/render`, under the tenant, with its static and
//! dynamic tags as labels.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn python() -> PathBuf {
    if let Ok(path) = std::env::var("EMBERSCOPE_PYTHON") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python")
}

fn get(address: &str, target: &str, tenant: &str) -> String {
    let mut stream = TcpStream::connect(address).expect("connect");
    write!(stream, "GET {target} HTTP/1.1\r\nHost: {address}\r\nX-Scope-OrgID: {tenant}\r\nConnection: close\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    match (body.find('{'), body.rfind('}')) {
        (Some(start), Some(end)) => body[start..=end].to_owned(),
        _ => body.to_owned(),
    }
}

fn render(address: &str, selector: &str, tenant: &str) -> serde_json::Value {
    let query = format!("process_cpu:cpu:nanoseconds:cpu:nanoseconds{selector}");
    let encoded: String = query
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    serde_json::from_str(&get(
        address,
        &format!("/pyroscope/render?query={encoded}&from=now-1h&until=now"),
        tenant,
    ))
    .expect("json")
}

#[test]
fn python_sdk_profiles_reach_the_server() {
    let python = python();
    assert!(
        python.exists(),
        "{} is missing: scripts/test.sh installs pyroscope-io into target/test-venv",
        python.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = Command::new(env!("CARGO_BIN_EXE_emberscope"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--auth.multitenancy-enabled",
        ])
        .arg("--data")
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("address");
    let address = line
        .trim()
        .trim_start_matches("emberscope listening on ")
        .to_owned();

    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/python_app.py");
    let status = Command::new(&python)
        .arg(&app)
        .arg("4")
        .env("APP_NAME", "python-sdk-app")
        .env("SERVER", format!("http://{address}"))
        .env("TENANT", "sdk-tenant")
        .status()
        .expect("run the Python program");
    assert!(status.success());

    let all = render(&address, "{service_name=\"python-sdk-app\"}", "sdk-tenant");
    let names: Vec<String> =
        serde_json::from_value(all["flamebearer"]["names"].clone()).expect("names");
    assert!(
        names.iter().any(|n| n == "burn_cpu_in_known_function"),
        "{names:?}"
    );
    let total = all["flamebearer"]["numTicks"].as_i64().expect("ticks");
    assert!(
        total >= 1_000_000_000,
        "at least a second of CPU was profiled: {total}"
    );
    // The static tag and the dynamic tag are labels of the series.
    let tagged = render(
        &address,
        "{service_name=\"python-sdk-app\", region=\"test-region\", phase=\"busy\"}",
        "sdk-tenant",
    );
    assert!(
        tagged["flamebearer"]["numTicks"].as_i64().unwrap_or(0) > 0,
        "tags are labels"
    );
    let other = render(
        &address,
        "{service_name=\"python-sdk-app\", region=\"elsewhere\"}",
        "sdk-tenant",
    );
    assert_eq!(other["flamebearer"]["numTicks"], 0);
    // Another tenant sees nothing.
    let stranger = render(
        &address,
        "{service_name=\"python-sdk-app\"}",
        "someone-else",
    );
    assert_eq!(stranger["flamebearer"]["numTicks"], 0);
    let _ = server.kill();
    let _ = server.wait();
}
