//! pprof hot paths on the real test profiles:
//! - `decode_baseline` (bare gunzip + protobuf decode) beside `decode_and_normalize` (the push
//!   path's decoding into a view, validation, Go repair, normalisation and series split on it);
//! - `merge_100_*`: 100 copies of a profile into one flame graph and into one pprof (compare with
//!   `pprof -proto` through `scripts/bench_vs_pprof.sh`).

use divan::Bencher;
use divan::counter::BytesCount;
use emberscope_benches::read;
use formats::pprof::{self, LabelLimits, MergeOptions, ProfileMerger};
use model::{FlameGraph, Labels, Tree};

fn main() {
    divan::main();
}

const FILES: &[&str] = &[
    "pprof/heap",
    "pprof/heap.pb.gz",
    "pprof/cpu.pprof",
    "pprof/go.cpu.labels.pprof",
    "pprof/profile_java",
    "pprof/dotnet-pprof-211.pb.gz",
    "pprof/gotruncatefix/heap_go_truncated_1.pb.gz",
    "clients/datadog-pprof-5.14.4_node_wall_cpu.pprof.gz",
];

const LIMIT: usize = pprof::DEFAULT_MAX_DECOMPRESSED_BYTES;

#[divan::bench(args = FILES)]
fn decode_baseline(bencher: Bencher, file: &str) {
    use prost::Message;
    let body = read(file);
    bencher.counter(BytesCount::of_slice(&body)).bench(|| {
        let raw = formats::compression::decompress(&body, LIMIT).expect("valid body");
        pprof::Profile::decode(raw.as_ref()).expect("valid pprof")
    });
}

#[divan::bench(args = FILES)]
fn decode_view(bencher: Bencher, file: &str) {
    let body = read(file);
    bencher.counter(BytesCount::of_slice(&body)).bench(|| {
        let raw = formats::compression::decompress(&body, LIMIT).expect("valid body");
        let view = pprof::ProfileView::decode(&raw).expect("valid pprof");
        divan::black_box(view.samples.len())
    });
}

#[divan::bench(args = FILES)]
fn decode_and_normalize(bencher: Bencher, file: &str) {
    let body = read(file);
    let labels = Labels::from_pairs([("__name__", "bench"), ("service_name", "bench")]);
    let limits = emberscope_benches::bench_limits(true);
    let label_limits = LabelLimits::default();
    bencher.counter(BytesCount::of_slice(&body)).bench(|| {
        // As the Push handler does it: decompress, decode into a view, prepare the view.
        let raw = formats::compression::decompress(&body, LIMIT).expect("valid body");
        let profile = pprof::ProfileView::decode(&raw).expect("valid pprof");
        let mut rewrites = None;
        let prepared = pprof::prepare_view(
            profile,
            &mut rewrites,
            &labels,
            &limits,
            &label_limits,
            body.len(),
            1,
        )
        .expect("valid profile");
        divan::black_box(&prepared);
        prepared.is_empty()
    });
}

const MERGE_FILES: &[&str] = &["pprof/heap", "pprof/cpu.pprof"];

#[divan::bench(args = MERGE_FILES, sample_count = 10)]
fn merge_100_flamegraph(bencher: Bencher, file: &str) {
    let body = read(file);
    bencher.bench(|| {
        let mut tree = Tree::new();
        for _ in 0..100 {
            let raw = formats::compression::decompress(&body, LIMIT).expect("valid body");
            let view = pprof::ProfileView::decode(&raw).expect("valid pprof");
            pprof::add_to_tree(&view, view.sample_type.len() - 1, &mut tree);
        }
        FlameGraph::from_tree(&tree, 8192)
    });
}

#[divan::bench(args = MERGE_FILES, sample_count = 10)]
fn merge_100_pprof(bencher: Bencher, file: &str) {
    let body = read(file);
    bencher.bench(|| {
        let mut merger = ProfileMerger::new(MergeOptions::default());
        for _ in 0..100 {
            let raw = formats::compression::decompress(&body, LIMIT).expect("valid body");
            let view = pprof::ProfileView::decode(&raw).expect("valid pprof");
            merger.merge_view(&view).expect("same types");
        }
        pprof::encode_gzip(&merger.finish())
    });
}
