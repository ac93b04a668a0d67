//! Google's `pprof` (built by `scripts/pprof-oracle/install_pprof.sh`) and
//! `scripts/pprof-oracle/pprof_to_collapsed.py`, which reads pprof's own text output, so a test
//! can compare our stacks and values with a tool that shares no code with ours.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// The pprof binary: `$PPROF`, else `pprof` on the PATH. Missing is a test failure: the test
/// command installs it.
pub fn pprof_bin() -> String {
    let bin = std::env::var("PPROF").unwrap_or_else(|_| "pprof".to_owned());
    let found = Command::new(&bin).arg("-h").output().is_ok();
    assert!(
        found,
        "Google's pprof is not installed; run scripts/pprof-oracle/install_pprof.sh (scripts/test.sh does)"
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
    let script = crate::script("pprof-oracle/pprof_to_collapsed.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg("--all-values")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
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
