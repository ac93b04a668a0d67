//! `emberscope loadgen`: a fleet of `services × pods` pushing real profiles (a folder of pprof
//! files, by default five built into the binary) every `interval` through the Push API, with
//! varied labels and timestamps jittered by whole seconds, for a bounded time and number of
//! requests. Bodies are uncompressed pprof (each source encoded about once a second). Reports
//! throughput (profiles/s, uncompressed MB/s), acknowledge latency percentiles and errors.
//! `--url` may list several servers, comma-separated (the distributors of a cluster): pushes go
//! to them in turn, and one whose server cannot be reached goes to the next.

use super::{Client, ClientArgs};
use anyhow::{Context, Result, bail};
use api::proto::push::v1::{PushRequest, PushResponse, RawProfileSeries, RawSample};
use api::proto::types::v1::LabelPair;
use clap::Args;
use model::label_names;
use prost::Message as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// Services in the fleet.
    #[arg(long, default_value_t = 10)]
    pub services: usize,
    /// Pods per service.
    #[arg(long, default_value_t = 10)]
    pub pods: usize,
    /// How often each pod pushes a profile.
    #[arg(long, default_value = "10s", value_parser = model::parse_duration)]
    pub interval: Duration,
    /// How long to run.
    #[arg(long, default_value = "1m", value_parser = model::parse_duration)]
    pub duration: Duration,
    /// Pushes per second over the whole fleet (default: the fleet's natural rate, services ×
    /// pods / interval); above it the pods push more often than --interval.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Stop after this many pushes.
    #[arg(long)]
    pub max_requests: Option<usize>,
    /// Pushes in flight at most.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Folder of pprof files to replay (raw or gzip); default: the profiles built into the
    /// binary (Go CPU and heap, Python CPU, Node.js wall, Java CPU).
    #[arg(long)]
    pub profiles: Option<PathBuf>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// One replayable profile: decoded once, re-encoded with a fresh time per push.
struct Source {
    name: String,
    profile: formats::pprof::Profile,
    metric: String,
}

/// The default mix, carried in the binary: profiles this project recorded of its own programs
/// with real profilers (Go's runtime/pprof, the Pyroscope Python and Node.js SDKs, the JDK's
/// Flight Recorder), `crates/emberscope/profiles/*.pb.gz` listed by `build.rs`; that folder's
/// README says how they were made.
const BUILTIN: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/builtin_profiles.rs"));

/// A file's name and contents.
type NamedBytes = (String, Vec<u8>);

/// Every file of `folder` as (file name, bytes), sorted by name; unreadable files count as
/// skipped.
fn read_folder(folder: &Path) -> Result<(Vec<NamedBytes>, usize)> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)
        .with_context(|| format!("cannot list {}", folder.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    entries.sort();
    let mut files = Vec::new();
    let mut skipped = 0usize;
    for path in entries {
        let Ok(bytes) = std::fs::read(&path) else {
            skipped += 1;
            continue;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((name, bytes));
    }
    Ok((files, skipped))
}

/// The replayable profiles among `files` (those Push would accept); `origin` names where they
/// came from in messages.
fn load_sources<N: AsRef<str>, B: AsRef<[u8]>>(
    files: &[(N, B)],
    mut skipped: usize,
    origin: &str,
) -> Result<Vec<Source>> {
    let mut sources = Vec::new();
    for (name, bytes) in files {
        let bytes = bytes.as_ref();
        let Ok(raw) = formats::compression::decompress(bytes, 64 << 20) else {
            skipped += 1;
            continue;
        };
        let Ok(profile) = formats::pprof::decode(&raw, usize::MAX) else {
            skipped += 1;
            continue;
        };
        if profile.sample.is_empty() || profile.sample_type.is_empty() {
            skipped += 1;
            continue;
        }
        // Only what the server accepts (Push refuses, for example, .NET's function id 0).
        let limits = formats::pprof::ProfileLimits {
            reject_older_than_nanos: 0,
            reject_newer_than_nanos: 0,
            ..Default::default()
        };
        let labels = model::Labels::from_pairs([
            (label_names::METRIC_NAME, "process_cpu"),
            (label_names::SERVICE_NAME, "check"),
        ]);
        if formats::pprof::prepare_push(
            profile.clone(),
            &labels,
            &limits,
            &formats::pprof::LabelLimits::default(),
            raw.len(),
            0,
        )
        .is_err()
        {
            skipped += 1;
            continue;
        }
        let first_type = profile
            .string_table
            .get(usize::try_from(profile.sample_type[0].r#type).unwrap_or(0))
            .cloned()
            .unwrap_or_default();
        let metric = if first_type.contains("alloc") || first_type.contains("inuse") {
            "memory"
        } else if first_type == "wall" {
            "wall"
        } else {
            "process_cpu"
        };
        sources.push(Source {
            name: name.as_ref().to_owned(),
            profile,
            metric: metric.to_owned(),
        });
    }
    if sources.is_empty() {
        bail!("no pprof files in {origin} that the server would accept");
    }
    if skipped > 0 {
        eprintln!(
            "loadgen: replaying {} files of {origin}; {skipped} skipped (not pprof, empty, or refused by Push's validation)",
            sources.len(),
        );
    }
    Ok(sources)
}

/// A small deterministic generator for jitter (no dependency, reproducible runs).
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[derive(Debug, Default)]
struct Outcome {
    latencies: Vec<Duration>,
    bytes: usize,
    errors: std::collections::BTreeMap<String, usize>,
}

/// Timestamps take one of this many whole seconds around now.
const JITTER_SLOTS: u64 = 5;

/// Each source's profile encoded with a given second as its time, one slot per (source, second
/// modulo JITTER_SLOTS): as the window of seconds moves on, one new second a second, a profile
/// is encoded about once a second however many pods push it, so that the loader's own work
/// leaves the machine to the server.
type EncodedCache = std::sync::Mutex<Vec<Option<(i64, Arc<Vec<u8>>)>>>;

fn encoded_at(
    cache: &EncodedCache,
    slot: usize,
    second: i64,
    profile: &formats::pprof::Profile,
) -> Arc<Vec<u8>> {
    let cached = cache.lock().ok().and_then(|slots| {
        slots
            .get(slot)
            .cloned()
            .flatten()
            .filter(|(at, _)| *at == second)
    });
    if let Some((_, bytes)) = cached {
        return bytes;
    }
    let mut profile = profile.clone();
    profile.time_nanos = second.saturating_mul(1_000_000_000);
    let bytes = Arc::new(profile.encode_to_vec());
    if let Ok(mut slots) = cache.lock()
        && let Some(entry) = slots.get_mut(slot)
    {
        *entry = Some((second, Arc::clone(&bytes)));
    }
    bytes
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

pub async fn run(args: LoadgenArgs) -> Result<()> {
    if args.services == 0 || args.pods == 0 {
        bail!("--services and --pods must be at least 1");
    }
    if args.interval.is_zero() {
        bail!("--interval must be positive");
    }
    let sources = Arc::new(match &args.profiles {
        Some(folder) => {
            let (files, skipped) = read_folder(folder)?;
            load_sources(&files, skipped, &folder.display().to_string())?
        }
        None => load_sources(BUILTIN, 0, "the built-in profiles")?,
    });
    // Several servers (`--url a,b`): pushes go to them in turn, and a push whose server cannot
    // be reached goes to the next one, as a client behind a load balancer would see it.
    let clients: Vec<Client> = args
        .client
        .url
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            Client::new(&ClientArgs {
                url: url.to_owned(),
                ..args.client.clone()
            })
        })
        .collect::<Result<_>>()?;
    anyhow::ensure!(!clients.is_empty(), "--url names no server");
    let clients = Arc::new(clients);
    let fleet = args.services * args.pods;
    let natural = fleet as f64 / args.interval.as_secs_f64();
    let rate = args.rate.unwrap_or(natural);
    let gap = (rate.is_finite() && rate > 0.0)
        .then(|| Duration::try_from_secs_f64(1.0 / rate).ok())
        .flatten()
        .with_context(|| format!("--rate {rate}: not a positive number of pushes per second"))?;
    let encoded: Arc<EncodedCache> = Arc::new(std::sync::Mutex::new(vec![
        None;
        sources.len()
            * JITTER_SLOTS
                as usize
    ]));
    let permits = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let outcome = Arc::new(std::sync::Mutex::new(Outcome::default()));
    let started = Instant::now();
    let deadline = started + args.duration;
    let mut jitter = Jitter(0x9E37_79B9_7F4A_7C15);
    let mut tasks = tokio::task::JoinSet::new();
    let mut sent = 0usize;
    let mut next = Instant::now();
    eprintln!(
        "loadgen: {} services × {} pods every {:?} ({rate:.1} pushes/s) for {:?} against {}",
        args.services, args.pods, args.interval, args.duration, args.client.url
    );
    // The next push is due at `next`; none is sent after the deadline, nor one due after it
    // (behind schedule, `next` lags the clock: both bound the run).
    while next < deadline
        && Instant::now() < deadline
        && args.max_requests.is_none_or(|max| sent < max)
    {
        tokio::time::sleep_until(next.into()).await;
        next = next.checked_add(gap).unwrap_or(deadline);
        let member = sent % fleet;
        let (service, pod) = (member / args.pods, member % args.pods);
        let source_index = (member + sent / fleet) % sources.len();
        // Timestamps jittered by up to ±2 whole seconds around now.
        let second = model::time::now_ms() / 1000 + (jitter.next() % JITTER_SLOTS) as i64 - 2;
        let slot = source_index * JITTER_SLOTS as usize
            + (second.rem_euclid(JITTER_SLOTS as i64)) as usize;
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .context("the loader stopped")?;
        let first = sent % clients.len();
        let (clients, sources, outcome, encoded) = (
            Arc::clone(&clients),
            Arc::clone(&sources),
            Arc::clone(&outcome),
            Arc::clone(&encoded),
        );
        tasks.spawn(async move {
            let source = &sources[source_index];
            let raw = encoded_at(&encoded, slot, second, &source.profile);
            let size = raw.len();
            let request = PushRequest {
                series: vec![RawProfileSeries {
                    labels: [
                        (label_names::METRIC_NAME, source.metric.clone()),
                        (label_names::SERVICE_NAME, format!("loadgen-{service}")),
                        ("pod", format!("loadgen-{service}-{pod}")),
                        ("source", source.name.clone()),
                    ]
                    .into_iter()
                    .map(|(name, value)| LabelPair {
                        name: name.to_owned(),
                        value,
                    })
                    .collect(),
                    samples: vec![RawSample {
                        raw_profile: raw.as_ref().clone(),
                        id: String::new(),
                    }],
                    annotations: Vec::new(),
                }],
            };
            let begun = Instant::now();
            let mut result = Err(anyhow::anyhow!("no server was tried"));
            for attempt in 0..clients.len() {
                let client = &clients[(first + attempt) % clients.len()];
                result = client
                    .call::<_, PushResponse>("/push.v1.PusherService/Push", &request)
                    .await;
                let unreachable = result.as_ref().is_err_and(|e| {
                    matches!(
                        e.downcast_ref::<api::client::ClientError>(),
                        Some(api::client::ClientError::Unreachable { .. })
                    )
                });
                if !unreachable {
                    break;
                }
            }
            let elapsed = begun.elapsed();
            if let Ok(mut o) = outcome.lock() {
                match result {
                    Ok(_) => {
                        o.latencies.push(elapsed);
                        o.bytes += size;
                    }
                    Err(e) => {
                        let key: String = e.to_string().chars().take(120).collect();
                        *o.errors.entry(key).or_default() += 1;
                    }
                }
            }
            drop(permit);
        });
        sent += 1;
        // Reap finished tasks so the set stays as small as the concurrency.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    let elapsed = started.elapsed().as_secs_f64();
    let mut outcome =
        std::mem::take(&mut *outcome.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    outcome.latencies.sort();
    let ok = outcome.latencies.len();
    let failed: usize = outcome.errors.values().sum();
    println!("sent {sent} pushes in {elapsed:.1} s: {ok} ok, {failed} failed");
    println!(
        "throughput {:.1} profiles/s, {:.2} MB/s uncompressed ({:.1} MB total)",
        ok as f64 / elapsed,
        outcome.bytes as f64 / 1e6 / elapsed,
        outcome.bytes as f64 / 1e6
    );
    println!(
        "acknowledge latency p50 {:?} p90 {:?} p99 {:?} max {:?}",
        percentile(&outcome.latencies, 50.0),
        percentile(&outcome.latencies, 90.0),
        percentile(&outcome.latencies, 99.0),
        outcome.latencies.last().copied().unwrap_or_default()
    );
    for (error, count) in &outcome.errors {
        println!("error ×{count}: {error}");
    }
    if ok == 0 && sent > 0 {
        bail!("every push failed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 50.0), Duration::from_millis(51));
        assert_eq!(percentile(&d, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&[], 99.0), Duration::ZERO);
    }
}
