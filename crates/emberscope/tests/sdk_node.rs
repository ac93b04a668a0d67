//! The real Pyroscope Node.js SDK (`@pyroscope/nodejs` from npm, installed by `scripts/test.sh`
//! with `npm ci` in `tests/sdk/node`) profiles a small program against `emberscope serve`; the
//! known busy function comes back through `/pyroscope/render` with its tag, for its tenant only.

mod common;

use common::{Server, get_json, start, url_encode};
use std::path::PathBuf;
use std::process::Command;

fn render(server: &Server, selector: &str, tenant: &str) -> serde_json::Value {
    let query = url_encode(&format!("wall:wall:nanoseconds:wall:nanoseconds{selector}"));
    get_json(
        server,
        &format!("/pyroscope/render?query={query}&from=now-1h&until=now"),
        &[("X-Scope-OrgID", tenant)],
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
    let server = start(dir.path(), &["--auth.multitenancy-enabled"]);
    let address = server.address.clone();

    let status = Command::new("node")
        .arg(app_dir.join("app.js"))
        .arg("4000")
        .env("APP_NAME", "node-sdk-app")
        .env("SERVER", format!("http://{address}"))
        .env("TENANT", "node-tenant")
        .status()
        .expect("run node");
    assert!(status.success());

    let all = render(&server, "{service_name=\"node-sdk-app\"}", "node-tenant");
    let names: Vec<String> =
        serde_json::from_value(all["flamebearer"]["names"].clone()).expect("names");
    assert!(
        names.iter().any(|n| n.contains("burnCpuInKnownFunction")),
        "{names:?}"
    );
    let tagged = render(
        &server,
        "{service_name=\"node-sdk-app\", region=\"test-region\"}",
        "node-tenant",
    );
    assert!(
        tagged["flamebearer"]["numTicks"].as_i64().unwrap_or(0) > 0,
        "the tag is a label"
    );
    let stranger = render(&server, "{service_name=\"node-sdk-app\"}", "someone-else");
    assert_eq!(stranger["flamebearer"]["numTicks"], 0);
}
