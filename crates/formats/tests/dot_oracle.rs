//! The DOT graph of `/pyroscope/render?format=dot` against Google's pprof (`pprof -dot`): the
//! same functions are drawn, with the same cumulative values.

use std::collections::BTreeSet;
use std::process::Command;

/// The `tooltip="NAME (CUM)"` of every node line: function name and cumulative value.
fn node_tooltips(dot: &str) -> Vec<String> {
    dot.lines()
        .filter(|l| l.starts_with('N') && !l.contains(" -> "))
        .filter_map(|l| {
            let start = l.find("tooltip=\"")? + "tooltip=\"".len();
            let end = l[start..].find('"')? + start;
            Some(l[start..end].to_owned())
        })
        .collect()
}

fn oracle_dot(file: &std::path::Path, sample_index: &str, nodes: usize) -> String {
    let output = Command::new(testkit::oracle::pprof_bin())
        .args([
            "-dot",
            "-symbolize=none",
            &format!("-nodecount={nodes}"),
            &format!("-sample_index={sample_index}"),
        ])
        .arg(file)
        .output()
        .expect("run pprof");
    assert!(
        output.status.success(),
        "pprof -dot failed on {}",
        file.display()
    );
    String::from_utf8(output.stdout).expect("utf-8")
}

/// Keeps one sample type, as `SelectMergeProfile` answers.
fn single_column(file: &std::path::Path, index: usize) -> formats::pprof::Profile {
    let bytes = std::fs::read(file).expect("read");
    let raw = formats::compression::decompress(&bytes, 1 << 28).expect("decompress");
    let mut profile = formats::pprof::decode(&raw, usize::MAX).expect("decode");
    for sample in &mut profile.sample {
        sample.value = vec![sample.value[index]];
    }
    profile.sample_type = vec![profile.sample_type[index]];
    profile
}

#[test]
fn dot_draws_the_functions_pprof_draws() {
    for (file, index, name, nodes) in [
        ("pprof/cpu.pprof", 1, "cpu", 10),
        ("pprof/cpu.pprof", 1, "cpu", 100),
        ("pprof/heap.pb.gz", 3, "inuse_space", 20),
    ] {
        let path = testkit::testdata(file);
        let ours = node_tooltips(&formats::dot::render(&single_column(&path, index), nodes));
        let theirs = node_tooltips(&oracle_dot(&path, name, nodes));
        assert!(!ours.is_empty(), "{file}: no nodes");
        // pprof also draws nodes for numeric sample labels (allocation sizes, "10.52MB"): only
        // function nodes ("name (cum)") are compared. Ties at the cut-off may break
        // differently, so one node of slack.
        let theirs: BTreeSet<String> = theirs.into_iter().filter(|t| t.contains(" (")).collect();
        let ours: BTreeSet<String> = ours.into_iter().collect();
        let missing: Vec<&String> = theirs.difference(&ours).collect();
        assert!(
            missing.len() <= 1,
            "{file} ({nodes} nodes): pprof draws {missing:?} that we do not\nours {ours:?}"
        );
    }
}
