//! Lists `profiles/*.pb.gz` (the profiles `emberscope loadgen` carries as its default mix) into
//! `$OUT_DIR/builtin_profiles.rs` as `(name, bytes)` pairs, so that adding or re-recording one
//! (`scripts/record_loadgen_profiles.sh`) needs no code change.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("profiles");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.to_string_lossy().ends_with(".pb.gz"));
    files.sort();
    let mut out = String::from("&[\n");
    for path in files {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pb.gz"))
            .expect("a UTF-8 file name");
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            out,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("write to a string");
    }
    out.push_str("]\n");
    let target =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("builtin_profiles.rs");
    std::fs::write(target, out).expect("write builtin_profiles.rs");
}
