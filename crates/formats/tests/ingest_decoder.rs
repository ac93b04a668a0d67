//! The ingest decoder (`decode_for_ingest`, through `ProfileView`) gives the same profile as
//! prost's decoder for every real test file (less the fields ingest never reads), and refuses
//! what prost refuses.

use formats::pprof::{decode, decode_for_ingest};

#[test]
fn ingest_decoder_equals_prost_on_every_test_file() {
    let mut compared = 0;
    for path in testkit::pprof_files() {
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

/// 100,000 empty sample types and 100,000 empty samples (400 KB): sizing buffers from the
/// product of the two counts would ask for 80 GB and abort the process; decoding must stay
/// within what the body holds and agree with prost.
#[test]
fn counts_of_empty_messages_do_not_size_buffers() {
    let mut body = Vec::with_capacity(400_000);
    for _ in 0..100_000 {
        body.extend_from_slice(&[0x0a, 0x00]);
    }
    for _ in 0..100_000 {
        body.extend_from_slice(&[0x12, 0x00]);
    }
    let fast = decode_for_ingest(&body, 1 << 28).expect("decodes");
    let expected = decode(&body, 1 << 28).expect("decodes");
    assert_eq!(fast.sample_type.len(), 100_000);
    assert_eq!(fast.sample.len(), 100_000);
    assert!(expected == fast);
}
