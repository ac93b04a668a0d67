//! JFR conversion (`formats::jfr::convert`) on the largest test recording
//! (`cortex-dev-01__kafka-0__cpu_lock0_alloc0__0`: CPU, four allocation kinds, mutex and block
//! events), in MB of JFR per second, beside `decode_for_ingest` of the pprofs it converts to
//! (the same content as pprof). The recording repeated as 1 and 8 back-to-back chunks, gzip, as
//! the Java agent sends it: with the allocation profiler, the "max alloc" column shows that
//! peak memory follows one chunk, not the recording's length.

use divan::counter::BytesCount;
use divan::{AllocProfiler, Bencher};
use emberscope_benches::read;
use formats::jfr::{self, JfrInput, JfrLimits};
use formats::pprof;
use std::io::Write as _;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

const FILE: &str = "jfr/cortex-dev-01__kafka-0__cpu_lock0_alloc0__0.jfr.gz";

fn raw() -> Vec<u8> {
    formats::compression::decompress(&read(FILE), 1 << 30)
        .expect("gzip")
        .into_owned()
}

fn input(body: &[u8]) -> JfrInput<'_> {
    JfrInput {
        body,
        labels: None,
        sample_rate: 100,
        start_time_nanos: 0,
        duration_nanos: 0,
        limits: JfrLimits::default(),
    }
}

#[divan::bench]
fn jfr_to_pprof(bencher: Bencher) {
    let body = raw();
    bencher
        .counter(BytesCount::of_slice(&body))
        .bench(|| jfr::convert(input(&body)).expect("valid"));
}

/// The same content as pprof: every profile the recording converts to, decoded as the push
/// path decodes a pprof.
#[divan::bench]
fn same_content_as_pprof(bencher: Bencher) {
    use prost::Message as _;
    let recording = jfr::convert(input(&raw())).expect("valid");
    let bodies: Vec<Vec<u8>> = recording
        .profiles
        .iter()
        .map(|p| p.profile.encode_to_vec())
        .collect();
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    bencher.counter(BytesCount::new(bytes)).bench(|| {
        for body in &bodies {
            divan::black_box(pprof::decode_for_ingest(body, usize::MAX).expect("valid"));
        }
    });
}

/// The recording as `chunks` back-to-back chunks, gzip: bytes counted uncompressed.
#[divan::bench(args = [1, 8])]
fn chunks_gzip(bencher: Bencher, chunks: usize) {
    let one = raw();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for _ in 0..chunks {
        encoder.write_all(&one).expect("gzip");
    }
    let body = encoder.finish().expect("gzip");
    bencher
        .counter(BytesCount::new(one.len() * chunks))
        .bench(|| jfr::convert(input(&body)).expect("valid"));
}
