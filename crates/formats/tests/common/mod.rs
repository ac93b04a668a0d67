//! Helpers shared by the integration tests: where the shared test data is, and Google's pprof
//! (built by `../shared/tools/pprof-oracle/install_pprof.sh`) as an independent oracle.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `../shared` beside the repository (or `$EMBERSCOPE_SHARED`).
pub fn shared_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("EMBERSCOPE_SHARED") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

pub fn testdata(relative: &str) -> PathBuf {
    shared_dir().join("testdata").join(relative)
}

/// Every pprof file under `testdata/pprof` (recursively) and `testdata/clients`.
pub fn pprof_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
                continue;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.ends_with(".json") || name.ends_with(".txt") || name.ends_with(".bin") {
                continue;
            }
            out.push(path);
        }
    }
    let mut files = Vec::new();
    walk(&testdata("pprof"), &mut files);
    walk(&testdata("clients"), &mut files);
    files
}

/// The pprof binary: `$PPROF`, else `pprof` on the PATH. Missing is a test failure: the test
/// command installs it.
pub fn pprof_bin() -> String {
    let bin = std::env::var("PPROF").unwrap_or_else(|_| "pprof".to_owned());
    let found = Command::new(&bin).arg("-h").output().is_ok();
    assert!(
        found,
        "Google's pprof is not installed; run ../shared/tools/pprof-oracle/install_pprof.sh (scripts/test.sh does)"
    );
    bin
}

/// `pprof -symbolize=none -raw FILE`, or None when pprof rejects the file.
pub fn pprof_raw(path: &Path) -> Option<String> {
    let output = Command::new(pprof_bin())
        .args(["-symbolize=none", "-raw"])
        .arg(path)
        .output()
        .expect("run pprof");
    if !output.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Stacks with every value column, from pprof's own text through `pprof_to_collapsed.py`.
pub fn oracle_all_values(raw: &str) -> BTreeMap<String, Vec<i64>> {
    try_oracle_all_values(raw).expect("pprof_to_collapsed.py failed")
}

/// As [`oracle_all_values`], or None when the script cannot read pprof's text (for example
/// strings that are not UTF-8).
pub fn try_oracle_all_values(raw: &str) -> Option<BTreeMap<String, Vec<i64>>> {
    let script = shared_dir().join("tools/pprof-oracle/pprof_to_collapsed.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg("--all-values")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run pprof_to_collapsed.py");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(raw.as_bytes()).expect("write to oracle");
    }
    let output = child.wait_with_output().expect("oracle output");
    if !output.status.success() {
        return None;
    }
    let columns = raw
        .lines()
        .skip_while(|l| *l != "Samples:")
        .nth(1)
        .map_or(0, |header| header.split_whitespace().count());
    let mut out = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let parts: Vec<&str> = line.rsplitn(columns + 1, ' ').collect();
        let stack = parts[columns].to_owned();
        let values: Vec<i64> = parts[..columns]
            .iter()
            .rev()
            .map(|v| v.parse().expect("integer value"))
            .collect();
        out.insert(stack, values);
    }
    Some(out)
}

/// One value column of an all-values map as sorted collapsed text, zero values dropped.
pub fn column_as_collapsed(all: &BTreeMap<String, Vec<i64>>, index: usize) -> String {
    let mut out = String::new();
    for (stack, values) in all {
        if values[index] != 0 {
            out.push_str(&format!("{stack} {}\n", values[index]));
        }
    }
    out
}

/// The goldens of `testdata/jfr` by recording: `<recording>.jfr.gz.<profile type with ':' as
/// '_'>.<hash>.pb.gz`, the hash being `xxhash64` of the query's label set. Values are
/// (profile type with '_', hash, path), sorted.
pub fn jfr_goldens() -> BTreeMap<String, Vec<(String, u64, PathBuf)>> {
    let mut out: BTreeMap<String, Vec<(String, u64, PathBuf)>> = BTreeMap::new();
    for entry in std::fs::read_dir(testdata("jfr")).expect("list testdata/jfr") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some((recording, rest)) = name.split_once(".jfr.gz.") else {
            continue;
        };
        let rest = rest.strip_suffix(".pb.gz").expect("golden suffix");
        let (kind, hash) = rest.rsplit_once('.').expect("hash");
        let golden = (kind.to_owned(), hash.parse().expect("hash"), path.clone());
        out.entry(recording.to_owned()).or_default().push(golden);
    }
    out.values_mut().for_each(|v| v.sort());
    out
}
