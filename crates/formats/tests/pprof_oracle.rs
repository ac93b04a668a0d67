//! Our pprof decoding, frame naming, trees and merges against Google's pprof on every real
//! profile of `testdata/`.

use formats::pprof::{self, MergeOptions, ProfileMerger};
use std::path::PathBuf;
use testkit::oracle::*;
use testkit::*;

fn decode_file(path: &std::path::Path) -> pprof::Profile {
    let body = std::fs::read(path).expect("read test file");
    pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn collapsed_stacks_equal_pprof_for_every_file_and_sample_type() {
    let mut compared_files = 0;
    let mut compared_types = 0;
    let mut rejected = Vec::new();
    for path in pprof_files() {
        let Some(raw) = pprof_raw(&path) else {
            rejected.push(path.display().to_string());
            // pprof refuses it; we must still not panic on it.
            let body = std::fs::read(&path).expect("read test file");
            let _ = pprof::decode(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES)
                .map(|p| pprof::to_trees(&p));
            continue;
        };
        let Some(expected) = try_oracle_all_values(&raw) else {
            rejected.push(format!("{} (oracle script)", path.display()));
            continue;
        };
        let profile = decode_file(&path);
        let trees = pprof::to_trees(&profile);
        // The hand-written decoder of the read path sees exactly what prost sees.
        let body = std::fs::read(&path).expect("read test file");
        let raw = formats::compression::decompress(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES)
            .expect("decompress");
        let view = pprof::ProfileView::decode(&raw).expect("view decodes what prost decodes");
        assert_eq!(
            view,
            pprof::ProfileView::from_profile(&profile),
            "{}",
            path.display()
        );
        for (index, tree) in trees.iter().enumerate() {
            let ours = model::write_collapsed(tree);
            let theirs = column_as_collapsed(&expected, index);
            assert!(
                ours == theirs,
                "{} sample type {index}: collapsed stacks differ from pprof's\n{}",
                path.display(),
                first_difference(&ours, &theirs)
            );
            compared_types += 1;
        }
        compared_files += 1;
    }
    eprintln!(
        "compared {compared_files} files ({compared_types} sample types) with pprof; pprof rejects {rejected:?}"
    );
    // pprof refuses the .NET profile with function ids 0; the oracle script cannot read
    // pprof's text of the file with invalid UTF-8. Every other file is compared.
    let rejected: Vec<String> = rejected
        .iter()
        .map(|r| r.rsplit('/').next().unwrap_or(r).to_owned())
        .collect();
    assert_eq!(
        rejected,
        ["dotnet-pprof-3.pb.gz", "invalid_utf8.pb.gz (oracle script)"],
        "unexpected files left out of the comparison"
    );
    assert!(compared_files >= 28, "only {compared_files} files compared");
}

fn first_difference(ours: &str, theirs: &str) -> String {
    let a: Vec<&str> = ours.lines().collect();
    let b: Vec<&str> = theirs.lines().collect();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i), b.get(i));
        if x != y {
            return format!("line {i}:\n ours:   {x:?}\n pprof:  {y:?}");
        }
    }
    String::from("(equal)")
}

/// Groups of files with equal sample types and period types, merged by us and by `pprof -proto`.
fn merge_groups() -> Vec<Vec<PathBuf>> {
    let group = |names: &[&str]| names.iter().map(|n| testdata(n)).collect::<Vec<_>>();
    vec![
        group(&[
            "pprof/heap",
            "pprof/heap_delta",
            "pprof/heap.pb.gz",
            "pprof/req_5.pprof",
        ]),
        group(&[
            "pprof/cpu.pprof",
            "pprof/go.cpu.labels.pprof",
            "pprof/gotruncatefix/cpu_go_truncated_1.pb.gz",
            "pprof/cpu.pprof",
        ]),
        group(&[
            "pprof/nodejs-heap.pb.gz",
            "clients/datadog-pprof-5.14.4_node_heap.pprof.gz",
            "clients/pyroscope-nodejs-0.6.4_ingest_heap.pprof.gz",
        ]),
        group(&["pprof/req_3.pprof", "pprof/req_4.pprof"]),
    ]
}

#[test]
fn merged_pprof_equals_pprof_proto_merge() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (n, files) in merge_groups().into_iter().enumerate() {
        let mut merger = ProfileMerger::new(MergeOptions::default());
        for file in &files {
            merger
                .merge(&decode_file(file))
                .expect("compatible profiles");
        }
        let ours_path = dir.path().join(format!("ours-{n}.pb.gz"));
        std::fs::write(&ours_path, pprof::encode_gzip(&merger.finish())).expect("write merged");

        let theirs_path = dir.path().join(format!("pprof-{n}.pb.gz"));
        let status = std::process::Command::new(pprof_bin())
            .args(["-symbolize=none", "-proto", "-output"])
            .arg(&theirs_path)
            .args(&files)
            .output()
            .expect("run pprof -proto");
        assert!(
            status.status.success(),
            "pprof -proto failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );

        let ours = oracle_all_values(&pprof_raw(&ours_path).expect("pprof reads our merge"));
        let theirs = oracle_all_values(&pprof_raw(&theirs_path).expect("pprof reads its merge"));
        assert!(!ours.is_empty());
        assert_eq!(ours, theirs, "merge of {files:?} differs from pprof -proto");

        let check = std::process::Command::new("python3")
            .arg(script("pprof-oracle/check_merge.py"))
            .arg(&ours_path)
            .args(&files)
            .env("PPROF", pprof_bin())
            .output()
            .expect("run check_merge.py");
        assert!(
            check.status.success(),
            "check_merge.py: {}",
            String::from_utf8_lossy(&check.stdout)
        );
    }
}

#[test]
fn merge_refuses_different_sample_types() {
    let mut merger = ProfileMerger::new(MergeOptions::default());
    merger
        .merge(&decode_file(&testdata("pprof/cpu.pprof")))
        .expect("first profile");
    let err = merger
        .merge(&decode_file(&testdata("pprof/heap")))
        .expect_err("cpu and heap differ");
    assert!(err.to_string().contains("different sample types"), "{err}");
}
