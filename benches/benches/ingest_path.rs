//! The server's push path on one core, without HTTP or storage: every profile of
//! `testdata/pprof` that Push accepts (the mix `emberscope loadgen` replays) is
//! decompressed and decoded into a view (`ProfileView::decode`), validated and normalised on it
//! (`prepare_view`), added to a segment (`BlockWriter::add_profile`) and, every 512 profiles, the
//! segment is encoded (`BlockWriter::finish`).
//! One iteration sends the mix from 10 pods each (about 190 profiles): what the load benchmark's
//! saturated server puts in one 500 ms segment is about 500.
//! The counter is uncompressed pprof bytes, so divan's MB/s is the figure of the goal
//! (≥ 80 MB/s per core). The stages are also measured alone. mimalloc, as in the server.
//!
//! `cargo bench -p emberscope-benches --bench ingest_path`

use block::BlockWriter;
use divan::Bencher;
use divan::counter::BytesCount;
use emberscope_benches::testdata;
use formats::pprof::{self, LabelLimits, Prepared, ProfileLimits, ProfileView, RewriteSlot};
use model::{Labels, TenantId};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    divan::main();
}

/// Profiles per segment (the segment writer flushes every 500 ms; at the goal's rate, 80 MB/s
/// of 70 KB profiles, that is about this many).
const PER_SEGMENT: usize = 512;
/// Pods per service: each input is sent once per pod (its own series).
const PODS: usize = 10;

struct Input {
    body: Vec<u8>,
    uncompressed: usize,
    labels: Labels,
}

fn limits() -> ProfileLimits {
    emberscope_benches::bench_limits(false)
}

/// The accepted profiles of testdata/pprof, in name order, with Push-style series labels.
fn inputs() -> Vec<Input> {
    let folder = testdata("pprof");
    let mut paths: Vec<_> = std::fs::read_dir(&folder)
        .expect("testdata/pprof")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let mut inputs = Vec::new();
    for pod in 0..PODS {
        inputs.extend(pod_inputs(&paths, pod));
    }
    assert!(
        !inputs.is_empty(),
        "no accepted profiles in {}",
        folder.display()
    );
    inputs
}

fn pod_inputs(paths: &[std::path::PathBuf], pod: usize) -> Vec<Input> {
    let mut inputs = Vec::new();
    for (index, path) in paths.iter().enumerate() {
        let Ok(body) = std::fs::read(path) else {
            continue;
        };
        let Ok(raw) = formats::compression::decompress(&body, 64 << 20) else {
            continue;
        };
        let Ok(profile) = ProfileView::decode(&raw) else {
            continue;
        };
        let service = format!("service-{}", index % 10);
        let labels = Labels::from_pairs([
            ("__name__", "process_cpu"),
            ("service_name", service.as_str()),
            ("pod", format!("pod-{pod}").as_str()),
        ]);
        let mut rewrites = None;
        let accepted = pprof::prepare_view(
            profile,
            &mut rewrites,
            &labels,
            &limits(),
            &LabelLimits::default(),
            raw.len(),
            0,
        );
        if accepted.is_ok_and(|prepared| !prepared.is_empty()) {
            inputs.push(Input {
                uncompressed: raw.len(),
                body,
                labels,
            });
        }
    }
    inputs
}

fn uncompressed(inputs: &[Input]) -> usize {
    inputs.iter().map(|i| i.uncompressed).sum()
}

fn decompress(input: &Input) -> Vec<u8> {
    formats::compression::decompress(&input.body, usize::MAX)
        .expect("valid")
        .into_owned()
}

fn prepare<'a>(
    input: &Input,
    profile: ProfileView<'a>,
    rewrites: &'a mut RewriteSlot,
) -> Prepared<'a> {
    pprof::prepare_view(
        profile,
        rewrites,
        &input.labels,
        &limits(),
        &LabelLimits::default(),
        input.uncompressed,
        0,
    )
    .expect("accepted")
}

/// The whole path, as the server's Push handler runs it: gunzip, decode into a view, prepare
/// it and add it to the segment; a segment encoded every PER_SEGMENT profiles.
#[divan::bench]
fn push_path(bencher: Bencher) {
    let inputs = inputs();
    let tenant = TenantId::new("bench").expect("tenant");
    bencher
        .counter(BytesCount::new(uncompressed(&inputs)))
        .bench(|| {
            let mut writer = BlockWriter::new();
            let mut encoded = 0usize;
            for input in &inputs {
                let raw = decompress(input);
                let view = ProfileView::decode(&raw).expect("valid");
                let mut rewrites = None;
                writer.add_profile(
                    &tenant,
                    &prepare(input, view, &mut rewrites),
                    *uuid::Uuid::new_v4().as_bytes(),
                );
                if writer.profiles() as usize >= PER_SEGMENT {
                    let full = std::mem::take(&mut writer);
                    encoded += full.finish().expect("encoded").bytes.len();
                }
            }
            encoded + writer.finish().expect("encoded").bytes.len()
        });
}

/// Stage 1 alone: gunzip and decode into a view.
#[divan::bench]
fn decode(bencher: Bencher) {
    let inputs = inputs();
    bencher
        .counter(BytesCount::new(uncompressed(&inputs)))
        .bench(|| {
            inputs
                .iter()
                .map(|i| {
                    let raw = decompress(i);
                    ProfileView::decode(&raw).expect("valid").samples.len()
                })
                .sum::<usize>()
        });
}

/// Stage 2 alone: validation, Go repairs, normalisation and the split by sample labels.
#[divan::bench]
fn prepare_view(bencher: Bencher) {
    let inputs = inputs();
    let raws: Vec<Vec<u8>> = inputs.iter().map(decompress).collect();
    let decoded: Vec<ProfileView<'_>> = raws
        .iter()
        .map(|raw| ProfileView::decode(raw).expect("valid"))
        .collect();
    bencher
        .counter(BytesCount::new(uncompressed(&inputs)))
        .with_inputs(|| decoded.clone())
        .bench_values(|decoded| {
            inputs
                .iter()
                .zip(decoded)
                .map(|(input, profile)| {
                    let mut rewrites = None;
                    usize::from(!prepare(input, profile, &mut rewrites).is_empty())
                })
                .sum::<usize>()
        });
}

/// Stages 3 and 4 alone: interning into segments and encoding them.
#[divan::bench]
fn add_and_encode(bencher: Bencher) {
    let inputs = inputs();
    let tenant = TenantId::new("bench").expect("tenant");
    let raws: Vec<Vec<u8>> = inputs.iter().map(decompress).collect();
    let mut slots: Vec<RewriteSlot> = inputs.iter().map(|_| None).collect();
    let prepared: Vec<Prepared<'_>> = inputs
        .iter()
        .zip(&raws)
        .zip(slots.iter_mut())
        .map(|((i, raw), slot)| prepare(i, ProfileView::decode(raw).expect("valid"), slot))
        .collect();
    bencher
        .counter(BytesCount::new(uncompressed(&inputs)))
        .bench(|| {
            let mut writer = BlockWriter::new();
            let mut encoded = 0usize;
            for profile in &prepared {
                writer.add_profile(&tenant, profile, *uuid::Uuid::new_v4().as_bytes());
                if writer.profiles() as usize >= PER_SEGMENT {
                    let full = std::mem::take(&mut writer);
                    encoded += full.finish().expect("encoded").bytes.len();
                }
            }
            encoded + writer.finish().expect("encoded").bytes.len()
        });
}
