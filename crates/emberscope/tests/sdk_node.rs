//! The real Pyroscope Node.js SDK (`@pyroscope/nodejs` from npm, installed by `scripts/test.sh`
//! with `npm ci` in `tests/sdk/node`) profiles a small program against `emberscope serve`; the
//! known busy function comes back through `/pyroscope/render` with its tag, for its tenant only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn get_json(address: &str, target: &str, tenant: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect(address).expect("connect");
    write!(stream, "GET {target} HTTP/1.1\r\nHost: {address}\r\nX-Scope-OrgID: {tenant}\r\nConnection: close\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or("");
    let json = match (body.find('{'), body.rfind('}')) {
        (Some(start), Some(end)) => &body[start..=end],
        _ => body,
    };
    serde_json::from_str(json).expect("json")
}

fn render(address: &str, selector: &str, tenant: &str) -> serde_json::Value {
    let query = format!("wall:wall:nanoseconds:wall:nanoseconds{selector}");
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
    get_json(
        address,
        &format!("/pyroscope/render?query={encoded}&from=now-1h&until=now"),
        tenant,
    )
}

#[test]
fn node_sdk_profiles_reach_the_server() {
    let app_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/node");
    assert!(
        app_dir.join("node_modules/@pyroscope/nodejs").exists(),
        "the Node.js SDK is missing: scripts/test.sh runs npm ci in {}",
        app_dir.display()
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

    let status = Command::new("node")
        .arg(app_dir.join("app.js"))
        .arg("4000")
        .env("APP_NAME", "node-sdk-app")
        .env("SERVER", format!("http://{address}"))
        .env("TENANT", "node-tenant")
        .status()
        .expect("run node");
    assert!(status.success());

    let all = render(&address, "{service_name=\"node-sdk-app\"}", "node-tenant");
    let names: Vec<String> =
        serde_json::from_value(all["flamebearer"]["names"].clone()).expect("names");
    assert!(
        names.iter().any(|n| n.contains("burnCpuInKnownFunction")),
        "{names:?}"
    );
    let tagged = render(
        &address,
        "{service_name=\"node-sdk-app\", region=\"test-region\"}",
        "node-tenant",
    );
    assert!(
        tagged["flamebearer"]["numTicks"].as_i64().unwrap_or(0) > 0,
        "the tag is a label"
    );
    let stranger = render(&address, "{service_name=\"node-sdk-app\"}", "someone-else");
    assert_eq!(stranger["flamebearer"]["numTicks"], 0);
    let _ = server.kill();
    let _ = server.wait();
}
