//! The real Pyroscope Python SDK (`pyroscope-io` from PyPI, installed by `scripts/test.sh` into
//! `target/test-venv`) profiles a small program against `emberscope serve`; the known busy
//! function comes back through `/pyroscope/render`, under the tenant, with its static and
//! dynamic tags as labels.

mod common;

use common::{Server, get_json, start, url_encode};
use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    if let Ok(path) = std::env::var("EMBERSCOPE_PYTHON") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-venv/bin/python")
}

fn render(server: &Server, selector: &str, tenant: &str) -> serde_json::Value {
    let query = url_encode(&format!(
        "process_cpu:cpu:nanoseconds:cpu:nanoseconds{selector}"
    ));
    get_json(
        server,
        &format!("/pyroscope/render?query={query}&from=now-1h&until=now"),
        &[("X-Scope-OrgID", tenant)],
    )
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
    let server = start(dir.path(), &["--auth.multitenancy-enabled"]);
    let address = server.address.clone();

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

    let all = render(&server, "{service_name=\"python-sdk-app\"}", "sdk-tenant");
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
        &server,
        "{service_name=\"python-sdk-app\", region=\"test-region\", phase=\"busy\"}",
        "sdk-tenant",
    );
    assert!(
        tagged["flamebearer"]["numTicks"].as_i64().unwrap_or(0) > 0,
        "tags are labels"
    );
    let other = render(
        &server,
        "{service_name=\"python-sdk-app\", region=\"elsewhere\"}",
        "sdk-tenant",
    );
    assert_eq!(other["flamebearer"]["numTicks"], 0);
    // Another tenant sees nothing.
    let stranger = render(&server, "{service_name=\"python-sdk-app\"}", "someone-else");
    assert_eq!(stranger["flamebearer"]["numTicks"], 0);
}
