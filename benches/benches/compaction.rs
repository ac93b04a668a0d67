//! Compaction at scale (issue 3): one service whose profiles hold STACKS distinct stacks in
//! all, spread over SEGMENTS segments, compacted by jobs of at most JOB_MB MB of segments
//! (default: one job for all of them). Prints the compaction's
//! throughput (segment bytes per second) and its peak memory: the process's peak resident set
//! is reset (`/proc/self/clear_refs`) after the segments are written, so the figure is the
//! compaction's own. Not a divan benchmark: one run of a whole workload.
//!
//! `cargo bench -p emberscope-benches --bench compaction -- [STACKS] [SEGMENTS] [JOB_MB]`
//! (default 1,000,000 stacks in 16 segments).

use block::BlockWriter;
use compactor::{Compactor, CompactorConfig};
use formats::pprof::{self, LabelLimits};
use metastore::Metastore;
use model::{Labels, TenantId};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storage::ObjectStoreExt;
use ulid::Ulid;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<usize>().ok());
    let stacks = args.next().unwrap_or(1_000_000);
    let segments = args.next().unwrap_or(16).max(1);
    let job_bytes = args.next().map_or(u64::MAX, |mb| mb as u64 * 1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(stacks, segments, job_bytes));
}

async fn run(stacks: usize, segments: usize, job_bytes: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, metastore) = emberscope_benches::local_storage(dir.path());
    let tenant = TenantId::new("bench").expect("valid");
    let limits = emberscope_benches::bench_limits(true);
    let labels = Labels::from_pairs([("__name__", "process_cpu"), ("service_name", "big-service")]);
    let per_segment = stacks.div_ceil(segments);
    let base = 1_700_000_000_000_000_000i64;
    let mut segment_bytes = 0u64;
    for segment in 0..segments {
        let profile = emberscope_benches::synthetic_profile(
            per_segment,
            segment as u64 + 1,
            base + segment as i64,
            false,
        );
        let series = pprof::prepare_push(profile, &labels, &limits, &LabelLimits::default(), 0, 0)
            .expect("valid");
        let mut writer = BlockWriter::new();
        for one in &series {
            writer.add(&tenant, one, [1; 16]);
        }
        let encoded = writer.finish().expect("encoded");
        let id = Ulid::new();
        segment_bytes += encoded.bytes.len() as u64;
        let meta = ingest::block_meta(&encoded, id, 0, 0, None);
        store
            .put(&storage::paths::segment(0, id), encoded.bytes.into())
            .await
            .expect("stored");
        metastore.add_block(&meta).await.expect("recorded");
    }
    let compactor = Compactor::new(
        Arc::clone(&store),
        metastore.clone(),
        CompactorConfig {
            min_segments_per_job: 1,
            max_segments_per_job: segments,
            max_bytes_per_job: job_bytes,
            max_level: 1,
            grace_period: Duration::ZERO,
            ..CompactorConfig::default()
        },
    );
    // The peak resident set from here on is the compaction's.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = emberscope_benches::status_kib("VmRSS:");
    let started = Instant::now();
    let mut report = compactor::CompactionReport::default();
    let mut jobs = 0;
    while let Some(job) = compactor
        .compact_once(model::time::now_ms())
        .await
        .expect("compacted")
    {
        jobs += 1;
        report.blocks += job.blocks;
        report.bytes_in += job.bytes_in;
        report.bytes_out += job.bytes_out;
        report.profiles_out += job.profiles_out;
    }
    assert!(jobs > 0, "no job ran");
    let elapsed = started.elapsed();
    let peak = emberscope_benches::status_kib("VmHWM:");
    println!("| measure | value |\n|---|---|");
    println!(
        "| input | {stacks} distinct stacks of one service (depth 8–31 over {} functions) in {segments} segments, {:.1} MB |",
        emberscope_benches::SYNTHETIC_FUNCTIONS,
        segment_bytes as f64 / 1e6
    );
    println!(
        "| output | {jobs} job(s), {} block(s), {:.1} MB, {} profiles |",
        report.blocks,
        report.bytes_out as f64 / 1e6,
        report.profiles_out
    );
    println!(
        "| compaction | {:.2} s = {:.1} MB/s of segments |",
        elapsed.as_secs_f64(),
        report.bytes_in as f64 / 1e6 / elapsed.as_secs_f64()
    );
    println!(
        "| peak memory during compaction | {:.0} MiB resident (process before: {:.0} MiB){} |",
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
        if reset {
            ""
        } else {
            " — peak not reset: whole process"
        }
    );
}
