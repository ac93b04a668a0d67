//! The deployment examples in `deploy/` are valid for the tools that will read them and speak
//! emberscope's language: `docker-compose.yaml` against the Compose specification and the
//! Kubernetes manifests against Kubernetes' own schemas (strictly: no unknown fields), by
//! `check-jsonschema` and `kubernetes-validate` from PyPI (`scripts/test.sh` installs them);
//! and every emberscope option they set (environment variables, the ConfigMap's file) and
//! every role they start exists.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    testkit::workspace_root()
}

/// A tool of the test virtualenv `scripts/test.sh` makes.
fn venv_tool(name: &str) -> PathBuf {
    let tool = root().join("target/test-venv/bin").join(name);
    assert!(
        tool.exists(),
        "{} is missing: scripts/test.sh installs it (pip install check-jsonschema kubernetes-validate)",
        tool.display()
    );
    tool
}

fn run(tool: &Path, args: &[&str]) {
    let output = Command::new(tool)
        .args(args)
        .output()
        .expect("run the validator");
    assert!(
        output.status.success(),
        "{} {args:?}:\n{}{}",
        tool.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Every option's dotted name, from the example file that documents each one (a unit test
/// of the binary keeps it complete).
fn options() -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(root().join("docs/emberscope.example.yaml")).expect("example");
    let mut out = BTreeSet::new();
    flatten("", &serde_yaml::from_str(&text).expect("yaml"), &mut out);
    out
}

fn flatten(prefix: &str, value: &serde_yaml::Value, out: &mut BTreeSet<String>) {
    match value.as_mapping() {
        Some(map) => {
            for (key, value) in map {
                let key = key.as_str().expect("string keys");
                let name = if prefix.is_empty() {
                    key.to_owned()
                } else {
                    format!("{prefix}.{key}")
                };
                flatten(&name, value, out);
            }
        }
        None => {
            out.insert(prefix.to_owned());
        }
    }
}

/// An option's environment variable, as `emberscope serve` reads it.
fn env_name(option: &str) -> String {
    format!(
        "EMBERSCOPE_{}",
        option.to_uppercase().replace(['.', '-'], "_")
    )
}

const ROLES: [&str; 5] = [
    "distributor",
    "segment-writer",
    "query-frontend",
    "query-backend",
    "compactor",
];

fn yaml_documents(path: &Path) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(path).expect("manifest");
    format!("\n{text}")
        .split("\n---\n")
        .map(|document| serde_yaml::from_str::<serde_yaml::Value>(document).expect("yaml"))
        .filter(|document| !document.is_null())
        .collect()
}

#[test]
fn docker_compose_follows_the_compose_specification_and_our_options() {
    let file = root().join("deploy/docker-compose.yaml");
    run(
        &venv_tool("check-jsonschema"),
        &[
            "--builtin-schema",
            "vendor.compose-spec",
            &file.display().to_string(),
        ],
    );
    let variables: BTreeSet<String> = options().iter().map(|o| env_name(o)).collect();
    // Services share their settings through YAML merge keys (`<<: *emberscope`).
    let mut compose = yaml_documents(&file).remove(0);
    compose.apply_merge().expect("merge keys");
    let services = compose["services"].as_mapping().expect("services");
    assert!(services.len() >= 9, "{services:?}");
    let mut roles = BTreeSet::new();
    for (name, service) in services {
        if service["image"].as_str() != Some("emberscope:local") {
            continue;
        }
        let command: Vec<&str> = service["command"]
            .as_sequence()
            .expect("command")
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        let role = command
            .windows(2)
            .find(|w| w[0] == "--target")
            .map(|w| w[1])
            .expect("--target");
        assert!(ROLES.contains(&role), "{name:?}: unknown role {role}");
        roles.insert(role);
        for (key, _) in service["environment"].as_mapping().expect("environment") {
            let key = key.as_str().expect("name");
            assert!(variables.contains(key), "{name:?}: {key} is no option");
        }
    }
    assert_eq!(roles.len(), ROLES.len(), "every role runs: {roles:?}");
}

#[test]
fn kubernetes_manifests_follow_kubernetes_schemas_and_our_options() {
    let file = root().join("deploy/kubernetes/emberscope.yaml");
    run(
        &venv_tool("kubernetes-validate"),
        &["--strict", "--quiet", &file.display().to_string()],
    );
    let options = options();
    let variables: BTreeSet<String> = options.iter().map(|o| env_name(o)).collect();
    let mut roles = BTreeSet::new();
    for document in yaml_documents(&file) {
        match document["kind"].as_str() {
            Some("ConfigMap") => {
                let config = document["data"]["emberscope.yaml"].as_str().expect("file");
                let mut keys = BTreeSet::new();
                flatten("", &serde_yaml::from_str(config).expect("yaml"), &mut keys);
                for key in keys {
                    assert!(options.contains(&key), "ConfigMap: {key} is no option");
                }
            }
            Some("Secret") => {
                for (key, _) in document["stringData"].as_mapping().expect("data") {
                    let key = key.as_str().expect("name");
                    assert!(variables.contains(key), "Secret: {key} is no option");
                }
            }
            Some("Deployment") => {
                let container = &document["spec"]["template"]["spec"]["containers"][0];
                let args: Vec<&str> = container["args"]
                    .as_sequence()
                    .expect("args")
                    .iter()
                    .filter_map(|a| a.as_str())
                    .collect();
                let role = args
                    .windows(2)
                    .find(|w| w[0] == "--target")
                    .map(|w| w[1])
                    .expect("--target");
                assert!(ROLES.contains(&role), "unknown role {role}");
                roles.insert(role.to_owned());
                for variable in container["env"].as_sequence().expect("env") {
                    let name = variable["name"].as_str().expect("name");
                    assert!(
                        name == "POD_IP" || variables.contains(name),
                        "{role}: {name} is no option"
                    );
                }
            }
            _ => {}
        }
    }
    assert_eq!(roles.len(), ROLES.len(), "every role runs: {roles:?}");
}
