//! Ingest decoders added with the server, on real inputs:
//! - `decode_for_ingest` (the push path's decoder, through `ProfileView`) beside prost's
//!   `decode` of the same file: the ratio is the gain of the hand-written decoder;
//! - the text formats (`folded`, speedscope) and OTLP (`otel-ebpf-profile.pb.bin`) conversions
//!   to pprof, in bytes of input per second.

use divan::Bencher;
use divan::counter::BytesCount;
use emberscope_benches::read;
use formats::pprof;
use formats::text::{TextFormat, TextInput};

fn main() {
    divan::main();
}

const FILES: &[&str] = &["pprof/heap", "pprof/cpu.pprof", "pprof/profile_java"];
const LIMIT: usize = pprof::DEFAULT_MAX_DECOMPRESSED_BYTES;

#[divan::bench(args = FILES)]
fn prost_decode(bencher: Bencher, file: &str) {
    let body = read(file);
    bencher
        .counter(BytesCount::of_slice(&body))
        .bench(|| pprof::decode(&body, LIMIT).expect("valid"));
}

#[divan::bench(args = FILES)]
fn decode_for_ingest(bencher: Bencher, file: &str) {
    let body = read(file);
    bencher
        .counter(BytesCount::of_slice(&body))
        .bench(|| pprof::decode_for_ingest(&body, LIMIT).expect("valid"));
}

/// The collapsed stacks of the heap profile as a folded body (a realistic text upload).
fn folded_body() -> Vec<u8> {
    let profile = pprof::decode(&read("pprof/heap"), LIMIT).expect("valid");
    model::write_collapsed(&pprof::to_tree(&profile, 1)).into_bytes()
}

#[divan::bench]
fn folded_to_pprof(bencher: Bencher) {
    let body = folded_body();
    bencher.counter(BytesCount::of_slice(&body)).bench(|| {
        formats::text::convert(TextInput::new(TextFormat::Folded, &body, "app.cpu")).expect("valid")
    });
}

#[divan::bench]
fn speedscope_to_pprof(bencher: Bencher) {
    let body = read("speedscope/simple.speedscope.json");
    bencher.counter(BytesCount::of_slice(&body)).bench(|| {
        formats::text::convert(TextInput::new(TextFormat::Speedscope, &body, "app")).expect("valid")
    });
}

#[divan::bench]
fn otlp_to_pprof(bencher: Bencher) {
    use prost::Message as _;
    let body = read("otlp/otel-ebpf-profile.pb.bin");
    bencher.counter(BytesCount::of_slice(&body)).bench(|| {
        let request =
            formats::otlp::ExportProfilesServiceRequest::decode(body.as_slice()).expect("valid");
        formats::otlp::convert(&request, 0).expect("valid")
    });
}
