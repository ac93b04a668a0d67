//! The storage workload of issue 3: real profiles replayed as SERVICES × PODS every 10 s for a
//! simulated time span, through the real write path (push validation, segment writer, local
//! object storage, SQLite metastore), then compacted. Prints stored bytes against the gzip
//! bytes ingested, bytes per sample, ingest throughput and acknowledge latency, and compaction
//! throughput. Not a divan benchmark: one run of a whole workload.
//!
//! `cargo bench -p emberscope-benches --bench storage -- [MINUTES]` (default 10; 60 = an hour).

use compactor::{Compactor, CompactorConfig};
use emberscope_benches::read;
use formats::pprof::{self, LabelLimits};
use ingest::{SegmentWriter, SegmentWriterConfig};
use model::{Labels, TenantId};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SERVICES: usize = 10;
const PODS: usize = 10;
/// Writes in flight at once (a closed loop: throughput is at most IN_FLIGHT per flush).
const IN_FLIGHT: usize = 512;
/// The profile each service sends (services cycle through them).
const FILES: &[&str] = &[
    "pprof/cpu.pprof",
    "pprof/profile_java",
    "clients/pyroscope-io-1.4.0_cpu.pprof",
    "pprof/nodejs-wall.pb.gz",
    "pprof/heap",
];

fn gzip_len(body: &[u8]) -> usize {
    if body.starts_with(&[0x1f, 0x8b]) {
        return body.len();
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = encoder.write_all(body);
    encoder.finish().map_or(body.len(), |v| v.len())
}

fn cpu_seconds() -> f64 {
    // utime + stime of this process, in clock ticks (100 per second on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    if let Ok(entries) = std::fs::read_dir(path) {
        for entry in entries.flatten() {
            let p = entry.path();
            total += if p.is_dir() {
                dir_size(&p)
            } else {
                entry.metadata().map_or(0, |m| m.len())
            };
        }
    }
    total
}

fn main() {
    let minutes: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let intervals = minutes * 6;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(intervals));
}

async fn run(intervals: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, metastore) = emberscope_benches::local_storage(dir.path());
    let writer = Arc::new(SegmentWriter::start(
        SegmentWriterConfig::default(),
        Arc::clone(&store),
        metastore.clone(),
    ));
    let tenant = TenantId::new("bench").expect("valid");
    let limits = emberscope_benches::bench_limits(false);
    // (gzip size, uncompressed bytes, samples × sample types) of each input, computed once.
    let inputs: Vec<(usize, Arc<Vec<u8>>, usize)> = FILES
        .iter()
        .map(|f| {
            let body = read(f);
            let raw =
                formats::compression::decompress(&body, pprof::DEFAULT_MAX_DECOMPRESSED_BYTES)
                    .expect("valid")
                    .into_owned();
            let view = pprof::ProfileView::decode(&raw).expect("valid");
            let values = view.samples.len() * view.sample_type.len();
            (gzip_len(&body), Arc::new(raw), values)
        })
        .collect();
    let (mut gzip_in, mut raw_in, mut samples, mut profiles) = (0usize, 0usize, 0usize, 0usize);
    let base = 1_700_000_000_000_000_000i64;
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for interval in 0..intervals {
        for service in 0..SERVICES {
            let (gzip, raw, values) = &inputs[service % inputs.len()];
            for pod in 0..PODS {
                let time = base + interval as i64 * 10_000_000_000 + pod as i64;
                let labels = Labels::from_pairs([
                    ("__name__", "process_cpu".to_owned()),
                    ("service_name", format!("service-{service}")),
                    ("pod", format!("pod-{pod}")),
                ]);
                samples += values;
                gzip_in += gzip;
                raw_in += raw.len();
                profiles += 1;
                let permit = Arc::clone(&permits).acquire_owned().await.expect("permits");
                let (writer, tenant, latencies, size) = (
                    Arc::clone(&writer),
                    tenant.clone(),
                    Arc::clone(&latencies),
                    raw.len(),
                );
                let (raw, limits) = (Arc::clone(raw), limits.clone());
                tasks.spawn(async move {
                    // Decode-side work (decoding into a view, validation, normalisation, split)
                    // as the Push handler does it, on the request's task.
                    let mut profile = pprof::ProfileView::decode(&raw).expect("valid");
                    profile.time_nanos = time;
                    let mut rewrites = None;
                    let prepared = pprof::prepare_view(
                        profile,
                        &mut rewrites,
                        &labels,
                        &limits,
                        &LabelLimits::default(),
                        size,
                        1,
                    )
                    .expect("valid");
                    let sent = Instant::now();
                    writer
                        .add(&tenant, prepared, size)
                        .await
                        .expect("added")
                        .durable()
                        .await
                        .expect("acknowledged");
                    latencies.lock().expect("lock").push(sent.elapsed());
                    drop(permit);
                });
                while tasks.try_join_next().is_some() {}
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    let ingest_wall = started.elapsed();
    let ingest_cpu = cpu_seconds() - cpu_before;
    let segment_bytes = dir_size(&dir.path().join("objects/segments"));

    let compactor = Compactor::new(
        Arc::clone(&store),
        metastore.clone(),
        CompactorConfig {
            min_segments_per_job: 1,
            max_segments_per_job: 64,
            grace_period: Duration::ZERO,
            ..CompactorConfig::default()
        },
    );
    let compact_started = Instant::now();
    let (mut compacted_in, mut jobs) = (0u64, 0);
    while let Some(report) = compactor.compact_once(1).await.expect("compaction") {
        compacted_in += report.bytes_in;
        jobs += 1;
    }
    let compact_wall = compact_started.elapsed();
    compactor.collect_garbage(i64::MAX).await.expect("gc");
    let block_bytes = dir_size(&dir.path().join("objects/blocks"));

    let mut latencies = latencies.lock().expect("lock").clone();
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or_default()
    };
    let mb = |b: usize| b as f64 / 1e6;
    println!("| measure | value |\n|---|---|");
    println!(
        "| workload | {SERVICES} services × {PODS} pods × {intervals} intervals of 10 s = {profiles} profiles, {samples} samples |"
    );
    println!(
        "| ingested | {:.1} MB gzip pprof, {:.1} MB uncompressed |",
        mb(gzip_in),
        mb(raw_in)
    );
    println!(
        "| stored as segments | {:.1} MB ({:.1} % of gzip) |",
        segment_bytes as f64 / 1e6,
        100.0 * segment_bytes as f64 / gzip_in as f64
    );
    println!(
        "| stored after compaction | {:.2} MB = {:.2} % of the gzip bytes ingested, {:.2} bytes per sample |",
        block_bytes as f64 / 1e6,
        100.0 * block_bytes as f64 / gzip_in as f64,
        block_bytes as f64 / samples as f64
    );
    println!(
        "| ingest | {:.0} profiles/s, {:.1} MB/s uncompressed wall, {:.1} MB/s per CPU-second ({:.1} s wall, {:.1} CPU-s, 2 cores) |",
        profiles as f64 / ingest_wall.as_secs_f64(),
        mb(raw_in) / ingest_wall.as_secs_f64(),
        mb(raw_in) / ingest_cpu.max(0.001),
        ingest_wall.as_secs_f64(),
        ingest_cpu
    );
    println!(
        "| acknowledge latency | p50 {:?}, p99 {:?} ({IN_FLIGHT} writes in flight) |",
        pct(0.5),
        pct(0.99)
    );
    println!(
        "| compaction | {jobs} jobs, {:.1} MB of segments in {:.2} s = {:.1} MB/s |",
        compacted_in as f64 / 1e6,
        compact_wall.as_secs_f64(),
        compacted_in as f64 / 1e6 / compact_wall.as_secs_f64()
    );
    println!("| peak RSS of the whole run | {:.0} MiB |", peak_rss_mib());
}
