//! The in-flight budget's estimate (`server::inflight::DECODED_PER_ENCODED_BYTE`) against the
//! real thing: the peak heap a push takes for each real pprof of the test data — the request's
//! copy of the bytes, decoding into a view (`ProfileView::decode`) and `prepare_view` until the
//! profile is ready for the segment writer, as the Push handler runs them — measured by a
//! counting allocator (`peak_alloc`).

use formats::pprof::{self, LabelLimits, ProfileLimits};
use model::Labels;
use peak_alloc::PeakAlloc;

#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

#[test]
fn the_inflight_estimate_covers_every_real_profile() {
    let limits = ProfileLimits {
        reject_older_than_nanos: 0,
        reject_newer_than_nanos: 0,
        ..ProfileLimits::default()
    };
    let labels = Labels::from_pairs([("__name__", "process_cpu"), ("service_name", "svc")]);
    let mut measured = 0;
    let mut worst = (0.0f64, String::new());
    let dir = testkit::testdata("pprof");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("test data")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    for path in paths {
        let body = std::fs::read(&path).expect("read");
        let Ok(raw) = formats::compression::decompress(&body, 1 << 30) else {
            continue;
        };
        let raw = raw.to_vec();
        if raw.len() < 4096 {
            continue; // fixed costs dominate tiny profiles; the budget's 1 KiB rounding covers them
        }
        let base = ALLOCATOR.current_usage();
        ALLOCATOR.reset_peak_usage();
        // The request's own copy of the bytes, as Push's decoded request holds.
        let copy = raw.clone();
        let Ok(profile) = pprof::ProfileView::decode(&copy) else {
            continue;
        };
        let mut rewrites = None;
        let prepared = match pprof::prepare_view(
            profile,
            &mut rewrites,
            &labels,
            &limits,
            &LabelLimits::default(),
            raw.len(),
            1,
        ) {
            Ok(prepared) => prepared,
            Err(e) => {
                eprintln!("{}: {}", path.display(), e.message);
                continue;
            }
        };
        let peak = ALLOCATOR.peak_usage().saturating_sub(base);
        drop(prepared);
        drop(rewrites);
        drop(copy);
        let ratio = peak as f64 / raw.len() as f64;
        eprintln!(
            "{}: {} bytes, peak {} ({ratio:.1}x)",
            path.display(),
            raw.len(),
            peak
        );
        if ratio > worst.0 {
            worst = (ratio, path.display().to_string());
        }
        measured += 1;
    }
    assert!(measured >= 8, "only {measured} profiles measured");
    assert!(
        worst.0 <= server::inflight::DECODED_PER_ENCODED_BYTE as f64,
        "{} takes {:.1} bytes per uncompressed byte, over the estimate of {}",
        worst.1,
        worst.0,
        server::inflight::DECODED_PER_ENCODED_BYTE
    );
}
