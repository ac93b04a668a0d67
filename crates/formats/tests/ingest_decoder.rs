//! The ingest decoder (`decode_for_ingest`, through `ProfileView`) gives the same profile as
//! prost's decoder for every real test file (less the fields ingest never reads), and refuses
//! what prost refuses.

mod common;

use formats::pprof::{decode, decode_for_ingest};

#[test]
fn ingest_decoder_equals_prost_on_every_test_file() {
    let mut compared = 0;
    for path in common::pprof_files() {
        let bytes = std::fs::read(&path).expect("read");
        match (decode(&bytes, 1 << 28), decode_for_ingest(&bytes, 1 << 28)) {
            (Ok(mut expected), Ok(fast)) => {
                expected.comment.clear();
                expected.drop_frames = 0;
                expected.keep_frames = 0;
                expected.doc_url = 0;
                assert!(expected == fast, "{} decodes differently", path.display());
                compared += 1;
            }
            (Err(_), Err(_)) => {}
            (expected, fast) => panic!(
                "{}: prost {:?}, ingest decoder {:?}",
                path.display(),
                expected.err().map(|e| e.to_string()),
                fast.err().map(|e| e.to_string())
            ),
        }
    }
    assert!(compared > 20, "only {compared} files compared");
}
