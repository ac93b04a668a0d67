//! Test set-up shared by the workspace's tests, and nothing else: where the repository's test
//! data is (`testdata/` at the workspace root), Google's `pprof` and `scripts/pprof-oracle/` as
//! an independent oracle, the S3 and Azure emulators and PostgreSQL schemas on loopback, and
//! Pyroscope's compact "strprofile" JSON of a pprof. A dev-dependency only: it never reaches
//! the binary, and it panics with a message saying what to install (tests want that).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc)]

pub mod emulator;
pub mod oracle;
pub mod postgres;
pub mod strprofile;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The workspace root (this crate sits at `crates/testkit`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists")
}

/// `testdata/<relative>` at the workspace root.
pub fn testdata(relative: &str) -> PathBuf {
    workspace_root().join("testdata").join(relative)
}

/// The bytes of `testdata/<relative>`.
pub fn read_testdata(relative: &str) -> Vec<u8> {
    let path = testdata(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `scripts/<relative>` at the workspace root.
pub fn script(relative: &str) -> PathBuf {
    workspace_root().join("scripts").join(relative)
}

/// Every pprof file under `testdata/pprof` (recursively) and `testdata/clients`, sorted.
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
