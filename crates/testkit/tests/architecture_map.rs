//! `ARCHITECTURE.md`'s crate table against the manifests: every crate of the workspace (and
//! `fuzz`) has a row, and its "depends on" column names exactly the crates of ours in its
//! `[dependencies]` (dev-dependencies are not listed: every test uses `testkit`). A changed
//! dependency without the table fails here, so the map cannot drift from the code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Map = BTreeMap<String, BTreeSet<String>>;

/// The `key = ...` and `key.workspace = ...` keys of one `[section]` of a manifest.
fn section_keys(manifest: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut keys = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == section;
            continue;
        }
        if !inside || line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let key = key.trim().trim_end_matches(".workspace").to_owned();
            keys.push((key, value.trim().to_owned()));
        }
    }
    keys
}

/// Our crates: the workspace dependencies that are paths.
fn our_crates(root_manifest: &str) -> BTreeSet<String> {
    section_keys(root_manifest, "[workspace.dependencies]")
        .into_iter()
        .filter(|(_, value)| value.contains("path ="))
        .map(|(key, _)| key)
        .collect()
}

/// Folder → our crates in its `[dependencies]`, for every crate folder of the repository.
fn manifests(root: &Path) -> Map {
    let ours = our_crates(&std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml"));
    let mut folders: Vec<String> = std::fs::read_dir(root.join("crates"))
        .expect("crates/")
        .map(|e| format!("crates/{}", e.expect("entry").file_name().to_string_lossy()))
        .collect();
    folders.extend(["benches".to_owned(), "fuzz".to_owned()]);
    folders
        .into_iter()
        .filter(|folder| root.join(folder).join("Cargo.toml").exists())
        .map(|folder| {
            let manifest =
                std::fs::read_to_string(root.join(&folder).join("Cargo.toml")).expect("manifest");
            let deps = section_keys(&manifest, "[dependencies]")
                .into_iter()
                .map(|(key, _)| key)
                .filter(|key| ours.contains(key))
                .collect();
            (folder, deps)
        })
        .collect()
}

/// Folder → the crates named in the "depends on" column of the table under `## Crates`.
fn table(architecture: &str) -> Map {
    let section = architecture
        .split("\n## Crates")
        .nth(1)
        .expect("ARCHITECTURE.md has a '## Crates' section");
    let backticked = |cell: &str| -> Vec<String> {
        cell.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut map = Map::new();
    for line in section.lines().skip_while(|l| !l.starts_with('|')) {
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
        let Some(folder) = cells.first().and_then(|c| backticked(c).into_iter().next()) else {
            continue; // the header and its rule
        };
        let deps = cells.last().map(|c| backticked(c)).unwrap_or_default();
        map.insert(folder, deps.into_iter().collect());
    }
    map
}

/// What differs between the table and the manifests, one line each; empty when they agree.
fn differences(table: &Map, manifests: &Map) -> Vec<String> {
    let mut out = Vec::new();
    for (folder, deps) in manifests {
        match table.get(folder) {
            None => out.push(format!("{folder}: no row in the crate table")),
            Some(listed) if listed != deps => out.push(format!(
                "{folder}: the table says it depends on {listed:?}, Cargo.toml on {deps:?}"
            )),
            Some(_) => {}
        }
    }
    for folder in table.keys().filter(|f| !manifests.contains_key(*f)) {
        out.push(format!("{folder}: a row for a crate that does not exist"));
    }
    out
}

#[test]
fn the_crate_table_matches_every_manifest() {
    let root = testkit::workspace_root();
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let manifests = manifests(&root);
    assert!(manifests.len() >= 12, "{manifests:?}");
    let differences = differences(&table(&architecture), &manifests);
    assert!(
        differences.is_empty(),
        "ARCHITECTURE.md's crate table is out of date:\n{}",
        differences.join("\n")
    );
}

#[test]
fn a_drifted_table_is_caught() {
    let architecture = "# A\n\n## Crates\n\n| crate | owns | depends on |\n| --- | --- | --- |\n\
        | `crates/a` (`x-a`) | things, not `b` | — |\n| `crates/b` | more | `a` |\n\n## Next\n";
    let listed = table(architecture);
    assert_eq!(listed["crates/a"], BTreeSet::new());
    assert_eq!(listed["crates/b"], BTreeSet::from(["a".to_owned()]));
    let real = Map::from([
        ("crates/a".to_owned(), BTreeSet::new()),
        (
            "crates/b".to_owned(),
            BTreeSet::from(["a".to_owned(), "c".to_owned()]),
        ),
        ("crates/c".to_owned(), BTreeSet::new()),
    ]);
    assert_eq!(
        differences(&listed, &real),
        [
            "crates/b: the table says it depends on {\"a\"}, Cargo.toml on {\"a\", \"c\"}",
            "crates/c: no row in the crate table"
        ]
    );
    let manifest = "[package]\nname = \"x\"\n\n[dependencies]\nmodel.workspace = true\n# note\nserde = { version = \"1\" }\n\n[dev-dependencies]\nquery.workspace = true\n";
    let keys: Vec<String> = section_keys(manifest, "[dependencies]")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["model", "serde"]);
}
